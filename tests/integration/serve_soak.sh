#!/usr/bin/env bash
# erg serve over a 100,000-request keep-alive soak: every answer 200, RSS flat, no descriptor leaked.
exec python3 -B "$ERG_ROOT/tests/integration/serve_soak.py"

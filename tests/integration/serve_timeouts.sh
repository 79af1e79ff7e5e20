#!/usr/bin/env bash
# erg serve: worker connect and response timeouts (504, streams cut), and the drain on SIGTERM.
# san: yes
exec python3 "$ERG_ROOT/tests/integration/serve_timeouts.py"

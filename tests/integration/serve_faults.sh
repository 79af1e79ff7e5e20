#!/usr/bin/env bash
# erg serve under faults: slow clients, half-close, workers down, killed mid-stream, fd leaks, idle connections.
# san: yes
exec python3 "$ERG_ROOT/tests/integration/serve_faults.py"

#!/usr/bin/env bash
# erg serve with BPF attached: joules per forwarded request, pids from sockets, --json and --log.
exec python3 "$ERG_ROOT/tests/integration/serve_energy.py"

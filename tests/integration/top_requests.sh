#!/usr/bin/env bash
# erg top: per-request joules from the worker's socket traffic.
exec python3 -B "$ERG_ROOT/tests/integration/top_requests.py"

#!/usr/bin/env bash
# erg top: request windows with keep-alive clients, paths, SSE, unix times, hooks, a slow tick.
exec python3 -B "$ERG_ROOT/tests/integration/top_keepalive.py"

#!/usr/bin/env bash
# erg serve: routing, streaming, keep-alive, pipelining, errors over loopback.
# san: yes
exec python3 "$ERG_ROOT/tests/integration/serve_proxy.py"

#!/usr/bin/env bash
# erg serve steering "model": "auto": the body rewrite reaching the worker, x-erg-budget,
# --policy energy's shares against the mix's weights, /metrics' routing families.
# san: yes
# Debian's python3 has python3-prometheus-client; a python3 earlier in PATH may not
py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" "$ERG_ROOT/tests/integration/serve_steer.py"

#!/usr/bin/env bash
# erg top's GPU part against the stub CUDA driver: exact launch counts, busy
# time within 5%, shares, late workers, 50 workers at once, conservation.
# san: yes
exec python3 -B "$ERG_ROOT/tests/integration/gpu_top.py"

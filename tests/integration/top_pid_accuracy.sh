#!/usr/bin/env bash
# erg top --pid: CPU seconds within 0.5% of schedstat beside a CPU hog, tp_btf programs.
# san: yes
exec python3 -B "$ERG_ROOT/tests/integration/top_pid_accuracy.py" tp_btf

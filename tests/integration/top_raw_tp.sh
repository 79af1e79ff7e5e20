#!/usr/bin/env bash
# erg top --pid with the raw_tp fallback programs: same accuracy bar.
exec python3 -B "$ERG_ROOT/tests/integration/top_pid_accuracy.py" raw_tp

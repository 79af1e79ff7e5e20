#!/usr/bin/env bash
# erg on the real llama.cpp engine: CPU accuracy, per-request joules, calibrate.
exec python3 -B "$ERG_ROOT/tests/integration/llm_energy.py"

#!/usr/bin/env bash
# erg top: late forks, exits, --comm after attach, --cgroup.
exec python3 -B "$ERG_ROOT/tests/integration/top_lifecycle.py"

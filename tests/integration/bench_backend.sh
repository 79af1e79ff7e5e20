#!/usr/bin/env bash
# The benchmark backend of make bench (tests/bench/fast_backend) frames
# HTTP/1.1 correctly: answers, SSE, pipelining, splits, errors, clean stop.
# san: yes
exec python3 "$ERG_ROOT/tests/bench/fast_backend_check.py" "$ERG_OUT/bench/fast_backend"

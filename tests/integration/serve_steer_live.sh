#!/usr/bin/env bash
# erg serve steering "model": "auto" on live traffic, the short version of
# make bench's proof (tests/bench/steer_live.sh, scenarios/serve-proof.ini):
# --policy energy and --variance-aware back to back on the same seeded bursty
# arrivals, 15 slots of 2 s each. Asserted, robust on a busy machine: every
# auto request answered 200 with x-erg-model and an integer x-erg-budget,
# completion_tokens = that budget (erg rewrote max_tokens), the ledger closed
# the run's slots, and its demand equals the workers' joules at the same
# tick; and variance-aware's aux + waste not worse than energy's by more
# than three standard deviations of erg sim's ratio over runs this short (at
# least 15%; erg sim predicts about 0.6 of energy's). Exit 77 with SKIP when BPF or
# root is missing.
set -u
ROOT=${ERG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
OUT=${ERG_OUT:-build}
export ERG=${ERG:-$OUT/erg}
if [ ! -x "$OUT/bench/steer_worker" ]; then
	make -s -C "$ROOT" OUT="$OUT" "$OUT/bench/steer_worker" >/dev/null ||
		{ echo "serve_steer_live: cannot build $OUT/bench/steer_worker"; exit 1; }
fi
STEER_SLOTS=${STEER_SLOTS:-15} STEER_CHECK=1 STEER_STRICT=${STEER_STRICT:-1} bash "$ROOT/tests/bench/steer_live.sh" "$OUT"

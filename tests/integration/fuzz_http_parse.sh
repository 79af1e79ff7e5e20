#!/usr/bin/env bash
# A bounded libFuzzer run over erg's HTTP request path (framing, limits,
# random splits, pipelining): 200,000 inputs from the seed corpus in the
# tree with a fixed seed (5-40 s on two cores).
# Fails on any finding (a crash, a sanitizer report or a broken promise of
# user/serve/http_parse.h); `make fuzz` runs longer.
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"

bin="$ERG_OUT/fuzz/fuzz_http_parse"
seconds=${FUZZ_TEST_SECONDS:-90}  # a cap: the run count ends it first on an idle machine
[ -x "$bin" ] && bin=$(realpath "$bin") || skip "$bin is missing: it needs clang's libFuzzer (sudo apt-get install libclang-rt-dev, then make)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
seeds=$(find "$ERG_ROOT/tests/fuzz/corpus/http_parse" -type f | wc -l)
[ "$seeds" -ge 10 ] || fail "only $seeds seed inputs in tests/fuzz/corpus/http_parse"

# Every seed first, alone: each must run clean.
(cd "$work" && "$bin" -runs=0 "$ERG_ROOT/tests/fuzz/corpus/http_parse") >"$work/seeds.log" 2>&1 ||
	{ tail -30 "$work/seeds.log"; fail "a seed input fails fuzz_http_parse"; }
ok "$seeds seeds run clean"

findings=$(realpath "$ERG_OUT")/fuzz/findings
mkdir -p "$findings"
# A fixed seed and run count make a CI failure reproducible with the same
# command; `make fuzz` explores with a fresh seed each time.
(cd "$work" && "$bin" -seed="${FUZZ_SEED:-1}" -runs="${FUZZ_RUNS:-200000}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 \
	-artifact_prefix="$findings/" \
	-dict="$ERG_ROOT/tests/fuzz/http.dict" -print_final_stats=1 \
	corpus "$ERG_ROOT/tests/fuzz/corpus/http_parse") >"$work/fuzz.log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
if [ "$rc" != 0 ]; then
	grep -E "fuzz_http_parse:|ERROR|SUMMARY|Test unit written|^0x" "$work/fuzz.log" | head -20
	fail "libFuzzer found a failing input after ${runs:-?} runs (exit $rc), kept in $findings; reproduce with: $bin FILE"
fi
[ "${runs:-0}" -gt 0 ] || { tail -20 "$work/fuzz.log"; fail "the fuzzer ran no inputs"; }
ok "fuzz_http_parse: $runs inputs (seed ${FUZZ_SEED:-1}), no finding"

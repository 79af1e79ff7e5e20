#!/usr/bin/env bash
# Runs every erg test and ends with one line: "tests: N passed, N failed, N skipped".
#   tests/run.sh [--unit-only] OUT [SAN_OUT]
# OUT holds the normal build (erg, tests/, fixtures/), SAN_OUT the ASan+UBSan
# build whose unit tests, and integration tests marked "# san: yes", run again.
# An integration test is tests/integration/*.sh: exit 0 passes, 77 skips (it
# must say why on stdout), anything else fails. ERG, ERG_OUT and ERG_ROOT are
# set for it.
set -u
unit_only=0
if [ "${1:-}" = --unit-only ]; then unit_only=1; shift; fi
out=${1:?usage: tests/run.sh [--unit-only] OUT [SAN_OUT]}
san=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0 skipped=0

# What BPF needs mounted (PLATFORM.md): tracefs for classic tracepoints,
# bpffs for pinning. tp_btf, raw_tp and uprobes need neither.
if [ "$(id -u)" = 0 ]; then
	mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null ||
		echo "warning: could not mount tracefs on /sys/kernel/tracing"
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null ||
		echo "warning: could not mount bpffs on /sys/fs/bpf"
fi
failures=()

run_unit_dir() { # dir label
	local bin log p f
	for bin in "$1"/tests/test_*; do
		[ -x "$bin" ] || continue
		log=$(mktemp)
		echo "== unit$2: $(basename "$bin")"
		"$bin" >"$log" 2>&1
		local rc=$?
		cat "$log"
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
		passed=$((passed + ${p:-0}))
		failed=$((failed + ${f:-0}))
		if [ "$rc" != 0 ] && [ -z "$f" ]; then
			failed=$((failed + 1)) # crashed before cmocka could report
		fi
		[ "$rc" != 0 ] && failures+=("unit$2 $(basename "$bin")")
		rm -f "$log"
	done
}

run_integration() { # out label only_san
	local t rc
	for t in "$root"/tests/integration/*.sh; do
		[ -f "$t" ] || continue
		if [ "$3" = 1 ] && ! grep -q '^# san: yes' "$t"; then continue; fi
		echo "== integration$2: $(basename "$t")"
		ERG_OUT="$1" ERG="$1/erg" ERG_ROOT="$root" timeout 600 bash "$t"
		rc=$?
		case $rc in
		0) passed=$((passed + 1)); echo "PASS $(basename "$t")$2" ;;
		77) skipped=$((skipped + 1)); echo "!!! SKIP $(basename "$t")$2 (see the reason above) !!!" ;;
		*) failed=$((failed + 1)); failures+=("integration$2 $(basename "$t") (exit $rc)"); echo "FAIL $(basename "$t")$2 (exit $rc)" ;;
		esac
	done
}

run_unit_dir "$out" ""
if [ "$unit_only" = 0 ]; then
	run_integration "$out" "" 0
fi
if [ -n "$san" ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	run_unit_dir "$san" " [asan+ubsan]"
	[ "$unit_only" = 0 ] && run_integration "$san" " [asan+ubsan]" 1
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
[ "$skipped" -gt 0 ] && echo "WARNING: $skipped test(s) SKIPPED: they did not run, see the SKIP lines above"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]

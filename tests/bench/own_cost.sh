#!/usr/bin/env bash
# What erg top costs itself as the number of tracked processes grows: N idle
# processes (tests/bench/idle_procs: children asleep in pause()) tracked by
# `erg top --comm idle_procs --json 1`, for N in 1, 100 and 1000, with the
# GPU part off (--no-gpu) and on (the default: it looks for the CUDA driver
# library in the processes' maps). erg's own CPU time is read from
# /proc/ERG_PID/task/*/schedstat (nanoseconds on CPU, all threads; utime +
# stime of /proc/ERG_PID/stat, in clock ticks, is printed beside it) once it
# has attached (its first NDJSON total line) and again after about
# OWN_COST_S seconds (default 15); the difference over the ticks in between
# is erg's CPU per tick and its share of one core.
# Goals: erg's CPU per tick independent of N (max/min over N <= 2x) and
# under 0.2% of a core at 1000 processes. The figures are printed, a slow
# one is not a failure. CPU time, not wall clock, so other load on the
# machine changes little (the run prints the load average it saw).
#
#   tests/bench/own_cost.sh [OUT]      (make bench runs it with OUT=build)
#
# Environment: OWN_COST_S (seconds per run, default 15), OWN_COST_NS (default
# "1 100 1000"). Needs root (BPF); exit 77 with the reason otherwise.
set -u

OUT=${1:-build}
ERG=${ERG:-$OUT/erg}
IDLE=$OUT/bench/idle_procs
RUN_S=${OWN_COST_S:-15}
NS=${OWN_COST_NS:-"1 100 1000"}
COMM=idle_procs

skip() { echo "own_cost: SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to load erg's BPF programs"
[ -x "$IDLE" ] || { echo "own_cost: $IDLE is missing (make OUT=$OUT bench builds it)"; exit 1; }
[ -x "$ERG" ] || { echo "own_cost: $ERG is missing (make OUT=$OUT all builds it)"; exit 1; }

tmp=$(mktemp -d /tmp/erg-own-cost.XXXXXX)
erg_pid= idle_pid=
cleanup() {
	[ -n "$erg_pid" ] && kill -INT "$erg_pid" 2>/dev/null && wait "$erg_pid" 2>/dev/null
	[ -n "$idle_pid" ] && kill -TERM "$idle_pid" 2>/dev/null && wait "$idle_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# on-CPU nanoseconds of all of a process's threads
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
# utime + stime in clock ticks (whole process)
cpu_ticks() { sed 's/.*) //' /proc/"$1"/stat | awk '{ print $12 + $13 }'; }
ticks_seen() { grep -c '"type":"total"' "$tmp/erg.out"; }

start_idle() { # N
	: >"$tmp/idle.out"
	"$IDLE" "$1" >"$tmp/idle.out" &
	idle_pid=$!
	for _ in $(seq 600); do
		grep -q '^ready' "$tmp/idle.out" && return 0
		kill -0 "$idle_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "own_cost: idle_procs $1 did not start"
	exit 1
}

stop_idle() {
	kill -TERM "$idle_pid"
	wait "$idle_pid"
	idle_pid=
}

# One run: "cpu_ns ticks clock_ticks procs" of erg over about RUN_S seconds.
measure() { # gpu-flag...
	local c0 c1 k0 k1 t0 t1 procs
	"$ERG" top --comm "$COMM" "$@" --json 1 >"$tmp/erg.out" 2>"$tmp/erg.err" &
	erg_pid=$!
	for _ in $(seq 600); do
		[ "$(ticks_seen)" -ge 1 ] && break
		kill -0 "$erg_pid" 2>/dev/null || { echo "own_cost: erg top failed: $(cat "$tmp/erg.err")"; exit 1; }
		sleep 0.05
	done
	t0=$(ticks_seen); c0=$(cpu_ns "$erg_pid"); k0=$(cpu_ticks "$erg_pid")
	sleep "$RUN_S"
	t1=$(ticks_seen); c1=$(cpu_ns "$erg_pid"); k1=$(cpu_ticks "$erg_pid")
	kill -INT "$erg_pid"
	wait "$erg_pid"
	erg_pid=
	procs=$(grep '"type":"model"' "$tmp/erg.out" | tail -1 | grep -o '"procs":[0-9]*' | cut -d: -f2)
	echo "$((c1 - c0)) $((t1 - t0)) $((k1 - k0)) ${procs:-0}"
}

summary() { # label "n:per_tick_ms:pct ..."
	echo "$2" | tr ' ' '\n' | grep . | awk -F: -v label="$1" '
		{ ms[NR] = $2; n[NR] = $1; pct[NR] = $3 }
		END {
			lo = hi = ms[1]
			for (i = 1; i <= NR; i++) { if (ms[i] < lo) lo = ms[i]; if (ms[i] > hi) hi = ms[i]; last = i }
			printf "own_cost %-6s erg CPU per tick max/min over N %.2fx (goal <= 2x), %.3f%% of a core at N=%d (goal < 0.2%%)\n",
				label ":", (lo > 0 ? hi / lo : 0), pct[last], n[last]
		}'
}

hz=$(getconf CLK_TCK)
echo "own_cost: erg top --comm $COMM --json 1 over ${RUN_S} s per run, N idle tracked processes; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for variant in no-gpu gpu; do
	flags=()
	[ "$variant" = no-gpu ] && flags=(--no-gpu)
	figs=""
	for n in $NS; do
		start_idle "$n"
		set -- $(measure "${flags[@]}")
		stop_idle
		ticks=$2
		[ "$ticks" -gt 0 ] || { echo "own_cost: erg top printed no tick in ${RUN_S} s"; exit 1; }
		line=$(awk -v ns="$1" -v t="$ticks" -v k="$3" -v hz="$hz" -v s="$RUN_S" -v p="$4" -v n="$n" -v v="$variant" 'BEGIN {
			ms = ns / t / 1e6
			printf "%d:%.4f:%.4f\t  %-6s N=%-5d procs %-5d %3d ticks: %.3f ms CPU per tick, %.3f%% of a core (utime+stime %.3f s, schedstat %.4f s)\n",
				n, ms, 100 * ns / 1e9 / s, v, n, p, t, ms, 100 * ns / 1e9 / s, k / hz, ns / 1e9 }')
		echo "${line#*	}"
		figs="$figs ${line%%	*}"
	done
	summary "$variant" "$figs"
done

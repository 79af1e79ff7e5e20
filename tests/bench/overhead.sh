#!/usr/bin/env bash
# What erg top costs the processes it watches: a ping-pong between two
# processes pinned to one CPU (taskset -c 1), alone and while
# `erg top --comm NAME` tracks both (requests on, the default), in
# interleaved pairs (alone first in odd pairs, tracked first in even ones),
# and the medians of the pairs' ratios tracked/alone of two throughputs:
# round trips per second of wall clock (the goal's figure, on a quiet
# machine), and per CPU second of the two processes (user + system, where
# the BPF programs run), which other load on a busy machine leaves alone.
#   pipe: one byte over a pair of pipes (tests/bench/pingpong_pipe.c): no
#         socket, so it pays only for sched_switch tracking;
#   tcp:  a 26-byte HTTP-looking message over loopback TCP
#         (tests/bench/pingpong_tcp.c): every send and receive is a socket
#         event erg reads.
# The round trips per run are sized from a first run alone, so one run takes
# about BENCH_RUN_S seconds (default 1) on this machine. Goals: pipe >= 0.97x,
# TCP >= 0.90x; the figures are printed, a slow ratio is not a failure.
#
#   tests/bench/overhead.sh [OUT]      (make bench runs it with OUT=build)
#
# Environment: BENCH_PAIRS (default 5), BENCH_RUN_S, BENCH_CPU (default 1),
# ERG_HOOKS (--socket-hooks for the tracked runs, default auto). Needs root
# (BPF) and taskset; exit 77 with the reason otherwise.
set -u

OUT=${1:-build}
ERG=${ERG:-$OUT/erg}
PAIRS=${BENCH_PAIRS:-5}
RUN_S=${BENCH_RUN_S:-1}
CPU=${BENCH_CPU:-1}
HOOKS=${ERG_HOOKS:-auto}

skip() { echo "overhead: SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to load erg's BPF programs"
command -v taskset >/dev/null || skip "needs taskset (util-linux)"
[ "$(nproc)" -gt "$CPU" ] || CPU=0
for p in pingpong_pipe pingpong_tcp; do
	[ -x "$OUT/bench/$p" ] || { echo "overhead: $OUT/bench/$p is missing (make OUT=$OUT bench builds it)"; exit 1; }
done

tmp=$(mktemp -d /tmp/erg-overhead.XXXXXX)
erg_pid=
cleanup() {
	[ -n "$erg_pid" ] && kill "$erg_pid" 2>/dev/null && wait "$erg_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# "per_s per_cpu_s" of one run: pinned, N round trips
run() { taskset -c "$CPU" "$OUT/bench/$1" "$2" | sed -n 's/.* per_s=\([0-9.]*\).*per_cpu_s=\([0-9.]*\).*/\1 \2/p'; }

# erg top tracking NAME, attached (its first NDJSON line printed)
start_erg() {
	"$ERG" top --comm "$1" --no-gpu --socket-hooks "$HOOKS" --json 0.25 >"$tmp/erg.out" 2>"$tmp/erg.err" &
	erg_pid=$!
	for _ in $(seq 200); do
		[ -s "$tmp/erg.out" ] && return 0
		kill -0 "$erg_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "overhead: erg top did not start: $(cat "$tmp/erg.err")"
	exit 1
}

stop_erg() {
	kill -INT "$erg_pid"
	wait "$erg_pid"
	erg_pid=
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

bench() { # name goal
	local name=$1 goal=$2 n per alone tracked ratios="" cpu_ratios="" hooks sched
	per=$(run "$name" 2000 | cut -d' ' -f1)
	n=$(awk -v p="$per" -v s="$RUN_S" 'BEGIN { n = int(p * s); print n < 1000 ? 1000 : n }')
	run "$name" "$n" >/dev/null	# warm-up
	for i in $(seq "$PAIRS"); do
		if [ $((i % 2)) = 1 ]; then
			alone=$(run "$name" "$n")
			start_erg "$name"; tracked=$(run "$name" "$n"); stop_erg
		else
			start_erg "$name"; tracked=$(run "$name" "$n"); stop_erg
			alone=$(run "$name" "$n")
		fi
		set -- $alone $tracked
		ratios="$ratios $(awk -v a="$1" -v t="$3" 'BEGIN { printf "%.4f", t / a }')"
		cpu_ratios="$cpu_ratios $(awk -v a="$2" -v t="$4" 'BEGIN { printf "%.4f", t / a }')"
		printf '  %-13s pair %d: alone %7.0f/s %7.0f/CPU-s, tracked %7.0f/s %7.0f/CPU-s\n' "$name" "$i" "$1" "$2" "$3" "$4"
	done
	hooks=$(grep -o '"sockets":"[a-z_]*"' "$tmp/erg.out" | tail -1 | cut -d'"' -f4)
	sched=$(grep -o '"sched":"[a-z_]*"' "$tmp/erg.out" | tail -1 | cut -d'"' -f4)
	printf 'overhead %-5s %d round trips x %d pairs (sched %s, sockets %s): median tracked/alone %.3fx wall, %.3fx per CPU second (goal >= %s)\n' \
		"${name#pingpong_}:" "$n" "$PAIRS" "$sched" "$hooks" "$(echo "$ratios" | tr ' ' '\n' | grep . | median)" \
		"$(echo "$cpu_ratios" | tr ' ' '\n' | grep . | median)" "$goal"
}

echo "overhead: ping-pong pinned to CPU $CPU, alone vs under erg top --comm (requests on, --socket-hooks $HOOKS)"
bench pingpong_pipe 0.97
bench pingpong_tcp 0.90

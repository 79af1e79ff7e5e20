#!/usr/bin/env bash
# What erg top costs the processes it watches, alone vs while erg top tracks
# them (requests on, the default), in interleaved pairs (alone first in odd
# pairs, tracked first in even ones), and the medians of the pairs' ratios
# tracked/alone of two throughputs: per second of wall clock (the goal's
# figure, on a quiet machine), and per CPU second of the watched processes
# (user + system, where the BPF programs run), which other load on a busy
# machine leaves alone.
#   pipe: one byte over a pair of pipes (tests/bench/pingpong_pipe.c) between
#         two processes pinned to one CPU (taskset -c 1), under
#         `erg top --comm`: no socket, so it pays only for sched_switch
#         tracking;
#   tcp:  a 26-byte HTTP-looking message over loopback TCP
#         (tests/bench/pingpong_tcp.c), likewise: every send and receive is a
#         socket event erg reads;
#   llm:  the llama.cpp worker (erg-llm-worker, one ggml thread, pinned to
#         the same CPU) on a model of the synthetic ladder, under
#         `erg top --pid WORKER`: tokens generated for a fixed sequence of
#         completion requests (tests/bench/llm_client.py: same prompt, seed
#         and max_tokens each time, one keep-alive connection), per second of
#         wall clock and per CPU second of the worker process.
# A run is sized from a first measurement to take about BENCH_RUN_S seconds
# (default 1) for the ping-pongs, BENCH_LLM_RUN_S (default 4) for the worker.
# Goals: pipe >= 0.97x, TCP >= 0.90x, llm >= 0.99x; the figures are printed,
# a slow ratio is not a failure.
#
#   tests/bench/overhead.sh [OUT]      (make bench runs it with OUT=build)
#
# Environment: BENCH_SECTIONS (default "pipe tcp llm"), BENCH_PAIRS (default
# 5), BENCH_RUN_S, BENCH_LLM_RUN_S, BENCH_LLM_MODEL (default erg-130m),
# BENCH_CPU (default 1), ERG_HOOKS
# (--socket-hooks for the tracked runs, default auto). Needs root (BPF) and
# taskset; exit 77 with the reason otherwise. The llm section builds the
# worker and its model with `make engine` (npm) when it can, and otherwise
# says why it is skipped; the ping-pongs still run.
set -u

OUT=${1:-build}
ERG=${ERG:-$OUT/erg}
PAIRS=${BENCH_PAIRS:-5}
RUN_S=${BENCH_RUN_S:-1}
LLM_RUN_S=${BENCH_LLM_RUN_S:-4}
LLM_MODEL=${BENCH_LLM_MODEL:-erg-130m}
LLM_REQUESTS=4	# per run; max_tokens is what is sized
CPU=${BENCH_CPU:-1}
HOOKS=${ERG_HOOKS:-auto}
SECTIONS=${BENCH_SECTIONS:-pipe tcp llm}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

skip() { echo "overhead: SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to load erg's BPF programs"
command -v taskset >/dev/null || skip "needs taskset (util-linux)"
[ "$(nproc)" -gt "$CPU" ] || CPU=0
for p in pingpong_pipe pingpong_tcp; do
	[ -x "$OUT/bench/$p" ] || { echo "overhead: $OUT/bench/$p is missing (make OUT=$OUT bench builds it)"; exit 1; }
done

tmp=$(mktemp -d /tmp/erg-overhead.XXXXXX)
erg_pid=''
llm_pid=''
cleanup() {
	[ -n "$erg_pid" ] && kill "$erg_pid" 2>/dev/null && wait "$erg_pid" 2>/dev/null
	[ -n "$llm_pid" ] && kill "$llm_pid" 2>/dev/null && wait "$llm_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# "per_s per_cpu_s" of one ping-pong run: pinned, N round trips
run() { taskset -c "$CPU" "$OUT/bench/$1" "$2" | sed -n 's/.* per_s=\([0-9.]*\).*per_cpu_s=\([0-9.]*\).*/\1 \2/p'; }

# erg top tracking TARGET... (--comm NAME, --pid PID), attached (its first
# NDJSON line printed)
start_erg() {
	"$ERG" top "$@" --no-gpu --socket-hooks "$HOOKS" --json 0.25 >"$tmp/erg.out" 2>"$tmp/erg.err" &
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

# PAIRS interleaved pairs of RUN... (a command printing "per_s per_cpu_s"),
# alone and under erg top TARGET; prints a line per pair (figures in FMT, a
# printf conversion) and leaves the ratios tracked/alone in $ratios and
# $cpu_ratios. Returns 1 when a run printed no figures.
pairs() { # label fmt "target args" run...
	local label=$1 fmt=$2 target=$3 i alone tracked a ac t tc
	shift 3
	ratios="" cpu_ratios=""
	for i in $(seq "$PAIRS"); do
		# shellcheck disable=SC2086
		if [ $((i % 2)) = 1 ]; then
			alone=$("$@")
			start_erg $target; tracked=$("$@"); stop_erg
		else
			start_erg $target; tracked=$("$@"); stop_erg
			alone=$("$@")
		fi
		if [ -z "$alone" ] || [ -z "$tracked" ]; then
			echo "overhead: $label pair $i: a run gave no figures"
			return 1
		fi
		read -r a ac <<<"$alone"
		read -r t tc <<<"$tracked"
		ratios="$ratios $(awk -v a="$a" -v t="$t" 'BEGIN { printf "%.4f", t / a }')"
		cpu_ratios="$cpu_ratios $(awk -v a="$ac" -v t="$tc" 'BEGIN { printf "%.4f", t / a }')"
		printf "  %-13s pair %d: alone $fmt/s $fmt/CPU-s, tracked $fmt/s $fmt/CPU-s\n" "$label" "$i" "$a" "$ac" "$t" "$tc"
	done
}

# which hooks the last tracked run had, as erg top's header says
hooks_used() { grep -o "\"$1\":\"[a-z_]*\"" "$tmp/erg.out" | tail -1 | cut -d'"' -f4; }

bench() { # name goal
	local name=$1 goal=$2 n per
	per=$(run "$name" 2000 | cut -d' ' -f1)
	n=$(awk -v p="$per" -v s="$RUN_S" 'BEGIN { n = int(p * s); print n < 1000 ? 1000 : n }')
	run "$name" "$n" >/dev/null	# warm-up
	pairs "$name" "%7.0f" "--comm $name" run "$name" "$n" || exit 1
	printf 'overhead %-5s %d round trips x %d pairs (sched %s, sockets %s): median tracked/alone %.3fx wall, %.3fx per CPU second (goal >= %s)\n' \
		"${name#pingpong_}:" "$n" "$PAIRS" "$(hooks_used sched)" "$(hooks_used sockets)" \
		"$(echo "$ratios" | tr ' ' '\n' | grep . | median)" "$(echo "$cpu_ratios" | tr ' ' '\n' | grep . | median)" "$goal"
}

# The llama.cpp worker and its model, built with `make engine` (npm, the
# prebuilt libllama) as the engine tests do; prints why not on failure.
llm_build() {
	if ! command -v npm >/dev/null 2>&1 && [ ! -e "$ROOT/node_modules/.erg-engine-installed" ]; then
		echo "npm is missing, so the llama.cpp engine cannot be installed (sudo apt-get install npm)"
		return 1
	fi
	if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" OUT="$llm_out" engine \
		"$llm_out/models/$LLM_MODEL.gguf" >"$tmp/make.log" 2>&1; then
		echo "\`make OUT=$OUT engine $OUT/models/$LLM_MODEL.gguf\` failed: $(tail -3 "$tmp/make.log" | tr '\n' ' ')"
		return 1
	fi
}

# "per_s per_cpu_s" of one worker run: REQUESTS requests of MAX_TOKENS tokens
llm_run() {
	/usr/bin/python3 "$ROOT/tests/bench/llm_client.py" "$llm_port" "$llm_pid" "$1" "$2" 2>"$tmp/client.err" |
		sed -n 's/.* per_s=\([0-9.]*\).*per_cpu_s=\([0-9.]*\).*/\1 \2/p'
	[ -s "$tmp/client.err" ] && echo "overhead: llm: $(cat "$tmp/client.err")" >&2
	return 0
}

# max_tokens for a run of about LLM_RUN_S s at PER tokens/s (the context
# holds 1792)
llm_size() { awk -v p="$1" -v s="$LLM_RUN_S" -v r="$LLM_REQUESTS" \
	'BEGIN { n = int(p * s / r); print (n < 16) ? 16 : (n > 1536) ? 1536 : n }'; }

bench_llm() { # goal
	local goal=$1 why per maxtok i
	llm_out=$(realpath -m "$OUT")
	if [ ! -x /usr/bin/python3 ]; then
		echo "overhead llm: SKIP: needs /usr/bin/python3 for its client (sudo apt-get install python3)"
		return 0
	fi
	if ! why=$(llm_build); then
		echo "overhead llm: SKIP: $why"
		return 0
	fi
	# one ggml thread, pinned like the ping-pongs; every request generates
	# exactly max_tokens (--sigma 0 --median-frac 1); a request never waits
	# long enough for a 503
	taskset -c "$CPU" "$llm_out/llm/erg-llm-worker" --model-file "$llm_out/models/$LLM_MODEL.gguf" --port 0 \
		--threads 1 --sigma 0 --median-frac 1 --queue-ms 600000 >"$tmp/llm.out" 2>"$tmp/llm.err" &
	llm_pid=$!
	for i in $(seq 600); do
		grep -q ' port=' "$tmp/llm.out" && break
		kill -0 "$llm_pid" 2>/dev/null || break
		sleep 0.1
	done
	llm_port=$(sed -n 's/.* port=\([0-9]*\) .*/\1/p' "$tmp/llm.out")
	if [ -z "$llm_port" ]; then
		echo "overhead llm: erg-llm-worker did not start: $(cat "$tmp/llm.err")"
		exit 1
	fi
	per=$(llm_run 2 64 | cut -d' ' -f1)	# first measurement, and the warm-up of the model's pages
	[ -n "$per" ] || exit 1
	maxtok=$(llm_size "$per")
	# warm-up at that size, and the size again from it: short requests
	# underrate the rate (the prompt is a larger part of them)
	per=$(llm_run "$LLM_REQUESTS" "$maxtok" | cut -d' ' -f1)
	[ -n "$per" ] || exit 1
	maxtok=$(llm_size "$per")
	pairs "erg-llm-worker" "%7.2f" "--pid $llm_pid" llm_run "$LLM_REQUESTS" "$maxtok" || exit 1
	printf 'overhead %-5s %d tokens x %d pairs (%s, sched %s, sockets %s): median tracked/alone %.3fx wall, %.3fx per CPU second (goal >= %s)\n' \
		"llm:" $((LLM_REQUESTS * maxtok)) "$PAIRS" "$LLM_MODEL" "$(hooks_used sched)" "$(hooks_used sockets)" \
		"$(echo "$ratios" | tr ' ' '\n' | grep . | median)" "$(echo "$cpu_ratios" | tr ' ' '\n' | grep . | median)" "$goal"
	kill "$llm_pid" && wait "$llm_pid"
	llm_pid=
}

echo "overhead: pinned to CPU $CPU, alone vs under erg top (requests on, --socket-hooks $HOOKS)"
for s in $SECTIONS; do
	case $s in
	pipe) bench pingpong_pipe 0.97 ;;
	tcp) bench pingpong_tcp 0.90 ;;
	llm) bench_llm 0.99 ;;
	*) echo "overhead: BENCH_SECTIONS: unknown section '$s' (pipe, tcp, llm)"; exit 2 ;;
	esac
done

#!/usr/bin/env bash
# `make run`: three model workers of three sizes under Poisson load, watched
# live by `erg top` (with a supply ledger) for 20 one-second intervals (or
# until Ctrl-C).
#   tests/demo/run.sh OUTDIR
# By default the workers are erg-llm-worker on the real llama.cpp engine with
# the generated GGUF ladder (erg-30m, erg-130m, erg-340m; `make engine models`
# installs and writes them). If the engine cannot be installed, one line says
# why and the synthetic demo workers below take their place
# (ERG_DEMO_ENGINE=synthetic picks them directly).
#
# Synthetic workers:
# Sizes keep the ratios of qwen-1.5b : qwen-7b : qwen-32b (1500M, 7000M,
# 32000M parameters) at 0.1 ms of CPU per token per 1000M parameters
# (0.15, 0.7 and 3.2 ms per token): at 6 requests/s of max_tokens 256
# (about 155 tokens each, prompt included) the three use about 1.25 cores,
# most of it the 32b model, leaving the machine responsive.
# Environment: ERG_DEMO_ENGINE (llama or synthetic), ERG_DEMO_RATE
# (requests/s), ERG_DEMO_COUNT (erg top intervals, default 20),
# ERG_DEMO_SCALE (synthetic: CPU ms per token per 1000M, 0.1),
# ERG_DEMO_SUPPLY (baseline supply for the ledger, watts).
set -u
OUT=${1:?usage: tests/demo/run.sh OUTDIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ENGINE=${ERG_DEMO_ENGINE:-llama}
COUNT=${ERG_DEMO_COUNT:-20}
SCALE=${ERG_DEMO_SCALE:-0.1}
MODELS=(qwen-1.5b qwen-7b qwen-32b)
PARAMS=(1500 7000 32000)

if [ "$(id -u)" != 0 ]; then
	echo "make run: erg needs root to load its BPF programs (or CAP_BPF+CAP_PERFMON); run: sudo make run"
	exit 2
fi
for b in erg demo/demo_worker demo/loadgen; do
	[ -x "$OUT/$b" ] || { echo "make run: $OUT/$b is missing; build it with: make"; exit 2; }
done

tmp=$(mktemp -d /tmp/erg-demo.XXXXXX)
if [ "$ENGINE" = llama ]; then
	echo "make run: preparing the llama.cpp engine and the model ladder (make engine models) ..."
	if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" OUT="$OUT" engine models >"$tmp/engine.log" 2>&1 &&
		[ -x "$OUT/llm/erg-llm-worker" ]; then
		MODELS=(erg-30m erg-130m erg-340m)
	else
		why=$(grep -v '^ *$' "$tmp/engine.log" | tail -n 1)
		echo "make run: the llama.cpp engine is not available (${why:-make engine failed}); using the synthetic demo workers"
		ENGINE=synthetic
	fi
fi
# Loads that keep the two cores responsive: the real 340M model decodes about
# 20 tokens/s on one thread.
# Each llama token also runs a kernel on the stub CUDA driver (build/gpu), so
# the GPU columns show on any machine: about 2 ms of device time per token for
# the largest model, well under one busy device-second per second in all. The
# synthetic workers stay CPU-only: at hundreds of tokens/s, each launch's
# synchronize returning late on two busy cores would dominate the GPU busy
# estimate (docs/gpu.md says where that estimate is wrong).
# The ledger's supply is near the workers' mean demand (docs/theory.md §3).
if [ "$ENGINE" = llama ]; then
	RATE=${ERG_DEMO_RATE:-1.2}; MAX_TOKENS=48; SUPPLY=${ERG_DEMO_SUPPLY:-45}; GPU_US=6000
else
	RATE=${ERG_DEMO_RATE:-6}; MAX_TOKENS=256; SUPPLY=${ERG_DEMO_SUPPLY:-4}
fi
worker_pids=()
lg_pid=
cleanup() {
	trap - EXIT INT TERM
	[ -n "$lg_pid" ] && kill -TERM "$lg_pid" 2>/dev/null && wait "$lg_pid" 2>/dev/null
	for p in "${worker_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${worker_pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Workers pick free ports (--port 0) and print them on their startup line.
# One at a time: each times its CPU kernel at startup, best on a quiet machine.
ports=()
for i in 0 1 2; do
	if [ "$ENGINE" = llama ]; then
		"$OUT/llm/erg-llm-worker" --model-file "$OUT/models/${MODELS[$i]}.gguf" --port 0 --threads 1 \
			--seed $((i + 1)) --gpu-us-per-b "$GPU_US" >"$tmp/worker$i.log" 2>&1 &
	else
		"$OUT/demo/demo_worker" --port 0 --model "${MODELS[$i]}" --params-m "${PARAMS[$i]}" \
			--ms-per-token-per-b "$SCALE" --threads 2 --seed $((i + 1)) \
			>"$tmp/worker$i.log" 2>&1 &
	fi
	worker_pids+=($!)
	port=
	for _ in $(seq 300); do
		port=$(sed -n 's/^[a-z_-]*: model=[^ ]* port=\([0-9]*\) .*/\1/p' "$tmp/worker$i.log")
		[ -n "$port" ] && break
		kill -0 "${worker_pids[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$port" ]; then
		echo "make run: demo worker ${MODELS[$i]} did not start: $(cat "$tmp/worker$i.log")"
		exit 1
	fi
	# /health over bash's /dev/tcp: no HTTP client needed.
	healthy=0
	for _ in $(seq 50); do
		if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
			printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
			timeout 2 cat <&3 | grep -q '"status":"ok"' && healthy=1
			exec 3<&-
		fi
		[ "$healthy" = 1 ] && break
		sleep 0.1
	done
	[ "$healthy" = 1 ] || { echo "make run: demo worker ${MODELS[$i]} on port $port is not healthy"; exit 1; }
	ports+=("$port")
	sed -n 1p "$tmp/worker$i.log"
done

urls="http://127.0.0.1:${ports[0]},http://127.0.0.1:${ports[1]},http://127.0.0.1:${ports[2]}"
# Load for longer than erg top watches; stopped (and summarised) afterwards.
"$OUT/demo/loadgen" --url "$urls" --rate "$RATE" --duration $((COUNT + 30)) --max-tokens "$MAX_TOKENS" \
	--stream --concurrency 16 --seed 1 >"$tmp/loadgen.log" 2>&1 &
lg_pid=$!
echo "loadgen: $RATE requests/s (Poisson, max_tokens $MAX_TOKENS, streaming) over the three workers"
echo "erg top: attached by pid, baseline supply $SUPPLY W for the ledger"
echo

# Ctrl-C reaches erg top, which prints its summary; then finish here too.
trap 'interrupted=1' INT TERM
interrupted=0
top_cmd=("$OUT/erg" top --pid "${worker_pids[0]}=${MODELS[0]}" --pid "${worker_pids[1]}=${MODELS[1]}"
	--pid "${worker_pids[2]}=${MODELS[2]}" --supply-watts "$SUPPLY" 1 "$COUNT")
# Keep a copy of what erg top shows (its summary gives J per token below);
# under script(1) it still sees a terminal and redraws in place.
if [ -t 1 ] && command -v script >/dev/null; then
	script -qefc "$(printf '%q ' "${top_cmd[@]}")" "$tmp/top.log"
else
	"${top_cmd[@]}" | tee "$tmp/top.log"
fi
rc=${PIPESTATUS[0]}

echo
kill -TERM "$lg_pid" 2>/dev/null
wait "$lg_pid" 2>/dev/null
lg_pid=
cat "$tmp/loadgen.log"
for i in 0 1 2; do kill -TERM "${worker_pids[$i]}" 2>/dev/null; done
for i in 0 1 2; do
	wait "${worker_pids[$i]}" 2>/dev/null
	sed -n 's/^[a-z_-]*: model=\([^ ]*\) stopped by signal [0-9]*: \(.*\)/  \1: \2/p' "$tmp/worker$i.log"
done
worker_pids=()
# J per generated token: erg's attributed joules per model over the tokens
# its worker reports (the workers ran a little longer than erg watched).
echo "J/token (erg's joules, CPU + GPU, / tokens generated):"
for i in 0 1 2; do
	# the summary's model table (header with PROCS): JOULES is column 5
	joules=$(tr -d '\r' <"$tmp/top.log" | sed -n '/summary over/,$p' |
		awk -v m="${MODELS[$i]}" '$1 == "MODEL" { cpu = ($2 == "PROCS") } cpu && $1 == m { print $5; exit }')
	tokens=$(sed -n 's/.* \([0-9]*\) tokens$/\1/p' "$tmp/worker$i.log" | tail -n 1)
	if [ -n "$joules" ] && [ -n "$tokens" ] && [ "$tokens" -gt 0 ]; then
		awk -v m="${MODELS[$i]}" -v j="$joules" -v t="$tokens" 'BEGIN { printf "  %-10s %9.3f J / %5d tokens = %.3g J/token\n", m, j, t, j / t }'
	fi
done
[ "$interrupted" = 1 ] && [ "$rc" = 0 ] && rc=130
exit "$rc"

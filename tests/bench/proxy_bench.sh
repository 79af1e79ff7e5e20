#!/usr/bin/env bash
# erg serve vs nginx under wrk, in front of the same fast backend
# (tests/bench/fast_backend.c), on loopback, back to back in one invocation.
#
#   tests/bench/proxy_bench.sh [OUT]        (make bench runs it with OUT=build)
#
# For plain JSON completions and for SSE streams: wrk straight at the backend
# (the baseline), then nginx and erg serve alternately (nginx, erg, nginx,
# erg, ...), the same wrk threads, connections and duration for each, and
# the medians of requests/s and p99 latency with the ratios erg/nginx. nginx
# is a reverse proxy with upstream keep-alive and as many worker processes as
# erg has threads. Each proxy runs only for its own runs (started, warmed up
# for a second, measured, stopped), so neither it nor erg's BPF programs
# weigh on the other's figures. Each proxy's answers are checked against the
# backend's own (byte for byte) before it is measured. Reports only: a slow proxy is a
# figure, not a failure; a proxy that does not start, answers wrongly or
# makes wrk count errors is a failure (exit 1). Exit 77 when wrk is missing.
#
# Sizing (environment): BENCH_DURATION (wrk -d, default 5s), BENCH_CONNS
# (-c, default 64), BENCH_WRK_THREADS (-t), BENCH_PROXY_THREADS (erg
# --threads = nginx worker_processes), BENCH_BACKEND_THREADS; the thread
# counts default to half the CPUs (at least 1) each, as wrk, the proxy and
# the backend share the machine. BENCH_ROUNDS (default 3) pairs of runs,
# BENCH_EVENTS (default 16) SSE events per stream. Only loopback traffic;
# every process and temp file it made is removed on exit or Ctrl-C.
set -u

OUT=${1:-build}
ERG=${ERG:-$OUT/erg}
BACKEND=$OUT/bench/fast_backend
HERE=$(cd "$(dirname "$0")" && pwd)
LUA=$HERE/chat.lua

cpus=$(nproc 2>/dev/null || echo 2)
half=$(( cpus / 2 > 0 ? cpus / 2 : 1 ))
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-$half}
PROXY_THREADS=${BENCH_PROXY_THREADS:-$half}
BACKEND_THREADS=${BENCH_BACKEND_THREADS:-$half}
ROUNDS=${BENCH_ROUNDS:-3}
EVENTS=${BENCH_EVENTS:-16}

say() { printf 'proxy bench: %s\n' "$*"; }

if ! command -v wrk >/dev/null 2>&1; then
	say "SKIP: wrk is not installed (apt-get install wrk, or make deps as root)"
	exit 77
fi
if [ ! -x "$BACKEND" ]; then
	say "FAIL: $BACKEND is missing (build it with make $BACKEND)"
	exit 1
fi
if ! check=$(python3 "$HERE/fast_backend_check.py" "$BACKEND" 2>&1); then
	say "FAIL: the fast backend fails its own check (tests/bench/fast_backend_check.py):"
	echo "$check"
	exit 1
fi

TMP=$(mktemp -d /tmp/erg-proxy-bench.XXXXXX) || exit 1
chmod 0755 "$TMP"	# nginx workers may run as another user
PIDS=()
WRK_PID=
FAILED=0

# Stop a process this script started: SIGINT (erg prints its summary), then
# SIGTERM, then SIGKILL, a few seconds apart. Only while it is still this
# shell's child, so a recycled pid is never signalled.
ours() {
	[ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2)" = "$$" ]
}
stop_pid() {
	local pid=$1 sig i
	for sig in INT TERM KILL; do
		ours "$pid" || break
		kill -s "$sig" "$pid" 2>/dev/null
		for i in $(seq 30); do
			ours "$pid" && [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || break 2
			sleep 0.1
		done
	done
	wait "$pid" 2>/dev/null
	STOP_STATUS=$?
	return 0
}

cleanup() {
	trap - EXIT INT TERM
	local p
	for p in ${WRK_PID:-} "${PIDS[@]}"; do
		stop_pid "$p"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	say "FAIL: $*"
	FAILED=1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until URL answers 200 while PID lives (at most ~20 s).
wait_ready() {
	local url=$1 pid=$2 i
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 1
		curl -sf -o /dev/null --max-time 1 "$url" && return 0
		sleep 0.1
	done
	return 1
}

# The body of one chat answer through BASE_URL (stream: "stream" or "").
chat_body() {
	local base=$1 stream=$2 body='{"model":"bench","messages":[{"role":"user","content":"Say hello."}]'
	[ "$stream" = stream ] && body+=',"stream":true'
	curl -sf --max-time 5 -H 'Content-Type: application/json' -d "$body}" "$base/v1/chat/completions"
}

# ---- the backend ----
"$BACKEND" --threads "$BACKEND_THREADS" --events "$EVENTS" >"$TMP/backend.log" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
for i in $(seq 100); do
	BACKEND_PORT=$(sed -n 's/^fast_backend: listening on [0-9.]*:\([0-9]*\),.*/\1/p' "$TMP/backend.log")
	[ -n "$BACKEND_PORT" ] && break
	kill -0 "$BACKEND_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "${BACKEND_PORT:-}" ] || ! wait_ready "http://127.0.0.1:$BACKEND_PORT/health" "$BACKEND_PID"; then
	say "FAIL: the fast backend did not start:"
	cat "$TMP/backend.log"
	exit 1
fi
BASE_backend=http://127.0.0.1:$BACKEND_PORT
chat_body "$BASE_backend" "" >"$TMP/want.json" && chat_body "$BASE_backend" stream >"$TMP/want.sse"
if [ "$(grep -c '^data: {' "$TMP/want.sse")" != "$EVENTS" ] || ! grep -q '^data: \[DONE\]' "$TMP/want.sse" ||
   ! grep -q '"chat.completion"' "$TMP/want.json"; then
	say "FAIL: the fast backend answers wrongly; its answers:"
	cat "$TMP/want.json" "$TMP/want.sse"
	exit 1
fi

# A proxy or backend that crashes or ignores SIGINT/SIGTERM on the way out
# is a failure too.
stop_checked() {	# NAME PID LOG
	local rc
	stop_pid "$2"
	rc=$STOP_STATUS
	case $rc in
	0 | 130 | 143) return 0 ;;	# exited, or ended by the signal it was sent
	137) fail "$1 did not stop within 3 s of SIGINT and 3 s of SIGTERM (killed)" ;;
	*) fail "$1 exited with status $rc while stopping$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")" ;;
	esac
	[ -n "$3" ] && tail -n 5 "$3"
}

# ---- the proxies ----
# Each is started for its own runs and stopped after them, so neither one
# (nor erg's BPF programs) is on the machine while the other is measured.

start_nginx() {
	local port conf=$TMP/nginx.conf
	port=$(free_port) || return 1
	mkdir -p "$TMP/nginx"
	cat >"$conf" <<-EOF
	# generated by tests/bench/proxy_bench.sh
	worker_processes $PROXY_THREADS;
	pid $TMP/nginx/nginx.pid;
	error_log $TMP/nginx/error.log warn;
	events { worker_connections 4096; }
	http {
	    access_log off;
	    client_body_temp_path $TMP/nginx/client_body;
	    proxy_temp_path $TMP/nginx/proxy;
	    fastcgi_temp_path $TMP/nginx/fastcgi;
	    uwsgi_temp_path $TMP/nginx/uwsgi;
	    scgi_temp_path $TMP/nginx/scgi;
	    keepalive_requests 1000000;   # wrk's connections stay open, as with erg
	    upstream fast_backend {
	        server 127.0.0.1:$BACKEND_PORT;
	        keepalive 64;
	        keepalive_requests 1000000;
	    }
	    server {
	        listen 127.0.0.1:$port reuseport;
	        location / {
	            proxy_pass http://fast_backend;
	            proxy_http_version 1.1;
	            proxy_set_header Connection "";
	            proxy_buffering off;   # streams pass through as they arrive, as in erg
	        }
	    }
	}
	EOF
	nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$conf" -g 'daemon off;' \
		>"$TMP/nginx/stdout.log" 2>&1 &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	if ! wait_ready "http://127.0.0.1:$port/health" "$NGINX_PID"; then
		fail "nginx did not start:"
		cat "$TMP/nginx/stdout.log" "$TMP/nginx/error.log" 2>/dev/null
		return 1
	fi
	BASE_nginx=http://127.0.0.1:$port
}

start_erg() {	# [auto]: serve.ini with steering sections too
	local port
	port=$(free_port) || return 1
	: >"$TMP/serve.ini"
	[ "${1:-}" = auto ] && cat >"$TMP/serve.ini" <<-EOF
	; "model": "auto" steered among 16 budgets of the one model
	[scaling]
	a0 = -1.746
	a1 = 0.072
	beta = 0.1086
	a_max = 0.95
	eta = 2e11
	[workload]
	tasks_per_slot = 1000
	budgets = 32..2048
	budget_steps = 16
	accuracy_target = 0.2
	input_tokens = 0
	reasoning_sigma = 0
	reasoning_median = 1
	[cost]
	c_a = 1
	c_w = 1
	EOF
	cat >>"$TMP/serve.ini" <<-EOF
	; generated by tests/bench/proxy_bench.sh
	[serve]
	listen = 127.0.0.1:$port
	[model bench]
	params = 1e9
	worker = 127.0.0.1:$BACKEND_PORT pid=$BACKEND_PID
	EOF
	"$ERG" serve --config "$TMP/serve.ini" --threads "$PROXY_THREADS" >"$TMP/erg.log" 2>&1 &
	ERG_PID=$!
	PIDS+=("$ERG_PID")
	if ! wait_ready "http://127.0.0.1:$port/healthz" "$ERG_PID"; then
		fail "erg serve did not start (it needs root for BPF):"
		tail -n 20 "$TMP/erg.log"
		return 1
	fi
	BASE_erg=http://127.0.0.1:$port
}

start_target() {
	case $1 in
	nginx) start_nginx ;;
	erg) start_erg ;;
	ergauto) start_erg auto && BASE_ergauto=$BASE_erg ;;
	esac
}

stop_target() {
	case $1 in
	nginx) stop_checked nginx "$NGINX_PID" "$TMP/nginx/error.log" ;;
	erg | ergauto) stop_checked "erg serve" "$ERG_PID" "$TMP/erg.log" ;;
	esac
}

# Does TARGET answer as the backend does, byte for byte (bodies)?
check_answers() {
	local t=$1 base_var=BASE_$1
	local base=${!base_var}
	if ! chat_body "$base" "" | cmp -s - "$TMP/want.json"; then
		fail "$t: its JSON answer differs from the backend's"
		return 1
	fi
	if ! chat_body "$base" stream | cmp -s - "$TMP/want.sse"; then
		fail "$t: its SSE stream differs from the backend's"
		return 1
	fi
}

TARGETS=()
if ! command -v nginx >/dev/null 2>&1; then
	say "nginx: not installed (apt-get install nginx-light), skipped"
elif start_nginx && check_answers nginx && stop_target nginx; then
	TARGETS+=(nginx)
fi
if ! "$ERG" serve --help >/dev/null 2>&1; then
	say "erg serve: not available, skipped"
elif [ "$(id -u)" != 0 ]; then
	say "erg serve: needs root to load its BPF programs, skipped (run make bench as root)"
elif start_erg && check_answers erg && stop_target erg; then
	TARGETS+=(erg)
fi

# ---- measuring ----
# One wrk run of DURATION; with RECORD 1 appends "MODE TARGET RPS P99_US
# ROUND" to $TMP/results.
run_wrk() {
	local mode=$1 t=$2 duration=$3 record=$4 base_var=BASE_$2 line rps p99 bad
	local args=()
	[ "$mode" = stream ] && args=(-- stream)
	[ "$t" = ergauto ] && args=(-- auto)
	wrk -t"$WRK_THREADS" -c"$CONNS" -d"$duration" --latency -s "$LUA" \
		"${!base_var}/v1/chat/completions" "${args[@]}" >"$TMP/wrk.log" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID"
	WRK_PID=
	line=$(grep '^ERG_BENCH ' "$TMP/wrk.log")
	[ "$record" = 1 ] || return 0
	if [ -z "$line" ]; then
		fail "$mode $t: wrk printed no result:"
		cat "$TMP/wrk.log"
		return 1
	fi
	rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
	p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
	bad=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(non2xx|errors)=/) { split($i, kv, "="); n += kv[2] } }
		   END { print n + 0 }' <<<"$line")
	printf '  %-6s %-8s %10.0f req/s  p99 %8.2f ms%s\n' "$mode" "$t" "$rps" \
		"$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" "$([ "$bad" = 0 ] || echo "  ($line)")"
	[ "$bad" = 0 ] || fail "$mode $t: wrk counted errors or non-2xx answers"
	echo "$mode $t $rps $p99 ${ROUND:-0}" >>"$TMP/results"
}

# Start TARGET, warm it up for a second, measure, stop it.
measure() {
	local mode=$1 t=$2
	start_target "$t" || return 1
	run_wrk "$mode" "$t" 1s 0
	run_wrk "$mode" "$t" "$DURATION" 1
	stop_target "$t"
}

median() {	# of the numbers on stdin
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan";
		else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

stat_of() {	# MODE TARGET FIELD(3 rps, 4 p99_us)
	awk -v m="$1" -v t="$2" -v f="$3" '$1 == m && $2 == t { print $f }' "$TMP/results" | median
}

# The median over rounds of erg/nginx within each round: the two runs of a
# round are back to back, so load that drifts over minutes cancels out.
paired_ratio() {	# MODE FIELD
	awk -v m="$1" -v f="$2" '$1 == m && $2 == "erg" { e[$5] = $f } $1 == m && $2 == "nginx" { n[$5] = $f }
		END { for (r in e) if ((r in n) && n[r] > 0) print e[r] / n[r] }' "$TMP/results" | median
}

say "wrk -t$WRK_THREADS -c$CONNS -d$DURATION, proxies with $PROXY_THREADS thread(s) each," \
    "backend $BACKEND_THREADS thread(s), $EVENTS SSE events per stream, $ROUNDS round(s), $cpus CPUs shared"
# other work on the machine moves every figure: say how much there was
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$TMP/results"
for mode in json stream; do
	measure "$mode" backend
	for ROUND in $(seq "$ROUNDS"); do
		for t in "${TARGETS[@]}"; do
			measure "$mode" "$t"
		done
	done
	ROUND=
done

# ---- the summary ----
echo
say "medians of $ROUNDS round(s) (backend: one run); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-6s %-8s %12s %10s\n' mode target req/s "p99 ms"
for mode in json stream; do
	for t in backend "${TARGETS[@]}"; do
		printf '  %-6s %-8s %12.0f %10.2f\n' "$mode" "$t" "$(stat_of "$mode" "$t" 3)" \
			"$(awk -v u="$(stat_of "$mode" "$t" 4)" 'BEGIN { print u / 1000 }')"
	done
	if [ "${#TARGETS[@]}" = 2 ]; then
		awk -v m="$mode" -v er="$(stat_of "$mode" erg 3)" -v nr="$(stat_of "$mode" nginx 3)" \
		    -v ep="$(stat_of "$mode" erg 4)" -v np="$(stat_of "$mode" nginx 4)" \
		    -v pr="$(paired_ratio "$mode" 3)" -v pp="$(paired_ratio "$mode" 4)" 'BEGIN {
			met = (er >= 1.2 * nr && ep <= np) ? "met" : "not met"
			printf "  %-6s %-8s %11.2fx %9.2fx   (goal: req/s >= 1.2x at p99 <= 1x: %s)\n",
				m, "erg/ngx", er / nr, ep / np, met
			printf "  %-6s %-8s %11.2fx %9.2fx   (median of the ratios within each round)\n",
				m, "paired", pr, pp }'
	fi
done
# "model": "auto" against routing by name, JSON answers, same erg, rounds
# back to back (goal: auto's req/s within 5% of by-name's).
if [[ " ${TARGETS[*]} " = *" erg "* ]]; then
	echo
	say "erg serve: \"model\": \"auto\" (steered, --policy energy, 16 budgets) vs by name, json"
	: >"$TMP/results"
	for ROUND in $(seq "$ROUNDS"); do
		measure json erg
		measure json ergauto
	done
	ROUND=
	awk -v r="$(awk '$1 == "json" && $2 == "erg" { e[$5] = $3 } $1 == "json" && $2 == "ergauto" { a[$5] = $3 }
			END { for (k in a) if ((k in e) && e[k] > 0) print a[k] / e[k] }' "$TMP/results" | median)" \
	    -v p="$(awk '$1 == "json" && $2 == "erg" { e[$5] = $4 } $1 == "json" && $2 == "ergauto" { a[$5] = $4 }
			END { for (k in a) if ((k in e) && e[k] > 0) print a[k] / e[k] }' "$TMP/results" | median)" 'BEGIN {
		printf "  json   auto/name %9.2fx req/s %6.2fx p99   (median of the ratios within each round; goal: req/s >= 0.95x: %s)\n",
			r, p, (r >= 0.95 ? "met" : "not met") }'
fi
stop_checked fast_backend "$BACKEND_PID" "$TMP/backend.log"
[ "$FAILED" = 0 ] || { say "FAILED (see above)"; exit 1; }
exit 0

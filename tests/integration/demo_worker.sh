#!/usr/bin/env bash
# The demo model worker and its HTTP layer (tests/demo): the OpenAI-style API,
# streaming, bad input, busy answers, client disconnects (no leaked thread or
# slot), CPU work per token, clean shutdown, and the load generator.
# Needs no root: it loads no BPF.
# san: yes
set -u
OUT=${ERG_OUT:-build}
W=$OUT/demo/demo_worker
L=$OUT/demo/loadgen
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

command -v curl >/dev/null || { echo "SKIP: curl is not installed (sudo apt-get install curl, or sudo make deps)"; exit 77; }
[ -x "$W" ] && [ -x "$L" ] || fail "$W or $L is not built (run make)"

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# start_worker NAME ARGS... : sets PORT and PID
start_worker() {
	local name=$1
	shift
	"$W" --port 0 --model "$name" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	PID=$!
	pids+=("$PID")
	for _ in $(seq 600); do
		PORT=$(sed -n 's/^demo_worker: model=[^ ]* port=\([0-9]*\) pid=.*/\1/p' "$tmp/$name.out")
		[ -n "$PORT" ] && break
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$PORT" ] || fail "worker $name did not start: $(cat "$tmp/$name.err")"
	grep -q "pid=$PID " "$tmp/$name.out" || fail "startup line names the wrong pid: $(cat "$tmp/$name.out")"
}

# post PORT PATH BODY : sets CODE, response in $tmp/body
post() {
	CODE=$(curl -s -m 30 -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$3" "http://127.0.0.1:$1$2")
}
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2" | tail -n1; }
tasks() { ls "/proc/$1/task" 2>/dev/null | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CHAT=/v1/chat/completions
MSG='"messages":[{"role":"user","content":"What is the energy of a token?"}]'

# Worker A: 1 ms of CPU per token, max_tokens clamped at 128.
start_worker test-a --params-m 1000 --ms-per-token-per-b 1 --max-tokens-limit 128 --seed 7 --threads 2
A=$PORT APID=$PID
base_a=$(tasks "$APID")

curl -s -m 5 "http://127.0.0.1:$A/health" >"$tmp/body" || fail "/health did not answer"
grep -q '"status":"ok"' "$tmp/body" || fail "/health: $(cat "$tmp/body")"
curl -s -m 5 "http://127.0.0.1:$A/v1/models" | grep -q '"id":"test-a"' || fail "/v1/models does not list test-a"
ok "/health and /v1/models"

# Non-streaming: usage present, 0 < completion_tokens <= max_tokens, lengths vary.
lengths=""
for _ in 1 2 3 4 5 6 7 8; do
	post "$A" $CHAT "{$MSG,\"max_tokens\":40}"
	[ "$CODE" = 200 ] || fail "chat completion: HTTP $CODE $(cat "$tmp/body")"
	grep -q '"object":"chat.completion"' "$tmp/body" || fail "not a chat.completion: $(cat "$tmp/body")"
	ct=$(num completion_tokens "$tmp/body") pt=$(num prompt_tokens "$tmp/body") tt=$(num total_tokens "$tmp/body")
	[ -n "$ct" ] && [ "$ct" -gt 0 ] && [ "$ct" -le 40 ] || fail "completion_tokens '$ct' not in 1..40"
	[ "$tt" = $((pt + ct)) ] || fail "total_tokens $tt != $pt + $ct"
	if [ "$ct" = 40 ]; then fr=length; else fr=stop; fi
	grep -q "\"finish_reason\":\"$fr\"" "$tmp/body" || fail "finish_reason should be $fr at $ct tokens"
	lengths="$lengths $ct"
done
[ "$(echo $lengths | tr ' ' '\n' | sort -u | wc -l)" -ge 3 ] || fail "output lengths do not vary:$lengths"
ok "non-streaming usage, lengths:$lengths"

post "$A" /v1/completions '{"prompt":"Once upon a time","max_tokens":10}'
[ "$CODE" = 200 ] && grep -q '"object":"text_completion"' "$tmp/body" || fail "/v1/completions: HTTP $CODE $(cat "$tmp/body")"
ct=$(num completion_tokens "$tmp/body")
[ "$ct" -ge 1 ] && [ "$ct" -le 10 ] || fail "/v1/completions completion_tokens $ct"
ok "/v1/completions"

# reasoning_budget caps the output below max_tokens.
for _ in 1 2 3 4 5; do
	post "$A" $CHAT "{$MSG,\"max_tokens\":100,\"reasoning_budget\":5}"
	ct=$(num completion_tokens "$tmp/body")
	[ "$CODE" = 200 ] && [ "$ct" -ge 1 ] && [ "$ct" -le 5 ] || fail "reasoning_budget 5 gave HTTP $CODE, $ct tokens"
done
ok "reasoning_budget"

# Streaming: SSE chunks, one per token, matching usage, ending in [DONE].
for _ in 1 2 3; do
	curl -sN -m 30 -H 'Content-Type: application/json' \
		--data-binary "{$MSG,\"max_tokens\":40,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" \
		"http://127.0.0.1:$A$CHAT" >"$tmp/sse" || fail "streaming request failed"
	[ "$(grep -v '^$' "$tmp/sse" | tail -n1)" = "data: [DONE]" ] || fail "stream does not end with data: [DONE]"
	grep -v '^$' "$tmp/sse" | grep -qv '^data: ' && fail "stream has a line that is not 'data: ...'"
	grep -q '"delta":{"role":"assistant"' "$tmp/sse" || fail "no role chunk"
	chunks=$(grep -c '"object":"chat.completion.chunk".*"delta":{"content":' "$tmp/sse")
	ct=$(num completion_tokens "$tmp/sse")
	[ -n "$ct" ] && [ "$chunks" = "$ct" ] || fail "stream had $chunks token chunks, usage says '$ct'"
	[ "$ct" -ge 1 ] && [ "$ct" -le 40 ] || fail "streamed completion_tokens $ct not in 1..40"
	grep -q '"finish_reason":"\(stop\|length\)"' "$tmp/sse" || fail "no finish_reason chunk"
done
curl -sN -m 30 --data-binary '{"prompt":"x","max_tokens":8,"stream":true}' \
	"http://127.0.0.1:$A/v1/completions" >"$tmp/sse"
chunks=$(grep -c '"object":"text_completion".*"finish_reason":null' "$tmp/sse")
[ "$(grep -v '^$' "$tmp/sse" | tail -n1)" = "data: [DONE]" ] && [ "$chunks" -ge 1 ] && [ "$chunks" -le 8 ] ||
	fail "streamed /v1/completions: $chunks chunks: $(head -c 300 "$tmp/sse")"
ok "streaming SSE ($ct tokens = $ct chunks, [DONE])"

# bad_request BODY PATTERN WHAT : expect 400 with an OpenAI-style error naming PATTERN
bad_request() {
	post "$A" "${4:-$CHAT}" "$1"
	[ "$CODE" = 400 ] || fail "$3: expected HTTP 400, got $CODE $(head -c 200 "$tmp/body")"
	grep -q '"error":{"message":"[^"]*'"$2" "$tmp/body" || fail "$3: error does not mention '$2': $(cat "$tmp/body")"
	grep -q '"type":"invalid_request_error"' "$tmp/body" || fail "$3: no error type"
}
bad_request '{"messages":[{"role":"user","content":"hi"}' 'not valid JSON' "malformed JSON"
bad_request '' 'not valid JSON' "empty body"
bad_request '{"max_tokens":5}' 'messages' "missing messages"
bad_request '{"messages":[],"max_tokens":5}' 'messages' "empty messages"
bad_request '{"messages":"hi"}' 'messages' "messages not an array"
bad_request '{"messages":[{"content":"hi"}]}' 'role' "message without role"
bad_request '{"messages":[{"role":"user","content":5}]}' 'content' "numeric content"
bad_request "{$MSG,\"max_tokens\":0}" 'max_tokens must be at least 1' "max_tokens 0"
bad_request "{$MSG,\"max_tokens\":-5}" 'max_tokens must be at least 1' "negative max_tokens"
bad_request "{$MSG,\"max_tokens\":1.5}" 'max_tokens must be an integer' "fractional max_tokens"
bad_request "{$MSG,\"max_tokens\":\"ten\"}" 'max_tokens must be an integer' "string max_tokens"
bad_request "{$MSG,\"max_completion_tokens\":0}" 'max_completion_tokens' "max_completion_tokens 0"
bad_request "{$MSG,\"stream\":\"yes\"}" 'stream must be' "string stream"
bad_request "{$MSG,\"reasoning_budget\":0}" 'reasoning_budget' "reasoning_budget 0"
bad_request "{$MSG,\"n\":3}" 'n=1' "n=3"
bad_request '[1,2,3]' 'JSON object' "array body"
bad_request '{"max_tokens":5}' 'prompt' "missing prompt" /v1/completions
head -c 100000 /dev/zero | tr '\0' '[' >"$tmp/deep"
bad_request "@$tmp/deep" 'not valid JSON' "100000-deep nesting"
{ head -c 999 /dev/zero | tr '\0' '['; head -c 999 /dev/zero | tr '\0' ']'; } >"$tmp/deep"
bad_request "@$tmp/deep" 'JSON object' "999-deep nesting"
ok "bad input gets 400 with an OpenAI-style error"

# Absurd max_tokens is clamped to the worker's limit (128), not refused.
for big in 1000000000000 1e400; do
	post "$A" $CHAT "{$MSG,\"max_tokens\":$big}"
	ct=$(num completion_tokens "$tmp/body")
	[ "$CODE" = 200 ] && [ "$ct" -ge 1 ] && [ "$ct" -le 128 ] || fail "max_tokens $big: HTTP $CODE, '$ct' tokens (limit 128)"
done
ok "huge max_tokens clamped to 128"

# HTTP-level errors, then keep-alive with pipelining on one raw connection.
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A$CHAT")
[ "$CODE" = 405 ] || fail "GET $CHAT: $CODE, expected 405"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A/nope")
[ "$CODE" = 404 ] || fail "GET /nope: $CODE, expected 404"
head -c 2000000 /dev/zero | tr '\0' ' ' >"$tmp/big"
post "$A" $CHAT "@$tmp/big"
[ "$CODE" = 413 ] || fail "2 MB body: $CODE, expected 413"
raw() { # send raw bytes, print the answer
	exec 3<>"/dev/tcp/127.0.0.1/$A" || return 1
	printf "$1" >&3
	timeout 5 cat <&3
	exec 3<&-
}
raw 'GARBAGE\r\n\r\n' | head -n1 | grep -q '^HTTP/1.1 400' || fail "garbage request line: no 400"
raw 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n' | head -n1 | grep -q '^HTTP/1.1 411' ||
	fail "POST without Content-Length: no 411"
raw 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n' | head -n1 |
	grep -q '^HTTP/1.1 400' || fail "bad Content-Length: no 400"
raw 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$tmp/pipe"
[ "$(grep -o 'HTTP/1.1 200 OK' "$tmp/pipe" | wc -l)" = 2 ] || fail "two pipelined requests on one connection: $(cat "$tmp/pipe")"
ok "405, 404, 413, 400, 411 and keep-alive pipelining"

# CPU work per token: 1 ms per token (prompt tokens included) at this size.
t0=$(cpu_ticks "$APID") toks=0
for _ in $(seq 12); do
	post "$A" $CHAT "{$MSG,\"max_tokens\":128}"
	toks=$((toks + $(num total_tokens "$tmp/body")))
done
t1=$(cpu_ticks "$APID")
hz=$(getconf CLK_TCK)
ms_tok=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$toks" 'BEGIN { printf "%.3f", d * 1000 / hz / n }')
awk -v m="$ms_tok" 'BEGIN { exit !(m >= 0.5 && m <= 2.0) }' ||
	fail "CPU per token is $ms_tok ms over $toks tokens, configured 1.0 ms"
ok "CPU per token $ms_tok ms (configured 1.0) over $toks tokens"

# Worker B: one slow slot (40 ms per token) that waits 200 ms for it.
start_worker test-b --params-m 20000 --threads 1 --queue-ms 200 --seed 3
B=$PORT BPID=$PID
base_b=$(tasks "$BPID")
# A long stream (4000 tokens: minutes), cut by its client once it has had
# a few tokens: however slowly a loaded machine streams them, the client
# disconnects mid-stream, with the slot busy all along.
curl -sN --data-binary "{$MSG,\"max_tokens\":4000,\"stream\":true}" \
	"http://127.0.0.1:$B$CHAT" >"$tmp/cut" 2>/dev/null &
cpid=$!
for _ in $(seq 600); do
	[ "$(grep -c '"delta":{"content":' "$tmp/cut")" -ge 3 ] && break
	sleep 0.1
done
[ "$(tasks "$BPID")" -gt "$base_b" ] || fail "no connection thread while a stream runs"
post "$B" $CHAT "{$MSG,\"max_tokens\":2}"
[ "$CODE" = 503 ] && grep -q '"code":"server_busy"' "$tmp/body" || fail "busy worker: HTTP $CODE $(cat "$tmp/body"), expected 503"
kill "$cpid"
wait "$cpid" 2>/dev/null
got=$(grep -c '"delta":{"content":' "$tmp/cut")
[ "$got" -ge 3 ] || fail "the cut stream got only $got tokens in 60 s before the disconnect"
grep -q 'DONE' "$tmp/cut" && fail "the cut stream should not have finished"
settled=0
for _ in $(seq 300); do
	curl -s -m 5 "http://127.0.0.1:$B/health" >"$tmp/h"
	if grep -q '"active":0' "$tmp/h" && grep -q '"cancelled":1' "$tmp/h" && [ "$(tasks "$BPID")" = "$base_b" ]; then
		settled=1
		break
	fi
	sleep 0.1
done
[ "$settled" = 1 ] || fail "after the disconnect: $(cat "$tmp/h"), $(tasks "$BPID") tasks (baseline $base_b)"
c0=$(cpu_ticks "$BPID")
sleep 0.5
c1=$(cpu_ticks "$BPID")
[ $((c1 - c0)) -le 5 ] || fail "worker B still burns CPU after the disconnect ($((c1 - c0)) ticks in 0.5 s)"
post "$B" $CHAT "{$MSG,\"max_tokens\":2}"
[ "$CODE" = 200 ] || fail "request after the disconnect: HTTP $CODE $(cat "$tmp/body")"
# Non-streaming client that gives up once its request is generating:
# generation stops too.
curl -s --data-binary "{$MSG,\"max_tokens\":4000}" "http://127.0.0.1:$B$CHAT" >/dev/null 2>&1 &
cpid=$!
for _ in $(seq 300); do
	curl -s -m 5 "http://127.0.0.1:$B/health" | grep -q '"active":1' && break
	sleep 0.1
done
kill "$cpid"
wait "$cpid" 2>/dev/null
settled=0
for _ in $(seq 300); do
	curl -s -m 5 "http://127.0.0.1:$B/health" >"$tmp/h"
	grep -q '"active":0' "$tmp/h" && grep -q '"cancelled":2' "$tmp/h" && { settled=1; break; }
	sleep 0.1
done
[ "$settled" = 1 ] || fail "non-streaming disconnect not cancelled: $(cat "$tmp/h")"
ok "disconnects stop generation ($got tokens sent), free the slot, threads back to $base_b; busy -> 503"

# Load generator: 3 s of Poisson load, streaming and not, no failures.
"$L" --url "http://127.0.0.1:$A" --rate 5 --duration 3 --max-tokens 32 --stream --seed 2 >"$tmp/lg" 2>&1 ||
	fail "loadgen (stream): $(cat "$tmp/lg")"
grep -q ' 0 failed, 0 aborted' "$tmp/lg" || fail "loadgen (stream): $(cat "$tmp/lg")"
n=$(sed -n 's/.* \([0-9]*\) ok, .*/\1/p' "$tmp/lg")
[ "${n:-0}" -ge 3 ] || fail "loadgen (stream) finished only '$n' requests: $(cat "$tmp/lg")"
echo "  $(cat "$tmp/lg")"
"$L" --url "http://localhost:$A/v1/completions,http://127.0.0.1:$A" --rate 5 --duration 3 --max-tokens 32 >"$tmp/lg" 2>&1 ||
	fail "loadgen: $(cat "$tmp/lg")"
grep -q ' 0 failed, 0 aborted' "$tmp/lg" || fail "loadgen: $(cat "$tmp/lg")"
echo "  $(cat "$tmp/lg")"
"$L" --url http://192.0.2.1:80 --rate 1 --duration 1 >"$tmp/lg" 2>&1
[ $? = 2 ] && grep -q 'loopback' "$tmp/lg" || fail "loadgen accepted a non-loopback URL: $(cat "$tmp/lg")"
ok "loadgen"

# Both workers are still healthy after all of it, and stop cleanly on SIGTERM.
[ "$(tasks "$APID")" = "$base_a" ] || fail "worker A has $(tasks "$APID") tasks, baseline $base_a"
for p in "$APID" "$BPID"; do
	kill -0 "$p" 2>/dev/null || fail "worker $p died"
	kill -TERM "$p"
	wait "$p"
	rc=$?
	[ "$rc" = 0 ] || fail "worker $p exited with $rc after SIGTERM: $(cat "$tmp"/*.err)"
done
grep -q 'stopped by signal 15' "$tmp/test-a.out" || fail "no shutdown line from worker A"
ok "SIGTERM: clean exit"

# Nothing listens on worker A's port now: loadgen must count failures.
"$L" --url "http://127.0.0.1:$A" --rate 20 --duration 0.5 >"$tmp/lg" 2>&1
[ $? = 1 ] && grep -q ' 0 ok, [1-9][0-9]* failed' "$tmp/lg" || fail "loadgen did not report failures: $(cat "$tmp/lg")"
ok "loadgen reports failures against a closed port"
echo "PASS demo_worker"

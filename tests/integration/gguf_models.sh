#!/usr/bin/env bash
# The real engine and the synthetic model ladder:
#   - gguf-writer is deterministic (same arguments, same sha256; another seed,
#     another file) and rejects bad arguments with exit status 2;
#   - the ladder's parameter counts (as llama.cpp itself counts them) step up
#     by at least 2.5x and match what the writer reports;
#   - llama.cpp loads every model and generates the tokens asked for, with a
#     plain and a chat-formatted prompt;
#   - CPU seconds per token rise with model size (docs/theory.md §1: ~2N FLOPs/token);
#   - erg-llm-worker serves the OpenAI API with the engine: usage counts,
#     random (lognormal) lengths, streaming, bad input answered with 400, a
#     client that disconnects mid-stream leaves no busy slot, SIGTERM stops it.
# Installs the engine with `make engine` (npm) when needed; skips only when
# that install cannot be done here.
set -u
root=${ERG_ROOT:?}
out=${ERG_OUT:?}
case $out in /*) ;; *) out=$root/$out ;; esac
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "!!! SKIP gguf_models: $* !!!"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! command -v npm >/dev/null 2>&1 && [ ! -e "$root/node_modules/.erg-engine-installed" ]; then
	skip "npm is missing, so the llama.cpp engine cannot be installed (sudo apt-get install npm)"
fi
t0=$(date +%s.%N)
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$root" OUT="$out" "$@"; }
if ! mk engine >"$tmp/make.log" 2>&1; then
	cat "$tmp/make.log"
	if [ ! -e "$root/node_modules/.erg-engine-installed" ]; then
		skip "\`make engine\` could not install the llama.cpp engine from npm (log above)"
	fi
	fail "make engine: the engine is installed but building against it failed"
fi
t1=$(date +%s.%N)
mk models >"$tmp/models.log" 2>&1 || { cat "$tmp/models.log"; fail "make models"; }
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "engine ready in %.1f s, models in %.1f s\n", b - a, c - b }'

writer=$out/models/gguf-writer
bench=$out/models/llm-bench
[ -x "$writer" ] || fail "missing $writer"
[ -x "$bench" ] || fail "missing $bench"

# --- writer determinism and argument checks ----------------------------------
for ty in q8_0 q4_0 f16; do
	"$writer" --dim 256 --layers 2 --vocab 4000 --type $ty --seed 7 -o "$tmp/a.gguf" >/dev/null || fail "writer ($ty)"
	"$writer" --dim 256 --layers 2 --vocab 4000 --type $ty --seed 7 -o "$tmp/b.gguf" >/dev/null || fail "writer ($ty)"
	"$writer" --dim 256 --layers 2 --vocab 4000 --type $ty --seed 8 -o "$tmp/c.gguf" >/dev/null || fail "writer ($ty)"
	a=$(sha256sum <"$tmp/a.gguf") b=$(sha256sum <"$tmp/b.gguf") c=$(sha256sum <"$tmp/c.gguf")
	[ "$a" = "$b" ] || fail "writer not deterministic for $ty: $a vs $b"
	[ "$a" != "$c" ] || fail "writer ignores --seed for $ty"
	"$bench" -n 4 -t 1 "$tmp/a.gguf" >"$tmp/small.txt" || fail "llama.cpp cannot run the $ty model"
	grep -q 'tokens=4 ' "$tmp/small.txt" || fail "$ty model: $(cat "$tmp/small.txt")"
done
echo "writer: byte-identical output for q8_0, q4_0, f16; --seed changes it; llama.cpp runs all three"
"$writer" --params-m 130 --seed 1 -o "$tmp/again.gguf" >/dev/null || fail "writer --params-m 130"
cmp -s "$tmp/again.gguf" "$out/models/erg-130m.gguf" || fail "writer output differs from the ladder model built by make"
for bad in "--type q3_k -o x" "--params-m abc -o x" "--dim 100 --layers 2 -o x" "--dim 256" "--vocab 10 --params-m 30 -o x" "extra"; do
	# shellcheck disable=SC2086
	"$writer" $bad >/dev/null 2>"$tmp/err"
	rc=$?
	[ $rc = 2 ] || fail "writer $bad: exit $rc, want 2"
	[ -s "$tmp/err" ] || fail "writer $bad: no error message"
done
echo "writer: bad arguments exit 2 with a message"

# --- the ladder on the engine ---------------------------------------------------
models=$(mk models-list | tr ' ' '\n' | grep . | sed 's/.*erg-\([0-9]*\)m.gguf/\1 &/' | sort -n | cut -d' ' -f2)
n=$(echo "$models" | wc -l)
[ "$n" -ge 3 ] || fail "want at least 3 ladder models, found $n"
# One thread: CPU time per token is then the work itself, not ggml's
# spin-waits, which grow when other processes share the cores.
# shellcheck disable=SC2086
"$bench" -n 32 -t 1 $models >"$tmp/bench.txt" || { cat "$tmp/bench.txt"; fail "llm-bench on the ladder"; }
cat "$tmp/bench.txt"
[ "$(grep -c 'tokens=32 ' "$tmp/bench.txt")" = "$n" ] || fail "not every model generated 32 tokens"
"$bench" -n 8 --chat -p "What is the energy of a token?" "$(echo "$models" | head -n1)" >"$tmp/chat.txt" ||
	fail "chat-formatted generation"
grep -q 'tokens=8 ' "$tmp/chat.txt" || fail "chat: $(cat "$tmp/chat.txt")"
# The chat template adds its markers around the question.
pt=$(sed -n 's/.*prompt_tokens=\([0-9]*\).*/\1/p' "$tmp/chat.txt")
[ "$pt" -gt 8 ] || fail "chat prompt has only $pt tokens"

prev_p=0 prev_c=0 i=0
for m in $models; do
	i=$((i + 1))
	line=$(sed -n "${i}p" "$tmp/bench.txt")
	p=$(echo "$line" | sed -n 's/.*params=\([0-9]*\).*/\1/p')
	c=$(echo "$line" | sed -n 's/.*cpu_s_per_token=\([0-9.]*\).*/\1/p')
	[ -n "$p" ] || fail "cannot parse: $line"
	[ -n "$c" ] || fail "cannot parse: $line"
	w=$("$writer" --params-m "$(basename "$m" | sed 's/erg-\([0-9]*\)m.gguf/\1/')" --dry-run | sed -n 's/^params \([0-9]*\).*/\1/p')
	[ "$w" = "$p" ] || fail "$m: writer says $w parameters, llama.cpp counts $p"
	if [ "$prev_p" -gt 0 ]; then
		awk -v a="$prev_p" -v b="$p" 'BEGIN { exit !(b >= 2.5 * a) }' ||
			fail "ladder step $prev_p -> $p parameters is under 2.5x"
		awk -v a="$prev_c" -v b="$c" 'BEGIN { exit !(b > a) }' ||
			fail "CPU s/token does not rise with size: $prev_c (N=$prev_p) -> $c (N=$p)"
	fi
	prev_p=$p prev_c=$c
done
echo "ladder: $n models, each >= 2.5x the parameters of the one below, CPU s/token rising with N"

# --- the OpenAI-compatible worker -----------------------------------------------
worker=$out/llm/erg-llm-worker
if [ ! -f "$root/tests/demo/openai_http.h" ]; then
	echo "note: tests/demo/openai_http.h is missing, so erg-llm-worker is not built; worker checks not run"
	exit 0
fi
[ -x "$worker" ] || fail "missing $worker"
small=$(echo "$models" | head -n1)
"$worker" --model-file "$small" --port 0 --seed 3 --max-tokens-limit 64 >"$tmp/worker.out" 2>"$tmp/worker.err" &
wpid=$!
trap 'kill $wpid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
	grep -q 'port=' "$tmp/worker.out" && break
	kill -0 $wpid 2>/dev/null || { cat "$tmp/worker.err"; fail "erg-llm-worker exited at start"; }
	sleep 0.1
done
port=$(sed -n 's/.* port=\([0-9]*\).*/\1/p' "$tmp/worker.out")
[ -n "$port" ] || fail "erg-llm-worker printed no port: $(cat "$tmp/worker.out" "$tmp/worker.err")"
PORT=$port MODEL=$(basename "$small" .gguf) python3 - <<'PY' || fail "worker checks (above)"
import json, os, socket, sys, time
port, model = int(os.environ["PORT"]), os.environ["MODEL"]

def req(method, path, body=None, raw=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    if b"chunked" in head.lower():
        body, rest2 = b"", rest
        while rest2:
            n, _, rest2 = rest2.partition(b"\r\n")
            n = int(n, 16)
            if n == 0:
                break
            body += rest2[:n]
            rest2 = rest2[n + 2:]
        rest = body
    return status, rest.decode("utf-8")

def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)

st, b = req("GET", "/health")
check(st == 200 and json.loads(b)["status"] == "ok", f"/health: {st} {b}")
st, b = req("GET", "/v1/models")
check(st == 200 and json.loads(b)["data"][0]["id"] == model, f"/v1/models: {st} {b}")

lengths = []
for i in range(8):
    st, b = req("POST", "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "How much energy does a token take?"}], "max_tokens": 48})
    check(st == 200, f"chat: {st} {b}")
    j = json.loads(b)
    u = j["usage"]
    check(1 <= u["completion_tokens"] <= 48, f"completion_tokens {u['completion_tokens']} outside 1..48")
    check(u["prompt_tokens"] > 8 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], f"usage {u}")
    check(isinstance(j["choices"][0]["message"]["content"], str), "chat content is not a string")
    want = "length" if u["completion_tokens"] == 48 else "stop"
    check(j["choices"][0]["finish_reason"] == want, f"finish_reason {j['choices'][0]['finish_reason']}, want {want}")
    lengths.append(u["completion_tokens"])
check(len(set(lengths)) >= 3, f"output lengths should vary (lognormal): {lengths}")
print(f"worker: chat lengths for max_tokens=48: {lengths}")

st, b = req("POST", "/v1/completions", {"prompt": "once upon a time", "max_tokens": 32, "stream": True,
                                         "stream_options": {"include_usage": True}})
check(st == 200, f"stream: {st}")
events = [l[6:] for l in b.split("\n") if l.startswith("data: ")]
check(events and events[-1] == "[DONE]", "stream does not end with [DONE]")
chunks = [json.loads(e) for e in events[:-1]]
usage = [c["usage"] for c in chunks if c.get("usage")]
texts = [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason") is None]
check(len(usage) == 1 and usage[0]["completion_tokens"] == len(texts),
      f"stream: {len(texts)} token chunks, usage {usage}")
print(f"worker: streamed {len(texts)} tokens, usage agrees")

for body, raw, what in [(None, b"{bad json", "malformed JSON"),
                        ({"max_tokens": 4}, None, "missing messages"),
                        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, None, "max_tokens 0"),
                        ({"messages": "hello"}, None, "messages not an array")]:
    st, b = req("POST", "/v1/chat/completions", body, raw)
    check(st == 400 and "error" in json.loads(b), f"{what}: want 400 with an error, got {st} {b}")
st, b = req("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 10**12})
check(st == 200 and json.loads(b)["usage"]["completion_tokens"] <= 64, f"huge max_tokens not clamped: {st} {b}")
print("worker: bad requests get 400, a huge max_tokens is clamped")

# A client that goes away mid-stream: the slot must come back.
for _ in range(3):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = json.dumps({"prompt": "x", "max_tokens": 64, "stream": True}).encode()
    s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    s.recv(100)
    s.close()
for _ in range(50):
    h = json.loads(req("GET", "/health")[1])
    if h["active"] == 0:
        break
    time.sleep(0.1)
check(h["active"] == 0, f"a generation slot is still busy after the clients left: {h}")
st, b = req("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "still there?"}], "max_tokens": 4})
check(st == 200, f"request after disconnects: {st} {b}")
print(f"worker: disconnects leave no busy slot ({h['cancelled']} cancelled), next request served")
PY
kill -TERM $wpid
for _ in $(seq 100); do kill -0 $wpid 2>/dev/null || break; sleep 0.1; done
wait $wpid
rc=$?
[ $rc = 0 ] || { cat "$tmp/worker.err"; fail "erg-llm-worker exited $rc on SIGTERM"; }
grep -q 'stopped by signal' "$tmp/worker.out" || fail "erg-llm-worker did not report its stop"
echo "worker: SIGTERM stops it cleanly: $(tail -n1 "$tmp/worker.out")"
exit 0

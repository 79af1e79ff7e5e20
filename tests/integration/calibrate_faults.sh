#!/usr/bin/env bash
# erg calibrate against workers it did not write (tests/integration/
# calibrate_faults.py, which answers HTTP 500 to every Nth request):
# - a refused request is retried with a new seed, the retry is printed, and
#   the run completes with every request answered and the scenario written;
# - with --retries 0 the refused request is skipped, said so (model, how many,
#   the last error), and the fit still written from the answered ones;
# - --body-extra reaches the server in every body, --path picks the endpoint
#   (llama.cpp's /completion: a prompt, tokens_predicted read back);
# - a worker that refuses everything fails the run (exit 1) naming the model
#   and why, after the other model was still measured; nothing is written.
# Bad --path/--body-extra/--retries values are usage errors (exit 2, one line
# naming the option) without BPF.
# san: yes
set -u
: "${ERG:?ERG must point at the erg binary}" "${ERG_ROOT:?ERG_ROOT must be the repo root}"
. "$ERG_ROOT/tests/integration/testlib.bash"
make_tmp
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm_tmp
}
trap cleanup EXIT
server="$ERG_ROOT/tests/integration/calibrate_faults.py"
w2="--worker a:1:8080:1e9 --worker b:2:8081:2e9"

# ---- usage errors: exit 2, one line naming the option ----
usage_error() { # WANT ARGS...
	local want=$1
	shift
	"$ERG" calibrate $w2 "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	[ "$rc" = 2 ] || { cat "$tmp/err"; fail "'erg calibrate $*' exited $rc, want 2"; }
	[ "$(wc -l <"$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "'erg calibrate $*' printed more than one line"; }
	grep -qF -- "$want" "$tmp/err" || { cat "$tmp/err"; fail "'erg calibrate $*' does not say '$want'"; }
	[ ! -s "$tmp/out" ] || fail "'erg calibrate $*' printed on stdout"
}
for v in '' '{' '[1]' '"x"' 'null' '{"a":1}x' '{"stream":true}'; do
	usage_error "--body-extra" --body-extra "$v"
done
for v in '' 'v1/x' '/a b' "$(printf '/a\nb')"; do
	usage_error "--path" --path "$v"
done
for v in -1 101 x; do
	usage_error "--retries" --retries "$v"
done
"$ERG" calibrate --help >"$tmp/help" || fail "calibrate --help exited $?"
for o in --path --body-extra --retries; do
	grep -q -- "$o" "$tmp/help" || fail "calibrate --help does not list $o"
done
ok "erg calibrate: bad --path, --body-extra and --retries are one-line usage errors"

require_bpf
command -v python3 >/dev/null || skip "the usage checks passed; the runs need python3"

start_server() { # name params-m fail-every -> "pid port"
	python3 "$server" --model "$1" --params-m "$2" --fail-every "$3" --record "$tmp/$1.bodies" \
		>"$tmp/$1.log" 2>&1 &
	for _ in $(seq 100); do
		grep -q "port=" "$tmp/$1.log" && break
		sleep 0.1
	done
	local port
	port=$(sed -n 's/^port=\([0-9]*\) .*/\1/p' "$tmp/$1.log")
	[ -n "$port" ] || { cat "$tmp/$1.log"; fail "test server $1 did not start"; }
	echo "$! $port"
}
stop_servers() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	pids=()
	rm -f "$tmp"/*.bodies
}
calibrate() { # name: the rest are erg calibrate's arguments; exit status in $rc
	local name=$1
	shift
	"$ERG" calibrate --energy-source model --requests 4 --max-tokens 16 --json "$@" \
		>"$tmp/$name.json" 2>"$tmp/$name.err"
	rc=$?
}

# ---- 1: every third request refused; retries answer all of them ----
read -r p1 port1 <<<"$(start_server small 300 3)"
read -r p2 port2 <<<"$(start_server large 1300 3)"
pids+=("$p1" "$p2")
calibrate retry --out "$tmp/retry.ini" --body-extra '{"temperature":0}' \
	--worker "small:$p1:$port1:300M" --worker "large:$p2:$port2:1300M"
[ "$rc" = 0 ] || { cat "$tmp/retry.err"; fail "calibrate with retries exited $rc, want 0"; }
cat "$tmp/retry.err"
grep -q "small: request 3 of 4 failed: HTTP 500: .*refused.*; retry 1 of 3 with seed 5" "$tmp/retry.err" \
	|| fail "no progress line for small's refused request and its retry"
grep -q "large: request 3 of 4 failed: HTTP 500" "$tmp/retry.err" || fail "no retry line for large"
grep -q "small: .* J/token; 1 retry, 0 of 4 requests skipped" "$tmp/retry.err" || fail "small's result does not count its retry"
python3 - "$tmp" <<'PY' || fail "retry run checks"
import json, math, sys
tmp = sys.argv[1]
d = json.load(open(tmp + "/retry.json"))
for m in d["models"]:
    assert m["requests"] == 4 and m["retries"] == 1 and m["skipped"] == 0, m
    assert m["completion_tokens"] == 64 and m["joules_per_token"] > 0, m
    assert m["failed_seconds"] > 0, m
assert math.isfinite(d["eta"]) and d["eta"] > 0, d
for name in ("small", "large"):
    rec = [json.loads(l) for l in open("%s/%s.bodies" % (tmp, name))]
    assert [r["status"] for r in rec] == [200, 200, 500, 200, 200], rec
    for r in rec:
        assert r["path"] == "/v1/chat/completions", r
        b = r["body"]
        assert b["temperature"] == 0 and b["model"] == name and b["stream"] is False, b
        assert b["max_tokens"] == 16 and b["messages"][0]["role"] == "user", b
    seeds = [r["body"]["seed"] for r in rec]
    assert seeds == [1, 2, 3, 5, 4], seeds  # the retry of request 3 has a seed of its own
    # the retry asks the same question again
    assert rec[2]["body"]["messages"] == rec[3]["body"]["messages"], rec
print("retry run: eta %.4g FLOP/J, R^2 %.4f; every body had temperature 0" % (d["eta"], d["r2"]))
PY
grep -q "(1 retried, 0 skipped)" "$tmp/retry.ini" || fail "the scenario does not note the retries"
"$ERG" sim --scenario "$tmp/retry.ini" --slots 50 --quiet >"$tmp/sim.txt" \
	|| fail "erg sim on the scenario of the retry run exited $?"
ok "a refused request is retried with a new seed and printed; all answered; --body-extra reached every body"
stop_servers

# ---- 2: --retries 0 skips; --path /completion is llama.cpp's own API ----
read -r p1 port1 <<<"$(start_server small 300 3)"
read -r p2 port2 <<<"$(start_server large 1300 3)"
pids+=("$p1" "$p2")
calibrate skip --retries 0 --path /completion --out "$tmp/skip.ini" \
	--worker "small:$p1:$port1:300M" --worker "large:$p2:$port2:1300M"
[ "$rc" = 0 ] || { cat "$tmp/skip.err"; fail "calibrate --retries 0 exited $rc, want 0"; }
cat "$tmp/skip.err"
grep -q "small: request 3 of 4 skipped after 1 attempt: HTTP 500" "$tmp/skip.err" || fail "no line for the skipped request"
grep -q "small: .* J/token; 0 retries, 1 of 4 requests skipped, .* s of failed attempts left out; last error: HTTP 500" "$tmp/skip.err" \
	|| fail "small's result does not say how many were skipped and the last error"
[ -s "$tmp/skip.ini" ] || fail "no scenario written after a skipped request"
python3 - "$tmp" <<'PY' || fail "skip run checks"
import json, sys
tmp = sys.argv[1]
d = json.load(open(tmp + "/skip.json"))
for m in d["models"]:
    assert m["requests"] == 3 and m["skipped"] == 1 and m["retries"] == 0, m
    assert m["completion_tokens"] == 48, m  # tokens_predicted of the three answered
for name in ("small", "large"):
    rec = [json.loads(l) for l in open("%s/%s.bodies" % (tmp, name))]
    assert len(rec) == 4, rec
    for r in rec:
        assert r["path"] == "/completion" and isinstance(r["body"]["prompt"], str), r
        assert "messages" not in r["body"] and "temperature" not in r["body"], r
print("skip run: eta %.4g FLOP/J from 3 of 4 requests per model" % d["eta"])
PY
ok "--retries 0: the refused request is skipped and said so, the fit is written; --path /completion used"
stop_servers

# ---- 3: a worker that refuses everything fails the run, by name ----
read -r p1 port1 <<<"$(start_server small 300 0)"
read -r p2 port2 <<<"$(start_server large 1300 1)"
pids+=("$p1" "$p2")
calibrate fail --retries 1 --out "$tmp/fail.ini" \
	--worker "small:$p1:$port1:300M" --worker "large:$p2:$port2:1300M"
cat "$tmp/fail.err"
[ "$rc" = 1 ] || fail "calibrate with a worker refusing everything exited $rc, want 1"
grep -q "small: .* J/token" "$tmp/fail.err" || fail "the answering model was not measured"
grep -q "large: 0 of 4 requests answered, at least 2 needed; too few to fit" "$tmp/fail.err" \
	|| fail "large's own line does not say it has too few"
tail -n 2 "$tmp/fail.err" | grep -q "large: too few samples to fit: 0 of 4 requests answered, at least 2 needed; last error: HTTP 500" \
	|| fail "the end of the output does not name large and why"
tail -n 1 "$tmp/fail.err" | grep -q "nothing written: 1 of 2 models" || fail "no closing line"
! grep -q "small: too few" "$tmp/fail.err" || fail "small is blamed"
[ ! -e "$tmp/fail.ini" ] || fail "a scenario was written from a failed run"
[ "$(wc -l <"$tmp/large.bodies")" = 8 ] || fail "large got $(wc -l <"$tmp/large.bodies") requests, want 4 x 2 attempts"
ok "a worker refusing every request: exit 1 naming it and why, the other still measured, nothing written"
exit 0

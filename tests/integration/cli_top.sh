#!/usr/bin/env bash
# erg top on the shared command-line layer: messages that name
# the long option and print no control characters, ranges on every value,
# options after the operands, --help on stdout; a zombie --pid said as such;
# exact *_nj integers above 2^53; signals at any moment end with the
# summary; a closed stdout exits 0; data loss counters on every total line.
# san: yes
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# Only printable ASCII and newlines: no NUL, no escape codes from a value.
printable() { LC_ALL=C python3 -c 'import sys; d=sys.stdin.buffer.read(); sys.exit(any(b != 10 and not 32 <= b < 127 for b in d))'; }

expect_usage() { # expected-substring args...
	local want=$1; shift
	local rc
	"$ERG" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
	[ "$rc" = 2 ] || fail "erg $*: exited $rc, expected 2 ($(cat "$tmp/err"))"
	[ -s "$tmp/out" ] && fail "erg $*: printed on stdout: $(cat "$tmp/out")"
	[ "$(wc -l <"$tmp/err")" = 1 ] || fail "erg $*: expected one line, got: $(cat "$tmp/err")"
	printable <"$tmp/err" || fail "erg $*: message has control characters: $(od -c "$tmp/err" | head -3)"
	grep -qF -- "$want" "$tmp/err" || fail "erg $*: message lacks '$want': $(cat "$tmp/err")"
	ok "erg $*: $(cat "$tmp/err")"
}

sleep 300 & sleeper=$!; pids+=("$sleeper")

# A missing value names the long option (it printed -G, -P, a NUL byte or
# control characters before).
for opt in supply-watts supply-trace storage-joules slot journal libcuda gpu-idle-watts gpu-active-watts \
	   idle-watts watts-per-core sysfs-root procfs-root request-idle energy-source pid comm cgroup config; do
	expect_usage "option '--$opt' needs a value" top --pid "$sleeper" "--$opt"
done
expect_usage "option '--json' takes no value" top --pid "$sleeper" --json=3
expect_usage "option '--no-gpu' takes no value" top --pid "$sleeper" --no-gpu=1
expect_usage "unknown option '--frobnicate'" top --pid "$sleeper" --frobnicate
expect_usage "unknown option '-Z'" top --pid "$sleeper" -Z

# Ranges, whole strings, no NaN or infinities, no float-cast overflow.
expect_usage "interval '1e300': expected a duration from 0.01 s to 86400 s" top --json 1e300 1 --pid "$sleeper"
expect_usage "interval 'nan'" top --pid "$sleeper" nan
expect_usage "interval '0'" top --pid "$sleeper" 0
expect_usage "count '0': expected intervals, a whole number from 1 to 1000000000" top --pid "$sleeper" 1 0
expect_usage "count '1e10'" top --pid "$sleeper" 1 1e10
expect_usage "count '2x'" top --pid "$sleeper" 1 2x
expect_usage "count '99999999999'" top --pid "$sleeper" 1 99999999999
expect_usage "unexpected argument '3'" top --pid "$sleeper" 1 2 3
for v in inf nan 1e300 -1 0 12abc " 1"; do
	expect_usage "--idle-watts '$v'" top --pid "$sleeper" --idle-watts "$v"
	expect_usage "--watts-per-core '$v'" top --pid "$sleeper" --watts-per-core "$v"
done
expect_usage "--idle-watts needs a value" top --pid "$sleeper" --idle-watts ""
expect_usage "at most 1e+06" top --pid "$sleeper" --idle-watts 2e6
expect_usage "--supply-watts 'inf'" top --pid "$sleeper" --supply-watts inf
expect_usage "--storage-joules '-5'" top --pid "$sleeper" --supply-watts 5 --storage-joules -5
expect_usage "--slot '0'" top --pid "$sleeper" --supply-watts 5 --slot 0
expect_usage "--gpu-idle-watts 'nan'" top --pid "$sleeper" --gpu-idle-watts 70,nan
expect_usage "--gpu-active-watts '1e300'" top --pid "$sleeper" --gpu-active-watts 1e300
expect_usage "--request-idle '1e300'" top --pid "$sleeper" --request-idle 1e300
expect_usage "--energy-source 'nuclear': expected one of auto, rapl, hwmon, model" top --pid "$sleeper" -e nuclear
expect_usage "--sysfs-root '/nonexistent': no such directory" top --pid "$sleeper" --sysfs-root /nonexistent
expect_usage "--procfs-root '/etc/passwd': no such directory" top --pid "$sleeper" --procfs-root /etc/passwd
# Untrusted text is echoed escaped.
expect_usage "--sysfs-root '\\x1b[2Jx': no such directory" top --pid "$sleeper" --sysfs-root $'\e[2Jx'
expect_usage "\\x1b]0;" top --pid "$sleeper" --energy-source $'\e]0;pwned\a'
expect_usage "--pid '12abc': '12abc' is not a process id" top --pid 12abc
expect_usage "--pid 999999999: no such process" top --pid 999999999

# A zombie is named as one.
python3 -c '
import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
print(pid, flush=True)
time.sleep(300)' >"$tmp/zombie" & pids+=($!)
for _ in $(seq 100); do
	zpid=$(cat "$tmp/zombie" 2>/dev/null)
	[ -n "$zpid" ] && grep -q ') Z ' "/proc/$zpid/stat" 2>/dev/null && break
	sleep 0.05
done
expect_usage "process $zpid is a zombie (state Z): it has exited and waits for its parent to reap it" top --pid "$zpid"

# --help: stdout, exit 0, and it lists every long option top accepts.
out=$("$ERG" top --help 2>"$tmp/err"); rc=$?
[ "$rc" = 0 ] && [ ! -s "$tmp/err" ] || fail "erg top --help: exit $rc, stderr: $(cat "$tmp/err")"
for opt in pid comm cgroup config energy-source idle-watts watts-per-core sysfs-root procfs-root json raw-tp \
	   no-requests request-idle verbose help supply-watts supply-trace storage-joules slot journal no-fsync \
	   libcuda gpu-idle-watts gpu-active-watts no-nvml no-gpu; do
	printf '%s\n' "$out" | grep -q -- "--$opt" || fail "erg top --help does not mention --$opt"
done
printf '%s\n' "$out" | grep -q 'SIGHUP' || fail "erg top --help says what the signals do"
"$ERG" top -h | grep -q '^usage: erg top' || fail "erg top -h prints the usage"
ok "--help on stdout, exit 0, every long option and the signals documented"

require_bpf

# Options after the operands (getopt permutes).
out=$(timeout 30 "$ERG" top 0.2 2 --pid "$sleeper"=sl --json 2>"$tmp/err"); rc=$?
[ "$rc" = 0 ] || fail "erg top 0.2 2 --pid P --json exited $rc: $(cat "$tmp/err")"
[ "$(printf '%s\n' "$out" | grep -c '"type":"total"')" = 2 ] || fail "expected 2 total lines: $out"
ok "operands before options"

# procs (workers kept one release), dropped_events and gpu_races everywhere.
printf '%s\n' "$out" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
models = [l for l in lines if l["type"] == "model"]
totals = [l for l in lines if l["type"] in ("total", "summary")]
assert models and all(m["procs"] == m["workers"] == 1 for m in models), models
assert len(totals) == 3, totals
for t in totals:
    assert isinstance(t["dropped_events"], int) and isinstance(t["gpu_races"], int), t
' || fail "model lines carry procs (= workers), total and summary lines dropped_events and gpu_races"
ok "procs, dropped_events, gpu_races in the NDJSON"
out=$(timeout 30 "$ERG" top --pid "$sleeper" 0.2 1 2>/dev/null)
[ "$(printf '%s\n' "$out" | grep -c '^data loss: 0 socket events dropped')" = 2 ] ||
	fail "the table and its summary say the data loss: $out"
ok "data loss line in the table and the summary"

# Exact nanojoules past 2^53: about 2 MW modelled, 0.5 s intervals, so the
# last dozen total lines are above 9.007e15 nJ.
"$ERG_OUT/fixtures/busy_worker" --seconds 60 >"$tmp/busy" & pids+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/busy" && break; sleep 0.05; done
busy=$(awk '{print $2}' "$tmp/busy")
timeout 60 "$ERG" top --pid "$busy" --energy-source model --idle-watts 1e6 --watts-per-core 1e6 --no-requests \
	--json 0.5 24 >"$tmp/big" 2>"$tmp/err" || fail "erg top at 2 MW failed: $(cat "$tmp/err")"
python3 - "$tmp/big" <<'EOF' || fail "*_nj fields exact above 2^53"
import json, re, sys
big = 0
for raw in open(sys.argv[1]):
    line = json.loads(raw)
    for k, v in line.items():
        if k.endswith("_nj") or k == "nj":
            assert isinstance(v, int), (k, v)
            assert re.search(r'"%s":%d[,}]' % (k, v), raw), (k, raw)
    if line["type"] in ("total", "summary"):
        t, a, u = line["total_nj"], line["attributed_nj"], line["unattributed_nj"]
        assert a + u == t, "attributed %d + unattributed %d != total %d" % (a, u, t)
        big += t > 2**53
assert big >= 3, "only %d total lines above 2^53" % big
print("ok: attributed_nj + unattributed_nj == total_nj on %d lines above 2^53" % big)
EOF
ok "exact nanojoules above 2^53"

# Signals: each ends with the summary and exit 0, sent as soon as erg has
# its handlers (that is while the BPF programs load); SIGUSR1 is ignored.
sigbit() { # signal number -> is its handler installed in pid $1
	local mask
	mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$mask" ] && (( (16#$mask >> ($2 - 1)) & 1 ))
}
for sig in INT TERM HUP QUIT; do
	num=$(kill -l "$sig")
	"$ERG" top --pid "$sleeper" --json 0.2 >"$tmp/sig.out" 2>"$tmp/sig.err" & erg=$!
	for _ in $(seq 400); do sigbit "$erg" "$num" && break; sleep 0.005; done
	kill -s "$sig" "$erg"
	for _ in $(seq 300); do kill -0 "$erg" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$erg" 2>/dev/null && { kill -9 "$erg"; fail "erg top still runs 15 s after SIG$sig"; }
	wait "$erg"; rc=$?
	[ "$rc" = 0 ] || fail "SIG$sig: exit $rc, expected 0 ($(cat "$tmp/sig.err"))"
	grep -q '"type":"summary"' "$tmp/sig.out" || fail "SIG$sig: no summary line: $(cat "$tmp/sig.out")"
	if command -v bpftool >/dev/null && bpftool prog show 2>/dev/null | grep -q "erg($erg)"; then
		fail "SIG$sig: BPF programs of erg $erg still loaded"
	fi
	ok "SIG$sig at start: summary, exit 0, detached"
done
"$ERG" top --pid "$sleeper" --json 0.1 >"$tmp/usr1.out" 2>"$tmp/usr1.err" & erg=$!
for _ in $(seq 200); do [ "$(grep -c '"type":"total"' "$tmp/usr1.out")" -ge 1 ] && break; sleep 0.05; done
kill -USR1 "$erg"
n=$(grep -c '"type":"total"' "$tmp/usr1.out")
for _ in $(seq 200); do [ "$(grep -c '"type":"total"' "$tmp/usr1.out")" -ge $((n + 2)) ] && break; sleep 0.05; done
kill -0 "$erg" 2>/dev/null || fail "SIGUSR1 ended erg top: $(cat "$tmp/usr1.err")"
kill -INT "$erg"; wait "$erg"; rc=$?
[ "$rc" = 0 ] && grep -q '"type":"summary"' "$tmp/usr1.out" || fail "SIGINT after SIGUSR1: exit $rc"
ok "SIGUSR1 ignored, ticks go on"

# A reader that goes away: clean exit 0, nothing attached.
first=$(timeout 30 "$ERG" top --pid "$sleeper" --json 0.1 2>"$tmp/err" | head -1; echo "rc=${PIPESTATUS[0]}")
case "$first" in *'"type":"model"'*rc=0) ok "erg top --json | head -1: exit 0" ;;
	*) fail "erg top --json | head -1: $first ($(cat "$tmp/err"))" ;; esac
[ -s "$tmp/err" ] && fail "a closed stdout printed: $(cat "$tmp/err")"
exit 0

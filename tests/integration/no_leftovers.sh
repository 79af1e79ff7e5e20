#!/usr/bin/env bash
# Tests leave nothing in the temp directory and no process behind, when they
# pass, when they fail and when they are stopped by SIGTERM (what
# tests/run.sh's timeout sends): two real tests (one bash, one Python) and
# small tests built on the shared helpers (testlib.bash's make_tmp,
# ergtest.py's scratch directory, its Erg and busy workers) that fail on
# purpose or are killed while erg is attached. Each runs with TMPDIR set to
# a directory of its own, which must be empty afterwards.
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"
require_bpf
OUT=${ERG_OUT:-build}
[ -x "$OUT/fixtures/busy_worker" ] || fail "$OUT/fixtures/busy_worker is not built (run make)"
make_tmp
job=
trap 'rm_tmp; [ -n "$job" ] && kill -KILL -- "-$job" 2>/dev/null; true' EXIT

empty() { # NAME DIR: the run left nothing in DIR
	local left
	left=$(ls -A "$2")
	[ -z "$left" ] || fail "$1 left in its TMPDIR: $left"
}
# gone NAME PIDS...: none of these processes is still there
gone() {
	local name=$1 p
	shift
	for p in "$@"; do
		[ -n "$p" ] || continue
		if [ -e "/proc/$p" ] && [ "$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$p/stat" 2>/dev/null)" != Z ]; then
			fail "$name left process $p ($(cat "/proc/$p/comm" 2>/dev/null)) running"
		fi
	done
}

# run_test NAME WANT_RC CMD...: run with a private TMPDIR, check status and files
run_test() {
	local name=$1 want=$2 rc=0
	shift 2
	mkdir "$tmp/$name"
	TMPDIR="$tmp/$name" "$@" >"$tmp/$name.log" 2>&1 || rc=$?
	[ "$rc" = "$want" ] || fail "$name: exit $rc, want $want: $(tail -n 5 "$tmp/$name.log")"
	empty "$name" "$tmp/$name"
	ok "$name: exit $rc, nothing left in TMPDIR"
}

# ---- two real tests ----
export ERG_OUT ERG ERG_ROOT
run_test top_errors 0 bash "$ERG_ROOT/tests/integration/top_errors.sh"
run_test gpu_top 0 bash "$ERG_ROOT/tests/integration/gpu_top.sh"

# ---- the helpers on failure ----
cat >"$tmp/fail.sh" <<'EOF'
. "$ERG_ROOT/tests/integration/testlib.bash"
make_tmp
echo data >"$tmp/out.ndjson"
echo "$tmp" >"$STATE"
[ "${1:-}" = wait ] && { sleep 300 & wait; }
fail "on purpose"
EOF
cat >"$tmp/fail.py" <<'EOF'
import os, sys, time
sys.path.insert(0, os.path.join(os.environ["ERG_ROOT"], "tests", "integration"))
import ergtest
w, pid = ergtest.start_worker("--duty", "0.2")
erg = ergtest.Erg("top", "--pid", "%d=m" % pid, "--json", "0.2")
erg.wait_ticks(1)
with open(os.environ["STATE"], "w") as f:
    f.write("%s %d %d\n" % (ergtest.TMP, pid, erg.proc.pid))
if len(sys.argv) > 1:
    time.sleep(300)
ergtest.fail("on purpose")
EOF

STATE=$tmp/state run_test bash-fail 1 bash "$tmp/fail.sh"
STATE=$tmp/state run_test py-fail 1 python3 -B "$tmp/fail.py"
read -r _ wpid epid <"$tmp/state"
gone py-fail "$wpid" "$epid"

# ---- stopped by SIGTERM to the test's process group, mid-run ----
# term NAME CMD...: start in a group of its own, SIGTERM it once the test has
# written its state (erg attached, files written), wait for it to end
term() {
	local name=$1 rc=0
	shift
	mkdir "$tmp/$name"
	rm -f "$tmp/state"
	set -m
	STATE=$tmp/state TMPDIR="$tmp/$name" "$@" >"$tmp/$name.log" 2>&1 &
	job=$!
	set +m
	for _ in $(seq 600); do
		[ -s "$tmp/state" ] && break
		kill -0 "$job" 2>/dev/null || fail "$name ended early: $(tail -n 5 "$tmp/$name.log")"
		sleep 0.1
	done
	[ -s "$tmp/state" ] || fail "$name: never got going: $(tail -n 5 "$tmp/$name.log")"
	sleep 0.5
	kill -TERM -- "-$job"
	wait "$job" || rc=$?
	job=
	[ "$rc" != 0 ] || fail "$name: exit 0 after SIGTERM"
	empty "$name" "$tmp/$name"
	ok "$name: SIGTERM (exit $rc), nothing left in TMPDIR"
}
term bash-term bash "$tmp/fail.sh" wait
term py-term python3 -B "$tmp/fail.py" wait
read -r _ wpid epid <"$tmp/state"
gone py-term "$wpid" "$epid"
ok "no scratch file and no process left on pass, failure or SIGTERM"

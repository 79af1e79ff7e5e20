#!/usr/bin/env bash
# Overlapping targets: a process named by --pid in one model and matched by
# --comm in another is counted once, for the --pid model (its children with
# it), and erg says so once on stderr, naming the pid and both models. The
# same process claimed twice by one model, or a --comm that matches nothing
# it has, draws no warning.
# san: yes
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"
require_bpf

tmp=$(mktemp -d)
comm=ovl$$	# a name no other process has
busy=
cleanup() {
	[ -n "$busy" ] && { kill -9 "$busy"; wait "$busy"; } 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

"$ERG_OUT/fixtures/busy_worker" --name "$comm" --children 1 --duty 0.3 --seconds 120 >"$tmp/busy" &
busy=$!
for _ in $(seq 200); do grep -q ready "$tmp/busy" && break; sleep 0.05; done
grep -q ready "$tmp/busy" || fail "busy_worker did not start"

run_top() { # name args...: NDJSON to $tmp/NAME.json, stderr to $tmp/NAME.err
	local name=$1; shift
	timeout 60 "$ERG" top "$@" --no-requests --energy-source model --json 0.5 3 \
		>"$tmp/$name.json" 2>"$tmp/$name.err" || fail "erg top $*: exited $? ($(cat "$tmp/$name.err"))"
}

run_top both --pid "$busy=alpha" --comm "$comm"=beta
n=$(grep -c 'warning' "$tmp/both.err")
[ "$n" = 1 ] || fail "expected one warning line, got $n: $(cat "$tmp/both.err")"
line=$(grep 'warning' "$tmp/both.err")
for want in "pid $busy" "'alpha'" "'beta'" "comm=$comm" "pid=$busy"; do
	case $line in *"$want"*) ;; *) fail "the warning lacks '$want': $line" ;; esac
done
ok "one warning: $line"
# Settled as without the warning: alpha has the worker and its child, beta nothing.
python3 - "$tmp/both.json" <<'PY' || fail "the overlapping process counts for the --pid model only"
import json, sys
last = {}
for raw in open(sys.argv[1]):
    o = json.loads(raw)
    if o["type"] == "model":
        last[o["model"]] = o
a, b = last["alpha"], last["beta"]
assert a["procs"] == 2 and a["cpu_s"] > 0, a
assert b["procs"] == 0 and b["cpu_s"] == 0 and b["nj"] == 0, b
PY
ok "alpha counts the worker and its child; beta nothing"

run_top same --pid "$busy=alpha" --comm "$comm"=alpha
grep -q warning "$tmp/same.err" && fail "one model claiming a process twice is no overlap: $(cat "$tmp/same.err")"
run_top apart --pid "$busy=alpha" --comm nosuchproc=beta
grep -q warning "$tmp/apart.err" && fail "a --comm matching another name is no overlap: $(cat "$tmp/apart.err")"
ok "no warning without an overlap between two models"

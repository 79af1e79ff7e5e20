#!/usr/bin/env bash
# erg top on bad input: one-line messages, exit status 2, never a crash;
# --help is there; [interval] [count] stops by itself; --config is read.
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"

expect_fail() { # expected-substring args...
	local want=$1; shift
	local out rc
	out=$("$ERG" "$@" 2>&1 >/dev/null); rc=$?
	if [ "$rc" != 2 ]; then fail "erg $* exited $rc, expected 2 (stderr: $out)"; fi
	if [ "$(printf '%s\n' "$out" | wc -l)" != 1 ]; then fail "erg $*: expected a one-line message, got: $out"; fi
	case "$out" in *"$want"*) ok "erg $*: $out" ;; *) fail "erg $*: message lacks '$want': $out" ;; esac
}

"$ERG" --help | grep -q 'top' || fail "erg --help lists top"
"$ERG" top --help | grep -q -- '--cgroup PATH' || fail "erg top --help documents --cgroup"
ok "--help texts"

expect_fail "no such process" top --pid 999999999
expect_fail "not a process id" top --pid abc=m
expect_fail "expected PID[=MODEL]" top --pid =m
expect_fail "model name" top --pid "$$=" 
expect_fail "nothing to attach" top
expect_fail "expected one of auto, rapl, hwmon, model" top --pid $$ --energy-source nuclear
expect_fail "interval" top --pid $$ -- -1
expect_fail "count" top --pid $$ 1 zero
expect_fail "unexpected argument" top --pid $$ 1 2 3
expect_fail "at most 15 characters" top --comm averyveryverylongname
expect_fail "no such cgroup" top --cgroup /nonexistent/cg
expect_fail "unknown option" top --bogus
expect_fail "--request-idle '0': expected a duration from 0.001 s to 3600 s" top --pid $$ --request-idle 0
expect_fail "--request-idle 'soon': expected a duration" top --pid $$ --request-idle soon
expect_fail "cannot open config file" top --config /nonexistent.ini

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '[model a]\npid = %s\nflavour = x\n' $$ > "$tmp/bad.ini"
expect_fail "$tmp/bad.ini:3: [model a] unknown key 'flavour'" top --config "$tmp/bad.ini"
printf '[power]\nidle_watts = lots\n' > "$tmp/bad2.ini"
expect_fail "bad2.ini:2: [power] idle_watts" top --config "$tmp/bad2.ini"
printf '[model a]\npid = 999999999\n' > "$tmp/bad3.ini"
expect_fail "$tmp/bad3.ini:2: --pid 999999999: no such process" top --config "$tmp/bad3.ini"

if [ ! -d /sys/class/powercap ] || ! ls /sys/class/powercap | grep -q rapl; then
	expect_fail "no RAPL counters" top --pid $$ --energy-source rapl
fi

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	cp "$ERG" "$tmp/erg"; chmod 755 "$tmp" "$tmp/erg"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$tmp/erg" top --pid 1 2>&1); rc=$?
	[ "$rc" = 2 ] || fail "unprivileged erg top exited $rc, expected 2: $out"
	case "$out" in *CAP_BPF+CAP_PERFMON*) ok "unprivileged: $out" ;; *) fail "unprivileged message lacks CAP_BPF+CAP_PERFMON: $out" ;; esac
fi

require_bpf
# A config file with a [power] section, and [interval] [count] ending the run.
sleep 30 & sleeper=$!
printf '[power]\nsource = model\nidle_watts = 2\nwatts_per_busy_core = 5\n\n[model sleepy]\npid = %s\n' $sleeper > "$tmp/good.ini"
out=$(timeout 20 "$ERG" top --config "$tmp/good.ini" --json 0.2 3); rc=$?
kill $sleeper 2>/dev/null
[ "$rc" = 0 ] || fail "erg top --config ... 0.2 3 exited $rc"
[ "$(printf '%s\n' "$out" | grep -c '"type":"total"')" = 3 ] || fail "expected 3 total lines: $out"
printf '%s\n' "$out" | grep -q '"type":"summary"' || fail "expected a summary line"
printf '%s\n' "$out" | grep -q '"model":"sleepy"' || fail "model name from [model sleepy]"
printf '%s\n' "$out" | grep -q '2.00 W idle' || fail "[power] idle_watts = 2 used: $out"
ok "config file, [power] section, interval/count"

# The table view prints a totals row that conserves energy.
out=$(timeout 20 "$ERG" top --pid $$=shell 0.2 2) || fail "table view run failed"
printf '%s\n' "$out" | grep -q '^unattributed' || fail "table has an unattributed row: $out"
printf '%s\n' "$out" | grep -q 'summary over' || fail "table view ends with a summary"
ok "table view"

#!/usr/bin/env bash
# erg sim and erg calibrate on the shared command-line layer: unknown options
# are named as such, lists have exactly their fields, every number is finite
# and in range, calibrate's --worker fields are checked one by one and named,
# its power options are refused as erg top refuses them, and -v reaches
# libbpf. Usage errors exit 2 with one line and no control characters. With
# root and BPF, calibrate also runs end to end against two demo workers.
# san: yes
set -u
: "${ERG:?ERG must point at the erg binary}" "${ERG_ROOT:?ERG_ROOT must be the repo root}"
. "$ERG_ROOT/tests/integration/testlib.bash"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/erg-cli-sim-cal.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
ref="$ERG_ROOT/scenarios/reference.ini"

# usage_error WANT-IN-MESSAGE ARGS...: exit 2, exactly one line on stderr
# containing WANT, no control characters, nothing on stdout
usage_error() {
	local want=$1
	shift
	"$ERG" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	[ "$rc" = 2 ] || { cat "$tmp/err"; fail "'erg $*' exited $rc, want 2"; }
	[ "$(wc -l <"$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "'erg $*' printed $(wc -l <"$tmp/err") lines"; }
	grep -qF -- "$want" "$tmp/err" || { cat "$tmp/err"; fail "'erg $*' does not say '$want'"; }
	! LC_ALL=C grep -q '[[:cntrl:]]' <(tr -d '\n' <"$tmp/err") || fail "'erg $*': control characters in the message"
	[ ! -s "$tmp/out" ] || fail "'erg $*' printed on stdout"
}

# ---- erg sim ----
usage_error "unknown option '-x'" sim -x
usage_error "unknown option '-x'" sim --scenario "$ref" -x
grep -q "needs a value" "$tmp/err" && fail "erg sim -x still says 'needs a value'"
usage_error "option '--json' takes no value" sim --scenario "$ref" --json=1
usage_error "option '--supply' needs a value" sim --scenario "$ref" --supply
usage_error "--sweep-supply '0.8:1.2:0.02:5'" sim --scenario "$ref" --sweep-supply 0.8:1.2:0.02:5
usage_error "LO:HI:STEP" sim --scenario "$ref" --sweep-supply 0.8:1.2
usage_error "LO:HI:STEP" sim --scenario "$ref" --sweep-supply 0.8::0.02
usage_error "LO:HI:STEP" sim --scenario "$ref" --sweep-supply 0.8:nan:0.02
usage_error "LO:HI:STEP" sim --scenario "$ref" --sweep-supply 0.8:inf:0.02
usage_error "more than 10000" sim --scenario "$ref" --sweep-supply 1:1e9:0.01J
usage_error "mixes 'x' and 'J'" sim --scenario "$ref" --sweep-supply 0.8x:1.2J:0.1
for v in nan inf -inf 1e309 0 -1 2000x 1e16J 12abc "" 1.1xx; do
	usage_error "--supply" sim --scenario "$ref" --supply "$v"
done
for v in nan -inf -1 1e16 5e20 abc; do  # "inf" is "unlimited"
	usage_error "--storage" sim --scenario "$ref" --storage "$v"
done
for v in 0 -5 1e3 12abc 100000001 ""; do
	usage_error "--slots" sim --scenario "$ref" --slots "$v"
done
for v in -1 12abc 1.5 99999999999999999999; do
	usage_error "--seed" sim --scenario "$ref" --seed "$v"
done
usage_error "--realiser 'dice'" sim --scenario "$ref" --realiser dice
usage_error "--policy" sim --scenario "$ref" --policy "$(printf 'm\033[2Jx')"
usage_error "not both" sim --scenario "$ref" --supply 1 --sweep-supply 1:2:1
usage_error "unexpected argument" sim --scenario "$ref" extra
usage_error "--scenario FILE is required" sim --quiet
# options in any order (getopt permutes), valid values still run
"$ERG" sim --slots 200 --quiet --scenario "$ref" --supply 1.1x --seed 7 >/dev/null \
	|| fail "a valid command line in another order exited $?"
ok "erg sim: every bad command line is one line naming the option, exit 2"

# ---- erg calibrate: no worker is contacted for these ----
w2="--worker b:1:8081:2e9"
usage_error "--worker 'a::1:2:3': expected NAME:PID:PORT:PARAMS" calibrate --worker a::1:2:3 $w2
usage_error "--worker PID '1x'" calibrate --worker a:1x:8080:1e9 $w2
usage_error "--worker PID '0'" calibrate --worker a:0:8080:1e9 $w2
usage_error "--worker PID '12abc'" calibrate --worker a:12abc:8080:1e9 $w2
usage_error "--worker PORT '0'" calibrate --worker a:1:0:1e9 $w2
usage_error "--worker PORT '65536'" calibrate --worker a:1:65536:1e9 $w2
usage_error "--worker PORT '80x'" calibrate --worker a:1:80x:1e9 $w2
for v in inf nan 0 -1 1e16 2e9q ""; do
	usage_error "--worker PARAMS" calibrate --worker "a:1:8080:$v" $w2
done
usage_error "--worker NAME" calibrate --worker ':1:8080:1e9' $w2
usage_error "--worker NAME" calibrate --worker 'a"b:1:8080:1e9' $w2
usage_error "expected NAME:PID:PORT:PARAMS" calibrate --worker a:1:8080 $w2
for v in inf nan -1 1e300 ""; do
	usage_error "--idle-watts" calibrate --worker a:1:8080:1e9 $w2 --idle-watts "$v"
	usage_error "--watts-per-core" calibrate --worker a:1:8080:1e9 $w2 --watts-per-core "$v"
done
usage_error "--energy-source 'solar'" calibrate --worker a:1:8080:1e9 $w2 --energy-source solar
usage_error "--requests '0'" calibrate --worker a:1:8080:1e9 $w2 --requests 0
usage_error "--max-tokens '1e3'" calibrate --worker a:1:8080:1e9 $w2 --max-tokens 1e3
usage_error "unknown option '-x'" calibrate -x
usage_error "at least two --worker" calibrate --worker a:1:8080:1e9
"$ERG" calibrate --help | grep -q -- "--verbose" || fail "calibrate --help does not list --verbose"
ok "erg calibrate: every bad --worker field and power value named, exit 2"

# ---- with BPF: -v reaches libbpf, and a real calibration ----
if [ "$(id -u)" != 0 ] || [ ! -e /sys/kernel/btf/vmlinux ]; then
	skip "the command-line checks passed; the calibrate run needs root and BTF (/sys/kernel/btf/vmlinux)"
fi
worker="$ERG_OUT/demo/demo_worker"
[ -x "$worker" ] || skip "the command-line checks passed; $worker is not built (make)"
start_worker() { # name params-m -> "pid port"
	"$worker" --port 0 --model "$1" --params-m "$2" --passes-per-ms 1000 >"$tmp/$1.log" 2>&1 &
	for _ in $(seq 100); do
		grep -q "port=" "$tmp/$1.log" && break
		sleep 0.1
	done
	local port
	port=$(sed -n 's/.* port=\([0-9]*\) .*/\1/p' "$tmp/$1.log")
	[ -n "$port" ] || { cat "$tmp/$1.log"; fail "demo worker $1 did not start"; }
	echo "$! $port"
}
read -r p1 port1 <<<"$(start_worker small 300)"
read -r p2 port2 <<<"$(start_worker large 1300)"
pids+=("$p1" "$p2")
# nothing listens on port 1: the run fails after BPF is loaded
"$ERG" calibrate -v --energy-source model --requests 1 --max-tokens 8 \
	--worker "small:$p1:1:300M" --worker "large:$p2:1:1300M" >/dev/null 2>"$tmp/v.err"
rc=$?
[ "$rc" = 1 ] || { cat "$tmp/v.err"; fail "calibrate against a closed port exited $rc, want 1"; }
grep -q "libbpf" "$tmp/v.err" || fail "calibrate -v printed no libbpf log"
"$ERG" calibrate --energy-source model --requests 1 --max-tokens 8 \
	--worker "small:$p1:1:300M" --worker "large:$p2:1:1300M" >/dev/null 2>"$tmp/q.err"
! grep -q "libbpf" "$tmp/q.err" || fail "calibrate without -v printed libbpf's log"
grep -q "cannot connect" "$tmp/q.err" || { cat "$tmp/q.err"; fail "no 'cannot connect' for a closed port"; }

"$ERG" calibrate --energy-source model --requests 2 --max-tokens 32 --json --out "$tmp/cal.ini" \
	--base "$ref" --worker "small:$p1:$port1:300M" --worker "large:$p2:$port2:1300M" \
	>"$tmp/cal.json" 2>"$tmp/cal.err" || { cat "$tmp/cal.err"; fail "calibrate exited $?"; }
python3 - "$tmp/cal.json" <<'PY' || fail "calibrate JSON checks"
import json, math, sys
d = json.load(open(sys.argv[1]))
assert [m["model"] for m in d["models"]] == ["small", "large"], d["models"]
for m in d["models"]:
    assert m["completion_tokens"] > 0 and m["joules_per_token"] > 0, m
assert math.isfinite(d["eta"]) and d["eta"] > 0, d
print(f"calibrated: eta {d['eta']:.4g} FLOP/J, R^2 {d['r2']:.4f}")
PY
"$ERG" sim --scenario "$tmp/cal.ini" --slots 200 --quiet >"$tmp/sim.txt" \
	|| fail "erg sim on the calibrated scenario exited $?"
grep -q "Critical supply" "$tmp/sim.txt" || fail "erg sim on the calibrated scenario printed no answer"
ok "erg calibrate: -v reaches libbpf; two demo workers calibrated, the scenario runs in erg sim"
exit 0

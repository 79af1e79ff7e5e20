#!/usr/bin/env bash
# erg sim end to end: the reference sweep (time, JSON keys, simulated vs
# closed form, SVG), text layout, storage, the solar scenario, and bad input
# (exit 2 with FILE:LINE and the key named). Needs python3 for JSON and XML.
# san: yes
set -u
: "${ERG:?ERG must point at the erg binary}" "${ERG_ROOT:?ERG_ROOT must be the repo root}"
if ! command -v python3 >/dev/null; then
	echo "SKIP: python3 is not installed (apt-get install python3); it checks the JSON and SVG"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/erg-sim-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ref="$ERG_ROOT/scenarios/reference.ini"
fail() { echo "FAIL: $*"; exit 1; }

# --help is accurate about the flags the issue asks for
"$ERG" sim --help >"$tmp/help" || fail "erg sim --help exited $?"
for flag in --scenario --policy --supply --sweep-supply --slots --seed --json --svg; do
	grep -q -- "$flag" "$tmp/help" || fail "--help does not mention $flag"
done
grep -q "multiple of" "$tmp/help" || fail "--help does not say how sweep values are read"

# 1. the reference sweep of the issue, timed, as JSON and SVG
start=$(date +%s.%N)
"$ERG" sim --scenario "$ref" --sweep-supply 0.8:1.2:0.02 --svg "$tmp/out.svg" --json \
	>"$tmp/ref.json" 2>"$tmp/ref.err" || { cat "$tmp/ref.err"; fail "reference sweep exited $?"; }
end=$(date +%s.%N)
secs=$(python3 -c "print(f'{$end - $start:.1f}')")
echo "reference sweep (21 levels x 3 policies) took $secs s"
python3 - "$tmp/ref.json" "$secs" <<'PY' || fail "reference JSON checks"
import json, math, sys
d = json.load(open(sys.argv[1]))
secs = float(sys.argv[2])
# the limit is a minute on 2 cores; sanitizer builds get more room
assert secs < 60 or __import__('os').environ.get('ASAN_OPTIONS'), f"sweep took {secs} s"
for k in ("critical_supply", "mu", "sigma", "var_shares", "policies", "sweep"):
    assert k in d, f"missing key {k}"
vs = d["var_shares"]
for k in ("time", "models", "execution"):
    assert k in vs, f"var_shares lacks {k}"
assert abs(vs["time"] + vs["models"] + vs["execution"] - 1) < 1e-9, vs
assert abs(d["critical_supply"] - d["mu"]) < 1e-9 * d["mu"]
pols = {p["policy"]: p for p in d["policies"]}
assert set(pols) == {"mean", "variance", "dynamic"}, pols.keys()
for p in pols.values():
    assert {"policy", "mix", "accuracy"} <= set(p), p.keys()
    assert abs(sum(m["weight"] for m in p["mix"]) - 1) < 1e-6, p
    for m in p["mix"]:
        assert {"model", "budget", "weight"} <= set(m)
    assert p["accuracy"] >= 0.6 - 2e-3, p
assert len(d["sweep"]) == 21 * 3, len(d["sweep"])
keys = {"supply", "policy", "aux", "waste", "cost", "accuracy", "aux_theory", "waste_theory"}
worst = 0.0
for s in d["sweep"]:
    assert keys <= set(s), s.keys()
    assert abs(s["cost"] - s["aux"] - s["waste"]) < 1e-6 * s["cost"] + 1e-9
    if s["policy"] == "dynamic":
        assert s["aux_theory"] is None      # no closed form claimed
        continue
    # closed form (docs/theory.md §4.1) against the simulation: within 4 standard
    # errors once the first-order Edgeworth term for the measured skewness
    # gamma is added, gamma/6 * z phi(z) sigma (the same for aux and waste);
    # the plain Gaussian form within 4 standard errors plus 2% of sigma.
    sig, mu = s["sigma_theory"], s["mu_theory"]
    z = (s["supply"] - mu) / sig
    edge = s["demand_skew"] / 6 * z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * sig
    for k in ("aux", "waste"):
        se = s[k + "_se"]
        dev = abs(s[k] - s[k + "_theory"] - edge)
        worst = max(worst, dev / se)
        assert dev <= 4 * se, (k, s)
        assert abs(s[k] - s[k + "_theory"]) <= 4 * se + 0.02 * sig, (k, s)
    assert abs(s["mu"] - mu) <= 4 * s["mu_se"], s
    assert abs(s["sigma"] / sig - 1) < 0.03, s
print(f"closed form vs simulated: worst deviation {worst:.2f} standard errors (after skew term)")
# variance-aware is never worse than mean-only on its own objective
assert pols["variance"]["objective"] <= pols["mean"]["objective"] * (1 + 1e-12)
r = d["variance_vs_mean_cost_ratio"]
print(f"variance-aware / mean-only cost at the critical point: {r:.4f} (closed form), "
      f"{d['variance_vs_mean_cost_ratio_simulated']:.4f} (simulated)")
assert r <= 1 + 1e-12
PY
python3 - "$tmp/out.svg" <<'PY' || fail "SVG checks"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
texts = " ".join(t.text or "" for t in root.iter(ns + "text"))
for want in ("b* = mu", "supply b (kJ"):
    assert want in texts, f"SVG lacks the text {want!r}"
# energy and cost on their own axes: kJ above, price units below
ylabels = [t.text for t in root.iter(ns + "text") if t.get("class") == "ylabel"]
assert ylabels == ["energy per slot (kJ)", "cost per slot (price units)"], ylabels
assert len([t for t in root.iter(ns + "text") if t.get("class") == "xlabel"]) == 1
legend = [g for g in root.iter(ns + "g") if g.get("class") == "legend"]
assert len(legend) == 1, len(legend)
entries = [(t.text, float(t.get("y"))) for t in legend[0].iter(ns + "text")]
labels = [e[0] for e in entries]
for policy in ("mean-only", "variance-aware", "dynamic"):
    for kind in ("auxiliary", "waste", "cost"):
        assert any(policy in l and l.endswith(": " + kind) for l in labels), (policy, kind, labels)
# cost entries sit by the lower panel, below every energy entry
cost_y = [y for l, y in entries if l.endswith(": cost")]
energy_y = [y for l, y in entries if not l.endswith(": cost")]
assert min(cost_y) > max(energy_y), entries
# one legend entry per curve, and no curve drawn twice: identical curves
# share an entry ("mean-only = variance-aware: waste")
paths = [p.get("d", "") for p in root.iter(ns + "path")]
assert len(paths) == len(labels), (len(paths), labels)
assert len(set(paths)) == len(paths), "two curves are identical but have two legend entries"
for d in paths:
    assert d.count("L") >= 20, "a curve with fewer than 21 points"
print("SVG: %d curves, %d legend entries: %s" % (len(paths), len(labels), "; ".join(labels)))
PY
[ "$(stat -c %s "$tmp/ref.err")" -lt 2000 ] || fail "unexpected chatter on stderr"

# 2. text output leads with the answer, then the table
"$ERG" sim --scenario "$ref" --supply 1 --slots 4000 >"$tmp/ref.txt" || fail "text run exited $?"
first=$(grep -n -m1 "Critical supply b\*" "$tmp/ref.txt" | cut -d: -f1)
shares=$(grep -n -m1 "Variance shares" "$tmp/ref.txt" | cut -d: -f1)
table=$(grep -n -m1 "^ *supply .*policy" "$tmp/ref.txt" | cut -d: -f1)
[ -n "$first" ] && [ -n "$shares" ] && [ -n "$table" ] || { cat "$tmp/ref.txt"; fail "text output lacks its parts"; }
[ "$first" -lt "$table" ] && [ "$shares" -lt "$table" ] || fail "the answer does not come before the table"
grep -q "Volatility-limited cost at b\*" "$tmp/ref.txt" || fail "no volatility-limited cost line"
grep -Eq "^  mean +accuracy 0\.6" "$tmp/ref.txt" || fail "no mean-only mix line"
grep -q "8B@16384" "$tmp/ref.txt" || fail "the mix does not name model and budget"

# 3. with storage: §4.3 closed form against the simulation near b*
"$ERG" sim --scenario "$ref" --policy mean --storage 7500 --sweep-supply 0.96:1.04:0.04 --json \
	>"$tmp/store.json" || fail "storage run exited $?"
python3 - "$tmp/store.json" <<'PY' || fail "storage checks"
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["sweep"]:
    sig = s["sigma_theory"]
    for k in ("aux", "waste"):
        assert s[k + "_theory"] is not None, s
        assert abs(s[k] - s[k + "_theory"]) <= 4 * s[k + "_se"] + 0.01 * sig, (k, s)
print("storage: simulated aux and waste within 4 standard errors (+1% sigma) of docs/theory.md §4.3")
PY

# 4. the solar scenario: a supply trace, a battery, and policies that differ
"$ERG" sim --scenario "$ERG_ROOT/scenarios/solar.ini" --slots 2880 --sweep-supply 0.8:1.2:0.2 --json \
	>"$tmp/solar.json" || fail "solar run exited $?"
python3 - "$tmp/solar.json" <<'PY' || fail "solar checks"
import json, sys
d = json.load(open(sys.argv[1]))
pols = {p["policy"]: p for p in d["policies"]}
assert pols["variance"]["sigma"] < pols["mean"]["sigma"], "variance-aware should lower sigma here"
assert d["variance_vs_mean_cost_ratio"] < 1
for s in d["sweep"]:
    assert s["aux_theory"] is None   # storage with a trace: no closed form claimed
    assert s["accuracy"] >= 0.55 - 0.005, s
PY

# 4b. the dense reference: budgets = 256..16384 in 16 steps is the list of
# log-spaced budgets, and at b* the dynamic policy (a live router's
# knowledge only) costs well under mean-only at the target accuracy
dense="$ERG_ROOT/scenarios/reference-dense.ini"
list=$(python3 -c "print(', '.join(str(round(256 * 64 ** (i / 15))) for i in range(16)))")
sed -e "s/^budgets = .*/budgets = $list/" -e "/^budget_steps/d" "$dense" >"$tmp/dense-list.ini"
for sc in "$dense" "$tmp/dense-list.ini"; do
	"$ERG" sim --scenario "$sc" --policy mean,dynamic --slots 20000 --seed 5 --json \
		>"$tmp/$(basename "$sc").json" 2>"$tmp/dense.err" || { cat "$tmp/dense.err"; fail "$sc exited $?"; }
done
"$ERG" sim --scenario "$dense" --slots 10 --quiet | grep -q "64 options" || fail "the range did not give 16 budgets per model"
python3 - "$tmp/reference-dense.ini.json" "$tmp/dense-list.ini.json" <<'PY' || fail "dense reference checks"
import json, sys
d, l = (json.load(open(f)) for f in sys.argv[1:3])
assert d["critical_supply"] == l["critical_supply"], "range and list differ"
assert d["dynamic_vs_mean_cost_ratio_simulated"] == l["dynamic_vs_mean_cost_ratio_simulated"]
pols = {p["policy"]: p for p in d["policies"]}
ratio = d["dynamic_vs_mean_cost_ratio_simulated"]
acc = pols["dynamic"]["accuracy"]
print(f"dense reference at b*: dynamic {pols['dynamic']['cost_at_critical']:.0f} vs mean-only "
      f"{pols['mean']['cost_at_critical']:.0f} = {ratio:.3f}, accuracy {acc:.4f}")
assert ratio <= 0.68, f"dynamic/mean-only cost {ratio:.3f} above 0.68 (0.666 measured)"
assert abs(acc - d["accuracy_target"]) <= 0.002, f"dynamic accuracy {acc}"
PY

# 5. bad input: exit 2, one line naming file, line and key
bad() { # name expected-key expected-line sed-script
	sed "$4" "$ref" >"$tmp/$1.ini"
	"$ERG" sim --scenario "$tmp/$1.ini" --slots 100 >"$tmp/$1.out" 2>"$tmp/$1.err"
	rc=$?
	[ "$rc" = 2 ] || fail "$1: exit $rc, want 2"
	grep -q "$tmp/$1.ini:$3:" "$tmp/$1.err" || { cat "$tmp/$1.err"; fail "$1: no FILE:LINE ($3)"; }
	grep -q "'$2'" "$tmp/$1.err" || { cat "$tmp/$1.err"; fail "$1: key '$2' not named"; }
	[ ! -s "$tmp/$1.out" ] || fail "$1: printed results anyway"
	echo "rejected as expected: $(cat "$tmp/$1.err")"
}
beta_line=$(grep -n "^beta" "$ref" | cut -d: -f1)
scaling_line=$(grep -n "^\[scaling\]" "$ref" | cut -d: -f1)
params_line=$(grep -n "^params = 8e9" "$ref" | cut -d: -f1)
bad missing beta "$scaling_line" "/^beta/d"
bad negative params "$params_line" "s/^params = 8e9/params = -8e9/"
budgets_line=$(grep -n "^budgets" "$ref" | cut -d: -f1)
bad backwards_range budgets "$budgets_line" "s/^budgets = .*/budgets = 16384..256/"
bad word_range budgets "$budgets_line" "s/^budgets = .*/budgets = 256..lots/"
bad steps budget_steps "$((budgets_line + 1))" "s/^budgets = .*/budgets = 256..16384\nbudget_steps = 40/"
echo "[sim]" >"$tmp/pol.add"; echo "policy = cheapest" >>"$tmp/pol.add"
cp "$ref" "$tmp/policy.ini"; cat "$tmp/pol.add" >>"$tmp/policy.ini"
"$ERG" sim --scenario "$tmp/policy.ini" >/dev/null 2>"$tmp/policy.err"
rc=$?
lines=$(wc -l <"$ref")
[ "$rc" = 2 ] || fail "unknown policy: exit $rc, want 2"
grep -q "$tmp/policy.ini:$((lines + 2)):.*'policy'" "$tmp/policy.err" || { cat "$tmp/policy.err"; fail "unknown policy: no FILE:LINE and key"; }
echo "rejected as expected: $(cat "$tmp/policy.err")"
# bad command lines
for args in "--sweep-supply 1:2" "--sweep-supply 1.2:0.8:0.1" "--supply -3" "--policy fastest" \
	    "--slots 0" "--bogus" "--supply 1 --sweep-supply 1:2:1" "--realiser dice"; do
	# shellcheck disable=SC2086
	"$ERG" sim --scenario "$ref" $args >/dev/null 2>"$tmp/cli.err"
	rc=$?
	[ "$rc" = 2 ] || fail "'erg sim $args' exited $rc, want 2"
	[ "$(wc -l <"$tmp/cli.err")" -ge 1 ] || fail "'erg sim $args' said nothing"
done
"$ERG" sim >/dev/null 2>&1; [ $? = 2 ] || fail "no --scenario should exit 2"
"$ERG" sim --scenario "$tmp/nonexistent.ini" 2>"$tmp/ne.err"; [ $? = 2 ] || fail "missing file should exit 2"
grep -q "nonexistent.ini" "$tmp/ne.err" || fail "missing file not named"

# 6. numbers that used to overflow a float-to-integer conversion (rng.c) or
# print inf and nan with exit 0: refused with the range, exit 2
refuse() { # name want-in-message sed-script [extra args]
	sed "$3" "$ref" >"$tmp/$1.ini"
	timeout 120 "$ERG" sim --scenario "$tmp/$1.ini" --slots 100 --quiet ${4:-} >"$tmp/$1.out" 2>"$tmp/$1.err"
	rc=$?
	[ "$rc" = 2 ] || { cat "$tmp/$1.err"; fail "$1: exit $rc, want 2 (124: it ran on)"; }
	grep -qF -- "$2" "$tmp/$1.err" || { cat "$tmp/$1.err"; fail "$1: the message does not say '$2'"; }
	[ ! -s "$tmp/$1.out" ] || fail "$1: printed results anyway"
	echo "refused as expected: $(cat "$tmp/$1.err")"
}
refuse tasks_huge "'tasks_per_slot'" "s/^tasks_per_slot *=.*/tasks_per_slot = 1e308/"
grep -q "at most 1e6\|to 1e6" "$tmp/tasks_huge.err" || fail "the tasks_per_slot message does not give the range"
refuse tasks_1e15 "'tasks_per_slot'" "s/^tasks_per_slot *=.*/tasks_per_slot = 1e15/"
refuse dispersion "variance ratio must be at most 1e6" \
	"s/^tasks_per_slot *=.*/tasks_per_slot = 20\narrivals = overdispersed\nvariance_ratio = 1e300/"
printf '0,2e6\n86400,2e6\n' >"$tmp/rate.csv"
refuse rate_trace "more than 1e6 tasks in a slot" \
	"s|^tasks_per_slot *=.*|arrivals = trace\narrival_trace = $tmp/rate.csv|"
refuse huge_model "J per slot, above" "s/^params = .*/params = 1e159/"
# 1e15 J per slot is the largest supply: a run at the edge prints numbers;
# above it is a usage error
"$ERG" sim --scenario "$ref" --slots 100 --quiet --supply 1e15J --policy mean >"$tmp/edge.txt" \
	|| fail "--supply 1e15J exited $?"
! grep -inE "nan|inf" "$tmp/edge.txt" || fail "--supply 1e15J printed nan or inf"
refuse too_much_supply "--supply" "s/^c_w *=.*/c_w = 1/" "--supply 2e15J"
# at the bound, a run still finishes (1.2e8 tasks: seconds), and its progress
# line (stderr is a file: one line at 1 s, then every 5 s) never claims
# ~0 s left before any slot is done, as it did when progress was published
# every 1024 slots
sed "s/^tasks_per_slot *=.*/tasks_per_slot = 1e6/" "$ref" >"$tmp/busy.ini"
timeout 600 "$ERG" sim --scenario "$tmp/busy.ini" --slots 60 --policy mean >"$tmp/busy.out" 2>"$tmp/busy.err" \
	|| { cat "$tmp/busy.err"; fail "1e6 tasks per slot exited $?"; }
cat "$tmp/busy.err"
! grep -E " 0% of .*~0 s left" "$tmp/busy.err" || fail "the progress line claims ~0 s left at 0%"
grep -q "Critical supply" "$tmp/busy.out" || fail "1e6 tasks per slot printed no answer"

# 7. valid scenarios whose closed forms are undefined (no prices, almost no
# tasks) print '-' there, never nan or inf
sed -e "s/^c_a *=.*/c_a = 0/" -e "s/^c_w *=.*/c_w = 0/" "$ref" >"$tmp/free.ini"
sed "s/^tasks_per_slot *=.*/tasks_per_slot = 0.001/" "$ref" >"$tmp/idle.ini"
for sc in free idle; do
	"$ERG" sim --scenario "$tmp/$sc.ini" --slots 300 --quiet >"$tmp/$sc.txt" 2>"$tmp/$sc.err" \
		|| { cat "$tmp/$sc.err"; fail "$sc scenario exited $?"; }
	! grep -inE "nan|inf" "$tmp/$sc.txt" || fail "$sc scenario printed nan or inf"
	"$ERG" sim --scenario "$tmp/$sc.ini" --slots 300 --quiet --json >"$tmp/$sc.json" \
		|| fail "$sc scenario --json exited $?"
	python3 -c "import json,sys; json.load(open(sys.argv[1]), parse_constant=lambda c: sys.exit('JSON has ' + c))" \
		"$tmp/$sc.json" || fail "$sc scenario: JSON with NaN or Infinity"
done
echo "erg sim: all checks passed"
exit 0

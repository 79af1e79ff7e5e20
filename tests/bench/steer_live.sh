#!/usr/bin/env bash
# The live steering proof (make bench): does variance-aware steering pay on
# live traffic as erg sim predicts?
#
# Two steer_workers (tests/bench/steer_worker.c) burn the CPU the catalog of
# scenarios/serve-proof.ini says (J per token x max_tokens, at erg's power
# model of 100 W per busy core). erg serve --config on that file runs twice
# back to back on the same seeded bursty arrivals of "model": "auto"
# requests (tests/bench/steer_load.py): --policy energy (mean-only), then
# --variance-aware. Supply: the measured critical point, the mean slot
# demand of the energy run (mean-only routing does not depend on the
# supply, so its aux and waste are the ledger's arithmetic on its own slot
# demands at that supply). Printed: mean aux + waste per slot and achieved
# accuracy of each (the scaling law of the file at each answer's model and
# x-erg-budget), the live ratio variance/energy, erg sim's ratio (dynamic
# vs mean-only at b*, 20000 slots) and its spread over runs as short as the
# live one, and whether the issue's pass conditions hold. Figures only: exit
# 0 after printing, 77 when it cannot run (not root, BPF, no --policy).
#
#   bash tests/bench/steer_live.sh [OUT]     (OUT: the build directory)
# Environment: STEER_SLOTS (live slots per run, default 40: 80 s), STEER_SEED,
# STEER_CHECK=1 (tests/integration/serve_steer_live.sh: also assert the
# robust properties and exit 1 when one fails), STEER_KEEP=1 (keep the
# runs' output, journals and load records, and say where), STEER_STRICT=1
# (with STEER_CHECK: also fail when variance-aware's aux + waste exceeds
# energy's by more than the margin below), STEER_SECOND (the second run's
# options instead of --variance-aware: "--policy energy" measures the noise
# of the live ratio, an A/A run).
set -u
OUT=${1:-${ERG_OUT:-build}}
ERG=${ERG:-$OUT/erg}
WORKER=$OUT/bench/steer_worker
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCEN=${STEER_SCENARIO:-$ROOT/scenarios/serve-proof.ini}
SLOTS=${STEER_SLOTS:-40}
SEED=${STEER_SEED:-1}
CHECK=${STEER_CHECK:-0}
WPC=100		# watts per busy core: the scenario's J per token assume it

say() { echo "steer_live: $*"; }
skip() { echo "steer_live: SKIP: $*"; exit 77; }

[ -x "$ERG" ] || { say "no $ERG: build first (make OUT=$OUT all)"; exit 2; }
[ -x "$WORKER" ] || { say "no $WORKER: build it (make OUT=$OUT bench)"; exit 2; }
[ "$(id -u)" = 0 ] || skip "erg serve's energy needs root for BPF; run as root"
"$ERG" serve --help 2>&1 | grep -q -- '--policy' ||
	skip "this erg serve has no --policy (steering of \"model\": \"auto\" not built in)"

TMP=$(mktemp -d /tmp/erg-steer.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ "${STEER_KEEP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# Free loopback ports for erg serve and the two workers, written into a copy
# of the scenario (everything else in it unchanged).
read -r PL PS PB < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
CFG=$TMP/serve.ini
python3 - "$SCEN" "$CFG" "$PL" "$PS" "$PB" >"$TMP/workers" <<'EOF' || exit 2
import re, sys
src, dst, pl, ps, pb = sys.argv[1:]
t = open(src).read()
t = re.sub(r"(?m)^(listen\s*=\s*127\.0\.0\.1:)\d+", r"\g<1>" + pl, t)
ports = iter([ps, pb])
t = re.sub(r"(?m)^(worker\s*=\s*127\.0\.0\.1:)\d+", lambda m: m.group(1) + next(ports), t)
open(dst, "w").write(t)
# the workers: model, J per token, port, in file order
model = None
for line in t.splitlines():
    m = re.match(r"\s*\[model\s+(\S+)\]", line)
    model = m.group(1) if m else (None if line.strip().startswith("[") else model)
    m = re.match(r"\s*joules_per_token\s*=\s*([0-9.eE+-]+)", line)
    if model and m:
        jpt = m.group(1)
    m = re.match(r"\s*worker\s*=\s*127\.0\.0\.1:(\d+)", line)
    if model and m:
        print(model, jpt, m.group(1))
EOF

start_worker() {	# model J/token port
	"$WORKER" --port "$3" --model "$1" --joules-per-token "$2" --watts-per-core $WPC --threads 2 \
		>"$TMP/worker-$1.log" 2>&1 &
	PIDS+=($!)
}
while read -r m j p; do start_worker "$m" "$j" "$p"; done <"$TMP/workers"
NW=$(wc -l <"$TMP/workers")
for _ in $(seq 100); do
	[ "$(cat "$TMP"/worker-*.log 2>/dev/null | grep -c 'steer_worker: model=')" = "$NW" ] && break
	sleep 0.1
done

# erg sim's prediction on the same file: b*, and dynamic vs mean-only.
"$ERG" sim --scenario "$CFG" --policy mean,dynamic --json --quiet >"$TMP/sim.json" ||
	{ say "erg sim failed on $SCEN"; exit 1; }
# the spread of that ratio over runs of the live run's length
for s in 1 2 3 4 5 6 7 8; do
	"$ERG" sim --scenario "$CFG" --policy mean,dynamic --json --quiet --slots "$SLOTS" --seed "$s" \
		>"$TMP/sim-short-$s.json" 2>/dev/null
done
BSTAR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["critical_supply"])' "$TMP/sim.json")
SLOT_S=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"]["slot_seconds"])' "$TMP/sim.json")

run_policy() {	# tag supply_watts policy-options...
	local tag=$1 watts=$2
	shift 2
	"$ERG" serve --config "$CFG" "$@" --energy-source model --watts-per-core $WPC \
		--supply-watts "$watts" --slot "$SLOT_S" --journal "$TMP/$tag.journal" --no-fsync \
		--json "$SLOT_S" >"$TMP/$tag.out" 2>"$TMP/$tag.err" &
	local pid=$!
	PIDS+=($pid)
	for _ in $(seq 200); do
		grep -q 'listening on' "$TMP/$tag.err" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q 'listening on' "$TMP/$tag.err"; then
		kill $pid 2>/dev/null
		wait $pid 2>/dev/null
		if grep -qi 'bpf\|permission\|operation not permitted' "$TMP/$tag.err"; then
			skip "erg serve could not load its BPF programs: $(head -1 "$TMP/$tag.err")"
		fi
		say "erg serve did not start: $(head -3 "$TMP/$tag.err")"
		exit 1
	fi
	python3 "$HERE/steer_load.py" --target "127.0.0.1:$PL" --seed "$SEED" --slots "$SLOTS" \
		--tasks-per-slot "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"]["tasks_per_slot"])' "$TMP/sim.json")" \
		--variance-ratio "$(sed -n 's/^variance_ratio *= *\([0-9.e+]*\).*/\1/p' "$CFG" | head -1)" \
		--slot-seconds "$SLOT_S" --align "$TMP/$tag.out" >"$TMP/$tag.load" 2>"$TMP/$tag.load.err" ||
		{ say "load driver failed: $(tail -2 "$TMP/$tag.load.err")"; exit 1; }
	curl -s --max-time 5 "http://127.0.0.1:$PL/metrics" >"$TMP/$tag.metrics" 2>/dev/null
	sleep "$(python3 -c "print(2 * $SLOT_S + 0.2)")"	# the last slots close
	kill -INT $pid
	wait $pid
	"$ERG" ledger --replay --json "$TMP/$tag.journal" >"$TMP/$tag.slots" ||
		{ say "erg ledger failed on the $tag run's journal"; exit 1; }
}

say "$SLOTS slots of $SLOT_S s per run, seed $SEED, file b* = $BSTAR J/slot, load average $(cut -d' ' -f1-3 /proc/loadavg); run 1: --policy energy"
run_policy energy "$(python3 -c "print($BSTAR / $SLOT_S)")" --policy energy
BLIVE=$(python3 - "$TMP/energy.slots" "$TMP/energy.load" <<'EOF'
import json, sys
slots = {r["slot"]: r for r in map(json.loads, open(sys.argv[1])) if r.get("type") == "slot"}
load = [json.loads(l) for l in open(sys.argv[2])][-1]
f, n = load["first_ledger_slot"], load["slots"]
d = [slots[k]["demand"] for k in range(f, f + n) if k in slots]
print(sum(d) / len(d) if d else 0)
EOF
)
say "measured critical point: $BLIVE J/slot; run 2: ${STEER_SECOND:---variance-aware} at it"
# shellcheck disable=SC2086
run_policy variance "$(python3 -c "print($BLIVE / $SLOT_S)")" ${STEER_SECOND:---variance-aware}

say "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg) (figures from a machine busy past its cores are noise)"
python3 - "$TMP" "$CFG" "$BLIVE" "$CHECK" "$SLOTS" "${STEER_STRICT:-0}" <<'EOF'
import configparser, glob, json, math, os, statistics, sys
tmp, cfg, blive, check, nslots = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
strict = sys.argv[6] == "1"

ini = configparser.ConfigParser(inline_comment_prefixes=(";",), strict=False)
ini.optionxform = str.lower
ini.read(cfg)
sc = ini["scaling"]
a0, a1, beta, amax = (float(sc[k]) for k in ("a0", "a1", "beta", "a_max"))
params = {s.split(None, 1)[1]: float(ini[s]["params"]) for s in ini.sections() if s.startswith("model ")}
target = float(ini["workload"]["accuracy_target"])

def acc(model, budget):
    """The file's scaling law; the reasoning length is the budget."""
    return min(amax, max(0.0, a0 + a1 * math.log(params[model]) + beta * math.log(budget)))

fails = []
def need(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        fails.append(what)

res = {}
for tag in ("energy", "variance"):
    slots = {r["slot"]: r for r in map(json.loads, open(f"{tmp}/{tag}.slots")) if r.get("type") == "slot"}
    lines = [json.loads(l) for l in open(f"{tmp}/{tag}.load")]
    load, reqs = lines[-1], lines[:-1]
    f = load["first_ledger_slot"]
    win = [slots[k] for k in range(f, f + load["slots"]) if k in slots]
    supply = blive
    cost = [max(s["demand"] - supply, 0) + max(supply - s["demand"], 0) for s in win]
    ledger_cost = [s["aux"] + s["waste"] for s in win]
    ok = [r for r in reqs if r["status"] == 200]
    with_budget = [r for r in ok if isinstance(r["budget"], int) and r["model"] in params]
    accs = [acc(r["model"], r["budget"]) for r in with_budget]
    after = sum(slots[k]["demand"] for k in range(f + load["slots"], f + load["slots"] + 2) if k in slots)
    # the identity at the last tick: the ledger's demand (closed + open
    # slot) and the sum of the models' joules, the same instant
    out = [json.loads(l) for l in open(f"{tmp}/{tag}.out") if l.startswith("{")]
    tot = [o for o in out if o.get("type") == "total" and "total" in o]
    last = tot[-1] if tot else None
    exp_acc = None
    try:
        for l in open(f"{tmp}/{tag}.metrics"):
            if l.startswith("erg_expected_accuracy"):
                exp_acc = float(l.split()[-1])
    except (OSError, ValueError):
        pass
    res[tag] = dict(n=len(win), planned=sum(load["counts"]), sent=load["sent"], ok=len(ok),
                    budget=len(with_budget), tokens_ok=sum(1 for r in with_budget if r["tokens"] == r["budget"]),
                    mean_demand=statistics.fmean(s["demand"] for s in win) if win else float("nan"),
                    cost=statistics.fmean(cost) if cost else float("nan"),
                    ledger_cost=statistics.fmean(ledger_cost) if ledger_cost else float("nan"),
                    cost_slots=cost, acc=statistics.fmean(accs) if accs else float("nan"),
                    spill=after / max(sum(s["demand"] for s in win), 1e-9), last=last,
                    exp_acc=exp_acc, share={},
                    bad=sorted({(q["status"], q.get("error", "")) for q in reqs if q["status"] != 200})[:3])
    for r in with_budget:
        k = f'{r["model"]}@{r["budget"]}'
        res[tag]["share"][k] = res[tag]["share"].get(k, 0) + 1

sim = json.load(open(f"{tmp}/sim.json"))
sim_ratio = sim["dynamic_vs_mean_cost_ratio_simulated"]
sim_acc = {s["policy"]: s["accuracy"] for s in sim["sweep"]}
short = []
for p in glob.glob(f"{tmp}/sim-short-*.json"):
    try:
        short.append(json.load(open(p))["dynamic_vs_mean_cost_ratio_simulated"])
    except (ValueError, KeyError, OSError):
        pass
short = [x for x in short if isinstance(x, (int, float))]
sd_short = statistics.stdev(short) if len(short) > 2 else float("nan")

e, v = res["energy"], res["variance"]
live_ratio = v["cost"] / e["cost"] if e["cost"] > 0 else float("nan")
print(f"steer_live: supply {blive:.1f} J/slot (measured critical point; file b* {sim['critical_supply']:.1f}), "
      f"{e['n']} slots per run")
second = os.environ.get("STEER_SECOND", "--variance-aware")
for tag, name in (("energy", "energy (mean-only)"), ("variance", second.replace("--policy ", "").lstrip("-"))):
    r = res[tag]
    top = sorted(r["share"].items(), key=lambda kv: -kv[1])[:4]
    mix = ", ".join(f"{k} {100 * c / max(r['budget'], 1):.0f}%" for k, c in top)
    print(f"  {name:20s} aux+waste {r['cost']:7.2f} J/slot  demand {r['mean_demand']:7.2f} J/slot  "
          f"accuracy {r['acc']:.4f}" + (f" (erg: {r['exp_acc']:.4f})" if r["exp_acc"] is not None else "")
          + f"  answered {r['ok']}/{r['planned']}  mix {mix}")
print(f"  live ratio {second}/energy {live_ratio:.3f}; erg sim (dynamic vs mean-only at b*, 20000 slots) "
      f"{sim_ratio:.3f}, over {len(short)} runs of {nslots} slots {statistics.fmean(short) if short else float('nan'):.3f} "
      f"sd {sd_short:.3f}; sim accuracy {sim_acc.get('mean', float('nan')):.4f} / {sim_acc.get('dynamic', float('nan')):.4f}")
print(f"  energy after the last slot (spill): energy {100 * e['spill']:.1f}%, variance {100 * v['spill']:.1f}%")
p1 = v["cost"] < e["cost"] and abs(v["acc"] - e["acc"]) <= 0.01
p2 = abs(live_ratio - sim_ratio) <= 0.10
if second != "--variance-aware":
    print("  pass conditions: not judged (the second run is not --variance-aware)")
else:
    print(f"  pass: variance-aware cuts aux+waste at accuracy within 0.01: {'yes' if p1 else 'no'}; "
          f"live ratio within 10 points of the simulated: {'yes' if p2 else 'no'}")

if check:
    print("steer_live: checks")
    for tag in ("energy", "variance"):
        r = res[tag]
        need(r["sent"] == r["planned"] and r["ok"] == r["planned"],
             f"{tag}: every auto request answered 200 ({r['ok']} of {r['planned']}; others: {r['bad']})")
        need(r["budget"] == r["ok"], f"{tag}: every answer carries x-erg-model and an integer x-erg-budget "
             f"({r['budget']} of {r['ok']})")
        need(r["tokens_ok"] == r["budget"], f"{tag}: usage.completion_tokens = x-erg-budget "
             f"({r['tokens_ok']} of {r['budget']}: erg set max_tokens)")
        need(r["n"] >= nslots - 1, f"{tag}: the ledger closed the run's slots ({r['n']} of {nslots})")
        lt = r["last"]
        if lt:
            led = lt["total"]["demand"] + lt["open_demand"]
            wsum = lt["attributed_j"]
            need(abs(led - wsum) <= 1e-6 * max(1.0, wsum),
                 f"{tag}: ledger demand {led:.6f} J (closed slots + open) = the workers' joules "
                 f"{wsum:.6f} J (attributed, the same tick)")
        else:
            need(False, f"{tag}: a ledger line in erg serve's --json output")
    # Margin: erg sim's spread of the same ratio over runs this short,
    # three standard deviations above break-even (at least 0.15).
    # Fatal with STEER_STRICT=1 (serve_steer_live.sh sets it).
    margin = max(0.15, 3 * sd_short) if sd_short == sd_short else 0.5
    what = (f"variance-aware's aux+waste not worse than energy's by more than "
            f"{100 * margin:.0f}% (ratio {live_ratio:.3f})")
    if strict or live_ratio <= 1 + margin:
        need(live_ratio <= 1 + margin, what)
    else:
        print("  NOT MET (not asserted without STEER_STRICT=1)  " + what)
    sys.exit(1 if fails else 0)
EOF
rc=$?
[ "$CHECK" = 1 ] && exit $rc
exit 0

"""erg top with a supply (docs/theory.md §3-§4): each slot's attributed demand goes
into the ledger; the ledger line reports the regime with its evidence; the
journal written alongside reads back with erg ledger and holds the same
slots and totals; a supply far below demand reads under-supplied, far above
over-supplied."""
import json
import os
import subprocess
import ergtest as t

t.require_bpf()
_, busy = t.start_worker("--duty", "0.5")
journal = os.path.join(t.TMP, "ledger.journal")


def run(supply, extra=()):
    r = subprocess.run([t.ERG, "top", "--pid", "%d=busy" % busy, "--json", "--supply-watts", str(supply),
                        "--slot", "0.25", *extra, "0.25", "48"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        t.fail("erg top with a supply exited %d: %s" % (r.returncode, r.stderr))
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    ledgers = [l for l in lines if l["type"] == "ledger"]
    t.check(len(ledgers) >= 48, "a ledger line per interval (%d)" % len(ledgers))
    return lines, ledgers[-1]


lines, last = run(0.05, ["--journal", journal])
t.log("supply 0.05 W: regime %s, drift %r" % (last["regime"], last["drift"]))
t.check(last["regime"] == "under-supplied", "a supply far below demand is under-supplied")
t.check(last["total"]["aux"] > 0.9 * (last["total"]["demand"] - last["total"]["supply"]), "auxiliary covers the shortfall")
attributed = [l for l in lines if l["type"] == "total"][-1]["attributed_j"]
t.check(abs(last["total"]["demand"] + last["open_demand"] - attributed) < 1e-6 * max(1, attributed),
        "ledger demand (closed slots + open slot) = attributed joules (%.6f vs %.6f)" %
        (last["total"]["demand"] + last["open_demand"], attributed))

r = subprocess.run([t.ERG, "ledger", "--json", journal], capture_output=True, text=True, timeout=30)
t.check(r.returncode == 0, "erg ledger reads the journal (exit %d)" % r.returncode)
doc = json.loads(r.stdout)
t.check(doc["slots"] >= last["slots"], "journal holds every closed slot (%d >= %d)" % (doc["slots"], last["slots"]))
t.check(abs(doc["total"]["demand"] - last["total"]["demand"]) < 1e-6 + 0.3 * last["mean"]["demand"],
        "journal total demand matches erg top's ledger")

_, last = run(50)
t.log("supply 50 W: regime %s" % last["regime"])
t.check(last["regime"] == "over-supplied", "a supply far above demand is over-supplied")
t.check(last["total"]["waste"] > 0.9 * (last["total"]["supply"] - last["total"]["demand"]), "the surplus is wasted")

r = subprocess.run([t.ERG, "top", "--pid", "%d=busy" % busy, "--slot", "1", "1", "1"], capture_output=True, text=True)
t.check(r.returncode == 2 and "supply" in r.stderr, "ledger options without a supply: exit 2 naming the fix")
t.cleanup()

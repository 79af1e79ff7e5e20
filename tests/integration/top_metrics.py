"""erg top --metrics ADDR:PORT on two busy stand-in workers with a supply
ledger: scrapes taken while erg top ticks parse with the Prometheus client's
parser; erg_energy_joules_total is above 0 and grows from scrape to scrape;
each scrape shows one whole tick: for every model, source="cpu" + "gpu"
equals that model's joules on erg top's NDJSON line of one and the same
tick (scrapes in order map to ticks in order); the ledger and data-loss
families are there. A bad address or a port in use: exit 2 naming
--metrics, before anything is attached."""
import re
import socket
import subprocess
import time
import urllib.request
import ergtest as t

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    t.skip("no python3 Prometheus client: apt-get install python3-prometheus-client (make deps)")

# --- usage errors, before the BPF load ---------------------------------------
r = subprocess.run([t.ERG, "top", "--help"], capture_output=True, text=True, timeout=30)
t.check(r.returncode == 0 and "--metrics ADDR:PORT" in r.stdout, "erg top --help describes --metrics")
r = subprocess.run([t.ERG, "top", "--metrics", "localhost", "--pid", "1"], capture_output=True, text=True, timeout=30)
t.check(r.returncode == 2 and "--metrics" in r.stderr and "HOST:PORT" in r.stderr,
        "an address without a port: exit 2 naming --metrics and the form (%r)" % r.stderr.strip())
busy_port = socket.socket()
busy_port.bind(("127.0.0.1", 0))
busy_port.listen()
r = subprocess.run([t.ERG, "top", "--metrics", "127.0.0.1:%d" % busy_port.getsockname()[1], "--pid", "1"],
                   capture_output=True, text=True, timeout=30)
busy_port.close()
t.check(r.returncode == 2 and "--metrics" in r.stderr and "in use" in r.stderr and "free port" in r.stderr,
        "a port in use: exit 2 naming --metrics and the fix (%r)" % r.stderr.strip())

# --- live scrapes against NDJSON -----------------------------------------------
t.require_bpf()
_, big = t.start_worker("--duty", "0.6")
_, small = t.start_worker("--duty", "0.2")
TICKS = 40
erg = t.Erg("top", "--pid", "%d=big" % big, "--pid", "%d=small" % small, "--json",
            "--metrics", "127.0.0.1:0", "--supply-watts", "1", "--slot", "0.25", "0.25", str(TICKS))
deadline = time.monotonic() + 60
port = None
while port is None and time.monotonic() < deadline:
    m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", erg.stderr())
    if m:
        port = int(m.group(1))
    elif erg.proc.poll() is not None:
        t.fail("erg top exited early (%d): %s" % (erg.proc.returncode, erg.stderr()))
    else:
        time.sleep(0.05)
t.check(port is not None, "erg top says where /metrics listens")


def scrape():
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as resp:
        ctype = resp.headers["Content-Type"]
        body = resp.read().decode()
    if not ctype.startswith("text/plain; version=0.0.4"):
        t.fail("content type %r" % ctype)
    return {f.name: f for f in text_string_to_metric_families(body)}


def model_joules(fams):
    """{model: cpu + gpu joules} and the sources seen."""
    out, sources = {}, set()
    for s in fams["erg_energy_joules"].samples:
        out[s.labels["model"]] = out.get(s.labels["model"], 0.0) + s.value
        sources.add(s.labels["source"])
    return out, sources


erg.wait_for(lambda l: l.get("type") == "total")
scrapes = []
# scrape through about half of the run, leaving erg top ticking after it
while erg.count_totals() < TICKS // 2:
    fams = scrape()
    scrapes.append(fams)
    time.sleep(0.05)
t.check(len(scrapes) >= 5, "%d scrapes while erg top ticked" % len(scrapes))
fams = scrapes[-1]
want = {"erg_energy_joules": "counter", "erg_bpf_events_dropped": "counter",
        "erg_ledger_demand_joules": "counter", "erg_ledger_supply_joules": "counter",
        "erg_ledger_aux_joules": "counter", "erg_ledger_waste_joules": "counter",
        "erg_ledger_storage_joules": "gauge", "erg_ledger_regime": "gauge"}
for name, typ in want.items():
    if name not in fams or fams[name].type != typ:
        t.fail("family %s (%s) missing or of another type; got %s" % (name, typ, sorted(fams)))
t.log("ok: the energy, ledger and data-loss families parse with their types")

rc = erg.proc.wait(timeout=120)
t.check(rc == 0, "erg top --metrics ran its %d intervals and exited 0 (%d)" % (TICKS, rc))
lines = erg.lines()
t.check_conservation(lines)
# one {model: nj} per tick, in order: a tick's model lines come before its total line
ticks, cur = [], {}
for l in lines:
    if l["type"] == "model":
        cur[l["model"]] = l["nj"]
    elif l["type"] == "total":
        ticks.append(cur)
        cur = {}
t.check(len(ticks) == TICKS, "%d ticks of NDJSON" % len(ticks))

first, last = None, None
prev_tick = 0
for n, fams in enumerate(scrapes):
    got, sources = model_joules(fams)
    if set(got) != {"big", "small"} or "cpu" not in sources or not sources <= {"cpu", "gpu"}:
        t.fail("scrape %d: models %s, sources %s" % (n, sorted(got), sorted(sources)))
    # the tick whose NDJSON equals this scrape for every model at once;
    # joules are written with every digit, so only nJ rounding separates them
    match = [k for k, tick in enumerate(ticks)
             if all(abs(got[mod] - tick[mod] / 1e9) <= 1e-6 for mod in ("big", "small"))]
    if not match:
        t.fail("scrape %d (%r) equals no tick of erg top's NDJSON" % (n, got))
    k = max(k for k in match if k >= prev_tick) if any(k >= prev_tick for k in match) else None
    if k is None:
        t.fail("scrape %d matches tick %r, before the tick %d an earlier scrape showed" % (n, match, prev_tick))
    prev_tick = k
    if first is None:
        first = got
    last = got
t.log("ok: all %d scrapes equal one NDJSON tick for both models (cpu + gpu = the model's joules), in order"
      % len(scrapes))
t.check(first["big"] > 0 and first["small"] > 0, "energy counters above 0 (%r)" % first)
t.check(last["big"] > first["big"] and last["small"] > first["small"],
        "energy counters grew between the first and the last scrape (%r -> %r)" % (first, last))
t.cleanup()

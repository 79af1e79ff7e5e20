"""Per-request joules of an observed worker: erg cuts request windows from
the worker's socket traffic; every request the load generator completed is
reported once, and per-request joules + non-request joules = the worker's
attributed joules, exactly."""
import os
import re
import subprocess
import time
import ergtest as t

t.require_bpf()
demo = os.path.join(t.OUT, "demo", "demo_worker")
loadgen = os.path.join(t.OUT, "demo", "loadgen")
w = subprocess.Popen([demo, "--port", "0", "--model", "m", "--params-m", "300"],
                     stdout=subprocess.PIPE, text=True, start_new_session=True)
t._started.append(w)
line = w.stdout.readline()
m = re.search(r"port=(\d+) pid=(\d+)", line)
if not m:
    t.fail("demo worker did not start: %r" % line)
port, pid = m.group(1), int(m.group(2))

erg = t.Erg("top", "--pid", "%d=m" % pid, "--json", "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
lg = subprocess.run([loadgen, "--url", "http://127.0.0.1:%s" % port, "--rate", "10", "--duration", "4",
                     "--max-tokens", "96", "--seed", "3"], capture_output=True, text=True, timeout=60)
m = re.search(r"(\d+) ok, (\d+) failed", lg.stdout + lg.stderr)
if lg.returncode != 0 or not m:
    t.fail("loadgen failed: %s %s" % (lg.stdout, lg.stderr))
ok = int(m.group(1))
t.check(ok >= 20, "load generator completed %d requests" % ok)
# requests end at close, next request, or 2 s of quiet: wait for all
erg.wait_for(lambda l: len([x for x in erg.lines() if x.get("type") == "request"]) >= ok, timeout=20)
erg.wait_ticks(2)
lines = erg.lines()
reqs = [l for l in lines if l.get("type") == "request"]
row = erg.last_model("m")
t.check(erg.stop() == 0, "erg exits 0")
t.check(len(reqs) == ok, "one request line per completed request (%d = %d)" % (len(reqs), ok))
t.check(len(set(r["id"] for r in reqs)) == len(reqs), "request ids are unique")
t.check(all(r["bytes_in"] > 0 and r["bytes_out"] > 0 for r in reqs), "every request read and answered")
t.check(row["requests_active"] == 0, "no request left open")
sum_nj = sum(r["nj"] for r in reqs)
t.check(sum_nj == row["request_nj"], "sum of per-request nJ (%d) = model's request nJ (%d)" % (sum_nj, row["request_nj"]))
nonreq_nj = round(row["nonrequest_joules"] * 1e9)
t.check(abs(sum_nj + nonreq_nj - row["nj"]) <= 1,
        "per-request + non-request = worker's attributed joules (%d + %d = %d)" % (sum_nj, nonreq_nj, row["nj"]))
share = sum_nj / row["nj"]
t.log("requests: %d, %.3f J in requests of %.3f J attributed (%.1f%%)" % (len(reqs), sum_nj / 1e9, row["nj"] / 1e9, 100 * share))
t.check(share > 0.8, "under load, most of the worker's energy is inside request windows (%.1f%%)" % (100 * share))
t.check_conservation(lines)
t.cleanup()

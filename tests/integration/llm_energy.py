"""erg on the real llama.cpp engine (issue: real inference under erg):
- attached by pid to an already-running erg-llm-worker (ggml's thread pool:
  many threads in one process), CPU seconds within 2% of /proc, and the
  per-request joules + non-request joules = the worker's attributed joules;
- erg calibrate over the generated model ladder: J/token rises with the
  parameter count, the fitted eta explains it (R^2), and the scenario it
  writes runs in erg sim."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import ergtest as t

t.require_bpf()
worker_bin = os.path.join(t.OUT, "llm", "erg-llm-worker")
models_dir = os.path.join(t.OUT, "models")
ladder = ["erg-30m", "erg-130m", "erg-340m"]
if not os.path.exists(worker_bin) or not all(os.path.exists(os.path.join(models_dir, m + ".gguf")) for m in ladder):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-s", "-C", t.ROOT, "OUT=" + os.path.abspath(t.OUT), "engine", "models"],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        if not os.path.exists(os.path.join(t.ROOT, "node_modules", ".erg-engine-installed")):
            t.skip("the llama.cpp engine could not be installed from npm (make engine failed, log above)")
        t.fail("make engine models failed with the engine installed")


def start_llm(model, threads):
    p = subprocess.Popen([worker_bin, "--model-file", os.path.join(models_dir, model + ".gguf"), "--port", "0",
                          "--threads", str(threads), "--model", model],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    t._started.append(p)
    line = p.stdout.readline()
    m = re.search(r"port=(\d+) pid=(\d+) params=(\d+)", line)
    if not m:
        t.fail("erg-llm-worker did not start: %r" % line)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


# --- A: an already-running engine worker, many threads ------------------------
port, pid, params = start_llm("erg-130m", 2)
t.signal_group(pid, signal.SIGSTOP)
time.sleep(0.2)
before = t.group_cpu_seconds(pid)
erg = t.Erg("top", "--pid", "%d=erg-130m" % pid, "--json", "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
t.signal_group(pid, signal.SIGCONT)
# about 30 tokens/s offered, well under what one 130M worker decodes on two
# busy cores (about 50/s), so no request waits out the worker's queue
lg = subprocess.run([os.path.join(t.OUT, "demo", "loadgen"), "--url", "http://127.0.0.1:%d" % port,
                     "--rate", "2", "--duration", "6", "--max-tokens", "24", "--seed", "5"],
                    capture_output=True, text=True, timeout=120)
m = re.search(r"(\d+) ok, (\d+) failed", lg.stdout + lg.stderr)
if lg.returncode != 0 or not m:
    t.fail("loadgen against the engine failed: %s %s" % (lg.stdout, lg.stderr))
ok = int(m.group(1))
time.sleep(0.5)
t.signal_group(pid, signal.SIGSTOP)
time.sleep(0.1)
erg.wait_for(lambda l: len([x for x in erg.lines() if x.get("type") == "request"]) >= ok, timeout=20)
erg.wait_ticks(2)
after = t.group_cpu_seconds(pid)
t.log("erg-llm-worker pid %d ran %d threads" % (pid, len(os.listdir("/proc/%d/task" % pid))))
row = erg.last_model("erg-130m")
reqs = [l for l in erg.lines() if l.get("type") == "request"]
erg.stop()
t.signal_group(pid, signal.SIGCONT)
proc = after - before
err = t.relative_error(row["cpu_s"], proc)
t.log("engine worker: erg %.3f s, /proc %.3f s, error %.2f%%; %d requests" % (row["cpu_s"], proc, 100 * err, ok))
t.check(ok >= 5, "the engine served %d requests" % ok)
t.check(proc > 1.0, "the engine worker burned CPU (%.2f s)" % proc)
t.check(err < 0.02, "engine worker CPU seconds within 2%% of /proc (%.2f%%)" % (100 * err))
t.check(len(reqs) == ok, "one request line per completed request (%d = %d)" % (len(reqs), ok))
sum_nj = sum(r["nj"] for r in reqs)
t.check(sum_nj == row["request_nj"], "per-request nJ add up to the worker's request nJ")
nonreq_nj = round(row["nonrequest_joules"] * 1e9)
t.check(abs(sum_nj + nonreq_nj - row["nj"]) <= 1, "per-request + non-request = worker's attributed joules")
t.log("per-request joules: %s" % ", ".join("%.3f" % r["joules"] for r in reqs))
t.cleanup()

# --- B: erg calibrate over the ladder -----------------------------------------
workers = [start_llm(m, 1) for m in ladder]
args = []
for m, (port, pid, params) in zip(ladder, workers):
    args += ["--worker", "%s:%d:%d:%d" % (m, pid, port, params)]
out = "/tmp/erg-calibrated-%d.ini" % os.getpid()
r = subprocess.run([t.ERG, "calibrate", *args, "--requests", "2", "--max-tokens", "32", "--json", "--out", out,
                    "--base", os.path.join(t.ROOT, "scenarios", "reference.ini")],
                   capture_output=True, text=True, timeout=300)
print(r.stderr)
if r.returncode != 0:
    t.fail("erg calibrate exited %d: %s" % (r.returncode, r.stderr))
cal = json.loads(r.stdout)
jpt = [m["joules_per_token"] for m in cal["models"]]
for m in cal["models"]:
    t.log("%-9s %11d params  %.5f J/token  (%d tokens, %.2f J)" % (m["model"], m["params"], m["joules_per_token"],
                                                                     m["completion_tokens"], m["joules"]))
t.log("eta %.4g FLOP/J, R^2 %.4f" % (cal["eta"], cal["r2"]))
t.check(jpt[0] < jpt[1] < jpt[2], "J/token rises with parameter count")
t.check(cal["r2"] > 0.8, "fitted eta explains J/token (R^2 %.3f > 0.8)" % cal["r2"])
text = open(out).read()
t.check("joules_per_token" in text and "eta =" in text, "the scenario has the measured table and eta")
sim = subprocess.run([t.ERG, "sim", "--scenario", out, "--slots", "200", "--json"], capture_output=True, text=True,
                     timeout=120)
if sim.returncode != 0:
    t.fail("erg sim on the calibrated scenario exited %d: %s" % (sim.returncode, sim.stderr))
doc = json.loads(sim.stdout)
t.check(doc.get("mu", 0) > 0, "erg sim runs on the measured table (mu %.4g J/slot)" % doc.get("mu", 0))
os.unlink(out)
t.cleanup()

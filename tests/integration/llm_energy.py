"""erg on the real llama.cpp engine:
- attached by pid to an already-running erg-llm-worker (ggml's thread pool:
  many threads in one process), CPU seconds within 0.5% of the kernel's figure
  at the same frozen instants, and the per-request joules + non-request
  joules = the worker's attributed joules; the load offered is sized from the
  decode rate measured on this machine at the start, so a slow or busy
  machine gets a lighter load, not HTTP 503s;
- erg calibrate over the generated model ladder: J/token rises with the
  parameter count, the fitted eta explains it (R^2), and the scenario it
  writes runs in erg sim. Other work on a shared machine changes the CPU
  time a token costs while the models are measured one after the other, so
  a fit below the R^2 bar is measured once more before the test fails."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
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
    # a request that finds the slot busy waits for it (10 min) instead of
    # being answered 503 after the default 10 s: the tests check energy,
    # not how fast this machine decodes
    p = subprocess.Popen([worker_bin, "--model-file", os.path.join(models_dir, model + ".gguf"), "--port", "0",
                          "--threads", str(threads), "--model", model, "--queue-ms", "600000"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    t._started.append(p)
    line = p.stdout.readline()
    m = re.search(r"port=(\d+) pid=(\d+) params=(\d+)", line)
    if not m:
        t.fail("erg-llm-worker did not start: %r" % line)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def decode_rate(port, max_tokens, requests=2):
    """Tokens per second one worker generates here and now, prompt included:
    a few requests one after the other."""
    tokens, seconds = 0, 0.0
    for i in range(requests):
        body = json.dumps({"messages": [{"role": "user", "content": "warm-up %d" % i}],
                           "max_tokens": max_tokens}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, data=body,
                                     headers={"Content-Type": "application/json"})
        start = time.monotonic()
        with urllib.request.urlopen(req, timeout=600) as r:
            answer = json.load(r)
        seconds += time.monotonic() - start
        tokens += answer["usage"]["completion_tokens"]
    if tokens == 0:
        t.fail("the engine generated no tokens in %d warm-up requests" % requests)
    return tokens / seconds


def process_cpu_s(pid):
    """The kernel's CPU time of a whole process to the nanosecond, threads
    that have exited included (the pool and the HTTP server may end
    threads): its process CPU-time clock, as clock_getcpuclockid gives."""
    return time.clock_gettime_ns(((~pid) << 3) | 2) / 1e9


# --- A: an already-running engine worker, many threads ------------------------
MAX_TOKENS = 24
ARRIVALS = 12  # rate x duration: with a fixed seed, loadgen sends the same requests at any rate
port, pid, params = start_llm("erg-130m", 2)
# ggml's threads wait for each other spinning: on two cores taken by other
# work a 2-thread pool collapses (0.6 tokens/s measured at load 10 where one
# thread made 16), so there the worker runs one ggml thread, and says so
probe = decode_rate(port, 8, requests=1)
if probe < 4:
    t.log("NOTE: 2 ggml threads decode %.1f tokens/s on this busy machine: testing with 1 ggml thread" % probe)
    os.killpg(pid, signal.SIGKILL)
    port, pid, params = start_llm("erg-130m", 1)
tps = decode_rate(port, MAX_TOKENS)
# offer at most 60% of what the worker decodes, counting every request at
# its full budget (they average about 2/3 of it), so the queue stays short
rate = min(2.0, 0.6 * tps / MAX_TOKENS)
duration = ARRIVALS / rate
t.log("engine decodes %.1f tokens/s here: offering %.2f requests/s for %.1f s" % (tps, rate, duration))
t.freeze_groups([pid])
before = process_cpu_s(pid)
erg = t.Erg("top", "--pid", "%d=erg-130m" % pid, "--json", "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
t.signal_group(pid, signal.SIGCONT)
lg = subprocess.run([os.path.join(t.OUT, "demo", "loadgen"), "--url", "http://127.0.0.1:%d" % port,
                     "--rate", "%.4f" % rate, "--duration", "%.3f" % duration, "--max-tokens", str(MAX_TOKENS),
                     "--seed", "5", "--timeout", "600", "--grace", "600"],
                    capture_output=True, text=True, timeout=1800)
m = re.search(r"(\d+) ok, (\d+) failed", lg.stdout + lg.stderr)
if lg.returncode != 0 or not m:
    t.fail("loadgen against the engine failed: %s %s" % (lg.stdout, lg.stderr))
ok = int(m.group(1))
# every answer is out once loadgen returns; erg closes a request 2 s after
# its answer (--request-idle), so wait for all of them, then freeze
erg.wait_for(lambda l: len([x for x in erg.lines() if x.get("type") == "request"]) >= ok, timeout=120)
t.freeze_groups([pid])
after = process_cpu_s(pid)
t.log("erg-llm-worker pid %d ran %d threads" % (pid, len(os.listdir("/proc/%d/task" % pid))))
row = erg.reading_after("erg-130m")
reqs = [l for l in erg.lines() if l.get("type") == "request"]
erg.stop()
t.signal_group(pid, signal.SIGCONT)
proc = after - before
err = t.relative_error(row["cpu_s"], proc)
t.log("engine worker: erg %.3f s, /proc %.3f s, error %.3f%%; %d requests" % (row["cpu_s"], proc, 100 * err, ok))
t.check(ok >= 5, "the engine served %d requests" % ok)
t.check(proc > 1.0, "the engine worker burned CPU (%.2f s)" % proc)
t.check(err < 0.005, "engine worker CPU seconds within 0.5%% of /proc (%.3f%%)" % (100 * err))
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
out = os.path.join(t.TMP, "calibrated.ini")


def calibrate():
    r = subprocess.run([t.ERG, "calibrate", *args, "--requests", "2", "--max-tokens", "32", "--json", "--out", out,
                        "--base", os.path.join(t.ROOT, "scenarios", "reference.ini")],
                       capture_output=True, text=True, timeout=300)
    print(r.stderr)
    if r.returncode != 0:
        t.fail("erg calibrate exited %d: %s" % (r.returncode, r.stderr))
    cal = json.loads(r.stdout)
    for m in cal["models"]:
        t.log("%-9s %11d params  %.5f J/token  (%d tokens, %.2f J)" % (m["model"], m["params"], m["joules_per_token"],
                                                                         m["completion_tokens"], m["joules"]))
    t.log("eta %.4g FLOP/J, R^2 %.4f" % (cal["eta"], cal["r2"]))
    return cal


cal = calibrate()
if cal["r2"] <= 0.8:
    t.log("NOTE: R^2 %.3f on this machine's load: calibrating once more" % cal["r2"])
    cal = calibrate()
jpt = [m["joules_per_token"] for m in cal["models"]]
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
t.cleanup()

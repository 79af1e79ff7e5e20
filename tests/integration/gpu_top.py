"""erg top's GPU part against the stub CUDA driver (tests/gpu/): counts from
the libcuda probes are exact against the stub's ground truth, GPU busy time
is within 5% of the device time the stub measured, nothing is counted twice
when one driver entry point calls another, two workers on one device get
their shares, workers started after attach are picked up, ioctls on
/dev/nvidia* (and only those) are counted, 50 workers are attached (the
attach time is reported), and attributed + unattributed = total to the
nanojoule with GPU energy included."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import ergtest as t

t.require_bpf()
WORKER = os.path.join(t.OUT, "gpu", "fake_gpu_worker")
STUB = os.path.join(t.OUT, "gpu", "libcuda.so.1")
if not os.access(WORKER, os.X_OK) or not os.path.exists(STUB):
    t.fail("%s or %s is missing: run make first" % (WORKER, STUB))
BUSY_TOLERANCE = 0.05
TMP = t.TMP  # removed at exit by ergtest


class GpuWorker:
    """fake_gpu_worker --commands: runs tokens when told, reports the stub's
    ground truth."""

    def __init__(self, *args, env=None, name=None):
        e = dict(os.environ)
        e.update(env or {})
        # the worker's RUNPATH ($ORIGIN) finds the stub, except under ASan,
        # whose dlopen interceptor makes libasan the caller
        e["LD_LIBRARY_PATH"] = os.path.dirname(STUB) + (":" + e["LD_LIBRARY_PATH"] if e.get("LD_LIBRARY_PATH") else "")
        cmd = [WORKER, "--commands"] + list(args)
        if name:
            cmd += ["--name", name]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=e, start_new_session=True)
        t._started.append(self.p)
        line = self.p.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            t.fail("fake_gpu_worker did not start: %r" % line)
        self.pid = int(line[1])

    def _ask(self, cmd, tag):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line.startswith(tag + " "):
            t.fail("fake_gpu_worker answered %r to %r" % (line, cmd))
        truth = json.loads(line.split(" ", 1)[1])
        if not truth["stub"]:
            t.fail("fake_gpu_worker did not load the stub driver")
        return truth

    def truth(self):
        return self._ask("truth", "truth")

    def run(self, tokens):
        return self._ask("run %d" % tokens, "done")

    def run_async(self, tokens):
        self.p.stdin.write("run %d\n" % tokens)
        self.p.stdin.flush()

    def wait_done(self):
        line = self.p.stdout.readline()
        if not line.startswith("done "):
            t.fail("fake_gpu_worker answered %r" % line)
        return json.loads(line.split(" ", 1)[1])

    def quit(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()


def delta(a, b, key):
    return b[key] - a[key]


def gpu_rows(erg, model):
    rows = [l for l in erg.lines() if l.get("type") == "model" and l.get("model") == model and "gpu_s" in l]
    if not rows:
        t.fail("erg printed no GPU fields for model %s; stderr: %s" % (model, erg.stderr()))
    return rows


def settle(erg, n=2):
    """Wait for n more ticks: a tick closes what happened before it."""
    erg.wait_ticks(n)


def check_conservation_gpu(lines):
    t.check_conservation(lines)
    totals = [l for l in lines if l.get("type") in ("total", "summary") and "gpu_nj" in l]
    t.check(len(totals) > 0, "total lines carry gpu_nj")
    for l in totals:
        if l["gpu_attributed_nj"] + l["gpu_unattributed_nj"] != l["gpu_nj"]:
            t.fail("GPU energy not conserved: %r" % l)
        if l["gpu_nj"] > l["total_nj"]:
            t.fail("GPU energy above the total: %r" % l)
    t.log("ok: GPU attributed + unattributed = GPU total on %d lines, and the total includes it" % len(totals))


def make_node(name):
    """A character device named like the driver's nodes (the numbers of
    /dev/null, so ioctl() just fails with ENOTTY)."""
    path = os.path.join(TMP, name)
    try:
        os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
    except OSError as e:
        t.log("NOTE: cannot create a device node (%s): ioctl counts not checked" % e)
        return None
    return path


nvidia_node = make_node("nvidia0")
other_node = make_node("othergpu0")
# ~60 ms of device time per token: windows long enough that the latencies
# at their ends (the synchronizing thread waking up, the uprobes themselves)
# stay small against them: about 0.25 ms per token on a quiet 2-core VM, but
# 1.5 ms at load average 13, which is 7.8% of a 20 ms token and 2.6% of 60
SLOW = {"ERG_STUB_NS_PER_THREAD": "60"}
THINK_MS = "150"  # host time between tokens, scaled with the device time

# ---- 1. attach to an already running worker: exact counts, busy time ----
envA = dict(SLOW)
if nvidia_node:
    envA["ERG_STUB_DEVNODE"] = nvidia_node
a = GpuWorker("--graph", "--streams", "2", "--sync", "mix", env=envA)
erg = t.Erg("top", "--pid", "%d=alpha" % a.pid, "--json", "--no-requests", "0.5")
erg.wait_for(lambda l: l.get("type") == "total" and l.get("gpu_status") == "active")
settle(erg, 1)
before = a.truth()
after = a.run(100)
settle(erg)
row = gpu_rows(erg, "alpha")[-1]
for key, field in (("launches", "launches"), ("graph_launches", "gpu_graph_launches"),
                   ("launch_threads", "gpu_threads"), ("copies", "gpu_copies"),
                   ("bytes_h2d", "gpu_bytes_h2d"), ("bytes_d2h", "gpu_bytes_d2h"),
                   ("syncs", "gpu_syncs")):
    t.check(row[field] == delta(before, after, key),
            "%s: erg %d == stub %d" % (field, row[field], delta(before, after, key)))
t.check(row["gpu_failed"] == delta(before, after, "failed_launches"),
        "rejected launches are not launches (%d failed calls)" % row["gpu_failed"])
t.check(row["gpu_nested"] > 0 and row["launches"] == delta(before, after, "launches"),
        "%d calls nested in other entry points were seen and not counted again" % row["gpu_nested"])
if nvidia_node:
    t.check(row["gpu_ioctls"] == delta(before, after, "ioctls") and row["gpu_ioctls"] > 0,
            "ioctls on the nvidia node: erg %d == stub %d" % (row["gpu_ioctls"], delta(before, after, "ioctls")))
busy_truth = delta(before, after, "busy_ns") / 1e9
err = t.relative_error(row["gpu_s"], busy_truth)
t.log("alpha: busy erg %.4f s, stub %.4f s, error %+.2f%%; launches %d" %
      (row["gpu_s"], busy_truth, 100 * (row["gpu_s"] - busy_truth) / busy_truth, row["launches"]))
t.check(busy_truth > 1.0, "the stub's device was busy over 1 s (%.2f s)" % busy_truth)
t.check(err < BUSY_TOLERANCE, "GPU busy time within 5%% of the stub's (%.2f%%)" % (100 * err))
t.check(row["gpu_source"] in ("model", "nvml", "nvml+model"), "gpu_source is %s" % row["gpu_source"])
t.check(row["gpu_joules"] > 0 and row["joules"] >= row["gpu_joules"], "the model's joules include its GPU joules")
total = [l for l in erg.lines() if l.get("type") == "total"][-1]
t.check(total["gpu_probes"] >= 20, "%d probes attached (%s)" % (total["gpu_probes"], total["gpu_probes_detail"]))
if total["gpu_source"] == "model":
    t.check("GPU energy: model" in total["gpu_detail"], "the model says so: %s" % total["gpu_detail"])
rc = erg.stop()
t.check(rc == 0, "erg top exits 0 on SIGINT")
check_conservation_gpu(erg.lines())
a.quit()

# ---- 2. the same with --raw-tp: ioctls through raw_tp/sys_enter ----
if nvidia_node:
    a = GpuWorker("--sync", "ctx", env=envA)
    erg = t.Erg("top", "--pid", "%d=alpha" % a.pid, "--json", "--no-requests", "--raw-tp", "0.5")
    erg.wait_for(lambda l: l.get("type") == "total" and l.get("gpu_status") == "active")
    settle(erg, 1)
    total = [l for l in erg.lines() if l.get("type") == "total"][-1]
    t.check("ioctls via raw_tp" in total["gpu_probes_detail"], "--raw-tp counts ioctls via raw_tp")
    before = a.truth()
    after = a.run(20)
    settle(erg)
    row = gpu_rows(erg, "alpha")[-1]
    t.check(row["gpu_ioctls"] == delta(before, after, "ioctls"),
            "raw_tp: ioctls erg %d == stub %d" % (row["gpu_ioctls"], delta(before, after, "ioctls")))
    t.check(row["launches"] == delta(before, after, "launches"), "raw_tp run: launches exact")
    erg.stop()
    check_conservation_gpu(erg.lines())
    a.quit()

# ---- 3. two workers on one device get their shares ----
envB = dict(SLOW)
if other_node:
    envB["ERG_STUB_DEVNODE"] = other_node	# not a /dev/nvidia* name: no ioctls count
# host time between tokens keeps the two below one device's worth of busy
# time per tick: the shares of the device's active energy are then the
# shares of busy time (a saturated device is capped at 100% busy)
big = GpuWorker("--grid", "128", "--sync", "stream", "--think-ms", THINK_MS, env=SLOW)
small = GpuWorker("--grid", "64", "--sync", "ctx", "--think-ms", THINK_MS, env=envB)
erg = t.Erg("top", "--pid", "%d=big" % big.pid, "--pid", "%d=small" % small.pid, "--json", "--no-requests", "0.5")
erg.wait_for(lambda l: l.get("type") == "total" and l.get("gpu_status") == "active")
settle(erg, 1)
b0, s0 = big.truth(), small.truth()
big.run_async(30)
small.run_async(40)
b1, s1 = big.wait_done(), small.wait_done()
settle(erg)
rb, rs = gpu_rows(erg, "big")[-1], gpu_rows(erg, "small")[-1]
tb, ts = delta(b0, b1, "busy_ns") / 1e9, delta(s0, s1, "busy_ns") / 1e9
t.log("big: erg %.3f s / stub %.3f s, %.2f J; small: erg %.3f s / stub %.3f s, %.2f J" %
      (rb["gpu_s"], tb, rb["gpu_joules"], rs["gpu_s"], ts, rs["gpu_joules"]))
for name, r, truth_s, d0, d1 in (("big", rb, tb, b0, b1), ("small", rs, ts, s0, s1)):
    t.check(r["launches"] == delta(d0, d1, "launches"), "%s: launches exact with two workers" % name)
    t.check(t.relative_error(r["gpu_s"], truth_s) < BUSY_TOLERANCE,
            "%s: busy within 5%% (%.2f%%)" % (name, 100 * t.relative_error(r["gpu_s"], truth_s)))
share = rb["gpu_joules"] / (rb["gpu_joules"] + rs["gpu_joules"])
truth_share = tb / (tb + ts)
t.check(abs(share - truth_share) < 0.05 * truth_share,
        "big's share of the GPU joules %.3f vs its share of device time %.3f" % (share, truth_share))
active_w = 630.0  # the model's default
for name, r in (("big", rb), ("small", rs)) if rb["gpu_source"] == "model" else ():
    t.check(abs(r["gpu_joules"] - active_w * r["gpu_s"]) < 0.01 * active_w * r["gpu_s"],
            "%s: GPU joules %.2f = %.0f W x %.3f busy s (model, device not saturated)" %
            (name, r["gpu_joules"], active_w, r["gpu_s"]))
if other_node:
    t.check(rs["gpu_ioctls"] == 0 and delta(s0, s1, "ioctls") > 0,
            "ioctls on a device not named nvidia* are not counted (stub made %d)" % delta(s0, s1, "ioctls"))
erg.stop()
check_conservation_gpu(erg.lines())
big.quit()
small.quit()

# ---- 4. workers started after attach ----
# --comm with the program's own name: adopted at exec, before its first call
erg = t.Erg("top", "--comm", "fake_gpu_worker=late", "--json", "--no-requests", "0.5")
erg.wait_ticks(2)
# "none" where the machine has no /dev/nvidia* device, "waiting" where it has one
idle_status = "waiting" if any(re.fullmatch(r"nvidia[0-9]+", d) for d in os.listdir("/dev")) else "none"
t.check(all(l.get("gpu_status") == idle_status for l in erg.lines() if l.get("type") == "total"),
        "no worker maps libcuda yet: GPU part %s" % idle_status)
t.check(not any("gpu_s" in l for l in erg.lines() if l.get("type") == "model"),
        "and no GPU fields before that")
w1 = GpuWorker(env=SLOW)
erg.wait_for(lambda l: l.get("type") == "total" and l.get("gpu_status") == "active")
settle(erg)
l0 = gpu_rows(erg, "late")[-1]["launches"]
t0 = w1.truth()
t1 = w1.run(40)
settle(erg)
l1 = gpu_rows(erg, "late")[-1]["launches"]
t.check(l1 - l0 == delta(t0, t1, "launches"), "first late worker (probed on sight): launches exact (%d)" % (l1 - l0))
# the second maps a library already probed: it counts from its first call,
# warm-up included
w2 = GpuWorker(env=SLOW)
t2a = w2.truth()
t2b = w2.run(40)
settle(erg)
row = gpu_rows(erg, "late")[-1]
t.check(row["gpu_procs"] == 2, "both late workers are in the model row")
t.check(row["launches"] - l1 == t2b["launches"],
        "second late worker: every launch since its start counted (%d, %d of them before its run)" %
        (row["launches"] - l1, t2a["launches"]))
# a worker that ends keeps what it did
w1.quit()
settle(erg)
gone = gpu_rows(erg, "late")[-1]
t.check(gone["gpu_procs"] == 1 and gone["launches"] == row["launches"] and gone["gpu_s"] >= row["gpu_s"],
        "after one late worker exits: 1 GPU process, its %d launches and busy time kept" % gone["launches"])
erg.stop()
check_conservation_gpu(erg.lines())
w2.quit()

# ---- 4b. every tracked process's maps are read at attach ----
# the GPU worker between two idle CPU-only processes in tgid order (the
# order erg walks them): its library is probed before erg's first line, so
# calls made right after attach count, even if it never runs again
def idle_process():
    p = subprocess.Popen(["sleep", "600"], start_new_session=True)
    t._started.append(p)
    return p


trio = [idle_process(), GpuWorker(env=SLOW), idle_process()]
while not trio[0].pid < trio[1].pid < trio[2].pid:	# pids wrapped: start the last one again
    trio[2].kill()
    trio[2] = idle_process()
erg = t.Erg("top", *sum((["--pid", "%d=trio" % p.pid] for p in trio), []), "--json", "--no-requests", "0.5")
first = erg.wait_for(lambda l: l.get("type") == "total")[0]
# probed at attach, the GPU part counts from attach: the first interval has
# GPU joules (the device's idle power at least); probed only at the first
# tick, it would count from there and this line would have none
t.check(first.get("gpu_status") == "active" and first.get("gpu_nj", 0) > 0,
        "GPU worker between two idle processes: probed at attach, GPU joules from the first line (%s, %.3f J)"
        % (first.get("gpu_status"), first.get("gpu_nj", 0) / 1e9))
t0 = trio[1].truth()
t1 = trio[1].run(10)
settle(erg)
t.check(gpu_rows(erg, "trio")[-1]["launches"] == delta(t0, t1, "launches"),
        "... and its launches right after attach counted exactly (%d)" % delta(t0, t1, "launches"))
erg.stop()
check_conservation_gpu(erg.lines())
trio[1].quit()
for p in (trio[0], trio[2]):
    p.kill()
    p.wait()

# ---- 5. 50 workers: attach time, and every launch counted ----
many = [GpuWorker(name="erg_gpu_many") for _ in range(50)]
start = time.monotonic()
erg = t.Erg("top", "--comm", "erg_gpu_many=many", "--json", "--no-requests", "0.5")
first = erg.wait_for(lambda l: l.get("type") == "total" and l.get("gpu_status") == "active")[0]
wall = time.monotonic() - start
t.log("50 workers: probes attached in %.1f ms (scan of 50 maps + BPF load + attach); erg up with GPU active after %.2f s" %
      (first["gpu_attach_ms"], wall))
# a figure to read, not a bar: on a busy machine attach time is the
# scheduler's, and the checks below are what must hold
t.check(first["gpu_attach_ms"] > 0, "erg reports its probe attach time (%.1f ms for 50 workers)" % first["gpu_attach_ms"])
settle(erg)
base = gpu_rows(erg, "many")[-1]["launches"]
before = [w.truth()["launches"] for w in many]
for w in many:
    w.run_async(2)
after = [w.wait_done()["launches"] for w in many]
settle(erg)
row = gpu_rows(erg, "many")[-1]
t.check(row["gpu_procs"] == 50, "50 GPU processes in the model row")
t.check(row["launches"] - base == sum(after) - sum(before),
        "50 workers: launches exact (%d)" % (row["launches"] - base))
erg.stop()
check_conservation_gpu(erg.lines())
for w in many:
    w.quit()

t.cleanup()

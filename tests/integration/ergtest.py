"""Helpers for erg's integration tests: start stand-in workers, read /proc,
run erg and read its NDJSON. A test exits 0 (pass), 77 (skip, said loudly)
or 1 (fail, with the reason)."""
import json
import os
import signal
import subprocess
import sys
import time

ERG = os.environ.get("ERG", "build/erg")
OUT = os.environ.get("ERG_OUT", "build")
ROOT = os.environ.get("ERG_ROOT", ".")
BUSY = os.path.join(OUT, "fixtures", "busy_worker")
CLK_TCK = os.sysconf("SC_CLK_TCK")

_started = []
_ergs = []  # every Erg, so a failing test leaves none running


def log(msg):
    print(msg, flush=True)


def skip(reason):
    log("SKIP: " + reason)
    cleanup()
    sys.exit(77)


def fail(msg):
    log("FAIL: " + msg)
    cleanup()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    log("ok: " + msg)


def require_bpf():
    if os.geteuid() != 0:
        skip("needs root to load BPF programs (CI runs as root)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip("kernel has no BTF (/sys/kernel/btf/vmlinux)")


def cleanup():
    for e in _ergs:
        if e.proc.poll() is None:
            e.proc.kill()
            e.proc.wait()
    _ergs.clear()
    for p in _started:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    _started.clear()


def start_worker(*args, name=None):
    """Start busy_worker in its own process group; returns (Popen, pid)."""
    cmd = [BUSY] + list(args)
    if name:
        cmd += ["--name", name]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    _started.append(p)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "ready":
        fail("busy_worker did not start: %r" % line)
    return p, int(line[1])


def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def group_cpu_seconds(pgid):
    return sum(proc_cpu_seconds(p) for p in group_pids(pgid))


def signal_group(pgid, sig):
    os.killpg(pgid, sig)


class Erg:
    """erg running in the background with its stdout in a file."""

    def __init__(self, *args, tmpdir="/tmp"):
        self.path = os.path.join(tmpdir, "erg-out-%d-%d.ndjson" % (os.getpid(), time.monotonic_ns()))
        self.errpath = self.path + ".err"
        self.out = open(self.path, "w")
        self.err = open(self.errpath, "w")
        self.proc = subprocess.Popen([ERG] + list(args), stdout=self.out, stderr=self.err)
        _ergs.append(self)

    def lines(self):
        with open(self.path) as f:
            out = []
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        fail("erg printed a line that is not JSON: %r" % line)
            return out

    def wait_for(self, pred, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail("erg exited early (%d): %s" % (self.proc.returncode, open(self.errpath).read()))
            got = [l for l in self.lines() if pred(l)]
            if got:
                return got
            time.sleep(0.05)
        fail("timed out waiting for erg output; stderr: " + open(self.errpath).read())

    def count_totals(self):
        return len([l for l in self.lines() if l.get("type") == "total"])

    def wait_ticks(self, n, timeout=15):
        start = self.count_totals()
        self.wait_for(lambda l: self.count_totals() >= start + n, timeout)

    def last_model(self, model):
        rows = [l for l in self.lines() if l.get("type") == "model" and l.get("model") == model]
        if not rows:
            fail("erg printed no line for model %s" % model)
        return rows[-1]

    def stop(self, sig=signal.SIGINT, timeout=10):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("erg did not exit within %ds of signal %d" % (timeout, sig))
        self.out.close()
        self.err.close()
        return rc

    def stderr(self):
        return open(self.errpath).read()


def check_conservation(lines):
    """attributed + unattributed = total, exactly, on every total line."""
    totals = [l for l in lines if l.get("type") in ("total", "summary")]
    check(len(totals) > 0, "erg printed total lines")
    for t in totals:
        if t["attributed_nj"] + t["unattributed_nj"] != t["total_nj"]:
            fail("energy not conserved: %r" % t)
    log("ok: attributed + unattributed = total on all %d total lines" % len(totals))


def relative_error(measured, reference):
    return abs(measured - reference) / reference if reference > 0 else float("inf")

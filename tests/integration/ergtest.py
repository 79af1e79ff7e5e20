"""Helpers for erg's integration tests: start stand-in workers, read /proc,
run erg and read its NDJSON. A test exits 0 (pass), 77 (skip, said loudly)
or 1 (fail, with the reason), and leaves no process or file behind."""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ERG = os.environ.get("ERG", "build/erg")
OUT = os.environ.get("ERG_OUT", "build")
ROOT = os.environ.get("ERG_ROOT", ".")
BUSY = os.path.join(OUT, "fixtures", "busy_worker")
CLK_TCK = os.sysconf("SC_CLK_TCK")

_started = []
_ergs = []  # every Erg, so a failing test leaves none running
# one scratch directory per test for erg's output and anything else a test
# writes; removed at exit, whether the test passes, fails or raises
TMP = tempfile.mkdtemp(prefix="erg-test-")


def _remove_scratch():
    cleanup()
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_remove_scratch)
# tests/run.sh and timeout(1) stop a test with SIGTERM: exit through atexit
signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))


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
    """utime + stime of a process, exited threads included, in whole clock
    ticks: up to 20 ms short of the kernel's nanosecond figure."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _thread_files(pid, name):
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/%s" % (pid, tid, name)) as f:
                out.append(f.read())
        except OSError:
            pass  # the thread exited while we looked
    return out


def proc_cpu_seconds_exact(pid):
    """The kernel's on-CPU time of a process to the nanosecond: the sum of
    its live threads' sum_exec_runtime (/proc/PID/task/TID/schedstat). A
    thread that exited took its time with it, so where utime + stime is
    larger the clock-tick figure is the better one."""
    ticks = proc_cpu_seconds(pid)
    stats = _thread_files(pid, "schedstat")
    if not stats:
        return ticks
    exact = sum(int(s.split()[0]) for s in stats) / 1e9
    return max(exact, ticks)


def group_cpu_seconds(pgid):
    return sum(proc_cpu_seconds_exact(p) for p in group_pids(pgid))


def group_stopped(pgid):
    """True when every thread of every process in the group is stopped
    (state T) or gone: none can run between two readings."""
    for pid in group_pids(pgid):
        for st in _thread_files(pid, "stat"):
            if st.rsplit(")", 1)[1].split()[0] not in ("T", "t", "Z", "X"):
                return False
    return True


def freeze_group(pgid, timeout=60):
    """SIGSTOP a process group and wait until it has really stopped: every
    thread in state T and its CPU time no longer moving. On a loaded machine
    a runnable thread can take a long while to be scheduled and see the
    signal; readings taken before that compare different instants."""
    os.killpg(pgid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if group_stopped(pgid):
            now = group_cpu_seconds(pgid)
            if now == last:
                return now
            last = now
        time.sleep(0.02)
    fail("process group %d did not stop within %d s of SIGSTOP" % (pgid, timeout))


def run_until_burned(pgids, start, seconds, timeout=180):
    """Let frozen groups run until each has used `seconds` of CPU since
    `start` ({pgid: CPU seconds}), then freeze them again; returns their CPU
    seconds while frozen. The window is sized by CPU used, not wall time,
    so a loaded machine gives a longer window, not a smaller sample."""
    for pg in pgids:
        os.killpg(pg, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(group_cpu_seconds(pg) - start[pg] >= seconds for pg in pgids):
            break
        time.sleep(0.1)
    return freeze_groups(pgids)


def freeze_groups(pgids):
    """Freeze several groups; returns {pgid: CPU seconds while frozen}."""
    for pg in pgids:
        os.killpg(pg, signal.SIGSTOP)
    return {pg: freeze_group(pg) for pg in pgids}


def signal_group(pgid, sig):
    os.killpg(pgid, sig)


class Erg:
    """erg running in the background with its stdout in a file."""

    def __init__(self, *args, tmpdir=None, env=None):
        tmpdir = tmpdir or TMP
        self.path = os.path.join(tmpdir, "erg-out-%d-%d.ndjson" % (os.getpid(), time.monotonic_ns()))
        self.errpath = self.path + ".err"
        self.out = open(self.path, "w")
        self.err = open(self.errpath, "w")
        self.proc = subprocess.Popen([ERG] + list(args), stdout=self.out, stderr=self.err,
                                     env=dict(os.environ, **env) if env else None)
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

    def reading_after(self, model, timeout=30):
        """erg's row for a model from a tick that began after this call: a
        tick's line is printed at its end, so the second total line from now
        closes a tick read entirely after now. With the workers frozen
        before the call, that row and /proc describe the same instant."""
        self.wait_ticks(2, timeout)
        return self.last_model(model)

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

"""erg top follows workers through their lives: children forked after
attach are adopted by the fork hook, a worker that exits mid-run is dropped
cleanly (no map entry left, erg keeps running), a --comm target picks up a
process started after attach (exec hook), and a --cgroup target counts the
processes of that cgroup."""
import os
import shutil
import signal
import subprocess
import time
import ergtest as t

t.require_bpf()

# --- a child forked after attach -------------------------------------------
_, late = t.start_worker("--duty", "0.3", "--late-children", "1", "--late-after", "1.0")
before = t.freeze_groups([late])
erg = t.Erg("top", "--pid", "%d=late" % late, "--json", "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
t.signal_group(late, signal.SIGCONT)
# the child is forked 1 s after start: wait for it, run until the tree has
# burned CPU, then compare at an instant where the whole tree is frozen
deadline = time.monotonic() + 60
while len(t.group_pids(late)) < 2 and time.monotonic() < deadline:
    time.sleep(0.1)
after = t.run_until_burned([late], before, 1.5)
proc = after[late] - before[late]
row = erg.reading_after("late")
t.check(row["workers"] == 2, "child forked after attach is adopted (2 processes, got %d)" % row["workers"])
err = t.relative_error(row["cpu_s"], proc)
t.log("late fork: erg %.3f s, /proc %.3f s, error %.2f%%" % (row["cpu_s"], proc, 100 * err))
t.check(err < 0.005, "late-forked tree within 0.5%% of /proc (%.3f%%)" % (100 * err))
erg.stop()
t.cleanup()

# --- a worker that exits mid-run ---------------------------------------------
p, short = t.start_worker("--duty", "0.5")
_, stays = t.start_worker("--duty", "0.2")
erg = t.Erg("top", "--pid", "%d=short" % short, "--pid", "%d=stays" % stays, "--json", "0.5")
# it exits once erg has seen it run (a fixed lifetime could end before a
# loaded machine has erg attached)
erg.wait_for(lambda l: l.get("type") == "model" and l["model"] == "short" and l["workers"] == 1 and l["cpu_s"] > 0.05,
             timeout=60)
os.kill(short, signal.SIGTERM)
p.wait(timeout=60)
erg.wait_ticks(3)
row = erg.last_model("short")
alive = [l["cpu_s"] for l in erg.lines() if l.get("type") == "model" and l["model"] == "short" and l["workers"] == 1]
t.check(row["workers"] == 0, "exited worker leaves no tracked process behind")
t.check(alive and row["cpu_s"] > 0 and row["cpu_s"] >= max(alive),
        "its CPU time is kept after it exits (%.3f s, %.3f s at its last tick alive)" %
        (row["cpu_s"], max(alive) if alive else 0))
t.check(erg.proc.poll() is None, "erg keeps running after a worker exits")
t.check(erg.last_model("stays")["workers"] == 1, "the other worker is still tracked")
t.check(erg.stop() == 0, "erg exits 0")
t.check_conservation(erg.lines())
t.cleanup()

def counted_whole_life(erg, model, pid, label, tracked_what, counted_what):
    """Run pid until it has burned a second of CPU, freeze it, and compare
    erg's next reading of model with the kernel's figure at that frozen
    instant (the process's whole life): tracked, and within 2%."""
    frozen = t.run_until_burned([pid], {pid: 0.0}, 1.0)[pid]
    row = erg.reading_after(model)
    t.log("%s: erg %.3f s, /proc %.3f s (the process's whole life, fork to now)" % (label, row["cpu_s"], frozen))
    t.check(row["workers"] == 1, tracked_what)
    t.check(frozen > 0.9 and row["cpu_s"] >= frozen * 0.98,
            "%s (erg %.3f >= 98%% of %.3f)" % (counted_what, row["cpu_s"], frozen))
    t.check(row["cpu_s"] <= frozen * 1.02, "and not more than it burned (erg %.3f <= 102%% of %.3f)" % (row["cpu_s"], frozen))
    return row


# --- --comm picks up a process started after attach --------------------------
spin = os.path.join(t.TMP, "ergspin")
shutil.copy(t.BUSY, spin)
erg = t.Erg("top", "--comm", "ergspin=spinner", "--json", "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
t.check(erg.last_model("spinner")["workers"] == 0, "no ergspin process before it starts")
sp = subprocess.Popen([spin, "--duty", "0.5"], stdout=subprocess.DEVNULL, start_new_session=True)
t._started.append(sp)
row = counted_whole_life(erg, "spinner", sp.pid, "comm", "the ergspin process started after attach is tracked",
                         "process started after attach counted from its exec")
os.killpg(sp.pid, signal.SIGKILL)
sp.wait(timeout=60)
erg.wait_ticks(2)
gone = erg.last_model("spinner")
t.check(gone["workers"] == 0, "the exited ergspin process is dropped")
t.check(gone["cpu_s"] >= row["cpu_s"], "its CPU time is kept after it exits")
erg.stop()
t.cleanup()

# --- --comm picks up a process that renames itself after attach ---------------
# busy_worker --name calls prctl(PR_SET_NAME) first thing after its exec: the
# exec shows "busy_worker", only the rename shows the target's name. erg lists
# /proc only every 10 s, so counting it from its first second means the BPF
# side saw the rename (task_rename).
erg = t.Erg("top", "--comm", "ergrenamed=renamed", "--json", "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
t.check(erg.last_model("renamed")["workers"] == 0, "no ergrenamed process before it starts")
_, rp = t.start_worker("--duty", "0.5", name="ergrenamed")
counted_whole_life(erg, "renamed", rp, "rename", "the process renamed to ergrenamed after attach is tracked",
                   "it is counted from its rename")
erg.stop()
t.cleanup()

# --- --cgroup ------------------------------------------------------------------
mnt = None
with open("/proc/mounts") as f:
    for line in f:
        parts = line.split()
        if parts[2] == "cgroup2":
            mnt = parts[1]
            break
if mnt is None:
    t.skip("no cgroup v2 mount for the --cgroup part (the rest passed)")
cg = os.path.join(mnt, "erg-test-%d" % os.getpid())
os.mkdir(cg)
try:
    _, member = t.start_worker("--duty", "0.4")
    _, outsider = t.start_worker("--duty", "0.4")
    t.signal_group(member, signal.SIGSTOP)
    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
        f.write(str(member))
    before = t.freeze_groups([member])
    erg = t.Erg("top", "--cgroup", cg + "=boxed", "--json", "0.5")
    erg.wait_for(lambda l: l.get("type") == "total")
    after = t.run_until_burned([member], before, 1.5)
    proc = after[member] - before[member]
    row = erg.reading_after("boxed")
    err = t.relative_error(row["cpu_s"], proc)
    t.log("cgroup: erg %.3f s, /proc %.3f s, error %.2f%%, processes %d" % (row["cpu_s"], proc, 100 * err, row["workers"]))
    t.check(row["workers"] == 1, "only the process in the cgroup is tracked")
    t.check(err < 0.005, "cgroup member within 0.5%% of /proc (%.3f%%)" % (100 * err))
    erg.stop()
finally:
    t.cleanup()
    time.sleep(0.2)
    os.rmdir(cg)

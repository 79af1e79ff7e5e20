"""erg top --pid on workers started before erg: CPU seconds of each worker
(main thread, extra threads, forked children) within 2% of /proc utime+stime
over the same window, for the tp_btf programs and the raw_tp fallback."""
import signal
import sys
import time
import ergtest as t

t.require_bpf()
mode = sys.argv[1] if len(sys.argv) > 1 else "tp_btf"
extra = ["--raw-tp"] if mode == "raw_tp" else []

# single-threaded, and threads + forked children at partial duty
_, solo = t.start_worker("--duty", "0.6")
_, tree = t.start_worker("--threads", "2", "--children", "1", "--duty", "0.25")
for pg in (solo, tree):
    t.signal_group(pg, signal.SIGSTOP)
time.sleep(0.2)
before = {pg: t.group_cpu_seconds(pg) for pg in (solo, tree)}

erg = t.Erg("top", "--pid", "%d=solo" % solo, "--pid", "%d=tree" % tree, "--json", *extra, "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
t.check(erg.lines()[-1].get("sched") == mode, "erg runs the %s programs" % mode)
for pg in (solo, tree):
    t.signal_group(pg, signal.SIGCONT)
time.sleep(5)
for pg in (solo, tree):
    t.signal_group(pg, signal.SIGSTOP)
time.sleep(0.1)
erg.wait_ticks(2)
after = {pg: t.group_cpu_seconds(pg) for pg in (solo, tree)}
rows = {m: erg.last_model(m) for m in ("solo", "tree")}
rc = erg.stop()
t.check(rc == 0, "erg top exits 0 on SIGINT")

for name, pg in (("solo", solo), ("tree", tree)):
    proc = after[pg] - before[pg]
    got = rows[name]["cpu_s"]
    err = t.relative_error(got, proc)
    t.log("%s: erg %.3f s, /proc %.3f s, error %.2f%%, processes %d" %
          (name, got, proc, 100 * err, rows[name]["workers"]))
    t.check(proc > 1.0, "%s burned CPU in the window (%.2f s)" % (name, proc))
    t.check(err < 0.02, "%s CPU seconds within 2%% of /proc (%.2f%%)" % (name, 100 * err))
t.check(rows["tree"]["workers"] == 2, "the forked child counts for its worker (2 processes)")
t.check_conservation(erg.lines())
summary = [l for l in erg.lines() if l.get("type") == "summary"]
t.check(len(summary) == 1, "one summary line after SIGINT")
t.cleanup()

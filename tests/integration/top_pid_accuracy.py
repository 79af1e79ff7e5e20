"""erg top --pid on workers started before erg: CPU seconds of each worker
(main thread, extra threads, forked children) within 2% of the kernel's own
figure (schedstat) over the same window, for the tp_btf programs and the
raw_tp fallback. Both ends of the window are instants at which the workers
are frozen (SIGSTOP, every thread seen stopped), so erg and /proc describe
the same moments however late a loaded machine schedules anyone."""
import sys
import ergtest as t

t.require_bpf()
mode = sys.argv[1] if len(sys.argv) > 1 else "tp_btf"
extra = ["--raw-tp"] if mode == "raw_tp" else []
BAR = 0.02

# single-threaded, and threads + forked children at partial duty
_, solo = t.start_worker("--duty", "0.6")
_, tree = t.start_worker("--threads", "2", "--children", "1", "--duty", "0.25")
before = t.freeze_groups((solo, tree))

erg = t.Erg("top", "--pid", "%d=solo" % solo, "--pid", "%d=tree" % tree, "--json", *extra, "0.5")
erg.wait_for(lambda l: l.get("type") == "total")
t.check(erg.lines()[-1].get("sched") == mode, "erg runs the %s programs" % mode)
after = t.run_until_burned((solo, tree), before, 2.5)
erg.wait_ticks(2)
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
    t.check(err < BAR, "%s CPU seconds within 2%% of /proc (%.2f%%)" % (name, 100 * err))
t.check(rows["tree"]["workers"] == 2, "the forked child counts for its worker (2 processes)")
t.check_conservation(erg.lines())
summary = [l for l in erg.lines() if l.get("type") == "summary"]
t.check(len(summary) == 1, "one summary line after SIGINT")
t.cleanup()

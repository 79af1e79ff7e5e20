/* The loader of bpf/sched.bpf.c: attaches to the targets of a target_set and
 * reads on-CPU time per worker (one worker per target, same order).
 *
 * Shape, as in libbpf-tools: open the skeleton, set rodata, pick tp_btf or
 * raw_tp (bpf_program__set_autoload), load, fill the maps, attach, then scan
 * /proc for processes that were already running; one cleanup path. */
#ifndef ERG_TRACKER_H
#define ERG_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include "targets.h"

struct tracker_opts {
	bool force_raw_tp;	/* skip tp_btf (tests the fallback) */
	bool verbose;		/* print libbpf's debug output */
	const char *proc_root;	/* NULL: /proc */
};

struct tracker;

/* Needs root or CAP_BPF+CAP_PERFMON. NULL on failure with a one-line reason
 * and hint in err. */
struct tracker *tracker_open(const struct target_set *targets, const struct tracker_opts *opts,
			     char *err, size_t errlen);

/* Cumulative on-CPU seconds of each worker since attach, including the
 * slices in flight on each CPU; cpu_s has one slot per target. procs gets the
 * number of live processes per worker (may be NULL). */
int tracker_read(struct tracker *t, double *cpu_s, unsigned *procs);

/* Re-scan /proc, at attach and then at most every 10 s (the BPF programs
 * adopt and drop processes as they fork, exec, rename and exit; this is the
 * safety net): adopt processes matching --comm targets or children of
 * tracked ones that were missed, and drop entries of processes that are
 * gone. Only processes new to /proc are read (an untracked one again after
 * 1, 2, 4 ... 16 listings), so the cost does not grow with the tracked
 * ones. Cheap to call every tick. */
void tracker_refresh(struct tracker *t);

/* "tp_btf" or "raw_tp": which sched_switch program runs. */
const char *tracker_mode(const struct tracker *t);

/* Adopt one more process into worker `worker` (used by tests and by callers
 * that learn of a worker's pid later). */
int tracker_adopt(struct tracker *t, int pid, unsigned worker);

/* The tracked processes now, sorted by tgid: *tgids, *workers and *cpu_ns
 * (on-CPU nanoseconds of finished slices; both may be NULL) point into the
 * tracker and stay valid until its next call. Read in batches, a few
 * syscalls for any number of processes; the one tracker_read took this tick
 * (since the last tracker_refresh) is reused. Returns the count. */
size_t tracker_snapshot(struct tracker *t, const unsigned **tgids, const unsigned **workers,
			const unsigned long long **cpu_ns);

/* The worker a process belongs to; -1 if it is not tracked. */
int tracker_worker_of(struct tracker *t, unsigned tgid);

/* fd of the tgid -> worker map, for other BPF objects to share
 * (bpf_map__reuse_fd) so they follow the same processes. */
int tracker_procs_fd(const struct tracker *t);
/* fd of the per-CPU "who runs since when" map, shared likewise. */
int tracker_cpu_state_fd(const struct tracker *t);
/* Per-thread runtime counted so far (thread_marks), shared like procs. */
int tracker_thread_marks_fd(const struct tracker *t);
/* On-CPU nanoseconds of one tracked process so far (finished slices);
 * 0 if it is not tracked. */
unsigned long long tracker_proc_cpu_ns(struct tracker *t, unsigned tgid);

void tracker_close(struct tracker *t);

/* Whether this process may load tracing BPF programs; if not, err says what is
 * missing (root, or CAP_BPF+CAP_PERFMON). */
bool tracker_privileged(char *err, size_t errlen);

#endif

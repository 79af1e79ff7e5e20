/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* Types and constants shared by the BPF programs (bpf/) and user space (user/).
 * Plain C types only: this header must compile both against vmlinux.h and
 * against the C library headers. */
#ifndef ERG_H
#define ERG_H

#define ERG_MAX_WORKERS   256   /* targets (models x attach specs) per erg run */
#define ERG_MAX_TGIDS     16384 /* tracked processes at once */
#define ERG_MAX_CGROUPS   64
#define ERG_MAX_CGROUP_DEPTH 16
#define ERG_COMM_LEN      16

/* Value of the tgid -> worker map: which worker (target slot) a process
 * belongs to, and its own on-CPU time while it lives. */
struct erg_proc {
	unsigned int worker_id;
	unsigned int _pad;
	unsigned long long cpu_ns;
};

/* Per-worker counters, one copy per CPU (summed by user space, as
 * sched_ext's schedulers do): they outlive the processes that earned them. */
struct erg_worker_counters {
	unsigned long long cpu_ns;     /* on-CPU time of every tracked tgid */
	unsigned long long switches;   /* times a tracked task left a CPU */
	unsigned long long forks;      /* children adopted through fork */
	unsigned long long execs;      /* processes adopted by --comm at exec */
	unsigned long long exits;      /* tracked processes that ended */
};

#define ERG_NO_WORKER 0xffffffffu

/* What runs on one CPU since when: the slice in flight, which user space adds
 * to the counters when it reads them (a busy task alone on a CPU may not be
 * switched out for seconds). */
struct erg_cpu_state {
	unsigned long long since_ns;	/* CLOCK_MONOTONIC of the last switch */
	unsigned int tgid;
	unsigned int worker_id;		/* ERG_NO_WORKER if not tracked */
};

#endif /* ERG_H */

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

/* Socket traffic of a tracked process, one event per socket send/receive
 * that moved bytes, and one when the local side closes a TCP connection
 * (bpf/sockets.bpf.c). User space turns the stream of events per connection
 * into request windows (user/requests.h). */
enum erg_sock_dir { ERG_SOCK_IN = 0, ERG_SOCK_OUT = 1, ERG_SOCK_CLOSE = 2 };

#define ERG_SOCK_HEAD_LEN 64	/* first bytes of an I/O copied (request line, status line) */
#define ERG_SOCK_SSE_SCAN 512	/* bytes of a send scanned for SSE "data:" lines */
/* Socket events are read every ERG_SOCK_READ_MS while they flow (else
 * every 100 ms), and at once when ERG_SOCK_WAKE_BYTES of them wait (about
 * 500 events); each carries its own time, so reading late costs nothing. */
#define ERG_SOCK_READ_MS 10
#define ERG_SOCK_WAKE_BYTES (64 * 1024)

struct erg_sock_event {
	unsigned long long ts_ns;	/* CLOCK_MONOTONIC */
	unsigned long long cpu_ns;	/* the process's on-CPU time so far (stamp) */
	unsigned long long sock;	/* the connection: kernel address of its struct sock */
	unsigned int tgid;
	unsigned int dir;		/* enum erg_sock_dir */
	unsigned int bytes;
	unsigned int sse_events;	/* "data:" at line starts in the first ERG_SOCK_SSE_SCAN bytes sent */
	unsigned int head_len;		/* bytes of head filled; 0: the payload was not readable */
	unsigned int _pad;
	char head[ERG_SOCK_HEAD_LEN];	/* the first bytes moved */
};

/* ---- GPU driver calls (bpf/gpu.bpf.c) ---- */

/* Counters of one tracked process from its CUDA driver calls and its ioctls
 * on /dev/nvidia*, key: tgid. Launches and copies count when the call
 * returned success; a call that reaches another probed entry point counts
 * once (the outermost call). */
struct erg_gpu_proc {
	unsigned int worker_id;		/* from the sched side's procs map */
	unsigned int _pad;
	unsigned long long launches;	/* kernel launches + graph launches */
	unsigned long long graph_launches;
	unsigned long long threads;	/* sum of grid x block over kernel launches */
	unsigned long long copies;	/* memcpy calls (sync and async) */
	unsigned long long bytes_h2d;
	unsigned long long bytes_d2h;
	unsigned long long syncs;	/* stream/context/event synchronize calls */
	unsigned long long sync_ns;	/* host time blocked in them */
	unsigned long long ioctls;	/* ioctl() on a /dev/nvidia* character device */
	unsigned long long nested;	/* probed calls made from inside another */
	unsigned long long failed;	/* calls that returned an error */
	unsigned long long busy_ns;	/* closed busy windows */
	unsigned long long window;	/* the open busy window, ERG_GPU_WIN_* */
	unsigned long long enqueue_seq;	/* work items enqueued (launches, copies) */
	unsigned long long streams;	/* streams seen (each got a window slot) */
	unsigned long long races;	/* window updates given up under contention */
};

/* The open busy window of a process, one word so that it changes with one
 * compare-and-swap: bits 63..48 are stream slots with work outstanding (a
 * stream gets slot streams % ERG_GPU_STREAM_SLOTS), bits 47..0 the
 * CLOCK_MONOTONIC time (ns mod 2^48, about 78 h) at which the first of them
 * got work. No slot set: no window is open. */
#define ERG_GPU_STREAM_SLOTS	16
#define ERG_GPU_WIN_SLOTS_SHIFT	48
#define ERG_GPU_WIN_SINCE_MASK	((1ULL << 48) - 1)
#define ERG_GPU_WIN_SLOTS(w)	((unsigned)((w) >> ERG_GPU_WIN_SLOTS_SHIFT))
#define ERG_GPU_WIN_SINCE(w)	((w) & ERG_GPU_WIN_SINCE_MASK)

#endif /* ERG_H */

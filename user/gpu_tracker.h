/* The loader of bpf/gpu.bpf.c: CUDA driver-call probes and /dev/nvidia*
 * ioctl counts of the processes a tracker (user/tracker.h) follows, summed
 * per worker.
 *
 * The driver library is found in each tracked process's /proc/PID/maps
 * (any file named libcuda.so*), or given (--libcuda PATH). Each library file
 * is probed once for every process (pid -1) and the BPF side counts only
 * tracked processes, so attaching costs the same for 1 or 50 workers, and a
 * worker started later that maps an already probed library counts from its
 * first call. Symbol offsets are read from the library's ELF symbol table
 * in one pass; an entry point the library lacks is skipped (said with -v).
 * The BPF programs are loaded only when a first library is found. */
#ifndef ERG_GPU_TRACKER_H
#define ERG_GPU_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tracker.h"

struct gpu_tracker_opts {
	const char *libcuda;	/* probe this file from the start; NULL: find it */
	const char *proc_root;	/* NULL: /proc */
	bool force_raw_tp;	/* count ioctls with raw_tp/sys_enter even if the
				 * syscalls:sys_enter_ioctl tracepoint is there */
	bool verbose;		/* say which symbols are missing */
};

/* Per worker, cumulative since attach (processes that ended included). */
struct gpu_worker_counters {
	uint64_t launches, graph_launches, threads, copies, bytes_h2d, bytes_d2h;
	uint64_t syncs, sync_ns, ioctls, nested, failed, races;
	uint64_t busy_ns;	/* closed busy windows + the open ones up to now */
	unsigned procs;		/* live processes that used the GPU */
	int device;		/* the one /dev/nvidiaN its processes have open; -1 unknown */
};

struct gpu_tracker;

/* Follows the processes of `procs` (shares its tgid -> worker map). With
 * opts->libcuda, loads and attaches at once (failure: NULL, reason in err);
 * otherwise only checks its arguments. */
struct gpu_tracker *gpu_tracker_open(struct tracker *procs, size_t n_workers,
				     const struct gpu_tracker_opts *opts, char *err, size_t errlen);

/* Look for driver libraries in the maps of tracked processes not known to
 * map one yet, and probe each new library file. Returns the number of
 * libraries newly probed, or -1 with a reason in err (the tracker then
 * keeps what it had). */
int gpu_tracker_scan(struct gpu_tracker *t, char *err, size_t errlen);

/* At least one library is probed. */
bool gpu_tracker_active(const struct gpu_tracker *t);

/* Sums the per-process counters per worker into out[0..n_workers), at
 * CLOCK_MONOTONIC now. Processes that are gone are folded into their
 * worker's totals. Returns 0, or -errno. */
int gpu_tracker_read(struct gpu_tracker *t, struct gpu_worker_counters *out);

/* One line: libraries, probes attached, missing symbols, ioctl mode. */
const char *gpu_tracker_describe(const struct gpu_tracker *t);

/* Milliseconds the first activation took: finding the library in the
 * tracked processes' maps, loading the BPF programs, attaching the probes. */
double gpu_tracker_attach_ms(const struct gpu_tracker *t);

/* Probes (uprobes + uretprobes) attached, over all libraries. */
size_t gpu_tracker_probes(const struct gpu_tracker *t);

void gpu_tracker_close(struct gpu_tracker *t);

#endif

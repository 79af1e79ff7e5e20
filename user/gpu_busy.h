/* GPU busy time per worker per tick, estimated from CUDA driver calls.
 *
 * What it measures: for each process, the union over its streams of the
 * windows from "work enqueued on the stream" (a kernel launch, graph launch
 * or copy returned) to "the stream is known to be drained" (a synchronize on
 * it, on its event, or on the whole context returned; a synchronous copy
 * returned). bpf/gpu.bpf.c keeps the closed windows' total and the open
 * window; this module turns those cumulative readings into busy seconds per
 * tick.
 *
 * Where it is wrong:
 * - Launches are asynchronous: enqueue is not execution. The window starts
 *   when the host enqueues, not when the GPU starts (later, if earlier work
 *   is still queued: then it overlaps the previous window, which the union
 *   absorbs), and the GPU may finish long before the host synchronizes: a
 *   host that enqueues, computes on the CPU, then synchronizes is counted
 *   busy for its CPU time too. The estimate is an upper bound of the work's
 *   execution time between synchronizations.
 * - A process that never synchronizes (or only through calls erg does not
 *   probe, e.g. cuStreamQuery polling or cuStreamWaitEvent) keeps its window
 *   open: it counts as busy until it does.
 * - The GPU's own parallelism is invisible: two processes time-sliced on
 *   one GPU are both "busy"; a kernel that uses 1% of the SMs counts like
 *   one that uses all of them. Per-process NVML utilisation, where the
 *   driver gives it, is used instead for the energy split (user/gpu_attrib.h).
 * - Work submitted without the probed entry points (cuGetProcAddress tables
 *   that bypass the exported symbols, other APIs) is not seen; the ioctl
 *   count on /dev/nvidia* still shows that the process talks to the GPU.
 * - More than ERG_GPU_STREAM_SLOTS streams share window slots: draining one
 *   stream can close the window of another in the same slot (an
 *   underestimate until that stream's next enqueue).
 * - A window open for more than 2^47 ns (39 hours) without any drain counts
 *   as 0 (its start is kept mod 2^48). */
#ifndef ERG_GPU_BUSY_H
#define ERG_GPU_BUSY_H

#include <stddef.h>
#include <stdint.h>

/* Cumulative busy ns of one process at now_ns (CLOCK_MONOTONIC): its closed
 * windows plus the open one (erg.h ERG_GPU_WIN_*) up to now. */
uint64_t gpu_busy_cumulative_ns(uint64_t closed_ns, uint64_t window, uint64_t now_ns);

/* Turns cumulative readings per worker into busy seconds per tick. A tick
 * never reports more than max_s per worker (the tick's length times the
 * GPUs the worker can use); what is above is carried into later ticks, and
 * a reading that went backwards (a process gone, its open window dropped)
 * reports 0 until the reading passes what was already reported. */
struct gpu_busy {
	size_t n;
	uint64_t *reported_ns;	/* cumulative ns already reported, per worker */
};

int gpu_busy_init(struct gpu_busy *b, size_t n_workers);
void gpu_busy_tick(struct gpu_busy *b, const uint64_t *cumulative_ns, double max_s, double *busy_s);
void gpu_busy_free(struct gpu_busy *b);

/* Busy seconds of one device in a tick from its workers' busy seconds:
 * their sum (contexts of different processes are time-sliced, not run
 * together), at most the tick's length dt_s. */
double gpu_busy_device_s(const double *busy_s, size_t n, double dt_s);

#endif

// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* GPU activity of tracked processes from their CUDA driver calls (uprobes
 * and uretprobes on libcuda.so.1) and their ioctls on /dev/nvidia*.
 *
 * The tracked set is the `procs` map of sched.bpf.c, shared by fd
 * (bpf_map__reuse_fd): the probes are attached once per library file for
 * every process (pid -1), and a call counts only if its tgid is in `procs`,
 * so workers that start after attach, forked children and exec'd --comm
 * targets count from their first call.
 *
 * Per tgid (`gpu_procs`): launches, launched threads (grid x block), bytes
 * copied, host time blocked in synchronize calls, ioctls, and busy windows:
 * a stream's window opens when work is enqueued on it (launch, copy) and
 * closes when a synchronize on it (or on the whole context) returns. The
 * process's window is the union over its streams; user space turns it into
 * busy seconds (user/gpu_busy.h says where that is wrong).
 *
 * A call that reaches another probed entry point (cuLaunchKernel calling
 * cuLaunchKernel_ptsz inside the driver) counts once: the outermost call
 * leaves a per-thread marker with its stack pointer; an entry below it on
 * the same stack is nested. A marker whose return was never seen is stale
 * as soon as a call enters at or above its stack pointer.
 *
 * The kernel side only counts; user space decides what the counts mean. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "erg.h"
#include "fd_file.bpf.h"
#include "procs_map.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* CUDA stream handles with a meaning of their own (cuda.h: CU_STREAM_*) */
#define CU_STREAM_LEGACY	1ULL
#define CU_STREAM_PER_THREAD	2ULL

#if defined(__TARGET_ARCH_x86)
#define NR_IOCTL 16
#elif defined(__TARGET_ARCH_arm64)
#define NR_IOCTL 29
#else
#define NR_IOCTL -1
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ERG_MAX_TGIDS);
	__type(key, __u32);
	__type(value, struct erg_gpu_proc);
} gpu_procs SEC(".maps");

enum call_kind {
	CALL_LAUNCH,		/* cuLaunchKernel[Ex][_ptsz] */
	CALL_GRAPH,		/* cuGraphLaunch[_ptsz] */
	CALL_COPY,		/* cuMemcpy{HtoD,DtoH}_v2[_ptds]: synchronous */
	CALL_COPY_ASYNC,	/* cuMemcpy{HtoD,DtoH}Async_v2[_ptsz] */
	CALL_SYNC_STREAM,
	CALL_SYNC_CTX,
	CALL_SYNC_EVENT,
	CALL_EVENT_RECORD,
};

/* The outermost probed call a thread is in, from entry to return. */
struct call {
	__u64 sp;		/* stack pointer at entry */
	__u64 entry_ns;
	__u64 stream;		/* stream key (stream_key()) */
	__u64 threads;
	__u64 bytes;
	__u64 event;
	__u32 kind;
	__u32 depth;		/* nested probed calls in flight */
	__u32 d2h;		/* copy direction: 1 device to host */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);	/* pid_tgid */
	__type(value, struct call);
} calls SEC(".maps");

struct stream_key {
	__u32 tgid;
	__u32 _pad;
	__u64 stream;
};

struct stream_val {
	__u64 slot;		/* bit index in the window word */
	__u64 last_seq;		/* enqueue_seq of the latest work on the stream */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stream_key);
	__type(value, struct stream_val);
} streams SEC(".maps");

struct event_key {
	__u32 tgid;
	__u32 _pad;
	__u64 event;
};

struct event_val {
	__u64 stream;		/* stream key the event was recorded on */
	__u64 seq;		/* enqueue_seq when it was recorded */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct event_key);
	__type(value, struct event_val);
} events SEC(".maps");

#define WIN_SLOT_BIT(slot)	(1ULL << (ERG_GPU_WIN_SLOTS_SHIFT + (slot)))
#define WIN_TRIES		4

static __always_inline struct erg_gpu_proc *gpu_proc(__u32 tgid, __u32 worker_id)
{
	struct erg_gpu_proc *g = bpf_map_lookup_elem(&gpu_procs, &tgid);

	if (g)
		return g;
	struct erg_gpu_proc fresh = { .worker_id = worker_id };

	bpf_map_update_elem(&gpu_procs, &tgid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&gpu_procs, &tgid);
}

/* The legacy default stream (handle 0 or CU_STREAM_LEGACY) is key 0; the
 * per-thread default stream (_ptsz/_ptds entry points with handle 0, or
 * CU_STREAM_PER_THREAD) is one key per thread, which no real handle (an
 * aligned pointer) can equal. */
static __always_inline __u64 stream_key(__u64 handle, bool per_thread_default)
{
	if (handle == CU_STREAM_PER_THREAD || (handle == 0 && per_thread_default))
		return (bpf_get_current_pid_tgid() << 32) | CU_STREAM_PER_THREAD;
	if (handle == CU_STREAM_LEGACY)
		return 0;
	return handle;
}

/* ns from the window's start to now, mod 2^48. A start after now (another
 * thread opened the window with its entry time after this thread read the
 * clock) reads as a difference above 2^47: that is 0, not 39 hours. */
static __always_inline __u64 elapsed48(__u64 now, __u64 window)
{
	__u64 d = (now - ERG_GPU_WIN_SINCE(window)) & ERG_GPU_WIN_SINCE_MASK;

	return d > (ERG_GPU_WIN_SINCE_MASK >> 1) ? 0 : d;
}

static __always_inline struct stream_val *stream_of(__u32 tgid, __u64 stream, struct erg_gpu_proc *g)
{
	struct stream_key k = { .tgid = tgid, .stream = stream };
	struct stream_val *s = bpf_map_lookup_elem(&streams, &k);

	if (s)
		return s;
	struct stream_val fresh = {
		.slot = __sync_fetch_and_add(&g->streams, 1) % ERG_GPU_STREAM_SLOTS,
	};

	bpf_map_update_elem(&streams, &k, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&streams, &k);
}

/* Work was enqueued on a stream at `since`: its slot joins the window. */
static __always_inline void window_open(struct erg_gpu_proc *g, struct stream_val *s, __u64 since)
{
	__u64 bit = WIN_SLOT_BIT(s->slot & (ERG_GPU_STREAM_SLOTS - 1));

#pragma unroll
	for (int i = 0; i < WIN_TRIES; i++) {
		__u64 old = g->window, new;

		if (old & bit)
			return;
		new = ERG_GPU_WIN_SLOTS(old) ? old | bit : bit | (since & ERG_GPU_WIN_SINCE_MASK);
		if (__sync_val_compare_and_swap(&g->window, old, new) == old)
			return;
	}
	__sync_fetch_and_add(&g->races, 1);
}

/* A stream drained at `now`; the window closes when its last slot does. */
static __always_inline void window_close(struct erg_gpu_proc *g, struct stream_val *s, __u64 now)
{
	__u64 bit = WIN_SLOT_BIT(s->slot & (ERG_GPU_STREAM_SLOTS - 1));

#pragma unroll
	for (int i = 0; i < WIN_TRIES; i++) {
		__u64 old = g->window, new;

		if (!(old & bit))
			return;
		new = old & ~bit;
		if (!ERG_GPU_WIN_SLOTS(new))
			new = 0;
		if (__sync_val_compare_and_swap(&g->window, old, new) == old) {
			if (!new)
				__sync_fetch_and_add(&g->busy_ns, elapsed48(now, old));
			return;
		}
	}
	__sync_fetch_and_add(&g->races, 1);
}

/* Everything drained at `now` (context synchronize). */
static __always_inline void window_close_all(struct erg_gpu_proc *g, __u64 now)
{
#pragma unroll
	for (int i = 0; i < WIN_TRIES; i++) {
		__u64 old = g->window;

		if (!old)
			return;
		if (__sync_val_compare_and_swap(&g->window, old, 0) == old) {
			__sync_fetch_and_add(&g->busy_ns, elapsed48(now, old));
			return;
		}
	}
	__sync_fetch_and_add(&g->races, 1);
}

/* Work enqueued on `stream` at `since` (a successful launch or async copy). */
static __always_inline void enqueued(__u32 tgid, struct erg_gpu_proc *g, __u64 stream, __u64 since)
{
	__u64 seq = __sync_fetch_and_add(&g->enqueue_seq, 1) + 1;
	struct stream_val *s = stream_of(tgid, stream, g);

	if (!s)
		return;
	s->last_seq = seq;
	window_open(g, s, since);
}

/* `stream` drained at `now`. The legacy default stream synchronizes with
 * every blocking stream, so draining it drains the context. */
static __always_inline void drained(__u32 tgid, struct erg_gpu_proc *g, __u64 stream, __u64 now)
{
	struct stream_key k = { .tgid = tgid, .stream = stream };
	struct stream_val *s;

	if (stream == 0) {
		window_close_all(g, now);
		return;
	}
	s = bpf_map_lookup_elem(&streams, &k);
	if (s)
		window_close(g, s, now);
}

/* Entry of a probed call: NULL if the caller is not tracked or the call is
 * nested in another probed call of the same thread. */
static __always_inline struct call *enter(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid(), sp = PT_REGS_SP(ctx);
	__u32 tgid = id >> 32;
	struct erg_proc *proc = bpf_map_lookup_elem(&procs, &tgid);
	struct call *c;

	if (!proc)
		return NULL;
	c = bpf_map_lookup_elem(&calls, &id);
	if (c && c->sp > sp) {	/* called from inside c: the stack grows down */
		struct erg_gpu_proc *g = gpu_proc(tgid, proc->worker_id);

		c->depth++;
		if (g)
			__sync_fetch_and_add(&g->nested, 1);
		return NULL;
	}
	struct call fresh = { .sp = sp, .entry_ns = bpf_ktime_get_ns(), .kind = kind };

	bpf_map_update_elem(&calls, &id, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&calls, &id);
}

/* Return of a probed call: copies the outermost call's marker into *out and
 * removes it; false for a nested return or an untracked caller. */
static __always_inline bool leave(struct call *out)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &id);

	if (!c)
		return false;
	if (c->depth) {
		c->depth--;
		return false;
	}
	*out = *c;
	bpf_map_delete_elem(&calls, &id);
	return true;
}

/* Threads of a grid x block launch, saturating instead of wrapping. */
static __always_inline __u64 launch_threads(__u32 gx, __u32 gy, __u32 gz, __u32 bx, __u32 by, __u32 bz)
{
	__u64 grid = (__u64)gx * gy, block = (__u64)bx * by * bz, limit;

	/* the barriers keep clang from turning the division into a 128-bit
	 * multiply, which BPF does not have */
	limit = gz ? ~0ULL / gz : ~0ULL;
	asm volatile("" : "+r"(limit));
	if (grid > limit)
		return ~0ULL;
	grid *= gz;
	limit = block ? ~0ULL / block : ~0ULL;
	asm volatile("" : "+r"(limit));
	if (grid > limit)
		return ~0ULL;
	return grid * block;
}

/* cuLaunchKernel(f, gridX, gridY, gridZ, blockX, blockY, blockZ,
 *                sharedMemBytes, hStream, kernelParams, extra):
 * on x86-64 the 7th argument and later are on the stack, above the return
 * address that the stack pointer points at on entry. */
static __always_inline int launch_entry(struct pt_regs *ctx, bool ptsz)
{
	struct call *c = enter(ctx, CALL_LAUNCH);
	__u32 by = 1, bz = 1;
	__u64 stream = 0;

	if (!c)
		return 0;
#if defined(__TARGET_ARCH_x86)
	by = (__u32)ctx->r9;	/* 6th argument (libbpf 1.1 has no PT_REGS_PARM6) */
	bpf_probe_read_user(&bz, sizeof(bz), (void *)(c->sp + 8));
	bpf_probe_read_user(&stream, sizeof(stream), (void *)(c->sp + 24));
#endif
	/* other ABIs: blockDimY/Z and the stream are not read yet */
	c->threads = launch_threads((__u32)PT_REGS_PARM2(ctx), (__u32)PT_REGS_PARM3(ctx),
				    (__u32)PT_REGS_PARM4(ctx), (__u32)PT_REGS_PARM5(ctx), by, bz);
	c->stream = stream_key(stream, ptsz);
	return 0;
}

/* CUlaunchConfig (cuda.h), the part read here */
struct cu_launch_config {
	__u32 grid[3];
	__u32 block[3];
	__u32 shared_mem;
	__u32 _pad;
	__u64 stream;
};

/* cuLaunchKernelEx(const CUlaunchConfig *config, f, kernelParams, extra) */
static __always_inline int launch_ex_entry(struct pt_regs *ctx, bool ptsz)
{
	struct call *c = enter(ctx, CALL_LAUNCH);
	struct cu_launch_config cfg = {};

	if (!c)
		return 0;
	if (bpf_probe_read_user(&cfg, sizeof(cfg), (void *)PT_REGS_PARM1(ctx)))
		return 0;
	c->threads = launch_threads(cfg.grid[0], cfg.grid[1], cfg.grid[2],
				    cfg.block[0], cfg.block[1], cfg.block[2]);
	c->stream = stream_key(cfg.stream, ptsz);
	return 0;
}

/* cuGraphLaunch(hGraphExec, hStream) */
static __always_inline int graph_entry(struct pt_regs *ctx, bool ptsz)
{
	struct call *c = enter(ctx, CALL_GRAPH);

	if (c)
		c->stream = stream_key(PT_REGS_PARM2(ctx), ptsz);
	return 0;
}

/* cuMemcpyHtoD_v2(dst, src, bytes), cuMemcpyDtoH_v2(dst, src, bytes),
 * the Async forms with a 4th argument hStream. */
static __always_inline int copy_entry(struct pt_regs *ctx, bool async, bool d2h, bool per_thread)
{
	struct call *c = enter(ctx, async ? CALL_COPY_ASYNC : CALL_COPY);

	if (!c)
		return 0;
	c->bytes = PT_REGS_PARM3(ctx);
	c->d2h = d2h;
	c->stream = stream_key(async ? PT_REGS_PARM4(ctx) : 0, per_thread);
	return 0;
}

static __always_inline int sync_entry(struct pt_regs *ctx, __u32 kind, bool ptsz)
{
	struct call *c = enter(ctx, kind);

	if (!c)
		return 0;
	if (kind == CALL_SYNC_STREAM)
		c->stream = stream_key(PT_REGS_PARM1(ctx), ptsz);
	else if (kind == CALL_SYNC_EVENT)
		c->event = PT_REGS_PARM1(ctx);
	return 0;
}

/* cuEventRecord(hEvent, hStream) */
static __always_inline int record_entry(struct pt_regs *ctx, bool ptsz)
{
	struct call *c = enter(ctx, CALL_EVENT_RECORD);

	if (c) {
		c->event = PT_REGS_PARM1(ctx);
		c->stream = stream_key(PT_REGS_PARM2(ctx), ptsz);
	}
	return 0;
}

/* Every probed call's return: the counting happens here, once the result
 * is known. */
static __always_inline int on_return(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	int rc = (int)PT_REGS_RC(ctx);
	struct erg_proc *proc;
	struct erg_gpu_proc *g;
	struct call c;
	__u64 now;

	if (!leave(&c))
		return 0;
	proc = bpf_map_lookup_elem(&procs, &tgid);
	if (!proc)
		return 0;
	g = gpu_proc(tgid, proc->worker_id);
	if (!g)
		return 0;
	if (rc != 0) {		/* CUDA_SUCCESS is 0; nothing was enqueued */
		__sync_fetch_and_add(&g->failed, 1);
		return 0;
	}
	now = bpf_ktime_get_ns();
	switch (c.kind) {
	case CALL_LAUNCH:
		__sync_fetch_and_add(&g->launches, 1);
		__sync_fetch_and_add(&g->threads, c.threads);
		enqueued(tgid, g, c.stream, c.entry_ns);
		break;
	case CALL_GRAPH:
		__sync_fetch_and_add(&g->launches, 1);
		__sync_fetch_and_add(&g->graph_launches, 1);
		enqueued(tgid, g, c.stream, c.entry_ns);
		break;
	case CALL_COPY:
	case CALL_COPY_ASYNC:
		__sync_fetch_and_add(&g->copies, 1);
		if (c.d2h)
			__sync_fetch_and_add(&g->bytes_d2h, c.bytes);
		else
			__sync_fetch_and_add(&g->bytes_h2d, c.bytes);
		enqueued(tgid, g, c.stream, c.entry_ns);
		/* a synchronous copy has drained its stream when it returns */
		if (c.kind == CALL_COPY)
			drained(tgid, g, c.stream, now);
		break;
	case CALL_SYNC_STREAM:
	case CALL_SYNC_CTX:
	case CALL_SYNC_EVENT:
		__sync_fetch_and_add(&g->syncs, 1);
		__sync_fetch_and_add(&g->sync_ns, now - c.entry_ns);
		if (c.kind == CALL_SYNC_CTX) {
			window_close_all(g, now);
		} else if (c.kind == CALL_SYNC_STREAM) {
			drained(tgid, g, c.stream, now);
		} else {
			/* the event's stream drained if nothing was enqueued on
			 * it after the event was recorded */
			struct event_key ek = { .tgid = tgid, .event = c.event };
			struct event_val *ev = bpf_map_lookup_elem(&events, &ek);
			struct stream_key sk = { .tgid = tgid };
			struct stream_val *s;

			if (!ev)
				break;
			if (ev->stream == 0) {
				if (g->enqueue_seq <= ev->seq)
					window_close_all(g, now);
				break;
			}
			sk.stream = ev->stream;
			s = bpf_map_lookup_elem(&streams, &sk);
			if (s && s->last_seq <= ev->seq)
				window_close(g, s, now);
		}
		break;
	case CALL_EVENT_RECORD: {
		struct event_key ek = { .tgid = tgid, .event = c.event };
		struct event_val ev = { .stream = c.stream, .seq = g->enqueue_seq };

		bpf_map_update_elem(&events, &ek, &ev, BPF_ANY);
		break;
	}
	}
	return 0;
}

/* One uprobe and one uretprobe per entry point; user space attaches each to
 * the symbol named in its section-less program name (user/gpu_tracker.c). */
#define ENTRY(name, body) \
	SEC("uprobe") int BPF_KPROBE(name) { return body; } \
	SEC("uretprobe") int BPF_KRETPROBE(name##_ret) { return on_return(ctx); }

ENTRY(cuLaunchKernel, launch_entry(ctx, false))
ENTRY(cuLaunchKernel_ptsz, launch_entry(ctx, true))
ENTRY(cuLaunchKernelEx, launch_ex_entry(ctx, false))
ENTRY(cuLaunchKernelEx_ptsz, launch_ex_entry(ctx, true))
ENTRY(cuGraphLaunch, graph_entry(ctx, false))
ENTRY(cuGraphLaunch_ptsz, graph_entry(ctx, true))
ENTRY(cuMemcpyHtoD_v2, copy_entry(ctx, false, false, false))
ENTRY(cuMemcpyDtoH_v2, copy_entry(ctx, false, true, false))
ENTRY(cuMemcpyHtoD_v2_ptds, copy_entry(ctx, false, false, true))
ENTRY(cuMemcpyDtoH_v2_ptds, copy_entry(ctx, false, true, true))
ENTRY(cuMemcpyHtoDAsync_v2, copy_entry(ctx, true, false, false))
ENTRY(cuMemcpyDtoHAsync_v2, copy_entry(ctx, true, true, false))
ENTRY(cuMemcpyHtoDAsync_v2_ptsz, copy_entry(ctx, true, false, true))
ENTRY(cuMemcpyDtoHAsync_v2_ptsz, copy_entry(ctx, true, true, true))
ENTRY(cuStreamSynchronize, sync_entry(ctx, CALL_SYNC_STREAM, false))
ENTRY(cuStreamSynchronize_ptsz, sync_entry(ctx, CALL_SYNC_STREAM, true))
ENTRY(cuCtxSynchronize, sync_entry(ctx, CALL_SYNC_CTX, false))
ENTRY(cuEventSynchronize, sync_entry(ctx, CALL_SYNC_EVENT, false))
ENTRY(cuEventRecord, record_entry(ctx, false))
ENTRY(cuEventRecord_ptsz, record_entry(ctx, true))

/* ioctl() on a character device whose name starts with "nvidia" (nvidia0,
 * nvidiactl, nvidia-uvm, ...): the driver-agnostic signal that a process
 * talks to the GPU, whatever library it uses. */
static __always_inline bool fd_is_nvidia(int fd)
{
	struct file *file = current_fd_file(fd);
	const unsigned char *name;
	char buf[8] = {};

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFCHR)
		return false;
	name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(buf, sizeof(buf), name) < 7)
		return false;
	return buf[0] == 'n' && buf[1] == 'v' && buf[2] == 'i' && buf[3] == 'd' &&
	       buf[4] == 'i' && buf[5] == 'a';
}

static __always_inline int on_ioctl(int fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct erg_proc *proc = bpf_map_lookup_elem(&procs, &tgid);
	struct erg_gpu_proc *g;

	if (!proc || !fd_is_nvidia(fd))
		return 0;
	g = gpu_proc(tgid, proc->worker_id);
	if (g)
		__sync_fetch_and_add(&g->ioctls, 1);
	return 0;
}

/* Classic tracepoint: only ioctls, needs tracefs. */
SEC("tracepoint/syscalls/sys_enter_ioctl")
int ioctl_tp(struct trace_event_raw_sys_enter *ctx)
{
	return on_ioctl((int)ctx->args[0]);
}

/* Fallback without tracefs: every syscall, filtered to ioctl here. */
SEC("raw_tp/sys_enter")
int BPF_PROG(ioctl_raw, struct pt_regs *regs, long id)
{
	if (id != NR_IOCTL)
		return 0;
	return on_ioctl((int)PT_REGS_PARM1_CORE_SYSCALL(regs));
}

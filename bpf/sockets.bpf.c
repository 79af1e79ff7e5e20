// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Socket sends and receives of tracked processes, as events for user space
 * to cut into request windows when erg only observes a worker (no proxy).
 *
 * Three program sets; the loader (user/sock_tracker.c) picks one at run time:
 *   - tp_btf on sock:sock_send_length / sock:sock_recv_length (kernel 6.3+)
 *     and sock:inet_sock_set_state: socket I/O only, io_uring's too, and no
 *     cost to any other syscall;
 *   - the same as raw_tp, where tp_btf cannot load;
 *   - the syscalls:sys_enter/exit_* tracepoints of read, write, send and recv
 *     and close, for older kernels: every syscall of every process then goes
 *     through the tracing slow path (a pipe ping-pong pinned to one CPU,
 *     which has no socket at all, ran at 0.62x of its speed alone under it),
 *     so this set is the last resort.
 * A connection is named by its struct sock address in every set.
 *
 * The tracked set is the `procs` map of sched.bpf.c, shared by fd
 * (bpf_map__reuse_fd), so fork/exec/exit adoption applies here too. An
 * untracked task is turned away by the per-CPU `cpu_state` sched_switch
 * keeps (who runs here and whether it is tracked): an array lookup and a
 * compare, no hash lookup. Each event carries the process's on-CPU time at
 * that moment (its finished slices from `procs` plus the calling thread's
 * runtime not yet counted, from `thread_marks`), so user space can tell how
 * much CPU each request window used.
 *
 * Payload: the sock tracepoints give the length, not the buffer. The buffer
 * is still in the caller's memory when they fire (after the copy), and the
 * syscall that moved it is in the task's saved user registers
 * (bpf_task_pt_regs): read/write/recvfrom/sendto name the buffer, readv,
 * writev, recvmsg and sendmsg its first iovec. From it the first
 * ERG_SOCK_HEAD_LEN bytes are copied (the request or status line) and, for a
 * send, the first ERG_SOCK_SSE_SCAN bytes are scanned for SSE "data:" lines.
 * Socket I/O through io_uring or sendfile has no such buffer: its events come
 * with head_len 0. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "erg.h"
#include "fd_file.bpf.h"
#include "procs_map.bpf.h"
#include "cpu_state_map.bpf.h"
#include "thread_marks_map.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MSG_PEEK 2

/* Connections of tracked processes: struct sock address -> owner tgid. The
 * close of a connection may come in softirq context, under another task. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} socks SEC(".maps");

/* The syscall a thread is in (fallback set): socket, direction, buffer. */
struct pending {
	__u64 sock;
	__u64 buf;	/* user address of the data, or of the first iovec */
	__u32 dir;
	__u32 iov;	/* buf points to a struct iovec */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending);
} pending SEC(".maps");

#define EVENTS_BYTES (1 << 22)
/* an event in the ring: its header, rounded up to 8 bytes */
#define RECORD_BYTES ((sizeof(struct erg_sock_event) + 8 + 7) / 8 * 8)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_BYTES);	/* ~37k events, a stalled reader on a busy node */
} events SEC(".maps");

/* Scratch for the SSE scan (too big for the BPF stack). */
struct scan_buf {
	char bytes[ERG_SOCK_SSE_SCAN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_buf);
} scan SEC(".maps");

__u64 dropped_events = 0;

/* Whether the current process is tracked: the sched_switch side's per-CPU
 * record of who runs here answers without a hash lookup; only a task it
 * does not describe (it has not been switched in since erg attached) is
 * looked up. A process adopted while it runs reads as untracked until its
 * next switch. */
static __always_inline bool tracked(__u32 tgid)
{
	__u32 zero = 0;
	struct erg_cpu_state *cpu = bpf_map_lookup_elem(&cpu_state, &zero);

	if (cpu && cpu->tgid == tgid)
		return cpu->worker_id != ERG_NO_WORKER;
	return bpf_map_lookup_elem(&procs, &tgid) != NULL;
}

/* "data:" at the start of a line, within the first n bytes of buf. */
static __always_inline __u32 count_sse(__u64 buf, __u32 n)
{
	__u32 zero = 0, count = 0;
	struct scan_buf *s = bpf_map_lookup_elem(&scan, &zero);

	if (!s || !buf)
		return 0;
	if (n > ERG_SOCK_SSE_SCAN)
		n = ERG_SOCK_SSE_SCAN;
	if (n < 5)
		return 0;
	/* 1..ERG_SOCK_SSE_SCAN in a form the verifier can bound (n is already) */
	n = ((n - 1) & (ERG_SOCK_SSE_SCAN - 1)) + 1;
	if (bpf_probe_read_user(s->bytes, n, (const void *)buf))
		return 0;
	for (__u32 i = 0; i + 5 <= n && i < ERG_SOCK_SSE_SCAN - 5; i++) {
		const char *p = &s->bytes[i];

		if (p[0] == 'd' && p[1] == 'a' && p[2] == 't' && p[3] == 'a' && p[4] == ':' &&
		    (i == 0 || s->bytes[(i - 1) & (ERG_SOCK_SSE_SCAN - 1)] == '\n'))
			count++;
	}
	return count;
}

/* The user buffer of an iovec array's first element. */
static __always_inline __u64 first_iov_base(__u64 iov)
{
	struct iovec v = {};

	if (!iov || bpf_probe_read_user(&v, sizeof(v), (const void *)iov))
		return 0;
	return (__u64)v.iov_base;
}

/* The CPU process tgid has used up to now: its finished slices, plus what
 * the running thread's next switch-out will count, the growth of its
 * se.sum_exec_runtime since its mark (at most a scheduler tick behind). Read
 * from the thread itself, not from this CPU's record of who was switched in
 * last: on a busy machine that record has been seen not to name a thread
 * that had run for a quarter of a second, and an event stamped from it alone
 * came out that much low, which took the CPU from the request it ended. A
 * thread without a mark yet (not switched out since erg attached), or an
 * event in another process's context (a close in softirq), falls back to
 * that record's clock. */
static __always_inline __u64 proc_cpu_now(const struct erg_proc *proc, __u32 tgid, __u64 now)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct erg_cpu_state *cpu;
	struct thread_mark *mark;
	__u32 zero = 0;
	__u64 ns = proc->cpu_ns;

	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == tgid) {
		mark = bpf_task_storage_get(&thread_marks, task, NULL, 0);
		if (mark && mark->runtime_ns) {
			__u64 runtime = BPF_CORE_READ(task, se.sum_exec_runtime);

			return ns + (runtime > mark->runtime_ns ? runtime - mark->runtime_ns : 0);
		}
	}
	cpu = bpf_map_lookup_elem(&cpu_state, &zero);
	if (cpu && cpu->tgid == tgid && cpu->since_ns && now > cpu->since_ns)
		ns += now - cpu->since_ns;
	return ns;
}

static __always_inline void emit(__u32 tgid, __u64 sock, __u32 dir, __u32 bytes, __u64 buf)
{
	struct erg_sock_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&dropped_events, 1);
		return;
	}
	struct erg_proc *proc = bpf_map_lookup_elem(&procs, &tgid);
	__u64 now = bpf_ktime_get_ns();

	e->ts_ns = now;
	e->cpu_ns = proc ? proc_cpu_now(proc, tgid, now) : 0;
	e->sock = sock;
	e->tgid = tgid;
	e->dir = dir;
	e->bytes = bytes;
	e->sse_events = 0;
	e->head_len = 0;
	e->_pad = 0;
	if (buf) {
		__u32 n = bytes < ERG_SOCK_HEAD_LEN ? bytes : ERG_SOCK_HEAD_LEN;

		/* 1..ERG_SOCK_HEAD_LEN in a form the verifier can bound */
		if (n)
			n = ((n - 1) & (ERG_SOCK_HEAD_LEN - 1)) + 1;
		if (n && !bpf_probe_read_user(e->head, n, (const void *)buf))
			e->head_len = n;
		if (dir == ERG_SOCK_OUT)
			e->sse_events = count_sse(buf, bytes);
	}
	/* Waking the reader costs the traced process an interprocessor
	 * interrupt (under a hypervisor a trap) on every event the reader had
	 * caught up to: nearly every one of a ping-pong. The reader reads the
	 * ring on its own every ERG_SOCK_READ_MS, so it is woken only by the
	 * event that takes the backlog past ERG_SOCK_WAKE_BYTES (once: one
	 * per event past it measured slower than one per event). */
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bool crossed = avail >= ERG_SOCK_WAKE_BYTES && avail < ERG_SOCK_WAKE_BYTES + RECORD_BYTES;

	bpf_ringbuf_submit(e, crossed ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* Remember a tracked process's connection, so its close is recognised. */
static __always_inline void own(__u64 sock, __u32 tgid)
{
	__u32 *owner = bpf_map_lookup_elem(&socks, &sock);

	if (!owner || *owner != tgid)
		bpf_map_update_elem(&socks, &sock, &tgid, BPF_ANY);
}

/* x86-64 syscall numbers of the calls whose buffer can be found. */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47

/* The user buffer of the socket syscall the current task is in, from its
 * saved user registers; 0 when it is not one of those (io_uring, sendfile,
 * another architecture). */
static __always_inline __u64 syscall_buffer(void)
{
#if defined(__TARGET_ARCH_x86)
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	long nr = BPF_CORE_READ(regs, orig_ax);
	__u64 arg = BPF_CORE_READ(regs, si);
	struct user_msghdr msg = {};

	switch (nr) {
	case NR_READ: case NR_WRITE: case NR_RECVFROM: case NR_SENDTO:
		return arg;
	case NR_READV: case NR_WRITEV:
		return first_iov_base(arg);
	case NR_RECVMSG: case NR_SENDMSG:
		if (!arg || bpf_probe_read_user(&msg, sizeof(msg), (const void *)arg))
			return 0;
		return first_iov_base((__u64)msg.msg_iov);
	}
#endif
	return 0;
}

static __always_inline int on_sock_io(struct sock *sk, int ret, int flags, __u32 dir)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 sock = (__u64)sk;

	if (ret <= 0 || !tracked(tgid) || (dir == ERG_SOCK_IN && (flags & MSG_PEEK)))
		return 0;
	own(sock, tgid);
	emit(tgid, sock, dir, (__u32)ret, syscall_buffer());
	return 0;
}

/* The local side closed (FIN_WAIT1, LAST_ACK) or the connection died
 * (CLOSE): no more response bytes on it. */
static __always_inline int on_state(const struct sock *sk, int newstate)
{
	__u64 sock = (__u64)sk;
	__u32 *owner;

	if (newstate != TCP_FIN_WAIT1 && newstate != TCP_LAST_ACK && newstate != TCP_CLOSE)
		return 0;
	owner = bpf_map_lookup_elem(&socks, &sock);
	if (!owner)
		return 0;
	emit(*owner, sock, ERG_SOCK_CLOSE, 0, 0);
	bpf_map_delete_elem(&socks, &sock);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(btf_send_length, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk, ret, flags, ERG_SOCK_OUT);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(btf_recv_length, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk, ret, flags, ERG_SOCK_IN);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(btf_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, newstate);
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(raw_send_length, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk, ret, flags, ERG_SOCK_OUT);
}

SEC("raw_tp/sock_recv_length")
int BPF_PROG(raw_recv_length, struct sock *sk, int ret, int flags)
{
	return on_sock_io(sk, ret, flags, ERG_SOCK_IN);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(raw_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, newstate);
}

/* ---- fallback: syscall tracepoints (kernels before 6.3) ---- */

/* The struct sock behind fd if it is a socket, else 0. */
static __always_inline __u64 fd_sock(int fd)
{
	struct file *file = current_fd_file(fd);
	struct socket *so;

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	so = (struct socket *)BPF_CORE_READ(file, private_data);
	return (__u64)BPF_CORE_READ(so, sk);
}

static __always_inline int sys_enter(struct trace_event_raw_sys_enter *ctx, __u32 dir, int kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct pending p = { .dir = dir, .buf = ctx->args[1] };
	struct user_msghdr msg = {};

	if (!tracked(id >> 32))
		return 0;
	p.sock = fd_sock((int)ctx->args[0]);
	if (!p.sock)
		return 0;
	if (kind == 1) {		/* readv/writev: args[1] is the iovec array */
		p.iov = 1;
	} else if (kind == 2) {		/* recvmsg/sendmsg: args[1] is a msghdr */
		p.buf = 0;
		if (!bpf_probe_read_user(&msg, sizeof(msg), (const void *)ctx->args[1])) {
			p.buf = (__u64)msg.msg_iov;
			p.iov = 1;
		}
	}
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct pending *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return 0;
	if (ctx->ret > 0) {
		own(p->sock, id >> 32);
		emit(id >> 32, p->sock, p->dir, (__u32)ctx->ret, p->iov ? first_iov_base(p->buf) : p->buf);
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_IN, 0); }
SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_IN, 1); }
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_IN, 0); }
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_IN, 2); }
SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_OUT, 0); }
SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_OUT, 1); }
SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_OUT, 0); }
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx) { return sys_enter(ctx, ERG_SOCK_OUT, 2); }

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { return sys_exit(ctx); }

/* A closed socket ends its connection's last request. */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 sock;

	if (!tracked(tgid))
		return 0;
	sock = fd_sock((int)ctx->args[0]);
	if (sock && bpf_map_lookup_elem(&socks, &sock)) {
		emit(tgid, sock, ERG_SOCK_CLOSE, 0, 0);
		bpf_map_delete_elem(&socks, &sock);
	}
	return 0;
}

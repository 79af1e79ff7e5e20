// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Socket reads and writes of tracked processes, as events for user space to
 * cut into request windows when erg only observes a worker (no proxy).
 *
 * The tracked set is the `procs` map of sched.bpf.c, shared by fd
 * (bpf_map__reuse_fd), so fork/exec/exit adoption applies here too. Each
 * event carries the process's on-CPU time at that moment (its finished
 * slices from `procs` plus the caller's slice in flight from `cpu_state`),
 * so user space can tell how much CPU each request window used. Only
 * file descriptors that are sockets count; the check walks the task's fd
 * table with CO-RE reads. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "erg.h"
#include "fd_file.bpf.h"
#include "procs_map.bpf.h"
#include "cpu_state_map.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The syscall a thread is in: fd and direction, from enter to exit. */
struct pending {
	int fd;
	__u32 dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

__u64 dropped_events = 0;

static __always_inline bool tracked(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return bpf_map_lookup_elem(&procs, &tgid) != NULL;
}

static __always_inline bool fd_is_socket(int fd)
{
	return fd_file_type(fd) == S_IFSOCK;
}

static __always_inline void emit(__u32 tgid, int fd, __u32 dir, __u32 bytes)
{
	struct erg_sock_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&dropped_events, 1);
		return;
	}
	__u32 zero = 0;
	struct erg_proc *proc = bpf_map_lookup_elem(&procs, &tgid);
	struct erg_cpu_state *cpu = bpf_map_lookup_elem(&cpu_state, &zero);
	__u64 now = bpf_ktime_get_ns();

	e->ts_ns = now;
	e->cpu_ns = proc ? proc->cpu_ns : 0;
	if (proc && cpu && cpu->tgid == tgid && cpu->since_ns && now > cpu->since_ns)
		e->cpu_ns += now - cpu->since_ns;
	e->tgid = tgid;
	e->fd = fd;
	e->dir = dir;
	e->bytes = bytes;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int on_enter(struct trace_event_raw_sys_enter *ctx, __u32 dir)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending p = { .fd = (int)ctx->args[0], .dir = dir };

	if (!tracked() || !fd_is_socket(p.fd))
		return 0;
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

static __always_inline int on_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct pending *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return 0;
	if (ctx->ret > 0)
		emit(id >> 32, p->fd, p->dir, (__u32)ctx->ret);
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_IN); }
SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_IN); }
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_IN); }
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_IN); }
SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_OUT); }
SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_OUT); }
SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_OUT); }
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx) { return on_enter(ctx, ERG_SOCK_OUT); }

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx); }

/* A closed socket ends its connection's last request. */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	int fd = (int)ctx->args[0];

	if (tracked() && fd_is_socket(fd))
		emit(bpf_get_current_pid_tgid() >> 32, fd, ERG_SOCK_CLOSE, 0);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* On-CPU time per tracked worker, from sched_switch.
 *
 * A worker is one attach target (--pid, --comm, --cgroup). Its processes are
 * kept in `procs` (tgid -> worker); threads share their tgid, forked children
 * are adopted at fork, processes named by --comm are adopted at exec, and
 * tasks of a --cgroup target are adopted at their first switch. Entries are
 * removed when the last thread of a process exits. Each program exists as
 * tp_btf and as raw_tp; the loader picks one set at run time.
 *
 * The kernel side only counts; user space decides what the counts mean. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "erg.h"
#include "procs_map.bpf.h"
#include "cpu_state_map.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool match_comms = false;
const volatile bool match_cgroups = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ERG_MAX_WORKERS);
	__type(key, char[ERG_COMM_LEN]);
	__type(value, __u32);
} comm_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ERG_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u32);
} cgroup_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ERG_MAX_WORKERS);
	__type(key, __u32);
	__type(value, struct erg_worker_counters);
} worker_counters SEC(".maps");

static __always_inline struct erg_worker_counters *counters_of(__u32 worker_id)
{
	return bpf_map_lookup_elem(&worker_counters, &worker_id);
}

static __always_inline void adopt(__u32 tgid, __u32 worker_id)
{
	struct erg_proc fresh = { .worker_id = worker_id };

	bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST);
}

/* The current task (prev, in sched_switch) belongs to a --cgroup target if
 * its cgroup v2 path passes through one of the target cgroups. */
static __always_inline struct erg_proc *adopt_by_cgroup(__u32 tgid)
{
	for (int level = 0; level < ERG_MAX_CGROUP_DEPTH; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);
		__u32 *worker_id;

		if (!id)
			break;
		worker_id = bpf_map_lookup_elem(&cgroup_targets, &id);
		if (worker_id) {
			adopt(tgid, *worker_id);
			return bpf_map_lookup_elem(&procs, &tgid);
		}
	}
	return NULL;
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	__u32 zero = 0, prev_tgid = BPF_CORE_READ(prev, tgid);
	__u32 next_tgid = BPF_CORE_READ(next, tgid);
	struct erg_cpu_state *cpu = bpf_map_lookup_elem(&cpu_state, &zero);
	__u64 now = bpf_ktime_get_ns(), delta;
	struct erg_proc *proc, *next_proc;

	if (!cpu)
		return 0;
	delta = cpu->since_ns ? now - cpu->since_ns : 0;

	if (prev_tgid) {
		proc = bpf_map_lookup_elem(&procs, &prev_tgid);
		if (!proc && match_cgroups)
			proc = adopt_by_cgroup(prev_tgid);
		if (proc && delta) {
			struct erg_worker_counters *c = counters_of(proc->worker_id);

			__sync_fetch_and_add(&proc->cpu_ns, delta);
			if (c) {
				c->cpu_ns += delta;
				c->switches++;
			}
		}
	}

	/* Remember who runs now, so user space can count the slice in flight
	 * (a busy task alone on a CPU may not be switched out for seconds). */
	next_proc = next_tgid ? bpf_map_lookup_elem(&procs, &next_tgid) : NULL;
	cpu->since_ns = now;
	cpu->tgid = next_tgid;
	cpu->worker_id = next_proc ? next_proc->worker_id : ERG_NO_WORKER;
	return 0;
}

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	struct erg_proc *proc;

	if (child_tgid == parent_tgid)	/* a new thread: already counted */
		return 0;
	proc = bpf_map_lookup_elem(&procs, &parent_tgid);
	if (proc) {
		struct erg_worker_counters *c = counters_of(proc->worker_id);

		adopt(child_tgid, proc->worker_id);
		if (c)
			c->forks++;
	}
	return 0;
}

static __always_inline int on_exec(struct task_struct *task)
{
	char comm[ERG_COMM_LEN] = {};
	__u32 tgid = BPF_CORE_READ(task, tgid), *worker_id;

	if (!match_comms || bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	BPF_CORE_READ_STR_INTO(&comm, task, comm);
	worker_id = bpf_map_lookup_elem(&comm_targets, comm);
	if (worker_id) {
		struct erg_worker_counters *c = counters_of(*worker_id);

		adopt(tgid, *worker_id);
		if (c)
			c->execs++;
	}
	return 0;
}

static __always_inline int on_exit(struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct erg_proc *proc;

	/* Only the last thread out removes the process. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	proc = bpf_map_lookup_elem(&procs, &tgid);
	if (proc) {
		struct erg_worker_counters *c = counters_of(proc->worker_id);

		if (c)
			c->exits++;
		bpf_map_delete_elem(&procs, &tgid);
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(btf_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(btf_sched_fork, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(raw_sched_fork, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(btf_sched_exec, struct task_struct *task)
{
	return on_exec(task);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(raw_sched_exec, struct task_struct *task)
{
	return on_exec(task);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(btf_sched_exit, struct task_struct *task)
{
	return on_exit(task);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(raw_sched_exit, struct task_struct *task)
{
	return on_exit(task);
}

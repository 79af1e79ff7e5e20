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
 * CPU time is the kernel's own: the growth of the task's
 * se.sum_exec_runtime between its switch-in and switch-out, which leaves out
 * time the hypervisor stole (paravirt steal accounting) as /proc and
 * schedstat do. A clock delta between switches would count steal as work.
 * The slice in flight is left to the reader (cpu_state.since_ns).
 *
 * The kernel side only counts; user space decides what the counts mean. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "erg.h"
#include "procs_map.bpf.h"
#include "cpu_state_map.bpf.h"
#include "thread_marks_map.bpf.h"

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

/* Per CPU: the tracked thread switched in last and its runtime then, the
 * start of its first slice before it has a mark (raw_tp programs get no
 * typed pointer to `next`, so the mark is made at its switch-out). */
struct slice_start {
	__u64 runtime_ns;
	__u32 pid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slice_start);
} slice_starts SEC(".maps");

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

/* The kernel's runtime of the task leaving the CPU (current, at
 * sched_switch) since it was last counted: since its mark, else since its
 * switch-in on this CPU, else (it was running when erg attached) the clock
 * delta of this slice. */
static __always_inline __u64 slice_ns(__u64 clock_delta)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 runtime = task->se.sum_exec_runtime, delta = clock_delta;
	struct thread_mark *m = bpf_task_storage_get(&thread_marks, task, NULL,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	__u32 zero = 0;
	struct slice_start *start = bpf_map_lookup_elem(&slice_starts, &zero);

	if (m && m->runtime_ns && runtime >= m->runtime_ns)
		delta = runtime - m->runtime_ns;
	else if (start && start->pid == (__u32)task->pid && start->runtime_ns &&
		 runtime >= start->runtime_ns)
		delta = runtime - start->runtime_ns;
	if (m)
		m->runtime_ns = runtime;
	return delta;
}

/* A tracked thread about to run on this CPU: where its slice starts. */
static __always_inline void mark_start(__u32 pid, __u64 runtime_ns)
{
	__u32 zero = 0;
	struct slice_start *start = bpf_map_lookup_elem(&slice_starts, &zero);

	if (start) {
		start->pid = pid;
		start->runtime_ns = runtime_ns;
	}
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	__u32 zero = 0, prev_tgid = BPF_CORE_READ(prev, tgid);
	__u32 next_tgid = BPF_CORE_READ(next, tgid);
	struct erg_cpu_state *cpu = bpf_map_lookup_elem(&cpu_state, &zero);
	__u64 now = bpf_ktime_get_ns(), delta;
	struct erg_proc *proc = NULL, *next_proc;
	__u32 worker = ERG_NO_WORKER;

	if (!cpu)
		return 0;
	delta = cpu->since_ns ? now - cpu->since_ns : 0;

	/* prev is the task this CPU's record names: when that says untracked
	 * there is nothing to look up (the cheap path for the rest of the
	 * node). A --cgroup target adopts at switch-out, so it always looks. */
	if (prev_tgid && (cpu->tgid != prev_tgid || cpu->worker_id != ERG_NO_WORKER || match_cgroups)) {
		proc = bpf_map_lookup_elem(&procs, &prev_tgid);
		if (!proc && match_cgroups)
			proc = adopt_by_cgroup(prev_tgid);
		if (proc)
			worker = proc->worker_id;
		else if (cpu->tgid == prev_tgid)
			worker = cpu->worker_id;	/* exited: its worker keeps the last slice */
	}
	if (worker != ERG_NO_WORKER && delta) {
		struct erg_worker_counters *c = counters_of(worker);

		delta = slice_ns(delta);
		if (proc)
			__sync_fetch_and_add(&proc->cpu_ns, delta);
		if (c) {
			c->cpu_ns += delta;
			c->switches++;
		}
	}

	/* Remember who runs now, so user space can count the slice in flight
	 * (a busy task alone on a CPU may not be switched out for seconds). */
	next_proc = next_tgid ? bpf_map_lookup_elem(&procs, &next_tgid) : NULL;
	if (next_proc)
		mark_start(BPF_CORE_READ(next, pid), BPF_CORE_READ(next, se.sum_exec_runtime));
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

/* A task adopted while it runs (exec of a --comm target) is tracked from
 * now on: this CPU's record says so, so its switch-out counts from here and
 * the socket programs let it through. */
static __always_inline void mark_running(__u32 tgid, __u32 worker_id, struct task_struct *task)
{
	__u32 zero = 0;
	struct erg_cpu_state *cpu = bpf_map_lookup_elem(&cpu_state, &zero);

	if (!cpu || cpu->tgid != tgid)
		return;
	cpu->worker_id = worker_id;
	cpu->since_ns = bpf_ktime_get_ns();
	mark_start(BPF_CORE_READ(task, pid), BPF_CORE_READ(task, se.sum_exec_runtime));
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
		mark_running(tgid, *worker_id, task);
		if (c)
			c->execs++;
	}
	return 0;
}

/* A process that names itself a --comm target (prctl(PR_SET_NAME), a
 * write to /proc/self/comm) after it started: the new name is the
 * tracepoint's argument, task->comm still holds the old one. Without this,
 * only erg's periodic /proc listing would find it. */
static __always_inline int on_rename(struct task_struct *task, const char *new_comm)
{
	char comm[ERG_COMM_LEN] = {};
	__u32 tgid = BPF_CORE_READ(task, tgid), *worker_id;

	/* the process's name is its main thread's, as in /proc/PID/comm */
	if (!match_comms || BPF_CORE_READ(task, pid) != tgid || bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	bpf_probe_read_kernel_str(comm, sizeof(comm), new_comm);
	worker_id = bpf_map_lookup_elem(&comm_targets, comm);
	if (worker_id) {
		adopt(tgid, *worker_id);
		/* the renaming task runs now: count it from here */
		mark_running(tgid, *worker_id, task);
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

SEC("tp_btf/task_rename")
int BPF_PROG(btf_task_rename, struct task_struct *task, const char *comm)
{
	return on_rename(task, comm);
}

SEC("raw_tp/task_rename")
int BPF_PROG(raw_task_rename, struct task_struct *task, const char *comm)
{
	return on_rename(task, comm);
}

/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* Per tracked thread: its se.sum_exec_runtime up to which it is counted in
 * its process's finished slices (procs); each switch-out counts the growth
 * since and moves it on. Kept with the thread rather than per CPU, so a
 * switch the program did not see loses nothing and counts nothing twice,
 * and a reader in the thread's own context can add what its switch-out
 * will count. Owned by sched.bpf.c, shared by fd like procs. */
#ifndef ERG_THREAD_MARKS_MAP_BPF_H
#define ERG_THREAD_MARKS_MAP_BPF_H

struct thread_mark {
	__u64 runtime_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_mark);
} thread_marks SEC(".maps");

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* Per CPU: the tracked slice running there now (struct erg_cpu_state), so a
 * reader can add the time in flight to a process's finished slices. Owned by
 * sched.bpf.c, shared by fd like procs. */
#ifndef ERG_CPU_STATE_MAP_BPF_H
#define ERG_CPU_STATE_MAP_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct erg_cpu_state);
} cpu_state SEC(".maps");

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* The tracked processes, tgid -> struct erg_proc. sched.bpf.c owns it (fork,
 * exec and exit keep it current); the other programs are given the same map
 * by fd (bpf_map__reuse_fd) so their idea of "tracked" is always the same. */
#ifndef ERG_PROCS_MAP_BPF_H
#define ERG_PROCS_MAP_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ERG_MAX_TGIDS);
	__type(key, __u32);
	__type(value, struct erg_proc);
} procs SEC(".maps");

#endif

/* Loader of the sched_switch / fork / exec / exit programs. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sched.skel.h"
#include "procfs.h"
#include "tracker.h"

struct tracker {
	struct sched_bpf *skel;
	const struct target_set *targets;
	const char *proc_root;
	bool raw_tp;
	int ncpus;
	struct erg_worker_counters *percpu;	/* scratch: one entry per CPU */
	struct erg_cpu_state *cpu_states;	/* scratch: one entry per CPU */
	/* the last /proc listing, sorted by pid (tracker_refresh) */
	struct seen_pid *seen;
	size_t n_seen;
	unsigned long refreshes;	/* listings of /proc so far */
	double listed_s;		/* CLOCK_MONOTONIC of the last listing */
	/* the procs map as last read (snapshot), ERG_MAX_TGIDS each */
	__u32 *snap_keys;
	struct erg_proc *snap_vals;
	__u64 *snap_pairs;
	unsigned *snap_tgids, *snap_workers;
	unsigned long long *snap_cpu_ns;
	__u32 *prev_keys;	/* the keys as read last time, in map order */
	bool snap_fresh;	/* taken this tick: tracker_snapshot reuses it */
	size_t n_snap;
	bool batch_unsupported;	/* no BPF_MAP_LOOKUP_BATCH: one key at a time */
};

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return (x > y) - (x < y);
}

/* libbpf's last warning, so a load failure can say why in one line. */
static char last_libbpf_msg[512];
static bool libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	if (level != LIBBPF_DEBUG) {
		va_list copy;

		va_copy(copy, args);
		vsnprintf(last_libbpf_msg, sizeof(last_libbpf_msg), fmt, copy);
		va_end(copy);
		last_libbpf_msg[strcspn(last_libbpf_msg, "\n")] = '\0';
	}
	return libbpf_verbose ? vfprintf(stderr, fmt, args) : 0;
}

bool tracker_privileged(char *err, size_t errlen)
{
	FILE *f;
	char line[256];
	unsigned long long eff = 0;
	const unsigned long long need = (1ULL << 38) | (1ULL << 39); /* CAP_PERFMON, CAP_BPF */

	if (geteuid() == 0)
		return true;
	f = fopen("/proc/self/status", "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "CapEff: %llx", &eff) == 1)
				break;
		fclose(f);
	}
	if ((eff & need) == need)
		return true;
	snprintf(err, errlen, "loading BPF programs needs root or CAP_BPF+CAP_PERFMON (run with sudo, or: setcap cap_bpf,cap_perfmon+ep erg)");
	return false;
}

static void set_autoload(struct sched_bpf *skel, bool raw_tp)
{
	bpf_program__set_autoload(skel->progs.btf_sched_switch, !raw_tp);
	bpf_program__set_autoload(skel->progs.btf_sched_fork, !raw_tp);
	bpf_program__set_autoload(skel->progs.btf_sched_exec, !raw_tp);
	bpf_program__set_autoload(skel->progs.btf_sched_exit, !raw_tp);
	bpf_program__set_autoload(skel->progs.btf_task_rename, !raw_tp);
	bpf_program__set_autoload(skel->progs.raw_sched_switch, raw_tp);
	bpf_program__set_autoload(skel->progs.raw_sched_fork, raw_tp);
	bpf_program__set_autoload(skel->progs.raw_sched_exec, raw_tp);
	bpf_program__set_autoload(skel->progs.raw_sched_exit, raw_tp);
	bpf_program__set_autoload(skel->progs.raw_task_rename, raw_tp);
}

static struct sched_bpf *open_and_load(const struct target_set *targets, bool raw_tp, int *err_out)
{
	struct sched_bpf *skel = sched_bpf__open();
	bool comms = false, cgroups = false;
	int err;

	if (!skel) {
		*err_out = -errno;
		return NULL;
	}
	for (size_t i = 0; i < targets->n; i++) {
		comms |= targets->items[i].kind == TARGET_COMM;
		cgroups |= targets->items[i].kind == TARGET_CGROUP;
	}
	skel->rodata->match_comms = comms;
	skel->rodata->match_cgroups = cgroups;
	set_autoload(skel, raw_tp);
	err = sched_bpf__load(skel);
	if (err) {
		sched_bpf__destroy(skel);
		*err_out = err;
		return NULL;
	}
	return skel;
}

int tracker_adopt(struct tracker *t, int pid, unsigned worker)
{
	struct erg_proc proc = { .worker_id = worker };
	__u32 key = (__u32)pid;

	t->snap_fresh = false;
	/* BPF_NOEXIST: a process already counted keeps its time and worker */
	if (bpf_map__update_elem(t->skel->maps.procs, &key, sizeof(key), &proc, sizeof(proc),
				 BPF_NOEXIST) && errno != EEXIST)
		return -errno;
	return 0;
}

static bool is_tracked(struct tracker *t, int pid, unsigned *worker)
{
	struct erg_proc proc;
	__u32 key = (__u32)pid;

	if (bpf_map__lookup_elem(t->skel->maps.procs, &key, sizeof(key), &proc, sizeof(proc), 0))
		return false;
	if (worker)
		*worker = proc.worker_id;
	return true;
}

/* The /proc scan. The BPF programs adopt processes as they fork, exec or
 * rename themselves to a --comm name, enter a --cgroup target, and drop them
 * as they exit; the scan finds what was there before attach and is a safety
 * net after (an event lost to a full map). So /proc is listed at attach and
 * then every RELIST_S seconds, not every tick: listing 1000 processes costs
 * more than the rest of a tick. A listed process is looked at (stat, comm:
 * the costly reads) only when it is new, an untracked one again after 1, 2,
 * 4 ... up to LOOK_BACKOFF_MAX listings; a tracked one never again. */
#define RELIST_S 10.0
#define LOOK_BACKOFF_MAX 16

struct seen_pid {
	int pid;
	bool tracked;
	unsigned short backoff;	/* refreshes between looks, doubling */
	unsigned long next_look;	/* refresh number of the next look */
};

struct list_ctx {
	struct seen_pid *items;
	size_t n, cap;
};

static int list_pid(int pid, void *arg)
{
	struct list_ctx *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		struct seen_pid *p = realloc(l->items, cap * sizeof(*p));

		if (!p)
			return -1;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n++] = (struct seen_pid){ .pid = pid };
	return 0;
}

static int cmp_seen(const void *a, const void *b)
{
	int x = ((const struct seen_pid *)a)->pid, y = ((const struct seen_pid *)b)->pid;

	return (x > y) - (x < y);
}

static const struct seen_pid *find_seen(const struct seen_pid *items, size_t n, int pid)
{
	struct seen_pid key = { .pid = pid };

	return n ? bsearch(&key, items, n, sizeof(*items), cmp_seen) : NULL;
}

/* Adopt pid if its parent is tracked (children forked before attach count
 * for their worker) or its name is a --comm target. Returns true when pid
 * is tracked afterwards. A zombie is left alone: it has nothing to run. */
static bool look(struct tracker *t, int pid, int *adopted)
{
	char comm[ERG_COMM_LEN], state;
	unsigned worker;
	int ppid;

	if (is_tracked(t, pid, NULL))
		return true;
	if (procfs_state_ppid(t->proc_root, pid, &state, &ppid) || state == 'Z' || state == 'X')
		return false;
	if (ppid > 0 && is_tracked(t, ppid, &worker)) {
		if (!tracker_adopt(t, pid, worker))
			++*adopted;
		return true;
	}
	if (procfs_comm(t->proc_root, pid, comm, sizeof(comm)) < 0)
		return false;
	for (size_t i = 0; i < t->targets->n; i++) {
		const struct target *tg = &t->targets->items[i];

		if (tg->kind == TARGET_COMM && !strcmp(tg->comm, comm)) {
			if (!tracker_adopt(t, pid, (unsigned)i))
				++*adopted;
			return true;
		}
	}
	return false;
}

/* The procs map into t->snap_tgids/snap_workers, sorted by tgid: batched
 * reads (a few syscalls for any number of processes), one key at a time
 * where the kernel has no batch operations. Returns the count. */
static size_t snapshot(struct tracker *t)
{
	int fd = bpf_map__fd(t->skel->maps.procs);
	__u32 batch, *in = NULL, count;
	size_t n = 0;

	if (!t->batch_unsupported) {
		for (;;) {
			int rc;

			count = (__u32)(ERG_MAX_TGIDS - n);
			if (!count)
				break;
			rc = bpf_map_lookup_batch(fd, in, &batch, t->snap_keys + n, t->snap_vals + n, &count, NULL);
			if (rc && errno != ENOENT) {
				/* an error: keep what was read, or read one key
				 * at a time where batches are not supported */
				if (n == 0 && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP))
					t->batch_unsupported = true;
				break;
			}
			n += count;
			if (rc)
				break;	/* ENOENT: the end of the map */
			in = &batch;
		}
	}
	if (t->batch_unsupported) {
		__u32 key, next, *prev = NULL;

		n = 0;
		while (n < ERG_MAX_TGIDS && !bpf_map_get_next_key(fd, prev, &next)) {
			if (!bpf_map_lookup_elem(fd, &next, &t->snap_vals[n])) {
				t->snap_keys[n] = next;
				n++;
			}
			key = next;
			prev = &key;
		}
	}
	/* sort by tgid: (tgid, index of its value) pairs through one array;
	 * the same keys in the same order as last time (a hash map's order
	 * while nothing changes) keep last time's order, no sort */
	if (n != t->n_snap || memcmp(t->snap_keys, t->prev_keys, n * sizeof(*t->snap_keys))) {
		for (size_t i = 0; i < n; i++)
			t->snap_pairs[i] = ((__u64)t->snap_keys[i] << 32) | (__u32)i;
		qsort(t->snap_pairs, n, sizeof(*t->snap_pairs), cmp_u64);
		memcpy(t->prev_keys, t->snap_keys, n * sizeof(*t->snap_keys));
	}
	for (size_t i = 0; i < n; i++) {
		const struct erg_proc *v = &t->snap_vals[(__u32)t->snap_pairs[i]];

		t->snap_tgids[i] = (unsigned)(t->snap_pairs[i] >> 32);
		t->snap_workers[i] = v->worker_id;
		t->snap_cpu_ns[i] = v->cpu_ns;
	}
	t->n_snap = n;
	t->snap_fresh = true;
	return n;
}

size_t tracker_snapshot(struct tracker *t, const unsigned **tgids, const unsigned **workers,
			const unsigned long long **cpu_ns)
{
	size_t n = t->snap_fresh ? t->n_snap : snapshot(t);

	*tgids = t->snap_tgids;
	if (workers)
		*workers = t->snap_workers;
	if (cpu_ns)
		*cpu_ns = t->snap_cpu_ns;
	return n;
}

/* Entries of processes no longer in /proc (an exit the BPF side missed, a
 * process adopted as it ended): the listing says, no read per process. */
static void prune_gone(struct tracker *t, const struct seen_pid *listed, size_t n_listed)
{
	size_t n = snapshot(t);

	for (size_t i = 0; i < n; i++) {
		__u32 key = t->snap_tgids[i];

		if (!find_seen(listed, n_listed, (int)key))
			bpf_map__delete_elem(t->skel->maps.procs, &key, sizeof(key), 0);
	}
	t->snap_fresh = false;
}

void tracker_refresh(struct tracker *t)
{
	struct list_ctx now = { 0 };
	int adopted = 0;
	struct timespec ts;
	double now_s;

	t->snap_fresh = false;	/* a new tick: tracker_read takes a new one */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_s = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	if (t->refreshes && now_s - t->listed_s < RELIST_S)
		return;
	t->listed_s = now_s;
	t->refreshes++;
	if (procfs_for_each_pid(t->proc_root, list_pid, &now) < 0 && !now.n) {
		free(now.items);
		return;	/* /proc unreadable: keep what is known */
	}
	qsort(now.items, now.n, sizeof(*now.items), cmp_seen);
	for (size_t i = 0; i < now.n; i++) {
		struct seen_pid *p = &now.items[i];
		const struct seen_pid *was = find_seen(t->seen, t->n_seen, p->pid);

		if (was)
			*p = *was;
		if (p->tracked || p->next_look > t->refreshes)
			continue;
		p->tracked = look(t, p->pid, &adopted);
		if (!p->tracked) {
			p->backoff = p->backoff ? (p->backoff * 2 > LOOK_BACKOFF_MAX ? LOOK_BACKOFF_MAX : p->backoff * 2) : 1;
			p->next_look = t->refreshes + p->backoff;
		}
	}
	/* /proc lists pids in numeric, not creation, order: a process adopted
	 * above may be the parent of one looked at before it */
	while (adopted) {
		adopted = 0;
		for (size_t i = 0; i < now.n; i++)
			if (!now.items[i].tracked)
				now.items[i].tracked = look(t, now.items[i].pid, &adopted);
	}
	prune_gone(t, now.items, now.n);
	free(t->seen);
	t->seen = now.items;
	t->n_seen = now.n;
}

struct tracker *tracker_open(const struct target_set *targets, const struct tracker_opts *opts,
			     char *err, size_t errlen)
{
	struct tracker *t;
	int lerr = 0;

	if (!tracker_privileged(err, errlen))
		return NULL;
	libbpf_verbose = opts->verbose;
	libbpf_set_print(libbpf_print);

	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->targets = targets;
	t->proc_root = opts->proc_root;
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus <= 0) {
		snprintf(err, errlen, "cannot count the possible CPUs (/sys/devices/system/cpu/possible): %s",
			 strerror(-t->ncpus));
		free(t);
		return NULL;
	}
	t->percpu = calloc(t->ncpus, sizeof(*t->percpu));
	t->cpu_states = calloc(t->ncpus, sizeof(*t->cpu_states));
	t->snap_keys = calloc(ERG_MAX_TGIDS, sizeof(*t->snap_keys));
	t->snap_vals = calloc(ERG_MAX_TGIDS, sizeof(*t->snap_vals));
	t->snap_pairs = calloc(ERG_MAX_TGIDS, sizeof(*t->snap_pairs));
	t->snap_tgids = calloc(ERG_MAX_TGIDS, sizeof(*t->snap_tgids));
	t->snap_workers = calloc(ERG_MAX_TGIDS, sizeof(*t->snap_workers));
	t->snap_cpu_ns = calloc(ERG_MAX_TGIDS, sizeof(*t->snap_cpu_ns));
	t->prev_keys = calloc(ERG_MAX_TGIDS, sizeof(*t->prev_keys));
	if (!t->percpu || !t->cpu_states || !t->snap_keys || !t->snap_vals || !t->snap_pairs || !t->snap_tgids ||
	    !t->snap_workers || !t->snap_cpu_ns || !t->prev_keys) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	/* tp_btf first (BTF-typed, cheaper); raw_tp where tp_btf cannot load. */
	if (!opts->force_raw_tp)
		t->skel = open_and_load(targets, false, &lerr);
	if (!t->skel) {
		t->raw_tp = true;
		t->skel = open_and_load(targets, true, &lerr);
	}
	if (!t->skel) {
		snprintf(err, errlen, "cannot load the BPF programs: %s%s%s (run with -v for libbpf's log; the kernel needs BTF at /sys/kernel/btf/vmlinux)",
			 strerror(lerr < 0 ? -lerr : lerr), last_libbpf_msg[0] ? "; libbpf: " : "",
			 last_libbpf_msg);
		goto fail;
	}

	for (size_t i = 0; i < targets->n; i++) {
		const struct target *tg = &targets->items[i];
		__u32 worker = (__u32)i;
		int rc = 0;

		if (tg->kind == TARGET_COMM) {
			char key[ERG_COMM_LEN] = {};

			memcpy(key, tg->comm, strnlen(tg->comm, ERG_COMM_LEN - 1));
			rc = bpf_map__update_elem(t->skel->maps.comm_targets, key, sizeof(key),
						  &worker, sizeof(worker), BPF_ANY);
		} else if (tg->kind == TARGET_CGROUP) {
			__u64 id = tg->cgroup_id;

			rc = bpf_map__update_elem(t->skel->maps.cgroup_targets, &id, sizeof(id),
						  &worker, sizeof(worker), BPF_ANY);
		}
		if (rc) {
			snprintf(err, errlen, "cannot configure target %zu in the BPF maps: %s", i, strerror(errno));
			goto fail;
		}
	}

	/* Attach before scanning /proc: a fork after the scan is seen by the
	 * fork hook, one before it by the scan. */
	lerr = sched_bpf__attach(t->skel);
	if (lerr) {
		snprintf(err, errlen, "cannot attach the %s sched programs: %s%s%s", t->raw_tp ? "raw_tp" : "tp_btf",
			 strerror(-lerr), last_libbpf_msg[0] ? "; libbpf: " : "", last_libbpf_msg);
		goto fail;
	}
	for (size_t i = 0; i < targets->n; i++) {
		const struct target *tg = &targets->items[i];

		if (tg->kind == TARGET_PID && tracker_adopt(t, tg->pid, (unsigned)i)) {
			snprintf(err, errlen, "cannot track pid %d: %s", tg->pid, strerror(errno));
			goto fail;
		}
	}
	targets_report_overlaps(targets, t->proc_root, stderr);	/* pids adopted: they win */
	tracker_refresh(t);
	return t;
fail:
	tracker_close(t);
	return NULL;
}

static unsigned long long monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

int tracker_read(struct tracker *t, double *cpu_s, unsigned *procs)
{
	size_t n = t->targets->n;
	__u32 zero = 0;
	unsigned long long now;
	bool have_states;

	have_states = !bpf_map__lookup_elem(t->skel->maps.cpu_state, &zero, sizeof(zero), t->cpu_states,
					    sizeof(*t->cpu_states) * t->ncpus, 0);
	now = monotonic_ns();
	for (size_t w = 0; w < n; w++) {
		__u32 key = (__u32)w;
		unsigned long long ns = 0;

		if (bpf_map__lookup_elem(t->skel->maps.worker_counters, &key, sizeof(key), t->percpu,
					 sizeof(*t->percpu) * t->ncpus, 0))
			return -errno;
		for (int c = 0; c < t->ncpus; c++) {
			ns += t->percpu[c].cpu_ns;
			if (have_states && t->cpu_states[c].worker_id == w &&
			    t->cpu_states[c].since_ns && now > t->cpu_states[c].since_ns)
				ns += now - t->cpu_states[c].since_ns;
		}
		cpu_s[w] = (double)ns / 1e9;
		if (procs)
			procs[w] = 0;
	}
	if (procs) {
		size_t n_procs = snapshot(t);

		for (size_t i = 0; i < n_procs; i++)
			if (t->snap_workers[i] < n)
				procs[t->snap_workers[i]]++;
	}
	return 0;
}

int tracker_worker_of(struct tracker *t, unsigned tgid)
{
	unsigned worker;

	return is_tracked(t, (int)tgid, &worker) ? (int)worker : -1;
}

int tracker_procs_fd(const struct tracker *t)
{
	return bpf_map__fd(t->skel->maps.procs);
}

int tracker_cpu_state_fd(const struct tracker *t)
{
	return bpf_map__fd(t->skel->maps.cpu_state);
}

int tracker_thread_marks_fd(const struct tracker *t)
{
	return bpf_map__fd(t->skel->maps.thread_marks);
}

unsigned long long tracker_proc_cpu_ns(struct tracker *t, unsigned tgid)
{
	struct erg_proc proc;
	__u32 key = tgid;

	if (bpf_map__lookup_elem(t->skel->maps.procs, &key, sizeof(key), &proc, sizeof(proc), 0))
		return 0;
	return proc.cpu_ns;
}

const char *tracker_mode(const struct tracker *t)
{
	return t->raw_tp ? "raw_tp" : "tp_btf";
}

void tracker_close(struct tracker *t)
{
	if (!t)
		return;
	sched_bpf__destroy(t->skel);	/* detaches every link, closes maps */
	free(t->percpu);
	free(t->cpu_states);
	free(t->seen);
	free(t->snap_keys);
	free(t->snap_vals);
	free(t->snap_pairs);
	free(t->snap_tgids);
	free(t->snap_workers);
	free(t->snap_cpu_ns);
	free(t->prev_keys);
	free(t);
}

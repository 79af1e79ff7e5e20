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
};

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
	bpf_program__set_autoload(skel->progs.raw_sched_switch, raw_tp);
	bpf_program__set_autoload(skel->progs.raw_sched_fork, raw_tp);
	bpf_program__set_autoload(skel->progs.raw_sched_exec, raw_tp);
	bpf_program__set_autoload(skel->progs.raw_sched_exit, raw_tp);
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

/* Adopt descendants of tracked processes: children forked before attach
 * count for their worker too. Repeats until no new process is found, since
 * /proc lists pids in numeric, not creation, order. */
struct scan_ctx {
	struct tracker *t;
	int adopted;
};

static int adopt_if_child_or_named(int pid, void *arg)
{
	struct scan_ctx *ctx = arg;
	struct tracker *t = ctx->t;
	unsigned worker;
	int ppid;
	char comm[ERG_COMM_LEN];

	if (is_tracked(t, pid, NULL))
		return 0;
	ppid = procfs_ppid(t->proc_root, pid);
	if (ppid > 0 && is_tracked(t, ppid, &worker)) {
		if (!tracker_adopt(t, pid, worker))
			ctx->adopted++;
		return 0;
	}
	if (procfs_comm(t->proc_root, pid, comm, sizeof(comm)) < 0)
		return 0;
	for (size_t i = 0; i < t->targets->n; i++) {
		const struct target *tg = &t->targets->items[i];

		if (tg->kind == TARGET_COMM && !strcmp(tg->comm, comm)) {
			if (!tracker_adopt(t, pid, (unsigned)i))
				ctx->adopted++;
			break;
		}
	}
	return 0;
}

static void prune_gone(struct tracker *t)
{
	struct bpf_map *map = t->skel->maps.procs;
	__u32 key, next, *prev = NULL;
	__u32 gone[256];
	size_t n_gone = 0;

	while (!bpf_map__get_next_key(map, prev, &next, sizeof(next))) {
		if (!procfs_exists(t->proc_root, (int)next) && n_gone < 256)
			gone[n_gone++] = next;
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < n_gone; i++)
		bpf_map__delete_elem(map, &gone[i], sizeof(gone[i]), 0);
}

void tracker_refresh(struct tracker *t)
{
	struct scan_ctx ctx = { t, 0 };

	prune_gone(t);
	do {
		ctx.adopted = 0;
		procfs_for_each_pid(t->proc_root, adopt_if_child_or_named, &ctx);
	} while (ctx.adopted);
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
	if (!t->percpu || !t->cpu_states) {
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
		__u32 key, next, *prev = NULL;
		struct erg_proc proc;

		while (!bpf_map__get_next_key(t->skel->maps.procs, prev, &next, sizeof(next))) {
			if (!bpf_map__lookup_elem(t->skel->maps.procs, &next, sizeof(next), &proc, sizeof(proc), 0) &&
			    proc.worker_id < n)
				procs[proc.worker_id]++;
			key = next;
			prev = &key;
		}
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
	free(t);
}

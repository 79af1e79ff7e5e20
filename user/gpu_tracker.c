/* Loader of the CUDA driver-call probes and the /dev/nvidia* ioctl counter. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "gpu.skel.h"
#include "gpu_busy.h"
#include "gpu_tracker.h"
#include "procfs.h"

#define MAX_LIBS 16
#define MAX_GONE 256
#define DEVICE_TRIES 3
#define RESCAN_MAX 32	/* scans between looks at a process without libcuda */
#define MAPS_PER_SCAN 8	/* maps files read per scan at most: the scan costs
			 * the same for 1 or 1000 tracked processes */

struct lib {
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX];
	size_t probes;
};

/* What is known of one tracked process. */
struct pinfo {
	unsigned tgid;
	bool has_lib;		/* its maps showed a driver library */
	unsigned backoff;	/* scans between reads of its maps, doubling */
	unsigned next_scan;	/* scan generation of its next maps read */
	unsigned long long cpu_ns;	/* its CPU time (finished slices) now */
	unsigned long long looked_cpu_ns;	/* and at the last read of its maps */
	int device;		/* -1 unknown */
	int device_tries;
};

struct gpu_tracker {
	struct gpu_bpf *skel;
	struct tracker *procs;
	size_t n_workers;
	struct gpu_tracker_opts opts;
	const char *proc_root;

	struct bpf_link **links;
	size_t n_links, cap_links;
	struct lib libs[MAX_LIBS];
	size_t n_libs;
	struct pinfo *pi;	/* sorted by tgid */
	size_t n_pi, cap_pi;
	size_t cursor;		/* where the last scan's budget ran out */

	const char *ioctl_mode;		/* "tracepoint", "raw_tp" or NULL */
	char missing[512];		/* symbols no library had */
	double attach_ms;
	struct gpu_worker_counters *retired;	/* per worker: processes that ended */
	unsigned scan_gen;
	char desc[1024];
};

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static const char *root_of(const struct gpu_tracker *t)
{
	return t->proc_root ? t->proc_root : "/proc";
}

/* The driver entry point a program probes: its name, less "_ret". */
static bool probe_symbol(const struct bpf_program *prog, char *sym, size_t len, bool *ret)
{
	const char *name = bpf_program__name(prog);
	size_t n = strlen(name);

	if (strncmp(name, "cu", 2))
		return false;	/* the ioctl programs */
	*ret = n > 4 && !strcmp(name + n - 4, "_ret");
	if (*ret)
		n -= 4;
	if (n >= len)
		return false;
	memcpy(sym, name, n);
	sym[n] = '\0';
	return true;
}

/* File offsets of the probed symbols, from the ELF symbol tables in one
 * pass (libbpf would parse the file once per probe). offsets[i] is 0 for a
 * symbol the library lacks. */
static int resolve_symbols(const char *path, char names[][48], size_t n, size_t *offsets, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *elf = NULL;
	Elf_Scn *scn = NULL;
	int rc = -1;

	memset(offsets, 0, n * sizeof(*offsets));
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the CUDA driver library %s: %s", path, strerror(errno));
		return -1;
	}
	if (elf_version(EV_CURRENT) == EV_NONE || !(elf = elf_begin(fd, ELF_C_READ, NULL)) ||
	    elf_kind(elf) != ELF_K_ELF) {
		snprintf(err, errlen, "%s is not an ELF shared library", path);
		goto out;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || !sh.sh_entsize)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			GElf_Shdr owner;
			const char *name;

			if (!gelf_getsym(data, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
			    sym.st_shndx == SHN_UNDEF || !sym.st_value)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name)
				continue;
			for (size_t k = 0; k < n; k++) {
				if (offsets[k] || strcmp(name, names[k]))
					continue;
				/* virtual address -> file offset, through the
				 * section that holds the code */
				if (gelf_getshdr(elf_getscn(elf, sym.st_shndx), &owner))
					offsets[k] = sym.st_value - owner.sh_addr + owner.sh_offset;
			}
		}
	}
	rc = 0;
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return rc;
}

static int keep_link(struct gpu_tracker *t, struct bpf_link *link)
{
	if (t->n_links == t->cap_links) {
		size_t cap = t->cap_links ? 2 * t->cap_links : 64;
		struct bpf_link **l = realloc(t->links, cap * sizeof(*l));

		if (!l)
			return -ENOMEM;
		t->links = l;
		t->cap_links = cap;
	}
	t->links[t->n_links++] = link;
	return 0;
}

static void note_missing(struct gpu_tracker *t, const char *sym)
{
	size_t n = strlen(t->missing);

	if (strstr(t->missing, sym))
		return;
	snprintf(t->missing + n, sizeof(t->missing) - n, "%s%s", n ? " " : "", sym);
}

static int load(struct gpu_tracker *t, char *err, size_t errlen)
{
	int rc;

	t->skel = gpu_bpf__open();
	if (!t->skel) {
		snprintf(err, errlen, "cannot open the GPU BPF programs: %s", strerror(errno));
		return -1;
	}
	rc = bpf_map__reuse_fd(t->skel->maps.procs, tracker_procs_fd(t->procs));
	if (!rc)
		rc = gpu_bpf__load(t->skel);
	if (rc) {
		snprintf(err, errlen, "cannot load the GPU BPF programs: %s (run with -v for libbpf's log; they need BPF atomics, kernel 5.12 or later)",
			 strerror(-rc));
		gpu_bpf__destroy(t->skel);
		t->skel = NULL;
		return -1;
	}
	/* ioctls: the syscall's own tracepoint where tracefs is mounted, else
	 * raw_tp/sys_enter (every syscall, filtered in BPF) */
	if (!t->opts.force_raw_tp) {
		struct bpf_link *l = bpf_program__attach_tracepoint(t->skel->progs.ioctl_tp, "syscalls",
								    "sys_enter_ioctl");

		if (l && !keep_link(t, l))
			t->ioctl_mode = "tracepoint";
		else if (l)
			bpf_link__destroy(l);
	}
	if (!t->ioctl_mode) {
		struct bpf_link *l = bpf_program__attach_raw_tracepoint(t->skel->progs.ioctl_raw, "sys_enter");

		if (l && !keep_link(t, l))
			t->ioctl_mode = "raw_tp";
		else if (l)
			bpf_link__destroy(l);
	}
	return 0;
}

/* Probe every entry point of one library file for all processes. */
static int attach_lib(struct gpu_tracker *t, const char *path, const struct stat *st, char *err, size_t errlen)
{
	struct bpf_program *prog;
	char names[64][48];
	struct bpf_program *progs[64];
	bool rets[64];
	size_t offsets[64], n = 0, attached = 0;
	struct lib *lib;

	if (t->n_libs == MAX_LIBS) {
		snprintf(err, errlen, "more than %d different CUDA driver library files; %s not probed", MAX_LIBS, path);
		return -1;
	}
	if (!t->skel && load(t, err, errlen))
		return -1;
	bpf_object__for_each_program(prog, t->skel->obj) {
		if (n < 64 && probe_symbol(prog, names[n], sizeof(names[n]), &rets[n]))
			progs[n++] = prog;
	}
	if (resolve_symbols(path, names, n, offsets, err, errlen))
		return -1;
	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = rets[i]);
		struct bpf_link *l;

		if (!offsets[i]) {
			note_missing(t, names[i]);
			if (t->opts.verbose && !rets[i])
				fprintf(stderr, "erg: gpu: %s has no %s; skipped\n", path, names[i]);
			continue;
		}
		l = bpf_program__attach_uprobe_opts(progs[i], -1, path, offsets[i], &uo);
		if (!l) {
			int e = errno;

			snprintf(err, errlen, "cannot attach a uprobe to %s in %s: %s", names[i], path, strerror(e));
			return -1;
		}
		if (keep_link(t, l)) {
			bpf_link__destroy(l);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		attached++;
	}
	if (!attached) {
		snprintf(err, errlen, "%s has none of the CUDA driver entry points erg probes (is it libcuda?)", path);
		return -1;
	}
	lib = &t->libs[t->n_libs++];
	lib->dev = st->st_dev;
	lib->ino = st->st_ino;
	lib->probes = attached;
	snprintf(lib->path, sizeof(lib->path), "%s", path);
	return 0;
}

static bool known_lib(const struct gpu_tracker *t, const struct stat *st)
{
	for (size_t i = 0; i < t->n_libs; i++)
		if (t->libs[i].dev == st->st_dev && t->libs[i].ino == st->st_ino)
			return true;
	return false;
}

static int cmp_pinfo(const void *a, const void *b)
{
	unsigned x = ((const struct pinfo *)a)->tgid, y = ((const struct pinfo *)b)->tgid;

	return (x > y) - (x < y);
}

static bool pinfo_reserve(struct gpu_tracker *t, size_t n)
{
	size_t cap = t->cap_pi ? t->cap_pi : 64;
	struct pinfo *p;

	if (n <= t->cap_pi)
		return true;
	while (cap < n)
		cap *= 2;
	p = realloc(t->pi, cap * sizeof(*p));
	if (!p)
		return false;
	t->pi = p;
	t->cap_pi = cap;
	return true;
}

static struct pinfo *pinfo_of(struct gpu_tracker *t, unsigned tgid, bool create)
{
	struct pinfo key = { .tgid = tgid }, *p;
	size_t at = 0;

	p = t->n_pi ? bsearch(&key, t->pi, t->n_pi, sizeof(*t->pi), cmp_pinfo) : NULL;
	if (p || !create)
		return p;
	if (!pinfo_reserve(t, t->n_pi + 1))
		return NULL;
	while (at < t->n_pi && t->pi[at].tgid < tgid)
		at++;
	memmove(&t->pi[at + 1], &t->pi[at], (t->n_pi - at) * sizeof(*t->pi));
	t->pi[at] = (struct pinfo){ .tgid = tgid, .device = -1 };
	t->n_pi++;
	return &t->pi[at];
}

static void pinfo_forget(struct gpu_tracker *t, unsigned tgid)
{
	struct pinfo *p = pinfo_of(t, tgid, false);

	if (p) {
		size_t at = (size_t)(p - t->pi);

		memmove(p, p + 1, (t->n_pi - at - 1) * sizeof(*p));
		t->n_pi--;
	}
}

/* The driver library a process maps, as a path erg can open: the path in
 * the maps file if it is the same file from here, else through
 * /proc/PID/root (a process in another mount namespace). */
static bool find_lib(struct gpu_tracker *t, unsigned tgid, char *path, size_t len, struct stat *st)
{
	char maps[PATH_MAX], line[PATH_MAX + 128];
	bool found = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "%s/%u/maps", root_of(t), tgid);
	f = fopen(maps, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/'), *base;
		struct stat here;
		size_t n;

		if (!p)
			continue;
		n = strcspn(p, "\n");
		p[n] = '\0';
		if (n > 10 && !strcmp(p + n - 10, " (deleted)"))
			continue;
		base = strrchr(p, '/') + 1;
		if (strncmp(base, "libcuda.so", 10))
			continue;
		snprintf(path, len, "%s/%u/root%s", root_of(t), tgid, p);
		if (stat(path, st))
			continue;
		if (!stat(p, &here) && here.st_dev == st->st_dev && here.st_ino == st->st_ino)
			snprintf(path, len, "%s", p);
		found = true;
	}
	fclose(f);
	return found;
}

/* t->pi becomes the tracked processes now (tracker_snapshot, sorted by
 * tgid), each keeping what was known of it. */
static int follow_tracked(struct gpu_tracker *t)
{
	const unsigned *tgids;
	const unsigned long long *cpu_ns;
	size_t n = tracker_snapshot(t->procs, &tgids, NULL, &cpu_ns), j = 0, k = 0;
	struct pinfo *next;

	next = malloc((n ? n : 1) * sizeof(*next));
	if (!next)
		return -1;
	for (size_t i = 0; i < n; i++) {
		while (j < t->n_pi && t->pi[j].tgid < tgids[i])
			j++;
		if (j < t->n_pi && t->pi[j].tgid == tgids[i])
			next[k] = t->pi[j];
		else
			next[k] = (struct pinfo){ .tgid = tgids[i], .device = -1, .next_scan = t->scan_gen,
						  .looked_cpu_ns = ~0ULL };
		next[k++].cpu_ns = cpu_ns[i];
	}
	free(t->pi);
	t->pi = next;
	t->n_pi = k;
	t->cap_pi = n ? n : 1;
	return 0;
}

int gpu_tracker_scan(struct gpu_tracker *t, char *err, size_t errlen)
{
	bool was_active = gpu_tracker_active(t);
	double start = mono_ms();
	size_t budget = MAPS_PER_SCAN, n;
	int added = 0;

	t->scan_gen++;
	if (follow_tracked(t)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = t->n_pi;
	if (t->scan_gen == 1)
		budget = n;	/* at attach: every process at once */
	/* frameworks load libcuda lazily, so look again, less often the
	 * longer nothing shows up (a library already probed counts for every
	 * process that maps it, looked at or not); at most MAPS_PER_SCAN maps
	 * files per scan, taking turns from where the last scan stopped */
	for (size_t k = 0, first = t->cursor; k < n && budget; k++) {
		size_t i = (first + k) % n;
		struct pinfo *p = &t->pi[i];
		char path[PATH_MAX];
		struct stat st;

		/* a process that has not run since its last read cannot
		 * have loaded anything: idle ones cost nothing */
		if (p->has_lib || p->next_scan > t->scan_gen || p->cpu_ns == p->looked_cpu_ns)
			continue;
		budget--;
		t->cursor = i + 1;
		p->looked_cpu_ns = p->cpu_ns;
		if (!find_lib(t, p->tgid, path, sizeof(path), &st)) {
			p->backoff = p->backoff ? (p->backoff * 2 > RESCAN_MAX ? RESCAN_MAX : p->backoff * 2) : 1;
			p->next_scan = t->scan_gen + p->backoff;
			continue;
		}
		p->has_lib = true;
		if (known_lib(t, &st))
			continue;
		if (attach_lib(t, path, &st, err, errlen))
			return -1;
		added++;
	}
	if (added && !was_active)
		t->attach_ms = mono_ms() - start;
	return added;
}

bool gpu_tracker_active(const struct gpu_tracker *t)
{
	return t->n_libs > 0;
}

/* The one /dev/nvidiaN a process has open, or -1 (none, or several). */
static int device_of(const struct gpu_tracker *t, unsigned tgid)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int found = -1;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%u/fd", root_of(t), tgid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char link[PATH_MAX + 256], target[64];
		ssize_t n;
		char *end;
		long idx;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 11)
			continue;
		target[n] = '\0';
		if (strncmp(target, "/dev/nvidia", 11))
			continue;
		idx = strtol(target + 11, &end, 10);
		if (end == target + 11 || *end || idx < 0)
			continue;	/* nvidiactl, nvidia-uvm, ... */
		if (found >= 0 && found != idx) {
			found = -1;	/* several devices: unknown */
			break;
		}
		found = (int)idx;
	}
	closedir(d);
	return found;
}

static void add(struct gpu_worker_counters *w, const struct erg_gpu_proc *v, uint64_t now)
{
	w->launches += v->launches;
	w->graph_launches += v->graph_launches;
	w->threads += v->threads;
	w->copies += v->copies;
	w->bytes_h2d += v->bytes_h2d;
	w->bytes_d2h += v->bytes_d2h;
	w->syncs += v->syncs;
	w->sync_ns += v->sync_ns;
	w->ioctls += v->ioctls;
	w->nested += v->nested;
	w->failed += v->failed;
	w->races += v->races;
	w->busy_ns += gpu_busy_cumulative_ns(v->busy_ns, v->window, now);
}

static void add_counters(struct gpu_worker_counters *w, const struct gpu_worker_counters *r)
{
	w->launches += r->launches;
	w->graph_launches += r->graph_launches;
	w->threads += r->threads;
	w->copies += r->copies;
	w->bytes_h2d += r->bytes_h2d;
	w->bytes_d2h += r->bytes_d2h;
	w->syncs += r->syncs;
	w->sync_ns += r->sync_ns;
	w->ioctls += r->ioctls;
	w->nested += r->nested;
	w->failed += r->failed;
	w->races += r->races;
	w->busy_ns += r->busy_ns;
}

int gpu_tracker_read(struct gpu_tracker *t, struct gpu_worker_counters *out)
{
	__u32 key, next, *prev = NULL, gone[MAX_GONE];
	size_t n_gone = 0;
	uint64_t now;
	int fd;

	for (size_t w = 0; w < t->n_workers; w++) {
		memset(&out[w], 0, sizeof(out[w]));
		out[w].device = -1;
	}
	if (!t->skel)
		return 0;
	fd = bpf_map__fd(t->skel->maps.gpu_procs);
	now = mono_ns();
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct erg_gpu_proc v;
		struct pinfo *p;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &next, &v) || v.worker_id >= t->n_workers)
			continue;
		if (!procfs_exists(t->proc_root, (int)next)) {
			/* ended: its counts stay with the worker */
			if (n_gone < MAX_GONE) {
				add(&t->retired[v.worker_id], &v, now);
				gone[n_gone++] = next;
			}
			continue;
		}
		add(&out[v.worker_id], &v, now);
		out[v.worker_id].procs++;
		p = pinfo_of(t, next, true);
		if (p && p->device < 0 && p->device_tries < DEVICE_TRIES) {
			p->device_tries++;
			p->device = device_of(t, next);
		}
		if (p && p->device >= 0 && out[v.worker_id].device < 0)
			out[v.worker_id].device = p->device;
	}
	for (size_t i = 0; i < n_gone; i++) {
		bpf_map_delete_elem(fd, &gone[i]);
		pinfo_forget(t, gone[i]);
	}
	for (size_t w = 0; w < t->n_workers; w++)
		add_counters(&out[w], &t->retired[w]);
	return 0;
}

const char *gpu_tracker_describe(const struct gpu_tracker *t)
{
	struct gpu_tracker *m = (struct gpu_tracker *)t;
	int n;

	if (!t->n_libs) {
		snprintf(m->desc, sizeof(m->desc), "no tracked process maps a CUDA driver library (libcuda.so*) yet");
		return t->desc;
	}
	n = snprintf(m->desc, sizeof(m->desc), "libcuda probes: %zu on %s", gpu_tracker_probes(t), t->libs[0].path);
	if (t->n_libs > 1)
		n += snprintf(m->desc + n, sizeof(m->desc) - n, " and %zu more librar%s", t->n_libs - 1,
			      t->n_libs == 2 ? "y" : "ies");
	if (t->missing[0] && n < (int)sizeof(m->desc))
		n += snprintf(m->desc + n, sizeof(m->desc) - n, " (not in the library: %s)", t->missing);
	if (n < (int)sizeof(m->desc))
		snprintf(m->desc + n, sizeof(m->desc) - n, "; /dev/nvidia* ioctls %s%s",
			 t->ioctl_mode ? "via " : "not counted (neither the tracepoint nor raw_tp attached)",
			 t->ioctl_mode ? t->ioctl_mode : "");
	return t->desc;
}

double gpu_tracker_attach_ms(const struct gpu_tracker *t)
{
	return t->attach_ms;
}

size_t gpu_tracker_probes(const struct gpu_tracker *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n_libs; i++)
		n += t->libs[i].probes;
	return n;
}

struct gpu_tracker *gpu_tracker_open(struct tracker *procs, size_t n_workers,
				     const struct gpu_tracker_opts *opts, char *err, size_t errlen)
{
	struct gpu_tracker *t = calloc(1, sizeof(*t));

	if (!t || !(t->retired = calloc(n_workers ? n_workers : 1, sizeof(*t->retired)))) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->procs = procs;
	t->n_workers = n_workers;
	t->opts = *opts;
	t->proc_root = opts->proc_root;
	if (opts->libcuda) {
		double start = mono_ms();
		char path[PATH_MAX];
		struct stat st;

		if (stat(opts->libcuda, &st) || !realpath(opts->libcuda, path)) {
			snprintf(err, errlen, "--libcuda %s: %s (give the path of the CUDA driver library, e.g. /usr/lib/x86_64-linux-gnu/libcuda.so.1)",
				 opts->libcuda, strerror(errno));
			gpu_tracker_close(t);
			return NULL;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "--libcuda %s: not a regular file", opts->libcuda);
			gpu_tracker_close(t);
			return NULL;
		}
		if (attach_lib(t, path, &st, err, errlen)) {
			char why[512];

			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "--libcuda %s: %s", opts->libcuda, why);
			gpu_tracker_close(t);
			return NULL;
		}
		t->attach_ms = mono_ms() - start;
	}
	return t;
}

void gpu_tracker_close(struct gpu_tracker *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_links; i++)
		bpf_link__destroy(t->links[i]);
	free(t->links);
	gpu_bpf__destroy(t->skel);
	free(t->pi);
	free(t->retired);
	free(t);
}

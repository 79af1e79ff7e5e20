/* erg top's GPU part: probes, busy estimate, device energy, split. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "errbuf.h"
#include "gpu_attrib.h"
#include "gpu_busy.h"
#include "gpu_top.h"
#include "gpu_tracker.h"
#include "json_u64.h"

#define MAX_PROC_SAMPLES 256

enum state { GPU_OFF, GPU_WAITING, GPU_ACTIVE };

struct gpu_top {
	struct gpu_top_opts opts;
	struct tracker *procs;
	size_t n_workers, n_models;
	size_t *model_of;
	const char *const *model_names;
	enum state state;
	bool no_device;		/* no /dev/nvidia*: "none" rather than "waiting" */
	char off_why[1024];
	bool read_warned;

	struct gpu_tracker *tracker;
	struct gpu_energy *energy;
	struct gpu_busy busy;
	double last_s;

	struct gpu_worker_counters *cur;	/* per worker, cumulative */
	double *tick_busy;			/* estimator, this tick */
	double *busy_total;			/* estimator, cumulative */
	double *basis;				/* what the split used, this tick */
	int *dev_of;
	bool *nvml_basis;			/* per worker: NVML per-process this tick */
	uint64_t *tick_nj, *nj;			/* per worker */
	uint64_t total_nj, attributed_nj, unattributed_nj, tick_total_nj;
	double tick_s;
};

/* The command whose notices these are. */
static const char *prog(const struct gpu_top *g)
{
	return g->opts.prog ? g->opts.prog : "erg top";
}

/* "70" or "70,80,...": watts per device, each through the shared parser. */
static int parse_watts_list(const char *opt, const char *arg, double *watts, size_t *n, char *err, size_t errlen)
{
	char field[64], q[80];
	const char *p = arg;
	size_t k = 0;

	if (!arg || !*arg) {
		errbuf_set(err, errlen, "%s needs a value: watts, e.g. 70 or 70,70 (one per device)", opt);
		return -1;
	}
	for (;;) {
		size_t len = strcspn(p, ",");

		if (k == GPU_MAX_DEVICES) {
			errbuf_set(err, errlen, "%s '%s': at most %d devices", opt, cli_quote(arg, q, sizeof(q)),
				   GPU_MAX_DEVICES);
			return -1;
		}
		snprintf(field, sizeof(field), "%.*s", (int)(len < sizeof(field) ? len : sizeof(field) - 1), p);
		if (len >= sizeof(field) ||
		    cli_double(opt, field, 0, GPU_TOP_MAX_WATTS, "watts per device (comma-separated)",
			       &watts[k], err, errlen))
			return -1;
		k++;
		if (!p[len])
			break;
		p += len + 1;
	}
	*n = k;
	return 0;
}

int gpu_top_set_option(struct gpu_top_opts *o, const char *name, const char *arg, char *err, size_t errlen)
{
	char opt[40];

	snprintf(opt, sizeof(opt), "--%s", name);
	if (!strcmp(name, "libcuda")) {
		if (!arg || !*arg) {
			errbuf_set(err, errlen, "--libcuda needs a value: the path of the CUDA driver library");
			return -1;
		}
		o->libcuda = arg;
	} else if (!strcmp(name, "gpu-idle-watts")) {
		return parse_watts_list(opt, arg, o->model.idle_watts, &o->model.n_idle, err, errlen);
	} else if (!strcmp(name, "gpu-active-watts")) {
		return parse_watts_list(opt, arg, o->model.active_watts, &o->model.n_active, err, errlen);
	} else if (!strcmp(name, "no-nvml")) {
		o->no_nvml = true;
	} else if (!strcmp(name, "no-gpu")) {
		o->disabled = true;
	} else {
		errbuf_set(err, errlen, "unknown GPU option %s", opt);
		return -1;
	}
	return 0;
}

unsigned long long gpu_top_races(const struct gpu_top *g)
{
	unsigned long long races = 0;

	if (!g || g->state != GPU_ACTIVE)
		return 0;
	for (size_t w = 0; w < g->n_workers; w++)
		races += g->cur[w].races;
	return races;
}

/* /dev/nvidia0, /dev/nvidia1, ...: the GPUs a model without NVML covers. */
static size_t count_device_nodes(void)
{
	DIR *d = opendir("/dev");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		const char *p = de->d_name;

		if (strncmp(p, "nvidia", 6) || !p[6])
			continue;
		for (p += 6; *p && isdigit((unsigned char)*p); p++)
			;
		n += !*p;
	}
	closedir(d);
	return n;
}

static void turn_off(struct gpu_top *g, const char *why)
{
	snprintf(g->off_why, sizeof(g->off_why), "off: %s", why);
	g->state = GPU_OFF;
	gpu_tracker_close(g->tracker);
	g->tracker = NULL;
}

static int activate(struct gpu_top *g, double now_s)
{
	struct nvml_opts no = { .disable = g->opts.no_nvml, .model = g->opts.model };
	size_t n = g->n_workers ? g->n_workers : 1;

	no.model_devices = count_device_nodes();
	if (no.model_devices < g->opts.model.n_idle)
		no.model_devices = g->opts.model.n_idle;
	if (no.model_devices < g->opts.model.n_active)
		no.model_devices = g->opts.model.n_active;
	g->energy = nvml_open(&no, now_s);
	if (!g->energy || gpu_busy_init(&g->busy, g->n_workers))
		return -1;
	g->cur = calloc(n, sizeof(*g->cur));
	g->tick_busy = calloc(n, sizeof(double));
	g->busy_total = calloc(n, sizeof(double));
	g->basis = calloc(n, sizeof(double));
	g->dev_of = calloc(n, sizeof(int));
	g->nvml_basis = calloc(n, sizeof(bool));
	g->tick_nj = calloc(n, sizeof(uint64_t));
	g->nj = calloc(n, sizeof(uint64_t));
	if (!g->cur || !g->tick_busy || !g->busy_total || !g->basis || !g->dev_of || !g->nvml_basis ||
	    !g->tick_nj || !g->nj)
		return -1;
	g->last_s = now_s;
	g->state = GPU_ACTIVE;
	return 0;
}

struct gpu_top *gpu_top_open(const struct gpu_top_opts *o, struct tracker *procs, size_t n_workers,
			     const size_t *model_of, const char *const *model_names, size_t n_models,
			     const struct tracker_opts *topts, double now_s, char *err, size_t errlen)
{
	struct gpu_top *g = calloc(1, sizeof(*g));
	struct gpu_tracker_opts to = { 0 };
	char why[768];

	if (!g || !(g->model_of = calloc(n_workers ? n_workers : 1, sizeof(size_t)))) {
		free(g);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->opts = *o;
	g->procs = procs;
	g->n_workers = n_workers;
	g->n_models = n_models;
	g->model_names = model_names;
	memcpy(g->model_of, model_of, n_workers * sizeof(size_t));
	if (o->disabled) {
		turn_off(g, "--no-gpu");
		return g;
	}
	to.libcuda = o->libcuda;
	to.proc_root = topts->proc_root;
	to.force_raw_tp = topts->force_raw_tp;
	to.verbose = topts->verbose;
	g->tracker = gpu_tracker_open(procs, n_workers, &to, err, errlen);
	if (!g->tracker) {
		gpu_top_close(g);
		return NULL;	/* only --libcuda can fail here: the user asked */
	}
	g->state = GPU_WAITING;
	g->no_device = count_device_nodes() == 0;
	if (!gpu_tracker_active(g->tracker) && gpu_tracker_scan(g->tracker, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s: GPU part off: %s\n", prog(g), why);
		turn_off(g, why);
		return g;
	}
	if (gpu_tracker_active(g->tracker) && activate(g, now_s)) {
		snprintf(err, errlen, "out of memory");
		gpu_top_close(g);
		return NULL;
	}
	return g;
}

/* Per device busy seconds (the denominators of the split) and each
 * worker's device and busy basis: NVML's per-process utilisation on the
 * devices where the driver gives it for a tracked process, the driver-call
 * estimate elsewhere. */
static void split_basis(struct gpu_top *g, double dt, size_t n_dev, double *est_dev, bool *nvml_dev)
{
	struct nvml_proc_util pu[MAX_PROC_SAMPLES];

	for (size_t w = 0; w < g->n_workers; w++) {
		int d = g->cur[w].device;

		g->dev_of[w] = d >= 0 && (size_t)d < n_dev ? d : 0;
		g->basis[w] = g->tick_busy[w];
		g->nvml_basis[w] = false;
	}
	for (size_t d = 0; d < n_dev; d++) {
		int n = nvml_process_util(g->energy, d, pu, MAX_PROC_SAMPLES);

		nvml_dev[d] = false;
		for (int i = 0; i < n; i++) {
			int w = tracker_worker_of(g->procs, (unsigned)pu[i].pid);

			if (w < 0 || (size_t)w >= g->n_workers)
				continue;
			if (!g->nvml_basis[w]) {
				g->nvml_basis[w] = true;
				g->basis[w] = 0;
			}
			g->dev_of[w] = (int)d;
			g->basis[w] += pu[i].busy_frac * dt;
			nvml_dev[d] = true;
		}
	}
	/* on a device with NVML samples, workers without any were idle there */
	for (size_t w = 0; w < g->n_workers; w++)
		if (!g->nvml_basis[w] && nvml_dev[g->dev_of[w]])
			g->basis[w] = 0;
	for (size_t d = 0; d < n_dev; d++) {
		double busy[ERG_MAX_WORKERS];
		size_t k = 0;

		for (size_t w = 0; w < g->n_workers && k < ERG_MAX_WORKERS; w++)
			if (g->dev_of[w] == (int)d)
				busy[k++] = g->tick_busy[w];
		est_dev[d] = gpu_busy_device_s(busy, k, dt);
	}
}

void gpu_top_tick(struct gpu_top *g, double now_s, uint64_t *worker_nj, uint64_t *total_nj, struct attrib_result *res)
{
	struct gpu_attrib_device devs[GPU_MAX_DEVICES];
	double est_dev[GPU_MAX_DEVICES], joules[GPU_MAX_DEVICES];
	bool nvml_dev[GPU_MAX_DEVICES];
	uint64_t cum[ERG_MAX_WORKERS];
	struct gpu_attrib_tick in;
	struct attrib_result r;
	char err[768];
	size_t n_dev;
	double dt;

	if (!g || g->state == GPU_OFF)
		return;
	if (gpu_tracker_scan(g->tracker, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: GPU probes: %s\n", prog(g), err);
		if (g->state == GPU_WAITING) {
			turn_off(g, err);
			return;
		}
	}
	if (g->state == GPU_WAITING) {
		/* energy counts from the tick the first library was probed */
		if (gpu_tracker_active(g->tracker) && activate(g, now_s))
			turn_off(g, "out of memory");
		return;
	}
	if (gpu_tracker_read(g->tracker, g->cur)) {
		if (!g->read_warned)
			fprintf(stderr, "%s: cannot read the GPU counters; GPU energy not attributed this interval\n", prog(g));
		g->read_warned = true;
	}
	dt = now_s - g->last_s;
	if (dt < 0)
		dt = 0;
	n_dev = nvml_devices(g->energy);
	for (size_t w = 0; w < g->n_workers && w < ERG_MAX_WORKERS; w++)
		cum[w] = g->cur[w].busy_ns;
	{
		/* one worker's processes may use several GPUs */
		double max_s = dt * (double)(n_dev ? n_dev : 1);

		gpu_busy_tick(&g->busy, cum, max_s, g->tick_busy);
	}
	for (size_t w = 0; w < g->n_workers; w++)
		g->busy_total[w] += g->tick_busy[w];
	split_basis(g, dt, n_dev, est_dev, nvml_dev);
	if (nvml_read(g->energy, now_s, est_dev, joules, err, sizeof(err)) && !g->read_warned) {
		fprintf(stderr, "%s: %s\n", prog(g), err);
		g->read_warned = true;
	}
	for (size_t d = 0; d < n_dev; d++) {
		double util = nvml_device_util(g->energy, d), sum = 0.0;

		for (size_t w = 0; w < g->n_workers; w++)
			if (g->dev_of[w] == (int)d)
				sum += g->basis[w];
		devs[d].total_nj = attrib_nj(joules[d]);
		devs[d].idle_nj = attrib_nj(nvml_idle_watts(g->energy, d) * dt);
		/* the device's own utilisation leaves untracked processes'
		 * share unattributed; without it the workers' sum is all */
		devs[d].busy_s = util >= 0 ? util * dt : (sum < dt ? sum : dt);
	}
	memset(g->tick_nj, 0, g->n_workers * sizeof(*g->tick_nj));
	in = (struct gpu_attrib_tick){ devs, n_dev, g->basis, g->dev_of, g->n_workers };
	r = gpu_attrib_split(&in, g->tick_nj);

	g->tick_total_nj = r.attributed_nj + r.unattributed_nj;
	g->total_nj += g->tick_total_nj;
	g->attributed_nj += r.attributed_nj;
	g->unattributed_nj += r.unattributed_nj;
	for (size_t w = 0; w < g->n_workers; w++) {
		g->nj[w] += g->tick_nj[w];
		worker_nj[w] += g->tick_nj[w];
	}
	*total_nj += g->tick_total_nj;
	res->attributed_nj += r.attributed_nj;
	res->unattributed_nj += r.unattributed_nj;
	g->tick_s = dt;
	g->last_s = now_s;
}

/* Sums over the workers of one model. */
struct model_sum {
	struct gpu_worker_counters c;
	double busy_s;
	uint64_t nj, tick_nj;
	bool nvml_basis;
};

static struct model_sum model_sum(const struct gpu_top *g, size_t m)
{
	struct model_sum s;

	memset(&s, 0, sizeof(s));
	for (size_t w = 0; w < g->n_workers; w++) {
		const struct gpu_worker_counters *c = &g->cur[w];

		if (g->model_of[w] != m)
			continue;
		s.c.launches += c->launches;
		s.c.graph_launches += c->graph_launches;
		s.c.threads += c->threads;
		s.c.copies += c->copies;
		s.c.bytes_h2d += c->bytes_h2d;
		s.c.bytes_d2h += c->bytes_d2h;
		s.c.syncs += c->syncs;
		s.c.sync_ns += c->sync_ns;
		s.c.ioctls += c->ioctls;
		s.c.nested += c->nested;
		s.c.failed += c->failed;
		s.c.procs += c->procs;
		s.busy_s += g->busy_total[w];
		s.nj += g->nj[w];
		s.tick_nj += g->tick_nj[w];
		s.nvml_basis |= g->nvml_basis[w];
	}
	return s;
}

static const char *state_name(const struct gpu_top *g)
{
	if (g->state == GPU_WAITING)
		return g->no_device ? "none" : "waiting";
	return g->state == GPU_OFF ? "off" : "active";
}

void gpu_top_print(const struct gpu_top *g, bool summary, double elapsed_s)
{
	double dt = g && g->tick_s > 0 ? g->tick_s : 1.0;

	if (!g)
		return;
	if (g->state == GPU_OFF) {
		printf("gpu: %s\n", g->off_why);
		return;
	}
	if (g->state == GPU_WAITING && g->no_device) {
		printf("gpu: none (no /dev/nvidia* device here; GPU columns appear if a tracked process loads a CUDA driver library)\n");
		return;
	}
	if (g->state == GPU_WAITING) {
		printf("gpu: no tracked process maps a CUDA driver library (libcuda.so*) yet; GPU columns appear when one does\n");
		return;
	}
	printf("%s; %s\n", nvml_describe(g->energy), gpu_tracker_describe(g->tracker));
	printf("%-24s %10s %9s %12s %10s %9s %8s  %s\n", "MODEL", "GPU_S", summary ? "GPU_AVG_W" : "GPU_W",
	       "GPU_J", "LAUNCHES", "SYNC_S", "IOCTLS", "GPU_SOURCE");
	for (size_t m = 0; m < g->n_models; m++) {
		struct model_sum s = model_sum(g, m);
		double w = summary ? (elapsed_s > 0 ? attrib_joules(s.nj) / elapsed_s : 0) : attrib_joules(s.tick_nj) / dt;

		printf("%-24s %10.3f %9.2f %12.3f %10llu %9.3f %8llu  %s%s\n", g->model_names[m], s.busy_s, w,
		       attrib_joules(s.nj),
		       (unsigned long long)s.c.launches, (double)s.c.sync_ns / 1e9, (unsigned long long)s.c.ioctls,
		       nvml_source(g->energy), s.nvml_basis ? " (nvml per-process share)" : "");
	}
	printf("%-24s %10s %9.2f %12.3f  attributed %.3f J, unattributed %.3f J (idle, untracked)\n", "gpu total", "",
	       summary ? (elapsed_s > 0 ? attrib_joules(g->total_nj) / elapsed_s : 0) : attrib_joules(g->tick_total_nj) / dt,
	       attrib_joules(g->total_nj), attrib_joules(g->attributed_nj), attrib_joules(g->unattributed_nj));
}

void gpu_top_json_model(const struct gpu_top *g, size_t model, cJSON *o)
{
	struct model_sum s;
	double dt;

	if (!g || g->state != GPU_ACTIVE)
		return;
	s = model_sum(g, model);
	dt = g->tick_s > 0 ? g->tick_s : 1.0;
	cJSON_AddNumberToObject(o, "gpu_s", s.busy_s);
	cJSON_AddNumberToObject(o, "gpu_joules", attrib_joules(s.nj));
	json_add_u64(o, "gpu_nj", s.nj);
	cJSON_AddNumberToObject(o, "gpu_watts", attrib_joules(s.tick_nj) / dt);
	cJSON_AddStringToObject(o, "gpu_source", nvml_source(g->energy));
	cJSON_AddStringToObject(o, "gpu_share_basis", s.nvml_basis ? "nvml-process" : "driver-calls");
	cJSON_AddNumberToObject(o, "launches", (double)s.c.launches);
	cJSON_AddNumberToObject(o, "gpu_graph_launches", (double)s.c.graph_launches);
	cJSON_AddNumberToObject(o, "gpu_threads", (double)s.c.threads);
	cJSON_AddNumberToObject(o, "gpu_copies", (double)s.c.copies);
	cJSON_AddNumberToObject(o, "gpu_bytes_h2d", (double)s.c.bytes_h2d);
	cJSON_AddNumberToObject(o, "gpu_bytes_d2h", (double)s.c.bytes_d2h);
	cJSON_AddNumberToObject(o, "gpu_syncs", (double)s.c.syncs);
	cJSON_AddNumberToObject(o, "gpu_sync_s", (double)s.c.sync_ns / 1e9);
	cJSON_AddNumberToObject(o, "gpu_ioctls", (double)s.c.ioctls);
	cJSON_AddNumberToObject(o, "gpu_nested", (double)s.c.nested);
	cJSON_AddNumberToObject(o, "gpu_failed", (double)s.c.failed);
	cJSON_AddNumberToObject(o, "gpu_procs", s.c.procs);
}

void gpu_top_json_total(const struct gpu_top *g, cJSON *o)
{
	if (!g)
		return;
	cJSON_AddStringToObject(o, "gpu_status", state_name(g));
	if (g->state != GPU_ACTIVE)
		return;
	cJSON_AddNumberToObject(o, "gpu_joules", attrib_joules(g->total_nj));
	json_add_u64(o, "gpu_nj", g->total_nj);
	json_add_u64(o, "gpu_attributed_nj", g->attributed_nj);
	json_add_u64(o, "gpu_unattributed_nj", g->unattributed_nj);
	cJSON_AddStringToObject(o, "gpu_source", nvml_source(g->energy));
	cJSON_AddBoolToObject(o, "gpu_measured", nvml_measured(g->energy));
	cJSON_AddNumberToObject(o, "gpu_devices", (double)nvml_devices(g->energy));
	cJSON_AddStringToObject(o, "gpu_detail", nvml_describe(g->energy));
	cJSON_AddStringToObject(o, "gpu_probes_detail", gpu_tracker_describe(g->tracker));
	cJSON_AddNumberToObject(o, "gpu_probes", (double)gpu_tracker_probes(g->tracker));
	cJSON_AddNumberToObject(o, "gpu_attach_ms", gpu_tracker_attach_ms(g->tracker));
}

uint64_t gpu_top_worker_tick_nj(const struct gpu_top *g, size_t w)
{
	if (!g || g->state != GPU_ACTIVE || w >= g->n_workers)
		return 0;
	return g->tick_nj[w];
}

bool gpu_top_active(const struct gpu_top *g)
{
	return g && g->state == GPU_ACTIVE;
}

void gpu_top_close(struct gpu_top *g)
{
	if (!g)
		return;
	gpu_tracker_close(g->tracker);
	nvml_close(g->energy);
	gpu_busy_free(&g->busy);
	free(g->cur);
	free(g->tick_busy);
	free(g->busy_total);
	free(g->basis);
	free(g->dev_of);
	free(g->nvml_basis);
	free(g->tick_nj);
	free(g->nj);
	free(g->model_of);
	free(g);
}

/* erg calibrate: measure joules per generated token of each model worker
 * from erg's own attribution, fit the effective FLOP/J eta of docs/theory.md §1
 * (J/token = 2N/eta) across models, and write the measured table as an
 * erg sim scenario. The parts: calibrate_args (the command line),
 * calibrate_fit (the fit), calibrate_out (scenario and JSON); this file
 * measures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "attrib.h"
#include "calibrate_args.h"
#include "calibrate_fit.h"
#include "calibrate_out.h"
#include "cli.h"
#include "commands.h"
#include "tracker.h"

struct meter {
	struct target_set targets;
	struct tracker *tracker;
	struct energy_source *energy;
};

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One non-streaming completion; adds its usage to w. */
static int one_request(struct cal_worker *w, int max_tokens, int i, char *err, size_t errlen)
{
	char body[1024], *resp = NULL;
	cJSON *doc, *usage, *ct, *pt;
	int status;

	snprintf(body, sizeof(body),
		 "{\"model\":\"%.63s\",\"max_tokens\":%d,\"stream\":false,\"seed\":%d,"
		 "\"messages\":[{\"role\":\"user\",\"content\":\"Calibration request %d: reason step by step about energy.\"}]}",
		 w->name, max_tokens, i + 1, i + 1);
	status = http_post_json(&w->url, "/v1/chat/completions", body, 300.0, &resp, err, errlen);
	if (status < 0)
		return -1;
	if (status != 200) {
		char q[256];

		snprintf(err, errlen, "%.63s answered HTTP %d: %s", w->name, status,
			 cli_quote(resp ? resp : "", q, sizeof(q)));
		free(resp);
		return -1;
	}
	doc = cJSON_Parse(resp);
	usage = doc ? cJSON_GetObjectItemCaseSensitive(doc, "usage") : NULL;
	ct = usage ? cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens") : NULL;
	pt = usage ? cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens") : NULL;
	/* counts from the network: whole, non-negative and bounded before
	 * they become integers */
	if (!cJSON_IsNumber(ct) || !(ct->valuedouble >= 0 && ct->valuedouble <= 1e9) ||
	    (cJSON_IsNumber(pt) && !(pt->valuedouble >= 0 && pt->valuedouble <= 1e9))) {
		char q[256];

		snprintf(err, errlen, "%.63s answered without a usable usage.completion_tokens: %s", w->name,
			 cli_quote(resp, q, sizeof(q)));
		cJSON_Delete(doc);
		free(resp);
		return -1;
	}
	w->completion_tokens += (long)ct->valuedouble;
	w->prompt_tokens += cJSON_IsNumber(pt) ? (long)pt->valuedouble : 0;
	w->requests++;
	cJSON_Delete(doc);
	free(resp);
	return 0;
}

/* BPF CPU counters on every worker, and the node's energy source. 0 ok,
 * 2 with err (a usage or load problem). */
static int meter_open(struct meter *m, const struct cal_args *a, char *err, size_t errlen)
{
	struct tracker_opts topts = { .verbose = a->verbose };
	char msg[512];

	for (size_t i = 0; i < a->n; i++) {
		char spec[32];

		snprintf(spec, sizeof(spec), "%d", a->workers[i].pid);
		if (target_add(&m->targets, TARGET_PID, spec, NULL, msg, sizeof(msg))) {
			snprintf(err, errlen, "worker %s: %s", a->workers[i].name, msg);
			return 2;
		}
	}
	m->tracker = tracker_open(&m->targets, &topts, err, errlen);
	if (!m->tracker)
		return 2;
	m->energy = energy_open(&a->energy, monotonic_s(), err, errlen);
	return m->energy ? 0 : 2;
}

static void meter_close(struct meter *m)
{
	energy_close(m->energy);
	tracker_close(m->tracker);
	targets_free(&m->targets);
}

/* Worker i alone: its requests, and its share of the node's energy over
 * them, split as erg top splits it. 0 ok, -1 printed. */
static int measure_one(struct meter *m, struct cal_worker *ws, size_t n, size_t i, const struct cal_args *a)
{
	struct cal_worker *w = &ws[i];
	struct energy_sample e0, e1;
	double cpu0[CAL_MAX_WORKERS], cpu1[CAL_MAX_WORKERS], dcpu[CAL_MAX_WORKERS];
	uint64_t nj[CAL_MAX_WORKERS];
	struct attrib_tick tick;
	char err[768];
	double t0, t1;

	fprintf(stderr, "erg calibrate: %s: %ld requests of max_tokens %ld ...", w->name, a->requests, a->max_tokens);
	t0 = monotonic_s();
	if (energy_read(m->energy, t0, &e0, err, sizeof(err)) || tracker_read(m->tracker, cpu0, NULL)) {
		fprintf(stderr, "\nerg calibrate: reading energy failed: %s\n", err);
		return -1;
	}
	for (long r = 0; r < a->requests; r++)
		if (one_request(w, (int)a->max_tokens, (int)r, err, sizeof(err))) {
			fprintf(stderr, "\nerg calibrate: %s\n", err);
			return -1;
		}
	t1 = monotonic_s();
	if (energy_read(m->energy, t1, &e1, err, sizeof(err)) || tracker_read(m->tracker, cpu1, NULL)) {
		fprintf(stderr, "\nerg calibrate: reading energy failed: %s\n", err);
		return -1;
	}
	for (size_t k = 0; k < n; k++)
		dcpu[k] = cpu1[k] - cpu0[k];
	tick.total_nj = attrib_nj(e1.joules - e0.joules);
	tick.idle_nj = attrib_nj(energy_idle_watts(m->energy) * (t1 - t0));
	tick.node_busy_cpu_s = e1.busy_cpu_s - e0.busy_cpu_s;
	tick.worker_cpu_s = dcpu;
	tick.n_workers = n;
	attrib_split(&tick, nj);
	w->seconds = t1 - t0;
	w->cpu_s = dcpu[i];
	w->joules = attrib_joules(nj[i]);
	if (w->completion_tokens <= 0) {
		fprintf(stderr, "\nerg calibrate: %s generated no tokens; cannot measure J/token\n", w->name);
		return -1;
	}
	w->j_per_token = w->joules / (double)w->completion_tokens;
	fprintf(stderr, " %ld tokens in %.1f s, %.3f J, %.4g J/token\n", w->completion_tokens, w->seconds,
		w->joules, w->j_per_token);
	return 0;
}

/* The scenario (to --out or stdout) and the JSON. 0 ok, 1 or 2 printed. */
static int write_outputs(const struct cal_args *a, const struct cal_base *base, const struct cal_fit *fit,
			 const struct energy_source *energy)
{
	FILE *out = a->out_path ? fopen(a->out_path, "w") : stdout;
	char q[256];

	if (!out) {
		fprintf(stderr, "erg calibrate: --out %s: %s\n", cli_quote(a->out_path, q, sizeof(q)), strerror(errno));
		return 2;
	}
	if (!a->json || a->out_path) {
		int bad = cal_write_scenario(out, base, a->workers, a->n, fit);

		if (a->out_path && fclose(out))
			bad = 1;
		if (bad) {
			fprintf(stderr, "erg calibrate: writing %s failed: %s\n",
				a->out_path ? cli_quote(a->out_path, q, sizeof(q)) : "stdout", strerror(errno));
			return 1;
		}
	}
	if (a->json)
		cal_print_json(a->workers, a->n, fit, energy, a->out_path);
	fprintf(stderr, "erg calibrate: eta = %.4g FLOP/J, R^2 = %.4f over %zu models (energy: %s)%s%s\n",
		fit->eta, fit->r2, a->n, fit->source, a->out_path ? "; scenario written to " : "",
		a->out_path ? cli_quote(a->out_path, q, sizeof(q)) : "");
	return 0;
}

int cmd_calibrate(int argc, char **argv)
{
	struct cal_args *a = calloc(1, sizeof(*a));
	struct meter m = { 0 };
	struct cal_base base;
	struct cal_fit fit = { 0 };
	char err[768], source[256];
	int rc;

	if (!a) {
		fprintf(stderr, "erg calibrate: out of memory\n");
		return 1;
	}
	rc = cal_args_parse(argc, argv, a);
	if (rc) {
		free(a);
		return rc == 1 ? 0 : rc;
	}
	/* the base before any BPF: a bad one is a usage error found at once */
	if (!a->base && !access("scenarios/reference.ini", R_OK))
		a->base = "scenarios/reference.ini";
	if (cal_base_load(a->base, &base, err, sizeof(err))) {
		fprintf(stderr, "erg calibrate: --base: %s\n", err);
		free(a);
		return 2;
	}
	if ((rc = meter_open(&m, a, err, sizeof(err)))) {
		fprintf(stderr, "erg calibrate: %s\n", err);
		goto out;
	}
	/* one model at a time, so each window's node energy is that model's
	 * work plus idle */
	rc = 1;
	for (size_t i = 0; i < a->n; i++)
		if (measure_one(&m, a->workers, a->n, i, a))
			goto out;
	if (cal_fit_eta(a->workers, a->n, &fit.eta, &fit.r2)) {
		fprintf(stderr, "erg calibrate: the measurements give no positive eta\n");
		goto out;
	}
	fit.target = cal_reachable_target(&base.sp, base.budgets, base.n_budgets, base.target, a->workers, a->n,
					  &fit.lowered);
	snprintf(source, sizeof(source), "%s", energy_describe(m.energy));
	fit.source = source;
	rc = write_outputs(a, &base, &fit, m.energy);
out:
	meter_close(&m);
	free(a);
	return rc;
}

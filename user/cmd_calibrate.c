/* erg calibrate: measure joules per generated token of each model worker
 * from erg's own attribution, fit the effective FLOP/J eta of docs/theory.md §1
 * (J/token = 2N/eta) across models, and write the measured table as an
 * erg sim scenario. The parts: calibrate_args (the command line),
 * calibrate_request (bodies and answers), calibrate_fit (the fit),
 * calibrate_out (scenario and JSON); this file measures, retrying what a
 * worker refuses. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "attrib.h"
#include "calibrate_args.h"
#include "calibrate_fit.h"
#include "calibrate_out.h"
#include "calibrate_request.h"
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

/* One non-streaming completion; adds its token counts to w. 0 ok, -1 with
 * the reason in err. */
static int one_request(struct cal_worker *w, const struct cal_args *a, long index, long seed, char *err,
		       size_t errlen)
{
	char *body = cal_request_body(w->name, a->max_tokens, seed, index, a->path, a->body_extra);
	char *resp = NULL, q[256];
	long completion, prompt;
	int status;

	if (!body) {
		snprintf(err, errlen, "out of memory building the request");
		return -1;
	}
	status = http_post_json(&w->url, a->path, body, 300.0, &resp, err, errlen);
	free(body);
	if (status < 0)
		return -1;
	if (status != 200) {
		snprintf(err, errlen, "HTTP %d: %s", status, cli_quote(resp ? resp : "", q, sizeof(q)));
		free(resp);
		return -1;
	}
	status = cal_parse_answer(resp, &completion, &prompt, err, errlen);
	free(resp);
	if (status)
		return -1;
	w->completion_tokens += completion;
	w->prompt_tokens += prompt;
	w->requests++;
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

/* The meter at one instant: the node's energy and every worker's CPU. */
struct reading {
	double t;
	struct energy_sample e;
	double cpu[CAL_MAX_WORKERS];
};

static int take_reading(struct meter *m, struct reading *r, char *err, size_t errlen)
{
	r->t = monotonic_s();
	if (energy_read(m->energy, r->t, &r->e, err, errlen))
		return -1;
	if (tracker_read(m->tracker, r->cpu, NULL)) {
		snprintf(err, errlen, "reading the workers' CPU counters failed");
		return -1;
	}
	return 0;
}

/* Worker i's joules between r0 and r1, the node's energy split as erg top
 * splits it. */
static double window_joules(const struct meter *m, const struct reading *r0, const struct reading *r1, size_t n,
			    size_t i)
{
	double dcpu[CAL_MAX_WORKERS];
	uint64_t nj[CAL_MAX_WORKERS];
	struct attrib_tick tick;

	for (size_t k = 0; k < n; k++)
		dcpu[k] = r1->cpu[k] - r0->cpu[k];
	tick.total_nj = attrib_nj(r1->e.joules - r0->e.joules);
	tick.idle_nj = attrib_nj(energy_idle_watts(m->energy) * (r1->t - r0->t));
	tick.node_busy_cpu_s = r1->e.busy_cpu_s - r0->e.busy_cpu_s;
	tick.worker_cpu_s = dcpu;
	tick.n_workers = n;
	attrib_split(&tick, nj);
	return attrib_joules(nj[i]);
}

/* A pause before retry k (1, 2, ...): a server that is busy or restarting
 * gets a moment, outside any measured window. */
static void backoff(long k)
{
	long ms = 100 * (k < 10 ? k : 10);
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Progress goes on one line per model unless a retry interrupts it. */
static void progress_break(bool *open)
{
	if (*open)
		fputc('\n', stderr);
	*open = false;
}

/* Why worker w's measurements cannot be fitted; NULL when they can: it
 * needs tokens, and at least half its requests answered. */
static const char *too_few(const struct cal_worker *w, long requests, char *why, size_t len)
{
	long need = (requests + 1) / 2;

	if (w->requests < need)
		snprintf(why, len, "%ld of %ld requests answered, at least %ld needed", w->requests, requests,
			 need);
	else if (w->completion_tokens <= 0)
		snprintf(why, len, "%ld requests answered with no generated tokens", w->requests);
	else
		return NULL;
	return why;
}

/* Worker i alone: each request in its own window, so only answered
 * requests count toward its joules; a failed one is retried with a new
 * seed, then skipped. 0 measured, 1 too few answers (printed), -1 the meter
 * failed (printed). */
static int measure_one(struct meter *m, struct cal_worker *ws, size_t n, size_t i, const struct cal_args *a)
{
	struct cal_worker *w = &ws[i];
	struct reading r0, r1;
	char err[768], why[128];
	bool open = true;

	fprintf(stderr, "erg calibrate: %s: %ld requests of max_tokens %ld ...", w->name, a->requests, a->max_tokens);
	if (take_reading(m, &r0, err, sizeof(err)))
		goto meter_failed;
	for (long r = 0; r < a->requests; r++)
		for (long attempt = 0; attempt <= a->retries; attempt++) {
			long seed = attempt ? a->requests + ++w->retries : r + 1;
			int failed;

			/* windows follow each other without a gap, so the work a
			 * worker finishes after its answer counts in the next one;
			 * only a pause before a retry is in none */
			if (attempt) {
				backoff(attempt);
				if (take_reading(m, &r0, err, sizeof(err)))
					goto meter_failed;
			}
			failed = one_request(w, a, r, seed, w->last_error, sizeof(w->last_error));
			if (take_reading(m, &r1, err, sizeof(err)))
				goto meter_failed;
			if (!failed) {
				w->seconds += r1.t - r0.t;
				w->cpu_s += r1.cpu[i] - r0.cpu[i];
				w->joules += window_joules(m, &r0, &r1, n, i);
				r0 = r1;
				break;
			}
			w->failed_seconds += r1.t - r0.t;
			r0 = r1;
			progress_break(&open);
			if (attempt < a->retries) {
				fprintf(stderr, "erg calibrate: %s: request %ld of %ld failed: %s; retry %ld of %ld with "
					"seed %ld\n", w->name, r + 1, a->requests, w->last_error, attempt + 1, a->retries,
					a->requests + w->retries + 1);
			} else {
				w->skipped++;
				fprintf(stderr, "erg calibrate: %s: request %ld of %ld skipped after %ld attempt%s: %s\n",
					w->name, r + 1, a->requests, attempt + 1, attempt ? "s" : "", w->last_error);
			}
		}
	if (!open)
		fprintf(stderr, "erg calibrate: %s:", w->name);
	if (too_few(w, a->requests, why, sizeof(why))) {
		fprintf(stderr, " %s; too few to fit (see the end)\n", why);
		return 1;
	}
	w->j_per_token = w->joules / (double)w->completion_tokens;
	fprintf(stderr, " %ld tokens in %.1f s, %.3f J, %.4g J/token", w->completion_tokens, w->seconds,
		w->joules, w->j_per_token);
	if (w->retries || w->skipped)
		fprintf(stderr, "; %ld %s, %ld of %ld requests skipped, %.2g s of failed attempts left out",
			w->retries, w->retries == 1 ? "retry" : "retries", w->skipped, a->requests, w->failed_seconds);
	if (w->skipped)
		fprintf(stderr, "; last error: %s", w->last_error);
	fputc('\n', stderr);
	return 0;
meter_failed:
	progress_break(&open);
	fprintf(stderr, "erg calibrate: reading the meter failed: %s\n", err);
	return -1;
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

/* The last word when a model cannot be fitted: which, and why. */
static void report_too_few(const struct cal_args *a)
{
	size_t bad = 0;
	char why[128];

	for (size_t i = 0; i < a->n; i++) {
		const struct cal_worker *w = &a->workers[i];

		if (!too_few(w, a->requests, why, sizeof(why)))
			continue;
		bad++;
		fprintf(stderr, "erg calibrate: %s: too few samples to fit: %s; last error: %s\n", w->name, why,
			w->last_error[0] ? w->last_error : "none");
	}
	fprintf(stderr, "erg calibrate: nothing written: %zu of %zu models have too few samples to fit (above); "
		"fix the worker or raise --retries or --requests\n", bad, a->n);
}

int cmd_calibrate(int argc, char **argv)
{
	struct cal_args *a = calloc(1, sizeof(*a));
	struct meter m = { 0 };
	struct cal_base base;
	struct cal_fit fit = { 0 };
	char err[768], source[256];
	size_t failed = 0;
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
	 * work plus idle; every model is measured before any is given up on */
	rc = 1;
	for (size_t i = 0; i < a->n; i++) {
		int r = measure_one(&m, a->workers, a->n, i, a);

		if (r < 0)
			goto out;
		failed += (size_t)r;
	}
	if (failed) {
		report_too_few(a);
		goto out;
	}
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

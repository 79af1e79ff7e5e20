/* erg sim: the offline theory engine. Loads a scenario, finds the critical
 * supply and each policy's routing mix (docs/theory.md §1-§5), simulates every
 * (supply level, policy) pair and prints simulated and closed-form results
 * side by side, as text, JSON or an SVG chart. The parts: sim_args (the
 * command line), sim_plan (the model and the jobs), sim_pool (the runs),
 * sim_report / sim_json / sim_chart (the outputs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "commands.h"
#include "scenario.h"
#include "sim_args.h"
#include "sim_chart.h"
#include "sim_json.h"
#include "sim_plan.h"
#include "sim_pool.h"
#include "sim_report.h"

struct outputs {
	FILE *svg, *series;
};

/* Open --svg and --series first: a bad path is a usage error, found before
 * the run. 0 ok, 2 printed. */
static int open_outputs(const struct sim_args *a, struct outputs *o)
{
	const char *paths[2] = { a->svg_path, a->series_path };
	FILE **files[2] = { &o->svg, &o->series };
	char q[256];

	for (int i = 0; i < 2; i++)
		if (paths[i] && !(*files[i] = fopen(paths[i], "w"))) {
			fprintf(stderr, "erg sim: cannot write %s: %s (check the directory exists and is writable)\n",
				cli_quote(paths[i], q, sizeof(q)), strerror(errno));
			return 2;
		}
	return 0;
}

static void close_outputs(struct outputs *o)
{
	if (o->svg)
		fclose(o->svg);
	if (o->series)
		fclose(o->series);
}

/* Run the plan's jobs. 0 ok, 1 printed. */
static int run_jobs(const struct sim_plan *p, const struct sim_args *a, struct sim_slot **series,
		    double *elapsed_s)
{
	long slots = p->sc->slots;

	if (a->series_path) {
		*series = calloc((size_t)p->n_jobs * slots, sizeof(**series));
		if (!*series) {
			fprintf(stderr, "erg sim: out of memory for --series (%d runs x %ld slots); use fewer --slots\n",
				p->n_jobs, slots);
			return 1;
		}
	}
	sim_pool_run(p->jobs, p->n_jobs, slots, *series, a->quiet, elapsed_s);
	for (int i = 0; i < p->n_jobs; i++) {
		const struct sim_job *j = &p->jobs[i];
		if (j->rc == SIM_TOO_MANY_TASKS) {
			fprintf(stderr, "erg sim: %s: a slot drew more than 1e9 tasks; lower variance_ratio "
				"or tasks_per_slot\n", p->path);
			return 1;
		}
		if (j->rc) {
			const char *why = sim_check(&j->cfg);
			fprintf(stderr, "erg sim: a simulation run failed (%s)\n", why ? why : "out of memory");
			return 1;
		}
	}
	return 0;
}

/* Everything after the runs: the check, then the files and the report.
 * The files are closed here. */
static int write_results(const struct sim_plan *p, const struct sim_args *a, struct outputs *o,
			 const struct sim_slot *series, double elapsed_s)
{
	struct sim_headline h;
	char err[512], q[256];
	int rc;

	/* nothing non-finite is printed with exit 0 */
	if (sim_results_check(p, err, sizeof(err))) {
		fprintf(stderr, "erg sim: %s\n", err);
		return 1;
	}
	sim_headline_make(p, elapsed_s, &h);
	if (o->svg) {
		rc = sim_chart_svg(o->svg, p, &h);
		o->svg = NULL;
		if (rc == -2)
			fprintf(stderr, "erg sim: out of memory\n");
		else if (rc)
			fprintf(stderr, "erg sim: writing %s failed (disk full?)\n",
				cli_quote(a->svg_path, q, sizeof(q)));
		if (rc)
			return 1;
	}
	if (o->series) {
		rc = sim_chart_series(o->series, p, series);
		o->series = NULL;
		if (rc) {
			fprintf(stderr, "erg sim: writing %s failed (disk full?)\n",
				cli_quote(a->series_path, q, sizeof(q)));
			return 1;
		}
	}
	if (!a->json) {
		sim_report_text(p, &h);
		return 0;
	}
	if (sim_json_print(p, &h)) {
		fprintf(stderr, "erg sim: out of memory\n");
		return 1;
	}
	return 0;
}

int cmd_sim(int argc, char **argv)
{
	struct sim_args a;
	struct sim_plan plan = { 0 };
	struct outputs o = { 0 };
	struct sim_slot *series = NULL;
	struct scenario *sc;
	char err[1024];
	double elapsed_s = 0.0;
	int rc = sim_args_parse(argc, argv, &a);

	if (rc)
		return rc == 1 ? 0 : rc;
	if (!(sc = malloc(sizeof(*sc)))) {
		fprintf(stderr, "erg sim: out of memory\n");
		return 1;
	}
	if (scenario_load(a.scenario, sc, err, sizeof(err))) {
		fprintf(stderr, "erg sim: %s\n", err);
		free(sc);
		return 2;
	}
	if (!(rc = open_outputs(&a, &o))) {
		rc = sim_plan_make(&plan, sc, a.scenario, &a, err, sizeof(err));
		if (rc)
			fprintf(stderr, "erg sim: %s\n", err);
	}
	if (!rc)
		rc = run_jobs(&plan, &a, &series, &elapsed_s);
	if (!rc)
		rc = write_results(&plan, &a, &o, series, elapsed_s);
	close_outputs(&o);
	free(series);
	sim_plan_free(&plan);
	scenario_free(sc);
	free(sc);
	return rc;
}

/* erg sim's results: the headline derived from the finished jobs, the check
 * that everything it would print is a finite number, and the text report
 * (the answer first, then one row per supply level and policy). */
#ifndef ERG_SIM_REPORT_H
#define ERG_SIM_REPORT_H

#include <stddef.h>
#include "sim_plan.h"

struct sim_headline {
	int dyn_opt[SCEN_MAX_OPTIONS];	/* dynamic policy's realised mix at b* */
	double dyn_w[SCEN_MAX_OPTIONS];
	int dyn_n;
	const struct sim_job *at_m, *at_v; /* mean-only, variance-aware at their critical points */
	double ratio_theory, ratio_sim;	/* variance-aware / mean-only cost; NaN if undefined */
	double ratio_dyn;		/* dynamic / mean-only cost at b*, simulated; NaN if undefined */
	int same;			/* the two static mixes are one */
	char storage_desc[64];		/* "no storage", "storage 5000 J", ... */
	const char *arrivals_desc;	/* "Poisson", ... */
	const char *theory_desc;	/* "docs/theory.md §4.1", ... */
	double elapsed_s;
};

void sim_headline_make(const struct sim_plan *p, double elapsed_s, struct sim_headline *h);

/* 0 when every result that must be a number is finite; else -1 with a
 * message naming the first that is not (a scenario whose numbers overflow
 * double precision). Values with no closed form may be NaN: they print "-". */
int sim_results_check(const struct sim_plan *p, char *err, size_t errlen);

/* The text report on stdout. */
void sim_report_text(const struct sim_plan *p, const struct sim_headline *h);

/* "%.0f"-style formatting that prints "-" (padded to width) for NaN or inf. */
const char *sim_fmt(char *buf, size_t len, double v, int width, int prec);

#endif

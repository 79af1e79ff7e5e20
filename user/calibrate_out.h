/* erg calibrate's outputs: the scenario it writes for erg sim (the base's
 * sections kept, the measured models and the fitted eta in place of
 * theirs) and the JSON of the measurements. */
#ifndef ERG_CALIBRATE_OUT_H
#define ERG_CALIBRATE_OUT_H

#include <stdbool.h>
#include <stdio.h>
#include "calibrate_args.h"
#include "energy.h"
#include "scaling.h"
#include "scenario.h"

/* What the written scenario inherits: the base's scaling, budgets and
 * accuracy target, or docs/theory.md §1 defaults without a base. */
struct cal_base {
	const char *path;		/* NULL: no base file */
	struct scaling_params sp;
	int n_budgets;
	double budgets[SCEN_MAX_BUDGETS];
	double target;
};

/* Load base (NULL: the defaults). 0 ok, -1 with err. */
int cal_base_load(const char *path, struct cal_base *b, char *err, size_t errlen);

struct cal_fit {
	double eta, r2;
	double target;			/* accuracy target written */
	bool lowered;			/* below the base's */
	const char *source;		/* the energy source, described */
};

/* The scenario into out. 0 ok, -1 on a write error. */
int cal_write_scenario(FILE *out, const struct cal_base *b, const struct cal_worker *ws, size_t n,
		       const struct cal_fit *fit);

/* The measurements and the fit as one JSON document on stdout. */
void cal_print_json(const struct cal_worker *ws, size_t n, const struct cal_fit *fit,
		    const struct energy_source *energy, const char *out_path);

#endif

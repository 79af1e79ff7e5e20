/* erg calibrate's fit: docs/theory.md §1's J/token = 2N/eta across the measured
 * models, and the accuracy target they can meet. Pure functions. */
#ifndef ERG_CALIBRATE_FIT_H
#define ERG_CALIBRATE_FIT_H

#include <stdbool.h>
#include <stddef.h>
#include "calibrate_args.h"
#include "scaling.h"

/* Least squares through the origin of j_per_token on 2 * params: eta and
 * R^2. 0 ok, -1 when the measurements give no positive finite eta. */
int cal_fit_eta(const struct cal_worker *ws, size_t n, double *eta, double *r2);

/* The accuracy target the calibrated models can meet (docs/theory.md §1): the
 * base's if the best option reaches it, else halfway between the worst and
 * the best option, so erg sim has a routing choice to make. Sets *lowered
 * when it differs from the base's. */
double cal_reachable_target(const struct scaling_params *sp, const double *budgets, int n_budgets,
			    double base_target, const struct cal_worker *ws, size_t n, bool *lowered);

#endif

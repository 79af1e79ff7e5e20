/* docs/theory.md §1 fit for erg calibrate. */
#include <math.h>
#include "calibrate_fit.h"

int cal_fit_eta(const struct cal_worker *ws, size_t n, double *eta, double *r2)
{
	double sxy = 0, sxx = 0, mean_y = 0, ss_res = 0, ss_tot = 0;

	for (size_t i = 0; i < n; i++) {
		double x = 2.0 * ws[i].params, y = ws[i].j_per_token;

		sxy += x * y;
		sxx += x * x;
		mean_y += y / (double)n;
	}
	*eta = sxx > 0 && sxy > 0 ? sxx / sxy : 0;
	if (!(*eta > 0) || !isfinite(*eta))
		return -1;
	for (size_t i = 0; i < n; i++) {
		double fit = 2.0 * ws[i].params / *eta, y = ws[i].j_per_token;

		ss_res += (y - fit) * (y - fit);
		ss_tot += (y - mean_y) * (y - mean_y);
	}
	*r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
	return 0;
}

double cal_reachable_target(const struct scaling_params *sp, const double *budgets, int n_budgets,
			    double base_target, const struct cal_worker *ws, size_t n, bool *lowered)
{
	double best = -INFINITY, worst = INFINITY;

	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < n_budgets; b++) {
			double acc = scaling_accuracy(sp, ws[i].params, budgets[b]);

			best = acc > best ? acc : best;
			worst = acc < worst ? acc : worst;
		}
	*lowered = base_target > best;
	return *lowered ? worst + 0.5 * (best - worst) : base_target;
}

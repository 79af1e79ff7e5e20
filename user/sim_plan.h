/* What erg sim runs: from a loaded scenario and the command line, the
 * model's answer (moments, each policy's mix, the critical supply b*, the
 * variance shares, the volatility-limited cost; docs/theory.md §1-§5), the supply
 * levels, and one simulation job per (level, policy) plus each policy at its
 * own critical point. */
#ifndef ERG_SIM_PLAN_H
#define ERG_SIM_PLAN_H

#include <stddef.h>
#include "policy.h"
#include "scaling.h"
#include "scenario.h"
#include "sim_args.h"
#include "simulate.h"

enum { SIM_P_MEAN, SIM_P_VARIANCE, SIM_P_DYNAMIC, SIM_NPOL };
extern const char *const sim_policy_name[SIM_NPOL];	/* "mean", ... */
extern const int sim_policy_bit[SIM_NPOL];		/* POLICY_MEAN, ... */

struct sim_job {
	struct sim_config cfg;
	struct sim_summary sum;
	double level;			/* supply, J per slot */
	int policy;			/* SIM_P_* */
	const char *constraint;		/* variance: "slack", "binding" or "infeasible" */
	int sweep;			/* part of the per-level output */
	double *counts;			/* tasks routed to each option */
	long progress;			/* slots done (atomic) */
	int rc;				/* sim_run's */
};

struct sim_plan {
	struct scenario *sc;
	const char *path;		/* the scenario as named on the command line */
	int policies;			/* POLICY_* mask */
	struct sim_config base;		/* what every job shares */
	struct arrival_moments am;
	struct policy_problem pb;
	struct mix mix_mean, mix_var;
	double mu_ref, var_ref, acc_ref, sigma_ref;	/* mean-only mix */
	double mu_v, var_v, acc_v, sigma_v;		/* variance-aware mix */
	double bstar;			/* critical supply = mu_ref */
	struct var_decomp vd;		/* docs/theory.md §2 shares of the mean-only mix */
	double vol_ref, vol_v;		/* volatility-limited cost at each critical point */
	struct dyn_policy dyn;		/* jobs point here: the plan must not move */
	struct dyn_table table;		/* dyn.table points here when it applies */
	double *levels;
	int n_levels;
	struct sim_job *jobs;
	int n_jobs;			/* sweep jobs first, then the headline ones */
	double *counts;
	int head[SIM_NPOL];		/* job of each policy at its critical point, or -1 */
};

/* Apply the command line's overrides to sc and build the whole plan.
 * 0 ok; 2 with a one-line message in err (the scenario cannot be planned:
 * no mix meets the target, no demand, numbers that overflow, a bound of
 * the simulator); 1 out of memory. p->sc and p->path are the caller's. */
int sim_plan_make(struct sim_plan *p, struct scenario *sc, const char *path,
		  const struct sim_args *a, char *err, size_t errlen);
void sim_plan_free(struct sim_plan *p);

#endif

/* Slot simulator for erg sim (docs/theory.md §1-§5): tasks arrive per slot (Poisson,
 * over-dispersed or from a rate trace), each is routed by a policy, its
 * energy drawn from the option's capped-lognormal reasoning length, and the
 * slot's demand is entered against the supply (constant or a trace) with
 * optional storage via supply_step(). Returns summary statistics with
 * standard errors, the matching closed forms, and optionally the per-slot
 * series. Deterministic for a given seed; arrivals and reasoning lengths come
 * from separate streams, so every policy sees the same tasks. */
#ifndef ERG_SIMULATE_H
#define ERG_SIMULATE_H

#include <stdint.h>
#include "policy.h"
#include "scaling.h"
#include "supply_trace.h"

/* Bounds on the workload: the simulator draws every task, so its time grows
 * with the tasks per slot; a bigger workload is a longer slot. */
#define SIM_MAX_TASKS_PER_SLOT 1e6
#define SIM_MAX_VARIANCE_RATIO 1e6

enum arrival_kind { ARRIVALS_POISSON = 0, ARRIVALS_OVERDISPERSED, ARRIVALS_TRACE };

struct sim_arrivals {
	enum arrival_kind kind;
	double per_slot;		/* E[n] (poisson, overdispersed) */
	double var_ratio;		/* Var(n)/E[n] (overdispersed, >= 1) */
	const struct supply_trace *trace; /* ARRIVALS_TRACE: its second column is
					 * tasks per second; a slot's count is Poisson
					 * with the integrated rate */
};

struct sim_supply {
	double per_slot;		/* J per slot: the constant b, or the mean a trace
					 * is scaled to (<= 0: the trace as it is) */
	const struct supply_trace *trace; /* NULL: constant */
	double capacity;		/* storage C, J: 0 none, INFINITY unlimited */
	double initial;			/* storage at the start; < 0: C/2 (0 if unlimited) */
	double target;			/* level the dynamic policy steers the store to;
					 * <= 0: C/2 (0 if unlimited) */
};

enum sim_policy_kind { SIM_STATIC = 0, SIM_DYNAMIC };

struct sim_config {
	const struct task_option *opts;
	int n_opts;
	struct sim_arrivals arrivals;
	struct sim_supply supply;
	double slot_seconds;
	long slots;
	uint64_t seed;
	enum sim_policy_kind policy;
	struct mix mix;			/* SIM_STATIC: the mix */
	enum realiser how;		/* SIM_STATIC: how it is realised */
	const struct dyn_policy *dyn;	/* SIM_DYNAMIC */
	double c_a, c_w;		/* prices for the cost column */
	long *progress;			/* optional: slots done so far (atomic stores) */
};

struct sim_slot {
	double arrivals, demand, supply, aux, waste, storage, accuracy;
};

/* Per-slot averages. *_se are standard errors by batch means (valid with
 * storage, where slots are correlated). Closed forms are NaN where none
 * applies (dynamic policy; storage with a trace). */
struct sim_summary {
	long slots;
	double tasks;
	double supply;			/* mean b */
	double mu, sigma;		/* sample mean and sd of slot demand */
	double skew;			/* sample skewness of slot demand (0 for Gaussian) */
	double aux, waste, cost;
	double aux_se, waste_se, cost_se, mu_se;
	double accuracy;		/* mean accuracy per task */
	double storage;			/* mean storage level after a slot */
	double mu_theory, sigma_theory;
	double aux_theory, waste_theory, cost_theory, accuracy_theory;
};

/* Check a configuration, the bounds above included; NULL if fine, else a
 * static description that names the problem and the limit. */
const char *sim_check(const struct sim_config *cfg);
/* Run. series: NULL or cfg->slots entries; option_tasks: NULL or n_opts
 * entries (tasks routed to each option). 0 ok, -1 bad config or no memory,
 * SIM_TOO_MANY_TASKS when one slot drew more tasks than it can simulate
 * (over-dispersed arrivals with an extreme variance ratio). Progress is
 * published after every slot. */
#define SIM_TOO_MANY_TASKS (-2)
int sim_run(const struct sim_config *cfg, struct sim_summary *out,
	    struct sim_slot *series, double *option_tasks);

/* What the dynamic policy carries from task to task and slot to slot. */
struct sim_dyn_state {
	double credit;			/* sum over served tasks of (acc - a*) */
	double dither;
};
/* Route one task of a slot with the dynamic policy from what a live router
 * knows when it arrives: the time (fraction t of the slot gone), the
 * expected arrivals of the whole slot (rate), the supply the slot may spend
 * and the expected energy of the slot's tasks dispatched before it
 * (committed). Never the later arrivals or any realised energy. With
 * storage (balanced 0) every task gets the slot's share of the supply. */
int sim_dynamic_route(const struct dyn_policy *dp, const struct task_option *opts,
		      struct sim_dyn_state *st, double t, double rate, double spendable,
		      double committed, int balanced);

/* Expected arrivals and supply in slot t. */
double sim_slot_rate(const struct sim_config *cfg, long t);
double sim_slot_supply(const struct sim_config *cfg, long t);
/* E[n] and Var(n) per slot over the configured run (Var includes the
 * slot-to-slot variation of a rate trace). */
struct arrival_moments sim_arrival_moments(const struct sim_config *cfg);

#endif

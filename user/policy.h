/* Routing policies of docs/theory.md §5. Pure functions of their inputs.
 *
 * A policy is a mix p over execution options (model, budget). Slot demand
 * has mean mu(p) = E[n] m.p and variance
 *   REALISE_RANDOM: E[n] s.p + (Var(n) - E[n]) (m.p)^2   (docs/theory.md §2/§5; for
 *                   Poisson arrivals this is lambda s.p, concave in p)
 *   REALISE_SWRR:   E[n] v.p + Var(n) (m.p)^2            (between-option
 *                   variance removed by the deterministic realiser)
 * Both optimisers are exact: for a fixed mean the variance term is linear in
 * p, so an optimum is a basic solution of a small LP (at most two options,
 * three when the accuracy constraint binds), and along each such pair or
 * accuracy-binding triple the objective is a one-dimensional function
 * minimised in closed form. */
#ifndef ERG_POLICY_H
#define ERG_POLICY_H

#include "scaling.h"

#define MIX_MAX 3

/* A sparse mix: options opt[i] with weights w[i] (sum 1). */
struct mix {
	int n;
	int opt[MIX_MAX];
	double w[MIX_MAX];
};

struct policy_problem {
	const struct task_option *opts;
	int n_opts;
	double acc_target;		/* a*: sum p_o acc_o >= a* */
	double mu_max;			/* supply constraint mu(p) <= b, J/slot; INFINITY: none */
	struct arrival_moments arr;	/* tasks per slot */
	enum realiser how;		/* which variance the mix will have */
	double c_e;			/* price of a joule of mean demand */
	double c_a, c_w;		/* prices of auxiliary energy and of waste */
	double storage;			/* C > 0: price volatility by docs/theory.md §4.3 */
};

/* mu (J/slot), Var(D) (J^2) and accuracy of a mix. */
void policy_mix_moments(const struct policy_problem *pb, const struct mix *mx,
			double *mu, double *var, double *acc);
void policy_dense_moments(const struct policy_problem *pb, const double *p,
			  double *mu, double *var, double *acc);
/* The price of volatility R(sigma) per slot at the critical point:
 * kappa sigma with kappa = (c_a+c_w) phi(Phi^-1(c_a/(c_a+c_w))) (docs/theory.md §4.2),
 * or (c_a+c_w) sigma^2 / (2 (C + 2*0.5826 sigma)) with storage C (docs/theory.md §4.3),
 * or 0 with unlimited storage. */
double policy_volatility_cost(const struct policy_problem *pb, double sigma);
/* The variance-aware objective c_e mu(p) + R(sigma(p)). */
double policy_objective(const struct policy_problem *pb, const struct mix *mx);
double policy_objective_dense(const struct policy_problem *pb, const double *p);

/* Mean-only (energy-greedy): minimise mu(p) s.t. accuracy >= a* and
 * mu(p) <= mu_max; ties go to the lower variance. 0 ok, -1 infeasible. */
int policy_mean_only(const struct policy_problem *pb, struct mix *out);
/* Variance-aware: minimise c_e mu(p) + R(sigma(p)) under the same
 * constraints; ties go to the lower mean. 0 ok, -1 infeasible. */
int policy_variance_aware(const struct policy_problem *pb, struct mix *out);

/* Smooth weighted round robin: realises weights deterministically, every
 * prefix of the sequence within one task of its share (docs/theory.md §5). */
#define SWRR_MAX 64
struct swrr {
	int n;
	int opt[SWRR_MAX];
	double w[SWRR_MAX];
	double cur[SWRR_MAX];
	double total;
};
/* -1 if n is out of range or no weight is positive. */
int swrr_init(struct swrr *rr, const int *opt, const double *w, int n);
int swrr_init_mix(struct swrr *rr, const struct mix *mx);
int swrr_next(struct swrr *rr);

/* Dynamic ledger-feedback policy (docs/theory.md §5). The ladder is the efficient
 * frontier of the catalog: accuracy as a concave, increasing function of
 * mean energy per task. Surplus buys rungs up (accuracy up), shortage moves
 * down, and an accuracy credit keeps the long-run accuracy at the target. */
#define LADDER_MAX 256
struct ladder {
	int n;
	int opt[LADDER_MAX];		/* option index per rung */
	double acc[LADDER_MAX];		/* increasing */
	double m[LADDER_MAX];		/* increasing, J per task */
	double v[LADDER_MAX];		/* Var of a task's energy, J^2 */
};
int policy_ladder(const struct task_option *opts, int n, struct ladder *out);
/* Frontier accuracy reachable at mean energy m per task (interpolated). */
double ladder_acc_at(const struct ladder *l, double m);

/* The decision table of the dynamic policy: for a task arriving with r
 * expected tasks still to come in the slot and x = committed - supply J
 * (expected energy of the tasks already dispatched this slot, less the
 * slot's supply), the ladder rung that minimises the slot's expected
 * c_a aux + c_w waste less price x accuracy. Built by dynamic programming
 * over Poisson arrivals, off the hot path; price is the least that meets
 * the accuracy target. Looking a choice up is O(1). */
struct dyn_table {
	int n_r, n_x;
	double r_step;			/* expected tasks per row */
	double x_lo, x_step;		/* J */
	double tasks;			/* expected tasks per slot it was built for */
	double price;			/* J of aux or waste one unit of accuracy is worth */
	double achieved;		/* expected accuracy per task it predicts */
	double j_per_acc;		/* J per task per unit of accuracy at the target */
	unsigned char *rung;		/* n_r x n_x ladder rungs */
};
/* 0 ok; -1 no memory, or a workload the table does not model (more than
 * 100 tasks per slot, no supply). noise_var: Var of the slot's demand from
 * reasoning lengths alone (J^2). */
int policy_dynamic_table(struct dyn_table *t, const struct ladder *l, double acc_target,
			 double tasks, double supply, double noise_var, double c_a, double c_w);
void policy_dynamic_table_free(struct dyn_table *t);
/* Mean energy per task at which the frontier reaches accuracy a. */
double ladder_m_at(const struct ladder *l, double a);

struct dyn_policy {
	struct ladder ladder;
	const struct dyn_table *table;	/* NULL: the heuristic below */
	double acc_target;
	double horizon_tasks;		/* tasks over which credit or debt is evened out */
	double max_dip;			/* most the credit may move the accuracy floor */
};
struct dyn_input {
	double supply_left;		/* J this slot can still spend: baseline not yet
					 * committed, plus storage above its target */
	double tasks_left;		/* expected tasks still to come this slot, this one included */
	double acc_credit;		/* sum over served tasks of (acc - a*) */
	double dither;			/* error-diffusion state after the previous choice */
};
struct dyn_choice {
	int opt;			/* option to run this task on */
	double goal;			/* accuracy aimed at */
	double dither;			/* state to pass with the next task */
};
/* State in, choice out; no hidden state. */
void policy_dynamic(const struct dyn_policy *dp, const struct dyn_input *in, struct dyn_choice *out);

#endif

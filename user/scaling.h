/* The scaling-law cost model of docs/theory.md §1 and the variance decomposition of
 * docs/theory.md §2. Pure functions, no I/O.
 *
 * A model k has N_k parameters. Its accuracy with a reasoning budget of T
 * tokens is acc_k(T) = clamp(alpha_k + beta ln T, 0, a_max) with the intercept
 * alpha_k = a0 + a1 ln N_k. One task costs e = eps_k (L_in + T_out) + e0_k
 * joules, eps_k = 2 N_k / eta (or a measured J/token), and the realised
 * reasoning length T_out is lognormal, capped at the budget. An option
 * o = (k, T) has per-task moments m_o = E[e] and s_o = E[e^2], in closed form. */
#ifndef ERG_SCALING_H
#define ERG_SCALING_H

#include <math.h>

struct scaling_params {
	double eta;			/* effective FLOP per joule */
	double a0, a1;			/* alpha_k = a0 + a1 ln N_k */
	double beta;			/* accuracy gained per e-fold of tokens */
	double a_max;			/* accuracy ceiling */
	double input_tokens;		/* L_in */
	double reasoning_sigma;		/* lognormal sigma of T_out */
	double reasoning_median;	/* median T_out as a fraction of the budget */
};

struct model_spec {
	char name[32];
	double params;			/* N_k */
	double joules_per_token;	/* measured eps_k; <= 0: 2 N_k / eta */
	double joules_per_task;		/* e0_k, fixed cost per task */
	double reasoning_sigma;		/* < 0: the scenario's */
};

/* One execution option o = (model, budget) with its closed-form moments. */
struct task_option {
	int model;			/* index into the model table */
	double budget;			/* T, tokens */
	double acc;			/* acc_k(T) */
	double eps;			/* J per token */
	double e_fixed;			/* eps (L_in) + e0, J */
	double ln_mu, ln_sigma;		/* log-scale parameters of uncapped T_out */
	double mean_tokens;		/* E[min(T_out, T)] */
	double m;			/* E[e], J */
	double s;			/* E[e^2], J^2 */
	double v;			/* Var(e) = s - m^2, computed without cancellation */
};

double scaling_intercept(const struct scaling_params *sp, double params);
double scaling_accuracy(const struct scaling_params *sp, double params, double budget);
double scaling_joules_per_token(const struct scaling_params *sp, const struct model_spec *m);

/* E[min(X, cap)] and E[min(X, cap)^2] for X = exp(mu + sigma Z), Z ~ N(0,1),
 * via the normal CDF; cap = INFINITY gives the plain lognormal moments. */
void capped_lognormal_moments(double mu, double sigma, double cap, double *m1, double *m2);

/* Fill *out for model `model` (spec m) with budget `budget`. */
void scaling_option(const struct scaling_params *sp, const struct model_spec *m, int model,
		    double budget, struct task_option *out);

/* Energy of one task of option o for a standard normal draw z. */
static inline double option_energy(const struct task_option *o, double z)
{
	double x = o->ln_mu + o->ln_sigma * z;
	double t = x >= 745.0 ? o->budget : exp(x);

	return o->e_fixed + o->eps * (t < o->budget ? t : o->budget);
}

/* Tasks per slot: E[n] and Var(n) (Poisson: equal). */
struct arrival_moments {
	double mean;
	double var;
};

/* How a mix is realised task by task (docs/theory.md §5). REALISE_SWRR assigns
 * options deterministically so each slot's counts track the weights and the
 * between-option variance drops out; REALISE_RANDOM draws each task's option
 * independently, as the law of total variance of docs/theory.md §2 assumes. */
enum realiser { REALISE_SWRR = 0, REALISE_RANDOM = 1 };

/* docs/theory.md §2 for a mix p (dense, one weight per option, summing to 1). All
 * variances are of slot demand D, J^2. time + models + exec_choice +
 * exec_noise == total. Under REALISE_SWRR the models and exec_choice parts
 * are zero and `removed` says how much random routing would have added. */
struct var_decomp {
	double mean_task;		/* E[e] */
	double mu;			/* E[D] = E[n] E[e] */
	double total;			/* Var(D) */
	double time;			/* Var(n) E[e]^2 */
	double models;			/* E[n] Var_k(E[e|k]) */
	double exec_choice;		/* E[n] E_k[Var_T(E[e|k,T])] */
	double exec_noise;		/* E[n] E[Var(e|o)], reasoning-length noise */
	double removed;			/* between-option variance a deterministic mix avoids */
	double accuracy;		/* sum p_o acc_o */
};
void scaling_decompose(const struct task_option *opts, int n, const double *p,
		       struct arrival_moments arr, enum realiser how, struct var_decomp *out);

#endif

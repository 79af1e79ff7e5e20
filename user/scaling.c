/* docs/theory.md §1 (per-task cost of an execution option) and §2 (slot variance). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "scaling.h"
#include "theory.h"

double scaling_intercept(const struct scaling_params *sp, double params)
{
	/* Compute-optimal training makes C_train = 120 N^2, so an intercept
	 * linear in ln N is linear in ln C_train too (docs/theory.md §1). */
	return sp->a0 + sp->a1 * log(params);
}

double scaling_accuracy(const struct scaling_params *sp, double params, double budget)
{
	/* docs/theory.md §1: acc_k(T) = min(a_max, alpha_k + beta ln T); an accuracy
	 * is also never below zero. */
	double a = scaling_intercept(sp, params) + sp->beta * log(budget);

	if (a > sp->a_max)
		a = sp->a_max;
	return a > 0.0 ? a : 0.0;
}

double scaling_joules_per_token(const struct scaling_params *sp, const struct model_spec *m)
{
	if (m->joules_per_token > 0.0)
		return m->joules_per_token;
	/* about 2 N FLOPs per token at eta FLOP/J (docs/theory.md §1) */
	return 2.0 * m->params / sp->eta;
}

void capped_lognormal_moments(double mu, double sigma, double cap, double *m1, double *m2)
{
	if (!(sigma > 0.0)) {
		double x = exp(mu);
		if (x > cap)
			x = cap;
		*m1 = x;
		*m2 = x * x;
		return;
	}
	if (isinf(cap)) {
		*m1 = exp(mu + 0.5 * sigma * sigma);
		*m2 = exp(2.0 * mu + 2.0 * sigma * sigma);
		return;
	}
	/* E[min(X,c)^k] = E[X^k; X < c] + c^k P(X >= c), and for a lognormal
	 * E[X^k; X < c] = exp(k mu + k^2 sigma^2 / 2) Phi((ln c - mu - k sigma^2)/sigma). */
	double z = (log(cap) - mu) / sigma;
	double tail = norm_cdf(-z);

	*m1 = exp(mu + 0.5 * sigma * sigma) * norm_cdf(z - sigma) + cap * tail;
	*m2 = exp(2.0 * mu + 2.0 * sigma * sigma) * norm_cdf(z - 2.0 * sigma) + cap * cap * tail;
}

void scaling_option(const struct scaling_params *sp, const struct model_spec *m, int model,
		    double budget, struct task_option *o)
{
	double sigma = m->reasoning_sigma >= 0.0 ? m->reasoning_sigma : sp->reasoning_sigma;
	double y1, y2;

	memset(o, 0, sizeof(*o));
	o->model = model;
	o->budget = budget;
	o->acc = scaling_accuracy(sp, m->params, budget);
	o->eps = scaling_joules_per_token(sp, m);
	o->e_fixed = o->eps * sp->input_tokens + (m->joules_per_task > 0.0 ? m->joules_per_task : 0.0);
	o->ln_mu = log(sp->reasoning_median * budget);
	o->ln_sigma = sigma;
	capped_lognormal_moments(o->ln_mu, sigma, budget, &y1, &y2);
	o->mean_tokens = y1;
	/* e = e_fixed + eps Y: m = e_fixed + eps E[Y], Var(e) = eps^2 Var(Y) */
	double var_y = y2 - y1 * y1;
	if (var_y < 0.0)	/* rounding when sigma is tiny */
		var_y = 0.0;
	o->m = o->e_fixed + o->eps * y1;
	o->v = o->eps * o->eps * var_y;
	o->s = o->m * o->m + o->v;
}

void scaling_decompose(const struct task_option *opts, int n, const double *p,
		       struct arrival_moments arr, enum realiser how, struct var_decomp *out)
{
	double mean = 0.0, noise = 0.0, acc = 0.0;
	int max_model = -1;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < n; i++) {
		if (!(p[i] > 0.0))
			continue;
		mean += p[i] * opts[i].m;
		noise += p[i] * opts[i].v;
		acc += p[i] * opts[i].acc;
		if (opts[i].model > max_model)
			max_model = opts[i].model;
	}
	/* Law of total variance over (model, budget), docs/theory.md §2: between models,
	 * between budgets within a model, and within an option. Two passes per
	 * model keep the differences small before squaring. */
	double between_models = 0.0, within_models = 0.0;
	for (int k = 0; k <= max_model; k++) {
		double pk = 0.0, mk = 0.0;
		for (int i = 0; i < n; i++)
			if (opts[i].model == k && p[i] > 0.0) {
				pk += p[i];
				mk += p[i] * opts[i].m;
			}
		if (!(pk > 0.0))
			continue;
		mk /= pk;
		between_models += pk * (mk - mean) * (mk - mean);
		for (int i = 0; i < n; i++)
			if (opts[i].model == k && p[i] > 0.0)
				within_models += p[i] * (opts[i].m - mk) * (opts[i].m - mk);
	}
	out->mean_task = mean;
	out->mu = arr.mean * mean;
	out->accuracy = acc;
	out->time = arr.var * mean * mean;
	out->exec_noise = arr.mean * noise;
	if (how == REALISE_RANDOM) {
		out->models = arr.mean * between_models;
		out->exec_choice = arr.mean * within_models;
	} else {
		out->removed = arr.mean * (between_models + within_models);
	}
	out->total = out->time + out->models + out->exec_choice + out->exec_noise;
}

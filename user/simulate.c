/* The slot simulator (THEORY §1-§5). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rng.h"
#include "simulate.h"
#include "supply.h"
#include "theory.h"

enum { STREAM_ARRIVALS = 1, STREAM_ENERGY = 2, STREAM_ROUTING = 3 };

/* Dynamic policy with storage: spend (or rebuild) the store's distance from
 * its target over this many slots. */
#define STORAGE_RELAX_SLOTS 4.0

/* Most tasks one slot may draw (over-dispersed arrivals have a long tail). */
#define MAX_SLOT_DRAW 1e9

double sim_slot_rate(const struct sim_config *cfg, long t)
{
	if (cfg->arrivals.kind == ARRIVALS_TRACE)
		return supply_trace_joules(cfg->arrivals.trace, t * cfg->slot_seconds,
					   (t + 1) * cfg->slot_seconds);
	return cfg->arrivals.per_slot;
}

static double supply_scale(const struct sim_config *cfg)
{
	const struct supply_trace *tr = cfg->supply.trace;

	if (!tr || !(cfg->supply.per_slot > 0.0))
		return 1.0;
	double mean = supply_trace_mean_watts(tr) * cfg->slot_seconds;
	return mean > 0.0 ? cfg->supply.per_slot / mean : 0.0;
}

static double slot_supply_scaled(const struct sim_config *cfg, long t, double scale)
{
	if (!cfg->supply.trace)
		return cfg->supply.per_slot > 0.0 ? cfg->supply.per_slot : 0.0;
	return scale * supply_trace_joules(cfg->supply.trace, t * cfg->slot_seconds,
					   (t + 1) * cfg->slot_seconds);
}

double sim_slot_supply(const struct sim_config *cfg, long t)
{
	return slot_supply_scaled(cfg, t, supply_scale(cfg));
}

static double slot_var_n(const struct sim_config *cfg, double rate)
{
	if (cfg->arrivals.kind == ARRIVALS_OVERDISPERSED && cfg->arrivals.var_ratio > 1.0)
		return cfg->arrivals.var_ratio * rate;
	return rate;
}

struct arrival_moments sim_arrival_moments(const struct sim_config *cfg)
{
	struct arrival_moments am;

	if (cfg->arrivals.kind != ARRIVALS_TRACE) {
		am.mean = cfg->arrivals.per_slot;
		am.var = slot_var_n(cfg, am.mean);
		return am;
	}
	/* Var(n) = E[Var(n|rate)] + Var(rate) over the run's slots */
	double s1 = 0.0, s2 = 0.0;
	long n = cfg->slots > 0 ? cfg->slots : 1;
	for (long t = 0; t < n; t++) {
		double r = sim_slot_rate(cfg, t);
		s1 += r;
		s2 += r * r;
	}
	am.mean = s1 / n;
	double var_rate = s2 / n - am.mean * am.mean;
	am.var = am.mean + (var_rate > 0.0 ? var_rate : 0.0);
	return am;
}

const char *sim_check(const struct sim_config *cfg)
{
	if (!cfg->opts || cfg->n_opts < 1)
		return "no execution options";
	if (cfg->slots < 1)
		return "slots must be at least 1";
	if (!(cfg->slot_seconds > 0.0))
		return "slot length must be positive";
	if (cfg->arrivals.kind == ARRIVALS_TRACE ? !cfg->arrivals.trace : !(cfg->arrivals.per_slot >= 0.0))
		return "arrivals need a rate or a trace";
	if (cfg->arrivals.kind != ARRIVALS_TRACE && !(cfg->arrivals.per_slot <= SIM_MAX_TASKS_PER_SLOT))
		return "tasks per slot must be at most 1e6 (use a longer slot for a bigger workload)";
	if (cfg->arrivals.kind == ARRIVALS_OVERDISPERSED &&
	    !(cfg->arrivals.var_ratio <= SIM_MAX_VARIANCE_RATIO))
		return "the arrivals' variance ratio must be at most 1e6";
	if (cfg->arrivals.kind == ARRIVALS_TRACE)
		for (long t = 0; t < cfg->slots; t++)
			if (!(sim_slot_rate(cfg, t) <= SIM_MAX_TASKS_PER_SLOT))
				return "the arrival trace gives more than 1e6 tasks in a slot "
				       "(use a shorter slot or a lower rate)";
	if (cfg->supply.capacity < 0.0 || isnan(cfg->supply.capacity))
		return "storage capacity must not be negative";
	if (cfg->policy == SIM_DYNAMIC) {
		if (!cfg->dyn || cfg->dyn->ladder.n < 1)
			return "dynamic policy without a ladder";
	} else {
		double sum = 0.0;
		if (cfg->mix.n < 1 || cfg->mix.n > MIX_MAX)
			return "empty mix";
		for (int i = 0; i < cfg->mix.n; i++) {
			if (cfg->mix.opt[i] < 0 || cfg->mix.opt[i] >= cfg->n_opts || !(cfg->mix.w[i] >= 0.0))
				return "mix names an unknown option";
			sum += cfg->mix.w[i];
		}
		if (!(fabs(sum - 1.0) < 1e-6))
			return "mix weights must sum to 1";
	}
	return NULL;
}

/* Batch-means standard error of the slot average: contiguous batches, so
 * correlation between neighbouring slots (storage) is accounted for. */
struct batches {
	long size, count;
	double sum, mean_sum, mean_sq;	/* current batch; sums of batch means */
	long in_batch, done;
};

static void batch_add(struct batches *b, double x)
{
	b->sum += x;
	if (++b->in_batch == b->size) {
		double m = b->sum / b->size;
		b->mean_sum += m;
		b->mean_sq += m * m;
		b->done++;
		b->sum = 0.0;
		b->in_batch = 0;
	}
}

static double batch_se(const struct batches *b)
{
	if (b->done < 2)
		return NAN;
	double m = b->mean_sum / b->done;
	double var = (b->mean_sq - b->done * m * m) / (b->done - 1);
	return var > 0.0 ? sqrt(var / b->done) : 0.0;
}

int sim_run(const struct sim_config *cfg, struct sim_summary *out,
	    struct sim_slot *series, double *option_tasks)
{
	memset(out, 0, sizeof(*out));
	if (sim_check(cfg))
		return -1;

	const struct task_option *opts = cfg->opts;
	struct rng arr_rng, en_rng, route_rng;
	rng_seed(&arr_rng, cfg->seed, STREAM_ARRIVALS);
	rng_seed(&en_rng, cfg->seed, STREAM_ENERGY);
	rng_seed(&route_rng, cfg->seed, STREAM_ROUTING);

	/* static mix: realiser and its per-task moments for the closed forms */
	struct swrr rr;
	double cumw[MIX_MAX] = { 0 };
	double x_bar = 0.0, y_term = 0.0, acc_bar = 0.0;
	if (cfg->policy == SIM_STATIC) {
		if (swrr_init_mix(&rr, &cfg->mix))
			return -1;
		double c = 0.0, s = 0.0;
		for (int i = 0; i < cfg->mix.n; i++) {
			const struct task_option *o = &opts[cfg->mix.opt[i]];
			c += cfg->mix.w[i];
			cumw[i] = c;
			x_bar += cfg->mix.w[i] * o->m;
			s += cfg->mix.w[i] * o->s;
			y_term += cfg->mix.w[i] * o->v;
			acc_bar += cfg->mix.w[i] * o->acc;
		}
		/* per-task variance left in D beyond the arrival count (THEORY §2) */
		if (cfg->how == REALISE_RANDOM)
			y_term = s - x_bar * x_bar;
	}
	const struct dyn_policy *dp = cfg->dyn;
	double credit = 0.0, dither = 0.0;
	double *times = NULL;
	long times_cap = 0;

	double cap = cfg->supply.capacity;
	double level = cfg->supply.initial;
	if (level < 0.0)
		level = isinf(cap) ? 0.0 : cap / 2.0;
	if (level > cap)
		level = cap;
	double target = cfg->supply.target > 0.0 ? fmin(cfg->supply.target, cap) :
			isinf(cap) ? 0.0 : cap / 2.0;
	int varying = cfg->arrivals.kind == ARRIVALS_TRACE || cfg->supply.trace;
	double scale = supply_scale(cfg);

	long nb = (long)sqrt((double)cfg->slots);
	if (nb < 10)
		nb = 10;
	struct batches b_aux = { .size = cfg->slots / nb > 0 ? cfg->slots / nb : 1 };
	struct batches b_waste = b_aux, b_cost = b_aux, b_mu = b_aux;

	double sum_d = 0.0, sum_d2 = 0.0, sum_d3 = 0.0, sum_aux = 0.0, sum_waste = 0.0, sum_s = 0.0;
	double sum_b = 0.0, tasks = 0.0, acc_sum = 0.0;
	double th_aux = 0.0, th_waste = 0.0, th_mu = 0.0, th_mu2 = 0.0, th_var = 0.0;
	double d_shift = NAN;	/* first slot's demand, to keep the variance sum well conditioned */

	for (long t = 0; t < cfg->slots; t++) {
		double rate = sim_slot_rate(cfg, t);
		double b = slot_supply_scaled(cfg, t, scale);
		uint64_t n;

		if (cfg->arrivals.kind == ARRIVALS_OVERDISPERSED)
			n = rng_overdispersed(&arr_rng, rate, cfg->arrivals.var_ratio);
		else
			n = rng_poisson(&arr_rng, rate);
		if ((double)n > MAX_SLOT_DRAW) {
			free(times);
			return SIM_TOO_MANY_TASKS;
		}

		double demand = 0.0, acc_slot = 0.0;
		if (cfg->policy == SIM_DYNAMIC && n > 0) {
			/* arrival times within the slot: order statistics of n
			 * uniforms from normalised exponential spacings */
			if ((long)n + 1 > times_cap) {
				long nc = 2 * ((long)n + 1);
				double *nt = realloc(times, sizeof(double) * nc);
				if (!nt) {
					free(times);
					return -1;
				}
				times = nt;
				times_cap = nc;
			}
			double acc_t = 0.0;
			for (uint64_t i = 0; i <= n; i++) {
				acc_t += rng_exponential(&route_rng);
				times[i] = acc_t;
			}
			for (uint64_t i = 0; i < n; i++)
				times[i] /= acc_t;
		}
		double spendable = b;
		if (cfg->policy == SIM_DYNAMIC && cap > 0.0)
			spendable += (level - target) / STORAGE_RELAX_SLOTS;
		double committed = 0.0;

		for (uint64_t i = 0; i < n; i++) {
			int o;
			if (cfg->policy == SIM_DYNAMIC) {
				double left = rate * (1.0 - times[i]) + 1.0;
				/* With a store the slot need not be balanced on its
				 * own: every task gets the slot's share, and only the
				 * store's level moves it. Without one, what earlier
				 * tasks of the slot committed is what is left. */
				struct dyn_input in = {
					.supply_left = cap > 0.0 ? spendable / (rate > 1.0 ? rate : 1.0) * left
								 : spendable - committed,
					.tasks_left = left,
					.acc_credit = credit,
					.dither = dither,
				};
				struct dyn_choice ch;
				policy_dynamic(dp, &in, &ch);
				o = ch.opt;
				dither = ch.dither;
				committed += opts[o].m;
				credit += opts[o].acc - dp->acc_target;
			} else if (cfg->how == REALISE_RANDOM) {
				double u = rng_uniform(&route_rng);
				int k = 0;
				while (k + 1 < cfg->mix.n && u >= cumw[k])
					k++;
				o = cfg->mix.opt[k];
			} else {
				o = swrr_next(&rr);
			}
			demand += option_energy(&opts[o], rng_normal(&en_rng));
			acc_slot += opts[o].acc;
			if (option_tasks)
				option_tasks[o] += 1.0;
		}

		struct slot_outcome so;
		supply_step(demand, b, cap, &level, &so);

		if (isnan(d_shift))
			d_shift = demand;
		double dd = demand - d_shift;
		sum_d += demand;
		sum_d2 += dd * dd;
		sum_d3 += dd * dd * dd;
		sum_aux += so.aux;
		sum_waste += so.waste;
		sum_s += so.storage;
		sum_b += b;
		tasks += (double)n;
		acc_sum += acc_slot;
		batch_add(&b_aux, so.aux);
		batch_add(&b_waste, so.waste);
		batch_add(&b_cost, cfg->c_a * so.aux + cfg->c_w * so.waste);
		batch_add(&b_mu, demand);
		if (series) {
			series[t] = (struct sim_slot){
				.arrivals = (double)n, .demand = demand, .supply = b,
				.aux = so.aux, .waste = so.waste, .storage = so.storage,
				.accuracy = n ? acc_slot / (double)n : NAN,
			};
		}
		if (cfg->policy == SIM_STATIC) {
			/* closed form for this slot: Gaussian with the mix's moments */
			double mu_t = rate * x_bar;
			double var_t = rate * y_term + slot_var_n(cfg, rate) * x_bar * x_bar;
			th_mu += mu_t;
			th_mu2 += mu_t * mu_t;
			th_var += var_t;
			if (cap == 0.0) {
				double sd = sqrt(var_t > 0.0 ? var_t : 0.0);
				th_aux += theory_aux_gauss(mu_t, sd, b);
				th_waste += theory_waste_gauss(mu_t, sd, b);
			}
		}
		/* every slot: a slot of many tasks takes a while */
		if (cfg->progress)
			__atomic_store_n(cfg->progress, t + 1, __ATOMIC_RELAXED);
	}
	free(times);
	if (cfg->progress)
		__atomic_store_n(cfg->progress, cfg->slots, __ATOMIC_RELAXED);

	double N = (double)cfg->slots;
	out->slots = cfg->slots;
	out->tasks = tasks;
	out->supply = sum_b / N;
	out->mu = sum_d / N;
	double md = out->mu - d_shift;
	double var = (sum_d2 - N * md * md) / (N > 1 ? N - 1 : 1);
	out->sigma = var > 0.0 ? sqrt(var) : 0.0;
	/* third central moment from the shifted sums */
	double m2 = sum_d2 / N - md * md;
	double m3 = sum_d3 / N - 3.0 * md * sum_d2 / N + 2.0 * md * md * md;
	out->skew = m2 > 0.0 ? m3 / pow(m2, 1.5) : 0.0;
	out->aux = sum_aux / N;
	out->waste = sum_waste / N;
	out->cost = cfg->c_a * out->aux + cfg->c_w * out->waste;
	out->aux_se = batch_se(&b_aux);
	out->waste_se = batch_se(&b_waste);
	out->cost_se = batch_se(&b_cost);
	out->mu_se = batch_se(&b_mu);
	out->accuracy = tasks > 0 ? acc_sum / tasks : NAN;
	out->storage = sum_s / N;

	out->mu_theory = out->sigma_theory = out->aux_theory = NAN;
	out->waste_theory = out->cost_theory = out->accuracy_theory = NAN;
	if (cfg->policy == SIM_STATIC) {
		out->accuracy_theory = acc_bar;
		out->mu_theory = th_mu / N;
		double vm = th_mu2 / N - out->mu_theory * out->mu_theory;
		out->sigma_theory = sqrt(th_var / N + (vm > 0.0 ? vm : 0.0));
		double sd = sqrt(th_var / N);
		double delta = out->supply - out->mu_theory;
		if (cap == 0.0) {			/* THEORY §4.1, slot by slot */
			out->aux_theory = th_aux / N;
			out->waste_theory = th_waste / N;
		} else if (!varying && isfinite(cap)) {	/* THEORY §4.3 */
			out->aux_theory = theory_storage_aux(delta, sd, cap, 1);
			out->waste_theory = theory_storage_waste(delta, sd, cap, 1);
		} else if (!varying && fabs(delta) <= 1e-9 * (sd + fabs(out->mu_theory))
			   && cfg->supply.initial <= 0.0) {
			/* THEORY §4.4: unlimited storage from empty at delta = 0 */
			out->aux_theory = theory_unlimited_aux_total(sd, N, 1) / N;
			out->waste_theory = 0.0;
		}
		if (!isnan(out->aux_theory))
			out->cost_theory = cfg->c_a * out->aux_theory + cfg->c_w * out->waste_theory;
	}
	return 0;
}

/* The slot simulator (docs/theory.md §1-§5). */
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

/* One run's state between slots. */
struct run {
	const struct sim_config *cfg;
	struct rng arr_rng, en_rng, route_rng;
	/* static mix: realiser and its per-task moments for the closed forms */
	struct swrr rr;
	double cumw[MIX_MAX];
	double x_bar, y_term, acc_bar;
	/* dynamic policy */
	struct sim_dyn_state dyn;
	double *times;
	long times_cap;
	/* storage */
	double cap, level, target;
	int varying;
	double scale;
	/* sums */
	struct batches b_aux, b_waste, b_cost, b_mu;
	double sum_d, sum_d2, sum_d3, sum_aux, sum_waste, sum_s, sum_b, tasks, acc_sum;
	double th_aux, th_waste, th_mu, th_mu2, th_var;
	double d_shift;		/* first slot's demand, to keep the variance sum well conditioned */
};

/* Seeds, the static mix's moments, the store and the batches. -1 bad mix. */
static int run_init(struct run *r, const struct sim_config *cfg)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	rng_seed(&r->arr_rng, cfg->seed, STREAM_ARRIVALS);
	rng_seed(&r->en_rng, cfg->seed, STREAM_ENERGY);
	rng_seed(&r->route_rng, cfg->seed, STREAM_ROUTING);
	if (cfg->policy == SIM_STATIC) {
		if (swrr_init_mix(&r->rr, &cfg->mix))
			return -1;
		double c = 0.0, s = 0.0;
		for (int i = 0; i < cfg->mix.n; i++) {
			const struct task_option *o = &cfg->opts[cfg->mix.opt[i]];
			c += cfg->mix.w[i];
			r->cumw[i] = c;
			r->x_bar += cfg->mix.w[i] * o->m;
			s += cfg->mix.w[i] * o->s;
			r->y_term += cfg->mix.w[i] * o->v;
			r->acc_bar += cfg->mix.w[i] * o->acc;
		}
		/* per-task variance left in D beyond the arrival count (docs/theory.md §2) */
		if (cfg->how == REALISE_RANDOM)
			r->y_term = s - r->x_bar * r->x_bar;
	}
	r->cap = cfg->supply.capacity;
	r->level = cfg->supply.initial;
	if (r->level < 0.0)
		r->level = isinf(r->cap) ? 0.0 : r->cap / 2.0;
	if (r->level > r->cap)
		r->level = r->cap;
	r->target = cfg->supply.target > 0.0 ? fmin(cfg->supply.target, r->cap) :
		    isinf(r->cap) ? 0.0 : r->cap / 2.0;
	r->varying = cfg->arrivals.kind == ARRIVALS_TRACE || cfg->supply.trace;
	r->scale = supply_scale(cfg);

	long nb = (long)sqrt((double)cfg->slots);
	if (nb < 10)
		nb = 10;
	r->b_aux = (struct batches){ .size = cfg->slots / nb > 0 ? cfg->slots / nb : 1 };
	r->b_waste = r->b_cost = r->b_mu = r->b_aux;
	r->d_shift = NAN;
	return 0;
}

/* Arrival times within the slot for the dynamic policy: order statistics
 * of n uniforms from normalised exponential spacings. -1 no memory. */
static int arrival_times(struct run *r, uint64_t n)
{
	if ((long)n + 1 > r->times_cap) {
		long nc = 2 * ((long)n + 1);
		double *nt = realloc(r->times, sizeof(double) * nc);
		if (!nt)
			return -1;
		r->times = nt;
		r->times_cap = nc;
	}
	double acc_t = 0.0;
	for (uint64_t i = 0; i <= n; i++) {
		acc_t += rng_exponential(&r->route_rng);
		r->times[i] = acc_t;
	}
	for (uint64_t i = 0; i < n; i++)
		r->times[i] /= acc_t;
	return 0;
}

int sim_dynamic_route(const struct dyn_policy *dp, const struct task_option *opts,
		      struct sim_dyn_state *st, double t, double rate, double spendable,
		      double committed, int balanced)
{
	double left = rate * (1.0 - t) + 1.0;
	/* With a store the slot need not be balanced on its own: every task
	 * gets the slot's share, and only the store's level moves it. Without
	 * one, what earlier tasks of the slot committed is what is left. */
	struct dyn_input in = {
		.supply_left = balanced ? spendable - committed
					: spendable / (rate > 1.0 ? rate : 1.0) * left,
		.tasks_left = left,
		.acc_credit = st->credit,
		.dither = st->dither,
	};
	struct dyn_choice ch;
	policy_dynamic(dp, &in, &ch);
	st->dither = ch.dither;
	st->credit += opts[ch.opt].acc - dp->acc_target;
	return ch.opt;
}

/* The option of task i of the slot. */
static int route_task(struct run *r, uint64_t i, double rate, double spendable, double committed)
{
	const struct sim_config *cfg = r->cfg;

	if (cfg->policy == SIM_DYNAMIC)
		return sim_dynamic_route(cfg->dyn, cfg->opts, &r->dyn, r->times[i], rate, spendable,
					 committed, !(r->cap > 0.0));
	if (cfg->how == REALISE_RANDOM) {
		double u = rng_uniform(&r->route_rng);
		int k = 0;
		while (k + 1 < cfg->mix.n && u >= r->cumw[k])
			k++;
		return cfg->mix.opt[k];
	}
	return swrr_next(&r->rr);
}

/* The slot's n tasks: routed, their energies drawn. Returns the demand. */
static double serve_slot(struct run *r, uint64_t n, double rate, double b, double *acc_slot,
			 double *option_tasks)
{
	const struct sim_config *cfg = r->cfg;
	double spendable = b, committed = 0.0, demand = 0.0;

	if (cfg->policy == SIM_DYNAMIC && r->cap > 0.0)
		spendable += (r->level - r->target) / STORAGE_RELAX_SLOTS;
	for (uint64_t i = 0; i < n; i++) {
		int o = route_task(r, i, rate, spendable, committed);
		if (cfg->policy == SIM_DYNAMIC)
			committed += cfg->opts[o].m;
		demand += option_energy(&cfg->opts[o], rng_normal(&r->en_rng));
		*acc_slot += cfg->opts[o].acc;
		if (option_tasks)
			option_tasks[o] += 1.0;
	}
	return demand;
}

/* Enter slot t's outcome into the sums, the batches, the series and the
 * static mix's closed form. */
static void account_slot(struct run *r, long t, uint64_t n, double rate, double b, double demand,
			 double acc_slot, const struct slot_outcome *so, struct sim_slot *series)
{
	const struct sim_config *cfg = r->cfg;

	if (isnan(r->d_shift))
		r->d_shift = demand;
	double dd = demand - r->d_shift;
	r->sum_d += demand;
	r->sum_d2 += dd * dd;
	r->sum_d3 += dd * dd * dd;
	r->sum_aux += so->aux;
	r->sum_waste += so->waste;
	r->sum_s += so->storage;
	r->sum_b += b;
	r->tasks += (double)n;
	r->acc_sum += acc_slot;
	batch_add(&r->b_aux, so->aux);
	batch_add(&r->b_waste, so->waste);
	batch_add(&r->b_cost, cfg->c_a * so->aux + cfg->c_w * so->waste);
	batch_add(&r->b_mu, demand);
	if (series)
		series[t] = (struct sim_slot){
			.arrivals = (double)n, .demand = demand, .supply = b,
			.aux = so->aux, .waste = so->waste, .storage = so->storage,
			.accuracy = n ? acc_slot / (double)n : NAN,
		};
	if (cfg->policy != SIM_STATIC)
		return;
	/* closed form for this slot: Gaussian with the mix's moments */
	double mu_t = rate * r->x_bar;
	double var_t = rate * r->y_term + slot_var_n(cfg, rate) * r->x_bar * r->x_bar;
	r->th_mu += mu_t;
	r->th_mu2 += mu_t * mu_t;
	r->th_var += var_t;
	if (r->cap == 0.0) {
		double sd = sqrt(var_t > 0.0 ? var_t : 0.0);
		r->th_aux += theory_aux_gauss(mu_t, sd, b);
		r->th_waste += theory_waste_gauss(mu_t, sd, b);
	}
}

/* The closed forms of docs/theory.md §4 that apply to a static mix's run. */
static void run_theory(const struct run *r, struct sim_summary *out)
{
	const struct sim_config *cfg = r->cfg;
	double N = (double)cfg->slots;

	out->mu_theory = out->sigma_theory = out->aux_theory = NAN;
	out->waste_theory = out->cost_theory = out->accuracy_theory = NAN;
	if (cfg->policy != SIM_STATIC)
		return;
	out->accuracy_theory = r->acc_bar;
	out->mu_theory = r->th_mu / N;
	double vm = r->th_mu2 / N - out->mu_theory * out->mu_theory;
	out->sigma_theory = sqrt(r->th_var / N + (vm > 0.0 ? vm : 0.0));
	double sd = sqrt(r->th_var / N);
	double delta = out->supply - out->mu_theory;
	if (r->cap == 0.0) {			/* docs/theory.md §4.1, slot by slot */
		out->aux_theory = r->th_aux / N;
		out->waste_theory = r->th_waste / N;
	} else if (!r->varying && isfinite(r->cap)) {	/* docs/theory.md §4.3 */
		out->aux_theory = theory_storage_aux(delta, sd, r->cap, 1);
		out->waste_theory = theory_storage_waste(delta, sd, r->cap, 1);
	} else if (!r->varying && fabs(delta) <= 1e-9 * (sd + fabs(out->mu_theory))
		   && cfg->supply.initial <= 0.0) {
		/* docs/theory.md §4.4: unlimited storage from empty at delta = 0 */
		out->aux_theory = theory_unlimited_aux_total(sd, N, 1) / N;
		out->waste_theory = 0.0;
	}
	if (!isnan(out->aux_theory))
		out->cost_theory = cfg->c_a * out->aux_theory + cfg->c_w * out->waste_theory;
}

static void run_summary(const struct run *r, struct sim_summary *out)
{
	const struct sim_config *cfg = r->cfg;
	double N = (double)cfg->slots;

	out->slots = cfg->slots;
	out->tasks = r->tasks;
	out->supply = r->sum_b / N;
	out->mu = r->sum_d / N;
	double md = out->mu - r->d_shift;
	double var = (r->sum_d2 - N * md * md) / (N > 1 ? N - 1 : 1);
	out->sigma = var > 0.0 ? sqrt(var) : 0.0;
	/* third central moment from the shifted sums */
	double m2 = r->sum_d2 / N - md * md;
	double m3 = r->sum_d3 / N - 3.0 * md * r->sum_d2 / N + 2.0 * md * md * md;
	out->skew = m2 > 0.0 ? m3 / pow(m2, 1.5) : 0.0;
	out->aux = r->sum_aux / N;
	out->waste = r->sum_waste / N;
	out->cost = cfg->c_a * out->aux + cfg->c_w * out->waste;
	out->aux_se = batch_se(&r->b_aux);
	out->waste_se = batch_se(&r->b_waste);
	out->cost_se = batch_se(&r->b_cost);
	out->mu_se = batch_se(&r->b_mu);
	out->accuracy = r->tasks > 0 ? r->acc_sum / r->tasks : NAN;
	out->storage = r->sum_s / N;
	run_theory(r, out);
}

int sim_run(const struct sim_config *cfg, struct sim_summary *out,
	    struct sim_slot *series, double *option_tasks)
{
	struct run r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (sim_check(cfg) || run_init(&r, cfg))
		return -1;
	for (long t = 0; t < cfg->slots; t++) {
		double rate = sim_slot_rate(cfg, t);
		double b = slot_supply_scaled(cfg, t, r.scale);
		uint64_t n;

		if (cfg->arrivals.kind == ARRIVALS_OVERDISPERSED)
			n = rng_overdispersed(&r.arr_rng, rate, cfg->arrivals.var_ratio);
		else
			n = rng_poisson(&r.arr_rng, rate);
		if ((double)n > MAX_SLOT_DRAW) {
			rc = SIM_TOO_MANY_TASKS;
			break;
		}
		if (cfg->policy == SIM_DYNAMIC && n > 0 && arrival_times(&r, n)) {
			rc = -1;
			break;
		}
		double acc_slot = 0.0;
		double demand = serve_slot(&r, n, rate, b, &acc_slot, option_tasks);
		struct slot_outcome so;
		supply_step(demand, b, r.cap, &r.level, &so);
		account_slot(&r, t, n, rate, b, demand, acc_slot, &so, series);
		/* every slot: a slot of many tasks takes a while */
		if (cfg->progress)
			__atomic_store_n(cfg->progress, t + 1, __ATOMIC_RELAXED);
	}
	free(r.times);
	if (cfg->progress)
		__atomic_store_n(cfg->progress, cfg->slots, __ATOMIC_RELAXED);
	if (rc)
		return rc;
	run_summary(&r, out);
	return 0;
}

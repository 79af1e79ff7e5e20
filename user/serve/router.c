/* See router.h. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "errbuf.h"
#include "ledger.h"
#include "policy.h"
#include "router.h"
#include "simulate.h"

#define ROUTER_TRACK 4096		/* requests whose option is remembered */
#define RATE_EWMA 0.1			/* weight of the last slot's arrivals */
#define STORAGE_RELAX_SLOTS 10.0	/* the store moves back to half full over this */
#define MIX_MOVED 1e-6			/* a weight moved this much: a new SWRR */

/* An option's measured J/request (ledger_moments: Welford) and the figures
 * kept out of it. */
struct option_estimate {
	struct ledger_moments j;
	uint64_t rejected;
};

/* The dynamic policy, built off the hot path and swapped in. */
struct dyn_build {
	struct dyn_policy dp;
	struct dyn_table table;
	bool have_table;
};

struct router {
	const struct scenario *sc;
	enum router_policy policy;
	int n;
	pthread_mutex_t lock;		/* guards everything below */
	struct task_option opts[SCEN_MAX_OPTIONS];	/* what the policies use now */
	double prior_m[SCEN_MAX_OPTIONS], prior_v[SCEN_MAX_OPTIONS];
	struct option_estimate est[SCEN_MAX_OPTIONS];
	uint64_t routed[SCEN_MAX_OPTIONS];
	unsigned outstanding[SCEN_MAX_MODELS];
	bool feasible;
	struct mix mix;
	struct swrr rr;
	int n_ok, ok[SCEN_MAX_OPTIONS], rr_next;	/* options meeting the target alone */
	int cheapest[SCEN_MAX_MODELS];		/* per model, its cheapest of those; -1 none */
	bool dynamic;
	struct dyn_build dyn[2];
	int cur;
	struct sim_dyn_state dstate;
	double slot_seconds, slot_start;
	bool aligned;			/* slot_start on the ledger's slots */
	double committed, arrivals, rate;	/* this slot; tasks per slot (EWMA) */
	double supply;				/* J per slot the dynamic policy may spend */
	double storage, capacity;
	double acc_sum;
	uint64_t total, refused;
	struct { uint64_t id; int opt; } track[ROUTER_TRACK];
};

static const char *const policy_names[] = { "rr", "least", "energy", "variance" };

int router_policy_parse(const char *s, enum router_policy *out)
{
	for (int i = 0; i < 4; i++)
		if (s && !strcmp(s, policy_names[i])) {
			*out = (enum router_policy)i;
			return 0;
		}
	return -1;
}

const char *router_policy_name(enum router_policy p)
{
	return (unsigned)p < 4 ? policy_names[p] : "?";
}

/* ---- estimates and the optimiser (off the hot path) ---- */

/* Each option's mean and variance of J/request from priors and measurements. */
static void estimate(const struct router *r, const struct option_estimate *est, struct task_option *opts)
{
	double meas = 0.0, prior = 0.0;

	for (int i = 0; i < r->n; i++)
		if (est[i].j.n > 0) {
			meas += est[i].j.n * est[i].j.mean;
			prior += est[i].j.n * r->prior_m[i];
		}
	double f = meas > 0.0 && prior > 0.0 ? meas / prior : 1.0;	/* machine J per file J */
	for (int i = 0; i < r->n; i++) {
		double k = ROUTER_PRIOR_WEIGHT, n = est[i].j.n;
		double pm = r->prior_m[i] * f, pv = r->prior_v[i] * f * f;
		double var_obs = n > 1 ? est[i].j.m2 / (n - 1) : pv;
		double m = (k * pm + n * est[i].j.mean) / (k + n);
		double v = (k * pv + n * var_obs) / (k + n);

		opts[i] = r->sc->opts[i];
		opts[i].m = m;
		opts[i].v = v;
		opts[i].s = v + m * m;
	}
}

static void problem(const struct router *r, const struct task_option *opts, double rate,
		    struct policy_problem *pb)
{
	const struct scenario *sc = r->sc;
	double ratio = sc->arrivals.var_ratio >= 1.0 ? sc->arrivals.var_ratio : 1.0;

	*pb = (struct policy_problem){
		.opts = opts, .n_opts = r->n, .acc_target = sc->acc_target, .mu_max = INFINITY,
		.arr = { .mean = rate, .var = rate * ratio }, .how = REALISE_SWRR,
		.c_e = sc->c_e, .c_a = sc->c_a, .c_w = sc->c_w,
		.storage = isinf(sc->storage) ? 0.0 : sc->storage,
	};
}

static bool same_mix(const struct mix *a, const struct mix *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (a->opt[i] != b->opt[i] || fabs(a->w[i] - b->w[i]) > MIX_MOVED)
			return false;
	return true;
}

/* Put the router's slot boundaries on the ledger's (once; roll_slot keeps
 * the phase after): the slot that holds now starts at ledger_start + k slots.
 * What was committed since the ledger's slot began stays committed. Lock
 * held. */
static void align_slots(struct router *r, double ledger_start_s, double now_s)
{
	double k = floor((now_s - ledger_start_s) / r->slot_seconds);

	if (r->aligned)
		return;
	r->slot_start = ledger_start_s + k * r->slot_seconds;
	r->aligned = true;
}

void router_slot(struct router *r, const struct router_ledger *in)
{
	struct option_estimate est[SCEN_MAX_OPTIONS];
	struct task_option *opts = malloc(sizeof(struct task_option) * SCEN_MAX_OPTIONS);
	struct policy_problem pb;
	struct mix mix = { 0 };
	double rate, supply;
	int spare;

	if (!opts)
		return;	/* the last estimates stay */
	pthread_mutex_lock(&r->lock);
	memcpy(est, r->est, sizeof(est[0]) * (size_t)r->n);
	rate = r->rate;
	spare = 1 - r->cur;
	if (in) {
		r->storage = in->storage;
		r->capacity = in->storage_capacity;
		if (isfinite(in->slot_start_s) && in->now_s >= in->slot_start_s)
			align_slots(r, in->slot_start_s, in->now_s);
	}
	pthread_mutex_unlock(&r->lock);

	estimate(r, est, opts);
	problem(r, opts, rate > 0.0 ? rate : 1.0, &pb);
	bool feasible = (r->policy == ROUTER_VARIANCE ? policy_variance_aware(&pb, &mix)
						      : policy_mean_only(&pb, &mix)) == 0;
	/* the dynamic policy spends the ledger's supply, else the critical
	 * supply b*: the mean-only mix's demand at this rate */
	struct mix ref;
	double mu = 0.0;
	if (policy_mean_only(&pb, &ref) == 0)
		policy_mix_moments(&pb, &ref, &mu, NULL, NULL);
	supply = in && in->supply_per_slot > 0.0 ? in->supply_per_slot : mu;

	struct dyn_build *db = &r->dyn[spare];
	bool dynamic = false;
	if (r->policy == ROUTER_VARIANCE && feasible && supply > 0.0) {
		double noise = 0.0;

		for (int i = 0; i < ref.n; i++)
			noise += ref.w[i] * opts[ref.opt[i]].v;
		db->dp = (struct dyn_policy){
			.acc_target = r->sc->acc_target,
			.horizon_tasks = r->sc->dyn_horizon_slots * (rate > 1.0 ? rate : 1.0),
			.max_dip = r->sc->dyn_max_dip,
		};
		policy_ladder(opts, r->n, &db->dp.ladder);
		db->have_table = r->capacity == 0.0 &&
				 policy_dynamic_table(&db->table, &db->dp.ladder, r->sc->acc_target, rate,
						      supply, rate * noise, r->sc->c_a, r->sc->c_w) == 0;
		db->dp.table = db->have_table ? &db->table : NULL;
		dynamic = db->dp.ladder.n > 0;
	}

	pthread_mutex_lock(&r->lock);
	memcpy(r->opts, opts, sizeof(opts[0]) * (size_t)r->n);
	r->feasible = feasible;
	if (feasible && !same_mix(&mix, &r->mix)) {
		r->mix = mix;
		swrr_init_mix(&r->rr, &r->mix);
	}
	r->n_ok = 0;
	for (int k = 0; k < SCEN_MAX_MODELS; k++)
		r->cheapest[k] = -1;
	for (int i = 0; i < r->n; i++)
		if (opts[i].acc >= r->sc->acc_target) {
			int k = opts[i].model;

			r->ok[r->n_ok++] = i;
			if (r->cheapest[k] < 0 || opts[i].m < opts[r->cheapest[k]].m)
				r->cheapest[k] = i;
		}
	if (dynamic) {
		r->cur = spare;
		/* decisions go on with the new table; the old one is no one's now */
	}
	r->dynamic = dynamic;
	r->supply = supply;
	pthread_mutex_unlock(&r->lock);
	if (dynamic && r->dyn[1 - spare].have_table) {
		policy_dynamic_table_free(&r->dyn[1 - spare].table);
		r->dyn[1 - spare].have_table = false;
	} else if (!dynamic && db->have_table) {
		policy_dynamic_table_free(&db->table);
		db->have_table = false;
	}
	free(opts);
}

struct router *router_new(const struct scenario *sc, enum router_policy policy, double now_s,
			  char *err, size_t errlen)
{
	struct router *r;

	if (sc->n_opts <= 0) {
		errbuf_set(err, errlen, "%s: no (model, budget) options to steer to: add [scaling], "
			   "[workload] budgets and accuracy_target, and [cost] (docs/sim.md)", sc->path);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		errbuf_set(err, errlen, "router: out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->sc = sc;
	r->policy = policy;
	r->n = sc->n_opts;
	for (int i = 0; i < r->n; i++) {
		r->prior_m[i] = sc->opts[i].m;
		r->prior_v[i] = sc->opts[i].v;
	}
	for (int i = 0; i < ROUTER_TRACK; i++)
		r->track[i].opt = -1;
	r->slot_seconds = sc->slot_seconds > 0.0 ? sc->slot_seconds : 1.0;
	r->slot_start = now_s;
	r->rate = sc->arrivals.per_slot > 0.0 ? sc->arrivals.per_slot : 1.0;
	router_slot(r, NULL);
	return r;
}

void router_free(struct router *r)
{
	if (!r)
		return;
	for (int i = 0; i < 2; i++)
		if (r->dyn[i].have_table)
			policy_dynamic_table_free(&r->dyn[i].table);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- the hot path ---- */

/* A new slot: last slot's arrivals into the rate, nothing committed yet. */
static void roll_slot(struct router *r, double now_s)
{
	double gone = floor((now_s - r->slot_start) / r->slot_seconds);

	if (gone < 1.0)
		return;
	r->rate = (1.0 - RATE_EWMA) * r->rate + RATE_EWMA * r->arrivals;
	if (gone > 1.0)	/* empty slots in between */
		r->rate *= pow(1.0 - RATE_EWMA, gone - 1.0);
	r->arrivals = 0.0;
	r->committed = 0.0;
	r->slot_start += gone * r->slot_seconds;
}

static int choose_locked(struct router *r, double now_s)
{
	switch (r->policy) {
	case ROUTER_RR: {
		int o = r->ok[r->rr_next % r->n_ok];

		r->rr_next = (r->rr_next + 1) % r->n_ok;
		return o;
	}
	case ROUTER_LEAST: {
		int best = -1;

		for (int k = 0; k < r->sc->n_models; k++) {
			int o = r->cheapest[k];

			if (o >= 0 && (best < 0 || r->outstanding[k] < r->outstanding[r->opts[best].model] ||
				       (r->outstanding[k] == r->outstanding[r->opts[best].model] &&
					r->opts[o].m < r->opts[best].m)))
				best = o;
		}
		return best;
	}
	case ROUTER_VARIANCE:
		if (r->dynamic) {
			double t = (now_s - r->slot_start) / r->slot_seconds;
			double spend = r->supply;
			int balanced = !(r->capacity > 0.0);

			if (!balanced)
				spend += (r->storage - 0.5 * r->capacity) / STORAGE_RELAX_SLOTS;
			return sim_dynamic_route(&r->dyn[r->cur].dp, r->opts, &r->dstate, t < 0 ? 0 : t > 1 ? 1 : t,
						 r->rate, spend, r->committed, balanced);
		}
		return swrr_next(&r->rr);
	case ROUTER_ENERGY:
		return swrr_next(&r->rr);
	}
	return -1;
}

int router_choose(struct router *r, double now_s, struct router_choice *out)
{
	int o = -1;

	pthread_mutex_lock(&r->lock);
	roll_slot(r, now_s);
	if (r->feasible && (r->n_ok > 0 || (r->policy != ROUTER_RR && r->policy != ROUTER_LEAST)))
		o = choose_locked(r, now_s);
	if (o < 0 || o >= r->n) {
		r->refused++;
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	r->arrivals += 1.0;
	r->committed += r->opts[o].m;
	r->routed[o]++;
	r->total++;
	r->acc_sum += r->opts[o].acc;
	r->outstanding[r->opts[o].model]++;
	out->option = o;
	out->model = r->opts[o].model;
	out->budget = (unsigned)r->opts[o].budget;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void router_release(struct router *r, int option)
{
	if (option < 0 || option >= r->n)
		return;
	pthread_mutex_lock(&r->lock);
	unsigned *n = &r->outstanding[r->opts[option].model];
	if (*n)
		(*n)--;
	pthread_mutex_unlock(&r->lock);
}

bool router_measured(struct router *r, int option, double joules)
{
	if (option < 0 || option >= r->n)
		return false;
	pthread_mutex_lock(&r->lock);
	struct option_estimate *w = &r->est[option];
	/* a worker that reported nothing, or a figure no request can take */
	double limit = ROUTER_ABSURD * (w->j.n > 0 ? fmax(w->j.mean, r->prior_m[option]) : r->prior_m[option]);
	bool ok = isfinite(joules) && joules > 0.0 && joules <= limit;
	if (ok)
		ledger_moments_add(&w->j, joules);
	else
		w->rejected++;
	pthread_mutex_unlock(&r->lock);
	return ok;
}

void router_track(struct router *r, uint64_t id, int option)
{
	pthread_mutex_lock(&r->lock);
	r->track[id % ROUTER_TRACK].id = id;
	r->track[id % ROUTER_TRACK].opt = option;
	pthread_mutex_unlock(&r->lock);
}

int router_take(struct router *r, uint64_t id)
{
	int o = -1;

	pthread_mutex_lock(&r->lock);
	if (r->track[id % ROUTER_TRACK].id == id) {
		o = r->track[id % ROUTER_TRACK].opt;
		r->track[id % ROUTER_TRACK].opt = -1;
	}
	pthread_mutex_unlock(&r->lock);
	return o;
}

/* ---- views ---- */

void router_view(struct router *r, struct router_view *out)
{
	pthread_mutex_lock(&r->lock);
	*out = (struct router_view){
		.policy = r->policy, .feasible = r->feasible, .dynamic = r->dynamic,
		.acc_target = r->sc->acc_target,
		.expected_accuracy = r->total ? r->acc_sum / (double)r->total : NAN,
		.routed = r->total, .refused = r->refused, .n_opts = r->n,
	};
	pthread_mutex_unlock(&r->lock);
}

int router_option_view(struct router *r, int i, struct router_option_view *out)
{
	if (i < 0 || i >= r->n)
		return -1;
	pthread_mutex_lock(&r->lock);
	double w = 0.0;
	for (int k = 0; k < r->mix.n; k++)
		if (r->mix.opt[k] == i)
			w = r->mix.w[k];
	*out = (struct router_option_view){
		.model = r->opts[i].model, .budget = (unsigned)r->opts[i].budget, .acc = r->opts[i].acc,
		.weight = r->feasible ? w : 0.0,
		.share = r->total ? (double)r->routed[i] / (double)r->total : 0.0,
		.routed = r->routed[i], .measured = (uint64_t)r->est[i].j.n, .rejected = r->est[i].rejected,
		.j_mean = r->opts[i].m, .j_sd = sqrt(r->opts[i].v),
	};
	pthread_mutex_unlock(&r->lock);
	return 0;
}

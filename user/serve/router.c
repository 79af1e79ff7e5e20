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
#include "scaling.h"
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

/* The options one kind of steered request chooses among: "auto" (every
 * model) or a [pool NAME]; each has its own mix, dynamic policy and slot
 * figures, the estimates are the router's. Option indices are the
 * scenario's throughout. */
struct route_group {
	uint32_t models;		/* bit k: model k */
	int n_opts, opt[SCEN_MAX_OPTIONS];
	bool feasible;
	struct mix mix;
	struct swrr rr;
	int n_ok, ok[SCEN_MAX_OPTIONS], rr_next;	/* options meeting the target alone */
	int cheapest[SCEN_MAX_MODELS];		/* per model, its cheapest of those; -1 none */
	bool dynamic;
	struct dyn_build dyn[2];
	int cur;
	struct sim_dyn_state dstate;
	double slot_start;
	bool aligned;			/* slot_start on the ledger's slots */
	double committed, arrivals, rate;	/* this slot; tasks per slot (EWMA) */
	double supply;				/* J per slot the dynamic policy may spend */
	double acc_sum;
	uint64_t total, refused;
	uint64_t routed[SCEN_MAX_OPTIONS];
};

struct router {
	const struct scenario *sc;
	enum router_policy policy;
	int n;
	pthread_mutex_t lock;		/* guards everything below */
	struct task_option opts[SCEN_MAX_OPTIONS];	/* what the policies use now */
	double prior_m[SCEN_MAX_OPTIONS], prior_v[SCEN_MAX_OPTIONS];
	struct option_estimate est[SCEN_MAX_OPTIONS];
	/* Options n_listed.. are budgets between two listed ones of a model
	 * (lo, hi): their priors follow the two neighbours' estimates, at the
	 * point f of the way from lo's to hi's that the scaling law puts them. */
	int n_listed;
	struct { int lo, hi; double f_m, f_v; } between[SCEN_MAX_OPTIONS];
	unsigned outstanding[SCEN_MAX_MODELS];
	double slot_seconds;
	double storage, capacity;
	struct { uint64_t id; int opt; } track[ROUTER_TRACK];
	int n_groups;
	struct route_group g[ROUTER_MAX_GROUPS];
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

/* Each option's mean and variance of J/request from priors and
 * measurements; a between option's prior is its neighbours' estimates,
 * interpolated. */
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

		if (i >= r->n_listed) {	/* the neighbours come first: listed */
			const struct task_option *lo = &opts[r->between[i].lo], *hi = &opts[r->between[i].hi];

			pm = lo->m + r->between[i].f_m * (hi->m - lo->m);
			pv = lo->v + r->between[i].f_v * (hi->v - lo->v);
		}
		double var_obs = n > 1 ? est[i].j.m2 / (n - 1) : pv;
		double m = (k * pm + n * est[i].j.mean) / (k + n);
		double v = (k * pv + n * var_obs) / (k + n);

		opts[i] = r->opts[i];
		opts[i].m = m;
		opts[i].v = v;
		opts[i].s = v + m * m;
	}
}

/* between_budgets options between each two neighbouring listed budgets of a
 * model (log-spaced, whole tokens): the law's energy shape, the accuracy
 * interpolated in ln T as accuracy@ is. Lock not needed: before use. */
static void add_between(struct router *r, int per_gap)
{
	const struct scenario *sc = r->sc;

	for (int i = 0; i + 1 < sc->n_opts; i++) {
		const struct task_option *lo = &sc->opts[i], *hi = &sc->opts[i + 1];

		if (lo->model != hi->model || !(hi->budget > lo->budget))
			continue;
		for (int j = 1; j <= per_gap && r->n < SCEN_MAX_OPTIONS; j++) {
			double t = (double)j / (per_gap + 1);
			double b = round(lo->budget * pow(hi->budget / lo->budget, t));
			struct task_option o;

			if (!(b > lo->budget && b < hi->budget) || (r->n > r->n_listed &&
			    r->opts[r->n - 1].model == lo->model && r->opts[r->n - 1].budget == b))
				continue;
			scaling_option(&sc->sp, &sc->models[lo->model], lo->model, b, &o);
			double u = log(b / lo->budget) / log(hi->budget / lo->budget);
			o.acc = lo->acc + u * (hi->acc - lo->acc);
			r->opts[r->n] = o;
			r->prior_m[r->n] = o.m;
			r->prior_v[r->n] = o.v;
			r->between[r->n].lo = i;
			r->between[r->n].hi = i + 1;
			r->between[r->n].f_m = hi->m > lo->m ? (o.m - lo->m) / (hi->m - lo->m) : t;
			r->between[r->n].f_v = hi->v > lo->v ? (o.v - lo->v) / (hi->v - lo->v) : t;
			r->n++;
		}
	}
}

static void problem(const struct router *r, const struct task_option *opts, int n, double rate,
		    struct policy_problem *pb)
{
	const struct scenario *sc = r->sc;
	double ratio = sc->arrivals.var_ratio >= 1.0 ? sc->arrivals.var_ratio : 1.0;

	*pb = (struct policy_problem){
		.opts = opts, .n_opts = n, .acc_target = sc->acc_target, .mu_max = INFINITY,
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

/* Put a group's slot boundaries on the ledger's (once; roll_slot keeps
 * the phase after): the slot that holds now starts at ledger_start + k slots.
 * What was committed since the ledger's slot began stays committed. Lock
 * held. */
static void align_slots(struct router *r, struct route_group *g, double ledger_start_s, double now_s)
{
	double k = floor((now_s - ledger_start_s) / r->slot_seconds);

	if (g->aligned)
		return;
	g->slot_start = ledger_start_s + k * r->slot_seconds;
	g->aligned = true;
}

/* The mix's and the ladder's options, from the group's own numbering to
 * the scenario's. */
static void mix_to_scenario(const struct route_group *g, struct mix *mx)
{
	for (int i = 0; i < mx->n; i++)
		mx->opt[i] = g->opt[mx->opt[i]];
}

/* One group's mix and dynamic policy from the estimates (opts: the
 * scenario's options); supply: J per slot for this group's requests. Lock
 * not held: only this thread writes a group's spare table. */
static void group_slot(struct router *r, int gi, const struct task_option *opts, double rate,
		       double supply_in, struct task_option *work)
{
	struct route_group *g = &r->g[gi];
	struct policy_problem pb;
	struct mix mix = { 0 }, ref;
	double mu = 0.0, supply;
	int spare = 1 - g->cur;

	for (int i = 0; i < g->n_opts; i++)
		work[i] = opts[g->opt[i]];
	problem(r, work, g->n_opts, rate > 0.0 ? rate : 1.0, &pb);
	bool feasible = g->n_opts > 0 &&
			(r->policy == ROUTER_VARIANCE ? policy_variance_aware(&pb, &mix)
						      : policy_mean_only(&pb, &mix)) == 0;
	/* the dynamic policy spends the ledger's supply, else the critical
	 * supply b*: the mean-only mix's demand at this rate */
	bool have_ref = g->n_opts > 0 && policy_mean_only(&pb, &ref) == 0;
	if (have_ref)
		policy_mix_moments(&pb, &ref, &mu, NULL, NULL);
	supply = supply_in > 0.0 ? supply_in : mu;

	struct dyn_build *db = &g->dyn[spare];
	bool dynamic = false;
	if (r->policy == ROUTER_VARIANCE && feasible && have_ref && supply > 0.0) {
		double noise = 0.0;

		for (int i = 0; i < ref.n; i++)
			noise += ref.w[i] * work[ref.opt[i]].v;
		db->dp = (struct dyn_policy){
			.acc_target = r->sc->acc_target,
			.horizon_tasks = r->sc->dyn_horizon_slots * (rate > 1.0 ? rate : 1.0),
			.max_dip = r->sc->dyn_max_dip,
		};
		policy_ladder(work, g->n_opts, &db->dp.ladder);
		for (int k = 0; k < db->dp.ladder.n; k++)
			db->dp.ladder.opt[k] = g->opt[db->dp.ladder.opt[k]];
		db->have_table = r->capacity == 0.0 &&
				 policy_dynamic_table(&db->table, &db->dp.ladder, r->sc->acc_target, rate,
						      supply, rate * noise, r->sc->c_a, r->sc->c_w) == 0;
		db->dp.table = db->have_table ? &db->table : NULL;
		dynamic = db->dp.ladder.n > 0;
	}
	mix_to_scenario(g, &mix);

	pthread_mutex_lock(&r->lock);
	g->feasible = feasible;
	if (feasible && !same_mix(&mix, &g->mix)) {
		g->mix = mix;
		swrr_init_mix(&g->rr, &g->mix);
	}
	g->n_ok = 0;
	for (int k = 0; k < SCEN_MAX_MODELS; k++)
		g->cheapest[k] = -1;
	for (int i = 0; i < g->n_opts; i++) {
		int o = g->opt[i];

		if (opts[o].acc >= r->sc->acc_target) {
			int k = opts[o].model;

			g->ok[g->n_ok++] = o;
			if (g->cheapest[k] < 0 || opts[o].m < opts[g->cheapest[k]].m)
				g->cheapest[k] = o;
		}
	}
	if (dynamic)
		g->cur = spare;	/* decisions go on with the new table */
	g->dynamic = dynamic;
	g->supply = supply;
	pthread_mutex_unlock(&r->lock);
	/* the old table is no one's now */
	if (dynamic && g->dyn[1 - spare].have_table) {
		policy_dynamic_table_free(&g->dyn[1 - spare].table);
		g->dyn[1 - spare].have_table = false;
	} else if (!dynamic && db->have_table) {
		policy_dynamic_table_free(&db->table);
		db->have_table = false;
	}
}

void router_slot(struct router *r, const struct router_ledger *in)
{
	struct option_estimate est[SCEN_MAX_OPTIONS];
	struct task_option *opts = malloc(sizeof(struct task_option) * SCEN_MAX_OPTIONS * 2);
	double rate[ROUTER_MAX_GROUPS], rates = 0.0;

	if (!opts)
		return;	/* the last estimates stay */
	pthread_mutex_lock(&r->lock);
	memcpy(est, r->est, sizeof(est[0]) * (size_t)r->n);
	for (int gi = 0; gi < r->n_groups; gi++) {
		rate[gi] = r->g[gi].rate;
		rates += rate[gi] > 0.0 ? rate[gi] : 0.0;
	}
	if (in) {
		r->storage = in->storage;
		r->capacity = in->storage_capacity;
		if (isfinite(in->slot_start_s) && in->now_s >= in->slot_start_s)
			for (int gi = 0; gi < r->n_groups; gi++)
				align_slots(r, &r->g[gi], in->slot_start_s, in->now_s);
	}
	pthread_mutex_unlock(&r->lock);

	estimate(r, est, opts);
	for (int gi = 0; gi < r->n_groups; gi++) {
		/* the ledger's supply, shared by the groups as their requests are */
		double share = r->n_groups == 1 ? 1.0 : rates > 0.0 ? fmax(rate[gi], 0.0) / rates
								   : 1.0 / r->n_groups;
		double supply = in && in->supply_per_slot > 0.0 ? in->supply_per_slot * share : 0.0;

		group_slot(r, gi, opts, rate[gi], supply, opts + SCEN_MAX_OPTIONS);
	}
	pthread_mutex_lock(&r->lock);
	memcpy(r->opts, opts, sizeof(opts[0]) * (size_t)r->n);
	pthread_mutex_unlock(&r->lock);
	free(opts);
}

struct router *router_new(const struct scenario *sc, enum router_policy policy, double now_s,
			  const uint32_t *pool_models, int n_pools, int between_budgets, char *err,
			  size_t errlen)
{
	struct router *r;

	if (sc->n_opts <= 0) {
		errbuf_set(err, errlen, "%s: no (model, budget) options to steer to: add [scaling], "
			   "[workload] budgets and accuracy_target, and [cost] (docs/sim.md)", sc->path);
		return NULL;
	}
	if (n_pools < 0 || n_pools + 1 > ROUTER_MAX_GROUPS) {
		errbuf_set(err, errlen, "%s: more than %d pools", sc->path, ROUTER_MAX_GROUPS - 1);
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
		r->opts[i] = sc->opts[i];
	}
	r->n_listed = r->n;
	if (between_budgets > 0)
		add_between(r, between_budgets);
	for (int i = 0; i < ROUTER_TRACK; i++)
		r->track[i].opt = -1;
	r->slot_seconds = sc->slot_seconds > 0.0 ? sc->slot_seconds : 1.0;
	r->n_groups = 1 + n_pools;
	for (int gi = 0; gi < r->n_groups; gi++) {
		struct route_group *g = &r->g[gi];

		g->models = gi == 0 ? ~0u : pool_models[gi - 1];
		for (int i = 0; i < r->n; i++)
			if ((unsigned)r->opts[i].model < 32 && (g->models >> r->opts[i].model & 1u))
				g->opt[g->n_opts++] = i;
		g->slot_start = now_s;
		g->rate = sc->arrivals.per_slot > 0.0 ? sc->arrivals.per_slot : 1.0;
	}
	router_slot(r, NULL);
	return r;
}

void router_free(struct router *r)
{
	if (!r)
		return;
	for (int gi = 0; gi < r->n_groups; gi++)
		for (int i = 0; i < 2; i++)
			if (r->g[gi].dyn[i].have_table)
				policy_dynamic_table_free(&r->g[gi].dyn[i].table);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int router_groups(const struct router *r)
{
	return r->n_groups;
}

/* ---- the hot path ---- */

/* A new slot: last slot's arrivals into the rate, nothing committed yet. */
static void roll_slot(struct router *r, struct route_group *g, double now_s)
{
	double gone = floor((now_s - g->slot_start) / r->slot_seconds);

	if (gone < 1.0)
		return;
	g->rate = (1.0 - RATE_EWMA) * g->rate + RATE_EWMA * g->arrivals;
	if (gone > 1.0)	/* empty slots in between */
		g->rate *= pow(1.0 - RATE_EWMA, gone - 1.0);
	g->arrivals = 0.0;
	g->committed = 0.0;
	g->slot_start += gone * r->slot_seconds;
}

static int choose_locked(struct router *r, struct route_group *g, double now_s)
{
	switch (r->policy) {
	case ROUTER_RR: {
		int o = g->ok[g->rr_next % g->n_ok];

		g->rr_next = (g->rr_next + 1) % g->n_ok;
		return o;
	}
	case ROUTER_LEAST: {
		int best = -1;

		for (int k = 0; k < r->sc->n_models; k++) {
			int o = g->cheapest[k];

			if (o >= 0 && (best < 0 || r->outstanding[k] < r->outstanding[r->opts[best].model] ||
				       (r->outstanding[k] == r->outstanding[r->opts[best].model] &&
					r->opts[o].m < r->opts[best].m)))
				best = o;
		}
		return best;
	}
	case ROUTER_VARIANCE:
		if (g->dynamic) {
			double t = (now_s - g->slot_start) / r->slot_seconds;
			double spend = g->supply;
			int balanced = !(r->capacity > 0.0);

			if (!balanced)
				spend += (r->storage - 0.5 * r->capacity) / STORAGE_RELAX_SLOTS /
					 r->n_groups;
			return sim_dynamic_route(&g->dyn[g->cur].dp, r->opts, &g->dstate,
						 t < 0 ? 0 : t > 1 ? 1 : t, g->rate, spend, g->committed, balanced);
		}
		return swrr_next(&g->rr);
	case ROUTER_ENERGY:
		return swrr_next(&g->rr);
	}
	return -1;
}

int router_choose(struct router *r, int group, double now_s, struct router_choice *out)
{
	int o = -1;

	if (group < 0 || group >= r->n_groups)
		return -1;
	struct route_group *g = &r->g[group];
	pthread_mutex_lock(&r->lock);
	roll_slot(r, g, now_s);
	if (g->feasible && (g->n_ok > 0 || (r->policy != ROUTER_RR && r->policy != ROUTER_LEAST)))
		o = choose_locked(r, g, now_s);
	if (o < 0 || o >= r->n) {
		g->refused++;
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	g->arrivals += 1.0;
	g->committed += r->opts[o].m;
	g->routed[o]++;
	g->total++;
	g->acc_sum += r->opts[o].acc;
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

void router_view(struct router *r, int group, struct router_view *out)
{
	if (group < 0 || group >= r->n_groups)
		group = 0;
	const struct route_group *g = &r->g[group];
	pthread_mutex_lock(&r->lock);
	*out = (struct router_view){
		.policy = r->policy, .dynamic = g->dynamic,
		/* rr and least route only options that meet the target alone */
		.feasible = g->feasible && (g->n_ok > 0 || (r->policy != ROUTER_RR && r->policy != ROUTER_LEAST)),
		.acc_target = r->sc->acc_target,
		.expected_accuracy = g->total ? g->acc_sum / (double)g->total : NAN,
		.routed = g->total, .refused = g->refused, .n_opts = r->n,
	};
	pthread_mutex_unlock(&r->lock);
}

int router_option_view(struct router *r, int group, int i, struct router_option_view *out)
{
	if (i < 0 || i >= r->n || group < 0 || group >= r->n_groups)
		return -1;
	const struct route_group *g = &r->g[group];
	if (!((unsigned)r->opts[i].model < 32 && (g->models >> r->opts[i].model & 1u)))
		return -1;
	pthread_mutex_lock(&r->lock);
	double w = 0.0;
	for (int k = 0; k < g->mix.n; k++)
		if (g->mix.opt[k] == i)
			w = g->mix.w[k];
	*out = (struct router_option_view){
		.model = r->opts[i].model, .budget = (unsigned)r->opts[i].budget, .acc = r->opts[i].acc,
		.weight = g->feasible ? w : 0.0,
		.share = g->total ? (double)g->routed[i] / (double)g->total : 0.0,
		.routed = g->routed[i], .measured = (uint64_t)r->est[i].j.n, .rejected = r->est[i].rejected,
		.j_mean = r->opts[i].m, .j_sd = sqrt(r->opts[i].v),
	};
	pthread_mutex_unlock(&r->lock);
	return 0;
}

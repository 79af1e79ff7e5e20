/* erg sim's plan: the model's answer, the supply levels and the jobs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "errbuf.h"
#include "sim_plan.h"
#include "theory.h"

const char *const sim_policy_name[SIM_NPOL] = { "mean", "variance", "dynamic" };
const int sim_policy_bit[SIM_NPOL] = { POLICY_MEAN, POLICY_VARIANCE, POLICY_DYNAMIC };

static void apply_args(struct scenario *sc, const struct sim_args *a)
{
	if (a->slots)
		sc->slots = a->slots;
	if (a->have_seed)
		sc->seed = a->seed;
	if (a->have_storage)
		sc->storage = a->storage;
	if (a->realiser >= 0)
		sc->how = a->realiser == 1 ? REALISE_RANDOM : REALISE_SWRR;
}

/* The moments of both static mixes, the critical supply and the docs/theory.md §2
 * shares. 0 ok, 2 with err. */
static int plan_mixes(struct sim_plan *p, char *err, size_t errlen)
{
	const struct scenario *sc = p->sc;

	if (policy_mean_only(&p->pb, &p->mix_mean) || policy_variance_aware(&p->pb, &p->mix_var)) {
		errbuf_set(err, errlen, "%s: no mix of options reaches accuracy %g (lower accuracy_target)",
			   p->path, sc->acc_target);
		return 2;
	}
	policy_mix_moments(&p->pb, &p->mix_mean, &p->mu_ref, &p->var_ref, &p->acc_ref);
	policy_mix_moments(&p->pb, &p->mix_var, &p->mu_v, &p->var_v, &p->acc_v);
	p->sigma_ref = sqrt(p->var_ref);
	p->sigma_v = sqrt(p->var_v);
	p->bstar = p->mu_ref;
	if (!(p->bstar > 0.0)) {
		errbuf_set(err, errlen, "%s: the mean demand is zero (no tasks arrive); raise tasks_per_slot",
			   p->path);
		return 2;
	}
	/* doubles overflow with absurd sizes: say so instead of printing inf */
	if (!isfinite(p->bstar) || !isfinite(p->sigma_ref) || !isfinite(p->mu_v) || !isfinite(p->sigma_v)) {
		errbuf_set(err, errlen, "%s: the demand per slot is not finite (mu %g J, sigma %g J); scale "
			   "params, joules_per_token, budgets or tasks_per_slot down", p->path, p->bstar,
			   p->sigma_ref);
		return 2;
	}
	if (p->bstar > SIM_MAX_SUPPLY_J) {
		errbuf_set(err, errlen, "%s: the mean demand is %g J per slot, above the %g J erg sim "
			   "models; scale params, joules_per_token, budgets or tasks_per_slot down",
			   p->path, p->bstar, SIM_MAX_SUPPLY_J);
		return 2;
	}
	double dense[SCEN_MAX_OPTIONS] = { 0 };
	for (int i = 0; i < p->mix_mean.n; i++)
		dense[p->mix_mean.opt[i]] = p->mix_mean.w[i];
	scaling_decompose(sc->opts, sc->n_opts, dense, p->am, sc->how, &p->vd);
	return 0;
}

/* Volatility-limited cost at each policy's own critical point, and the
 * dynamic policy's parameters. */
static void plan_costs(struct sim_plan *p)
{
	const struct scenario *sc = p->sc;

	p->vol_ref = policy_volatility_cost(&p->pb, p->sigma_ref);
	p->vol_v = policy_volatility_cost(&p->pb, p->sigma_v);
	if (isinf(sc->storage)) {	/* docs/theory.md §4.4 over the run, per slot */
		p->vol_ref = sc->c_a * theory_unlimited_aux_total(p->sigma_ref, sc->slots, 1) / sc->slots;
		p->vol_v = sc->c_a * theory_unlimited_aux_total(p->sigma_v, sc->slots, 1) / sc->slots;
		/* the dynamic policy keeps a buffer of a few sigma instead of
		 * half of an infinite store */
		p->base.supply.target = 4.0 * p->sigma_ref;
	}
	p->dyn = (struct dyn_policy){
		.acc_target = sc->acc_target,
		.horizon_tasks = sc->dyn_horizon_slots * (p->am.mean > 1.0 ? p->am.mean : 1.0),
		.max_dip = sc->dyn_max_dip,
	};
	policy_ladder(sc->opts, sc->n_opts, &p->dyn.ladder);
	/* Without storage each slot is balanced on its own: the decision
	 * table's dynamic programme applies. Supply varies with a trace, so
	 * the table is built for the mean. */
	if (sc->storage == 0.0 &&
	    policy_dynamic_table(&p->table, &p->dyn.ladder, sc->acc_target, p->am.mean,
				 p->bstar, p->vd.exec_noise, sc->c_a, sc->c_w) == 0)
		p->dyn.table = &p->table;
}

/* The supply levels, J per slot. 0 ok, 1 no memory, 2 with err. */
static int plan_levels(struct sim_plan *p, const struct sim_args *a, char *err, size_t errlen)
{
	const struct scenario *sc = p->sc;
	double scale = a->supply_multiple ? p->bstar : 1.0;
	int n = 1;

	if (a->supply_kind == SIM_SUPPLY_SWEEP)	/* sim_args checked the count */
		n = (int)(floor((a->supply[1] - a->supply[0]) / a->supply[2] + 1e-9) + 1.0);
	p->levels = calloc((size_t)n, sizeof(double));
	if (!p->levels)
		return 1;
	if (a->supply_kind == SIM_SUPPLY_SWEEP)
		for (int i = 0; i < n; i++)
			p->levels[i] = (a->supply[0] + i * a->supply[2]) * scale;
	else if (a->supply_kind == SIM_SUPPLY_ONE)
		p->levels[0] = a->supply[0] * scale;
	else if (sc->supply_joules > 0.0)
		p->levels[0] = sc->supply_joules;
	else if (sc->supply_trace)
		p->levels[0] = supply_trace_mean_watts(sc->supply_trace) * sc->slot_seconds;
	else
		p->levels[0] = p->bstar;
	p->n_levels = n;
	for (int i = 0; i < n; i++)
		if (!(p->levels[i] <= SIM_MAX_SUPPLY_J)) {
			errbuf_set(err, errlen, "%s: supply level %g J per slot is above %g J; use a smaller one",
				   p->path, p->levels[i], SIM_MAX_SUPPLY_J);
			return 2;
		}
	return 0;
}

/* The variance-aware mix under mu <= level (docs/theory.md §5). Below the least
 * mean that meets the target no mix satisfies it; the least violation is
 * the mean-only mix. */
static void variance_job(const struct sim_plan *p, struct sim_job *j, double level)
{
	struct policy_problem pc = p->pb;
	struct mix m;
	double mu_c;

	pc.mu_max = level;
	if (policy_variance_aware(&pc, &m) == 0) {
		j->cfg.mix = m;
		policy_mix_moments(&p->pb, &m, &mu_c, NULL, NULL);
		j->constraint = mu_c < level * (1.0 - 1e-9) ? "slack" : "binding";
	} else {
		j->cfg.mix = p->mix_mean;
		j->constraint = "infeasible";
	}
}

static struct sim_job *add_job(struct sim_plan *p, int policy, double level)
{
	struct sim_job *j = &p->jobs[p->n_jobs];

	j->cfg = p->base;
	j->cfg.supply.per_slot = level;
	j->level = level;
	j->policy = policy;
	j->counts = p->counts + (size_t)p->n_jobs * p->sc->n_opts;
	j->cfg.progress = &j->progress;
	if (policy == SIM_P_DYNAMIC) {
		j->cfg.policy = SIM_DYNAMIC;
		j->cfg.dyn = &p->dyn;
	} else if (policy == SIM_P_MEAN) {
		j->cfg.mix = p->mix_mean;
	}
	p->n_jobs++;
	return j;
}

/* Sweep jobs per (level, policy), then each policy at its own critical
 * point (supply = its mu): the volatility-limited cost the headline
 * compares. 0 ok, 1 no memory. */
static int plan_jobs(struct sim_plan *p)
{
	int npol = 0;

	for (int q = 0; q < SIM_NPOL; q++)
		npol += !!(p->policies & sim_policy_bit[q]);
	size_t n = (size_t)p->n_levels * npol + npol;
	p->jobs = calloc(n, sizeof(*p->jobs));
	p->counts = calloc(n * p->sc->n_opts, sizeof(double));
	if (!p->jobs || !p->counts)
		return 1;
	for (int l = 0; l < p->n_levels; l++)
		for (int q = 0; q < SIM_NPOL; q++) {
			if (!(p->policies & sim_policy_bit[q]))
				continue;
			struct sim_job *j = add_job(p, q, p->levels[l]);
			j->sweep = 1;
			if (q == SIM_P_VARIANCE)
				variance_job(p, j, p->levels[l]);
		}
	for (int q = 0; q < SIM_NPOL; q++) {
		p->head[q] = -1;
		if (!(p->policies & sim_policy_bit[q]))
			continue;
		struct sim_job *j = add_job(p, q, q == SIM_P_VARIANCE ? p->mu_v : p->bstar);
		if (q == SIM_P_VARIANCE)
			j->cfg.mix = p->mix_var;
		p->head[q] = p->n_jobs - 1;
	}
	return 0;
}

int sim_plan_make(struct sim_plan *p, struct scenario *sc, const char *path,
		  const struct sim_args *a, char *err, size_t errlen)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->sc = sc;
	p->path = path;
	apply_args(sc, a);
	p->policies = a->policies ? a->policies : sc->policies;
	p->base = (struct sim_config){
		.opts = sc->opts, .n_opts = sc->n_opts,
		.arrivals = sc->arrivals, .slot_seconds = sc->slot_seconds,
		.slots = sc->slots, .seed = sc->seed, .how = sc->how,
		.supply = { .trace = sc->supply_trace, .capacity = sc->storage, .initial = -1.0 },
		.c_a = sc->c_a, .c_w = sc->c_w,
	};
	p->am = sim_arrival_moments(&p->base);
	p->pb = (struct policy_problem){
		.opts = sc->opts, .n_opts = sc->n_opts, .acc_target = sc->acc_target,
		.mu_max = INFINITY, .arr = p->am, .how = sc->how,
		.c_e = sc->c_e, .c_a = sc->c_a, .c_w = sc->c_w, .storage = sc->storage,
	};
	if ((rc = plan_mixes(p, err, errlen)))
		return rc;
	plan_costs(p);
	if ((rc = plan_levels(p, a, err, errlen)) || (rc = plan_jobs(p))) {
		if (rc == 1)
			errbuf_set(err, errlen, "out of memory");
		return rc;
	}
	/* the simulator's own bounds (a rate trace's busiest slot), before
	 * any run starts */
	const char *why = p->n_jobs ? sim_check(&p->jobs[0].cfg) : NULL;
	if (why) {
		errbuf_set(err, errlen, "%s: %s", path, why);
		return 2;
	}
	return 0;
}

void sim_plan_free(struct sim_plan *p)
{
	free(p->levels);
	free(p->jobs);
	free(p->counts);
	policy_dynamic_table_free(&p->table);
	p->levels = NULL;
	p->jobs = NULL;
	p->counts = NULL;
}

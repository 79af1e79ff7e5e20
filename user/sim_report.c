/* erg sim's headline, the finite check, and the text report. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "errbuf.h"
#include "sim_report.h"
#include "theory.h"

const char *sim_fmt(char *buf, size_t len, double v, int width, int prec)
{
	if (isfinite(v))
		snprintf(buf, len, "%*.*f", width, prec, v);
	else
		snprintf(buf, len, "%*s", width, "-");
	return buf;
}

static int same_mix(const struct mix *a, const struct mix *b)
{
	if (a->n != b->n)
		return 0;
	for (int i = 0; i < a->n; i++)
		if (a->opt[i] != b->opt[i] || fabs(a->w[i] - b->w[i]) > 1e-9)
			return 0;
	return 1;
}

void sim_headline_make(const struct sim_plan *p, double elapsed_s, struct sim_headline *h)
{
	const struct scenario *sc = p->sc;

	memset(h, 0, sizeof(*h));
	h->elapsed_s = elapsed_s;
	if (p->head[SIM_P_DYNAMIC] >= 0) {
		const struct sim_job *j = &p->jobs[p->head[SIM_P_DYNAMIC]];
		for (int i = 0; i < sc->n_opts; i++)
			if (j->counts[i] > 0 && j->sum.tasks > 0) {
				h->dyn_opt[h->dyn_n] = i;
				h->dyn_w[h->dyn_n++] = j->counts[i] / j->sum.tasks;
			}
	}
	/* variance-aware vs mean-only, each at its own critical point */
	h->at_m = p->head[SIM_P_MEAN] >= 0 ? &p->jobs[p->head[SIM_P_MEAN]] : NULL;
	h->at_v = p->head[SIM_P_VARIANCE] >= 0 ? &p->jobs[p->head[SIM_P_VARIANCE]] : NULL;
	h->ratio_theory = p->vol_ref > 0.0 ? p->vol_v / p->vol_ref : NAN;
	h->ratio_sim = h->at_m && h->at_v && h->at_m->sum.cost > 0.0 ?
		       h->at_v->sum.cost / h->at_m->sum.cost : NAN;
	h->ratio_dyn = h->at_m && p->head[SIM_P_DYNAMIC] >= 0 && h->at_m->sum.cost > 0.0 ?
		       p->jobs[p->head[SIM_P_DYNAMIC]].sum.cost / h->at_m->sum.cost : NAN;
	h->same = same_mix(&p->mix_mean, &p->mix_var);
	if (sc->storage == 0.0)
		snprintf(h->storage_desc, sizeof(h->storage_desc), "no storage");
	else if (isinf(sc->storage))
		snprintf(h->storage_desc, sizeof(h->storage_desc), "unlimited storage");
	else
		snprintf(h->storage_desc, sizeof(h->storage_desc), "storage %.0f J", sc->storage);
	h->arrivals_desc = sc->arrivals.kind == ARRIVALS_TRACE ? "rate trace" :
			   sc->arrivals.kind == ARRIVALS_OVERDISPERSED ? "over-dispersed" : "Poisson";
	h->theory_desc = sc->storage == 0.0 ? "docs/theory.md §4.1" :
			 isinf(sc->storage) ? "docs/theory.md §4.4" : "docs/theory.md §4.3, slotted";
}

static int not_finite(const char *what, double v, const char *path, char *err, size_t errlen)
{
	errbuf_set(err, errlen, "%s: the results are not finite (%s = %g): the scenario's numbers "
		   "overflow double precision; scale params, joules_per_token, budgets or the supply down",
		   path, what, v);
	return -1;
}

int sim_results_check(const struct sim_plan *p, char *err, size_t errlen)
{
	const double head[] = { p->bstar, p->sigma_ref, p->mu_v, p->sigma_v, p->vd.total,
				p->vd.time, p->vd.models, p->vd.exec_choice, p->vd.exec_noise };

	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		if (!isfinite(head[i]))
			return not_finite("the critical supply's moments", head[i], p->path, err, errlen);
	for (int i = 0; i < p->n_jobs; i++) {
		const struct sim_job *j = &p->jobs[i];
		const struct { const char *what; double v; } must[] = {
			{ "supply", j->level }, { "mu", j->sum.mu }, { "sigma", j->sum.sigma },
			{ "aux", j->sum.aux }, { "waste", j->sum.waste }, { "cost", j->sum.cost },
			/* no task at all leaves accuracy undefined, printed "-" */
			{ "accuracy", j->sum.tasks > 0 ? j->sum.accuracy : 0.0 },
		};
		for (size_t k = 0; k < sizeof(must) / sizeof(must[0]); k++)
			if (!isfinite(must[k].v))
				return not_finite(must[k].what, must[k].v, p->path, err, errlen);
	}
	return 0;
}

static void put_mix_text(const struct scenario *sc, const int *opt, const double *w, int n)
{
	/* heaviest first */
	int order[SCEN_MAX_OPTIONS];
	int k = 0;
	for (int i = 0; i < n; i++)
		if (w[i] >= 0.0005)
			order[k++] = i;
	for (int a = 1; a < k; a++)
		for (int b = a; b > 0 && w[order[b]] > w[order[b - 1]]; b--) {
			int t = order[b]; order[b] = order[b - 1]; order[b - 1] = t;
		}
	for (int a = 0; a < k; a++) {
		char name[64];
		scenario_option_name(sc, opt[order[a]], name, sizeof(name));
		printf("%s%s %.1f%%", a ? ", " : "", name, 100.0 * w[order[a]]);
	}
}

/* The run, b*, sigma, the volatility-limited cost, the variance shares. */
static void text_answer(const struct sim_plan *p, const struct sim_headline *h)
{
	const struct scenario *sc = p->sc;
	char a[4][48];

	printf("erg sim: %s (%s): %d options, %.4g tasks per %g s slot (%s), %s, %ld slots per run, seed %llu\n\n",
	       sc->name, p->path, sc->n_opts, p->am.mean, sc->slot_seconds, h->arrivals_desc, h->storage_desc,
	       sc->slots, (unsigned long long)sc->seed);
	printf("Critical supply b* = mu = %.0f J per slot (%.4g kW), sigma = %.0f J per slot\n",
	       p->bstar, p->bstar / sc->slot_seconds / 1000.0, p->sigma_ref);
	printf("  (mu and sigma of the mean-only mix, the least energy that meets accuracy %.2f)\n", sc->acc_target);
	if (sc->storage == 0.0)
		printf("Volatility-limited cost at b*: (c_a+c_w) sigma phi(0) = %s per slot (%s%% of b*); "
		       "newsvendor b = %s J, J* = %s\n", sim_fmt(a[0], sizeof(a[0]), p->vol_ref, 0, 0),
		       sim_fmt(a[1], sizeof(a[1]), 100.0 * p->vol_ref / p->bstar, 0, 1),
		       sim_fmt(a[2], sizeof(a[2]), theory_newsvendor_supply(p->mu_ref, p->sigma_ref, sc->c_a, sc->c_w), 0, 0),
		       sim_fmt(a[3], sizeof(a[3]), theory_newsvendor_cost(p->sigma_ref, sc->c_a, sc->c_w), 0, 0));
	else if (isinf(sc->storage))
		printf("Volatility-limited cost at b*: c_a sigma sqrt(2H/pi) / H = %s per slot over H = %ld slots "
		       "(docs/theory.md §4.4)\n", sim_fmt(a[0], sizeof(a[0]), p->vol_ref, 0, 1), sc->slots);
	else
		printf("Volatility-limited cost at b*: (c_a+c_w) sigma^2 / (2 (C + %.3f sigma)) = %s per slot "
		       "(docs/theory.md §4.3)\n", 2.0 * THEORY_OVERSHOOT, sim_fmt(a[0], sizeof(a[0]), p->vol_ref, 0, 1));
	if (sc->supply_trace)
		printf("  (for a constant supply at b*; the supply trace adds its own swings)\n");
	double tot = p->vd.total > 0.0 ? p->vd.total : 1.0;
	printf("Variance shares of sigma^2: time %.3f, models %.3f, execution %.3f "
	       "(budget choice %.3f, reasoning length %.3f)\n", p->vd.time / tot, p->vd.models / tot,
	       (p->vd.exec_choice + p->vd.exec_noise) / tot, p->vd.exec_choice / tot, p->vd.exec_noise / tot);
	if (sc->how == REALISE_SWRR && p->vd.removed > 0.0)
		printf("  (mixes are realised deterministically; routing each task at random would add %.1f%% "
		       "to sigma^2)\n", 100.0 * p->vd.removed / tot);
}

/* Each policy's mix, and variance-aware against mean-only. */
static void text_policies(const struct sim_plan *p, const struct sim_headline *h)
{
	const struct scenario *sc = p->sc;
	char a[3][48];

	printf("\nPolicies (accuracy target %.3f):\n", sc->acc_target);
	for (int q = 0; q < SIM_NPOL; q++) {
		if (!(p->policies & sim_policy_bit[q]))
			continue;
		if (q == SIM_P_DYNAMIC) {
			const struct sim_job *j = &p->jobs[p->head[SIM_P_DYNAMIC]];
			printf("  %-9s accuracy %s  mu %7.0f J  sigma %6.0f J  mix at b* (simulated): ",
			       sim_policy_name[q], sim_fmt(a[0], sizeof(a[0]), j->sum.accuracy, 0, 4),
			       j->sum.mu, j->sum.sigma);
			put_mix_text(sc, h->dyn_opt, h->dyn_w, h->dyn_n);
			printf("\n");
			continue;
		}
		const struct mix *m = q == SIM_P_MEAN ? &p->mix_mean : &p->mix_var;
		printf("  %-9s accuracy %.4f  mu %7.0f J  sigma %6.0f J  mix: ", sim_policy_name[q],
		       q == SIM_P_MEAN ? p->acc_ref : p->acc_v, q == SIM_P_MEAN ? p->mu_ref : p->mu_v,
		       q == SIM_P_MEAN ? p->sigma_ref : p->sigma_v);
		put_mix_text(sc, m->opt, m->w, m->n);
		if (q == SIM_P_VARIANCE && h->same)
			printf("  (the mean-only mix: no lower-volatility mix meets the target here)");
		printf("\n");
	}
	const struct sim_job *dj = p->head[SIM_P_DYNAMIC] >= 0 ? &p->jobs[p->head[SIM_P_DYNAMIC]] : NULL;
	/* a run where no task arrived has no accuracy to compare */
	if (isfinite(h->ratio_dyn) && isfinite(dj->sum.accuracy) && isfinite(h->at_m->sum.accuracy)) {
		printf("  dynamic vs mean-only at b* = %.0f J, simulated: cost %.0f vs %.0f = %.4fx, "
		       "accuracy %.4f vs %.4f\n", h->at_m->level, dj->sum.cost, h->at_m->sum.cost,
		       h->ratio_dyn, dj->sum.accuracy, h->at_m->sum.accuracy);
	}
	if (!(p->policies & POLICY_MEAN) || !(p->policies & POLICY_VARIANCE))
		return;
	printf("  variance-aware vs mean-only at the critical point, equal accuracy: cost %s vs %s = %sx "
	       "(closed form)", sim_fmt(a[0], sizeof(a[0]), p->vol_v, 0, 0),
	       sim_fmt(a[1], sizeof(a[1]), p->vol_ref, 0, 0), sim_fmt(a[2], sizeof(a[2]), h->ratio_theory, 0, 4));
	if (isfinite(h->ratio_sim))
		printf(";\n  simulated, each at its own critical point: %.0f (b = %.0f J) vs %.0f (b = %.0f J) = %.4fx",
		       h->at_v->sum.cost, h->at_v->level, h->at_m->sum.cost, h->at_m->level, h->ratio_sim);
	printf("\n");
}

/* One row per supply level and policy, simulated next to closed form. */
static void text_levels(const struct sim_plan *p, const struct sim_headline *h)
{
	const struct scenario *sc = p->sc;
	const struct sim_job *at_m = h->at_m;

	printf("\nPer supply level (sim: simulated mean per slot over %ld slots; theory: %s; J per slot):\n",
	       sc->slots, h->theory_desc);
	if (sc->supply_trace)
		printf("  The supply follows its trace, scaled to each level's mean; closed forms need constant supply%s.\n",
		       sc->storage == 0.0 ? " or no storage" : "");
	if (at_m && fabs(at_m->sum.skew) >= 0.1 && isfinite(at_m->sum.aux_theory))
		printf("  Slot demand is skewed (%.2f at b*); the Gaussian closed forms understate the %s tail,\n"
		       "  so away from b* they drift a few standard errors from the simulation.\n",
		       at_m->sum.skew, at_m->sum.skew > 0 ? "upper" : "lower");
	printf("%9s %5s %-8s %7s %6s | %7s %7s | %7s %7s | %7s %5s %7s | %8s\n", "supply", "x b*", "policy",
	       "mu", "sigma", "aux", "theory", "waste", "theory", "cost", "±se", "theory", "accuracy");
	for (int i = 0; i < p->n_jobs; i++) {
		const struct sim_job *j = &p->jobs[i];
		char a[5][48];
		if (!j->sweep)
			continue;
		sim_fmt(a[0], sizeof(a[0]), j->sum.aux_theory, 7, 0);
		sim_fmt(a[1], sizeof(a[1]), j->sum.waste_theory, 7, 0);
		sim_fmt(a[2], sizeof(a[2]), j->sum.cost_theory, 7, 0);
		sim_fmt(a[3], sizeof(a[3]), j->sum.cost_se, 5, 0);
		sim_fmt(a[4], sizeof(a[4]), j->sum.accuracy, 8, 4);
		printf("%9.0f %5.2f %-8s %7.0f %6.0f | %7.0f %s | %7.0f %s | %7.0f %s %s | %s\n", j->level,
		       j->level / p->bstar, sim_policy_name[j->policy], j->sum.mu, j->sum.sigma, j->sum.aux, a[0],
		       j->sum.waste, a[1], j->sum.cost, a[3], a[2], a[4]);
	}
}

void sim_report_text(const struct sim_plan *p, const struct sim_headline *h)
{
	text_answer(p, h);
	text_policies(p, h);
	text_levels(p, h);
}

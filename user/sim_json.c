/* erg sim's JSON document. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "sim_json.h"
#include "theory.h"

static void add_num(cJSON *o, const char *k, double v)
{
	cJSON_AddItemToObject(o, k, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

static cJSON *mix_json(const struct scenario *sc, const int *opt, const double *w, int n)
{
	cJSON *arr = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		if (!(w[i] > 0.0))
			continue;
		cJSON *e = cJSON_CreateObject();
		const struct task_option *o = &sc->opts[opt[i]];
		cJSON_AddStringToObject(e, "model", sc->models[o->model].name);
		add_num(e, "budget", o->budget);
		add_num(e, "weight", w[i]);
		add_num(e, "accuracy", o->acc);
		add_num(e, "joules_mean", o->m);
		add_num(e, "joules_sd", sqrt(o->v));
		cJSON_AddItemToArray(arr, e);
	}
	return arr;
}

static void json_head(cJSON *root, const struct sim_plan *p)
{
	const struct scenario *sc = p->sc;
	const struct var_decomp *vd = &p->vd;

	cJSON_AddStringToObject(root, "scenario", sc->name);
	cJSON_AddStringToObject(root, "file", p->path);
	add_num(root, "critical_supply", p->bstar);
	add_num(root, "mu", p->mu_ref);
	add_num(root, "sigma", p->sigma_ref);
	add_num(root, "accuracy_target", sc->acc_target);
	add_num(root, "volatility_cost", p->vol_ref);
	add_num(root, "newsvendor_supply", theory_newsvendor_supply(p->mu_ref, p->sigma_ref, sc->c_a, sc->c_w));
	add_num(root, "newsvendor_cost", theory_newsvendor_cost(p->sigma_ref, sc->c_a, sc->c_w));
	cJSON *vs = cJSON_AddObjectToObject(root, "var_shares");
	double tot = vd->total > 0.0 ? vd->total : 1.0;
	add_num(vs, "time", vd->time / tot);
	add_num(vs, "models", vd->models / tot);
	add_num(vs, "execution", (vd->exec_choice + vd->exec_noise) / tot);
	add_num(vs, "execution_choice", vd->exec_choice / tot);
	add_num(vs, "execution_noise", vd->exec_noise / tot);
	add_num(vs, "removed_by_realiser", vd->removed / tot);
}

static cJSON *json_policy(const struct sim_plan *p, const struct sim_headline *h, int q)
{
	const struct scenario *sc = p->sc;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "policy", sim_policy_name[q]);
	if (q == SIM_P_DYNAMIC) {
		const struct sim_job *dj = &p->jobs[p->head[SIM_P_DYNAMIC]];
		cJSON_AddItemToObject(o, "mix", mix_json(sc, h->dyn_opt, h->dyn_w, h->dyn_n));
		add_num(o, "accuracy", dj->sum.accuracy);
		add_num(o, "mu", dj->sum.mu);
		add_num(o, "sigma", dj->sum.sigma);
		cJSON_AddStringToObject(o, "mix_source", "simulated at the critical supply");
	} else {
		int mean = q == SIM_P_MEAN;
		const struct mix *m = mean ? &p->mix_mean : &p->mix_var;
		cJSON_AddItemToObject(o, "mix", mix_json(sc, m->opt, m->w, m->n));
		add_num(o, "accuracy", mean ? p->acc_ref : p->acc_v);
		add_num(o, "mu", mean ? p->mu_ref : p->mu_v);
		add_num(o, "sigma", mean ? p->sigma_ref : p->sigma_v);
		add_num(o, "volatility_cost", mean ? p->vol_ref : p->vol_v);
		add_num(o, "objective", policy_objective(&p->pb, m));
	}
	const struct sim_job *hj = &p->jobs[p->head[q]];
	add_num(o, "critical_supply", hj->level);
	add_num(o, "cost_at_critical", hj->sum.cost);
	add_num(o, "cost_at_critical_se", hj->sum.cost_se);
	add_num(o, "cost_at_critical_theory", hj->sum.cost_theory);
	return o;
}

static cJSON *json_level(const struct sim_plan *p, const struct sim_job *j)
{
	cJSON *o = cJSON_CreateObject();

	add_num(o, "supply", j->level);
	add_num(o, "supply_multiple", j->level / p->bstar);
	cJSON_AddStringToObject(o, "policy", sim_policy_name[j->policy]);
	add_num(o, "aux", j->sum.aux);
	add_num(o, "waste", j->sum.waste);
	add_num(o, "cost", j->sum.cost);
	add_num(o, "accuracy", j->sum.accuracy);
	add_num(o, "aux_theory", j->sum.aux_theory);
	add_num(o, "waste_theory", j->sum.waste_theory);
	add_num(o, "cost_theory", j->sum.cost_theory);
	add_num(o, "accuracy_theory", j->sum.accuracy_theory);
	add_num(o, "mu", j->sum.mu);
	add_num(o, "sigma", j->sum.sigma);
	add_num(o, "mu_theory", j->sum.mu_theory);
	add_num(o, "sigma_theory", j->sum.sigma_theory);
	add_num(o, "aux_se", j->sum.aux_se);
	add_num(o, "waste_se", j->sum.waste_se);
	add_num(o, "cost_se", j->sum.cost_se);
	add_num(o, "mu_se", j->sum.mu_se);
	add_num(o, "demand_skew", j->sum.skew);
	add_num(o, "storage_mean", j->sum.storage);
	if (j->policy == SIM_P_VARIANCE)
		cJSON_AddStringToObject(o, "supply_constraint", j->constraint);
	return o;
}

static void json_run(cJSON *root, const struct sim_plan *p, const struct sim_headline *h)
{
	const struct scenario *sc = p->sc;
	cJSON *run = cJSON_AddObjectToObject(root, "run");

	add_num(run, "slots", (double)sc->slots);
	add_num(run, "seed", (double)sc->seed);
	add_num(run, "slot_seconds", sc->slot_seconds);
	add_num(run, "tasks_per_slot", p->am.mean);
	add_num(run, "tasks_per_slot_variance", p->am.var);
	add_num(run, "storage_joules", sc->storage);
	cJSON_AddBoolToObject(run, "storage_unlimited", isinf(sc->storage));
	cJSON_AddStringToObject(run, "realiser", sc->how == REALISE_RANDOM ? "random" : "swrr");
	add_num(run, "elapsed_s", h->elapsed_s);
}

int sim_json_print(const struct sim_plan *p, const struct sim_headline *h)
{
	cJSON *root = cJSON_CreateObject();

	json_head(root, p);
	cJSON *pols = cJSON_AddArrayToObject(root, "policies");
	for (int q = 0; q < SIM_NPOL; q++)
		if (p->policies & sim_policy_bit[q])
			cJSON_AddItemToArray(pols, json_policy(p, h, q));
	add_num(root, "variance_vs_mean_cost_ratio", h->ratio_theory);
	add_num(root, "variance_vs_mean_cost_ratio_simulated", h->ratio_sim);
	add_num(root, "dynamic_vs_mean_cost_ratio_simulated", h->ratio_dyn);
	cJSON *sw = cJSON_AddArrayToObject(root, "sweep");
	for (int i = 0; i < p->n_jobs; i++)
		if (p->jobs[i].sweep)
			cJSON_AddItemToArray(sw, json_level(p, &p->jobs[i]));
	json_run(root, p, h);
	char *s = cJSON_Print(root);
	cJSON_Delete(root);
	if (!s)
		return -1;
	puts(s);
	free(s);
	return 0;
}

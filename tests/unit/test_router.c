/* Steering of "model": "auto" and of pools: the policies' choices against
 * the accuracy target and against policy_mean_only's weights, a pool's
 * choices within its models and its 503 when they cannot meet the target,
 * the estimates' guard against bad figures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "policy.h"
#include "router.h"
#include "scaling.h"
#include "scenario.h"

/* cmocka 1.1 has no assert_double_equal */
#define assert_double_equal(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static char dir[256];
static struct scenario sc;

/* The reference catalog (four models, four budgets), target 0.60. */
static const char scenario_text[] =
	"[scaling]\neta = 2e11\na0 = -2.523\na1 = 0.091\nbeta = 0.1086\na_max = 0.95\n"
	"[workload]\ntasks_per_slot = 20\nslot_seconds = 1\ninput_tokens = 500\n"
	"budgets = 256, 1024, 4096, 16384\nreasoning_sigma = 0.8\nreasoning_median = 0.5\n"
	"accuracy_target = 0.60\n"
	"[cost]\nc_a = 1\nc_w = 1\n"
	"[model 1.5B]\nparams = 1.5e9\n[model 8B]\nparams = 8e9\n"
	"[model 32B]\nparams = 32e9\n[model 70B]\nparams = 70e9\n";

static int setup(void **state)
{
	char path[300], err[512];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/erg-test-router-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/serve.ini", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(scenario_text, f);
	fclose(f);
	if (scenario_load(path, &sc, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char path[300];

	(void)state;
	scenario_free(&sc);
	snprintf(path, sizeof(path), "%s/serve.ini", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

static struct router *new_router(enum router_policy p)
{
	char err[512] = "";
	struct router *r = router_new(&sc, p, 0.0, NULL, 0, 0, err, sizeof(err));

	if (!r)
		fprintf(stderr, "router_new: %s\n", err);
	assert_non_null(r);
	return r;
}

static void test_policy_parse(void **state)
{
	static const char *const names[] = { "rr", "least", "energy", "variance" };
	enum router_policy p = ROUTER_RR;

	(void)state;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(router_policy_parse(names[i], &p), 0);
		assert_int_equal(p, i);
		assert_string_equal(router_policy_name(p), names[i]);
	}
	p = ROUTER_LEAST;
	assert_int_equal(router_policy_parse("Energy", &p), -1);
	assert_int_equal(router_policy_parse("", &p), -1);
	assert_int_equal(router_policy_parse("variance-aware", &p), -1);
	assert_int_equal(router_policy_parse(NULL, &p), -1);
	assert_int_equal(p, ROUTER_LEAST);	/* untouched on failure */
	assert_string_equal(router_policy_name((enum router_policy)7), "?");
}

/* rr and least pick only options that meet the target on their own; rr
 * goes through all of them in turn. */
static void test_rr_least_meet_target(void **state)
{
	enum router_policy ps[] = { ROUTER_RR, ROUTER_LEAST };
	int n_ok = 0;

	(void)state;
	for (int i = 0; i < sc.n_opts; i++)
		n_ok += sc.opts[i].acc >= sc.acc_target;
	assert_true(n_ok > 1 && n_ok < sc.n_opts);	/* the test means something */
	for (int k = 0; k < 2; k++) {
		struct router *r = new_router(ps[k]);
		int seen[SCEN_MAX_OPTIONS] = { 0 };

		for (int i = 0; i < 40 * n_ok; i++) {
			struct router_choice c;

			assert_int_equal(router_choose(r, 0, 0.001 * i, &c), 0);
			assert_true(c.option >= 0 && c.option < sc.n_opts);
			assert_true(sc.opts[c.option].acc >= sc.acc_target);
			assert_int_equal(c.model, sc.opts[c.option].model);
			assert_int_equal(c.budget, (unsigned)sc.opts[c.option].budget);
			seen[c.option]++;
			router_release(r, c.option);
		}
		if (ps[k] == ROUTER_RR)
			for (int i = 0; i < sc.n_opts; i++)
				assert_int_equal(seen[i], sc.opts[i].acc >= sc.acc_target ? 40 : 0);
		router_free(r);
	}
}

/* least: the model with the fewest auto requests outstanding. */
static void test_least_spreads(void **state)
{
	struct router *r = new_router(ROUTER_LEAST);
	int models[SCEN_MAX_MODELS] = { 0 }, n_models = 0;
	struct router_choice c;

	(void)state;
	for (int i = 0; i < sc.n_models; i++) {
		bool any = false;

		for (int o = 0; o < sc.n_opts; o++)
			any |= sc.opts[o].model == i && sc.opts[o].acc >= sc.acc_target;
		n_models += any;
	}
	assert_true(n_models >= 2);
	for (int i = 0; i < 4 * n_models; i++) {	/* none released: they spread evenly */
		assert_int_equal(router_choose(r, 0, 0.0, &c), 0);
		models[c.model]++;
	}
	for (int i = 0; i < sc.n_models; i++)
		assert_true(models[i] == 0 || models[i] == 4);
	router_free(r);
}

/* The mix policies meet the target on average: the expected accuracy of
 * what they routed, and the mix's own. */
static void test_mix_policies_meet_target(void **state)
{
	enum router_policy ps[] = { ROUTER_ENERGY, ROUTER_VARIANCE };

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct router *r = new_router(ps[k]);
		struct router_view v;
		struct router_choice c;
		double acc = 0.0;
		int n = 4000;

		router_view(r, 0, &v);
		assert_true(v.feasible);
		assert_true(isnan(v.expected_accuracy));
		for (int i = 0; i < n; i++) {
			/* 20 a second, the scenario's rate, so slots roll over */
			assert_int_equal(router_choose(r, 0, i / 20.0, &c), 0);
			acc += sc.opts[c.option].acc;
			router_release(r, c.option);
		}
		router_view(r, 0, &v);
		assert_int_equal(v.routed, (uint64_t)n);
		assert_int_equal(v.refused, 0);
		assert_double_equal(v.expected_accuracy, acc / n, 1e-9);
		assert_true(v.expected_accuracy >= sc.acc_target - 0.01);
		router_free(r);
	}
}

/* energy: the shares routed are policy_mean_only's weights, as SWRR
 * realises them: within (options in the mix)/n of each weight. */
static void test_energy_shares_match_mean_only(void **state)
{
	struct router *r = new_router(ROUTER_ENERGY);
	struct policy_problem pb = {
		.opts = sc.opts, .n_opts = sc.n_opts, .acc_target = sc.acc_target, .mu_max = INFINITY,
		.arr = { .mean = sc.arrivals.per_slot, .var = sc.arrivals.per_slot }, .how = REALISE_SWRR,
		.c_e = sc.c_e, .c_a = sc.c_a, .c_w = sc.c_w,
	};
	struct mix mx;
	uint64_t count[SCEN_MAX_OPTIONS] = { 0 };
	const int n = 10007;

	(void)state;
	assert_int_equal(policy_mean_only(&pb, &mx), 0);
	assert_true(mx.n >= 2);	/* a real mix, not one option */
	for (int i = 0; i < n; i++) {
		struct router_choice c;

		assert_int_equal(router_choose(r, 0, 0.0, &c), 0);
		count[c.option]++;
	}
	for (int i = 0; i < sc.n_opts; i++) {
		struct router_option_view ov;
		double w = 0.0;

		for (int k = 0; k < mx.n; k++)
			if (mx.opt[k] == i)
				w = mx.w[k];
		assert_int_equal(router_option_view(r, 0, i, &ov), 0);
		assert_double_equal(ov.weight, w, 1e-9);
		assert_int_equal(ov.routed, count[i]);
		assert_double_equal(ov.share, (double)count[i] / n, 1e-12);
		assert_true(fabs((double)count[i] / n - w) <= (double)mx.n / n);
	}
	assert_int_equal(router_option_view(r, 0, -1, &(struct router_option_view){ 0 }), -1);
	assert_int_equal(router_option_view(r, 0, sc.n_opts, &(struct router_option_view){ 0 }), -1);
	router_free(r);
}

/* NaN, <= 0, infinite and absurd figures never reach the estimate. */
static void test_measured_rejects_bad(void **state)
{
	struct router *r = new_router(ROUTER_ENERGY);
	struct router_option_view ov;
	double prior = sc.opts[0].m;

	(void)state;
	assert_false(router_measured(r, 0, NAN));
	assert_false(router_measured(r, 0, 0.0));
	assert_false(router_measured(r, 0, -1.0));
	assert_false(router_measured(r, 0, INFINITY));
	assert_false(router_measured(r, 0, prior * ROUTER_ABSURD * 2.0));
	assert_false(router_measured(r, -1, prior));
	assert_false(router_measured(r, sc.n_opts, prior));
	assert_int_equal(router_option_view(r, 0, 0, &ov), 0);
	assert_int_equal(ov.measured, 0);
	assert_int_equal(ov.rejected, 5);
	for (int i = 0; i < 20; i++)
		assert_true(router_measured(r, 0, 2.0 * prior));
	assert_false(router_measured(r, 0, 2.0 * prior * ROUTER_ABSURD * 2.0));
	router_slot(r, &(struct router_ledger){ .now_s = 1.0 });
	assert_int_equal(router_option_view(r, 0, 0, &ov), 0);
	assert_int_equal(ov.measured, 20);
	assert_int_equal(ov.rejected, 6);
	/* 20 measurements of 2x the prior, the prior counted as 5 */
	double want = (ROUTER_PRIOR_WEIGHT * 2.0 * prior + 20 * 2.0 * prior) / (ROUTER_PRIOR_WEIGHT + 20);
	assert_double_equal(ov.j_mean, want, 1e-9 * want);
	/* options not measured yet scale with what measured ones cost */
	assert_int_equal(router_option_view(r, 0, 1, &ov), 0);
	assert_double_equal(ov.j_mean, 2.0 * sc.opts[1].m, 1e-9 * sc.opts[1].m);
	router_free(r);
}

static void test_track_take(void **state)
{
	struct router *r = new_router(ROUTER_ENERGY);

	(void)state;
	router_track(r, 42, 3);
	router_track(r, 43, 5);
	assert_int_equal(router_take(r, 42), 3);
	assert_int_equal(router_take(r, 42), -1);	/* forgotten */
	assert_int_equal(router_take(r, 44), -1);
	assert_int_equal(router_take(r, 43), 5);
	router_free(r);
}

/* Many decisions, slots rolling and the optimiser re-run between them:
 * nothing allocated on the hot path, every answer valid. */
static void test_choose_many_no_alloc(void **state)
{
	enum router_policy ps[] = { ROUTER_RR, ROUTER_LEAST, ROUTER_ENERGY, ROUTER_VARIANCE };

	(void)state;
	for (int k = 0; k < 4; k++) {
		struct router *r = new_router(ps[k]);
		struct router_choice c;
		double t = 0.0;

		for (int s = 0; s < 20; s++) {
			router_slot(r, &(struct router_ledger){ .now_s = t, .supply_per_slot = 15000.0 });
			struct mallinfo2 before = mallinfo2();
			for (int i = 0; i < 5000; i++, t += 0.01) {
				assert_int_equal(router_choose(r, 0, t, &c), 0);
				assert_true(c.option >= 0 && c.option < sc.n_opts);
				router_measured(r, c.option, sc.opts[c.option].m);
				router_release(r, c.option);
			}
			struct mallinfo2 after = mallinfo2();
			assert_int_equal(after.uordblks, before.uordblks);
		}
		router_free(r);
	}
}

/* A pool chooses only among its models' options, under every policy; a
 * pool whose models cannot reach the target refuses (503) and says so,
 * while "auto" beside it still routes. */
static void test_pools(void **state)
{
	const enum router_policy pols[] = { ROUTER_RR, ROUTER_LEAST, ROUTER_ENERGY, ROUTER_VARIANCE };
	/* 1.5B and 8B (8B@16384 reaches 0.60); 1.5B alone (it does not) */
	const uint32_t pools[2] = { 1u << 0 | 1u << 1, 1u << 0 };
	char err[512] = "";

	(void)state;
	for (size_t p = 0; p < sizeof(pols) / sizeof(pols[0]); p++) {
		struct router *r = router_new(&sc, pols[p], 0.0, pools, 2, 0, err, sizeof(err));
		struct router_choice c;
		struct router_view v;
		double acc = 0.0;
		int n = 200;

		assert_non_null(r);
		assert_int_equal(router_groups(r), 3);
		for (int i = 0; i < n; i++) {
			assert_int_equal(router_choose(r, 1, i / 20.0, &c), 0);
			assert_true(c.model == 0 || c.model == 1);
			acc += sc.opts[c.option].acc;
			router_release(r, c.option);
		}
		/* the mix policies meet the target on average, rr and least per request */
		assert_true(acc / n >= sc.acc_target - 0.01);
		router_view(r, 1, &v);
		assert_true(v.feasible);
		assert_int_equal(v.routed, (uint64_t)n);
		/* the options of 32B and 70B are not the pool's */
		for (int i = 0; i < sc.n_opts; i++) {
			struct router_option_view ov;

			assert_int_equal(router_option_view(r, 1, i, &ov) == 0, sc.opts[i].model <= 1);
			assert_int_equal(router_option_view(r, 2, i, &ov) == 0, sc.opts[i].model == 0);
		}
		for (int i = 0; i < 5; i++)
			assert_int_equal(router_choose(r, 2, 0.0, &c), -1);
		router_view(r, 2, &v);
		assert_false(v.feasible);
		assert_int_equal(v.refused, 5);
		assert_int_equal(v.routed, 0);
		assert_int_equal(router_choose(r, 0, 0.0, &c), 0);
		router_view(r, 0, &v);
		assert_true(v.feasible);
		assert_int_equal(v.routed, 1);
		assert_int_equal(v.refused, 0);
		assert_int_equal(router_choose(r, 3, 0.0, &c), -1);	/* no such group */
		router_free(r);
	}
}

/* Estimates are the router's: what a pool's requests measured moves the
 * estimate "auto" routes on. */
static void test_pool_estimates_shared(void **state)
{
	const uint32_t pools[1] = { 1u << 1 };	/* 8B */
	struct router *r = router_new(&sc, ROUTER_ENERGY, 0.0, pools, 1, 0, NULL, 0);
	struct router_option_view before, after;
	int o = -1;

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < sc.n_opts && o < 0; i++)
		if (sc.opts[i].model == 1)
			o = i;
	assert_int_equal(router_option_view(r, 0, o, &before), 0);
	for (int i = 0; i < 50; i++)
		assert_true(router_measured(r, o, 3.0 * before.j_mean));
	router_slot(r, NULL);
	assert_int_equal(router_option_view(r, 0, o, &after), 0);
	assert_true(after.j_mean > 2.0 * before.j_mean);
	assert_int_equal(router_option_view(r, 1, o, &before), 0);
	assert_double_equal(before.j_mean, after.j_mean, 1e-9);
	router_free(r);
}

/* Mean J per request of a group's mix now. */
static double mix_joules(struct router *r, int group)
{
	struct router_view v;
	double j = 0.0;

	router_view(r, group, &v);
	for (int i = 0; i < v.n_opts; i++) {
		struct router_option_view ov;

		if (!router_option_view(r, group, i, &ov))
			j += ov.weight * ov.j_mean;
	}
	return j;
}

/* between_budgets: budgets between the listed ones are options, after the
 * listed ones; their priors follow their neighbours' measurements; the
 * mean-only mix with them costs no more than without. */
static void test_between_budgets(void **state)
{
	struct router *r = router_new(&sc, ROUTER_ENERGY, 0.0, NULL, 0, 1, NULL, 0);
	struct router *listed = router_new(&sc, ROUTER_ENERGY, 0.0, NULL, 0, 0, NULL, 0);
	struct router_view v;
	struct router_option_view lo, mid, hi;

	(void)state;
	assert_non_null(r);
	assert_non_null(listed);
	router_view(r, 0, &v);
	assert_int_equal(v.n_opts, sc.n_opts + 4 * 3);	/* 256|512|1024|2048|4096|8192|16384 */
	for (int i = sc.n_opts; i < v.n_opts; i++) {
		assert_int_equal(router_option_view(r, 0, i, &mid), 0);
		int k = 0;
		while (!(sc.opts[k].model == mid.model && sc.opts[k + 1].model == mid.model &&
			 sc.opts[k].budget < mid.budget && sc.opts[k + 1].budget > mid.budget))
			k++;	/* its two neighbours (the test fails past the end) */
		assert_double_equal(mid.budget, sqrt(sc.opts[k].budget * sc.opts[k + 1].budget), 0.5);
		assert_true(mid.acc > sc.opts[k].acc && mid.acc < sc.opts[k + 1].acc);
		assert_true(mid.j_mean > sc.opts[k].m && mid.j_mean < sc.opts[k + 1].m);
	}
	assert_true(mix_joules(r, 0) <= mix_joules(listed, 0) + 1e-9);

	/* 8B@1024 measured at 3x its prior, 8B@4096 at its prior: 8B@2048,
	 * never measured, sits where the law puts it between the two
	 * estimates, not at its own prior times the machine's scale */
	int a = -1, b = -1, m = -1;
	for (int i = 0; i < v.n_opts; i++) {
		assert_int_equal(router_option_view(r, 0, i, &mid), 0);
		if (mid.model == 1 && mid.budget == 1024)
			a = i;
		if (mid.model == 1 && mid.budget == 4096)
			b = i;
		if (mid.model == 1 && mid.budget == 2048)
			m = i;
	}
	assert_true(a >= 0 && b >= 0 && m >= sc.n_opts);
	for (int n = 0; n < 200; n++) {
		assert_true(router_measured(r, a, 3.0 * sc.opts[a].m));
		assert_true(router_measured(r, b, sc.opts[b].m));
	}
	router_slot(r, NULL);
	assert_int_equal(router_option_view(r, 0, a, &lo), 0);
	assert_int_equal(router_option_view(r, 0, b, &hi), 0);
	assert_int_equal(router_option_view(r, 0, m, &mid), 0);
	assert_int_equal(mid.measured, 0);
	struct task_option law;
	scaling_option(&sc.sp, &sc.models[1], 1, 2048, &law);
	double f = (law.m - sc.opts[a].m) / (sc.opts[b].m - sc.opts[a].m);
	double want = lo.j_mean + f * (hi.j_mean - lo.j_mean);
	assert_double_equal(mid.j_mean, want, 1e-9 * want);
	double scale = (3.0 * sc.opts[a].m + sc.opts[b].m) / (sc.opts[a].m + sc.opts[b].m);
	assert_true(fabs(mid.j_mean - law.m * scale) > 0.05 * want);
	router_free(r);
	router_free(listed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_parse),
		cmocka_unit_test(test_rr_least_meet_target),
		cmocka_unit_test(test_least_spreads),
		cmocka_unit_test(test_mix_policies_meet_target),
		cmocka_unit_test(test_energy_shares_match_mean_only),
		cmocka_unit_test(test_measured_rejects_bad),
		cmocka_unit_test(test_track_take),
		cmocka_unit_test(test_choose_many_no_alloc),
		cmocka_unit_test(test_pools),
		cmocka_unit_test(test_between_budgets),
		cmocka_unit_test(test_pool_estimates_shared),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* docs/theory.md §5: exact optimisers against brute-force grid search, the mix
 * realiser, and the dynamic ledger-feedback policy. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "policy.h"
#include "rng.h"
#include "scaling.h"

#define CLOSE(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

/* Random catalog: accuracy and mean loosely increasing together, noise
 * varying a lot, so that mean-only and variance-aware disagree often. */
static void random_catalog(struct rng *r, struct task_option *o, int n)
{
	for (int i = 0; i < n; i++) {
		double m = 10.0 * exp(3.0 * rng_uniform(r));
		o[i] = (struct task_option){
			.model = i % 3,
			.m = m,
			.acc = fmin(0.95, 0.1 + 0.15 * log(m / 10.0) + 0.25 * rng_uniform(r)),
			.v = m * m * (0.02 + 1.5 * rng_uniform(r) * rng_uniform(r)),
		};
		o[i].s = o[i].m * o[i].m + o[i].v;
	}
}

static void to_dense(const struct mix *m, int n, double *p)
{
	memset(p, 0, sizeof(double) * n);
	for (int i = 0; i < m->n; i++)
		p[m->opt[i]] += m->w[i];
}

/* Minimum of the objective over a simplex grid with step 1/steps. mode 0:
 * mean; 1: variance-aware objective. Returns INFINITY if no grid point is
 * feasible. */
static double grid_min(const struct policy_problem *pb, int mode, int steps)
{
	int n = pb->n_opts;
	double best = INFINITY, p[4];
	int k[4];

	for (k[0] = 0; k[0] <= steps; k[0]++)
		for (k[1] = 0; k[1] <= (n > 1 ? steps - k[0] : 0); k[1]++)
			for (k[2] = 0; k[2] <= (n > 2 ? steps - k[0] - k[1] : 0); k[2]++) {
				int used = k[0] + k[1] + k[2];
				if (n == 4)
					k[3] = steps - used;
				else if (used != steps)
					continue;
				for (int i = 0; i < n; i++)
					p[i] = (double)k[i] / steps;
				double mu, var, acc;
				policy_dense_moments(pb, p, &mu, &var, &acc);
				if (acc < pb->acc_target || mu > pb->mu_max)
					continue;
				double obj = mode ? policy_objective_dense(pb, p) : mu;
				if (obj < best)
					best = obj;
			}
	return best;
}

static void check_against_grid(struct policy_problem *pb, int *checked)
{
	struct mix m;
	double p[4], mu, var, acc;

	for (int mode = 0; mode < 2; mode++) {
		double g = grid_min(pb, mode, 120);
		int rc = mode ? policy_variance_aware(pb, &m) : policy_mean_only(pb, &m);
		if (isinf(g)) {
			/* the grid found nothing; the optimiser may find a thin
			 * feasible sliver, but then it must be feasible */
			if (rc == 0) {
				policy_mix_moments(pb, &m, &mu, &var, &acc);
				assert_true(acc >= pb->acc_target - 1e-7);
			}
			continue;
		}
		assert_int_equal(rc, 0);
		to_dense(&m, pb->n_opts, p);
		policy_dense_moments(pb, p, &mu, &var, &acc);
		/* feasible... */
		assert_true(acc >= pb->acc_target - 1e-7);
		assert_true(mu <= pb->mu_max * (1 + 1e-9));
		assert_true(m.n >= 1 && m.n <= 3);
		/* ...and no grid point beats it */
		double obj = mode ? policy_objective_dense(pb, p) : mu;
		assert_true(obj <= g * (1 + 1e-9) + 1e-12);
		(*checked)++;
	}
}

static void test_optimisers_vs_grid(void **state)
{
	(void)state;
	struct rng r;
	struct task_option o[4];
	int checked = 0;

	rng_seed(&r, 2024, 0);
	for (int trial = 0; trial < 60; trial++) {
		int n = 3 + trial % 2;
		random_catalog(&r, o, n);
		double amin = 1, amax = 0;
		for (int i = 0; i < n; i++) {
			amin = fmin(amin, o[i].acc);
			amax = fmax(amax, o[i].acc);
		}
		struct policy_problem pb = {
			.opts = o, .n_opts = n,
			.acc_target = amin + (amax - amin) * (0.2 + 0.6 * rng_uniform(&r)),
			.mu_max = INFINITY,
			.arr = { 20, trial % 3 == 2 ? 60 : 20 },
			.how = trial % 4 < 2 ? REALISE_SWRR : REALISE_RANDOM,
			.c_e = (trial % 5 == 0) ? 0.0 : 0.05 * rng_uniform(&r),
			.c_a = 1 + 2 * rng_uniform(&r), .c_w = 1,
			.storage = trial % 6 == 5 ? 200.0 * (1 + rng_uniform(&r)) : 0.0,
		};
		check_against_grid(&pb, &checked);
		/* with the supply constraint halfway between the two optima */
		struct mix mm;
		double mu_m;
		if (policy_mean_only(&pb, &mm) == 0) {
			policy_mix_moments(&pb, &mm, &mu_m, NULL, NULL);
			pb.mu_max = mu_m * (1.0 + 0.3 * rng_uniform(&r));
			check_against_grid(&pb, &checked);
		}
	}
	assert_true(checked > 150);
}

static void test_variance_never_worse(void **state)
{
	(void)state;
	struct rng r;
	struct task_option o[24];
	int strictly_better = 0, triples = 0;

	rng_seed(&r, 99, 0);
	for (int trial = 0; trial < 300; trial++) {
		int n = 4 + trial % 20;
		random_catalog(&r, o, n);
		struct policy_problem pb = {
			.opts = o, .n_opts = n, .acc_target = 0.45, .mu_max = INFINITY,
			.arr = { 20, 20 }, .how = trial % 2 ? REALISE_RANDOM : REALISE_SWRR,
			.c_e = trial % 3 ? 0.0 : 0.01, .c_a = 1, .c_w = 1,
			.storage = trial % 7 == 3 ? 500.0 : 0.0,
		};
		struct mix mm, mv;
		if (policy_mean_only(&pb, &mm))
			continue;
		assert_int_equal(policy_variance_aware(&pb, &mv), 0);
		double am, av, mum, muv;
		policy_mix_moments(&pb, &mm, &mum, NULL, &am);
		policy_mix_moments(&pb, &mv, &muv, NULL, &av);
		/* equal accuracy: both meet the target (mean-only exactly, when binding) */
		assert_true(am >= 0.45 - 1e-9 && av >= 0.45 - 1e-9);
		double jm = policy_objective(&pb, &mm), jv = policy_objective(&pb, &mv);
		assert_true(jv <= jm * (1 + 1e-12) + 1e-12);
		/* and mean-only really has the least mean */
		assert_true(mum <= muv * (1 + 1e-12) + 1e-12);
		strictly_better += jv < jm * (1 - 1e-6);
		triples += mv.n == 3;
	}
	/* mixes of three options do occur (the accuracy-binding case) */
	assert_true(triples > 0);
	/* the random catalogs are built so that the policies differ often */
	assert_true(strictly_better > 30);
}

static void test_infeasible_and_trivial(void **state)
{
	(void)state;
	struct task_option o[2] = {
		{ .m = 10, .v = 1, .s = 101, .acc = 0.4 },
		{ .m = 50, .v = 9, .s = 2509, .acc = 0.6 },
	};
	struct policy_problem pb = { .opts = o, .n_opts = 2, .acc_target = 0.7, .mu_max = INFINITY,
				     .arr = { 10, 10 }, .c_a = 1, .c_w = 1 };
	struct mix m;
	assert_int_equal(policy_mean_only(&pb, &m), -1);
	assert_int_equal(policy_variance_aware(&pb, &m), -1);
	/* target 0.5: the LP mixes the two half and half */
	pb.acc_target = 0.5;
	assert_int_equal(policy_mean_only(&pb, &m), 0);
	assert_int_equal(m.n, 2);
	CLOSE(m.w[0], 0.5, 1e-12);
	CLOSE(m.w[1], 0.5, 1e-12);
	/* a supply below the cheapest feasible mean is infeasible */
	pb.mu_max = 10 * 29.0;
	assert_int_equal(policy_mean_only(&pb, &m), -1);
	/* below every option's accuracy: the cheapest alone */
	pb.mu_max = INFINITY;
	pb.acc_target = 0.1;
	assert_int_equal(policy_mean_only(&pb, &m), 0);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.opt[0], 0);
	/* one option */
	pb.n_opts = 1;
	assert_int_equal(policy_variance_aware(&pb, &m), 0);
	assert_int_equal(m.opt[0], 0);
	CLOSE(m.w[0], 1.0, 0);
}

static void test_volatility_price(void **state)
{
	(void)state;
	struct policy_problem pb = { .c_a = 1, .c_w = 1 };
	/* docs/theory.md §4.2: kappa = 2 phi(0) */
	CLOSE(policy_volatility_cost(&pb, 100.0), 79.78845608, 1e-6);
	/* docs/theory.md §4.3 with C = 1000 */
	pb.storage = 1000.0;
	CLOSE(policy_volatility_cost(&pb, 100.0), 2.0 * 1e4 / (2.0 * (1000.0 + 116.5194316)), 1e-6);
	pb.storage = INFINITY;
	CLOSE(policy_volatility_cost(&pb, 100.0), 0.0, 0);
}

static void test_swrr(void **state)
{
	(void)state;
	int opt[3] = { 7, 2, 5 };
	double w[3] = { 0.5, 0.3, 0.2 };
	struct swrr rr;
	int count[8] = { 0 };

	assert_int_equal(swrr_init(&rr, opt, w, 3), 0);
	for (int t = 1; t <= 1000; t++) {
		count[swrr_next(&rr)]++;
		/* every prefix within one task of its share */
		for (int i = 0; i < 3; i++)
			assert_true(fabs(count[opt[i]] - w[i] * t) < 1.0 + 1e-9);
	}
	assert_int_equal(count[7], 500);
	assert_int_equal(count[2], 300);
	assert_int_equal(count[5], 200);
	/* deterministic: a second realiser gives the same sequence */
	struct swrr a, b;
	swrr_init(&a, opt, w, 3);
	swrr_init(&b, opt, w, 3);
	for (int t = 0; t < 100; t++)
		assert_int_equal(swrr_next(&a), swrr_next(&b));
	/* zero weights are skipped; no positive weight is an error */
	double w0[3] = { 0, 1, 0 };
	swrr_init(&rr, opt, w0, 3);
	for (int t = 0; t < 10; t++)
		assert_int_equal(swrr_next(&rr), 2);
	double wz[3] = { 0, 0, 0 };
	assert_int_equal(swrr_init(&rr, opt, wz, 3), -1);
	assert_int_equal(swrr_init(&rr, opt, w, 0), -1);
}

static const struct scaling_params ref = {
	.eta = 2e11, .a0 = -2.523, .a1 = 0.091, .beta = 0.1086, .a_max = 0.95,
	.input_tokens = 500, .reasoning_sigma = 0.8, .reasoning_median = 0.5,
};

static int reference_catalog(struct task_option *o)
{
	const double params[4] = { 1.5e9, 8e9, 32e9, 70e9 }, budgets[4] = { 256, 1024, 4096, 16384 };
	int n = 0;
	for (int k = 0; k < 4; k++) {
		struct model_spec m = { .params = params[k], .reasoning_sigma = -1 };
		for (int j = 0; j < 4; j++)
			scaling_option(&ref, &m, k, budgets[j], &o[n++]);
	}
	return n;
}

static void test_ladder(void **state)
{
	(void)state;
	struct task_option o[16];
	int n = reference_catalog(o);
	struct ladder l;

	assert_int_equal(policy_ladder(o, n, &l), 0);
	assert_true(l.n >= 3);
	for (int i = 1; i < l.n; i++) {
		assert_true(l.acc[i] > l.acc[i - 1] && l.m[i] > l.m[i - 1]);
		if (i >= 2) {	/* concave: slopes fall */
			double s1 = (l.acc[i - 1] - l.acc[i - 2]) / (l.m[i - 1] - l.m[i - 2]);
			double s2 = (l.acc[i] - l.acc[i - 1]) / (l.m[i] - l.m[i - 1]);
			assert_true(s2 <= s1);
		}
	}
	/* ends: the cheapest option and the most accurate one */
	double cheapest = INFINITY, best = 0;
	for (int i = 0; i < n; i++) {
		cheapest = fmin(cheapest, o[i].m);
		best = fmax(best, o[i].acc);
	}
	CLOSE(l.m[0], cheapest, 0);
	CLOSE(l.acc[l.n - 1], best, 0);
	/* no option lies above the frontier */
	for (int i = 0; i < n; i++)
		assert_true(o[i].acc <= ladder_acc_at(&l, o[i].m) + 1e-12);
	/* the mean-only optimum at 0.6 is on the frontier */
	struct policy_problem pb = { .opts = o, .n_opts = n, .acc_target = 0.6, .mu_max = INFINITY,
				     .arr = { 20, 20 }, .c_a = 1, .c_w = 1 };
	struct mix m;
	double mu;
	assert_int_equal(policy_mean_only(&pb, &m), 0);
	policy_mix_moments(&pb, &m, &mu, NULL, NULL);
	CLOSE(ladder_acc_at(&l, mu / 20.0), 0.6, 1e-9);
}

static void test_dynamic_policy(void **state)
{
	(void)state;
	struct task_option o[16];
	int n = reference_catalog(o);
	struct dyn_policy dp = { .acc_target = 0.6, .horizon_tasks = 200, .max_dip = 0.1 };
	policy_ladder(o, n, &dp.ladder);

	/* pure: same state, same choice */
	struct dyn_input in = { .supply_left = 20 * 745.0, .tasks_left = 20, .acc_credit = 0, .dither = 0.01 };
	struct dyn_choice a, b;
	policy_dynamic(&dp, &in, &a);
	policy_dynamic(&dp, &in, &b);
	assert_int_equal(a.opt, b.opt);
	CLOSE(a.dither, b.dither, 0);

	/* surplus raises the goal; shortage cannot push it below the floor */
	struct dyn_input rich = in, poor = in;
	rich.supply_left *= 3;
	poor.supply_left = 0;
	policy_dynamic(&dp, &rich, &a);
	policy_dynamic(&dp, &poor, &b);
	assert_true(a.goal > 0.6 + 0.01);
	CLOSE(b.goal, 0.6, 1e-12);
	/* banked credit lets a shortage cut below target; debt lifts the floor */
	poor.acc_credit = 200 * 0.05;
	policy_dynamic(&dp, &poor, &b);
	CLOSE(b.goal, 0.55, 1e-12);
	poor.acc_credit = -1e6;
	policy_dynamic(&dp, &poor, &b);
	CLOSE(b.goal, 0.7, 1e-12);	/* capped by max_dip */

	/* the choices average to the goal: run the state forward */
	struct dyn_input st = { .supply_left = 0, .tasks_left = 1 };
	double acc = 0;
	int adjacent = 1;
	for (int t = 0; t < 5000; t++) {
		struct dyn_choice ch;
		policy_dynamic(&dp, &st, &ch);
		acc += o[ch.opt].acc;
		st.acc_credit += o[ch.opt].acc - 0.6;
		st.dither = ch.dither;
		/* only the two rungs around 0.6 are used */
		adjacent &= o[ch.opt].acc >= 0.45 && o[ch.opt].acc <= 0.61;
	}
	CLOSE(acc / 5000, 0.6, 1e-3);
	assert_true(adjacent);
}

/* The decision table: priced to the target, cheaper rungs when the slot
 * is over its supply than when it is under, and the frontier's inverse. */
static void test_dynamic_table(void **state)
{
	(void)state;
	struct task_option o[16];
	int n = reference_catalog(o);
	struct dyn_policy dp = { .acc_target = 0.6, .horizon_tasks = 2000, .max_dip = 0.1 };
	struct dyn_table t;
	policy_ladder(o, n, &dp.ladder);
	for (int k = 0; k < dp.ladder.n; k++)
		CLOSE(ladder_m_at(&dp.ladder, dp.ladder.acc[k]), dp.ladder.m[k], 1e-9 * dp.ladder.m[k]);
	assert_int_equal(policy_dynamic_table(&t, &dp.ladder, 0.6, 20, 14882, 0.217 * 3760.0 * 3760.0,
					      1, 1), 0);
	CLOSE(t.achieved, 0.6, 1e-3);
	assert_true(t.price > 0 && t.j_per_acc > 0);
	dp.table = &t;
	struct dyn_input rich = { .supply_left = 14882, .tasks_left = 5 };
	struct dyn_input poor = { .supply_left = -2000, .tasks_left = 5 };
	struct dyn_choice a, b, c;
	policy_dynamic(&dp, &rich, &a);
	policy_dynamic(&dp, &poor, &b);
	policy_dynamic(&dp, &rich, &c);
	assert_true(o[a.opt].m > o[b.opt].m);
	assert_int_equal(a.opt, c.opt);	/* state in, choice out */
	/* debt makes a slot look richer */
	struct dyn_input mid = { .supply_left = 14882 * 0.25, .tasks_left = 5 }, owed = mid;
	owed.acc_credit = -2000 * 0.05;
	policy_dynamic(&dp, &mid, &a);
	policy_dynamic(&dp, &owed, &b);
	assert_true(o[b.opt].m >= o[a.opt].m);
	policy_dynamic_table_free(&t);
	/* workloads it does not model are refused, not approximated */
	assert_int_equal(policy_dynamic_table(&t, &dp.ladder, 0.6, 1e4, 14882, 1e6, 1, 1), -1);
	assert_null(t.rung);
}

static void test_large_catalog(void **state)
{
	(void)state;
	struct rng r;
	static struct task_option o[256];

	rng_seed(&r, 5, 0);
	random_catalog(&r, o, 256);
	struct policy_problem pb = { .opts = o, .n_opts = 256, .acc_target = 0.5, .mu_max = INFINITY,
				     .arr = { 20, 20 }, .c_a = 1, .c_w = 1 };
	struct mix mm, mv;
	assert_int_equal(policy_mean_only(&pb, &mm), 0);
	assert_int_equal(policy_variance_aware(&pb, &mv), 0);
	assert_true(policy_objective(&pb, &mv) <= policy_objective(&pb, &mm) * (1 + 1e-12));
	/* the optimum over all pairs and triples beats any random 3-mix */
	double best = policy_objective(&pb, &mv);
	for (int t = 0; t < 20000; t++) {
		struct mix m = { .n = 3 };
		double s = 0;
		for (int j = 0; j < 3; j++) {
			m.opt[j] = (int)(rng_uniform(&r) * 256);
			m.w[j] = rng_exponential(&r);
			s += m.w[j];
		}
		for (int j = 0; j < 3; j++)
			m.w[j] /= s;
		double acc;
		policy_mix_moments(&pb, &m, NULL, NULL, &acc);
		if (acc >= 0.5)
			assert_true(policy_objective(&pb, &m) >= best * (1 - 1e-12));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_optimisers_vs_grid),
		cmocka_unit_test(test_variance_never_worse),
		cmocka_unit_test(test_infeasible_and_trivial),
		cmocka_unit_test(test_volatility_price),
		cmocka_unit_test(test_swrr),
		cmocka_unit_test(test_ladder),
		cmocka_unit_test(test_dynamic_policy),
		cmocka_unit_test(test_large_catalog),
		cmocka_unit_test(test_dynamic_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* docs/theory.md §1 cost model and §2 variance decomposition. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "rng.h"
#include "scaling.h"

#define CLOSE(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

/* E[min(X,c)^k] by Simpson's rule over z, independent of the closed form */
static double capped_numeric(double mu, double sigma, double cap, int k)
{
	int n = 40000;
	double lo = -10.0, hi = 10.0, h = (hi - lo) / n, s = 0.0;
	for (int i = 0; i <= n; i++) {
		double z = lo + i * h;
		double x = exp(mu + sigma * z);
		if (x > cap)
			x = cap;
		double f = pow(x, k) * exp(-0.5 * z * z) / sqrt(2 * M_PI);
		s += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
	}
	return s * h / 3.0;
}

static void test_capped_lognormal(void **state)
{
	(void)state;
	const double cases[][3] = {
		{ log(512.0), 0.8, 1024.0 },	/* the reference: median half the budget */
		{ log(100.0), 0.3, 1000.0 },	/* cap far in the tail */
		{ log(100.0), 1.5, 50.0 },	/* cap below the median */
		{ 0.0, 2.0, 3.0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double m1, m2;
		capped_lognormal_moments(cases[i][0], cases[i][1], cases[i][2], &m1, &m2);
		double n1 = capped_numeric(cases[i][0], cases[i][1], cases[i][2], 1);
		double n2 = capped_numeric(cases[i][0], cases[i][1], cases[i][2], 2);
		CLOSE(m1, n1, 1e-7 * n1);
		CLOSE(m2, n2, 1e-7 * n2);
		assert_true(m1 <= cases[i][2] && m2 >= m1 * m1);
	}
	/* no cap: the lognormal moments */
	double m1, m2;
	capped_lognormal_moments(1.0, 0.5, INFINITY, &m1, &m2);
	CLOSE(m1, exp(1.0 + 0.125), 1e-12);
	CLOSE(m2, exp(2.0 + 0.5), 1e-11);
	/* no noise: the median, capped */
	capped_lognormal_moments(log(10.0), 0.0, 8.0, &m1, &m2);
	CLOSE(m1, 8.0, 1e-12);
	CLOSE(m2, 64.0, 1e-12);
	/* Monte Carlo, a second independent check (8 standard errors) */
	struct rng r;
	rng_seed(&r, 7, 0);
	double s1 = 0, s2 = 0;
	int n = 400000;
	for (int i = 0; i < n; i++) {
		double x = fmin(rng_lognormal(&r, log(512.0), 0.8), 1024.0);
		s1 += x;
		s2 += x * x;
	}
	capped_lognormal_moments(log(512.0), 0.8, 1024.0, &m1, &m2);
	double se = sqrt((m2 - m1 * m1) / n);
	CLOSE(s1 / n, m1, 8 * se);
}

static const struct scaling_params ref = {
	.eta = 2e11, .a0 = -2.523, .a1 = 0.091, .beta = 0.1086, .a_max = 0.95,
	.input_tokens = 500, .reasoning_sigma = 0.8, .reasoning_median = 0.5,
};

static void test_accuracy_law(void **state)
{
	(void)state;
	/* intercept linear in ln N; +beta per e-fold of budget */
	CLOSE(scaling_intercept(&ref, 70e9), -2.523 + 0.091 * log(70e9), 1e-12);
	CLOSE(scaling_accuracy(&ref, 70e9, 16384) - scaling_accuracy(&ref, 70e9, 16384 / M_E), 0.1086, 1e-12);
	/* hand-computed reference values */
	CLOSE(scaling_accuracy(&ref, 70e9, 16384), 0.8030, 5e-4);
	CLOSE(scaling_accuracy(&ref, 8e9, 16384), 0.6062, 5e-4);
	/* about +0.25 per 10x tokens (docs/theory.md §1) */
	CLOSE(scaling_accuracy(&ref, 8e9, 4096) - scaling_accuracy(&ref, 8e9, 409.6), 0.25, 0.005);
	/* clamps: never above a_max, never below 0 */
	CLOSE(scaling_accuracy(&ref, 1e13, 1e6), 0.95, 0);
	CLOSE(scaling_accuracy(&ref, 1e6, 2), 0.0, 0);
	/* a bigger model is at least as accurate at every budget */
	for (double t = 64; t <= 65536; t *= 2)
		assert_true(scaling_accuracy(&ref, 32e9, t) >= scaling_accuracy(&ref, 8e9, t));
}

static void test_energy_per_task(void **state)
{
	(void)state;
	struct model_spec m = { .name = "70B", .params = 70e9, .reasoning_sigma = -1 };
	/* 2 N FLOPs per token at eta FLOP/J */
	CLOSE(scaling_joules_per_token(&ref, &m), 0.7, 1e-12);
	struct model_spec meas = m;
	meas.joules_per_token = 3.5;	/* a measured table wins */
	CLOSE(scaling_joules_per_token(&ref, &meas), 3.5, 0);

	struct task_option o;
	scaling_option(&ref, &m, 3, 1024, &o);
	double y1, y2;
	capped_lognormal_moments(log(512.0), 0.8, 1024, &y1, &y2);
	assert_int_equal(o.model, 3);
	CLOSE(o.m, 0.7 * (500 + y1), 1e-9);
	CLOSE(o.v, 0.49 * (y2 - y1 * y1), 1e-6);
	CLOSE(o.s, o.m * o.m + o.v, 1e-6);
	CLOSE(o.acc, scaling_accuracy(&ref, 70e9, 1024), 0);
	/* a fixed per-task cost shifts the mean, not the variance */
	struct model_spec fixed = m;
	fixed.joules_per_task = 100;
	struct task_option of;
	scaling_option(&ref, &fixed, 3, 1024, &of);
	CLOSE(of.m - o.m, 100, 1e-9);
	CLOSE(of.v, o.v, 1e-9);
	/* per-model reasoning noise overrides the scenario's */
	struct model_spec calm = m;
	calm.reasoning_sigma = 0.1;
	struct task_option oc;
	scaling_option(&ref, &calm, 3, 1024, &oc);
	assert_true(oc.v < o.v / 10);
	/* option_energy: median draw costs the median tokens, huge draws the budget */
	CLOSE(option_energy(&o, 0.0), 0.7 * (500 + 512), 1e-9);
	CLOSE(option_energy(&o, 50.0), 0.7 * (500 + 1024), 1e-9);
}

/* A two-model, three-option catalog with hand-set moments. */
static void small_catalog(struct task_option *o)
{
	o[0] = (struct task_option){ .model = 0, .m = 10, .v = 4, .acc = 0.3 };
	o[1] = (struct task_option){ .model = 0, .m = 30, .v = 25, .acc = 0.5 };
	o[2] = (struct task_option){ .model = 1, .m = 100, .v = 400, .acc = 0.7 };
	for (int i = 0; i < 3; i++)
		o[i].s = o[i].m * o[i].m + o[i].v;
}

static void test_decomposition(void **state)
{
	(void)state;
	struct task_option o[3];
	small_catalog(o);
	double p[3] = { 0.2, 0.3, 0.5 };
	struct arrival_moments poisson = { 20, 20 }, bursty = { 20, 60 };

	for (int k = 0; k < 2; k++) {
		struct arrival_moments am = k ? bursty : poisson;
		struct var_decomp d;
		scaling_decompose(o, 3, p, am, REALISE_RANDOM, &d);
		/* independent: Var(D) = E[n] Var(e) + Var(n) E[e]^2 from mixture moments */
		double me = 0.2 * 10 + 0.3 * 30 + 0.5 * 100;
		double se = 0.2 * o[0].s + 0.3 * o[1].s + 0.5 * o[2].s;
		double total = am.mean * (se - me * me) + am.var * me * me;
		CLOSE(d.total, total, 1e-9 * total);
		CLOSE(d.time + d.models + d.exec_choice + d.exec_noise, d.total, 1e-9 * total);
		CLOSE(d.mu, am.mean * me, 1e-9);
		CLOSE(d.time, am.var * me * me, 1e-9);
		/* models: model 0 has weight 0.5 and mean 22, model 1 weight 0.5 mean 100 */
		CLOSE(d.models, am.mean * (0.5 * 0.5 * 78 * 78), 1e-6);
		/* choices within model 0: budgets at 10 and 30 with weights .2,.3 */
		double m0 = 22.0;
		CLOSE(d.exec_choice, am.mean * (0.2 * (10 - m0) * (10 - m0) + 0.3 * (30 - m0) * (30 - m0)), 1e-6);
		CLOSE(d.exec_noise, am.mean * (0.2 * 4 + 0.3 * 25 + 0.5 * 400), 1e-9);
		CLOSE(d.accuracy, 0.2 * 0.3 + 0.3 * 0.5 + 0.5 * 0.7, 1e-12);

		/* deterministic realisation drops the between-option terms */
		struct var_decomp s;
		scaling_decompose(o, 3, p, am, REALISE_SWRR, &s);
		assert_true(s.models == 0.0 && s.exec_choice == 0.0);
		CLOSE(s.removed, d.models + d.exec_choice, 1e-9 * total);
		CLOSE(s.total + s.removed, d.total, 1e-9 * total);
		CLOSE(s.time + s.exec_noise, s.total, 1e-9 * total);
	}
	/* one option: only time and reasoning noise */
	double one[3] = { 0, 1, 0 };
	struct var_decomp d;
	scaling_decompose(o, 3, one, poisson, REALISE_RANDOM, &d);
	CLOSE(d.models, 0.0, 1e-12);
	CLOSE(d.exec_choice, 0.0, 1e-12);
	CLOSE(d.total, 20 * o[1].s, 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capped_lognormal),
		cmocka_unit_test(test_accuracy_law),
		cmocka_unit_test(test_energy_per_task),
		cmocka_unit_test(test_decomposition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

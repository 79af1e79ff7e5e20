/* docs/theory.md §4.1-§4.4 closed forms against independently computed values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "theory.h"

#define CLOSE(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

static void test_normal_functions(void **state)
{
	(void)state;
	/* reference values from tables of the normal distribution */
	CLOSE(norm_cdf(0.0), 0.5, 1e-16);
	CLOSE(norm_cdf(1.959963984540054), 0.975, 1e-15);
	CLOSE(norm_cdf(-3.0), 0.0013498980316300946, 1e-17);
	CLOSE(norm_pdf(0.0), 0.3989422804014327, 1e-16);
	CLOSE(norm_pdf(1.0), 0.24197072451914337, 1e-16);
	CLOSE(norm_quantile(0.975), 1.959963984540054, 1e-12);
	CLOSE(norm_quantile(0.5), 0.0, 1e-15);
	CLOSE(norm_quantile(0.001), -3.090232306167813, 1e-11);
	assert_true(isinf(norm_quantile(0.0)) && norm_quantile(0.0) < 0);
	assert_true(isinf(norm_quantile(1.0)) && norm_quantile(1.0) > 0);
	assert_true(isnan(norm_quantile(1.5)));
	assert_true(isnan(norm_quantile(-0.1)));
	/* round trip over twelve decades of both tails */
	for (double e = -12.0; e <= -0.31; e += 0.25) {
		double p = pow(10.0, e);
		double x = norm_quantile(p);
		assert_true(fabs(norm_cdf(x) - p) <= 1e-13 * p);
		/* upper tail: 1 - p itself carries an absolute error of 1e-16 */
		double y = norm_quantile(1.0 - p);
		assert_true(fabs(norm_cdf(-y) - p) <= 1e-13 * p + 4e-16);
	}
}

/* E[(D-b)^+] for D ~ N(mu, sigma^2) by Simpson's rule, independent of §4.1 */
static double aux_numeric(double mu, double sigma, double b)
{
	int n = 20000;
	double lo = fmax(b, mu - 12 * sigma), hi = mu + 12 * sigma;
	if (hi <= lo)
		return 0.0;
	double h = (hi - lo) / n, s = 0.0;
	for (int i = 0; i <= n; i++) {
		double x = lo + i * h;
		double f = (x - b) * exp(-0.5 * (x - mu) * (x - mu) / (sigma * sigma)) / (sigma * sqrt(2 * M_PI));
		s += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
	}
	return s * h / 3.0;
}

static void test_gaussian_aux_waste(void **state)
{
	(void)state;
	/* at the critical point both equal sigma / sqrt(2 pi) = 0.398942 sigma */
	CLOSE(theory_aux_gauss(100.0, 10.0, 100.0), 3.98942280401, 1e-9);
	CLOSE(theory_waste_gauss(100.0, 10.0, 100.0), 3.98942280401, 1e-9);
	for (double z = -4.0; z <= 4.0; z += 0.5) {
		double mu = 1000.0, sigma = 37.0, b = mu + z * sigma;
		double a = theory_aux_gauss(mu, sigma, b), w = theory_waste_gauss(mu, sigma, b);
		/* §3.1: A - W = D - b exactly, so E[W] - E[A] = b - mu */
		CLOSE(w - a, b - mu, 1e-9);
		CLOSE(a, aux_numeric(mu, sigma, b), 1e-7);
		assert_true(a >= 0.0 && w >= 0.0);
	}
	/* far from the critical point only the drift remains */
	CLOSE(theory_waste_gauss(0.0, 1.0, 40.0), 40.0, 1e-12);
	CLOSE(theory_aux_gauss(0.0, 1.0, 40.0), 0.0, 1e-12);
	/* no volatility: deterministic shortfall */
	CLOSE(theory_aux_gauss(10.0, 0.0, 7.0), 3.0, 1e-15);
	CLOSE(theory_waste_gauss(10.0, 0.0, 7.0), 0.0, 1e-15);
}

static void test_newsvendor(void **state)
{
	(void)state;
	const double prices[][2] = { { 1, 1 }, { 3, 1 }, { 1, 4 }, { 10, 0.5 } };
	for (size_t k = 0; k < sizeof(prices) / sizeof(prices[0]); k++) {
		double ca = prices[k][0], cw = prices[k][1], mu = 500.0, sigma = 40.0;
		/* brute force: scan b on a fine grid, then refine */
		double best_b = 0, best = INFINITY;
		for (double b = mu - 6 * sigma; b <= mu + 6 * sigma; b += 0.01) {
			double j = ca * theory_aux_gauss(mu, sigma, b) + cw * theory_waste_gauss(mu, sigma, b);
			if (j < best) {
				best = j;
				best_b = b;
			}
		}
		CLOSE(theory_newsvendor_supply(mu, sigma, ca, cw), best_b, 0.02);
		CLOSE(theory_newsvendor_cost(sigma, ca, cw), best, 1e-6 * best);
	}
	/* symmetric prices: b* = mu and J* = 2 * 0.398942 sigma */
	CLOSE(theory_newsvendor_supply(10.0, 2.0, 1, 1), 10.0, 1e-12);
	CLOSE(theory_newsvendor_kappa(1, 1), 0.7978845608, 1e-9);
}

static void test_storage_diffusion(void **state)
{
	(void)state;
	double sigma = 5.0, c = 30.0;
	/* the identity waste - aux = delta, every drift */
	for (double d = -4.0; d <= 4.0; d += 0.125) {
		for (int slotted = 0; slotted < 2; slotted++) {
			double a = theory_storage_aux(d, sigma, c, slotted);
			double w = theory_storage_waste(d, sigma, c, slotted);
			CLOSE(w - a, d, 1e-12);
			assert_true(a >= 0.0 && w >= 0.0);
		}
		/* reflecting the drift swaps aux and waste */
		CLOSE(theory_storage_aux(d, sigma, c, 0), theory_storage_waste(-d, sigma, c, 0), 1e-12);
	}
	/* delta -> 0 from both sides tends to sigma^2 / (2C) */
	double lim = sigma * sigma / (2 * c);
	CLOSE(theory_storage_aux(0.0, sigma, c, 0), lim, 1e-15);
	CLOSE(theory_storage_aux(1e-9, sigma, c, 0), lim, 1e-9);
	CLOSE(theory_storage_aux(-1e-9, sigma, c, 0), lim, 1e-9);
	CLOSE(theory_storage_aux(1e-4, sigma, c, 0), lim - 0.5e-4, 1e-8);
	/* the direct formula at a moderate drift, computed here by hand */
	double d = 0.7, theta = 2 * d / (sigma * sigma);
	CLOSE(theory_storage_aux(d, sigma, c, 0), d / (exp(theta * c) - 1), 1e-12);
	CLOSE(theory_storage_waste(d, sigma, c, 0), d * exp(theta * c) / (exp(theta * c) - 1), 1e-12);
	/* slotted time: C + 2 * 0.5826 sigma */
	double ce = c + 2 * 0.5825971579 * sigma;
	CLOSE(theory_storage_aux(0.0, sigma, c, 1), sigma * sigma / (2 * ce), 1e-9);
	/* strong drifts: waste -> delta over-supplied, aux -> -delta under-supplied */
	CLOSE(theory_storage_waste(50.0, sigma, c, 1), 50.0, 1e-9);
	CLOSE(theory_storage_aux(-50.0, sigma, c, 1), 50.0, 1e-9);
	/* no storage and no noise reduces to the parts of delta */
	CLOSE(theory_storage_aux(-3.0, 0.0, 0.0, 0), 3.0, 1e-15);
	CLOSE(theory_storage_waste(-3.0, 0.0, 0.0, 0), 0.0, 1e-15);
	/* bigger stores waste and borrow less at the critical point */
	assert_true(theory_storage_aux(0.0, sigma, 2 * c, 1) < theory_storage_aux(0.0, sigma, c, 1));
}

static void test_unlimited_storage(void **state)
{
	(void)state;
	CLOSE(theory_unlimited_aux_total(2.0, 100.0, 0), 2.0 * sqrt(200.0 / M_PI), 1e-12);
	CLOSE(theory_unlimited_aux_total(2.0, 100.0, 1), 2.0 * (sqrt(200.0 / M_PI) - 0.5825971579), 1e-9);
	/* grows like sqrt(H) */
	CLOSE(theory_unlimited_aux_total(1.0, 400.0, 0) / theory_unlimited_aux_total(1.0, 100.0, 0), 2.0, 1e-12);
	assert_true(theory_unlimited_aux_total(1.0, 0.0, 0) == 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_functions),
		cmocka_unit_test(test_gaussian_aux_waste),
		cmocka_unit_test(test_newsvendor),
		cmocka_unit_test(test_storage_diffusion),
		cmocka_unit_test(test_unlimited_storage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

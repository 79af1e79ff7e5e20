/* docs/theory.md §4.1-§4.4 closed forms. */
#include <math.h>
#include "theory.h"

#define INV_SQRT_2PI 0.39894228040143267794
#define SQRT_2PI 2.50662827463100050242

double norm_pdf(double x)
{
	return INV_SQRT_2PI * exp(-0.5 * x * x);
}

double norm_cdf(double x)
{
	/* erfc keeps full relative precision in the lower tail. */
	return 0.5 * erfc(-x * M_SQRT1_2);
}

double norm_quantile(double p)
{
	if (isnan(p) || p < 0.0 || p > 1.0)
		return NAN;
	if (p == 0.0)
		return -INFINITY;
	if (p == 1.0)
		return INFINITY;
	/* Start from Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4), then
	 * polish with Halley steps on norm_cdf, which converge cubically. */
	double q = p < 0.5 ? p : 1.0 - p;
	double t = sqrt(-2.0 * log(q));
	double x = t - (2.515517 + t * (0.802853 + t * 0.010328)) /
		       (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308)));
	if (p < 0.5)
		x = -x;
	for (int i = 0; i < 3; i++) {
		/* Phi(x) - p, from the tail that p lies in so it is not cancelled */
		double err = p < 0.5 ? norm_cdf(x) - p : (1.0 - p) - norm_cdf(-x);
		double d = norm_pdf(x);
		if (d == 0.0)
			break;
		double u = err / d;
		x -= u / (1.0 + 0.5 * x * u);
	}
	return x;
}

double theory_aux_gauss(double mu, double sigma, double b)
{
	if (!(sigma > 0.0))
		return mu > b ? mu - b : 0.0;
	double z = (b - mu) / sigma;
	/* E[(D-b)^+] = sigma (phi(z) - z (1 - Phi(z))), docs/theory.md §4.1 */
	return sigma * (norm_pdf(z) - z * norm_cdf(-z));
}

double theory_waste_gauss(double mu, double sigma, double b)
{
	if (!(sigma > 0.0))
		return b > mu ? b - mu : 0.0;
	double z = (b - mu) / sigma;
	/* E[(b-D)^+] = sigma (phi(z) + z Phi(z)), docs/theory.md §4.1 */
	return sigma * (norm_pdf(z) + z * norm_cdf(z));
}

double theory_newsvendor_supply(double mu, double sigma, double c_a, double c_w)
{
	return mu + sigma * norm_quantile(c_a / (c_a + c_w));
}

double theory_newsvendor_kappa(double c_a, double c_w)
{
	return (c_a + c_w) * norm_pdf(norm_quantile(c_a / (c_a + c_w)));
}

double theory_newsvendor_cost(double sigma, double c_a, double c_w)
{
	return theory_newsvendor_kappa(c_a, c_w) * sigma;
}

/* docs/theory.md §4.3 auxiliary rate delta/(e^{theta C} - 1), theta = 2 delta/sigma^2,
 * written with expm1 and a series near theta C = 0 so delta -> 0 is exact. */
static double storage_aux_raw(double delta, double sigma, double c)
{
	double var = sigma * sigma;

	if (!(c > 0.0) || !(var > 0.0))
		return delta < 0.0 ? -delta : 0.0;
	double x = 2.0 * delta * c / var;	/* theta * C */
	if (fabs(x) < 1e-6)	/* x/(e^x-1) = 1 - x/2 + x^2/12 - ... */
		return var / (2.0 * c) * (1.0 - x / 2.0 + x * x / 12.0);
	if (x > 700.0)
		return delta * exp(-x);
	return delta / expm1(x);
}

static double effective_capacity(double sigma, double capacity, int slotted)
{
	return slotted ? capacity + 2.0 * THEORY_OVERSHOOT * sigma : capacity;
}

double theory_storage_aux(double delta, double sigma, double capacity, int slotted)
{
	return storage_aux_raw(delta, sigma, effective_capacity(sigma, capacity, slotted));
}

double theory_storage_waste(double delta, double sigma, double capacity, int slotted)
{
	/* waste - aux = delta: whatever is not absorbed by the store */
	return theory_storage_aux(delta, sigma, capacity, slotted) + delta;
}

double theory_unlimited_aux_total(double sigma, double horizon_slots, int slotted)
{
	if (!(horizon_slots > 0.0) || !(sigma > 0.0))
		return 0.0;
	double v = sigma * sqrt(2.0 * horizon_slots / M_PI);
	if (slotted)
		v -= sigma * THEORY_OVERSHOOT;
	return v > 0.0 ? v : 0.0;
}

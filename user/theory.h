/* Closed forms of the critical regime, docs/theory.md §4.1-§4.4, and the normal
 * distribution functions they need. Pure functions, no I/O. Energies are in
 * joules per slot; sigma is the standard deviation of slot demand. */
#ifndef ERG_THEORY_H
#define ERG_THEORY_H

/* docs/theory.md §1 defaults, the published fits scenarios/reference.ini uses: the
 * accuracy intercept alpha_k = a0 + a1 ln N_k, beta accuracy per e-fold of
 * reasoning tokens, the ceiling a_max. */
#define THEORY_A0 (-2.523)
#define THEORY_A1 0.091
#define THEORY_BETA 0.1086
#define THEORY_A_MAX 0.95

/* Overshoot constant of a Gaussian random walk, -zeta(1/2)/sqrt(2 pi). */
#define THEORY_OVERSHOOT 0.5825971579390106

/* Standard normal density, CDF and quantile (|error| < 1e-15 relative). */
double norm_pdf(double x);
double norm_cdf(double x);
double norm_quantile(double p);	/* p in (0,1); -inf/+inf at 0/1, NaN outside */

/* docs/theory.md §4.1: Gaussian demand N(mu, sigma^2), supply b, no storage.
 * Expected auxiliary energy E[(D-b)^+] and waste E[(b-D)^+] per slot. */
double theory_aux_gauss(double mu, double sigma, double b);
double theory_waste_gauss(double mu, double sigma, double b);

/* docs/theory.md §4.2 newsvendor: the supply that minimises c_a E[A] + c_w E[W],
 * b = mu + sigma Phi^-1(c_a/(c_a+c_w)), and that minimum cost. */
double theory_newsvendor_supply(double mu, double sigma, double c_a, double c_w);
double theory_newsvendor_cost(double sigma, double c_a, double c_w);
/* The volatility price: J* = kappa * sigma, kappa = (c_a+c_w) phi(Phi^-1(r)). */
double theory_newsvendor_kappa(double c_a, double c_w);

/* docs/theory.md §4.3: storage of capacity C, drift delta = b - mu, variance sigma^2
 * per slot, reflected Brownian motion on [0, C]. Auxiliary and waste per
 * slot. slotted != 0 applies the discrete-time correction C -> C + 2 *
 * THEORY_OVERSHOOT * sigma. delta -> 0 is handled (both -> sigma^2/(2C));
 * waste - aux == delta always. C == 0 (unslotted) degenerates to |delta|-parts. */
double theory_storage_aux(double delta, double sigma, double capacity, int slotted);
double theory_storage_waste(double delta, double sigma, double capacity, int slotted);

/* docs/theory.md §4.4: unlimited storage, H slots, starting empty, delta = 0:
 * expected total auxiliary energy sigma*sqrt(2H/pi). slotted != 0 subtracts
 * the Gaussian random walk's overshoot (sigma * THEORY_OVERSHOOT), the next
 * term of the expansion for a walk observed once per slot. */
double theory_unlimited_aux_total(double sigma, double horizon_slots, int slotted);

/* Cost per slot c_a*aux + c_w*waste. */
static inline double theory_cost(double aux, double waste, double c_a, double c_w)
{
	return c_a * aux + c_w * waste;
}

#endif

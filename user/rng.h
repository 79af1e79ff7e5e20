/* Seedable pseudo-random numbers for the slot simulator (erg sim): xoshiro256**
 * seeded through splitmix64, and the distributions docs/theory.md §1-§2 needs:
 * normal and lognormal reasoning lengths, Poisson and over-dispersed
 * (gamma-Poisson, i.e. negative binomial) task arrivals. Same seed, same
 * stream, on every platform. */
#ifndef ERG_RNG_H
#define ERG_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
	double spare;		/* second normal of the last polar pair */
	int has_spare;
};

/* Seed from one 64-bit value. Different (seed, stream) pairs give
 * independent streams (used for common random numbers across policies). */
void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
/* Uniform on [0, 1) with 53 random bits. */
double rng_uniform(struct rng *r);
/* Uniform on (0, 1): never 0, safe for log(). */
double rng_uniform_pos(struct rng *r);
double rng_normal(struct rng *r);
double rng_lognormal(struct rng *r, double mu, double sigma);
/* Exponential with mean 1. */
double rng_exponential(struct rng *r);
/* Gamma(shape, scale), mean shape*scale; shape > 0. */
double rng_gamma(struct rng *r, double shape, double scale);
/* Counts saturate here (2^62): a huge or infinite mean never overflows. */
#define RNG_COUNT_MAX 0x1p62
/* Poisson draws above this mean come from the normal approximation. */
#define RNG_POISSON_NORMAL_ABOVE 1e12
/* Poisson(lambda): exact below RNG_POISSON_NORMAL_ABOVE, the rounded normal
 * N(lambda, lambda) above it; O(1) for every lambda; 0 for lambda <= 0 or NaN. */
uint64_t rng_poisson(struct rng *r, double lambda);
/* Over-dispersed counts: gamma-Poisson mixture with E[n] = mean and
 * Var(n) = var_ratio * mean (var_ratio >= 1; 1 is Poisson). */
uint64_t rng_overdispersed(struct rng *r, double mean, double var_ratio);

#endif

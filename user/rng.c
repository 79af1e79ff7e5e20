/* Pseudo-random numbers for erg sim: xoshiro256** (Blackman & Vigna) seeded
 * by splitmix64; normals by the Marsaglia polar method, gamma by Marsaglia &
 * Tsang, Poisson by multiplication for small means, Hormann's transformed
 * rejection (PTRS) for large ones and the normal limit for huge ones. */
#include <math.h>
#include "rng.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	/* Mix the stream number in before expanding, so that neighbouring
	 * (seed, stream) pairs start far apart in the splitmix sequence. */
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL + 0x8cb92ba72f3d8dd7ULL);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))	/* all-zero state is a fixed point */
		r->s[0] = 1;
	r->has_spare = 0;
	r->spare = 0.0;
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double rng_uniform(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double rng_uniform_pos(struct rng *r)
{
	return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

double rng_normal(struct rng *r)
{
	double u, v, q;

	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	do {
		u = 2.0 * rng_uniform(r) - 1.0;
		v = 2.0 * rng_uniform(r) - 1.0;
		q = u * u + v * v;
	} while (q >= 1.0 || q == 0.0);
	q = sqrt(-2.0 * log(q) / q);
	r->spare = v * q;
	r->has_spare = 1;
	return u * q;
}

double rng_lognormal(struct rng *r, double mu, double sigma)
{
	return exp(mu + sigma * rng_normal(r));
}

double rng_exponential(struct rng *r)
{
	return -log(rng_uniform_pos(r));
}

double rng_gamma(struct rng *r, double shape, double scale)
{
	if (!(shape > 0.0) || !(scale > 0.0))
		return 0.0;
	if (shape < 1.0) {
		/* Gamma(a) = Gamma(a + 1) * U^(1/a) */
		double g = rng_gamma(r, shape + 1.0, 1.0);
		return scale * g * pow(rng_uniform_pos(r), 1.0 / shape);
	}
	double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);

	for (;;) {
		double x = rng_normal(r), v = 1.0 + c * x;

		if (v <= 0.0)
			continue;
		v = v * v * v;
		double u = rng_uniform_pos(r);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			return scale * d * v;
		if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return scale * d * v;
	}
}

/* Knuth's multiplication method: expected lambda + 1 uniforms. */
static uint64_t poisson_small(struct rng *r, double lambda)
{
	double limit = exp(-lambda), prod = rng_uniform_pos(r);
	uint64_t k = 0;

	while (prod > limit) {
		prod *= rng_uniform_pos(r);
		k++;
	}
	return k;
}

/* A count drawn as a double, as an integer: negative and NaN give 0, and
 * anything at or above RNG_COUNT_MAX saturates there, so no conversion
 * overflows. */
static uint64_t count_of(double x)
{
	if (!(x >= 0.0))
		return 0;
	if (x >= RNG_COUNT_MAX)
		return (uint64_t)RNG_COUNT_MAX;
	return (uint64_t)x;
}

/* Transformed rejection with squeeze (PTRS, Hormann 1993), lambda >= 10. */
static uint64_t poisson_ptrs(struct rng *r, double lambda)
{
	double slam = sqrt(lambda), loglam = log(lambda);
	double b = 0.931 + 2.53 * slam;
	double a = -0.059 + 0.02483 * b;
	double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
	double vr = 0.9277 - 3.6224 / (b - 2.0);

	for (;;) {
		double u = rng_uniform(r) - 0.5;
		double v = rng_uniform_pos(r);
		double us = 0.5 - fabs(u);
		double k = floor((2.0 * a / us + b) * u + lambda + 0.43);

		if (us >= 0.07 && v <= vr)
			return count_of(k);
		if (k < 0.0 || (us < 0.013 && v > us))
			continue;
		if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <=
		    -lambda + k * loglam - lgamma(k + 1.0))
			return count_of(k);
	}
}

uint64_t rng_poisson(struct rng *r, double lambda)
{
	if (!(lambda > 0.0))
		return 0;
	if (lambda < 10.0)
		return poisson_small(r, lambda);
	if (lambda < RNG_POISSON_NORMAL_ABOVE)
		return poisson_ptrs(r, lambda);
	if (isinf(lambda))
		return (uint64_t)RNG_COUNT_MAX;
	/* the normal limit, rounded: its error is far below one standard
	 * deviation, and it stays O(1) and defined for any mean, even infinite */
	return count_of(floor(lambda + sqrt(lambda) * rng_normal(r) + 0.5));
}

uint64_t rng_overdispersed(struct rng *r, double mean, double var_ratio)
{
	if (!(mean > 0.0))
		return 0;
	if (!(var_ratio > 1.0))
		return rng_poisson(r, mean);
	/* n | G ~ Poisson(G), G ~ Gamma(k, mean/k): Var(n) = mean + mean^2/k,
	 * so k = mean / (var_ratio - 1). */
	double shape = mean / (var_ratio - 1.0);
	return rng_poisson(r, rng_gamma(r, shape, mean / shape));
}

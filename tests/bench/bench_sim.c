/* erg sim benchmark: simulated slots per second (reference catalog, each
 * policy kind) and optimiser time for 16/64/256 options. Every figure is
 * also given as a ratio to a baseline measured in the same run on the same
 * machine, so numbers from different machines can be compared. Reports only;
 * nothing here asserts a time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "policy.h"
#include "rng.h"
#include "scaling.h"
#include "simulate.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const struct scaling_params ref = {
	.eta = 2e11, .a0 = -2.523, .a1 = 0.091, .beta = 0.1086, .a_max = 0.95,
	.input_tokens = 500, .reasoning_sigma = 0.8, .reasoning_median = 0.5,
};

/* k models from 1B to 100B, b budgets from 128 to 32768 tokens */
static int grid_catalog(struct task_option *o, int k, int b)
{
	int n = 0;
	for (int i = 0; i < k; i++) {
		struct model_spec m = { .params = 1e9 * pow(100.0, k > 1 ? (double)i / (k - 1) : 0),
					.reasoning_sigma = -1 };
		for (int j = 0; j < b; j++)
			scaling_option(&ref, &m, i, 128.0 * pow(256.0, b > 1 ? (double)j / (b - 1) : 0), &o[n++]);
	}
	return n;
}

/* random catalog: far fewer options are dominated */
static void random_catalog(struct rng *r, struct task_option *o, int n)
{
	for (int i = 0; i < n; i++) {
		double m = 10.0 * exp(3.0 * rng_uniform(r));
		o[i] = (struct task_option){ .model = i % 8, .m = m,
			.acc = fmin(0.95, 0.1 + 0.15 * log(m / 10.0) + 0.25 * rng_uniform(r)),
			.v = m * m * (0.02 + 1.5 * rng_uniform(r) * rng_uniform(r)) };
		o[i].s = o[i].m * o[i].m + o[i].v;
	}
}

/* seconds per call of f, repeated for at least 0.3 s */
static double time_optimiser(struct policy_problem *pb, int variance)
{
	struct mix m;
	long reps = 0;
	double t0 = now_s(), el;
	do {
		if (variance)
			policy_variance_aware(pb, &m);
		else
			policy_mean_only(pb, &m);
		reps++;
		el = now_s() - t0;
	} while (el < 0.3);
	return el / reps;
}

int main(void)
{
	struct task_option o16[16];
	int n = grid_catalog(o16, 4, 4);
	struct policy_problem pb = { .opts = o16, .n_opts = n, .acc_target = 0.6, .mu_max = INFINITY,
				     .arr = { 20, 20 }, .c_a = 1, .c_w = 1 };
	struct mix mm;
	double bstar;
	policy_mean_only(&pb, &mm);
	policy_mix_moments(&pb, &mm, &bstar, NULL, NULL);

	/* baseline: the bare cost of one task's random numbers (a Poisson count
	 * per slot and a normal per task), no routing, no ledger */
	const long slots = 200000;
	struct rng r;
	rng_seed(&r, 1, 1);
	double t0 = now_s(), sink = 0;
	for (long t = 0; t < slots; t++) {
		uint64_t k = rng_poisson(&r, 20.0);
		for (uint64_t i = 0; i < k; i++)
			sink += rng_normal(&r);
	}
	double base = now_s() - t0;
	printf("bench_sim: baseline (Poisson count + one normal per task, 20 tasks/slot): %.3g slots/s%s\n",
	       slots / base, sink == 12345.0 ? " " : "");

	struct dyn_policy dp = { .acc_target = 0.6, .horizon_tasks = 200, .max_dip = 0.1 };
	policy_ladder(o16, n, &dp.ladder);
	const char *names[] = { "mean-only mix, no storage", "mean-only mix, storage 2 sigma",
				"random routing", "dynamic policy" };
	for (int k = 0; k < 4; k++) {
		struct sim_config c = {
			.opts = o16, .n_opts = n, .arrivals = { .kind = ARRIVALS_POISSON, .per_slot = 20 },
			.supply = { .per_slot = bstar, .capacity = k == 1 ? 7500 : 0, .initial = -1 },
			.slot_seconds = 1, .slots = slots, .seed = 1, .policy = SIM_STATIC, .mix = mm,
			.how = k == 2 ? REALISE_RANDOM : REALISE_SWRR, .c_a = 1, .c_w = 1,
		};
		if (k == 3) {
			c.policy = SIM_DYNAMIC;
			c.dyn = &dp;
		}
		struct sim_summary s;
		t0 = now_s();
		sim_run(&c, &s, NULL, NULL);
		double el = now_s() - t0;
		printf("bench_sim: simulate %-30s %9.3g slots/s  %9.3g tasks/s  (%.2fx the baseline's time)\n",
		       names[k], slots / el, s.tasks / el, el / base);
	}

	/* optimisers: mean-only (pairs) is the baseline for variance-aware
	 * (pairs and accuracy-binding triples) on the same catalog */
	static struct task_option big[256];
	const int sizes[3][2] = { { 4, 4 }, { 8, 8 }, { 16, 16 } };
	for (int k = 0; k < 3; k++) {
		int nn = grid_catalog(big, sizes[k][0], sizes[k][1]);
		struct policy_problem q = pb;
		q.opts = big;
		q.n_opts = nn;
		double tm = time_optimiser(&q, 0), tv = time_optimiser(&q, 1);
		printf("bench_sim: optimise %3d options (scaling-law catalog): mean-only %9.3g s, "
		       "variance-aware %9.3g s (%.1fx mean-only)\n", nn, tm, tv, tv / tm);
	}
	rng_seed(&r, 5, 0);
	for (int k = 0; k < 3; k++) {
		int nn = 16 << (2 * k);
		random_catalog(&r, big, nn);
		struct policy_problem q = pb;
		q.opts = big;
		q.n_opts = nn;
		q.acc_target = 0.5;
		double tm = time_optimiser(&q, 0), tv = time_optimiser(&q, 1);
		printf("bench_sim: optimise %3d options (random catalog):      mean-only %9.3g s, "
		       "variance-aware %9.3g s (%.1fx mean-only)\n", nn, tm, tv, tv / tm);
	}
	return 0;
}

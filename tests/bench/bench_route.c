/* Routing decision benchmark: nanoseconds per decision at 4, 16 and 64
 * options for the mean-only path (the mix realised by smooth weighted round
 * robin) and the dynamic path (the decision table, and without one the
 * ladder rule), and whether a decision allocates. Every time is also given
 * as a ratio to a baseline measured in the same run (one standard normal
 * draw), so figures from different machines compare. Reports only; the goal
 * (<= 200 ns at 64 options, no allocation) is printed next to the figure,
 * nothing here asserts a time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "policy.h"
#include "rng.h"
#include "scaling.h"
#include "simulate.h"

/* Allocation counter: calls into the allocator while decisions run.
 * glibc's own entry points do the work; a sanitizer build has its own
 * allocator, and there nothing is counted. */
static long allocations;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNTING 0
#else
#define COUNTING 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
	allocations++;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	allocations++;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	allocations++;
	return __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}
#endif

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

/* k models from 1.5B to 70B, b log-spaced budgets from 256 to 16384 tokens
 * (4 x 16 is scenarios/reference-dense.ini) */
static int catalog(struct task_option *o, int k, int b)
{
	const double params[4] = { 1.5e9, 8e9, 32e9, 70e9 };
	int n = 0;

	for (int i = 0; i < k; i++) {
		struct model_spec m = { .params = params[k == 4 ? i : 2 * i + 1], .reasoning_sigma = -1 };
		for (int j = 0; j < b; j++)
			scaling_option(&ref, &m, i, round(256.0 * pow(64.0, b > 1 ? (double)j / (b - 1) : 0)),
				       &o[n++]);
	}
	return n;
}

/* Inputs a live router sees over a slot: time gone, supply left. */
#define N_INPUTS 4096
struct route_input {
	double t, committed;
};

#define REPS 2000000L

static volatile int sink;

int main(void)
{
	struct rng r;
	rng_seed(&r, 1, 1);

	/* baseline: one standard normal draw per decision */
	double t0 = now_s(), acc = 0.0;
	for (long i = 0; i < REPS; i++)
		acc += rng_normal(&r);
	double base_ns = (now_s() - t0) / REPS * 1e9;
	sink = acc == 12345.0;
	printf("bench_route: baseline (one normal draw): %.1f ns\n", base_ns);

	static struct route_input in[N_INPUTS];
	const int shapes[3][2] = { { 2, 2 }, { 4, 4 }, { 4, 16 } };
	for (int s = 0; s < 3; s++) {
		struct task_option o[64];
		int n = catalog(o, shapes[s][0], shapes[s][1]);
		struct policy_problem pb = { .opts = o, .n_opts = n, .acc_target = 0.6,
					     .mu_max = INFINITY, .arr = { 20, 20 }, .c_a = 1, .c_w = 1 };
		struct mix mm;
		if (policy_mean_only(&pb, &mm)) {
			printf("bench_route: %d options: the target is out of reach, skipped\n", n);
			continue;
		}
		double bstar, var;
		policy_mix_moments(&pb, &mm, &bstar, &var, NULL);
		for (int i = 0; i < N_INPUTS; i++) {
			in[i].t = rng_uniform(&r);
			in[i].committed = bstar * (in[i].t + 0.3 * rng_normal(&r) * sqrt(in[i].t + 1e-3));
		}

		/* mean-only: SWRR over its mix, and over all n options (the
		 * realiser's worst case, one weight per option) */
		struct swrr rr, rr_all;
		swrr_init_mix(&rr, &mm);
		int ids[64];
		double w[64];
		for (int i = 0; i < n; i++) {
			ids[i] = i;
			w[i] = 1.0 + i;
		}
		swrr_init(&rr_all, ids, w, n);
		long a0 = allocations;
		t0 = now_s();
		for (long i = 0; i < REPS; i++)
			sink = swrr_next(&rr);
		double mean_ns = (now_s() - t0) / REPS * 1e9;
		t0 = now_s();
		for (long i = 0; i < REPS; i++)
			sink = swrr_next(&rr_all);
		double all_ns = (now_s() - t0) / REPS * 1e9;
		long mean_alloc = allocations - a0;

		/* dynamic: the decision table, as erg sim and erg serve build it */
		struct dyn_policy dp = { .acc_target = 0.6, .horizon_tasks = 2000, .max_dip = 0.1 };
		policy_ladder(o, n, &dp.ladder);
		double noise = 0.0;
		for (int i = 0; i < mm.n; i++)
			noise += mm.w[i] * o[mm.opt[i]].v;
		struct dyn_table table;
		long before = allocations;
		int have_table = policy_dynamic_table(&table, &dp.ladder, 0.6, 20, bstar, 20 * noise, 1, 1) == 0;
		int counting = COUNTING && allocations > before;	/* the build allocates */
		dp.table = have_table ? &table : NULL;
		struct sim_dyn_state st = { 0 };
		a0 = allocations;
		t0 = now_s();
		for (long i = 0; i < REPS; i++) {
			const struct route_input *x = &in[i & (N_INPUTS - 1)];
			sink = sim_dynamic_route(&dp, o, &st, x->t, 20, bstar, x->committed, 1);
		}
		double dyn_ns = (now_s() - t0) / REPS * 1e9;
		/* without a table (storage, or over 100 tasks a slot): the ladder rule */
		struct dyn_policy rule = dp;
		rule.table = NULL;
		st = (struct sim_dyn_state){ 0 };
		t0 = now_s();
		for (long i = 0; i < REPS; i++) {
			const struct route_input *x = &in[i & (N_INPUTS - 1)];
			sink = sim_dynamic_route(&rule, o, &st, x->t, 20, bstar, x->committed, 1);
		}
		double rule_ns = (now_s() - t0) / REPS * 1e9;
		long dyn_alloc = allocations - a0;

		printf("bench_route: %2d options (%2d rungs): mean-only SWRR %5.1f ns (%.2fx baseline), "
		       "SWRR over all %2d %5.1f ns (%.2fx); dynamic table %5.1f ns (%.2fx), "
		       "ladder rule %5.1f ns (%.2fx); allocations in %ld decisions: %s%s\n",
		       n, dp.ladder.n, mean_ns, mean_ns / base_ns, n, all_ns, all_ns / base_ns,
		       dyn_ns, dyn_ns / base_ns, rule_ns, rule_ns / base_ns,
		       4 * REPS, !counting ? "not counted" : mean_alloc + dyn_alloc ? "SOME" : "none",
		       have_table ? "" : " (no table: dynamic is the rule)");
		if (n == 64)
			printf("bench_route: goal at 64 options: <= 200 ns and no allocation: %s\n",
			       dyn_ns <= 200.0 && all_ns <= 200.0 && rule_ns <= 200.0 &&
			       (!counting || mean_alloc + dyn_alloc == 0) ? "met" : "NOT met");
		if (have_table)
			policy_dynamic_table_free(&table);
	}
	return 0;
}

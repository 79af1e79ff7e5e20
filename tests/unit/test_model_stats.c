/* Per-model request statistics: moments, codes, bounded histograms and
 * their quantile estimates, consistent snapshots under concurrent adds. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <cmocka.h>
#include "model_stats.h"
#include "request_energy.h"

static void add(struct model_stats *ms, unsigned model, int status, double joules, uint64_t events,
		double latency_s)
{
	struct request_record r = { .model = model, .status = status, .nj = (uint64_t)llround(joules * 1e9),
				    .sse_events = events, .latency_s = latency_s };

	model_stats_add(ms, &r);
}

static void moments_of_answered_requests(void **state)
{
	struct model_stats *ms = model_stats_new(2);
	struct model_stats_snapshot s;

	(void)state;
	add(ms, 1, 200, 1, 10, 0.1);
	add(ms, 1, 200, 2, 20, 0.2);
	add(ms, 1, 201, 3, 30, 0.3);
	add(ms, 1, 200, 4, 40, 0.4);
	add(ms, 1, 502, 50, 7, 9.0);	/* failed: in codes, joules, latency only */
	add(ms, 1, 0, 1, 0, 0.5);	/* no response */
	assert_int_equal(model_stats_snapshot(ms, 1, &s), 0);
	assert_int_equal(s.requests, 6);
	assert_int_equal(s.requests_ok, 4);
	assert_int_equal(s.joules_per_request.n, 4);
	assert_float_equal(s.joules_per_request.mean, 2.5, 1e-12);
	assert_float_equal(s.joules_per_request.sd, sqrt(5.0 / 3.0), 1e-12);
	assert_float_equal(s.events_per_request.mean, 25, 1e-12);
	assert_float_equal(s.events_per_request.sd, 10 * sqrt(5.0 / 3.0), 1e-9);
	assert_float_equal(s.joules, 61, 1e-9);
	assert_int_equal(s.latency_s.count, 6);
	assert_float_equal(s.latency_s.sum, 10.5, 1e-12);
	assert_int_equal(s.request_joules.count, 4);
	assert_float_equal(s.request_joules.sum, 10, 1e-12);
	assert_int_equal(s.n_codes, 4);	/* ascending: 0, 200, 201, 502 */
	assert_int_equal(s.codes[0].code, 0);
	assert_int_equal(s.codes[1].code, 200);
	assert_int_equal(s.codes[1].count, 3);
	assert_int_equal(s.codes[3].code, 502);
	/* the other model saw nothing */
	assert_int_equal(model_stats_snapshot(ms, 0, &s), 0);
	assert_int_equal(s.requests, 0);
	assert_true(isnan(s.joules_per_request.mean) && isnan(s.joules_per_request.sd));
	assert_true(isnan(s.latency_s.p50));
	assert_int_equal(model_stats_snapshot(ms, 2, &s), -1);
	add(ms, 2, 200, 1, 1, 1);	/* no such model: ignored */
	model_stats_free(ms);
}

static void bucket_bounds_are_inclusive(void **state)
{
	struct model_stats *ms = model_stats_new(1);
	struct model_stats_snapshot s;
	uint64_t total = 0;

	(void)state;
	add(ms, 0, 200, 0.001, 0, 0.005);	/* on the first bounds: first buckets */
	add(ms, 0, 200, 0.0011, 0, 0.0051);	/* just above: second buckets */
	add(ms, 0, 200, 1e6, 0, 1e6);		/* above all: +Inf */
	add(ms, 0, 200, 0, 0, NAN);		/* a NaN latency counts as 0 */
	model_stats_snapshot(ms, 0, &s);
	assert_int_equal(s.request_joules.buckets[0], 2);
	assert_int_equal(s.request_joules.buckets[1], 1);
	assert_int_equal(s.request_joules.buckets[MODEL_STATS_ENERGY_BUCKETS], 1);
	assert_int_equal(s.latency_s.buckets[0], 2);
	assert_int_equal(s.latency_s.buckets[1], 1);
	assert_int_equal(s.latency_s.buckets[MODEL_STATS_LATENCY_BUCKETS], 1);
	assert_int_equal(s.latency_s.n_bounds, MODEL_STATS_LATENCY_BUCKETS);
	for (size_t i = 0; i <= MODEL_STATS_LATENCY_BUCKETS; i++)
		total += s.latency_s.buckets[i];
	assert_int_equal(total, s.latency_s.count);
	assert_float_equal(s.latency_s.min, 0, 0);
	assert_float_equal(s.latency_s.max, 1e6, 0);
	model_stats_free(ms);
}

static void quantiles_from_buckets(void **state)
{
	struct model_stats *ms = model_stats_new(3);
	struct model_stats_snapshot s;

	(void)state;
	/* latencies 0.01, 0.02, ..., 1.00 s: p50 0.5, p90 0.9, p99 0.99 */
	for (int i = 1; i <= 100; i++)
		add(ms, 0, 200, 1, 0, i / 100.0);
	model_stats_snapshot(ms, 0, &s);
	assert_true(s.latency_s.p50 > 0.4 && s.latency_s.p50 <= 0.5);
	assert_true(s.latency_s.p90 > 0.8 && s.latency_s.p90 <= 1.0);
	assert_true(s.latency_s.p99 > 0.9 && s.latency_s.p99 <= 1.0);
	assert_true(s.latency_s.p50 <= s.latency_s.p90 && s.latency_s.p90 <= s.latency_s.p99);
	/* one value: every quantile is it */
	for (int i = 0; i < 10; i++)
		add(ms, 1, 200, 3.3, 0, 0.3);
	model_stats_snapshot(ms, 1, &s);
	assert_float_equal(s.request_joules.p50, 3.3, 1e-9);
	assert_float_equal(s.request_joules.p99, 3.3, 1e-9);
	assert_float_equal(s.latency_s.p90, 0.3, 1e-12);
	/* two clusters: the median in the low one, p99 in the high one */
	for (int i = 0; i < 60; i++)
		add(ms, 2, 200, 0.004, 0, 1);
	for (int i = 0; i < 40; i++)
		add(ms, 2, 200, 800, 0, 1);
	model_stats_snapshot(ms, 2, &s);
	assert_true(s.request_joules.p50 >= 0.002 && s.request_joules.p50 <= 0.005);
	assert_true(s.request_joules.p99 > 500 && s.request_joules.p99 <= 800);
	assert_true(isnan(model_stats_quantile(&s.request_joules, 1.5)));
	model_stats_free(ms);
}

static void many_codes_fold_into_other(void **state)
{
	struct model_stats *ms = model_stats_new(1);
	struct model_stats_snapshot s;
	uint64_t total = 0;

	(void)state;
	for (int c = 100; c < 150; c++)
		add(ms, 0, c, 0, 0, 0);
	add(ms, 0, 700, 0, 0, 0);	/* not a status: 0 */
	model_stats_snapshot(ms, 0, &s);
	assert_int_equal(s.n_codes, MODEL_STATS_CODES);
	assert_int_equal(s.codes[0].code, 0);
	assert_int_equal(s.codes[1].code, 100);
	assert_int_equal(s.codes[MODEL_STATS_CODES - 1].code, MODEL_STATS_CODE_OTHER);
	for (size_t i = 0; i < s.n_codes; i++)
		total += s.codes[i].count;
	assert_int_equal(total, 51);
	assert_int_equal(s.codes[MODEL_STATS_CODES - 1].count, 51 - (MODEL_STATS_CODES - 1));
	model_stats_free(ms);
}

static void *adder(void *arg)
{
	for (int i = 0; i < 200000; i++)
		add(arg, 0, i % 3 ? 200 : 500, 0.5, 3, 0.01);
	return NULL;
}

/* The router and /metrics read snapshots while the main thread adds:
 * every snapshot is one consistent state. */
static void snapshots_are_consistent_under_adds(void **state)
{
	struct model_stats *ms = model_stats_new(1);
	struct model_stats_snapshot s;
	pthread_t th;
	int rounds = 0;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, adder, ms), 0);
	do {
		uint64_t codes = 0;

		model_stats_snapshot(ms, 0, &s);
		for (size_t i = 0; i < s.n_codes; i++)
			codes += s.codes[i].count;
		assert_int_equal(codes, s.requests);
		assert_int_equal(s.latency_s.count, s.requests);
		assert_int_equal(s.request_joules.count, s.requests_ok);
		assert_int_equal(s.joules_per_request.n, s.requests_ok);
		rounds++;
	} while (s.requests < 200000);
	pthread_join(th, NULL);
	assert_true(rounds > 0);
	model_stats_free(ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(moments_of_answered_requests),
		cmocka_unit_test(bucket_bounds_are_inclusive),
		cmocka_unit_test(quantiles_from_buckets),
		cmocka_unit_test(many_codes_fold_into_other),
		cmocka_unit_test(snapshots_are_consistent_under_adds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

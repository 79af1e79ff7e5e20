/* Attribution split: shares, clamps, and exact conservation every tick. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "attrib.h"

static void split_by_cpu_share(void **state)
{
	double cpu[] = { 0.5, 0.25 };
	uint64_t nj[2];
	/* 10 J total, 2 J idle: 8 J active; node busy 1.0 s -> 50% and 25% */
	struct attrib_tick t = { 10000000000ULL, 2000000000ULL, 1.0, cpu, 2 };
	struct attrib_result r = attrib_split(&t, nj);

	(void)state;
	assert_int_equal(nj[0], 4000000000ULL);
	assert_int_equal(nj[1], 2000000000ULL);
	assert_int_equal(r.attributed_nj, 6000000000ULL);
	assert_int_equal(r.unattributed_nj, 4000000000ULL);	/* idle 2 J + untracked 2 J */
}

static void workers_busier_than_node(void **state)
{
	/* /proc/stat and the BPF counters are read a moment apart: if the
	 * workers' sum exceeds node busy time, shares still add up to <= 1. */
	double cpu[] = { 0.9, 0.3 };
	uint64_t nj[2];
	struct attrib_tick t = { 5000000000ULL, 1000000000ULL, 1.0, cpu, 2 };
	struct attrib_result r = attrib_split(&t, nj);

	(void)state;
	assert_int_equal(r.attributed_nj, 4000000000ULL);
	assert_int_equal(nj[0], 3000000000ULL);
	assert_int_equal(nj[1], 1000000000ULL);
	assert_int_equal(r.unattributed_nj, 1000000000ULL);
}

static void idle_node_attributes_nothing(void **state)
{
	double cpu[] = { 0.0, 0.0 };
	uint64_t nj[2] = { 7, 7 };
	struct attrib_tick t = { 3000000000ULL, 3000000000ULL, 0.0, cpu, 2 };
	struct attrib_result r = attrib_split(&t, nj);

	(void)state;
	assert_int_equal(nj[0], 0);
	assert_int_equal(nj[1], 0);
	assert_int_equal(r.attributed_nj, 0);
	assert_int_equal(r.unattributed_nj, 3000000000ULL);
}

static void idle_above_total_is_clamped(void **state)
{
	/* A measured counter can read below the idle floor over a short tick. */
	double cpu[] = { 1.0 };
	uint64_t nj[1];
	struct attrib_tick t = { 1000000000ULL, 5000000000ULL, 1.0, cpu, 1 };
	struct attrib_result r = attrib_split(&t, nj);

	(void)state;
	assert_int_equal(nj[0], 0);
	assert_int_equal(r.unattributed_nj, 1000000000ULL);
}

static void negative_cpu_counts_as_zero(void **state)
{
	double cpu[] = { -0.5, 0.5 };
	uint64_t nj[2];
	struct attrib_tick t = { 2000000000ULL, 0, 1.0, cpu, 2 };
	struct attrib_result r = attrib_split(&t, nj);

	(void)state;
	assert_int_equal(nj[0], 0);
	assert_int_equal(nj[1], 1000000000ULL);
	assert_int_equal(r.attributed_nj + r.unattributed_nj, 2000000000ULL);
}

/* Random ticks: conservation is exact, and no worker gets more than its
 * share of the active energy (rounding goes down, never up). */
static void conservation_holds_exactly_every_tick(void **state)
{
	uint64_t nj[16], run_total = 0, run_attr = 0, run_unattr = 0;
	double cpu[16];

	(void)state;
	srand(12345);
	for (int tick = 0; tick < 100000; tick++) {
		size_t n = 1 + (size_t)(rand() % 16);
		double node = (double)rand() / RAND_MAX * 2.0, sum = 0;
		struct attrib_tick t;
		struct attrib_result r;
		uint64_t check = 0;

		for (size_t i = 0; i < n; i++) {
			cpu[i] = (double)rand() / RAND_MAX * 0.3;
			sum += cpu[i];
		}
		t.total_nj = (uint64_t)rand() * 1000ULL + (uint64_t)(rand() % 1000);
		t.idle_nj = (uint64_t)rand() * 300ULL;
		t.node_busy_cpu_s = node;
		t.worker_cpu_s = cpu;
		t.n_workers = n;
		r = attrib_split(&t, nj);
		for (size_t i = 0; i < n; i++) {
			double denom = node > sum ? node : sum;
			uint64_t idle = t.idle_nj < t.total_nj ? t.idle_nj : t.total_nj;
			double fair = (double)(t.total_nj - idle) * cpu[i] / denom;

			assert_true((double)nj[i] <= fair * (1 + 1e-12) + 1e-6);
			assert_true((double)nj[i] >= fair - 1.0 - fair * 1e-12);
			check += nj[i];
		}
		assert_int_equal(check, r.attributed_nj);
		assert_int_equal(r.attributed_nj + r.unattributed_nj, t.total_nj);
		run_total += t.total_nj;
		run_attr += r.attributed_nj;
		run_unattr += r.unattributed_nj;
	}
	assert_int_equal(run_attr + run_unattr, run_total);
}

static void joules_roundtrip(void **state)
{
	(void)state;
	assert_int_equal(attrib_nj(1.5), 1500000000ULL);
	assert_int_equal(attrib_nj(-3.0), 0);
	assert_int_equal(attrib_nj(0.0 / 0.0), 0);
	assert_true(attrib_joules(2500000000ULL) == 2.5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(split_by_cpu_share),
		cmocka_unit_test(workers_busier_than_node),
		cmocka_unit_test(idle_node_attributes_nothing),
		cmocka_unit_test(idle_above_total_is_clamped),
		cmocka_unit_test(negative_cpu_counts_as_zero),
		cmocka_unit_test(conservation_holds_exactly_every_tick),
		cmocka_unit_test(joules_roundtrip),
	};
	return cmocka_run_group_tests_name("attrib", tests, NULL, NULL);
}

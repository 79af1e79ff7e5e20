/* GPU busy estimator (window readings -> busy seconds per tick) and the
 * per-device GPU energy split: clamps, carries, wraparound, shares, and
 * exact conservation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "erg.h"
#include "gpu_attrib.h"
#include "gpu_busy.h"

#define MS 1000000ULL
#define SLOT(i) (1ULL << (ERG_GPU_WIN_SLOTS_SHIFT + (i)))

static void closed_windows_only(void **state)
{
	(void)state;
	assert_int_equal(gpu_busy_cumulative_ns(5 * MS, 0, 999 * MS), 5 * MS);
}

static void open_window_counts_up_to_now(void **state)
{
	uint64_t w = SLOT(0) | SLOT(3) | (100 * MS);

	(void)state;
	assert_int_equal(gpu_busy_cumulative_ns(5 * MS, w, 130 * MS), 35 * MS);
}

static void window_start_wraps_at_2_48(void **state)
{
	/* the start is kept mod 2^48: a window opened 2 ms before the clock
	 * crossed a multiple of 2^48 ns */
	uint64_t since = ERG_GPU_WIN_SINCE_MASK - 2 * MS + 1;
	uint64_t now = (1ULL << 48) * 3 + 3 * MS;

	(void)state;
	assert_int_equal(gpu_busy_cumulative_ns(0, SLOT(1) | since, now), 5 * MS);
}

static void window_start_after_now_is_zero(void **state)
{
	/* the map read a moment before another thread stamped its start */
	uint64_t w = SLOT(2) | (100 * MS + 5);

	(void)state;
	assert_int_equal(gpu_busy_cumulative_ns(7 * MS, w, 100 * MS), 7 * MS);
}

static void tick_reports_deltas(void **state)
{
	struct gpu_busy b;
	uint64_t cum[2] = { 100 * MS, 0 };
	double s[2];

	(void)state;
	assert_int_equal(gpu_busy_init(&b, 2), 0);
	gpu_busy_tick(&b, cum, 1.0, s);
	assert_float_equal(s[0], 0.100, 1e-12);
	assert_float_equal(s[1], 0.0, 1e-12);
	cum[0] = 350 * MS;
	cum[1] = 999 * MS;
	gpu_busy_tick(&b, cum, 1.0, s);
	assert_float_equal(s[0], 0.250, 1e-12);
	assert_float_equal(s[1], 0.999, 1e-12);
	gpu_busy_free(&b);
}

static void tick_clamps_and_carries(void **state)
{
	/* a reading 1.3 s ahead in a 1 s tick: 1 s now, 0.3 s next tick */
	struct gpu_busy b;
	uint64_t cum[1] = { 1300 * MS };
	double s[1];

	(void)state;
	assert_int_equal(gpu_busy_init(&b, 1), 0);
	gpu_busy_tick(&b, cum, 1.0, s);
	assert_float_equal(s[0], 1.0, 1e-12);
	gpu_busy_tick(&b, cum, 1.0, s);
	assert_float_equal(s[0], 0.3, 1e-12);
	gpu_busy_tick(&b, cum, 1.0, s);
	assert_float_equal(s[0], 0.0, 1e-12);
	gpu_busy_free(&b);
}

static void tick_ignores_readings_going_back(void **state)
{
	/* an open window dropped (process gone): nothing until the reading
	 * passes what was reported, never negative */
	struct gpu_busy b;
	uint64_t cum[1] = { 500 * MS };
	double s[1];

	(void)state;
	assert_int_equal(gpu_busy_init(&b, 1), 0);
	gpu_busy_tick(&b, cum, 1.0, s);
	cum[0] = 400 * MS;
	gpu_busy_tick(&b, cum, 1.0, s);
	assert_float_equal(s[0], 0.0, 1e-12);
	cum[0] = 650 * MS;
	gpu_busy_tick(&b, cum, 1.0, s);
	assert_float_equal(s[0], 0.150, 1e-12);
	gpu_busy_free(&b);
}

static void device_busy_is_capped_sum(void **state)
{
	double a[] = { 0.3, 0.4, -1.0 };
	double b[] = { 0.7, 0.6 };

	(void)state;
	assert_float_equal(gpu_busy_device_s(a, 3, 1.0), 0.7, 1e-12);
	assert_float_equal(gpu_busy_device_s(b, 2, 1.0), 1.0, 1e-12);
	assert_float_equal(gpu_busy_device_s(b, 2, 0.0), 0.0, 1e-12);
}

static void split_by_busy_share_per_device(void **state)
{
	/* device 0: 100 J, 20 J idle, busy 1 s: workers 0.5 s and 0.25 s of it
	 * (the other 0.25 s untracked); device 1: 50 J, 10 J idle, one worker
	 * busy all of its 0.5 s; worker 3 on no device */
	struct gpu_attrib_device devs[2] = {
		{ 100000000000ULL, 20000000000ULL, 1.0 },
		{ 50000000000ULL, 10000000000ULL, 0.5 },
	};
	double busy[4] = { 0.5, 0.25, 0.5, 0.9 };
	int dev[4] = { 0, 0, 1, -1 };
	uint64_t nj[4] = { 7, 0, 0, 0 };
	struct gpu_attrib_tick t = { devs, 2, busy, dev, 4 };
	struct attrib_result r = gpu_attrib_split(&t, nj);

	(void)state;
	assert_int_equal(nj[0], 7 + 40000000000ULL);	/* added, not overwritten */
	assert_int_equal(nj[1], 20000000000ULL);
	assert_int_equal(nj[2], 40000000000ULL);
	assert_int_equal(nj[3], 0);
	assert_int_equal(r.attributed_nj, 100000000000ULL);
	/* idle floors 30 J + the untracked quarter of device 0's 80 J */
	assert_int_equal(r.unattributed_nj, 50000000000ULL);
}

static void untracked_share_stays_unattributed(void **state)
{
	/* NVML says the device was busy 0.8 s; tracked workers 0.2 s of it */
	struct gpu_attrib_device devs[1] = { { 90000000000ULL, 10000000000ULL, 0.8 } };
	double busy[1] = { 0.2 };
	int dev[1] = { 0 };
	uint64_t nj[1] = { 0 };
	struct gpu_attrib_tick t = { devs, 1, busy, dev, 1 };
	struct attrib_result r = gpu_attrib_split(&t, nj);

	(void)state;
	assert_int_equal(nj[0], 20000000000ULL);	/* a quarter of 80 J active */
	assert_int_equal(r.unattributed_nj, 70000000000ULL);
}

static void conservation_is_exact(void **state)
{
	struct gpu_attrib_device devs[3];
	double busy[8];
	int dev[8];
	uint64_t nj[8];

	(void)state;
	srand(4242);
	for (int iter = 0; iter < 5000; iter++) {
		uint64_t total = 0, active = 0, sum = 0;
		struct gpu_attrib_tick t = { devs, 3, busy, dev, 8 };
		struct attrib_result r;

		for (int d = 0; d < 3; d++) {
			devs[d].total_nj = ((uint64_t)rand() << 20) + (uint64_t)rand();
			devs[d].idle_nj = (uint64_t)rand() * 1000ULL;
			devs[d].busy_s = (rand() % 1000) / 999.0;
			total += devs[d].total_nj;
			active += devs[d].total_nj > devs[d].idle_nj ? devs[d].total_nj - devs[d].idle_nj : 0;
		}
		for (int w = 0; w < 8; w++) {
			busy[w] = (rand() % 1000) / 997.0 - 0.1;
			dev[w] = rand() % 4 - 1;
			nj[w] = 0;
		}
		r = gpu_attrib_split(&t, nj);
		for (int w = 0; w < 8; w++)
			sum += nj[w];
		assert_int_equal(r.attributed_nj + r.unattributed_nj, total);
		assert_int_equal(sum, r.attributed_nj);
		assert_true(r.attributed_nj <= active);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(closed_windows_only),
		cmocka_unit_test(open_window_counts_up_to_now),
		cmocka_unit_test(window_start_wraps_at_2_48),
		cmocka_unit_test(window_start_after_now_is_zero),
		cmocka_unit_test(tick_reports_deltas),
		cmocka_unit_test(tick_clamps_and_carries),
		cmocka_unit_test(tick_ignores_readings_going_back),
		cmocka_unit_test(device_busy_is_capped_sum),
		cmocka_unit_test(split_by_busy_share_per_device),
		cmocka_unit_test(untracked_share_stays_unattributed),
		cmocka_unit_test(conservation_is_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

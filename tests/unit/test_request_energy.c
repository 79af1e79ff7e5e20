/* Per-request split of worker energy in erg serve: weights, boundaries, and
 * the exact identity per-request + non-request = worker over random runs. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <cmocka.h>
#include "request_energy.h"
#include "rng.h"

#define J 1000000000ULL

static void one_request_over_the_whole_tick_gets_it_all(void **state)
{
	struct request_energy *re = request_energy_new(1, 10.0);
	uint64_t wnj[1] = { 3 * J }, req[1], non[1];
	struct request_record rec[2];
	uint64_t id;

	(void)state;
	id = request_energy_begin(re, 0, 7, 10.0);
	assert_true(id > 0);
	assert_int_equal(request_energy_in_flight(re, 0), 1);
	assert_int_equal(request_energy_progress(re, id, 100, 4), 0);
	assert_int_equal(request_energy_end(re, id, 11.0, 200, 50, 100, 0.25, 1.0), 0);
	assert_int_equal(request_energy_take_completed(re, rec, 2), 0);	/* not split yet */
	request_energy_tick(re, 11.0, wnj, req, non);
	assert_int_equal(req[0], 3 * J);
	assert_int_equal(non[0], 0);
	assert_int_equal(request_energy_take_completed(re, rec, 2), 1);
	assert_int_equal(rec[0].id, id);
	assert_int_equal(rec[0].model, 7);
	assert_int_equal(rec[0].worker, 0);
	assert_int_equal(rec[0].status, 200);
	assert_int_equal(rec[0].bytes_in, 50);
	assert_int_equal(rec[0].bytes_out, 100);
	assert_int_equal(rec[0].sse_events, 4);
	assert_int_equal(rec[0].nj, 3 * J);
	assert_true(rec[0].end_s - rec[0].start_s > 0.999 && rec[0].end_s - rec[0].start_s < 1.001);
	assert_true(rec[0].start_s > 1e9);	/* unix seconds */
	assert_true(rec[0].ttfb_s == 0.25 && rec[0].latency_s == 1.0);
	assert_int_equal(request_energy_in_flight(re, 0), 0);
	assert_int_equal(request_energy_progress(re, id, 1, 1), -1);	/* ended */
	assert_int_equal(request_energy_end(re, id, 12.0, 200, 0, 0, 0, 0), -1);
	request_energy_free(re);
}

/* Non-request energy is the worker's idle rate (learnt from ticks with no
 * request) over the time with no request in flight; the rest is the
 * requests', however short their part of the tick. */
static void idle_part_of_the_tick_is_non_request(void **state)
{
	struct request_energy *re = request_energy_new(2, 0.0);
	uint64_t wnj[2] = { 1 * J, 5 * J }, req[2], non[2], rq, nr;
	uint64_t id;

	(void)state;
	request_energy_tick(re, 2.0, wnj, req, non);	/* no request: 0.5 W idle */
	assert_int_equal(req[0], 0);
	assert_int_equal(non[0], 1 * J);
	id = request_energy_begin(re, 0, 0, 3.0);	/* busy 3..4 of 2..6 */
	request_energy_end(re, id, 4.0, 200, 1, 1, 0, 1);
	wnj[0] = 4 * J;
	request_energy_tick(re, 6.0, wnj, req, non);
	assert_int_equal(non[0], 3 * J / 2);	/* 3 s without a request at 0.5 W */
	assert_int_equal(req[0], 5 * J / 2);
	assert_int_equal(req[1], 0);	/* no request on worker 1 */
	assert_int_equal(non[1], 5 * J);
	request_energy_totals(re, 1, &rq, &nr);
	assert_int_equal(rq, 0);
	assert_int_equal(nr, 10 * J);
	/* idle rate above what the tick used: the requests keep the part of
	 * the tick they were in flight (0.5 of 2 s) */
	id = request_energy_begin(re, 0, 0, 6.5);
	request_energy_end(re, id, 7.0, 200, 1, 1, 0, 1);
	wnj[0] = J / 10;
	request_energy_tick(re, 8.0, wnj, req, non);
	assert_int_equal(req[0], J / 40);
	assert_int_equal(non[0], J / 10 - J / 40);
	request_energy_free(re);
}

/* A worker that computes only for requests (no idle tick seen: idle rate 0)
 * gives them all of its joules, split by time in flight when nothing
 * streamed. */
static void overlapping_requests_count_busy_time_once(void **state)
{
	struct request_energy *re = request_energy_new(1, 0.0);
	uint64_t wnj[1] = { 10 * J }, req[1], non[1];
	struct request_record rec[4];
	uint64_t a, b;

	(void)state;
	a = request_energy_begin(re, 0, 0, 1.0);	/* 1..5 */
	b = request_energy_begin(re, 0, 0, 2.0);	/* 2..4 */
	request_energy_end(re, b, 4.0, 200, 0, 0, 0, 0);
	request_energy_end(re, a, 5.0, 200, 0, 0, 0, 0);
	request_energy_tick(re, 10.0, wnj, req, non);
	assert_int_equal(req[0], 10 * J);
	assert_int_equal(non[0], 0);
	assert_int_equal(request_energy_take_completed(re, rec, 4), 2);
	/* nothing streamed: by time in flight, 4 s : 2 s */
	for (int i = 0; i < 2; i++)
		assert_int_equal(rec[i].nj, rec[i].id == a ? 20 * J / 3 + 1 : 10 * J / 3);
	assert_int_equal(rec[0].nj + rec[1].nj, 10 * J);
	request_energy_free(re);
}

/* Each kind (events, bytes only, quiet) gets its time's part of the tick,
 * then shares it by progress: a request in prefill next to streaming ones
 * is not left at 0 J. */
static void every_request_in_flight_gets_its_time_share(void **state)
{
	struct request_energy *re = request_energy_new(1, 0.0);
	uint64_t wnj[1] = { 6 * J }, req[1], non[1];
	struct request_record rec[4];
	uint64_t a, b, c;

	(void)state;
	a = request_energy_begin(re, 0, 0, 0.0);
	b = request_energy_begin(re, 0, 0, 0.0);
	c = request_energy_begin(re, 0, 0, 0.0);	/* in prefill: no output */
	request_energy_progress(re, a, 1000, 1);
	request_energy_progress(re, b, 10, 2);
	request_energy_tick(re, 1.0, wnj, req, non);
	assert_int_equal(req[0], 6 * J);
	/* tick 2: no events, bytes only */
	request_energy_progress(re, a, 100, 0);
	request_energy_progress(re, c, 300, 0);
	request_energy_tick(re, 2.0, wnj, req, non);
	request_energy_end(re, a, 2.0, 200, 0, 1100, 0, 0);
	request_energy_end(re, b, 2.0, 200, 0, 10, 0, 0);
	request_energy_end(re, c, 2.0, 200, 0, 300, 0, 0);
	request_energy_tick(re, 2.0, wnj, req, non);	/* zero-length tick */
	assert_int_equal(req[0], 0);	/* no time, nothing streamed: non-request */
	assert_int_equal(non[0], 6 * J);
	assert_int_equal(request_energy_take_completed(re, rec, 4), 3);
	for (int i = 0; i < 3; i++) {
		/* tick 1: events 2/3 of 6 J by 1:2, c quiet 1/3; the rounding
		 * nanojoule to b. tick 2: bytes 2/3 by 100:300, b quiet 1/3 */
		uint64_t want = rec[i].id == a ? 7 * J / 3 : rec[i].id == b ? 14 * J / 3 + 1 : 5 * J;

		assert_int_equal(rec[i].nj, want);
	}
	request_energy_free(re);
}

/* The reported defect: one request streaming SSE events and one plain
 * request in flight over the same tick; the plain one got 0 J. */
static void plain_request_beside_a_stream_is_not_free(void **state)
{
	struct request_energy *re = request_energy_new(1, 0.0);
	uint64_t wnj[1] = { 4 * J }, req[1], non[1];
	struct request_record rec[2];
	uint64_t sse, plain;

	(void)state;
	sse = request_energy_begin(re, 0, 0, 0.0);
	plain = request_energy_begin(re, 0, 0, 1.0);	/* 1..3 of 0..4 */
	request_energy_progress(re, sse, 4000, 40);
	request_energy_progress(re, plain, 200, 0);
	request_energy_end(re, plain, 3.0, 200, 100, 200, 1.9, 2.0);
	request_energy_end(re, sse, 4.0, 200, 100, 4000, 0.1, 4.0);
	request_energy_tick(re, 4.0, wnj, req, non);
	assert_int_equal(req[0] + non[0], 4 * J);
	assert_int_equal(request_energy_take_completed(re, rec, 2), 2);
	for (int i = 0; i < 2; i++)	/* 4 s : 2 s in flight */
		assert_int_equal(rec[i].nj, rec[i].id == sse ? 8 * J / 3 + 1 : 4 * J / 3);
	request_energy_free(re);
}

static void ids_stay_unique_as_the_table_grows(void **state)
{
	struct request_energy *re = request_energy_new(3, 0.0);
	static uint64_t ids[5000];
	struct request_record rec[64];
	uint64_t wnj[3] = { J, J, J }, got = 0;

	(void)state;
	for (int i = 0; i < 5000; i++) {
		ids[i] = request_energy_begin(re, (unsigned)(i % 3), 0, 1.0);
		assert_true(ids[i] > (i ? ids[i - 1] : 0));
		if (i % 2)
			request_energy_end(re, ids[i - 1], 1.5, 200, 0, 0, 0, 0);
	}
	for (int i = 0; i < 5000; i++)
		assert_int_equal(request_energy_progress(re, ids[i], 1, 0), i % 2 == 0 && i < 4999 ? -1 : 0);
	assert_int_equal(request_energy_begin(re, 3, 0, 1.0), 0);	/* no such worker */
	request_energy_tick(re, 2.0, wnj, NULL, NULL);
	for (size_t n; (n = request_energy_take_completed(re, rec, 64)) > 0;)
		got += n;
	assert_int_equal(got, 2500);
	request_energy_free(re);
}

/* Many short requests within one tick, a few in flight at a time (a
 * proxy at tens of thousands of requests/s): the table of requests in
 * flight stays the size of what is in flight, the ended ones wait in their
 * own array, and every one of them gets its share, exactly. */
static void ended_requests_do_not_grow_the_table(void **state)
{
	enum { N = 20000, LIVE = 8 };
	struct request_energy *re = request_energy_new(1, 0.0);
	static uint64_t ids[N];
	struct request_record rec[256];
	uint64_t wnj[1] = { 7 * J }, req[1], non[1], got = 0, sum = 0;
	size_t slots_cap, ended_cap;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = request_energy_begin(re, 0, 0, 0.1 + i * 1e-5);
		assert_true(ids[i] > 0);
		if (i >= LIVE)
			assert_int_equal(request_energy_end(re, ids[i - LIVE], 0.1 + i * 1e-5, 200, 1, 1, 0, 0), 0);
	}
	request_energy_capacity(re, &slots_cap, &ended_cap, NULL);
	assert_int_equal(slots_cap, REQUEST_ENERGY_MIN_CAP);	/* LIVE in flight fit the smallest */
	assert_true(ended_cap >= N - LIVE);
	request_energy_tick(re, 1.0, wnj, req, non);
	assert_true(req[0] + non[0] == wnj[0]);
	for (size_t n; (n = request_energy_take_completed(re, rec, 256)) > 0;)
		for (size_t i = 0; i < n; i++) {
			assert_true(rec[i].nj > 0);
			sum += rec[i].nj;
			got++;
		}
	assert_int_equal(got, N - LIVE);
	/* the LIVE still in flight got theirs too: ended ones plus them = the
	 * requests' part */
	for (int i = N - LIVE; i < N; i++)
		assert_int_equal(request_energy_end(re, ids[i], 1.0, 200, 1, 1, 0, 0), 0);
	request_energy_tick(re, 1.0, (uint64_t[1]){ 0 }, NULL, NULL);
	for (size_t n; (n = request_energy_take_completed(re, rec, 256)) > 0;)
		for (size_t i = 0; i < n; i++)
			sum += rec[i].nj;
	assert_true(sum == req[0]);
	request_energy_free(re);
}

/* Random traffic on four workers over thousands of ticks: every tick each
 * worker's split is exact, and the completed requests' joules plus the
 * non-request joules add up to every joule handed in. */
static void random_runs_conserve_every_nanojoule(void **state)
{
	enum { W = 4, LIVE = 64, TICKS = 5000 };
	struct request_energy *re = request_energy_new(W, 0.0);
	struct rng rng;
	uint64_t live[LIVE] = { 0 };
	unsigned __int128 in_total = 0, non_total = 0, rec_total = 0, req_total = 0;
	struct request_record rec[256];
	double t = 0;

	(void)state;
	rng_seed(&rng, 42, 0);
	for (int tick = 0; tick < TICKS; tick++) {
		uint64_t wnj[W], req[W], non[W];
		double next = t + rng_uniform(&rng) * 2;

		for (int k = 0, n = (int)(rng_uniform(&rng) * 12); k < n; k++) {
			int s = (int)(rng_uniform(&rng) * LIVE);
			double at = t + (next - t) * rng_uniform(&rng);

			if (!live[s])
				live[s] = request_energy_begin(re, (unsigned)(rng_uniform(&rng) * W), 0, at);
			else if (rng_uniform(&rng) < 0.5)
				request_energy_progress(re, live[s], (uint64_t)(rng_uniform(&rng) * 3000),
							rng_uniform(&rng) < 0.5 ? (uint64_t)(rng_uniform(&rng) * 5) : 0);
			else {
				assert_int_equal(request_energy_end(re, live[s], at, 200, 1, 1, 0, 0), 0);
				live[s] = 0;
			}
		}
		for (int w = 0; w < W; w++) {
			/* up to ~1.8e19 nJ per tick: the split must not overflow */
			wnj[w] = rng_uniform(&rng) < 0.01 ? UINT64_MAX / 8 : (uint64_t)(rng_uniform(&rng) * 1e10);
			in_total += wnj[w];
		}
		request_energy_tick(re, next, wnj, req, non);
		for (int w = 0; w < W; w++) {
			assert_int_equal(req[w] + non[w], wnj[w]);
			req_total += req[w];
			non_total += non[w];
		}
		for (size_t n; (n = request_energy_take_completed(re, rec, 256)) > 0;)
			for (size_t i = 0; i < n; i++)
				rec_total += rec[i].nj;
		t = next;
	}
	for (int s = 0; s < LIVE; s++)
		if (live[s])
			request_energy_end(re, live[s], t, 200, 0, 0, 0, 0);
	request_energy_tick(re, t, (uint64_t[W]){ 0 }, NULL, NULL);
	for (size_t n; (n = request_energy_take_completed(re, rec, 256)) > 0;)
		for (size_t i = 0; i < n; i++)
			rec_total += rec[i].nj;
	assert_true(req_total + non_total == in_total);
	assert_true(rec_total == req_total);
	assert_true(req_total > 0 && non_total > 0);
	request_energy_free(re);
}

struct proxy_thread {
	struct request_energy *re;
	unsigned worker;
	int requests;
};

static void *proxy_traffic(void *arg)
{
	struct proxy_thread *p = arg;

	for (int i = 0; i < p->requests; i++) {
		uint64_t id = request_energy_begin(p->re, p->worker, 0, 0.0);

		for (int k = 0; k < 5; k++)
			request_energy_progress(p->re, id, 100, 1);
		request_energy_end(p->re, id, 0.0, 200, 10, 500, 0, 0);
	}
	return NULL;
}

/* Proxy threads begin, stream and end requests while the main thread
 * ticks: nothing is lost or handed out twice. */
static void concurrent_proxy_threads_and_ticks(void **state)
{
	enum { T = 3, N = 20000 };
	struct request_energy *re = request_energy_new(T, 0.0);
	struct proxy_thread p[T];
	pthread_t th[T];
	struct request_record rec[512];
	uint64_t got = 0, events = 0, nj = 0, req_total = 0;
	bool running = true;

	(void)state;
	for (int i = 0; i < T; i++) {
		p[i] = (struct proxy_thread){ re, (unsigned)i, N };
		assert_int_equal(pthread_create(&th[i], NULL, proxy_traffic, &p[i]), 0);
	}
	while (running) {
		uint64_t wnj[T] = { 1000, 1000, 1000 }, req[T], non[T];

		running = got < (uint64_t)T * N;
		request_energy_tick(re, 0.0, wnj, req, non);
		for (int w = 0; w < T; w++) {
			assert_int_equal(req[w] + non[w], 1000);
			req_total += req[w];
		}
		for (size_t n; (n = request_energy_take_completed(re, rec, 512)) > 0;)
			for (size_t i = 0; i < n; i++, got++) {
				events += rec[i].sse_events;
				nj += rec[i].nj;
			}
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(got, (uint64_t)T * N);
	assert_int_equal(events, (uint64_t)T * N * 5);
	assert_int_equal(nj, req_total);
	request_energy_free(re);
}

/* A burst of requests grows both tables; quiet ticks after it bring them
 * back to their least size, while a request in flight across every halving
 * keeps its slot and its joules, and every tick still conserves to the nJ. */
static void tables_shrink_back_after_a_burst(void **state)
{
	enum { BURST = 5000, QUIET_TICKS = 40 };
	struct request_energy *re = request_energy_new(2, 0.0);
	static struct request_record rec[BURST];
	uint64_t ids[BURST], long_id, in_total = 0, req_total = 0, rec_total = 0, long_nj = 0;
	size_t slots_cap, ended_cap, done_cap, burst_slots, burst_ended, burst_done, n;
	struct rng rng;
	double t = 0.0;

	(void)state;
	rng_seed(&rng, 7, 1);
	long_id = request_energy_begin(re, 1, 0, 0.0);	/* in flight through it all */
	assert_true(long_id > 0);
	for (int i = 0; i < BURST; i++) {
		ids[i] = request_energy_begin(re, (unsigned)(i % 2), 0, 0.1);
		assert_true(ids[i] > 0);
	}
	for (int i = 0; i < BURST; i++)
		assert_int_equal(request_energy_end(re, ids[i], 0.5, 200, 1, 1, 0, 0.4), 0);
	for (int tick = 0; tick <= QUIET_TICKS; tick++) {
		uint64_t wnj[2] = { rng_next(&rng) % (5 * J), rng_next(&rng) % (5 * J) }, req[2], non[2];

		t += 1.0;
		if (tick > 0) {	/* one short request per quiet tick */
			uint64_t id = request_energy_begin(re, 0, 0, t - 0.7);

			assert_int_equal(request_energy_end(re, id, t - 0.2, 200, 1, 1, 0, 0.5), 0);
		}
		request_energy_tick(re, t, wnj, req, non);
		for (int w = 0; w < 2; w++) {
			assert_true(req[w] + non[w] == wnj[w]);
			in_total += wnj[w];
			req_total += req[w];
		}
		if (tick == 0) {
			request_energy_capacity(re, &burst_slots, &burst_ended, &burst_done);
			assert_true(burst_slots >= 2 * BURST);	/* grew past half full */
			assert_true(burst_ended >= BURST);
			assert_true(burst_done >= BURST);
		}
		while ((n = request_energy_take_completed(re, rec, BURST)) > 0)
			for (size_t i = 0; i < n; i++)
				rec_total += rec[i].nj;
	}
	request_energy_capacity(re, &slots_cap, &ended_cap, &done_cap);
	assert_int_equal(slots_cap, REQUEST_ENERGY_MIN_CAP);
	assert_int_equal(ended_cap, REQUEST_ENERGY_MIN_CAP);
	assert_int_equal(done_cap, REQUEST_ENERGY_MIN_CAP);
	/* the long request was found through every halving */
	assert_int_equal(request_energy_in_flight(re, 1), 1);
	assert_int_equal(request_energy_progress(re, long_id, 10, 1), 0);
	assert_int_equal(request_energy_end(re, long_id, t + 0.5, 200, 1, 1, 0, t + 0.5), 0);
	request_energy_tick(re, t + 1.0, (uint64_t[2]){ 0, 3 * J }, NULL, NULL);
	in_total += 3 * J;
	while ((n = request_energy_take_completed(re, rec, BURST)) > 0)
		for (size_t i = 0; i < n; i++) {
			rec_total += rec[i].nj;
			if (rec[i].id == long_id)
				long_nj = rec[i].nj;
		}
	assert_true(long_nj > 0);
	{
		uint64_t r0, n0, r1, n1;

		request_energy_totals(re, 0, &r0, &n0);
		request_energy_totals(re, 1, &r1, &n1);
		assert_true(r0 + n0 + r1 + n1 == in_total);
		assert_true(r0 + r1 >= req_total);	/* the last tick's share went to the long one */
		assert_true(rec_total == r0 + r1);	/* every request nJ reached a record */
	}
	request_energy_free(re);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_request_over_the_whole_tick_gets_it_all),
		cmocka_unit_test(idle_part_of_the_tick_is_non_request),
		cmocka_unit_test(overlapping_requests_count_busy_time_once),
		cmocka_unit_test(every_request_in_flight_gets_its_time_share),
		cmocka_unit_test(plain_request_beside_a_stream_is_not_free),
		cmocka_unit_test(ids_stay_unique_as_the_table_grows),
		cmocka_unit_test(ended_requests_do_not_grow_the_table),
		cmocka_unit_test(random_runs_conserve_every_nanojoule),
		cmocka_unit_test(concurrent_proxy_threads_and_ticks),
		cmocka_unit_test(tables_shrink_back_after_a_burst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Request windows from socket events, and the per-request joule split. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "requests.h"

/* event at time t (s) when process 100 had used cpu_ms of CPU */
static void ev(struct request_tracker *rt, unsigned worker, double t, double cpu_ms, int fd, unsigned dir,
	       unsigned bytes)
{
	struct erg_sock_event e = { .ts_ns = (unsigned long long)(t * 1e9),
				    .cpu_ns = (unsigned long long)(cpu_ms * 1e6),
				    .sock = (unsigned long long)fd, .tgid = 100 + worker,
				    .dir = dir, .bytes = bytes };

	requests_event(rt, worker, &e);
}

static void one_request_gets_the_cpu_it_used(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	uint64_t worker_nj[1] = { 1000000000ULL }, req[1], nonreq[1];
	double cpu[1] = { 0.400 };	/* the worker used 400 ms this tick */
	struct request_info done[4];

	(void)state;
	ev(rt, 0, 10.10, 50, 7, ERG_SOCK_IN, 300);	/* 50 ms before: not the request's */
	ev(rt, 0, 10.50, 250, 7, ERG_SOCK_OUT, 100);
	ev(rt, 0, 10.75, 350, 7, ERG_SOCK_OUT, 100);	/* 300 ms inside the window */
	ev(rt, 0, 10.80, 400, 7, ERG_SOCK_CLOSE, 0);	/* after its last byte out: not its */
	requests_split(rt, 11.0, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0], 750000000ULL);	/* 300 of 400 ms */
	assert_int_equal(nonreq[0], 250000000ULL);
	assert_int_equal(requests_take_completed(rt, done, 4), 1);
	assert_int_equal(done[0].bytes_in, 300);
	assert_int_equal(done[0].bytes_out, 200);
	assert_int_equal(done[0].cpu_ns, 300000000ULL);
	assert_int_equal(done[0].nj, 750000000ULL);
	assert_true(done[0].end_s > 10.74 && done[0].end_s < 10.76);
	assert_int_equal(requests_take_completed(rt, done, 4), 0);
	requests_free(rt);
}

static void keep_alive_splits_requests(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	uint64_t worker_nj[1] = { 4000000000ULL }, req[1], nonreq[1];
	double cpu[1] = { 0.4 };
	struct request_info done[4];

	(void)state;
	ev(rt, 0, 0.0, 0, 5, ERG_SOCK_IN, 10);
	ev(rt, 0, 1.0, 100, 5, ERG_SOCK_OUT, 10);	/* first: 100 ms */
	ev(rt, 0, 2.0, 100, 5, ERG_SOCK_IN, 10);	/* same connection, next request */
	ev(rt, 0, 2.5, 150, 5, ERG_SOCK_IN, 10);	/* its body, still no answer */
	ev(rt, 0, 4.0, 300, 5, ERG_SOCK_OUT, 10);	/* second: 200 ms */
	requests_split(rt, 4.0, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0], 3000000000ULL);	/* 300 of 400 ms */
	assert_int_equal(nonreq[0], 1000000000ULL);
	assert_int_equal(requests_take_completed(rt, done, 4), 1);	/* the second is still open */
	assert_int_equal(done[0].nj, 1000000000ULL);
	assert_int_equal(done[0].bytes_in, 10);
	assert_int_equal(requests_active(rt, 0), 1);
	requests_free(rt);
}

static void concurrent_requests_share_cpu(void **state)
{
	struct request_tracker *rt = requests_new(2, 5.0);
	uint64_t worker_nj[2] = { 3000000000ULL, 777 }, req[2], nonreq[2], a = 0, b = 0;
	double cpu[2] = { 0.3, 0.1 };
	struct request_info done[4];

	(void)state;
	ev(rt, 0, 0.0, 0, 5, ERG_SOCK_IN, 10);
	ev(rt, 0, 1.0, 100, 6, ERG_SOCK_IN, 10);	/* 100 ms: fd 5 alone */
	ev(rt, 0, 2.0, 200, 5, ERG_SOCK_OUT, 10);	/* 100 ms: both, 50 each */
	ev(rt, 0, 3.0, 300, 6, ERG_SOCK_OUT, 10);	/* 100 ms: fd 6 alone (5 was answered) */
	ev(rt, 0, 3.0, 300, 5, ERG_SOCK_CLOSE, 0);
	ev(rt, 0, 3.0, 300, 6, ERG_SOCK_CLOSE, 0);
	requests_split(rt, 3.0, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0], 3000000000ULL);
	assert_int_equal(nonreq[0], 0);
	assert_int_equal(req[1], 0);		/* worker 1 had no requests */
	assert_int_equal(nonreq[1], 777);
	assert_int_equal(requests_take_completed(rt, done, 4), 2);
	for (int i = 0; i < 2; i++) {
		if (done[i].conn == 5)
			a = done[i].nj;
		else
			b = done[i].nj;
	}
	assert_int_equal(a, 1500000000ULL);	/* 100 + 50 ms */
	assert_int_equal(b, 1500000000ULL);	/* 50 + 100 ms */
	requests_free(rt);
}

static void long_request_charged_by_stamps_each_tick(void **state)
{
	struct request_tracker *rt = requests_new(1, 2.0);
	uint64_t worker_nj[1] = { 1000 }, req[1], nonreq[1], total = 0;
	double cpu[1] = { 0.5 };
	struct request_info done[4];
	unsigned tgids[4];

	(void)state;
	ev(rt, 0, 0.5, 0, 9, ERG_SOCK_IN, 10);
	assert_int_equal(requests_open_tgids(rt, tgids, 4), 1);
	assert_int_equal(tgids[0], 100);
	requests_stamp(rt, 100, 1.0, 500000000ULL);	/* 500 ms used by the tick end */
	requests_split(rt, 1.0, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0], 1000);
	total += req[0];
	ev(rt, 0, 1.5, 750, 9, ERG_SOCK_OUT, 10);
	requests_split(rt, 2.0, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0], 500);			/* 250 of 500 ms */
	total += req[0];
	assert_int_equal(requests_take_completed(rt, done, 4), 0);	/* keep-alive: not ended yet */
	requests_split(rt, 3.0, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0], 0);
	requests_split(rt, 4.0, worker_nj, cpu, req, nonreq);	/* 2.5 s quiet > 2 s timeout */
	assert_int_equal(requests_take_completed(rt, done, 4), 1);
	assert_int_equal(done[0].nj, total);
	assert_int_equal(done[0].cpu_ns, 750000000ULL);
	assert_true(done[0].end_s > 1.49 && done[0].end_s < 1.51);
	requests_free(rt);
}

static void conservation_random(void **state)
{
	struct request_tracker *rt = requests_new(3, 1.0);
	uint64_t worker_nj[3], req[3], nonreq[3];
	double cpu[3], cpu_ms[3] = { 0 };
	struct request_info done[64];
	double t = 0;
	size_t n;

	(void)state;
	srand(7);
	for (int tick = 0; tick < 2000; tick++) {
		for (int k = 0; k < 20; k++) {
			unsigned w = (unsigned)(rand() % 3);

			t += 0.005;
			cpu_ms[w] += rand() % 3;
			ev(rt, w, t, cpu_ms[w], 3 + rand() % 6, (unsigned)(rand() % 3), 1 + (unsigned)(rand() % 100));
		}
		for (int w = 0; w < 3; w++) {
			worker_nj[w] = (uint64_t)rand() * 10ULL;
			cpu[w] = (double)(rand() % 100) / 1000.0;
		}
		requests_split(rt, t, worker_nj, cpu, req, nonreq);
		for (int w = 0; w < 3; w++)
			assert_int_equal(req[w] + nonreq[w], worker_nj[w]);
		while ((n = requests_take_completed(rt, done, 64)) > 0)
			for (size_t i = 0; i < n; i++)
				assert_true(done[i].end_s >= done[i].start_s);
	}
	requests_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_request_gets_the_cpu_it_used),
		cmocka_unit_test(keep_alive_splits_requests),
		cmocka_unit_test(concurrent_requests_share_cpu),
		cmocka_unit_test(long_request_charged_by_stamps_each_tick),
		cmocka_unit_test(conservation_random),
	};
	return cmocka_run_group_tests_name("requests", tests, NULL, NULL);
}

/* Request windows from socket events, and the per-request joule split. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* An event carrying its first bytes (head), as the BPF side copies them. */
static void evh(struct request_tracker *rt, double t, double cpu_ms, int fd, unsigned dir, const char *head,
		unsigned sse)
{
	struct erg_sock_event e = { .ts_ns = (unsigned long long)(t * 1e9),
				    .cpu_ns = (unsigned long long)(cpu_ms * 1e6),
				    .sock = (unsigned long long)fd, .tgid = 100, .dir = dir,
				    .sse_events = sse };
	size_t n = strlen(head);

	e.bytes = (unsigned)n;
	e.head_len = (unsigned)(n < ERG_SOCK_HEAD_LEN ? n : ERG_SOCK_HEAD_LEN);
	memcpy(e.head, head, e.head_len);
	requests_event(rt, 0, &e);
}

/* One request/response exchange on connection fd, closed after. */
static void exchange(struct request_tracker *rt, double t, int fd, const char *req, const char *resp)
{
	evh(rt, t, t * 100, fd, ERG_SOCK_IN, req, 0);
	evh(rt, t + 0.1, t * 100 + 5, fd, ERG_SOCK_OUT, resp, 0);
	evh(rt, t + 0.2, t * 100 + 5, fd, ERG_SOCK_CLOSE, "", 0);
}

/* Split, then take everything completed; returns how many. */
static size_t settle(struct request_tracker *rt, double now, struct request_info *done, size_t max)
{
	uint64_t worker_nj[1] = { 1000000 }, req[1], nonreq[1];
	double cpu[1] = { 1.0 };

	requests_split(rt, now, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0] + nonreq[0], worker_nj[0]);
	return requests_take_completed(rt, done, max);
}

#define OK_200 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

static void counted_paths_only(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[8];

	(void)state;
	exchange(rt, 1.0, 3, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n", OK_200);
	exchange(rt, 2.0, 4, "GET /health HTTP/1.1\r\n\r\n", OK_200);
	exchange(rt, 3.0, 5, "GET /metrics HTTP/1.1\r\n\r\n", OK_200);
	exchange(rt, 4.0, 6, "POST /completion HTTP/1.1\r\n\r\n", "HTTP/1.1 503 Busy\r\n\r\n");
	assert_int_equal(settle(rt, 5.0, done, 8), 2);
	assert_string_equal(done[0].method, "POST");
	assert_string_equal(done[0].path, "/v1/chat/completions");
	assert_int_equal(done[0].status, 200);
	assert_string_equal(done[1].path, "/completion");
	assert_int_equal(done[1].status, 503);
	assert_false(done[0].partial || done[1].partial);
	/* another list: only /health counts now */
	assert_int_equal(requests_set_paths(rt, "/health"), 0);
	exchange(rt, 6.0, 7, "GET /health HTTP/1.1\r\n\r\n", OK_200);
	exchange(rt, 7.0, 8, "POST /v1/x HTTP/1.1\r\n\r\n", OK_200);
	assert_int_equal(settle(rt, 8.0, done, 8), 1);
	assert_string_equal(done[0].path, "/health");
	requests_free(rt);
}

static void bad_path_lists_are_refused(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[4];

	(void)state;
	assert_true(requests_paths_valid("/v1/,/completion"));
	assert_true(requests_paths_valid("/"));
	assert_false(requests_paths_valid(""));
	assert_false(requests_paths_valid(NULL));
	assert_false(requests_paths_valid("v1"));
	assert_false(requests_paths_valid("/v1/,"));
	assert_false(requests_paths_valid("/v1/,,/x"));
	assert_false(requests_paths_valid("/a b"));
	assert_false(requests_paths_valid("/1,/2,/3,/4,/5,/6,/7,/8,/9,/10,/11,/12,/13,/14,/15,/16,/17"));
	assert_int_equal(requests_set_paths(rt, "nope"), -1);
	/* the default list still holds */
	exchange(rt, 1.0, 3, "POST /v1/x HTTP/1.1\r\n\r\n", OK_200);
	assert_int_equal(settle(rt, 2.0, done, 4), 1);
	requests_free(rt);
}

static void request_line_split_over_two_events(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[4];

	(void)state;
	evh(rt, 1.0, 0, 3, ERG_SOCK_IN, "PO", 0);
	evh(rt, 1.1, 1, 3, ERG_SOCK_IN, "ST /v1/compl", 0);
	evh(rt, 1.2, 2, 3, ERG_SOCK_IN, "etions HTTP/1.1\r\n\r\n", 0);
	evh(rt, 1.5, 30, 3, ERG_SOCK_OUT, OK_200, 0);
	evh(rt, 1.6, 30, 3, ERG_SOCK_CLOSE, "", 0);
	/* split inside /health: excluded once the path is whole */
	evh(rt, 2.0, 40, 4, ERG_SOCK_IN, "GET /hea", 0);
	evh(rt, 2.1, 41, 4, ERG_SOCK_IN, "lth HTTP/1.1\r\n\r\n", 0);
	evh(rt, 2.2, 42, 4, ERG_SOCK_OUT, OK_200, 0);
	evh(rt, 2.3, 42, 4, ERG_SOCK_CLOSE, "", 0);
	assert_int_equal(settle(rt, 3.0, done, 4), 1);
	assert_string_equal(done[0].method, "POST");
	assert_string_equal(done[0].path, "/v1/completions");
	assert_int_equal(done[0].bytes_in, 2 + 12 + 19);
	requests_free(rt);
}

static void non_http_bytes_are_not_requests(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[4];

	(void)state;
	exchange(rt, 1.0, 3, "\x16\x03\x01\x02\x00\x01", "\x16\x03\x03");	/* TLS */
	exchange(rt, 2.0, 4, "HTTP/1.1 200 OK\r\n\r\n", "GET /v1/x");	/* a client's view */
	exchange(rt, 3.0, 5, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n");		/* redis */
	exchange(rt, 4.0, 6, "get /v1/x HTTP/1.1\r\n", OK_200);		/* not a method */
	assert_int_equal(settle(rt, 5.0, done, 4), 0);
	assert_int_equal(requests_active(rt, 0), 0);
	requests_free(rt);
}

static void unreadable_head_counts(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[4];

	(void)state;
	ev(rt, 0, 1.0, 0, 3, ERG_SOCK_IN, 500);	/* io_uring: bytes, no head */
	ev(rt, 0, 1.5, 40, 3, ERG_SOCK_OUT, 200);
	ev(rt, 0, 1.6, 40, 3, ERG_SOCK_CLOSE, 0);
	assert_int_equal(settle(rt, 2.0, done, 4), 1);
	assert_string_equal(done[0].method, "");
	assert_string_equal(done[0].path, "");
	assert_int_equal(done[0].status, 0);
	assert_int_equal(done[0].bytes_in, 500);
	requests_free(rt);
}

static void sse_events_counted(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[4];

	(void)state;
	evh(rt, 1.0, 0, 3, ERG_SOCK_IN, "POST /v1/completions HTTP/1.1\r\n\r\n", 0);
	evh(rt, 1.1, 10, 3, ERG_SOCK_OUT, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", 0);
	for (int i = 0; i < 30; i++)
		evh(rt, 1.2 + i * 0.01, 11 + i, 3, ERG_SOCK_OUT, "data: {\"t\":1}\n\n", 1);
	evh(rt, 1.6, 50, 3, ERG_SOCK_OUT, "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n", 3);
	evh(rt, 1.7, 50, 3, ERG_SOCK_CLOSE, "", 0);
	assert_int_equal(settle(rt, 2.0, done, 4), 1);
	assert_int_equal(done[0].sse_events, 33);
	assert_int_equal(done[0].status, 200);	/* from the first bytes out only */
	requests_free(rt);
}

static void response_without_request_is_partial(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[4];

	(void)state;
	/* read before erg attached: erg sees only the answer */
	evh(rt, 1.0, 0, 3, ERG_SOCK_OUT, OK_200, 0);
	evh(rt, 1.2, 20, 3, ERG_SOCK_OUT, "more", 0);
	/* then the next request on that connection is whole */
	evh(rt, 2.0, 20, 3, ERG_SOCK_IN, "POST /v1/x HTTP/1.1\r\n\r\n", 0);
	evh(rt, 2.5, 60, 3, ERG_SOCK_OUT, OK_200, 0);
	evh(rt, 2.6, 60, 3, ERG_SOCK_CLOSE, "", 0);
	assert_int_equal(settle(rt, 3.0, done, 4), 2);
	assert_true(done[0].partial);
	assert_int_equal(done[0].status, 200);
	assert_string_equal(done[0].path, "");
	assert_false(done[1].partial);
	assert_string_equal(done[1].path, "/v1/x");
	assert_int_equal(done[1].cpu_ns, 40000000ULL);
	requests_free(rt);
}

/* A single-threaded server: connection A is answered, then stays open and
 * idle (keep-alive) while B's longer request runs; A gets none of B's CPU,
 * and never more CPU than its window. */
static void idle_keep_alive_gets_no_cpu(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	uint64_t worker_nj[1] = { 2000000000ULL }, req[1], nonreq[1];
	double cpu[1] = { 0.6 };
	struct request_info done[4], *a, *b;

	(void)state;
	evh(rt, 0.00, 0, 1, ERG_SOCK_IN, "POST /v1/a HTTP/1.1\r\n\r\n", 0);
	evh(rt, 0.05, 40, 1, ERG_SOCK_OUT, OK_200, 0);		/* A: 40 ms in 50 ms */
	evh(rt, 0.10, 45, 2, ERG_SOCK_IN, "POST /v1/b HTTP/1.1\r\n\r\n", 0);
	evh(rt, 0.90, 545, 2, ERG_SOCK_OUT, OK_200, 0);		/* B: 500 ms */
	evh(rt, 1.55, 550, 1, ERG_SOCK_CLOSE, "", 0);		/* A closes after 1.5 s idle */
	evh(rt, 1.60, 555, 2, ERG_SOCK_CLOSE, "", 0);
	requests_split(rt, 2.0, worker_nj, cpu, req, nonreq);
	assert_int_equal(req[0] + nonreq[0], worker_nj[0]);
	assert_int_equal(requests_take_completed(rt, done, 4), 2);
	a = strcmp(done[0].path, "/v1/a") ? &done[1] : &done[0];
	b = a == &done[0] ? &done[1] : &done[0];
	assert_string_equal(b->path, "/v1/b");
	assert_int_equal(a->cpu_ns, 40000000ULL);
	assert_true((double)a->cpu_ns / 1e9 <= a->end_s - a->start_s);
	assert_int_equal(b->cpu_ns, 500000000ULL);
	assert_true(b->nj > 10 * a->nj);
	requests_free(rt);
}

static void ids_in_completion_order(void **state)
{
	struct request_tracker *rt = requests_new(1, 5.0);
	struct request_info done[8];

	(void)state;
	/* opened 5, 6, 7 (slots in that order); they end 7, 5, 6 */
	evh(rt, 1.0, 0, 5, ERG_SOCK_IN, "POST /v1/x HTTP/1.1\r\n\r\n", 0);
	evh(rt, 1.1, 1, 6, ERG_SOCK_IN, "POST /v1/y HTTP/1.1\r\n\r\n", 0);
	evh(rt, 1.2, 2, 7, ERG_SOCK_IN, "POST /v1/z HTTP/1.1\r\n\r\n", 0);
	evh(rt, 1.3, 3, 7, ERG_SOCK_OUT, OK_200, 0);
	evh(rt, 1.4, 4, 5, ERG_SOCK_OUT, OK_200, 0);
	evh(rt, 1.5, 5, 6, ERG_SOCK_OUT, OK_200, 0);
	for (int fd = 5; fd <= 7; fd++)
		evh(rt, 1.6, 5, fd, ERG_SOCK_CLOSE, "", 0);
	assert_int_equal(settle(rt, 2.0, done, 2), 2);	/* max 2: the first two by end */
	assert_string_equal(done[0].path, "/v1/z");
	assert_string_equal(done[1].path, "/v1/x");
	assert_int_equal(done[0].id, 1);
	assert_int_equal(done[1].id, 2);
	assert_int_equal(requests_take_completed(rt, done, 8), 1);
	assert_string_equal(done[0].path, "/v1/y");
	assert_int_equal(done[0].id, 3);
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
		cmocka_unit_test(counted_paths_only),
		cmocka_unit_test(bad_path_lists_are_refused),
		cmocka_unit_test(request_line_split_over_two_events),
		cmocka_unit_test(non_http_bytes_are_not_requests),
		cmocka_unit_test(unreadable_head_counts),
		cmocka_unit_test(sse_events_counted),
		cmocka_unit_test(response_without_request_is_partial),
		cmocka_unit_test(idle_keep_alive_gets_no_cpu),
		cmocka_unit_test(ids_in_completion_order),
	};
	return cmocka_run_group_tests_name("requests", tests, NULL, NULL);
}

/* Joules per request for erg serve: the split of each worker's energy among
 * the requests the proxy had in flight on it.
 *
 * erg serve is the proxy, so it knows exactly when each request was on which
 * worker and what each streamed. Every tick the main thread hands in each
 * worker's attributed nanojoules of the tick (CPU and GPU, as erg top
 * computes them); request_energy_tick() splits them:
 *
 *   - the worker's non-request energy (idle, health checks, housekeeping)
 *     is what it spends at its idle rate over the part of the tick with no
 *     request in flight; the idle rate is learnt from ticks with no request
 *     at all (a moving average, 0 until one is seen). The rest goes to the
 *     requests, and never less than the tick's joules x the part of the
 *     tick a request was in flight: a worker that computes only for requests
 *     gives them all of its joules, however short their part of the tick;
 *   - the requests' part is shared among the requests in flight during the
 *     tick first by time: each kind of request (those that streamed SSE
 *     events in the tick, those that sent only bytes, those that sent
 *     nothing, e.g. in prefill) gets the part its time in flight is of all
 *     the requests' time in flight; within a kind, by what each streamed
 *     (events, bytes) or, for the quiet ones, by time in flight.
 *
 * Integer nanojoules: per-request + non-request = the worker's joules,
 * exactly, every tick. A request that ends within a tick gets its share of
 * that tick; it is handed out by request_energy_take_completed() once that
 * tick is split.
 *
 * Threads: begin/progress/end come from the proxy's threads, tick and
 * take_completed from the main thread, concurrently. One mutex guards the
 * table, held for a few instructions on progress (no allocation there);
 * begin may grow the table (amortised, doubling).
 *
 * Memory follows the load: the table of requests in flight (those ended
 * wait for their tick in an array of their own, so the table stays the size
 * of what is in flight), that array and the queue of completed ones double
 * under a burst and, once under a quarter used for
 * REQUEST_ENERGY_SHRINK_TICKS ticks in a row, halve each tick until they
 * fit again (never below REQUEST_ENERGY_MIN_CAP), so a burst does not keep
 * its memory, nor its per-tick scan of the table, for the process's life.
 *
 * Times (now, start, end arguments) are CLOCK_MONOTONIC seconds, one clock
 * for every caller; the records carry unix seconds.
 *
 * Where it is wrong: time in flight is not work, so a quiet request waiting
 * in the worker's queue weighs as much as one in prefill; within streaming
 * requests an event is an event, however many tokens it carries; energy
 * the worker spends before a request arrives (warming a cache) is
 * non-request energy; housekeeping above the idle rate done while a
 * request is in flight is that request's. */
#ifndef ERG_REQUEST_ENERGY_H
#define ERG_REQUEST_ENERGY_H

#include <stddef.h>
#include <stdint.h>

/* One completed request, as erg serve logs it ({"type":"request",...}). */
struct request_record {
	uint64_t id;		/* request_energy_begin()'s id */
	unsigned model, worker;	/* the caller's indexes */
	double start_s, end_s;	/* unix seconds */
	int status;		/* HTTP status answered (0: none, e.g. client gone) */
	uint64_t bytes_in, bytes_out;
	uint64_t sse_events;	/* sum of progress()'s sse_events_delta */
	uint64_t nj;		/* joules attributed to it, nanojoules */
	double latency_s;	/* request received to response complete */
	double ttfb_s;		/* request received to the first response byte */
};

struct request_energy;

#define REQUEST_ENERGY_MIN_CAP 64
#define REQUEST_ENERGY_SHRINK_TICKS 4

/* n_workers: the worker indexes are 0..n_workers-1; the first tick starts
 * at now. NULL on no memory. */
struct request_energy *request_energy_new(size_t n_workers, double now);
void request_energy_free(struct request_energy *re);

/* A request went to a worker at now. Returns its id (> 0, increasing), or 0
 * if worker is out of range or memory ran out (the request is then not
 * measured; the proxy serves it anyway). */
uint64_t request_energy_begin(struct request_energy *re, unsigned worker, unsigned model, double now);

/* Upstream data of request id arrived: bytes of response and SSE events in
 * them. Allocation-free. Returns -1 for an unknown or ended id. */
int request_energy_progress(struct request_energy *re, uint64_t id, uint64_t bytes_out_delta,
			    uint64_t sse_events_delta);

/* The request is over at now (answered, failed or abandoned). Returns -1 for
 * an unknown or ended id. */
int request_energy_end(struct request_energy *re, uint64_t id, double now, int status,
		       uint64_t bytes_in, uint64_t bytes_out, double ttfb_s, double latency_s);

/* Split the tick (last tick, or request_energy_new(), .. now]: worker_nj[w]
 * is worker w's attributed nanojoules of the tick. request_nj and
 * nonrequest_nj (each n_workers long, may be NULL) receive the split:
 * request_nj[w] + nonrequest_nj[w] = worker_nj[w]. Requests ended up to now
 * become completed. Main thread. */
void request_energy_tick(struct request_energy *re, double now, const uint64_t *worker_nj,
			 uint64_t *request_nj, uint64_t *nonrequest_nj);

/* Move up to max completed requests into out, oldest first; returns how
 * many. Main thread. */
size_t request_energy_take_completed(struct request_energy *re, struct request_record *out, size_t max);

/* Requests in flight on worker now (begun, not ended). */
size_t request_energy_in_flight(struct request_energy *re, unsigned worker);

/* The capacity of the table of requests in flight, of the array of those
 * ended since the last tick and of the queue of completed requests now, in
 * requests (for tests and memory checks; each may be NULL). */
void request_energy_capacity(struct request_energy *re, size_t *in_flight_cap, size_t *ended_cap,
			     size_t *completed_cap);

/* Since request_energy_new(): nanojoules of worker w that went to requests
 * and to non-request work. */
void request_energy_totals(struct request_energy *re, unsigned worker, uint64_t *request_nj,
			   uint64_t *nonrequest_nj);

#endif

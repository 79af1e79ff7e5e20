/* Request windows of observed workers, from their socket traffic, and the
 * split of each worker's joules among its requests.
 *
 * A connection is (tgid, fd). On it, bytes in open a request; bytes out are
 * its response; the next bytes in after a response (HTTP keep-alive), a
 * close, or idle_timeout_s without traffic after a response end it. A request
 * is open from its first byte in until it is known to have ended; its window
 * (end_s) closes at its last byte out.
 *
 * Every socket event carries the process's on-CPU time at that moment, so
 * the CPU a process used between two of its events is known; it is shared
 * equally among the process's requests open over that stretch (time
 * overlap), or is non-request work when none was open. Each tick a worker's
 * joules are split in proportion: requests get worker_joules x their CPU /
 * the worker's CPU, the rest is the worker's non-request work. Integer
 * nanojoules: requests + non-request = worker, exactly.
 *
 * Where it is wrong: concurrent requests of one process share its CPU
 * equally, whatever each one actually computed; work done before a request's
 * first byte came in counts as non-request work, and work between its last
 * byte out and the event that shows it ended counts as the request's. */
#ifndef ERG_REQUESTS_H
#define ERG_REQUESTS_H

#include <stddef.h>
#include <stdint.h>
#include "erg.h"

struct request_info {
	unsigned long long id;	/* 1, 2, ... in order of first byte */
	unsigned worker;
	unsigned tgid;
	int fd;
	double start_s, end_s;	/* CLOCK_MONOTONIC seconds */
	uint64_t bytes_in, bytes_out;
	uint64_t cpu_ns;	/* CPU the process used while it was open (its share) */
	uint64_t nj;		/* joules attributed to it, in nanojoules */
};

struct request_tracker;

struct request_tracker *requests_new(size_t n_workers, double idle_timeout_s);
void requests_free(struct request_tracker *rt);

/* Feed one socket event of a process that belongs to `worker`. */
void requests_event(struct request_tracker *rt, unsigned worker, const struct erg_sock_event *e);

/* A CPU stamp without traffic: process tgid had used cpu_ns by ts_s. Call it
 * at each tick for the processes of requests_open_tgids(), so a long request
 * gets its CPU in the tick that used it. */
void requests_stamp(struct request_tracker *rt, unsigned tgid, double ts_s, uint64_t cpu_ns);
/* Processes with open requests; returns how many were written (<= max). */
size_t requests_open_tgids(const struct request_tracker *rt, unsigned *tgids, size_t max);

/* Split worker_nj[w] (joules of worker w this tick, whose processes used
 * worker_cpu_s[w] CPU seconds) among its requests by the CPU they used since
 * the last split: request_nj[w] + nonrequest_nj[w] = worker_nj[w]. Then ends
 * requests quiet since before now_s - idle_timeout_s. */
void requests_split(struct request_tracker *rt, double now_s, const uint64_t *worker_nj,
		    const double *worker_cpu_s, uint64_t *request_nj, uint64_t *nonrequest_nj);

/* Move up to max requests that have ended into out; returns how many. */
size_t requests_take_completed(struct request_tracker *rt, struct request_info *out, size_t max);

/* Requests open now for worker w. */
size_t requests_active(const struct request_tracker *rt, unsigned worker);

#endif

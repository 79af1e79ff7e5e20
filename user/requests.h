/* Request windows of observed workers, from their socket traffic, and the
 * split of each worker's joules among its requests.
 *
 * A connection is (tgid, socket). On it, bytes in open a request; bytes out
 * are its response; the next bytes in after a response (HTTP keep-alive), a
 * close, or idle_timeout_s without traffic after a response end it. Its
 * window is its first byte in to its last byte out.
 *
 * Which requests count: the first bytes in are read as an HTTP request line.
 * A request whose path starts with one of the request paths (default "/v1/",
 * "/completion", "/generate") counts; any other path (/health, /metrics) or
 * bytes that are not a request line (a client's view of a response, another
 * protocol, a body whose head came before erg attached) do not: their CPU is
 * non-request work and no line is printed. Where the bytes could not be read
 * (io_uring, sendfile) the request counts, without method and path. A
 * response with no request before it (read before erg attached) is a
 * partial request.
 *
 * CPU: every socket event carries the process's on-CPU time at that moment,
 * so the CPU a process used between two of its stamps is known. A stretch
 * goes, in equal parts, to the process's requests being worked on: read but
 * not yet answered, or answered at the stretch's end (the event is their
 * output). Only when there is none it goes, tentatively, to requests between
 * two outputs (a stream computing its next token); it becomes theirs at
 * their next output and non-request work if none follows. So a request that
 * was answered and waits on a kept-alive connection gets nothing, and a
 * request never gets more CPU than its window on one thread.
 *
 * Joules: each tick a worker's joules are split in proportion: requests get
 * worker_joules x their CPU / the worker's CPU, the rest is the worker's
 * non-request work. Integer nanojoules: requests + non-request = worker,
 * exactly.
 *
 * Where it is wrong: concurrent requests of one process being worked on share
 * its CPU equally, whatever each one actually computed; a stream's work
 * between two tokens goes to a request being read at the same time, if any. */
#ifndef ERG_REQUESTS_H
#define ERG_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "erg.h"

#define REQUEST_METHOD_LEN 16
#define REQUEST_PATH_LEN ERG_SOCK_HEAD_LEN	/* longer paths are cut */
#define REQUEST_DEFAULT_PATHS "/v1/,/completion,/generate"

struct request_info {
	unsigned long long id;	/* 1, 2, ... in order of completion: by end_s
				 * among those taken at once (a kept-alive one
				 * ended by the idle timeout comes out late) */
	unsigned worker;
	unsigned tgid;
	unsigned long long conn;	/* the connection (its struct sock address) */
	double start_s, end_s;	/* CLOCK_MONOTONIC seconds */
	uint64_t bytes_in, bytes_out;
	uint64_t cpu_ns;	/* CPU the process used on it (its share) */
	uint64_t nj;		/* joules attributed to it, in nanojoules */
	uint64_t sse_events;	/* SSE "data:" lines in its response */
	int status;		/* HTTP status of its response; 0: not seen */
	bool partial;		/* under way when erg attached: its start was missed */
	char method[REQUEST_METHOD_LEN];	/* "" when its bytes were not readable */
	char path[REQUEST_PATH_LEN + 1];
};

struct request_tracker;

struct request_tracker *requests_new(size_t n_workers, double idle_timeout_s);
void requests_free(struct request_tracker *rt);

/* The request paths that count, comma-separated path prefixes ("/" counts
 * every HTTP request). -1 (nothing changed) when the list is empty, has an
 * empty entry, an entry not starting with '/', longer than
 * REQUEST_PATH_LEN or holding a space or control character, or more than
 * REQUEST_MAX_PATHS entries. */
#define REQUEST_MAX_PATHS 16
int requests_set_paths(struct request_tracker *rt, const char *csv);
/* Whether requests_set_paths would take csv (for option parsing). */
bool requests_paths_valid(const char *csv);

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

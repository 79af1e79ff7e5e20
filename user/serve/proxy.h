/* The erg serve proxy: HTTP/1.1 in front of the model workers, on io_uring.
 *
 * One ring per thread, each with its own SO_REUSEPORT listener (multishot
 * accept) and its own pools of keep-alive connections to the workers; no
 * thread per connection, no epoll. A connection's requests are answered in
 * order (pipelined ones wait in its buffer until the one before is done).
 *
 * Routes: POST /v1/chat/completions and /v1/completions go to a worker of
 * the body's "model" (fewest requests outstanding; ties: lower J/request);
 * "model": "auto" lets the router (router.h) choose model and budget: the
 * body's "model" and max_tokens / max_completion_tokens are rewritten,
 * x-erg-budget says which budget;
 * GET /v1/models, /healthz and /metrics are answered by erg. Responses from
 * workers stream through as they arrive, body bytes untouched, with
 * x-erg-request-id, x-erg-model and x-erg-worker (and x-erg-budget for
 * "auto") added to the head.
 *
 * Requests are framed by http_parse (llhttp strict plus erg's checks); the
 * body is read with cJSON only for its "model" and forwarded as received
 * (chunked request bodies are forwarded de-chunked with a Content-Length).
 *
 * Faults: a worker refusing or closing before a byte of response: the
 * request goes to another worker of the model (a pooled connection the
 * worker had closed is retried once on a fresh one), else 502 JSON error. A
 * worker dying mid-response: the client's connection is closed (a chunked
 * stream then lacks its last chunk: the client sees the error). A client
 * that has not sent a whole request within client_timeout_s is answered 408
 * and closed; an idle keep-alive connection is closed after it. A worker
 * that does not accept the connection within worker_connect_timeout_s is
 * marked down and the request tried elsewhere; one that sends nothing for
 * worker_timeout_s (before its first byte, or between two reads of a
 * stream) gets the request answered 504 (JSON error) if the client has had
 * nothing yet, else the client's stream is cut. A health check connects to
 * every worker each health_interval_s and marks it up or down.
 *
 * Drain (proxy_drain, on the first SIGINT/SIGTERM): the listeners close,
 * idle connections close, requests under way are answered (with
 * "connection: close") and their connections end; proxy_busy() says when
 * none is left. */
#ifndef ERG_PROXY_H
#define ERG_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "serve_config.h"

struct router;

#define PROXY_OWN_ID_BIT (1ULL << 63)

/* One request, as the hooks see it. Times: CLOCK_MONOTONIC seconds. */
struct proxy_request {
	uint64_t id;		/* request_start's return, or erg's own number
				 * with PROXY_OWN_ID_BIT set ("e12" in the header) */
	int model;		/* index in serve_config.models, -1 if none */
	int worker;		/* index in serve_config.workers, -1 if answered by erg */
	bool steered;		/* "model": "auto": the router chose model and budget */
	int option;		/* steered: the router's option (router.h) */
	unsigned budget;	/* steered: the max_tokens set (x-erg-budget) */
	int status;		/* status answered; 0: none (client gone, stream cut) */
	bool broken;		/* the response was cut short (worker died, client gone) */
	bool retried;		/* this try failed before any answer; erg went on
				 * (another worker, or its own 502) */
	uint64_t bytes_in;	/* request bytes received from the client */
	uint64_t bytes_out;	/* response bytes sent towards the client */
	uint64_t sse_events;	/* SSE data: events in the response so far */
	double start_s;		/* the whole request had arrived */
	double first_byte_s;	/* first response byte from the worker; 0: none yet */
	double end_s;
};

/* Called from the proxy threads, concurrently: each must be thread-safe.
 * Any may be NULL. */
struct proxy_hooks {
	void *ud;
	/* The request goes to worker r->worker (again on a retry: then
	 * request_end for the failed try came first). Returns the request id
	 * to use (> 0), or 0 for erg's own numbering. */
	uint64_t (*request_start)(void *ud, const struct proxy_request *r);
	/* Response data arrived from the worker: bytes and SSE events in it. */
	void (*request_data)(void *ud, const struct proxy_request *r, uint64_t bytes,
			     uint64_t sse_events);
	/* The request is over (every request, also those answered by erg). */
	void (*request_end)(void *ud, const struct proxy_request *r);
	/* Measured joules per request of a worker; NaN or < 0 if not known. */
	double (*worker_joules_per_request)(void *ud, size_t worker);
	/* The /metrics body (Prometheus text 0.0.4): write at most cap bytes
	 * into buf and return the full length (if it is > cap the proxy calls
	 * again with a larger buffer). */
	size_t (*render_metrics)(void *ud, char *buf, size_t cap);
};

struct proxy_options {
	const struct serve_config *cfg;	/* models and workers; must outlive the proxy */
	const char *listen_host;	/* numeric address or name */
	uint16_t listen_port;		/* 0: any free port (proxy_port() says which) */
	unsigned threads;		/* 0: one per online CPU */
	uint64_t max_body;		/* request body limit; 0: 1 MiB */
	double client_timeout_s;	/* 0: 30 s */
	double health_interval_s;	/* 0: 1 s */
	double worker_connect_timeout_s;	/* 0: 5 s */
	double worker_timeout_s;	/* no byte from the worker for this long; 0: 60 s */
	struct proxy_hooks hooks;
	/* "model": "auto" requests: NULL when the config has no steering
	 * options (then "auto" is answered 404). Must outlive the proxy. */
	struct router *router;
};

/* Per-model counts kept by the proxy itself (cumulative). */
struct proxy_model_counts {
	uint64_t requests;		/* answered, by any status */
	uint64_t status_2xx, status_4xx, status_5xx, broken;
	double latency_sum_s, latency_max_s, ttfb_sum_s;
	uint64_t bytes_in, bytes_out, sse_events;
};

struct proxy;

/* Bind the listeners and start the threads. NULL with one line in err
 * (address in use, no io_uring, ...). */
struct proxy *proxy_start(const struct proxy_options *opts, char *err, size_t errlen);
/* Stop the threads and close every connection (the worker states and
 * counts stay readable), then proxy_free(). */
void proxy_stop(struct proxy *p);
void proxy_free(struct proxy *p);

uint16_t proxy_port(const struct proxy *p);
unsigned proxy_threads(const struct proxy *p);
bool proxy_worker_up(const struct proxy *p, size_t worker);
unsigned proxy_worker_outstanding(const struct proxy *p, size_t worker);
/* Model -1: requests erg answered without a model (404 path, bad JSON...). */
void proxy_model_counts(const struct proxy *p, int model, struct proxy_model_counts *out);
/* Connections from clients open now. */
unsigned proxy_clients(const struct proxy *p);
/* Stop accepting and let the requests under way finish (see above);
 * returns at once. proxy_stop() still ends what is left. */
void proxy_drain(struct proxy *p);
/* Client connections still open (after proxy_drain: requests not yet
 * answered, or answers still being sent). */
bool proxy_busy(const struct proxy *p);

#endif

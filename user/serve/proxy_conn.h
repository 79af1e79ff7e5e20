/* Inside the proxy (proxy.c: threads, ring, client side; proxy_upstream.c:
 * connections to the workers). Not an interface for other modules. */
#ifndef ERG_PROXY_CONN_H
#define ERG_PROXY_CONN_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "http_parse.h"
#include "proxy.h"
#include "serve_buf.h"
#include "upstreams.h"

enum op_kind { OP_ACCEPT = 1, OP_TICK, OP_RECV, OP_SEND, OP_CONNECT };

struct conn;
struct thread;

/* user_data of every SQE: what completed, and for which connection */
struct op {
	uint8_t kind;
	struct conn *c;
};

enum route { R_NONE, R_CHAT, R_COMPLETIONS, R_MODELS, R_HEALTH, R_METRICS, R_NOT_FOUND, R_BAD_METHOD };

/* The request a client connection is being answered for (one at a time:
 * pipelined ones wait in the connection's input). */
struct request {
	struct proxy_request pub;
	char id[32];			/* x-erg-request-id */
	enum route route;
	const char *allow;		/* the method the path takes (405's Allow) */
	bool partial;			/* bytes of it have arrived */
	bool keep_alive;		/* the client keeps the connection */
	struct sbuf body;		/* decoded body, for routes that read it */
	struct sbuf forward;		/* head + body for the worker, kept for retries */
	struct sbuf resp_head;		/* the worker's head until it is complete */
	uint64_t tried;			/* bit w: worker w failed this request */
	bool stale_retried;		/* a pooled connection failed once already */
	bool trying;			/* a try on a worker is open (start hook called) */
	bool head_sent;			/* the response head went to the client */
	bool got_bytes;			/* the worker sent something */
	bool close_delimited;		/* the response ends when the worker closes */
	bool timed_out;			/* a worker did not connect in time: 504, not 502 */
};

enum client_state { C_READING, C_WAITING, C_LINGER };

struct conn {
	struct op op_recv, op_send, op_connect;
	struct thread *t;
	int fd;
	unsigned refs;			/* operations in flight */
	bool closed;
	bool dead;			/* on the thread's list of connections to free */
	bool in_process;		/* client_process() is running for it */
	struct conn *dead_next;
	bool upstream;			/* a connection to a worker */
	bool recv_armed, send_armed;
	struct conn *prev, *next;	/* the thread's list of connections */
	struct sbuf in;			/* received, not yet parsed */
	struct sbuf out;		/* being sent (an SQE points into it) */
	struct sbuf queue;		/* to send after out */
	struct http_parse *parser;

	/* client */
	enum client_state state;
	double deadline;		/* CLOCK_MONOTONIC: timeout of READING / LINGER;
					 * upstream: of the connect, or of the next byte */
	bool close_after_send;
	bool rd_eof;
	struct request req;
	struct conn *up;		/* the worker connection answering req */

	/* upstream */
	int worker;
	bool connected;
	bool reused;			/* taken from the pool */
	bool paused;			/* recv held back while the client is slow */
	struct conn *client;		/* NULL while in the pool */
	struct conn *pool_next;
};

struct thread {
	struct proxy *p;
	unsigned index;
	pthread_t tid;
	struct io_uring ring;
	int listen_fd;
	struct op op_accept, op_tick;
	struct __kernel_timespec tick_ts;
	bool accept_armed;
	bool listen_closed;		/* draining: no new clients */
	bool ring_disabled;		/* made R_DISABLED: the thread enables it */
	double now;			/* CLOCK_MONOTONIC, once per batch of completions */
	struct conn *conns;		/* every connection of this thread */
	struct conn *dead;		/* closed, nothing in flight: freed after the batch */
	struct conn **pool;		/* per worker: idle keep-alive connections */
	struct sbuf scratch;		/* a rewritten body, swapped with the request's */
	unsigned *pool_len;
};

struct model_counts_locked {
	pthread_mutex_t lock;
	struct proxy_model_counts c;
};

struct proxy {
	struct proxy_options o;
	const struct serve_config *cfg;
	struct upstreams *ups;
	struct thread *threads;
	unsigned n_threads;
	uint16_t port;
	atomic_bool stop;
	atomic_bool draining;		/* proxy_drain() was called */
	atomic_ullong next_id;
	atomic_uint clients;
	char *models_body;
	struct model_counts_locked counts[SERVE_MAX_MODELS + 1];	/* [0]: no model */
};

double proxy_now(void);

/* proxy.c */
struct conn *proxy_conn_new(struct thread *t, int fd, bool upstream);
void conn_arm_recv(struct conn *c);
void conn_flush(struct conn *c);
void conn_close(struct conn *c);
void client_queue(struct conn *c, const void *data, size_t len);
void client_error(struct conn *c, int status, const char *message, const char *code, bool close);
void client_request_done(struct conn *c);
void client_abort(struct conn *c);
void request_try_end(struct conn *c, int status, bool broken);
void proxy_own_id(struct proxy *p, struct request *r);

/* proxy_upstream.c */
void upstream_dispatch(struct conn *c);
void upstream_on_connect(struct conn *u, int res);
void upstream_on_recv(struct conn *u, int res);
void upstream_on_send_error(struct conn *u);
void upstream_client_drained(struct conn *c);
void upstream_detach(struct conn *c);
void upstream_pool_close_all(struct thread *t);
void upstream_check_timeout(struct conn *u);

#endif

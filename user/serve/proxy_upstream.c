/* The worker side of the proxy: choosing a worker, pooled keep-alive
 * connections, forwarding the request, streaming the response back, and
 * what happens when a worker refuses, closes or dies. See proxy.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "proxy_conn.h"

#define POOL_MAX 64			/* idle connections kept per worker per thread */
#define RESPONSE_MAX_HEAD 65536
#define CLIENT_HIGH_WATER (256 * 1024)	/* stop reading the worker above this */

/* ---- the pool ---- */

static struct conn *pool_take(struct thread *t, int w)
{
	struct conn *u = t->pool[w];

	if (!u)
		return NULL;
	t->pool[w] = u->pool_next;
	t->pool_len[w]--;
	u->pool_next = NULL;
	u->reused = true;
	return u;
}

static void pool_remove(struct conn *u)
{
	struct thread *t = u->t;

	for (struct conn **pp = &t->pool[u->worker]; *pp; pp = &(*pp)->pool_next)
		if (*pp == u) {
			*pp = u->pool_next;
			t->pool_len[u->worker]--;
			u->pool_next = NULL;
			return;
		}
}

/* An idle connection waits with a receive armed: the worker closing it, or
 * sending what nobody asked for, takes it out of the pool. */
static void pool_put(struct conn *u)
{
	struct thread *t = u->t;

	if (t->pool_len[u->worker] >= POOL_MAX) {
		conn_close(u);
		return;
	}
	u->pool_next = t->pool[u->worker];
	t->pool[u->worker] = u;
	t->pool_len[u->worker]++;
	conn_arm_recv(u);
}

void upstream_pool_close_all(struct thread *t)
{
	for (size_t w = 0; w < t->p->cfg->n_workers; w++) {
		struct conn *u;

		while ((u = pool_take(t, (int)w)))
			conn_close(u);
	}
}

static struct conn *upstream_open(struct thread *t, int w)
{
	const struct serve_worker *sw = &t->p->cfg->workers[w];
	struct http_parse_limits lim = { .max_head = RESPONSE_MAX_HEAD };
	int one = 1, fd = socket(sw->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct io_uring_sqe *sqe;
	struct conn *u;

	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	u = proxy_conn_new(t, fd, true);
	if (!u) {
		close(fd);
		return NULL;
	}
	u->worker = w;
	u->parser = http_parse_new(HTTP_PARSE_RESPONSE, &lim, NULL, NULL);
	sqe = io_uring_get_sqe(&t->ring);
	if (!sqe) {
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	if (!u->parser || !sqe) {
		conn_close(u);
		return NULL;
	}
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&sw->addr, sw->addrlen);
	io_uring_sqe_set_data(sqe, &u->op_connect);
	u->refs++;
	u->deadline = t->now + t->p->o.worker_connect_timeout_s;
	return u;
}

/* ---- the request to the worker ---- */

static bool is_hop_by_hop(const char *name, size_t len, const char *connection)
{
	static const struct { const char *name; size_t len; } hop[] = {
#define HOP(s) { s, sizeof(s) - 1 }
		HOP("connection"), HOP("keep-alive"), HOP("proxy-connection"), HOP("te"), HOP("trailer"),
		HOP("transfer-encoding"), HOP("upgrade"), HOP("content-length"), HOP("expect"),
		HOP("x-erg-request-id"),
#undef HOP
	};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (hop[i].len == len && !strncasecmp(hop[i].name, name, len))
			return true;
	/* headers the Connection header names are for this hop only */
	for (const char *s = connection; s && *s;) {
		size_t n;

		s += strspn(s, " \t,");
		n = strcspn(s, " \t,");
		if (n == len && !strncasecmp(s, name, len))
			return true;
		s += n;
	}
	return false;
}

/* Head (hop-by-hop headers dropped, Content-Length set) + the body as received. */
static bool build_forward(struct conn *c)
{
	struct http_parse *p = c->parser;
	struct request *r = &c->req;
	const char *connection = http_parse_header_get(p, "connection");
	bool host = false, ok;

	ok = sbuf_adds(&r->forward, http_parse_method(p)) && sbuf_adds(&r->forward, " ") &&
	     sbuf_adds(&r->forward, http_parse_target(p)) && sbuf_adds(&r->forward, " HTTP/1.1\r\n");
	for (size_t i = 0; ok && i < http_parse_header_count(p); i++) {
		const char *name, *value;
		size_t nlen, vlen;

		http_parse_header(p, i, &name, &nlen, &value, &vlen);
		if (is_hop_by_hop(name, nlen, connection))
			continue;
		host |= nlen == 4 && !strncasecmp(name, "host", 4);
		ok = sbuf_add(&r->forward, name, nlen) && sbuf_adds(&r->forward, ": ") &&
		     sbuf_add(&r->forward, value, vlen) && sbuf_adds(&r->forward, "\r\n");
	}
	if (ok && !host)
		ok = sbuf_adds(&r->forward, "host: ") &&
		     sbuf_adds(&r->forward, c->t->p->cfg->workers[r->pub.worker].name) &&
		     sbuf_adds(&r->forward, "\r\n");
	return ok && sbuf_adds(&r->forward, "content-length: ") && sbuf_addu(&r->forward, r->body.len) &&
	       sbuf_adds(&r->forward, "\r\n\r\n") && sbuf_add(&r->forward, r->body.data ? r->body.data : "", r->body.len);
}

void upstream_dispatch(struct conn *c)
{
	struct thread *t = c->t;
	struct proxy *p = t->p;
	struct request *r = &c->req;

	for (;;) {
		int w = upstreams_pick(p->ups, r->pub.model, r->tried);
		struct conn *u;
		uint64_t id = 0;

		if (w < 0) {
			char msg[SERVE_NAME_LEN + 128];

			r->pub.worker = -1;
			snprintf(msg, sizeof(msg), "no worker of model '%s' could take the request (%s)",
				 p->cfg->models[r->pub.model].name, r->timed_out ?
				 "not connected within --worker-connect-timeout" : "refused or down");
			client_error(c, r->timed_out ? 504 : 502, msg,
				     r->timed_out ? "worker_timeout" : "worker_unavailable", false);
			return;
		}
		r->pub.worker = w;
		r->pub.status = 0;
		r->pub.broken = false;	/* a failed try before this one was broken, not this */
		r->pub.first_byte_s = 0;
		r->trying = true;
		r->got_bytes = r->head_sent = false;
		sbuf_reset(&r->resp_head, 16384);
		if (p->o.hooks.request_start)
			id = p->o.hooks.request_start(p->o.hooks.ud, &r->pub);
		if (id) {
			r->pub.id = id;
			snprintf(r->id, sizeof(r->id), "%llu", (unsigned long long)id);
		}
		if (!r->forward.len && !build_forward(c)) {
			request_try_end(c, 0, true);
			conn_close(c);
			return;
		}
		u = pool_take(t, w);
		if (!u)
			u = upstream_open(t, w);
		if (!u) {
			r->tried |= 1ULL << w;
			r->pub.retried = true;
			request_try_end(c, 0, true);
			r->pub.retried = false;
			continue;
		}
		u->client = c;
		c->up = u;
		if (u->connected)	/* pooled: the answer's clock starts now */
			u->deadline = t->now + p->o.worker_timeout_s;
		if (!sbuf_add(&u->queue, r->forward.data, r->forward.len)) {
			conn_close(c);
			return;
		}
		conn_flush(u);
		return;
	}
}

/* ---- failures ---- */

/* The worker connection failed (connect refused, reset, closed). Nothing of
 * a response reached the client: try again elsewhere (or on a fresh
 * connection, once, when a pooled one had been closed by the worker). */
static void upstream_failed(struct conn *u, bool connect_failed)
{
	struct conn *c = u->client;
	struct request *r;
	int w = u->worker;

	if (!c) {
		pool_remove(u);
		conn_close(u);
		return;
	}
	r = &c->req;
	c->up = NULL;
	u->client = NULL;
	conn_close(u);
	if (r->head_sent) {
		client_abort(c);
		return;
	}
	if (r->got_bytes) {
		client_error(c, 502, "the worker closed the connection inside its response head",
			     "worker_failed", false);
		return;
	}
	if (connect_failed)
		upstreams_mark(c->t->p->ups, w, false);
	if (u->reused && !r->stale_retried)
		r->stale_retried = true;	/* the same worker, on a fresh connection */
	else
		r->tried |= 1ULL << w;
	r->pub.retried = true;
	request_try_end(c, 0, true);
	r->pub.retried = false;
	upstream_dispatch(c);
}

void upstream_on_connect(struct conn *u, int res)
{
	if (u->closed)
		return;
	if (res < 0) {
		upstream_failed(u, true);
		return;
	}
	u->connected = true;
	u->deadline = u->t->now + u->t->p->o.worker_timeout_s;
	conn_arm_recv(u);
	conn_flush(u);
}

void upstream_on_send_error(struct conn *u)
{
	upstream_failed(u, false);
}

/* The client went away: the worker's connection is in an unknown state. */
void upstream_detach(struct conn *c)
{
	struct conn *u = c->up;

	c->up = NULL;
	if (u) {
		u->client = NULL;
		conn_close(u);
	}
}

void upstream_client_drained(struct conn *c)
{
	struct conn *u = c->up;

	if (u && u->paused) {
		u->paused = false;
		u->deadline = u->t->now + u->t->p->o.worker_timeout_s;
		conn_arm_recv(u);
	}
}

/* From the tick. A worker that did not take the connection in time is
 * treated as one that refused it (another worker, else 504); one silent
 * for --worker-timeout gets the request answered 504 if the client has had
 * nothing yet, else the client's stream is cut. A worker held back by a
 * slow client is not silent. */
void upstream_check_timeout(struct conn *u)
{
	struct conn *c = u->client;

	if (!c || u->closed || u->paused || u->t->now < u->deadline)
		return;
	if (!u->connected) {
		c->req.timed_out = true;
		upstream_failed(u, true);
		return;
	}
	c->up = NULL;
	u->client = NULL;
	conn_close(u);
	if (c->req.head_sent)
		client_abort(c);
	else
		client_error(c, 504, "the worker sent nothing within --worker-timeout", "worker_timeout", false);
}

/* ---- the response ---- */

/* The worker's status line, erg's headers, the worker's headers less the
 * hop-by-hop ones. */
static bool send_head(struct conn *c, struct conn *u)
{
	struct request *r = &c->req;
	const struct serve_config *cfg = c->t->p->cfg;
	struct http_parse *p = u->parser;
	struct sbuf *h = &c->queue;
	size_t mark = h->len;
	const char *eol = memchr(r->resp_head.data, '\n', r->resp_head.len);
	int status = http_parse_status(p);
	bool bodyless = status / 100 == 1 || status == 204 || status == 304;
	bool ok;

	if (atomic_load(&c->t->p->draining))
		r->keep_alive = false;	/* its connection ends after this answer */
	r->pub.status = status;
	r->close_delimited = !bodyless && !http_parse_chunked(p) && !http_parse_content_length(p, NULL);
	if (!r->id[0])
		proxy_own_id(c->t->p, r);
	ok = eol && sbuf_add(h, r->resp_head.data, (size_t)(eol - r->resp_head.data) + 1) &&
	     sbuf_adds(h, "x-erg-request-id: ") && sbuf_adds(h, r->id) && sbuf_adds(h, "\r\nx-erg-model: ") &&
	     sbuf_adds(h, cfg->models[r->pub.model].name) && sbuf_adds(h, "\r\nx-erg-worker: ") &&
	     sbuf_adds(h, cfg->workers[r->pub.worker].name) && sbuf_adds(h, "\r\n");
	if (ok && r->pub.steered)
		ok = sbuf_adds(h, "x-erg-budget: ") && sbuf_addu(h, r->pub.budget) && sbuf_adds(h, "\r\n");
	for (size_t i = 0; ok && i < http_parse_header_count(p); i++) {
		const char *name, *value;
		size_t nlen, vlen;

		http_parse_header(p, i, &name, &nlen, &value, &vlen);
		if ((nlen == 10 && !strncasecmp(name, "connection", 10)) ||
		    (nlen == 10 && !strncasecmp(name, "keep-alive", 10)) ||
		    (nlen == 16 && !strncasecmp(name, "proxy-connection", 16)) ||
		    (nlen > 6 && !strncasecmp(name, "x-erg-", 6)))
			continue;
		ok = sbuf_add(h, name, nlen) && sbuf_adds(h, ": ") && sbuf_add(h, value, vlen) &&
		     sbuf_adds(h, "\r\n");
	}
	if (ok && (r->close_delimited || !r->keep_alive))
		ok = sbuf_adds(h, "connection: close\r\n");
	else if (ok && http_parse_minor(c->parser) == 0)
		ok = sbuf_adds(h, "connection: keep-alive\r\n");
	ok = ok && sbuf_adds(h, "\r\n");
	if (ok)
		r->pub.bytes_out += h->len - mark;
	else
		h->len = mark;	/* nothing of a half-made head goes out */
	r->head_sent = ok;
	return ok;
}

/* The response is complete: the connection goes back to the pool if the
 * worker keeps it and nothing extra came on it. */
static void response_done(struct conn *u, bool reusable)
{
	struct conn *c = u->client;

	c->up = NULL;
	u->client = NULL;
	upstreams_mark(c->t->p->ups, u->worker, true);
	if (reusable) {
		http_parse_next(u->parser);
		u->in.off = u->in.len = 0;
		pool_put(u);
	} else {
		conn_close(u);
	}
	client_request_done(c);
}

static void bad_response(struct conn *u)
{
	struct conn *c = u->client;

	c->up = NULL;
	u->client = NULL;
	conn_close(u);
	if (c->req.head_sent)
		client_abort(c);
	else
		client_error(c, 502, "the worker sent a malformed response", "worker_bad_response", false);
}

/* Feed what arrived: the head is rewritten, the body passes as received. */
static void upstream_process(struct conn *u)
{
	struct conn *c = u->client;
	struct request *r = &c->req;
	struct proxy *p = c->t->p;
	uint64_t forwarded = 0, sse_before = http_parse_sse_events(u->parser), sse;
	bool after_head = false, done = false;

	while (!done && (u->in.off < u->in.len || after_head)) {
		const char *at = u->in.data + u->in.off;
		size_t used = 0;
		enum http_parse_rc rc = http_parse_feed(u->parser, at, u->in.len - u->in.off, &used);

		u->in.off += used;
		after_head = false;
		if (rc == HTTP_PARSE_ERR) {
			bad_response(u);
			return;
		}
		if (!r->head_sent) {
			if (!sbuf_add(&r->resp_head, at, used)) {
				bad_response(u);
				return;
			}
			if (rc == HTTP_PARSE_HEAD_DONE) {
				if (!send_head(c, u)) {
					bad_response(u);
					return;
				}
				after_head = true;	/* a bodyless response ends here */
			}
		} else if (used) {
			client_queue(c, at, used);
			forwarded += used;
		}
		done = rc == HTTP_PARSE_MSG_DONE;
	}
	sse = http_parse_sse_events(u->parser);
	r->pub.sse_events = sse;
	if ((forwarded || sse != sse_before) && p->o.hooks.request_data)
		p->o.hooks.request_data(p->o.hooks.ud, &r->pub, forwarded, sse - sse_before);
	if (done) {
		response_done(u, http_parse_keep_alive(u->parser) && u->in.off == u->in.len);
		return;
	}
	conn_flush(c);
	u->in.off = u->in.len = 0;
	if (sbuf_pending(&c->out) + sbuf_pending(&c->queue) > CLIENT_HIGH_WATER)
		u->paused = true;	/* the client's send completion resumes it */
	else
		conn_arm_recv(u);
}

void upstream_on_recv(struct conn *u, int res)
{
	struct conn *c = u->client;

	u->recv_armed = false;
	if (u->closed)
		return;
	if (!c) {	/* idle in the pool: closed by the worker, or unasked-for bytes */
		pool_remove(u);
		conn_close(u);
		return;
	}
	if (res <= 0) {
		if (c->req.head_sent && res == 0 && http_parse_eof(u->parser) == HTTP_PARSE_MSG_DONE) {
			c->req.close_delimited = true;
			response_done(u, false);
		} else {
			upstream_failed(u, false);
		}
		return;
	}
	u->in.len += (size_t)res;
	u->deadline = u->t->now + u->t->p->o.worker_timeout_s;
	if (!c->req.got_bytes) {
		c->req.got_bytes = true;
		c->req.pub.first_byte_s = c->t->now;
	}
	upstream_process(u);
}

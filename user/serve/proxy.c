/* See proxy.h. This file: the threads and their rings, connection life,
 * the client side (framing, routes, answers erg gives itself, timeouts).
 * The worker side is in proxy_upstream.c. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "body_rewrite.h"
#include "cli.h"
#include "errbuf.h"
#include "proxy_conn.h"
#include "proxy_reply.h"
#include "router.h"

#define RING_ENTRIES 1024
#define CLIENT_RECV 4096		/* an idle client costs this, not more */
#define CLIENT_IN_MAX (64 * 1024)
#define UPSTREAM_RECV (32 * 1024)
#define MAX_HEAD 16384
#define LINGER_S 2.0			/* wait for the client's end after an error */
#define KEEP_BUF 16384			/* buffers larger than this are freed when idle */
#define CQE_BATCH 32			/* completions handled before what they made is submitted:
					 * the first answer of a long batch does not wait for the last */

double proxy_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static struct io_uring_sqe *get_sqe(struct thread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	if (!sqe) {
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	return sqe;	/* NULL only if the kernel took none: then the ring is broken */
}

/* ---- connections ---- */

struct conn *proxy_conn_new(struct thread *t, int fd, bool upstream)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->t = t;
	c->fd = fd;
	c->upstream = upstream;
	c->op_recv = (struct op){ OP_RECV, c };
	c->op_send = (struct op){ OP_SEND, c };
	c->op_connect = (struct op){ OP_CONNECT, c };
	c->worker = -1;
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	return c;
}

static void conn_free(struct conn *c)
{
	struct thread *t = c->t;

	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (!c->upstream)
		atomic_fetch_sub(&t->p->clients, 1);
	if (!c->upstream && c->req.pub.steered)	/* a request never answered */
		router_release(t->p->o.router, c->req.pub.option);
	if (c->fd >= 0)
		close(c->fd);
	http_parse_free(c->parser);
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	sbuf_free(&c->queue);
	sbuf_free(&c->req.body);
	sbuf_free(&c->req.forward);
	sbuf_free(&c->req.resp_head);
	free(c);
}

static void conn_bury(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	c->dead_next = c->t->dead;
	c->t->dead = c;
}

/* Cancel what is in flight; the memory goes after the batch of completions
 * in which the last one came in (callers may still look at c). */
void conn_close(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->closed)
		return;
	c->closed = true;
	if (!c->upstream && c->up) {	/* the answer is cut short */
		request_try_end(c, 0, true);
		upstream_detach(c);
	}
	if (c->upstream && c->client && c->client->up == c)
		c->client->up = NULL;
	if (!c->refs) {
		conn_bury(c);
	} else {
		sqe = get_sqe(c->t);
		if (sqe) {
			io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data(sqe, NULL);
		}
		shutdown(c->fd, SHUT_RDWR);
	}
}

static void conn_put(struct conn *c)
{
	c->refs--;
	if (c->closed && !c->refs)
		conn_bury(c);
}

void conn_arm_recv(struct conn *c)
{
	size_t want = c->upstream ? UPSTREAM_RECV : CLIENT_RECV;
	struct io_uring_sqe *sqe;

	if (c->closed || c->recv_armed)
		return;
	if (c->in.off == c->in.len)
		c->in.off = c->in.len = 0;
	if (!c->upstream && c->in.len >= CLIENT_IN_MAX)
		return;	/* pipelined input waits for its turn */
	if (c->in.cap - c->in.len < want / 2 && !sbuf_reserve(&c->in, want)) {
		conn_close(c);
		return;
	}
	sqe = get_sqe(c->t);
	if (!sqe) {
		conn_close(c);
		return;
	}
	io_uring_prep_recv(sqe, c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
	io_uring_sqe_set_data(sqe, &c->op_recv);
	c->recv_armed = true;
	c->refs++;
}

/* Send out, then what was queued behind it. */
void conn_flush(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->closed || c->send_armed || (c->upstream && !c->connected))
		return;
	if (!sbuf_pending(&c->out)) {
		struct sbuf tmp = c->out;

		sbuf_reset(&tmp, KEEP_BUF);
		c->out = c->queue;
		c->queue = tmp;
	}
	if (!sbuf_pending(&c->out))
		return;
	sqe = get_sqe(c->t);
	if (!sqe) {
		conn_close(c);
		return;
	}
	io_uring_prep_send(sqe, c->fd, c->out.data + c->out.off, sbuf_pending(&c->out), MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &c->op_send);
	c->send_armed = true;
	c->refs++;
}

void client_queue(struct conn *c, const void *data, size_t len)
{
	if (!sbuf_add(&c->queue, data, len))
		conn_close(c);
	c->req.pub.bytes_out += len;
}

static bool client_pending(const struct conn *c)
{
	return c->send_armed || sbuf_pending(&c->out) || sbuf_pending(&c->queue);
}

static void client_process(struct conn *c);

/* Everything queued has been sent: go on with what the state asks. */
static void client_drained(struct conn *c)
{
	if (c->closed || client_pending(c))
		return;
	if (c->up) {
		upstream_client_drained(c);
	} else if (c->state == C_LINGER && c->close_after_send) {
		/* our end first, then read until the client's end, so that what
		 * it sent after the error does not reset the answer away */
		shutdown(c->fd, SHUT_WR);
		c->deadline = c->t->now + LINGER_S;
		c->close_after_send = false;
		conn_arm_recv(c);
	} else if (c->close_after_send) {
		conn_close(c);
	} else if (c->state == C_READING && !c->in_process && !c->recv_armed) {
		client_process(c);	/* pipelined requests waiting in the input */
	}
}

/* ---- accounting ---- */

static void count_request(struct proxy *p, const struct proxy_request *r)
{
	struct model_counts_locked *m = &p->counts[r->model + 1];
	double latency = r->end_s - r->start_s;

	pthread_mutex_lock(&m->lock);
	m->c.requests++;
	if (r->status >= 200 && r->status < 300)
		m->c.status_2xx++;
	else if (r->status >= 400 && r->status < 500)
		m->c.status_4xx++;
	else if (r->status >= 500)
		m->c.status_5xx++;
	if (r->broken)
		m->c.broken++;
	m->c.latency_sum_s += latency;
	if (latency > m->c.latency_max_s)
		m->c.latency_max_s = latency;
	if (r->first_byte_s > 0)
		m->c.ttfb_sum_s += r->first_byte_s - r->start_s;
	m->c.bytes_in += r->bytes_in;
	m->c.bytes_out += r->bytes_out;
	m->c.sse_events += r->sse_events;
	pthread_mutex_unlock(&m->lock);
}

/* The try on a worker is over (status 0 and broken for one that will be
 * retried); the hook sees one end per start. */
void request_try_end(struct conn *c, int status, bool broken)
{
	struct proxy *p = c->t->p;
	struct request *r = &c->req;

	if (!r->trying)
		return;
	r->trying = false;
	r->pub.status = status;
	r->pub.broken = broken;
	r->pub.end_s = proxy_now();
	upstreams_release(p->ups, r->pub.worker);
	if (p->o.hooks.request_end)
		p->o.hooks.request_end(p->o.hooks.ud, &r->pub);
}

/* The answer to the request is complete (queued): count it, and go on with
 * the next one unless the connection ends here. */
void client_request_done(struct conn *c)
{
	struct proxy *p = c->t->p;
	struct request *r = &c->req;
	bool keep = r->keep_alive && !r->close_delimited && !c->rd_eof && !c->close_after_send;

	r->pub.end_s = proxy_now();
	if (r->trying) {
		request_try_end(c, r->pub.status, r->pub.broken);
	} else if (p->o.hooks.request_end) {
		p->o.hooks.request_end(p->o.hooks.ud, &r->pub);
	}
	count_request(p, &r->pub);
	if (r->pub.steered)
		router_release(p->o.router, r->pub.option);
	sbuf_reset(&r->body, KEEP_BUF);
	sbuf_reset(&r->forward, KEEP_BUF);
	sbuf_reset(&r->resp_head, KEEP_BUF);
	memset(&r->pub, 0, sizeof(r->pub));
	r->route = R_NONE;
	r->tried = 0;
	r->partial = r->stale_retried = r->head_sent = r->got_bytes = false;
	r->close_delimited = r->timed_out = false;
	c->close_after_send = !keep;
	c->state = keep ? C_READING : C_LINGER;
	c->deadline = c->t->now + p->o.client_timeout_s;
	if (c->parser)
		http_parse_next(c->parser);
	conn_flush(c);
	client_drained(c);
}

/* The worker broke off a response already under way: the client gets what
 * arrived, then the connection ends (a chunked stream lacks its last chunk). */
void client_abort(struct conn *c)
{
	c->req.pub.broken = true;
	c->req.keep_alive = false;
	c->rd_eof = true;
	c->close_after_send = true;
	c->state = C_WAITING;	/* no linger: end as soon as the output is out */
	c->in_process = true;	/* client_request_done must not read on */
	client_request_done(c);
	c->in_process = false;
	c->state = C_WAITING;
	client_drained(c);
}

/* ---- answers erg gives itself ---- */

static void set_own_id(struct conn *c)
{
	struct request *r = &c->req;

	if (!r->id[0])
		proxy_own_id(c->t->p, r);
}

/* erg's own number: "e12" in the header, the top bit set in pub.id. */
void proxy_own_id(struct proxy *p, struct request *r)
{
	unsigned long long n = atomic_fetch_add(&p->next_id, 1) + 1;

	r->pub.id = PROXY_OWN_ID_BIT | n;
	snprintf(r->id, sizeof(r->id), "e%llu", n);
}

static struct reply_ids ids_of(struct conn *c)
{
	struct request *r = &c->req;
	const struct serve_config *cfg = c->t->p->cfg;

	set_own_id(c);
	return (struct reply_ids){
		.request_id = r->id,
		.model = r->pub.model >= 0 ? cfg->models[r->pub.model].name : "",
		.worker = r->pub.worker >= 0 ? cfg->workers[r->pub.worker].name : "",
		.budget = r->pub.steered ? r->pub.budget : 0,
	};
}

/* An error answer; close: the connection ends after it (framing errors). */
void client_error(struct conn *c, int status, const char *message, const char *code, bool close)
{
	struct reply_ids ids = ids_of(c);
	struct sbuf b = { 0 };
	char allow[32] = "";

	if (close)
		c->close_after_send = true;
	if (c->req.route == R_BAD_METHOD)
		snprintf(allow, sizeof(allow), "allow: %s\r\n", c->req.allow);
	c->req.pub.status = status;
	if (!reply_error(&b, status, message, code, &ids, close || !c->req.keep_alive, allow[0] ? allow : NULL)) {
		conn_close(c);
		return;
	}
	client_queue(c, b.data, b.len);
	sbuf_free(&b);
	client_request_done(c);
}

static void client_reply(struct conn *c, const char *type, const char *body, size_t len)
{
	struct reply_ids ids = ids_of(c);
	struct sbuf b = { 0 };

	c->req.pub.status = 200;
	if (!reply_message(&b, 200, type, body, len, &ids, !c->req.keep_alive, NULL)) {
		conn_close(c);
		return;
	}
	client_queue(c, b.data, b.len);
	sbuf_free(&b);
	client_request_done(c);
}

static void render_own_metrics(struct proxy *p, struct sbuf *b)
{
	const struct serve_config *cfg = p->cfg;

	sbuf_adds(b, "# HELP erg_requests_total Requests answered, by model.\n"
		     "# TYPE erg_requests_total counter\n");
	for (size_t i = 0; i < cfg->n_models; i++) {
		struct proxy_model_counts mc;

		proxy_model_counts(p, (int)i, &mc);
		sbuf_printf(b, "erg_requests_total{model=\"%s\"} %llu\n", cfg->models[i].name,
			    (unsigned long long)mc.requests);
	}
	sbuf_adds(b, "# HELP erg_worker_up Whether the worker answers (health check).\n"
		     "# TYPE erg_worker_up gauge\n");
	for (size_t w = 0; w < cfg->n_workers; w++)
		sbuf_printf(b, "erg_worker_up{model=\"%s\",worker=\"%s\"} %d\n",
			    cfg->models[cfg->workers[w].model].name, cfg->workers[w].name,
			    upstreams_is_up(p->ups, (int)w));
}

static void answer_metrics(struct conn *c)
{
	struct proxy *p = c->t->p;
	struct sbuf b = { 0 };

	if (p->o.hooks.render_metrics) {
		size_t cap = 65536, n;

		for (;;) {
			if (!sbuf_reserve(&b, cap)) {
				conn_close(c);
				return;
			}
			n = p->o.hooks.render_metrics(p->o.hooks.ud, b.data, b.cap);
			if (n <= b.cap)
				break;
			cap = n;
		}
		b.len = n;
	} else {
		render_own_metrics(p, &b);
	}
	client_reply(c, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
	sbuf_free(&b);
}

static void answer_health(struct conn *c)
{
	struct proxy *p = c->t->p;
	char body[128];
	unsigned up = 0;

	for (size_t w = 0; w < p->cfg->n_workers; w++)
		up += upstreams_is_up(p->ups, (int)w);
	snprintf(body, sizeof(body), "{\"status\":\"ok\",\"workers\":%zu,\"workers_up\":%u}",
		 p->cfg->n_workers, up);
	client_reply(c, "application/json", body, strlen(body));
}

/* ---- routing ---- */

static enum route route_of(const char *method, const char *target, const char **allow)
{
	static const struct { const char *path; enum route route; const char *method; } routes[] = {
		{ "/v1/chat/completions", R_CHAT, "POST" },
		{ "/v1/completions", R_COMPLETIONS, "POST" },
		{ "/v1/models", R_MODELS, "GET" },
		{ "/healthz", R_HEALTH, "GET" },
		{ "/metrics", R_METRICS, "GET" },
	};
	size_t len = strcspn(target, "?");

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strlen(routes[i].path) == len && !strncmp(routes[i].path, target, len)) {
			*allow = routes[i].method;
			return strcmp(method, routes[i].method) ? R_BAD_METHOD : routes[i].route;
		}
	return R_NOT_FOUND;
}

static int on_body(void *ud, const char *at, size_t len)
{
	struct conn *c = ud;

	if (c->req.route != R_CHAT && c->req.route != R_COMPLETIONS)
		return 0;	/* read past, not kept */
	return sbuf_add(&c->req.body, at, len) ? 0 : -1;
}

static void on_head(struct conn *c)
{
	struct request *r = &c->req;
	const char *expect;

	r->route = route_of(http_parse_method(c->parser), http_parse_target(c->parser), &r->allow);
	r->keep_alive = http_parse_keep_alive(c->parser) && !atomic_load(&c->t->p->draining);
	r->pub.model = r->pub.worker = -1;
	expect = http_parse_header_get(c->parser, "expect");
	if (expect && !strcasecmp(expect, "100-continue") &&
	    (r->route == R_CHAT || r->route == R_COMPLETIONS)) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (!sbuf_add(&c->queue, cont, sizeof(cont) - 1))
			conn_close(c);
		conn_flush(c);
	}
}

/* "model": "auto" (group 0) or a pool's name (group 1 + its index): the
 * router picks the option, the body names its model and budget (rewritten
 * into the thread's scratch buffer, then swapped in: no allocation once
 * both have grown). */
static void steer(struct conn *c, int group)
{
	struct proxy *p = c->t->p;
	struct request *r = &c->req;
	struct sbuf *tmp = &c->t->scratch;
	struct router_choice ch;
	const char *name, *body;
	size_t cap, n;

	if (!p->o.router) {
		client_error(c, 404, "the model 'auto' is not served here: the config has no steering sections "
			     "([scaling], [workload] budgets and accuracy_target, [cost]; see docs/sim.md), "
			     "so name a model (GET /v1/models lists them)", "model_not_found", false);
		return;
	}
	if (router_choose(p->o.router, group, c->t->now, &ch)) {
		char msg[SERVE_NAME_LEN + 200];

		if (group > 0)
			snprintf(msg, sizeof(msg), "no (model, budget) option of the pool '%s' meets the accuracy "
				 "target; add a more accurate model to [pool %s] or name a model",
				 p->cfg->pools[group - 1].name, p->cfg->pools[group - 1].name);
		else
			snprintf(msg, sizeof(msg), "no (model, budget) option of the config meets its accuracy "
				 "target; lower [workload] accuracy_target or name a model");
		client_error(c, 503, msg, "no_option_meets_target", false);
		return;
	}
	r->pub.steered = true;
	r->pub.option = ch.option;
	r->pub.budget = ch.budget;
	r->pub.model = ch.model;
	name = p->cfg->models[ch.model].name;
	body = r->body.data ? r->body.data : "";
	cap = body_rewrite(body, r->body.len, name, ch.budget, NULL, 0);
	sbuf_reset(tmp, KEEP_BUF);
	if (cap && !sbuf_reserve(tmp, cap)) {
		conn_close(c);
		return;
	}
	n = cap ? body_rewrite(body, r->body.len, name, ch.budget, tmp->data, cap) : 0;
	if (!n || n != cap) {
		client_error(c, 400, "for \"model\": \"auto\" the body needs a top-level \"model\" key "
			     "spelled plainly (no escapes)", "invalid_request", false);
		return;
	}
	tmp->len = n;
	struct sbuf swap = r->body;
	r->body = *tmp;
	*tmp = swap;
	upstream_dispatch(c);
}

/* The body is whole: read its model, then forward or answer. */
static void on_completion_request(struct conn *c)
{
	struct proxy *p = c->t->p;
	struct request *r = &c->req;
	cJSON *root = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
	char msg[SERVE_NAME_LEN * 4 + 96];

	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		client_error(c, 400, "the request body is not a JSON object", "invalid_json", false);
		return;
	}
	if (!cJSON_IsString(model) || !model->valuestring[0]) {
		cJSON_Delete(root);
		client_error(c, 400, "the request body has no \"model\" string", "missing_model", false);
		return;
	}
	r->pub.model = serve_config_model(p->cfg, model->valuestring);
	if (r->pub.model < 0 && !strcmp(model->valuestring, "auto")) {
		cJSON_Delete(root);
		steer(c, 0);
		return;
	}
	int pool = r->pub.model < 0 ? serve_config_pool(p->cfg, model->valuestring) : -1;
	if (pool >= 0) {
		cJSON_Delete(root);
		steer(c, 1 + pool);
		return;
	}
	if (r->pub.model < 0) {
		char name[SERVE_NAME_LEN * 4];

		snprintf(msg, sizeof(msg), "the model '%s' is not served here (GET /v1/models lists them)",
			 cli_quote(model->valuestring, name, sizeof(name)));
		cJSON_Delete(root);
		client_error(c, 404, msg, "model_not_found", false);
		return;
	}
	cJSON_Delete(root);
	upstream_dispatch(c);
}

static void on_message(struct conn *c)
{
	struct proxy *p = c->t->p;
	struct request *r = &c->req;

	c->state = C_WAITING;
	r->pub.start_s = c->t->now;
	switch (r->route) {
	case R_CHAT:
	case R_COMPLETIONS:
		on_completion_request(c);
		return;
	case R_MODELS:
		client_reply(c, "application/json", p->models_body, strlen(p->models_body));
		return;
	case R_HEALTH:
		answer_health(c);
		return;
	case R_METRICS:
		answer_metrics(c);
		return;
	case R_BAD_METHOD:
		client_error(c, 405, "this method is not allowed on this path", "method_not_allowed", false);
		return;
	default:
		client_error(c, 404, "no such endpoint (erg serves /v1/chat/completions, /v1/completions, "
			     "/v1/models, /healthz, /metrics)", "not_found", false);
		return;
	}
}

static void client_parse(struct conn *c);

/* Parse what the client sent, one request at a time. */
static void client_process(struct conn *c)
{
	c->in_process = true;
	client_parse(c);
	c->in_process = false;
	if (c->closed)
		return;
	sbuf_compact(&c->in);
	if (c->state == C_READING) {
		if (c->rd_eof)
			conn_close(c);
		else
			conn_arm_recv(c);
	} else {
		client_drained(c);
	}
}

static void client_parse(struct conn *c)
{
	struct proxy *p = c->t->p;
	bool after_head = false;

	while (!c->closed && c->state == C_READING && (c->in.off < c->in.len || after_head)) {
		size_t used = 0;
		enum http_parse_rc rc;

		if (!c->parser) {
			struct http_parse_limits lim = { .max_head = MAX_HEAD, .max_body = p->o.max_body };

			c->parser = http_parse_new(HTTP_PARSE_REQUEST, &lim, on_body, c);
			if (!c->parser) {
				conn_close(c);
				return;
			}
		}
		if (!c->req.partial) {
			c->req.partial = true;	/* the whole request must come within the timeout */
			c->deadline = c->t->now + p->o.client_timeout_s;
			c->req.pub.model = c->req.pub.worker = -1;
			c->req.id[0] = 0;
		}
		rc = http_parse_feed(c->parser, c->in.data + c->in.off, c->in.len - c->in.off, &used);
		c->in.off += used;
		c->req.pub.bytes_in += used;
		after_head = rc == HTTP_PARSE_HEAD_DONE;
		if (after_head) {
			on_head(c);
		} else if (rc == HTTP_PARSE_MSG_DONE) {
			on_message(c);
		} else if (rc == HTTP_PARSE_ERR) {
			const char *reason;
			int status = http_parse_error(c->parser, &reason);

			client_error(c, status, reason, status == 413 ? "body_too_large"
				     : status == 431 ? "header_too_large" : "bad_request", true);
			return;
		}
	}
}

/* ---- completions ---- */

static void client_on_recv(struct conn *c, int res)
{
	c->recv_armed = false;
	if (c->closed)
		return;
	if (c->state == C_LINGER) {	/* discard until the client's end */
		if (res <= 0) {
			conn_close(c);
			return;
		}
		c->in.off = c->in.len = 0;
		conn_arm_recv(c);
		return;
	}
	if (res <= 0) {
		c->rd_eof = true;
		if (c->state == C_READING)
			conn_close(c);	/* idle or a request cut short: nobody to answer */
		return;
	}
	c->in.len += (size_t)res;
	client_process(c);
}

static void client_on_send(struct conn *c, int res)
{
	c->send_armed = false;
	if (c->closed)
		return;
	if (res < 0) {		/* the client is gone */
		conn_close(c);
		return;
	}
	c->out.off += (size_t)res;
	conn_flush(c);
	client_drained(c);
}

static void on_accept(struct thread *t, struct io_uring_cqe *cqe)
{
	struct proxy *p = t->p;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		t->accept_armed = false;	/* rearmed at the next tick */
	if (cqe->res < 0)
		return;
	int one = 1;
	struct conn *c = proxy_conn_new(t, cqe->res, false);

	if (!c) {
		close(cqe->res);
		return;
	}
	atomic_fetch_add(&p->clients, 1);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = C_READING;
	c->deadline = t->now + p->o.client_timeout_s;
	conn_arm_recv(c);
}

static void arm_accept(struct thread *t)
{
	struct io_uring_sqe *sqe = get_sqe(t);

	if (!sqe)
		return;
	io_uring_prep_multishot_accept(sqe, t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &t->op_accept);
	t->accept_armed = true;
}

static void arm_tick(struct thread *t)
{
	struct io_uring_sqe *sqe = get_sqe(t);

	if (!sqe)
		return;
	io_uring_prep_timeout(sqe, &t->tick_ts, 0, 0);
	io_uring_sqe_set_data(sqe, &t->op_tick);
}

/* Between requests on a keep-alive connection: nothing read, nothing to send. */
static bool client_idle(const struct conn *c)
{
	return c->state == C_READING && !c->req.partial && !c->in.len && !client_pending(c) &&
	       !c->in_process;
}

/* Draining: no new connections; idle ones end now, busy ones after their answer. */
static void drain_thread(struct thread *t)
{
	struct io_uring_sqe *sqe;

	if (t->listen_closed)
		return;
	t->listen_closed = true;
	sqe = get_sqe(t);
	if (sqe && t->accept_armed) {
		io_uring_prep_cancel(sqe, &t->op_accept, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	shutdown(t->listen_fd, SHUT_RD);
	close(t->listen_fd);
	t->listen_fd = -1;
}

static void client_tick(struct conn *c)
{
	struct thread *t = c->t;
	double timeout = t->p->o.client_timeout_s;

	if (c->state == C_WAITING)
		return;
	if (client_idle(c) && (atomic_load(&t->p->draining) || t->now >= c->deadline)) {
		conn_close(c);
	} else if (t->now >= c->deadline) {
		if (c->state == C_READING && c->req.partial && !client_pending(c))
			client_error(c, 408, "the request did not arrive within --client-timeout",
				     "request_timeout", true);
		else
			conn_close(c);
	} else if (client_idle(c) && c->parser && t->now > c->deadline - timeout + 1.0) {
		http_parse_free(c->parser);	/* idle a second: keep nothing big */
		c->parser = NULL;
	}
}

/* Timeouts: slow or idle clients, lingering ends, silent workers. */
static void on_tick(struct thread *t)
{
	struct conn *c, *next;

	if (atomic_load(&t->p->draining))
		drain_thread(t);
	for (c = t->conns; c; c = next) {
		next = c->next;
		if (c->closed)
			continue;
		if (c->upstream)
			upstream_check_timeout(c);
		else
			client_tick(c);
	}
	if (!t->accept_armed && !t->listen_closed)
		arm_accept(t);
	arm_tick(t);
}

static void on_cqe(struct thread *t, struct io_uring_cqe *cqe)
{
	struct op *op = io_uring_cqe_get_data(cqe);
	struct conn *c;

	if (!op)
		return;	/* a cancel */
	c = op->c;
	switch (op->kind) {
	case OP_ACCEPT:
		on_accept(t, cqe);
		return;
	case OP_TICK:
		on_tick(t);
		return;
	case OP_RECV:
		if (c->upstream)
			upstream_on_recv(c, cqe->res);
		else
			client_on_recv(c, cqe->res);
		break;
	case OP_SEND:
		if (c->upstream) {
			c->send_armed = false;
			if (cqe->res < 0 && !c->closed)
				upstream_on_send_error(c);
			else if (!c->closed) {
				c->out.off += (size_t)cqe->res;
				conn_flush(c);
			}
		} else {
			client_on_send(c, cqe->res);
		}
		break;
	case OP_CONNECT:
		upstream_on_connect(c, cqe->res);
		break;
	}
	conn_put(c);
}

/* Handle at most CQE_BATCH completions (a full batch: more may be waiting);
 * then free the connections they ended. */
static unsigned reap(struct thread *t)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&t->ring, head, cqe) {
		on_cqe(t, cqe);
		if (++n == CQE_BATCH)
			break;
	}
	io_uring_cq_advance(&t->ring, n);
	while (t->dead) {
		struct conn *c = t->dead;

		t->dead = c->dead_next;
		conn_free(c);
	}
	return n;
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;
	struct proxy *p = t->p;

	t->now = proxy_now();
	/* the syscall itself: Debian's liburing 2.3 declares io_uring_enable_rings
	 * but does not export it */
	if (t->ring_disabled && syscall(__NR_io_uring_register, t->ring.ring_fd,
					IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return NULL;	/* not expected: the ring was made for this */
	arm_accept(t);
	arm_tick(t);
	while (!atomic_load(&p->stop)) {
		int rc = io_uring_submit_and_wait(&t->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			break;
		t->now = proxy_now();
		while (reap(t) == CQE_BATCH)
			io_uring_submit(&t->ring);	/* answers made so far go out now */
	}
	return NULL;
}

/* ---- start and stop ---- */

static int listen_socket(const struct sockaddr *addr, socklen_t len, char *err, size_t errlen,
			 const char *what)
{
	int one = 1, fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		errbuf_set(err, errlen, "cannot create a socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, addr, len) || listen(fd, 4096)) {
		errbuf_set(err, errlen, "cannot listen on %s: %s (is another server on that port? use --listen)",
			   what, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int open_listeners(struct proxy *p, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	char service[8], what[SERVE_HOST_LEN + 16];

	snprintf(service, sizeof(service), "%u", p->o.listen_port);
	snprintf(what, sizeof(what), "%s:%u", p->o.listen_host, p->o.listen_port);
	if (getaddrinfo(p->o.listen_host, service, &hints, &res)) {
		errbuf_set(err, errlen, "cannot resolve the listen address %s (use a numeric address)", what);
		return -1;
	}
	for (unsigned i = 0; i < p->n_threads; i++) {
		p->threads[i].listen_fd = listen_socket(res->ai_addr, res->ai_addrlen, err, errlen, what);
		if (p->threads[i].listen_fd < 0)
			break;
		if (i == 0) {	/* port 0: the others bind the port the first one got */
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);

			getsockname(p->threads[0].listen_fd, (struct sockaddr *)&ss, &len);
			p->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
			if (res->ai_family == AF_INET)
				((struct sockaddr_in *)res->ai_addr)->sin_port = htons(p->port);
			else
				((struct sockaddr_in6 *)res->ai_addr)->sin6_port = htons(p->port);
		}
	}
	freeaddrinfo(res);
	return p->threads[p->n_threads - 1].listen_fd < 0 ? -1 : 0;
}

/* Completions are reaped only by the thread's own io_uring_enter (no
 * interrupting task work while it runs: DEFER_TASKRUN, which needs
 * SINGLE_ISSUER, hence a ring made disabled here and enabled by the thread
 * that uses it). Older kernels: COOP_TASKRUN, then plain. */
static int ring_init(struct thread *t)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]) && rc == -EINVAL; i++) {
		struct io_uring_params params = {
			.flags = flag_sets[i] | IORING_SETUP_CQSIZE,
			.cq_entries = RING_ENTRIES * 4,
		};

		rc = io_uring_queue_init_params(RING_ENTRIES, &t->ring, &params);
		t->ring_disabled = rc == 0 && (flag_sets[i] & IORING_SETUP_R_DISABLED);
	}
	return rc;
}

static int init_thread(struct proxy *p, unsigned i, char *err, size_t errlen)
{
	struct thread *t = &p->threads[i];
	int rc;

	t->p = p;
	t->index = i;
	t->op_accept.kind = OP_ACCEPT;
	t->op_tick.kind = OP_TICK;
	double tick = fmin(p->o.client_timeout_s,
			   fmin(p->o.worker_connect_timeout_s, p->o.worker_timeout_s)) / 4;
	if (tick > 0.25)
		tick = 0.25;	/* also how soon a stop is seen */
	t->tick_ts.tv_sec = (long long)tick;
	t->tick_ts.tv_nsec = (long long)((tick - floor(tick)) * 1e9);
	if (t->tick_ts.tv_sec == 0 && t->tick_ts.tv_nsec < 10000000)
		t->tick_ts.tv_nsec = 10000000;
	t->pool = calloc(p->cfg->n_workers ? p->cfg->n_workers : 1, sizeof(*t->pool));
	t->pool_len = calloc(p->cfg->n_workers ? p->cfg->n_workers : 1, sizeof(*t->pool_len));
	if (!t->pool || !t->pool_len) {
		errbuf_set(err, errlen, "out of memory");
		return -1;
	}
	rc = ring_init(t);
	if (rc) {
		errbuf_set(err, errlen, "cannot set up io_uring: %s (kernel 6.0 or later, "
			   "and sysctl kernel.io_uring_disabled=0, are needed)", strerror(-rc));
		return -1;
	}
	return 0;
}

static void free_threads(struct proxy *p, unsigned inited)
{
	for (unsigned i = 0; i < p->n_threads; i++) {
		struct thread *t = &p->threads[i];

		if (i < inited) {
			io_uring_queue_exit(&t->ring);	/* cancels what is in flight */
			while (t->conns)	/* the ring is gone: nothing is in flight */
				conn_free(t->conns);
		}
		if (t->listen_fd > 0)
			close(t->listen_fd);
		free(t->pool);
		free(t->pool_len);
		sbuf_free(&t->scratch);
	}
	free(p->threads);
}

struct proxy *proxy_start(const struct proxy_options *opts, char *err, size_t errlen)
{
	struct proxy *p = calloc(1, sizeof(*p));
	unsigned inited = 0, started = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!p) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	p->o = *opts;
	p->cfg = opts->cfg;
	if (!p->o.max_body)
		p->o.max_body = 1 << 20;
	if (!(p->o.client_timeout_s > 0))
		p->o.client_timeout_s = 30;
	if (!(p->o.health_interval_s > 0))
		p->o.health_interval_s = 1;
	if (!(p->o.worker_connect_timeout_s > 0))
		p->o.worker_connect_timeout_s = 5;
	if (!(p->o.worker_timeout_s > 0))
		p->o.worker_timeout_s = 300;
	p->n_threads = opts->threads ? opts->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
	for (size_t i = 0; i <= SERVE_MAX_MODELS; i++)
		pthread_mutex_init(&p->counts[i].lock, NULL);
	p->models_body = reply_models_body(p->cfg);
	p->threads = calloc(p->n_threads, sizeof(*p->threads));
	p->ups = upstreams_new(p->cfg, p->o.health_interval_s, p->o.hooks.worker_joules_per_request,
			       p->o.hooks.ud);
	if (!p->models_body || !p->threads || !p->ups) {
		errbuf_set(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < p->n_threads; i++)
		p->threads[i].listen_fd = -1;
	if (open_listeners(p, err, errlen))
		goto fail;
	for (; inited < p->n_threads; inited++)
		if (init_thread(p, inited, err, errlen))
			goto fail;
	for (; started < p->n_threads; started++)
		if (pthread_create(&p->threads[started].tid, NULL, thread_main, &p->threads[started])) {
			errbuf_set(err, errlen, "cannot start a proxy thread: %s", strerror(errno));
			goto fail;
		}
	return p;
fail:
	atomic_store(&p->stop, true);
	for (unsigned i = 0; i < started; i++)
		pthread_join(p->threads[i].tid, NULL);
	if (p->threads)
		free_threads(p, inited);
	upstreams_free(p->ups);
	free(p->models_body);
	free(p);
	return NULL;
}

void proxy_stop(struct proxy *p)
{
	if (!p || !p->threads)
		return;
	atomic_store(&p->stop, true);	/* each thread sees it at its next tick */
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i].tid, NULL);
	free_threads(p, p->n_threads);
	p->threads = NULL;
	upstreams_stop_checks(p->ups);
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	proxy_stop(p);
	upstreams_free(p->ups);
	free(p->models_body);
	for (size_t i = 0; i <= SERVE_MAX_MODELS; i++)
		pthread_mutex_destroy(&p->counts[i].lock);
	free(p);
}

uint16_t proxy_port(const struct proxy *p)
{
	return p->port;
}

unsigned proxy_threads(const struct proxy *p)
{
	return p->n_threads;
}

bool proxy_worker_up(const struct proxy *p, size_t worker)
{
	return upstreams_is_up(p->ups, (int)worker);
}

unsigned proxy_worker_outstanding(const struct proxy *p, size_t worker)
{
	return upstreams_outstanding(p->ups, (int)worker);
}

void proxy_model_counts(const struct proxy *p, int model, struct proxy_model_counts *out)
{
	struct model_counts_locked *m = (struct model_counts_locked *)&p->counts[model + 1];

	pthread_mutex_lock(&m->lock);
	*out = m->c;
	pthread_mutex_unlock(&m->lock);
}

unsigned proxy_clients(const struct proxy *p)
{
	return atomic_load(&p->clients);
}

/* Each thread acts on it at its next tick (at most 0.25 s). */
void proxy_drain(struct proxy *p)
{
	if (p)
		atomic_store(&p->draining, true);
}

bool proxy_busy(const struct proxy *p)
{
	return p && p->threads && atomic_load(&p->clients) > 0;
}

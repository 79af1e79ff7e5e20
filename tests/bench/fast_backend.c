/* A fast OpenAI-shaped HTTP/1.1 backend for the proxy benchmark (make bench):
 * it answers as cheaply as it can, so that wrk through a proxy measures the
 * proxy and not the backend. Not a model worker and not part of erg.
 *
 *   POST /v1/chat/completions   a small fixed JSON completion; with
 *                               "stream": true a fixed SSE stream of
 *                               --events data: events, chunked
 *   GET  /health                {"status":"ok"}
 *
 * Keep-alive and pipelining, one epoll loop per thread, each thread with its
 * own SO_REUSEPORT listening socket (the kernel spreads connections), no
 * thread per connection. Requests are framed by user/serve/http_parse.h (the
 * same llhttp layer as erg serve); bodies are read with cJSON. Every response
 * is built once at start-up and copied out. SIGINT/SIGTERM stop it and it
 * prints how many requests it served. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "http_parse.h"

#define BODY_MAX	(64 * 1024)	/* request bodies: a chat request is far smaller */
#define RECV_CHUNK	(16 * 1024)
#define MAX_THREADS	256
#define MAX_EVENTS	4096

struct options {
	char host[64];
	uint16_t port;
	int threads;
	int events;		/* SSE data: events per streamed completion */
};

/* A whole response, head and body, ready to copy. */
struct canned {
	char *bytes;
	size_t len;
};

/* Built once; read-only while the threads run. [close]: 0 keep-alive, 1 close. */
static struct {
	struct canned completion[2], stream[2], stream_http10, health[2];
	struct canned not_found[2], bad_method[2], get_only[2], bad_json[2];
} canned;

struct conn {
	int fd;
	struct http_parse *parse;
	char body[BODY_MAX];
	size_t body_len;
	char *out;		/* bytes still to send: out[out_off..out_len) */
	size_t out_off, out_len, out_cap;
	int closing;		/* close once out is sent; read nothing more */
	int want_out;		/* EPOLLOUT registered: the peer is slow to read */
	struct conn *prev, *next;
};

struct worker {
	pthread_t thread;
	int listen_fd, stop_fd, epoll_fd;
	struct conn *conns;	/* every open connection, freed at exit */
	unsigned long long served;
};

/* ---- responses ---- */

static const char completion_json[] =
	"{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
	"\"model\":\"bench\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	"\"content\":\"Hello from the benchmark backend.\"},\"finish_reason\":\"stop\"}],"
	"\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":6,\"total_tokens\":14}}";

static void canned_set(struct canned *c, const char *head, size_t head_len, const char *body, size_t body_len)
{
	c->len = head_len + body_len;
	c->bytes = malloc(c->len);
	if (!c->bytes) {
		fprintf(stderr, "fast_backend: out of memory building the responses\n");
		exit(1);
	}
	memcpy(c->bytes, head, head_len);
	memcpy(c->bytes + head_len, body, body_len);
}

/* status line, Content-Type, Content-Length, optional close, then body */
static void canned_fixed(struct canned *c, const char *status, const char *extra, const char *body, int close)
{
	char head[512];
	size_t blen = strlen(body);
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s%s\r\n",
			 status, blen, extra, close ? "Connection: close\r\n" : "");
	canned_set(c, head, (size_t)n, body, blen);
}

/* The SSE body: events "data: {...}\n\n" then "data: [DONE]\n\n", each in its
 * own chunk when chunked (as a streaming server flushes them). */
static char *sse_body(int events, int chunked, size_t *len)
{
	size_t cap = (size_t)(events + 2) * 320, n = 0;
	char *b = malloc(cap), ev[256];

	if (!b)
		return NULL;
	for (int i = 0; i <= events; i++) {
		int m = i < events
			? snprintf(ev, sizeof(ev),
				   "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
				   "\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,"
				   "\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)
			: snprintf(ev, sizeof(ev), "data: [DONE]\n\n");
		if (chunked)
			n += (size_t)snprintf(b + n, cap - n, "%x\r\n%s\r\n", m, ev);
		else
			n += (size_t)snprintf(b + n, cap - n, "%s", ev);
	}
	if (chunked)
		n += (size_t)snprintf(b + n, cap - n, "0\r\n\r\n");
	*len = n;
	return b;
}

static void canned_stream(struct canned *c, int events, int close)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
				   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
	char h[256];
	size_t blen;
	char *body = sse_body(events, 1, &blen);
	int n = snprintf(h, sizeof(h), "%s%s\r\n", head, close ? "Connection: close\r\n" : "");

	if (!body) {
		fprintf(stderr, "fast_backend: out of memory building the responses\n");
		exit(1);
	}
	canned_set(c, h, (size_t)n, body, blen);
	free(body);
}

static void canned_build(int events)
{
	static const char http10_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
					  "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
	size_t blen;
	char *body;

	for (int close = 0; close < 2; close++) {
		canned_fixed(&canned.completion[close], "200 OK", "", completion_json, close);
		canned_stream(&canned.stream[close], events, close);
		canned_fixed(&canned.health[close], "200 OK", "", "{\"status\":\"ok\"}", close);
		canned_fixed(&canned.not_found[close], "404 Not Found", "",
			     "{\"error\":{\"message\":\"no such route\",\"type\":\"invalid_request_error\"}}", close);
		canned_fixed(&canned.bad_method[close], "405 Method Not Allowed", "Allow: POST\r\n",
			     "{\"error\":{\"message\":\"method not allowed\",\"type\":\"invalid_request_error\"}}",
			     close);
		canned_fixed(&canned.get_only[close], "405 Method Not Allowed", "Allow: GET\r\n",
			     "{\"error\":{\"message\":\"method not allowed\",\"type\":\"invalid_request_error\"}}",
			     close);
		canned_fixed(&canned.bad_json[close], "400 Bad Request", "",
			     "{\"error\":{\"message\":\"the body is not a JSON object\","
			     "\"type\":\"invalid_request_error\"}}", close);
	}
	/* HTTP/1.0 has no chunked encoding: the stream ends with the connection */
	body = sse_body(events, 0, &blen);
	if (!body) {
		fprintf(stderr, "fast_backend: out of memory building the responses\n");
		exit(1);
	}
	canned_set(&canned.stream_http10, http10_head, sizeof(http10_head) - 1, body, blen);
	free(body);
}

static void canned_free(void)
{
	/* the struct holds nothing but struct canned */
	_Static_assert(sizeof(canned) % sizeof(struct canned) == 0, "canned: only responses");
	struct canned *all = (struct canned *)&canned;

	for (size_t i = 0; i < sizeof(canned) / sizeof(*all); i++)
		free(all[i].bytes);
}

/* ---- connections ---- */

static int on_body(void *ud, const char *at, size_t len)
{
	struct conn *c = ud;

	if (len > sizeof(c->body) - c->body_len)
		return -1;
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int out_append(struct conn *c, const char *bytes, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + len)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return -1;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, bytes, len);
	c->out_len += len;
	return 0;
}

/* target's path (before any query) is path */
static int path_is(const char *target, const char *path)
{
	size_t n = strcspn(target, "?");

	return n == strlen(path) && !strncmp(target, path, n);
}

/* "stream": true in the request body; -1 if the body is not a JSON object */
static int wants_stream(const struct conn *c)
{
	cJSON *req = cJSON_ParseWithLength(c->body, c->body_len);
	int stream;

	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return -1;
	}
	stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"));
	cJSON_Delete(req);
	return stream;
}

/* The answer to the complete request in c->parse. */
static const struct canned *route(struct conn *c)
{
	const char *method = http_parse_method(c->parse), *target = http_parse_target(c->parse);
	int close = c->closing, stream;

	if (path_is(target, "/health"))
		return strcmp(method, "GET") ? &canned.get_only[close] : &canned.health[close];
	if (!path_is(target, "/v1/chat/completions"))
		return &canned.not_found[close];
	if (strcmp(method, "POST"))
		return &canned.bad_method[close];
	stream = wants_stream(c);
	if (stream < 0)
		return &canned.bad_json[close];
	if (!stream)
		return &canned.completion[close];
	if (http_parse_minor(c->parse) == 0) {
		c->closing = 1;
		return &canned.stream_http10;
	}
	return &canned.stream[close];
}

static const char *status_text(int status)
{
	switch (status) {
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Bad Request";
	}
}

/* An error from the parser: its status, a one-line reason, and close. */
static int answer_error(struct conn *c)
{
	const char *reason = "bad request";
	char head[256], body[256];
	int status = http_parse_error(c->parse, &reason), blen, hlen;

	blen = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"");
	for (; *reason && blen < (int)sizeof(body) - 8; reason++)	/* a JSON string */
		body[blen++] = *reason == '"' || *reason == '\\' ? '\'' : *reason;
	blen += snprintf(body + blen, sizeof(body) - (size_t)blen, "\"}}");
	hlen = snprintf(head, sizeof(head),
			"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
			"Connection: close\r\n\r\n", status, status_text(status), blen);
	c->closing = 1;
	return out_append(c, head, (size_t)hlen) || out_append(c, body, (size_t)blen) ? -1 : 0;
}

/* Feed what arrived; queue one answer per complete request. -1: drop c. */
static int consume(struct worker *w, struct conn *c, const char *buf, size_t len)
{
	size_t off = 0;
	enum http_parse_rc rc = HTTP_PARSE_MORE;

	while (!c->closing && (off < len || rc == HTTP_PARSE_HEAD_DONE)) {
		size_t used = 0;
		const struct canned *a;

		rc = http_parse_feed(c->parse, buf + off, len - off, &used);
		off += used;
		if (rc == HTTP_PARSE_ERR)
			return answer_error(c);
		if (rc == HTTP_PARSE_MORE)
			break;
		if (rc != HTTP_PARSE_MSG_DONE)
			continue;
		c->closing = !http_parse_keep_alive(c->parse);
		a = route(c);
		if (out_append(c, a->bytes, a->len))
			return -1;
		w->served++;
		http_parse_next(c->parse);
		c->body_len = 0;
	}
	return 0;
}

static int conn_watch(struct worker *w, struct conn *c, int op)
{
	struct epoll_event ev = { .events = c->want_out ? EPOLLOUT : EPOLLIN, .data.ptr = c };

	return epoll_ctl(w->epoll_fd, op, c->fd, &ev);
}

static void conn_free(struct worker *w, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);	/* also leaves the epoll set */
	http_parse_free(c->parse);
	free(c->out);
	free(c);
}

/* Send what is queued. 0: all sent or waiting for EPOLLOUT; -1: drop c. */
static int flush_out(struct worker *w, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* stop reading until the peer has taken what it asked for */
			if (!c->want_out) {
				c->want_out = 1;
				if (conn_watch(w, c, EPOLL_CTL_MOD))
					return -1;
			}
			return 0;
		}
		if (n < 0)
			return -1;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	if (c->closing)
		return -1;
	if (c->want_out) {
		c->want_out = 0;
		if (conn_watch(w, c, EPOLL_CTL_MOD))
			return -1;
	}
	return 0;
}

static void on_readable(struct worker *w, struct conn *c)
{
	char buf[RECV_CHUNK];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || consume(w, c, buf, (size_t)n) || flush_out(w, c))
		conn_free(w, c);
}

static void on_accept(struct worker *w)
{
	static const struct http_parse_limits limits = { .max_head = 16384, .max_body = BODY_MAX };
	int one = 1;

	for (;;) {
		int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;	/* EAGAIN, or EMFILE and friends: try at the next event */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (c)
			c->parse = http_parse_new(HTTP_PARSE_REQUEST, &limits, on_body, c);
		if (!c || !c->parse) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		if (conn_watch(w, c, EPOLL_CTL_ADD))
			conn_free(w, c);
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];

	for (;;) {
		int n = epoll_wait(w->epoll_fd, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == (void *)&w->stop_fd)
				return NULL;
			if (c == (void *)&w->listen_fd)
				on_accept(w);
			else if (c->want_out) {
				if (flush_out(w, c))
					conn_free(w, c);
			} else
				on_readable(w, c);
		}
	}
}

/* ---- start-up ---- */

static int listen_on(const struct options *o, uint16_t port, uint16_t *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t salen = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, o->host, &sa.sin_addr);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen)) {
		fprintf(stderr, "fast_backend: cannot listen on %s:%u: %s (pick a free port with --listen)\n",
			o->host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

static int worker_init(struct worker *w, int listen_fd, int stop_fd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	w->listen_fd = listen_fd;
	w->stop_fd = stop_fd;
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epoll_fd < 0)
		return -1;
	ev.data.ptr = &w->listen_fd;
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev))
		return -1;
	ev.data.ptr = &w->stop_fd;	/* never read: stays readable for every thread */
	return epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, stop_fd, &ev);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fast_backend [--listen HOST:PORT] [--threads N] [--events N]\n"
		"  A fast OpenAI-shaped backend for make bench: POST /v1/chat/completions\n"
		"  (\"stream\": true for SSE), GET /health. Prints the port it listens on.\n"
		"  --listen HOST:PORT  IPv4 address (default 127.0.0.1:0, a free port)\n"
		"  --threads N         event loops, one SO_REUSEPORT socket each (default 1)\n"
		"  --events N          SSE data: events per streamed completion (default 16)\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "events", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cli cli;
	char err[256];
	long long v;
	int opt;
	struct in_addr a;

	*o = (struct options){ .host = "127.0.0.1", .threads = 1, .events = 16 };
	cli_init(&cli, "fast_backend", "l:t:e:h", longopts);
	while ((opt = cli_next(&cli, argc, argv)) != -1) {
		if (opt == CLI_ERROR)
			return 2;
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (opt == 'l' && cli_hostport(cli.name, optarg, o->host, sizeof(o->host), &o->port, err, sizeof(err)))
			return cli_fail(&cli, err);
		if (opt == 'l' && inet_pton(AF_INET, o->host, &a) != 1)
			return cli_fail(&cli, "--listen: expected an IPv4 address such as 127.0.0.1:8091");
		if (opt == 't' && cli_long(cli.name, optarg, 1, MAX_THREADS, "threads", &v, err, sizeof(err)))
			return cli_fail(&cli, err);
		if (opt == 't')
			o->threads = (int)v;
		if (opt == 'e' && cli_long(cli.name, optarg, 0, MAX_EVENTS, "events", &v, err, sizeof(err)))
			return cli_fail(&cli, err);
		if (opt == 'e')
			o->events = (int)v;
	}
	if (optind < argc)
		return cli_fail(&cli, "unexpected argument (see fast_backend --help)");
	return 0;
}

/* Start the threads, wait for SIGINT/SIGTERM, stop them. */
static int serve(const struct options *o, struct worker *w, sigset_t *stop_signals)
{
	int stop_fd = eventfd(0, EFD_CLOEXEC), started = 0, rc = 0, sig;
	uint16_t port = o->port;
	unsigned long long served = 0;

	for (int i = 0; i < o->threads && stop_fd >= 0; i++) {
		int fd = listen_on(o, port, &port);

		if (fd < 0 || worker_init(&w[i], fd, stop_fd) ||
		    pthread_create(&w[i].thread, NULL, worker_run, &w[i])) {
			if (fd >= 0)
				fprintf(stderr, "fast_backend: cannot start thread %d: %s\n", i, strerror(errno));
			rc = 1;
			break;
		}
		started++;
	}
	if (!rc) {
		printf("fast_backend: listening on %s:%u, %d threads, %d SSE events, pid %d\n",
		       o->host, port, o->threads, o->events, (int)getpid());
		fflush(stdout);
		sigwait(stop_signals, &sig);
	}
	if (stop_fd >= 0 && eventfd_write(stop_fd, 1))
		rc = 1;
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		served += w[i].served;
	}
	for (int i = 0; i < o->threads; i++) {
		while (w[i].conns)
			conn_free(&w[i], w[i].conns);
		if (w[i].epoll_fd > 0)
			close(w[i].epoll_fd);
		if (w[i].listen_fd > 0)
			close(w[i].listen_fd);
	}
	if (stop_fd >= 0)
		close(stop_fd);
	fprintf(stderr, "fast_backend: served %llu requests\n", served);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;
	struct worker *w;
	sigset_t stop_signals;
	int rc = parse_options(argc, argv, &o);

	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	/* the threads inherit the mask; only sigwait() sees these */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	w = calloc((size_t)o.threads, sizeof(*w));
	if (!w) {
		fprintf(stderr, "fast_backend: out of memory\n");
		return 1;
	}
	canned_build(o.events);
	rc = serve(&o, w, &stop_signals);
	free(w);
	canned_free();
	return rc;
}

/* /metrics listener on one background thread; see metrics_server.h. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "errbuf.h"
#include "http_parse.h"
#include "metrics_server.h"

#define MAX_HEAD 8192	/* a scrape's head is a few hundred bytes */

struct metrics_server {
	int listen_fd;
	int stop_pipe[2];	/* written once by stop(): wakes the thread */
	uint16_t port;
	metrics_render_fn render;
	void *ud;
	pthread_t thread;
	struct prom_buf body;	/* reused between scrapes */
	atomic_ulong scrapes;
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Send all of buf; the socket's send timeout bounds a stalled reader. */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void reply(int fd, int status, const char *reason, const char *extra_headers, const char *type,
		  const char *body, size_t body_len, bool head_only)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
			 status, reason, type, body_len, extra_headers);

	if (n < 0 || (size_t)n >= sizeof(head) || send_all(fd, head, (size_t)n) < 0)
		return;
	if (!head_only && body_len)
		send_all(fd, body, body_len);
}

static void reply_text(int fd, int status, const char *reason, const char *extra_headers, const char *text)
{
	reply(fd, status, reason, extra_headers, "text/plain; charset=utf-8", text, strlen(text), false);
}

static const char *status_reason(int status)
{
	switch (status) {
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Bad Request";
	}
}

/* The request head is in: answer it. */
static void answer(struct metrics_server *ms, int fd, const struct http_parse *p)
{
	const char *method = http_parse_method(p), *target = http_parse_target(p);
	size_t path_len = strcspn(target, "?");
	bool get = !strcmp(method, "GET"), head = !strcmp(method, "HEAD");

	if (path_len != strlen("/metrics") || strncmp(target, "/metrics", path_len)) {
		reply_text(fd, 404, "Not Found", "", "not found: erg serves /metrics\n");
		return;
	}
	if (!get && !head) {
		reply_text(fd, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "method not allowed: use GET\n");
		return;
	}
	prom_buf_reset(&ms->body);
	ms->render(ms->ud, &ms->body);
	if (!prom_buf_ok(&ms->body)) {
		reply_text(fd, 500, "Internal Server Error", "", "out of memory rendering the metrics\n");
		return;
	}
	reply(fd, 200, "OK", "", "text/plain; version=0.0.4; charset=utf-8", ms->body.data ? ms->body.data : "",
	      ms->body.len, head);
	atomic_fetch_add(&ms->scrapes, 1);
}

/* Closing with unread input would reset the connection and could destroy
 * the answer in the client's buffer (a 431 to an oversized head): end our
 * side, then read what is left until the client closes or the deadline. */
static void linger_close(int fd, double deadline)
{
	char sink[4096];

	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int wait_ms = (int)((deadline - mono_s()) * 1000);

		if (wait_ms <= 0 || poll(&pfd, 1, wait_ms) <= 0 || recv(fd, sink, sizeof(sink), 0) <= 0)
			return;
	}
}

/* Read the request head within the deadline and answer it; the caller
 * closes the connection whatever happens. */
static void serve_connection(struct metrics_server *ms, int fd)
{
	struct http_parse_limits limits = { MAX_HEAD, 4096 };
	struct http_parse *p = http_parse_new(HTTP_PARSE_REQUEST, &limits, NULL, NULL);
	double deadline = mono_s() + METRICS_SERVER_TIMEOUT_S;
	char buf[4096];

	if (!p)
		return;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int wait_ms = (int)((deadline - mono_s()) * 1000);
		size_t off = 0;
		ssize_t n;

		if (wait_ms <= 0 || poll(&pfd, 1, wait_ms) <= 0)
			break;	/* too slow, or poll failed: drop it */
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* closed before a whole head */
		while (off < (size_t)n) {
			size_t used = 0;
			enum http_parse_rc rc = http_parse_feed(p, buf + off, (size_t)n - off, &used);
			const char *why = "";
			char text[160];
			int status;

			off += used;
			if (rc == HTTP_PARSE_HEAD_DONE || rc == HTTP_PARSE_MSG_DONE) {
				answer(ms, fd, p);
				goto out;
			}
			if (rc == HTTP_PARSE_ERR) {
				status = http_parse_error(p, &why);
				snprintf(text, sizeof(text), "bad request: %s\n", why ? why : "malformed");
				reply_text(fd, status, status_reason(status), "", text);
				goto out;
			}
			if (!used && rc == HTTP_PARSE_MORE)
				break;
		}
	}
out:
	http_parse_free(p);
	linger_close(fd, deadline);
}

static void *serve_loop(void *arg)
{
	struct metrics_server *ms = arg;

	for (;;) {
		struct pollfd pfd[2] = { { ms->listen_fd, POLLIN, 0 }, { ms->stop_pipe[0], POLLIN, 0 } };
		struct timeval tv = { (time_t)METRICS_SERVER_TIMEOUT_S, 0 };
		int fd;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(ms->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;	/* the client gave up, or no fds left: try the next */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		serve_connection(ms, fd);
		close(fd);
	}
	return NULL;
}

/* A listening socket on host:port, or -1 with the reason in err. */
static int listen_on(const char *host, uint16_t port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char port_s[8];
	int fd = -1, rc, saved = 0, one = 1;

	snprintf(port_s, sizeof(port_s), "%u", port);
	rc = getaddrinfo(host, port_s, &hints, &res);
	if (rc) {
		errbuf_set(err, errlen, "metrics: cannot resolve '%s': %s; give an address such as 127.0.0.1:9100",
			   host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		errbuf_set(err, errlen, "metrics: cannot listen on %s:%u: %s; choose a free port or a local address",
			   host, port, strerror(saved));
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return 0;
	if (sa.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
	return ntohs(((struct sockaddr_in *)&sa)->sin_port);
}

struct metrics_server *metrics_server_start(const char *host, uint16_t port, metrics_render_fn render,
					    void *ud, char *err, size_t errlen)
{
	struct metrics_server *ms = calloc(1, sizeof(*ms));
	int rc;

	if (!ms) {
		errbuf_set(err, errlen, "metrics: out of memory");
		return NULL;
	}
	ms->render = render;
	ms->ud = ud;
	prom_buf_init(&ms->body);
	ms->listen_fd = listen_on(host && *host ? host : "127.0.0.1", port, err, errlen);
	if (ms->listen_fd < 0) {
		free(ms);
		return NULL;
	}
	ms->port = bound_port(ms->listen_fd);
	if (pipe2(ms->stop_pipe, O_CLOEXEC) < 0) {
		errbuf_set(err, errlen, "metrics: pipe: %s", strerror(errno));
		close(ms->listen_fd);
		free(ms);
		return NULL;
	}
	rc = pthread_create(&ms->thread, NULL, serve_loop, ms);
	if (rc) {
		errbuf_set(err, errlen, "metrics: cannot start its thread: %s", strerror(rc));
		close(ms->stop_pipe[0]);
		close(ms->stop_pipe[1]);
		close(ms->listen_fd);
		free(ms);
		return NULL;
	}
	return ms;
}

uint16_t metrics_server_port(const struct metrics_server *ms)
{
	return ms->port;
}

unsigned long metrics_server_scrapes(const struct metrics_server *ms)
{
	return atomic_load(&ms->scrapes);
}

void metrics_server_stop(struct metrics_server *ms)
{
	if (!ms)
		return;
	while (write(ms->stop_pipe[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(ms->thread, NULL);
	close(ms->stop_pipe[0]);
	close(ms->stop_pipe[1]);
	close(ms->listen_fd);
	prom_buf_free(&ms->body);
	free(ms);
}

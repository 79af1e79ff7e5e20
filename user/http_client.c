/* Blocking HTTP/1.1 client for loopback workers; the answer is framed by
 * user/serve/http_parse (llhttp). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "http_client.h"
#include "http_parse.h"

#define MAX_RESPONSE (16u << 20)

int http_parse_url(const char *url, struct http_url *out, char *err, size_t errlen)
{
	const char *p = url, *host_end, *port_s;
	char host[64];
	size_t host_len;
	long port = 80;
	char *end;

	memset(out, 0, sizeof(*out));
	if (strncmp(p, "http://", 7)) {
		snprintf(err, errlen, "'%s': expected http://HOST:PORT (https is not spoken here)", url);
		return -1;
	}
	p += 7;
	if (*p == '[') {
		host_end = strchr(p, ']');
		if (!host_end) {
			snprintf(err, errlen, "'%s': unterminated [IPv6] address", url);
			return -1;
		}
		host_len = (size_t)(host_end - p - 1);
		if (host_len >= sizeof(host))
			host_len = sizeof(host) - 1;
		memcpy(host, p + 1, host_len);
		host[host_len] = '\0';
		port_s = host_end + 1;
	} else {
		host_end = p + strcspn(p, ":/");
		host_len = (size_t)(host_end - p);
		if (host_len == 0 || host_len >= sizeof(host)) {
			snprintf(err, errlen, "'%s': missing host", url);
			return -1;
		}
		memcpy(host, p, host_len);
		host[host_len] = '\0';
		port_s = host_end;
	}
	if (*port_s == ':') {
		port = strtol(port_s + 1, &end, 10);
		if (end == port_s + 1 || port <= 0 || port > 65535 || (*end && *end != '/')) {
			snprintf(err, errlen, "'%s': bad port", url);
			return -1;
		}
		port_s = end;
	}
	snprintf(out->path, sizeof(out->path), "%s", *port_s == '/' ? port_s : "/");
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	{
		struct in_addr a4;
		struct in6_addr a6;

		if (inet_pton(AF_INET, host, &a4) == 1) {
			if ((ntohl(a4.s_addr) >> 24) != 127) {
				snprintf(err, errlen, "'%s': only workers on this machine (127.0.0.0/8, ::1) are measured", url);
				return -1;
			}
		} else if (inet_pton(AF_INET6, host, &a6) == 1) {
			if (!IN6_IS_ADDR_LOOPBACK(&a6)) {
				snprintf(err, errlen, "'%s': only workers on this machine (127.0.0.0/8, ::1) are measured", url);
				return -1;
			}
		} else {
			snprintf(err, errlen, "'%s': host must be a loopback address or localhost", url);
			return -1;
		}
	}
	snprintf(out->host, sizeof(out->host), "%s", host);
	out->port = (int)port;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const struct http_url *url, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd;

	if (strchr(url->host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)url->port);
		inet_pton(AF_INET6, url->host, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)url->port);
		inet_pton(AF_INET, url->host, &s4->sin_addr);
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		snprintf(err, errlen, "cannot connect to %s:%d: %s", url->host, url->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The decoded body, as llhttp hands it over. */
struct body_buf {
	char *data;
	size_t len, cap;
};

static int append_body(void *ud, const char *at, size_t len)
{
	struct body_buf *b = ud;

	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *bigger;

		while (cap < b->len + len + 1)
			cap *= 2;
		bigger = realloc(b->data, cap);
		if (!bigger)
			return -1;
		b->data = bigger;
		b->cap = cap;
	}
	memcpy(b->data + b->len, at, len);
	b->len += len;
	return 0;
}

/* Feed what arrived; 1 when the (final, non-1xx) response is complete, 0 for
 * more, -1 on a framing error. *status is set at its head. */
static int take_bytes(struct http_parse *hp, const char *buf, size_t len, int *status)
{
	for (;;) {	/* after a head, fed again even with 0 bytes: it may end there */
		size_t used;
		enum http_parse_rc rc = http_parse_feed(hp, buf, len, &used);

		buf += used;
		len -= used;
		if (rc == HTTP_PARSE_MORE)
			return 0;
		if (rc == HTTP_PARSE_ERR)
			return -1;
		if (rc == HTTP_PARSE_HEAD_DONE) {
			*status = http_parse_status(hp);
			continue;
		}
		if (*status >= 200)	/* MSG_DONE */
			return 1;
		*status = 0;	/* 100 Continue and the like: the answer follows */
		http_parse_next(hp);
		if (len == 0)
			return 0;
	}
}

static int read_answer(int fd, const struct http_url *url, double timeout_s, struct body_buf *body,
		       char *err, size_t errlen)
{
	const struct http_parse_limits limits = { .max_head = 16384, .max_body = MAX_RESPONSE };
	struct http_parse *hp = http_parse_new(HTTP_PARSE_RESPONSE, &limits, append_body, body);
	double deadline = now_s() + timeout_s;
	int status = 0, done = 0;
	char buf[16384];
	const char *why;

	if (!hp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (!done) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		double left = deadline - now_s();
		ssize_t got;

		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) == 0) {
			snprintf(err, errlen, "no complete answer from %s:%d within %.0f s", url->host, url->port, timeout_s);
			goto fail;
		}
		got = recv(fd, buf, sizeof(buf), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "reading from %s:%d failed: %s", url->host, url->port, strerror(errno));
			goto fail;
		}
		if (got == 0) {	/* an answer without a length ends with the connection */
			if (status >= 200 && http_parse_eof(hp) == HTTP_PARSE_MSG_DONE)
				break;
			snprintf(err, errlen, "%s:%d closed the connection before its answer was complete",
				 url->host, url->port);
			goto fail;
		}
		done = take_bytes(hp, buf, (size_t)got, &status);
		if (done < 0) {
			if (http_parse_error(hp, &why) == 413)
				snprintf(err, errlen, "answer from %s:%d larger than %u bytes", url->host, url->port,
					 MAX_RESPONSE);
			else
				snprintf(err, errlen, "%s:%d did not answer valid HTTP: %s", url->host, url->port, why);
			goto fail;
		}
	}
	http_parse_free(hp);
	return status;
fail:
	http_parse_free(hp);
	return -1;
}

int http_post_json(const struct http_url *url, const char *path, const char *body,
		   double timeout_s, char **response, char *err, size_t errlen)
{
	size_t body_len = strlen(body);
	struct body_buf answer = { 0 };
	char header[512];
	int fd, status = -1, n;

	*response = NULL;
	fd = connect_to(url, err, errlen);
	if (fd < 0)
		return -1;
	n = snprintf(header, sizeof(header),
		     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n", path, url->host, url->port, body_len);
	if (send(fd, header, (size_t)n, MSG_NOSIGNAL) != n ||
	    send(fd, body, body_len, MSG_NOSIGNAL) != (ssize_t)body_len) {
		snprintf(err, errlen, "sending to %s:%d failed: %s", url->host, url->port, strerror(errno));
		goto out;
	}
	status = read_answer(fd, url, timeout_s, &answer, err, errlen);
	if (status < 0)
		goto out;
	if (append_body(&answer, "", 0) < 0) {	/* room for the NUL */
		snprintf(err, errlen, "out of memory");
		status = -1;
		goto out;
	}
	answer.data[answer.len] = '\0';
	*response = answer.data;
	answer.data = NULL;
out:
	free(answer.data);
	close(fd);
	return status;
}

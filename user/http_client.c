/* Blocking HTTP/1.1 client for loopback workers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "http_client.h"

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

/* Decode a chunked body in place; returns its length or -1. */
static long dechunk(char *body, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		char *end;
		unsigned long n = strtoul(body + in, &end, 16);
		char *crlf = strstr(body + in, "\r\n");

		if (!crlf || end == body + in)
			return -1;
		in = (size_t)(crlf - body) + 2;
		if (n == 0)
			return (long)out;
		if (in + n > len)
			return -1;
		memmove(body + out, body + in, n);
		out += n;
		in += n + 2;
	}
	return -1;
}

int http_post_json(const struct http_url *url, const char *path, const char *body,
		   double timeout_s, char **response, char *err, size_t errlen)
{
	size_t cap = 65536, len = 0, body_len = strlen(body);
	char *buf = NULL, header[512];
	double deadline = now_s() + timeout_s;
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
	buf = malloc(cap + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		double left = deadline - now_s();
		ssize_t got;

		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) == 0) {
			snprintf(err, errlen, "no complete answer from %s:%d within %.0f s", url->host, url->port, timeout_s);
			goto out;
		}
		if (len == cap) {
			char *bigger;

			if (cap >= MAX_RESPONSE) {
				snprintf(err, errlen, "answer from %s:%d larger than %u bytes", url->host, url->port, MAX_RESPONSE);
				goto out;
			}
			cap *= 2;
			bigger = realloc(buf, cap + 1);
			if (!bigger) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = bigger;
		}
		got = recv(fd, buf + len, cap - len, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "reading from %s:%d failed: %s", url->host, url->port, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;	/* Connection: close ends the body */
		len += (size_t)got;
	}
	buf[len] = '\0';
	{
		char *body_start = strstr(buf, "\r\n\r\n");
		bool chunked;
		long blen;

		if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !body_start) {
			snprintf(err, errlen, "%s:%d did not answer HTTP", url->host, url->port);
			status = -1;
			goto out;
		}
		*body_start = '\0';
		chunked = strcasestr(buf, "transfer-encoding: chunked") != NULL;
		body_start += 4;
		blen = (long)(len - (size_t)(body_start - buf));
		if (chunked && (blen = dechunk(body_start, (size_t)blen)) < 0) {
			snprintf(err, errlen, "%s:%d sent a malformed chunked body", url->host, url->port);
			status = -1;
			goto out;
		}
		memmove(buf, body_start, (size_t)blen);
		buf[blen] = '\0';
		*response = buf;
		buf = NULL;
	}
out:
	free(buf);
	close(fd);
	return status;
}

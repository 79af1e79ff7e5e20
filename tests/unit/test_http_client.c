/* erg calibrate's HTTP client against canned answers from a loopback
 * server thread: every framing the workers may use, sent in small pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "http_client.h"

struct canned {
	int lfd, port;
	const char *answer;	/* sent in pieces of `piece` bytes */
	size_t piece;
	bool keep_open;		/* hold the connection until the client closes it */
	pthread_t thread;
};

/* Read the request (head and Content-Length body), then answer. */
static void *serve(void *arg)
{
	struct canned *c = arg;
	int fd = accept(c->lfd, NULL, NULL);
	char req[8192];
	size_t got = 0;
	int one = 1;

	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		ssize_t n = recv(fd, req + got, sizeof(req) - 1 - got, 0);
		char *end, *cl;

		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		end = strstr(req, "\r\n\r\n");
		cl = strcasestr(req, "content-length:");
		if (end && cl && got >= (size_t)(end + 4 - req) + strtoul(cl + 15, NULL, 10))
			break;
	}
	for (size_t off = 0, len = strlen(c->answer); off < len; off += c->piece) {
		size_t n = len - off < c->piece ? len - off : c->piece;

		if (send(fd, c->answer + off, n, MSG_NOSIGNAL) < 0)
			break;
		usleep(1000);	/* separate segments, so the client sees pieces */
	}
	if (c->keep_open) {	/* until the client closes: recv returns 0 */
		char b;

		while (recv(fd, &b, 1, 0) > 0)
			;
	}
	close(fd);
	return NULL;
}

static void start(struct canned *c, const char *answer, size_t piece, bool keep_open)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	c->answer = answer;
	c->piece = piece;
	c->keep_open = keep_open;
	c->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->lfd >= 0);
	assert_int_equal(bind(c->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(c->lfd, 1), 0);
	assert_int_equal(getsockname(c->lfd, (struct sockaddr *)&a, &alen), 0);
	c->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&c->thread, NULL, serve, c), 0);
}

/* POST to the canned server; returns the status, *body the answer. */
static int post(struct canned *c, double timeout_s, char **body, char *err, size_t errlen)
{
	struct http_url url = { .host = "127.0.0.1", .port = c->port, .path = "/" };
	int status = http_post_json(&url, "/v1/completions", "{\"prompt\":\"x\"}", timeout_s, body, err, errlen);

	pthread_join(c->thread, NULL);
	close(c->lfd);
	return status;
}

static void chunked_answer_in_small_pieces(void **state)
{
	struct canned c;
	char *body = NULL, err[256] = "";

	(void)state;
	start(&c,
	      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	      "5\r\n{\"a\":\r\n3;x=y\r\n12}\r\n0\r\n\r\n",
	      3, false);
	assert_int_equal(post(&c, 10, &body, err, sizeof(err)), 200);
	assert_string_equal(body, "{\"a\":12}");
	free(body);
}

/* A worker that keeps the connection open: the answer ends at its length,
 * not at the close (the client closes; it must not wait for the timeout). */
static void length_framed_answer_on_an_open_connection(void **state)
{
	struct canned c;
	char *body = NULL, err[256] = "";

	(void)state;
	start(&c, "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nabcd", 7, true);
	assert_int_equal(post(&c, 20, &body, err, sizeof(err)), 201);
	assert_string_equal(body, "abcd");
	free(body);
	start(&c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 5, true);
	assert_int_equal(post(&c, 20, &body, err, sizeof(err)), 200);
	assert_string_equal(body, "ok");
	free(body);
}

static void answer_framed_by_the_close(void **state)
{
	struct canned c;
	char *body = NULL, err[256] = "";

	(void)state;
	start(&c, "HTTP/1.0 200 OK\r\nServer: w\r\n\r\nthe rest", 4, false);
	assert_int_equal(post(&c, 10, &body, err, sizeof(err)), 200);
	assert_string_equal(body, "the rest");
	free(body);
}

static void interim_answers_are_skipped(void **state)
{
	struct canned c;
	char *body = NULL, err[256] = "";

	(void)state;
	start(&c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}", 9, false);
	assert_int_equal(post(&c, 10, &body, err, sizeof(err)), 400);
	assert_string_equal(body, "{}");
	free(body);
}

static void broken_answers_are_errors(void **state)
{
	struct canned c;
	char *body = NULL, err[256] = "";

	(void)state;
	start(&c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 100, false);
	assert_int_equal(post(&c, 10, &body, err, sizeof(err)), -1);
	assert_null(body);
	assert_non_null(strstr(err, "before its answer was complete"));

	start(&c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 100, false);
	assert_int_equal(post(&c, 10, &body, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "did not answer valid HTTP"));

	start(&c, "SSH-2.0-OpenSSH_9.2\r\n", 100, false);
	assert_int_equal(post(&c, 10, &body, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "did not answer valid HTTP"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chunked_answer_in_small_pieces),
		cmocka_unit_test(length_framed_answer_on_an_open_connection),
		cmocka_unit_test(answer_framed_by_the_close),
		cmocka_unit_test(interim_answers_are_skipped),
		cmocka_unit_test(broken_answers_are_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

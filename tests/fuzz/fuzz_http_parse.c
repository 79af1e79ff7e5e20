/* libFuzzer target for erg's request path on llhttp (user/serve/http_parse):
 * framing, pipelining, the head and body limits, and split independence.
 *
 * Input: 4 control bytes, then the bytes a client sends.
 *   [0]    bit 0: parse as responses instead of requests; bit 1: answer to
 *          a HEAD request (responses); bit 2: a body limit
 *   [1]    max_head = 32 + 64 * [1] (32 .. 16352; 0 gives 32)
 *   [2..3] seed of the random split
 * The stream is parsed twice, in one piece and in random pieces; both must
 * give the same events at the same offsets. The same bytes are also taken as
 * the body of a "model": "auto" request and rewritten (user/serve/
 * body_rewrite): sized, written into a buffer of exactly that size, and
 * rewritten again to the same bytes. Every result is checked against the
 * interface's promises; a broken one aborts (a finding). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body_rewrite.h"
#include "http_parse.h"

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz_http_parse: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                     \
		}                                                                    \
	} while (0)

struct run {
	uint64_t hash;		/* FNV-1a over every event and what it showed */
	uint64_t body_seen;	/* bytes given to the body callback, this message */
	uint64_t body_hash;	/* of those bytes: folded in when the message ends,
				 * as a refused span is cut differently per split */
	uint64_t max_body;
};

static void mix(struct run *r, const void *data, size_t len)
{
	const unsigned char *b = data;

	for (size_t i = 0; i < len; i++)
		r->hash = (r->hash ^ b[i]) * 1099511628211ULL;
}

static void mix_u64(struct run *r, uint64_t v)
{
	mix(r, &v, sizeof(v));
}

static int on_body(void *ud, const char *at, size_t len)
{
	struct run *r = ud;

	CHECK(len > 0);
	r->body_seen += len;
	for (size_t i = 0; i < len; i++)	/* the decoded bytes, not their cuts */
		r->body_hash = (r->body_hash ^ (unsigned char)at[i]) * 1099511628211ULL;
	return 0;
}

static void check_head(struct run *r, const struct http_parse *p, const struct http_parse_limits *lim)
{
	uint64_t cl = 0;
	bool has_cl = http_parse_content_length(p, &cl);

	CHECK(http_parse_head_bytes(p) <= lim->max_head);
	CHECK(!(has_cl && http_parse_chunked(p)));
	if (has_cl && lim->max_body)
		CHECK(cl <= lim->max_body);
	CHECK(http_parse_minor(p) == 0 || http_parse_minor(p) == 1);
	mix(r, http_parse_method(p), strlen(http_parse_method(p)));
	mix(r, http_parse_target(p), strlen(http_parse_target(p)) + 1);
	mix_u64(r, (uint64_t)http_parse_status(p));
	mix_u64(r, http_parse_keep_alive(p) | http_parse_chunked(p) << 1 | (uint64_t)has_cl << 2);
	mix_u64(r, cl);
	for (size_t i = 0; i < http_parse_header_count(p); i++) {
		const char *n, *v;
		size_t nl, vl;

		http_parse_header(p, i, &n, &nl, &v, &vl);
		CHECK(nl > 0 && strlen(n) == nl && strlen(v) == vl);
		CHECK(vl == 0 || (v[0] != ' ' && v[vl - 1] != ' ' && v[vl - 1] != '\t'));
		CHECK(http_parse_header_get(p, n) != NULL);
		mix(r, n, nl + 1);
		mix(r, v, vl + 1);
	}
	/* what erg rejects never reaches HEAD_DONE */
	for (const char *t = http_parse_target(p); *t; t++)
		CHECK((unsigned char)*t > 0x20 && (unsigned char)*t < 0x7f);
}

static void check_error(struct run *r, const struct http_parse *p)
{
	const char *why = NULL;
	int status = http_parse_error(p, &why);

	CHECK(status == 400 || status == 413 || status == 431 || status == 501 || status == 505);
	CHECK(why && *why);
	for (const char *c = why; *c; c++)
		CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
	mix_u64(r, (uint64_t)status);
	mix(r, why, strlen(why));
}

static void check_done(struct run *r, const struct http_parse *p)
{
	uint64_t cl;

	CHECK(http_parse_body_bytes(p) == r->body_seen);
	if (http_parse_content_length(p, &cl))
		CHECK(r->body_seen == cl || r->body_seen == 0);	/* 0: HEAD, 204, 304 */
	if (r->max_body)
		CHECK(r->body_seen <= r->max_body);
	mix_u64(r, r->body_seen);
	mix_u64(r, r->body_hash);
	mix_u64(r, http_parse_sse_events(p));
	r->body_seen = 0;
	r->body_hash = 0;
}

/* Feed data[0..len) in pieces (the next cut from the seed, or all at once),
 * acting on each event as a server would. */
static void run_stream(struct run *r, enum http_parse_kind kind, bool head_request,
		       const struct http_parse_limits *lim, const char *data, size_t len, uint32_t seed)
{
	struct http_parse *p = http_parse_new(kind, lim, on_body, r);
	size_t pos = 0;
	enum http_parse_rc rc = HTTP_PARSE_MORE;

	CHECK(p);
	if (head_request)
		http_parse_expect_no_body(p);
	while (pos < len || rc == HTTP_PARSE_HEAD_DONE) {
		size_t piece = len - pos, used = 0;

		if (seed && piece > 1) {
			seed = seed * 1103515245u + 12345u;
			piece = 1 + (seed >> 8) % (piece < 64 ? piece : 64);
		}
		rc = http_parse_feed(p, data + pos, piece, &used);
		CHECK(used <= piece);
		CHECK(rc != HTTP_PARSE_MORE || used == piece);
		pos += used;
		if (rc != HTTP_PARSE_MORE)
			mix_u64(r, rc);
		/* where an error stops depends on the cut; the events do not */
		if (rc == HTTP_PARSE_HEAD_DONE || rc == HTTP_PARSE_MSG_DONE)
			mix_u64(r, pos);
		if (rc == HTTP_PARSE_HEAD_DONE) {
			check_head(r, p, lim);
		} else if (rc == HTTP_PARSE_MSG_DONE) {
			check_done(r, p);
			http_parse_next(p);
			if (head_request)
				http_parse_expect_no_body(p);
		} else if (rc == HTTP_PARSE_ERR) {
			check_error(r, p);
			break;
		}
	}
	if (rc != HTTP_PARSE_ERR) {
		rc = http_parse_eof(p);
		mix_u64(r, rc);
		if (rc == HTTP_PARSE_MSG_DONE)
			check_done(r, p);
		else if (rc == HTTP_PARSE_ERR)
			check_error(r, p);
	}
	http_parse_free(p);
}

/* The rewrite of an untrusted body: the sizing call's length is what the
 * writing call returns, nothing is written past a short buffer, and the
 * result is a fixed point (rewriting it again changes nothing). */
static void check_rewrite(const char *body, size_t len, uint32_t seed)
{
	static const char *const models[] = { "8B", "a-much-longer-model-name", "m" };
	const char *model = models[seed % 3];
	unsigned budget = seed % 7 == 0 ? 4294967295u : 1 + seed % 20000;
	size_t n = body_rewrite(body, len, model, budget, NULL, 0);

	if (!n)
		return;
	char *out = malloc(n), *again = malloc(n + 1);	/* exact: ASan sees any overrun */
	CHECK(out && again);
	CHECK(body_rewrite(body, len, model, budget, out, n) == n);
	again[n / 2] = 'X';
	CHECK(body_rewrite(body, len, model, budget, again, n / 2) == n);	/* short: stops at cap */
	CHECK(again[n / 2] == 'X');
	CHECK(body_rewrite(out, n, model, budget, again, n + 1) == n);
	CHECK(!memcmp(out, again, n));
	free(out);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	enum http_parse_kind kind = data[0] & 1 ? HTTP_PARSE_RESPONSE : HTTP_PARSE_REQUEST;
	bool head_request = kind == HTTP_PARSE_RESPONSE && (data[0] & 2);
	struct http_parse_limits lim = {
		.max_head = 32 + 64 * (size_t)data[1],
		.max_body = data[0] & 4 ? 1 + data[3] : 0,
	};
	uint32_t seed = (uint32_t)data[2] << 8 | data[3] | 1;
	const char *stream = (const char *)data + 4;
	size_t len = size - 4;
	struct run whole = { .hash = 14695981039346656037ULL, .max_body = lim.max_body };
	struct run split = whole;

	run_stream(&whole, kind, head_request, &lim, stream, len, 0);
	run_stream(&split, kind, head_request, &lim, stream, len, seed);
	CHECK(whole.hash == split.hash);
	check_rewrite(stream, len, seed);
	return 0;
}

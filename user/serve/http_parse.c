/* HTTP/1.1 framing on llhttp (built with LLHTTP_STRICT_MODE, no lenient
 * flags) plus erg's own scan of the head block for what llhttp 8.1 lets
 * through. llhttp is paused in on_headers_complete and on_message_complete,
 * so http_parse_feed() returns at both events with the exact position.
 *
 * The head is copied as it arrives into one buffer that grows to what the
 * heads need (never past limits.max_head; nothing before the first byte, so
 * idle connections cost little); the target and the headers are slices of
 * that copy (offsets recorded by the span callbacks), so a head split across
 * any number of feeds is read the same way. */
#include "http_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#define DEFAULT_MAX_HEAD 16384
#define FIRST_HEAD_CAP 1024
/* llhttp's span callbacks see at most one feed; slices grow across feeds */
struct slice {
	uint32_t off, len;
};

struct header {
	struct slice name, value;
};

enum phase { PH_HEAD, PH_BODY, PH_DONE, PH_ERR };

struct http_parse {
	llhttp_t ll;
	enum http_parse_kind kind;
	struct http_parse_limits limits;
	http_body_fn on_body;
	void *ud;
	enum phase phase;
	bool in_message;	/* a byte of the current message was seen */
	bool expect_no_body;
	bool keep_alive, chunked, has_length;
	uint64_t content_length;

	/* the head as received; valid up to head_len */
	char *head;
	size_t head_len, head_cap;
	/* where the current feed's bytes land in head (span callbacks) */
	const char *feed_base;
	size_t feed_off;

	struct slice target;
	struct header *headers;
	size_t nheaders, cap_headers;
	bool in_value;		/* the last header's value is complete */

	uint64_t body_bytes;
	/* chunk extensions and trailers: not body, bounded like a head */
	uint64_t ext_bytes, trailer_bytes;
	/* server-sent events: the first bytes of the current body line */
	uint64_t sse_events;
	char line_start[12];
	uint64_t line_len;
	bool line_cr;		/* the line's last byte so far is CR */

	int err_status;
	const char *err_reason;
};

/* ---- llhttp callbacks ---- */

static struct http_parse *of(llhttp_t *ll)
{
	return ll->data;
}

static int fail(struct http_parse *p, int status, const char *reason)
{
	p->err_status = status;
	p->err_reason = reason;
	p->phase = PH_ERR;
	return HPE_USER;
}

static uint32_t head_offset(const struct http_parse *p, const char *at)
{
	return (uint32_t)(p->feed_off + (size_t)(at - p->feed_base));
}

/* Extend a slice by a span; spans of one element are contiguous in head. */
static void grow(struct http_parse *p, struct slice *s, const char *at, size_t len)
{
	if (s->len == 0)
		s->off = head_offset(p, at);
	s->len += (uint32_t)len;
}

static int on_message_begin(llhttp_t *ll)
{
	of(ll)->in_message = true;
	return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
	grow(of(ll), &of(ll)->target, at, len);
	return 0;
}

/* Spans arrive cut wherever the bytes were cut, so the bounds on trailers
 * and chunk extensions are checked when a field, value or extension ends:
 * the same byte for any split, so the same error whether llhttp's own
 * check or this one comes first. Until then the bytes cost time, not memory
 * (they are not kept), and the client timeout bounds that time. */
static int count_trailer(struct http_parse *p, size_t len)
{
	p->trailer_bytes += len;
	return 0;
}

static int check_trailer(struct http_parse *p)
{
	if (p->trailer_bytes > p->limits.max_head)
		return fail(p, 431, "trailer section larger than the head limit");
	return 0;
}

static int on_header_field_complete(llhttp_t *ll)
{
	struct http_parse *p = of(ll);

	return p->phase != PH_HEAD ? check_trailer(p) : 0;
}

/* llhttp 8.1 reads chunk extensions without a bound (Node.js fixed that in
 * CVE-2024-22019): bytes that are not body must not be free. */
static int on_chunk_extension(llhttp_t *ll, const char *at, size_t len)
{
	(void)at;
	of(ll)->ext_bytes += len;
	return 0;
}

static int on_chunk_extension_complete(llhttp_t *ll)
{
	struct http_parse *p = of(ll);

	if (p->ext_bytes > p->limits.max_head)
		return fail(p, 400, "chunk extensions longer than the head limit");
	return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parse *p = of(ll);

	/* trailers of a chunked body are not kept; llhttp 8.1 gives an empty
	 * span for a line starting with ':', which on_header_value refuses */
	if (p->phase != PH_HEAD)
		return count_trailer(p, len);
	if (len == 0)
		return 0;
	if (p->nheaders == 0 || p->in_value) {
		if (p->nheaders == p->cap_headers) {
			size_t cap = p->cap_headers ? 2 * p->cap_headers : 16;
			struct header *h = realloc(p->headers, cap * sizeof(*h));

			if (!h)
				return fail(p, 431, "out of memory for headers");
			p->headers = h;
			p->cap_headers = cap;
		}
		memset(&p->headers[p->nheaders++], 0, sizeof(struct header));
		p->in_value = false;
	}
	grow(p, &p->headers[p->nheaders - 1].name, at, len);
	return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parse *p = of(ll);

	if (p->phase != PH_HEAD)
		return count_trailer(p, len);
	if (p->nheaders == 0 || p->in_value)	/* llhttp 8.1 takes ": x" */
		return fail(p, 400, "header line without a name");
	grow(p, &p->headers[p->nheaders - 1].value, at, len);
	return 0;
}

/* The value ended (an empty one had no span at all). */
static int on_header_value_complete(llhttp_t *ll)
{
	struct http_parse *p = of(ll);

	if (p->phase != PH_HEAD)
		return check_trailer(p);
	if (p->nheaders == 0 || p->in_value)
		return fail(p, 400, "header line without a name");
	p->in_value = true;
	return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
	struct http_parse *p = of(ll);

	if (p->expect_no_body)
		ll->flags |= F_SKIPBODY;
	return HPE_PAUSED;
}

/* Lines of the body starting "data:" are events, except the end marker. */
static void count_sse(struct http_parse *p, const char *at, size_t len)
{
	const char *c = at, *end = at + len;

	while (c < end) {
		if (*c != '\n') {
			if (p->line_len < sizeof(p->line_start))
				p->line_start[p->line_len] = *c;
			p->line_cr = *c == '\r';
			p->line_len++;
			c++;
			continue;
		}
		size_t n = p->line_len - (p->line_cr ? 1 : 0);
		const char *s = p->line_start;

		if (n >= 5 && !memcmp(s, "data:", 5) && !(n == 12 && !memcmp(s, "data: [DONE]", 12)) &&
		    !(n == 11 && !memcmp(s, "data:[DONE]", 11)))
			p->sse_events++;
		p->line_len = 0;
		p->line_cr = false;
		c++;
	}
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parse *p = of(ll);

	if (len == 0)	/* an empty span when a feed ends in the body */
		return 0;
	p->body_bytes += len;
	if (p->limits.max_body && p->body_bytes > p->limits.max_body)
		return fail(p, 413, "body larger than the limit");
	count_sse(p, at, len);
	if (p->on_body && p->on_body(p->ud, at, len) < 0)
		return fail(p, 400, "body rejected by its reader");
	return 0;
}

static int on_message_complete(llhttp_t *ll)
{
	(void)ll;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_chunk_extension_name = on_chunk_extension,
	.on_chunk_extension_value = on_chunk_extension,
	.on_chunk_extension_name_complete = on_chunk_extension_complete,
	.on_chunk_extension_value_complete = on_chunk_extension_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- erg's checks over the head block ---- */

static bool slice_is(const struct http_parse *p, struct slice s, const char *word)
{
	return s.len == strlen(word) && !strncasecmp(p->head + s.off, word, s.len);
}

/* The request line and header line starts, as received; llhttp 8.1 accepts
 * some of these even in strict mode. Returns a reason or NULL. */
static const char *scan_lines(const struct http_parse *p)
{
	if (p->head_len == 0)
		return NULL;
	const char *h = p->head, *end = h + p->head_len;
	const char *line = h;

	while (line < end && (*line == '\r' || *line == '\n'))	/* empty lines before */
		line++;
	const char *nl = memchr(line, '\n', (size_t)(end - line));

	if (p->kind == HTTP_PARSE_REQUEST) {
		const char *sp = memchr(line, ' ', (size_t)((nl ? nl : end) - line));

		for (const char *c = sp ? sp + 1 : end; c < (nl ? nl : end) && *c != ' '; c++)
			if ((unsigned char)*c < 0x21 || (unsigned char)*c >= 0x7f)
				return "control character, tab or non-ASCII byte in the request target";
		if (nl && (nl == line || nl[-1] != '\r'))
			return "request line ended by a bare LF";
	}
	if (!nl)
		return NULL;
	if (nl + 1 < end && (nl[1] == ' ' || nl[1] == '\t'))
		return "whitespace before the first header";
	for (const char *c = nl + 1; c < end; c++) {
		c = memchr(c, '\n', (size_t)(end - c));
		if (!c)
			break;
		if (c + 1 < end && (c[1] == ' ' || c[1] == '\t'))
			return "obs-fold header line";
	}
	return NULL;
}

static bool value_equal(const struct http_parse *p, struct slice a, struct slice b)
{
	return a.len == b.len && !memcmp(p->head + a.off, p->head + b.off, a.len);
}

/* Framing headers: one Content-Length, not with Transfer-Encoding; a
 * request's Transfer-Encoding is chunked alone. Returns a reason or NULL,
 * with *status. */
static const char *check_framing(const struct http_parse *p, int *status)
{
	const struct header *cl = NULL, *te = NULL;

	*status = 400;
	for (size_t i = 0; i < p->nheaders; i++) {
		const struct header *h = &p->headers[i];

		if (slice_is(p, h->name, "content-length")) {
			if (cl)
				return value_equal(p, cl->value, h->value) ? "duplicate Content-Length"
									   : "conflicting Content-Length";
			cl = h;
		} else if (slice_is(p, h->name, "transfer-encoding")) {
			if (te && p->kind == HTTP_PARSE_REQUEST)
				return "duplicate Transfer-Encoding";
			te = h;
		}
	}
	if (cl && te)
		return "Content-Length together with Transfer-Encoding";
	if (te && p->kind == HTTP_PARSE_REQUEST && !slice_is(p, te->value, "chunked")) {
		*status = 501;
		return "Transfer-Encoding other than chunked";
	}
	return NULL;
}

/* Make the slices C strings in place: the byte after each (':', CR, LF or
 * SP) is no longer needed once the head has been checked. */
static void terminate_slices(struct http_parse *p)
{
	for (size_t i = 0; i < p->nheaders; i++) {
		struct header *h = &p->headers[i];

		while (h->value.len && isspace((unsigned char)p->head[h->value.off + h->value.len - 1]))
			h->value.len--;
		if (h->value.len == 0)
			h->value.off = h->name.off + h->name.len;	/* ':' */
	}
	/* an empty value shares its NUL with its name (at the ':') */
	for (size_t i = 0; i < p->nheaders; i++) {
		struct header *h = &p->headers[i];

		p->head[h->name.off + h->name.len] = '\0';
		p->head[h->value.off + h->value.len] = '\0';
	}
	if (p->target.len)
		p->head[p->target.off + p->target.len] = '\0';
}

/* At on_headers_complete: erg's checks, then the framing summary. */
static enum http_parse_rc head_done(struct http_parse *p)
{
	const char *bad = scan_lines(p);

	if (bad) {
		fail(p, 400, bad);
		return HTTP_PARSE_ERR;
	}
	if (p->ll.http_major != 1 || p->ll.http_minor > 1) {	/* llhttp reads any digit.digit */
		fail(p, 505, "HTTP version other than 1.0 or 1.1");
		return HTTP_PARSE_ERR;
	}
	if (p->kind == HTTP_PARSE_REQUEST && p->ll.method == HTTP_CONNECT) {
		fail(p, 501, "CONNECT is not supported");
		return HTTP_PARSE_ERR;
	}
	int status;

	bad = check_framing(p, &status);
	if (bad) {
		fail(p, status, bad);
		return HTTP_PARSE_ERR;
	}
	p->chunked = p->ll.flags & F_CHUNKED;
	p->has_length = (p->ll.flags & F_CONTENT_LENGTH) && !p->chunked;
	p->content_length = p->has_length ? p->ll.content_length : 0;
	if (p->limits.max_body && p->has_length && p->content_length > p->limits.max_body) {
		fail(p, 413, "Content-Length larger than the body limit");
		return HTTP_PARSE_ERR;
	}
	p->keep_alive = llhttp_should_keep_alive(&p->ll);
	terminate_slices(p);
	p->phase = PH_BODY;
	return HTTP_PARSE_HEAD_DONE;
}

/* ---- errors ---- */

static int status_of(llhttp_errno_t e)
{
	switch (e) {
	case HPE_INVALID_VERSION:
		return 505;
	default:
		return 400;
	}
}

/* An llhttp error: erg's scan names head problems better when it sees one. */
static enum http_parse_rc parse_error(struct http_parse *p, llhttp_errno_t e)
{
	/* one of erg's checks failed: a data callback's HPE_USER, or the
	 * code llhttp gives a *_complete callback's refusal */
	if (p->err_status)
		return HTTP_PARSE_ERR;
	if (p->phase == PH_HEAD) {
		const char *bad = scan_lines(p);

		if (bad) {
			fail(p, 400, bad);
			return HTTP_PARSE_ERR;
		}
	}
	const char *reason = llhttp_get_error_reason(&p->ll);

	fail(p, status_of(e), reason && *reason ? reason : llhttp_errno_name(e));
	return HTTP_PARSE_ERR;
}

/* ---- the interface ---- */

struct http_parse *http_parse_new(enum http_parse_kind kind, const struct http_parse_limits *limits,
				  http_body_fn on_body, void *ud)
{
	struct http_parse *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->kind = kind;
	if (limits)
		p->limits = *limits;
	if (!p->limits.max_head)
		p->limits.max_head = DEFAULT_MAX_HEAD;
	if (p->limits.max_head > UINT32_MAX / 2)
		p->limits.max_head = UINT32_MAX / 2;
	p->on_body = on_body;
	p->ud = ud;
	llhttp_init(&p->ll, kind == HTTP_PARSE_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
	p->ll.data = p;
	return p;
}

void http_parse_free(struct http_parse *p)
{
	if (!p)
		return;
	free(p->headers);
	free(p->head);
	free(p);
}

/* Room for need bytes of head (need <= max_head). */
static int head_reserve(struct http_parse *p, size_t need)
{
	size_t cap = p->head_cap ? p->head_cap : FIRST_HEAD_CAP;
	char *bigger;

	if (need <= p->head_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > p->limits.max_head)
		cap = p->limits.max_head;
	bigger = realloc(p->head, cap);
	if (!bigger)
		return -1;
	p->head = bigger;
	p->head_cap = cap;
	return 0;
}

/* At most max_head head bytes reach llhttp: a long head costs max_head
 * bytes of work and memory, then 431. */
static enum http_parse_rc feed_head(struct http_parse *p, const char *buf, size_t len, size_t *consumed)
{
	size_t room = p->limits.max_head - p->head_len;
	size_t n = len < room ? len : room;

	p->feed_base = buf;
	p->feed_off = p->head_len;
	llhttp_errno_t e = llhttp_execute(&p->ll, buf, n);
	size_t used = e == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&p->ll) - buf);

	/* after an error, only the bytes before it: llhttp may stop at the
	 * end of a feed, and the reason must not depend on how bytes arrive */
	if (head_reserve(p, p->head_len + used) < 0) {
		fail(p, 431, "out of memory for the head");
		return HTTP_PARSE_ERR;
	}
	if (used)
		memcpy(p->head + p->head_len, buf, used);
	p->head_len += used;
	*consumed = used;
	if (e == HPE_PAUSED)
		return head_done(p);
	if (e != HPE_OK)
		return parse_error(p, e);
	if (n < len) {
		fail(p, 431, "head larger than the limit");
		return HTTP_PARSE_ERR;
	}
	return HTTP_PARSE_MORE;
}

enum http_parse_rc http_parse_feed(struct http_parse *p, const char *buf, size_t len, size_t *consumed)
{
	*consumed = 0;
	switch (p->phase) {
	case PH_ERR:
		return HTTP_PARSE_ERR;
	case PH_DONE:
		return len ? HTTP_PARSE_MSG_DONE : HTTP_PARSE_MORE;
	case PH_HEAD:
		return feed_head(p, buf, len, consumed);
	case PH_BODY:
		break;
	}
	if (!len)
		buf = "";	/* a pointer to measure the pause position from */
	llhttp_resume(&p->ll);
	llhttp_errno_t e = llhttp_execute(&p->ll, buf, len);

	if (e == HPE_OK) {
		*consumed = len;
		return HTTP_PARSE_MORE;
	}
	if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
		*consumed = (size_t)(llhttp_get_error_pos(&p->ll) - buf);
		p->phase = PH_DONE;
		return HTTP_PARSE_MSG_DONE;
	}
	return parse_error(p, e);
}

enum http_parse_rc http_parse_eof(struct http_parse *p)
{
	switch (p->phase) {
	case PH_ERR:
		return HTTP_PARSE_ERR;
	case PH_DONE:
		return HTTP_PARSE_MORE;
	case PH_HEAD:
		if (!p->in_message)
			return HTTP_PARSE_MORE;
		fail(p, 400, "connection closed inside the head");
		return HTTP_PARSE_ERR;
	case PH_BODY:
		break;
	}
	/* a message that ends with its head has not been fed since */
	size_t used;
	enum http_parse_rc rc = http_parse_feed(p, "", 0, &used);

	if (rc != HTTP_PARSE_MORE)
		return rc;
	llhttp_errno_t e = llhttp_finish(&p->ll);

	if (e == HPE_PAUSED) {	/* on_message_complete: framed by the close */
		p->phase = PH_DONE;
		return HTTP_PARSE_MSG_DONE;
	}
	fail(p, 400, "connection closed inside the body");
	return HTTP_PARSE_ERR;
}

void http_parse_next(struct http_parse *p)
{
	if (p->phase == PH_ERR)
		return;
	llhttp_reset(&p->ll);
	p->phase = PH_HEAD;
	p->in_message = false;
	p->expect_no_body = false;
	p->keep_alive = p->chunked = p->has_length = false;
	p->content_length = 0;
	p->head_len = 0;
	p->target = (struct slice){0, 0};
	p->nheaders = 0;
	p->in_value = false;
	p->body_bytes = 0;
	p->ext_bytes = p->trailer_bytes = 0;
	p->sse_events = 0;
	p->line_len = 0;
	p->line_cr = false;
}

void http_parse_expect_no_body(struct http_parse *p)
{
	p->expect_no_body = true;
}

int http_parse_error(const struct http_parse *p, const char **reason)
{
	if (reason)
		*reason = p->err_reason ? p->err_reason : "no error";
	return p->err_status;
}

const char *http_parse_method(const struct http_parse *p)
{
	if (p->kind != HTTP_PARSE_REQUEST)
		return "";
	return llhttp_method_name((llhttp_method_t)p->ll.method);
}

const char *http_parse_target(const struct http_parse *p)
{
	return p->target.len ? p->head + p->target.off : "";
}

int http_parse_status(const struct http_parse *p)
{
	return p->ll.status_code;
}

int http_parse_minor(const struct http_parse *p)
{
	return p->ll.http_minor;
}

bool http_parse_keep_alive(const struct http_parse *p)
{
	return p->keep_alive;
}

bool http_parse_chunked(const struct http_parse *p)
{
	return p->chunked;
}

bool http_parse_content_length(const struct http_parse *p, uint64_t *content_length)
{
	if (p->has_length && content_length)
		*content_length = p->content_length;
	return p->has_length;
}

size_t http_parse_header_count(const struct http_parse *p)
{
	return p->phase == PH_HEAD || p->phase == PH_ERR ? 0 : p->nheaders;
}

void http_parse_header(const struct http_parse *p, size_t i, const char **name, size_t *name_len,
		       const char **value, size_t *value_len)
{
	const struct header *h = &p->headers[i];

	*name = p->head + h->name.off;
	*name_len = h->name.len;
	*value = p->head + h->value.off;
	*value_len = h->value.len;
}

const char *http_parse_header_get(const struct http_parse *p, const char *name)
{
	for (size_t i = 0; i < http_parse_header_count(p); i++)
		if (slice_is(p, p->headers[i].name, name))
			return p->head + p->headers[i].value.off;
	return NULL;
}

size_t http_parse_head_bytes(const struct http_parse *p)
{
	return p->head_len;
}

uint64_t http_parse_body_bytes(const struct http_parse *p)
{
	return p->body_bytes;
}

uint64_t http_parse_sse_events(const struct http_parse *p)
{
	return p->sse_events;
}

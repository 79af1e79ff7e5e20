/* HTTP/1.1 message framing for erg serve, on llhttp (strict mode) plus the
 * checks Debian's llhttp 8.1 leaves out. Requests from clients and responses
 * from workers both go through it; erg never parses HTTP by hand.
 *
 * Bytes are fed as they arrive, in any split. The parser stops (returns) at
 * two points of each message, so the caller can act there: after the head
 * (status line / request line and headers) and after the whole message.
 * Pipelined messages: after HTTP_PARSE_MSG_DONE call http_parse_next() and
 * feed the bytes that were not consumed. After HTTP_PARSE_HEAD_DONE feed
 * again even with no bytes left (len 0): a message without a body ends
 * there, with HTTP_PARSE_MSG_DONE.
 *
 * Rejected (HTTP_PARSE_ERR, with the status to answer and a reason):
 *   400 malformed request line or header, obs-fold (a header line starting
 *       with space or tab), a bare LF ending the request line, whitespace
 *       before the first header, control characters, tab or bytes >= 0x80
 *       in the request target, Content-Length together with
 *       Transfer-Encoding, duplicate or conflicting Content-Length, bad chunk
 *       sizes (everything llhttp's strict mode rejects), a header line
 *       without a name
 *   431 a head longer than limits.max_head
 *   413 a body longer than limits.max_body (requests)
 *   501 CONNECT, a request Transfer-Encoding other than "chunked"
 *   505 an HTTP version other than 1.0 and 1.1
 * After an error the connection must be closed: the stream is out of sync. */
#ifndef ERG_HTTP_PARSE_H
#define ERG_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_parse_kind { HTTP_PARSE_REQUEST, HTTP_PARSE_RESPONSE };

enum http_parse_rc {
	HTTP_PARSE_MORE,	/* all bytes consumed, the message goes on */
	HTTP_PARSE_HEAD_DONE,	/* the head ended at *consumed; headers readable */
	HTTP_PARSE_MSG_DONE,	/* the message ended at *consumed */
	HTTP_PARSE_ERR,		/* see http_parse_error() */
};

struct http_parse_limits {
	size_t max_head;	/* bytes of request/status line + headers; default 16384 */
	uint64_t max_body;	/* decoded body bytes; 0: no limit (responses) */
};

/* Body bytes as they are decoded (chunk framing removed); may be NULL. A
 * response's bytes are forwarded raw by the caller, this is for counting and
 * for reading a request's JSON. Return 0, or -1 to stop with error 413/400. */
typedef int (*http_body_fn)(void *ud, const char *at, size_t len);

struct http_parse;	/* opaque; one per direction of a connection */

struct http_parse *http_parse_new(enum http_parse_kind kind, const struct http_parse_limits *limits,
				  http_body_fn on_body, void *ud);
void http_parse_free(struct http_parse *p);

/* Feed len bytes. *consumed: how many were used (all of them unless the
 * return is HEAD_DONE, MSG_DONE or ERR, where it is the position of the
 * event). Call again with the rest. */
enum http_parse_rc http_parse_feed(struct http_parse *p, const char *buf, size_t len, size_t *consumed);

/* The peer closed: a response framed by the connection's end is complete
 * (MSG_DONE); any other unfinished message is an ERR. MORE if nothing was
 * in progress. */
enum http_parse_rc http_parse_eof(struct http_parse *p);

/* Make ready for the next message on the same connection (after MSG_DONE). */
void http_parse_next(struct http_parse *p);

/* A response to a HEAD request has no body: say so before feeding it. */
void http_parse_expect_no_body(struct http_parse *p);

/* After an ERR: the status to answer (400, 413, 431, 501, 505) and a short
 * reason without control characters ("obs-fold header line"). */
int http_parse_error(const struct http_parse *p, const char **reason);

/* ---- the head, valid from HEAD_DONE until http_parse_next() ---- */

/* "POST", "GET", ... (requests). */
const char *http_parse_method(const struct http_parse *p);
/* The request target as sent ("/v1/chat/completions?x=1"), NUL-terminated. */
const char *http_parse_target(const struct http_parse *p);
/* The status code (responses). */
int http_parse_status(const struct http_parse *p);
/* HTTP minor version: 0 or 1. */
int http_parse_minor(const struct http_parse *p);
/* Whether the connection stays open after this message (HTTP/1.1 default,
 * Connection: close / keep-alive honoured). */
bool http_parse_keep_alive(const struct http_parse *p);
/* Body framing: chunked, or a Content-Length (content_length set), or
 * neither (requests: no body; responses: until the connection closes). */
bool http_parse_chunked(const struct http_parse *p);
bool http_parse_content_length(const struct http_parse *p, uint64_t *content_length);

/* Headers in order, names as sent. i from 0 to http_parse_header_count()-1.
 * Pointers stay valid until http_parse_next(); values are trimmed. */
size_t http_parse_header_count(const struct http_parse *p);
void http_parse_header(const struct http_parse *p, size_t i, const char **name, size_t *name_len,
		       const char **value, size_t *value_len);
/* The first header of that name (case-insensitive), NUL-terminated, or NULL. */
const char *http_parse_header_get(const struct http_parse *p, const char *name);

/* Bytes of the head as received (request/status line through the blank
 * line), and decoded body bytes so far. */
size_t http_parse_head_bytes(const struct http_parse *p);
uint64_t http_parse_body_bytes(const struct http_parse *p);
/* Server-sent events seen in the body so far: lines starting "data:" (a
 * token proxy for streamed completions; "data: [DONE]" not counted). */
uint64_t http_parse_sse_events(const struct http_parse *p);

#endif

/* openai_http: HTTP/1.1 server layer for OpenAI-style model workers.
 * See openai_http.h for the interface and the endpoints. Requests are framed
 * by erg's own user/serve/http_parse (llhttp, strict), as in erg serve. */
#include "openai_http.h"
#include "http_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR_MAX         16384        /* request line + headers */
#define TARGET_MAX      2048         /* request target (path + query) */
#define REQ_TIMEOUT_MS  10000        /* to receive the rest of a started request */
#define SEND_TIMEOUT_S  30           /* a client that stops reading is gone */
#define CONTENT_MAX     (16u << 20)  /* non-streaming answer text */
#define STOP_WAIT_S     10           /* oai_server_stop waits this for threads */
#define CONN_STACK      (1u << 20)   /* cJSON recursion (nesting <= 1000) fits */

struct oai_server {
	struct oai_config cfg;
	char *model;
	int lfd, port;
	time_t created;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_cond_t slot_cv; /* a slot was freed, or stopping */
	pthread_cond_t conn_cv; /* a connection closed */
	int *conn_fds;          /* cfg.max_conns entries, -1 = free */
	int nconns, active;
	uint64_t seq;
	struct oai_stats st;
	atomic_bool stopping;
};

struct conn {
	struct oai_server *s;
	int fd, idx;
	struct http_parse *hp;  /* frames the requests on this connection */
	char *buf;              /* received, not yet parsed */
	size_t len, cap;
	char *body;             /* the current request's body */
	size_t body_len, body_cap;
};

struct http_req {
	char method[16];
	char path[TARGET_MAX + 1];
	int minor;               /* HTTP/1.minor */
	bool keep_alive;
	bool expect_continue;
	bool chunked_body;
	long long content_length; /* -1: none */
};

struct oai_out {
	struct conn *c;
	const struct oai_request *req;
	char id[64];
	time_t created;
	int tokens, prompt_tokens;
	const char *finish;
	bool chunked;        /* HTTP/1.1 chunked body; HTTP/1.0 streams until close */
	bool keep;           /* the connection stays open after this answer */
	bool headers_sent, gone, full;
	unsigned char pend[4]; /* incomplete UTF-8 sequence carried to the next token */
	size_t npend;
	char *text;          /* non-streaming answer */
	size_t tlen, tcap;
};

/* ---- small helpers ---- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1; /* EPIPE, ECONNRESET, or SO_SNDTIMEO ran out */
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Growable byte buffer append; caps total at limit. */
static int buf_append(char **b, size_t *len, size_t *cap, const char *p, size_t n,
		      size_t limit)
{
	if (*len + n + 1 > limit)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 256;
		while (nc < *len + n + 1)
			nc *= 2;
		if (nc > limit)
			nc = limit;
		char *nb = realloc(*b, nc);
		if (!nb)
			return -1;
		*b = nb;
		*cap = nc;
	}
	memcpy(*b + *len, p, n);
	*len += n;
	(*b)[*len] = '\0';
	return 0;
}

/* ---- responses ---- */

static void count_status(struct oai_server *s, int status)
{
	pthread_mutex_lock(&s->mu);
	if (status == 503)
		s->st.busy++;
	else if (status >= 400 && status < 500)
		s->st.bad++;
	pthread_mutex_unlock(&s->mu);
}

static int send_response(struct conn *c, int status, const char *ctype,
			 const char *body, size_t blen, bool keep, const char *extra)
{
	char hdr[512];
	int h = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: %s\r\n%s\r\n",
			 status, status_text(status), ctype, blen,
			 keep ? "keep-alive" : "close", extra ? extra : "");
	if (h < 0 || (size_t)h >= sizeof(hdr))
		return -1;
	char *all = malloc((size_t)h + blen);
	if (!all)
		return -1;
	memcpy(all, hdr, (size_t)h);
	if (blen)
		memcpy(all + h, body, blen);
	int rc = send_all(c->fd, all, (size_t)h + blen);
	free(all);
	count_status(c->s, status);
	return rc;
}

static int send_json(struct conn *c, int status, cJSON *obj, bool keep, const char *extra)
{
	char *txt = obj ? cJSON_PrintUnformatted(obj) : NULL;
	int rc;
	if (!txt) {
		static const char oom[] = "{\"error\":{\"message\":\"out of memory\","
					  "\"type\":\"server_error\",\"param\":null,\"code\":null}}";
		rc = send_response(c, 500, "application/json", oom, sizeof(oom) - 1, false, NULL);
		return rc ? rc : -1;
	}
	rc = send_response(c, status, "application/json", txt, strlen(txt), keep, extra);
	free(txt);
	return rc;
}

/* OpenAI-style error body: {"error":{"message","type","param","code"}}. */
static cJSON *error_json(const char *type, const char *param, const char *code,
			 const char *msg)
{
	cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
	if (!e)
		return root;
	cJSON_AddStringToObject(e, "message", msg);
	cJSON_AddStringToObject(e, "type", type);
	if (param)
		cJSON_AddStringToObject(e, "param", param);
	else
		cJSON_AddNullToObject(e, "param");
	if (code)
		cJSON_AddStringToObject(e, "code", code);
	else
		cJSON_AddNullToObject(e, "code");
	return root;
}

static int send_error(struct conn *c, int status, bool keep, const char *param,
		      const char *code, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Returns 0 when the connection may be reused, -1 when it must close. */
static int send_error(struct conn *c, int status, bool keep, const char *param,
		      const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *type = status == 503 ? "server_busy"
			 : status >= 500 ? "server_error"
			 : status == 404 ? "not_found_error"
			 : "invalid_request_error";
	cJSON *e = error_json(type, param, code, msg);
	int rc = send_json(c, status, e, keep, status == 503 ? "Retry-After: 1\r\n" : NULL);
	cJSON_Delete(e);
	return (rc || !keep) ? -1 : 0;
}

/* ---- UTF-8: engines emit byte pieces; JSON needs whole characters ---- */

static size_t utf8_need(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

/* Is b[1..n) a valid continuation (so far) of a sequence starting with b[0]? */
static bool utf8_cont_ok(const unsigned char *b, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if ((b[i] & 0xC0) != 0x80)
			return false;
		if (i == 1) { /* overlong forms, surrogates, > U+10FFFF */
			if (b[0] == 0xE0 && b[1] < 0xA0) return false;
			if (b[0] == 0xED && b[1] > 0x9F) return false;
			if (b[0] == 0xF0 && b[1] < 0x90) return false;
			if (b[0] == 0xF4 && b[1] > 0x8F) return false;
		}
	}
	return true;
}

/* Append the valid UTF-8 of pend+src to dst (NUL-terminated, no NUL bytes);
 * bad bytes become U+FFFD; an incomplete tail stays in o->pend unless final. */
static int utf8_clean(struct oai_out *o, const char *src, size_t n, bool final,
		      char **dst, size_t *dlen, size_t *dcap)
{
	static const char repl[] = "\xEF\xBF\xBD";
	unsigned char *b = malloc(o->npend + n + 1);
	if (!b)
		return -1;
	memcpy(b, o->pend, o->npend);
	if (n)
		memcpy(b + o->npend, src, n);
	size_t len = o->npend + n, i = 0;
	o->npend = 0;
	int rc = buf_append(dst, dlen, dcap, "", 0, CONTENT_MAX + 1);
	while (rc == 0 && i < len) {
		size_t need = utf8_need(b[i]);
		if (b[i] == 0 || need == 0) {
			rc = buf_append(dst, dlen, dcap, repl, 3, CONTENT_MAX + 1);
			i++;
		} else if (i + need > len) {
			if (!final && utf8_cont_ok(b + i, len - i)) {
				memcpy(o->pend, b + i, len - i);
				o->npend = len - i;
				break;
			}
			rc = buf_append(dst, dlen, dcap, repl, 3, CONTENT_MAX + 1);
			i++;
		} else if (utf8_cont_ok(b + i, need)) {
			rc = buf_append(dst, dlen, dcap, (const char *)b + i, need, CONTENT_MAX + 1);
			i += need;
		} else {
			rc = buf_append(dst, dlen, dcap, repl, 3, CONTENT_MAX + 1);
			i++;
		}
	}
	free(b);
	return rc;
}

/* ---- streaming output ---- */

static cJSON *chunk_base(struct oai_out *o)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "id", o->id);
	cJSON_AddStringToObject(j, "object", o->req->endpoint == OAI_CHAT
				? "chat.completion.chunk" : "text_completion");
	cJSON_AddNumberToObject(j, "created", (double)o->created);
	cJSON_AddStringToObject(j, "model", o->req->model);
	return j;
}

/* A choice for a chunk: chat delta {role?, content?} or completion text. */
static void chunk_choice(struct oai_out *o, cJSON *j, const char *text, bool role,
			 const char *finish)
{
	cJSON *arr = cJSON_AddArrayToObject(j, "choices");
	cJSON *ch = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, ch);
	cJSON_AddNumberToObject(ch, "index", 0);
	if (o->req->endpoint == OAI_CHAT) {
		cJSON *d = cJSON_AddObjectToObject(ch, "delta");
		if (role)
			cJSON_AddStringToObject(d, "role", "assistant");
		if (text)
			cJSON_AddStringToObject(d, "content", text);
	} else {
		cJSON_AddStringToObject(ch, "text", text ? text : "");
		cJSON_AddNullToObject(ch, "logprobs");
	}
	if (finish)
		cJSON_AddStringToObject(ch, "finish_reason", finish);
	else
		cJSON_AddNullToObject(ch, "finish_reason");
}

static void add_usage(struct oai_out *o, cJSON *j)
{
	cJSON *u = cJSON_AddObjectToObject(j, "usage");
	cJSON_AddNumberToObject(u, "prompt_tokens", o->prompt_tokens);
	cJSON_AddNumberToObject(u, "completion_tokens", o->tokens);
	cJSON_AddNumberToObject(u, "total_tokens", (double)o->prompt_tokens + o->tokens);
}

/* Write one SSE event ("data: X\n\n") framed for the connection. */
static int sse_send(struct oai_out *o, const char *payload)
{
	size_t pl = strlen(payload), n = 0;
	char *b = malloc(pl + 48);
	if (!b)
		return -1;
	if (o->chunked)
		n += (size_t)sprintf(b, "%zx\r\n", pl + 8);
	memcpy(b + n, "data: ", 6);
	memcpy(b + n + 6, payload, pl);
	n += 6 + pl;
	memcpy(b + n, "\n\n", 2);
	n += 2;
	if (o->chunked) {
		memcpy(b + n, "\r\n", 2);
		n += 2;
	}
	int rc = send_all(o->c->fd, b, n);
	free(b);
	return rc;
}

static int sse_send_json(struct oai_out *o, cJSON *j)
{
	char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!txt)
		return -1;
	int rc = sse_send(o, txt);
	free(txt);
	return rc;
}

/* Status line, headers and the first (role) chunk. */
static int stream_begin(struct oai_out *o)
{
	char hdr[256];
	int h = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			 "Cache-Control: no-cache\r\n%s\r\n",
			 !o->chunked ? "Connection: close\r\n"
			 : o->keep ? "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
			 : "Transfer-Encoding: chunked\r\nConnection: close\r\n");
	o->headers_sent = true;
	if (send_all(o->c->fd, hdr, (size_t)h))
		return -1;
	if (o->req->endpoint != OAI_CHAT)
		return 0;
	cJSON *j = chunk_base(o);
	chunk_choice(o, j, "", true, NULL);
	return sse_send_json(o, j);
}

/* ---- generator-facing API ---- */

bool oai_cancelled(struct oai_out *o)
{
	if (o->gone)
		return true;
	if (atomic_load(&o->c->s->stopping)) {
		o->gone = true;
		return true;
	}
	/* A closed client shows as RDHUP/HUP before any write fails. */
	struct pollfd p = { .fd = o->c->fd, .events = POLLRDHUP };
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
		o->gone = true;
	return o->gone;
}

int oai_emit(struct oai_out *o, const char *text, size_t len)
{
	if (o->full || o->tokens >= o->req->max_tokens)
		return OAI_FULL;
	if (oai_cancelled(o))
		return OAI_GONE;
	if (!text)
		len = 0;
	if (!o->req->stream) {
		if (utf8_clean(o, text, len, false, &o->text, &o->tlen, &o->tcap)) {
			o->full = true; /* answer text over CONTENT_MAX: end as "length" */
			o->finish = "length";
			return OAI_FULL;
		}
		o->tokens++;
		return OAI_OK;
	}
	char *piece = NULL;
	size_t plen = 0, pcap = 0;
	if (utf8_clean(o, text, len, false, &piece, &plen, &pcap)) {
		free(piece);
		o->gone = true;
		return OAI_GONE;
	}
	o->tokens++;
	int rc = 0;
	if (!o->headers_sent)
		rc = stream_begin(o);
	if (rc == 0) {
		cJSON *j = chunk_base(o);
		chunk_choice(o, j, piece, false, NULL);
		rc = sse_send_json(o, j);
	}
	free(piece);
	if (rc) {
		o->gone = true;
		return OAI_GONE;
	}
	return OAI_OK;
}

void oai_set_prompt_tokens(struct oai_out *o, int n)
{
	if (n >= 0)
		o->prompt_tokens = n;
}

void oai_set_finish(struct oai_out *o, const char *reason)
{
	if (reason)
		o->finish = reason;
}

int oai_tokens(const struct oai_out *o)
{
	return o->tokens;
}

/* ---- request validation ---- */

struct verr {
	char msg[256];
	const char *param, *code;
};

static int bad(struct verr *e, const char *param, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int bad(struct verr *e, const char *param, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->param = param;
	e->code = code;
	return -1;
}

/* An optional integer field: 0 absent/null, 1 present (*v set), -1 invalid. */
static int opt_int(const cJSON *body, const char *name, double *v, struct verr *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, name);
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsNumber(it) || isnan(it->valuedouble) ||
	    (isfinite(it->valuedouble) && it->valuedouble != floor(it->valuedouble)))
		return bad(e, name, "invalid_type", "%s must be an integer", name);
	*v = it->valuedouble;
	return 1;
}

static int opt_bool(const cJSON *obj, const char *name, bool *v, struct verr *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsBool(it))
		return bad(e, name, "invalid_type", "%s must be true or false", name);
	*v = cJSON_IsTrue(it);
	return 1;
}

/* Text of one chat message's content: a string, null, or text parts. */
static int message_text(const cJSON *content, char **p, size_t *len, size_t *cap,
			struct verr *e)
{
	if (!content || cJSON_IsNull(content))
		return 0;
	if (cJSON_IsString(content))
		return buf_append(p, len, cap, content->valuestring,
				  strlen(content->valuestring), SIZE_MAX) ? bad(e, NULL, NULL, "out of memory") : 0;
	if (!cJSON_IsArray(content))
		return bad(e, "messages", "invalid_type",
			   "message content must be a string or an array of text parts");
	const cJSON *part;
	cJSON_ArrayForEach(part, content) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
		const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
		if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text))
			return bad(e, "messages", "invalid_type",
				   "only text content parts (type text) are supported");
		if (buf_append(p, len, cap, text->valuestring, strlen(text->valuestring), SIZE_MAX))
			return bad(e, NULL, NULL, "out of memory");
	}
	return 0;
}

static int validate(struct oai_server *s, enum oai_endpoint ep, const cJSON *body,
		    struct oai_request *r, char **prompt, struct verr *e)
{
	const struct oai_config *cfg = &s->cfg;
	size_t plen = 0, pcap = 0;
	int overhead = 0;
	memset(r, 0, sizeof(*r));
	r->endpoint = ep;
	r->body = body;
	r->model = s->model;
	if (!cJSON_IsObject(body))
		return bad(e, NULL, NULL, "request body must be a JSON object");

	const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
	if (model && !cJSON_IsNull(model) && !cJSON_IsString(model))
		return bad(e, "model", "invalid_type", "model must be a string");

	if (ep == OAI_CHAT) {
		const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
		if (!msgs || cJSON_IsNull(msgs))
			return bad(e, "messages", "missing_required_parameter",
				   "missing required parameter: messages");
		if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
			return bad(e, "messages", "invalid_type",
				   "messages must be a non-empty array of {role, content} objects");
		const cJSON *m;
		cJSON_ArrayForEach(m, msgs) {
			const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
			if (!cJSON_IsObject(m) || !cJSON_IsString(role) || !role->valuestring[0])
				return bad(e, "messages", "invalid_type",
					   "each message must be an object with a string role");
			if (message_text(cJSON_GetObjectItemCaseSensitive(m, "content"),
					 prompt, &plen, &pcap, e) ||
			    buf_append(prompt, &plen, &pcap, "\n", 1, SIZE_MAX))
				return -1;
			overhead += 4; /* role and separators, as chat templates add */
		}
		r->messages = msgs;
	} else {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
		if (!p || cJSON_IsNull(p))
			return bad(e, "prompt", "missing_required_parameter",
				   "missing required parameter: prompt");
		if (cJSON_IsString(p)) {
			if (buf_append(prompt, &plen, &pcap, p->valuestring, strlen(p->valuestring), SIZE_MAX))
				return bad(e, NULL, NULL, "out of memory");
		} else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) > 0) {
			const cJSON *it;
			cJSON_ArrayForEach(it, p) {
				if (!cJSON_IsString(it))
					return bad(e, "prompt", "invalid_type",
						   "prompt must be a string or an array of strings");
				if (buf_append(prompt, &plen, &pcap, it->valuestring,
					       strlen(it->valuestring), SIZE_MAX) ||
				    buf_append(prompt, &plen, &pcap, "\n", 1, SIZE_MAX))
					return bad(e, NULL, NULL, "out of memory");
			}
		} else {
			return bad(e, "prompt", "invalid_type",
				   "prompt must be a string or a non-empty array of strings");
		}
	}
	if (!*prompt && buf_append(prompt, &plen, &pcap, "", 0, SIZE_MAX))
		return bad(e, NULL, NULL, "out of memory");
	r->prompt = *prompt;
	/* About 4 bytes per token for English text with BPE vocabularies. */
	double pt = (double)(plen + 3) / 4 + overhead;
	r->prompt_tokens = pt > 1e9 ? 1000000000 : (int)pt;
	if (cfg->max_prompt_tokens > 0 && r->prompt_tokens > cfg->max_prompt_tokens)
		return bad(e, ep == OAI_CHAT ? "messages" : "prompt", "context_length_exceeded",
			   "prompt is about %d tokens, over this model's limit of %d",
			   r->prompt_tokens, cfg->max_prompt_tokens);

	/* max_completion_tokens is the newer name and wins when both are given. */
	double mt = 0;
	const char *mtname = "max_completion_tokens";
	int have = opt_int(body, mtname, &mt, e);
	if (have == 0) {
		mtname = "max_tokens";
		have = opt_int(body, mtname, &mt, e);
	}
	if (have < 0)
		return -1;
	if (have == 0) {
		r->max_tokens = cfg->default_max_tokens;
	} else if (mt < 1) {
		return bad(e, mtname, "invalid_value", "%s must be at least 1 (got %.0f)", mtname, mt);
	} else if (mt > cfg->max_tokens_limit) {
		r->max_tokens = cfg->max_tokens_limit;
		r->clamped = true;
	} else {
		r->max_tokens = (int)mt;
	}

	double rb = 0;
	have = opt_int(body, "reasoning_budget", &rb, e);
	if (have < 0)
		return -1;
	r->budget = r->max_tokens;
	if (have > 0 && rb != -1) { /* -1 means no budget, as in llama.cpp */
		if (rb < 1)
			return bad(e, "reasoning_budget", "invalid_value",
				   "reasoning_budget must be at least 1, or -1 for none (got %.0f)", rb);
		r->has_budget = true;
		if (rb < r->budget)
			r->budget = (int)rb;
	}

	if (opt_bool(body, "stream", &r->stream, e) < 0)
		return -1;
	const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
	if (so && !cJSON_IsNull(so)) {
		if (!cJSON_IsObject(so))
			return bad(e, "stream_options", "invalid_type", "stream_options must be an object");
		if (opt_bool(so, "include_usage", &r->include_usage, e) < 0)
			return -1;
	}
	double nchoices = 1;
	if (opt_int(body, "n", &nchoices, e) < 0)
		return -1;
	if (nchoices != 1)
		return bad(e, "n", "invalid_value", "only n=1 is supported");
	return 0;
}

/* ---- generation ---- */

static int slot_acquire(struct oai_server *s, uint64_t *seq)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += s->cfg.queue_ms / 1000;
	dl.tv_nsec += (long)(s->cfg.queue_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (!atomic_load(&s->stopping) && s->active >= s->cfg.max_active &&
	       s->cfg.queue_ms > 0)
		if (pthread_cond_timedwait(&s->slot_cv, &s->mu, &dl) == ETIMEDOUT)
			break;
	int ok = !atomic_load(&s->stopping) && s->active < s->cfg.max_active;
	if (ok) {
		s->active++;
		*seq = ++s->seq;
	}
	pthread_mutex_unlock(&s->mu);
	return ok ? 0 : -1;
}

static void slot_release(struct oai_server *s, struct oai_out *o, bool done)
{
	pthread_mutex_lock(&s->mu);
	s->active--;
	s->st.tokens += (uint64_t)o->tokens;
	if (done)
		s->st.generated++;
	else
		s->st.cancelled++;
	pthread_cond_signal(&s->slot_cv);
	pthread_mutex_unlock(&s->mu);
}

/* Non-streaming answer: one chat.completion / text_completion object. */
static int finish_plain(struct oai_out *o, bool keep)
{
	const struct oai_request *r = o->req;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "id", o->id);
	cJSON_AddStringToObject(j, "object", r->endpoint == OAI_CHAT ? "chat.completion"
				: "text_completion");
	cJSON_AddNumberToObject(j, "created", (double)o->created);
	cJSON_AddStringToObject(j, "model", r->model);
	cJSON *arr = cJSON_AddArrayToObject(j, "choices");
	cJSON *ch = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, ch);
	cJSON_AddNumberToObject(ch, "index", 0);
	const char *text = o->text ? o->text : "";
	if (r->endpoint == OAI_CHAT) {
		cJSON *m = cJSON_AddObjectToObject(ch, "message");
		cJSON_AddStringToObject(m, "role", "assistant");
		cJSON_AddStringToObject(m, "content", text);
	} else {
		cJSON_AddStringToObject(ch, "text", text);
		cJSON_AddNullToObject(ch, "logprobs");
	}
	cJSON_AddStringToObject(ch, "finish_reason", o->finish);
	add_usage(o, j);
	int rc = send_json(o->c, 200, j, keep, NULL);
	cJSON_Delete(j);
	return rc;
}

/* Streaming tail: finish chunk, optional usage chunk, [DONE], end of body. */
static int finish_stream(struct oai_out *o)
{
	if (!o->headers_sent && stream_begin(o))
		return -1;
	cJSON *j = chunk_base(o);
	chunk_choice(o, j, o->req->endpoint == OAI_CHAT ? NULL : "", false, o->finish);
	if (sse_send_json(o, j))
		return -1;
	if (o->req->include_usage) {
		j = chunk_base(o);
		cJSON_AddArrayToObject(j, "choices");
		add_usage(o, j);
		if (sse_send_json(o, j))
			return -1;
	}
	if (sse_send(o, "[DONE]"))
		return -1;
	return o->chunked ? send_all(o->c->fd, "0\r\n\r\n", 5) : 0;
}

/* Returns 0 to keep the connection, -1 to close it. */
static int handle_generate(struct conn *c, const struct http_req *h, enum oai_endpoint ep,
			   const char *body, size_t blen)
{
	struct oai_server *s = c->s;
	bool keep = h->keep_alive;
	cJSON *json = cJSON_ParseWithLength(body, blen);
	if (!json)
		return send_error(c, 400, keep, NULL, "invalid_json",
				  "request body is not valid JSON (%zu bytes received)", blen);
	struct oai_request r;
	struct verr e = { .msg = "" };
	char *prompt = NULL;
	int rc;
	if (validate(s, ep, json, &r, &prompt, &e)) {
		rc = send_error(c, 400, keep, e.param, e.code, "%s", e.msg);
		goto out;
	}
	if (slot_acquire(s, &r.seq)) {
		rc = send_error(c, 503, keep, NULL, "server_busy",
				"all %d generation slots of model %s are busy; retry later",
				s->cfg.max_active, s->model);
		goto out;
	}
	struct oai_out o = {
		.c = c, .req = &r, .created = time(NULL), .prompt_tokens = r.prompt_tokens,
		.chunked = h->minor >= 1, .keep = keep && h->minor >= 1,
	};
	snprintf(o.id, sizeof(o.id), "%s-%x%06llx", ep == OAI_CHAT ? "chatcmpl" : "cmpl",
		 (unsigned)getpid(), (unsigned long long)r.seq);
	int g = s->cfg.generate(s->cfg.user, &r, &o);
	if (g == OAI_OK || g == OAI_FULL) {
		/* A clean end can still follow a disconnect the generator missed. */
		if (!o.req->stream && oai_cancelled(&o))
			g = OAI_GONE;
	}
	slot_release(s, &o, g == OAI_OK || g == OAI_FULL);
	if (!o.finish)
		o.finish = o.tokens >= r.max_tokens ? "length" : "stop";
	if (g == OAI_GONE || o.gone) {
		rc = -1; /* nobody to answer */
	} else if (g < 0 && g != OAI_FULL) {
		if (!o.headers_sent) {
			rc = send_error(c, 500, false, NULL, "engine_error",
					"model %s failed to generate", s->model);
		} else {
			cJSON *ej = error_json("server_error", NULL, "engine_error", "generation failed");
			sse_send_json(&o, ej);
			sse_send(&o, "[DONE]");
			if (o.chunked)
				send_all(c->fd, "0\r\n\r\n", 5);
			rc = -1;
		}
	} else if (r.stream) {
		/* An incomplete UTF-8 tail is dropped: every chunk sent is one token. */
		rc = finish_stream(&o) ? -1 : (o.keep ? 0 : -1);
	} else {
		if (o.npend) /* nothing can complete it now: U+FFFD */
			utf8_clean(&o, NULL, 0, true, &o.text, &o.tlen, &o.tcap);
		rc = finish_plain(&o, keep) ? -1 : (keep ? 0 : -1);
	}
	free(o.text);
out:
	free(prompt);
	cJSON_Delete(json);
	return rc;
}

static int handle_health(struct conn *c, bool keep)
{
	struct oai_stats st;
	oai_server_stats(c->s, &st);
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "status", "ok");
	cJSON_AddStringToObject(j, "model", c->s->model);
	cJSON_AddNumberToObject(j, "slots", c->s->cfg.max_active);
	cJSON_AddNumberToObject(j, "active", st.active);
	cJSON_AddNumberToObject(j, "conns", st.conns);
	cJSON_AddNumberToObject(j, "requests", (double)st.requests);
	cJSON_AddNumberToObject(j, "generated", (double)st.generated);
	cJSON_AddNumberToObject(j, "cancelled", (double)st.cancelled);
	cJSON_AddNumberToObject(j, "busy", (double)st.busy);
	cJSON_AddNumberToObject(j, "bad", (double)st.bad);
	cJSON_AddNumberToObject(j, "tokens", (double)st.tokens);
	int rc = send_json(c, 200, j, keep, NULL);
	cJSON_Delete(j);
	return (rc || !keep) ? -1 : 0;
}

static int handle_models(struct conn *c, bool keep)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "object", "list");
	cJSON *arr = cJSON_AddArrayToObject(j, "data");
	cJSON *m = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, m);
	cJSON_AddStringToObject(m, "id", c->s->model);
	cJSON_AddStringToObject(m, "object", "model");
	cJSON_AddNumberToObject(m, "created", (double)c->s->created);
	cJSON_AddStringToObject(m, "owned_by", "erg");
	int rc = send_json(c, 200, j, keep, NULL);
	cJSON_Delete(j);
	return (rc || !keep) ? -1 : 0;
}

/* ---- HTTP/1.1 framing: user/serve/http_parse (llhttp) ---- */

static int body_append(void *ud, const char *at, size_t len)
{
	struct conn *c = ud;

	if (c->body_len + len >= c->body_cap)	/* sized from the Content-Length */
		return -1;
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

/* Read more bytes, waiting at most until deadline (ms, monotonic).
 * >0 bytes read, 0 peer closed, -1 timeout/error/stop. */
static ssize_t conn_fill(struct conn *c, long long deadline)
{
	if (c->len >= c->cap)
		return -1;
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0 || atomic_load(&c->s->stopping))
			return -1;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0)
			continue;
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n > 0)
			c->len += (size_t)n;
		return n < 0 ? -1 : n;
	}
}

/* Feed the parser what is buffered; drop what it used. */
static enum http_parse_rc feed_buffered(struct conn *c)
{
	size_t used;
	enum http_parse_rc rc = http_parse_feed(c->hp, c->buf, c->len, &used);

	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
	return rc;
}

static void send_parse_error(struct conn *c)
{
	const char *why;
	int st = http_parse_error(c->hp, &why);

	if (st == 431) {
		send_error(c, 431, false, NULL, NULL, "request header over %d bytes", HDR_MAX);
		return;
	}
	pthread_mutex_lock(&c->s->mu);
	c->s->st.requests++;
	pthread_mutex_unlock(&c->s->mu);
	send_error(c, st, false, NULL, NULL, "%s", why);
}

/* Read until the parser has a request head: 0; -1 to close (the peer went,
 * or the error was answered). Blank lines between requests are skipped. */
static int receive_head(struct conn *c)
{
	struct oai_server *s = c->s;
	long long deadline = now_ms() + s->cfg.idle_timeout_ms;
	bool started = false;

	for (;;) {
		if (c->len) {
			if (!started) {
				started = true;
				deadline = now_ms() + REQ_TIMEOUT_MS;
			}
			enum http_parse_rc rc = feed_buffered(c);

			if (rc == HTTP_PARSE_HEAD_DONE)
				return 0;
			if (rc == HTTP_PARSE_ERR) {
				send_parse_error(c);
				return -1;
			}
		}
		ssize_t r = conn_fill(c, deadline);
		if (r <= 0) {
			if (started && r < 0 && !atomic_load(&s->stopping))
				send_error(c, 408, false, NULL, NULL, "request not received in time");
			return -1;
		}
	}
}

/* The head's fields erg's endpoints need. 0, or a status to answer (and
 * close) with *why. */
static int read_head(const struct http_parse *p, struct http_req *h, const char **why)
{
	const char *target = http_parse_target(p), *expect;
	uint64_t cl;

	snprintf(h->method, sizeof(h->method), "%s", http_parse_method(p));
	if (strlen(target) > TARGET_MAX)
		return *why = "request target too long", 414;
	snprintf(h->path, sizeof(h->path), "%s", target);
	h->minor = http_parse_minor(p);
	h->keep_alive = http_parse_keep_alive(p);
	h->chunked_body = http_parse_chunked(p);
	h->content_length = http_parse_content_length(p, &cl) ? (long long)cl : -1;
	expect = http_parse_header_get(p, "expect");
	if (expect) {
		if (strcasecmp(expect, "100-continue"))
			return *why = "unsupported Expect header", 417;
		h->expect_continue = true;
	}
	if (h->minor >= 1 && !http_parse_header_get(p, "host"))
		return *why = "missing Host header", 400;
	return 0;
}

/* Read until the parser has the whole body (in c->body): 0; -1 to close. */
static int receive_body(struct conn *c, const struct http_req *h)
{
	size_t blen = h->content_length > 0 ? (size_t)h->content_length : 0;
	long long deadline = now_ms() + REQ_TIMEOUT_MS;

	c->body_len = 0;
	if (blen + 1 > c->body_cap) {
		char *nb = realloc(c->body, blen + 1);

		if (!nb)
			return -1;
		c->body = nb;
		c->body_cap = blen + 1;
	}
	if (h->expect_continue && c->len < blen && send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
		return -1;
	for (;;) {
		enum http_parse_rc rc = feed_buffered(c);

		if (rc == HTTP_PARSE_MSG_DONE)
			return 0;
		if (rc == HTTP_PARSE_ERR) {
			send_parse_error(c);
			return -1;
		}
		ssize_t r = conn_fill(c, deadline);
		if (r <= 0) {
			if (r < 0 && !atomic_load(&c->s->stopping))
				send_error(c, 408, false, NULL, NULL, "request body not received in time");
			return -1;
		}
	}
}

/* The connection's parser and receive buffer, on its first request. */
static int conn_setup(struct conn *c)
{
	const struct http_parse_limits limits = { .max_head = HDR_MAX };

	c->hp = http_parse_new(HTTP_PARSE_REQUEST, &limits, body_append, c);
	c->buf = malloc(HDR_MAX);
	if (!c->hp || !c->buf)
		return -1;
	c->cap = HDR_MAX;
	return 0;
}

/* Serve one request. 0: keep the connection for the next one; -1: close. */
static int serve_one(struct conn *c)
{
	struct oai_server *s = c->s;
	struct http_req h;
	const char *why = "";

	memset(&h, 0, sizeof(h));
	if (!c->hp && conn_setup(c))
		return -1;
	http_parse_next(c->hp);
	if (receive_head(c))
		return -1;
	pthread_mutex_lock(&s->mu);
	s->st.requests++;
	pthread_mutex_unlock(&s->mu);

	int st = read_head(c->hp, &h, &why);
	if (st) {
		send_error(c, st, false, NULL, NULL, "%s", why);
		return -1;
	}
	char *q = strchr(h.path, '?');
	if (q)
		*q = '\0';
	enum { R_NONE, R_HEALTH, R_MODELS, R_CHAT, R_COMPL } route = R_NONE;
	bool want_post = false;
	if (!strcmp(h.path, "/health")) {
		route = R_HEALTH;
	} else if (!strcmp(h.path, "/v1/models")) {
		route = R_MODELS;
	} else if (!strcmp(h.path, "/v1/chat/completions")) {
		route = R_CHAT;
		want_post = true;
	} else if (!strcmp(h.path, "/v1/completions")) {
		route = R_COMPL;
		want_post = true;
	}
	if (h.chunked_body) {
		send_error(c, 501, false, NULL, NULL,
			   "chunked request bodies are not supported; send Content-Length");
		return -1;
	}
	if (h.content_length > (long long)s->cfg.max_body) {
		send_error(c, 413, false, NULL, NULL, "request body of %lld bytes is over the %zu byte limit",
			   h.content_length, s->cfg.max_body);
		return -1;
	}
	bool method_ok = route != R_NONE &&
			 !strcmp(h.method, want_post ? "POST" : "GET");
	if (route != R_NONE && !method_ok) {
		send_error(c, 405, false, NULL, NULL, "%s needs %s", h.path, want_post ? "POST" : "GET");
		return -1; /* its body, if any, was not read */
	}
	if (route == R_NONE) {
		send_error(c, 404, false, NULL, NULL, "no such endpoint: %s %s", h.method, h.path);
		return -1;
	}
	if (want_post && h.content_length < 0) {
		send_error(c, 411, false, NULL, NULL, "POST %s needs a Content-Length header", h.path);
		return -1;
	}
	if (receive_body(c, &h))
		return -1;
	int rc;
	switch (route) {
	case R_HEALTH: rc = handle_health(c, h.keep_alive); break;
	case R_MODELS: rc = handle_models(c, h.keep_alive); break;
	case R_CHAT: rc = handle_generate(c, &h, OAI_CHAT, c->body, c->body_len); break;
	default: rc = handle_generate(c, &h, OAI_COMPLETION, c->body, c->body_len); break;
	}
	return rc ? -1 : 0;
}

/* ---- connections and the accept loop ---- */

static void conn_done(struct conn *c)
{
	struct oai_server *s = c->s;
	pthread_mutex_lock(&s->mu);
	s->conn_fds[c->idx] = -1;
	s->nconns--;
	close(c->fd); /* under the lock: stop() must never shut down a reused fd */
	pthread_cond_broadcast(&s->conn_cv);
	pthread_mutex_unlock(&s->mu);
	http_parse_free(c->hp);
	free(c->buf);
	free(c->body);
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	while (serve_one(c) == 0)
		;
	conn_done(c);
	return NULL;
}

static void reject_busy(int fd, int nconns)
{
	char body[200], msg[512];
	int bl = snprintf(body, sizeof(body),
			  "{\"error\":{\"message\":\"too many open connections (%d)\","
			  "\"type\":\"server_busy\",\"param\":null,\"code\":\"server_busy\"}}", nconns);
	int ml = snprintf(msg, sizeof(msg),
			  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
			  "Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s", bl, body);
	send_all(fd, msg, (size_t)ml);
	close(fd);
}

static void *accept_main(void *arg)
{
	struct oai_server *s = arg;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, CONN_STACK);
	while (!atomic_load(&s->stopping)) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (atomic_load(&s->stopping) || errno == EINVAL)
				break;
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(10000); /* EMFILE and friends: back off, don't spin */
			continue;
		}
		int one = 1;
		struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		pthread_mutex_lock(&s->mu);
		int idx = -1;
		if (!atomic_load(&s->stopping))
			for (int i = 0; i < s->cfg.max_conns; i++)
				if (s->conn_fds[i] < 0) {
					idx = i;
					break;
				}
		struct conn *c = idx >= 0 ? calloc(1, sizeof(*c)) : NULL;
		if (c) {
			c->s = s;
			c->fd = fd;
			c->idx = idx;
			s->conn_fds[idx] = fd;
			s->nconns++;
		} else {
			s->st.busy++;
		}
		int n = s->nconns;
		pthread_mutex_unlock(&s->mu);
		if (!c) {
			reject_busy(fd, n);
			continue;
		}
		pthread_t t;
		if (pthread_create(&t, &attr, conn_main, c)) {
			pthread_mutex_lock(&s->mu);
			s->conn_fds[idx] = -1;
			s->nconns--;
			s->st.busy++;
			pthread_cond_broadcast(&s->conn_cv);
			pthread_mutex_unlock(&s->mu);
			free(c);
			reject_busy(fd, n);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

struct oai_server *oai_server_start(const struct oai_config *cfg, char *err, size_t errlen)
{
	if (!cfg || !cfg->model || !cfg->model[0] || !cfg->generate) {
		snprintf(err, errlen, "openai_http: a model name and a generator are required");
		return NULL;
	}
	if (cfg->port < 0 || cfg->port > 65535) {
		snprintf(err, errlen, "port %d is out of range (0-65535)", cfg->port);
		return NULL;
	}
	struct oai_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	struct oai_config *c = &s->cfg;
	if (c->max_active <= 0) c->max_active = 1;
	if (c->queue_ms < 0) c->queue_ms = 0;
	if (c->max_conns <= 0) c->max_conns = 64;
	if (c->default_max_tokens <= 0) c->default_max_tokens = 256;
	if (c->max_tokens_limit <= 0) c->max_tokens_limit = 4096;
	if (c->default_max_tokens > c->max_tokens_limit) c->default_max_tokens = c->max_tokens_limit;
	if (c->max_body == 0) c->max_body = 1u << 20;
	if (c->idle_timeout_ms <= 0) c->idle_timeout_ms = 30000;
	s->model = strdup(cfg->model);
	s->conn_fds = malloc(sizeof(int) * (size_t)c->max_conns);
	s->created = time(NULL);
	s->lfd = -1;
	atomic_init(&s->stopping, false);
	if (!s->model || !s->conn_fds) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < c->max_conns; i++)
		s->conn_fds[i] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->slot_cv, &ca);
	pthread_cond_init(&s->conn_cv, &ca);
	pthread_condattr_destroy(&ca);
	signal(SIGPIPE, SIG_IGN);

	const char *addr = c->bind_addr ? c->bind_addr : "127.0.0.1";
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "bind address '%s' is not an IPv4 address", addr);
		goto fail_sync;
	}
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->lfd, 128)) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s%s", addr, c->port, strerror(errno),
			 errno == EADDRINUSE ? " (pick another --port, or 0 for any free one)" : "");
		goto fail_sync;
	}
	socklen_t sl = sizeof(sa);
	getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
	s->port = ntohs(sa.sin_port);
	if (pthread_create(&s->acceptor, NULL, accept_main, s)) {
		snprintf(err, errlen, "cannot start the accept thread");
		goto fail_sync;
	}
	return s;
fail_sync:
	pthread_cond_destroy(&s->slot_cv);
	pthread_cond_destroy(&s->conn_cv);
	pthread_mutex_destroy(&s->mu);
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	free(s->conn_fds);
	free(s->model);
	free(s);
	return NULL;
}

int oai_server_port(const struct oai_server *s)
{
	return s->port;
}

void oai_server_stats(struct oai_server *s, struct oai_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	st->active = s->active;
	st->conns = s->nconns;
	pthread_mutex_unlock(&s->mu);
}

void oai_server_stop(struct oai_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->stopping, true);
	for (int i = 0; i < s->cfg.max_conns; i++)
		if (s->conn_fds[i] >= 0)
			shutdown(s->conn_fds[i], SHUT_RDWR);
	pthread_cond_broadcast(&s->slot_cv);
	pthread_mutex_unlock(&s->mu);
	shutdown(s->lfd, SHUT_RDWR); /* wakes accept() with EINVAL */
	pthread_join(s->acceptor, NULL);

	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += STOP_WAIT_S;
	pthread_mutex_lock(&s->mu);
	while (s->nconns > 0)
		if (pthread_cond_timedwait(&s->conn_cv, &s->mu, &dl) == ETIMEDOUT)
			break;
	int left = s->nconns;
	pthread_mutex_unlock(&s->mu);
	close(s->lfd);
	if (left > 0) {
		/* A generator ignored cancellation; its thread still uses s, so
		 * leave s allocated (the process is about to exit anyway). */
		fprintf(stderr, "openai_http: %d connection(s) still busy after %d s; not freeing them\n",
			left, STOP_WAIT_S);
		return;
	}
	pthread_cond_destroy(&s->slot_cv);
	pthread_cond_destroy(&s->conn_cv);
	pthread_mutex_destroy(&s->mu);
	free(s->conn_fds);
	free(s->model);
	free(s);
}

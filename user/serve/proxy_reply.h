/* Responses erg answers itself (errors, /v1/models, /healthz, /metrics),
 * appended to a connection's output as whole HTTP/1.1 messages. Errors
 * carry an OpenAI-style body {"error":{"message","type","code"}}. */
#ifndef ERG_PROXY_REPLY_H
#define ERG_PROXY_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include "serve_buf.h"
#include "serve_config.h"

/* The x-erg-* headers every response carries. */
struct reply_ids {
	const char *request_id;
	const char *model;	/* "" when there is none */
	const char *worker;	/* "" when erg answered */
	unsigned budget;	/* "auto" requests: x-erg-budget; 0: none */
};

/* "Not Found" for 404, ... ("Unknown" for codes erg does not send). */
const char *reply_reason(int status);

/* The OpenAI error type of a status: invalid_request_error (4xx), ... */
const char *reply_error_type(int status);

/* One response with a body; extra_headers ("Allow: POST\r\n") may be NULL.
 * close: say Connection: close. False on no memory. */
bool reply_message(struct sbuf *out, int status, const char *content_type, const char *body,
		   size_t body_len, const struct reply_ids *ids, bool close, const char *extra_headers);

/* A JSON error: message (any bytes: escaped by cJSON), code ("model_not_found"). */
bool reply_error(struct sbuf *out, int status, const char *message, const char *code,
		 const struct reply_ids *ids, bool close, const char *extra_headers);

/* The body of GET /v1/models: {"object":"list","data":[{"id":...}]}, "auto"
 * last when the config has steering options; NULL on
 * no memory; free() it. */
char *reply_models_body(const struct serve_config *cfg);

#endif

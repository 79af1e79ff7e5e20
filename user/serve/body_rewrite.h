/* The body of a steered request: "model": "auto" made concrete (router.h
 * picks the model and budget, the proxy sends this body on). Byte-exact
 * outside the values it changes, allocation-free, and bounded by the
 * body: untrusted input (tests/fuzz/fuzz_http_parse.c runs it). */
#ifndef ERG_BODY_REWRITE_H
#define ERG_BODY_REWRITE_H

#include <stddef.h>

/* The request body with "model" set to model and max_tokens (or
 * max_completion_tokens, each one the client used) set to budget; when the
 * client set neither, "max_tokens" is added after "model". Every other byte
 * as received. body must be a JSON object (cJSON checked it) with a top-level
 * "model" key. Returns the full length, or 0 if the body cannot be rewritten
 * (no "model" key spelled plainly, or more than 16 of the keys); writes at
 * most cap bytes to out (none with cap 0, out may then be NULL), so one call
 * with cap 0 sizes the buffer of the next. */
size_t body_rewrite(const char *body, size_t len, const char *model, unsigned budget, char *out,
		    size_t cap);

#endif

/* erg calibrate's requests to a worker: the endpoint path and --body-extra
 * checked as options, the JSON body (erg's fields with --body-extra's merged
 * over them), and the token counts read from an answer. Pure functions. */
#ifndef ERG_CALIBRATE_REQUEST_H
#define ERG_CALIBRATE_REQUEST_H

#include <stddef.h>

#define CAL_DEFAULT_PATH "/v1/chat/completions"
/* Longest --path: it goes into a request line with room to spare */
#define CAL_PATH_MAX 200

/* A --path value: starts with '/', at most CAL_PATH_MAX visible ASCII
 * characters. 0 ok, -1 with a message naming --path in err. */
int cal_path_check(const char *path, char *err, size_t errlen);

/* A --body-extra value: one JSON object (nothing after it) without
 * "stream": true, since the token counts come from a whole answer. 0 ok, -1
 * with a message naming --body-extra in err. */
int cal_body_extra_check(const char *json, char *err, size_t errlen);

/* The body of one request: model, max_tokens, stream false, seed, and the
 * prompt as chat messages when path ends in /chat/completions, else as
 * "prompt"; then every member of extra (NULL: none; checked) replaces or
 * joins erg's. malloc'd, NULL if out of memory. */
char *cal_request_body(const char *model, long max_tokens, long seed, long index, const char *path,
		       const char *extra);

/* The token counts of a 200 answer: usage.completion_tokens (OpenAI), else
 * tokens_predicted (llama.cpp's /completion); prompt tokens likewise, 0 when
 * absent. 0 ok, -1 with the reason in err. */
int cal_parse_answer(const char *answer, long *completion_tokens, long *prompt_tokens, char *err,
		     size_t errlen);

#endif

/* openai_http: a small HTTP/1.1 server for OpenAI-style model workers.
 *
 * It owns sockets, HTTP framing, JSON validation and the response formats;
 * the worker program supplies one generator callback that produces tokens.
 * Endpoints:
 *   POST /v1/chat/completions  messages, max_tokens | max_completion_tokens,
 *                              stream, stream_options.include_usage, model,
 *                              reasoning_budget
 *   POST /v1/completions       prompt (string or array of strings), same options
 *   GET  /v1/models            the one model this worker serves
 *   GET  /health               {"status":"ok", ...counters}
 * Streaming answers are SSE events ("data: {chunk}\n\n" ... "data: [DONE]")
 * in a chunked HTTP/1.1 body; non-streaming answers are one JSON object with
 * "usage" {prompt_tokens, completion_tokens, total_tokens}. Errors are
 * OpenAI-style {"error":{"message","type","param","code"}} with a 4xx/5xx
 * status. Connections are kept alive; each one is served by its own thread.
 */
#ifndef ERG_OPENAI_HTTP_H
#define ERG_OPENAI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

enum oai_endpoint { OAI_CHAT = 1, OAI_COMPLETION = 2 };

/* One validated request, handed to the generator (read-only, valid for the
 * duration of the callback). */
struct oai_request {
	enum oai_endpoint endpoint;
	uint64_t seq;          /* 1, 2, 3... in order of admission to a slot */
	const char *model;     /* the server's model name (what is echoed back) */
	const char *prompt;    /* completion prompt, or the chat messages' text
	                          joined by newlines */
	const cJSON *messages; /* chat: the validated messages array; else NULL */
	const cJSON *body;     /* the whole request body, for engine options */
	int max_tokens;        /* defaulted and clamped: 1..max_tokens_limit */
	int budget;            /* reasoning budget: reasoning_budget capped at
	                          max_tokens when given, else max_tokens */
	bool has_budget;       /* reasoning_budget was in the request */
	bool clamped;          /* max_tokens asked for was above the limit */
	bool stream;
	bool include_usage;    /* stream_options.include_usage */
	int prompt_tokens;     /* estimate (bytes/4 + 4 per chat message); the
	                          generator may replace it, oai_set_prompt_tokens */
};

/* The response being produced for one request. */
struct oai_out;

enum {
	OAI_OK = 0,
	OAI_GONE = -1, /* client disconnected or server stopping: stop generating */
	OAI_FULL = -2, /* max_tokens already emitted (or content too large) */
	OAI_EENGINE = -3, /* generator's own failure: reported as a 500 */
};

/* Emit one token of text (len bytes, any bytes; JSON escaping is done here).
 * Streaming: written to the client at once. Returns OAI_OK, OAI_GONE or
 * OAI_FULL; a generator must stop on anything but OAI_OK. */
int oai_emit(struct oai_out *out, const char *text, size_t len);
/* True when the client is gone or the server is stopping: check it during
 * long work between tokens (e.g. prompt processing). */
bool oai_cancelled(struct oai_out *out);
/* Replace the prompt token estimate with the engine's own count. */
void oai_set_prompt_tokens(struct oai_out *out, int n);
/* "stop" or "length"; by default "length" when max_tokens tokens were
 * emitted, else "stop". The string must outlive the request. */
void oai_set_finish(struct oai_out *out, const char *reason);
/* Tokens emitted so far. */
int oai_tokens(const struct oai_out *out);

/* Produce the tokens for one request through oai_emit(). Return OAI_OK when
 * done, OAI_GONE when it stopped because oai_emit/oai_cancelled said so, or
 * OAI_EENGINE on an engine failure. Called concurrently from up to
 * max_active threads. */
typedef int (*oai_generate_fn)(void *user, const struct oai_request *req,
			       struct oai_out *out);

struct oai_config {
	const char *bind_addr;   /* IPv4 literal; default "127.0.0.1" */
	int port;                /* 0 picks a free port, see oai_server_port() */
	const char *model;       /* required: served name */
	int max_active;          /* concurrent generations (slots); default 1 */
	int queue_ms;            /* a request waits this long for a free slot,
	                            then gets 503; default 0 (no wait) */
	int max_conns;           /* open connections; more get 503; default 64 */
	int default_max_tokens;  /* when the request has none; default 256 */
	int max_tokens_limit;    /* larger requests are clamped; default 4096 */
	int max_prompt_tokens;   /* longer prompts get 400; 0 = no limit */
	size_t max_body;         /* request body bytes; more get 413; default 1 MiB */
	int idle_timeout_ms;     /* keep-alive idle time; default 30000 */
	oai_generate_fn generate;
	void *user;
};

struct oai_stats {
	uint64_t requests;   /* HTTP requests parsed */
	uint64_t generated;  /* generations finished normally */
	uint64_t cancelled;  /* generations stopped early: client gone, server
	                        stopping, or an engine error */
	uint64_t busy;       /* 503 answers: no slot or too many connections */
	uint64_t bad;        /* 4xx answers */
	uint64_t tokens;     /* completion tokens emitted, all requests */
	int active;          /* generations running now */
	int conns;           /* open connections now */
};

struct oai_server;

/* Bind, listen and start serving on a background thread. NULL on failure,
 * with a one-line reason in err. Ignores SIGPIPE process-wide. */
struct oai_server *oai_server_start(const struct oai_config *cfg, char *err,
				    size_t errlen);
int oai_server_port(const struct oai_server *s);
void oai_server_stats(struct oai_server *s, struct oai_stats *st);
/* Stop accepting, cancel running generations (their oai_emit returns
 * OAI_GONE), close every connection, wait for the threads, free. */
void oai_server_stop(struct oai_server *s);

#endif

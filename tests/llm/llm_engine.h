// llm_engine: a small C interface over llama.cpp's libllama (the prebuilt CPU
// libraries that `make engine` installs). Load a GGUF model, format a chat or
// plain prompt, and generate tokens one at a time with a callback per token.
//
// Threads: an llm_model is read-only after loading and may be shared by any
// number of threads. An llm_ctx (KV cache, sampler, ggml thread pool) serves
// one request at a time and must not be used by two threads at once: give each
// concurrent request its own llm_ctx (a worker keeps a pool of them, one per
// slot). llm_engine_init and llm_model_load may be called from any thread.
#ifndef ERG_LLM_ENGINE_H
#define ERG_LLM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llm_model;
struct llm_ctx;

// Loads ggml's CPU backend (the variant best for this CPU) from libdir, or
// from $ERG_LLAMA_LIBDIR, or from the directory recorded at build time, and
// silences llama.cpp's log unless $ERG_LLM_VERBOSE is set. Idempotent.
// Returns 0, or -1 with a one-line reason in err.
int llm_engine_init(const char *libdir, char *err, size_t errlen);

// Loads a GGUF model (memory-mapped). NULL with a reason in err on failure.
struct llm_model *llm_model_load(const char *path, char *err, size_t errlen);
void llm_model_free(struct llm_model *m);

uint64_t llm_model_params(const struct llm_model *m);     // parameter count
uint64_t llm_model_bytes(const struct llm_model *m);      // size of the weights
int llm_model_ctx_train(const struct llm_model *m);       // trained context length
const char *llm_model_name(const struct llm_model *m);    // general.name, or the file name
const char *llm_model_path(const struct llm_model *m);

// Threads to decode this model with: ggml's thread pool synchronises after
// every op, which for a tiny model costs more than the work (on 2 cores a
// 6 MB model decodes slower with 2 threads than with 1, at twice the CPU
// time), so models under 16 MB get one thread, larger ones the usable CPUs
// (at most 8).
int llm_default_threads(const struct llm_model *m);

// A context of n_ctx tokens (0: min(2048, trained length)) decoding with
// n_threads threads (0: llm_default_threads). NULL with a reason on failure.
struct llm_ctx *llm_ctx_new(struct llm_model *m, int n_threads, int n_ctx, char *err, size_t errlen);
void llm_ctx_free(struct llm_ctx *c);
int llm_ctx_size(const struct llm_ctx *c);
int llm_ctx_threads(const struct llm_ctx *c);

struct llm_msg {
	const char *role;     // "system", "user", "assistant"
	const char *content;
};

// Formats messages with the model's chat template (ChatML when the model has
// none), ending with the assistant's turn. Returns a malloc'd string, or NULL
// with a reason in err.
char *llm_format_chat(const struct llm_model *m, const struct llm_msg *msgs, size_t n, char *err, size_t errlen);

// Number of tokens text tokenizes to (BOS included when add_bos), or -1.
int llm_count_tokens(const struct llm_model *m, const char *text, bool add_bos);

enum llm_stop {
	LLM_STOP_LENGTH = 0,  // max_tokens generated
	LLM_STOP_EOG,         // the model ended its turn (EOS/EOT)
	LLM_STOP_CALLBACK,    // the callback asked to stop
	LLM_STOP_CONTEXT,     // the context is full
	LLM_STOP_CANCEL,      // *cancel became nonzero
};
const char *llm_stop_name(enum llm_stop s);

struct llm_gen_opts {
	int max_tokens;            // tokens to generate (> 0)
	float temperature;         // <= 0: greedy
	int top_k;                 // 0: off
	float top_p;               // 0 or >= 1: off
	uint32_t seed;             // sampler seed
	bool ignore_eos;           // never sample end-of-generation tokens
	bool parse_special;        // read special-token text such as <|im_start|>
	                           // in the prompt as those tokens (set it for
	                           // prompts from llm_format_chat)
	const volatile int *cancel; // optional: nonzero stops generation (also
	                           // aborts a long prompt evaluation)
};

// Called once per generated token with its text. The text is valid UTF-8:
// bytes of a character split over several tokens are held back until the
// character is complete (so len may be 0; a character still incomplete when
// generation stops early is dropped), invalid bytes and NUL become U+FFFD, so
// text is also a proper C string (text[len] is 0). index counts from 0.
// Return nonzero to stop after this token.
typedef int (*llm_token_cb)(void *arg, const char *text, size_t len, int index);

struct llm_gen_result {
	int prompt_tokens;
	int completion_tokens;
	enum llm_stop stop;
	double prompt_s;   // wall time evaluating the prompt
	double gen_s;      // wall time generating
};

// Evaluates prompt and generates up to opts->max_tokens tokens, calling cb
// (may be NULL) for each. Clears the context's KV cache first, so successive
// calls are independent requests. Returns 0 (res filled, including early
// stops), or -1 with a reason in err (prompt too long for the context,
// decode failure); res->prompt_tokens is set in either case when known.
int llm_generate(struct llm_ctx *c, const char *prompt, const struct llm_gen_opts *opts,
		 llm_token_cb cb, void *arg, struct llm_gen_result *res, char *err, size_t errlen);

#endif

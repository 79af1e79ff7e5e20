// llm_engine: see llm_engine.h. Written against the llama.h of the llama.cpp
// release that node-llama-cpp 3.21.1 ships (the headers come from its source
// bundle, so they match the prebuilt libraries).
#include "llm_engine.h"

#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ggml-backend.h"
#include "llama.h"

#ifndef ERG_LLAMA_LIBDIR
#define ERG_LLAMA_LIBDIR ""
#endif

struct llm_model {
	struct llama_model *m;
	const struct llama_vocab *v;
	llama_token *eog;  // end-of-generation tokens, for ignore_eos
	int n_eog;
	char name[128];
	char *path;
};

struct llm_ctx {
	struct llm_model *model;
	struct llama_context *ctx;
	int n_ctx, n_threads;
	const volatile int *cancel;  // of the generation in progress
};

static void seterr(char *err, size_t n, const char *fmt, ...)
{
	if (!err || !n)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

// ---- logging ---------------------------------------------------------------
// llama.cpp reports why a load failed only through its log; keep the first
// error line since the call began (the cause; later lines only say that the
// load failed), per thread, so it can go into err.

static _Thread_local char last_log_err[256];
static int verbose;

static void log_cb(enum ggml_log_level level, const char *text, void *ud)
{
	(void)ud;
	if (verbose)
		fputs(text, stderr);
	if (level == GGML_LOG_LEVEL_ERROR && !last_log_err[0] && text[0] && text[0] != '\n') {
		snprintf(last_log_err, sizeof last_log_err, "%s", text);
		size_t n = strlen(last_log_err);
		while (n && (last_log_err[n - 1] == '\n' || last_log_err[n - 1] == ' '))
			last_log_err[--n] = 0;
	}
}

// ---- init ------------------------------------------------------------------

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static int init_state;  // 0 not tried, 1 ok, -1 failed
static char init_err[512];

int llm_engine_init(const char *libdir, char *err, size_t errlen)
{
	pthread_mutex_lock(&init_mu);
	if (init_state == 0) {
		const char *env = getenv("ERG_LLAMA_LIBDIR");
		const char *dir = libdir && *libdir ? libdir : env && *env ? env : ERG_LLAMA_LIBDIR;
		verbose = getenv("ERG_LLM_VERBOSE") != NULL;
		llama_log_set(log_cb, NULL);
		if (!*dir) {
			snprintf(init_err, sizeof init_err,
				 "llm_engine: no library directory (set ERG_LLAMA_LIBDIR or run `make engine`)");
			init_state = -1;
		} else if (access(dir, R_OK | X_OK) != 0) {
			snprintf(init_err, sizeof init_err, "llm_engine: cannot open %s: %s (run `make engine`)",
				 dir, strerror(errno));
			init_state = -1;
		} else {
			// The CPU backend is a separate library per instruction set;
			// ggml loads the best one this CPU can run.
			ggml_backend_load_all_from_path(dir);
			llama_backend_init();
			if (!ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
				snprintf(init_err, sizeof init_err,
					 "llm_engine: no ggml CPU backend loaded from %s (libggml-cpu-*.so missing? run `make engine`)", dir);
				init_state = -1;
			} else {
				init_state = 1;
			}
		}
	}
	int st = init_state;
	if (st < 0)
		seterr(err, errlen, "%s", init_err);
	pthread_mutex_unlock(&init_mu);
	return st > 0 ? 0 : -1;
}

// ---- model -----------------------------------------------------------------

struct llm_model *llm_model_load(const char *path, char *err, size_t errlen)
{
	if (llm_engine_init(NULL, err, errlen) != 0)
		return NULL;
	if (access(path, R_OK) != 0) {
		seterr(err, errlen, "cannot read model %s: %s", path, strerror(errno));
		return NULL;
	}
	struct llama_model_params mp = llama_model_default_params();
	mp.n_gpu_layers = 0;
	last_log_err[0] = 0;
	struct llama_model *lm = llama_model_load_from_file(path, mp);
	if (!lm) {
		seterr(err, errlen, "cannot load model %s: %s", path,
		       last_log_err[0] ? last_log_err : "llama.cpp refused it (set ERG_LLM_VERBOSE=1 for its log)");
		return NULL;
	}
	struct llm_model *m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		llama_model_free(lm);
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	m->m = lm;
	m->v = llama_model_get_vocab(lm);
	if (llama_model_meta_val_str(lm, "general.name", m->name, sizeof m->name) < 0) {
		const char *b = strrchr(path, '/');
		snprintf(m->name, sizeof m->name, "%s", b ? b + 1 : path);
	}
	int nv = llama_vocab_n_tokens(m->v);
	for (int t = 0; t < nv; t++)
		if (llama_vocab_is_eog(m->v, t))
			m->n_eog++;
	m->eog = calloc(m->n_eog ? m->n_eog : 1, sizeof(*m->eog));
	if (!m->eog) {
		llm_model_free(m);
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	for (int t = 0, k = 0; t < nv; t++)
		if (llama_vocab_is_eog(m->v, t))
			m->eog[k++] = t;
	return m;
}

void llm_model_free(struct llm_model *m)
{
	if (!m)
		return;
	llama_model_free(m->m);
	free(m->eog);
	free(m->path);
	free(m);
}

uint64_t llm_model_params(const struct llm_model *m) { return llama_model_n_params(m->m); }
uint64_t llm_model_bytes(const struct llm_model *m) { return llama_model_size(m->m); }
int llm_model_ctx_train(const struct llm_model *m) { return llama_model_n_ctx_train(m->m); }
const char *llm_model_name(const struct llm_model *m) { return m->name; }
const char *llm_model_path(const struct llm_model *m) { return m->path; }

static int online_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int llm_default_threads(const struct llm_model *m)
{
	// Below about 16 MB of weights a token takes well under a millisecond and
	// thread synchronisation dominates (measured on 2 cores, docs/engine.md).
	int n = online_cpus();
	if (llm_model_bytes(m) < (16u << 20))
		return 1;
	return n > 8 ? 8 : n;
}

// ---- context ---------------------------------------------------------------

static bool abort_cb(void *data)
{
	struct llm_ctx *c = data;
	return c->cancel && *c->cancel;
}

struct llm_ctx *llm_ctx_new(struct llm_model *m, int n_threads, int n_ctx, char *err, size_t errlen)
{
	if (n_threads <= 0)
		n_threads = llm_default_threads(m);
	if (n_ctx <= 0) {
		n_ctx = llm_model_ctx_train(m);
		if (n_ctx <= 0 || n_ctx > 2048)
			n_ctx = 2048;
	}
	struct llm_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	struct llama_context_params cp = llama_context_default_params();
	cp.n_ctx = (uint32_t)n_ctx;
	cp.n_batch = cp.n_ubatch = (uint32_t)(n_ctx < 512 ? n_ctx : 512);
	cp.n_seq_max = 1;
	cp.n_threads = cp.n_threads_batch = n_threads;
	cp.no_perf = true;
	cp.abort_callback = abort_cb;
	cp.abort_callback_data = c;
	last_log_err[0] = 0;
	c->ctx = llama_init_from_model(m->m, cp);
	if (!c->ctx) {
		seterr(err, errlen, "cannot create a %d-token context for %s: %s", n_ctx, m->name,
		       last_log_err[0] ? last_log_err : "llama.cpp refused it");
		free(c);
		return NULL;
	}
	c->model = m;
	c->n_ctx = (int)llama_n_ctx(c->ctx);
	c->n_threads = n_threads;
	return c;
}

void llm_ctx_free(struct llm_ctx *c)
{
	if (!c)
		return;
	llama_free(c->ctx);
	free(c);
}

int llm_ctx_size(const struct llm_ctx *c) { return c->n_ctx; }
int llm_ctx_threads(const struct llm_ctx *c) { return c->n_threads; }

// ---- prompts ---------------------------------------------------------------

char *llm_format_chat(const struct llm_model *m, const struct llm_msg *msgs, size_t n, char *err, size_t errlen)
{
	if (n == 0) {
		seterr(err, errlen, "no messages");
		return NULL;
	}
	struct llama_chat_message *cm = calloc(n, sizeof(*cm));
	if (!cm) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	size_t total = 64;
	for (size_t i = 0; i < n; i++) {
		cm[i].role = msgs[i].role ? msgs[i].role : "user";
		cm[i].content = msgs[i].content ? msgs[i].content : "";
		total += strlen(cm[i].role) + strlen(cm[i].content) + 32;
	}
	const char *tmpl = llama_model_chat_template(m->m, NULL);
	if (!tmpl)
		tmpl = "chatml";
	char *buf = NULL;
	int32_t need = (int32_t)(total > INT32_MAX / 2 ? INT32_MAX / 2 : total);
	for (int tries = 0; tries < 2; tries++) {
		char *nb = realloc(buf, (size_t)need + 1);
		if (!nb) {
			seterr(err, errlen, "out of memory");
			break;
		}
		buf = nb;
		int32_t got = llama_chat_apply_template(tmpl, cm, n, true, buf, need);
		if (got < 0) {
			seterr(err, errlen, "the chat template of %s is not one llama.cpp knows", m->name);
			break;
		}
		if (got <= need) {
			buf[got] = 0;
			free(cm);
			return buf;
		}
		need = got;
	}
	free(buf);
	free(cm);
	return NULL;
}

static int tokenize(const struct llm_model *m, const char *text, bool add_bos, bool special, llama_token **out)
{
	size_t len = strlen(text);
	if (len > INT32_MAX / 2)
		return -1;
	// First call sizes the array: minus the token count, INT32_MIN on overflow.
	int32_t r = llama_tokenize(m->v, text, (int32_t)len, NULL, 0, add_bos, special);
	if (r == INT32_MIN)
		return -1;
	int n = r < 0 ? -r : 1;
	llama_token *t = malloc((size_t)n * sizeof(*t));
	if (!t)
		return -1;
	int got = llama_tokenize(m->v, text, (int32_t)len, t, n, add_bos, special);
	if (got < 0) {
		free(t);
		return -1;
	}
	*out = t;
	return got;
}

int llm_count_tokens(const struct llm_model *m, const char *text, bool add_bos)
{
	llama_token *t = NULL;
	int n = tokenize(m, text, add_bos, true, &t);
	free(t);
	return n;
}

const char *llm_stop_name(enum llm_stop s)
{
	switch (s) {
	case LLM_STOP_LENGTH: return "length";
	case LLM_STOP_EOG: return "stop";
	case LLM_STOP_CALLBACK: return "callback";
	case LLM_STOP_CONTEXT: return "context";
	case LLM_STOP_CANCEL: return "cancel";
	}
	return "?";
}

// ---- UTF-8 reassembly -------------------------------------------------------
// Byte-fallback tokens carry single bytes, so one character may arrive over
// several tokens, and random weights happily emit invalid sequences.

struct utf8 {
	unsigned char pend[4];
	int npend, want;
};

static const char REPL[] = "\xef\xbf\xbd";  // U+FFFD

static void put(char **o, const char *s, size_t n)
{
	memcpy(*o, s, n);
	*o += n;
}

static void utf8_byte(struct utf8 *u, unsigned char b, char **o)
{
	for (;;) {
		if (u->npend == 0) {
			if (b == 0)
				put(o, REPL, 3);
			else if (b < 0x80)
				*(*o)++ = (char)b;
			else if (b >= 0xc2 && b <= 0xf4) {
				u->pend[0] = b;
				u->npend = 1;
				u->want = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
			} else
				put(o, REPL, 3);
			return;
		}
		unsigned char lead = u->pend[0];
		unsigned char lo = 0x80, hi = 0xbf;
		if (u->npend == 1) {
			if (lead == 0xe0) lo = 0xa0;
			else if (lead == 0xed) hi = 0x9f;
			else if (lead == 0xf0) lo = 0x90;
			else if (lead == 0xf4) hi = 0x8f;
		}
		if (b >= lo && b <= hi) {
			u->pend[u->npend++] = b;
			if (u->npend == u->want) {
				put(o, (const char *)u->pend, (size_t)u->npend);
				u->npend = 0;
			}
			return;
		}
		put(o, REPL, 3);  // broken sequence; the byte starts afresh
		u->npend = 0;
	}
}

// ---- generation --------------------------------------------------------------

static struct llama_sampler *make_sampler(const struct llm_model *m, const struct llm_gen_opts *o)
{
	struct llama_sampler_chain_params sp = llama_sampler_chain_default_params();
	sp.no_perf = true;
	struct llama_sampler *s = llama_sampler_chain_init(sp);
	if (!s)
		return NULL;
	if (o->ignore_eos && m->n_eog > 0) {
		llama_logit_bias *b = calloc((size_t)m->n_eog, sizeof(*b));
		if (!b) {
			llama_sampler_free(s);
			return NULL;
		}
		for (int i = 0; i < m->n_eog; i++)
			b[i].token = m->eog[i], b[i].bias = -INFINITY;
		llama_sampler_chain_add(s, llama_sampler_init_logit_bias(llama_vocab_n_tokens(m->v), m->n_eog, b));
		free(b);
	}
	if (o->temperature <= 0) {
		llama_sampler_chain_add(s, llama_sampler_init_greedy());
		return s;
	}
	if (o->top_k > 0)
		llama_sampler_chain_add(s, llama_sampler_init_top_k(o->top_k));
	if (o->top_p > 0 && o->top_p < 1)
		llama_sampler_chain_add(s, llama_sampler_init_top_p(o->top_p, 1));
	llama_sampler_chain_add(s, llama_sampler_init_temp(o->temperature));
	llama_sampler_chain_add(s, llama_sampler_init_dist(o->seed));
	return s;
}

int llm_generate(struct llm_ctx *c, const char *prompt, const struct llm_gen_opts *o,
		 llm_token_cb cb, void *arg, struct llm_gen_result *res, char *err, size_t errlen)
{
	const struct llm_model *m = c->model;
	memset(res, 0, sizeof(*res));
	res->stop = LLM_STOP_LENGTH;
	if (!prompt || o->max_tokens <= 0) {
		seterr(err, errlen, "llm_generate: %s", !prompt ? "no prompt" : "max_tokens must be positive");
		return -1;
	}
	llama_token *toks = NULL;
	int np = tokenize(m, prompt, true, o->parse_special, &toks);
	if (np < 0) {
		seterr(err, errlen, "cannot tokenize the prompt (too long or out of memory)");
		return -1;
	}
	res->prompt_tokens = np;
	if (np == 0) {
		free(toks);
		seterr(err, errlen, "empty prompt");
		return -1;
	}
	if (np >= c->n_ctx) {
		free(toks);
		seterr(err, errlen, "prompt has %d tokens, the context holds %d", np, c->n_ctx);
		return -1;
	}
	struct llama_sampler *smpl = make_sampler(m, o);
	if (!smpl) {
		free(toks);
		seterr(err, errlen, "out of memory");
		return -1;
	}

	c->cancel = o->cancel;
	llama_memory_clear(llama_get_memory(c->ctx), true);
	int rc = 0, n_batch = (int)llama_n_batch(c->ctx);
	double t0 = now_s();
	for (int i = 0; i < np && rc == 0; i += n_batch) {
		int n = np - i < n_batch ? np - i : n_batch;
		int r = llama_decode(c->ctx, llama_batch_get_one(toks + i, n));
		if (r == 2 || (o->cancel && *o->cancel)) {
			res->stop = LLM_STOP_CANCEL;
			rc = 1;
		} else if (r != 0) {
			seterr(err, errlen, "llama_decode failed on the prompt (%d)", r);
			rc = -1;
		}
	}
	double t1 = now_s();
	res->prompt_s = t1 - t0;

	// Text of one token: at most a piece plus a flushed partial character,
	// each byte possibly expanded to U+FFFD.
	char piece[256], text[sizeof piece * 3 + 16];
	struct utf8 u = {0};
	int pos = np;
	while (rc == 0) {
		if (o->cancel && *o->cancel) {
			res->stop = LLM_STOP_CANCEL;
			break;
		}
		llama_token t = llama_sampler_sample(smpl, c->ctx, -1);
		if (llama_vocab_is_eog(m->v, t)) {
			res->stop = LLM_STOP_EOG;
			break;
		}
		int pl = llama_token_to_piece(m->v, t, piece, sizeof piece, 0, false);
		if (pl < 0)
			pl = 0;  // longer than any piece of our vocabularies; drop it
		int idx = res->completion_tokens++;
		bool last = res->completion_tokens >= o->max_tokens;
		char *p = text;
		for (int k = 0; k < pl; k++)
			utf8_byte(&u, (unsigned char)piece[k], &p);
		if (last && u.npend) {
			put(&p, REPL, 3);
			u.npend = 0;
		}
		*p = 0;
		if (cb && cb(arg, text, (size_t)(p - text), idx)) {
			res->stop = LLM_STOP_CALLBACK;
			break;
		}
		if (last)
			break;  // the last token needs no forward pass
		if (pos + 1 >= c->n_ctx) {
			res->stop = LLM_STOP_CONTEXT;
			break;
		}
		int r = llama_decode(c->ctx, llama_batch_get_one(&t, 1));
		pos++;
		if (r == 2 || (o->cancel && *o->cancel)) {
			res->stop = LLM_STOP_CANCEL;
			break;
		}
		if (r != 0) {
			seterr(err, errlen, "llama_decode failed after %d tokens (%d)", res->completion_tokens, r);
			rc = -1;
		}
	}
	res->gen_s = now_s() - t1;
	c->cancel = NULL;
	llama_sampler_free(smpl);
	free(toks);
	return rc < 0 ? -1 : 0;
}

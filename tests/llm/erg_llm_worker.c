// erg-llm-worker: an OpenAI-compatible model worker that generates with the
// real llama.cpp engine (prebuilt libllama, see docs/engine.md). The HTTP side
// is openai_http (/v1/chat/completions, /v1/completions, /v1/models, /health,
// streaming SSE or one JSON answer, with usage); the tokens come from
// llm_engine, so every token is a real forward pass of the loaded model.
//
// Each request generates a random number of tokens, as a reasoning model's
// output length is (docs/theory.md §1): lognormal with median --median-frac of the
// budget (reasoning_budget capped at max_tokens, else max_tokens) and spread
// --sigma, capped at the budget. End-of-generation tokens are suppressed so
// that the drawn length is what is generated.
//
// Concurrency: --slots contexts (KV cache + ggml thread pool each) share the
// one loaded model; openai_http runs at most --slots generations at once and
// each takes a free context, so no context is ever used by two threads.
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm_engine.h"
#include "openai_http.h"
#include "gpu_offload.h"
#include "cli_num.h"

struct slot {
	struct llm_ctx *ctx;
	bool busy;
};

struct worker {
	struct llm_model *model;
	struct slot *slots;
	int nslots;
	pthread_mutex_t mu;
	uint64_t seed;
	double sigma, median_frac;
	float temperature, top_p;
	int top_k;
	bool verbose;
	struct gpu_offload *gpu;	/* NULL: CPU only */
	double gpu_us_per_token;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)  // in (0, 1)
{
	return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}

// Realised reasoning length: lognormal, median median_frac·budget, capped at
// the budget (docs/theory.md §1).
static int draw_length(const struct worker *w, uint64_t *rng, int budget)
{
	double u1 = uniform01(rng), u2 = uniform01(rng);
	double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
	double n = ceil(budget * w->median_frac * exp(w->sigma * z));
	if (!(n >= 1))
		n = 1;
	return n > budget ? budget : (int)n;
}

static struct slot *slot_get(struct worker *w)
{
	struct slot *s = NULL;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->nslots && !s; i++)
		if (!w->slots[i].busy)
			s = &w->slots[i], s->busy = true;
	pthread_mutex_unlock(&w->mu);
	return s;
}

static void slot_put(struct worker *w, struct slot *s)
{
	pthread_mutex_lock(&w->mu);
	s->busy = false;
	pthread_mutex_unlock(&w->mu);
}

// Text of a validated chat message's content: a string, null, or text parts.
static char *content_text(const cJSON *content)
{
	if (cJSON_IsString(content))
		return strdup(content->valuestring);
	size_t n = 1;
	const cJSON *p;
	if (cJSON_IsArray(content))
		cJSON_ArrayForEach(p, content) {
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
			if (cJSON_IsString(t))
				n += strlen(t->valuestring);
		}
	char *s = malloc(n), *q = s;
	if (!s)
		return NULL;
	if (cJSON_IsArray(content))
		cJSON_ArrayForEach(p, content) {
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
			if (cJSON_IsString(t)) {
				size_t l = strlen(t->valuestring);
				memcpy(q, t->valuestring, l);
				q += l;
			}
		}
	*q = 0;
	return s;
}

static char *chat_prompt(const struct worker *w, const cJSON *messages, char *err, size_t errlen)
{
	int n = cJSON_GetArraySize(messages);
	struct llm_msg *msgs = calloc((size_t)n, sizeof(*msgs));
	char **texts = calloc((size_t)n, sizeof(*texts));
	char *out = NULL;
	if (!msgs || !texts) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	int i = 0;
	const cJSON *m;
	cJSON_ArrayForEach(m, messages) {
		const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
		texts[i] = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
		if (!texts[i]) {
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		msgs[i].role = cJSON_IsString(role) ? role->valuestring : "user";
		msgs[i].content = texts[i];
		i++;
	}
	out = llm_format_chat(w->model, msgs, (size_t)n, err, errlen);
done:
	if (texts)
		for (int k = 0; k < n; k++)
			free(texts[k]);
	free(texts);
	free(msgs);
	return out;
}

// A number in [lo, hi] from the request body, else the default.
static double body_num(const cJSON *body, const char *key, double lo, double hi, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	if (cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi)
		return v->valuedouble;
	return def;
}

struct emit_state {
	struct oai_out *out;
	int rc;  // OAI_OK, or why emitting stopped
	struct worker *w;
	int stream;
};

static int on_token(void *arg, const char *text, size_t len, int index)
{
	struct emit_state *st = arg;
	(void)index;
	if (st->w->gpu && gpu_offload_token(st->w->gpu, st->stream, st->w->gpu_us_per_token)) {
		st->rc = OAI_EENGINE;
		return 1;
	}
	int rc = oai_emit(st->out, text, len);
	if (rc != OAI_OK) {
		st->rc = rc;
		return 1;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int generate(void *user, const struct oai_request *req, struct oai_out *out)
{
	struct worker *w = user;
	char err[256] = "";
	char *chat = NULL;
	const char *prompt = req->prompt;
	if (req->endpoint == OAI_CHAT) {
		chat = chat_prompt(w, req->messages, err, sizeof err);
		if (!chat) {
			fprintf(stderr, "erg-llm-worker: request %" PRIu64 ": %s\n", req->seq, err);
			return OAI_EENGINE;
		}
		prompt = chat;
	}
	int np = llm_count_tokens(w->model, prompt, true);
	if (np >= 0)
		oai_set_prompt_tokens(out, np);

	uint64_t rng = w->seed ^ (req->seq * 0xD1B54A32D192ED03ull);
	int n = draw_length(w, &rng, req->budget);
	struct llm_gen_opts go = {
		.max_tokens = n,
		.temperature = (float)body_num(req->body, "temperature", 0, 2, w->temperature),
		.top_k = w->top_k,
		.top_p = (float)body_num(req->body, "top_p", 0, 1, w->top_p),
		.seed = (uint32_t)body_num(req->body, "seed", 0, 4294967295.0, (double)(uint32_t)splitmix64(&rng)),
		.ignore_eos = true,
		.parse_special = req->endpoint == OAI_CHAT,
	};
	struct slot *s = slot_get(w);
	if (!s) {  // openai_http admits at most nslots generations
		free(chat);
		fprintf(stderr, "erg-llm-worker: request %" PRIu64 ": no free context\n", req->seq);
		return OAI_EENGINE;
	}
	struct emit_state st = {.out = out, .rc = OAI_OK, .w = w, .stream = (int)(s - w->slots)};
	struct llm_gen_result res;
	double t0 = now_s();
	int rc = llm_generate(s->ctx, prompt, &go, on_token, &st, &res, err, sizeof err);
	double t1 = now_s();
	slot_put(w, s);
	free(chat);
	if (res.prompt_tokens > 0)
		oai_set_prompt_tokens(out, res.prompt_tokens);
	if (rc != 0) {
		fprintf(stderr, "erg-llm-worker: request %" PRIu64 ": %s\n", req->seq, err);
		return OAI_EENGINE;
	}
	// The model ran out of context before the drawn length: as real servers
	// say, the answer was cut by its length.
	if (res.stop == LLM_STOP_CONTEXT)
		oai_set_finish(out, "length");
	if (w->verbose)
		fprintf(stderr, "erg-llm-worker: request %" PRIu64 " prompt_tokens=%d drawn=%d budget=%d "
			"completion_tokens=%d stop=%s wall_s=%.3f\n", req->seq, res.prompt_tokens, n,
			req->budget, res.completion_tokens, llm_stop_name(res.stop), t1 - t0);
	if (st.rc == OAI_GONE || oai_cancelled(out))
		return OAI_GONE;
	return OAI_OK;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: erg-llm-worker --model-file FILE.gguf --port P [options]\n"
		"An OpenAI-compatible worker on 127.0.0.1:P generating with llama.cpp (CPU).\n"
		"  --model-file FILE    GGUF model to load (e.g. build/models/erg-130m.gguf)\n"
		"  --port P             TCP port on 127.0.0.1 (0: any free port, printed at start)\n"
		"  --model NAME         name served by /v1/models and in answers (default: the\n"
		"                       file name without .gguf)\n"
		"  --threads N          ggml threads per generation (default: the engine's choice\n"
		"                       for the model size: 1 for tiny models, else the CPUs)\n"
		"  --slots N            generations at once, one llama.cpp context each (default 1);\n"
		"                       further requests wait up to --queue-ms, then get 503\n"
		"  --ctx N              context length per slot in tokens (default 2048)\n"
		"  --seed S             seed of the output lengths and sampling (default 1)\n"
		"  --sigma X            lognormal spread of the output length (default 1.0; 0: fixed)\n"
		"  --median-frac F      median output length as a fraction of the budget (default 0.5)\n"
		"  --temperature T      sampling temperature (default 1.0; 0: greedy; a request's\n"
		"                       \"temperature\", \"top_p\", \"seed\" override)\n"
		"  --queue-ms MS        how long a request waits for a free slot (default 10000)\n"
		"  --max-tokens-limit N larger max_tokens are clamped to N (default: --ctx - 256)\n"
		"  --gpu-us-per-b X     also run X us of GPU kernel per token per 1000M\n"
		"                       parameters through libcuda.so.1 (the stub driver in\n"
		"                       the demo), with a synchronize and a copy back\n"
		"  -v, --verbose        one line per request on stderr\n"
		"  -h, --help           this text\n"
		"Per request: tokens = lognormal(median F x budget, spread X), capped at the budget\n"
		"(reasoning_budget capped at max_tokens, else max_tokens; default max_tokens 256).\n"
		"Prints 'erg-llm-worker: model=NAME port=P pid=PID ...' once listening; stops on\n"
		"SIGTERM or SIGINT.\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *v)
{
	return cli_num("erg-llm-worker", opt, s, lo, hi, v);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model-file", required_argument, 0, 'f'}, {"port", required_argument, 0, 'p'},
		{"model", required_argument, 0, 'm'},      {"threads", required_argument, 0, 't'},
		{"slots", required_argument, 0, 'S'},      {"ctx", required_argument, 0, 'c'},
		{"seed", required_argument, 0, 's'},       {"sigma", required_argument, 0, 'g'},
		{"median-frac", required_argument, 0, 'F'}, {"temperature", required_argument, 0, 'T'},
		{"queue-ms", required_argument, 0, 'q'},   {"max-tokens-limit", required_argument, 0, 'L'},
		{"gpu-us-per-b", required_argument, 0, 'G'},
		{"verbose", no_argument, 0, 'v'},          {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	double port = -1, threads = 0, slots = 1, ctx = 2048, seed = 1, sigma = 1.0, mfrac = 0.5;
	double temp = 1.0, queue_ms = 10000, limit = 0, gpu_us = 0;
	const char *file = NULL, *name = NULL;
	bool verbose = false;
	int c;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case 'f': file = optarg; break;
		case 'p': rc = parse_num("--port", optarg, 0, 65535, &port); break;
		case 'm': name = optarg; break;
		case 't': rc = parse_num("--threads", optarg, 1, 256, &threads); break;
		case 'S': rc = parse_num("--slots", optarg, 1, 64, &slots); break;
		case 'c': rc = parse_num("--ctx", optarg, 64, 131072, &ctx); break;
		case 's': rc = parse_num("--seed", optarg, 0, 9007199254740992.0, &seed); break;
		case 'g': rc = parse_num("--sigma", optarg, 0, 10, &sigma); break;
		case 'F': rc = parse_num("--median-frac", optarg, 1e-6, 1, &mfrac); break;
		case 'T': rc = parse_num("--temperature", optarg, 0, 2, &temp); break;
		case 'q': rc = parse_num("--queue-ms", optarg, 0, 3600000, &queue_ms); break;
		case 'L': rc = parse_num("--max-tokens-limit", optarg, 1, 1e7, &limit); break;
		case 'G': rc = parse_num("--gpu-us-per-b", optarg, 0, 1e9, &gpu_us); break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (rc)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "erg-llm-worker: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (!file || port < 0) {
		fprintf(stderr, "erg-llm-worker: --model-file and --port are required (see --help)\n");
		return 2;
	}
	if (port != floor(port) || threads != floor(threads) || slots != floor(slots) || ctx != floor(ctx)) {
		fprintf(stderr, "erg-llm-worker: --port, --threads, --slots and --ctx must be whole numbers\n");
		return 2;
	}
	char namebuf[129];
	if (!name) {
		const char *b = strrchr(file, '/');
		snprintf(namebuf, sizeof namebuf, "%s", b ? b + 1 : file);
		char *dot = strstr(namebuf, ".gguf");
		if (dot && dot[5] == 0)
			*dot = 0;
		name = namebuf;
	}
	if (!name[0] || strlen(name) > 128 || strpbrk(name, " \t\r\n\"\\")) {
		fprintf(stderr, "erg-llm-worker: model name '%s' must be 1-128 characters without spaces or quotes (use --model)\n", name);
		return 2;
	}
	if (limit == 0)
		limit = ctx > 512 ? ctx - 256 : ctx / 2;

	// SIGINT/SIGTERM go to the main thread's sigwait, never to a server or
	// ggml thread: block them before any thread exists (threads inherit it).
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	char err[512];
	static struct worker w;
	pthread_mutex_init(&w.mu, NULL);
	w.model = llm_model_load(file, err, sizeof err);
	if (!w.model) {
		fprintf(stderr, "erg-llm-worker: %s\n", err);
		return 1;
	}
	w.nslots = (int)slots;
	if (gpu_us > 0) {
		w.gpu_us_per_token = (double)llm_model_params(w.model) / 1e9 * gpu_us;
		w.gpu = gpu_offload_open(w.nslots, err, sizeof err);
		if (!w.gpu) {
			fprintf(stderr, "erg-llm-worker: --gpu-us-per-b: %s\n", err);
			return 2;
		}
	}
	w.slots = calloc((size_t)w.nslots, sizeof(*w.slots));
	if (!w.slots) {
		fprintf(stderr, "erg-llm-worker: out of memory\n");
		return 1;
	}
	for (int i = 0; i < w.nslots; i++) {
		w.slots[i].ctx = llm_ctx_new(w.model, (int)threads, (int)ctx, err, sizeof err);
		if (!w.slots[i].ctx) {
			fprintf(stderr, "erg-llm-worker: %s\n", err);
			return 1;
		}
	}
	// Warm-up: the first pass over the memory-mapped weights pays their page
	// faults; do it now rather than in the first request's latency.
	{
		struct llm_gen_opts go = {.max_tokens = 1, .temperature = 0};
		struct llm_gen_result res;
		for (int i = 0; i < w.nslots; i++)
			if (llm_generate(w.slots[i].ctx, "warm up", &go, NULL, NULL, &res, err, sizeof err) != 0) {
				fprintf(stderr, "erg-llm-worker: warm-up failed: %s\n", err);
				return 1;
			}
	}
	w.seed = (uint64_t)seed;
	w.sigma = sigma;
	w.median_frac = mfrac;
	w.temperature = (float)temp;
	w.top_k = 40;
	w.top_p = 0.95f;
	w.verbose = verbose;

	int n_ctx = llm_ctx_size(w.slots[0].ctx);
	struct oai_config cfg = {
		.bind_addr = "127.0.0.1",
		.port = (int)port,
		.model = name,
		.max_active = w.nslots,
		.queue_ms = (int)queue_ms,
		.max_conns = 64 + 4 * w.nslots,
		.default_max_tokens = 256 < (int)limit ? 256 : (int)limit,
		.max_tokens_limit = (int)limit,
		.max_prompt_tokens = n_ctx - 1,  // estimate; the engine checks exactly
		.generate = generate,
		.user = &w,
	};
	struct oai_server *srv = oai_server_start(&cfg, err, sizeof err);
	if (!srv) {
		fprintf(stderr, "erg-llm-worker: %s\n", err);
		return 1;
	}
	printf("erg-llm-worker: model=%s port=%d pid=%d params=%" PRIu64 " file=%s threads=%d slots=%d ctx=%d\n",
	       name, oai_server_port(srv), (int)getpid(), llm_model_params(w.model), file,
	       llm_ctx_threads(w.slots[0].ctx), w.nslots, n_ctx);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0)
		;
	struct oai_stats st;
	oai_server_stats(srv, &st);
	oai_server_stop(srv);
	for (int i = 0; i < w.nslots; i++)
		llm_ctx_free(w.slots[i].ctx);
	free(w.slots);
	llm_model_free(w.model);
	printf("erg-llm-worker: model=%s stopped by signal %d: %llu requests, %llu generated, "
	       "%llu cancelled, %llu busy, %llu tokens\n",
	       name, sig, (unsigned long long)st.requests, (unsigned long long)st.generated,
	       (unsigned long long)st.cancelled, (unsigned long long)st.busy,
	       (unsigned long long)st.tokens);
	return 0;
}

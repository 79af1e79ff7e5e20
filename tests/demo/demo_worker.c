/* demo_worker: a synthetic LLM inference worker for erg's tests and demo.
 *
 * It serves the OpenAI-style API of openai_http.h. Each request generates a
 * random number of tokens, lognormal (heavy tailed) with median half the
 * budget and capped at it, as a reasoning model's output length is
 * (docs/theory.md §1). Every token, prompt tokens included (e = eps·(L_in + T_out),
 * docs/theory.md §1), costs real CPU work proportional to the configured parameter
 * count: passes of a 64x64 float matrix-vector product. At startup the worker
 * times that kernel on its own thread's CPU clock and sizes a token so that
 * it costs params_m/1000 · X ms of CPU, X = --ms-per-token-per-b (default 2:
 * a 1000M-parameter model spends about 2 ms of CPU per token on any machine).
 * The work is busy computation, never sleep, so erg sees it as on-CPU time.
 */
#include "openai_http.h"
#include "gpu_offload.h"
#include "cli_num.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DIM 64
#define LOGN_SIGMA 1.0 /* spread of the output length: heavy tail, ~24% hit the cap */

struct worker {
	float w[DIM * DIM];  /* shared read-only "weights" */
	uint64_t seed;
	long passes_per_token;
	struct gpu_offload *gpu;	/* NULL: CPU only */
	int gpu_streams;
	double gpu_us_per_token;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) /* in (0, 1) */
{
	return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* One matrix-vector pass, x <- W·x rescaled to mean |x| = 1: 2·DIM² FLOPs. */
static float kernel_pass(const float *w, float *x)
{
	float y[DIM], s = 0;
	for (int i = 0; i < DIM; i++) {
		const float *row = w + i * DIM;
		float acc = 0;
		for (int j = 0; j < DIM; j++)
			acc += row[j] * x[j];
		y[i] = acc;
		s += fabsf(acc);
	}
	s = (float)DIM / (s + 1e-6f);
	for (int i = 0; i < DIM; i++)
		x[i] = y[i] * s;
	return x[0];
}

/* The CPU work of one token; returns bits that depend on all of it. */
static uint32_t token_work(const struct worker *wk, float *x)
{
	float r = 0;
	for (long p = 0; p < wk->passes_per_token; p++)
		r += kernel_pass(wk->w, x);
	uint32_t bits;
	memcpy(&bits, &r, sizeof(bits));
	return bits;
}

static volatile float calib_sink; /* keeps the timed work from being optimised out */

static double thread_cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Kernel passes per CPU millisecond on this machine: the fastest of 3
 * timings of about 40 ms each, on this thread's CPU clock. Contention (a busy
 * sibling hyperthread, cache pressure) only slows a run down, so the fastest
 * is the best estimate of the machine's own speed. */
static double calibrate(const struct worker *wk)
{
	float x[DIM];
	double rates[3];
	for (int i = 0; i < DIM; i++)
		x[i] = 1.0f;
	for (int k = 0; k < 3; k++) {
		double t0 = thread_cpu_ms(), t;
		long passes = 0;
		do {
			for (int i = 0; i < 16; i++)
				calib_sink += kernel_pass(wk->w, x);
			passes += 16;
			t = thread_cpu_ms() - t0;
		} while (t < 40);
		rates[k] = passes / t;
	}
	double best = rates[0];
	for (int k = 1; k < 3; k++)
		if (rates[k] > best)
			best = rates[k];
	return best;
}

/* Output length: lognormal with median budget/2, capped at the budget
 * (docs/theory.md §1: realised reasoning length is heavy tailed, capped). */
static int draw_length(uint64_t *rng, int budget)
{
	double u1 = uniform01(rng), u2 = uniform01(rng);
	double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
	double n = ceil(budget / 2.0 * exp(LOGN_SIGMA * z));
	if (n < 1)
		n = 1;
	return n > budget ? budget : (int)n;
}

static const char *const vocab[] = {
	" the", " energy", " of", " a", " model", " token", " joule", " supply",
	" demand", " and", " is", " to", " in", " reasoning", " budget", " watt",
	" per", " second", " variance", " mean", " slot", " worker", " request", ",",
	".", " we", " that", " cost", " storage", " baseline", " waste", " grid",
};
#define NVOCAB (sizeof(vocab) / sizeof(vocab[0]))

/* Each server thread keeps one GPU stream of its own, as engines do. */
static int thread_stream(const struct worker *wk)
{
	static _Thread_local int stream = -1;
	static atomic_int next_stream;

	if (stream < 0)
		stream = atomic_fetch_add(&next_stream, 1) % wk->gpu_streams;
	return stream;
}

static int generate(void *user, const struct oai_request *req, struct oai_out *out)
{
	const struct worker *wk = user;
	uint64_t rng = wk->seed ^ (req->seq * 0xD1B54A32D192ED03ull);
	float x[DIM];
	for (int i = 0; i < DIM; i++)
		x[i] = (float)(uniform01(&rng) * 2.0 - 1.0);
	/* Prompt processing: same work per token as decoding. */
	for (int t = 0; t < req->prompt_tokens; t++) {
		if ((t & 15) == 0 && oai_cancelled(out))
			return OAI_GONE;
		token_work(wk, x);
	}
	int n = draw_length(&rng, req->budget);
	for (int t = 0; t < n; t++) {
		uint32_t h = token_work(wk, x) ^ (uint32_t)splitmix64(&rng);
		const char *word = vocab[h % NVOCAB];
		if (wk->gpu && gpu_offload_token(wk->gpu, thread_stream(wk), wk->gpu_us_per_token))
			return OAI_EENGINE;
		int rc = oai_emit(out, word, strlen(word));
		if (rc == OAI_GONE)
			return OAI_GONE;
		if (rc != OAI_OK)
			break;
	}
	return OAI_OK;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: demo_worker --port P --model NAME --params-m MILLIONS [options]\n"
		"A synthetic OpenAI-style model worker on 127.0.0.1:P whose tokens cost real CPU.\n"
		"  --port P                 TCP port on 127.0.0.1 (0: any free port, printed at start)\n"
		"  --model NAME             model name served by /v1/models and in answers\n"
		"  --params-m MILLIONS      model size in millions of parameters (> 0)\n"
		"  --seed S                 random seed of the output lengths (default 1)\n"
		"  --threads N              requests generated at once, one thread each (default 2);\n"
		"                           further requests wait up to --queue-ms, then get 503\n"
		"  --ms-per-token-per-b X   CPU ms per token per 1000M parameters (default 2.0)\n"
		"  --queue-ms MS            how long a request waits for a free thread (default 10000)\n"
		"  --max-tokens-limit N     larger max_tokens are clamped to N (default 4096)\n"
		"  --passes-per-ms K        skip the startup timing and assume K kernel passes\n"
		"                           per CPU ms (for identical work on every run)\n"
		"  --gpu-us-per-b X         also run X us of GPU kernel per token per 1000M\n"
		"                           parameters through libcuda.so.1 (the stub driver\n"
		"                           in the demo), with a synchronize and a copy back\n"
		"  -h, --help               this text\n"
		"Per request: tokens = lognormal, median max_tokens/2 (or reasoning_budget/2),\n"
		"capped at it; max_tokens defaults to 256. Prompt tokens cost the same CPU.\n"
		"Prints 'demo_worker: model=NAME port=P pid=PID ...' once listening; stops on\n"
		"SIGTERM, and on SIGINT unless it was started with SIGINT ignored.\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *v)
{
	return cli_num("demo_worker", opt, s, lo, hi, v);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, 0, 'p' },
		{ "model", required_argument, 0, 'm' },
		{ "params-m", required_argument, 0, 'P' },
		{ "seed", required_argument, 0, 's' },
		{ "threads", required_argument, 0, 't' },
		{ "ms-per-token-per-b", required_argument, 0, 'x' },
		{ "queue-ms", required_argument, 0, 'q' },
		{ "max-tokens-limit", required_argument, 0, 'L' },
		{ "passes-per-ms", required_argument, 0, 'k' },
		{ "gpu-us-per-b", required_argument, 0, 'G' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	double port = -1, params_m = 0, seed = 1, threads = 2, x = 2.0, queue_ms = 10000;
	double limit = 4096, ppm = 0, gpu_us = 0;
	const char *model = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case 'p': rc = parse_num("--port", optarg, 0, 65535, &port); break;
		case 'm': model = optarg; break;
		case 'P': rc = parse_num("--params-m", optarg, 1e-3, 1e7, &params_m); break;
		case 's': rc = parse_num("--seed", optarg, 0, 9007199254740992.0, &seed); break;
		case 't': rc = parse_num("--threads", optarg, 1, 256, &threads); break;
		case 'x': rc = parse_num("--ms-per-token-per-b", optarg, 1e-6, 1e4, &x); break;
		case 'q': rc = parse_num("--queue-ms", optarg, 0, 3600000, &queue_ms); break;
		case 'L': rc = parse_num("--max-tokens-limit", optarg, 1, 1e7, &limit); break;
		case 'k': rc = parse_num("--passes-per-ms", optarg, 1e-3, 1e9, &ppm); break;
		case 'G': rc = parse_num("--gpu-us-per-b", optarg, 0, 1e7, &gpu_us); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (rc)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "demo_worker: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (port < 0 || !model || params_m <= 0) {
		fprintf(stderr, "demo_worker: --port, --model and --params-m are required (see --help)\n");
		return 2;
	}
	if (!model[0] || strlen(model) > 128 || strpbrk(model, " \t\r\n\"\\")) {
		fprintf(stderr, "demo_worker: --model '%s' must be 1-128 characters without spaces or quotes\n",
			model);
		return 2;
	}

	static struct worker wk; /* 16 KiB of weights: not on the stack */
	uint64_t ws = (uint64_t)seed ^ 0x5EEDull;
	for (int i = 0; i < DIM * DIM; i++)
		wk.w[i] = (float)(uniform01(&ws) * 2.0 - 1.0);
	wk.seed = (uint64_t)seed;
	double ms_per_token = params_m / 1000.0 * x;
	if (ppm <= 0)
		ppm = calibrate(&wk);
	double passes = ms_per_token * ppm;
	wk.passes_per_token = passes < 1 ? 1 : (long)llround(passes);
	if (gpu_us > 0) {
		char gerr[256];

		wk.gpu_streams = (int)threads;
		wk.gpu_us_per_token = params_m / 1000.0 * gpu_us;
		wk.gpu = gpu_offload_open(wk.gpu_streams, gerr, sizeof(gerr));
		if (!wk.gpu) {
			fprintf(stderr, "demo_worker: --gpu-us-per-b: %s\n", gerr);
			return 2;
		}
	}

	/* SIGINT/SIGTERM go to the main thread's sigwait, never to a server
	 * thread. A SIGINT ignored by whoever started us (a script's background
	 * job) stays ignored: Ctrl-C at the terminal is for the foreground. */
	sigset_t sigs;
	sigemptyset(&sigs);
	struct sigaction old;
	if (sigaction(SIGINT, NULL, &old) || old.sa_handler != SIG_IGN)
		sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	struct oai_config cfg = {
		.bind_addr = "127.0.0.1",
		.port = (int)port,
		.model = model,
		.max_active = (int)threads,
		.queue_ms = (int)queue_ms,
		.max_conns = 64 + 4 * (int)threads,
		.default_max_tokens = 256,
		.max_tokens_limit = (int)limit,
		.max_prompt_tokens = 8192,
		.generate = generate,
		.user = &wk,
	};
	char err[256];
	struct oai_server *srv = oai_server_start(&cfg, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "demo_worker: %s\n", err);
		return 1;
	}
	printf("demo_worker: model=%s port=%d pid=%d params_m=%g ms_per_token=%.3f "
	       "passes_per_token=%ld passes_per_ms=%.1f threads=%d\n",
	       model, oai_server_port(srv), (int)getpid(), params_m, ms_per_token,
	       wk.passes_per_token, ppm, cfg.max_active);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0)
		;
	struct oai_stats st;
	oai_server_stats(srv, &st);
	oai_server_stop(srv);
	printf("demo_worker: model=%s stopped by signal %d: %llu requests, %llu generated, "
	       "%llu cancelled, %llu busy, %llu tokens\n",
	       model, sig, (unsigned long long)st.requests, (unsigned long long)st.generated,
	       (unsigned long long)st.cancelled, (unsigned long long)st.busy,
	       (unsigned long long)st.tokens);
	return 0;
}

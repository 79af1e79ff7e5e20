/* steer_worker: an OpenAI-style worker whose energy per request follows a
 * catalog, for the live steering proof (tests/bench/steer_live.sh).
 *
 * Each request produces exactly max_tokens tokens (usage.completion_tokens =
 * max_tokens: the reasoning length is the budget, as in a scenario with
 * reasoning_sigma = 0 and reasoning_median = 1) and every token costs
 * --joules-per-token / --watts-per-core seconds of busy CPU, so the joules
 * erg's CPU power model attributes to a request (watts per busy core x CPU
 * seconds) are the scenario's joules_per_token x budget. The HTTP layer is
 * the demo worker's (tests/demo/openai_http.h). At startup the kernel is
 * timed on this thread's CPU clock; the work is computation, never sleep.
 */
#include "openai_http.h"
#include "cli_num.h"

#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DIM 32

struct worker {
	float w[DIM * DIM];
	long passes_per_token;
};

static volatile float sink; /* keeps the work from being optimised out */

/* One matrix-vector pass, rescaled so the values stay finite. */
static float pass(const float *w, float *x)
{
	float y[DIM], s = 0;

	for (int i = 0; i < DIM; i++) {
		float acc = 0;

		for (int j = 0; j < DIM; j++)
			acc += w[i * DIM + j] * x[j];
		y[i] = acc;
		s += fabsf(acc);
	}
	s = (float)DIM / (s + 1e-6f);
	for (int i = 0; i < DIM; i++)
		x[i] = y[i] * s;
	return x[0];
}

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Passes per CPU millisecond: the fastest of 3 timings of about 30 ms
 * (contention only slows a timing down). */
static double calibrate(const struct worker *wk)
{
	float x[DIM];
	double best = 0;

	for (int i = 0; i < DIM; i++)
		x[i] = 1.0f;
	for (int k = 0; k < 3; k++) {
		double t0 = thread_cpu_ms(), t;
		long n = 0;

		do {
			for (int i = 0; i < 16; i++)
				sink += pass(wk->w, x);
			n += 16;
			t = thread_cpu_ms() - t0;
		} while (t < 30);
		if (n / t > best)
			best = n / t;
	}
	return best;
}

static int generate(void *user, const struct oai_request *req, struct oai_out *out)
{
	const struct worker *wk = user;
	float x[DIM];

	for (int i = 0; i < DIM; i++)
		x[i] = 1.0f + (float)(req->seq % 7) * 0.01f;
	for (int t = 0; t < req->max_tokens; t++) {
		for (long p = 0; p < wk->passes_per_token; p++)
			sink += pass(wk->w, x);
		int rc = oai_emit(out, " t", 2);

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
		"usage: steer_worker --port P --model NAME --joules-per-token J [options]\n"
		"An OpenAI-style worker on 127.0.0.1:P: every request answers exactly max_tokens\n"
		"tokens, each costing J / W seconds of busy CPU, so erg's CPU power model (W per\n"
		"busy core) measures J joules per token.\n"
		"  --port P              TCP port on 127.0.0.1 (0: any free port, printed at start)\n"
		"  --model NAME          model name served\n"
		"  --joules-per-token J  the catalog's J per token (> 0)\n"
		"  --watts-per-core W    erg's --watts-per-core (default 2.76, erg's default)\n"
		"  --threads N           requests generated at once (default 2)\n"
		"  --max-tokens-limit N  larger max_tokens are clamped (default 65536)\n"
		"  -h, --help            this text\n"
		"Prints 'steer_worker: model=NAME port=P pid=PID ...' once listening; stops on\n"
		"SIGTERM or SIGINT.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, 0, 'p' },
		{ "model", required_argument, 0, 'm' },
		{ "joules-per-token", required_argument, 0, 'j' },
		{ "watts-per-core", required_argument, 0, 'w' },
		{ "threads", required_argument, 0, 't' },
		{ "max-tokens-limit", required_argument, 0, 'L' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	double port = -1, jpt = 0, watts = 2.76, threads = 2, limit = 65536;
	const char *model = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int rc = 0;

		switch (c) {
		case 'p': rc = cli_num("steer_worker", "--port", optarg, 0, 65535, &port); break;
		case 'm': model = optarg; break;
		case 'j': rc = cli_num("steer_worker", "--joules-per-token", optarg, 1e-9, 1e6, &jpt); break;
		case 'w': rc = cli_num("steer_worker", "--watts-per-core", optarg, 1e-6, 1e6, &watts); break;
		case 't': rc = cli_num("steer_worker", "--threads", optarg, 1, 256, &threads); break;
		case 'L': rc = cli_num("steer_worker", "--max-tokens-limit", optarg, 1, 1e7, &limit); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (rc)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "steer_worker: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (port < 0 || !model || jpt <= 0) {
		fprintf(stderr, "steer_worker: --port, --model and --joules-per-token are required (see --help)\n");
		return 2;
	}
	if (!model[0] || strlen(model) > 128 || strpbrk(model, " \t\r\n\"\\")) {
		fprintf(stderr, "steer_worker: --model '%s' must be 1-128 characters without spaces or quotes\n",
			model);
		return 2;
	}

	static struct worker wk;
	for (int i = 0; i < DIM * DIM; i++)
		wk.w[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
	double ms_per_token = jpt / watts * 1e3, ppm = calibrate(&wk);
	wk.passes_per_token = lround(ms_per_token * ppm) < 1 ? 1 : lround(ms_per_token * ppm);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	struct oai_config cfg = {
		.bind_addr = "127.0.0.1",
		.port = (int)port,
		.model = model,
		.max_active = (int)threads,
		.queue_ms = 60000,
		.max_conns = 256,
		.default_max_tokens = 256,
		.max_tokens_limit = (int)limit,
		.generate = generate,
		.user = &wk,
	};
	char err[256];
	struct oai_server *srv = oai_server_start(&cfg, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "steer_worker: %s\n", err);
		return 1;
	}
	printf("steer_worker: model=%s port=%d pid=%d joules_per_token=%g ms_per_token=%.4f "
	       "passes_per_token=%ld\n",
	       model, oai_server_port(srv), (int)getpid(), jpt, ms_per_token, wk.passes_per_token);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0)
		;
	struct oai_stats st;
	oai_server_stats(srv, &st);
	oai_server_stop(srv);
	printf("steer_worker: model=%s stopped: %llu requests, %llu generated, %llu busy, %llu tokens\n",
	       model, (unsigned long long)st.requests, (unsigned long long)st.generated,
	       (unsigned long long)st.busy, (unsigned long long)st.tokens);
	return 0;
}

// llm-bench: decode speed and CPU cost per token of GGUF models on the
// llama.cpp engine. For each model: load, evaluate a short prompt, generate N
// tokens (end-of-generation suppressed, so exactly N), and print one line
//   model=NAME params=N threads=T tokens=K wall_s=W tok_s=R cpu_s_per_token=C
// CPU time is getrusage(RUSAGE_SELF) over the generation (every ggml thread
// of the process), the quantity erg attributes energy by (docs/theory.md §1: about
// 2N FLOPs per token, so C should grow with N).
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "llm_engine.h"

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int print_tokens;

static int on_token(void *arg, const char *text, size_t len, int index)
{
	(void)arg, (void)index;
	if (print_tokens)
		fwrite(text, 1, len, stderr);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: llm-bench [-n TOKENS] [-t THREADS] [-p PROMPT] [--chat] [--show] MODEL.gguf...\n"
		"Generates TOKENS tokens (default 64) with each model and prints tokens/s and\n"
		"CPU seconds per token (all threads of this process, from getrusage).\n"
		"  -n TOKENS   tokens to generate per model (1..100000)\n"
		"  -t THREADS  decode threads (default: the engine's choice for each model)\n"
		"  -p PROMPT   prompt text (default \"Hello\")\n"
		"  --chat      format the prompt as a user message with the chat template\n"
		"  --show      write the generated text to stderr\n");
}

int main(int argc, char **argv)
{
	int ntok = 64, threads = 0, chat = 0;
	const char *prompt = "Hello";
	static const struct option opts[] = {
		{"chat", no_argument, 0, 'c'}, {"show", no_argument, 0, 's'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "n:t:p:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'n':
			ntok = (int)strtol(optarg, &end, 10);
			if (*end || ntok < 1 || ntok > 100000) {
				fprintf(stderr, "llm-bench: -n wants 1..100000 tokens, got '%s'\n", optarg);
				return 2;
			}
			break;
		case 't':
			threads = (int)strtol(optarg, &end, 10);
			if (*end || threads < 1 || threads > 256) {
				fprintf(stderr, "llm-bench: -t wants 1..256 threads, got '%s'\n", optarg);
				return 2;
			}
			break;
		case 'p': prompt = optarg; break;
		case 'c': chat = 1; break;
		case 's': print_tokens = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	char err[512];
	if (llm_engine_init(NULL, err, sizeof err) != 0) {
		fprintf(stderr, "llm-bench: %s\n", err);
		return 1;
	}
	int status = 0;
	for (int i = optind; i < argc; i++) {
		struct llm_model *m = llm_model_load(argv[i], err, sizeof err);
		if (!m) {
			fprintf(stderr, "llm-bench: %s\n", err);
			status = 1;
			continue;
		}
		struct llm_ctx *ctx = llm_ctx_new(m, threads, ntok + 64 > 2048 ? ntok + 64 : 0, err, sizeof err);
		if (!ctx) {
			fprintf(stderr, "llm-bench: %s\n", err);
			llm_model_free(m);
			status = 1;
			continue;
		}
		char *text = NULL;
		if (chat) {
			struct llm_msg msg = {"user", prompt};
			text = llm_format_chat(m, &msg, 1, err, sizeof err);
			if (!text) {
				fprintf(stderr, "llm-bench: %s\n", err);
				status = 1;
			}
		}
		struct llm_gen_opts go = {.max_tokens = ntok, .temperature = 1.0f, .top_k = 40, .top_p = 0.95f,
					  .seed = 1, .ignore_eos = true, .parse_special = chat};
		struct llm_gen_result res;
		// Warm-up: first touches of the mapped weights are page faults, not compute.
		if (!chat || text) {
			struct llm_gen_opts w = go;
			w.max_tokens = 2;
			llm_generate(ctx, text ? text : prompt, &w, NULL, NULL, &res, err, sizeof err);
		}
		double c0 = cpu_s(), w0 = wall_s();
		int rc = (!chat || text) ? llm_generate(ctx, text ? text : prompt, &go, on_token, NULL, &res, err, sizeof err) : -1;
		double c1 = cpu_s(), w1 = wall_s();
		if (print_tokens)
			fputc('\n', stderr);
		if (rc != 0) {
			if (text || !chat)
				fprintf(stderr, "llm-bench: %s: %s\n", argv[i], err);
			status = 1;
		} else if (res.completion_tokens < 1) {
			fprintf(stderr, "llm-bench: %s generated no tokens (stop: %s)\n", argv[i], llm_stop_name(res.stop));
			status = 1;
		} else {
			int k = res.completion_tokens;
			printf("model=%s params=%" PRIu64 " threads=%d prompt_tokens=%d tokens=%d wall_s=%.3f tok_s=%.1f cpu_s_per_token=%.6f\n",
			       llm_model_name(m), llm_model_params(m), llm_ctx_threads(ctx), res.prompt_tokens, k,
			       w1 - w0, k / res.gen_s, (c1 - c0) / k);
			fflush(stdout);
		}
		free(text);
		llm_ctx_free(ctx);
		llm_model_free(m);
	}
	return status;
}

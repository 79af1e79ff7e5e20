/* erg calibrate's options, on the shared cli layer. */
#include <stdio.h>
#include <string.h>
#include "calibrate_args.h"
#include "calibrate_request.h"
#include "cli.h"
#include "errbuf.h"
#include "scaling.h"

/* A scenario's [model NAME] holds this many characters. */
#define NAME_MAX_LEN (sizeof(((struct model_spec *)0)->name) - 1)

static void usage(FILE *out)
{
	fprintf(out,
"usage: erg calibrate --worker NAME:PID:PORT:PARAMS [--worker ...] [OPTIONS]\n"
"\n"
"Measure joules per generated token of each model worker with erg's own\n"
"attribution (the same BPF CPU counters and energy source as erg top), one\n"
"model at a time, then fit docs/theory.md §1's J/token = 2N/eta across the models\n"
"(least squares through the origin; R^2 says how well it explains them) and\n"
"write an erg sim scenario with the measured J/token table. Needs root.\n"
"\n"
"  -w, --worker NAME:PID:PORT:PARAMS  a running OpenAI-compatible worker on\n"
"                           127.0.0.1:PORT (1-65535), process PID, serving\n"
"                           model NAME (up to %zu characters: letters, digits,\n"
"                           . _ - + @ /) of PARAMS parameters (e.g. 1.5e9,\n"
"                           340M, 8B; above 0, at most 1e15); 2 to %d workers\n"
"  -n, --requests N         requests per model, 1 to 100000 (default 4), sent\n"
"                           one at a time\n"
"  -t, --max-tokens T       max_tokens of each request, 1 to 100000 (default 64)\n"
"      --retries N          a failed request (connection, HTTP status other than\n"
"                           200, no token count) is sent again with a new seed up\n"
"                           to N times, 0 to %d (default 3), then skipped\n"
"      --path PATH          the endpoint (default %s); a path\n"
"                           not ending in /chat/completions gets \"prompt\"\n"
"                           instead of \"messages\"\n"
"      --body-extra JSON    a JSON object whose members are merged into each\n"
"                           request body, replacing erg's of the same name\n"
"                           (model, max_tokens, seed, messages or prompt), e.g.\n"
"                           '{\"temperature\":0}'; \"stream\" stays false\n"
"  -b, --base FILE          scenario whose [scaling]/[workload]/[cost] sections\n"
"                           the output keeps (default: scenarios/reference.ini\n"
"                           if present, else built-in docs/theory.md §6 defaults)\n"
"  -o, --out FILE           write the scenario there (default: stdout)\n"
"  -j, --json               print the measurements and the fit as JSON\n"
"  -e, --energy-source SRC  auto, rapl, hwmon or model (as erg top)\n"
"      --idle-watts W, --watts-per-core W   power model (as erg top: above 0,\n"
"                           at most %g)\n"
"  -v, --verbose            print libbpf's log\n"
"  -h, --help               this text\n"
"\n"
"J/token counts each model's attributed joules over its answered requests\n"
"(prompt processing included) per generated token; failed attempts are\n"
"measured apart and left out. Retries and skipped requests are\n"
"printed as they happen and summed per model. A model with no tokens, or\n"
"with fewer than half its requests answered, fails the run; every model is\n"
"still measured first. The token count is usage.completion_tokens, or\n"
"tokens_predicted (llama.cpp's /completion). The output runs as is:\n"
"  erg sim --scenario FILE\n"
"Exit status: 0 ok, 1 runtime failure (a model with too few answers, no\n"
"positive eta, writing), 2 usage error, or BPF cannot be loaded.\n",
		NAME_MAX_LEN, CAL_MAX_WORKERS, CAL_MAX_RETRIES, CAL_DEFAULT_PATH, ENERGY_MAX_WATTS);
}

/* Names go into a scenario's section header and a JSON request body. */
static bool name_ok(const char *s)
{
	if (!*s || strlen(s) > NAME_MAX_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("._-+@/", *s)))
			return false;
	return true;
}

/* "340M", "1.5e9", "8B": a finite count above 0, at most CAL_MAX_PARAMS. */
static int parse_params(const char *s, double *out, char *err, size_t errlen)
{
	char num[64];
	double scale = 1.0;
	size_t n = strlen(s);

	if (n && strchr("kK", s[n - 1]))
		scale = 1e3;
	else if (n && strchr("mM", s[n - 1]))
		scale = 1e6;
	else if (n && strchr("bBG", s[n - 1]))
		scale = 1e9;
	if (scale > 1.0)
		n--;
	if (n < sizeof(num)) {
		memcpy(num, s, n);
		num[n] = '\0';
		if (!cli_double_above("--worker PARAMS", num, 0, CAL_MAX_PARAMS / scale, "parameters", out,
				      NULL, 0)) {
			*out *= scale;
			return 0;
		}
	}
	char q[80];
	errbuf_set(err, errlen, "--worker PARAMS '%s': expected a parameter count above 0, at most %g "
		   "(340M, 1.5e9, 8B)", cli_quote(s, q, sizeof(q)), CAL_MAX_PARAMS);
	return -1;
}

int cal_parse_worker(const char *spec, struct cal_worker *w, char *err, size_t errlen)
{
	char copy[512], *fields[4], q[80], url[96];
	size_t n = 0;
	long long port;

	if (strlen(spec) >= sizeof(copy))
		goto shape;
	snprintf(copy, sizeof(copy), "%s", spec);
	/* empty fields count: "a::1:2:3" has five */
	for (char *p = copy;; n++) {
		char *colon = strchr(p, ':');
		if (n < 4)
			fields[n] = p;
		if (!colon)
			break;
		*colon = '\0';
		p = colon + 1;
	}
	if (++n != 4)
		goto shape;
	if (!name_ok(fields[0])) {
		errbuf_set(err, errlen, "--worker NAME '%s': expected a model name of 1 to %zu letters, digits "
			   "or . _ - + @ /", cli_quote(fields[0], q, sizeof(q)), NAME_MAX_LEN);
		return -1;
	}
	snprintf(w->name, sizeof(w->name), "%s", fields[0]);
	if (cli_pid("--worker PID", fields[1], &w->pid, err, errlen) ||
	    cli_long("--worker PORT", fields[2], 1, 65535, "a port", &port, err, errlen) ||
	    parse_params(fields[3], &w->params, err, errlen))
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%lld", port);
	return http_parse_url(url, &w->url, err, errlen);
shape:
	errbuf_set(err, errlen, "--worker '%s': expected NAME:PID:PORT:PARAMS, four fields separated by ':', "
		   "e.g. qwen-7b:4242:8081:7e9", cli_quote(spec, q, sizeof(q)));
	return -1;
}

/* One option's value into *a; -1 with the message in err. */
static int take_option(const struct cli *c, int opt, const char *v, struct cal_args *a, char *err,
		       size_t errlen)
{
	struct energy_opts *e = &a->energy;
	long long n;
	int choice;

	switch (opt) {
	case 'w':
		if (a->n == CAL_MAX_WORKERS) {
			errbuf_set(err, errlen, "--worker: at most %d workers", CAL_MAX_WORKERS);
			return -1;
		}
		if (cal_parse_worker(v, &a->workers[a->n], err, errlen))
			return -1;
		a->n++;
		return 0;
	case 'n':
	case 't':
		if (cli_long(c->name, v, 1, 100000, opt == 'n' ? "requests" : "tokens", &n, err, errlen))
			return -1;
		*(opt == 'n' ? &a->requests : &a->max_tokens) = (long)n;
		return 0;
	case 'R':
		if (cli_long(c->name, v, 0, CAL_MAX_RETRIES, "retries", &n, err, errlen))
			return -1;
		a->retries = (long)n;
		return 0;
	case 'P':
		if (cal_path_check(v, err, errlen))
			return -1;
		a->path = v;
		return 0;
	case 'X':
		if (cal_body_extra_check(v, err, errlen))
			return -1;
		a->body_extra = v;
		return 0;
	case 'b': a->base = v; return 0;
	case 'o': a->out_path = v; return 0;
	case 'j': a->json = true; return 0;
	case 'v': a->verbose = true; return 0;
	case 'e':
		if (cli_choice(c->name, v, energy_choice_names, &choice, err, errlen))
			return -1;
		e->choice = (enum energy_choice)choice;
		return 0;
	case 'I':
		return cli_double_above(c->name, v, 0, ENERGY_MAX_WATTS, "watts", &e->model.idle_watts, err, errlen);
	case 'W':
		return cli_double_above(c->name, v, 0, ENERGY_MAX_WATTS, "watts", &e->model.watts_per_busy_core,
					err, errlen);
	}
	errbuf_set(err, errlen, "internal: option %d has no handler", opt);
	return -1;
}

int cal_args_parse(int argc, char **argv, struct cal_args *a)
{
	static const struct option longopts[] = {
		{ "worker", required_argument, NULL, 'w' },
		{ "requests", required_argument, NULL, 'n' },
		{ "max-tokens", required_argument, NULL, 't' },
		{ "retries", required_argument, NULL, 'R' },
		{ "path", required_argument, NULL, 'P' },
		{ "body-extra", required_argument, NULL, 'X' },
		{ "base", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "energy-source", required_argument, NULL, 'e' },
		{ "idle-watts", required_argument, NULL, 'I' },
		{ "watts-per-core", required_argument, NULL, 'W' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c;
	char err[768], q[80];
	int opt;

	memset(a, 0, sizeof(*a));
	a->requests = 4;
	a->max_tokens = 64;
	a->retries = 3;
	a->path = CAL_DEFAULT_PATH;
	cli_init(&c, "erg calibrate", "w:n:t:b:o:je:vh", longopts);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		if (opt == CLI_ERROR)
			return 2;
		if (opt == 'h') {
			usage(stdout);
			return 1;
		}
		if (take_option(&c, opt, optarg, a, err, sizeof(err)))
			return cli_fail(&c, err);
	}
	if (optind < argc) {
		snprintf(err, sizeof(err), "unexpected argument '%s' (see erg calibrate --help)",
			 cli_quote(argv[optind], q, sizeof(q)));
		return cli_fail(&c, err);
	}
	if (a->n < 2)
		return cli_fail(&c, "give at least two --worker NAME:PID:PORT:PARAMS to fit eta across models");
	return 0;
}

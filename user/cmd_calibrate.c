/* erg calibrate: measure joules per generated token of each model worker
 * from erg's own attribution, fit the effective FLOP/J eta of THEORY §1
 * (J/token = 2N/eta) across models, and write the measured table as an
 * erg sim scenario. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "attrib.h"
#include "commands.h"
#include "energy.h"
#include "http_client.h"
#include "scaling.h"
#include "scenario.h"
#include "targets.h"
#include "tracker.h"

#define MAX_CAL_WORKERS 32

struct cal_worker {
	char name[TARGET_MODEL_LEN];
	int pid;
	struct http_url url;
	double params;
	/* measured */
	long requests, completion_tokens, prompt_tokens;
	double seconds, cpu_s, joules, j_per_token;
};

static void usage(FILE *out)
{
	fprintf(out,
"usage: erg calibrate --worker NAME:PID:PORT:PARAMS [--worker ...] [OPTIONS]\n"
"\n"
"Measure joules per generated token of each model worker with erg's own\n"
"attribution (the same BPF CPU counters and energy source as erg top), one\n"
"model at a time, then fit THEORY §1's J/token = 2N/eta across the models\n"
"(least squares through the origin; R^2 says how well it explains them) and\n"
"write an erg sim scenario with the measured J/token table. Needs root.\n"
"\n"
"  -w, --worker NAME:PID:PORT:PARAMS  a running OpenAI-compatible worker on\n"
"                           127.0.0.1:PORT, process PID, serving model NAME of\n"
"                           PARAMS parameters (e.g. 1.5e9, 340M, 8B)\n"
"  -n, --requests N         requests per model (default 4), sent one at a time\n"
"  -t, --max-tokens T       max_tokens of each request (default 64)\n"
"  -b, --base FILE          scenario whose [scaling]/[workload]/[cost] sections\n"
"                           the output keeps (default: scenarios/reference.ini\n"
"                           if present, else built-in THEORY §6 defaults)\n"
"  -o, --out FILE           write the scenario there (default: stdout)\n"
"  -j, --json               print the measurements and the fit as JSON\n"
"  -e, --energy-source SRC  auto, rapl, hwmon or model (as erg top)\n"
"      --idle-watts W, --watts-per-core W   power model (as erg top)\n"
"  -h, --help               this text\n"
"\n"
"J/token counts each model's attributed joules over its requests (prompt\n"
"processing included) per generated token. The output runs as is:\n"
"  erg sim --scenario FILE\n");
}

static int parse_params(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s)
		return -1;
	if (*end == 'K' || *end == 'k')
		v *= 1e3, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1e6, end++;
	else if (*end == 'B' || *end == 'b' || *end == 'G')
		v *= 1e9, end++;
	if (*end || !(v > 0) || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static int parse_worker(const char *spec, struct cal_worker *w, char *err, size_t errlen)
{
	char copy[512], *fields[4], *save = NULL, url[96];
	int n = 0;

	snprintf(copy, sizeof(copy), "%s", spec);
	for (char *tok = strtok_r(copy, ":", &save); tok && n < 4; tok = strtok_r(NULL, ":", &save))
		fields[n++] = tok;
	if (n != 4 || strtok_r(NULL, ":", &save)) {
		snprintf(err, errlen, "--worker '%s': expected NAME:PID:PORT:PARAMS, e.g. qwen-7b:4242:8081:7e9", spec);
		return -1;
	}
	if (strlen(fields[0]) >= sizeof(w->name)) {
		snprintf(err, errlen, "--worker '%s': model name too long", spec);
		return -1;
	}
	snprintf(w->name, sizeof(w->name), "%s", fields[0]);
	w->pid = atoi(fields[1]);
	if (w->pid <= 0) {
		snprintf(err, errlen, "--worker '%s': '%s' is not a process id", spec, fields[1]);
		return -1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%s", fields[2]);
	if (http_parse_url(url, &w->url, err, errlen))
		return -1;
	if (parse_params(fields[3], &w->params)) {
		snprintf(err, errlen, "--worker '%s': '%s' is not a parameter count (e.g. 340M, 1.5e9, 8B)", spec, fields[3]);
		return -1;
	}
	return 0;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One non-streaming completion; adds its usage to w. */
static int one_request(struct cal_worker *w, int max_tokens, int i, char *err, size_t errlen)
{
	char body[1024], *resp = NULL;
	cJSON *doc, *usage, *ct, *pt;
	int status;

	snprintf(body, sizeof(body),
		 "{\"model\":\"%.63s\",\"max_tokens\":%d,\"stream\":false,\"seed\":%d,"
		 "\"messages\":[{\"role\":\"user\",\"content\":\"Calibration request %d: reason step by step about energy.\"}]}",
		 w->name, max_tokens, i + 1, i + 1);
	status = http_post_json(&w->url, "/v1/chat/completions", body, 300.0, &resp, err, errlen);
	if (status < 0)
		return -1;
	if (status != 200) {
		snprintf(err, errlen, "%.63s answered HTTP %d: %.200s", w->name, status, resp ? resp : "");
		free(resp);
		return -1;
	}
	doc = cJSON_Parse(resp);
	usage = doc ? cJSON_GetObjectItemCaseSensitive(doc, "usage") : NULL;
	ct = usage ? cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens") : NULL;
	pt = usage ? cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens") : NULL;
	if (!cJSON_IsNumber(ct)) {
		snprintf(err, errlen, "%.63s answered without usage.completion_tokens: %.200s", w->name, resp);
		cJSON_Delete(doc);
		free(resp);
		return -1;
	}
	w->completion_tokens += (long)ct->valuedouble;
	w->prompt_tokens += cJSON_IsNumber(pt) ? (long)pt->valuedouble : 0;
	w->requests++;
	cJSON_Delete(doc);
	free(resp);
	return 0;
}

/* Copy base's lines except [model ...] sections and the [scaling] eta key,
 * which the measurements replace. */
/* The accuracy target the calibrated models can meet (THEORY §1): keep the
 * base's if the best option reaches it, else halfway between the worst and
 * the best option, so erg sim has a routing choice to make. Returns the
 * target, and sets *lowered when it differs from the base's. */
static double reachable_target(const struct scaling_params *sp, const double *budgets, int n_budgets,
			       double base_target, const struct cal_worker *ws, size_t n, bool *lowered)
{
	double best = -INFINITY, worst = INFINITY;

	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < n_budgets; b++) {
			double acc = scaling_accuracy(sp, ws[i].params, budgets[b]);

			best = acc > best ? acc : best;
			worst = acc < worst ? acc : worst;
		}
	*lowered = base_target > best;
	return *lowered ? worst + 0.5 * (best - worst) : base_target;
}

static int write_scenario(FILE *out, const char *base, const struct cal_worker *ws, size_t n,
			  double eta, double r2, const char *source, double target, bool lowered)
{
	FILE *in = base ? fopen(base, "r") : NULL;
	char line[1024], section[128] = "";
	bool skip = false, wrote_eta = false;

	fprintf(out, "; written by erg calibrate: joules per generated token measured on this node\n"
		     "; (energy source: %s), eta fitted to J/token = 2N/eta, R^2 = %.4f\n", source, r2);
	if (in) {
		fprintf(out, "; other sections from %s\n\n", base);
		while (fgets(line, sizeof(line), in)) {
			const char *p = line + strspn(line, " \t");

			if (*p == '[') {
				if (!strcmp(section, "scaling") && !wrote_eta) {
					fprintf(out, "eta = %.6g\n", eta);
					wrote_eta = true;
				}
				sscanf(p, "[%127[^]]", section);
				skip = !strncmp(section, "model", 5);
				if (!strcmp(section, "scenario")) {
					fprintf(out, "[scenario]\nname = calibrated\n");
					skip = true;
					continue;
				}
			} else if (!strcmp(section, "scenario")) {
				continue;
			} else if (lowered && !strcmp(section, "workload") && !strncmp(p, "accuracy_target", 15) &&
				   strchr("= \t", p[15])) {
				fprintf(out, "accuracy_target = %.4f ; lowered by erg calibrate: the measured models reach at most this much more\n",
					target);
				continue;
			} else if (!strcmp(section, "scaling") && !strncmp(p, "eta", 3) && strchr("= \t", p[3])) {
				fprintf(out, "eta = %.6g               ; fitted by erg calibrate\n", eta);
				wrote_eta = true;
				continue;
			}
			if (!skip)
				fputs(line, out);
		}
		fclose(in);
		if (!wrote_eta)
			fprintf(out, "\n[scaling]\neta = %.6g\n", eta);
	} else {
		/* THEORY §1 defaults, as in scenarios/reference.ini */
		fprintf(out, "\n[scenario]\nname = calibrated\n\n"
			     "[scaling]\neta = %.6g\na0 = -2.523\na1 = 0.091\nbeta = 0.1086\na_max = 0.95\n\n"
			     "[workload]\ntasks_per_slot = 20\nslot_seconds = 1\ninput_tokens = 500\n"
			     "budgets = 256, 1024, 4096, 16384\nreasoning_sigma = 0.8\nreasoning_median = 0.5\n"
			     "accuracy_target = %.4f\n\n[cost]\nc_a = 1\nc_w = 1\n", eta, target);
	}
	for (size_t i = 0; i < n; i++)
		fprintf(out, "\n[model %s]\nparams = %.0f\njoules_per_token = %.6g   ; %ld tokens, %ld requests, %.3f J\n",
			ws[i].name, ws[i].params, ws[i].j_per_token, ws[i].completion_tokens, ws[i].requests,
			ws[i].joules);
	return ferror(out) ? -1 : 0;
}

int cmd_calibrate(int argc, char **argv)
{
	enum { OPT_IDLE = 256, OPT_WPC };
	static const struct option longopts[] = {
		{ "worker", required_argument, NULL, 'w' },
		{ "requests", required_argument, NULL, 'n' },
		{ "max-tokens", required_argument, NULL, 't' },
		{ "base", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "energy-source", required_argument, NULL, 'e' },
		{ "idle-watts", required_argument, NULL, OPT_IDLE },
		{ "watts-per-core", required_argument, NULL, OPT_WPC },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct cal_worker ws[MAX_CAL_WORKERS];
	struct target_set targets = { 0 };
	struct energy_opts eopts = { 0 };
	struct tracker_opts topts = { 0 };
	struct tracker *tracker = NULL;
	struct energy_source *energy = NULL;
	const char *base = NULL, *out_path = NULL;
	size_t n = 0;
	long requests = 4, max_tokens = 64;
	bool json = false;
	char err[768];
	int opt, rc = 1;

	memset(ws, 0, sizeof(ws));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+w:n:t:b:o:je:h", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'w':
			if (n == MAX_CAL_WORKERS) {
				fprintf(stderr, "erg calibrate: at most %d workers\n", MAX_CAL_WORKERS);
				return 2;
			}
			if (parse_worker(optarg, &ws[n], err, sizeof(err))) {
				fprintf(stderr, "erg calibrate: %s\n", err);
				return 2;
			}
			n++;
			break;
		case 'n':
		case 't':
			errno = 0;
			if (opt == 'n')
				requests = strtol(optarg, &end, 10);
			else
				max_tokens = strtol(optarg, &end, 10);
			if (errno || *end || (opt == 'n' ? requests : max_tokens) <= 0 ||
			    (opt == 'n' ? requests : max_tokens) > 100000) {
				fprintf(stderr, "erg calibrate: %s '%s': expected a whole number from 1 to 100000\n",
					opt == 'n' ? "--requests" : "--max-tokens", optarg);
				return 2;
			}
			break;
		case 'b':
			base = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'e':
			if (!energy_choice_parse(optarg, &eopts.choice)) {
				fprintf(stderr, "erg calibrate: --energy-source '%s': expected auto, rapl, hwmon or model\n", optarg);
				return 2;
			}
			break;
		case OPT_IDLE:
		case OPT_WPC: {
			double v = strtod(optarg, &end);

			if (end == optarg || *end || !(v >= 0)) {
				fprintf(stderr, "erg calibrate: %s '%s': expected watts >= 0\n",
					opt == OPT_IDLE ? "--idle-watts" : "--watts-per-core", optarg);
				return 2;
			}
			if (opt == OPT_IDLE)
				eopts.model.idle_watts = v;
			else
				eopts.model.watts_per_busy_core = v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "erg calibrate: unknown option or missing value '%s' (see erg calibrate --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "erg calibrate: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (n < 2) {
		fprintf(stderr, "erg calibrate: give at least two --worker NAME:PID:PORT:PARAMS to fit eta across models\n");
		return 2;
	}
	if (!base) {
		FILE *f = fopen("scenarios/reference.ini", "r");

		if (f) {
			fclose(f);
			base = "scenarios/reference.ini";
		}
	} else {
		FILE *f = fopen(base, "r");

		if (!f) {
			fprintf(stderr, "erg calibrate: --base %s: %s\n", base, strerror(errno));
			return 2;
		}
		fclose(f);
	}
	for (size_t i = 0; i < n; i++) {
		char spec[32];

		snprintf(spec, sizeof(spec), "%d", ws[i].pid);
		if (target_add(&targets, TARGET_PID, spec, NULL, err, sizeof(err))) {
			fprintf(stderr, "erg calibrate: worker %s: %s\n", ws[i].name, err);
			rc = 2;
			goto out;
		}
	}
	tracker = tracker_open(&targets, &topts, err, sizeof(err));
	if (!tracker) {
		fprintf(stderr, "erg calibrate: %s\n", err);
		rc = 2;
		goto out;
	}
	energy = energy_open(&eopts, monotonic_s(), err, sizeof(err));
	if (!energy) {
		fprintf(stderr, "erg calibrate: %s\n", err);
		rc = 2;
		goto out;
	}

	/* One model at a time, so each window's node energy is that model's
	 * work plus idle; the split is the same as erg top's. */
	for (size_t i = 0; i < n; i++) {
		struct cal_worker *w = &ws[i];
		struct energy_sample e0, e1;
		double cpu0[MAX_CAL_WORKERS], cpu1[MAX_CAL_WORKERS], dcpu[MAX_CAL_WORKERS];
		uint64_t nj[MAX_CAL_WORKERS];
		struct attrib_tick tick;
		double t0, t1;

		fprintf(stderr, "erg calibrate: %s: %ld requests of max_tokens %ld ...", w->name, requests, max_tokens);
		t0 = monotonic_s();
		if (energy_read(energy, t0, &e0, err, sizeof(err)) || tracker_read(tracker, cpu0, NULL)) {
			fprintf(stderr, "\nerg calibrate: reading energy failed: %s\n", err);
			goto out;
		}
		for (long r = 0; r < requests; r++) {
			if (one_request(w, (int)max_tokens, (int)r, err, sizeof(err))) {
				fprintf(stderr, "\nerg calibrate: %s\n", err);
				goto out;
			}
		}
		t1 = monotonic_s();
		if (energy_read(energy, t1, &e1, err, sizeof(err)) || tracker_read(tracker, cpu1, NULL)) {
			fprintf(stderr, "\nerg calibrate: reading energy failed: %s\n", err);
			goto out;
		}
		for (size_t k = 0; k < n; k++)
			dcpu[k] = cpu1[k] - cpu0[k];
		tick.total_nj = attrib_nj(e1.joules - e0.joules);
		tick.idle_nj = attrib_nj(energy_idle_watts(energy) * (t1 - t0));
		tick.node_busy_cpu_s = e1.busy_cpu_s - e0.busy_cpu_s;
		tick.worker_cpu_s = dcpu;
		tick.n_workers = n;
		attrib_split(&tick, nj);
		w->seconds = t1 - t0;
		w->cpu_s = dcpu[i];
		w->joules = attrib_joules(nj[i]);
		if (w->completion_tokens <= 0) {
			fprintf(stderr, "\nerg calibrate: %s generated no tokens; cannot measure J/token\n", w->name);
			goto out;
		}
		w->j_per_token = w->joules / (double)w->completion_tokens;
		fprintf(stderr, " %ld tokens in %.1f s, %.3f J, %.4g J/token\n", w->completion_tokens, w->seconds,
			w->joules, w->j_per_token);
	}

	/* THEORY §1: J/token = (2N) / eta, least squares through the origin */
	double sxy = 0, sxx = 0, mean_y = 0, ss_res = 0, ss_tot = 0, eta, r2;

	for (size_t i = 0; i < n; i++) {
		double x = 2.0 * ws[i].params, y = ws[i].j_per_token;

		sxy += x * y;
		sxx += x * x;
		mean_y += y / (double)n;
	}
	eta = sxx > 0 && sxy > 0 ? sxx / sxy : 0;
	for (size_t i = 0; i < n; i++) {
		double fit = 2.0 * ws[i].params / eta, y = ws[i].j_per_token;

		ss_res += (y - fit) * (y - fit);
		ss_tot += (y - mean_y) * (y - mean_y);
	}
	r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
	if (!(eta > 0)) {
		fprintf(stderr, "erg calibrate: the measurements give no positive eta\n");
		goto out;
	}

	{
		FILE *out;
		char source[256];
		struct scaling_params sp = { .a0 = -2.523, .a1 = 0.091, .beta = 0.1086, .a_max = 0.95 };
		double budgets[SCEN_MAX_BUDGETS] = { 256, 1024, 4096, 16384 }, target = 0.60;
		int n_budgets = 4;
		bool lowered;

		if (base) {
			struct scenario *sc = calloc(1, sizeof(*sc));

			if (!sc || scenario_load(base, sc, err, sizeof(err))) {
				fprintf(stderr, "erg calibrate: --base: %s\n", sc ? err : "out of memory");
				free(sc);
				rc = 2;
				goto out;
			}
			sp = sc->sp;
			n_budgets = sc->n_budgets;
			memcpy(budgets, sc->budgets, sizeof(double) * (size_t)n_budgets);
			target = sc->acc_target;
			scenario_free(sc);
			free(sc);
		}
		target = reachable_target(&sp, budgets, n_budgets, target, ws, n, &lowered);
		out = out_path ? fopen(out_path, "w") : stdout;

		snprintf(source, sizeof(source), "%s", energy_describe(energy));
		if (!out) {
			fprintf(stderr, "erg calibrate: --out %s: %s\n", out_path, strerror(errno));
			rc = 2;
			goto out;
		}
		if (!json || out_path) {
			if (write_scenario(out, base, ws, n, eta, r2, source, target, lowered) || (out_path && fclose(out))) {
				fprintf(stderr, "erg calibrate: writing %s failed: %s\n", out_path ? out_path : "stdout", strerror(errno));
				goto out;
			}
		}
		if (json) {
			cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "models");
			char *text;

			for (size_t i = 0; i < n; i++) {
				cJSON *m = cJSON_CreateObject();

				cJSON_AddStringToObject(m, "model", ws[i].name);
				cJSON_AddNumberToObject(m, "params", ws[i].params);
				cJSON_AddNumberToObject(m, "requests", (double)ws[i].requests);
				cJSON_AddNumberToObject(m, "completion_tokens", (double)ws[i].completion_tokens);
				cJSON_AddNumberToObject(m, "prompt_tokens", (double)ws[i].prompt_tokens);
				cJSON_AddNumberToObject(m, "seconds", ws[i].seconds);
				cJSON_AddNumberToObject(m, "cpu_s", ws[i].cpu_s);
				cJSON_AddNumberToObject(m, "joules", ws[i].joules);
				cJSON_AddNumberToObject(m, "joules_per_token", ws[i].j_per_token);
				cJSON_AddItemToArray(arr, m);
			}
			cJSON_AddNumberToObject(doc, "eta", eta);
			cJSON_AddNumberToObject(doc, "r2", r2);
			cJSON_AddStringToObject(doc, "source", energy_name(energy));
			cJSON_AddBoolToObject(doc, "measured", energy_is_measured(energy));
			cJSON_AddStringToObject(doc, "source_detail", source);
			if (out_path)
				cJSON_AddStringToObject(doc, "scenario", out_path);
			text = cJSON_Print(doc);
			if (text)
				puts(text);
			free(text);
			cJSON_Delete(doc);
		}
		fprintf(stderr, "erg calibrate: eta = %.4g FLOP/J, R^2 = %.4f over %zu models (energy: %s)%s%s\n", eta, r2, n,
			source, out_path ? "; scenario written to " : "", out_path ? out_path : "");
	}
	rc = 0;
out:
	energy_close(energy);
	tracker_close(tracker);
	targets_free(&targets);
	return rc;
}

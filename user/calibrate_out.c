/* erg calibrate's scenario and JSON. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "calibrate_out.h"
#include "theory.h"

/* Without a base: docs/theory.md §1 defaults, as in scenarios/reference.ini. */
static const double default_budgets[] = { 256, 1024, 4096, 16384 };
#define DEFAULT_TARGET 0.60

int cal_base_load(const char *path, struct cal_base *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	b->sp = (struct scaling_params){ .a0 = THEORY_A0, .a1 = THEORY_A1, .beta = THEORY_BETA,
					 .a_max = THEORY_A_MAX };
	b->n_budgets = sizeof(default_budgets) / sizeof(default_budgets[0]);
	memcpy(b->budgets, default_budgets, sizeof(default_budgets));
	b->target = DEFAULT_TARGET;
	if (!path)
		return 0;
	struct scenario *sc = calloc(1, sizeof(*sc));
	if (!sc || scenario_load(path, sc, err, errlen)) {
		if (!sc)
			snprintf(err, errlen, "out of memory");
		free(sc);
		return -1;
	}
	b->path = path;
	b->sp = sc->sp;
	b->n_budgets = sc->n_budgets;
	memcpy(b->budgets, sc->budgets, sizeof(double) * (size_t)sc->n_budgets);
	b->target = sc->acc_target;
	scenario_free(sc);
	free(sc);
	return 0;
}

static void write_defaults(FILE *out, const struct cal_base *b, const struct cal_fit *fit)
{
	fprintf(out, "\n[scenario]\nname = calibrated\n\n"
		     "[scaling]\neta = %.6g\na0 = %g\na1 = %g\nbeta = %g\na_max = %g\n\n"
		     "[workload]\ntasks_per_slot = 20\nslot_seconds = 1\ninput_tokens = 500\nbudgets = ",
		fit->eta, b->sp.a0, b->sp.a1, b->sp.beta, b->sp.a_max);
	for (int i = 0; i < b->n_budgets; i++)
		fprintf(out, "%s%g", i ? ", " : "", b->budgets[i]);
	fprintf(out, "\nreasoning_sigma = 0.8\nreasoning_median = 0.5\n"
		     "accuracy_target = %.4f\n\n[cost]\nc_a = 1\nc_w = 1\n", fit->target);
}

/* Copy base's lines except [model ...] sections, [scenario] (renamed) and
 * the [scaling] eta key, which the measurements replace; a lowered accuracy
 * target replaces the base's. */
static void copy_base(FILE *out, FILE *in, const struct cal_fit *fit)
{
	char line[1024], section[128] = "";
	bool skip = false, wrote_eta = false;

	while (fgets(line, sizeof(line), in)) {
		const char *p = line + strspn(line, " \t");

		if (*p == '[') {
			if (!strcmp(section, "scaling") && !wrote_eta) {
				fprintf(out, "eta = %.6g\n", fit->eta);
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
		} else if (fit->lowered && !strcmp(section, "workload") && !strncmp(p, "accuracy_target", 15) &&
			   strchr("= \t", p[15])) {
			fprintf(out, "accuracy_target = %.4f ; lowered by erg calibrate: the measured models reach at most this much more\n",
				fit->target);
			continue;
		} else if (!strcmp(section, "scaling") && !strncmp(p, "eta", 3) && strchr("= \t", p[3])) {
			fprintf(out, "eta = %.6g               ; fitted by erg calibrate\n", fit->eta);
			wrote_eta = true;
			continue;
		}
		if (!skip)
			fputs(line, out);
	}
	if (!wrote_eta)
		fprintf(out, "\n[scaling]\neta = %.6g\n", fit->eta);
}

int cal_write_scenario(FILE *out, const struct cal_base *b, const struct cal_worker *ws, size_t n,
		       const struct cal_fit *fit)
{
	FILE *in = b->path ? fopen(b->path, "r") : NULL;

	fprintf(out, "; written by erg calibrate: joules per generated token measured on this node\n"
		     "; (energy source: %s), eta fitted to J/token = 2N/eta, R^2 = %.4f\n", fit->source, fit->r2);
	if (in) {
		fprintf(out, "; other sections from %s\n\n", b->path);
		copy_base(out, in, fit);
		fclose(in);
	} else {
		write_defaults(out, b, fit);
	}
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "\n[model %s]\nparams = %.0f\njoules_per_token = %.6g   ; %ld tokens, %ld requests, %.3f J",
			ws[i].name, ws[i].params, ws[i].j_per_token, ws[i].completion_tokens, ws[i].requests,
			ws[i].joules);
		if (ws[i].retries || ws[i].skipped)
			fprintf(out, " (%ld retried, %ld skipped)", ws[i].retries, ws[i].skipped);
		fputc('\n', out);
	}
	return ferror(out) ? -1 : 0;
}

void cal_print_json(const struct cal_worker *ws, size_t n, const struct cal_fit *fit,
		    const struct energy_source *energy, const char *out_path)
{
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
		cJSON_AddNumberToObject(m, "retries", (double)ws[i].retries);
		cJSON_AddNumberToObject(m, "skipped", (double)ws[i].skipped);
		cJSON_AddNumberToObject(m, "failed_seconds", ws[i].failed_seconds);
		cJSON_AddItemToArray(arr, m);
	}
	cJSON_AddNumberToObject(doc, "eta", fit->eta);
	cJSON_AddNumberToObject(doc, "r2", fit->r2);
	cJSON_AddStringToObject(doc, "source", energy_name(energy));
	cJSON_AddBoolToObject(doc, "measured", energy_is_measured(energy));
	cJSON_AddStringToObject(doc, "source_detail", fit->source);
	if (out_path)
		cJSON_AddStringToObject(doc, "scenario", out_path);
	text = cJSON_Print(doc);
	if (text)
		puts(text);
	free(text);
	cJSON_Delete(doc);
}

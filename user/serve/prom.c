/* Prometheus text format 0.0.4 writer and erg's families; see prom.h. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_stats.h"
#include "prom.h"

void prom_buf_init(struct prom_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void prom_buf_free(struct prom_buf *b)
{
	free(b->data);
	prom_buf_init(b);
}

void prom_buf_reset(struct prom_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data)
		b->data[0] = '\0';
}

bool prom_buf_ok(const struct prom_buf *b)
{
	return !b->failed;
}

static bool reserve(struct prom_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *d;

	if (b->failed)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	while (cap < b->len + more + 1)
		cap *= 2;
	d = realloc(b->data, cap);
	if (!d) {
		b->failed = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

static void put(struct prom_buf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void puts_(struct prom_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* Escape backslash and newline (HELP text), and double quote too (label
 * values), as the format requires. */
static void put_escaped(struct prom_buf *b, const char *s, bool quote)
{
	for (const char *p = s; *p; p++) {
		if (*p == '\\')
			put(b, "\\\\", 2);
		else if (*p == '\n')
			put(b, "\\n", 2);
		else if (*p == '"' && quote)
			put(b, "\\\"", 2);
		else
			put(b, p, 1);
	}
}

/* The shortest decimal that reads back as v; NaN, +Inf, -Inf as the format
 * spells them. */
static void put_number(struct prom_buf *b, double v)
{
	char s[40];

	if (isnan(v))
		snprintf(s, sizeof(s), "NaN");
	else if (isinf(v))
		snprintf(s, sizeof(s), v > 0 ? "+Inf" : "-Inf");
	else {
		snprintf(s, sizeof(s), "%.15g", v);
		if (strtod(s, NULL) != v)
			snprintf(s, sizeof(s), "%.17g", v);
	}
	puts_(b, s);
}

void prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	puts_(b, "# HELP ");
	puts_(b, name);
	put(b, " ", 1);
	put_escaped(b, help, false);
	puts_(b, "\n# TYPE ");
	puts_(b, name);
	put(b, " ", 1);
	puts_(b, types[type]);
	put(b, "\n", 1);
}

/* name{a="x",b="y"[,le="..."]} */
static void put_series(struct prom_buf *b, const char *name, const char *suffix, const struct prom_label *labels,
		       size_t n_labels, const char *le)
{
	puts_(b, name);
	puts_(b, suffix);
	if (!n_labels && !le)
		return;
	put(b, "{", 1);
	for (size_t i = 0; i < n_labels; i++) {
		if (i)
			put(b, ",", 1);
		puts_(b, labels[i].name);
		put(b, "=\"", 2);
		put_escaped(b, labels[i].value ? labels[i].value : "", true);
		put(b, "\"", 1);
	}
	if (le) {
		if (n_labels)
			put(b, ",", 1);
		puts_(b, "le=\"");
		puts_(b, le);
		put(b, "\"", 1);
	}
	put(b, "}", 1);
}

void prom_sample(struct prom_buf *b, const char *name, const struct prom_label *labels, size_t n_labels,
		 double value)
{
	put_series(b, name, "", labels, n_labels, NULL);
	put(b, " ", 1);
	put_number(b, value);
	put(b, "\n", 1);
}

void prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *labels,
		    size_t n_labels, const double *bounds, size_t n_bounds, const uint64_t *counts,
		    double sum)
{
	uint64_t cumulative = 0;
	char le[40];

	for (size_t i = 0; i <= n_bounds; i++) {
		cumulative += counts[i];
		if (i < n_bounds)
			snprintf(le, sizeof(le), "%.15g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		put_series(b, name, "_bucket", labels, n_labels, le);
		put(b, " ", 1);
		put_number(b, (double)cumulative);
		put(b, "\n", 1);
	}
	put_series(b, name, "_sum", labels, n_labels, NULL);
	put(b, " ", 1);
	put_number(b, sum);
	put(b, "\n", 1);
	put_series(b, name, "_count", labels, n_labels, NULL);
	put(b, " ", 1);
	put_number(b, (double)cumulative);
	put(b, "\n", 1);
}

/* ---- erg's families ---- */

static void render_energy(struct prom_buf *b, const struct prom_erg *in)
{
	prom_family(b, "erg_energy_joules_total", PROM_COUNTER,
		    "Energy attributed to the model's workers since erg started, by source");
	for (size_t i = 0; i < in->n_models; i++) {
		const struct prom_model *m = &in->models[i];
		struct prom_label l[2] = { { "model", m->name }, { "source", "cpu" } };

		prom_sample(b, "erg_energy_joules_total", l, 2, m->cpu_joules);
		if (isfinite(m->gpu_joules)) {
			l[1].value = "gpu";
			prom_sample(b, "erg_energy_joules_total", l, 2, m->gpu_joules);
		}
	}
}

static bool any_stats(const struct prom_erg *in)
{
	for (size_t i = 0; i < in->n_models; i++)
		if (in->models[i].stats)
			return true;
	return false;
}

static void render_requests(struct prom_buf *b, const struct prom_erg *in)
{
	char code[16];

	prom_family(b, "erg_requests_total", PROM_COUNTER, "Requests completed, by HTTP status code (0: no response)");
	for (size_t i = 0; i < in->n_models; i++) {
		const struct model_stats_snapshot *s = in->models[i].stats;

		for (size_t c = 0; s && c < s->n_codes; c++) {
			struct prom_label l[2] = { { "model", in->models[i].name }, { "code", code } };

			if (s->codes[c].code == MODEL_STATS_CODE_OTHER)
				snprintf(code, sizeof(code), "other");
			else
				snprintf(code, sizeof(code), "%d", s->codes[c].code);
			prom_sample(b, "erg_requests_total", l, 2, (double)s->codes[c].count);
		}
	}
}

static void render_histograms(struct prom_buf *b, const struct prom_erg *in)
{
	static const struct {
		const char *name, *help;
		size_t offset;
	} fam[] = {
		{ "erg_request_energy_joules", "Energy per request answered 2xx",
		  offsetof(struct model_stats_snapshot, request_joules) },
		{ "erg_request_duration_seconds", "Time from request received to response complete",
		  offsetof(struct model_stats_snapshot, latency_s) },
	};

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		prom_family(b, fam[f].name, PROM_HISTOGRAM, fam[f].help);
		for (size_t i = 0; i < in->n_models; i++) {
			const struct model_stats_snapshot *s = in->models[i].stats;
			const struct model_stats_histogram *h;
			struct prom_label l = { "model", in->models[i].name };

			if (!s)
				continue;
			h = (const void *)((const char *)s + fam[f].offset);
			prom_histogram(b, fam[f].name, &l, 1, h->bounds, h->n_bounds, h->buckets, h->sum);
		}
	}
}

static void render_workers(struct prom_buf *b, const struct prom_erg *in)
{
	prom_family(b, "erg_worker_up", PROM_GAUGE, "1 if the worker answers its health check, else 0");
	for (size_t i = 0; i < in->n_workers; i++) {
		struct prom_label l[2] = { { "model", in->workers[i].model }, { "worker", in->workers[i].worker } };

		prom_sample(b, "erg_worker_up", l, 2, in->workers[i].up ? 1 : 0);
	}
}

static void render_ledger(struct prom_buf *b, const struct prom_ledger *lg)
{
	static const enum ledger_regime regimes[] = { LEDGER_UNDETERMINED, LEDGER_OVER_SUPPLIED, LEDGER_CRITICAL,
						      LEDGER_UNDER_SUPPLIED };
	const struct {
		const char *name, *help;
		double v;
	} totals[] = {
		{ "erg_ledger_demand_joules_total", "Energy demanded in closed ledger slots", lg->demand_joules },
		{ "erg_ledger_supply_joules_total", "Baseline supply of closed ledger slots", lg->supply_joules },
		{ "erg_ledger_aux_joules_total", "Auxiliary energy drawn beyond supply and storage", lg->aux_joules },
		{ "erg_ledger_waste_joules_total", "Supply neither used nor stored", lg->waste_joules },
	};

	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		prom_family(b, totals[i].name, PROM_COUNTER, totals[i].help);
		prom_sample(b, totals[i].name, NULL, 0, totals[i].v);
	}
	prom_family(b, "erg_ledger_storage_joules", PROM_GAUGE, "Energy in storage now");
	prom_sample(b, "erg_ledger_storage_joules", NULL, 0, lg->storage_joules);
	prom_family(b, "erg_ledger_regime", PROM_GAUGE,
		    "Supply regime from the drift test: 1 for the current regime, 0 for the others");
	for (size_t i = 0; i < sizeof(regimes) / sizeof(regimes[0]); i++) {
		struct prom_label l = { "regime", ledger_regime_name(regimes[i]) };

		prom_sample(b, "erg_ledger_regime", &l, 1, lg->regime == regimes[i] ? 1 : 0);
	}
}

void prom_ledger_from(struct prom_ledger *out, const struct ledger *l)
{
	const struct ledger_stats *st = ledger_stats(l);

	out->demand_joules = st->total_demand;
	out->supply_joules = st->total_supply;
	out->aux_joules = st->total_aux;
	out->waste_joules = st->total_waste;
	out->storage_joules = ledger_storage(l);
	out->regime = st->regime;
}

static void route_family(struct prom_buf *b, const struct prom_steering *st, const char *name,
			 enum prom_type type, const char *help, int what)
{
	prom_family(b, name, type, help);
	for (size_t i = 0; i < st->n_routes; i++) {
		const struct prom_route *r = &st->routes[i];
		char budget[16];
		struct prom_label l[3] = { { "pool", r->pool }, { "model", r->model }, { "budget", budget } };
		double v = what == 0 ? r->share : what == 1 ? r->weight :
			   what == 2 ? (double)r->routed : r->joules_per_request;

		snprintf(budget, sizeof(budget), "%u", r->budget);
		prom_sample(b, name, l, 3, v);
	}
}

static void group_family(struct prom_buf *b, const struct prom_steering *st, const char *name,
			 enum prom_type type, const char *help, int what)
{
	prom_family(b, name, type, help);
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct prom_route_group *g = &st->groups[i];
		struct prom_label l[1] = { { "pool", g->pool } };

		prom_sample(b, name, l, 1, what == 0 ? g->expected_accuracy : what == 1 ? (double)g->refused
							 : g->feasible ? 1.0 : 0.0);
	}
}

void prom_render_steering(struct prom_buf *b, const struct prom_steering *st)
{
	route_family(b, st, "erg_route_share", PROM_GAUGE,
		     "Share of the pool's steered requests (\"model\": \"auto\" or a pool) routed to the "
		     "option so far", 0);
	route_family(b, st, "erg_route_weight", PROM_GAUGE, "The option's weight in the pool's routing mix now", 1);
	route_family(b, st, "erg_route_requests_total", PROM_COUNTER,
		     "Steered requests of the pool routed to the option", 2);
	route_family(b, st, "erg_route_joules_per_request", PROM_GAUGE,
		     "Estimated joules per request of the option (priors, then measurements)", 3);
	group_family(b, st, "erg_expected_accuracy", PROM_GAUGE,
		     "Mean expected accuracy of the pool's steered requests so far", 0);
	prom_family(b, "erg_accuracy_target", PROM_GAUGE, "The config's accuracy target");
	prom_sample(b, "erg_accuracy_target", NULL, 0, st->accuracy_target);
	group_family(b, st, "erg_route_refused_total", PROM_COUNTER,
		     "Steered requests answered 503: no option of the pool meets the accuracy target", 1);
	group_family(b, st, "erg_route_feasible", PROM_GAUGE,
		     "1 if the pool's options can meet the accuracy target, 0 if its requests get 503", 2);
}

void prom_render_erg(struct prom_buf *b, const struct prom_erg *in)
{
	render_energy(b, in);
	if (any_stats(in)) {
		render_requests(b, in);
		render_histograms(b, in);
	}
	if (in->n_workers)
		render_workers(b, in);
	if (in->ledger)
		render_ledger(b, in->ledger);
	if (in->have_dropped) {
		prom_family(b, "erg_bpf_events_dropped_total", PROM_COUNTER,
			    "Kernel events lost because a ring buffer was full");
		prom_sample(b, "erg_bpf_events_dropped_total", NULL, 0, (double)in->bpf_events_dropped);
	}
}

/* Prometheus text exposition format 0.0.4 for erg's /metrics (erg serve,
 * erg top --metrics).
 *
 * Two layers:
 *   - a writer into a growing buffer: a family (HELP and TYPE, once), then
 *     its samples with labels (values escaped: backslash, double quote,
 *     newline) and histograms (_bucket{le=...} cumulative up to +Inf, _sum,
 *     _count);
 *   - prom_render_erg(): every erg family from plain structs, so erg serve
 *     and erg top render the same names from what each has. Names follow
 *     Kepler's style (unit suffix, _total on counters):
 *       erg_energy_joules_total{model,source="cpu|gpu"}     counter
 *       erg_requests_total{model,code}                       counter
 *       erg_request_energy_joules{model}                     histogram
 *       erg_request_duration_seconds{model}                  histogram
 *       erg_worker_up{model,worker}                          gauge 0/1
 *       erg_ledger_{demand,supply,aux,waste}_joules_total    counter
 *       erg_ledger_storage_joules                            gauge
 *       erg_ledger_regime{regime}                            gauge, 1 for the current
 *       erg_bpf_events_dropped_total                         counter
 *   and with steering ("model": "auto", erg serve):
 *       erg_route_share{model,budget}       gauge, share of auto requests so far
 *       erg_route_weight{model,budget}      gauge, the option's weight in the mix now
 *       erg_route_requests_total{model,budget}               counter
 *       erg_route_joules_per_request{model,budget}           gauge, the estimate
 *       erg_expected_accuracy, erg_accuracy_target           gauge
 *       erg_route_refused_total             counter, auto requests answered 503
 * Writing never fails half-way silently: after an allocation failure the
 * buffer is marked and prom_buf_ok() says false. */
#ifndef ERG_PROM_H
#define ERG_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ledger.h"

struct model_stats_snapshot;
struct model_stats_histogram;

struct prom_buf {
	char *data;	/* NUL-terminated text, len bytes */
	size_t len, cap;
	bool failed;	/* an allocation failed: the text is incomplete */
};

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct prom_label {
	const char *name;	/* [a-zA-Z_][a-zA-Z0-9_]* (not checked: erg's own names) */
	const char *value;	/* any text; escaped when written */
};

void prom_buf_init(struct prom_buf *b);
void prom_buf_free(struct prom_buf *b);
/* Empty it, keeping the memory (one buffer per scrape loop). */
void prom_buf_reset(struct prom_buf *b);
bool prom_buf_ok(const struct prom_buf *b);

/* # HELP name help / # TYPE name type. Once per family, before its samples. */
void prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help);
/* name{labels} value. NaN and infinities are written as NaN, +Inf, -Inf. */
void prom_sample(struct prom_buf *b, const char *name, const struct prom_label *labels, size_t n_labels,
		 double value);
/* name_bucket{labels,le="..."} for each bound, then le="+Inf", name_sum,
 * name_count. counts[i] is per bucket (not cumulative), n_bounds + 1 long,
 * the last for values above every bound. */
void prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *labels,
		    size_t n_labels, const double *bounds, size_t n_bounds, const uint64_t *counts,
		    double sum);

/* ---- erg's families ---- */

struct prom_model {
	const char *name;
	double cpu_joules;	/* attributed since start, CPU */
	double gpu_joules;	/* attributed since start, GPU; NAN: no GPU part */
	/* Request statistics (erg serve), or NULL: no request families for it. */
	const struct model_stats_snapshot *stats;
};

struct prom_worker {
	const char *model;
	const char *worker;	/* "127.0.0.1:8091" */
	bool up;
};

struct prom_ledger {
	double demand_joules, supply_joules, aux_joules, waste_joules;	/* totals */
	double storage_joules;	/* level now */
	enum ledger_regime regime;
};

/* The ledger's totals, storage level and regime now. */
void prom_ledger_from(struct prom_ledger *out, const struct ledger *l);

/* One (model, budget) option as one group of the router sees it: "auto"
 * or a [pool NAME]. */
struct prom_route {
	const char *pool;
	const char *model;
	unsigned budget;
	double share, weight;
	uint64_t routed;
	double joules_per_request;
};

/* A group of steered requests: "auto" or a pool. */
struct prom_route_group {
	const char *pool;
	double expected_accuracy;	/* NAN before its first request */
	uint64_t refused;
	bool feasible;			/* its policy can meet the target */
};

struct prom_steering {
	const struct prom_route *routes;
	size_t n_routes;
	const struct prom_route_group *groups;
	size_t n_groups;
	double accuracy_target;
};

struct prom_erg {
	const struct prom_model *models;
	size_t n_models;
	const struct prom_worker *workers;	/* erg serve's upstreams; may be none */
	size_t n_workers;
	const struct prom_ledger *ledger;	/* NULL: no ledger families */
	bool have_dropped;
	uint64_t bpf_events_dropped;
};

/* Append every family that has data. Families with no series are left out,
 * except the counters of every model (0 until something is measured). */
void prom_render_erg(struct prom_buf *b, const struct prom_erg *in);
/* The routing families (erg serve with steering), after prom_render_erg. */
void prom_render_steering(struct prom_buf *b, const struct prom_steering *st);

#endif

/* Per-model request statistics; see model_stats.h. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ledger.h"
#include "model_stats.h"
#include "request_energy.h"

const double model_stats_latency_bounds[MODEL_STATS_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 200, 300,
};

const double model_stats_energy_bounds[MODEL_STATS_ENERGY_BUCKETS] = {
	0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5,
	10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
};

#define CODE_SLOTS 600	/* status 100..599 by value; slot 0 for "no response" */

struct one_model {
	uint64_t requests, requests_ok;
	uint64_t codes[CODE_SLOTS];
	double joules;
	struct ledger_moments joules_per_request, events_per_request;
	struct model_stats_histogram latency_s, request_joules;
};

struct model_stats {
	pthread_mutex_t lock;
	size_t n_models;
	struct one_model *models;
};

static void histogram_init(struct model_stats_histogram *h, const double *bounds, size_t n_bounds)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->n_bounds = n_bounds;
	h->p50 = h->p90 = h->p99 = NAN;
}

struct model_stats *model_stats_new(size_t n_models)
{
	struct model_stats *ms = calloc(1, sizeof(*ms));

	if (!ms)
		return NULL;
	ms->models = calloc(n_models ? n_models : 1, sizeof(*ms->models));
	if (!ms->models) {
		free(ms);
		return NULL;
	}
	ms->n_models = n_models;
	for (size_t i = 0; i < n_models; i++) {
		histogram_init(&ms->models[i].latency_s, model_stats_latency_bounds,
			       MODEL_STATS_LATENCY_BUCKETS);
		histogram_init(&ms->models[i].request_joules, model_stats_energy_bounds,
			       MODEL_STATS_ENERGY_BUCKETS);
	}
	pthread_mutex_init(&ms->lock, NULL);
	return ms;
}

void model_stats_free(struct model_stats *ms)
{
	if (!ms)
		return;
	pthread_mutex_destroy(&ms->lock);
	free(ms->models);
	free(ms);
}

size_t model_stats_models(const struct model_stats *ms)
{
	return ms->n_models;
}

/* A NaN or negative value (a clock that stepped) counts as 0. */
static void histogram_add(struct model_stats_histogram *h, double x)
{
	size_t i = 0;

	if (!(x > 0))
		x = 0;
	while (i < h->n_bounds && x > h->bounds[i])
		i++;
	h->buckets[i]++;
	if (!h->count || x < h->min)
		h->min = x;
	if (!h->count || x > h->max)
		h->max = x;
	h->count++;
	h->sum += x;
}

void model_stats_add(struct model_stats *ms, const struct request_record *rec)
{
	struct one_model *m;
	double joules = rec->nj / 1e9;
	int code = rec->status >= 100 && rec->status < CODE_SLOTS ? rec->status : 0;

	if (rec->model >= ms->n_models)
		return;
	pthread_mutex_lock(&ms->lock);
	m = &ms->models[rec->model];
	m->requests++;
	m->codes[code]++;
	m->joules += joules;
	histogram_add(&m->latency_s, rec->latency_s);
	if (code >= 200 && code < 300) {
		m->requests_ok++;
		ledger_moments_add(&m->joules_per_request, joules);
		ledger_moments_add(&m->events_per_request, (double)rec->sse_events);
		histogram_add(&m->request_joules, joules);
	}
	pthread_mutex_unlock(&ms->lock);
}

double model_stats_quantile(const struct model_stats_histogram *h, double q)
{
	double rank, below = 0, lo, hi, x;
	size_t i;

	if (!h->count || !(q >= 0 && q <= 1))
		return NAN;
	rank = q * h->count;
	for (i = 0; i < h->n_bounds; i++) {
		if (below + h->buckets[i] >= rank && h->buckets[i])
			break;
		below += h->buckets[i];
	}
	lo = i ? h->bounds[i - 1] : 0;
	hi = i < h->n_bounds ? h->bounds[i] : h->max;
	if (lo < h->min)
		lo = h->min;
	if (hi > h->max)
		hi = h->max;
	if (hi < lo)
		hi = lo;
	x = h->buckets[i] ? lo + (hi - lo) * (rank - below) / h->buckets[i] : hi;
	return fmin(fmax(x, h->min), h->max);
}

static void moments_out(const struct ledger_moments *in, struct model_stats_moments *out)
{
	out->n = in->n;
	out->mean = in->n ? in->mean : NAN;
	out->sd = ledger_moments_sigma(in);
}

static void quantiles(struct model_stats_histogram *h)
{
	h->p50 = model_stats_quantile(h, 0.50);
	h->p90 = model_stats_quantile(h, 0.90);
	h->p99 = model_stats_quantile(h, 0.99);
}

/* The codes seen, ascending; the tail beyond the snapshot's room summed. */
static void codes_out(const struct one_model *m, struct model_stats_snapshot *out)
{
	out->n_codes = 0;
	for (int c = 0; c < CODE_SLOTS; c++) {
		if (!m->codes[c])
			continue;
		if (out->n_codes < MODEL_STATS_CODES) {
			out->codes[out->n_codes].code = c;
			out->codes[out->n_codes++].count = m->codes[c];
		} else {
			out->codes[MODEL_STATS_CODES - 1].code = MODEL_STATS_CODE_OTHER;
			out->codes[MODEL_STATS_CODES - 1].count += m->codes[c];
		}
	}
}

int model_stats_snapshot(struct model_stats *ms, size_t m, struct model_stats_snapshot *out)
{
	const struct one_model *src;

	if (m >= ms->n_models)
		return -1;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ms->lock);
	src = &ms->models[m];
	out->requests = src->requests;
	out->requests_ok = src->requests_ok;
	out->joules = src->joules;
	codes_out(src, out);
	moments_out(&src->joules_per_request, &out->joules_per_request);
	moments_out(&src->events_per_request, &out->events_per_request);
	out->latency_s = src->latency_s;
	out->request_joules = src->request_joules;
	pthread_mutex_unlock(&ms->lock);
	quantiles(&out->latency_s);
	quantiles(&out->request_joules);
	return 0;
}

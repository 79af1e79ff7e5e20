/* Per-model request statistics for erg serve: what the live view, /metrics
 * and steering read.
 *
 * Each completed request (a request_record) adds to its model:
 *   - counts by HTTP status code (every request);
 *   - the latency histogram (every request);
 *   - Welford count / mean / SD of joules per request and of SSE events
 *     (tokens) per request, and the J/request histogram: requests answered
 *     2xx only, so a failed or abandoned request does not pull the estimate
 *     that routing uses (its joules still count in the model's energy).
 * Histograms have fixed bounds (MODEL_STATS_*_BOUNDS), so memory is bounded
 * whatever the traffic; p50/p90/p99 are estimated from them by linear
 * interpolation inside the bucket (as Prometheus' histogram_quantile),
 * clamped to the smallest and largest value seen.
 *
 * Threads: model_stats_add from the main thread, snapshots from any thread
 * (the /metrics thread, the router); one mutex, held for a copy. */
#ifndef ERG_MODEL_STATS_H
#define ERG_MODEL_STATS_H

#include <stddef.h>
#include <stdint.h>

struct request_record;

/* Upper bounds of the histogram buckets ("le"); a last +Inf bucket follows. */
#define MODEL_STATS_LATENCY_BUCKETS 16	/* 5 ms .. 300 s */
#define MODEL_STATS_ENERGY_BUCKETS 22	/* 1 mJ .. 10 kJ, 1-2-5 steps */
extern const double model_stats_latency_bounds[MODEL_STATS_LATENCY_BUCKETS];
extern const double model_stats_energy_bounds[MODEL_STATS_ENERGY_BUCKETS];

/* Distinct status codes in a snapshot, ascending; beyond that many the rest
 * are summed in the last entry, code MODEL_STATS_CODE_OTHER. Codes outside
 * 100..599 (no response: the client left, the worker failed) count as 0. */
#define MODEL_STATS_CODES 24
#define MODEL_STATS_CODE_OTHER (-1)

struct model_stats_moments {
	uint64_t n;
	double mean;
	double sd;	/* sample SD (n-1); NAN below two samples */
};

struct model_stats_histogram {
	uint64_t count;		/* observations (the +Inf bucket, cumulative) */
	double sum;
	double min, max;	/* observed; 0 when count is 0 */
	/* Per bucket, not cumulative: bucket i counts values in
	 * (bounds[i-1], bounds[i]]; the last one values above every bound. */
	uint64_t buckets[MODEL_STATS_ENERGY_BUCKETS + 1];
	size_t n_bounds;	/* MODEL_STATS_LATENCY_BUCKETS or ..._ENERGY_BUCKETS */
	const double *bounds;
	double p50, p90, p99;	/* estimates; NAN when count is 0 */
};

struct model_stats_snapshot {
	uint64_t requests;		/* completed, any status */
	uint64_t requests_ok;		/* answered 2xx */
	struct { int code; uint64_t count; } codes[MODEL_STATS_CODES];
	size_t n_codes;
	double joules;			/* sum over every request, 2xx or not */
	struct model_stats_moments joules_per_request;	/* 2xx */
	struct model_stats_moments events_per_request;	/* 2xx; SSE events (tokens) */
	struct model_stats_histogram latency_s;		/* every request */
	struct model_stats_histogram request_joules;	/* 2xx */
};

struct model_stats;

struct model_stats *model_stats_new(size_t n_models);
void model_stats_free(struct model_stats *ms);

/* Count one completed request in its model (rec->model; ignored when out of
 * range). */
void model_stats_add(struct model_stats *ms, const struct request_record *rec);

/* A consistent copy of model m's statistics; -1 if m is out of range. */
int model_stats_snapshot(struct model_stats *ms, size_t m, struct model_stats_snapshot *out);

size_t model_stats_models(const struct model_stats *ms);

/* The q-quantile (0..1) estimated from a histogram; NAN when it is empty. */
double model_stats_quantile(const struct model_stats_histogram *h, double q);

#endif

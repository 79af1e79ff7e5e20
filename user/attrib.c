/* Kepler-style split of node energy among workers by CPU-time share. */
#include <math.h>
#include "attrib.h"

uint64_t attrib_nj(double joules)
{
	if (!(joules > 0.0))
		return 0;
	return (uint64_t)llround(joules * 1e9);
}

double attrib_joules(uint64_t nj)
{
	return (double)nj / 1e9;
}

struct attrib_result attrib_split(const struct attrib_tick *tick, uint64_t *worker_nj)
{
	struct attrib_result res = { 0, tick->total_nj };
	uint64_t idle = tick->idle_nj < tick->total_nj ? tick->idle_nj : tick->total_nj;
	uint64_t active = tick->total_nj - idle;
	double sum_cpu = 0.0, denom;

	for (size_t i = 0; i < tick->n_workers; i++) {
		worker_nj[i] = 0;
		if (tick->worker_cpu_s[i] > 0.0)
			sum_cpu += tick->worker_cpu_s[i];
	}
	denom = tick->node_busy_cpu_s > sum_cpu ? tick->node_busy_cpu_s : sum_cpu;
	if (!(denom > 0.0) || active == 0)
		return res;

	for (size_t i = 0; i < tick->n_workers; i++) {
		double share = tick->worker_cpu_s[i] > 0.0 ? tick->worker_cpu_s[i] / denom : 0.0;
		/* floor: rounding never hands out more than the active energy */
		uint64_t nj = (uint64_t)floor((double)active * share);

		if (nj > active - res.attributed_nj)
			nj = active - res.attributed_nj;
		worker_nj[i] = nj;
		res.attributed_nj += nj;
	}
	res.unattributed_nj = tick->total_nj - res.attributed_nj;
	return res;
}

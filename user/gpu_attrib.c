/* Per-device split of GPU energy by busy share (attrib_split per device). */
#include <stdlib.h>
#include "gpu_attrib.h"

struct attrib_result gpu_attrib_split(const struct gpu_attrib_tick *tick, uint64_t *worker_nj)
{
	struct attrib_result sum = { 0, 0 };
	size_t n = tick->n_workers ? tick->n_workers : 1;
	double *busy = calloc(n, sizeof(*busy));
	uint64_t *nj = calloc(n, sizeof(*nj));

	for (size_t d = 0; d < tick->n_devices; d++) {
		const struct gpu_attrib_device *dev = &tick->devices[d];
		struct attrib_tick in = { dev->total_nj, dev->idle_nj, dev->busy_s, busy, tick->n_workers };
		struct attrib_result r;

		if (!busy || !nj) {	/* out of memory: the device's energy stays unattributed */
			sum.unattributed_nj += dev->total_nj;
			continue;
		}
		for (size_t w = 0; w < tick->n_workers; w++)
			busy[w] = tick->worker_device[w] == (int)d ? tick->worker_busy_s[w] : 0.0;
		r = attrib_split(&in, nj);
		for (size_t w = 0; w < tick->n_workers; w++)
			worker_nj[w] += nj[w];
		sum.attributed_nj += r.attributed_nj;
		sum.unattributed_nj += r.unattributed_nj;
	}
	free(busy);
	free(nj);
	return sum;
}

/* GPU busy-time estimator: cumulative window readings -> busy s per tick. */
#include <stdlib.h>
#include "erg.h"
#include "gpu_busy.h"

uint64_t gpu_busy_cumulative_ns(uint64_t closed_ns, uint64_t window, uint64_t now_ns)
{
	uint64_t d;

	if (!ERG_GPU_WIN_SLOTS(window))
		return closed_ns;
	/* the start is kept mod 2^48: so is the difference; above 2^47 (39 h)
	 * it is a start after now (clocks read a moment apart), i.e. 0, as on
	 * the BPF side */
	d = (now_ns - ERG_GPU_WIN_SINCE(window)) & ERG_GPU_WIN_SINCE_MASK;
	return closed_ns + (d > (ERG_GPU_WIN_SINCE_MASK >> 1) ? 0 : d);
}

int gpu_busy_init(struct gpu_busy *b, size_t n_workers)
{
	b->n = n_workers;
	b->reported_ns = calloc(n_workers ? n_workers : 1, sizeof(*b->reported_ns));
	return b->reported_ns ? 0 : -1;
}

void gpu_busy_tick(struct gpu_busy *b, const uint64_t *cumulative_ns, double max_s, double *busy_s)
{
	uint64_t max_ns = max_s > 0 ? (uint64_t)(max_s * 1e9) : 0;

	for (size_t w = 0; w < b->n; w++) {
		uint64_t d = cumulative_ns[w] > b->reported_ns[w] ? cumulative_ns[w] - b->reported_ns[w] : 0;

		if (d > max_ns)
			d = max_ns;	/* the rest is reported in later ticks */
		b->reported_ns[w] += d;
		busy_s[w] = (double)d / 1e9;
	}
}

void gpu_busy_free(struct gpu_busy *b)
{
	free(b->reported_ns);
	b->reported_ns = NULL;
	b->n = 0;
}

double gpu_busy_device_s(const double *busy_s, size_t n, double dt_s)
{
	double sum = 0.0;

	for (size_t i = 0; i < n; i++)
		if (busy_s[i] > 0)
			sum += busy_s[i];
	if (!(dt_s > 0))
		return 0.0;
	return sum < dt_s ? sum : dt_s;
}

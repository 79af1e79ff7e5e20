/* Energy attribution, the method Kepler uses: each tick, the node's active
 * energy (total minus the idle floor) is split among tracked workers by their
 * share of the node's busy CPU time; idle energy and the share of untracked
 * work stay unattributed.
 *
 * Joules are carried as integer nanojoules so that, every tick and in every
 * running total, attributed + unattributed = total holds exactly. */
#ifndef ERG_ATTRIB_H
#define ERG_ATTRIB_H

#include <stddef.h>
#include <stdint.h>

struct attrib_tick {
	uint64_t total_nj;		/* node energy this tick */
	uint64_t idle_nj;		/* idle floor, never attributed (clamped to total) */
	double node_busy_cpu_s;		/* busy CPU seconds of the whole node this tick */
	const double *worker_cpu_s;	/* on-CPU seconds of each worker this tick */
	size_t n_workers;
};

struct attrib_result {
	uint64_t attributed_nj;
	uint64_t unattributed_nj;	/* total - attributed, exactly */
};

/* Writes worker_nj[0..n_workers). If the workers' CPU time exceeds the
 * node's busy time (the two clocks are read a moment apart), the workers'
 * sum is the denominator, so the shares never add up to more than 1. */
struct attrib_result attrib_split(const struct attrib_tick *tick, uint64_t *worker_nj);

/* Joules <-> integer nanojoules (negative and NaN inputs give 0). */
uint64_t attrib_nj(double joules);
double attrib_joules(uint64_t nj);

#endif

/* Runs erg sim's jobs on up to 8 threads, with a progress line on stderr
 * for anything that takes over a second. */
#ifndef ERG_SIM_POOL_H
#define ERG_SIM_POOL_H

#include <stdbool.h>
#include "sim_plan.h"

/* Run jobs[0..n-1], each of `slots` slots. series: NULL, or n * slots
 * entries, job i's at i * slots. quiet: no progress line. Sets *elapsed_s.
 * Every job's rc says how its run went. */
void sim_pool_run(struct sim_job *jobs, int n, long slots, struct sim_slot *series, bool quiet,
		  double *elapsed_s);

#endif

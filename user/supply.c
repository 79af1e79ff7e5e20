/* docs/theory.md §3: one ledger slot, demand against baseline supply and storage. */
#include "supply.h"

void supply_step(double demand, double supply, double capacity, double *storage,
		 struct slot_outcome *out)
{
	double level = *storage + supply - demand;

	out->demand = demand;
	out->supply = supply;
	out->aux = 0.0;
	out->waste = 0.0;
	if (capacity < 0.0)
		capacity = 0.0;
	if (level < 0.0) {		/* shortfall: met by auxiliary energy */
		out->aux = -level;
		level = 0.0;
	} else if (level > capacity) {	/* surplus beyond storage: wasted */
		out->waste = level - capacity;
		level = capacity;
	}
	*storage = level;
	out->storage = level;
}

/* erg sim's files: the SVG chart of auxiliary energy, waste and cost
 * against supply (--svg), and the per-slot CSV of one supply level
 * (--series). */
#ifndef ERG_SIM_CHART_H
#define ERG_SIM_CHART_H

#include <stdio.h>
#include "sim_report.h"

/* Write the chart to f and close it. 0 ok, -1 write error, -2 no memory. */
int sim_chart_svg(FILE *f, const struct sim_plan *p, const struct sim_headline *h);
/* Write the sweep jobs' per-slot series (job i's at series + i * slots) to
 * f and close it. 0 ok, -1 write error. */
int sim_chart_series(FILE *f, const struct sim_plan *p, const struct sim_slot *series);

#endif

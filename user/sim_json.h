/* erg sim --json: the whole result as one JSON document (non-finite values,
 * such as a closed form that does not apply, are null). */
#ifndef ERG_SIM_JSON_H
#define ERG_SIM_JSON_H

#include "sim_report.h"

/* Print the document on stdout. 0 ok, -1 out of memory. */
int sim_json_print(const struct sim_plan *p, const struct sim_headline *h);

#endif

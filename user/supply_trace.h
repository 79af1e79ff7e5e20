/* Baseline supply over time (docs/theory.md §3): a constant, or a CSV trace such as a
 * solar day. CSV: optional header line (a first row with no number in it,
 * e.g. "seconds,watts"), then "seconds,watts" rows with increasing seconds;
 * '#' starts a comment. Every number must be finite and in range (seconds 0
 * to SUPPLY_TRACE_MAX_SECONDS, watts 0 to SUPPLY_TRACE_MAX_WATTS); "0,nan" is
 * an error, not a header. The file is read as untrusted input (textfile.h:
 * regular files only, at most TEXTFILE_MAX_TRACE bytes). Between rows the
 * power is interpolated linearly; past the last row the trace repeats
 * (period = last time + the last step), so a one-day trace serves a
 * multi-day run. */
#ifndef ERG_SUPPLY_TRACE_H
#define ERG_SUPPLY_TRACE_H

#include <stddef.h>

struct supply_trace;

#define SUPPLY_TRACE_MAX_WATTS 1e12	/* a terawatt: beyond any node or site */
#define SUPPLY_TRACE_MAX_SECONDS 1e9	/* about 31 years */

/* Load a CSV trace. NULL on failure with "FILE:LINE: problem" in err (the
 * file name and echoed text escaped). */
struct supply_trace *supply_trace_load(const char *path, char *err, size_t errlen);
/* Watts at time t_s (seconds since the start of the run). */
double supply_trace_watts(const struct supply_trace *trace, double t_s);
/* Joules supplied over [t0_s, t1_s) (the integral of the watts). */
double supply_trace_joules(const struct supply_trace *trace, double t0_s, double t1_s);
/* Mean watts over one period of the trace. */
double supply_trace_mean_watts(const struct supply_trace *trace);
void supply_trace_free(struct supply_trace *trace);

#endif

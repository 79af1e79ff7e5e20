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

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

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
/* Length of one period, seconds. */
double supply_trace_period(const struct supply_trace *trace);

/* Where a live run enters the trace. A trace whose period is one day
 * (a solar day, a tariff day) describes the hours of the clock: by default
 * its second 0 is local midnight, so attaching at 14:00 starts at the
 * trace's 14:00 row. Other traces start at the beginning of the run.
 * --supply-trace-start now|HH:MM overrides: "now" starts any trace at
 * its second 0; HH:MM puts second 0 at that local time of day. */
enum supply_trace_start_mode {
	SUPPLY_TRACE_START_AUTO,	/* midnight for a one-day trace, else now */
	SUPPLY_TRACE_START_NOW,
	SUPPLY_TRACE_START_CLOCK,	/* at clock_s seconds after local midnight */
};
struct supply_trace_start {
	enum supply_trace_start_mode mode;
	double clock_s;
};
#define SUPPLY_TRACE_DAY_S 86400.0

/* "now" or "HH:MM" (00:00 to 23:59). 0, or -1 with a message naming
 * --supply-trace-start and the accepted forms. */
int supply_trace_parse_start(const char *text, struct supply_trace_start *out,
			     char *err, size_t errlen);
/* Whether the trace's period is one day (within a second). */
bool supply_trace_spans_day(const struct supply_trace *trace);
/* The trace time, in [0, period), at the moment the run starts, given the
 * local time of day then (seconds after midnight). Add it to run seconds
 * before calling supply_trace_watts / supply_trace_joules. */
double supply_trace_start_offset(const struct supply_trace *trace,
				 const struct supply_trace_start *start, double time_of_day_s);
/* Seconds after local midnight at unix time t (local time zone, TZ). */
double supply_trace_time_of_day(time_t t);

#endif

/* Supply traces (docs/theory.md §3): piecewise-linear watts over one period,
 * repeated. Integrals come from a cumulative table, so a slot's joules cost
 * two binary searches however long the run. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "errbuf.h"
#include "supply_trace.h"
#include "textfile.h"

struct supply_trace {
	int n;			/* breakpoints covering [0, period], first at 0, last at period */
	double *t, *w;		/* seconds, watts */
	double *cum;		/* joules from 0 to t[i] */
	double period;
};

/* Cut the blanks around a field, in place. */
static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* A field strtod reads a number from at all ("nan" and "inf" included):
 * only a first row without one is a header. */
static bool numeric(const char *s)
{
	char *end;

	strtod(s, &end);
	return end != s;
}

/* Split "seconds,watts" (blanks allowed, '#' starts a comment) and check
 * both numbers: finite, whole field, in range. 0, 1 for a header (first row
 * only, not numeric at all), -1 with the message in err. */
static int parse_row(char *line, const char *where, bool first, double *t, double *w,
		     char *err, size_t errlen)
{
	char opt[TEXTFILE_QUOTED_MAX + 40], q[80];
	char *comma, *sec, *watts;

	line[strcspn(line, "#")] = '\0';
	comma = strchr(line, ',');
	if (comma)
		*comma = '\0';
	sec = trim(line);
	watts = comma ? trim(comma + 1) : NULL;
	if (first && !numeric(sec) && (!watts || !numeric(watts)))
		return 1;
	if (!watts || strchr(watts, ',')) {
		if (comma)
			*comma = ',';
		errbuf_set(err, errlen, "%s: expected a 'seconds,watts' row, got '%s'", where,
			   cli_quote(line, q, sizeof(q)));
		return -1;
	}
	snprintf(opt, sizeof(opt), "%s: seconds", where);
	if (cli_double(opt, sec, 0, SUPPLY_TRACE_MAX_SECONDS, "seconds", t, err, errlen))
		return -1;
	snprintf(opt, sizeof(opt), "%s: watts", where);
	if (cli_double(opt, watts, 0, SUPPLY_TRACE_MAX_WATTS, "watts", w, err, errlen))
		return -1;
	return 0;
}

static int push(struct supply_trace *tr, int *cap, double t, double w)
{
	if (tr->n == *cap) {
		int nc = *cap ? 2 * *cap : 64;
		double *nt = realloc(tr->t, sizeof(double) * nc);
		if (!nt)
			return -1;
		tr->t = nt;
		double *nw = realloc(tr->w, sizeof(double) * nc);
		if (!nw)
			return -1;
		tr->w = nw;
		*cap = nc;
	}
	tr->t[tr->n] = t;
	tr->w[tr->n] = w;
	tr->n++;
	return 0;
}

/* The rows of the file, checked, into tr. 0, or -1 with the message in err. */
static int read_rows(struct textfile *tf, struct supply_trace *tr, int *cap, char *err, size_t errlen)
{
	char where[TEXTFILE_QUOTED_MAX + 16];
	bool first = true;
	char *line;

	while ((line = textfile_next_line(tf))) {
		double t, w;
		char *p = line;
		int rc;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		snprintf(where, sizeof(where), "%s:%d", tf->name, tf->lineno);
		rc = parse_row(p, where, first, &t, &w, err, errlen);
		first = false;
		if (rc == 1)
			continue;	/* the header */
		if (rc < 0)
			return -1;
		/* a step under a nanosecond would make the period denormal */
		if (tr->n && !(t - tr->t[tr->n - 1] >= 1e-9)) {
			errbuf_set(err, errlen, "%s: seconds must increase, by at least 1e-9 (got %g after %g)",
				   where, t, tr->t[tr->n - 1]);
			return -1;
		}
		if (push(tr, cap, t, w)) {
			errbuf_set(err, errlen, "%s: out of memory", where);
			return -1;
		}
	}
	if (tr->n == 0) {
		errbuf_set(err, errlen, "%s:%d: no 'seconds,watts' rows in the trace", tf->name, tf->lineno);
		return -1;
	}
	return 0;
}

struct supply_trace *supply_trace_load(const char *path, char *err, size_t errlen)
{
	struct supply_trace *tr = NULL;
	struct textfile tf;
	int cap = 0;

	if (textfile_load(&tf, path, "supply trace", TEXTFILE_MAX_TRACE, err, errlen))
		return NULL;
	tr = calloc(1, sizeof(*tr));
	if (!tr) {
		errbuf_set(err, errlen, "supply trace '%s': out of memory", tf.name);
		textfile_free(&tf);
		return NULL;
	}
	if (read_rows(&tf, tr, &cap, err, errlen)) {
		textfile_free(&tf);
		supply_trace_free(tr);
		return NULL;
	}
	textfile_free(&tf);

	/* Close the period: one row is a constant; otherwise the period is the
	 * last time plus the last step and the trace wraps to its first row. */
	double period, w_first = tr->w[0];
	if (tr->n == 1) {
		period = tr->t[0] >= 1e-9 ? tr->t[0] : 1.0;	/* a constant: any period serves */
		double w = tr->w[0];
		tr->n = 0;
		if (push(tr, &cap, 0.0, w) || push(tr, &cap, period, w))
			goto oom;
	} else {
		period = tr->t[tr->n - 1] + (tr->t[tr->n - 1] - tr->t[tr->n - 2]);
		double t_first = tr->t[0];
		if (t_first > 0.0) {
			/* value at 0 on the wrap segment from (t_last - period, w_last) to (t_first, w_first) */
			double t_last = tr->t[tr->n - 1] - period, w_last = tr->w[tr->n - 1];
			double w0 = w_last + (w_first - w_last) * (0.0 - t_last) / (t_first - t_last);
			if (push(tr, &cap, 0.0, 0.0))
				goto oom;
			memmove(tr->t + 1, tr->t, sizeof(double) * (tr->n - 1));
			memmove(tr->w + 1, tr->w, sizeof(double) * (tr->n - 1));
			tr->t[0] = 0.0;
			tr->w[0] = w0;
		}
		if (push(tr, &cap, period, tr->w[0]))
			goto oom;
	}
	tr->period = period;
	tr->cum = malloc(sizeof(double) * tr->n);
	if (!tr->cum)
		goto oom;
	tr->cum[0] = 0.0;
	for (int i = 1; i < tr->n; i++)
		tr->cum[i] = tr->cum[i - 1] + 0.5 * (tr->w[i] + tr->w[i - 1]) * (tr->t[i] - tr->t[i - 1]);
	return tr;
oom:
	errbuf_set(err, errlen, "supply trace '%s': out of memory", tf.name);
	supply_trace_free(tr);
	return NULL;
}

/* Position within the period and the segment holding it. */
static int locate(const struct supply_trace *tr, double t, double *u)
{
	double x = fmod(t, tr->period);

	if (x < 0.0)
		x += tr->period;
	int lo = 0, hi = tr->n - 1;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (tr->t[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	*u = x;
	return lo;
}

double supply_trace_watts(const struct supply_trace *tr, double t_s)
{
	double x;
	int i = locate(tr, t_s, &x);
	double f = (x - tr->t[i]) / (tr->t[i + 1] - tr->t[i]);

	return tr->w[i] + f * (tr->w[i + 1] - tr->w[i]);
}

/* Joules from the start of the run (t = 0) to t. */
static double cumulative(const struct supply_trace *tr, double t)
{
	double x, periods = floor(t / tr->period);
	int i = locate(tr, t, &x);
	double wx = supply_trace_watts(tr, x);

	return periods * tr->cum[tr->n - 1] + tr->cum[i] + 0.5 * (tr->w[i] + wx) * (x - tr->t[i]);
}

double supply_trace_joules(const struct supply_trace *tr, double t0_s, double t1_s)
{
	if (!(t1_s > t0_s))
		return 0.0;
	double j = cumulative(tr, t1_s) - cumulative(tr, t0_s);
	return j > 0.0 ? j : 0.0;
}

double supply_trace_mean_watts(const struct supply_trace *tr)
{
	return tr->cum[tr->n - 1] / tr->period;
}

void supply_trace_free(struct supply_trace *tr)
{
	if (!tr)
		return;
	free(tr->t);
	free(tr->w);
	free(tr->cum);
	free(tr);
}

double supply_trace_period(const struct supply_trace *tr)
{
	return tr->period;
}

/* "HH:MM": two digits, a colon, two digits, in range. */
static bool parse_clock(const char *s, double *out)
{
	int hh, mm;

	if (strlen(s) != 5 || s[2] != ':')
		return false;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return false;
	hh = (s[0] - '0') * 10 + (s[1] - '0');
	mm = (s[3] - '0') * 10 + (s[4] - '0');
	if (hh > 23 || mm > 59)
		return false;
	*out = hh * 3600.0 + mm * 60.0;
	return true;
}

int supply_trace_parse_start(const char *text, struct supply_trace_start *out,
			     char *err, size_t errlen)
{
	char q[80];

	if (text && !strcmp(text, "now")) {
		out->mode = SUPPLY_TRACE_START_NOW;
		out->clock_s = 0.0;
		return 0;
	}
	if (text && parse_clock(text, &out->clock_s)) {
		out->mode = SUPPLY_TRACE_START_CLOCK;
		return 0;
	}
	errbuf_set(err, errlen,
		   "--supply-trace-start: expected 'now' or a local time of day HH:MM (00:00 to 23:59), got '%s'",
		   text ? cli_quote(text, q, sizeof(q)) : "");
	return -1;
}

bool supply_trace_spans_day(const struct supply_trace *tr)
{
	return fabs(tr->period - SUPPLY_TRACE_DAY_S) <= 1.0;
}

double supply_trace_start_offset(const struct supply_trace *tr,
				 const struct supply_trace_start *start, double time_of_day_s)
{
	double since_start;

	switch (start->mode) {
	case SUPPLY_TRACE_START_NOW:
		return 0.0;
	case SUPPLY_TRACE_START_CLOCK:
		since_start = time_of_day_s - start->clock_s;
		break;
	default:
		if (!supply_trace_spans_day(tr))
			return 0.0;
		since_start = time_of_day_s;	/* second 0 is midnight */
		break;
	}
	/* Seconds since the last time the clock showed the start time, then
	 * folded into the trace's period. */
	since_start = fmod(since_start, SUPPLY_TRACE_DAY_S);
	if (since_start < 0.0)
		since_start += SUPPLY_TRACE_DAY_S;
	since_start = fmod(since_start, tr->period);
	return since_start < 0.0 ? since_start + tr->period : since_start;
}

double supply_trace_time_of_day(time_t t)
{
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return 0.0;
	return tm.tm_hour * 3600.0 + tm.tm_min * 60.0 + tm.tm_sec;
}

/* Supply traces (THEORY §3): piecewise-linear watts over one period,
 * repeated. Integrals come from a cumulative table, so a slot's joules cost
 * two binary searches however long the run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "supply_trace.h"

struct supply_trace {
	int n;			/* breakpoints covering [0, period], first at 0, last at period */
	double *t, *w;		/* seconds, watts */
	double *cum;		/* joules from 0 to t[i] */
	double period;
};

/* Parse "A,B" (spaces allowed) into two finite doubles; 0 on success. */
static int parse_row(const char *line, double *a, double *b)
{
	char *end;

	errno = 0;
	*a = strtod(line, &end);
	if (end == line || errno)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != ',')
		return -1;
	line = end + 1;
	*b = strtod(line, &end);
	if (end == line || errno)
		return -1;
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	if (*end && *end != '#')
		return -1;
	return isfinite(*a) && isfinite(*b) ? 0 : -1;
}

static int has_letter(const char *s)
{
	for (; *s; s++)
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
			return 1;
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

struct supply_trace *supply_trace_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct supply_trace *tr = NULL;
	char *line = NULL;
	size_t len = 0;
	int lineno = 0, cap = 0, seen_data = 0;

	if (!f) {
		snprintf(err, errlen, "%s:0: cannot open supply trace: %s", path, strerror(errno));
		return NULL;
	}
	tr = calloc(1, sizeof(*tr));
	if (!tr)
		goto oom;
	while (getline(&line, &len, f) != -1) {
		double t, w;
		char *p = line;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		p[strcspn(p, "\r\n")] = '\0';
		if (parse_row(p, &t, &w) != 0) {
			if (!seen_data && has_letter(p)) {
				seen_data = 1;	/* a header line, once, before any row */
				continue;
			}
			snprintf(err, errlen, "%s:%d: expected 'seconds,watts' with two numbers, got '%.40s'",
				 path, lineno, p);
			goto fail;
		}
		seen_data = 1;
		if (w < 0.0) {
			snprintf(err, errlen, "%s:%d: watts must not be negative (got %g)", path, lineno, w);
			goto fail;
		}
		if (t < 0.0) {
			snprintf(err, errlen, "%s:%d: seconds must not be negative (got %g)", path, lineno, t);
			goto fail;
		}
		if (tr->n && t <= tr->t[tr->n - 1]) {
			snprintf(err, errlen, "%s:%d: seconds must increase (got %g after %g)",
				 path, lineno, t, tr->t[tr->n - 1]);
			goto fail;
		}
		if (push(tr, &cap, t, w))
			goto oom;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s:%d: read error: %s", path, lineno, strerror(errno));
		goto fail;
	}
	if (tr->n == 0) {
		snprintf(err, errlen, "%s:%d: no 'seconds,watts' rows in the trace", path, lineno);
		goto fail;
	}
	fclose(f);
	free(line);
	f = NULL;
	line = NULL;

	/* Close the period: one row is a constant; otherwise the period is the
	 * last time plus the last step and the trace wraps to its first row. */
	double period, w_first = tr->w[0];
	if (tr->n == 1) {
		period = tr->t[0] > 0.0 ? tr->t[0] : 1.0;
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
	snprintf(err, errlen, "%s:%d: out of memory", path, lineno);
fail:
	if (f)
		fclose(f);
	free(line);
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

/* Numeric command-line options of the demo and test programs: the whole
 * string must be a number within [lo, hi], else one line on stderr names the
 * program, the option and the range. */
#ifndef ERG_CLI_NUM_H
#define ERG_CLI_NUM_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static inline int cli_num(const char *prog, const char *opt, const char *s, double lo, double hi,
			  double *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno || end == s || *end || !(d >= lo && d <= hi)) {
		fprintf(stderr, "%s: %s '%s' is not a number in [%g, %g]\n", prog, opt, s, lo, hi);
		return -1;
	}
	*v = d;
	return 0;
}

#endif

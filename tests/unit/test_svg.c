/* The SVG writer on degenerate data: a range lost in rounding and subnormal
 * steps finish with a bounded grid instead of looping; series in another
 * unit get their own panel and y axis. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "svg.h"

static long count(const char *text, const char *what)
{
	long n = 0;

	for (const char *p = text; (p = strstr(p, what)); p++)
		n++;
	return n;
}

static void chart(const double *x, const double *y, int n, char *buf, size_t len)
{
	struct svg_series s = { "s", x, y, n, "#000000", 0, 1, 2, 1, 0 };
	struct svg_chart c = { .title = "t", .xlabel = "x", .ylabel = "y", .marker_x = NAN };
	FILE *f = fmemopen(buf, len, "w");

	assert_non_null(f);
	assert_int_equal(svg_write(f, &c, &s, 1), 0);
	fclose(f);
}

static void test_degenerate_ranges(void **state)
{
	(void)state;
	static char buf[1 << 20];
	double x[2] = { 1e20, 1e20 }, y[2] = { 1, 2 };

	/* x0 - 0.5 == x0 at 1e20: the step of 1 never advances the grid */
	chart(x, y, 2, buf, sizeof(buf));
	assert_true(count(buf, "<line") <= 2 * 100 + 4);
	x[0] = x[1] = 5;
	y[0] = y[1] = 5e-324;
	chart(x, y, 2, buf, sizeof(buf));
	assert_non_null(strstr(buf, "</svg>"));
	assert_true(svg_nice_step(5e-324, 6) > 0);
	assert_true(svg_nice_step(1e-320, 8) > 0);
}

/* The y pixel coordinates of the n-th <path>: lowest and highest. */
static void path_y_range(const char *text, int nth, double *lo, double *hi)
{
	const char *p = text;

	for (int i = 0; i <= nth; i++) {
		p = strstr(p, "<path");
		assert_non_null(p);
		p++;
	}
	p = strstr(p, " d=\"");
	assert_non_null(p);
	p += 4;
	*lo = INFINITY;
	*hi = -INFINITY;
	while (*p == 'M' || *p == 'L') {
		double x, y;
		int used;

		assert_int_equal(sscanf(p + 1, "%lf %lf %n", &x, &y, &used), 2);
		*lo = fmin(*lo, y);
		*hi = fmax(*hi, y);
		p += 1 + used;
	}
}

static void test_two_panels(void **state)
{
	(void)state;
	static char buf[1 << 16];
	double x[3] = { 1, 2, 3 }, kj[3] = { 5, 1, 4 }, price[3] = { 9000, 100, 7000 };
	struct svg_series s[2] = {
		{ "energy", x, kj, 3, "#000000", 0, 1, 2, 1, 0 },
		{ "cost", x, price, 3, "#ff0000", 0, 0, 2, 1, 1 },
	};
	struct svg_chart c = { .title = "t", .xlabel = "x", .ylabel = "energy (kJ)",
			       .ylabel2 = "cost (price units)", .marker_x = 2, .marker_label = "b*" };
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	double lo0, hi0, lo1, hi1;

	assert_non_null(f);
	assert_int_equal(svg_write(f, &c, s, 2), 0);
	fclose(f);
	assert_int_equal(count(buf, "class=\"ylabel\""), 2);
	assert_int_equal(count(buf, "class=\"xlabel\""), 1);
	assert_non_null(strstr(buf, ">cost (price units)</text>"));
	assert_int_equal(count(buf, ">b*</text>"), 1);		/* the marker is labelled once */
	/* the cost curve lies wholly below the energy curve's panel, and the
	 * 9000 at its peak did not squash the kJ axis: the energy curve spans
	 * more than a third of its panel */
	path_y_range(buf, 0, &lo0, &hi0);
	path_y_range(buf, 1, &lo1, &hi1);
	assert_true(lo1 > hi0);
	assert_true(hi0 - lo0 > 60);
	const char *leg = strstr(buf, "<g class=\"legend\">");
	assert_non_null(leg);
	assert_int_equal(count(leg, "<text"), 2);

	/* no lower-panel label: one panel, and the cost series is not drawn on
	 * the energy axis */
	c.ylabel2 = NULL;
	f = fmemopen(buf, sizeof(buf), "w");
	assert_int_equal(svg_write(f, &c, s, 2), 0);
	fclose(f);
	assert_int_equal(count(buf, "class=\"ylabel\""), 1);
	assert_int_equal(count(buf, "<path"), 1);
	assert_null(strstr(buf, ">cost<"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_degenerate_ranges),
		cmocka_unit_test(test_two_panels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The SVG writer on degenerate data: a range lost in rounding and subnormal
 * steps finish with a bounded grid instead of looping. */
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
	struct svg_series s = { "s", x, y, n, "#000000", 0, 1, 2, 1 };
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_degenerate_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

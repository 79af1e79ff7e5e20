/* Supply traces (user/supply_trace.h): parsing, interpolation, integrals,
 * repetition and error messages. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "supply_trace.h"

#define CLOSE(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

static char dir[] = "/tmp/erg-test-trace-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_interpolation_and_integral(void **state)
{
	(void)state;
	char err[256];
	/* a triangle: 0 W at 0 s, 100 W at 10 s, 0 W at 20 s; period 30 s */
	const char *p = write_file("tri.csv", "seconds,watts\n# a comment\n0,0\n10,100\n20,0\n");
	struct supply_trace *t = supply_trace_load(p, err, sizeof(err));
	assert_non_null(t);
	CLOSE(supply_trace_watts(t, 5), 50, 1e-12);
	CLOSE(supply_trace_watts(t, 10), 100, 1e-12);
	CLOSE(supply_trace_watts(t, 15), 50, 1e-12);
	CLOSE(supply_trace_watts(t, 25), 0, 1e-12);	/* wraps from 0 W back to 0 W */
	/* integral of the triangle: 1000 J over one 30 s period */
	CLOSE(supply_trace_joules(t, 0, 30), 1000, 1e-9);
	CLOSE(supply_trace_joules(t, 0, 10), 500, 1e-9);
	CLOSE(supply_trace_joules(t, 5, 15), 750, 1e-9);
	CLOSE(supply_trace_mean_watts(t), 1000.0 / 30, 1e-12);
	/* repeats: later periods look the same, many periods add up */
	CLOSE(supply_trace_watts(t, 30 * 7 + 5), 50, 1e-9);
	CLOSE(supply_trace_joules(t, 30 * 100 + 5, 30 * 100 + 15), 750, 1e-6);
	CLOSE(supply_trace_joules(t, 0, 3000), 100000, 1e-6);
	/* additivity over arbitrary cuts */
	double sum = 0;
	for (double a = 0; a < 97; a += 0.7)
		sum += supply_trace_joules(t, a, fmin(a + 0.7, 97));
	CLOSE(sum, supply_trace_joules(t, 0, 97), 1e-6);
	CLOSE(supply_trace_joules(t, 5, 5), 0, 0);
	supply_trace_free(t);
}

static void test_wrap_and_constant(void **state)
{
	(void)state;
	char err[256];
	/* first row after 0: the value at 0 lies on the wrap segment */
	const char *p = write_file("late.csv", "10,100\n20,300\n");
	struct supply_trace *t = supply_trace_load(p, err, sizeof(err));
	assert_non_null(t);
	/* period 30; wrap from (20,300) to (40,100): at 30 s (= 0 s) 200 W */
	CLOSE(supply_trace_watts(t, 0), 200, 1e-9);
	CLOSE(supply_trace_watts(t, 30), 200, 1e-9);
	CLOSE(supply_trace_watts(t, 15), 200, 1e-9);
	CLOSE(supply_trace_joules(t, 0, 30), 0.5 * (200 + 100) * 10 + 0.5 * (100 + 300) * 10 + 0.5 * (300 + 200) * 10, 1e-9);
	supply_trace_free(t);
	/* one row is a constant supply */
	p = write_file("one.csv", "0, 250\n");
	t = supply_trace_load(p, err, sizeof(err));
	assert_non_null(t);
	CLOSE(supply_trace_watts(t, 12345.6), 250, 1e-9);
	CLOSE(supply_trace_joules(t, 3, 5), 500, 1e-9);
	CLOSE(supply_trace_mean_watts(t), 250, 1e-12);
	supply_trace_free(t);
}

static void expect_error(const char *name, const char *text, const char *line_tag, const char *words)
{
	char err[256];
	const char *p = write_file(name, text);
	struct supply_trace *t = supply_trace_load(p, err, sizeof(err));
	assert_null(t);
	/* "FILE:LINE: problem" */
	char want[300];
	snprintf(want, sizeof(want), "%s:%s:", p, line_tag);
	if (!strstr(err, want) || !strstr(err, words))
		fail_msg("error '%s' lacks '%s' or '%s'", err, want, words);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("order.csv", "0,1\n10,2\n5,3\n", "3", "increase");
	expect_error("neg.csv", "seconds,watts\n0,1\n10,-2\n", "3", "negative");
	expect_error("junk.csv", "0,1\n10,abc\n", "2", "seconds,watts");
	expect_error("header2.csv", "0,1\nseconds,watts\n", "2", "seconds,watts");
	expect_error("empty.csv", "# nothing\n", "1", "no 'seconds,watts' rows");
	expect_error("three.csv", "0,1,2\n", "1", "seconds,watts");
	char err[256];
	assert_null(supply_trace_load("/nonexistent/trace.csv", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/trace.csv"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interpolation_and_integral),
		cmocka_unit_test(test_wrap_and_constant),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* Supply traces (user/supply_trace.h): parsing, interpolation, integrals,
 * repetition, error messages, and where a run enters a trace
 * (--supply-trace-start, the local clock for a one-day trace). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sys/stat.h>
#include "supply_trace.h"
#include "textfile.h"

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
	expect_error("neg.csv", "seconds,watts\n0,1\n10,-2\n", "3", "watts '-2': expected watts, a finite number from 0 to 1e+12");
	expect_error("junk.csv", "0,1\n10,abc\n", "2", "watts 'abc'");
	expect_error("header2.csv", "0,1\nseconds,watts\n", "2", "seconds 'seconds'");
	expect_error("empty.csv", "# nothing\n", "1", "no 'seconds,watts' rows");
	expect_error("three.csv", "0,1,2\n", "1", "seconds,watts");
	expect_error("one.csv", "0\n", "1", "seconds,watts");
	char err[256];
	assert_null(supply_trace_load("/nonexistent/trace.csv", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/trace.csv"));
}

/* Only a first row with no number at all is a header: "0,nan" and "0,inf"
 * are errors naming the line, not a header skipped (the fault run got a
 * constant from the rows after them). */
static void test_non_finite_and_range(void **state)
{
	(void)state;
	expect_error("nan1.csv", "0,nan\n10,5\n", "1", "watts 'nan'");
	expect_error("inf1.csv", "0,inf\n10,5\n", "1", "watts 'inf'");
	expect_error("nansec.csv", "nan,5\n10,5\n", "1", "seconds 'nan'");
	expect_error("inf3.csv", "seconds,watts\n0,5\n10,-inf\n", "3", "watts '-inf'");
	expect_error("infinity.csv", "0,5\n10,INFINITY\n", "2", "watts 'INFINITY'");
	/* huge: a range error with the range, not 1e308 W booked as 0 */
	expect_error("huge.csv", "0,1e308\n", "1", "from 0 to 1e+12");
	expect_error("huge2.csv", "0,1e999\n", "1", "watts '1e999'");
	expect_error("late.csv", "1e10,5\n", "1", "seconds '1e10'");
	expect_error("tiny.csv", "0,5\n5e-324,5\n", "2", "at least 1e-9");

	/* every finite number in range parses: denormals, exponents, blanks */
	char err[256];
	const char *p = write_file("denorm.csv", "seconds , watts\n0,5e-324\n 1.5e1 ,\t1E3 # peak\n");
	struct supply_trace *t = supply_trace_load(p, err, sizeof(err));
	if (!t)
		fail_msg("%s", err);
	CLOSE(supply_trace_watts(t, 15), 1000, 1e-9);
	assert_true(supply_trace_watts(t, 0) >= 0);
	supply_trace_free(t);
	p = write_file("max.csv", "0,1e12\n");
	t = supply_trace_load(p, err, sizeof(err));
	if (!t)
		fail_msg("%s", err);
	CLOSE(supply_trace_joules(t, 0, 2), 2e12, 1);
	supply_trace_free(t);
}

/* Untrusted files: regular files only, refused at once by kind, a size
 * cap, escape codes in a name or a row never printed raw. */
static void test_untrusted_files(void **state)
{
	(void)state;
	char err[512], path[300];

	assert_null(supply_trace_load("/dev/zero", err, sizeof(err)));
	assert_non_null(strstr(err, "'/dev/zero' is a character device, not a regular file"));
	assert_null(supply_trace_load(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "is a directory"));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(10);	/* a FIFO must not block the reader */
	assert_null(supply_trace_load(path, err, sizeof(err)));
	alarm(0);
	assert_non_null(strstr(err, "is a FIFO"));

	const char *p = write_file("esc\033[31m.csv", "0,\033]0;owned\a\n");
	assert_null(supply_trace_load(p, err, sizeof(err)));
	assert_null(strchr(err, '\033'));
	assert_null(strchr(err, '\a'));
	assert_non_null(strstr(err, "esc\\x1b[31m.csv:1:"));

	snprintf(path, sizeof(path), "%s/big.csv", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fseek(f, TEXTFILE_MAX_TRACE, SEEK_SET), 0);
	fputc('\n', f);
	fclose(f);
	assert_null(supply_trace_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "larger than"));
	unlink(path);

	p = write_file("nul.csv", "0,1\n10,2\0\n");
	/* fputs stops at the NUL: write it by hand */
	f = fopen(p, "w");
	fwrite("0,1\n10\0,2\n", 1, 10, f);
	fclose(f);
	assert_null(supply_trace_load(p, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: a NUL byte"));
}

static void expect_start_error(const char *text)
{
	struct supply_trace_start st = { .mode = SUPPLY_TRACE_START_AUTO };
	char err[256] = "";

	assert_int_equal(supply_trace_parse_start(text, &st, err, sizeof(err)), -1);
	if (!strstr(err, "--supply-trace-start") || !strstr(err, "'now'") || !strstr(err, "HH:MM"))
		fail_msg("'%s': error '%s' does not name the option and its forms", text ? text : "(null)", err);
}

static void test_parse_start(void **state)
{
	(void)state;
	struct supply_trace_start st;
	char err[256];

	assert_int_equal(supply_trace_parse_start("now", &st, err, sizeof(err)), 0);
	assert_int_equal(st.mode, SUPPLY_TRACE_START_NOW);
	assert_int_equal(supply_trace_parse_start("00:00", &st, err, sizeof(err)), 0);
	assert_int_equal(st.mode, SUPPLY_TRACE_START_CLOCK);
	assert_true(st.clock_s == 0);
	assert_int_equal(supply_trace_parse_start("23:59", &st, err, sizeof(err)), 0);
	assert_int_equal(st.mode, SUPPLY_TRACE_START_CLOCK);
	assert_true(st.clock_s == 23 * 3600 + 59 * 60);
	assert_int_equal(supply_trace_parse_start("07:05", &st, err, sizeof(err)), 0);
	assert_true(st.clock_s == 7 * 3600 + 5 * 60);

	expect_start_error("24:00");
	expect_start_error("12:60");
	expect_start_error("7:5x");
	expect_start_error("7:05");
	expect_start_error("07:05 ");
	expect_start_error("0705");
	expect_start_error("NOW");
	expect_start_error("");
	expect_start_error(NULL);
	/* the bad value is quoted safely */
	assert_int_equal(supply_trace_parse_start("1\0332:00", &st, err, sizeof(err)), -1);
	assert_null(strchr(err, '\033'));
}

/* Period one day: 0 W at midnight rising to 1000 W at noon, back to 0 W. */
static struct supply_trace *load_day(void)
{
	char err[256];
	const char *p = write_file("day.csv", "seconds,watts\n0,0\n43200,1000\n");
	struct supply_trace *t = supply_trace_load(p, err, sizeof(err));

	if (!t)
		fail_msg("%s", err);
	return t;
}

static void test_spans_day(void **state)
{
	(void)state;
	char err[256];
	struct supply_trace *t = load_day();

	CLOSE(supply_trace_period(t), 86400, 0);
	assert_true(supply_trace_spans_day(t));
	supply_trace_free(t);
	t = supply_trace_load(write_file("near.csv", "0,1\n43200.4,2\n"), err, sizeof(err));
	assert_non_null(t);
	assert_true(supply_trace_spans_day(t));		/* within a second */
	supply_trace_free(t);
	t = supply_trace_load(write_file("long.csv", "0,1\n43201,2\n"), err, sizeof(err));
	assert_non_null(t);
	assert_false(supply_trace_spans_day(t));	/* 86402 s */
	supply_trace_free(t);
	t = supply_trace_load(write_file("hour.csv", "0,1\n1800,2\n"), err, sizeof(err));
	assert_non_null(t);
	assert_false(supply_trace_spans_day(t));
	supply_trace_free(t);
	/* the solar day shipped with erg is a day trace */
	t = supply_trace_load("scenarios/solar-day.csv", err, sizeof(err));
	if (t) {
		assert_true(supply_trace_spans_day(t));
		supply_trace_free(t);
	}
}

static void test_start_offset(void **state)
{
	(void)state;
	char err[256];
	struct supply_trace *day = load_day();
	/* 7 s period: a clock offset folds into it */
	struct supply_trace *short_tr = supply_trace_load(write_file("seven.csv", "0,0\n3.5,70\n"), err, sizeof(err));
	const struct supply_trace_start aut = { .mode = SUPPLY_TRACE_START_AUTO };
	const struct supply_trace_start now = { .mode = SUPPLY_TRACE_START_NOW };
	struct supply_trace_start at;
	const double t14 = 14 * 3600.0;

	assert_non_null(short_tr);
	CLOSE(supply_trace_period(short_tr), 7, 0);
	/* auto: a day trace enters at the time of day, another at its start */
	CLOSE(supply_trace_start_offset(day, &aut, t14), t14, 0);
	CLOSE(supply_trace_start_offset(day, &aut, 0), 0, 0);
	CLOSE(supply_trace_start_offset(day, &aut, 86399), 86399, 0);
	CLOSE(supply_trace_start_offset(short_tr, &aut, t14), 0, 0);
	/* the watts there: 14:00 is on the way down from noon's 1000 W */
	CLOSE(supply_trace_watts(day, supply_trace_start_offset(day, &aut, t14)), 1000.0 * (1 - 7200.0 / 43200), 1e-9);
	/* now: second 0 whatever the clock */
	CLOSE(supply_trace_start_offset(day, &now, t14), 0, 0);
	CLOSE(supply_trace_start_offset(short_tr, &now, t14), 0, 0);
	/* HH:MM: second 0 at that time; later the same day, or since yesterday */
	assert_int_equal(supply_trace_parse_start("06:00", &at, err, sizeof(err)), 0);
	CLOSE(supply_trace_start_offset(day, &at, t14), 8 * 3600, 0);
	CLOSE(supply_trace_start_offset(day, &at, 6 * 3600), 0, 0);
	CLOSE(supply_trace_start_offset(short_tr, &at, t14), fmod(8 * 3600, 7), 1e-9);
	assert_int_equal(supply_trace_parse_start("20:00", &at, err, sizeof(err)), 0);
	CLOSE(supply_trace_start_offset(day, &at, 6 * 3600), 10 * 3600, 0);
	assert_int_equal(supply_trace_parse_start("00:00", &at, err, sizeof(err)), 0);
	CLOSE(supply_trace_start_offset(day, &at, t14), t14, 0);	/* the same as auto */
	CLOSE(supply_trace_start_offset(short_tr, &at, t14), fmod(t14, 7), 1e-9);
	/* every offset lies in [0, period) */
	for (double tod = 0; tod < 86400; tod += 997) {
		double o = supply_trace_start_offset(short_tr, &at, tod);
		assert_true(o >= 0 && o < 7);
		o = supply_trace_start_offset(day, &at, tod);
		assert_true(o >= 0 && o < 86400);
	}
	supply_trace_free(day);
	supply_trace_free(short_tr);
}

static void test_time_of_day(void **state)
{
	(void)state;
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	setenv("TZ", "UTC", 1);
	tzset();
	CLOSE(supply_trace_time_of_day(0), 0, 0);
	CLOSE(supply_trace_time_of_day(86400 * 3 + 14 * 3600 + 5 * 60 + 7), 14 * 3600 + 5 * 60 + 7, 0);
	/* the local clock: UTC+2 all year round */
	setenv("TZ", "XXX-2", 1);
	tzset();
	CLOSE(supply_trace_time_of_day(86400 * 3 + 23 * 3600), 3600, 0);
	if (old)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interpolation_and_integral),
		cmocka_unit_test(test_wrap_and_constant),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_non_finite_and_range),
		cmocka_unit_test(test_untrusted_files),
		cmocka_unit_test(test_parse_start),
		cmocka_unit_test(test_spans_day),
		cmocka_unit_test(test_start_offset),
		cmocka_unit_test(test_time_of_day),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

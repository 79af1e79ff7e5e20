/* The shared command-line layer (user/cli.c): number, duration, choice, pid,
 * host:port and list parsers, the safe echo, and the getopt_long driver's
 * messages (stderr captured). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static char err[512];

/* Only printable ASCII: what a message may put on a terminal. */
static bool printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			return false;
	return true;
}

static void test_double(void **state)
{
	static const char *const bad[] = { "nan", "NaN", "inf", "-inf", "infinity", "1e309", "-1e309",
					   "12abc", "", " 1", "1 ", "0x", "1e", "--1", "abc", NULL };
	double v = -1;

	(void)state;
	assert_int_equal(cli_double("--w", "1.5", 0, 10, "watts", &v, err, sizeof(err)), 0);
	assert_true(v == 1.5);
	assert_int_equal(cli_double("--w", "2e3", 0, 1e6, "watts", &v, err, sizeof(err)), 0);
	assert_true(v == 2000);
	assert_int_equal(cli_double("--w", "0", 0, 10, "watts", &v, err, sizeof(err)), 0);
	assert_int_equal(cli_double("--w", "10", 0, 10, "watts", &v, err, sizeof(err)), 0);
	/* underflow to a tiny finite value is still a number */
	assert_int_equal(cli_double("--w", "5e-324", 0, 10, "watts", &v, err, sizeof(err)), 0);
	for (int i = 0; bad[i]; i++) {
		v = 7;
		assert_int_equal(cli_double("--w", bad[i], -1e300, 1e300, "watts", &v, err, sizeof(err)), -1);
		assert_true(v == 7);	/* untouched on failure */
		assert_non_null(strstr(err, "--w"));
		assert_true(printable(err));
	}
	assert_int_equal(cli_double("--w", "10.5", 0, 10, "watts", &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--w '10.5': expected watts, a finite number from 0 to 10"));
	assert_int_equal(cli_double("--w", NULL, 0, 10, "watts", &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--w needs a value"));
	/* above: the lower bound itself is refused */
	assert_int_equal(cli_double_above("--w", "0", 0, 10, "watts", &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "above 0, at most 10"));
	assert_int_equal(cli_double_above("--w", "1e-9", 0, 10, "watts", &v, err, sizeof(err)), 0);
	/* NULL err is allowed */
	assert_int_equal(cli_double("--w", "x", 0, 1, "watts", &v, NULL, 0), -1);
}

static void test_long(void **state)
{
	static const char *const bad[] = { "12abc", "1e3", "1.0", "", " 5", "5 ", "0x10", "abc",
					   "99999999999999999999", "--5", NULL };
	long long v;

	(void)state;
	assert_int_equal(cli_long("n", "42", 1, 100, "things", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 42);
	assert_int_equal(cli_long("n", "-3", -5, 5, "things", &v, err, sizeof(err)), 0);
	assert_int_equal(v, -3);
	assert_int_equal(cli_long("n", "+3", -5, 5, "things", &v, err, sizeof(err)), 0);
	for (int i = 0; bad[i]; i++)
		assert_int_equal(cli_long("n", bad[i], -1000, 1000, "things", &v, err, sizeof(err)), -1);
	assert_int_equal(cli_long("count", "0", 1, 10, "intervals", &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "count '0': expected intervals, a whole number from 1 to 10"));
}

static void test_duration(void **state)
{
	double v;

	(void)state;
	assert_int_equal(cli_duration("--d", "2", 0, 100, &v, err, sizeof(err)), 0);
	assert_true(v == 2);
	assert_int_equal(cli_duration("--d", "2.5s", 0, 100, &v, err, sizeof(err)), 0);
	assert_true(v == 2.5);
	assert_int_equal(cli_duration("--d", "500ms", 0, 100, &v, err, sizeof(err)), 0);
	assert_true(fabs(v - 0.5) < 1e-12);
	assert_int_equal(cli_duration("--d", "1m", 0, 100, &v, err, sizeof(err)), 0);
	assert_true(v == 60);
	assert_int_equal(cli_duration("--d", "1h", 0, 7200, &v, err, sizeof(err)), 0);
	assert_true(v == 3600);
	assert_int_equal(cli_duration("--d", "2h", 0, 7200, &v, err, sizeof(err)), 0);
	assert_int_equal(cli_duration("--d", "3h", 0, 7200, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--d '3h': expected a duration from 0 s to 7200 s"));
	assert_int_equal(cli_duration("interval", "1e300", 0.01, 86400, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "1e308h", 0, 1e308, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "nan", 0, 100, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "inf", 0, 1e308, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "s", 0, 100, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "ms", 0, 100, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "2 s", 0, 100, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "2x", 0, 100, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "", 0, 100, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--d needs a value"));
	assert_int_equal(cli_duration("--d", NULL, 0, 100, &v, err, sizeof(err)), -1);
	assert_int_equal(cli_duration("--d", "0", 0.001, 100, &v, err, sizeof(err)), -1);
}

static void test_choice(void **state)
{
	static const char *const src[] = { "auto", "rapl", "hwmon", "model", NULL };
	int i = -1;

	(void)state;
	assert_int_equal(cli_choice("--e", "hwmon", src, &i, err, sizeof(err)), 0);
	assert_int_equal(i, 2);
	assert_int_equal(cli_choice("--e", "RAPL", src, &i, err, sizeof(err)), -1);
	assert_string_equal(err, "--e 'RAPL': expected one of auto, rapl, hwmon, model");
	assert_int_equal(cli_choice("--e", "", src, &i, err, sizeof(err)), -1);
	assert_int_equal(cli_choice("--e", NULL, src, &i, err, sizeof(err)), -1);
	assert_int_equal(cli_choice("--e", "auto\x1b[2J", src, &i, err, sizeof(err)), -1);
	assert_true(printable(err));
}

static void test_pid(void **state)
{
	int pid = 0;

	(void)state;
	assert_int_equal(cli_pid("--pid", "1", &pid, err, sizeof(err)), 0);
	assert_int_equal(pid, 1);
	assert_int_equal(cli_pid("--pid", "4194304", &pid, err, sizeof(err)), 0);
	assert_int_equal(cli_pid("--pid", "4194305", &pid, err, sizeof(err)), -1);
	assert_int_equal(cli_pid("--pid", "0", &pid, err, sizeof(err)), -1);
	assert_int_equal(cli_pid("--pid", "-1", &pid, err, sizeof(err)), -1);
	assert_int_equal(cli_pid("--pid", "12abc", &pid, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--pid '12abc': expected a process id"));
	assert_int_equal(cli_pid("--pid", "1e3", &pid, err, sizeof(err)), -1);
	assert_int_equal(cli_pid("--pid", "", &pid, err, sizeof(err)), -1);
}

static void test_hostport(void **state)
{
	char host[64];
	uint16_t port = 0;
	static const char *const bad[] = { "", "host", "host:", "host:0", "host:65536", "host:80x", "::1:80",
					   "[::1]80", "[::1", "a b:80", "host:-1", ":", "[::1]:", "h\x1b:80", NULL };

	(void)state;
	assert_int_equal(cli_hostport("--to", "127.0.0.1:8080", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(cli_hostport("--to", "[::1]:80", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 80);
	assert_int_equal(cli_hostport("--to", ":9000", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9000);
	assert_int_equal(cli_hostport("--to", "example.org:65535", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "example.org");
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(cli_hostport("--to", bad[i], host, sizeof(host), &port, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "expected HOST:PORT"));
		assert_true(printable(err));
	}
	/* a host longer than the buffer is refused, not cut */
	assert_int_equal(cli_hostport("--to", "abcdefghij:80", host, 8, &port, err, sizeof(err)), -1);
}

static void test_double_list(void **state)
{
	double v[3];

	(void)state;
	assert_int_equal(cli_double_list("--sweep", "0.8:1.2:0.02", ':', 3, v, err, sizeof(err)), 0);
	assert_true(v[0] == 0.8 && v[1] == 1.2 && v[2] == 0.02);
	assert_int_equal(cli_double_list("--sweep", "0.8:1.2:0.02:5", ':', 3, v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected 3 finite numbers separated by ':'"));
	assert_int_equal(cli_double_list("--sweep", "0.8:1.2", ':', 3, v, err, sizeof(err)), -1);
	assert_int_equal(cli_double_list("--sweep", "0.8::0.02", ':', 3, v, err, sizeof(err)), -1);
	assert_int_equal(cli_double_list("--sweep", "0.8:1.2:", ':', 3, v, err, sizeof(err)), -1);
	assert_int_equal(cli_double_list("--sweep", "0.8:nan:1", ':', 3, v, err, sizeof(err)), -1);
	assert_int_equal(cli_double_list("--sweep", "0.8:inf:1", ':', 3, v, err, sizeof(err)), -1);
	assert_int_equal(cli_double_list("--sweep", "", ':', 3, v, err, sizeof(err)), -1);
	assert_int_equal(cli_double_list("--sweep", "1,2,3", ':', 3, v, err, sizeof(err)), -1);
	assert_int_equal(cli_double_list("--sweep", "1,2,3", ',', 3, v, err, sizeof(err)), 0);
}

static void test_quote(void **state)
{
	char out[64], tiny[8];
	char big[300];

	(void)state;
	assert_string_equal(cli_quote("plain text", out, sizeof(out)), "plain text");
	assert_string_equal(cli_quote("\x1b[2J", out, sizeof(out)), "\\x1b[2J");
	assert_string_equal(cli_quote("a\tb\nc", out, sizeof(out)), "a\\x09b\\x0ac");
	assert_string_equal(cli_quote("\x7f\x80\xff", out, sizeof(out)), "\\x7f\\x80\\xff");
	assert_string_equal(cli_quote("\xc2\x9b" "31m", out, sizeof(out)), "\\xc2\\x9b31m");	/* C1 CSI */
	assert_string_equal(cli_quote("back\\slash", out, sizeof(out)), "back\\\\slash");
	assert_string_equal(cli_quote("", out, sizeof(out)), "");
	assert_string_equal(cli_quote(NULL, out, sizeof(out)), "(null)");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cli_quote(big, out, sizeof(out));
	assert_true(strlen(out) < sizeof(out));
	assert_string_equal(out + strlen(out) - 3, "...");
	/* an escape is never cut in the middle */
	cli_quote("\x1b\x1b\x1b\x1b", tiny, sizeof(tiny));
	assert_true(strlen(tiny) < sizeof(tiny));
	assert_true(printable(tiny));
	assert_null(strstr(tiny, "\\x1...") );
	assert_string_equal(cli_quote("x", out, 4), "");	/* too small to say anything */
}

/* ---- the getopt_long driver ---- */

static const struct option longopts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "pid", required_argument, NULL, 'p' },
	{ "supply-watts", required_argument, NULL, 0x4c47 },
	{ "supply-trace", required_argument, NULL, 0x4c47 },
	{ "libcuda", required_argument, NULL, 0x4750 },
	{ "idle-watts", required_argument, NULL, 256 },
	{ 0 }
};

struct run {
	int opts[16], n;
	const char *names[16];
	char *operands[8];
	int n_operands;
	int last;
	char stderr_text[1024];
};

/* Runs the driver over argv with stderr in a temporary file. */
static void drive(struct run *r, int argc, char **argv)
{
	FILE *cap = tmpfile();
	int saved = dup(STDERR_FILENO), opt;
	struct cli c;
	size_t n;

	assert_non_null(cap);
	fflush(stderr);
	dup2(fileno(cap), STDERR_FILENO);
	memset(r, 0, sizeof(*r));
	cli_init(&c, "erg test", "jp:", longopts);
	while ((opt = cli_next(&c, argc, argv)) != -1 && opt != CLI_ERROR && r->n < 16) {
		r->names[r->n] = strdup(c.name);
		r->opts[r->n++] = opt;
	}
	r->last = opt;
	for (int i = optind; i < argc && r->n_operands < 8; i++)
		r->operands[r->n_operands++] = argv[i];
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(cap);
	n = fread(r->stderr_text, 1, sizeof(r->stderr_text) - 1, cap);
	r->stderr_text[n] = '\0';
	fclose(cap);
}

static void free_run(struct run *r)
{
	for (int i = 0; i < r->n; i++)
		free((char *)r->names[i]);
}

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)))
#define DRIVE(r, ...) drive(r, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_driver_permutes(void **state)
{
	struct run r;

	(void)state;
	DRIVE(&r, "top", "1", "3", "--pid", "42", "-j", "--supply-watts=5");
	assert_int_equal(r.last, -1);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.opts[0], 'p');
	assert_string_equal(r.names[0], "--pid");
	assert_string_equal(r.names[1], "--json");	/* a short option named by its long twin */
	assert_string_equal(r.names[2], "--supply-watts");
	assert_int_equal(r.n_operands, 2);
	assert_string_equal(r.operands[0], "1");
	assert_string_equal(r.operands[1], "3");
	assert_string_equal(r.stderr_text, "");
	free_run(&r);
	/* a second parse in the same process starts clean */
	DRIVE(&r, "top", "--pid", "7", "9");
	assert_int_equal(r.n, 1);
	assert_int_equal(r.n_operands, 1);
	free_run(&r);
	/* "--" ends the options */
	DRIVE(&r, "top", "--", "-1");
	assert_int_equal(r.n, 0);
	assert_int_equal(r.n_operands, 1);
	assert_string_equal(r.operands[0], "-1");
	free_run(&r);
}

static void test_driver_messages(void **state)
{
	static const struct { const char *arg, *want; } cases[] = {
		{ "--supply-watts", "erg test: option '--supply-watts' needs a value (see erg test --help)\n" },
		{ "--supply-trace", "erg test: option '--supply-trace' needs a value (see erg test --help)\n" },
		{ "--libcuda", "erg test: option '--libcuda' needs a value (see erg test --help)\n" },
		{ "--idle-watts", "erg test: option '--idle-watts' needs a value (see erg test --help)\n" },
		{ "-p", "erg test: option '-p' needs a value (see erg test --help)\n" },
		{ "--json=3", "erg test: option '--json' takes no value (see erg test --help)\n" },
		{ "--frob", "erg test: unknown option '--frob' (see erg test --help)\n" },
		{ "--supply", "erg test: ambiguous option '--supply': it abbreviates several options (see erg test --help)\n" },
		{ "-x", "erg test: unknown option '-x' (see erg test --help)\n" },
		{ "--\x1b[2J", "erg test: unknown option '--\\x1b[2J' (see erg test --help)\n" },
	};
	struct run r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		DRIVE(&r, "top", (char *)cases[i].arg);
		assert_int_equal(r.last, CLI_ERROR);
		assert_string_equal(r.stderr_text, cases[i].want);
		free_run(&r);
	}
	/* unambiguous abbreviations work as getopt_long's */
	DRIVE(&r, "top", "--supply-w", "5", "--lib=/x");
	assert_int_equal(r.last, -1);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.names[0], "--supply-watts");
	assert_string_equal(r.names[1], "--libcuda");
	free_run(&r);
}

static void test_fail(void **state)
{
	struct cli c;
	FILE *cap = tmpfile();
	int saved = dup(STDERR_FILENO);
	char buf[128] = "";

	(void)state;
	cli_init(&c, "erg x", "", longopts);
	fflush(stderr);
	dup2(fileno(cap), STDERR_FILENO);
	assert_int_equal(cli_fail(&c, "bad thing"), 2);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(cap);
	assert_true(fread(buf, 1, sizeof(buf) - 1, cap) > 0);
	fclose(cap);
	assert_string_equal(buf, "erg x: bad thing\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_double),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_choice),
		cmocka_unit_test(test_pid),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_double_list),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_driver_permutes),
		cmocka_unit_test(test_driver_messages),
		cmocka_unit_test(test_fail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

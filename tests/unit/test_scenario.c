/* Scenario files: the shipped reference, and bad files that must be
 * rejected with FILE:LINE and the key named. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "scenario.h"

#define CLOSE(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

static char dir[] = "/tmp/erg-test-scenario-XXXXXX";

/* scenarios/ of this source tree: $ERG_ROOT, else two levels above the
 * test binary's directory (build/tests/), else the working directory. */
static void scenario_path(const char *name, char *out, size_t len)
{
	const char *root = getenv("ERG_ROOT");
	if (root) {
		snprintf(out, len, "%s/scenarios/%s", root, name);
		if (access(out, R_OK) == 0)
			return;
	}
	char exe[PATH_MAX - 64];	/* room for "/scenarios/NAME" */
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		for (int up = 0; up < 3; up++) {
			char *s = strrchr(exe, '/');
			if (s)
				*s = '\0';
		}
		snprintf(out, len, "%s/scenarios/%s", exe, name);
		if (access(out, R_OK) == 0)
			return;
	}
	snprintf(out, len, "scenarios/%s", name);
}

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

static void test_reference(void **state)
{
	(void)state;
	char path[PATH_MAX], err[512];
	static struct scenario sc;

	scenario_path("reference.ini", path, sizeof(path));
	if (scenario_load(path, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	/* the values the reference scenario specifies (docs/sim.md) */
	assert_int_equal(sc.n_models, 4);
	CLOSE(sc.models[0].params, 1.5e9, 0);
	CLOSE(sc.models[3].params, 70e9, 0);
	assert_int_equal(sc.n_budgets, 4);
	CLOSE(sc.budgets[0], 256, 0);
	CLOSE(sc.budgets[3], 16384, 0);
	assert_int_equal(sc.n_opts, 16);
	CLOSE(sc.sp.eta, 2e11, 0);
	CLOSE(sc.sp.input_tokens, 500, 0);
	CLOSE(sc.sp.reasoning_sigma, 0.8, 0);
	CLOSE(sc.sp.reasoning_median, 0.5, 0);
	CLOSE(sc.sp.a0, -2.523, 0);
	CLOSE(sc.sp.a1, 0.091, 0);
	CLOSE(sc.sp.beta, 0.1086, 0);
	CLOSE(sc.sp.a_max, 0.95, 0);
	CLOSE(sc.acc_target, 0.60, 0);
	CLOSE(sc.arrivals.per_slot, 20, 0);
	assert_int_equal(sc.arrivals.kind, ARRIVALS_POISSON);
	CLOSE(sc.slot_seconds, 1, 0);
	CLOSE(sc.c_a, 1, 0);
	CLOSE(sc.c_w, 1, 0);
	CLOSE(sc.storage, 0, 0);
	assert_int_equal(sc.policies, POLICY_ALL);
	/* options are (model, budget) in file order */
	assert_int_equal(sc.opts[15].model, 3);
	CLOSE(sc.opts[15].budget, 16384, 0);
	char name[64];
	scenario_option_name(&sc, 7, name, sizeof(name));
	assert_string_equal(name, "8B@16384");
	scenario_free(&sc);
}

static const char good[] =
	"[scaling]\n"			/* 1 */
	"eta = 2e11\n"			/* 2 */
	"a0 = -2.523\n"			/* 3 */
	"a1 = 0.091\n"			/* 4 */
	"beta = 0.1086\n"		/* 5 */
	"a_max = 0.95\n"		/* 6 */
	"[workload]\n"			/* 7 */
	"tasks_per_slot = 20\n"		/* 8 */
	"input_tokens = 500\n"		/* 9 */
	"budgets = 256, 4096\n"		/* 10 */
	"reasoning_sigma = 0.8\n"	/* 11 */
	"reasoning_median = 0.5\n"	/* 12 */
	"accuracy_target = 0.4\n"	/* 13 */
	"[cost]\n"			/* 14 */
	"c_a = 1\n"			/* 15 */
	"c_w = 1\n"			/* 16 */
	"[model 8B]\n"			/* 17 */
	"params = 8e9\n"		/* 18 */
	"[sim]\n"			/* 19 */
	"policy = all\n";		/* 20 */

/* good with line `line` (1-based) replaced by `repl` (NULL deletes it) */
static const char *edit(const char *name, int line, const char *repl)
{
	static char text[4096];
	const char *p = good;
	size_t used = 0;
	for (int l = 1; *p; l++) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
		if (l == line) {
			if (repl)
				used += snprintf(text + used, sizeof(text) - used, "%s\n", repl);
		} else {
			memcpy(text + used, p, len);
			used += len;
		}
		p += len;
	}
	text[used] = '\0';
	return write_file(name, text);
}

static void expect(const char *path, int line, const char *key, const char *words)
{
	static struct scenario sc;
	char err[512], want[400];

	assert_int_equal(scenario_load(path, &sc, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:%d:", path, line);
	if (!strstr(err, want))
		fail_msg("error '%s' does not start with '%s'", err, want);
	if (key) {
		char k[80];
		snprintf(k, sizeof(k), "'%s'", key);
		if (!strstr(err, k))
			fail_msg("error '%s' does not name key %s", err, k);
	}
	if (words && !strstr(err, words))
		fail_msg("error '%s' lacks '%s'", err, words);
}

static void test_good_minimal(void **state)
{
	(void)state;
	static struct scenario sc;
	char err[512];
	const char *p = write_file("good.ini", good);
	if (scenario_load(p, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(sc.n_opts, 2);
	assert_int_equal(sc.slots, 20000);	/* defaults */
	assert_int_equal(sc.seed, 1);
	assert_int_equal(sc.how, REALISE_SWRR);
	scenario_free(&sc);
}

static void test_bad_files(void **state)
{
	(void)state;
	/* missing key: named, at its section's header */
	expect(edit("nobeta.ini", 5, NULL), 1, "beta", "missing");
	expect(edit("noparams.ini", 18, "joules_per_task = 1"), 17, "params", "missing");
	/* missing section: at the end of the file */
	expect(edit("nocost.ini", 14, "[costs]"), 14, NULL, "unknown section");
	/* negative sizes */
	expect(edit("negparams.ini", 18, "params = -8e9"), 18, "params", "positive");
	expect(edit("negtasks.ini", 8, "tasks_per_slot = -3"), 8, "tasks_per_slot", "from 0 to 1e6");
	expect(edit("negbudget.ini", 10, "budgets = 256, -4096"), 10, "budgets", "positive");
	expect(edit("negstore.ini", 20, "[supply]\nstorage_joules = -1"), 21, "storage_joules", "negative");
	/* unknown policy, realiser, arrival process */
	expect(edit("policy.ini", 20, "policy = greedy"), 20, "policy", "unknown policy 'greedy'");
	expect(edit("realiser.ini", 20, "realiser = dice"), 20, "realiser", "dice");
	expect(edit("arrivals.ini", 8, "arrivals = bursty"), 8, "arrivals", "bursty");
	/* typos and junk */
	expect(edit("typo.ini", 2, "etaa = 2e11"), 2, "etaa", "unknown key");
	expect(edit("nan.ini", 3, "a0 = minus two"), 3, "a0", "not a number");
	expect(edit("dup.ini", 4, "a0 = 1"), 4, "a0", "twice");
	expect(edit("syntax.ini", 9, "input_tokens 500"), 9, NULL, "cannot parse");
	expect(edit("unit.ini", 13, "accuracy_target = 1.5"), 13, "accuracy_target", "between 0 and 1");
	/* cross-key: the target above every option's accuracy */
	expect(edit("reach.ini", 13, "accuracy_target = 0.9"), 13, "accuracy_target", "above the best");
	/* conditional keys */
	expect(edit("od.ini", 8, "arrivals = overdispersed\ntasks_per_slot = 20"), 7, "variance_ratio", "missing");
	expect(edit("ratio.ini", 8, "tasks_per_slot = 20\nvariance_ratio = 0.5"), 9, "variance_ratio", "at least 1");
	/* a missing trace names the scenario line and the trace file */
	expect(edit("trace.ini", 20, "[supply]\ntrace = nope.csv"), 21, "trace", "nope.csv");
	/* no model at all */
	expect(edit("nomodel.ini", 18, "; params removed"), 20, NULL, "no [model NAME]");
	/* missing file */
	static struct scenario sc;
	char err[512];
	assert_int_equal(scenario_load("/nonexistent/x.ini", &sc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/x.ini"));
}

/* Lines of any length: a 300-character comment on line 1 is a comment (the
 * fault run said "line longer than 199 characters"), a long list value is
 * read whole, and a real error after a long line names its own line. */
static void test_long_lines(void **state)
{
	(void)state;
	static struct scenario sc;
	static char text[8192];
	char err[512], comment[400];

	comment[0] = ';';
	memset(comment + 1, 'c', 300);
	comment[301] = '\0';
	snprintf(text, sizeof(text), "%s\n%s", comment, good);
	const char *p = write_file("longc.ini", text);
	if (scenario_load(p, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	scenario_free(&sc);

	/* a budgets list padded to 3000 characters */
	char list[3100];
	int n = snprintf(list, sizeof(list), "budgets = 256,");
	memset(list + n, ' ', 3000);
	snprintf(list + n + 3000, sizeof(list) - n - 3000, "4096");
	p = edit("longv.ini", 10, list);
	if (scenario_load(p, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(sc.n_budgets, 2);
	CLOSE(sc.budgets[1], 4096, 0);
	scenario_free(&sc);

	/* a syntax error on line 3 after a long line 1 */
	snprintf(text, sizeof(text), "%s\n[scaling]\nno equals here\n", comment);
	expect(write_file("longerr.ini", text), 3, NULL, "cannot parse this line");
}

/* --scenario must be a regular file, refused at once by kind; a value or
 * a section name with escape codes is echoed escaped. */
static void test_untrusted_files(void **state)
{
	(void)state;
	static struct scenario sc;
	char err[512], path[300];

	assert_int_equal(scenario_load("/dev/zero", &sc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'/dev/zero' is a character device, not a regular file"));
	assert_int_equal(scenario_load(dir, &sc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is a directory"));
	snprintf(path, sizeof(path), "%s/fifo.ini", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(10);	/* must not block */
	assert_int_equal(scenario_load(path, &sc, err, sizeof(err)), -1);
	alarm(0);
	assert_non_null(strstr(err, "is a FIFO"));

	expect(edit("esc.ini", 20, "policy = \033[2J\033]0;x\a"), 20, "policy", "\\x1b[2J");
	assert_int_equal(scenario_load(edit("esc.ini", 20, "policy = \033[2J"), &sc, err, sizeof(err)), -1);
	assert_null(strchr(err, '\033'));
	assert_int_equal(scenario_load(edit("esc2.ini", 14, "[\033[31mcost]"), &sc, err, sizeof(err)), -1);
	assert_null(strchr(err, '\033'));
	assert_non_null(strstr(err, "\\x1b[31mcost"));
}

static void test_traces_and_options(void **state)
{
	(void)state;
	static struct scenario sc;
	char err[512];
	write_file("sun.csv", "seconds,watts\n0,0\n43200,2000\n");
	const char *p = edit("withtrace.ini", 20,
			     "policy = mean, variance\nslots = 500\nseed = 42\nrealiser = random\n"
			     "[supply]\ntrace = sun.csv\nstorage_joules = unlimited\n"
			     "[model 1B]\nparams = 1e9\njoules_per_token = 0.01\nbudgets = 128\nreasoning_sigma = 0.3");
	if (scenario_load(p, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_non_null(sc.supply_trace);	/* relative to the scenario's directory */
	CLOSE(supply_trace_mean_watts(sc.supply_trace), 1000, 1e-9);
	assert_int_equal(sc.policies, POLICY_MEAN | POLICY_VARIANCE);
	assert_int_equal(sc.slots, 500);
	assert_int_equal(sc.seed, 42);
	assert_int_equal(sc.how, REALISE_RANDOM);
	assert_true(isinf(sc.storage));
	/* 8B with two global budgets, 1B with its own one */
	assert_int_equal(sc.n_opts, 3);
	CLOSE(sc.opts[2].budget, 128, 0);
	CLOSE(sc.opts[2].eps, 0.01, 0);
	CLOSE(sc.opts[2].ln_sigma, 0.3, 0);
	scenario_free(&sc);

	assert_int_equal(scenario_parse_policies("all"), POLICY_ALL);
	assert_int_equal(scenario_parse_policies("dynamic,mean"), POLICY_DYNAMIC | POLICY_MEAN);
	assert_int_equal(scenario_parse_policies("fast"), -1);
	assert_int_equal(scenario_parse_policies(""), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_good_minimal),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_traces_and_options),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_untrusted_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

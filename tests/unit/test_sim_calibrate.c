/* erg sim's and erg calibrate's command lines (sim_args, calibrate_args),
 * calibrate's docs/theory.md §1 fit, and erg sim's check that refuses to print
 * results that are not finite. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "calibrate_args.h"
#include "calibrate_fit.h"
#include "sim_args.h"
#include "sim_report.h"
#include "theory.h"

#define MAX_ARGS 16

/* sim_args_parse on a NULL-terminated list after "sim". */
static int sim_parse(struct sim_args *a, ...)
{
	char *argv[MAX_ARGS + 2] = { "sim" };
	int argc = 1;
	va_list ap;

	va_start(ap, a);
	for (char *s; argc <= MAX_ARGS && (s = va_arg(ap, char *)); )
		argv[argc++] = s;
	va_end(ap);
	argv[argc] = NULL;
	return sim_args_parse(argc, argv, a);
}

static void test_sim_options(void **state)
{
	(void)state;
	struct sim_args a;

	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", NULL), 0);
	assert_string_equal(a.scenario, "s.ini");
	assert_int_equal(a.supply_kind, SIM_SUPPLY_DEFAULT);
	assert_int_equal(a.realiser, -1);
	/* options in any order */
	assert_int_equal(sim_parse(&a, "--slots", "500", "--scenario", "s.ini", "--seed", "9", "--quiet", NULL), 0);
	assert_int_equal(a.slots, 500);
	assert_true(a.have_seed && a.seed == 9 && a.quiet);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--sweep-supply", "0.8:1.2:0.02", NULL), 0);
	assert_int_equal(a.supply_kind, SIM_SUPPLY_SWEEP);
	assert_true(a.supply_multiple);
	assert_true(a.supply[0] == 0.8 && a.supply[1] == 1.2 && a.supply[2] == 0.02);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--sweep-supply", "12000:18000:500J", NULL), 0);
	assert_false(a.supply_multiple);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--supply", "15000", NULL), 0);
	assert_false(a.supply_multiple);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--supply", "20x", NULL), 0);
	assert_true(a.supply_multiple && a.supply[0] == 20);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--storage", "unlimited", "--realiser", "random",
				   NULL), 0);
	assert_true(isinf(a.storage) && a.realiser == 1);
	assert_int_equal(sim_parse(&a, "--help", NULL), 1);
}

static void test_sim_bad_options(void **state)
{
	(void)state;
	struct sim_args a;

	assert_int_equal(sim_parse(&a, "-x", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--sweep-supply", "0.8:1.2:0.02:5", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--sweep-supply", "0.8:1.2", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--sweep-supply", "1.2:0.8:0.1", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--sweep-supply", "1:1e9:1e-9", NULL), 2);
	const char *supplies[] = { "nan", "inf", "1e309", "0", "-1", "1001x", "2e15J", "", "1.1xx" };
	for (size_t i = 0; i < sizeof(supplies) / sizeof(supplies[0]); i++)
		assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--supply", supplies[i], NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--storage", "nan", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--storage", "2e15", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--slots", "1e3", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--slots", "0", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--seed", "-1", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--policy", "cheapest", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--supply", "1", "--sweep-supply", "1:2:1", NULL), 2);
	assert_int_equal(sim_parse(&a, "--scenario", "s.ini", "--series", "x.csv", "--sweep-supply", "1:2:1", NULL), 2);
	assert_int_equal(sim_parse(&a, "--quiet", NULL), 2);
}

static void test_calibrate_worker(void **state)
{
	(void)state;
	struct cal_worker w;
	char err[256];

	memset(&w, 0, sizeof(w));
	assert_int_equal(cal_parse_worker("erg-30m:4242:8081:340M", &w, err, sizeof(err)), 0);
	assert_string_equal(w.name, "erg-30m");
	assert_int_equal(w.pid, 4242);
	assert_int_equal(w.url.port, 8081);
	assert_true(w.params == 340e6);
	assert_int_equal(cal_parse_worker("q:1:80:8B", &w, err, sizeof(err)), 0);
	assert_true(w.params == 8e9);
	/* empty fields count: five fields, not pid 1 port 2 */
	assert_int_equal(cal_parse_worker("a::1:2:3", &w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NAME:PID:PORT:PARAMS"));
	assert_int_equal(cal_parse_worker("a:1x:8080:1e9", &w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--worker PID '1x'"));
	assert_int_equal(cal_parse_worker("a:1:0:1e9", &w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--worker PORT"));
	assert_int_equal(cal_parse_worker("a:1:65536:1e9", &w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--worker PORT"));
	const char *params[] = { "a:1:80:inf", "a:1:80:nan", "a:1:80:0", "a:1:80:-3", "a:1:80:2e15", "a:1:80:5Q" };
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		assert_int_equal(cal_parse_worker(params[i], &w, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "--worker PARAMS"));
	}
	assert_int_equal(cal_parse_worker("a\"b:1:80:1e9", &w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--worker NAME"));
	assert_int_equal(cal_parse_worker("a:1:80", &w, err, sizeof(err)), -1);
}

static void test_calibrate_options(void **state)
{
	(void)state;
	struct cal_args *a = calloc(1, sizeof(*a));
	char *ok[] = { "calibrate", "-v", "--worker", "a:1:80:1e9", "--worker", "b:2:81:2e9",
		       "--idle-watts", "50", "--requests", "3", NULL };
	char *inf[] = { "calibrate", "--worker", "a:1:80:1e9", "--worker", "b:2:81:2e9",
			"--idle-watts", "inf", NULL };
	char *one[] = { "calibrate", "--worker", "a:1:80:1e9", NULL };

	assert_non_null(a);
	assert_int_equal(cal_args_parse(10, ok, a), 0);
	assert_true(a->verbose);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->requests, 3);
	assert_true(a->energy.model.idle_watts == 50);
	assert_int_equal(cal_args_parse(7, inf, a), 2);
	assert_int_equal(cal_args_parse(3, one, a), 2);
	free(a);
}

static void test_calibrate_fit(void **state)
{
	(void)state;
	struct cal_worker ws[3];
	double eta, r2;
	bool lowered;

	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < 3; i++) {
		ws[i].params = 1e8 * (i + 1);
		ws[i].j_per_token = 2.0 * ws[i].params / 2e11;	/* exactly eta = 2e11 */
	}
	assert_int_equal(cal_fit_eta(ws, 3, &eta, &r2), 0);
	assert_true(fabs(eta / 2e11 - 1) < 1e-12);
	assert_true(fabs(r2 - 1) < 1e-12);
	ws[0].j_per_token = ws[1].j_per_token = ws[2].j_per_token = 0;
	assert_int_equal(cal_fit_eta(ws, 3, &eta, &r2), -1);
	/* docs/theory.md §1 defaults: small models cannot reach 0.99, so the target is lowered */
	struct scaling_params sp = { .a0 = THEORY_A0, .a1 = THEORY_A1, .beta = THEORY_BETA, .a_max = THEORY_A_MAX };
	double budgets[] = { 256, 16384 };
	double t = cal_reachable_target(&sp, budgets, 2, 0.99, ws, 3, &lowered);
	assert_true(lowered && t < 0.99);
	assert_true(cal_reachable_target(&sp, budgets, 2, 0.0, ws, 3, &lowered) == 0.0 && !lowered);
}

/* The last line of defence: a job whose results overflowed is refused. */
static void test_results_check(void **state)
{
	(void)state;
	struct scenario *sc = calloc(1, sizeof(*sc));
	struct sim_job jobs[2];
	struct sim_plan p = { .sc = sc, .path = "x.ini", .bstar = 100, .sigma_ref = 10, .mu_v = 100,
			      .sigma_v = 10, .jobs = jobs, .n_jobs = 2 };
	char err[512];

	assert_non_null(sc);
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 2; i++)
		jobs[i] = (struct sim_job){ .level = 100, .sum = { .mu = 100, .sigma = 10, .aux = 4, .waste = 4,
								 .cost = 8, .accuracy = 0.6, .tasks = 10,
								 .aux_theory = NAN } };
	assert_int_equal(sim_results_check(&p, err, sizeof(err)), 0);
	jobs[1].sum.tasks = 0;		/* no task: accuracy undefined, fine */
	jobs[1].sum.accuracy = NAN;
	assert_int_equal(sim_results_check(&p, err, sizeof(err)), 0);
	jobs[0].sum.waste = INFINITY;
	assert_int_equal(sim_results_check(&p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "waste"));
	assert_non_null(strstr(err, "x.ini"));
	jobs[0].sum.waste = 4;
	p.sigma_ref = NAN;
	assert_int_equal(sim_results_check(&p, err, sizeof(err)), -1);
	free(sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_options),
		cmocka_unit_test(test_sim_bad_options),
		cmocka_unit_test(test_calibrate_worker),
		cmocka_unit_test(test_calibrate_options),
		cmocka_unit_test(test_calibrate_fit),
		cmocka_unit_test(test_results_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

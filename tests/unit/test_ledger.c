/* The live ledger: slot closing, settlement identity (docs/theory.md §3), moments,
 * the drift test of docs/theory.md §4, options, journal resume, output helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "journal.h"
#include "ledger.h"

/* A small fixed generator, so every run of the tests sees the same data. */
static uint64_t rng_state;
static double urand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
	double u = urand(), v = urand();

	return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

#define MAXS 4096
struct seen {
	int n;
	struct journal_slot s[MAXS];
	double capacity;
	int violations;
};

static void on_slot(void *ctx, const struct journal_slot *slot)
{
	struct seen *c = ctx;
	const struct slot_outcome *o = &slot->out;
	double resid = o->aux - o->waste - (o->demand - o->supply + o->storage - slot->storage_before);

	/* docs/theory.md §3: A - W = D - b + (S' - S), 0 <= S' <= C, and S of a slot
	 * is S' of the one before. */
	if (fabs(resid) > 1e-9 * (1 + o->demand + o->supply + c->capacity) ||
	    o->storage < 0 || o->storage > c->capacity || o->aux < 0 || o->waste < 0 ||
	    (c->n > 0 && slot->storage_before != c->s[c->n - 1].out.storage))
		c->violations++;
	if (c->n < MAXS)
		c->s[c->n++] = *slot;
}

static struct ledger *open_const(double watts, double cap, struct seen *seen)
{
	struct ledger_config cfg;
	char err[512] = "";
	struct ledger *l;

	ledger_config_init(&cfg);
	cfg.supply_watts = watts;
	cfg.supply_given = cfg.given = true;
	cfg.storage_joules = cap;
	if (seen) {
		seen->capacity = cap;
		cfg.on_slot = on_slot;
		cfg.on_slot_ctx = seen;
	}
	l = ledger_open(&cfg, err, sizeof(err));
	if (!l)
		fail_msg("ledger_open: %s", err);
	return l;
}

static void test_slot_closing_splits_demand(void **state)
{
	static struct seen seen;
	struct ledger *l;
	(void)state;

	memset(&seen, 0, sizeof(seen));
	l = open_const(100, 0, &seen);
	ledger_start(l, 10.0);
	assert_int_equal(ledger_add_demand(l, 10.5, 50), 0);
	assert_int_equal(ledger_stats(l)->slots, 0);
	assert_true(ledger_open_demand(l) == 50);
	/* 100 J over [10.5, 11.5): half into slot 0, half into slot 1. */
	assert_int_equal(ledger_add_demand(l, 11.5, 100), 0);
	assert_int_equal(seen.n, 1);
	assert_true(fabs(seen.s[0].out.demand - 100) < 1e-9);
	/* 300 J over [11.5, 14.5): 50 + 100 + 100 + 50 (open). */
	assert_int_equal(ledger_add_demand(l, 14.5, 300), 0);
	assert_int_equal(seen.n, 4);
	assert_true(fabs(seen.s[1].out.demand - 100) < 1e-9);
	assert_true(fabs(seen.s[2].out.demand - 100) < 1e-9);
	assert_true(fabs(seen.s[3].out.demand - 100) < 1e-9);
	assert_true(fabs(ledger_open_demand(l) - 50) < 1e-9);
	/* A flush closes the slot that ended, with no new demand. */
	assert_int_equal(ledger_flush(l, 15.0), 0);
	assert_int_equal(seen.n, 5);
	assert_true(fabs(seen.s[4].out.demand - 50) < 1e-9);
	assert_true(fabs(seen.s[4].out.waste - 50) < 1e-9);	/* 100 J supplied, no storage */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(seen.s[i].index, i);
		assert_true(seen.s[i].t_start_s == i);
		assert_true(seen.s[i].out.supply == 100);
	}
	/* Energy in = energy settled + the open slot. */
	assert_true(fabs(ledger_stats(l)->total_demand + ledger_open_demand(l) - 450) < 1e-9);
	/* Time that stands still or steps back adds to the open slot. */
	assert_int_equal(ledger_add_demand(l, 14.0, 7), 0);
	assert_int_equal(seen.n, 5);
	assert_true(fabs(ledger_open_demand(l) - 7) < 1e-9);
	ledger_close(l);
}

static void test_conservation_every_slot(void **state)
{
	static struct seen seen;
	struct ledger *l;
	double t = 0, in = 0;
	(void)state;

	memset(&seen, 0, sizeof(seen));
	rng_state = 0x9e3779b97f4a7c15ull;
	l = open_const(100, 300, &seen);
	ledger_start(l, 0);
	/* Irregular ticks, demand around the supply so storage fills and empties. */
	while (t < 2000) {
		double dt = 0.05 + 1.5 * urand(), j = dt * (100 + 80 * nrand());

		if (j < 0)
			j = 0;
		t += dt;
		in += j;
		assert_int_equal(ledger_add_demand(l, t, j), 0);
	}
	assert_true(seen.n >= 1999);
	assert_int_equal(seen.violations, 0);
	int full = 0, empty = 0;
	for (int i = 0; i < seen.n; i++) {
		full += seen.s[i].out.waste > 0;
		empty += seen.s[i].out.aux > 0;
	}
	assert_true(full > 10 && empty > 10);		/* both bounds were exercised */
	const struct ledger_stats *s = ledger_stats(l);
	assert_true(fabs(s->total_demand + ledger_open_demand(l) - in) < 1e-6 * in);
	/* Summed over the run: A - W = D - b + S_end - S_0, with S_0 = 0. */
	assert_true(fabs(s->total_aux - s->total_waste -
			 (s->total_demand - s->total_supply + ledger_storage(l))) < 1e-6 * in);
	ledger_close(l);
}

static double direct_mean(const double *x, int n)
{
	double s = 0;

	for (int i = 0; i < n; i++)
		s += x[i];
	return s / n;
}

static double direct_sd(const double *x, int n)
{
	double m = direct_mean(x, n), s = 0;

	for (int i = 0; i < n; i++)
		s += (x[i] - m) * (x[i] - m);
	return sqrt(s / (n - 1));
}

static void close_to(double got, double want, double rel)
{
	if (!(fabs(got - want) <= rel * fmax(1.0, fabs(want))))
		fail_msg("got %.17g, want %.17g", got, want);
}

static void test_moments_match_direct_computation(void **state)
{
	static struct seen seen;
	static double d[MAXS], b[MAXS], a[MAXS], w[MAXS], x[MAXS];
	struct ledger *l;
	(void)state;

	memset(&seen, 0, sizeof(seen));
	rng_state = 12345;
	/* Large offset, small spread: where the naive sum-of-squares formula
	 * loses digits and Welford must not. */
	l = open_const(1e6, 50, &seen);
	ledger_start(l, 0);
	for (int i = 1; i <= 3000; i++)
		ledger_add_demand(l, i, 1e6 + 40 * nrand());
	const struct ledger_stats *s = ledger_stats(l);
	int n = seen.n;

	assert_int_equal(n, 3000);
	assert_int_equal(s->slots, 3000);
	for (int i = 0; i < n; i++) {
		d[i] = seen.s[i].out.demand;
		b[i] = seen.s[i].out.supply;
		a[i] = seen.s[i].out.aux;
		w[i] = seen.s[i].out.waste;
		x[i] = b[i] - d[i];
	}
	close_to(s->demand.mean, direct_mean(d, n), 1e-12);
	close_to(ledger_moments_sigma(&s->demand), direct_sd(d, n), 1e-9);
	close_to(s->aux.mean, direct_mean(a, n), 1e-12);
	close_to(ledger_moments_sigma(&s->aux), direct_sd(a, n), 1e-9);
	close_to(s->waste.mean, direct_mean(w, n), 1e-12);
	close_to(ledger_moments_sigma(&s->waste), direct_sd(w, n), 1e-9);
	close_to(s->supply.mean, 1e6, 1e-15);
	assert_true(ledger_moments_sigma(&s->supply) < 1e-6);
	close_to(s->drift.mean, direct_mean(x, n), 1e-9);
	close_to(ledger_moments_sigma(&s->drift), direct_sd(x, n), 1e-9);
	close_to(s->total_demand, direct_mean(d, n) * n, 1e-12);
	assert_true(fabs(ledger_moments_sigma(&s->demand) - 40) < 2);	/* the spread fed in */
	ledger_close(l);
}

/* Feed n slots of D = mu + sd*noise against constant b straight into the
 * statistics. */
static void feed(struct ledger_stats *s, int n, double b, double mu, double sd)
{
	struct slot_outcome o;
	double storage = 0;

	for (int i = 0; i < n; i++)
		supply_step(fmax(0, mu + sd * nrand()), b, 0, &storage, &o), ledger_stats_add(s, &o);
}

static void test_regime_detection(void **state)
{
	struct ledger_stats s;
	(void)state;

	/* Over-supplied: b = mu + sigma/2, 400 slots: z about +10. */
	rng_state = 7;
	ledger_stats_init(&s);
	feed(&s, 400, 1050, 1000, 100);
	assert_int_equal(s.regime, LEDGER_OVER_SUPPLIED);
	assert_true(s.drift_z > 2);
	assert_true(fabs(s.drift_mean - 50) < 4 * s.drift_se);
	assert_string_equal(ledger_regime_name(s.regime), "over-supplied");

	/* Under-supplied. */
	ledger_stats_init(&s);
	feed(&s, 400, 950, 1000, 100);
	assert_int_equal(s.regime, LEDGER_UNDER_SUPPLIED);
	assert_true(s.drift_z < -2);
	assert_true(s.aux.mean > s.waste.mean);

	/* Critical: b = mu. The evidence is a standard error near
	 * sigma/sqrt(n) = 100/20 = 5 J and |z| within 2. */
	ledger_stats_init(&s);
	feed(&s, 400, 1000, 1000, 100);
	assert_int_equal(s.regime, LEDGER_CRITICAL);
	assert_true(fabs(s.drift_z) <= 2);
	assert_true(s.drift_se > 4 && s.drift_se < 6.5);
	/* At delta = 0, no storage: E[A] = E[W] = 0.3989 sigma (docs/theory.md §4.1). */
	assert_true(fabs(s.aux.mean - 39.89) < 4 * 60 / 20.0);
	assert_true(fabs(s.waste.mean - 39.89) < 4 * 60 / 20.0);
	assert_string_equal(ledger_regime_name(s.regime), "critical");

	/* A small drift hides in the noise at first and shows with more slots. */
	ledger_stats_init(&s);
	feed(&s, 20, 1010, 1000, 100);
	assert_int_equal(s.regime, LEDGER_CRITICAL);
	feed(&s, 20000, 1010, 1000, 100);
	assert_int_equal(s.regime, LEDGER_OVER_SUPPLIED);
}

static void test_regime_needs_enough_slots(void **state)
{
	struct ledger_stats s;
	struct slot_outcome o;
	double storage = 0;
	(void)state;

	ledger_stats_init(&s);
	assert_int_equal(s.regime, LEDGER_UNDETERMINED);
	for (int i = 0; i < LEDGER_MIN_SLOTS - 1; i++) {
		supply_step(10 + (i % 2), 1000, 0, &storage, &o);
		ledger_stats_add(&s, &o);
		assert_int_equal(s.regime, LEDGER_UNDETERMINED);
	}
	supply_step(10, 1000, 0, &storage, &o);
	ledger_stats_add(&s, &o);
	assert_int_equal(s.regime, LEDGER_OVER_SUPPLIED);

	/* A perfectly steady ledger: zero spread, zero drift is critical. */
	ledger_stats_init(&s);
	for (int i = 0; i < 20; i++) {
		supply_step(100, 100, 0, &storage, &o);
		ledger_stats_add(&s, &o);
	}
	assert_int_equal(s.regime, LEDGER_CRITICAL);
	assert_true(s.drift_z == 0);
}

static void test_drift_se_widens_for_autocorrelation(void **state)
{
	static double x[5000];
	struct ledger_stats s;
	struct slot_outcome o;
	double storage = 0, e = 0, m, sd, r = 0, cxy = 0, cxx = 0, cyy = 0, mx = 0, my = 0;
	int n = 5000;
	(void)state;

	/* AR(1) demand, phi = 0.6: neighbouring slots alike, as when requests
	 * run across slot boundaries. */
	rng_state = 99;
	ledger_stats_init(&s);
	for (int i = 0; i < n; i++) {
		e = 0.6 * e + 30 * nrand();
		supply_step(1000 + e, 1000, 0, &storage, &o);
		ledger_stats_add(&s, &o);
		x[i] = o.supply - o.demand;
	}
	m = direct_mean(x, n);
	sd = direct_sd(x, n);
	for (int i = 1; i < n; i++)
		mx += x[i - 1], my += x[i];
	mx /= n - 1;
	my /= n - 1;
	for (int i = 1; i < n; i++) {
		cxy += (x[i - 1] - mx) * (x[i] - my);
		cxx += (x[i - 1] - mx) * (x[i - 1] - mx);
		cyy += (x[i] - my) * (x[i] - my);
	}
	r = cxy / sqrt(cxx * cyy);
	close_to(s.drift_lag1, r, 1e-9);
	assert_true(r > 0.5 && r < 0.7);
	close_to(s.drift_se, sd / sqrt(n) * sqrt((1 + r) / (1 - r)), 1e-9);
	close_to(s.drift_z, m / s.drift_se, 1e-9);
}

static void test_bad_demand_rejected(void **state)
{
	struct ledger *l = open_const(100, 0, NULL);
	(void)state;

	ledger_start(l, 0);
	assert_int_equal(ledger_add_demand(l, 0.5, 10), 0);
	assert_int_equal(ledger_add_demand(l, 0.7, -1), -1);
	assert_non_null(strstr(ledger_error(l), "demand"));
	assert_int_equal(ledger_add_demand(l, 0.7, NAN), -1);
	assert_int_equal(ledger_add_demand(l, INFINITY, 1), -1);
	assert_true(ledger_open_demand(l) == 10);
	assert_int_equal(ledger_stats(l)->slots, 0);
	ledger_close(l);
}

/* The ledger options as a command parses them: cli_next over a table with
 * LEDGER_LONG_OPTIONS and one option of the command's own (--interval). */
static int parse_all(struct ledger_config *cfg, int argc, char **argv, char *err, size_t errlen,
		     int *others)
{
	static const struct option longopts[] = {
		{ "interval", required_argument, NULL, 'i' },
		LEDGER_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	char *args[16] = { "test" };
	struct cli c;
	int opt;

	assert_true(argc < 15);
	memcpy(args + 1, argv, sizeof(*argv) * argc);
	*others = 0;
	cli_init(&c, "test", "", longopts);
	while ((opt = cli_next(&c, argc + 1, args)) != -1) {
		if (opt == 'i')
			*others += 2;
		else if (opt != LEDGER_GETOPT_VAL ||
			 ledger_set_option(cfg, longopts[c.longindex].name, optarg, err, errlen) < 0)
			return -1;
	}
	return ledger_config_check(cfg, err, errlen);
}

static void test_options(void **state)
{
	struct ledger_config cfg;
	char err[256];
	int others;
	(void)state;

	char *a1[] = { "--interval", "2", "--supply-watts", "150", "--storage-joules=3600",
		       "--slot", "0.5", "--journal", "/tmp/x.erg", "--no-fsync" };
	ledger_config_init(&cfg);
	assert_true(cfg.fsync && cfg.slot_s == 1.0 && !cfg.given);
	assert_int_equal(parse_all(&cfg, 10, a1, err, sizeof(err), &others), 0);
	assert_int_equal(others, 2);		/* "--interval" and "2" are not ours */
	assert_true(cfg.supply_watts == 150 && cfg.storage_joules == 3600 && cfg.slot_s == 0.5);
	assert_string_equal(cfg.journal_path, "/tmp/x.erg");
	assert_false(cfg.fsync);
	assert_true(cfg.given && cfg.supply_given);

	char *a2[] = { "--supply-watts", "100", "--supply-trace", "day.csv" };
	ledger_config_init(&cfg);
	assert_int_equal(parse_all(&cfg, 4, a2, err, sizeof(err), &others), -1);
	assert_non_null(strstr(err, "not both"));

	char *a3[] = { "--slot", "0" };
	ledger_config_init(&cfg);
	assert_int_equal(parse_all(&cfg, 2, a3, err, sizeof(err), &others), -1);
	assert_non_null(strstr(err, "--slot"));

	char *a4[] = { "--supply-watts", "-5" };
	ledger_config_init(&cfg);
	assert_int_equal(parse_all(&cfg, 2, a4, err, sizeof(err), &others), -1);
	char *a5[] = { "--supply-watts", "12abc" };
	ledger_config_init(&cfg);
	assert_int_equal(parse_all(&cfg, 2, a5, err, sizeof(err), &others), -1);
	assert_non_null(strstr(err, "12abc"));

	char *a6[] = { "--journal", "j.erg" };	/* a ledger needs a supply */
	ledger_config_init(&cfg);
	assert_int_equal(parse_all(&cfg, 2, a6, err, sizeof(err), &others), -1);
	assert_non_null(strstr(err, "--supply-watts"));

	char *a7[] = { "--storage-joules" };	/* value missing at the end */
	ledger_config_init(&cfg);
	assert_int_equal(parse_all(&cfg, 1, a7, err, sizeof(err), &others), -1);

	char *a8[] = { "--supply-trace=day.csv", "--no-fsync=yes" };
	ledger_config_init(&cfg);
	assert_int_equal(parse_all(&cfg, 2, a8, err, sizeof(err), &others), -1);
	assert_string_equal(cfg.supply_trace, "day.csv");

	ledger_config_init(&cfg);
	assert_int_equal(ledger_set_option(&cfg, "slot", "2", err, sizeof(err)), 1);
	assert_int_equal(ledger_set_option(&cfg, "pid", "2", err, sizeof(err)), 0);
	assert_true(cfg.slot_s == 2);

	/* Nothing given: no ledger, and that is fine. */
	ledger_config_init(&cfg);
	assert_int_equal(ledger_config_check(&cfg, err, sizeof(err)), 0);
	assert_false(cfg.given);
	assert_non_null(strstr(LEDGER_OPTIONS_HELP, "--supply-trace CSV"));
}

static void test_getopt_long_table(void **state)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		LEDGER_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	char *argv[] = { "top", "--pid", "42", "--supply-watts=80", "--slot", "2", "--no-fsync",
			 "--journal", "j.erg", NULL };
	struct ledger_config cfg;
	char err[256];
	int opt, idx = 0, pid = 0, applied = 0;
	(void)state;

	ledger_config_init(&cfg);
	optind = 1;
	while ((opt = getopt_long(9, argv, "+p:", longopts, &idx)) != -1) {
		if (opt == 'p')
			pid = atoi(optarg);
		else if (opt == LEDGER_GETOPT_VAL)
			applied += ledger_set_option(&cfg, longopts[idx].name, optarg, err, sizeof(err));
		else
			fail_msg("unexpected option %d", opt);
	}
	assert_int_equal(pid, 42);
	assert_int_equal(applied, 4);
	assert_true(cfg.supply_watts == 80 && cfg.slot_s == 2 && !cfg.fsync);
	assert_string_equal(cfg.journal_path, "j.erg");
	assert_int_equal(ledger_config_check(&cfg, err, sizeof(err)), 0);
}

static void test_journal_resume(void **state)
{
	char dir[] = "/tmp/erg-test-ledger-XXXXXX", path[128], err[512] = "";
	struct ledger_config cfg;
	struct ledger *l;
	double storage, demand;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger.erg", dir);
	ledger_config_init(&cfg);
	cfg.supply_watts = 100;
	cfg.supply_given = cfg.given = true;
	cfg.storage_joules = 500;
	cfg.journal_path = path;
	rng_state = 5;

	l = ledger_open(&cfg, err, sizeof(err));
	assert_non_null(l);
	assert_null(ledger_notice(l));			/* a new journal */
	ledger_start(l, 100);
	for (int i = 1; i <= 20; i++)
		assert_int_equal(ledger_add_demand(l, 100 + i, 70 + 40 * urand()), 0);
	ledger_add_demand(l, 120.5, 40);		/* open slot: not recorded */
	storage = ledger_storage(l);
	demand = ledger_stats(l)->total_demand;
	assert_true(storage > 0);
	ledger_close(l);

	/* Reopened: statistics and storage carry on from the journal. */
	l = ledger_open(&cfg, err, sizeof(err));
	assert_non_null(l);
	assert_non_null(ledger_notice(l));
	assert_non_null(strstr(ledger_notice(l), "resumed after 20 slots"));
	assert_int_equal(ledger_stats(l)->slots, 20);
	assert_true(ledger_storage(l) == storage);
	assert_true(fabs(ledger_stats(l)->total_demand - demand) < 1e-9);
	ledger_start(l, 0);
	for (int i = 1; i <= 5; i++)
		assert_int_equal(ledger_add_demand(l, i, 100), 0);
	ledger_close(l);

	struct journal_scan scan;
	assert_int_equal(journal_read(path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_int_equal(scan.runs, 2);
	assert_int_equal(scan.slots, 25);
	assert_int_equal(scan.last_slot, 24);
	assert_int_equal(scan.missing_slots, 0);

	/* Another slot length would mix incomparable slots: refused. */
	cfg.slot_s = 2;
	assert_null(ledger_open(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "--slot 1"));
	cfg.slot_s = 1;
	cfg.storage_joules = 0;
	assert_null(ledger_open(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "--storage-joules 500"));
	assert_int_equal(journal_read(path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_int_equal(scan.runs, 2);		/* nothing was written */

	unlink(path);
	rmdir(dir);
}

static void test_inconsistent_slots_not_trusted(void **state)
{
	char dir[] = "/tmp/erg-test-ledger-XXXXXX", path[128], err[512] = "";
	struct journal_scan scan;
	struct journal *j;
	struct journal_record r = { .type = JOURNAL_RUN };
	struct ledger_config cfg;
	struct ledger *l;
	double storage = 0;
	(void)state;

	/* Settled by supply_step: valid. */
	struct journal_slot good = { .index = 0, .duration_s = 1, .storage_before = 0 };
	supply_step(80, 100, 50, &storage, &good.out);
	assert_true(ledger_slot_valid(&good, 50));
	assert_false(ledger_slot_valid(&good, 10));		/* S' = 20 > C */
	struct journal_slot bad = good;
	bad.index = 1;
	bad.out.aux = 5;					/* A - W != D - b + dS */
	assert_false(ledger_slot_valid(&bad, 50));
	struct journal_slot nan = good;
	nan.out.demand = NAN;
	assert_false(ledger_slot_valid(&nan, 50));

	/* A checksummed but impossible record is left out on resume too. */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/j.erg", dir);
	j = journal_open(path, false, NULL, NULL, &scan, err, sizeof(err));
	assert_non_null(j);
	r.run.slot_s = 1;
	r.run.capacity_j = 50;
	r.run.supply_watts = 100;
	assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	r.type = JOURNAL_SLOT;
	r.slot = good;
	assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	r.slot = bad;
	assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	journal_close(j, NULL, 0);

	ledger_config_init(&cfg);
	cfg.supply_watts = 100;
	cfg.supply_given = cfg.given = true;
	cfg.storage_joules = 50;
	cfg.journal_path = path;
	l = ledger_open(&cfg, err, sizeof(err));
	if (!l)
		fail_msg("%s", err);
	assert_int_equal(ledger_stats(l)->slots, 1);
	assert_true(ledger_stats(l)->total_demand == 80);
	assert_true(ledger_storage(l) == 20);
	ledger_close(l);
	unlink(path);
	rmdir(dir);
}

static void test_format_and_json(void **state)
{
	struct ledger *l = open_const(120, 1000, NULL);
	char buf[1024];
	int n, lines = 0;
	(void)state;

	n = ledger_format_lines(l, buf, sizeof(buf));
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_non_null(strstr(buf, "undetermined"));
	ledger_start(l, 0);
	for (int i = 1; i <= 30; i++)
		ledger_add_demand(l, i, 100);
	n = ledger_format_lines(l, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 3);
	assert_non_null(strstr(buf, "over-supplied"));
	assert_non_null(strstr(buf, "30 slots"));
	assert_non_null(strstr(buf, "storage 600 J of 1 kJ"));
	/* the surplus has all gone to storage: no waste to speak of yet */
	assert_non_null(strstr(buf, "surplus goes to storage (no waste yet)"));
	assert_null(strstr(buf, "persistent waste"));
	assert_non_null(strstr(buf, "waste 0 J"));
	/* Truncation keeps snprintf semantics. */
	char small[16];
	assert_int_equal(ledger_format_lines(l, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);

	cJSON *o = cJSON_CreateObject();
	ledger_add_json(l, o);
	assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "ledger");
	assert_string_equal(cJSON_GetObjectItem(o, "regime")->valuestring, "over-supplied");
	assert_true(cJSON_GetObjectItem(o, "slots")->valuedouble == 30);
	cJSON *last = cJSON_GetObjectItem(o, "last");
	assert_true(cJSON_GetObjectItem(last, "demand")->valuedouble == 100);
	/* 20 J surplus a slot fills 1000 J of storage in 50 slots: no waste yet. */
	assert_true(cJSON_GetObjectItem(last, "waste")->valuedouble == 0);
	assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "total"), "supply")->valuedouble == 3600);
	cJSON *drift = cJSON_GetObjectItem(o, "drift");
	assert_true(cJSON_GetObjectItem(drift, "mean")->valuedouble == 20);
	/* sigma 0 makes z infinite: JSON has no infinity, so null. */
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(drift, "z")));
	cJSON_Delete(o);

	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "tick");
	ledger_add_json(l, o);
	assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "tick");
	cJSON_Delete(o);

	/* 20 more slots fill the storage; after that the surplus is wasted */
	for (int i = 31; i <= 60; i++)
		ledger_add_demand(l, i, 100);
	ledger_format_lines(l, buf, sizeof(buf));
	assert_non_null(strstr(buf, "storage 1 kJ of 1 kJ"));
	assert_non_null(strstr(buf, "z > 2: persistent waste"));
	assert_null(strstr(buf, "no waste yet"));
	assert_non_null(strstr(buf, "waste 200 J"));

	char j[32];
	ledger_format_joules(j, sizeof(j), 812);
	assert_string_equal(j, "812 J");
	ledger_format_joules(j, sizeof(j), 3412);
	assert_string_equal(j, "3.41 kJ");
	ledger_format_joules(j, sizeof(j), 1.2e6);
	assert_string_equal(j, "1.2 MJ");
	ledger_close(l);
}

static void test_trace_supply(void **state)
{
	char dir[] = "/tmp/erg-test-ledger-XXXXXX", path[128], err[512] = "";
	struct ledger_config cfg;
	struct ledger *l;
	static struct seen seen;
	FILE *fp;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/flat.csv", dir);
	fp = fopen(path, "w");
	fputs("seconds,watts\n0,50\n100,50\n", fp);
	fclose(fp);
	memset(&seen, 0, sizeof(seen));
	ledger_config_init(&cfg);
	cfg.supply_trace = path;
	cfg.supply_given = cfg.given = true;
	cfg.slot_s = 2;
	cfg.on_slot = on_slot;
	cfg.on_slot_ctx = &seen;
	l = ledger_open(&cfg, err, sizeof(err));
	if (!l)
		fail_msg("%s", err);
	ledger_start(l, 0);
	ledger_add_demand(l, 6, 300);
	assert_int_equal(seen.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(fabs(seen.s[i].out.supply - 100) < 1e-6);	/* 50 W x 2 s */
		assert_true(fabs(seen.s[i].out.demand - 100) < 1e-9);
	}
	assert_true(fabs(ledger_supply_watts(l) - 50) < 1e-9);
	ledger_close(l);

	cfg.supply_trace = "/nonexistent/trace.csv";
	assert_null(ledger_open(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/trace.csv"));
	unlink(path);
	rmdir(dir);
}

/* The regime's wording follows where the energy went, not only the sign of
 * the drift: waste and auxiliary are named only once there are some. */
static void test_regime_reason(void **state)
{
	struct ledger_stats s;
	char buf[1024];
	struct ledger *l;
	(void)state;

	ledger_stats_init(&s);
	assert_string_equal(ledger_regime_reason(&s), "");
	s.regime = LEDGER_CRITICAL;
	assert_string_equal(ledger_regime_reason(&s), "|z| <= 2");
	s.regime = LEDGER_OVER_SUPPLIED;
	assert_string_equal(ledger_regime_reason(&s), "z > 2: surplus goes to storage (no waste yet)");
	s.total_waste = 1e-6;
	assert_string_equal(ledger_regime_reason(&s), "z > 2: persistent waste");
	s.regime = LEDGER_UNDER_SUPPLIED;
	assert_string_equal(ledger_regime_reason(&s), "z < -2: storage covers the deficit (no auxiliary yet)");
	s.total_aux = 3;
	assert_string_equal(ledger_regime_reason(&s), "z < -2: persistent auxiliary");

	/* no storage: a surplus is waste from the first slot */
	l = open_const(120, 0, NULL);
	ledger_start(l, 0);
	for (int i = 1; i <= 20; i++)
		ledger_add_demand(l, i, 100);
	ledger_format_lines(l, buf, sizeof(buf));
	assert_non_null(strstr(buf, "z > 2: persistent waste"));
	ledger_close(l);
	/* a deficit with empty storage is auxiliary at once */
	l = open_const(80, 1000, NULL);
	ledger_start(l, 0);
	for (int i = 1; i <= 20; i++)
		ledger_add_demand(l, i, 100);
	ledger_format_lines(l, buf, sizeof(buf));
	assert_non_null(strstr(buf, "under-supplied"));
	assert_non_null(strstr(buf, "z < -2: persistent auxiliary"));
	ledger_close(l);
}

/* A one-day trace (0 W at midnight, 1000 W at noon) opened at a given local
 * time of day supplies that hour's watts from the first slot. */
static struct ledger *open_day(const char *path, double tod, const char *start, struct seen *seen)
{
	struct ledger_config cfg;
	char err[512] = "";
	struct ledger *l;

	ledger_config_init(&cfg);
	assert_true(isnan(cfg.time_of_day_s));	/* the clock by default */
	assert_int_equal(ledger_set_option(&cfg, "supply-trace", path, err, sizeof(err)), 1);
	if (start)
		assert_int_equal(ledger_set_option(&cfg, "supply-trace-start", start, err, sizeof(err)), 1);
	assert_int_equal(ledger_config_check(&cfg, err, sizeof(err)), 0);
	cfg.slot_s = 60;
	cfg.time_of_day_s = tod;
	memset(seen, 0, sizeof(*seen));
	cfg.on_slot = on_slot;
	cfg.on_slot_ctx = seen;
	l = ledger_open(&cfg, err, sizeof(err));
	if (!l)
		fail_msg("%s", err);
	return l;
}

/* Watts of the test day at t seconds after midnight (t in [43200, 86400]). */
static double day_watts(double t)
{
	return 1000.0 * (1 - (t - 43200) / 43200);
}

static void test_day_trace_follows_clock(void **state)
{
	char dir[] = "/tmp/erg-test-ledger-XXXXXX", path[128], buf[1024], err[256];
	static struct seen seen;
	struct ledger_config cfg;
	struct ledger *l;
	FILE *fp;
	const double t14 = 14 * 3600.0;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/day.csv", dir);
	fp = fopen(path, "w");
	fputs("seconds,watts\n0,0\n43200,1000\n", fp);
	fclose(fp);

	/* attached at 14:00: the first slot is 14:00-14:01, not midnight's 0 W */
	l = open_day(path, t14, NULL, &seen);
	close_to(ledger_supply_watts(l), day_watts(t14), 1e-9);
	close_to(ledger_trace_position(l), t14, 1e-12);
	ledger_format_lines(l, buf, sizeof(buf));
	assert_non_null(strstr(buf, "(trace at 14:00)"));
	ledger_start(l, 0);
	ledger_add_demand(l, 120, 1000);
	assert_int_equal(seen.n, 2);
	close_to(seen.s[0].out.supply, 60 * day_watts(t14 + 30), 1e-9);
	close_to(seen.s[1].out.supply, 60 * day_watts(t14 + 90), 1e-9);
	assert_int_equal(seen.violations, 0);
	ledger_format_lines(l, buf, sizeof(buf));
	assert_non_null(strstr(buf, "(trace at 14:02)"));
	cJSON *o = cJSON_CreateObject();
	ledger_add_json(l, o);
	close_to(cJSON_GetObjectItem(o, "supply_trace_position_s")->valuedouble, t14 + 120, 1e-12);
	cJSON_Delete(o);
	ledger_close(l);

	/* 'now': second 0 of the trace, midnight's 0 W, whatever the clock */
	l = open_day(path, t14, "now", &seen);
	close_to(ledger_supply_watts(l) + 1, 1, 1e-12);
	ledger_start(l, 0);
	ledger_add_demand(l, 60, 10);
	close_to(seen.s[0].out.supply, 60 * 1000.0 * 30 / 43200, 1e-9);
	ledger_close(l);

	/* HH:MM: second 0 was at 13:00, so at 14:00 the trace is at 01:00 */
	l = open_day(path, t14, "13:00", &seen);
	close_to(ledger_trace_position(l), 3600, 1e-12);
	close_to(ledger_supply_watts(l), 1000.0 * 3600 / 43200, 1e-9);
	ledger_close(l);

	/* a start without a trace names the fix */
	ledger_config_init(&cfg);
	assert_int_equal(ledger_set_option(&cfg, "supply-watts", "100", err, sizeof(err)), 1);
	assert_int_equal(ledger_set_option(&cfg, "supply-trace-start", "08:00", err, sizeof(err)), 1);
	assert_int_equal(ledger_config_check(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--supply-trace CSV"));
	ledger_config_init(&cfg);
	assert_int_equal(ledger_set_option(&cfg, "supply-trace-start", "25:00", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HH:MM"));
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_closing_splits_demand),
		cmocka_unit_test(test_conservation_every_slot),
		cmocka_unit_test(test_moments_match_direct_computation),
		cmocka_unit_test(test_regime_detection),
		cmocka_unit_test(test_regime_needs_enough_slots),
		cmocka_unit_test(test_drift_se_widens_for_autocorrelation),
		cmocka_unit_test(test_bad_demand_rejected),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_getopt_long_table),
		cmocka_unit_test(test_journal_resume),
		cmocka_unit_test(test_inconsistent_slots_not_trusted),
		cmocka_unit_test(test_format_and_json),
		cmocka_unit_test(test_trace_supply),
		cmocka_unit_test(test_regime_reason),
		cmocka_unit_test(test_day_trace_follows_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

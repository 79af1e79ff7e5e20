/* erg sim's options, on the shared cli layer. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "errbuf.h"
#include "scenario.h"
#include "sim_args.h"

static const char usage_text[] =
"usage: erg sim --scenario FILE [--policy mean|variance|dynamic|all]\n"
"               [--supply B | --sweep-supply LO:HI:STEP] [--slots N] [--seed S]\n"
"               [--storage C] [--realiser swrr|random] [--json] [--svg FILE]\n"
"               [--series FILE] [--quiet]\n"
"\n"
"Simulates a workload routed to a catalog of models and reasoning budgets\n"
"against an energy supply (docs/theory.md §1-§5) and compares the simulation with\n"
"the closed forms. The output leads with the critical supply b* (the mean\n"
"demand mu of the cheapest mix that meets the accuracy target), sigma, the\n"
"volatility-limited cost at b*, the variance shares and each policy's mix.\n"
"\n"
"  --scenario FILE      INI scenario (see docs/sim.md; scenarios/reference.ini)\n"
"  --policy P           mean, variance, dynamic, all, or a comma list\n"
"                       (default: the scenario's [sim] policy, else all)\n"
"  --supply B           one supply level (see 'Supply values' below; default:\n"
"                       the scenario's supply_joules, else b*)\n"
"  --sweep-supply LO:HI:STEP\n"
"                       supply levels LO, LO+STEP, ... HI (at most 10000)\n"
"  Supply values:       a bare number up to 10 is a multiple of\n"
"                       b* (0.8:1.2:0.02 is 80%..120% of b*); a larger one is\n"
"                       joules per slot. A suffix forces either: 1.1x, 15000J.\n"
"                       Multiples go up to 1000, joules up to 1e15.\n"
"                       With a supply trace the level is the trace's mean.\n"
"  --slots N            slots per simulated run, 1 to 1e8 (default: scenario,\n"
"                       else 20000)\n"
"  --seed S             random seed, 0 to 2^63-1 (default: scenario, else 1);\n"
"                       every run uses the same seed, so policies see the\n"
"                       same tasks\n"
"  --storage C          storage capacity in joules (up to 1e15), 'unlimited'\n"
"                       or 0 (default: the scenario's storage_joules)\n"
"  --realiser R         swrr (deterministic, default) or random routing\n"
"  --json               print one JSON document instead of text\n"
"  --svg FILE           write auxiliary energy, waste and cost against supply,\n"
"                       per policy, with the critical point marked\n"
"  --series FILE        write the per-slot series (CSV) of a single supply level\n"
"  --quiet              no progress line on stderr\n"
"\n"
"Policies: mean = mean-only (least energy at the accuracy target);\n"
"variance = variance-aware (least c_e*mu + price of sigma, docs/theory.md §5, with\n"
"mu <= supply where that is feasible); dynamic = ledger feedback (spend\n"
"surplus on larger budgets, cut budgets in shortage, long-run accuracy at\n"
"the target). Simulated aux/waste/cost are per-slot means over the run;\n"
"theory columns are docs/theory.md §4.1 (no storage), §4.3 (storage) or §4.4\n"
"(unlimited storage, at the policy's own mean only); '-' where no closed form\n"
"applies (dynamic policy, storage with a trace).\n"
"Exit status: 0 ok, 1 runtime failure (including results that are not\n"
"finite), 2 usage or scenario error.\n";

enum { UNIT_NONE, UNIT_MULTIPLE, UNIT_JOULES };

/* Split "1.1x" into the number and its unit suffix. */
static int strip_unit(const char *s, char *num, size_t len, int *unit)
{
	size_t n = strlen(s);

	*unit = UNIT_NONE;
	if (n && strchr("xX", s[n - 1]))
		*unit = UNIT_MULTIPLE;
	else if (n && strchr("jJ", s[n - 1]))
		*unit = UNIT_JOULES;
	if (*unit != UNIT_NONE)
		n--;
	if (n >= len)
		return -1;
	memmove(num, s, n);	/* num may be s */
	num[n] = '\0';
	return 0;
}

/* One value's range, once its reading (multiple or joules) is known. */
static bool supply_in_range(double v, bool multiple)
{
	return v > 0.0 && v <= (multiple ? SIM_MAX_MULTIPLE : SIM_MAX_SUPPLY_J);
}

static int bad_supply(const char *opt, const char *s, const char *form, char *err, size_t errlen)
{
	char q[80];

	errbuf_set(err, errlen, "%s '%s': expected %s a multiple of b* up to %g "
		   "(1.1 or 1.1x) or joules per slot up to %g (15000 or 15000J)", opt,
		   cli_quote(s, q, sizeof(q)), form, SIM_MAX_MULTIPLE, SIM_MAX_SUPPLY_J);
	return -1;
}

static int parse_supply(const char *s, struct sim_args *a, char *err, size_t errlen)
{
	char num[64];
	int unit;

	if (strip_unit(s, num, sizeof(num), &unit) ||
	    cli_double("--supply", num, -INFINITY, INFINITY, "supply", &a->supply[0], NULL, 0))
		return bad_supply("--supply", s, "a number above 0:", err, errlen);
	a->supply_multiple = unit ? unit == UNIT_MULTIPLE : a->supply[0] <= SIM_MULTIPLE_LIMIT;
	if (!supply_in_range(a->supply[0], a->supply_multiple))
		return bad_supply("--supply", s, "a number above 0:", err, errlen);
	a->supply_kind = SIM_SUPPLY_ONE;
	return 0;
}

/* LO:HI:STEP, exactly three fields, each with an optional unit. */
static int parse_sweep(const char *s, struct sim_args *a, char *err, size_t errlen)
{
	char bare[192], field[64], q[80];
	int unit[3] = { 0 }, k = 0, u;
	size_t used = 0;

	bare[0] = '\0';
	for (const char *p = s;; k++) {
		size_t len = strcspn(p, ":");

		if (len >= sizeof(field) || used + len + 2 > sizeof(bare))
			return bad_supply("--sweep-supply", s, "LO:HI:STEP, three numbers above 0, each", err, errlen);
		memcpy(field, p, len);
		field[len] = '\0';
		strip_unit(field, field, sizeof(field), k < 3 ? &unit[k] : &u);
		used += (size_t)snprintf(bare + used, sizeof(bare) - used, "%s%s", k ? ":" : "", field);
		if (!p[len])
			break;
		p += len + 1;
	}
	if (cli_double_list("--sweep-supply", bare, ':', 3, a->supply, NULL, 0))
		return bad_supply("--sweep-supply", s, "LO:HI:STEP, three numbers above 0, each", err, errlen);
	u = unit[0] ? unit[0] : unit[1] ? unit[1] : unit[2];
	for (int i = 0; i < 3; i++)
		if (unit[i] && unit[i] != u) {
			errbuf_set(err, errlen, "--sweep-supply '%s' mixes 'x' and 'J' units; use one",
				   cli_quote(s, q, sizeof(q)));
			return -1;
		}
	a->supply_multiple = u ? u == UNIT_MULTIPLE : a->supply[1] <= SIM_MULTIPLE_LIMIT;
	for (int i = 0; i < 3; i++)
		if (!supply_in_range(a->supply[i], a->supply_multiple))
			return bad_supply("--sweep-supply", s, "LO:HI:STEP, three numbers above 0, each", err, errlen);
	if (a->supply[1] < a->supply[0]) {
		errbuf_set(err, errlen, "--sweep-supply '%s': needs LO <= HI", cli_quote(s, q, sizeof(q)));
		return -1;
	}
	double count = floor((a->supply[1] - a->supply[0]) / a->supply[2] + 1e-9) + 1.0;
	if (!(count <= SIM_MAX_LEVELS)) {
		errbuf_set(err, errlen, "--sweep-supply '%s' gives %.0f levels, more than %d; use a larger STEP",
			   cli_quote(s, q, sizeof(q)), count, SIM_MAX_LEVELS);
		return -1;
	}
	a->supply_kind = SIM_SUPPLY_SWEEP;
	return 0;
}

static int parse_storage(const char *s, struct sim_args *a, char *err, size_t errlen)
{
	char q[80];

	a->have_storage = true;
	if (!strcmp(s, "unlimited") || !strcmp(s, "inf")) {
		a->storage = INFINITY;
		return 0;
	}
	if (!cli_double("--storage", s, 0.0, SIM_MAX_SUPPLY_J, "joules", &a->storage, NULL, 0))
		return 0;
	errbuf_set(err, errlen, "--storage '%s': expected joules from 0 to %g, or 'unlimited'",
		   cli_quote(s, q, sizeof(q)), SIM_MAX_SUPPLY_J);
	return -1;
}

static int parse_policy(const char *s, struct sim_args *a, char *err, size_t errlen)
{
	char q[80];

	a->policies = scenario_parse_policies(s);
	if (a->policies > 0)
		return 0;
	errbuf_set(err, errlen, "--policy '%s': expected mean, variance, dynamic, all or a comma list",
		   cli_quote(s, q, sizeof(q)));
	return -1;
}

/* One option's value into *a; -1 with the message in err. */
static int take_option(int opt, const char *v, struct sim_args *a, char *err, size_t errlen)
{
	static const char *const realisers[] = { "swrr", "random", NULL };
	long long n;

	switch (opt) {
	case 'c': a->scenario = v; return 0;
	case 'p': return parse_policy(v, a, err, errlen);
	case 'b': return parse_supply(v, a, err, errlen);
	case 'w': return parse_sweep(v, a, err, errlen);
	case 'n':
		if (cli_long("--slots", v, 1, 100000000, "slots", &n, err, errlen))
			return -1;
		a->slots = (long)n;
		return 0;
	case 's':
		if (cli_long("--seed", v, 0, INT64_MAX, "a seed", &n, err, errlen))
			return -1;
		a->seed = (uint64_t)n;
		a->have_seed = true;
		return 0;
	case 'C': return parse_storage(v, a, err, errlen);
	case 'r': return cli_choice("--realiser", v, realisers, &a->realiser, err, errlen);
	case 'j': a->json = true; return 0;
	case 'g': a->svg_path = v; return 0;
	case 'S': a->series_path = v; return 0;
	case 'q': a->quiet = true; return 0;
	}
	errbuf_set(err, errlen, "internal: option %d has no handler", opt);
	return -1;
}

/* Combinations no single option can judge. */
static int check_combination(const struct sim_args *a, const char **msg)
{
	if (!a->scenario)
		*msg = "--scenario FILE is required (try scenarios/reference.ini; see 'erg sim --help')";
	else if (a->supply_kind == SIM_SUPPLY_SWEEP && a->series_path)
		*msg = "--series writes one supply level; drop --sweep-supply or use --supply";
	else
		return 0;
	return -1;
}

int sim_args_parse(int argc, char **argv, struct sim_args *a)
{
	static const struct option longopts[] = {
		{ "scenario", required_argument, NULL, 'c' },
		{ "policy", required_argument, NULL, 'p' },
		{ "supply", required_argument, NULL, 'b' },
		{ "sweep-supply", required_argument, NULL, 'w' },
		{ "slots", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "storage", required_argument, NULL, 'C' },
		{ "realiser", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "svg", required_argument, NULL, 'g' },
		{ "series", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum sim_supply_kind seen = SIM_SUPPLY_DEFAULT;
	struct cli c;
	char err[512], q[80];
	const char *msg;
	int opt;

	memset(a, 0, sizeof(*a));
	a->realiser = -1;
	cli_init(&c, "erg sim", "h", longopts);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		if (opt == CLI_ERROR)
			return 2;
		if (opt == 'h') {
			fputs(usage_text, stdout);
			return 1;
		}
		if ((opt == 'b' && seen == SIM_SUPPLY_SWEEP) || (opt == 'w' && seen == SIM_SUPPLY_ONE))
			return cli_fail(&c, "give --supply or --sweep-supply, not both");
		if (take_option(opt, optarg, a, err, sizeof(err)))
			return cli_fail(&c, err);
		seen = a->supply_kind;
	}
	if (optind < argc) {
		snprintf(err, sizeof(err), "unexpected argument '%s' (see 'erg sim --help')",
			 cli_quote(argv[optind], q, sizeof(q)));
		return cli_fail(&c, err);
	}
	if (check_combination(a, &msg))
		return cli_fail(&c, msg);
	return 0;
}

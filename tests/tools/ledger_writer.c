/* Test helper: a ledger that journals slots as fast as its fsyncs allow,
 * on simulated time, until it is killed or has written --slots slots.
 * After each slot is durable it prints "slots N ok" (N = slots in the
 * journal), so a test that kills it knows what must have survived.
 *   ledger_writer [--slots N] [--interval-us U] LEDGER OPTIONS... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ledger.h"

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "slots", required_argument, NULL, 's' },
		{ "interval-us", required_argument, NULL, 'u' },
		LEDGER_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ledger_config cfg;
	struct ledger *l;
	struct cli cli;
	char err[1024];
	int opt;
	long max_slots = 100000, interval_us = 200;
	uint64_t x = 88172645463325252ull;
	double t = 0;

	ledger_config_init(&cfg);
	cli_init(&cli, "ledger_writer", "", longopts);
	while ((opt = cli_next(&cli, argc, argv)) != -1) {
		long long v;

		if (opt == LEDGER_GETOPT_VAL) {
			if (ledger_set_option(&cfg, longopts[cli.longindex].name, optarg, err, sizeof(err)) < 0)
				return cli_fail(&cli, err);
		} else if (opt == 's' || opt == 'u') {
			if (cli_long(cli.name, optarg, 1, 100000000, opt == 's' ? "slots" : "microseconds",
				     &v, err, sizeof(err)))
				return cli_fail(&cli, err);
			*(opt == 's' ? &max_slots : &interval_us) = (long)v;
		} else {
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ledger_writer: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (ledger_config_check(&cfg, err, sizeof(err)) || !cfg.journal_path) {
		fprintf(stderr, "ledger_writer: %s\n", cfg.journal_path ? err : "--journal FILE is required");
		return 2;
	}
	l = ledger_open(&cfg, err, sizeof(err));
	if (!l) {
		fprintf(stderr, "ledger_writer: %s\n", err);
		return 1;
	}
	if (ledger_notice(l))
		fprintf(stderr, "ledger_writer: %s\n", ledger_notice(l));
	ledger_start(l, 0);
	for (long n = 0; n < max_slots; n++) {
		/* Demand around the supply: uniform in [0.5, 1.5) of one slot's. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double u = (double)(x >> 11) / 9007199254740992.0;

		t += cfg.slot_s;
		if (ledger_add_demand(l, t, cfg.supply_watts * cfg.slot_s * (0.5 + u))) {
			fprintf(stderr, "ledger_writer: %s\n", ledger_error(l));
			return 1;
		}
		printf("slots %llu ok\n", (unsigned long long)ledger_stats(l)->slots);
		fflush(stdout);
		if (interval_us > 0)
			usleep(interval_us);
	}
	ledger_close(l);
	return 0;
}

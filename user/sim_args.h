/* erg sim's command line: every option read through the shared cli layer
 * (user/cli.h), every number finite and range-checked, before the scenario
 * is loaded. */
#ifndef ERG_SIM_ARGS_H
#define ERG_SIM_ARGS_H

#include <stdbool.h>
#include <stdint.h>

/* Most supply levels one sweep may ask for. */
#define SIM_MAX_LEVELS 10000
/* A bare supply value up to this is a multiple of b*, above it joules. */
#define SIM_MULTIPLE_LIMIT 10.0
/* Supply values: a multiple of b* up to SIM_MAX_MULTIPLE, joules per slot
 * up to SIM_MAX_SUPPLY_J; the same bound for a storage capacity. */
#define SIM_MAX_MULTIPLE 1000.0
#define SIM_MAX_SUPPLY_J 1e15

enum sim_supply_kind { SIM_SUPPLY_DEFAULT, SIM_SUPPLY_ONE, SIM_SUPPLY_SWEEP };

struct sim_args {
	const char *scenario;		/* --scenario FILE */
	const char *svg_path;		/* NULL: no chart */
	const char *series_path;	/* NULL: no per-slot CSV */
	int policies;			/* POLICY_* mask; 0: the scenario's */
	enum sim_supply_kind supply_kind;
	double supply[3];		/* ONE: supply[0]; SWEEP: LO, HI, STEP */
	bool supply_multiple;		/* values are multiples of b* (else J per slot) */
	long slots;			/* 0: the scenario's */
	bool have_seed;
	uint64_t seed;
	bool have_storage;
	double storage;			/* J; INFINITY: unlimited */
	int realiser;			/* enum realiser; -1: the scenario's */
	bool json, quiet;
};

/* Read argv. 0: run with *a; 1: --help was printed (exit 0); 2: a one-line
 * usage error was printed on stderr (exit 2). */
int sim_args_parse(int argc, char **argv, struct sim_args *a);

#endif

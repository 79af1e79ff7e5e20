/* erg sim scenario files: INI (libinih) describing the model catalog
 * (docs/theory.md §1), the workload (§2), the supply and storage (§3), the prices
 * (§4) and the run. The format is documented in docs/sim.md. Every error
 * names the file, the line and the key. */
#ifndef ERG_SCENARIO_H
#define ERG_SCENARIO_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include "scaling.h"
#include "simulate.h"
#include "supply_trace.h"

#define SCEN_MAX_MODELS 32
#define SCEN_MAX_BUDGETS 16
#define SCEN_MAX_OPTIONS 256
/* [serve] between_budgets: at most this many budgets between two listed ones */
#define SERVE_BETWEEN_MAX 8

/* Policies to run, as a bit mask. */
enum {
	POLICY_MEAN = 1 << 0,
	POLICY_VARIANCE = 1 << 1,
	POLICY_DYNAMIC = 1 << 2,
	POLICY_ALL = POLICY_MEAN | POLICY_VARIANCE | POLICY_DYNAMIC,
};

struct scenario {
	char path[PATH_MAX];
	char name[64];
	struct scaling_params sp;
	int n_models;
	struct model_spec models[SCEN_MAX_MODELS];
	int n_budgets;			/* the [workload] budgets */
	double budgets[SCEN_MAX_BUDGETS];
	int n_opts;			/* models x their budgets */
	struct task_option opts[SCEN_MAX_OPTIONS];
	double acc_target;
	double slot_seconds;
	struct sim_arrivals arrivals;	/* trace owned below */
	char arrival_trace_path[PATH_MAX];
	struct supply_trace *arrival_trace;
	double supply_joules;		/* J per slot; 0: the critical supply b* */
	char supply_trace_path[PATH_MAX];
	struct supply_trace *supply_trace;
	double storage;			/* C, J; 0 none; INFINITY unlimited */
	double c_a, c_w, c_e;
	long slots;
	uint64_t seed;
	int policies;			/* POLICY_* mask */
	enum realiser how;
	double dyn_horizon_slots;	/* dynamic policy: credit horizon, slots */
	double dyn_max_dip;		/* dynamic policy: most the floor moves */
	int model_line[SCEN_MAX_MODELS];	/* line of each [model NAME] header */
};

/* erg serve reads the same file (serve_config.h): it adds [serve] keys and
 * repeatable worker = lines in [model NAME]. on_key sees each of them
 * (model: index or -1) and returns 0, or -1 with a message (no file or
 * line) in msg. Without hooks their form is checked and they are ignored,
 * so erg sim runs on a serve.ini unchanged. models_only: a file with only
 * [serve] and [model NAME] sections is whole (no options are built,
 * n_opts 0; each model needs params or joules_per_token). */
struct scenario_hooks {
	void *ud;
	int (*on_key)(void *ud, const char *section, int model, const char *key, const char *value,
		      int line, char *msg, size_t msglen);
	int models_only;
};

/* Load and check a scenario. 0 ok; -1 with "FILE:LINE: key 'K' in [S]: ..."
 * in err. Traces are loaded relative to the scenario's directory. */
int scenario_load(const char *path, struct scenario *sc, char *err, size_t errlen);
int scenario_load_hooked(const char *path, struct scenario *sc, const struct scenario_hooks *hooks,
			 char *err, size_t errlen);
void scenario_free(struct scenario *sc);
/* "mean", "variance", "dynamic", "all" or a comma list of them: a mask, or -1. */
int scenario_parse_policies(const char *s);
/* Name of option i, e.g. "8B@16384". */
void scenario_option_name(const struct scenario *sc, int i, char *buf, size_t len);

#endif

/* Steering of "model": "auto" requests in erg serve (docs/theory.md §5).
 *
 * The options are the (model, budget) pairs of the serve.ini scenario
 * (serve_config.h). A policy picks one per request:
 *   rr        the options that meet the accuracy target on their own, in turn
 *   least     of those, the cheapest of the model with the fewest requests
 *             outstanding (erg's own count of auto requests)
 *   energy    the mean-only mix (policy_mean_only), realised by SWRR
 *   variance  the variance-aware mix (policy_variance_aware) by SWRR, and
 *             with a supply known, the dynamic ledger feedback of erg sim
 *             (sim_dynamic_route): supply not yet committed in the slot,
 *             accuracy credit; the same code erg sim runs
 * The per-request decision takes one mutex, is O(1) in the number of
 * options (rr, energy: a mix of at most 3; variance: the dynamic policy's
 * table; least: O(models)) and allocates nothing.
 *
 * Estimates: each option's J/request is a Welford mean and variance of what
 * erg measured for requests routed to it, seeded by the scenario's prior (the
 * scaling law or joules_per_token) counted as ROUTER_PRIOR_WEIGHT requests.
 * Options not measured yet get their prior scaled by what measured options
 * cost against their priors (measured joules are the machine's, priors the
 * file's). NaN, zero, negative or absurd (over ROUTER_ABSURD x the prior)
 * joules are dropped. router_slot() re-runs the optimiser with these, off
 * the hot path. */
#ifndef ERG_ROUTER_H
#define ERG_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "scenario.h"

#define ROUTER_PRIOR_WEIGHT 5.0
#define ROUTER_MAX_GROUPS 9		/* "auto" and up to 8 pools */
#define ROUTER_ABSURD 1000.0

enum router_policy { ROUTER_RR, ROUTER_LEAST, ROUTER_ENERGY, ROUTER_VARIANCE };

/* "rr", "least", "energy", "variance": 0 and *out, or -1. */
int router_policy_parse(const char *s, enum router_policy *out);
const char *router_policy_name(enum router_policy p);

struct router_choice {
	int option;			/* index in the scenario's options */
	int model;			/* its model (index in serve_config.models) */
	unsigned budget;		/* tokens: max_tokens to set */
};

/* What the ledger says each slot (router_slot). */
struct router_ledger {
	double now_s;			/* CLOCK_MONOTONIC */
	double supply_per_slot;		/* J the slot may spend; <= 0: not known */
	double storage;			/* J stored now; storage_capacity 0: none */
	double storage_capacity;
	double slot_start_s;		/* CLOCK_MONOTONIC start of the ledger's open
					 * slot, or NAN: the router's slots begin on
					 * the ledger's, so "committed in this slot"
					 * is the slot the ledger books */
};

/* One option, for the live view and /metrics. */
struct router_option_view {
	int model;
	unsigned budget;
	double acc;			/* expected accuracy of a request */
	double weight;			/* share in the current mix (0 if none) */
	double share;			/* share of auto requests routed so far */
	uint64_t routed;
	uint64_t measured;		/* joule samples taken */
	uint64_t rejected;		/* joule samples dropped (NaN, <= 0, absurd) */
	double j_mean, j_sd;		/* the estimate the optimiser uses, J */
};

struct router_view {
	enum router_policy policy;
	bool feasible;			/* the policy can route: some mix (energy,
					 * variance) or some option alone (rr, least)
					 * meets the accuracy target */
	bool dynamic;			/* variance: the ledger feedback is on */
	double acc_target;
	double expected_accuracy;	/* mean over auto requests routed; NaN before one */
	uint64_t routed, refused;	/* auto requests routed, answered 503 */
	int n_opts;
};

struct router;

/* Groups: group 0 is "auto", every model's options; group 1 + i is pool i,
 * the options of the models in pool_models[i] (bit k: model k). Each group
 * has its own mix, dynamic policy and counts; estimates are shared, so a
 * request of any group teaches them all. With pools, the ledger's supply is
 * split among the groups as their requests are. NULL with a message naming
 * the problem in err (no options, too many pools, no memory). sc must
 * outlive the router. A group whose options cannot meet the target is not
 * an error: its requests get 503 and router_view says it is not feasible. */
/* between_budgets > 0: that many budgets more between each two neighbouring
 * listed budgets of a model are options too (log-spaced, whole tokens; up
 * to SCEN_MAX_OPTIONS in all), their priors interpolated from the two
 * neighbours' estimates by the scaling law's shape and their accuracy in
 * ln T; they are numbered after the scenario's options. */
struct router *router_new(const struct scenario *sc, enum router_policy policy, double now_s,
			  const uint32_t *pool_models, int n_pools, int between_budgets, char *err,
			  size_t errlen);
void router_free(struct router *r);
int router_groups(const struct router *r);

/* Choose for one steered request of group. 0, or -1 when no option of the
 * group meets the accuracy target (answer 503). Thread-safe;
 * allocation-free. */
int router_choose(struct router *r, int group, double now_s, struct router_choice *out);
/* A request router_choose() placed is over (least's outstanding count). */
void router_release(struct router *r, int option);
/* A request of option's took joules (its status ok or not): into the
 * estimate unless the figure is bad. Returns true if it was taken. */
bool router_measured(struct router *r, int option, double joules);
/* Remember which option request id went to, for router_measured_id() once
 * its joules are known (a fixed table: a very old entry may be gone). */
void router_track(struct router *r, uint64_t id, int option);
/* The option request id went to (forgotten after), or -1. */
int router_take(struct router *r, uint64_t id);

/* Off the hot path, once per slot or tick: new estimates into the mix and
 * the dynamic policy. */
void router_slot(struct router *r, const struct router_ledger *in);

/* A group's figures (an unknown group: group 0's). */
void router_view(struct router *r, int group, struct router_view *out);
/* Option i as group sees it: 0, or -1 if i or group is out of range or the
 * option is not the group's. */
int router_option_view(struct router *r, int group, int i, struct router_option_view *out);

#endif

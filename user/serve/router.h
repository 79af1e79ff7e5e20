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
	bool feasible;			/* some mix meets the accuracy target */
	bool dynamic;			/* variance: the ledger feedback is on */
	double acc_target;
	double expected_accuracy;	/* mean over auto requests routed; NaN before one */
	uint64_t routed, refused;	/* auto requests routed, answered 503 */
	int n_opts;
};

struct router;

/* NULL with a message naming the problem in err (no options, no mix that
 * meets the target, no memory). sc must outlive the router. */
struct router *router_new(const struct scenario *sc, enum router_policy policy, double now_s,
			  char *err, size_t errlen);
void router_free(struct router *r);

/* Choose for one auto request. 0, or -1 when no option meets the accuracy
 * target (answer 503). Thread-safe; allocation-free. */
int router_choose(struct router *r, double now_s, struct router_choice *out);
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

void router_view(struct router *r, struct router_view *out);
/* 0, or -1 if i is out of range. */
int router_option_view(struct router *r, int i, struct router_option_view *out);

#endif

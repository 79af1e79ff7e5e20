/* The live supply ledger (docs/theory.md §3, §4): measured demand is entered as it
 * happens, time is cut into slots, and each closed slot is settled against
 * the baseline supply and optional storage (supply_step), folded into
 * running first and second moments, tested for drift (the regime of
 * docs/theory.md §4) and appended to the journal. No output of its own: callers
 * format it with ledger_format_lines / ledger_add_json.
 *
 * Typical use (erg top):
 *   struct ledger_config cfg; ledger_config_init(&cfg);
 *   ... LEDGER_LONG_OPTIONS in the option table, ledger_set_option() for
 *       each of them, then ledger_config_check(&cfg, err, sizeof(err));
 *   if (cfg.given) l = ledger_open(&cfg, err, sizeof(err));
 *   every tick: ledger_add_demand(l, now_s, joules_since_last_tick);
 *   at exit: ledger_close(l);
 * Times are seconds on one monotonic clock of the caller's choosing. */
#ifndef ERG_LEDGER_H
#define ERG_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "journal.h"
#include "supply.h"
#include "supply_trace.h"

struct cJSON;

struct ledger_config {
	double supply_watts;		/* constant baseline supply b/slot_s, W */
	const char *supply_trace;	/* CSV trace (supply_trace.h) instead, or NULL */
	struct supply_trace_start trace_start;	/* where the run enters the trace */
	bool trace_start_given;		/* --supply-trace-start was given */
	/* Local time of day when the run starts, seconds after midnight, for
	 * aligning a trace; NAN (the default) reads the clock. Tests set it. */
	double time_of_day_s;
	double storage_joules;		/* storage capacity C; 0 = none (docs/theory.md §3.1) */
	double slot_s;			/* slot length, s (default 1) */
	const char *journal_path;	/* append-only journal, or NULL */
	bool fsync;			/* fsync the journal after every slot (default on) */
	bool given;			/* some ledger option was given */
	bool supply_given;		/* --supply-watts or --supply-trace was given */
	/* Called after each slot is settled and written to the journal (may be
	 * NULL); it is synced by the time ledger_add_demand returns. */
	void (*on_slot)(void *ctx, const struct journal_slot *slot);
	void *on_slot_ctx;
};

/* The ledger options, for a command's --help. */
#define LEDGER_OPTIONS_HELP \
	"supply ledger (docs/theory.md §3-§4; enabled by --supply-watts or --supply-trace):\n" \
	"  --supply-watts W       constant baseline supply, watts\n" \
	"  --supply-trace CSV     baseline supply from a \"seconds,watts\" CSV trace\n" \
	"                         (interpolated, repeats after its last row; a\n" \
	"                         one-day trace follows the local clock: its\n" \
	"                         second 0 is midnight)\n" \
	"  --supply-trace-start now|HH:MM\n" \
	"                         where the run enters the trace: 'now' starts at\n" \
	"                         its second 0, HH:MM puts second 0 at that local\n" \
	"                         time (default: 00:00 for a one-day trace, else now)\n" \
	"  --storage-joules C     storage capacity, joules (default 0: no storage)\n" \
	"  --slot SECONDS         ledger slot length (default 1)\n" \
	"  --journal FILE         append one checksummed record per slot to FILE\n" \
	"                         (read it with 'erg ledger FILE')\n" \
	"  --no-fsync             do not fsync the journal after every slot (it is\n" \
	"                         still synced when the ledger closes)\n"

/* For getopt_long users: put LEDGER_LONG_OPTIONS in the option table (with
 * <getopt.h> included); getopt_long returns LEDGER_GETOPT_VAL for each of
 * them, and then
 *   ledger_set_option(&cfg, longopts[longindex].name, optarg, err, errlen)
 * applies it (pass &longindex to getopt_long). */
#define LEDGER_GETOPT_VAL 0x4c47
#define LEDGER_LONG_OPTIONS \
	{ "supply-watts", required_argument, NULL, LEDGER_GETOPT_VAL }, \
	{ "supply-trace", required_argument, NULL, LEDGER_GETOPT_VAL }, \
	{ "supply-trace-start", required_argument, NULL, LEDGER_GETOPT_VAL }, \
	{ "storage-joules", required_argument, NULL, LEDGER_GETOPT_VAL }, \
	{ "slot", required_argument, NULL, LEDGER_GETOPT_VAL }, \
	{ "journal", required_argument, NULL, LEDGER_GETOPT_VAL }, \
	{ "no-fsync", no_argument, NULL, LEDGER_GETOPT_VAL }

void ledger_config_init(struct ledger_config *cfg);

/* One option by name without dashes ("supply-watts"), value NULL for a
 * flag. 1 applied, 0 not a ledger option, -1 bad value (message in err). */
int ledger_set_option(struct ledger_config *cfg, const char *name, const char *value,
		      char *err, size_t errlen);
/* After parsing: both supply options, or ledger options with no supply, are
 * errors. 0 ok, -1 with the message in err. */
int ledger_config_check(const struct ledger_config *cfg, char *err, size_t errlen);

/* Running mean and second central moment (Welford). */
struct ledger_moments {
	uint64_t n;
	double mean;
	double m2;
};
void ledger_moments_add(struct ledger_moments *m, double x);
double ledger_moments_sigma(const struct ledger_moments *m);	/* sample SD, n-1 */

enum ledger_regime {
	LEDGER_UNDETERMINED,		/* fewer than LEDGER_MIN_SLOTS slots */
	LEDGER_OVER_SUPPLIED,		/* mean(b-D) > +2 SE: waste, once storage is full */
	LEDGER_CRITICAL,		/* |mean(b-D)| <= 2 SE */
	LEDGER_UNDER_SUPPLIED,		/* mean(b-D) < -2 SE: auxiliary, once storage is empty */
};
#define LEDGER_MIN_SLOTS 10
#define LEDGER_DRIFT_Z 2.0

/* Everything the ledger has settled; the same whether built live or by
 * replaying a journal. */
struct ledger_stats {
	uint64_t slots;
	struct slot_outcome last;	/* the last closed slot */
	double total_demand, total_supply, total_aux, total_waste;
	struct ledger_moments demand, supply, aux, waste;
	struct ledger_moments drift;	/* b - D per slot */
	/* The drift test (docs/theory.md §4): z = mean(b-D) / SE. SE is the standard
	 * error of the mean, widened by sqrt((1+r)/(1-r)) for the lag-1
	 * autocorrelation r of b-D (clamped to [0, 0.9]) because requests
	 * that span slots make neighbouring slots alike. */
	enum ledger_regime regime;
	double drift_mean, drift_se, drift_z, drift_lag1;
	/* lag-1 pairs (x_{t-1}, x_t) of b-D, bivariate Welford */
	struct { uint64_t n; double prev, mx, my, cxx, cyy, cxy; } lag;
};

void ledger_stats_init(struct ledger_stats *s);
/* Fold one settled slot in and re-run the drift test. */
void ledger_stats_add(struct ledger_stats *s, const struct slot_outcome *o);
/* "over-supplied", "critical", "under-supplied", "undetermined" */
const char *ledger_regime_name(enum ledger_regime r);
/* Why the regime was called and what it costs so far: "|z| <= 2",
 * "z > 2: persistent waste", or, while storage has absorbed every surplus,
 * "z > 2: surplus goes to storage (no waste yet)"; the same for deficits
 * and auxiliary energy. "" while undetermined. */
const char *ledger_regime_reason(const struct ledger_stats *s);
/* Adds slots, last, total, mean, sigma, regime and drift fields to obj. */
void ledger_stats_add_json(const struct ledger_stats *s, struct cJSON *obj);
/* Whether a journaled slot is one the ledger could have settled (docs/theory.md
 * §3): finite, non-negative energies, A - W = D - b + (S' - S) and
 * 0 <= S' <= capacity. Slots that fail are not trusted. */
bool ledger_slot_valid(const struct journal_slot *s, double capacity_j);
/* Text for energies: "812 J", "3.41 kJ", "1.20 MJ". */
void ledger_format_joules(char *buf, size_t len, double joules);

struct ledger;

/* Open a ledger (and its journal: existing slots are replayed into the
 * statistics and the storage level, a torn last record is cut, a run record
 * is appended). NULL on failure with a one-line message in err. Strings of
 * cfg are copied. */
struct ledger *ledger_open(const struct ledger_config *cfg, char *err, size_t errlen);
/* Start the clock at now_s (otherwise the first add/flush starts it; once
 * started, later calls do nothing). */
void ledger_start(struct ledger *l, double now_s);
/* Enter joules of demand consumed between the previous call and now_s.
 * They are split over the slots that interval covers in proportion to the
 * overlap; every slot that ended by now_s is closed, settled and journaled.
 * 0, or -1 on a bad argument or a journal write failure (message in
 * ledger_error; after a write failure the ledger goes on without journal). */
int ledger_add_demand(struct ledger *l, double now_s, double joules);
/* Close the slots that ended by now_s with no new demand; sync the journal. */
int ledger_flush(struct ledger *l, double now_s);
/* Close the journal and free. The open, partial slot is not recorded. */
void ledger_close(struct ledger *l);

const struct ledger_stats *ledger_stats(const struct ledger *l);
/* Storage level now, J. */
double ledger_storage(const struct ledger *l);
/* Baseline supply at the current slot, W. */
double ledger_supply_watts(const struct ledger *l);
/* Where the current slot is in the supply trace, seconds in [0, period);
 * NAN without a trace. */
double ledger_trace_position(const struct ledger *l);
/* Demand entered into the open slot so far, J. */
double ledger_open_demand(const struct ledger *l);
/* When the open slot began, on the clock ledger_start() was given (the
 * CLOCK_MONOTONIC seconds of measure_now()); NAN before the start. Slot k
 * starts at this + k slots. */
double ledger_slot_start(const struct ledger *l);
/* The last error message ("" if none). */
const char *ledger_error(const struct ledger *l);
/* A one-line note from ledger_open worth showing once (journal resumed,
 * torn record cut, damage found), or NULL. */
const char *ledger_notice(const struct ledger *l);

/* Three lines for the text view (each ending in '\n'); snprintf semantics. */
int ledger_format_lines(const struct ledger *l, char *buf, size_t len);
/* Adds "type":"ledger" (unless obj has a type) and the ledger's fields. */
void ledger_add_json(const struct ledger *l, struct cJSON *obj);

#endif

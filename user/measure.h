/* The measuring pipeline of erg top, for any command that attaches to
 * workers: from a target_set and options it opens the CPU tracker (BPF), the
 * socket tracker and request windows, the node energy source, the GPU part
 * and the supply ledger; each measure_tick() then reads them all and splits
 * the interval's energy among the workers, their models and their requests.
 * Nothing is printed except one-line notices on stderr (prefixed with
 * opts->prog) for parts that turn themselves off.
 *
 * Conservation holds per tick and cumulatively, to the nanojoule:
 *   sum over workers of tick_nj = tick_attributed_nj,
 *   attributed_nj + unattributed_nj = total_nj (CPU + GPU).
 *
 * Typical use (erg top; erg serve the same with its own loop):
 *   m = measure_open(&targets, &opts, &exit_status, err, sizeof(err));
 *   while (...) {
 *           measure_wait(m, next, &stop);          // drains socket events
 *           measure_tick(m, measure_now(), err, sizeof(err));
 *           ... measure_workers(m)[w].tick_nj, measure_models(m),
 *               measure_totals(m), measure_completed(m, &n) ...
 *   }
 *   measure_finish(m); measure_close(m);
 * Times are CLOCK_MONOTONIC seconds (measure_now()). */
#ifndef ERG_MEASURE_H
#define ERG_MEASURE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "energy.h"
#include "gpu_top.h"
#include "ledger.h"
#include "requests.h"
#include "targets.h"
#include "tracker.h"

struct measure_opts {
	const char *prog;		/* "erg top": prefix of the notices on stderr */
	struct energy_opts energy;
	struct tracker_opts tracker;
	struct gpu_top_opts gpu;
	struct ledger_config ledger;	/* opened when ledger.given */
	bool no_requests;		/* no socket tracking, no request windows */
	double request_idle_s;		/* quiet after a response that ends a request; <= 0: 2 s */
	const char *request_paths;	/* path prefixes that count as requests, comma-separated;
					 * NULL: REQUEST_DEFAULT_PATHS; a bad list fails
					 * measure_open (exit status 2) */
	int socket_hooks;		/* enum sock_hooks (sock_tracker.h); 0: auto */
	bool energy_source_given;	/* --energy-source was on the command line */
};

/* The energy and ledger options of every command that measures (erg top,
 * erg serve), one group: put MEASURE_LONG_OPTIONS in the option table (with
 * <getopt.h>); getopt_long returns MEASURE_GETOPT_VAL or LEDGER_GETOPT_VAL
 * for them, and
 *   measure_set_option(&opts, longopts[longindex].name, optarg, err, errlen)
 * applies either. measure_opts_init() first, measure_opts_check() after the
 * last option. */
#define MEASURE_GETOPT_VAL 0x4d45
#define MEASURE_LONG_OPTIONS \
	{ "energy-source", required_argument, NULL, MEASURE_GETOPT_VAL }, \
	{ "idle-watts", required_argument, NULL, MEASURE_GETOPT_VAL }, \
	{ "watts-per-core", required_argument, NULL, MEASURE_GETOPT_VAL }, \
	LEDGER_LONG_OPTIONS
#define MEASURE_ENERGY_OPTIONS_HELP \
"  -e, --energy-source SRC      auto (default: rapl, then hwmon, then model),\n" \
"                               rapl, hwmon or model\n" \
"      --idle-watts W           power model: node idle watts (never attributed;\n" \
"                               above 0, at most 1e6)\n" \
"      --watts-per-core W       power model: watts per busy core above idle\n" \
"                               (above 0, at most 1e6)\n"

/* The message for a bad request_paths list (a printf format, %s the list). */
#define MEASURE_REQUEST_PATHS_ERROR \
	"--request-paths '%s': give comma-separated path prefixes, each starting with '/', without spaces, " \
	"at most 16 of at most 64 bytes (default /v1/,/completion,/generate)"

/* Zeroes o, then the defaults: prog names the notices, no ledger. */
void measure_opts_init(struct measure_opts *o, const char *prog);
/* One option of the group by name without dashes ("idle-watts"); arg NULL
 * for a flag. 0 applied, -1 with a message naming the option in err (a bad
 * value, or a name not of the group). */
int measure_set_option(struct measure_opts *o, const char *name, const char *arg, char *err, size_t errlen);
/* After parsing: the ledger options agree (a supply, at most one). 0, or
 * -1 with the message in err. */
int measure_opts_check(const struct measure_opts *o, char *err, size_t errlen);

/* One worker (one target of the target_set, same index). */
struct measure_worker {
	size_t model;			/* index into measure_models() */
	unsigned procs;			/* live processes now */
	double cpu_s;			/* on-CPU seconds since attach */
	double tick_cpu_s;		/* on-CPU seconds this tick */
	uint64_t tick_nj;		/* nanojoules attributed this tick (CPU + GPU) */
	uint64_t nj;			/* nanojoules attributed since attach */
	uint64_t tick_request_nj;	/* part of tick_nj spent inside request windows */
};

/* The workers of one model name, summed. */
struct measure_model {
	const char *name;
	unsigned procs;
	double cpu_s;			/* cumulative since attach */
	uint64_t nj, tick_nj;		/* attributed: since attach, this tick */
	uint64_t gpu_nj;		/* GPU part of nj (0 while the GPU part is off) */
	uint64_t request_nj;		/* part of nj spent inside request windows */
	unsigned long long requests;	/* requests completed since attach */
	size_t requests_active;		/* open now */
};

struct measure_totals {
	double start_s, now_s;		/* attach time, time of the last tick */
	double tick_s;			/* length of the last tick */
	long ticks;
	uint64_t total_nj, attributed_nj, unattributed_nj;	/* since attach */
	uint64_t tick_total_nj;		/* node energy of the last tick */
	/* data loss, cumulative: socket events the kernel could not queue
	 * (their requests are cut short) and GPU busy-window updates given up
	 * under contention */
	unsigned long long dropped_events, gpu_races;
};

struct measure;

/* CLOCK_MONOTONIC seconds. */
double measure_now(void);
/* A CLOCK_MONOTONIC time as unix seconds, by the offset between the two
 * clocks taken once at measure_open (request start and end). */
double measure_unix_s(const struct measure *m, double mono_s);

/* Attach to targets (kept by pointer until measure_close; its model names
 * are used). NULL with a one-line message in err; *exit_status then says 2
 * (bad setup: targets, privileges, options) or 1 (a runtime failure). */
struct measure *measure_open(const struct target_set *targets, const struct measure_opts *opts,
			     int *exit_status, char *err, size_t errlen);

/* Wait until CLOCK_MONOTONIC until_s, draining socket events as they come
 * (none is lost to a full ring buffer while waiting). Returns true at
 * until_s, false as soon as *stop is set (a signal handler's flag). */
bool measure_wait(struct measure *m, double until_s, const volatile sig_atomic_t *stop);
/* For a caller with its own event loop: a file descriptor that is readable
 * when socket events wait (-1 if requests are off), and the drain. */
int measure_event_fd(const struct measure *m);
void measure_drain(struct measure *m);

/* Read everything at now_s and split the interval since the last tick.
 * 0, or -1 with a one-line message in err (the counters cannot be read). */
int measure_tick(struct measure *m, double now_s, char *err, size_t errlen);

size_t measure_n_workers(const struct measure *m);
const struct measure_worker *measure_workers(const struct measure *m);
size_t measure_n_models(const struct measure *m);
const struct measure_model *measure_models(const struct measure *m);
const struct measure_totals *measure_totals(const struct measure *m);
/* Requests completed in the last tick (valid until the next tick). */
const struct request_info *measure_completed(const struct measure *m, size_t *n);

/* The parts, for their descriptions and output (NULL when off). */
const struct energy_source *measure_energy(const struct measure *m);
const char *measure_sched_mode(const struct measure *m);
const struct gpu_top *measure_gpu(const struct measure *m);
const struct ledger *measure_ledger(const struct measure *m);
bool measure_requests_on(const struct measure *m);
/* "tp_btf", "raw_tp" or "syscalls": the socket hooks that run; "off" when
 * requests are off. */
const char *measure_socket_mode(const struct measure *m);
/* J/request (moments, histogram, p50/p90/p99) of model i's completed
 * requests since attach, partial ones left out; -1 when requests are off or
 * i is out of range. */
struct model_stats_snapshot;
int measure_request_stats(const struct measure *m, size_t model, struct model_stats_snapshot *out);

/* Close the ledger's slots up to the last tick and sync its journal. */
void measure_finish(struct measure *m);
/* Detach everything and free (NULL is fine). */
void measure_close(struct measure *m);

#endif

/* Node energy readers: RAPL powercap, hwmon, or a power model.
 *
 * A source reports cumulative joules since it was opened, and the node's
 * busy CPU time from /proc/stat (which the power model turns into joules
 * and attribution uses as the denominator of CPU shares). Every source says
 * what it is and whether its joules are measured or modelled. Sysfs and
 * procfs roots are configurable so the real readers run against fake trees
 * in tests. */
#ifndef ERG_ENERGY_H
#define ERG_ENERGY_H

#include <stdbool.h>
#include <stddef.h>

enum energy_choice { ENERGY_AUTO, ENERGY_RAPL, ENERGY_HWMON, ENERGY_MODEL };

/* Power model: P = idle_watts + watts_per_busy_core * busy cores.
 * A value <= 0 means "use the default" (energy.c documents the defaults);
 * above ENERGY_MAX_WATTS (or not finite) energy_open refuses it. */
#define ENERGY_MAX_WATTS 1e6
struct power_model {
	double idle_watts;
	double watts_per_busy_core;
};

struct energy_opts {
	enum energy_choice choice;	/* AUTO tries rapl, hwmon, model in that order */
	const char *sysfs_root;		/* NULL: "/sys" */
	const char *procfs_root;	/* NULL: "/proc" */
	struct power_model model;
};

struct energy_sample {
	double joules;		/* cumulative since energy_open() */
	double busy_cpu_s;	/* cumulative node busy CPU seconds since open (steal left out) */
	double wall_s;		/* seconds since open (from the now_s arguments) */
};

struct energy_source;

/* "auto", "rapl", "hwmon", "model", NULL: indexed by enum energy_choice,
 * for cli_choice(). */
extern const char *const energy_choice_names[];

/* Parse "auto", "rapl", "hwmon", "model"; false if unknown. */
bool energy_choice_parse(const char *s, enum energy_choice *out);

/* Open a source at monotonic time now_s. On failure returns NULL and writes
 * a one-line reason (which file, what to do, or the power model's range)
 * into err. A forced choice that
 * is not available fails; AUTO always succeeds (the model is last). */
struct energy_source *energy_open(const struct energy_opts *opts, double now_s,
				  char *err, size_t errlen);

/* Read at monotonic time now_s (seconds). Handles counter wraparound. Returns
 * 0, or -1 with a reason in err (the sample is then left unchanged). */
int energy_read(struct energy_source *src, double now_s, struct energy_sample *out,
		char *err, size_t errlen);

/* "rapl", "hwmon" or "model" */
const char *energy_name(const struct energy_source *src);
/* One line: what is read, e.g. "rapl: 2 package domains (measured counter)"
 * or "model: 3.0 W idle + 4.0 W per busy core (modelled, no counters)". */
const char *energy_describe(const struct energy_source *src);
bool energy_is_measured(const struct energy_source *src);
/* Idle power of the node: measured sources use the model's idle_watts as the
 * floor that is never attributed to a worker. */
double energy_idle_watts(const struct energy_source *src);
int energy_cpu_count(const struct energy_source *src);

void energy_close(struct energy_source *src);

#endif

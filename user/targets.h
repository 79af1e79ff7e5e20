/* What erg attaches to: --pid, --comm and --cgroup specs and the --config
 * INI file. Each spec is one worker (a slot in the BPF maps); workers with the
 * same model name are reported together. */
#ifndef ERG_TARGETS_H
#define ERG_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "erg.h"
#include "energy.h"

#define TARGET_MODEL_LEN 64
#define TARGET_PATH_LEN 512

enum target_kind { TARGET_PID, TARGET_COMM, TARGET_CGROUP };

struct target {
	enum target_kind kind;
	int pid;				/* TARGET_PID */
	char comm[ERG_COMM_LEN];		/* TARGET_COMM */
	char path[TARGET_PATH_LEN];		/* TARGET_CGROUP: cgroup v2 directory */
	unsigned long long cgroup_id;		/* TARGET_CGROUP: its inode number */
	char model[TARGET_MODEL_LEN];
};

struct target_set {
	struct target *items;
	size_t n, cap;
	/* [power] section of a config file; zero fields mean "not given". */
	struct power_model power;
	bool have_source;
	enum energy_choice source;
};

/* Parse "PID[=MODEL]", "NAME[=MODEL]" or "PATH[=MODEL]" and append it. The
 * process, name or cgroup is checked to exist (a --comm name need not run
 * yet). proc_root/cgroup_root: NULL for "/proc" and the cgroup v2 mount.
 * Returns 0, or -1 with a one-line reason in err. */
int target_add(struct target_set *set, enum target_kind kind, const char *spec,
	       const char *proc_root, char *err, size_t errlen);

/* Load an INI config (libinih):
 *   [power]          source = auto|rapl|hwmon|model, idle_watts = W,
 *                    watts_per_busy_core = W
 *   [model NAME]     pid = PID, comm = NAME, cgroup = PATH (each repeatable,
 *                    or several separated by spaces)
 * Errors name the file, line and key. */
int targets_load_config(struct target_set *set, const char *path, const char *proc_root,
			char *err, size_t errlen);

/* Distinct model names in order of first appearance; model_of[i] is the
 * model index of worker i. Returns the number of models. */
size_t targets_models(const struct target_set *set, const char **names, size_t max_names,
		      size_t *model_of);

/* Processes two models claim: a pid= target whose process name is a comm=
 * target of another model. Such a process counts for the pid= target's
 * model (pids are adopted before names are matched); this writes one
 * warning line per such pid to out, naming the pid and both models, and
 * returns how many. Call it once, when attaching. */
size_t targets_report_overlaps(const struct target_set *set, const char *proc_root, FILE *out);

void targets_free(struct target_set *set);

#endif

/* Attach targets from the command line and from an INI config file. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <ini.h>
#include "cli.h"
#include "errbuf.h"
#include "targets.h"
#include "procfs.h"
#include "textfile.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static const char *kind_flag(enum target_kind kind)
{
	return kind == TARGET_PID ? "--pid" : kind == TARGET_COMM ? "--comm" : "--cgroup";
}

static struct target *append(struct target_set *set)
{
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 8;
		struct target *items = realloc(set->items, cap * sizeof(*items));

		if (!items)
			return NULL;
		set->items = items;
		set->cap = cap;
	}
	memset(&set->items[set->n], 0, sizeof(set->items[0]));
	return &set->items[set->n++];
}

static bool valid_model_name(const char *s)
{
	if (!*s || strlen(s) >= TARGET_MODEL_LEN)
		return false;
	for (; *s; s++)
		if (!isgraph((unsigned char)*s) || *s == '"' || *s == '\\')
			return false;
	return true;
}

/* The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0 if gone. */
static char proc_state(const char *proc_root, int pid)
{
	char path[512], buf[512];
	const char *rp;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/stat", proc_root ? proc_root : "/proc", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');	/* comm may hold spaces and ')' */
	return rp && rp[1] == ' ' ? rp[2] : 0;
}

/* A process erg can measure: running, or say why not. */
static int check_pid_alive(const char *proc_root, int pid, char *err, size_t errlen)
{
	char state = proc_state(proc_root, pid);

	if (state == 'Z' || state == 'X') {
		snprintf(err, errlen, "--pid %d: process %d is a zombie (state %c): it has exited and waits for its parent to reap it",
			 pid, pid, state);
		return -1;
	}
	if (!state || !procfs_exists(proc_root, pid)) {
		snprintf(err, errlen, "--pid %d: no such process (check it with: ps -p %d)", pid, pid);
		return -1;
	}
	return 0;
}

/* "--pid WHAT" of spec: a process that runs now; its name is the model
 * unless one was given (model[0] set). */
static int parse_live_pid(const char *what, const char *spec, const char *proc_root, char *model,
			  size_t model_len, int *pid, char *err, size_t errlen)
{
	char q[80], qw[80];
	long long big;

	if (cli_pid("--pid", what, pid, NULL, 0)) {
		if (!cli_long("--pid", what, 1, LLONG_MAX, "", &big, NULL, 0))
			snprintf(err, errlen, "--pid %lld: no such process (process ids go up to 4194304)", big);
		else
			snprintf(err, errlen, "--pid '%s': '%s' is not a process id, a whole number from 1 to 4194304 (expected PID[=MODEL], e.g. --pid 4242=qwen-7b)",
				 cli_quote(spec, q, sizeof(q)), cli_quote(what, qw, sizeof(qw)));
		return -1;
	}
	if (check_pid_alive(proc_root, *pid, err, errlen))
		return -1;
	if (!model[0] && procfs_comm(proc_root, *pid, model, model_len) < 0) {
		/* it exited just now */
		snprintf(err, errlen, "--pid %d: no such process (check it with: ps -p %d)", *pid, *pid);
		return -1;
	}
	return 0;
}

int target_add(struct target_set *set, enum target_kind kind, const char *spec,
	       const char *proc_root, char *err, size_t errlen)
{
	char what[TARGET_PATH_LEN], model[TARGET_MODEL_LEN] = "";
	const char *eq = strrchr(spec, '=');
	size_t what_len = eq ? (size_t)(eq - spec) : strlen(spec);
	char qs[TEXTFILE_QUOTED_MAX];	/* spec or name escaped for a message */
	struct target *t;

	if (set->n >= ERG_MAX_WORKERS) {
		snprintf(err, errlen, "too many targets (at most %d)", ERG_MAX_WORKERS);
		return -1;
	}
	if (what_len == 0 || what_len >= sizeof(what)) {
		snprintf(err, errlen, "%s '%s': expected %s[=MODEL]", kind_flag(kind), cli_quote(spec, qs, sizeof(qs)),
			 kind == TARGET_PID ? "PID" : kind == TARGET_COMM ? "NAME" : "PATH");
		return -1;
	}
	memcpy(what, spec, what_len);
	what[what_len] = '\0';
	if (eq) {
		if (!valid_model_name(eq + 1)) {
			snprintf(err, errlen, "%s '%s': model name after '=' must be 1-%d printable characters without spaces or quotes",
				 kind_flag(kind), cli_quote(spec, qs, sizeof(qs)), TARGET_MODEL_LEN - 1);
			return -1;
		}
		snprintf(model, sizeof(model), "%s", eq + 1);
	}

	t = append(set);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->kind = kind;
	switch (kind) {
	case TARGET_PID:
		if (parse_live_pid(what, spec, proc_root, model, sizeof(model), &t->pid, err, errlen)) {
			set->n--;
			return -1;
		}
		break;
	case TARGET_COMM:
		if (what_len >= ERG_COMM_LEN) {
			set->n--;
			snprintf(err, errlen, "--comm '%s': process names are at most %d characters (as in /proc/PID/comm)", cli_quote(what, qs, sizeof(qs)), ERG_COMM_LEN - 1);
			return -1;
		}
		memcpy(t->comm, what, what_len + 1);
		if (!model[0])
			memcpy(model, what, what_len + 1);
		break;
	case TARGET_CGROUP: {
		struct statfs fs;
		struct stat st;
		const char *base;

		if (stat(what, &st) < 0 || !S_ISDIR(st.st_mode)) {
			set->n--;
			snprintf(err, errlen, "--cgroup '%s': no such cgroup directory (give the path under the cgroup v2 mount, e.g. /sys/fs/cgroup/my.slice)", cli_quote(what, qs, sizeof(qs)));
			return -1;
		}
		if (statfs(what, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
			set->n--;
			snprintf(err, errlen, "--cgroup '%s': not a cgroup v2 directory (erg follows cgroup v2 only; find its mount with: mount -t cgroup2)", cli_quote(what, qs, sizeof(qs)));
			return -1;
		}
		snprintf(t->path, sizeof(t->path), "%s", what);
		t->cgroup_id = st.st_ino;	/* a cgroup v2 id is its directory's inode */
		if (!model[0]) {
			base = strrchr(what, '/');
			base = base && base[1] ? base + 1 : what;
			snprintf(model, sizeof(model), "%.*s", TARGET_MODEL_LEN - 1, base);
		}
		break;
	}
	}
	snprintf(t->model, sizeof(t->model), "%s", model);
	return 0;
}

struct config_ctx {
	struct target_set *set;
	const char *name;	/* the file's path, escaped for messages */
	const char *proc_root;
	char *err;
	size_t errlen;
	int failed;
	int lineno;	/* line being parsed (textfile_ini_parse keeps it) */
};

static int config_number(struct config_ctx *ctx, const char *key, const char *value, double *out)
{
	char opt[TEXTFILE_QUOTED_MAX + 64];

	/* The command line's range: --idle-watts and --watts-per-core. */
	snprintf(opt, sizeof(opt), "%s:%d: [power] %s", ctx->name, ctx->lineno, key);
	return cli_double_above(opt, value, 0, ENERGY_MAX_WATTS, "watts", out, ctx->err, ctx->errlen);
}

static int config_power(struct config_ctx *ctx, const char *name, const char *value)
{
	char q[80];

	if (!strcmp(name, "source")) {
		ctx->set->have_source = true;
		if (energy_choice_parse(value, &ctx->set->source))
			return 0;
		errbuf_set(ctx->err, ctx->errlen, "%s:%d: [power] source = '%s': expected auto, rapl, hwmon or model",
			   ctx->name, ctx->lineno, cli_quote(value, q, sizeof(q)));
		return -1;
	}
	if (!strcmp(name, "idle_watts"))
		return config_number(ctx, name, value, &ctx->set->power.idle_watts);
	if (!strcmp(name, "watts_per_busy_core"))
		return config_number(ctx, name, value, &ctx->set->power.watts_per_busy_core);
	errbuf_set(ctx->err, ctx->errlen, "%s:%d: [power] unknown key '%s' (known: source, idle_watts, watts_per_busy_core)",
		   ctx->name, ctx->lineno, cli_quote(name, q, sizeof(q)));
	return -1;
}

static int config_model(struct config_ctx *ctx, const char *model, const char *name, const char *value)
{
	enum target_kind kind;
	char line_err[512], q[80], *copy, *tok, *save = NULL;
	int rc = 0;

	while (*model == ' ')
		model++;
	if (!strcmp(name, "pid") || !strcmp(name, "pids"))
		kind = TARGET_PID;
	else if (!strcmp(name, "comm") || !strcmp(name, "comms"))
		kind = TARGET_COMM;
	else if (!strcmp(name, "cgroup") || !strcmp(name, "cgroups"))
		kind = TARGET_CGROUP;
	else {
		errbuf_set(ctx->err, ctx->errlen, "%s:%d: [model %s] unknown key '%s' (known: pid, comm, cgroup)",
			   ctx->name, ctx->lineno, cli_quote(model, line_err, sizeof(line_err)),
			   cli_quote(name, q, sizeof(q)));
		return -1;
	}
	copy = strdup(value);	/* a value may be as long as the file */
	if (!copy) {
		errbuf_set(ctx->err, ctx->errlen, "%s:%d: out of memory", ctx->name, ctx->lineno);
		return -1;
	}
	for (tok = strtok_r(copy, " \t,", &save); tok && !rc; tok = strtok_r(NULL, " \t,", &save)) {
		char spec[TARGET_PATH_LEN + TARGET_MODEL_LEN + 2];

		if (snprintf(spec, sizeof(spec), "%s=%s", tok, model) >= (int)sizeof(spec)) {
			errbuf_set(ctx->err, ctx->errlen, "%s:%d: [model %.*s] %s '%s': longer than %d characters",
				   ctx->name, ctx->lineno, TARGET_MODEL_LEN, model, name,
				   cli_quote(tok, q, sizeof(q)), TARGET_PATH_LEN - 1);
			rc = -1;
		} else if (target_add(ctx->set, kind, spec, ctx->proc_root, line_err, sizeof(line_err))) {
			errbuf_set(ctx->err, ctx->errlen, "%s:%d: %s", ctx->name, ctx->lineno, line_err);
			rc = -1;
		}
	}
	free(copy);
	return rc;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_ctx *ctx = user;
	char q[80];
	int rc;

	if (ctx->failed)
		return 0;
	if (!strcmp(section, "power")) {
		rc = config_power(ctx, name, value);
	} else if (!strncmp(section, "model ", 6)) {
		rc = config_model(ctx, section + 6, name, value);
	} else {
		errbuf_set(ctx->err, ctx->errlen, "%s:%d: unknown section [%s] (expected [power] or [model NAME])",
			   ctx->name, ctx->lineno, cli_quote(section, q, sizeof(q)));
		rc = -1;
	}
	if (rc) {
		ctx->failed = ctx->lineno;
		return 0;
	}
	return 1;
}

int targets_load_config(struct target_set *set, const char *path, const char *proc_root,
			char *err, size_t errlen)
{
	struct config_ctx ctx = { .set = set, .proc_root = proc_root, .err = err, .errlen = errlen };
	struct textfile tf;
	int rc;

	/* Regular files only, bounded: a directory, FIFO or /dev/zero is an
	 * error at once, never an empty config or a hang. */
	if (textfile_load(&tf, path, "config file", TEXTFILE_MAX_CONFIG, err, errlen))
		return -1;
	ctx.name = tf.name;
	rc = textfile_ini_parse(&tf, config_handler, &ctx, &ctx.lineno);
	if (!ctx.failed && rc > 0)
		errbuf_set(err, errlen, "%s:%d: cannot parse this line (expected '[section]' or 'key = value'; comments start with ';' or '#')",
			   tf.name, rc);
	else if (!ctx.failed && rc < 0)
		errbuf_set(err, errlen, "%s: cannot parse config file (out of memory)", tf.name);
	textfile_free(&tf);
	return ctx.failed || rc ? -1 : 0;
}

size_t targets_models(const struct target_set *set, const char **names, size_t max_names,
		      size_t *model_of)
{
	size_t n = 0;

	for (size_t i = 0; i < set->n; i++) {
		size_t m;

		for (m = 0; m < n; m++)
			if (!strcmp(names[m], set->items[i].model))
				break;
		if (m == n && n < max_names)
			names[n++] = set->items[i].model;
		model_of[i] = m < n ? m : n - 1;
	}
	return n;
}

size_t targets_report_overlaps(const struct target_set *set, const char *proc_root, FILE *out)
{
	size_t warned = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct target *p = &set->items[i];
		char comm[ERG_COMM_LEN], qc[80], qa[3 * TARGET_MODEL_LEN], qb[3 * TARGET_MODEL_LEN];
		bool seen = false;

		if (p->kind != TARGET_PID)
			continue;
		for (size_t j = 0; j < i && !seen; j++)	/* a pid listed twice: warn once */
			seen = set->items[j].kind == TARGET_PID && set->items[j].pid == p->pid;
		if (seen || procfs_comm(proc_root, p->pid, comm, sizeof(comm)) < 0)
			continue;
		for (size_t j = 0; j < set->n; j++) {
			const struct target *c = &set->items[j];

			if (c->kind != TARGET_COMM || strcmp(c->comm, comm) || !strcmp(c->model, p->model))
				continue;
			cli_quote(comm, qc, sizeof(qc));
			cli_quote(p->model, qa, sizeof(qa));
			cli_quote(c->model, qb, sizeof(qb));
			fprintf(out, "erg: warning: pid %d (%s) is matched by pid=%d of model '%s' and by comm=%s of model '%s'; "
				"it counts for '%s' only (pid= wins); give it to one model to silence this\n",
				p->pid, qc, p->pid, qa, qc, qb, qa);
			warned++;
			break;
		}
	}
	return warned;
}

void targets_free(struct target_set *set)
{
	free(set->items);
	memset(set, 0, sizeof(*set));
}

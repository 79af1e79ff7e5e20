/* INI scenario files for erg sim. libinih does the lexing; this file knows
 * the keys, checks every value and says where a problem is. The file is read
 * as untrusted input (textfile.h: regular files only, bounded, lines of any
 * length, exact line numbers); values echoed in messages are escaped. */
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cli.h"
#include "errbuf.h"
#include "scenario.h"
#include "textfile.h"

enum ktype { K_NUM, K_INT, K_SEED, K_WORD, K_LIST, K_PATH };

/* Range checks; "size" keys are the ones that must not be negative. */
enum krange { R_ANY, R_POS, R_NONNEG, R_UNIT, R_OPEN_UNIT, R_GE1, R_STORAGE, R_TASKS };

struct keydef {
	const char *section;	/* "model" for every [model NAME] */
	const char *key;
	enum ktype type;
	enum krange range;
	const char *example;	/* shown when the key is missing */
};

static const struct keydef keys[] = {
	{ "scenario", "name", K_WORD, R_ANY, "name = reference" },
	{ "scaling", "eta", K_NUM, R_POS, "eta = 2e11" },
	{ "scaling", "a0", K_NUM, R_ANY, "a0 = -2.523" },
	{ "scaling", "a1", K_NUM, R_ANY, "a1 = 0.091" },
	{ "scaling", "beta", K_NUM, R_ANY, "beta = 0.1086" },
	{ "scaling", "a_max", K_NUM, R_OPEN_UNIT, "a_max = 0.95" },
	{ "workload", "tasks_per_slot", K_NUM, R_TASKS, "tasks_per_slot = 20" },
	{ "workload", "slot_seconds", K_NUM, R_POS, "slot_seconds = 1" },
	{ "workload", "input_tokens", K_NUM, R_NONNEG, "input_tokens = 500" },
	{ "workload", "budgets", K_LIST, R_POS, "budgets = 256, 1024, 4096, 16384" },
	{ "workload", "budget_steps", K_INT, R_ANY, "budget_steps = 16" },
	{ "workload", "reasoning_sigma", K_NUM, R_NONNEG, "reasoning_sigma = 0.8" },
	{ "workload", "reasoning_median", K_NUM, R_POS, "reasoning_median = 0.5" },
	{ "workload", "accuracy_target", K_NUM, R_UNIT, "accuracy_target = 0.60" },
	{ "workload", "arrivals", K_WORD, R_ANY, "arrivals = poisson" },
	{ "workload", "variance_ratio", K_NUM, R_GE1, "variance_ratio = 3" },
	{ "workload", "arrival_trace", K_PATH, R_ANY, "arrival_trace = arrivals.csv" },
	{ "supply", "supply_joules", K_NUM, R_POS, "supply_joules = 15000" },
	{ "supply", "trace", K_PATH, R_ANY, "trace = solar-day.csv" },
	{ "supply", "storage_joules", K_NUM, R_STORAGE, "storage_joules = 0" },
	{ "cost", "c_a", K_NUM, R_NONNEG, "c_a = 1" },
	{ "cost", "c_w", K_NUM, R_NONNEG, "c_w = 1" },
	{ "cost", "c_e", K_NUM, R_NONNEG, "c_e = 0" },
	{ "sim", "slots", K_INT, R_POS, "slots = 20000" },
	{ "sim", "seed", K_SEED, R_ANY, "seed = 1" },
	{ "sim", "policy", K_WORD, R_ANY, "policy = all" },
	{ "sim", "realiser", K_WORD, R_ANY, "realiser = swrr" },
	{ "policy", "dynamic_horizon_slots", K_NUM, R_POS, "dynamic_horizon_slots = 10" },
	{ "policy", "dynamic_max_dip", K_NUM, R_NONNEG, "dynamic_max_dip = 0.1" },
	{ "model", "params", K_NUM, R_POS, "params = 8e9" },
	{ "model", "joules_per_token", K_NUM, R_POS, "joules_per_token = 0.08" },
	{ "model", "joules_per_task", K_NUM, R_NONNEG, "joules_per_task = 0" },
	{ "model", "reasoning_sigma", K_NUM, R_NONNEG, "reasoning_sigma = 0.8" },
	{ "model", "budgets", K_LIST, R_POS, "budgets = 1024, 4096" },
	{ "model", "accuracy", K_NUM, R_UNIT, "accuracy = 0.52" },
	{ "model", "accuracy@", K_NUM, R_UNIT, "accuracy@256 = 0.41" },	/* accuracy@BUDGET */
	{ "model", "worker", K_WORD, R_ANY, "worker = 127.0.0.1:8091" },	/* erg serve's */
	{ "serve", "listen", K_WORD, R_ANY, "listen = 127.0.0.1:8080" },	/* erg serve's */
	{ "serve", "between_budgets", K_WORD, R_ANY, "between_budgets = 1" },	/* erg serve's */
	{ "pool", "models", K_WORD, R_ANY, "models = 1.5B 8B" },		/* erg serve's */
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const sections[] = { "scenario", "scaling", "workload", "supply",
					"cost", "sim", "policy", "serve" };
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

#define MAX_SEEN 512

struct seen {
	char section[64];
	const struct keydef *def;
	int line;
};

struct header {
	char name[64];
	int line;
};

struct model_extra {
	double acc;		/* accuracy = (every budget); < 0: the scaling law's */
	int n_acc_at;		/* accuracy@BUDGET = overrides, by budget */
	double acc_at_budget[SCEN_MAX_BUDGETS], acc_at[SCEN_MAX_BUDGETS];
	int n_budgets;
	double budgets[SCEN_MAX_BUDGETS];
	int range;		/* budgets holds LO, HI of "LO..HI" */
	int line;		/* its section header */
};

struct parse {
	struct scenario *sc;
	const char *path;	/* the scenario's path, for traces beside it */
	const char *name;	/* the same, escaped for messages */
	int line;		/* line inih is working on */
	char err[1024];		/* first error */
	int err_line;
	int n_seen;
	struct seen seen[MAX_SEEN];
	int n_headers;
	struct header headers[64];
	struct model_extra mx[SCEN_MAX_MODELS];
	char arrivals[32], policy[64], realiser[32];
	int workload_range;	/* sc->budgets holds LO, HI of "LO..HI" */
	int budget_steps;	/* budgets in a range */
	const struct scenario_hooks *hooks;
	int sim_sections;	/* keys seen outside [serve] and [model NAME] */
};

/* Where each section starts, for "missing key" messages: one pass over the
 * text before inih sees it (section headers are lines "[name]"). */
static void find_headers(struct parse *ps, const char *data, size_t len)
{
	const char *p = data, *end = data + len;

	for (int line = 1; p < end && ps->n_headers < 64; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p < eol && *p == '[') {
			struct header *h = &ps->headers[ps->n_headers++];
			const char *s = p + 1, *e = s;

			while (e < eol && *e != ']' && *e != '\r')
				e++;
			/* trim like inih does */
			while (s < e && (*s == ' ' || *s == '\t'))
				s++;
			while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			snprintf(h->name, sizeof(h->name), "%.*s", (int)(e - s), s);
			h->line = line;
		}
		p = nl ? nl + 1 : end;
	}
}

/* Keep the first error as "FILE:LINE: message". quote: the message echoes
 * text from the file, so it is escaped (no raw control characters reach the
 * terminal); off for text that is escaped already. */
static int vfail(struct parse *ps, int line, bool quote, const char *fmt, va_list ap)
{
	char body[sizeof(ps->err)], safe[sizeof(ps->err)];

	if (ps->err[0])
		return 0;	/* keep the first error */
	vsnprintf(body, sizeof(body), fmt, ap);
	errbuf_set(ps->err, sizeof(ps->err), "%s:%d: %s", ps->name, line,
		   quote ? cli_quote(body, safe, sizeof(safe)) : body);
	ps->err_line = line;
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct parse *ps, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(ps, line, true, fmt, ap);
	va_end(ap);
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int fail_escaped(struct parse *ps, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(ps, line, false, fmt, ap);
	va_end(ap);
	return 0;
}

/* "KIND NAME" (as [model 8B] or [pool fast]): 1 and the name, else 0. */
static int is_named_section(const char *section, const char *kind, const char **name)
{
	size_t len = strlen(kind);

	if (strncasecmp(section, kind, len) != 0)
		return 0;
	const char *p = section + len;
	if (*p && *p != ' ' && *p != '\t')
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	*name = p;
	return 1;
}

static const struct keydef *find_key(const char *kind, const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcasecmp(keys[i].section, kind) && !strcasecmp(keys[i].key, key))
			return &keys[i];
	return NULL;
}

static const struct seen *find_seen(const struct parse *ps, const char *section, const char *key)
{
	for (int i = 0; i < ps->n_seen; i++)
		if (!strcasecmp(ps->seen[i].section, section) && !strcasecmp(ps->seen[i].def->key, key))
			return &ps->seen[i];
	return NULL;
}

static int header_line(const struct parse *ps, const char *section)
{
	for (int i = 0; i < ps->n_headers; i++)
		if (!strcasecmp(ps->headers[i].name, section))
			return ps->headers[i].line;
	return 0;
}

static void known_keys(const char *kind, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKEYS && used < len; i++)
		if (!strcasecmp(keys[i].section, kind)) {
			int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", keys[i].key);
			if (n < 0)
				break;
			used += (size_t)n;
		}
}

static int parse_number(const char *value, double *out)
{
	char *end;

	errno = 0;
	double v = strtod(value, &end);
	if (end == value || errno == ERANGE)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int check_range(struct parse *ps, const char *section, const struct keydef *d, double v)
{
	const char *why = NULL;

	if (isnan(v) || (isinf(v) && d->range != R_STORAGE))
		why = "must be a finite number";
	else switch (d->range) {
	case R_POS:
		if (!(v > 0.0))
			why = "must be positive";
		break;
	case R_NONNEG:
	case R_STORAGE:
		if (v < 0.0)
			why = "must not be negative";
		break;
	case R_UNIT:
		if (v < 0.0 || v > 1.0)
			why = "must be between 0 and 1";
		break;
	case R_OPEN_UNIT:
		if (!(v > 0.0) || v > 1.0)
			why = "must be above 0 and at most 1";
		break;
	case R_GE1:
		if (v < 1.0)
			why = "must be at least 1 (1 is Poisson)";
		break;
	case R_TASKS:	/* erg sim draws every task: its time grows with them */
		if (v < 0.0 || v > SIM_MAX_TASKS_PER_SLOT)
			why = "must be from 0 to 1e6 tasks per slot (use a longer slot for a bigger workload)";
		break;
	case R_ANY:
		break;
	}
	if (why)
		return fail(ps, ps->line, "key '%s' in [%s]: %s (got %g)", d->key, section, why, v);
	return 1;
}

/* "LO..HI": *range set, out[0] = LO, out[1] = HI, *n = 2; expanded into
 * budget_steps log-spaced values once the whole file is read. 1, or 0
 * after fail(); -1: not a range. */
static int parse_range(struct parse *ps, const char *section, const struct keydef *d,
		       const char *value, double *out, int *n, int *range)
{
	const char *dots = strstr(value, "..");
	char lo_s[64], hi_s[64];

	*range = 0;
	if (!dots)
		return -1;
	snprintf(lo_s, sizeof(lo_s), "%.*s", (int)(dots - value < 63 ? dots - value : 63), value);
	snprintf(hi_s, sizeof(hi_s), "%s", dots + 2);
	double lo, hi;
	if (parse_number(lo_s, &lo) || parse_number(hi_s, &hi))
		return fail(ps, ps->line, "key '%s' in [%s]: '%s' is not a range LO..HI of numbers "
			    "(e.g. budgets = 256..16384)", d->key, section, value);
	if (!check_range(ps, section, d, lo) || !check_range(ps, section, d, hi))
		return 0;
	if (!(lo < hi))
		return fail(ps, ps->line, "key '%s' in [%s]: range '%s' must go from low to high "
			    "(e.g. budgets = 256..16384)", d->key, section, value);
	out[0] = lo;
	out[1] = hi;
	*n = 2;
	*range = 1;
	return 1;
}

static int parse_list(struct parse *ps, const char *section, const struct keydef *d,
		      const char *value, double *out, int *n)
{
	char *buf = strdup(value), *save = NULL;	/* a value may be as long as the file */
	int ok = 1;

	if (!buf)
		return fail(ps, ps->line, "out of memory");
	*n = 0;
	for (char *tok = strtok_r(buf, ", \t", &save); tok && ok; tok = strtok_r(NULL, ", \t", &save)) {
		double v;
		if (*n == SCEN_MAX_BUDGETS)
			ok = fail(ps, ps->line, "key '%s' in [%s]: more than %d values",
				  d->key, section, SCEN_MAX_BUDGETS);
		else if (parse_number(tok, &v))
			ok = fail(ps, ps->line, "key '%s' in [%s]: '%s' is not a number",
				  d->key, section, tok);
		else if ((ok = check_range(ps, section, d, v)))
			out[(*n)++] = v;
	}
	free(buf);
	if (ok && *n == 0)
		return fail(ps, ps->line, "key '%s' in [%s]: no values (e.g. %s)", d->key, section, d->example);
	return ok;
}

/* A K_NUM or K_INT value, parsed and range-checked into *v (0 for other
 * types). 1, or 0 after fail(). */
static int parse_scalar(struct parse *ps, const char *section, const struct keydef *d,
			const char *value, double *v)
{
	*v = 0.0;
	if (d->type == K_NUM) {
		if (d->range == R_STORAGE && (!strcasecmp(value, "unlimited") || !strcasecmp(value, "inf")))
			*v = INFINITY;
		else if (parse_number(value, v))
			return fail(ps, ps->line, "key '%s' in [%s]: '%s' is not a number (e.g. %s)",
				    d->key, section, value, d->example);
		return check_range(ps, section, d, *v);
	}
	if (d->type == K_INT) {
		char *end;
		errno = 0;
		long long n = strtoll(value, &end, 10);
		if (end == value || *end || errno)
			return fail(ps, ps->line, "key '%s' in [%s]: '%s' is not a whole number",
				    d->key, section, value);
		if (n < 1 || n > 100000000)
			return fail(ps, ps->line, "key '%s' in [%s]: must be between 1 and 1e8 (got %lld)",
				    d->key, section, n);
		*v = (double)n;
	}
	return 1;
}

/* A key of a [model NAME] section. */
static int assign_model(struct parse *ps, const char *section, int model, const struct keydef *d,
			const char *value, double v)
{
	struct model_spec *m = &ps->sc->models[model];

	if (!strcasecmp(d->key, "params"))
		m->params = v;
	else if (!strcasecmp(d->key, "joules_per_token"))
		m->joules_per_token = v;
	else if (!strcasecmp(d->key, "joules_per_task"))
		m->joules_per_task = v;
	else if (!strcasecmp(d->key, "reasoning_sigma"))
		m->reasoning_sigma = v;
	else if (!strcasecmp(d->key, "accuracy"))
		ps->mx[model].acc = v;
	else if (!strcasecmp(d->key, "budgets")) {
		struct model_extra *mx = &ps->mx[model];
		int rc = parse_range(ps, section, d, value, mx->budgets, &mx->n_budgets, &mx->range);
		return rc >= 0 ? rc : parse_list(ps, section, d, value, mx->budgets, &mx->n_budgets);
	}
	return 1;
}

/* Store a checked value in the scenario. */
static int assign(struct parse *ps, const char *section, const char *kind, int model,
		  const struct keydef *d, const char *value)
{
	struct scenario *sc = ps->sc;
	double v;

	if (!parse_scalar(ps, section, d, value, &v))
		return 0;
	if (!strcasecmp(kind, "model"))
		return assign_model(ps, section, model, d, value, v);
#define IS(s, k) (!strcasecmp(kind, s) && !strcasecmp(d->key, k))
	if (IS("scenario", "name"))
		cli_quote(value, sc->name, sizeof(sc->name));	/* printed by erg sim */
	else if (IS("scaling", "eta"))
		sc->sp.eta = v;
	else if (IS("scaling", "a0"))
		sc->sp.a0 = v;
	else if (IS("scaling", "a1"))
		sc->sp.a1 = v;
	else if (IS("scaling", "beta"))
		sc->sp.beta = v;
	else if (IS("scaling", "a_max"))
		sc->sp.a_max = v;
	else if (IS("workload", "tasks_per_slot"))
		sc->arrivals.per_slot = v;
	else if (IS("workload", "slot_seconds"))
		sc->slot_seconds = v;
	else if (IS("workload", "input_tokens"))
		sc->sp.input_tokens = v;
	else if (IS("workload", "budgets")) {
		int rc = parse_range(ps, section, d, value, sc->budgets, &sc->n_budgets,
				     &ps->workload_range);
		return rc >= 0 ? rc : parse_list(ps, section, d, value, sc->budgets, &sc->n_budgets);
	} else if (IS("workload", "budget_steps")) {
		if (v < 2 || v > SCEN_MAX_BUDGETS)
			return fail(ps, ps->line, "key 'budget_steps' in [%s]: must be from 2 to %d (got %g)",
				    section, SCEN_MAX_BUDGETS, v);
		ps->budget_steps = (int)v;
	}
	else if (IS("workload", "reasoning_sigma"))
		sc->sp.reasoning_sigma = v;
	else if (IS("workload", "reasoning_median"))
		sc->sp.reasoning_median = v;
	else if (IS("workload", "accuracy_target"))
		sc->acc_target = v;
	else if (IS("workload", "arrivals")) {
		if (strcasecmp(value, "poisson") && strcasecmp(value, "overdispersed") && strcasecmp(value, "trace"))
			return fail(ps, ps->line, "key 'arrivals' in [%s]: unknown arrival process '%s' "
				    "(use poisson, overdispersed or trace)", section, value);
		snprintf(ps->arrivals, sizeof(ps->arrivals), "%s", value);
	} else if (IS("workload", "variance_ratio"))
		sc->arrivals.var_ratio = v;
	else if (IS("workload", "arrival_trace"))
		snprintf(sc->arrival_trace_path, sizeof(sc->arrival_trace_path), "%s", value);
	else if (IS("supply", "supply_joules"))
		sc->supply_joules = v;
	else if (IS("supply", "trace"))
		snprintf(sc->supply_trace_path, sizeof(sc->supply_trace_path), "%s", value);
	else if (IS("supply", "storage_joules"))
		sc->storage = v;
	else if (IS("cost", "c_a"))
		sc->c_a = v;
	else if (IS("cost", "c_w"))
		sc->c_w = v;
	else if (IS("cost", "c_e"))
		sc->c_e = v;
	else if (IS("sim", "slots"))
		sc->slots = (long)v;
	else if (IS("sim", "seed")) {
		char *end;
		errno = 0;
		unsigned long long s = strtoull(value, &end, 0);
		if (end == value || *end || errno || value[0] == '-')
			return fail(ps, ps->line, "key 'seed' in [%s]: '%s' is not a non-negative whole number",
				    section, value);
		sc->seed = s;
	} else if (IS("sim", "policy")) {
		int mask = scenario_parse_policies(value);
		if (mask < 0)
			return fail(ps, ps->line, "key 'policy' in [%s]: unknown policy '%s' "
				    "(use mean, variance, dynamic, all or a comma list)", section, value);
		sc->policies = mask;
	} else if (IS("sim", "realiser")) {
		if (!strcasecmp(value, "swrr"))
			sc->how = REALISE_SWRR;
		else if (!strcasecmp(value, "random"))
			sc->how = REALISE_RANDOM;
		else
			return fail(ps, ps->line, "key 'realiser' in [%s]: unknown realiser '%s' "
				    "(use swrr or random)", section, value);
	} else if (IS("policy", "dynamic_horizon_slots"))
		sc->dyn_horizon_slots = v;
	else if (IS("policy", "dynamic_max_dip"))
		sc->dyn_max_dip = v;
#undef IS
	return 1;
}

/* [serve] keys, worker = lines and [pool NAME] models: erg serve's hook, or
 * (erg sim) their form only: HOST:PORT, then pid=N for a worker; a pool's
 * names are erg serve's to check. */
static int serve_key(struct parse *ps, const char *section, int model, const char *key,
		     const char *value)
{
	char msg[512], opt[160], host[256], first[256];
	uint16_t port;
	int pid;

	if (ps->hooks && ps->hooks->on_key) {
		if (ps->hooks->on_key(ps->hooks->ud, section, model, key, value, ps->line, msg, sizeof(msg)))
			return fail(ps, ps->line, "%s", msg);
		return 1;
	}
	snprintf(opt, sizeof(opt), "key '%s' in [%s]", key, section);
	if (!strcasecmp(key, "models")) {
		if (!value[strspn(value, " \t")])
			return fail(ps, ps->line, "%s: name at least one model (e.g. models = 1.5B 8B)", opt);
		return 1;
	}
	if (!strcasecmp(key, "between_budgets")) {
		long long n;

		if (cli_long(opt, value, 0, SERVE_BETWEEN_MAX, "budgets between two listed ones", &n, msg,
			     sizeof(msg)))
			return fail(ps, ps->line, "%s", msg);
		return 1;
	}
	const char *p = value, *e;
	while (*p == ' ' || *p == '\t')
		p++;
	for (e = p; *e && *e != ' ' && *e != '\t'; e++)
		;
	snprintf(first, sizeof(first), "%.*s", (int)(e - p), p);
	if (cli_hostport(opt, first, host, sizeof(host), &port, msg, sizeof(msg)))
		return fail(ps, ps->line, "%s", msg);
	while (model >= 0 && *e) {
		for (p = e; *p == ' ' || *p == '\t'; p++)
			;
		for (e = p; *e && *e != ' ' && *e != '\t'; e++)
			;
		if (p == e)
			break;
		snprintf(first, sizeof(first), "%.*s", (int)(e - p), p);
		if (strncmp(first, "pid=", 4))
			return fail(ps, ps->line, "%s: unexpected '%s' (expected HOST:PORT [pid=N])", opt, first);
		if (cli_pid(opt, first + 4, &pid, msg, sizeof(msg)))
			return fail(ps, ps->line, "%s", msg);
	}
	return 1;
}

/* accuracy@BUDGET = A: the model's accuracy at that budget, from the user's
 * own evals; budgets between two of them are interpolated in ln T. */
static int accuracy_at(struct parse *ps, const char *section, int model, const char *name,
		       const char *value)
{
	struct model_extra *mx = &ps->mx[model];
	struct keydef d = *find_key("model", "accuracy@");
	double b, v;
	int i;

	d.key = name;
	if (parse_number(name + 9, &b) || !(b > 0.0) || !isfinite(b))
		return fail(ps, ps->line, "key '%s' in [%s]: the budget after '@' must be a positive "
			    "number of tokens (e.g. accuracy@256 = 0.41)", name, section);
	for (i = 0; i < mx->n_acc_at; i++)
		if (mx->acc_at_budget[i] == b)
			return fail(ps, ps->line, "key '%s' in [%s]: accuracy at budget %g is given twice",
				    name, section, b);
	if (mx->n_acc_at == SCEN_MAX_BUDGETS)
		return fail(ps, ps->line, "key '%s' in [%s]: more than %d accuracy@ keys", name, section,
			    SCEN_MAX_BUDGETS);
	if (!parse_scalar(ps, section, &d, value, &v))
		return 0;
	for (i = mx->n_acc_at; i > 0 && mx->acc_at_budget[i - 1] > b; i--) {
		mx->acc_at_budget[i] = mx->acc_at_budget[i - 1];
		mx->acc_at[i] = mx->acc_at[i - 1];
	}
	mx->acc_at_budget[i] = b;
	mx->acc_at[i] = v;
	mx->n_acc_at++;
	return 1;
}

/* The accuracy of a model at budget b: accuracy@ (interpolated in ln T
 * between two of them), else accuracy =, else the scaling law's. */
static double model_accuracy(const struct model_extra *mx, double b, double law)
{
	for (int i = 0; i < mx->n_acc_at; i++) {
		if (mx->acc_at_budget[i] == b)
			return mx->acc_at[i];
		if (i + 1 < mx->n_acc_at && b > mx->acc_at_budget[i] && b < mx->acc_at_budget[i + 1]) {
			double f = log(b / mx->acc_at_budget[i]) /
				   log(mx->acc_at_budget[i + 1] / mx->acc_at_budget[i]);
			return mx->acc_at[i] + f * (mx->acc_at[i + 1] - mx->acc_at[i]);
		}
	}
	return mx->acc >= 0.0 ? mx->acc : law;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;
	struct scenario *sc = ps->sc;
	const char *kind = NULL, *model_name = NULL;
	int model = -1;

	if (ps->err[0])
		return 1;	/* only the first problem is reported */
	if (!section[0])
		return fail(ps, ps->line, "key '%s' comes before any [section] header", name);
	if (is_named_section(section, "pool", &model_name)) {
		kind = "pool";
		if (!model_name[0])
			return fail(ps, ps->line, "section [%s] needs a pool name, e.g. [pool fast]", section);
	} else if (is_named_section(section, "model", &model_name)) {
		kind = "model";
		if (!model_name[0])
			return fail(ps, ps->line, "section [%s] needs a model name, e.g. [model 8B]", section);
		if (strlen(model_name) >= sizeof(sc->models[0].name))
			return fail(ps, ps->line, "model name '%s' is longer than %zu characters",
				    model_name, sizeof(sc->models[0].name) - 1);
		for (int i = 0; i < sc->n_models; i++)
			if (!strcmp(sc->models[i].name, model_name))
				model = i;
		if (model < 0) {
			if (sc->n_models == SCEN_MAX_MODELS)
				return fail(ps, ps->line, "more than %d [model] sections", SCEN_MAX_MODELS);
			model = sc->n_models++;
			snprintf(sc->models[model].name, sizeof(sc->models[model].name), "%s", model_name);
			sc->models[model].reasoning_sigma = -1.0;
			ps->mx[model].acc = -1.0;
			ps->mx[model].line = header_line(ps, section);
		}
	} else {
		for (size_t i = 0; i < NSECTIONS; i++)
			if (!strcasecmp(section, sections[i]))
				kind = sections[i];
		if (!kind)
			return fail(ps, header_line(ps, section) ? header_line(ps, section) : ps->line,
				    "unknown section [%s] (known: scenario, scaling, workload, "
				    "supply, cost, sim, policy, serve, model NAME, pool NAME)", section);
	}
	if (strcasecmp(kind, "model") && strcasecmp(kind, "serve") && strcasecmp(kind, "pool"))
		ps->sim_sections = 1;
	if (model >= 0 && !strncasecmp(name, "accuracy@", 9))
		return accuracy_at(ps, section, model, name, value);
	const struct keydef *d = find_key(kind, name);
	if (!d) {
		char known[400];
		known_keys(kind, known, sizeof(known));
		return fail(ps, ps->line, "unknown key '%s' in [%s] (known keys: %s)", name, section, known);
	}
	if (!strcasecmp(d->key, "worker"))	/* repeatable */
		return serve_key(ps, section, model, name, value);
	char canon[80];
	if (model >= 0)
		snprintf(canon, sizeof(canon), "model %s", sc->models[model].name);
	const struct seen *prev = find_seen(ps, model >= 0 ? canon : section, name);
	if (prev)
		return fail(ps, ps->line, "key '%s' in [%s] is given twice (first on line %d)",
			    name, section, prev->line);
	if (ps->n_seen == MAX_SEEN)
		return fail(ps, ps->line, "too many keys");
	struct seen *s = &ps->seen[ps->n_seen++];
	if (model >= 0)	/* one spelling per model, however the header was spaced */
		snprintf(s->section, sizeof(s->section), "model %s", sc->models[model].name);
	else
		snprintf(s->section, sizeof(s->section), "%s", section);
	s->def = d;
	s->line = ps->line;
	if (!strcasecmp(kind, "serve") || !strcasecmp(kind, "pool"))
		return serve_key(ps, section, model, name, value);
	return assign(ps, section, kind, model, d, value);
}

/* A required key that is missing: point at its section, or at the end of
 * the file if the section is missing too. */
static int missing(struct parse *ps, const char *section, const char *key)
{
	const struct keydef *d = NULL;
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcasecmp(keys[i].key, key) &&
		    (!strcasecmp(keys[i].section, section) ||
		     (!strcasecmp(keys[i].section, "model") && !strncasecmp(section, "model", 5))))
			d = &keys[i];
	int line = header_line(ps, section);
	if (line)
		return fail(ps, line, "key '%s' in [%s] is missing (add a line like '%s')",
			    key, section, d ? d->example : key);
	return fail(ps, ps->line > 0 ? ps->line : 1, "key '%s' is missing: there is no [%s] section "
		    "(add [%s] with '%s')", key, section, section, d ? d->example : key);
}

static int have(const struct parse *ps, const char *section, const char *key)
{
	return find_seen(ps, section, key) != NULL;
}

static int line_of(const struct parse *ps, const char *section, const char *key)
{
	const struct seen *s = find_seen(ps, section, key);
	return s ? s->line : (header_line(ps, section) ? header_line(ps, section) : ps->line);
}

static int load_trace(struct parse *ps, const char *section, const char *key,
		      const char *rel, struct supply_trace **out)
{
	char path[PATH_MAX + 8], terr[600];

	if (rel[0] == '/') {
		snprintf(path, sizeof(path), "%s", rel);
	} else {
		const char *slash = strrchr(ps->path, '/');
		int dir = slash ? (int)(slash - ps->path) : 0;
		if (dir)
			snprintf(path, sizeof(path), "%.*s/%s", dir, ps->path, rel);
		else
			snprintf(path, sizeof(path), "%s", rel);
	}
	*out = supply_trace_load(path, terr, sizeof(terr));
	if (!*out)	/* terr names the trace, escaped already */
		return fail_escaped(ps, line_of(ps, section, key), "key '%s' in [%s]: %s", key, section, terr);
	return 1;
}

/* A range LO..HI becomes budget_steps budgets, log-spaced from LO to HI
 * and rounded to whole tokens (duplicates from rounding dropped). */
static void expand_range(const struct parse *ps, double *b, int *n, int range)
{
	if (!range)
		return;
	double lo = b[0], hi = b[1];
	int steps = ps->budget_steps ? ps->budget_steps : SCEN_MAX_BUDGETS;
	*n = 0;
	for (int i = 0; i < steps; i++) {
		double v = round(lo * pow(hi / lo, (double)i / (steps - 1)));
		if (v < 1.0)
			v = 1.0;
		if (*n == 0 || v > b[*n - 1])
			b[(*n)++] = v;
	}
}

/* Cross-key checks and the option table, after the whole file is read. */
static int finish(struct parse *ps)
{
	struct scenario *sc = ps->sc;

	if (ps->hooks && ps->hooks->models_only && !ps->sim_sections) {
		if (sc->n_models == 0)
			return fail(ps, ps->line > 0 ? ps->line : 1, "no [model NAME] sections "
				    "(add one per model, e.g. [model 8B] with 'params = 8e9')");
		for (int k = 0; k < sc->n_models; k++)
			if (!(sc->models[k].params > 0.0) && !(sc->models[k].joules_per_token > 0.0))
				return fail(ps, ps->mx[k].line, "key 'params' in [model %s] is missing "
					    "(add a line like 'params = 8e9', or 'joules_per_token = 0.08')",
					    sc->models[k].name);
		return 1;
	}
	static const char *const required[][2] = {
		{ "scaling", "a0" }, { "scaling", "a1" }, { "scaling", "beta" }, { "scaling", "a_max" },
		{ "workload", "input_tokens" }, { "workload", "reasoning_sigma" },
		{ "workload", "reasoning_median" }, { "workload", "accuracy_target" },
		{ "cost", "c_a" }, { "cost", "c_w" },
	};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!have(ps, required[i][0], required[i][1]))
			return missing(ps, required[i][0], required[i][1]);

	if (!strcasecmp(ps->arrivals, "trace")) {
		sc->arrivals.kind = ARRIVALS_TRACE;
		if (!have(ps, "workload", "arrival_trace"))
			return missing(ps, "workload", "arrival_trace");
	} else {
		sc->arrivals.kind = !strcasecmp(ps->arrivals, "overdispersed") ?
				    ARRIVALS_OVERDISPERSED : ARRIVALS_POISSON;
		if (!have(ps, "workload", "tasks_per_slot"))
			return missing(ps, "workload", "tasks_per_slot");
		if (sc->arrivals.kind == ARRIVALS_OVERDISPERSED && !have(ps, "workload", "variance_ratio"))
			return missing(ps, "workload", "variance_ratio");
	}
	if (sc->n_models == 0)
		return fail(ps, ps->line > 0 ? ps->line : 1, "no [model NAME] sections "
			    "(add one per model, e.g. [model 8B] with 'params = 8e9')");

	int need_eta = 0;
	for (int k = 0; k < sc->n_models; k++) {
		char section[80];
		snprintf(section, sizeof(section), "model %s", sc->models[k].name);
		if (!have(ps, section, "params"))
			return fail(ps, ps->mx[k].line, "key 'params' in [%s] is missing "
				    "(add a line like 'params = 8e9')", section);
		if (!(sc->models[k].joules_per_token > 0.0))
			need_eta = 1;
		if (ps->mx[k].n_budgets == 0 && sc->n_budgets == 0)
			return missing(ps, "workload", "budgets");
	}
	if (need_eta && !have(ps, "scaling", "eta"))
		return missing(ps, "scaling", "eta");

	expand_range(ps, sc->budgets, &sc->n_budgets, ps->workload_range);
	for (int k = 0; k < sc->n_models; k++)
		expand_range(ps, ps->mx[k].budgets, &ps->mx[k].n_budgets, ps->mx[k].range);

	sc->n_opts = 0;
	double best = 0.0;
	for (int k = 0; k < sc->n_models; k++) {
		const double *b = ps->mx[k].n_budgets ? ps->mx[k].budgets : sc->budgets;
		int nb = ps->mx[k].n_budgets ? ps->mx[k].n_budgets : sc->n_budgets;
		for (int j = 0; j < nb; j++) {
			if (sc->n_opts == SCEN_MAX_OPTIONS)
				return fail(ps, ps->mx[k].line, "more than %d (model, budget) options",
					    SCEN_MAX_OPTIONS);
			struct task_option *o = &sc->opts[sc->n_opts++];
			scaling_option(&sc->sp, &sc->models[k], k, b[j], o);
			o->acc = model_accuracy(&ps->mx[k], b[j], o->acc);
			if (!isfinite(o->m) || !isfinite(o->s))
				return fail(ps, ps->mx[k].line, "model '%s' with budget %g gives a non-finite energy",
					    sc->models[k].name, b[j]);
			if (o->acc > best)
				best = o->acc;
		}
	}
	if (sc->acc_target > best)
		return fail(ps, line_of(ps, "workload", "accuracy_target"),
			    "key 'accuracy_target' in [workload]: %g is above the best option's accuracy %.4f "
			    "(lower it, or add a larger model or budget)", sc->acc_target, best);

	if (sc->arrivals.kind == ARRIVALS_TRACE &&
	    !load_trace(ps, "workload", "arrival_trace", sc->arrival_trace_path, &sc->arrival_trace))
		return 0;
	sc->arrivals.trace = sc->arrival_trace;
	if (sc->supply_trace_path[0] &&
	    !load_trace(ps, "supply", "trace", sc->supply_trace_path, &sc->supply_trace))
		return 0;
	return 1;
}

int scenario_load(const char *path, struct scenario *sc, char *err, size_t errlen)
{
	return scenario_load_hooked(path, sc, NULL, err, errlen);
}

int scenario_load_hooked(const char *path, struct scenario *sc, const struct scenario_hooks *hooks,
			 char *err, size_t errlen)
{
	struct parse *ps = calloc(1, sizeof(*ps));

	memset(sc, 0, sizeof(*sc));
	if (!ps) {
		snprintf(err, errlen, "scenario: out of memory");
		return -1;
	}
	snprintf(sc->path, sizeof(sc->path), "%s", path);
	const char *base = strrchr(path, '/');
	cli_quote(base ? base + 1 : path, sc->name, sizeof(sc->name));	/* printed by erg sim */
	char *dot = strrchr(sc->name, '.');
	if (dot && dot != sc->name)
		*dot = '\0';
	sc->slot_seconds = 1.0;
	sc->slots = 20000;
	sc->seed = 1;
	sc->policies = POLICY_ALL;
	sc->how = REALISE_SWRR;
	sc->arrivals.var_ratio = 1.0;
	sc->dyn_horizon_slots = 100.0;
	sc->dyn_max_dip = 0.1;
	snprintf(ps->arrivals, sizeof(ps->arrivals), "poisson");

	ps->sc = sc;
	ps->path = path;
	ps->hooks = hooks;
	/* Regular files only, bounded: /dev/zero, a FIFO or a directory is an
	 * error at once, never a spin or a hang. */
	struct textfile tf;
	if (textfile_load(&tf, path, "scenario", TEXTFILE_MAX_CONFIG, err, errlen)) {
		free(ps);
		return -1;
	}
	ps->name = tf.name;
	find_headers(ps, tf.data, tf.len);
	int rc = textfile_ini_parse(&tf, handler, ps, &ps->line);
	textfile_free(&tf);
	if (rc > 0 && (!ps->err[0] || rc < ps->err_line)) {
		ps->err[0] = '\0';
		fail(ps, rc, "cannot parse this line (expected '[section]' or 'key = value'; "
			 "comments start with ';' or '#')");
	} else if (rc < 0 && !ps->err[0]) {
		fail(ps, 0, "cannot read the scenario (out of memory)");
	}
	if (!ps->err[0])
		finish(ps);
	for (int k = 0; k < sc->n_models; k++)
		sc->model_line[k] = ps->mx[k].line;
	int ok = !ps->err[0];
	if (!ok) {
		snprintf(err, errlen, "%s", ps->err);
		scenario_free(sc);
	}
	free(ps);
	return ok ? 0 : -1;
}

void scenario_free(struct scenario *sc)
{
	supply_trace_free(sc->arrival_trace);
	supply_trace_free(sc->supply_trace);
	sc->arrival_trace = sc->supply_trace = NULL;
	sc->arrivals.trace = NULL;
}

int scenario_parse_policies(const char *s)
{
	char buf[128];
	char *save = NULL;
	int mask = 0;

	if (!s || strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (!strcasecmp(tok, "mean"))
			mask |= POLICY_MEAN;
		else if (!strcasecmp(tok, "variance"))
			mask |= POLICY_VARIANCE;
		else if (!strcasecmp(tok, "dynamic"))
			mask |= POLICY_DYNAMIC;
		else if (!strcasecmp(tok, "all"))
			mask |= POLICY_ALL;
		else
			return -1;
	}
	return mask ? mask : -1;
}

void scenario_option_name(const struct scenario *sc, int i, char *buf, size_t len)
{
	const struct task_option *o = &sc->opts[i];

	snprintf(buf, len, "%s@%.0f", sc->models[o->model].name, o->budget);
}

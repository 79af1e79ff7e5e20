/* The live supply ledger: slots, settlement (docs/theory.md §3), moments (docs/theory.md §2)
 * and the drift test of the critical regime (docs/theory.md §4). */
#include "ledger.h"
#include "cli.h"
#include "errbuf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "supply_trace.h"
#include "textfile.h"

/* ---- options ---- */

void ledger_config_init(struct ledger_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->slot_s = 1.0;
	cfg->fsync = true;
	cfg->time_of_day_s = NAN;
}

/* name without dashes ("slot"); the message names "--slot". */
static int parse_num(const char *name, const char *value, double lo, double hi, const char *what,
		     double *out, char *err, size_t errlen)
{
	char opt[40];

	snprintf(opt, sizeof(opt), "--%s", name);
	return cli_double(opt, value, lo, hi, what, out, err, errlen);
}

int ledger_set_option(struct ledger_config *cfg, const char *name, const char *value,
		      char *err, size_t errlen)
{
	if (!strcmp(name, "supply-watts")) {
		if (cfg->supply_trace) {
			errbuf_set(err, errlen, "use --supply-watts or --supply-trace, not both");
			return -1;
		}
		if (parse_num(name, value, 0, 1e15, "watts", &cfg->supply_watts, err, errlen))
			return -1;
		cfg->supply_given = true;
	} else if (!strcmp(name, "supply-trace")) {
		if (cfg->supply_given && !cfg->supply_trace) {
			errbuf_set(err, errlen, "use --supply-watts or --supply-trace, not both");
			return -1;
		}
		if (!value || !*value) {
			errbuf_set(err, errlen, "--supply-trace needs a value: a CSV file of \"seconds,watts\" rows");
			return -1;
		}
		cfg->supply_trace = value;
		cfg->supply_given = true;
	} else if (!strcmp(name, "supply-trace-start")) {
		if (supply_trace_parse_start(value, &cfg->trace_start, err, errlen))
			return -1;
		cfg->trace_start_given = true;
	} else if (!strcmp(name, "storage-joules")) {
		if (parse_num(name, value, 0, 1e18, "joules", &cfg->storage_joules, err, errlen))
			return -1;
	} else if (!strcmp(name, "slot")) {
		if (cli_duration("--slot", value, 0.001, 86400, &cfg->slot_s, err, errlen))
			return -1;
	} else if (!strcmp(name, "journal")) {
		if (!value || !*value) {
			errbuf_set(err, errlen, "--journal needs a value: a file name");
			return -1;
		}
		cfg->journal_path = value;
	} else if (!strcmp(name, "no-fsync")) {
		if (value) {
			errbuf_set(err, errlen, "--no-fsync takes no value");
			return -1;
		}
		cfg->fsync = false;
	} else {
		return 0;
	}
	cfg->given = true;
	return 1;
}

int ledger_config_check(const struct ledger_config *cfg, char *err, size_t errlen)
{
	if (cfg->given && !cfg->supply_given) {
		errbuf_set(err, errlen, "the ledger options need a supply: add --supply-watts W or --supply-trace CSV");
		return -1;
	}
	if (cfg->trace_start_given && !cfg->supply_trace) {
		errbuf_set(err, errlen, "--supply-trace-start applies to --supply-trace CSV; add one or drop it");
		return -1;
	}
	return 0;
}

/* ---- moments and the drift test ---- */

void ledger_moments_add(struct ledger_moments *m, double x)
{
	double d = x - m->mean;

	m->n++;
	m->mean += d / m->n;
	m->m2 += d * (x - m->mean);
}

double ledger_moments_sigma(const struct ledger_moments *m)
{
	return m->n < 2 ? NAN : sqrt(fmax(m->m2, 0.0) / (m->n - 1));
}

void ledger_stats_init(struct ledger_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->regime = LEDGER_UNDETERMINED;
	s->drift_se = NAN;
	s->drift_z = NAN;
}

const char *ledger_regime_name(enum ledger_regime r)
{
	switch (r) {
	case LEDGER_OVER_SUPPLIED: return "over-supplied";
	case LEDGER_CRITICAL: return "critical";
	case LEDGER_UNDER_SUPPLIED: return "under-supplied";
	default: return "undetermined";
	}
}

/* A surplus (deficit) trend only costs waste (auxiliary) once storage is
 * full (empty); until then say where the energy goes. */
const char *ledger_regime_reason(const struct ledger_stats *s)
{
	switch (s->regime) {
	case LEDGER_CRITICAL:
		return "|z| <= 2";
	case LEDGER_OVER_SUPPLIED:
		return s->total_waste > 0 ? "z > 2: persistent waste"
					  : "z > 2: surplus goes to storage (no waste yet)";
	case LEDGER_UNDER_SUPPLIED:
		return s->total_aux > 0 ? "z < -2: persistent auxiliary"
					: "z < -2: storage covers the deficit (no auxiliary yet)";
	default:
		return "";
	}
}

/* docs/theory.md §4: the sign of the drift delta = b - mu decides the regime; with
 * only samples of b - D we call it nonzero when the mean is more than
 * LEDGER_DRIFT_Z standard errors from 0. */
static void drift_test(struct ledger_stats *s)
{
	uint64_t n = s->drift.n;
	double sd = ledger_moments_sigma(&s->drift), r = 0.0, rc;

	s->drift_mean = s->drift.mean;
	if (s->lag.n >= 3 && s->lag.cxx > 0 && s->lag.cyy > 0)
		r = s->lag.cxy / sqrt(s->lag.cxx * s->lag.cyy);
	s->drift_lag1 = r;
	if (n < 2) {
		s->drift_se = s->drift_z = NAN;
		s->regime = LEDGER_UNDETERMINED;
		return;
	}
	/* Effective sample size n(1-r)/(1+r) of an AR(1) series; negative r
	 * would shrink the error bar, so it is not used. */
	rc = fmin(fmax(r, 0.0), 0.9);
	s->drift_se = sd / sqrt((double)n) * sqrt((1 + rc) / (1 - rc));
	if (s->drift_se > 0)
		s->drift_z = s->drift_mean / s->drift_se;
	else
		s->drift_z = s->drift_mean == 0 ? 0.0 : copysign(INFINITY, s->drift_mean);
	if (n < LEDGER_MIN_SLOTS)
		s->regime = LEDGER_UNDETERMINED;
	else if (s->drift_z > LEDGER_DRIFT_Z)
		s->regime = LEDGER_OVER_SUPPLIED;
	else if (s->drift_z < -LEDGER_DRIFT_Z)
		s->regime = LEDGER_UNDER_SUPPLIED;
	else
		s->regime = LEDGER_CRITICAL;
}

void ledger_stats_add(struct ledger_stats *s, const struct slot_outcome *o)
{
	double x = o->supply - o->demand;

	s->slots++;
	s->last = *o;
	s->total_demand += o->demand;
	s->total_supply += o->supply;
	s->total_aux += o->aux;
	s->total_waste += o->waste;
	ledger_moments_add(&s->demand, o->demand);
	ledger_moments_add(&s->supply, o->supply);
	ledger_moments_add(&s->aux, o->aux);
	ledger_moments_add(&s->waste, o->waste);
	ledger_moments_add(&s->drift, x);
	if (s->slots > 1) {		/* the pair (x_{t-1}, x_t) */
		double dx, dy;

		s->lag.n++;
		dx = s->lag.prev - s->lag.mx;
		s->lag.mx += dx / s->lag.n;
		dy = x - s->lag.my;
		s->lag.my += dy / s->lag.n;
		s->lag.cxx += dx * (s->lag.prev - s->lag.mx);
		s->lag.cyy += dy * (x - s->lag.my);
		s->lag.cxy += dx * (x - s->lag.my);
	}
	s->lag.prev = x;
	drift_test(s);
}

bool ledger_slot_valid(const struct journal_slot *s, double capacity_j)
{
	const struct slot_outcome *o = &s->out;
	double v[] = { s->storage_before, o->demand, o->supply, o->aux, o->waste, o->storage,
		       s->t_start_s, s->duration_s };
	double scale = 1, resid;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!isfinite(v[i]))
			return false;
	if (o->demand < 0 || o->supply < 0 || o->aux < 0 || o->waste < 0)
		return false;
	scale += o->demand + o->supply + fabs(s->storage_before) + fabs(o->storage);
	resid = o->aux - o->waste - (o->demand - o->supply + o->storage - s->storage_before);
	if (fabs(resid) > 1e-9 * scale)
		return false;
	return o->storage >= -1e-9 * scale && o->storage <= capacity_j + 1e-9 * scale;
}

void ledger_format_joules(char *buf, size_t len, double j)
{
	static const char *const unit[] = { "J", "kJ", "MJ", "GJ", "TJ" };
	size_t u = 0;

	if (!isfinite(j)) {
		snprintf(buf, len, "-");
		return;
	}
	while (fabs(j) >= 999.5 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		j /= 1000;
		u++;
	}
	if (fabs(j) < 0.0005)
		j = 0;			/* no "-0" or "1e-17 J" from rounding */
	snprintf(buf, len, "%.3g %s", j, unit[u]);
}

static void add_num(cJSON *obj, const char *key, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(obj, key, v);
	else
		cJSON_AddNullToObject(obj, key);
}

static void add_four(cJSON *obj, const char *key, double d, double b, double a, double w)
{
	cJSON *o = cJSON_AddObjectToObject(obj, key);

	if (!o)
		return;
	add_num(o, "demand", d);
	add_num(o, "supply", b);
	add_num(o, "aux", a);
	add_num(o, "waste", w);
}

void ledger_stats_add_json(const struct ledger_stats *s, cJSON *obj)
{
	cJSON *o;

	add_num(obj, "slots", (double)s->slots);
	if (s->slots) {
		o = cJSON_AddObjectToObject(obj, "last");
		if (o) {
			add_num(o, "demand", s->last.demand);
			add_num(o, "supply", s->last.supply);
			add_num(o, "aux", s->last.aux);
			add_num(o, "waste", s->last.waste);
			add_num(o, "storage", s->last.storage);
		}
	}
	add_four(obj, "total", s->total_demand, s->total_supply, s->total_aux, s->total_waste);
	add_four(obj, "mean", s->slots ? s->demand.mean : NAN, s->slots ? s->supply.mean : NAN,
		 s->slots ? s->aux.mean : NAN, s->slots ? s->waste.mean : NAN);
	add_four(obj, "sigma", ledger_moments_sigma(&s->demand), ledger_moments_sigma(&s->supply),
		 ledger_moments_sigma(&s->aux), ledger_moments_sigma(&s->waste));
	cJSON_AddStringToObject(obj, "regime", ledger_regime_name(s->regime));
	o = cJSON_AddObjectToObject(obj, "drift");
	if (o) {
		add_num(o, "mean", s->slots ? s->drift_mean : NAN);
		add_num(o, "se", s->drift_se);
		add_num(o, "z", s->drift_z);
		add_num(o, "lag1", s->drift_lag1);
		add_num(o, "threshold_z", LEDGER_DRIFT_Z);
		add_num(o, "min_slots", LEDGER_MIN_SLOTS);
	}
}

/* ---- the live ledger ---- */

struct ledger {
	double supply_watts;		/* constant supply (no trace) */
	struct supply_trace *trace;
	char *trace_path;
	struct supply_trace_start trace_start;
	double trace_offset;		/* trace seconds at run second 0 */
	double time_of_day_s;		/* fixed start time of day, or NAN: the clock */
	double capacity;
	double slot_s;
	struct journal *journal;
	void (*on_slot)(void *ctx, const struct journal_slot *slot);
	void *on_slot_ctx;

	struct ledger_stats stats;
	double storage;			/* S before the open slot */
	bool started;
	double t0;			/* clock at the start of this run */
	double last_t;			/* time of the previous add */
	uint64_t run_slots;		/* slots closed in this run */
	uint64_t next_index;		/* journal index of the open slot */
	double open_demand;
	char err[512];
	char notice[512];
};

/* Restoring from an existing journal. */
struct restore {
	struct ledger_stats *stats;
	bool have_run, have_slot;
	struct journal_run run;		/* the last run record */
	double storage;			/* S' of the last slot */
};

static int restore_visit(void *ctx, const struct journal_record *rec)
{
	struct restore *r = ctx;

	if (rec->type == JOURNAL_RUN) {
		r->run = rec->run;
		r->have_run = true;
		if (!r->have_slot)
			r->storage = rec->run.storage_j;
	} else if (ledger_slot_valid(&rec->slot, r->have_run ? r->run.capacity_j : INFINITY)) {
		/* the same slots erg ledger counts */
		ledger_stats_add(r->stats, &rec->slot.out);
		r->storage = rec->slot.out.storage;
		r->have_slot = true;
	}
	return 0;
}

static bool same(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

static int open_journal(struct ledger *l, const struct ledger_config *cfg, char *err, size_t errlen)
{
	char path[TEXTFILE_QUOTED_MAX];		/* for messages */
	struct restore r = { .stats = &l->stats };
	struct journal_scan scan;
	struct journal_record rec = { .type = JOURNAL_RUN };
	struct journal_run *run = &rec.run;
	struct timespec now;
	size_t n = 0;

	textfile_quote(cfg->journal_path, path);
	l->journal = journal_open(cfg->journal_path, cfg->fsync, restore_visit, &r, &scan, err, errlen);
	if (!l->journal)
		return -1;
	if (r.have_run && (!same(r.run.slot_s, l->slot_s) || !same(r.run.capacity_j, l->capacity))) {
		errbuf_set(err, errlen,
		           "journal %s was written with --slot %g --storage-joules %g; reopen it with those values or choose a new --journal file",
		           path, r.run.slot_s, r.run.capacity_j);
		journal_close(l->journal, NULL, 0);
		l->journal = NULL;
		return -1;
	}
	l->storage = fmin(fmax(r.storage, 0.0), l->capacity);
	l->next_index = scan.slots ? scan.last_slot + 1 : 0;

	run->first_slot = l->next_index;
	clock_gettime(CLOCK_REALTIME, &now);
	run->start_unix_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	run->slot_s = l->slot_s;
	run->capacity_j = l->capacity;
	run->storage_j = l->storage;
	run->supply_kind = l->trace ? JOURNAL_SUPPLY_TRACE : JOURNAL_SUPPLY_CONSTANT;
	run->supply_watts = l->trace ? supply_trace_mean_watts(l->trace) : l->supply_watts;
	run->dropped_tail_bytes = scan.torn_tail ? scan.tail_bytes : 0;
	if (l->trace_path)
		snprintf(run->trace_path, sizeof(run->trace_path), "%s", l->trace_path);
	if (journal_append(l->journal, &rec, err, errlen) || journal_sync(l->journal, err, errlen)) {
		journal_close(l->journal, NULL, 0);
		l->journal = NULL;
		return -1;
	}

	if (scan.runs)
		n += snprintf(l->notice + n, sizeof(l->notice) - n,
			      "journal %s: resumed after %llu slots, storage %.6g J", path,
			      (unsigned long long)scan.slots, l->storage);
	if (scan.torn_tail && n < sizeof(l->notice))
		n += snprintf(l->notice + n, sizeof(l->notice) - n,
			      "%sjournal %s: cut a torn last record (%llu bytes)", n ? "; " : "",
			      path, (unsigned long long)scan.tail_bytes);
	if (journal_damaged(&scan) && n < sizeof(l->notice)) {
		/* Damage before the end stays in place and is never counted;
		 * new records go after it (damage at the end is refused). */
		char damage[300];

		journal_describe_damage(&scan, damage, sizeof(damage));
		errbuf_set(l->notice + n, sizeof(l->notice) - n,
			 "%sjournal %s: DAMAGED: %s; skipped and not trusted, see 'erg ledger %s'",
			 n ? "; " : "", path, damage, path);
	}
	return 0;
}

/* Enter the trace where the local clock says (supply_trace.h): a one-day
 * trace attached at 14:00 supplies its 14:00 watts, not its midnight. */
static void align_trace(struct ledger *l)
{
	double tod = isfinite(l->time_of_day_s) ? l->time_of_day_s : supply_trace_time_of_day(time(NULL));

	if (l->trace)
		l->trace_offset = supply_trace_start_offset(l->trace, &l->trace_start, tod);
}

struct ledger *ledger_open(const struct ledger_config *cfg, char *err, size_t errlen)
{
	struct ledger *l;

	if (!(cfg->slot_s > 0) || !isfinite(cfg->slot_s) || !(cfg->storage_joules >= 0) ||
	    !isfinite(cfg->storage_joules) || !(cfg->supply_watts >= 0) || !isfinite(cfg->supply_watts)) {
		errbuf_set(err, errlen, "ledger: slot must be > 0 s, storage and supply >= 0 (see --help)");
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		errbuf_set(err, errlen, "ledger: out of memory");
		return NULL;
	}
	ledger_stats_init(&l->stats);
	l->supply_watts = cfg->supply_watts;
	l->capacity = cfg->storage_joules;
	l->slot_s = cfg->slot_s;
	l->on_slot = cfg->on_slot;
	l->on_slot_ctx = cfg->on_slot_ctx;
	if (cfg->supply_trace) {
		l->trace = supply_trace_load(cfg->supply_trace, err, errlen);
		if (!l->trace)
			goto fail;
		l->trace_start = cfg->trace_start;
		l->time_of_day_s = cfg->time_of_day_s;
		align_trace(l);
		l->trace_path = strdup(cfg->supply_trace);
		if (!l->trace_path) {
			errbuf_set(err, errlen, "ledger: out of memory");
			goto fail;
		}
	}
	if (cfg->journal_path && open_journal(l, cfg, err, errlen))
		goto fail;
	return l;
fail:
	ledger_close(l);
	return NULL;
}

void ledger_start(struct ledger *l, double now_s)
{
	if (l->started)
		return;
	align_trace(l);		/* the clock starts now, not at open */
	l->started = true;
	l->t0 = now_s;
	l->last_t = now_s;
}

static double slot_end(const struct ledger *l)
{
	return l->t0 + (double)(l->run_slots + 1) * l->slot_s;
}

/* Settle the open slot (docs/theory.md §3.1/§3.2), fold it into the moments and
 * journal it. sync: this is the last slot a call closes; slots closed
 * together (after a long tick) share one fsync, which makes them durable
 * at the same moment as one fsync each would. */
static int close_slot(struct ledger *l, bool sync)
{
	double t_start = (double)l->run_slots * l->slot_s, t_end = t_start + l->slot_s;
	double supply = l->trace ? supply_trace_joules(l->trace, l->trace_offset + t_start,
						       l->trace_offset + t_end)
				 : l->supply_watts * l->slot_s;
	struct journal_record rec = { .type = JOURNAL_SLOT };
	struct journal_slot *s = &rec.slot;
	int rc = 0;

	s->index = l->next_index;
	s->t_start_s = t_start;
	s->duration_s = l->slot_s;
	s->storage_before = l->storage;
	supply_step(l->open_demand, supply, l->capacity, &l->storage, &s->out);
	ledger_stats_add(&l->stats, &s->out);
	l->run_slots++;
	l->next_index++;
	l->open_demand = 0;
	if (l->journal && (journal_append(l->journal, &rec, l->err, sizeof(l->err)) ||
			   (sync && journal_sync(l->journal, l->err, sizeof(l->err))))) {
		/* Keep settling; the journal stops and the caller hears of it. */
		size_t n = strlen(l->err);

		snprintf(l->err + n, sizeof(l->err) - n, "; the journal is stopped, the ledger goes on");
		journal_close(l->journal, NULL, 0);
		l->journal = NULL;
		rc = -1;
	}
	if (l->on_slot)
		l->on_slot(l->on_slot_ctx, s);
	return rc;
}

int ledger_add_demand(struct ledger *l, double now_s, double joules)
{
	double span, seg, remaining;
	int rc = 0;

	if (!isfinite(now_s) || !isfinite(joules) || joules < 0) {
		snprintf(l->err, sizeof(l->err), "ledger: demand must be finite joules >= 0 at a finite time (got %g J at %g s)",
			 joules, now_s);
		return -1;
	}
	if (!l->started)
		ledger_start(l, now_s);
	if (now_s <= l->last_t) {	/* no time passed (or the clock stepped back) */
		l->open_demand += joules;
		return 0;
	}
	/* Spread the joules evenly over [last_t, now_s); the last piece takes
	 * the remainder so the total is conserved exactly. */
	span = now_s - l->last_t;
	seg = l->last_t;
	remaining = joules;
	while (now_s >= slot_end(l)) {
		double end = slot_end(l), part = joules * ((end - seg) / span);

		if (part > remaining)
			part = remaining;
		l->open_demand += part;
		remaining -= part;
		/* the same arithmetic as slot_end() after this slot closes */
		bool last = now_s < l->t0 + (double)(l->run_slots + 2) * l->slot_s;

		if (close_slot(l, last))
			rc = -1;
		seg = end;
	}
	l->open_demand += remaining;
	l->last_t = now_s;
	return rc;
}

int ledger_flush(struct ledger *l, double now_s)
{
	int rc = ledger_add_demand(l, now_s, 0.0);

	if (l->journal && journal_sync(l->journal, l->err, sizeof(l->err)))
		rc = -1;
	return rc;
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	journal_close(l->journal, NULL, 0);
	if (l->trace)
		supply_trace_free(l->trace);
	free(l->trace_path);
	free(l);
}

const struct ledger_stats *ledger_stats(const struct ledger *l) { return &l->stats; }
double ledger_storage(const struct ledger *l) { return l->storage; }
double ledger_open_demand(const struct ledger *l) { return l->open_demand; }

double ledger_slot_start(const struct ledger *l)
{
	return l->started ? l->t0 + (double)l->run_slots * l->slot_s : NAN;
}
const char *ledger_error(const struct ledger *l) { return l->err; }
const char *ledger_notice(const struct ledger *l) { return l->notice[0] ? l->notice : NULL; }

double ledger_supply_watts(const struct ledger *l)
{
	if (!l->trace)
		return l->supply_watts;
	return supply_trace_watts(l->trace, l->trace_offset + (double)l->run_slots * l->slot_s);
}

double ledger_trace_position(const struct ledger *l)
{
	double period, x;

	if (!l->trace)
		return NAN;
	period = supply_trace_period(l->trace);
	x = fmod(l->trace_offset + (double)l->run_slots * l->slot_s, period);
	return x < 0 ? x + period : x;
}

int ledger_format_lines(const struct ledger *l, char *buf, size_t len)
{
	const struct ledger_stats *s = &l->stats;
	char st[32], cap[32], d[32], b[32], a[32], w[32], m[32], sd[32], ta[32], tw[32], se[32];
	char storage[96], where[48] = "";
	int n;

	if (l->capacity > 0) {
		ledger_format_joules(st, sizeof(st), l->storage);
		ledger_format_joules(cap, sizeof(cap), l->capacity);
		snprintf(storage, sizeof(storage), "storage %s of %s", st, cap);
	} else {
		snprintf(storage, sizeof(storage), "no storage");
	}
	ledger_format_joules(d, sizeof(d), s->last.demand);
	ledger_format_joules(b, sizeof(b), s->last.supply);
	ledger_format_joules(a, sizeof(a), s->last.aux);
	ledger_format_joules(w, sizeof(w), s->last.waste);
	ledger_format_joules(m, sizeof(m), s->slots ? s->demand.mean : NAN);
	ledger_format_joules(sd, sizeof(sd), ledger_moments_sigma(&s->demand));
	ledger_format_joules(ta, sizeof(ta), s->total_aux);
	ledger_format_joules(tw, sizeof(tw), s->total_waste);
	if (l->trace) {
		double pos = ledger_trace_position(l);

		/* the trace's own clock: a day trace reads as a time of day */
		snprintf(where, sizeof(where), " (trace at %02d:%02d)", (int)(pos / 3600),
			 (int)fmod(pos / 60, 60));
	}
	n = snprintf(buf, len, "ledger  %llu slots of %g s | supply %.4g W%s | %s\n",
		     (unsigned long long)s->slots, l->slot_s, ledger_supply_watts(l),
		     where, storage);
	if (n < 0)
		return n;
	if (s->slots) {
		n += snprintf(buf + ((size_t)n < len ? (size_t)n : len), (size_t)n < len ? len - n : 0,
			      "  last slot: demand %s  supply %s  aux %s  waste %s | demand mean %s sigma %s\n",
			      d, b, a, w, m, sd);
	} else {
		ledger_format_joules(d, sizeof(d), l->open_demand);
		n += snprintf(buf + ((size_t)n < len ? (size_t)n : len), (size_t)n < len ? len - n : 0,
			      "  last slot: none closed yet (demand so far %s)\n", d);
	}
	if (s->regime == LEDGER_UNDETERMINED) {
		n += snprintf(buf + ((size_t)n < len ? (size_t)n : len), (size_t)n < len ? len - n : 0,
			      "  regime: undetermined (%llu of the %d slots the drift test needs) | total aux %s, waste %s\n",
			      (unsigned long long)s->slots, LEDGER_MIN_SLOTS, ta, tw);
		return n;
	}
	ledger_format_joules(se, sizeof(se), s->drift_se);
	ledger_format_joules(d, sizeof(d), fabs(s->drift_mean));
	n += snprintf(buf + ((size_t)n < len ? (size_t)n : len), (size_t)n < len ? len - n : 0,
		      "  regime: %s: mean(b-D) %c%s/slot, SE %s, z %+.2f (%s) | total aux %s, waste %s\n",
		      ledger_regime_name(s->regime), s->drift_mean < 0 ? '-' : '+', d, se, s->drift_z,
		      ledger_regime_reason(s), ta, tw);
	return n;
}

void ledger_add_json(const struct ledger *l, cJSON *obj)
{
	if (!cJSON_HasObjectItem(obj, "type"))
		cJSON_AddStringToObject(obj, "type", "ledger");
	add_num(obj, "slot_s", l->slot_s);
	add_num(obj, "supply_watts", ledger_supply_watts(l));
	cJSON_AddStringToObject(obj, "supply_kind", l->trace ? "trace" : "constant");
	if (l->trace)
		add_num(obj, "supply_trace_position_s", ledger_trace_position(l));
	add_num(obj, "storage", l->storage);
	add_num(obj, "capacity", l->capacity);
	add_num(obj, "open_demand", l->open_demand);
	ledger_stats_add_json(&l->stats, obj);
}

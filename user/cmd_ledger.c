/* erg ledger: summarise or replay a supply-ledger journal (docs/theory.md §3-§4).
 * Reads only; the file is never changed. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "ledger.h"
#include "textfile.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: erg ledger [--replay] [--json] FILE\n\n"
		"Summarise the supply-ledger journal FILE written by 'erg top --journal FILE':\n"
		"slots, total demand, supply, auxiliary energy and waste, per-slot mean and\n"
		"sigma, the regime (over-supplied, critical or under-supplied: a drift test of\n"
		"mean(b-D) against 2 standard errors, docs/theory.md §4) with its evidence, and the\n"
		"journal's integrity: damaged records (checksum fails, or impossible values\n"
		"such as a NaN or negative slot length) are reported with their byte\n"
		"offsets, skipped and not trusted; only a torn last record (a write cut\n"
		"short by a kill, shorter than one record) is ignored. The file is only\n"
		"read; it must be a regular file.\n\n"
		"options:\n"
		"  --replay   also print every run and slot record, in file order\n"
		"  --json     JSON: one document; with --replay one JSON object per line\n"
		"             (\"type\": \"run\", \"slot\", then \"summary\")\n"
		"  --help     this text\n\n"
		"exit status: 0 journal intact (a torn last record allowed), 1 damaged or\n"
		"inconsistent records found (summary printed over the valid ones, the\n"
		"damage named with its offsets), 2 usage error, or a file that cannot be\n"
		"read, is not a regular file or is not an erg journal.\n");
}

struct reader_ctx {
	bool replay, json;
	struct ledger_stats stats;
	uint64_t runs;
	struct journal_run first_run, last_run;
	bool have_run;
	double slot_s;
	bool mixed_slot;
	uint64_t inconsistent;
	uint64_t inconsistent_at[JOURNAL_MAX_BAD];
};

static void iso_time(char *buf, size_t len, int64_t unix_ns)
{
	time_t t = (time_t)(unix_ns / 1000000000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
}

static void print_json_line(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s) {
		puts(s);
		free(s);
	}
	cJSON_Delete(o);
}

/* A run record: the configuration its slots obey; printed with --replay. */
static void visit_run(struct reader_ctx *c, const struct journal_record *rec)
{
	const struct journal_run *r = &rec->run;
	char when[32];

	if (!c->have_run) {
		c->first_run = *r;
		c->slot_s = r->slot_s;
	} else if (r->slot_s != c->slot_s) {
		c->mixed_slot = true;
	}
	c->last_run = *r;
	c->have_run = true;
	c->runs++;
	if (!c->replay)
		return;
	iso_time(when, sizeof(when), r->start_unix_ns);
	if (c->json) {
		cJSON *o = cJSON_CreateObject();

		if (!o)
			return;
		cJSON_AddStringToObject(o, "type", "run");
		cJSON_AddNumberToObject(o, "offset", (double)rec->offset);
		cJSON_AddStringToObject(o, "start", when);
		cJSON_AddNumberToObject(o, "first_slot", (double)r->first_slot);
		cJSON_AddNumberToObject(o, "slot_s", r->slot_s);
		cJSON_AddStringToObject(o, "supply_kind",
					r->supply_kind == JOURNAL_SUPPLY_TRACE ? "trace" : "constant");
		cJSON_AddNumberToObject(o, "supply_watts", r->supply_watts);
		if (r->trace_path[0])
			cJSON_AddStringToObject(o, "supply_trace", r->trace_path);
		cJSON_AddNumberToObject(o, "capacity", r->capacity_j);
		cJSON_AddNumberToObject(o, "storage", r->storage_j);
		cJSON_AddNumberToObject(o, "dropped_tail_bytes", (double)r->dropped_tail_bytes);
		print_json_line(o);
	} else {
		char trace[TEXTFILE_QUOTED_MAX];

		/* The path came from a file: no raw escape codes on a terminal. */
		printf("# run %llu from %s: slot %g s, supply %.6g W %s%s%s, storage %.6g J of %.6g J, first slot %llu",
		       (unsigned long long)c->runs, when, r->slot_s, r->supply_watts,
		       r->supply_kind == JOURNAL_SUPPLY_TRACE ? "(trace mean of " : "constant",
		       textfile_quote(r->trace_path, trace), r->supply_kind == JOURNAL_SUPPLY_TRACE ? ")" : "",
		       r->storage_j, r->capacity_j, (unsigned long long)r->first_slot);
		if (r->dropped_tail_bytes)
			printf(", a torn record of %llu bytes was cut before it",
			       (unsigned long long)r->dropped_tail_bytes);
		printf("\n%10s %10s %14s %14s %14s %14s %14s\n", "slot", "t_start_s", "demand_J",
		       "supply_J", "aux_J", "waste_J", "storage_J");
	}
}

/* A slot, printed with --replay. One that passes its checksum but not
 * docs/theory.md §3's identity or the storage bounds is counted as inconsistent and
 * left out. */
static void visit_slot(struct reader_ctx *c, const struct journal_record *rec)
{
	const struct journal_slot *s = &rec->slot;
	bool ok = ledger_slot_valid(s, c->have_run ? c->last_run.capacity_j : INFINITY);

	if (ok) {
		ledger_stats_add(&c->stats, &s->out);
	} else {
		if (c->inconsistent < JOURNAL_MAX_BAD)
			c->inconsistent_at[c->inconsistent] = rec->offset;
		c->inconsistent++;
	}
	if (!c->replay)
		return;
	if (c->json) {
		cJSON *o = cJSON_CreateObject();

		if (!o)
			return;
		cJSON_AddStringToObject(o, "type", "slot");
		cJSON_AddNumberToObject(o, "slot", (double)s->index);
		cJSON_AddNumberToObject(o, "t_start_s", s->t_start_s);
		cJSON_AddNumberToObject(o, "duration_s", s->duration_s);
		cJSON_AddNumberToObject(o, "demand", s->out.demand);
		cJSON_AddNumberToObject(o, "supply", s->out.supply);
		cJSON_AddNumberToObject(o, "aux", s->out.aux);
		cJSON_AddNumberToObject(o, "waste", s->out.waste);
		cJSON_AddNumberToObject(o, "storage_before", s->storage_before);
		cJSON_AddNumberToObject(o, "storage", s->out.storage);
		if (!ok)
			cJSON_AddBoolToObject(o, "inconsistent", 1);
		print_json_line(o);
	} else {
		printf("%10llu %10.3f %14.3f %14.3f %14.3f %14.3f %14.3f%s\n",
		       (unsigned long long)s->index, s->t_start_s, s->out.demand, s->out.supply,
		       s->out.aux, s->out.waste, s->out.storage,
		       ok ? "" : "  INCONSISTENT (A-W != D-b+dS or storage out of range): not counted");
	}
}

static int visit(void *ctx, const struct journal_record *rec)
{
	if (rec->type == JOURNAL_RUN)
		visit_run(ctx, rec);
	else
		visit_slot(ctx, rec);
	return 0;
}

static bool damaged(const struct journal_scan *scan, const struct reader_ctx *c)
{
	return journal_damaged(scan) || c->inconsistent;
}

static void add_offsets_json(cJSON *obj, const char *name, uint64_t count, const uint64_t *at)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, name);

	for (uint64_t i = 0; arr && i < count && i < JOURNAL_MAX_BAD; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)at[i]));
}

static void summary_json(const char *path, const struct journal_scan *scan, const struct reader_ctx *c)
{
	cJSON *o = cJSON_CreateObject(), *integ;
	char when[32];

	if (!o)
		return;
	if (c->replay)
		cJSON_AddStringToObject(o, "type", "summary");
	cJSON_AddStringToObject(o, "file", path);
	cJSON_AddNumberToObject(o, "runs", (double)c->runs);
	if (c->have_run) {
		cJSON_AddNumberToObject(o, "slot_s", c->slot_s);
		cJSON_AddBoolToObject(o, "mixed_slot_lengths", c->mixed_slot);
		iso_time(when, sizeof(when), c->first_run.start_unix_ns);
		cJSON_AddStringToObject(o, "first_start", when);
		iso_time(when, sizeof(when), c->last_run.start_unix_ns);
		cJSON_AddStringToObject(o, "last_start", when);
		cJSON_AddNumberToObject(o, "capacity", c->last_run.capacity_j);
	}
	ledger_stats_add_json(&c->stats, o);
	integ = cJSON_AddObjectToObject(o, "integrity");
	if (integ) {
		cJSON_AddBoolToObject(integ, "ok", !damaged(scan, c));
		cJSON_AddNumberToObject(integ, "file_bytes", (double)scan->file_bytes);
		cJSON_AddNumberToObject(integ, "valid_slot_records", (double)scan->slots);
		cJSON_AddNumberToObject(integ, "corrupt_regions", (double)scan->corrupt_regions);
		cJSON_AddNumberToObject(integ, "corrupt_bytes", (double)scan->corrupt_bytes);
		add_offsets_json(integ, "corrupt_offsets", scan->corrupt_regions, scan->corrupt_at);
		cJSON_AddNumberToObject(integ, "damaged_records", (double)scan->bad_frames);
		add_offsets_json(integ, "damaged_offsets", scan->bad_frames, scan->bad_frame_at);
		cJSON_AddNumberToObject(integ, "invalid_records", (double)scan->invalid_records);
		add_offsets_json(integ, "invalid_offsets", scan->invalid_records, scan->invalid_at);
		cJSON_AddNumberToObject(integ, "missing_slots", (double)scan->missing_slots);
		cJSON_AddNumberToObject(integ, "unordered_slots", (double)scan->unordered_slots);
		cJSON_AddNumberToObject(integ, "inconsistent_slots", (double)c->inconsistent);
		cJSON_AddNumberToObject(integ, "torn_tail_bytes", scan->torn_tail ? (double)scan->tail_bytes : 0);
		cJSON_AddNumberToObject(integ, "unreadable_tail_bytes",
					scan->torn_tail ? 0 : (double)scan->tail_bytes);
	}
	if (c->replay) {
		print_json_line(o);
		return;
	}
	char *s = cJSON_Print(o);

	if (s) {
		puts(s);
		free(s);
	}
	cJSON_Delete(o);
}

static void summary_text(const char *path, const struct journal_scan *scan, const struct reader_ctx *c)
{
	const struct ledger_stats *s = &c->stats;
	char a[32], b[32], d[32], e[32];

	if (c->replay)
		printf("\n");
	char q[TEXTFILE_QUOTED_MAX];

	printf("journal %s: %llu slots in %llu run(s)", textfile_quote(path, q), (unsigned long long)s->slots,
	       (unsigned long long)c->runs);
	if (c->have_run) {
		char t0[32], t1[32];

		iso_time(t0, sizeof(t0), c->first_run.start_unix_ns);
		iso_time(t1, sizeof(t1), c->last_run.start_unix_ns);
		printf(", slot %g s%s, ", c->slot_s, c->mixed_slot ? " (lengths differ between runs)" : "");
		if (c->runs > 1)
			printf("runs started %s .. %s", t0, t1);
		else
			printf("started %s", t0);
	}
	printf("\n");
	if (s->regime == LEDGER_UNDETERMINED) {
		printf("regime: undetermined (%llu slots; the drift test needs %d)\n",
		       (unsigned long long)s->slots, LEDGER_MIN_SLOTS);
	} else {
		ledger_format_joules(a, sizeof(a), fabs(s->drift_mean));
		ledger_format_joules(b, sizeof(b), s->drift_se);
		printf("regime: %s: mean(b-D) %c%s/slot, standard error %s, z %+.2f (%s; lag-1 autocorrelation %.2f)\n",
		       ledger_regime_name(s->regime), s->drift_mean < 0 ? '-' : '+', a, b, s->drift_z,
		       ledger_regime_reason(s), s->drift_lag1);
	}
	ledger_format_joules(a, sizeof(a), s->total_demand);
	ledger_format_joules(b, sizeof(b), s->total_supply);
	ledger_format_joules(d, sizeof(d), s->total_aux);
	ledger_format_joules(e, sizeof(e), s->total_waste);
	printf("totals: demand %s, supply %s, auxiliary %s, waste %s\n", a, b, d, e);
	const struct { const char *name; const struct ledger_moments *m; } rows[] = {
		{ "demand", &s->demand }, { "supply", &s->supply },
		{ "auxiliary", &s->aux }, { "waste", &s->waste },
	};
	printf("per slot (mean, sigma):");
	for (size_t i = 0; i < 4; i++) {
		ledger_format_joules(a, sizeof(a), rows[i].m->n ? rows[i].m->mean : NAN);
		ledger_format_joules(b, sizeof(b), ledger_moments_sigma(rows[i].m));
		printf("%s %s %s, %s", i ? ";" : "", rows[i].name, a, b);
	}
	printf("\n");
	if (c->have_run && c->last_run.capacity_j > 0) {
		ledger_format_joules(a, sizeof(a), c->last_run.capacity_j);
		ledger_format_joules(b, sizeof(b), s->slots ? s->last.storage : c->last_run.storage_j);
		printf("storage: capacity %s, level %s after the last slot\n", a, b);
	}
	if (!damaged(scan, c)) {
		printf("integrity: ok (every record passed its checksum, no slot missing, A-W = D-b+dS in every slot");
		if (scan->torn_tail)
			printf("; a torn last record of %llu bytes was ignored", (unsigned long long)scan->tail_bytes);
		printf(")\n");
		return;
	}
	char damage[600];

	journal_describe_damage(scan, damage, sizeof(damage));
	printf("integrity: DAMAGED: %s", damage);
	if (c->inconsistent) {
		printf("%s%llu slot(s) break A-W = D-b+dS or the storage bounds and were not counted, at offset(s)",
		       damage[0] ? "; " : "", (unsigned long long)c->inconsistent);
		for (uint64_t i = 0; i < c->inconsistent && i < JOURNAL_MAX_BAD; i++)
			printf(" %llu", (unsigned long long)c->inconsistent_at[i]);
	}
	if (scan->torn_tail)
		printf("; a torn last record of %llu bytes was ignored", (unsigned long long)scan->tail_bytes);
	printf("; the figures above use only the valid slots\n");
}

int cmd_ledger(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "replay", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct reader_ctx c = { 0 };
	struct journal_scan scan;
	const char *path;
	char err[1024], q[TEXTFILE_QUOTED_MAX], q2[TEXTFILE_QUOTED_MAX];
	struct cli cli;
	int opt;

	cli_init(&cli, "erg ledger", "h", longopts);
	while ((opt = cli_next(&cli, argc, argv)) != -1) {
		switch (opt) {
		case 'h':
			usage(stdout);
			return 0;
		case 'r':
			c.replay = true;
			break;
		case 'j':
			c.json = true;
			break;
		default:
			return 2;	/* cli_next printed why */
		}
	}
	if (optind >= argc)
		return cli_fail(&cli, "name the journal file: erg ledger FILE (see erg ledger --help)");
	path = argv[optind];
	if (optind + 1 < argc) {
		snprintf(err, sizeof(err), "one journal at a time (got '%s' and '%s')",
			 textfile_quote(path, q), textfile_quote(argv[optind + 1], q2));
		return cli_fail(&cli, err);
	}
	ledger_stats_init(&c.stats);
	if (journal_read(path, visit, &c, &scan, err, sizeof(err)) != 0) {
		fflush(stdout);
		fprintf(stderr, "erg ledger: %s\n", err);
		return 2;
	}
	if (c.json)
		summary_json(path, &scan, &c);
	else
		summary_text(path, &scan, &c);
	return damaged(&scan, &c) ? 1 : 0;
}

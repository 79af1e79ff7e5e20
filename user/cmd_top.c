/* erg top: attach to running inference workers and print per-model energy
 * live, one table (or NDJSON lines) per interval, a summary at the end. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "attrib.h"
#include "commands.h"
#include "energy.h"
#include "gpu_top.h"
#include "ledger.h"
#include "requests.h"
#include "sock_tracker.h"
#include "targets.h"
#include "tracker.h"

#define MAX_MODELS ERG_MAX_WORKERS

struct top_opts {
	struct target_set targets;
	struct energy_opts energy;
	struct tracker_opts tracker;
	double interval_s;
	long count;		/* 0: until Ctrl-C */
	bool json;
	bool no_requests;
	double request_idle_s;	/* quiet after a response that ends a request */
	struct ledger_config ledger;
	struct gpu_top_opts gpu;
};

/* Per-model running state. */
struct model_row {
	const char *name;
	unsigned procs;
	double cpu_s;		/* cumulative since attach */
	uint64_t nj;		/* cumulative attributed nanojoules */
	uint64_t tick_nj;	/* this tick */
	uint64_t request_nj;	/* part of nj spent inside request windows */
	unsigned long long requests;	/* requests completed */
	size_t requests_active;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: erg top [OPTIONS] [interval [count]]\n"
"\n"
"Attach to running inference workers and print, every interval seconds\n"
"(default 1) until Ctrl-C or count intervals, one row per model: processes,\n"
"CPU seconds, watts over the interval, joules since attach, share of the\n"
"node's energy, and the energy source; then attributed + unattributed = total.\n"
"Ctrl-C (or the end of count) prints a summary and detaches. Needs root, or\n"
"CAP_BPF+CAP_PERFMON.\n"
"\n"
"Targets (repeatable, at least one; without =MODEL the model is the process name):\n"
"  -p, --pid PID[=MODEL]        a running process, its threads and its children\n"
"  -c, --comm NAME[=MODEL]      every process named NAME (/proc/PID/comm), also\n"
"                               ones started after erg\n"
"  -g, --cgroup PATH[=MODEL]    every process in a cgroup v2 directory or below\n"
"  -C, --config FILE            INI file: [model NAME] pid=/comm=/cgroup= lines,\n"
"                               [power] source=, idle_watts=, watts_per_busy_core=\n"
"\n"
"Energy (joules are measured where the node has counters, modelled otherwise):\n"
"  -e, --energy-source SRC      auto (default: rapl, then hwmon, then model),\n"
"                               rapl, hwmon or model\n"
"      --idle-watts W           power model: node idle watts (never attributed)\n"
"      --watts-per-core W       power model: watts per busy core above idle\n"
"      --sysfs-root DIR         read powercap/hwmon under DIR instead of /sys\n"
"\n"
LEDGER_OPTIONS_HELP
"\n"
GPU_TOP_OPTIONS_HELP
"\n"
"Output:\n"
"  -j, --json                   NDJSON: per interval one {\"type\":\"model\"} line per\n"
"                               model and one {\"type\":\"total\"} line; cpu_s and\n"
"                               joules are cumulative since attach\n"
"      --no-requests            do not follow socket traffic (no per-request joules)\n"
"      --request-idle S         a request on a kept-alive connection ends S seconds\n"
"                               after its last byte out if nothing else ends it\n"
"                               (default 2; its window still closes at that byte)\n"
"      --raw-tp                 use the raw_tp programs instead of tp_btf\n"
"  -v, --verbose                print libbpf's log\n"
"  -h, --help                   this text\n"
"\n"
"Attribution: each interval the node's active energy (total minus idle) is\n"
"split among the workers by their share of the node's busy CPU time (Kepler's\n"
"method); idle and untracked work stay unattributed. Each worker's joules are\n"
"split further among its requests by the CPU each used, requests being cut\n"
"from the worker's socket reads and writes (a completed request prints a\n"
"{\"type\":\"request\"} line with --json); the rest is non-request work.\n"
"\n"
"Example: erg top --pid 4242=qwen-7b --comm llama-server=llama-70b 1 10\n");
}

static int parse_positive(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0.0) || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct top_opts *o)
{
	enum { OPT_IDLE = 256, OPT_WPC, OPT_SYSFS, OPT_PROCFS, OPT_RAW, OPT_NO_REQ, OPT_REQ_IDLE };
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "comm", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "config", required_argument, NULL, 'C' },
		{ "energy-source", required_argument, NULL, 'e' },
		{ "idle-watts", required_argument, NULL, OPT_IDLE },
		{ "watts-per-core", required_argument, NULL, OPT_WPC },
		{ "sysfs-root", required_argument, NULL, OPT_SYSFS },
		{ "procfs-root", required_argument, NULL, OPT_PROCFS },
		{ "json", no_argument, NULL, 'j' },
		{ "raw-tp", no_argument, NULL, OPT_RAW },
		{ "no-requests", no_argument, NULL, OPT_NO_REQ },
		{ "request-idle", required_argument, NULL, OPT_REQ_IDLE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		LEDGER_LONG_OPTIONS,
		GPU_TOP_LONG_OPTIONS,
		{ 0 }
	};
	char err[768];
	bool source_given = false;
	int opt, longindex = 0;

	o->interval_s = 1.0;
	o->request_idle_s = 2.0;
	ledger_config_init(&o->ledger);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+p:c:g:C:e:jvh", longopts, &longindex)) != -1) {
		double v = 0.0;

		switch (opt) {
		case 'p':
		case 'c':
		case 'g':
			if (target_add(&o->targets, opt == 'p' ? TARGET_PID : opt == 'c' ? TARGET_COMM : TARGET_CGROUP,
				       optarg, o->tracker.proc_root, err, sizeof(err))) {
				fprintf(stderr, "erg top: %s\n", err);
				return 2;
			}
			break;
		case 'C':
			if (targets_load_config(&o->targets, optarg, o->tracker.proc_root, err, sizeof(err))) {
				fprintf(stderr, "erg top: %s\n", err);
				return 2;
			}
			break;
		case 'e':
			if (!energy_choice_parse(optarg, &o->energy.choice)) {
				fprintf(stderr, "erg top: --energy-source '%s': expected auto, rapl, hwmon or model\n", optarg);
				return 2;
			}
			source_given = true;
			break;
		case OPT_IDLE:
		case OPT_WPC:
			if (parse_positive(optarg, &v) && (v = 0.0, strcmp(optarg, "0"))) {
				fprintf(stderr, "erg top: %s '%s': expected watts, a number >= 0\n",
					opt == OPT_IDLE ? "--idle-watts" : "--watts-per-core", optarg);
				return 2;
			}
			if (opt == OPT_IDLE)
				o->energy.model.idle_watts = v > 0 ? v : 0;
			else
				o->energy.model.watts_per_busy_core = v > 0 ? v : 0;
			break;
		case OPT_SYSFS:
			o->energy.sysfs_root = optarg;
			break;
		case OPT_PROCFS:
			o->energy.procfs_root = optarg;
			o->tracker.proc_root = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case OPT_RAW:
			o->tracker.force_raw_tp = true;
			break;
		case OPT_NO_REQ:
			o->no_requests = true;
			break;
		case OPT_REQ_IDLE:
			if (parse_positive(optarg, &o->request_idle_s)) {
				fprintf(stderr, "erg top: --request-idle '%s': expected seconds > 0\n", optarg);
				return 2;
			}
			break;
		case 'v':
			o->tracker.verbose = true;
			break;
		case LEDGER_GETOPT_VAL:
			if (ledger_set_option(&o->ledger, longopts[longindex].name, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "erg top: %s\n", err);
				return 2;
			}
			break;
		case GPU_TOP_GETOPT_VAL:
			if (gpu_top_set_option(&o->gpu, longopts[longindex].name, optarg, err, sizeof(err))) {
				fprintf(stderr, "erg top: %s\n", err);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 1;
		case '?':
		default:
			if (optopt)
				fprintf(stderr, "erg top: option -%c: unknown or missing its value (see erg top --help)\n", optopt);
			else
				fprintf(stderr, "erg top: unknown option '%s' (see erg top --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	/* A [power] section applies where the command line said nothing. */
	if (!source_given && o->targets.have_source)
		o->energy.choice = o->targets.source;
	if (o->energy.model.idle_watts <= 0)
		o->energy.model.idle_watts = o->targets.power.idle_watts;
	if (o->energy.model.watts_per_busy_core <= 0)
		o->energy.model.watts_per_busy_core = o->targets.power.watts_per_busy_core;

	if (optind < argc && parse_positive(argv[optind++], &o->interval_s)) {
		fprintf(stderr, "erg top: interval '%s': expected seconds > 0\n", argv[optind - 1]);
		return 2;
	}
	if (optind < argc) {
		char *end;

		errno = 0;
		o->count = strtol(argv[optind], &end, 10);
		if (errno || *end || end == argv[optind] || o->count <= 0) {
			fprintf(stderr, "erg top: count '%s': expected a whole number > 0\n", argv[optind]);
			return 2;
		}
		optind++;
	}
	if (optind < argc) {
		fprintf(stderr, "erg top: unexpected argument '%s' (usage: erg top [OPTIONS] [interval [count]])\n", argv[optind]);
		return 2;
	}
	if (ledger_config_check(&o->ledger, err, sizeof(err))) {
		fprintf(stderr, "erg top: %s\n", err);
		return 2;
	}
	if (o->targets.n == 0) {
		fprintf(stderr, "erg top: nothing to attach to: give --pid, --comm, --cgroup or --config (see erg top --help)\n");
		return 2;
	}
	return 0;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep until an absolute monotonic time; false if a signal asked to stop. */
static bool sleep_until(double when_s)
{
	struct timespec ts = { (time_t)when_s, (long)((when_s - floor(when_s)) * 1e9) };

	while (!stop_requested) {
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);

		if (rc == 0)
			return true;
		if (rc != EINTR)
			return false;
	}
	return false;
}

struct top_state {
	const struct top_opts *o;
	struct energy_source *energy;
	struct tracker *tracker;
	struct request_tracker *requests;
	struct sock_tracker *socks;
	struct ledger *ledger;
	struct gpu_top *gpu;
	uint64_t worker_request_nj[ERG_MAX_WORKERS], worker_nonrequest_nj[ERG_MAX_WORKERS];
	size_t n_workers, n_models;
	size_t model_of[ERG_MAX_WORKERS];
	struct model_row models[MAX_MODELS];
	double prev_cpu[ERG_MAX_WORKERS], cur_cpu[ERG_MAX_WORKERS], tick_cpu[ERG_MAX_WORKERS];
	unsigned procs[ERG_MAX_WORKERS];
	uint64_t worker_tick_nj[ERG_MAX_WORKERS];
	struct energy_sample prev_sample;
	double start_s, prev_s, tick_s;
	uint64_t total_nj, attributed_nj, unattributed_nj, tick_total_nj;
	long ticks;
};

/* Completed requests: counted per model, one NDJSON line each with --json. */
static void report_completed_requests(struct top_state *st)
{
	struct request_info done[64];
	size_t n;

	while ((n = requests_take_completed(st->requests, done, 64)) > 0) {
		for (size_t i = 0; i < n; i++) {
			struct model_row *row = &st->models[st->model_of[done[i].worker]];

			row->requests++;
			if (!st->o->json)
				continue;
			cJSON *o = cJSON_CreateObject();
			char *line;

			cJSON_AddStringToObject(o, "type", "request");
			cJSON_AddNumberToObject(o, "ts", wall_s());
			cJSON_AddStringToObject(o, "model", row->name);
			cJSON_AddNumberToObject(o, "id", (double)done[i].id);
			cJSON_AddNumberToObject(o, "pid", done[i].tgid);
			cJSON_AddNumberToObject(o, "duration_s", done[i].end_s - done[i].start_s);
			cJSON_AddNumberToObject(o, "cpu_s", (double)done[i].cpu_ns / 1e9);
			cJSON_AddNumberToObject(o, "bytes_in", (double)done[i].bytes_in);
			cJSON_AddNumberToObject(o, "bytes_out", (double)done[i].bytes_out);
			cJSON_AddNumberToObject(o, "joules", attrib_joules(done[i].nj));
			cJSON_AddNumberToObject(o, "nj", (double)done[i].nj);
			cJSON_AddStringToObject(o, "source", energy_name(st->energy));
			line = cJSON_PrintUnformatted(o);
			if (line)
				puts(line);
			free(line);
			cJSON_Delete(o);
		}
	}
}

static int tick(struct top_state *st, double now_s)
{
	struct energy_sample sample;
	struct attrib_result res;
	struct attrib_tick in;
	char err[512];
	double dt;

	if (energy_read(st->energy, now_s, &sample, err, sizeof(err))) {
		fprintf(stderr, "erg top: energy source %s: %s\n", energy_name(st->energy), err);
		return -1;
	}
	tracker_refresh(st->tracker);
	if (st->socks && sock_tracker_poll(st->socks) < 0)
		fprintf(stderr, "erg top: reading socket events failed; per-request joules may be short\n");
	if (tracker_read(st->tracker, st->cur_cpu, st->procs)) {
		fprintf(stderr, "erg top: cannot read the BPF counters: %s\n", strerror(errno));
		return -1;
	}
	dt = now_s - st->prev_s;
	for (size_t w = 0; w < st->n_workers; w++) {
		double d = st->cur_cpu[w] - st->prev_cpu[w];

		st->tick_cpu[w] = d > 0 ? d : 0;
		st->prev_cpu[w] = st->cur_cpu[w];
	}
	in.total_nj = attrib_nj(sample.joules - st->prev_sample.joules);
	in.idle_nj = attrib_nj(energy_idle_watts(st->energy) * dt);
	in.node_busy_cpu_s = sample.busy_cpu_s - st->prev_sample.busy_cpu_s;
	in.worker_cpu_s = st->tick_cpu;
	in.n_workers = st->n_workers;
	res = attrib_split(&in, st->worker_tick_nj);
	gpu_top_tick(st->gpu, now_s, st->worker_tick_nj, &in.total_nj, &res);

	st->total_nj += in.total_nj;
	st->attributed_nj += res.attributed_nj;
	st->unattributed_nj += res.unattributed_nj;
	st->tick_total_nj = in.total_nj;
	if (st->requests) {
		unsigned open_tgids[256];
		size_t n_open = requests_open_tgids(st->requests, open_tgids, 256);

		for (size_t i = 0; i < n_open; i++)
			requests_stamp(st->requests, open_tgids[i], now_s,
				       tracker_proc_cpu_ns(st->tracker, open_tgids[i]));
		requests_split(st->requests, now_s, st->worker_tick_nj, st->tick_cpu,
			       st->worker_request_nj, st->worker_nonrequest_nj);
	}
	for (size_t m = 0; m < st->n_models; m++) {
		st->models[m].tick_nj = 0;
		st->models[m].procs = 0;
		st->models[m].cpu_s = 0;
		st->models[m].requests_active = 0;
	}
	for (size_t w = 0; w < st->n_workers; w++) {
		struct model_row *row = &st->models[st->model_of[w]];

		row->tick_nj += st->worker_tick_nj[w];
		row->nj += st->worker_tick_nj[w];
		row->procs += st->procs[w];
		row->cpu_s += st->cur_cpu[w];
		if (st->requests) {
			row->request_nj += st->worker_request_nj[w];
			row->requests_active += requests_active(st->requests, (unsigned)w);
		}
	}
	if (st->requests)
		report_completed_requests(st);
	/* THEORY §3: the service's demand is the energy of the tracked workers */
	if (st->ledger && ledger_add_demand(st->ledger, now_s, attrib_joules(res.attributed_nj)))
		fprintf(stderr, "erg top: ledger: %s\n", ledger_error(st->ledger));
	st->prev_sample = sample;
	st->tick_s = dt;
	st->prev_s = now_s;
	st->ticks++;
	return 0;
}

static double share_pct(uint64_t part, uint64_t total)
{
	return total ? 100.0 * (double)part / (double)total : 0.0;
}

static void print_table(const struct top_state *st, bool summary)
{
	double dt = st->tick_s > 0 ? st->tick_s : 1.0;
	double elapsed = st->prev_s - st->start_s;
	const char *src = energy_name(st->energy);

	if (!summary && isatty(STDOUT_FILENO))
		printf("\033[H\033[2J");
	if (summary)
		printf("\nerg top: summary over %.1f s, %ld intervals\n", elapsed, st->ticks);
	else
		printf("erg top - %.1f s since attach, sched via %s\n", elapsed, tracker_mode(st->tracker));
	printf("energy: %s\n", energy_describe(st->energy));
	gpu_top_print(st->gpu, summary, elapsed);
	printf("%-24s %7s %10s %9s %12s %7s %6s %9s  %s\n", "MODEL", "PROCS", "CPU_S",
	       summary ? "AVG_W" : "WATTS", "JOULES", "SHARE", "REQS", "J/REQ", "SOURCE");
	for (size_t m = 0; m < st->n_models; m++) {
		const struct model_row *r = &st->models[m];
		double watts = summary ? (elapsed > 0 ? attrib_joules(r->nj) / elapsed : 0)
				       : attrib_joules(r->tick_nj) / dt;

		char reqs[16] = "-", per_req[16] = "-";

		if (st->requests) {
			snprintf(reqs, sizeof(reqs), "%llu", r->requests);
			if (r->requests)
				snprintf(per_req, sizeof(per_req), "%.3f", attrib_joules(r->request_nj) / (double)r->requests);
		}
		printf("%-24s %7u %10.3f %9.2f %12.3f %6.1f%% %6s %9s  %s\n", r->name, r->procs, r->cpu_s, watts,
		       attrib_joules(r->nj), share_pct(r->nj, st->total_nj), reqs, per_req, src);
	}
	printf("%-24s %7s %10s %9s %12.3f %6.1f%%\n", "attributed", "", "", "",
	       attrib_joules(st->attributed_nj), share_pct(st->attributed_nj, st->total_nj));
	printf("%-24s %7s %10s %9s %12.3f %6.1f%%  (idle, untracked work)\n", "unattributed", "", "", "",
	       attrib_joules(st->unattributed_nj), share_pct(st->unattributed_nj, st->total_nj));
	printf("%-24s %7s %10s %9.2f %12.3f %6.1f%%  %s (%s)\n", "total", "", "",
	       summary ? (elapsed > 0 ? attrib_joules(st->total_nj) / elapsed : 0) : attrib_joules(st->tick_total_nj) / dt,
	       attrib_joules(st->total_nj), st->total_nj ? 100.0 : 0.0, src,
	       energy_is_measured(st->energy) ? "measured" : "modelled");
	if (st->ledger) {
		char lines[1024];

		ledger_format_lines(st->ledger, lines, sizeof(lines));
		printf("%s%s", lines, lines[0] && lines[strlen(lines) - 1] != '\n' ? "\n" : "");
	}
	if (!summary)
		printf("\n");
	fflush(stdout);
}

static void print_json(const struct top_state *st, const char *type_total)
{
	double ts = wall_s(), dt = st->tick_s > 0 ? st->tick_s : 1.0;
	const char *src = energy_name(st->energy);

	for (size_t m = 0; m < st->n_models; m++) {
		const struct model_row *r = &st->models[m];
		cJSON *o = cJSON_CreateObject();
		char *line;

		cJSON_AddStringToObject(o, "type", "model");
		cJSON_AddNumberToObject(o, "ts", ts);
		cJSON_AddStringToObject(o, "model", r->name);
		cJSON_AddNumberToObject(o, "workers", r->procs);
		cJSON_AddNumberToObject(o, "cpu_s", r->cpu_s);
		cJSON_AddNumberToObject(o, "joules", attrib_joules(r->nj));
		cJSON_AddNumberToObject(o, "watts", attrib_joules(r->tick_nj) / dt);
		cJSON_AddNumberToObject(o, "share", st->total_nj ? (double)r->nj / (double)st->total_nj : 0.0);
		cJSON_AddStringToObject(o, "source", src);
		cJSON_AddNumberToObject(o, "nj", (double)r->nj);
		if (st->requests) {
			cJSON_AddNumberToObject(o, "requests", (double)r->requests);
			cJSON_AddNumberToObject(o, "requests_active", (double)r->requests_active);
			cJSON_AddNumberToObject(o, "request_joules", attrib_joules(r->request_nj));
			cJSON_AddNumberToObject(o, "nonrequest_joules", attrib_joules(r->nj - r->request_nj));
			cJSON_AddNumberToObject(o, "request_nj", (double)r->request_nj);
		}
		gpu_top_json_model(st->gpu, m, o);
		line = cJSON_PrintUnformatted(o);
		if (line)
			puts(line);
		free(line);
		cJSON_Delete(o);
	}
	cJSON *o = cJSON_CreateObject();
	char *line;

	cJSON_AddStringToObject(o, "type", type_total);
	cJSON_AddNumberToObject(o, "ts", ts);
	cJSON_AddNumberToObject(o, "elapsed_s", st->prev_s - st->start_s);
	cJSON_AddNumberToObject(o, "joules", attrib_joules(st->total_nj));
	cJSON_AddNumberToObject(o, "attributed_j", attrib_joules(st->attributed_nj));
	cJSON_AddNumberToObject(o, "unattributed_j", attrib_joules(st->unattributed_nj));
	/* exact integer form, so a reader can check conservation to the nJ */
	cJSON_AddNumberToObject(o, "total_nj", (double)st->total_nj);
	cJSON_AddNumberToObject(o, "attributed_nj", (double)st->attributed_nj);
	cJSON_AddNumberToObject(o, "unattributed_nj", (double)st->unattributed_nj);
	cJSON_AddNumberToObject(o, "watts", attrib_joules(st->tick_total_nj) / dt);
	cJSON_AddStringToObject(o, "source", src);
	cJSON_AddBoolToObject(o, "measured", energy_is_measured(st->energy));
	cJSON_AddStringToObject(o, "source_detail", energy_describe(st->energy));
	cJSON_AddStringToObject(o, "sched", tracker_mode(st->tracker));
	gpu_top_json_total(st->gpu, o);
	line = cJSON_PrintUnformatted(o);
	if (line)
		puts(line);
	free(line);
	cJSON_Delete(o);
	if (st->ledger) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "type", "ledger");
		cJSON_AddNumberToObject(o, "ts", ts);
		ledger_add_json(st->ledger, o);
		line = cJSON_PrintUnformatted(o);
		if (line)
			puts(line);
		free(line);
		cJSON_Delete(o);
	}
	fflush(stdout);
}

int cmd_top(int argc, char **argv)
{
	struct top_opts o = { 0 };
	struct top_state *st = NULL;
	const char *names[MAX_MODELS];
	struct sigaction sa = { .sa_handler = on_signal };
	char err[768];
	int rc = parse_args(argc, argv, &o);

	if (rc) {
		targets_free(&o.targets);
		return rc == 1 ? 0 : rc;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		fprintf(stderr, "erg top: out of memory\n");
		targets_free(&o.targets);
		return 1;
	}
	st->o = &o;
	st->n_workers = o.targets.n;
	st->n_models = targets_models(&o.targets, names, MAX_MODELS, st->model_of);
	for (size_t m = 0; m < st->n_models; m++)
		st->models[m].name = names[m];

	st->tracker = tracker_open(&o.targets, &o.tracker, err, sizeof(err));
	if (!st->tracker) {
		fprintf(stderr, "erg top: %s\n", err);
		rc = 2;
		goto out;
	}
	if (!o.no_requests) {
		st->requests = requests_new(st->n_workers, o.request_idle_s);
		st->socks = st->requests ? sock_tracker_open(st->tracker, st->requests, err, sizeof(err)) : NULL;
		if (!st->socks) {
			fprintf(stderr, "erg top: per-request joules off: %s\n", st->requests ? err : "out of memory");
			requests_free(st->requests);
			st->requests = NULL;
		}
	}
	if (o.ledger.given) {
		st->ledger = ledger_open(&o.ledger, err, sizeof(err));
		if (!st->ledger) {
			fprintf(stderr, "erg top: %s\n", err);
			rc = 2;
			goto out;
		}
		if (ledger_notice(st->ledger))
			fprintf(stderr, "erg top: %s\n", ledger_notice(st->ledger));
	}
	st->start_s = st->prev_s = monotonic_s();
	if (st->ledger)
		ledger_start(st->ledger, st->start_s);
	st->energy = energy_open(&o.energy, st->start_s, err, sizeof(err));
	if (!st->energy) {
		fprintf(stderr, "erg top: %s\n", err);
		rc = 2;
		goto out;
	}
	if (energy_read(st->energy, st->start_s, &st->prev_sample, err, sizeof(err)) ||
	    tracker_read(st->tracker, st->prev_cpu, NULL)) {
		fprintf(stderr, "erg top: first reading failed: %s\n", err);
		rc = 1;
		goto out;
	}
	st->gpu = gpu_top_open(&o.gpu, st->tracker, st->n_workers, st->model_of, names, st->n_models, &o.tracker,
			       st->start_s, err, sizeof(err));
	if (!st->gpu) {
		fprintf(stderr, "erg top: %s\n", err);
		rc = 2;
		goto out;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!o.json)
		fprintf(stderr, "erg top: attached to %zu target(s), %zu model(s) via %s; energy: %s. Ctrl-C to stop.\n",
			st->n_workers, st->n_models, tracker_mode(st->tracker), energy_describe(st->energy));

	for (double next = st->start_s + o.interval_s; !stop_requested; next += o.interval_s) {
		bool woke = sleep_until(next);
		double now = monotonic_s();

		/* A stop between ticks still closes the partial interval, so the
		 * summary covers everything since attach. */
		if (tick(st, now)) {
			rc = 1;
			break;
		}
		if (!woke)
			break;
		if (o.json)
			print_json(st, "total");
		else
			print_table(st, false);
		if (o.count && st->ticks >= o.count)
			break;
	}
	if (st->ledger && ledger_flush(st->ledger, st->prev_s))
		fprintf(stderr, "erg top: ledger: %s\n", ledger_error(st->ledger));
	if (o.json)
		print_json(st, "summary");
	else
		print_table(st, true);
out:
	energy_close(st->energy);
	sock_tracker_close(st->socks);
	ledger_close(st->ledger);
	requests_free(st->requests);
	gpu_top_close(st->gpu);
	tracker_close(st->tracker);
	targets_free(&o.targets);
	free(st);
	return rc;
}

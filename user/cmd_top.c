/* erg top: attach to running inference workers and print per-model energy
 * live, one table (or NDJSON lines) per interval, a summary at the end. The
 * measuring is measure.h's; this file holds the options, the output and the
 * loop. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "attrib.h"
#include "cli.h"
#include "commands.h"
#include "errbuf.h"
#include "json_u64.h"
#include "measure.h"
#include "model_stats.h"
#include "sock_tracker.h"
#include "top_metrics.h"

#define INTERVAL_MIN_S 0.01
#define INTERVAL_MAX_S 86400.0
#define COUNT_MAX 1000000000LL
#define REQUEST_IDLE_MAX_S 3600.0
#define METRICS_HOST_LEN 256

struct top_opts {
	struct target_set targets;
	struct measure_opts m;
	double interval_s;
	long long count;	/* 0: until a signal */
	bool json;
	bool metrics;			/* --metrics given: serve /metrics */
	char metrics_host[METRICS_HOST_LEN];
	uint16_t metrics_port;		/* 0: a free one */
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
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
"(default 1; 0.01 to 86400, or 500ms, 2m) until stopped or count intervals\n"
"(1 to 1e9), one row per model: processes, CPU seconds, watts over the\n"
"interval, joules since attach, share of the node's energy, and the energy\n"
"source; then attributed + unattributed = total. Options and operands may\n"
"come in any order. Needs root, or CAP_BPF+CAP_PERFMON.\n"
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
MEASURE_ENERGY_OPTIONS_HELP
"      --sysfs-root DIR         read powercap/hwmon under DIR instead of /sys\n"
"      --procfs-root DIR        read processes and /proc/stat under DIR\n"
"\n"
LEDGER_OPTIONS_HELP
"\n"
GPU_TOP_OPTIONS_HELP
"\n"
"Output:\n"
"  -j, --json                   NDJSON: per interval one {\"type\":\"model\"} line per\n"
"                               model and one {\"type\":\"total\"} line; cpu_s and\n"
"                               joules are cumulative since attach, *_nj fields\n"
"                               exact integers\n"
"      --no-requests            do not follow socket traffic (no per-request joules)\n"
"      --request-idle S         a request on a kept-alive connection ends S seconds\n"
"                               after its last byte out if nothing else ends it\n"
"                               (default 2; its window still closes at that byte)\n"
"      --request-paths LIST     comma-separated path prefixes that count as requests\n"
"                               (default /v1/,/completion,/generate; / counts every\n"
"                               HTTP request); others (/health, /metrics) are the\n"
"                               worker's non-request work\n"
"      --socket-hooks H         auto (default: tp_btf, then raw_tp, then syscalls),\n"
"                               tp_btf or raw_tp (sock tracepoints, kernel 6.3+),\n"
"                               syscalls (read/write tracepoints: slows every\n"
"                               syscall on the node; for older kernels)\n"
"      --metrics ADDR:PORT      serve Prometheus /metrics there (127.0.0.1:9100,\n"
"                               [::1]:9100, :9100; port 0 picks a free one, said\n"
"                               on stderr): erg_energy_joules_total{model,source},\n"
"                               the ledger's families, erg_bpf_events_dropped_total,\n"
"                               as erg serve names them\n"
"      --raw-tp                 use the raw_tp programs instead of tp_btf\n"
"  -v, --verbose                print libbpf's log\n"
"  -h, --help                   this text\n"
"\n"
"Signals: SIGINT (Ctrl-C), SIGTERM, SIGHUP and SIGQUIT, at any moment (also\n"
"while the BPF programs load), close the running interval, print the summary\n"
"and detach, exit 0. SIGUSR1 is ignored. A closed output (erg top --json |\n"
"head -1) detaches and exits 0 without a summary.\n"
"\n"
"Data loss is shown, not hidden: the total and summary lines count socket\n"
"events the kernel could not queue (dropped_events: their requests end early)\n"
"and GPU busy-window updates given up under contention (gpu_races).\n"
"\n"
"Attribution: each interval the node's active energy (total minus idle) is\n"
"split among the workers by their share of the node's busy CPU time (Kepler's\n"
"method); idle and untracked work stay unattributed. Each worker's joules are\n"
"split further among its requests by the CPU each used, requests being cut\n"
"from the worker's socket reads and writes, each charged only from its first\n"
"byte in to its last byte out; the rest is non-request work. A completed\n"
"request prints a line (with --json a {\"type\":\"request\"} line: unix start\n"
"and end, method, path, status, sse_events, partial for one under way at\n"
"attach); the table adds J/request mean, SD and p50/p90/p99 per model.\n"
"\n"
"Errors print one line naming the problem and the fix: exit 2 for a bad\n"
"option or target, missing privileges or a BPF load failure, 1 when the\n"
"counters cannot be read while running.\n"
"\n"
"Example: erg top --pid 4242=qwen-7b --comm llama-server=llama-70b 1 10\n");
}

/* ---- options ---- */

enum { OPT_SYSFS = 256, OPT_PROCFS, OPT_RAW, OPT_NO_REQ, OPT_REQ_IDLE, OPT_REQ_PATHS, OPT_SOCK_HOOKS, OPT_METRICS };

static const struct option top_longopts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "comm", required_argument, NULL, 'c' },
	{ "cgroup", required_argument, NULL, 'g' },
	{ "config", required_argument, NULL, 'C' },
	{ "sysfs-root", required_argument, NULL, OPT_SYSFS },
	{ "procfs-root", required_argument, NULL, OPT_PROCFS },
	{ "json", no_argument, NULL, 'j' },
	{ "raw-tp", no_argument, NULL, OPT_RAW },
	{ "no-requests", no_argument, NULL, OPT_NO_REQ },
	{ "request-idle", required_argument, NULL, OPT_REQ_IDLE },
	{ "request-paths", required_argument, NULL, OPT_REQ_PATHS },
	{ "socket-hooks", required_argument, NULL, OPT_SOCK_HOOKS },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	MEASURE_LONG_OPTIONS,
	GPU_TOP_LONG_OPTIONS,
	{ 0 }
};

/* Target options are applied after the others, so --procfs-root counts
 * wherever it stands. */
struct target_arg {
	int opt;
	const char *arg;
};

static int existing_dir(const char *opt, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char q[80];

	if (!path || !*path || stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		errbuf_set(err, errlen, "%s '%s': no such directory (give an existing directory)", opt,
			   cli_quote(path ? path : "", q, sizeof(q)));
		return -1;
	}
	return 0;
}

/* --metrics HOST:PORT; ":0" as the port asks for a free one (tests, scripts). */
static int metrics_address(struct top_opts *o, const char *opt, const char *arg, char *err, size_t errlen)
{
	char spec[METRICS_HOST_LEN + 16];
	size_t len = strlen(arg);
	bool any_port = len >= 2 && len < sizeof(spec) && !strcmp(arg + len - 2, ":0");

	snprintf(spec, sizeof(spec), "%s", arg);
	if (any_port)
		spec[len - 1] = '1';	/* cli_hostport takes 1-65535 */
	if (cli_hostport(opt, spec, o->metrics_host, sizeof(o->metrics_host), &o->metrics_port, err, errlen))
		return -1;
	if (any_port)
		o->metrics_port = 0;
	o->metrics = true;
	return 0;
}

/* --request-paths LIST: checked here, so a bad list is a usage error. */
static int request_paths(struct top_opts *o, const char *arg, char *err, size_t errlen)
{
	char q[80];

	if (!requests_paths_valid(arg)) {
		errbuf_set(err, errlen, MEASURE_REQUEST_PATHS_ERROR, cli_quote(arg, q, sizeof(q)));
		return -1;
	}
	o->m.request_paths = arg;
	return 0;
}

/* One option other than a target; 0, -1 with err set. */
static int apply_option(struct top_opts *o, const struct cli *c, int opt, char *err, size_t errlen)
{
	struct energy_opts *e = &o->m.energy;

	switch (opt) {
	case 'e':
		return measure_set_option(&o->m, "energy-source", optarg, err, errlen);
	case MEASURE_GETOPT_VAL:
	case LEDGER_GETOPT_VAL:
		return measure_set_option(&o->m, top_longopts[c->longindex].name, optarg, err, errlen);
	case OPT_SYSFS:
		e->sysfs_root = optarg;
		return existing_dir(c->name, optarg, err, errlen);
	case OPT_PROCFS:
		e->procfs_root = o->m.tracker.proc_root = optarg;
		return existing_dir(c->name, optarg, err, errlen);
	case OPT_REQ_IDLE:
		return cli_duration(c->name, optarg, 0.001, REQUEST_IDLE_MAX_S, &o->m.request_idle_s, err, errlen);
	case OPT_REQ_PATHS:
		return request_paths(o, optarg, err, errlen);
	case OPT_SOCK_HOOKS:
		return cli_choice(c->name, optarg, sock_hooks_names, &o->m.socket_hooks, err, errlen);
	case OPT_METRICS:
		return metrics_address(o, c->name, optarg, err, errlen);
	case 'j': o->json = true; return 0;
	case OPT_RAW: o->m.tracker.force_raw_tp = true; return 0;
	case OPT_NO_REQ: o->m.no_requests = true; return 0;
	case 'v': o->m.tracker.verbose = true; return 0;
	case GPU_TOP_GETOPT_VAL:
		return gpu_top_set_option(&o->m.gpu, top_longopts[c->longindex].name, optarg, err, errlen);
	}
	errbuf_set(err, errlen, "option %s is not handled (see erg top --help)", c->name);
	return -1;
}

static int add_targets(struct top_opts *o, const struct target_arg *t, size_t n, char *err, size_t errlen)
{
	const char *proc_root = o->m.tracker.proc_root;

	for (size_t i = 0; i < n; i++) {
		int rc = t[i].opt == 'C'
			? targets_load_config(&o->targets, t[i].arg, proc_root, err, errlen)
			: target_add(&o->targets, t[i].opt == 'p' ? TARGET_PID : t[i].opt == 'c' ? TARGET_COMM : TARGET_CGROUP,
				     t[i].arg, proc_root, err, errlen);
		if (rc)
			return -1;
	}
	return 0;
}

/* A [power] section applies where the command line said nothing. */
static void apply_config_power(struct top_opts *o)
{
	struct energy_opts *e = &o->m.energy;

	if (!o->m.energy_source_given && o->targets.have_source)
		e->choice = o->targets.source;
	if (e->model.idle_watts <= 0)
		e->model.idle_watts = o->targets.power.idle_watts;
	if (e->model.watts_per_busy_core <= 0)
		e->model.watts_per_busy_core = o->targets.power.watts_per_busy_core;
}

/* [interval [count]] */
static int parse_operands(struct top_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	char q[80];

	if (optind < argc && cli_duration("interval", argv[optind++], INTERVAL_MIN_S, INTERVAL_MAX_S, &o->interval_s,
					  err, errlen))
		return -1;
	if (optind < argc && cli_long("count", argv[optind++], 1, COUNT_MAX, "intervals", &o->count, err, errlen))
		return -1;
	if (optind < argc) {
		errbuf_set(err, errlen, "unexpected argument '%s' (usage: erg top [OPTIONS] [interval [count]])",
			   cli_quote(argv[optind], q, sizeof(q)));
		return -1;
	}
	return 0;
}

/* 0 to run, 1 after --help, 2 after a usage error (message printed). */
static int parse_args(int argc, char **argv, struct top_opts *o)
{
	struct target_arg *targets = calloc((size_t)argc + 1, sizeof(*targets));
	size_t n_targets = 0;
	struct cli c;
	char err[768];
	int opt, rc = 2;

	o->interval_s = 1.0;
	measure_opts_init(&o->m, "erg top");
	o->m.request_idle_s = 2.0;
	if (!targets)
		return cli_fail(&(struct cli){ .cmd = "erg top" }, "out of memory");
	cli_init(&c, "erg top", "p:c:g:C:e:jvh", top_longopts);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		if (opt == CLI_ERROR)
			goto out;
		if (opt == 'h') {
			usage(stdout);
			rc = 1;
			goto out;
		}
		if (opt == 'p' || opt == 'c' || opt == 'g' || opt == 'C') {
			targets[n_targets++] = (struct target_arg){ opt, optarg };
			continue;
		}
		if (apply_option(o, &c, opt, err, sizeof(err)))
			goto fail;
	}
	if (parse_operands(o, argc, argv, err, sizeof(err)) || add_targets(o, targets, n_targets, err, sizeof(err)) ||
	    measure_opts_check(&o->m, err, sizeof(err)))
		goto fail;
	apply_config_power(o);
	rc = 0;
	if (o->targets.n == 0)
		rc = cli_fail(&c, "nothing to attach to: give --pid, --comm, --cgroup or --config (see erg top --help)");
	goto out;
fail:
	rc = cli_fail(&c, err);
out:
	free(targets);
	return rc;
}

/* ---- output ---- */

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double share_pct(uint64_t part, uint64_t total)
{
	return total ? 100.0 * (double)part / (double)total : 0.0;
}

/* One NDJSON line; frees obj. */
static void emit_json(cJSON *obj)
{
	char *line = cJSON_PrintUnformatted(obj);

	if (line)
		puts(line);
	free(line);
	cJSON_Delete(obj);
}

static void print_model_rows(const struct measure *m, bool summary)
{
	const struct measure_totals *t = measure_totals(m);
	const struct measure_model *models = measure_models(m);
	double dt = t->tick_s > 0 ? t->tick_s : 1.0, elapsed = t->now_s - t->start_s;
	const char *src = energy_name(measure_energy(m));

	printf("%-24s %7s %10s %9s %12s %7s %6s %9s  %s\n", "MODEL", "PROCS", "CPU_S",
	       summary ? "AVG_W" : "WATTS", "JOULES", "SHARE", "REQS", "J/REQ", "SOURCE");
	for (size_t i = 0; i < measure_n_models(m); i++) {
		const struct measure_model *r = &models[i];
		double watts = summary ? (elapsed > 0 ? attrib_joules(r->nj) / elapsed : 0)
				       : attrib_joules(r->tick_nj) / dt;
		char reqs[24] = "-", per_req[24] = "-";

		if (measure_requests_on(m)) {
			snprintf(reqs, sizeof(reqs), "%llu", r->requests);
			if (r->requests)
				snprintf(per_req, sizeof(per_req), "%.3f", attrib_joules(r->request_nj) / (double)r->requests);
		}
		printf("%-24s %7u %10.3f %9.2f %12.3f %6.1f%% %6s %9s  %s\n", r->name, r->procs, r->cpu_s, watts,
		       attrib_joules(r->nj), share_pct(r->nj, t->total_nj), reqs, per_req, src);
	}
}

/* A figure or "-" when there is none (NAN: fewer than two requests). */
static const char *fig(char *buf, size_t len, double x)
{
	if (isnan(x))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.3f", x);
	return buf;
}

/* J/request of each model's complete 2xx requests since attach: moments
 * and quantiles from model_stats' bounded histogram. */
static void print_request_stats(const struct measure *m)
{
	bool header = false;

	for (size_t i = 0; i < measure_n_models(m); i++) {
		struct model_stats_snapshot st;
		const struct model_stats_moments *j = &st.joules_per_request;
		const struct model_stats_histogram *h = &st.request_joules;
		char a[24], b[24], c[24], d[24], e[24];

		if (measure_request_stats(m, i, &st) || !j->n)
			continue;
		if (!header)
			printf("%-24s %7s %10s %9s %9s %9s %9s\n", "J/REQUEST (2xx)", "N", "MEAN", "SD", "P50", "P90",
			       "P99");
		header = true;
		printf("%-24s %7llu %10s %9s %9s %9s %9s\n", measure_models(m)[i].name, (unsigned long long)j->n,
		       fig(a, sizeof(a), j->mean), fig(b, sizeof(b), j->sd), fig(c, sizeof(c), h->p50),
		       fig(d, sizeof(d), h->p90), fig(e, sizeof(e), h->p99));
	}
}

/* The requests completed in the last tick, one line each (at most
 * TEXT_REQUESTS_MAX; --json has them all). A partial request (under way when
 * erg attached) says so: its duration, bytes and CPU count from attach. */
#define TEXT_REQUESTS_MAX 20
static void print_text_requests(const struct measure *m)
{
	size_t n;
	const struct request_info *done = measure_completed(m, &n);

	if (!n)
		return;
	printf("%-8s %-16s %-6s %-22s %6s %15s %10s %9s %9s %6s\n", "REQUEST", "MODEL", "METHOD", "PATH", "STATUS",
	       "START", "DURATION_S", "CPU_S", "JOULES", "SSE");
	for (size_t i = 0; i < n && i < TEXT_REQUESTS_MAX; i++) {
		const struct request_info *r = &done[i];
		const char *mark = r->partial ? ">=" : "";
		char id[24], dur[24], cpu[24], status[8] = "-";

		snprintf(id, sizeof(id), "#%llu", r->id);
		snprintf(dur, sizeof(dur), "%s%.3f", mark, r->end_s - r->start_s);
		snprintf(cpu, sizeof(cpu), "%s%.3f", mark, (double)r->cpu_ns / 1e9);
		if (r->status)
			snprintf(status, sizeof(status), "%d", r->status);
		printf("%-8s %-16.16s %-6s %-22.22s %6s %15.3f %10s %9s %9.3f %6llu%s\n", id,
		       measure_models(m)[measure_workers(m)[r->worker].model].name, r->method[0] ? r->method : "-",
		       r->path[0] ? r->path : "-", status, measure_unix_s(m, r->start_s), dur, cpu,
		       attrib_joules(r->nj), (unsigned long long)r->sse_events,
		       r->partial ? "  partial: started before erg attached" : "");
	}
	if (n > TEXT_REQUESTS_MAX)
		printf("... and %zu more requests this interval (--json lists every one)\n", n - TEXT_REQUESTS_MAX);
}

static void print_table(const struct measure *m, bool summary)
{
	const struct measure_totals *t = measure_totals(m);
	const struct energy_source *en = measure_energy(m);
	double dt = t->tick_s > 0 ? t->tick_s : 1.0, elapsed = t->now_s - t->start_s;

	if (!summary && isatty(STDOUT_FILENO))
		printf("\033[H\033[2J");
	if (summary)
		printf("\nerg top: summary over %.1f s, %ld intervals\n", elapsed, t->ticks);
	else
		printf("erg top - %.1f s since attach, sched via %s, sockets via %s\n", elapsed, measure_sched_mode(m),
		       measure_socket_mode(m));
	printf("energy: %s\n", energy_describe(en));
	gpu_top_print(measure_gpu(m), summary, elapsed);
	print_model_rows(m, summary);
	print_request_stats(m);
	printf("%-24s %7s %10s %9s %12.3f %6.1f%%\n", "attributed", "", "", "",
	       attrib_joules(t->attributed_nj), share_pct(t->attributed_nj, t->total_nj));
	printf("%-24s %7s %10s %9s %12.3f %6.1f%%  (idle, untracked work)\n", "unattributed", "", "", "",
	       attrib_joules(t->unattributed_nj), share_pct(t->unattributed_nj, t->total_nj));
	printf("%-24s %7s %10s %9.2f %12.3f %6.1f%%  %s (%s)\n", "total", "", "",
	       summary ? (elapsed > 0 ? attrib_joules(t->total_nj) / elapsed : 0) : attrib_joules(t->tick_total_nj) / dt,
	       attrib_joules(t->total_nj), t->total_nj ? 100.0 : 0.0, energy_name(en),
	       energy_is_measured(en) ? "measured" : "modelled");
	printf("data loss: %llu socket events dropped (ring buffer full), %llu GPU window races\n",
	       t->dropped_events, t->gpu_races);
	if (measure_ledger(m)) {
		char lines[1024];

		ledger_format_lines(measure_ledger(m), lines, sizeof(lines));
		printf("%s%s", lines, lines[0] && lines[strlen(lines) - 1] != '\n' ? "\n" : "");
	}
	if (!summary)
		print_text_requests(m);
	if (!summary)
		printf("\n");
}

/* Completed requests of the last tick, one line each. */
static void print_json_requests(const struct measure *m)
{
	const char *src = energy_name(measure_energy(m));
	size_t n;
	const struct request_info *done = measure_completed(m, &n);

	for (size_t i = 0; i < n; i++) {
		const struct measure_worker *w = &measure_workers(m)[done[i].worker];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "type", "request");
		cJSON_AddNumberToObject(o, "ts", wall_s());
		cJSON_AddStringToObject(o, "model", measure_models(m)[w->model].name);
		cJSON_AddNumberToObject(o, "id", (double)done[i].id);
		cJSON_AddNumberToObject(o, "pid", done[i].tgid);
		/* unix seconds, to join with the client's or the server's logs */
		cJSON_AddNumberToObject(o, "start", measure_unix_s(m, done[i].start_s));
		cJSON_AddNumberToObject(o, "end", measure_unix_s(m, done[i].end_s));
		cJSON_AddNumberToObject(o, "duration_s", done[i].end_s - done[i].start_s);
		if (done[i].method[0])
			cJSON_AddStringToObject(o, "method", done[i].method);
		else
			cJSON_AddNullToObject(o, "method");
		if (done[i].path[0])
			cJSON_AddStringToObject(o, "path", done[i].path);
		else
			cJSON_AddNullToObject(o, "path");
		if (done[i].status)
			cJSON_AddNumberToObject(o, "status", done[i].status);
		else
			cJSON_AddNullToObject(o, "status");
		cJSON_AddNumberToObject(o, "sse_events", (double)done[i].sse_events);
		/* under way when erg attached: duration, bytes and CPU count from attach */
		cJSON_AddBoolToObject(o, "partial", done[i].partial);
		cJSON_AddNumberToObject(o, "cpu_s", (double)done[i].cpu_ns / 1e9);
		cJSON_AddNumberToObject(o, "bytes_in", (double)done[i].bytes_in);
		cJSON_AddNumberToObject(o, "bytes_out", (double)done[i].bytes_out);
		cJSON_AddNumberToObject(o, "joules", attrib_joules(done[i].nj));
		json_add_u64(o, "nj", done[i].nj);
		cJSON_AddStringToObject(o, "source", src);
		emit_json(o);
	}
}

/* A number, or null where there is none (NAN). */
static void json_num_or_null(cJSON *o, const char *key, double x)
{
	if (isnan(x) || isinf(x))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, x);
}

/* J/request of model i's complete 2xx requests since attach (model_stats:
 * Welford moments, quantiles from a bounded histogram). */
static void json_request_stats(const struct measure *m, size_t i, cJSON *o)
{
	struct model_stats_snapshot st;
	const struct model_stats_histogram *h = &st.request_joules;

	if (measure_request_stats(m, i, &st))
		return;
	cJSON_AddNumberToObject(o, "request_j_n", (double)st.joules_per_request.n);
	json_num_or_null(o, "request_j_mean", st.joules_per_request.n ? st.joules_per_request.mean : NAN);
	json_num_or_null(o, "request_j_sd", st.joules_per_request.sd);
	json_num_or_null(o, "request_j_p50", h->p50);
	json_num_or_null(o, "request_j_p90", h->p90);
	json_num_or_null(o, "request_j_p99", h->p99);
}

static void print_json_models(const struct measure *m, double ts)
{
	const struct measure_totals *t = measure_totals(m);
	double dt = t->tick_s > 0 ? t->tick_s : 1.0;

	for (size_t i = 0; i < measure_n_models(m); i++) {
		const struct measure_model *r = &measure_models(m)[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "type", "model");
		cJSON_AddNumberToObject(o, "ts", ts);
		cJSON_AddStringToObject(o, "model", r->name);
		cJSON_AddNumberToObject(o, "procs", r->procs);
		cJSON_AddNumberToObject(o, "workers", r->procs);	/* old name of procs, for one release */
		cJSON_AddNumberToObject(o, "cpu_s", r->cpu_s);
		cJSON_AddNumberToObject(o, "joules", attrib_joules(r->nj));
		cJSON_AddNumberToObject(o, "watts", attrib_joules(r->tick_nj) / dt);
		cJSON_AddNumberToObject(o, "share", t->total_nj ? (double)r->nj / (double)t->total_nj : 0.0);
		cJSON_AddStringToObject(o, "source", energy_name(measure_energy(m)));
		json_add_u64(o, "nj", r->nj);
		if (measure_requests_on(m)) {
			cJSON_AddNumberToObject(o, "requests", (double)r->requests);
			cJSON_AddNumberToObject(o, "requests_active", (double)r->requests_active);
			cJSON_AddNumberToObject(o, "request_joules", attrib_joules(r->request_nj));
			cJSON_AddNumberToObject(o, "nonrequest_joules", attrib_joules(r->nj - r->request_nj));
			json_add_u64(o, "request_nj", r->request_nj);
			json_request_stats(m, i, o);
		}
		gpu_top_json_model(measure_gpu(m), i, o);
		emit_json(o);
	}
}

static void print_json(const struct measure *m, const char *type_total)
{
	const struct measure_totals *t = measure_totals(m);
	const struct energy_source *en = measure_energy(m);
	double ts = wall_s(), dt = t->tick_s > 0 ? t->tick_s : 1.0;
	cJSON *o;

	print_json_models(m, ts);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", type_total);
	cJSON_AddNumberToObject(o, "ts", ts);
	cJSON_AddNumberToObject(o, "elapsed_s", t->now_s - t->start_s);
	cJSON_AddNumberToObject(o, "joules", attrib_joules(t->total_nj));
	cJSON_AddNumberToObject(o, "attributed_j", attrib_joules(t->attributed_nj));
	cJSON_AddNumberToObject(o, "unattributed_j", attrib_joules(t->unattributed_nj));
	/* exact integers, so a reader can check conservation to the nJ */
	json_add_u64(o, "total_nj", t->total_nj);
	json_add_u64(o, "attributed_nj", t->attributed_nj);
	json_add_u64(o, "unattributed_nj", t->unattributed_nj);
	cJSON_AddNumberToObject(o, "watts", attrib_joules(t->tick_total_nj) / dt);
	cJSON_AddStringToObject(o, "source", energy_name(en));
	cJSON_AddBoolToObject(o, "measured", energy_is_measured(en));
	cJSON_AddStringToObject(o, "source_detail", energy_describe(en));
	cJSON_AddStringToObject(o, "sched", measure_sched_mode(m));
	cJSON_AddStringToObject(o, "sockets", measure_socket_mode(m));
	json_add_u64(o, "dropped_events", t->dropped_events);
	json_add_u64(o, "gpu_races", t->gpu_races);
	gpu_top_json_total(measure_gpu(m), o);
	emit_json(o);
	if (measure_ledger(m)) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "type", "ledger");
		cJSON_AddNumberToObject(o, "ts", ts);
		ledger_add_json(measure_ledger(m), o);
		emit_json(o);
	}
}

/* ---- the loop ---- */

/* Stop on the signals that ask a program to end, with the summary; SIGPIPE
 * is seen as a failed write instead. Installed before anything is loaded, so
 * a signal during the BPF load still ends with a summary and a detach. */
static void install_signals(void)
{
	struct sigaction stop = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	const int stops[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	sigemptyset(&stop.sa_mask);
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaction(stops[i], &stop, NULL);
	sigaction(SIGUSR1, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
}

/* Flush stdout; false when the reader went away (EPIPE) or it failed. */
static bool output_ok(int *write_errno)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return true;
	*write_errno = errno;
	return false;
}

/* Ticks until count, a signal, or a closed output. 0, or 1 on a failure. */
static int run_loop(struct measure *m, struct top_metrics *tm, const struct top_opts *o, int *write_errno)
{
	const struct measure_totals *t = measure_totals(m);
	char err[768];

	for (double next = t->start_s + o->interval_s; !stop_requested; next += o->interval_s) {
		bool woke = measure_wait(m, next, &stop_requested);

		/* A stop between ticks still closes the partial interval, so the
		 * summary covers everything since attach. */
		if (top_metrics_tick(tm, m, measure_now(), err, sizeof(err))) {
			fprintf(stderr, "erg top: %s\n", err);
			return 1;
		}
		if (o->json)
			print_json_requests(m);
		else if (!woke)
			print_text_requests(m);	/* the summary table follows */
		if (!woke)
			break;
		if (o->json)
			print_json(m, "total");
		else
			print_table(m, false);
		if (!output_ok(write_errno))
			return 0;
		if (o->count && t->ticks >= o->count)
			break;
	}
	return 0;
}

/* --metrics: listen before the BPF load, so a port in use fails at once. */
static int start_metrics(const struct top_opts *o, struct top_metrics **tm)
{
	char err[768];
	const char *why = err;

	*tm = NULL;
	if (!o->metrics)
		return 0;
	*tm = top_metrics_start(o->metrics_host, o->metrics_port, err, sizeof(err));
	if (!*tm) {
		if (!strncmp(why, "metrics: ", 9))
			why += 9;
		fprintf(stderr, "erg top: --metrics: %s\n", why);
		return 2;
	}
	fprintf(stderr, "erg top: metrics on http://%s%s%s:%u/metrics\n", strchr(o->metrics_host, ':') ? "[" : "",
		o->metrics_host, strchr(o->metrics_host, ':') ? "]" : "", top_metrics_port(*tm));
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct top_opts o = { 0 };
	struct top_metrics *tm;
	struct measure *m;
	char err[768];
	int rc, write_errno = 0;

	/* before parsing: nothing between here and the summary may die of a
	 * signal (the parse can take long on a big --config) */
	install_signals();
	rc = parse_args(argc, argv, &o);
	if (!rc)
		rc = start_metrics(&o, &tm);
	if (rc) {
		targets_free(&o.targets);
		return rc == 1 ? 0 : rc;
	}
	m = measure_open(&o.targets, &o.m, &rc, err, sizeof(err));
	if (!m) {
		fprintf(stderr, "erg top: %s\n", err);
		top_metrics_stop(tm);
		targets_free(&o.targets);
		return rc;
	}
	top_metrics_attach(tm, m);
	if (!o.json)
		fprintf(stderr, "erg top: attached to %zu target(s), %zu model(s) via %s, sockets via %s; energy: %s. Ctrl-C to stop.\n",
			measure_n_workers(m), measure_n_models(m), measure_sched_mode(m), measure_socket_mode(m),
			energy_describe(measure_energy(m)));
	rc = run_loop(m, tm, &o, &write_errno);
	top_metrics_finish(tm, m);
	if (!write_errno) {
		if (o.json)
			print_json(m, "summary");
		else
			print_table(m, true);
		output_ok(&write_errno);
	}
	if (write_errno && write_errno != EPIPE) {
		fprintf(stderr, "erg top: cannot write the output: %s\n", strerror(write_errno));
		rc = 1;
	}
	/* the listener reads m: it stops first */
	top_metrics_stop(tm);
	measure_close(m);
	targets_free(&o.targets);
	return rc;
}

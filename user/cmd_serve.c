/* erg serve: the io_uring proxy (serve/proxy.h) in front of the model
 * workers, plus erg top's measuring pipeline (measure.h) on the same
 * workers: each tick every worker's joules are split among the requests the
 * proxy had in flight on it (serve/request_energy.h), completed requests go
 * to the per-model statistics (serve/model_stats.h), the live view, the
 * NDJSON output and the request log. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "attrib.h"
#include "cli.h"
#include "commands.h"
#include "errbuf.h"
#include "json_u64.h"
#include "gpu_top.h"
#include "measure.h"
#include "model_stats.h"
#include "prom.h"
#include "proxy.h"
#include "request_energy.h"
#include "router.h"
#include "serve_config.h"

#define INTERVAL_MIN_S 0.01
#define INTERVAL_MAX_S 86400.0
#define COUNT_MAX 1000000000LL
#define NOFILE_WANTED 65536
#define DRAIN_MAX_S 5.0			/* requests under way get this long after a stop signal */

struct serve_opts {
	const char *config;
	const char *listen;
	long long threads;
	double max_body;
	double client_timeout_s;
	double worker_connect_timeout_s;
	double worker_timeout_s;
	double health_interval_s;
	bool json;
	const char *log;
	bool no_energy;
	enum router_policy policy;
	bool policy_given;
	struct measure_opts m;
	double interval_s;
	long long count;
};

/* What the hooks (proxy threads), the tick (main thread) and /metrics share. */
struct serve {
	struct serve_opts o;
	struct serve_config cfg;
	struct proxy *proxy;
	struct measure *m;		/* NULL: energy is not measured */
	struct target_set targets;
	int target_of[SERVE_MAX_WORKERS];	/* measure worker of each serve worker, -1 none */
	struct request_energy *re;
	struct model_stats *ms;
	struct router *router;		/* "model": "auto"; NULL: no steering options */
	FILE *log;
	pthread_mutex_t lock;		/* guards the fields below */
	struct request_record *local;	/* requests erg answered itself, not yet output */
	size_t n_local, cap_local;
	double worker_jpr[SERVE_MAX_WORKERS];	/* mean J/request (2xx), NAN until one */
	uint64_t worker_ok[SERVE_MAX_WORKERS];
	uint64_t model_nj[SERVE_MAX_MODELS];	/* attributed since start */
	uint64_t model_gpu_nj[SERVE_MAX_MODELS];	/* the GPU part of model_nj */
	bool gpu_active;	/* the GPU part counts: /metrics shows source="gpu" */
	uint64_t *retried;		/* ids of tries that failed and were retried */
	size_t n_retried, cap_retried;
	struct prom_ledger ledger;	/* for /metrics, copied each tick */
	bool have_ledger;
	uint64_t dropped_events;
	double start_s;			/* CLOCK_MONOTONIC when serving began */
	char listen_host[SERVE_HOST_LEN];	/* where clients connect */
	uint64_t shown_nj[SERVE_MAX_MODELS];	/* model_nj at the last view */
};

static volatile sig_atomic_t stop_requested;	/* signals received (the second ends the drain) */

static void on_stop_signal(int sig)
{
	(void)sig;
	if (stop_requested < 2)
		stop_requested++;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: erg serve --config serve.ini [--listen ADDR:PORT] [--threads N] [--json]\n"
"                 [--log FILE] [ledger options] [interval [count]]\n"
"\n"
"An OpenAI-compatible HTTP/1.1 proxy in front of running model workers, on\n"
"io_uring, measuring the energy of every request it forwards.\n"
"\n"
"  -C, --config FILE        serve.ini: [serve] listen =, [model NAME] with\n"
"                           params = or joules_per_token =, and worker = HOST:PORT\n"
"                           [pid=N] lines (the pid is found from the listening\n"
"                           socket when not given)\n"
"  -l, --listen ADDR:PORT   where clients connect (default: [serve] listen, else\n"
"                           127.0.0.1:8080; port 0 picks a free one)\n"
"  -t, --threads N          proxy threads, one io_uring each (default: one per CPU)\n"
"      --max-body BYTES     request body limit (default 1048576; larger: 413)\n"
"      --client-timeout S   a whole request must arrive within S, and idle\n"
"                           keep-alive connections close after S (default 30)\n"
"      --worker-connect-timeout S  a worker must take the connection within S, else\n"
"                           another worker is tried, then 504 (default 5)\n"
"      --worker-timeout S   a worker silent for S (before its first byte or inside\n"
"                           a stream): 504, or the stream is cut (default 300)\n"
"      --health-interval S  connect to every worker each S (default 1)\n"
"  -j, --json               NDJSON: per interval one {\"type\":\"model\"} line per\n"
"                           model and a {\"type\":\"total\"} line, and one\n"
"                           {\"type\":\"request\"} line per request\n"
"      --log FILE           append one {\"type\":\"request\"} line per request to FILE\n"
"      --no-energy          do not attach BPF (requests are served and counted, no joules)\n"
"      --policy P           how \"model\": \"auto\" requests are steered among the\n"
"                           config's (model, budget) options that meet its\n"
"                           accuracy target: energy (default: the mean-only mix,\n"
"                           least joules), variance (the variance-aware mix plus\n"
"                           the ledger feedback of erg sim's dynamic policy), rr\n"
"                           (options meeting the target alone, in turn), least\n"
"                           (of those, the model with the fewest auto requests\n"
"                           outstanding)\n"
"      --variance-aware     the same as --policy variance\n"
"      --energy-source S    auto | rapl | hwmon | model (as erg top)\n"
"      --idle-watts W, --watts-per-core W   the power model, as erg top\n"
"      --supply-watts W, --supply-trace CSV, --storage-joules C, --slot S,\n"
"      --journal FILE, --no-fsync   the supply ledger, as erg top\n"
"  interval [count]         seconds between views (default 1), how many (default: until Ctrl-C)\n"
"\n"
"Endpoints: POST /v1/chat/completions and /v1/completions (routed by the body's\n"
"\"model\" to the worker with the fewest outstanding requests), GET /v1/models,\n"
"GET /healthz, GET /metrics. Every response carries x-erg-request-id,\n"
"x-erg-model and x-erg-worker.\n"
"\n"
"\"model\": \"auto\" (when serve.ini has the steering sections [scaling],\n"
"[workload] budgets and accuracy_target, [cost]; else 404): erg picks the model\n"
"and budget by --policy, rewrites the body's \"model\" and max_tokens (or\n"
"max_completion_tokens where the client used it), and answers with\n"
"x-erg-model and x-erg-budget. A request naming a model is never re-modelled.\n"
"A [pool NAME] section (models = A B) steers \"model\": \"NAME\" the same way\n"
"among those models only. No option meeting the accuracy target: 503.\n"
"\n"
"Example: erg serve --config serve.ini --listen 127.0.0.1:8080 1\n");
}

/* ---- options ---- */

enum { OPT_MAX_BODY = 256, OPT_CLIENT_TIMEOUT, OPT_WORKER_CONNECT_TIMEOUT, OPT_WORKER_TIMEOUT, OPT_HEALTH, OPT_LOG, OPT_NO_ENERGY,
       OPT_POLICY, OPT_VARIANCE_AWARE };

static const struct option serve_longopts[] = {
	{ "config", required_argument, NULL, 'C' },
	{ "listen", required_argument, NULL, 'l' },
	{ "threads", required_argument, NULL, 't' },
	{ "max-body", required_argument, NULL, OPT_MAX_BODY },
	{ "client-timeout", required_argument, NULL, OPT_CLIENT_TIMEOUT },
	{ "worker-connect-timeout", required_argument, NULL, OPT_WORKER_CONNECT_TIMEOUT },
	{ "worker-timeout", required_argument, NULL, OPT_WORKER_TIMEOUT },
	{ "health-interval", required_argument, NULL, OPT_HEALTH },
	{ "json", no_argument, NULL, 'j' },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "no-energy", no_argument, NULL, OPT_NO_ENERGY },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "variance-aware", no_argument, NULL, OPT_VARIANCE_AWARE },
	{ "help", no_argument, NULL, 'h' },
	MEASURE_LONG_OPTIONS,
	{ 0 }
};

static int apply_option(struct serve_opts *o, const struct cli *c, int opt, char *err, size_t errlen)
{
	switch (opt) {
	case 'C': o->config = optarg; return 0;
	case 'l': o->listen = optarg; return 0;
	case 't': return cli_long(c->name, optarg, 1, 1024, "threads", &o->threads, err, errlen);
	case OPT_MAX_BODY:
		return cli_double(c->name, optarg, 0, 1 << 30, "bytes", &o->max_body, err, errlen);
	case OPT_CLIENT_TIMEOUT:
		return cli_duration(c->name, optarg, 0.05, 86400, &o->client_timeout_s, err, errlen);
	case OPT_WORKER_CONNECT_TIMEOUT:
		return cli_duration(c->name, optarg, 0.05, 3600, &o->worker_connect_timeout_s, err, errlen);
	case OPT_WORKER_TIMEOUT:
		return cli_duration(c->name, optarg, 0.05, 86400, &o->worker_timeout_s, err, errlen);
	case OPT_HEALTH:
		return cli_duration(c->name, optarg, 0.05, 3600, &o->health_interval_s, err, errlen);
	case 'j': o->json = true; return 0;
	case OPT_LOG: o->log = optarg; return 0;
	case OPT_NO_ENERGY: o->no_energy = true; return 0;
	case OPT_POLICY: {
		char q[80];

		if (router_policy_parse(optarg, &o->policy)) {
			errbuf_set(err, errlen, "--policy '%s' is not a policy: use energy, variance, rr or least",
				   cli_quote(optarg, q, sizeof(q)));
			return -1;
		}
		o->policy_given = true;
		return 0;
	}
	case OPT_VARIANCE_AWARE: o->policy = ROUTER_VARIANCE; o->policy_given = true; return 0;
	case MEASURE_GETOPT_VAL:
	case LEDGER_GETOPT_VAL:
		return measure_set_option(&o->m, serve_longopts[c->longindex].name, optarg, err, errlen);
	}
	errbuf_set(err, errlen, "option %s is not handled (see erg serve --help)", c->name);
	return -1;
}

/* 0 to run, 1 after --help, 2 after a usage error (message printed). */
static int parse_args(int argc, char **argv, struct serve_opts *o)
{
	struct cli c;
	char err[768], q[80];
	int opt;

	o->interval_s = 1.0;
	o->policy = ROUTER_ENERGY;
	measure_opts_init(&o->m, "erg serve");
	o->m.no_requests = true;	/* the proxy knows the requests exactly */
	cli_init(&c, "erg serve", "C:l:t:jh", serve_longopts);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		if (opt == CLI_ERROR)
			return 2;
		if (opt == 'h') {
			usage(stdout);
			return 1;
		}
		if (apply_option(o, &c, opt, err, sizeof(err)))
			return cli_fail(&c, err);
	}
	if (optind < argc && cli_duration("interval", argv[optind++], INTERVAL_MIN_S, INTERVAL_MAX_S,
					  &o->interval_s, err, sizeof(err)))
		return cli_fail(&c, err);
	if (optind < argc && cli_long("count", argv[optind++], 1, COUNT_MAX, "intervals", &o->count,
				      err, sizeof(err)))
		return cli_fail(&c, err);
	if (optind < argc) {
		snprintf(err, sizeof(err), "unexpected argument '%s' (usage: erg serve [OPTIONS] [interval [count]])",
			 cli_quote(argv[optind], q, sizeof(q)));
		return cli_fail(&c, err);
	}
	if (measure_opts_check(&o->m, err, sizeof(err)))
		return cli_fail(&c, err);
	if (!o->config)
		return cli_fail(&c, "no --config serve.ini given (see erg serve --help)");
	return 0;
}

/* ---- the proxy's hooks ---- */

static uint64_t hook_start(void *ud, const struct proxy_request *r)
{
	struct serve *s = ud;
	uint64_t id = request_energy_begin(s->re, (unsigned)r->worker, (unsigned)r->model, measure_now());

	if (id && r->steered && s->router)	/* its joules go to the option's estimate */
		router_track(s->router, id, r->option);
	return id;
}

static void hook_data(void *ud, const struct proxy_request *r, uint64_t bytes, uint64_t events)
{
	struct serve *s = ud;

	if (r->worker >= 0 && r->id && !(r->id & PROXY_OWN_ID_BIT))
		request_energy_progress(s->re, r->id, bytes, events);
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A failed try has its own request line (its joules are its own) but is
 * not a request of the model's statistics: the retry is. */
static void remember_retried(struct serve *s, uint64_t id)
{
	pthread_mutex_lock(&s->lock);
	if (s->n_retried == s->cap_retried) {
		size_t cap = s->cap_retried ? s->cap_retried * 2 : 16;
		uint64_t *n = realloc(s->retried, cap * sizeof(*n));

		if (n) {
			s->retried = n;
			s->cap_retried = cap;
		}
	}
	if (s->n_retried < s->cap_retried)
		s->retried[s->n_retried++] = id;
	pthread_mutex_unlock(&s->lock);
}

static bool take_retried(struct serve *s, uint64_t id)
{
	bool found = false;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_retried && !found; i++)
		if (s->retried[i] == id) {
			s->retried[i] = s->retried[--s->n_retried];
			found = true;
		}
	pthread_mutex_unlock(&s->lock);
	return found;
}

static void hook_end(void *ud, const struct proxy_request *r)
{
	struct serve *s = ud;
	double latency = r->end_s - r->start_s, ttfb = r->first_byte_s > 0 ? r->first_byte_s - r->start_s : 0;

	if (r->worker >= 0 && r->id && !(r->id & PROXY_OWN_ID_BIT)) {
		/* a response the worker broke off (the client got its 2xx head
		 * and a cut stream) is logged and counted as the 502 it is */
		int status = r->broken && r->status / 100 == 2 ? 502 : r->status;

		if (r->retried)
			remember_retried(s, r->id);
		request_energy_end(s->re, r->id, r->end_s, status, r->bytes_in, r->bytes_out, ttfb, latency);
		return;
	}
	/* answered by erg: no worker, no joules, but a line and a count */
	pthread_mutex_lock(&s->lock);
	if (s->n_local == s->cap_local) {
		size_t cap = s->cap_local ? s->cap_local * 2 : 64;
		struct request_record *n = realloc(s->local, cap * sizeof(*n));

		if (n) {
			s->local = n;
			s->cap_local = cap;
		}
	}
	if (s->n_local < s->cap_local) {
		double now = wall_s(), mono = measure_now();

		s->local[s->n_local++] = (struct request_record){
			.id = r->id, .model = r->model >= 0 ? (unsigned)r->model : (unsigned)-1,
			.worker = (unsigned)-1, .start_s = now - (mono - r->start_s), .end_s = now - (mono - r->end_s),
			.status = r->status, .bytes_in = r->bytes_in, .bytes_out = r->bytes_out,
			.latency_s = latency,
		};
	}
	pthread_mutex_unlock(&s->lock);
}

static double hook_jpr(void *ud, size_t worker)
{
	struct serve *s = ud;
	double j;

	pthread_mutex_lock(&s->lock);
	j = s->worker_jpr[worker];
	pthread_mutex_unlock(&s->lock);
	return j;
}

/* "auto", or the pool's name: the router's group gi. */
static const char *group_name(const struct serve *s, int gi)
{
	return gi <= 0 || (size_t)gi > s->cfg.n_pools ? "auto" : s->cfg.pools[gi - 1].name;
}

static const char *infeasible_why(enum router_policy p)
{
	return p == ROUTER_RR || p == ROUTER_LEAST
		       ? "no (model, budget) option meets the accuracy target on its own"
		       : "no mix of its (model, budget) options meets the accuracy target";
}

static size_t hook_metrics(void *ud, char *buf, size_t cap)
{
	struct serve *s = ud;
	struct prom_model models[SERVE_MAX_MODELS];
	struct model_stats_snapshot snaps[SERVE_MAX_MODELS];
	struct prom_worker workers[SERVE_MAX_WORKERS];
	struct prom_buf b;
	struct prom_erg in = { .models = models, .n_models = s->cfg.n_models, .workers = workers,
			       .n_workers = s->cfg.n_workers };
	size_t len;

	struct prom_ledger ledger;

	pthread_mutex_lock(&s->lock);
	ledger = s->ledger;
	in.ledger = s->have_ledger ? &ledger : NULL;
	in.have_dropped = s->m != NULL;
	in.bpf_events_dropped = s->dropped_events;
	for (size_t i = 0; i < s->cfg.n_models; i++) {
		/* worker joules include their GPU joules: cpu + gpu = the model's */
		uint64_t gpu = s->model_gpu_nj[i] < s->model_nj[i] ? s->model_gpu_nj[i] : s->model_nj[i];

		models[i] = (struct prom_model){ .name = s->cfg.models[i].name,
						 .cpu_joules = attrib_joules(s->model_nj[i] - gpu),
						 .gpu_joules = s->gpu_active ? attrib_joules(gpu) : NAN };
		if (!model_stats_snapshot(s->ms, i, &snaps[i]))
			models[i].stats = &snaps[i];
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t w = 0; w < s->cfg.n_workers; w++)
		workers[w] = (struct prom_worker){ .model = s->cfg.models[s->cfg.workers[w].model].name,
						   .worker = s->cfg.workers[w].name,
						   .up = proxy_worker_up(s->proxy, w) };
	struct prom_route_group groups[ROUTER_MAX_GROUPS];
	struct prom_route *routes = s->router ? calloc((size_t)SCEN_MAX_OPTIONS * ROUTER_MAX_GROUPS,
							sizeof(*routes)) : NULL;
	struct prom_steering steering = { .routes = routes, .groups = groups };
	for (int gi = 0; routes && gi < router_groups(s->router); gi++) {
		struct router_view v;

		router_view(s->router, gi, &v);
		for (int i = 0; i < v.n_opts; i++) {
			struct router_option_view ov;

			if (router_option_view(s->router, gi, i, &ov))
				continue;
			routes[steering.n_routes++] = (struct prom_route){
				.pool = group_name(s, gi), .model = s->cfg.models[ov.model].name,
				.budget = ov.budget, .share = ov.share, .weight = ov.weight, .routed = ov.routed,
				.joules_per_request = ov.j_mean };
		}
		groups[steering.n_groups++] = (struct prom_route_group){
			.pool = group_name(s, gi), .expected_accuracy = v.expected_accuracy,
			.refused = v.refused, .feasible = v.feasible };
		steering.accuracy_target = v.acc_target;
	}
	prom_buf_init(&b);
	prom_render_erg(&b, &in);
	if (routes)
		prom_render_steering(&b, &steering);
	free(routes);
	len = b.len;
	memcpy(buf, b.data ? b.data : "", len < cap ? len : cap);
	prom_buf_free(&b);
	return len;
}

/* ---- set-up ---- */

/* Every connection is a file descriptor: take what the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < NOFILE_WANTED)
		fprintf(stderr, "erg serve: open files limited to %llu (ulimit -Hn): at most about %llu "
			"connections; raise the hard limit for more\n", (unsigned long long)rl.rlim_cur,
			(unsigned long long)rl.rlim_cur / 2);
}

/* Attach the measuring pipeline to the workers whose pid is known. */
static void open_energy(struct serve *s)
{
	char err[768], spec[SERVE_NAME_LEN + 16];
	int status;
	size_t missing = serve_config_find_pids(&s->cfg, NULL);

	for (size_t w = 0; w < SERVE_MAX_WORKERS; w++)
		s->target_of[w] = -1;
	if (missing)
		fprintf(stderr, "erg serve: %zu worker(s) without a pid (not listening yet, or give pid=): "
			"their energy is not measured\n", missing);
	if (s->o.no_energy)
		return;
	for (size_t w = 0; w < s->cfg.n_workers; w++) {
		const struct serve_worker *sw = &s->cfg.workers[w];

		if (!sw->pid)
			continue;
		fprintf(stderr, "erg serve: worker %s (%s): pid %d%s\n", sw->name, s->cfg.models[sw->model].name,
			sw->pid, sw->pid_given ? "" : ", from its listening socket");
		snprintf(spec, sizeof(spec), "%d=%s", sw->pid, s->cfg.models[sw->model].name);
		if (target_add(&s->targets, TARGET_PID, spec, NULL, err, sizeof(err))) {
			fprintf(stderr, "erg serve: worker %s: %s\n", sw->name, err);
			continue;
		}
		s->target_of[w] = (int)s->targets.n - 1;
	}
	if (!s->targets.n)
		return;
	s->m = measure_open(&s->targets, &s->o.m, &status, err, sizeof(err));
	if (!s->m)
		fprintf(stderr, "erg serve: energy is not measured: %s\n", err);
}

static int start_proxy(struct serve *s)
{
	struct proxy_options po = {
		.cfg = &s->cfg,
		.listen_host = "127.0.0.1",
		.listen_port = 8080,
		.threads = (unsigned)s->o.threads,
		.max_body = (uint64_t)s->o.max_body,
		.client_timeout_s = s->o.client_timeout_s,
		.worker_connect_timeout_s = s->o.worker_connect_timeout_s,
		.worker_timeout_s = s->o.worker_timeout_s,
		.health_interval_s = s->o.health_interval_s,
		.hooks = { .ud = s, .request_start = hook_start, .request_data = hook_data,
			   .request_end = hook_end, .worker_joules_per_request = hook_jpr,
			   .render_metrics = hook_metrics },
		.router = s->router,
	};
	char err[512], host[SERVE_HOST_LEN];
	uint16_t port;

	if (s->o.listen) {
		char spec[SERVE_HOST_LEN + 16];
		size_t len = strlen(s->o.listen);
		bool any_port = len > 2 && len < sizeof(spec) && !strcmp(s->o.listen + len - 2, ":0");

		/* port 0 (any free port, said on stderr) is for tests and scripts */
		snprintf(spec, sizeof(spec), "%s", s->o.listen);
		if (any_port)
			spec[len - 1] = '1';
		if (cli_hostport("--listen", spec, host, sizeof(host), &port, err, sizeof(err))) {
			fprintf(stderr, "erg serve: %s\n", err);
			return 2;
		}
		po.listen_host = host;
		po.listen_port = any_port ? 0 : port;
	} else if (s->cfg.have_listen) {
		po.listen_host = s->cfg.listen_host;
		po.listen_port = s->cfg.listen_port;
	}
	s->proxy = proxy_start(&po, err, sizeof(err));
	if (!s->proxy) {
		fprintf(stderr, "erg serve: %s\n", err);
		return 2;
	}
	snprintf(s->listen_host, sizeof(s->listen_host), "%s", po.listen_host);
	fprintf(stderr, "erg serve: listening on %s:%u (%u threads), %zu models, %zu workers\n",
		po.listen_host, proxy_port(s->proxy), proxy_threads(s->proxy), s->cfg.n_models,
		s->cfg.n_workers);
	return 0;
}

/* ---- each tick ---- */

/* budget: the max_tokens erg set for an "auto" request, 0 for others. */
static void request_line(struct serve *s, const struct request_record *r, bool retried, unsigned budget)
{
	cJSON *o;
	char id[32], *line;

	if (!s->o.json && !s->log)
		return;	/* nobody reads it: at 10,000 requests/s building it costs a core's tens of ms per tick */
	o = cJSON_CreateObject();
	if (!o)
		return;
	if (r->id & PROXY_OWN_ID_BIT)
		snprintf(id, sizeof(id), "e%llu", (unsigned long long)(r->id & ~PROXY_OWN_ID_BIT));
	else
		snprintf(id, sizeof(id), "%llu", (unsigned long long)r->id);
	cJSON_AddStringToObject(o, "type", "request");
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "model", r->model < s->cfg.n_models ? s->cfg.models[r->model].name : "");
	cJSON_AddStringToObject(o, "worker", r->worker < s->cfg.n_workers ? s->cfg.workers[r->worker].name : "");
	cJSON_AddNumberToObject(o, "start", r->start_s);
	cJSON_AddNumberToObject(o, "end", r->end_s);
	cJSON_AddNumberToObject(o, "status", r->status);
	cJSON_AddNumberToObject(o, "bytes_in", (double)r->bytes_in);
	cJSON_AddNumberToObject(o, "bytes_out", (double)r->bytes_out);
	cJSON_AddNumberToObject(o, "sse_events", (double)r->sse_events);
	cJSON_AddNumberToObject(o, "joules", attrib_joules(r->nj));
	cJSON_AddNumberToObject(o, "nj", (double)r->nj);
	cJSON_AddNumberToObject(o, "latency_s", r->latency_s);
	cJSON_AddNumberToObject(o, "ttfb_s", r->ttfb_s);
	if (retried)
		cJSON_AddBoolToObject(o, "retried", true);
	if (budget) {
		cJSON_AddBoolToObject(o, "auto", true);
		cJSON_AddNumberToObject(o, "budget", budget);
	}
	line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!line)
		return;
	if (s->o.json)
		puts(line);
	if (s->log) {
		fputs(line, s->log);
		fputc('\n', s->log);
	}
	free(line);
}

static void complete_one(struct serve *s, const struct request_record *r)
{
	bool retried = !(r->id & PROXY_OWN_ID_BIT) && take_retried(s, r->id);
	int option = s->router && !(r->id & PROXY_OWN_ID_BIT) ? router_take(s->router, r->id) : -1;
	unsigned budget = 0;

	if (option >= 0) {
		struct router_option_view ov;

		/* a whole answer's joules (a failed try's are not a request's) */
		if (!retried && r->status >= 200 && r->status < 300)
			router_measured(s->router, option, attrib_joules(r->nj));
		if (!router_option_view(s->router, 0, option, &ov))	/* "auto" has every option */
			budget = ov.budget;
	}

	if (r->model < s->cfg.n_models && !retried)
		model_stats_add(s->ms, r);
	if (r->worker < s->cfg.n_workers && r->status >= 200 && r->status < 300) {
		pthread_mutex_lock(&s->lock);
		uint64_t n = ++s->worker_ok[r->worker];
		double j = attrib_joules(r->nj), prev = s->worker_jpr[r->worker];

		s->worker_jpr[r->worker] = n == 1 ? j : prev + (j - prev) / (double)n;
		pthread_mutex_unlock(&s->lock);
	}
	request_line(s, r, retried, budget);
}

/* The optimiser re-runs with the new estimates and the ledger's supply per
 * (scenario) slot and storage, here, off the requests' path. Without a
 * supply the dynamic policy spends the critical supply b*. */
static void steer_tick(struct serve *s, double now)
{
	const struct ledger *l = s->m ? measure_ledger(s->m) : NULL;
	struct router_ledger in = { .now_s = now, .slot_start_s = NAN };

	if (!s->router)
		return;
	if (l) {
		if (s->o.m.ledger.supply_given)
			in.supply_per_slot = ledger_supply_watts(l) * s->cfg.scenario.slot_seconds;
		in.storage = ledger_storage(l);
		in.storage_capacity = s->o.m.ledger.storage_joules;
		in.slot_start_s = ledger_slot_start(l);
	}
	router_slot(s->router, &in);
}

/* Split the tick's joules among the requests, and output those completed. */
static int tick(struct serve *s, double now)
{
	uint64_t worker_nj[SERVE_MAX_WORKERS] = { 0 }, worker_gpu_nj[SERVE_MAX_WORKERS] = { 0 };
	struct request_record done[256];
	char err[512];
	size_t n;

	if (s->m) {
		if (measure_tick(s->m, now, err, sizeof(err))) {
			fprintf(stderr, "erg serve: %s\n", err);
			return 1;
		}
		for (size_t w = 0; w < s->cfg.n_workers; w++)
			if (s->target_of[w] >= 0) {
				worker_nj[w] = measure_workers(s->m)[s->target_of[w]].tick_nj;
				worker_gpu_nj[w] = gpu_top_worker_tick_nj(measure_gpu(s->m),
									  (size_t)s->target_of[w]);
			}
	}
	pthread_mutex_lock(&s->lock);
	for (size_t w = 0; w < s->cfg.n_workers; w++) {
		s->model_nj[s->cfg.workers[w].model] += worker_nj[w];
		s->model_gpu_nj[s->cfg.workers[w].model] += worker_gpu_nj[w];
	}
	if (s->m && gpu_top_active(measure_gpu(s->m)))
		s->gpu_active = true;
	if (s->m && measure_ledger(s->m)) {
		const struct ledger *l = measure_ledger(s->m);
		const struct ledger_stats *ls = ledger_stats(l);

		s->ledger = (struct prom_ledger){ .demand_joules = ls->total_demand,
			.supply_joules = ls->total_supply, .aux_joules = ls->total_aux,
			.waste_joules = ls->total_waste, .storage_joules = ledger_storage(l),
			.regime = ls->regime };
		s->have_ledger = true;
	}
	if (s->m)
		s->dropped_events = measure_totals(s->m)->dropped_events;
	pthread_mutex_unlock(&s->lock);
	request_energy_tick(s->re, now, worker_nj, NULL, NULL);
	while ((n = request_energy_take_completed(s->re, done, 256)))
		for (size_t i = 0; i < n; i++)
			complete_one(s, &done[i]);
	steer_tick(s, now);
	for (;;) {
		pthread_mutex_lock(&s->lock);
		n = s->n_local < 256 ? s->n_local : 256;
		if (n) {
			memcpy(done, s->local, n * sizeof(*done));
			memmove(s->local, s->local + n, (s->n_local - n) * sizeof(*done));
			s->n_local -= n;
		}
		pthread_mutex_unlock(&s->lock);
		if (!n)
			break;
		for (size_t i = 0; i < n; i++)
			complete_one(s, &done[i]);
	}
	if (s->log)
		fflush(s->log);
	return 0;
}

/* ---- output ---- */

/* Options shown: those in the mix or routed to; the rest would be noise. */
static bool option_shown(const struct router_option_view *ov)
{
	return ov->weight > 0.0 || ov->routed > 0;
}

static void print_steering(struct serve *s)
{
	for (int gi = 0; s->router && gi < router_groups(s->router); gi++) {
		struct router_view v;

		router_view(s->router, gi, &v);
		printf("%s: policy %s%s, expected accuracy ", group_name(s, gi), router_policy_name(v.policy),
		       v.dynamic ? " (ledger feedback)" : "");
		if (isnan(v.expected_accuracy))
			printf("-");
		else
			printf("%.4f", v.expected_accuracy);
		printf(" (target %.4f), %llu routed, %llu refused\n", v.acc_target, (unsigned long long)v.routed,
		       (unsigned long long)v.refused);
		if (!v.feasible)
			printf("warning: %s: %s; its requests get 503\n", group_name(s, gi), infeasible_why(v.policy));
		printf("  %-20s %7s %7s %7s %8s %7s %9s %8s\n", "OPTION", "BUDGET", "ACC", "WEIGHT", "ROUTED",
		       "SHARE", "J/REQ", "SD_J");
		for (int i = 0; i < v.n_opts; i++) {
			struct router_option_view ov;

			if (router_option_view(s->router, gi, i, &ov) || !option_shown(&ov))
				continue;
			printf("  %-20s %7u %7.4f %7.3f %8llu %7.3f %9.3f %8.3f\n", s->cfg.models[ov.model].name,
			       ov.budget, ov.acc, ov.weight, (unsigned long long)ov.routed, ov.share, ov.j_mean, ov.j_sd);
		}
	}
}

static void print_json_group(struct serve *s, int gi, double elapsed)
{
	struct router_view v;
	cJSON *o;
	char *line;

	router_view(s->router, gi, &v);
	for (int i = 0; i < v.n_opts; i++) {
		struct router_option_view ov;

		if (router_option_view(s->router, gi, i, &ov) || !option_shown(&ov) || !(o = cJSON_CreateObject()))
			continue;
		cJSON_AddStringToObject(o, "type", "route");
		cJSON_AddStringToObject(o, "pool", group_name(s, gi));
		cJSON_AddStringToObject(o, "model", s->cfg.models[ov.model].name);
		cJSON_AddNumberToObject(o, "budget", ov.budget);
		cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
		cJSON_AddNumberToObject(o, "accuracy", ov.acc);
		cJSON_AddNumberToObject(o, "weight", ov.weight);
		cJSON_AddNumberToObject(o, "share", ov.share);
		cJSON_AddNumberToObject(o, "routed", (double)ov.routed);
		cJSON_AddNumberToObject(o, "measured", (double)ov.measured);
		cJSON_AddNumberToObject(o, "rejected", (double)ov.rejected);
		cJSON_AddNumberToObject(o, "j_per_request", ov.j_mean);
		cJSON_AddNumberToObject(o, "j_per_request_sd", ov.j_sd);
		line = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (line)
			puts(line);
		free(line);
	}
	if (!(o = cJSON_CreateObject()))
		return;
	cJSON_AddStringToObject(o, "type", "steering");
	cJSON_AddStringToObject(o, "pool", group_name(s, gi));
	cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
	cJSON_AddStringToObject(o, "policy", router_policy_name(v.policy));
	cJSON_AddBoolToObject(o, "dynamic", v.dynamic);
	cJSON_AddBoolToObject(o, "feasible", v.feasible);
	cJSON_AddNumberToObject(o, "accuracy_target", v.acc_target);
	if (isnan(v.expected_accuracy))
		cJSON_AddNullToObject(o, "expected_accuracy");
	else
		cJSON_AddNumberToObject(o, "expected_accuracy", v.expected_accuracy);
	cJSON_AddNumberToObject(o, "routed", (double)v.routed);
	cJSON_AddNumberToObject(o, "refused", (double)v.refused);
	line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (line)
		puts(line);
	free(line);
}

static void print_json_steering(struct serve *s, double elapsed)
{
	for (int gi = 0; s->router && gi < router_groups(s->router); gi++)
		print_json_group(s, gi, elapsed);
}

static unsigned workers_up(const struct serve *s, size_t model)
{
	unsigned up = 0;

	for (size_t w = 0; w < s->cfg.n_workers; w++)
		up += s->cfg.workers[w].model == (int)model && proxy_worker_up(s->proxy, w);
	return up;
}

/* Watts of model i since the last view (average since the start in the summary). */
static double model_watts(struct serve *s, size_t i, double elapsed, double dt, bool summary)
{
	uint64_t nj;

	pthread_mutex_lock(&s->lock);
	nj = s->model_nj[i];
	pthread_mutex_unlock(&s->lock);
	if (summary)
		return elapsed > 0 ? attrib_joules(nj) / elapsed : 0;
	return dt > 0 ? attrib_joules(nj - s->shown_nj[i]) / dt : 0;
}

static void print_view(struct serve *s, double elapsed, double dt, const uint64_t *prev_requests,
		       bool summary)
{
	printf("\nerg serve - %s:%u, %.1f s, energy %s\n", s->listen_host,
	       proxy_port(s->proxy), elapsed, s->m ? energy_name(measure_energy(s->m)) : "not measured");
	printf("%-20s %7s %8s %7s %6s %9s %9s %8s %10s %9s %8s\n", "MODEL", "WORKERS", "REQS",
	       summary ? "AVG/S" : "REQ/S", "ERRS", "LAT_MS", "P99_MS", summary ? "AVG_W" : "WATTS",
	       "JOULES", "J/REQ", "SD_J");
	for (size_t i = 0; i < s->cfg.n_models; i++) {
		struct model_stats_snapshot st;
		char workers[24];
		double rate;

		if (model_stats_snapshot(s->ms, i, &st))
			continue;
		rate = summary ? (elapsed > 0 ? st.requests / elapsed : 0)
			       : (dt > 0 ? (st.requests - prev_requests[i]) / dt : 0);
		snprintf(workers, sizeof(workers), "%u/%zu", workers_up(s, i), s->cfg.models[i].n_workers);
		printf("%-20s %7s %8llu %7.1f %6llu %9.1f %9.1f %8.2f %10.2f %9.3f %8.3f\n", s->cfg.models[i].name,
		       workers, (unsigned long long)st.requests, rate,
		       (unsigned long long)(st.requests - st.requests_ok),
		       st.latency_s.count ? 1e3 * st.latency_s.sum / st.latency_s.count : 0,
		       isnan(st.latency_s.p99) ? 0 : 1e3 * st.latency_s.p99,
		       model_watts(s, i, elapsed, dt, summary), st.joules,
		       st.joules_per_request.n ? st.joules_per_request.mean : 0,
		       isnan(st.joules_per_request.sd) ? 0 : st.joules_per_request.sd);
	}
	print_steering(s);
	if (s->m)	/* the GPU part of JOULES, as erg top shows it, or why there is none */
		gpu_top_print(measure_gpu(s->m), summary, elapsed);
	fflush(stdout);
}

/* The node's energy as erg top counts it, and the ledger. */
static void print_json_total(struct serve *s, double elapsed)
{
	cJSON *o = cJSON_CreateObject();
	char *line;

	if (!o)
		return;
	cJSON_AddStringToObject(o, "type", "total");
	cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
	if (s->m) {
		const struct measure_totals *t = measure_totals(s->m);

		cJSON_AddNumberToObject(o, "joules", attrib_joules(t->total_nj));
		cJSON_AddNumberToObject(o, "attributed_j", attrib_joules(t->attributed_nj));
		cJSON_AddNumberToObject(o, "unattributed_j", attrib_joules(t->unattributed_nj));
		json_add_u64(o, "total_nj", t->total_nj);
		json_add_u64(o, "attributed_nj", t->attributed_nj);
		json_add_u64(o, "unattributed_nj", t->unattributed_nj);
		cJSON_AddStringToObject(o, "source", energy_name(measure_energy(s->m)));
		cJSON_AddBoolToObject(o, "measured", energy_is_measured(measure_energy(s->m)));
		json_add_u64(o, "dropped_events", t->dropped_events);
		if (measure_ledger(s->m))
			ledger_add_json(measure_ledger(s->m), o);
	} else {
		cJSON_AddStringToObject(o, "source", "none");
		cJSON_AddBoolToObject(o, "measured", false);
	}
	line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (line)
		puts(line);
	free(line);
}

static void print_json(struct serve *s, double elapsed, double dt, const uint64_t *prev_requests)
{
	for (size_t i = 0; i < s->cfg.n_models; i++) {
		struct model_stats_snapshot st;
		cJSON *o;
		char *line;

		if (model_stats_snapshot(s->ms, i, &st) || !(o = cJSON_CreateObject()))
			continue;
		cJSON_AddStringToObject(o, "type", "model");
		cJSON_AddStringToObject(o, "model", s->cfg.models[i].name);
		cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
		cJSON_AddNumberToObject(o, "workers", (double)s->cfg.models[i].n_workers);
		cJSON_AddNumberToObject(o, "workers_up", workers_up(s, i));
		cJSON_AddNumberToObject(o, "requests", (double)st.requests);
		cJSON_AddNumberToObject(o, "requests_ok", (double)st.requests_ok);
		cJSON_AddNumberToObject(o, "rate", dt > 0 ? (st.requests - prev_requests[i]) / dt : 0);
		cJSON_AddNumberToObject(o, "joules", st.joules);
		cJSON_AddNumberToObject(o, "watts", model_watts(s, i, elapsed, dt, false));
		cJSON_AddNumberToObject(o, "j_per_request", st.joules_per_request.n ? st.joules_per_request.mean : 0);
		cJSON_AddNumberToObject(o, "j_per_request_sd",
					isnan(st.joules_per_request.sd) ? 0 : st.joules_per_request.sd);
		cJSON_AddNumberToObject(o, "latency_mean_s", st.latency_s.count ? st.latency_s.sum / st.latency_s.count : 0);
		cJSON_AddNumberToObject(o, "latency_p99_s", isnan(st.latency_s.p99) ? 0 : st.latency_s.p99);
		line = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (line)
			puts(line);
		free(line);
	}
	print_json_steering(s, elapsed);
	print_json_total(s, elapsed);
	fflush(stdout);
}

static void output(struct serve *s, double start, double now, double *last, uint64_t *prev_requests,
		   bool summary)
{
	double dt = now - *last;

	if (s->o.json)
		print_json(s, now - start, dt, prev_requests);
	else
		print_view(s, now - start, dt, prev_requests, summary);
	for (size_t i = 0; i < s->cfg.n_models; i++) {
		struct model_stats_snapshot st;

		if (!model_stats_snapshot(s->ms, i, &st))
			prev_requests[i] = st.requests;
		pthread_mutex_lock(&s->lock);
		s->shown_nj[i] = s->model_nj[i];
		pthread_mutex_unlock(&s->lock);
	}
	*last = now;
}

/* Sleep until until_s or a stop. */
static void wait_until(struct serve *s, double until_s)
{
	if (s->m) {
		measure_wait(s->m, until_s, &stop_requested);
		return;
	}
	while (!stop_requested) {
		double left = until_s - measure_now();
		struct timespec ts;

		if (left <= 0)
			return;
		if (left > 0.1)
			left = 0.1;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
}

/* A stop signal: no new clients, the requests under way finish (up to
 * DRAIN_MAX_S, or until a second signal); proxy_stop() ends the rest. */
static void drain_proxy(struct serve *s)
{
	double until = measure_now() + DRAIN_MAX_S;
	struct timespec step = { .tv_nsec = 20 * 1000 * 1000 };

	proxy_drain(s->proxy);
	while (proxy_busy(s->proxy) && stop_requested < 2 && measure_now() < until)
		nanosleep(&step, NULL);
}

static int run_loop(struct serve *s)
{
	uint64_t prev_requests[SERVE_MAX_MODELS] = { 0 };
	double start = s->start_s, last = start;
	long long ticks = 0;
	int rc = 0;

	for (double next = start + s->o.interval_s; !stop_requested; next += s->o.interval_s) {
		wait_until(s, next);
		if (tick(s, measure_now())) {
			rc = 1;
			break;
		}
		if (stop_requested)
			break;
		output(s, start, measure_now(), &last, prev_requests, false);
		if (s->o.count && ++ticks >= s->o.count)
			break;
	}
	if (stop_requested)
		drain_proxy(s);
	proxy_stop(s->proxy);	/* its counts stay readable for the summary */
	return rc;
}

static void install_signals(void)
{
	struct sigaction stop = { .sa_handler = on_stop_signal };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	const int stops[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	sigemptyset(&stop.sa_mask);
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaction(stops[i], &stop, NULL);
	sigaction(SIGPIPE, &ign, NULL);
}

static void free_serve(struct serve *s)
{
	proxy_free(s->proxy);
	if (s->m) {
		measure_finish(s->m);
		measure_close(s->m);
	}
	targets_free(&s->targets);
	request_energy_free(s->re);
	model_stats_free(s->ms);
	router_free(s->router);
	if (s->log)
		fclose(s->log);
	free(s->local);
	free(s->retried);
	pthread_mutex_destroy(&s->lock);
}

int cmd_serve(int argc, char **argv)
{
	struct serve *s = calloc(1, sizeof(*s));
	char err[768];
	int rc;

	if (!s) {
		fprintf(stderr, "erg serve: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&s->lock, NULL);
	for (size_t w = 0; w < SERVE_MAX_WORKERS; w++)
		s->worker_jpr[w] = NAN;
	rc = parse_args(argc, argv, &s->o);
	if (rc) {
		free_serve(s);
		free(s);
		return rc == 1 ? 0 : rc;
	}
	if (serve_config_load(&s->cfg, s->o.config, err, sizeof(err))) {
		fprintf(stderr, "erg serve: %s\n", err);
		rc = 2;
		goto out;
	}
	if (s->o.log && !(s->log = fopen(s->o.log, "a"))) {
		fprintf(stderr, "erg serve: --log %s: %s (check the path)\n", s->o.log, strerror(errno));
		rc = 2;
		goto out;
	}
	if (s->cfg.steering) {
		uint32_t pools[SERVE_MAX_POOLS];

		for (size_t i = 0; i < s->cfg.n_pools; i++)
			pools[i] = s->cfg.pools[i].models;
		s->router = router_new(&s->cfg.scenario, s->o.policy, measure_now(), pools, (int)s->cfg.n_pools,
				       s->cfg.between_budgets, err, sizeof(err));
		if (!s->router) {
			fprintf(stderr, "erg serve: %s\n", err);
			rc = 2;
			goto out;
		}
		for (int gi = 1; gi < router_groups(s->router); gi++) {
			struct router_view v;

			router_view(s->router, gi, &v);
			if (!v.feasible)
				fprintf(stderr, "erg serve: warning: %s:%d: [pool %s]: %s; its requests will get "
					"503 (add a model that reaches accuracy_target %g to the pool)\n",
					s->cfg.path, s->cfg.pools[gi - 1].line, s->cfg.pools[gi - 1].name,
					infeasible_why(v.policy), v.acc_target);
		}
	} else if (s->o.policy_given) {
		fprintf(stderr, "erg serve: %s has no steering sections ([scaling], [workload] budgets and "
			"accuracy_target, [cost]): --policy has nothing to steer, \"model\": \"auto\" is "
			"answered 404\n", s->o.config);
	}
	install_signals();
	raise_nofile();
	open_energy(s);
	s->re = request_energy_new(s->cfg.n_workers, measure_now());
	s->ms = model_stats_new(s->cfg.n_models);
	if (!s->re || !s->ms) {
		fprintf(stderr, "erg serve: out of memory\n");
		rc = 1;
		goto out;
	}
	rc = start_proxy(s);
	if (!rc) {
		double last;
		uint64_t prev[SERVE_MAX_MODELS] = { 0 };

		s->start_s = last = measure_now();
		rc = run_loop(s);
		tick(s, measure_now());	/* what completed while stopping */
		output(s, s->start_s, measure_now(), &last, prev, true);
	}
out:
	free_serve(s);
	free(s);
	return rc;
}

/* See measure.h: tracker + sockets + requests + energy + GPU + ledger, one
 * tick at a time. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "attrib.h"
#include "cli.h"
#include "errbuf.h"
#include "measure.h"
#include "model_stats.h"
#include "request_energy.h"
#include "sock_tracker.h"

/* Longest single wait: a stop flag set just before a blocking wait is seen
 * within this long (the wait cannot unblock signals atomically). */
#define WAIT_SLICE_S 0.5

/* processes with open requests stamped per tick (more wait for an event) */
#define MAX_OPEN_TGIDS 256

struct measure {
	struct measure_opts o;
	const char *prog;
	struct energy_source *energy;
	struct tracker *tracker;
	struct request_tracker *requests;
	struct sock_tracker *socks;
	struct model_stats *request_stats;	/* J/request per model */
	struct ledger *ledger;
	struct gpu_top *gpu;
	const char *names[ERG_MAX_WORKERS];
	size_t n_workers, n_models;
	size_t model_of[ERG_MAX_WORKERS];
	struct measure_worker workers[ERG_MAX_WORKERS];
	struct measure_model models[ERG_MAX_WORKERS];
	struct measure_totals totals;
	double prev_cpu[ERG_MAX_WORKERS], cur_cpu[ERG_MAX_WORKERS], tick_cpu[ERG_MAX_WORKERS];
	unsigned procs[ERG_MAX_WORKERS];
	uint64_t tick_nj[ERG_MAX_WORKERS];
	uint64_t request_nj[ERG_MAX_WORKERS], nonrequest_nj[ERG_MAX_WORKERS];
	struct energy_sample prev_sample;
	struct request_info *done;	/* completed in the last tick */
	size_t n_done, cap_done;
	bool wait_failed;		/* epoll on the ring buffer failed: sleep */
	bool socks_busy;		/* the last read found socket events */
	double unix_offset_s;		/* CLOCK_REALTIME - CLOCK_MONOTONIC at open */
	long tick_gap_ms;		/* ERG_TEST_TICK_GAP_MS: see measure_tick */
	/* processes with open requests and their CPU, read before a tick's
	 * events are drained (see read_open_cpu) */
	unsigned read_tgids[MAX_OPEN_TGIDS];
	unsigned long long read_cpu_ns[MAX_OPEN_TGIDS];
	size_t n_read;
};

/* For the tests only: ERG_TEST_TICK_GAP_MS makes each tick wait that long
 * after draining the socket events, before the request windows are stamped
 * with their processes' CPU, as a preempted erg would; requests that start
 * in that gap must still get all their CPU. */
static long tick_gap_ms(void)
{
	const char *v = getenv("ERG_TEST_TICK_GAP_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;

	return ms > 0 && ms < 10000 ? ms : 0;
}

double measure_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, read once: request times stay on one
 * scale even if the wall clock is stepped while erg runs. The reading with
 * the narrowest bracket of three is kept. */
static double unix_offset(void)
{
	double best = 0, width = INFINITY;

	for (int i = 0; i < 3; i++) {
		struct timespec rt;
		double before = measure_now(), after;

		clock_gettime(CLOCK_REALTIME, &rt);
		after = measure_now();
		if (after - before < width) {
			width = after - before;
			best = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9 - (before + after) / 2;
		}
	}
	return best;
}

double measure_unix_s(const struct measure *m, double mono_s)
{
	return mono_s + m->unix_offset_s;
}

void measure_opts_init(struct measure_opts *o, const char *prog)
{
	memset(o, 0, sizeof(*o));
	o->prog = prog;
	ledger_config_init(&o->ledger);
}

int measure_set_option(struct measure_opts *o, const char *name, const char *arg, char *err, size_t errlen)
{
	struct energy_opts *e = &o->energy;
	char opt[40];
	int choice, rc;

	snprintf(opt, sizeof(opt), "--%s", name);
	if (!strcmp(name, "energy-source")) {
		if (cli_choice(opt, arg, energy_choice_names, &choice, err, errlen))
			return -1;
		e->choice = (enum energy_choice)choice;
		o->energy_source_given = true;
		return 0;
	}
	if (!strcmp(name, "idle-watts"))
		return cli_double_above(opt, arg, 0, ENERGY_MAX_WATTS, "watts", &e->model.idle_watts, err, errlen);
	if (!strcmp(name, "watts-per-core"))
		return cli_double_above(opt, arg, 0, ENERGY_MAX_WATTS, "watts", &e->model.watts_per_busy_core,
					err, errlen);
	rc = ledger_set_option(&o->ledger, name, arg, err, errlen);
	if (rc == 0)
		errbuf_set(err, errlen, "option %s is not an energy or ledger option", opt);
	return rc == 1 ? 0 : -1;
}

int measure_opts_check(const struct measure_opts *o, char *err, size_t errlen)
{
	return ledger_config_check(&o->ledger, err, errlen);
}

/* Request windows are a refinement: without tracefs they turn off with a
 * notice and the rest goes on. */
static void open_requests(struct measure *m)
{
	char err[768];
	double idle = m->o.request_idle_s > 0 ? m->o.request_idle_s : 2.0;

	m->requests = requests_new(m->n_workers, idle);
	if (m->requests && m->o.request_paths)
		requests_set_paths(m->requests, m->o.request_paths);	/* checked in measure_open */
	m->request_stats = model_stats_new(m->n_models);
	m->socks = m->requests && m->request_stats
		? sock_tracker_open(m->tracker, m->requests, (enum sock_hooks)m->o.socket_hooks, err, sizeof(err))
		: NULL;
	if (!m->socks) {
		fprintf(stderr, "%s: per-request joules off: %s\n", m->prog, m->requests ? err : "out of memory");
		requests_free(m->requests);
		m->requests = NULL;
	}
}

/* The parts after the tracker, in the order their start times matter:
 * the ledger and the energy source start at attach, the GPU part last. */
static int open_parts(struct measure *m, int *exit_status, char *err, size_t errlen)
{
	double start;

	if (m->o.ledger.given) {
		m->ledger = ledger_open(&m->o.ledger, err, errlen);
		if (!m->ledger)
			return -1;
		if (ledger_notice(m->ledger))
			fprintf(stderr, "%s: %s\n", m->prog, ledger_notice(m->ledger));
	}
	start = m->totals.start_s = m->totals.now_s = measure_now();
	if (m->ledger)
		ledger_start(m->ledger, start);
	m->energy = energy_open(&m->o.energy, start, err, errlen);
	if (!m->energy)
		return -1;
	if (energy_read(m->energy, start, &m->prev_sample, err, errlen)) {
		*exit_status = 1;
		return -1;
	}
	if (tracker_read(m->tracker, m->prev_cpu, NULL)) {
		errbuf_set(err, errlen, "cannot read the BPF counters: %s", strerror(errno));
		*exit_status = 1;
		return -1;
	}
	m->gpu = gpu_top_open(&m->o.gpu, m->tracker, m->n_workers, m->model_of, m->names, m->n_models,
			      &m->o.tracker, start, err, errlen);
	return m->gpu ? 0 : -1;
}

struct measure *measure_open(const struct target_set *targets, const struct measure_opts *opts,
			     int *exit_status, char *err, size_t errlen)
{
	struct measure *m = calloc(1, sizeof(*m));

	*exit_status = 2;
	if (!m) {
		errbuf_set(err, errlen, "out of memory");
		*exit_status = 1;
		return NULL;
	}
	m->o = *opts;
	m->prog = opts->prog ? opts->prog : "erg";
	m->unix_offset_s = unix_offset();
	m->tick_gap_ms = tick_gap_ms();
	if (!m->o.no_requests && m->o.request_paths && !requests_paths_valid(m->o.request_paths)) {
		errbuf_set(err, errlen, MEASURE_REQUEST_PATHS_ERROR, m->o.request_paths);
		goto fail;
	}
	if (!m->o.gpu.prog)
		m->o.gpu.prog = m->prog;
	m->n_workers = targets->n < ERG_MAX_WORKERS ? targets->n : ERG_MAX_WORKERS;
	m->n_models = targets_models(targets, m->names, ERG_MAX_WORKERS, m->model_of);
	for (size_t i = 0; i < m->n_models; i++)
		m->models[i].name = m->names[i];
	for (size_t w = 0; w < m->n_workers; w++)
		m->workers[w].model = m->model_of[w];
	m->tracker = tracker_open(targets, &m->o.tracker, err, errlen);
	if (!m->tracker)
		goto fail;
	if (!m->o.no_requests)
		open_requests(m);
	if (open_parts(m, exit_status, err, errlen))
		goto fail;
	return m;
fail:
	measure_close(m);
	return NULL;
}

static void drain(struct measure *m)
{
	if (m->socks && sock_tracker_poll(m->socks) < 0)
		fprintf(stderr, "%s: reading socket events failed; per-request joules may be short\n", m->prog);
}

bool measure_wait(struct measure *m, double until_s, const volatile sig_atomic_t *stop)
{
	while (!*stop) {
		double left = until_s - measure_now();

		if (left <= 0)
			return true;
		if (left > WAIT_SLICE_S)
			left = WAIT_SLICE_S;
		/* events are read as they come: the ring buffer never waits a
		 * whole interval to be emptied */
		if (m->socks && !m->wait_failed) {
			/* the BPF side wakes this only for a batch: while
			 * events flow, read every ERG_SOCK_READ_MS anyway */
			int ms = (int)ceil(left * 1000);
			if (m->socks_busy && ms > ERG_SOCK_READ_MS)
				ms = ERG_SOCK_READ_MS;
			int rc = sock_tracker_wait(m->socks, ms);

			if (rc >= 0)
				m->socks_busy = rc > 0;

			if (rc < 0 && rc != -EINTR) {
				fprintf(stderr, "%s: waiting for socket events failed (%s); reading them once per interval\n",
					m->prog, strerror(-rc));
				m->wait_failed = true;
			}
		} else {
			struct timespec ts = { 0, (long)(left * 1e9) };

			nanosleep(&ts, NULL);	/* EINTR: the loop checks *stop */
		}
	}
	return false;
}

int measure_event_fd(const struct measure *m)
{
	return m->socks ? sock_tracker_fd(m->socks) : -1;
}

void measure_drain(struct measure *m)
{
	drain(m);
}

/* A completed request in its model's count and J/request statistics (a
 * partial one only in the count: its start was missed). */
static void count_completed(struct measure *m, const struct request_info *r)
{
	struct request_record rec = {
		.model = (unsigned)m->model_of[r->worker],
		.status = r->status ? r->status : 200,	/* no status line seen: answered */
		.sse_events = r->sse_events,
		.nj = r->nj,
		.latency_s = r->end_s - r->start_s,
	};

	m->models[rec.model].requests++;
	if (!r->partial)
		model_stats_add(m->request_stats, &rec);
}

/* Completed requests: counted per model and kept for measure_completed. */
static void take_completed(struct measure *m)
{
	struct request_info batch[64];
	size_t n;

	m->n_done = 0;
	while ((n = requests_take_completed(m->requests, batch, 64)) > 0) {
		if (m->n_done + n > m->cap_done) {
			size_t cap = (m->n_done + n) * 2;
			struct request_info *p = realloc(m->done, cap * sizeof(*p));

			if (!p) {
				fprintf(stderr, "%s: out of memory; %zu completed requests not reported\n", m->prog, n);
				continue;
			}
			m->done = p;
			m->cap_done = cap;
		}
		for (size_t i = 0; i < n; i++)
			if (batch[i].worker < m->n_workers)
				count_completed(m, &batch[i]);
		memcpy(m->done + m->n_done, batch, n * sizeof(*batch));
		m->n_done += n;
	}
}

/* The CPU of the processes with open requests, read before the tick drains
 * the socket events. Read after the drain, the reading would also hold the
 * CPU of a request that started in between, whose start event is still in
 * the ring buffer: charged to the requests open before it, and lost to it,
 * as its event's lower stamp then counts nothing. Read before, an event in
 * the buffer is applied first, and one that comes later has a higher stamp,
 * against which the reading counts nothing. */
static void read_open_cpu(struct measure *m)
{
	m->n_read = m->requests ? requests_open_tgids(m->requests, m->read_tgids, MAX_OPEN_TGIDS) : 0;
	for (size_t i = 0; i < m->n_read; i++)
		m->read_cpu_ns[i] = tracker_proc_cpu_ns(m->tracker, m->read_tgids[i]);
}

static bool was_read(const struct measure *m, unsigned tgid)
{
	for (size_t i = 0; i < m->n_read; i++)
		if (m->read_tgids[i] == tgid)
			return true;
	return false;
}

/* Request windows get their CPU stamps (read_open_cpu's, and a reading of
 * now for processes whose first open request came with the drain), then
 * each worker's tick joules are split between its requests and the rest. */
static void split_requests(struct measure *m, double now_s)
{
	unsigned open_tgids[MAX_OPEN_TGIDS];
	size_t n_open;

	if (!m->requests) {
		memset(m->request_nj, 0, sizeof(m->request_nj));
		return;
	}
	for (size_t i = 0; i < m->n_read; i++)
		requests_stamp(m->requests, m->read_tgids[i], now_s, m->read_cpu_ns[i]);
	n_open = requests_open_tgids(m->requests, open_tgids, MAX_OPEN_TGIDS);
	for (size_t i = 0; i < n_open; i++)
		if (!was_read(m, open_tgids[i]))
			requests_stamp(m->requests, open_tgids[i], now_s,
				       tracker_proc_cpu_ns(m->tracker, open_tgids[i]));
	requests_split(m->requests, now_s, m->tick_nj, m->tick_cpu, m->request_nj, m->nonrequest_nj);
	take_completed(m);
}

/* Workers, then models, from this tick's arrays. */
static void sum_rows(struct measure *m)
{
	for (size_t i = 0; i < m->n_models; i++) {
		struct measure_model *r = &m->models[i];

		r->tick_nj = 0;
		r->procs = 0;
		r->cpu_s = 0;
		r->requests_active = 0;
	}
	for (size_t w = 0; w < m->n_workers; w++) {
		struct measure_worker *wk = &m->workers[w];
		struct measure_model *r = &m->models[m->model_of[w]];

		wk->procs = m->procs[w];
		wk->cpu_s = m->cur_cpu[w];
		wk->tick_cpu_s = m->tick_cpu[w];
		wk->tick_nj = m->tick_nj[w];
		wk->nj += m->tick_nj[w];
		wk->tick_request_nj = m->request_nj[w];
		r->tick_nj += wk->tick_nj;
		r->nj += wk->tick_nj;
		r->gpu_nj += gpu_top_worker_tick_nj(m->gpu, w);
		r->procs += wk->procs;
		r->cpu_s += wk->cpu_s;
		r->request_nj += wk->tick_request_nj;
		if (m->requests)
			r->requests_active += requests_active(m->requests, (unsigned)w);
	}
}

int measure_tick(struct measure *m, double now_s, char *err, size_t errlen)
{
	struct measure_totals *t = &m->totals;
	struct energy_sample sample;
	struct attrib_result res;
	struct attrib_tick in;
	char why[512];
	double dt;

	if (energy_read(m->energy, now_s, &sample, why, sizeof(why))) {
		errbuf_set(err, errlen, "energy source %s: %s", energy_name(m->energy), why);
		return -1;
	}
	tracker_refresh(m->tracker);
	read_open_cpu(m);
	drain(m);
	if (m->tick_gap_ms) {
		struct timespec gap = { m->tick_gap_ms / 1000, m->tick_gap_ms % 1000 * 1000000L };

		nanosleep(&gap, NULL);
	}
	if (tracker_read(m->tracker, m->cur_cpu, m->procs)) {
		errbuf_set(err, errlen, "cannot read the BPF counters: %s", strerror(errno));
		return -1;
	}
	dt = now_s - t->now_s;
	for (size_t w = 0; w < m->n_workers; w++) {
		double d = m->cur_cpu[w] - m->prev_cpu[w];

		m->tick_cpu[w] = d > 0 ? d : 0;
		m->prev_cpu[w] = m->cur_cpu[w];
	}
	in.total_nj = attrib_nj(sample.joules - m->prev_sample.joules);
	in.idle_nj = attrib_nj(energy_idle_watts(m->energy) * dt);
	in.node_busy_cpu_s = sample.busy_cpu_s - m->prev_sample.busy_cpu_s;
	in.worker_cpu_s = m->tick_cpu;
	in.n_workers = m->n_workers;
	res = attrib_split(&in, m->tick_nj);
	gpu_top_tick(m->gpu, now_s, m->tick_nj, &in.total_nj, &res);

	t->total_nj += in.total_nj;
	t->attributed_nj += res.attributed_nj;
	t->unattributed_nj += res.unattributed_nj;
	t->tick_total_nj = in.total_nj;
	split_requests(m, now_s);
	sum_rows(m);
	/* docs/theory.md §3: the service's demand is the energy of the tracked workers */
	if (m->ledger && ledger_add_demand(m->ledger, now_s, attrib_joules(res.attributed_nj)))
		fprintf(stderr, "%s: ledger: %s\n", m->prog, ledger_error(m->ledger));
	t->dropped_events = m->socks ? sock_tracker_dropped(m->socks) : 0;
	t->gpu_races = gpu_top_races(m->gpu);
	m->prev_sample = sample;
	t->tick_s = dt;
	t->now_s = now_s;
	t->ticks++;
	return 0;
}

size_t measure_n_workers(const struct measure *m) { return m->n_workers; }
const struct measure_worker *measure_workers(const struct measure *m) { return m->workers; }
size_t measure_n_models(const struct measure *m) { return m->n_models; }
const struct measure_model *measure_models(const struct measure *m) { return m->models; }
const struct measure_totals *measure_totals(const struct measure *m) { return &m->totals; }
const struct energy_source *measure_energy(const struct measure *m) { return m->energy; }
const char *measure_sched_mode(const struct measure *m) { return tracker_mode(m->tracker); }
const struct gpu_top *measure_gpu(const struct measure *m) { return m->gpu; }
const struct ledger *measure_ledger(const struct measure *m) { return m->ledger; }
bool measure_requests_on(const struct measure *m) { return m->requests != NULL; }
const char *measure_socket_mode(const struct measure *m) { return m->socks ? sock_tracker_mode(m->socks) : "off"; }

int measure_request_stats(const struct measure *m, size_t model, struct model_stats_snapshot *out)
{
	return m->requests && m->request_stats ? model_stats_snapshot(m->request_stats, model, out) : -1;
}

const struct request_info *measure_completed(const struct measure *m, size_t *n)
{
	*n = m->n_done;
	return m->done;
}

void measure_finish(struct measure *m)
{
	if (m && m->ledger && ledger_flush(m->ledger, m->totals.now_s))
		fprintf(stderr, "%s: ledger: %s\n", m->prog, ledger_error(m->ledger));
}

void measure_close(struct measure *m)
{
	if (!m)
		return;
	energy_close(m->energy);
	sock_tracker_close(m->socks);
	ledger_close(m->ledger);
	requests_free(m->requests);
	model_stats_free(m->request_stats);
	gpu_top_close(m->gpu);
	tracker_close(m->tracker);
	free(m->done);
	free(m);
}

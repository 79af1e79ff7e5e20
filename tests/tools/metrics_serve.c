/* Test helper for tests/integration/metrics_server.sh: serves erg's /metrics
 * families through user/serve/metrics_server.c from made-up rows that a
 * "tick" thread keeps changing under a lock, as erg top will.
 *
 *   metrics_serve [--listen HOST:PORT]   (default 127.0.0.1:0, a free port)
 *
 * Prints "port N" once listening, serves until SIGTERM or SIGINT, then
 * prints "scrapes N" and exits 0. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "metrics_server.h"
#include "model_stats.h"
#include "prom.h"
#include "request_energy.h"

/* What erg top's tick updates and the scrape reads. */
struct shared_rows {
	pthread_mutex_t lock;
	double cpu_joules;
	struct model_stats *stats;
	struct prom_ledger ledger;
	unsigned long ticks;
};

static void render(void *ud, struct prom_buf *out)
{
	struct shared_rows *s = ud;
	struct model_stats_snapshot snap;
	struct prom_model models[2] = {
		{ "small", 0, 0, &snap },
		{ "odd \"model\"\\\nname", 1.5, NAN, NULL },
	};
	struct prom_worker workers[2] = { { "small", "127.0.0.1:8091", true },
					  { "odd \"model\"\\\nname", "127.0.0.1:8092", false } };
	struct prom_erg in = { models, 2, workers, 2, &s->ledger, true, 0 };

	pthread_mutex_lock(&s->lock);
	models[0].cpu_joules = s->cpu_joules;
	models[0].gpu_joules = s->cpu_joules / 4;
	model_stats_snapshot(s->stats, 0, &snap);
	in.bpf_events_dropped = s->ticks / 10;
	prom_render_erg(out, &in);
	pthread_mutex_unlock(&s->lock);
}

/* One tick: more energy, one more request, the ledger moves. */
static void tick(struct shared_rows *s)
{
	struct request_record r = { .model = 0, .status = s->ticks % 7 ? 200 : 503,
				    .nj = 100000000ULL * (1 + s->ticks % 5), .latency_s = 0.01 * (1 + s->ticks % 50) };

	pthread_mutex_lock(&s->lock);
	s->ticks++;
	s->cpu_joules += 0.75;
	model_stats_add(s->stats, &r);
	s->ledger.demand_joules += 1;
	s->ledger.supply_joules += 0.9;
	s->ledger.aux_joules += 0.1;
	s->ledger.regime = s->ticks > 20 ? LEDGER_UNDER_SUPPLIED : LEDGER_UNDETERMINED;
	pthread_mutex_unlock(&s->lock);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "listen", required_argument, NULL, 'l' }, { 0 } };
	struct shared_rows rows = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct metrics_server *ms;
	char host[256] = "127.0.0.1", err[256];
	uint16_t port = 0;
	struct cli c;
	sigset_t sigs;
	int opt, sig;

	cli_init(&c, "metrics_serve", "l:", longopts);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		if (opt == CLI_ERROR)
			return 2;
		if (cli_hostport(c.name, optarg, host, sizeof(host), &port, err, sizeof(err)) < 0)
			return cli_fail(&c, err);
	}
	/* signals are taken by sigtimedwait below, in the main thread only */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	rows.stats = model_stats_new(1);
	ms = metrics_server_start(host, port, render, &rows, err, sizeof(err));
	if (!rows.stats || !ms) {
		fprintf(stderr, "metrics_serve: %s\n", ms ? "out of memory" : err);
		return 1;
	}
	printf("port %u\n", metrics_server_port(ms));
	fflush(stdout);
	for (;;) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		tick(&rows);
	}
	printf("scrapes %lu\n", metrics_server_scrapes(ms));
	metrics_server_stop(ms);
	model_stats_free(rows.stats);
	return 0;
}

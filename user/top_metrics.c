/* erg top's /metrics: the measure's rows rendered under one lock; see
 * top_metrics.h. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include "attrib.h"
#include "errbuf.h"
#include "metrics_server.h"
#include "prom.h"
#include "top_metrics.h"

struct top_metrics {
	pthread_mutex_t lock;		/* held by a tick and by a scrape */
	struct measure *m;		/* NULL until attached */
	struct metrics_server *server;
	struct prom_model models[ERG_MAX_WORKERS];	/* a scrape's scratch, under lock */
};

/* On the listener's thread, one scrape. */
static void render(void *ud, struct prom_buf *out)
{
	struct top_metrics *tm = ud;
	struct prom_erg in = { .models = tm->models };
	struct prom_ledger ledger;

	pthread_mutex_lock(&tm->lock);
	if (tm->m) {
		const struct measure_model *rows = measure_models(tm->m);
		bool gpu = gpu_top_active(measure_gpu(tm->m));

		in.n_models = measure_n_models(tm->m);
		for (size_t i = 0; i < in.n_models; i++) {
			/* a model's joules include its GPU joules: cpu + gpu = the row's */
			uint64_t gpu_nj = rows[i].gpu_nj < rows[i].nj ? rows[i].gpu_nj : rows[i].nj;

			tm->models[i] = (struct prom_model){ .name = rows[i].name,
							     .cpu_joules = attrib_joules(rows[i].nj - gpu_nj),
							     .gpu_joules = gpu ? attrib_joules(gpu_nj) : NAN };
		}
		if (measure_ledger(tm->m)) {
			prom_ledger_from(&ledger, measure_ledger(tm->m));
			in.ledger = &ledger;
		}
		in.have_dropped = true;
		in.bpf_events_dropped = measure_totals(tm->m)->dropped_events;
	}
	prom_render_erg(out, &in);
	pthread_mutex_unlock(&tm->lock);
}

struct top_metrics *top_metrics_start(const char *host, uint16_t port, char *err, size_t errlen)
{
	struct top_metrics *tm = calloc(1, sizeof(*tm));

	if (!tm) {
		errbuf_set(err, errlen, "metrics: out of memory");
		return NULL;
	}
	pthread_mutex_init(&tm->lock, NULL);
	tm->server = metrics_server_start(host, port, render, tm, err, errlen);
	if (!tm->server) {
		pthread_mutex_destroy(&tm->lock);
		free(tm);
		return NULL;
	}
	return tm;
}

uint16_t top_metrics_port(const struct top_metrics *tm)
{
	return tm ? metrics_server_port(tm->server) : 0;
}

void top_metrics_attach(struct top_metrics *tm, struct measure *m)
{
	if (!tm)
		return;
	pthread_mutex_lock(&tm->lock);
	tm->m = m;
	pthread_mutex_unlock(&tm->lock);
}

int top_metrics_tick(struct top_metrics *tm, struct measure *m, double now_s, char *err, size_t errlen)
{
	int rc;

	if (tm)
		pthread_mutex_lock(&tm->lock);
	rc = measure_tick(m, now_s, err, errlen);
	if (tm)
		pthread_mutex_unlock(&tm->lock);
	return rc;
}

void top_metrics_finish(struct top_metrics *tm, struct measure *m)
{
	if (tm)
		pthread_mutex_lock(&tm->lock);
	measure_finish(m);
	if (tm)
		pthread_mutex_unlock(&tm->lock);
}

void top_metrics_stop(struct top_metrics *tm)
{
	if (!tm)
		return;
	metrics_server_stop(tm->server);
	pthread_mutex_destroy(&tm->lock);
	free(tm);
}

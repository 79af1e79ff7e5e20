/* erg top --metrics ADDR:PORT: the measuring pipeline's rows on a
 * Prometheus /metrics endpoint (serve/metrics_server.h), with the same
 * family names as erg serve's /metrics where they apply (serve/prom.h):
 *   erg_energy_joules_total{model,source="cpu|gpu"}  (gpu while the GPU part counts)
 *   erg_ledger_*                                      (with a supply ledger)
 *   erg_bpf_events_dropped_total
 * erg top knows no HTTP status of its requests, so erg_requests_total and
 * the request histograms are erg serve's alone.
 *
 * The listener answers on its own thread while the main thread ticks: every
 * change to the measure goes through top_metrics_tick()/_finish(), which
 * hold the lock a scrape holds while it reads, so a scrape sees one whole
 * tick, never half of one. Every function takes tm == NULL (no --metrics)
 * and then only does the measure's part.
 *
 *   tm = top_metrics_start(host, port, err, sizeof(err));   // before attaching
 *   m = measure_open(...); top_metrics_attach(tm, m);
 *   while (...) top_metrics_tick(tm, m, measure_now(), err, sizeof(err));
 *   top_metrics_finish(tm, m);
 *   top_metrics_stop(tm);                                    // before measure_close
 *   measure_close(m); */
#ifndef ERG_TOP_METRICS_H
#define ERG_TOP_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "measure.h"

struct top_metrics;

/* Listen on host:port (port 0: a free one, see top_metrics_port). Until
 * attached, a scrape answers the energy family with no series. NULL with
 * one line in err when it cannot listen. */
struct top_metrics *top_metrics_start(const char *host, uint16_t port, char *err, size_t errlen);
uint16_t top_metrics_port(const struct top_metrics *tm);

/* Scrapes read m from now on (m stays the caller's). */
void top_metrics_attach(struct top_metrics *tm, struct measure *m);

/* measure_tick() and measure_finish() under the scrapes' lock. */
int top_metrics_tick(struct top_metrics *tm, struct measure *m, double now_s, char *err, size_t errlen);
void top_metrics_finish(struct top_metrics *tm, struct measure *m);

/* Stop answering (a scrape under way finishes first) and free. */
void top_metrics_stop(struct top_metrics *tm);

#endif

/* The workers behind erg serve, shared by the proxy threads: which are up,
 * how many requests each has outstanding, and the choice of a worker for a
 * request. A health-check thread connects to every worker periodically and
 * marks it up or down; the proxy marks a worker down when a connect fails
 * and up when it answers. */
#ifndef ERG_UPSTREAMS_H
#define ERG_UPSTREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "serve_config.h"

struct upstreams;

/* jpr(ud, worker): measured joules per request, NaN if unknown (may be NULL).
 * health_interval_s <= 0: no health-check thread. NULL on failure. */
struct upstreams *upstreams_new(const struct serve_config *cfg, double health_interval_s,
				double (*jpr)(void *ud, size_t worker), void *ud);
/* Stop the health-check thread (the states stay as they are). */
void upstreams_stop_checks(struct upstreams *u);
void upstreams_free(struct upstreams *u);

/* A worker of model for a request, not one in tried (bit w: worker w was
 * tried), counted outstanding until upstreams_release(): the one with the
 * fewest outstanding among those up (all of them if none is up), ties to
 * the lower J/request, then in turn. -1 if every worker was tried. */
int upstreams_pick(struct upstreams *u, int model, uint64_t tried);
void upstreams_release(struct upstreams *u, int worker);

void upstreams_mark(struct upstreams *u, int worker, bool up);
bool upstreams_is_up(const struct upstreams *u, int worker);
unsigned upstreams_outstanding(const struct upstreams *u, int worker);

#endif

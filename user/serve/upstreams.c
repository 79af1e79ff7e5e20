/* See upstreams.h. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "upstreams.h"

struct upstream_state {
	atomic_uint outstanding;
	atomic_bool up;
};

struct upstreams {
	const struct serve_config *cfg;
	struct upstream_state *w;
	double (*jpr)(void *ud, size_t worker);
	void *ud;
	atomic_uint turn;		/* rotates ties */
	double health_interval_s;
	pthread_t health;
	bool health_running;
	pthread_mutex_t lock;		/* guards stopping, for the condition */
	pthread_cond_t wake;
	bool stopping;
};

/* Connect within timeout_ms: is something accepting there? */
static bool probe(const struct serve_worker *w, int timeout_ms)
{
	int fd = socket(w->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool ok = false;

	if (fd < 0)
		return false;
	if (!connect(fd, (const struct sockaddr *)&w->addr, w->addrlen)) {
		ok = true;
	} else if (errno == EINPROGRESS) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (poll(&pfd, 1, timeout_ms) == 1 &&
		    !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) && !soerr)
			ok = true;
	}
	close(fd);
	return ok;
}

static void *health_main(void *arg)
{
	struct upstreams *u = arg;
	int timeout_ms = (int)(u->health_interval_s * 1000);

	if (timeout_ms > 1000)
		timeout_ms = 1000;
	if (timeout_ms < 50)
		timeout_ms = 50;
	pthread_mutex_lock(&u->lock);
	/* the first check after one interval: until then a worker is up unless
	 * a connect to it failed */
	for (bool first = true; !u->stopping; first = false) {
		struct timespec until;

		pthread_mutex_unlock(&u->lock);
		for (size_t i = 0; !first && i < u->cfg->n_workers; i++)
			atomic_store(&u->w[i].up, probe(&u->cfg->workers[i], timeout_ms));
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)u->health_interval_s;
		until.tv_nsec += (long)((u->health_interval_s - floor(u->health_interval_s)) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&u->lock);
		while (!u->stopping && pthread_cond_timedwait(&u->wake, &u->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

struct upstreams *upstreams_new(const struct serve_config *cfg, double health_interval_s,
				double (*jpr)(void *ud, size_t worker), void *ud)
{
	struct upstreams *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->w = calloc(cfg->n_workers ? cfg->n_workers : 1, sizeof(*u->w));
	if (!u->w) {
		free(u);
		return NULL;
	}
	u->cfg = cfg;
	u->jpr = jpr;
	u->ud = ud;
	u->health_interval_s = health_interval_s;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->wake, NULL);
	for (size_t i = 0; i < cfg->n_workers; i++)
		atomic_init(&u->w[i].up, true);	/* until a check or a connect says otherwise */
	if (health_interval_s > 0 && !pthread_create(&u->health, NULL, health_main, u))
		u->health_running = true;
	return u;
}

void upstreams_stop_checks(struct upstreams *u)
{
	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	pthread_cond_signal(&u->wake);
	pthread_mutex_unlock(&u->lock);
	if (u->health_running)
		pthread_join(u->health, NULL);
	u->health_running = false;
}

void upstreams_free(struct upstreams *u)
{
	if (!u)
		return;
	upstreams_stop_checks(u);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->wake);
	free(u->w);
	free(u);
}

static double joules_per_request(struct upstreams *u, size_t w)
{
	double j = u->jpr ? u->jpr(u->ud, w) : NAN;

	return isfinite(j) && j >= 0 ? j : INFINITY;
}

int upstreams_pick(struct upstreams *u, int model, uint64_t tried)
{
	size_t n = u->cfg->n_workers, start = atomic_fetch_add(&u->turn, 1);
	int best = -1;
	bool best_up = false;
	unsigned best_out = 0;
	double best_j = 0;

	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		bool up;
		unsigned out;
		double j;

		if (u->cfg->workers[i].model != model || (i < 64 && (tried >> i) & 1))
			continue;
		up = atomic_load(&u->w[i].up);
		out = atomic_load(&u->w[i].outstanding);
		j = joules_per_request(u, i);
		if (best >= 0 && (best_up && !up))
			continue;
		if (best >= 0 && best_up == up &&
		    (out > best_out || (out == best_out && !(j < best_j))))
			continue;
		best = (int)i;
		best_up = up;
		best_out = out;
		best_j = j;
	}
	if (best >= 0)
		atomic_fetch_add(&u->w[best].outstanding, 1);
	return best;
}

void upstreams_release(struct upstreams *u, int worker)
{
	if (worker >= 0)
		atomic_fetch_sub(&u->w[worker].outstanding, 1);
}

void upstreams_mark(struct upstreams *u, int worker, bool up)
{
	atomic_store(&u->w[worker].up, up);
}

bool upstreams_is_up(const struct upstreams *u, int worker)
{
	return atomic_load(&u->w[worker].up);
}

unsigned upstreams_outstanding(const struct upstreams *u, int worker)
{
	return atomic_load(&u->w[worker].outstanding);
}

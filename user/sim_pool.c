/* erg sim's worker threads and progress line. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "sim_pool.h"

#define MAX_THREADS 8

struct pool {
	struct sim_job *jobs;
	int n;
	int next;
	pthread_mutex_t lock;
	struct sim_slot *series;	/* per-slot output of job 0.. */
	long slots;
};

static void *worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		int i = p->next++;
		pthread_mutex_unlock(&p->lock);
		if (i >= p->n)
			return NULL;
		struct sim_job *j = &p->jobs[i];
		struct sim_slot *series = p->series ? p->series + (size_t)i * p->slots : NULL;
		j->rc = sim_run(&j->cfg, &j->sum, series, j->counts);
		/* a failed run counts as finished too, or the wait never ends */
		__atomic_store_n(&j->progress, p->slots, __ATOMIC_RELAXED);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Slots done over all jobs; *finished: jobs done. */
static double slots_done(const struct pool *p, int *finished)
{
	double done = 0.0;

	*finished = 0;
	for (int i = 0; i < p->n; i++) {
		long d = __atomic_load_n(&p->jobs[i].progress, __ATOMIC_RELAXED);
		done += d;
		*finished += d >= p->slots;
	}
	return done;
}

/* Wait for the threads' work, printing progress after a second: a terminal
 * gets a line redrawn in place, a log one line at 1 s and then one every
 * 5 s. The time left is only claimed once some slots are done. Returns
 * whether a line was printed. */
static bool wait_with_progress(struct pool *p, bool quiet, double t0, bool tty)
{
	double total = (double)p->n * p->slots, last_print = 0.0;
	bool printed = false;
	int finished;

	for (;;) {
		double done = slots_done(p, &finished);
		if (finished == p->n)
			return printed;
		double el = now_s() - t0;
		if (!quiet && el >= 1.0 && (!printed || el - last_print >= (tty ? 0.2 : 5.0))) {
			double frac = done / total;
			char left[48];

			if (frac > 0)
				snprintf(left, sizeof(left), "~%.0f s left", el * (1.0 - frac) / frac);
			else
				snprintf(left, sizeof(left), "time left not known yet");
			fprintf(stderr, "%serg sim: %d/%d runs, %.0f%% of %.3g slots, %.1f s elapsed, %s%s",
				tty ? "\r" : "", finished, p->n, 100.0 * frac, total, el, left,
				tty ? "\033[K" : "\n");
			last_print = el;
			printed = true;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

void sim_pool_run(struct sim_job *jobs, int n, long slots, struct sim_slot *series, bool quiet,
		  double *elapsed_s)
{
	struct pool pool = { .jobs = jobs, .n = n, .series = series, .slots = slots };
	pthread_t tids[MAX_THREADS];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nthreads = ncpu > 1 ? (int)(ncpu < MAX_THREADS ? ncpu : MAX_THREADS) : 1;
	int started = 0;
	bool tty = isatty(STDERR_FILENO), printed = false;
	double t0 = now_s();

	pthread_mutex_init(&pool.lock, NULL);
	if (nthreads > n)
		nthreads = n;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&tids[i], NULL, worker, &pool) == 0)
			started++;
	if (!started)
		worker(&pool);
	else
		printed = wait_with_progress(&pool, quiet, t0, tty);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&pool.lock);
	*elapsed_s = now_s() - t0;
	if (printed)
		fprintf(stderr, "%serg sim: %d runs of %ld slots in %.1f s\n", tty ? "\r\033[K" : "",
			n, slots, *elapsed_s);
}

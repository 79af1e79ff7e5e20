/* Per-request split of each worker's tick energy; see request_energy.h. */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "request_energy.h"

enum slot_state { SLOT_FREE, SLOT_ACTIVE, SLOT_ENDED };

/* What a request streamed in a tick; each kind's requests share among
 * themselves by that progress (events, bytes, or time in flight). */
enum progress_kind { KIND_EVENTS, KIND_BYTES, KIND_QUIET, KINDS };

/* A request in flight, or ended and waiting for its last tick. */
struct live_request {
	enum slot_state state;
	struct request_record rec;	/* nj accumulates tick by tick */
	int64_t start_ns, end_ns;	/* the caller's monotonic clock */
	uint64_t tick_bytes, tick_events;	/* streamed since the last tick */
};

/* Per worker: how long at least one request was in flight this tick, and
 * the tick's scratch for the split. */
struct worker_acc {
	size_t in_flight;
	int64_t busy_since_ns;	/* valid while in_flight > 0 */
	int64_t busy_ns;	/* in the current tick */
	uint64_t request_nj, nonrequest_nj;	/* totals */
	/* scratch of one tick, per kind of request (enum progress_kind):
	 * the kind's time in flight and its progress (events or bytes) */
	uint64_t kind_overlap[KINDS], kind_progress[KINDS];
	uint64_t sum_overlap, share_nj, given_nj;
	uint64_t best_nj;
	struct live_request *best;	/* the member given the most this tick */
	bool has_member;
	/* What the worker spends with no request in flight, nJ per ns: learnt
	 * from ticks without any (EWMA), 0 until one is seen. */
	double idle_nj_per_ns;
	bool idle_known;
};

#define IDLE_RATE_WEIGHT 0.25	/* of the newest idle tick in the EWMA */

struct request_energy {
	pthread_mutex_t lock;
	size_t n_workers;
	struct worker_acc *workers;
	/* Slot of id is id & (cap - 1): a lookup without probing. begin skips
	 * ids whose slot is taken, and the table doubles past half full (ids
	 * distinct modulo cap stay distinct modulo 2 cap). */
	struct live_request *slots;
	size_t cap, used;
	/* Requests ended since the last tick, in the order they ended: out of
	 * the table, so the table holds only what is in flight (at 40,000
	 * requests/s a table that also held a tick's ended ones grew, and was
	 * rehashed, to 128 K slots under the lock, a stall every client felt).
	 * An end that cannot grow this array leaves its request in the table
	 * as SLOT_ENDED, handled the same way. */
	struct live_request *ended;
	size_t n_ended, ended_cap, ended_last_tick;
	uint64_t next_id;
	int64_t last_tick_ns;
	int64_t latest_event_ns;	/* the tick ends no earlier than any event */
	double unix_offset_s;		/* CLOCK_REALTIME - CLOCK_MONOTONIC */
	struct request_record *done;	/* completed, oldest at done_head */
	size_t done_head, done_len, done_cap;
	/* ticks in a row with the table / the queue under a quarter used */
	unsigned slots_low_ticks, done_low_ticks, ended_low_ticks;
};

#define INITIAL_SLOTS REQUEST_ENERGY_MIN_CAP

static int64_t to_ns(double s)
{
	if (!isfinite(s))
		return 0;
	return (int64_t)llround(s * 1e9);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct request_energy *request_energy_new(size_t n_workers, double now)
{
	struct request_energy *re = calloc(1, sizeof(*re));

	if (!re)
		return NULL;
	re->n_workers = n_workers;
	re->workers = calloc(n_workers ? n_workers : 1, sizeof(*re->workers));
	re->cap = INITIAL_SLOTS;
	re->slots = calloc(re->cap, sizeof(*re->slots));
	if (!re->workers || !re->slots) {
		free(re->workers);
		free(re->slots);
		free(re);
		return NULL;
	}
	pthread_mutex_init(&re->lock, NULL);
	re->next_id = 1;
	re->last_tick_ns = re->latest_event_ns = to_ns(now);
	re->unix_offset_s = clock_s(CLOCK_REALTIME) - clock_s(CLOCK_MONOTONIC);
	return re;
}

void request_energy_free(struct request_energy *re)
{
	if (!re)
		return;
	pthread_mutex_destroy(&re->lock);
	free(re->workers);
	free(re->slots);
	free(re->ended);
	free(re->done);
	free(re);
}

static int grow_slots(struct request_energy *re)
{
	size_t cap = re->cap * 2, mask = cap - 1;
	struct live_request *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < re->cap; i++)
		if (re->slots[i].state != SLOT_FREE)
			slots[re->slots[i].rec.id & mask] = re->slots[i];
	free(re->slots);
	re->slots = slots;
	re->cap = cap;
	return 0;
}

/* Halve the table, or leave it (-1) when two requests in flight would share
 * a slot of the smaller one: a later tick tries again. */
static int shrink_slots(struct request_energy *re)
{
	size_t cap = re->cap / 2, mask = cap - 1;
	struct live_request *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < re->cap; i++) {
		struct live_request *r = &re->slots[i];

		if (r->state == SLOT_FREE)
			continue;
		if (slots[r->rec.id & mask].state != SLOT_FREE) {
			free(slots);
			return -1;
		}
		slots[r->rec.id & mask] = *r;
	}
	free(re->slots);
	re->slots = slots;
	re->cap = cap;
	return 0;
}

/* Halve the completed queue (what is waiting moves to its front). */
static void shrink_done(struct request_energy *re)
{
	size_t waiting = re->done_len - re->done_head, cap = re->done_cap / 2;
	struct request_record *d;

	memmove(re->done, re->done + re->done_head, waiting * sizeof(*re->done));
	re->done_head = 0;
	re->done_len = waiting;
	d = realloc(re->done, cap * sizeof(*d));
	if (d) {	/* else it keeps the larger block, which still holds all */
		re->done = d;
		re->done_cap = cap;
	}
}

/* After a tick: a table or queue under a quarter used for
 * REQUEST_ENERGY_SHRINK_TICKS ticks in a row halves, and halves again each
 * tick it stays that low (a burst's memory comes back in a few ticks). The
 * table grows again past half full, so it does not swing at the boundary. */
static bool shrink_if_idle(struct request_energy *re)
{
	size_t waiting = re->done_len - re->done_head;
	bool shrunk = false;

	if (re->cap > INITIAL_SLOTS && re->used * 4 < re->cap) {
		if (++re->slots_low_ticks >= REQUEST_ENERGY_SHRINK_TICKS)
			shrunk |= shrink_slots(re) == 0;
	} else {
		re->slots_low_ticks = 0;
	}
	if (re->ended_cap > INITIAL_SLOTS && re->ended_last_tick * 4 < re->ended_cap) {
		if (++re->ended_low_ticks >= REQUEST_ENERGY_SHRINK_TICKS) {
			struct live_request *e = realloc(re->ended, re->ended_cap / 2 * sizeof(*e));

			if (e) {	/* it is empty after the tick: nothing to keep */
				re->ended = e;
				re->ended_cap /= 2;
				shrunk = true;
			}
		}
	} else {
		re->ended_low_ticks = 0;
	}
	if (re->done_cap > INITIAL_SLOTS && waiting * 4 < re->done_cap) {
		if (++re->done_low_ticks >= REQUEST_ENERGY_SHRINK_TICKS) {
			shrink_done(re);
			shrunk = true;
		}
	} else {
		re->done_low_ticks = 0;
	}
	return shrunk;
}

/* Double the array of ended requests (amortised: a few times under the
 * first burst, then it stays). */
static int grow_ended(struct request_energy *re)
{
	size_t cap = re->ended_cap ? re->ended_cap * 2 : INITIAL_SLOTS;
	struct live_request *e = realloc(re->ended, cap * sizeof(*e));

	if (!e)
		return -1;
	re->ended = e;
	re->ended_cap = cap;
	return 0;
}

/* An event's time, not before the tick already split. */
static int64_t event_ns(struct request_energy *re, double now)
{
	int64_t t = to_ns(now);

	if (t < re->last_tick_ns)
		t = re->last_tick_ns;
	if (t > re->latest_event_ns)
		re->latest_event_ns = t;
	return t;
}

uint64_t request_energy_begin(struct request_energy *re, unsigned worker, unsigned model, double now)
{
	struct live_request *r;
	struct worker_acc *w;
	uint64_t id;

	if (!re || worker >= re->n_workers)
		return 0;
	pthread_mutex_lock(&re->lock);
	if ((re->used + 1) * 2 > re->cap && grow_slots(re) < 0) {
		pthread_mutex_unlock(&re->lock);
		return 0;
	}
	while (re->slots[re->next_id & (re->cap - 1)].state != SLOT_FREE)
		re->next_id++;
	id = re->next_id++;
	r = &re->slots[id & (re->cap - 1)];
	memset(r, 0, sizeof(*r));
	r->state = SLOT_ACTIVE;
	r->rec.id = id;
	r->rec.worker = worker;
	r->rec.model = model;
	r->start_ns = event_ns(re, now);
	re->used++;
	w = &re->workers[worker];
	if (w->in_flight++ == 0)
		w->busy_since_ns = r->start_ns;
	pthread_mutex_unlock(&re->lock);
	return id;
}

/* The active request of id, or NULL. Lock held. */
static struct live_request *active(struct request_energy *re, uint64_t id)
{
	struct live_request *r = &re->slots[id & (re->cap - 1)];

	return r->state == SLOT_ACTIVE && r->rec.id == id ? r : NULL;
}

int request_energy_progress(struct request_energy *re, uint64_t id, uint64_t bytes_out_delta,
			    uint64_t sse_events_delta)
{
	struct live_request *r;

	if (!re || !id)
		return -1;
	pthread_mutex_lock(&re->lock);
	r = active(re, id);
	if (r) {
		r->tick_bytes += bytes_out_delta;
		r->tick_events += sse_events_delta;
		r->rec.sse_events += sse_events_delta;
	}
	pthread_mutex_unlock(&re->lock);
	return r ? 0 : -1;
}

int request_energy_end(struct request_energy *re, uint64_t id, double now, int status,
		       uint64_t bytes_in, uint64_t bytes_out, double ttfb_s, double latency_s)
{
	struct live_request *r;
	struct worker_acc *w;

	if (!re || !id)
		return -1;
	pthread_mutex_lock(&re->lock);
	r = active(re, id);
	if (r) {
		r->state = SLOT_ENDED;
		r->end_ns = event_ns(re, now);
		if (r->end_ns < r->start_ns)
			r->end_ns = r->start_ns;
		r->rec.status = status;
		r->rec.bytes_in = bytes_in;
		r->rec.bytes_out = bytes_out;
		r->rec.ttfb_s = ttfb_s;
		r->rec.latency_s = latency_s;
		w = &re->workers[r->rec.worker];
		if (--w->in_flight == 0)
			w->busy_ns += r->end_ns - w->busy_since_ns;
		if (re->n_ended < re->ended_cap || grow_ended(re) == 0) {
			re->ended[re->n_ended++] = *r;
			r->state = SLOT_FREE;
			re->used--;
		}
	}
	pthread_mutex_unlock(&re->lock);
	return r ? 0 : -1;
}

/* x * num / den without overflow; den > 0, num <= den. */
static uint64_t scale(uint64_t x, uint64_t num, uint64_t den)
{
	return (uint64_t)((unsigned __int128)x * num / den);
}

/* How long r was in flight within (from_ns, to_ns]. */
static uint64_t overlap_ns(const struct live_request *r, int64_t from_ns, int64_t to_ns)
{
	int64_t a = r->start_ns > from_ns ? r->start_ns : from_ns;
	int64_t b = r->state == SLOT_ENDED ? r->end_ns : to_ns;

	return b > a ? (uint64_t)(b - a) : 0;
}

static enum progress_kind kind_of(const struct live_request *r)
{
	return r->tick_events ? KIND_EVENTS : r->tick_bytes ? KIND_BYTES : KIND_QUIET;
}

/* r's progress within its kind: events, bytes, or time in flight. */
static uint64_t progress(const struct live_request *r, int64_t from_ns, int64_t to_ns)
{
	switch (kind_of(r)) {
	case KIND_EVENTS:
		return r->tick_events;
	case KIND_BYTES:
		return r->tick_bytes;
	default:
		return overlap_ns(r, from_ns, to_ns);
	}
}

/* The tick's requests are the table's slots 0..cap-1, then the ended
 * ones: i in 0..cap+n_ended-1. */
static struct live_request *member(struct request_energy *re, size_t i)
{
	return i < re->cap ? &re->slots[i] : &re->ended[i - re->cap];
}

/* Pass 1: close the busy time of the tick and sum each worker's weights. */
static void sum_weights(struct request_energy *re, int64_t now_ns)
{
	uint64_t tick_ns = (uint64_t)(now_ns - re->last_tick_ns);

	for (size_t i = 0; i < re->n_workers; i++) {
		struct worker_acc *w = &re->workers[i];

		if (w->in_flight) {
			w->busy_ns += now_ns - w->busy_since_ns;
			w->busy_since_ns = now_ns;
		}
		if (w->busy_ns < 0)
			w->busy_ns = 0;
		if ((uint64_t)w->busy_ns > tick_ns)
			w->busy_ns = (int64_t)tick_ns;
		memset(w->kind_overlap, 0, sizeof(w->kind_overlap));
		memset(w->kind_progress, 0, sizeof(w->kind_progress));
		w->sum_overlap = w->given_nj = w->best_nj = 0;
		w->best = NULL;
		w->has_member = false;
	}
	for (size_t i = 0; i < re->cap + re->n_ended; i++) {
		struct live_request *r = member(re, i);
		struct worker_acc *w;
		uint64_t ov;

		if (r->state == SLOT_FREE)
			continue;
		w = &re->workers[r->rec.worker];
		ov = overlap_ns(r, re->last_tick_ns, now_ns);
		w->kind_overlap[kind_of(r)] += ov;
		w->kind_progress[kind_of(r)] += progress(r, re->last_tick_ns, now_ns);
		w->sum_overlap += ov;
		w->has_member = true;
	}
}

/* The requests' part of worker w's tick. The worker's joules come from the
 * CPU (and GPU) it used, and a model worker uses next to none while no
 * request is in flight: what it used then is taken to be its idle rate
 * (learnt from ticks with no request at all) times the tick's time without
 * a request; the rest is the requests', never less than the tick's joules
 * x the part of the tick a request was in flight. A tick with no request in
 * flight teaches the idle rate and is all non-request. */
static uint64_t requests_part(struct worker_acc *w, uint64_t worker_nj, uint64_t tick_ns)
{
	uint64_t idle_ns, idle_nj, busy_nj;
	double want;

	if (!w->has_member || !w->sum_overlap) {
		if (tick_ns && !w->busy_ns) {
			double rate = (double)worker_nj / (double)tick_ns;

			w->idle_nj_per_ns = w->idle_known ? w->idle_nj_per_ns + IDLE_RATE_WEIGHT *
								  (rate - w->idle_nj_per_ns)
							    : rate;
			w->idle_known = true;
		}
		return 0;
	}
	if (!tick_ns)
		return worker_nj;
	idle_ns = tick_ns - (uint64_t)w->busy_ns;
	want = w->idle_nj_per_ns * (double)idle_ns;
	idle_nj = want >= (double)worker_nj ? worker_nj : (uint64_t)want;
	/* never less than the requests' part of the tick's time: a request
	 * whose work is lost in the idle rate's noise still gets its time */
	busy_nj = scale(worker_nj, (uint64_t)w->busy_ns, tick_ns);
	return worker_nj - idle_nj > busy_nj ? worker_nj - idle_nj : busy_nj;
}

/* Pass 2: each kind of request (streaming events, sending bytes, quiet)
 * gets the part of the share its time in flight is of all the requests'
 * time in flight, so a request in prefill next to one streaming still gets
 * its part; within a kind the part goes by progress. Shares are rounded
 * down; the remainder goes to the member given the most, so they sum
 * exactly. */
static void share_out(struct request_energy *re, int64_t now_ns)
{
	for (size_t i = 0; i < re->cap + re->n_ended; i++) {
		struct live_request *r = member(re, i);
		struct worker_acc *w;
		enum progress_kind k;
		uint64_t kind_nj, nj;

		if (r->state == SLOT_FREE)
			continue;
		w = &re->workers[r->rec.worker];
		k = kind_of(r);
		if (!w->share_nj || !w->kind_progress[k])
			continue;
		kind_nj = scale(w->share_nj, w->kind_overlap[k], w->sum_overlap);
		nj = scale(kind_nj, progress(r, re->last_tick_ns, now_ns), w->kind_progress[k]);
		r->rec.nj += nj;
		w->given_nj += nj;
		if (nj >= w->best_nj) {
			w->best_nj = nj;
			w->best = r;
		}
	}
	for (size_t i = 0; i < re->n_workers; i++) {
		struct worker_acc *w = &re->workers[i];

		if (w->share_nj && w->best)
			w->best->rec.nj += w->share_nj - w->given_nj;
	}
}

static void push_done(struct request_energy *re, const struct live_request *r)
{
	struct request_record *rec;

	if (re->done_head == re->done_len)
		re->done_head = re->done_len = 0;
	if (re->done_len == re->done_cap) {
		size_t cap = re->done_cap ? re->done_cap * 2 : 64;
		struct request_record *d = realloc(re->done, cap * sizeof(*d));

		if (!d)
			return;	/* the record is lost; its joules stay in the totals */
		re->done = d;
		re->done_cap = cap;
	}
	rec = &re->done[re->done_len++];
	*rec = r->rec;
	rec->start_s = r->start_ns / 1e9 + re->unix_offset_s;
	rec->end_s = r->end_ns / 1e9 + re->unix_offset_s;
}

/* Pass 3: hand out the ended requests, start the next tick. */
static void retire(struct request_energy *re)
{
	for (size_t i = 0; i < re->n_ended; i++)	/* in the order they ended */
		push_done(re, &re->ended[i]);
	re->ended_last_tick = re->n_ended;
	re->n_ended = 0;
	for (size_t i = 0; i < re->cap; i++) {
		struct live_request *r = &re->slots[i];

		if (r->state == SLOT_ENDED) {
			push_done(re, r);
			r->state = SLOT_FREE;
			re->used--;
		}
		r->tick_bytes = r->tick_events = 0;
	}
}

void request_energy_tick(struct request_energy *re, double now, const uint64_t *worker_nj,
			 uint64_t *request_nj, uint64_t *nonrequest_nj)
{
	int64_t now_ns = to_ns(now);
	uint64_t tick_ns;
	bool shrunk;

	pthread_mutex_lock(&re->lock);
	/* An event stamped after now (another thread read its clock later)
	 * still belongs to this tick: stretch the tick to it. */
	if (now_ns < re->latest_event_ns)
		now_ns = re->latest_event_ns;
	if (now_ns < re->last_tick_ns)
		now_ns = re->last_tick_ns;
	tick_ns = (uint64_t)(now_ns - re->last_tick_ns);
	sum_weights(re, now_ns);
	for (size_t i = 0; i < re->n_workers; i++) {
		struct worker_acc *w = &re->workers[i];
		uint64_t nj = worker_nj ? worker_nj[i] : 0;

		w->share_nj = requests_part(w, nj, tick_ns);
		w->request_nj += w->share_nj;
		w->nonrequest_nj += nj - w->share_nj;
		if (request_nj)
			request_nj[i] = w->share_nj;
		if (nonrequest_nj)
			nonrequest_nj[i] = nj - w->share_nj;
	}
	share_out(re, now_ns);
	retire(re);
	shrunk = shrink_if_idle(re);
	for (size_t i = 0; i < re->n_workers; i++)
		re->workers[i].busy_ns = 0;
	re->last_tick_ns = re->latest_event_ns = now_ns;
	pthread_mutex_unlock(&re->lock);
	/* A burst's blocks, once freed, raise glibc's mmap threshold and come
	 * back from the heap the next time, where free() keeps them: hand the
	 * free pages back so memory follows the load. */
	if (shrunk)
		malloc_trim(0);
}

size_t request_energy_take_completed(struct request_energy *re, struct request_record *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&re->lock);
	n = re->done_len - re->done_head;
	if (n > max)
		n = max;
	if (n)
		memcpy(out, re->done + re->done_head, n * sizeof(*out));
	re->done_head += n;
	pthread_mutex_unlock(&re->lock);
	return n;
}

size_t request_energy_in_flight(struct request_energy *re, unsigned worker)
{
	size_t n = 0;

	if (worker >= re->n_workers)
		return 0;
	pthread_mutex_lock(&re->lock);
	n = re->workers[worker].in_flight;
	pthread_mutex_unlock(&re->lock);
	return n;
}

void request_energy_capacity(struct request_energy *re, size_t *in_flight_cap, size_t *ended_cap,
			     size_t *completed_cap)
{
	pthread_mutex_lock(&re->lock);
	if (in_flight_cap)
		*in_flight_cap = re->cap;
	if (ended_cap)
		*ended_cap = re->ended_cap;
	if (completed_cap)
		*completed_cap = re->done_cap;
	pthread_mutex_unlock(&re->lock);
}

void request_energy_totals(struct request_energy *re, unsigned worker, uint64_t *request_nj,
			   uint64_t *nonrequest_nj)
{
	uint64_t r = 0, n = 0;

	pthread_mutex_lock(&re->lock);
	if (worker < re->n_workers) {
		r = re->workers[worker].request_nj;
		n = re->workers[worker].nonrequest_nj;
	}
	pthread_mutex_unlock(&re->lock);
	if (request_nj)
		*request_nj = r;
	if (nonrequest_nj)
		*nonrequest_nj = n;
}

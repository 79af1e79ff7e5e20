/* Request windows from socket events; CPU-weighted joule split. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "requests.h"

struct live_request {
	struct request_info info;
	double last_out_s;
	double pending_cpu_ns;	/* CPU share since the last split */
	bool saw_out;
	bool ended;
	bool in_use;
};

struct conn {
	unsigned tgid;
	int fd;
	long cur;		/* index into reqs, or -1 */
	bool in_use;
};

/* Last CPU stamp seen of a process. */
struct proc_stamp {
	unsigned tgid;
	uint64_t cpu_ns;
	bool in_use;
};

struct request_tracker {
	size_t n_workers;
	double idle_timeout_s;
	unsigned long long next_id;
	struct conn *conns;
	size_t n_conns, cap_conns;
	struct live_request *reqs;
	size_t n_reqs, cap_reqs;
	struct proc_stamp *stamps;
	size_t n_stamps, cap_stamps;
};

struct request_tracker *requests_new(size_t n_workers, double idle_timeout_s)
{
	struct request_tracker *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	rt->n_workers = n_workers;
	rt->idle_timeout_s = idle_timeout_s > 0 ? idle_timeout_s : 5.0;
	rt->next_id = 1;
	return rt;
}

void requests_free(struct request_tracker *rt)
{
	if (!rt)
		return;
	free(rt->conns);
	free(rt->reqs);
	free(rt->stamps);
	free(rt);
}

/* Grow *items (of *cap elements of size sz) to hold one more than *n. */
static bool grow(void **items, size_t *cap, size_t n, size_t sz)
{
	void *bigger;
	size_t want;

	if (n < *cap)
		return true;
	want = *cap ? *cap * 2 : 32;
	bigger = realloc(*items, want * sz);
	if (!bigger)
		return false;
	*items = bigger;
	*cap = want;
	return true;
}

static struct conn *find_conn(struct request_tracker *rt, unsigned tgid, int fd, bool create)
{
	struct conn *free_slot = NULL;

	for (size_t i = 0; i < rt->n_conns; i++) {
		struct conn *c = &rt->conns[i];

		if (c->in_use && c->tgid == tgid && c->fd == fd)
			return c;
		if (!c->in_use && !free_slot)
			free_slot = c;
	}
	if (!create)
		return NULL;
	if (!free_slot) {
		if (!grow((void **)&rt->conns, &rt->cap_conns, rt->n_conns, sizeof(*rt->conns)))
			return NULL;
		free_slot = &rt->conns[rt->n_conns++];
	}
	*free_slot = (struct conn){ .tgid = tgid, .fd = fd, .cur = -1, .in_use = true };
	return free_slot;
}

static long new_request(struct request_tracker *rt, unsigned worker, unsigned tgid, int fd, double ts)
{
	size_t i;

	for (i = 0; i < rt->n_reqs; i++)
		if (!rt->reqs[i].in_use)
			break;
	if (i == rt->n_reqs) {
		if (!grow((void **)&rt->reqs, &rt->cap_reqs, rt->n_reqs, sizeof(*rt->reqs)))
			return -1;
		rt->n_reqs++;
	}
	memset(&rt->reqs[i], 0, sizeof(rt->reqs[i]));
	rt->reqs[i].in_use = true;
	rt->reqs[i].info.id = rt->next_id++;
	rt->reqs[i].info.worker = worker;
	rt->reqs[i].info.tgid = tgid;
	rt->reqs[i].info.fd = fd;
	rt->reqs[i].info.start_s = ts;
	return (long)i;
}

static void end_request(struct live_request *r, double ts)
{
	r->ended = true;
	r->info.end_s = r->saw_out ? r->last_out_s : ts;
}

/* The CPU process tgid used since its previous stamp goes, in equal parts,
 * to its requests open over that stretch (state before this event). */
static void charge_cpu(struct request_tracker *rt, unsigned tgid, uint64_t cpu_ns)
{
	struct proc_stamp *ps = NULL, *free_slot = NULL;
	uint64_t delta;
	size_t open = 0;

	for (size_t i = 0; i < rt->n_stamps; i++) {
		if (rt->stamps[i].in_use && rt->stamps[i].tgid == tgid) {
			ps = &rt->stamps[i];
			break;
		}
		if (!rt->stamps[i].in_use && !free_slot)
			free_slot = &rt->stamps[i];
	}
	if (!ps) {
		if (!free_slot) {
			if (!grow((void **)&rt->stamps, &rt->cap_stamps, rt->n_stamps, sizeof(*rt->stamps)))
				return;
			free_slot = &rt->stamps[rt->n_stamps++];
		}
		*free_slot = (struct proc_stamp){ tgid, cpu_ns, true };
		return;
	}
	delta = cpu_ns > ps->cpu_ns ? cpu_ns - ps->cpu_ns : 0;
	if (cpu_ns > ps->cpu_ns)
		ps->cpu_ns = cpu_ns;
	if (!delta)
		return;
	for (size_t i = 0; i < rt->n_reqs; i++)
		open += rt->reqs[i].in_use && !rt->reqs[i].ended && rt->reqs[i].info.tgid == tgid;
	if (!open)
		return;
	for (size_t i = 0; i < rt->n_reqs; i++) {
		struct live_request *r = &rt->reqs[i];

		if (r->in_use && !r->ended && r->info.tgid == tgid)
			r->pending_cpu_ns += (double)delta / (double)open;
	}
}

void requests_stamp(struct request_tracker *rt, unsigned tgid, double ts_s, uint64_t cpu_ns)
{
	(void)ts_s;
	charge_cpu(rt, tgid, cpu_ns);
}

size_t requests_open_tgids(const struct request_tracker *rt, unsigned *tgids, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->n_reqs && n < max; i++) {
		const struct live_request *r = &rt->reqs[i];
		bool seen = false;

		if (!r->in_use || r->ended)
			continue;
		for (size_t k = 0; k < n; k++)
			seen |= tgids[k] == r->info.tgid;
		if (!seen)
			tgids[n++] = r->info.tgid;
	}
	return n;
}

void requests_event(struct request_tracker *rt, unsigned worker, const struct erg_sock_event *e)
{
	double ts = (double)e->ts_ns / 1e9;
	struct conn *c;
	struct live_request *cur;

	if (worker >= rt->n_workers)
		return;
	charge_cpu(rt, e->tgid, e->cpu_ns);
	c = find_conn(rt, e->tgid, e->fd, e->dir != ERG_SOCK_CLOSE);
	if (!c)
		return;
	cur = c->cur >= 0 ? &rt->reqs[c->cur] : NULL;
	if (cur && cur->ended) {	/* ended by the idle timeout */
		cur = NULL;
		c->cur = -1;
	}

	switch (e->dir) {
	case ERG_SOCK_IN:
		if (cur && cur->saw_out) {	/* keep-alive: the next request */
			end_request(cur, ts);
			cur = NULL;
		}
		if (!cur) {
			c->cur = new_request(rt, worker, e->tgid, e->fd, ts);
			if (c->cur < 0)
				return;
			cur = &rt->reqs[c->cur];
		}
		cur->info.bytes_in += e->bytes;
		break;
	case ERG_SOCK_OUT:
		if (!cur) {	/* a response to a request read before erg attached */
			c->cur = new_request(rt, worker, e->tgid, e->fd, ts);
			if (c->cur < 0)
				return;
			cur = &rt->reqs[c->cur];
		}
		cur->info.bytes_out += e->bytes;
		cur->last_out_s = ts;
		cur->saw_out = true;
		break;
	case ERG_SOCK_CLOSE:
		if (cur)
			end_request(cur, ts);
		c->in_use = false;
		break;
	}
}

void requests_split(struct request_tracker *rt, double now_s, const uint64_t *worker_nj,
		    const double *worker_cpu_s, uint64_t *request_nj, uint64_t *nonrequest_nj)
{
	for (size_t w = 0; w < rt->n_workers; w++) {
		double cpu_requests = 0.0, denom;
		uint64_t given = 0;

		for (size_t i = 0; i < rt->n_reqs; i++)
			if (rt->reqs[i].in_use && rt->reqs[i].info.worker == w)
				cpu_requests += rt->reqs[i].pending_cpu_ns;
		/* stamps and the tick's counters are read at slightly different
		 * moments: never hand out more than the worker's joules */
		denom = worker_cpu_s[w] * 1e9 > cpu_requests ? worker_cpu_s[w] * 1e9 : cpu_requests;
		for (size_t i = 0; i < rt->n_reqs; i++) {
			struct live_request *r = &rt->reqs[i];
			uint64_t nj;

			if (!r->in_use || r->info.worker != w || r->pending_cpu_ns <= 0)
				continue;
			nj = (uint64_t)((double)worker_nj[w] * (r->pending_cpu_ns / denom));
			if (nj > worker_nj[w] - given)
				nj = worker_nj[w] - given;
			r->info.nj += nj;
			r->info.cpu_ns += (uint64_t)r->pending_cpu_ns;
			r->pending_cpu_ns = 0;
			given += nj;
		}
		request_nj[w] = given;
		nonrequest_nj[w] = worker_nj[w] - given;
	}

	/* keep-alive connections that went quiet after a response */
	for (size_t i = 0; i < rt->n_reqs; i++) {
		struct live_request *r = &rt->reqs[i];

		if (r->in_use && !r->ended && r->saw_out && now_s - r->last_out_s > rt->idle_timeout_s)
			end_request(r, now_s);
	}
}

size_t requests_take_completed(struct request_tracker *rt, struct request_info *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->n_reqs && n < max; i++) {
		struct live_request *r = &rt->reqs[i];

		/* a request's CPU share still pending goes out with the next split */
		if (!r->in_use || !r->ended || r->pending_cpu_ns > 0)
			continue;
		out[n++] = r->info;
		r->in_use = false;
		for (size_t c = 0; c < rt->n_conns; c++)
			if (rt->conns[c].in_use && rt->conns[c].cur == (long)i)
				rt->conns[c].cur = -1;
	}
	return n;
}

size_t requests_active(const struct request_tracker *rt, unsigned worker)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->n_reqs; i++)
		n += rt->reqs[i].in_use && !rt->reqs[i].ended && rt->reqs[i].info.worker == worker;
	return n;
}

/* Request windows from socket events; CPU-weighted joule split. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "requests.h"

/* What the first bytes in say about a request (see requests.h). */
enum request_kind {
	KIND_UNDECIDED,	/* the request line is still coming */
	KIND_COUNTED,
	KIND_EXCLUDED,	/* another path, or not a request line */
};

struct live_request {
	struct request_info info;
	double last_out_s;
	double pending_cpu_ns;	/* CPU share since the last split */
	double tail_cpu_ns;	/* tentative share since its last output */
	char head[ERG_SOCK_HEAD_LEN];	/* first bytes in, for the request line */
	unsigned head_len;
	enum request_kind kind;
	size_t open_pos;	/* its place in the tracker's open list while not ended */
	bool saw_out;
	bool ended;
	bool in_use;
};

struct conn {
	unsigned tgid;
	unsigned long long sock;
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
	/* slots of requests not yet ended, and free slots: an event touches
	 * only the open ones, however many ended ones wait for the tick */
	size_t *open, n_open, cap_open;
	size_t *free_slots, n_free, cap_free;
	struct proc_stamp *stamps;
	size_t n_stamps, cap_stamps;
	char paths[REQUEST_MAX_PATHS][REQUEST_PATH_LEN + 1];
	size_t n_paths;
};

struct request_tracker *requests_new(size_t n_workers, double idle_timeout_s)
{
	struct request_tracker *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	rt->n_workers = n_workers;
	rt->idle_timeout_s = idle_timeout_s > 0 ? idle_timeout_s : 5.0;
	rt->next_id = 1;
	requests_set_paths(rt, REQUEST_DEFAULT_PATHS);
	return rt;
}

void requests_free(struct request_tracker *rt)
{
	if (!rt)
		return;
	free(rt->conns);
	free(rt->reqs);
	free(rt->open);
	free(rt->free_slots);
	free(rt->stamps);
	free(rt);
}

/* Split csv into paths; the count, or -1 when it is not a valid list. */
static int parse_paths(const char *csv, char paths[REQUEST_MAX_PATHS][REQUEST_PATH_LEN + 1])
{
	size_t n = 0;
	const char *p = csv;

	if (!csv || !*csv)
		return -1;
	for (;;) {
		size_t len = strcspn(p, ",");

		if (!len || p[0] != '/' || len > REQUEST_PATH_LEN || n == REQUEST_MAX_PATHS)
			return -1;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)	/* a path ends at a space */
				return -1;
		memcpy(paths[n], p, len);
		paths[n++][len] = '\0';
		if (!p[len])
			break;
		p += len + 1;
	}
	return (int)n;
}

bool requests_paths_valid(const char *csv)
{
	char paths[REQUEST_MAX_PATHS][REQUEST_PATH_LEN + 1];

	return parse_paths(csv, paths) > 0;
}

int requests_set_paths(struct request_tracker *rt, const char *csv)
{
	char paths[REQUEST_MAX_PATHS][REQUEST_PATH_LEN + 1];
	int n = parse_paths(csv, paths);

	if (n <= 0)
		return -1;
	memcpy(rt->paths, paths, sizeof(paths));
	rt->n_paths = (size_t)n;
	return 0;
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

static struct conn *find_conn(struct request_tracker *rt, unsigned tgid, unsigned long long sock, bool create)
{
	struct conn *free_slot = NULL;

	for (size_t i = 0; i < rt->n_conns; i++) {
		struct conn *c = &rt->conns[i];

		if (c->in_use && c->tgid == tgid && c->sock == sock)
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
	*free_slot = (struct conn){ .tgid = tgid, .sock = sock, .cur = -1, .in_use = true };
	return free_slot;
}

static long new_request(struct request_tracker *rt, unsigned worker, unsigned tgid, unsigned long long sock,
			double ts)
{
	size_t i;

	if (!grow((void **)&rt->open, &rt->cap_open, rt->n_open, sizeof(*rt->open)))
		return -1;
	if (rt->n_free) {
		i = rt->free_slots[--rt->n_free];
	} else {
		if (!grow((void **)&rt->reqs, &rt->cap_reqs, rt->n_reqs, sizeof(*rt->reqs)))
			return -1;
		i = rt->n_reqs++;
	}
	memset(&rt->reqs[i], 0, sizeof(rt->reqs[i]));
	rt->reqs[i].in_use = true;
	rt->reqs[i].info.worker = worker;
	rt->reqs[i].info.tgid = tgid;
	rt->reqs[i].info.conn = sock;
	rt->reqs[i].info.start_s = ts;
	rt->reqs[i].open_pos = rt->n_open;
	rt->open[rt->n_open++] = i;
	return (long)i;
}

static bool is_method_char(char c)
{
	return c >= 'A' && c <= 'Z';
}

/* Read the request line from the head so far. final: no more bytes will
 * come (a response started, or the request ended). */
static void classify(struct request_tracker *rt, struct live_request *r, bool final)
{
	const char *h = r->head;
	size_t n = r->head_len, m = 0, p, plen;

	while (m < n && m < REQUEST_METHOD_LEN - 1 && is_method_char(h[m]))
		m++;
	if ((m == n || m + 1 == n) && !final && m < REQUEST_METHOD_LEN - 1 && (m == n || h[m] == ' '))
		return;			/* the method or the path's start is still coming */
	if (!m || m + 1 >= n || h[m] != ' ' || h[m + 1] != '/') {
		r->kind = KIND_EXCLUDED;	/* not a request line */
		return;
	}
	p = m + 1;
	plen = 0;
	while (p + plen < n && h[p + plen] != ' ' && h[p + plen] != '\r' && h[p + plen] != '\n')
		plen++;
	if (p + plen == n && n < sizeof(r->head) && !final)
		return;			/* the path is still coming */
	memcpy(r->info.method, h, m);
	r->info.method[m] = '\0';
	memcpy(r->info.path, h + p, plen);
	r->info.path[plen] = '\0';
	r->kind = KIND_EXCLUDED;
	for (size_t i = 0; i < rt->n_paths; i++)
		if (!strncmp(r->info.path, rt->paths[i], strlen(rt->paths[i])))
			r->kind = KIND_COUNTED;
}

/* "HTTP/1.x NNN" at the start of a response. */
static int status_of(const char *h, unsigned n)
{
	if (n < 12 || memcmp(h, "HTTP/", 5) || h[8] != ' ')
		return 0;
	for (int i = 9; i < 12; i++)
		if (h[i] < '0' || h[i] > '9')
			return 0;
	return (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
}

static void end_request(struct request_tracker *rt, struct live_request *r, double ts)
{
	if (r->kind == KIND_UNDECIDED)
		classify(rt, r, true);
	r->ended = true;
	/* off the open list: the last one takes its place */
	rt->open[r->open_pos] = rt->open[--rt->n_open];
	rt->reqs[rt->open[r->open_pos]].open_pos = r->open_pos;
	r->tail_cpu_ns = 0;	/* no output followed: not its work */
	r->info.end_s = r->saw_out ? r->last_out_s : ts;
}

/* Whether r is being worked on over the stretch that ends with an event
 * whose output belongs to request index out (-1: none). */
static bool working(const struct live_request *r, long idx, long out)
{
	return !r->saw_out || idx == out;
}

/* The CPU process tgid used since its previous stamp goes to its requests
 * being worked on (requests.h), state before the event at hand; out is the
 * request whose output that event is (-1: none). */
static void charge_cpu(struct request_tracker *rt, unsigned tgid, uint64_t cpu_ns, long out)
{
	struct proc_stamp *ps = NULL, *free_slot = NULL;
	uint64_t delta;
	size_t busy = 0, between = 0;

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
	/* stamps taken in softirq context or from finished slices only may
	 * run behind: never count time twice */
	delta = cpu_ns > ps->cpu_ns ? cpu_ns - ps->cpu_ns : 0;
	if (!delta)
		return;
	ps->cpu_ns = cpu_ns;
	for (size_t k = 0; k < rt->n_open; k++) {
		size_t i = rt->open[k];
		const struct live_request *r = &rt->reqs[i];

		if (r->info.tgid != tgid)
			continue;
		if (working(r, (long)i, out))
			busy++;
		else
			between++;
	}
	for (size_t k = 0; k < rt->n_open; k++) {
		size_t i = rt->open[k];
		struct live_request *r = &rt->reqs[i];

		if (r->info.tgid != tgid)
			continue;
		if (busy && working(r, (long)i, out))
			r->pending_cpu_ns += (double)delta / (double)busy;
		else if (!busy)
			r->tail_cpu_ns += (double)delta / (double)between;
	}
}

void requests_stamp(struct request_tracker *rt, unsigned tgid, double ts_s, uint64_t cpu_ns)
{
	(void)ts_s;
	charge_cpu(rt, tgid, cpu_ns, -1);
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

/* The connection's request under way, after an idle timeout ended it. */
static long current(struct request_tracker *rt, struct conn *c)
{
	if (c->cur >= 0 && rt->reqs[c->cur].ended)
		c->cur = -1;
	return c->cur;
}

void requests_event(struct request_tracker *rt, unsigned worker, const struct erg_sock_event *e)
{
	double ts = (double)e->ts_ns / 1e9;
	struct conn *c;
	struct live_request *cur;
	long idx;
	unsigned head_len = e->head_len < ERG_SOCK_HEAD_LEN ? e->head_len : ERG_SOCK_HEAD_LEN;

	if (worker >= rt->n_workers)
		return;
	c = find_conn(rt, e->tgid, e->sock, e->dir != ERG_SOCK_CLOSE);
	idx = c ? current(rt, c) : -1;
	/* the stretch up to an output is the work that produced it */
	charge_cpu(rt, e->tgid, e->cpu_ns, e->dir == ERG_SOCK_OUT ? idx : -1);
	if (!c)
		return;
	cur = idx >= 0 ? &rt->reqs[idx] : NULL;

	switch (e->dir) {
	case ERG_SOCK_IN:
		if (cur && cur->saw_out) {	/* keep-alive: the next request */
			end_request(rt, cur, ts);
			cur = NULL;
		}
		if (!cur) {
			c->cur = new_request(rt, worker, e->tgid, e->sock, ts);
			if (c->cur < 0)
				return;
			cur = &rt->reqs[c->cur];
			if (!head_len)	/* unreadable bytes: cannot tell, count it */
				cur->kind = KIND_COUNTED;
		}
		if (cur->kind == KIND_UNDECIDED) {
			unsigned room = (unsigned)sizeof(cur->head) - cur->head_len;
			unsigned n = head_len < room ? head_len : room;

			memcpy(cur->head + cur->head_len, e->head, n);
			cur->head_len += n;
			classify(rt, cur, !head_len);
		}
		cur->info.bytes_in += e->bytes;
		break;
	case ERG_SOCK_OUT:
		if (!cur) {	/* a response to a request read before erg attached */
			c->cur = new_request(rt, worker, e->tgid, e->sock, ts);
			if (c->cur < 0)
				return;
			cur = &rt->reqs[c->cur];
			cur->info.partial = true;
			cur->kind = KIND_COUNTED;
		}
		if (cur->kind == KIND_UNDECIDED)
			classify(rt, cur, true);
		if (!cur->saw_out)
			cur->info.status = status_of(e->head, head_len);
		cur->info.bytes_out += e->bytes;
		cur->info.sse_events += e->sse_events;
		cur->last_out_s = ts;
		cur->saw_out = true;
		cur->pending_cpu_ns += cur->tail_cpu_ns;	/* its output followed: its work */
		cur->tail_cpu_ns = 0;
		break;
	case ERG_SOCK_CLOSE:
		if (cur)
			end_request(rt, cur, ts);
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
			if (r->kind == KIND_EXCLUDED) {	/* not a request: non-request work */
				r->pending_cpu_ns = 0;
				continue;
			}
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
			end_request(rt, r, now_s);
	}
}

/* Ended requests in order of their end (then start, then slot). */
static int by_end(const void *a, const void *b, void *ctx)
{
	const struct live_request *reqs = ctx;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct request_info *x = &reqs[i].info, *y = &reqs[j].info;

	if (x->end_s != y->end_s)
		return x->end_s < y->end_s ? -1 : 1;
	if (x->start_s != y->start_s)
		return x->start_s < y->start_s ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Whether slot i holds a request that can go out (its CPU share still
 * pending goes out with the next split first). */
static bool takeable(const struct live_request *r)
{
	return r->in_use && r->ended && r->pending_cpu_ns <= 0;
}

static void release(struct request_tracker *rt, size_t i)
{
	rt->reqs[i].in_use = false;
	/* out of memory, the slot is not reused: only lost */
	if (grow((void **)&rt->free_slots, &rt->cap_free, rt->n_free, sizeof(*rt->free_slots)))
		rt->free_slots[rt->n_free++] = i;
	for (size_t c = 0; c < rt->n_conns; c++)
		if (rt->conns[c].in_use && rt->conns[c].cur == (long)i)
			rt->conns[c].cur = -1;
}

size_t requests_take_completed(struct request_tracker *rt, struct request_info *out, size_t max)
{
	size_t *order, n_order = 0, n = 0;

	/* excluded ones (not requests) go without a line or an id */
	for (size_t i = 0; i < rt->n_reqs; i++)
		if (takeable(&rt->reqs[i]) && rt->reqs[i].kind == KIND_EXCLUDED)
			release(rt, i);
	for (size_t i = 0; i < rt->n_reqs; i++)
		n_order += takeable(&rt->reqs[i]);
	if (!n_order || !max)
		return 0;
	order = malloc(n_order * sizeof(*order));
	if (!order)
		return 0;	/* taken at the next call */
	n_order = 0;
	for (size_t i = 0; i < rt->n_reqs; i++)
		if (takeable(&rt->reqs[i]))
			order[n_order++] = i;
	qsort_r(order, n_order, sizeof(*order), by_end, rt->reqs);
	/* ids in order of completion */
	for (; n < n_order && n < max; n++) {
		struct live_request *r = &rt->reqs[order[n]];

		r->info.id = rt->next_id++;
		out[n] = r->info;
		release(rt, order[n]);
	}
	free(order);
	return n;
}

size_t requests_active(const struct request_tracker *rt, unsigned worker)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->n_reqs; i++) {
		const struct live_request *r = &rt->reqs[i];

		n += r->in_use && !r->ended && r->info.worker == worker && r->kind != KIND_EXCLUDED;
	}
	return n;
}

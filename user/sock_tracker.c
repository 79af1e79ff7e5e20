/* Loader of the socket syscall tracepoints. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sockets.skel.h"
#include "sock_tracker.h"

#define WORKER_CACHE 1024

struct sock_tracker {
	struct sockets_bpf *skel;
	struct ring_buffer *rb;
	struct tracker *procs;
	struct request_tracker *requests;
	/* tgid -> worker of recent events: a process's last close arrives
	 * after it left the tracked map. */
	unsigned cache_tgid[WORKER_CACHE];
	int cache_worker[WORKER_CACHE];
	int events;
};

static int worker_of(struct sock_tracker *st, unsigned tgid)
{
	unsigned slot = tgid % WORKER_CACHE;
	int w;

	if (st->cache_tgid[slot] == tgid)
		return st->cache_worker[slot];
	w = tracker_worker_of(st->procs, tgid);
	if (w >= 0) {
		st->cache_tgid[slot] = tgid;
		st->cache_worker[slot] = w;
	}
	return w;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct sock_tracker *st = ctx;
	const struct erg_sock_event *e = data;
	int w;

	if (size < sizeof(*e))
		return 0;
	w = worker_of(st, e->tgid);
	if (w >= 0)
		requests_event(st->requests, (unsigned)w, e);
	st->events++;
	return 0;
}

struct sock_tracker *sock_tracker_open(struct tracker *procs, struct request_tracker *requests,
				       char *err, size_t errlen)
{
	struct sock_tracker *st = calloc(1, sizeof(*st));
	int rc;

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->procs = procs;
	st->requests = requests;
	st->skel = sockets_bpf__open();
	if (!st->skel) {
		snprintf(err, errlen, "cannot open the socket BPF programs: %s", strerror(errno));
		goto fail;
	}
	rc = bpf_map__reuse_fd(st->skel->maps.procs, tracker_procs_fd(procs));
	if (!rc)
		rc = bpf_map__reuse_fd(st->skel->maps.cpu_state, tracker_cpu_state_fd(procs));
	if (!rc)
		rc = sockets_bpf__load(st->skel);
	if (rc) {
		snprintf(err, errlen, "cannot load the socket BPF programs: %s", strerror(-rc));
		goto fail;
	}
	rc = sockets_bpf__attach(st->skel);
	if (rc) {
		snprintf(err, errlen, "cannot attach the syscall tracepoints: %s (is tracefs mounted? mount -t tracefs tracefs /sys/kernel/tracing)",
			 strerror(-rc));
		goto fail;
	}
	st->rb = ring_buffer__new(bpf_map__fd(st->skel->maps.events), on_event, st, NULL);
	if (!st->rb) {
		snprintf(err, errlen, "cannot open the socket event ring buffer: %s", strerror(errno));
		goto fail;
	}
	return st;
fail:
	sock_tracker_close(st);
	return NULL;
}

int sock_tracker_poll(struct sock_tracker *st)
{
	int rc;

	st->events = 0;
	rc = ring_buffer__consume(st->rb);
	return rc < 0 ? rc : st->events;
}

int sock_tracker_wait(struct sock_tracker *st, int timeout_ms)
{
	int rc;

	st->events = 0;
	rc = ring_buffer__poll(st->rb, timeout_ms);
	return rc < 0 ? rc : st->events;
}

int sock_tracker_fd(const struct sock_tracker *st)
{
	return ring_buffer__epoll_fd(st->rb);
}

unsigned long long sock_tracker_dropped(const struct sock_tracker *st)
{
	return st->skel->bss->dropped_events;
}

void sock_tracker_close(struct sock_tracker *st)
{
	if (!st)
		return;
	ring_buffer__free(st->rb);
	sockets_bpf__destroy(st->skel);
	free(st);
}

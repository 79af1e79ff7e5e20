/* Loader of the socket programs: one hook set of three, picked at run time. */
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
	enum sock_hooks mode;
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

const char *const sock_hooks_names[] = { "auto", "tp_btf", "raw_tp", "syscalls", NULL };
/* Section prefix of each set's programs. */
static const char *const hook_sections[] = { "", "tp_btf/", "raw_tp/", "tracepoint/" };

int sock_hooks_parse(const char *name)
{
	for (int i = 0; sock_hooks_names[i]; i++)
		if (name && !strcmp(name, sock_hooks_names[i]))
			return i;
	return -1;
}

/* Open, load and attach one hook set; 0 or a negative errno. */
static int load_set(struct sock_tracker *st, enum sock_hooks set)
{
	const char *prefix = hook_sections[set];
	struct bpf_program *prog;
	int rc;

	st->skel = sockets_bpf__open();
	if (!st->skel)
		return -errno;
	bpf_object__for_each_program(prog, st->skel->obj)
		bpf_program__set_autoload(prog, !strncmp(bpf_program__section_name(prog), prefix, strlen(prefix)));
	rc = bpf_map__reuse_fd(st->skel->maps.procs, tracker_procs_fd(st->procs));
	if (!rc)
		rc = bpf_map__reuse_fd(st->skel->maps.cpu_state, tracker_cpu_state_fd(st->procs));
	if (!rc)
		rc = bpf_map__reuse_fd(st->skel->maps.thread_marks, tracker_thread_marks_fd(st->procs));
	if (!rc)
		rc = sockets_bpf__load(st->skel);
	if (!rc)
		rc = sockets_bpf__attach(st->skel);
	if (rc) {
		sockets_bpf__destroy(st->skel);
		st->skel = NULL;
	}
	return rc;
}

struct sock_tracker *sock_tracker_open(struct tracker *procs, struct request_tracker *requests,
				       enum sock_hooks hooks, char *err, size_t errlen)
{
	struct sock_tracker *st = calloc(1, sizeof(*st));
	enum sock_hooks first = hooks, last = hooks;
	int rc = -ENOENT;

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->procs = procs;
	st->requests = requests;
	if (hooks == SOCK_HOOKS_AUTO) {
		/* tp_btf is cheaper; an erg told --raw-tp uses raw_tp here too */
		first = strcmp(tracker_mode(procs), "raw_tp") ? SOCK_HOOKS_TP_BTF : SOCK_HOOKS_RAW_TP;
		last = SOCK_HOOKS_SYSCALLS;
	}
	for (enum sock_hooks set = first; set <= last && !st->skel; set++) {
		rc = load_set(st, set);
		if (!rc)
			st->mode = set;
	}
	if (!st->skel) {
		if (last == SOCK_HOOKS_SYSCALLS)
			snprintf(err, errlen, "cannot load or attach the socket programs (%s): %s; the sock tracepoints need kernel 6.3+, the syscall tracepoints tracefs (mount -t tracefs tracefs /sys/kernel/tracing)",
				 sock_hooks_names[last], strerror(rc < 0 ? -rc : rc));
		else
			snprintf(err, errlen, "cannot load or attach the %s socket programs: %s (the sock tracepoints need kernel 6.3+; --socket-hooks auto picks what this kernel has)",
				 sock_hooks_names[last], strerror(rc < 0 ? -rc : rc));
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

const char *sock_tracker_mode(const struct sock_tracker *st)
{
	return sock_hooks_names[st->mode];
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
	/* and what came in meanwhile, so a timeout drains too */
	if (rc >= 0)
		rc = ring_buffer__consume(st->rb);
	return rc < 0 ? rc : st->events;
}

int sock_tracker_fd(const struct sock_tracker *st)
{
	return ring_buffer__epoll_fd(st->rb);
}

unsigned long long sock_tracker_dropped(const struct sock_tracker *st)
{
	return st->skel ? st->skel->bss->dropped_events : 0;
}

void sock_tracker_close(struct sock_tracker *st)
{
	if (!st)
		return;
	ring_buffer__free(st->rb);
	sockets_bpf__destroy(st->skel);
	free(st);
}

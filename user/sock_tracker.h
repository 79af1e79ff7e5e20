/* The loader of bpf/sockets.bpf.c: socket reads/writes of the tracked
 * processes, fed to a request_tracker (user/requests.h). Classic syscall
 * tracepoints: tracefs must be mounted on /sys/kernel/tracing. */
#ifndef ERG_SOCK_TRACKER_H
#define ERG_SOCK_TRACKER_H

#include <stddef.h>
#include "requests.h"
#include "tracker.h"

struct sock_tracker;

/* Shares the tracked-process map of `procs`. NULL with a reason in err. */
struct sock_tracker *sock_tracker_open(struct tracker *procs, struct request_tracker *requests,
				       char *err, size_t errlen);
/* Drain the ring buffer into the request tracker (non-blocking). Returns
 * the number of events read, or < 0 on error. */
int sock_tracker_poll(struct sock_tracker *st);
/* Block up to timeout_ms for events and drain them (ring_buffer__poll).
 * Returns the number read, or a negative errno (-EINTR on a signal). */
int sock_tracker_wait(struct sock_tracker *st, int timeout_ms);
/* The epoll descriptor that is readable when events wait, for an event loop
 * of the caller's (then sock_tracker_poll drains). */
int sock_tracker_fd(const struct sock_tracker *st);
/* Events the kernel side could not queue (ring buffer full). */
unsigned long long sock_tracker_dropped(const struct sock_tracker *st);
void sock_tracker_close(struct sock_tracker *st);

#endif

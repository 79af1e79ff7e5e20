/* The loader of bpf/sockets.bpf.c: socket sends/receives of the tracked
 * processes, fed to a request_tracker (user/requests.h).
 *
 * Hooks, picked at run time (the first that loads and attaches):
 *   tp_btf   sock:sock_send_length, sock:sock_recv_length and
 *            sock:inet_sock_set_state (kernel 6.3+), BTF-typed;
 *   raw_tp   the same tracepoints, untyped;
 *   syscalls syscalls:sys_enter/exit_* of read, write, send, recv and close,
 *            for older kernels: this one slows every syscall of every process
 *            on the node and needs tracefs on /sys/kernel/tracing. */
#ifndef ERG_SOCK_TRACKER_H
#define ERG_SOCK_TRACKER_H

#include <stddef.h>
#include "requests.h"
#include "tracker.h"

struct sock_tracker;

/* The hook sets, in the order they are tried. */
enum sock_hooks { SOCK_HOOKS_AUTO = 0, SOCK_HOOKS_TP_BTF, SOCK_HOOKS_RAW_TP, SOCK_HOOKS_SYSCALLS };

/* The names of enum sock_hooks, in order, NULL-terminated (cli_choice). */
extern const char *const sock_hooks_names[];

/* "tp_btf", "raw_tp" or "syscalls" to a hook set; -1 for anything else
 * ("auto" is SOCK_HOOKS_AUTO). */
int sock_hooks_parse(const char *name);

/* Shares the tracked-process map of `procs`. hooks: SOCK_HOOKS_AUTO tries
 * tp_btf (raw_tp when procs itself runs raw_tp), then raw_tp, then syscalls;
 * another value loads that set only. NULL with a reason in err. */
struct sock_tracker *sock_tracker_open(struct tracker *procs, struct request_tracker *requests,
				       enum sock_hooks hooks, char *err, size_t errlen);
/* "tp_btf", "raw_tp" or "syscalls": the hook set that runs. */
const char *sock_tracker_mode(const struct sock_tracker *st);
/* Drain the ring buffer into the request tracker (non-blocking). Returns
 * the number of events read, or < 0 on error. */
int sock_tracker_poll(struct sock_tracker *st);
/* Block up to timeout_ms for events and drain them (ring_buffer__poll, then
 * whatever else waits). Returns the number read, or a negative errno (-EINTR
 * on a signal). */
int sock_tracker_wait(struct sock_tracker *st, int timeout_ms);
/* The epoll descriptor that is readable when events wait, for an event loop
 * of the caller's (then sock_tracker_poll drains). */
int sock_tracker_fd(const struct sock_tracker *st);
/* Events the kernel side could not queue (ring buffer full). */
unsigned long long sock_tracker_dropped(const struct sock_tracker *st);
void sock_tracker_close(struct sock_tracker *st);

#endif

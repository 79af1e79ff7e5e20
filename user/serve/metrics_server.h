/* A minimal Prometheus /metrics listener for commands without a proxy of
 * their own (erg top --metrics ADDR:PORT); erg serve answers /metrics on its
 * proxy instead.
 *
 * One background thread, one listening socket, one connection at a time:
 * scrapes are rare and small, so nothing is gained by more. Each connection
 * has METRICS_SERVER_TIMEOUT_S to send its request head and take the answer, then
 * it is closed (Connection: close), so a slow or silent client holds the
 * next scrape back by that much at most. Requests are framed by
 * http_parse.h (llhttp, strict), never parsed by hand:
 *   GET or HEAD /metrics (any query)   200, text/plain; version=0.0.4
 *   /metrics with another method       405
 *   any other target                   404
 *   a malformed request                its status from http_parse (400, 431, ...)
 *
 * render is called on the server's thread for each scrape, with a buffer
 * already emptied: it must take whatever lock guards the data it reads (erg
 * top: the lock its tick holds while it updates the rows) and append the
 * text (prom_render_erg). */
#ifndef ERG_METRICS_SERVER_H
#define ERG_METRICS_SERVER_H

#include <stdint.h>
#include "prom.h"

#define METRICS_SERVER_TIMEOUT_S 2.0

typedef void (*metrics_render_fn)(void *ud, struct prom_buf *out);

struct metrics_server;

/* Listen on host:port (a numeric address or a name; port 0 picks a free
 * one, see metrics_server_port) and start serving. NULL with one line in err
 * ("cannot listen on 127.0.0.1:9100: Address already in use; ...") on
 * failure. */
struct metrics_server *metrics_server_start(const char *host, uint16_t port, metrics_render_fn render,
					    void *ud, char *err, size_t errlen);

/* The port it listens on (the one chosen when started with port 0). */
uint16_t metrics_server_port(const struct metrics_server *ms);

/* Scrapes answered with 200 so far. */
unsigned long metrics_server_scrapes(const struct metrics_server *ms);

/* Stop the thread (a scrape in progress finishes first), close, free.
 * NULL is fine. */
void metrics_server_stop(struct metrics_server *ms);

#endif

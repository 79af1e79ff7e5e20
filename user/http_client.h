/* A minimal blocking HTTP/1.1 client for talking to model workers on this
 * machine (erg calibrate): one request per connection, Content-Length or
 * chunked bodies, loopback addresses only. */
#ifndef ERG_HTTP_CLIENT_H
#define ERG_HTTP_CLIENT_H

#include <stddef.h>

struct http_url {
	char host[64];		/* numeric loopback address */
	int port;
	char path[256];
};

/* Parse "http://127.0.0.1:8080[/path]" (also localhost, [::1]). -1 with a
 * reason in err if it is not an http URL on a loopback address. */
int http_parse_url(const char *url, struct http_url *out, char *err, size_t errlen);

/* POST body (JSON) to url's host:port at path. On success returns the HTTP
 * status and sets *response (malloc'd, NUL-terminated body; caller frees).
 * -1 with a reason in err on connection or protocol failure. */
int http_post_json(const struct http_url *url, const char *path, const char *body,
		   double timeout_s, char **response, char *err, size_t errlen);

#endif

/* Error messages into a caller's buffer: the modules that can fail write one
 * line there, and the command that called them prints it. */
#ifndef ERG_ERRBUF_H
#define ERG_ERRBUF_H

#include <stddef.h>

/* printf into err (errlen bytes, always terminated); nothing if err is NULL. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

/* A growable byte buffer for the proxy: data[off..len) is what is still to
 * be sent or parsed. */
#ifndef ERG_SERVE_BUF_H
#define ERG_SERVE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbuf {
	char *data;
	size_t off, len, cap;
};

/* Room for at least extra more bytes after len; false on no memory. */
static inline bool sbuf_reserve(struct sbuf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *d;

	if (b->len + extra <= b->cap)
		return true;
	while (cap < b->len + extra)
		cap *= 2;
	d = realloc(b->data, cap);
	if (!d)
		return false;
	b->data = d;
	b->cap = cap;
	return true;
}

static inline bool sbuf_add(struct sbuf *b, const void *p, size_t n)
{
	if (!sbuf_reserve(b, n))
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

static inline bool sbuf_adds(struct sbuf *b, const char *s)
{
	return sbuf_add(b, s, strlen(s));
}

/* A number in decimal, without printf: the request path writes a few per
 * request. */
static inline bool sbuf_addu(struct sbuf *b, unsigned long long v)
{
	char digits[24];
	size_t n = sizeof(digits);

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return sbuf_add(b, digits + n, sizeof(digits) - n);
}

__attribute__((format(printf, 2, 3)))
static inline bool sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* one pass when it fits in the room left (the usual case on the
	 * request path), a second only after growing */
	size_t room = b->data ? b->cap - b->len : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	if ((size_t)n >= room) {
		if (!sbuf_reserve(b, (size_t)n + 1))
			return false;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return true;
}

static inline size_t sbuf_pending(const struct sbuf *b)
{
	return b->len - b->off;
}

/* Drop data[0..off) by moving the rest to the front. */
static inline void sbuf_compact(struct sbuf *b)
{
	if (b->off && b->off < b->len)
		memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

/* Empty it; give large allocations back (an idle connection stays small). */
static inline void sbuf_reset(struct sbuf *b, size_t keep_cap)
{
	b->off = b->len = 0;
	if (b->cap > keep_cap) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

static inline void sbuf_free(struct sbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

#endif

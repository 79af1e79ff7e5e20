/* Untrusted input files: regular files only, bounded, escaped in messages
 * (see textfile.h). */
#include "textfile.h"
#include "cli.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Debian's libinih makes its line buffer settings run-time variables; where
 * they exist lines of any length are parsed, elsewhere a line longer than
 * INI_MAX_LINE is reported by its number (the reader stops there). */
#pragma weak ini_max_line
#pragma weak ini_use_stack
#pragma weak ini_allow_realloc

const char *textfile_quote(const char *path, char out[TEXTFILE_QUOTED_MAX])
{
	return cli_quote(path, out, TEXTFILE_QUOTED_MAX);
}

const char *textfile_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "a regular file";
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFSOCK: return "a socket";
	default: return "not a regular file";
	}
}

int textfile_open(const char *path, const char *what, int flags, struct stat *st,
		  char *err, size_t errlen)
{
	char q[TEXTFILE_QUOTED_MAX];
	int fd;

	textfile_quote(path, q);
	if (!path || !*path) {
		errbuf_set(err, errlen, "%s: the file name is empty; give a file", what);
		return -1;
	}
	/* O_NONBLOCK: opening a FIFO with no writer must not hang us; it is
	 * refused just below. It changes nothing for a regular file. */
	fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		errbuf_set(err, errlen, "cannot open %s '%s': %s", what, q, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		errbuf_set(err, errlen, "%s '%s': cannot stat: %s", what, q, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		errbuf_set(err, errlen, "%s '%s' is %s, not a regular file; give a file",
			   what, q, textfile_kind(st->st_mode));
		close(fd);
		return -1;
	}
	return fd;
}

/* Read up to max_bytes + 1 bytes (one more tells a file over the cap, also
 * one that grows while we read). */
static int read_all(int fd, struct textfile *tf, const char *what, size_t max_bytes,
		    size_t hint, char *err, size_t errlen)
{
	size_t cap = (hint < max_bytes ? hint : max_bytes) + 2;

	tf->data = malloc(cap);
	if (!tf->data)
		goto oom;
	for (;;) {
		if (tf->len + 1 == cap) {
			size_t ncap = cap * 2 > max_bytes + 2 ? max_bytes + 2 : cap * 2;
			char *n = ncap > cap ? realloc(tf->data, ncap) : NULL;

			if (!n)
				goto oom;
			tf->data = n;
			cap = ncap;
		}
		ssize_t got = read(fd, tf->data + tf->len, cap - 1 - tf->len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			errbuf_set(err, errlen, "%s '%s': read failed: %s", what, tf->name, strerror(errno));
			return -1;
		}
		if (got == 0)
			break;
		tf->len += (size_t)got;
		if (tf->len > max_bytes) {
			errbuf_set(err, errlen, "%s '%s' is larger than %zu bytes (%zu MiB), the most erg reads; give a smaller file",
				   what, tf->name, max_bytes, max_bytes >> 20);
			return -1;
		}
	}
	tf->data[tf->len] = '\0';
	return 0;
oom:
	errbuf_set(err, errlen, "%s '%s': out of memory", what, tf->name);
	return -1;
}

int textfile_load(struct textfile *tf, const char *path, const char *what, size_t max_bytes,
		  char *err, size_t errlen)
{
	struct stat st;
	const char *nul;
	int fd;

	memset(tf, 0, sizeof(*tf));
	textfile_quote(path, tf->name);
	fd = textfile_open(path, what, O_RDONLY, &st, err, errlen);
	if (fd < 0)
		return -1;
	if ((unsigned long long)st.st_size > max_bytes) {
		errbuf_set(err, errlen, "%s '%s' is larger than %zu bytes (%zu MiB), the most erg reads; give a smaller file",
			   what, tf->name, max_bytes, max_bytes >> 20);
		close(fd);
		return -1;
	}
	if (read_all(fd, tf, what, max_bytes, (size_t)st.st_size, err, errlen)) {
		close(fd);
		textfile_free(tf);
		return -1;
	}
	close(fd);
	nul = memchr(tf->data, '\0', tf->len);
	if (nul) {
		int line = 1;

		for (const char *p = tf->data; p < nul; p++)
			line += *p == '\n';
		errbuf_set(err, errlen, "%s:%d: a NUL byte: this is not a text file", tf->name, line);
		textfile_free(tf);
		return -1;
	}
	return 0;
}

void textfile_free(struct textfile *tf)
{
	free(tf->data);
	tf->data = NULL;
	tf->len = tf->pos = 0;
}

char *textfile_next_line(struct textfile *tf)
{
	char *line, *nl;

	if (!tf->data || tf->pos >= tf->len)
		return NULL;
	line = tf->data + tf->pos;
	nl = memchr(line, '\n', tf->len - tf->pos);
	if (nl) {
		*nl = '\0';
		tf->pos = (size_t)(nl - tf->data) + 1;
	} else {
		tf->pos = tf->len;
	}
	size_t n = strlen(line);
	if (n && line[n - 1] == '\r')
		line[n - 1] = '\0';
	tf->lineno++;
	return line;
}

struct ini_feed {
	const char *data;
	size_t len, pos;
	bool at_line_start;
	int *lineno;
	int line;
	bool cut_long;		/* inih's buffer is fixed: stop at a long line */
	int long_line;		/* the first such line */
};

/* inih asks for at most num-1 bytes at a time; with a growing buffer it
 * asks again for the rest of a long line, so lines are counted at their
 * first byte only. */
static char *ini_feed_reader(char *str, int num, void *stream)
{
	struct ini_feed *f = stream;
	size_t room = num > 1 ? (size_t)num - 1 : 0, n = 0;

	if (f->pos >= f->len || !room || f->long_line)
		return NULL;
	if (f->at_line_start) {
		f->line++;
		if (f->lineno)
			*f->lineno = f->line;
	}
	while (n < room && f->pos < f->len) {
		char c = f->data[f->pos++];

		str[n++] = c;
		if (c == '\n')
			break;
	}
	str[n] = '\0';
	f->at_line_start = str[n - 1] == '\n';
	if (f->cut_long && !f->at_line_start && f->pos < f->len) {
		f->long_line = f->line;	/* never parse half a line */
		return NULL;
	}
	return str;
}

int textfile_ini_parse(const struct textfile *tf, ini_handler handler, void *user, int *lineno)
{
	struct ini_feed feed = { .data = tf->data ? tf->data : "", .len = tf->len,
				 .at_line_start = true, .lineno = lineno };
	bool tunable = &ini_max_line && &ini_use_stack && &ini_allow_realloc;
	int saved_max = 0, rc;
	bool saved_stack = true, saved_realloc = false;

	if (lineno)
		*lineno = 0;
	if (tunable) {
		saved_max = ini_max_line;
		saved_stack = ini_use_stack;
		saved_realloc = ini_allow_realloc;
		/* A heap buffer that may grow to the whole file: no line is cut. */
		ini_use_stack = false;
		ini_allow_realloc = true;
		ini_max_line = tf->len + 3 > (size_t)saved_max ? (int)(tf->len + 3) : saved_max;
	}
	feed.cut_long = !tunable;
	rc = ini_parse_stream(ini_feed_reader, &feed, handler, user);
	if (feed.long_line && (rc == 0 || rc > feed.long_line))
		rc = feed.long_line;
	if (tunable) {
		ini_max_line = saved_max;
		ini_use_stack = saved_stack;
		ini_allow_realloc = saved_realloc;
	}
	return rc;
}

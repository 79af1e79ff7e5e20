/* Reading the files erg is handed (--config, --scenario, --supply-trace,
 * traces named in a scenario, journals): one way to open them, so every
 * reader refuses the same things with the same message.
 *
 * - Regular files only: a FIFO, device, directory or socket is refused by
 *   name ("... is a FIFO, not a regular file"). /dev/zero cannot make a
 *   reader grow or spin, a FIFO cannot make it block (opened O_NONBLOCK).
 * - Text files are read whole, up to a cap given in the message, and must
 *   hold no NUL byte (the line is named).
 * - Paths in messages are escaped with cli_quote: a file name cannot put
 *   escape codes on the terminal.
 * - INI files go to libinih with no line-length limit and exact line
 *   numbers (textfile_ini_parse). */
#ifndef ERG_TEXTFILE_H
#define ERG_TEXTFILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <ini.h>

/* Caps for text inputs: configs and scenarios are small; a supply trace at
 * one row per second for a month is about 60 MB. */
#define TEXTFILE_MAX_CONFIG (1u << 20)		/* 1 MiB */
#define TEXTFILE_MAX_TRACE (128u << 20)		/* 128 MiB */

/* Room for a path escaped by textfile_quote. */
#define TEXTFILE_QUOTED_MAX 300

/* path escaped for a message (control characters as \xNN, cut with "..."). */
const char *textfile_quote(const char *path, char out[TEXTFILE_QUOTED_MAX]);

/* "a FIFO", "a directory", "a character device", ... for st_mode. */
const char *textfile_kind(mode_t mode);

/* Open path with flags | O_NONBLOCK | O_CLOEXEC and check that it is a
 * regular file (st filled in). The fd, or -1 with one line in err:
 *   "cannot open WHAT 'PATH': No such file or directory"
 *   "WHAT 'PATH' is a FIFO, not a regular file; give a file" */
int textfile_open(const char *path, const char *what, int flags, struct stat *st,
		  char *err, size_t errlen);

struct textfile {
	char *data;			/* the bytes, NUL-terminated */
	size_t len;
	size_t pos;			/* textfile_next_line's place */
	int lineno;			/* line last returned by textfile_next_line */
	char name[TEXTFILE_QUOTED_MAX];	/* the path, escaped for messages */
};

/* Read a regular file whole (at most max_bytes, no NUL byte). 0, or -1 with
 * one line in err naming the file (and the line of a NUL byte). */
int textfile_load(struct textfile *tf, const char *path, const char *what, size_t max_bytes,
		  char *err, size_t errlen);
void textfile_free(struct textfile *tf);

/* The next line, NUL-terminated in place without its "\n" or "\r\n", or
 * NULL at the end; tf->lineno is its number (from 1). */
char *textfile_next_line(struct textfile *tf);

/* Feed the whole file to libinih (handler as for ini_parse), lines of any
 * length (with a libinih built without run-time line settings, a line
 * longer than INI_MAX_LINE stops the parse and is returned as the bad line). *lineno (may be NULL) holds the number of the line being parsed
 * while the handler runs. Returns ini_parse's result: 0, the number of the
 * first line inih could not parse, or -1 out of memory. */
int textfile_ini_parse(const struct textfile *tf, ini_handler handler, void *user, int *lineno);

#endif

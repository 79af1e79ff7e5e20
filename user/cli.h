/* One command-line layer for every erg command: a getopt_long driver whose
 * messages name the long option, and one parser per kind of value (numbers,
 * durations, choices, pids, host:port, lists), each reading the whole string,
 * refusing NaN and infinities and checking a range.
 *
 * Every parser writes one line into err that names the option and the value
 * (control characters escaped) and says what was expected; the command prints
 * "erg CMD: <err>" and exits 2. Config-file readers use the same parsers with
 * a key name ("[power] idle_watts") in place of the option. */
#ifndef ERG_CLI_H
#define ERG_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returned by cli_next() after it printed a message for a bad option. */
#define CLI_ERROR (-2)

struct cli {
	const char *cmd;		/* "erg top": the prefix of every message */
	const struct option *longopts;
	char optstring[96];		/* ":" + the short options (permuting) */
	int longindex;			/* index in longopts of the option just returned, or -1 */
	const char *name;		/* "--idle-watts" or "-p": the option just returned */
	char name_buf[40];
};

/* shortopts as for getopt_long, without a leading '+' or ':' (options and
 * operands may come in any order: getopt_long permutes them). */
void cli_init(struct cli *c, const char *cmd, const char *shortopts, const struct option *longopts);

/* The next option, as getopt_long returns it (optarg set), -1 when there are
 * no more (operands are then argv[optind..argc-1]), or CLI_ERROR after it
 * printed one line such as
 *   erg top: option '--supply-watts' needs a value (see erg top --help)
 *   erg top: unknown option '--frobnicate' (see erg top --help)
 *   erg top: option '--json' takes no value (see erg top --help) */
int cli_next(struct cli *c, int argc, char **argv);

/* Print "CMD: msg" (msg already formatted, e.g. from a parser's err) and
 * return 2, the exit status of a usage error. */
int cli_fail(const struct cli *c, const char *msg);

/* ---- values ----
 * opt: the option or key the value came from, for the message ("--slot").
 * All return 0 on success, -1 with the message in err. */

/* A finite number in [min, max] (whole string, strtod syntax: 1.5, 2e3).
 * what: "watts" -> "--idle-watts 'x': expected watts, a number from 0 to 1e+06". */
int cli_double(const char *opt, const char *s, double min, double max, const char *what,
	       double *out, char *err, size_t errlen);
/* The same with min excluded: (min, max]. */
int cli_double_above(const char *opt, const char *s, double min, double max, const char *what,
		     double *out, char *err, size_t errlen);
/* A whole number in [min, max], decimal, no sign games ("12abc", "1e3" refused). */
int cli_long(const char *opt, const char *s, long long min, long long max, const char *what,
	     long long *out, char *err, size_t errlen);
/* Seconds in [min_s, max_s]: "2", "2.5", "2s", "500ms", "1m", "1h". */
int cli_duration(const char *opt, const char *s, double min_s, double max_s, double *out,
		 char *err, size_t errlen);
/* One of choices (NULL-terminated); *out is its index. The message lists them. */
int cli_choice(const char *opt, const char *s, const char *const *choices, int *out,
	       char *err, size_t errlen);
/* A process id: a whole number from 1 to 4194304 (PID_MAX_LIMIT). */
int cli_pid(const char *opt, const char *s, int *out, char *err, size_t errlen);
/* "HOST:PORT" or "[V6]:PORT" or ":PORT" (host then "127.0.0.1"); port 1-65535.
 * host gets the address without brackets. */
int cli_hostport(const char *opt, const char *s, char *host, size_t hostlen, uint16_t *port,
		 char *err, size_t errlen);
/* Exactly n finite numbers separated by sep ("0.8:1.2:0.02" with sep ':'). */
int cli_double_list(const char *opt, const char *s, char sep, size_t n, double *out,
		    char *err, size_t errlen);

/* Copy s into out for echoing it in a message or on a terminal: control
 * characters, DEL and every byte >= 0x80 (C1 controls hide there) become
 * \xNN, and a long value is cut with "...". Always terminates out (outlen > 4). */
const char *cli_quote(const char *s, char *out, size_t outlen);

#endif

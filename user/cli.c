/* See cli.h. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "errbuf.h"

#define PID_MAX_LIMIT 4194304

void cli_init(struct cli *c, const char *cmd, const char *shortopts, const struct option *longopts)
{
	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	c->longopts = longopts;
	c->longindex = -1;
	snprintf(c->optstring, sizeof(c->optstring), ":%s", shortopts ? shortopts : "");
	optind = 0;	/* 0: glibc re-initialises, so a second parse starts clean */
	opterr = 0;
}

int cli_fail(const struct cli *c, const char *msg)
{
	fprintf(stderr, "%s: %s\n", c->cmd, msg);
	return 2;
}

/* The long option an argument spells ("--json=3" -> the "json" entry). */
static const struct option *long_named(const struct cli *c, const char *arg)
{
	size_t n;

	if (strncmp(arg, "--", 2))
		return NULL;
	arg += 2;
	n = strcspn(arg, "=");
	for (const struct option *o = c->longopts; o && o->name; o++)
		if (strlen(o->name) == n && !strncmp(o->name, arg, n))
			return o;
	/* getopt_long also accepts unambiguous prefixes */
	for (const struct option *o = c->longopts; o && o->name; o++)
		if (n && !strncmp(o->name, arg, n))
			return o;
	return NULL;
}

/* "--abbrev[=...]" names no option exactly and abbreviates several.
 * getopt_long takes the first of them when they share has_arg, flag and val
 * (--supply for --supply-watts, with --supply-trace there too): refuse. */
static bool ambiguous(const struct cli *c, const char *arg)
{
	size_t n;
	int k = 0;

	if (strncmp(arg, "--", 2))
		return false;
	arg += 2;
	n = strcspn(arg, "=");
	for (const struct option *o = c->longopts; n && o && o->name; o++) {
		if (strlen(o->name) == n && !strncmp(o->name, arg, n))
			return false;
		k += !strncmp(o->name, arg, n);
	}
	return k > 1;
}

static void set_name(struct cli *c, int val, const char *arg)
{
	/* a short option is named by its long twin, which --help lists first */
	for (int i = 0; c->longindex < 0 && c->longopts && c->longopts[i].name; i++)
		if (c->longopts[i].val == val && !c->longopts[i].flag)
			c->longindex = i;
	if (c->longindex >= 0)
		snprintf(c->name_buf, sizeof(c->name_buf), "--%s", c->longopts[c->longindex].name);
	else if (arg && !strncmp(arg, "--", 2))
		snprintf(c->name_buf, sizeof(c->name_buf), "%.*s", (int)strcspn(arg, "="), arg);
	else
		snprintf(c->name_buf, sizeof(c->name_buf), "-%c", val > 0 && val < 128 ? val : '?');
	c->name = c->name_buf;
}

int cli_next(struct cli *c, int argc, char **argv)
{
	const struct option *lo;
	const char *arg;
	char q[80];
	int opt;

	c->longindex = -1;
	opt = getopt_long(argc, argv, c->optstring, c->longopts, &c->longindex);
	if (opt == -1)
		return -1;
	/* the argv entry getopt just finished with (a long option is a whole one) */
	arg = optind >= 1 && optind - 1 < argc ? argv[optind - 1] : "";
	if (opt != '?' && opt != ':' && !ambiguous(c, arg)) {
		set_name(c, opt, arg);
		return opt;
	}
	lo = long_named(c, arg);
	if (ambiguous(c, arg))
		fprintf(stderr, "%s: ambiguous option '%s': it abbreviates several options (see %s --help)\n", c->cmd,
			cli_quote(arg, q, sizeof(q)), c->cmd);
	else if (opt == ':' && lo)
		fprintf(stderr, "%s: option '--%s' needs a value (see %s --help)\n", c->cmd, lo->name, c->cmd);
	else if (opt == ':')
		fprintf(stderr, "%s: option '-%c' needs a value (see %s --help)\n", c->cmd, optopt, c->cmd);
	else if (lo && lo->has_arg == no_argument && strchr(arg, '='))
		fprintf(stderr, "%s: option '--%s' takes no value (see %s --help)\n", c->cmd, lo->name, c->cmd);
	else if (!strncmp(arg, "--", 2))
		fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", c->cmd, cli_quote(arg, q, sizeof(q)), c->cmd);
	else if (optopt > ' ' && optopt < 127)
		fprintf(stderr, "%s: unknown option '-%c' (see %s --help)\n", c->cmd, optopt, c->cmd);
	else
		fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", c->cmd, cli_quote(arg, q, sizeof(q)), c->cmd);
	return CLI_ERROR;
}

const char *cli_quote(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!out || outlen < 5)
		return "";
	if (!s)
		s = "(null)";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool esc = *p < 0x20 || *p >= 0x7f || *p == '\\';
		size_t need = esc ? 4 : 1;

		if (o + need + 4 > outlen) {	/* room for "..." and NUL */
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (!esc) {
			out[o++] = (char)*p;
		} else if (*p == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static int bad_value(const char *opt, const char *s, char *err, size_t errlen, const char *fmt_expect,
		     const char *what, double lo, double hi)
{
	char q[80];

	if (!s || !*s)
		errbuf_set(err, errlen, "%s needs a value: %s", opt, what);
	else
		errbuf_set(err, errlen, fmt_expect, opt, cli_quote(s, q, sizeof(q)), what, lo, hi);
	return -1;
}

static int read_double(const char *s, double *v)
{
	char *end;

	/* strtod skips leading blanks; a whole-string value has none */
	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	/* ERANGE on underflow (5e-324) still gives a usable finite value */
	if (end == s || *end || !isfinite(*v) || (errno == ERANGE && fabs(*v) > 1.0))
		return -1;
	return 0;
}

int cli_double(const char *opt, const char *s, double min, double max, const char *what,
	       double *out, char *err, size_t errlen)
{
	double v;

	if (read_double(s, &v) || v < min || v > max)
		return bad_value(opt, s, err, errlen, "%s '%s': expected %s, a finite number from %g to %g",
				 what, min, max);
	*out = v;
	return 0;
}

int cli_double_above(const char *opt, const char *s, double min, double max, const char *what,
		     double *out, char *err, size_t errlen)
{
	double v;

	if (read_double(s, &v) || v <= min || v > max)
		return bad_value(opt, s, err, errlen, "%s '%s': expected %s, a finite number above %g, at most %g",
				 what, min, max);
	*out = v;
	return 0;
}

int cli_long(const char *opt, const char *s, long long min, long long max, const char *what,
	     long long *out, char *err, size_t errlen)
{
	char *end, q[80];
	long long v;

	if (!s || !*s) {
		errbuf_set(err, errlen, "%s needs a value: %s", opt, what);
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end || errno || v < min || v > max || (*s != '-' && *s != '+' && (*s < '0' || *s > '9'))) {
		errbuf_set(err, errlen, "%s '%s': expected %s, a whole number from %lld to %lld", opt,
			   cli_quote(s, q, sizeof(q)), what, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_duration(const char *opt, const char *s, double min_s, double max_s, double *out,
		 char *err, size_t errlen)
{
	static const struct { const char *suffix; double scale; } units[] = {
		{ "ms", 1e-3 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "", 1 },
	};
	char num[64], q[80];
	size_t n = s ? strlen(s) : 0;
	double v;

	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		size_t k = strlen(units[u].suffix);

		if (n <= k || n - k >= sizeof(num) || strcmp(s + n - k, units[u].suffix))
			continue;
		memcpy(num, s, n - k);
		num[n - k] = '\0';
		/* "1e3m" would read as 1e3 minutes; keep a suffix on a plain number */
		if (read_double(num, &v) || !isfinite(v * units[u].scale))
			break;
		v *= units[u].scale;
		if (v < min_s || v > max_s)
			break;
		*out = v;
		return 0;
	}
	if (!s || !*s)
		errbuf_set(err, errlen, "%s needs a value: a duration such as 2, 2s, 500ms, 1m", opt);
	else
		errbuf_set(err, errlen, "%s '%s': expected a duration from %g s to %g s (2, 2s, 500ms, 1m, 1h)",
			   opt, cli_quote(s, q, sizeof(q)), min_s, max_s);
	return -1;
}

int cli_choice(const char *opt, const char *s, const char *const *choices, int *out,
	       char *err, size_t errlen)
{
	char list[256] = "", q[80];
	size_t len = 0;

	for (int i = 0; choices[i]; i++)
		if (s && !strcmp(s, choices[i])) {
			*out = i;
			return 0;
		}
	for (int i = 0; choices[i] && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", choices[i]);
	errbuf_set(err, errlen, "%s '%s': expected one of %s", opt, cli_quote(s ? s : "", q, sizeof(q)), list);
	return -1;
}

int cli_pid(const char *opt, const char *s, int *out, char *err, size_t errlen)
{
	long long v;

	if (cli_long(opt, s, 1, PID_MAX_LIMIT, "a process id", &v, err, errlen))
		return -1;
	*out = (int)v;
	return 0;
}

int cli_hostport(const char *opt, const char *s, char *host, size_t hostlen, uint16_t *port,
		 char *err, size_t errlen)
{
	const char *colon, *h = s, *hend;
	char q[80];
	long long p;

	if (!s || !*s)
		goto bad;
	if (*s == '[') {
		hend = strchr(s, ']');
		if (!hend || hend[1] != ':')
			goto bad;
		h = s + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			goto bad;	/* a bare IPv6 address needs brackets */
		hend = colon;
	}
	if ((size_t)(hend - h) >= hostlen)
		goto bad;
	for (const char *c = h; c < hend; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			goto bad;
	if (hend == h)
		snprintf(host, hostlen, "127.0.0.1");
	else
		snprintf(host, hostlen, "%.*s", (int)(hend - h), h);
	if (cli_long(opt, colon + 1, 1, 65535, "a port", &p, NULL, 0))
		goto bad;
	*port = (uint16_t)p;
	return 0;
bad:
	errbuf_set(err, errlen, "%s '%s': expected HOST:PORT (127.0.0.1:8080, [::1]:8080 or :8080), port 1-65535",
		   opt, cli_quote(s ? s : "", q, sizeof(q)));
	return -1;
}

int cli_double_list(const char *opt, const char *s, char sep, size_t n, double *out,
		    char *err, size_t errlen)
{
	char field[64], q[80];
	const char *p = s;
	size_t k = 0;

	if (!s || !*s)
		goto bad;
	for (;;) {
		const char *e = strchr(p, sep);
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (k == n || len >= sizeof(field))
			goto bad;
		memcpy(field, p, len);
		field[len] = '\0';
		if (read_double(field, &out[k++]))
			goto bad;
		if (!e)
			break;
		p = e + 1;
	}
	if (k == n)
		return 0;
bad:
	errbuf_set(err, errlen, "%s '%s': expected %zu finite numbers separated by '%c'", opt,
		   cli_quote(s ? s : "", q, sizeof(q)), n, sep);
	return -1;
}

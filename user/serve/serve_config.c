/* See serve_config.h. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "errbuf.h"
#include "serve_config.h"

struct parse_ctx {
	struct serve_config *cfg;
	FILE *file;
	int line;		/* line being parsed: Debian's inih gives none */
	int header_line;	/* line of the last [section] header read */
	int section_line;	/* header line of the section being read */
	char *err;
	size_t errlen;
	bool failed;
	char section[INI_MAX_LINE];	/* the section of the previous key */
	int model;			/* model of the current [model] section */
	bool seen_params, seen_jpt;	/* in the current [model] section */
};

static char *line_reader(char *buf, int size, void *stream)
{
	struct parse_ctx *ctx = stream;
	char *line = fgets(buf, size, ctx->file);

	if (line) {
		const char *c = line;

		ctx->line++;
		while (*c == ' ' || *c == '\t')
			c++;
		if (*c == '[')
			ctx->header_line = ctx->line;
	}
	return line;
}

__attribute__((format(printf, 2, 3)))
static int fail(struct parse_ctx *ctx, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errbuf_set(ctx->err, ctx->errlen, "%s:%d: %s", ctx->cfg->path, ctx->line, msg);
	ctx->failed = true;
	return 0;
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
	char service[8];

	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res))
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* "HOST:PORT [pid=N]" */
static int add_worker(struct parse_ctx *ctx, const char *value)
{
	struct serve_config *cfg = ctx->cfg;
	char copy[INI_MAX_LINE], *save = NULL, *tok, msg[300], key[96];
	struct serve_worker *w;

	if (cfg->n_workers == SERVE_MAX_WORKERS)
		return fail(ctx, "[model %s] worker: more than %d workers in all",
			    cfg->models[ctx->model].name, SERVE_MAX_WORKERS);
	w = &cfg->workers[cfg->n_workers];
	memset(w, 0, sizeof(*w));
	snprintf(key, sizeof(key), "[model %s] worker", cfg->models[ctx->model].name);
	snprintf(copy, sizeof(copy), "%s", value);
	tok = strtok_r(copy, " \t", &save);
	if (!tok)
		return fail(ctx, "%s: expected HOST:PORT [pid=N]", key);
	if (cli_hostport(key, tok, w->host, sizeof(w->host), &w->port, msg, sizeof(msg)))
		return fail(ctx, "%s", msg);
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (strncmp(tok, "pid=", 4) || w->pid_given) {
			char q[64];

			return fail(ctx, "%s: unexpected '%s' (expected HOST:PORT [pid=N])", key,
				    cli_quote(tok, q, sizeof(q)));
		}
		if (cli_pid(key, tok + 4, &w->pid, msg, sizeof(msg)))
			return fail(ctx, "%s", msg);
		w->pid_given = true;
	}
	if (resolve(w->host, w->port, &w->addr, &w->addrlen))
		return fail(ctx, "%s: cannot resolve host '%s' (use an address such as 127.0.0.1)", key,
			    w->host);
	for (size_t i = 0; i < cfg->n_workers; i++)
		if (!strcmp(cfg->workers[i].host, w->host) && cfg->workers[i].port == w->port)
			return fail(ctx, "%s: %s:%u is listed twice (first on line %d)", key, w->host,
				    w->port, cfg->workers[i].line);
	char host[SERVE_HOST_LEN];

	memcpy(host, w->host, sizeof(host));	/* w->name and w->host share *w */
	snprintf(w->name, sizeof(w->name), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, w->port);
	w->model = ctx->model;
	w->line = ctx->line;
	cfg->models[ctx->model].n_workers++;
	cfg->n_workers++;
	return 1;
}

/* A key in a section different from the previous key's starts that section. */
static int enter_section(struct parse_ctx *ctx, const char *section)
{
	struct serve_config *cfg = ctx->cfg;
	const char *name;
	int key_line = ctx->line;

	if (!strcmp(section, ctx->section) && ctx->header_line == ctx->section_line)
		return 1;
	ctx->section_line = ctx->header_line;	/* a header repeated is a new section */
	snprintf(ctx->section, sizeof(ctx->section), "%s", section);
	ctx->model = -1;
	if (section[0])
		ctx->line = ctx->header_line;	/* problems of the header name it */
	if (!section[0])
		return fail(ctx, "key before any [section] header (start with [serve] or [model NAME])");
	if (!strcmp(section, "serve")) {
		ctx->line = key_line;
		return 1;
	}
	if (strncmp(section, "model", 5) || (section[5] != ' ' && section[5] != '\t'))
		return fail(ctx, "unknown section [%s] (known: serve, model NAME)", section);
	name = section + 5;
	while (*name == ' ' || *name == '\t')
		name++;
	if (!*name)
		return fail(ctx, "[%s]: the model needs a name, e.g. [model small]", section);
	if (strlen(name) >= SERVE_NAME_LEN)
		return fail(ctx, "[%s]: model name longer than %d characters", section, SERVE_NAME_LEN - 1);
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '"' || *c == '\\' || (unsigned char)*c >= 0x7f)
			return fail(ctx, "[%s]: the model name must be printable ASCII without spaces, quotes or backslashes",
				    section);
	if (serve_config_model(cfg, name) >= 0)
		return fail(ctx, "[model %s] appears twice (first on line %d)", name,
			    cfg->models[serve_config_model(cfg, name)].line);
	if (cfg->n_models == SERVE_MAX_MODELS)
		return fail(ctx, "more than %d [model] sections", SERVE_MAX_MODELS);
	ctx->model = (int)cfg->n_models++;
	snprintf(cfg->models[ctx->model].name, SERVE_NAME_LEN, "%s", name);
	cfg->models[ctx->model].line = ctx->line;
	ctx->seen_params = ctx->seen_jpt = false;
	ctx->line = key_line;
	return 1;
}

static int model_number(struct parse_ctx *ctx, const char *name, const char *value, bool *seen,
			double *out)
{
	char key[96], msg[300];

	snprintf(key, sizeof(key), "[model %s] %s", ctx->cfg->models[ctx->model].name, name);
	if (*seen)
		return fail(ctx, "%s is given twice", key);
	*seen = true;
	if (cli_double_above(key, value, 0, 1e18, "a number above 0", out, msg, sizeof(msg)))
		return fail(ctx, "%s", msg);
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	struct serve_config *cfg = ctx->cfg;
	char msg[300];

	if (ctx->failed)
		return 1;	/* the first problem is the one reported */
	if (!enter_section(ctx, section))
		return 1;
	if (!strcmp(section, "serve")) {
		if (strcmp(name, "listen"))
			return fail(ctx, "[serve] unknown key '%s' (known: listen)", name) + 1;
		if (cfg->have_listen)
			return fail(ctx, "[serve] listen is given twice") + 1;
		if (cli_hostport("[serve] listen", value, cfg->listen_host, sizeof(cfg->listen_host),
				 &cfg->listen_port, msg, sizeof(msg)))
			return fail(ctx, "%s", msg) + 1;
		cfg->have_listen = true;
		return 1;
	}
	struct serve_model *m = &cfg->models[ctx->model];
	if (!strcmp(name, "worker"))
		add_worker(ctx, value);
	else if (!strcmp(name, "params"))
		model_number(ctx, name, value, &ctx->seen_params, &m->params);
	else if (!strcmp(name, "joules_per_token"))
		model_number(ctx, name, value, &ctx->seen_jpt, &m->joules_per_token);
	else
		fail(ctx, "[model %s] unknown key '%s' (known: params, joules_per_token, worker)", m->name, name);
	return 1;
}

static int check_complete(struct parse_ctx *ctx)
{
	struct serve_config *cfg = ctx->cfg;

	if (!cfg->n_models) {
		ctx->line = 1;
		return fail(ctx, "no [model NAME] sections (add one with params = and worker = HOST:PORT)");
	}
	for (size_t i = 0; i < cfg->n_models; i++) {
		struct serve_model *m = &cfg->models[i];

		ctx->line = m->line;
		if (!m->n_workers)
			return fail(ctx, "[model %s] has no worker = HOST:PORT line (add one)", m->name);
		if (!m->params && !m->joules_per_token)
			return fail(ctx, "[model %s] needs params = (e.g. 8e9) or joules_per_token =", m->name);
	}
	return 1;
}

int serve_config_load(struct serve_config *cfg, const char *path, char *err, size_t errlen)
{
	struct parse_ctx ctx = { .cfg = cfg, .err = err, .errlen = errlen, .model = -1 };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	snprintf(ctx.section, sizeof(ctx.section), "\x01");	/* matches no section */
	ctx.file = fopen(path, "r");
	if (!ctx.file) {
		errbuf_set(err, errlen, "%s: cannot open the serve config: %s (check the path)", path,
			   strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(line_reader, &ctx, handler, &ctx);
	fclose(ctx.file);
	if (ctx.failed)
		return -1;
	if (rc > 0) {
		errbuf_set(err, errlen, "%s:%d: cannot parse this line (expected [section] or key = value)",
			   path, rc);
		return -1;
	}
	if (rc < 0) {
		errbuf_set(err, errlen, "%s: cannot read the serve config (out of memory)", path);
		return -1;
	}
	return check_complete(&ctx) ? 0 : -1;
}

int serve_config_model(const struct serve_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_models; i++)
		if (!strcmp(cfg->models[i].name, name))
			return (int)i;
	return -1;
}

/* ---- the pid behind a listening socket ---- */

/* The inode of a LISTEN socket on addr's port and address (or the wildcard)
 * in one /proc/net/tcp{,6} file; 0 if none. */
static unsigned long listen_inode(const char *path, const struct sockaddr *addr)
{
	unsigned char want[16] = { 0 }, any[16] = { 0 }, mapped[16] = { 0 };
	unsigned port;
	bool v6file = strstr(path, "tcp6") != NULL;
	char line[512];
	unsigned long found = 0;
	FILE *f;

	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)addr;

		port = ntohs(sin->sin_port);
		memcpy(want, &sin->sin_addr, 4);
		/* a v6 socket listening on ::ffff:a.b.c.d or :: also takes it */
		mapped[10] = mapped[11] = 0xff;
		memcpy(mapped + 12, &sin->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)addr;

		port = ntohs(sin6->sin6_port);
		memcpy(want, &sin6->sin6_addr, 16);
		memcpy(mapped, want, 16);
		if (!v6file)
			return 0;
	}
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char local[64];
		unsigned lport, state;
		unsigned long inode;
		unsigned char got[16] = { 0 };
		size_t nwords;

		if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu", local, &lport,
			   &state, &inode) != 4 || state != 0x0A || lport != port)
			continue;
		/* the kernel prints each 32-bit word of the address in host order */
		nwords = strlen(local) / 8;
		for (size_t i = 0; i < nwords && i < 4; i++) {
			char word[9];
			uint32_t v;

			memcpy(word, local + 8 * i, 8);
			word[8] = 0;
			v = (uint32_t)strtoul(word, NULL, 16);
			memcpy(got + 4 * i, &v, 4);
		}
		if (!v6file && (!memcmp(got, want, 4) || !memcmp(got, any, 4)))
			found = inode;
		else if (v6file && (!memcmp(got, mapped, 16) || !memcmp(got, any, 16)))
			found = inode;
	}
	fclose(f);
	return found;
}

static int pid_with_socket(const char *root, unsigned long inode)
{
	char want[64], path[800], link[64];
	DIR *proc = opendir(root), *fds;
	struct dirent *p, *fd;
	int pid = 0;

	if (!proc)
		return 0;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (!pid && (p = readdir(proc))) {
		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%s/fd", root, p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((fd = readdir(fds))) {
			ssize_t n;

			if (fd->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/fd/%s", root, p->d_name, fd->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (!strcmp(link, want)) {
				pid = atoi(p->d_name);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return pid;
}

int serve_listener_pid(const char *proc_root, const struct sockaddr *addr)
{
	const char *root = proc_root ? proc_root : "/proc";
	char path[300];
	unsigned long inode;

	snprintf(path, sizeof(path), "%s/net/tcp", root);
	inode = listen_inode(path, addr);
	if (!inode) {
		snprintf(path, sizeof(path), "%s/net/tcp6", root);
		inode = listen_inode(path, addr);
	}
	return inode ? pid_with_socket(root, inode) : 0;
}

size_t serve_config_find_pids(struct serve_config *cfg, const char *proc_root)
{
	size_t missing = 0;

	for (size_t i = 0; i < cfg->n_workers; i++) {
		struct serve_worker *w = &cfg->workers[i];

		if (!w->pid)
			w->pid = serve_listener_pid(proc_root, (const struct sockaddr *)&w->addr);
		if (!w->pid)
			missing++;
	}
	return missing;
}

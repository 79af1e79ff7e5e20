/* See serve_config.h. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cli.h"
#include "errbuf.h"
#include "serve_config.h"

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

__attribute__((format(printf, 3, 4)))
static int fail(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* "HOST:PORT [pid=N]" of [model NAME] number model (scenario.c's index). */
static int add_worker(struct serve_config *cfg, int model, const char *section, const char *value,
		      int line, char *msg, size_t msglen)
{
	char copy[1024], *save = NULL, *tok, key[96];
	struct serve_worker *w;

	snprintf(key, sizeof(key), "[%s] worker", section);
	if (cfg->n_workers == SERVE_MAX_WORKERS)
		return fail(msg, msglen, "%s: more than %d workers in all", key, SERVE_MAX_WORKERS);
	w = &cfg->workers[cfg->n_workers];
	memset(w, 0, sizeof(*w));
	snprintf(copy, sizeof(copy), "%s", value);
	tok = strtok_r(copy, " \t", &save);
	if (!tok)
		return fail(msg, msglen, "%s: expected HOST:PORT [pid=N]", key);
	if (cli_hostport(key, tok, w->host, sizeof(w->host), &w->port, msg, msglen))
		return -1;
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (strncmp(tok, "pid=", 4) || w->pid_given) {
			char q[64];

			return fail(msg, msglen, "%s: unexpected '%s' (expected HOST:PORT [pid=N])", key,
				    cli_quote(tok, q, sizeof(q)));
		}
		if (cli_pid(key, tok + 4, &w->pid, msg, msglen))
			return -1;
		w->pid_given = true;
	}
	if (resolve(w->host, w->port, &w->addr, &w->addrlen))
		return fail(msg, msglen, "%s: cannot resolve host '%s' (use an address such as 127.0.0.1)",
			    key, w->host);
	for (size_t i = 0; i < cfg->n_workers; i++)
		if (!strcmp(cfg->workers[i].host, w->host) && cfg->workers[i].port == w->port)
			return fail(msg, msglen, "%s: %s:%u is listed twice (first on line %d)", key, w->host,
				    w->port, cfg->workers[i].line);
	char host[SERVE_HOST_LEN];

	memcpy(host, w->host, sizeof(host));	/* w->name and w->host share *w */
	snprintf(w->name, sizeof(w->name), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, w->port);
	w->model = model;
	w->line = line;
	cfg->models[model].n_workers++;
	cfg->n_workers++;
	return 0;
}

/* [pool NAME] models = ...: kept as written until every [model] is read. */
static int add_pool(struct serve_config *cfg, const char *section, const char *value, int line,
		    char *msg, size_t msglen)
{
	const char *name = section + 4;	/* after "pool" */
	struct serve_pool *p;

	while (*name == ' ' || *name == '\t')
		name++;
	if (cfg->n_pools == SERVE_MAX_POOLS)
		return fail(msg, msglen, "[%s]: more than %d pools", section, SERVE_MAX_POOLS);
	if (strlen(name) >= sizeof(p->name))
		return fail(msg, msglen, "[%s]: the pool name is longer than %zu characters", section,
			    sizeof(p->name) - 1);
	if (strlen(value) >= sizeof(p->models_text))
		return fail(msg, msglen, "[%s] models: the list is longer than %zu characters", section,
			    sizeof(p->models_text) - 1);
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (!strcmp(cfg->pools[i].name, name))
			return fail(msg, msglen, "[%s]: a second [pool %s] (the first one's models are on "
				    "line %d)", section, name, cfg->pools[i].line);
	p = &cfg->pools[cfg->n_pools++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->models_text, sizeof(p->models_text), "%s", value);
	p->line = line;
	return 0;
}

/* scenario.c hands erg serve's own keys here. */
static int on_serve_key(void *ud, const char *section, int model, const char *key, const char *value,
			int line, char *msg, size_t msglen)
{
	struct serve_config *cfg = ud;

	if (model >= 0)
		return add_worker(cfg, model, section, value, line, msg, msglen);
	if (!strcasecmp(key, "models"))
		return add_pool(cfg, section, value, line, msg, msglen);
	if (!strcasecmp(key, "between_budgets")) {
		long long n;

		if (cli_long("[serve] between_budgets", value, 0, SERVE_BETWEEN_MAX,
			     "budgets between two listed ones", &n, msg, msglen))
			return -1;
		cfg->between_budgets = (int)n;
		return 0;
	}
	/* [serve] listen: scenario.c knows no other key there, and refuses a second */
	if (cli_hostport("[serve] listen", value, cfg->listen_host, sizeof(cfg->listen_host),
			 &cfg->listen_port, msg, msglen))
		return -1;
	cfg->have_listen = true;
	(void)key;
	return 0;
}

/* Names fit for headers and JSON. */
static bool printable_name(const char *name)
{
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '"' || *c == '\\' || (unsigned char)*c >= 0x7f)
			return false;
	return true;
}

/* Models as the scenario read them, and what erg serve adds: names fit for
 * headers and JSON, "auto" reserved, a worker each. */
static int check_models(struct serve_config *cfg, char *err, size_t errlen)
{
	const struct scenario *sc = &cfg->scenario;

	cfg->n_models = (size_t)sc->n_models;
	for (int k = 0; k < sc->n_models; k++) {
		struct serve_model *m = &cfg->models[k];
		const char *name = sc->models[k].name;

		snprintf(m->name, sizeof(m->name), "%s", name);
		m->params = sc->models[k].params;
		m->joules_per_token = sc->models[k].joules_per_token;
		m->line = sc->model_line[k];
		if (!printable_name(name)) {
			errbuf_set(err, errlen, "%s:%d: [model %s]: the model name must be printable ASCII "
				   "without spaces, quotes or backslashes", cfg->path, m->line, name);
			return -1;
		}
		if (!strcmp(name, "auto")) {
			errbuf_set(err, errlen, "%s:%d: [model auto]: 'auto' asks erg to choose the model; "
				   "give the model another name", cfg->path, m->line);
			return -1;
		}
		if (!m->n_workers) {
			errbuf_set(err, errlen, "%s:%d: [model %s] has no worker = HOST:PORT line (add one)",
				   cfg->path, m->line, name);
			return -1;
		}
	}
	return 0;
}

/* Each pool's models, now that every [model] is known; a pool's name is
 * neither a model's nor "auto", and a pool needs the steering sections. */
static int check_pools(struct serve_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->n_pools; i++) {
		struct serve_pool *p = &cfg->pools[i];
		char copy[sizeof(p->models_text)], *save = NULL, *tok;

		if (!printable_name(p->name) || !strcmp(p->name, "auto") || serve_config_model(cfg, p->name) >= 0) {
			errbuf_set(err, errlen, "%s:%d: [pool %s]: %s", cfg->path, p->line, p->name,
				   !printable_name(p->name) ? "the pool name must be printable ASCII without "
				   "spaces, quotes or backslashes" : "that name is taken (by a model, or 'auto'); "
				   "give the pool another name");
			return -1;
		}
		if (!cfg->steering) {
			errbuf_set(err, errlen, "%s:%d: [pool %s]: a pool is steered as \"auto\" is, so the file "
				   "needs the steering sections ([scaling], [workload] budgets and "
				   "accuracy_target, [cost]; docs/sim.md)", cfg->path, p->line, p->name);
			return -1;
		}
		snprintf(copy, sizeof(copy), "%s", p->models_text);
		for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
			int k = serve_config_model(cfg, tok);

			if (k < 0) {
				char q[SERVE_NAME_LEN * 4];

				errbuf_set(err, errlen, "%s:%d: [pool %s] models: no [model %s] in the file "
					   "(a pool lists models defined by [model NAME] sections)", cfg->path,
					   p->line, p->name, cli_quote(tok, q, sizeof(q)));
				return -1;
			}
			p->models |= 1u << k;
		}
		if (!p->models) {
			errbuf_set(err, errlen, "%s:%d: [pool %s] models: name at least one model (e.g. "
				   "models = 1.5B 8B)", cfg->path, p->line, p->name);
			return -1;
		}
	}
	return 0;
}

int serve_config_load(struct serve_config *cfg, const char *path, char *err, size_t errlen)
{
	struct scenario_hooks hooks = { .ud = cfg, .on_key = on_serve_key, .models_only = 1 };

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	if (scenario_load_hooked(path, &cfg->scenario, &hooks, err, errlen))
		return -1;
	if (check_models(cfg, err, errlen)) {
		scenario_free(&cfg->scenario);
		return -1;
	}
	cfg->steering = cfg->scenario.n_opts > 0;
	if (check_pools(cfg, err, errlen)) {
		scenario_free(&cfg->scenario);
		return -1;
	}
	return 0;
}

void serve_config_free(struct serve_config *cfg)
{
	scenario_free(&cfg->scenario);
}

int serve_config_model(const struct serve_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_models; i++)
		if (!strcmp(cfg->models[i].name, name))
			return (int)i;
	return -1;
}

int serve_config_pool(const struct serve_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (!strcmp(cfg->pools[i].name, name))
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

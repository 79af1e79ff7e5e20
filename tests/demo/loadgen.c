/* loadgen: open-loop load generator for OpenAI-style workers on this machine.
 *
 * Requests arrive as a Poisson process of rate R (docs/theory.md §2: n_t Poisson),
 * spread round-robin over the given worker URLs (or all to one proxy, such as
 * erg serve, with --target), each naming one of the --model names drawn from
 * the seed, and are sent by C client
 * threads over keep-alive connections. Latency is measured from each
 * request's scheduled arrival, so a slow worker cannot hide queueing delay
 * (no coordinated omission). Only loopback addresses are accepted: this is a
 * test tool, never a traffic source for other machines. Bounded in time
 * (duration + grace) and in count (--max-requests).
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli_num.h"

#define MAX_TARGETS   64
#define MAX_MODELS    16
#define MODEL_NAME_MAX 128
#define RESP_MAX      (64u << 20) /* bytes of one response */
#define HDR_MAX       65536

struct target {
	char url[512];
	char host[80];  /* Host header */
	char path[400];
	bool completions; /* /v1/completions: "prompt" instead of "messages" */
	struct sockaddr_storage sa;
	socklen_t salen;
};

struct job {
	double sched; /* seconds since start */
	int target;
	uint64_t id;
};

static struct {
	struct target t[MAX_TARGETS];
	int ntargets;
	double rate, duration, timeout, grace;
	long max_tokens, max_requests;
	int concurrency;
	bool stream;
	uint64_t seed;
	char models[MAX_MODELS][MODEL_NAME_MAX + 1]; /* sent verbatim ("auto" too) */
	int nmodels;
} opt = { .timeout = 60, .grace = 30, .concurrency = 16, .seed = 1, .max_tokens = 256 };

static struct timespec t0;
static atomic_bool abort_all;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static struct job *queue;
static long q_head, q_tail;
static bool q_closed;
static int workers_alive;
/* results, under mu */
static long n_ok, n_failed, n_aborted;
static long long n_tokens;
static double *lat_ms, *ttft_ms;
static long n_ttft;
static long model_ok[MAX_MODELS], model_failed[MAX_MODELS];
static long long model_tokens[MAX_MODELS];
static char first_err[600];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec - t0.tv_sec) + (ts.tv_nsec - t0.tv_nsec) / 1e9;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
	return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* ---- URLs: loopback only ---- */

static int parse_url(const char *u, struct target *t)
{
	memset(t, 0, sizeof(*t));
	if (strlen(u) >= sizeof(t->url)) {
		fprintf(stderr, "loadgen: URL too long: %.60s...\n", u);
		return -1;
	}
	strcpy(t->url, u);
	if (strncasecmp(u, "http://", 7)) {
		fprintf(stderr, "loadgen: '%s': only http:// URLs are supported\n", u);
		return -1;
	}
	const char *h = u + 7, *he, *p;
	char host[64];
	bool v6 = false;
	if (*h == '[') {
		he = strchr(h, ']');
		if (!he) {
			fprintf(stderr, "loadgen: '%s': unterminated [IPv6] host\n", u);
			return -1;
		}
		h++;
		v6 = true;
		p = he + 1;
	} else {
		he = h + strcspn(h, ":/");
		p = he;
	}
	if (he == h || (size_t)(he - h) >= sizeof(host)) {
		fprintf(stderr, "loadgen: '%s': bad host\n", u);
		return -1;
	}
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	long port = 80;
	if (*p == ':') {
		char *end;
		port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
			fprintf(stderr, "loadgen: '%s': port must be 1-65535\n", u);
			return -1;
		}
		p = end;
	}
	const char *path = (*p == '\0' || !strcmp(p, "/")) ? "/v1/chat/completions" : p;
	if (strlen(path) >= sizeof(t->path) || strpbrk(path, " \t\r\n")) {
		fprintf(stderr, "loadgen: '%s': bad path\n", u);
		return -1;
	}
	strcpy(t->path, path);
	size_t pl = strlen(path);
	t->completions = pl >= 15 && !strcmp(path + pl - 15, "/v1/completions");

	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;
	bool loop = false;
	if (v6) {
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 &&
		    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			t->salen = sizeof(*s6);
			loop = true;
		}
	} else {
		const char *lit = !strcasecmp(host, "localhost") ? "127.0.0.1" : host;
		if (inet_pton(AF_INET, lit, &s4->sin_addr) == 1 &&
		    (ntohl(s4->sin_addr.s_addr) >> 24) == 127) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			t->salen = sizeof(*s4);
			loop = true;
		}
	}
	if (!loop) {
		fprintf(stderr, "loadgen: refusing '%s': only loopback targets are allowed "
			"(127.0.0.0/8, [::1] or localhost)\n", u);
		return -1;
	}
	snprintf(t->host, sizeof(t->host), v6 ? "[%s]:%ld" : "%s:%ld", host, port);
	return 0;
}

/* ---- one HTTP exchange ---- */

struct resp {
	char *raw;
	size_t rlen, rcap, pos; /* raw bytes; pos = start of what is not decoded */
	bool hdr_done, chunked, close_after, done, in_trailer;
	long long clen, chunk_left; /* chunk_left: -1 = expecting a size line */
	int status;
	char *body;
	size_t blen, bcap, sse_pos;
	/* streaming */
	long chunks, usage_tokens;
	bool saw_done, saw_error, counted_first;
	double t_first;
	char err[200];
};

static int grow(char **b, size_t *cap, size_t want)
{
	if (want <= *cap)
		return 0;
	if (want > RESP_MAX)
		return -1;
	size_t nc = *cap ? *cap : 4096;
	while (nc < want)
		nc *= 2;
	char *nb = realloc(*b, nc);
	if (!nb)
		return -1;
	*b = nb;
	*cap = nc;
	return 0;
}

static int body_add(struct resp *r, const char *p, size_t n)
{
	if (grow(&r->body, &r->bcap, r->blen + n + 1))
		return -1;
	memcpy(r->body + r->blen, p, n);
	r->blen += n;
	r->body[r->blen] = '\0';
	return 0;
}

static int set_err(struct resp *r, const char *fmt, const char *a)
	__attribute__((format(printf, 2, 0)));
static int set_err(struct resp *r, const char *fmt, const char *a)
{
	snprintf(r->err, sizeof(r->err), fmt, a);
	return -1;
}

/* Status line and headers. 0 ok/need more, -1 bad. */
static int parse_headers(struct resp *r)
{
	char *end = memmem(r->raw, r->rlen, "\r\n\r\n", 4);
	if (!end)
		return r->rlen > HDR_MAX ? set_err(r, "%s", "response header too large") : 0;
	*end = '\0';
	int minor = 1;
	if (sscanf(r->raw, "HTTP/1.%d %d", &minor, &r->status) != 2)
		return set_err(r, "%s", "malformed status line");
	r->close_after = minor == 0;
	r->clen = -1;
	for (char *line = strstr(r->raw, "\r\n"); line && line < end; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, "content-length:", 15))
			r->clen = atoll(line + 15);
		else if (!strncasecmp(line, "transfer-encoding:", 18) && strcasestr(line, "chunked"))
			r->chunked = true;
		else if (!strncasecmp(line, "connection:", 11)) {
			char *v = line + 11, *e = strstr(v, "\r\n");
			size_t n = e ? (size_t)(e - v) : strlen(v);
			if (memmem(v, n, "close", 5))
				r->close_after = true;
		}
	}
	r->hdr_done = true;
	r->pos = (size_t)(end - r->raw) + 4;
	r->chunk_left = -1;
	if (r->status == 100) { /* interim answer: a real one follows */
		memmove(r->raw, r->raw + r->pos, r->rlen - r->pos);
		r->rlen -= r->pos;
		r->pos = 0;
		r->hdr_done = false;
		r->chunked = false;
		return parse_headers(r);
	}
	if (!r->chunked && r->clen < 0)
		r->close_after = true; /* body ends at EOF */
	return 0;
}

/* Move decoded body bytes from raw to body. */
static int decode_body(struct resp *r)
{
	if (!r->chunked) {
		size_t n = r->rlen - r->pos;
		if (r->clen >= 0 && (long long)(r->blen + n) > r->clen)
			n = (size_t)(r->clen - (long long)r->blen);
		if (body_add(r, r->raw + r->pos, n))
			return set_err(r, "%s", "response too large");
		r->pos += n;
		if (r->clen >= 0 && (long long)r->blen == r->clen)
			r->done = true;
	} else {
		while (!r->done) {
			if (r->chunk_left < 0) {
				char *nl = memmem(r->raw + r->pos, r->rlen - r->pos, "\r\n", 2);
				if (!nl)
					break;
				if (r->in_trailer) { /* trailer lines until an empty one */
					if (nl == r->raw + r->pos)
						r->done = true;
					r->pos = (size_t)(nl - r->raw) + 2;
					continue;
				}
				char *e;
				long long sz = strtoll(r->raw + r->pos, &e, 16);
				if (e == r->raw + r->pos || sz < 0 || sz > RESP_MAX)
					return set_err(r, "%s", "bad chunk size");
				r->pos = (size_t)(nl - r->raw) + 2;
				if (sz == 0)
					r->in_trailer = true;
				else
					r->chunk_left = sz;
			} else {
				size_t have = r->rlen - r->pos, n = have < (size_t)r->chunk_left
					? have : (size_t)r->chunk_left;
				if (n && body_add(r, r->raw + r->pos, n))
					return set_err(r, "%s", "response too large");
				r->pos += n;
				r->chunk_left -= (long long)n;
				if (r->chunk_left > 0)
					break;
				if (r->rlen - r->pos < 2)
					break; /* chunk's CRLF not here yet; chunk_left stays 0 */
				if (memcmp(r->raw + r->pos, "\r\n", 2))
					return set_err(r, "%s", "chunk not followed by CRLF");
				r->pos += 2;
				r->chunk_left = -1;
			}
		}
	}
	/* drop decoded raw bytes */
	memmove(r->raw, r->raw + r->pos, r->rlen - r->pos);
	r->rlen -= r->pos;
	r->pos = 0;
	return 0;
}

/* Handle complete SSE events in body[sse_pos..]. */
static void parse_sse(struct resp *r, bool completions)
{
	while (r->body) {
		char *ev = r->body + r->sse_pos;
		char *end = strstr(ev, "\n\n");
		if (!end)
			return;
		*end = '\0';
		r->sse_pos = (size_t)(end - r->body) + 2;
		for (char *line = ev; line && *line; ) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			if (!strncmp(line, "data:", 5)) {
				char *d = line + 5;
				while (*d == ' ')
					d++;
				if (!strcmp(d, "[DONE]")) {
					r->saw_done = true;
				} else {
					cJSON *j = cJSON_Parse(d);
					if (!j || cJSON_GetObjectItem(j, "error")) {
						r->saw_error = true;
						snprintf(r->err, sizeof(r->err), "stream event: %.150s", d);
					} else {
						cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
						cJSON *u = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"),
									       "completion_tokens");
						bool tok = false;
						if (completions) {
							cJSON *fr = cJSON_GetObjectItem(ch, "finish_reason");
							tok = cJSON_IsString(cJSON_GetObjectItem(ch, "text")) &&
							      (!fr || cJSON_IsNull(fr));
						} else if (ch) {
							cJSON *delta = cJSON_GetObjectItem(ch, "delta");
							tok = !cJSON_GetObjectItem(delta, "role") &&
							      (cJSON_IsString(cJSON_GetObjectItem(delta, "content")) ||
							       cJSON_IsString(cJSON_GetObjectItem(delta, "reasoning_content")));
						}
						if (tok) {
							r->chunks++;
							if (!r->counted_first) {
								r->counted_first = true;
								r->t_first = now_s();
							}
						}
						if (cJSON_IsNumber(u))
							r->usage_tokens = (long)u->valuedouble;
					}
					cJSON_Delete(j);
				}
			}
			line = nl ? nl + 1 : NULL;
		}
	}
}

static int connect_to(const struct target *t, double deadline)
{
	int fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&t->sa, t->salen) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		double left = deadline - now_s();
		if (left <= 0 || atomic_load(&abort_all)) {
			close(fd);
			errno = ETIMEDOUT;
			return -1;
		}
		int r = poll(&p, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1);
		if (r > 0)
			break;
	}
	int e = 0;
	socklen_t el = sizeof(e);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
	if (e) {
		close(fd);
		errno = e;
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* 1 = response complete, 0 = failed before any response byte (retryable on
 * a reused connection), -1 = failed, -2 = aborted. */
static int exchange(int fd, const char *req, size_t reqlen, struct resp *r, bool completions,
		    bool stream, double deadline)
{
	size_t off = 0;
	while (off < reqlen) {
		ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 100);
			if (atomic_load(&abort_all))
				return -2;
			if (now_s() > deadline)
				return set_err(r, "%s", "timed out sending the request");
			continue;
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			set_err(r, "send: %s", strerror(errno));
			return 0;
		}
		off += (size_t)w;
	}
	while (!r->done) {
		if (atomic_load(&abort_all))
			return -2;
		double left = deadline - now_s();
		if (left <= 0)
			return set_err(r, "%s", "timed out waiting for the response");
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1) <= 0)
			continue;
		if (grow(&r->raw, &r->rcap, r->rlen + 65536))
			return set_err(r, "%s", "response too large");
		ssize_t n = recv(fd, r->raw + r->rlen, r->rcap - r->rlen, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			bool nothing = !r->hdr_done && r->rlen == 0;
			if (n == 0 && r->hdr_done && !r->chunked && r->clen < 0) {
				r->done = true; /* body delimited by close */
				break;
			}
			set_err(r, "%s", n == 0 ? "connection closed before the response ended"
						: "connection reset");
			return nothing ? 0 : -1;
		}
		r->rlen += (size_t)n;
		if (!r->hdr_done && parse_headers(r))
			return -1;
		if (r->hdr_done && decode_body(r))
			return -1;
		if (stream && r->status == 200)
			parse_sse(r, completions);
	}
	if (stream && r->status == 200)
		parse_sse(r, completions);
	return 1;
}

static void record(bool ok, bool aborted, double lat, double ttft, long tokens,
		   const struct target *t, int model, const char *why)
{
	pthread_mutex_lock(&mu);
	if (aborted) {
		n_aborted++;
	} else if (ok) {
		lat_ms[n_ok++] = lat * 1e3;
		n_tokens += tokens;
		if (model >= 0) {
			model_ok[model]++;
			model_tokens[model] += tokens;
		}
		if (ttft >= 0)
			ttft_ms[n_ttft++] = ttft * 1e3;
	} else {
		n_failed++;
		if (model >= 0)
			model_failed[model]++;
		if (!first_err[0])
			snprintf(first_err, sizeof(first_err), "%s: %s", t->url, why);
	}
	pthread_mutex_unlock(&mu);
}

static const char *const prompts[] = {
	"Explain why the sky is blue.",
	"Prove that there are infinitely many primes, step by step.",
	"Write a haiku about energy supply and demand.",
	"How many joules does it take to boil a litre of water from 20 C?",
	"Summarise the trade-off between model size and reasoning length.",
	"What is the derivative of x^x? Think carefully.",
};

static void run_job(const struct job *j, int *conns)
{
	const struct target *t = &opt.t[j->target];
	uint64_t rng = opt.seed * 0x2545F4914F6CDD1Dull ^ j->id;
	const char *prompt = prompts[splitmix64(&rng) % (sizeof(prompts) / sizeof(prompts[0]))];
	/* drawn after the prompt, so a run without --model keeps its prompts */
	int mi = opt.nmodels ? (int)(splitmix64(&rng) % (uint64_t)opt.nmodels) : -1;
	char body[1024], model[MODEL_NAME_MAX + 16] = "";
	if (mi >= 0)
		snprintf(model, sizeof(model), "\"model\":\"%s\",", opt.models[mi]);
	int bl = snprintf(body, sizeof(body),
			  t->completions
			  ? "{%s\"prompt\":\"%s\",\"max_tokens\":%ld,\"stream\":%s%s}"
			  : "{%s\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
			    "\"max_tokens\":%ld,\"stream\":%s%s}",
			  model, prompt, opt.max_tokens, opt.stream ? "true" : "false",
			  opt.stream ? ",\"stream_options\":{\"include_usage\":true}" : "");
	char req[2048];
	int rl = snprintf(req, sizeof(req),
			  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
			  "Accept: %s\r\nContent-Length: %d\r\n\r\n%s",
			  t->path, t->host, opt.stream ? "text/event-stream" : "application/json",
			  bl, body);
	double deadline = j->sched + opt.timeout, hard = opt.duration + opt.grace;
	if (deadline > hard)
		deadline = hard;
	struct resp r;
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = conns[j->target] >= 0;
		memset(&r, 0, sizeof(r));
		if (!reused) {
			conns[j->target] = connect_to(t, deadline);
			if (conns[j->target] < 0) {
				if (atomic_load(&abort_all)) {
					rc = -2;
				} else {
					set_err(&r, "connect: %s", strerror(errno));
					rc = -1;
				}
				break;
			}
		}
		rc = exchange(conns[j->target], req, (size_t)rl, &r, t->completions, opt.stream, deadline);
		if (rc != 1 || r.close_after) {
			close(conns[j->target]);
			conns[j->target] = -1;
		}
		if (rc == 0 && reused) { /* stale keep-alive connection: once more */
			free(r.raw);
			free(r.body);
			continue;
		}
		break;
	}
	double lat = now_s() - j->sched;
	if (rc == -2) {
		record(false, true, 0, 0, 0, t, mi, NULL);
	} else if (rc != 1) {
		record(false, false, 0, 0, 0, t, mi, r.err[0] ? r.err : "request failed");
	} else if (r.status != 200) {
		char why[300];
		snprintf(why, sizeof(why), "HTTP %d: %.200s", r.status, r.body ? r.body : "");
		record(false, false, 0, 0, 0, t, mi, why);
	} else if (opt.stream) {
		if (r.saw_error || !r.saw_done)
			record(false, false, 0, 0, 0, t, mi, r.saw_error ? r.err : "stream ended without [DONE]");
		else if (r.usage_tokens && r.usage_tokens != r.chunks) {
			char why[200];
			snprintf(why, sizeof(why), "usage says %ld completion tokens, stream had %ld chunks",
				 r.usage_tokens, r.chunks);
			record(false, false, 0, 0, 0, t, mi, why);
		} else {
			record(true, false, lat, r.counted_first ? r.t_first - j->sched : -1, r.chunks, t, mi, NULL);
		}
	} else {
		cJSON *jr = cJSON_ParseWithLength(r.body ? r.body : "", r.blen);
		cJSON *u = cJSON_GetObjectItem(cJSON_GetObjectItem(jr, "usage"), "completion_tokens");
		if (!cJSON_IsArray(cJSON_GetObjectItem(jr, "choices")) || !cJSON_IsNumber(u))
			record(false, false, 0, 0, 0, t, mi, "answer without choices or usage.completion_tokens");
		else
			record(true, false, lat, -1, (long)u->valuedouble, t, mi, NULL);
		cJSON_Delete(jr);
	}
	free(r.raw);
	free(r.body);
}

static void *worker_main(void *arg)
{
	(void)arg;
	int conns[MAX_TARGETS];
	for (int i = 0; i < MAX_TARGETS; i++)
		conns[i] = -1;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (q_head == q_tail && !q_closed && !atomic_load(&abort_all))
			pthread_cond_wait(&q_cv, &mu);
		if (atomic_load(&abort_all) || q_head == q_tail) {
			pthread_mutex_unlock(&mu);
			break;
		}
		struct job j = queue[q_head++];
		pthread_mutex_unlock(&mu);
		run_job(&j, conns);
	}
	for (int i = 0; i < MAX_TARGETS; i++)
		if (conns[i] >= 0)
			close(conns[i]);
	pthread_mutex_lock(&mu);
	workers_alive--;
	pthread_mutex_unlock(&mu);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *v, long n, double p) /* nearest rank */
{
	if (n == 0)
		return NAN;
	long k = (long)ceil(p * n) - 1;
	return v[k < 0 ? 0 : k];
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen (--url http://127.0.0.1:PORT[,URL2,...] | --target HOST:PORT)\n"
		"               --rate R --duration S [options]\n"
		"Poisson (open-loop) load on OpenAI-style workers on this machine, round-robin\n"
		"over the URLs. A URL's path defaults to /v1/chat/completions; a path ending in\n"
		"/v1/completions sends \"prompt\" instead of \"messages\". Loopback only.\n"
		"  --url URLS          comma-separated http:// URLs (127.0.0.0/8, [::1], localhost)\n"
		"  --target HOST:PORT  one more URL, http://HOST:PORT/v1/chat/completions: a\n"
		"                      proxy in front of the workers (erg serve's listen address)\n"
		"  --rate R            mean arrivals per second, all URLs together (0 < R <= 10000)\n"
		"  --duration S        seconds during which requests arrive (0 < S <= 86400)\n"
		"  --max-tokens N      max_tokens of each request (default 256)\n"
		"  --stream            ask for SSE streaming (with usage) and check it\n"
		"  --concurrency C     client threads, i.e. requests in flight at most (default 16)\n"
		"  --seed S            seed of arrivals and prompts (default 1)\n"
		"  --model A[,B,...]   send \"model\":NAME, NAME drawn per request from the list\n"
		"                      (uniformly, from --seed; names pass through verbatim, so\n"
		"                      \"auto\" reaches the proxy as \"auto\"; default: no model)\n"
		"  --timeout S         per-request limit in seconds (default 60)\n"
		"  --grace S           after the duration, wait at most S s for answers (default 30)\n"
		"  --max-requests N    send at most N (default 2*R*S + 10)\n"
		"Prints one summary line (and one per model with two or more); exit 0 when no request failed, 1 otherwise, 2 on bad\n"
		"arguments. SIGTERM (and SIGINT, unless started with it ignored) stops it early;\n"
		"requests in flight then count as aborted.\n");
}

static int num(const char *opt, const char *s, double lo, double hi, double *v)
{
	return cli_num("loadgen", opt, s, lo, hi, v);
}

/* --model A,B,C into opt.models; each name goes into the JSON body as is. */
static int parse_models(const char *arg)
{
	const char *p = arg;

	for (;;) {
		size_t n = strcspn(p, ",");
		if (!n || n > MODEL_NAME_MAX || memchr(p, '"', n) || memchr(p, '\\', n) ||
		    memchr(p, '\r', n) || memchr(p, '\n', n)) {
			fprintf(stderr, "loadgen: --model '%s': each name must be 1 to %d characters "
				"without quotes, backslashes or newlines, names separated by single commas\n",
				arg, MODEL_NAME_MAX);
			return -1;
		}
		if (opt.nmodels == MAX_MODELS) {
			fprintf(stderr, "loadgen: --model: at most %d names\n", MAX_MODELS);
			return -1;
		}
		memcpy(opt.models[opt.nmodels], p, n);
		opt.models[opt.nmodels++][n] = '\0';
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "url", required_argument, 0, 'u' },
		{ "target", required_argument, 0, 'T' },
		{ "rate", required_argument, 0, 'r' },
		{ "duration", required_argument, 0, 'd' },
		{ "max-tokens", required_argument, 0, 'n' },
		{ "stream", no_argument, 0, 'S' },
		{ "concurrency", required_argument, 0, 'c' },
		{ "seed", required_argument, 0, 's' },
		{ "model", required_argument, 0, 'm' },
		{ "timeout", required_argument, 0, 't' },
		{ "grace", required_argument, 0, 'g' },
		{ "max-requests", required_argument, 0, 'M' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *urls = NULL, *target = NULL, *models = NULL;
	double v, maxreq = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'u': urls = optarg; break;
		case 'T': target = optarg; break;
		case 'r': bad = num("--rate", optarg, 1e-6, 10000, &opt.rate); break;
		case 'd': bad = num("--duration", optarg, 1e-3, 86400, &opt.duration); break;
		case 'n': bad = num("--max-tokens", optarg, 1, 1e7, &v); opt.max_tokens = (long)v; break;
		case 'S': opt.stream = true; break;
		case 'c': bad = num("--concurrency", optarg, 1, 1024, &v); opt.concurrency = (int)v; break;
		case 's': bad = num("--seed", optarg, 0, 9007199254740992.0, &v); opt.seed = (uint64_t)v; break;
		case 'm': models = optarg; break;
		case 't': bad = num("--timeout", optarg, 0.001, 86400, &opt.timeout); break;
		case 'g': bad = num("--grace", optarg, 0, 86400, &opt.grace); break;
		case 'M': bad = num("--max-requests", optarg, 1, 1e6, &maxreq); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if ((!urls && !target) || opt.rate <= 0 || opt.duration <= 0) {
		fprintf(stderr, "loadgen: --url or --target, --rate and --duration are required (see --help)\n");
		return 2;
	}
	if (models && parse_models(models))
		return 2;
	int bad_url = 0;
	if (target) {
		char u[300];
		if (strlen(target) > 200 || strpbrk(target, "/,")) {
			fprintf(stderr, "loadgen: --target '%.60s': expected HOST:PORT, e.g. 127.0.0.1:8080\n",
				target);
			return 2;
		}
		snprintf(u, sizeof(u), "http://%s/v1/chat/completions", target);
		bad_url = parse_url(u, &opt.t[opt.ntargets++]) != 0;
	}
	char *list = strdup(urls ? urls : ""), *save = NULL;
	bad_url |= !list;
	for (char *u = list ? strtok_r(list, ",", &save) : NULL; u && !bad_url;
	     u = strtok_r(NULL, ",", &save)) {
		if (opt.ntargets == MAX_TARGETS) {
			fprintf(stderr, "loadgen: at most %d URLs\n", MAX_TARGETS);
			bad_url = 1;
		} else {
			bad_url = parse_url(u, &opt.t[opt.ntargets++]) != 0;
		}
	}
	free(list);
	if (bad_url)
		return 2;
	if (!opt.ntargets) {
		fprintf(stderr, "loadgen: --url has no URL in it\n");
		return 2;
	}
	double cap = ceil(2 * opt.rate * opt.duration) + 10;
	opt.max_requests = (long)(maxreq > 0 ? maxreq : (cap > 1e6 ? 1e6 : cap));

	queue = calloc((size_t)opt.max_requests, sizeof(*queue));
	lat_ms = calloc((size_t)opt.max_requests, sizeof(double));
	ttft_ms = calloc((size_t)opt.max_requests, sizeof(double));
	pthread_t *th = calloc((size_t)opt.concurrency, sizeof(*th));
	if (!queue || !lat_ms || !ttft_ms || !th) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	/* Signals are taken by the main thread only, with sigtimedwait. An
	 * inherited ignored SIGINT (background job of a script) stays ignored. */
	sigset_t sigs;
	sigemptyset(&sigs);
	struct sigaction old;
	if (sigaction(SIGINT, NULL, &old) || old.sa_handler != SIG_IGN)
		sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < opt.concurrency; i++) {
		if (pthread_create(&th[i], NULL, worker_main, NULL)) {
			fprintf(stderr, "loadgen: cannot start client thread %d\n", i);
			return 1;
		}
		workers_alive++;
	}

	uint64_t rng = opt.seed;
	double next = 0;
	int stop_sig = 0;
	for (long i = 0; i < opt.max_requests && !stop_sig; i++) {
		next += -log(uniform01(&rng)) / opt.rate; /* exponential gaps: Poisson */
		if (next >= opt.duration)
			break;
		for (;;) {
			double left = next - now_s();
			if (left <= 0)
				break;
			struct timespec ts = { .tv_sec = (time_t)left,
					       .tv_nsec = (long)((left - floor(left)) * 1e9) };
			int s = sigtimedwait(&sigs, NULL, &ts);
			if (s > 0) {
				stop_sig = s;
				break;
			}
		}
		if (stop_sig)
			break;
		pthread_mutex_lock(&mu);
		queue[q_tail] = (struct job){ .sched = next, .target = (int)(i % opt.ntargets),
					      .id = (uint64_t)i };
		q_tail++;
		pthread_cond_signal(&q_cv);
		pthread_mutex_unlock(&mu);
	}
	pthread_mutex_lock(&mu);
	q_closed = true;
	pthread_cond_broadcast(&q_cv);
	pthread_mutex_unlock(&mu);

	/* Let answers in flight finish, within duration + grace. */
	bool timed_out = false;
	while (!stop_sig) {
		pthread_mutex_lock(&mu);
		int alive = workers_alive;
		pthread_mutex_unlock(&mu);
		if (!alive)
			break;
		if (now_s() > opt.duration + opt.grace) {
			timed_out = true;
			break;
		}
		struct timespec ts = { .tv_nsec = 50000000 };
		int s = sigtimedwait(&sigs, NULL, &ts);
		if (s > 0)
			stop_sig = s;
	}
	atomic_store(&abort_all, true);
	pthread_mutex_lock(&mu);
	pthread_cond_broadcast(&q_cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < opt.concurrency; i++)
		pthread_join(th[i], NULL);
	double elapsed = now_s();
	n_aborted += q_tail - q_head; /* arrived but never sent */
	if (timed_out) { /* the grace ran out: those are failures, not aborts */
		n_failed += n_aborted;
		n_aborted = 0;
		if (!first_err[0])
			snprintf(first_err, sizeof(first_err), "answers still missing %.0f s after the end",
				 opt.grace);
	}

	qsort(lat_ms, (size_t)n_ok, sizeof(double), cmp_double);
	qsort(ttft_ms, (size_t)n_ttft, sizeof(double), cmp_double);
	long sent = n_ok + n_failed + n_aborted;
	printf("loadgen: %ld requests to %d URL%s in %.1f s: %ld ok, %ld failed, %ld aborted; "
	       "%lld tokens; ", sent, opt.ntargets, opt.ntargets == 1 ? "" : "s", elapsed, n_ok,
	       n_failed, n_aborted, n_tokens);
	if (n_ok)
		printf("latency p50 %.1f ms p99 %.1f ms", pct(lat_ms, n_ok, 0.50), pct(lat_ms, n_ok, 0.99));
	else
		printf("latency p50 - p99 -");
	if (opt.stream && n_ttft)
		printf("; ttft p50 %.1f ms", pct(ttft_ms, n_ttft, 0.50));
	if (stop_sig)
		printf(" (stopped by %s)", stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
	printf("\n");
	for (int m = 0; m < opt.nmodels && opt.nmodels > 1; m++)
		printf("loadgen: model %s: %ld ok, %ld failed, %lld tokens\n", opt.models[m], model_ok[m],
		       model_failed[m], model_tokens[m]);
	fflush(stdout);
	if (n_failed)
		fprintf(stderr, "loadgen: first failure: %s\n", first_err);
	free(queue);
	free(lat_ms);
	free(ttft_ms);
	free(th);
	return n_failed ? 1 : 0;
}

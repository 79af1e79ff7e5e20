/* erg calibrate's command line on the shared cli layer: the workers
 * (NAME:PID:PORT:PARAMS, each field checked and named in its error), the
 * request counts and retries, the endpoint path and --body-extra, the
 * energy options as erg top reads them, -v. */
#ifndef ERG_CALIBRATE_ARGS_H
#define ERG_CALIBRATE_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include "energy.h"
#include "http_client.h"
#include "targets.h"

#define CAL_MAX_WORKERS 32
/* Parameter counts up to this (a quadrillion) */
#define CAL_MAX_PARAMS 1e15
/* --retries at most this */
#define CAL_MAX_RETRIES 100

struct cal_worker {
	char name[TARGET_MODEL_LEN];
	int pid;
	struct http_url url;
	double params;
	/* measured: answered requests only */
	long requests, completion_tokens, prompt_tokens;
	double seconds, cpu_s, joules, j_per_token;
	/* failed attempts: retried, and requests given up on */
	long retries, skipped;
	double failed_seconds;		/* their windows, left out of joules */
	char last_error[512];
};

struct cal_args {
	struct cal_worker workers[CAL_MAX_WORKERS];
	size_t n;
	long requests, max_tokens;
	long retries;			/* per request, each with a new seed */
	const char *path;		/* the endpoint, CAL_DEFAULT_PATH */
	const char *body_extra;		/* NULL, or a checked JSON object */
	const char *base;		/* NULL: scenarios/reference.ini if present */
	const char *out_path;		/* NULL: stdout */
	bool json, verbose;
	struct energy_opts energy;
};

/* Read argv. 0: run with *a; 1: --help was printed (exit 0); 2: a one-line
 * usage error was printed on stderr (exit 2). */
int cal_args_parse(int argc, char **argv, struct cal_args *a);

/* One --worker value into *w; -1 with a message naming the field in err. */
int cal_parse_worker(const char *spec, struct cal_worker *w, char *err, size_t errlen);

#endif

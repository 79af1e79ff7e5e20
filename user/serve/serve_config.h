/* serve.ini: a scenario file (scenario.h, the erg sim format of docs/sim.md)
 * plus the listening address of erg serve and the workers of each model.
 *
 *   [serve]
 *   listen = 127.0.0.1:8080
 *   between_budgets = 1        ; "auto" may also set budgets between the
 *                              ; listed ones (router.h), default 0
 *   [model small]
 *   params = 29e6              ; or joules_per_token = 0.8
 *   worker = 127.0.0.1:8091    ; repeatable; pid from the listening socket
 *   worker = 127.0.0.1:8093 pid=4242
 *
 *   [pool fast]                ; with steering: "model": "fast" lets erg
 *   models = small big         ; choose among these models' options only
 *
 * With only [serve] and [model NAME] sections erg serve routes by name. With
 * the scenario's sections ([scaling], [workload] budgets and accuracy_target,
 * [cost], [supply], [policy]; accuracy = / accuracy@BUDGET = per model) the
 * file also describes the (model, budget) options that "model": "auto"
 * requests are steered to (router.h), and `erg sim --scenario serve.ini`
 * predicts what erg serve will do. scenario.c parses the file: unknown
 * sections and keys are errors; every error names file, line and key. A
 * worker's pid, when not given, is the process that owns its listening
 * socket (/proc/net/tcp{,6} inode -> /proc/PID/fd). */
#ifndef ERG_SERVE_CONFIG_H
#define ERG_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "scenario.h"

#define SERVE_MAX_MODELS 32
#define SERVE_MAX_POOLS 8
#define SERVE_MAX_WORKERS 64
#define SERVE_NAME_LEN 64
#define SERVE_HOST_LEN 64

struct serve_worker {
	char host[SERVE_HOST_LEN];	/* as written (name or address) */
	uint16_t port;
	char name[SERVE_HOST_LEN + 8];	/* "host:port", for headers and output */
	struct sockaddr_storage addr;	/* resolved at load */
	socklen_t addrlen;
	int pid;			/* 0: not known */
	bool pid_given;
	int model;			/* index in serve_config.models */
	int line;			/* line of its worker = key */
};

struct serve_model {
	char name[SERVE_NAME_LEN];
	double params;			/* 0: not given */
	double joules_per_token;	/* 0: not given */
	size_t n_workers;
	int line;			/* line of its [model] header */
};

/* A [pool NAME]: "model": NAME is steered as "auto" is, among these models. */
struct serve_pool {
	char name[SERVE_NAME_LEN];
	char models_text[512];		/* the models = value, resolved at the end */
	uint32_t models;		/* bit k: serve_config.models[k] */
	int line;			/* line of its models = key */
};

struct serve_config {
	char path[256];
	char listen_host[SERVE_HOST_LEN];
	uint16_t listen_port;
	bool have_listen;
	struct serve_model models[SERVE_MAX_MODELS];
	size_t n_models;
	struct serve_worker workers[SERVE_MAX_WORKERS];
	size_t n_workers;
	struct serve_pool pools[SERVE_MAX_POOLS];
	size_t n_pools;
	int between_budgets;		/* [serve] between_budgets: router.h */
	/* The scenario the file describes; its models are models[] in the same
	 * order. steering: it has options (scenario.n_opts > 0) for "auto". */
	struct scenario scenario;
	bool steering;
};

/* Read path into cfg. 0, or -1 with "FILE:LINE: [section] key: problem" in err. */
int serve_config_load(struct serve_config *cfg, const char *path, char *err, size_t errlen);
void serve_config_free(struct serve_config *cfg);

/* The model of that name, or -1. */
int serve_config_model(const struct serve_config *cfg, const char *name);
/* The pool of that name, or -1. */
int serve_config_pool(const struct serve_config *cfg, const char *name);

/* Fill the pid of every worker that has none from its listening socket.
 * proc_root: NULL for /proc. Returns how many workers are still without a
 * pid (not running yet, or owned by another network namespace). */
size_t serve_config_find_pids(struct serve_config *cfg, const char *proc_root);

/* The pid of the process listening on TCP addr (0.0.0.0 / :: listeners
 * match any address of the port), or 0 if none is found. */
int serve_listener_pid(const char *proc_root, const struct sockaddr *addr);

#endif

/* serve.ini: models, workers, errors naming file, line and key; the pid of a
 * worker found from its listening socket, in a fake /proc and a real one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <math.h>
#include "serve_config.h"
#include "upstreams.h"

static char dir[256];
static char path[300];
static struct serve_config cfg;
static char err[512];

static int load(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	err[0] = 0;
	return serve_config_load(&cfg, path, err, sizeof(err));
}

/* The error is "PATH:LINE: ..." and contains what. */
static void assert_error(const char *text, int line, const char *what)
{
	char prefix[400];

	assert_int_equal(load(text), -1);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, what)) {
		fprintf(stderr, "error was: %s\nwanted: %s...%s\n", err, prefix, what);
		fail();
	}
	assert_null(strchr(err, '\n'));
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/erg-test-serve-config-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/serve.ini", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void test_full_file(void **state)
{
	(void)state;
	assert_int_equal(load("; erg serve\n"
			      "[serve]\n"
			      "listen = 127.0.0.1:8080\n"
			      "[model small]\n"
			      "params = 29e6   ; from the model card\n"
			      "worker = 127.0.0.1:8091\n"
			      "worker = 127.0.0.1:8093 pid=4242\n"
			      "[model big]\n"
			      "joules_per_token = 0.8\n"
			      "worker = [::1]:8092\n"), 0);
	assert_true(cfg.have_listen);
	assert_string_equal(cfg.listen_host, "127.0.0.1");
	assert_int_equal(cfg.listen_port, 8080);
	assert_int_equal(cfg.n_models, 2);
	assert_string_equal(cfg.models[0].name, "small");
	assert_true(cfg.models[0].params == 29e6);
	assert_int_equal(cfg.models[0].n_workers, 2);
	assert_string_equal(cfg.models[1].name, "big");
	assert_true(cfg.models[1].joules_per_token == 0.8);
	assert_int_equal(cfg.n_workers, 3);
	assert_string_equal(cfg.workers[0].name, "127.0.0.1:8091");
	assert_int_equal(cfg.workers[0].pid, 0);
	assert_int_equal(cfg.workers[1].pid, 4242);
	assert_true(cfg.workers[1].pid_given);
	assert_int_equal(cfg.workers[2].model, 1);
	assert_string_equal(cfg.workers[2].name, "[::1]:8092");
	assert_int_equal(cfg.workers[2].addr.ss_family, AF_INET6);
	assert_int_equal(serve_config_model(&cfg, "big"), 1);
	assert_int_equal(serve_config_model(&cfg, "huge"), -1);
}

static void test_errors(void **state)
{
	(void)state;
	assert_error("[serve]\nlisten = 127.0.0.1:8080\nport = 9\n", 3, "unknown key 'port' in [serve]");
	assert_error("[serve]\nlisten = 127.0.0.1:99999\n", 2, "[serve] listen");
	assert_error("[server]\nlisten = :8080\n", 1, "unknown section [server]");
	assert_error("listen = :8080\n", 1, "before any [section]");
	assert_error("[model a]\nparams = 1e9\nworker = 127.0.0.1:1\nflavour = x\n", 4,
		     "unknown key 'flavour' in [model a]");
	assert_error("[model a]\nparams = -3\nworker = 127.0.0.1:1\n", 2, "key 'params' in [model a]: must be positive");
	assert_error("[model a]\nparams = nan\nworker = 127.0.0.1:1\n", 2, "key 'params' in [model a]: must be a finite number");
	assert_error("[model a]\nparams = 1\nparams = 2\nworker = 127.0.0.1:1\n", 3, "given twice");
	assert_error("[model a]\nparams = 1e9\nworker = 127.0.0.1\n", 3, "[model a] worker");
	assert_error("[model a]\nparams = 1e9\nworker = 127.0.0.1:80 pid=0\n", 3, "[model a] worker");
	assert_error("[model a]\nparams = 1e9\nworker = 127.0.0.1:80 uid=3\n", 3, "unexpected 'uid=3'");
	assert_error("[model a]\nparams = 1e9\nworker = 127.0.0.1:80\nworker = 127.0.0.1:80\n", 4,
		     "listed twice (first on line 3)");
	assert_error("[model a]\nparams = 1e9\n", 1, "[model a] has no worker");
	assert_error("[model a]\nworker = 127.0.0.1:80\n", 1, "key 'params' in [model a] is missing");
	assert_error("[model a]\nparams = 1\nworker = 127.0.0.1:80\n[model a]\nparams = 2\n", 5,
		     "key 'params' in [model a] is given twice (first on line 2)");
	assert_error("[serve]\nlisten = :8080\n", 2, "no [model NAME] sections");
	assert_error("[model a]\nthis is not ini\n", 2, "cannot parse this line");
	assert_int_equal(serve_config_load(&cfg, "/nonexistent/serve.ini", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, "/nonexistent/serve.ini"));
}

/* With the scenario's sections the file has (model, budget) options for
 * "auto"; without them none. An unreachable target names the file and key. */
static void test_steering(void **state)
{
	static const char steer[] =
		"[scaling]\neta = 2e11\na0 = -2.523\na1 = 0.091\nbeta = 0.1086\na_max = 0.95\n"
		"[workload]\ntasks_per_slot = 20\ninput_tokens = 500\nbudgets = 256, 4096\n"
		"reasoning_sigma = 0.8\nreasoning_median = 0.5\naccuracy_target = %s\n"
		"[cost]\nc_a = 1\nc_w = 1\n"
		"[model small]\nparams = 8e9\nworker = 127.0.0.1:8091\n"
		"[model big]\nparams = 70e9\naccuracy@256 = 0.5\nworker = 127.0.0.1:8092\n";
	char text[1024];

	(void)state;
	assert_int_equal(load("[model a]\nparams = 1e9\nworker = 127.0.0.1:1\n"), 0);
	assert_false(cfg.steering);
	assert_int_equal(cfg.scenario.n_opts, 0);
	serve_config_free(&cfg);

	snprintf(text, sizeof(text), steer, "0.55");
	assert_int_equal(load(text), 0);
	assert_true(cfg.steering);
	assert_int_equal(cfg.n_models, 2);
	assert_int_equal(cfg.scenario.n_models, 2);
	assert_int_equal(cfg.scenario.n_opts, 4);	/* two models x two budgets */
	assert_int_equal(cfg.n_workers, 2);
	for (int i = 0; i < cfg.scenario.n_opts; i++) {
		const struct task_option *o = &cfg.scenario.opts[i];

		assert_true(o->model >= 0 && o->model < 2);
		assert_true(o->budget == 256 || o->budget == 4096);
		assert_true(o->m > 0);
		if (o->model == 1 && o->budget == 256)	/* accuracy@ overrides the law */
			assert_true(fabs(o->acc - 0.5) < 1e-12);
	}
	assert_true(cfg.scenario.acc_target == 0.55);
	serve_config_free(&cfg);

	snprintf(text, sizeof(text), steer, "0.99");
	assert_int_equal(load(text), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "accuracy_target"));
}

/* [pool NAME] models = ...: resolved after every [model]; its name is not a
 * model's or "auto"; it needs steering; errors name file, line and pool. */
static void test_pools(void **state)
{
	static const char steer[] =
		"[scaling]\neta = 2e11\na0 = -2.523\na1 = 0.091\nbeta = 0.1086\na_max = 0.95\n"
		"[workload]\ntasks_per_slot = 20\ninput_tokens = 500\nbudgets = 256, 4096\n"
		"reasoning_sigma = 0.8\nreasoning_median = 0.5\naccuracy_target = 0.5\n"
		"[cost]\nc_a = 1\nc_w = 1\n";	/* 16 lines */
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), "%s[pool fast]\nmodels = small, tiny\n[pool all]\nmodels = big small\n"
		 "[model small]\nparams = 8e9\nworker = 127.0.0.1:8091\n"
		 "[model big]\nparams = 70e9\nworker = 127.0.0.1:8092\n"
		 "[model tiny]\nparams = 1e9\nworker = 127.0.0.1:8093\n", steer);
	assert_int_equal(load(text), 0);
	assert_int_equal(cfg.n_pools, 2);
	assert_string_equal(cfg.pools[0].name, "fast");
	assert_int_equal(cfg.pools[0].models, 1u << 0 | 1u << 2);
	assert_int_equal(cfg.pools[0].line, 18);
	assert_int_equal(cfg.pools[1].models, 1u << 0 | 1u << 1);
	assert_int_equal(serve_config_pool(&cfg, "all"), 1);
	assert_int_equal(serve_config_pool(&cfg, "small"), -1);
	serve_config_free(&cfg);

	snprintf(text, sizeof(text), "%s[model a]\nparams = 70e9\nworker = 127.0.0.1:1\n[pool p]\nmodels = a b\n", steer);
	assert_error(text, 21, "[pool p] models: no [model b]");
	snprintf(text, sizeof(text), "%s[model a]\nparams = 70e9\nworker = 127.0.0.1:1\n[pool a]\nmodels = a\n", steer);
	assert_error(text, 21, "[pool a]: that name is taken");
	snprintf(text, sizeof(text), "%s[model a]\nparams = 70e9\nworker = 127.0.0.1:1\n[pool auto]\nmodels = a\n", steer);
	assert_error(text, 21, "[pool auto]: that name is taken");
	snprintf(text, sizeof(text), "%s[model a]\nparams = 70e9\nworker = 127.0.0.1:1\n[pool p]\nmodels =\n", steer);
	assert_error(text, 21, "name at least one model");
	snprintf(text, sizeof(text), "%s[model a]\nparams = 70e9\nworker = 127.0.0.1:1\n[pool p]\nsize = 2\n", steer);
	assert_error(text, 21, "unknown key 'size' in [pool p]");
	snprintf(text, sizeof(text), "%s[model a]\nparams = 70e9\nworker = 127.0.0.1:1\n[pool]\nmodels = a\n", steer);
	assert_error(text, 21, "needs a pool name");
	assert_error("[model a]\nparams = 1e9\nworker = 127.0.0.1:1\n[pool p]\nmodels = a\n", 5,
		     "[pool p]: a pool is steered");
}

static void write_at(const char *rel, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A fake /proc: 4242 owns the socket listening on 0.0.0.0:8091 (a wildcard
 * listener takes 127.0.0.1), 4243 owns a connected socket on the same port. */
static void test_pid_from_fake_proc(void **state)
{
	char p[512];
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(8091) };

	(void)state;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	snprintf(p, sizeof(p), "%s/net", dir);
	mkdir(p, 0755);
	write_at("net/tcp",
		 "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
		 "   0: 0100007F:1F9B 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 777 1\n"
		 "   1: 00000000:1F9B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1\n");
	write_at("net/tcp6", "  sl  local_address\n");
	for (int pid = 4242; pid <= 4243; pid++) {
		char target[64];

		snprintf(p, sizeof(p), "%s/%d", dir, pid);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/%d/fd", dir, pid);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/%d/fd/3", dir, pid);
		snprintf(target, sizeof(target), "socket:[%d]", pid == 4242 ? 555 : 777);
		assert_int_equal(symlink(target, p), 0);
	}
	assert_int_equal(serve_listener_pid(dir, (struct sockaddr *)&sin), 4242);
	sin.sin_port = htons(8092);
	assert_int_equal(serve_listener_pid(dir, (struct sockaddr *)&sin), 0);

	assert_int_equal(load("[model a]\nparams = 1e9\nworker = 127.0.0.1:8091\n"
			      "worker = 127.0.0.1:8092\nworker = 127.0.0.1:8093 pid=7\n"), 0);
	assert_int_equal(serve_config_find_pids(&cfg, dir), 1);
	assert_int_equal(cfg.workers[0].pid, 4242);
	assert_int_equal(cfg.workers[1].pid, 0);
	assert_int_equal(cfg.workers[2].pid, 7);
}

/* The real /proc: this process listening on a loopback port is found. */
static void test_pid_from_real_socket(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(serve_listener_pid(NULL, (struct sockaddr *)&sin), getpid());
	close(fd);
	assert_int_equal(serve_listener_pid(NULL, (struct sockaddr *)&sin), 0);
}

static double jpr_values[4];

static double fake_jpr(void *ud, size_t worker)
{
	(void)ud;
	return jpr_values[worker];
}

/* The worker choice: fewest outstanding, then lower J/request, skipping
 * tried workers and preferring those up. */
static void test_upstream_pick(void **state)
{
	struct upstreams *u;

	(void)state;
	assert_int_equal(load("[model a]\nparams = 1\nworker = 127.0.0.1:1\nworker = 127.0.0.1:2\n"
			      "worker = 127.0.0.1:3\n[model b]\nparams = 1\nworker = 127.0.0.1:4\n"), 0);
	jpr_values[0] = 2.0;
	jpr_values[1] = 1.0;
	jpr_values[2] = NAN;	/* not measured yet: after the measured ones */
	jpr_values[3] = 5.0;
	u = upstreams_new(&cfg, 0, fake_jpr, NULL);
	assert_non_null(u);
	assert_int_equal(upstreams_pick(u, 0, 0), 1);		/* lowest J/request */
	assert_int_equal(upstreams_pick(u, 0, 0), 0);		/* 1 is busy now */
	assert_int_equal(upstreams_pick(u, 0, 0), 2);		/* the only idle one */
	assert_int_equal(upstreams_outstanding(u, 1), 1);
	upstreams_release(u, 2);
	assert_int_equal(upstreams_pick(u, 0, 0), 2);
	upstreams_release(u, 0);
	upstreams_release(u, 1);
	upstreams_release(u, 2);
	assert_int_equal(upstreams_pick(u, 0, 1ULL << 1), 0);	/* 1 was tried */
	upstreams_release(u, 0);
	upstreams_mark(u, 1, false);
	upstreams_mark(u, 0, false);
	assert_int_equal(upstreams_pick(u, 0, 0), 2);		/* up beats lower J */
	upstreams_release(u, 2);
	upstreams_mark(u, 2, false);
	assert_int_equal(upstreams_pick(u, 0, 0), 1);		/* all down: still tried */
	upstreams_release(u, 1);
	assert_int_equal(upstreams_pick(u, 0, 7), -1);		/* every one tried */
	assert_int_equal(upstreams_pick(u, 1, 0), 3);		/* its own model only */
	upstreams_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_steering),
		cmocka_unit_test(test_pools),
		cmocka_unit_test(test_pid_from_fake_proc),
		cmocka_unit_test(test_pid_from_real_socket),
		cmocka_unit_test(test_upstream_pick),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

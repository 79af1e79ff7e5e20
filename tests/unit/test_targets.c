/* Target specs and config files, against a fake /proc tree. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "targets.h"
#include "procfs.h"

static char root[256];

static void write_file(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void fake_proc(int pid, const char *comm, int ppid, char state)
{
	char dir[512], text[256], rel[64];

	snprintf(dir, sizeof(dir), "%s/%d", root, pid);
	mkdir(dir, 0755);
	snprintf(rel, sizeof(rel), "%d/comm", pid);
	snprintf(text, sizeof(text), "%s\n", comm);
	write_file(rel, text);
	snprintf(rel, sizeof(rel), "%d/stat", pid);
	/* comm with a space and a ')' to check the parser */
	snprintf(text, sizeof(text), "%d (%s) x) %c %d 1 1 0 -1 4194304 1 0 0 0 250 50 0 0 20 0 1 0\n",
		 pid, comm, state, ppid);
	write_file(rel, text);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/erg-test-targets-XXXXXX");
	assert_non_null(mkdtemp(root));
	fake_proc(100, "llama-server", 1, 'S');
	fake_proc(101, "python3", 100, 'R');
	fake_proc(102, "dead", 1, 'Z');
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd);
}

static void pid_spec_with_and_without_model(void **state)
{
	struct target_set set = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(target_add(&set, TARGET_PID, "100=qwen-7b", root, err, sizeof(err)), 0);
	assert_int_equal(target_add(&set, TARGET_PID, "101", root, err, sizeof(err)), 0);
	assert_int_equal(set.n, 2);
	assert_int_equal(set.items[0].pid, 100);
	assert_string_equal(set.items[0].model, "qwen-7b");
	assert_string_equal(set.items[1].model, "python3");	/* process name */
	targets_free(&set);
}

static void bad_pid_specs(void **state)
{
	struct target_set set = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(target_add(&set, TARGET_PID, "abc", root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a process id"));
	assert_int_equal(target_add(&set, TARGET_PID, "4242", root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no such process"));
	assert_int_equal(target_add(&set, TARGET_PID, "102", root, err, sizeof(err)), -1);	/* zombie */
	assert_int_equal(target_add(&set, TARGET_PID, "-5", root, err, sizeof(err)), -1);
	assert_int_equal(target_add(&set, TARGET_PID, "100=", root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "model name"));
	assert_int_equal(target_add(&set, TARGET_PID, "100=a b", root, err, sizeof(err)), -1);
	assert_int_equal(set.n, 0);	/* nothing half-added */
	targets_free(&set);
}

static void comm_specs(void **state)
{
	struct target_set set = { 0 };
	char err[256];

	(void)state;
	/* a name that runs nowhere yet is fine: it may start later */
	assert_int_equal(target_add(&set, TARGET_COMM, "vllm=qwen-32b", root, err, sizeof(err)), 0);
	assert_int_equal(target_add(&set, TARGET_COMM, "llama-server", root, err, sizeof(err)), 0);
	assert_string_equal(set.items[0].comm, "vllm");
	assert_string_equal(set.items[1].model, "llama-server");
	assert_int_equal(target_add(&set, TARGET_COMM, "sixteen-chars-xx", root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 15"));
	targets_free(&set);
}

static void cgroup_must_be_cgroup2(void **state)
{
	struct target_set set = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(target_add(&set, TARGET_CGROUP, "/nonexistent", root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no such cgroup"));
	assert_int_equal(target_add(&set, TARGET_CGROUP, "/tmp", root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a cgroup v2"));
	targets_free(&set);
}

static void config_file(void **state)
{
	struct target_set set = { 0 };
	char err[512], path[300];
	const char *names[8];
	size_t model_of[8], n;

	(void)state;
	write_file("good.ini",
		   "; workers of two models\n"
		   "[power]\n"
		   "source = model\n"
		   "idle_watts = 12.5\n"
		   "watts_per_busy_core = 4\n"
		   "\n"
		   "[model qwen-7b]\n"
		   "pid = 100 101\n"
		   "comm = vllm\n"
		   "[model llama-70b]\n"
		   "comm = llama-server\n");
	snprintf(path, sizeof(path), "%s/good.ini", root);
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), 0);
	assert_int_equal(set.n, 4);
	assert_true(set.have_source);
	assert_int_equal(set.source, ENERGY_MODEL);
	assert_true(set.power.idle_watts == 12.5);
	assert_true(set.power.watts_per_busy_core == 4.0);
	n = targets_models(&set, names, 8, model_of);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "qwen-7b");
	assert_string_equal(names[1], "llama-70b");
	assert_int_equal(model_of[0], 0);
	assert_int_equal(model_of[1], 0);
	assert_int_equal(model_of[2], 0);
	assert_int_equal(model_of[3], 1);
	targets_free(&set);
}

static void config_errors_name_file_and_line(void **state)
{
	struct target_set set = { 0 };
	char err[512], path[300], want[400];

	(void)state;
	snprintf(path, sizeof(path), "%s/bad.ini", root);

	write_file("bad.ini", "[model a]\npid = 100\n\nspeed = 3\n");
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: [model a] unknown key 'speed'", path);
	assert_non_null(strstr(err, want));
	targets_free(&set);

	write_file("bad.ini", "[power]\nsource = wind\n");
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: [power] source = 'wind'", path);
	assert_non_null(strstr(err, want));
	targets_free(&set);

	write_file("bad.ini", "[gpu]\nx = 1\n");
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown section [gpu]"));
	targets_free(&set);

	write_file("bad.ini", "[model a]\nthis line has no equals sign\n");
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: cannot parse this line", path);
	assert_non_null(strstr(err, want));
	targets_free(&set);

	write_file("bad.ini", "[model a]\npid = 100 9999\n");
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: --pid 9999: no such process"));
	targets_free(&set);
}

/* [power] values obey the command line's range (above 0, at most 1e6 W):
 * inf, nan and 1e300 are refused with the range, the file and the line. */
static void config_power_values_in_range(void **state)
{
	static const char *const bad[] = { "inf", "1e300", "nan", "-1", "1e7", "0", "12abc" };
	struct target_set set = { 0 };
	char err[512], path[300], want[400], text[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/power.ini", root);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int k = 0; k < 2; k++) {
			const char *key = k ? "watts_per_busy_core" : "idle_watts";

			snprintf(text, sizeof(text), "[power]\nsource = model\n%s = %s\n", key, bad[i]);
			write_file("power.ini", text);
			assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
			snprintf(want, sizeof(want), "%s:3: [power] %s", path, key);
			if (!strstr(err, want) || !strstr(err, "at most 1e+06"))
				fail_msg("%s = %s: '%s'", key, bad[i], err);
			targets_free(&set);
		}
	}
	write_file("power.ini", "[power]\nidle_watts = 1e6\nwatts_per_busy_core = 5e-324\n");
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), 0);
	assert_true(set.power.idle_watts == 1e6);
	targets_free(&set);
}

/* Lines of any length: a 300-character comment on line 1 is a comment
 * (the fault run got "syntax error" on line 2), a long value is read
 * whole, and a real syntax error is named by its own line. */
static void config_long_lines(void **state)
{
	struct target_set set = { 0 };
	char err[512], path[300], want[400];
	char *text = malloc(20000);
	size_t n = 0;

	(void)state;
	assert_non_null(text);
	snprintf(path, sizeof(path), "%s/long.ini", root);
	text[n++] = ';';
	memset(text + n, 'c', 300);
	n += 300;
	n += sprintf(text + n, "\n[model qwen-7b]\npid = 100");
	memset(text + n, ' ', 5000);		/* a value far over inih's 200 */
	n += 5000;
	n += sprintf(text + n, "101\ncomm = vllm\n");
	write_file("long.ini", text);
	if (targets_load_config(&set, path, root, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(set.n, 3);
	assert_int_equal(set.items[1].pid, 101);
	targets_free(&set);

	n = 0;
	text[n++] = '#';
	memset(text + n, 'c', 300);
	n += 300;
	sprintf(text + n, "\n[model a]\nno equals sign here\n");
	write_file("long.ini", text);
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: cannot parse this line", path);
	if (!strstr(err, want))
		fail_msg("want '%s', got '%s'", want, err);
	targets_free(&set);
	free(text);
}

/* --config must be a regular file: a directory is an error, not an empty
 * config; /dev/zero and a FIFO are refused at once. */
static void config_special_files(void **state)
{
	struct target_set set = { 0 };
	char err[512], path[300];

	(void)state;
	assert_int_equal(targets_load_config(&set, root, root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is a directory, not a regular file"));
	assert_int_equal(targets_load_config(&set, "/dev/zero", root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is a character device"));
	snprintf(path, sizeof(path), "%s/fifo.ini", root);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(10);
	assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
	alarm(0);
	assert_non_null(strstr(err, "is a FIFO"));
	unlink(path);
	targets_free(&set);
}

/* Names and values from a config file come back escaped, never as raw
 * escape codes on the terminal. */
static void config_echoes_escaped(void **state)
{
	static const char *const files[] = {
		"[model a]\ncomm = \033[2Jaaaaaaaaaaaaaaaaaaaaaaa\n",
		"[model \033[31m]\ncomm = x\n",
		"[model a]\ncgroup = /nonexistent/\033]0;t\a\n",
		"[power]\nsource = \033[5m\n",
		"[\033[1m]\nx = 1\n",
	};
	struct target_set set = { 0 };
	char err[512], path[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/esc.ini", root);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		write_file("esc.ini", files[i]);
		assert_int_equal(targets_load_config(&set, path, root, err, sizeof(err)), -1);
		if (strchr(err, '\033') || strchr(err, '\a') || !strstr(err, "\\x1b"))
			fail_msg("file %zu: '%s'", i, err);
		targets_free(&set);
	}
}

static void procfs_readers(void **state)
{
	char comm[32];

	(void)state;
	assert_int_equal(procfs_ppid(root, 101), 100);
	assert_int_equal(procfs_comm(root, 100, comm, sizeof(comm)), 0);
	assert_string_equal(comm, "llama-server");
	assert_true(procfs_cpu_seconds(root, 100) * sysconf(_SC_CLK_TCK) > 299.9);	/* 250 + 50 ticks */
	assert_true(procfs_cpu_seconds(root, 100) * sysconf(_SC_CLK_TCK) < 300.1);
	assert_false(procfs_exists(root, 102));
	assert_int_equal(procfs_ppid(root, 555), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pid_spec_with_and_without_model),
		cmocka_unit_test(bad_pid_specs),
		cmocka_unit_test(comm_specs),
		cmocka_unit_test(cgroup_must_be_cgroup2),
		cmocka_unit_test(config_file),
		cmocka_unit_test(config_errors_name_file_and_line),
		cmocka_unit_test(config_power_values_in_range),
		cmocka_unit_test(config_long_lines),
		cmocka_unit_test(config_special_files),
		cmocka_unit_test(config_echoes_escaped),
		cmocka_unit_test(procfs_readers),
	};
	return cmocka_run_group_tests_name("targets", tests, setup, teardown);
}

/* GPU energy: without NVML the power model, said clearly; with the stub
 * NVML of tests/gpu (built next to this test), the counter, power
 * integration, utilisation and per-process samples. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvml.h"

static char stub_path[PATH_MAX];

static void find_stub(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return;
	exe[n] = '\0';
	/* OUT/tests/test_nvml -> OUT/gpu/nvml/libnvidia-ml.so.1 */
	snprintf(stub_path, sizeof(stub_path), "%s/../gpu/nvml/libnvidia-ml.so.1", dirname(exe));
	if (access(stub_path, R_OK))
		stub_path[0] = '\0';
}

static void clear_stub_env(void)
{
	unsetenv("ERG_STUB_NVML_INIT_FAIL");
	unsetenv("ERG_STUB_NVML_DEVICES");
	unsetenv("ERG_STUB_NVML_ENERGY_MJ");
	unsetenv("ERG_STUB_NVML_POWER_MW");
	unsetenv("ERG_STUB_NVML_UTIL");
	unsetenv("ERG_STUB_NVML_PROCS");
}

static struct gpu_energy *open_with(const char *lib, const struct gpu_model *m, size_t devices)
{
	struct nvml_opts o = { .library = lib, .model_devices = devices };

	if (m)
		o.model = *m;
	return nvml_open(&o, 100.0);
}

static void absent_nvml_gives_the_model(void **state)
{
	struct gpu_energy *g = open_with("/nonexistent/libnvidia-ml.so.1", NULL, 0);
	double busy[1] = { 0.5 }, j[1];
	char err[256];

	(void)state;
	assert_non_null(g);
	assert_string_equal(nvml_source(g), "model");
	assert_false(nvml_measured(g));
	assert_int_equal(nvml_devices(g), 1);
	/* the header line says model, with the defaults and why */
	assert_true(strncmp(nvml_describe(g), "GPU energy: model: 1 device", 27) == 0);
	assert_non_null(strstr(nvml_describe(g), "70.0 W idle + 630.0 W x busy"));
	assert_non_null(strstr(nvml_describe(g), "NVML not available"));
	assert_non_null(strstr(nvml_describe(g), "/nonexistent/libnvidia-ml.so.1"));
	/* 2 s, busy 0.5 s: 70 W x 2 s + 630 W x 0.5 s */
	assert_int_equal(nvml_read(g, 102.0, busy, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 140.0 + 315.0, 1e-9);
	assert_true(nvml_device_util(g, 0) < 0);
	assert_int_equal(nvml_process_util(g, 0, NULL, 0), -1);
	nvml_close(g);
}

static void model_busy_is_capped_and_idle_without_busy(void **state)
{
	struct gpu_energy *g = open_with("/nonexistent/libnvidia-ml.so.1", NULL, 2);
	double busy[2] = { 5.0, 0.0 }, j[2];
	char err[256];

	(void)state;
	assert_int_equal(nvml_devices(g), 2);
	assert_int_equal(nvml_read(g, 101.0, busy, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 700.0, 1e-9);	/* busy above the interval: 100% */
	assert_float_equal(j[1], 70.0, 1e-9);
	assert_int_equal(nvml_read(g, 102.0, NULL, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 70.0, 1e-9);
	nvml_close(g);
}

static void model_is_configurable_per_device(void **state)
{
	struct gpu_model m = { 0 };
	double busy[3] = { 1.0, 0.5, 0.0 }, j[3];
	char err[256];
	struct gpu_energy *g;

	(void)state;
	assert_int_equal(gpu_model_parse("50,60", m.idle_watts, &m.n_idle, err, sizeof(err)), 0);
	assert_int_equal(gpu_model_parse("100", m.active_watts, &m.n_active, err, sizeof(err)), 0);
	g = open_with("/nonexistent/libnvidia-ml.so.1", &m, 3);
	assert_float_equal(nvml_idle_watts(g, 0), 50.0, 0);
	assert_float_equal(nvml_idle_watts(g, 1), 60.0, 0);
	assert_float_equal(nvml_idle_watts(g, 2), 60.0, 0);	/* the last value repeats */
	assert_float_equal(nvml_active_watts(g, 2), 100.0, 0);
	assert_non_null(strstr(nvml_describe(g), "gpu1 60.0 W idle + 100.0 W x busy"));
	assert_int_equal(nvml_read(g, 101.0, busy, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 150.0, 1e-9);
	assert_float_equal(j[1], 110.0, 1e-9);
	assert_float_equal(j[2], 60.0, 1e-9);
	nvml_close(g);
}

static void model_values_are_checked(void **state)
{
	double w[GPU_MAX_DEVICES];
	size_t n = 99;
	char err[256];

	(void)state;
	assert_int_equal(gpu_model_parse("", w, &n, err, sizeof(err)), -1);
	assert_int_equal(gpu_model_parse("abc", w, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected watts"));
	assert_int_equal(gpu_model_parse("-1", w, &n, err, sizeof(err)), -1);
	assert_int_equal(gpu_model_parse("1,,2", w, &n, err, sizeof(err)), -1);
	assert_int_equal(gpu_model_parse("60,nan", w, &n, err, sizeof(err)), -1);
	assert_int_equal(gpu_model_parse("1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", w, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 16"));
	assert_int_equal(n, 99);
	assert_int_equal(gpu_model_parse("0,75.5", w, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_float_equal(w[1], 75.5, 0);
}

static void disabled_nvml_says_so(void **state)
{
	struct nvml_opts o = { .disable = true };
	struct gpu_energy *g = nvml_open(&o, 0.0);

	(void)state;
	assert_string_equal(nvml_source(g), "model");
	assert_non_null(strstr(nvml_describe(g), "--no-nvml"));
	nvml_close(g);
}

static void not_a_library_gives_the_model(void **state)
{
	char path[] = "/tmp/erg-test-nvml-XXXXXX";
	int fd = mkstemp(path);
	struct gpu_energy *g;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not ELF\n", 8), 8);
	close(fd);
	g = open_with(path, NULL, 0);
	assert_string_equal(nvml_source(g), "model");
	assert_non_null(strstr(nvml_describe(g), "NVML not available"));
	nvml_close(g);
	unlink(path);
}

#define NEED_STUB() do { if (!stub_path[0]) { skip(); } clear_stub_env(); } while (0)

static void stub_energy_counter(void **state)
{
	struct gpu_energy *g;
	double j[2];
	char err[256];

	(void)state;
	NEED_STUB();
	setenv("ERG_STUB_NVML_DEVICES", "2", 1);
	setenv("ERG_STUB_NVML_ENERGY_MJ", "1000,5000", 1);
	setenv("ERG_STUB_NVML_UTIL", "40,0", 1);
	g = open_with(stub_path, NULL, 0);
	assert_string_equal(nvml_source(g), "nvml");
	assert_true(nvml_measured(g));
	assert_int_equal(nvml_devices(g), 2);
	assert_true(strncmp(nvml_describe(g), "GPU energy: nvml: 2 devices (erg stub NVML device 0", 51) == 0);
	assert_non_null(strstr(nvml_describe(g), "2 by total energy counter"));
	setenv("ERG_STUB_NVML_ENERGY_MJ", "3500,5000", 1);
	assert_int_equal(nvml_read(g, 101.0, NULL, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 2.5, 1e-12);	/* 2500 mJ */
	assert_float_equal(j[1], 0.0, 1e-12);
	assert_float_equal(nvml_device_util(g, 0), 0.4, 1e-12);
	/* a counter that went back (driver reloaded) restarts, no negative */
	setenv("ERG_STUB_NVML_ENERGY_MJ", "10,5100", 1);
	assert_int_equal(nvml_read(g, 102.0, NULL, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 0.0, 1e-12);
	assert_float_equal(j[1], 0.1, 1e-12);
	setenv("ERG_STUB_NVML_ENERGY_MJ", "1010,5100", 1);
	assert_int_equal(nvml_read(g, 103.0, NULL, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 1.0, 1e-12);
	nvml_close(g);
	clear_stub_env();
}

static void stub_power_integrated(void **state)
{
	struct gpu_energy *g;
	double j[1];
	char err[256];

	(void)state;
	NEED_STUB();
	setenv("ERG_STUB_NVML_POWER_MW", "200000", 1);
	g = open_with(stub_path, NULL, 0);
	assert_string_equal(nvml_source(g), "nvml");
	assert_non_null(strstr(nvml_describe(g), "power readings integrated"));
	setenv("ERG_STUB_NVML_POWER_MW", "300000", 1);
	assert_int_equal(nvml_read(g, 102.0, NULL, j, err, sizeof(err)), 0);
	assert_float_equal(j[0], 500.0, 1e-9);	/* (200 + 300) / 2 W x 2 s */
	nvml_close(g);
	clear_stub_env();
}

static void stub_process_samples(void **state)
{
	struct nvml_proc_util pu[8];
	struct gpu_energy *g;
	int n;

	(void)state;
	NEED_STUB();
	setenv("ERG_STUB_NVML_ENERGY_MJ", "0", 1);
	setenv("ERG_STUB_NVML_PROCS", "0:100:50:10;0:100:70:20;0:200:10:30", 1);
	g = open_with(stub_path, NULL, 0);
	n = nvml_process_util(g, 0, pu, 8);
	assert_int_equal(n, 2);
	assert_int_equal(pu[0].pid, 100);
	assert_float_equal(pu[0].busy_frac, 0.6, 1e-12);	/* mean of 50% and 70% */
	assert_int_equal(pu[1].pid, 200);
	assert_float_equal(pu[1].busy_frac, 0.1, 1e-12);
	/* only samples newer than the last one seen */
	assert_int_equal(nvml_process_util(g, 0, pu, 8), 0);
	setenv("ERG_STUB_NVML_PROCS", "0:100:50:10;0:300:90:40", 1);
	assert_int_equal(nvml_process_util(g, 0, pu, 8), 1);
	assert_int_equal(pu[0].pid, 300);
	nvml_close(g);
	clear_stub_env();
}

static void stub_without_driver_or_devices(void **state)
{
	struct gpu_energy *g;

	(void)state;
	NEED_STUB();
	setenv("ERG_STUB_NVML_INIT_FAIL", "9", 1);
	g = open_with(stub_path, NULL, 0);
	assert_string_equal(nvml_source(g), "model");
	assert_non_null(strstr(nvml_describe(g), "nvmlInit failed: Driver Not Loaded"));
	nvml_close(g);
	clear_stub_env();
	setenv("ERG_STUB_NVML_DEVICES", "0", 1);
	g = open_with(stub_path, NULL, 0);
	assert_string_equal(nvml_source(g), "model");
	assert_non_null(strstr(nvml_describe(g), "NVML sees no GPU"));
	nvml_close(g);
	clear_stub_env();
	/* devices, but neither energy nor power: modelled */
	g = open_with(stub_path, NULL, 0);
	assert_string_equal(nvml_source(g), "model");
	assert_non_null(strstr(nvml_describe(g), "neither energy nor power"));
	nvml_close(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(absent_nvml_gives_the_model),
		cmocka_unit_test(model_busy_is_capped_and_idle_without_busy),
		cmocka_unit_test(model_is_configurable_per_device),
		cmocka_unit_test(model_values_are_checked),
		cmocka_unit_test(disabled_nvml_says_so),
		cmocka_unit_test(not_a_library_gives_the_model),
		cmocka_unit_test(stub_energy_counter),
		cmocka_unit_test(stub_power_integrated),
		cmocka_unit_test(stub_process_samples),
		cmocka_unit_test(stub_without_driver_or_devices),
	};

	find_stub();
	if (!stub_path[0])
		fprintf(stderr, "test_nvml: the stub NVML (OUT/gpu/nvml/libnvidia-ml.so.1) is not built: its tests are SKIPPED (run make)\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Energy readers against fake sysfs/procfs trees built in a temp directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "energy.h"

struct tree {
	char root[256];
	char sys[512];
	char proc[512];
};

static void mkdirs(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

/* Writes base/rel with printf content, creating parent directories. */
static void put(const char *base, const char *rel, const char *fmt, ...)
{
	char path[PATH_MAX], dir[PATH_MAX];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	f = fopen(path, "w");
	assert_non_null(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static void rm(const char *base, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	assert_int_equal(unlink(path), 0);
}

/* /proc/stat with ncpu cpuN lines; the aggregate line holds the given
 * user nice system idle iowait irq softirq steal guest guest_nice. */
static void put_stat(struct tree *t, int ncpu, const unsigned long long v[10])
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "cpu  %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\n",
			 v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
	for (int i = 0; i < ncpu; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "cpu%d 1 0 1 100 0 0 0 0 0 0\n", i);
	snprintf(buf + n, sizeof(buf) - n, "intr 12345 0 0\nctxt 999\nbtime 1700000000\n");
	put(t->proc, "stat", "%s", buf);
}

static const unsigned long long stat0[10] = { 100, 20, 30, 1000, 50, 5, 5, 10, 40, 0 };

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->root, sizeof(t->root), "/tmp/erg-energy-XXXXXX");
	if (!mkdtemp(t->root))
		return -1;
	snprintf(t->sys, sizeof(t->sys), "%s/sys", t->root);
	snprintf(t->proc, sizeof(t->proc), "%s/proc", t->root);
	mkdirs(t->sys);
	mkdirs(t->proc);
	put_stat(t, 2, stat0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tree *t = *state;

	nftw(t->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

static struct energy_source *open_src(struct tree *t, enum energy_choice c, double now,
				      char *err, size_t errlen)
{
	struct energy_opts o = { .choice = c, .sysfs_root = t->sys, .procfs_root = t->proc };

	return energy_open(&o, now, err, errlen);
}

static void rapl_zone(struct tree *t, const char *zone, unsigned long long uj,
		      unsigned long long max)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "class/powercap/%s/energy_uj", zone);
	put(t->sys, rel, "%llu\n", uj);
	snprintf(rel, sizeof(rel), "class/powercap/%s/max_energy_range_uj", zone);
	put(t->sys, rel, "%llu\n", max);
}

static void set_uj(struct tree *t, const char *zone, unsigned long long uj)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "class/powercap/%s/energy_uj", zone);
	put(t->sys, rel, "%llu\n", uj);
}

/* ---- tests --------------------------------------------------------------- */

static void test_choice_parse(void **state)
{
	enum energy_choice c = ENERGY_MODEL;
	(void)state;

	assert_true(energy_choice_parse("auto", &c));
	assert_int_equal(c, ENERGY_AUTO);
	assert_true(energy_choice_parse("rapl", &c));
	assert_int_equal(c, ENERGY_RAPL);
	assert_true(energy_choice_parse("hwmon", &c));
	assert_int_equal(c, ENERGY_HWMON);
	assert_true(energy_choice_parse("model", &c));
	assert_int_equal(c, ENERGY_MODEL);
	c = ENERGY_HWMON;
	assert_false(energy_choice_parse("nvml", &c));
	assert_false(energy_choice_parse("", &c));
	assert_false(energy_choice_parse("rapl ", &c));
	assert_false(energy_choice_parse(NULL, &c));
	assert_int_equal(c, ENERGY_HWMON);	/* untouched on failure */
}

static void test_rapl_single(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	struct energy_source *src;

	rapl_zone(t, "intel-rapl:0", 1000000, 262143328850ULL);
	put(t->sys, "class/powercap/intel-rapl:0/name", "package-0\n");
	src = open_src(t, ENERGY_RAPL, 10.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "rapl");
	assert_true(energy_is_measured(src));
	assert_non_null(strstr(energy_describe(src), "1 package domain"));
	assert_non_null(strstr(energy_describe(src), "measured"));

	set_uj(t, "intel-rapl:0", 3500000);
	assert_int_equal(energy_read(src, 11.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 2.5, 1e-9);
	assert_float_equal(s.wall_s, 1.0, 1e-12);
	set_uj(t, "intel-rapl:0", 3750000);
	assert_int_equal(energy_read(src, 12.5, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 2.75, 1e-9);
	assert_float_equal(s.wall_s, 2.5, 1e-12);
	energy_close(src);
}

static void test_rapl_multi_skips_subzones(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	struct energy_source *src;

	rapl_zone(t, "intel-rapl:0", 1000000, 262143328850ULL);
	rapl_zone(t, "intel-rapl:1", 5000000, 262143328850ULL);
	rapl_zone(t, "intel-rapl:0:0", 100, 262143328850ULL);	/* core, inside pkg 0 */
	rapl_zone(t, "intel-rapl:1:0", 100, 262143328850ULL);	/* dram */
	rapl_zone(t, "intel-rapl-mmio:0", 100, 262143328850ULL);	/* mirror of pkg 0 */
	put(t->sys, "class/powercap/intel-rapl/enabled", "1\n");	/* control type dir */
	src = open_src(t, ENERGY_AUTO, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "rapl");
	assert_non_null(strstr(energy_describe(src), "2 package domains"));

	set_uj(t, "intel-rapl:0", 3000000);		/* +2 J */
	set_uj(t, "intel-rapl:1", 8000000);		/* +3 J */
	set_uj(t, "intel-rapl:0:0", 900000100);		/* sub-zones must not count */
	set_uj(t, "intel-rapl:1:0", 700000100);
	set_uj(t, "intel-rapl-mmio:0", 600000100);
	assert_int_equal(energy_read(src, 1.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 5.0, 1e-9);
	energy_close(src);
}

static void test_rapl_psys_only_when_alone(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	struct energy_source *src;

	rapl_zone(t, "intel-rapl:0", 1000000, 262143328850ULL);
	put(t->sys, "class/powercap/intel-rapl:0/name", "package-0\n");
	rapl_zone(t, "intel-rapl:1", 1000000, 262143328850ULL);
	put(t->sys, "class/powercap/intel-rapl:1/name", "psys\n");
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_non_null(src);
	set_uj(t, "intel-rapl:0", 2000000);
	set_uj(t, "intel-rapl:1", 9000000);	/* platform, contains the package */
	assert_int_equal(energy_read(src, 1.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 1.0, 1e-9);
	energy_close(src);
}

static void test_rapl_wraparound(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	const unsigned long long max = 1000000000ULL;	/* 1000 J range */
	struct energy_source *src;

	rapl_zone(t, "intel-rapl:0", 999000000ULL, max);
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_non_null(src);

	set_uj(t, "intel-rapl:0", 500000);	/* wrapped: (max - 999e6) + 0.5e6 uJ */
	assert_int_equal(energy_read(src, 1.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, ((double)(max - 999000000ULL) + 500000.0) * 1e-6, 1e-9);
	assert_float_equal(s.joules, 1.5, 1e-9);

	set_uj(t, "intel-rapl:0", 2500000);	/* no wrap: +2 J */
	assert_int_equal(energy_read(src, 2.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 3.5, 1e-9);

	set_uj(t, "intel-rapl:0", 1000000);	/* wrapped again: 997.5 + 1 J */
	assert_int_equal(energy_read(src, 3.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 3.5 + 997.5 + 1.0, 1e-9);
	energy_close(src);
}

static void test_rapl_missing_energy_uj(void **state)
{
	struct tree *t = *state;
	struct energy_sample s = { .joules = -7 };
	char err[512] = "";
	struct energy_source *src;

	put(t->sys, "class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n");
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_null(src);
	assert_non_null(strstr(err, "intel-rapl:0/energy_uj"));

	/* vanishing after open: the read fails, names the file, and leaves the
	 * sample alone */
	rapl_zone(t, "intel-rapl:0", 1000000, 262143328850ULL);
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_non_null(src);
	rm(t->sys, "class/powercap/intel-rapl:0/energy_uj");
	err[0] = '\0';
	assert_int_equal(energy_read(src, 1.0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "intel-rapl:0/energy_uj"));
	assert_float_equal(s.joules, -7, 0);
	/* and the next good read carries on from the last good value */
	set_uj(t, "intel-rapl:0", 1250000);
	assert_int_equal(energy_read(src, 2.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 0.25, 1e-9);
	energy_close(src);
}

static void test_rapl_garbled(void **state)
{
	struct tree *t = *state;
	struct energy_sample s = { .joules = -7 };
	char err[512] = "";
	struct energy_source *src;

	rapl_zone(t, "intel-rapl:0", 1000000, 262143328850ULL);
	put(t->sys, "class/powercap/intel-rapl:0/energy_uj", "12ab\n");
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_null(src);
	assert_non_null(strstr(err, "intel-rapl:0/energy_uj"));
	assert_non_null(strstr(err, "12ab"));

	put(t->sys, "class/powercap/intel-rapl:0/energy_uj", "1000\n");
	put(t->sys, "class/powercap/intel-rapl:0/max_energy_range_uj", "-5\n");
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_null(src);
	assert_non_null(strstr(err, "max_energy_range_uj"));

	put(t->sys, "class/powercap/intel-rapl:0/max_energy_range_uj", "0\n");
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_null(src);
	assert_non_null(strstr(err, "max_energy_range_uj"));

	put(t->sys, "class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n");
	src = open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err));
	assert_non_null(src);
	put(t->sys, "class/powercap/intel-rapl:0/energy_uj", "");
	assert_int_equal(energy_read(src, 1.0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "intel-rapl:0/energy_uj"));
	assert_float_equal(s.joules, -7, 0);
	energy_close(src);
}

static void test_hwmon_energy(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	struct energy_source *src;

	put(t->sys, "class/hwmon/hwmon0/name", "amd_energy\n");
	put(t->sys, "class/hwmon/hwmon0/energy1_input", "1000000\n");
	put(t->sys, "class/hwmon/hwmon0/energy1_label", "Esocket0\n");
	put(t->sys, "class/hwmon/hwmon0/energy2_input", "5000\n");
	put(t->sys, "class/hwmon/hwmon0/energy2_label", "Ecore000\n");	/* inside socket */
	put(t->sys, "class/hwmon/hwmon1/energy1_input", "2000000\n");
	put(t->sys, "class/hwmon/hwmon1/power1_input", "50000000\n");	/* energy wins */
	put(t->sys, "class/hwmon/hwmon1/energy1_average", "1\n");	/* not an input */
	src = open_src(t, ENERGY_HWMON, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "hwmon");
	assert_true(energy_is_measured(src));
	assert_non_null(strstr(energy_describe(src), "2 energy*_input counters"));

	put(t->sys, "class/hwmon/hwmon0/energy1_input", "4000000\n");	/* +3 J */
	put(t->sys, "class/hwmon/hwmon0/energy2_input", "9005000\n");	/* skipped */
	put(t->sys, "class/hwmon/hwmon1/energy1_input", "2500000\n");	/* +0.5 J */
	assert_int_equal(energy_read(src, 1.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 3.5, 1e-9);
	energy_close(src);
}

static void test_hwmon_power_integration(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	struct energy_source *src;

	put(t->sys, "class/hwmon/hwmon3/power1_input", "10000000\n");	/* 10 W */
	put(t->sys, "class/hwmon/hwmon3/power2_input", "0\n");
	put(t->sys, "class/hwmon/hwmon3/temp1_input", "45000\n");
	src = open_src(t, ENERGY_AUTO, 5.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "hwmon");
	assert_non_null(strstr(energy_describe(src), "power*_input"));

	/* trapezoid: (10 W + 20 W) / 2 * 2 s = 30 J, plus (0 + 4 W) / 2 * 2 s */
	put(t->sys, "class/hwmon/hwmon3/power1_input", "20000000\n");
	put(t->sys, "class/hwmon/hwmon3/power2_input", "4000000\n");
	assert_int_equal(energy_read(src, 7.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, (10.0 + 20.0) / 2 * 2.0 + (0.0 + 4.0) / 2 * 2.0, 1e-9);
	/* steady: 24 W for 0.5 s */
	assert_int_equal(energy_read(src, 7.5, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 34.0 + 24.0 * 0.5, 1e-9);
	/* same timestamp again adds nothing */
	assert_int_equal(energy_read(src, 7.5, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 46.0, 1e-9);
	assert_float_equal(s.wall_s, 2.5, 1e-12);
	energy_close(src);
}

static void test_auto_order(void **state)
{
	struct tree *t = *state;
	char err[512];
	struct energy_source *src;

	put(t->sys, "class/hwmon/hwmon0/energy1_input", "1\n");
	rapl_zone(t, "intel-rapl:0", 1, 262143328850ULL);
	src = open_src(t, ENERGY_AUTO, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "rapl");
	energy_close(src);

	rm(t->sys, "class/powercap/intel-rapl:0/energy_uj");
	rm(t->sys, "class/powercap/intel-rapl:0/max_energy_range_uj");
	src = open_src(t, ENERGY_AUTO, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "hwmon");
	energy_close(src);

	rm(t->sys, "class/hwmon/hwmon0/energy1_input");
	src = open_src(t, ENERGY_AUTO, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "model");
	assert_false(energy_is_measured(src));
	assert_non_null(strstr(energy_describe(src), "modelled"));
	energy_close(src);

	/* nothing at all under the sysfs root: still the model */
	struct energy_opts o = { .choice = ENERGY_AUTO, .sysfs_root = "/nonexistent-erg",
				 .procfs_root = t->proc };
	src = energy_open(&o, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "model");
	energy_close(src);
}

static void test_auto_broken_rapl_falls_back_and_says_why(void **state)
{
	struct tree *t = *state;
	char err[512];
	struct energy_source *src;

	rapl_zone(t, "intel-rapl:0", 1, 262143328850ULL);
	put(t->sys, "class/powercap/intel-rapl:0/energy_uj", "garbage\n");
	src = open_src(t, ENERGY_AUTO, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "model");
	assert_non_null(strstr(energy_describe(src), "rapl unusable"));
	assert_non_null(strstr(energy_describe(src), "intel-rapl:0/energy_uj"));
	energy_close(src);
}

static void test_forced_unavailable(void **state)
{
	struct tree *t = *state;
	char err[512] = "";

	assert_null(open_src(t, ENERGY_RAPL, 0.0, err, sizeof(err)));
	assert_non_null(strstr(err, t->sys));
	assert_non_null(strstr(err, "/class/powercap"));
	assert_non_null(strstr(err, "intel_rapl"));
	assert_non_null(strstr(err, "--energy-source model"));

	err[0] = '\0';
	assert_null(open_src(t, ENERGY_HWMON, 0.0, err, sizeof(err)));
	assert_non_null(strstr(err, "/class/hwmon"));
	assert_non_null(strstr(err, "--energy-source model"));

	/* a forced model never looks at sysfs */
	struct energy_source *src = open_src(t, ENERGY_MODEL, 0.0, err, sizeof(err));
	assert_non_null(src);
	energy_close(src);

	/* every source needs /proc/stat */
	struct energy_opts o = { .choice = ENERGY_AUTO, .sysfs_root = t->sys,
				 .procfs_root = "/nonexistent-erg" };
	assert_null(energy_open(&o, 0.0, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-erg/stat"));
}

static void test_model_joules(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	const double tck = (double)sysconf(_SC_CLK_TCK);
	struct energy_opts o = { .choice = ENERGY_MODEL, .sysfs_root = t->sys,
				 .procfs_root = t->proc,
				 .model = { .idle_watts = 3.0, .watts_per_busy_core = 4.0 } };
	struct energy_source *src;

	put_stat(t, 4, stat0);
	src = energy_open(&o, 100.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "model");
	assert_int_equal(energy_cpu_count(src), 4);
	assert_float_equal(energy_idle_watts(src), 3.0, 0);
	assert_non_null(strstr(energy_describe(src), "3.00 W idle + 4.00 W per busy core"));

	/* user +150 (of which guest +30), nice +10, system +40, idle +500,
	 * iowait +100, irq +3, softirq +7, steal +2 (stolen: not busy) */
	const unsigned long long v1[10] = { 250, 30, 70, 1500, 150, 8, 12, 12, 70, 0 };
	put_stat(t, 4, v1);
	assert_int_equal(energy_read(src, 102.0, &s, err, sizeof(err)), 0);
	double busy_ticks = (250 - 100) + (30 - 20) + (70 - 30) + (8 - 5) + (12 - 5);
	double busy_s = busy_ticks / tck;
	assert_float_equal(s.busy_cpu_s, busy_s, 1e-12);
	assert_float_equal(s.wall_s, 2.0, 1e-12);
	assert_float_equal(s.joules, 3.0 * 2.0 + 4.0 * busy_s, 1e-9);

	/* only guest and user move together: guest is not counted twice */
	const unsigned long long v2[10] = { 350, 30, 70, 1500, 150, 8, 12, 12, 170, 0 };
	put_stat(t, 4, v2);
	assert_int_equal(energy_read(src, 103.0, &s, err, sizeof(err)), 0);
	double busy_s2 = busy_s + 100.0 / tck;
	assert_float_equal(s.busy_cpu_s, busy_s2, 1e-12);
	assert_float_equal(s.joules, 3.0 * 3.0 + 4.0 * busy_s2, 1e-9);

	/* steal only: the hypervisor's time is neither busy nor energy here */
	const unsigned long long v2s[10] = { 350, 30, 70, 1500, 150, 8, 12, 512, 170, 0 };
	put_stat(t, 4, v2s);
	assert_int_equal(energy_read(src, 103.5, &s, err, sizeof(err)), 0);
	assert_float_equal(s.busy_cpu_s, busy_s2, 1e-12);
	assert_float_equal(s.joules, 3.0 * 3.5 + 4.0 * busy_s2, 1e-9);

	/* idle only: idle watts only */
	const unsigned long long v3[10] = { 350, 30, 70, 1900, 250, 8, 12, 512, 170, 0 };
	put_stat(t, 4, v3);
	assert_int_equal(energy_read(src, 104.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.joules, 3.0 * 4.0 + 4.0 * busy_s2, 1e-9);
	energy_close(src);
}

static void test_model_defaults_scale_with_cpus(void **state)
{
	struct tree *t = *state;
	char err[512];
	struct energy_source *a, *b;

	put_stat(t, 2, stat0);
	a = open_src(t, ENERGY_MODEL, 0.0, err, sizeof(err));
	assert_non_null(a);
	put_stat(t, 8, stat0);
	b = open_src(t, ENERGY_MODEL, 0.0, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(energy_cpu_count(a), 2);
	assert_int_equal(energy_cpu_count(b), 8);
	assert_true(energy_idle_watts(a) > 0);
	assert_float_equal(energy_idle_watts(b), 4.0 * energy_idle_watts(a), 1e-12);
	assert_non_null(strstr(energy_describe(a), "2 CPUs x"));
	assert_non_null(strstr(energy_describe(b), "8 CPUs x"));
	energy_close(a);
	energy_close(b);
}

static void test_measured_source_tracks_busy_and_idle_floor(void **state)
{
	struct tree *t = *state;
	struct energy_sample s;
	char err[512];
	const double tck = (double)sysconf(_SC_CLK_TCK);
	struct energy_opts o = { .choice = ENERGY_AUTO, .sysfs_root = t->sys,
				 .procfs_root = t->proc, .model = { .idle_watts = 42.0 } };
	struct energy_source *src;

	rapl_zone(t, "intel-rapl:0", 0, 262143328850ULL);
	src = energy_open(&o, 0.0, err, sizeof(err));
	assert_non_null(src);
	assert_string_equal(energy_name(src), "rapl");
	assert_float_equal(energy_idle_watts(src), 42.0, 0);

	const unsigned long long v1[10] = { 300, 20, 30, 1000, 50, 5, 5, 10, 40, 0 };
	put_stat(t, 2, v1);
	set_uj(t, "intel-rapl:0", 7000000);
	assert_int_equal(energy_read(src, 1.0, &s, err, sizeof(err)), 0);
	assert_float_equal(s.busy_cpu_s, 200.0 / tck, 1e-12);
	assert_float_equal(s.joules, 7.0, 1e-9);	/* measured, not modelled */
	energy_close(src);
}

static void test_garbled_proc_stat(void **state)
{
	struct tree *t = *state;
	char err[512] = "";

	put(t->proc, "stat", "cpu  x y z\ncpu0 1 2 3 4\n");
	assert_null(open_src(t, ENERGY_MODEL, 0.0, err, sizeof(err)));
	assert_non_null(strstr(err, "/proc/stat"));
	put(t->proc, "stat", "intr 1 2 3\n");
	assert_null(open_src(t, ENERGY_MODEL, 0.0, err, sizeof(err)));
	assert_non_null(strstr(err, "/proc/stat"));
	energy_close(NULL);	/* harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choice_parse),
		cmocka_unit_test_setup_teardown(test_rapl_single, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rapl_multi_skips_subzones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rapl_psys_only_when_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rapl_wraparound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rapl_missing_energy_uj, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rapl_garbled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hwmon_energy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hwmon_power_integration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_broken_rapl_falls_back_and_says_why,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_joules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_defaults_scale_with_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_measured_source_tracks_busy_and_idle_floor,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbled_proc_stat, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Node energy readers: RAPL powercap, hwmon, or a power model.
 *
 * Every source also reads the node's busy CPU time from /proc/stat: the model
 * turns it into joules, and attribution uses it as the denominator of CPU
 * shares. A read either succeeds as a whole or changes nothing. */
#include "energy.h"
#include "errbuf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Default power model, per logical CPU, from the SPECpower_ssj2008-derived
 * coefficients that Cloud Carbon Footprint publishes (methodology, Appendix I,
 * AWS average over the server generations it runs): 0.74 W per vCPU at 0% CPU
 * and 3.5 W per vCPU at 100% CPU. So idle = 0.74 W x online CPUs, and each
 * fully busy CPU adds 3.5 - 0.74 = 2.76 W. The GCP (0.71 / 4.26 W) and Azure
 * (0.78 / 3.76 W) averages from the same source are within 25% of these.
 * They describe a whole server share, not one chip; set real numbers per
 * machine (--config) where a wattmeter or a SPECpower entry for it exists. */
#define MODEL_IDLE_W_PER_CPU	0.74
#define MODEL_MAX_W_PER_CPU	3.5
#define MODEL_BUSY_W_PER_CPU	(MODEL_MAX_W_PER_CPU - MODEL_IDLE_W_PER_CPU)

#define MAX_CHANNELS 256

enum kind { KIND_RAPL, KIND_HWMON, KIND_MODEL };

struct channel {
	char path[PATH_MAX];
	uint64_t max;		/* RAPL: max_energy_range_uj (the wrap point) */
	uint64_t last;		/* last raw value: microjoules, or microwatts */
};

struct energy_source {
	enum kind kind;
	bool hwmon_power;		/* hwmon: power*_input integrated over time */
	struct channel *ch;
	int nch;

	char stat_path[PATH_MAX];
	long clk_tck;
	int ncpu;
	double idle_w;			/* resolved model (configured or default) */
	double busy_w;
	bool idle_default, busy_default;

	double t0, last_t;
	uint64_t last_busy_ticks;
	double busy_s;			/* cumulative since open */
	double joules;			/* cumulative since open */

	char desc[640];
};

const char *const energy_choice_names[] = { "auto", "rapl", "hwmon", "model", NULL };

/* Power-model watts from a config file or a caller that did not go through
 * the command-line parsers: a typo such as 1e300 would overflow the joule
 * counters, so it is refused with the range. */
static int check_model(const struct power_model *m, char *err, size_t errlen)
{
	if (!isfinite(m->idle_watts) || m->idle_watts > ENERGY_MAX_WATTS) {
		errbuf_set(err, errlen, "power model: idle watts %g out of range: expected a finite number from 0 to %g W",
			   m->idle_watts, ENERGY_MAX_WATTS);
		return -1;
	}
	if (!isfinite(m->watts_per_busy_core) || m->watts_per_busy_core > ENERGY_MAX_WATTS) {
		errbuf_set(err, errlen, "power model: watts per busy core %g out of range: expected a finite number from 0 to %g W",
			   m->watts_per_busy_core, ENERGY_MAX_WATTS);
		return -1;
	}
	return 0;
}

bool energy_choice_parse(const char *s, enum energy_choice *out)
{
	static const struct { const char *name; enum energy_choice c; } t[] = {
		{ "auto", ENERGY_AUTO }, { "rapl", ENERGY_RAPL },
		{ "hwmon", ENERGY_HWMON }, { "model", ENERGY_MODEL },
	};

	if (!s || !out)
		return false;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(s, t[i].name) == 0) {
			*out = t[i].c;
			return true;
		}
	}
	return false;
}

static int join(char *dst, size_t len, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int join(char *dst, size_t len, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		errbuf_set(err, errlen, "energy: path too long under %.200s; use a shorter sysfs/procfs root",
		           dst);
		return -1;
	}
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whole small file into buf (NUL-terminated). */
static int slurp(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0) {
		int e = errno;
		errbuf_set(err, errlen, "energy: cannot read %s: %s%s", path, strerror(e),
		           e == EACCES ? " (energy counters are root-only: run as root, or use --energy-source model)"
				       : "");
		return -1;
	}
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			errbuf_set(err, errlen, "energy: cannot read %s: %s", path, strerror(e));
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return 0;
}

/* One unsigned decimal number, optional surrounding whitespace. */
static int read_u64(const char *path, uint64_t *out, char *err, size_t errlen)
{
	char buf[64], *end;
	const char *p = buf;
	unsigned long long v;

	if (slurp(path, buf, sizeof(buf), err, errlen) < 0)
		return -1;
	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p))
		goto garbled;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno)
		goto garbled;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		goto garbled;
	*out = v;
	return 0;
garbled:
	buf[strcspn(buf, "\n")] = '\0';
	errbuf_set(err, errlen, "energy: %s: expected an unsigned number, got \"%.32s\" (garbled counter file)",
	           path, buf);
	return -1;
}

/* ---- /proc/stat ---------------------------------------------------------- */

/* Busy ticks of the first "cpu" line and the number of cpuN lines (online
 * CPUs). Fields: user nice system idle iowait irq softirq steal guest
 * guest_nice; guest time is already inside user (and guest_nice inside nice),
 * idle and iowait are not busy, and neither is steal: the hypervisor ran
 * something else on the core, and the tracked tasks' CPU time (the kernel's
 * sum_exec_runtime) leaves it out too, so shares stay shares of one clock.
 * Older kernels print fewer fields. */
static int read_proc_stat(const char *path, uint64_t *busy, int *ncpu, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	bool seen = false;
	int n = 0;

	if (!f) {
		errbuf_set(err, errlen, "energy: cannot read %s: %s (is procfs mounted?)", path,
		           strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "cpu", 3) != 0) {
			if (seen)
				break;	/* cpu lines come first */
			continue;
		}
		if (line[3] == ' ' && !seen) {
			unsigned long long v[8] = { 0 };
			int k = sscanf(line + 3, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
				       &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
			if (k < 4) {
				fclose(f);
				line[strcspn(line, "\n")] = '\0';
				errbuf_set(err, errlen, "energy: %s: garbled \"cpu\" line \"%.60s\"", path,
				           line);
				return -1;
			}
			/* user nice system [idle iowait] irq softirq [steal] */
			*busy = v[0] + v[1] + v[2] + v[5] + v[6];
			seen = true;
		} else if (isdigit((unsigned char)line[3])) {
			n++;
		}
	}
	fclose(f);
	if (!seen || n == 0) {
		errbuf_set(err, errlen, "energy: %s: no %s line (not a Linux /proc/stat?)", path,
		           seen ? "cpuN" : "\"cpu\"");
		return -1;
	}
	*ncpu = n;
	return 0;
}

/* ---- RAPL powercap ------------------------------------------------------- */

/* A top-level package zone: "intel-rapl:N" or "amd-rapl:N". Sub-zones
 * ("intel-rapl:N:M": core, uncore, dram) are inside their package and the
 * MMIO mirror ("intel-rapl-mmio:N") repeats it, so both are skipped. */
static bool rapl_top_zone(const char *name)
{
	static const char *const prefix[] = { "intel-rapl:", "amd-rapl:" };

	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
		size_t l = strlen(prefix[i]);
		const char *p = name + l;

		if (strncmp(name, prefix[i], l) != 0 || !*p)
			continue;
		while (isdigit((unsigned char)*p))
			p++;
		return *p == '\0';
	}
	return false;
}

static int cmp_channel(const void *a, const void *b)
{
	return strcmp(((const struct channel *)a)->path, ((const struct channel *)b)->path);
}

/* Returns 1 if zones were found and opened, 0 if there are none, -1 on a
 * broken zone (err says which file). */
static int rapl_open(struct energy_source *s, const char *sysfs, char *err, size_t errlen)
{
	char dir[PATH_MAX], zname[PATH_MAX], tmp[64];
	struct dirent *de;
	DIR *d;
	int n = 0, npkg = 0;
	bool psys[MAX_CHANNELS] = { false };

	if (join(dir, sizeof(dir), err, errlen, "%s/class/powercap", sysfs) < 0)
		return -1;
	d = opendir(dir);
	if (!d)
		return 0;
	s->ch = calloc(MAX_CHANNELS, sizeof(*s->ch));
	if (!s->ch) {
		closedir(d);
		errbuf_set(err, errlen, "energy: out of memory");
		return -1;
	}
	while ((de = readdir(d)) && n < MAX_CHANNELS) {
		if (!rapl_top_zone(de->d_name))
			continue;
		if (join(s->ch[n].path, sizeof(s->ch[n].path), err, errlen, "%s/%s", dir,
			 de->d_name) < 0)
			goto fail;
		if (!is_dir(s->ch[n].path))
			continue;
		/* Client parts have a "psys" zone for the whole platform, which
		 * contains the package: keep it only when it is all there is. */
		if (join(zname, sizeof(zname), err, errlen, "%s/name", s->ch[n].path) < 0)
			goto fail;
		if (slurp(zname, tmp, sizeof(tmp), NULL, 0) == 0 && strncmp(tmp, "psys", 4) == 0)
			psys[n] = true;
		else
			npkg++;
		n++;
	}
	closedir(d);
	d = NULL;
	if (npkg > 0) {
		int k = 0;
		for (int i = 0; i < n; i++)
			if (!psys[i])
				s->ch[k++] = s->ch[i];
		n = k;
	}
	if (n == 0) {
		free(s->ch);
		s->ch = NULL;
		return 0;
	}
	qsort(s->ch, (size_t)n, sizeof(*s->ch), cmp_channel);
	for (int i = 0; i < n; i++) {
		char f[PATH_MAX];
		struct channel *c = &s->ch[i];

		if (join(f, sizeof(f), err, errlen, "%s/max_energy_range_uj", c->path) < 0 ||
		    read_u64(f, &c->max, err, errlen) < 0)
			goto fail;
		if (c->max == 0) {
			errbuf_set(err, errlen, "energy: %s is 0 (cannot handle wraparound); use --energy-source model",
			           f);
			goto fail;
		}
		/* from here on path names the counter itself */
		if (join(f, sizeof(f), err, errlen, "%s/energy_uj", c->path) < 0)
			goto fail;
		memcpy(c->path, f, sizeof(f));
		if (read_u64(c->path, &c->last, err, errlen) < 0)
			goto fail;
	}
	s->nch = n;
	s->kind = KIND_RAPL;
	snprintf(s->desc, sizeof(s->desc), "rapl: %d %s domain%s under %.200s (measured counter)", n,
		 npkg ? "package" : "psys", n == 1 ? "" : "s", dir);
	return 1;
fail:
	if (d)
		closedir(d);
	free(s->ch);
	s->ch = NULL;
	return -1;
}

/* ---- hwmon --------------------------------------------------------------- */

/* "<kind>N_input" with N decimal */
static bool hwmon_input(const char *name, const char *kind)
{
	size_t l = strlen(kind);
	const char *p = name + l;

	if (strncmp(name, kind, l) != 0 || !isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	return strcmp(p, "_input") == 0;
}

/* amd_energy reports every core ("Ecore000") and the socket ("Esocket0")
 * that contains them: count sockets only. */
static bool hwmon_skip(const char *dir, const char *input)
{
	char label[PATH_MAX], buf[64];
	size_t l = strlen(input) - strlen("_input");

	if ((size_t)snprintf(label, sizeof(label), "%s/%.*s_label", dir, (int)l, input) >=
	    sizeof(label))
		return false;
	return slurp(label, buf, sizeof(buf), NULL, 0) == 0 && strncmp(buf, "Ecore", 5) == 0;
}

static int hwmon_scan(struct energy_source *s, const char *base, const char *kind,
		      char *err, size_t errlen)
{
	DIR *d = opendir(base), *dd;
	struct dirent *de, *fe;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < MAX_CHANNELS) {
		char dev[PATH_MAX];

		if (strncmp(de->d_name, "hwmon", 5) != 0)
			continue;
		if (join(dev, sizeof(dev), err, errlen, "%s/%s", base, de->d_name) < 0) {
			closedir(d);
			return -1;
		}
		dd = opendir(dev);
		if (!dd)
			continue;
		while ((fe = readdir(dd)) && n < MAX_CHANNELS) {
			if (!hwmon_input(fe->d_name, kind) || hwmon_skip(dev, fe->d_name))
				continue;
			if (join(s->ch[n].path, sizeof(s->ch[n].path), err, errlen, "%s/%s", dev,
				 fe->d_name) < 0) {
				closedir(dd);
				closedir(d);
				return -1;
			}
			n++;
		}
		closedir(dd);
	}
	closedir(d);
	return n;
}

/* energy*_input (cumulative microjoules) wherever any exists, otherwise
 * power*_input (microwatts) integrated between reads. Returns 1, 0 (none),
 * or -1 (err says which file). */
static int hwmon_open(struct energy_source *s, const char *sysfs, char *err, size_t errlen)
{
	char base[PATH_MAX];
	int n;

	if (join(base, sizeof(base), err, errlen, "%s/class/hwmon", sysfs) < 0)
		return -1;
	s->ch = calloc(MAX_CHANNELS, sizeof(*s->ch));
	if (!s->ch) {
		errbuf_set(err, errlen, "energy: out of memory");
		return -1;
	}
	n = hwmon_scan(s, base, "energy", err, errlen);
	s->hwmon_power = false;
	if (n == 0) {
		n = hwmon_scan(s, base, "power", err, errlen);
		s->hwmon_power = true;
	}
	if (n <= 0)
		goto out;
	qsort(s->ch, (size_t)n, sizeof(*s->ch), cmp_channel);
	for (int i = 0; i < n; i++) {
		if (read_u64(s->ch[i].path, &s->ch[i].last, err, errlen) < 0) {
			n = -1;
			goto out;
		}
	}
	s->nch = n;
	s->kind = KIND_HWMON;
	snprintf(s->desc, sizeof(s->desc), "hwmon: %d %s under %.200s (%s)", n,
		 s->hwmon_power ? (n == 1 ? "power*_input sensor" : "power*_input sensors")
				: (n == 1 ? "energy*_input counter" : "energy*_input counters"),
		 base, s->hwmon_power ? "measured power, integrated over time" : "measured counter");
	return 1;
out:
	free(s->ch);
	s->ch = NULL;
	return n;
}

/* ---- open / read --------------------------------------------------------- */

static void describe_model(struct energy_source *s, const char *why)
{
	char idle[96];

	if (s->idle_default)
		snprintf(idle, sizeof(idle), "%.2f W idle (%d CPUs x %.2f W)", s->idle_w, s->ncpu,
			 MODEL_IDLE_W_PER_CPU);
	else
		snprintf(idle, sizeof(idle), "%.2f W idle", s->idle_w);
	snprintf(s->desc, sizeof(s->desc), "model: %s + %.2f W per busy core (modelled, no counters%s%s%.400s)",
		 idle, s->busy_w,
		 s->idle_default || s->busy_default ? "; default W from SPECpower_ssj2008 averages" : "",
		 why && *why ? "; " : "", why ? why : "");
}

struct energy_source *energy_open(const struct energy_opts *opts, double now_s,
				  char *err, size_t errlen)
{
	const char *sysfs = opts && opts->sysfs_root ? opts->sysfs_root : "/sys";
	const char *procfs = opts && opts->procfs_root ? opts->procfs_root : "/proc";
	enum energy_choice choice = opts ? opts->choice : ENERGY_AUTO;
	struct energy_source *s;
	char why[512] = "";
	uint64_t busy;
	int r;

	if (choice != ENERGY_AUTO && choice != ENERGY_RAPL && choice != ENERGY_HWMON &&
	    choice != ENERGY_MODEL) {
		errbuf_set(err, errlen, "energy: unknown energy source %d; use auto, rapl, hwmon or model",
		           (int)choice);
		return NULL;
	}
	if (opts && check_model(&opts->model, err, errlen))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		errbuf_set(err, errlen, "energy: out of memory");
		return NULL;
	}
	s->clk_tck = sysconf(_SC_CLK_TCK);
	if (s->clk_tck <= 0)
		s->clk_tck = 100;
	if (join(s->stat_path, sizeof(s->stat_path), err, errlen, "%s/stat", procfs) < 0 ||
	    read_proc_stat(s->stat_path, &busy, &s->ncpu, err, errlen) < 0)
		goto fail;
	s->last_busy_ticks = busy;
	s->t0 = s->last_t = now_s;

	s->idle_default = !opts || !(opts->model.idle_watts > 0);
	s->busy_default = !opts || !(opts->model.watts_per_busy_core > 0);
	s->idle_w = s->idle_default ? MODEL_IDLE_W_PER_CPU * s->ncpu : opts->model.idle_watts;
	s->busy_w = s->busy_default ? MODEL_BUSY_W_PER_CPU : opts->model.watts_per_busy_core;

	if (choice == ENERGY_RAPL || choice == ENERGY_AUTO) {
		r = rapl_open(s, sysfs, err, errlen);
		if (r == 1)
			return s;
		if (choice == ENERGY_RAPL) {
			if (r == 0)
				errbuf_set(err, errlen, "energy: no RAPL counters under %s/class/powercap (is the intel_rapl_msr / intel_rapl_common module loaded?); use --energy-source model",
				           sysfs);
			goto fail;
		}
		if (r < 0)	/* present but broken: say so in the description */
			snprintf(why, sizeof(why), "rapl unusable: %s", err ? err : "");
	}
	if (choice == ENERGY_HWMON || choice == ENERGY_AUTO) {
		r = hwmon_open(s, sysfs, err, errlen);
		if (r == 1)
			return s;
		if (choice == ENERGY_HWMON) {
			if (r == 0)
				errbuf_set(err, errlen, "energy: no hwmon energy*_input or power*_input under %s/class/hwmon (no power-reporting sensor driver loaded); use --energy-source model",
				           sysfs);
			goto fail;
		}
		if (r < 0 && !why[0])
			snprintf(why, sizeof(why), "hwmon unusable: %s", err ? err : "");
	}
	s->kind = KIND_MODEL;
	describe_model(s, why);
	if (err && errlen)
		err[0] = '\0';
	return s;
fail:
	free(s->ch);
	free(s);
	return NULL;
}

int energy_read(struct energy_source *s, double now_s, struct energy_sample *out,
		char *err, size_t errlen)
{
	uint64_t busy, vals[MAX_CHANNELS];
	double dt, dbusy, dj = 0;
	int ncpu;

	if (!s || !out) {
		errbuf_set(err, errlen, "energy: no source open");
		return -1;
	}
	/* read everything first so a failure changes nothing */
	if (read_proc_stat(s->stat_path, &busy, &ncpu, err, errlen) < 0)
		return -1;
	for (int i = 0; i < s->nch; i++)
		if (read_u64(s->ch[i].path, &vals[i], err, errlen) < 0)
			return -1;

	dt = now_s > s->last_t ? now_s - s->last_t : 0;
	/* a counter that went backwards (CPU hot-unplug) adds nothing */
	dbusy = busy >= s->last_busy_ticks ? (double)(busy - s->last_busy_ticks) / s->clk_tck : 0;

	for (int i = 0; i < s->nch; i++) {
		struct channel *c = &s->ch[i];
		uint64_t v = vals[i];

		if (s->kind == KIND_RAPL) {
			/* The counter runs 0..max_energy_range_uj and starts
			 * over; reads are far more frequent than a wrap (tens
			 * of minutes at full load), so a drop is one wrap. */
			if (v >= c->last)
				dj += (double)(v - c->last) * 1e-6;
			else
				dj += ((double)(c->max > c->last ? c->max - c->last : 0) + (double)v) * 1e-6;
		} else if (s->hwmon_power) {
			/* trapezoid between this read and the last */
			dj += ((double)c->last + (double)v) * 0.5e-6 * dt;
		} else if (v >= c->last) {
			dj += (double)(v - c->last) * 1e-6;
		}
		/* hwmon energy is 64-bit and does not wrap: a drop is a
		 * driver reset, counted from the next read on. */
	}
	if (s->kind == KIND_MODEL)
		/* P = idle + w * busy cores, busy cores = dbusy / dt, so the
		 * energy over dt is idle * dt + w * dbusy. */
		dj = s->idle_w * dt + s->busy_w * dbusy;

	for (int i = 0; i < s->nch; i++)
		s->ch[i].last = vals[i];
	s->last_busy_ticks = busy;
	if (now_s > s->last_t)
		s->last_t = now_s;
	s->busy_s += dbusy;
	s->joules += dj;

	out->joules = s->joules;
	out->busy_cpu_s = s->busy_s;
	out->wall_s = s->last_t - s->t0;
	return 0;
}

const char *energy_name(const struct energy_source *s)
{
	if (!s)
		return "none";
	switch (s->kind) {
	case KIND_RAPL: return "rapl";
	case KIND_HWMON: return "hwmon";
	case KIND_MODEL: return "model";
	}
	return "none";
}

const char *energy_describe(const struct energy_source *s)
{
	return s ? s->desc : "no energy source";
}

bool energy_is_measured(const struct energy_source *s)
{
	return s && s->kind != KIND_MODEL;
}

double energy_idle_watts(const struct energy_source *s)
{
	return s ? s->idle_w : 0;
}

int energy_cpu_count(const struct energy_source *s)
{
	return s ? s->ncpu : 0;
}

void energy_close(struct energy_source *s)
{
	if (!s)
		return;
	free(s->ch);
	free(s);
}

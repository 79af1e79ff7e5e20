/* GPU energy: NVML through dlopen, or the GPU power model. */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nvml.h"

/* Default GPU power model, per device: an H100 SXM, the most common GPU of
 * LLM inference today. 700 W is its board power limit (TDP) in NVIDIA's
 * H100 datasheet; 70 W idle is what such boards read in nvidia-smi with no
 * process running (public readings of H100/H200 SXM idle lie between 60
 * and 80 W, with clocks and cooling). So the model gives 70 W idle and up to
 * 630 W more when busy. Memory-bound decoding rarely reaches the power
 * limit (measured LLM inference draws 400-550 W on H100 SXM), so the model
 * overestimates busy decode; set real figures per device with
 * --gpu-idle-watts / --gpu-active-watts. */
#define MODEL_IDLE_W	70.0
#define MODEL_ACTIVE_W	630.0

/* NVML's C interface, the part used here (nvml.h of the driver). */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct {
	unsigned int gpu;
	unsigned int memory;
} nvmlUtilization_t;
typedef struct {
	unsigned int pid;
	unsigned long long timeStamp;	/* CPU timestamp, microseconds */
	unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

#define NVML_SUCCESS			0
#define NVML_ERROR_NOT_FOUND		6
#define NVML_ERROR_INSUFFICIENT_SIZE	7

#define MAX_SAMPLES 1024

enum dev_mode { DEV_ENERGY, DEV_POWER, DEV_MODEL };

struct device {
	nvmlDevice_t h;
	enum dev_mode mode;
	char name[96];
	unsigned long long last_mj;	/* DEV_ENERGY: counter at the last read */
	double last_w;			/* DEV_POWER: power at the last read */
	double util;			/* at the last read; < 0 unknown */
	unsigned long long last_seen_us;	/* per-process samples read up to */
	bool proc_util_ok;
	double idle_w, active_w;
};

struct gpu_energy {
	void *lib;
	bool nvml;		/* at least one device has an NVML reading */
	bool any_model;		/* at least one device is modelled */
	size_t n;
	struct device dev[GPU_MAX_DEVICES];
	double last_s;
	char desc[768];

	nvmlReturn_t (*Init)(void);
	nvmlReturn_t (*Shutdown)(void);
	const char *(*ErrorString)(nvmlReturn_t);
	nvmlReturn_t (*GetCount)(unsigned int *);
	nvmlReturn_t (*GetHandle)(unsigned int, nvmlDevice_t *);
	nvmlReturn_t (*GetName)(nvmlDevice_t, char *, unsigned int);
	nvmlReturn_t (*GetEnergy)(nvmlDevice_t, unsigned long long *);
	nvmlReturn_t (*GetPower)(nvmlDevice_t, unsigned int *);
	nvmlReturn_t (*GetUtil)(nvmlDevice_t, nvmlUtilization_t *);
	nvmlReturn_t (*GetProcUtil)(nvmlDevice_t, nvmlProcessUtilizationSample_t *, unsigned int *,
				    unsigned long long);
	nvmlProcessUtilizationSample_t *samples;
};

int gpu_model_parse(const char *s, double *watts, size_t *n, char *err, size_t errlen)
{
	size_t k = 0;
	const char *p = s;

	if (!s || !*s) {
		snprintf(err, errlen, "expected watts, e.g. 70 or 70,70 (one per device)");
		return -1;
	}
	for (;;) {
		char *end;
		double v;

		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || !(v >= 0) || !isfinite(v) || (*end && *end != ',')) {
			snprintf(err, errlen, "'%s': expected watts >= 0, one per device separated by commas", s);
			return -1;
		}
		if (k == GPU_MAX_DEVICES) {
			snprintf(err, errlen, "'%s': at most %d devices", s, GPU_MAX_DEVICES);
			return -1;
		}
		watts[k++] = v;
		if (!*end)
			break;
		p = end + 1;
	}
	*n = k;
	return 0;
}

static double model_value(const double *v, size_t n, size_t dev, double def)
{
	double x;

	if (!n)
		return def;
	x = v[dev < n ? dev : n - 1];
	return x >= 0 ? x : def;
}

static void set_model(struct gpu_energy *g, const struct gpu_model *m)
{
	for (size_t d = 0; d < GPU_MAX_DEVICES; d++) {
		g->dev[d].idle_w = model_value(m->idle_watts, m->n_idle, d, MODEL_IDLE_W);
		g->dev[d].active_w = model_value(m->active_watts, m->n_active, d, MODEL_ACTIVE_W);
	}
}

static void describe_model(struct gpu_energy *g, const char *why)
{
	int n = snprintf(g->desc, sizeof(g->desc), "GPU energy: model: %zu device%s, ", g->n, g->n == 1 ? "" : "s");
	bool same = true;

	for (size_t d = 1; d < g->n; d++)
		same &= g->dev[d].idle_w == g->dev[0].idle_w && g->dev[d].active_w == g->dev[0].active_w;
	if (same)
		n += snprintf(g->desc + n, sizeof(g->desc) - n, "%.1f W idle + %.1f W x busy fraction each",
			      g->dev[0].idle_w, g->dev[0].active_w);
	else
		for (size_t d = 0; d < g->n && n < (int)sizeof(g->desc); d++)
			n += snprintf(g->desc + n, sizeof(g->desc) - n, "%sgpu%zu %.1f W idle + %.1f W x busy",
				      d ? ", " : "", d, g->dev[d].idle_w, g->dev[d].active_w);
	if (n < (int)sizeof(g->desc))
		snprintf(g->desc + n, sizeof(g->desc) - n, " (modelled, busy from driver calls; %s)", why);
}

static void *need(struct gpu_energy *g, const char *name, char *missing, size_t len)
{
	void *p = dlsym(g->lib, name);

	if (!p && !missing[0])
		snprintf(missing, len, "%s", name);
	return p;
}

static const char *errstr(struct gpu_energy *g, nvmlReturn_t rc)
{
	static char buf[32];
	const char *s = g->ErrorString ? g->ErrorString(rc) : NULL;

	if (s)
		return s;
	snprintf(buf, sizeof(buf), "NVML error %d", rc);
	return buf;
}

/* Loads NVML and finds the devices; false with the reason in why. */
static bool open_nvml(struct gpu_energy *g, const char *library, char *why, size_t whylen)
{
	char missing[64] = "";
	unsigned count = 0;
	nvmlReturn_t rc;

	g->lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
	if (!g->lib) {
		const char *e = dlerror();

		snprintf(why, whylen, "NVML not available: %s", e ? e : library);
		return false;
	}
	*(void **)&g->Init = need(g, "nvmlInit_v2", missing, sizeof(missing));
	*(void **)&g->Shutdown = need(g, "nvmlShutdown", missing, sizeof(missing));
	*(void **)&g->ErrorString = need(g, "nvmlErrorString", missing, sizeof(missing));
	*(void **)&g->GetCount = need(g, "nvmlDeviceGetCount_v2", missing, sizeof(missing));
	*(void **)&g->GetHandle = need(g, "nvmlDeviceGetHandleByIndex_v2", missing, sizeof(missing));
	*(void **)&g->GetName = need(g, "nvmlDeviceGetName", missing, sizeof(missing));
	*(void **)&g->GetEnergy = need(g, "nvmlDeviceGetTotalEnergyConsumption", missing, sizeof(missing));
	*(void **)&g->GetPower = need(g, "nvmlDeviceGetPowerUsage", missing, sizeof(missing));
	*(void **)&g->GetUtil = need(g, "nvmlDeviceGetUtilizationRates", missing, sizeof(missing));
	/* optional: older drivers lack it */
	*(void **)&g->GetProcUtil = dlsym(g->lib, "nvmlDeviceGetProcessUtilization");
	if (missing[0]) {
		snprintf(why, whylen, "NVML library %s lacks %s", library, missing);
		return false;
	}
	rc = g->Init();
	if (rc != NVML_SUCCESS) {
		snprintf(why, whylen, "nvmlInit failed: %s", errstr(g, rc));
		g->Shutdown = NULL;	/* nothing to shut down */
		return false;
	}
	rc = g->GetCount(&count);
	if (rc != NVML_SUCCESS || count == 0) {
		snprintf(why, whylen, "NVML sees no GPU%s%s", rc ? ": " : "", rc ? errstr(g, rc) : "");
		return false;
	}
	g->n = count < GPU_MAX_DEVICES ? count : GPU_MAX_DEVICES;
	for (size_t d = 0; d < g->n; d++) {
		struct device *dv = &g->dev[d];
		unsigned mw;

		dv->util = -1;
		if (g->GetHandle((unsigned)d, &dv->h) != NVML_SUCCESS) {
			dv->mode = DEV_MODEL;
			continue;
		}
		if (g->GetName(dv->h, dv->name, sizeof(dv->name)) != NVML_SUCCESS)
			snprintf(dv->name, sizeof(dv->name), "GPU %zu", d);
		if (g->GetEnergy(dv->h, &dv->last_mj) == NVML_SUCCESS)
			dv->mode = DEV_ENERGY;
		else if (g->GetPower(dv->h, &mw) == NVML_SUCCESS)
			dv->mode = DEV_POWER, dv->last_w = mw / 1000.0;
		else
			dv->mode = DEV_MODEL;
		dv->proc_util_ok = g->GetProcUtil != NULL;
	}
	return true;
}

static void describe_nvml(struct gpu_energy *g)
{
	size_t energy = 0, power = 0, model = 0;
	int n;

	for (size_t d = 0; d < g->n; d++) {
		energy += g->dev[d].mode == DEV_ENERGY;
		power += g->dev[d].mode == DEV_POWER;
		model += g->dev[d].mode == DEV_MODEL;
	}
	n = snprintf(g->desc, sizeof(g->desc), "GPU energy: nvml: %zu device%s (%s%s)", g->n, g->n == 1 ? "" : "s",
		     g->dev[0].name, g->n > 1 ? ", ..." : "");
	if (energy)
		n += snprintf(g->desc + n, sizeof(g->desc) - n, ", %zu by total energy counter", energy);
	if (power && n < (int)sizeof(g->desc))
		n += snprintf(g->desc + n, sizeof(g->desc) - n, ", %zu by power readings integrated", power);
	if (model && n < (int)sizeof(g->desc))
		n += snprintf(g->desc + n, sizeof(g->desc) - n, ", %zu modelled (%.1f W idle + %.1f W x busy: NVML gives no energy or power for them)",
			      model, g->dev[0].idle_w, g->dev[0].active_w);
	if (n < (int)sizeof(g->desc))
		snprintf(g->desc + n, sizeof(g->desc) - n, " (measured; idle floor %.1f W per device)", g->dev[0].idle_w);
}

struct gpu_energy *nvml_open(const struct nvml_opts *opts, double now_s)
{
	struct gpu_energy *g = calloc(1, sizeof(*g));
	char why[512] = "";

	if (!g)
		return NULL;
	set_model(g, &opts->model);
	g->last_s = now_s;
	if (opts->disable) {
		snprintf(why, sizeof(why), "NVML not used: --no-nvml");
	} else if (open_nvml(g, opts->library ? opts->library : "libnvidia-ml.so.1", why, sizeof(why))) {
		g->samples = calloc(MAX_SAMPLES, sizeof(*g->samples));
		for (size_t d = 0; d < g->n; d++) {
			g->nvml |= g->dev[d].mode != DEV_MODEL;
			g->any_model |= g->dev[d].mode == DEV_MODEL;
		}
		if (g->nvml) {
			describe_nvml(g);
			return g;
		}
		snprintf(why, sizeof(why), "NVML gives neither energy nor power for any device");
	}
	/* the model, for the devices the caller says there are */
	if (g->lib) {
		if (g->Shutdown)
			g->Shutdown();
		dlclose(g->lib);
		g->lib = NULL;
	}
	g->n = opts->model_devices ? (opts->model_devices < GPU_MAX_DEVICES ? opts->model_devices : GPU_MAX_DEVICES) : 1;
	for (size_t d = 0; d < g->n; d++) {
		g->dev[d].mode = DEV_MODEL;
		g->dev[d].util = -1;
	}
	g->nvml = false;
	g->any_model = true;
	describe_model(g, why);
	return g;
}

const char *nvml_source(const struct gpu_energy *g)
{
	return !g->nvml ? "model" : g->any_model ? "nvml+model" : "nvml";
}

bool nvml_measured(const struct gpu_energy *g)
{
	return g->nvml;
}

const char *nvml_describe(const struct gpu_energy *g)
{
	return g->desc;
}

size_t nvml_devices(const struct gpu_energy *g)
{
	return g->n;
}

double nvml_idle_watts(const struct gpu_energy *g, size_t dev)
{
	return dev < g->n ? g->dev[dev].idle_w : 0.0;
}

double nvml_active_watts(const struct gpu_energy *g, size_t dev)
{
	return dev < g->n ? g->dev[dev].active_w : 0.0;
}

static double model_joules(const struct device *dv, double dt, double busy)
{
	double frac = dt > 0 && busy > 0 ? busy / dt : 0.0;

	if (frac > 1.0)
		frac = 1.0;
	return (dv->idle_w + dv->active_w * frac) * dt;
}

int nvml_read(struct gpu_energy *g, double now_s, const double *busy_s, double *joules, char *err, size_t errlen)
{
	double dt = now_s - g->last_s;
	int rc = 0;

	if (dt < 0)
		dt = 0;
	for (size_t d = 0; d < g->n; d++) {
		struct device *dv = &g->dev[d];
		double model = model_joules(dv, dt, busy_s ? busy_s[d] : 0.0);
		nvmlUtilization_t u;
		unsigned long long mj;
		unsigned mw;
		nvmlReturn_t r;

		joules[d] = model;
		if (dv->mode == DEV_MODEL)
			continue;
		dv->util = g->GetUtil(dv->h, &u) == NVML_SUCCESS ? (u.gpu > 100 ? 1.0 : u.gpu / 100.0) : -1;
		if (dv->mode == DEV_ENERGY) {
			r = g->GetEnergy(dv->h, &mj);
			if (r == NVML_SUCCESS) {
				/* a counter that went back (driver reloaded) restarts */
				joules[d] = mj >= dv->last_mj ? (double)(mj - dv->last_mj) / 1000.0 : 0.0;
				dv->last_mj = mj;
				continue;
			}
		} else {
			r = g->GetPower(dv->h, &mw);
			if (r == NVML_SUCCESS) {
				double w = mw / 1000.0;

				joules[d] = 0.5 * (w + dv->last_w) * dt;	/* trapezoid */
				dv->last_w = w;
				continue;
			}
		}
		snprintf(err, errlen, "NVML reading of GPU %zu failed: %s (modelled this interval)", d, errstr(g, r));
		rc = -1;
	}
	g->last_s = now_s;
	return rc;
}

double nvml_device_util(const struct gpu_energy *g, size_t dev)
{
	return dev < g->n ? g->dev[dev].util : -1.0;
}

int nvml_process_util(struct gpu_energy *g, size_t dev, struct nvml_proc_util *out, size_t max)
{
	struct device *dv;
	unsigned count = MAX_SAMPLES;
	unsigned long long newest;
	nvmlReturn_t r;
	size_t n = 0;

	if (dev >= g->n || !g->samples)
		return -1;
	dv = &g->dev[dev];
	if (dv->mode == DEV_MODEL || !dv->proc_util_ok)
		return -1;
	r = g->GetProcUtil(dv->h, g->samples, &count, dv->last_seen_us);
	if (r == NVML_ERROR_NOT_FOUND)	/* no process ran since last time */
		return 0;
	if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
		/* more than MAX_SAMPLES: the newest are lost this interval */
		count = MAX_SAMPLES;
		r = g->GetProcUtil(dv->h, g->samples, &count, dv->last_seen_us);
	}
	if (r != NVML_SUCCESS) {
		dv->proc_util_ok = false;	/* not supported: do not ask again */
		return -1;
	}
	newest = dv->last_seen_us;
	/* mean SM utilisation per pid over its samples */
	double sum[MAX_SAMPLES];
	unsigned cnt[MAX_SAMPLES];

	for (unsigned i = 0; i < count && i < MAX_SAMPLES; i++) {
		const nvmlProcessUtilizationSample_t *s = &g->samples[i];
		size_t k;

		if (s->timeStamp > newest)
			newest = s->timeStamp;
		for (k = 0; k < n && out[k].pid != (int)s->pid; k++)
			;
		if (k == n) {
			if (n == max)
				continue;
			out[n].pid = (int)s->pid;
			sum[n] = 0;
			cnt[n] = 0;
			n++;
		}
		sum[k] += s->smUtil > 100 ? 100 : s->smUtil;
		cnt[k]++;
	}
	for (size_t k = 0; k < n; k++)
		out[k].busy_frac = cnt[k] ? sum[k] / cnt[k] / 100.0 : 0.0;
	dv->last_seen_us = newest;
	return (int)n;
}

void nvml_close(struct gpu_energy *g)
{
	if (!g)
		return;
	if (g->lib) {
		if (g->Shutdown)
			g->Shutdown();
		dlclose(g->lib);
	}
	free(g->samples);
	free(g);
}

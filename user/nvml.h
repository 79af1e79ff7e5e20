/* GPU energy per device: NVML where the driver's management library is
 * there, otherwise the GPU power model.
 *
 * NVML (dlopen "libnvidia-ml.so.1", never linked): each device's total
 * energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ, Volta and
 * later), or its power reading integrated over time where the counter is
 * not supported; the device's utilisation and per-process SM utilisation
 * samples (nvmlDeviceGetProcessUtilization) when the driver gives them.
 *
 * Model (no library, no driver, no device, or --no-nvml):
 *   P = idle_watts + active_watts x busy fraction, per device,
 * where the busy fraction comes from the caller (the driver-call estimate
 * of gpu_busy.h). Defaults are in nvml.c with their sources; set real
 * values per device where they are known. The description says which one
 * runs and, for the model, why NVML is not used. */
#ifndef ERG_NVML_H
#define ERG_NVML_H

#include <stdbool.h>
#include <stddef.h>

#define GPU_MAX_DEVICES 16

/* Per-device power model. No values given (n == 0): the defaults; devices
 * past the last given value use the last given value. */
struct gpu_model {
	double idle_watts[GPU_MAX_DEVICES];
	double active_watts[GPU_MAX_DEVICES];
	size_t n_idle, n_active;	/* values given */
};

struct nvml_opts {
	const char *library;	/* NULL: "libnvidia-ml.so.1" (the dynamic loader's search) */
	bool disable;		/* use the model even if NVML is there */
	struct gpu_model model;
	size_t model_devices;	/* how many devices to model without NVML (0: 1) */
};

struct nvml_proc_util {
	int pid;
	double busy_frac;	/* mean SM utilisation 0..1 over the samples read */
};

struct gpu_energy;

/* Parse "W[,W...]" (watts >= 0, at most GPU_MAX_DEVICES values) into
 * watts[] and *n. Returns 0, or -1 with a one-line reason in err. */
int gpu_model_parse(const char *s, double *watts, size_t *n, char *err, size_t errlen);

/* Never fails for want of NVML: falls back to the model. NULL only when out
 * of memory. now_s: CLOCK_MONOTONIC seconds. */
struct gpu_energy *nvml_open(const struct nvml_opts *opts, double now_s);

/* "nvml", "model", or "nvml+model" (some devices without a reading). */
const char *nvml_source(const struct gpu_energy *g);
bool nvml_measured(const struct gpu_energy *g);
/* One line beginning "GPU energy: nvml" or "GPU energy: model", saying what
 * is read or modelled, and for the model why NVML is not used. */
const char *nvml_describe(const struct gpu_energy *g);
size_t nvml_devices(const struct gpu_energy *g);
double nvml_idle_watts(const struct gpu_energy *g, size_t dev);
double nvml_active_watts(const struct gpu_energy *g, size_t dev);

/* Joules of each device since the previous read (or open), at now_s.
 * busy_s[d]: the device's busy seconds over that interval, used by the
 * model (NULL: idle). Returns 0, or -1 with a reason in err (joules then
 * hold the model's value for the devices whose reading failed). */
int nvml_read(struct gpu_energy *g, double now_s, const double *busy_s, double *joules,
	      char *err, size_t errlen);

/* The device's utilisation (0..1) from NVML at the last nvml_read; < 0 when
 * not available (model, or not supported). */
double nvml_device_util(const struct gpu_energy *g, size_t dev);

/* Per-process SM utilisation on a device from the samples since the
 * previous call, one entry per pid, at most max. Returns the count, or -1
 * when the driver gives no per-process samples (then use the estimate). */
int nvml_process_util(struct gpu_energy *g, size_t dev, struct nvml_proc_util *out, size_t max);

void nvml_close(struct gpu_energy *g);

#endif

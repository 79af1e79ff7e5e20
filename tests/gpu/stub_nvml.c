/* A stand-in for NVML (libnvidia-ml.so.1) for the unit tests of
 * user/nvml.c: the entry points erg uses, with their real C signatures, and
 * every reading taken from the environment at the time of the call, so a
 * test sets exactly what the "driver" reports:
 *
 *   ERG_STUB_NVML_INIT_FAIL   nvmlInit_v2 returns this NVML error code
 *   ERG_STUB_NVML_DEVICES     device count (default 1)
 *   ERG_STUB_NVML_ENERGY_MJ   "mJ[,mJ...]" total energy counter per device;
 *                             unset: NVML_ERROR_NOT_SUPPORTED
 *   ERG_STUB_NVML_POWER_MW    "mW[,mW...]" power per device
 *   ERG_STUB_NVML_UTIL        "pct[,pct...]" device utilisation
 *   ERG_STUB_NVML_PROCS       "dev:pid:sm%:timestamp_us[;...]" samples;
 *                             unset: NVML_ERROR_NOT_SUPPORTED
 *
 * Devices are named "erg stub NVML device N" so that output made with it
 * cannot pass for a real measurement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
	unsigned int gpu;
	unsigned int memory;
} nvmlUtilization_t;

typedef struct {
	unsigned int pid;
	unsigned long long timeStamp;
	unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

#define NVML_SUCCESS			0
#define NVML_ERROR_UNINITIALIZED	1
#define NVML_ERROR_INVALID_ARGUMENT	2
#define NVML_ERROR_NOT_SUPPORTED	3
#define NVML_ERROR_NOT_FOUND		6
#define NVML_ERROR_INSUFFICIENT_SIZE	7

#define MAX_DEV 16

static int initialized;
static struct nvmlDevice_st { unsigned idx; } devices[MAX_DEV];

static unsigned device_count(void)
{
	const char *v = getenv("ERG_STUB_NVML_DEVICES");
	long n = v ? strtol(v, NULL, 10) : 1;

	return n < 0 ? 0 : n > MAX_DEV ? MAX_DEV : (unsigned)n;
}

/* Field idx of a comma-separated list; 0 if missing. */
static int list_value(const char *env, unsigned idx, unsigned long long *out)
{
	const char *v = getenv(env);

	if (!v)
		return -1;
	for (unsigned i = 0; i < idx && v; i++) {
		v = strchr(v, ',');
		if (v)
			v++;
	}
	*out = v ? strtoull(v, NULL, 10) : 0;
	return 0;
}

static int valid(nvmlDevice_t d)
{
	return initialized && d && d >= devices && d < devices + device_count();
}

API nvmlReturn_t nvmlInit_v2(void)
{
	const char *fail = getenv("ERG_STUB_NVML_INIT_FAIL");

	if (fail && *fail)
		return atoi(fail);
	initialized = 1;
	for (unsigned i = 0; i < MAX_DEV; i++)
		devices[i].idx = i;
	return NVML_SUCCESS;
}

API nvmlReturn_t nvmlShutdown(void)
{
	if (!initialized)
		return NVML_ERROR_UNINITIALIZED;
	initialized = 0;
	return NVML_SUCCESS;
}

API const char *nvmlErrorString(nvmlReturn_t rc)
{
	switch (rc) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_NOT_FOUND: return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
	case 9: return "Driver Not Loaded";
	default: return "Unknown Error";
	}
}

API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
	if (!initialized)
		return NVML_ERROR_UNINITIALIZED;
	if (!count)
		return NVML_ERROR_INVALID_ARGUMENT;
	*count = device_count();
	return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
	if (!initialized)
		return NVML_ERROR_UNINITIALIZED;
	if (!device || index >= device_count())
		return NVML_ERROR_INVALID_ARGUMENT;
	*device = &devices[index];
	return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
	if (!valid(device) || !name || !length)
		return NVML_ERROR_INVALID_ARGUMENT;
	snprintf(name, length, "erg stub NVML device %u", device->idx);
	return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
	if (!valid(device) || !energy)
		return NVML_ERROR_INVALID_ARGUMENT;
	return list_value("ERG_STUB_NVML_ENERGY_MJ", device->idx, energy) ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
	unsigned long long v;

	if (!valid(device) || !power)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (list_value("ERG_STUB_NVML_POWER_MW", device->idx, &v))
		return NVML_ERROR_NOT_SUPPORTED;
	*power = (unsigned int)v;
	return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
	unsigned long long v;

	if (!valid(device) || !utilization)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (list_value("ERG_STUB_NVML_UTIL", device->idx, &v))
		return NVML_ERROR_NOT_SUPPORTED;
	utilization->gpu = (unsigned int)v;
	utilization->memory = 0;
	return NVML_SUCCESS;
}

/* Samples newer than lastSeenTimeStamp; with utilization NULL, the count. */
API nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization,
						 unsigned int *processSamplesCount,
						 unsigned long long lastSeenTimeStamp)
{
	const char *v = getenv("ERG_STUB_NVML_PROCS");
	unsigned n = 0;

	if (!valid(device) || !processSamplesCount)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!v)
		return NVML_ERROR_NOT_SUPPORTED;
	while (*v) {
		unsigned d, pid, sm;
		unsigned long long ts;

		if (sscanf(v, "%u:%u:%u:%llu", &d, &pid, &sm, &ts) == 4 && d == device->idx && ts > lastSeenTimeStamp) {
			if (utilization && n < *processSamplesCount)
				utilization[n] = (nvmlProcessUtilizationSample_t){ pid, ts, sm, 0, 0, 0 };
			n++;
		}
		v += strcspn(v, ";");
		if (*v == ';')
			v++;
	}
	if (!n)
		return NVML_ERROR_NOT_FOUND;
	if (!utilization || n > *processSamplesCount) {
		*processSamplesCount = n;
		return NVML_ERROR_INSUFFICIENT_SIZE;
	}
	*processSamplesCount = n;
	return NVML_SUCCESS;
}

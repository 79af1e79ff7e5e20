/* GPU energy attribution: each device's energy in a tick is split among the
 * workers that use it by their busy share (NVML per-process utilisation
 * where the driver gives it, else the driver-call estimate of gpu_busy.h),
 * with attrib_split (user/attrib.h) per device, so that for every device and
 * every tick attributed + unattributed = the device's energy exactly. The
 * device's idle energy, and the busy time of processes erg does not track
 * (when the device's own utilisation is known), stay unattributed. */
#ifndef ERG_GPU_ATTRIB_H
#define ERG_GPU_ATTRIB_H

#include <stddef.h>
#include <stdint.h>
#include "attrib.h"

struct gpu_attrib_device {
	uint64_t total_nj;	/* the device's energy this tick */
	uint64_t idle_nj;	/* its idle floor, never attributed */
	double busy_s;		/* the device's busy seconds this tick: the
				 * denominator of the shares (workers' sum if
				 * larger) */
};

struct gpu_attrib_tick {
	const struct gpu_attrib_device *devices;
	size_t n_devices;
	const double *worker_busy_s;	/* busy seconds of each worker on its device */
	const int *worker_device;	/* device index of each worker; < 0 or out of
					 * range: the worker is on no device */
	size_t n_workers;
};

/* Adds each worker's GPU nanojoules to worker_nj[0..n_workers) (it is not
 * cleared first) and returns the totals over all devices. */
struct attrib_result gpu_attrib_split(const struct gpu_attrib_tick *tick, uint64_t *worker_nj);

#endif

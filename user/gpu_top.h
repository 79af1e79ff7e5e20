/* erg top's GPU part: probes the CUDA driver calls of the tracked workers
 * (gpu_tracker.h), estimates their GPU busy time (gpu_busy.h), reads or
 * models each device's energy (nvml.h) and splits it among the workers
 * (gpu_attrib.h). It adds its joules to erg top's per-worker and total
 * figures, so the totals still conserve: attributed + unattributed =
 * measured or modelled CPU + GPU energy, to the nanojoule.
 *
 * It is active only once a tracked worker maps a CUDA driver library (or
 * --libcuda names one); until then it prints one header line and adds
 * nothing. */
#ifndef ERG_GPU_TOP_H
#define ERG_GPU_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "attrib.h"
#include "nvml.h"
#include "tracker.h"

struct gpu_top_opts {
	const char *libcuda;	/* --libcuda PATH */
	bool disabled;		/* --no-gpu */
	bool no_nvml;		/* --no-nvml */
	struct gpu_model model;	/* --gpu-idle-watts, --gpu-active-watts */
	const char *prog;	/* prefix of notices on stderr; NULL: "erg top" */
};

#define GPU_TOP_OPTIONS_HELP \
	"GPU (active once a tracked worker maps libcuda.so*, or with --libcuda):\n" \
	"      --libcuda PATH           probe this CUDA driver library from the start\n" \
	"                               (default: found in each worker's /proc/PID/maps)\n" \
	"      --gpu-idle-watts W[,W..] GPU power model: idle watts per device, never\n" \
	"                               attributed (default 70; also the idle floor\n" \
	"                               under NVML readings)\n" \
	"      --gpu-active-watts W[,W..]  GPU power model: watts above idle when busy\n" \
	"                               (default 630), used where NVML gives no energy\n" \
	"      --no-nvml                model GPU energy even if NVML is there\n" \
	"      --no-gpu                 no GPU probes, no GPU energy\n" \
	"  With a GPU part, model lines gain gpu_s (busy seconds from driver calls),\n" \
	"  gpu_joules, gpu_source (nvml or model), launches and other gpu_* counts,\n" \
	"  and joules include gpu_joules; total lines gain gpu_joules and gpu_nj.\n"

/* For getopt_long: put GPU_TOP_LONG_OPTIONS in the option table; it returns
 * GPU_TOP_GETOPT_VAL for each of them, and
 *   gpu_top_set_option(&opts, longopts[longindex].name, optarg, err, errlen)
 * applies it. */
#define GPU_TOP_GETOPT_VAL 0x4750
#define GPU_TOP_LONG_OPTIONS \
	{ "libcuda", required_argument, NULL, GPU_TOP_GETOPT_VAL }, \
	{ "gpu-idle-watts", required_argument, NULL, GPU_TOP_GETOPT_VAL }, \
	{ "gpu-active-watts", required_argument, NULL, GPU_TOP_GETOPT_VAL }, \
	{ "no-nvml", no_argument, NULL, GPU_TOP_GETOPT_VAL }, \
	{ "no-gpu", no_argument, NULL, GPU_TOP_GETOPT_VAL }

/* The most watts one device may be given (a larger value is a typo). */
#define GPU_TOP_MAX_WATTS 1e5

/* Returns 0, or -1 with a one-line message in err that names the option. */
int gpu_top_set_option(struct gpu_top_opts *o, const char *name, const char *arg, char *err, size_t errlen);

struct gpu_top;

/* model_of[w]: the model row of worker w (n_workers entries); model_names
 * (n_models, kept, not copied) name the rows. NULL only for
 * a failure the user asked for (--libcuda that cannot be probed), reason in
 * err; a GPU part that cannot start by itself is reported on stderr and
 * stays off. */
struct gpu_top *gpu_top_open(const struct gpu_top_opts *o, struct tracker *procs, size_t n_workers,
			     const size_t *model_of, const char *const *model_names, size_t n_models,
			     const struct tracker_opts *topts, double now_s, char *err, size_t errlen);

/* One tick at CLOCK_MONOTONIC now_s: adds each worker's GPU nanojoules of
 * the tick to worker_nj[w], the devices' energy to *total_nj, and its split
 * to *res. */
void gpu_top_tick(struct gpu_top *g, double now_s, uint64_t *worker_nj, uint64_t *total_nj,
		  struct attrib_result *res);

/* Table output: the GPU header line, and while active the GPU columns per
 * model and the GPU totals. */
void gpu_top_print(const struct gpu_top *g, bool summary, double elapsed_s);

/* NDJSON: the GPU fields of a model line and of a total/summary line. */
void gpu_top_json_model(const struct gpu_top *g, size_t model, cJSON *o);
void gpu_top_json_total(const struct gpu_top *g, cJSON *o);

/* GPU busy-window updates the BPF side gave up under contention, summed
 * over the workers since attach (0 while not active). */
unsigned long long gpu_top_races(const struct gpu_top *g);

/* The GPU part of worker w's nanojoules in the last tick (included in the
 * worker_nj gpu_top_tick() added to); 0 while not active, for NULL or for w
 * out of range. Lets a caller split a worker's joules into CPU and GPU. */
uint64_t gpu_top_worker_tick_nj(const struct gpu_top *g, size_t w);
/* Whether GPU joules are being counted (a driver library was probed). */
bool gpu_top_active(const struct gpu_top *g);

void gpu_top_close(struct gpu_top *g);

#endif

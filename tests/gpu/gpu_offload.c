/* Per-token kernel launches for the demo workers (see gpu_offload.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "gpu_offload.h"
#include "stub_cuda.h"

#define LOGITS_BYTES 4096

struct gpu_offload {
	CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
			   unsigned, CUstream, void **, void **);
	CUresult (*stream_sync)(CUstream);
	CUresult (*dtoh)(void *, CUdeviceptr, size_t);
	CUfunction fn;
	CUdeviceptr logits;
	int n_streams;
	CUstream streams[];
};

struct gpu_offload *gpu_offload_open(int streams, char *err, size_t errlen)
{
	CUresult (*init)(unsigned), (*device_get)(CUdevice *, int), (*retain)(CUcontext *, CUdevice);
	CUresult (*set_current)(CUcontext), (*load)(CUmodule *, const void *);
	CUresult (*get_fn)(CUfunction *, CUmodule, const char *), (*stream_create)(CUstream *, unsigned);
	CUresult (*mem_alloc)(CUdeviceptr *, size_t);
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	struct gpu_offload *g;
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUresult rc;
	const char *step;

	if (!h) {
		snprintf(err, errlen, "cannot load libcuda.so.1: %s", dlerror());
		return NULL;
	}
	g = calloc(1, sizeof(*g) + sizeof(CUstream) * (size_t)(streams > 0 ? streams : 1));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		dlclose(h);
		return NULL;
	}
	*(void **)&init = dlsym(h, "cuInit");
	*(void **)&device_get = dlsym(h, "cuDeviceGet");
	*(void **)&retain = dlsym(h, "cuDevicePrimaryCtxRetain");
	*(void **)&set_current = dlsym(h, "cuCtxSetCurrent");
	*(void **)&load = dlsym(h, "cuModuleLoadData");
	*(void **)&get_fn = dlsym(h, "cuModuleGetFunction");
	*(void **)&stream_create = dlsym(h, "cuStreamCreate");
	*(void **)&mem_alloc = dlsym(h, "cuMemAlloc_v2");
	*(void **)&g->launch = dlsym(h, "cuLaunchKernel");
	*(void **)&g->stream_sync = dlsym(h, "cuStreamSynchronize");
	*(void **)&g->dtoh = dlsym(h, "cuMemcpyDtoH_v2");
	if (!init || !device_get || !retain || !set_current || !load || !get_fn || !stream_create ||
	    !mem_alloc || !g->launch || !g->stream_sync || !g->dtoh) {
		snprintf(err, errlen, "libcuda.so.1 lacks a driver entry point this worker uses");
		goto fail;
	}
	g->n_streams = streams > 0 ? streams : 1;
/* each driver call in turn; the first that fails is named in err */
#define DRIVER_STEP(call, name)                 \
	do {                                    \
		if ((rc = (call)) != 0) {       \
			step = name;            \
			goto driver_error;      \
		}                               \
	} while (0)
	DRIVER_STEP(init(0), "cuInit");
	DRIVER_STEP(device_get(&dev, 0), "cuDeviceGet");
	DRIVER_STEP(retain(&ctx, dev), "cuDevicePrimaryCtxRetain");
	DRIVER_STEP(set_current(ctx), "cuCtxSetCurrent");
	DRIVER_STEP(load(&mod, "erg demo model"), "cuModuleLoadData");
	DRIVER_STEP(get_fn(&g->fn, mod, "decode_step"), "cuModuleGetFunction");
	DRIVER_STEP(mem_alloc(&g->logits, LOGITS_BYTES), "cuMemAlloc_v2");
	for (int i = 0; i < g->n_streams; i++)
		DRIVER_STEP(stream_create(&g->streams[i], 0), "cuStreamCreate");
#undef DRIVER_STEP
	return g;

driver_error:
	snprintf(err, errlen, "%s failed with CUresult %d", step, (int)rc);
fail:
	free(g);
	dlclose(h);
	return NULL;
}

int gpu_offload_token(struct gpu_offload *g, int stream, double device_us)
{
	static __thread unsigned char logits[LOGITS_BYTES];
	unsigned grid = device_us > 2.0 ? (unsigned)((device_us - 2.0) * 1000.0 / 256.0) : 1;
	CUstream s = g->streams[(stream >= 0 ? stream : 0) % g->n_streams];

	if (grid == 0)
		grid = 1;
	if (g->launch(g->fn, grid, 1, 1, 256, 1, 1, 0, s, NULL, NULL) || g->stream_sync(s) ||
	    g->dtoh(logits, g->logits, sizeof(logits)))
		return -1;
	return 0;
}

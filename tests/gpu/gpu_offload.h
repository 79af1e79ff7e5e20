/* Per-token GPU work for the demo workers, through the CUDA driver API
 * loaded with dlopen("libcuda.so.1") the way frameworks load it: in the
 * demo that is the stub driver (stub_cuda.c), so erg's GPU columns show on
 * any machine. Give each generating thread a stream of its own. */
#ifndef ERG_GPU_OFFLOAD_H
#define ERG_GPU_OFFLOAD_H

#include <stddef.h>

struct gpu_offload;

/* Load the driver and create `streams` streams. NULL with a reason in err. */
struct gpu_offload *gpu_offload_open(int streams, char *err, size_t errlen);
/* One token: a kernel of about device_us microseconds on stream `stream`
 * (grid sized for the stub's 1 ns per thread), its synchronize, and the
 * logits copied back. 0 or -1. Threads may call it at once on different
 * streams. */
int gpu_offload_token(struct gpu_offload *g, int stream, double device_us);

#endif

/* The part of the CUDA driver API that the stub driver (stub_cuda.c) and the
 * fake GPU worker (fake_gpu_worker.c) use, declared with the same C types
 * and argument order as the real driver (so that erg's probes read the
 * arguments where they are in a real process), plus the stub's ground-truth
 * record.
 *
 * Ground truth: the stub counts what it was asked to do and how long its
 * simulated device was busy. A program reads it with ergStubTruth()
 * (dlsym), and at exit the stub writes it as one JSON line to the file named
 * by ERG_STUB_TRUTH, if set.
 *
 * Environment of the stub:
 *   ERG_STUB_NS_PER_THREAD  kernel time per launched thread, ns (default 1)
 *   ERG_STUB_LAUNCH_NS      fixed time per kernel, ns (default 2000)
 *   ERG_STUB_COPY_GBPS      copy bandwidth, GB/s (default 10)
 *   ERG_STUB_DEVNODE        a character device the driver opens at cuInit
 *                           and ioctl()s once per synchronizing call, as the
 *                           real driver does with /dev/nvidia*
 *   ERG_STUB_TRUTH          file to write the ground truth to at exit */
#ifndef ERG_STUB_CUDA_H
#define ERG_STUB_CUDA_H

#include <stddef.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphNode_st *CUgraphNode;
typedef struct CUgraphExec_st *CUgraphExec;

#define CUDA_SUCCESS			0
#define CUDA_ERROR_INVALID_VALUE	1
#define CUDA_ERROR_OUT_OF_MEMORY	2
#define CUDA_ERROR_NOT_INITIALIZED	3
#define CUDA_ERROR_INVALID_HANDLE	400

#define CU_STREAM_LEGACY	((CUstream)0x1)
#define CU_STREAM_PER_THREAD	((CUstream)0x2)

typedef struct CUlaunchAttribute_st CUlaunchAttribute;

typedef struct CUlaunchConfig_st {
	unsigned int gridDimX, gridDimY, gridDimZ;
	unsigned int blockDimX, blockDimY, blockDimZ;
	unsigned int sharedMemBytes;
	CUstream hStream;
	CUlaunchAttribute *attrs;
	unsigned int numAttrs;
} CUlaunchConfig;

typedef struct CUDA_KERNEL_NODE_PARAMS_st {
	CUfunction func;
	unsigned int gridDimX, gridDimY, gridDimZ;
	unsigned int blockDimX, blockDimY, blockDimZ;
	unsigned int sharedMemBytes;
	void **kernelParams;
	void **extra;
} CUDA_KERNEL_NODE_PARAMS;

/* Ground truth of one process. Launches and copies count per API call that
 * the program made and that succeeded (a call the driver makes internally
 * from another entry point is not a second call). */
struct erg_stub_truth {
	unsigned long long launches;		/* kernel launches + graph launches */
	unsigned long long graph_launches;
	unsigned long long launch_threads;	/* grid x block of kernel launches */
	unsigned long long failed_launches;	/* rejected (bad geometry) */
	unsigned long long copies;
	unsigned long long bytes_h2d, bytes_d2h;
	unsigned long long syncs;		/* stream/context/event synchronize calls */
	unsigned long long ioctls;		/* on ERG_STUB_DEVNODE */
	unsigned long long busy_ns;		/* the device executing work */
	unsigned long long work_ns;		/* sum of the work items' planned times */
};

/* Exported by the stub (not part of the CUDA API). */
typedef void (*ergStubTruth_fn)(struct erg_stub_truth *out);

#endif

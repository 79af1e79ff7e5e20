/* A stand-in for the CUDA driver (libcuda.so.1) for testing erg's GPU probes
 * on machines without a GPU. It exports the driver entry points erg probes,
 * with their real C signatures, and the few a program needs to get there
 * (cuInit, devices, contexts, modules, streams, events, memory, graphs).
 *
 * The "device" is one thread per process that executes work items in FIFO
 * order: a kernel takes ERG_STUB_LAUNCH_NS + threads x ERG_STUB_NS_PER_THREAD,
 * a copy bytes / ERG_STUB_COPY_GBPS. Items follow a planned timeline
 * (each starts when the previous one ends), so sleep latency does not
 * accumulate. Synchronize calls block until the work they wait for has
 * run. The device's busy time is measured as it runs: from the moment it
 * takes work while idle to the moment it finds its queue empty.
 *
 * Like the real driver, some entry points reach others: cuLaunchKernel calls
 * cuLaunchKernel_ptsz, a synchronous copy is an async copy plus a stream
 * synchronize. Ground truth counts the program's calls only (see
 * stub_cuda.h); a tracer that counts the inner calls too double counts. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "stub_cuda.h"

#define API __attribute__((visibility("default"), noinline))

#define QUEUE_LEN 4096

struct CUstream_st {
	unsigned long long last_seq;	/* latest work item enqueued on it */
};

struct CUevent_st {
	unsigned long long seq;		/* work it waits for */
};

struct CUctx_st {
	int device;
};

struct CUfunc_st {
	char name[64];
};

#define MODULE_FUNCTIONS 16

/* A module owns its functions, as in the real driver. */
struct CUmod_st {
	struct CUfunc_st fn[MODULE_FUNCTIONS];
	int n;
};

struct CUgraph_st {
	unsigned long long work_ns;	/* sum of its kernel nodes */
	unsigned nodes;
};

struct CUgraphExec_st {
	unsigned long long work_ns;
};

struct CUgraphNode_st {
	int unused;
};

struct item {
	unsigned long long seq;
	unsigned long long ns;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work, done, space;
	pthread_t thread;
	bool started, stopping;
	struct item queue[QUEUE_LEN];
	unsigned long long head, tail;		/* ring indices, head <= tail */
	unsigned long long enqueued_seq, completed_seq;
	bool in_busy;
	unsigned long long period_start;
	struct erg_stub_truth truth;
	double ns_per_thread, launch_ns, copy_gbps;
	int devfd;
} dev = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.space = PTHREAD_COND_INITIALIZER,
	.devfd = -1,
};

static struct CUstream_st legacy_stream;
static __thread struct CUstream_st per_thread_stream;
static __thread int api_depth;	/* > 1: called from another entry point */
static struct CUctx_st the_ctx;
static struct CUgraphNode_st the_node;

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static double env_num(const char *name, double def)
{
	const char *v = getenv(name);
	char *end;
	double d;

	if (!v || !*v)
		return def;
	d = strtod(v, &end);
	if (*end || !(d >= 0)) {
		fprintf(stderr, "stub libcuda: %s='%s' is not a number >= 0; using %g\n", name, v, def);
		return def;
	}
	return d;
}

static void *device_thread(void *arg)
{
	unsigned long long t = 0;

	(void)arg;
	pthread_mutex_lock(&dev.lock);
	for (;;) {
		struct item it;
		struct timespec ts;

		while (dev.head == dev.tail && !dev.stopping) {
			if (dev.in_busy) {
				dev.truth.busy_ns += now_ns() - dev.period_start;
				dev.in_busy = false;
			}
			pthread_cond_wait(&dev.work, &dev.lock);
		}
		if (dev.stopping)
			break;
		if (!dev.in_busy) {
			dev.in_busy = true;
			dev.period_start = t = now_ns();
		}
		it = dev.queue[dev.head % QUEUE_LEN];
		pthread_mutex_unlock(&dev.lock);

		t += it.ns;
		ts.tv_sec = (time_t)(t / 1000000000ULL);
		ts.tv_nsec = (long)(t % 1000000000ULL);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;

		pthread_mutex_lock(&dev.lock);
		dev.head++;
		dev.completed_seq = it.seq;
		dev.truth.work_ns += it.ns;
		pthread_cond_broadcast(&dev.done);
		pthread_cond_signal(&dev.space);
	}
	pthread_mutex_unlock(&dev.lock);
	return NULL;
}

static void write_truth_file(void);

static void stop_device(void)
{
	pthread_mutex_lock(&dev.lock);
	if (!dev.started) {
		pthread_mutex_unlock(&dev.lock);
		return;
	}
	/* let queued work finish, so the truth covers everything enqueued */
	while (dev.completed_seq < dev.enqueued_seq)
		pthread_cond_wait(&dev.done, &dev.lock);
	dev.stopping = true;
	pthread_cond_signal(&dev.work);
	pthread_mutex_unlock(&dev.lock);
	pthread_join(dev.thread, NULL);
	pthread_mutex_lock(&dev.lock);
	if (dev.in_busy) {
		dev.truth.busy_ns += now_ns() - dev.period_start;
		dev.in_busy = false;
	}
	dev.started = false;
	pthread_mutex_unlock(&dev.lock);
}

__attribute__((destructor)) static void stub_fini(void)
{
	stop_device();
	write_truth_file();
	if (dev.devfd >= 0)
		close(dev.devfd);
}

static CUresult ensure_started(void)
{
	CUresult rc = CUDA_SUCCESS;

	pthread_mutex_lock(&dev.lock);
	if (!dev.started) {
		dev.ns_per_thread = env_num("ERG_STUB_NS_PER_THREAD", 1.0);
		dev.launch_ns = env_num("ERG_STUB_LAUNCH_NS", 2000.0);
		dev.copy_gbps = env_num("ERG_STUB_COPY_GBPS", 10.0);
		if (dev.copy_gbps <= 0)
			dev.copy_gbps = 10.0;
		if (pthread_create(&dev.thread, NULL, device_thread, NULL))
			rc = CUDA_ERROR_OUT_OF_MEMORY;
		else
			dev.started = true;
	}
	pthread_mutex_unlock(&dev.lock);
	return rc;
}

/* What a synchronizing call does in the real driver too: talk to the
 * kernel driver through its device node. */
static void driver_ioctl(void)
{
	if (dev.devfd < 0)
		return;
	(void)ioctl(dev.devfd, _IO('F', 0x42), 0);
	pthread_mutex_lock(&dev.lock);
	dev.truth.ioctls++;
	pthread_mutex_unlock(&dev.lock);
}

static struct CUstream_st *stream_of(CUstream s, bool per_thread_default)
{
	if (s == CU_STREAM_PER_THREAD || (!s && per_thread_default))
		return &per_thread_stream;
	if (!s || s == CU_STREAM_LEGACY)
		return &legacy_stream;
	return s;
}

static CUresult enqueue(struct CUstream_st *st, unsigned long long ns)
{
	CUresult rc = ensure_started();

	if (rc)
		return rc;
	pthread_mutex_lock(&dev.lock);
	while (dev.tail - dev.head >= QUEUE_LEN)	/* the push buffer is full */
		pthread_cond_wait(&dev.space, &dev.lock);
	dev.queue[dev.tail % QUEUE_LEN] = (struct item){ ++dev.enqueued_seq, ns };
	dev.tail++;
	st->last_seq = dev.enqueued_seq;
	/* the legacy stream waits for all earlier work, so everything enqueued
	 * counts as its work */
	legacy_stream.last_seq = dev.enqueued_seq;
	pthread_cond_signal(&dev.work);
	pthread_mutex_unlock(&dev.lock);
	return CUDA_SUCCESS;
}

static void wait_for(unsigned long long seq)
{
	pthread_mutex_lock(&dev.lock);
	while (dev.completed_seq < seq)
		pthread_cond_wait(&dev.done, &dev.lock);
	pthread_mutex_unlock(&dev.lock);
}

static unsigned long long kernel_ns(unsigned long long threads)
{
	return (unsigned long long)(dev.launch_ns + dev.ns_per_thread * (double)threads);
}

static unsigned long long copy_ns(size_t bytes)
{
	return (unsigned long long)(1000.0 + (double)bytes / dev.copy_gbps);
}

#define TRUTH_ADD(field, v)						\
	do {								\
		pthread_mutex_lock(&dev.lock);				\
		dev.truth.field += (v);					\
		pthread_mutex_unlock(&dev.lock);			\
	} while (0)

/* Every exported work or synchronize entry point counts itself only when
 * the program called it, not when another entry point did. */
#define ENTER() bool outer = ++api_depth == 1; (void)outer
#define LEAVE(rc) do { api_depth--; return (rc); } while (0)

static CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
		       unsigned by, unsigned bz, CUstream s, bool ptsz, bool outer)
{
	unsigned long long threads;
	CUresult rc;

	if (!f || !gx || !gy || !gz || !bx || !by || !bz || (unsigned long long)bx * by * bz > 1024) {
		if (outer)
			TRUTH_ADD(failed_launches, 1);
		return CUDA_ERROR_INVALID_VALUE;
	}
	threads = (unsigned long long)gx * gy * gz * bx * by * bz;
	rc = enqueue(stream_of(s, ptsz), kernel_ns(threads));
	if (!rc && outer) {
		TRUTH_ADD(launches, 1);
		TRUTH_ADD(launch_threads, threads);
	}
	return rc;
}

API CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
				 unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
				 unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
				 void **kernelParams, void **extra)
{
	ENTER();
	(void)sharedMemBytes;
	(void)kernelParams;
	(void)extra;
	LEAVE(launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, true, outer));
}

/* The legacy-stream entry point goes through the per-thread one, as the real
 * driver's do through a shared implementation: one call, two probed
 * functions. */
API CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
			    unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
			    unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
			    void **kernelParams, void **extra)
{
	ENTER();
	CUresult rc = cuLaunchKernel_ptsz(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
					  sharedMemBytes, hStream ? hStream : CU_STREAM_LEGACY,
					  kernelParams, extra);

	if (!rc && outer) {
		TRUTH_ADD(launches, 1);
		TRUTH_ADD(launch_threads, (unsigned long long)gridDimX * gridDimY * gridDimZ *
						  blockDimX * blockDimY * blockDimZ);
	}
	if (rc && outer)
		TRUTH_ADD(failed_launches, 1);
	LEAVE(rc);
}

static CUresult launch_ex(const CUlaunchConfig *config, CUfunction f, bool ptsz, bool outer)
{
	if (!config)
		return CUDA_ERROR_INVALID_VALUE;
	return launch(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
		      config->blockDimY, config->blockDimZ, config->hStream, ptsz, outer);
}

API CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
	ENTER();
	(void)kernelParams;
	(void)extra;
	LEAVE(launch_ex(config, f, false, outer));
}

API CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
				   void **extra)
{
	ENTER();
	(void)kernelParams;
	(void)extra;
	LEAVE(launch_ex(config, f, true, outer));
}

static CUresult graph_launch(CUgraphExec g, CUstream s, bool ptsz, bool outer)
{
	CUresult rc;

	if (!g)
		return CUDA_ERROR_INVALID_HANDLE;
	rc = enqueue(stream_of(s, ptsz), g->work_ns);
	if (!rc && outer) {
		TRUTH_ADD(launches, 1);
		TRUTH_ADD(graph_launches, 1);
	}
	return rc;
}

API CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
	ENTER();
	LEAVE(graph_launch(hGraphExec, hStream, false, outer));
}

API CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
	ENTER();
	LEAVE(graph_launch(hGraphExec, hStream, true, outer));
}

static CUresult copy_async(void *dst, const void *src, size_t bytes, CUstream s, bool ptsz, bool d2h,
			   bool outer)
{
	CUresult rc;

	if (!dst || !src)
		return CUDA_ERROR_INVALID_VALUE;
	memmove(dst, src, bytes);
	rc = enqueue(stream_of(s, ptsz), copy_ns(bytes));
	if (!rc && outer) {
		TRUTH_ADD(copies, 1);
		if (d2h)
			TRUTH_ADD(bytes_d2h, bytes);
		else
			TRUTH_ADD(bytes_h2d, bytes);
	}
	return rc;
}

static CUresult stream_sync(CUstream s, bool ptsz, bool outer)
{
	struct CUstream_st *st = stream_of(s, ptsz);
	unsigned long long seq;
	CUresult rc = ensure_started();

	if (rc)
		return rc;
	pthread_mutex_lock(&dev.lock);
	seq = st->last_seq;
	pthread_mutex_unlock(&dev.lock);
	wait_for(seq);
	if (outer) {
		driver_ioctl();
		TRUTH_ADD(syncs, 1);
	}
	return CUDA_SUCCESS;
}

API CUresult cuStreamSynchronize(CUstream hStream)
{
	ENTER();
	LEAVE(stream_sync(hStream, false, outer));
}

API CUresult cuStreamSynchronize_ptsz(CUstream hStream)
{
	ENTER();
	LEAVE(stream_sync(hStream, true, outer));
}

API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)
{
	ENTER();
	LEAVE(copy_async((void *)(size_t)dstDevice, srcHost, ByteCount, hStream, false, false, outer));
}

API CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
{
	ENTER();
	LEAVE(copy_async(dstHost, (const void *)(size_t)srcDevice, ByteCount, hStream, false, true, outer));
}

API CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
				       CUstream hStream)
{
	ENTER();
	LEAVE(copy_async((void *)(size_t)dstDevice, srcHost, ByteCount, hStream, true, false, outer));
}

API CUresult cuMemcpyDtoHAsync_v2_ptsz(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
{
	ENTER();
	LEAVE(copy_async(dstHost, (const void *)(size_t)srcDevice, ByteCount, hStream, true, true, outer));
}

/* A synchronous copy is an async copy on the default stream and a
 * synchronize on it, both through the exported entry points. */
#define SYNC_COPY(async_call, stream, d2h)					\
	do {									\
		CUresult rc = async_call;					\
		if (!rc)							\
			rc = cuStreamSynchronize(stream);			\
		if (!rc && outer) {						\
			driver_ioctl();						\
			TRUTH_ADD(copies, 1);					\
			if (d2h)						\
				TRUTH_ADD(bytes_d2h, ByteCount);		\
			else							\
				TRUTH_ADD(bytes_h2d, ByteCount);		\
		}								\
		LEAVE(rc);							\
	} while (0)

API CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
	ENTER();
	SYNC_COPY(cuMemcpyHtoDAsync_v2(dstDevice, srcHost, ByteCount, CU_STREAM_LEGACY), CU_STREAM_LEGACY, false);
}

API CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
	ENTER();
	SYNC_COPY(cuMemcpyDtoHAsync_v2(dstHost, srcDevice, ByteCount, CU_STREAM_LEGACY), CU_STREAM_LEGACY, true);
}

API CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
	ENTER();
	SYNC_COPY(cuMemcpyHtoDAsync_v2_ptsz(dstDevice, srcHost, ByteCount, CU_STREAM_PER_THREAD),
		  CU_STREAM_PER_THREAD, false);
}

API CUresult cuMemcpyDtoH_v2_ptds(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
	ENTER();
	SYNC_COPY(cuMemcpyDtoHAsync_v2_ptsz(dstHost, srcDevice, ByteCount, CU_STREAM_PER_THREAD),
		  CU_STREAM_PER_THREAD, true);
}

API CUresult cuCtxSynchronize(void)
{
	unsigned long long seq;
	CUresult rc;

	ENTER();
	rc = ensure_started();
	if (rc)
		LEAVE(rc);
	pthread_mutex_lock(&dev.lock);
	seq = dev.enqueued_seq;
	pthread_mutex_unlock(&dev.lock);
	wait_for(seq);
	if (outer) {
		driver_ioctl();
		TRUTH_ADD(syncs, 1);
	}
	LEAVE(CUDA_SUCCESS);
}

static CUresult event_record(CUevent e, CUstream s, bool ptsz)
{
	if (!e)
		return CUDA_ERROR_INVALID_HANDLE;
	pthread_mutex_lock(&dev.lock);
	e->seq = stream_of(s, ptsz)->last_seq;
	pthread_mutex_unlock(&dev.lock);
	return CUDA_SUCCESS;
}

API CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
	ENTER();
	LEAVE(event_record(hEvent, hStream, false));
}

API CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream)
{
	ENTER();
	LEAVE(event_record(hEvent, hStream, true));
}

API CUresult cuEventSynchronize(CUevent hEvent)
{
	unsigned long long seq;

	ENTER();
	if (!hEvent)
		LEAVE(CUDA_ERROR_INVALID_HANDLE);
	pthread_mutex_lock(&dev.lock);
	seq = hEvent->seq;
	pthread_mutex_unlock(&dev.lock);
	wait_for(seq);
	if (outer) {
		driver_ioctl();
		TRUTH_ADD(syncs, 1);
	}
	LEAVE(CUDA_SUCCESS);
}

/* ---- setup entry points: enough for a program to reach the ones above ---- */

API CUresult cuInit(unsigned int flags)
{
	const char *node = getenv("ERG_STUB_DEVNODE");

	if (flags)
		return CUDA_ERROR_INVALID_VALUE;
	if (node && *node && dev.devfd < 0) {
		dev.devfd = open(node, O_RDONLY | O_CLOEXEC);
		if (dev.devfd < 0)
			fprintf(stderr, "stub libcuda: cannot open ERG_STUB_DEVNODE %s: %s\n", node, strerror(errno));
		driver_ioctl();
	}
	return ensure_started();
}

API CUresult cuDriverGetVersion(int *driverVersion)
{
	if (!driverVersion)
		return CUDA_ERROR_INVALID_VALUE;
	*driverVersion = 12040;
	return CUDA_SUCCESS;
}

API CUresult cuDeviceGetCount(int *count)
{
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = 1;
	return CUDA_SUCCESS;
}

API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
	if (!device || ordinal != 0)
		return CUDA_ERROR_INVALID_VALUE;
	*device = 0;
	return CUDA_SUCCESS;
}

API CUresult cuDeviceGetName(char *name, int len, CUdevice dev_)
{
	if (!name || len <= 0 || dev_ != 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, (size_t)len, "erg stub device");
	return CUDA_SUCCESS;
}

API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev_)
{
	(void)flags;
	if (!pctx || dev_ != 0)
		return CUDA_ERROR_INVALID_VALUE;
	*pctx = &the_ctx;
	return CUDA_SUCCESS;
}

API CUresult cuCtxDestroy_v2(CUcontext ctx)
{
	return ctx == &the_ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev_)
{
	return cuCtxCreate_v2(pctx, 0, dev_);
}

API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev_)
{
	return dev_ == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuCtxSetCurrent(CUcontext ctx)
{
	return !ctx || ctx == &the_ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

API CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
	if (!module || !image)
		return CUDA_ERROR_INVALID_VALUE;
	*module = calloc(1, sizeof(**module));
	return *module ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

API CUresult cuModuleUnload(CUmodule hmod)
{
	free(hmod);
	return CUDA_SUCCESS;
}

API CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
	if (!hfunc || !hmod || !name)
		return CUDA_ERROR_INVALID_VALUE;
	for (int i = 0; i < hmod->n; i++) {
		if (!strcmp(hmod->fn[i].name, name)) {
			*hfunc = &hmod->fn[i];
			return CUDA_SUCCESS;
		}
	}
	if (hmod->n == MODULE_FUNCTIONS)
		return CUDA_ERROR_OUT_OF_MEMORY;
	snprintf(hmod->fn[hmod->n].name, sizeof(hmod->fn[0].name), "%s", name);
	*hfunc = &hmod->fn[hmod->n++];
	return CUDA_SUCCESS;
}

API CUresult cuStreamCreate(CUstream *phStream, unsigned int flags)
{
	(void)flags;
	if (!phStream)
		return CUDA_ERROR_INVALID_VALUE;
	*phStream = calloc(1, sizeof(**phStream));
	return *phStream ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

API CUresult cuStreamDestroy_v2(CUstream hStream)
{
	if (hStream && hStream != CU_STREAM_LEGACY && hStream != CU_STREAM_PER_THREAD)
		free(hStream);
	return CUDA_SUCCESS;
}

API CUresult cuEventCreate(CUevent *phEvent, unsigned int flags)
{
	(void)flags;
	if (!phEvent)
		return CUDA_ERROR_INVALID_VALUE;
	*phEvent = calloc(1, sizeof(**phEvent));
	return *phEvent ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

API CUresult cuEventDestroy_v2(CUevent hEvent)
{
	free(hEvent);
	return CUDA_SUCCESS;
}

/* Device memory is host memory here, so copies really copy. */
API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
	void *p;

	if (!dptr || !bytesize)
		return CUDA_ERROR_INVALID_VALUE;
	p = calloc(1, bytesize);
	if (!p)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*dptr = (CUdeviceptr)(size_t)p;
	return CUDA_SUCCESS;
}

API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
	free((void *)(size_t)dptr);
	return CUDA_SUCCESS;
}

API CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
	(void)flags;
	if (!phGraph)
		return CUDA_ERROR_INVALID_VALUE;
	*phGraph = calloc(1, sizeof(**phGraph));
	return *phGraph ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

API CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
				  size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
	const CUDA_KERNEL_NODE_PARAMS *p = nodeParams;

	(void)dependencies;
	(void)numDependencies;
	if (!phGraphNode || !hGraph || !p || !p->gridDimX || !p->gridDimY || !p->gridDimZ || !p->blockDimX ||
	    !p->blockDimY || !p->blockDimZ)
		return CUDA_ERROR_INVALID_VALUE;
	ensure_started();
	hGraph->work_ns += kernel_ns((unsigned long long)p->gridDimX * p->gridDimY * p->gridDimZ *
				     p->blockDimX * p->blockDimY * p->blockDimZ);
	hGraph->nodes++;
	*phGraphNode = &the_node;
	return CUDA_SUCCESS;
}

API CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
	(void)flags;
	if (!phGraphExec || !hGraph || !hGraph->nodes)
		return CUDA_ERROR_INVALID_VALUE;
	*phGraphExec = calloc(1, sizeof(**phGraphExec));
	if (!*phGraphExec)
		return CUDA_ERROR_OUT_OF_MEMORY;
	(*phGraphExec)->work_ns = hGraph->work_ns;
	return CUDA_SUCCESS;
}

API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
	free(hGraphExec);
	return CUDA_SUCCESS;
}

API CUresult cuGraphDestroy(CUgraph hGraph)
{
	free(hGraph);
	return CUDA_SUCCESS;
}

/* ---- ground truth ---- */

API void ergStubTruth(struct erg_stub_truth *out)
{
	pthread_mutex_lock(&dev.lock);
	*out = dev.truth;
	if (dev.in_busy)
		out->busy_ns += now_ns() - dev.period_start;
	pthread_mutex_unlock(&dev.lock);
}

static void write_truth_file(void)
{
	const char *path = getenv("ERG_STUB_TRUTH");
	struct erg_stub_truth t;
	FILE *f;

	if (!path || !*path)
		return;
	ergStubTruth(&t);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "stub libcuda: cannot write ERG_STUB_TRUTH %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f,
		"{\"pid\":%d,\"launches\":%llu,\"graph_launches\":%llu,\"launch_threads\":%llu,"
		"\"failed_launches\":%llu,\"copies\":%llu,\"bytes_h2d\":%llu,\"bytes_d2h\":%llu,"
		"\"syncs\":%llu,\"ioctls\":%llu,\"busy_ns\":%llu,\"work_ns\":%llu}\n",
		(int)getpid(), t.launches, t.graph_launches, t.launch_threads, t.failed_launches, t.copies,
		t.bytes_h2d, t.bytes_d2h, t.syncs, t.ioctls, t.busy_ns, t.work_ns);
	fclose(f);
}

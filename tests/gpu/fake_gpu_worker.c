/* A stand-in GPU inference worker: loads the CUDA driver with dlopen, the way
 * real frameworks load libcuda.so.1, and runs a token loop of kernel
 * launches (cuLaunchKernel, cuLaunchKernel_ptsz, cuLaunchKernelEx, graphs),
 * copies and synchronizes, with host "think" time in between.
 *
 *   fake_gpu_worker [--name COMM] [--tokens N] [--kernels K] [--grid G]
 *                   [--block B] [--streams S] [--sync stream|ctx|event|mix]
 *                   [--graph] [--think-ms T] [--commands] [--lib PATH]
 *
 * Built next to the stub driver with rpath $ORIGIN, so "libcuda.so.1" is
 * the stub unless LD_LIBRARY_PATH or --lib names another. (Built with
 * AddressSanitizer, whose dlopen interceptor ignores the program's rpath,
 * it needs LD_LIBRARY_PATH=OUT/gpu.)
 * --tokens N: run N tokens and exit (0: run until killed; default 0).
 * --commands: after "ready PID", read commands from stdin instead:
 *   "run N" runs N tokens then prints "done {truth}", "truth" prints
 *   "truth {truth}", "quit" (or end of input) exits. {truth} is the stub's
 *   ground truth as JSON (stub_cuda.h), when the driver is the stub.
 * Each token: an async host-to-device copy, K launches spread over S streams
 * with varying geometry (the 7th argument, blockDimZ, varies too), a graph
 * launch with --graph, a rejected launch every 16th token, the synchronize
 * of --sync (mix: stream, ctx, event in turn), a synchronous device-to-host
 * copy, then T ms of host time. Two warm-up tokens run before "ready". */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include "stub_cuda.h"

#define MAX_STREAMS 8
#define IN_BYTES 4096
#define OUT_BYTES 65536

static struct {
	CUresult (*Init)(unsigned);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*PrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*StreamCreate)(CUstream *, unsigned);
	CUresult (*EventCreate)(CUevent *, unsigned);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
				 unsigned, CUstream, void **, void **);
	CUresult (*LaunchKernel_ptsz)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
				      unsigned, CUstream, void **, void **);
	CUresult (*LaunchKernelEx)(const CUlaunchConfig *, CUfunction, void **, void **);
	CUresult (*GraphCreate)(CUgraph *, unsigned);
	CUresult (*GraphAddKernelNode)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t,
				       const CUDA_KERNEL_NODE_PARAMS *);
	CUresult (*GraphInstantiateWithFlags)(CUgraphExec *, CUgraph, unsigned long long);
	CUresult (*GraphLaunch)(CUgraphExec, CUstream);
	CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
	CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*StreamSynchronize)(CUstream);
	CUresult (*CtxSynchronize)(void);
	CUresult (*EventRecord)(CUevent, CUstream);
	CUresult (*EventSynchronize)(CUevent);
	CUresult (*GraphDestroy)(CUgraph);
	CUresult (*GraphExecDestroy)(CUgraphExec);
	CUresult (*ModuleUnload)(CUmodule);
	CUresult (*StreamDestroy)(CUstream);
	CUresult (*EventDestroy)(CUevent);
	CUresult (*MemFree)(CUdeviceptr);
	ergStubTruth_fn Truth;	/* only in the stub */
} cu;

static struct {
	long tokens;
	int kernels, grid, block, streams;
	double think_ms;
	const char *sync;
	bool graph, commands;
	const char *lib;
} opt = { 0, 8, 64, 256, 1, 5.0, "stream", false, false, "libcuda.so.1" };

static CUfunction fn;
static CUmodule mod;
static CUstream streams[MAX_STREAMS];
static CUevent events[MAX_STREAMS];
static CUdeviceptr d_in, d_out;
static CUgraphExec graph;
static unsigned char h_in[IN_BYTES], h_out[OUT_BYTES];
static long token_no;

static void die(const char *what, CUresult rc)
{
	fprintf(stderr, "fake_gpu_worker: %s failed: CUresult %d\n", what, rc);
	exit(1);
}

#define CHECK(call) do { CUresult rc_ = (call); if (rc_) die(#call, rc_); } while (0)

static void *sym(void *h, const char *name, bool required)
{
	void *p = dlsym(h, name);

	if (!p && required) {
		fprintf(stderr, "fake_gpu_worker: %s lacks %s\n", opt.lib, name);
		exit(2);
	}
	return p;
}

static void load_driver(void)
{
	void *h = dlopen(opt.lib, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		fprintf(stderr, "fake_gpu_worker: cannot load the CUDA driver: %s (build the stub with make, or set LD_LIBRARY_PATH)\n",
			dlerror());
		exit(2);
	}
	*(void **)&cu.Init = sym(h, "cuInit", true);
	*(void **)&cu.DeviceGet = sym(h, "cuDeviceGet", true);
	*(void **)&cu.PrimaryCtxRetain = sym(h, "cuDevicePrimaryCtxRetain", true);
	*(void **)&cu.CtxSetCurrent = sym(h, "cuCtxSetCurrent", true);
	*(void **)&cu.ModuleLoadData = sym(h, "cuModuleLoadData", true);
	*(void **)&cu.ModuleGetFunction = sym(h, "cuModuleGetFunction", true);
	*(void **)&cu.StreamCreate = sym(h, "cuStreamCreate", true);
	*(void **)&cu.EventCreate = sym(h, "cuEventCreate", true);
	*(void **)&cu.MemAlloc = sym(h, "cuMemAlloc_v2", true);
	*(void **)&cu.LaunchKernel = sym(h, "cuLaunchKernel", true);
	*(void **)&cu.LaunchKernel_ptsz = sym(h, "cuLaunchKernel_ptsz", true);
	*(void **)&cu.LaunchKernelEx = sym(h, "cuLaunchKernelEx", true);
	*(void **)&cu.GraphCreate = sym(h, "cuGraphCreate", true);
	*(void **)&cu.GraphAddKernelNode = sym(h, "cuGraphAddKernelNode", true);
	*(void **)&cu.GraphInstantiateWithFlags = sym(h, "cuGraphInstantiateWithFlags", true);
	*(void **)&cu.GraphLaunch = sym(h, "cuGraphLaunch", true);
	*(void **)&cu.MemcpyHtoDAsync = sym(h, "cuMemcpyHtoDAsync_v2", true);
	*(void **)&cu.MemcpyDtoH = sym(h, "cuMemcpyDtoH_v2", true);
	*(void **)&cu.StreamSynchronize = sym(h, "cuStreamSynchronize", true);
	*(void **)&cu.CtxSynchronize = sym(h, "cuCtxSynchronize", true);
	*(void **)&cu.EventRecord = sym(h, "cuEventRecord", true);
	*(void **)&cu.EventSynchronize = sym(h, "cuEventSynchronize", true);
	*(void **)&cu.GraphDestroy = sym(h, "cuGraphDestroy", true);
	*(void **)&cu.GraphExecDestroy = sym(h, "cuGraphExecDestroy", true);
	*(void **)&cu.ModuleUnload = sym(h, "cuModuleUnload", true);
	*(void **)&cu.StreamDestroy = sym(h, "cuStreamDestroy_v2", true);
	*(void **)&cu.EventDestroy = sym(h, "cuEventDestroy_v2", true);
	*(void **)&cu.MemFree = sym(h, "cuMemFree_v2", true);
	*(void **)&cu.Truth = sym(h, "ergStubTruth", false);
}

static void setup(void)
{
	static const char image[] = "erg fake module";
	CUdevice dev;
	CUcontext ctx;

	CHECK(cu.Init(0));
	CHECK(cu.DeviceGet(&dev, 0));
	CHECK(cu.PrimaryCtxRetain(&ctx, dev));
	CHECK(cu.CtxSetCurrent(ctx));
	CHECK(cu.ModuleLoadData(&mod, image));
	CHECK(cu.ModuleGetFunction(&fn, mod, "decode_step"));
	for (int s = 0; s < opt.streams; s++) {
		CHECK(cu.StreamCreate(&streams[s], 0));
		CHECK(cu.EventCreate(&events[s], 0));
	}
	CHECK(cu.MemAlloc(&d_in, IN_BYTES));
	CHECK(cu.MemAlloc(&d_out, OUT_BYTES));
	if (opt.graph) {
		CUgraph g;
		CUgraphNode node;
		CUDA_KERNEL_NODE_PARAMS p = { fn, (unsigned)opt.grid, 1, 1, (unsigned)opt.block, 1, 1, 0, NULL, NULL };

		CHECK(cu.GraphCreate(&g, 0));
		CHECK(cu.GraphAddKernelNode(&node, g, NULL, 0, &p));
		CHECK(cu.GraphAddKernelNode(&node, g, &node, 1, &p));
		CHECK(cu.GraphInstantiateWithFlags(&graph, g, 0));
		CHECK(cu.GraphDestroy(g));	/* the instance does not need it */
	}
}

static void teardown(void)
{
	CHECK(cu.CtxSynchronize());
	if (graph)
		CHECK(cu.GraphExecDestroy(graph));
	for (int s = 0; s < opt.streams; s++) {
		CHECK(cu.StreamDestroy(streams[s]));
		CHECK(cu.EventDestroy(events[s]));
	}
	CHECK(cu.MemFree(d_in));
	CHECK(cu.MemFree(d_out));
	CHECK(cu.ModuleUnload(mod));
}

static void synchronize(const char *mode)
{
	if (!strcmp(mode, "ctx")) {
		CHECK(cu.CtxSynchronize());
	} else if (!strcmp(mode, "event")) {
		for (int s = 0; s < opt.streams; s++)
			CHECK(cu.EventRecord(events[s], streams[s]));
		for (int s = 0; s < opt.streams; s++)
			CHECK(cu.EventSynchronize(events[s]));
	} else {
		for (int s = 0; s < opt.streams; s++)
			CHECK(cu.StreamSynchronize(streams[s]));
	}
}

static void token(void)
{
	static const char *mix[] = { "stream", "ctx", "event" };
	long i = token_no++;

	h_in[i % IN_BYTES] = (unsigned char)i;
	CHECK(cu.MemcpyHtoDAsync(d_in, h_in, IN_BYTES, streams[0]));
	for (int k = 0; k < opt.kernels; k++) {
		CUstream s = streams[k % opt.streams];
		unsigned gx = (unsigned)opt.grid * (1 + k % 3), gy = 1 + k % 2, gz = 1;
		unsigned bx = (unsigned)opt.block, by = 1, bz = 1 + (unsigned)(k % 4);

		if (k % 3 == 0) {
			CHECK(cu.LaunchKernel(fn, gx, gy, gz, bx, by, bz, 0, s, NULL, NULL));
		} else if (k % 3 == 1) {
			CHECK(cu.LaunchKernel_ptsz(fn, gx, gy, gz, bx, by, bz, 0, s, NULL, NULL));
		} else {
			CUlaunchConfig cfg = { gx, gy, gz, bx, by, bz, 0, s, NULL, 0 };

			CHECK(cu.LaunchKernelEx(&cfg, fn, NULL, NULL));
		}
	}
	if (opt.graph)
		CHECK(cu.GraphLaunch(graph, streams[0]));
	if (i % 16 == 15 && cu.LaunchKernel(fn, 0, 1, 1, 1, 1, 1, 0, streams[0], NULL, NULL) == CUDA_SUCCESS)
		die("a launch with gridDimX 0 (must be rejected)", CUDA_SUCCESS);
	synchronize(!strcmp(opt.sync, "mix") ? mix[i % 3] : opt.sync);
	CHECK(cu.MemcpyDtoH(h_out, d_out, OUT_BYTES));
	if (opt.think_ms > 0) {
		struct timespec ts = { (time_t)(opt.think_ms / 1000), (long)(opt.think_ms * 1e6) % 1000000000L };

		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}

static void print_truth(const char *tag)
{
	struct erg_stub_truth t = { 0 };

	if (cu.Truth)
		cu.Truth(&t);
	printf("%s {\"stub\":%s,\"tokens\":%ld,\"launches\":%llu,\"graph_launches\":%llu,"
	       "\"launch_threads\":%llu,\"failed_launches\":%llu,\"copies\":%llu,\"bytes_h2d\":%llu,"
	       "\"bytes_d2h\":%llu,\"syncs\":%llu,\"ioctls\":%llu,\"busy_ns\":%llu,\"work_ns\":%llu}\n",
	       tag, cu.Truth ? "true" : "false", token_no, t.launches, t.graph_launches, t.launch_threads,
	       t.failed_launches, t.copies, t.bytes_h2d, t.bytes_d2h, t.syncs, t.ioctls, t.busy_ns, t.work_ns);
	fflush(stdout);
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "fake_gpu_worker: %s '%s' (see the comment at the top of tests/gpu/fake_gpu_worker.c)\n",
		msg, arg ? arg : "");
	return 2;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long n;

		if (!strcmp(a, "--graph")) {
			opt.graph = true;
			continue;
		}
		if (!strcmp(a, "--commands")) {
			opt.commands = true;
			continue;
		}
		if (!v)
			return usage_error("option needs a value or is unknown:", a);
		i++;
		if (!strcmp(a, "--name")) {
			prctl(PR_SET_NAME, v, 0, 0, 0);
		} else if (!strcmp(a, "--lib")) {
			opt.lib = v;
		} else if (!strcmp(a, "--sync")) {
			if (strcmp(v, "stream") && strcmp(v, "ctx") && strcmp(v, "event") && strcmp(v, "mix"))
				return usage_error("--sync: expected stream, ctx, event or mix, not", v);
			opt.sync = v;
		} else if (!strcmp(a, "--think-ms")) {
			char *end;

			opt.think_ms = strtod(v, &end);
			if (*end || end == v || !(opt.think_ms >= 0) || opt.think_ms > 60000)
				return usage_error("--think-ms: expected milliseconds 0..60000, not", v);
		} else if (!strcmp(a, "--tokens") && parse_int(v, 0, 1L << 40, &n)) {
			opt.tokens = n;
		} else if (!strcmp(a, "--kernels") && parse_int(v, 1, 1024, &n)) {
			opt.kernels = (int)n;
		} else if (!strcmp(a, "--grid") && parse_int(v, 1, 1 << 20, &n)) {
			opt.grid = (int)n;
		} else if (!strcmp(a, "--block") && parse_int(v, 1, 256, &n)) {
			opt.block = (int)n;
		} else if (!strcmp(a, "--streams") && parse_int(v, 1, MAX_STREAMS, &n)) {
			opt.streams = (int)n;
		} else {
			return usage_error("unknown option or bad value:", a);
		}
	}
	load_driver();
	setup();
	token();
	token();
	printf("ready %d\n", (int)getpid());
	fflush(stdout);

	if (!opt.commands) {
		for (long n = 0; opt.tokens == 0 || n < opt.tokens; n++)
			token();
		teardown();
		return 0;
	}
	char line[128];

	while (fgets(line, sizeof(line), stdin)) {
		long n;

		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "run ", 4) && parse_int(line + 4, 0, 1L << 30, &n)) {
			for (long k = 0; k < n; k++)
				token();
			CHECK(cu.CtxSynchronize());
			print_truth("done");
		} else if (!strcmp(line, "truth")) {
			print_truth("truth");
		} else if (!strcmp(line, "quit")) {
			break;
		} else {
			fprintf(stderr, "fake_gpu_worker: unknown command '%s' (run N, truth, quit)\n", line);
		}
	}
	teardown();
	return 0;
}

# GPU test fixtures (tests/gpu/): a stub CUDA driver with the real library
# name, a fake GPU worker that dlopen()s it, and a stub NVML for the unit
# tests of user/nvml.c.
#
#   $(OUT)/gpu/libcuda.so.1              the stub driver (soname libcuda.so.1)
#   $(OUT)/gpu/fake_gpu_worker           rpath $ORIGIN: finds the stub first
#   $(OUT)/gpu/nvml/libnvidia-ml.so.1    stub NVML, in a directory of its own
#                                        so nothing finds it by accident
#
# The BPF side of erg's GPU probes (bpf/gpu.bpf.c) uses compare-and-swap,
# which needs the BPF v3 instruction set (kernel 5.12+ for BPF atomics).

GPU_STUB     := $(OUT)/gpu/libcuda.so.1
GPU_WORKER   := $(OUT)/gpu/fake_gpu_worker
GPU_NVML     := $(OUT)/gpu/nvml/libnvidia-ml.so.1
EXTRA_BINS   += $(GPU_STUB) $(GPU_WORKER) $(GPU_NVML)

$(OUT)/gpu.bpf.o: BPFCFLAGS += -mcpu=v3

$(OUT)/gpu $(OUT)/gpu/nvml:
	$(Q)mkdir -p $@

# -fvisibility=hidden: only the driver entry points (marked default) are
# exported, as in the real library.
$(GPU_STUB): tests/gpu/stub_cuda.c tests/gpu/stub_cuda.h | $(OUT)/gpu
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden $(LDFLAGS) -shared \
		-Wl,-soname,libcuda.so.1 $< -lpthread -o $@

$(GPU_WORKER): tests/gpu/fake_gpu_worker.c tests/gpu/stub_cuda.h | $(OUT)/gpu
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< -Wl,-rpath,'$$ORIGIN' -ldl -o $@

$(GPU_NVML): tests/gpu/stub_nvml.c | $(OUT)/gpu/nvml
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden $(LDFLAGS) -shared \
		-Wl,-soname,libnvidia-ml.so.1 $< -o $@

# erg: energy-aware routing for large reasoning models.
# `make` builds build/erg; `make test` runs every test; `make run` the demo.
# Quiet unless V=1. SAN=1 builds with AddressSanitizer + UBSan into build-san/.

ARCH      ?= x86
ifeq ($(SAN),1)
OUT       ?= build-san
SANFLAGS  := -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow
else
OUT       ?= build
SANFLAGS  :=
endif

CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra $(SANFLAGS)
CPPFLAGS  += -Iinclude -Iuser -Iuser/serve -I$(OUT) -D_GNU_SOURCE
LDFLAGS   += $(SANFLAGS)
LDLIBS    += $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf) -lelf -lz \
             -luring -lcjson -linih -lm -lpthread
BPFCFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall \
             -Ivmlinux/$(ARCH) -Iinclude

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all deps check-deps test test-unit test-san run bench clean vmlinux

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
# user/*.c and one level of stage folders (user/serve/, ...), DESIGN's layout
USER_SRCS  := $(wildcard user/*.c user/*/*.c)
USER_OBJS  := $(patsubst user/%.c,$(OUT)/user/%.o,$(USER_SRCS))
LIB_OBJS   := $(filter-out $(OUT)/user/main.o,$(USER_OBJS))
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
FIXT_SRCS  := $(wildcard tests/fixtures/*.c)
FIXT_BINS  := $(patsubst tests/fixtures/%.c,$(OUT)/fixtures/%,$(FIXT_SRCS))
# the C benchmarks; other programs there are tools of the bench scripts (mk/bench.mk)
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(OUT)/bench/%,$(BENCH_SRCS))

# mk/*.mk add their own programs to EXTRA_BINS (demo workers, model tools).
.DEFAULT_GOAL := all
EXTRA_BINS :=
-include $(sort $(wildcard mk/*.mk))

all: check-deps $(OUT)/erg $(FIXT_BINS) $(EXTRA_BINS)

# Debian 12 packages erg builds and tests with; `make deps` installs them.
DEB_PKGS := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config \
            liburing-dev libcjson-dev libinih-dev libcmocka-dev node-llhttp libclang-rt-dev \
            make gcc python3 python3-prometheus-client util-linux git curl wrk nginx-light stress-ng
deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (it calls apt-get install)"; exit 2; fi
	$(Q)DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(Q)DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS) >/dev/null
	@echo "deps: installed $(DEB_PKGS)"

# Name the missing package and the command that installs it, instead of a
# compiler error three screens later. As root, install them (AUTO_DEPS=0 to
# only report), so `make run` and `make test` work on a fresh machine.
AUTO_DEPS ?= 1
check-deps:
	@missing=""; \
	need() { command -v "$$1" >/dev/null 2>&1 || missing="$$missing $$2"; }; \
	hdr()  { [ -e "/usr/include/$$1" ] || missing="$$missing $$2"; }; \
	need $(CLANG) clang; need llc llvm; need $(BPFTOOL) bpftool; need pkg-config pkg-config; \
	need curl curl; need git git; need python3 python3; \
	hdr bpf/libbpf.h libbpf-dev; hdr gelf.h libelf-dev; hdr zlib.h zlib1g-dev; \
	hdr liburing.h liburing-dev; hdr cjson/cJSON.h libcjson-dev; hdr ini.h libinih-dev; \
	hdr cmocka.h libcmocka-dev; [ -e /usr/share/include/llhttp/llhttp.h ] || missing="$$missing node-llhttp"; \
	[ -e "$$($(CLANG) -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-$$(uname -m).a" ] || \
	  missing="$$missing libclang-rt-dev"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && [ "$(AUTO_DEPS)" = 1 ]; then \
	  echo "erg: installing missing Debian package(s):$$missing (make deps)"; \
	  $(MAKE) --no-print-directory deps || exit 2; \
	elif [ -n "$$missing" ]; then \
	  echo "erg: missing Debian package(s):$$missing"; \
	  echo "     install them with: sudo apt-get install$$missing   (or: sudo make deps)"; \
	  exit 2; \
	fi

vmlinux:
	$(call msg,BTF,vmlinux/$(ARCH)/vmlinux.h)
	$(Q)mkdir -p vmlinux/$(ARCH)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

$(OUT) $(OUT)/user $(OUT)/tests $(OUT)/fixtures $(OUT)/bench: | check-deps
	$(Q)mkdir -p $@

$(OUT)/%.bpf.o: bpf/%.bpf.c include/erg.h $(wildcard bpf/*.h) | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPFCFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(OUT)/user/%.o: user/%.c $(wildcard user/*.h user/*/*.h) include/erg.h $(SKELS) | $(OUT)/user
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OUT)/erg: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(OUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB_OBJS) $(LDLIBS) -lcmocka -o $@

$(OUT)/fixtures/%: tests/fixtures/%.c | $(OUT)/fixtures
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< -lm -lpthread -ldl -o $@

$(OUT)/bench/%: tests/bench/%.c $(LIB_OBJS) | $(OUT)/bench
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB_OBJS) $(LDLIBS) -o $@

# Every test: unit (cmocka), integration (root + BPF), then the unit tests
# again under ASan+UBSan. One summary line at the end.
test: all $(UNIT_BINS)
	$(Q)$(MAKE) --no-print-directory SAN=1 all-tests-san
	$(Q)tests/run.sh $(OUT) build-san

test-unit: all $(UNIT_BINS)
	$(Q)tests/run.sh --unit-only $(OUT)

all-tests-san: $(OUT)/erg $(UNIT_BINS) $(FIXT_BINS) $(EXTRA_BINS)

# GPU=stub adds the stub CUDA driver (a simulated GPU, labelled as such).
run: all
	$(Q)ERG_DEMO_GPU=$(GPU) tests/demo/run.sh $(OUT)

# The C benchmarks, then the scripts (mk/bench.mk); a script's exit 77 is a
# skip it has explained.
bench: all bench-deps $(BENCH_BINS) $(BENCH_TOOLS)
	$(Q)for b in $(BENCH_BINS); do $$b || exit 1; done
	$(Q)for s in $(BENCH_SCRIPTS); do bash $$s $(OUT); rc=$$?; [ $$rc = 0 ] || [ $$rc = 77 ] || exit 1; done

clean:
	$(call msg,CLEAN,build build-san)
	$(Q)rm -rf build build-san

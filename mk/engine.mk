# The real inference engine: llama.cpp's prebuilt CPU libraries from npm
# (package.json pins node-llama-cpp and @node-llama-cpp/linux-x64 3.21.1),
# the headers from the llama.cpp source bundle inside node-llama-cpp, the
# synthetic GGUF model ladder, and the programs linked against libllama.
#
#   make engine   npm install (only when node_modules is missing or the lock
#                 changed), headers, then $(ENGINE_BINS)
#   make models   the model ladder $(MODELS) (no npm needed)
#
# Neither is part of the default `make`: they need npm, ~80 MB of packages and
# ~530 MB of models. gguf-writer is plain C and is built by `make`.
#
# For other rules: LLAMA_LIBDIR, LLAMA_CFLAGS (include paths, and the library
# directory compiled in for loading ggml's CPU backend), LLAMA_LDFLAGS (put it
# after the objects: rpath plus the libraries, so programs run without
# LD_LIBRARY_PATH). Depend on $(LLAMA_STAMP) to have both.

.PHONY: engine models models-list

ENGINE_MODULES := node_modules
ENGINE_STAMP   := $(ENGINE_MODULES)/.erg-engine-installed
LLAMA_LIBDIR   := $(abspath $(ENGINE_MODULES)/@node-llama-cpp/linux-x64/bins/linux-x64)
LLAMA_BUNDLE   := $(abspath $(ENGINE_MODULES)/node-llama-cpp/llama/gitRelease.bundle)
LLAMA_INC      := $(OUT)/llama-include
LLAMA_STAMP    := $(LLAMA_INC)/.stamp
LLAMA_CFLAGS   := -I$(LLAMA_INC)/include -I$(LLAMA_INC)/ggml/include \
                  -DERG_LLAMA_LIBDIR='"$(LLAMA_LIBDIR)"'
# Globs, expanded by the shell when linking: the names carry the llama.cpp
# release (libllama.v0.4.0.so), which only the lock file fixes.
LLAMA_LDFLAGS  := -Wl,-rpath,$(LLAMA_LIBDIR) $(LLAMA_LIBDIR)/libllama.v*.so \
                  $(LLAMA_LIBDIR)/libggml.v*.so $(LLAMA_LIBDIR)/libggml-base.so

# Model ladder: about 30M, 130M and 340M parameters (q8_0, seed 1); each
# step is at least 2.5x the one below (tests/integration/gguf_models.sh).
MODEL_SIZES    := 30 130 340
MODELS         := $(foreach m,$(MODEL_SIZES),$(OUT)/models/erg-$(m)m.gguf)
GGUF_WRITER    := $(OUT)/models/gguf-writer
LLM_ENGINE_OBJ := $(OUT)/llm/llm_engine.o

ENGINE_BINS    := $(OUT)/models/llm-bench
# The worker's HTTP side is the demo workers' openai_http layer.
ifneq ($(wildcard tests/demo/openai_http.h),)
ENGINE_BINS    += $(OUT)/llm/erg-llm-worker
endif
EXTRA_BINS     += $(GGUF_WRITER)

$(OUT)/models $(OUT)/llm:
	$(Q)mkdir -p $@

# --ignore-scripts: node-llama-cpp's postinstall would look for (and if need
# be download or build) binaries for its Node addon; erg only links the
# prebuilt libraries, so nothing but the registry tarballs is fetched.
# --omit=optional keeps the CUDA/Vulkan variants out.
$(ENGINE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "make engine: npm is missing; install it with: sudo apt-get install npm"; exit 2; }
	@[ "$$(uname -m)" = x86_64 ] || { \
	  echo "make engine: the pinned prebuilt llama.cpp libraries are for x86_64 Linux only (this is $$(uname -m))"; exit 2; }
	$(call msg,NPM,$(ENGINE_MODULES) (node-llama-cpp 3.21.1))
	$(Q)npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null || { \
	  echo "make engine: npm ci failed (is the npm registry reachable?)"; exit 1; }
	@ls $(LLAMA_LIBDIR)/libllama.v*.so $(LLAMA_LIBDIR)/libggml-base.so >/dev/null 2>&1 || { \
	  echo "make engine: no prebuilt libllama in $(LLAMA_LIBDIR) after npm ci"; exit 1; }
	$(Q)touch $@

# node-llama-cpp ships llama.cpp as a git bundle; take only the public headers
# of the exact release the libraries were built from.
$(LLAMA_STAMP): $(ENGINE_STAMP)
	@command -v git >/dev/null 2>&1 || { \
	  echo "make engine: git is missing (needed to read llama.cpp's headers from its bundle); install it with: sudo apt-get install git"; exit 2; }
	$(call msg,HEADERS,$(LLAMA_INC))
	$(Q)rm -rf $(LLAMA_INC) $(LLAMA_INC).git && mkdir -p $(LLAMA_INC)
	$(Q)unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE; \
	  git init -q --bare $(LLAMA_INC).git && \
	  git -C $(LLAMA_INC).git fetch -q $(LLAMA_BUNDLE) HEAD && \
	  git -C $(LLAMA_INC).git archive FETCH_HEAD include/llama.h include/llama-cpp.h ggml/include \
	    | tar -x -C $(LLAMA_INC)
	$(Q)rm -rf $(LLAMA_INC).git
	$(Q)test -f $(LLAMA_INC)/include/llama.h && test -f $(LLAMA_INC)/ggml/include/ggml-backend.h
	$(Q)touch $@

$(GGUF_WRITER): tests/models/gguf_writer.c | $(OUT)/models
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< -lm -o $@

$(LLM_ENGINE_OBJ): tests/llm/llm_engine.c tests/llm/llm_engine.h $(LLAMA_STAMP) | $(OUT)/llm
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(LLAMA_CFLAGS) $(CFLAGS) -c $< -o $@

$(OUT)/models/llm-bench: tests/models/llm_bench.c $(LLM_ENGINE_OBJ) | $(OUT)/models
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/llm $(CFLAGS) $(LDFLAGS) $< $(LLM_ENGINE_OBJ) $(LLAMA_LDFLAGS) -lm -lpthread -o $@

# --gpu-us-per-b dlopen()s libcuda.so.1: the rpath finds the stub driver in
# $(OUT)/gpu (a real driver comes first where LD_LIBRARY_PATH names it).
$(OUT)/llm/erg-llm-worker: tests/llm/erg_llm_worker.c tests/demo/openai_http.c tests/demo/openai_http.h tests/demo/cli_num.h \
                           tests/gpu/gpu_offload.c tests/gpu/gpu_offload.h \
                           $(LLM_ENGINE_OBJ) | $(OUT)/llm $(OUT)/gpu/libcuda.so.1
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/llm -Itests/demo -Itests/gpu $(CFLAGS) $(LDFLAGS) $< tests/demo/openai_http.c \
	  $(HTTP_PARSE_OBJS) tests/gpu/gpu_offload.c $(LLM_ENGINE_OBJ) $(LLAMA_LDFLAGS) -Wl,-rpath,'$$ORIGIN/../gpu' \
	  -lcjson -lm -lpthread -ldl -o $@

$(OUT)/models/erg-%m.gguf: $(GGUF_WRITER)
	$(call msg,GGUF,$@)
	$(Q)$(GGUF_WRITER) --params-m $* --type q8_0 --seed 1 -o $@ >/dev/null

engine: $(ENGINE_STAMP) $(LLAMA_STAMP) $(ENGINE_BINS)
	@echo "engine: llama.cpp CPU libraries in $(LLAMA_LIBDIR)"

models: $(MODELS)

# The ladder's file names, for scripts (`make -s models-list`).
models-list:
	@echo $(MODELS)

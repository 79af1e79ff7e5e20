# Demo model workers and the load generator (tests/demo/).
# openai_http.o is a separate object so other worker programs can link the
# same HTTP layer: $(OAI_HTTP_OBJ) $(HTTP_PARSE_OBJS) (erg's llhttp framing,
# mk/llhttp.mk) with -lcjson -lpthread.

OAI_HTTP_OBJ := $(OUT)/demo/openai_http.o
DEMO_BINS    := $(OUT)/demo/demo_worker $(OUT)/demo/loadgen
DEMO_LIBS    := -lcjson -lpthread -lm
EXTRA_BINS   += $(DEMO_BINS)

$(OUT)/demo: | check-deps
	$(Q)mkdir -p $@

$(OAI_HTTP_OBJ): tests/demo/openai_http.c tests/demo/openai_http.h user/serve/http_parse.h | $(OUT)/demo
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# --gpu-us-per-b dlopen()s libcuda.so.1: the rpath finds the stub driver in
# $(OUT)/gpu (mk/gpu.mk).
$(OUT)/demo/demo_worker: tests/demo/demo_worker.c tests/demo/openai_http.h tests/demo/cli_num.h $(OAI_HTTP_OBJ) \
                         tests/gpu/gpu_offload.c tests/gpu/gpu_offload.h | $(OUT)/demo $(OUT)/gpu/libcuda.so.1
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/demo -Itests/gpu $(CFLAGS) $(LDFLAGS) $< $(OAI_HTTP_OBJ) $(HTTP_PARSE_OBJS) tests/gpu/gpu_offload.c \
	  -Wl,-rpath,'$$ORIGIN/../gpu' $(DEMO_LIBS) -ldl -o $@

$(OUT)/demo/loadgen: tests/demo/loadgen.c tests/demo/cli_num.h | $(OUT)/demo
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(DEMO_LIBS) -o $@

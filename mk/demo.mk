# Demo model workers and the load generator (tests/demo/).
# openai_http.o is a separate object so other worker programs can link the
# same HTTP layer: $(OAI_HTTP_OBJ) with -lcjson -lpthread.

OAI_HTTP_OBJ := $(OUT)/demo/openai_http.o
DEMO_BINS    := $(OUT)/demo/demo_worker $(OUT)/demo/loadgen
DEMO_LIBS    := -lcjson -lpthread -lm
EXTRA_BINS   += $(DEMO_BINS)

$(OUT)/demo: | check-deps
	$(Q)mkdir -p $@

$(OAI_HTTP_OBJ): tests/demo/openai_http.c tests/demo/openai_http.h | $(OUT)/demo
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OUT)/demo/demo_worker: tests/demo/demo_worker.c tests/demo/openai_http.h $(OAI_HTTP_OBJ) | $(OUT)/demo
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/demo $(CFLAGS) $(LDFLAGS) $< $(OAI_HTTP_OBJ) $(DEMO_LIBS) -o $@

$(OUT)/demo/loadgen: tests/demo/loadgen.c | $(OUT)/demo
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(DEMO_LIBS) -o $@

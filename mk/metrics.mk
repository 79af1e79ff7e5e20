# /metrics test helper: erg's Prometheus families served by
# user/serve/metrics_server.c from rows a tick thread keeps changing, for
# tests/integration/metrics_server.sh. Linked with the user objects (the
# generic fixture rule links none).
$(OUT)/tools/metrics_serve: tests/tools/metrics_serve.c $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB_OBJS) $(LDLIBS) -o $@

EXTRA_BINS += $(OUT)/tools/metrics_serve

# Ledger test helper: a journal writer linked with the user objects (the
# generic fixture rule links none), killed mid-run by
# tests/integration/journal_kill.sh.
$(OUT)/tools/ledger_writer: tests/tools/ledger_writer.c $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB_OBJS) $(LDLIBS) -o $@

EXTRA_BINS += $(OUT)/tools/ledger_writer

# llhttp 8.1 from Debian's node-llhttp (sources in /usr/share/llhttp), the
# HTTP/1.1 parser under user/serve/http_parse.c. Built in strict mode: erg
# never turns on a lenient flag. Linked into erg, the unit tests, the bench
# programs and the demo workers.

LLHTTP_SRCDIR := /usr/share/llhttp
LLHTTP_INC    := /usr/share/include/llhttp
LLHTTP_OBJS   := $(patsubst %,$(OUT)/llhttp/%.o,api http llhttp)
# generated code: its own warnings are not erg's
LLHTTP_CFLAGS := -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) -w

$(OUT)/llhttp: | check-deps
	$(Q)mkdir -p $@

$(OUT)/llhttp/%.o: $(LLHTTP_SRCDIR)/%.c $(LLHTTP_INC)/llhttp.h | $(OUT)/llhttp
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LLHTTP_CFLAGS) -c $< -o $@

# only http_parse.c includes llhttp.h
$(OUT)/user/serve/http_parse.o: CPPFLAGS += -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC)

# erg links $^; the unit tests and bench programs link $(LIB_OBJS).
$(OUT)/erg: $(LLHTTP_OBJS)
LIB_OBJS += $(LLHTTP_OBJS)

# erg's HTTP framing as a unit: the demo workers' HTTP server
# (tests/demo/openai_http.c, mk/demo.mk and mk/engine.mk) links it too.
HTTP_PARSE_OBJS := $(OUT)/user/serve/http_parse.o $(LLHTTP_OBJS)
$(OUT)/demo/demo_worker $(OUT)/llm/erg-llm-worker: $(HTTP_PARSE_OBJS)

# libFuzzer target for erg's HTTP request path (tests/fuzz/: the parser and
# the body rewrite of steered requests), built with clang
# (libFuzzer is in Debian's libclang-rt-dev) under ASan + UBSan. llhttp is
# compiled again with coverage so its branches guide the fuzzer too; this
# file sorts after mk/llhttp.mk, whose variables it uses.
#
#   make fuzz [FUZZ_SECONDS=300]   fuzz for that long; new inputs go to
#                                  $(OUT)/fuzz/corpus, findings to $(OUT)/fuzz/
# `make test` runs it for about 25 s (tests/integration/fuzz_http_parse.sh).

.PHONY: fuzz

FUZZ_SECONDS  ?= 300
FUZZ_BIN      := $(OUT)/fuzz/fuzz_http_parse
FUZZ_CORPUS   := tests/fuzz/corpus/http_parse
FUZZ_DICT     := tests/fuzz/http.dict
FUZZ_CFLAGS   := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LLHTTP   := $(patsubst %,$(OUT)/fuzz/llhttp-%.o,api http llhttp)
# already under ASan: the SAN=1 build need not make it again
ifneq ($(SAN),1)
EXTRA_BINS    += $(FUZZ_BIN)
endif

$(OUT)/fuzz: | check-deps
	$(Q)mkdir -p $@

$(OUT)/fuzz/llhttp-%.o: $(LLHTTP_SRCDIR)/%.c $(LLHTTP_INC)/llhttp.h | $(OUT)/fuzz
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(LLHTTP_CFLAGS) -c $< -o $@

$(FUZZ_BIN): tests/fuzz/fuzz_http_parse.c user/serve/http_parse.c user/serve/http_parse.h \
	     user/serve/body_rewrite.c user/serve/body_rewrite.h $(FUZZ_LLHTTP) | $(OUT)/fuzz
	$(call msg,FUZZER,$@)
	$(Q)$(CLANG) -std=gnu11 -Wall -Wextra $(FUZZ_CFLAGS) -fsanitize=fuzzer -Iuser/serve -I$(LLHTTP_INC) \
	  -DLLHTTP_STRICT_MODE=1 tests/fuzz/fuzz_http_parse.c user/serve/http_parse.c \
	  user/serve/body_rewrite.c $(FUZZ_LLHTTP) -o $@

fuzz: $(FUZZ_BIN)
	$(Q)mkdir -p $(OUT)/fuzz/corpus
	$(Q)cd $(OUT)/fuzz && ./fuzz_http_parse -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -dict=$(abspath $(FUZZ_DICT)) -print_final_stats=1 corpus $(abspath $(FUZZ_CORPUS))

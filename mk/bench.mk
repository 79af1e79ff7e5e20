# The proxy benchmark in `make bench` (after the C benchmarks
# tests/bench/bench_*.c): tests/bench/proxy_bench.sh puts wrk on erg serve
# and on nginx in front of tests/bench/fast_backend, a fast OpenAI-shaped
# backend on the same HTTP layer as erg serve (user/serve/http_parse.o and
# llhttp, mk/llhttp.mk).

FAST_BACKEND  := $(OUT)/bench/fast_backend
BENCH_TOOLS   := $(FAST_BACKEND)
BENCH_SCRIPTS := tests/bench/proxy_bench.sh
EXTRA_BINS    += $(FAST_BACKEND)

# The live steering proof (tests/bench/steer_live.sh): workers whose J per
# request follow a scenario's catalog, on the demo workers' HTTP layer
# (mk/demo.mk, read after this file: its variables only in the recipe).
STEER_WORKER  := $(OUT)/bench/steer_worker
BENCH_TOOLS   += $(STEER_WORKER)
BENCH_SCRIPTS += tests/bench/steer_live.sh
EXTRA_BINS    += $(STEER_WORKER)

$(STEER_WORKER): tests/bench/steer_worker.c tests/demo/openai_http.h tests/demo/cli_num.h $(OUT)/demo/openai_http.o $(OUT)/erg | $(OUT)/bench
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/demo $(CFLAGS) $(LDFLAGS) $< $(OAI_HTTP_OBJ) $(HTTP_PARSE_OBJS) -lcjson -lpthread -lm -o $@

# $(OUT)/erg stands for the objects linked here: it is built from all of
# them, llhttp's included (mk/llhttp.mk is read after this file).
$(FAST_BACKEND): tests/bench/fast_backend.c user/serve/http_parse.h user/cli.h $(OUT)/erg | $(OUT)/bench
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(OUT)/user/serve/http_parse.o $(LLHTTP_OBJS) \
	  $(OUT)/user/cli.o $(OUT)/user/errbuf.o -lcjson -lpthread -o $@

# wrk and nginx (in DEB_PKGS): installed on demand as root, as check-deps
# does; otherwise the bench says what it skips and why.
.PHONY: bench-deps
bench-deps:
	@missing=""; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v nginx >/dev/null 2>&1 || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && [ "$(AUTO_DEPS)" = 1 ]; then \
	  echo "erg: installing the benchmark's Debian package(s):$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
	  { echo "erg: could not install$$missing (try: apt-get update && make deps)"; exit 2; }; \
	elif [ -n "$$missing" ]; then \
	  echo "erg: make bench needs$$missing; install with: sudo apt-get install$$missing"; \
	fi

# The overhead benchmark (tests/bench/overhead.sh): two ping-pong programs,
# alone and under erg top. Plain C, nothing of erg's linked in.
PINGPONG      := $(OUT)/bench/pingpong_pipe $(OUT)/bench/pingpong_tcp
BENCH_TOOLS   += $(PINGPONG)
BENCH_SCRIPTS += tests/bench/overhead.sh

$(PINGPONG): $(OUT)/bench/%: tests/bench/%.c | $(OUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

# erg's own CPU cost against the number of idle tracked processes
# (tests/bench/own_cost.sh): idle_procs forks N children that sleep.
IDLE_PROCS    := $(OUT)/bench/idle_procs
BENCH_TOOLS   += $(IDLE_PROCS)
BENCH_SCRIPTS += tests/bench/own_cost.sh
EXTRA_BINS    += $(IDLE_PROCS)

$(IDLE_PROCS): tests/bench/idle_procs.c | $(OUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

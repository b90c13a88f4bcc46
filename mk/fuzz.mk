# Robustness (issue 6): the libFuzzer targets. Included by the Makefile; the
# long test runs are in mk/check.mk.
#
#   make fuzz [FUZZ_SECONDS=60]   replay tests/fuzz/regress/, then fuzz each target
#   make fuzz-build               build the fuzz targets only (build/fuzz/)
#   make fuzz-regress             replay the regression inputs and the seed corpora
#
# Needs clang 14 with libFuzzer (Debian: clang-14, libclang-rt-14-dev).

FUZZ_CC       ?= $(shell command -v clang-14 2>/dev/null || echo clang)
FUZZ_SECONDS  ?= 60
FUZZ_BUILD    := build/fuzz
FUZZ_TARGETS  := request session cfg
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS    = $(WARN) -Wno-format-nonliteral -g -O1 $(FUZZ_SAN) -D_GNU_SOURCE -Iinclude \
                 -Itests/fuzz $(PKG_CFLAGS) -MMD -MP
# The harness replaces acud.c and server.c; time is virtual (harness.c).
FUZZ_DAEMON_SRC := $(filter-out daemon/acud.c daemon/server.c daemon/web.c $(GPIOD_SRC),$(wildcard daemon/*.c))
FUZZ_DAEMON_OBJ := $(FUZZ_DAEMON_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/daemon/gpio-backend.o
FUZZ_CFG_OBJ    := $(patsubst %,$(FUZZ_BUILD)/daemon/%.o,cfg util room gate sched roomjson log xmalloc web-pure)
FUZZ_WRAP       := -Wl,--wrap=acu_now -Wl,--wrap=acu_mono_now
FUZZ_BINS       := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OPTS       ?= -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

.PHONY: fuzz fuzz-build fuzz-regress

$(FUZZ_BUILD)/.deps:
	@command -v $(FUZZ_CC) >/dev/null && \
	 echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' | \
	   $(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y clang-14 libclang-rt-14-dev || \
	     (apt-get update && apt-get install -y clang-14 libclang-rt-14-dev)) >&2 || exit 1; \
	  else echo "libFuzzer missing; run: sudo apt-get install clang-14 libclang-rt-14-dev" >&2; \
	       exit 1; fi; }
	@mkdir -p $(@D) && touch $@

# The libgpiod major version's backend, as in the Makefile.
$(FUZZ_BUILD)/daemon/gpio-backend.o: $(GPIOD_SRC) | $(FUZZ_BUILD)/.deps $(BUILD)/.deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $(GPIOD_BACKEND)

$(FUZZ_BUILD)/%.o: %.c | $(FUZZ_BUILD)/.deps $(BUILD)/.deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_request: $(FUZZ_BUILD)/tests/fuzz/fuzz_request.o $(FUZZ_BUILD)/tests/fuzz/harness.o $(FUZZ_DAEMON_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $(FUZZ_WRAP) -o $@ $^ $(PKG_LIBS) -pthread -lm

$(FUZZ_BUILD)/fuzz_session: $(FUZZ_BUILD)/tests/fuzz/fuzz_session.o $(FUZZ_BUILD)/tests/fuzz/harness.o $(FUZZ_DAEMON_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $(FUZZ_WRAP) -o $@ $^ $(PKG_LIBS) -pthread -lm

$(FUZZ_BUILD)/fuzz_cfg: $(FUZZ_BUILD)/tests/fuzz/fuzz_cfg.o $(FUZZ_CFG_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -pthread -lm

fuzz-build: $(FUZZ_BINS)

# Every saved crash input must now pass, and so must the seeds (fast: one run each).
fuzz-regress: fuzz-build
	@rc=0; for t in $(FUZZ_TARGETS); do \
	  files=$$(find tests/fuzz/regress/$$t tests/fuzz/corpus/$$t -type f ! -name '.*' 2>/dev/null | sort); \
	  [ -n "$$files" ] || continue; \
	  echo "fuzz_$$t: replaying $$(echo "$$files" | wc -l) regression and seed inputs"; \
	  $(FUZZ_BUILD)/fuzz_$$t $$files > $(FUZZ_BUILD)/fuzz_$$t.replay.log 2>&1 || { \
	    rc=1; echo "fuzz_$$t: a saved input fails again; see $(FUZZ_BUILD)/fuzz_$$t.replay.log" >&2; \
	    tail -40 $(FUZZ_BUILD)/fuzz_$$t.replay.log >&2; }; \
	done; exit $$rc

# New corpus entries go to build/fuzz/corpus (not the checkout); a crash leaves its
# input in build/fuzz/artifacts/TARGET/ and fails the run: add that input to
# tests/fuzz/regress/TARGET/ once the bug is fixed.
fuzz: fuzz-regress
	@rc=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts/$$t; \
	  dict=""; [ -f tests/fuzz/$$t.dict ] && dict="-dict=tests/fuzz/$$t.dict"; \
	  echo "fuzz_$$t: fuzzing for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$t $(FUZZ_OPTS) $$dict -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t/ \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t > $(FUZZ_BUILD)/fuzz_$$t.log 2>&1; \
	  st=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_BUILD)/fuzz_$$t.log | tail -1); \
	  cov=$$(grep -o 'cov: [0-9]*' $(FUZZ_BUILD)/fuzz_$$t.log | tail -1); \
	  echo "fuzz_$$t: $${runs:-?} executions, $$cov, exit $$st"; \
	  if [ $$st -ne 0 ]; then rc=1; tail -60 $(FUZZ_BUILD)/fuzz_$$t.log >&2; \
	    ls $(FUZZ_BUILD)/artifacts/$$t/ >&2; fi; \
	done; exit $$rc

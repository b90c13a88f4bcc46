# The test runs beside `make check`'s unit and black-box tests. Included by the
# Makefile.
#
#   make vclock [ACU_VC_STEPS=N] [ACU_SEED=N]   the randomized safety run on a
#                                 virtual clock (part of make check)
#   make stress [ACU_RANDOM_STEPS=3000] [ACU_SEED=N]   the randomized safety run
#                                 against the real daemon, in real time; and the
#                                 history queries over a year of day files
#   make crashloop [ACU_CRASH_CYCLES=200]        kill -9 loop, full-disk loop and
#                                 every damaged state file, in full (make check
#                                 runs a shorter crash loop and every 7th byte)
#   make valgrind                 the black-box suite with acud under valgrind
#   make coverage                 line and branch coverage of daemon/ over
#                                 what make check runs (gcovr)

# make check SANITIZE=1: ASan keeps freed memory in a quarantine (256 MB by
# default) that the tests bounding acud's memory (slow watchers, floods) would
# read as growth; 16 MB still catches use-after-free of recent frees.
ifeq ($(SANITIZE),1)
export ASAN_OPTIONS ?= quarantine_size_mb=16
endif

# The virtual-clock driver: the fuzz harness (tests/fuzz/harness.c) in place
# of acud.c and server.c, built with $(CC) like everything else, linked with
# acud's own objects (the clock is swapped at link time, --wrap).
VC_BUILD   := $(BUILD)/vclock
# The gpiod backend is the one the Makefile picked for libgpiod's version.
VC_DAEMON  := $(filter-out daemon/acud.c daemon/server.c daemon/web.c $(GPIOD_SRC),$(wildcard daemon/*.c))
VC_OBJ     := $(VC_DAEMON:%.c=$(BUILD)/%.o) $(VC_BUILD)/tests/fuzz/harness.o \
              $(BUILD)/daemon/gpio-backend.o
VC_WRAP    := -Wl,--wrap=acu_now -Wl,--wrap=acu_mono_now

.PHONY: vclock stress crashloop valgrind coverage

$(VC_BUILD)/%.o: %.c $(BUILD)/.flags | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-format-nonliteral -Itests/fuzz -c -o $@ $<

$(VC_BUILD)/vc_random: $(VC_BUILD)/tests/vclock/vc_random.o $(VC_OBJ)
	$(CC) $(ALL_LDFLAGS) $(VC_WRAP) -o $@ $^ $(LDLIBS_ACU) -lm

# The fuzz targets' entry points with a plain main (tests/fuzz/replay.c), so
# make check replays every saved crash input and seed without clang.
VC_CFG_OBJ := $(patsubst %,$(BUILD)/daemon/%.o,cfg util room gate sched roomjson log xmalloc web-pure)
$(VC_BUILD)/replay_request: $(VC_BUILD)/tests/fuzz/fuzz_request.o $(VC_BUILD)/tests/fuzz/replay.o $(VC_OBJ)
	$(CC) $(CFLAGS) $(SANFLAGS) $(VC_WRAP) -o $@ $^ $(LDLIBS_ACU) -lm
$(VC_BUILD)/replay_session: $(VC_BUILD)/tests/fuzz/fuzz_session.o $(VC_BUILD)/tests/fuzz/replay.o $(VC_OBJ)
	$(CC) $(CFLAGS) $(SANFLAGS) $(VC_WRAP) -o $@ $^ $(LDLIBS_ACU) -lm
$(VC_BUILD)/replay_cfg: $(VC_BUILD)/tests/fuzz/fuzz_cfg.o $(VC_BUILD)/tests/fuzz/replay.o $(VC_CFG_OBJ)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS_ACU) -lm

# The daemon's own log (reloads refused and the like) goes to a file; a
# violation's message is at its end.
VCLOCK_BINS := $(patsubst %,$(VC_BUILD)/%,vc_random replay_request replay_session replay_cfg)
vclock: $(VCLOCK_BINS)
	@$(VC_BUILD)/vc_random 2> $(VC_BUILD)/vc_random.log || { \
	  tail -40 $(VC_BUILD)/vc_random.log >&2; exit 1; }
	@for t in request session cfg; do \
	  files=$$(find tests/fuzz/regress/$$t tests/fuzz/corpus/$$t -type f ! -name '.*' 2>/dev/null | sort); \
	  [ -n "$$files" ] || continue; \
	  printf 'fuzz_%s: ' $$t; $(VC_BUILD)/replay_$$t $$files 2> $(VC_BUILD)/replay_$$t.log || { \
	    tail -40 $(VC_BUILD)/replay_$$t.log >&2; exit 1; }; \
	done

ACU_RANDOM_STEPS ?= 3000
ACU_HISTORY_DAYS ?= 365
stress: acud acuctl
	ACU_RANDOM_STEPS=$(ACU_RANDOM_STEPS) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox/test_random_safety.py
	ACU_HISTORY_DAYS=$(ACU_HISTORY_DAYS) $(PYTHON) -m pytest -q -s -p no:cacheprovider \
	  tests/blackbox/test_history.py -k "query or stall or order or gone or shutdown"

ACU_CRASH_CYCLES ?= 200
crashloop: acud acuctl
	ACU_CRASH_CYCLES=$(ACU_CRASH_CYCLES) ACU_CRASH_FULL_CYCLES=$(ACU_CRASH_CYCLES) \
	  ACU_DAMAGE_STRIDE=1 $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox/test_crash_loop.py

valgrind: acud acuctl
	tests/valgrind.sh

# Everything make check runs, built with gcov counters in build/cov, then
# gcovr's summary of daemon/ (the report in build/cov/coverage.txt). The tests
# run to the end even when one fails, so the figures are of the whole run; the
# target fails after the report if any did. acud processes killed with SIGKILL
# (the crash loop) write no counters, so those paths count from the restarts.
coverage:
	$(call apt_need,gcovr,--no-install-recommends)
	@find build/cov -name '*.gcda' -delete 2>/dev/null; true
	@$(MAKE) --no-print-directory COVERAGE=1 WERROR=1 -j$(NPROC) check-bins
	@rc=0; $(MAKE) --no-print-directory COVERAGE=1 WERROR=1 unit vclock blackbox || rc=$$?; \
	 gcovr --root . --filter 'daemon/' --object-directory build/cov --branches \
	   --exclude-unreachable-branches --exclude-throw-branches -o build/cov/coverage.txt \
	   --print-summary $(GCOVR_FLAGS) || rc=1; \
	 echo "coverage: report in build/cov/coverage.txt"; \
	 $(MAKE) --no-print-directory acud acuctl > /dev/null; exit $$rc

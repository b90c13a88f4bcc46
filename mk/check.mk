# The test runs beside `make check`'s unit and black-box tests. Included by the
# Makefile.
#
#   make vclock [ACU_VC_STEPS=N] [ACU_SEED=N]   the randomized safety run on a
#                                 virtual clock (part of make check)
#   make stress [ACU_RANDOM_STEPS=3000] [ACU_SEED=N]   the randomized safety run
#                                 against the real daemon, in real time
#   make crashloop [ACU_CRASH_CYCLES=200]        kill -9 loop, full-disk loop and
#                                 every damaged state file, in full (make check
#                                 runs a shorter crash loop and every 7th byte)
#   make valgrind                 the black-box suite with acud under valgrind

# make check SANITIZE=1: ASan keeps freed memory in a quarantine (256 MB by
# default) that the tests bounding acud's memory (slow watchers, floods) would
# read as growth; 16 MB still catches use-after-free of recent frees.
ifeq ($(SANITIZE),1)
export ASAN_OPTIONS ?= quarantine_size_mb=16
endif

# The virtual-clock driver: the fuzz harness (tests/fuzz/harness.c) in place
# of acud.c and server.c, built with $(CC) like everything else.
VC_BUILD   := $(BUILD)/vclock
# The gpiod backend is the one the Makefile picked for libgpiod's version.
VC_DAEMON  := $(filter-out daemon/acud.c daemon/server.c $(GPIOD_SRC),$(wildcard daemon/*.c))
VC_OBJ     := $(VC_DAEMON:%.c=$(VC_BUILD)/%.o) $(VC_BUILD)/tests/fuzz/harness.o \
              $(BUILD)/daemon/gpio-backend.o
VC_WRAP    := -Wl,--wrap=acu_now -Wl,--wrap=acu_mono_now

.PHONY: vclock stress crashloop valgrind

$(VC_BUILD)/%.o: %.c $(BUILD)/.flags | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-format-nonliteral -Itests/fuzz -c -o $@ $<

$(VC_BUILD)/vc_random: $(VC_BUILD)/tests/vclock/vc_random.o $(VC_OBJ)
	$(CC) $(ALL_LDFLAGS) $(VC_WRAP) -o $@ $^ $(LDLIBS_ACU) -lm

# The daemon's own log (reloads refused and the like) goes to a file; a
# violation's message is at its end.
vclock: $(VC_BUILD)/vc_random
	@$(VC_BUILD)/vc_random 2> $(VC_BUILD)/vc_random.log || { \
	  tail -40 $(VC_BUILD)/vc_random.log >&2; exit 1; }

ACU_RANDOM_STEPS ?= 3000
stress: acud acuctl
	ACU_RANDOM_STEPS=$(ACU_RANDOM_STEPS) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox/test_random_safety.py

ACU_CRASH_CYCLES ?= 200
crashloop: acud acuctl
	ACU_CRASH_CYCLES=$(ACU_CRASH_CYCLES) ACU_CRASH_FULL_CYCLES=$(ACU_CRASH_CYCLES) \
	  ACU_DAMAGE_STRIDE=1 $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox/test_crash_loop.py

valgrind: acud acuctl
	tests/valgrind.sh

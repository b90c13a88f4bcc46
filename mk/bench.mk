# make bench (issues 5, 19): acud measured against redis and cyclictest, P1-P6,
# every figure beside a reference taken in the same run; P2 and P3 under
# stress-ng on every core, P4 and P5 against floor programs built here
# (bench/hopref.c, bench/floor.c). Not part of `make check`. Prints the table
# and writes bench/results.json; about 4 minutes.
# BENCH_ARGS passes options to bench/run.py (e.g. BENCH_ARGS='--only P1,P5').
BENCH_BUILD := bench/build
BENCH_OPT   ?= -O3
BENCH_ARGS  ?=
BENCH_ACUD  := $(BENCH_BUILD)/acud
BENCH_GEN   := $(BENCH_BUILD)/acubench
BENCH_HOP   := $(BENCH_BUILD)/hopref
BENCH_FLOOR := $(BENCH_BUILD)/floor

.PHONY: bench bench-build

bench: bench-build
	$(PYTHON) bench/run.py --acud $(BENCH_ACUD) --gen $(BENCH_GEN) --hopref $(BENCH_HOP) \
	  --floor $(BENCH_FLOOR) --out bench/results.json $(BENCH_ARGS)

bench-build: $(BENCH_ACUD) $(BENCH_GEN) $(BENCH_HOP) $(BENCH_FLOOR)

# An optimised acud of its own, from the same sources, so that the binaries at
# the top (and the plain/SANITIZE=1 variants) are left alone.
$(BENCH_ACUD): $(wildcard daemon/*.c include/*.h) $(WEB_PAGE) mk/bench.mk | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(WARN) -g $(BENCH_OPT) -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) \
	  -o $@ $(filter-out $(GPIOD_SRC),$(filter %.c,$^)) $(GPIOD_BACKEND) $(LDLIBS_ACU)

$(BENCH_GEN): bench/acubench.c mk/bench.mk
	@mkdir -p $(@D)
	$(CC) $(WARN) -g -O2 -D_GNU_SOURCE -o $@ bench/acubench.c

$(BENCH_HOP): bench/hopref.c mk/bench.mk
	@mkdir -p $(@D)
	$(CC) $(WARN) -g -O2 -D_GNU_SOURCE $(shell pkg-config --cflags libevent) -o $@ bench/hopref.c \
	  $(shell pkg-config --libs libevent)

# Every shared library acud's ELF header names, and nothing else.
$(BENCH_FLOOR): bench/floor.c $(BENCH_ACUD) mk/bench.mk
	@mkdir -p $(@D)
	$(CC) $(WARN) -g -O2 -o $@ bench/floor.c -Wl,--no-as-needed \
	  $$(readelf -d $(BENCH_ACUD) | sed -n 's/.*(NEEDED).*\[\(.*\)\]/-l:\1/p' | grep -v 'libc\.so')

# make bench (issue 5): acud measured against redis and cyclictest, P1-P6, every
# figure beside a reference taken in the same run. Not part of `make check`.
# Prints the table and writes bench/results.json; about 2.5 minutes.
# BENCH_ARGS passes options to bench/run.py (e.g. BENCH_ARGS='--only P1,P5').
BENCH_BUILD := bench/build
BENCH_OPT   ?= -O3
BENCH_ARGS  ?=
BENCH_ACUD  := $(BENCH_BUILD)/acud
BENCH_GEN   := $(BENCH_BUILD)/acubench

.PHONY: bench bench-build

bench: bench-build
	$(PYTHON) bench/run.py --acud $(BENCH_ACUD) --gen $(BENCH_GEN) --out bench/results.json $(BENCH_ARGS)

bench-build: $(BENCH_ACUD) $(BENCH_GEN)

# An optimised acud of its own, from the same sources, so that the binaries at
# the top (and the plain/SANITIZE=1 variants) are left alone.
$(BENCH_ACUD): $(wildcard daemon/*.c include/*.h) mk/bench.mk | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(WARN) -g $(BENCH_OPT) -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) \
	  -o $@ $(filter-out $(GPIOD_SRC),$(filter %.c,$^)) $(GPIOD_BACKEND) $(LDLIBS_ACU)

$(BENCH_GEN): bench/acubench.c mk/bench.mk
	@mkdir -p $(@D)
	$(CC) $(WARN) -g -O2 -D_GNU_SOURCE -o $@ bench/acubench.c

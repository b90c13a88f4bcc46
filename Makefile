# acud: build, test, demo and install. GNU make on Debian 12.
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
SBINDIR   ?= $(PREFIX)/sbin
MANDIR    ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR   ?= $(PREFIX)/lib/systemd/system

CC        ?= cc
PYTHON    ?= /usr/bin/python3
OPT       ?= -O2
# CPPFLAGS, CFLAGS and LDFLAGS from the environment (dpkg-buildflags) are honoured.
CFLAGS    ?= -g $(OPT)
CPPFLAGS  ?=
LDFLAGS   ?=
# -Werror for `make check` and CI (WERROR=1), not for a distribution's build.
ifneq ($(filter check,$(MAKECMDGOALS)),)
WERROR    ?= 1
endif
# Exported: the makes that tests run (test_install's `make install`) then build
# with the same flags and do not rebuild the binaries under test.
export WERROR
WARN      := -std=gnu11 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -Wshadow -Wformat=2 \
             -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
# 32-bit builds (armhf): 64-bit file offsets and inode numbers always (readdir()
# fails with EOVERFLOW on ext4 without them); 64-bit time_t where the system's
# libraries are built with it (Debian 13 armhf: dpkg-buildflags says -D_TIME_BITS=64;
# on Debian 12 armhf libevent and libgpiod take a 32-bit time_t, so not there).
ifndef TIME64
TIME64    := $(if $(findstring -D_TIME_BITS=64,$(shell dpkg-buildflags --get CPPFLAGS 2>/dev/null)),1,0)
endif
LFS_FLAGS := -D_FILE_OFFSET_BITS=64 $(if $(filter 1,$(TIME64)),-D_TIME_BITS=64)
PKGS      := libevent jansson inih libgpiod libmosquitto
# Waits for another apt or dpkg to finish instead of failing on its lock.
APT_GET   := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
# Debian packages the build needs, by the pkg-config module they provide.
DEB_PKGS  := libevent-dev libjansson-dev libinih-dev libgpiod-dev libmosquitto-dev pkg-config

ifeq ($(SANITIZE),1)
BUILD     := build/san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else ifeq ($(COVERAGE),1)
# make coverage: gcov counters, unoptimised so that lines and branches are the source's.
BUILD     := build/cov
SANFLAGS  := --coverage
OPT       := -O0
else
BUILD     := build/rel
SANFLAGS  :=
endif

# Evaluated lazily, after the deps step has had its chance to install pkg-config modules.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
# --as-needed: only libraries acud calls into are mapped (every one costs RSS).
LDLIBS_ACU = -Wl,--as-needed $(PKG_LIBS) -pthread
# acuctl speaks JSON over a socket: jansson only.
LDLIBS_CTL = -Wl,--as-needed $(shell pkg-config --libs jansson)
ALL_CFLAGS = $(WARN) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE $(LFS_FLAGS) -Iinclude \
             $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(CFLAGS) $(SANFLAGS) $(LDFLAGS)

# The gpiod backend is picked when it is compiled, by libgpiod's major version
# (known only once the deps step has run): daemon/gpio-gpiod1.c for libgpiod 1.x
# (Debian 12), daemon/gpio-gpiod2.c for 2.x (Debian 13, bookworm-backports).
GPIOD_SRC  := $(wildcard daemon/gpio-gpiod*.c)
# Expanded where used, in recipes, once libgpiod-dev is there (bench, fuzz).
GPIOD_BACKEND = daemon/gpio-gpiod$(shell pkg-config --modversion libgpiod | cut -d. -f1).c
DAEMON_SRC := $(filter-out daemon/acud.c $(GPIOD_SRC),$(wildcard daemon/*.c))
# The web board's page, built into acud (web.c) as a C array.
WEB_PAGE   := $(BUILD)/web/board.c
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/daemon/gpio-backend.o $(WEB_PAGE:.c=.o)
UTIL_OBJ   := $(BUILD)/daemon/util.o
CLI_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c))
# The pure modules: no I/O, no event loop; what the C unit tests link.
PURE_OBJ   := $(patsubst %,$(BUILD)/daemon/%.o,util room gate sched train cfg restart history-pure debounce \
              web-pure mqtt-pure)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check check-bins unit blackbox demo install uninstall clean lint

all: acud acuctl

# A recipe line that installs the Debian packages $(1) that are missing, with
# apt-get options $(2), when run as root; otherwise it names the command.
define apt_need
@missing=""; for p in $(1); do \
  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" = 0 ]; then \
    echo "installing:$$missing"; \
    ($(APT_GET) install -y $(2) $$missing || ($(APT_GET) update && $(APT_GET) install -y $(2) $$missing)) >&2 || exit 1; \
  else \
    echo "missing Debian packages; run: sudo apt-get install$$missing" >&2; exit 1; \
  fi; \
fi
endef

# Installs missing build dependencies when run as root; otherwise names the command.
deps: $(BUILD)/.deps
$(BUILD)/.deps:
	$(call apt_need,$(DEB_PKGS))
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: %.c $(BUILD)/.flags | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# od and sed only: a clean build root has no xxd or python.
$(WEB_PAGE): web/board.html
	@mkdir -p $(@D)
	{ echo '/* Made from web/board.html by the Makefile. */'; \
	  echo 'const unsigned char web_board_html[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const unsigned long web_board_html_len = sizeof web_board_html;'; } > $@.tmp
	mv $@.tmp $@

$(WEB_PAGE:.c=.o): $(WEB_PAGE) $(BUILD)/.flags
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Retired backend names that a build tree's dependency file may still list.
daemon/gpio-gpiod.c daemon/gpio-gpiod-none.c: ;

$(BUILD)/daemon/gpio-backend.o: $(GPIOD_SRC) $(BUILD)/.flags | $(BUILD)/.deps
	@mkdir -p $(@D)
	@v=$$(pkg-config --modversion libgpiod) || exit 1; case "$$v" in \
	  1.*) src=daemon/gpio-gpiod1.c ;; \
	  2.*) src=daemon/gpio-gpiod2.c ;; \
	  *) echo "*** libgpiod $$v: acud has a backend for libgpiod 1.x and 2.x only" >&2; exit 1 ;; \
	 esac; \
	 $(if $(findstring s,$(firstword -$(MAKEFLAGS))),,echo "$(CC) $(ALL_CFLAGS) -c -o $@ $$src";) \
	 $(CC) $(ALL_CFLAGS) -c -o $@ $$src

acud: $(BUILD)/daemon/acud.o $(DAEMON_OBJ) $(BUILD)/.variant
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/daemon/acud.o $(DAEMON_OBJ) $(LDLIBS_ACU)

# acuctl links jansson only: the client needs no event loop, config or GPIO.
acuctl: $(CLI_OBJ) $(UTIL_OBJ) $(BUILD)/.variant
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(UTIL_OBJ) $(LDLIBS_CTL)

# Rebuilds everything when the compiler or its flags change (a WERROR=1 or
# dpkg-buildflags build after a plain one).
$(BUILD)/.flags: FORCE | $(BUILD)/.deps
	@mkdir -p $(@D); f='$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)'; \
	 [ "$$(cat $@ 2>/dev/null)" = "$$f" ] || echo "$$f" > $@

# Relinks the binaries at the top when switching between plain and SANITIZE=1 builds.
$(BUILD)/.variant: FORCE
	@mkdir -p $(@D); for v in build/*/.variant; do [ "$$v" = "$@" ] || rm -f $$v; done; \
	 [ -f $@ ] || touch $@
FORCE:

$(BUILD)/tests/test_%: tests/unit/test_%.c $(PURE_OBJ) tests/unit/unit.h tests/unit/fixture.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(PURE_OBJ) $(LDLIBS_ACU)

unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do $$t || rc=1; done; exit $$rc

# The black-box suite in TEST_JOBS parallel workers (pytest-xdist): most of its
# time is spent waiting for timers, not computing. Files that must not share
# (pulse timing, throwaway users, one big history) each keep to one worker
# (pytest.mark.xdist_group). TEST_JOBS=1 runs it in one process.
# A sanitizer build runs every acud several times slower: one worker, so the
# pulse-timing tests do not measure the other workers' load.
ifeq ($(SANITIZE),1)
TEST_JOBS ?= 1
endif
TEST_JOBS ?= 4
XDIST      = $(if $(filter-out 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadgroup)
# Installed once, before the workers start: workers that each ran apt-get would
# wait on (or fail at) one dpkg lock.
TEST_DEB_PKGS := python3-pytest python3-pytest-xdist systemd mandoc man-db faketime tmux
blackbox: acud acuctl
	$(call apt_need,$(TEST_DEB_PKGS),--no-install-recommends)
	$(PYTHON) -m pytest -q -p no:cacheprovider $(XDIST) tests/blackbox

# Everything make check runs is built first, on every core; then the unit
# tests beside the virtual-clock runs (each one's output whole), and the
# black-box suite once both have passed.
NPROC      := $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
CHECK_BINS  = acud acuctl $(UNIT_BIN) $(VCLOCK_BINS)
check:
	@$(MAKE) --no-print-directory -j$(NPROC) check-bins
	@$(MAKE) --no-print-directory -j2 -Otarget unit vclock
	@$(MAKE) --no-print-directory blackbox

demo: all
	@mkdir -p demo
	@echo "acud demo: socket demo/run/acud.sock, state demo/state"
	@echo "web board:            http://127.0.0.1:8080/"
	@echo "in another terminal:  ./acuctl -s demo/run/acud.sock status"
	@echo "                      ./acuctl -s demo/run/acud.sock start 1 20m --needles 6 --patient A1043"
	./acud -f -c etc/demo.conf

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -Iinclude -D_GNU_SOURCE --suppress=missingIncludeSystem \
	  --include=$$(pkg-config --variable=includedir jansson)/jansson.h daemon cli
	@# The gpiod backend of the libgpiod installed: the other one's header is not.
	clang-tidy --quiet $(filter-out $(GPIOD_SRC),$(wildcard daemon/*.c)) $(GPIOD_BACKEND) cli/*.c -- $(WARN) -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 acud $(DESTDIR)$(SBINDIR)/acud
	install -m 0755 acuctl $(DESTDIR)$(BINDIR)/acuctl
	$(MAKE) --no-print-directory install-extra

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/acud $(DESTDIR)$(BINDIR)/acuctl
	$(MAKE) --no-print-directory uninstall-extra

clean:
	rm -rf build acud acuctl demo

# Optional parts (vmtest, bench, fuzz, ...) each live in a file of their own.
include $(wildcard mk/*.mk)

# After the fragments: a rule's prerequisites are expanded as it is read, and
# check.mk defines VCLOCK_BINS.
check-bins: $(CHECK_BINS)

-include $(shell find build -path build/deb -prune -o -type f -name '*.d' -print 2>/dev/null)

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
PKGS      := libevent jansson inih libgpiod
# Waits for another apt or dpkg to finish instead of failing on its lock.
APT_GET   := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
# Debian packages the build needs, by the pkg-config module they provide.
DEB_PKGS  := libevent-dev libjansson-dev libinih-dev libgpiod-dev pkg-config

ifeq ($(SANITIZE),1)
BUILD     := build/san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
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

# The gpiod backend is picked when it is compiled, by libgpiod's version (known
# only once the deps step has run): daemon/gpio-gpiod.c for libgpiod 1.x; for
# 2.x, until its backend exists, daemon/gpio-gpiod-none.c (backend = sim only).
GPIOD_SRC  := $(wildcard daemon/gpio-gpiod*.c)
DAEMON_SRC := $(filter-out daemon/acud.c $(GPIOD_SRC),$(wildcard daemon/*.c))
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/daemon/gpio-backend.o
UTIL_OBJ   := $(BUILD)/daemon/util.o
# The pure modules: no I/O, no event loop; what the C unit tests link.
PURE_OBJ   := $(patsubst %,$(BUILD)/daemon/%.o,util room gate sched cfg restart history-pure)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check unit blackbox demo install uninstall clean lint

all: acud acuctl

# Installs missing build dependencies when run as root; otherwise names the command.
deps: $(BUILD)/.deps
$(BUILD)/.deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    ($(APT_GET) install -y $$missing || ($(APT_GET) update && $(APT_GET) install -y $$missing)) >&2 || exit 1; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: %.c $(BUILD)/.flags | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/daemon/gpio-backend.o: $(GPIOD_SRC) $(BUILD)/.flags | $(BUILD)/.deps
	@mkdir -p $(@D)
	@v=$$(pkg-config --modversion libgpiod); case "$$v" in \
	  1.*) src=daemon/gpio-gpiod.c; def= ;; \
	  *) src=daemon/gpio-gpiod-none.c; def="-DACU_GPIOD_VERSION=\"$$v\""; \
	     echo "*** libgpiod $$v: acud has no backend for it yet; building without the gpiod" \
	          "backend ($$src: backend = sim only)" >&2 ;; \
	 esac; \
	 $(if $(findstring s,$(firstword -$(MAKEFLAGS))),,echo "$(CC) $(ALL_CFLAGS) $$def -c -o $@ $$src";) \
	 $(CC) $(ALL_CFLAGS) $$def -c -o $@ $$src

acud: $(BUILD)/daemon/acud.o $(DAEMON_OBJ) $(BUILD)/.variant
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/daemon/acud.o $(DAEMON_OBJ) $(LDLIBS_ACU)

acuctl: $(BUILD)/cli/acuctl.o $(UTIL_OBJ) $(BUILD)/.variant
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/cli/acuctl.o $(UTIL_OBJ) $(LDLIBS_CTL)

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

$(BUILD)/tests/test_%: tests/unit/test_%.c $(PURE_OBJ) tests/unit/unit.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(PURE_OBJ) $(LDLIBS_ACU)

unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do $$t || rc=1; done; exit $$rc

blackbox: acud acuctl
	@$(PYTHON) -c 'import pytest' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then $(APT_GET) install -y python3-pytest >&2 || \
	    ($(APT_GET) update && $(APT_GET) install -y python3-pytest) >&2; \
	  else echo "missing python3-pytest; run: sudo apt-get install python3-pytest" >&2; exit 1; fi; }
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox

check: all unit vclock blackbox

demo: all
	@mkdir -p demo
	@echo "acud demo: socket demo/run/acud.sock, state demo/state"
	@echo "in another terminal:  ./acuctl -s demo/run/acud.sock status"
	@echo "                      ./acuctl -s demo/run/acud.sock start 1 20m --needles 6 --patient A1043"
	./acud -f -c etc/demo.conf

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -Iinclude -D_GNU_SOURCE --suppress=missingIncludeSystem daemon cli
	clang-tidy --quiet daemon/*.c cli/*.c -- $(WARN) -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS)

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

-include $(shell find build -path build/deb -prune -o -type f -name '*.d' -print 2>/dev/null)

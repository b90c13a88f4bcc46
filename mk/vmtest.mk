# make vmtest: acud's gpiod backend against the kernel's gpio-sim chip, in a
# qemu VM (TCG) booting Debian's own kernel, twice: the bookworm kernel (6.1)
# with acud as built here (libgpiod 1.6), then the trixie kernel (6.12) with
# acud built against libgpiod 2 in a trixie root (tests/arch/run.sh ARCH=amd64).
# Both run even when the first fails. See tests/vm/README.md.
# Downloads, the built modules and the root are cached outside the checkout
# (ACUD_VMTEST_CACHE, ACUD_ARCH_CACHE; default /var/cache/acud-* as root).
#   make vmtest                        both kernels
#   make vmtest VMTEST_KERNELS=bookworm   one of them (or trixie)
VMTEST_KERNELS ?= bookworm trixie
VMTEST_ROOT     = $(or $(ACUD_ARCH_CACHE),/var/cache/acud-arch)/trixie-amd64
.PHONY: vmtest
vmtest: all
	@mkdir -p build/vmtest; rc=0; for k in $(VMTEST_KERNELS); do \
	  case $$k in \
	  bookworm) echo "vmtest: bookworm kernel, acud on libgpiod $$(pkg-config --modversion libgpiod)"; \
	    ACUD_VMTEST_LOG=build/vmtest/console-bookworm.log bash tests/vm/run.sh || rc=1 ;; \
	  trixie) echo "vmtest: trixie kernel, acud on libgpiod 2 (built in $(VMTEST_ROOT))"; \
	    if ARCH=amd64 ACUD_ARCH_TESTS=build bash tests/arch/run.sh >build/vmtest/trixie-build.log 2>&1; then \
	      ACUD_VMTEST_ROOT=$(VMTEST_ROOT) ACUD_VMTEST_BIN=/src/acud \
	      ACUD_VMTEST_LOG=build/vmtest/console-trixie.log bash tests/vm/run.sh || rc=1; \
	    else tail -n 20 build/vmtest/trixie-build.log; \
	      echo "not ok - acud did not build against libgpiod 2 in the trixie root (build/vmtest/trixie-build.log)"; \
	      echo "0 passed, 1 failed"; rc=1; fi ;; \
	  *) echo "VMTEST_KERNELS: bookworm or trixie, not $$k"; rc=1 ;; \
	  esac; \
	done; exit $$rc

# make vmtest: acud's gpiod backend against the kernel's gpio-sim chip, in a
# qemu VM (TCG) booting Debian's own kernel. See tests/vm/README.md.
# Downloads and the built module are cached outside the checkout
# (ACUD_VMTEST_CACHE, default /var/cache/acud-vmtest as root).
.PHONY: vmtest
vmtest: all
	bash tests/vm/run.sh

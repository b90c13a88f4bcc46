# make check-arch ARCH=arm64|armhf (issue 15): build acud and run the unit tests
# and the black-box suite in a Debian root file system of that architecture under
# qemu-user (arm64: trixie, armhf: bookworm), cached in /var/cache/acud-arch.
# Not part of `make check`. See tests/arch/run.sh.
#   make check-arch ARCH=armhf                       the whole suite
#   make check-arch ARCH=arm64 ACUD_ARCH_TESTS=quick the named subset
#   make check-arch-all                              both architectures, in turn
#   make check-arch ARCH=amd64                       trixie on this host, no emulation:
#                                                    libgpiod 2 (make vmtest's root)
#   make check-arch ARCH=amd64 ACUD_ARCH_SUITE=bookworm ACUD_ARCH_BACKPORTS=1
#                                                    bookworm with libgpiod 2.1
.PHONY: check-arch check-arch-all
check-arch:
	ARCH=$(ARCH) bash tests/arch/run.sh

check-arch-all:
	ARCH=arm64 bash tests/arch/run.sh
	ARCH=armhf bash tests/arch/run.sh

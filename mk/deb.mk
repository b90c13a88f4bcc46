# The Debian package (issue 15). Not part of `make check`.
#   make deb            dpkg-buildpackage -us -uc -b on a copy of the checkout in
#                       build/deb/, then lintian (fails on an error)
#   make deb-test       make deb, then `apt install ./acud_*.deb` in a clean
#                       bookworm root (cached in /var/cache/acud-deb) and the checks
#                       of tests/deb/test.sh; DEB_SUITE=trixie builds the package
#                       in a trixie root and tests it there
DEB_SUITE ?= bookworm
.PHONY: deb deb-test
deb:
	bash tests/deb/build.sh

deb-test:
	bash tests/deb/test.sh $(DEB_SUITE)

# make check-web (issue 16): the web board in headless Chromium (tests/web/
# test_browser.py: screenshots in build/web-board-*.png) and the heavy HTTP
# abuse tests (1,000 event-stream clients, silent readers, connection floods,
# requests that never finish, the 15 s keep-alive). The quick HTTP tests are
# in make check (tests/blackbox/test_web.py). Included by the Makefile.
WEB_DEB_PKGS := chromium chromium-driver python3-selenium python3-pytest

.PHONY: check-web

check-web: acud acuctl
	$(call apt_need,$(WEB_DEB_PKGS),--no-install-recommends)
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/web

# make check-web (issue 16): the web board in headless Chromium (tests/web/
# test_browser.py: screenshots in build/web-board-*.png) and the heavy HTTP
# abuse tests (1,000 event-stream clients, silent readers, connection floods,
# requests that never finish, the 15 s keep-alive). The quick HTTP tests are
# in make check (tests/blackbox/test_web.py). Included by the Makefile.
WEB_DEB_PKGS := chromium chromium-driver python3-selenium python3-pytest

.PHONY: check-web

check-web: acud acuctl
	@missing=""; for p in $(WEB_DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    ($(APT_GET) install -y --no-install-recommends $$missing || ($(APT_GET) update && \
	      $(APT_GET) install -y --no-install-recommends $$missing)) >&2 || exit 1; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/web

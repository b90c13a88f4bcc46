# make check-mqtt (issue 18): acud boards against a real mosquitto, started by
# the tests on free loopback ports with a generated CA, per-board certificates,
# a password file and an ACL (tests/mqtt). Not part of `make check` (a broker
# per test, and the stalled-broker timing runs take their time); the pure parts
# are in tests/unit/test_mqtt.c, which make check runs. Included by the Makefile.
MQTT_DEB := mosquitto mosquitto-clients openssl python3-pytest

.PHONY: check-mqtt

check-mqtt: acud acuctl
	@missing=""; for p in $(MQTT_DEB); do \
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
	$(PYTHON) -m pytest -q -p no:cacheprovider -s tests/mqtt

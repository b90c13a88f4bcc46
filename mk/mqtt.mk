# make check-mqtt (issue 18): acud boards against a real mosquitto, started by
# the tests on free loopback ports with a generated CA, per-board certificates,
# a password file and an ACL (tests/mqtt). Not part of `make check` (a broker
# per test, and the stalled-broker timing runs take their time); the pure parts
# are in tests/unit/test_mqtt.c, which make check runs. Included by the Makefile.
# Chromium: the web board's view of the other boards (check-web's packages).
MQTT_DEB := mosquitto mosquitto-clients openssl python3-pytest chromium chromium-driver \
            python3-selenium

.PHONY: check-mqtt

check-mqtt: acud acuctl
	$(call apt_need,$(MQTT_DEB),--no-install-recommends)
	$(PYTHON) -m pytest -q -p no:cacheprovider -s tests/mqtt

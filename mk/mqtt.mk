# make check-mqtt (issue 18): acud boards against a real mosquitto, started by
# the tests on free loopback ports with a generated CA, per-board certificates,
# a password file and an ACL (tests/mqtt). Not part of `make check` (a broker
# per test, and the stalled-broker timing runs take their time); the pure parts
# are in tests/unit/test_mqtt.c, which make check runs. Included by the Makefile.
MQTT_DEB := mosquitto mosquitto-clients openssl python3-pytest

.PHONY: check-mqtt

check-mqtt: acud acuctl
	$(call apt_need,$(MQTT_DEB))
	$(PYTHON) -m pytest -q -p no:cacheprovider -s tests/mqtt

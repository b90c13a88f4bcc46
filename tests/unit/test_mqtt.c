/* Unit tests of the pure MQTT parts (daemon/mqtt-pure.c) and of [mqtt] in
 * the config (daemon/cfg.c): topics built and parsed, what a room publishes,
 * every way a remote message can be wrong, the bounded table of other boards,
 * Home Assistant's discovery payloads, and the rate limit of log lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "acud.h"
#include "cfg.h"
#include "mqtt.h"
#include "unit.h"

static const char good_room[] =
	"{\"id\":\"3\",\"name\":\"Cedar\",\"state\":\"running\",\"patient\":\"A1\","
	"\"practitioner\":\"lee\",\"started_at\":\"2026-11-21T10:00:00Z\","
	"\"ends_at\":\"2026-11-21T10:20:00Z\",\"duration_s\":1200,\"remaining_s\":600,"
	"\"overdue_s\":0,\"paused_s\":0,\"needles\":6,\"profile\":null,\"flags\":[],"
	"\"stim\":{\"armed\":true,\"on\":false,\"channels\":[]},\"checkin_due_at\":null,"
	"\"checkins\":0,\"alarms\":[{\"kind\":\"checkin\",\"priority\":\"low\","
	"\"since\":\"2026-11-21T10:05:00Z\",\"silenced_until\":null}],\"attention\":null,"
	"\"alarm_level\":\"low\",\"secret\":\"not copied\"}";

static int64_t wall_of(const char *s)
{
	int64_t ns = 0;

	acu_parse_rfc3339(s, &ns);
	return ns;
}

static void test_topics(void)
{
	char buf[MQTT_TOPIC_MAX], board[ACU_ID_MAX + 1], id[ACU_ID_MAX + 1];
	static const char *const bad[] = {
		"acud", "acud/", "acudx/b/status", "acud//status", "acud/b/status/",
		"acud/b/status/x", "acud/b/room", "acud/b/room/", "acud/b/room/1/x",
		"acud/b/alarm", "acud/+/status", "acud/b/room/#", "acud/b c/status",
		"acud/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/status", "other/b/status",
		"acud/b/room/r\xc3\xa9", "acud/b/room//",
	};

	CHECK_EQ(mqtt_topic(buf, sizeof buf, "acud", "floor1", "room", "3"), 0);
	CHECK_STR(buf, "acud/floor1/room/3");
	CHECK_EQ(mqtt_topic(buf, sizeof buf, "clinic/acud", "floor1", "status", NULL), 0);
	CHECK_STR(buf, "clinic/acud/floor1/status");
	CHECK_EQ(mqtt_topic(buf, 10, "acud", "floor1", "status", NULL), -1);

	CHECK_EQ(mqtt_topic_parse("acud/floor2/status", "acud", board, id), MQTT_T_STATUS);
	CHECK_STR(board, "floor2");
	CHECK_EQ(mqtt_topic_parse("acud/floor2/room/b.1", "acud", board, id), MQTT_T_ROOM);
	CHECK_STR(board, "floor2");
	CHECK_STR(id, "b.1");
	CHECK_EQ(mqtt_topic_parse("c/acud/f/room/1", "c/acud", board, id), MQTT_T_ROOM);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int k = mqtt_topic_parse(bad[i], "acud", board, id);

		if (k != MQTT_T_BAD)
			fprintf(stderr, "accepted topic %s\n", bad[i]);
		CHECK_EQ(k, MQTT_T_BAD);
	}
}

static void test_room_payload(void)
{
	json_t *room = json_pack("{s:s,s:s,s:[s]}", "id", "1", "patient", "A1043", "flags",
				 "pacemaker"), *p;

	p = mqtt_room_payload(room, 0);
	CHECK(json_is_null(json_object_get(p, "patient")));
	CHECK_EQ(json_array_size(json_object_get(p, "flags")), 0);
	CHECK_STR(json_string_value(json_object_get(room, "patient")), "A1043");
	CHECK_EQ(json_array_size(json_object_get(room, "flags")), 1);
	json_decref(p);
	p = mqtt_room_payload(room, 1);
	CHECK_STR(json_string_value(json_object_get(p, "patient")), "A1043");
	CHECK_STR(json_string_value(json_array_get(json_object_get(p, "flags"), 0)), "pacemaker");
	json_decref(p);
	json_decref(room);
}

/* good_room with one member replaced (value NULL: removed). */
static char *mutate(const char *key, json_t *value)
{
	json_t *o = json_loads(good_room, 0, NULL);
	char *s;

	if (value)
		json_object_set_new(o, key, value);
	else
		json_object_del(o, key);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void test_remote_room(void)
{
	struct { const char *key; json_t *value; } bad[] = {
		{ "id", json_string("4") },
		{ "id", json_integer(3) },
		{ "id", NULL },
		{ "name", json_integer(1) },
		{ "name", json_string("a\x1b[2Jb") },
		{ "name", json_string("0123456789012345678901234567890123456789012345678901234567890123456789") },
		{ "state", json_string("exploded") },
		{ "state", NULL },
		{ "patient", json_string("../../etc") },
		{ "patient", json_integer(7) },
		{ "practitioner", json_array() },
		{ "ends_at", json_string("tomorrow") },
		{ "ends_at", json_integer(5) },
		{ "started_at", NULL },
		{ "remaining_s", json_integer(-1) },
		{ "remaining_s", json_string("600") },
		{ "remaining_s", json_real(1.5) },
		{ "duration_s", json_integer(INT64_C(1) << 40) },
		{ "needles", json_integer(ACU_NEEDLES_MAX + 1) },
		{ "alarms", json_object() },
		{ "alarms", json_pack("[{s:s,s:s,s:n}]", "kind", "fire", "priority", "high", "since") },
		{ "alarms", json_pack("[{s:s,s:s,s:n}]", "kind", "due", "priority", "urgent", "since") },
		{ "alarms", json_pack("[i]", 1) },
		{ "alarm_level", json_string("extreme") },
		{ "attention", json_true() },
		{ "stim", json_string("on") },
	};
	const char *extra[] = { "[1,2]", "\"room\"", "{\"id\":\"3\"", "",
				"{\"id\":\"3\",\"id\":\"3\"}", "null" };
	char why[160], *big;
	json_t *r, *many;
	size_t n = sizeof good_room - 1;

	r = mqtt_remote_room(good_room, n, "3", why, sizeof why);
	CHECK(r != NULL);
	CHECK_STR(json_string_value(json_object_get(r, "state")), "running");
	CHECK_STR(json_string_value(json_object_get(r, "patient")), "A1");
	CHECK(json_object_get(r, "secret") == NULL);
	CHECK(json_object_get(r, "flags") == NULL);
	CHECK(json_is_true(json_object_get(json_object_get(r, "stim"), "armed")));
	CHECK(json_object_get(json_object_get(r, "stim"), "channels") == NULL);
	CHECK_EQ(json_array_size(json_object_get(r, "alarms")), 1);
	json_decref(r);

	CHECK(mqtt_remote_room(good_room, n, "4", why, sizeof why) == NULL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *s = mutate(bad[i].key, bad[i].value);

		why[0] = '\0';
		r = mqtt_remote_room(s, strlen(s), "3", why, sizeof why);
		if (r)
			fprintf(stderr, "accepted a bad %s: %s\n", bad[i].key, s);
		CHECK(r == NULL);
		CHECK(why[0] != '\0');
		json_decref(r);
		free(s);
	}
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
		r = mqtt_remote_room(extra[i], strlen(extra[i]), "3", why, sizeof why);
		CHECK(r == NULL);
		json_decref(r);
	}
	/* Over the cap, however valid: refused before it is parsed. */
	big = malloc(MQTT_REMOTE_PAYLOAD_MAX + 64);
	memset(big, ' ', MQTT_REMOTE_PAYLOAD_MAX + 63);
	memcpy(big, good_room, n);
	big[MQTT_REMOTE_PAYLOAD_MAX + 63] = '\0';
	CHECK(mqtt_remote_room(big, MQTT_REMOTE_PAYLOAD_MAX + 63, "3", why, sizeof why) == NULL);
	CHECK(strstr(why, "bytes") != NULL);
	free(big);
	/* More alarms than there are kinds. */
	many = json_array();
	for (int i = 0; i <= AL__N; i++)
		json_array_append_new(many, json_pack("{s:s,s:s,s:n}", "kind", "due", "priority",
						      "low", "since"));
	{
		char *s = mutate("alarms", many);

		CHECK(mqtt_remote_room(s, strlen(s), "3", why, sizeof why) == NULL);
		free(s);
	}
	/* Optional members may be missing. */
	{
		char *s = mutate("attention", NULL);

		r = mqtt_remote_room(s, strlen(s), "3", why, sizeof why);
		CHECK(r != NULL);
		CHECK(json_is_null(json_object_get(r, "attention")));
		json_decref(r);
		free(s);
	}

	CHECK_EQ(mqtt_remote_status("online", 6), 1);
	CHECK_EQ(mqtt_remote_status("offline", 7), 0);
	CHECK_EQ(mqtt_remote_status("online\n", 7), -1);
	CHECK_EQ(mqtt_remote_status("", 0), -1);
	CHECK_EQ(mqtt_remote_status("ONLINE", 6), -1);
}

/* A room as the table keeps it (already validated). */
static json_t *room_obj(const char *id)
{
	return json_pack("{s:s,s:s,s:s,s:i,s:i}", "id", id, "state", "running", "ends_at",
			 "2026-11-21T10:20:00Z", "remaining_s", 600, "overdue_s", 0);
}

static void test_remote_table(void)
{
	static struct mqtt_remote t; /* large: not on the stack */
	int64_t now = wall_of("2026-11-21T10:15:00Z");
	char name[40];
	json_t *j, *rooms;

	memset(&t, 0, sizeof t);
	CHECK_EQ(mqtt_remote_put(&t, "b", "1", room_obj("1"), now), 0);
	CHECK_EQ(t.n, 1);
	CHECK_EQ(t.boards[0].nrooms, 1);
	CHECK_EQ(t.boards[0].live, 0);
	CHECK_EQ(mqtt_remote_set_live(&t, "b", 1, now), 0);
	CHECK_EQ(t.boards[0].live, 1);
	/* Counted from the deadline, not from what the message said. */
	j = mqtt_remote_board_json(&t.boards[0], now);
	rooms = json_object_get(j, "rooms");
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(rooms, 0), "remaining_s")), 300);
	CHECK(json_is_true(json_object_get(j, "live")));
	CHECK_STR(json_string_value(json_object_get(j, "board")), "b");
	json_decref(j);
	/* Replaced, not added. */
	CHECK_EQ(mqtt_remote_put(&t, "b", "1", room_obj("1"), now), 0);
	CHECK_EQ(t.boards[0].nrooms, 1);
	/* Bounded per board. */
	for (int i = 2; i <= MQTT_REMOTE_ROOMS; i++) {
		snprintf(name, sizeof name, "r%d", i);
		CHECK_EQ(mqtt_remote_put(&t, "b", name, room_obj(name), now), 0);
	}
	CHECK_EQ(mqtt_remote_put(&t, "b", "one-too-many", room_obj("x"), now), -1);
	CHECK_EQ(t.boards[0].nrooms, MQTT_REMOTE_ROOMS);
	/* Removal. */
	CHECK_EQ(mqtt_remote_put(&t, "b", "1", NULL, now), 0);
	CHECK_EQ(t.boards[0].nrooms, MQTT_REMOTE_ROOMS - 1);
	CHECK_EQ(mqtt_remote_put(&t, "b", "never-there", NULL, now), 0);
	CHECK_EQ(mqtt_remote_put(&t, "nobody", "1", NULL, now), 0);
	CHECK_EQ(t.n, 1);
	/* Bounded in boards. */
	for (int i = 1; i < MQTT_REMOTE_BOARDS; i++) {
		snprintf(name, sizeof name, "b%d", i);
		CHECK_EQ(mqtt_remote_set_live(&t, name, 1, now), 0);
	}
	CHECK_EQ(t.n, MQTT_REMOTE_BOARDS);
	CHECK_EQ(mqtt_remote_set_live(&t, "extra", 1, now), -1);
	CHECK_EQ(mqtt_remote_put(&t, "extra", "1", room_obj("1"), now), -1);
	CHECK_EQ(t.n, MQTT_REMOTE_BOARDS);
	/* Our connection lost: nothing is live; a removed status reads offline. */
	for (int i = 0; i < t.n; i++)
		t.boards[i].dirty = 0;
	mqtt_remote_all_down(&t, now);
	for (int i = 0; i < t.n; i++) {
		CHECK_EQ(t.boards[i].live, 0);
		CHECK_EQ(t.boards[i].dirty, 1);
	}
	CHECK_EQ(mqtt_remote_set_live(&t, "b", 1, now), 0);
	CHECK_EQ(mqtt_remote_set_live(&t, "b", -1, now), 0);
	CHECK_EQ(t.boards[0].live, 0);
	/* Not live: the clocks stop where the message left them. */
	j = mqtt_remote_board_json(&t.boards[0], now);
	CHECK(json_is_false(json_object_get(j, "live")));
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(json_object_get(j, "rooms"), 0),
						    "remaining_s")), 600);
	json_decref(j);
	mqtt_remote_clear(&t);
	CHECK_EQ(t.n, 0);
}

static void test_discovery(void)
{
	struct acu_mqtt_cfg m;
	static const char *const required[] = { "name", "unique_id", "state_topic",
						"value_template", "availability_topic", "device" };
	json_t *list, *e;
	size_t i;
	int binary = 0, timestamp = 0;

	memset(&m, 0, sizeof m);
	snprintf(m.board, sizeof m.board, "floor_1");
	snprintf(m.prefix, sizeof m.prefix, "acud");
	snprintf(m.discovery_prefix, sizeof m.discovery_prefix, "homeassistant");
	list = mqtt_discovery(&m, "a.b", "Lotus");
	CHECK_EQ(json_array_size(list), MQTT_DISCOVERY_N);
	json_array_foreach(list, i, e) {
		const char *topic = json_string_value(json_object_get(e, "topic"));
		json_t *p = json_object_get(e, "payload"), *dev = json_object_get(p, "device");

		CHECK(topic && strncmp(topic, "homeassistant/", 14) == 0);
		/* node and object ids: [A-Za-z0-9_-] only; '.' and '_' escaped. */
		CHECK(topic && strstr(topic, "/acud_floor_5f1/a_2eb_") != NULL);
		CHECK(topic && strcmp(topic + strlen(topic) - 7, "/config") == 0);
		for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
			CHECK(json_object_get(p, required[k]) != NULL);
		CHECK_STR(json_string_value(json_object_get(p, "state_topic")), "acud/floor_1/room/a.b");
		CHECK_STR(json_string_value(json_object_get(p, "availability_topic")),
			  "acud/floor_1/status");
		CHECK(json_array_size(json_object_get(dev, "identifiers")) == 1);
		CHECK_STR(json_string_value(json_array_get(json_object_get(dev, "identifiers"), 0)),
			  "acud_floor_5f1");
		if (strstr(topic, "/binary_sensor/")) {
			binary++;
			CHECK_STR(json_string_value(json_object_get(p, "device_class")), "problem");
			CHECK_STR(json_string_value(json_object_get(p, "payload_on")), "ON");
		}
		if (json_object_get(p, "device_class") &&
		    strcmp(json_string_value(json_object_get(p, "device_class")), "timestamp") == 0)
			timestamp++;
		for (size_t k = 0; k < i; k++)
			CHECK(strcmp(json_string_value(json_object_get(json_object_get(
					     json_array_get(list, k), "payload"), "unique_id")),
				     json_string_value(json_object_get(p, "unique_id"))) != 0);
	}
	CHECK_EQ(binary, 1);
	CHECK_EQ(timestamp, 1);
	json_decref(list);
}

static void test_ratelimit(void)
{
	struct mqtt_ratelimit rl = { 0, 0, 0 };

	CHECK_EQ(mqtt_ratelimit(&rl, 100, 10, 1), 0);
	CHECK_EQ(mqtt_ratelimit(&rl, 105, 10, 1), -1);
	CHECK_EQ(mqtt_ratelimit(&rl, 109, 10, 1), -1);
	CHECK_EQ(mqtt_ratelimit(&rl, 110, 10, 1), 2);
	CHECK_EQ(mqtt_ratelimit(&rl, 200, 10, 1), 0);
	/* A burst of three, then held back until the interval ends. */
	memset(&rl, 0, sizeof rl);
	CHECK_EQ(mqtt_ratelimit(&rl, 0, 10, 3), 0);
	CHECK_EQ(mqtt_ratelimit(&rl, 1, 10, 3), 0);
	CHECK_EQ(mqtt_ratelimit(&rl, 2, 10, 3), 0);
	CHECK_EQ(mqtt_ratelimit(&rl, 3, 10, 3), -1);
	CHECK_EQ(mqtt_ratelimit(&rl, 9, 10, 3), -1);
	CHECK_EQ(mqtt_ratelimit(&rl, 10, 10, 3), 2);
	CHECK_EQ(mqtt_ratelimit(&rl, 11, 10, 3), 0);
}

/* --- [mqtt] in the config -------------------------------------------------------- */

static char dir[] = "/tmp/test_mqtt.XXXXXX";

static struct acu_cfg *load(const char *mqtt, char *err, size_t errlen)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/acud.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return NULL;
	fprintf(f, "[daemon]\nprofiles_dir = %s/none\n[room 1]\ngate = 17\n%s", dir, mqtt);
	fclose(f);
	return cfg_load(path, err, errlen);
}

static void bad_cfg(const char *mqtt, int line, const char *words)
{
	char err[1024], want[32];
	struct acu_cfg *c = load(mqtt, err, sizeof err);

	CHECK(c == NULL);
	if (c) {
		fprintf(stderr, "accepted:\n%s\n", mqtt);
		cfg_free(c);
		return;
	}
	snprintf(want, sizeof want, "acud.conf:%d: ", line);
	if (!strstr(err, want) || !strstr(err, words))
		fprintf(stderr, "for:\n%s\nwanted line %d and '%s', got: %s\n", mqtt, line, words,
			err);
	CHECK(strstr(err, want) != NULL);
	CHECK(strstr(err, words) != NULL);
}

static void test_cfg(void)
{
	char err[1024], path[256], text[1024];
	struct acu_cfg *c;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(path, sizeof path, "%s/none", dir);
	mkdir(path, 0700);
	c = load("", err, sizeof err);
	if (!c)
		fprintf(stderr, "%s\n", err);
	CHECK(c && !c->mqtt.on);
	cfg_free(c);
	c = load("[mqtt]\nbroker = mqtt://broker.clinic.lan\nboard = floor1\n", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK(c->mqtt.on && !c->mqtt.tls);
		CHECK_STR(c->mqtt.host, "broker.clinic.lan");
		CHECK_EQ(c->mqtt.port, 1883);
		CHECK_STR(c->mqtt.prefix, "acud");
		CHECK_STR(c->mqtt.discovery_prefix, "homeassistant");
		CHECK_EQ(c->mqtt.keepalive, 30);
		CHECK_EQ(c->mqtt.publish_patient, 0);
		CHECK_EQ(c->mqtt.discovery, 0);
		CHECK_EQ(c->mqtt.remote, 0);
		cfg_free(c);
	}
	c = load("[mqtt]\nbroker = mqtts://[::1]:9883\nkeepalive = 1m\ntopic_prefix = clinic/acud\n"
		 "remote = yes\n", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		char host[256];

		CHECK(c->mqtt.tls);
		CHECK_STR(c->mqtt.host, "::1");
		CHECK_EQ(c->mqtt.port, 9883);
		CHECK_EQ(c->mqtt.keepalive, 60);
		CHECK_STR(c->mqtt.prefix, "clinic/acud");
		/* board: the host name by default. */
		gethostname(host, sizeof host);
		if (acu_valid_ref(host))
			CHECK_STR(c->mqtt.board, host);
		cfg_free(c);
	}
	snprintf(path, sizeof path, "%s/pw", dir);
	fclose(fopen(path, "w"));
	snprintf(text, sizeof text, "[mqtt]\nbroker = mqtts://b\nusername = floor1\n"
		 "password_file = pw\nca_file = pw\ncert_file = pw\nkey_file = pw\n");
	c = load(text, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(c->mqtt.password_file, path); /* relative to the config */
		cfg_free(c);
	}

	bad_cfg("[mqtt]\nboard = x\n", 5, "without broker");
	bad_cfg("[mqtt]\nbroker = http://b\n", 6, "not mqtt://HOST");
	bad_cfg("[mqtt]\nbroker = mqtt://\n", 6, "no host");
	bad_cfg("[mqtt]\nbroker = mqtt://u:p@b\n", 6, "user info");
	bad_cfg("[mqtt]\nbroker = mqtt://b:0\n", 6, "port");
	bad_cfg("[mqtt]\nbroker = mqtt://b:65536\n", 6, "port");
	bad_cfg("[mqtt]\nbroker = mqtt://b/path\n", 6, "not a host name");
	bad_cfg("[mqtt]\nbroker = mqtt://[::1\n", 6, "IPv6");
	bad_cfg("[mqtt]\nbroker = mqtt://b\nboard = a/b\n", 7, "board name");
	bad_cfg("[mqtt]\nbroker = mqtt://b\ntopic_prefix = a/+/b\n", 7, "topic prefix");
	bad_cfg("[mqtt]\nbroker = mqtt://b\ntopic_prefix = /a\n", 7, "topic prefix");
	bad_cfg("[mqtt]\nbroker = mqtt://b\ntopic_prefix = a//b\n", 7, "topic prefix");
	bad_cfg("[mqtt]\nbroker = mqtt://b\ndiscovery_prefix = $SYS\n", 7, "topic prefix");
	bad_cfg("[mqtt]\nbroker = mqtt://b\nkeepalive = 2s\n", 7, "out of range");
	bad_cfg("[mqtt]\nbroker = mqtt://b\nremote = maybe\n", 7, "boolean");
	bad_cfg("[mqtt]\nbroker = mqtt://b\nca_file = pw\n", 7, "needs an mqtts://");
	bad_cfg("[mqtt]\nbroker = mqtts://b\ncert_file = pw\n", 7, "go together");
	bad_cfg("[mqtt]\nbroker = mqtts://b\npassword_file = pw\n", 7, "needs username");
	bad_cfg("[mqtt]\nbroker = mqtts://b\nca_file = nothere\n", 7, "No such file");
	bad_cfg("[mqtt]\nbroker = mqtt://b\nbroker = mqtt://c\n", 7, "duplicate key");
	bad_cfg("[mqtt]\nbroker = mqtt://b\nqos = 2\n", 7, "unknown key");
	bad_cfg("[mqtt]\nbroker = mqtt://b\n[mqtt]\n", 7, "appears twice");

	unlink(path);
	snprintf(path, sizeof path, "%s/acud.conf", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/none", dir);
	rmdir(path);
	rmdir(dir);
}

int main(void)
{
	test_topics();
	test_room_payload();
	test_remote_room();
	test_remote_table();
	test_discovery();
	test_ratelimit();
	test_cfg();
	return unit_report("test_mqtt");
}

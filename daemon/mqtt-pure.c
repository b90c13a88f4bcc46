/* The pure parts of MQTT publishing (see mqtt.h): no I/O, no clock of their
 * own, so the unit tests cover every topic, payload and hostile message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt.h"

int mqtt_topic(char *buf, size_t len, const char *prefix, const char *board, const char *what,
	       const char *id)
{
	int n = id ? snprintf(buf, len, "%s/%s/%s/%s", prefix, board, what, id) :
		     snprintf(buf, len, "%s/%s/%s", prefix, board, what);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Copies the level at *s (up to '/' or the end) into out when it is a valid
 * reference; advances past it and its '/'. */
static int take_level(const char **s, char out[ACU_ID_MAX + 1])
{
	size_t n = strcspn(*s, "/");

	if (n == 0 || n > ACU_ID_MAX)
		return -1;
	memcpy(out, *s, n);
	out[n] = '\0';
	*s += n;
	if (**s == '/')
		(*s)++;
	return acu_valid_ref(out) ? 0 : -1;
}

enum mqtt_topic_kind mqtt_topic_parse(const char *topic, const char *prefix,
				      char board[ACU_ID_MAX + 1], char id[ACU_ID_MAX + 1])
{
	size_t pl = strlen(prefix);
	const char *s = topic;
	char what[ACU_ID_MAX + 1];

	id[0] = board[0] = '\0';
	if (strncmp(s, prefix, pl) != 0 || s[pl] != '/')
		return MQTT_T_BAD;
	s += pl + 1;
	if (take_level(&s, board) < 0 || take_level(&s, what) < 0)
		return MQTT_T_BAD;
	if (strcmp(what, "status") == 0 && !*s && s[-1] != '/')
		return MQTT_T_STATUS;
	if (strcmp(what, "room") == 0 && take_level(&s, id) == 0 && !*s && s[-1] != '/')
		return MQTT_T_ROOM;
	id[0] = '\0';
	return MQTT_T_BAD;
}

json_t *mqtt_room_payload(json_t *room, int publish_patient)
{
	json_t *o = json_copy(room);

	/* The chart code and the contraindications are the patient's: neither
	 * leaves the board unless asked (as [web] show_patient = no hides both). */
	if (o && !publish_patient && json_object_get(o, "patient"))
		json_object_set_new(o, "patient", json_null());
	if (o && !publish_patient && json_object_get(o, "flags"))
		json_object_set_new(o, "flags", json_array());
	return o;
}

/* --- remote messages ---------------------------------------------------------- */

static int name_in(const char *s, const char *(*name)(int), int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, name(i)) == 0)
			return 1;
	return 0;
}

static const char *state_name(int i) { return acu_state_name((enum acu_state)i); }
static const char *alarm_name(int i) { return acu_alarm_name((enum acu_alarm_kind)i); }
static const char *prio_name(int i) { return acu_priority_name((enum acu_priority)i); }

/* Text shown on a terminal and a web page: bounded, no control characters
 * (jansson already refused invalid UTF-8). */
static int plain_text(json_t *v, size_t max)
{
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return 0;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > max || strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int time_or_null(json_t *v)
{
	int64_t ns;

	return json_is_null(v) || (json_is_string(v) &&
				   acu_parse_rfc3339(json_string_value(v), &ns) == 0);
}

static int count(json_t *v, int64_t max)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max;
}

#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); goto bad; } while (0)
/* A day in seconds bounds every duration a room shows (sessions are at
 * most 4 h; overdue grows, but a day of it is already an error). */
#define SECONDS_MAX (7 * 86400)

json_t *mqtt_remote_room(const void *payload, size_t len, const char *topic_id, char *why,
			 size_t whylen)
{
	static const char *const counts[] = { "duration_s", "remaining_s", "overdue_s", "paused_s" };
	static const char *const times[] = { "started_at", "ends_at", "checkin_due_at" };
	json_t *in = NULL, *out = NULL, *v, *alarms, *e, *stim;
	json_error_t jerr;
	size_t i;

	if (len > MQTT_REMOTE_PAYLOAD_MAX)
		BAD("%zu bytes (at most %d)", len, MQTT_REMOTE_PAYLOAD_MAX);
	in = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!in)
		BAD("not JSON: %.80s", jerr.text);
	if (!json_is_object(in))
		BAD("not a JSON object");
	v = json_object_get(in, "id");
	if (!json_is_string(v) || strcmp(json_string_value(v), topic_id) != 0)
		BAD("id is not the topic's room (%s)", topic_id);
	out = json_pack("{s:s}", "id", topic_id);
	v = json_object_get(in, "name");
	if (!plain_text(v, ACU_NAME_MAX))
		BAD("name: not a room name");
	json_object_set(out, "name", v);
	v = json_object_get(in, "state");
	if (!json_is_string(v) || !name_in(json_string_value(v), state_name, ST__N))
		BAD("state: not a room state");
	json_object_set(out, "state", v);
	v = json_object_get(in, "patient");
	if (v && !json_is_null(v) && !(json_is_string(v) && acu_valid_ref(json_string_value(v))))
		BAD("patient: not a chart code");
	json_object_set_new(out, "patient", v ? json_incref(v) : json_null());
	v = json_object_get(in, "practitioner");
	if (v && !json_is_null(v) && !plain_text(v, ACU_NAME_MAX))
		BAD("practitioner: not a user name");
	json_object_set_new(out, "practitioner", v ? json_incref(v) : json_null());
	for (i = 0; i < sizeof times / sizeof times[0]; i++) {
		v = json_object_get(in, times[i]);
		if (!time_or_null(v))
			BAD("%s: not an RFC 3339 time or null", times[i]);
		json_object_set(out, times[i], v);
	}
	for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		v = json_object_get(in, counts[i]);
		if (!count(v, SECONDS_MAX))
			BAD("%s: not a count of seconds", counts[i]);
		json_object_set(out, counts[i], v);
	}
	v = json_object_get(in, "needles");
	if (!count(v, ACU_NEEDLES_MAX))
		BAD("needles: not 0 to %d", ACU_NEEDLES_MAX);
	json_object_set(out, "needles", v);
	alarms = json_object_get(in, "alarms");
	if (!json_is_array(alarms) || json_array_size(alarms) > AL__N)
		BAD("alarms: not a list of at most %d alarms", AL__N);
	v = json_array();
	json_object_set_new(out, "alarms", v);
	json_array_foreach(alarms, i, e) {
		json_t *k = json_object_get(e, "kind"), *p = json_object_get(e, "priority");

		if (!json_is_string(k) || !name_in(json_string_value(k), alarm_name, AL__N) ||
		    !json_is_string(p) || !name_in(json_string_value(p), prio_name, PRIO_HIGH + 1) ||
		    !time_or_null(json_object_get(e, "since")))
			BAD("alarms[%zu]: not an alarm (kind, priority, since)", i);
		json_array_append_new(v, json_pack("{s:O,s:O,s:O,s:n}", "kind", k, "priority", p,
						   "since", json_object_get(e, "since"),
						   "silenced_until"));
	}
	v = json_object_get(in, "alarm_level");
	if (!json_is_string(v) || !name_in(json_string_value(v), prio_name, PRIO_HIGH + 1))
		BAD("alarm_level: not a priority");
	json_object_set(out, "alarm_level", v);
	v = json_object_get(in, "attention");
	if (v && !json_is_null(v) && !plain_text(v, 256))
		BAD("attention: not a short text");
	json_object_set_new(out, "attention", v ? json_incref(v) : json_null());
	stim = json_object_get(in, "stim");
	if (stim && !json_is_object(stim))
		BAD("stim: not an object");
	v = json_pack("{s:b,s:b}", "armed", json_is_true(json_object_get(stim, "armed")), "on",
		      json_is_true(json_object_get(stim, "on")));
	json_object_set_new(out, "stim", v);
	json_decref(in);
	return out;
bad:
	json_decref(in);
	json_decref(out);
	return NULL;
}

int mqtt_remote_status(const void *payload, size_t len)
{
	if (len == 6 && memcmp(payload, "online", 6) == 0)
		return 1;
	if (len == 7 && memcmp(payload, "offline", 7) == 0)
		return 0;
	return -1;
}

/* --- the table of other boards -------------------------------------------------- */

static struct mqtt_rboard *board_get(struct mqtt_remote *t, const char *name, int create)
{
	struct mqtt_rboard *b;

	for (int i = 0; i < t->n; i++)
		if (strcmp(t->boards[i].name, name) == 0)
			return &t->boards[i];
	if (!create || t->n == MQTT_REMOTE_BOARDS)
		return NULL;
	b = &t->boards[t->n++];
	memset(b, 0, sizeof *b);
	snprintf(b->name, sizeof b->name, "%s", name);
	return b;
}

int mqtt_remote_put(struct mqtt_remote *t, const char *board, const char *id, json_t *room,
		    int64_t wall)
{
	struct mqtt_rboard *b = board_get(t, board, room != NULL);
	int i;

	(void)wall;
	if (!b) {
		json_decref(room);
		return room ? -1 : 0;
	}
	for (i = 0; i < b->nrooms; i++)
		if (strcmp(b->ids[i], id) == 0)
			break;
	if (i == b->nrooms) {
		if (!room)
			return 0;
		if (b->nrooms == MQTT_REMOTE_ROOMS) {
			json_decref(room);
			return -1;
		}
		snprintf(b->ids[i], sizeof b->ids[i], "%s", id);
		b->rooms[i] = NULL;
		b->nrooms++;
	}
	json_decref(b->rooms[i]);
	b->rooms[i] = room;
	if (!room) {
		memmove(&b->ids[i], &b->ids[i + 1], sizeof b->ids[0] * (size_t)(b->nrooms - i - 1));
		memmove(&b->rooms[i], &b->rooms[i + 1],
			sizeof b->rooms[0] * (size_t)(b->nrooms - i - 1));
		b->nrooms--;
	}
	b->dirty = 1;
	return 0;
}

int mqtt_remote_set_live(struct mqtt_remote *t, const char *board, int live, int64_t wall)
{
	struct mqtt_rboard *b = board_get(t, board, live >= 0);

	/* A board once heard keeps its place (the table is bounded by boards,
	 * not by messages): removed, its status reads offline. */
	if (!b)
		return live >= 0 ? -1 : 0;
	live = live > 0;
	if (b->live != live || !b->since) {
		b->live = live;
		b->since = wall;
		b->dirty = 1;
	}
	return 0;
}

void mqtt_remote_all_down(struct mqtt_remote *t, int64_t wall)
{
	for (int i = 0; i < t->n; i++)
		if (t->boards[i].live) {
			t->boards[i].live = 0;
			t->boards[i].since = wall;
			t->boards[i].dirty = 1;
		}
}

void mqtt_remote_clear(struct mqtt_remote *t)
{
	for (int i = 0; i < t->n; i++)
		for (int j = 0; j < t->boards[i].nrooms; j++)
			json_decref(t->boards[i].rooms[j]);
	t->n = 0;
}

static int64_t time_of(json_t *room, const char *key)
{
	int64_t ns;

	if (!json_is_string(json_object_get(room, key)) ||
	    acu_parse_rfc3339(json_string_value(json_object_get(room, key)), &ns) < 0)
		return ACU_NEVER;
	return ns;
}

json_t *mqtt_remote_board_json(const struct mqtt_rboard *b, int64_t wall)
{
	json_t *rooms = json_array();
	char since[40] = "";

	for (int i = 0; i < b->nrooms; i++) {
		json_t *r = json_copy(b->rooms[i]);
		const char *st = json_string_value(json_object_get(r, "state"));
		int64_t end = time_of(r, "ends_at");

		/* The message says how long was left when it was sent; the
		 * deadline says how long is left now. */
		if (b->live && st && end != ACU_NEVER && strcmp(st, "running") == 0)
			json_object_set_new(r, "remaining_s",
					    json_integer(end > wall ? (end - wall) / NS_PER_SEC : 0));
		if (b->live && st && end != ACU_NEVER && strcmp(st, "due") == 0)
			json_object_set_new(r, "overdue_s",
					    json_integer(wall > end ? (wall - end) / NS_PER_SEC : 0));
		json_array_append_new(rooms, r);
	}
	if (b->since)
		acu_rfc3339(b->since, since, sizeof since);
	return json_pack("{s:s,s:b,s:o,s:o}", "board", b->name, "live", b->live, "since",
			 since[0] ? json_string(since) : json_null(), "rooms", rooms);
}

/* --- Home Assistant discovery --------------------------------------------------- */

/* HA's node and object ids are [A-Za-z0-9_-]: anything else (and '_' itself,
 * so two ids never meet) becomes _XX. */
static void ha_id(char *out, size_t len, const char *s)
{
	size_t n = 0;

	for (; *s && n + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-')
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, len - n, "_%02x", c);
	}
	out[n] = '\0';
}

json_t *mqtt_discovery(const struct acu_mqtt_cfg *m, const char *room_id, const char *room_name)
{
	static const struct {
		const char *component, *suffix, *label, *tmpl, *device_class, *icon;
	} ent[MQTT_DISCOVERY_N] = {
		{ "sensor", "state", "state", "{{ value_json.state }}", NULL, "mdi:timer-outline" },
		{ "sensor", "ends", "ends", "{{ value_json.ends_at }}", "timestamp", NULL },
		{ "binary_sensor", "problem", "alarm",
		  "{{ 'ON' if value_json.alarms | length > 0 else 'OFF' }}", "problem", NULL },
		{ "sensor", "alarm_level", "alarm level", "{{ value_json.alarm_level }}", NULL,
		  "mdi:alarm-light-outline" },
	};
	char node[3 * ACU_ID_MAX + 8], obj[3 * ACU_ID_MAX + 24], topic[MQTT_TOPIC_MAX * 2];
	char state_topic[MQTT_TOPIC_MAX], avail[MQTT_TOPIC_MAX], uid[sizeof node + sizeof obj + 4];
	char name[ACU_NAME_MAX + 32], devname[ACU_ID_MAX + 8];
	json_t *out = json_array(), *dev;

	snprintf(node, sizeof node, "acud_");
	ha_id(node + 5, sizeof node - 5, m->board);
	mqtt_topic(state_topic, sizeof state_topic, m->prefix, m->board, "room", room_id);
	mqtt_topic(avail, sizeof avail, m->prefix, m->board, "status", NULL);
	snprintf(devname, sizeof devname, "acud %s", m->board);
	dev = json_pack("{s:[s],s:s,s:s,s:s,s:s}", "identifiers", node, "name", devname,
			"manufacturer", "acud", "model", "acupuncture room board", "sw_version",
			ACUD_VERSION);
	for (int i = 0; i < MQTT_DISCOVERY_N; i++) {
		json_t *p;

		ha_id(obj, sizeof obj - 16, room_id);
		snprintf(obj + strlen(obj), sizeof obj - strlen(obj), "_%s", ent[i].suffix);
		snprintf(topic, sizeof topic, "%s/%s/%s/%s/config", m->discovery_prefix,
			 ent[i].component, node, obj);
		snprintf(uid, sizeof uid, "%s_%s", node, obj);
		snprintf(name, sizeof name, "%s %s", room_name, ent[i].label);
		p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "name", name, "unique_id", uid,
			      "state_topic", state_topic, "value_template", ent[i].tmpl,
			      "availability_topic", avail, "payload_available", "online",
			      "payload_not_available", "offline", "device", dev);
		if (ent[i].device_class)
			json_object_set_new(p, "device_class", json_string(ent[i].device_class));
		if (ent[i].icon)
			json_object_set_new(p, "icon", json_string(ent[i].icon));
		if (strcmp(ent[i].component, "binary_sensor") == 0) {
			json_object_set_new(p, "payload_on", json_string("ON"));
			json_object_set_new(p, "payload_off", json_string("OFF"));
		}
		json_array_append_new(out, json_pack("{s:s,s:o}", "topic", topic, "payload", p));
	}
	json_decref(dev);
	return out;
}

long mqtt_ratelimit(struct mqtt_ratelimit *rl, int64_t mono, int64_t interval, int burst)
{
	long held;

	if (!rl->n || mono - rl->start >= interval) {
		rl->start = mono;
		rl->n = 0;
	}
	if (rl->n >= burst) {
		rl->held++;
		return -1;
	}
	rl->n++;
	held = rl->held;
	rl->held = 0;
	return held;
}

/* Request dispatch (SPEC §6): one table row per command with the role it needs
 * and the keys it accepts; every field is validated before anything changes. */
#include <string.h>

#include "server.h"
#include "gpio.h"
#include "mqtt.h"

struct cmd {
	enum acu_cmd id;               /* its name is acu_cmd_name(id): one table (util.c) */
	enum acu_role role;
	int read_only;                 /* changes nothing: its reply need not wait for a save */
	const char *const *keys;       /* accepted besides id and cmd; NULL-terminated */
	json_t *(*fn)(struct acud *d, struct client *c, json_t *req, struct acu_err *err);
};

/* --- field access: wrong types are bad-request, wrong values out-of-range --- */

static int req_int(json_t *req, const char *key, int required, int64_t lo, int64_t hi,
		   int64_t *out, struct acu_err *err)
{
	json_t *v = json_object_get(req, key);

	if (!v) {
		if (required)
			return acu_fail(err, E_BAD_REQUEST, "%s: required", key);
		return 0;
	}
	if (!json_is_integer(v))
		return acu_fail(err, E_BAD_REQUEST, "%s: expected an integer", key);
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return acu_fail(err, E_OUT_OF_RANGE, "%s: %lld outside %lld..%lld", key,
				(long long)json_integer_value(v), (long long)lo, (long long)hi);
	*out = json_integer_value(v);
	return 1;
}

static int req_str(json_t *req, const char *key, int required, const char **out,
		   struct acu_err *err)
{
	json_t *v = json_object_get(req, key);

	if (!v) {
		if (required)
			return acu_fail(err, E_BAD_REQUEST, "%s: required", key);
		return 0;
	}
	if (!json_is_string(v))
		return acu_fail(err, E_BAD_REQUEST, "%s: expected a string", key);
	*out = json_string_value(v);
	return 1;
}

static int req_bool(json_t *req, const char *key, int required, int *out, struct acu_err *err)
{
	json_t *v = json_object_get(req, key);

	if (!v) {
		if (required)
			return acu_fail(err, E_BAD_REQUEST, "%s: required", key);
		return 0;
	}
	if (!json_is_boolean(v))
		return acu_fail(err, E_BAD_REQUEST, "%s: expected true or false", key);
	*out = json_is_true(v);
	return 1;
}

static int req_flags(json_t *req, int required, unsigned *out, struct acu_err *err)
{
	json_t *v = json_object_get(req, "flags"), *f;
	size_t i;

	*out = 0;
	if (!v) {
		if (required)
			return acu_fail(err, E_BAD_REQUEST, "flags: required");
		return 0;
	}
	if (!json_is_array(v) || (required && json_array_size(v) == 0))
		return acu_fail(err, E_BAD_REQUEST, "flags: expected a list of flag names");
	json_array_foreach(v, i, f) {
		int fl = json_is_string(f) ? acu_flag_parse(json_string_value(f)) : -1;
		if (fl < 0) {
			char known[160];

			acu_flag_list(known, sizeof known, ", ");
			return acu_fail(err, E_BAD_REQUEST, "flags: unknown flag %s%s%s (known: %s)",
					json_is_string(f) ? "'" : "",
					json_is_string(f) ? json_string_value(f) : "(not a string)",
					json_is_string(f) ? "'" : "", known);
		}
		*out |= 1u << fl;
	}
	return 1;
}

static struct acu_room *req_room(struct acud *d, json_t *req, struct acu_err *err)
{
	const char *id = NULL;
	struct acu_room *r;

	if (req_str(req, "room", 1, &id, err) < 0)
		return NULL;
	r = commit_room(d, id);
	if (!r)
		acu_fail(err, E_UNKNOWN_ROOM, "no room '%.40s'", id);
	return r;
}

static json_t *room_reply(struct acud *d, const struct acu_room *r, const struct acu_now *now)
{
	return json_pack("{s:o}", "room", roomjson_cached(d, r, now));
}

/* The history record of a command: what was asked, by whom. */
static json_t *command_record(const struct client *c, const char *name, json_t *req)
{
	json_t *rec = json_deep_copy(req);

	json_object_del(rec, "id");
	json_object_del(rec, "room");
	json_object_del(rec, "cmd");
	json_object_set_new(rec, "type", json_string("command"));
	json_object_set_new(rec, "cmd", json_string(name));
	json_object_set_new(rec, "user", json_string(client_user(c)));
	return rec;
}

/* S8: every refusal is in the history, with who asked and why. */
static void refusal(struct acud *d, const struct client *c, const struct acu_room *r,
		    const char *name, const struct acu_err *err)
{
	history_add(d, r->cfg->id,
		    json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "refusal", "cmd", name, "user",
			      client_user(c), "code", acu_errcode_name(err->code), "message",
			      err->msg));
}

/* Brings the room up to date, applies op, and commits whatever changed, even on
 * a refusal that raised an alarm. */
typedef int (*room_op)(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		       const struct acu_now *now, unsigned *warned, struct acu_err *err);

static void warn_flags(struct acud *d, const struct client *c, const struct acu_room *r,
		       unsigned warned)
{
	if (!warned)
		return;
	log_warnx("room %s: stimulation armed by %s despite flags (policy warn)", r->cfg->id,
		  client_user(c));
	history_add(d, r->cfg->id, json_pack("{s:s,s:s,s:o}", "type", "warning", "user",
					     client_user(c), "flags", roomjson_flags(warned)));
}

/* What a session command may need of the disk (S9): a change that starts,
 * resumes, extends or arms is refused while changes cannot be saved; a cut
 * always goes ahead. */
enum needs { CUTS_OR_KEEPS, STARTS, ARMS_IF_ON };

static int needs_storage(enum needs n, json_t *req)
{
	return n == STARTS || (n == ARMS_IF_ON && json_is_true(json_object_get(req, "on")));
}

static json_t *session_cmd(struct acud *d, struct client *c, json_t *req, struct acu_err *err,
			   const char *name, room_op op, enum needs needs)
{
	struct acu_room *r = req_room(d, req, err), before, trial;
	struct acu_now now = acu_now();
	struct acu_err serr = { E_OK, "" };
	unsigned warned = 0;
	char msg[256];
	int rc, full = 0, fault;

	if (!r)
		return NULL;
	/* Found before the snapshot: finding the disk full raises the storage
	 * alarm, a change of its own. */
	if (needs_storage(needs, req))
		full = storage_check(d, &serr) < 0;
	memcpy(&before, r, sizeof before);
	room_tick(r, d->cfg, &now);
	/* S5: arming reads the interlock fresh, into the room itself: a trip
	 * found here stands (and is committed) whatever becomes of the trial. */
	if (needs_storage(needs, req))
		stim_interlock_fresh(d, r, &now);
	/* Tried on a copy: a request that would be refused anyway says why;
	 * one that would go ahead is refused for storage, changing nothing. */
	memcpy(&trial, r, sizeof trial);
	rc = op(d, c, &trial, req, &now, &warned, err);
	if (rc == 0 && full) {
		*err = serr;
		rc = -1;
	} else {
		memcpy(r, &trial, sizeof *r);
	}
	if (rc < 0) {
		refusal(d, c, r, name, err);
		if (memcmp(&before, r, sizeof before) != 0 &&
		    commit_change(d, r, &before, &now, NULL, name, msg, sizeof msg) < 0)
			log_errx("%s", msg);
		stim_interlock_told(d, r);
		return NULL;
	}
	warn_flags(d, c, r, warned);
	fault = r->gpio_fault;
	/* The record is built after the gates are driven: a stop waits for no copy. */
	commit_outputs(d, r, &now, name);
	rc = commit_finish(d, r, &before, &now, command_record(c, name, req), msg, sizeof msg);
	stim_interlock_told(d, r);
	if (rc < 0) {
		acu_fail(err, E_STORAGE, "the change took effect but could not be saved: %s", msg);
		return NULL;
	}
	/* S7: a line write of this change failed; it is not `ok` (a gate asked
	 * on may never have been, one asked off may still be). */
	if (r->gpio_fault && !fault)
		return acu_fail(err, E_GPIO_FAULT, "room %s: %s applied, but a GPIO write failed: "
				"outputs driven off, heartbeat stopped; reload or restart", r->cfg->id,
				name), NULL;
	return room_reply(d, r, &now);
}

/* --- session commands ------------------------------------------------------ */


static int op_start(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		    const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	struct acu_start st = { .needles = -1, .practitioner = client_user(c) };
	int64_t n = -1;
	int rc;

	if (req_int(req, "duration_s", 1, INT32_MIN, INT32_MAX, &st.duration_s, err) < 0)
		return -1;
	rc = req_int(req, "needles", 0, INT32_MIN, INT32_MAX, &n, err);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		if (n < 0 || n > ACU_NEEDLES_MAX)
			return acu_fail(err, E_OUT_OF_RANGE, "needles: must be 0..%d", ACU_NEEDLES_MAX);
		st.needles = (int)n;
	}
	if (req_str(req, "patient", 0, &st.patient, err) < 0 ||
	    req_str(req, "profile", 0, &st.profile, err) < 0 ||
	    req_flags(req, 0, &st.flags, err) < 0 || req_bool(req, "stim", 0, &st.stim, err) < 0)
		return -1;
	if (!st.stim)
		return room_start(r, d->cfg, &st, now, err);
	/* A start that asks to arm and cannot is refused whole (SPEC §3). */
	{
		struct acu_room trial;

		memcpy(&trial, r, sizeof trial);
		if (room_start(&trial, d->cfg, &st, now, err) < 0 ||
		    room_stim_on(&trial, d->cfg, now, warned, err) < 0)
			return -1;
		memcpy(r, &trial, sizeof *r);
		return 0;
	}
}

static int op_pause(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		    const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	(void)c;
	(void)req;
	return room_pause(r, d->cfg, now, err);
}

static int op_resume(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		     const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	(void)c;
	(void)req;
	return room_resume(r, d->cfg, now, err);
}

static int op_stop(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		   const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	(void)c;
	(void)req;
	return room_stop(r, d->cfg, now, err);
}

static int op_checkin(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		      const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	(void)c;
	(void)req;
	return room_checkin(r, d->cfg, now, err);
}

static int op_extend(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		     const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	int64_t s = 0;

	(void)c;
	if (req_int(req, "duration_s", 1, INT32_MIN, INT32_MAX, &s, err) < 0)
		return -1;
	return room_extend(r, d->cfg, s, now, err);
}

static int op_needles(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		      const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	int64_t delta = 0;

	(void)d;
	(void)c;
	(void)now;
	if (req_int(req, "delta", 1, -1000, 1000, &delta, err) < 0)
		return -1;
	return room_needles(r, (int)delta, err);
}

static int op_flag(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		   const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	unsigned flags;

	(void)d;
	(void)c;
	if (req_flags(req, 1, &flags, err) < 0)
		return -1;
	return room_flag(r, flags, now, err);
}

static int op_silence(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		      const struct acu_now *now, unsigned *warned,
		    struct acu_err *err)
{
	(void)warned;
	int64_t s = ACU_SILENCE_DEFAULT_S;

	(void)d;
	(void)c;
	if (req_int(req, "duration_s", 0, INT32_MIN, INT32_MAX, &s, err) < 0)
		return -1;
	return room_silence(r, s, now, err);
}

static int op_stim(struct acud *d, struct client *c, struct acu_room *r, json_t *req,
		   const struct acu_now *now, unsigned *warned, struct acu_err *err)
{
	int on = 0;

	(void)c;

	if (req_bool(req, "on", 1, &on, err) < 0)
		return -1;
	if (!on) {
		if (r->s.state == ST_IDLE)
			return acu_fail(err, E_INVALID_STATE, "room %s: no session", r->cfg->id);
		room_stim_stop(r);
		return 0;
	}
	return room_stim_on(r, d->cfg, now, warned, err);
}

#define SESSION_CMD(name, fn, needs)                                                    \
	static json_t *cmd_##fn(struct acud *d, struct client *c, json_t *req,          \
				struct acu_err *err)                                    \
	{                                                                               \
		return session_cmd(d, c, req, err, name, op_##fn, needs);               \
	}
SESSION_CMD("start", start, STARTS)
SESSION_CMD("pause", pause, CUTS_OR_KEEPS)
SESSION_CMD("resume", resume, STARTS)
SESSION_CMD("stop", stop, CUTS_OR_KEEPS)
SESSION_CMD("checkin", checkin, CUTS_OR_KEEPS)
SESSION_CMD("extend", extend, STARTS)
SESSION_CMD("needles", needles, CUTS_OR_KEEPS)
SESSION_CMD("flag", flag, CUTS_OR_KEEPS)
SESSION_CMD("silence", silence, CUTS_OR_KEEPS)
SESSION_CMD("stim", stim, ARMS_IF_ON)

/* finish records the whole session, as it was, in the history. */
static json_t *cmd_finish(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	struct acu_room *r = req_room(d, req, err), before;
	struct acu_now now = acu_now();
	const char *override = NULL;
	json_t *session, *rec;
	int64_t removed = 0;
	char msg[256];
	int rc;

	if (!r)
		return NULL;
	if (req_int(req, "removed", 1, INT32_MIN, INT32_MAX, &removed, err) < 0 ||
	    req_str(req, "override", 0, &override, err) < 0)
		return NULL;
	if (override && (strlen(override) < 1 || strlen(override) > 200))
		return acu_fail(err, E_BAD_REQUEST, "override: a reason of 1 to 200 characters"), NULL;
	memcpy(&before, r, sizeof before);
	room_tick(r, d->cfg, &now);
	session = roomjson_room(r, &now);
	rc = room_finish(r, (int)removed, override, &now, err);
	if (rc < 0) {
		json_decref(session);
		refusal(d, c, r, "finish", err);
		if (memcmp(&before, r, sizeof before) != 0 &&
		    commit_change(d, r, &before, &now, NULL, "finish", msg, sizeof msg) < 0)
			log_errx("%s", msg);
		return NULL;
	}
	rec = json_pack("{s:s,s:s,s:s,s:I,s:o}", "type", "session",
			"outcome", removed == before.s.needles ? "finished" : "override",
			"user", client_user(c), "removed", (json_int_t)removed, "session", session);
	if (override)
		json_object_set_new(rec, "override", json_string(override));
	if (commit_change(d, r, &before, &now, rec, "finish", msg, sizeof msg) < 0) {
		acu_fail(err, E_STORAGE, "the change took effect but could not be saved: %s", msg);
		return NULL;
	}
	return room_reply(d, r, &now);
}

/* --- read-only and administrative commands -------------------------------- */

static json_t *cmd_status(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	struct acu_now now = acu_now();
	json_t *rooms, *remote;

	(void)c;
	if (json_object_get(req, "room")) {
		struct acu_room *r = req_room(d, req, err);
		return r ? room_reply(d, r, &now) : NULL;
	}
	rooms = json_array();
	for (int i = 0; i < d->nrooms; i++)
		json_array_append_new(rooms, roomjson_cached(d, &d->rooms[i], &now));
	remote = mqtt_remote_json(d);
	return remote ? json_pack("{s:o,s:o}", "rooms", rooms, "remote", remote) :
			json_pack("{s:o}", "rooms", rooms);
}

static json_t *cmd_profiles(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	json_t *a = json_array();

	(void)c;
	(void)req;
	(void)err;
	for (int i = 0; i < d->cfg->nprofiles; i++)
		json_array_append_new(a, roomjson_profile(&d->cfg->profiles[i]));
	return json_pack("{s:o}", "profiles", a);
}

static json_t *cmd_profile(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	const struct acu_profile_cfg *p;
	const char *name = NULL;

	(void)c;
	if (req_str(req, "name", 1, &name, err) < 0)
		return NULL;
	p = cfg_profile(d->cfg, name);
	if (!p)
		return acu_fail(err, E_UNKNOWN_PROFILE, "no profile '%.64s'", name), NULL;
	return json_pack("{s:o}", "profile", roomjson_profile(p));
}

/* Marks a command's reply as deferred: it is sent by server_deferred_reply. */
static json_t deferred_marker;
#define REPLY_DEFERRED (&deferred_marker)

static json_t *make_reply(json_t *id, json_t *reply, const struct acu_err *err);

/* A history query ended on the worker thread (history.c): its reply. */
static void history_done(void *arg, json_t *entries, const struct acu_err *err)
{
	struct deferred *w = arg;
	json_t *id = server_deferred_id(w);

	server_deferred_reply(w, make_reply(id, entries ? json_pack("{s:o}", "entries", entries) :
					    NULL, err));
}

static void query_abandoned(void *job)
{
	history_query_cancel(job);
}

/* The files are read on a worker thread, however long the history: the
 * loop goes on with pulses, gates and other clients meanwhile. */
static json_t *cmd_history(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	const char *room = NULL;
	int64_t since = 0, limit = 100;
	json_t *v = json_object_get(req, "since");
	struct history_job *job;
	struct deferred *w;

	if (req_str(req, "room", 0, &room, err) < 0 ||
	    req_int(req, "limit", 0, 1, 1000, &limit, err) < 0)
		return NULL;
	if (room && !commit_room(d, room) && !acu_valid_ref(room))
		return acu_fail(err, E_BAD_REQUEST, "room: not a room id"), NULL;
	if (json_is_string(v)) {
		if (acu_parse_rfc3339(json_string_value(v), &since) < 0)
			return acu_fail(err, E_BAD_REQUEST,
					"since: expected RFC 3339 time or unix seconds"), NULL;
	} else if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 || json_integer_value(v) > INT64_MAX / NS_PER_SEC)
			return acu_fail(err, E_OUT_OF_RANGE, "since: out of range"), NULL;
		since = json_integer_value(v) * NS_PER_SEC;
	} else if (v) {
		return acu_fail(err, E_BAD_REQUEST, "since: expected RFC 3339 time or unix seconds"),
		       NULL;
	}
	w = server_defer(c, json_object_get(req, "id"));
	if (!w)
		return acu_fail(err, E_INTERNAL, "out of memory"), NULL;
	/* Every record made before this request is in its answer. */
	job = history_query_start(d->history, room, since, (int)limit,
				  d->persist ? persist_queued(d->persist) : 0, history_done, w, err);
	if (!job) {
		server_deferred_reply(w, NULL);
		return NULL;
	}
	/* A client that leaves does not keep the worker reading for nobody. */
	server_deferred_on_gone(w, query_abandoned, job);
	return REPLY_DEFERRED;
}

static json_t *cmd_reload(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	char msg[512];

	(void)req;
	log_notice("reload requested by %s", client_user(c));
	if (reload_config(d, msg, sizeof msg) < 0)
		return acu_fail(err, E_CONFIG, "%s", msg), NULL;
	return json_object();
}

static json_t *cmd_watch(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	(void)d;
	(void)req;
	(void)err;
	client_set_watching(c);
	return json_pack("{s:b}", "watching", 1);
}

static json_t *cmd_version(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	(void)d;
	(void)req;
	(void)err;
	return json_pack("{s:s,s:i,s:s,s:s}", "version", ACUD_VERSION, "protocol", ACUD_PROTOCOL,
			 "user", client_user(c), "role", acu_role_name(client_role(d, c)));
}

/* The level reaches the daemon through the line's fd, like a real edge. */
static json_t *cmd_sim_input(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	json_t *line = json_object_get(req, "line"), *lv = json_object_get(req, "level"), *v;
	int levels[16] = { 0 }, n = 0;
	char name[40], msg[256];
	size_t i;

	(void)c;
	if (d->cfg->backend != BACKEND_SIM)
		return acu_fail(err, E_UNSUPPORTED, "sim-input needs [gpio] backend = sim"), NULL;
	if (json_is_integer(line) && json_integer_value(line) >= 0 &&
	    json_integer_value(line) <= 100000)
		snprintf(name, sizeof name, "%lld", (long long)json_integer_value(line));
	else if (json_is_string(line) && strlen(json_string_value(line)) < sizeof name)
		snprintf(name, sizeof name, "%s", json_string_value(line));
	else
		return acu_fail(err, E_BAD_REQUEST, "line: expected a line offset or name"), NULL;
	/* A level, or a list of levels gone through faster than the daemon
	 * reads (a blip: S5's latch); -1: the input cannot be read (a broken
	 * line), for S5's tests. */
	if (json_is_array(lv)) {
		if (json_array_size(lv) < 1 || json_array_size(lv) > 16)
			return acu_fail(err, E_OUT_OF_RANGE, "level: a list of 1 to 16 levels"), NULL;
		json_array_foreach(lv, i, v) {
			if (!json_is_integer(v))
				return acu_fail(err, E_BAD_REQUEST, "level: expected integers"), NULL;
			if (json_integer_value(v) < -1 || json_integer_value(v) > 1)
				return acu_fail(err, E_OUT_OF_RANGE, "level: %lld outside -1..1",
						(long long)json_integer_value(v)), NULL;
			levels[n++] = (int)json_integer_value(v);
		}
	} else {
		int64_t one = 0;

		if (req_int(req, "level", 1, -1, 1, &one, err) < 0)
			return NULL;
		levels[n++] = (int)one;
	}
	if (gpio_sim_input(d->gpio, name, levels, n, msg, sizeof msg) < 0)
		return acu_fail(err, E_OUT_OF_RANGE, "%s", msg), NULL;
	/* The edge takes a real one's path (the line's fd, read latched) now,
	 * before the reply: a client that hears "ok" finds it handled. */
	stim_inputs_poll(d);
	return json_pack("{s:s,s:i}", "line", name, "level", levels[n - 1]);
}

/* SPEC §11: every configured line; with watch, the connection then streams
 * each input edge. */
static json_t *cmd_lines(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	int watch = 0;

	if (req_bool(req, "watch", 0, &watch, err) < 0)
		return NULL;
	if (watch)
		client_set_watching_lines(c);
	return json_pack("{s:o,s:b}", "lines", lines_list(d), "watching", watch);
}

/* SPEC §11: the room's alarm line through its patterns. Only the alarm line:
 * no test ever drives a gate or a pulse line. Refused while the room has a
 * session or an alarm, which the test would hide. */
#define TEST_DEFAULT_S 6
#define TEST_MIN_S 3
#define TEST_MAX_S 10
static json_t *cmd_test(struct acud *d, struct client *c, json_t *req, struct acu_err *err)
{
	struct acu_room *r = req_room(d, req, err);
	struct acu_now now = acu_now();
	const char *output = NULL;
	int64_t s = TEST_DEFAULT_S;
	char until[40];

	if (!r)
		return NULL;
	if (req_str(req, "output", 1, &output, err) < 0 ||
	    req_int(req, "duration_s", 0, TEST_MIN_S, TEST_MAX_S, &s, err) < 0)
		goto refused;
	if (!output || strcmp(output, "alarm") != 0) {
		acu_fail(err, E_BAD_REQUEST, "output: only 'alarm' can be tested (never a gate or "
			 "a pulse line)");
		goto refused;
	}
	if (!r->cfg->alarm.set) {
		acu_fail(err, E_UNSUPPORTED, "room %s has no alarm line", r->cfg->id);
		goto refused;
	}
	if (r->s.state != ST_IDLE) {
		acu_fail(err, E_INVALID_STATE, "room %s has a session (%s): no test while a patient "
			 "may be there", r->cfg->id, acu_state_name(r->s.state));
		goto refused;
	}
	if (room_alarm_level(r) != PRIO_NONE) {
		acu_fail(err, E_INVALID_STATE, "room %s has an active alarm: a test would hide it",
			 r->cfg->id);
		goto refused;
	}
	if (stim_lamp_test(d, r, s * NS_PER_SEC, &now) < 0) {
		acu_fail(err, E_INTERNAL, "room %s: its alarm line is not open", r->cfg->id);
		goto refused;
	}
	history_add(d, r->cfg->id, command_record(c, "test", req));
	log_notice("room %s: alarm line test for %llds by %s", r->cfg->id, (long long)s,
		   client_user(c));
	acu_rfc3339(now.wall + s * NS_PER_SEC, until, sizeof until);
	return json_pack("{s:s,s:s,s:I,s:s}", "room", r->cfg->id, "output", "alarm", "duration_s",
			 (json_int_t)s, "until", until);
refused:
	refusal(d, c, r, "test", err);
	return NULL;
}

static const char *const k_none[] = { NULL };
static const char *const k_room[] = { "room", NULL };
static const char *const k_start[] = { "room", "duration_s", "needles", "patient", "profile",
				       "flags", "stim", NULL };
static const char *const k_extend[] = { "room", "duration_s", NULL };
static const char *const k_finish[] = { "room", "removed", "override", NULL };
static const char *const k_stim[] = { "room", "on", NULL };
static const char *const k_flag[] = { "room", "flags", NULL };
static const char *const k_needles[] = { "room", "delta", NULL };
static const char *const k_profile[] = { "name", NULL };
static const char *const k_history[] = { "room", "since", "limit", NULL };
static const char *const k_sim[] = { "line", "level", NULL };
static const char *const k_lines[] = { "watch", NULL };
static const char *const k_test[] = { "room", "output", "duration_s", NULL };

/* READ_ONLY: answered at once even while a save is stuck (server.c keeps
 * each connection's replies in order). */
#define READ_ONLY 1
static const struct cmd cmds[] = {
	{ CMD_STATUS, ROLE_DESK, READ_ONLY, k_room, cmd_status },
	{ CMD_WATCH, ROLE_DESK, READ_ONLY, k_none, cmd_watch },
	{ CMD_PROFILES, ROLE_DESK, READ_ONLY, k_none, cmd_profiles },
	{ CMD_PROFILE, ROLE_DESK, READ_ONLY, k_profile, cmd_profile },
	{ CMD_VERSION, ROLE_DESK, READ_ONLY, k_none, cmd_version },
	{ CMD_START, ROLE_PRACTITIONER, 0, k_start, cmd_start },
	{ CMD_PAUSE, ROLE_PRACTITIONER, 0, k_room, cmd_pause },
	{ CMD_RESUME, ROLE_PRACTITIONER, 0, k_room, cmd_resume },
	{ CMD_EXTEND, ROLE_PRACTITIONER, 0, k_extend, cmd_extend },
	{ CMD_STOP, ROLE_PRACTITIONER, 0, k_room, cmd_stop },
	{ CMD_FINISH, ROLE_PRACTITIONER, 0, k_finish, cmd_finish },
	{ CMD_CHECKIN, ROLE_PRACTITIONER, 0, k_room, cmd_checkin },
	{ CMD_STIM, ROLE_PRACTITIONER, 0, k_stim, cmd_stim },
	{ CMD_FLAG, ROLE_PRACTITIONER, 0, k_flag, cmd_flag },
	{ CMD_NEEDLES, ROLE_PRACTITIONER, 0, k_needles, cmd_needles },
	{ CMD_SILENCE, ROLE_PRACTITIONER, 0, k_extend, cmd_silence },
	{ CMD_HISTORY, ROLE_PRACTITIONER, 0, k_history, cmd_history },
	{ CMD_RELOAD, ROLE_TECHNICIAN, 0, k_none, cmd_reload },
	/* The simulated world changes; the edge it makes is handled and
	 * committed like a real one, whose save this reply does not wait for
	 * (a cut stands at once, S9). */
	{ CMD_SIM_INPUT, ROLE_TECHNICIAN, READ_ONLY, k_sim, cmd_sim_input },
	{ CMD_LINES, ROLE_TECHNICIAN, READ_ONLY, k_lines, cmd_lines },
	/* Changes no room: only the lamp, for a few seconds. */
	{ CMD_TEST, ROLE_TECHNICIAN, READ_ONLY, k_test, cmd_test },
};

static json_t *error_reply(json_t *id, const struct acu_err *err)
{
	json_t *r = json_object();

	if (id)
		json_object_set(r, "id", id);
	json_object_set_new(r, "ok", json_false());
	json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code", acu_errcode_name(err->code),
						  "message", err->msg));
	return r;
}

static int check_keys(json_t *req, const struct cmd *cmd, struct acu_err *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(req, key, v) {
		int known = strcmp(key, "id") == 0 || strcmp(key, "cmd") == 0;
		for (const char *const *k = cmd->keys; !known && *k; k++)
			known = strcmp(key, *k) == 0;
		if (!known)
			return acu_fail(err, E_BAD_REQUEST, "%s: unknown key '%.40s'", acu_cmd_name(cmd->id), key);
	}
	return 0;
}

json_t *cmd_dispatch(struct acud *d, struct client *c, const char *line, size_t len)
{
	struct acu_err err = { E_INTERNAL, "" };
	const struct cmd *cmd = NULL;
	json_error_t jerr;
	json_t *req, *id = NULL, *v, *reply = NULL;
	const char *name;
	enum acu_role role;
	int changes = 0, k;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		acu_fail(&err, E_BAD_REQUEST, "malformed JSON: %s", jerr.text);
		client_read_only(c);
		return error_reply(NULL, &err);
	}
	if (!json_is_object(req)) {
		acu_fail(&err, E_BAD_REQUEST, "a request is a JSON object");
		goto out;
	}
	id = json_object_get(req, "id");
	if (id && (json_is_object(id) || json_is_array(id))) {
		id = NULL;
		acu_fail(&err, E_BAD_REQUEST, "id: expected a number or a string");
		goto out;
	}
	v = json_object_get(req, "cmd");
	if (!json_is_string(v)) {
		acu_fail(&err, E_BAD_REQUEST, "cmd: required, a string");
		goto out;
	}
	name = json_string_value(v);
	k = acu_cmd_parse(name);
	for (size_t i = 0; k >= 0 && i < sizeof cmds / sizeof cmds[0]; i++)
		if ((int)cmds[i].id == k)
			cmd = &cmds[i];
	if (!cmd) {
		acu_fail(&err, E_UNKNOWN_COMMAND, "unknown command '%.40s'", name);
		goto out;
	}
	role = client_role(d, c);
	if (role < cmd->role) {
		acu_fail(&err, E_FORBIDDEN, "%s needs the %s role; user %s has %s", acu_cmd_name(cmd->id),
			 acu_role_name(cmd->role), client_user(c),
			 role == ROLE_NONE ? "none" : acu_role_name(role));
		goto out;
	}
	if (check_keys(req, cmd, &err) < 0)
		goto out;
	/* S5: an interlock trip is handled before any request after it. */
	stim_inputs_poll(d);
	changes = !cmd->read_only;
	reply = cmd->fn(d, c, req, &err);
	if (reply == REPLY_DEFERRED) {
		json_decref(req);
		return NULL;
	}
out:
	/* A request refused before its command ran changed nothing either. */
	if (!changes)
		client_read_only(c);
	reply = make_reply(id, reply, &err);
	json_decref(req);
	return reply;
}

/* A command's result (taken) as the reply, or the error when it has none. */
static json_t *make_reply(json_t *id, json_t *reply, const struct acu_err *err)
{
	json_t *head;

	if (!reply)
		return error_reply(id, err);
	/* id and ok first, for people reading the socket by eye. */
	head = json_object();
	if (id)
		json_object_set(head, "id", id);
	json_object_set_new(head, "ok", json_true());
	json_object_update(head, reply);
	json_decref(reply);
	return head;
}

/* What every change to a room goes through: gates first, then the save, then
 * the history, alarms and watchers; the deadline timer's work; reload. Kept
 * apart from the process (acud.c) so the fuzz harness runs the same code. */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon.h"

struct acu_room *acud_room(struct acud *d, const char *id)
{
	for (int i = 0; i < d->nrooms; i++)
		if (strcmp(d->rooms[i].cfg->id, id) == 0)
			return &d->rooms[i];
	return NULL;
}

/* --- change propagation ----------------------------------------------------- */

static json_t *alarm_event(const struct acu_room *r, int k, const char *what)
{
	const struct acu_alarm *a = &r->alarm[k];
	char since[40];

	acu_rfc3339(a->since_wall, since, sizeof since);
	return json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "event", "alarm", "room", r->cfg->id,
			 "kind", acu_alarm_name(k), "priority", acu_priority_name(a->priority),
			 "active", a->active, "change", what, "since", since);
}

/* Every alarm raised, escalated or cleared goes to the history and the watchers. */
static void alarm_changes(struct acud *d, const struct acu_room *r, const struct acu_room *before)
{
	for (int k = 0; k < AL__N; k++) {
		const struct acu_alarm *a = &r->alarm[k], *b = &before->alarm[k];
		const char *what = NULL;
		json_t *ev, *rec;

		if (a->active && !b->active)
			what = "raised";
		else if (a->active && a->priority > b->priority)
			what = "escalated";
		else if (!a->active && b->active)
			what = "cleared";
		if (!what)
			continue;
		/* A cleared alarm is described as it was while active. */
		ev = alarm_event(a->active ? r : before, k, what);
		if (!a->active)
			json_object_set_new(ev, "active", json_false());
		rec = json_deep_copy(ev);
		json_object_del(rec, "event");
		json_object_set_new(rec, "type", json_string("alarm"));
		publish(d, PUBLISH_ALARM, ev);
		if (a->active || b->active)
			log_msg(a->active && a->priority == PRIO_HIGH ? LOG_WARNING : LOG_NOTICE,
				"room %s: alarm %s %s (%s)", r->cfg->id, acu_alarm_name(k), what,
				acu_priority_name(a->active ? a->priority : b->priority));
		history_add(d, NULL, rec);
	}
}

/* What a committed change tells the world: history, alarms, the room event. */
static void commit_report(struct acud *d, struct acu_room *r, const struct acu_room *before,
			  const struct acu_now *now, json_t *record)
{
	json_t *ev;

	if (record)
		history_add(d, r->cfg->id, record);
	alarm_changes(d, r, before);
	ev = json_pack("{s:s,s:o}", "event", "room", "room", room_json_cached(d, r, now));
	publish(d, PUBLISH_ROOM, ev);
}

static void storage_mark(struct acud *d, int failed, int low, const char *why,
			 const struct acu_now *now);

int acud_commit(struct acud *d, struct acu_room *r, const struct acu_room *before,
		const struct acu_now *now, json_t *record, const char *cause, char *err,
		size_t errlen)
{
	int rc;

	/* One history sync for everything this change writes. */
	d->history_batch++;
	stim_apply(d, r, now, cause);
	if ((r->s.flags ^ before->s.flags) & FL_HARD_MASK)
		state_journal_write(d);
	/* With the writer thread this only queues the save; its outcome comes
	 * back through acud_storage. Saved at once (start-up, the fuzz
	 * harness), a failure is handled here the same way. Never a rollback:
	 * the change stands, a cut above all (S7, S9), and the lines are
	 * driven from the state reported. */
	rc = state_save(d, now, err, errlen);
	if (rc < 0 || rc == STATE_SAVED_LOW)
		storage_mark(d, rc < 0, 1, err, now);
	else if (!d->persist && d->storage_bad)
		storage_mark(d, 0, 0, "", now);
	commit_report(d, r, before, now, record);
	acud_reschedule(d);
	d->history_batch--;
	history_flush(d);
	return rc < 0 ? -1 : 0;
}

/* --- storage (SPEC S9) ------------------------------------------------------ */

#define STORAGE_RETRY_S 2

/* Every room with a session carries the storage alarm while changes cannot
 * be saved; a state that could not be saved at all also cuts stimulation,
 * whose dose could not be accounted for after a crash. Edits rooms and
 * drives their lines; the caller reports. */
static void storage_mark(struct acud *d, int failed, int low, const char *why,
			 const struct acu_now *now)
{
	int bad = failed || low;

	if (bad && !d->storage_bad)
		log_errx("storage: %s; changes that start, resume, extend or arm are refused "
			"until a save succeeds", why);
	else if (!bad && d->storage_bad)
		log_notice("storage: saving again; the storage alarm is cleared");
	d->storage_bad = bad;
	if (bad)
		snprintf(d->storage_why, sizeof d->storage_why, "%s", why);
	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i];

		if (failed && r->s.stim.armed)
			room_stim_off(r, "storage");
		if (bad && r->s.state != ST_IDLE)
			room_alarm_raise(r, AL_STORAGE, PRIO_HIGH, now);
		else
			room_alarm_clear(r, AL_STORAGE);
		stim_apply(d, r, now, "storage");
	}
	if (d->storage_retry) {
		struct timeval tv = { STORAGE_RETRY_S, 0 };

		if (bad && !evtimer_pending(d->storage_retry, NULL))
			evtimer_add(d->storage_retry, &tv);
		else if (!bad)
			evtimer_del(d->storage_retry);
	}
}

void acud_storage(struct acud *d, const struct persist_report *rep)
{
	struct acu_now now = acu_now();
	struct acu_room *before;
	char msg[256];
	int changed = 0;

	if (!rep->failed && !rep->low && !d->storage_bad)
		return;
	before = xmalloc(sizeof *before * ((size_t)d->nrooms + 1));
	memcpy(before, d->rooms, sizeof *before * (size_t)d->nrooms);
	storage_mark(d, rep->failed, rep->low, rep->why, &now);
	d->history_batch++;
	for (int i = 0; i < d->nrooms; i++) {
		if (memcmp(&before[i], &d->rooms[i], sizeof before[i]) == 0)
			continue;
		commit_report(d, &d->rooms[i], &before[i], &now, NULL);
		changed = 1;
	}
	d->history_batch--;
	history_flush(d);
	free(before);
	if (changed && state_save(d, &now, msg, sizeof msg) < 0)
		log_errx("%s", msg);
	acud_reschedule(d);
}

/* A change that starts, resumes, extends or arms needs a disk that takes it:
 * the writer's last word, and the free space now (the disk may have filled
 * since the last save). */
int acud_storage_check(struct acud *d, struct acu_err *err)
{
	if (!d->storage_bad && state_space_low(d->cfg->state_dir)) {
		struct persist_report rep = { .low = 1 };

		snprintf(rep.why, sizeof rep.why, "%.200s: file system full", d->cfg->state_dir);
		acud_storage(d, &rep);
	}
	if (!d->storage_bad)
		return 0;
	return acu_fail(err, E_STORAGE, "changes cannot be saved (%.180s); stop, pause, stim off "
			"and flags still work", d->storage_why);
}

/* While storage is bad: save again now and then, so the alarm clears once the
 * disk takes a save (the writer retries waiting history at the same time). */
static void storage_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;
	struct acu_now now = acu_now();
	char msg[256];
	struct timeval tv = { STORAGE_RETRY_S, 0 };
	int rc;

	(void)fd;
	(void)what;
	if (!d->storage_bad)
		return;
	rc = state_save(d, &now, msg, sizeof msg);
	if (!d->persist && rc == STATE_SAVED) {
		struct persist_report rep = { 0 };

		acud_storage(d, &rep);
	}
	if (d->storage_bad)
		evtimer_add(d->storage_retry, &tv);
}

void acud_storage_init(struct acud *d)
{
	d->storage_retry = evtimer_new(d->base, storage_retry_cb, d);
	event_priority_set(d->storage_retry, ACU_PRIO_CLIENT);
}

/* Every room whose deadline passed has its gates driven first, then one save
 * covers them all: a second room's gate-off never waits for the first's fsync. */
void acud_deadlines(struct acud *d)
{
	struct acu_now now = acu_now();
	struct acu_room *before;
	unsigned char *changed;
	int any = 0;
	char msg[256];

	before = xmalloc(sizeof *before * ((size_t)d->nrooms + 1));
	changed = xcalloc((size_t)d->nrooms + 1, 1);
	d->history_batch++;
	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i];

		memcpy(&before[i], r, sizeof *r);
		if (!room_tick(r, d->cfg, &now))
			continue;
		stim_apply(d, r, &now, r->s.state == ST_DUE && before[i].s.state == ST_RUNNING ?
				       "expiry" : "tick");
		changed[i] = 1;
		any = 1;
	}
	/* A due timer is real even if it cannot be saved: the change stands. */
	if (any && state_save(d, &now, msg, sizeof msg) < 0)
		log_errx("%s", msg);
	for (int i = 0; i < d->nrooms; i++) {
		if (!changed[i])
			continue;
		commit_report(d, &d->rooms[i], &before[i], &now, NULL);
		if (d->rooms[i].s.state == ST_DUE && before[i].s.state == ST_RUNNING)
			log_notice("room %s: retention time over; needles still in",
				   d->rooms[i].cfg->id);
	}
	d->history_batch--;
	history_flush(d);
	free(before);
	free(changed);
	acud_reschedule(d);
}

/* One timer for the earliest deadline of any room: no wake-ups without work. */
void acud_reschedule(struct acud *d)
{
	int64_t next = ACU_NEVER, now, dt;
	struct timeval tv;

	for (int i = 0; i < d->nrooms; i++) {
		int64_t t = room_next_deadline(&d->rooms[i], d->cfg);
		if (t < next)
			next = t;
	}
	if (!d->deadline) /* the fuzz harness runs deadlines itself */
		return;
	if (next == ACU_NEVER) {
		event_del(d->deadline);
		return;
	}
	now = acu_mono_now();
	dt = next > now ? next - now : 0;
	/* Rounded up to the microsecond so the timer never fires just before. */
	dt = (dt + 999) / 1000;
	tv.tv_sec = (time_t)(dt / 1000000);
	tv.tv_usec = (suseconds_t)(dt % 1000000);
	event_add(d->deadline, &tv);
}

/* --- configuration -------------------------------------------------------- */

static gid_t group_gid(const char *name)
{
	struct group *g = name[0] ? getgrnam(name) : NULL;

	return g ? g->gr_gid : (gid_t)-1;
}

void acud_apply_access(struct acud *d)
{
	const char *missing[3];
	int n = 0;

	d->desk_gid = group_gid(d->cfg->desk_group);
	d->practitioner_gid = group_gid(d->cfg->practitioner_group);
	d->technician_gid = group_gid(d->cfg->technician_group);
	if (d->desk_gid == (gid_t)-1)
		missing[n++] = d->cfg->desk_group;
	if (d->practitioner_gid == (gid_t)-1)
		missing[n++] = d->cfg->practitioner_group;
	if (d->technician_gid == (gid_t)-1)
		missing[n++] = d->cfg->technician_group;
	/* Normal in a checkout (make demo): said once, as what it means. */
	if (n == 3)
		log_info("access: none of the groups %s, %s, %s exists: only root and uid %u "
			 "have a role (fine for a demo; see [access] in acud.conf(5))",
			 missing[0], missing[1], missing[2], (unsigned)d->self_uid);
	else
		for (int i = 0; i < n; i++)
			log_info("access: no group %s: nobody has that role through it", missing[i]);
	log_set_level(d->cfg->log_level);
}

/* Rooms with a session keep it and may not be removed or rewired; everything
 * else takes the new config. */
int acud_reload(struct acud *d, char *err, size_t errlen)
{
	struct acu_cfg *cfg, *old_cfg;
	struct acu_room *rooms, *old_rooms;
	struct acu_now now = acu_now();
	int old_nrooms;
	char msg[256];

	notify("RELOADING=1");
	cfg = cfg_load(d->config_path, err, errlen);
	if (!cfg)
		goto fail;
	for (int i = 0; i < d->nrooms; i++) {
		const struct acu_room *r = &d->rooms[i];
		const struct acu_room_cfg *nr = cfg_room(cfg, r->cfg->id);

		if (r->s.state == ST_IDLE)
			continue;
		if (!nr || !cfg_room_same_wiring(r->cfg, nr)) {
			snprintf(err, errlen, "room %s has a %s session: it cannot be %s until finish",
				 r->cfg->id, acu_state_name(r->s.state), nr ? "rewired" : "removed");
			goto fail;
		}
	}
	if (stim_reload_check(d, cfg, err, errlen) < 0)
		goto fail;
	if (strcmp(cfg->socket, d->cfg->socket) || strcmp(cfg->state_dir, d->cfg->state_dir))
		log_warnx("reload: socket and state_dir changes take effect at restart");
	snprintf(cfg->socket, sizeof cfg->socket, "%s", d->cfg->socket);
	snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", d->cfg->state_dir);
	rooms = calloc((size_t)cfg->nrooms + 1, sizeof *rooms);
	if (!rooms) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < cfg->nrooms; i++) {
		struct acu_room *old = acud_room(d, cfg->rooms[i].id);

		if (old)
			memcpy(&rooms[i], old, sizeof rooms[i]);
		else
			room_init(&rooms[i], &cfg->rooms[i]);
		rooms[i].cfg = &cfg->rooms[i];
		rooms[i].gpio_fault = 0; /* S7: a reload clears a GPIO fault */
		room_alarm_clear(&rooms[i], AL_GPIO_FAULT);
	}
	old_cfg = d->cfg;
	old_rooms = d->rooms;
	old_nrooms = d->nrooms;
	d->cfg = cfg;
	d->rooms = rooms;
	d->nrooms = cfg->nrooms;
	if (stim_reload(d, old_cfg, old_rooms, old_nrooms, msg, sizeof msg) < 0) {
		/* The new lines could not be had: back to the running config and its
		 * lines, and the reload is refused (SPEC §5). */
		char again[512];
		struct acu_cfg *new_cfg = d->cfg;
		struct acu_room *new_rooms = d->rooms;

		d->cfg = old_cfg;
		d->rooms = old_rooms;
		d->nrooms = old_nrooms;
		if (stim_open(d, again, sizeof again) == 0) {
			for (int i = 0; i < d->nrooms; i++)
				stim_apply(d, &d->rooms[i], &now, "reload");
			free(new_rooms);
			snprintf(err, errlen, "%s", msg);
			goto fail;
		}
		log_errx("reload: %s; the running lines cannot be had again: %s", msg, again);
		d->cfg = new_cfg;
		d->rooms = new_rooms;
		d->nrooms = new_cfg->nrooms;
		for (int i = 0; i < d->nrooms; i++) {
			d->rooms[i].gpio_fault = 1;
			room_stim_off(&d->rooms[i], "gpio-fault");
			room_alarm_raise(&d->rooms[i], AL_GPIO_FAULT, PRIO_HIGH, &now);
		}
	}
	for (int i = 0; i < d->nrooms; i++)
		for (int j = 0; j < old_nrooms; j++)
			if (strcmp(old_rooms[j].cfg->id, d->rooms[i].cfg->id) == 0)
				alarm_changes(d, &d->rooms[i], &old_rooms[j]);
	room_cache_clear(d);
	d->cfg_gen++;
	free(old_rooms);
	cfg_free(old_cfg);
	acud_apply_access(d);
	if (d->history)
		history_set_keep(d->history, cfg->history_keep);
	if (state_save(d, &now, msg, sizeof msg) < 0)
		log_errx("%s", msg);
	acud_reschedule(d);
	log_notice("reload: %s applied: %d rooms, %d profiles", d->config_path, cfg->nrooms,
		   cfg->nprofiles);
	notify("READY=1");
	return 0;
fail:
	if (cfg)
		cfg_free(cfg);
	log_errx("reload: %s; keeping the running configuration", err);
	notify("READY=1");
	return -1;
}


/* What every change to a room goes through: gates first, then the save, then
 * the history, alarms and what is published; and the deadline timer's work.
 * Kept apart from the process (acud.c) so the fuzz harness runs the same
 * code; storage.c and reload.c are its neighbours. */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon.h"

struct acu_room *commit_room(struct acud *d, const char *id)
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
void commit_alarms(struct acud *d, const struct acu_room *r, const struct acu_room *before)
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
void commit_report(struct acud *d, struct acu_room *r, const struct acu_room *before,
		   const struct acu_now *now, json_t *record)
{
	json_t *ev;

	if (record)
		history_add(d, r->cfg->id, record);
	commit_alarms(d, r, before);
	ev = json_pack("{s:s,s:o}", "event", "room", "room", roomjson_cached(d, r, now));
	publish(d, PUBLISH_ROOM, ev);
}

/* The first half of a change: its outputs, before anything is built or saved
 * (a command's history record included), so that a cut waits for nothing. */
void commit_outputs(struct acud *d, struct acu_room *r, const struct acu_now *now,
		    const char *cause)
{
	/* One history sync for everything this change writes. */
	d->history_batch++;
	stim_apply(d, r, now, cause);
}

/* The second half: the save, then what the change tells the world. */
int commit_finish(struct acud *d, struct acu_room *r, const struct acu_room *before,
		  const struct acu_now *now, json_t *record, char *err, size_t errlen)
{
	int rc;

	if ((r->s.flags ^ before->s.flags) & FL_HARD_MASK)
		state_journal_write(d);
	/* With the writer thread this only queues the save; its outcome comes
	 * back through storage_report. Saved at once (start-up, the fuzz
	 * harness), a failure is handled here the same way. Never a rollback:
	 * the change stands, a cut above all (S7, S9), and the lines are
	 * driven from the state reported. */
	rc = state_save(d, now, err, errlen);
	if (rc < 0 || rc == STATE_SAVED_LOW)
		storage_mark(d, rc < 0, 1, err, now);
	else if (!d->persist && d->storage_bad)
		storage_mark(d, 0, 0, "", now);
	commit_report(d, r, before, now, record);
	commit_reschedule(d);
	d->history_batch--;
	history_flush(d);
	return rc < 0 ? -1 : 0;
}

int commit_change(struct acud *d, struct acu_room *r, const struct acu_room *before,
		  const struct acu_now *now, json_t *record, const char *cause, char *err,
		  size_t errlen)
{
	commit_outputs(d, r, now, cause);
	return commit_finish(d, r, before, now, record, err, errlen);
}

/* Every room whose deadline passed has its gates driven first, then one save
 * covers them all: a second room's gate-off never waits for the first's fsync. */
void commit_deadlines(struct acud *d)
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
	commit_reschedule(d);
}

/* One timer for the earliest deadline of any room: no wake-ups without work. */
void commit_reschedule(struct acud *d)
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


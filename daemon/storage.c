/* S9: what the writer thread reports about the disk, the storage alarm, the
 * refusal of changes that start, resume, extend or arm while nothing can be
 * saved, and the retries until a save works. */
#include <string.h>

#include <event2/event.h>

#include "daemon.h"

#define STORAGE_RETRY_S 2

/* Every room with a session carries the storage alarm while changes cannot
 * be saved; a state that could not be saved at all also cuts stimulation,
 * whose dose could not be accounted for after a crash. Edits rooms and
 * drives their lines; the caller reports. */
void storage_mark(struct acud *d, int failed, int low, const char *why, const struct acu_now *now)
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

void storage_report(struct acud *d, const struct persist_report *rep)
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
	commit_reschedule(d);
}

/* A change that starts, resumes, extends or arms needs a disk that takes it:
 * the writer's last word, and the free space now (the disk may have filled
 * since the last save). */
int storage_check(struct acud *d, struct acu_err *err)
{
	if (!d->storage_bad && state_space_low(d->cfg->state_dir)) {
		struct persist_report rep = { .low = 1 };

		snprintf(rep.why, sizeof rep.why, "%.200s: file system full", d->cfg->state_dir);
		storage_report(d, &rep);
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

		storage_report(d, &rep);
	}
	if (d->storage_bad)
		evtimer_add(d->storage_retry, &tv);
}

void storage_init(struct acud *d)
{
	d->storage_retry = evtimer_new(d->base, storage_retry_cb, d);
	event_priority_set(d->storage_retry, ACU_PRIO_CLIENT);
}


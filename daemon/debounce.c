/* The room buttons' debounce (debounce.h): pure, time given by the caller. */
#include "debounce.h"

void debounce_init(struct debounce *db, int stable)
{
	db->stable = db->raw = !!stable;
	db->last_edge = db->last_read = 0;
}

int debounce_settle(struct debounce *db, int64_t now, int64_t period)
{
	if (db->raw == db->stable || now - db->last_edge < period)
		return 0;
	db->stable = db->raw;
	return db->stable ? DEBOUNCE_ROSE : DEBOUNCE_FELL;
}

int debounce_feed(struct debounce *db, int level, int edges, int64_t now, int64_t period,
		  int latest)
{
	int accepted = 0;

	level = !!level;
	if (edges > 0 || level != db->raw) {
		accepted = debounce_settle(db, latest ? now : db->last_read, period);
		db->raw = level;
		db->last_edge = now;
	} else {
		accepted = debounce_settle(db, now, period);
	}
	db->last_read = now;
	return accepted;
}

int64_t debounce_next(const struct debounce *db, int64_t period)
{
	if (db->raw == db->stable)
		return INT64_MAX;
	return db->last_edge + period;
}

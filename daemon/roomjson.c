/* The room and profile objects of SPEC §6, built with jansson. */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/* Everything in a room object that moves with the clock, in the units the
 * object shows (whole seconds). A room object is a function of the room, its
 * config and this; the cache below relies on it. */
struct room_time {
	int64_t ends_at_s, checkin_s;  /* wall seconds; ACU_NEVER: null */
	int64_t remaining_s, overdue_s, paused_s;
	int64_t delivered_s[ACU_MAX_CHANNELS];
	int64_t silenced_s[AL__N];     /* wall seconds; ACU_NEVER: null */
};

/* A monotonic instant as wall-clock seconds, relative to now. */
static int64_t mono_wall_s(int64_t mono, const struct acu_now *now)
{
	return (now->wall + (mono - now->mono)) / NS_PER_SEC;
}

static void room_time_of(const struct acu_room *r, const struct acu_now *now,
			 struct room_time *t)
{
	const struct acu_session *s = &r->s;
	int64_t paused = s->paused_ns;

	memset(t, 0, sizeof *t);
	t->ends_at_s = t->checkin_s = ACU_NEVER;
	if (s->state == ST_RUNNING)
		t->ends_at_s = mono_wall_s(s->end, now);
	else if (s->state == ST_DUE)
		t->ends_at_s = mono_wall_s(s->due_since, now);
	if (s->state == ST_RUNNING && s->checkin_due)
		t->checkin_s = mono_wall_s(s->checkin_due, now);
	if (s->state == ST_PAUSED)
		paused += now->mono - s->paused_since;
	t->remaining_s = room_remaining_s(r, now->mono);
	t->overdue_s = room_overdue_s(r, now->mono);
	t->paused_s = paused / NS_PER_SEC;
	for (int c = 0; c < r->cfg->nchannels && c < ACU_MAX_CHANNELS; c++) {
		const struct acu_channel *ch = &s->stim.ch[c];

		t->delivered_s[c] = (ch->delivered_ns + (ch->on ? now->mono - ch->on_since : 0)) /
				    NS_PER_SEC;
	}
	for (int k = 0; k < AL__N; k++) {
		const struct acu_alarm *al = &r->alarm[k];

		t->silenced_s[k] = al->active && al->silenced_until > now->mono ?
				   mono_wall_s(al->silenced_until, now) : ACU_NEVER;
	}
}

static json_t *wall_json(int64_t wall_ns)
{
	char buf[40];

	acu_rfc3339(wall_ns, buf, sizeof buf);
	return json_string(buf);
}

static json_t *wall_s_json(int64_t wall_s)
{
	return wall_s == ACU_NEVER ? json_null() : wall_json(wall_s * NS_PER_SEC);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

json_t *roomjson_flags(unsigned flags)
{
	json_t *a = json_array();

	for (int i = 0; i < FL__N; i++)
		if (flags & (1u << i))
			json_array_append_new(a, json_string(acu_flag_name(i)));
	return a;
}

static json_t *stim_json(const struct acu_room *r, const struct room_time *t)
{
	const struct acu_stim *st = &r->s.stim;
	json_t *chans = json_array();
	int any_on = 0;

	for (int c = 0; c < r->cfg->nchannels; c++) {
		const struct acu_channel *ch = &st->ch[c];

		any_on |= ch->on;
		json_array_append_new(chans, json_pack("{s:i,s:b,s:I,s:I,s:I}", "channel", c + 1,
						       "on", ch->on,
						       "delivered_s", (json_int_t)t->delivered_s[c],
						       "pulses", (json_int_t)ch->pulses,
						       "missed_pulses", (json_int_t)ch->missed));
	}
	return json_pack("{s:b,s:b,s:o,s:o,s:b,s:I}", "armed", st->armed, "on", any_on,
			 "channels", chans, "blocked", str_or_null(st->blocked),
			 "pulse_lines", r->cfg->npulse > 0, "missed_pulses", (json_int_t)st->missed);
}

static json_t *alarms_json(const struct acu_room *r, const struct room_time *t)
{
	json_t *a = json_array();

	for (int k = 0; k < AL__N; k++) {
		const struct acu_alarm *al = &r->alarm[k];
		if (!al->active)
			continue;
		json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:o}", "kind", acu_alarm_name(k),
						   "priority", acu_priority_name(al->priority),
						   "since", wall_json(al->since_wall),
						   "silenced_until", wall_s_json(t->silenced_s[k])));
	}
	return a;
}

static json_t *room_json_at(const struct acu_room *r, const struct room_time *t)
{
	const struct acu_session *s = &r->s;
	int idle = s->state == ST_IDLE;

	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:i,s:o,s:o,s:o,s:o,s:i,"
			 "s:o,s:o,s:s}",
			 "id", r->cfg->id, "name", r->cfg->name, "state", acu_state_name(s->state),
			 "patient", str_or_null(s->patient),
			 "practitioner", str_or_null(s->practitioner),
			 "started_at", idle ? json_null() : wall_json(s->started_wall),
			 "ends_at", wall_s_json(t->ends_at_s),
			 "duration_s", (json_int_t)s->duration_s,
			 "remaining_s", (json_int_t)t->remaining_s,
			 "overdue_s", (json_int_t)t->overdue_s,
			 "paused_s", (json_int_t)t->paused_s,
			 "needles", s->needles,
			 "profile", str_or_null(s->profile),
			 "flags", roomjson_flags(s->flags),
			 "stim", stim_json(r, t),
			 "checkin_due_at", wall_s_json(t->checkin_s),
			 "checkins", s->checkins,
			 "alarms", alarms_json(r, t),
			 "attention", str_or_null(r->attention),
			 "alarm_level", acu_priority_name(room_alarm_level(r)));
}

json_t *roomjson_room(const struct acu_room *r, const struct acu_now *now)
{
	struct room_time t;

	room_time_of(r, now, &t);
	return room_json_at(r, &t);
}

/* The last object built for each room, reused while the room (every byte of
 * it), its config and what the clock shows of it are unchanged: `status`
 * is asked far more often than a room changes or a second passes. The object
 * is shared, so never modified once built. */
struct room_cache {
	struct acu_room room;
	struct room_time t;
	uint64_t cfg_gen;
	json_t *obj;
	char *text;                    /* obj encoded, made on first use */
	size_t textlen;
};

json_t *roomjson_cached(struct acud *d, const struct acu_room *r, const struct acu_now *now)
{
	struct room_cache *e;
	struct room_time t;
	ptrdiff_t i = r - d->rooms;

	if (i < 0 || i >= d->nrooms)
		return roomjson_room(r, now);
	if (!d->room_cache) {
		d->room_cache = calloc((size_t)d->nrooms, sizeof *d->room_cache);
		if (!d->room_cache)
			return roomjson_room(r, now);
		d->room_cache_n = d->nrooms;
	}
	e = &d->room_cache[i];
	room_time_of(r, now, &t);
	if (e->obj && e->cfg_gen == d->cfg_gen && memcmp(&e->t, &t, sizeof t) == 0 &&
	    memcmp(&e->room, r, sizeof *r) == 0)
		return json_incref(e->obj);
	json_decref(e->obj);
	free(e->text);
	e->text = NULL;
	e->obj = room_json_at(r, &t);
	if (!e->obj)
		return NULL;
	memcpy(&e->room, r, sizeof *r);
	e->t = t;
	e->cfg_gen = d->cfg_gen;
	return json_incref(e->obj);
}

/* The compact JSON text of v when v is a room object the cache holds (the
 * text is the encoder's own, made once per change of the room); NULL
 * otherwise. *hint is where to look first: rooms are asked for in order. */
const char *roomjson_text(struct acud *d, const json_t *v, size_t *len, int *hint)
{
	for (int k = 0; k < d->room_cache_n; k++) {
		struct room_cache *e = &d->room_cache[(*hint + k) % d->room_cache_n];

		if (e->obj != v)
			continue;
		if (!e->text) {
			e->text = json_dumps(v, JSON_COMPACT);
			if (!e->text)
				return NULL;
			e->textlen = strlen(e->text);
		}
		*hint = (int)(e - d->room_cache) + 1;
		*len = e->textlen;
		return e->text;
	}
	return NULL;
}

/* After a reload (rooms added, removed, reordered) and at exit. */
void roomjson_clear(struct acud *d)
{
	if (!d->room_cache)
		return;
	for (int i = 0; i < d->room_cache_n; i++) {
		json_decref(d->room_cache[i].obj);
		free(d->room_cache[i].text);
	}
	free(d->room_cache);
	d->room_cache = NULL;
	d->room_cache_n = 0;
}

json_t *roomjson_profile(const struct acu_profile_cfg *p)
{
	json_t *chans = json_array();

	for (int c = 0; c < ACU_MAX_CHANNELS; c++)
		if (p->channels & (1u << c))
			json_array_append_new(chans, json_integer(c + 1));
	return json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:o,s:o,s:b}",
			 "name", p->name, "description", p->description,
			 "mode", cfg_mode_name(p->mode), "frequency_hz", p->frequency_hz,
			 "alt_frequency_hz", p->alt_frequency_hz, "switch_s", p->switch_s,
			 "on_s", p->on_s, "off_s", p->off_s, "pulse_width_us", p->pulse_width_us,
			 "delay_s", (json_int_t)p->delay_s,
			 "duration_s", p->duration_s ? json_integer(p->duration_s) : json_null(),
			 "channels", p->channels ? chans : (json_decref(chans), json_null()),
			 "pregnancy_safe", p->pregnancy_safe);
}

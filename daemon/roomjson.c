/* The room and profile objects of SPEC §6, built with jansson. */
#include "daemon.h"

static json_t *wall_json(int64_t wall_ns)
{
	char buf[40];

	acu_rfc3339(wall_ns, buf, sizeof buf);
	return json_string(buf);
}

/* A monotonic instant shown as wall-clock time, relative to now. */
static json_t *mono_json(int64_t mono, const struct acu_now *now)
{
	return wall_json(now->wall + (mono - now->mono));
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

json_t *flags_json(unsigned flags)
{
	json_t *a = json_array();

	for (int i = 0; i < FL__N; i++)
		if (flags & (1u << i))
			json_array_append_new(a, json_string(acu_flag_name(i)));
	return a;
}

static json_t *stim_json(const struct acu_room *r, const struct acu_now *now)
{
	const struct acu_stim *st = &r->s.stim;
	json_t *chans = json_array();
	int any_on = 0;

	for (int c = 0; c < r->cfg->nchannels; c++) {
		const struct acu_channel *ch = &st->ch[c];
		int64_t ns = ch->delivered_ns;

		if (ch->on)
			ns += now->mono - ch->on_since;
		any_on |= ch->on;
		json_array_append_new(chans, json_pack("{s:i,s:b,s:I,s:I}", "channel", c + 1,
						       "on", ch->on,
						       "delivered_s", (json_int_t)(ns / NS_PER_SEC),
						       "pulses", (json_int_t)ch->pulses));
	}
	return json_pack("{s:b,s:b,s:o,s:o,s:b,s:I}", "armed", st->armed, "on", any_on,
			 "channels", chans, "blocked", str_or_null(st->blocked),
			 "pulse_lines", r->cfg->npulse > 0, "missed_pulses", (json_int_t)st->missed);
}

static json_t *alarms_json(const struct acu_room *r, const struct acu_now *now)
{
	json_t *a = json_array();

	for (int k = 0; k < AL__N; k++) {
		const struct acu_alarm *al = &r->alarm[k];
		if (!al->active)
			continue;
		json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:o}", "kind", acu_alarm_name(k),
						   "priority", acu_priority_name(al->priority),
						   "since", wall_json(al->since_wall),
						   "silenced_until",
						   al->silenced_until > now->mono ?
						   mono_json(al->silenced_until, now) : json_null()));
	}
	return a;
}

json_t *room_json(const struct acu_room *r, const struct acu_now *now)
{
	const struct acu_session *s = &r->s;
	int idle = s->state == ST_IDLE;
	json_t *ends_at = json_null(), *checkin = json_null();
	int64_t paused = s->paused_ns;

	if (s->state == ST_RUNNING)
		ends_at = mono_json(s->end, now);
	else if (s->state == ST_DUE)
		ends_at = mono_json(s->due_since, now);
	if (s->state == ST_PAUSED)
		paused += now->mono - s->paused_since;
	if (s->state == ST_RUNNING && s->checkin_due)
		checkin = mono_json(s->checkin_due, now);

	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:i,s:o,s:o,s:o,s:o,s:i,"
			 "s:o,s:o,s:s}",
			 "id", r->cfg->id, "name", r->cfg->name, "state", acu_state_name(s->state),
			 "patient", str_or_null(s->patient),
			 "practitioner", str_or_null(s->practitioner),
			 "started_at", idle ? json_null() : wall_json(s->started_wall),
			 "ends_at", ends_at,
			 "duration_s", (json_int_t)s->duration_s,
			 "remaining_s", (json_int_t)room_remaining_s(r, now->mono),
			 "overdue_s", (json_int_t)room_overdue_s(r, now->mono),
			 "paused_s", (json_int_t)(paused / NS_PER_SEC),
			 "needles", s->needles,
			 "profile", str_or_null(s->profile),
			 "flags", flags_json(s->flags),
			 "stim", stim_json(r, now),
			 "checkin_due_at", checkin,
			 "checkins", s->checkins,
			 "alarms", alarms_json(r, now),
			 "attention", str_or_null(r->attention),
			 "alarm_level", acu_priority_name(room_alarm_level(r)));
}

json_t *profile_json(const struct acu_profile_cfg *p)
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

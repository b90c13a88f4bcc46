/* The session state machine of SPEC §2 and the alarms of §4, as pure functions of
 * the room, the config and the time they are given. */
#include <stdio.h>
#include <string.h>

#include "gate.h"
#include "room.h"

void room_init(struct acu_room *r, const struct acu_room_cfg *cfg)
{
	memset(r, 0, sizeof *r);
	r->cfg = cfg;
	r->s.state = ST_IDLE;
}

void room_alarm_raise(struct acu_room *r, enum acu_alarm_kind k, enum acu_priority p,
		      const struct acu_now *now)
{
	struct acu_alarm *a = &r->alarm[k];

	if (a->active && a->priority >= p)
		return;
	/* A new alarm, or one rising in priority, is never silenced (SPEC §4). */
	if (p > room_alarm_level(r))
		for (int i = 0; i < AL__N; i++)
			r->alarm[i].silenced_until = 0;
	if (!a->active) {
		a->since_mono = now->mono;
		a->since_wall = now->wall;
	}
	a->active = 1;
	a->priority = p;
	a->silenced_until = 0;
}

void room_alarm_clear(struct acu_room *r, enum acu_alarm_kind k)
{
	memset(&r->alarm[k], 0, sizeof r->alarm[k]);
}

enum acu_priority room_alarm_level(const struct acu_room *r)
{
	enum acu_priority p = PRIO_NONE;

	for (int i = 0; i < AL__N; i++)
		if (r->alarm[i].active && r->alarm[i].priority > p)
			p = r->alarm[i].priority;
	return p;
}

/* Silenced while every alarm at the highest active priority is silenced. */
int room_silenced(const struct acu_room *r, int64_t mono)
{
	enum acu_priority top = room_alarm_level(r);

	if (top == PRIO_NONE)
		return 0;
	for (int i = 0; i < AL__N; i++) {
		const struct acu_alarm *a = &r->alarm[i];
		if (a->active && a->priority == top && a->silenced_until <= mono)
			return 0;
	}
	return 1;
}

static void stim_disarm(struct acu_room *r)
{
	r->s.stim.armed = 0;
}

static void checkin_restart(struct acu_room *r, const struct acu_cfg *cfg, int64_t mono)
{
	r->s.checkin_due = cfg->checkin_interval > 0 ? mono + cfg->checkin_interval * NS_PER_SEC : 0;
}

static int need_session(const struct acu_room *r, struct acu_err *err)
{
	if (r->s.state == ST_IDLE)
		return acu_fail(err, E_INVALID_STATE, "room %s: no session", r->cfg->id);
	return 0;
}

int room_start(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_start *req,
	       const struct acu_now *now, struct acu_err *err)
{
	const char *id = r->cfg->id;
	struct acu_session *s = &r->s;

	if (s->state != ST_IDLE)
		return acu_fail(err, E_INVALID_STATE, "room %s: a session is already %s", id,
				acu_state_name(s->state));
	if (req->duration_s < cfg->session_min || req->duration_s > cfg->session_max)
		return acu_fail(err, E_OUT_OF_RANGE,
				"duration %llds outside %llds..%llds ([limits] session_min/session_max)",
				(long long)req->duration_s, (long long)cfg->session_min,
				(long long)cfg->session_max);
	if (req->needles < 0 && cfg->require_needle_count)
		return acu_fail(err, E_BAD_REQUEST, "needles: the needle count is required");
	if (req->needles > ACU_NEEDLES_MAX || (req->needles == 0 && cfg->require_needle_count))
		return acu_fail(err, E_OUT_OF_RANGE, "needles: must be 1..%d", ACU_NEEDLES_MAX);
	if (req->patient && !acu_valid_ref(req->patient))
		return acu_fail(err, E_BAD_REQUEST,
				"patient: a chart code of 1 to 32 of A-Z a-z 0-9 . _ -");
	if (req->profile && !cfg_profile(cfg, req->profile))
		return acu_fail(err, E_UNKNOWN_PROFILE, "no profile '%s'", req->profile);

	memset(s, 0, sizeof *s);
	s->state = ST_RUNNING;
	if (req->patient)
		strncpy(s->patient, req->patient, sizeof s->patient - 1);
	if (req->practitioner)
		strncpy(s->practitioner, req->practitioner, sizeof s->practitioner - 1);
	if (req->profile)
		strncpy(s->profile, req->profile, sizeof s->profile - 1);
	s->started_wall = now->wall;
	s->duration_s = req->duration_s;
	s->end = now->mono + req->duration_s * NS_PER_SEC;
	s->needles = req->needles < 0 ? 0 : req->needles;
	s->flags = req->flags & ((1u << FL__N) - 1);
	checkin_restart(r, cfg, now->mono);
	r->attention[0] = '\0';
	room_alarm_clear(r, AL_ATTENTION);
	/* Alarms of the previous session are gone with it; a GPIO fault and a
	 * tripped interlock belong to the room and stay. */
	room_alarm_clear(r, AL_DUE);
	room_alarm_clear(r, AL_CHECKIN);
	room_alarm_clear(r, AL_NEEDLE_MISMATCH);
	return 0;
}

int room_pause(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
	       struct acu_err *err)
{
	struct acu_session *s = &r->s;

	(void)cfg;
	if (s->state != ST_RUNNING)
		return acu_fail(err, E_INVALID_STATE, "room %s: pause needs a running session, it is %s",
				r->cfg->id, acu_state_name(s->state));
	s->state = ST_PAUSED;
	s->remaining = s->end - now->mono;
	if (s->remaining < 0)
		s->remaining = 0;
	s->paused_since = now->mono;
	s->checkin_left = s->checkin_due ? s->checkin_due - now->mono : 0;
	if (s->checkin_due && s->checkin_left < 1)
		s->checkin_left = 1;
	s->checkin_due = 0;
	stim_disarm(r);
	return 0;
}

int room_resume(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
		struct acu_err *err)
{
	struct acu_session *s = &r->s;

	(void)cfg;
	if (s->state != ST_PAUSED)
		return acu_fail(err, E_INVALID_STATE, "room %s: resume needs a paused session, it is %s",
				r->cfg->id, acu_state_name(s->state));
	s->state = ST_RUNNING;
	s->end = now->mono + s->remaining;
	s->paused_ns += now->mono - s->paused_since;
	s->remaining = 0;
	s->paused_since = 0;
	s->checkin_due = s->checkin_left ? now->mono + s->checkin_left : 0;
	s->checkin_left = 0;
	return 0;
}

static void become_due(struct acu_room *r, int64_t due_since, const struct acu_now *now)
{
	struct acu_session *s = &r->s;

	s->state = ST_DUE;
	s->due_since = due_since;
	s->end = 0;
	s->remaining = 0;
	s->checkin_due = 0;
	s->checkin_left = 0;
	stim_disarm(r);
	room_alarm_clear(r, AL_CHECKIN);
	room_alarm_raise(r, AL_DUE, PRIO_MEDIUM, now);
	/* The alarm dates from the deadline even when noticed late (after a restart). */
	r->alarm[AL_DUE].since_wall = now->wall - (now->mono - due_since);
	r->alarm[AL_DUE].since_mono = due_since;
}

int room_stop(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
	      struct acu_err *err)
{
	struct acu_session *s = &r->s;

	(void)cfg;
	if (s->state != ST_RUNNING && s->state != ST_PAUSED)
		return acu_fail(err, E_INVALID_STATE, "room %s: stop needs a running or paused session, it is %s",
				r->cfg->id, acu_state_name(s->state));
	if (s->state == ST_PAUSED)
		s->paused_ns += now->mono - s->paused_since;
	s->paused_since = 0;
	/* Needles are still in: the room stays on the board as due until finish. */
	become_due(r, now->mono, now);
	return 0;
}

int room_extend(struct acu_room *r, const struct acu_cfg *cfg, int64_t seconds,
		const struct acu_now *now, struct acu_err *err)
{
	struct acu_session *s = &r->s;
	int64_t left;

	if (need_session(r, err))
		return -1;
	if (seconds < 1 || seconds > cfg->session_max)
		return acu_fail(err, E_OUT_OF_RANGE, "extend: duration must be 1s..%llds",
				(long long)cfg->session_max);
	left = s->state == ST_RUNNING ? s->end - now->mono :
	       s->state == ST_PAUSED ? s->remaining : 0;
	if (left < 0)
		left = 0;
	if (s->duration_s + seconds > INT32_MAX)
		return acu_fail(err, E_OUT_OF_RANGE, "extend: the session is already %llds long",
				(long long)s->duration_s);
	if (left + seconds * NS_PER_SEC > cfg->session_max * NS_PER_SEC)
		return acu_fail(err, E_OUT_OF_RANGE,
				"extend: %llds left would exceed [limits] session_max %llds",
				(long long)((left + seconds * NS_PER_SEC) / NS_PER_SEC),
				(long long)cfg->session_max);
	s->duration_s += seconds;
	switch (s->state) {
	case ST_RUNNING:
		s->end += seconds * NS_PER_SEC;
		break;
	case ST_PAUSED:
		s->remaining += seconds * NS_PER_SEC;
		break;
	default: /* due: back to running for the added time */
		s->state = ST_RUNNING;
		s->end = now->mono + seconds * NS_PER_SEC;
		s->due_since = 0;
		checkin_restart(r, cfg, now->mono);
		room_alarm_clear(r, AL_DUE);
		break;
	}
	return 0;
}

int room_finish(struct acu_room *r, int removed, const char *override,
		const struct acu_now *now, struct acu_err *err)
{
	struct acu_session *s = &r->s;

	if (s->state != ST_DUE) {
		if (s->state == ST_IDLE)
			return acu_fail(err, E_INVALID_STATE, "room %s: no session", r->cfg->id);
		return acu_fail(err, E_INVALID_STATE, "room %s: session is %s; stop it first",
				r->cfg->id, acu_state_name(s->state));
	}
	if (removed < 0 || removed > ACU_NEEDLES_MAX)
		return acu_fail(err, E_OUT_OF_RANGE, "removed: must be 0..%d", ACU_NEEDLES_MAX);
	if (removed != s->needles && !(override && *override)) {
		room_alarm_raise(r, AL_NEEDLE_MISMATCH, PRIO_HIGH, now);
		return acu_fail(err, E_NEEDLE_MISMATCH,
				"room %s: %d needles removed but %d inserted; find them, or finish with an override reason",
				r->cfg->id, removed, s->needles);
	}
	memset(s, 0, sizeof *s);
	s->state = ST_IDLE;
	r->attention[0] = '\0';
	room_alarm_clear(r, AL_ATTENTION);
	room_alarm_clear(r, AL_STORAGE);
	room_alarm_clear(r, AL_DUE);
	room_alarm_clear(r, AL_CHECKIN);
	room_alarm_clear(r, AL_NEEDLE_MISMATCH);
	room_alarm_clear(r, AL_INTERLOCK);
	room_alarm_clear(r, AL_TIMING);
	return 0;
}

int room_checkin(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
		 struct acu_err *err)
{
	/* The patient has been seen: that answers a call too (SPEC §4), with or
	 * without a session. */
	if (r->alarm[AL_CALL].active && r->s.state != ST_RUNNING && r->s.state != ST_PAUSED) {
		room_alarm_clear(r, AL_CALL);
		return 0;
	}
	room_alarm_clear(r, AL_CALL);
	if (r->s.state != ST_RUNNING && r->s.state != ST_PAUSED)
		return acu_fail(err, E_INVALID_STATE,
				"room %s: check-in needs a running or paused session, it is %s",
				r->cfg->id, acu_state_name(r->s.state));
	r->s.checkins++;
	/* While paused the interval restarts from the resume. */
	if (r->s.state == ST_PAUSED)
		r->s.checkin_left = cfg->checkin_interval * NS_PER_SEC;
	else
		checkin_restart(r, cfg, now->mono);
	room_alarm_clear(r, AL_CHECKIN);
	return 0;
}

int room_needles(struct acu_room *r, int delta, struct acu_err *err)
{
	int64_t n;

	if (need_session(r, err))
		return -1;
	if (delta == 0)
		return acu_fail(err, E_OUT_OF_RANGE, "delta: must not be 0");
	n = (int64_t)r->s.needles + delta;
	if (n < 0 || n > ACU_NEEDLES_MAX)
		return acu_fail(err, E_OUT_OF_RANGE, "needles: %d %+d would be outside 0..%d",
				r->s.needles, delta, ACU_NEEDLES_MAX);
	r->s.needles = (int)n;
	return 0;
}

int room_flag(struct acu_room *r, unsigned flags, const struct acu_now *now, struct acu_err *err)
{
	(void)now;
	if (need_session(r, err))
		return -1;
	r->s.flags |= flags & ((1u << FL__N) - 1);
	if (r->s.flags & FL_HARD_MASK)
		stim_disarm(r);
	return 0;
}

int room_silence(struct acu_room *r, int64_t seconds, const struct acu_now *now,
		 struct acu_err *err)
{
	int any = 0;

	if (seconds < 1 || seconds > ACU_SILENCE_MAX_S)
		return acu_fail(err, E_OUT_OF_RANGE, "silence: duration must be 1s..%ds",
				ACU_SILENCE_MAX_S);
	for (int i = 0; i < AL__N; i++) {
		if (!r->alarm[i].active)
			continue;
		r->alarm[i].silenced_until = now->mono + seconds * NS_PER_SEC;
		any = 1;
	}
	if (!any)
		return acu_fail(err, E_INVALID_STATE, "room %s: no active alarm to silence", r->cfg->id);
	return 0;
}

int room_tick(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now)
{
	struct acu_session *s = &r->s;
	int changed = 0;

	if (s->state == ST_RUNNING && now->mono >= s->end) {
		become_due(r, s->end, now);
		changed = 1;
	}
	if (s->state == ST_RUNNING && s->checkin_due && now->mono >= s->checkin_due &&
	    !r->alarm[AL_CHECKIN].active) {
		room_alarm_raise(r, AL_CHECKIN, PRIO_LOW, now);
		changed = 1;
	}
	if (s->state == ST_DUE && r->alarm[AL_DUE].active && r->alarm[AL_DUE].priority < PRIO_HIGH &&
	    now->mono >= s->due_since + cfg->escalate_after * NS_PER_SEC) {
		int64_t since_mono = r->alarm[AL_DUE].since_mono;
		int64_t since_wall = r->alarm[AL_DUE].since_wall;

		room_alarm_raise(r, AL_DUE, PRIO_HIGH, now);
		r->alarm[AL_DUE].since_mono = since_mono;
		r->alarm[AL_DUE].since_wall = since_wall;
		changed = 1;
	}
	/* An unanswered call escalates; raise keeps its since. */
	if (r->alarm[AL_CALL].active && r->alarm[AL_CALL].priority < PRIO_HIGH &&
	    now->mono >= r->alarm[AL_CALL].since_mono + cfg->call_escalate_after * NS_PER_SEC) {
		room_alarm_raise(r, AL_CALL, PRIO_HIGH, now);
		changed = 1;
	}
	for (int i = 0; i < AL__N; i++) {
		struct acu_alarm *a = &r->alarm[i];
		if (a->silenced_until && now->mono >= a->silenced_until) {
			a->silenced_until = 0;
			changed = 1;
		}
	}
	return changed;
}

static int64_t earliest(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int64_t room_next_deadline(const struct acu_room *r, const struct acu_cfg *cfg)
{
	const struct acu_session *s = &r->s;
	int64_t t = ACU_NEVER;

	if (s->state == ST_RUNNING) {
		t = earliest(t, s->end);
		if (s->checkin_due && !r->alarm[AL_CHECKIN].active)
			t = earliest(t, s->checkin_due);
	}
	if (s->state == ST_DUE && r->alarm[AL_DUE].active && r->alarm[AL_DUE].priority < PRIO_HIGH)
		t = earliest(t, s->due_since + cfg->escalate_after * NS_PER_SEC);
	if (r->alarm[AL_CALL].active && r->alarm[AL_CALL].priority < PRIO_HIGH)
		t = earliest(t, r->alarm[AL_CALL].since_mono + cfg->call_escalate_after * NS_PER_SEC);
	for (int i = 0; i < AL__N; i++)
		if (r->alarm[i].silenced_until)
			t = earliest(t, r->alarm[i].silenced_until);
	return t;
}

int64_t room_remaining_s(const struct acu_room *r, int64_t mono)
{
	int64_t ns;

	switch (r->s.state) {
	case ST_RUNNING: ns = r->s.end - mono; break;
	case ST_PAUSED: ns = r->s.remaining; break;
	default: return 0;
	}
	if (ns <= 0)
		return 0;
	return (ns + NS_PER_SEC - 1) / NS_PER_SEC;
}

int64_t room_overdue_s(const struct acu_room *r, int64_t mono)
{
	if (r->s.state != ST_DUE || mono <= r->s.due_since)
		return 0;
	return (mono - r->s.due_since) / NS_PER_SEC;
}

int64_t room_stim_budget(const struct acu_room *r, const struct acu_cfg *cfg,
			 const struct acu_profile_cfg *p)
{
	int64_t max = cfg->stim_max * NS_PER_SEC;

	(void)r;
	/* Without duration_s the session's end stops it; stim_max always caps. */
	if (p && p->duration_s > 0 && p->duration_s * NS_PER_SEC < max)
		return p->duration_s * NS_PER_SEC;
	return max;
}

void room_stim_off(struct acu_room *r, const char *why)
{
	r->s.stim.armed = 0;
	snprintf(r->s.stim.blocked, sizeof r->s.stim.blocked, "%s", why ? why : "");
}

void room_stim_settle(struct acu_room *r, const char *end)
{
	if (end)
		room_stim_off(r, end);
	else if (r->s.stim.armed)
		r->s.stim.blocked[0] = '\0';
}

void room_stim_stop(struct acu_room *r)
{
	room_stim_off(r, "stim-off");
	room_alarm_clear(r, AL_TIMING);
}

int room_interlock(struct acu_room *r, int level, int edges, const struct acu_now *now)
{
	struct gate_latch l;
	int what = 0;

	gate_interlock(r->interlock_tripped, r->s.stim.armed, level, edges, &l);
	if (l.trip) {
		/* S5: off at once (the caller drives the gates from this state),
		 * a high alarm, disarmed until cleared and re-armed. */
		room_stim_off(r, "interlock");
		room_alarm_raise(r, AL_INTERLOCK, PRIO_HIGH, now);
		what |= ROOM_IL_TRIPPED;
	}
	if (l.fault) {
		if (!r->gpio_fault)
			what |= ROOM_IL_UNREADABLE;
		room_gpio_fault(r, now);
	}
	if (!l.tripped && (r->interlock_tripped || l.trip)) {
		if (r->interlock_tripped)
			what |= ROOM_IL_CLEARED;
		/* Without a session nothing needs re-arming: the alarm follows the line. */
		if (r->s.state == ST_IDLE)
			room_alarm_clear(r, AL_INTERLOCK);
	}
	r->interlock_tripped = l.tripped;
	return what;
}

void room_gpio_fault(struct acu_room *r, const struct acu_now *now)
{
	r->gpio_fault = 1;
	room_stim_off(r, "gpio-fault");
	room_alarm_raise(r, AL_GPIO_FAULT, PRIO_HIGH, now);
}

int room_timing_exceeded(int64_t sent, int64_t missed, int64_t share_ppm)
{
	if (missed <= 0)
		return 0;
	if (sent < 0)
		sent = 0;
	/* missed / (sent + missed) > share, in integers: both sides stay far
	 * below 2^63 for any session (pulses at 200 Hz for 4 h: 2.9e6). */
	return missed * 1000000 > share_ppm * (sent + missed);
}

void room_pulses_late(struct acu_room *r, int64_t n, const int64_t *missed, int64_t share_ppm,
		      const struct acu_now *now)
{
	int over = 0;

	if (n <= 0)
		return;
	r->s.stim.missed += n;
	for (int c = 0; c < r->cfg->nchannels && c < ACU_MAX_CHANNELS; c++) {
		struct acu_channel *ch = &r->s.stim.ch[c];

		if (missed[c] <= 0)
			continue;
		ch->missed += missed[c];
		over |= room_timing_exceeded(ch->pulses, ch->missed, share_ppm);
	}
	if (over)
		room_alarm_raise(r, AL_TIMING, PRIO_LOW, now);
}

int room_stim_on(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
		 unsigned *warned, struct acu_err *err)
{
	const struct acu_room_cfg *rc = r->cfg;
	const struct acu_profile_cfg *p;
	struct acu_session *s = &r->s;
	unsigned soft, chans;
	int64_t budget;

	*warned = 0;
	if (s->state != ST_RUNNING)
		return acu_fail(err, E_INVALID_STATE, "room %s: stimulation needs a running session, it is %s",
				rc->id, acu_state_name(s->state));
	/* S3: nothing lifts a hard contraindication, so it is checked first. */
	if (s->flags & FL_HARD_MASK) {
		for (int f = 0; f < FL_SOFT_FIRST; f++)
			if (s->flags & (1u << f))
				return acu_fail(err, E_CONTRAINDICATED,
						"room %s: patient flagged %s; stimulation refused", rc->id,
						acu_flag_name(f));
	}
	if (r->gpio_fault)
		return acu_fail(err, E_GPIO_FAULT, "room %s: a GPIO write failed; reload or restart first",
				rc->id);
	if (!s->profile[0])
		return acu_fail(err, E_INVALID_STATE, "room %s: the session has no stimulus profile", rc->id);
	p = cfg_profile(cfg, s->profile);
	if (!p)
		return acu_fail(err, E_UNKNOWN_PROFILE, "no profile '%s'", s->profile);
	/* S4: the same rule the gate follows (gate_refused_soft); the first
	 * refusing flag names the refusal. */
	soft = gate_refused_soft(s->flags, cfg->policy, p->pregnancy_safe);
	for (int f = FL_SOFT_FIRST; f < FL__N; f++)
		if (soft & (1u << f))
			return acu_fail(err, E_CONTRAINDICATED,
					"room %s: patient flagged %s and [safety] %s = refuse%s", rc->id,
					acu_flag_name(f), acu_flag_name(f),
					f == FL_PREGNANCY ? " (profile is not pregnancy_safe)" : "");
	if (r->interlock_tripped)
		return acu_fail(err, E_INTERLOCK, "room %s: interlock tripped; clear it first", rc->id);
	switch (gate_profile_fit(rc, p)) {
	case GATE_FITS:
		break;
	case GATE_FIT_CHANNELS:
		return acu_fail(err, E_UNSUPPORTED, "room %s has %d channel%s; profile %s needs more",
				rc->id, rc->nchannels, rc->nchannels == 1 ? "" : "s", p->name);
	case GATE_FIT_NEEDS_PULSE:
		return acu_fail(err, E_UNSUPPORTED,
				"room %s has no pulse lines; profile %s (dense-disperse) needs them",
				rc->id, p->name);
	default:
		return acu_fail(err, E_UNKNOWN_PROFILE, "no profile '%s'", s->profile);
	}
	chans = gate_profile_channels(rc, p);
	/* Soft flags armed over are those with a warn policy. */
	soft = s->flags & ~FL_HARD_MASK & ((1u << FL__N) - 1);
	if (p->pregnancy_safe)
		soft &= ~(1u << FL_PREGNANCY);
	budget = room_stim_budget(r, cfg, p);
	for (int c = 0; c < rc->nchannels; c++)
		if ((chans & (1u << c)) && s->stim.ch[c].delivered_ns >= budget)
			return acu_fail(err, E_INVALID_STATE,
					"room %s channel %d: stimulation time already delivered", rc->id, c + 1);
	s->stim.armed = 1;
	s->stim.armed_at = now->mono;
	s->stim.armed_wall = now->wall;
	s->stim.blocked[0] = '\0';
	s->stim.warned |= soft;
	*warned = soft;
	/* The interlock alarm clears with a cleared interlock and a new arming. */
	room_alarm_clear(r, AL_INTERLOCK);
	return 0;
}

int room_call(struct acu_room *r, const struct acu_now *now)
{
	if (r->alarm[AL_CALL].active)
		return 0;
	room_alarm_raise(r, AL_CALL, PRIO_MEDIUM, now);
	return 1;
}

int room_presence_acks(enum acu_alarm_kind k)
{
	return k == AL_CALL || k == AL_CHECKIN;
}

int room_presence(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now)
{
	int what = 0;

	if (r->alarm[AL_CALL].active)
		what |= ROOM_PRESENCE_CALL;
	if (room_checkin(r, cfg, now, NULL) == 0 &&
	    (r->s.state == ST_RUNNING || r->s.state == ST_PAUSED))
		what |= ROOM_PRESENCE_CHECKIN;
	/* Whatever else a future change lets checkin clear, presence clears
	 * only what it acknowledges. */
	for (int k = 0; k < AL__N; k++)
		if (room_presence_acks((enum acu_alarm_kind)k))
			room_alarm_clear(r, (enum acu_alarm_kind)k);
	return what;
}

int room_button_level(int fn_call, int level)
{
	if (level < 0)
		return fn_call ? 1 : 0;
	return level != 0;
}

enum acu_priority room_lamp_test(int64_t elapsed, int64_t duration)
{
	if (elapsed < 0 || elapsed >= duration)
		return PRIO_NONE;
	if (elapsed < duration / 3)
		return PRIO_HIGH;
	if (elapsed < duration / 3 * 2)
		return PRIO_MEDIUM;
	return PRIO_LOW;
}

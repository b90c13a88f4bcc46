/* The gate decision of SPEC S2 and the rules around it. No I/O, no clock, no
 * globals: tests feed them every combination of their inputs. */
#include "gate.h"

static const char *const why_names[] = {
	[GATE_ON] = "on",
	[GATE_GPIO_FAULT] = "gpio-fault",
	[GATE_CONTRAINDICATED] = "contraindicated",
	[GATE_FLAG_REFUSED] = "flag-refused",
	[GATE_INTERLOCK] = "interlock",
	[GATE_UNSUPPORTED] = "unsupported",
	[GATE_NOT_RUNNING] = "not-running",
	[GATE_NOT_ARMED] = "not-armed",
	[GATE_STIM_MAX] = "stim-max",
	[GATE_DURATION_DONE] = "duration-done",
	[GATE_SCHEDULE_OFF] = "schedule-off",
};

const char *gate_why_name(enum gate_why w)
{
	return (unsigned)w < sizeof why_names / sizeof why_names[0] ? why_names[w] : "unknown";
}

int gate_why_disarms(enum gate_why w)
{
	switch (w) {
	case GATE_GPIO_FAULT:
	case GATE_CONTRAINDICATED:
	case GATE_FLAG_REFUSED:
	case GATE_INTERLOCK:
	case GATE_UNSUPPORTED:
		return 1;
	case GATE_ON:
	case GATE_NOT_RUNNING:         /* pause and stop disarm by themselves */
	case GATE_NOT_ARMED:
	case GATE_STIM_MAX:
	case GATE_DURATION_DONE:
	case GATE_SCHEDULE_OFF:
		return 0;
	}
	return 1; /* not a reason: fail closed */
}

int gate_why_dose_done(enum gate_why w)
{
	return w == GATE_STIM_MAX || w == GATE_DURATION_DONE;
}

const char *gate_off_cause(enum gate_why w, const char *cause)
{
	if (w == GATE_SCHEDULE_OFF)
		return "schedule";
	if (gate_why_dose_done(w))
		return gate_why_name(w);
	return cause;
}

unsigned gate_refused_soft(unsigned flags, const enum acu_policy *policy, int pregnancy_safe)
{
	unsigned refused = 0;

	for (int f = FL_SOFT_FIRST; f < FL__N; f++) {
		if (!(flags & (1u << f)))
			continue;
		if (f == FL_PREGNANCY && pregnancy_safe)
			continue;
		/* Anything but an explicit warn refuses: an unknown policy fails closed. */
		if (!policy || policy[f] != POLICY_WARN)
			refused |= 1u << f;
	}
	return refused;
}

enum gate_why gate_decide(const struct gate_in *in)
{
	if (in->gpio_fault)
		return GATE_GPIO_FAULT;
	if (in->flags & FL_HARD_MASK)
		return GATE_CONTRAINDICATED;
	if (gate_refused_soft(in->flags, in->policy, in->pregnancy_safe))
		return GATE_FLAG_REFUSED;
	if (in->interlock_tripped)
		return GATE_INTERLOCK;
	if (in->unsupported)
		return GATE_UNSUPPORTED;
	if (in->state != ST_RUNNING)
		return GATE_NOT_RUNNING;
	if (!in->armed)
		return GATE_NOT_ARMED;
	/* A missing or non-positive limit means nothing may be delivered. */
	if (in->stim_max_ns <= 0 || in->delivered_ns >= in->stim_max_ns)
		return GATE_STIM_MAX;
	if (in->duration_ns <= 0 || in->delivered_ns >= in->duration_ns)
		return GATE_DURATION_DONE;
	if (!in->schedule_on)
		return GATE_SCHEDULE_OFF;
	return GATE_ON;
}

static unsigned all_channels(const struct acu_room_cfg *rc)
{
	return (1u << rc->nchannels) - 1;
}

unsigned gate_profile_channels(const struct acu_room_cfg *rc, const struct acu_profile_cfg *p)
{
	return p && p->channels ? p->channels : all_channels(rc);
}

enum gate_fit gate_profile_fit(const struct acu_room_cfg *rc, const struct acu_profile_cfg *p)
{
	unsigned chans;

	if (!p)
		return GATE_FIT_NO_PROFILE;
	chans = gate_profile_channels(rc, p);
	if (chans & ~all_channels(rc))
		return GATE_FIT_CHANNELS;
	/* The daemon generates dense-disperse's two rates: a pulse line on
	 * every channel it drives. */
	if (p->mode == MODE_DENSE_DISPERSE)
		for (int c = 0; c < rc->nchannels; c++)
			if ((chans & (1u << c)) && c >= rc->npulse)
				return GATE_FIT_NEEDS_PULSE;
	return GATE_FITS;
}

void gate_channel_in(const struct gate_room_in *in, const struct sched_point *pt,
		     unsigned chans, int unsupported, int c, struct gate_in *g)
{
	const struct acu_profile_cfg *p = in->profile;

	*g = (struct gate_in){
		.state = in->state,
		.armed = in->armed && p && (chans & (1u << c)),
		.schedule_on = pt->on,
		.flags = in->flags,
		.policy = in->policy,
		.pregnancy_safe = p ? p->pregnancy_safe : 0,
		.interlock_tripped = in->interlock_tripped,
		.delivered_ns = in->delivered_ns[c],
		.duration_ns = in->budget_ns,
		.stim_max_ns = in->stim_max_ns,
		.gpio_fault = in->gpio_fault,
		.unsupported = unsupported,
	};
}

void gate_plan(const struct gate_room_in *in, struct gate_plan *out)
{
	const struct acu_profile_cfg *p = in->profile;
	unsigned chans = gate_profile_channels(in->room, p);
	int unsupported = in->armed && gate_profile_fit(in->room, p) != GATE_FITS;
	int64_t limit = in->budget_ns < in->stim_max_ns ? in->budget_ns : in->stim_max_ns;
	int64_t next = ACU_NEVER;
	int driven = 0, done = 1, stim_max = 0;

	out->end = GATE_ON;
	out->pt = (struct sched_point){ 0, 0, 0, ACU_NEVER };
	if (in->armed && p)
		sched_at(p, in->armed_at, in->now, &out->pt);
	for (int c = 0; c < ACU_MAX_CHANNELS; c++)
		out->why[c] = GATE_NOT_ARMED;
	for (int c = 0; c < in->room->nchannels && c < ACU_MAX_CHANNELS; c++) {
		struct gate_in g;
		enum gate_why w;

		gate_channel_in(in, &out->pt, chans, unsupported, c, &g);
		w = gate_decide(&g);

		out->why[c] = w;
		if (gate_why_disarms(w) && out->end == GATE_ON)
			out->end = w;
		if (g.armed) {
			driven = 1;
			if (!gate_why_dose_done(w))
				done = 0;
			else if (w == GATE_STIM_MAX)
				stim_max = 1;
		}
		/* A gate that is on goes off by itself when its dose is in. */
		if (w == GATE_ON && in->now + (limit - in->delivered_ns[c]) < next)
			next = in->now + (limit - in->delivered_ns[c]);
	}
	/* Every channel the profile drives has had its dose: the arming ends. */
	if (out->end == GATE_ON && in->armed && driven && done)
		out->end = stim_max ? GATE_STIM_MAX : GATE_DURATION_DONE;
	if (out->end == GATE_ON && in->armed && in->state == ST_RUNNING && out->pt.phase_end < next)
		next = out->pt.phase_end;
	out->next = out->end == GATE_ON && in->armed && in->state == ST_RUNNING ? next : ACU_NEVER;
}

void gate_interlock(int prior_tripped, int armed, int level, int edges, struct gate_latch *out)
{
	/* Active at some moment since the last read, and not as the trip
	 * already handled: active now (an unreadable input counts as active)
	 * after a clear read; any edge after a clear read (whatever the level
	 * now, it left clear); or two edges whatever the prior state (it went
	 * and came back: released and pressed again, or a bouncing release). */
	int anew = (!prior_tripped && (level != 0 || edges > 0)) || edges >= 2;

	out->fault = level < 0;
	out->tripped = level != 0;
	/* An armed room is disarmed by an active line whatever came before. */
	out->trip = anew || (armed && level != 0);
}

int gate_heartbeat_runs(int gates_on, int faults)
{
	return gates_on > 0 && faults == 0;
}

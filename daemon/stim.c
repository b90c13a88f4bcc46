/* The stimulation shell: drives gate, pulse, alarm and heartbeat lines from the
 * pure gate decision and schedule, on absolute monotonic deadlines. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon.h"
#include "gate.h"
#include "gpio.h"
#include "stimsched.h"

struct room_rt {
	struct acud *d;
	int index;                     /* into d->rooms; rooms move on reload */
	struct event *sched_ev;        /* next phase change or end of dose */
	struct event *pulse_ev;        /* next pulse edge */
	struct event *alarm_ev;        /* next flash of the alarm line */
	struct event *input_ev;        /* interlock edges */
	struct gpio_line *gate[ACU_MAX_CHANNELS], *pulse[ACU_MAX_CHANNELS];
	struct gpio_line *alarm, *interlock;
	int pulse_high;
	int64_t rise;                  /* ideal time of the pulse in progress or next */
	int64_t pulse_from;            /* next pulse is the first at or after this */
	int64_t pulse_origin;          /* armed_at the pulse train belongs to */
};

static struct acu_room *rt_room(const struct room_rt *rt)
{
	return &rt->d->rooms[rt->index];
}

static void add_at(struct event *ev, int64_t when)
{
	int64_t dt = when - acu_mono_now();
	struct timeval tv;

	if (dt < 0)
		dt = 0;
	dt = (dt + 999) / 1000;
	tv.tv_sec = (time_t)(dt / 1000000);
	tv.tv_usec = (suseconds_t)(dt % 1000000);
	event_add(ev, &tv);
}

static void emit_gate(struct acud *d, const struct acu_room *r, int c, int on, const char *cause)
{
	json_t *ev = json_pack("{s:s,s:s,s:i,s:b,s:s}", "event", "gate", "room", r->cfg->id,
			       "channel", c + 1, "on", on, "cause", cause);
	json_t *rec = json_pack("{s:s,s:i,s:b,s:s}", "type", "gate", "channel", c + 1, "on", on,
				"cause", cause);

	server_broadcast(d->server, ev);
	json_decref(ev);
	history_add(d, r->cfg->id, rec);
	log_info("room %s: channel %d gate %s (%s)", r->cfg->id, c + 1, on ? "on" : "off", cause);
}

/* S7: a failed write raises the fault, tries every output of the room off and
 * blocks arming until reload or restart. */
static void gpio_fault(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	struct room_rt *rt = r->rt;

	log_err("room %s: GPIO write failed: %s; outputs off, arming blocked until reload",
		r->cfg->id, strerror(errno));
	r->gpio_fault = 1;
	room_stim_off(r, "gpio-fault");
	room_alarm_raise(r, AL_GPIO_FAULT, PRIO_HIGH, now);
	for (int c = 0; c < r->cfg->nchannels; c++) {
		gpio_set(d->gpio, rt->gate[c], 0);
		if (rt->pulse[c])
			gpio_set(d->gpio, rt->pulse[c], 0);
		if (r->s.stim.ch[c].on) {
			r->s.stim.ch[c].delivered_ns += now->mono - r->s.stim.ch[c].on_since;
			r->s.stim.ch[c].on = 0;
			d->gates_on--;
			emit_gate(d, r, c, 0, "gpio-fault");
		}
	}
	rt->pulse_high = 0;
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;
	struct gpio_line *l = gpio_find(d->gpio, &d->cfg->heartbeat);

	(void)fd;
	(void)what;
	if (l && gpio_set(d->gpio, l, !l->active) < 0)
		log_err("heartbeat line write failed: %s", strerror(errno));
}

/* The heartbeat toggles only while some gate is on, so an external watchdog
 * cuts stimulator power when acud stops toggling it. */
static void heartbeat_update(struct acud *d)
{
	struct gpio_line *l = gpio_find(d->gpio, &d->cfg->heartbeat);

	if (!l)
		return;
	if (d->gates_on > 0) {
		if (!evtimer_pending(d->heartbeat, NULL)) {
			int64_t half = NS_PER_SEC / (2 * d->cfg->heartbeat_hz);
			struct timeval tv = { (time_t)(half / NS_PER_SEC),
					      (suseconds_t)(half % NS_PER_SEC / 1000) };
			event_del(d->heartbeat);
			event_assign(d->heartbeat, d->base, -1, EV_PERSIST, heartbeat_cb, d);
			event_priority_set(d->heartbeat, ACU_PRIO_TIME);
			event_add(d->heartbeat, &tv);
			heartbeat_cb(-1, 0, d);
		}
	} else {
		event_del(d->heartbeat);
		gpio_set(d->gpio, l, 0);
	}
}

/* High flashes at 2 Hz, medium at 0.5 Hz, low is steady (SPEC §4); an audible
 * line stays quiet while silenced. */
static void alarm_update(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	struct room_rt *rt = r->rt;
	enum acu_priority level = room_alarm_level(r);
	int want = 0;

	if (!rt->alarm)
		return;
	event_del(rt->alarm_ev);
	if (level == PRIO_NONE || (r->cfg->audible && room_silenced(r, now->mono))) {
		want = 0;
	} else if (level == PRIO_LOW) {
		want = 1;
	} else {
		int64_t half = level == PRIO_HIGH ? NS_PER_SEC / 4 : NS_PER_SEC;
		int64_t since = now->mono, k;

		for (int i = 0; i < AL__N; i++)
			if (r->alarm[i].active && r->alarm[i].priority == level &&
			    r->alarm[i].since_mono < since)
				since = r->alarm[i].since_mono;
		k = (now->mono - since) / half;
		want = k % 2 == 0;
		add_at(rt->alarm_ev, since + (k + 1) * half);
	}
	if (rt->alarm->active != want && gpio_set(d->gpio, rt->alarm, want) < 0)
		gpio_fault(d, r, now);
}

/* A write that failed outside a commit (pulse edges, alarm flashes) is
 * committed now, so the fault reaches the state file, history and watchers. */
static void commit_fault(struct acud *d, struct acu_room *r, const struct acu_room *before,
			 const struct acu_now *now)
{
	char msg[256];

	if (r->gpio_fault && !before->gpio_fault &&
	    acud_commit(d, r, before, now, NULL, "gpio-fault", msg, sizeof msg) < 0)
		log_err("%s", msg);
}

static void alarm_cb(evutil_socket_t fd, short what, void *arg)
{
	struct room_rt *rt = arg;
	struct acu_room *r = rt_room(rt), before;
	struct acu_now now = acu_now();

	(void)fd;
	(void)what;
	memcpy(&before, r, sizeof before);
	alarm_update(rt->d, r, &now);
	commit_fault(rt->d, r, &before, &now);
}

static const struct acu_profile_cfg *room_profile(const struct acud *d, const struct acu_room *r)
{
	return r->s.profile[0] ? cfg_profile(d->cfg, r->s.profile) : NULL;
}

/* --- pulses --------------------------------------------------------------- */

static int any_pulse_channel_on(const struct acu_room *r)
{
	for (int c = 0; c < r->cfg->npulse; c++)
		if (r->s.stim.ch[c].on)
			return 1;
	return 0;
}

static void pulse_lines(struct acud *d, struct acu_room *r, int high, const struct acu_now *now)
{
	struct room_rt *rt = r->rt;

	for (int c = 0; c < r->cfg->npulse; c++) {
		if (high && !r->s.stim.ch[c].on)
			continue;
		if (rt->pulse[c]->active == high)
			continue;
		if (gpio_set(d->gpio, rt->pulse[c], high) < 0) {
			gpio_fault(d, r, now);
			return;
		}
		if (high)
			r->s.stim.ch[c].pulses++;
	}
	rt->pulse_high = high;
}

static void pulse_schedule(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	struct room_rt *rt = r->rt;
	const struct acu_profile_cfg *p = room_profile(d, r);

	if (!p || !any_pulse_channel_on(r)) {
		event_del(rt->pulse_ev);
		if (rt->pulse_high)
			pulse_lines(d, r, 0, now);
		return;
	}
	if (rt->pulse_high || evtimer_pending(rt->pulse_ev, NULL))
		return;
	if (rt->pulse_origin != r->s.stim.armed_at) {
		rt->pulse_origin = r->s.stim.armed_at;
		rt->pulse_from = r->s.stim.armed_at;
	}
	rt->rise = sched_next_pulse(p, r->s.stim.armed_at, rt->pulse_from);
	if (rt->rise == ACU_NEVER)
		return;
	add_at(rt->pulse_ev, rt->rise);
}

/* The hot path: a snapshot for the rare fault only when a write fails. */
static void pulse_edge(struct acud *d, struct acu_room *r, int high, const struct acu_now *now)
{
	struct acu_room before;

	if (r->gpio_fault)
		return;
	memcpy(&before, r, sizeof before);
	pulse_lines(d, r, high, now);
	commit_fault(d, r, &before, now);
}

static void pulse_cb(evutil_socket_t fd, short what, void *arg)
{
	struct room_rt *rt = arg;
	struct acud *d = rt->d;
	struct acu_room *r = rt_room(rt);
	const struct acu_profile_cfg *p = room_profile(d, r);
	struct acu_now now = acu_now();

	(void)fd;
	(void)what;
	if (!p || !any_pulse_channel_on(r)) {
		if (rt->pulse_high)
			pulse_lines(d, r, 0, &now);
		return;
	}
	if (!rt->pulse_high) {
		struct sched_point pt;

		if (now.mono < rt->rise) { /* woke early: wait out the rest */
			add_at(rt->pulse_ev, rt->rise);
			return;
		}
		/* Late by more than half a period (the loop was held up): that
		 * pulse is missed, never fired in a burst to catch up. */
		sched_at(p, r->s.stim.armed_at, rt->rise, &pt);
		if (now.mono - rt->rise > NS_PER_SEC / (2 * pt.freq_hz)) {
			/* Every pulse due from this one up to now is skipped. */
			r->s.stim.missed += sched_count_pulses(p, r->s.stim.armed_at, rt->rise,
							       now.mono);
			rt->pulse_from = now.mono;
			pulse_schedule(d, r, &now);
			return;
		}
		pulse_edge(d, r, 1, &now);
		/* The width counts from when the line actually went high, so a
		 * late rise never makes a pulse shorter than pulse_width_us. */
		if (rt->pulse_high)
			add_at(rt->pulse_ev, acu_mono_now() + (int64_t)p->pulse_width_us * 1000);
		return;
	}
	pulse_edge(d, r, 0, &now);
	rt->pulse_from = rt->rise + 1;
	pulse_schedule(d, r, &now);
}

/* --- gates ---------------------------------------------------------------- */

static void sched_cb(evutil_socket_t fd, short what, void *arg)
{
	struct room_rt *rt = arg;
	struct acud *d = rt->d;
	struct acu_room *r = rt_room(rt), before;
	struct acu_now now = acu_now();
	char msg[256];

	(void)fd;
	(void)what;
	memcpy(&before, r, sizeof before);
	if (acud_commit(d, r, &before, &now, NULL, "schedule", msg, sizeof msg) < 0)
		log_err("%s", msg);
}

int stim_apply(struct acud *d, struct acu_room *r, const struct acu_now *now, const char *cause)
{
	struct room_rt *rt = r->rt;
	struct acu_stim *st = &r->s.stim;
	const struct acu_profile_cfg *p = room_profile(d, r);
	enum gate_why why[ACU_MAX_CHANNELS], serious = GATE_ON;
	struct sched_point pt = { 0, 0, 0, ACU_NEVER };
	int64_t budget = room_stim_budget(r, d->cfg, p), next = ACU_NEVER;
	unsigned chans;
	int changed = 0, done = 1;

	if (!rt)
		return 0;
	chans = p && p->channels ? p->channels : (1u << r->cfg->nchannels) - 1;
	if (st->armed && p)
		sched_at(p, st->armed_at, now->mono, &pt);
	for (int c = 0; c < r->cfg->nchannels; c++) {
		struct acu_channel *ch = &st->ch[c];
		struct gate_in in = {
			.state = r->s.state,
			.armed = st->armed && p && (chans & (1u << c)),
			.schedule_on = pt.on,
			.flags = r->s.flags,
			.policy = d->cfg->policy,
			.pregnancy_safe = p ? p->pregnancy_safe : 0,
			.interlock_tripped = r->interlock_tripped,
			.delivered_ns = ch->delivered_ns + (ch->on ? now->mono - ch->on_since : 0),
			.duration_ns = budget,
			.stim_max_ns = d->cfg->stim_max * NS_PER_SEC,
			.gpio_fault = r->gpio_fault,
		};
		why[c] = gate_decide(&in);
		if (why[c] != GATE_ON && why[c] < GATE_NOT_RUNNING && serious == GATE_ON)
			serious = why[c];
		if (in.armed && why[c] != GATE_STIM_MAX && why[c] != GATE_DURATION_DONE)
			done = 0;
	}
	/* S6: every gate that must be off goes off before anything goes on. */
	for (int c = 0; c < r->cfg->nchannels; c++) {
		struct acu_channel *ch = &st->ch[c];

		if (why[c] == GATE_ON || !ch->on)
			continue;
		if (rt->pulse[c] && rt->pulse[c]->active && gpio_set(d->gpio, rt->pulse[c], 0) < 0)
			gpio_fault(d, r, now);
		if (gpio_set(d->gpio, rt->gate[c], 0) < 0) {
			gpio_fault(d, r, now);
			return 1;
		}
		ch->on = 0;
		ch->delivered_ns += now->mono - ch->on_since;
		d->gates_on--;
		changed = 1;
		emit_gate(d, r, c, 0, why[c] == GATE_SCHEDULE_OFF ? "schedule" :
				      why[c] == GATE_DURATION_DONE || why[c] == GATE_STIM_MAX ?
				      gate_why_name(why[c]) : cause);
	}
	for (int c = 0; c < r->cfg->nchannels; c++) {
		struct acu_channel *ch = &st->ch[c];

		if (why[c] != GATE_ON || ch->on)
			continue;
		if (gpio_set(d->gpio, rt->gate[c], 1) < 0) {
			/* The gate may or may not have gone active: count it on so
			 * the fault drives it off and reports it. */
			ch->on = 1;
			ch->on_since = now->mono;
			d->gates_on++;
			gpio_fault(d, r, now);
			return 1;
		}
		ch->on = 1;
		ch->on_since = now->mono;
		d->gates_on++;
		changed = 1;
		emit_gate(d, r, c, 1, cause);
	}
	if (st->armed && done) {
		enum gate_why end = GATE_DURATION_DONE;

		for (int c = 0; c < r->cfg->nchannels; c++)
			if (why[c] == GATE_STIM_MAX)
				end = GATE_STIM_MAX;
		room_stim_off(r, gate_why_name(end));
		log_notice("room %s: stimulation time delivered (%s); disarmed", r->cfg->id,
			   gate_why_name(end));
	} else if (serious != GATE_ON) {
		/* A contraindication, refused flag, interlock or fault disarms:
		 * nothing (a reload relaxing a policy, a cleared input) turns the
		 * output back on without a new, checked `stim on`. */
		if (st->armed)
			log_notice("room %s: stimulation disarmed (%s)", r->cfg->id,
				   gate_why_name(serious));
		room_stim_off(r, gate_why_name(serious));
	} else if (st->armed) {
		st->blocked[0] = '\0';
	}

	/* Next instant the decision can change by itself: a phase edge or the end
	 * of the dose on a channel that is on. */
	event_del(rt->sched_ev);
	if (st->armed && r->s.state == ST_RUNNING) {
		next = pt.phase_end;
		for (int c = 0; c < r->cfg->nchannels; c++) {
			const struct acu_channel *ch = &st->ch[c];
			int64_t left;

			if (!ch->on)
				continue;
			left = (budget < d->cfg->stim_max * NS_PER_SEC ? budget :
				d->cfg->stim_max * NS_PER_SEC) -
			       (ch->delivered_ns + now->mono - ch->on_since);
			if (now->mono + left < next)
				next = now->mono + (left > 0 ? left : 0);
		}
		if (next != ACU_NEVER)
			add_at(rt->sched_ev, next);
	}
	pulse_schedule(d, r, now);
	alarm_update(d, r, now);
	heartbeat_update(d);
	return changed;
}

/* --- interlock input ------------------------------------------------------ */

static void input_cb(evutil_socket_t fd, short what, void *arg)
{
	struct room_rt *rt = arg;
	struct acud *d = rt->d;
	struct acu_room *r = rt_room(rt), before;
	struct acu_now now;
	char msg[256];
	int level;

	(void)fd;
	(void)what;
	d->edge_pending = 0;
	level = gpio_read(d->gpio, rt->interlock);
	if (level < 0 || level == r->interlock_tripped) {
		gpio_sync(d->gpio);
		return;
	}
	now = acu_now();
	memcpy(&before, r, sizeof before);
	r->interlock_tripped = level;
	if (level) {
		/* S5: off at once, a high alarm, disarmed until cleared and re-armed. */
		room_stim_off(r, "interlock");
		room_alarm_raise(r, AL_INTERLOCK, PRIO_HIGH, &now);
	} else if (r->s.state == ST_IDLE) {
		room_alarm_clear(r, AL_INTERLOCK);
	}
	if (acud_commit(d, r, &before, &now, json_pack("{s:s,s:b}", "type", "interlock", "tripped",
						       level), "interlock", msg, sizeof msg) < 0)
		log_err("%s", msg);
	gpio_sync(d->gpio);
	/* Logged after the gates are off: stderr can block. */
	if (level)
		log_warnx("room %s: interlock tripped; stimulation off", r->cfg->id);
	else
		log_notice("room %s: interlock clear", r->cfg->id);
}

/* --- set-up ----------------------------------------------------------------- */

static void rt_free(struct room_rt *rt)
{
	if (!rt)
		return;
	event_free(rt->sched_ev);
	event_free(rt->pulse_ev);
	event_free(rt->alarm_ev);
	if (rt->input_ev)
		event_free(rt->input_ev);
	free(rt);
}

static struct room_rt *rt_new(struct acud *d, int index)
{
	struct room_rt *rt = calloc(1, sizeof *rt);
	const struct acu_room_cfg *rc = d->rooms[index].cfg;

	if (!rt)
		fatal("out of memory");
	rt->d = d;
	rt->index = index;
	rt->sched_ev = evtimer_new(d->base, sched_cb, rt);
	rt->pulse_ev = evtimer_new(d->base, pulse_cb, rt);
	rt->alarm_ev = evtimer_new(d->base, alarm_cb, rt);
	event_priority_set(rt->sched_ev, ACU_PRIO_TIME);
	event_priority_set(rt->pulse_ev, ACU_PRIO_TIME);
	event_priority_set(rt->alarm_ev, ACU_PRIO_TIME);
	for (int c = 0; c < rc->nchannels; c++)
		rt->gate[c] = gpio_find(d->gpio, &rc->gate[c]);
	for (int c = 0; c < rc->npulse; c++)
		rt->pulse[c] = gpio_find(d->gpio, &rc->pulse[c]);
	rt->alarm = gpio_find(d->gpio, &rc->alarm);
	rt->interlock = gpio_find(d->gpio, &rc->interlock);
	if (rt->interlock) {
		rt->input_ev = event_new(d->base, rt->interlock->fd, EV_READ | EV_PERSIST, input_cb, rt);
		event_priority_set(rt->input_ev, ACU_PRIO_TIME);
		event_add(rt->input_ev, NULL);
	}
	return rt;
}

static void rooms_attach(struct acud *d, const struct acu_now *now)
{
	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i];

		r->rt = rt_new(d, i);
		/* Outputs start inactive, so no gate is on whatever the state says. */
		for (int c = 0; c < ACU_MAX_CHANNELS; c++)
			r->s.stim.ch[c].on = 0;
		r->rt->pulse_high = 0;
		if (r->rt->interlock) {
			int level = gpio_read(d->gpio, r->rt->interlock);
			if (level > 0 && !r->interlock_tripped) {
				r->interlock_tripped = 1;
				room_stim_off(r, "interlock");
				room_alarm_raise(r, AL_INTERLOCK, PRIO_HIGH, now);
			}
			if (level == 0)
				r->interlock_tripped = 0;
		}
	}
}

static void rooms_detach(struct acud *d)
{
	for (int i = 0; i < d->nrooms; i++) {
		rt_free(d->rooms[i].rt);
		d->rooms[i].rt = NULL;
	}
}

int stim_open(struct acud *d, char *err, size_t errlen)
{
	struct acu_now now = acu_now();

	d->gpio = gpio_open(d->cfg, err, errlen);
	if (!d->gpio)
		return -1;
	d->heartbeat = evtimer_new(d->base, heartbeat_cb, d);
	event_priority_set(d->heartbeat, ACU_PRIO_TIME);
	d->gates_on = 0;
	rooms_attach(d, &now);
	return 0;
}

/* Everything off and every line released: the last thing before exit. */
void stim_close(struct acud *d)
{
	if (!d->gpio)
		return;
	if (gpio_all_off(d->gpio))
		log_err("stop: some outputs could not be driven inactive");
	rooms_detach(d);
	if (d->heartbeat)
		event_free(d->heartbeat);
	d->heartbeat = NULL;
	gpio_close(d->gpio);
	d->gpio = NULL;
	d->gates_on = 0;
}

/* The fatal path: no allocation, no event loop, only the writes. */
void stim_emergency_off(struct acud *d)
{
	if (d->gpio)
		gpio_all_off(d->gpio);
}

/* Same lines, same polarity, same backend: the GPIO requests can be kept. */
static int same_lines(const struct acu_cfg *a, const struct acu_cfg *b)
{
	const struct acu_line *la[2], *lb[2];

	if (a->backend != b->backend || strcmp(a->chip, b->chip) || a->nrooms != b->nrooms ||
	    strcmp(a->sim_state, b->sim_state) || strcmp(a->sim_trace, b->sim_trace))
		return 0;
	la[0] = &a->heartbeat;
	lb[0] = &b->heartbeat;
	if (memcmp(la[0], lb[0], sizeof *la[0]))
		return 0;
	for (int i = 0; i < a->nrooms; i++) {
		const struct acu_room_cfg *ra = &a->rooms[i];
		const struct acu_room_cfg *rb = cfg_room(b, ra->id);
		if (!rb || !cfg_room_same_wiring(ra, rb) || &b->rooms[i] != rb)
			return 0;
	}
	return 1;
}

int stim_reload_check(struct acud *d, const struct acu_cfg *next, char *err, size_t errlen)
{
	if (same_lines(d->cfg, next))
		return 0;
	for (int i = 0; i < d->nrooms; i++)
		if (d->rooms[i].s.stim.armed) {
			snprintf(err, errlen, "room %s has stimulation armed: GPIO wiring can only "
				 "change while no room is armed", d->rooms[i].cfg->id);
			return -1;
		}
	return 0;
}

/* Called with d->cfg and d->rooms already replaced; old_cfg is still valid. */
int stim_reload(struct acud *d, const struct acu_cfg *old_cfg, struct acu_room *old_rooms,
		int old_nrooms, char *err, size_t errlen)
{
	struct acu_now now = acu_now();

	if (same_lines(old_cfg, d->cfg)) {
		for (int i = 0; i < old_nrooms; i++) {
			struct room_rt *rt = old_rooms[i].rt;

			/* A pulse in flight ends now; the new timers start clean. */
			for (int c = 0; rt && rt->pulse_high && c < old_rooms[i].cfg->npulse; c++)
				gpio_set(d->gpio, rt->pulse[c], 0);
			rt_free(rt);
			old_rooms[i].rt = NULL;
		}
		for (int i = 0; i < d->nrooms; i++) {
			struct acu_room *r = &d->rooms[i];
			int on[ACU_MAX_CHANNELS];

			for (int c = 0; c < ACU_MAX_CHANNELS; c++)
				on[c] = r->s.stim.ch[c].on;
			r->rt = rt_new(d, i);
			for (int c = 0; c < ACU_MAX_CHANNELS; c++)
				r->s.stim.ch[c].on = on[c];
			stim_apply(d, r, &now, "reload");
		}
		return 0;
	}
	/* Rewired: nothing is armed (checked), so every output can go off and
	 * every line be requested again. */
	for (int i = 0; i < old_nrooms; i++) {
		rt_free(old_rooms[i].rt);
		old_rooms[i].rt = NULL;
	}
	if (d->heartbeat)
		event_free(d->heartbeat);
	d->heartbeat = NULL;
	gpio_close(d->gpio);
	d->gpio = NULL;
	d->gates_on = 0;
	for (int i = 0; i < d->nrooms; i++)
		d->rooms[i].rt = NULL;
	if (stim_open(d, err, errlen) < 0)
		return -1;
	for (int i = 0; i < d->nrooms; i++)
		stim_apply(d, &d->rooms[i], &now, "reload");
	return 0;
}

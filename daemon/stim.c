/* The stimulation shell: writes gate, pulse, alarm and heartbeat lines as the
 * pure core decides (gate_plan, the schedule, room.c), on absolute monotonic
 * deadlines, and brings it the interlock inputs. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "gate.h"
#include "gpio.h"
#include "rtpulse.h"
#include "stimsched.h"
#include "train.h"

struct room_rt {
	struct acud *d;
	int index;                     /* into d->rooms; rooms move on reload */
	struct event *sched_ev;        /* next phase change or end of dose */
	struct event *pulse_ev;        /* next pulse edge */
	struct event *alarm_ev;        /* next flash of the alarm line */
	struct event *input_ev;        /* interlock edges */
	struct gpio_line *gate[ACU_MAX_CHANNELS], *pulse[ACU_MAX_CHANNELS];
	struct gpio_line *alarm, *interlock;
	struct train tr;               /* the loop's own train (no pulse thread) */
	/* With the pulse thread: what it did that no change has taken in yet,
	 * and what the cut handed to it is for. */
	struct rtpulse_report rep;
	const char *cut_cause;
	int64_t test_from, test_until; /* `test ROOM alarm`: the lamp's patterns */
	/* The interlock's edges read in a change, told to the line watchers
	 * once its gates are written (S6: a cut before any report). */
	struct {
		int set, level, edges;
		struct acu_now at;
	} il_seen;
};

/* The shell's part of room r: kept beside the rooms, not in them. */
static struct room_rt *rt_of(const struct acud *d, const struct acu_room *r)
{
	ptrdiff_t i = r - d->rooms;

	return d->room_rt && i >= 0 && i < d->room_rt_n ? d->room_rt[i] : NULL;
}

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

void stim_timer_at(struct event *ev, int64_t when)
{
	add_at(ev, when);
}

static void emit_gate(struct acud *d, const struct acu_room *r, int c, int on, const char *cause)
{
	json_t *ev = json_pack("{s:s,s:s,s:i,s:b,s:s}", "event", "gate", "room", r->cfg->id,
			       "channel", c + 1, "on", on, "cause", cause);
	json_t *rec = json_pack("{s:s,s:i,s:b,s:s}", "type", "gate", "channel", c + 1, "on", on,
				"cause", cause);

	publish(d, PUBLISH_GATE, ev);
	history_add(d, r->cfg->id, rec);
	log_info("room %s: channel %d gate %s (%s)", r->cfg->id, c + 1, on ? "on" : "off", cause);
}

static int any_fault(const struct acud *d)
{
	int n = 0;

	for (int i = 0; i < d->nrooms; i++)
		n += d->rooms[i].gpio_fault != 0;
	return n;
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;
	struct gpio_line *l = gpio_find(d->gpio, &d->cfg->heartbeat);

	(void)fd;
	(void)what;
	if (l && gpio_set(d->gpio, l, l->active != 1) < 0)
		log_err("heartbeat line write failed");
}

/* S7: the heartbeat toggles only while some gate is on and no GPIO fault is
 * pending, so an external watchdog cuts stimulator power when it stops. */
static void heartbeat_update(struct acud *d)
{
	struct gpio_line *l = gpio_find(d->gpio, &d->cfg->heartbeat);

	if (!l)
		return;
	if (gate_heartbeat_runs(d->gates_on, any_fault(d))) {
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
		if (l->active != 0)
			gpio_set(d->gpio, l, 0);
	}
}

/* S7: every gate and pulse line of the room driven off, each attempted
 * whatever the others did; a channel that was on is reported off. */
static void rt_publish(struct acud *d, struct acu_room *r, unsigned keep, int plan_cut,
		       const struct acu_now *now);
static void rt_sync(struct acud *d);

/* A gate went off at `at` (now, or when the pulse thread cut it): counted
 * off, its time delivered, and reported with its cause. */
static void gate_went_off(struct acud *d, struct acu_room *r, int c, int64_t at,
			  const char *cause)
{
	struct acu_channel *ch = &r->s.stim.ch[c];

	ch->on = 0;
	ch->delivered_ns += at - ch->on_since;
	d->gates_on--;
	emit_gate(d, r, c, 0, cause);
}

static void room_outputs_off(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	struct room_rt *rt = rt_of(d, r);

	/* The pulse thread lets go of the room before its lines are driven. */
	if (d->rtpulse)
		rt_publish(d, r, 0, 0, now);
	for (int c = 0; c < r->cfg->nchannels; c++) {
		if (rt->pulse[c])
			gpio_set(d->gpio, rt->pulse[c], 0);
		gpio_set(d->gpio, rt->gate[c], 0);
		if (r->s.stim.ch[c].on)
			gate_went_off(d, r, c, now->mono, "gpio-fault");
	}
	rt->tr.high = 0;
}

/* S7: a failed write raises the fault (room.c), tries every output of the
 * room off and, through heartbeat_update, stops the heartbeat. */
static void stim_fault(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	int e = errno, first = !r->gpio_fault;

	room_gpio_fault(r, now);
	room_outputs_off(d, r, now);
	/* Logged after the writes: stderr can block. */
	if (first)
		log_errx("room %s: GPIO write failed: %s; outputs off, heartbeat stopped, arming "
			"blocked until reload", r->cfg->id, strerror(e));
}

/* High flashes at 2 Hz, medium at 0.5 Hz, low is steady (SPEC §4); an audible
 * line stays quiet while silenced. */
static void alarm_update(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	struct room_rt *rt = rt_of(d, r);
	enum acu_priority level = room_alarm_level(r);
	int64_t since = now->mono, next = ACU_NEVER;
	int want = 0;

	if (!rt->alarm)
		return;
	event_del(rt->alarm_ev);
	/* A lamp test shows each pattern in turn (room_lamp_test); any real
	 * alarm ends it at once. */
	if (level != PRIO_NONE || now->mono >= rt->test_until) {
		rt->test_until = 0;
	} else {
		int64_t third = (rt->test_until - rt->test_from) / 3;

		level = room_lamp_test(now->mono - rt->test_from, rt->test_until - rt->test_from);
		since = rt->test_from + (level == PRIO_HIGH ? 0 : level == PRIO_MEDIUM ? 1 : 2) * third;
		next = level == PRIO_LOW ? rt->test_until : since + third;
	}
	if (level == PRIO_NONE || (r->cfg->audible && room_silenced(r, now->mono))) {
		want = 0;
	} else if (level == PRIO_LOW) {
		want = 1;
	} else {
		int64_t half = level == PRIO_HIGH ? NS_PER_SEC / 4 : NS_PER_SEC, k;

		for (int i = 0; i < AL__N; i++)
			if (r->alarm[i].active && r->alarm[i].priority == level &&
			    r->alarm[i].since_mono < since)
				since = r->alarm[i].since_mono;
		k = (now->mono - since) / half;
		want = k % 2 == 0;
		if (since + (k + 1) * half < next)
			next = since + (k + 1) * half;
	}
	if (next != ACU_NEVER)
		add_at(rt->alarm_ev, next);
	if (rt->alarm->active != want && gpio_set(d->gpio, rt->alarm, want) < 0 &&
	    !r->gpio_fault) {
		stim_fault(d, r, now);
		/* Shows the fault at once (a failing line is tried again at
		 * every flash); with the fault set this does not come back. */
		alarm_update(d, r, now);
		heartbeat_update(d);
	}
}

/* A write that failed outside a commit (pulse edges, alarm flashes) is
 * committed now, so the fault reaches the state file, history and watchers. */
static void commit_fault(struct acud *d, struct acu_room *r, const struct acu_room *before,
			 const struct acu_now *now)
{
	char msg[256];

	if (r->gpio_fault && !before->gpio_fault &&
	    commit_change(d, r, before, now, NULL, "gpio-fault", msg, sizeof msg) < 0)
		log_errx("%s", msg);
}

int stim_lamp_test(struct acud *d, struct acu_room *r, int64_t duration,
		   const struct acu_now *now)
{
	struct room_rt *rt = rt_of(d, r);

	if (!rt || !rt->alarm)
		return -1;
	rt->test_from = now->mono;
	rt->test_until = now->mono + duration;
	alarm_update(d, r, now);
	return 0;
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

/* The loop's own pulse lines; -1 when a write failed (the fault is raised). */
static int pulse_lines(struct acud *d, struct acu_room *r, int high, const struct acu_now *now)
{
	struct room_rt *rt = rt_of(d, r);

	for (int c = 0; c < r->cfg->npulse; c++) {
		if (high && !r->s.stim.ch[c].on)
			continue;
		if (gpio_active(rt->pulse[c]) == high)
			continue;
		if (gpio_set(d->gpio, rt->pulse[c], high) < 0) {
			stim_fault(d, r, now);
			return -1;
		}
		if (high)
			r->s.stim.ch[c].pulses++;
	}
	return 0;
}

static void pulse_schedule(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	struct room_rt *rt = rt_of(d, r);
	const struct acu_profile_cfg *p = room_profile(d, r);
	int64_t rise;

	if (d->rtpulse) {
		rt_publish(d, r, ~0u, 1, now);
		return;
	}
	if (!p || !any_pulse_channel_on(r)) {
		event_del(rt->pulse_ev);
		if (rt->tr.high && pulse_lines(d, r, 0, now) == 0)
			train_stop(&rt->tr);
		return;
	}
	if (rt->tr.high || evtimer_pending(rt->pulse_ev, NULL))
		return;
	rise = train_next(&rt->tr, p, r->s.stim.armed_at);
	if (rise != ACU_NEVER)
		add_at(rt->pulse_ev, rise);
}

/* The hot path: a snapshot for the rare fault only when a write fails. */
static int pulse_edge(struct acud *d, struct acu_room *r, int high, const struct acu_now *now)
{
	struct acu_room before;
	int rc;

	if (r->gpio_fault)
		return -1;
	memcpy(&before, r, sizeof before);
	rc = pulse_lines(d, r, high, now);
	commit_fault(d, r, &before, now);
	return rc;
}

/* Pulses that could not be sent on time (n for the room, missed[c] for each
 * channel that was pulsing) are counted; a channel past [alarm] timing_share
 * raises the timing alarm (SPEC §4), committed like any change. The train
 * goes on either way. */
static int late_count(struct acud *d, struct acu_room *r, int64_t n, const int64_t *missed,
		      const struct acu_now *now)
{
	json_t *rec, *chans;
	int was = r->alarm[AL_TIMING].active;

	room_pulses_late(r, n, missed, d->cfg->timing_share_ppm, now);
	if (was || !r->alarm[AL_TIMING].active)
		return 0;
	chans = json_array();
	for (int c = 0; c < r->cfg->npulse; c++)
		json_array_append_new(chans, json_pack("{s:i,s:I,s:I}", "channel", c + 1, "pulses",
						       (json_int_t)r->s.stim.ch[c].pulses, "missed",
						       (json_int_t)r->s.stim.ch[c].missed));
	rec = json_pack("{s:s,s:I,s:I,s:o}", "type", "timing", "late", (json_int_t)n,
			"missed_pulses", (json_int_t)r->s.stim.missed, "channels", chans);
	history_add(d, r->cfg->id, rec);
	log_notice("room %s: %lld pulse%s late, %lld this session: timing alarm", r->cfg->id,
		   (long long)n, n == 1 ? "" : "s", (long long)r->s.stim.missed);
	return 1;
}

static void pulses_late(struct acud *d, struct acu_room *r, int64_t n, const int64_t *missed,
			const struct acu_now *now)
{
	struct acu_room before;
	char msg[256];

	memcpy(&before, r, sizeof before);
	if (!late_count(d, r, n, missed, now)) {
		pulse_schedule(d, r, now);
		return;
	}
	if (commit_change(d, r, &before, now, NULL, "timing", msg, sizeof msg) < 0)
		log_errx("%s", msg);
}

/* Late pulses of the loop's own train: every channel pulsing missed them. */
static void loop_late(struct acud *d, struct acu_room *r, int64_t n, const struct acu_now *now)
{
	int64_t missed[ACU_MAX_CHANNELS] = { 0 };

	for (int c = 0; c < r->cfg->npulse; c++)
		if (r->s.stim.ch[c].on)
			missed[c] = n;
	pulses_late(d, r, n, missed, now);
}

static void pulse_cb(evutil_socket_t fd, short what, void *arg)
{
	struct room_rt *rt = arg;
	struct acud *d = rt->d;
	struct acu_room *r = rt_room(rt);
	const struct acu_profile_cfg *p = room_profile(d, r);
	struct acu_now now = acu_now();
	int64_t late;

	(void)fd;
	(void)what;
	if (!p || !any_pulse_channel_on(r)) {
		if (rt->tr.high && pulse_lines(d, r, 0, &now) == 0)
			train_stop(&rt->tr);
		return;
	}
	switch (train_due(&rt->tr, p, now.mono, &late)) {
	case TRAIN_WAIT: /* woke early: wait out the rest */
		add_at(rt->pulse_ev, train_wake(&rt->tr));
		return;
	case TRAIN_SKIP:
		/* The loop was held up: the pulses too late to send are missed. */
		loop_late(d, r, late, &now);
		return;
	case TRAIN_RISE:
		if (pulse_edge(d, r, 1, &now) == 0)
			add_at(rt->pulse_ev, train_rose(&rt->tr, p, acu_mono_now()));
		return;
	case TRAIN_FALL:
		/* Ended at the loop's first chance (timers run before clients). */
		if (pulse_edge(d, r, 0, &now) < 0)
			return;
		late = train_fell(&rt->tr, p, now.mono);
		if (late)
			loop_late(d, r, late, &now);
		else
			pulse_schedule(d, r, &now);
		return;
	}
}

/* --- interlock input ------------------------------------------------------ */

/* S5: one latched read of the room's interlock applied to the room (room.c);
 * the caller drives the gates from the result. Returns ROOM_IL_* bits. */
static int interlock_read(struct acud *d, struct acu_room *r, const struct acu_now *now,
			  int *level)
{
	struct room_rt *rt = rt_of(d, r);
	int edges;

	*level = 0;
	if (!rt || !rt->interlock || !d->gpio)
		return 0;
	*level = gpio_read(d->gpio, rt->interlock, &edges);
	if (edges > 0 || *level < 0) {
		if (!rt->il_seen.set)
			rt->il_seen.at = *now;
		rt->il_seen.set = 1;
		rt->il_seen.level = *level;
		rt->il_seen.edges += edges > 0 ? edges : 0;
	}
	return room_interlock(r, *level, edges, now);
}

/* What interlock_read saw, to the line watchers: after the change's writes. */
void stim_interlock_told(struct acud *d, const struct acu_room *r)
{
	struct room_rt *rt = rt_of(d, r);

	if (!rt || !rt->il_seen.set)
		return;
	lines_edge(d, rt->interlock, rt->il_seen.level, rt->il_seen.edges, &rt->il_seen.at);
	memset(&rt->il_seen, 0, sizeof rt->il_seen);
}

static json_t *interlock_record(int what, int level)
{
	json_t *rec = json_pack("{s:s,s:b}", "type", "interlock", "tripped",
				(what & ROOM_IL_TRIPPED) || level != 0);

	/* Tripped and clear again before it was read: latched all the same. */
	if ((what & ROOM_IL_TRIPPED) && level == 0)
		json_object_set_new(rec, "held", json_false());
	if (what & ROOM_IL_UNREADABLE)
		json_object_set_new(rec, "unreadable", json_true());
	return rec;
}

static void interlock_log(const struct acu_room *r, int what)
{
	if (what & ROOM_IL_UNREADABLE)
		log_errx("room %s: interlock input cannot be read: counted as tripped; gpio-fault",
			r->cfg->id);
	if (what & ROOM_IL_TRIPPED)
		log_warnx("room %s: interlock tripped; stimulation off", r->cfg->id);
	else if (what & ROOM_IL_CLEARED)
		log_notice("room %s: interlock clear", r->cfg->id);
}

/* Inside a change that is about to drive gates or arm (stim_apply, the
 * arming commands): the line read fresh, what it said in the history. */
static int interlock_in_change(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	int level, what = interlock_read(d, r, now, &level);

	if (what)
		history_add(d, r->cfg->id, interlock_record(what, level));
	return what;
}

int stim_interlock_fresh(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	interlock_log(r, interlock_in_change(d, r, now));
	return r->interlock_tripped;
}

/* An interlock edge outside any change (its fd woke the loop, or a request is
 * about to run): applied and committed before anything else happens. */
static void interlock_event(struct acud *d, struct acu_room *r)
{
	struct acu_room before;
	struct acu_now now = acu_now();
	char msg[256];
	int level, what;

	memcpy(&before, r, sizeof before);
	what = interlock_read(d, r, &now, &level);
	if (what) {
		/* The record after the cut. */
		commit_outputs(d, r, &now, "interlock");
		if (commit_finish(d, r, &before, &now, interlock_record(what, level), msg,
				  sizeof msg) < 0)
			log_errx("%s", msg);
	}
	gpio_sync(d->gpio);
	stim_interlock_told(d, r);
	/* Logged after the gates are off: stderr can block. */
	interlock_log(r, what);
}

static void input_cb(evutil_socket_t fd, short what, void *arg)
{
	struct room_rt *rt = arg;

	(void)fd;
	(void)what;
	interlock_event(rt->d, rt_room(rt));
}

/* The interlock and button lines in one epoll set, so that the check before
 * every request is one epoll_wait(2) whatever the number of rooms; a poll(2)
 * over all of them cost several times the rest of a stop's path. Made with
 * the room table (rt_array); -1 when it could not be, or a line could not be
 * added: then stim_inputs_poll polls every line as before. */
#define INPUT_BUTTON 0x80000000u

static void inputs_watch(struct acud *d, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	if (d->inputs_ep < 0 || fd < 0)
		return;
	if (epoll_ctl(d->inputs_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("input lines: epoll_ctl; each request polls every line instead");
		close(d->inputs_ep);
		d->inputs_ep = -1;
	}
}

void stim_inputs_watch_button(struct acud *d, int fd, int index)
{
	inputs_watch(d, fd, INPUT_BUTTON | (uint32_t)index);
}

/* Without the set: every line in one poll(2). */
static void inputs_poll_all(struct acud *d)
{
	struct pollfd pfd[ACU_MAX_ROOMS];
	int idx[ACU_MAX_ROOMS], n = 0;

	for (int i = 0; i < d->nrooms && n < ACU_MAX_ROOMS; i++) {
		const struct room_rt *rt = rt_of(d, &d->rooms[i]);

		if (rt && rt->interlock && rt->interlock->fd >= 0) {
			pfd[n].fd = rt->interlock->fd;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			idx[n++] = i;
		}
	}
	if (n > 0 && poll(pfd, (nfds_t)n, 0) > 0)
		for (int k = 0; k < n; k++)
			if (pfd[k].revents)
				interlock_event(d, &d->rooms[idx[k]]);
	/* The room buttons after the interlocks: a trip is handled first. */
	button_poll(d);
}

/* S5: a trip is handled before any later request: whatever edge is queued
 * on any interlock is read and committed now, then the buttons' (those
 * seen by the same epoll_wait; one pressed meanwhile waits for the loop). */
void stim_inputs_poll(struct acud *d)
{
	struct epoll_event ev[3 * ACU_MAX_ROOMS];
	unsigned char room[ACU_MAX_ROOMS] = { 0 }, button[2 * ACU_MAX_ROOMS] = { 0 };
	int n, nbutton = 0;

	/* And what the pulse thread did (a cut, pulses to count), taken in. */
	if (d->rtpulse)
		rt_sync(d);
	if (!d->room_rt)
		return;
	if (d->inputs_ep < 0) {
		inputs_poll_all(d);
		return;
	}
	n = epoll_wait(d->inputs_ep, ev, (int)(sizeof ev / sizeof ev[0]), 0);
	if (n < 0) {
		if (errno != EINTR)
			log_warn("input lines: epoll_wait");
		inputs_poll_all(d);
		return;
	}
	/* In room order, as one poll over them all would have them. */
	for (int k = 0; k < n; k++) {
		uint32_t tag = ev[k].data.u32;

		if (!(tag & INPUT_BUTTON) && tag < ACU_MAX_ROOMS)
			room[tag] = 1;
		else if ((tag & ~INPUT_BUTTON) < 2 * ACU_MAX_ROOMS) {
			button[tag & ~INPUT_BUTTON] = 1;
			nbutton++;
		}
	}
	for (int i = 0; i < d->nrooms && i < ACU_MAX_ROOMS; i++)
		if (room[i])
			interlock_event(d, &d->rooms[i]);
	for (int i = 0; nbutton && i < 2 * ACU_MAX_ROOMS; i++)
		if (button[i])
			button_ready(d, i);
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
	if (commit_change(d, r, &before, &now, NULL, "schedule", msg, sizeof msg) < 0)
		log_errx("%s", msg);
}

/* The pure decision's inputs, as the room stands now. */
static void plan_of(const struct acud *d, const struct acu_room *r, const struct acu_now *now,
		    struct gate_plan *plan)
{
	const struct acu_profile_cfg *p = room_profile(d, r);
	struct gate_room_in in = {
		.room = r->cfg,
		.profile = p,
		.state = r->s.state,
		.armed = r->s.stim.armed,
		.armed_at = r->s.stim.armed_at,
		.flags = r->s.flags,
		.policy = d->cfg->policy,
		.interlock_tripped = r->interlock_tripped,
		.gpio_fault = r->gpio_fault,
		.budget_ns = room_stim_budget(r, d->cfg, p),
		.stim_max_ns = d->cfg->stim_max * NS_PER_SEC,
		.now = now->mono,
	};

	for (int c = 0; c < r->cfg->nchannels; c++) {
		const struct acu_channel *ch = &r->s.stim.ch[c];

		in.delivered_ns[c] = ch->delivered_ns + (ch->on ? now->mono - ch->on_since : 0);
	}
	gate_plan(&in, plan);
}

static int plan_turns_on(const struct acu_room *r, const struct gate_plan *plan)
{
	for (int c = 0; c < r->cfg->nchannels; c++)
		if (plan->why[c] == GATE_ON && !r->s.stim.ch[c].on)
			return 1;
	return 0;
}

/* --- the pulse thread ------------------------------------------------------ */

/* The gates a room's next cut drives off, and when: the first instant, of the
 * plan's next change and the session's end, at which the pure core (room_tick,
 * then gate_plan, on a copy of the room) turns off a gate that is on now. */
static void cut_plan(struct acud *d, const struct acu_room *r, const struct acu_now *now,
		     struct rtpulse_room *in, const char **cause)
{
	struct gate_plan pl;
	int64_t at[2];
	unsigned on = 0;

	in->cut = 0;
	in->cut_at = ACU_NEVER;
	for (int c = 0; c < r->cfg->nchannels; c++)
		if (r->s.stim.ch[c].on)
			on |= 1u << c;
	if (!on || r->s.state != ST_RUNNING)
		return;
	plan_of(d, r, now, &pl);
	at[0] = pl.next < r->s.end ? pl.next : r->s.end;
	at[1] = pl.next < r->s.end ? r->s.end : pl.next;
	for (int k = 0; k < 2 && at[k] != ACU_NEVER; k++) {
		struct acu_now then = { at[k], now->wall + (at[k] - now->mono) };
		struct acu_room tmp;
		unsigned m = 0;
		int first = -1;

		memcpy(&tmp, r, sizeof tmp);
		room_tick(&tmp, d->cfg, &then);
		plan_of(d, &tmp, &then, &pl);
		for (int c = 0; c < r->cfg->nchannels; c++) {
			if ((on & (1u << c)) && pl.why[c] != GATE_ON) {
				m |= 1u << c;
				if (first < 0)
					first = c;
			}
		}
		if (!m)
			continue;
		in->cut = m;
		in->cut_at = at[k];
		*cause = tmp.s.state != ST_RUNNING ? "expiry" : gate_off_cause(pl.why[first], "schedule");
		return;
	}
}

/* Hands the room to the pulse thread: its lines, its train on the channels
 * that are on and in keep, and (plan_cut) its next cut. */
static void rt_publish(struct acud *d, struct acu_room *r, unsigned keep, int plan_cut,
		       const struct acu_now *now)
{
	struct room_rt *rt = rt_of(d, r);
	struct rtpulse_room in;

	if (!rt)
		return;
	memset(&in, 0, sizeof in);
	in.gpio = d->gpio;
	in.ngate = r->cfg->nchannels;
	in.npulse = r->cfg->npulse;
	memcpy(in.gate, rt->gate, sizeof in.gate);
	memcpy(in.pulse, rt->pulse, sizeof in.pulse);
	in.profile = room_profile(d, r);
	in.armed_at = r->s.stim.armed_at;
	for (int c = 0; c < r->cfg->npulse; c++)
		if (r->s.stim.ch[c].on && (keep & (1u << c)))
			in.pulse_on |= 1u << c;
	in.cut_at = ACU_NEVER;
	if (plan_cut)
		cut_plan(d, r, now, &in, &rt->cut_cause);
	rtpulse_set(d->rtpulse, rt->index, &in);
}

#define RT_ALARM 1                     /* the timing alarm was raised */
#define RT_CUT 2                       /* a cut waits to be taken in */
#define RT_FAULT 4

/* What the thread did in the room: pulses counted, late ones counted (and
 * the timing alarm); a cut or a fault is kept in rt->rep for stim_apply. */
static int rt_take(struct acud *d, struct acu_room *r, const struct acu_now *now)
{
	struct room_rt *rt = rt_of(d, r);
	struct rtpulse_report rep;
	int what = 0;

	if (!rt || !rtpulse_take(d->rtpulse, rt->index, &rep))
		return 0;
	for (int c = 0; c < r->cfg->npulse; c++)
		r->s.stim.ch[c].pulses += rep.pulses[c];
	if (rep.late && late_count(d, r, rep.late, rep.missed, now))
		what |= RT_ALARM;
	if (rep.cut) {
		if (!rt->rep.cut || rep.cut_at < rt->rep.cut_at)
			rt->rep.cut_at = rep.cut_at;
		rt->rep.cut |= rep.cut;
	}
	rt->rep.fault |= rep.fault;
	return what | (rt->rep.cut ? RT_CUT : 0) | (rt->rep.fault ? RT_FAULT : 0);
}

/* Everything the thread did, taken in: before each request (so a status
 * counts every pulse sent) and when it says a report waits. A cut or a
 * fault is committed at once, like the change it is; expiry first, for
 * every room whose deadline passed. */
static void rt_sync(struct acud *d)
{
	struct acu_now now = acu_now();
	int cuts = 0;
	char msg[256];

	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i], before;
		int what;

		if (!rtpulse_pending(d->rtpulse, i))
			continue;
		memcpy(&before, r, sizeof before);
		what = rt_take(d, r, &now);
		/* S6 as the sim's files show it: the thread's edges are in them
		 * before the change they made is reported. */
		if (what & (RT_CUT | RT_FAULT))
			gpio_sync(d->gpio);
		if (what & RT_CUT)
			cuts = 1;
		else if ((what & (RT_ALARM | RT_FAULT)) &&
			 commit_change(d, r, &before, &now, NULL, what & RT_FAULT ? "gpio-fault" :
				       "timing", msg, sizeof msg) < 0)
			log_errx("%s", msg);
	}
	if (!cuts)
		return;
	commit_deadlines(d);
	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i], before;
		struct room_rt *rt = rt_of(d, r);

		if (!rt || !(rt->rep.cut || rt->rep.fault))
			continue;
		memcpy(&before, r, sizeof before);
		if (commit_change(d, r, &before, &now, NULL, rt->rep.fault ? "gpio-fault" :
				  rt->cut_cause ? rt->cut_cause : "schedule", msg, sizeof msg) < 0)
			log_errx("%s", msg);
	}
}

static void rt_report_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;

	(void)fd;
	(void)what;
	rtpulse_ack(d->rtpulse);
	rt_sync(d);
}

/* Inside a change: the thread's latest taken in first. A fault it met is
 * raised (it drove the room's lines off already); the gates it cut are off
 * since then (off_at). Returns those gates. */
static unsigned rt_absorb(struct acud *d, struct acu_room *r, const struct acu_now *now,
			  int64_t *off_at)
{
	struct room_rt *rt = rt_of(d, r);
	unsigned cut;

	rt_take(d, r, now);
	/* S6 as the sim's files show it, as in rt_sync: the thread's edges are
	 * in them before this change reports what they did. The writes below
	 * find those lines where the thread left them and write nothing. */
	if (rt->rep.cut || rt->rep.fault)
		gpio_sync(d->gpio);
	if (rt->rep.fault && !r->gpio_fault) {
		errno = EIO;
		stim_fault(d, r, now);
	}
	rt->rep.fault = 0;
	cut = rt->rep.cut;
	for (int c = 0; c < r->cfg->nchannels; c++)
		if (cut & (1u << c))
			off_at[c] = rt->rep.cut_at;
	rt->rep.cut = 0;
	return cut;
}

/* --- applying the plan ---------------------------------------------------------- */

/* Writes what gate_plan() decides. Nothing here returns early: whatever a
 * write did, the room's schedule, alarm line and the heartbeat are brought
 * up to date. */
int stim_apply(struct acud *d, struct acu_room *r, const struct acu_now *now, const char *cause)
{
	struct room_rt *rt = rt_of(d, r);
	struct acu_stim *st = &r->s.stim;
	struct gate_plan plan;
	int64_t off_at[ACU_MAX_CHANNELS];
	unsigned cut = 0, keep = 0;
	int changed = 0, failed = 0, il = 0;

	if (!rt)
		return 0;
	for (int c = 0; c < ACU_MAX_CHANNELS; c++)
		off_at[c] = now->mono;
	if (d->rtpulse)
		cut = rt_absorb(d, r, now, off_at);
	plan_of(d, r, now, &plan);
	/* A cut the thread made that the plan no longer wants (a change came
	 * in between the plan it was made from and its instant): reported as
	 * the cut it was; the plan turns the gate on again below. */
	for (int c = 0; c < r->cfg->nchannels; c++) {
		if (!(cut & (1u << c)) || !st->ch[c].on || plan.why[c] != GATE_ON)
			continue;
		gate_went_off(d, r, c, off_at[c], rt->cut_cause ? rt->cut_cause : "schedule");
		changed = 1;
	}
	/* S5: no gate goes on without a fresh read of the interlock. */
	if (rt->interlock && plan_turns_on(r, &plan)) {
		il = interlock_in_change(d, r, now);
		if (il)
			plan_of(d, r, now, &plan);
		if (il & ROOM_IL_TRIPPED)
			cause = "interlock";
	}
	/* No pulse on a channel whose gate goes off. */
	if (d->rtpulse) {
		for (int c = 0; c < r->cfg->nchannels; c++)
			if (plan.why[c] == GATE_ON)
				keep |= 1u << c;
		rt_publish(d, r, keep, 0, now);
	}
	/* S6: every gate that must be off goes off before anything goes on; a
	 * line whose last write failed is written again. */
	for (int c = 0; c < r->cfg->nchannels; c++) {
		struct acu_channel *ch = &st->ch[c];
		int bad = 0;

		if (plan.why[c] == GATE_ON)
			continue;
		if (rt->pulse[c] && gpio_active(rt->pulse[c]) != 0 &&
		    gpio_set(d->gpio, rt->pulse[c], 0) < 0)
			failed = 1;
		if ((ch->on || gpio_active(rt->gate[c]) != 0) && gpio_set(d->gpio, rt->gate[c], 0) < 0)
			failed = bad = 1;
		if (!ch->on)
			continue;
		changed = 1;
		gate_went_off(d, r, c, off_at[c],
			      bad ? "gpio-fault" : gate_off_cause(plan.why[c], cause));
	}
	for (int c = 0; c < r->cfg->nchannels && !failed; c++) {
		struct acu_channel *ch = &st->ch[c];

		if (plan.why[c] != GATE_ON || ch->on)
			continue;
		/* Counted on before the write: after a failure the gate may be
		 * active, and the fault drives it off and reports it. */
		ch->on = 1;
		ch->on_since = now->mono;
		d->gates_on++;
		changed = 1;
		if (gpio_set(d->gpio, rt->gate[c], 1) < 0)
			failed = 1;
		else
			emit_gate(d, r, c, 1, cause);
	}
	if (failed) {
		stim_fault(d, r, now);
		plan_of(d, r, now, &plan);
	}
	/* Contraindication, refused flag, interlock, fault, a profile the room
	 * cannot run or the dose delivered: disarmed, and nothing turns the
	 * output back on without a new, checked `stim on`. */
	if (plan.end != GATE_ON && st->armed)
		log_notice("room %s: stimulation disarmed (%s)", r->cfg->id, gate_why_name(plan.end));
	room_stim_settle(r, plan.end == GATE_ON ? NULL : gate_why_name(plan.end));
	event_del(rt->sched_ev);
	if (plan.next != ACU_NEVER)
		add_at(rt->sched_ev, plan.next);
	pulse_schedule(d, r, now);
	alarm_update(d, r, now);
	heartbeat_update(d);
	stim_interlock_told(d, r);
	interlock_log(r, il);
	return changed;
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
		fatalx("out of memory");
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
		inputs_watch(d, rt->interlock->fd, (uint32_t)index);
	}
	return rt;
}

/* A room_rt for every room of d->rooms, by index. */
static void rt_array(struct acud *d)
{
	d->room_rt = xcalloc((size_t)d->nrooms + 1, sizeof *d->room_rt);
	d->room_rt_n = d->nrooms;
	d->inputs_ep = epoll_create1(EPOLL_CLOEXEC);
	if (d->inputs_ep < 0)
		log_warn("input lines: epoll_create1; each request polls every line instead");
	for (int i = 0; i < d->nrooms; i++)
		d->room_rt[i] = rt_new(d, i);
	button_attach(d);
}

static void rt_array_free(struct acud *d)
{
	/* The set is rt_array's: closed only where one was made. */
	if (d->room_rt && d->inputs_ep >= 0)
		close(d->inputs_ep);
	d->inputs_ep = -1;
	button_detach(d);
	for (int i = 0; d->room_rt && i < d->room_rt_n; i++)
		rt_free(d->room_rt[i]);
	free(d->room_rt);
	d->room_rt = NULL;
	d->room_rt_n = 0;
}

static void rooms_attach(struct acud *d, const struct acu_now *now)
{
	rt_array(d);
	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i];

		/* Outputs start inactive, so no gate is on whatever the state says. */
		for (int c = 0; c < ACU_MAX_CHANNELS; c++)
			r->s.stim.ch[c].on = 0;
		/* S5: a held trip or an unreadable input counts from the start. */
		interlock_log(r, interlock_in_change(d, r, now));
		stim_interlock_told(d, r);
	}
}

static void rooms_detach(struct acud *d)
{
	rt_array_free(d);
}

/* The pulse thread, once per process, at [daemon] realtime_priority; where
 * the system does not allow it, pulses and cut-offs stay on the event loop,
 * said once. */
static void rt_start(struct acud *d)
{
	static int tried;
	char why[256], warn[256];
	int prio = d->cfg->rt_priority;

	if (tried)
		return;
	tried = 1;
	if (prio == 0) {
		log_info("realtime_priority = 0: pulses and cut-offs on the event loop");
		return;
	}
	d->rtpulse = rtpulse_new(d->nrooms, NULL, gpio_set_rt);
	if (!d->rtpulse)
		fatalx("out of memory");
	if (rtpulse_start(d->rtpulse, prio, why, sizeof why, warn, sizeof warn) < 0) {
		log_warnx("real-time pulse thread not permitted (%s): pulses and cut-offs on the "
			  "event loop, where load can delay them (grant LimitRTPRIO=%d or "
			  "CAP_SYS_NICE)", why, prio);
		rtpulse_free(d->rtpulse);
		d->rtpulse = NULL;
		return;
	}
	if (warn[0])
		log_warnx("real-time pulse thread: %s: its memory may be paged out (raise "
			  "LimitMEMLOCK=)", warn);
	d->rtpulse_ev = event_new(d->base, rtpulse_fd(d->rtpulse), EV_READ | EV_PERSIST,
				  rt_report_cb, d);
	event_priority_set(d->rtpulse_ev, ACU_PRIO_TIME);
	event_add(d->rtpulse_ev, NULL);
	log_info("pulses and cut-offs on a real-time thread (SCHED_FIFO priority %d)", prio);
}

int stim_open(struct acud *d, char *err, size_t errlen)
{
	struct acu_now now = acu_now();

	d->gpio = gpio_open(d->cfg, err, errlen);
	if (!d->gpio)
		return -1;
	rt_start(d);
	if (d->rtpulse)
		rtpulse_reset(d->rtpulse, d->nrooms);
	d->heartbeat = evtimer_new(d->base, heartbeat_cb, d);
	event_priority_set(d->heartbeat, ACU_PRIO_TIME);
	d->gates_on = 0;
	rooms_attach(d, &now);
	/* Every line from the decision of the state as restored: restored
	 * alarms and a fault found at attach show on their lines at once; no
	 * gate goes on (a restart never re-arms). */
	for (int i = 0; i < d->nrooms; i++)
		stim_apply(d, &d->rooms[i], &now, "start");
	return 0;
}

/* The heartbeat and the chip let go of, after the rooms' own events. */
static void gpio_release(struct acud *d)
{
	if (d->heartbeat)
		event_free(d->heartbeat);
	d->heartbeat = NULL;
	gpio_close(d->gpio);
	d->gpio = NULL;
	d->gates_on = 0;
}

/* Everything off and every line released: the last thing before exit. */
void stim_close(struct acud *d)
{
	/* The thread stops before the lines are driven and released. */
	if (d->rtpulse_ev)
		event_free(d->rtpulse_ev);
	d->rtpulse_ev = NULL;
	rtpulse_free(d->rtpulse);
	d->rtpulse = NULL;
	if (d->gpio && gpio_all_off(d->gpio))
		log_errx("stop: some outputs could not be driven inactive");
	/* Without lines too: a reload after the running lines could not be
	 * had again still made a room table (and its input set). */
	rooms_detach(d);
	button_free(d);
	if (d->gpio)
		gpio_release(d);
}

/* The fatal path: no allocation, no event loop, no lock, only the writes. */
void stim_emergency_off(struct acud *d)
{
	if (d->gpio)
		gpio_emergency_off(d->gpio);
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
		/* Same lines, same rooms in the same order (the pulse thread's
		 * table with them, by index). */
		struct room_rt *keep = xcalloc((size_t)old_nrooms + 1, sizeof *keep);

		/* d->room_rt is still the old rooms', by their old index. */
		for (int i = 0; i < old_nrooms; i++) {
			struct room_rt *rt = i < d->room_rt_n ? d->room_rt[i] : NULL;

			if (!rt)
				continue;
			keep[i] = *rt;
			/* A pulse in flight ends now, and the train goes on after it. */
			if (rt->tr.high) {
				for (int c = 0; c < old_rooms[i].cfg->npulse; c++)
					gpio_set(d->gpio, rt->pulse[c], 0);
				train_stop(&keep[i].tr);
			}
		}
		rt_array_free(d);
		rt_array(d);
		for (int i = 0; i < d->nrooms; i++) {
			struct acu_room *r = &d->rooms[i];

			/* The pulse train keeps its phase: not re-based at the arming
			 * (which would count every pulse since as missed); what the
			 * thread did is still to be taken in. */
			if (i < old_nrooms) {
				d->room_rt[i]->tr = keep[i].tr;
				d->room_rt[i]->rep = keep[i].rep;
				d->room_rt[i]->cut_cause = keep[i].cut_cause;
			}
			/* Re-checked against the new config: a fresh read of the
			 * interlock (a GPIO fault the reload cleared comes back if
			 * the input still cannot be read); stim_apply disarms what
			 * the new profile, policy or wiring no longer allows. */
			interlock_log(r, interlock_in_change(d, r, &now));
			stim_apply(d, r, &now, "reload");
		}
		free(keep);
		return 0;
	}
	/* Rewired: nothing is armed (checked), so every output can go off and
	 * every line be requested again; the pulse thread lets go of them first. */
	if (d->rtpulse)
		rtpulse_reset(d->rtpulse, d->nrooms);
	rt_array_free(d);
	gpio_release(d);
	if (stim_open(d, err, errlen) < 0)
		return -1;
	for (int i = 0; i < d->nrooms; i++)
		stim_apply(d, &d->rooms[i], &now, "reload");
	return 0;
}

/* Unit tests of the room buttons (SPEC §11): the debounce (daemon/debounce.c)
 * and what a call or a presence press does to a room (daemon/room.c), driven
 * by an injected clock: no test sleeps, no timing threshold. */
#include <stdint.h>
#include <string.h>

#include "acud.h"
#include "cfg.h"
#include "debounce.h"
#include "fixture.h"
#include "room.h"
#include "unit.h"

#define MS(x) ((int64_t)(x) * NS_PER_MS)
#define P MS(20)
#define T0 SEC(1000)

static struct acu_room_cfg room_cfg;

static struct acu_now at(int64_t mono)
{
	return fixture_at(mono);
}

/* The config's defaults: call_escalate_after 2m, checkin_interval 10m,
 * session_min 5m. */
static void cfg_init(struct acu_cfg *c)
{
	fixture_cfg(c, NULL, 0);
}

/* ---- debounce ----------------------------------------------------------- */

static void test_debounce_press(void)
{
	struct debounce db;

	debounce_init(&db, 0);
	CHECK_EQ(debounce_next(&db, P), INT64_MAX);
	CHECK_EQ(debounce_feed(&db, 1, 1, T0, P, 1), 0);
	CHECK_EQ(debounce_next(&db, P), T0 + P);
	CHECK_EQ(debounce_settle(&db, T0 + P - 1, P), 0);
	CHECK_EQ(db.stable, 0);
	CHECK_EQ(debounce_settle(&db, T0 + P, P), DEBOUNCE_ROSE);
	CHECK_EQ(db.stable, 1);
	CHECK_EQ(debounce_next(&db, P), INT64_MAX);
	CHECK_EQ(debounce_settle(&db, T0 + 10 * P, P), 0);
	/* Release: debounced the same way. */
	CHECK_EQ(debounce_feed(&db, 0, 1, T0 + SEC(1), P, 1), 0);
	CHECK_EQ(debounce_settle(&db, T0 + SEC(1) + P, P), DEBOUNCE_FELL);
	CHECK_EQ(db.stable, 0);
}

/* Contacts bouncing for 18 ms then closed: one press, dated from the last edge. */
static void test_debounce_bounce(void)
{
	static const int lv[] = { 1, 0, 1, 0, 1 };
	static const int ms[] = { 0, 5, 10, 15, 18 };
	struct debounce db;
	int ev = 0;

	for (int latest = 0; latest <= 1; latest++) {
		debounce_init(&db, 0);
		ev = 0;
		for (int i = 0; i < 5; i++) {
			ev += debounce_feed(&db, lv[i], 1, T0 + MS(ms[i]), P, latest) != 0;
			ev += debounce_settle(&db, T0 + MS(ms[i]), P) != 0;
		}
		CHECK_EQ(ev, 0);
		CHECK_EQ(debounce_next(&db, P), T0 + MS(18) + P);
		CHECK_EQ(debounce_settle(&db, T0 + MS(37), P), 0);
		CHECK_EQ(debounce_settle(&db, T0 + MS(38), P), DEBOUNCE_ROSE);
	}
	/* The same burst in one read (the sim backend's level list). */
	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 1, 5, T0, P, 1), 0);
	CHECK_EQ(debounce_settle(&db, T0 + P, P), DEBOUNCE_ROSE);
	/* A blip that ends where it started: nothing, nothing pending. */
	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 0, 2, T0, P, 1), 0);
	CHECK_EQ(debounce_next(&db, P), INT64_MAX);
	CHECK_EQ(debounce_settle(&db, T0 + SEC(1), P), 0);
	/* Edges that leave the level as it was restart the period. */
	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 1, 1, T0, P, 1), 0);
	CHECK_EQ(debounce_feed(&db, 1, 2, T0 + MS(15), P, 1), 0);
	CHECK_EQ(debounce_settle(&db, T0 + MS(25), P), 0);
	CHECK_EQ(debounce_settle(&db, T0 + MS(35), P), DEBOUNCE_ROSE);
}

/* Shorter than the period: ignored; no debounce: at once. */
static void test_debounce_short_and_zero(void)
{
	struct debounce db;

	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 1, 1, T0, P, 1), 0);
	CHECK_EQ(debounce_feed(&db, 0, 1, T0 + MS(10), P, 1), 0);
	CHECK_EQ(debounce_next(&db, P), INT64_MAX);
	CHECK_EQ(debounce_settle(&db, T0 + SEC(1), P), 0);
	CHECK_EQ(db.stable, 0);

	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 1, 1, T0, 0, 1), 0);
	CHECK_EQ(debounce_next(&db, 0), T0);
	CHECK_EQ(debounce_settle(&db, T0, 0), DEBOUNCE_ROSE);
	/* Starting active (an input that reads active at start-up). */
	debounce_init(&db, 1);
	CHECK_EQ(db.stable, 1);
	CHECK_EQ(debounce_next(&db, P), INT64_MAX);
}

/* The loop was late: a press held 100 ms is read only with its release. A
 * call counts it (edges as late as can be); a presence does not. */
static void test_debounce_late_loop(void)
{
	struct debounce db;

	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 1, 1, T0, P, 1), 0);
	CHECK_EQ(debounce_feed(&db, 0, 1, T0 + MS(100), P, 1), DEBOUNCE_ROSE);
	CHECK_EQ(db.stable, 1);
	CHECK_EQ(debounce_settle(&db, T0 + MS(120), P), DEBOUNCE_FELL);

	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 1, 1, T0, P, 0), 0);
	CHECK_EQ(debounce_feed(&db, 0, 1, T0 + MS(100), P, 0), 0);
	CHECK_EQ(db.stable, 0);
	CHECK_EQ(debounce_next(&db, P), INT64_MAX);
	/* ... unless a read in between saw it held for the period. */
	debounce_init(&db, 0);
	CHECK_EQ(debounce_feed(&db, 1, 1, T0, P, 0), 0);
	CHECK_EQ(debounce_feed(&db, 1, 0, T0 + MS(50), P, 0), DEBOUNCE_ROSE);
}

/* Every sequence of up to 5 reads (level, edges, gap before it): events
 * alternate and follow `stable`; a change is accepted only once the input
 * has held its level, without an edge, for the period; once quiet for the
 * period, stable is the level last read. */
static void test_debounce_exhaustive(void)
{
	static const int64_t gaps[] = { 0, MS(5), MS(15), MS(45) };
	long n = 0, bad = 0;

	for (int len = 1; len <= 5; len++) {
		long combos = 1;

		for (int i = 0; i < len; i++)
			combos *= 2 * 2 * 4;
		for (int latest = 0; latest <= 1; latest++)
		for (int start = 0; start <= 1; start++)
		for (long k = 0; k < combos; k++) {
			struct debounce db;
			int64_t t = T0, chg = INT64_MIN / 2;
			long x = k;
			int stable = start, raw = start, ok = 1;

			debounce_init(&db, start);
			for (int i = 0; i < len; i++) {
				int level = (int)(x % 2), edges = (int)(x / 2 % 2) * 2 + level % 2;
				int64_t gap = gaps[x / 4 % 4];
				int e, changed;

				x /= 16;
				t += gap;
				changed = edges > 0 || level != raw;
				e = debounce_feed(&db, level, edges, t, P, latest);
				if (e) {
					/* What was held before this read's edges. */
					ok &= (e == DEBOUNCE_ROSE) == !stable && t - chg >= P;
					stable = !stable;
				}
				if (changed) {
					chg = t;
					raw = level;
				}
				e = debounce_settle(&db, t, P);
				if (e) {
					ok &= (e == DEBOUNCE_ROSE) == !stable && t - chg >= P &&
					      raw == !stable;
					stable = !stable;
				}
				ok &= db.stable == stable;
			}
			t += P;
			if (debounce_settle(&db, t, P))
				stable = !stable;
			ok &= db.stable == raw && stable == raw;
			ok &= debounce_next(&db, P) == INT64_MAX;
			n++;
			bad += !ok;
		}
	}
	CHECK(n > 100000);
	CHECK_EQ(bad, 0);
}

/* ---- call and presence ---------------------------------------------------- */

static void test_call(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_now now = at(T0);

	cfg_init(&cfg);
	room_init(&r, &room_cfg);
	/* No session needed (a patient waiting on the table). */
	CHECK_EQ(room_call(&r, &now), 1);
	CHECK(r.alarm[AL_CALL].active);
	CHECK_EQ(r.alarm[AL_CALL].priority, PRIO_MEDIUM);
	CHECK_EQ(r.alarm[AL_CALL].since_mono, T0);
	CHECK_EQ(room_alarm_level(&r), PRIO_MEDIUM);
	/* Escalates after call_escalate_after, keeping its since. */
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(120));
	now = at(T0 + SEC(119));
	CHECK_EQ(room_tick(&r, &cfg, &now), 0);
	/* A second call while one is active changes nothing. */
	CHECK_EQ(room_call(&r, &now), 0);
	CHECK_EQ(r.alarm[AL_CALL].since_mono, T0);
	now = at(T0 + SEC(120));
	CHECK_EQ(room_tick(&r, &cfg, &now), 1);
	CHECK_EQ(r.alarm[AL_CALL].priority, PRIO_HIGH);
	CHECK_EQ(r.alarm[AL_CALL].since_mono, T0);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	/* Silence never takes it off: still active, still high. */
	{
		struct acu_err err;

		CHECK_EQ(room_silence(&r, 60, &now, &err), 0);
		CHECK(r.alarm[AL_CALL].active);
		CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);
	}
	/* Acknowledged, then a new call is a new alarm with a new since. */
	CHECK_EQ(room_presence(&r, &cfg, &now), ROOM_PRESENCE_CALL);
	CHECK(!r.alarm[AL_CALL].active);
	now = at(T0 + SEC(200));
	CHECK_EQ(room_call(&r, &now), 1);
	CHECK_EQ(r.alarm[AL_CALL].since_mono, T0 + SEC(200));
	CHECK_EQ(r.alarm[AL_CALL].priority, PRIO_MEDIUM);
	CHECK_EQ(r.alarm[AL_CALL].silenced_until, 0);
	/* call_escalate_after = 0: high at the first tick. */
	cfg.call_escalate_after = 0;
	CHECK_EQ(room_tick(&r, &cfg, &now), 1);
	CHECK_EQ(r.alarm[AL_CALL].priority, PRIO_HIGH);
}

/* `checkin` answers a call too, with or without a session. */
static void test_checkin_answers_call(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_now now = at(T0);
	struct acu_err err;
	struct acu_start q;

	cfg_init(&cfg);
	room_init(&r, &room_cfg);
	CHECK_EQ(room_checkin(&r, &cfg, &now, &err), -1);
	room_call(&r, &now);
	CHECK_EQ(room_checkin(&r, &cfg, &now, &err), 0);
	CHECK(!r.alarm[AL_CALL].active);
	CHECK_EQ(r.s.checkins, 0);
	memset(&q, 0, sizeof q);
	q.duration_s = 600;
	q.needles = 3;
	CHECK_EQ(room_start(&r, &cfg, &q, &now, &err), 0);
	room_call(&r, &now);
	CHECK_EQ(room_checkin(&r, &cfg, &now, &err), 0);
	CHECK(!r.alarm[AL_CALL].active);
	CHECK_EQ(r.s.checkins, 1);
}

static void test_presence_acks(void)
{
	int n = 0;

	for (int k = 0; k < AL__N; k++) {
		int want = k == AL_CALL || k == AL_CHECKIN;

		CHECK_EQ(room_presence_acks((enum acu_alarm_kind)k), want);
		n += room_presence_acks((enum acu_alarm_kind)k);
	}
	CHECK_EQ(n, 2);
}

/* A room in each state, with each subset of alarms active at each of the
 * priorities an alarm can have: presence clears exactly call and checkin,
 * leaves every other alarm as it was (high ones above all), and records a
 * check-in exactly when `checkin` would. */
static void test_presence_every_combination(void)
{
	static const enum acu_state states[] = { ST_IDLE, ST_RUNNING, ST_PAUSED, ST_DUE };
	long cases = 0, bad = 0;

	for (size_t si = 0; si < sizeof states / sizeof states[0]; si++)
	for (unsigned mask = 0; mask < (1u << AL__N); mask++)
	for (int prio = PRIO_LOW; prio <= PRIO_HIGH; prio++) {
		struct acu_cfg cfg;
		struct acu_room r, before;
		struct acu_now now = at(T0), later = at(T0 + SEC(30));
		struct acu_start q;
		struct acu_err err;
		int what, ok = 1;

		cfg_init(&cfg);
		room_init(&r, &room_cfg);
		memset(&q, 0, sizeof q);
		q.duration_s = 600;
		q.needles = 3;
		if (states[si] != ST_IDLE)
			ok &= room_start(&r, &cfg, &q, &now, &err) == 0;
		if (states[si] == ST_PAUSED)
			ok &= room_pause(&r, &cfg, &now, &err) == 0;
		if (states[si] == ST_DUE)
			ok &= room_stop(&r, &cfg, &now, &err) == 0;
		for (int k = 0; k < AL__N; k++) {
			memset(&r.alarm[k], 0, sizeof r.alarm[k]);
			if (mask & (1u << k)) {
				r.alarm[k].active = 1;
				r.alarm[k].priority = (enum acu_priority)prio;
				r.alarm[k].since_mono = T0 + k;
				r.alarm[k].since_wall = T0 + WALL_OFF + k;
			}
		}
		memcpy(&before, &r, sizeof before);
		what = room_presence(&r, &cfg, &later);
		for (int k = 0; k < AL__N; k++) {
			if (room_presence_acks((enum acu_alarm_kind)k))
				ok &= !r.alarm[k].active;
			else
				ok &= memcmp(&r.alarm[k], &before.alarm[k], sizeof r.alarm[k]) == 0;
		}
		ok &= ((what & ROOM_PRESENCE_CALL) != 0) == ((mask >> AL_CALL) & 1);
		{
			int session = states[si] == ST_RUNNING || states[si] == ST_PAUSED;

			ok &= ((what & ROOM_PRESENCE_CHECKIN) != 0) == session;
			ok &= r.s.checkins == before.s.checkins + session;
			if (states[si] == ST_RUNNING)
				ok &= r.s.checkin_due == later.mono + SEC(600);
		}
		/* Nothing of the session but its check-in changes. */
		ok &= r.s.state == before.s.state && r.s.needles == before.s.needles &&
		      r.s.end == before.s.end && r.s.due_since == before.s.due_since &&
		      r.s.stim.armed == before.s.stim.armed && r.gpio_fault == before.gpio_fault &&
		      r.interlock_tripped == before.interlock_tripped;
		cases++;
		bad += !ok;
	}
	CHECK_EQ(cases, 4L * (1L << AL__N) * 3);
	CHECK_EQ(bad, 0);
}

static void test_button_level(void)
{
	/* A call input that cannot be read calls (an open circuit); a
	 * presence input that cannot be read is not a press. */
	CHECK_EQ(room_button_level(1, -1), 1);
	CHECK_EQ(room_button_level(0, -1), 0);
	for (int fn = 0; fn <= 1; fn++) {
		CHECK_EQ(room_button_level(fn, 0), 0);
		CHECK_EQ(room_button_level(fn, 1), 1);
	}
}

static void test_lamp_test(void)
{
	const int64_t d = SEC(6);

	CHECK_EQ(room_lamp_test(-1, d), PRIO_NONE);
	CHECK_EQ(room_lamp_test(0, d), PRIO_HIGH);
	CHECK_EQ(room_lamp_test(SEC(2) - 1, d), PRIO_HIGH);
	CHECK_EQ(room_lamp_test(SEC(2), d), PRIO_MEDIUM);
	CHECK_EQ(room_lamp_test(SEC(4) - 1, d), PRIO_MEDIUM);
	CHECK_EQ(room_lamp_test(SEC(4), d), PRIO_LOW);
	CHECK_EQ(room_lamp_test(d - 1, d), PRIO_LOW);
	CHECK_EQ(room_lamp_test(d, d), PRIO_NONE);
	CHECK_EQ(room_lamp_test(0, 0), PRIO_NONE);
}

/* SPEC §5 and §11's defaults for the new keys. */
static void test_defaults(void)
{
	struct acu_cfg c;

	cfg_init(&c);
	CHECK_EQ(c.call_escalate_after, 120);
	CHECK_EQ(c.debounce_ms, 20);
}

int main(void)
{
	fixture_room(&room_cfg, "1", 1, 0);
	test_defaults();
	test_debounce_press();
	test_debounce_bounce();
	test_debounce_short_and_zero();
	test_debounce_late_loop();
	test_debounce_exhaustive();
	test_call();
	test_checkin_answers_call();
	test_presence_acks();
	test_presence_every_combination();
	test_button_level();
	test_lamp_test();
	return unit_report("test_call");
}

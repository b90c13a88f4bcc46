/* Unit tests of the fault rules of the room state machine (daemon/room.c:
 * room_interlock, room_gpio_fault, room_pulses_late, room_stim_stop,
 * room_stim_settle) against
 * SPEC S5, S7 and §4, with an injected clock: every reading of time is an
 * argument, nothing sleeps. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acud.h"
#include "cfg.h"
#include "room.h"
#include "fixture.h"
#include "unit.h"

#define T0 SEC(1000)

static struct acu_profile_cfg prof;
static struct acu_room_cfg rc;
static struct acu_cfg cfg;

#define at fixture_at

/* The room was disarmed by `kind`: blocked names it, its alarm is high. */
#define CHECK_DISARMED_BY(r, kind, name)                                             \
	do {                                                                         \
		CHECK_EQ((r)->s.stim.armed, 0);                                      \
		CHECK_STR((r)->s.stim.blocked, (name));                              \
		CHECK((r)->alarm[kind].active);                                      \
		CHECK_EQ((r)->alarm[kind].priority, PRIO_HIGH);                      \
	} while (0)

/* S5: reading the interlock at `level` after `edges` edges trips it and
 * disarms the room; the latch then holds `latched` (the line's level now). */
#define CHECK_TRIPS(r, level, edges, n, latched)                                     \
	do {                                                                         \
		CHECK_EQ(room_interlock(r, level, edges, n), ROOM_IL_TRIPPED);       \
		CHECK_DISARMED_BY(r, AL_INTERLOCK, "interlock");                     \
		CHECK_EQ((r)->interlock_tripped, (latched));                         \
	} while (0)

/* S7: a gpio-fault since `since`. */
#define CHECK_GPIO_FAULT(r, since)                                                   \
	do {                                                                         \
		CHECK_EQ((r)->gpio_fault, 1);                                        \
		CHECK_DISARMED_BY(r, AL_GPIO_FAULT, "gpio-fault");                   \
		CHECK_EQ((r)->alarm[AL_GPIO_FAULT].since_mono, (since));             \
	} while (0)

/* Two channels with pulse lines and an interlock; needles not required. */
static void fixtures(void)
{
	fixture_profile(&prof, "p2", MODE_CONTINUOUS, 0, 600, 0, 0);
	fixture_room(&rc, "1", 2, 1);
	rc.interlock.set = 1;
	rc.interlock.offset = 6;
	fixture_cfg(&cfg, &prof, 1);
	cfg.session_min = 60;
	cfg.require_needle_count = 0;
}

/* A running session on profile p2, started at T0; armed when asked. */
static void running(struct acu_room *r, int armed)
{
	struct acu_start q = { .duration_s = 1800, .needles = 4, .patient = "A1", .profile = "p2" };
	struct acu_now n = at(T0);
	struct acu_err e;
	unsigned warned;

	room_init(r, &rc);
	CHECK_EQ(room_start(r, &cfg, &q, &n, &e), 0);
	if (armed)
		CHECK_EQ(room_stim_on(r, &cfg, &n, &warned, &e), 0);
}

/* Most tests' start: that session, armed, and the clock at t. */
static struct acu_now running_at(struct acu_room *r, int64_t t)
{
	running(r, 1);
	return at(t);
}

static int arm(struct acu_room *r, int64_t t, struct acu_err *e)
{
	struct acu_now n = at(t);
	unsigned warned;

	return room_stim_on(r, &cfg, &n, &warned, e);
}

/* ---- S5: the latch --------------------------------------------------------- */

static void test_trip_held(void)
{
	struct acu_room r;
	struct acu_now n = running_at(&r, T0 + SEC(10));
	struct acu_err e;

	CHECK_TRIPS(&r, 1, 1, &n, 1);
	CHECK_EQ(r.alarm[AL_INTERLOCK].since_mono, T0 + SEC(10));
	CHECK_EQ(r.alarm[AL_INTERLOCK].since_wall, T0 + SEC(10) + WALL_OFF);
	CHECK_EQ(r.gpio_fault, 0);
	/* Held: re-arming refused; reading it again held is no news. */
	CHECK_EQ(arm(&r, T0 + SEC(11), &e), -1);
	CHECK_EQ(e.code, E_INTERLOCK);
	n = at(T0 + SEC(12));
	CHECK_EQ(room_interlock(&r, 1, 0, &n), 0);
	CHECK_EQ(r.alarm[AL_INTERLOCK].since_mono, T0 + SEC(10));
	/* Clear (one edge): still disarmed and alarmed until a new stim on. */
	n = at(T0 + SEC(13));
	CHECK_EQ(room_interlock(&r, 0, 1, &n), ROOM_IL_CLEARED);
	CHECK_EQ(r.interlock_tripped, 0);
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK(r.alarm[AL_INTERLOCK].active);
	CHECK_EQ(arm(&r, T0 + SEC(14), &e), 0);
	CHECK(!r.alarm[AL_INTERLOCK].active);
	CHECK_EQ(r.s.stim.armed_at, T0 + SEC(14));
}

static void test_trip_blip(void)
{
	struct acu_room r;
	struct acu_now n = running_at(&r, T0 + SEC(20));
	struct acu_err e;

	/* Tripped and clear again before the read (two edges): it still trips. */
	CHECK_TRIPS(&r, 0, 2, &n, 0);
	/* The line is clear now: a new, explicit stim on may arm again. */
	CHECK_EQ(arm(&r, T0 + SEC(21), &e), 0);
	CHECK(!r.alarm[AL_INTERLOCK].active);
	/* A blip on an unarmed running room raises the alarm too, also when
	 * its two edges came as one event. */
	room_stim_stop(&r);
	n = at(T0 + SEC(22));
	CHECK_EQ(room_interlock(&r, 0, 1, &n), ROOM_IL_TRIPPED);
	CHECK(r.alarm[AL_INTERLOCK].active);
	/* Nothing since the last read: nothing happens. */
	running(&r, 1);
	n = at(T0 + SEC(23));
	CHECK_EQ(room_interlock(&r, 0, 0, &n), 0);
	CHECK_EQ(r.s.stim.armed, 1);
	CHECK(!r.alarm[AL_INTERLOCK].active);
}

static void test_trip_idle(void)
{
	struct acu_room r;
	struct acu_now n = at(T0);

	/* Without a session the alarm follows the line. */
	room_init(&r, &rc);
	CHECK_EQ(room_interlock(&r, 1, 1, &n), ROOM_IL_TRIPPED);
	CHECK(r.alarm[AL_INTERLOCK].active);
	n = at(T0 + SEC(1));
	CHECK_EQ(room_interlock(&r, 0, 1, &n), ROOM_IL_CLEARED);
	CHECK(!r.alarm[AL_INTERLOCK].active);
	/* A blip: recorded by the caller, no alarm left behind. */
	CHECK_EQ(room_interlock(&r, 0, 2, &n), ROOM_IL_TRIPPED);
	CHECK(!r.alarm[AL_INTERLOCK].active);
	CHECK_EQ(r.interlock_tripped, 0);
}

static void test_unreadable(void)
{
	struct acu_room r;
	struct acu_now n = running_at(&r, T0 + SEC(30));
	struct acu_err e;

	/* S5: an input that cannot be read counts as tripped and raises gpio-fault. */
	CHECK_EQ(room_interlock(&r, -1, 0, &n), ROOM_IL_TRIPPED | ROOM_IL_UNREADABLE);
	CHECK_GPIO_FAULT(&r, T0 + SEC(30));
	CHECK_EQ(r.interlock_tripped, 1);
	CHECK(r.alarm[AL_INTERLOCK].active);
	/* Still unreadable: no news, still tripped. */
	n = at(T0 + SEC(31));
	CHECK_EQ(room_interlock(&r, -1, 0, &n), 0);
	CHECK_EQ(r.interlock_tripped, 1);
	/* Readable and clear again: the interlock clears, the fault stays
	 * until reload or restart (S7), so arming is still refused. */
	n = at(T0 + SEC(32));
	CHECK_EQ(room_interlock(&r, 0, 0, &n), ROOM_IL_CLEARED);
	CHECK_EQ(r.interlock_tripped, 0);
	CHECK_EQ(r.gpio_fault, 1);
	CHECK_EQ(arm(&r, T0 + SEC(33), &e), -1);
	CHECK_EQ(e.code, E_GPIO_FAULT);
	/* Unreadable on an idle room at start-up: the same. */
	room_init(&r, &rc);
	n = at(T0);
	CHECK_EQ(room_interlock(&r, -1, 0, &n), ROOM_IL_TRIPPED | ROOM_IL_UNREADABLE);
	CHECK_EQ(r.gpio_fault, 1);
	CHECK_EQ(r.interlock_tripped, 1);
}

/* ---- S7: a failed write --------------------------------------------------- */

static void test_gpio_fault(void)
{
	struct acu_room r;
	struct acu_now n = running_at(&r, T0 + SEC(40));
	struct acu_err e;

	room_gpio_fault(&r, &n);
	CHECK_GPIO_FAULT(&r, T0 + SEC(40));
	/* A second failure later keeps the first instant. */
	n = at(T0 + SEC(50));
	room_gpio_fault(&r, &n);
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].since_mono, T0 + SEC(40));
	/* Arming blocked; a hard flag is still named first. */
	CHECK_EQ(arm(&r, T0 + SEC(51), &e), -1);
	CHECK_EQ(e.code, E_GPIO_FAULT);
	r.s.flags |= 1u << FL_ICD;
	CHECK_EQ(arm(&r, T0 + SEC(52), &e), -1);
	CHECK_EQ(e.code, E_CONTRAINDICATED);
	/* A new alarm of higher priority is not silenced (SPEC §4). */
	running(&r, 1);
	room_alarm_raise(&r, AL_CHECKIN, PRIO_LOW, &n);
	CHECK_EQ(room_silence(&r, 60, &n, &e), 0);
	room_gpio_fault(&r, &n);
	CHECK_EQ(room_silenced(&r, n.mono), 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);
}

/* ---- §4: timing ------------------------------------------------------------ */

static void test_timing(void)
{
	struct acu_room r;
	struct acu_now n = running_at(&r, T0 + SEC(60));
	struct acu_err e;
	int64_t none[ACU_MAX_CHANNELS] = { 0 }, three[ACU_MAX_CHANNELS] = { 3 };
	int64_t one[ACU_MAX_CHANNELS] = { 1 }, two[ACU_MAX_CHANNELS] = { 2, 2 };

	room_pulses_late(&r, 0, none, 0, &n);
	CHECK(!r.alarm[AL_TIMING].active);
	CHECK_EQ(r.s.stim.missed, 0);
	/* 3 missed of 100 sent: under a 5 % share, counted without an alarm. */
	r.s.stim.ch[0].pulses = 100;
	room_pulses_late(&r, 3, three, 50000, &n);
	CHECK(!r.alarm[AL_TIMING].active);
	CHECK_EQ(r.s.stim.missed, 3);
	CHECK_EQ(r.s.stim.ch[0].missed, 3);
	/* 6 of 106 is over 5 %: the low timing alarm. */
	room_pulses_late(&r, 3, three, 50000, &n);
	CHECK(r.alarm[AL_TIMING].active);
	CHECK_EQ(r.alarm[AL_TIMING].priority, PRIO_LOW);
	CHECK_EQ(r.s.stim.missed, 6);
	CHECK_EQ(r.s.stim.ch[0].missed, 6);
	/* Still armed: late pulses are a timing alarm, not a stop cause. */
	CHECK_EQ(r.s.stim.armed, 1);
	n = at(T0 + SEC(61));
	room_pulses_late(&r, 1, one, 50000, &n);
	CHECK_EQ(r.s.stim.missed, 7);
	CHECK_EQ(r.alarm[AL_TIMING].since_mono, T0 + SEC(60));
	/* Other disarming does not clear it; stim off does. */
	room_stim_off(&r, "interlock");
	CHECK(r.alarm[AL_TIMING].active);
	room_stim_stop(&r);
	CHECK(!r.alarm[AL_TIMING].active);
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_STR(r.s.stim.blocked, "stim-off");
	/* ... and so does finish. A share of 0: any missed pulse raises it. */
	running(&r, 1);
	room_pulses_late(&r, 2, two, 0, &n);
	CHECK(r.alarm[AL_TIMING].active);
	CHECK_EQ(room_stop(&r, &cfg, &n, &e), 0);
	CHECK(r.alarm[AL_TIMING].active);
	CHECK_EQ(room_finish(&r, 4, NULL, &n, &e), 0);
	CHECK(!r.alarm[AL_TIMING].active);
	CHECK_STR(acu_alarm_name(AL_TIMING), "timing");
}

/* The share decision over every combination of a small grid, against the
 * same comparison done in floating point. */
static void test_timing_share(void)
{
	static const int64_t sent[] = { 0, 1, 9, 99, 100, 999, 1000000 };
	static const int64_t missed[] = { -1, 0, 1, 2, 10, 1000 };
	static const int64_t share[] = { 0, 1, 10000, 100000, 500000, 999999, 1000000 };

	for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++)
		for (size_t j = 0; j < sizeof missed / sizeof missed[0]; j++)
			for (size_t k = 0; k < sizeof share / sizeof share[0]; k++) {
				int64_t s = sent[i], m = missed[j], q = share[k];
				int want = m > 0 && (double)m / (double)(s + m) > (double)q / 1e6;

				CHECK_EQ(room_timing_exceeded(s, m, q), want);
			}
	/* The edges: exactly the share is not over it; 100 % never raises. */
	CHECK_EQ(room_timing_exceeded(99, 1, 10000), 0);
	CHECK_EQ(room_timing_exceeded(98, 1, 10000), 1);
	CHECK_EQ(room_timing_exceeded(0, 5, 1000000), 0);
	CHECK_EQ(room_timing_exceeded(0, 1, 0), 1);
	CHECK_EQ(room_timing_exceeded(-5, 1, 999999), 1);
}

static void test_settle(void)
{
	struct acu_room r;

	running(&r, 1);
	snprintf(r.s.stim.blocked, sizeof r.s.stim.blocked, "schedule");
	room_stim_settle(&r, NULL);
	CHECK_EQ(r.s.stim.armed, 1);
	CHECK_STR(r.s.stim.blocked, "");
	room_stim_settle(&r, "interlock");
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_STR(r.s.stim.blocked, "interlock");
	/* Not armed: the last reason stays shown. */
	room_stim_settle(&r, NULL);
	CHECK_STR(r.s.stim.blocked, "interlock");
}

int main(void)
{
	fixtures();
	test_trip_held();
	test_trip_blip();
	test_trip_idle();
	test_unreadable();
	test_gpio_fault();
	test_timing();
	test_timing_share();
	test_settle();
	return unit_report("test_fault");
}

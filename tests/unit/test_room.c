/* Unit tests of the session state machine (daemon/room.c) against SPEC §2 and §4,
 * driven by an injected clock: no test sleeps. */
#include <stdint.h>
#include <string.h>

#include "acud.h"
#include "cfg.h"
#include "room.h"
#include "fixture.h"
#include "unit.h"

#define T0 SEC(1000)                                   /* mono at the first start */

static struct acu_profile_cfg profiles[2];
static struct acu_room_cfg room1_cfg;

#define at fixture_at

static void fixtures(void)
{
	fixture_profile(&profiles[0], "lbp-2hz", MODE_CONTINUOUS, 0, 1200, 0, 0);
	fixture_profile(&profiles[1], "neck.dd", MODE_DENSE_DISPERSE, 0, 0, 0, 0);
	fixture_room(&room1_cfg, "1", 2, 0);
}

/* SPEC §5's defaults over this file's profiles. */
static void cfg_init(struct acu_cfg *c)
{
	fixture_cfg(c, profiles, 2);
}

static struct acu_start req(int64_t duration_s, int needles)
{
	struct acu_start q;

	memset(&q, 0, sizeof q);
	q.duration_s = duration_s;
	q.needles = needles;
	q.practitioner = "alice";
	return q;
}

/* A started room; returns room_start's result. */
static int start_at(struct acu_room *r, const struct acu_cfg *c, int64_t mono, int64_t dur,
		    int needles)
{
	struct acu_start q = req(dur, needles);
	struct acu_now n = at(mono);
	struct acu_err e;

	room_init(r, &room1_cfg);
	memset(&e, 0, sizeof e);
	if (room_start(r, c, &q, &n, &e) < 0) {
		fprintf(stderr, "start failed: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int tick(struct acu_room *r, const struct acu_cfg *c, int64_t mono)
{
	struct acu_now n = at(mono);
	return room_tick(r, c, &n);
}

/* Each test declares `struct acu_err err;` and `struct acu_now now;`. */
#define CHECK_OK(expr)                                                               \
	do {                                                                         \
		int rc_;                                                             \
		memset(&err, 0, sizeof err);                                         \
		rc_ = (expr);                                                        \
		CHECK_EQ(rc_, 0);                                                    \
		if (rc_)                                                             \
			fprintf(stderr, "  (%s: %s)\n",                              \
				acu_errcode_name(err.code), err.msg);                \
	} while (0)

#define CHECK_FAIL(expr, want)                                                       \
	do {                                                                         \
		memset(&err, 0, sizeof err);                                         \
		CHECK_EQ((expr), -1);                                                \
		CHECK_STR(acu_errcode_name(err.code), acu_errcode_name(want));      \
		CHECK(err.msg[0] != '\0');                                           \
	} while (0)

/* A refusal that must leave the room exactly as it was. */
#define CHECK_REFUSED(r, expr, want)                                                 \
	do {                                                                         \
		struct acu_room before_;                                             \
		memcpy(&before_, (r), sizeof before_);                               \
		CHECK_FAIL(expr, want);                                              \
		CHECK(memcmp(&before_, (r), sizeof before_) == 0);                   \
	} while (0)

#define NOW(mono) (now = at(mono), &now)

/* ---- start ------------------------------------------------------------ */

static void test_start(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	struct acu_start q;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_EQ(r.s.state, ST_IDLE);
	CHECK(r.cfg == &room1_cfg);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
	CHECK_EQ(room_remaining_s(&r, T0), 0);
	CHECK_EQ(room_overdue_s(&r, T0), 0);

	q = req(1200, 6);
	q.patient = "A1043";
	q.profile = "lbp-2hz";
	q.flags = 1u << FL_PREGNANCY;
	CHECK_OK(room_start(&r, &cfg, &q, NOW(T0), &err));
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_STR(r.s.patient, "A1043");
	CHECK_STR(r.s.practitioner, "alice");
	CHECK_STR(r.s.profile, "lbp-2hz");
	CHECK_EQ(r.s.flags, 1u << FL_PREGNANCY);
	CHECK_EQ(r.s.started_wall, T0 + WALL_OFF);
	CHECK_EQ(r.s.duration_s, 1200);
	CHECK_EQ(r.s.end, T0 + SEC(1200));
	CHECK_EQ(r.s.needles, 6);
	CHECK_EQ(r.s.paused_ns, 0);
	CHECK_EQ(r.s.checkins, 0);
	CHECK_EQ(r.s.checkin_due, T0 + SEC(600));
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_EQ(room_remaining_s(&r, T0), 1200);
	CHECK_EQ(room_overdue_s(&r, T0), 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(600));
	CHECK_EQ(tick(&r, &cfg, T0), 0);

	/* No patient, no profile: both stay empty. */
	CHECK_EQ(start_at(&r, &cfg, T0, 600, 1), 0);
	CHECK_STR(r.s.patient, "");
	CHECK_STR(r.s.profile, "");

	/* The limits themselves are allowed. */
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 1), 0);
	CHECK_EQ(r.s.end, T0 + SEC(300));
	CHECK_EQ(start_at(&r, &cfg, T0, 3600, 200), 0);
	CHECK_EQ(r.s.end, T0 + SEC(3600));
	CHECK_EQ(r.s.needles, 200);

	/* A 32-character reference with every allowed kind of character. */
	room_init(&r, &room1_cfg);
	q = req(1200, 3);
	q.patient = "aZ09._-aaaaaaaaaaaaaaaaaaaaaaaaa";
	CHECK_EQ(strlen(q.patient), 32);
	CHECK_OK(room_start(&r, &cfg, &q, NOW(T0), &err));
	CHECK_STR(r.s.patient, "aZ09._-aaaaaaaaaaaaaaaaaaaaaaaaa");
}

static void test_start_refusals(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	struct acu_start q;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);

	/* Durations outside [session_min, session_max]. */
	q = req(299, 6);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);
	q = req(3601, 6);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);
	q = req(0, 6);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);
	q = req(-1200, 6);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);

	/* Needles, required by default. */
	q = req(1200, -1);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_BAD_REQUEST);
	q = req(1200, 0);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);
	q = req(1200, 201);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);

	/* Patient references: 1 to 32 of [A-Za-z0-9._-]. */
	q = req(1200, 6);
	q.patient = "A0123456789012345678901234567890b"; /* 33 */
	CHECK_EQ(strlen(q.patient), 33);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_BAD_REQUEST);
	q.patient = "A 1043";
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_BAD_REQUEST);
	q.patient = "";
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_BAD_REQUEST);
	q.patient = "A/1043";
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_BAD_REQUEST);
	q.patient = "Jane Doe";
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_BAD_REQUEST);

	/* Profiles must exist. */
	q = req(1200, 6);
	q.profile = "no-such-profile";
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_UNKNOWN_PROFILE);
	q.profile = "neck.dd";
	CHECK_OK(room_start(&r, &cfg, &q, NOW(T0), &err));
	CHECK_STR(r.s.profile, "neck.dd");

	/* Not idle: running, paused, due all refuse a second start. */
	q = req(1200, 6);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0 + SEC(1)), &err), E_INVALID_STATE);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(2)), &err));
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0 + SEC(3)), &err), E_INVALID_STATE);
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(4)), &err));
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0 + SEC(5)), &err), E_INVALID_STATE);
	CHECK_STR(r.s.profile, "neck.dd");
}

static void test_no_needle_requirement(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	struct acu_start q;

	cfg_init(&cfg);
	cfg.require_needle_count = 0;
	room_init(&r, &room1_cfg);

	q = req(1200, -1);
	CHECK_OK(room_start(&r, &cfg, &q, NOW(T0), &err));
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(r.s.needles, 0);
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(10)), &err));
	CHECK_OK(room_finish(&r, 0, NULL, NOW(T0 + SEC(20)), &err));
	CHECK_EQ(r.s.state, ST_IDLE);

	/* (An explicit needles = 0 here is left untested: design.md says 1..200.) */
	q = req(1200, -1);
	CHECK_OK(room_start(&r, &cfg, &q, NOW(T0), &err));
	CHECK_EQ(r.s.needles, 0);
	CHECK_OK(room_needles(&r, +3, &err));
	CHECK_EQ(r.s.needles, 3);

	/* The upper bound still holds. */
	room_init(&r, &room1_cfg);
	q = req(1200, 201);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);
}

/* ---- pause / resume ------------------------------------------------- */

static void test_pause_resume(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	r.s.stim.armed = 1;

	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(100)), &err));
	CHECK_EQ(r.s.state, ST_PAUSED);
	CHECK_EQ(r.s.stim.armed, 0);       /* pausing disarms (SPEC §3) */
	CHECK_EQ(r.s.remaining, SEC(1100));
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(100)), 1100);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);

	/* A long pause: nothing runs out, well past the original end. */
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1200)), 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(3700)), 0);
	CHECK_EQ(r.s.state, ST_PAUSED);
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(3700)), 1100);
	CHECK_EQ(room_overdue_s(&r, T0 + SEC(3700)), 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);

	/* Refusals around pause. */
	CHECK_REFUSED(&r, room_pause(&r, &cfg, NOW(T0 + SEC(3700)), &err), E_INVALID_STATE);
	CHECK_REFUSED(&r, room_finish(&r, 6, NULL, NOW(T0 + SEC(3700)), &err), E_INVALID_STATE);
	/* A check-in is accepted while paused (the patient is still needled);
	 * the interval restarts in full from the resume. */
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(3700)), &err));
	CHECK_EQ(r.s.checkin_left, SEC(600));
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 0);

	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(3700)), &err));
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(r.s.stim.armed, 0);       /* resuming does not re-arm */
	CHECK_EQ(r.s.paused_ns, SEC(3600));
	CHECK_EQ(r.s.end, T0 + SEC(1200) + SEC(3600));
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(3700)), 1100);
	CHECK_REFUSED(&r, room_resume(&r, &cfg, NOW(T0 + SEC(3701)), &err), E_INVALID_STATE);

	/* A second pause adds to the total. */
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(3800)), &err));
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(3800)), 1000);
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(3850)), &err));
	CHECK_EQ(r.s.paused_ns, SEC(3650));
	CHECK_EQ(r.s.end, T0 + SEC(1200) + SEC(3650));
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(3850)), 1000);

	/* A pause of a few nanoseconds counts exactly. */
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(3900)), &err));
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(3900) + 7), &err));
	CHECK_EQ(r.s.paused_ns, SEC(3650) + 7);
	CHECK_EQ(r.s.end, T0 + SEC(1200) + SEC(3650) + 7);

	/* And it still expires at the moved end, not before. */
	tick(&r, &cfg, r.s.end - 1);       /* may raise the check-in alarm */
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(room_remaining_s(&r, r.s.end - 1), 1);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1200) + SEC(3650) + 7), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.due_since, T0 + SEC(1200) + SEC(3650) + 7);

	/* Pause and resume are refused in idle and due. */
	CHECK_REFUSED(&r, room_pause(&r, &cfg, NOW(T0 + SEC(5000)), &err), E_INVALID_STATE);
	CHECK_REFUSED(&r, room_resume(&r, &cfg, NOW(T0 + SEC(5000)), &err), E_INVALID_STATE);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_pause(&r, &cfg, NOW(T0), &err), E_INVALID_STATE);
	CHECK_REFUSED(&r, room_resume(&r, &cfg, NOW(T0), &err), E_INVALID_STATE);
}

static void test_rounding(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	int64_t end;

	cfg_init(&cfg);
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 2), 0);
	end = T0 + SEC(300);
	/* remaining_s rounds up: a started second counts as a whole one. */
	CHECK_EQ(room_remaining_s(&r, T0 + 1), 300);
	CHECK_EQ(room_remaining_s(&r, end - SEC(1) - 1), 2);
	CHECK_EQ(room_remaining_s(&r, end - SEC(1)), 1);
	CHECK_EQ(room_remaining_s(&r, end - 1), 1);
	CHECK_EQ(room_remaining_s(&r, end), 0);
	CHECK_EQ(room_remaining_s(&r, end + SEC(5)), 0);

	/* Frozen remainders round up too. */
	CHECK_OK(room_pause(&r, &cfg, NOW(end - SEC(1) / 2), &err));
	CHECK_EQ(r.s.remaining, SEC(1) / 2);
	CHECK_EQ(room_remaining_s(&r, end + SEC(100)), 1);
	CHECK_OK(room_resume(&r, &cfg, NOW(end + SEC(100)), &err));

	/* overdue_s rounds down. */
	end = end + SEC(100) + SEC(1) / 2;
	CHECK_EQ(r.s.end, end);
	CHECK_EQ(tick(&r, &cfg, end), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(room_remaining_s(&r, end), 0);
	CHECK_EQ(room_overdue_s(&r, end), 0);
	CHECK_EQ(room_overdue_s(&r, end + SEC(1) - 1), 0);
	CHECK_EQ(room_overdue_s(&r, end + SEC(1)), 1);
	CHECK_EQ(room_overdue_s(&r, end + SEC(2) - 1), 1);
	CHECK_EQ(room_overdue_s(&r, end + SEC(61) + SEC(1) / 2), 61);
}

/* ---- expiry, stop, escalation ------------------------------------------ */

static void test_expiry(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	int64_t end;

	cfg_init(&cfg);
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 4), 0);
	end = T0 + SEC(300);
	r.s.stim.armed = 1;
	/* The end comes before the first check-in (600 s). */
	CHECK_EQ(room_next_deadline(&r, &cfg), end);

	CHECK_EQ(tick(&r, &cfg, end - 1), 0);
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(r.alarm[AL_DUE].active, 0);
	CHECK_EQ(room_remaining_s(&r, end - 1), 1);

	CHECK_EQ(tick(&r, &cfg, end), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.due_since, end);
	CHECK_EQ(r.s.stim.armed, 0);       /* expiry disarms */
	CHECK_EQ(r.s.needles, 4);          /* needles still in */
	CHECK_EQ(r.alarm[AL_DUE].active, 1);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_MEDIUM);
	CHECK_EQ(r.alarm[AL_DUE].since_mono, end);
	CHECK_EQ(r.alarm[AL_DUE].since_wall, end + WALL_OFF);
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_MEDIUM);
	CHECK_EQ(room_remaining_s(&r, end), 0);
	CHECK_EQ(room_overdue_s(&r, end), 0);

	/* Escalation to high exactly escalate_after later, since unchanged. */
	CHECK_EQ(room_next_deadline(&r, &cfg), end + SEC(300));
	CHECK_EQ(tick(&r, &cfg, end + SEC(1)), 0);
	CHECK_EQ(tick(&r, &cfg, end + SEC(300) - 1), 0);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_MEDIUM);
	CHECK_EQ(tick(&r, &cfg, end + SEC(300)), 1);
	CHECK_EQ(r.alarm[AL_DUE].active, 1);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_HIGH);
	CHECK_EQ(r.alarm[AL_DUE].since_mono, end);
	CHECK_EQ(r.alarm[AL_DUE].since_wall, end + WALL_OFF);
	CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	CHECK_EQ(tick(&r, &cfg, end + SEC(10000)), 0);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(room_overdue_s(&r, end + SEC(10000)), 10000);

	/* A different escalate_after moves the escalation. */
	cfg.escalate_after = 90;
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 4), 0);
	tick(&r, &cfg, end);
	CHECK_EQ(room_next_deadline(&r, &cfg), end + SEC(90));
	CHECK_EQ(tick(&r, &cfg, end + SEC(90) - 1), 0);
	CHECK_EQ(tick(&r, &cfg, end + SEC(90)), 1);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_HIGH);
}

static void test_expiry_late(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	int64_t end;

	cfg_init(&cfg);
	/* Noticed 42.5 s late: the session and its alarm still date from the end. */
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 4), 0);
	end = T0 + SEC(300);
	CHECK_EQ(tick(&r, &cfg, end + SEC(42) + SEC(1) / 2), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.due_since, end);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_MEDIUM);
	CHECK_EQ(r.alarm[AL_DUE].since_mono, end);
	CHECK_EQ(r.alarm[AL_DUE].since_wall, end + WALL_OFF);
	CHECK_EQ(room_overdue_s(&r, end + SEC(42) + SEC(1) / 2), 42);
	CHECK_EQ(room_next_deadline(&r, &cfg), end + SEC(300));

	/* Noticed after the escalation time: high at once, still since the end. */
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 4), 0);
	CHECK_EQ(tick(&r, &cfg, end + SEC(1000)), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.due_since, end);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_HIGH);
	CHECK_EQ(r.alarm[AL_DUE].since_mono, end);
	CHECK_EQ(r.alarm[AL_DUE].since_wall, end + WALL_OFF);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);  /* check-in at 600 s lay past the end */
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
}

static void test_stop(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	/* From running. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 5), 0);
	r.s.stim.armed = 1;
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(700)), &err));
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.due_since, T0 + SEC(700));
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_EQ(r.s.needles, 5);
	CHECK_EQ(r.s.paused_ns, 0);
	CHECK_EQ(r.alarm[AL_DUE].active, 1);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_MEDIUM);
	CHECK_EQ(r.alarm[AL_DUE].since_mono, T0 + SEC(700));
	CHECK_EQ(r.alarm[AL_DUE].since_wall, T0 + SEC(700) + WALL_OFF);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);  /* the 600 s check-in was raised, then cleared */
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(700)), 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1000));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1200)), 1); /* the old end means nothing now */
	CHECK_EQ(r.s.due_since, T0 + SEC(700));
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_HIGH);

	/* Stop is refused in due and idle. */
	CHECK_REFUSED(&r, room_stop(&r, &cfg, NOW(T0 + SEC(1300)), &err), E_INVALID_STATE);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_stop(&r, &cfg, NOW(T0), &err), E_INVALID_STATE);

	/* From paused: the pause counts up to the stop. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 5), 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(100)), &err));
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(250)), &err));
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.paused_ns, SEC(150));
	CHECK_EQ(r.s.due_since, T0 + SEC(250));
	CHECK_EQ(r.alarm[AL_DUE].active, 1);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_MEDIUM);
	CHECK_EQ(r.alarm[AL_DUE].since_mono, T0 + SEC(250));
	CHECK_EQ(room_overdue_s(&r, T0 + SEC(260)), 10);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(550));
	/* A check-in is refused once due. */
	CHECK_REFUSED(&r, room_checkin(&r, &cfg, NOW(T0 + SEC(260)), &err), E_INVALID_STATE);
}

/* ---- extend ----------------------------------------------------------- */

static void test_extend(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 60, NOW(T0), &err), E_INVALID_STATE);

	/* Running: the end moves. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_OK(room_extend(&r, &cfg, 60, NOW(T0 + SEC(100)), &err));
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(r.s.end, T0 + SEC(1260));
	CHECK_EQ(r.s.duration_s, 1260);
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(100)), 1160);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 0, NOW(T0 + SEC(100)), &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, -60, NOW(T0 + SEC(100)), &err), E_OUT_OF_RANGE);
	/* 1160 s left: up to 2440 s more reaches session_max exactly; one more is refused. */
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 2441, NOW(T0 + SEC(100)), &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 3601, NOW(T0 + SEC(100)), &err), E_OUT_OF_RANGE);
	CHECK_OK(room_extend(&r, &cfg, 2440, NOW(T0 + SEC(100)), &err));
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(100)), 3600);
	CHECK_EQ(r.s.duration_s, 3700);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 1, NOW(T0 + SEC(100)), &err), E_OUT_OF_RANGE);
	CHECK_OK(room_extend(&r, &cfg, 1, NOW(T0 + SEC(101)), &err));

	/* Paused: the frozen remainder grows. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(200)), &err));
	CHECK_OK(room_extend(&r, &cfg, 300, NOW(T0 + SEC(900)), &err));
	CHECK_EQ(r.s.state, ST_PAUSED);
	CHECK_EQ(r.s.remaining, SEC(1300));
	CHECK_EQ(r.s.duration_s, 1500);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 2301, NOW(T0 + SEC(900)), &err), E_OUT_OF_RANGE);
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(1000)), &err));
	CHECK_EQ(r.s.end, T0 + SEC(1000) + SEC(1300));

	/* Due: back to running for the added time, due alarm cleared. */
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 6), 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(300) + SEC(400)), 1);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_HIGH);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 3601, NOW(T0 + SEC(800)), &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_extend(&r, &cfg, 0, NOW(T0 + SEC(800)), &err), E_OUT_OF_RANGE);
	CHECK_OK(room_extend(&r, &cfg, 120, NOW(T0 + SEC(800)), &err));
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(r.s.end, T0 + SEC(920));
	CHECK_EQ(r.s.duration_s, 420);
	CHECK_EQ(r.s.due_since, 0);
	CHECK_EQ(r.alarm[AL_DUE].active, 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
	CHECK_EQ(room_overdue_s(&r, T0 + SEC(800)), 0);
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(800)), 120);
	CHECK_EQ(r.s.checkin_due, T0 + SEC(800) + SEC(600));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(920));
	/* And it expires again, with a fresh medium alarm. */
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(920)), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.due_since, T0 + SEC(920));
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_MEDIUM);
	CHECK_EQ(r.alarm[AL_DUE].since_mono, T0 + SEC(920));
	/* From due, session_max itself is allowed. */
	CHECK_OK(room_extend(&r, &cfg, 3600, NOW(T0 + SEC(1000)), &err));
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(1000)), 3600);
}

/* ---- finish and needles ----------------------------------------------- */

static void test_finish(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_finish(&r, 0, NULL, NOW(T0), &err), E_INVALID_STATE);

	/* Refused while running: stop first; no mismatch alarm either. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_REFUSED(&r, room_finish(&r, 6, NULL, NOW(T0 + SEC(10)), &err), E_INVALID_STATE);
	CHECK_REFUSED(&r, room_finish(&r, 3, NULL, NOW(T0 + SEC(10)), &err), E_INVALID_STATE);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 0);

	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(20)), &err));
	CHECK_REFUSED(&r, room_finish(&r, -1, NULL, NOW(T0 + SEC(21)), &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_finish(&r, 201, NULL, NOW(T0 + SEC(21)), &err), E_OUT_OF_RANGE);

	/* A mismatch: refused, high alarm, still due. */
	CHECK_FAIL(room_finish(&r, 5, NULL, NOW(T0 + SEC(30)), &err), E_NEEDLE_MISMATCH);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.needles, 6);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 1);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].priority, PRIO_HIGH);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].since_mono, T0 + SEC(30));
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].since_wall, T0 + SEC(30) + WALL_OFF);
	CHECK_EQ(r.alarm[AL_DUE].active, 1);
	CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);
	/* Too many removed is a mismatch too; the alarm keeps its first time. */
	CHECK_FAIL(room_finish(&r, 7, NULL, NOW(T0 + SEC(40)), &err), E_NEEDLE_MISMATCH);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].since_mono, T0 + SEC(30));
	/* An empty override is no reason. */
	CHECK_FAIL(room_finish(&r, 5, "", NOW(T0 + SEC(41)), &err), E_NEEDLE_MISMATCH);
	CHECK_EQ(r.s.state, ST_DUE);

	/* The right count: idle, and every session alarm gone. */
	CHECK_OK(room_finish(&r, 6, NULL, NOW(T0 + SEC(50)), &err));
	CHECK_EQ(r.s.state, ST_IDLE);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 0);
	CHECK_EQ(r.alarm[AL_DUE].active, 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
	CHECK_EQ(r.s.needles, 0);
	CHECK_STR(r.s.patient, "");
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	CHECK_EQ(room_remaining_s(&r, T0 + SEC(50)), 0);
	CHECK_EQ(room_overdue_s(&r, T0 + SEC(50)), 0);
	CHECK_REFUSED(&r, room_finish(&r, 6, NULL, NOW(T0 + SEC(51)), &err), E_INVALID_STATE);

	/* A mismatch with an override finishes anyway. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(20)), &err));
	CHECK_FAIL(room_finish(&r, 4, NULL, NOW(T0 + SEC(30)), &err), E_NEEDLE_MISMATCH);
	CHECK_OK(room_finish(&r, 4, "two found on the couch", NOW(T0 + SEC(60)), &err));
	CHECK_EQ(r.s.state, ST_IDLE);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);

	/* Override without any prior refusal. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(20)), &err));
	CHECK_OK(room_finish(&r, 0, "patient left with needles removed elsewhere", NOW(T0 + SEC(30)), &err));
	CHECK_EQ(r.s.state, ST_IDLE);

	/* Finish from paused is refused too. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(20)), &err));
	CHECK_REFUSED(&r, room_finish(&r, 6, "x", NOW(T0 + SEC(30)), &err), E_INVALID_STATE);

	/* Finish clears the interlock alarm (SPEC §4) but not a GPIO fault. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	room_alarm_raise(&r, AL_INTERLOCK, PRIO_HIGH, NOW(T0 + SEC(5)));
	room_alarm_raise(&r, AL_GPIO_FAULT, PRIO_HIGH, NOW(T0 + SEC(6)));
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(20)), &err));
	CHECK_OK(room_finish(&r, 6, NULL, NOW(T0 + SEC(30)), &err));
	CHECK_EQ(r.alarm[AL_INTERLOCK].active, 0);
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].active, 1);
	CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);
}

static void test_needles(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_needles(&r, +1, &err), E_INVALID_STATE);

	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_OK(room_needles(&r, +4, &err));
	CHECK_EQ(r.s.needles, 10);
	CHECK_OK(room_needles(&r, -3, &err));
	CHECK_EQ(r.s.needles, 7);
	CHECK_REFUSED(&r, room_needles(&r, 0, &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_needles(&r, -8, &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_needles(&r, +194, &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_needles(&r, -1000000, &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_needles(&r, INT32_MAX, &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_needles(&r, INT32_MIN, &err), E_OUT_OF_RANGE);
	CHECK_EQ(r.s.needles, 7);
	CHECK_OK(room_needles(&r, +193, &err));
	CHECK_EQ(r.s.needles, 200);
	CHECK_OK(room_needles(&r, -200, &err));
	CHECK_EQ(r.s.needles, 0);
	CHECK_OK(room_needles(&r, +5, &err));

	/* Paused and due sessions take adjustments too. */
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(10)), &err));
	CHECK_OK(room_needles(&r, +2, &err));
	CHECK_EQ(r.s.needles, 7);
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(20)), &err));
	CHECK_OK(room_needles(&r, -1, &err));
	CHECK_EQ(r.s.needles, 6);

	/* Finish checks against the adjusted count. */
	CHECK_FAIL(room_finish(&r, 7, NULL, NOW(T0 + SEC(30)), &err), E_NEEDLE_MISMATCH);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 1);
	/* Finding the extra needle was a miscount: adjust and finish. */
	CHECK_OK(room_needles(&r, +1, &err));
	CHECK_OK(room_finish(&r, 7, NULL, NOW(T0 + SEC(40)), &err));
	CHECK_EQ(r.s.state, ST_IDLE);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 0);
	CHECK_REFUSED(&r, room_needles(&r, -1, &err), E_INVALID_STATE);
}

/* ---- check-ins -------------------------------------------------------- */

static void test_checkin(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_checkin(&r, &cfg, NOW(T0), &err), E_INVALID_STATE);

	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(600));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(600) - 1), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(600)), 1);
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].priority, PRIO_LOW);
	CHECK_EQ(r.alarm[AL_CHECKIN].since_mono, T0 + SEC(600));
	CHECK_EQ(r.alarm[AL_CHECKIN].since_wall, T0 + SEC(600) + WALL_OFF);
	CHECK_EQ(room_alarm_level(&r), PRIO_LOW);
	/* While it is up, the next deadline is the end. */
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1800));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(700)), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].since_mono, T0 + SEC(600));

	/* Acknowledged late: the interval restarts from the acknowledgement. */
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(700)), &err));
	CHECK_EQ(r.s.checkins, 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
	CHECK_EQ(r.s.checkin_due, T0 + SEC(1300));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1300));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1300) - 1), 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1300)), 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);

	/* Acknowledged early (no alarm up): restarts too. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(100)), &err));
	CHECK_EQ(r.s.checkins, 1);
	CHECK_EQ(r.s.checkin_due, T0 + SEC(700));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(600)), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(650)), &err));
	CHECK_EQ(r.s.checkins, 2);
	CHECK_EQ(r.s.checkin_due, T0 + SEC(1250));

	/* Becoming due clears it; no check-ins while due. */
	CHECK_EQ(start_at(&r, &cfg, T0, 900, 6), 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(600)), 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(900)), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_EQ(r.alarm[AL_DUE].active, 1);
	CHECK_EQ(room_alarm_level(&r), PRIO_MEDIUM);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1200) - 1), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_REFUSED(&r, room_checkin(&r, &cfg, NOW(T0 + SEC(1000)), &err), E_INVALID_STATE);

	/* Expiry and check-in at the same instant: due wins, no check-in alarm. */
	CHECK_EQ(start_at(&r, &cfg, T0, 600, 6), 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(600));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(600)), 1);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);

	/* Stop clears it too. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	tick(&r, &cfg, T0 + SEC(600));
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(610)), &err));
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
}

static void test_checkin_pause(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	/* 200 s into a 600 s interval, paused for 1000 s: 400 s left on resume. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(200)), &err));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(600)), 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1199)), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(1200)), &err));
	CHECK_EQ(r.s.checkin_due, T0 + SEC(1600));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1600));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1600) - 1), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1600)), 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].since_mono, T0 + SEC(1600));

	/* Two pauses inside one interval, to the nanosecond. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(100)), &err));
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(400)), &err));     /* 500 s left */
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(500) + 3), &err));  /* 400 s - 3 ns left */
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(2000)), &err));
	CHECK_EQ(r.s.checkin_due, T0 + SEC(2400) - 3);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(2400) - 4), 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(2400) - 3), 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);

	/* Paused at the very instant the check-in falls due, before any tick:
	 * it is due as soon as the session resumes. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(600)), &err));
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(900)), &err));
	CHECK(r.s.checkin_due > 0 && r.s.checkin_due <= T0 + SEC(900) + 1);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(900) + 1), 1);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);
}

static void test_checkin_disabled(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	cfg.checkin_interval = 0;
	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	CHECK_EQ(r.s.checkin_due, 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1800));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(600)), 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1800) - 1), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(1000)), &err));
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(1100)), &err));
	CHECK_EQ(r.s.checkin_due, 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1900));
	/* An unprompted check-in is still recorded, and arms nothing. */
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(1200)), &err));
	CHECK_EQ(r.s.checkins, 1);
	CHECK_EQ(r.s.checkin_due, 0);
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1900) - 1), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	/* Extend from due restarts no check-in either. */
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1900)), 1);
	CHECK_OK(room_extend(&r, &cfg, 900, NOW(T0 + SEC(2000)), &err));
	CHECK_EQ(r.s.checkin_due, 0);
}

/* ---- next deadline ---------------------------------------------------- */

static void test_next_deadline(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	CHECK_EQ(tick(&r, &cfg, T0), 0);
	CHECK_EQ(tick(&r, &cfg, INT64_MAX / 2), 0);
	CHECK_EQ(r.s.state, ST_IDLE);

	/* Running: the earlier of check-in and end. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(600));
	tick(&r, &cfg, T0 + SEC(600));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1200));
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(900)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1200)); /* next check-in at 1500 */

	/* A silence ending first comes first. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	tick(&r, &cfg, T0 + SEC(600));
	CHECK_OK(room_silence(&r, 60, NOW(T0 + SEC(610)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(670));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(670)), 1);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1200));

	/* Paused: nothing, unless a silence ends. */
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(700)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	CHECK_OK(room_silence(&r, 30, NOW(T0 + SEC(710)), &err)); /* the check-in alarm */
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(740));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(740)), 1);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);

	/* Due: escalation, then the end of a silence, then never. */
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(800)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1100));
	CHECK_OK(room_silence(&r, 600, NOW(T0 + SEC(800)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1100));
	CHECK_OK(room_silence(&r, 100, NOW(T0 + SEC(900)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1000));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1000)), 1);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1100));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1100)), 1);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	CHECK_OK(room_silence(&r, 120, NOW(T0 + SEC(1200)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(1320));
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(1320)), 1);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	/* Every deadline is one room_tick acts on. */
	CHECK_EQ(tick(&r, &cfg, T0 + SEC(5000)), 0);

	/* Idle after finish: never again. */
	CHECK_OK(room_finish(&r, 6, NULL, NOW(T0 + SEC(5000)), &err));
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
}

/* ---- silence ---------------------------------------------------------- */

static void test_silence(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	int64_t end, until;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_silence(&r, 120, NOW(T0), &err), E_INVALID_STATE);
	CHECK_EQ(room_silenced(&r, T0), 0);

	/* Running with nothing active: nothing to silence. */
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 6), 0);
	CHECK_REFUSED(&r, room_silence(&r, 120, NOW(T0 + SEC(10)), &err), E_INVALID_STATE);
	CHECK_REFUSED(&r, room_silence(&r, 0, NOW(T0 + SEC(10)), &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_silence(&r, 601, NOW(T0 + SEC(10)), &err), E_OUT_OF_RANGE);

	end = T0 + SEC(300);
	tick(&r, &cfg, end);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_MEDIUM);
	CHECK_REFUSED(&r, room_silence(&r, 0, NOW(end + SEC(10)), &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_silence(&r, 601, NOW(end + SEC(10)), &err), E_OUT_OF_RANGE);
	CHECK_REFUSED(&r, room_silence(&r, -5, NOW(end + SEC(10)), &err), E_OUT_OF_RANGE);
	CHECK_EQ(room_silenced(&r, end + SEC(10)), 0);

	until = end + SEC(10) + SEC(120);
	CHECK_OK(room_silence(&r, 120, NOW(end + SEC(10)), &err));
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, until);
	CHECK_EQ(r.alarm[AL_DUE].active, 1);       /* silenced, not cleared */
	CHECK_EQ(room_alarm_level(&r), PRIO_MEDIUM);
	CHECK_EQ(room_silenced(&r, end + SEC(10)), 1);
	CHECK_EQ(room_silenced(&r, until - 1), 1);
	CHECK_EQ(room_silenced(&r, until), 0);
	CHECK_EQ(tick(&r, &cfg, until - 1), 0);
	CHECK_EQ(room_silenced(&r, until - 1), 1);
	CHECK_EQ(tick(&r, &cfg, until), 1);
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, 0);
	CHECK_EQ(room_silenced(&r, until), 0);
	CHECK_EQ(r.alarm[AL_DUE].active, 1);

	/* Maximum 600 s accepted; silencing again replaces the time. */
	CHECK_OK(room_silence(&r, 600, NOW(end + SEC(200)), &err));
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, end + SEC(800));
	CHECK_OK(room_silence(&r, 1, NOW(end + SEC(201)), &err));
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, end + SEC(202));
	tick(&r, &cfg, end + SEC(202));

	/* Escalation to high is a new higher-priority alarm: the silence ends. */
	CHECK_OK(room_silence(&r, 120, NOW(end + SEC(250)), &err));
	CHECK_EQ(room_silenced(&r, end + SEC(299)), 1);
	CHECK_EQ(tick(&r, &cfg, end + SEC(300)), 1);
	CHECK_EQ(r.alarm[AL_DUE].priority, PRIO_HIGH);
	CHECK_EQ(room_silenced(&r, end + SEC(300)), 0);
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, 0);
	CHECK_EQ(room_next_deadline(&r, &cfg), ACU_NEVER);
	/* It can be silenced again at high. */
	CHECK_OK(room_silence(&r, 60, NOW(end + SEC(310)), &err));
	CHECK_EQ(room_silenced(&r, end + SEC(310)), 1);

	/* A needle mismatch on top of a silenced high due alarm is not silenced. */
	CHECK_FAIL(room_finish(&r, 1, NULL, NOW(end + SEC(320)), &err), E_NEEDLE_MISMATCH);
	CHECK_EQ(room_silenced(&r, end + SEC(320)), 0);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].silenced_until, 0);
	/* Silence now covers both. */
	CHECK_OK(room_silence(&r, 30, NOW(end + SEC(330)), &err));
	CHECK_EQ(room_silenced(&r, end + SEC(330)), 1);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].silenced_until, end + SEC(360));
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, end + SEC(360));
	CHECK_EQ(room_silenced(&r, end + SEC(360)), 0);

	/* A needle mismatch over a silenced medium due alarm ends the silence. */
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 6), 0);
	tick(&r, &cfg, end);
	CHECK_OK(room_silence(&r, 120, NOW(end + SEC(5)), &err));
	CHECK_EQ(room_silenced(&r, end + SEC(6)), 1);
	CHECK_FAIL(room_finish(&r, 5, NULL, NOW(end + SEC(6)), &err), E_NEEDLE_MISMATCH);
	CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);
	CHECK_EQ(room_silenced(&r, end + SEC(6)), 0);
	CHECK_EQ(r.alarm[AL_DUE].silenced_until, 0);

	/* A check-in alarm can be silenced; acknowledging ends it. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1800, 6), 0);
	tick(&r, &cfg, T0 + SEC(600));
	CHECK_OK(room_silence(&r, 120, NOW(T0 + SEC(601)), &err));
	CHECK_EQ(room_silenced(&r, T0 + SEC(602)), 1);
	/* An interlock trip (high) over a silenced low alarm is heard. */
	room_alarm_raise(&r, AL_INTERLOCK, PRIO_HIGH, NOW(T0 + SEC(610)));
	CHECK_EQ(room_silenced(&r, T0 + SEC(610)), 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].silenced_until, 0);
	room_alarm_clear(&r, AL_INTERLOCK);
	CHECK_OK(room_silence(&r, 120, NOW(T0 + SEC(620)), &err));
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(630)), &err));
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
	CHECK_EQ(room_silenced(&r, T0 + SEC(630)), 0);
	CHECK_REFUSED(&r, room_silence(&r, 120, NOW(T0 + SEC(640)), &err), E_INVALID_STATE);
	/* The next check-in alarm starts unsilenced. */
	tick(&r, &cfg, T0 + SEC(1230));
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 1);
	CHECK_EQ(room_silenced(&r, T0 + SEC(1230)), 0);

	/* An idle room with a room alarm (gpio-fault) can be silenced. */
	room_init(&r, &room1_cfg);
	room_alarm_raise(&r, AL_GPIO_FAULT, PRIO_HIGH, NOW(T0));
	CHECK_OK(room_silence(&r, 120, NOW(T0 + SEC(1)), &err));
	CHECK_EQ(room_silenced(&r, T0 + SEC(1)), 1);
	CHECK_EQ(room_next_deadline(&r, &cfg), T0 + SEC(121));
}

/* ---- flags ------------------------------------------------------------ */

static void test_flags(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	CHECK_REFUSED(&r, room_flag(&r, 1u << FL_PACEMAKER, NOW(T0), &err), E_INVALID_STATE);

	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	r.s.flags = 1u << FL_PREGNANCY;
	r.s.stim.armed = 1;
	/* A soft flag is added; arming is another module's question. */
	CHECK_OK(room_flag(&r, 1u << FL_METAL_IMPLANT, NOW(T0 + SEC(10)), &err));
	CHECK_EQ(r.s.flags, (1u << FL_PREGNANCY) | (1u << FL_METAL_IMPLANT));
	CHECK_EQ(r.s.state, ST_RUNNING);
	/* A hard flag disarms at once (S3), and the flags accumulate. */
	CHECK_OK(room_flag(&r, 1u << FL_PACEMAKER, NOW(T0 + SEC(20)), &err));
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_EQ(r.s.flags, (1u << FL_PREGNANCY) | (1u << FL_METAL_IMPLANT) | (1u << FL_PACEMAKER));
	CHECK_EQ(r.s.state, ST_RUNNING);
	/* Flagging the same again changes nothing; several at once add all. */
	CHECK_OK(room_flag(&r, 1u << FL_PACEMAKER, NOW(T0 + SEC(30)), &err));
	CHECK_OK(room_flag(&r, (1u << FL_ICD) | (1u << FL_EPILEPSY), NOW(T0 + SEC(40)), &err));
	CHECK_EQ(r.s.flags, (1u << FL_PREGNANCY) | (1u << FL_METAL_IMPLANT) | (1u << FL_PACEMAKER) |
		 (1u << FL_ICD) | (1u << FL_EPILEPSY));

	/* Each hard flag disarms. */
	for (int f = FL_PACEMAKER; f <= FL_IMPLANTED_DEVICE; f++) {
		CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
		r.s.stim.armed = 1;
		CHECK_OK(room_flag(&r, 1u << f, NOW(T0 + SEC(10)), &err));
		CHECK_EQ(r.s.stim.armed, 0);
		CHECK_EQ(r.s.flags, 1u << f);
	}

	/* Paused and due sessions take flags too. */
	CHECK_EQ(start_at(&r, &cfg, T0, 1200, 6), 0);
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(10)), &err));
	CHECK_OK(room_flag(&r, 1u << FL_BLEEDING_DISORDER, NOW(T0 + SEC(20)), &err));
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(30)), &err));
	CHECK_OK(room_flag(&r, 1u << FL_HEART_DISEASE, NOW(T0 + SEC(40)), &err));
	CHECK_EQ(r.s.flags, (1u << FL_BLEEDING_DISORDER) | (1u << FL_HEART_DISEASE));
	CHECK_EQ(r.s.state, ST_DUE);

	/* Flags go with the session. */
	CHECK_OK(room_finish(&r, 6, NULL, NOW(T0 + SEC(50)), &err));
	CHECK_EQ(r.s.flags, 0);
	CHECK_REFUSED(&r, room_flag(&r, 1u << FL_EPILEPSY, NOW(T0 + SEC(60)), &err), E_INVALID_STATE);
}

/* ---- alarms across sessions ------------------------------------------- */

static void test_start_clears_alarms(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	struct acu_start q;

	cfg_init(&cfg);
	room_init(&r, &room1_cfg);
	room_alarm_raise(&r, AL_DUE, PRIO_HIGH, NOW(T0 - SEC(50)));
	room_alarm_raise(&r, AL_CHECKIN, PRIO_LOW, NOW(T0 - SEC(40)));
	room_alarm_raise(&r, AL_NEEDLE_MISMATCH, PRIO_HIGH, NOW(T0 - SEC(30)));
	room_alarm_raise(&r, AL_GPIO_FAULT, PRIO_HIGH, NOW(T0 - SEC(20)));
	room_alarm_raise(&r, AL_INTERLOCK, PRIO_HIGH, NOW(T0 - SEC(10)));
	r.interlock_tripped = 1;
	r.gpio_fault = 1;

	/* A refused start clears nothing. */
	q = req(10, 6);
	CHECK_REFUSED(&r, room_start(&r, &cfg, &q, NOW(T0), &err), E_OUT_OF_RANGE);
	CHECK_EQ(r.alarm[AL_DUE].active, 1);

	q = req(1200, 6);
	CHECK_OK(room_start(&r, &cfg, &q, NOW(T0), &err));
	CHECK_EQ(r.alarm[AL_DUE].active, 0);
	CHECK_EQ(r.alarm[AL_CHECKIN].active, 0);
	CHECK_EQ(r.alarm[AL_NEEDLE_MISMATCH].active, 0);
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].active, 1);
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].priority, PRIO_HIGH);
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].since_mono, T0 - SEC(20));
	CHECK_EQ(r.alarm[AL_INTERLOCK].active, 1);
	CHECK_EQ(r.alarm[AL_INTERLOCK].since_mono, T0 - SEC(10));
	CHECK_EQ(r.interlock_tripped, 1);
	CHECK_EQ(r.gpio_fault, 1);
	CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);

	/* Nothing of a finished session leaks into the next. */
	CHECK_EQ(start_at(&r, &cfg, T0, 300, 6), 0);
	tick(&r, &cfg, T0 + SEC(900));
	CHECK_OK(room_extend(&r, &cfg, 60, NOW(T0 + SEC(900)), &err));
	CHECK_OK(room_pause(&r, &cfg, NOW(T0 + SEC(910)), &err));
	CHECK_OK(room_resume(&r, &cfg, NOW(T0 + SEC(920)), &err));
	CHECK_OK(room_checkin(&r, &cfg, NOW(T0 + SEC(930)), &err));
	CHECK_OK(room_stop(&r, &cfg, NOW(T0 + SEC(940)), &err));
	CHECK_OK(room_finish(&r, 6, NULL, NOW(T0 + SEC(950)), &err));
	q = req(600, 2);
	CHECK_OK(room_start(&r, &cfg, &q, NOW(T0 + SEC(2000)), &err));
	CHECK_EQ(r.s.paused_ns, 0);
	CHECK_EQ(r.s.checkins, 0);
	CHECK_EQ(r.s.due_since, 0);
	CHECK_EQ(r.s.duration_s, 600);
	CHECK_EQ(r.s.needles, 2);
	CHECK_EQ(r.s.end, T0 + SEC(2600));
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
}

/* ---- alarm primitives ------------------------------------------------- */

static void test_alarm_primitives(void)
{
	struct acu_room r;
	struct acu_now now;

	room_init(&r, &room1_cfg);
	room_alarm_raise(&r, AL_CHECKIN, PRIO_LOW, NOW(T0));
	CHECK_EQ(room_alarm_level(&r), PRIO_LOW);
	/* Raising again at the same priority keeps the first time. */
	room_alarm_raise(&r, AL_CHECKIN, PRIO_LOW, NOW(T0 + SEC(5)));
	CHECK_EQ(r.alarm[AL_CHECKIN].since_mono, T0);
	/* A lower priority never lowers an active alarm. */
	room_alarm_raise(&r, AL_GPIO_FAULT, PRIO_HIGH, NOW(T0 + SEC(6)));
	room_alarm_raise(&r, AL_GPIO_FAULT, PRIO_LOW, NOW(T0 + SEC(7)));
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].priority, PRIO_HIGH);
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].since_mono, T0 + SEC(6));
	CHECK_EQ(room_alarm_level(&r), PRIO_HIGH);
	room_alarm_clear(&r, AL_GPIO_FAULT);
	CHECK_EQ(r.alarm[AL_GPIO_FAULT].active, 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_LOW);
	room_alarm_clear(&r, AL_CHECKIN);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);
	CHECK_EQ(room_silenced(&r, T0), 0);
}

int main(void)
{
	fixtures();
	test_start();
	test_start_refusals();
	test_no_needle_requirement();
	test_pause_resume();
	test_rounding();
	test_expiry();
	test_expiry_late();
	test_stop();
	test_extend();
	test_finish();
	test_needles();
	test_checkin();
	test_checkin_pause();
	test_checkin_disabled();
	test_next_deadline();
	test_silence();
	test_flags();
	test_start_clears_alarms();
	test_alarm_primitives();
	return unit_report("test_room");
}

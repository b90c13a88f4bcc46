/* Unit tests of arming (daemon/room.c: room_stim_on, room_stim_off,
 * room_stim_budget) against SPEC §3 (Arming, S2-S5, S7), with an injected
 * clock: no test sleeps. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acud.h"
#include "cfg.h"
#include "room.h"
#include "fixture.h"
#include "unit.h"

#define T0 SEC(1000)                                   /* mono at start */
#define FL(f) (1u << (f))

static const enum acu_flag hard_flags[] = { FL_PACEMAKER, FL_ICD, FL_IMPLANTED_DEVICE };

enum { P_CONT, P_DD, P_PREG, P_WIDE, P_NODUR, P_LONG, P_CH1, P_CH2, P_INT, NPROF };
static struct acu_profile_cfg profiles[NPROF];
static struct acu_room_cfg room_gate_only;  /* 2 channels, no pulse lines */
static struct acu_room_cfg room_pulsed;     /* 2 channels with pulse lines */
static struct acu_room_cfg room_eight;      /* 8 channels with pulse lines */

#define at fixture_at

static void prof(int i, const char *name, enum acu_mode mode, int64_t duration_s,
		 unsigned channels, int pregnancy_safe)
{
	fixture_profile(&profiles[i], name, mode, 0, duration_s, channels, pregnancy_safe);
}

#define room fixture_room

static void fixtures(void)
{
	prof(P_CONT, "lbp-2hz", MODE_CONTINUOUS, 1200, 0, 0);
	prof(P_DD, "neck.dd", MODE_DENSE_DISPERSE, 1200, 0, 0);
	prof(P_PREG, "preg-safe", MODE_CONTINUOUS, 600, 0, 1);
	prof(P_WIDE, "three-ch", MODE_CONTINUOUS, 1200, FL(0) | FL(1) | FL(2), 0);
	prof(P_NODUR, "no-duration", MODE_CONTINUOUS, 0, 0, 0);
	prof(P_LONG, "long", MODE_CONTINUOUS, 3600, 0, 0);
	prof(P_CH1, "ch1", MODE_CONTINUOUS, 1200, FL(0), 0);
	prof(P_CH2, "ch2", MODE_CONTINUOUS, 1200, FL(1), 0);
	prof(P_INT, "intermittent", MODE_INTERMITTENT, 1200, 0, 0);
	room(&room_gate_only, "1", 2, 0);
	room(&room_pulsed, "2", 2, 1);
	room(&room_eight, "3", 8, 1);
}

/* SPEC §5's defaults and S4's policies over this file's profiles. */
static void cfg_init(struct acu_cfg *c)
{
	fixture_cfg(c, profiles, NPROF);
}

static void all_policies(struct acu_cfg *c, enum acu_policy p)
{
	for (int f = 0; f < FL__N; f++)
		c->policy[f] = p;
}

/* A running session in room rc, started at T0 for 30 min; profile may be NULL. */
static int start(struct acu_room *r, const struct acu_room_cfg *rc, const struct acu_cfg *c,
		 const char *profile, unsigned flags)
{
	struct acu_start q;
	struct acu_now n = at(T0);
	struct acu_err e;

	memset(&q, 0, sizeof q);
	q.duration_s = 1800;
	q.needles = 6;
	q.patient = "A1043";
	q.practitioner = "alice";
	q.profile = profile;
	q.flags = flags;
	room_init(r, rc);
	memset(&e, 0, sizeof e);
	if (room_start(r, c, &q, &n, &e) < 0) {
		fprintf(stderr, "start failed: %s: %s\n", acu_errcode_name(e.code), e.msg);
		return -1;
	}
	return 0;
}

/* Each test declares `struct acu_err err; unsigned warned;`. */
#define ARM(r, c, mono) arm_at((r), (c), (mono), &warned, &err)

static int arm_at(struct acu_room *r, const struct acu_cfg *c, int64_t mono, unsigned *warned,
		  struct acu_err *err)
{
	struct acu_now n = at(mono);

	memset(err, 0, sizeof *err);
	*warned = 0xdead; /* must be overwritten */
	return room_stim_on(r, c, &n, warned, err);
}

#define CHECK_ARMS(r, c, mono, want_warned)                                          \
	do {                                                                         \
		int rc_ = ARM(r, c, mono);                                           \
		CHECK_EQ(rc_, 0);                                                    \
		if (rc_)                                                             \
			fprintf(stderr, "  (%s: %s)\n", acu_errcode_name(err.code),  \
				err.msg);                                            \
		CHECK_EQ((r)->s.stim.armed, 1);                                      \
		CHECK_EQ((r)->s.stim.armed_at, (mono));                              \
		CHECK_EQ(warned, (want_warned));                                     \
	} while (0)

/* A refusal: -1, the code, a message, nothing armed, nothing warned, and the
 * room left exactly as it was. */
#define CHECK_REFUSED(r, c, mono, want)                                              \
	do {                                                                         \
		struct acu_room before_;                                             \
		memcpy(&before_, (r), sizeof before_);                               \
		CHECK_EQ(ARM(r, c, mono), -1);                                       \
		CHECK_STR(acu_errcode_name(err.code), acu_errcode_name(want));      \
		CHECK(err.msg[0] != '\0');                                           \
		CHECK_EQ((r)->s.stim.armed, 0);                                      \
		CHECK_EQ(warned, 0);                                                 \
		CHECK(memcmp(&before_, (r), sizeof before_) == 0);                   \
	} while (0)

/* ---- state ------------------------------------------------------------------ */

static void test_not_running(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	unsigned warned;

	cfg_init(&cfg);
	/* idle */
	room_init(&r, &room_pulsed);
	CHECK_REFUSED(&r, &cfg, T0, E_INVALID_STATE);

	/* paused; pausing disarms and resuming does not re-arm */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(10), 0u);
	now = at(T0 + SEC(20));
	CHECK_EQ(room_pause(&r, &cfg, &now, &err), 0);
	CHECK_EQ(r.s.state, ST_PAUSED);
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(30), E_INVALID_STATE);
	now = at(T0 + SEC(40));
	CHECK_EQ(room_resume(&r, &cfg, &now, &err), 0);
	CHECK_EQ(r.s.state, ST_RUNNING);
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(50), 0u);

	/* due by stop; stopping disarms */
	now = at(T0 + SEC(60));
	CHECK_EQ(room_stop(&r, &cfg, &now, &err), 0);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(70), E_INVALID_STATE);

	/* due by expiry */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	now = at(T0 + SEC(1800));
	room_tick(&r, &cfg, &now);
	CHECK_EQ(r.s.state, ST_DUE);
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1801), E_INVALID_STATE);

	/* idle again after finish */
	now = at(T0 + SEC(1900));
	CHECK_EQ(room_finish(&r, 6, NULL, &now, &err), 0);
	CHECK_EQ(r.s.state, ST_IDLE);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1901), E_INVALID_STATE);
}

/* ---- S3: hard contraindications ------------------------------------------------ */

static void test_hard_flags(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	unsigned warned;

	for (size_t h = 0; h < 3; h++) {
		unsigned hf = FL(hard_flags[h]);

		/* Whatever the policies say (hard entries included), with the most
		 * permissive profile and otherwise-perfect conditions. */
		for (int pv = 0; pv < 2; pv++) {
			cfg_init(&cfg);
			all_policies(&cfg, pv ? POLICY_WARN : POLICY_REFUSE);
			CHECK_EQ(start(&r, &room_pulsed, &cfg, "preg-safe", hf), 0);
			CHECK_REFUSED(&r, &cfg, T0 + SEC(5), E_CONTRAINDICATED);
			CHECK(strstr(err.msg, acu_flag_name(hard_flags[h])) != NULL);
			/* With every soft flag as well. */
			CHECK_EQ(start(&r, &room_pulsed, &cfg, "preg-safe", hf | 0xf8u), 0);
			CHECK_REFUSED(&r, &cfg, T0 + SEC(5), E_CONTRAINDICATED);
			/* And with other reasons to refuse: still refused, never armed. */
			CHECK_EQ(start(&r, &room_gate_only, &cfg, "neck.dd", hf), 0);
			r.interlock_tripped = 1;
			r.gpio_fault = 1;
			CHECK_EQ(ARM(&r, &cfg, T0 + SEC(5)), -1);
			CHECK_EQ(r.s.stim.armed, 0);
		}

		/* Set during a session: disarms at once and blocks arming for the
		 * rest of the session. */
		cfg_init(&cfg);
		all_policies(&cfg, POLICY_WARN);
		CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0), 0);
		CHECK_ARMS(&r, &cfg, T0 + SEC(5), 0u);
		now = at(T0 + SEC(60));
		CHECK_EQ(room_flag(&r, hf, &now, &err), 0);
		CHECK_EQ(r.s.stim.armed, 0);
		CHECK_REFUSED(&r, &cfg, T0 + SEC(61), E_CONTRAINDICATED);
		CHECK_REFUSED(&r, &cfg, T0 + SEC(1700), E_CONTRAINDICATED);
	}
}

/* ---- S4: soft flags ------------------------------------------------------------ */

static void test_soft_flags(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	unsigned warned;

	/* pregnancy: refuse unless the profile is pregnancy_safe */
	cfg_init(&cfg);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", FL(FL_PREGNANCY)), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_CONTRAINDICATED);
	CHECK(strstr(err.msg, "pregnancy") != NULL);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "preg-safe", FL(FL_PREGNANCY)), 0);
	CHECK_EQ(ARM(&r, &cfg, T0 + SEC(1)), 0);
	CHECK_EQ(r.s.stim.armed, 1);
	CHECK_EQ(warned & ~FL(FL_PREGNANCY), 0);
	printf("test_arm: note: pregnancy on a pregnancy_safe profile with policy refuse arms "
	       "with warned = 0x%02x\n", warned);
	/* pregnancy with policy warn: armed, warned */
	cfg.policy[FL_PREGNANCY] = POLICY_WARN;
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", FL(FL_PREGNANCY)), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(2), FL(FL_PREGNANCY));
	CHECK(r.s.stim.warned & FL(FL_PREGNANCY));

	/* epilepsy, heart-disease: refuse by default policy, warn when set so */
	{
		static const enum acu_flag f2[] = { FL_EPILEPSY, FL_HEART_DISEASE };
		for (size_t i = 0; i < 2; i++) {
			cfg_init(&cfg);
			CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", FL(f2[i])), 0);
			CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_CONTRAINDICATED);
			CHECK(strstr(err.msg, acu_flag_name(f2[i])) != NULL);
			/* pregnancy_safe lifts only pregnancy */
			CHECK_EQ(start(&r, &room_pulsed, &cfg, "preg-safe", FL(f2[i])), 0);
			CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_CONTRAINDICATED);
			cfg.policy[f2[i]] = POLICY_WARN;
			CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", FL(f2[i])), 0);
			CHECK_ARMS(&r, &cfg, T0 + SEC(3), FL(f2[i]));
		}
	}

	/* bleeding-disorder, metal-implant: warn by default: armed and reported */
	cfg_init(&cfg);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", FL(FL_BLEEDING_DISORDER)), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(4), FL(FL_BLEEDING_DISORDER));
	CHECK_EQ(r.s.stim.warned, FL(FL_BLEEDING_DISORDER));
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", FL(FL_METAL_IMPLANT)), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(4), FL(FL_METAL_IMPLANT));
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz",
		       FL(FL_BLEEDING_DISORDER) | FL(FL_METAL_IMPLANT)), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(4), FL(FL_BLEEDING_DISORDER) | FL(FL_METAL_IMPLANT));
	CHECK_EQ(r.s.stim.warned, FL(FL_BLEEDING_DISORDER) | FL(FL_METAL_IMPLANT));
	/* ... and refused when their policy is refuse */
	cfg.policy[FL_METAL_IMPLANT] = POLICY_REFUSE;
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz",
		       FL(FL_BLEEDING_DISORDER) | FL(FL_METAL_IMPLANT)), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(4), E_CONTRAINDICATED);
	CHECK(strstr(err.msg, "metal-implant") != NULL);
	cfg_init(&cfg);
	cfg.policy[FL_BLEEDING_DISORDER] = POLICY_REFUSE;
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", FL(FL_BLEEDING_DISORDER)), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(4), E_CONTRAINDICATED);

	/* One refusing flag among warned ones refuses the whole arming. */
	cfg_init(&cfg);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz",
		       FL(FL_BLEEDING_DISORDER) | FL(FL_EPILEPSY) | FL(FL_METAL_IMPLANT)), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(5), E_CONTRAINDICATED);

	/* Every soft flag on warn, pregnancy_safe or not. */
	cfg_init(&cfg);
	all_policies(&cfg, POLICY_WARN);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0xf8u), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(6), 0xf8u);

	/* Exhaustive over the soft flags x policies x pregnancy_safe: arms exactly
	 * when no flagged soft flag has policy refuse (pregnancy lifted by
	 * pregnancy_safe), and reports the warned ones. */
	for (unsigned fl = 0; fl < 32; fl++)
	for (unsigned pm = 0; pm < 32; pm++)
	for (int ps = 0; ps < 2; ps++) {
		unsigned flags = fl << FL_SOFT_FIRST, refused = 0, warn = 0;

		cfg_init(&cfg);
		for (int k = 0; k < 5; k++)
			cfg.policy[FL_SOFT_FIRST + k] = (pm >> k) & 1 ? POLICY_WARN : POLICY_REFUSE;
		for (int k = 0; k < 5; k++) {
			int f = FL_SOFT_FIRST + k;
			if (!(flags & FL(f)) || (f == FL_PREGNANCY && ps))
				continue;
			if (cfg.policy[f] == POLICY_REFUSE)
				refused |= FL(f);
			else
				warn |= FL(f);
		}
		CHECK_EQ(start(&r, &room_pulsed, &cfg, ps ? "preg-safe" : "lbp-2hz", flags), 0);
		if (refused) {
			CHECK_REFUSED(&r, &cfg, T0 + SEC(7), E_CONTRAINDICATED);
		} else {
			CHECK_EQ(ARM(&r, &cfg, T0 + SEC(7)), 0);
			CHECK_EQ(r.s.stim.armed, 1);
			/* The pregnancy flag lifted by pregnancy_safe: see the note. */
			CHECK_EQ(warned & ~FL(FL_PREGNANCY), warn & ~FL(FL_PREGNANCY));
			if (!ps)
				CHECK_EQ(warned, warn);
		}
	}
}

/* ---- S5, S7, profile and wiring -------------------------------------------------- */

static void test_blocks(void)
{
	struct acu_cfg cfg, other;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	unsigned warned;

	cfg_init(&cfg);

	/* S5: interlock tripped */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0), 0);
	now = at(T0 + SEC(1));
	r.interlock_tripped = 1;
	room_alarm_raise(&r, AL_INTERLOCK, PRIO_HIGH, &now);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(2), E_INTERLOCK);
	CHECK_EQ(r.alarm[AL_INTERLOCK].active, 1);
	/* cleared interlock and a new stim on: armed, and the alarm clears */
	r.interlock_tripped = 0;
	CHECK_EQ(r.alarm[AL_INTERLOCK].active, 1);
	CHECK_ARMS(&r, &cfg, T0 + SEC(3), 0u);
	CHECK_EQ(r.alarm[AL_INTERLOCK].active, 0);
	CHECK_EQ(room_alarm_level(&r), PRIO_NONE);

	/* S7: GPIO fault */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0), 0);
	r.gpio_fault = 1;
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_GPIO_FAULT);
	r.gpio_fault = 0;
	CHECK_ARMS(&r, &cfg, T0 + SEC(2), 0u);

	/* no profile */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, NULL, 0), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_INVALID_STATE);
	/* the session's profile gone from the config (after a reload) */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "neck.dd", 0), 0);
	other = cfg;
	other.nprofiles = 1; /* lbp-2hz only */
	CHECK_REFUSED(&r, &other, T0 + SEC(1), E_UNKNOWN_PROFILE);
	CHECK_ARMS(&r, &cfg, T0 + SEC(2), 0u);

	/* dense-disperse needs pulse lines */
	CHECK_EQ(start(&r, &room_gate_only, &cfg, "neck.dd", 0), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_UNSUPPORTED);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "neck.dd", 0), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	/* gating only: continuous and intermittent arm without pulse lines */
	CHECK_EQ(start(&r, &room_gate_only, &cfg, "lbp-2hz", 0), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	CHECK_EQ(start(&r, &room_gate_only, &cfg, "intermittent", 0), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);

	/* profile channels beyond the room's */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "three-ch", 0), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_UNSUPPORTED);
	CHECK_EQ(start(&r, &room_gate_only, &cfg, "three-ch", 0), 0);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_UNSUPPORTED);
	CHECK_EQ(start(&r, &room_eight, &cfg, "three-ch", 0), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "ch2", 0), 0);
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	{
		struct acu_room_cfg one;
		room(&one, "4", 1, 1);
		CHECK_EQ(start(&r, &one, &cfg, "ch2", 0), 0);
		CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_UNSUPPORTED);
		CHECK_EQ(start(&r, &one, &cfg, "ch1", 0), 0);
		CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
		CHECK_EQ(start(&r, &one, &cfg, "lbp-2hz", 0), 0); /* all of the room's */
		CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	}
	{
		/* channel 8 of an eight-channel room */
		struct acu_profile_cfg saved = profiles[P_CH2];
		profiles[P_CH2].channels = FL(7);
		CHECK_EQ(start(&r, &room_eight, &cfg, "ch2", 0), 0);
		CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
		CHECK_EQ(start(&r, &room_pulsed, &cfg, "ch2", 0), 0);
		CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_UNSUPPORTED);
		profiles[P_CH2] = saved;
	}
}

/* ---- the stimulation budget -------------------------------------------------------- */

static void test_budget(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	unsigned warned;
	int64_t b;

	cfg_init(&cfg); /* stim_max 1800 s */
	room_init(&r, &room_pulsed);
	/* min(profile duration_s, stim_max) */
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_CONT]), SEC(1200));
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_LONG]), SEC(1800));
	/* duration_s = 0: stim_max */
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_NODUR]), SEC(1800));
	CHECK_EQ(room_stim_budget(&r, &cfg, NULL), SEC(1800));
	cfg.stim_max = 1200; /* equal */
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_CONT]), SEC(1200));
	cfg.stim_max = 600;
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_CONT]), SEC(600));
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_NODUR]), SEC(600));
	cfg.stim_max = 3600;
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_LONG]), SEC(3600));
	CHECK_EQ(room_stim_budget(&r, &cfg, &profiles[P_CONT]), SEC(1200));
	cfg_init(&cfg);

	/* delivered >= budget on a profile channel: refused */
	b = room_stim_budget(&r, &cfg, &profiles[P_CONT]);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0), 0);
	r.s.stim.ch[1].delivered_ns = b;
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_INVALID_STATE);
	r.s.stim.ch[1].delivered_ns = b + 1;
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_INVALID_STATE);
	r.s.stim.ch[1].delivered_ns = b - 1;
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	/* stim_max reached, profile without duration */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "no-duration", 0), 0);
	r.s.stim.ch[0].delivered_ns = SEC(1800);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_INVALID_STATE);
	r.s.stim.ch[0].delivered_ns = SEC(1800) - 1;
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	/* profile longer than stim_max: stim_max caps */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "long", 0), 0);
	r.s.stim.ch[0].delivered_ns = SEC(1800);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_INVALID_STATE);
	/* a channel the profile does not drive does not count */
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "ch1", 0), 0);
	r.s.stim.ch[1].delivered_ns = SEC(1200);
	CHECK_ARMS(&r, &cfg, T0 + SEC(1), 0u);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "ch1", 0), 0);
	r.s.stim.ch[0].delivered_ns = SEC(1200);
	CHECK_REFUSED(&r, &cfg, T0 + SEC(1), E_INVALID_STATE);
}

/* ---- success and stim off ------------------------------------------------------------ */

static void test_success_and_off(void)
{
	struct acu_cfg cfg;
	struct acu_room r;
	struct acu_err err;
	struct acu_now now;
	unsigned warned;

	cfg_init(&cfg);
	CHECK_EQ(start(&r, &room_pulsed, &cfg, "lbp-2hz", 0), 0);
	CHECK_EQ(r.s.stim.armed, 0); /* start does not arm by itself */
	now = at(T0 + SEC(2));
	room_alarm_raise(&r, AL_INTERLOCK, PRIO_HIGH, &now); /* interlock since cleared */
	CHECK_ARMS(&r, &cfg, T0 + SEC(5) + 17, 0u);
	CHECK_EQ(r.s.stim.armed_at, T0 + SEC(5) + 17);
	CHECK_EQ(r.s.stim.armed_wall, T0 + SEC(5) + 17 + WALL_OFF);
	CHECK_STR(r.s.stim.blocked, "");
	CHECK_EQ(r.alarm[AL_INTERLOCK].active, 0);
	CHECK_EQ(r.s.state, ST_RUNNING);

	/* stim off: disarmed, blocked says why */
	room_stim_off(&r, "stim-off");
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_STR(r.s.stim.blocked, "stim-off");
	CHECK_EQ(r.s.state, ST_RUNNING);
	room_stim_off(&r, NULL);
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_STR(r.s.stim.blocked, "");
	room_stim_off(&r, "interlock");
	CHECK_STR(r.s.stim.blocked, "interlock");

	/* re-arming: the schedule restarts at the new instant, blocked cleared */
	CHECK_ARMS(&r, &cfg, T0 + SEC(100), 0u);
	CHECK_EQ(r.s.stim.armed_at, T0 + SEC(100));
	CHECK_STR(r.s.stim.blocked, "");

	/* a long reason is truncated, not overflowed */
	room_stim_off(&r, "a reason that is very much longer than the sixty-four bytes of blocked[]");
	CHECK_EQ(r.s.stim.armed, 0);
	CHECK_EQ(strlen(r.s.stim.blocked), sizeof r.s.stim.blocked - 1);
}

int main(void)
{
	fixtures();
	test_not_running();
	test_hard_flags();
	test_soft_flags();
	test_blocks();
	test_budget();
	test_success_and_off();
	return unit_report("test_arm");
}

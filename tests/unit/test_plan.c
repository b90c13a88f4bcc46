/* Unit tests of the pure rules around the gate decision (daemon/gate.c):
 * gate_plan (per-channel reasons, the end of an arming, the next instant the
 * plan can change), gate_why_disarms, gate_profile_fit, the interlock latch
 * (gate_interlock) and the heartbeat rule, on an injected clock: every time is
 * an argument, nothing sleeps.
 *
 * The oracles are written from SPEC §3 (S2-S5, S7) and do not call the
 * functions under test; gate_channel_in's result is checked field by field,
 * gate_decide itself exhaustively by test_gate, sched_at by test_sched. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acud.h"
#include "cfg.h"
#include "gate.h"
#include "stimsched.h"
#include "fixture.h"
#include "unit.h"

#define T0 SEC(5000)
#define FL(f) (1u << (f))

static int printed;

static void fail_at(const char *file, int line, const char *what, const char *ctx)
{
	unit_failures++;
	if (++printed <= 25)
		fprintf(stderr, "%s:%d: check failed: %s (%s)\n", file, line, what, ctx);
}

#define CHECKC(cond, ctx)                                                            \
	do {                                                                         \
		unit_checks++;                                                       \
		if (!(cond))                                                         \
			fail_at(__FILE__, __LINE__, #cond, ctx);                     \
	} while (0)

/* ---- fixtures ---------------------------------------------------------------- */

enum { P_CONT, P_DD, P_INT, P_DELAYED, P_CH2, P_WIDE, P_SAFE, P_NONE, NPROF };
static struct acu_profile_cfg profiles[NPROF];
static const char *const prof_names[NPROF] = {
	"continuous", "dense-disperse", "intermittent", "delayed", "ch2", "three-ch", "safe", "none",
};

enum { R_GATE2, R_PULSE2, R_PULSE1, R_GATE1, NROOM };
static struct acu_room_cfg rooms[NROOM];

static void prof(int i, enum acu_mode mode, int64_t delay_s, int64_t duration_s,
		 unsigned channels, int pregnancy_safe)
{
	fixture_profile(&profiles[i], prof_names[i], mode, delay_s, duration_s, channels,
			pregnancy_safe);
}

static void room(int i, int nchannels, int pulses)
{
	char id[12];	/* any int: -O0 builds (make coverage) check the whole range */

	snprintf(id, sizeof id, "%d", i + 1);
	fixture_room(&rooms[i], id, nchannels, pulses);
}

static void fixtures(void)
{
	prof(P_CONT, MODE_CONTINUOUS, 0, 60, 0, 0);
	prof(P_DD, MODE_DENSE_DISPERSE, 0, 60, 0, 0);
	prof(P_INT, MODE_INTERMITTENT, 0, 60, 0, 0);
	prof(P_DELAYED, MODE_INTERMITTENT, 2, 12, 0, 0);
	prof(P_CH2, MODE_CONTINUOUS, 0, 30, FL(1), 0);
	prof(P_WIDE, MODE_CONTINUOUS, 0, 30, FL(0) | FL(1) | FL(2), 0);
	prof(P_SAFE, MODE_CONTINUOUS, 0, 60, 0, 1);
	room(R_GATE2, 2, 0);
	room(R_PULSE2, 2, 1);
	room(R_PULSE1, 1, 1);
	room(R_GATE1, 1, 0);
}

static const struct acu_profile_cfg *profile(int i)
{
	return i == P_NONE ? NULL : &profiles[i];
}

/* ---- oracles from the SPEC ------------------------------------------------------ */

/* §3: the profile's channels must exist in the room; dense-disperse (a rate
 * the daemon generates) needs a pulse line on each of them. */
static int oracle_fits(const struct acu_room_cfg *rc, const struct acu_profile_cfg *p)
{
	unsigned want;

	if (!p)
		return 0;
	want = p->channels ? p->channels : (1u << rc->nchannels) - 1;
	for (int c = 0; c < 8; c++) {
		if (!(want & (1u << c)))
			continue;
		if (c >= rc->nchannels)
			return 0;
		if (p->mode == MODE_DENSE_DISPERSE && !rc->pulse[c].set)
			return 0;
	}
	return 1;
}

/* S3 hard flags, S4 refusing soft flags, S5 interlock, S7 GPIO fault, and a
 * reload leaving an armed profile the room cannot run: each ends the arming. */
static int oracle_disarms(enum gate_why w)
{
	return w == GATE_GPIO_FAULT || w == GATE_CONTRAINDICATED || w == GATE_FLAG_REFUSED ||
	       w == GATE_INTERLOCK || w == GATE_UNSUPPORTED;
}

/* ---- gate_why_disarms, gate_off_cause, gate_heartbeat_runs ---------------------- */

static void test_small_rules(void)
{
	for (int w = GATE_ON; w <= GATE_SCHEDULE_OFF; w++)
		CHECK_EQ(gate_why_disarms((enum gate_why)w), oracle_disarms((enum gate_why)w));
	/* Not a reason at all: fail closed. */
	CHECK_EQ(gate_why_disarms((enum gate_why)(GATE_SCHEDULE_OFF + 1)), 1);
	CHECK_EQ(gate_why_disarms((enum gate_why)-1), 1);
	for (int w = GATE_ON; w <= GATE_SCHEDULE_OFF; w++)
		CHECK_EQ(gate_why_dose_done((enum gate_why)w),
			 w == GATE_STIM_MAX || w == GATE_DURATION_DONE);

	CHECK_STR(gate_off_cause(GATE_SCHEDULE_OFF, "stim"), "schedule");
	CHECK_STR(gate_off_cause(GATE_STIM_MAX, "stim"), "stim-max");
	CHECK_STR(gate_off_cause(GATE_DURATION_DONE, "stim"), "duration-done");
	CHECK_STR(gate_off_cause(GATE_INTERLOCK, "interlock"), "interlock");
	CHECK_STR(gate_off_cause(GATE_NOT_ARMED, "stim"), "stim");
	CHECK_STR(gate_off_cause(GATE_NOT_RUNNING, "expiry"), "expiry");
	CHECK_STR(gate_off_cause(GATE_UNSUPPORTED, "reload"), "reload");

	/* S7: toggles only while a gate is on and no GPIO fault is pending. */
	for (int on = 0; on < 4; on++)
		for (int faults = 0; faults < 4; faults++)
			CHECK_EQ(gate_heartbeat_runs(on, faults), on > 0 && faults == 0);
}

/* ---- gate_profile_fit ---------------------------------------------------------- */

static void test_profile_fit(void)
{
	struct acu_room_cfg rc;
	struct acu_profile_cfg p;
	long long n = 0;

	for (int nch = 1; nch <= ACU_MAX_CHANNELS; nch++)
	for (int pulses = 0; pulses < 2; pulses++)
	for (unsigned mask = 0; mask < 256; mask++)
	for (int mode = MODE_CONTINUOUS; mode <= MODE_INTERMITTENT; mode++) {
		enum gate_fit got;
		char ctx[96];

		memset(&rc, 0, sizeof rc);
		rc.nchannels = nch;
		rc.npulse = pulses ? nch : 0;
		for (int c = 0; c < nch; c++) {
			rc.gate[c].set = 1;
			rc.pulse[c].set = pulses;
		}
		memset(&p, 0, sizeof p);
		p.mode = (enum acu_mode)mode;
		p.channels = mask;
		got = gate_profile_fit(&rc, &p);
		snprintf(ctx, sizeof ctx, "nch=%d pulses=%d mask=0x%02x mode=%d -> %d", nch, pulses,
			 mask, mode, got);
		CHECKC((got == GATE_FITS) == oracle_fits(&rc, &p), ctx);
		/* The reason names the first thing missing: channels, then pulses. */
		if (mask & ~((1u << nch) - 1))
			CHECKC(got == GATE_FIT_CHANNELS, ctx);
		else if (mode == MODE_DENSE_DISPERSE && !pulses)
			CHECKC(got == GATE_FIT_NEEDS_PULSE, ctx);
		CHECKC(gate_profile_channels(&rc, &p) == (mask ? mask : (1u << nch) - 1), ctx);
		n++;
	}
	CHECK_EQ(gate_profile_fit(&rooms[R_PULSE2], NULL), GATE_FIT_NO_PROFILE);
	CHECK_EQ(gate_profile_channels(&rooms[R_PULSE2], NULL), 3);
	printf("test_plan: gate_profile_fit: %lld combinations\n", n);
}

/* ---- gate_plan: structure, over its inputs --------------------------------------- */

static const enum acu_policy *s4_defaults(void)
{
	static enum acu_policy policy[FL__N];

	for (int f = 0; f < FL__N; f++)
		policy[f] = POLICY_WARN;
	policy[FL_PREGNANCY] = policy[FL_EPILEPSY] = policy[FL_HEART_DISEASE] = POLICY_REFUSE;
	return policy;
}

/* The instants the structure test looks at, relative to the arming. */
static const int64_t instants[] = { 0, SEC(1), SEC(2), SEC(4), SEC(5), SEC(7) + 1, SEC(25) };
#define NINST ((int)(sizeof instants / sizeof instants[0]))
/* Stimulation delivered per channel before the instant: none, some, one
 * nanosecond short of the limit, exactly the limit. */
static const int64_t delivered_cases[] = { 0, SEC(3), SEC(12) - 1, SEC(12) };

static void check_plan(const struct gate_room_in *in, const struct gate_plan *pl,
		       const char *ctx)
{
	const struct acu_profile_cfg *p = in->profile;
	const struct acu_room_cfg *rc = in->room;
	unsigned chans = p && p->channels ? p->channels : (1u << rc->nchannels) - 1;
	int unsupported = in->armed && !oracle_fits(rc, p);
	int64_t limit = in->budget_ns < in->stim_max_ns ? in->budget_ns : in->stim_max_ns;
	struct sched_point pt = { 0, 0, 0, ACU_NEVER };
	enum gate_why end = GATE_ON;
	int driven = 0, all_done = 1, any_max = 0;
	int64_t next = ACU_NEVER;

	if (in->armed && p)
		sched_at(p, in->armed_at, in->now, &pt);
	for (int c = 0; c < rc->nchannels; c++) {
		struct gate_in g;
		enum gate_why w;

		/* The channel's input: the room's inputs as they are, armed only on
		 * the profile's channels. */
		gate_channel_in(in, &pt, chans, unsupported, c, &g);
		CHECKC(g.armed == (in->armed && p && (chans & (1u << c))), ctx);
		CHECKC(g.state == in->state && g.flags == in->flags && g.policy == in->policy, ctx);
		CHECKC(g.schedule_on == pt.on && g.unsupported == unsupported, ctx);
		CHECKC(g.pregnancy_safe == (p && p->pregnancy_safe), ctx);
		CHECKC(g.interlock_tripped == in->interlock_tripped &&
			       g.gpio_fault == in->gpio_fault, ctx);
		CHECKC(g.delivered_ns == in->delivered_ns[c] && g.duration_ns == in->budget_ns &&
			       g.stim_max_ns == in->stim_max_ns, ctx);
		w = gate_decide(&g);

		CHECKC(pl->why[c] == w, ctx);
		if (oracle_disarms(w) && end == GATE_ON)
			end = w;
		if (g.armed) {
			driven = 1;
			if (w != GATE_STIM_MAX && w != GATE_DURATION_DONE)
				all_done = 0;
			any_max |= w == GATE_STIM_MAX;
		}
		if (w == GATE_ON && in->now + limit - in->delivered_ns[c] < next)
			next = in->now + limit - in->delivered_ns[c];
		/* S2: never on past the dose, whatever else. */
		if (pl->why[c] == GATE_ON)
			CHECKC(in->delivered_ns[c] < limit, ctx);
	}
	for (int c = rc->nchannels; c < ACU_MAX_CHANNELS; c++)
		CHECKC(pl->why[c] != GATE_ON, ctx);
	if (end == GATE_ON && in->armed && driven && all_done)
		end = any_max ? GATE_STIM_MAX : GATE_DURATION_DONE;
	CHECKC(pl->end == end, ctx);
	if (end != GATE_ON || !in->armed || in->state != ST_RUNNING)
		next = ACU_NEVER;
	else if (pt.phase_end < next)
		next = pt.phase_end;
	CHECKC(pl->next == next, ctx);
	/* The plan's next change is never in the past. */
	CHECKC(pl->next >= in->now, ctx);
}

static void test_plan_structure(void)
{
	static const enum acu_state states[] = { ST_IDLE, ST_RUNNING, ST_PAUSED, ST_DUE };
	static const unsigned flag_cases[] = {
		0, FL(FL_ICD), FL(FL_EPILEPSY), FL(FL_METAL_IMPLANT), FL(FL_PREGNANCY),
		FL(FL_PACEMAKER) | FL(FL_METAL_IMPLANT),
	};
	const enum acu_policy *policy = s4_defaults();
	long long n = 0, on = 0, ended = 0;

	for (int si = 0; si < 4; si++)
	for (int armed = 0; armed < 2; armed++)
	for (size_t fi = 0; fi < sizeof flag_cases / sizeof flag_cases[0]; fi++)
	for (int il = 0; il < 2; il++)
	for (int gf = 0; gf < 2; gf++)
	for (int pi = 0; pi < NPROF; pi++)
	for (int ri = 0; ri < NROOM; ri++)
	for (int d0 = 0; d0 < 4; d0++)
	for (int d1 = 0; d1 < 4; d1++)
	for (int ti = 0; ti < NINST; ti++)
	for (int maxi = 0; maxi < 2; maxi++) {
		struct gate_room_in in;
		struct gate_plan pl;
		char ctx[200];

		memset(&in, 0, sizeof in);
		in.room = &rooms[ri];
		in.profile = profile(pi);
		in.state = states[si];
		in.armed = armed;
		in.armed_at = T0;
		in.flags = flag_cases[fi];
		in.policy = policy;
		in.interlock_tripped = il;
		in.gpio_fault = gf;
		/* budget below stim_max, or stim_max the tighter one */
		in.budget_ns = maxi ? SEC(30) : SEC(12);
		in.stim_max_ns = maxi ? SEC(12) : SEC(30);
		in.delivered_ns[0] = delivered_cases[d0];
		in.delivered_ns[1] = delivered_cases[d1];
		in.now = T0 + instants[ti];
		memset(&pl, 0x5a, sizeof pl);
		gate_plan(&in, &pl);
		snprintf(ctx, sizeof ctx,
			 "state=%s armed=%d flags=0x%02x il=%d gf=%d profile=%s room=%d "
			 "delivered=%lld,%lld t=+%lld maxi=%d -> end=%s next=%lld",
			 acu_state_name(in.state), armed, in.flags, il, gf, prof_names[pi], ri,
			 (long long)in.delivered_ns[0], (long long)in.delivered_ns[1],
			 (long long)instants[ti], maxi, gate_why_name(pl.end), (long long)pl.next);
		check_plan(&in, &pl, ctx);
		for (int c = 0; c < rooms[ri].nchannels; c++)
			on += pl.why[c] == GATE_ON;
		ended += pl.end != GATE_ON;
		n++;
	}
	printf("test_plan: gate_plan: %lld combinations, %lld gates on, %lld ending the arming\n",
	       n, on, ended);
	CHECK(on > 0);
	CHECK(ended > 0);
}

/* A few cases by name. */
static void test_plan_cases(void)
{
	struct gate_room_in in;
	struct gate_plan pl;

	memset(&in, 0, sizeof in);
	in.room = &rooms[R_GATE2];
	in.profile = &profiles[P_DD];
	in.state = ST_RUNNING;
	in.armed = 1;
	in.armed_at = T0;
	in.policy = s4_defaults();
	in.budget_ns = SEC(60);
	in.stim_max_ns = SEC(1800);
	in.now = T0 + SEC(10);
	/* A reload made the armed profile dense-disperse on a gate-only room. */
	gate_plan(&in, &pl);
	CHECK_EQ(pl.why[0], GATE_UNSUPPORTED);
	CHECK_EQ(pl.why[1], GATE_UNSUPPORTED);
	CHECK_EQ(pl.end, GATE_UNSUPPORTED);
	CHECK_EQ(pl.next, ACU_NEVER);
	/* The same room unarmed is not blocked by it. */
	in.armed = 0;
	gate_plan(&in, &pl);
	CHECK_EQ(pl.why[0], GATE_NOT_ARMED);
	CHECK_EQ(pl.end, GATE_ON);
	/* Armed with the profile gone. */
	in.armed = 1;
	in.profile = NULL;
	gate_plan(&in, &pl);
	CHECK_EQ(pl.end, GATE_UNSUPPORTED);
	/* A profile that fits: on, next at the end of the dose. */
	in.room = &rooms[R_PULSE2];
	in.profile = &profiles[P_CONT];
	gate_plan(&in, &pl);
	CHECK_EQ(pl.why[0], GATE_ON);
	CHECK_EQ(pl.why[1], GATE_ON);
	CHECK_EQ(pl.end, GATE_ON);
	CHECK_EQ(pl.next, T0 + SEC(10) + SEC(60));
	/* One channel done, the other not: the arming stands. */
	in.delivered_ns[0] = SEC(60);
	gate_plan(&in, &pl);
	CHECK_EQ(pl.why[0], GATE_DURATION_DONE);
	CHECK_EQ(pl.why[1], GATE_ON);
	CHECK_EQ(pl.end, GATE_ON);
	/* Both done: it ends, stim_max named when it was the limit. */
	in.delivered_ns[1] = SEC(60);
	gate_plan(&in, &pl);
	CHECK_EQ(pl.end, GATE_DURATION_DONE);
	in.stim_max_ns = SEC(60);
	gate_plan(&in, &pl);
	CHECK_EQ(pl.end, GATE_STIM_MAX);
	/* Interlock and fault: ended whatever the dose; fault named first. */
	in.delivered_ns[0] = in.delivered_ns[1] = 0;
	in.interlock_tripped = 1;
	gate_plan(&in, &pl);
	CHECK_EQ(pl.end, GATE_INTERLOCK);
	in.gpio_fault = 1;
	gate_plan(&in, &pl);
	CHECK_EQ(pl.end, GATE_GPIO_FAULT);
	CHECK_EQ(pl.why[0], GATE_GPIO_FAULT);
	/* A hard flag on a running, unarmed room still shows as its block. */
	in.gpio_fault = in.interlock_tripped = 0;
	in.armed = 0;
	in.flags = FL(FL_PACEMAKER);
	gate_plan(&in, &pl);
	CHECK_EQ(pl.end, GATE_CONTRAINDICATED);
	/* Paused: nothing on, nothing ends (pause disarms by itself). */
	in.flags = 0;
	in.armed = 1;
	in.state = ST_PAUSED;
	gate_plan(&in, &pl);
	CHECK_EQ(pl.why[0], GATE_NOT_RUNNING);
	CHECK_EQ(pl.end, GATE_ON);
	CHECK_EQ(pl.next, ACU_NEVER);
}

/* ---- gate_plan over time: nothing changes before `next` ------------------------ */

/* Runs an armed room from the arming to the end of its dose on the injected
 * clock, jumping from one `next` to the following, and checks at instants in
 * between that the plan does not change before the instant it named; that no
 * channel gets more than the limit; that every channel the profile drives gets
 * exactly the limit (the schedule permitting within the run). */
static void run_to_end(int ri, int pi, int64_t budget, int64_t stim_max)
{
	const struct acu_room_cfg *rc = &rooms[ri];
	const struct acu_profile_cfg *p = &profiles[pi];
	int64_t limit = budget < stim_max ? budget : stim_max, t = T0;
	struct gate_room_in in;
	struct gate_plan pl, mid;
	char ctx[160];
	int steps = 0;

	memset(&in, 0, sizeof in);
	in.room = rc;
	in.profile = p;
	in.state = ST_RUNNING;
	in.armed = 1;
	in.armed_at = T0;
	in.policy = s4_defaults();
	in.budget_ns = budget;
	in.stim_max_ns = stim_max;
	for (;;) {
		in.now = t;
		gate_plan(&in, &pl);
		snprintf(ctx, sizeof ctx, "room=%d profile=%s t=+%lld next=%lld end=%s", ri,
			 prof_names[pi], (long long)(t - T0), (long long)pl.next,
			 gate_why_name(pl.end));
		if (pl.end != GATE_ON || pl.next == ACU_NEVER || ++steps > 1000)
			break;
		CHECKC(pl.next > t, ctx);
		for (int k = 1; k < 8; k++) {
			struct gate_room_in m = in;
			int64_t dt = (pl.next - t) / 8 * k;

			m.now = t + dt;
			for (int c = 0; c < rc->nchannels; c++)
				if (pl.why[c] == GATE_ON)
					m.delivered_ns[c] += dt;
			gate_plan(&m, &mid);
			CHECKC(mid.end == GATE_ON, ctx);
			for (int c = 0; c < rc->nchannels; c++)
				CHECKC((mid.why[c] == GATE_ON) == (pl.why[c] == GATE_ON), ctx);
		}
		for (int c = 0; c < rc->nchannels; c++)
			if (pl.why[c] == GATE_ON)
				in.delivered_ns[c] += pl.next - t;
		t = pl.next;
	}
	CHECKC(pl.end == (limit == stim_max && stim_max < budget ? GATE_STIM_MAX :
			  GATE_DURATION_DONE), ctx);
	for (int c = 0; c < rc->nchannels; c++) {
		int driven = !p->channels || (p->channels & (1u << c));

		CHECKC(in.delivered_ns[c] == (driven ? limit : 0), ctx);
	}
	/* Intermittent: the dose takes its on phases plus the off phases between. */
	if (p->mode == MODE_INTERMITTENT) {
		int64_t on = SEC(p->on_s), off = SEC(p->off_s), k = limit / on;
		int64_t want = SEC(p->delay_s) + k * (on + off) + (limit - k * on);

		if (limit % on == 0)
			want -= off;
		CHECKC(t - T0 == want, ctx);
	} else {
		CHECKC(t - T0 == SEC(p->delay_s) + limit, ctx);
	}
}

static void test_plan_over_time(void)
{
	static const int pis[] = { P_CONT, P_DD, P_INT, P_DELAYED, P_CH2, P_SAFE };

	for (size_t i = 0; i < sizeof pis / sizeof pis[0]; i++) {
		run_to_end(R_PULSE2, pis[i], SEC(12), SEC(1800));
		run_to_end(R_PULSE2, pis[i], SEC(60), SEC(12));
		run_to_end(R_PULSE2, pis[i], SEC(13) + 7, SEC(1800));
	}
	run_to_end(R_GATE2, P_CONT, SEC(12), SEC(1800));
	run_to_end(R_GATE1, P_INT, SEC(7), SEC(1800));
}

/* ---- the interlock latch (S5) --------------------------------------------------- */

static void test_interlock_latch(void)
{
	/* level: -1 unreadable, 0 clear, 1 active; edges: level changes since
	 * the last read, as counted from the queued edge events. */
	for (int prior = 0; prior < 2; prior++)
	for (int armed = 0; armed < 2; armed++)
	for (int level = -1; level <= 1; level++)
	for (int edges = 0; edges < 5; edges++) {
		struct gate_latch l;
		char ctx[80];
		int trip;

		memset(&l, 0x5a, sizeof l);
		gate_interlock(prior, armed, level, edges, &l);
		snprintf(ctx, sizeof ctx, "prior=%d armed=%d level=%d edges=%d -> %d/%d/%d",
			 prior, armed, level, edges, l.trip, l.tripped, l.fault);
		/* An input that cannot be read counts as tripped, and is a fault. */
		CHECKC(l.fault == (level < 0), ctx);
		CHECKC(l.tripped == (level != 0), ctx);
		/* A trip is any active moment since the last read not already
		 * handled: from a clear read, the line active (or unreadable) now
		 * or any edge at all (it left clear, however briefly); from a
		 * tripped read, only a release and a new press (two edges or
		 * more). An armed room is disarmed by any active line. */
		if (!prior)
			trip = level != 0 || edges > 0;
		else
			trip = edges >= 2;
		if (armed && level != 0)
			trip = 1;
		CHECKC(l.trip == trip, ctx);
	}
	/* By name. */
	{
		struct gate_latch l;

		/* A press shorter than one read: two edges, clear again. */
		gate_interlock(0, 1, 0, 2, &l);
		CHECK_EQ(l.trip, 1);
		CHECK_EQ(l.tripped, 0);
		CHECK_EQ(l.fault, 0);
		/* The same press with both edges coalesced into one event. */
		gate_interlock(0, 1, 0, 1, &l);
		CHECK_EQ(l.trip, 1);
		/* A release after a handled trip is no new trip. */
		gate_interlock(1, 0, 0, 1, &l);
		CHECK_EQ(l.trip, 0);
		CHECK_EQ(l.tripped, 0);
		/* A bouncing release: three edges; counted as a new trip. */
		gate_interlock(1, 0, 0, 3, &l);
		CHECK_EQ(l.trip, 1);
		/* Read error while armed: tripped, and a fault. */
		gate_interlock(0, 1, -1, 0, &l);
		CHECK_EQ(l.trip, 1);
		CHECK_EQ(l.tripped, 1);
		CHECK_EQ(l.fault, 1);
		/* Nothing at all. */
		gate_interlock(0, 1, 0, 0, &l);
		CHECK_EQ(l.trip + l.tripped + l.fault, 0);
		/* Held, nothing new, not armed: no news. */
		gate_interlock(1, 0, 1, 0, &l);
		CHECK_EQ(l.trip, 0);
		CHECK_EQ(l.tripped, 1);
	}
}

int main(void)
{
	fixtures();
	test_small_rules();
	test_profile_fit();
	test_plan_structure();
	test_plan_cases();
	test_plan_over_time();
	test_interlock_latch();
	return unit_report("test_plan");
}

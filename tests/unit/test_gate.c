/* Unit tests of the gate decision (daemon/gate.c) against SPEC §3 S2/S3/S4.
 *
 * The core test is exhaustive: every combination of gate_decide's inputs is
 * compared with an oracle written straight from the SPEC text, independently of
 * gate.c (it does not call gate_refused_soft nor use FL_HARD_MASK). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acud.h"
#include "cfg.h"
#include "gate.h"
#include "unit.h"

#define SEC(x) ((int64_t)(x) * NS_PER_SEC)

/* ---- the oracle: SPEC S2, S3, S4 ---------------------------------------- */

/* S3: pacemaker, icd, implanted-device. */
static int oracle_hard(unsigned flags)
{
	static const enum acu_flag hard[] = { FL_PACEMAKER, FL_ICD, FL_IMPLANTED_DEVICE };

	for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++)
		if (flags & (1u << hard[i]))
			return 1;
	return 0;
}

/* S4: a soft flag refuses when its policy is refuse; pregnancy is allowed when
 * the profile is pregnancy_safe. Returns the mask of refusing soft flags. */
static unsigned oracle_soft_refused(unsigned flags, const enum acu_policy *policy,
				    int pregnancy_safe)
{
	static const enum acu_flag soft[] = { FL_PREGNANCY, FL_EPILEPSY, FL_HEART_DISEASE,
					      FL_BLEEDING_DISORDER, FL_METAL_IMPLANT };
	unsigned m = 0;

	for (size_t i = 0; i < sizeof soft / sizeof soft[0]; i++) {
		enum acu_flag f = soft[i];

		if (!(flags & (1u << f)))
			continue;
		if (f == FL_PREGNANCY && pregnancy_safe)
			continue;
		if (policy[f] == POLICY_REFUSE)
			m |= 1u << f;
	}
	return m;
}

/* S2: a gate is active only while all hold. */
static int oracle_on(const struct gate_in *in)
{
	return in->state == ST_RUNNING &&
	       in->armed &&
	       in->schedule_on &&
	       !oracle_hard(in->flags) &&
	       !oracle_soft_refused(in->flags, in->policy, in->pregnancy_safe) &&
	       !in->interlock_tripped &&
	       in->delivered_ns < in->duration_ns &&
	       in->delivered_ns < in->stim_max_ns &&
	       !in->gpio_fault &&
	       !in->unsupported;
}

/* ---- quiet per-combination checks ----------------------------------------- */

/* Millions of checks: count every one in the harness, but print only the first
 * few failures, each with its full input. */
static int printed;

static void describe(const struct gate_in *in, enum gate_why got)
{
	fprintf(stderr,
		"  state=%s armed=%d sched=%d flags=0x%02x policy=[%d%d%d%d%d] preg_safe=%d "
		"interlock=%d delivered=%lld duration=%lld stim_max=%lld gpio_fault=%d "
		"unsupported=%d -> %s\n",
		acu_state_name(in->state), in->armed, in->schedule_on, in->flags,
		in->policy[FL_PREGNANCY], in->policy[FL_EPILEPSY], in->policy[FL_HEART_DISEASE],
		in->policy[FL_BLEEDING_DISORDER], in->policy[FL_METAL_IMPLANT],
		in->pregnancy_safe, in->interlock_tripped, (long long)in->delivered_ns,
		(long long)in->duration_ns, (long long)in->stim_max_ns, in->gpio_fault,
		in->unsupported, gate_why_name(got));
}

static void combo_check(int ok, const char *what, const struct gate_in *in, enum gate_why got)
{
	unit_checks++;
	if (ok)
		return;
	unit_failures++;
	if (++printed <= 20) {
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, what);
		describe(in, got);
	}
}

/* ---- the exhaustive product ------------------------------------------------ */

struct limits {
	int64_t delivered, duration, stim_max;
	const char *what;
};

#define D SEC(600)   /* delivered so far */
#define S SEC(1800)  /* a comfortable limit */

static const struct limits limit_cases[] = {
	/* delivered relative to duration_ns x relative to stim_max_ns */
	{ D, D + 1, D + 1, "below/below" },
	{ D, D + 1, D, "below/equal" },
	{ D, D + 1, D - 1, "below/above" },
	{ D, D, D + 1, "equal/below" },
	{ D, D, D, "equal/equal" },
	{ D, D, D - 1, "equal/above" },
	{ D, D - 1, D + 1, "above/below" },
	{ D, D - 1, D, "above/equal" },
	{ D, D - 1, D - 1, "above/above" },
	/* limit edge cases */
	{ 0, 0, S, "duration 0, nothing delivered" },
	{ 0, S, 0, "stim_max 0, nothing delivered" },
	{ 0, 0, 0, "both 0" },
	{ D, 0, S, "duration 0, delivered" },
	{ D, S, 0, "stim_max 0, delivered" },
	{ 0, 1, S, "duration 1 ns, nothing delivered" },
	{ 0, S, 1, "stim_max 1 ns, nothing delivered" },
	{ 0, 1, 1, "both 1 ns, nothing delivered" },
	{ 1, 1, S, "duration 1 ns, 1 ns delivered" },
	{ 0, -1, S, "negative duration" },
	{ 0, S, -1, "negative stim_max" },
};
#define NLIMITS ((int)(sizeof limit_cases / sizeof limit_cases[0]))
#define NRELATION 9 /* the first nine are the 3 x 3 relations */

static void test_exhaustive(void)
{
	static const enum acu_state states[] = { ST_IDLE, ST_RUNNING, ST_PAUSED, ST_DUE };
	enum acu_policy policy[FL__N];
	long long combos = 0, relation_combos = 0, on_count = 0, hard_combos = 0;
	struct gate_in in;

	for (int si = 0; si < 4; si++)
	for (int armed = 0; armed < 2; armed++)
	for (int sched = 0; sched < 2; sched++)
	for (unsigned flags = 0; flags < 256; flags++)
	for (unsigned pm = 0; pm < 32; pm++)
	for (int psafe = 0; psafe < 2; psafe++)
	for (int il = 0; il < 2; il++)
	for (int li = 0; li < NLIMITS; li++)
	for (int gf = 0; gf < 2; gf++)
	for (int un = 0; un < 2; un++) {
		enum gate_why got;
		int want, hard = oracle_hard(flags);

		/* Hard flags carry a "warn" policy: no config lifts them (S3). */
		for (int f = 0; f < FL__N; f++)
			policy[f] = POLICY_WARN;
		for (int k = 0; k < 5; k++)
			policy[FL_PREGNANCY + k] = (pm >> k) & 1 ? POLICY_WARN : POLICY_REFUSE;

		memset(&in, 0, sizeof in);
		in.state = states[si];
		in.armed = armed;
		in.schedule_on = sched;
		in.flags = flags;
		in.policy = policy;
		in.pregnancy_safe = psafe;
		in.interlock_tripped = il;
		in.delivered_ns = limit_cases[li].delivered;
		in.duration_ns = limit_cases[li].duration;
		in.stim_max_ns = limit_cases[li].stim_max;
		in.gpio_fault = gf;
		in.unsupported = un;

		got = gate_decide(&in);
		want = oracle_on(&in);
		combos++;
		if (li < NRELATION)
			relation_combos++;
		on_count += want;

		combo_check((got == GATE_ON) == want, "(gate_decide(&in) == GATE_ON) == oracle",
			    &in, got);
		/* A reason is always one of the enum's. */
		combo_check((unsigned)got <= GATE_SCHEDULE_OFF, "reason in range", &in, got);
		if (hard) {
			hard_combos++;
			combo_check(got != GATE_ON, "hard flag never GATE_ON", &in, got);
			/* gpio-fault is reported first, then contraindicated (gate.h). */
			combo_check(got == (gf ? GATE_GPIO_FAULT : GATE_CONTRAINDICATED),
				    "hard flag reason", &in, got);
		}
		if (gf)
			combo_check(got == GATE_GPIO_FAULT, "gpio-fault reported first", &in, got);
		if (un)
			combo_check(got != GATE_ON, "unsupported never GATE_ON", &in, got);
	}

	printf("test_gate: %lld combinations (%lld over the 3x3 delivered/limit relations, "
	       "%lld over %d limit edge cases), %lld on, %lld with a hard flag\n",
	       combos, relation_combos, combos - relation_combos, NLIMITS - NRELATION, on_count,
	       hard_combos);
	CHECK_EQ(relation_combos, 4LL * 2 * 2 * 256 * 32 * 2 * 2 * 9 * 2 * 2);
	CHECK(on_count > 0);
}

/* ---- hard flags: whatever else, never on ---------------------------------- */

/* Everything else as favourable as it can be, and every policy (of every flag,
 * hard ones included) set either way: a hard flag still gates off. */
static void test_hard_flags(void)
{
	static const enum acu_flag hard[] = { FL_PACEMAKER, FL_ICD, FL_IMPLANTED_DEVICE };
	enum acu_policy policy[FL__N];
	struct gate_in in;

	for (int pv = 0; pv < 2; pv++) {
		for (int f = 0; f < FL__N; f++)
			policy[f] = pv ? POLICY_WARN : POLICY_REFUSE;
		for (size_t h = 0; h < 3; h++) {
			memset(&in, 0, sizeof in);
			in.state = ST_RUNNING;
			in.armed = 1;
			in.schedule_on = 1;
			in.policy = policy;
			in.pregnancy_safe = 1;
			in.delivered_ns = 0;
			in.duration_ns = S;
			in.stim_max_ns = S;
			CHECK_EQ(gate_decide(&in), GATE_ON);
			in.flags = 1u << hard[h];
			CHECK_EQ(gate_decide(&in), GATE_CONTRAINDICATED);
			in.flags = (1u << hard[h]) | 0xf8u; /* with every soft flag */
			CHECK_EQ(gate_decide(&in), GATE_CONTRAINDICATED);
			/* A NULL or bogus policy table does not change it. */
			in.policy = NULL;
			CHECK_EQ(gate_decide(&in), GATE_CONTRAINDICATED);
		}
	}
}

/* ---- reason precedence (gate.h order) -------------------------------------- */

static void test_precedence(void)
{
	enum acu_policy policy[FL__N];
	struct gate_in in;

	for (int f = 0; f < FL__N; f++)
		policy[f] = POLICY_REFUSE;

	/* Every condition fails; lifting them one at a time, in gate.h's order,
	 * reveals the next reason each time. */
	memset(&in, 0, sizeof in);
	in.gpio_fault = 1;
	in.flags = (1u << FL_ICD) | (1u << FL_EPILEPSY);
	in.policy = policy;
	in.interlock_tripped = 1;
	in.unsupported = 1;
	in.state = ST_PAUSED;
	in.armed = 0;
	in.delivered_ns = S;
	in.stim_max_ns = S;
	in.duration_ns = S / 2;
	in.schedule_on = 0;

	CHECK_EQ(gate_decide(&in), GATE_GPIO_FAULT);
	in.gpio_fault = 0;
	CHECK_EQ(gate_decide(&in), GATE_CONTRAINDICATED);
	in.flags &= ~(1u << FL_ICD);
	CHECK_EQ(gate_decide(&in), GATE_FLAG_REFUSED);
	policy[FL_EPILEPSY] = POLICY_WARN;
	CHECK_EQ(gate_decide(&in), GATE_INTERLOCK);
	in.interlock_tripped = 0;
	CHECK_EQ(gate_decide(&in), GATE_UNSUPPORTED);
	in.unsupported = 0;
	CHECK_EQ(gate_decide(&in), GATE_NOT_RUNNING);
	in.state = ST_RUNNING;
	CHECK_EQ(gate_decide(&in), GATE_NOT_ARMED);
	in.armed = 1;
	CHECK_EQ(gate_decide(&in), GATE_STIM_MAX);
	in.stim_max_ns = 2 * S;
	CHECK_EQ(gate_decide(&in), GATE_DURATION_DONE);
	in.duration_ns = 2 * S;
	CHECK_EQ(gate_decide(&in), GATE_SCHEDULE_OFF);
	in.schedule_on = 1;
	CHECK_EQ(gate_decide(&in), GATE_ON);

	/* A few single reasons on an otherwise-on gate. */
	in.state = ST_IDLE;
	CHECK_EQ(gate_decide(&in), GATE_NOT_RUNNING);
	in.state = ST_DUE;
	CHECK_EQ(gate_decide(&in), GATE_NOT_RUNNING);
	in.state = ST__N; /* not a state: not running */
	CHECK_EQ(gate_decide(&in), GATE_NOT_RUNNING);
	in.state = ST_RUNNING;
	in.flags = 1u << FL_PREGNANCY;
	CHECK_EQ(gate_decide(&in), GATE_FLAG_REFUSED);
	in.pregnancy_safe = 1;
	CHECK_EQ(gate_decide(&in), GATE_ON);
	in.flags = 1u << FL_METAL_IMPLANT; /* policy refuse here */
	CHECK_EQ(gate_decide(&in), GATE_FLAG_REFUSED);
	policy[FL_METAL_IMPLANT] = POLICY_WARN;
	CHECK_EQ(gate_decide(&in), GATE_ON);
	in.interlock_tripped = 1;
	in.gpio_fault = 1;
	CHECK_EQ(gate_decide(&in), GATE_GPIO_FAULT);
	in.gpio_fault = 0;
	CHECK_EQ(gate_decide(&in), GATE_INTERLOCK);
	in.interlock_tripped = 0;
	/* stim_max is reported before duration when both are reached. */
	in.delivered_ns = S;
	in.duration_ns = S;
	in.stim_max_ns = S;
	CHECK_EQ(gate_decide(&in), GATE_STIM_MAX);
	in.stim_max_ns = 0;
	in.delivered_ns = 0;
	CHECK_EQ(gate_decide(&in), GATE_STIM_MAX);
	in.stim_max_ns = S;
	in.duration_ns = 0;
	CHECK_EQ(gate_decide(&in), GATE_DURATION_DONE);
	in.duration_ns = 1;
	CHECK_EQ(gate_decide(&in), GATE_ON);
	in.delivered_ns = 1;
	CHECK_EQ(gate_decide(&in), GATE_DURATION_DONE);
}

/* ---- gate_refused_soft ------------------------------------------------------ */

static void test_refused_soft(void)
{
	enum acu_policy policy[FL__N];
	const unsigned soft_all = (1u << FL_PREGNANCY) | (1u << FL_EPILEPSY) |
				  (1u << FL_HEART_DISEASE) | (1u << FL_BLEEDING_DISORDER) |
				  (1u << FL_METAL_IMPLANT);
	const unsigned hard_all = (1u << FL_PACEMAKER) | (1u << FL_ICD) |
				  (1u << FL_IMPLANTED_DEVICE);
	long long n = 0;

	/* Exhaustive against the oracle's mask. */
	for (unsigned flags = 0; flags < 256; flags++)
	for (unsigned pm = 0; pm < 32; pm++)
	for (int psafe = 0; psafe < 2; psafe++) {
		unsigned got, want;

		for (int f = 0; f < FL__N; f++)
			policy[f] = POLICY_REFUSE; /* hard entries: not part of the mask anyway */
		for (int k = 0; k < 5; k++)
			policy[FL_PREGNANCY + k] = (pm >> k) & 1 ? POLICY_WARN : POLICY_REFUSE;
		got = gate_refused_soft(flags, policy, psafe);
		want = oracle_soft_refused(flags, policy, psafe);
		unit_checks++;
		n++;
		if (got != want) {
			unit_failures++;
			if (++printed <= 20)
				fprintf(stderr, "%s:%d: gate_refused_soft(0x%02x, pm=0x%02x, %d) = 0x%02x, want 0x%02x\n",
					__FILE__, __LINE__, flags, pm, psafe, got, want);
		}
	}
	printf("test_gate: gate_refused_soft: %lld combinations\n", n);

	for (int f = 0; f < FL__N; f++)
		policy[f] = POLICY_REFUSE;
	CHECK_EQ(gate_refused_soft(0, policy, 0), 0);
	CHECK_EQ(gate_refused_soft(hard_all, policy, 0), 0); /* hard flags are not in the mask */
	CHECK_EQ(gate_refused_soft(0xff, policy, 0), soft_all);
	CHECK_EQ(gate_refused_soft(0xff, policy, 1), soft_all & ~(1u << FL_PREGNANCY));
	CHECK_EQ(gate_refused_soft(1u << FL_PREGNANCY, policy, 1), 0);
	for (int f = 0; f < FL__N; f++)
		policy[f] = POLICY_WARN;
	CHECK_EQ(gate_refused_soft(0xff, policy, 0), 0);
	/* SPEC S4 defaults: pregnancy, epilepsy, heart-disease refuse; others warn. */
	policy[FL_PREGNANCY] = policy[FL_EPILEPSY] = policy[FL_HEART_DISEASE] = POLICY_REFUSE;
	CHECK_EQ(gate_refused_soft(0xff, policy, 0),
		 (1u << FL_PREGNANCY) | (1u << FL_EPILEPSY) | (1u << FL_HEART_DISEASE));
	CHECK_EQ(gate_refused_soft((1u << FL_BLEEDING_DISORDER) | (1u << FL_METAL_IMPLANT), policy, 0), 0);
	/* Fail closed: no policy table, or a value that is neither refuse nor warn. */
	CHECK_EQ(gate_refused_soft(0xff, NULL, 0), soft_all);
	CHECK_EQ(gate_refused_soft(0xff, NULL, 1), soft_all & ~(1u << FL_PREGNANCY));
	CHECK_EQ(gate_refused_soft(0, NULL, 0), 0);
	for (int f = 0; f < FL__N; f++)
		policy[f] = POLICY_WARN;
	policy[FL_EPILEPSY] = (enum acu_policy)7;
	CHECK_EQ(gate_refused_soft(1u << FL_EPILEPSY, policy, 0), 1u << FL_EPILEPSY);
	/* Bits above the eight flags are not soft flags. */
	for (int f = 0; f < FL__N; f++)
		policy[f] = POLICY_REFUSE;
	CHECK_EQ(gate_refused_soft(0xff00u, policy, 0), 0);
}

/* ---- gate_why_name ---------------------------------------------------------- */

static void test_why_name(void)
{
	CHECK_STR(gate_why_name(GATE_ON), "on");
	CHECK_STR(gate_why_name(GATE_GPIO_FAULT), "gpio-fault");
	CHECK_STR(gate_why_name(GATE_CONTRAINDICATED), "contraindicated");
	CHECK_STR(gate_why_name(GATE_FLAG_REFUSED), "flag-refused");
	CHECK_STR(gate_why_name(GATE_INTERLOCK), "interlock");
	CHECK_STR(gate_why_name(GATE_UNSUPPORTED), "unsupported");
	CHECK_STR(gate_why_name(GATE_NOT_RUNNING), "not-running");
	CHECK_STR(gate_why_name(GATE_NOT_ARMED), "not-armed");
	CHECK_STR(gate_why_name(GATE_STIM_MAX), "stim-max");
	CHECK_STR(gate_why_name(GATE_DURATION_DONE), "duration-done");
	CHECK_STR(gate_why_name(GATE_SCHEDULE_OFF), "schedule-off");
	CHECK_STR(gate_why_name((enum gate_why)(GATE_SCHEDULE_OFF + 1)), "unknown");
	CHECK_STR(gate_why_name((enum gate_why)1000), "unknown");
	CHECK_STR(gate_why_name((enum gate_why)-1), "unknown");
	/* Every reason has a distinct name. */
	for (int a = GATE_ON; a <= GATE_SCHEDULE_OFF; a++)
		for (int b = a + 1; b <= GATE_SCHEDULE_OFF; b++)
			CHECK(strcmp(gate_why_name((enum gate_why)a), gate_why_name((enum gate_why)b)) != 0);
}

int main(void)
{
	test_exhaustive();
	test_hard_flags();
	test_precedence();
	test_refused_soft();
	test_why_name();
	return unit_report("test_gate");
}

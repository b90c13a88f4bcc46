/* The gate decision of SPEC S2. No I/O, no clock, no globals: tests feed it every
 * combination of its inputs. */
#include "gate.h"

static const char *const why_names[] = {
	[GATE_ON] = "on",
	[GATE_GPIO_FAULT] = "gpio-fault",
	[GATE_CONTRAINDICATED] = "contraindicated",
	[GATE_FLAG_REFUSED] = "flag-refused",
	[GATE_INTERLOCK] = "interlock",
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

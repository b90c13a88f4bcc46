/* The gate decision (SPEC S2): may this channel's gate be active now? One pure
 * function of explicit inputs; every gate write in the daemon goes through it. */
#ifndef ACU_GATE_H
#define ACU_GATE_H

#include <stdint.h>
#include "acud.h"
#include "cfg.h"

struct gate_in {
	enum acu_state state;
	int armed;
	int schedule_on;               /* the profile's pattern is in an on phase */
	unsigned flags;                /* the session's contraindication flags */
	const enum acu_policy *policy; /* [safety] policy per flag (soft flags only) */
	int pregnancy_safe;            /* the profile's pregnancy_safe */
	int interlock_tripped;
	int64_t delivered_ns;          /* stimulation delivered on this channel */
	int64_t duration_ns;           /* the profile's duration_s, or the session's remainder */
	int64_t stim_max_ns;           /* [limits] stim_max */
	int gpio_fault;
};

/* Why a gate is off; GATE_ON when every condition of S2 holds. The order is the
 * order in which reasons are reported, most serious first. */
enum gate_why {
	GATE_ON,
	GATE_GPIO_FAULT,
	GATE_CONTRAINDICATED,          /* a hard flag (S3) */
	GATE_FLAG_REFUSED,             /* a soft flag whose policy is refuse (S4) */
	GATE_INTERLOCK,
	GATE_NOT_RUNNING,
	GATE_NOT_ARMED,
	GATE_STIM_MAX,
	GATE_DURATION_DONE,
	GATE_SCHEDULE_OFF,
};

enum gate_why gate_decide(const struct gate_in *in);
const char *gate_why_name(enum gate_why w);

/* Soft flags of `flags` that the policies (and the profile's pregnancy_safe)
 * refuse; the hard flags are always refused and are not part of this mask. */
unsigned gate_refused_soft(unsigned flags, const enum acu_policy *policy, int pregnancy_safe);

#endif

/* The stimulus schedule of a profile (SPEC §3) as a pure timeline: where the
 * pattern stands at any instant and when its next pulse falls. Times are
 * monotonic nanoseconds; `armed` is the schedule's origin. */
#ifndef ACU_STIMSCHED_H
#define ACU_STIMSCHED_H

#include <stdint.h>
#include "cfg.h"

struct sched_point {
	int on;                        /* in an on phase (after delay_s) */
	int freq_hz;                   /* pulse rate of the current phase */
	int64_t phase_start;           /* start of the current phase */
	int64_t phase_end;             /* next change of on/off or rate; ACU_NEVER if none */
};

void sched_at(const struct acu_profile_cfg *p, int64_t armed, int64_t t, struct sched_point *pt);
/* The first pulse at or after t. Pulses of a phase fall at phase_start + n/f,
 * computed from the phase start every time, so error never accumulates. */
int64_t sched_next_pulse(const struct acu_profile_cfg *p, int64_t armed, int64_t t);
/* Pulses in [from, to): for tests and the delivered-pulse count. */
int64_t sched_count_pulses(const struct acu_profile_cfg *p, int64_t armed, int64_t from, int64_t to);

#endif

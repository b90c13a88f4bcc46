/* A room's pulse train (SPEC §3) as a pure state machine over the schedule of
 * stimsched.h: when the next edge falls, and what to do when woken at a given
 * instant. The event loop (stim.c) and the real-time pulse thread (rtpulse.c)
 * both drive their lines from it; times are monotonic nanoseconds. */
#ifndef ACU_TRAIN_H
#define ACU_TRAIN_H

#include <stdint.h>
#include "cfg.h"

struct train {
	int64_t origin;                /* armed_at the train belongs to */
	int64_t from;                  /* the next pulse is the first at or after this */
	int64_t rise;                  /* ideal time of the pulse in progress or next */
	int64_t rise_actual;           /* when the pulse in progress went high */
	int64_t fall;                  /* when the pulse in progress must end */
	int high;
};

enum train_do {
	TRAIN_WAIT,                    /* woke early: again at train_wake() */
	TRAIN_RISE,                    /* drive the lines high, then train_rose() */
	TRAIN_SKIP,                    /* too late: pulses missed, t->from moved to now less half a period */
	TRAIN_FALL,                    /* drive the lines low, then train_fell() */
};

/* The next rise for the arming at armed_at (a new arming restarts the train
 * there; the same one keeps its phase); ACU_NEVER when the schedule has none. */
int64_t train_next(struct train *t, const struct acu_profile_cfg *p, int64_t armed_at);
/* When the train must be woken next: the fall of a pulse in progress, else
 * the rise train_next() set. */
int64_t train_wake(const struct train *t);
/* What to do when woken at now. A pulse more than half a period late is
 * never sent: it and every one due before now less half a period are
 * skipped (*late counts them); one due since is sent next, late by at most
 * half a period, and the train goes on on its grid: never a burst. */
enum train_do train_due(struct train *t, const struct acu_profile_cfg *p, int64_t now,
			int64_t *late);
/* The lines went high at `at`: the pulse ends pulse_width_us after that, so a
 * late rise never makes it shorter. Returns the fall time. */
int64_t train_rose(struct train *t, const struct acu_profile_cfg *p, int64_t at);
/* The lines went low at now: the train moves past this pulse. Returns 1 when
 * it was held high past half its period (not the profile's pulse: counted
 * late like a skipped one), else 0. */
int64_t train_fell(struct train *t, const struct acu_profile_cfg *p, int64_t now);
/* The train stopped (no channel on, or no profile) with a pulse in progress:
 * its lines went low, and the train moves past it. */
void train_stop(struct train *t);

#endif

/* The gate decision (SPEC S2) and the stimulation rules around it, as pure
 * functions of explicit inputs: whether each channel's gate may be active now,
 * whether the arming ends and why, when the decision can next change by
 * itself, what one read of an interlock means (S5) and whether the heartbeat
 * may run (S7). Every gate write in the daemon follows gate_plan(). */
#ifndef ACU_GATE_H
#define ACU_GATE_H

#include <stdint.h>
#include "acud.h"
#include "cfg.h"
#include "stimsched.h"

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
	int unsupported;               /* the armed profile cannot run on this room's wiring */
};

/* Why a gate is off; GATE_ON when every condition of S2 holds. The order is the
 * order in which reasons are reported, most serious first; whether a reason
 * ends the arming is gate_why_disarms()'s answer, not this order. */
enum gate_why {
	GATE_ON,
	GATE_GPIO_FAULT,
	GATE_CONTRAINDICATED,          /* a hard flag (S3) */
	GATE_FLAG_REFUSED,             /* a soft flag whose policy is refuse (S4) */
	GATE_INTERLOCK,
	GATE_UNSUPPORTED,              /* profile gone, or the wiring cannot run it (a reload) */
	GATE_NOT_RUNNING,
	GATE_NOT_ARMED,
	GATE_STIM_MAX,
	GATE_DURATION_DONE,
	GATE_SCHEDULE_OFF,
};

enum gate_why gate_decide(const struct gate_in *in);
const char *gate_why_name(enum gate_why w);

/* Reasons that end the arming the moment they hold (S3, S4, S5, S7 and a
 * reload the profile no longer fits): nothing that later lifts them (a reload
 * relaxing a policy, a cleared input) turns the output back on without a new,
 * checked `stim on`. The dose reasons end it only once every channel is done. */
int gate_why_disarms(enum gate_why w);
int gate_why_dose_done(enum gate_why w);
/* The cause a gate-off event carries: the schedule's and the dose's own
 * reasons name themselves, anything else the change that caused it. */
const char *gate_off_cause(enum gate_why w, const char *cause);

/* Soft flags of `flags` that the policies (and the profile's pregnancy_safe)
 * refuse; the hard flags are always refused and are not part of this mask. */
unsigned gate_refused_soft(unsigned flags, const enum acu_policy *policy, int pregnancy_safe);

/* Whether a profile can run on a room's wiring (SPEC §3). */
enum gate_fit {
	GATE_FITS,
	GATE_FIT_NO_PROFILE,
	GATE_FIT_CHANNELS,             /* the profile drives a channel the room lacks */
	GATE_FIT_NEEDS_PULSE,          /* dense-disperse on a channel without a pulse line */
};
enum gate_fit gate_profile_fit(const struct acu_room_cfg *rc, const struct acu_profile_cfg *p);
/* The channels (bit c for channel c + 1) the profile drives in that room. */
unsigned gate_profile_channels(const struct acu_room_cfg *rc, const struct acu_profile_cfg *p);

/* Everything a room's gates depend on, at one instant. */
struct gate_room_in {
	const struct acu_room_cfg *room;
	const struct acu_profile_cfg *profile; /* the session's; NULL: none, or gone */
	enum acu_state state;
	int armed;
	int64_t armed_at;              /* mono ns: the schedule's origin */
	unsigned flags;
	const enum acu_policy *policy;
	int interlock_tripped;
	int gpio_fault;
	int64_t budget_ns;             /* room_stim_budget(): min(duration_s, stim_max) */
	int64_t stim_max_ns;
	int64_t delivered_ns[ACU_MAX_CHANNELS]; /* up to now, the time on so far included */
	int64_t now;
};

struct gate_plan {
	enum gate_why why[ACU_MAX_CHANNELS];
	/* GATE_ON: the arming (or its absence) stands. Otherwise stimulation is
	 * stopped for this reason: the room is disarmed and shows it as blocked. */
	enum gate_why end;
	/* The next instant the plan can change with no other input (a phase edge,
	 * the end of a dose); ACU_NEVER when none. */
	int64_t next;
	struct sched_point pt;         /* where the schedule stands (armed only) */
};

void gate_plan(const struct gate_room_in *in, struct gate_plan *out);
/* gate_decide's input for channel c of the room: what gate_plan asks it.
 * chans: gate_profile_channels(); unsupported: armed on wiring the profile
 * does not fit; pt: the schedule's point (armed only). */
void gate_channel_in(const struct gate_room_in *in, const struct sched_point *pt,
		     unsigned chans, int unsupported, int c, struct gate_in *g);

/* S5: what one read of an interlock means. prior_tripped: its state after
 * the last read; level: 1 active, 0 clear, -1 the input could not be read;
 * edges: level changes since the last read (queued edge events, however
 * short the pulse). Only their number is trusted, not what they say they
 * were: the kernel labels a queued edge from the level it reads when it
 * gets to it, so both edges of a short press can say "released". */
struct gate_latch {
	int trip;                      /* handle a trip now: gates off, disarm, high alarm */
	int tripped;                   /* the interlock's state from now on */
	int fault;                     /* unreadable: counts as tripped, and is a gpio-fault */
};
void gate_interlock(int prior_tripped, int armed, int level, int edges, struct gate_latch *out);

/* S7: the heartbeat toggles only while a gate is on and no GPIO fault is
 * pending anywhere, so that after a failed write the external watchdog cuts
 * the stimulators' power whatever state the line was left in. */
int gate_heartbeat_runs(int gates_on, int faults);

#endif

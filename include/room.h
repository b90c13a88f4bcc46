/* Rooms and sessions: the pure state machine of SPEC §2 and §4. No I/O here; time
 * comes in as struct acu_now so tests drive it without sleeping. */
#ifndef ACU_ROOM_H
#define ACU_ROOM_H

#include <stdint.h>
#include "acud.h"
#include "cfg.h"

struct acu_alarm {
	int active;
	enum acu_priority priority;
	int64_t since_mono;
	int64_t since_wall;
	int64_t silenced_until;        /* mono ns; 0 = not silenced */
};

struct acu_channel {
	int on;                        /* gate as last driven */
	int64_t delivered_ns;          /* stimulation delivered this session */
	int64_t on_since;              /* mono ns when the gate went on */
	int64_t pulses;                /* pulses driven this session */
	int64_t missed;                /* pulses due this session that were not sent on time */
};

struct acu_stim {
	int armed;
	int64_t armed_at;              /* mono ns: the schedule's origin */
	int64_t armed_wall;
	char blocked[64];              /* why output is blocked now, "" = not */
	struct acu_channel ch[ACU_MAX_CHANNELS];
	unsigned warned;               /* soft flags armed over with a warning */
	int64_t missed;                /* pulses skipped because the loop was late */
};

struct acu_session {
	enum acu_state state;
	char patient[ACU_ID_MAX + 1];
	char practitioner[ACU_NAME_MAX + 1];
	char profile[ACU_NAME_MAX + 1];
	int64_t started_wall;          /* wall ns */
	int64_t duration_s;            /* planned, with extensions */
	int64_t end;                   /* mono ns deadline while running */
	int64_t remaining;             /* ns left, frozen while paused */
	int64_t paused_since;          /* mono ns */
	int64_t paused_ns;             /* total time paused */
	int64_t due_since;             /* mono ns the timer reached zero or was stopped */
	int64_t checkin_due;           /* mono ns, 0 = none */
	int64_t checkin_left;          /* ns to the next check-in, frozen while paused */
	int checkins;
	int needles;
	unsigned flags;                /* bit per enum acu_flag */
	struct acu_stim stim;
};

struct acu_room {
	const struct acu_room_cfg *cfg;
	struct acu_session s;
	struct acu_alarm alarm[AL__N];
	int interlock_tripped;         /* input level, kept across sessions */
	int gpio_fault;                /* S7: blocks arming until reload/restart */
	char attention[128];           /* set when state could not be restored */
};

/* Parameters of a start request, validated by the caller for types only. */
struct acu_start {
	int64_t duration_s;
	int needles;                   /* -1 when not given */
	const char *patient;           /* NULL when not given */
	const char *practitioner;
	const char *profile;           /* NULL when not given */
	unsigned flags;
	int stim;
};

void room_init(struct acu_room *r, const struct acu_room_cfg *cfg);

int room_start(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_start *req,
	       const struct acu_now *now, struct acu_err *err);
int room_pause(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
	       struct acu_err *err);
int room_resume(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
		struct acu_err *err);
int room_extend(struct acu_room *r, const struct acu_cfg *cfg, int64_t seconds,
		const struct acu_now *now, struct acu_err *err);
int room_stop(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
	      struct acu_err *err);
int room_finish(struct acu_room *r, int removed, const char *override,
		const struct acu_now *now, struct acu_err *err);
int room_checkin(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
		 struct acu_err *err);
int room_needles(struct acu_room *r, int delta, struct acu_err *err);
int room_flag(struct acu_room *r, unsigned flags, const struct acu_now *now,
	      struct acu_err *err);
int room_silence(struct acu_room *r, int64_t seconds, const struct acu_now *now,
		 struct acu_err *err);

/* Applies every deadline that has passed (expiry, check-in, escalation, end of
 * silence). Returns 1 when anything changed. */
int room_tick(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now);
/* The next monotonic instant room_tick has work to do, or ACU_NEVER. */
int64_t room_next_deadline(const struct acu_room *r, const struct acu_cfg *cfg);

/* Arming (SPEC §3): every refusal with its error code, or armed with the
 * schedule starting now. Soft flags armed over with a warning are returned in
 * *warned. */
int room_stim_on(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now,
		 unsigned *warned, struct acu_err *err);
void room_stim_off(struct acu_room *r, const char *why);
/* The stimulation as gate_plan() left it: stopped for `end` (disarmed, shown
 * as blocked), or with end NULL an armed room blocked by nothing. */
void room_stim_settle(struct acu_room *r, const char *end);
/* `stim ROOM off`: disarms, and acknowledges the timing alarm (SPEC §4). */
void room_stim_stop(struct acu_room *r);
/* Stimulation a channel may still receive: min(profile duration or the session's
 * remainder, [limits] stim_max), in ns. */
int64_t room_stim_budget(const struct acu_room *r, const struct acu_cfg *cfg,
			 const struct acu_profile_cfg *p);

void room_alarm_raise(struct acu_room *r, enum acu_alarm_kind k, enum acu_priority p,
		      const struct acu_now *now);
void room_alarm_clear(struct acu_room *r, enum acu_alarm_kind k);
/* Highest active priority, and whether the audible signal is silenced now. */
enum acu_priority room_alarm_level(const struct acu_room *r);
int room_silenced(const struct acu_room *r, int64_t mono);

/* S5: one latched read of the room's interlock (gate_interlock): level 1
 * active, 0 clear, -1 unreadable; edges: level changes since the last read.
 * A trip disarms the room and raises the high interlock alarm; an unreadable
 * input also raises gpio-fault. Returns what happened (ROOM_IL_*). */
#define ROOM_IL_TRIPPED 1
#define ROOM_IL_CLEARED 2
#define ROOM_IL_UNREADABLE 4
int room_interlock(struct acu_room *r, int level, int edges, const struct acu_now *now);
/* S7: a GPIO write failed (or an input cannot be read): arming blocked until
 * reload or restart, disarmed, high gpio-fault alarm. */
void room_gpio_fault(struct acu_room *r, const struct acu_now *now);
/* Pulses that could not be sent on time (skipped, or one held high by a
 * stall): n for the room, missed[c] for each channel that was pulsing. Counted;
 * the low timing alarm (SPEC §4) once a channel has missed more than
 * share_ppm (parts per million) of its pulses this session. */
void room_pulses_late(struct acu_room *r, int64_t n, const int64_t *missed, int64_t share_ppm,
		      const struct acu_now *now);
/* Whether a channel that sent `sent` pulses and missed `missed` has missed
 * more than share_ppm of them (0: any missed pulse is too many). */
int room_timing_exceeded(int64_t sent, int64_t missed, int64_t share_ppm);

/* SPEC §11, the room's buttons. A call raises the medium call alarm (it
 * escalates in room_tick); one while a call is active changes nothing.
 * Returns 1 when it raised a new call. */
int room_call(struct acu_room *r, const struct acu_now *now);
/* The alarms a presence press acknowledges: call and checkin, and no other. */
int room_presence_acks(enum acu_alarm_kind k);
/* A presence press: acknowledges what room_presence_acks says and, with a
 * running or paused session, records a check-in as `checkin` does. Returns
 * ROOM_PRESENCE_* bits of what it did. */
#define ROOM_PRESENCE_CALL 1       /* a call was acknowledged */
#define ROOM_PRESENCE_CHECKIN 2    /* a check-in was recorded */
int room_presence(struct acu_room *r, const struct acu_cfg *cfg, const struct acu_now *now);
/* What the call input's read means: an input that cannot be read calls, as
 * an open circuit does (a cut wire, an unplugged cord); the presence input
 * then reads as not pressed. fn_call: 1 for the call input. */
int room_button_level(int fn_call, int level);
/* `test ROOM alarm`: the priority the alarm line shows `elapsed` ns into a
 * test of `duration` ns (high, medium, then low, a third each), PRIO_NONE
 * once it is over. */
enum acu_priority room_lamp_test(int64_t elapsed, int64_t duration);

/* Seconds for the room object: remaining rounds up, overdue rounds down. */
int64_t room_remaining_s(const struct acu_room *r, int64_t mono);
int64_t room_overdue_s(const struct acu_room *r, int64_t mono);

#endif

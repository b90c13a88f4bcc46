/* The real-time pulse path: one thread, at SCHED_FIFO where the system allows
 * it, that sends every room's pulse train (train.h) and makes the gate
 * cut-offs the event loop has decided in advance (expiry, the end of a dose
 * or of an on phase) at their instant, on absolute CLOCK_MONOTONIC deadlines,
 * whatever load holds the event loop up. It decides nothing: the loop hands it
 * each room's lines, train and next cut (rtpulse_set) as gate_plan() and the
 * schedule say, and takes back what it did (rtpulse_take). It only ever drives
 * a gate off; pulses go only to channels the loop has switched on. */
#ifndef ACU_RTPULSE_H
#define ACU_RTPULSE_H

#include <pthread.h>
#include <stdint.h>
#include "acud.h"
#include "cfg.h"

struct gpio;
struct gpio_line;
struct rtpulse;

/* A lock the pulse thread may wait on (the GPIO lock, the sim writer's, the
 * hand-over's): with priority inheritance, so that whoever holds it runs at
 * the thread's priority until it lets go. */
void rtpulse_mutex_init(pthread_mutex_t *mu);

/* One room as the loop hands it over; replaces what was handed before. */
struct rtpulse_room {
	struct gpio *gpio;             /* NULL: nothing to drive in this room */
	struct gpio_line *gate[ACU_MAX_CHANNELS], *pulse[ACU_MAX_CHANNELS];
	int ngate, npulse;
	const struct acu_profile_cfg *profile; /* copied; NULL: no train */
	int64_t armed_at;
	unsigned pulse_on;             /* channels (bit c) whose gate is on: pulsed */
	int64_t cut_at;                /* when to drive the gates in `cut` off */
	unsigned cut;                  /* 0: no cut planned */
};

/* What the thread did in a room since the loop last took it. */
struct rtpulse_report {
	int64_t pulses[ACU_MAX_CHANNELS]; /* pulses sent */
	int64_t missed[ACU_MAX_CHANNELS]; /* pulses skipped or held high, late */
	int64_t late;                  /* the same, counted once for the room */
	unsigned cut;                  /* gates it drove off for the planned cut */
	int64_t cut_at;                /* when */
	int fault;                     /* a write failed: it drove every line of the room off */
};

/* set writes a line (gpio_set_rt); clock may be replaced by tests (NULL:
 * CLOCK_MONOTONIC). */
struct rtpulse *rtpulse_new(int nrooms, int64_t (*clock)(void),
			    int (*set)(struct gpio *g, struct gpio_line *l, int active));
/* Starts the thread at SCHED_FIFO priority prio (0: an ordinary thread, for
 * tests) and locks the process's memory. -1 with why when the thread cannot
 * be had at that priority (no RLIMIT_RTPRIO, no CAP_SYS_NICE): the caller
 * keeps to the event loop. A memory lock that fails is said in warn (""
 * when none) and is not an error. */
int rtpulse_start(struct rtpulse *p, int prio, char *why, size_t whylen, char *warn,
		  size_t warnlen);
/* Stops the thread (if any) and frees everything. */
void rtpulse_free(struct rtpulse *p);
/* Every room dropped and the count changed: before lines are released. */
void rtpulse_reset(struct rtpulse *p, int nrooms);
/* Returns whether the thread was woken for it: only when the change can
 * need an edge or a cut before the thread's next wake (rtpulse_hastens).
 * Else it finds the change at that wake: a change that only takes work away
 * (a stop, a cut the loop makes itself) costs the loop no wake-up of the
 * thread, which would preempt it on the way to the cut. */
int rtpulse_set(struct rtpulse *p, int room, const struct rtpulse_room *in);
/* Pure: whether a room handed over as now (its schedule copy now_sched),
 * where the thread holds was (was_sched), may need an edge or a cut before
 * the thread's next wake, which was set: other lines, a channel newly
 * pulsed or another train (schedule or arming), a cut on another gate or
 * sooner. Less pulsing, a cut dropped or later, are found at that wake; a
 * pulse in progress on a channel taken out ends at its own fall. */
int rtpulse_hastens(const struct rtpulse_room *was, const struct acu_profile_cfg *was_sched,
		    const struct rtpulse_room *now, const struct acu_profile_cfg *now_sched);
/* 1 when there was anything to take (pulses counted or more). */
int rtpulse_take(struct rtpulse *p, int room, struct rtpulse_report *out);
/* Whether the room has anything to take, without the lock (the loop asks
 * before every request). */
int rtpulse_pending(const struct rtpulse *p, int room);
/* Readable when a report (missed pulses, a cut, a fault) waits; read it
 * with rtpulse_ack before taking the reports. */
int rtpulse_fd(const struct rtpulse *p);
void rtpulse_ack(struct rtpulse *p);
/* One pass at the injected clock's now, as the thread makes them: every edge
 * and cut due is made. Returns when the next one is due (ACU_NEVER: none). */
int64_t rtpulse_run(struct rtpulse *p);

#endif

/* Debouncing of room buttons (SPEC §11): a pure function of the levels read,
 * the edges counted and the times they were read, so that the daemon's own
 * debounce (libgpiod 1.6, the simulated backend) is tested without a clock.
 * A change counts once the input has held it for the whole period with no
 * edge in between, as the kernel's debounce does on libgpiod 2. */
#ifndef ACU_DEBOUNCE_H
#define ACU_DEBOUNCE_H

#include <stdint.h>

struct debounce {
	int stable;                    /* the level last accepted (logical) */
	int raw;                       /* the level last read */
	int64_t last_edge;             /* mono ns of the read that saw the last edge */
	int64_t last_read;             /* mono ns of the last read */
};

#define DEBOUNCE_NONE 0
#define DEBOUNCE_ROSE 1            /* stable went 0 -> 1: a press */
#define DEBOUNCE_FELL 2

/* Starts at `stable` with nothing pending. */
void debounce_init(struct debounce *db, int stable);
/* One read of the input at `now`: its level and how many edges it went
 * through since the previous read. Those edges came at some moment between
 * the two reads; when the loop was late, a level held before them may
 * already have lasted the period. `latest` says which way to doubt: 1, the
 * edges came at `now` (a press held during a stall still counts: never miss
 * a call); 0, right after the previous read (a bounce is never taken for a
 * press: never acknowledge a call by accident). A change accepted that way
 * is returned (DEBOUNCE_*); the new edges then start a new period. */
int debounce_feed(struct debounce *db, int level, int edges, int64_t now, int64_t period,
		  int latest);
/* The change accepted at `now`, if the input has held it for `period`. */
int debounce_settle(struct debounce *db, int64_t now, int64_t period);
/* When debounce_settle may next accept a change, or INT64_MAX. */
int64_t debounce_next(const struct debounce *db, int64_t period);

#endif

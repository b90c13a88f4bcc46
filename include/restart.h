/* Restart arithmetic (SPEC §8): what the instants and doses saved before a
 * crash or reboot mean on this boot's monotonic clock. Pure: the clocks come
 * in as arguments, so tests drive every case without rebooting. */
#ifndef ACU_RESTART_H
#define ACU_RESTART_H

#include <stdint.h>
#include "acud.h"

struct restart_clock {
	int same_boot;                 /* the saved monotonic clock is still ours */
	int64_t saved_mono, saved_wall;
	struct acu_now now;
};

/* Nanoseconds the daemon was down, as far as can be trusted: exact on the same
 * boot, the wall clock's step across a reboot when it moved forward, and 0
 * when it is behind the last save (a board without a real-time clock): time
 * is then never added to a timer. */
int64_t restart_down(const struct restart_clock *c);
/* 0 when the down time is unknown (another boot with the wall clock behind). */
int restart_trusted(const struct restart_clock *c);
/* A saved monotonic instant (0 = none) on this boot's clock. A running
 * session's end is never later, relative to now, than it was at the save. */
int64_t restart_remap(const struct restart_clock *c, int64_t mono);
/* Stimulation a channel had delivered, counting a gate that was on at the
 * save (on_since, saved clock; 0 = off) as on until now. When the down time
 * is unknown an on gate counts as having delivered cap_ns: never undercounted. */
int64_t restart_delivered(const struct restart_clock *c, int64_t delivered_ns, int64_t on_since,
			  int64_t cap_ns);

#endif

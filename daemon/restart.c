/* Restart arithmetic of SPEC §8; see restart.h. */
#include "restart.h"

int restart_trusted(const struct restart_clock *c)
{
	return c->same_boot || c->now.wall >= c->saved_wall;
}

int64_t restart_down(const struct restart_clock *c)
{
	if (c->same_boot)
		return c->now.mono > c->saved_mono ? c->now.mono - c->saved_mono : 0;
	return restart_trusted(c) ? c->now.wall - c->saved_wall : 0;
}

int64_t restart_remap(const struct restart_clock *c, int64_t mono)
{
	if (mono == 0 || c->same_boot)
		return mono;
	/* The same distance from the save, moved to now less the down time. */
	return mono - c->saved_mono + c->now.mono - restart_down(c);
}

int64_t restart_delivered(const struct restart_clock *c, int64_t delivered_ns, int64_t on_since,
			  int64_t cap_ns)
{
	int64_t on;

	if (on_since == 0)
		return delivered_ns;
	if (!restart_trusted(c))
		return delivered_ns > cap_ns ? delivered_ns : cap_ns;
	on = c->saved_mono - on_since;
	if (on < 0)
		on = 0;
	on += restart_down(c);
	if (on > cap_ns - delivered_ns)
		return delivered_ns > cap_ns ? delivered_ns : cap_ns;
	return delivered_ns + on;
}

/* Fixtures the unit tests share: a clock reading, a profile and a room wired
 * the same way in every test, on the config's own defaults (cfg.c). */
#ifndef ACU_FIXTURE_H
#define ACU_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "room.h"

#define SEC(x) ((int64_t)(x) * NS_PER_SEC)
/* A wall clock far from the monotonic one, so a test that mixes them fails. */
#define WALL_OFF INT64_C(1795082400000000000)

static inline struct acu_now fixture_at(int64_t mono)
{
	struct acu_now n = { mono, mono + WALL_OFF };
	return n;
}

static inline void fixture_profile(struct acu_profile_cfg *p, const char *name,
				   enum acu_mode mode, int64_t delay_s, int64_t duration_s,
				   unsigned channels, int pregnancy_safe)
{
	cfg_profile_defaults(p);
	snprintf(p->name, sizeof p->name, "%s", name);
	p->mode = mode;
	p->delay_s = delay_s;
	p->duration_s = duration_s;
	p->channels = channels;
	p->pregnancy_safe = pregnancy_safe;
}

/* Gates on lines 10.., pulse lines (when asked) on 30... */
static inline void fixture_room(struct acu_room_cfg *rc, const char *id, int nchannels,
				int pulses)
{
	memset(rc, 0, sizeof *rc);
	snprintf(rc->id, sizeof rc->id, "%s", id);
	snprintf(rc->name, sizeof rc->name, "Room %s", id);
	rc->nchannels = nchannels;
	rc->npulse = pulses ? nchannels : 0;
	for (int c = 0; c < nchannels; c++) {
		rc->gate[c].set = 1;
		rc->gate[c].offset = 10 + c;
		if (pulses) {
			rc->pulse[c].set = 1;
			rc->pulse[c].offset = 30 + c;
		}
	}
}

/* The config's defaults (SPEC §5 and S4) over the test's profiles. */
static inline void fixture_cfg(struct acu_cfg *c, struct acu_profile_cfg *profiles, int n)
{
	memset(c, 0, sizeof *c);
	cfg_defaults(c);
	c->nprofiles = n;
	c->profiles = profiles;
}

#endif

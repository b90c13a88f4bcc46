/* Unit tests of the restart arithmetic (daemon/restart.c, SPEC §8) on an
 * injected clock: the same boot, a reboot with the wall clock forward, and a
 * reboot with the wall clock behind the last save (a board without a
 * real-time clock), for timers and for delivered stimulation. */
#include <stdint.h>

#include "acud.h"
#include "restart.h"
#include "unit.h"

#define SEC(x) ((int64_t)(x) * NS_PER_SEC)
#define WALL0 INT64_C(1795082400000000000) /* wall at the save */
#define CAP SEC(3600)

static struct restart_clock clock_of(int same_boot, int64_t saved_mono, int64_t now_mono,
				     int64_t wall_step)
{
	struct restart_clock c = { same_boot, saved_mono, WALL0, { now_mono, WALL0 + wall_step } };
	return c;
}

/* Same boot: the monotonic clock ran on, whatever the wall clock did. */
static void same_boot(void)
{
	for (int64_t step = -SEC(86400 * 365); step <= SEC(86400 * 365); step += SEC(86400 * 73)) {
		struct restart_clock c = clock_of(1, SEC(5000), SEC(5090), step);

		CHECK(restart_trusted(&c));
		CHECK_EQ(restart_down(&c), SEC(90));
		CHECK_EQ(restart_remap(&c, SEC(5600)), SEC(5600)); /* an end: 510 s left */
		CHECK_EQ(restart_remap(&c, 0), 0);
		/* On since 4990, saved at 5000, restarted at 5090: 100 s more. */
		CHECK_EQ(restart_delivered(&c, SEC(30), SEC(4990), CAP), SEC(130));
		CHECK_EQ(restart_delivered(&c, SEC(30), 0, CAP), SEC(30));
	}
}

/* Another boot, wall clock forward by 90 s: the down time is that step. */
static void reboot_forward(void)
{
	struct restart_clock c = clock_of(0, SEC(5000), SEC(20), SEC(90));

	CHECK(restart_trusted(&c));
	CHECK_EQ(restart_down(&c), SEC(90));
	/* An end 600 s after the save is 510 s after now. */
	CHECK_EQ(restart_remap(&c, SEC(5600)) - c.now.mono, SEC(510));
	/* An alarm raised 60 s before the save is 150 s old now. */
	CHECK_EQ(c.now.mono - restart_remap(&c, SEC(4940)), SEC(150));
	CHECK_EQ(restart_delivered(&c, SEC(30), SEC(4990), CAP), SEC(130));
	/* Never past the cap, never below what was delivered. */
	CHECK_EQ(restart_delivered(&c, SEC(3590), SEC(4990), CAP), CAP);
	CHECK_EQ(restart_delivered(&c, CAP + SEC(5), SEC(4990), CAP), CAP + SEC(5));
}

/* Another boot, wall clock behind the save (fake-hwclock, no RTC): the down
 * time is unknown. Timers keep what they had left at the save, never more;
 * a gate that was on counts as having delivered the cap. */
static void reboot_behind(void)
{
	const int64_t steps[] = { -1, -SEC(1), -SEC(3600), -SEC(86400 * 365) };

	for (unsigned i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct restart_clock c = clock_of(0, SEC(5000), SEC(20), steps[i]);

		CHECK(!restart_trusted(&c));
		CHECK_EQ(restart_down(&c), 0);
		CHECK_EQ(restart_remap(&c, SEC(5600)) - c.now.mono, SEC(600));
		CHECK_EQ(restart_delivered(&c, SEC(30), SEC(4990), CAP), CAP);
		CHECK_EQ(restart_delivered(&c, SEC(30), 0, CAP), SEC(30));
	}
}

/* Over a grid of saves, restarts and steps: the time left after a restart is
 * never longer than at the save, and delivered time never shrinks. */
static void never_longer(void)
{
	for (int same = 0; same <= 1; same++)
		for (int64_t step = -SEC(7200); step <= SEC(7200); step += SEC(450))
			for (int64_t left = 0; left <= SEC(1800); left += SEC(300))
				for (int64_t on = 0; on <= SEC(600); on += SEC(200)) {
					int64_t saved = SEC(10000), now = same ? saved + SEC(40) : SEC(7);
					struct restart_clock c = clock_of(same, saved, now, step);
					int64_t end = restart_remap(&c, saved + left);
					int64_t got = restart_delivered(&c, SEC(60),
									on ? saved - on : 0, CAP);

					CHECK(end - c.now.mono <= left);
					CHECK(got >= SEC(60) + (on ? on : 0) || got == CAP);
				}
}

int main(void)
{
	same_boot();
	reboot_forward();
	reboot_behind();
	never_longer();
	return unit_report("test_restart");
}

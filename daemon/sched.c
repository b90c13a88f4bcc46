/* The stimulus timeline: continuous, dense-disperse and intermittent, from the
 * arming instant. Pure integer arithmetic on nanoseconds. */
#include "acud.h"
#include "stimsched.h"

void sched_at(const struct acu_profile_cfg *p, int64_t armed, int64_t t, struct sched_point *pt)
{
	int64_t t0 = armed + p->delay_s * NS_PER_SEC, k, len, period, on;

	pt->freq_hz = p->frequency_hz;
	if (t < t0) {
		pt->on = 0;
		pt->phase_start = armed;
		pt->phase_end = t0;
		return;
	}
	switch (p->mode) {
	case MODE_DENSE_DISPERSE:
		len = (int64_t)p->switch_s * NS_PER_SEC;
		k = (t - t0) / len;
		pt->on = 1;
		pt->freq_hz = (k % 2 == 0) ? p->frequency_hz : p->alt_frequency_hz;
		pt->phase_start = t0 + k * len;
		pt->phase_end = pt->phase_start + len;
		return;
	case MODE_INTERMITTENT:
		on = (int64_t)p->on_s * NS_PER_SEC;
		period = on + (int64_t)p->off_s * NS_PER_SEC;
		k = (t - t0) / period;
		pt->phase_start = t0 + k * period;
		if (t < pt->phase_start + on) {
			pt->on = 1;
			pt->phase_end = pt->phase_start + on;
		} else {
			pt->on = 0;
			pt->phase_start += on;
			pt->phase_end = t0 + (k + 1) * period;
		}
		return;
	default:
		pt->on = 1;
		pt->phase_start = t0;
		pt->phase_end = ACU_NEVER;
		return;
	}
}

/* n-th pulse of a phase that starts at s with rate f. */
static int64_t pulse_time(int64_t s, int f, int64_t n)
{
	return s + n * NS_PER_SEC / f;
}

int64_t sched_next_pulse(const struct acu_profile_cfg *p, int64_t armed, int64_t t)
{
	struct sched_point pt;

	for (int guard = 0; guard < 4; guard++) {
		int64_t n, x;

		sched_at(p, armed, t, &pt);
		if (!pt.on) {
			t = pt.phase_end;
			continue;
		}
		n = (t - pt.phase_start) * pt.freq_hz / NS_PER_SEC;
		while (n > 0 && pulse_time(pt.phase_start, pt.freq_hz, n - 1) >= t)
			n--;
		while ((x = pulse_time(pt.phase_start, pt.freq_hz, n)) < t)
			n++;
		if (x < pt.phase_end)
			return x;
		t = pt.phase_end;
	}
	return ACU_NEVER;
}

int64_t sched_count_pulses(const struct acu_profile_cfg *p, int64_t armed, int64_t from, int64_t to)
{
	int64_t count = 0, t = from;

	while ((t = sched_next_pulse(p, armed, t)) < to) {
		count++;
		t++;
	}
	return count;
}

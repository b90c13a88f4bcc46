/* The pulse train: the pure part of sending pulses on time. */
#include "acud.h"
#include "stimsched.h"
#include "train.h"

static int64_t half_period(const struct train *t, const struct acu_profile_cfg *p)
{
	struct sched_point pt;

	sched_at(p, t->origin, t->rise, &pt);
	return NS_PER_SEC / (2 * (pt.freq_hz > 0 ? pt.freq_hz : 1));
}

int64_t train_next(struct train *t, const struct acu_profile_cfg *p, int64_t armed_at)
{
	if (t->origin != armed_at) {
		t->origin = armed_at;
		t->from = armed_at;
	}
	if (!t->high)
		t->rise = sched_next_pulse(p, t->origin, t->from);
	return train_wake(t);
}

int64_t train_wake(const struct train *t)
{
	return t->high ? t->fall : t->rise;
}

enum train_do train_due(struct train *t, const struct acu_profile_cfg *p, int64_t now,
			int64_t *late)
{
	int64_t half;

	*late = 0;
	if (t->high)
		return now < t->fall ? TRAIN_WAIT : TRAIN_FALL;
	if (t->rise == ACU_NEVER || now < t->rise)
		return TRAIN_WAIT;
	half = half_period(t, p);
	if (now - t->rise > half) {
		/* Only what is too late to send: a pulse due within the last half
		 * period still goes out, late, as it would without the stall. */
		int64_t edge = now - half;

		*late = sched_count_pulses(p, t->origin, t->rise, edge);
		t->from = edge;
		t->rise = sched_next_pulse(p, t->origin, t->from);
		return TRAIN_SKIP;
	}
	return TRAIN_RISE;
}

int64_t train_rose(struct train *t, const struct acu_profile_cfg *p, int64_t at)
{
	t->high = 1;
	t->rise_actual = at;
	t->fall = at + (int64_t)p->pulse_width_us * 1000;
	return t->fall;
}

int64_t train_fell(struct train *t, const struct acu_profile_cfg *p, int64_t now)
{
	int64_t late = now - t->rise_actual > half_period(t, p);

	t->high = 0;
	t->from = t->rise + 1;
	t->rise = sched_next_pulse(p, t->origin, t->from);
	return late;
}

void train_stop(struct train *t)
{
	if (!t->high)
		return;
	t->high = 0;
	t->from = t->rise + 1;
}

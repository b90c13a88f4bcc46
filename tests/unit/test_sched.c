/* Unit tests of the stimulus timeline (daemon/sched.c) against SPEC §3 (profiles,
 * arming): explicit nanosecond times, no sleeping. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acud.h"
#include "cfg.h"
#include "stimsched.h"
#include "unit.h"

#define SEC(x) ((int64_t)(x) * NS_PER_SEC)
/* An arming instant that is not a round number of seconds. */
#define ARMED (SEC(86400) + INT64_C(123456789))

static struct acu_profile_cfg profile(enum acu_mode mode, int f, int alt, int switch_s, int on_s,
				      int off_s, int64_t delay_s)
{
	struct acu_profile_cfg p;

	memset(&p, 0, sizeof p);
	strcpy(p.name, "t");
	p.mode = mode;
	p.frequency_hz = f;
	p.alt_frequency_hz = alt;
	p.switch_s = switch_s;
	p.on_s = on_s;
	p.off_s = off_s;
	p.pulse_width_us = 200;
	p.delay_s = delay_s;
	p.duration_s = 1200;
	return p;
}

/* The n-th pulse of a phase starting at s with rate f: s + n/f seconds, exact
 * to the nanosecond below. */
static int64_t nth(int64_t s, int f, int64_t n)
{
	return s + n * NS_PER_SEC / f;
}

/* Quiet check for long loops: counted in the harness, first failures printed. */
static int printed;

static void loop_check(int ok, int line, const char *what, long long a, long long b)
{
	unit_checks++;
	if (ok)
		return;
	unit_failures++;
	if (++printed <= 20)
		fprintf(stderr, "%s:%d: %s: %lld != %lld\n", __FILE__, line, what, a, b);
}
#define LOOP_EQ(a, b, what)                                                          \
	do {                                                                         \
		long long la_ = (long long)(a), lb_ = (long long)(b);                \
		loop_check(la_ == lb_, __LINE__, what, la_, lb_);                    \
	} while (0)

/* ---- continuous --------------------------------------------------------------- */

/* Pulses n = 0..nmax of a continuous profile at rate f: walking from pulse to
 * pulse (next after previous + 1 ns) lands exactly on t0 + n/f every time. */
static void walk_continuous(int f, int64_t nmax)
{
	struct acu_profile_cfg p = profile(MODE_CONTINUOUS, f, 100, 3, 5, 5, 0);
	int64_t t0 = ARMED, t = ARMED - 1;

	for (int64_t n = 0; n <= nmax; n++) {
		int64_t want = nth(t0, f, n);

		t = sched_next_pulse(&p, ARMED, t + 1 - (n == 0));
		LOOP_EQ(t, want, "walked pulse");
		/* Asking exactly at a pulse returns it; one ns before as well. */
		LOOP_EQ(sched_next_pulse(&p, ARMED, want), want, "next at a pulse");
		LOOP_EQ(sched_next_pulse(&p, ARMED, want - 1), want, "next 1 ns before a pulse");
		/* One ns after returns the next one. */
		LOOP_EQ(sched_next_pulse(&p, ARMED, want + 1), nth(t0, f, n + 1), "next 1 ns after");
	}
	/* No drift: the last pulse is within a nanosecond of the ideal n/f. */
	{
		long double ideal = (long double)t0 + (long double)nmax * 1e9L / f;
		long double diff = (long double)t - ideal;
		CHECK(diff <= 0 && diff > -1);
	}
}

static void test_continuous(void)
{
	struct acu_profile_cfg p = profile(MODE_CONTINUOUS, 2, 100, 3, 5, 5, 0);
	struct sched_point pt;

	/* 2 Hz: every 500 ms from the arming instant. */
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED), ARMED);
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + 1), ARMED + 500 * NS_PER_MS);
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + 500 * NS_PER_MS), ARMED + 500 * NS_PER_MS);
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + 500 * NS_PER_MS + 1), ARMED + SEC(1));
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + SEC(1) - 1), ARMED + SEC(1));
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + SEC(1200)), ARMED + SEC(1200));
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + SEC(1200) + 1), ARMED + SEC(1200) + 500 * NS_PER_MS);
	/* Before arming: the first pulse is the arming instant. */
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED - SEC(5)), ARMED);
	walk_continuous(2, 20000);

	/* 100 Hz: every 10 ms, 100000 pulses (1000 s) with no drift. */
	walk_continuous(100, 100000);
	/* Rates that do not divide a second: n/f is computed from the phase start,
	 * never accumulated from a rounded period. */
	walk_continuous(3, 100000);
	walk_continuous(7, 100000);
	walk_continuous(200, 100000);
	walk_continuous(1, 2000);
	{
		struct acu_profile_cfg p3 = profile(MODE_CONTINUOUS, 3, 100, 3, 5, 5, 0);
		/* Pulse 99999 at 3 Hz: a rounded period accumulated would be 33 us
		 * early by now; here it is exactly t0 + 33333 s. */
		CHECK_EQ(sched_next_pulse(&p3, ARMED, ARMED + SEC(33333)), ARMED + SEC(33333));
		/* Pulse 99998 is floor(99998e9 / 3) ns after t0. */
		CHECK_EQ(sched_next_pulse(&p3, ARMED, ARMED + SEC(33333) - 333333334),
			 ARMED + SEC(33333) - 333333334);
		CHECK_EQ(sched_next_pulse(&p3, ARMED, ARMED + SEC(33333) - 333333333),
			 ARMED + SEC(33333));
	}

	/* sched_at: on from t0 for ever, at the profile's rate. */
	memset(&pt, 0, sizeof pt);
	sched_at(&p, ARMED, ARMED, &pt);
	CHECK_EQ(pt.on, 1);
	CHECK_EQ(pt.freq_hz, 2);
	CHECK_EQ(pt.phase_start, ARMED);
	CHECK_EQ(pt.phase_end, ACU_NEVER);
	sched_at(&p, ARMED, ARMED + SEC(3000), &pt);
	CHECK_EQ(pt.on, 1);
	CHECK_EQ(pt.phase_start, ARMED);
	CHECK_EQ(pt.phase_end, ACU_NEVER);

	/* Pulses over 1 s = f, for any window of a second. */
	{
		static const int rates[] = { 1, 2, 3, 7, 10, 100, 150, 200 };
		for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
			struct acu_profile_cfg pr = profile(MODE_CONTINUOUS, rates[i], 100, 3, 5, 5, 0);
			CHECK_EQ(sched_count_pulses(&pr, ARMED, ARMED, ARMED + SEC(1)), rates[i]);
			CHECK_EQ(sched_count_pulses(&pr, ARMED, ARMED + SEC(10), ARMED + SEC(11)), rates[i]);
			CHECK_EQ(sched_count_pulses(&pr, ARMED, ARMED + 987654321, ARMED + 987654321 + SEC(1)),
				 rates[i]);
			CHECK_EQ(sched_count_pulses(&pr, ARMED, ARMED, ARMED + SEC(60)), 60 * rates[i]);
			/* Half-open: [t0, t0 + 1 ns) holds the pulse at t0 only. */
			CHECK_EQ(sched_count_pulses(&pr, ARMED, ARMED, ARMED + 1), 1);
			CHECK_EQ(sched_count_pulses(&pr, ARMED, ARMED, ARMED), 0);
			CHECK_EQ(sched_count_pulses(&pr, ARMED, ARMED - SEC(100), ARMED), 0);
		}
	}
}

/* ---- delay_s ------------------------------------------------------------------ */

static void test_delay(void)
{
	static const enum acu_mode modes[] = { MODE_CONTINUOUS, MODE_DENSE_DISPERSE, MODE_INTERMITTENT };
	struct sched_point pt;

	for (size_t m = 0; m < 3; m++) {
		struct acu_profile_cfg p = profile(modes[m], 2, 100, 3, 5, 5, 7);
		int64_t t0 = ARMED + SEC(7);

		/* Before t0: off, the phase ends at t0, no pulses. */
		memset(&pt, 0, sizeof pt);
		sched_at(&p, ARMED, ARMED, &pt);
		CHECK_EQ(pt.on, 0);
		CHECK_EQ(pt.phase_end, t0);
		sched_at(&p, ARMED, ARMED + SEC(3), &pt);
		CHECK_EQ(pt.on, 0);
		CHECK_EQ(pt.phase_end, t0);
		sched_at(&p, ARMED, t0 - 1, &pt);
		CHECK_EQ(pt.on, 0);
		CHECK_EQ(pt.phase_end, t0);
		CHECK_EQ(sched_count_pulses(&p, ARMED, ARMED, t0), 0);
		CHECK_EQ(sched_count_pulses(&p, ARMED, ARMED - SEC(60), t0), 0);
		/* The first pulse is at t0, not at the arming instant. */
		CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED), t0);
		CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + 1), t0);
		CHECK_EQ(sched_next_pulse(&p, ARMED, t0 - 1), t0);
		CHECK_EQ(sched_next_pulse(&p, ARMED, t0), t0);
		CHECK_EQ(sched_next_pulse(&p, ARMED, t0 + 1), t0 + 500 * NS_PER_MS);
		/* At t0: on, the pattern starts there at frequency_hz. */
		sched_at(&p, ARMED, t0, &pt);
		CHECK_EQ(pt.on, 1);
		CHECK_EQ(pt.freq_hz, 2);
		CHECK_EQ(pt.phase_start, t0);
		CHECK_EQ(sched_count_pulses(&p, ARMED, ARMED, t0 + SEC(1)), 2);
	}

	/* delay_s shifts every pulse of a continuous profile by exactly delay_s. */
	{
		struct acu_profile_cfg p = profile(MODE_CONTINUOUS, 100, 100, 3, 5, 5, 30);
		int64_t t0 = ARMED + SEC(30), t = t0 - 1;

		for (int64_t n = 0; n <= 10000; n++) {
			t = sched_next_pulse(&p, ARMED, t + 1 - (n == 0));
			LOOP_EQ(t, nth(t0, 100, n), "delayed pulse");
		}
		CHECK_EQ(sched_count_pulses(&p, ARMED, ARMED, ARMED + SEC(31)), 100);
	}
	/* A delay of a whole session maximum still works (0 to session max). */
	{
		struct acu_profile_cfg p = profile(MODE_CONTINUOUS, 2, 100, 3, 5, 5, 3600);
		CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED), ARMED + SEC(3600));
		CHECK_EQ(sched_count_pulses(&p, ARMED, ARMED, ARMED + SEC(3600)), 0);
	}
}

/* ---- dense-disperse ------------------------------------------------------------- */

static void test_dense_disperse(void)
{
	struct acu_profile_cfg p = profile(MODE_DENSE_DISPERSE, 2, 100, 3, 5, 5, 0);
	const int64_t t0 = ARMED;
	struct sched_point pt;

	/* The rate alternates every switch_s, starting with frequency_hz. */
	for (int k = 0; k < 20; k++) {
		int64_t s = t0 + SEC(3) * k, e = s + SEC(3);
		int f = k % 2 == 0 ? 2 : 100;
		int64_t probes[] = { s, s + 1, s + SEC(1), s + 2999999999, e - 1 };

		for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
			memset(&pt, 0, sizeof pt);
			sched_at(&p, ARMED, probes[i], &pt);
			LOOP_EQ(pt.on, 1, "dd on");
			LOOP_EQ(pt.freq_hz, f, "dd rate");
			LOOP_EQ(pt.phase_start, s, "dd phase_start");
			LOOP_EQ(pt.phase_end, e, "dd phase_end");
		}
		/* Pulses of the phase at phase start + n/f_k, then the next phase's first
		 * pulse at its start. */
		for (int64_t n = 0; n < 3 * f; n++) {
			int64_t want = nth(s, f, n);
			LOOP_EQ(sched_next_pulse(&p, ARMED, want), want, "dd pulse");
			LOOP_EQ(sched_next_pulse(&p, ARMED, want - 1), want, "dd pulse - 1");
			LOOP_EQ(sched_next_pulse(&p, ARMED, want + 1),
				n + 1 < 3 * f ? nth(s, f, n + 1) : e, "dd pulse + 1");
		}
		LOOP_EQ(sched_count_pulses(&p, ARMED, s, e), 3 * f, "dd count per phase");
	}
	/* The last 2 Hz pulse of phase 0 is at 2.5 s; the next is 3.0 s (100 Hz). */
	CHECK_EQ(sched_next_pulse(&p, ARMED, t0 + 2500 * NS_PER_MS + 1), t0 + SEC(3));
	CHECK_EQ(sched_next_pulse(&p, ARMED, t0 + SEC(3) + 1), t0 + SEC(3) + 10 * NS_PER_MS);
	/* The last 100 Hz pulse of phase 1 is at 5.99 s; the next is 6.0 s (2 Hz). */
	CHECK_EQ(sched_next_pulse(&p, ARMED, t0 + 5990 * NS_PER_MS + 1), t0 + SEC(6));
	CHECK_EQ(sched_next_pulse(&p, ARMED, t0 + SEC(6) + 1), t0 + SEC(6) + 500 * NS_PER_MS);

	/* Count in the first 6 s = 3*2 + 3*100. */
	CHECK_EQ(sched_count_pulses(&p, ARMED, t0, t0 + SEC(6)), 3 * 2 + 3 * 100);
	CHECK_EQ(sched_count_pulses(&p, ARMED, t0, t0 + SEC(3)), 6);
	CHECK_EQ(sched_count_pulses(&p, ARMED, t0 + SEC(3), t0 + SEC(6)), 300);
	CHECK_EQ(sched_count_pulses(&p, ARMED, t0, t0 + SEC(60)), 10 * 6 + 10 * 300);

	/* Other switch times and rates; phases still counted from t0 (after delay). */
	{
		struct acu_profile_cfg q = profile(MODE_DENSE_DISPERSE, 3, 7, 1, 5, 5, 2);
		int64_t q0 = ARMED + SEC(2);

		sched_at(&q, ARMED, q0 + SEC(4) + 5, &pt);
		CHECK_EQ(pt.freq_hz, 3);
		CHECK_EQ(pt.phase_start, q0 + SEC(4));
		CHECK_EQ(pt.phase_end, q0 + SEC(5));
		sched_at(&q, ARMED, q0 + SEC(5), &pt);
		CHECK_EQ(pt.freq_hz, 7);
		CHECK_EQ(pt.phase_start, q0 + SEC(5));
		CHECK_EQ(sched_next_pulse(&q, ARMED, q0 + SEC(5) + 1), nth(q0 + SEC(5), 7, 1));
		CHECK_EQ(sched_count_pulses(&q, ARMED, ARMED, q0 + SEC(10)), 5 * 3 + 5 * 7);
	}
	{
		struct acu_profile_cfg q = profile(MODE_DENSE_DISPERSE, 100, 2, 60, 5, 5, 0);

		sched_at(&q, ARMED, ARMED + SEC(60) - 1, &pt);
		CHECK_EQ(pt.freq_hz, 100);
		CHECK_EQ(pt.phase_end, ARMED + SEC(60));
		sched_at(&q, ARMED, ARMED + SEC(60), &pt);
		CHECK_EQ(pt.freq_hz, 2);
		CHECK_EQ(pt.phase_end, ARMED + SEC(120));
		CHECK_EQ(sched_count_pulses(&q, ARMED, ARMED, ARMED + SEC(120)), 6000 + 120);
	}
}

/* ---- intermittent --------------------------------------------------------------- */

static void check_intermittent(int f, int on_s, int off_s, int64_t delay_s)
{
	struct acu_profile_cfg p = profile(MODE_INTERMITTENT, f, 100, 3, on_s, off_s, delay_s);
	const int64_t t0 = ARMED + SEC(delay_s), period = SEC(on_s + off_s);
	struct sched_point pt;

	for (int k = 0; k < 12; k++) {
		int64_t on0 = t0 + period * k, on1 = on0 + SEC(on_s), next = on0 + period;
		int64_t on_probes[] = { on0, on0 + 1, on1 - 1 };
		int64_t off_probes[] = { on1, on1 + 1, next - 1 };

		for (size_t i = 0; i < 3; i++) {
			memset(&pt, 0, sizeof pt);
			sched_at(&p, ARMED, on_probes[i], &pt);
			LOOP_EQ(pt.on, 1, "on window");
			LOOP_EQ(pt.freq_hz, f, "on window rate");
			LOOP_EQ(pt.phase_start, on0, "on window start");
			LOOP_EQ(pt.phase_end, on1, "on window end");
			sched_at(&p, ARMED, off_probes[i], &pt);
			LOOP_EQ(pt.on, 0, "off window");
			LOOP_EQ(pt.phase_start, on1, "off window start");
			LOOP_EQ(pt.phase_end, next, "off window end");
		}
		/* No pulse in an off window: the next pulse after one is the next
		 * window's start. */
		LOOP_EQ(sched_count_pulses(&p, ARMED, on1, next), 0, "no pulse off");
		LOOP_EQ(sched_next_pulse(&p, ARMED, on1), next, "next after on window");
		LOOP_EQ(sched_next_pulse(&p, ARMED, next - 1), next, "next from end of off window");
		/* In an on window: pulses at its start + n/f. */
		LOOP_EQ(sched_next_pulse(&p, ARMED, on0), on0, "first pulse of window");
		LOOP_EQ(sched_next_pulse(&p, ARMED, on0 + 1), nth(on0, f, 1), "second pulse of window");
		LOOP_EQ(sched_count_pulses(&p, ARMED, on0, on1), (int64_t)on_s * f, "pulses per window");
		/* Every pulse the walk finds is inside an on window. */
		for (int64_t t = sched_next_pulse(&p, ARMED, on0); t < next;
		     t = sched_next_pulse(&p, ARMED, t + 1)) {
			int64_t in = (t - t0) % period;
			LOOP_EQ(in < SEC(on_s), 1, "pulse inside on window");
			int64_t n = (in * f + NS_PER_SEC - 1) / NS_PER_SEC;
			LOOP_EQ(in, nth(0, f, n), "pulse on the window's n/f grid");
		}
	}
	/* Count over two periods = 2 * on_s * f. */
	CHECK_EQ(sched_count_pulses(&p, ARMED, t0, t0 + 2 * period), 2 * (int64_t)on_s * f);
	CHECK_EQ(sched_count_pulses(&p, ARMED, ARMED, t0 + 2 * period), 2 * (int64_t)on_s * f);
}

static void test_intermittent(void)
{
	struct acu_profile_cfg p = profile(MODE_INTERMITTENT, 2, 100, 3, 5, 5, 0);
	struct sched_point pt;

	/* on_s 5, off_s 5: on in [t0 + 10k, t0 + 10k + 5). */
	check_intermittent(2, 5, 5, 0);
	check_intermittent(100, 5, 5, 0);
	/* Count over 20 s = 2 * 5 * f. */
	CHECK_EQ(sched_count_pulses(&p, ARMED, ARMED, ARMED + SEC(20)), 2 * 5 * 2);
	{
		struct acu_profile_cfg q = profile(MODE_INTERMITTENT, 100, 100, 3, 5, 5, 0);
		CHECK_EQ(sched_count_pulses(&q, ARMED, ARMED, ARMED + SEC(20)), 2 * 5 * 100);
	}
	/* Explicit points of the 5/5 pattern. */
	sched_at(&p, ARMED, ARMED + SEC(12), &pt);
	CHECK_EQ(pt.on, 1);
	CHECK_EQ(pt.phase_start, ARMED + SEC(10));
	CHECK_EQ(pt.phase_end, ARMED + SEC(15));
	sched_at(&p, ARMED, ARMED + SEC(17), &pt);
	CHECK_EQ(pt.on, 0);
	CHECK_EQ(pt.phase_start, ARMED + SEC(15));
	CHECK_EQ(pt.phase_end, ARMED + SEC(20));
	/* The last pulse of a window is at 4.5 s; nothing at 5.0 s (window end). */
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + 4500 * NS_PER_MS), ARMED + 4500 * NS_PER_MS);
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + 4500 * NS_PER_MS + 1), ARMED + SEC(10));
	CHECK_EQ(sched_next_pulse(&p, ARMED, ARMED + SEC(5)), ARMED + SEC(10));

	/* Asymmetric windows catch a swapped on/off; rates that do not divide a
	 * second; a delay. */
	check_intermittent(2, 3, 7, 0);
	check_intermittent(7, 1, 600, 0);
	check_intermittent(200, 600, 1, 0);
	check_intermittent(3, 4, 2, 11);
}

int main(void)
{
	test_continuous();
	test_delay();
	test_dense_disperse();
	test_intermittent();
	return unit_report("test_sched");
}

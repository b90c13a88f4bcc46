/* Unit tests of the hand-over between the event loop and the pulse path
 * (daemon/rtpulse.c over daemon/train.c): the loop hands a room over, passes
 * are made at an injected clock, and every line write is recorded; no
 * sleeping, no thread. `test_rtpulse threads` adds a run with the real thread
 * (for TSan: see mk/rt.mk), which checks only what timing cannot change. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acud.h"
#include "cfg.h"
#include "gpio.h"
#include "rtpulse.h"
#include "train.h"
#include "unit.h"

#define MS(x) ((int64_t)(x) * NS_PER_MS)
#define SEC(x) ((int64_t)(x) * NS_PER_SEC)
#define T0 (SEC(5000) + 777)

static int64_t clk;
static int64_t fake_clock(void)
{
	return clk;
}

/* The lines of one room with two channels, and every write to them. */
static struct gpio_line gate[2], pulse[2];
struct write {
	int64_t t;
	const struct gpio_line *l;
	int level;
};
static struct write writes[4096];
static int nwrites, fail_next;

static int fake_set(struct gpio *g, struct gpio_line *l, int active)
{
	(void)g;
	if (fail_next) {
		fail_next = 0;
		l->active = -1;
		return -1;
	}
	if (nwrites < (int)(sizeof writes / sizeof writes[0]))
		writes[nwrites++] = (struct write){ clk, l, active };
	__atomic_store_n(&l->active, active, __ATOMIC_RELAXED);
	return 0;
}

static int rises(const struct gpio_line *l, int64_t from, int64_t to)
{
	int n = 0;

	for (int i = 0; i < nwrites; i++)
		if (writes[i].l == l && writes[i].level == 1 && writes[i].t >= from &&
		    writes[i].t < to)
			n++;
	return n;
}

static const struct write *last_write(const struct gpio_line *l)
{
	for (int i = nwrites - 1; i >= 0; i--)
		if (writes[i].l == l)
			return &writes[i];
	return NULL;
}

static struct acu_profile_cfg profile(int hz)
{
	struct acu_profile_cfg p;

	memset(&p, 0, sizeof p);
	p.mode = MODE_CONTINUOUS;
	p.frequency_hz = hz;
	p.pulse_width_us = 200;
	return p;
}

static struct gpio fake_gpio;

static struct rtpulse_room room_in(const struct acu_profile_cfg *p, unsigned on)
{
	struct rtpulse_room in;

	memset(&in, 0, sizeof in);
	in.gpio = &fake_gpio;
	in.ngate = in.npulse = 2;
	in.gate[0] = &gate[0];
	in.gate[1] = &gate[1];
	in.pulse[0] = &pulse[0];
	in.pulse[1] = &pulse[1];
	in.profile = p;
	in.armed_at = T0;
	in.pulse_on = on;
	in.cut_at = ACU_NEVER;
	return in;
}

static void reset_lines(void)
{
	memset(gate, 0, sizeof gate);
	memset(pulse, 0, sizeof pulse);
	for (int c = 0; c < 2; c++) {
		gate[c].dir = pulse[c].dir = GPIO_OUT;
		gate[c].active = 1; /* the loop turned the gates on */
	}
	nwrites = 0;
	fail_next = 0;
}

/* Lines reset, the clock at T0, a table of nslots rooms with `in` handed
 * over as room `room`. */
static struct rtpulse *begin(int nslots, int room, const struct rtpulse_room *in)
{
	struct rtpulse *p = rtpulse_new(nslots, fake_clock, fake_set);

	reset_lines();
	clk = T0;
	rtpulse_set(p, room, in);
	return p;
}

/* Runs passes from the clock's now to `to`, always waking when asked. */
static void run_until(struct rtpulse *p, int64_t to)
{
	for (int guard = 0; guard < 100000; guard++) {
		int64_t next = rtpulse_run(p);

		if (next == ACU_NEVER || next > to) {
			clk = to;
			return;
		}
		clk = next > clk ? next : clk;
	}
	CHECK(!"run_until: too many passes");
}

/* A 100 Hz train on time: a pulse every 10 ms on both channels, 200 us wide,
 * each counted; nothing is reported that would wake the loop. */
static void test_on_time(void)
{
	struct acu_profile_cfg prof = profile(100);
	struct rtpulse_room in = room_in(&prof, 3);
	struct rtpulse_report rep;
	struct rtpulse *p;

	p = begin(1, 0, &in);
	/* Handed over: the first pulse is at the arming instant. */
	CHECK_EQ(rtpulse_run(p), T0 + 200000);
	CHECK_EQ(gpio_active(&pulse[0]), 1);
	CHECK_EQ(gpio_active(&pulse[1]), 1);
	run_until(p, T0 + SEC(1) - 1);
	CHECK_EQ(rises(&pulse[0], T0, T0 + SEC(1)), 100);
	CHECK_EQ(rises(&pulse[1], T0, T0 + SEC(1)), 100);
	for (int i = 0; i < nwrites; i++) {
		int64_t k = (writes[i].t - T0) % MS(10);

		CHECK(writes[i].level == 1 ? k == 0 : k == 200000);
	}
	CHECK(!rtpulse_pending(p, 1));
	CHECK(rtpulse_pending(p, 0));
	CHECK_EQ(rtpulse_take(p, 0, &rep), 1);
	CHECK_EQ(rep.pulses[0], 100);
	CHECK_EQ(rep.pulses[1], 100);
	CHECK_EQ(rep.late, 0);
	CHECK_EQ(rep.cut, 0);
	CHECK(!rtpulse_pending(p, 0));
	CHECK_EQ(rtpulse_take(p, 0, &rep), 0);
	/* Nothing told the loop's fd: pulses alone never wake it. */
	CHECK_EQ(nwrites, 400);
	rtpulse_free(p);
}

/* A stall (the pass comes 55 ms late): the pulses too late to send are
 * skipped and counted, never sent in a burst; one due within the last half
 * period goes out, late, and the train goes on on its grid. A pulse held
 * high past half a period is counted late too. */
static void test_stall(void)
{
	struct acu_profile_cfg prof = profile(100);
	struct rtpulse_room in = room_in(&prof, 1);
	struct rtpulse_report rep;
	struct rtpulse *p;

	p = begin(1, 0, &in);
	run_until(p, T0 + MS(101));           /* pulses at 0..100 ms: 11 */
	CHECK_EQ(rises(&pulse[0], T0, T0 + SEC(1)), 11);
	clk = T0 + MS(165);                   /* woken 65 ms late for 110 */
	rtpulse_run(p);
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.late, 5);                /* 110, 120 ... 150 */
	CHECK_EQ(rep.missed[0], 5);
	CHECK_EQ(rep.missed[1], 0);           /* channel 2 was not pulsing */
	/* 160, exactly half a period late: sent now, alone. */
	CHECK_EQ(rises(&pulse[0], T0 + MS(101), T0 + MS(170)), 1);
	CHECK_EQ(last_write(&pulse[0])->t, T0 + MS(165));
	run_until(p, T0 + MS(200) - 1);
	/* then 170, 180, 190, each on the grid */
	CHECK_EQ(rises(&pulse[0], T0 + MS(166), T0 + MS(200)), 3);
	CHECK_EQ(last_write(&pulse[0])->t, T0 + MS(190) + 200000);
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.late, 0);
	/* Woken 1 ns past half a period late for 200: skipped, and 210 is not
	 * yet due. */
	clk = T0 + MS(205) + 1;
	rtpulse_run(p);
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.late, 1);
	CHECK_EQ(rises(&pulse[0], T0 + MS(200), T0 + MS(210)), 0);
	run_until(p, T0 + MS(211));
	CHECK_EQ(rises(&pulse[0], T0 + MS(210), T0 + MS(211)), 1);
	run_until(p, T0 + MS(220) - 1);
	/* Held high: risen at 220 ms, the pass for its fall comes at 227 ms. */
	clk = T0 + MS(220);
	rtpulse_run(p);
	CHECK_EQ(gpio_active(&pulse[0]), 1);
	rtpulse_take(p, 0, &rep);
	clk = T0 + MS(227);
	rtpulse_run(p);
	CHECK_EQ(gpio_active(&pulse[0]), 0);
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.late, 1);
	CHECK_EQ(rep.missed[0], 1);
	rtpulse_free(p);
}

/* The loop's hand-overs: a channel taken out stops at once (a pulse in
 * progress ends at the next pass, and none starts on it); a train stopped
 * keeps its phase for the same arming; a new arming starts at its instant. */
static void test_handover(void)
{
	struct acu_profile_cfg prof = profile(100);
	struct rtpulse_room in = room_in(&prof, 3);
	struct rtpulse_report rep;
	struct rtpulse *p;

	p = begin(2, 1, &in);
	rtpulse_run(p);
	CHECK_EQ(gpio_active(&pulse[1]), 1);
	/* Channel 2 taken out while its pulse is high; the other goes on. */
	in.pulse_on = 1;
	clk = T0 + 100000;
	rtpulse_set(p, 1, &in);
	run_until(p, T0 + MS(50) - 1);
	CHECK_EQ(rises(&pulse[1], T0 + 1, T0 + SEC(1)), 0);
	CHECK_EQ(rises(&pulse[0], T0, T0 + MS(50)), 5);
	CHECK_EQ(gpio_active(&pulse[1]), 0);
	/* Stopped (no channel on) while a pulse is high, then on again for
	 * the same arming before the next is due: that pulse ends, none is
	 * sent while stopped, and the grid is the same. */
	clk = T0 + MS(50) + 100000;
	rtpulse_run(p);
	CHECK_EQ(gpio_active(&pulse[0]), 1);
	in.pulse_on = 0;
	rtpulse_set(p, 1, &in);
	run_until(p, T0 + MS(58));
	CHECK_EQ(gpio_active(&pulse[0]), 0);
	CHECK_EQ(last_write(&pulse[0])->t, T0 + MS(50) + 100000);
	in.pulse_on = 1;
	rtpulse_set(p, 1, &in);
	run_until(p, T0 + MS(131));
	CHECK_EQ(rises(&pulse[0], T0 + MS(51), T0 + MS(131)), 8); /* 60 ... 130 */
	CHECK_EQ(rises(&pulse[0], T0 + MS(60), T0 + MS(60) + 1), 1);
	/* A new arming 3.5 ms later: the train starts there. */
	in.armed_at = T0 + MS(133) + 500000;
	clk = T0 + MS(132);
	rtpulse_set(p, 1, &in);
	run_until(p, T0 + MS(150));
	CHECK_EQ(rises(&pulse[0], in.armed_at, in.armed_at + 1), 1);
	CHECK_EQ(rises(&pulse[0], T0 + MS(131), T0 + MS(150)), 2);
	rtpulse_take(p, 1, &rep);
	CHECK_EQ(rep.late, 0);
	/* No profile: nothing more. */
	in.profile = NULL;
	rtpulse_set(p, 1, &in);
	CHECK_EQ(rtpulse_run(p), ACU_NEVER);
	CHECK_EQ(gpio_active(&pulse[0]), 0);
	/* No profile while a pulse is high (a reload took the profile away):
	 * the pulse ends at the next pass; the train has no schedule to read. */
	in.profile = &prof;
	rtpulse_set(p, 1, &in);
	clk = in.armed_at + MS(30);
	rtpulse_run(p);
	CHECK_EQ(gpio_active(&pulse[0]), 1);
	in.profile = NULL;
	rtpulse_set(p, 1, &in);
	clk += 100000;
	CHECK_EQ(rtpulse_run(p), ACU_NEVER);
	CHECK_EQ(gpio_active(&pulse[0]), 0);
	rtpulse_free(p);
}

/* A cut the loop planned: at its instant, and not before, the gates named go
 * off (their pulse lines first) and pulses stop on them; it is reported with
 * its instant, and the loop is told (the fd). A cut replaced before its
 * instant never happens. */
static void test_cut(void)
{
	struct acu_profile_cfg prof = profile(2);
	struct rtpulse_room in = room_in(&prof, 3);
	struct rtpulse_report rep;
	struct rtpulse *p;
	uint64_t v;

	in.cut = 2;
	in.cut_at = T0 + MS(1700);
	p = begin(1, 0, &in);
	/* The next wake is the earlier of the next edge and the cut. */
	CHECK_EQ(rtpulse_run(p), T0 + 200000);
	run_until(p, T0 + MS(1700) - 1);
	CHECK_EQ(gpio_active(&gate[1]), 1);
	CHECK_EQ(rises(&pulse[1], T0, T0 + SEC(2)), 4); /* 0, 0.5, 1, 1.5 s */
	clk = T0 + MS(1700);
	rtpulse_run(p);
	CHECK_EQ(gpio_active(&gate[1]), 0);
	CHECK_EQ(gpio_active(&gate[0]), 1);
	CHECK_EQ(last_write(&gate[1])->t, T0 + MS(1700));
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.cut, 2);
	CHECK_EQ(rep.cut_at, T0 + MS(1700));
	CHECK(read(rtpulse_fd(p), &v, sizeof v) == sizeof v);
	run_until(p, T0 + MS(2100));
	CHECK_EQ(rises(&pulse[1], T0 + MS(1700), T0 + SEC(3)), 0);
	CHECK_EQ(rises(&pulse[0], T0 + MS(1700), T0 + SEC(3)), 1); /* 2 s */
	/* Replaced before its instant (a change came in): nothing cut. */
	in.cut = 1;
	in.cut_at = T0 + MS(2300);
	rtpulse_set(p, 0, &in);
	in.cut = 0;
	in.cut_at = ACU_NEVER;
	clk = T0 + MS(2200);
	rtpulse_set(p, 0, &in);
	run_until(p, T0 + MS(2400));
	CHECK_EQ(gpio_active(&gate[0]), 1);
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.cut, 0);
	rtpulse_free(p);
}

/* S7: a write that fails stops the room: its lines driven off, a fault
 * reported, nothing more until the loop hands the room over again. */
static void test_fault(void)
{
	struct acu_profile_cfg prof = profile(100);
	struct rtpulse_room in = room_in(&prof, 1);
	struct rtpulse_report rep;
	struct rtpulse *p;

	p = begin(1, 0, &in);
	run_until(p, T0 + MS(15));
	fail_next = 1;
	run_until(p, T0 + MS(25));
	CHECK_EQ(gpio_active(&gate[0]), 0);
	CHECK_EQ(gpio_active(&gate[1]), 0);
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.fault, 1);
	CHECK_EQ(rtpulse_run(p), ACU_NEVER);
	/* Handed over again (the loop drove what the fault decided). */
	gate[0].active = 1;
	rtpulse_set(p, 0, &in);
	CHECK(rtpulse_run(p) != ACU_NEVER);
	/* A reset lets go of every room. */
	rtpulse_reset(p, 3);
	CHECK_EQ(rtpulse_run(p), ACU_NEVER);
	rtpulse_free(p);
}

/* A pulse whose fall fails is in flight when the room stops: handed back,
 * the train goes on after it and never sends it again. */
static void test_fault_in_flight(void)
{
	struct acu_profile_cfg prof = profile(100);
	struct rtpulse_room in = room_in(&prof, 1);
	struct rtpulse_report rep;
	struct rtpulse *p;

	p = begin(1, 0, &in);
	run_until(p, T0 + MS(20));            /* 20 ms: risen, not yet fallen */
	CHECK_EQ(gpio_active(&pulse[0]), 1);
	fail_next = 1;
	clk = T0 + MS(20) + 200000;
	rtpulse_run(p);
	rtpulse_take(p, 0, &rep);
	CHECK_EQ(rep.fault, 1);
	CHECK_EQ(gpio_active(&pulse[0]), 0);
	clk = T0 + MS(21);
	gate[0].active = 1;
	rtpulse_set(p, 0, &in);
	run_until(p, T0 + MS(30) - 1);
	CHECK_EQ(rises(&pulse[0], T0 + MS(20) + 1, T0 + MS(30)), 0);
	run_until(p, T0 + MS(31));
	CHECK_EQ(rises(&pulse[0], T0 + MS(30), T0 + MS(31)), 1);
	rtpulse_free(p);
}

/* The rises and gate writes of a run (falls left out: a pulse in progress on
 * a channel taken out ends at a pass, whichever), copied out of writes[]. */
static int actions(struct write *out, int max, int from)
{
	int n = 0;

	for (int i = from; i < nwrites && n < max; i++)
		if (writes[i].level == 1 || writes[i].l == &gate[0] || writes[i].l == &gate[1])
			out[n++] = writes[i];
	return n;
}

/* One hand-over of now where was runs, at `at`: whether it woke the thread,
 * the thread's next wake before it (*wake_at), and the actions to `to` when
 * the thread passes at once (eager) and when it passes only at its next wake
 * unless woken (lazy). */
static int handover_run(const struct rtpulse_room *was, const struct rtpulse_room *now,
			int64_t at, int64_t to, int64_t *wake_at, struct write *eager, int *neager,
			struct write *lazy, int *nlazy)
{
	int woke = 0;

	for (int k = 0; k < 2; k++) {
		struct rtpulse *p = begin(1, 0, was);
		int64_t next = rtpulse_run(p);
		int from;

		while (next != ACU_NEVER && next <= at) {
			clk = next;
			next = rtpulse_run(p);
		}
		clk = at;
		from = nwrites;
		woke = rtpulse_set(p, 0, now);
		*wake_at = next;
		if (k == 1 && !woke) {
			if (next == ACU_NEVER || next > to) {
				rtpulse_free(p);
				*nlazy = actions(lazy, 64, from);
				continue;
			}
			clk = next;
		}
		run_until(p, to);
		if (k == 0)
			*neager = actions(eager, 64, from);
		else
			*nlazy = actions(lazy, 64, from);
		rtpulse_free(p);
	}
	return woke;
}

/* The next digit of *k in the given base: one loop over every combination. */
static int digit(int *k, int base)
{
	int d = *k % base;

	*k /= base;
	return d;
}

/* The thread is woken for a hand-over only when the change can need an edge
 * or a cut before its next wake: over every combination of lines, train,
 * channels, arming and cut, at a pulse's high and between pulses, a thread
 * left asleep makes every rise and cut that one woken at once makes, at the
 * same instants; and a change that only takes work away (a stop, a flag, an
 * interlock: the cut-off path) does not wake it. */
static void test_wake(void)
{
	struct acu_profile_cfg a = profile(100), b = profile(50);
	static const unsigned ons[] = { 0, 1, 2, 3 };
	static const int64_t cut_ats[] = { MS(4), MS(5), MS(6), MS(25) };
	static struct gpio_line other;
	struct write eager[64], lazy[64];
	int combos = 0, quiet = 0;

	for (int combo = 0; combo < 2 * 3 * 2 * 3 * 2 * 4 * 4 * 3 * 9; combo++) {
		int k = combo, nc = digit(&k, 9), wc = digit(&k, 3), no = digit(&k, 4);
		int wo = digit(&k, 4), arm = digit(&k, 2), np = digit(&k, 3), wp = digit(&k, 2);
		int lines = digit(&k, 3), phase = digit(&k, 2);
		const struct acu_profile_cfg *scheds[] = { NULL, &a, &b };
		struct rtpulse_room was = room_in(wp ? &a : NULL, ons[wo]);
		struct rtpulse_room now = room_in(scheds[np], ons[no]);
		int64_t at = phase ? T0 + 100000 : T0 + MS(3), wake_at;
		int ne = 0, nl = 0, woke;

		if (lines == 1)
			now.gate[1] = &other;
		else if (lines == 2)
			now.npulse = 1;
		if (arm)
			now.armed_at = T0 + MS(7);
		if (wc) {
			was.cut = wc;
			was.cut_at = T0 + MS(5);
		}
		if (nc) {
			now.cut = 1 + (unsigned)(nc - 1) / 4;
			now.cut_at = T0 + cut_ats[(nc - 1) % 4];
		}
		woke = handover_run(&was, &now, at, T0 + MS(40), &wake_at, eager, &ne, lazy, &nl);
		combos++;
		if (woke)
			continue;
		quiet++;
		CHECK_EQ(nl, ne);
		for (int i = 0; i < ne && i < nl; i++) {
			CHECK_EQ(lazy[i].t, eager[i].t);
			CHECK(lazy[i].l == eager[i].l && lazy[i].level == eager[i].level);
			CHECK(eager[i].t >= wake_at);
		}
	}
	CHECK(quiet > 0 && quiet < combos);

	/* The cut-off path: pulsing with a cut planned at expiry, then the
	 * gates go off (stop): no wake; started again: a wake. */
	{
		struct rtpulse_room was = room_in(&a, 3), now = room_in(&a, 0);
		int64_t wake_at;
		int ne, nl;

		was.cut = 3;
		was.cut_at = T0 + SEC(600);
		CHECK_EQ(handover_run(&was, &now, T0 + MS(3), T0 + MS(40), &wake_at, eager, &ne,
				      lazy, &nl), 0);
		CHECK_EQ(ne, 0);
		CHECK_EQ(handover_run(&now, &was, T0 + MS(3), T0 + MS(40), &wake_at, eager, &ne,
				      lazy, &nl), 1);
	}
}

/* The real thread at an ordinary priority and the loop handing over and
 * taking back at once: for TSan. What is checked cannot depend on timing. */
static int64_t real_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int real_set(struct gpio *g, struct gpio_line *l, int active)
{
	(void)g;
	__atomic_store_n(&l->active, active, __ATOMIC_RELAXED);
	return 0;
}

static void test_threads(void)
{
	struct acu_profile_cfg prof = profile(200);
	struct rtpulse *p = rtpulse_new(4, real_clock, real_set);
	struct rtpulse_report rep;
	char why[256], warn[256];
	int64_t sent = 0, end;

	reset_lines();
	CHECK_EQ(rtpulse_start(p, 0, why, sizeof why, warn, sizeof warn), 0);
	end = real_clock() + MS(300);
	for (int i = 0; real_clock() < end; i++) {
		struct rtpulse_room in = room_in(&prof, 1 + (unsigned)(i & 1) * 2);

		in.armed_at = real_clock();
		in.cut = (unsigned)(i % 3 == 0);
		in.cut_at = in.armed_at + MS(1);
		rtpulse_set(p, i % 4, &in);
		for (int r = 0; r < 4; r++)
			if (rtpulse_take(p, r, &rep))
				sent += rep.pulses[0];
		rtpulse_ack(p);
		nanosleep(&(struct timespec){ 0, 200000 }, NULL);
	}
	rtpulse_reset(p, 2);
	rtpulse_free(p);
	CHECK(sent > 0);
}

int main(int argc, char **argv)
{
	test_on_time();
	test_stall();
	test_handover();
	test_cut();
	test_fault();
	test_fault_in_flight();
	test_wake();
	if (argc > 1 && strcmp(argv[1], "threads") == 0)
		test_threads();
	return unit_report("test_rtpulse");
}

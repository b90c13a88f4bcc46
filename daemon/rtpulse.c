/* The real-time pulse thread (rtpulse.h). The loop and the thread share one
 * table of rooms under one mutex (priority inheritance): the loop holds it
 * only to copy a room in or a report out, the thread for each pass, and the
 * thread sleeps on a condition variable with an absolute CLOCK_MONOTONIC
 * deadline (the hrtimer clock_nanosleep(TIMER_ABSTIME) uses, and no timer
 * slack at SCHED_FIFO) so that a new train wakes it at once. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gpio.h"
#include "rtpulse.h"
#include "train.h"

/* The thread's stack: small, and touched at start so that its pages are in
 * (and locked) before the first deadline. */
#define RTPULSE_STACK (256 * 1024)
#define RTPULSE_PREFAULT (32 * 1024)

struct slot {
	struct rtpulse_room in;        /* the loop's, as last handed over */
	const struct acu_profile_cfg *prof; /* in.profile's schedule: one of scheds */
	struct train tr;
	struct rtpulse_report rep;
	int touched;                   /* rep holds something: read without the lock */
	int dead;                      /* a write failed: nothing more until the loop says */
};

struct rtpulse {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop;
	int nslots;
	struct slot *slots;
	int efd;
	int news;                      /* a report the loop has not been told of */
	int64_t (*clock)(void);
	int (*set)(struct gpio *g, struct gpio_line *l, int active);
	/* Copies of the schedules handed over, one per distinct schedule: the
	 * loop's alone, read-only once a slot points at one, freed with p. */
	struct acu_profile_cfg **scheds;
	int nscheds;
};

static int64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

void rtpulse_mutex_init(pthread_mutex_t *mu)
{
	pthread_mutexattr_t ma;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(mu, &ma);
	pthread_mutexattr_destroy(&ma);
}

struct rtpulse *rtpulse_new(int nrooms, int64_t (*clock)(void),
			    int (*set)(struct gpio *g, struct gpio_line *l, int active))
{
	struct rtpulse *p = calloc(1, sizeof *p);
	pthread_condattr_t ca;

	if (!p)
		return NULL;
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->slots = calloc((size_t)nrooms + 1, sizeof *p->slots);
	if (p->efd < 0 || !p->slots) {
		if (p->efd >= 0)
			close(p->efd);
		free(p->slots);
		free(p);
		return NULL;
	}
	p->nslots = nrooms;
	p->clock = clock ? clock : mono_now;
	p->set = set;
	rtpulse_mutex_init(&p->mu);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

static void slots_free(struct rtpulse *p)
{
	free(p->slots);
	p->slots = NULL;
	p->nslots = 0;
}

/* --- a pass ------------------------------------------------------------------ */

static void touch(struct slot *s)
{
	__atomic_store_n(&s->touched, 1, __ATOMIC_RELEASE);
}

static void tell(struct rtpulse *p)
{
	uint64_t one = 1;

	if (!p->news && write(p->efd, &one, sizeof one) == sizeof one)
		p->news = 1;
}

/* S7: a write failed. Every line of the room is driven off at once (the loop
 * then raises the fault and drives them again); the room is left alone until
 * the loop hands it over again. */
static void room_fault(struct rtpulse *p, struct slot *s)
{
	for (int c = 0; c < s->in.npulse; c++)
		p->set(s->in.gpio, s->in.pulse[c], 0);
	for (int c = 0; c < s->in.ngate; c++)
		p->set(s->in.gpio, s->in.gate[c], 0);
	/* A pulse in flight counts as sent: handed back, the train goes on
	 * after it, never sends it again. */
	train_stop(&s->tr);
	s->dead = 1;
	s->rep.fault = 1;
	touch(s);
	tell(p);
}

static int lines_low(struct rtpulse *p, struct slot *s)
{
	for (int c = 0; c < s->in.npulse; c++)
		if (gpio_active(s->in.pulse[c]) != 0 && p->set(s->in.gpio, s->in.pulse[c], 0) < 0)
			return -1;
	return 0;
}

static void count_late(struct rtpulse *p, struct slot *s, int64_t n)
{
	if (n <= 0)
		return;
	s->rep.late += n;
	for (int c = 0; c < s->in.npulse; c++)
		if (s->in.pulse_on & (1u << c))
			s->rep.missed[c] += n;
	touch(s);
	tell(p);
}

static void cut(struct rtpulse *p, struct slot *s, int64_t now)
{
	for (int c = 0; c < s->in.ngate; c++) {
		if (!(s->in.cut & (1u << c)))
			continue;
		if ((c < s->in.npulse && p->set(s->in.gpio, s->in.pulse[c], 0) < 0) ||
		    p->set(s->in.gpio, s->in.gate[c], 0) < 0) {
			room_fault(p, s);
			return;
		}
	}
	s->rep.cut |= s->in.cut;
	s->rep.cut_at = now;
	s->in.pulse_on &= ~s->in.cut;
	s->in.cut = 0;
	touch(s);
	tell(p);
}

/* Every edge of the room's train due by now; returns the next. */
static int64_t train_pass(struct rtpulse *p, struct slot *s, int64_t now)
{
	const struct acu_profile_cfg *prof = s->prof;
	int64_t late;

	if (!s->in.profile || !s->in.pulse_on) {
		/* Stopped: a pulse in progress ends now, and the train moves past it. */
		if (s->tr.high) {
			if (lines_low(p, s) < 0)
				room_fault(p, s);
			else if (prof)
				train_fell(&s->tr, prof, now);
			else
				train_stop(&s->tr); /* handed over without a schedule */
			s->tr.high = 0;
		}
		return ACU_NEVER;
	}
	train_next(&s->tr, prof, s->in.armed_at);
	while (train_wake(&s->tr) <= now) {
		switch (train_due(&s->tr, prof, now, &late)) {
		case TRAIN_WAIT:
			return train_wake(&s->tr);
		case TRAIN_SKIP:
			count_late(p, s, late);
			break;
		case TRAIN_RISE:
			for (int c = 0; c < s->in.npulse; c++) {
				if (!(s->in.pulse_on & (1u << c)))
					continue;
				if (p->set(s->in.gpio, s->in.pulse[c], 1) < 0) {
					room_fault(p, s);
					return ACU_NEVER;
				}
				s->rep.pulses[c]++;
			}
			touch(s);
			/* The width counts from when the lines actually went high. */
			train_rose(&s->tr, prof, p->clock());
			break;
		case TRAIN_FALL:
			if (lines_low(p, s) < 0) {
				room_fault(p, s);
				return ACU_NEVER;
			}
			count_late(p, s, train_fell(&s->tr, prof, now));
			break;
		}
		now = p->clock();
	}
	return train_wake(&s->tr);
}

static int64_t pass(struct rtpulse *p)
{
	int64_t next = ACU_NEVER, now;

	for (int i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		int64_t t;

		if (!s->in.gpio || s->dead)
			continue;
		/* Read again for each room: the writes of the rooms before take time,
		 * and whether a pulse is too late is decided on the time it is sent. */
		now = p->clock();
		if (s->in.cut && s->in.cut_at <= now)
			cut(p, s, now);
		if (s->dead)
			continue;
		if (s->in.cut && s->in.cut_at < next)
			next = s->in.cut_at;
		t = train_pass(p, s, now);
		if (t < next)
			next = t;
	}
	return next;
}

int64_t rtpulse_run(struct rtpulse *p)
{
	int64_t next;

	pthread_mutex_lock(&p->mu);
	next = pass(p);
	pthread_mutex_unlock(&p->mu);
	return next;
}

/* --- the loop's side ------------------------------------------------------------ */

static void copy_schedule(struct acu_profile_cfg *dst, const struct acu_profile_cfg *src)
{
	dst->mode = src->mode;
	dst->frequency_hz = src->frequency_hz;
	dst->alt_frequency_hz = src->alt_frequency_hz;
	dst->switch_s = src->switch_s;
	dst->on_s = src->on_s;
	dst->off_s = src->off_s;
	dst->pulse_width_us = src->pulse_width_us;
	dst->delay_s = src->delay_s;
	dst->duration_s = src->duration_s;
	dst->channels = src->channels;
}

static int same_schedule(const struct acu_profile_cfg *a, const struct acu_profile_cfg *b)
{
	return a->mode == b->mode && a->frequency_hz == b->frequency_hz &&
	       a->alt_frequency_hz == b->alt_frequency_hz && a->switch_s == b->switch_s &&
	       a->on_s == b->on_s && a->off_s == b->off_s &&
	       a->pulse_width_us == b->pulse_width_us && a->delay_s == b->delay_s &&
	       a->duration_s == b->duration_s && a->channels == b->channels;
}

/* The copy of src's schedule, made the first time it is seen (outside the
 * lock); NULL when out of memory. */
static const struct acu_profile_cfg *sched_of(struct rtpulse *p,
					       const struct acu_profile_cfg *src)
{
	struct acu_profile_cfg **more, *c;

	for (int i = 0; i < p->nscheds; i++)
		if (same_schedule(p->scheds[i], src))
			return p->scheds[i];
	more = realloc(p->scheds, (size_t)(p->nscheds + 1) * sizeof *more);
	if (!more)
		return NULL;
	p->scheds = more;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	copy_schedule(c, src);
	p->scheds[p->nscheds++] = c;
	return c;
}

int rtpulse_hastens(const struct rtpulse_room *was, const struct acu_profile_cfg *was_sched,
		    const struct rtpulse_room *now, const struct acu_profile_cfg *now_sched)
{
	if (now->gpio != was->gpio || now->ngate != was->ngate || now->npulse != was->npulse ||
	    memcmp(now->gate, was->gate, sizeof now->gate) != 0 ||
	    memcmp(now->pulse, was->pulse, sizeof now->pulse) != 0)
		return 1;
	/* Pulses: the same train (schedule and phase) on no new channel. */
	if (now_sched && now->pulse_on &&
	    (now_sched != was_sched || now->armed_at != was->armed_at ||
	     (now->pulse_on & ~was->pulse_on) != 0))
		return 1;
	/* A cut: one already planned, on no other gate and not sooner. */
	if (now->cut && (!was->cut || (now->cut & ~was->cut) != 0 || now->cut_at < was->cut_at))
		return 1;
	return 0;
}

int rtpulse_set(struct rtpulse *p, int room, const struct rtpulse_room *in)
{
	const struct acu_profile_cfg *prof = NULL;
	struct slot *s;
	int wake;

	if (room < 0 || room >= p->nslots)
		return 0;
	s = &p->slots[room];
	if (in->profile)
		prof = sched_of(p, in->profile);
	pthread_mutex_lock(&p->mu);
	/* Compared with what the thread holds now (it clears a cut it made). */
	wake = s->dead || rtpulse_hastens(&s->in, s->prof, in, prof);
	s->in = *in;
	s->prof = prof;
	if (!prof)
		s->in.profile = NULL;
	s->dead = 0;
	if (wake)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return wake;
}

int rtpulse_take(struct rtpulse *p, int room, struct rtpulse_report *out)
{
	static const struct rtpulse_report none;
	struct slot *s;
	int any;

	memset(out, 0, sizeof *out);
	if (!rtpulse_pending(p, room))
		return 0;
	s = &p->slots[room];
	pthread_mutex_lock(&p->mu);
	any = memcmp(&s->rep, &none, sizeof none) != 0;
	*out = s->rep;
	s->rep = none;
	__atomic_store_n(&s->touched, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->mu);
	return any;
}

int rtpulse_pending(const struct rtpulse *p, int room)
{
	if (room < 0 || room >= p->nslots)
		return 0;
	return __atomic_load_n(&p->slots[room].touched, __ATOMIC_ACQUIRE);
}

void rtpulse_reset(struct rtpulse *p, int nrooms)
{
	struct slot *slots = calloc((size_t)nrooms + 1, sizeof *slots);

	pthread_mutex_lock(&p->mu);
	if (slots) {
		slots_free(p);
		p->slots = slots;
		p->nslots = nrooms;
	} else {
		/* Out of memory: the old table, emptied (no room is driven). */
		for (int i = 0; i < p->nslots; i++)
			memset(&p->slots[i].in, 0, sizeof p->slots[i].in);
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int rtpulse_fd(const struct rtpulse *p)
{
	return p->efd;
}

void rtpulse_ack(struct rtpulse *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->mu);
	if (read(p->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		n = 0;
	p->news = 0;
	pthread_mutex_unlock(&p->mu);
}

/* --- the thread -------------------------------------------------------------- */

static void prefault_stack(void)
{
	char buf[RTPULSE_PREFAULT];

	memset(buf, 0, sizeof buf);
	/* Else the memset of a dead buffer is dropped (it was, at -O3). */
	__asm__ volatile("" : : "r"(buf) : "memory");
}

static void *thread_main(void *arg)
{
	struct rtpulse *p = arg;

	prefault_stack();
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		int64_t next = pass(p);
		struct timespec ts;

		if (p->stop)
			break;
		if (next == ACU_NEVER) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		ts.tv_sec = (time_t)(next / NS_PER_SEC);
		ts.tv_nsec = (long)(next % NS_PER_SEC);
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int rtpulse_start(struct rtpulse *p, int prio, char *why, size_t whylen, char *warn,
		  size_t warnlen)
{
	pthread_attr_t a;
	int e;

	warn[0] = '\0';
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, RTPULSE_STACK);
	if (prio > 0) {
		struct sched_param sp = { .sched_priority = prio };

		pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&a, SCHED_FIFO);
		pthread_attr_setschedparam(&a, &sp);
	}
	e = pthread_create(&p->thread, &a, thread_main, p);
	pthread_attr_destroy(&a);
	if (e) {
		snprintf(why, whylen, "SCHED_FIFO priority %d: %s", prio, strerror(e));
		return -1;
	}
	p->running = 1;
	/* Locked as they are faulted in (MCL_ONFAULT): pages never touched stay
	 * out, so the lock costs no memory, and what the pulse path has touched
	 * (code, the rooms, its stack) is never paged out from under a deadline.
	 * Not MCL_FUTURE: under RLIMIT_MEMLOCK that would make later allocations
	 * fail, and what is mapped later is the loop's, not the pulse path's. */
	if (prio > 0 && mlockall(MCL_CURRENT | MCL_ONFAULT) < 0)
		snprintf(warn, warnlen, "mlockall: %s", strerror(errno));
	return 0;
}

void rtpulse_free(struct rtpulse *p)
{
	if (!p)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	slots_free(p);
	for (int i = 0; i < p->nscheds; i++)
		free(p->scheds[i]);
	free(p->scheds);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	close(p->efd);
	free(p);
}

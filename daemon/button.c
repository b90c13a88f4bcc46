/* The room buttons (SPEC §11): each call and presence input read on its
 * edges, debounced by debounce.c unless the kernel does it (libgpiod 2), and
 * a press applied by room.c and committed like any other change. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon.h"
#include "debounce.h"
#include "gpio.h"

struct button {
	struct acud *d;
	struct gpio_line *line;
	int call;                      /* 1: the call input; 0: presence */
	int64_t period;                /* the daemon's debounce, ns; 0 when the kernel's */
	struct event *ev;              /* its fd: an edge may be queued */
	struct event *settle;          /* the end of its debounce period */
	struct debounce db;
	int unreadable;                /* said once in the log */
};

/* A button's debounce as a reload found it, taken up again by the same line
 * of the same room: a press in progress during a reload still counts. */
struct button_memo {
	char room[ACU_ID_MAX + 1];
	int call;
	struct acu_line spec;
	struct debounce db;
};

struct buttons {
	struct button *b;
	int n;
	struct button_memo *memo;
	int nmemo;
};

static void button_press(struct button *b, const struct acu_now *now)
{
	struct acud *d = b->d;
	struct acu_room *r = commit_room(d, b->line->room), before;
	char msg[256];
	json_t *rec;
	int what;

	if (!r)
		return;
	memcpy(&before, r, sizeof before);
	room_tick(r, d->cfg, now);
	if (b->call) {
		what = room_call(r, now);
		/* A call while one is active changes nothing but the history. */
		rec = json_pack("{s:s,s:b}", "type", "call", "new", what);
	} else {
		what = room_presence(r, d->cfg, now);
		rec = json_pack("{s:s,s:b,s:b}", "type", "presence", "call",
				(what & ROOM_PRESENCE_CALL) != 0, "checkin",
				(what & ROOM_PRESENCE_CHECKIN) != 0);
	}
	if (commit_change(d, r, &before, now, rec, b->call ? "call" : "presence", msg,
			  sizeof msg) < 0)
		log_errx("%s", msg);
	if (b->call)
		log_notice("room %s: call button%s", r->cfg->id, what ? "" : " (a call is active)");
	else
		log_notice("room %s: presence%s%s", r->cfg->id,
			   what & ROOM_PRESENCE_CALL ? "; call answered" : "",
			   what & ROOM_PRESENCE_CHECKIN ? "; check-in recorded" : "");
}

static void button_settle(struct button *b, const struct acu_now *now)
{
	int64_t next;

	if (debounce_settle(&b->db, now->mono, b->period) == DEBOUNCE_ROSE)
		button_press(b, now);
	event_del(b->settle);
	next = debounce_next(&b->db, b->period);
	if (next != INT64_MAX)
		stim_timer_at(b->settle, next);
}

/* Every queued edge of the input, then what its debounce makes of them. */
static void button_read(struct button *b)
{
	struct acud *d = b->d;
	struct acu_now now = acu_now();
	int edges, level = gpio_read(d->gpio, b->line, &edges);

	lines_edge(d, b->line, level, edges, &now);
	if (level < 0 && !b->unreadable)
		log_errx("room %s: %s input cannot be read%s", b->line->room, b->line->role,
			 b->call ? ": counted as a call" : "");
	b->unreadable = level < 0;
	/* A call's edges are taken as late as they can be (never miss a press);
	 * a presence's as early (a bounce never answers a call). */
	if (debounce_feed(&b->db, room_button_level(b->call, level), edges, now.mono, b->period,
			  b->call) == DEBOUNCE_ROSE)
		button_press(b, &now);
	button_settle(b, &now);
	gpio_sync(d->gpio);
}

static void button_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	button_read(arg);
}

static void settle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct button *b = arg;
	struct acu_now now = acu_now();

	(void)fd;
	(void)what;
	button_settle(b, &now);
}

static const struct button_memo *memo_find(const struct buttons *bs, const struct gpio_line *l,
					   int call)
{
	for (int i = 0; i < bs->nmemo; i++)
		if (bs->memo[i].call == call && strcmp(bs->memo[i].room, l->room) == 0 &&
		    memcmp(&bs->memo[i].spec, &l->spec, sizeof l->spec) == 0)
			return &bs->memo[i];
	return NULL;
}

void button_attach(struct acud *d)
{
	struct gpio *g = d->gpio;
	struct buttons *bs;

	if (!d->buttons)
		d->buttons = xcalloc(1, sizeof *d->buttons);
	bs = d->buttons;
	bs->b = xcalloc((size_t)(g ? g->nlines : 0) + 1, sizeof *bs->b);
	bs->n = 0;
	for (int i = 0; g && i < g->nlines; i++) {
		struct gpio_line *l = &g->lines[i];
		const struct button_memo *m;
		struct button *b;
		int call = strcmp(l->role, "call") == 0;

		if (!call && strcmp(l->role, "presence") != 0)
			continue;
		b = &bs->b[bs->n++];
		b->d = d;
		b->line = l;
		b->call = call;
		b->period = l->debounced ? 0 : (int64_t)l->debounce_us * 1000;
		/* From the start inputs rest inactive: a call line that reads
		 * active at start-up (an unplugged cord) calls. */
		m = memo_find(bs, l, call);
		if (m)
			b->db = m->db;
		else
			debounce_init(&b->db, 0);
		b->ev = event_new(d->base, l->fd, EV_READ | EV_PERSIST, button_cb, b);
		b->settle = evtimer_new(d->base, settle_cb, b);
		event_priority_set(b->ev, ACU_PRIO_TIME);
		event_priority_set(b->settle, ACU_PRIO_TIME);
		event_add(b->ev, NULL);
		stim_inputs_watch_button(d, l->fd, bs->n - 1);
		button_read(b);
	}
	free(bs->memo);
	bs->memo = NULL;
	bs->nmemo = 0;
}

void button_detach(struct acud *d)
{
	struct buttons *bs = d->buttons;

	if (!bs)
		return;
	free(bs->memo);
	bs->memo = xcalloc((size_t)bs->n + 1, sizeof *bs->memo);
	bs->nmemo = bs->n;
	for (int i = 0; i < bs->n; i++) {
		struct button *b = &bs->b[i];

		snprintf(bs->memo[i].room, sizeof bs->memo[i].room, "%s", b->line->room);
		bs->memo[i].call = b->call;
		bs->memo[i].spec = b->line->spec;
		bs->memo[i].db = b->db;
		event_free(b->ev);
		event_free(b->settle);
	}
	free(bs->b);
	bs->b = NULL;
	bs->n = 0;
}

void button_free(struct acud *d)
{
	button_detach(d);
	if (d->buttons)
		free(d->buttons->memo);
	free(d->buttons);
	d->buttons = NULL;
}

void button_poll(struct acud *d)
{
	struct buttons *bs = d->buttons;
	struct pollfd pfd[2 * ACU_MAX_ROOMS];
	int n = 0;

	for (int i = 0; bs && i < bs->n && n < 2 * ACU_MAX_ROOMS; i++) {
		pfd[n].fd = bs->b[i].line->fd;
		pfd[n].events = POLLIN;
		pfd[n++].revents = 0;
	}
	if (n == 0 || poll(pfd, (nfds_t)n, 0) <= 0)
		return;
	for (int i = 0; i < n; i++)
		if (pfd[i].revents)
			button_read(&bs->b[i]);
}

void button_ready(struct acud *d, int i)
{
	struct buttons *bs = d->buttons;

	if (bs && i < bs->n)
		button_read(&bs->b[i]);
}

/* `acuctl watch`. On a terminal, the live board: every room, redrawn on each
 * event and each second, recent events under it; when acud goes away it stays
 * on screen marked NOT LIVE, clocks stopped, and reconnects by itself. Not on a
 * terminal (or with --json), the events as JSON lines, until the stream ends.
 * Other boards' rooms (acud's [mqtt] remote = yes: the status's "remote" and
 * "remote" events) are shown under acud's own, read-only, one group per
 * board, greyed and stopped as NOT LIVE while that board is offline. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acuctl.h"

#define BOARD_EVENTS 5    /* recent events kept under the live board */
#define RETRY_MS 1000     /* the board's reconnection attempts, when acud went away */
#define RECONNECT_MS 3000 /* bound on one attempt (Ctrl-C still quits during it) */

/* Not a terminal (or --json): every event line as it came, flushed, so a
 * pipe sees each one when it happens. */
static int board_stream(struct conn *c)
{
	term_catch_quit();
	for (;;) {
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		size_t len;
		char *line;
		ssize_t n;

		while ((line = conn_take_line(c, &len))) {
			fwrite(line, 1, len, stdout);
			fputc('\n', stdout);
			if (fflush(stdout) == EOF)
				return RC_DONE; /* the reader went away */
		}
		n = conn_fill(c);
		if (n > 0)
			continue;
		if (n == 0)
			acuctl_unreachable("acud closed the event stream");
		if (errno != EAGAIN && errno != EINTR)
			acuctl_unreachable("event stream: %s", strerror(errno));
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			acuctl_unreachable("poll: %s", strerror(errno));
	}
}

/* Another board, as its last "remote" object said. */
struct rboard {
	char name[ACU_ID_MAX + 1];
	int live;
	char lost_clock[16];            /* when it was heard to be not live */
	int64_t at;                     /* monotonic ms, when heard */
	struct room_at *rooms;
	int n;
};

struct board {
	struct room_at *rooms;
	int n, cap;
	struct rboard *remote;
	int nremote;
	char events[BOARD_EVENTS][160]; /* newest first */
	int nevents;
	/* The stream: live, or lost (acud restarting) and retried every second
	 * while the last known rooms stay on screen, their clocks stopped. */
	int live;
	int64_t lost_ms;                /* monotonic, when it was lost */
	char lost_clock[16];            /* the same as HH:MM:SS */
	char why[160];                  /* the last failure */
	int64_t next_try;
};

static struct room_at *board_find(struct board *bd, const char *id)
{
	for (int i = 0; id && i < bd->n; i++) {
		const char *rid = jstr(bd->rooms[i].room, "id");

		if (rid && strcmp(rid, id) == 0)
			return &bd->rooms[i];
	}
	return NULL;
}

/* Takes a reference to room. */
static void board_put(struct board *bd, json_t *room)
{
	struct room_at *r = board_find(bd, jstr(room, "id"));

	if (!r) { /* a room added by a reload */
		if (bd->n == bd->cap) {
			int cap = bd->cap ? bd->cap * 2 : 16;
			struct room_at *p = realloc(bd->rooms, (size_t)cap * sizeof *p);

			if (!p)
				acuctl_die(RC_UNREACHABLE, "out of memory");
			bd->rooms = p;
			bd->cap = cap;
		}
		r = &bd->rooms[bd->n++];
		r->room = NULL;
	}
	json_decref(r->room);
	r->room = json_incref(room);
	r->at = acuctl_now_ms();
}

static void rboard_clear(struct rboard *rb)
{
	for (int i = 0; i < rb->n; i++)
		json_decref(rb->rooms[i].room);
	free(rb->rooms);
	rb->rooms = NULL;
	rb->n = 0;
}

/* One board object of "remote" (status or event): replaces what was known
 * of that board. Returns whether it went from live to not live. */
static int board_remote(struct board *bd, json_t *o)
{
	const char *name = jstr(o, "board");
	json_t *rooms = json_object_get(o, "rooms"), *room;
	struct rboard *rb = NULL;
	int was_live, lost;
	size_t i;

	if (!name || !json_is_array(rooms))
		return 0;
	for (int k = 0; k < bd->nremote; k++)
		if (strcmp(bd->remote[k].name, name) == 0)
			rb = &bd->remote[k];
	if (!rb) {
		struct rboard *p = realloc(bd->remote, sizeof *p * (size_t)(bd->nremote + 1));

		if (!p)
			acuctl_die(RC_UNREACHABLE, "out of memory");
		bd->remote = p;
		rb = &bd->remote[bd->nremote++];
		memset(rb, 0, sizeof *rb);
		snprintf(rb->name, sizeof rb->name, "%.32s", name);
		rb->live = 1;
	}
	was_live = rb->live;
	rboard_clear(rb);
	rb->live = json_is_true(json_object_get(o, "live"));
	rb->at = acuctl_now_ms();
	lost = was_live && !rb->live;
	if (lost || (!rb->live && !rb->lost_clock[0])) {
		time_t t = time(NULL);
		struct tm tm;

		strftime(rb->lost_clock, sizeof rb->lost_clock, "%H:%M:%S", localtime_r(&t, &tm));
	}
	rb->rooms = calloc(json_array_size(rooms) + 1, sizeof *rb->rooms);
	if (!rb->rooms)
		acuctl_die(RC_UNREACHABLE, "out of memory");
	json_array_foreach(rooms, i, room) {
		if (!json_is_object(room))
			continue;
		rb->rooms[rb->n].room = json_incref(room);
		rb->rooms[rb->n++].at = rb->at;
	}
	return lost;
}

static void board_remote_all(struct board *bd, json_t *remote)
{
	json_t *o;
	size_t i;

	for (int k = 0; k < bd->nremote; k++)
		rboard_clear(&bd->remote[k]);
	free(bd->remote);
	bd->remote = NULL;
	bd->nremote = 0;
	json_array_foreach(remote, i, o) {
		board_remote(bd, o);
	}
}

static void __attribute__((format(printf, 2, 3))) board_log(struct board *bd, const char *fmt, ...)
{
	char clock[16];
	time_t t = time(NULL);
	struct tm tm;
	va_list ap;
	int n;

	memmove(bd->events[1], bd->events[0], sizeof bd->events[0] * (BOARD_EVENTS - 1));
	strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&t, &tm));
	n = snprintf(bd->events[0], sizeof bd->events[0], "%s  ", clock);
	va_start(ap, fmt);
	vsnprintf(bd->events[0] + n, sizeof bd->events[0] - (size_t)n, fmt, ap);
	va_end(ap);
	if (bd->nevents < BOARD_EVENTS)
		bd->nevents++;
}

/* Room events replace the room; alarm and gate events patch it, so the board
 * is right even before the room event that follows them. */
static void board_apply(struct board *bd, const char *line, size_t len)
{
	json_t *ev = json_loadb(line, len, 0, NULL), *room;
	const char *type = jstr(ev, "event"), *id = jstr(ev, "room");
	struct room_at *r;

	if (!type) {
		json_decref(ev);
		return;
	}
	if (strcmp(type, "remote") == 0) {
		if (board_remote(bd, ev))
			board_log(bd, "board %.32s: NOT LIVE", jstr(ev, "board"));
	} else if (strcmp(type, "room") == 0 && json_is_object(room = json_object_get(ev, "room"))) {
		const char *before = NULL, *after = jstr(room, "state");

		r = board_find(bd, jstr(room, "id"));
		if (r)
			before = jstr(r->room, "state");
		if (after && (!before || strcmp(before, after) != 0))
			board_log(bd, "room %.32s: %.16s", jstr(room, "id") ? jstr(room, "id") : "?",
				  after);
		board_put(bd, room);
	} else if (strcmp(type, "alarm") == 0 && (r = board_find(bd, id))) {
		json_t *alarms = json_object_get(r->room, "alarms"), *e;
		const char *kind = jstr(ev, "kind"), *prio = jstr(ev, "priority");
		size_t i;

		if (!json_is_array(alarms)) {
			alarms = json_array();
			json_object_set_new(r->room, "alarms", alarms);
		}
		json_array_foreach(alarms, i, e) {
			if (kind && jstr(e, "kind") && strcmp(jstr(e, "kind"), kind) == 0) {
				json_array_remove(alarms, i);
				break;
			}
		}
		if (kind && prio && json_is_true(json_object_get(ev, "active")))
			json_array_append_new(alarms, json_pack("{s:s,s:s,s:o,s:n}", "kind", kind,
								 "priority", prio, "since",
								 json_incref(json_object_get(ev, "since")),
								 "silenced_until"));
		board_log(bd, "room %.32s: alarm %.20s %.12s (%.8s)", id, kind ? kind : "?",
			  jstr(ev, "change") ? jstr(ev, "change") :
			  json_is_true(json_object_get(ev, "active")) ? "raised" : "cleared",
			  prio ? prio : "?");
	} else if (strcmp(type, "gate") == 0 && (r = board_find(bd, id))) {
		json_t *stim = json_object_get(r->room, "stim"), *chans, *ch;
		long long channel = jint(ev, "channel", 0);
		int on = json_is_true(json_object_get(ev, "on")), any = 0;
		size_t i;

		chans = json_object_get(stim, "channels");
		json_array_foreach(chans, i, ch) {
			if (jint(ch, "channel", 0) == channel)
				json_object_set_new(ch, "on", json_boolean(on));
			any |= json_is_true(json_object_get(ch, "on"));
		}
		if (json_is_object(stim))
			json_object_set_new(stim, "on", json_boolean(any));
		board_log(bd, "room %.32s: channel %lld %s (%.40s)", id, channel, on ? "on" : "off",
			  jstr(ev, "cause") ? jstr(ev, "cause") : "?");
	}
	json_decref(ev);
}

static void board_draw(struct board *bd, int full)
{
	static const char eol[] = "\033[K\n";
	int cols = term_cols(), rows = term_rows(), left;
	struct sbuf b = { 0 };
	char head[256], clock[16];
	time_t t = time(NULL);
	struct tm tm;
	ssize_t n;
	size_t off = 0;

	/* Lines stop one short of the bottom: a newline there would scroll. */
	rows = rows < 4 ? 4 : rows;
	strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&t, &tm));
	sb_puts(&b, full ? "\033[H\033[2J" : "\033[H");
	snprintf(head, sizeof head, "acud  %s  %d room%s  %s  (q quits)", clock, bd->n,
		 bd->n == 1 ? "" : "s", acuctl_opts.socket);
	sb_text(&b, head, cols, acuctl_opts.colour ? C_BOLD : NULL);
	sb_puts(&b, eol);
	if (!bd->live) {
		/* What is shown is as it was then: the countdowns stop there too. */
		snprintf(head, sizeof head, "*** NOT LIVE since %s *** %s; retrying every second",
			 bd->lost_clock, bd->why);
		sb_text(&b, head, cols, acuctl_opts.colour ? C_ALERT : NULL);
	}
	sb_puts(&b, eol);
	left = rows - 1 - 2;
	/* Rooms first; recent events get what is left under them. */
	left -= render_table(&b, bd->rooms, bd->n, cols, bd->live ? acuctl_now_ms() : bd->lost_ms,
			     left, eol);
	/* Other boards under ours: read-only, a group each. */
	for (int k = 0; k < bd->nremote && left >= 3; k++) {
		const struct rboard *rb = &bd->remote[k];
		int colour = acuctl_opts.colour;

		if (!rb->n)
			continue;
		sb_puts(&b, eol);
		if (rb->live)
			snprintf(head, sizeof head, "board %s  (read-only)", rb->name);
		else
			snprintf(head, sizeof head, "board %s  NOT LIVE since %s (read-only)", rb->name,
				 rb->lost_clock);
		sb_text(&b, head, cols, colour ? (rb->live ? C_BOLD : C_ALERT) : NULL);
		sb_puts(&b, eol);
		left -= 2;
		/* Greyed as a whole: no colour inside would end the dimming. */
		if (!rb->live && colour) {
			acuctl_opts.colour = 0;
			sb_puts(&b, C_DIM);
		}
		left -= render_table(&b, rb->rooms, rb->n, cols,
				     rb->live && bd->live ? acuctl_now_ms() :
				     rb->live ? bd->lost_ms : rb->at, left, eol);
		if (!rb->live && colour) {
			sb_puts(&b, C_OFF);
			acuctl_opts.colour = colour;
		}
	}
	if (bd->nevents && left >= 2) {
		sb_puts(&b, eol);
		left--;
		for (int i = 0; i < bd->nevents && left > 0; i++, left--) {
			sb_text(&b, bd->events[i], cols, NULL);
			sb_puts(&b, eol);
		}
	}
	sb_puts(&b, "\033[J");
	sb_clip(&b, cols - 1);
	while (off < b.len) {
		n = write(STDOUT_FILENO, b.s + off, b.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	sb_free(&b);
}

static void board_clear(struct board *bd)
{
	for (int i = 0; i < bd->n; i++)
		json_decref(bd->rooms[i].room);
	bd->n = 0;
}

static void board_free(struct board *bd)
{
	board_clear(bd);
	free(bd->rooms);
	board_remote_all(bd, NULL);
}

/* The stream ended: the board stays, marked NOT LIVE, and reconnects. */
static void board_lost(struct board *bd, struct conn *c, const char *why)
{
	time_t t = time(NULL);
	struct tm tm;

	conn_close(c);
	bd->live = 0;
	bd->lost_ms = acuctl_now_ms();
	strftime(bd->lost_clock, sizeof bd->lost_clock, "%H:%M:%S", localtime_r(&t, &tm));
	snprintf(bd->why, sizeof bd->why, "%s", why);
	bd->next_try = bd->lost_ms + RETRY_MS;
	board_log(bd, "NOT LIVE: %s", why);
}

/* status and watch again, as at the start: the board starts over from a
 * snapshot no event can precede. */
static void board_reconnect(struct board *bd, struct conn *c)
{
	int64_t deadline = acuctl_now_ms() + RECONNECT_MS;
	json_t *reqs[2] = { conn_request(acu_cmd_name(CMD_STATUS)),
			    conn_request(acu_cmd_name(CMD_WATCH)) };
	json_t *status = NULL, *watch = NULL, *rooms, *room;
	char why[160];
	size_t i;

	if (conn_connect(c, why, sizeof why) < 0) {
		char tmp[sizeof why];

		snprintf(tmp, sizeof tmp, "%s", why);
		snprintf(why, sizeof why, "cannot reach acud: %.140s", tmp);
		goto fail;
	}
	if (conn_try_send(c, reqs, 2, deadline, why, sizeof why) < 0 ||
	    !(status = conn_try_reply(c, reqs[0], deadline, why, sizeof why)) ||
	    !(watch = conn_try_reply(c, reqs[1], deadline, why, sizeof why)))
		goto fail;
	rooms = json_object_get(status, "rooms");
	if (!json_is_array(rooms)) {
		snprintf(why, sizeof why, "garbage reply (no rooms in the status)");
		goto fail;
	}
	board_clear(bd);
	json_array_foreach(rooms, i, room)
		if (json_is_object(room))
			board_put(bd, room);
	board_remote_all(bd, json_object_get(status, "remote"));
	bd->live = 1;
	board_log(bd, "live again (lost at %s)", bd->lost_clock);
	goto out;
fail:
	conn_close(c);
	if (strcmp(why, bd->why) != 0)
		board_log(bd, "NOT LIVE: %s", why);
	snprintf(bd->why, sizeof bd->why, "%s", why);
	bd->next_try = acuctl_now_ms() + RETRY_MS;
out:
	json_decref(status);
	json_decref(watch);
	json_decref(reqs[0]);
	json_decref(reqs[1]);
}

/* A terminal: status and watch go in one write, so acud answers both before
 * any event and the board starts from a snapshot no event can precede. */
static int board_run(struct conn *c, json_t *status_req, json_t *watch_req)
{
	json_t *reqs[2] = { status_req, watch_req }, *reply, *rooms, *room;
	struct board bd = { .live = 1 };
	int have_keys = isatty(STDIN_FILENO), full = 1;
	size_t i;

	conn_send(c, reqs, 2);
	reply = conn_reply(c, status_req);
	if (!reply)
		return RC_REFUSED;
	rooms = json_object_get(reply, "rooms");
	if (!json_is_array(rooms)) {
		json_decref(reply);
		acuctl_unreachable("garbage reply (no rooms in the status)");
	}
	json_array_foreach(rooms, i, room)
		if (json_is_object(room))
			board_put(&bd, room);
	board_remote_all(&bd, json_object_get(reply, "remote"));
	json_decref(reply);
	reply = conn_reply(c, watch_req);
	if (!reply) {
		board_free(&bd);
		return RC_REFUSED;
	}
	json_decref(reply);

	term_catch_board();
	term_enter();
	for (;;) {
		struct pollfd pfd[2] = { { STDIN_FILENO, POLLIN, 0 }, { -1, POLLIN, 0 } };
		int64_t now;
		size_t len;
		char *line;
		ssize_t n;
		int prc, wait;

		if (term_continued()) { /* back from Ctrl-Z */
			term_enter();
			full = 1;
		}
		if (term_resized())
			full = 1;
		if (!bd.live && acuctl_now_ms() >= bd.next_try)
			board_reconnect(&bd, c);
		board_draw(&bd, full);
		full = 0;
		/* Wake at the next whole second: the countdowns move without events;
		 * and for the next attempt when not live. */
		now = acuctl_now_ms();
		wait = (int)(1000 - now % 1000);
		if (!bd.live && bd.next_try - now < wait)
			wait = bd.next_try > now ? (int)(bd.next_try - now) : 0;
		/* Keys first in the set: without them, the stream alone (or nothing). */
		pfd[1].fd = c->fd;
		prc = poll(pfd + !have_keys, (nfds_t)(have_keys + bd.live), wait);
		if (prc < 0 && errno != EINTR)
			acuctl_unreachable("poll: %s", strerror(errno));
		if (prc <= 0)
			continue;
		if (have_keys && (pfd[0].revents & (POLLIN | POLLHUP))) {
			char key[64];

			n = read(STDIN_FILENO, key, sizeof key);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				have_keys = 0; /* stdin gone: Ctrl-C still quits */
			for (ssize_t k = 0; k < n; k++) {
				if (key[k] == 'q' || key[k] == 'Q')
					goto out;
				if (key[k] == '\f' || key[k] == 'r')
					full = 1;
			}
		}
		if (bd.live && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			while ((n = conn_fill(c)) > 0)
				while ((line = conn_take_line(c, &len)))
					board_apply(&bd, line, len);
			if (n == 0)
				board_lost(&bd, c, "acud closed the event stream");
			else if (errno != EAGAIN && errno != EINTR)
				board_lost(&bd, c, strerror(errno));
		}
	}
out:
	term_restore();
	board_free(&bd);
	return RC_DONE;
}

int board_watch(const struct command *cmd, struct args *a)
{
	json_t *watch_req, *status_req, *reply;
	struct conn c;
	int rc;

	args_none(cmd, a);
	acuctl_opts.colour = acuctl_opts.colour && !acuctl_opts.json;
	conn_open(&c);
	if (!acuctl_opts.json && isatty(STDOUT_FILENO)) {
		status_req = conn_request(acu_cmd_name(CMD_STATUS));
		watch_req = conn_request(acu_cmd_name(CMD_WATCH));
		rc = board_run(&c, status_req, watch_req);
		json_decref(status_req);
	} else {
		watch_req = conn_request(acu_cmd_name(CMD_WATCH));
		conn_send(&c, &watch_req, 1);
		reply = conn_reply(&c, watch_req);
		rc = reply ? board_stream(&c) : RC_REFUSED;
		json_decref(reply);
	}
	json_decref(watch_req);
	conn_close(&c);
	return rc;
}

/* acuctl's replies for a person: the status table (also the live board's),
 * a room in detail, the line a session command answers with, profiles,
 * history and versions. With --json none of this runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acuctl.h"

#define MAX_ALARMS 16 /* shown per room; acud has seven kinds */

static int prio_rank(const char *p)
{
	if (!p)
		return 0;
	if (strcmp(p, "high") == 0)
		return 3;
	if (strcmp(p, "medium") == 0)
		return 2;
	if (strcmp(p, "low") == 0)
		return 1;
	return 0;
}

/* IEC 60601-1-8 colours: high red, medium yellow, low cyan. */
static const char *prio_colour(const char *p)
{
	if (!acuctl_opts.colour)
		return NULL;
	switch (prio_rank(p)) {
	case 3: return C_HIGH;
	case 2: return C_MEDIUM;
	case 1: return C_LOW;
	default: return NULL;
	}
}

/* Scalars as a person reads them; lists of scalars comma-joined. */
static void put_value(struct sbuf *b, json_t *v, const char *yes, const char *no)
{
	size_t i;
	json_t *e;
	char *text;

	/* A key the reply lacks (an older or newer acud) reads as null. */
	if (!v) {
		sb_puts(b, "-");
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		sb_clean_all(b, json_string_value(v));
		break;
	case JSON_INTEGER:
		sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		sb_printf(b, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		sb_puts(b, yes);
		break;
	case JSON_FALSE:
		sb_puts(b, no);
		break;
	case JSON_NULL:
		sb_puts(b, "-");
		break;
	case JSON_ARRAY:
		if (json_array_size(v) == 0) {
			sb_puts(b, "none");
			break;
		}
		json_array_foreach(v, i, e) {
			if (json_is_object(e) || json_is_array(e))
				goto compact;
		}
		json_array_foreach(v, i, e) {
			if (i)
				sb_puts(b, ",");
			put_value(b, e, yes, no);
		}
		break;
	default:
	compact:
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text)
			sb_clean_all(b, text);
		free(text);
		break;
	}
}

static long long elapsed_s(const struct room_at *r, int64_t now)
{
	return now > r->at ? (now - r->at) / 1000 : 0;
}

static long long room_remaining(const struct room_at *r, int64_t now)
{
	long long rem = jint(r->room, "remaining_s", 0);
	const char *st = jstr(r->room, "state");

	if (st && strcmp(st, "running") == 0)
		rem -= elapsed_s(r, now);
	return rem < 0 ? 0 : rem;
}

static long long room_overdue(const struct room_at *r, int64_t now)
{
	long long od = jint(r->room, "overdue_s", 0);
	const char *st = jstr(r->room, "state");

	if (st && strcmp(st, "due") == 0)
		od += elapsed_s(r, now);
	return od < 0 ? 0 : od;
}

static void mmss(long long s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
}

static const char *due_priority(json_t *room)
{
	json_t *al = json_object_get(room, "alarms"), *e;
	size_t i;

	json_array_foreach(al, i, e) {
		const char *k = jstr(e, "kind");

		if (k && strcmp(k, "due") == 0)
			return jstr(e, "priority");
	}
	return "medium";
}

/* The time column: a bar of the time left, "paused", plain OVERDUE, or "-".
 * Returns the colour to show it in, if any. */
static const char *time_text(const struct room_at *r, int64_t now, int barw, char *out, size_t len)
{
	const char *st = jstr(r->room, "state");
	char t[32];

	if (!st)
		st = "?";
	if (strcmp(st, "running") == 0) {
		long long rem = room_remaining(r, now), dur = jint(r->room, "duration_s", 0);
		int fill = 0, i, n = 0;

		mmss(rem, t, sizeof t);
		if (barw <= 0) {
			snprintf(out, len, "%s left", t);
			return NULL;
		}
		if (dur > 0) /* rounded up: a sliver stays until the last second */
			fill = (int)((rem * barw + dur - 1) / dur);
		fill = fill < 0 ? 0 : fill > barw ? barw : fill;
		if ((size_t)barw + 32 > len)
			barw = (int)len - 32;
		out[n++] = '[';
		for (i = 0; i < barw; i++)
			out[n++] = i < fill ? '#' : '-';
		out[n++] = ']';
		snprintf(out + n, len - (size_t)n, " %s left", t);
		return NULL;
	}
	if (strcmp(st, "paused") == 0) {
		mmss(room_remaining(r, now), t, sizeof t);
		snprintf(out, len, "paused %s left", t);
		return NULL;
	}
	if (strcmp(st, "due") == 0) {
		mmss(room_overdue(r, now), t, sizeof t);
		snprintf(out, len, "OVERDUE %s", t);
		return acuctl_opts.colour ? prio_colour(due_priority(r->room)) : NULL;
	}
	if (strcmp(st, "idle") == 0) {
		snprintf(out, len, "-");
		return NULL;
	}
	snprintf(out, len, "%s", st);
	return NULL;
}

/* Active alarms, highest priority first (a stable insertion sort). */
static int sorted_alarms(json_t *room, json_t **out)
{
	json_t *al = json_object_get(room, "alarms"), *e;
	size_t i;
	int n = 0;

	json_array_foreach(al, i, e) {
		int j;

		if (!json_is_object(e) || n >= MAX_ALARMS)
			continue;
		for (j = n; j > 0 && prio_rank(jstr(out[j - 1], "priority")) <
					   prio_rank(jstr(e, "priority")); j--)
			out[j] = out[j - 1];
		out[j] = e;
		n++;
	}
	return n;
}

static const char *stim_text(json_t *room)
{
	json_t *st = json_object_get(room, "stim");
	const char *state = jstr(room, "state");

	if (json_is_true(json_object_get(st, "on")))
		return "ON";
	if (json_is_true(json_object_get(st, "armed")))
		return "armed";
	if (jstr(st, "blocked") && state && strcmp(state, "idle") != 0)
		return "BLOCK";
	if (!state || strcmp(state, "idle") == 0)
		return "-";
	return "off";
}

/* --- the status table ------------------------------------------------------- */

#define CELL_LINES 16 /* lines a wrapped cell may take */

/* A wrapped cell: where each of its lines starts in the text (bytes) and how
 * many columns it shows. */
struct wrapped {
	const char *text;
	int start[CELL_LINES], cols[CELL_LINES];
	int n;
};

/* Breaks s into lines of at most width columns, at blanks where it can and
 * inside a word only where a word is wider than the column. */
static void wrap_words(struct wrapped *w, const char *s, int width)
{
	const char *p = s;

	w->text = s;
	w->n = 0;
	width = width < 1 ? 1 : width;
	while (*p && w->n < CELL_LINES) {
		const char *line, *brk = NULL;
		int cols = 0, brk_cols = 0;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		line = p;
		while (*p && cols < width) {
			if (*p == ' ' && cols > 0) {
				brk = p;
				brk_cols = cols;
			}
			p++;
			while (((unsigned char)*p & 0xC0) == 0x80)
				p++;
			cols++;
		}
		if (*p && *p != ' ' && brk) { /* a word would be cut: break before it */
			p = brk;
			cols = brk_cols;
		}
		w->start[w->n] = (int)(line - s);
		w->cols[w->n++] = cols;
	}
	if (!w->n) {
		w->start[0] = w->cols[0] = 0;
		w->n = 1;
	}
}

/* Line k of a wrapped cell, padded to width; the last line takes what did
 * not fit (marked '~'). */
static void put_wrapped(struct sbuf *b, const struct wrapped *w, int k, int width)
{
	if (k >= w->n) {
		sb_pad(b, width);
	} else if (k == w->n - 1 && w->n == CELL_LINES) {
		sb_cell(b, w->text + w->start[k], width, NULL);
	} else {
		sb_clean(b, w->text + w->start[k], w->cols[k]);
		sb_pad(b, width - w->cols[k]);
	}
}

/* The ALARMS cell: kinds, highest first, HIGH ones in capitals so they stand
 * out without colour too; a room marked for attention leads with ATTN. */
struct alarm_cell {
	char label[MAX_ALARMS + 1][32];
	const char *colour[MAX_ALARMS + 1];
	int n;
	int first[MAX_ALARMS + 2]; /* the first label of each line, then n */
	int lines;
};

static void alarm_labels(struct alarm_cell *c, json_t *room)
{
	json_t *al[MAX_ALARMS];
	int n = sorted_alarms(room, al);

	c->n = 0;
	if (jstr(room, "attention")) {
		snprintf(c->label[0], sizeof c->label[0], "ATTN");
		c->colour[c->n++] = acuctl_opts.colour ? C_HIGH : NULL;
	}
	for (int i = 0; i < n; i++) {
		const char *kind = jstr(al[i], "kind"), *prio = jstr(al[i], "priority");
		char *label = c->label[c->n];

		snprintf(label, sizeof c->label[0], "%s", kind ? kind : "?");
		/* How long a patient has been calling: its age, from since. */
		if (kind && strcmp(kind, "call") == 0) {
			const char *since = jstr(al[i], "since");
			int64_t t;
			char age[16];

			if (since && acu_parse_rfc3339(since, &t) == 0) {
				mmss((acu_now().wall - t) / NS_PER_SEC, age, sizeof age);
				snprintf(label, sizeof c->label[0], "call %s", age);
			}
		}
		if (prio_rank(prio) == 3)
			for (char *p = label; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
		c->colour[c->n++] = prio_colour(prio);
	}
}

/* Columns of the labels on one line, with the comma that follows each but
 * the very last. */
static int alarm_cols(const struct alarm_cell *c, int from, int to)
{
	int w = 0;

	for (int i = from; i < to; i++)
		w += sb_cols(c->label[i]) + (i < c->n - 1);
	return w;
}

/* Labels go on a line while they fit; a line that goes on ends with ','. */
static void wrap_alarms(struct alarm_cell *c, int width)
{
	c->lines = 0;
	c->first[c->lines++] = 0;
	for (int i = 1; i < c->n; i++)
		if (alarm_cols(c, c->first[c->lines - 1], i + 1) > width)
			c->first[c->lines++] = i;
	c->first[c->lines] = c->n;
}

static void put_alarm_line(struct sbuf *b, const struct alarm_cell *c, int k, int width)
{
	if (!c->n) {
		if (k == 0)
			sb_add(b, "-", 1);
		return;
	}
	for (int i = c->first[k]; k < c->lines && i < c->first[k + 1]; i++) {
		int comma = i < c->n - 1;

		width -= sb_text(b, c->label[i], width - comma, c->colour[i]);
		if (comma) {
			sb_add(b, ",", 1);
			width--;
		}
	}
}

/* Column widths; 0 drops a column. */
struct layout {
	int id, name, state, bar, time, patient, needles, stim, alarms;
};

/* What the rows need: widest id, name, name word, patient and alarm list,
 * widest alarm label, and the widest time text without a bar (running rows
 * add the bar and its brackets to theirs). */
struct natural {
	int id, name, word, patient, alarms, label, plain, running;
};

static int time_width(const struct natural *nat, int bar)
{
	int w = nat->plain > 4 ? nat->plain : 4;

	if (nat->running && bar && nat->running + bar + 3 > w)
		w = nat->running + bar + 3;
	if (nat->running > w)
		w = nat->running;
	return w;
}

static int layout_width(struct layout *l, const struct natural *nat)
{
	l->time = time_width(nat, l->bar);
	return l->id + l->name + l->state + l->time + l->stim + l->alarms + 5 +
	       (l->patient ? l->patient + 1 : 0) + (l->needles ? l->needles + 1 : 0);
}

static int maxi(int a, int b)
{
	return a > b ? a : b;
}

/* Every column as wide as its widest text; on a terminal (cols > 0) fitted
 * to its width. Names and alarms are what the desk reads, so the bar goes
 * first, then alarm lists and names wrap onto more lines (at commas and
 * blanks), then NEEDLES and PATIENT go; only a very narrow terminal cuts
 * labels and breaks words. Into a pipe nothing is cut. */
static void layout_for(struct layout *l, const struct natural *nat, int cols)
{
	int spare, fit = cols - 1; /* the last column stays free: no auto-wrap */
	int alarms_min = maxi(nat->label + 1, 6), name_min = maxi(nat->word, 4);

	l->id = maxi(nat->id, 2);
	l->name = maxi(nat->name, 4);
	l->state = 7;
	l->bar = nat->running ? 8 : 0;
	l->patient = maxi(nat->patient, 7);
	l->needles = 7;
	l->stim = 5;
	l->alarms = maxi(nat->alarms, 6);
	l->time = time_width(nat, l->bar);
	if (cols <= 0)
		return;
	while (layout_width(l, nat) > fit) {
		if (l->bar > 4)
			l->bar--;
		else if (l->bar)
			l->bar = 0;
		else if (l->alarms > alarms_min)
			l->alarms--;
		else if (l->name > name_min)
			l->name--;
		else if (l->needles)
			l->needles = 0;
		else if (l->patient)
			l->patient = 0;
		else if (l->alarms > 8) /* long labels cut, rather than names in pieces */
			l->alarms--;
		else if (l->name > 4)
			l->name--;
		else
			break; /* what is left is cut at the edge */
	}
	/* Room left over (a dropped column was wider than needed) goes back to
	 * the alarms and names, then to the bar. */
	spare = fit - layout_width(l, nat);
	for (; spare > 0 && l->alarms < maxi(nat->alarms, 6); spare--)
		l->alarms++;
	for (; spare > 0 && l->name < maxi(nat->name, 4); spare--)
		l->name++;
	if (nat->running && !l->bar && spare >= 7) {
		l->bar = 4;
		spare -= 7;
	}
	for (; spare > 0 && l->bar && l->bar < 20; spare--)
		l->bar++;
	l->time = time_width(nat, l->bar);
}

static void measure(struct natural *nat, const struct room_at *rooms, int n, int64_t now)
{
	memset(nat, 0, sizeof *nat);
	for (int i = 0; i < n; i++) {
		json_t *r = rooms[i].room;
		const char *id = jstr(r, "id"), *name = jstr(r, "name"), *p = jstr(r, "patient");
		const char *state = jstr(r, "state");
		struct alarm_cell al;
		char t[128];
		int w;

		nat->id = maxi(nat->id, id ? sb_cols(id) : 1);
		nat->name = maxi(nat->name, name ? sb_cols(name) : 0);
		for (const char *s = name; s && *s; s += strspn(s, " ")) {
			size_t len = strcspn(s, " ");
			char word[ACU_NAME_MAX + 1];

			snprintf(word, sizeof word, "%.*s", (int)len, s);
			nat->word = maxi(nat->word, sb_cols(word));
			s += len;
		}
		nat->patient = maxi(nat->patient, p ? sb_cols(p) : 1);
		alarm_labels(&al, r);
		nat->alarms = maxi(nat->alarms, alarm_cols(&al, 0, al.n));
		for (int k = 0; k < al.n; k++)
			nat->label = maxi(nat->label, sb_cols(al.label[k]));
		time_text(&rooms[i], now, 0, t, sizeof t);
		w = sb_cols(t);
		if (state && strcmp(state, "running") == 0)
			nat->running = maxi(nat->running, w);
		else
			nat->plain = maxi(nat->plain, w);
	}
}

/* How a room's name and alarms wrap, and so how many lines its row takes. */
static int row_cells(const struct layout *l, json_t *room, struct wrapped *name,
		     struct alarm_cell *al)
{
	wrap_words(name, jstr(room, "name") ? jstr(room, "name") : "", l->name);
	alarm_labels(al, room);
	wrap_alarms(al, l->alarms);
	return maxi(name->n, al->lines);
}

/* A room's row: its first line has every column; names and alarms that
 * wrap go on under theirs. */
static void put_row(struct sbuf *b, const struct layout *l, const struct room_at *r,
		    int64_t now, const char *eol)
{
	json_t *room = r->room;
	const char *state = jstr(room, "state"), *patient = jstr(room, "patient"), *col;
	int idle = !state || strcmp(state, "idle") == 0;
	struct alarm_cell al;
	struct wrapped name;
	char t[128], nd[16];
	int h = row_cells(l, room, &name, &al);

	col = time_text(r, now, l->bar, t, sizeof t);
	snprintf(nd, sizeof nd, idle ? "-" : "%lld", jint(room, "needles", 0));
	for (int k = 0; k < h; k++) {
		size_t line = b->len;

		sb_cell(b, k ? "" : jstr(room, "id") ? jstr(room, "id") : "?", l->id, NULL);
		sb_add(b, " ", 1);
		put_wrapped(b, &name, k, l->name);
		sb_add(b, " ", 1);
		sb_cell(b, k ? "" : state ? state : "?", l->state, NULL);
		sb_add(b, " ", 1);
		sb_cell(b, k ? "" : t, l->time, k ? NULL : col);
		sb_add(b, " ", 1);
		if (l->patient) {
			sb_cell(b, k ? "" : patient ? patient : "-", l->patient, NULL);
			sb_add(b, " ", 1);
		}
		if (l->needles) {
			sb_cell(b, k ? "" : nd, l->needles, NULL);
			sb_add(b, " ", 1);
		}
		sb_cell(b, k ? "" : stim_text(room), l->stim, NULL);
		sb_add(b, " ", 1);
		put_alarm_line(b, &al, k, l->alarms);
		while (b->len > line && b->s[b->len - 1] == ' ') /* no trailing blanks */
			b->s[--b->len] = '\0';
		sb_puts(b, eol);
	}
}

/* The table of rooms; eol ends each line (the board also clears to its end).
 * cols 0 is a pipe: nothing is cut. At most maxrows lines are written, the
 * last saying how many rooms did not fit; returns how many. */
int render_table(struct sbuf *b, const struct room_at *rooms, int n, int cols, int64_t now,
		 int maxrows, const char *eol)
{
	struct natural nat;
	struct layout l;
	struct alarm_cell al;
	struct wrapped name;
	int lines = 0, rest = 0, i;

	if (maxrows < 1)
		return 0;
	measure(&nat, rooms, n, now);
	layout_for(&l, &nat, cols);
	if (acuctl_opts.colour)
		sb_puts(b, C_BOLD);
	sb_cell(b, "ID", l.id + 1, NULL);
	sb_cell(b, "NAME", l.name + 1, NULL);
	sb_cell(b, "STATE", l.state + 1, NULL);
	sb_cell(b, "TIME", l.time + 1, NULL);
	if (l.patient)
		sb_cell(b, "PATIENT", l.patient + 1, NULL);
	if (l.needles)
		sb_cell(b, "NEEDLES", l.needles + 1, NULL);
	sb_cell(b, "STIM", l.stim + 1, NULL);
	sb_puts(b, "ALARMS");
	if (acuctl_opts.colour)
		sb_puts(b, C_OFF);
	sb_puts(b, eol);
	lines++;
	for (i = 0; i < n; i++) /* the lines the rows still to come take */
		rest += row_cells(&l, rooms[i].room, &name, &al);
	for (i = 0; i < n; i++) {
		int h = row_cells(&l, rooms[i].room, &name, &al);

		/* A line stays for "... and N more" unless every room left fits. */
		if (lines + rest > maxrows && lines + h + 1 > maxrows) {
			sb_printf(b, "... and %d more rooms (a taller terminal shows them)%s",
				  n - i, eol);
			return lines + 1;
		}
		put_row(b, &l, &rooms[i], now, eol);
		lines += h;
		rest -= h;
	}
	return lines;
}

/* "key: value" lines of the detail views. */
static void kv_begin(struct sbuf *b, const char *key)
{
	int n = sb_cols(key) + 1;

	sb_clean_all(b, key);
	sb_add(b, ":", 1);
	sb_pad(b, (n < 23 ? 23 - n : 1));
}

static void kv_value(struct sbuf *b, const char *key, json_t *v)
{
	kv_begin(b, key);
	put_value(b, v, "yes", "no");
	sb_add(b, "\n", 1);
}

static void kv_seconds(struct sbuf *b, const char *key, json_t *v)
{
	char t[32];

	kv_begin(b, key);
	if (json_is_integer(v)) {
		mmss(json_integer_value(v), t, sizeof t);
		sb_printf(b, "%" JSON_INTEGER_FORMAT " (%s)", json_integer_value(v), t);
	} else {
		put_value(b, v, "yes", "no");
	}
	sb_add(b, "\n", 1);
}

/* A room without pulse lines only gates a stimulator that makes its own
 * pulses: a profile's rate is the stimulator's setting there, not acud's. */
static int gate_only(json_t *stim)
{
	return json_is_false(json_object_get(stim, "pulse_lines"));
}

#define GATE_ONLY "gate only (the stimulator sets its own rate)"

static void show_stim_detail(struct sbuf *b, json_t *st)
{
	const char *key;
	json_t *v, *ch;
	size_t i;

	if (!json_is_object(st)) {
		kv_value(b, "stim", st);
		return;
	}
	json_object_foreach(st, key, v) {
		char label[64];

		if (strcmp(key, "channels") == 0 && json_is_array(v)) {
			json_array_foreach(v, i, ch) {
				json_t *p = json_object_get(ch, "pulses");

				snprintf(label, sizeof label, "stim.channel %lld",
					 jint(ch, "channel", (long long)i + 1));
				kv_begin(b, label);
				sb_printf(b, "%s, %lld s delivered",
					  json_is_true(json_object_get(ch, "on")) ? "on" : "off",
					  jint(ch, "delivered_s", 0));
				if (json_is_integer(p) && !gate_only(st))
					sb_printf(b, ", %" JSON_INTEGER_FORMAT " pulse%s",
						  json_integer_value(p),
						  json_integer_value(p) == 1 ? "" : "s");
				sb_add(b, "\n", 1);
			}
			continue;
		}
		snprintf(label, sizeof label, "stim.%.40s", key);
		if (strcmp(key, "pulse_lines") == 0 && json_is_boolean(v)) {
			kv_begin(b, label);
			sb_puts(b, json_is_true(v) ?
					   "yes (acud makes each pulse at the profile's rate)\n" :
					   "no: " GATE_ONLY "\n");
		} else if (strcmp(key, "missed_pulses") == 0 && gate_only(st) &&
			   jint(st, key, 0) == 0) {
			continue; /* acud makes no pulses here to miss */
		} else {
			kv_value(b, label, v);
		}
	}
}

static void show_alarms_detail(struct sbuf *b, json_t *room)
{
	json_t *al[MAX_ALARMS];
	int n = sorted_alarms(room, al);

	if (!n) {
		kv_begin(b, "alarms");
		sb_puts(b, "none\n");
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *kind = jstr(al[i], "kind"), *prio = jstr(al[i], "priority");
		const char *since = jstr(al[i], "since"), *sil = jstr(al[i], "silenced_until");
		const char *col = prio_colour(prio);
		char label[64];

		snprintf(label, sizeof label, "alarm %.40s", kind ? kind : "?");
		kv_begin(b, label);
		if (col)
			sb_puts(b, col);
		sb_clean_all(b, prio ? prio : "?");
		if (col)
			sb_puts(b, C_OFF);
		if (since) {
			sb_puts(b, ", since ");
			sb_clean_all(b, since);
		}
		sb_puts(b, ", ");
		if (sil) {
			sb_puts(b, "silenced until ");
			sb_clean_all(b, sil);
		} else {
			sb_puts(b, "not silenced");
		}
		sb_add(b, "\n", 1);
	}
}

/* Every field of the room object, the known ones in a sensible order with
 * the time line after the state, then anything newer acud adds. */
static void show_room_detail(struct sbuf *b, json_t *room)
{
	static const char *const order[] = {
		"id", "name", "state", "patient", "practitioner", "started_at", "ends_at",
		"duration_s", "remaining_s", "overdue_s", "paused_s", "needles", "profile",
		"flags", "stim", "checkin_due_at", "checkins", "alarms", "alarm_level",
		"attention", NULL,
	};
	struct room_at r = { room, acuctl_now_ms() };
	const char *key, *col;
	json_t *v;
	char t[128];

	for (int i = 0; order[i]; i++) {
		key = order[i];
		v = json_object_get(room, key);
		if (strcmp(key, "alarms") == 0) {
			show_alarms_detail(b, room);
			continue;
		}
		if (!v)
			continue;
		if (strcmp(key, "stim") == 0) {
			show_stim_detail(b, v);
		} else if (strlen(key) > 2 && strcmp(key + strlen(key) - 2, "_s") == 0) {
			kv_seconds(b, key, v);
		} else {
			kv_value(b, key, v);
		}
		if (strcmp(key, "state") == 0) {
			col = time_text(&r, r.at, 20, t, sizeof t);
			kv_begin(b, "time");
			sb_text(b, t, (int)sizeof t, col);
			sb_add(b, "\n", 1);
		}
	}
	json_object_foreach(room, key, v) {
		int known = 0;

		for (int i = 0; order[i]; i++)
			known |= strcmp(key, order[i]) == 0;
		if (!known)
			kv_value(b, key, v);
	}
}

/* The one line a session command answers with, e.g.
 * "room 1: running, 20:00 left, 6 needles". */
static void room_line(struct sbuf *b, json_t *room)
{
	const char *state = jstr(room, "state"), *id = jstr(room, "id");
	const char *attention = jstr(room, "attention"), *col;
	struct room_at r = { room, acuctl_now_ms() };
	json_t *al[MAX_ALARMS], *stim = json_object_get(room, "stim");
	long long needles = jint(room, "needles", 0);
	int n;
	char t[128];

	sb_puts(b, "room ");
	sb_clean_all(b, id ? id : "?");
	sb_puts(b, ": ");
	sb_clean_all(b, state ? state : "?");
	if (state && strcmp(state, "idle") != 0) {
		col = time_text(&r, r.at, 0, t, sizeof t);
		if (strncmp(t, "paused ", 7) == 0)
			memmove(t, t + 7, strlen(t + 7) + 1);
		sb_puts(b, ", ");
		sb_text(b, t, (int)sizeof t, col);
		sb_printf(b, ", %lld needle%s", needles, needles == 1 ? "" : "s");
		if (json_is_true(json_object_get(stim, "on")))
			sb_puts(b, gate_only(stim) ? ", stim on, " GATE_ONLY : ", stim on");
		else if (json_is_true(json_object_get(stim, "armed")))
			sb_puts(b, gate_only(stim) ? ", stim armed, " GATE_ONLY : ", stim armed");
		else if (jstr(stim, "blocked")) {
			sb_puts(b, ", stim blocked (");
			sb_clean_all(b, jstr(stim, "blocked"));
			sb_puts(b, ")");
		}
	}
	n = sorted_alarms(room, al);
	for (int i = 0; i < n; i++) {
		const char *prio = jstr(al[i], "priority"), *c = prio_colour(prio);

		sb_puts(b, i ? ", " : ", alarms: ");
		if (c)
			sb_puts(b, c);
		sb_clean_all(b, jstr(al[i], "kind") ? jstr(al[i], "kind") : "?");
		sb_puts(b, " (");
		sb_clean_all(b, prio ? prio : "?");
		if (jstr(al[i], "silenced_until")) {
			sb_puts(b, ", silenced until ");
			sb_clean_all(b, jstr(al[i], "silenced_until"));
		}
		sb_puts(b, ")");
		if (c)
			sb_puts(b, C_OFF);
	}
	if (attention) {
		sb_puts(b, ", attention: ");
		sb_clean_all(b, attention);
	}
	sb_add(b, "\n", 1);
}

void render_room_line(json_t *reply)
{
	struct sbuf b = { 0 };
	json_t *room = json_object_get(reply, "room");

	if (json_is_object(room))
		room_line(&b, room);
	else
		sb_puts(&b, "done\n");
	sb_flush(&b, stdout);
	sb_free(&b);
}

void render_status(json_t *reply)
{
	json_t *rooms = json_object_get(reply, "rooms"), *room = json_object_get(reply, "room");
	struct sbuf b = { 0 };

	if (json_is_object(room)) {
		show_room_detail(&b, room);
	} else if (json_is_array(rooms) && json_array_size(rooms) == 0) {
		sb_puts(&b, "no rooms configured\n");
	} else if (json_is_array(rooms)) {
		size_t n = json_array_size(rooms);
		struct room_at *br = calloc(n, sizeof *br);
		int64_t now = acuctl_now_ms();

		if (!br)
			acuctl_die(RC_UNREACHABLE, "out of memory");
		for (size_t i = 0; i < n; i++) {
			br[i].room = json_array_get(rooms, i);
			br[i].at = now;
		}
		render_table(&b, br, (int)n, isatty(STDOUT_FILENO) ? term_cols() : 0, now, 1 << 30,
			     "\n");
		if (isatty(STDOUT_FILENO))
			sb_clip(&b, term_cols() - 1);
		free(br);
	} else {
		sb_puts(&b, "no rooms in the reply\n");
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

static void profile_freq(json_t *p, char *buf, size_t len)
{
	const char *mode = jstr(p, "mode");
	long long f = jint(p, "frequency_hz", 0);

	if (mode && strcmp(mode, "dense-disperse") == 0)
		snprintf(buf, len, "%lld/%lld Hz", f, jint(p, "alt_frequency_hz", 0));
	else if (mode && strcmp(mode, "intermittent") == 0)
		snprintf(buf, len, "%lld Hz %lld/%llds", f, jint(p, "on_s", 0), jint(p, "off_s", 0));
	else
		snprintf(buf, len, "%lld Hz", f);
}

void render_profiles(json_t *reply)
{
	json_t *list = json_object_get(reply, "profiles"), *p;
	struct sbuf b = { 0 };
	int namew = 4, cols = term_cols(), descw;
	size_t i;

	if (json_array_size(list) == 0) {
		puts("no profiles configured");
		return;
	}
	json_array_foreach(list, i, p) {
		const char *name = jstr(p, "name");
		int w = name ? sb_cols(name) : 1;

		namew = w > namew ? w : namew;
	}
	namew = namew > 20 ? 20 : namew;
	descw = cols - (namew + 1 + 15 + 14 + 9);
	if (acuctl_opts.colour)
		sb_puts(&b, C_BOLD);
	sb_cell(&b, "NAME", namew + 1, NULL);
	sb_cell(&b, "MODE", 15, NULL);
	sb_cell(&b, "FREQ", 14, NULL);
	sb_cell(&b, "DURATION", 9, NULL);
	sb_puts(&b, "DESCRIPTION");
	if (acuctl_opts.colour)
		sb_puts(&b, C_OFF);
	sb_add(&b, "\n", 1);
	json_array_foreach(list, i, p) {
		json_t *d = json_object_get(p, "duration_s");
		char freq[64], dur[32];

		profile_freq(p, freq, sizeof freq);
		if (json_is_integer(d))
			mmss(json_integer_value(d), dur, sizeof dur);
		else
			snprintf(dur, sizeof dur, "session");
		sb_cell(&b, jstr(p, "name") ? jstr(p, "name") : "?", namew, NULL);
		sb_add(&b, " ", 1);
		sb_cell(&b, jstr(p, "mode") ? jstr(p, "mode") : "?", 14, NULL);
		sb_add(&b, " ", 1);
		sb_cell(&b, freq, 13, NULL);
		sb_add(&b, " ", 1);
		sb_cell(&b, dur, 8, NULL);
		sb_add(&b, " ", 1);
		sb_text(&b, jstr(p, "description") ? jstr(p, "description") : "", descw, NULL);
		sb_add(&b, "\n", 1);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

void render_profile(json_t *reply)
{
	static const char *const order[] = {
		"name", "description", "mode", "frequency_hz", "alt_frequency_hz", "switch_s",
		"on_s", "off_s", "pulse_width_us", "delay_s", "duration_s", "channels",
		"pregnancy_safe", NULL,
	};
	json_t *p = json_object_get(reply, "profile"), *v;
	struct sbuf b = { 0 };
	const char *key;

	for (int i = 0; order[i]; i++) {
		key = order[i];
		v = json_object_get(p, key);
		if (!v)
			continue;
		if (strcmp(key, "duration_s") == 0 && json_is_null(v)) {
			kv_begin(&b, key);
			sb_puts(&b, "- (the rest of the session)\n");
		} else if (strcmp(key, "channels") == 0 && json_is_null(v)) {
			kv_begin(&b, key);
			sb_puts(&b, "all of the room's\n");
		} else if (strcmp(key, "duration_s") == 0 || strcmp(key, "delay_s") == 0) {
			kv_seconds(&b, key, v);
		} else {
			kv_value(&b, key, v);
		}
	}
	json_object_foreach(p, key, v) {
		int known = 0;

		for (int i = 0; order[i]; i++)
			known |= strcmp(key, order[i]) == 0;
		if (!known)
			kv_value(&b, key, v);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

/* key=value, quoted when it has spaces; nested objects flattened one level
 * ("session" records only their gist: the whole room object is in --json). */
static void put_detail(struct sbuf *b, const char *key, json_t *v, int depth)
{
	static const char *const gist[] = {
		"patient", "practitioner", "started_at", "duration_s", "paused_s",
		"needles", "profile", "flags", NULL,
	};
	char sub[128];
	const char *k;
	json_t *e;

	if (json_is_null(v))
		return;
	if (json_is_object(v) && depth == 0) {
		if (strcmp(key, "session") == 0) {
			for (int i = 0; gist[i]; i++)
				if ((e = json_object_get(v, gist[i])))
					put_detail(b, gist[i], e, 1);
			return;
		}
		json_object_foreach(v, k, e) {
			snprintf(sub, sizeof sub, "%.60s.%.60s", key, k);
			put_detail(b, sub, e, 1);
		}
		return;
	}
	sb_add(b, " ", 1);
	sb_clean_all(b, key);
	sb_add(b, "=", 1);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (!*s || strpbrk(s, " \t\"=")) {
			char *q = json_dumps(v, JSON_ENCODE_ANY);

			sb_clean_all(b, q ? q : "?");
			free(q);
			return;
		}
	}
	if (json_is_array(v) && json_array_size(v) == 0)
		sb_puts(b, "none");
	else
		put_value(b, v, "yes", "no");
}

void render_history(json_t *reply)
{
	json_t *list = json_object_get(reply, "entries"), *e, *v;
	struct sbuf b = { 0 };
	int roomw = 2, typew = 4;
	const char *key;
	size_t i;

	if (json_array_size(list) == 0) {
		puts("no history entries");
		return;
	}
	json_array_foreach(list, i, e) {
		const char *room = jstr(e, "room"), *type = jstr(e, "type");
		int w;

		if (room && (w = sb_cols(room)) > roomw)
			roomw = w > 8 ? 8 : w;
		if (type && (w = sb_cols(type)) > typew)
			typew = w > 12 ? 12 : w;
	}
	json_array_foreach(list, i, e) {
		const char *ts = jstr(e, "ts"), *room = jstr(e, "room"), *type = jstr(e, "type");
		char tbuf[40];

		if (!ts) {
			acu_rfc3339(jint(e, "ts_ns", 0), tbuf, sizeof tbuf);
			ts = tbuf;
		}
		sb_cell(&b, ts, 20, NULL);
		sb_add(&b, " ", 1);
		sb_cell(&b, room ? room : "-", roomw, NULL);
		sb_add(&b, " ", 1);
		sb_text(&b, type ? type : "?", typew, NULL);
		if (json_object_size(e) > 0)
			sb_pad(&b, typew - sb_cols(type ? type : "?"));
		json_object_foreach(e, key, v) {
			if (strcmp(key, "ts") && strcmp(key, "ts_ns") && strcmp(key, "room") &&
			    strcmp(key, "type"))
				put_detail(&b, key, v, 0);
		}
		/* no trailing blanks when an entry has no details */
		while (b.len && b.s[b.len - 1] == ' ')
			b.s[--b.len] = '\0';
		sb_add(&b, "\n", 1);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

void render_reload(json_t *reply)
{
	(void)reply;
	puts("acud: configuration reloaded");
}

void render_version(json_t *reply)
{
	struct sbuf b = { 0 };
	const char *v = jstr(reply, "version"), *user = jstr(reply, "user");
	const char *role = jstr(reply, "role");
	long long proto = jint(reply, "protocol", -1);

	sb_printf(&b, "acuctl %s (protocol %d)\nacud   ", ACUD_VERSION, ACUD_PROTOCOL);
	sb_clean_all(&b, v ? v : "?");
	if (proto >= 0)
		sb_printf(&b, " (protocol %lld)", proto);
	sb_add(&b, "\n", 1);
	if (user) {
		sb_puts(&b, "you    ");
		sb_clean_all(&b, user);
		if (role) {
			sb_puts(&b, " (");
			sb_clean_all(&b, role);
			sb_puts(&b, ")");
		}
		sb_add(&b, "\n", 1);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
	if (proto >= 0 && proto != ACUD_PROTOCOL)
		fprintf(stderr, "acuctl: warning: acud speaks protocol %lld, acuctl %d\n", proto,
			ACUD_PROTOCOL);
}

void render_sim_input(json_t *reply)
{
	struct sbuf b = { 0 };
	const char *line = jstr(reply, "line");

	sb_puts(&b, "line ");
	sb_clean_all(&b, line ? line : "?");
	sb_printf(&b, " set to %lld\n", jint(reply, "level", -1));
	sb_flush(&b, stdout);
	sb_free(&b);
}

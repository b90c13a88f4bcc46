/* The technician's wiring check (SPEC §11): `acuctl lines` lists every
 * configured GPIO line, `acuctl lines --watch` then prints each input edge as
 * it happens ("press the call button in room 3 now"), and `acuctl test`
 * reports the lamp test acud started. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "acuctl.h"

static void put_level(struct sbuf *b, json_t *v)
{
	if (json_is_integer(v))
		sb_printf(b, "%lld", (long long)json_integer_value(v));
	else
		sb_puts(b, "?");
}

/* "room 3 call" or "heartbeat", with "gate2" for a channel's line; padded to
 * width when it is above 0. */
static void put_function(struct sbuf *b, json_t *l, int width)
{
	struct sbuf f = { 0 };
	const char *room = jstr(l, "room"), *fn = jstr(l, "function");

	if (room) {
		sb_puts(&f, "room ");
		sb_clean_all(&f, room);
		sb_puts(&f, " ");
	}
	sb_clean_all(&f, fn ? fn : "?");
	if (jint(l, "channel", 0) > 0)
		sb_printf(&f, "%lld", jint(l, "channel", 0));
	if (width > 0)
		sb_cell(b, f.s ? f.s : "", width, NULL);
	else
		sb_puts(b, f.s ? f.s : "");
	sb_free(&f);
}

void render_lines(json_t *reply)
{
	struct sbuf b = { 0 };
	json_t *l;
	size_t i;

	sb_printf(&b, "%-22s %-10s %-7s %-24s %-11s %-3s %s\n", "LINE", "CHIP", "OFFSET",
		  "CONSUMER", "POLARITY", "DIR", "LEVEL");
	json_array_foreach(json_object_get(reply, "lines"), i, l) {
		const char *chip = jstr(l, "chip"), *name = jstr(l, "name");
		const char *dir = jstr(l, "direction"), *pol = jstr(l, "polarity");
		json_t *deb = json_object_get(l, "debounce");
		char off[48];

		put_function(&b, l, 22);
		sb_add(&b, " ", 1);
		sb_cell(&b, chip ? chip : "?", 10, NULL);
		sb_add(&b, " ", 1);
		snprintf(off, sizeof off, "%lld", jint(l, "offset", -1));
		sb_cell(&b, off, 7, NULL);
		sb_add(&b, " ", 1);
		sb_cell(&b, jstr(l, "consumer") ? jstr(l, "consumer") : "?", 24, NULL);
		sb_add(&b, " ", 1);
		sb_cell(&b, pol ? pol : "?", 11, NULL);
		sb_add(&b, " ", 1);
		sb_cell(&b, dir && strcmp(dir, "input") == 0 ? "in" : "out", 3, NULL);
		sb_add(&b, " ", 1);
		put_level(&b, json_object_get(l, "level"));
		if (name) {
			sb_puts(&b, "  name ");
			sb_clean_all(&b, name);
		}
		if (deb)
			sb_printf(&b, "  debounce %lld ms (%s)", jint(deb, "ms", 0),
				  jstr(deb, "by") && strcmp(jstr(deb, "by"), "kernel") == 0 ?
				  "kernel" : "acud");
		sb_add(&b, "\n", 1);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

/* One edge: "10:42:07 room 3 call (offset 16): 1, 1 edge". */
static void render_edge(json_t *ev)
{
	struct sbuf b = { 0 };
	const char *at = jstr(ev, "at");
	long long edges = jint(ev, "edges", 0);

	sb_clean_all(&b, at && strlen(at) >= 19 ? at + 11 : "?");
	if (b.len > 8)
		b.len = 8;
	sb_add(&b, " ", 1);
	put_function(&b, ev, 0);
	sb_printf(&b, " (offset %lld): ", jint(ev, "offset", -1));
	if (json_is_integer(json_object_get(ev, "level")))
		sb_puts(&b, jint(ev, "level", 0) ? "active" : "inactive");
	else
		sb_puts(&b, "CANNOT BE READ");
	sb_printf(&b, ", %lld edge%s\n", edges, edges == 1 ? "" : "s");
	sb_flush(&b, stdout);
	sb_free(&b);
}

int lines_run(const struct command *cmd, struct args *a)
{
	json_t *req = args_request(cmd, a), *reply;
	int watch = json_is_true(json_object_get(req, "watch"));
	struct conn c;

	conn_open(&c);
	conn_send(&c, &req, 1);
	reply = conn_reply(&c, req);
	json_decref(req);
	if (!reply) {
		conn_close(&c);
		return RC_REFUSED;
	}
	if (!acuctl_opts.json)
		cmd->show(reply);
	else if (watch)
		json_dumpf(reply, stdout, JSON_COMPACT), fputc('\n', stdout);
	json_decref(reply);
	fflush(stdout);
	if (!watch) {
		conn_close(&c);
		return RC_DONE;
	}
	if (!acuctl_opts.json)
		printf("watching input edges; Ctrl-C to stop\n");
	fflush(stdout);
	term_catch_quit();
	for (;;) {
		char why[256];
		size_t len;
		char *line = conn_next_line(&c, INT64_MAX, &len, why, sizeof why);
		json_t *ev;

		if (!line)
			acuctl_unreachable("event stream: %s", why);
		if (acuctl_opts.json) {
			fwrite(line, 1, len, stdout);
			fputc('\n', stdout);
		} else if ((ev = json_loadb(line, len, 0, NULL))) {
			render_edge(ev);
			json_decref(ev);
		}
		if (fflush(stdout) == EOF)
			return RC_DONE;
	}
}

void render_test(json_t *reply)
{
	struct sbuf b = { 0 };
	const char *room = jstr(reply, "room");

	sb_puts(&b, "room ");
	sb_clean_all(&b, room ? room : "?");
	sb_printf(&b, ": alarm line test for %lld s: high (2 Hz), medium (0.5 Hz), then low "
		  "(steady)\n", jint(reply, "duration_s", 0));
	sb_flush(&b, stdout);
	sb_free(&b);
}

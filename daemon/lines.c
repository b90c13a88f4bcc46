/* What the technician sees of the GPIO lines (SPEC §11): every configured
 * line with its room, function, chip offset, consumer name, polarity and
 * level (`lines`), and each input edge as it happens (`lines --watch`). */
#include <string.h>

#include "daemon.h"
#include "gpio.h"

static json_t *level_json(int level)
{
	return level < 0 ? json_null() : json_integer(level);
}

/* The fields that name a line, shared by the listing and the edge events. */
static json_t *line_json(struct acud *d, const struct gpio_line *l)
{
	json_t *o = json_pack("{s:o,s:s,s:s,s:i}", "room",
			      l->room[0] ? json_string(l->room) : json_null(), "function", l->role,
			      "consumer", l->consumer, "offset", gpio_offset(d->gpio, l));

	if (l->channel > 0)
		json_object_set_new(o, "channel", json_integer(l->channel));
	if (l->spec.offset < 0)
		json_object_set_new(o, "name", json_string(l->spec.name));
	return o;
}

json_t *lines_list(struct acud *d)
{
	json_t *a = json_array();
	struct gpio *g = d->gpio;

	for (int i = 0; g && i < g->nlines; i++) {
		const struct gpio_line *l = &g->lines[i];
		json_t *o = line_json(d, l);
		int level = gpio_active(l); /* the pulse thread writes pulse lines */

		json_object_set_new(o, "chip", json_string(d->cfg->chip));
		json_object_set_new(o, "direction", json_string(l->dir == GPIO_OUT ? "output" : "input"));
		json_object_set_new(o, "polarity",
				    json_string(l->spec.active_low ? "active-low" : "active-high"));
		/* Outputs: as last written (null after a failed write); inputs:
		 * as last read, which every request brings up to date first. */
		json_object_set_new(o, "level", level_json(level));
		json_object_set_new(o, "physical", level < 0 ? json_null() :
				    json_integer(level ^ l->spec.active_low));
		if (l->debounce_us > 0)
			json_object_set_new(o, "debounce", json_pack("{s:i,s:s}", "ms",
					    l->debounce_us / 1000, "by",
					    l->debounced ? "kernel" : "acud"));
		json_array_append_new(a, o);
	}
	return a;
}

void lines_edge(struct acud *d, const struct gpio_line *l, int level, int edges,
		const struct acu_now *now)
{
	char at[40];
	json_t *ev;

	if (edges <= 0 && level >= 0)
		return;
	acu_rfc3339(now->wall, at, sizeof at);
	ev = line_json(d, l);
	json_object_set_new(ev, "event", json_string("line"));
	json_object_set_new(ev, "level", level_json(level));
	json_object_set_new(ev, "edges", json_integer(edges));
	json_object_set_new(ev, "at", json_string(at));
	json_object_set_new(ev, "mono_ns", json_integer(now->mono));
	publish(d, PUBLISH_LINE, ev);
}

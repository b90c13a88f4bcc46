/* The real backend on libgpiod 2.x (Debian 13 trixie, Raspberry Pi OS, and
 * bookworm-backports): the kernel's GPIO character device, v2 uAPI. Every
 * gpiod_* call of libgpiod 2.x lives in this file; gpio-gpiod1.c is the same
 * for 1.6, and the two behave alike above the backend. One request per line,
 * held for the daemon's lifetime, so that each line carries its own consumer
 * name (acud:room2:gate1 in gpioinfo). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gpiod.h>

#include "daemon.h"
#include "gpio.h"

/* Edges read at a time; more are read in further passes. */
#define GD2_EVENTS 16

struct gd2_line {
	struct gpiod_line_request *req;
	struct gpiod_edge_event_buffer *buf; /* inputs only */
	unsigned int offset;
};

/* 1 when the chip open as CHIP is called WANT by name or label. */
static int gd2_chip_is(struct gpiod_chip *chip, const char *want)
{
	struct gpiod_chip_info *info = gpiod_chip_get_info(chip);
	int match;

	if (!info)
		return 0;
	match = strcmp(gpiod_chip_info_get_name(info), want) == 0 ||
		strcmp(gpiod_chip_info_get_label(info), want) == 0;
	gpiod_chip_info_free(info);
	return match;
}

static int gd2_is_chip_entry(const struct dirent *d)
{
	return strncmp(d->d_name, "gpiochip", 8) == 0;
}

/* [gpio] chip: a path (/dev/gpiochip4), a number (4), a name (gpiochip0) or
 * a label (pinctrl-rp1: the Pi 5's header, whichever gpiochipN it is on this
 * kernel). libgpiod 2 opens paths only: the rest is a walk of /dev. */
static struct gpiod_chip *gd2_chip_open(const char *want, char *err, size_t errlen)
{
	struct dirent **ent = NULL;
	struct gpiod_chip *chip = NULL;
	char path[300];
	int n, saved = 0;

	if (want[0] == '/') {
		chip = gpiod_chip_open(want);
		if (!chip)
			snprintf(err, errlen, "gpio chip %s: %s", want, strerror(errno));
		return chip;
	}
	if (want[0] && strspn(want, "0123456789") == strlen(want)) {
		snprintf(path, sizeof path, "/dev/gpiochip%s", want);
		chip = gpiod_chip_open(path);
		if (!chip)
			snprintf(err, errlen, "gpio chip %s (%s): %s", want, path, strerror(errno));
		return chip;
	}
	n = scandir("/dev", &ent, gd2_is_chip_entry, alphasort);
	if (n < 0) {
		snprintf(err, errlen, "gpio chip %s: cannot list /dev: %s", want, strerror(errno));
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "/dev/%s", ent[i]->d_name);
		if (!chip && gpiod_is_gpiochip_device(path)) {
			struct gpiod_chip *c = gpiod_chip_open(path);

			if (!c)
				saved = errno; /* a chip we may not open: said if none matches */
			else if (gd2_chip_is(c, want))
				chip = c;
			else
				gpiod_chip_close(c);
		}
		free(ent[i]);
	}
	free(ent);
	if (!chip) {
		if (saved)
			snprintf(err, errlen, "gpio chip %s: no chip of that name or label could be "
				 "opened (%s)", want, strerror(saved));
		else
			snprintf(err, errlen, "gpio chip %s: no chip of that path, name or label",
				 want);
	}
	return chip;
}

static int gd2_open(struct gpio *g, const struct acu_cfg *cfg, char *err, size_t errlen)
{
	struct gpiod_chip *chip = gd2_chip_open(cfg->chip, err, errlen);

	if (!chip)
		return -1;
	g->priv = chip;
	return 0;
}

/* The chip's offset of SPEC, or -1 (errno set) when the chip has no such line. */
static int gd2_offset(struct gpio *g, const struct acu_line *spec)
{
	struct gpiod_chip_info *info;
	size_t nlines;

	if (spec->offset < 0)
		return gpiod_chip_get_line_offset_from_name(g->priv, spec->name);
	info = gpiod_chip_get_info(g->priv);
	if (!info)
		return -1;
	nlines = gpiod_chip_info_get_num_lines(info);
	gpiod_chip_info_free(info);
	if ((size_t)spec->offset >= nlines) {
		errno = EINVAL;
		return -1;
	}
	return spec->offset;
}

/* NULL when the request fails, errno set. */
/* bias: outputs, pulled toward their inactive level. debounce: inputs, the
 * kernel's debounce of l->debounce_us (room buttons only: the interlock is
 * latched, S5, and a debounce would swallow an opening shorter than itself). */
static struct gpiod_line_request *gd2_request_one(struct gpio *g, struct gpio_line *l,
						  unsigned int offset, int bias, int debounce)
{
	struct gpiod_line_settings *ls = gpiod_line_settings_new();
	struct gpiod_line_config *lc = gpiod_line_config_new();
	struct gpiod_request_config *rc = gpiod_request_config_new();
	struct gpiod_line_request *req = NULL;
	int ok = ls && lc && rc;
	int saved;

	/* Polarity is applied above the backend (gpio.c): the kernel's
	 * active-low flag stays off, as with libgpiod 1.6, so gpioinfo shows
	 * the same and the values here are physical. */
	if (ok && l->dir == GPIO_OUT) {
		/* Requested at its physical inactive level: no glitch. */
		ok = gpiod_line_settings_set_direction(ls, GPIOD_LINE_DIRECTION_OUTPUT) == 0 &&
		     gpiod_line_settings_set_output_value(ls, l->spec.active_low
						? GPIOD_LINE_VALUE_ACTIVE
						: GPIOD_LINE_VALUE_INACTIVE) == 0;
		/* Bias toward the inactive level too: a released line (crash,
		 * exit) that the chip turns back into an input rests inactive. */
		if (ok && bias)
			ok = gpiod_line_settings_set_bias(ls, l->spec.active_low
						? GPIOD_LINE_BIAS_PULL_UP
						: GPIOD_LINE_BIAS_PULL_DOWN) == 0;
	} else if (ok) {
		ok = gpiod_line_settings_set_direction(ls, GPIOD_LINE_DIRECTION_INPUT) == 0 &&
		     gpiod_line_settings_set_edge_detection(ls, GPIOD_LINE_EDGE_BOTH) == 0 &&
		     gpiod_line_settings_set_event_clock(ls, GPIOD_LINE_CLOCK_MONOTONIC) == 0;
		if (ok && debounce && l->debounce_us > 0)
			gpiod_line_settings_set_debounce_period_us(ls, (unsigned long)l->debounce_us);
	}
	if (ok)
		ok = gpiod_line_config_add_line_settings(lc, &offset, 1, ls) == 0;
	if (ok) {
		gpiod_request_config_set_consumer(rc, l->consumer);
		/* Room for a burst of edges between two reads (S5). */
		gpiod_request_config_set_event_buffer_size(rc, 64);
		req = gpiod_chip_request_lines(g->priv, rc, lc);
	} else if (!errno)
		errno = ENOMEM;
	saved = errno;
	if (rc)
		gpiod_request_config_free(rc);
	if (lc)
		gpiod_line_config_free(lc);
	if (ls)
		gpiod_line_settings_free(ls);
	errno = saved;
	return req;
}

static int gd2_request(struct gpio *g, struct gpio_line *l, char *err, size_t errlen)
{
	struct gd2_line *gl;
	struct gpiod_line_info *info;
	int off;

	errno = 0;
	off = gd2_offset(g, &l->spec);
	if (off < 0) {
		snprintf(err, errlen, "no such line on this chip%s%s",
			 errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	info = gpiod_chip_get_line_info(g->priv, (unsigned int)off);
	if (!info) {
		snprintf(err, errlen, "cannot look at line %d: %s", off, strerror(errno));
		return -1;
	}
	if (gpiod_line_info_is_used(info)) {
		const char *who = gpiod_line_info_get_consumer(info);

		snprintf(err, errlen, "busy: in use by %s", who && *who ? who : "another program");
		gpiod_line_info_free(info);
		return -1;
	}
	gpiod_line_info_free(info);
	gl = calloc(1, sizeof *gl);
	if (!gl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	gl->offset = (unsigned int)off;
	gl->req = gd2_request_one(g, l, gl->offset, l->dir == GPIO_OUT, 1);
	l->debounced = gl->req && l->dir == GPIO_IN && l->debounce_us > 0;
	/* Chips without bias support: as 1.6 does, the request without it.
	 * An input the kernel cannot debounce: the daemon does (button.c). */
	if (!gl->req && (l->dir == GPIO_OUT || l->debounce_us > 0))
		gl->req = gd2_request_one(g, l, gl->offset, 0, 0);
	if (!gl->req) {
		snprintf(err, errlen, "cannot request: %s", strerror(errno));
		free(gl);
		return -1;
	}
	if (l->dir == GPIO_IN) {
		gl->buf = gpiod_edge_event_buffer_new(GD2_EVENTS);
		l->fd = gl->buf ? gpiod_line_request_get_fd(gl->req) : -1;
		if (l->fd < 0) {
			snprintf(err, errlen, "cannot watch its edges: %s", strerror(errno));
			if (gl->buf)
				gpiod_edge_event_buffer_free(gl->buf);
			gpiod_line_request_release(gl->req);
			free(gl);
			return -1;
		}
	}
	l->priv = gl;
	return 0;
}

static int gd2_set(struct gpio *g, struct gpio_line *l, int physical)
{
	struct gd2_line *gl = l->priv;

	(void)g;
	if (!gl)
		return -1;
	return gpiod_line_request_set_value(gl->req, gl->offset, physical
					    ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE);
}

/* S5: every queued edge counts, not only the level now: a press shorter
 * than one loop pass, or made during a stall, is still seen. Their number
 * only, as with 1.6: an edge's rising/falling label is the level the kernel
 * read when it handled it, so both edges of a short pulse can carry the same
 * label. The timestamps tell how long such a burst lasted (debug log). */
static int gd2_read_input(struct gpio *g, struct gpio_line *l, int *edges)
{
	struct gd2_line *gl = l->priv;
	uint64_t first = 0, last = 0;
	int rc, n, seen = 0;
	enum gpiod_line_value v;

	(void)g;
	if (!gl)
		return -1;
	/* A zero timeout polls: read_edge_events() would block on none. */
	while ((rc = gpiod_line_request_wait_edge_events(gl->req, 0)) == 1) {
		n = gpiod_line_request_read_edge_events(gl->req, gl->buf, GD2_EVENTS);
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			struct gpiod_edge_event *ev = gpiod_edge_event_buffer_get_event(gl->buf,
											(unsigned long)i);
			uint64_t ts = ev ? gpiod_edge_event_get_timestamp_ns(ev) : 0;

			if (!seen++)
				first = ts;
			last = ts;
		}
		if (*edges < 1000)
			*edges += n;
	}
	if (rc < 0)
		return -1;
	if (seen > 1)
		log_debug("gpio %s: %d edges within %" PRIu64 " us", l->consumer, seen,
			  (last - first) / 1000);
	v = gpiod_line_request_get_value(gl->req, gl->offset);
	if (v == GPIOD_LINE_VALUE_ERROR)
		return -1;
	return v == GPIOD_LINE_VALUE_ACTIVE;
}

static int gd2_resolve(struct gpio *g, const struct acu_line *spec)
{
	return gd2_offset(g, spec);
}

static void gd2_close(struct gpio *g)
{
	for (int i = 0; i < g->nlines; i++) {
		struct gd2_line *gl = g->lines[i].priv;

		if (!gl)
			continue;
		gpiod_line_request_release(gl->req);
		if (gl->buf)
			gpiod_edge_event_buffer_free(gl->buf);
		free(gl);
		g->lines[i].priv = NULL;
		g->lines[i].fd = -1;
	}
	if (g->priv)
		gpiod_chip_close(g->priv);
	g->priv = NULL;
}

const struct gpio_backend gpio_backend_gpiod = {
	.name = "gpiod",
	.open = gd2_open,
	.request = gd2_request,
	.set = gd2_set,
	.read_input = gd2_read_input,
	.resolve = gd2_resolve,
	.close = gd2_close,
};

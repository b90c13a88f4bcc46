/* The real backend: the kernel's GPIO character device through libgpiod 1.6
 * (the v1 API Debian bookworm ships). Every gpiod_* call of libgpiod 1.x lives
 * in this file; gpio-gpiod2.c is the same for 2.x. Requests are held for the
 * daemon's lifetime. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gpiod.h>

#include "gpio.h"

static int gd_open(struct gpio *g, const struct acu_cfg *cfg, char *err, size_t errlen)
{
	/* A number, a /dev path, a label (pinctrl-rp1) or a name (gpiochip0):
	 * libgpiod 1.6 tries each. */
	struct gpiod_chip *chip = gpiod_chip_open_lookup(cfg->chip);

	if (!chip) {
		snprintf(err, errlen, "gpio chip %s: %s", cfg->chip, strerror(errno));
		return -1;
	}
	g->priv = chip;
	return 0;
}

static struct gpiod_line *gd_line(struct gpio *g, const struct acu_line *spec)
{
	if (spec->offset >= 0)
		return gpiod_chip_get_line(g->priv, (unsigned)spec->offset);
	return gpiod_chip_find_line(g->priv, spec->name);
}

static int gd_request(struct gpio *g, struct gpio_line *l, char *err, size_t errlen)
{
	struct gpiod_line *line;
	int rc;

	line = gd_line(g, &l->spec);
	if (!line) {
		snprintf(err, errlen, "no such line on this chip%s%s",
			 errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (gpiod_line_is_used(line)) {
		snprintf(err, errlen, "busy: in use by %s",
			 gpiod_line_consumer(line) ? gpiod_line_consumer(line) : "another program");
		return -1;
	}
	/* Polarity is applied above the backend; the initial value is the
	 * physical inactive level so the line never glitches active. */
	if (l->dir == GPIO_OUT) {
		/* Bias toward the inactive level too: a released line (crash,
		 * exit) that the chip turns back into an input then rests
		 * inactive; chips without bias support ignore it. */
		rc = gpiod_line_request_output_flags(line, l->consumer,
			l->spec.active_low ? GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP
					   : GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN,
			l->spec.active_low);
		if (rc < 0)
			rc = gpiod_line_request_output(line, l->consumer, l->spec.active_low);
	} else
		rc = gpiod_line_request_both_edges_events(line, l->consumer);
	if (rc < 0) {
		snprintf(err, errlen, "cannot request: %s", strerror(errno));
		return -1;
	}
	l->priv = line;
	if (l->dir == GPIO_IN)
		l->fd = gpiod_line_event_get_fd(line);
	return 0;
}

static int gd_set(struct gpio *g, struct gpio_line *l, int physical)
{
	(void)g;
	return l->priv ? gpiod_line_set_value(l->priv, physical) : -1;
}

/* S5: every queued edge counts, not only the level now: a press shorter
 * than one loop pass, or made during a stall, is still seen. Their number
 * only: the kernel (v1 uAPI, both edges) labels an edge from the level it
 * reads when it handles it, so both edges of a short pulse can carry the
 * same label. */
static int gd_read_input(struct gpio *g, struct gpio_line *l, int *edges)
{
	const struct timespec zero = { 0, 0 };
	struct gpiod_line_event ev[16];
	int rc, n;

	(void)g;
	if (!l->priv)
		return -1;
	while ((rc = gpiod_line_event_wait(l->priv, &zero)) == 1) {
		n = gpiod_line_event_read_multiple(l->priv, ev, sizeof ev / sizeof ev[0]);
		if (n < 0)
			return -1;
		if (*edges < 1000)
			*edges += n;
	}
	if (rc < 0)
		return -1;
	return gpiod_line_get_value(l->priv);
}

static int gd_resolve(struct gpio *g, const struct acu_line *spec)
{
	struct gpiod_line *line = gd_line(g, spec);

	return line ? (int)gpiod_line_offset(line) : -1;
}

static void gd_close(struct gpio *g)
{
	for (int i = 0; i < g->nlines; i++)
		if (g->lines[i].priv) {
			gpiod_line_release(g->lines[i].priv);
			g->lines[i].priv = NULL;
		}
	if (g->priv)
		gpiod_chip_close(g->priv);
	g->priv = NULL;
}

const struct gpio_backend gpio_backend_gpiod = {
	.name = "gpiod",
	.open = gd_open,
	.request = gd_request,
	.set = gd_set,
	.read_input = gd_read_input,
	.resolve = gd_resolve,
	.close = gd_close,
};

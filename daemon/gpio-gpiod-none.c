/* Stands in for the gpiod backend when acud is built against a libgpiod it has
 * no backend for (libgpiod 2.x, Debian 13 trixie, until the v2 backend of issue
 * 15 exists). The Makefile picks it and says so; no gpiod_* call here. acud
 * then runs on the simulated backend only: a config with backend = gpiod is
 * refused when the lines are opened, with this message. */
#include <stdio.h>

#include "gpio.h"

#ifndef ACU_GPIOD_VERSION
#define ACU_GPIOD_VERSION "?"
#endif

static int none_open(struct gpio *g, const struct acu_cfg *cfg, char *err, size_t errlen)
{
	(void)g;
	snprintf(err, errlen, "gpio chip %s: this acud was built against libgpiod %s, for which it "
		 "has no gpiod backend yet (libgpiod 1.x only); only backend = sim works",
		 cfg->chip, ACU_GPIOD_VERSION);
	return -1;
}

static void none_close(struct gpio *g)
{
	(void)g;
}

const struct gpio_backend gpio_backend_gpiod = {
	.name = "gpiod",
	.open = none_open,
	.close = none_close,
};

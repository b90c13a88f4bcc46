/* Backend-independent GPIO: which lines the config names, polarity, all-off. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpio.h"
#include "rtpulse.h"

static void describe(const struct acu_line *l, char *buf, size_t len)
{
	if (l->offset >= 0)
		snprintf(buf, len, "%s%d", l->active_low ? "!" : "", l->offset);
	else
		snprintf(buf, len, "%s%s", l->active_low ? "!" : "", l->name);
}

/* ROOM and ROLE make the consumer name a technician sees in gpioinfo
 * (acud:room2:gate1); a room id longer than fits is cut, which is harmless. */
static int add_line(struct gpio *g, const struct acu_line *spec, enum gpio_dir dir,
		    const char *room, const char *role, int n)
{
	struct gpio_line *l;

	if (!spec->set)
		return 0;
	l = &g->lines[g->nlines++];
	memset(l, 0, sizeof *l);
	l->spec = *spec;
	l->dir = dir;
	l->fd = -1;
	snprintf(l->room, sizeof l->room, "%s", room ? room : "");
	snprintf(l->role, sizeof l->role, "%s", role);
	l->channel = n;
	if (n > 0)
		snprintf(l->consumer, sizeof l->consumer, "acud:%s%s%s%d", room ? room : "",
			 room ? ":" : "", role, n);
	else
		snprintf(l->consumer, sizeof l->consumer, "acud:%s%s%s", room ? room : "",
			 room ? ":" : "", role);
	return 0;
}

static int same_line(const struct acu_line *a, const struct acu_line *b)
{
	if (a->offset >= 0 || b->offset >= 0)
		return a->offset == b->offset;
	return strcmp(a->name, b->name) == 0;
}

struct gpio_line *gpio_find(struct gpio *g, const struct acu_line *spec)
{
	if (!g || !spec->set)
		return NULL;
	for (int i = 0; i < g->nlines; i++)
		if (same_line(&g->lines[i].spec, spec))
			return &g->lines[i];
	return NULL;
}

/* A line named once by offset and once by name (17 and GPIO17) is one line
 * used twice: a config error on every backend, found once the chip has said
 * which offset each name is. */
static int check_aliases(struct gpio *g, const struct acu_cfg *cfg, char *err, size_t errlen)
{
	int *off = calloc((size_t)g->nlines + 1, sizeof *off);
	char a[48], b[48];

	if (!off) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < g->nlines; i++) {
		off[i] = g->be->resolve(g, &g->lines[i].spec);
		for (int j = 0; off[i] >= 0 && j < i; j++) {
			if (off[j] != off[i])
				continue;
			describe(&g->lines[i].spec, a, sizeof a);
			describe(&g->lines[j].spec, b, sizeof b);
			snprintf(err, errlen, "gpio %s: lines %s and %s are the same line (offset %d): "
				 "a line may be used only once", cfg->chip, b, a, off[i]);
			free(off);
			return -1;
		}
	}
	free(off);
	return 0;
}

/* Every line the config names, nothing requested yet, the backend open. */
static struct gpio *gpio_new(const struct acu_cfg *cfg, char *err, size_t errlen)
{
	struct gpio *g = calloc(1, sizeof *g);
	int max = 1; /* the heartbeat */

	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->be = cfg->backend == BACKEND_SIM ? &gpio_backend_sim : &gpio_backend_gpiod;
	/* Its gates and pulses, alarm, interlock, call and presence. */
	for (int i = 0; i < cfg->nrooms; i++)
		max += cfg->rooms[i].nchannels + cfg->rooms[i].npulse + 4;
	g->lines = calloc((size_t)max, sizeof *g->lines);
	if (!g->lines) {
		free(g);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Outputs first, so they are all safe before any input can report. */
	for (int i = 0; i < cfg->nrooms; i++) {
		const struct acu_room_cfg *r = &cfg->rooms[i];
		for (int c = 0; c < r->nchannels; c++)
			add_line(g, &r->gate[c], GPIO_OUT, r->id, "gate", c + 1);
		for (int c = 0; c < r->npulse; c++)
			add_line(g, &r->pulse[c], GPIO_OUT, r->id, "pulse", c + 1);
		add_line(g, &r->alarm, GPIO_OUT, r->id, "alarm", 0);
	}
	add_line(g, &cfg->heartbeat, GPIO_OUT, NULL, "heartbeat", 0);
	for (int i = 0; i < cfg->nrooms; i++)
		add_line(g, &cfg->rooms[i].interlock, GPIO_IN, cfg->rooms[i].id, "interlock", 0);
	/* Room buttons (SPEC §11): debounced, unlike the interlock, whose every
	 * edge counts however short (S5). */
	for (int i = 0; i < cfg->nrooms; i++) {
		int from = g->nlines;

		add_line(g, &cfg->rooms[i].call, GPIO_IN, cfg->rooms[i].id, "call", 0);
		add_line(g, &cfg->rooms[i].presence, GPIO_IN, cfg->rooms[i].id, "presence", 0);
		for (int k = from; k < g->nlines; k++)
			g->lines[k].debounce_us = cfg->debounce_ms * 1000;
	}
	if (g->be->open(g, cfg, err, errlen) < 0) {
		free(g->lines);
		free(g);
		return NULL;
	}
	rtpulse_mutex_init(&g->lock);
	return g;
}

static void gpio_free(struct gpio *g)
{
	pthread_mutex_destroy(&g->lock);
	free(g->lines);
	free(g);
}

int gpio_check_names(const struct acu_cfg *cfg, char *err, size_t errlen)
{
	struct gpio *g;
	int rc;

	/* The sim backend's names are a rule cfg_load() applies already (and
	 * opening it would create its trace file). */
	if (cfg->backend == BACKEND_SIM)
		return 0;
	g = gpio_new(cfg, err, errlen);
	if (!g)
		return 1;
	rc = check_aliases(g, cfg, err, errlen);
	g->be->close(g);
	gpio_free(g);
	return rc;
}

struct gpio *gpio_open(const struct acu_cfg *cfg, char *err, size_t errlen)
{
	struct gpio *g = gpio_new(cfg, err, errlen);

	if (!g)
		return NULL;
	if (check_aliases(g, cfg, err, errlen) < 0) {
		g->be->close(g);
		gpio_free(g);
		return NULL;
	}
	for (int i = 0; i < g->nlines; i++) {
		struct gpio_line *l = &g->lines[i];
		char name[48], why[256];

		if (g->be->request(g, l, why, sizeof why) < 0) {
			describe(&l->spec, name, sizeof name);
			snprintf(err, errlen, "gpio %s line %s: %s", cfg->chip, name, why);
			gpio_close(g);
			return NULL;
		}
		l->active = 0;
	}
	return g;
}

void gpio_close(struct gpio *g)
{
	if (!g)
		return;
	gpio_all_off(g);
	g->be->close(g);
	gpio_free(g);
}

static int set_with(struct gpio *g, struct gpio_line *l, int active,
		    int (*set)(struct gpio *, struct gpio_line *, int))
{
	/* Unknown after a failure: whatever is decided next is written again. */
	int rc = set(g, l, active ^ l->spec.active_low);

	__atomic_store_n(&l->active, rc < 0 ? -1 : active, __ATOMIC_RELAXED);
	return rc < 0 ? -1 : 0;
}

static int set_line(struct gpio *g, struct gpio_line *l, int active)
{
	return set_with(g, l, active, g->be->set);
}

int gpio_offset(struct gpio *g, const struct gpio_line *l)
{
	return g && l ? g->be->resolve(g, &l->spec) : -1;
}

static int set_locked(struct gpio *g, struct gpio_line *l, int active,
		      int (*set)(struct gpio *, struct gpio_line *, int))
{
	int rc;

	if (!l || l->dir != GPIO_OUT)
		return -1;
	pthread_mutex_lock(&g->lock);
	rc = set_with(g, l, !!active, set);
	pthread_mutex_unlock(&g->lock);
	return rc;
}

int gpio_set(struct gpio *g, struct gpio_line *l, int active)
{
	return set_locked(g, l, active, g->be->set);
}

int gpio_set_rt(struct gpio *g, struct gpio_line *l, int active)
{
	return set_locked(g, l, active, g->be->set_rt ? g->be->set_rt : g->be->set);
}

int gpio_read(struct gpio *g, struct gpio_line *l, int *edges)
{
	int phys;

	*edges = 0;
	if (!l || l->dir != GPIO_IN)
		return -1;
	phys = g->be->read_input(g, l, edges);
	if (phys < 0)
		return -1;
	l->active = phys ^ l->spec.active_low;
	return l->active;
}

void gpio_sync(struct gpio *g)
{
	if (g && g->be->sync)
		g->be->sync(g);
}

/* Every output inactive, each tried whatever the others did. */
static int all_off(struct gpio *g, int (*set)(struct gpio *, struct gpio_line *, int))
{
	int failed = 0;

	if (!g)
		return 0;
	for (int i = 0; i < g->nlines; i++)
		if (g->lines[i].dir == GPIO_OUT && set(g, &g->lines[i], 0) < 0)
			failed++;
	return failed;
}

int gpio_all_off(struct gpio *g)
{
	return all_off(g, gpio_set);
}

int gpio_emergency_off(struct gpio *g)
{
	if (g)
		g->emergency = 1;
	return all_off(g, set_line);
}

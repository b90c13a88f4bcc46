/* The simulated backend (SPEC §5): the physical level of every line in a state
 * file replaced atomically on each change, an optional trace of changes with
 * monotonic timestamps, and inputs fed through a pipe so that a simulated edge
 * takes the same path through the event loop as a real one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "gpio.h"

struct sim {
	char state_path[PATH_MAX];
	int trace_fd;
	char *buf;                     /* the state file's text, sized at open */
	size_t buflen;
	const struct gpio_line **sorted;
	int input_unsaved;             /* an input level not yet in the state file */
};

struct sim_line {
	int level;                     /* physical */
	int edges;                     /* inputs: level changes since the last read */
	int broken;                    /* inputs: cannot be read (sim-input level -1) */
	int pipe_w;                    /* inputs: write end, fed by sim-input */
};

/* The simulated world outside the process: what each input line's far end
 * holds (a button pressed, a broken wire). It outlives a request of the
 * lines, as a real line does, so a rewiring reload finds a held interlock
 * still held; at process start it is empty and inputs are inactive. */
struct sim_world {
	char key[40];
	int level, edges, broken;
};
static struct sim_world *world;
static int nworld;

/* Line N is named GPIO<N> (cfg_sim_line_offset): both reach the same line,
 * shown by its offset. */
static void key_of(const struct gpio_line *l, char *buf, size_t len)
{
	int off = cfg_sim_line_offset(&l->spec);

	if (off >= 0)
		snprintf(buf, len, "%d", off);
	else
		snprintf(buf, len, "%s", l->spec.name);
}

static struct sim_world *world_find(const char *key)
{
	for (int i = 0; i < nworld; i++)
		if (strcmp(world[i].key, key) == 0)
			return &world[i];
	return NULL;
}

/* Remembered when the lines are released; taken back by the next request. */
static void world_keep(const struct gpio_line *l, const struct sim_line *sl)
{
	struct sim_world *w;
	char key[40];

	key_of(l, key, sizeof key);
	w = world_find(key);
	if (!w) {
		struct sim_world *nw = realloc(world, (size_t)(nworld + 1) * sizeof *nw);
		if (!nw)
			return; /* the input starts inactive, as at process start */
		world = nw;
		w = &world[nworld++];
		snprintf(w->key, sizeof w->key, "%s", key);
	}
	w->level = sl->level;
	w->edges = sl->edges;
	w->broken = sl->broken;
}

void gpio_sim_forget(void)
{
	free(world);
	world = NULL;
	nworld = 0;
}

static int cmp_lines(const void *a, const void *b)
{
	const struct gpio_line *x = *(const struct gpio_line *const *)a;
	const struct gpio_line *y = *(const struct gpio_line *const *)b;
	int ox = cfg_sim_line_offset(&x->spec), oy = cfg_sim_line_offset(&y->spec);

	if (ox >= 0 && oy >= 0)
		return (ox > oy) - (ox < oy);
	if (ox >= 0 || oy >= 0)
		return ox >= 0 ? -1 : 1;
	return strcmp(x->spec.name, y->spec.name);
}

/* OFFSET=LEVEL per line, sorted by offset (named lines after, by name). */
static int sim_save(struct gpio *g)
{
	struct sim *s = g->priv;
	const struct gpio_line **sorted = s->sorted;
	char key[40];
	size_t off = 0;
	int n = 0;

	for (int i = 0; i < g->nlines; i++)
		if (g->lines[i].priv)
			sorted[n++] = &g->lines[i];
	qsort(sorted, (size_t)n, sizeof sorted[0], cmp_lines);
	for (int i = 0; i < n && off < s->buflen; i++) {
		const struct sim_line *sl = sorted[i]->priv;
		key_of(sorted[i], key, sizeof key);
		off += (size_t)snprintf(s->buf + off, s->buflen - off, "%s=%d\n", key, sl->level);
	}
	if (off > s->buflen)
		off = s->buflen;
	s->input_unsaved = 0;
	return write_atomic(s->state_path, s->buf, off, 0);
}

static void sim_trace(struct gpio *g, const struct gpio_line *l, int level)
{
	struct sim *s = g->priv;
	char line[96], key[40];
	int n;

	if (s->trace_fd < 0)
		return;
	key_of(l, key, sizeof key);
	n = snprintf(line, sizeof line, "%lld %s %d\n", (long long)acu_mono_now(), key, level);
	if (write(s->trace_fd, line, (size_t)n) != n)
		log_warn("sim: trace write failed");
}

static int sim_open(struct gpio *g, const struct acu_cfg *cfg, char *err, size_t errlen)
{
	struct sim *s = calloc(1, sizeof *s);

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(s->state_path, sizeof s->state_path, "%s", cfg->sim_state);
	s->trace_fd = -1;
	/* A key is at most 31 characters: "NAME=L\n" fits in 40. */
	s->buflen = 40 * ((size_t)g->nlines + 1);
	s->buf = malloc(s->buflen);
	s->sorted = calloc((size_t)g->nlines + 1, sizeof *s->sorted);
	if (!s->buf || !s->sorted) {
		free(s->buf);
		free(s->sorted);
		free(s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (cfg->sim_trace[0]) {
		s->trace_fd = open(cfg->sim_trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (s->trace_fd < 0) {
			snprintf(err, errlen, "sim_trace %s: %s", cfg->sim_trace, strerror(errno));
			free(s->buf);
			free(s->sorted);
			free(s);
			return -1;
		}
	}
	g->priv = s;
	return 0;
}

static int sim_request(struct gpio *g, struct gpio_line *l, char *err, size_t errlen)
{
	struct sim_line *sl = calloc(1, sizeof *sl);
	int p[2];

	if (!sl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sl->pipe_w = -1;
	/* Inactive at start, inputs included: an interlock starts clear. */
	sl->level = l->spec.active_low;
	if (l->dir == GPIO_IN) {
		char key[40];
		const struct sim_world *w;

		/* Requested again (a rewiring reload): the far end still holds
		 * what it held. */
		key_of(l, key, sizeof key);
		w = world_find(key);
		if (w) {
			sl->level = w->level;
			sl->edges = w->edges;
			sl->broken = w->broken;
		}
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
			snprintf(err, errlen, "pipe: %s", strerror(errno));
			free(sl);
			return -1;
		}
		l->fd = p[0];
		sl->pipe_w = p[1];
	}
	l->priv = sl;
	if (l->dir == GPIO_OUT)
		sim_trace(g, l, sl->level);
	if (sim_save(g) < 0) {
		snprintf(err, errlen, "sim_state %s: %s", ((struct sim *)g->priv)->state_path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static int sim_set(struct gpio *g, struct gpio_line *l, int physical)
{
	struct sim_line *sl = l->priv;

	if (!sl)
		return -1;
	if (sl->level == physical)
		return 0;
	sl->level = physical;
	sim_trace(g, l, physical);
	return sim_save(g);
}

/* Like a chip's event queue: every level the line went through since the
 * last read counts, not only the one it is at now. */
static int sim_read_input(struct gpio *g, struct gpio_line *l, int *edges)
{
	struct sim_line *sl = l->priv;
	char buf[64];

	(void)g;
	if (!sl)
		return -1;
	while (read(l->fd, buf, sizeof buf) > 0)
		;
	*edges = sl->edges;
	sl->edges = 0;
	return sl->broken ? -1 : sl->level;
}

static int sim_resolve(struct gpio *g, const struct acu_line *spec)
{
	(void)g;
	return cfg_sim_line_offset(spec);
}

/* The input level reaches the file after the edge has cut its gates (whose
 * own save usually takes it along): the file never delays a cut-off. */
static void sim_sync(struct gpio *g)
{
	struct sim *s = g->priv;

	if (s && s->input_unsaved && sim_save(g) < 0)
		log_warn("sim: cannot save state");
}

static void sim_close(struct gpio *g)
{
	struct sim *s = g->priv;

	for (int i = 0; i < g->nlines; i++) {
		struct sim_line *sl = g->lines[i].priv;
		if (!sl)
			continue;
		if (g->lines[i].dir == GPIO_IN)
			world_keep(&g->lines[i], sl);
		if (sl->pipe_w >= 0)
			close(sl->pipe_w);
		if (g->lines[i].fd >= 0)
			close(g->lines[i].fd);
		free(sl);
		g->lines[i].priv = NULL;
	}
	if (s) {
		if (s->trace_fd >= 0)
			close(s->trace_fd);
		free(s->buf);
		free(s->sorted);
		free(s);
	}
}

int gpio_sim_input(struct gpio *g, const char *line, const int *levels, int n, char *err,
		   size_t errlen)
{
	struct gpio_line *l = NULL;
	struct acu_line asked = { .set = 1, .offset = -1 };
	struct sim_line *sl;
	char key[40], want[40];

	if (!g || g->be != &gpio_backend_sim) {
		snprintf(err, errlen, "sim-input needs [gpio] backend = sim");
		return -1;
	}
	/* "24" and "GPIO24" are the same line. */
	snprintf(asked.name, sizeof asked.name, "%s", line);
	if (cfg_sim_line_offset(&asked) >= 0)
		snprintf(want, sizeof want, "%d", cfg_sim_line_offset(&asked));
	else
		snprintf(want, sizeof want, "%s", line);
	for (int i = 0; i < g->nlines; i++) {
		key_of(&g->lines[i], key, sizeof key);
		if (strcmp(key, want) == 0)
			l = &g->lines[i];
	}
	if (!l || l->dir != GPIO_IN) {
		snprintf(err, errlen, "line %.40s is not a configured input", line);
		return -1;
	}
	sl = l->priv;
	/* Levels one after the other, faster than any read: only the latch of
	 * of the edges can tell that the line went through them. */
	for (int i = 0; i < n; i++) {
		if (levels[i] < 0) {
			sl->broken = 1;
		} else {
			sl->broken = 0;
			if (sl->level != !!levels[i] && sl->edges < 1000)
				sl->edges++;
			sl->level = !!levels[i];
		}
	}
	/* The byte only wakes the event loop; the level is read back from the
	 * line, and saved by sim_sync once the edge is handled. */
	((struct sim *)g->priv)->input_unsaved = 1;
	if (write(sl->pipe_w, "e", 1) < 0 && errno != EAGAIN) {
		snprintf(err, errlen, "sim input pipe: %s", strerror(errno));
		return -1;
	}
	return 0;
}

const struct gpio_backend gpio_backend_sim = {
	.name = "sim",
	.open = sim_open,
	.request = sim_request,
	.set = sim_set,
	.read_input = sim_read_input,
	.resolve = sim_resolve,
	.sync = sim_sync,
	.close = sim_close,
};

/* The simulated backend (SPEC §5): the physical level of every line in a state
 * file replaced atomically on each change, an optional trace of changes with
 * monotonic timestamps, and inputs fed through a pipe so that a simulated edge
 * takes the same path through the event loop as a real one.
 *
 * A line changes (and is stamped) when it is written; the files follow. Every
 * change goes through one ring in the order written (under the gpio lock): the
 * event loop's writes empty it to the files before they return, as before,
 * while the pulse thread's (set_rt) are written out by a thread of the
 * backend's own, so that the pulse thread never waits on a file system, as it
 * would not with a real chip. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "gpio.h"
#include "rtpulse.h"

/* 0.6 s of 8 channels at 100 Hz; the writer empties it every 5 ms or so. */
#define SIM_RING 1024

struct sim_edge {
	int64_t ns;
	int line;                      /* index in g->lines */
	int level;
};

struct sim {
	char state_path[PATH_MAX];
	int trace_fd;
	char *buf;                     /* the state file's text, sized at open */
	size_t buflen;
	const struct gpio_line **sorted;
	int nsorted;                   /* -1: lines requested since the last sort */
	int input_unsaved;             /* an input level not yet in the state file */
	/* The ring: written under g->lock, emptied under io. head and tail are
	 * read across the two, so atomically (seq_cst: see ring_push). */
	struct sim_edge *ring;
	unsigned head, tail;
	pthread_mutex_t io;            /* the files, in ring order; after g->lock */
	int efd;                       /* wakes the writer */
	pthread_t writer;
	int writer_on, stop;
	int failed;                    /* the last replace of the state file failed */
};

struct sim_line {
	int level;                     /* physical */
	int edges;                     /* inputs: level changes since the last read */
	int broken;                    /* inputs: cannot be read (sim-input level -1) */
	int pipe_w;                    /* inputs: write end, fed by sim-input */
	char key[40];                  /* key_of, once: every save and trace line names it */
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

/* The line's key, formatted once at its request. */
static const char *line_key(const struct gpio_line *l, char *buf, size_t len)
{
	const struct sim_line *sl = l->priv;

	if (sl)
		return sl->key;
	key_of(l, buf, len);
	return buf;
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
	int n = s->nsorted;

	if (n < 0) {
		n = 0;
		for (int i = 0; i < g->nlines; i++)
			if (g->lines[i].priv)
				sorted[n++] = &g->lines[i];
		qsort(sorted, (size_t)n, sizeof sorted[0], cmp_lines);
		s->nsorted = n;
	}
	for (int i = 0; i < n && off < s->buflen; i++) {
		const struct sim_line *sl = sorted[i]->priv;
		off += (size_t)snprintf(s->buf + off, s->buflen - off, "%s=%d\n",
					line_key(sorted[i], key, sizeof key),
					__atomic_load_n(&sl->level, __ATOMIC_RELAXED));
	}
	if (off > s->buflen)
		off = s->buflen;
	s->input_unsaved = 0;
	return write_atomic(s->state_path, s->buf, off, 0);
}

static int trace_line(struct gpio *g, const struct sim_edge *e, char *buf, size_t len)
{
	char key[40];

	return snprintf(buf, len, "%lld %s %d\n", (long long)e->ns,
			line_key(&g->lines[e->line], key, sizeof key), e->level);
}

static void trace_write(struct sim *s, const char *buf, size_t len)
{
	if (len && write(s->trace_fd, buf, len) != (ssize_t)len)
		log_warn("sim: trace write failed");
}

/* Under g->lock. Waits only when the writer is a whole ring behind. kick:
 * the writer is to write it out (the pulse thread's edges); else the caller
 * does, before it returns. */
static void ring_push(struct gpio *g, const struct gpio_line *l, int level, int kick)
{
	struct sim *s = g->priv;
	struct sim_edge e = { acu_mono_now(), (int)(l - g->lines), level };
	unsigned h = s->head;
	uint64_t one = 1;

	if (s->trace_fd < 0)
		return;
	while (h - __atomic_load_n(&s->tail, __ATOMIC_SEQ_CST) >= SIM_RING) {
		struct timespec ts = { 0, 200 * 1000 };

		if (!s->writer_on) {
			/* No writer (it could not start): the caller empties it. */
			break;
		}
		if (write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			break;
		nanosleep(&ts, NULL);
	}
	if (h - __atomic_load_n(&s->tail, __ATOMIC_SEQ_CST) >= SIM_RING) {
		/* Never lose an edge: written here, after what the ring holds. */
		char line[96];

		pthread_mutex_lock(&s->io);
		while (__atomic_load_n(&s->tail, __ATOMIC_SEQ_CST) != h) {
			unsigned t = s->tail;

			trace_write(s, line, (size_t)trace_line(g, &s->ring[t % SIM_RING], line,
								 sizeof line));
			__atomic_store_n(&s->tail, t + 1, __ATOMIC_SEQ_CST);
		}
		trace_write(s, line, (size_t)trace_line(g, &e, line, sizeof line));
		if (sim_save(g) < 0)
			log_warn("sim: cannot save state");
		pthread_mutex_unlock(&s->io);
		return;
	}
	s->ring[h % SIM_RING] = e;
	__atomic_store_n(&s->head, h + 1, __ATOMIC_SEQ_CST);
	/* The writer caught up with everything before this edge and may be
	 * asleep; it reads head again after it moves tail, so one of the two
	 * sees the other. */
	if (kick && __atomic_load_n(&s->tail, __ATOMIC_SEQ_CST) == h && s->writer_on &&
	    write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_warn("sim: cannot wake the writer");
}

/* Under io: every edge in the ring to the trace, then the state file (always
 * with save: a write's own replace tells whether it failed). Returns whether
 * there was any (or an input level waiting), -1 when the state file could not
 * be replaced. */
static int ring_flush(struct gpio *g, int save)
{
	struct sim *s = g->priv;
	unsigned t = s->tail, h = __atomic_load_n(&s->head, __ATOMIC_SEQ_CST);
	char out[4096];
	size_t used = 0;
	int any = s->input_unsaved || save;

	for (; t != h; t++) {
		if (used > sizeof out - 96) {
			trace_write(s, out, used);
			used = 0;
		}
		used += (size_t)trace_line(g, &s->ring[t % SIM_RING], out + used,
					   sizeof out - used);
		any = 1;
	}
	trace_write(s, out, used);
	__atomic_store_n(&s->tail, t, __ATOMIC_SEQ_CST);
	if (!any && s->trace_fd >= 0)
		return 0;
	if (sim_save(g) < 0) {
		__atomic_store_n(&s->failed, 1, __ATOMIC_RELAXED);
		return -1;
	}
	__atomic_store_n(&s->failed, 0, __ATOMIC_RELAXED);
	return 1;
}

static void *writer_main(void *arg)
{
	struct gpio *g = arg;
	struct sim *s = g->priv;

	for (;;) {
		uint64_t n;

		struct timespec batch = { 0, 5 * 1000 * 1000 };

		if (read(s->efd, &n, sizeof n) < 0 && errno == EINTR)
			continue;
		/* The edges of the next few ms in the same write and replace: the
		 * pulse thread wakes us (a syscall) only when the ring was empty,
		 * at most every 5 ms instead of on every edge. */
		if (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
			nanosleep(&batch, NULL);
		pthread_mutex_lock(&s->io);
		/* Until tail has caught up with a head read after it moved. */
		while (__atomic_load_n(&s->tail, __ATOMIC_SEQ_CST) !=
		       __atomic_load_n(&s->head, __ATOMIC_SEQ_CST))
			if (ring_flush(g, 0) < 0)
				log_warn("sim: cannot save state");
		pthread_mutex_unlock(&s->io);
		if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
			return NULL;
	}
}

static void writer_start(struct gpio *g)
{
	struct sim *s = g->priv;
	pthread_attr_t a;
	sigset_t all, old;

	if (s->trace_fd < 0)
		return;
	s->efd = eventfd(0, EFD_CLOEXEC);
	if (s->efd < 0)
		return;
	pthread_attr_init(&a);
	/* snprintf and write_atomic's two paths: well within 64 KiB. */
	pthread_attr_setstacksize(&a, 64 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	s->writer_on = pthread_create(&s->writer, &a, writer_main, g) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (!s->writer_on) {
		close(s->efd);
		s->efd = -1;
	}
}

static void writer_stop(struct gpio *g)
{
	struct sim *s = g->priv;
	uint64_t one = 1;

	if (s->writer_on) {
		__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
		if (write(s->efd, &one, sizeof one) < 0)
			log_warn("sim: cannot stop the writer");
		pthread_join(s->writer, NULL);
		s->writer_on = 0;
	}
	if (s->efd >= 0)
		close(s->efd);
	s->efd = -1;
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
	s->efd = -1;
	s->nsorted = -1;
	/* A key is at most 31 characters: "NAME=L\n" fits in 40. */
	s->buflen = 40 * ((size_t)g->nlines + 1);
	s->buf = malloc(s->buflen);
	s->sorted = calloc((size_t)g->nlines + 1, sizeof *s->sorted);
	s->ring = cfg->sim_trace[0] ? malloc(SIM_RING * sizeof *s->ring) : NULL;
	if (!s->buf || !s->sorted || (cfg->sim_trace[0] && !s->ring)) {
		free(s->buf);
		free(s->sorted);
		free(s->ring);
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
			free(s->ring);
			free(s);
			return -1;
		}
	}
	/* A loop write holding the gpio lock may wait here for the writer, and
	 * the pulse thread for that loop write. */
	rtpulse_mutex_init(&s->io);
	g->priv = s;
	writer_start(g);
	return 0;
}

/* The loop's write (or the pulse thread's without a writer): the files are
 * up to date before it returns, so that a reply never runs ahead of them. */
static int sync_now(struct gpio *g)
{
	struct sim *s = g->priv;
	int rc;

	/* In the fatal path a signal may have stopped a holder of io: no lock. */
	if (!g->emergency)
		pthread_mutex_lock(&s->io);
	rc = ring_flush(g, 1);
	/* A pulse-thread edge pushed meanwhile saw the ring not empty and woke
	 * nobody: it is ours (as in writer_main). */
	while (rc >= 0 && __atomic_load_n(&s->tail, __ATOMIC_SEQ_CST) !=
	       __atomic_load_n(&s->head, __ATOMIC_SEQ_CST))
		rc = ring_flush(g, 0);
	if (!g->emergency)
		pthread_mutex_unlock(&s->io);
	return rc < 0 ? -1 : 0;
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
	key_of(l, sl->key, sizeof sl->key);
	/* Inactive at start, inputs included: an interlock starts clear. */
	sl->level = l->spec.active_low;
	if (l->dir == GPIO_IN) {
		const struct sim_world *w;

		/* Requested again (a rewiring reload): the far end still holds
		 * what it held. */
		w = world_find(sl->key);
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
	((struct sim *)g->priv)->nsorted = -1;
	if (l->dir == GPIO_OUT)
		ring_push(g, l, sl->level, 0);
	if (sync_now(g) < 0) {
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
	__atomic_store_n(&sl->level, physical, __ATOMIC_RELAXED);
	ring_push(g, l, physical, 0);
	return sync_now(g);
}

static int sim_set_rt(struct gpio *g, struct gpio_line *l, int physical)
{
	struct sim_line *sl = l->priv;
	struct sim *s = g->priv;

	if (!sl)
		return -1;
	if (sl->level == physical)
		return 0;
	/* The state file could not be replaced since: this write fails too,
	 * and does not drive the line active (as a failed write would not). */
	if (physical != l->spec.active_low && __atomic_load_n(&s->failed, __ATOMIC_RELAXED))
		return -1;
	__atomic_store_n(&sl->level, physical, __ATOMIC_RELAXED);
	ring_push(g, l, physical, 1);
	/* Without a trace or a writer, the state file is still replaced here.
	 * With one, a replace that failed fails the writes after it (S7), until
	 * one succeeds: the pulse thread learns of it an edge later. */
	if (!s->writer_on)
		return sync_now(g);
	return __atomic_load_n(&s->failed, __ATOMIC_RELAXED) ? -1 : 0;
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

	if (s && (s->input_unsaved || __atomic_load_n(&s->tail, __ATOMIC_SEQ_CST) !=
		  __atomic_load_n(&s->head, __ATOMIC_SEQ_CST)) && sync_now(g) < 0)
		log_warn("sim: cannot save state");
}

static void sim_close(struct gpio *g)
{
	struct sim *s = g->priv;

	if (s) {
		writer_stop(g);
		if (sync_now(g) < 0)
			log_warn("sim: cannot save state");
	}
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
		pthread_mutex_destroy(&s->io);
		free(s->buf);
		free(s->sorted);
		free(s->ring);
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
		if (strcmp(line_key(&g->lines[i], key, sizeof key), want) == 0)
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
			/* Read by the writer thread for the state file. */
			__atomic_store_n(&sl->level, !!levels[i], __ATOMIC_RELAXED);
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
	.set_rt = sim_set_rt,
	.read_input = sim_read_input,
	.resolve = sim_resolve,
	.sync = sim_sync,
	.close = sim_close,
};

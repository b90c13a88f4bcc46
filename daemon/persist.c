/* The writer thread: state snapshots and history lines go to disk (fsync and
 * all) off the event loop, so a slow disk never delays a gate, a pulse or a
 * deadline. The loop hands over text and a generation number; replies wait in
 * the server's outbox until their generation is durable (persist before
 * acknowledge). Only the newest state snapshot is written: it supersedes older
 * ones. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon.h"

struct persist {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;                       /* writer -> loop: a generation is durable */
	char state_path[PATH_MAX + 16];
	struct history *history;
	/* under mu */
	char *state;                   /* newest snapshot not yet taken */
	size_t state_len;
	char *hist;                    /* history lines not yet taken */
	size_t hist_len, hist_cap;
	int hist_wake;                 /* history_write is due even without lines */
	uint64_t queued, done;
	int failed;                    /* a write of the last batch failed */
	char err[256];
	int quit;
};

static void *writer(void *arg)
{
	struct persist *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		char *state, *hist, err[256] = "";
		size_t state_len, hist_len;
		int hist_wake;
		uint64_t gen, one = 1;
		int failed = 0;

		while (p->done == p->queued && !p->quit)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->done == p->queued && p->quit)
			break;
		state = p->state;
		state_len = p->state_len;
		hist = p->hist;
		hist_len = p->hist_len;
		hist_wake = p->hist_wake;
		p->hist_wake = 0;
		gen = p->queued;
		p->state = NULL;
		p->hist = NULL;
		p->hist_len = p->hist_cap = 0;
		pthread_mutex_unlock(&p->mu);

		/* History first: a state that mentions a change is on disk after
		 * the record of it. Records the disk does not take wait in the
		 * history's bounded memory and go with a later batch (history.c
		 * logs it); they never hold up the state save. */
		if (hist_len || hist_wake || history_pending(p->history)) {
			char herr[512];

			history_write(p->history, hist, hist_len, acu_now().wall, herr, sizeof herr);
		}
		if (state && write_atomic(p->state_path, state, state_len, 1) < 0) {
			snprintf(err, sizeof err, "cannot save state to %.150s: %s", p->state_path,
				 strerror(errno));
			failed = 1;
		}
		free(state);
		free(hist);

		pthread_mutex_lock(&p->mu);
		p->done = gen;
		if (failed) {
			p->failed = 1;
			snprintf(p->err, sizeof p->err, "%s", err);
		}
		if (write(p->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct persist *persist_start(const char *state_path, struct history *history, char *err,
			      size_t errlen)
{
	struct persist *p = calloc(1, sizeof *p);

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(p->state_path, sizeof p->state_path, "%s", state_path);
	p->history = history;
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (p->efd < 0 || pthread_create(&p->thread, NULL, writer, p) != 0) {
		snprintf(err, errlen, "cannot start the writer thread: %s", strerror(errno));
		if (p->efd >= 0)
			close(p->efd);
		free(p);
		return NULL;
	}
	return p;
}

int persist_fd(const struct persist *p)
{
	return p->efd;
}

/* Takes ownership of text. */
uint64_t persist_state(struct persist *p, char *text, size_t len)
{
	uint64_t gen;

	pthread_mutex_lock(&p->mu);
	free(p->state);
	p->state = text;
	p->state_len = len;
	gen = ++p->queued;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return gen;
}

/* len 0: nothing new, only a wake-up for history_write: records waiting in
 * the history's memory are tried again, and a prune that is due is made. */
uint64_t persist_history(struct persist *p, const char *line, size_t len)
{
	uint64_t gen;

	pthread_mutex_lock(&p->mu);
	if (len && p->hist_len + len > p->hist_cap) {
		size_t cap = p->hist_cap ? p->hist_cap : 4096;
		char *bigger;

		while (cap < p->hist_len + len)
			cap *= 2;
		bigger = realloc(p->hist, cap);
		if (!bigger) {
			gen = p->queued;
			pthread_mutex_unlock(&p->mu);
			log_err("history: out of memory; a record is lost");
			return gen;
		}
		p->hist = bigger;
		p->hist_cap = cap;
	}
	if (len)
		memcpy(p->hist + p->hist_len, line, len);
	p->hist_len += len;
	p->hist_wake = 1;
	gen = ++p->queued;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return gen;
}

uint64_t persist_queued(struct persist *p)
{
	uint64_t g;

	pthread_mutex_lock(&p->mu);
	g = p->queued;
	pthread_mutex_unlock(&p->mu);
	return g;
}

/* Called by the loop when the eventfd is readable: the durable generation,
 * and whether the batch that made it durable failed (with why). */
uint64_t persist_done(struct persist *p, int *failed, char *err, size_t errlen)
{
	uint64_t g, n;

	if (read(p->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_debug("persist: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&p->mu);
	g = p->done;
	*failed = p->failed;
	if (p->failed)
		snprintf(err, errlen, "%s", p->err);
	p->failed = 0;
	pthread_mutex_unlock(&p->mu);
	return g;
}

/* Writes what is queued, then stops the thread. */
void persist_stop(struct persist *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	free(p->state);
	free(p->hist);
	close(p->efd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

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
	struct state_file *sf;         /* the writer's alone while it runs */
	struct history *history;
	/* under mu */
	char *state;                   /* newest snapshot not yet taken */
	size_t state_len;
	char *hist;                    /* history lines not yet taken */
	size_t hist_len, hist_cap;
	int hist_wake;                 /* history_write is due even without lines */
	uint64_t queued, done;
	int failed;                    /* the last batch's state is not on disk */
	int low;                       /* saved, but only just: the disk is full */
	char err[256];
	int quit;
};

static void *writer(void *arg)
{
	struct persist *p = arg;

	int state_failed = 0, state_low = 0; /* the last state write's, until the next */
	char state_err[256] = "";

	pthread_mutex_lock(&p->mu);
	for (;;) {
		char *state, *hist, err[256] = "";
		size_t state_len, hist_len;
		int hist_wake;
		uint64_t gen, one = 1;
		int failed = 0, low = 0;

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

		/* The state first: on a full disk it is what the reserve is for,
		 * and history written first could take that space. Records the
		 * disk does not take (or that must not take the space the state
		 * needs) wait in the history's bounded memory and go with a later
		 * batch (history.c logs it); they never hold up the state save. */
		if (state) {
			int rc = state_file_write(p->sf, state, state_len, state_err,
						  sizeof state_err);

			state_failed = rc < 0;
			state_low = rc == STATE_SAVED_LOW;
		}
		failed = state_failed;
		low = state_low;
		if (failed || low)
			snprintf(err, sizeof err, "%s", state_err);
		if (failed || low) {
			if (hist_len)
				history_hold(p->history, hist, hist_len, acu_now().wall);
		} else if (hist_len || hist_wake || history_pending(p->history)) {
			char herr[512];

			if (history_write(p->history, hist, hist_len, acu_now().wall, herr,
					  sizeof herr) < 0) {
				snprintf(err, sizeof err, "%.250s", herr);
				low = 1;
			}
		}
		free(state);
		free(hist);

		pthread_mutex_lock(&p->mu);
		p->done = gen;
		/* Each batch reports afresh: a save that worked ends the failure. */
		p->failed = failed;
		p->low = low;
		snprintf(p->err, sizeof p->err, "%s", err);
		if (write(p->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct persist *persist_start(struct state_file *sf, struct history *history, char *err,
			      size_t errlen)
{
	struct persist *p = calloc(1, sizeof *p);

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->sf = sf;
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
	if (len && acu_grow(&p->hist, &p->hist_cap, p->hist_len + len, 4096) < 0) {
		gen = p->queued;
		pthread_mutex_unlock(&p->mu);
		log_errx("history: out of memory; a record is lost");
		return gen;
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

/* Called by the loop when the eventfd is readable: the durable generation
 * and how its batch went. */
void persist_done(struct persist *p, struct persist_report *rep)
{
	uint64_t n;

	if (read(p->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_debug("persist: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&p->mu);
	rep->done = p->done;
	rep->failed = p->failed;
	rep->low = p->low;
	snprintf(rep->why, sizeof rep->why, "%s", p->err);
	pthread_mutex_unlock(&p->mu);
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

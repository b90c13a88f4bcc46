/* The history's files (SPEC §8, S8): STATE_DIR/history/YYYY-MM-DD.jsonl, one
 * per UTC day of the records' times, appended whole records at a time and
 * fdatasync'ed; a write that fails part-way is cut back so no torn or glued
 * record stays on disk; records the disk does not take wait in bounded memory
 * (history-pure.c); days older than [history] keep are removed. The legacy
 * STATE_DIR/history.jsonl of earlier versions is still read, as the oldest
 * file, and removed once keep says so; it is never written.
 *
 * Two sides share nothing but the directory: the writer's (whoever owns the
 * disk: the writer thread, or the loop before it starts and after it stops)
 * and the query worker's, a thread of its own that only reads files and hands
 * its result to the loop through an eventfd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "history.h"

#define READ_BUF (256 * 1024)          /* a longer line is damage: skipped */
#define WRITE_BATCH (256 * 1024)       /* bytes per write() at most */

struct history_job {
	STAILQ_ENTRY(history_job) entry;
	char room[ACU_ID_MAX + 1];     /* "" = every room */
	int64_t since;
	int limit;
	uint64_t after;                /* the persist generation it must see */
	history_done_fn done;
	void *arg;
	json_t *entries;               /* the result: the worker's until handed over */
	struct acu_err err;
	int cancelled;                 /* atomic: nobody waits for the result */
};

struct history {
	char dir[PATH_MAX];            /* STATE_DIR/history */
	char legacy[PATH_MAX];         /* STATE_DIR/history.jsonl */
	int64_t keep_s;                /* atomic: a reload sets it from the loop */
	int prune_due;                 /* atomic: keep changed */
	size_t pending;                /* atomic: bytes waiting in q */

	/* the writer's side */
	int dirfd;
	int fd;                        /* the day file open for appending */
	int64_t fd_day;
	int64_t cut_size;              /* >= 0: fd still to be cut back to this */
	struct history_queue q;
	int64_t pruned_day;
	int failing;                   /* in a run of failed writes (logged once) */
	int dropping;                  /* records dropped in this run (logged once) */
	uint64_t dropped_before;       /* q.dropped_total when the run began */
	char *batch;                   /* the loop's records before the writer exists */
	size_t batch_len, batch_cap;

	/* queries */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t worker;
	int worker_started;
	int quit;                      /* atomic too: a running query polls it */
	int outstanding;               /* queries queued or running */
	uint64_t durable;              /* the newest persist generation on disk */
	STAILQ_HEAD(history_jobs, history_job) waiting, done; /* oldest first */
	int efd;                       /* worker -> loop: queries finished */
};

static int fmt_path(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* --- the writer's side --------------------------------------------------------- */

/* STATE_DIR/history, created when missing; kept open for openat and fsync. */
static int ensure_dir(struct history *h, char *err, size_t errlen)
{
	if (h->dirfd >= 0)
		return 0;
	if (mkdir(h->dir, 0750) == 0) {
		char parent[PATH_MAX];
		int pfd;

		/* The new directory's entry must last too. */
		snprintf(parent, sizeof parent, "%s", h->dir);
		*strrchr(parent, '/') = '\0';
		pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0 || fsync(pfd) < 0)
			log_warn("history: cannot sync %s", parent);
		if (pfd >= 0)
			close(pfd);
	} else if (errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", h->dir, strerror(errno));
		return -1;
	}
	h->dirfd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h->dirfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", h->dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void close_day(struct history *h)
{
	if (h->fd < 0)
		return;
	if (close(h->fd) < 0)
		log_warn("history: closing a day file");
	h->fd = -1;
	h->cut_size = -1;
}

/* The day's file, open for appending. A file that does not end in a newline
 * (a crash in the middle of a write) gets one first: the next record is never
 * glued to the damaged one, which queries skip. */
static int open_day(struct history *h, int64_t day, char *err, size_t errlen)
{
	char name[32];
	struct stat st;
	int fd, created = 0;
	char last;

	if (h->fd >= 0 && h->fd_day == day)
		return 0;
	close_day(h);
	if (ensure_dir(h, err, errlen) < 0)
		return -1;
	history_day_name(day, name, sizeof name);
	fd = openat(h->dirfd, name, O_RDWR | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = openat(h->dirfd, name, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		created = fd >= 0;
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s/%s: %s", h->dir, name, strerror(errno));
		/* The directory itself went away: made again at the next try. */
		if (errno == ENOENT) {
			close(h->dirfd);
			h->dirfd = -1;
		}
		return -1;
	}
	if (created && fsync(h->dirfd) < 0)
		log_warn("history: cannot sync %s", h->dir);
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s/%s: %s", h->dir, name, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_size > 0) {
		ssize_t n = pread(fd, &last, 1, st.st_size - 1);

		if (n != 1 || (last != '\n' && write(fd, "\n", 1) != 1)) {
			snprintf(err, errlen, "cannot end the last line of %s/%s: %s", h->dir, name,
				 n < 0 || n == 1 ? strerror(errno) : "short read");
			close(fd);
			return -1;
		}
	}
	h->fd = fd;
	h->fd_day = day;
	h->cut_size = -1;
	return 0;
}

/* Appends n whole records (their text contiguous) to the open day file and
 * syncs. On a failure the file is cut back to its last whole record, and what
 * made it is synced: *kept records are on disk, the rest are not there at all. */
static int append_records(struct history *h, const char *text, const struct history_rec *rec,
			  size_t n, size_t *kept, char *err, size_t errlen)
{
	size_t total = 0, off = 0, whole = 0, k = 0;
	struct stat st;
	int e = 0;

	*kept = 0;
	/* A cut that failed last time is made before anything else is added. */
	if (h->cut_size >= 0) {
		if (ftruncate(h->fd, h->cut_size) < 0) {
			snprintf(err, errlen, "cannot cut back a torn record: %s", strerror(errno));
			return -1;
		}
		h->cut_size = -1;
	}
	if (fstat(h->fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat a day file: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		total += rec[i].len;
	while (off < total) {
		ssize_t w = write(h->fd, text + off, total - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : ENOSPC;
			break;
		}
		off += (size_t)w;
	}
	if (off == total) {
		if (fdatasync(h->fd) == 0) {
			*kept = n;
			return 0;
		}
		/* Not known to be on disk: none of it counts, and it is rewritten. */
		e = errno;
		off = 0;
	}
	while (k < n && whole + rec[k].len <= off)
		whole += rec[k++].len;
	if (ftruncate(h->fd, st.st_size + (off_t)whole) < 0) {
		/* All of this batch goes then: it is written again, never twice. */
		h->cut_size = st.st_size;
		log_errx("history: cannot cut back a torn record: %s; retried before the next write",
			strerror(errno));
		k = 0;
	} else if (k && fdatasync(h->fd) < 0) {
		if (ftruncate(h->fd, st.st_size) < 0)
			h->cut_size = st.st_size;
		k = 0;
	}
	*kept = k;
	snprintf(err, errlen, "%s", strerror(e));
	return -1;
}

/* Writes what waits, oldest first, each record to its day's file. */
static int write_queue(struct history *h, char *err, size_t errlen)
{
	struct history_queue *q = &h->q;
	char why[256];

	while (q->n) {
		int64_t day = history_day(q->rec[0].ts_ns);
		size_t n = 0, bytes = 0, kept;
		char name[32];

		while (n < q->n && history_day(q->rec[n].ts_ns) == day &&
		       (n == 0 || bytes + q->rec[n].len <= WRITE_BATCH))
			bytes += q->rec[n++].len;
		if (open_day(h, day, err, errlen) < 0)
			return -1;
		if (append_records(h, q->text, q->rec, n, &kept, why, sizeof why) < 0) {
			history_queue_pop(q, kept);
			history_day_name(day, name, sizeof name);
			snprintf(err, errlen, "cannot write %s/%s: %s", h->dir, name, why);
			return -1;
		}
		history_queue_pop(q, n);
	}
	return 0;
}

/* Removes the day files whose whole day is older than keep, and the legacy
 * file once its last change is. */
static void prune(struct history *h, int64_t now_wall)
{
	int64_t keep = __atomic_load_n(&h->keep_s, __ATOMIC_RELAXED), day;
	char err[256];
	struct dirent *de;
	struct stat st;
	int removed = 0;
	DIR *dir;

	if (ensure_dir(h, err, sizeof err) < 0) {
		log_warnx("history: %s", err);
		return;
	}
	dir = opendir(h->dir);
	if (!dir) {
		log_warn("history: cannot list %s", h->dir);
		return;
	}
	while ((de = readdir(dir))) {
		if (history_day_parse(de->d_name, &day) < 0 || !history_day_expired(day, now_wall, keep))
			continue;
		if (h->fd >= 0 && h->fd_day == day)
			close_day(h);
		if (unlinkat(h->dirfd, de->d_name, 0) < 0) {
			log_warn("history: cannot remove %s/%s", h->dir, de->d_name);
			continue;
		}
		removed++;
	}
	closedir(dir);
	if (removed && fsync(h->dirfd) < 0)
		log_warn("history: cannot sync %s", h->dir);
	if (stat(h->legacy, &st) == 0 &&
	    history_day_expired(history_day((int64_t)st.st_mtime * NS_PER_SEC), now_wall, keep)) {
		if (unlink(h->legacy) < 0)
			log_warn("history: cannot remove %s", h->legacy);
		else
			log_notice("history: removed %s: its last record is older than keep (%lld days)",
				   h->legacy, (long long)(keep / HISTORY_DAY_S));
	}
	if (removed)
		log_notice("history: removed %d day file%s older than keep (%lld days)", removed,
			   removed == 1 ? "" : "s", (long long)(keep / HISTORY_DAY_S));
}

/* The time a record names (its ts_ns); now when it names none. */
static int64_t record_time(const char *rec, size_t len, int64_t now_wall)
{
	json_t *o = json_loadb(rec, len, 0, NULL), *ts = json_object_get(o, "ts_ns");
	int64_t t = json_is_integer(ts) && json_integer_value(ts) >= 0 ? json_integer_value(ts) :
									now_wall;

	json_decref(o);
	return t;
}

static void enqueue(struct history *h, const char *lines, size_t len, int64_t now_wall)
{
	size_t off = 0;

	while (off < len) {
		const char *nl = memchr(lines + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (lines + off)) + 1 : len - off;

		if (!nl) {
			/* Not a whole record as given: it gets its newline. */
			char *copy = malloc(n + 1);

			if (copy) {
				memcpy(copy, lines + off, n);
				copy[n] = '\n';
				history_queue_add(&h->q, copy, n + 1, record_time(copy, n, now_wall));
				free(copy);
			} else {
				history_queue_drop(&h->q, now_wall);
			}
		} else if (n > 1) {
			history_queue_add(&h->q, lines + off, n, record_time(lines + off, n, now_wall));
		}
		off += n;
	}
}

int history_write(struct history *h, const char *lines, size_t len, int64_t now_wall, char *err,
		  size_t errlen)
{
	int64_t today = history_day(now_wall);
	int rc;

	err[0] = '\0';
	/* What waits first, then the gap if records were lost, then the new
	 * records: the files keep the order the records were made in. */
	rc = write_queue(h, err, errlen);
	if (rc == 0 && history_queue_gap(&h->q))
		rc = write_queue(h, err, errlen);
	if (len)
		enqueue(h, lines, len, now_wall);
	if (rc == 0)
		rc = write_queue(h, err, errlen);
	if (rc == 0 && history_queue_gap(&h->q))
		rc = write_queue(h, err, errlen);

	if (rc < 0 && !h->failing) {
		h->failing = 1;
		h->dropped_before = h->q.dropped_total;
		log_errx("history: %s; records wait in memory (up to %d KiB) until they can be written",
			err, HISTORY_PENDING_MAX / 1024);
	}
	if (h->failing && !h->dropping && h->q.dropped_total > h->dropped_before) {
		h->dropping = 1;
		log_errx("history: %d KiB of records wait; further records are dropped and counted "
			"until the disk takes them", HISTORY_PENDING_MAX / 1024);
	}
	if (rc == 0 && h->failing) {
		uint64_t lost = h->q.dropped_total - h->dropped_before;

		h->failing = h->dropping = 0;
		if (lost)
			log_notice("history: written again; %llu records were lost (counted in a "
				   "history-gap record)", (unsigned long long)lost);
		else
			log_notice("history: written again; nothing was lost");
	}
	if (rc < 0) {
		size_t l = strlen(err);

		snprintf(err + l, errlen - l, "; %zu bytes wait in memory, %llu records dropped",
			 h->q.len, (unsigned long long)h->q.dropped);
	}
	__atomic_store_n(&h->pending, h->q.len, __ATOMIC_RELAXED);

	/* Once a day, and after keep changed: never on the loop once the writer
	 * thread runs, since only the disk's owner calls this. */
	if (today != h->pruned_day || __atomic_exchange_n(&h->prune_due, 0, __ATOMIC_RELAXED)) {
		h->pruned_day = today;
		prune(h, now_wall);
	}
	return rc;
}

void history_hold(struct history *h, const char *lines, size_t len, int64_t now_wall)
{
	if (!h)
		return;
	enqueue(h, lines, len, now_wall);
	__atomic_store_n(&h->pending, h->q.len, __ATOMIC_RELAXED);
}

size_t history_pending(const struct history *h)
{
	return __atomic_load_n(&h->pending, __ATOMIC_RELAXED);
}

void history_set_keep(struct history *h, int64_t keep_s)
{
	if (__atomic_exchange_n(&h->keep_s, keep_s, __ATOMIC_RELAXED) != keep_s)
		__atomic_store_n(&h->prune_due, 1, __ATOMIC_RELAXED);
}

/* --- the loop's records: added here, written by the writer thread ------------------ */

void history_add(struct acud *d, const char *room, json_t *e)
{
	struct history *h = d->history;
	struct acu_now now = acu_now();
	char ts[40], *line;
	size_t len;

	acu_rfc3339(now.wall, ts, sizeof ts);
	json_object_set_new(e, "ts", json_string(ts));
	json_object_set_new(e, "ts_ns", json_integer(now.wall));
	if (room)
		json_object_set_new(e, "room", json_string(room));
	line = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	if (!line)
		return;
	len = strlen(line);
	line[len] = '\n'; /* json_dumps leaves room: the terminator becomes the newline */
	if (d->persist) {
		persist_history(d->persist, line, len + 1);
		free(line);
		return;
	}
	if (!h) {
		free(line);
		return;
	}
	/* No writer thread (start-up, shut-down): gathered, and written at
	 * history_flush, one sync for a change's records. */
	(void)acu_grow(&h->batch, &h->batch_cap, h->batch_len + len + 1, 4096);
	if (h->batch_len + len + 1 <= h->batch_cap) {
		memcpy(h->batch + h->batch_len, line, len + 1);
		h->batch_len += len + 1;
	} else {
		log_errx("history: out of memory; a record is lost");
	}
	free(line);
	if (!d->history_batch)
		history_flush(d);
}

void history_flush(struct acud *d)
{
	struct history *h = d->history;
	char err[512];

	if (d->persist || !h || (!h->batch_len && !history_pending(h)))
		return;
	/* A failure is logged by history_write; the records wait in memory. */
	history_write(h, h->batch, h->batch_len, acu_now().wall, err, sizeof err);
	h->batch_len = 0;
}

/* --- queries: a worker thread that only reads ------------------------------------- */

struct reader {
	int fd;
	char *buf;
	size_t start, end;
	int eof, skipping;
};

/* The next line without its newline; NULL at the end (or on a read error,
 * with *ioerr set). A line longer than READ_BUF is skipped as damage. */
static const char *next_line(struct reader *r, size_t *len, int *ioerr)
{
	for (;;) {
		char *line = r->buf + r->start;
		char *nl = memchr(line, '\n', r->end - r->start);
		ssize_t n;

		if (nl) {
			r->start = (size_t)(nl - r->buf) + 1;
			if (r->skipping) {
				r->skipping = 0;
				continue;
			}
			*len = (size_t)(nl - line);
			return line;
		}
		if (r->eof) {
			if (r->start == r->end || r->skipping)
				return NULL;
			*len = r->end - r->start;
			r->start = r->end;
			return line;
		}
		if (r->start) {
			memmove(r->buf, line, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		if (r->end == READ_BUF) {
			r->skipping = 1;
			r->end = 0;
		}
		n = read(r->fd, r->buf + r->end, READ_BUF - r->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*ioerr = errno;
			return NULL;
		}
		if (n == 0)
			r->eof = 1;
		r->end += (size_t)n;
	}
}

/* What makes a running query give up: shut-down, or its client is gone. */
struct stop {
	const int *quit, *cancelled;
};

static int stopping(const struct stop *stop)
{
	return stop && (__atomic_load_n(stop->quit, __ATOMIC_RELAXED) ||
			__atomic_load_n(stop->cancelled, __ATOMIC_RELAXED));
}

/* A gap may hide any room's records: it shows in every room's history. */
static int matches(json_t *e, const char *room, int64_t since)
{
	json_t *r = json_object_get(e, "room"), *ts = json_object_get(e, "ts_ns");
	const char *type = json_string_value(json_object_get(e, "type"));

	if (room && (!json_is_string(r) || strcmp(json_string_value(r), room) != 0) &&
	    !(type && strcmp(type, "history-gap") == 0))
		return 0;
	if (since && (!json_is_integer(ts) || json_integer_value(ts) < since))
		return 0;
	return 1;
}

/* The newest `need` matches of one file, oldest first, into out[]; returns
 * how many, or -1 with err. A file gone meanwhile (pruned) has none. */
static int scan_file(const char *path, const char *room, int64_t since, int need, json_t **out,
		     char *buf, const struct stop *stop, struct acu_err *err)
{
	static const char gap[] = "\"history-gap\"";
	struct reader r = { .buf = buf };
	json_t **ring = out;
	int n = 0, head = 0, ioerr = 0;
	unsigned long lines = 0;
	const char *line;
	size_t len, toklen = 0;
	char tok[ACU_ID_MAX + 3];

	/* A record of the room holds its id as a JSON string, "ID", as it is
	 * (ids are of characters jansson never escapes): a line without it, and
	 * not a gap record, is skipped without being parsed, which is most of
	 * the cost of a room's query over a long history. */
	if (room)
		toklen = (size_t)snprintf(tok, sizeof tok, "\"%s\"", room);

	r.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0) {
		if (errno == ENOENT)
			return 0;
		return acu_fail(err, E_INTERNAL, "cannot read history: %.100s: %s", path,
				strerror(errno));
	}
	/* out[] is the ring: the newest `need` matches stay in it; damaged lines
	 * are skipped. */
	while ((line = next_line(&r, &len, &ioerr))) {
		json_t *e;

		if ((++lines & 1023) == 0 && stopping(stop))
			break;
		if (toklen && !memmem(line, len, tok, toklen) &&
		    !memmem(line, len, gap, sizeof gap - 1))
			continue;
		e = json_loadb(line, len, 0, NULL);
		if (!json_is_object(e) || !matches(e, room, since)) {
			json_decref(e);
			continue;
		}
		json_decref(ring[head]);
		ring[head] = e;
		head = (head + 1) % need;
		if (n < need)
			n++;
	}
	close(r.fd);
	if (ioerr || stopping(stop)) {
		for (int i = 0; i < need; i++) {
			json_decref(ring[i]);
			ring[i] = NULL;
		}
		if (ioerr)
			return acu_fail(err, E_INTERNAL, "cannot read history: %.100s: %s", path,
					strerror(ioerr));
		return acu_fail(err, E_INTERNAL, "%s",
				__atomic_load_n(stop->quit, __ATOMIC_RELAXED) ?
				"acud is shutting down" : "query abandoned: the client is gone");
	}
	/* Rotated so the oldest match comes first. */
	if (n == need && head) {
		json_t **tmp = malloc((size_t)need * sizeof *tmp);

		if (!tmp) {
			for (int i = 0; i < need; i++)
				json_decref(ring[i]);
			return acu_fail(err, E_INTERNAL, "out of memory");
		}
		for (int i = 0; i < need; i++)
			tmp[i] = ring[(head + i) % need];
		memcpy(ring, tmp, (size_t)need * sizeof *tmp);
		free(tmp);
	}
	return n;
}

static int day_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The day files present, newest first. */
static int list_days(const char *dir, int64_t **days, size_t *n, struct acu_err *err)
{
	size_t cap = 0;
	struct dirent *de;
	DIR *dh = opendir(dir);

	*days = NULL;
	*n = 0;
	if (!dh) {
		if (errno == ENOENT)
			return 0;
		return acu_fail(err, E_INTERNAL, "cannot list history: %s", strerror(errno));
	}
	while ((de = readdir(dh))) {
		int64_t day;

		if (history_day_parse(de->d_name, &day) < 0)
			continue;
		if (*n == cap) {
			int64_t *bigger;

			cap = cap ? cap * 2 : 512;
			bigger = realloc(*days, cap * sizeof *bigger);
			if (!bigger) {
				closedir(dh);
				return acu_fail(err, E_INTERNAL, "out of memory");
			}
			*days = bigger;
		}
		(*days)[(*n)++] = day;
	}
	closedir(dh);
	if (*n)
		qsort(*days, *n, sizeof **days, day_desc);
	return 0;
}

/* Files are read newest first and reading stops once `limit` matches are
 * found, or at the first file wholly before `since`: an unfiltered query or a
 * recent `since` reads a day or two whatever the history holds. */
static json_t *query_run(const char *dir, const char *legacy, const char *room, int64_t since,
			 int limit, const struct stop *stop, struct acu_err *err)
{
	json_t **found = calloc((size_t)limit, sizeof *found), *out = NULL;
	char *buf = malloc(READ_BUF), path[PATH_MAX + 32];
	int64_t *days = NULL;
	size_t ndays = 0, nfiles;
	int have = 0;
	struct stat st;

	if (!found || !buf) {
		acu_fail(err, E_INTERNAL, "out of memory");
		goto done;
	}
	if (list_days(dir, &days, &ndays, err) < 0)
		goto done;
	nfiles = ndays + 1; /* the legacy file is the oldest */
	for (size_t i = 0; i < nfiles && have < limit; i++) {
		int got;

		if (i < ndays) {
			char name[32];

			if (since && (days[i] + 1) * HISTORY_DAY_S * NS_PER_SEC <= since)
				break;
			history_day_name(days[i], name, sizeof name);
			if (fmt_path(path, sizeof path, dir, name) < 0)
				continue;
		} else {
			if (stat(legacy, &st) < 0 ||
			    (since && ((int64_t)st.st_mtime + 1) * NS_PER_SEC <= since))
				break;
			snprintf(path, sizeof path, "%s", legacy);
		}
		/* The older file's matches go in front of what newer files gave. */
		got = scan_file(path, room, since, limit - have, found + have, buf, stop, err);
		if (got < 0)
			goto done;
		if (got && have) {
			json_t **tmp = malloc((size_t)have * sizeof *tmp);

			if (!tmp) {
				for (int k = 0; k < got; k++)
					json_decref(found[have + k]);
				acu_fail(err, E_INTERNAL, "out of memory");
				goto done;
			}
			memcpy(tmp, found, (size_t)have * sizeof *tmp);
			memmove(found, found + have, (size_t)got * sizeof *found);
			memcpy(found + got, tmp, (size_t)have * sizeof *tmp);
			free(tmp);
		}
		have += got;
	}
	out = json_array();
	for (int i = 0; i < have; i++) {
		if (out && json_array_append_new(out, found[i]) == 0)
			found[i] = NULL;
	}
	if (!out)
		acu_fail(err, E_INTERNAL, "out of memory");
done:
	if (found)
		for (int i = 0; i < limit; i++)
			json_decref(found[i]);
	free(found);
	free(buf);
	free(days);
	return out;
}

/* A query answers with every record made before it: it waits for the writer
 * thread to have written them, but never more than a second (a stuck save
 * must not hold up the history; the records still come, later). Under mu. */
static void wait_durable(struct history *h, uint64_t after)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 1;
	while (h->durable < after && !h->quit &&
	       pthread_cond_timedwait(&h->cv, &h->mu, &until) != ETIMEDOUT)
		;
}

void history_durable(struct history *h, uint64_t gen)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	if (gen > h->durable) {
		h->durable = gen;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
}

static void *worker(void *arg)
{
	struct history *h = arg;
	struct stop stop = { .quit = &h->quit };

	/* Queries are never urgent; pulses and gates on the loop are. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) < 0)
		log_debug("history: cannot lower the query worker's priority: %s", strerror(errno));
	pthread_mutex_lock(&h->mu);
	for (;;) {
		struct history_job *j;
		uint64_t one = 1;

		while (STAILQ_EMPTY(&h->waiting) && !h->quit)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->quit)
			break;
		j = STAILQ_FIRST(&h->waiting);
		STAILQ_REMOVE_HEAD(&h->waiting, entry);
		wait_durable(h, j->after);
		pthread_mutex_unlock(&h->mu);

		stop.cancelled = &j->cancelled;
		if (__atomic_load_n(&j->cancelled, __ATOMIC_RELAXED))
			acu_fail(&j->err, E_INTERNAL, "query abandoned: the client is gone");
		else
			j->entries = query_run(h->dir, h->legacy, j->room[0] ? j->room : NULL,
					       j->since, j->limit, &stop, &j->err);

		pthread_mutex_lock(&h->mu);
		/* Handed over: from here on the loop's, never touched here again. */
		STAILQ_INSERT_TAIL(&h->done, j, entry);
		h->outstanding--;
		pthread_cond_broadcast(&h->cv);
		if (write(h->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_err("history: cannot wake the loop");
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

struct history_job *history_query_start(struct history *h, const char *room, int64_t since_wall,
					int limit, uint64_t after, history_done_fn done, void *arg,
					struct acu_err *err)
{
	struct history_job *j;

	if (limit < 1 || limit > HISTORY_LIMIT_MAX || (room && strlen(room) > ACU_ID_MAX))
		return acu_fail(err, E_INTERNAL, "history: bad query"), NULL;
	j = calloc(1, sizeof *j);
	if (!j)
		return acu_fail(err, E_INTERNAL, "out of memory"), NULL;
	snprintf(j->room, sizeof j->room, "%s", room ? room : "");
	j->since = since_wall;
	j->limit = limit;
	j->after = after;
	j->done = done;
	j->arg = arg;
	j->err.code = E_INTERNAL;
	pthread_mutex_lock(&h->mu);
	if (h->quit) {
		pthread_mutex_unlock(&h->mu);
		free(j);
		return acu_fail(err, E_INTERNAL, "acud is shutting down"), NULL;
	}
	if (!h->worker_started) {
		sigset_t all, old;
		int rc;

		/* Signals stay with the loop thread. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&h->worker, NULL, worker, h);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0) {
			pthread_mutex_unlock(&h->mu);
			free(j);
			acu_fail(err, E_INTERNAL, "cannot start the history worker: %s",
				 strerror(rc));
			return NULL;
		}
		h->worker_started = 1;
	}
	STAILQ_INSERT_TAIL(&h->waiting, j, entry);
	h->outstanding++;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return j;
}

void history_query_cancel(struct history_job *j)
{
	__atomic_store_n(&j->cancelled, 1, __ATOMIC_RELAXED);
}

int history_query_fd(const struct history *h)
{
	return h->efd;
}

/* Every job of the list, taken from it, to its caller. */
static void deliver(struct history_jobs *list)
{
	struct history_job *j;

	while ((j = STAILQ_FIRST(list))) {
		STAILQ_REMOVE_HEAD(list, entry);
		j->done(j->arg, j->entries, j->entries ? NULL : &j->err);
		free(j);
	}
}

void history_query_collect(struct history *h, int wait)
{
	struct history_jobs list = STAILQ_HEAD_INITIALIZER(list);
	uint64_t n;

	if (read(h->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_debug("history: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&h->mu);
	while (wait && STAILQ_EMPTY(&h->done) && h->outstanding && h->worker_started)
		pthread_cond_wait(&h->cv, &h->mu);
	STAILQ_CONCAT(&list, &h->done);
	pthread_mutex_unlock(&h->mu);
	deliver(&list);
}

void history_query_stop(struct history *h)
{
	struct history_job *j;

	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	__atomic_store_n(&h->quit, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (h->worker_started)
		pthread_join(h->worker, NULL);
	h->worker_started = 0;
	/* The worker is gone: both lists are the loop's. */
	deliver(&h->done);
	STAILQ_FOREACH(j, &h->waiting, entry)
		acu_fail(&j->err, E_INTERNAL, "acud is shutting down");
	deliver(&h->waiting);
}

/* --- open and close ------------------------------------------------------------ */

struct history *history_open(const char *state_dir, int64_t keep_s, char *err, size_t errlen)
{
	struct history *h = calloc(1, sizeof *h);
	pthread_condattr_t ca;
	char why[512];

	if (!h) {
		snprintf(err, errlen, "history: out of memory");
		return NULL;
	}
	if (fmt_path(h->dir, sizeof h->dir, state_dir, HISTORY_DIR) < 0 ||
	    fmt_path(h->legacy, sizeof h->legacy, state_dir, HISTORY_LEGACY) < 0) {
		snprintf(err, errlen, "history: state_dir path too long");
		free(h);
		return NULL;
	}
	h->keep_s = keep_s;
	STAILQ_INIT(&h->waiting);
	STAILQ_INIT(&h->done);
	h->dirfd = h->fd = -1;
	h->cut_size = -1;
	history_queue_init(&h->q, HISTORY_PENDING_MAX);
	h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->efd < 0) {
		snprintf(err, errlen, "history: eventfd: %s", strerror(errno));
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (ensure_dir(h, why, sizeof why) < 0)
		log_errx("history: %s; records wait in memory and the directory is tried again at "
			"every write", why);
	/* Not a day: the first history_write prunes (the writer thread's first
	 * pass, or start-up's own records, before anyone is served). */
	h->pruned_day = INT64_MIN;
	return h;
}

void history_close(struct history *h)
{
	if (!h)
		return;
	history_query_stop(h);
	if (h->q.n || h->q.dropped)
		log_errx("history: %zu records (%zu bytes) could not be written and are lost%s",
			h->q.n, h->q.len, h->q.dropped ? ", besides those already dropped" : "");
	close_day(h);
	if (h->dirfd >= 0)
		close(h->dirfd);
	close(h->efd);
	history_queue_free(&h->q);
	free(h->batch);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

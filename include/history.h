/* The history (SPEC §8, S8): JSON lines, one file per UTC day under
 * STATE_DIR/history/, records written whole or not at all, records that cannot
 * be written held in bounded memory, files older than [history] keep removed,
 * and queries answered from a worker thread so the event loop never waits for
 * them. history-pure.c holds the parts without I/O (unit-tested); history.c
 * the files, the writer's side and the query worker. */
#ifndef ACU_HISTORY_H
#define ACU_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "acud.h"

#define HISTORY_DIR "history"             /* under state_dir */
#define HISTORY_LEGACY "history.jsonl"    /* before day files: still read, never written */
#define HISTORY_DAY_S INT64_C(86400)
#define HISTORY_KEEP_DEFAULT_S (365 * HISTORY_DAY_S)
#define HISTORY_KEEP_MIN_S HISTORY_DAY_S
#define HISTORY_KEEP_MAX_S (36500 * HISTORY_DAY_S)
/* Records waiting for the disk are held up to this many bytes (a few hundred
 * to a few thousand records: hours of a busy clinic); later ones are dropped
 * and counted in a history-gap record. */
#define HISTORY_PENDING_MAX (256 * 1024)
#define HISTORY_LIMIT_MAX 1000            /* entries per query (SPEC §6) */

/* --- pure (history-pure.c) ---------------------------------------------------- */

/* The UTC day of a wall-clock time: days since 1970-01-01, rounded down. */
int64_t history_day(int64_t wall_ns);
/* "YYYY-MM-DD.jsonl" for a day. */
void history_day_name(int64_t day, char *buf, size_t len);
/* The day a file name stands for; -1 when it is not exactly a day file's name. */
int history_day_parse(const char *name, int64_t *day);
/* Whether the whole of a day is older than keep_s seconds before now. */
int history_day_expired(int64_t day, int64_t now_wall, int64_t keep_s);

struct history_rec {
	size_t len;                    /* bytes, the newline included */
	int64_t ts_ns;                 /* the record's time: it names its day file */
};

/* Records waiting for the disk, oldest first, whole records only, at most
 * `max` bytes; what does not fit is dropped and counted, and a history-gap
 * record saying how many takes the place of the lost ones in the sequence. */
struct history_queue {
	char *text;
	size_t len, cap;
	struct history_rec *rec;
	size_t n, rec_cap;
	size_t max;
	uint64_t dropped;              /* lost since the last gap record */
	int64_t dropped_from, dropped_to; /* the first and last lost record's times */
	uint64_t dropped_total;        /* since start, for the log */
};

void history_queue_init(struct history_queue *q, size_t max);
void history_queue_free(struct history_queue *q);
/* Queues a record (len bytes ending in '\n') behind what waits, or drops and
 * counts it when it would pass max. After drops, the gap record goes in first
 * as soon as a record fits again. Returns 1 queued, 0 dropped. */
int history_queue_add(struct history_queue *q, const char *rec, size_t len, int64_t ts_ns);
/* Counts a record lost that never reached the queue (no memory for it). */
void history_queue_drop(struct history_queue *q, int64_t ts_ns);
/* Queues the gap record for records dropped and not yet counted on disk: once
 * everything before them is written, the count need not wait for another
 * record. Returns 1 when one was queued. */
int history_queue_gap(struct history_queue *q);
/* Forgets the first n records (written). */
void history_queue_pop(struct history_queue *q, size_t n);
/* The history-gap record (a '\n'-terminated line, malloc'ed) for `dropped`
 * records lost between the two times; NULL when out of memory. */
char *history_gap_record(uint64_t dropped, int64_t from_ns, int64_t to_ns, size_t *len);

/* --- files, writing and queries (history.c) -------------------------------------- */

struct history;

/* Opens STATE_DIR/history (created if missing); the first history_write
 * removes what keep_s says is too old. A directory that cannot be had now is
 * logged and tried again at every write. NULL only when out of resources. */
struct history *history_open(const char *state_dir, int64_t keep_s, char *err, size_t errlen);
/* Stops the query worker (history_query_stop) and closes the files; records
 * still waiting are logged as lost. */
void history_close(struct history *h);
/* [history] keep from a reload: the next write prunes with it. */
void history_set_keep(struct history *h, int64_t keep_s);

/* Appends whole '\n'-terminated records (len may be 0: only retry what waits),
 * each to the file of its own day, and fdatasyncs; at most once a day (and
 * after a keep change) removes files older than keep. Called by whoever owns
 * the disk: the writer thread, or the loop before it starts and after it
 * stops; never two at once. Returns 0 when nothing waits, -1 with err when
 * records wait in memory. */
int history_write(struct history *h, const char *lines, size_t len, int64_t now_wall, char *err,
		  size_t errlen);
/* Queues records without touching the disk: while the file system is full
 * the space freed for the state file (S9) must not go to the history. The
 * next history_write writes them first. Same caller rules as history_write. */
void history_hold(struct history *h, const char *lines, size_t len, int64_t now_wall);
/* Bytes of records waiting in memory; readable from any thread. */
size_t history_pending(const struct history *h);

/* A query's end, on the loop thread: entries (a new reference, built by the
 * worker and no longer touched by it) or NULL and err. */
typedef void (*history_done_fn)(void *arg, json_t *entries, const struct acu_err *err);

struct history_job;
/* Queues a query for the worker thread: the newest `limit` records (in time
 * order) of room (NULL: all) at or after since_wall (0: all), read once the
 * persist generation `after` is on disk (history_durable; 0: at once) or a
 * second has passed. done runs from history_query_collect, always once. NULL
 * with err when it cannot be queued. */
struct history_job *history_query_start(struct history *h, const char *room, int64_t since_wall,
					int limit, uint64_t after, history_done_fn done, void *arg,
					struct acu_err *err);
/* The loop: the writer thread has written persist generation gen. */
void history_durable(struct history *h, uint64_t gen);
/* Nobody waits for the result any more (its client is gone): the worker skips
 * or stops the query, and done still runs, with an error. On the loop thread,
 * before done has run. */
void history_query_cancel(struct history_job *j);
/* Readable when queries have finished: then call history_query_collect. */
int history_query_fd(const struct history *h);
/* Runs done for every finished query; wait = 1 blocks until one has finished
 * (the fuzz harness, which has no event loop). */
void history_query_collect(struct history *h, int wait);
/* Ends the worker: finished queries are delivered, unfinished ones answered
 * with an error. Before the server closes, so their clients are still known. */
void history_query_stop(struct history *h);

#endif

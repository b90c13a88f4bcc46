/* acud's shell: the event loop, clients, persistence and logging around the pure
 * room logic. */
#ifndef ACU_DAEMON_H
#define ACU_DAEMON_H

#include <limits.h>
#include <stdarg.h>
#include <sys/types.h>
#include <syslog.h>
#include <jansson.h>

#include "acud.h"
#include "cfg.h"
#include "history.h"
#include "room.h"

struct event_base;
struct event;
struct client;
struct gpio;
struct persist;
struct rtpulse;
struct mqtt;

/* Event priorities: what keeps time (pulses, gates, deadlines, interlocks)
 * runs before clients. */
#define ACU_PRIO_TIME 0
#define ACU_PRIO_CLIENT 1
#define ACU_NPRIO 2

/* state.c: the state file and the reserve of space kept beside it (S9). */
struct state_file {
	char path[PATH_MAX + 16];
	char reserve[PATH_MAX + 16];
	char dir[PATH_MAX];
	off_t reserve_size;            /* allocated, as far as known */
};

struct acud {
	struct event_base *base;
	struct acu_cfg *cfg;
	const char *config_path;
	int nrooms;
	struct acu_room *rooms;
	struct event *deadline;        /* the one timer for every room's next deadline */
	struct event *watchdog;        /* only under systemd with WatchdogSec= */
	struct server *server;         /* server.h; the shell only publishes */
	struct subscriber *subscribers; /* publish.c */
	struct history *history;       /* history.c: day files, pending records, queries */
	struct event *history_ev;      /* a history query finished */
	struct event *history_retry;   /* records wait in memory: the writer tries again */
	int history_batch;             /* >0: history_add leaves the sync to history_flush */
	char boot_id[40];
	uid_t self_uid;
	gid_t desk_gid, practitioner_gid, technician_gid; /* (gid_t)-1: no such group */
	struct persist *persist;       /* the writer thread; NULL: write in place */
	struct event *persist_ev;
	struct gpio *gpio;
	struct rtpulse *rtpulse;       /* rtpulse.h: NULL: pulses on the event loop */
	struct event *rtpulse_ev;      /* the pulse thread has a report */
	struct event *heartbeat;
	int gates_on;                  /* gates active across all rooms */
	struct room_rt **room_rt;      /* stim.c: each room's timers and lines, by index */
	int room_rt_n;
	int quitting;
	struct room_cache *room_cache; /* roomjson.c: last object built per room */
	int room_cache_n;
	uint64_t cfg_gen;              /* bumped by every reload */
	struct state_file state_file;  /* used by the loop only while persist is NULL */
	int storage_bad;               /* S9: changes cannot be saved (fully or safely) */
	char storage_why[256];
	struct event *storage_retry;
	struct buttons *buttons;       /* button.c: the call and presence inputs */
	int inputs_ep;                 /* stim.c: epoll set of the input lines; valid
					* while room_rt is, -1 when there is none */
	struct mqtt *mqtt;             /* mqtt.c: NULL without [mqtt] broker */
};

/* log.c: stderr with syslog priority prefixes, for the journal. */
void log_init(int level);
void log_set_level(int level);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_set_fatal_hook(void (*hook)(void));
/* With ": strerror(errno)" appended: fatal, log_err, log_warn. Without:
 * fatalx, log_errx, log_warnx and the rest. fatal and fatalx drive every
 * output off (the hook) and exit. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define log_errx(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
/* Allocation that cannot fail: out of memory is fatal (fatalx). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *old, size_t n);

/* notify.c: sd_notify(3)'s datagram protocol, written from systemd's docs. */
void notify(const char *msg);
uint64_t notify_watchdog_usec(void);

/* roomjson.c: the room object of SPEC §6. */
json_t *roomjson_room(const struct acu_room *r, const struct acu_now *now);
/* The same object, shared with earlier callers while nothing it shows has
 * changed (a new reference; never modify it). */
json_t *roomjson_cached(struct acud *d, const struct acu_room *r, const struct acu_now *now);
void roomjson_clear(struct acud *d);
const char *roomjson_text(struct acud *d, const json_t *v, size_t *len, int *hint);
json_t *roomjson_profile(const struct acu_profile_cfg *p);
json_t *roomjson_flags(unsigned flags);

/* state.c: the atomic state file (SPEC §8). */
void state_path(const struct acud *d, char *buf, size_t len);
/* Saves the rooms: through the writer thread when it runs, else at once.
 * Returns -1 (not saved), STATE_SAVED, or STATE_SAVED_LOW (saved, but the
 * file system is full: only thanks to the reserve, or with too little left). */
int state_save(struct acud *d, const struct acu_now *now, char *err, size_t errlen);
#define STATE_SAVED 0
#define STATE_SAVED_LOW 1
void state_file_init(struct state_file *f, const char *state_dir);
int state_file_write(struct state_file *f, const char *text, size_t len, char *err, size_t errlen);
int state_space_low(const char *dir);
/* The hard contraindications of every session, written to the runtime
 * directory at once whenever one is set; merged back at start-up. */
void state_journal_write(struct acud *d);
void state_journal_apply(struct acud *d);
void state_load(struct acud *d, const struct acu_now *now);
int write_atomic(const char *path, const char *data, size_t len, int durable);

/* history.c, the loop's side: adds "ts", "ts_ns" and "room" and hands one line
 * to the writer thread (or, without it, gathers it for history_flush); steals
 * the reference to e. */
void history_add(struct acud *d, const char *room, json_t *e);
void history_flush(struct acud *d);

/* persist.c: the writer thread. */
struct persist_report {
	uint64_t done;                 /* the generation now on disk, as far as it could be */
	int failed;                    /* the state of that batch is not on disk */
	int low;                       /* saved, but the file system is full or history waits */
	char why[256];
};
struct persist *persist_start(struct state_file *sf, struct history *history, char *err,
			      size_t errlen);
int persist_fd(const struct persist *p);
uint64_t persist_state(struct persist *p, char *text, size_t len);
uint64_t persist_history(struct persist *p, const char *line, size_t len);
uint64_t persist_queued(struct persist *p);
void persist_done(struct persist *p, struct persist_report *rep);
void persist_stop(struct persist *p);

/* publish.c: the one way out for committed changes. The shell publishes each
 * room, alarm and gate event once; listeners (the control socket's watchers
 * first) subscribe without the shell knowing them. */
enum publish_kind { PUBLISH_ROOM, PUBLISH_ALARM, PUBLISH_GATE,
		    PUBLISH_LINE, /* an input edge, for technicians (lines --watch) only */
		    PUBLISH_REMOTE };
struct subscriber {
	/* event: {"event":"room"|"alarm"|"gate"|"remote",...} ("remote": another
	 * board's rooms, heard through MQTT, mqtt.c); borrowed, take a reference
	 * to keep it. */
	void (*fn)(void *arg, enum publish_kind kind, json_t *event);
	void *arg;
	struct subscriber *next;
};
void publish_subscribe(struct acud *d, struct subscriber *s);
void publish_unsubscribe(struct acud *d, struct subscriber *s);
/* Hands event (stolen) to every subscriber. */
void publish(struct acud *d, enum publish_kind kind, json_t *event);

/* cmd.c: request dispatch; returns the reply object, or NULL when the reply
 * is deferred (server_defer). */
json_t *cmd_dispatch(struct acud *d, struct client *c, const char *line, size_t len);

/* commit.c: what every change to a room goes through. */
/* The room with that id, or NULL. */
struct acu_room *commit_room(struct acud *d, const char *id);
/* Drives the room's gates for its new state first (S6: off before anyone hears
 * of it; cause names why), then saves state, records and publishes what
 * changed in room r since *before, and re-arms the deadline timer; record
 * (stolen, may be NULL) goes to the history first. Never a rollback (S7, S9):
 * returns 0, or -1 when the change stands but could not be saved. */
int commit_change(struct acud *d, struct acu_room *r, const struct acu_room *before,
		  const struct acu_now *now, json_t *record, const char *cause, char *err,
		  size_t errlen);
/* commit_change in two halves, for a caller with a record to build between
 * them: the outputs (a cut waits for nothing), then everything else. */
void commit_outputs(struct acud *d, struct acu_room *r, const struct acu_now *now,
		    const char *cause);
int commit_finish(struct acud *d, struct acu_room *r, const struct acu_room *before,
		  const struct acu_now *now, json_t *record, char *err, size_t errlen);
/* What a change tells the world (history, alarms, the room event), and the
 * alarm part alone. */
void commit_report(struct acud *d, struct acu_room *r, const struct acu_room *before,
		   const struct acu_now *now, json_t *record);
void commit_alarms(struct acud *d, const struct acu_room *r, const struct acu_room *before);
/* Arms the deadline timer for the earliest deadline of any room. */
void commit_reschedule(struct acud *d);
/* Runs every room whose deadline passed: gates of all of them first, one save. */
void commit_deadlines(struct acud *d);

/* storage.c (S9): what the writer reported; raises or clears the storage
 * alarm, cuts stimulation whose state could not be saved, and retries while
 * it lasts. */
void storage_report(struct acud *d, const struct persist_report *rep);
/* Edits the rooms for the storage state (alarm, cut) and drives their lines;
 * the caller reports. */
void storage_mark(struct acud *d, int failed, int low, const char *why, const struct acu_now *now);
/* 0 when a change that starts, resumes, extends or arms may go ahead; else
 * -1 with the storage error. */
int storage_check(struct acud *d, struct acu_err *err);
void storage_init(struct acud *d);

/* reload.c: the configuration in force. */
int reload_config(struct acud *d, char *err, size_t errlen);
/* Resolves the role groups of the config and applies its log level. */
void reload_access(struct acud *d);

/* stim.c: gates, pulses, alarm lines, heartbeat and interlocks. */
int stim_open(struct acud *d, char *err, size_t errlen);
void stim_close(struct acud *d);
void stim_emergency_off(struct acud *d);
/* Drives every gate of the room as gate_decide says; returns 1 if any changed. */
int stim_apply(struct acud *d, struct acu_room *r, const struct acu_now *now, const char *cause);
/* S5: every queued interlock edge read and committed now; run before each
 * request so that a trip is handled before anything asked after it. */
void stim_inputs_poll(struct acud *d);
/* Adds button `index` (attach order) to the set of input lines
 * stim_inputs_poll reads; the interlocks are stim.c's own. */
void stim_inputs_watch_button(struct acud *d, int fd, int index);
/* S5: the room's interlock read fresh, inside a change about to arm (the
 * caller commits); returns whether it is tripped. */
int stim_interlock_fresh(struct acud *d, struct acu_room *r, const struct acu_now *now);
/* The edges stim_interlock_fresh read, to the line watchers: once the
 * command's change (if any) has written its gates (S6). */
void stim_interlock_told(struct acud *d, const struct acu_room *r);
int stim_reload_check(struct acud *d, const struct acu_cfg *next, char *err, size_t errlen);
int stim_reload(struct acud *d, const struct acu_cfg *old_cfg, struct acu_room *old_rooms,
		int old_nrooms, char *err, size_t errlen);
/* Arms ev for the monotonic instant `when`. */
void stim_timer_at(struct event *ev, int64_t when);
/* `test ROOM alarm` (SPEC §11): the room's alarm line goes through its
 * patterns for `duration` ns unless a real alarm comes; -1 without a line. */
int stim_lamp_test(struct acud *d, struct acu_room *r, int64_t duration,
		   const struct acu_now *now);

/* button.c: the call and presence inputs (SPEC §11), set up with the room
 * lines (stim.c) and read before each request like the interlocks. */
void button_attach(struct acud *d);
void button_detach(struct acud *d);
void button_free(struct acud *d);
void button_poll(struct acud *d);
/* Button i (attach order) may have an edge: read it. */
void button_ready(struct acud *d, int i);

/* lines.c: what the technician sees of the GPIO lines (SPEC §11). */
struct gpio_line;
json_t *lines_list(struct acud *d);
/* An input read: its edges, if any, go to the `lines --watch` streams. */
void lines_edge(struct acud *d, const struct gpio_line *l, int level, int edges,
		const struct acu_now *now);

#endif

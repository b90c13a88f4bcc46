/* acuctl: what its parts share (SPEC §7).
 *
 *   acuctl.c  main, the options, errors and the command table
 *   args.c    the command line, into requests, by the command table
 *   complete.c  what Tab offers (the bash completion asks `acuctl --complete`)
 *   conn.c    the connection: requests out, lines and replies in
 *   sbuf.c    growing strings, and text made safe and fitted for a terminal
 *   render.c  replies for a person: the status table, details, profiles, history
 *   term.c    the terminal: size, alternate screen, signals
 *   board.c   `acuctl watch`: the live board on a terminal, JSON lines otherwise
 *   lines.c   `acuctl lines [--watch]` and `acuctl test`: the technician's wiring check */
#ifndef ACUCTL_H
#define ACUCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "acud.h"

enum { RC_DONE, RC_REFUSED, RC_USAGE, RC_UNREACHABLE };

#define TIMEOUT_MS 10000 /* connect + send, and again for the reply */

#define C_HIGH "\033[1;31m"
#define C_MEDIUM "\033[33m"
#define C_LOW "\033[36m"
#define C_BOLD "\033[1m"
#define C_OFF "\033[0m"
#define C_ALERT "\033[1;7;31m" /* bold, reversed, red: NOT LIVE */
#define C_DIM "\033[2m"          /* another board's rooms while it is not live */

/* What the command line and the environment chose: the only state the parts
 * share. */
struct acuctl_opts {
	const char *socket;
	int json;   /* --json: replies and events as they came */
	int colour; /* stdout is a terminal that takes colour */
};
extern struct acuctl_opts acuctl_opts;

/* --- acuctl.c --- */
void acuctl_die(int rc, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
#define acuctl_usage_error(...) acuctl_die(RC_USAGE, __VA_ARGS__)
/* Exit 3, naming the socket that failed and why. */
void acuctl_unreachable(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void acuctl_usage(FILE *f);
int64_t acuctl_now_ms(void);

/* --- sbuf.c --- */
struct sbuf {
	char *s;
	size_t len, cap;
};

void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_flush(struct sbuf *b, FILE *f);
void sb_free(struct sbuf *b);
int sb_cols(const char *s);
void sb_clean(struct sbuf *b, const char *s, int cols);
void sb_clean_all(struct sbuf *b, const char *s);
int sb_text(struct sbuf *b, const char *s, int max, const char *col);
void sb_pad(struct sbuf *b, int n);
void sb_cell(struct sbuf *b, const char *s, int width, const char *col);
void sb_clip(struct sbuf *b, int cols);

/* --- conn.c --- */
struct conn {
	int fd;
	char *buf;
	size_t start, end, cap; /* unread bytes are buf[start..end) */
	size_t scanned;         /* of those, already searched for a newline */
};

/* The connection helpers come in pairs: a core that says why it failed (the
 * live board retries with it) and a wrapper that exits 3 with that reason. */
int conn_connect(struct conn *c, char *why, size_t wlen);
void conn_open(struct conn *c);
void conn_close(struct conn *c);
ssize_t conn_fill(struct conn *c);
char *conn_take_line(struct conn *c, size_t *len);
char *conn_next_line(struct conn *c, int64_t deadline, size_t *len, char *why, size_t wlen);
int conn_try_send(struct conn *c, json_t **reqs, int n, int64_t deadline, char *why,
		  size_t wlen);
void conn_send(struct conn *c, json_t **reqs, int n);
json_t *conn_try_reply(struct conn *c, json_t *req, int64_t deadline, char *why, size_t wlen);
json_t *conn_reply(struct conn *c, json_t *req);
json_t *conn_request(const char *name);

/* --- args.c: the command table's vocabulary, and the command line --- */
/* What an argument is: how args.c puts it in the request, and what Tab
 * offers for it (complete.c). */
enum arg_kind {
	ARG_TEXT,     /* a string as typed */
	ARG_ROOM,     /* a room id (Tab asks acud) */
	ARG_PROFILE,  /* a profile name (Tab asks acud) */
	ARG_REF,      /* a patient's chart code */
	ARG_INT,      /* a whole number */
	ARG_DELTA,    /* +N or -N: the sign is required */
	ARG_DURATION, /* 90s, 25m, 1h30m or seconds */
	ARG_SINCE,    /* RFC 3339, unix seconds, or a duration meaning that long ago */
	ARG_ONOFF,    /* on or off, sent as true or false */
	ARG_LEVEL,    /* 0 or 1 */
	ARG_FLAGS,    /* flag names, comma lists too, gathered in one list */
	ARG_SWITCH,   /* an option without a value, sent as true */
	ARG_PATH,     /* a file name */
};

#define ARG_OPTIONAL 1u /* a positional argument that may be left out */
#define ARG_REPEAT 2u   /* may be given again: the last positional, or an option */
#define ARG_REQUIRED 4u /* an option that must be given */

/* A positional argument (name is its placeholder, "ROOM") or an option (name
 * "--needles", meta its value's placeholder, "N"). Lists end with a NULL name. */
struct arg_spec {
	const char *name;
	const char *alias; /* an option's short form, "-s" */
	const char *meta;
	const char *key;   /* its member in the request */
	enum arg_kind kind;
	unsigned flags;
	const char *hints; /* what Tab offers for a duration or a time */
	const char *help;  /* a global option's line in --help; why a required one is */
};

struct args;

/* One command: its usage, its arguments and how they make the request, and
 * how the reply is shown. The same table drives --help, parsing and Tab. */
struct command {
	enum acu_cmd id;                  /* CMD__N: acuctl's own (help) */
	const char *help;                 /* its line in --help */
	const struct arg_spec *pos, *opts;
	void (*show)(json_t *reply);
	int (*run)(const struct command *cmd, struct args *a); /* instead of one request */
};

extern const struct command acuctl_commands[];
const struct command *acuctl_command(const char *name);
const char *acuctl_command_name(const struct command *cmd);

enum { OPT_SOCKET, OPT_JSON, OPT_HELP, OPT_VERSION };
extern const struct arg_spec args_global[]; /* indexed by OPT_*: before or after the command */

struct args {
	int argc;
	char **argv;
	int i;
	int dashdash;               /* after "--" every argument is positional */
	const struct command *cmd;  /* once known: its options are recognised */
};

enum args_item {
	ARGS_END,
	ARGS_POS,      /* word: a positional argument */
	ARGS_OPT,      /* spec and value (NULL for a switch): an option */
	ARGS_UNKNOWN,  /* word: an option nobody knows */
	ARGS_NO_VALUE, /* spec: an option whose value is missing (it was last) */
};

struct arg_item {
	const char *word;
	const struct arg_spec *spec;
	const char *value;
	int global; /* spec is one of args_global */
};

enum args_item args_next(struct args *a, struct arg_item *it);
const struct arg_spec *args_option(const struct command *cmd, const char *name);
void args_global_option(const struct arg_spec *spec, const char *value);
json_t *args_request(const struct command *cmd, struct args *a);
void args_none(const struct command *cmd, struct args *a);
void args_synopsis(const struct command *cmd, struct sbuf *head, struct sbuf *tail);

/* --- render.c --- */
/* A room object and when (monotonic ms) it was current: the board counts
 * down from there between events. */
struct room_at {
	json_t *room;
	int64_t at;
};

int render_table(struct sbuf *b, const struct room_at *rooms, int n, int cols, int64_t now,
		 int maxrows, const char *eol);
void render_room_line(json_t *reply);
void render_status(json_t *reply);
void render_profiles(json_t *reply);
void render_profile(json_t *reply);
void render_history(json_t *reply);
void render_reload(json_t *reply);
void render_version(json_t *reply);
void render_sim_input(json_t *reply);

/* --- lines.c: the technician's `lines` and `test` --- */
void render_lines(json_t *reply);
void render_test(json_t *reply);
int lines_run(const struct command *cmd, struct args *a);

/* --- term.c --- */
void term_restore(void);
void term_enter(void);
void term_catch_quit(void);
void term_catch_board(void);
int term_resized(void);
int term_continued(void);
int term_cols(void);
int term_rows(void);

/* --- complete.c --- */
int complete_main(int argc, char **argv);

/* --- board.c --- */
int board_watch(const struct command *cmd, struct args *a);

/* --- JSON access: a missing or mistyped member reads as absent --- */
static inline const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static inline long long jint(json_t *o, const char *key, long long def)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return def;
}

#endif

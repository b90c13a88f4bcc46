/* acuctl: the command-line client of acud (SPEC §7).
 *
 * One JSON request line, one JSON reply line, over the control socket. `watch`
 * keeps the connection as an event stream: JSON lines when stdout is not a
 * terminal, a live board of the rooms when it is. The parts are listed in
 * acuctl.h; this file holds main, the options, errors and the command table. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acuctl.h"

struct acuctl_opts acuctl_opts = { .socket = ACU_DEFAULT_SOCKET };

int64_t acuctl_now_ms(void)
{
	return acu_mono_now() / NS_PER_MS;
}

void acuctl_die(int rc, const char *fmt, ...)
{
	va_list ap;

	term_restore(); /* or the message would vanish with the alternate screen */
	fflush(stdout);
	fputs("acuctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (rc == RC_USAGE)
		fputs("Try 'acuctl --help'.\n", stderr);
	exit(rc);
}

void acuctl_unreachable(const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	acuctl_die(RC_UNREACHABLE, "cannot reach acud at %s: %s", acuctl_opts.socket, why);
}

/* --- the command table ------------------------------------------------------ */

static const struct arg_spec a_room[] = { { "ROOM", .key = "room", .kind = ARG_ROOM }, { NULL } };
static const struct arg_spec a_status[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM, .flags = ARG_OPTIONAL }, { NULL },
};
static const struct arg_spec a_start[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM },
	{ "DURATION", .key = "duration_s", .kind = ARG_DURATION, .hints = "15m 20m 25m 30m" },
	{ NULL },
};
static const struct arg_spec o_start[] = {
	{ "--needles", .meta = "N", .key = "needles", .kind = ARG_INT },
	{ "--profile", .meta = "P", .key = "profile", .kind = ARG_PROFILE },
	{ "--patient", .meta = "REF", .key = "patient", .kind = ARG_REF },
	{ "--flag", .meta = "F", .key = "flags", .kind = ARG_FLAGS, .flags = ARG_REPEAT },
	{ "--stim", .key = "stim", .kind = ARG_SWITCH },
	{ NULL },
};
static const struct arg_spec a_extend[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM },
	{ "DURATION", .key = "duration_s", .kind = ARG_DURATION, .hints = "5m 10m 15m" },
	{ NULL },
};
static const struct arg_spec o_finish[] = {
	{ "--removed", .meta = "N", .key = "removed", .kind = ARG_INT, .flags = ARG_REQUIRED,
	  .help = "count the needles taken out" },
	{ "--override", .meta = "REASON", .key = "override", .kind = ARG_TEXT },
	{ NULL },
};
static const struct arg_spec a_stim[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM },
	{ "on|off", .key = "on", .kind = ARG_ONOFF },
	{ NULL },
};
static const struct arg_spec a_flag[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM },
	{ "FLAG", .key = "flags", .kind = ARG_FLAGS, .flags = ARG_REPEAT },
	{ NULL },
};
static const struct arg_spec a_needles[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM },
	{ "+N|-N", .key = "delta", .kind = ARG_DELTA },
	{ NULL },
};
static const struct arg_spec a_silence[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM },
	{ "DURATION", .key = "duration_s", .kind = ARG_DURATION, .flags = ARG_OPTIONAL,
	  .hints = "1m 2m 5m 10m" },
	{ NULL },
};
static const struct arg_spec a_profile[] = {
	{ "NAME", .key = "name", .kind = ARG_PROFILE }, { NULL },
};
static const struct arg_spec o_history[] = {
	{ "--room", .meta = "R", .key = "room", .kind = ARG_ROOM },
	{ "--since", .meta = "T", .key = "since", .kind = ARG_SINCE, .hints = "1h 4h 12h 24h" },
	{ "--limit", .meta = "N", .key = "limit", .kind = ARG_INT },
	{ NULL },
};
static const struct arg_spec a_sim_input[] = {
	{ "LINE", .key = "line", .kind = ARG_TEXT },
	{ "LEVEL", .key = "level", .kind = ARG_LEVEL },
	{ NULL },
};

static const struct arg_spec o_lines[] = {
	{ "--watch", .key = "watch", .kind = ARG_SWITCH }, { NULL },
};
static const struct arg_spec a_test[] = {
	{ "ROOM", .key = "room", .kind = ARG_ROOM },
	{ "OUTPUT", .key = "output", .kind = ARG_TEXT, .hints = "alarm" },
	{ "DURATION", .key = "duration_s", .kind = ARG_DURATION, .flags = ARG_OPTIONAL,
	  .hints = "3s 6s 10s" },
	{ NULL },
};

static int run_help(const struct command *cmd, struct args *a)
{
	(void)cmd;
	(void)a;
	acuctl_usage(stdout);
	return RC_DONE;
}

/* In the order --help lists them. */
const struct command acuctl_commands[] = {
	{ CMD_STATUS, "all rooms at a glance, or one room in detail", a_status, NULL,
	  render_status },
	{ CMD_WATCH, "live board on a terminal, JSON events otherwise", .run = board_watch },
	{ CMD_START, "start a session in an idle room", a_start, o_start, render_room_line },
	{ CMD_PAUSE, "freeze the timer; stimulation off", a_room, NULL, render_room_line },
	{ CMD_RESUME, "run a paused timer again", a_room, NULL, render_room_line },
	{ CMD_STOP, "end the timer early: due, needles still in", a_room, NULL,
	  render_room_line },
	{ CMD_CHECKIN, "the patient has been seen (the check-in alarm)", a_room, NULL,
	  render_room_line },
	{ CMD_EXTEND, "add time to the session", a_extend, NULL, render_room_line },
	{ CMD_FINISH, "close a due session: needles out", a_room, o_finish, render_room_line },
	{ CMD_STIM, "arm or disarm stimulation", a_stim, NULL, render_room_line },
	{ CMD_FLAG, "add contraindications to the session", a_flag, NULL, render_room_line },
	{ CMD_NEEDLES, "needles added or dropped during the session", a_needles, NULL,
	  render_room_line },
	{ CMD_SILENCE, "quiet the room's audible alarm (default 2m)", a_silence, NULL,
	  render_room_line },
	{ CMD_PROFILES, "the stimulus profiles", NULL, NULL, render_profiles },
	{ CMD_PROFILE, "every setting of one profile", a_profile, NULL, render_profile },
	{ CMD_HISTORY, "who did what, refusals, gate changes", NULL, o_history, render_history },
	{ CMD_RELOAD, "re-read acud's configuration", NULL, NULL, render_reload },
	{ CMD_VERSION, "versions, and your user and role", NULL, NULL, render_version },
	{ CMD_SIM_INPUT, "simulated GPIO: set an input line to 0 or 1", a_sim_input, NULL,
	  render_sim_input },
	{ CMD_LINES, "every GPIO line and its level; --watch: input edges live", NULL, o_lines,
	  render_lines, lines_run },
	{ CMD_TEST, "run a room's alarm lamp/buzzer through its patterns", a_test, NULL,
	  render_test },
	{ CMD__N, "show this help", .run = run_help },
	{ CMD__N, NULL }, /* the end */
};

const char *acuctl_command_name(const struct command *cmd)
{
	return cmd->id < CMD__N ? acu_cmd_name(cmd->id) : "help";
}

const struct command *acuctl_command(const char *name)
{
	for (const struct command *c = acuctl_commands; c->help; c++)
		if (strcmp(name, acuctl_command_name(c)) == 0)
			return c;
	return NULL;
}

/* --- usage ------------------------------------------------------------------ */

#define USAGE_WIDTH 79
#define USAGE_HELP_COL 32 /* where a command's help starts */

/* Prints text in lines of at most USAGE_WIDTH columns, broken at blanks. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
	int col = 0;

	while (*text) {
		size_t n = strcspn(text, " ");

		if (col && col + 1 + (int)n > USAGE_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", (int)n, text);
		col += (int)n;
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

/* "  start ROOM DURATION           start a session in an idle room", and the
 * optional options on the line under it when they do not fit beside it. */
static void usage_command(FILE *f, const struct command *cmd)
{
	struct sbuf head = { 0 }, tail = { 0 };
	int col;

	args_synopsis(cmd, &head, &tail);
	if (tail.len && 2 + head.len + 1 + tail.len <= USAGE_HELP_COL - 2) {
		sb_add(&head, " ", 1);
		sb_puts(&head, tail.s);
		tail.len = 0;
	}
	col = 2 + (int)head.len;
	fprintf(f, "  %s%*s%s\n", head.s, col < USAGE_HELP_COL ? USAGE_HELP_COL - col : 2, "",
		cmd->help);
	if (tail.len) {
		fprintf(f, "%8s", "");
		print_wrapped(f, tail.s, 8);
	}
	sb_free(&head);
	sb_free(&tail);
}

void acuctl_usage(FILE *f)
{
	char flags[256], notes[1024];

	fputs("Usage: acuctl [-s SOCKET] [--json] COMMAND [ARGS]\n\nCommands:\n", f);
	for (const struct command *c = acuctl_commands; c->help; c++)
		usage_command(f, c);
	fputs("\nOptions:\n", f);
	for (const struct arg_spec *o = args_global; o->name; o++) {
		char left[32];

		snprintf(left, sizeof left, "%s%s%s%s%s", o->alias ? o->alias : "",
			 o->alias ? ", " : "    ", o->name, o->meta ? " " : "",
			 o->meta ? o->meta : "");
		fprintf(f, "  %-20s%s\n", left, o->help);
	}
	acu_flag_list(flags, sizeof flags, ", ");
	snprintf(notes, sizeof notes,
		 "DURATION: 90s, 25m, 1h, 1h30m or plain seconds.  T: RFC 3339 time, unix "
		 "seconds, or a duration meaning that long ago (2h).  FLAG: %s.  REF: a chart "
		 "code of 1 to 32 of A-Z a-z 0-9 . _ - (never a name).",
		 flags);
	fputc('\n', f);
	print_wrapped(f, notes, 0);
	fputs("Exit status: 0 done, 1 refused by acud, 2 usage error, 3 cannot reach acud.\n", f);
}

int main(int argc, char **argv)
{
	struct args a = { argc, argv, 1, 0, NULL };
	const struct command *cmd = NULL;
	const char *env = getenv("ACUD_SOCKET"), *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");
	struct arg_item it;
	json_t *req, *reply;
	struct conn c;

	if (env && *env)
		acuctl_opts.socket = env;
	/* Hidden: what Tab offers, for cli/acuctl.bash-completion. */
	if (argc > 1 && strcmp(argv[1], "--complete") == 0)
		return complete_main(argc - 2, argv + 2);
	while (!cmd) {
		switch (args_next(&a, &it)) {
		case ARGS_END:
			acuctl_usage(stderr);
			return RC_USAGE;
		case ARGS_UNKNOWN:
			acuctl_usage_error("unknown option %s", it.word);
		case ARGS_NO_VALUE:
			acuctl_usage_error("option %s needs a value", it.word);
		case ARGS_OPT:
			args_global_option(it.spec, it.value);
			break;
		case ARGS_POS:
			cmd = acuctl_command(it.word);
			if (!cmd)
				acuctl_usage_error("unknown command '%s'", it.word);
			break;
		}
	}
	/* https://no-color.org: a non-empty NO_COLOR turns colour off. */
	acuctl_opts.colour = isatty(STDOUT_FILENO) && !(nc && *nc) &&
			     !(term && strcmp(term, "dumb") == 0);

	if (cmd->run)
		return cmd->run(cmd, &a);
	req = args_request(cmd, &a);
	conn_open(&c);
	conn_send(&c, &req, 1);
	reply = conn_reply(&c, req);
	conn_close(&c);
	json_decref(req);
	if (!reply)
		return RC_REFUSED;
	if (!acuctl_opts.json)
		cmd->show(reply);
	json_decref(reply);
	/* acud did it: a lost reply on stdout does not make it undone. */
	if (fflush(stdout) == EOF || ferror(stdout))
		fprintf(stderr, "acuctl: warning: cannot write the reply: %s\n", strerror(errno));
	return RC_DONE;
}

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

void acuctl_usage(FILE *f)
{
	fprintf(f,
		"Usage: acuctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  status [ROOM]                 all rooms at a glance, or one room in detail\n"
		"  watch                         live board on a terminal, JSON events otherwise\n"
		"  start ROOM DURATION [--needles N] [--profile P] [--patient REF]\n"
		"                      [--flag F]... [--stim]\n"
		"  pause|resume|stop|checkin ROOM\n"
		"  extend ROOM DURATION\n"
		"  finish ROOM --removed N [--override REASON]\n"
		"  stim ROOM on|off\n"
		"  flag ROOM FLAG...\n"
		"  needles ROOM +N|-N            needles added or dropped during the session\n"
		"  silence ROOM [DURATION]       quiet the room's audible alarm (default 2m)\n"
		"  profiles | profile NAME\n"
		"  history [--room R] [--since T] [--limit N]\n"
		"  reload | version\n"
		"  sim-input LINE LEVEL          simulated GPIO: set an input line to 0 or 1\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default: $ACUD_SOCKET, else %s)\n"
		"      --json          print acud's replies (and watch events) as JSON lines\n"
		"  -h, --help          show this help\n"
		"      --version       show acuctl's version\n"
		"\n"
		"DURATION: 90s, 25m, 1h, 1h30m or plain seconds.  T: RFC 3339 time, unix\n"
		"seconds, or a duration meaning that long ago (2h).  FLAG: pacemaker, icd,\n"
		"implanted-device, pregnancy, epilepsy, heart-disease, bleeding-disorder,\n"
		"metal-implant.  REF: a chart code of 1 to 32 of A-Z a-z 0-9 . _ - (never a name).\n"
		"Exit status: 0 done, 1 refused by acud, 2 usage error, 3 cannot reach acud.\n",
		ACU_DEFAULT_SOCKET);
}

static const struct command commands[] = {
	{ "status", "status [ROOM]", 0, 1, args_build_plain, render_status },
	{ "watch", "watch", 0, 0, NULL, NULL },
	{ "start", "start ROOM DURATION [--needles N] [--profile P] [--patient REF] "
		   "[--flag F]... [--stim]", 2, 2, args_build_start, render_room_line },
	{ "pause", "pause ROOM", 1, 1, args_build_plain, render_room_line },
	{ "resume", "resume ROOM", 1, 1, args_build_plain, render_room_line },
	{ "stop", "stop ROOM", 1, 1, args_build_plain, render_room_line },
	{ "checkin", "checkin ROOM", 1, 1, args_build_plain, render_room_line },
	{ "extend", "extend ROOM DURATION", 2, 2, args_build_extend, render_room_line },
	{ "finish", "finish ROOM --removed N [--override REASON]", 1, 1, args_build_finish,
	  render_room_line },
	{ "stim", "stim ROOM on|off", 2, 2, args_build_stim, render_room_line },
	{ "flag", "flag ROOM FLAG...", 2, 2, args_build_flag, render_room_line },
	{ "needles", "needles ROOM +N|-N", 2, 2, args_build_needles, render_room_line },
	{ "silence", "silence ROOM [DURATION]", 1, 2, args_build_silence, render_room_line },
	{ "profiles", "profiles", 0, 0, args_build_plain, render_profiles },
	{ "profile", "profile NAME", 1, 1, args_build_plain, render_profile },
	{ "history", "history [--room R] [--since T] [--limit N]", 0, 0, args_build_history,
	  render_history },
	{ "reload", "reload", 0, 0, args_build_plain, render_reload },
	{ "version", "version", 0, 0, args_build_plain, render_version },
	{ "sim-input", "sim-input LINE LEVEL", 2, 2, args_build_sim_input, render_sim_input },
};

int main(int argc, char **argv)
{
	struct args a = { argc, argv, 1, 0 };
	const struct command *cmd = NULL;
	const char *name, *env = getenv("ACUD_SOCKET"), *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");
	json_t *req, *reply;
	struct conn c;
	int opt;

	if (env && *env)
		acuctl_opts.socket = env;
	name = args_next(&a, &opt);
	if (!name) {
		acuctl_usage(stderr);
		return RC_USAGE;
	}
	if (opt)
		acuctl_usage_error("unknown option %s", name);
	if (strcmp(name, "help") == 0) {
		acuctl_usage(stdout);
		return RC_DONE;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(name, commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd)
		acuctl_usage_error("unknown command '%s'", name);
	/* https://no-color.org: a non-empty NO_COLOR turns colour off. */
	acuctl_opts.colour = isatty(STDOUT_FILENO) && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);

	if (!cmd->build)
		return board_watch(cmd, &a);
	req = cmd->build(cmd, &a);
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

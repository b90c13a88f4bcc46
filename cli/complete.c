/* What Tab offers, from the command table: `acuctl --complete WORD... CUR`
 * reads the words before the cursor as acuctl itself would and prints
 * "words" and the candidates for CUR, one a line, or "files" when CUR is a
 * file name (the shell lists those). cli/acuctl.bash-completion is only the
 * glue, so commands, options and flags are never listed twice. Room ids and
 * profile names come from the running daemon; one that does not answer within
 * a couple of seconds simply offers nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acuctl.h"

#define ASK_MS 2000

static void offer(const char *word, const char *cur)
{
	if (strncmp(word, cur, strlen(cur)) == 0)
		printf("%s\n", word);
}

/* Offers each blank-separated word of list. */
static void offer_list(const char *list, const char *cur)
{
	char word[64];

	while (list && *list) {
		size_t n = strcspn(list, " ");

		snprintf(word, sizeof word, "%.*s", (int)n, list);
		offer(word, cur);
		list += n;
		list += strspn(list, " ");
	}
}

/* The `key` strings of the objects in acud's reply to `what` under `list`:
 * the room ids of status, the profile names of profiles. */
static void offer_asked(enum acu_cmd what, const char *list, const char *key, const char *cur)
{
	json_t *req = conn_request(acu_cmd_name(what)), *reply = NULL, *e;
	int64_t deadline = acuctl_now_ms() + ASK_MS;
	struct conn c;
	char why[256];
	size_t i;

	if (conn_connect(&c, why, sizeof why) == 0 &&
	    conn_try_send(&c, &req, 1, deadline, why, sizeof why) == 0 &&
	    (reply = conn_try_reply(&c, req, deadline, why, sizeof why))) {
		json_array_foreach(json_object_get(reply, list), i, e) {
			const char *s = jstr(e, key);

			/* Only what can be typed back as one word. */
			if (s && *s && !s[strcspn(s, " \t\n\"'\\$`")])
				offer(s, cur);
		}
	}
	json_decref(reply);
	json_decref(req);
	conn_close(&c);
}

/* Flag names; after a comma ("pregnancy,epi") the list so far is kept. */
static void offer_flags(const char *cur)
{
	const char *last = strrchr(cur, ',');
	size_t head = last ? (size_t)(last - cur) + 1 : 0;

	for (int f = 0; f < FL__N; f++)
		if (strncmp(acu_flag_name(f), cur + head, strlen(cur + head)) == 0)
			printf("%.*s%s\n", (int)head, cur, acu_flag_name(f));
}

static void offer_value(const struct arg_spec *s, const char *cur)
{
	if (s->kind == ARG_PATH) {
		puts("files");
		return;
	}
	puts("words");
	switch (s->kind) {
	case ARG_ROOM:
		offer_asked(CMD_STATUS, "rooms", "id", cur);
		break;
	case ARG_PROFILE:
		offer_asked(CMD_PROFILES, "profiles", "name", cur);
		break;
	case ARG_FLAGS:
		offer_flags(cur);
		break;
	case ARG_ONOFF:
		offer_list("on off", cur);
		break;
	case ARG_LEVEL:
		offer_list("0 1", cur);
		break;
	case ARG_DELTA:
		offer_list("+1 -1", cur);
		break;
	case ARG_TEXT: /* a fixed word (test's OUTPUT), when it has hints */
	case ARG_DURATION:
	case ARG_SINCE:
		offer_list(s->hints, cur);
		break;
	default: /* nothing to guess: counts, chart codes, reasons */
		break;
	}
}

static void offer_options(const struct arg_spec *list, const char *cur)
{
	for (; list && list->name; list++) {
		if (list->alias)
			offer(list->alias, cur);
		offer(list->name, cur);
	}
}

/* The positional argument number n of cmd (the last one repeats). */
static const struct arg_spec *nth_arg(const struct command *cmd, int n)
{
	const struct arg_spec *p = cmd->pos;

	for (; p && p->name; p++, n--)
		if (n == 0 || ((p->flags & ARG_REPEAT) && !p[1].name))
			return p;
	return NULL;
}

int complete_main(int argc, char **argv)
{
	struct args a = { argc > 0 ? argc - 1 : 0, argv, 0, 0, NULL };
	const char *cur = argc > 0 ? argv[argc - 1] : "", *eq;
	const struct arg_spec *pos = NULL, *spec;
	struct arg_item it;
	enum args_item k;
	int npos = 0;
	char home_sock[4096];

	while ((k = args_next(&a, &it)) != ARGS_END) {
		if (k == ARGS_NO_VALUE) /* the cursor is on its value */
			break;
		if (k == ARGS_OPT && it.spec == &args_global[OPT_SOCKET]) {
			acuctl_opts.socket = it.value;
			if (strncmp(it.value, "~/", 2) == 0 && getenv("HOME")) {
				snprintf(home_sock, sizeof home_sock, "%s%s", getenv("HOME"),
					 it.value + 1);
				acuctl_opts.socket = home_sock;
			}
		}
		if (k != ARGS_POS)
			continue;
		if (a.cmd)
			npos++;
		else if (!(a.cmd = acuctl_command(it.word)))
			return RC_DONE; /* not a command: nothing to offer */
	}
	if (k == ARGS_NO_VALUE) {
		offer_value(it.spec, cur);
		return RC_DONE;
	}
	if (!a.dashdash && strncmp(cur, "--", 2) == 0 && (eq = strchr(cur, '='))) {
		char name[64];

		snprintf(name, sizeof name, "%.*s", (int)(eq - cur), cur);
		spec = args_option(a.cmd, name);
		if (spec && spec->meta)
			offer_value(spec, eq + 1);
		return RC_DONE;
	}
	if (a.cmd)
		pos = nth_arg(a.cmd, npos);
	/* "needles 1 -": a sign there starts the count, not an option. */
	if (!a.dashdash && cur[0] == '-' && !(pos && pos->kind == ARG_DELTA)) {
		puts("words");
		offer_options(args_global, cur);
		offer_options(a.cmd ? a.cmd->opts : NULL, cur);
		return RC_DONE;
	}
	if (!a.cmd) {
		puts("words");
		for (const struct command *c = acuctl_commands; c->help; c++)
			offer(acuctl_command_name(c), cur);
		return RC_DONE;
	}
	if (pos)
		offer_value(pos, cur);
	return RC_DONE;
}

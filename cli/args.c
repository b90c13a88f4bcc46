/* acuctl's command line, read by the command table (acuctl.c): options before
 * and after the command word, and each command's arguments checked and made
 * into its request, so that a typo is a usage error (exit 2) and never
 * reaches acud. The completion walks the same words with args_next(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acuctl.h"

const struct arg_spec args_global[] = {
	[OPT_SOCKET] = { "--socket", "-s", "PATH", NULL, ARG_PATH, 0, NULL,
			 "control socket (default: $ACUD_SOCKET, else " ACU_DEFAULT_SOCKET ")" },
	[OPT_JSON] = { "--json", NULL, NULL, NULL, ARG_SWITCH, 0, NULL,
		       "print acud's replies (and watch events) as JSON lines" },
	[OPT_HELP] = { "--help", "-h", NULL, NULL, ARG_SWITCH, 0, NULL, "show this help" },
	[OPT_VERSION] = { "--version", NULL, NULL, NULL, ARG_SWITCH, 0, NULL,
			  "show acuctl's version" },
	{ NULL },
};

/* "-3" is a needle delta, not an option. */
static int looks_like_option(const char *s)
{
	return s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9');
}

/* Whether word is option o, in any of its forms ("--x V", "--x=V", "-s V",
 * "-sV"); *value is the attached value, if any. */
static int option_is(const struct arg_spec *o, const char *word, const char **value)
{
	size_t n = strlen(o->name);

	*value = NULL;
	if (strcmp(word, o->name) == 0 || (o->alias && strcmp(word, o->alias) == 0))
		return 1;
	if (!o->meta) /* a switch takes no "=value" */
		return 0;
	if (strncmp(word, o->name, n) == 0 && word[n] == '=') {
		*value = word + n + 1;
		return 1;
	}
	if (o->alias && strncmp(word, o->alias, strlen(o->alias)) == 0) {
		*value = word + strlen(o->alias);
		return 1;
	}
	return 0;
}

static const struct arg_spec *find_option(const struct arg_spec *list, const char *word,
					  const char **value)
{
	for (; list && list->name; list++)
		if (option_is(list, word, value))
			return list;
	return NULL;
}

/* An option of cmd (or a global one) by its name or short form. */
const struct arg_spec *args_option(const struct command *cmd, const char *name)
{
	const struct arg_spec *o;
	const char *v;

	o = find_option(args_global, name, &v);
	return o ? o : find_option(cmd ? cmd->opts : NULL, name, &v);
}

/* The next argument, as what it is. Options are the global ones and, once
 * a->cmd is set, the command's. */
enum args_item args_next(struct args *a, struct arg_item *it)
{
	memset(it, 0, sizeof *it);
	while (a->i < a->argc) {
		const char *word = a->argv[a->i++];

		if (!a->dashdash && strcmp(word, "--") == 0) {
			a->dashdash = 1;
			continue;
		}
		it->word = word;
		if (a->dashdash || !looks_like_option(word))
			return ARGS_POS;
		it->spec = find_option(args_global, word, &it->value);
		it->global = it->spec != NULL;
		if (!it->spec)
			it->spec = find_option(a->cmd ? a->cmd->opts : NULL, word, &it->value);
		if (!it->spec)
			return ARGS_UNKNOWN;
		if (it->spec->meta && !it->value) {
			if (a->i >= a->argc)
				return ARGS_NO_VALUE;
			it->value = a->argv[a->i++];
		}
		return ARGS_OPT;
	}
	return ARGS_END;
}

/* Options that mean the same before and after the command word. */
void args_global_option(const struct arg_spec *spec, const char *value)
{
	switch (spec - args_global) {
	case OPT_SOCKET:
		if (!value || !*value)
			acuctl_usage_error("empty socket path");
		acuctl_opts.socket = value;
		break;
	case OPT_JSON:
		acuctl_opts.json = 1;
		break;
	case OPT_HELP:
		acuctl_usage(stdout);
		exit(RC_DONE);
	case OPT_VERSION:
		printf("acuctl %s (protocol %d)\n", ACUD_VERSION, ACUD_PROTOCOL);
		exit(RC_DONE);
	}
}

static void put_spec(struct sbuf *b, const struct arg_spec *s)
{
	sb_puts(b, s->name);
	if (s->meta) {
		sb_add(b, " ", 1);
		sb_puts(b, s->meta);
	}
}

/* "start ROOM DURATION" in head (the name, positionals and required options)
 * and "[--needles N] [--profile P] ..." in tail, which --help may wrap. */
void args_synopsis(const struct command *cmd, struct sbuf *head, struct sbuf *tail)
{
	const struct arg_spec *s;

	sb_puts(head, acuctl_command_name(cmd));
	for (s = cmd->pos; s && s->name; s++) {
		sb_puts(head, s->flags & ARG_OPTIONAL ? " [" : " ");
		sb_puts(head, s->name);
		sb_puts(head, s->flags & ARG_OPTIONAL ? "]" : "");
		sb_puts(head, s->flags & ARG_REPEAT ? "..." : "");
	}
	for (s = cmd->opts; s && s->name; s++) {
		if (s->flags & ARG_REQUIRED) {
			sb_add(head, " ", 1);
			put_spec(head, s);
			continue;
		}
		sb_puts(tail, tail->len ? " [" : "[");
		put_spec(tail, s);
		sb_puts(tail, s->flags & ARG_REPEAT ? "]..." : "]");
	}
}

static void __attribute__((noreturn)) bad_usage(const struct command *cmd, const char *what,
						const char *arg)
{
	struct sbuf head = { 0 }, tail = { 0 };

	args_synopsis(cmd, &head, &tail);
	acuctl_die(RC_USAGE, "%s%s%s\nusage: acuctl %s%s%s", what, arg ? " " : "", arg ? arg : "",
		   head.s, tail.len ? " " : "", tail.len ? tail.s : "");
}

static void set_str(json_t *req, const char *key, const char *val)
{
	json_t *s = json_string(val);

	if (!s)
		acuctl_usage_error("%s: not valid UTF-8", key);
	json_object_set_new(req, key, s);
}

static long long duration_arg(const char *s)
{
	int64_t v;

	if (acu_parse_duration(s, &v) < 0)
		acuctl_usage_error("bad duration '%s': use e.g. 90s, 25m, 1h, 1h30m or plain "
				   "seconds", s);
	return v;
}

static long long int_arg(const char *what, const char *s)
{
	int64_t v;

	if (acu_parse_int(s, INT32_MIN, INT32_MAX, &v) < 0)
		acuctl_usage_error("%s: '%s' is not a whole number", what, s);
	return v;
}

/* Checked here so that a typo is a usage error, not a request. */
static void add_flags(json_t *list, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;

	if (!copy)
		acuctl_die(RC_UNREACHABLE, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (acu_flag_parse(tok) < 0) {
			char known[160];

			acu_flag_list(known, sizeof known, ", ");
			fprintf(stderr, "acuctl: unknown flag '%s'; known: %s\n", tok, known);
			free(copy);
			exit(RC_USAGE);
		}
		json_array_append_new(list, json_string(tok));
	}
	free(copy);
	if (json_array_size(list) == 0)
		acuctl_usage_error("empty flag list '%s'", arg);
}

/* --since: RFC 3339 goes as a string, unix seconds as a number, and a
 * duration ("2h") as the unix time that long ago. */
static json_t *since_arg(const char *s)
{
	int64_t v, ns;

	if (acu_parse_int(s, 0, INT64_MAX, &v) == 0 && s[0] != '+' && s[0] != '-')
		return json_integer(v);
	if (acu_parse_rfc3339(s, &ns) == 0)
		return json_string(s);
	if (acu_parse_duration(s, &v) == 0)
		return json_integer(acu_now().wall / NS_PER_SEC - v);
	acuctl_usage_error("--since: '%s' is neither an RFC 3339 time, unix seconds nor a "
			   "duration", s);
}

/* Puts one argument in the request, as its kind says. */
static void put_arg(json_t *req, const struct command *cmd, const struct arg_spec *s,
		    const char *v)
{
	/* Positional numbers are named after their command: "needles: ...". */
	const char *what = s->name[0] == '-' ? s->name : acuctl_command_name(cmd);
	json_t *list;

	if (s->kind == ARG_SWITCH || !v) { /* switches, and only they, come without a value */
		json_object_set_new(req, s->key, json_true());
		return;
	}
	switch (s->kind) {
	case ARG_TEXT:
	case ARG_ROOM:
	case ARG_PROFILE:
	case ARG_PATH:
		set_str(req, s->key, v);
		break;
	case ARG_REF:
		if (!acu_valid_ref(v))
			acuctl_usage_error("%s: '%s' is not a chart code (1 to 32 of "
					   "A-Z a-z 0-9 . _ -; never a name)", s->name, v);
		set_str(req, s->key, v);
		break;
	case ARG_DELTA:
		if (v[0] != '+' && v[0] != '-')
			bad_usage(cmd, "the change needs a sign (+N added, -N dropped), not", v);
		/* fall through */
	case ARG_INT:
		json_object_set_new(req, s->key, json_integer(int_arg(what, v)));
		break;
	case ARG_DURATION:
		json_object_set_new(req, s->key, json_integer(duration_arg(v)));
		break;
	case ARG_SINCE:
		json_object_set_new(req, s->key, since_arg(v));
		break;
	case ARG_ONOFF:
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
			bad_usage(cmd, "expected on or off, not", v);
		json_object_set_new(req, s->key, json_boolean(strcmp(v, "on") == 0));
		break;
	case ARG_LEVEL:
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
			char what_is[64];

			snprintf(what_is, sizeof what_is, "%s is 0 or 1, not", s->name);
			bad_usage(cmd, what_is, v);
		}
		json_object_set_new(req, s->key, json_integer(v[0] - '0'));
		break;
	case ARG_FLAGS:
		list = json_object_get(req, s->key);
		if (!list) {
			list = json_array();
			json_object_set_new(req, s->key, list);
		}
		add_flags(list, v);
		break;
	case ARG_SWITCH: /* above */
		break;
	}
}

/* Reads the rest of the command line as cmd's arguments into req (NULL for
 * a command that takes none but the global options). */
static void parse(const struct command *cmd, struct args *a, json_t *req)
{
	const struct arg_spec *p = cmd->pos, *o;
	struct arg_item it;
	unsigned seen = 0; /* the options given, by their place in cmd->opts */
	int got = 0;       /* arguments taken by *p */

	a->cmd = cmd;
	for (;;) {
		switch (args_next(a, &it)) {
		case ARGS_END:
			goto done;
		case ARGS_UNKNOWN:
			bad_usage(cmd, "unknown option", it.word);
		case ARGS_NO_VALUE:
			acuctl_usage_error("option %s needs a value", it.word);
		case ARGS_OPT:
			if (it.global) {
				args_global_option(it.spec, it.value);
				break;
			}
			put_arg(req, cmd, it.spec, it.value);
			seen |= 1u << (it.spec - cmd->opts);
			break;
		case ARGS_POS:
			if (!p || !p->name)
				bad_usage(cmd, "unexpected argument", it.word);
			put_arg(req, cmd, p, it.word);
			if (p->flags & ARG_REPEAT) {
				got++;
			} else {
				p++;
				got = 0;
			}
			break;
		}
	}
done:
	if (p && p->name && !(p->flags & ARG_OPTIONAL) && !got) {
		struct sbuf missing = { 0 };

		sb_puts(&missing, "missing");
		for (; p->name && !(p->flags & ARG_OPTIONAL); p++) {
			sb_add(&missing, " ", 1);
			sb_puts(&missing, p->name);
			sb_puts(&missing, p->flags & ARG_REPEAT ? "..." : "");
		}
		bad_usage(cmd, missing.s, NULL);
	}
	for (o = cmd->opts; o && o->name; o++) {
		if ((o->flags & ARG_REQUIRED) && !(seen & (1u << (o - cmd->opts)))) {
			char why[160];

			snprintf(why, sizeof why, "%s %s is required: %s", o->name, o->meta,
				 o->help);
			bad_usage(cmd, why, NULL);
		}
	}
}

/* The request of cmd from the rest of the command line. */
json_t *args_request(const struct command *cmd, struct args *a)
{
	json_t *req = conn_request(acuctl_command_name(cmd));

	parse(cmd, a, req);
	return req;
}

/* For a command that takes nothing but global options (watch). */
void args_none(const struct command *cmd, struct args *a)
{
	parse(cmd, a, NULL);
}

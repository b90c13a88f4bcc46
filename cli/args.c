/* acuctl's command line: options before and after the command word, and
 * each command's arguments checked and made into its request, so that a typo
 * is a usage error (exit 2) and never reaches acud. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acuctl.h"

/* "-3" is a needle delta, not an option. */
static int looks_like_option(const char *s)
{
	return s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9');
}

/* The value of option `name` if arg is it ("--x V", "--x=V", "-sV"), else NULL. */
static const char *option_value(struct args *a, const char *arg, const char *name)
{
	size_t n = strlen(name);

	if (strcmp(arg, name) == 0) {
		if (a->i >= a->argc)
			acuctl_usage_error("option %s needs a value", name);
		return a->argv[a->i++];
	}
	if (strncmp(arg, name, n) == 0) {
		if (name[1] == '-' && arg[n] == '=')
			return arg + n + 1;
		if (name[1] != '-' && arg[n])
			return arg + n;
	}
	return NULL;
}

/* Options that mean the same before and after the command word. */
static int global_option(struct args *a, const char *arg)
{
	const char *v;

	if (strcmp(arg, "--json") == 0) {
		acuctl_opts.json = 1;
		return 1;
	}
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
		acuctl_usage(stdout);
		exit(RC_DONE);
	}
	if (strcmp(arg, "--version") == 0) {
		printf("acuctl %s (protocol %d)\n", ACUD_VERSION, ACUD_PROTOCOL);
		exit(RC_DONE);
	}
	if ((v = option_value(a, arg, "--socket")) || (v = option_value(a, arg, "-s"))) {
		if (!*v)
			acuctl_usage_error("empty socket path");
		acuctl_opts.socket = v;
		return 1;
	}
	return 0;
}

/* The next argument a command has to deal with; NULL at the end. *opt tells
 * whether it is an option (which the command must know, or refuse). */
const char *args_next(struct args *a, int *opt)
{
	while (a->i < a->argc) {
		const char *arg = a->argv[a->i++];

		if (!a->dashdash && strcmp(arg, "--") == 0) {
			a->dashdash = 1;
			continue;
		}
		if (a->dashdash || !looks_like_option(arg)) {
			*opt = 0;
			return arg;
		}
		if (global_option(a, arg))
			continue;
		*opt = 1;
		return arg;
	}
	return NULL;
}

static void __attribute__((noreturn)) bad_usage(const struct command *cmd, const char *what,
						const char *arg)
{
	acuctl_die(RC_USAGE, "%s%s%s\nusage: acuctl %s", what, arg ? " " : "", arg ? arg : "",
	    cmd->synopsis);
}

/* Gathers up to cmd->max positional arguments; any option is refused. */
int args_plain(const struct command *cmd, struct args *a, const char **pos)
{
	const char *arg;
	int n = 0, opt;

	while ((arg = args_next(a, &opt))) {
		if (opt)
			bad_usage(cmd, "unknown option", arg);
		if (n >= cmd->max)
			bad_usage(cmd, "unexpected argument", arg);
		pos[n++] = arg;
	}
	if (n < cmd->min)
		bad_usage(cmd, "missing arguments", NULL);
	return n;
}

static void set_str(json_t *req, const char *key, const char *val)
{
	json_t *s = json_string(val);

	if (!s)
		acuctl_usage_error("%s: not valid UTF-8", key);
	json_object_set_new(req, key, s);
}

static void set_int(json_t *req, const char *key, long long v)
{
	json_object_set_new(req, key, json_integer(v));
}

static long long duration_arg(const char *s)
{
	int64_t v;

	if (acu_parse_duration(s, &v) < 0)
		acuctl_usage_error("bad duration '%s': use e.g. 90s, 25m, 1h, 1h30m or plain seconds", s);
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

json_t *args_build_plain(const struct command *cmd, struct args *a)
{
	const char *pos[2] = { NULL, NULL };
	int n = args_plain(cmd, a, pos);
	json_t *req = conn_request(cmd->name);

	if (n >= 1)
		set_str(req, strcmp(cmd->name, "profile") == 0 ? "name" : "room", pos[0]);
	return req;
}

json_t *args_build_extend(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;
	long long d;

	args_plain(cmd, a, pos);
	d = duration_arg(pos[1]);
	req = conn_request(cmd->name);
	set_str(req, "room", pos[0]);
	set_int(req, "duration_s", d);
	return req;
}

json_t *args_build_silence(const struct command *cmd, struct args *a)
{
	const char *pos[2] = { NULL, NULL };
	int n = args_plain(cmd, a, pos);
	long long d = n > 1 ? duration_arg(pos[1]) : -1;
	json_t *req = conn_request(cmd->name);

	set_str(req, "room", pos[0]);
	if (d >= 0)
		set_int(req, "duration_s", d);
	return req;
}

json_t *args_build_stim(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;
	int on;

	args_plain(cmd, a, pos);
	if (strcmp(pos[1], "on") == 0)
		on = 1;
	else if (strcmp(pos[1], "off") == 0)
		on = 0;
	else
		bad_usage(cmd, "expected on or off, not", pos[1]);
	req = conn_request(cmd->name);
	set_str(req, "room", pos[0]);
	json_object_set_new(req, "on", json_boolean(on));
	return req;
}

json_t *args_build_flag(const struct command *cmd, struct args *a)
{
	json_t *req = conn_request(cmd->name), *flags = json_array();
	const char *arg, *room = NULL;
	int opt;

	while ((arg = args_next(a, &opt))) {
		if (opt)
			bad_usage(cmd, "unknown option", arg);
		if (!room)
			room = arg;
		else
			add_flags(flags, arg);
	}
	if (!room || json_array_size(flags) == 0)
		bad_usage(cmd, "missing arguments", NULL);
	set_str(req, "room", room);
	json_object_set_new(req, "flags", flags);
	return req;
}

/* The sign is required: "needles 1 3" could be read as "now 3". */
json_t *args_build_needles(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;
	long long d;

	args_plain(cmd, a, pos);
	if (pos[1][0] != '+' && pos[1][0] != '-')
		bad_usage(cmd, "the change needs a sign (+N added, -N dropped), not", pos[1]);
	d = int_arg("needles", pos[1]);
	req = conn_request(cmd->name);
	set_str(req, "room", pos[0]);
	set_int(req, "delta", d);
	return req;
}

json_t *args_build_sim_input(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;

	args_plain(cmd, a, pos);
	if (strcmp(pos[1], "0") != 0 && strcmp(pos[1], "1") != 0)
		bad_usage(cmd, "LEVEL is 0 or 1, not", pos[1]);
	req = conn_request(cmd->name);
	set_str(req, "line", pos[0]);
	set_int(req, "level", pos[1][0] - '0');
	return req;
}

json_t *args_build_start(const struct command *cmd, struct args *a)
{
	json_t *req = conn_request(cmd->name), *flags = json_array();
	const char *pos[2], *arg, *v;
	int n = 0, opt, stim = 0;

	while ((arg = args_next(a, &opt))) {
		if (!opt) {
			if (n >= 2)
				bad_usage(cmd, "unexpected argument", arg);
			pos[n++] = arg;
		} else if ((v = option_value(a, arg, "--needles"))) {
			set_int(req, "needles", int_arg("--needles", v));
		} else if ((v = option_value(a, arg, "--profile"))) {
			set_str(req, "profile", v);
		} else if ((v = option_value(a, arg, "--patient"))) {
			if (!acu_valid_ref(v))
				acuctl_usage_error("--patient: '%s' is not a chart code (1 to 32 of "
					    "A-Z a-z 0-9 . _ -; never a name)", v);
			set_str(req, "patient", v);
		} else if ((v = option_value(a, arg, "--flag"))) {
			add_flags(flags, v);
		} else if (strcmp(arg, "--stim") == 0) {
			stim = 1;
		} else {
			bad_usage(cmd, "unknown option", arg);
		}
	}
	if (n < 2)
		bad_usage(cmd, "missing arguments", NULL);
	set_str(req, "room", pos[0]);
	set_int(req, "duration_s", duration_arg(pos[1]));
	if (json_array_size(flags))
		json_object_set(req, "flags", flags);
	json_decref(flags);
	if (stim)
		json_object_set_new(req, "stim", json_true());
	return req;
}

json_t *args_build_finish(const struct command *cmd, struct args *a)
{
	json_t *req = conn_request(cmd->name);
	const char *arg, *v, *room = NULL;
	int opt, removed = 0;

	while ((arg = args_next(a, &opt))) {
		if (!opt) {
			if (room)
				bad_usage(cmd, "unexpected argument", arg);
			room = arg;
		} else if ((v = option_value(a, arg, "--removed"))) {
			set_int(req, "removed", int_arg("--removed", v));
			removed = 1;
		} else if ((v = option_value(a, arg, "--override"))) {
			set_str(req, "override", v);
		} else {
			bad_usage(cmd, "unknown option", arg);
		}
	}
	if (!room)
		bad_usage(cmd, "missing ROOM", NULL);
	if (!removed)
		bad_usage(cmd, "--removed N is required: count the needles taken out", NULL);
	set_str(req, "room", room);
	return req;
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
	acuctl_usage_error("--since: '%s' is neither an RFC 3339 time, unix seconds nor a duration", s);
}

json_t *args_build_history(const struct command *cmd, struct args *a)
{
	json_t *req = conn_request(cmd->name);
	const char *arg, *v;
	int opt;

	while ((arg = args_next(a, &opt))) {
		if (!opt)
			bad_usage(cmd, "unexpected argument", arg);
		else if ((v = option_value(a, arg, "--room")))
			set_str(req, "room", v);
		else if ((v = option_value(a, arg, "--since")))
			json_object_set_new(req, "since", since_arg(v));
		else if ((v = option_value(a, arg, "--limit")))
			set_int(req, "limit", int_arg("--limit", v));
		else
			bad_usage(cmd, "unknown option", arg);
	}
	return req;
}

/* Configuration (SPEC §5). inih splits lines into sections and key = value;
 * everything else happens here. Lines reach inih through our own reader so that
 * every message can name FILE:LINE (inih 55 gives handlers no line number),
 * over-long lines are refused instead of being split in two, indented lines are
 * refused instead of being glued to the previous value, and section headers are
 * seen even when a section has no keys. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "cfg.h"
#include "history.h"
#include "web.h"

#define LINE_OFFSET_MAX 1023
#define LINE_NAME_MAX 31
#define KEYS_MAX 16
#define SOCKET_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))
#define STR_(x) #x
#define STR(x) STR_(x)

enum sect {
	S_NONE, S_DAEMON, S_GPIO, S_LIMITS, S_SAFETY, S_ALARM, S_ACCESS, S_HISTORY, S_MQTT,
	S_ROOM, S_PROFILE, S_WEB, S__N
};

static const char *const sect_names[S__N] = {
	"", "daemon", "gpio", "limits", "safety", "alarm", "access", "history", "mqtt", "room",
	"profile", "web",
};

/* Each section's keys, in the order of its table (daemon_keys[] etc., below the
 * setters): the indexes of struct key_lines and of the tables. */
enum { K_SOCKET, K_STATE_DIR, K_PROFILES_DIR, K_LOG_LEVEL, K_REALTIME_PRIORITY };

enum {
	K_BACKEND, K_CHIP, K_ACTIVE_LOW, K_HEARTBEAT, K_HEARTBEAT_HZ, K_SIM_STATE, K_SIM_TRACE,
	K_DEBOUNCE_MS,
};

enum { K_SESSION_MIN, K_SESSION_MAX, K_STIM_MAX };

/* After require_needle_count, one key per soft flag. */
enum {
	K_REQUIRE_NEEDLE_COUNT, K_PREGNANCY, K_EPILEPSY, K_HEART_DISEASE, K_BLEEDING_DISORDER,
	K_METAL_IMPLANT,
};

enum { K_ESCALATE_AFTER, K_CHECKIN_INTERVAL, K_TIMING_SHARE, K_CALL_ESCALATE_AFTER };

enum { K_DESK_GROUP, K_PRACTITIONER_GROUP, K_TECHNICIAN_GROUP, K_SOCKET_GROUP };

enum { K_KEEP };

enum {
	K_BROKER, K_BOARD, K_TOPIC_PREFIX, K_USERNAME, K_PASSWORD_FILE, K_CA_FILE, K_CERT_FILE,
	K_KEY_FILE, K_KEEPALIVE, K_PUBLISH_PATIENT, K_DISCOVERY, K_DISCOVERY_PREFIX, K_REMOTE,
};

enum { K_NAME, K_GATE, K_PULSE, K_ALARM, K_AUDIBLE, K_INTERLOCK, K_CALL, K_PRESENCE };

enum {
	K_DESCRIPTION, K_MODE, K_FREQUENCY_HZ, K_ALT_FREQUENCY_HZ, K_SWITCH_S, K_ON_S, K_OFF_S,
	K_PULSE_WIDTH_US, K_DELAY_S, K_DURATION_S, K_CHANNELS, K_PREGNANCY_SAFE,
};

enum { K_LISTEN, K_TITLE, K_SHOW_PATIENT, K_MAX_CLIENTS, K_HOSTS };

/* Lines where each key of a room or profile was set, for checks made after the
 * key was read; 0 = not set. Kept here, not in cfg.h: only loading needs them. */
struct key_lines {
	int line[KEYS_MAX];
};

/* A GPIO line already claimed, to refuse a second use anywhere. */
struct used_line {
	struct acu_line spec;
	char what[64];
	char key[16];
	int lineno;
};

struct parser {
	struct acu_cfg *cfg;
	char dir[PATH_MAX];            /* the config file's directory, absolute */
	const char *file;              /* the file being read, for messages */
	int profiles_only;             /* a profiles_dir file */

	/* reader */
	FILE *f;
	char *buf;
	size_t cap;
	int lineno;

	/* where we are */
	enum sect sect;
	int sect_line;
	int cur;                       /* index of the current room or profile */
	int sect_first[S__N];          /* header line of each singleton section */
	struct key_lines single[S__N]; /* key lines of the singleton sections */
	struct key_lines *room_keys;
	struct key_lines *prof_keys;
	int rooms_cap, profs_cap;
	int nprofiles_checked;         /* profiles already validated */

	struct used_line *used;
	int nused, used_cap;

	int err_line;                  /* -1: no error yet */
	char err[PATH_MAX + 512];
};

/* A key: its name, how its value is read and the field it sets in its
 * section's struct (sect_base()). Most keys are one of a few kinds of field;
 * KD_FN keys have a setter of their own. */
enum key_kind { KD_PATH, KD_TEXT, KD_GROUP, KD_BOOL, KD_INT, KD_DUR, KD_WORD, KD_FN };

/* A KD_WORD value: one of a few words, each for a value of an int-sized field. */
struct key_word {
	const char *word;
	int value;
};
_Static_assert(sizeof(enum acu_backend) == sizeof(int) && sizeof(enum acu_policy) == sizeof(int) &&
	       sizeof(enum acu_mode) == sizeof(int), "KD_WORD fields are written as int");

struct key_def {
	const char *name;
	enum key_kind kind;
	int empty;             /* may be given empty on purpose */
	size_t off, size;      /* the field; size tells int from int64_t for KD_DUR */
	int64_t lo, hi;        /* KD_INT, KD_DUR */
	const struct key_word *words; /* KD_WORD, up to a NULL word */
	const char *what;      /* KD_WORD: what the words are, for the message */
	int (*set)(struct parser *p, const struct key_def *d, void *base, const char *key,
		   const char *v);
};

#define FIELD(type, m) .off = offsetof(type, m), .size = sizeof(((type *)0)->m)
#define CFG(m) FIELD(struct acu_cfg, m)
#define MQTT(m) FIELD(struct acu_mqtt_cfg, m)
#define ROOM(m) FIELD(struct acu_room_cfg, m)
#define PROF(m) FIELD(struct acu_profile_cfg, m)
#define WEB(m) FIELD(struct acu_web_cfg, m)

static void *field(void *base, const struct key_def *d)
{
	return (char *)base + d->off;
}

/* Copies what is known to fit (ids are checked first); cuts if not. */
static void scopy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int perr(struct parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error only: later ones are consequences or noise. */
static int perr(struct parser *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (p->err_line >= 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(p->err, sizeof p->err, "%s:%d: %s", p->file, line, msg);
	else
		snprintf(p->err, sizeof p->err, "%s: %s", p->file, msg);
	p->err_line = line > 0 ? line : 0;
	return -1;
}

/* "1h30m" style, for messages that quote limits. */
static const char *fmt_dur(int64_t s, char *buf, size_t len)
{
	int64_t h = s / 3600, m = s % 3600 / 60, sec = s % 60;
	int n = 0;

	buf[0] = '\0';
	if (h)
		n += snprintf(buf + n, len - (size_t)n, "%lldh", (long long)h);
	if (m)
		n += snprintf(buf + n, len - (size_t)n, "%lldm", (long long)m);
	if (sec || s == 0)
		snprintf(buf + n, len - (size_t)n, "%llds", (long long)sec);
	return buf;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int get_bool(struct parser *p, const char *key, const char *v, int *out)
{
	if (parse_bool(v, out) < 0)
		return perr(p, p->lineno, "%s: '%s' is not a boolean (yes/no, true/false, on/off, 1/0)",
			    key, v);
	return 0;
}

static int get_int(struct parser *p, const char *key, const char *v, int lo, int hi, int *out)
{
	int64_t n;

	if (acu_parse_int(v, INT64_MIN, INT64_MAX, &n) < 0)
		return perr(p, p->lineno, "%s: '%s' is not a whole number", key, v);
	if (n < lo || n > hi)
		return perr(p, p->lineno, "%s: %s is out of range (%d to %d)", key, v, lo, hi);
	*out = (int)n;
	return 0;
}

static int get_dur(struct parser *p, const char *key, const char *v, int64_t lo, int64_t hi,
		   int64_t *out)
{
	char a[32], b[32];
	int64_t s;

	if (acu_parse_duration(v, &s) < 0)
		return perr(p, p->lineno, "%s: bad duration '%s' (use 90s, 25m, 1h, 1h30m or seconds)",
			    key, v);
	if (s < lo || s > hi)
		return perr(p, p->lineno, "%s: %s is out of range (%s to %s)", key, v,
			    fmt_dur(lo, a, sizeof a), fmt_dur(hi, b, sizeof b));
	*out = s;
	return 0;
}

/* Relative paths are taken from the config file's directory, so a config and
 * its state can move together (make demo runs from a checkout). */
static int get_path(struct parser *p, const char *key, const char *v, char *dst, size_t len)
{
	int n;

	if (v[0] == '/') {
		n = snprintf(dst, len, "%s", v);
	} else {
		while (v[0] == '.' && v[1] == '/')
			for (v += 2; *v == '/'; v++)
				;
		n = snprintf(dst, len, "%s%s%s", p->dir, strcmp(p->dir, "/") ? "/" : "",
			     *v ? v : ".");
	}
	if (n < 0 || (size_t)n >= len) {
		if (len == (size_t)SOCKET_MAX)
			return perr(p, p->lineno,
				    "%s: path %s%s%s is %d bytes; a Unix socket path must be under %d",
				    key, v[0] == '/' ? "" : p->dir, v[0] == '/' ? "" : "/", v, n,
				    SOCKET_MAX);
		return perr(p, p->lineno, "%s: path too long", key);
	}
	return 0;
}

/* Free text: names and descriptions end up in JSON and logs. */
static int get_text(struct parser *p, const char *key, const char *v, char *dst, size_t len)
{
	for (const char *s = v; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return perr(p, p->lineno, "%s: control character in value", key);
	if (strlen(v) >= len)
		return perr(p, p->lineno, "%s: longer than %zu characters", key, len - 1);
	if (!acu_utf8_valid(v))
		return perr(p, p->lineno, "%s: not valid UTF-8", key);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int get_group(struct parser *p, const char *key, const char *v, char *dst, size_t len)
{
	for (const char *s = v; *s; s++)
		if (isspace((unsigned char)*s) || *s == ':' || *s == ',' || (unsigned char)*s < 0x20)
			return perr(p, p->lineno, "%s: '%s' is not a group name", key, v);
	return get_text(p, key, v, dst, len);
}

static void line_str(const struct acu_line *l, char *buf, size_t len)
{
	if (l->offset >= 0)
		snprintf(buf, len, "%d", l->offset);
	else
		snprintf(buf, len, "%s", l->name);
}

/* Offsets compare with offsets and names with names: the config cannot know
 * which name a chip gives which offset. */
static int line_clash(const struct acu_line *a, const struct acu_line *b)
{
	if (a->offset >= 0 || b->offset >= 0)
		return a->offset == b->offset;
	return strcmp(a->name, b->name) == 0;
}

/* "[!]OFFSET" or "[!]NAME". active_low holds only the '!' until the end of
 * loading: [gpio] active_low may come after the rooms. */
static int get_line(struct parser *p, const char *key, const char *s, const char *what,
		    struct acu_line *out)
{
	struct acu_line l;
	size_t n;
	int digits = 1;
	char buf[40];

	memset(&l, 0, sizeof l);
	l.set = 1;
	l.offset = -1;
	if (*s == '!') {
		l.active_low = 1;
		s++;
	}
	n = strlen(s);
	if (n == 0)
		return perr(p, p->lineno, "%s: '!' must be followed by a line offset or name", key);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isdigit(c))
			digits = 0;
		if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return perr(p, p->lineno,
				    "%s: '%s' is not a GPIO line (an offset 0 to %d or a line name)",
				    key, s, LINE_OFFSET_MAX);
	}
	if (digits) {
		int64_t v;
		if (n > 4 || acu_parse_int(s, 0, LINE_OFFSET_MAX, &v) < 0)
			return perr(p, p->lineno, "%s: line offset %s is out of range (0 to %d)",
				    key, s, LINE_OFFSET_MAX);
		l.offset = (int)v;
	} else {
		if (n > LINE_NAME_MAX)
			return perr(p, p->lineno, "%s: line name '%s' is longer than %d characters",
				    key, s, LINE_NAME_MAX);
		memcpy(l.name, s, n + 1);
	}
	for (int i = 0; i < p->nused; i++) {
		if (line_clash(&p->used[i].spec, &l)) {
			line_str(&l, buf, sizeof buf);
			return perr(p, p->lineno, "%s: GPIO line %s used twice (also %s at line %d)",
				    key, buf, p->used[i].what, p->used[i].lineno);
		}
	}
	if (p->nused == p->used_cap) {
		int cap = p->used_cap ? 2 * p->used_cap : 32;
		struct used_line *u = realloc(p->used, (size_t)cap * sizeof *u);
		if (!u)
			return perr(p, p->lineno, "out of memory");
		p->used = u;
		p->used_cap = cap;
	}
	p->used[p->nused].spec = l;
	snprintf(p->used[p->nused].what, sizeof p->used[p->nused].what, "%s", what);
	snprintf(p->used[p->nused].key, sizeof p->used[p->nused].key, "%s", key);
	p->used[p->nused].lineno = p->lineno;
	p->nused++;
	*out = l;
	return 0;
}

/* Comma list with optional spaces; every entry must be there ("17,,27" is a
 * typo, not two channels). Calls fn on each trimmed entry. */
static int split_list(struct parser *p, const char *key, const char *v, int max, const char *toomany,
		      int (*fn)(struct parser *p, const char *key, const char *item, int idx, void *arg),
		      void *arg)
{
	char buf[256], *s, *e, *next;
	int n = 0;

	if (strlen(v) >= sizeof buf)
		return perr(p, p->lineno, "%s: value too long", key);
	strcpy(buf, v);
	/* Count first: "too many" says more than a clash on the fifth entry. */
	for (s = buf; (s = strchr(s, ',')); s++)
		n++;
	if (n >= max)
		return perr(p, p->lineno, "%s: %s", key, toomany);
	n = 0;
	for (s = buf; s; s = next) {
		next = strchr(s, ',');
		if (next)
			*next++ = '\0';
		while (isspace((unsigned char)*s))
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (!*s)
			return perr(p, p->lineno, "%s: empty entry in list '%s'", key, v);
		if (fn(p, key, s, n, arg) < 0)
			return -1;
		n++;
	}
	return n;
}

struct line_list {
	struct acu_line *lines;
	char what[48];
};

static int line_item(struct parser *p, const char *key, const char *item, int idx, void *arg)
{
	struct line_list *ll = arg;
	char what[64];

	snprintf(what, sizeof what, "%s %s", ll->what, key);
	return get_line(p, key, item, what, &ll->lines[idx]);
}

static int channel_item(struct parser *p, const char *key, const char *item, int idx, void *arg)
{
	unsigned *mask = arg;
	int c = 0;

	(void)idx;
	if (get_int(p, key, item, 1, ACU_MAX_CHANNELS, &c) < 0 || c < 1)
		return -1;
	if (*mask & (1u << (c - 1)))
		return perr(p, p->lineno, "%s: channel %d listed twice", key, c);
	*mask |= 1u << (c - 1);
	return 0;
}

/* SPEC §5's defaults: what a config that sets nothing means. */
void cfg_defaults(struct acu_cfg *c)
{
	snprintf(c->socket, sizeof c->socket, "%s", ACU_DEFAULT_SOCKET);
	snprintf(c->state_dir, sizeof c->state_dir, "%s", ACU_DEFAULT_STATE_DIR);
	snprintf(c->profiles_dir, sizeof c->profiles_dir, "%s", ACU_DEFAULT_PROFILES_DIR);
	c->log_level = LOG_INFO;
	c->backend = BACKEND_GPIOD;
	snprintf(c->chip, sizeof c->chip, "gpiochip0");
	c->heartbeat.offset = -1;
	c->heartbeat_hz = 10;
	c->session_min = 5 * 60;
	c->session_max = 60 * 60;
	c->stim_max = 30 * 60;
	c->history_keep = HISTORY_KEEP_DEFAULT_S;
	snprintf(c->web.title, sizeof c->web.title, "acud");
	c->web.show_patient = 1;
	c->web.max_clients = 64;
	snprintf(c->mqtt.prefix, sizeof c->mqtt.prefix, "acud");
	snprintf(c->mqtt.discovery_prefix, sizeof c->mqtt.discovery_prefix, "homeassistant");
	c->mqtt.keepalive = 30;
	c->require_needle_count = 1;
	for (int f = 0; f < FL__N; f++)
		c->policy[f] = POLICY_WARN;
	for (int f = 0; f < FL_SOFT_FIRST; f++)
		c->policy[f] = POLICY_REFUSE; /* hard flags: never read, but never "warn" */
	c->policy[FL_PREGNANCY] = POLICY_REFUSE;
	c->policy[FL_EPILEPSY] = POLICY_REFUSE;
	c->policy[FL_HEART_DISEASE] = POLICY_REFUSE;
	c->escalate_after = 5 * 60;
	c->checkin_interval = 10 * 60;
	c->rt_priority = ACU_RT_PRIORITY_DEFAULT;
	c->timing_share_ppm = ACU_TIMING_SHARE_DEFAULT_PPM;
	c->call_escalate_after = 2 * 60;
	c->debounce_ms = 20;
	snprintf(c->desk_group, sizeof c->desk_group, "acu-desk");
	snprintf(c->practitioner_group, sizeof c->practitioner_group, "acu-practitioner");
	snprintf(c->technician_group, sizeof c->technician_group, "acu-tech");
}

/* A profile section's defaults (SPEC §5): continuous 2 Hz, 200 µs. */
void cfg_profile_defaults(struct acu_profile_cfg *pr)
{
	memset(pr, 0, sizeof *pr);
	pr->mode = MODE_CONTINUOUS;
	pr->frequency_hz = 2;
	pr->alt_frequency_hz = 100;
	pr->switch_s = 3;
	pr->on_s = 5;
	pr->off_s = 5;
	pr->pulse_width_us = 200;
}

static int set_heartbeat(struct parser *p, const struct key_def *d, void *base, const char *key,
			 const char *v)
{
	return get_line(p, key, v, "heartbeat", field(base, d));
}

static int set_timing_share(struct parser *p, const struct key_def *d, void *base,
			    const char *key, const char *v)
{
	if (acu_parse_share(v, field(base, d)) < 0)
		return perr(p, p->lineno, "%s: '%s' is not a share from 0%% to 100%% (e.g. "
			    "1%%, 0.5%%)", key, v);
	return 0;
}

/* keep: days ("365d"), or any duration of at least a day ("48h"). */
static int set_history_keep(struct parser *p, const struct key_def *d, void *base,
			    const char *key, const char *v)
{
	size_t n = strlen(v);
	int64_t s, days;

	if (n > 1 && v[n - 1] == 'd') {
		char num[24];

		if (n - 1 >= sizeof num)
			goto bad;
		memcpy(num, v, n - 1);
		num[n - 1] = '\0';
		if (acu_parse_int(num, 0, INT32_MAX, &days) < 0)
			goto bad;
		s = days > HISTORY_KEEP_MAX_S / HISTORY_DAY_S ? HISTORY_KEEP_MAX_S + 1 :
							      days * HISTORY_DAY_S;
	} else if (acu_parse_duration(v, &s) < 0) {
		goto bad;
	}
	if (s < HISTORY_KEEP_MIN_S || s > HISTORY_KEEP_MAX_S)
		return perr(p, p->lineno, "%s: %s is out of range (1d to %lldd)", key, v,
			    (long long)(HISTORY_KEEP_MAX_S / HISTORY_DAY_S));
	*(int64_t *)field(base, d) = s;
	return 0;
bad:
	return perr(p, p->lineno, "%s: bad duration '%s' (use days as in 365d, or 48h, or seconds)",
		    key, v);
}

/* gate and pulse: one line per channel; the number of lines read, or -1. */
static int room_lines(struct parser *p, struct acu_room_cfg *r, const char *key, const char *v,
		      struct acu_line *lines)
{
	struct line_list ll;

	ll.lines = lines;
	snprintf(ll.what, sizeof ll.what, "room %s", r->id);
	return split_list(p, key, v, ACU_MAX_CHANNELS, "more than 8 channels", line_item, &ll);
}

static int set_gate(struct parser *p, const struct key_def *d, void *base, const char *key,
		    const char *v)
{
	struct acu_room_cfg *r = base;
	int n = room_lines(p, r, key, v, field(base, d));

	if (n < 0)
		return -1;
	r->nchannels = n;
	return 0;
}

static int set_pulse(struct parser *p, const struct key_def *d, void *base, const char *key,
		     const char *v)
{
	struct acu_room_cfg *r = base;
	int n = strcmp(v, "none") == 0 ? 0 : room_lines(p, r, key, v, field(base, d));

	if (n < 0)
		return -1;
	r->npulse = n;
	return 0;
}

/* alarm, interlock, call, presence: one line each, named after the key. */
static int set_room_line(struct parser *p, const struct key_def *d, void *base, const char *key,
			 const char *v)
{
	struct acu_room_cfg *r = base;
	char what[48];

	snprintf(what, sizeof what, "room %s %s", r->id, key);
	return get_line(p, key, v, what, field(base, d));
}

static int set_channels(struct parser *p, const struct key_def *d, void *base, const char *key,
			const char *v)
{
	unsigned *mask = field(base, d);

	*mask = 0;
	return split_list(p, key, v, ACU_MAX_CHANNELS, "more than 8 channels", channel_item,
			  mask) < 0 ? -1 : 0;
}

static int host_item(struct parser *p, const char *key, const char *item, int idx, void *arg)
{
	struct acu_web_cfg *w = arg;

	if (!web_valid_hostname(item))
		return perr(p, p->lineno, "%s: '%s' is not a host name (letters, digits, '-' and "
			    "'.'; no port)", key, item);
	for (int i = 0; i < idx; i++)
		if (strcasecmp(w->hosts[i], item) == 0)
			return perr(p, p->lineno, "%s: %s listed twice", key, item);
	scopy(w->hosts[idx], sizeof w->hosts[idx], item);
	w->nhosts = idx + 1;
	return 0;
}

/* [web] (SPEC §10): the board is off unless listen is set (or systemd passes
 * a socket). */
static int set_listen(struct parser *p, const struct key_def *d, void *base, const char *key,
		      const char *v)
{
	struct acu_web_cfg *w = base;
	const char *why = "";

	(void)d;
	if (strlen(v) >= sizeof w->listen)
		return perr(p, p->lineno, "%s: value too long", key);
	if (web_parse_listen(v, w->host, sizeof w->host, &w->port, &why) < 0)
		return perr(p, p->lineno, "%s: '%s': %s", key, v, why);
	scopy(w->listen, sizeof w->listen, v);
	return 0;
}

static int set_hosts(struct parser *p, const struct key_def *d, void *base, const char *key,
		     const char *v)
{
	struct acu_web_cfg *w = base;

	(void)d;
	w->nhosts = 0;
	return split_list(p, key, v, ACU_WEB_HOSTS_MAX, "more than " STR(ACU_WEB_HOSTS_MAX)
			  " names", host_item, w) < 0 ? -1 : 0;
}

/* --- [mqtt] (SPEC §12) --- */

/* mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; HOST a name, an IPv4 address
 * or [IPv6]. Nothing else: user info, paths and queries have keys of their own
 * or no meaning here. */
static int mqtt_broker(struct parser *p, const struct key_def *d, void *base, const char *key,
		       const char *v)
{
	struct acu_mqtt_cfg *m = base;
	const char *h, *end, *port = NULL;
	size_t n;
	int64_t num;

	(void)d;
	if (strncmp(v, "mqtt://", 7) == 0) {
		m->tls = 0;
		h = v + 7;
	} else if (strncmp(v, "mqtts://", 8) == 0) {
		m->tls = 1;
		h = v + 8;
	} else {
		return perr(p, p->lineno, "%s: '%s' is not mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
			    key, v);
	}
	if (strchr(h, '@'))
		return perr(p, p->lineno, "%s: '%s': user info has no place in broker (username "
			    "and password_file have keys of their own)", key, v);
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end == h + 1)
			return perr(p, p->lineno, "%s: unterminated [IPv6 address] in '%s'", key, v);
		for (const char *c = h + 1; c < end; c++)
			if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
				return perr(p, p->lineno, "%s: '%.*s' is not an IPv6 address", key,
					    (int)(end - h - 1), h + 1);
		n = (size_t)(end - h - 1);
		h++;
		end++;
	} else {
		end = h + strcspn(h, ":");
		n = (size_t)(end - h);
		for (const char *c = h; c < end; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
				return perr(p, p->lineno, "%s: '%.*s' is not a host name or address "
					    "(a path or query has no place in broker)", key, (int)n, h);
	}
	if (n == 0)
		return perr(p, p->lineno, "%s: no host in '%s'", key, v);
	if (n >= sizeof m->host)
		return perr(p, p->lineno, "%s: host name longer than %zu characters", key,
			    sizeof m->host - 1);
	memcpy(m->host, h, n);
	m->host[n] = '\0';
	if (*end == ':')
		port = end + 1;
	else if (*end)
		return perr(p, p->lineno, "%s: unexpected '%s' after the host", key, end);
	m->port = m->tls ? 8883 : 1883;
	if (port) {
		if (acu_parse_int(port, 1, 65535, &num) < 0)
			return perr(p, p->lineno, "%s: port '%s' is not 1 to 65535", key, port);
		m->port = (int)num;
	}
	m->on = 1;
	return 0;
}

static int mqtt_board(struct parser *p, const struct key_def *d, void *base, const char *key,
		      const char *v)
{
	if (!acu_valid_ref(v))
		return perr(p, p->lineno, "%s: '%s' is not a board name (1 to 32 of A-Z a-z "
			    "0-9 . _ -)", key, v);
	snprintf(field(base, d), d->size, "%s", v);
	return 0;
}

/* A topic prefix: levels of [A-Za-z0-9._-] joined by '/'; no wildcard, no
 * empty level, no '$' (the broker's own topics). */
static int mqtt_topic_prefix(struct parser *p, const struct key_def *d, void *base,
			     const char *key, const char *v)
{
	size_t n = strlen(v);

	if (n >= d->size)
		return perr(p, p->lineno, "%s: longer than %zu characters", key, d->size - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '/' ? (i == 0 || i == n - 1 || v[i - 1] == '/') :
		    !(isalnum(c) || c == '.' || c == '_' || c == '-'))
			return perr(p, p->lineno, "%s: '%s' is not a topic prefix (levels of A-Z a-z "
				    "0-9 . _ - separated by single '/')", key, v);
	}
	memcpy(field(base, d), v, n + 1);
	return 0;
}

static const struct key_word log_levels[] = {
	{ "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
	{ "info", LOG_INFO }, { "debug", LOG_DEBUG }, { NULL, 0 },
};

static const struct key_word backends[] = {
	{ "gpiod", BACKEND_GPIOD }, { "sim", BACKEND_SIM }, { NULL, 0 },
};

static const struct key_word policies[] = {
	{ "refuse", POLICY_REFUSE }, { "warn", POLICY_WARN }, { NULL, 0 },
};

/* Also cfg_mode_name()'s. */
static const struct key_word modes[] = {
	{ "continuous", MODE_CONTINUOUS }, { "dense-disperse", MODE_DENSE_DISPERSE },
	{ "intermittent", MODE_INTERMITTENT }, { NULL, 0 },
};

/* The keys of each section (SPEC §5), indexed by the K_* enums: a key's name,
 * kind, limits and field are here and nowhere else. */
static const struct key_def daemon_keys[] = {
	[K_SOCKET] = { "socket", KD_PATH, CFG(socket) },
	[K_STATE_DIR] = { "state_dir", KD_PATH, CFG(state_dir) },
	[K_PROFILES_DIR] = { "profiles_dir", KD_PATH, CFG(profiles_dir) },
	[K_LOG_LEVEL] = { "log_level", KD_WORD, CFG(log_level), .words = log_levels,
			  .what = "a log level (err, warning, notice, info, debug)" },
	[K_REALTIME_PRIORITY] = { "realtime_priority", KD_INT, CFG(rt_priority), .lo = 0,
				  .hi = 99 },
};

static const struct key_def gpio_keys[] = {
	[K_BACKEND] = { "backend", KD_WORD, CFG(backend), .words = backends,
			.what = "a backend (gpiod or sim)" },
	[K_CHIP] = { "chip", KD_GROUP, CFG(chip) },
	[K_ACTIVE_LOW] = { "active_low", KD_BOOL, CFG(active_low) },
	[K_HEARTBEAT] = { "heartbeat", KD_FN, CFG(heartbeat), .set = set_heartbeat },
	[K_HEARTBEAT_HZ] = { "heartbeat_hz", KD_INT, CFG(heartbeat_hz), .lo = 1, .hi = 50 },
	[K_SIM_STATE] = { "sim_state", KD_PATH, CFG(sim_state) },
	[K_SIM_TRACE] = { "sim_trace", KD_PATH, CFG(sim_trace), .empty = 1 },
	[K_DEBOUNCE_MS] = { "debounce_ms", KD_INT, CFG(debounce_ms), .lo = 0, .hi = 1000 },
};

static const struct key_def limits_keys[] = {
	[K_SESSION_MIN] = { "session_min", KD_DUR, CFG(session_min), .lo = 1, .hi = 4 * 3600 },
	[K_SESSION_MAX] = { "session_max", KD_DUR, CFG(session_max), .lo = 1, .hi = 4 * 3600 },
	[K_STIM_MAX] = { "stim_max", KD_DUR, CFG(stim_max), .lo = 1, .hi = ACU_STIM_MAX_LIMIT_S },
};

#define POLICY_KEY(name, flag)                                                    \
	{ name, KD_WORD, CFG(policy[flag]), .words = policies,                     \
	  .what = "a policy (refuse or warn)" }
static const struct key_def safety_keys[] = {
	[K_REQUIRE_NEEDLE_COUNT] = { "require_needle_count", KD_BOOL, CFG(require_needle_count) },
	[K_PREGNANCY] = POLICY_KEY("pregnancy", FL_PREGNANCY),
	[K_EPILEPSY] = POLICY_KEY("epilepsy", FL_EPILEPSY),
	[K_HEART_DISEASE] = POLICY_KEY("heart-disease", FL_HEART_DISEASE),
	[K_BLEEDING_DISORDER] = POLICY_KEY("bleeding-disorder", FL_BLEEDING_DISORDER),
	[K_METAL_IMPLANT] = POLICY_KEY("metal-implant", FL_METAL_IMPLANT),
};

static const struct key_def alarm_keys[] = {
	[K_ESCALATE_AFTER] = { "escalate_after", KD_DUR, CFG(escalate_after), .lo = 0,
			       .hi = 24 * 3600 },
	[K_CHECKIN_INTERVAL] = { "checkin_interval", KD_DUR, CFG(checkin_interval), .lo = 0,
				 .hi = 24 * 3600 },
	[K_TIMING_SHARE] = { "timing_share", KD_FN, CFG(timing_share_ppm),
			     .set = set_timing_share },
	[K_CALL_ESCALATE_AFTER] = { "call_escalate_after", KD_DUR, CFG(call_escalate_after),
				    .lo = 0, .hi = 24 * 3600 },
};

static const struct key_def access_keys[] = {
	[K_DESK_GROUP] = { "desk_group", KD_GROUP, CFG(desk_group) },
	[K_PRACTITIONER_GROUP] = { "practitioner_group", KD_GROUP, CFG(practitioner_group) },
	[K_TECHNICIAN_GROUP] = { "technician_group", KD_GROUP, CFG(technician_group) },
	[K_SOCKET_GROUP] = { "socket_group", KD_GROUP, CFG(socket_group), .empty = 1 },
};

static const struct key_def history_keys[] = {
	[K_KEEP] = { "keep", KD_FN, CFG(history_keep), .set = set_history_keep },
};

static const struct key_def mqtt_keys[] = {
	[K_BROKER] = { "broker", KD_FN, .set = mqtt_broker },
	[K_BOARD] = { "board", KD_FN, MQTT(board), .set = mqtt_board },
	[K_TOPIC_PREFIX] = { "topic_prefix", KD_FN, MQTT(prefix), .set = mqtt_topic_prefix },
	[K_USERNAME] = { "username", KD_GROUP, MQTT(username) },
	[K_PASSWORD_FILE] = { "password_file", KD_PATH, MQTT(password_file) },
	[K_CA_FILE] = { "ca_file", KD_PATH, MQTT(ca_file) },
	[K_CERT_FILE] = { "cert_file", KD_PATH, MQTT(cert_file) },
	[K_KEY_FILE] = { "key_file", KD_PATH, MQTT(key_file) },
	[K_KEEPALIVE] = { "keepalive", KD_DUR, MQTT(keepalive), .lo = 5, .hi = 3600 },
	[K_PUBLISH_PATIENT] = { "publish_patient", KD_BOOL, MQTT(publish_patient) },
	[K_DISCOVERY] = { "discovery", KD_BOOL, MQTT(discovery) },
	[K_DISCOVERY_PREFIX] = { "discovery_prefix", KD_FN, MQTT(discovery_prefix),
				 .set = mqtt_topic_prefix },
	[K_REMOTE] = { "remote", KD_BOOL, MQTT(remote) },
};

static const struct key_def room_keys[] = {
	[K_NAME] = { "name", KD_TEXT, ROOM(name) },
	[K_GATE] = { "gate", KD_FN, ROOM(gate), .set = set_gate },
	[K_PULSE] = { "pulse", KD_FN, ROOM(pulse), .set = set_pulse },
	[K_ALARM] = { "alarm", KD_FN, ROOM(alarm), .set = set_room_line },
	[K_AUDIBLE] = { "audible", KD_BOOL, ROOM(audible) },
	[K_INTERLOCK] = { "interlock", KD_FN, ROOM(interlock), .set = set_room_line },
	[K_CALL] = { "call", KD_FN, ROOM(call), .set = set_room_line },
	[K_PRESENCE] = { "presence", KD_FN, ROOM(presence), .set = set_room_line },
};

static const struct key_def profile_keys[] = {
	[K_DESCRIPTION] = { "description", KD_TEXT, PROF(description), .empty = 1 },
	[K_MODE] = { "mode", KD_WORD, PROF(mode), .words = modes,
		     .what = "a mode (continuous, dense-disperse, intermittent)" },
	[K_FREQUENCY_HZ] = { "frequency_hz", KD_INT, PROF(frequency_hz), .lo = 1, .hi = 200 },
	[K_ALT_FREQUENCY_HZ] = { "alt_frequency_hz", KD_INT, PROF(alt_frequency_hz), .lo = 1,
				 .hi = 200 },
	[K_SWITCH_S] = { "switch_s", KD_DUR, PROF(switch_s), .lo = 1, .hi = 60 },
	[K_ON_S] = { "on_s", KD_DUR, PROF(on_s), .lo = 1, .hi = 600 },
	[K_OFF_S] = { "off_s", KD_DUR, PROF(off_s), .lo = 1, .hi = 600 },
	[K_PULSE_WIDTH_US] = { "pulse_width_us", KD_INT, PROF(pulse_width_us), .lo = 50,
			       .hi = 1000 },
	/* The session_max bound is checked once [limits] has surely been read. */
	[K_DELAY_S] = { "delay_s", KD_DUR, PROF(delay_s), .lo = 0, .hi = 4 * 3600 },
	[K_DURATION_S] = { "duration_s", KD_DUR, PROF(duration_s), .lo = 1,
			   .hi = ACU_STIM_MAX_LIMIT_S },
	[K_CHANNELS] = { "channels", KD_FN, PROF(channels), .set = set_channels },
	[K_PREGNANCY_SAFE] = { "pregnancy_safe", KD_BOOL, PROF(pregnancy_safe) },
};

static const struct key_def web_keys[] = {
	[K_LISTEN] = { "listen", KD_FN, .set = set_listen },
	[K_TITLE] = { "title", KD_TEXT, WEB(title) },
	[K_SHOW_PATIENT] = { "show_patient", KD_BOOL, WEB(show_patient) },
	[K_MAX_CLIENTS] = { "max_clients", KD_INT, WEB(max_clients), .lo = 1,
			    .hi = ACU_WEB_CLIENTS_MAX },
	[K_HOSTS] = { "hosts", KD_FN, .set = set_hosts },
};

#define KEYS(a) { a, (int)(sizeof a / sizeof a[0]) }
static const struct {
	const struct key_def *def;
	int n;
} sect_keys[S__N] = {
	[S_DAEMON] = KEYS(daemon_keys), [S_GPIO] = KEYS(gpio_keys), [S_LIMITS] = KEYS(limits_keys),
	[S_SAFETY] = KEYS(safety_keys), [S_ALARM] = KEYS(alarm_keys),
	[S_ACCESS] = KEYS(access_keys), [S_HISTORY] = KEYS(history_keys),
	[S_MQTT] = KEYS(mqtt_keys), [S_ROOM] = KEYS(room_keys), [S_PROFILE] = KEYS(profile_keys),
	[S_WEB] = KEYS(web_keys),
};

/* The struct a section's fields are in. */
static void *sect_base(struct parser *p)
{
	switch (p->sect) {
	case S_MQTT:
		return &p->cfg->mqtt;
	case S_WEB:
		return &p->cfg->web;
	case S_ROOM:
		return &p->cfg->rooms[p->cur];
	case S_PROFILE:
		return &p->cfg->profiles[p->cur];
	default:
		return p->cfg;
	}
}

/* Reads v into the field d names in base. */
static int set_key(struct parser *p, const struct key_def *d, void *base, const char *key,
		   const char *v)
{
	void *f = field(base, d);
	int64_t s = 0;

	switch (d->kind) {
	case KD_PATH:
		/* Only a key that may be empty (sim_trace) gets here empty: unset. */
		if (!*v) {
			*(char *)f = '\0';
			return 0;
		}
		return get_path(p, key, v, f, d->size);
	case KD_TEXT:
		return get_text(p, key, v, f, d->size);
	case KD_GROUP:
		return get_group(p, key, v, f, d->size);
	case KD_BOOL:
		return get_bool(p, key, v, f);
	case KD_INT:
		return get_int(p, key, v, (int)d->lo, (int)d->hi, f);
	case KD_DUR:
		if (get_dur(p, key, v, d->lo, d->hi, &s) < 0)
			return -1;
		if (d->size == sizeof(int64_t))
			*(int64_t *)f = s;
		else
			*(int *)f = (int)s;
		return 0;
	case KD_WORD:
		for (const struct key_word *w = d->words; w->word; w++) {
			if (strcmp(v, w->word) == 0) {
				*(int *)f = w->value;
				return 0;
			}
		}
		return perr(p, p->lineno, "%s: '%s' is not %s", key, v, d->what);
	case KD_FN:
		return d->set(p, d, base, key, v);
	}
	return 0;
}

/* The section as a whole: keys that need another, files that must be
 * readable by whoever checks (the unit's ExecStartPre= runs as acud's user),
 * and the board's default, the host name. */
static int cfg_mqtt_check(struct parser *p)
{
	struct acu_mqtt_cfg *m = &p->cfg->mqtt;
	const struct key_lines *kl = &p->single[S_MQTT];
	static const int files[] = { K_PASSWORD_FILE, K_CA_FILE, K_CERT_FILE, K_KEY_FILE };
	const char *paths[] = { m->password_file, m->ca_file, m->cert_file, m->key_file };
	char host[256];

	if (!p->sect_first[S_MQTT])
		return 0;
	if (!m->on)
		return perr(p, p->sect_first[S_MQTT],
			    "[mqtt] without broker: set broker = mqtt://HOST or remove the section");
	if (!m->tls)
		for (int i = 1; i < 4; i++)
			if (kl->line[files[i]])
				return perr(p, kl->line[files[i]], "%s: needs an mqtts:// broker "
					    "(line %d says mqtt://)", mqtt_keys[files[i]].name,
					    kl->line[K_BROKER]);
	if (!kl->line[K_CERT_FILE] != !kl->line[K_KEY_FILE])
		return perr(p, kl->line[kl->line[K_CERT_FILE] ? K_CERT_FILE : K_KEY_FILE],
			    "cert_file and key_file go together (a client certificate and its key)");
	if (kl->line[K_PASSWORD_FILE] && !kl->line[K_USERNAME])
		return perr(p, kl->line[K_PASSWORD_FILE], "password_file: needs username");
	for (int i = 0; i < 4; i++)
		if (paths[i][0] && access(paths[i], R_OK) < 0)
			return perr(p, kl->line[files[i]], "%s %s: %s", mqtt_keys[files[i]].name,
				    paths[i], strerror(errno));
	if (!m->board[0]) {
		if (gethostname(host, sizeof host) < 0)
			snprintf(host, sizeof host, "?");
		host[sizeof host - 1] = '\0';
		if (!acu_valid_ref(host))
			return perr(p, p->sect_first[S_MQTT], "board: the host name '%.64s' is not a "
				    "board name (1 to 32 of A-Z a-z 0-9 . _ -): set board", host);
		scopy(m->board, sizeof m->board, host);
	}
	return 0;
}

int cfg_mqtt_same(const struct acu_mqtt_cfg *a, const struct acu_mqtt_cfg *b)
{
	return memcmp(a, b, sizeof *a) == 0;
}

static struct key_lines *cur_keys(struct parser *p)
{
	if (p->sect == S_ROOM)
		return &p->room_keys[p->cur];
	if (p->sect == S_PROFILE)
		return &p->prof_keys[p->cur];
	return &p->single[p->sect];
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct key_def *keys;
	struct key_lines *kl;
	int k, n;

	(void)section; /* our reader tracks sections, with their lines */
	if (p->err_line >= 0)
		return 0;
	if (!*name) {
		perr(p, p->lineno, "syntax error (expected [section] or key = value)");
		return 0;
	}
	if (p->sect == S_NONE) {
		perr(p, p->lineno, "%s: key outside any section", name);
		return 0;
	}
	keys = sect_keys[p->sect].def;
	n = sect_keys[p->sect].n;
	for (k = 0; k < n; k++)
		if (strcmp(name, keys[k].name) == 0)
			break;
	if (k == n) {
		int f = acu_flag_parse(name);
		if (p->sect == S_SAFETY && f >= 0 && ((1u << f) & FL_HARD_MASK))
			perr(p, p->lineno,
			     "%s can never be relaxed: hard contraindications always refuse", name);
		else
			perr(p, p->lineno, "unknown key '%s' in [%s]", name, sect_names[p->sect]);
		return 0;
	}
	kl = cur_keys(p);
	if (kl->line[k]) {
		perr(p, p->lineno, "duplicate key '%s' (first at line %d)", name, kl->line[k]);
		return 0;
	}
	kl->line[k] = p->lineno;
	if (!*value && !keys[k].empty) {
		perr(p, p->lineno, "%s: a value is required", name);
		return 0;
	}
	return set_key(p, &keys[k], sect_base(p), name, value) == 0;
}

/* Checks a room once its section is complete: the keys may come in any order. */
static int end_room(struct parser *p)
{
	struct acu_room_cfg *r = &p->cfg->rooms[p->cur];
	struct key_lines *kl = &p->room_keys[p->cur];

	if (!kl->line[K_GATE])
		return perr(p, r->line, "room %s: gate is required (one line per channel)", r->id);
	if (r->npulse && r->npulse != r->nchannels)
		return perr(p, kl->line[K_PULSE],
			    "pulse: %d pulse line%s for %d gate line%s (give one per channel, or none)",
			    r->npulse, r->npulse == 1 ? "" : "s", r->nchannels,
			    r->nchannels == 1 ? "" : "s");
	return 0;
}

static int end_section(struct parser *p)
{
	if (p->sect == S_ROOM)
		return end_room(p);
	return 0;
}

static int grow(void **arr, int *cap, int need, size_t size, void **aux, size_t auxsize)
{
	int ncap;
	void *a, *b;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	a = realloc(*arr, (size_t)ncap * size);
	if (!a)
		return -1;
	*arr = a;
	b = realloc(*aux, (size_t)ncap * auxsize);
	if (!b)
		return -1;
	*aux = b;
	*cap = ncap;
	return 0;
}

/* The cfg's copy of the file being read, made the first time. */
static const char *file_of(struct parser *p)
{
	struct acu_cfg *c = p->cfg;
	char **more, *s;

	for (int i = 0; i < c->nfiles; i++)
		if (strcmp(c->files[i], p->file) == 0)
			return c->files[i];
	more = realloc(c->files, (size_t)(c->nfiles + 1) * sizeof *more);
	if (!more)
		return NULL;
	c->files = more;
	s = strdup(p->file);
	if (!s)
		return NULL;
	c->files[c->nfiles++] = s;
	return s;
}

static int new_room(struct parser *p, const char *id)
{
	struct acu_cfg *c = p->cfg;
	struct acu_room_cfg *r;
	const char *file = file_of(p);

	if (!file)
		return perr(p, p->lineno, "out of memory");
	if (!acu_valid_ref(id))
		return perr(p, p->lineno, "bad room id '%s' (1 to 32 of A-Z a-z 0-9 . _ -)", id);
	for (int i = 0; i < c->nrooms; i++)
		if (strcmp(c->rooms[i].id, id) == 0)
			return perr(p, p->lineno, "duplicate room %s (first at line %d)", id,
				    c->rooms[i].line);
	if (c->nrooms >= ACU_MAX_ROOMS)
		return perr(p, p->lineno, "more than %d rooms", ACU_MAX_ROOMS);
	if (grow((void **)&c->rooms, &p->rooms_cap, c->nrooms + 1, sizeof *c->rooms,
		 (void **)&p->room_keys, sizeof *p->room_keys) < 0)
		return perr(p, p->lineno, "out of memory");
	r = &c->rooms[c->nrooms];
	memset(r, 0, sizeof *r);
	memset(&p->room_keys[c->nrooms], 0, sizeof *p->room_keys);
	scopy(r->id, sizeof r->id, id);
	memcpy(r->name, "Room ", 6);
	scopy(r->name + 5, sizeof r->name - 5, id);
	r->file = file;
	r->line = p->lineno;
	r->alarm.offset = -1;
	r->interlock.offset = -1;
	r->call.offset = -1;
	r->presence.offset = -1;
	p->cur = c->nrooms++;
	return 0;
}

static int new_profile(struct parser *p, const char *name)
{
	struct acu_cfg *c = p->cfg;
	struct acu_profile_cfg *pr;
	const char *file = file_of(p);

	if (!file)
		return perr(p, p->lineno, "out of memory");
	if (!acu_valid_ref(name))
		return perr(p, p->lineno, "bad profile name '%s' (1 to 32 of A-Z a-z 0-9 . _ -)",
			    name);
	for (int i = 0; i < c->nprofiles; i++) {
		if (strcmp(c->profiles[i].name, name) != 0)
			continue;
		if (strcmp(c->profiles[i].file, p->file) == 0)
			return perr(p, p->lineno, "duplicate profile %s (first at line %d)", name,
				    c->profiles[i].line);
		return perr(p, p->lineno, "duplicate profile %s (first at %s:%d)", name,
			    c->profiles[i].file, c->profiles[i].line);
	}
	if (grow((void **)&c->profiles, &p->profs_cap, c->nprofiles + 1, sizeof *c->profiles,
		 (void **)&p->prof_keys, sizeof *p->prof_keys) < 0)
		return perr(p, p->lineno, "out of memory");
	pr = &c->profiles[c->nprofiles];
	memset(&p->prof_keys[c->nprofiles], 0, sizeof *p->prof_keys);
	cfg_profile_defaults(pr);
	scopy(pr->name, sizeof pr->name, name);
	pr->file = file;
	pr->line = p->lineno;
	p->cur = c->nprofiles++;
	return 0;
}

/* "[type]" or "[type NAME]"; hdr is the text between the brackets. */
static int begin_section(struct parser *p, char *hdr)
{
	char *type = hdr, *arg, *e;
	int s;

	if (end_section(p) < 0)
		return -1;
	p->sect = S_NONE;
	while (isspace((unsigned char)*type))
		type++;
	for (arg = type; *arg && !isspace((unsigned char)*arg); arg++)
		;
	if (*arg)
		*arg++ = '\0';
	while (isspace((unsigned char)*arg))
		arg++;
	e = arg + strlen(arg);
	while (e > arg && isspace((unsigned char)e[-1]))
		*--e = '\0';

	for (s = 1; s < S__N; s++)
		if (strcmp(type, sect_names[s]) == 0)
			break;
	if (s == S__N)
		return perr(p, p->lineno, "unknown section [%s%s%s]", type, *arg ? " " : "", arg);
	if (p->profiles_only && s != S_PROFILE)
		return perr(p, p->lineno,
			    "[%s] in a profiles_dir file: only [profile NAME] sections may be here",
			    type);
	if (s == S_ROOM || s == S_PROFILE) {
		if (!*arg)
			return perr(p, p->lineno, "[%s] needs a name: [%s %s]", type, type,
				    s == S_ROOM ? "ID" : "NAME");
		if ((s == S_ROOM ? new_room(p, arg) : new_profile(p, arg)) < 0)
			return -1;
	} else {
		if (*arg)
			return perr(p, p->lineno, "[%s] takes no name", type);
		if (p->sect_first[s])
			return perr(p, p->lineno, "section [%s] appears twice (first at line %d)",
				    type, p->sect_first[s]);
		p->sect_first[s] = p->lineno;
	}
	p->sect = (enum sect)s;
	p->sect_line = p->lineno;
	return 0;
}

/* The ini_reader: one physical line per call, so inih's line count is ours. */
static char *reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	ssize_t n;
	char *s, *t, *c;
	size_t len;

	if (p->err_line >= 0)
		return NULL;
	errno = 0;
	n = getline(&p->buf, &p->cap, p->f);
	if (n < 0) {
		if (ferror(p->f))
			perr(p, p->lineno + 1, "read error: %s", strerror(errno ? errno : EIO));
		else
			end_section(p);
		return NULL;
	}
	p->lineno++;
	s = p->buf;
	len = (size_t)n;
	if (len && s[len - 1] == '\n')
		s[--len] = '\0';
	if (len && s[len - 1] == '\r')
		s[--len] = '\0';
	if (p->lineno == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
		len -= 3;
	}
	if (strlen(s) != len) {
		perr(p, p->lineno, "NUL byte in line");
		return NULL;
	}
	/* inih would parse the cut-off rest as a line of its own. */
	if (len > (size_t)num - 1) {
		perr(p, p->lineno, "line longer than %d characters", num - 1);
		return NULL;
	}
	/* SPEC: ';' starts a comment anywhere on a line (inih alone would want a
	 * space before it). */
	c = strchr(s, ';');
	if (c)
		*c = '\0';
	for (t = s; isspace((unsigned char)*t); t++)
		;
	if (*t == '\0' || *t == '#') {
		str[0] = '\0';
		return str;
	}
	if (t != s) {
		perr(p, p->lineno,
		     "indented line: continuation lines are not supported (remove the leading space)");
		return NULL;
	}
	if (*t == '[') {
		char hdr[256], *close = strchr(t, ']');
		const char *rest;

		if (!close) {
			perr(p, p->lineno, "syntax error (expected [section] or key = value)");
			return NULL;
		}
		for (rest = close + 1; isspace((unsigned char)*rest); rest++)
			;
		if (*rest) {
			perr(p, p->lineno, "syntax error: text after ']'");
			return NULL;
		}
		snprintf(hdr, sizeof hdr, "%.*s", (int)(close - t - 1), t + 1);
		if (begin_section(p, hdr) < 0)
			return NULL;
	} else if (t[strcspn(t, "=:")] == ':') {
		/* inih would take ':' as a delimiter too (`gate: 17`); SPEC §5
		 * says key = value, and a value may hold ':' (paths, URLs). */
		perr(p, p->lineno, "syntax error (expected key = value; ':' is not a delimiter)");
		return NULL;
	}
	memcpy(str, s, strlen(s) + 1);
	return str;
}

static int parse_file(struct parser *p, const char *path, int profiles_only)
{
	struct stat st;
	int ret;

	p->file = path;
	p->profiles_only = profiles_only;
	p->lineno = 0;
	p->sect = S_NONE;
	p->f = fopen(path, "r");
	if (!p->f)
		return perr(p, 0, "cannot open: %s", strerror(errno));
	if (fstat(fileno(p->f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(p->f);
		p->f = NULL;
		return perr(p, 0, "cannot open: %s", strerror(EISDIR));
	}
	ret = ini_parse_stream(reader, p, handler, p);
	fclose(p->f);
	p->f = NULL;
	/* inih goes on after a syntax error; the first error in the file wins. */
	if (ret > 0 && (p->err_line < 0 || ret < p->err_line)) {
		p->err_line = -1;
		return perr(p, ret, "syntax error (expected [section] or key = value)");
	}
	if (ret < 0 && p->err_line < 0)
		return perr(p, 0, "cannot parse (inih error %d)", ret);
	return p->err_line >= 0 ? -1 : 0;
}

/* The line to blame for a post-parse check: the key if it was set, else the
 * section header. */
static int key_or(const struct key_lines *kl, int k, int fallback)
{
	return kl->line[k] ? kl->line[k] : fallback;
}

static int check_profile(struct parser *p, int i)
{
	const struct acu_cfg *c = p->cfg;
	const struct acu_profile_cfg *pr = &c->profiles[i];
	const struct key_lines *kl = &p->prof_keys[i];
	char a[32], b[32];
	int freqs[2] = { pr->frequency_hz, pr->alt_frequency_hz };
	int nfreq = pr->mode == MODE_DENSE_DISPERSE ? 2 : 1;

	p->file = pr->file;
	/* A pulse must end before the next begins, with the line low as long. */
	for (int j = 0; j < nfreq; j++) {
		if ((int64_t)pr->pulse_width_us * 2 * freqs[j] >= 1000000)
			return perr(p, key_or(kl, K_PULSE_WIDTH_US, pr->line),
				    "pulse_width_us: %d us is not below half the period of %s %d Hz",
				    pr->pulse_width_us, j ? "alt_frequency_hz" : "frequency_hz",
				    freqs[j]);
	}
	if (pr->delay_s > c->session_max)
		return perr(p, kl->line[K_DELAY_S], "delay_s: %s is above session_max (%s)",
			    fmt_dur(pr->delay_s, a, sizeof a), fmt_dur(c->session_max, b, sizeof b));
	if (pr->duration_s > c->stim_max)
		return perr(p, kl->line[K_DURATION_S], "duration_s: %s is above stim_max (%s)",
			    fmt_dur(pr->duration_s, a, sizeof a), fmt_dur(c->stim_max, b, sizeof b));
	return 0;
}

static int check_profiles(struct parser *p)
{
	for (; p->nprofiles_checked < p->cfg->nprofiles; p->nprofiles_checked++)
		if (check_profile(p, p->nprofiles_checked) < 0)
			return -1;
	return 0;
}

int cfg_sim_line_offset(const struct acu_line *l)
{
	const char *d = l->name + 4;
	int64_t v;

	if (l->offset >= 0)
		return l->offset;
	/* Canonical digits only: "GPIO024" is some other name. */
	if (strncmp(l->name, "GPIO", 4) != 0 || !isdigit((unsigned char)d[0]) ||
	    (d[0] == '0' && d[1]) || strlen(d) > 4 || acu_parse_int(d, 0, LINE_OFFSET_MAX, &v) < 0)
		return -1;
	return (int)v;
}

/* A line named once by offset and once by name is used twice too. Only the
 * sim backend's names are known here; gpio_open() resolves a chip's. */
static int check_sim_aliases(struct parser *p)
{
	char a[40], b[40];

	for (int j = 0; j < p->nused; j++) {
		int oj = cfg_sim_line_offset(&p->used[j].spec);

		for (int i = 0; oj >= 0 && i < j; i++) {
			if (cfg_sim_line_offset(&p->used[i].spec) != oj)
				continue;
			line_str(&p->used[j].spec, a, sizeof a);
			line_str(&p->used[i].spec, b, sizeof b);
			return perr(p, p->used[j].lineno,
				    "%s: GPIO line %s used twice (also %s at line %d, as %s: the sim "
				    "backend names line %d GPIO%d)", p->used[j].key, a,
				    p->used[i].what, p->used[i].lineno, b, oj, oj);
		}
	}
	return 0;
}

/* Whole-file checks of the main config, once every section has been read. */
static int check_main(struct parser *p, const char *path)
{
	struct acu_cfg *c = p->cfg;
	const struct key_lines *lim = &p->single[S_LIMITS];
	char a[32], b[32];

	p->file = path;
	if (c->nrooms == 0)
		return perr(p, p->lineno > 0 ? p->lineno : 1,
			    "no [room ID] section: at least one room is required");
	if (c->session_min > c->session_max) {
		int l = lim->line[K_SESSION_MIN] > lim->line[K_SESSION_MAX] ?
			lim->line[K_SESSION_MIN] : lim->line[K_SESSION_MAX];
		return perr(p, l, "session_min (%s) is above session_max (%s)",
			    fmt_dur(c->session_min, a, sizeof a), fmt_dur(c->session_max, b, sizeof b));
	}
	if (c->backend == BACKEND_SIM && check_sim_aliases(p) < 0)
		return -1;
	if (cfg_mqtt_check(p) < 0)
		return -1;
	/* Polarity waited for [gpio] active_low, wherever it was. */
	c->heartbeat.active_low ^= c->active_low;
	for (int i = 0; i < c->nrooms; i++) {
		struct acu_room_cfg *r = &c->rooms[i];
		for (int j = 0; j < r->nchannels; j++)
			r->gate[j].active_low ^= c->active_low;
		for (int j = 0; j < r->npulse; j++)
			r->pulse[j].active_low ^= c->active_low;
		r->alarm.active_low ^= c->active_low;
		r->interlock.active_low ^= c->active_low;
		r->call.active_low ^= c->active_low;
		r->presence.active_low ^= c->active_low;
	}
	if (!p->single[S_GPIO].line[K_SIM_STATE]) {
		int n = snprintf(c->sim_state, sizeof c->sim_state, "%s/gpio-sim.state", c->state_dir);
		if (n < 0 || (size_t)n >= sizeof c->sim_state)
			return perr(p, key_or(&p->single[S_DAEMON], K_STATE_DIR, 0),
				    "state_dir: path too long");
	}
	return check_profiles(p);
}

static int conf_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* Byte order, not the locale's: the load order must not depend on LANG. */
static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int load_profiles_dir(struct parser *p, const char *path)
{
	struct acu_cfg *c = p->cfg;
	int line = p->single[S_DAEMON].line[K_PROFILES_DIR];
	struct dirent **list = NULL;
	char file[PATH_MAX];
	int n, rc = 0;

	p->file = path;
	n = scandir(c->profiles_dir, &list, conf_name, name_cmp);
	if (n < 0) {
		/* The packaged default may be absent; a directory the technician
		 * named must exist. */
		if (errno == ENOENT && (!line || strcmp(c->profiles_dir, ACU_DEFAULT_PROFILES_DIR) == 0))
			return 0;
		return perr(p, line, "profiles_dir %s: %s", c->profiles_dir, strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		struct stat st;
		int len;

		if (rc < 0)
			continue;
		p->file = path;
		len = snprintf(file, sizeof file, "%s/%s", c->profiles_dir, list[i]->d_name);
		if (len < 0 || (size_t)len >= sizeof file) {
			rc = perr(p, line, "profiles_dir: path too long");
			continue;
		}
		if (stat(file, &st) < 0 || !S_ISREG(st.st_mode))
			continue; /* a dangling link or a directory named x.conf */
		rc = parse_file(p, file, 1);
		if (rc == 0)
			rc = check_profiles(p);
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}

/* The directory relative paths are taken from, made absolute: the daemon's
 * working directory is no business of the config. */
static int config_dir(struct parser *p, const char *path)
{
	const char *slash = strrchr(path, '/');
	char cwd[PATH_MAX];
	int n;

	if (slash == path)
		n = snprintf(p->dir, sizeof p->dir, "/");
	else if (slash && path[0] == '/')
		n = snprintf(p->dir, sizeof p->dir, "%.*s", (int)(slash - path), path);
	else if (!getcwd(cwd, sizeof cwd))
		return perr(p, 0, "cannot resolve relative paths: %s", strerror(errno));
	else if (slash)
		n = snprintf(p->dir, sizeof p->dir, "%s/%.*s", cwd, (int)(slash - path), path);
	else
		n = snprintf(p->dir, sizeof p->dir, "%s", cwd);
	if (n < 0 || (size_t)n >= sizeof p->dir)
		return perr(p, 0, "path too long");
	return 0;
}

struct acu_cfg *cfg_load(const char *path, char *err, size_t errlen)
{
	struct parser p;
	struct acu_cfg *c;
	int rc = -1;

	memset(&p, 0, sizeof p);
	p.err_line = -1;
	p.file = path;
	c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	p.cfg = c;
	if (strlen(path) >= sizeof c->path) {
		perr(&p, 0, "path too long");
		goto out;
	}
	snprintf(c->path, sizeof c->path, "%s", path);
	cfg_defaults(c);
	if (config_dir(&p, path) < 0 || parse_file(&p, path, 0) < 0 || check_main(&p, path) < 0 ||
	    load_profiles_dir(&p, path) < 0)
		goto out;
	rc = 0;
out:
	free(p.buf);
	free(p.used);
	free(p.room_keys);
	free(p.prof_keys);
	if (rc < 0) {
		snprintf(err, errlen, "%s", p.err);
		cfg_free(c);
		return NULL;
	}
	return c;
}

void cfg_free(struct acu_cfg *cfg)
{
	if (!cfg)
		return;
	free(cfg->rooms);
	free(cfg->profiles);
	for (int i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg);
}

const struct acu_room_cfg *cfg_room(const struct acu_cfg *cfg, const char *id)
{
	for (int i = 0; i < cfg->nrooms; i++)
		if (strcmp(cfg->rooms[i].id, id) == 0)
			return &cfg->rooms[i];
	return NULL;
}

const struct acu_profile_cfg *cfg_profile(const struct acu_cfg *cfg, const char *name)
{
	for (int i = 0; i < cfg->nprofiles; i++)
		if (strcmp(cfg->profiles[i].name, name) == 0)
			return &cfg->profiles[i];
	return NULL;
}

static int same_line(const struct acu_line *a, const struct acu_line *b)
{
	if (a->set != b->set)
		return 0;
	if (!a->set)
		return 1;
	return a->offset == b->offset && a->active_low == b->active_low &&
	       (a->offset >= 0 || strcmp(a->name, b->name) == 0);
}

int cfg_room_same_wiring(const struct acu_room_cfg *a, const struct acu_room_cfg *b)
{
	if (a->nchannels != b->nchannels || a->npulse != b->npulse)
		return 0;
	for (int i = 0; i < a->nchannels; i++)
		if (!same_line(&a->gate[i], &b->gate[i]))
			return 0;
	for (int i = 0; i < a->npulse; i++)
		if (!same_line(&a->pulse[i], &b->pulse[i]))
			return 0;
	return same_line(&a->alarm, &b->alarm) && same_line(&a->interlock, &b->interlock) &&
	       same_line(&a->call, &b->call) && same_line(&a->presence, &b->presence);
}

const char *cfg_mode_name(enum acu_mode m)
{
	for (const struct key_word *w = modes; w->word; w++)
		if (w->value == (int)m)
			return w->word;
	return "?";
}

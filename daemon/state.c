/* Persistence (SPEC §8): the state file replaced atomically before every
 * acknowledgement (the history is history.c's). The state file is hostile input
 * on load: anything that does not validate is kept aside, never half-applied. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

#define STATE_VERSION 1

void state_path(const struct acud *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s/state.json", d->cfg->state_dir);
}

/* write, fsync, rename, fsync the directory: a crash leaves the old or the new
 * file, never a torn one. durable = 0 skips the fsyncs (simulated GPIO levels). */
int write_atomic(const char *path, const char *data, size_t len, int durable)
{
	char tmp[PATH_MAX + 8], dir[PATH_MAX];
	int fd, dfd, saved;
	size_t off = 0;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return errno = ENAMETOOLONG, -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (durable && fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	if (durable) {
		snprintf(dir, sizeof dir, "%s", path);
		dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

static json_t *alarm_save(const struct acu_alarm *a)
{
	return json_pack("{s:b,s:i,s:I,s:I,s:I}", "active", a->active, "priority", a->priority,
			 "since_mono", (json_int_t)a->since_mono, "since_wall", (json_int_t)a->since_wall,
			 "silenced_until", (json_int_t)a->silenced_until);
}

static json_t *room_save(const struct acu_room *r)
{
	const struct acu_session *s = &r->s;
	json_t *alarms = json_object(), *delivered = json_array();

	for (int k = 0; k < AL__N; k++)
		if (r->alarm[k].active)
			json_object_set_new(alarms, acu_alarm_name(k), alarm_save(&r->alarm[k]));
	for (int c = 0; c < ACU_MAX_CHANNELS; c++)
		json_array_append_new(delivered, json_integer(s->stim.ch[c].delivered_ns));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,"
			 "s:I,s:o,s:o,s:b,s:s}",
			 "id", r->cfg->id, "state", acu_state_name(s->state),
			 "patient", s->patient, "practitioner", s->practitioner,
			 "profile", s->profile,
			 "started_wall", (json_int_t)s->started_wall,
			 "duration_s", (json_int_t)s->duration_s,
			 "end", (json_int_t)s->end, "remaining", (json_int_t)s->remaining,
			 "paused_since", (json_int_t)s->paused_since,
			 "paused_ns", (json_int_t)s->paused_ns,
			 "due_since", (json_int_t)s->due_since,
			 "checkin_due", (json_int_t)s->checkin_due,
			 "checkin_left", (json_int_t)s->checkin_left,
			 "checkins", s->checkins, "needles", s->needles,
			 "flags", (json_int_t)s->flags, "alarms", alarms, "delivered_ns", delivered,
			 "gpio_fault", r->gpio_fault, "attention", r->attention);
}

static uint64_t state_sum(const char *text, size_t len);

int state_save(struct acud *d, const struct acu_now *now, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	json_t *rooms = json_array(), *top;
	char *text, *sealed;
	size_t len;
	int rc;

	for (int i = 0; i < d->nrooms; i++)
		json_array_append_new(rooms, room_save(&d->rooms[i]));
	top = json_pack("{s:i,s:s,s:I,s:I,s:o}", "version", STATE_VERSION, "boot_id", d->boot_id,
			"saved_mono", (json_int_t)now->mono, "saved_wall", (json_int_t)now->wall,
			"rooms", rooms);
	text = json_dumps(top, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(top);
	if (!text) {
		snprintf(err, errlen, "cannot encode state");
		return -1;
	}
	len = strlen(text);
	sealed = malloc(len + 40);
	if (!sealed) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* The checksum of the text before it closes it: a flipped digit that
	 * still parses is caught on load. */
	memcpy(sealed, text, len - 1);
	len = len - 1 + (size_t)snprintf(sealed + len - 1, 40, ",\"sum\":\"%016llx\"}\n",
					 (unsigned long long)state_sum(text, len));
	free(text);
	if (d->persist) {
		persist_state(d->persist, sealed, len);
		return 0;
	}
	state_path(d, path, sizeof path);
	rc = write_atomic(path, sealed, len, 1);
	if (rc < 0)
		snprintf(err, errlen, "cannot save state to %s: %s", path, strerror(errno));
	free(sealed);
	return rc;
}

/* FNV-1a, 64 bits: detects damage, not tampering. */
static uint64_t state_sum(const char *text, size_t len)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)text[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

/* Reads and checks the file: no NUL bytes, JSON, and the checksum over the
 * text the daemon wrote. NULL with the reason otherwise. */
static json_t *state_read(const char *path, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *top, *sum;
	char *text = NULL, *again;
	size_t cap = 0, len = 0;
	FILE *f = fopen(path, "re");
	char want[20];

	if (!f) {
		snprintf(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			char *bigger;

			cap = cap ? cap * 2 : 65536;
			if (cap > 64u << 20 || !(bigger = realloc(text, cap + 1))) {
				snprintf(why, whylen, "larger than 64 MiB");
				goto fail;
			}
			text = bigger;
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (memchr(text, '\0', len)) {
		snprintf(why, whylen, "NUL byte at offset %zu", (size_t)((char *)memchr(text, '\0', len) - text));
		goto fail;
	}
	top = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!top) {
		snprintf(why, whylen, "line %d: %s", jerr.line, jerr.text);
		goto fail;
	}
	sum = json_object_get(top, "sum");
	if (!json_is_string(sum)) {
		json_decref(top);
		snprintf(why, whylen, "no checksum");
		goto fail;
	}
	snprintf(want, sizeof want, "%s", json_string_value(sum));
	json_object_del(top, "sum");
	again = json_dumps(top, JSON_COMPACT | JSON_SORT_KEYS);
	if (!again || strlen(want) != 16 ||
	    strtoull(want, NULL, 16) != state_sum(again, strlen(again))) {
		free(again);
		json_decref(top);
		snprintf(why, whylen, "checksum mismatch");
		goto fail;
	}
	free(again);
	free(text);
	fclose(f);
	return top;
fail:
	free(text);
	fclose(f);
	return NULL;
}

/* --- loading ------------------------------------------------------------- */

struct loader {
	const struct acu_now *now;
	int same_boot;
	int64_t saved_mono, saved_wall;
	char why[200];
};

/* A monotonic instant from the file, moved onto this boot's clock when the
 * machine rebooted since (through the wall clock it was saved against). */
static int64_t remap(const struct loader *L, int64_t mono)
{
	if (mono == 0 || L->same_boot)
		return mono;
	return L->now->mono + (L->saved_wall + (mono - L->saved_mono) - L->now->wall);
}

static int bad(struct loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct loader *L, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(L->why, sizeof L->why, fmt, ap);
	va_end(ap);
	return -1;
}

static int get_int(struct loader *L, json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return bad(L, "'%s' missing or not an integer", key);
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return bad(L, "'%s' out of range", key);
	*out = json_integer_value(v);
	return 0;
}

static int get_str(struct loader *L, json_t *o, const char *key, char *buf, size_t len, int ref)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (!json_is_string(v))
		return bad(L, "'%s' missing or not a string", key);
	s = json_string_value(v);
	if (strlen(s) >= len || (ref && *s && !acu_valid_ref(s)))
		return bad(L, "'%s' is not valid", key);
	snprintf(buf, len, "%s", s);
	return 0;
}

static int parse_state_name(const char *s)
{
	for (int i = 0; i < ST__N; i++)
		if (strcmp(s, acu_state_name(i)) == 0)
			return i;
	return -1;
}

static int room_load(struct loader *L, json_t *o, struct acu_room *r)
{
	const int64_t T = INT64_MAX / 4, HOURS = INT64_C(100) * 3600 * NS_PER_SEC;
	struct acu_session *s = &r->s;
	char state[16], attention[sizeof r->attention];
	int64_t v = 0, flags = 0, needles = 0, checkins = 0, fault;
	json_t *alarms, *delivered, *a;
	const char *key;

	memset(s, 0, sizeof *s);
	if (get_str(L, o, "state", state, sizeof state, 0) < 0)
		return -1;
	if (parse_state_name(state) < 0)
		return bad(L, "unknown state '%s'", state);
	s->state = parse_state_name(state);
	if (get_str(L, o, "patient", s->patient, sizeof s->patient, 1) < 0 ||
	    get_str(L, o, "practitioner", s->practitioner, sizeof s->practitioner, 0) < 0 ||
	    get_str(L, o, "profile", s->profile, sizeof s->profile, 1) < 0 ||
	    get_str(L, o, "attention", attention, sizeof attention, 0) < 0 ||
	    get_int(L, o, "started_wall", 0, T, &s->started_wall) < 0 ||
	    get_int(L, o, "duration_s", 0, INT32_MAX, &s->duration_s) < 0 ||
	    get_int(L, o, "end", 0, T, &s->end) < 0 ||
	    get_int(L, o, "remaining", 0, HOURS, &s->remaining) < 0 ||
	    get_int(L, o, "paused_since", 0, T, &s->paused_since) < 0 ||
	    get_int(L, o, "paused_ns", 0, T, &s->paused_ns) < 0 ||
	    get_int(L, o, "due_since", 0, T, &s->due_since) < 0 ||
	    get_int(L, o, "checkin_due", 0, T, &s->checkin_due) < 0 ||
	    get_int(L, o, "checkin_left", 0, HOURS, &s->checkin_left) < 0 ||
	    get_int(L, o, "checkins", 0, 1000000, &checkins) < 0 ||
	    get_int(L, o, "needles", 0, ACU_NEEDLES_MAX, &needles) < 0 ||
	    get_int(L, o, "flags", 0, (1 << FL__N) - 1, &flags) < 0)
		return -1;
	if (!json_is_boolean(json_object_get(o, "gpio_fault")))
		return bad(L, "'%s' missing or not a boolean", "gpio_fault");
	fault = json_is_true(json_object_get(o, "gpio_fault"));
	s->checkins = (int)checkins;
	s->needles = (int)needles;
	s->flags = (unsigned)flags;
	(void)fault; /* a GPIO fault is cleared by restart (SPEC S7) */
	snprintf(r->attention, sizeof r->attention, "%s", attention);
	s->end = remap(L, s->end);
	s->paused_since = remap(L, s->paused_since);
	s->due_since = remap(L, s->due_since);
	s->checkin_due = remap(L, s->checkin_due);
	if (s->state == ST_RUNNING && s->end == 0)
		return bad(L, "%s session without an end time", "running");

	delivered = json_object_get(o, "delivered_ns");
	if (!json_is_array(delivered) || json_array_size(delivered) != ACU_MAX_CHANNELS)
		return bad(L, "'%s' is not an array of 8", "delivered_ns");
	for (int c = 0; c < ACU_MAX_CHANNELS; c++) {
		json_t *x = json_array_get(delivered, c);
		if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > HOURS)
			return bad(L, "'%s' holds a bad value", "delivered_ns");
		s->stim.ch[c].delivered_ns = json_integer_value(x);
	}

	alarms = json_object_get(o, "alarms");
	if (!json_is_object(alarms))
		return bad(L, "'%s' is not an object", "alarms");
	json_object_foreach(alarms, key, a) {
		int k = -1;
		int64_t prio = 0, since_wall = 0, silenced = 0;
		for (int i = 0; i < AL__N; i++)
			if (strcmp(key, acu_alarm_name(i)) == 0)
				k = i;
		if (k < 0 || !json_is_object(a))
			return bad(L, "unknown alarm '%s'", key);
		if (get_int(L, a, "priority", PRIO_LOW, PRIO_HIGH, &prio) < 0 ||
		    get_int(L, a, "since_mono", 0, T, &v) < 0 ||
		    get_int(L, a, "since_wall", 0, T, &since_wall) < 0 ||
		    get_int(L, a, "silenced_until", 0, T, &silenced) < 0)
			return -1;
		if (k == AL_GPIO_FAULT)
			continue;
		r->alarm[k].active = 1;
		r->alarm[k].priority = (enum acu_priority)prio;
		r->alarm[k].since_mono = remap(L, v);
		r->alarm[k].since_wall = since_wall;
		r->alarm[k].silenced_until = remap(L, silenced);
	}
	/* Stimulation is never re-armed by a restart (SPEC §8). */
	s->stim.armed = 0;
	return 0;
}

/* Parses the whole file into a scratch copy of the rooms first, so a bad file
 * changes nothing. */
static int state_parse(struct acud *d, json_t *top, const struct acu_now *now, struct acu_room *out,
		       char *why, size_t whylen)
{
	struct loader L = { .now = now };
	json_t *rooms, *o;
	int64_t version;
	size_t i;
	char boot[40];

	L.why[0] = '\0';
	if (!json_is_object(top)) {
		snprintf(why, whylen, "not a JSON object");
		return -1;
	}
	if (get_int(&L, top, "version", 1, 1, &version) < 0 ||
	    get_str(&L, top, "boot_id", boot, sizeof boot, 0) < 0 ||
	    get_int(&L, top, "saved_mono", 0, INT64_MAX / 4, &L.saved_mono) < 0 ||
	    get_int(&L, top, "saved_wall", 0, INT64_MAX / 4, &L.saved_wall) < 0)
		goto fail;
	L.same_boot = d->boot_id[0] && strcmp(boot, d->boot_id) == 0;
	rooms = json_object_get(top, "rooms");
	if (!json_is_array(rooms)) {
		bad(&L, "'%s' is not an array", "rooms");
		goto fail;
	}
	json_array_foreach(rooms, i, o) {
		char id[ACU_ID_MAX + 1];
		struct acu_room tmp;
		int idx = -1;

		if (!json_is_object(o) || get_str(&L, o, "id", id, sizeof id, 1) < 0)
			goto fail;
		for (int j = 0; j < d->nrooms; j++)
			if (strcmp(d->rooms[j].cfg->id, id) == 0)
				idx = j;
		room_init(&tmp, idx >= 0 ? d->rooms[idx].cfg : NULL);
		if (room_load(&L, o, &tmp) < 0) {
			char w[sizeof L.why];
			snprintf(w, sizeof w, "%s", L.why);
			snprintf(L.why, sizeof L.why, "room %s: %.150s", id, w);
			goto fail;
		}
		if (idx < 0) {
			if (tmp.s.state != ST_IDLE)
				log_err("state: room %s has a %s session but is no longer configured; "
					"patient %s, practitioner %s: check that room", id,
					acu_state_name(tmp.s.state), tmp.s.patient[0] ? tmp.s.patient : "-",
					tmp.s.practitioner[0] ? tmp.s.practitioner : "-");
			continue;
		}
		tmp.cfg = d->rooms[idx].cfg;
		tmp.rt = d->rooms[idx].rt;
		tmp.interlock_tripped = d->rooms[idx].interlock_tripped;
		out[idx] = tmp;
	}
	return 0;
fail:
	snprintf(why, whylen, "%s", L.why[0] ? L.why : "invalid");
	return -1;
}

void state_load(struct acud *d, const struct acu_now *now)
{
	char path[PATH_MAX + 16], aside[PATH_MAX + 64], why[256], stamp[40];
	struct acu_room *scratch;
	json_t *top;
	struct stat st;

	state_path(d, path, sizeof path);
	if (stat(path, &st) < 0 && errno == ENOENT)
		return;
	top = state_read(path, why, sizeof why);
	scratch = calloc((size_t)d->nrooms + 1, sizeof *scratch);
	if (!scratch)
		fatal("out of memory");
	for (int i = 0; i < d->nrooms; i++)
		scratch[i] = d->rooms[i];
	if (top && state_parse(d, top, now, scratch, why, sizeof why) == 0) {
		for (int i = 0; i < d->nrooms; i++)
			d->rooms[i] = scratch[i];
		json_decref(top);
		free(scratch);
		log_info("state: restored from %s", path);
		return;
	}
	json_decref(top);
	free(scratch);
	acu_rfc3339(now->wall, stamp, sizeof stamp);
	snprintf(aside, sizeof aside, "%s.corrupt-%s", path, stamp);
	if (rename(path, aside) < 0)
		log_err("state: cannot move %s aside: %s", path, strerror(errno));
	log_err("state: %s is corrupt (%s); kept as %s; every room is marked for attention", path,
		why, aside);
	for (int i = 0; i < d->nrooms; i++)
		snprintf(d->rooms[i].attention, sizeof d->rooms[i].attention,
			 "saved state was corrupt: check this room for a patient with needles in");
}

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
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon.h"
#include "restart.h"

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
	json_t *alarms = json_object(), *delivered = json_array(), *on_since = json_array();

	for (int k = 0; k < AL__N; k++)
		if (r->alarm[k].active)
			json_object_set_new(alarms, acu_alarm_name(k), alarm_save(&r->alarm[k]));
	/* A gate on at the save counts as on until the restart (SPEC §8). */
	for (int c = 0; c < ACU_MAX_CHANNELS; c++) {
		json_array_append_new(delivered, json_integer(s->stim.ch[c].delivered_ns));
		json_array_append_new(on_since, json_integer(s->stim.ch[c].on ?
							     s->stim.ch[c].on_since : 0));
	}
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,"
			 "s:I,s:o,s:o,s:o,s:b,s:b,s:s}",
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
			 "on_since", on_since, "armed", s->stim.armed,
			 "gpio_fault", r->gpio_fault, "attention", r->attention);
}

static uint64_t state_sum(const char *text, size_t len);

/* --- the state file on a full disk (SPEC S9) -------------------------------
 * state_dir holds a reserve file of preallocated space. When the file system
 * is full, the reserve is given back just long enough to replace the state
 * file, so a contraindication or a cut is saved even then; every save after
 * that takes the space back. Only the writer thread (or the loop, before it
 * starts and after it stops) calls these. */

#define RESERVE_MIN (64 * 1024)
/* Less free space than this for the daemon's user counts as full: the next
 * history day file, a session record or a bigger state would not fit. */
#define SPACE_LOW (64 * 1024)

void state_file_init(struct state_file *f, const char *state_dir)
{
	memset(f, 0, sizeof *f);
	snprintf(f->path, sizeof f->path, "%s/state.json", state_dir);
	snprintf(f->reserve, sizeof f->reserve, "%s/state.reserve", state_dir);
	snprintf(f->dir, sizeof f->dir, "%s", state_dir);
}

/* 1 when the file system holding dir has less than SPACE_LOW free for us. */
int state_space_low(const char *dir)
{
	struct statvfs sv;

	if (statvfs(dir, &sv) < 0)
		return 0; /* the write itself will tell */
	return (uint64_t)sv.f_bavail * sv.f_frsize < SPACE_LOW;
}

static off_t reserve_target(size_t state_len)
{
	off_t want = (off_t)state_len * 4;

	want = (want + 4095) & ~(off_t)4095;
	return want < RESERVE_MIN ? RESERVE_MIN : want;
}

/* Allocates the reserve to size; 0 when it is whole. */
static int reserve_fill(struct state_file *f, off_t size)
{
	int fd = open(f->reserve, O_WRONLY | O_CREAT | O_CLOEXEC, 0600), rc;

	if (fd < 0)
		return -1;
	/* posix_fallocate: real blocks (not a sparse file), written by glibc
	 * where the file system cannot preallocate. */
	rc = posix_fallocate(fd, 0, size);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = errno;
	close(fd);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	f->reserve_size = size;
	return 0;
}

static void reserve_release(struct state_file *f)
{
	if (truncate(f->reserve, 0) < 0 && errno != ENOENT)
		log_debug("state: cannot release %s: %s", f->reserve, strerror(errno));
	f->reserve_size = 0;
}

int state_file_write(struct state_file *f, const char *text, size_t len, char *err, size_t errlen)
{
	off_t want = reserve_target(len);
	int low = 0;

	if (write_atomic(f->path, text, len, 1) < 0) {
		if (errno != ENOSPC && errno != EDQUOT)
			goto fail;
		/* Full: the reserve's space for this one save. */
		reserve_release(f);
		if (write_atomic(f->path, text, len, 1) < 0)
			goto fail;
		low = 1;
	}
	if (f->reserve_size < want && reserve_fill(f, want) < 0) {
		/* Whatever part was allocated is still ours for the next save. */
		low = 1;
	}
	if (!low && state_space_low(f->dir))
		low = 1;
	if (low)
		snprintf(err, errlen, "%s: file system full (less than %d KiB free)", f->dir,
			 SPACE_LOW / 1024);
	return low ? STATE_SAVED_LOW : STATE_SAVED;
fail:
	snprintf(err, errlen, "cannot save state to %.150s: %s", f->path, strerror(errno));
	return -1;
}

int state_save(struct acud *d, const struct acu_now *now, char *err, size_t errlen)
{
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
	if (!d->state_file.path[0])
		state_file_init(&d->state_file, d->cfg->state_dir);
	rc = state_file_write(&d->state_file, sealed, len, err, errlen);
	free(sealed);
	return rc;
}

/* FNV-1a, 64 bits: detects damage, not tampering. */
static uint64_t state_sum_more(uint64_t h, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)text[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static uint64_t state_sum(const char *text, size_t len)
{
	return state_sum_more(UINT64_C(14695981039346656037), text, len);
}

/* Where `,"sum":"<16 hex>"}` (and a newline) ends the file, or NULL. */
static const char *state_sum_tail(const char *text, size_t len)
{
	static const char head[] = ",\"sum\":\"";
	size_t n = sizeof head - 1 + 16 + 2;

	while (len && text[len - 1] == '\n')
		len--;
	if (len < n || memcmp(text + len - n, head, sizeof head - 1) != 0 ||
	    memcmp(text + len - 2, "\"}", 2) != 0)
		return NULL;
	return text + len - n;
}

/* The sum of text[0..len) followed by the '}' that closed it when summed. */
static uint64_t state_sum_closed(const char *text, size_t len)
{
	return state_sum_more(state_sum(text, len), "}", 1);
}

/* Reads and checks the file: no NUL bytes, JSON, and the checksum over the
 * bytes the daemon wrote. NULL with the reason otherwise. */
static json_t *state_read(const char *path, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *top, *sum;
	char *text = NULL;
	const char *tail;
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
	/* The sum covers the bytes as written: the text up to the sum member,
	 * closed by '}' (state_save). Never a re-encoding, which a jansson
	 * upgrade could change by a byte. */
	tail = state_sum_tail(text, len);
	snprintf(want, sizeof want, "%s", json_string_value(sum));
	if (!tail || strlen(want) != 16 || strspn(want, "0123456789abcdef") != 16 ||
	    strtoull(want, NULL, 16) != state_sum_closed(text, (size_t)(tail - text))) {
		json_decref(top);
		snprintf(why, whylen, "checksum mismatch");
		goto fail;
	}
	json_object_del(top, "sum");
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
	struct restart_clock clock;    /* restart.c: what the saved instants mean now */
	char why[200];
};

static int64_t remap(const struct loader *L, int64_t mono)
{
	return restart_remap(&L->clock, mono);
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
	json_t *alarms, *delivered, *on_since, *armed, *a;
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
	/* on_since and armed came later: a file without them is still good. */
	on_since = json_object_get(o, "on_since");
	if (on_since && (!json_is_array(on_since) || json_array_size(on_since) != ACU_MAX_CHANNELS))
		return bad(L, "'%s' is not an array of 8", "on_since");
	armed = json_object_get(o, "armed");
	if (armed && !json_is_boolean(armed))
		return bad(L, "'%s' missing or not a boolean", "armed");
	for (int c = 0; c < ACU_MAX_CHANNELS; c++) {
		json_t *x = json_array_get(delivered, c), *y = json_array_get(on_since, c);
		int64_t since = 0;

		if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > HOURS)
			return bad(L, "'%s' holds a bad value", "delivered_ns");
		if (on_since && (!json_is_integer(y) || json_integer_value(y) < 0 ||
				 json_integer_value(y) > T))
			return bad(L, "'%s' holds a bad value", "on_since");
		if (on_since)
			since = json_integer_value(y);
		/* A gate on at the save counts as on until now: never undercounted. */
		s->stim.ch[c].delivered_ns = restart_delivered(&L->clock, json_integer_value(x),
							       since, ACU_STIM_MAX_LIMIT_S * NS_PER_SEC);
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
		/* A GPIO fault is cleared by a restart (S7); storage is found
		 * again by the first save. */
		if (k == AL_GPIO_FAULT || k == AL_STORAGE)
			continue;
		r->alarm[k].active = 1;
		r->alarm[k].priority = (enum acu_priority)prio;
		r->alarm[k].since_mono = remap(L, v);
		r->alarm[k].since_wall = since_wall;
		r->alarm[k].silenced_until = remap(L, silenced);
	}
	/* Stimulation is never re-armed by a restart (SPEC §8); what blocks it
	 * is shown, a contraindication first. */
	s->stim.armed = 0;
	if (s->flags & FL_HARD_MASK)
		snprintf(s->stim.blocked, sizeof s->stim.blocked, "contraindicated");
	else if (json_is_true(armed))
		snprintf(s->stim.blocked, sizeof s->stim.blocked, "restart");
	if (s->state != ST_IDLE && !restart_trusted(&L->clock)) {
		snprintf(r->attention, sizeof r->attention,
			 "restarted with the clock behind the last save: check this room's timer");
		if (!r->alarm[AL_ATTENTION].active)
			room_alarm_raise(r, AL_ATTENTION, PRIO_MEDIUM, &L->clock.now);
	}
	return 0;
}

/* Parses the whole file into a scratch copy of the rooms first, so a bad file
 * changes nothing. */
static int state_parse(struct acud *d, json_t *top, const struct acu_now *now, struct acu_room *out,
		       char *why, size_t whylen)
{
	struct loader L = { .clock.now = *now };
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
	    get_int(&L, top, "saved_mono", 0, INT64_MAX / 4, &L.clock.saved_mono) < 0 ||
	    get_int(&L, top, "saved_wall", 0, INT64_MAX / 4, &L.clock.saved_wall) < 0)
		goto fail;
	L.clock.same_boot = d->boot_id[0] && strcmp(boot, d->boot_id) == 0;
	if (!restart_trusted(&L.clock))
		log_errx("state: the wall clock is %lld s behind the last save after a reboot "
			"(no real-time clock?): timers keep the time they had left at that save; "
			"rooms with a session are marked for attention",
			(long long)((L.clock.saved_wall - now->wall) / NS_PER_SEC));
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
				log_errx("state: room %s has a %s session but is no longer configured; "
					"patient %s, practitioner %s: check that room", id,
					acu_state_name(tmp.s.state), tmp.s.patient[0] ? tmp.s.patient : "-",
					tmp.s.practitioner[0] ? tmp.s.practitioner : "-");
			continue;
		}
		tmp.cfg = d->rooms[idx].cfg;
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
	scratch = xcalloc((size_t)d->nrooms + 1, sizeof *scratch);
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
		log_err("state: cannot move %s aside", path);
	log_errx("state: %s is corrupt (%s); kept as %s; every room is marked for attention", path,
		why, aside);
	for (int i = 0; i < d->nrooms; i++) {
		snprintf(d->rooms[i].attention, sizeof d->rooms[i].attention,
			 "saved state was corrupt: check this room for a patient with needles in");
		room_alarm_raise(&d->rooms[i], AL_ATTENTION, PRIO_MEDIUM, now);
	}
}

/* --- contraindications journal ----------------------------------------------
 * S9: a hard contraindication that cut a gate stands after a crash even if the
 * state file could not take it (a failing card: EIO, read-only). It is also
 * written, at once, to a small file in the runtime directory (the socket's,
 * /run/acud: memory, not the card), and merged into the rooms at start-up. */

static void journal_path(const struct acud *d, char *buf, size_t len)
{
	char dir[sizeof d->cfg->socket];
	char *slash;

	snprintf(dir, sizeof dir, "%s", d->cfg->socket);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	snprintf(buf, len, "%s/contraindications.json", dir);
}

void state_journal_write(struct acud *d)
{
	char path[PATH_MAX + 32], *text;
	json_t *rooms = json_array(), *top;

	for (int i = 0; i < d->nrooms; i++) {
		const struct acu_room *r = &d->rooms[i];

		if (r->s.state == ST_IDLE || !(r->s.flags & FL_HARD_MASK))
			continue;
		json_array_append_new(rooms, json_pack("{s:s,s:I,s:s,s:I}", "id", r->cfg->id,
						       "started_wall", (json_int_t)r->s.started_wall,
						       "patient", r->s.patient,
						       "flags", (json_int_t)(r->s.flags & FL_HARD_MASK)));
	}
	top = json_pack("{s:o}", "rooms", rooms);
	text = json_dumps(top, JSON_COMPACT);
	json_decref(top);
	journal_path(d, path, sizeof path);
	if (!text || write_atomic(path, text, strlen(text), 1) < 0)
		log_errx("contraindications journal %s: %s", path, text ? strerror(errno) : "encoding");
	free(text);
}

void state_journal_apply(struct acud *d)
{
	char path[PATH_MAX + 32];
	json_error_t jerr;
	json_t *top, *rooms, *e;
	size_t i;

	journal_path(d, path, sizeof path);
	top = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!top) {
		if (access(path, F_OK) == 0)
			log_errx("contraindications journal %s: %s (line %d); ignored", path, jerr.text,
				jerr.line);
		return;
	}
	rooms = json_object_get(top, "rooms");
	json_array_foreach(rooms, i, e) {
		json_t *id = json_object_get(e, "id"), *started = json_object_get(e, "started_wall");
		json_t *flags = json_object_get(e, "flags");
		struct acu_room *r;
		unsigned f;

		if (!json_is_string(id) || !json_is_integer(started) || !json_is_integer(flags))
			continue;
		r = commit_room(d, json_string_value(id));
		f = (unsigned)json_integer_value(flags) & FL_HARD_MASK;
		/* Only for the session it was set in. */
		if (!r || r->s.state == ST_IDLE || r->s.started_wall != json_integer_value(started) ||
		    (r->s.flags & f) == f)
			continue;
		log_errx("room %s: a contraindication the state file missed is restored from %s",
			r->cfg->id, path);
		r->s.flags |= f;
		r->s.stim.armed = 0;
		snprintf(r->s.stim.blocked, sizeof r->s.stim.blocked, "contraindicated");
	}
	json_decref(top);
}

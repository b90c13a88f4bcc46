/* The fuzz harness's daemon: what acud.c and server.c provide to the rest of
 * the daemon, reimplemented without a process, a socket or an event loop of
 * its own. The command dispatch, room logic, persistence, GPIO layer (sim
 * backend) and stimulation engine are the real ones.
 *
 * Time is virtual (acu_now/acu_mono_now are wrapped at link time with
 * -Wl,--wrap): every reading moves it on by a microsecond and "#t N" by N
 * seconds, so sequences reach expiry, check-ins, escalation and the end of a
 * stimulation dose without sleeping.
 *
 * After every line the harness checks what must always hold and abort()s
 * otherwise, so that libFuzzer reports it like a crash:
 *   - the reply is a JSON object with a boolean "ok", and an "error" object
 *     with a known code and a message when ok is false; it encodes;
 *   - S2: no gate line is active unless its channel is counted on, and no
 *     channel is on unless the session is running and armed, has no hard flag
 *     nor a soft flag its policy refuses, the interlock is clear, no GPIO
 *     fault is pending, the profile drives that channel, the schedule says on
 *     and the dose is not delivered;
 *   - every room object encodes, and the cached one is the same;
 * and at the end of every input that the state file reads back into the same
 * rooms (fh_check_persistence). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "server.h"
#include "gate.h"
#include "gpio.h"
#include "harness.h"
#include "stimsched.h"

struct acud fh_daemon;

/* --- virtual time ----------------------------------------------------------- */

struct acu_now __real_acu_now(void);
int64_t __real_acu_mono_now(void);
struct acu_now __wrap_acu_now(void);
int64_t __wrap_acu_mono_now(void);

static struct acu_now vnow;

struct acu_now __wrap_acu_now(void)
{
	vnow.mono += 1000;
	vnow.wall += 1000;
	return vnow;
}

int64_t __wrap_acu_mono_now(void)
{
	vnow.mono += 1000;
	vnow.wall += 1000;
	return vnow.mono;
}

/* --- what server.c provides --------------------------------------------------- */

struct client {
	uid_t uid;
	char user[ACU_NAME_MAX + 1];
	enum acu_role role;
	int watching;
};

static struct client fh_client;

uid_t client_uid(const struct client *c) { return c->uid; }
const char *client_user(const struct client *c) { return c->user; }
void client_set_watching(struct client *c) { c->watching = 1; }
void client_set_watching_lines(struct client *c) { c->watching = 1; }
void client_read_only(struct client *c) { (void)c; }

enum acu_role client_role(struct acud *d, const struct client *c)
{
	(void)d;
	return c->role;
}

/* S5, S6: an interlock edge (or an input that cannot be read) is told to the
 * line watchers only once its room's gates are off. */
static void check_line_event(json_t *event)
{
	struct acud *d = &fh_daemon;
	const char *room = json_string_value(json_object_get(event, "room"));
	const char *fn = json_string_value(json_object_get(event, "function"));
	json_t *level = json_object_get(event, "level");

	if (!room || !fn || strcmp(fn, "interlock") != 0 ||
	    (json_integer_value(json_object_get(event, "edges")) <= 0 &&
	     json_is_integer(level) && json_integer_value(level) == 0))
		return;
	for (int i = 0; i < d->nrooms; i++) {
		const struct acu_room *r = &d->rooms[i];

		if (strcmp(r->cfg->id, room) != 0)
			continue;
		for (int c = 0; c < r->cfg->nchannels; c++) {
			const struct gpio_line *l = gpio_find(d->gpio, &r->cfg->gate[c]);

			if (l && gpio_active(l) != 0) {
				fprintf(stderr, "fuzz: S6 violated: room %s's interlock edge reported "
					"while its gate %d is on\n", room, c + 1);
				abort();
			}
		}
	}
}

/* No clients: the event is encoded as it would be for watchers, and must encode. */
static void check_event(void *arg, enum publish_kind kind, json_t *event)
{
	char *text;

	(void)arg;
	if (!event) {
		fprintf(stderr, "fuzz: a NULL event was published\n");
		abort();
	}
	if (kind == PUBLISH_LINE)
		check_line_event(event);
	text = json_dumps(event, JSON_COMPACT);
	if (!text) {
		fprintf(stderr, "fuzz: an event does not encode\n");
		abort();
	}
	free(text);
}

static struct subscriber event_checker = { check_event, NULL, NULL };

/* A deferred reply (history): kept here until the query ends. */
struct deferred {
	json_t *id;
};

static json_t *deferred_reply;
static int deferred_waiting;

struct deferred *server_defer(struct client *c, json_t *id)
{
	struct deferred *w = calloc(1, sizeof *w);

	(void)c;
	if (!w)
		abort();
	w->id = id;
	json_incref(id);
	deferred_waiting = 1;
	return w;
}

json_t *server_deferred_id(const struct deferred *w)
{
	return w->id;
}

/* The harness's one client never goes away. */
void server_deferred_on_gone(struct deferred *w, void (*fn)(void *), void *arg)
{
	(void)w;
	(void)fn;
	(void)arg;
}

void server_deferred_reply(struct deferred *w, json_t *reply)
{
	json_decref(w->id);
	free(w);
	deferred_waiting = 0;
	json_decref(deferred_reply);
	deferred_reply = reply;
}

/* --- the environment -------------------------------------------------------- */

static char dir[64];
static char conf_path[128];

/* "#d 1": every save fails from now on, as on a card gone bad (a directory
 * where the new state file goes: EISDIR); "#d 0": saves work again. */
static void disk_fails(int on)
{
	char path[192];

	snprintf(path, sizeof path, "%s/state.json.tmp", dir);
	if (on)
		mkdir(path, 0700);
	else
		rmdir(path);
}

static const char conf_head[] =
	"[daemon]\n"
	"socket = run/acud.sock\n"
	"state_dir = .\n"
	"profiles_dir = profiles.d\n"
	"log_level = err\n"
	/* The loop's own pulses: a real-time thread would make runs differ. */
	"realtime_priority = 0\n"
	"[gpio]\n"
	"backend = sim\n"
	"heartbeat = 26\n"
	"sim_trace = gpio.trace\n"
	"[limits]\n"
	"session_min = 1s\n"
	"session_max = 4h\n"
	"stim_max = 60m\n"
	"[alarm]\n"
	"escalate_after = 5m\n"
	"checkin_interval = 10m\n";

static const char conf_profiles[] =
	"[profile p2]\n"
	"mode = continuous\nfrequency_hz = 2\nduration_s = 600\n"
	"[profile dd]\n"
	"mode = dense-disperse\nfrequency_hz = 2\nalt_frequency_hz = 100\nswitch_s = 3\n"
	"[profile inter]\n"
	"mode = intermittent\nfrequency_hz = 10\non_s = 1\noff_s = 2\npulse_width_us = 500\n"
	"[profile delayed]\n"
	"mode = continuous\nfrequency_hz = 5\ndelay_s = 5\nduration_s = 10\n"
	"[profile ch2]\n"
	"mode = continuous\nchannels = 2\nduration_s = 30\n"
	"[profile safe]\n"
	"mode = intermittent\non_s = 5\noff_s = 5\npregnancy_safe = yes\n";

static const char rooms_base[] =
	"[room 1]\nname = Lotus\ngate = 17, 27\npulse = 22, 23\nalarm = 5\naudible = yes\ninterlock = !6\n"
	"[room 2]\nname = Bamboo\ngate = 24\nalarm = 16\ninterlock = 7\n"
	"[room 3]\nname = Cedar\ngate = !13\npulse = !12\n"
	"[room 4]\nname = Willow\ngate = 19, 20\n";

/* Variants the sequence target reloads into: 0 base; 1 same wiring, other
 * policies; 2 room 2 rewired; 3 room 3 removed, a room 5 added; 4 broken. */
static const char *const variants_safety[] = {
	"[safety]\nrequire_needle_count = yes\nepilepsy = warn\nmetal-implant = warn\n",
	("[safety]\nrequire_needle_count = no\nepilepsy = refuse\nmetal-implant = refuse\n"
	 "bleeding-disorder = refuse\nheart-disease = warn\npregnancy = warn\n"),
	"[safety]\nepilepsy = warn\n",
	"[safety]\nepilepsy = warn\n",
	"[safety]\nepilepsy = warn\nnot-a-key = 1\n",
};

static void write_file(const char *path, const char *a, const char *b, const char *c,
		       const char *e)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
		abort();
	}
	fputs(a, f);
	fputs(b, f);
	fputs(c, f);
	fputs(e, f);
	fclose(f);
}

static void write_variant(int v)
{
	const char *rooms = rooms_base;

	if (v == 2)
		rooms = "[room 1]\nname = Lotus\ngate = 17, 27\npulse = 22, 23\nalarm = 5\naudible = yes\ninterlock = !6\n"
			"[room 2]\nname = Bamboo\ngate = 25\nalarm = 16\ninterlock = 7\n"
			"[room 3]\nname = Cedar\ngate = !13\npulse = !12\n"
			"[room 4]\nname = Willow\ngate = 19, 20\n";
	else if (v == 3)
		rooms = "[room 1]\nname = Lotus\ngate = 17, 27\npulse = 22, 23\nalarm = 5\naudible = yes\ninterlock = !6\n"
			"[room 2]\nname = Bamboo\ngate = 24\nalarm = 16\ninterlock = 7\n"
			"[room 4]\nname = Willow\ngate = 19, 20\n"
			"[room 5]\ngate = 3\ninterlock = 4\n";
	write_file(conf_path, conf_head, variants_safety[v], rooms, conf_profiles);
}

static void cleanup_dir(void)
{
	char cmd[128];

	if (dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz: could not remove %s\n", dir);
	}
}

static void init_once(void)
{
	char path[192];

	if (dir[0])
		return;
	snprintf(dir, sizeof dir, "/dev/shm/acufuzz.XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof dir, "/tmp/acufuzz.XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	atexit(cleanup_dir);
	snprintf(conf_path, sizeof conf_path, "%s/acud.conf", dir);
	snprintf(path, sizeof path, "%s/profiles.d", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/run", dir); /* the socket's directory, as acud makes it */
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/profiles.d/extra.conf", dir);
	write_file(path, "[profile extra]\nmode = continuous\nfrequency_hz = 10\nduration_s = 60\n",
		   "", "", "");
	log_init(LOG_CRIT); /* quiet: a fatalx() still shows */
	vnow = __real_acu_now();
	fh_client.uid = 0;
	snprintf(fh_client.user, sizeof fh_client.user, "root");
	fh_client.role = ROLE_TECHNICIAN;
}

void fh_teardown(void)
{
	struct acud *d = &fh_daemon;

	if (!d->cfg)
		return;
	stim_close(d);
	if (d->base)
		event_base_free(d->base);
	history_close(d->history);
	roomjson_clear(d);
	free(d->rooms);
	cfg_free(d->cfg);
	memset(d, 0, sizeof *d);
}

static void populate(void);

/* The day files of the history (SPEC §8), without a process per input. */
static void remove_history(void)
{
	char path[192];
	struct dirent *de;
	DIR *dh;

	snprintf(path, sizeof path, "%s/history", dir);
	dh = opendir(path);
	if (!dh)
		return;
	while ((de = readdir(dh)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(dh), de->d_name, 0);
	closedir(dh);
}

void fh_reset(void)
{
	struct acud *d = &fh_daemon;
	char err[512], path[192];
	struct event_config *ec;

	init_once();
	fh_teardown();
	gpio_sim_forget(); /* every input starts inactive, as at process start */
	write_variant(0);
	/* A fresh history and trace for every input: what one input leaves must not
	 * slow or change the next. */
	remove_history();
	snprintf(path, sizeof path, "%s/gpio.trace", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/state.json", dir);
	unlink(path);
	disk_fails(0);

	d->config_path = conf_path;
	d->cfg = cfg_load(conf_path, err, sizeof err);
	if (!d->cfg) {
		fprintf(stderr, "fuzz: harness config rejected: %s\n", err);
		abort();
	}
	d->self_uid = 0;
	d->desk_gid = d->practitioner_gid = d->technician_gid = (gid_t)-1;
	snprintf(d->boot_id, sizeof d->boot_id, "fuzz-boot");
	ec = event_config_new();
	d->inputs_ep = -1;
	d->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!d->base || event_base_priority_init(d->base, 2) < 0)
		abort();
	d->nrooms = d->cfg->nrooms;
	d->rooms = calloc((size_t)d->nrooms + 1, sizeof *d->rooms);
	if (!d->rooms)
		abort();
	for (int i = 0; i < d->nrooms; i++)
		room_init(&d->rooms[i], &d->cfg->rooms[i]);
	d->history = history_open(d->cfg->state_dir, d->cfg->history_keep, err, sizeof err);
	if (!d->history) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	if (stim_open(d, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz: stim_open: %s\n", err);
		abort();
	}
	fh_client.role = ROLE_TECHNICIAN;
	fh_client.watching = 0;
	publish_subscribe(d, &event_checker);
	populate();
}

/* --- checks ------------------------------------------------------------------ */

static void check_reply(json_t *reply, const char *line, size_t len)
{
	json_t *ok, *e, *code, *msg;
	char *text;
	int known = 0;

	if (!reply || !json_is_object(reply))
		goto bad;
	ok = json_object_get(reply, "ok");
	if (!json_is_boolean(ok))
		goto bad;
	if (json_is_false(ok)) {
		e = json_object_get(reply, "error");
		code = json_object_get(e, "code");
		msg = json_object_get(e, "message");
		if (!json_is_object(e) || !json_is_string(code) || !json_is_string(msg))
			goto bad;
		for (int c = 1; c < E__N; c++)
			if (strcmp(json_string_value(code), acu_errcode_name(c)) == 0)
				known = 1;
		if (!known)
			goto bad;
	}
	text = json_dumps(reply, JSON_COMPACT);
	if (!text)
		goto bad;
	free(text);
	return;
bad:
	text = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	fprintf(stderr, "fuzz: bad reply %s\n  to request (%zu bytes): %.*s\n",
		text ? text : "(none or does not encode)", len, (int)(len > 600 ? 600 : len), line);
	abort();
}

static void violation(const struct acu_room *r, int c, const char *what)
{
	fprintf(stderr, "fuzz: S2 violated: room %s channel %d: %s (state %s armed %d flags %#x "
		"interlock %d fault %d)\n", r->cfg->id, c + 1, what, acu_state_name(r->s.state),
		r->s.stim.armed, r->s.flags, r->interlock_tripped, r->gpio_fault);
	abort();
}

static void check_invariants(void)
{
	struct acud *d = &fh_daemon;
	int counted = 0;
	int64_t now = vnow.mono;

	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i];
		const struct acu_profile_cfg *p = r->s.profile[0] ? cfg_profile(d->cfg, r->s.profile) : NULL;
		unsigned chans = p && p->channels ? p->channels : (1u << r->cfg->nchannels) - 1;
		json_t *j = roomjson_room(r, &vnow), *jc = roomjson_cached(d, r, &vnow);
		char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		char *ctext = jc ? json_dumps(jc, JSON_COMPACT) : NULL;

		if (!text) {
			fprintf(stderr, "fuzz: room %s does not encode\n", r->cfg->id);
			abort();
		}
		/* The cached object must be the one roomjson_room would build now. */
		if (!ctext || strcmp(text, ctext) != 0) {
			fprintf(stderr, "fuzz: room %s: cached object differs:\n  %s\n  %s\n",
				r->cfg->id, text, ctext ? ctext : "(none)");
			abort();
		}
		free(text);
		free(ctext);
		json_decref(j);
		json_decref(jc);
		for (int c = 0; c < r->cfg->nchannels; c++) {
			const struct acu_channel *ch = &r->s.stim.ch[c];
			struct gpio_line *l = gpio_find(d->gpio, &r->cfg->gate[c]);
			struct sched_point pt = { 0, 0, 0, ACU_NEVER };
			int64_t delivered, budget;

			if (!l)
				violation(r, c, "gate line not requested");
			if (l->active && !ch->on)
				violation(r, c, "gate line active but channel not on");
			if (!ch->on)
				continue;
			counted++;
			if (!l->active)
				violation(r, c, "channel on but gate line inactive");
			if (r->s.state != ST_RUNNING)
				violation(r, c, "on while not running");
			if (!r->s.stim.armed)
				violation(r, c, "on while not armed");
			if (r->s.flags & FL_HARD_MASK)
				violation(r, c, "on with a hard contraindication");
			if (!p)
				violation(r, c, "on without a profile");
			if (gate_refused_soft(r->s.flags, d->cfg->policy, p->pregnancy_safe))
				violation(r, c, "on with a soft flag whose policy refuses");
			if (r->interlock_tripped)
				violation(r, c, "on with the interlock tripped");
			if (r->gpio_fault)
				violation(r, c, "on with a GPIO fault pending");
			if (!(chans & (1u << c)))
				violation(r, c, "on but not a channel of the profile");
			/* A phase that ended within the last millisecond: its timer may
			 * not have fired yet. */
			sched_at(p, r->s.stim.armed_at, now, &pt);
			if (!pt.on)
				sched_at(p, r->s.stim.armed_at, now - NS_PER_MS, &pt);
			if (!pt.on)
				violation(r, c, "on while the schedule says off");
			delivered = ch->delivered_ns + (now - ch->on_since);
			budget = room_stim_budget(r, d->cfg, p);
			if (delivered > budget + NS_PER_MS)
				violation(r, c, "on beyond the profile's duration_s");
			if (delivered > d->cfg->stim_max * NS_PER_SEC + NS_PER_MS)
				violation(r, c, "on beyond [limits] stim_max");
		}
	}
	if (counted != d->gates_on) {
		fprintf(stderr, "fuzz: %d channels on but gates_on = %d\n", counted, d->gates_on);
		abort();
	}
}

/* Interlock edges arrive through a pipe, as from a real line: let them in. */
static void run_events(void)
{
	event_base_loop(fh_daemon.base, EVLOOP_NONBLOCK);
}

int fh_last_ok;

void fh_request(const char *line, size_t len)
{
	json_t *reply;

	reply = cmd_dispatch(&fh_daemon, &fh_client, line, len);
	/* A history query: its reply comes from the worker thread. */
	while (!reply && deferred_waiting)
		history_query_collect(fh_daemon.history, 1);
	if (!reply) {
		reply = deferred_reply;
		deferred_reply = NULL;
	}
	check_reply(reply, line, len);
	fh_last_ok = json_is_true(json_object_get(reply, "ok"));
	json_decref(reply);
	run_events();
	check_invariants();
}

/* The next instant a room's timers would fire: its deadline (expiry, check-in,
 * escalation, end of silence), a phase edge of its stimulation schedule or the
 * end of the dose on a channel that is on. */
static int64_t room_next_event(const struct acu_room *r)
{
	struct acud *d = &fh_daemon;
	const struct acu_profile_cfg *p = r->s.profile[0] ? cfg_profile(d->cfg, r->s.profile) : NULL;
	int64_t t = room_next_deadline(r, d->cfg);

	if (r->s.stim.armed && r->s.state == ST_RUNNING && p) {
		struct sched_point pt = { 0, 0, 0, ACU_NEVER };
		int64_t budget = room_stim_budget(r, d->cfg, p);

		if (budget > d->cfg->stim_max * NS_PER_SEC)
			budget = d->cfg->stim_max * NS_PER_SEC;
		sched_at(p, r->s.stim.armed_at, vnow.mono, &pt);
		if (pt.phase_end < t)
			t = pt.phase_end;
		for (int c = 0; c < r->cfg->nchannels; c++) {
			const struct acu_channel *ch = &r->s.stim.ch[c];
			if (ch->on && ch->on_since + budget - ch->delivered_ns < t)
				t = ch->on_since + budget - ch->delivered_ns;
		}
	}
	return t;
}

/* What acud's deadline timer and a room's schedule timer do when they fire. */
static void fire(struct acu_room *r)
{
	struct acud *d = &fh_daemon;
	struct acu_now now = acu_now();
	struct acu_room before;
	const char *cause = "tick";
	char msg[256];

	memcpy(&before, r, sizeof before);
	room_tick(r, d->cfg, &now);
	if (r->s.state == ST_DUE && before.s.state == ST_RUNNING)
		cause = "expiry";
	/* -1: not saved (a failing disk, "#d 1"), and the change stands (S9). */
	(void)commit_change(d, r, &before, &now, NULL, cause, msg, sizeof msg);
}

/* Moves the clock on by `seconds`, stopping at every instant a timer would
 * fire on the way, as the event loop would. */
static void advance(int64_t seconds)
{
	struct acud *d = &fh_daemon;
	int64_t target = vnow.mono + seconds * NS_PER_SEC;

	for (int guard = 0; guard < 100000; guard++) {
		int64_t next = target, when[ACU_MAX_ROOMS];

		/* Taken before the clock moves: at the edge itself the schedule
		 * already names the next one. */
		for (int i = 0; i < d->nrooms && i < ACU_MAX_ROOMS; i++) {
			when[i] = room_next_event(&d->rooms[i]);
			if (when[i] < next)
				next = when[i];
		}
		if (next > vnow.mono) {
			vnow.wall += next - vnow.mono;
			vnow.mono = next;
		}
		for (int i = 0; i < d->nrooms && i < ACU_MAX_ROOMS; i++)
			if (when[i] <= vnow.mono)
				fire(&d->rooms[i]);
		run_events();
		check_invariants();
		if (vnow.mono >= target)
			return;
	}
}

static long arg_of(const char *line, size_t len, long lo, long hi)
{
	char buf[24];
	size_t n = len - 2 < sizeof buf - 1 ? len - 2 : sizeof buf - 1;
	long v;

	memcpy(buf, line + 2, n);
	buf[n] = '\0';
	v = strtol(buf, NULL, 10);
	return v < lo ? lo : v > hi ? hi : v;
}

void fh_line(const char *line, size_t len)
{
	if (len >= 2 && line[0] == '#') {
		switch (line[1]) {
		case 't':
			advance(arg_of(line, len, 0, 3600));
			return;
		case 'u':
			fh_client.role = (enum acu_role)arg_of(line, len, ROLE_NONE, ROLE_TECHNICIAN);
			snprintf(fh_client.user, sizeof fh_client.user, "user%d", (int)fh_client.role);
			return;
		case 'c':
			write_variant((int)arg_of(line, len, 0, 4));
			return;
		case 'r':
			fh_request("{\"cmd\":\"reload\"}", 16);
			return;
		case 'd':
			disk_fails((int)arg_of(line, len, 0, 1));
			return;
		default:
			break;
		}
	}
	fh_request(line, len);
}

/* Every input starts from the same populated clinic: room 1 running and armed
 * (2 Hz, both channels on), room 2 paused, room 3 due, room 4 idle. */
static void populate(void)
{
	static const char *const lines[] = {
		"{\"cmd\":\"start\",\"room\":\"1\",\"duration_s\":1200,\"needles\":8,"
		"\"patient\":\"A1043\",\"profile\":\"p2\",\"stim\":true}",
		"{\"cmd\":\"start\",\"room\":\"2\",\"duration_s\":900,\"needles\":4,"
		"\"profile\":\"inter\",\"flags\":[\"bleeding-disorder\"]}",
		"{\"cmd\":\"pause\",\"room\":\"2\"}",
		"{\"cmd\":\"start\",\"room\":\"3\",\"duration_s\":60,\"needles\":2,\"patient\":\"B7\"}",
		"{\"cmd\":\"stop\",\"room\":\"3\"}",
	};

	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		fh_request(lines[i], strlen(lines[i]));
}

/* The state file must read back into the rooms it was written from. */
void fh_check_persistence(void)
{
	struct acud *d = &fh_daemon, d2;
	struct acu_now now = acu_now();
	char err[256];

	/* What is written reads back when writing works: an input that left
	 * the disk failing ("#d 1") has its card mended first. */
	disk_fails(0);
	if (state_save(d, &now, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	memset(&d2, 0, sizeof d2);
	d2.cfg = d->cfg;
	d2.nrooms = d->nrooms;
	memcpy(d2.boot_id, d->boot_id, sizeof d2.boot_id);
	d2.rooms = calloc((size_t)d->nrooms + 1, sizeof *d2.rooms);
	if (!d2.rooms)
		abort();
	for (int i = 0; i < d->nrooms; i++)
		room_init(&d2.rooms[i], d->rooms[i].cfg);
	state_load(&d2, &now);
	for (int i = 0; i < d->nrooms; i++) {
		const struct acu_room *a = &d->rooms[i], *b = &d2.rooms[i];
		const struct acu_session *x = &a->s, *y = &b->s;
		const char *diff = NULL;

		if (b->attention[0] && !a->attention[0])
			diff = "state file not read back (kept aside as corrupt)";
		else if (x->state != y->state)
			diff = "state";
		else if (strcmp(x->patient, y->patient) || strcmp(x->practitioner, y->practitioner) ||
			 strcmp(x->profile, y->profile))
			diff = "patient, practitioner or profile";
		else if (x->needles != y->needles || x->flags != y->flags || x->checkins != y->checkins)
			diff = "needles, flags or checkins";
		else if (x->duration_s != y->duration_s || x->end != y->end ||
			 x->remaining != y->remaining || x->due_since != y->due_since ||
			 x->paused_since != y->paused_since || x->paused_ns != y->paused_ns ||
			 x->started_wall != y->started_wall)
			diff = "times";
		else if (y->stim.armed)
			diff = "stimulation re-armed by a restart";
		for (int k = 0; !diff && k < AL__N; k++)
			/* Not restored by design: a GPIO fault ends with the restart
			 * (S7), storage is found again by the first save (S9). */
			if (k != AL_GPIO_FAULT && k != AL_STORAGE &&
			    (a->alarm[k].active != b->alarm[k].active ||
			     (a->alarm[k].active && a->alarm[k].priority != b->alarm[k].priority)))
				diff = "alarms";
		if (diff) {
			char path[192], cmd[256];
			fprintf(stderr, "fuzz: room %s: state file does not read back: %s "
				"(state %s/%s, duration_s %lld/%lld)\n", a->cfg->id, diff,
				acu_state_name(x->state), acu_state_name(y->state),
				(long long)x->duration_s, (long long)y->duration_s);
			snprintf(path, sizeof path, "%s/state.json*", dir);
			snprintf(cmd, sizeof cmd, "cat %s >&2; echo >&2", path);
			if (system(cmd) != 0)
				fprintf(stderr, "fuzz: cannot show %s\n", path);
			abort();
		}
	}
	free(d2.rooms);
}

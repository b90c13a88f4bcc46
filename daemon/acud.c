/* acud: the retention-timer and stimulation daemon. This file is the process:
 * options, start-up order, signals, the deadline timer, commits and reload. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "gpio.h"

static struct acud daemon_ctx = { .history_fd = -1 };

struct acu_room *acud_room(struct acud *d, const char *id)
{
	for (int i = 0; i < d->nrooms; i++)
		if (strcmp(d->rooms[i].cfg->id, id) == 0)
			return &d->rooms[i];
	return NULL;
}

/* --- change propagation ----------------------------------------------------- */

static json_t *alarm_event(const struct acu_room *r, int k, const char *what)
{
	const struct acu_alarm *a = &r->alarm[k];
	char since[40];

	acu_rfc3339(a->since_wall, since, sizeof since);
	return json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "event", "alarm", "room", r->cfg->id,
			 "kind", acu_alarm_name(k), "priority", acu_priority_name(a->priority),
			 "active", a->active, "change", what, "since", since);
}

/* Every alarm raised, escalated or cleared goes to the history and the watchers. */
static void alarm_changes(struct acud *d, const struct acu_room *r, const struct acu_room *before)
{
	for (int k = 0; k < AL__N; k++) {
		const struct acu_alarm *a = &r->alarm[k], *b = &before->alarm[k];
		const char *what = NULL;
		json_t *ev, *rec;

		if (a->active && !b->active)
			what = "raised";
		else if (a->active && a->priority > b->priority)
			what = "escalated";
		else if (!a->active && b->active)
			what = "cleared";
		if (!what)
			continue;
		/* A cleared alarm is described as it was while active. */
		ev = alarm_event(a->active ? r : before, k, what);
		if (!a->active)
			json_object_set_new(ev, "active", json_false());
		server_broadcast(d->server, ev);
		rec = json_deep_copy(ev);
		json_object_del(rec, "event");
		json_object_set_new(rec, "type", json_string("alarm"));
		if (a->active || b->active)
			log_msg(a->active && a->priority == PRIO_HIGH ? LOG_WARNING : LOG_NOTICE,
				"room %s: alarm %s %s (%s)", r->cfg->id, acu_alarm_name(k), what,
				acu_priority_name(a->active ? a->priority : b->priority));
		history_add(d, NULL, rec);
		json_decref(ev);
	}
}

/* What a committed change tells the world: history, alarms, the room event. */
static void commit_report(struct acud *d, struct acu_room *r, const struct acu_room *before,
			  const struct acu_now *now, json_t *record)
{
	json_t *ev;

	if (record)
		history_add(d, r->cfg->id, record);
	alarm_changes(d, r, before);
	ev = json_pack("{s:s,s:o}", "event", "room", "room", room_json(r, now));
	server_broadcast(d->server, ev);
	json_decref(ev);
}

int acud_commit(struct acud *d, struct acu_room *r, const struct acu_room *before,
		const struct acu_now *now, json_t *record, const char *cause, char *err,
		size_t errlen)
{
	int rc = 0;

	/* One history sync for everything this change writes. */
	d->history_batch++;
	stim_apply(d, r, now, cause);
	if (state_save(d, now, err, errlen) < 0) {
		/* Not saved, so not done: back to what the disk says, outputs too. */
		memcpy(r, before, sizeof *r);
		stim_apply(d, r, now, "rollback");
		json_decref(record);
		rc = -1;
	} else {
		commit_report(d, r, before, now, record);
		acud_reschedule(d);
	}
	d->history_batch--;
	history_flush(d);
	return rc;
}

/* Every room whose deadline passed has its gates driven first, then one save
 * covers them all: a second room's gate-off never waits for the first's fsync. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;
	struct acu_now now = acu_now();
	struct acu_room *before;
	unsigned char *changed;
	int any = 0;
	char msg[256];

	(void)fd;
	(void)what;
	before = malloc(sizeof *before * ((size_t)d->nrooms + 1));
	changed = calloc((size_t)d->nrooms + 1, 1);
	if (!before || !changed)
		fatal("out of memory");
	d->history_batch++;
	for (int i = 0; i < d->nrooms; i++) {
		struct acu_room *r = &d->rooms[i];

		memcpy(&before[i], r, sizeof *r);
		if (!room_tick(r, d->cfg, &now))
			continue;
		stim_apply(d, r, &now, r->s.state == ST_DUE && before[i].s.state == ST_RUNNING ?
				       "expiry" : "tick");
		changed[i] = 1;
		any = 1;
	}
	/* A due timer is real even if it cannot be saved: the change stands. */
	if (any && state_save(d, &now, msg, sizeof msg) < 0)
		log_err("%s", msg);
	for (int i = 0; i < d->nrooms; i++) {
		if (!changed[i])
			continue;
		commit_report(d, &d->rooms[i], &before[i], &now, NULL);
		if (d->rooms[i].s.state == ST_DUE && before[i].s.state == ST_RUNNING)
			log_notice("room %s: retention time over; needles still in",
				   d->rooms[i].cfg->id);
	}
	d->history_batch--;
	history_flush(d);
	free(before);
	free(changed);
	acud_reschedule(d);
}

/* One timer for the earliest deadline of any room: no wake-ups without work. */
void acud_reschedule(struct acud *d)
{
	int64_t next = ACU_NEVER, now, dt;
	struct timeval tv;

	for (int i = 0; i < d->nrooms; i++) {
		int64_t t = room_next_deadline(&d->rooms[i], d->cfg);
		if (t < next)
			next = t;
	}
	if (next == ACU_NEVER) {
		event_del(d->deadline);
		return;
	}
	now = acu_mono_now();
	dt = next > now ? next - now : 0;
	/* Rounded up to the microsecond so the timer never fires just before. */
	dt = (dt + 999) / 1000;
	tv.tv_sec = (time_t)(dt / 1000000);
	tv.tv_usec = (suseconds_t)(dt % 1000000);
	event_add(d->deadline, &tv);
}

/* --- configuration -------------------------------------------------------- */

static gid_t group_gid(const char *name)
{
	struct group *g = name[0] ? getgrnam(name) : NULL;

	return g ? g->gr_gid : (gid_t)-1;
}

static void apply_access(struct acud *d)
{
	d->desk_gid = group_gid(d->cfg->desk_group);
	d->practitioner_gid = group_gid(d->cfg->practitioner_group);
	d->technician_gid = group_gid(d->cfg->technician_group);
	if (d->desk_gid == (gid_t)-1)
		log_info("access: no group %s; no desk role", d->cfg->desk_group);
	if (d->practitioner_gid == (gid_t)-1)
		log_info("access: no group %s; no practitioner role", d->cfg->practitioner_group);
	if (d->technician_gid == (gid_t)-1)
		log_info("access: no group %s; no technician role", d->cfg->technician_group);
	log_set_level(d->cfg->log_level);
}

/* Rooms with a session keep it and may not be removed or rewired; everything
 * else takes the new config. */
int acud_reload(struct acud *d, char *err, size_t errlen)
{
	struct acu_cfg *cfg, *old_cfg;
	struct acu_room *rooms, *old_rooms;
	struct acu_now now = acu_now();
	int old_nrooms;
	char msg[256];

	notify("RELOADING=1");
	cfg = cfg_load(d->config_path, err, errlen);
	if (!cfg)
		goto fail;
	for (int i = 0; i < d->nrooms; i++) {
		const struct acu_room *r = &d->rooms[i];
		const struct acu_room_cfg *nr = cfg_room(cfg, r->cfg->id);

		if (r->s.state == ST_IDLE)
			continue;
		if (!nr || !cfg_room_same_wiring(r->cfg, nr)) {
			snprintf(err, errlen, "room %s has a %s session: it cannot be %s until finish",
				 r->cfg->id, acu_state_name(r->s.state), nr ? "rewired" : "removed");
			goto fail;
		}
	}
	if (stim_reload_check(d, cfg, err, errlen) < 0)
		goto fail;
	if (strcmp(cfg->socket, d->cfg->socket) || strcmp(cfg->state_dir, d->cfg->state_dir))
		log_warnx("reload: socket and state_dir changes take effect at restart");
	snprintf(cfg->socket, sizeof cfg->socket, "%s", d->cfg->socket);
	snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", d->cfg->state_dir);
	rooms = calloc((size_t)cfg->nrooms + 1, sizeof *rooms);
	if (!rooms) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < cfg->nrooms; i++) {
		struct acu_room *old = acud_room(d, cfg->rooms[i].id);

		if (old)
			memcpy(&rooms[i], old, sizeof rooms[i]);
		else
			room_init(&rooms[i], &cfg->rooms[i]);
		rooms[i].cfg = &cfg->rooms[i];
		rooms[i].rt = NULL;
		rooms[i].gpio_fault = 0; /* S7: a reload clears a GPIO fault */
		room_alarm_clear(&rooms[i], AL_GPIO_FAULT);
	}
	old_cfg = d->cfg;
	old_rooms = d->rooms;
	old_nrooms = d->nrooms;
	d->cfg = cfg;
	d->rooms = rooms;
	d->nrooms = cfg->nrooms;
	if (stim_reload(d, old_cfg, old_rooms, old_nrooms, msg, sizeof msg) < 0) {
		/* The new lines could not be had: back to the running config and its
		 * lines, and the reload is refused (SPEC §5). */
		char again[512];
		struct acu_cfg *new_cfg = d->cfg;
		struct acu_room *new_rooms = d->rooms;

		d->cfg = old_cfg;
		d->rooms = old_rooms;
		d->nrooms = old_nrooms;
		if (stim_open(d, again, sizeof again) == 0) {
			for (int i = 0; i < d->nrooms; i++)
				stim_apply(d, &d->rooms[i], &now, "reload");
			free(new_rooms);
			snprintf(err, errlen, "%s", msg);
			goto fail;
		}
		log_err("reload: %s; the running lines cannot be had again: %s", msg, again);
		d->cfg = new_cfg;
		d->rooms = new_rooms;
		d->nrooms = new_cfg->nrooms;
		for (int i = 0; i < d->nrooms; i++) {
			d->rooms[i].gpio_fault = 1;
			room_stim_off(&d->rooms[i], "gpio-fault");
			room_alarm_raise(&d->rooms[i], AL_GPIO_FAULT, PRIO_HIGH, &now);
		}
	}
	for (int i = 0; i < d->nrooms; i++)
		for (int j = 0; j < old_nrooms; j++)
			if (strcmp(old_rooms[j].cfg->id, d->rooms[i].cfg->id) == 0)
				alarm_changes(d, &d->rooms[i], &old_rooms[j]);
	free(old_rooms);
	cfg_free(old_cfg);
	apply_access(d);
	if (state_save(d, &now, msg, sizeof msg) < 0)
		log_err("%s", msg);
	acud_reschedule(d);
	log_notice("reload: %s applied: %d rooms, %d profiles", d->config_path, cfg->nrooms,
		   cfg->nprofiles);
	notify("READY=1");
	return 0;
fail:
	if (cfg)
		cfg_free(cfg);
	log_err("reload: %s; keeping the running configuration", err);
	notify("READY=1");
	return -1;
}

/* --- process ---------------------------------------------------------------- */

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct acud *d = arg;
	char err[512];

	(void)what;
	if (sig == SIGHUP) {
		log_notice("SIGHUP: reloading %s", d->config_path);
		acud_reload(d, err, sizeof err);
		return;
	}
	log_notice("%s: shutting down", strsignal((int)sig));
	d->quitting = 1;
	event_base_loopbreak(d->base);
}

/* The writer thread made a generation durable: release what waited for it. */
static void persist_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;
	char why[256] = "";
	int failed = 0;
	uint64_t done;

	(void)fd;
	(void)what;
	done = persist_done(d->persist, &failed, why, sizeof why);
	if (failed)
		log_err("%s", why);
	server_flush(d->server, done, failed, why);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify("WATCHDOG=1");
}

static int mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return errno = ENAMETOOLONG, -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void read_boot_id(struct acud *d)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (f) {
		if (fgets(d->boot_id, sizeof d->boot_id, f))
			d->boot_id[strcspn(d->boot_id, "\n")] = '\0';
		fclose(f);
	}
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	/* Room for a clinic's worth of watchers; the hard limit stays the admin's. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* S1: `acud --all-off`, run by the unit's ExecStopPost= after any exit. */
static int all_off(struct acu_cfg *cfg)
{
	char err[512];
	struct gpio *g = gpio_open(cfg, err, sizeof err);
	int failed;

	if (!g) {
		log_err("all-off: %s", err);
		cfg_free(cfg);
		return 1;
	}
	failed = gpio_all_off(g);
	gpio_close(g);
	if (failed)
		log_err("all-off: %d outputs could not be driven inactive", failed);
	else
		log_notice("all-off: every configured output is inactive");
	cfg_free(cfg);
	return failed ? 1 : 0;
}

static void fatal_all_off(void)
{
	stim_emergency_off(&daemon_ctx);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: acud [-c CONFIG] [-f] [--check-config] [--all-off] [-v]\n"
		   "  -c, --config FILE   configuration (default " ACU_DEFAULT_CONFIG ")\n"
		   "  -f, --foreground    run in the foreground (acud never forks; for scripts)\n"
		   "  --check-config      validate the configuration and exit 0 or 1\n"
		   "  --all-off           drive every configured output inactive and exit\n"
		   "  -v, --verbose       log debug messages\n"
		   "  -V, --version       print the version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "all-off", no_argument, NULL, 'A' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct acud *d = &daemon_ctx;
	const char *config = ACU_DEFAULT_CONFIG;
	int check = 0, verbose = 0, opt;
	struct event_config *ec;
	struct event *sigs[4];
	const int signums[4] = { SIGTERM, SIGINT, SIGHUP, 0 };
	char err[1024], dir[PATH_MAX];
	struct acu_now now;
	uint64_t wd_usec;

	while ((opt = getopt_long(argc, argv, "c:fvVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'f': break;
		case 'C': check = 1; break;
		case 'A': check = 2; break;
		case 'v': verbose = 1; break;
		case 'V': printf("acud %s\n", ACUD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init(verbose ? LOG_DEBUG : LOG_INFO);
	d->config_path = config;
	d->cfg = cfg_load(config, err, sizeof err);
	if (!d->cfg) {
		fprintf(stderr, "%s\n", err);
		if (check == 1)
			return 1;
		log_err("configuration rejected; not starting");
		return 1;
	}
	if (check == 1) {
		printf("%s: configuration OK (%d rooms, %d profiles)\n", config, d->cfg->nrooms,
		       d->cfg->nprofiles);
		cfg_free(d->cfg);
		return 0;
	}
	if (check == 2)
		return all_off(d->cfg);
	if (!verbose)
		log_set_level(d->cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	d->self_uid = geteuid();
	read_boot_id(d);
	if (mkdirs(d->cfg->state_dir, 0750) < 0)
		fatal("state_dir %s: %s", d->cfg->state_dir, strerror(errno));
	snprintf(dir, sizeof dir, "%s", d->cfg->socket);
	if (mkdirs(dirname(dir), 0755) < 0)
		fatal("socket directory for %s: %s", d->cfg->socket, strerror(errno));

	ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	/* Deadlines are computed from fresh clock readings, never a cached one. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_NO_CACHE_TIME);
	/* Client callbacks run for at most 200 us before the loop looks for due
	 * timers again, so busy sockets hold up a pulse or a cut-off that long
	 * at most, without a full poll after every callback. */
	{
		const struct timeval slice = { 0, 200 };

		event_config_set_max_dispatch_interval(ec, &slice, -1, ACU_PRIO_CLIENT);
	}
	d->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!d->base || event_base_priority_init(d->base, ACU_NPRIO) < 0)
		fatal("cannot create the event loop");
	d->deadline = evtimer_new(d->base, deadline_cb, d);
	event_priority_set(d->deadline, ACU_PRIO_TIME);

	d->nrooms = d->cfg->nrooms;
	d->rooms = calloc((size_t)d->nrooms + 1, sizeof *d->rooms);
	if (!d->rooms)
		fatal("out of memory");
	for (int i = 0; i < d->nrooms; i++)
		room_init(&d->rooms[i], &d->cfg->rooms[i]);
	apply_access(d);
	now = acu_now();
	state_load(d, &now);
	history_open(d);
	/* S1: every output requested at its inactive level before anyone can connect. */
	if (stim_open(d, err, sizeof err) < 0)
		fatal("%s", err);
	log_set_fatal_hook(fatal_all_off);
	/* Sessions that ended while acud was down are due now, with their overdue time. */
	deadline_cb(-1, 0, d);
	if (state_save(d, &now, err, sizeof err) < 0)
		fatal("%s", err);
	/* From here on the disk is written by the writer thread. */
	state_path(d, dir, sizeof dir);
	d->persist = persist_start(dir, d->history_fd, err, sizeof err);
	if (!d->persist)
		fatal("%s", err);
	d->persist_ev = event_new(d->base, persist_fd(d->persist), EV_READ | EV_PERSIST,
				  persist_cb, d);
	event_add(d->persist_ev, NULL);

	d->server = server_open(d, err, sizeof err);
	if (!d->server)
		fatal("%s", err);
	for (int i = 0; signums[i]; i++) {
		sigs[i] = evsignal_new(d->base, signums[i], signal_cb, d);
		event_add(sigs[i], NULL);
	}
	wd_usec = notify_watchdog_usec();
	if (wd_usec) {
		struct timeval tv = { (time_t)(wd_usec / 2 / 1000000),
				      (suseconds_t)(wd_usec / 2 % 1000000) };
		d->watchdog = event_new(d->base, -1, EV_PERSIST, watchdog_cb, d);
		event_add(d->watchdog, &tv);
	}
	log_notice("acud %s ready: %d rooms, %d profiles, socket %s", ACUD_VERSION, d->nrooms,
		   d->cfg->nprofiles, d->cfg->socket);
	notify("READY=1");

	event_base_dispatch(d->base);

	notify("STOPPING=1");
	now = acu_now();
	/* S1/S6: outputs off first, then everything else. */
	for (int i = 0; i < d->nrooms; i++)
		room_stim_off(&d->rooms[i], "shutdown");
	for (int i = 0; i < d->nrooms; i++)
		stim_apply(d, &d->rooms[i], &now, "shutdown");
	stim_close(d);
	/* What is queued reaches the disk, waiting replies go out, and the last
	 * state is written in place. */
	persist_stop(d->persist);
	d->persist = NULL;
	event_free(d->persist_ev);
	server_flush(d->server, UINT64_MAX, 0, "");
	if (state_save(d, &now, err, sizeof err) < 0)
		log_err("%s", err);
	server_close(d->server);
	for (int i = 0; signums[i]; i++)
		event_free(sigs[i]);
	if (d->watchdog)
		event_free(d->watchdog);
	event_free(d->deadline);
	event_base_free(d->base);
	if (d->history_fd >= 0)
		close(d->history_fd);
	free(d->rooms);
	cfg_free(d->cfg);
	log_notice("stopped");
	return 0;
}

/* acud: the retention-timer and stimulation daemon. This file is the process:
 * options, start-up order, signals, the deadline timer, commits and reload. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "server.h"
#include "gpio.h"
#include "web.h"
#include "mqtt.h"

static struct acud daemon_ctx;

/* --- process ---------------------------------------------------------------- */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	commit_deadlines(arg);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct acud *d = arg;
	char err[512];

	(void)what;
	if (sig == SIGHUP) {
		log_notice("SIGHUP: reloading %s", d->config_path);
		reload_config(d, err, sizeof err);
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
	struct persist_report rep;

	(void)fd;
	(void)what;
	persist_done(d->persist, &rep);
	/* The alarm and any cut first, then the replies that waited. */
	storage_report(d, &rep);
	history_durable(d->history, rep.done);
	server_flush(d->server, rep.done, rep.failed, rep.why);
	/* Armed only while records wait: an idle board has no timer to wake it. */
	if (history_pending(d->history) && !evtimer_pending(d->history_retry, NULL)) {
		const struct timeval later = { 5, 0 };

		evtimer_add(d->history_retry, &later);
	}
}

/* A history query finished on the worker: its reply goes out. */
static void history_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;

	(void)fd;
	(void)what;
	history_query_collect(d->history, 0);
}

/* Records wait in memory (a full disk): the writer thread tries them again
 * a while later even when nothing else is written; its report re-arms this
 * while any still wait. */
static void history_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acud *d = arg;

	(void)fd;
	(void)what;
	if (d->persist && history_pending(d->history))
		persist_history(d->persist, NULL, 0);
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

/* --check-config: state_dir must be a directory acud can write, or one it can
 * create: its nearest existing parent a writable directory. Checked for the
 * user running the check (the unit's ExecStartPre= runs it as acud's user). */
static int check_state_dir(const char *path, char *err, size_t errlen)
{
	char at[PATH_MAX], who[64];
	struct passwd *pw;
	struct stat st;
	size_t n;
	int e;

	if (snprintf(at, sizeof at, "%s", path) >= (int)sizeof at) {
		snprintf(err, errlen, "state_dir %.300s: path too long", path);
		return -1;
	}
	for (n = strlen(at); n > 1 && at[n - 1] == '/'; n--)
		at[n - 1] = '\0';
	/* Up to the nearest component that exists; a regular file on the way
	 * (ENOTDIR) is found as that component. */
	while (stat(at, &st) < 0) {
		char *slash;

		if (errno != ENOENT && errno != ENOTDIR) {
			snprintf(err, errlen, "state_dir %.300s: %.300s: %s", path, at, strerror(errno));
			return -1;
		}
		slash = strrchr(at, '/');
		if (!slash)
			snprintf(at, sizeof at, ".");
		else if (slash == at)
			at[1] = '\0';
		else
			*slash = '\0';
	}
	if (!S_ISDIR(st.st_mode)) {
		if (strcmp(at, path) == 0)
			snprintf(err, errlen, "state_dir %.300s: exists and is not a directory", path);
		else
			snprintf(err, errlen, "state_dir %.300s: %.300s is not a directory", path, at);
		return -1;
	}
	if (faccessat(AT_FDCWD, at, W_OK | X_OK, AT_EACCESS) == 0)
		return 0;
	e = errno;
	pw = getpwuid(geteuid());
	snprintf(who, sizeof who, "%s%s(uid %u)", pw ? pw->pw_name : "", pw ? " " : "",
		 (unsigned)geteuid());
	if (strcmp(at, path) == 0)
		snprintf(err, errlen, "state_dir %.300s: not writable by %s: %s", path, who,
			 strerror(e));
	else
		snprintf(err, errlen, "state_dir %.300s: does not exist, and %.300s, where it would "
			 "be created, is not writable by %s: %s", path, at, who, strerror(e));
	return -1;
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

/* SPEC §8: one acud per state_dir. An exclusive flock(2) on STATE_DIR/acud.lock,
 * which the kernel releases however the process ends, so a crash never leaves
 * a stale lock; the holder writes its pid there for the refusal's message.
 * Returns the locked descriptor, or -1 with err set and *held = 1 when another
 * process holds the lock, *held = 0 when it could not be checked (errno kept).
 * create = 0 (--all-off): a missing lock file means no daemon ever ran there. */
static int lock_state_dir(const char *dir, int create, int *held, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], buf[24];
	int fd, e, len;

	*held = 0;
	if (snprintf(path, sizeof path, "%s/acud.lock", dir) >= (int)sizeof path) {
		snprintf(err, errlen, "state_dir %s: path too long", dir);
		return errno = ENAMETOOLONG, -1;
	}
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0640);
	/* --all-off as a user who may not write there can still take the lock. */
	if (fd < 0 && !create && (errno == EACCES || errno == EROFS))
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%.512s: %s", path, strerror(e));
		return errno = e, -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n;
		long pid = 0;

		e = errno;
		if (e != EWOULDBLOCK) {
			snprintf(err, errlen, "flock %.512s: %s", path, strerror(e));
			close(fd);
			return errno = e, -1;
		}
		*held = 1;
		/* Empty only in the moment between the holder's flock and its write. */
		n = pread(fd, buf, sizeof buf - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			pid = strtol(buf, NULL, 10);
		}
		if (pid > 0)
			snprintf(err, errlen, "another acud holds %s (pid %ld)", dir, pid);
		else
			snprintf(err, errlen, "another acud holds %s (pid unknown)", dir);
		close(fd);
		return -1;
	}
	/* The pid is only for messages: the lock holds without it (a full disk,
	 * or --all-off's read-only descriptor). */
	len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if ((ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) && create)
		log_warn("%s: cannot record the pid", path);
	return fd;
}

/* S1: `acud --all-off`, run by the unit's ExecStopPost= after any exit. It
 * takes the daemon's lock first: while a daemon runs, the outputs are that
 * daemon's (driving them off under it would fight its decisions). A lock that
 * cannot be checked does not stop it: outputs off is the safe side. */
static int all_off(struct acu_cfg *cfg)
{
	char err[512];
	struct gpio *g;
	int failed, held, lock;

	lock = lock_state_dir(cfg->state_dir, 0, &held, err, sizeof err);
	if (lock < 0 && held) {
		log_errx("all-off: %s; its outputs are left to it (stop it first)", err);
		cfg_free(cfg);
		return 1;
	}
	if (lock < 0 && errno != ENOENT && errno != ENOTDIR)
		log_warnx("all-off: cannot check for a running acud: %s; driving outputs off anyway",
			  err);
	g = gpio_open(cfg, err, sizeof err);
	if (!g) {
		log_errx("all-off: %s", err);
		if (lock >= 0)
			close(lock);
		cfg_free(cfg);
		return 1;
	}
	failed = gpio_all_off(g);
	gpio_close(g);
	if (failed)
		log_errx("all-off: %d outputs could not be driven inactive", failed);
	else
		log_notice("all-off: every configured output is inactive");
	if (lock >= 0)
		close(lock);
	cfg_free(cfg);
	return failed ? 1 : 0;
}

static void fatal_all_off(void)
{
	stim_emergency_off(&daemon_ctx);
}

/* S1: a signal whose default would end the process either shuts down like
 * SIGTERM (signums in main), is ignored (it means nothing to acud), or, for
 * the faults, drives every output inactive before the default action. */
static struct sigaction fault_old[NSIG];

static void fault_signal(int sig)
{
	stim_emergency_off(&daemon_ctx);
	/* The previous action (the default, or a sanitizer's report) ends it. */
	sigaction(sig, &fault_old[sig], NULL);
	raise(sig);
}

static void safe_signals(void)
{
	static const int ignored[] = { SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
				       SIGIO, SIGXFSZ, SIGSTKFLT };
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP };
	struct sigaction sa;

	for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
		signal(ignored[i], SIG_IGN);
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
		signal(s, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fault_signal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
		sigaction(faults[i], &sa, &fault_old[faults[i]]);
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
	int check = 0, verbose = 0, opt, lock_fd, held;
	struct event_config *ec;
	struct event *sigs[7];
	const int signums[7] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGXCPU, SIGPWR, 0 };
	char err[1024], dir[PATH_MAX];
	struct acu_now now;
	uint64_t wd_usec;
	struct web *web;

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
		log_errx("configuration rejected; not starting");
		return 1;
	}
	if (check == 1) {
		/* A line named by offset and by name is used twice (every backend). */
		int rc = gpio_check_names(d->cfg, err, sizeof err);

		if (rc > 0) {
			fprintf(stderr, "%s: note: line names not checked against the chip: %s\n",
				config, err);
			rc = 0;
		}
		if (rc == 0)
			rc = check_state_dir(d->cfg->state_dir, err, sizeof err);
		if (rc < 0)
			fprintf(stderr, "%s: %s\n", config, err);
		else
			printf("%s: configuration OK (%d rooms, %d profiles)\n", config,
			       d->cfg->nrooms, d->cfg->nprofiles);
		cfg_free(d->cfg);
		return rc < 0 ? 1 : 0;
	}
	if (check == 2)
		return all_off(d->cfg);
	if (!verbose)
		log_set_level(d->cfg->log_level);
	safe_signals();
	raise_fd_limit();
	d->self_uid = geteuid();
	read_boot_id(d);
	if (mkdirs(d->cfg->state_dir, 0750) < 0)
		fatal("state_dir %s", d->cfg->state_dir);
	/* Before anything is read, moved or driven: a second acud stops here. */
	lock_fd = lock_state_dir(d->cfg->state_dir, 1, &held, err, sizeof err);
	if (lock_fd < 0)
		fatalx("%s; not starting", err);
	snprintf(dir, sizeof dir, "%s", d->cfg->socket);
	if (mkdirs(dirname(dir), 0755) < 0)
		fatal("socket directory for %s", d->cfg->socket);
	/* A socket another acud answers on: refused before any output is touched,
	 * whatever its state_dir (server_open checks again when it binds). */
	if (server_check_socket(d->cfg->socket, err, sizeof err) < 0)
		fatalx("%s; not starting", err);

	ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	/* Deadlines are computed from fresh clock readings, never a cached one. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_NO_CACHE_TIME);
	/* Client callbacks run for at most 50 us before the loop looks for due
	 * timers again, so busy sockets hold up a pulse or a cut-off that long
	 * at most, without a full poll after every callback (figures: commit
	 * 7da5bdd and make bench's P3). */
	{
		const struct timeval slice = { 0, 50 };

		event_config_set_max_dispatch_interval(ec, &slice, -1, ACU_PRIO_CLIENT);
	}
	d->inputs_ep = -1; /* made with the room table (stim.c) */
	d->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!d->base || event_base_priority_init(d->base, ACU_NPRIO) < 0)
		fatalx("cannot create the event loop");
	d->deadline = evtimer_new(d->base, deadline_cb, d);
	event_priority_set(d->deadline, ACU_PRIO_TIME);
	storage_init(d);

	d->nrooms = d->cfg->nrooms;
	d->rooms = xcalloc((size_t)d->nrooms + 1, sizeof *d->rooms);
	for (int i = 0; i < d->nrooms; i++)
		room_init(&d->rooms[i], &d->cfg->rooms[i]);
	reload_access(d);
	now = acu_now();
	state_load(d, &now);
	state_journal_apply(d);
	d->history = history_open(d->cfg->state_dir, d->cfg->history_keep, err, sizeof err);
	if (!d->history)
		fatalx("%s", err);
	/* S1: every output requested at its inactive level before anyone can connect. */
	if (stim_open(d, err, sizeof err) < 0)
		fatalx("%s", err);
	log_set_fatal_hook(fatal_all_off);
	/* Every restored alarm drives its line at once (SPEC §8). */
	for (int i = 0; i < d->nrooms; i++)
		stim_apply(d, &d->rooms[i], &now, "restart");
	/* Sessions that ended while acud was down are due now, with their overdue
	 * time. A full disk does not stop the start: the storage alarm says it. */
	commit_deadlines(d);
	now = acu_now();
	err[0] = '\0';
	{
		int rc = state_save(d, &now, err, sizeof err);
		struct persist_report rep = { .failed = rc < 0, .low = rc == STATE_SAVED_LOW };

		snprintf(rep.why, sizeof rep.why, "%.250s", err);
		storage_report(d, &rep);
	}
	/* From here on the disk is written by the writer thread. */
	d->persist = persist_start(&d->state_file, d->history, err, sizeof err);
	if (!d->persist)
		fatalx("%s", err);
	/* Its first pass removes the day files older than [history] keep. */
	persist_history(d->persist, NULL, 0);
	d->persist_ev = event_new(d->base, persist_fd(d->persist), EV_READ | EV_PERSIST,
				  persist_cb, d);
	event_add(d->persist_ev, NULL);
	d->history_ev = event_new(d->base, history_query_fd(d->history), EV_READ | EV_PERSIST,
				  history_cb, d);
	d->history_retry = evtimer_new(d->base, history_retry_cb, d);
	if (!d->history_ev || !d->history_retry)
		fatalx("cannot create the history events");
	event_priority_set(d->history_ev, ACU_PRIO_CLIENT);
	event_add(d->history_ev, NULL);

	/* Before the socket listens: a client may connect (and a supervisor send
	 * SIGTERM) as soon as it does, and the signal must find its handler. */
	for (int i = 0; signums[i]; i++) {
		sigs[i] = evsignal_new(d->base, signums[i], signal_cb, d);
		event_add(sigs[i], NULL);
	}
	d->server = server_open(d, err, sizeof err);
	if (!d->server)
		fatalx("%s", err);
	web = web_open(d, err, sizeof err);
	if (!web && err[0])
		fatalx("%s", err);
	wd_usec = notify_watchdog_usec();
	if (wd_usec) {
		struct timeval tv = { (time_t)(wd_usec / 2 / 1000000),
				      (suseconds_t)(wd_usec / 2 % 1000000) };
		d->watchdog = event_new(d->base, -1, EV_PERSIST, watchdog_cb, d);
		event_add(d->watchdog, &tv);
	}
	/* Last: what it publishes is the state the socket shows. */
	mqtt_open(d);
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
		log_errx("%s", err);
	mqtt_close(d);
	/* Queries still running are answered (an error) while their clients
	 * are known; records still waiting get a last try. */
	history_query_stop(d->history);
	history_flush(d);
	event_free(d->history_ev);
	event_free(d->history_retry);
	web_close(web);
	server_close(d->server);
	event_free(d->storage_retry);
	for (int i = 0; signums[i]; i++)
		event_free(sigs[i]);
	if (d->watchdog)
		event_free(d->watchdog);
	event_free(d->deadline);
	event_base_free(d->base);
	history_close(d->history);
	roomjson_clear(d);
	free(d->rooms);
	cfg_free(d->cfg);
	log_notice("stopped");
	close(lock_fd); /* last: until here the state_dir is this process's */
	return 0;
}

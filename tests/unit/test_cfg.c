/* Unit tests of config loading (daemon/cfg.c) against SPEC §3 and §5: every key,
 * the defaults, relative paths, profiles_dir, and a table of bad configs whose
 * errors must name FILE:LINE. Files live in a mkdtemp directory. */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "acud.h"
#include "cfg.h"
#include "unit.h"

static char tmp[PATH_MAX];      /* the mkdtemp directory */
static char conf[PATH_MAX];     /* tmp/acud.conf */
static char err[PATH_MAX + 1024];

static void fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

/* snprintf that gives up on truncation: a cut path would test the wrong thing. */
static void fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "test_cfg: buffer too small\n");
		exit(2);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static void path_in(char *buf, const char *name)
{
	fmt(buf, PATH_MAX, "%s/%s", tmp, name);
}

/* Empties tmp/profiles.d so that tests do not see each other's files. */
static void reset_profiles_dir(void)
{
	static const char *const names[] = { "a.conf", "b.conf", "notes.txt", ".hidden.conf",
					     "z.conf" };
	char p[PATH_MAX], d[PATH_MAX];

	path_in(d, "profiles.d");
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		fmt(p, sizeof p, "%s/%s", d, names[i]);
		unlink(p);
	}
	fmt(p, sizeof p, "%s/dir.conf", d);
	rmdir(p);
	mkdir(d, 0700);
}

static struct acu_cfg *load(const char *text)
{
	err[0] = '\0';
	write_file(conf, text);
	return cfg_load(conf, err, sizeof err);
}

/* A config that must load: a check at the caller's line, with cfg_load's
 * error when it did not. */
#define loaded(c) loaded_at((c), __LINE__)
static int loaded_at(const struct acu_cfg *c, int line)
{
	unit_checks++;
	if (c)
		return 1;
	unit_failures++;
	fprintf(stderr, "%s:%d: check failed: the config did not load: %s\n", __FILE__, line, err);
	return 0;
}

/* The error must start with "CONF:LINE: " and contain the fragment. */
static int check_error(const char *file, const char *text, int line, const char *fragment)
{
	struct acu_cfg *c;
	char want[PATH_MAX + 32];
	int ok = 1;

	c = load(text);
	if (c) {
		fprintf(stderr, "accepted a bad config (want line %d, '%s'):\n%s\n", line, fragment,
			text);
		cfg_free(c);
		return 0;
	}
	fmt(want, sizeof want, "%s:%d: ", file, line);
	if (strncmp(err, want, strlen(want)) != 0) {
		fprintf(stderr, "want prefix '%s', got '%s'\n", want, err);
		ok = 0;
	}
	if (!strstr(err, fragment)) {
		fprintf(stderr, "want '%s' in '%s'\n", fragment, err);
		ok = 0;
	}
	return ok;
}

static const char full_conf[] =
	"; every key, most of them away from their defaults\n"
	"[daemon]\n"
	"socket = run/acud.sock\n"
	"state_dir = /var/tmp/acud-test-state\n"
	"profiles_dir = ./profiles.d\n"
	"log_level = debug\n"
	"\n"
	"[gpio]\n"
	"backend = sim\n"
	"chip = gpiochip1\n"
	"active_low = yes\n"
	"heartbeat = !26\n"
	"heartbeat_hz = 20\n"
	"sim_state = sim/state.txt\n"
	"sim_trace = trace.log\n"
	"\n"
	"[limits]\n"
	"session_min = 90s\n"
	"session_max = 1h30m\n"
	"stim_max = 45m\n"
	"\n"
	"[safety]\n"
	"require_needle_count = off\n"
	"pregnancy = warn\n"
	"epilepsy = warn\n"
	"heart-disease = warn\n"
	"bleeding-disorder = refuse\n"
	"metal-implant = refuse\n"
	"\n"
	"[alarm]\n"
	"escalate_after = 2m\n"
	"checkin_interval = 0\n"
	"\n"
	"[access]\n"
	"desk_group = desk\n"
	"practitioner_group = prac\n"
	"technician_group = tech\n"
	"socket_group = staff\n"
	"\n"
	"# a hash comment at the start of a line\n"
	"[room 1] ; the window room\n"
	"name = Lotus ; trailing comment\n"
	"gate = 17, !27\n"
	"pulse = 22,23\n"
	"alarm = LAMP_1\n"
	"audible = true\n"
	"interlock = !6\n"
	"\n"
	"[room B.2]\n"
	"gate = GPIO20\n"
	"pulse = none\n"
	"\n"
	"[profile dd]\n"
	"description = Dense: 4/80 Hz\n"
	"mode = dense-disperse\n"
	"frequency_hz = 4\n"
	"alt_frequency_hz = 80\n"
	"switch_s = 10s\n"
	"on_s = 7\n"
	"off_s = 8\n"
	"pulse_width_us = 300\n"
	"delay_s = 1m\n"
	"duration_s = 20m\n"
	"channels = 2, 1\n"
	"pregnancy_safe = yes\n";

static void test_full(void)
{
	struct acu_cfg *c;
	const struct acu_room_cfg *r;
	const struct acu_profile_cfg *p;
	char want[PATH_MAX];

	reset_profiles_dir();
	c = load(full_conf);
	if (!loaded(c))
		return;
	CHECK_STR(c->path, conf);
	path_in(want, "run/acud.sock");
	CHECK_STR(c->socket, want);
	CHECK_STR(c->state_dir, "/var/tmp/acud-test-state");
	path_in(want, "profiles.d");
	CHECK_STR(c->profiles_dir, want);
	CHECK_EQ(c->log_level, LOG_DEBUG);
	CHECK_EQ(c->backend, BACKEND_SIM);
	CHECK_STR(c->chip, "gpiochip1");
	CHECK_EQ(c->active_low, 1);
	CHECK_EQ(c->heartbeat.set, 1);
	CHECK_EQ(c->heartbeat.offset, 26);
	CHECK_EQ(c->heartbeat.active_low, 0); /* '!' inverts active_low = yes */
	CHECK_EQ(c->heartbeat_hz, 20);
	path_in(want, "sim/state.txt");
	CHECK_STR(c->sim_state, want);
	path_in(want, "trace.log");
	CHECK_STR(c->sim_trace, want);
	CHECK_EQ(c->session_min, 90);
	CHECK_EQ(c->session_max, 5400);
	CHECK_EQ(c->stim_max, 2700);
	CHECK_EQ(c->require_needle_count, 0);
	CHECK_EQ(c->policy[FL_PREGNANCY], POLICY_WARN);
	CHECK_EQ(c->policy[FL_EPILEPSY], POLICY_WARN);
	CHECK_EQ(c->policy[FL_HEART_DISEASE], POLICY_WARN);
	CHECK_EQ(c->policy[FL_BLEEDING_DISORDER], POLICY_REFUSE);
	CHECK_EQ(c->policy[FL_METAL_IMPLANT], POLICY_REFUSE);
	CHECK_EQ(c->escalate_after, 120);
	CHECK_EQ(c->checkin_interval, 0);
	CHECK_STR(c->desk_group, "desk");
	CHECK_STR(c->practitioner_group, "prac");
	CHECK_STR(c->technician_group, "tech");
	CHECK_STR(c->socket_group, "staff");

	CHECK_EQ(c->nrooms, 2);
	r = cfg_room(c, "1");
	CHECK(r == &c->rooms[0]);
	if (r) {
		CHECK_STR(r->name, "Lotus");
		CHECK_EQ(r->nchannels, 2);
		CHECK_EQ(r->gate[0].set, 1);
		CHECK_EQ(r->gate[0].offset, 17);
		CHECK_EQ(r->gate[0].active_low, 1);
		CHECK_EQ(r->gate[1].offset, 27);
		CHECK_EQ(r->gate[1].active_low, 0);
		CHECK_EQ(r->npulse, 2);
		CHECK_EQ(r->pulse[0].offset, 22);
		CHECK_EQ(r->pulse[1].offset, 23);
		CHECK_EQ(r->pulse[1].active_low, 1);
		CHECK_EQ(r->alarm.set, 1);
		CHECK_EQ(r->alarm.offset, -1);
		CHECK_STR(r->alarm.name, "LAMP_1");
		CHECK_EQ(r->alarm.active_low, 1);
		CHECK_EQ(r->audible, 1);
		CHECK_EQ(r->interlock.offset, 6);
		CHECK_EQ(r->interlock.active_low, 0);
		CHECK_STR(r->file, conf);
		CHECK_EQ(r->line, 41);
	}
	r = cfg_room(c, "B.2");
	CHECK(r != NULL);
	if (r) {
		CHECK_STR(r->name, "Room B.2");
		CHECK_EQ(r->nchannels, 1);
		CHECK_EQ(r->gate[0].offset, -1);
		CHECK_STR(r->gate[0].name, "GPIO20");
		CHECK_EQ(r->npulse, 0);
		CHECK_EQ(r->alarm.set, 0);
		CHECK_EQ(r->interlock.set, 0);
		CHECK_EQ(r->audible, 0);
		CHECK_EQ(r->line, 49);
	}
	CHECK(cfg_room(c, "3") == NULL);

	CHECK_EQ(c->nprofiles, 1);
	p = cfg_profile(c, "dd");
	CHECK(p != NULL);
	if (p) {
		CHECK_STR(p->description, "Dense: 4/80 Hz");
		CHECK_EQ(p->mode, MODE_DENSE_DISPERSE);
		CHECK_STR(cfg_mode_name(p->mode), "dense-disperse");
		CHECK_EQ(p->frequency_hz, 4);
		CHECK_EQ(p->alt_frequency_hz, 80);
		CHECK_EQ(p->switch_s, 10);
		CHECK_EQ(p->on_s, 7);
		CHECK_EQ(p->off_s, 8);
		CHECK_EQ(p->pulse_width_us, 300);
		CHECK_EQ(p->delay_s, 60);
		CHECK_EQ(p->duration_s, 1200);
		CHECK_EQ(p->channels, 3u);
		CHECK_EQ(p->pregnancy_safe, 1);
		CHECK_STR(p->file, conf);
		CHECK_EQ(p->line, 53);
	}
	CHECK(cfg_profile(c, "nope") == NULL);
	cfg_free(c);
}

/* [web] (SPEC §10): off unless listen is set; the keys as given. */
static void test_web(void)
{
	struct acu_cfg *c = load("[room 1]\ngate = 17\n");

	CHECK(c != NULL);
	if (c) {
		CHECK_STR(c->web.listen, "");
		CHECK_STR(c->web.title, "acud");
		CHECK_EQ(c->web.show_patient, 1);
		CHECK_EQ(c->web.max_clients, 64);
		CHECK_EQ(c->web.nhosts, 0);
		cfg_free(c);
	}
	c = load("[web]\nlisten = [::1]:8081\ntitle = Riverside Acupuncture\nshow_patient = no\n"
		 "max_clients = 512\nhosts = board.clinic.lan, reception\n[room 1]\ngate = 17\n");
	if (!loaded(c))
		return;
	CHECK_STR(c->web.listen, "[::1]:8081");
	CHECK_STR(c->web.host, "::1");
	CHECK_EQ(c->web.port, 8081);
	CHECK_STR(c->web.title, "Riverside Acupuncture");
	CHECK_EQ(c->web.show_patient, 0);
	CHECK_EQ(c->web.max_clients, 512);
	CHECK_EQ(c->web.nhosts, 2);
	CHECK_STR(c->web.hosts[0], "board.clinic.lan");
	CHECK_STR(c->web.hosts[1], "reception");
	cfg_free(c);
}

static void test_defaults(void)
{
	struct acu_cfg *c;
	const struct acu_profile_cfg *p;

	c = load("[room 1]\ngate = 17\n[profile plain]\n");
	if (!loaded(c))
		return;
	CHECK_STR(c->socket, ACU_DEFAULT_SOCKET);
	CHECK_STR(c->state_dir, ACU_DEFAULT_STATE_DIR);
	CHECK_STR(c->profiles_dir, ACU_DEFAULT_PROFILES_DIR); /* absent: no error */
	CHECK_EQ(c->log_level, LOG_INFO);
	CHECK_EQ(c->backend, BACKEND_GPIOD);
	CHECK_STR(c->chip, "gpiochip0");
	CHECK_EQ(c->active_low, 0);
	CHECK_EQ(c->heartbeat.set, 0);
	CHECK_EQ(c->heartbeat_hz, 10);
	CHECK_STR(c->sim_state, ACU_DEFAULT_STATE_DIR "/gpio-sim.state");
	CHECK_STR(c->sim_trace, "");
	CHECK_EQ(c->session_min, 300);
	CHECK_EQ(c->session_max, 3600);
	CHECK_EQ(c->stim_max, 1800);
	CHECK_EQ(c->require_needle_count, 1);
	CHECK_EQ(c->policy[FL_PREGNANCY], POLICY_REFUSE);
	CHECK_EQ(c->policy[FL_EPILEPSY], POLICY_REFUSE);
	CHECK_EQ(c->policy[FL_HEART_DISEASE], POLICY_REFUSE);
	CHECK_EQ(c->policy[FL_BLEEDING_DISORDER], POLICY_WARN);
	CHECK_EQ(c->policy[FL_METAL_IMPLANT], POLICY_WARN);
	CHECK_EQ(c->policy[FL_PACEMAKER], POLICY_REFUSE);
	CHECK_EQ(c->escalate_after, 300);
	CHECK_EQ(c->checkin_interval, 600);
	CHECK_STR(c->desk_group, "acu-desk");
	CHECK_STR(c->practitioner_group, "acu-practitioner");
	CHECK_STR(c->technician_group, "acu-tech");
	CHECK_STR(c->socket_group, "");
	CHECK_EQ(c->nrooms, 1);
	CHECK_STR(c->rooms[0].name, "Room 1");
	CHECK_EQ(c->rooms[0].gate[0].active_low, 0);
	CHECK_EQ(c->rooms[0].audible, 0);
	p = cfg_profile(c, "plain");
	CHECK(p != NULL);
	if (p) {
		CHECK_STR(p->description, "");
		CHECK_EQ(p->mode, MODE_CONTINUOUS);
		CHECK_EQ(p->frequency_hz, 2);
		CHECK_EQ(p->alt_frequency_hz, 100);
		CHECK_EQ(p->switch_s, 3);
		CHECK_EQ(p->on_s, 5);
		CHECK_EQ(p->off_s, 5);
		CHECK_EQ(p->pulse_width_us, 200);
		CHECK_EQ(p->delay_s, 0);
		CHECK_EQ(p->duration_s, 0);
		CHECK_EQ(p->channels, 0u);
		CHECK_EQ(p->pregnancy_safe, 0);
	}
	cfg_free(c);
	CHECK_STR(cfg_mode_name(MODE_CONTINUOUS), "continuous");
	CHECK_STR(cfg_mode_name(MODE_INTERMITTENT), "intermittent");
}

/* Relative paths follow the config file, also when the file itself was named
 * by a relative path; sim_state follows state_dir. */
static void test_relative_paths(void)
{
	char sub[PATH_MAX], path[PATH_MAX], want[PATH_MAX], cwd[PATH_MAX];
	struct acu_cfg *c;

	path_in(sub, "sub");
	mkdir(sub, 0700);
	path_in(path, "sub/pd");
	mkdir(path, 0700);
	fmt(path, sizeof path, "%s/relative.conf", sub);
	write_file(path, "[daemon]\nsocket = ../run/x.sock\nstate_dir = ./st\n"
			 "profiles_dir = pd\n[gpio]\nbackend = sim\nsim_trace =\n[room 1]\ngate = 1\n");
	c = cfg_load(path, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		fmt(want, sizeof want, "%s/../run/x.sock", sub);
		CHECK_STR(c->socket, want);
		fmt(want, sizeof want, "%s/st", sub);
		CHECK_STR(c->state_dir, want);
		fmt(want, sizeof want, "%s/st/gpio-sim.state", sub);
		CHECK_STR(c->sim_state, want);
		CHECK_STR(c->sim_trace, "");
		cfg_free(c);
	} else {
		fprintf(stderr, "%s\n", err);
	}
	/* An explicitly configured profiles_dir that is missing is an error. */
	write_file(path, "[daemon]\nprofiles_dir = ./nowhere\n[room 1]\ngate = 1\n");
	c = cfg_load(path, err, sizeof err);
	CHECK(c == NULL);
	cfg_free(c);
	fmt(want, sizeof want, "%s:2: profiles_dir %s/nowhere: No such file", path, sub);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	/* A config named relative to the working directory resolves to absolute paths. */
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK_EQ(chdir(tmp), 0);
	write_file("sub/rel2.conf", "[daemon]\nstate_dir = st\n[room 1]\ngate = 1\n");
	c = cfg_load("sub/rel2.conf", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		char real[PATH_MAX];
		CHECK(realpath(tmp, real) != NULL);
		fmt(want, sizeof want, "%s/sub/st", real);
		CHECK_STR(c->state_dir, want);
		CHECK_STR(c->path, "sub/rel2.conf");
		cfg_free(c);
	}
	c = cfg_load("sub/nothere.conf", err, sizeof err);
	CHECK(c == NULL);
	CHECK(strncmp(err, "sub/nothere.conf: ", 18) == 0);
	CHECK_EQ(chdir(cwd), 0);
}

static const char base_rooms[] =
	"[daemon]\nsocket = run/acud.sock\nstate_dir = state\nprofiles_dir = profiles.d\n"
	"[gpio]\nbackend = sim\n[room 1]\ngate = 17\n";

static void test_profiles_dir(void)
{
	char a[PATH_MAX], b[PATH_MAX], d[PATH_MAX], want[PATH_MAX + 32];
	struct acu_cfg *c;
	char text[1024];

	reset_profiles_dir();
	path_in(a, "profiles.d/a.conf");
	path_in(b, "profiles.d/b.conf");
	write_file(b, "; b\n[profile b-two]\nmode = intermittent\non_s = 3\n");
	write_file(a, "[profile a-one]\nfrequency_hz = 10\n\n[profile a-two]\nchannels = 2\n");
	path_in(d, "profiles.d/notes.txt");
	write_file(d, "not a config\n");
	path_in(d, "profiles.d/.hidden.conf");
	write_file(d, "junk\n");
	path_in(d, "profiles.d/dir.conf");
	mkdir(d, 0700);
	fmt(text, sizeof text, "%s[profile main]\n", base_rooms);
	c = load(text);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ(c->nprofiles, 4);
		if (c->nprofiles == 4) {
			CHECK_STR(c->profiles[0].name, "main");
			CHECK_STR(c->profiles[1].name, "a-one");
			CHECK_STR(c->profiles[2].name, "a-two");
			CHECK_STR(c->profiles[3].name, "b-two");
			CHECK_STR(c->profiles[1].file, a);
			CHECK_EQ(c->profiles[2].line, 4);
			CHECK_EQ(c->profiles[2].channels, 2u);
			CHECK_STR(c->profiles[3].file, b);
			CHECK_EQ(c->profiles[3].line, 2);
			CHECK_EQ(c->profiles[3].mode, MODE_INTERMITTENT);
			CHECK_EQ(c->profiles[3].on_s, 3);
		}
		cfg_free(c);
	} else {
		fprintf(stderr, "%s\n", err);
	}

	/* Errors in a profiles_dir file name that file and its line. */
	write_file(b, "; a profile with a bad frequency\n[profile bad]\nmode = continuous\n"
		      "frequency_hz = 5000\n");
	c = load(text);
	CHECK(c == NULL);
	fmt(want, sizeof want, "%s:4: frequency_hz: 5000 is out of range (1 to 200)", b);
	CHECK_STR(err, want);
	cfg_free(c);

	write_file(b, "[profile b]\n\n[room 9]\ngate = 30\n");
	c = load(text);
	CHECK(c == NULL);
	fmt(want, sizeof want, "%s:3: ", b);
	CHECK(strncmp(err, want, strlen(want)) == 0 && strstr(err, "only [profile NAME]"));

	write_file(b, "[profile main]\n");
	c = load(text);
	CHECK(c == NULL);
	fmt(want, sizeof want, "%s:1: duplicate profile main (first at %s:%d)", b, conf, 9);
	CHECK_STR(err, want);

	write_file(b, "[profile a-two]\n");
	c = load(text);
	CHECK(c == NULL);
	fmt(want, sizeof want, "%s:1: duplicate profile a-two (first at %s:4)", b, a);
	CHECK_STR(err, want);

	/* Limits from the main file bound profiles in the directory. */
	write_file(b, "[profile long]\nduration_s = 45m\n");
	c = load(text);
	CHECK(c == NULL);
	fmt(want, sizeof want, "%s:2: duration_s: 45m is above stim_max (30m)", b);
	CHECK_STR(err, want);
	reset_profiles_dir();
}

/* [gpio] active_low applies to lines of rooms read before it. */
static void test_polarity_and_wiring(void)
{
	struct acu_cfg *c, *c2;
	char text[1024];

	c = load("[room 1]\ngate = 1, !2\npulse = 3, 4\ninterlock = !5\n"
		 "[room 2]\ngate = 11\n[gpio]\nactive_low = on\nheartbeat = 9\n");
	if (!loaded(c))
		return;
	CHECK_EQ(c->rooms[0].gate[0].active_low, 1);
	CHECK_EQ(c->rooms[0].gate[1].active_low, 0);
	CHECK_EQ(c->rooms[0].pulse[0].active_low, 1);
	CHECK_EQ(c->rooms[0].interlock.active_low, 0);
	CHECK_EQ(c->heartbeat.active_low, 1);
	CHECK_EQ(c->rooms[0].alarm.set, 0);
	CHECK(cfg_room_same_wiring(&c->rooms[0], &c->rooms[0]));
	CHECK(!cfg_room_same_wiring(&c->rooms[0], &c->rooms[1]));

	/* Same lines, another name and audible: same wiring. Polarity differs: not. */
	fmt(text, sizeof text, "%s",
		 "[room 1]\nname = Renamed\naudible = yes\ngate = 1, !2\npulse = 3, 4\n"
		 "interlock = !5\n[room 2]\ngate = 11\n[gpio]\nactive_low = on\n");
	c2 = load(text);
	CHECK(c2 != NULL);
	if (c2) {
		CHECK(cfg_room_same_wiring(&c->rooms[0], &c2->rooms[0]));
		CHECK(cfg_room_same_wiring(&c->rooms[1], &c2->rooms[1]));
		cfg_free(c2);
	}
	c2 = load("[room 1]\ngate = 1, 2\npulse = 3, 4\ninterlock = !5\n[room 2]\ngate = 11\n"
		  "[gpio]\nactive_low = on\n");
	CHECK(c2 != NULL);
	if (c2) {
		CHECK(!cfg_room_same_wiring(&c->rooms[0], &c2->rooms[0]));
		cfg_free(c2);
	}
	c2 = load("[room 1]\ngate = 1, !2\npulse = 3, 4\n[room 2]\ngate = 11\n"
		  "[gpio]\nactive_low = on\n");
	CHECK(c2 != NULL);
	if (c2) {
		CHECK(!cfg_room_same_wiring(&c->rooms[0], &c2->rooms[0])); /* interlock gone */
		cfg_free(c2);
	}
	c2 = load("[room 1]\ngate = 1, !2\npulse = 3, 4\ninterlock = !5\n[room 2]\ngate = LINE11\n"
		  "[gpio]\nactive_low = on\n");
	CHECK(c2 != NULL);
	if (c2) {
		CHECK(!cfg_room_same_wiring(&c->rooms[1], &c2->rooms[1])); /* by name now */
		cfg_free(c2);
	}
	cfg_free(c);
}

/* A BOM, CRLF line ends, tabs around '=' and a line of exactly 199 characters. */
static void test_lexical(void)
{
	char text[2048], desc[256];
	struct acu_cfg *c;
	int n;

	c = load("\xEF\xBB\xBF[room 1]\r\nname\t=\tFront room\r\ngate = 4\r\n\r\n");
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(c->rooms[0].name, "Front room");
		CHECK_EQ(c->rooms[0].gate[0].offset, 4);
		cfg_free(c);
	} else {
		fprintf(stderr, "%s\n", err);
	}
	n = 199 - (int)strlen("description = ");
	memset(desc, 'x', (size_t)n);
	desc[n] = '\0';
	fmt(text, sizeof text, "[room 1]\ngate = 4\n[profile p]\ndescription = %s\n", desc);
	c = load(text);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ(strlen(c->profiles[0].description), (size_t)n);
		cfg_free(c);
	}
	fmt(text, sizeof text, "[room 1]\ngate = 4\n[profile p]\ndescription = %sx\n", desc);
	CHECK(check_error(conf, text, 4, "line longer than 199 characters"));
	/* Also with CRLF: the line end does not count. */
	fmt(text, sizeof text, "[room 1]\r\ngate = 4\r\n[profile p]\r\ndescription = %s\r\n", desc);
	c = load(text);
	CHECK(c != NULL);
	cfg_free(c);
	/* A long tail must not be read as a line of its own. */
	fmt(text, sizeof text, "[room 1]\ngate = 4\n[profile p]\ndescription = %s%s\n", desc,
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nfrequency_hz = 3");
	CHECK(check_error(conf, text, 4, "line longer than 199"));
	/* ';' starts a comment even without a space before it (SPEC §5);
	 * booleans ignore case; ':' is not inih's other delimiter here (SPEC
	 * says key = value) but may stand in a value. */
	CHECK(check_error(conf, "[room 1]\ngate = 4\nname: Front\n", 3, "':' is not a delimiter"));
	c = load("[room 1]\ngate = 4;comment\naudible = Yes\nname = Front: 1\n[gpio]\nactive_low = OFF\n");
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ(c->rooms[0].gate[0].offset, 4);
		CHECK_EQ(c->rooms[0].audible, 1);
		CHECK_STR(c->rooms[0].name, "Front: 1");
		cfg_free(c);
	} else {
		fprintf(stderr, "%s\n", err);
	}
	/* A directory is not a config file. */
	c = cfg_load(tmp, err, sizeof err);
	CHECK(c == NULL);
	CHECK(strstr(err, "Is a directory") != NULL);
	/* An empty file has no room. */
	CHECK(check_error(conf, "", 1, "no [room ID] section"));
}

struct bad {
	const char *extra;   /* appended to base_rooms (8 lines) */
	int line;
	const char *fragment;
};

static const struct bad bad_table[] = {
	{ "[nonsense]\n", 9, "unknown section [nonsense]" },
	{ "colour = red\n", 9, "unknown key 'colour' in [room]" },
	{ "gate = 18\n", 9, "duplicate key 'gate' (first at line 8)" },
	{ "gate: 18\n", 9, "':' is not a delimiter" },
	{ "[room 1]\ngate = 40\n", 9, "duplicate room 1 (first at line 7)" },
	{ "[room a/b]\ngate = 40\n", 9, "bad room id 'a/b'" },
	{ "[room 0123456789012345678901234567890123]\ngate = 40\n", 9, "bad room id" },
	{ "[room]\ngate = 40\n", 9, "[room] needs a name" },
	{ "[room 2]\nname =\ngate = 40\n", 10, "name: a value is required" },
	{ "[room 2]\nname = Two\n", 9, "room 2: gate is required" },
	{ "[room 2]\nname = Two\n[room 3]\ngate = 30\n", 9, "room 2: gate is required" },
	{ "[room 2]\ngate = 18, 19\npulse = 20\n", 11, "pulse: 1 pulse line for 2 gate lines" },
	{ "[room 2]\ngate = 18\npulse = 19, 20\n\n[profile p]\n", 11, "2 pulse lines for 1 gate line" },
	{ "[room 2]\ngate = 1,2,3,4,5,6,7,8,9\n", 10, "more than 8 channels" },
	{ "[room 2]\ngate = 1,2,3,4,17,30,31,32,33\n", 10, "gate: more than 8 channels" },
	{ "[room 2]\ngate = 1,2,3,4,5,6,7,8\npulse = 9,10,11,12,13,14,15,16,18\n", 11,
	  "pulse: more than 8 channels" },
	{ "[room 2]\ngate = 18,,19\n", 10, "empty entry in list" },
	{ "[room 2]\ngate = ,\n", 10, "empty entry in list" },
	{ "[room 2]\ngate = !\n", 10, "'!' must be followed by a line" },
	{ "[room 2]\ngate = 1024\n", 10, "line offset 1024 is out of range (0 to 1023)" },
	{ "[room 2]\ngate = GPIO_A, gpio+b\n", 10, "'gpio+b' is not a GPIO line" },
	{ "[room 2]\ngate = ! 5\n", 10, "is not a GPIO line" },
	{ "[room 2]\ngate = ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\n", 10, "longer than 31" },
	{ "[room 2]\ngate = 17\n", 10, "GPIO line 17 used twice (also room 1 gate at line 8)" },
	{ "[room 2]\ngate = 18\ninterlock = !18\n", 11, "GPIO line 18 used twice" },
	{ "[room 2]\ngate = 18, 18\n", 10, "used twice" },
	{ "[room 2]\ngate = SW1\n[room 3]\ngate = SW1\n", 12, "GPIO line SW1 used twice" },
	{ "[room 2]\ngate = 18\npulse = 19\nalarm = 19\n", 12, "used twice (also room 2 pulse" },
	/* Once by offset, once by the name the sim backend gives it (issue 13). */
	{ "[room 2]\ngate = 18\nalarm = GPIO17\n", 11,
	  "alarm: GPIO line GPIO17 used twice (also room 1 gate at line 8, as 17" },
	{ "[room 2]\ngate = GPIO18\ninterlock = !18\n", 11, "interlock: GPIO line 18 used twice" },
	{ "[room 2]\ngate = GPIO0, 0\n", 10, "gate: GPIO line 0 used twice" },
	{ "[room 2]\ngate = 18\naudible = loud\n", 11, "not a boolean" },
	{ "[room 2]\ngate = 18\npulse = 19\npulse = none\n", 12, "duplicate key 'pulse'" },
	{ "[room 2] junk\ngate = 18\n", 9, "text after ']'" },
	{ "[room 2\ngate = 18\n", 9, "syntax error" },
	{ "this is not ini\n", 9, "syntax error (expected [section] or key = value)" },
	{ "= 5\n", 9, "syntax error" },
	{ "  indented = 1\n", 9, "indented line" },
	{ "\tgate = 18\n", 9, "indented line" },
	{ "[daemon]\n", 9, "section [daemon] appears twice (first at line 1)" },
	{ "[limits x]\n", 9, "[limits] takes no name" },
	{ "[gpio]\nheartbeat = 17\n", 9, "section [gpio] appears twice" },
	{ "[limits]\nsession_min = soon\n", 10, "session_min: bad duration 'soon'" },
	{ "[limits]\nsession_min = 0\n", 10, "out of range" },
	{ "[limits]\nsession_max = 5h\n", 10, "session_max: 5h is out of range (1s to 4h)" },
	{ "[limits]\nsession_min = 2h\nsession_max = 1h\n", 11, "session_min (2h) is above session_max (1h)" },
	{ "[limits]\nsession_max = 1h\nsession_min = 2h\n", 11, "is above session_max" },
	{ "[limits]\nsession_min = 2h\n", 10, "session_min (2h) is above session_max (1h)" },
	{ "[limits]\nstim_max = 2h\n", 10, "stim_max: 2h is out of range (1s to 1h)" },
	{ "[limits]\nstim_max = 1m30\n", 10, "bad duration" },
	{ "[safety]\nrequire_needle_count = maybe\n", 10, "not a boolean" },
	{ "[safety]\npacemaker = warn\n", 10, "pacemaker can never be relaxed" },
	{ "[safety]\nicd = refuse\n", 10, "icd can never be relaxed" },
	{ "[safety]\nimplanted-device = warn\n", 10, "can never be relaxed" },
	{ "[safety]\npregnancy = maybe\n", 10, "'maybe' is not a policy (refuse or warn)" },
	{ "[safety]\npregnancy =\n", 10, "pregnancy: a value is required" },
	{ "[alarm]\ncheckin_interval = -5\n", 10, "bad duration" },
	{ "[alarm]\nescalate_after = 2d\n", 10, "bad duration" },
	{ "[access]\ndesk_group = front desk\n", 10, "not a group name" },
	{ "[access]\nadmin_group = root\n", 10, "unknown key 'admin_group' in [access]" },
	{ "[gpio]\n", 9, "appears twice" },
	{ "[profile p]\nfrequency_hz = 500\n", 10, "frequency_hz: 500 is out of range (1 to 200)" },
	{ "[profile p]\nfrequency_hz = 2.5\n", 10, "not a whole number" },
	{ "[profile p]\nalt_frequency_hz = 0\n", 10, "out of range" },
	{ "[profile p]\nmode = wobble\n", 10, "'wobble' is not a mode" },
	{ "[profile p]\nswitch_s = 61\n", 10, "switch_s: 61 is out of range (1s to 1m)" },
	{ "[profile p]\non_s = 0\n", 10, "out of range" },
	{ "[profile p]\noff_s = 11m\n", 10, "out of range" },
	{ "[profile p]\npulse_width_us = 20\n", 10, "pulse_width_us: 20 is out of range (50 to 1000)" },
	{ "[profile p]\nduration_s = 40m\n", 10, "duration_s: 40m is above stim_max (30m)" },
	{ "[profile p]\nduration_s = 0\n", 10, "out of range" },
	{ "[profile p]\ndelay_s = 2h\n", 10, "delay_s: 2h is above session_max (1h)" },
	{ "[profile p]\nchannels = 1,9\n", 10, "channels: 9 is out of range (1 to 8)" },
	{ "[profile p]\nchannels = 1,1\n", 10, "channel 1 listed twice" },
	{ "[profile p]\nchannels =\n", 10, "a value is required" },
	{ "[profile p]\npregnancy_safe = sometimes\n", 10, "not a boolean" },
	{ "[profile p]\nvoltage = 9\n", 10, "unknown key 'voltage' in [profile]" },
	{ "[profile bad name!]\n", 9, "bad profile name" },
	{ "[profile p]\n[profile p]\n", 10, "duplicate profile p (first at line 9)" },
	{ "[profile p]\ndescription = a\x01z\n", 10, "control character" },
	{ "heartbeat = 1\n", 9, "unknown key 'heartbeat' in [room]" },
	{ "[room 2]\n", 9, "room 2: gate is required" },
	{ "name = Front desk # not a comment here\ngate2 = 3\n", 10, "unknown key 'gate2'" },
	/* First error wins: a syntax error before a bad key, and after one. */
	{ "oops\nbogus = 1\n", 9, "syntax error" },
	{ "bogus = 1\noops\n", 9, "unknown key 'bogus'" },
	{ "[room 2]\ngate = 18, 19\npulse = 20\n[room 3]\noops\n", 11, "pulse:" },
	{ "[room 2]\nname = x\n[room 3]\noops\n", 9, "gate is required" },
	{ "[room 2]\nname = x\noops\n", 9, "gate is required" },   /* the earlier line */
	{ "[room 2]\ngate = 5\noops\nname = x\n", 11, "syntax error" },
};

/* Errors in [daemon] and [gpio], and files without a room, need their own text. */
struct bad_full {
	const char *text;
	int line;
	const char *fragment;
};

static const struct bad_full bad_full_table[] = {
	{ "[daemon]\nlog_level = loud\n[room 1]\ngate = 1\n", 2,
	  "'loud' is not a log level (err, warning, notice, info, debug)" },
	{ "[daemon]\nsocket = run/a-very-long-directory-name-for-the-socket-of-acud/"
	  "and-another-long-directory-name-to-pass-the-limit/acud.sock\n[room 1]\ngate = 1\n",
	  2, "a Unix socket path must be under 108" },
	{ "[daemon]\nstate_dir =\n[room 1]\ngate = 1\n", 2, "state_dir: a value is required" },
	{ "[daemon]\nprofiles_dir = missing.d\n[room 1]\ngate = 1\n", 2, "profiles_dir" },
	{ "[gpio]\nbackend = magic\n[room 1]\ngate = 1\n", 2, "'magic' is not a backend (gpiod or sim)" },
	{ "[gpio]\nheartbeat_hz = 51\n[room 1]\ngate = 1\n", 2, "out of range (1 to 50)" },
	{ "[gpio]\nheartbeat_hz = 0\n[room 1]\ngate = 1\n", 2, "out of range (1 to 50)" },
	{ "[gpio]\nactive_low = perhaps\n[room 1]\ngate = 1\n", 2, "not a boolean" },
	{ "[gpio]\nchip =\n[room 1]\ngate = 1\n", 2, "chip: a value is required" },
	{ "[room 1]\ngate = 1\n[gpio]\nheartbeat = !1\n", 4, "GPIO line 1 used twice (also room 1 gate at line 2)" },
	{ "backend = sim\n[room 1]\ngate = 1\n", 1, "backend: key outside any section" },
	{ "[daemon]\nsocket = run/acud.sock\nstate_dir = state\n\n[gpio]\nbackend = sim\n", 6,
	  "no [room ID] section" },
	{ "; only comments\n\n", 2, "no [room ID] section" },
	{ "[room 1]\ngate = 1\n[room 2]\n", 3, "room 2: gate is required" },
	{ "[room 1]\ngate = 1\n[room 2]", 3, "room 2: gate is required" },
	{ "[room 1]\ngate = 1\n   ; an indented comment is fine\n  [room 2]\n", 4, "indented line" },
	{ "[room 1]\ngate = 1\n[profile x]\nmode = dense-disperse\nalt_frequency_hz = 0\n", 5,
	  "alt_frequency_hz: 0 is out of range" },
	{ "[room 1]\ngate = 1\n[limits]\nsession_max = 10m\n[profile x]\ndelay_s = 11m\n", 6,
	  "delay_s: 11m is above session_max (10m)" },
	{ "[room 1]\ngate = 1\n[profile x]\ndelay_s = 11m\n[limits]\nsession_max = 10m\n", 4,
	  "delay_s: 11m is above session_max (10m)" },
	{ "[room 1]\ngate = 1\n[profile x]\nduration_s = 20m\n[limits]\nstim_max = 10m\n", 4,
	  "duration_s: 20m is above stim_max (10m)" },
	{ "[room 1]\ngate = 1\n[profile x]\nmode = dense-disperse\n[profile x]\n", 5,
	  "duplicate profile x" },
	{ "[room 1]\ngate = 1\n\xEF\xBB\xBF[room 2]\ngate = 2\n", 3, "syntax error" },
	{ "[room 1]\ngate = 1\nname = a\0b\n", 3, "NUL byte" },
};

static void test_bad_configs(void)
{
	char text[4096];
	int failed = 0;

	for (size_t i = 0; i < sizeof bad_table / sizeof bad_table[0]; i++) {
		const struct bad *b = &bad_table[i];
		int ok;

		fmt(text, sizeof text, "%s%s", base_rooms, b->extra);
		ok = check_error(conf, text, b->line, b->fragment);
		CHECK(ok);
		if (!ok) {
			fprintf(stderr, "  bad_table[%zu]\n", i);
			failed++;
		}
	}
	for (size_t i = 0; i < sizeof bad_full_table / sizeof bad_full_table[0]; i++) {
		const struct bad_full *b = &bad_full_table[i];
		int ok;

		if (strstr(b->fragment, "NUL")) {
			/* Has a NUL inside: written with its real length. */
			static const char nul[] = "[room 1]\ngate = 1\nname = a\0b\n";
			FILE *f = fopen(conf, "w");
			struct acu_cfg *c;
			char want[PATH_MAX + 32];

			fwrite(nul, 1, sizeof nul - 1, f);
			fclose(f);
			c = cfg_load(conf, err, sizeof err);
			fmt(want, sizeof want, "%s:3: NUL byte", conf);
			ok = !c && strncmp(err, want, strlen(want)) == 0;
			cfg_free(c);
		} else {
			ok = check_error(conf, b->text, b->line, b->fragment);
		}
		CHECK(ok);
		if (!ok) {
			fprintf(stderr, "  bad_full_table[%zu]\n", i);
			failed++;
		}
	}
	printf("test_cfg: %zu bad configs checked, %d wrong\n",
	       sizeof bad_table / sizeof bad_table[0] + sizeof bad_full_table / sizeof bad_full_table[0],
	       failed);
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	if (!tmp[0] || strncmp(tmp, "/tmp/", 5) != 0)
		return;
	fmt(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
}

/* The sim backend names line N GPIO<N>: that name and the offset are one
 * line; other spellings are other names; a chip's names are the chip's. */
static void test_sim_line_names(void)
{
	static const char head[] =
		"[daemon]\nsocket = run/acud.sock\nstate_dir = state\nprofiles_dir = profiles.d\n"
		"[gpio]\nbackend = %s\n[room 1]\ngate = 17\n[room 2]\ngate = 18\nalarm = %s\n";
	static const char *const other[] = { "GPIO017", "gpio17", "GPIO1024", "GPIO", "GPIO17a" };
	struct acu_line l = { .set = 1, .offset = -1 };
	char text[512];
	struct acu_cfg *c;

	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		fmt(text, sizeof text, head, "sim", other[i]);
		c = load(text);
		CHECK(c != NULL);
		if (!c)
			fprintf(stderr, "  %s: %s\n", other[i], err);
		cfg_free(c);
	}
	/* The gpiod backend's names are resolved on the chip, at start. */
	fmt(text, sizeof text, head, "gpiod", "GPIO17");
	c = load(text);
	CHECK(c != NULL);
	cfg_free(c);
	fmt(text, sizeof text, head, "sim", "GPIO17");
	c = load(text);
	CHECK(c == NULL);
	cfg_free(c);

	CHECK_EQ(cfg_sim_line_offset(&(struct acu_line){ .set = 1, .offset = 24 }), 24);
	snprintf(l.name, sizeof l.name, "GPIO24");
	CHECK_EQ(cfg_sim_line_offset(&l), 24);
	snprintf(l.name, sizeof l.name, "GPIO0");
	CHECK_EQ(cfg_sim_line_offset(&l), 0);
	snprintf(l.name, sizeof l.name, "GPIO1023");
	CHECK_EQ(cfg_sim_line_offset(&l), 1023);
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		snprintf(l.name, sizeof l.name, "%s", other[i]);
		CHECK_EQ(cfg_sim_line_offset(&l), -1);
	}
}

int main(void)
{
	char tmpl[] = "/tmp/test_cfg.XXXXXX";

	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 2;
	}
	fmt(tmp, sizeof tmp, "%s", tmpl);
	path_in(conf, "acud.conf");
	reset_profiles_dir();

	test_full();
	test_defaults();
	test_web();
	test_relative_paths();
	test_profiles_dir();
	test_polarity_and_wiring();
	test_lexical();
	test_bad_configs();
	test_sim_line_names();

	cleanup();
	return unit_report("test_cfg");
}

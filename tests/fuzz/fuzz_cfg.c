/* libFuzzer target: the config loader. The input is written to acud.conf in a
 * scratch directory; if it holds a line "%%profiles.d%%", what follows goes to
 * profiles.d/a.conf instead (name that directory with profiles_dir =
 * profiles.d to have it read). cfg_load either refuses with a message that
 * names a file, or returns a config within every bound of SPEC §3/§5 whose
 * names encode as JSON (they reach the protocol); abort() otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], conf[128], prof[160];

static void cleanup(void)
{
	unlink(conf);
	unlink(prof);
	snprintf(prof, sizeof prof, "%s/profiles.d", dir);
	rmdir(prof);
	rmdir(dir);
}

static void init(void)
{
	char path[160];

	snprintf(dir, sizeof dir, "/dev/shm/acufuzzcfg.XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof dir, "/tmp/acufuzzcfg.XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	snprintf(conf, sizeof conf, "%s/acud.conf", dir);
	snprintf(path, sizeof path, "%s/profiles.d", dir);
	mkdir(path, 0755);
	snprintf(prof, sizeof prof, "%s/profiles.d/a.conf", dir);
	atexit(cleanup);
}

static void put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || (n && fwrite(p, 1, n, f) != n))
		abort();
	fclose(f);
}

#define CHECK(cond, ...)                                                           \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "fuzz_cfg: accepted config breaks a rule: "); \
			fprintf(stderr, __VA_ARGS__);                              \
			fprintf(stderr, "\n");                                     \
			abort();                                                   \
		}                                                                  \
	} while (0)

static int same_line(const struct acu_line *a, const struct acu_line *b)
{
	if (a->offset >= 0 || b->offset >= 0)
		return a->offset == b->offset;
	return strcmp(a->name, b->name) == 0;
}

static void check_lines(const struct acu_cfg *c)
{
	const struct acu_line *all[ACU_MAX_ROOMS * (2 * ACU_MAX_CHANNELS + 2) + 1];
	int n = 0;

	if (c->heartbeat.set)
		all[n++] = &c->heartbeat;
	for (int i = 0; i < c->nrooms; i++) {
		const struct acu_room_cfg *r = &c->rooms[i];
		for (int k = 0; k < r->nchannels; k++)
			all[n++] = &r->gate[k];
		for (int k = 0; k < r->npulse; k++)
			all[n++] = &r->pulse[k];
		if (r->alarm.set)
			all[n++] = &r->alarm;
		if (r->interlock.set)
			all[n++] = &r->interlock;
	}
	for (int i = 0; i < n; i++) {
		CHECK(all[i]->set, "an unset line in use");
		CHECK(all[i]->offset >= 0 || all[i]->name[0], "a line with neither offset nor name");
		for (int j = i + 1; j < n; j++)
			CHECK(!same_line(all[i], all[j]), "GPIO line %d/%s used twice", all[i]->offset,
			      all[i]->name);
	}
}

static void check_cfg(const struct acu_cfg *c)
{
	struct acu_now now = { 1, 1 };

	CHECK(c->session_min >= 1 && c->session_min <= c->session_max, "session_min");
	CHECK(c->session_max <= 4 * 3600, "session_max");
	CHECK(c->stim_max >= 1 && c->stim_max <= ACU_STIM_MAX_LIMIT_S, "stim_max");
	CHECK(c->heartbeat_hz >= 1 && c->heartbeat_hz <= 50, "heartbeat_hz");
	CHECK(c->escalate_after >= 0 && c->checkin_interval >= 0, "alarm intervals");
	CHECK(c->backend == BACKEND_SIM || c->backend == BACKEND_GPIOD, "backend");
	CHECK(c->nrooms >= 0 && c->nrooms <= ACU_MAX_ROOMS, "nrooms %d", c->nrooms);
	for (int f = FL_SOFT_FIRST; f < FL__N; f++)
		CHECK(c->policy[f] == POLICY_REFUSE || c->policy[f] == POLICY_WARN, "policy");
	for (int i = 0; i < c->nrooms; i++) {
		const struct acu_room_cfg *r = &c->rooms[i];
		struct acu_room room;
		json_t *j;
		char *text;

		CHECK(acu_valid_ref(r->id), "room id '%s'", r->id);
		CHECK(r->nchannels >= 1 && r->nchannels <= ACU_MAX_CHANNELS, "room %s channels", r->id);
		CHECK(r->npulse == 0 || r->npulse == r->nchannels, "room %s pulse count", r->id);
		CHECK(cfg_room(c, r->id) == r, "room %s defined twice", r->id);
		CHECK(cfg_room_same_wiring(r, r), "room %s wiring differs from itself", r->id);
		room_init(&room, r);
		j = roomjson_room(&room, &now);
		text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		CHECK(text,
		      "room %s: its room object does not encode (name not UTF-8?)", r->id);
		free(text);
		json_decref(j);
	}
	for (int i = 0; i < c->nprofiles; i++) {
		const struct acu_profile_cfg *p = &c->profiles[i];
		json_t *j;
		char *text;

		CHECK(p->name[0], "profile without a name");
		for (const char *s = p->name; *s; s++)
			CHECK((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-',
			      "profile name '%s'", p->name);
		CHECK(cfg_profile(c, p->name) == p, "profile %s defined twice", p->name);
		CHECK(p->mode >= MODE_CONTINUOUS && p->mode <= MODE_INTERMITTENT, "mode");
		CHECK(p->frequency_hz >= 1 && p->frequency_hz <= 200, "%s frequency_hz", p->name);
		CHECK(p->alt_frequency_hz >= 1 && p->alt_frequency_hz <= 200, "%s alt_frequency_hz",
		      p->name);
		CHECK(p->switch_s >= 1 && p->switch_s <= 60, "%s switch_s", p->name);
		CHECK(p->on_s >= 1 && p->on_s <= 600 && p->off_s >= 1 && p->off_s <= 600,
		      "%s on_s/off_s", p->name);
		CHECK(p->pulse_width_us >= 50 && p->pulse_width_us <= 1000, "%s pulse_width_us", p->name);
		CHECK((int64_t)p->pulse_width_us * 2 * p->frequency_hz < 1000000,
		      "%s pulse_width_us not below half the period", p->name);
		if (p->mode == MODE_DENSE_DISPERSE)
			CHECK((int64_t)p->pulse_width_us * 2 * p->alt_frequency_hz < 1000000,
			      "%s pulse_width_us not below half the alt period", p->name);
		CHECK(p->delay_s >= 0 && p->delay_s <= c->session_max, "%s delay_s", p->name);
		CHECK(p->duration_s >= 0 && p->duration_s <= c->stim_max, "%s duration_s", p->name);
		CHECK((p->channels & ~0xffu) == 0, "%s channels", p->name);
		j = roomjson_profile(p);
		text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		CHECK(text,
		      "profile %s: its JSON does not encode (description not UTF-8?)", p->name);
		free(text);
		json_decref(j);
	}
	check_lines(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char marker[] = "\n%%profiles.d%%\n";
	const uint8_t *split;
	struct acu_cfg *c;
	char err[1024];

	if (!dir[0]) {
		init();
		log_init(LOG_CRIT);
	}
	if (size > 32 * 1024)
		return -1;
	split = memmem(data, size, marker, sizeof marker - 1);
	if (split) {
		put(conf, data, (size_t)(split - data) + 1);
		put(prof, split + sizeof marker - 1, size - (size_t)(split - data) - (sizeof marker - 1));
	} else {
		put(conf, data, size);
		unlink(prof);
	}
	err[0] = '\0';
	c = cfg_load(conf, err, sizeof err);
	if (!c) {
		if (strncmp(err, dir, strlen(dir)) != 0 && strncmp(err, "/", 1) != 0) {
			fprintf(stderr, "fuzz_cfg: refusal without FILE: prefix: '%s'\n", err);
			abort();
		}
		return 0;
	}
	check_cfg(c);
	cfg_free(c);
	return 0;
}

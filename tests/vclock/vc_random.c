/* The randomized safety run on a virtual clock: seeded random sequences of
 * every session command, flags, stimulation on and off, interlock blips and
 * trips, reloads into other policies and wirings, role changes, malformed
 * requests, a card that takes no save for a while (S9) and the passing of
 * time (expiry, check-ins, escalation, the stimulation schedule and dose),
 * driven through the real command dispatch,
 * room logic, stimulation engine and persistence (tests/fuzz/harness.c).
 * After every line the harness checks S2 for every channel against the GPIO
 * lines and aborts on a violation; every few hundred steps the state file must
 * read back into the same rooms. Minutes of clinic time take milliseconds.
 *
 * Environment: ACU_SEED (default: from the clock; printed), ACU_VC_STEPS
 * (default 20000), ACU_VC_VERBOSE=1 prints every line (to replay a failure). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64*: small, seeded, the same sequence everywhere. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * UINT64_C(2685821657736338717)) >> 32);
}

static int pick(int n)
{
	return (int)(rnd() % (uint32_t)n);
}

#define PICK(a) (a)[pick((int)(sizeof(a) / sizeof(a)[0]))]

static const char *const rooms[] = { "1", "2", "3", "4", "5", "9" };
static const char *const profiles[] = { "p2", "dd", "inter", "delayed", "ch2", "safe", "extra",
					"none" };
static const char *const flags[] = { "pacemaker", "icd", "implanted-device", "pregnancy",
				     "epilepsy", "heart-disease", "bleeding-disorder",
				     "metal-implant" };

static void flag_list(char *buf, size_t len)
{
	int n = pick(3);
	size_t off = 0;

	off += (size_t)snprintf(buf + off, len - off, "[");
	for (int i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s\"%s\"", i ? "," : "",
					/* hard flags rarely, so sessions get to stimulate */
					pick(6) ? flags[3 + pick(5)] : flags[pick(3)]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
}

static void step(char *line, size_t len)
{
	const char *room = pick(12) ? rooms[pick(4)] : PICK(rooms);
	char fl[160];
	int u = pick(100);

	if (u < 16) {
		const char *p = PICK(profiles);
		char prof[40] = "";

		flag_list(fl, sizeof fl);
		if (strcmp(p, "none") != 0)
			snprintf(prof, sizeof prof, ",\"profile\":\"%s\"", p);
		snprintf(line, len,
			 "{\"cmd\":\"start\",\"room\":\"%s\",\"duration_s\":%d,\"needles\":%d,"
			 "\"patient\":\"P%d\"%s,\"flags\":%s,\"stim\":%s}",
			 room, PICK(((int[]){ 1, 2, 5, 30, 60, 300, 900, 3600 })), pick(8),
			 pick(1000), prof, fl, pick(2) ? "true" : "false");
	} else if (u < 30) {
		snprintf(line, len, "{\"cmd\":\"stim\",\"room\":\"%s\",\"on\":%s}", room,
			 pick(3) ? "true" : "false");
	} else if (u < 36) {
		snprintf(line, len, "{\"cmd\":\"pause\",\"room\":\"%s\"}", room);
	} else if (u < 42) {
		snprintf(line, len, "{\"cmd\":\"resume\",\"room\":\"%s\"}", room);
	} else if (u < 47) {
		snprintf(line, len, "{\"cmd\":\"stop\",\"room\":\"%s\"}", room);
	} else if (u < 53) {
		snprintf(line, len, "{\"cmd\":\"finish\",\"room\":\"%s\",\"removed\":%d%s}", room,
			 pick(8), pick(4) ? "" : ",\"override\":\"counted twice\"");
	} else if (u < 57) {
		snprintf(line, len, "{\"cmd\":\"extend\",\"room\":\"%s\",\"duration_s\":%d}", room,
			 PICK(((int[]){ 1, 10, 60, 600, 5000 })));
	} else if (u < 60) {
		snprintf(line, len, "{\"cmd\":\"checkin\",\"room\":\"%s\"}", room);
	} else if (u < 63) {
		snprintf(line, len, "{\"cmd\":\"needles\",\"room\":\"%s\",\"delta\":%d}", room,
			 PICK(((int[]){ -2, -1, 1, 3 })));
	} else if (u < 68) {
		/* Mostly one flag, hard ones often: a flag set while stimulating. */
		if (pick(4))
			snprintf(fl, sizeof fl, "[\"%s\"]", pick(3) ? PICK(flags) : flags[pick(3)]);
		else
			flag_list(fl, sizeof fl);
		snprintf(line, len, "{\"cmd\":\"flag\",\"room\":\"%s\",\"flags\":%s}", room,
			 strcmp(fl, "[]") ? fl : "[\"epilepsy\"]");
	} else if (u < 70) {
		snprintf(line, len, "{\"cmd\":\"silence\",\"room\":\"%s\",\"duration_s\":%d}", room,
			 PICK(((int[]){ 1, 60, 600 })));
	} else if (u < 78) {
		/* Interlocks: room 1's is active low on line 6, room 2's is line 7. */
		int l = pick(2) ? 6 : 7;
		snprintf(line, len, "{\"cmd\":\"sim-input\",\"line\":%d,\"level\":%d}", l, pick(2));
	} else if (u < 90) {
		snprintf(line, len, "#t %d", PICK(((int[]){ 0, 1, 1, 2, 3, 5, 10, 60, 300, 1200 })));
	} else if (u < 93) {
		snprintf(line, len, "#c %d", pick(5));
	} else if (u < 95) {
		snprintf(line, len, "#r");
	} else if (u < 96) {
		/* A card that takes no save, now and then for a while (S9). */
		snprintf(line, len, "#d %d", pick(3) == 0);
	} else if (u < 98) {
		snprintf(line, len, "#u %d", pick(6) ? 3 : pick(3));
	} else {
		snprintf(line, len, "%s", PICK(((const char *[]){
			"{\"cmd\":\"start\",\"room\":\"1\",\"duration_s\":\"x\"}", "{\"cmd\":",
			"[1,2]", "{\"cmd\":\"status\"}", "{\"cmd\":\"history\",\"limit\":5}",
			"{\"cmd\":\"stim\",\"room\":\"1\"}", "{\"cmd\":\"watch\"}" })));
	}
}

static long current_step;

static int positive(const char *line)
{
	return strstr(line, "\"cmd\":\"start\"") || strstr(line, "\"cmd\":\"resume\"") ||
	       strstr(line, "\"cmd\":\"extend\"") ||
	       (strstr(line, "\"cmd\":\"stim\"") && strstr(line, "\"on\":true"));
}

/* A livelock (a timer that fires forever without moving time) is a failure
 * too: one step that has not ended after a minute of wall time (a whole run
 * takes 2 s natively, minutes under qemu-user). */
static void stuck(int sig)
{
	(void)sig;
	fprintf(stderr, "vc_random: no progress at step %ld\n", current_step);
	abort();
}

/* vc_random FILE: the lines of FILE instead of random ones (a replay). */
static int replay(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4200];
	long n = 0;

	if (!f) {
		perror(path);
		return 2;
	}
	fh_reset();
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			fh_line(line, strlen(line));
		n++;
	}
	fclose(f);
	fh_check_persistence();
	fh_teardown();
	printf("vc_random: %ld passed, 0 failed\n", n + 1);
	return 0;
}

int main(int argc, char **argv)
{
	const char *e = getenv("ACU_SEED"), *v = getenv("ACU_VC_VERBOSE");
	long steps = getenv("ACU_VC_STEPS") ? strtol(getenv("ACU_VC_STEPS"), NULL, 10) : 20000;
	uint64_t seed = e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL);
	char line[512];
	long checks = 0;

	if (argc > 1)
		return replay(argv[1]);

	printf("vc_random: ACU_SEED=%llu ACU_VC_STEPS=%ld\n", (unsigned long long)seed, steps);
	fflush(stdout);
	rng_state = seed * 2 + 1;
	signal(SIGALRM, stuck);
	fh_reset();
	for (long i = 1; i <= steps; i++) {
		current_step = i;
		alarm(60);
		step(line, sizeof line);
		if (v)
			fprintf(stderr, "%ld: %s\n", i, line);
		{
			int bad = fh_daemon.storage_bad;

			fh_line(line, strlen(line));
			/* S9: while nothing can be saved, nothing that starts, resumes,
			 * extends or arms is acknowledged. */
			if (bad && fh_last_ok && positive(line)) {
				fprintf(stderr, "vc_random: acknowledged while storage failed, step "
					"%ld: %s\n", i, line);
				abort();
			}
		}
		checks++;
		/* A fresh clinic now and then, after checking what it saved. */
		if (i % 400 == 0) {
			fh_line("#d 0", 4);
			fh_check_persistence();
			checks++;
			if (pick(3) == 0) {
				fh_line("#u 3", 4);
				fh_line("#c 0", 4);
				fh_reset();
			}
		}
	}
	fh_line("#d 0", 4);
	fh_check_persistence();
	fh_teardown();
	/* Any violation aborted above, naming it; reaching here means none. */
	printf("vc_random: %ld passed, 0 failed\n", checks + 1);
	return 0;
}

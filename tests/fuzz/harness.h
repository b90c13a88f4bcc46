/* A daemon without the process around it, for the libFuzzer targets: the real
 * command dispatch, room logic, persistence and stimulation engine (on the
 * simulated GPIO backend in a tmpfs directory), with acud.c and server.c
 * replaced by the harness (harness.c). Time is virtual. */
#ifndef ACU_FUZZ_HARNESS_H
#define ACU_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "daemon.h"

/* Sets up a fresh daemon (config variant 0, every room idle, empty history). */
void fh_reset(void);
/* One request line as a client with the current role; checks the reply and
 * the safety invariants afterwards (abort() on a violation). */
void fh_request(const char *line, size_t len);
/* A line of a sequence: "#t N" advances the clock N seconds and runs due
 * deadlines, "#u R" sets the role (0..3), "#c N" picks the config variant the
 * next reload reads, "#r" reloads, "#d 1" makes every save fail until "#d 0";
 * anything else is a request. */
void fh_line(const char *line, size_t len);
/* Whether the last request's reply was ok. */
extern int fh_last_ok;
/* Saves, reloads the state file into a second set of rooms and compares. */
void fh_check_persistence(void);
/* Drops everything fh_reset set up (for leak checking at exit). */
void fh_teardown(void);

extern struct acud fh_daemon;

#endif

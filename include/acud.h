/* acud: shared vocabulary of the daemon, the CLI and the tests (SPEC.md). */
#ifndef ACUD_H
#define ACUD_H

#include <stdint.h>
#include <stddef.h>

#define ACUD_VERSION "0.1.0"
#define ACUD_PROTOCOL 1

#define ACU_DEFAULT_CONFIG "/etc/acud/acud.conf"
#define ACU_DEFAULT_SOCKET "/run/acud/acud.sock"
#define ACU_DEFAULT_STATE_DIR "/var/lib/acud"
#define ACU_DEFAULT_PROFILES_DIR "/etc/acud/profiles.d"

#define ACU_REQUEST_MAX 4096 /* bytes per request line, newline excluded */
#define ACU_MAX_CHANNELS 8
#define ACU_MAX_ROOMS 256
#define ACU_ID_MAX 32        /* room id, patient reference */
#define ACU_NAME_MAX 64      /* room name, profile name, user name */
#define ACU_NEEDLES_MAX 200
#define ACU_SILENCE_DEFAULT_S 120
#define ACU_SILENCE_MAX_S 600
#define ACU_STIM_MAX_LIMIT_S 3600 /* SPEC: stim_max never above 60m */
#define ACU_RT_PRIORITY_DEFAULT 40 /* the pulse thread's SCHED_FIFO priority */
#define ACU_TIMING_SHARE_DEFAULT_PPM 10000 /* 1 % of a channel's pulses missed */

#define NS_PER_SEC INT64_C(1000000000)
#define NS_PER_MS INT64_C(1000000)
#define ACU_NEVER INT64_MAX

/* Monotonic and wall-clock readings taken together, nanoseconds. Pure code gets
 * time only through this, so tests can drive it. */
struct acu_now {
	int64_t mono;
	int64_t wall;
};

enum acu_state { ST_IDLE, ST_RUNNING, ST_PAUSED, ST_DUE, ST__N };

/* Contraindication flags: the first three are hard (SPEC S3). */
enum acu_flag {
	FL_PACEMAKER,
	FL_ICD,
	FL_IMPLANTED_DEVICE,
	FL_PREGNANCY,
	FL_EPILEPSY,
	FL_HEART_DISEASE,
	FL_BLEEDING_DISORDER,
	FL_METAL_IMPLANT,
	FL__N
};
#define FL_HARD_MASK ((1u << FL_PACEMAKER) | (1u << FL_ICD) | (1u << FL_IMPLANTED_DEVICE))
#define FL_SOFT_FIRST FL_PREGNANCY

enum acu_alarm_kind {
	AL_DUE,
	AL_CHECKIN,
	AL_INTERLOCK,
	AL_NEEDLE_MISMATCH,
	AL_GPIO_FAULT,
	AL_STORAGE,                    /* S9: changes cannot be saved */
	AL_ATTENTION,                  /* restored state that cannot be trusted */
	AL_TIMING,                     /* pulses skipped or held too long by a late loop */
	AL_CALL,                       /* the room's call input (SPEC §11) */
	AL__N
};
enum acu_priority { PRIO_NONE, PRIO_LOW, PRIO_MEDIUM, PRIO_HIGH };

enum acu_errcode {
	E_OK,
	E_BAD_REQUEST,
	E_UNKNOWN_COMMAND,
	E_UNKNOWN_ROOM,
	E_UNKNOWN_PROFILE,
	E_FORBIDDEN,
	E_INVALID_STATE,
	E_OUT_OF_RANGE,
	E_CONTRAINDICATED,
	E_UNSUPPORTED,
	E_NEEDLE_MISMATCH,
	E_INTERLOCK,
	E_GPIO_FAULT,
	E_STORAGE,
	E_CONFIG,
	E_INTERNAL,
	E__N
};

enum acu_role { ROLE_NONE, ROLE_DESK, ROLE_PRACTITIONER, ROLE_TECHNICIAN };

/* The protocol's commands (SPEC §6), in the order acuctl's help lists them. */
enum acu_cmd {
	CMD_STATUS,
	CMD_WATCH,
	CMD_START,
	CMD_PAUSE,
	CMD_RESUME,
	CMD_STOP,
	CMD_CHECKIN,
	CMD_EXTEND,
	CMD_FINISH,
	CMD_STIM,
	CMD_FLAG,
	CMD_NEEDLES,
	CMD_SILENCE,
	CMD_PROFILES,
	CMD_PROFILE,
	CMD_HISTORY,
	CMD_RELOAD,
	CMD_VERSION,
	CMD_SIM_INPUT,
	CMD_LINES,                     /* technician: the configured lines (SPEC §11) */
	CMD_TEST,                      /* technician: the alarm line's patterns */
	CMD__N
};

struct acu_err {
	enum acu_errcode code;
	char msg[256];
};

int acu_fail(struct acu_err *err, enum acu_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *acu_state_name(enum acu_state s);
const char *acu_flag_name(enum acu_flag f);
int acu_flag_parse(const char *s); /* -1 when unknown */
/* Every flag name, joined by sep, as snprintf writes it (returns the length
 * it needed): messages that list the known flags never go stale. */
int acu_flag_list(char *buf, size_t len, const char *sep);
const char *acu_alarm_name(enum acu_alarm_kind k);
const char *acu_priority_name(enum acu_priority p);
const char *acu_errcode_name(enum acu_errcode c);
const char *acu_role_name(enum acu_role r);
const char *acu_cmd_name(enum acu_cmd c);
int acu_cmd_parse(const char *s); /* -1 when unknown */

/* "90s", "25m", "1h", "1h30m" or plain seconds. Returns 0 and seconds, or -1. */
int acu_parse_duration(const char *s, int64_t *seconds);
/* Plain decimal integer within [lo, hi]; -1 otherwise. */
int acu_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* A share from 0 to 100 percent, "1%", "0.25%" or "2" (percent), at most 4
 * decimals, in parts per million; -1 otherwise. */
int acu_parse_share(const char *s, int64_t *ppm);
/* 1 to 32 of [A-Za-z0-9._-]: patient references and room ids. */
int acu_valid_ref(const char *s);
int acu_utf8_valid(const char *s);
void acu_utf8_trim(char *s);
/* Makes *buf (of *cap bytes, first from `first`) hold at least need bytes,
 * doubling; *buf and *cap are left as they were when memory runs out.
 * 0, or -1 out of memory. */
int acu_grow(char **buf, size_t *cap, size_t need, size_t first);
/* RFC 3339 UTC with seconds, e.g. 2026-11-21T10:00:00Z, from wall ns. */
void acu_rfc3339(int64_t wall_ns, char *buf, size_t len);
/* Parses what acu_rfc3339 writes (and offsets like +01:00). */
int acu_parse_rfc3339(const char *s, int64_t *wall_ns);

int64_t acu_mono_now(void);
struct acu_now acu_now(void);

#endif

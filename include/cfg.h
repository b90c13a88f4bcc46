/* Configuration: SPEC §5, parsed with inih, every error as FILE:LINE: message. */
#ifndef ACU_CFG_H
#define ACU_CFG_H

#include <limits.h>
#include <stdint.h>
#include "acud.h"

enum acu_backend { BACKEND_GPIOD, BACKEND_SIM };
enum acu_policy { POLICY_REFUSE, POLICY_WARN };
enum acu_mode { MODE_CONTINUOUS, MODE_DENSE_DISPERSE, MODE_INTERMITTENT };

/* A GPIO line as written in the config: an offset or a line name, with polarity. */
struct acu_line {
	int set;           /* 0: not configured */
	int offset;        /* >= 0 when given by offset, -1 when given by name */
	char name[32];     /* line name when given by name */
	int active_low;    /* '!' prefix inverts [gpio] active_low */
};

struct acu_room_cfg {
	char id[ACU_ID_MAX + 1];       /* from "[room ID]" */
	char name[ACU_NAME_MAX + 1];   /* default "Room ID" */
	int nchannels;                 /* number of gate lines, 1..8 */
	struct acu_line gate[ACU_MAX_CHANNELS];
	int npulse;                    /* 0, or equal to nchannels */
	struct acu_line pulse[ACU_MAX_CHANNELS];
	struct acu_line alarm;
	int audible;
	struct acu_line interlock;
	struct acu_line call;          /* the patient's call button or cord (SPEC §11) */
	struct acu_line presence;      /* the presence button at the door */
	const char *file;              /* where the section starts, for messages: one of
					* the cfg's files */
	int line;
};

struct acu_profile_cfg {
	char name[ACU_NAME_MAX + 1];   /* from "[profile NAME]": [A-Za-z0-9._-] */
	char description[256];
	enum acu_mode mode;
	int frequency_hz;
	int alt_frequency_hz;
	int switch_s;
	int on_s, off_s;
	int pulse_width_us;
	int64_t delay_s;
	int64_t duration_s;            /* 0: the session's remainder */
	unsigned channels;             /* bit c-1 for channel c; 0: all of the room's */
	int pregnancy_safe;
	const char *file;              /* one of the cfg's files */
	int line;
};

/* [web] (SPEC §10) */
#define ACU_WEB_HOSTS_MAX 8
#define ACU_WEB_CLIENTS_MAX 512
struct acu_web_cfg {
	char listen[300];              /* as written; "" = not set */
	char host[256];                /* listen's host, brackets removed */
	int port;                      /* 0: a free port, logged */
	char title[ACU_NAME_MAX + 1];
	int show_patient;
	int max_clients;               /* event-stream clients */
	int nhosts;
	char hosts[ACU_WEB_HOSTS_MAX][254];
};

/* [mqtt] (SPEC §12): off unless broker is set. */
#define ACU_MQTT_TOPIC_MAX 64          /* topic_prefix, discovery_prefix */
struct acu_mqtt_cfg {
	int on;                        /* broker given */
	int tls;                       /* mqtts:// */
	char host[256];                /* a name, an IPv4 or an IPv6 address (no brackets) */
	int port;
	char board[ACU_ID_MAX + 1];    /* default: the host name */
	char prefix[ACU_MQTT_TOPIC_MAX + 1];
	char username[ACU_NAME_MAX + 1];
	char password_file[PATH_MAX];  /* "" = none */
	char ca_file[PATH_MAX];        /* "" with mqtts: the system's CAs */
	char cert_file[PATH_MAX], key_file[PATH_MAX];
	int keepalive;                 /* seconds */
	int publish_patient, discovery, remote;
	char discovery_prefix[ACU_MQTT_TOPIC_MAX + 1];
};

struct acu_cfg {
	char path[PATH_MAX];           /* the main config file */
	/* [daemon] */
	char socket[108];
	char state_dir[PATH_MAX];
	char profiles_dir[PATH_MAX];
	int log_level;                 /* syslog priority: LOG_ERR..LOG_DEBUG */
	int rt_priority;               /* the pulse thread's SCHED_FIFO priority; 0: none */
	/* [gpio] */
	enum acu_backend backend;
	char chip[64];
	int active_low;
	struct acu_line heartbeat;
	int heartbeat_hz;
	char sim_state[PATH_MAX];      /* default STATE_DIR/gpio-sim.state */
	char sim_trace[PATH_MAX];      /* "" = no trace */
	int debounce_ms;               /* call and presence inputs */
	/* [limits], seconds */
	int64_t session_min, session_max, stim_max;
	/* [safety] */
	int require_needle_count;
	enum acu_policy policy[FL__N]; /* only the soft flags are meaningful */
	/* [alarm], seconds */
	int64_t escalate_after, checkin_interval, call_escalate_after;
	int64_t timing_share_ppm;      /* a channel missing more of its pulses: timing alarm */
	/* [access] */
	char desk_group[ACU_NAME_MAX + 1];
	char practitioner_group[ACU_NAME_MAX + 1];
	char technician_group[ACU_NAME_MAX + 1];
	char socket_group[ACU_NAME_MAX + 1]; /* "" = leave the daemon's group */
	/* [history], seconds */
	int64_t history_keep;          /* day files older than this are removed */
	struct acu_web_cfg web;
	struct acu_mqtt_cfg mqtt;

	int nrooms;
	struct acu_room_cfg *rooms;
	int nprofiles;
	struct acu_profile_cfg *profiles;
	/* Every file a section was read from, once: the rooms' and profiles'
	 * `file` (a PATH_MAX array in each cost 4 KiB a room). */
	int nfiles;
	char **files;
};

/* Loads PATH and the profiles directory it names. On error returns NULL and
 * writes "FILE:LINE: message" (or "FILE: message") into err. */
struct acu_cfg *cfg_load(const char *path, char *err, size_t errlen);
void cfg_free(struct acu_cfg *cfg);
void cfg_defaults(struct acu_cfg *c);
void cfg_profile_defaults(struct acu_profile_cfg *pr);

const struct acu_room_cfg *cfg_room(const struct acu_cfg *cfg, const char *id);
const struct acu_profile_cfg *cfg_profile(const struct acu_cfg *cfg, const char *name);
/* Same wiring (lines, polarity, channels) for two room configs: reload may not
 * rewire a room that has a session. */
int cfg_room_same_wiring(const struct acu_room_cfg *a, const struct acu_room_cfg *b);

const char *cfg_mode_name(enum acu_mode m);
/* Same [mqtt] settings: a reload that changes none keeps the connection. */
int cfg_mqtt_same(const struct acu_mqtt_cfg *a, const struct acu_mqtt_cfg *b);

/* The simulated chip names line N "GPIO<N>", as a Raspberry Pi's gpiochip0
 * does: the offset a config line designates there (its offset, or N for such
 * a name), -1 for any other name. */
int cfg_sim_line_offset(const struct acu_line *l);

#endif

/* MQTT publishing (SPEC §12): the pure parts (mqtt-pure.c: topics, what a room
 * publishes, Home Assistant discovery, remote messages and the table of other
 * boards' rooms) and the shell that drives libmosquitto from the loop (mqtt.c). */
#ifndef ACU_MQTT_H
#define ACU_MQTT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "acud.h"
#include "cfg.h"

#define MQTT_TOPIC_MAX 192             /* prefix, board, "room", id and slashes fit */
#define MQTT_REMOTE_PAYLOAD_MAX 8192   /* a room object is ~1 KB; more is hostile */
#define MQTT_REMOTE_BOARDS 32
#define MQTT_REMOTE_ROOMS 64           /* per board */
#define MQTT_DISCOVERY_N 4             /* entities per room */

/* PREFIX/BOARD/WHAT, or PREFIX/BOARD/WHAT/ID when id is given; -1 if it does
 * not fit. */
int mqtt_topic(char *buf, size_t len, const char *prefix, const char *board, const char *what,
	       const char *id);

/* A topic heard under PREFIX: PREFIX/BOARD/status or PREFIX/BOARD/room/ID,
 * every level checked. */
enum mqtt_topic_kind { MQTT_T_BAD, MQTT_T_STATUS, MQTT_T_ROOM };
enum mqtt_topic_kind mqtt_topic_parse(const char *topic, const char *prefix,
				      char board[ACU_ID_MAX + 1], char id[ACU_ID_MAX + 1]);

/* The room object as published: a copy without the chart code unless
 * publish_patient. */
json_t *mqtt_room_payload(json_t *room, int publish_patient);

/* Another board's room message, validated: at most MQTT_REMOTE_PAYLOAD_MAX
 * bytes, a JSON object whose id is the topic's, with the types and values of
 * SPEC §6; the result holds only the members a desk view shows. NULL and why
 * when anything is wrong. */
json_t *mqtt_remote_room(const void *payload, size_t len, const char *topic_id, char *why,
			 size_t whylen);
/* A status message: 1 online, 0 offline, -1 anything else. */
int mqtt_remote_status(const void *payload, size_t len);

/* Other boards' rooms, bounded. */
struct mqtt_rboard {
	char name[ACU_ID_MAX + 1];
	int live;                      /* its status says online */
	int64_t since;                 /* wall ns: when live last changed */
	int dirty;                     /* changed since the watchers last heard */
	int nrooms;
	char ids[MQTT_REMOTE_ROOMS][ACU_ID_MAX + 1];
	json_t *rooms[MQTT_REMOTE_ROOMS];
};
struct mqtt_remote {
	struct mqtt_rboard boards[MQTT_REMOTE_BOARDS];
	int n;
};
/* room (stolen) replaces the board's room of that id; NULL removes it.
 * Returns 0, or -1 when the table is full (room freed). */
int mqtt_remote_put(struct mqtt_remote *t, const char *board, const char *id, json_t *room,
		    int64_t wall);
/* live: 1 online, 0 offline, -1 its retained status was removed (offline
 * too). Returns 0, or -1 when the table of boards is full. */
int mqtt_remote_set_live(struct mqtt_remote *t, const char *board, int live, int64_t wall);
/* Our own connection is down: nothing heard is known to be live. */
void mqtt_remote_all_down(struct mqtt_remote *t, int64_t wall);
void mqtt_remote_clear(struct mqtt_remote *t);
/* {"board","live","since","rooms":[...]}, rooms by id, with remaining_s and
 * overdue_s counted from their deadlines at wall (a live board only). */
json_t *mqtt_remote_board_json(const struct mqtt_rboard *b, int64_t wall);

/* Home Assistant discovery for one room: MQTT_DISCOVERY_N entries of
 * {"topic","payload"} (payload an object). */
json_t *mqtt_discovery(const struct acu_mqtt_cfg *m, const char *room_id, const char *room_name);

/* At most burst lines in an interval: returns how many were held back
 * before this one (>= 0) when it may be logged now, -1 when not. */
struct mqtt_ratelimit {
	int64_t start;                 /* the interval's start */
	int n;                         /* lines logged in it; 0: none yet */
	long held;
};
long mqtt_ratelimit(struct mqtt_ratelimit *rl, int64_t mono, int64_t interval, int burst);

/* mqtt.c: the shell. */
struct acud;
struct mqtt;
/* Starts publishing when [mqtt] has a broker (d->mqtt stays NULL otherwise). */
void mqtt_open(struct acud *d);
/* After a reload: rooms that left are removed from the broker; changed
 * [mqtt] settings start a new connection. */
void mqtt_reload(struct acud *d, const struct acu_cfg *old_cfg);
/* A clean stop: offline, then disconnected. */
void mqtt_close(struct acud *d);
/* The other boards for `status`: an array, or NULL when remote is off. */
json_t *mqtt_remote_json(struct acud *d);

#endif

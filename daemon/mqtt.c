/* MQTT publishing (SPEC §12): libmosquitto driven from acud's event loop
 * through its external-loop calls (mosquitto_socket, loop_read, loop_write,
 * want_write, loop_misc on a timer). What is published comes from the
 * publisher of committed changes (publish.c), like the socket's watchers.
 *
 * Nothing here may hold up the loop: the one call that can block,
 * mosquitto_connect_async (it resolves the broker's name with getaddrinfo and
 * loads the TLS files), runs on a short-lived thread while the loop goes on;
 * the loop takes the client back once that thread has ended. Every attempt
 * uses a new client, so its socket is read afresh after each reconnect, and a
 * broker that stalls (no CONNACK, or not reading what it is sent) costs a
 * bounded queue, then the connection. Nothing received can change a session,
 * a gate or an alarm: other boards' rooms are only shown. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <mosquitto.h>

#include "daemon.h"
#include "mqtt.h"

#define CONNECT_TIMEOUT_S 10           /* TCP, TLS and CONNACK together */
#define BACKOFF_MAX_S 2                /* an attempt is cheap: a broker back is used at once */
#define QUEUE_MAX (1 << 20)            /* bytes handed over and not yet written */
#define FAIL_LOG_EVERY (60 * NS_PER_SEC)
#define HOSTILE_LOG_EVERY (60 * NS_PER_SEC)
#define HOSTILE_LOG_BURST 20           /* lines a minute about dropped messages */
#define REMOTE_COALESCE_US 100000      /* remote changes reach watchers at most 10 times a second */

enum mqtt_state {
	M_WAITING,                     /* for the next attempt */
	M_RESOLVING,                   /* the connecting thread has the client */
	M_CONNECTING,                  /* socket open, no CONNACK yet */
	M_UP,
};

struct mqtt {
	struct acud *d;
	struct acu_mqtt_cfg cfg;
	struct mosquitto *mosq;
	enum mqtt_state state;
	pthread_t thread;
	int pipe[2];                   /* the connecting thread's "done" */
	int thread_rc, thread_errno;
	struct event *thread_ev, *rd, *wr, *tick, *retry, *remote_ev;
	int64_t attempt_mono;
	int backoff_s;
	char failed[256];              /* set in a callback: the connection ends after it */
	size_t queued;                 /* bytes published since the queue was last empty */
	int64_t down_mono;             /* when the connection was lost; 0: never up */
	struct mqtt_ratelimit fail_rl, hostile_rl;
	char last_fail[256];
	struct subscriber sub;
	struct mqtt_remote remote;
	struct mqtt *retired;          /* the next retired client (below) */
	char status_topic[MQTT_TOPIC_MAX], ha_status_topic[MQTT_TOPIC_MAX];
};

static void attempt(struct mqtt *m);
static void release(struct mqtt *m);

/* Clients whose connecting thread still ran when [mqtt] changed: each is
 * freed when its thread ends (thread_cb), or joined at exit, for the thread
 * is inside libmosquitto and OpenSSL, which the exit handlers tear down. */
static struct mqtt *retired;
static int lib_ready;

static int64_t wall_now(void)
{
	return acu_now().wall;
}

/* --- the connection's life ------------------------------------------------------ */

/* The same failure again within a minute is not logged again. */
static void log_failure(struct mqtt *m, const char *why)
{
	long held;

	if (strcmp(why, m->last_fail) != 0)
		m->fail_rl.n = 0;
	held = mqtt_ratelimit(&m->fail_rl, acu_mono_now(), FAIL_LOG_EVERY, 1);
	if (held < 0)
		return;
	snprintf(m->last_fail, sizeof m->last_fail, "%s", why);
	log_warnx("mqtt: %s:%d: %s; retrying in %d s%s", m->cfg.host, m->cfg.port, why,
		  m->backoff_s, held ? " (repeated)" : "");
}

static void remote_changed(struct mqtt *m)
{
	const struct timeval tv = { 0, REMOTE_COALESCE_US };

	if (m->remote_ev && !evtimer_pending(m->remote_ev, NULL))
		evtimer_add(m->remote_ev, &tv);
}

/* Closes the client (its socket with it) and schedules the next attempt. */
static void drop(struct mqtt *m, const char *why)
{
	struct timeval tv;

	if (m->rd) {
		event_free(m->rd);
		m->rd = NULL;
	}
	if (m->wr) {
		event_free(m->wr);
		m->wr = NULL;
	}
	if (m->mosq) {
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	if (m->state == M_UP) {
		m->down_mono = acu_mono_now();
		log_warnx("mqtt: connection to %s:%d lost: %s", m->cfg.host, m->cfg.port, why);
		m->last_fail[0] = '\0';
		m->backoff_s = 1;
	} else {
		m->backoff_s = m->backoff_s ? m->backoff_s * 2 : 1;
		if (m->backoff_s > BACKOFF_MAX_S)
			m->backoff_s = BACKOFF_MAX_S;
		log_failure(m, why);
	}
	m->state = M_WAITING;
	m->queued = 0;
	m->failed[0] = '\0';
	mqtt_remote_all_down(&m->remote, wall_now());
	remote_changed(m);
	tv.tv_sec = m->backoff_s;
	tv.tv_usec = 0;
	evtimer_add(m->retry, &tv);
}

/* After every call into libmosquitto: a failure a callback noted ends the
 * connection; otherwise the socket is watched for writing while there is
 * something to write. */
static void settle(struct mqtt *m)
{
	if (m->failed[0]) {
		char why[sizeof m->failed];

		snprintf(why, sizeof why, "%s", m->failed);
		drop(m, why);
		return;
	}
	if (!m->mosq || !m->wr)
		return;
	if (mosquitto_want_write(m->mosq)) {
		event_add(m->wr, NULL);
	} else {
		event_del(m->wr);
		m->queued = 0;
	}
}

static void fail(struct mqtt *m, const char *why, int rc)
{
	if (m->failed[0])
		return;
	if (rc == MOSQ_ERR_ERRNO)
		snprintf(m->failed, sizeof m->failed, "%s: %s", why, strerror(errno));
	else
		snprintf(m->failed, sizeof m->failed, "%s: %s", why, mosquitto_strerror(rc));
}

/* Hands one message to libmosquitto (QoS 0: a lost one is published again
 * with everything else at the next connection). */
static void pub(struct mqtt *m, const char *topic, const void *payload, size_t len, int retain)
{
	int rc;

	if (m->state != M_UP || m->failed[0])
		return;
	m->queued += len + strlen(topic);
	if (m->queued > QUEUE_MAX) {
		snprintf(m->failed, sizeof m->failed, "broker not reading: %zu bytes queued",
			 m->queued);
		return;
	}
	rc = mosquitto_publish(m->mosq, NULL, topic, (int)len, payload, 0, retain);
	if (rc != MOSQ_ERR_SUCCESS)
		fail(m, "publish", rc);
}

static void pub_json(struct mqtt *m, const char *topic, json_t *v, int retain)
{
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;

	if (text)
		pub(m, topic, text, strlen(text), retain);
	free(text);
}

/* --- what is published ------------------------------------------------------------ */

static void pub_room(struct mqtt *m, const struct acu_room *r, json_t *room)
{
	char topic[MQTT_TOPIC_MAX];
	json_t *p;

	if (mqtt_topic(topic, sizeof topic, m->cfg.prefix, m->cfg.board, "room", r->cfg->id) < 0)
		return;
	p = mqtt_room_payload(room, m->cfg.publish_patient);
	pub_json(m, topic, p, 1);
	json_decref(p);
}

static void pub_room_now(struct mqtt *m, const struct acu_room *r)
{
	struct acu_now now = acu_now();
	json_t *room = roomjson_cached(m->d, r, &now);

	pub_room(m, r, room);
	json_decref(room);
}

/* Empty and retained: the broker forgets the topic. */
static void pub_forget(struct mqtt *m, const char *topic)
{
	pub(m, topic, "", 0, 1);
}

static void pub_discovery(struct mqtt *m, const struct acu_room_cfg *rc, int forget)
{
	json_t *list = mqtt_discovery(&m->cfg, rc->id, rc->name), *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *topic = json_string_value(json_object_get(e, "topic"));

		if (forget)
			pub_forget(m, topic);
		else
			pub_json(m, topic, json_object_get(e, "payload"), 1);
	}
	json_decref(list);
}

/* Everything retained, at every connection: the broker may have restarted
 * without its store. */
static void pub_all(struct mqtt *m)
{
	struct acud *d = m->d;

	pub(m, m->status_topic, "online", 6, 1);
	for (int i = 0; i < d->nrooms; i++)
		pub_room_now(m, &d->rooms[i]);
	if (m->cfg.discovery)
		for (int i = 0; i < d->nrooms; i++)
			pub_discovery(m, d->rooms[i].cfg, 0);
}

/* The publisher's subscriber: room and gate changes retain the room's
 * object; alarms go out as they happen. */
static void published(void *arg, enum publish_kind kind, json_t *event)
{
	struct mqtt *m = arg;
	char topic[MQTT_TOPIC_MAX];
	struct acu_room *r;
	json_t *ev;

	if (m->state != M_UP)
		return;
	switch (kind) {
	case PUBLISH_ROOM: {
		json_t *room = json_object_get(event, "room");

		r = commit_room(m->d, json_string_value(json_object_get(room, "id")));
		if (r)
			pub_room(m, r, room);
		break;
	}
	case PUBLISH_GATE:
		r = commit_room(m->d, json_string_value(json_object_get(event, "room")));
		if (r)
			pub_room_now(m, r);
		break;
	case PUBLISH_ALARM:
		if (mqtt_topic(topic, sizeof topic, m->cfg.prefix, m->cfg.board, "alarm", NULL) < 0)
			break;
		ev = json_copy(event);
		json_object_set_new(ev, "board", json_string(m->cfg.board));
		pub_json(m, topic, ev, 0);
		json_decref(ev);
		break;
	default: /* other boards' rooms are not ours to publish */
		break;
	}
	settle(m);
}

/* --- what is received ------------------------------------------------------------- */

static void hostile(struct mqtt *m, const char *topic, const char *why)
{
	long held = mqtt_ratelimit(&m->hostile_rl, acu_mono_now(), HOSTILE_LOG_EVERY,
				   HOSTILE_LOG_BURST);

	if (held < 0)
		return;
	log_warnx("mqtt: dropped a message on %.160s: %s%s", topic, why,
		  held ? " (more were dropped unlogged before it)" : "");
}

static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg)
{
	struct mqtt *m = arg;
	char board[ACU_ID_MAX + 1], id[ACU_ID_MAX + 1], why[160];
	enum mqtt_topic_kind k;
	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	json_t *room;
	int live;

	(void)mosq;
	if (strcmp(msg->topic, m->ha_status_topic) == 0) {
		/* Home Assistant started: it wants the configs again. */
		if (m->cfg.discovery && len == 6 && memcmp(msg->payload, "online", 6) == 0)
			for (int i = 0; i < m->d->nrooms; i++)
				pub_discovery(m, m->d->rooms[i].cfg, 0);
		return;
	}
	if (!m->cfg.remote)
		return;
	k = mqtt_topic_parse(msg->topic, m->cfg.prefix, board, id);
	if (k == MQTT_T_BAD) {
		hostile(m, msg->topic, "not PREFIX/BOARD/status or PREFIX/BOARD/room/ID");
		return;
	}
	if (strcmp(board, m->cfg.board) == 0)
		return; /* our own, as the broker has it */
	if (k == MQTT_T_STATUS) {
		live = len ? mqtt_remote_status(msg->payload, len) : -1;
		if (len && live < 0) {
			hostile(m, msg->topic, "status is neither online nor offline");
			return;
		}
		if (mqtt_remote_set_live(&m->remote, board, live, wall_now()) < 0)
			hostile(m, msg->topic, "more than 32 other boards");
		remote_changed(m);
		return;
	}
	room = NULL;
	if (len) {
		room = mqtt_remote_room(msg->payload, len, id, why, sizeof why);
		if (!room) {
			hostile(m, msg->topic, why);
			return;
		}
	}
	if (mqtt_remote_put(&m->remote, board, id, room, wall_now()) < 0)
		hostile(m, msg->topic, "too many rooms from other boards");
	remote_changed(m);
}

/* Watchers hear each changed board whole: {"event":"remote", ...}. */
static void remote_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt *m = arg;
	int64_t wall = wall_now();

	(void)fd;
	(void)what;
	for (int i = 0; i < m->remote.n; i++) {
		struct mqtt_rboard *b = &m->remote.boards[i];
		json_t *ev;

		if (!b->dirty)
			continue;
		b->dirty = 0;
		ev = mqtt_remote_board_json(b, wall);
		json_object_set_new(ev, "event", json_string("remote"));
		publish(m->d, PUBLISH_REMOTE, ev);
	}
}

json_t *mqtt_remote_json(struct acud *d)
{
	struct mqtt *m = d->mqtt;
	json_t *a;
	int64_t wall = wall_now();

	if (!m || !m->cfg.remote)
		return NULL;
	a = json_array();
	for (int i = 0; i < m->remote.n; i++)
		json_array_append_new(a, mqtt_remote_board_json(&m->remote.boards[i], wall));
	return a;
}

/* --- libmosquitto's callbacks and the loop's events --------------------------------- */

static void on_connect(struct mosquitto *mosq, void *arg, int rc)
{
	struct mqtt *m = arg;
	char topic[MQTT_TOPIC_MAX];

	(void)mosq;
	if (rc != 0) {
		/* Wrong credentials, a certificate refused, a client id banned:
		 * said plainly, and tried again (the broker's admin may fix it). */
		snprintf(m->failed, sizeof m->failed, "broker refused the connection: %s%s",
			 mosquitto_connack_string(rc),
			 rc == 4 || rc == 5 ? " (check username and password_file, and the ACL)" : "");
		return;
	}
	if (m->down_mono)
		log_notice("mqtt: connected again to %s:%d as board %s after %lld s", m->cfg.host,
			   m->cfg.port, m->cfg.board,
			   (long long)((acu_mono_now() - m->down_mono) / NS_PER_SEC));
	else
		log_notice("mqtt: connected to %s:%d as board %s", m->cfg.host, m->cfg.port,
			   m->cfg.board);
	m->state = M_UP;
	m->backoff_s = 0;
	m->last_fail[0] = '\0';
	if (m->cfg.discovery)
		mosquitto_subscribe(m->mosq, NULL, m->ha_status_topic, 0);
	if (m->cfg.remote) {
		/* Rooms and status only: acud subscribes to nothing that could act. */
		snprintf(topic, sizeof topic, "%s/+/room/+", m->cfg.prefix);
		mosquitto_subscribe(m->mosq, NULL, topic, 0);
		snprintf(topic, sizeof topic, "%s/+/status", m->cfg.prefix);
		mosquitto_subscribe(m->mosq, NULL, topic, 0);
	}
	pub_all(m);
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
	struct mqtt *m = arg;

	(void)mosq;
	if (!m->failed[0])
		snprintf(m->failed, sizeof m->failed, "%s",
			 rc == MOSQ_ERR_KEEPALIVE ? "no answer within the keepalive" :
			 rc ? mosquitto_strerror(rc) : "disconnected");
}

/* Before the CONNACK: a refused or reset connect. libmosquitto 2.0 would
 * leave it to the keepalive, its TLS handshake retrying the dead socket at
 * every wake-up meanwhile; the socket's error, or its end seen by a peek,
 * says it at once. */
static int connect_failed(struct mqtt *m, evutil_socket_t fd)
{
	int e = 0;
	socklen_t len = sizeof e;
	char c;
	ssize_t n;

	if (m->state != M_CONNECTING)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (!e) {
		n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			e = ECONNRESET;
		else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			 errno != ENOTCONN)
			e = errno;
	}
	if (!e)
		return 0;
	if (!m->failed[0])
		snprintf(m->failed, sizeof m->failed, "cannot connect: %s",
			 e == ECONNRESET ? "refused or closed by the other side" : strerror(e));
	settle(m);
	return 1;
}

/* The socket's read and write events: libmosquitto's loop_read or
 * loop_write, as the event says. */
static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt *m = arg;
	int rc;

	if (connect_failed(m, fd))
		return;
	rc = what & EV_READ ? mosquitto_loop_read(m->mosq, 1) : mosquitto_loop_write(m->mosq, 1);
	if (rc != MOSQ_ERR_SUCCESS)
		fail(m, what & EV_READ ? "read" : "write", rc);
	settle(m);
}

/* Once a second: keepalive pings, and the bound on an attempt. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt *m = arg;
	int rc;

	(void)fd;
	(void)what;
	if (m->state == M_CONNECTING &&
	    acu_mono_now() - m->attempt_mono > CONNECT_TIMEOUT_S * NS_PER_SEC) {
		char why[64];

		snprintf(why, sizeof why, "no answer from the broker within %d s",
			 CONNECT_TIMEOUT_S);
		drop(m, why);
		return;
	}
	if (m->state != M_CONNECTING && m->state != M_UP)
		return;
	rc = mosquitto_loop_misc(m->mosq);
	if (rc != MOSQ_ERR_SUCCESS)
		fail(m, "keepalive", rc);
	settle(m);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	attempt(arg);
}

/* --- connecting, off the loop -------------------------------------------------------- */

static void *connect_thread(void *arg)
{
	struct mqtt *m = arg;
	char done = 1;

	m->thread_rc = mosquitto_connect_async(m->mosq, m->cfg.host, m->cfg.port,
					       m->cfg.keepalive);
	m->thread_errno = errno;
	while (write(m->pipe[1], &done, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/* The thread has ended: the client is the loop's again. */
static void thread_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt *m = arg;
	char buf[8];

	(void)what;
	while (read(fd, buf, sizeof buf) < 0 && errno == EINTR)
		;
	pthread_join(m->thread, NULL);
	if (m->state == M_RESOLVING && m->d->mqtt != m) {
		/* Retired by a reload while it connected. */
		for (struct mqtt **p = &retired; *p; p = &(*p)->retired)
			if (*p == m) {
				*p = m->retired;
				break;
			}
		release(m);
		return;
	}
	if (m->thread_rc != MOSQ_ERR_SUCCESS) {
		int e = m->thread_errno;

		errno = e;
		fail(m, "cannot connect", m->thread_rc);
		/* The unit's sandbox without the drop-in: say what to do. */
		if (m->thread_rc == MOSQ_ERR_EAI ||
		    (m->thread_rc == MOSQ_ERR_ERRNO &&
		     (e == EAFNOSUPPORT || e == ENETUNREACH || e == EPERM || e == EACCES)))
			snprintf(m->failed + strlen(m->failed), sizeof m->failed - strlen(m->failed),
				 " (under systemd: is the network drop-in acud-mqtt.conf in "
				 "place? see acud.conf(5))");
		settle(m);
		return;
	}
	log_debug("mqtt: connecting to %s:%d (socket %d)", m->cfg.host, m->cfg.port,
		  mosquitto_socket(m->mosq));
	m->state = M_CONNECTING;
	m->rd = event_new(m->d->base, mosquitto_socket(m->mosq), EV_READ | EV_PERSIST, io_cb, m);
	m->wr = event_new(m->d->base, mosquitto_socket(m->mosq), EV_WRITE, io_cb, m);
	if (!m->rd || !m->wr)
		fatalx("cannot create the mqtt events");
	event_priority_set(m->rd, ACU_PRIO_CLIENT);
	event_priority_set(m->wr, ACU_PRIO_CLIENT);
	event_add(m->rd, NULL);
	settle(m);
}

/* The secret stays on disk but for the moment it is handed over. */
static int read_password(const char *path, char *buf, size_t len, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd < 0) {
		snprintf(why, whylen, "password_file %.300s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "password_file %.300s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0]) {
		snprintf(why, whylen, "password_file %.300s: empty", path);
		return -1;
	}
	return 0;
}

static int setup_client(struct mqtt *m, char *why, size_t whylen)
{
	const struct acu_mqtt_cfg *c = &m->cfg;
	char id[ACU_ID_MAX + 8], password[512];
	int rc;

	snprintf(id, sizeof id, "acud-%s", c->board);
	m->mosq = mosquitto_new(id, true, m);
	if (!m->mosq) {
		snprintf(why, whylen, "mosquitto_new: %s", strerror(errno));
		return -1;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	rc = mosquitto_will_set(m->mosq, m->status_topic, 7, "offline", 1, true);
	if (rc == MOSQ_ERR_SUCCESS && c->username[0]) {
		if (c->password_file[0] &&
		    read_password(c->password_file, password, sizeof password, why, whylen) < 0)
			return -1;
		rc = mosquitto_username_pw_set(m->mosq, c->username,
					       c->password_file[0] ? password : NULL);
		explicit_bzero(password, sizeof password);
	}
	if (rc == MOSQ_ERR_SUCCESS && c->tls) {
		if (!c->ca_file[0])
			rc = mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		if (rc == MOSQ_ERR_SUCCESS && (c->ca_file[0] || c->cert_file[0]))
			rc = mosquitto_tls_set(m->mosq, c->ca_file[0] ? c->ca_file : NULL,
					       c->ca_file[0] ? NULL : "/etc/ssl/certs",
					       c->cert_file[0] ? c->cert_file : NULL,
					       c->key_file[0] ? c->key_file : NULL, NULL);
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(why, whylen, "client setup: %s", mosquitto_strerror(rc));
		return -1;
	}
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_message_callback_set(m->mosq, on_message);
	return 0;
}

static void attempt(struct mqtt *m)
{
	char why[512];
	sigset_t all, old;
	int rc;

	m->attempt_mono = acu_mono_now();
	if (setup_client(m, why, sizeof why) < 0) {
		drop(m, why);
		return;
	}
	/* Signals stay with the loop's thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&m->thread, NULL, connect_thread, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(why, sizeof why, "cannot start the connecting thread: %s", strerror(rc));
		drop(m, why);
		return;
	}
	m->state = M_RESOLVING;
}

/* --- the daemon's side ---------------------------------------------------------------- */

static struct mqtt *mqtt_new(struct acud *d)
{
	struct mqtt *m = xcalloc(1, sizeof *m);

	m->d = d;
	m->cfg = d->cfg->mqtt;
	mqtt_topic(m->status_topic, sizeof m->status_topic, m->cfg.prefix, m->cfg.board, "status",
		   NULL);
	snprintf(m->ha_status_topic, sizeof m->ha_status_topic, "%s/status",
		 m->cfg.discovery_prefix);
	if (pipe2(m->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("mqtt: pipe");
	m->thread_ev = event_new(d->base, m->pipe[0], EV_READ | EV_PERSIST, thread_cb, m);
	m->tick = event_new(d->base, -1, EV_PERSIST, tick_cb, m);
	m->retry = evtimer_new(d->base, retry_cb, m);
	m->remote_ev = evtimer_new(d->base, remote_cb, m);
	if (!m->thread_ev || !m->tick || !m->retry || !m->remote_ev)
		fatalx("cannot create the mqtt events");
	event_priority_set(m->thread_ev, ACU_PRIO_CLIENT);
	event_priority_set(m->tick, ACU_PRIO_CLIENT);
	event_priority_set(m->retry, ACU_PRIO_CLIENT);
	event_priority_set(m->remote_ev, ACU_PRIO_CLIENT);
	event_add(m->thread_ev, NULL);
	{
		const struct timeval second = { 1, 0 };

		event_add(m->tick, &second);
	}
	m->sub.fn = published;
	m->sub.arg = m;
	publish_subscribe(d, &m->sub);
	log_info("mqtt: publishing to %s://%s:%d as %s/%s", m->cfg.tls ? "mqtts" : "mqtt",
		 m->cfg.host, m->cfg.port, m->cfg.prefix, m->cfg.board);
	attempt(m);
	return m;
}


/* Everything of m; its thread, if any, has been joined. */
static void release(struct mqtt *m)
{
	if (m->rd)
		event_free(m->rd);
	if (m->wr)
		event_free(m->wr);
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	event_free(m->thread_ev);
	close(m->pipe[0]);
	close(m->pipe[1]);
	free(m);
}

/* A clean stop says offline (the last will is for the other kind). */
static void mqtt_free(struct mqtt *m, int at_exit)
{
	publish_unsubscribe(m->d, &m->sub);
	event_free(m->tick);
	event_free(m->retry);
	event_free(m->remote_ev);
	m->tick = m->retry = m->remote_ev = NULL;
	mqtt_remote_clear(&m->remote);
	if (m->state == M_RESOLVING) {
		if (!at_exit) {
			m->retired = retired;
			retired = m;
			return;
		}
		/* Outputs are off and the state saved: the wait is the resolver's
		 * timeout at most (TimeoutStopSec= bounds it too). */
		log_info("mqtt: waiting for the connection attempt to %s to end", m->cfg.host);
		pthread_join(m->thread, NULL);
	}
	if (m->state == M_UP) {
		pub(m, m->status_topic, "offline", 7, 1);
		mosquitto_disconnect(m->mosq);
		/* Whatever the socket takes at once; a stalled broker gets no more. */
		mosquitto_loop_write(m->mosq, 1);
	}
	release(m);
}

void mqtt_open(struct acud *d)
{
	if (!d->cfg->mqtt.on)
		return;
	if (!lib_ready) {
		mosquitto_lib_init();
		lib_ready = 1;
	}
	d->mqtt = mqtt_new(d);
}

void mqtt_close(struct acud *d)
{
	if (d->mqtt)
		mqtt_free(d->mqtt, 1);
	d->mqtt = NULL;
	while (retired) {
		struct mqtt *m = retired;

		retired = m->retired;
		log_info("mqtt: waiting for the connection attempt to %s to end", m->cfg.host);
		pthread_join(m->thread, NULL);
		release(m);
	}
	if (lib_ready)
		mosquitto_lib_cleanup();
	lib_ready = 0;
}

void mqtt_reload(struct acud *d, const struct acu_cfg *old_cfg)
{
	struct mqtt *m = d->mqtt;

	if (!m) {
		mqtt_open(d);
		return;
	}
	/* Rooms that left the config leave the broker too, where they were
	 * published (before a changed [mqtt] moves elsewhere). */
	for (int i = 0; i < old_cfg->nrooms; i++) {
		char topic[MQTT_TOPIC_MAX];

		if (cfg_room(d->cfg, old_cfg->rooms[i].id))
			continue;
		if (mqtt_topic(topic, sizeof topic, m->cfg.prefix, m->cfg.board, "room",
			       old_cfg->rooms[i].id) == 0)
			pub_forget(m, topic);
		if (m->cfg.discovery)
			pub_discovery(m, &old_cfg->rooms[i], 1);
	}
	if (!cfg_mqtt_same(&m->cfg, &d->cfg->mqtt)) {
		log_notice("mqtt: [mqtt] changed: a new connection");
		mqtt_free(m, 0);
		d->mqtt = NULL;
		mqtt_open(d);
		return;
	}
	/* Names may have changed, rooms may have come. */
	if (m->state == M_UP)
		pub_all(m);
	settle(m);
}

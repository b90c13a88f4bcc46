/* The front desk's web board (SPEC §10): libevent's evhttp on [web] listen or
 * on sockets systemd passed (sd_listen_fds' protocol, written from systemd's
 * documentation). GET / (the page, built into the binary), GET /api/status
 * and GET /events (Server-Sent Events fed by the publisher). Nothing here can
 * change a session, a gate or an alarm.
 *
 * evhttp 2.1 tells nobody when a connection it accepted goes away before a
 * request, so every connection's bufferevent is made here (evhttp_set_bevcb)
 * and kept with a reference of its own: evhttp's bufferevent_free clears its
 * callbacks, and a sweep then drops the last reference, which closes the
 * socket. That gives a count to cap, and a deadline for requests that never
 * finish (one byte every few seconds would outlive evhttp's idle timeout). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "daemon.h"
#include "mqtt.h"
#include "web.h"

/* The page (web/board.html), made into a C array by the Makefile. */
extern const unsigned char web_board_html[];
extern const unsigned long web_board_html_len;

#define NS 1000000000LL
/* Requests: headers, body (GET has none), and what a connection may have sent
 * unread (pipelined requests, or anything an event stream's client sends). */
#define HEADERS_MAX 8192
#define BODY_MAX 1024
#define INPUT_MAX (16 * 1024)
/* A connection idle this long is closed (evhttp), and one whose request is
 * not complete this long after the connection or its previous request is
 * shut down (the sweep). */
#define IDLE_S 10
#define REQUEST_DEADLINE_NS (15 * NS)
/* Connections besides event streams: page loads and API calls. */
#define OTHER_CONNS_MAX 64
/* Descriptors kept free for the daemon's own files and the control socket. */
#define FD_RESERVE 64
/* Event streams: a client may hold this much unread, all of them together
 * TOTAL; past that the client is dropped (the largest backlog first). The
 * kernel's send buffer is kept small too, so a silent client is found soon. */
#define CLIENT_BACKLOG_MAX (128 * 1024)
#define BACKLOG_TOTAL_MAX (4 * 1024 * 1024)
#define STREAM_SNDBUF (32 * 1024)
/* A stream whose socket takes nothing for this long is dropped. */
#define STREAM_STALL_S 30
/* A change goes out to this many streams per callback, so that a pulse or a
 * cut-off due meanwhile runs between batches (make bench's P7). */
#define FLUSH_BATCH 8
/* Messages not yet written to every stream; past this all go out at once. */
#define QUEUE_MAX (1024 * 1024)
#define KEEPALIVE_S 15
#define RETRY_MS 2000
#define BOUND_MAX 8

struct web_conn {
	struct bufferevent *bev;       /* our reference; evhttp's is gone when its callbacks are */
	int64_t since;                 /* accepted, or its last request read (monotonic) */
	int stream;                    /* an event stream's: no request deadline */
	int cut;                       /* shut down by the sweep already */
	LIST_ENTRY(web_conn) entry;
};

/* A message on its way to every stream. */
struct web_msg {
	uint64_t seq;
	size_t len;
	STAILQ_ENTRY(web_msg) entry;
	char text[];
};

struct web_client {
	struct web *w;
	uint64_t next_seq;             /* the first message it has not been given */
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	LIST_ENTRY(web_client) entry;
};

struct web {
	struct acud *d;
	struct evhttp *http;
	struct evhttp_bound_socket *bound[BOUND_MAX];
	int nbound;
	LIST_HEAD(, web_conn) conns;
	int nconns;
	LIST_HEAD(, web_client) clients;
	int nclients;
	struct event *sweep;
	struct event *keepalive;
	struct event *resume;          /* accepting again after EMFILE */
	struct event *flush;           /* queued messages go out, FLUSH_BATCH streams a call */
	STAILQ_HEAD(, web_msg) queue;  /* oldest first */
	uint64_t seq;                  /* the last message queued */
	size_t queued;                 /* bytes in the queue */
	struct evbuffer *scratch;
	struct subscriber sub;
	unsigned long refused, dropped;
	int64_t refused_logged, dropped_logged;
};

/* One board per process: the listeners' error callback gets evhttp's
 * argument, not ours. */
static struct web *web_current;

static int64_t wall_ms(void)
{
	return acu_now().wall / 1000000;
}

/* Logged at most once a second per kind, with how many since. */
static int rate_ok(int64_t *last, unsigned long *count)
{
	int64_t now = acu_mono_now();

	(*count)++;
	if (*last && now - *last < NS)
		return 0;
	*last = now;
	return 1;
}

/* --- connections -------------------------------------------------------------- */

static void sweep_soon(struct web *w, int64_t after_ns)
{
	struct timeval tv = { (time_t)(after_ns / NS), (suseconds_t)(after_ns % NS / 1000) };

	event_add(w->sweep, &tv);
}

/* Releases connections evhttp is done with; shuts down requests past their
 * deadline. Returns whether connections other than streams remain. */
static int sweep_conns(struct web *w, int64_t now)
{
	struct web_conn *c, *next;
	int others = 0;

	for (c = LIST_FIRST(&w->conns); c; c = next) {
		bufferevent_event_cb ecb = NULL;

		next = LIST_NEXT(c, entry);
		bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
		if (!ecb) {
			LIST_REMOVE(c, entry);
			w->nconns--;
			bufferevent_decref(c->bev); /* the last reference: the socket closes */
			free(c);
			continue;
		}
		if (!c->stream) {
			others = 1;
			if (!c->cut && now - c->since > REQUEST_DEADLINE_NS) {
				/* evhttp reads the end of the stream and lets it go. */
				shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
				c->cut = 1;
			}
		}
	}
	return others;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;

	(void)fd;
	(void)what;
	if (sweep_conns(w, acu_mono_now()))
		sweep_soon(w, NS);
}

static struct web_conn *conn_of(struct web *w, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;

	struct web_conn *c;

	LIST_FOREACH(c, &w->conns, entry)
		if (c->bev == bev)
			return c;
	return NULL;
}

/* Whether FD_RESERVE more descriptors could be opened. */
static int fd_headroom(struct web *w)
{
	int lfd = w->nbound ? evhttp_bound_socket_get_fd(w->bound[0]) : 0;
	int low = fcntl(lfd, F_DUPFD_CLOEXEC, 0), probe;

	if (low < 0)
		return 0;
	probe = fcntl(lfd, F_DUPFD_CLOEXEC, low + FD_RESERVE);
	close(low);
	if (probe < 0)
		return 0;
	close(probe);
	return 1;
}

/* evhttp asks for each accepted connection's bufferevent. Over the cap it
 * gets one that cannot take the socket (one end of a pair), so evhttp closes
 * the connection at once. */
static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	struct web *w = arg;
	struct bufferevent *bev, *pair[2];
	struct web_conn *c;

	sweep_conns(w, acu_mono_now());
	if (w->nconns >= w->d->cfg->web.max_clients + OTHER_CONNS_MAX || !fd_headroom(w)) {
		if (rate_ok(&w->refused_logged, &w->refused)) {
			log_warnx("web: %d connections open or descriptors short: %lu connection%s "
				  "refused", w->nconns, w->refused, w->refused == 1 ? "" : "s");
			w->refused = 0;
		}
		if (bufferevent_pair_new(base, 0, pair) == 0) {
			bufferevent_free(pair[1]);
			return pair[0];
		}
		fatalx("web: cannot make a bufferevent");
	}
	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		fatalx("web: cannot make a bufferevent");
	bufferevent_priority_set(bev, ACU_PRIO_CLIENT);
	bufferevent_setwatermark(bev, EV_READ, 0, INPUT_MAX);
	bufferevent_incref(bev);
	c = xcalloc(1, sizeof *c);
	c->bev = bev;
	c->since = acu_mono_now();
	LIST_INSERT_HEAD(&w->conns, c, entry);
	w->nconns++;
	if (!event_pending(w->sweep, EV_TIMEOUT, NULL))
		sweep_soon(w, NS);
	return bev;
}

/* --- event streams -------------------------------------------------------------- */

static void client_unlink(struct web_client *c)
{
	struct web *w = c->w;

	LIST_REMOVE(c, entry);
	w->nclients--;
	if (!w->nclients)
		event_del(w->keepalive);
}

/* evhttp is freeing the connection (the client left, or it was dropped). */
static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct web_client *c = arg;
	struct web *w = c->w;

	(void)evcon;
	client_unlink(c);
	/* A request evhttp let go of (the client left) is ours to free; one still
	 * on its connection goes with it. */
	if (!evhttp_request_get_connection(c->req))
		evhttp_send_reply_end(c->req);
	free(c);
	sweep_soon(w, 0);
}

static size_t client_backlog(const struct web_client *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Slow and silent clients go, the largest backlog first, so that the others
 * and the loop never wait for them. */
static void drop_slow(struct web *w)
{
	for (;;) {
		size_t backlog[ACU_WEB_CLIENTS_MAX + OTHER_CONNS_MAX];
		struct web_client *c, *victim = NULL;
		int n = 0, pick;

		LIST_FOREACH(c, &w->clients, entry) {
			if (n == (int)(sizeof backlog / sizeof backlog[0]))
				break;
			backlog[n++] = client_backlog(c);
		}
		pick = web_drop_pick(backlog, n, CLIENT_BACKLOG_MAX, BACKLOG_TOTAL_MAX);
		if (pick < 0)
			return;
		for (c = LIST_FIRST(&w->clients); pick-- > 0; c = LIST_NEXT(c, entry))
			;
		victim = c;
		if (rate_ok(&w->dropped_logged, &w->dropped)) {
			char *addr = NULL;
			ev_uint16_t port = 0;

			evhttp_connection_get_peer(victim->evcon, &addr, &port);
			log_warnx("web: event-stream client %s port %u dropped: %zu bytes unread (%lu "
				  "dropped since last logged)", addr ? addr : "?", (unsigned)port,
				  client_backlog(victim), w->dropped);
			w->dropped = 0;
		}
		/* stream_closed unlinks it. */
		evhttp_connection_free(victim->evcon);
	}
}

/* Gives up to max streams (all: -1) what was queued since they were last
 * given anything, in one chunk each; returns whether any is still behind. */
static int flush_some(struct web *w, int max)
{
	struct web_client *c;
	struct web_msg *m;
	int behind = 0;

	LIST_FOREACH(c, &w->clients, entry) {
		if (c->next_seq > w->seq)
			continue;
		if (max == 0) {
			behind = 1;
			break;
		}
		STAILQ_FOREACH(m, &w->queue, entry)
			if (m->seq >= c->next_seq)
				evbuffer_add(w->scratch, m->text, m->len);
		evhttp_send_reply_chunk(c->req, w->scratch);
		evbuffer_drain(w->scratch, evbuffer_get_length(w->scratch));
		c->next_seq = w->seq + 1;
		if (max > 0)
			max--;
	}
	drop_slow(w);
	/* What every stream has been given is let go. */
	{
		uint64_t low = w->seq + 1;

		LIST_FOREACH(c, &w->clients, entry)
			if (c->next_seq < low)
				low = c->next_seq;
		while ((m = STAILQ_FIRST(&w->queue)) && m->seq < low) {
			STAILQ_REMOVE_HEAD(&w->queue, entry);
			w->queued -= m->len;
			free(m);
		}
	}
	return behind;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;

	(void)fd;
	(void)what;
	/* Back to the end of the queue: timers due meanwhile run first. */
	if (flush_some(w, FLUSH_BATCH))
		event_active(w->flush, EV_TIMEOUT, 0);
}

static void broadcast(struct web *w, const char *text, size_t len)
{
	struct web_msg *m = xmalloc(sizeof *m + len);

	m->seq = ++w->seq;
	m->len = len;
	memcpy(m->text, text, len);
	STAILQ_INSERT_TAIL(&w->queue, m, entry);
	w->queued += len;
	if (w->queued > QUEUE_MAX)
		flush_some(w, -1);
	else
		event_active(w->flush, EV_TIMEOUT, 0);
}

/* One SSE message: "event: NAME" and the JSON on one data line (compact
 * JSON has no raw newline). Returns the text (free it) or NULL. */
static char *sse_message(const char *name, json_t *data, size_t *len)
{
	char *json = json_dumps(data, JSON_COMPACT), *out;
	size_t n;

	if (!json)
		return NULL;
	n = strlen(json) + strlen(name) + 20;
	out = xmalloc(n);
	*len = (size_t)snprintf(out, n, "event: %s\ndata: %s\n\n", name, json);
	free(json);
	return out;
}

/* The rooms as the desk sees them. */
static json_t *rooms_view(struct web *w)
{
	struct acu_now now = acu_now();
	json_t *rooms = json_array();

	for (int i = 0; i < w->d->nrooms; i++) {
		json_t *r = roomjson_cached(w->d, &w->d->rooms[i], &now);

		json_array_append_new(rooms, web_room_view(r, w->d->cfg->web.show_patient));
		json_decref(r);
	}
	return rooms;
}

/* One other board ({board, live, since, rooms}) with its rooms as the desk
 * sees them here: show_patient = no hides their chart codes too. */
static void remote_board_view(json_t *board, int show_patient)
{
	json_t *rooms = json_object_get(board, "rooms"), *r;
	size_t i;

	json_array_foreach(rooms, i, r)
		json_array_set_new(rooms, i, web_room_view(r, show_patient));
}

/* Other boards' rooms (MQTT, [mqtt] remote = yes); NULL when there are none. */
static json_t *remote_view(struct web *w)
{
	json_t *boards = mqtt_remote_json(w->d), *b;
	size_t i;

	json_array_foreach(boards, i, b)
		remote_board_view(b, w->d->cfg->web.show_patient);
	return boards;
}

/* The publisher's subscriber: every room, alarm and gate event, with the
 * server's clock for the page's countdowns. */
static void web_published(void *arg, enum publish_kind kind, json_t *event)
{
	struct web *w = arg;
	const char *name;
	json_t *data;
	char *text;
	size_t len;

	/* The desk's events only: input edges are the technicians' (lines --watch). */
	switch (kind) {
	case PUBLISH_ROOM: name = "room"; break;
	case PUBLISH_ALARM: name = "alarm"; break;
	case PUBLISH_GATE: name = "gate"; break;
	case PUBLISH_REMOTE: name = "remote"; break;
	default: return;
	}
	if (!w->nclients)
		return;
	/* Shallow, but for another board's rooms, which are viewed in place:
	 * the event is every subscriber's. */
	data = kind == PUBLISH_REMOTE ? json_deep_copy(event) : json_copy(event);
	if (!data)
		return;
	json_object_del(data, "event");
	if (kind == PUBLISH_ROOM)
		json_object_set_new(data, "room", web_room_view(json_object_get(event, "room"),
								w->d->cfg->web.show_patient));
	if (kind == PUBLISH_REMOTE)
		remote_board_view(data, w->d->cfg->web.show_patient);
	json_object_set_new(data, "now", json_integer(wall_ms()));
	text = sse_message(name, data, &len);
	json_decref(data);
	if (text)
		broadcast(w, text, len);
	free(text);
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;
	json_t *data = json_pack("{s:I}", "now", (json_int_t)wall_ms());
	char *text, *msg;
	size_t len;

	(void)fd;
	(void)what;
	/* The comment is the keep-alive for proxies; the ping, which a page can
	 * see, also refreshes its clock offset and tells it the stream lives. */
	text = sse_message("ping", data, &len);
	json_decref(data);
	if (text) {
		msg = xmalloc(len + 16);
		memcpy(msg, ": keep-alive\n", 13);
		memcpy(msg + 13, text, len);
		broadcast(w, msg, len + 13);
		free(msg);
	}
	free(text);
	if (sweep_conns(w, acu_mono_now()) && !event_pending(w->sweep, EV_TIMEOUT, NULL))
		sweep_soon(w, NS);
}

/* --- requests ----------------------------------------------------------------- */

/* Every response: no sniffing, no framing, no referrer, no CORS header. */
static void common_headers(struct evhttp_request *req, const char *type, const char *cache)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", cache);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
	evhttp_add_header(h, "Content-Security-Policy",
			  "default-src 'none'; connect-src 'self'; base-uri 'none'; "
			  "form-action 'none'; frame-ancestors 'none'");
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	common_headers(req, "text/plain; charset=utf-8", "no-store");
	if (code == 405)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
	if (code == 503)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "10");
	evbuffer_add_printf(b, "%s\n", text);
	/* evhttp leaves the length out of an answer to CONNECT, and the
	 * connection open: the client would wait for the idle timeout. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT) {
		char n[24];

		snprintf(n, sizeof n, "%zu", evbuffer_get_length(b));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", n);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	}
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void page_free(const void *data, size_t len, void *extra)
{
	(void)len;
	(void)extra;
	free((void *)data);
}

static void serve_page(struct web *w, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	unsigned char rnd[16];
	char nonce[33], csp[512], *page;
	size_t len;
	struct evbuffer *b;

	(void)w;
	if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
		/* Unique enough without the entropy pool: never reused by this process. */
		static uint64_t seq;
		uint64_t v = (uint64_t)acu_mono_now() ^ ((uint64_t)getpid() << 32) ^ ++seq;

		memcpy(rnd, &v, 8);
		memcpy(rnd + 8, &seq, 8);
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
	page = web_page_render((const char *)web_board_html, web_board_html_len, nonce, &len);
	if (!page) {
		reply_text(req, 500, "Internal Server Error", "out of memory");
		return;
	}
	common_headers(req, "text/html; charset=utf-8", "no-cache");
	/* The page's one script and one style sheet carry the nonce; nothing
	 * else runs or loads. */
	evhttp_remove_header(h, "Content-Security-Policy");
	snprintf(csp, sizeof csp,
		 "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; "
		 "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
		 "frame-ancestors 'none'", nonce, nonce);
	evhttp_add_header(h, "Content-Security-Policy", csp);
	b = evbuffer_new();
	/* The output buffer keeps the page until it is sent, then frees it. */
	evbuffer_add_reference(b, page, len, page_free, NULL);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void serve_status(struct web *w, struct evhttp_request *req)
{
	json_t *reply = json_pack("{s:b,s:o}", "ok", 1, "rooms", rooms_view(w));
	json_t *remote = remote_view(w);

	if (remote)
		json_object_set_new(reply, "remote", remote);
	char *text = json_dumps(reply, JSON_COMPACT);
	struct evbuffer *b = evbuffer_new();

	json_decref(reply);
	if (!text) {
		evbuffer_free(b);
		reply_text(req, 500, "Internal Server Error", "cannot encode the rooms");
		return;
	}
	common_headers(req, "application/json", "no-store");
	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
	free(text);
}

static void serve_events(struct web *w, struct evhttp_request *req, struct web_conn *conn)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct timeval stall = { STREAM_STALL_S, 0 };
	struct web_client *c;
	json_t *snap, *remote;
	char *text;
	size_t len;
	int sndbuf = STREAM_SNDBUF;

	if (w->nclients >= w->d->cfg->web.max_clients) {
		if (rate_ok(&w->refused_logged, &w->refused)) {
			log_warnx("web: %d event-stream clients, the [web] max_clients: %lu refused",
				  w->nclients, w->refused);
			w->refused = 0;
		}
		reply_text(req, 503, "Service Unavailable", "too many event-stream clients");
		return;
	}
	common_headers(req, "text/event-stream; charset=utf-8", "no-store");
	/* A reverse proxy (nginx) must pass events on as they come. */
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Accel-Buffering", "no");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD || !evcon || !conn) {
		evhttp_send_reply(req, 200, "OK", NULL);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->w = w;
	c->req = req;
	c->evcon = evcon;
	c->bev = evhttp_connection_get_bufferevent(evcon);
	/* What is queued is older than the snapshot it is about to get. */
	c->next_seq = w->seq + 1;
	conn->stream = 1;
	setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	evhttp_send_reply_start(req, 200, "OK");
	/* Never an idle timeout: the stream is quiet between changes; a socket
	 * that takes nothing for STREAM_STALL_S is given up. */
	bufferevent_set_timeouts(c->bev, NULL, &stall);
	evhttp_connection_set_closecb(evcon, stream_closed, c);
	LIST_INSERT_HEAD(&w->clients, c, entry);
	if (!w->nclients++) {
		const struct timeval every = { KEEPALIVE_S, 0 };

		event_add(w->keepalive, &every);
	}
	/* The first message is every room as it is now: a page needs nothing else. */
	snap = json_pack("{s:I,s:s,s:b,s:o}", "now", (json_int_t)wall_ms(), "title",
			 w->d->cfg->web.title, "show_patient", w->d->cfg->web.show_patient,
			 "rooms", rooms_view(w));
	remote = remote_view(w);
	if (remote)
		json_object_set_new(snap, "remote", remote);
	text = sse_message("status", snap, &len);
	json_decref(snap);
	evbuffer_add_printf(w->scratch, "retry: %d\n\n", RETRY_MS);
	if (text)
		evbuffer_add(w->scratch, text, len);
	free(text);
	evhttp_send_reply_chunk(req, w->scratch);
	evbuffer_drain(w->scratch, evbuffer_get_length(w->scratch));
}

static enum web_method method_of(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		return WEB_GET;
	case EVHTTP_REQ_HEAD:
		return WEB_HEAD;
	default:
		return WEB_OTHER;
	}
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	struct web *w = arg;
	const struct acu_web_cfg *wc = &w->d->cfg->web;
	const char *names[ACU_WEB_HOSTS_MAX + 1];
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct web_conn *conn = conn_of(w, req);
	const char *path;
	char target[256];
	int nnames = 0;

	if (conn) {
		conn->since = acu_mono_now();
		conn->cut = 0;
	}
	if (wc->host[0])
		names[nnames++] = wc->host;
	for (int i = 0; i < wc->nhosts; i++)
		names[nnames++] = wc->hosts[i];
	if (!web_host_allowed(evhttp_find_header(evhttp_request_get_input_headers(req), "Host"),
			      names, nnames)) {
		reply_text(req, 421, "Misdirected Request",
			   "this board does not answer to that Host name ([web] hosts)");
		return;
	}
	path = uri ? evhttp_uri_get_path(uri) : NULL;
	/* CONNECT's target is no URI evhttp parses a path from: the target as sent. */
	if (!path || !*path) {
		snprintf(target, sizeof target, "%s", evhttp_request_get_uri(req) ?
			 evhttp_request_get_uri(req) : "");
		target[strcspn(target, "?")] = '\0';
		path = target;
	}
	switch (web_route(method_of(req), path)) {
	case WEB_PAGE:
		serve_page(w, req);
		break;
	case WEB_STATUS:
		serve_status(w, req);
		break;
	case WEB_EVENTS:
		serve_events(w, req, conn);
		break;
	case WEB_BAD_METHOD:
		reply_text(req, 405, "Method Not Allowed", "read-only: GET and HEAD only");
		break;
	case WEB_NOT_FOUND:
		reply_text(req, 404, "Not Found", "not found");
		break;
	}
}

/* --- listening ----------------------------------------------------------------- */

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < w->nbound; i++)
		evconnlistener_enable(evhttp_bound_socket_get_listener(w->bound[i]));
}

/* Out of descriptors: stop accepting for a moment rather than spin on a
 * listening socket that stays readable. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct web *w = web_current;
	struct timeval tv = { 0, 100 * 1000 };
	int e = EVUTIL_SOCKET_ERROR();

	(void)l;
	(void)arg;
	log_warnx("web: accept: %s; pausing new connections for 100 ms",
		  evutil_socket_error_to_string(e));
	for (int i = 0; i < w->nbound; i++)
		evconnlistener_disable(evhttp_bound_socket_get_listener(w->bound[i]));
	evtimer_add(w->resume, &tv);
}

/* sd_listen_fds(3)'s protocol: LISTEN_PID is this process, LISTEN_FDS sockets
 * from descriptor 3, LISTEN_FDNAMES their names (acud-web.socket names its
 * "web"; without names every socket is taken). Returns how many were taken,
 * or -1 with err. */
static int systemd_sockets(struct web *w, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char *end, namebuf[1024], *save = NULL, *name;
	long n;
	int taken = 0;

	if (!pid || !fds || strtol(pid, &end, 10) != (long)getpid() || *end)
		return 0;
	n = strtol(fds, &end, 10);
	if (*end || n <= 0 || n > 64)
		return 0;
	snprintf(namebuf, sizeof namebuf, "%s", names ? names : "");
	name = strtok_r(namebuf, ":", &save);
	for (int fd = 3; fd < 3 + n; fd++, name = name ? strtok_r(NULL, ":", &save) : NULL) {
		int type = 0, listening = 0;
		socklen_t tlen = sizeof type, llen = sizeof listening;

		if (names && (!name || strcmp(name, "web") != 0))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) < 0 || !listening) {
			snprintf(err, errlen, "web: descriptor %d from systemd is not a listening "
				 "stream socket", fd);
			return -1;
		}
		if (w->nbound == BOUND_MAX) {
			snprintf(err, errlen, "web: more than %d sockets from systemd", BOUND_MAX);
			return -1;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		evutil_make_socket_nonblocking(fd);
		w->bound[w->nbound] = evhttp_accept_socket_with_handle(w->http, fd);
		if (!w->bound[w->nbound]) {
			snprintf(err, errlen, "web: cannot listen on descriptor %d from systemd", fd);
			return -1;
		}
		w->nbound++;
		taken++;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return taken;
}

static void log_url(struct web *w, int from_systemd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[64] = "?";
	int port = 0;

	for (int i = 0; i < w->nbound; i++) {
		memset(&ss, 0, sizeof ss);
		len = sizeof ss;
		if (getsockname(evhttp_bound_socket_get_fd(w->bound[i]), (struct sockaddr *)&ss,
				&len) < 0)
			continue;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
			port = ntohs(s4->sin_port);
			log_notice("web board on http://%s:%d/%s", host, port,
				   from_systemd ? " (socket from systemd)" : "");
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
			port = ntohs(s6->sin6_port);
			log_notice("web board on http://[%s]:%d/%s", host, port,
				   from_systemd ? " (socket from systemd)" : "");
		} else {
			log_notice("web board on a socket from systemd");
		}
	}
}

struct web *web_open(struct acud *d, char *err, size_t errlen)
{
	const struct acu_web_cfg *wc = &d->cfg->web;
	struct web *w = xcalloc(1, sizeof *w);
	int n;

	err[0] = '\0';
	w->d = d;
	LIST_INIT(&w->conns);
	LIST_INIT(&w->clients);
	STAILQ_INIT(&w->queue);
	w->http = evhttp_new(d->base);
	if (!w->http)
		fatalx("web: cannot create the HTTP server");
	n = systemd_sockets(w, err, errlen);
	if (n < 0)
		goto fail;
	if (n == 0 && !wc->listen[0]) {
		evhttp_free(w->http);
		free(w);
		return NULL;
	}
	if (n == 0) {
		w->bound[0] = evhttp_bind_socket_with_handle(w->http, wc->host, (ev_uint16_t)wc->port);
		if (!w->bound[0]) {
			snprintf(err, errlen, "web: cannot listen on %s: %s", wc->listen,
				 strerror(errno));
			goto fail;
		}
		w->nbound = 1;
	} else if (wc->listen[0]) {
		log_info("web: listening on the socket%s systemd passed; listen = %s names the "
			 "board's Host only", n == 1 ? "" : "s", wc->listen);
	}
	evhttp_set_max_headers_size(w->http, HEADERS_MAX);
	evhttp_set_max_body_size(w->http, BODY_MAX);
	evhttp_set_timeout(w->http, IDLE_S);
	/* Every method reaches request_cb, which answers 405 (evhttp would say
	 * 501 for the ones it is not told of). */
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
				   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(w->http, "text/plain; charset=utf-8");
	evhttp_set_gencb(w->http, request_cb, w);
	evhttp_set_bevcb(w->http, bev_cb, w);
	w->sweep = evtimer_new(d->base, sweep_cb, w);
	w->keepalive = event_new(d->base, -1, EV_PERSIST, keepalive_cb, w);
	w->resume = evtimer_new(d->base, resume_cb, w);
	w->flush = event_new(d->base, -1, 0, flush_cb, w);
	w->scratch = evbuffer_new();
	if (!w->sweep || !w->keepalive || !w->resume || !w->flush || !w->scratch)
		fatalx("web: cannot create its events");
	event_priority_set(w->sweep, ACU_PRIO_CLIENT);
	event_priority_set(w->keepalive, ACU_PRIO_CLIENT);
	event_priority_set(w->resume, ACU_PRIO_CLIENT);
	event_priority_set(w->flush, ACU_PRIO_CLIENT);
	for (int i = 0; i < w->nbound; i++)
		evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(w->bound[i]),
					    accept_error_cb);
	web_current = w;
	w->sub.fn = web_published;
	w->sub.arg = w;
	publish_subscribe(d, &w->sub);
	log_url(w, n > 0);
	return w;
fail:
	evhttp_free(w->http);
	free(w);
	return NULL;
}

void web_close(struct web *w)
{
	struct web_conn *c;
	struct web_msg *m;

	if (!w)
		return;
	publish_unsubscribe(w->d, &w->sub);
	/* Frees every connection; stream_closed lets go of the streams. */
	evhttp_free(w->http);
	while ((c = LIST_FIRST(&w->conns))) {
		LIST_REMOVE(c, entry);
		bufferevent_decref(c->bev);
		free(c);
	}
	event_free(w->sweep);
	event_free(w->keepalive);
	event_free(w->resume);
	event_free(w->flush);
	while ((m = STAILQ_FIRST(&w->queue))) {
		STAILQ_REMOVE_HEAD(&w->queue, entry);
		free(m);
	}
	evbuffer_free(w->scratch);
	web_current = NULL;
	free(w);
}

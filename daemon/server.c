/* The control socket (SPEC §6): JSON lines over a SOCK_STREAM Unix socket, one
 * bufferevent per client, peer credentials for roles, and watchers that are
 * dropped rather than allowed to grow memory. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "server.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* Output held for clients that do not read (SPEC §6, §8): one client may hold
 * OUTPUT_MAX, all watchers together WATCHERS_MAX; past that the watchers with
 * the largest backlogs are dropped first. 300 watchers that never read used
 * to take acud to 300 MB; a live board keeps well under a few kB. */
#define OUTPUT_MAX (512 * 1024)
#define WATCHERS_MAX (4 * 1024 * 1024)
#define CLIENTS_MAX 4096
/* Descriptors kept free for the daemon's own files (the state file and its
 * directory, history, the sim files, a reload's config and GPIO lines): a
 * flood of clients must never leave a change unsavable. */
#define FD_RESERVE 32
#define MAX_GROUPS 256

struct client {
	struct server *srv;
	struct bufferevent *bev;
	LIST_ENTRY(client) entry;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[MAX_GROUPS];
	char user[ACU_NAME_MAX + 1];
	int watch_requested;           /* input is ignored from here on */
	int watching;                  /* receives events (once its reply is out) */
	int watch_lines;               /* lines --watch: input edges only, nothing else */
	uint64_t watch_seq;            /* events up to this one were made before it watched */
	int discarding;                /* skipping the rest of an oversized line */
	int read_only;                 /* the request being handled changed nothing */
	int queued;                    /* its replies waiting in the outbox */
	struct deferred *deferred;     /* a reply still being made: requests wait */
};

/* A reply being made elsewhere (a history query on the worker thread). */
struct deferred {
	struct client *c;              /* NULL once the client is gone */
	json_t *id;
	void (*on_gone)(void *);       /* tells the maker nobody waits any more */
	void *on_gone_arg;
};

/* A reply or event waiting for its generation to be on disk. */
struct outmsg {
	STAILQ_ENTRY(outmsg) entry;
	uint64_t gen;
	uint64_t seq;                  /* an event's number; for a reply, the last event made before it */
	struct client *c;              /* the client of a reply; NULL once it is gone */
	int is_reply;
	int saves;                     /* the reply of a request that queued a save */
	int sets_watching;
	json_t *msg;
};

struct server {
	struct acud *d;
	struct evconnlistener *listener;
	struct event *resume;          /* re-enables accepting after EMFILE */
	LIST_HEAD(, client) clients;
	int nclients;
	char path[108];
	STAILQ_HEAD(, outmsg) outbox;   /* in the order made */
	uint64_t done;                 /* durable generation, as last reported */
	uint64_t seq;                  /* events made so far */
	unsigned long refused;         /* connections refused since last logged */
	int64_t refused_logged;        /* when that was, monotonic ns */
	unsigned long trimmed;         /* watchers dropped over WATCHERS_MAX since last logged */
	int64_t trimmed_logged;
	struct subscriber sub;         /* the watchers hear what the shell publishes */
};

static void client_free(struct client *c)
{
	struct server *s = c->srv;
	struct outmsg *m;

	LIST_REMOVE(c, entry);
	s->nclients--;
	STAILQ_FOREACH(m, &s->outbox, entry)
		if (m->c == c)
			m->c = NULL;
	/* The reply, when it comes, finds nobody to go to; its maker may stop. */
	if (c->deferred) {
		c->deferred->c = NULL;
		if (c->deferred->on_gone)
			c->deferred->on_gone(c->deferred->on_gone_arg);
	}
	bufferevent_free(c->bev);
	free(c);
}

uid_t client_uid(const struct client *c) { return c->uid; }
const char *client_user(const struct client *c) { return c->user; }
void client_set_watching(struct client *c) { c->watch_requested = 1; }
void client_set_watching_lines(struct client *c)
{
	c->watch_requested = 1;
	c->watch_lines = 1;
}
void client_read_only(struct client *c) { c->read_only = 1; }

static int in_group(const struct client *c, gid_t g)
{
	if (g == (gid_t)-1)
		return 0;
	if (c->gid == g)
		return 1;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == g)
			return 1;
	return 0;
}

enum acu_role client_role(struct acud *d, const struct client *c)
{
	if (c->uid == 0 || c->uid == d->self_uid)
		return ROLE_TECHNICIAN;
	if (in_group(c, d->technician_gid))
		return ROLE_TECHNICIAN;
	if (in_group(c, d->practitioner_gid))
		return ROLE_PRACTITIONER;
	if (in_group(c, d->desk_gid))
		return ROLE_DESK;
	return ROLE_NONE;
}

/* Sends a line. When nothing is waiting it goes straight to the socket, so a
 * reply or an event neither waits a loop pass for the socket to be polled
 * writable nor costs the bufferevent a write event it would add and drop
 * again; what the socket does not take waits in the output buffer. */
static void queue_line(struct client *c, struct evbuffer *out, const char *text, size_t len)
{
	ssize_t n = 0;

	if (evbuffer_get_length(out) == 0) {
		struct iovec iov[2] = { { (void *)text, len }, { (void *)"\n", 1 } };
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

		n = sendmsg(bufferevent_getfd(c->bev), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)len + 1)
			return;
		/* An error is the bufferevent's to find when it writes the rest. */
		if (n < 0)
			n = 0;
	}
	if ((size_t)n < len)
		evbuffer_add(out, text + n, len - (size_t)n);
	evbuffer_add(out, "\n", 1);
}

/* JSON text that starts on the stack and moves to the heap only when it
 * outgrows it: one pass of the encoder, no allocation for a usual reply. */
struct dumpbuf {
	char *p;
	size_t len, cap;
	char stack[2048];
};

static int dump_cb(const char *buf, size_t size, void *data)
{
	struct dumpbuf *b = data;

	if (b->len + size > b->cap) {
		size_t cap = b->cap * 2;
		char *np;

		while (cap < b->len + size)
			cap *= 2;
		np = b->p == b->stack ? malloc(cap) : realloc(b->p, cap);
		if (!np)
			return -1;
		if (b->p == b->stack)
			memcpy(np, b->stack, b->len);
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, buf, size);
	b->len += size;
	return 0;
}

/* A key the encoder would write as it is, with nothing to escape. */
static int plain_key(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
			return 0;
	return 1;
}

/* A value: a cached room's text when it is one, else the encoder's output. */
static int dump_value(struct dumpbuf *b, struct acud *d, json_t *v, int *hint)
{
	size_t n;
	const char *text = roomjson_text(d, v, &n, hint);

	if (text)
		return dump_cb(text, n, b);
	return json_dump_callback(v, dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* A list of rooms is joined from their cached texts. */
static int dump_member(struct dumpbuf *b, struct acud *d, json_t *v, int *hint)
{
	const char *text = NULL;
	size_t n, i;
	int rc;

	if (json_is_array(v) && json_array_size(v))
		text = roomjson_text(d, json_array_get(v, 0), &n, hint);
	if (!text)
		return dump_value(b, d, v, hint);
	rc = dump_cb("[", 1, b);
	rc |= dump_cb(text, n, b);
	for (i = 1; i < json_array_size(v); i++) {
		rc |= dump_cb(",", 1, b);
		rc |= dump_value(b, d, json_array_get(v, i), hint);
	}
	return rc | dump_cb("]", 1, b);
}

/* Returns the length, 0 when msg does not encode; dumpbuf_free after. A
 * message's members are encoded one by one so that a room object, which is
 * most of a reply or an event, is encoded once per change of the room rather
 * than once per request and watcher (roomjson_text); the text joined is the
 * encoder's own, byte for byte what JSON_COMPACT makes of the whole. */
static size_t dumpbuf_msg(struct dumpbuf *b, struct acud *d, json_t *msg)
{
	const char *key;
	json_t *v;
	int rc, hint = 0;

	b->p = b->stack;
	b->len = 0;
	b->cap = sizeof b->stack;
	if (json_is_object(msg) && d->room_cache) {
		rc = dump_cb("{", 1, b);
		json_object_foreach(msg, key, v) {
			/* A key with anything to escape: the encoder does the whole. */
			if (!plain_key(key)) {
				b->len = 0;
				goto whole;
			}
			if (b->len > 1)
				rc |= dump_cb(",", 1, b);
			rc |= dump_cb("\"", 1, b);
			rc |= dump_cb(key, strlen(key), b);
			rc |= dump_cb("\":", 2, b);
			rc |= dump_member(b, d, v, &hint);
		}
		rc |= dump_cb("}", 1, b);
		if (rc)
			b->len = 0;
		return b->len;
	}
whole:
	if (json_dump_callback(msg, dump_cb, b, JSON_COMPACT) < 0)
		b->len = 0;
	return b->len;
}

static void dumpbuf_free(struct dumpbuf *b)
{
	if (b->p != b->stack)
		free(b->p);
}

/* Sends one JSON line; a client whose output backs up past OUTPUT_MAX is
 * dropped. Returns -1 when the client is gone. */
static int client_send(struct client *c, json_t *msg)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct dumpbuf b;

	if (evbuffer_get_length(out) > OUTPUT_MAX) {
		log_warnx("client uid %u: output backlog over %d bytes; dropped", (unsigned)c->uid,
			  OUTPUT_MAX);
		client_free(c);
		return -1;
	}
	if (dumpbuf_msg(&b, c->srv->d, msg))
		queue_line(c, out, b.p, b.len);
	dumpbuf_free(&b);
	return 0;
}

/* Replies and events go out in the order they were made, each once the change
 * it reports is durable. Nothing pending: at once. */
static int must_wait(struct server *s, uint64_t *gen)
{
	struct acud *d = s->d;

	if (!d->persist)
		return 0;
	*gen = persist_queued(d->persist);
	return !STAILQ_EMPTY(&s->outbox) || *gen > s->done;
}

static void outbox_add(struct server *s, uint64_t gen, uint64_t seq, struct client *c,
		       json_t *msg, int sets_watching, int saves)
{
	struct outmsg *m = xcalloc(1, sizeof *m);
	m->gen = gen;
	m->seq = seq;
	m->c = c;
	m->is_reply = c != NULL;
	m->sets_watching = sets_watching;
	m->saves = saves;
	m->msg = msg;
	STAILQ_INSERT_TAIL(&s->outbox, m, entry);
}

static void deliver_event(struct server *s, json_t *event, uint64_t seq);

/* The watchers' subscription to committed changes (publish.c). */
static void server_published(void *arg, enum publish_kind kind, json_t *event)
{
	struct server *s = arg;
	uint64_t gen, seq;

	(void)kind;
	seq = ++s->seq;
	if (must_wait(s, &gen)) {
		json_incref(event);
		outbox_add(s, gen, seq, NULL, event, 0, 0);
		return;
	}
	deliver_event(s, event, seq);
}

/* Drops the watchers with the largest backlogs until all of them together
 * hold at most 3/4 of WATCHERS_MAX (not one per event from then on). Only
 * watchers: a broadcast must never free the client whose request is running,
 * and a watcher runs none. Logged at most once a second. */
static void trim_watchers(struct server *s, size_t total)
{
	size_t before = total, largest = 0;
	int64_t now;
	uid_t uid = 0;

	while (total > WATCHERS_MAX / 4 * 3) {
		struct client *c, *victim = NULL;
		size_t most = 0;

		/* A scan per drop: rare, and no allocation on the way to freeing. */
		LIST_FOREACH(c, &s->clients, entry) {
			size_t n;

			if (!c->watching)
				continue;
			n = evbuffer_get_length(bufferevent_get_output(c->bev));
			if (n > most) {
				most = n;
				victim = c;
			}
		}
		if (!victim)
			break;
		if (!largest) {
			largest = most;
			uid = victim->uid;
		}
		total -= most;
		s->trimmed++;
		client_free(victim);
	}
	now = acu_mono_now();
	if (s->trimmed_logged && now - s->trimmed_logged < 1000000000LL)
		return;
	log_warnx("watchers held %zu bytes unread, over the cap of %d: %lu dropped since last "
		  "logged, the largest backlog first (%zu bytes, uid %u)", before, WATCHERS_MAX,
		  s->trimmed, largest, (unsigned)uid);
	s->trimmed = 0;
	s->trimmed_logged = now;
}

/* A watcher gets the events made after its watch was answered: one answered
 * at once (read-only, ahead of the outbox) skips those still waiting, which
 * report changes its status already showed. */
static void deliver_event(struct server *s, json_t *event, uint64_t seq)
{
	struct client *c, *next;
	struct dumpbuf b;
	const char *text;
	size_t len, total = 0;
	const char *kind = json_string_value(json_object_get(event, "event"));
	int line = kind && strcmp(kind, "line") == 0;

	len = dumpbuf_msg(&b, s->d, event);
	text = b.p;
	if (!len) {
		dumpbuf_free(&b);
		return;
	}
	/* Encoded once for every watcher. */
	for (c = LIST_FIRST(&s->clients); c; c = next) {
		struct evbuffer *out;

		next = LIST_NEXT(c, entry); /* c may be dropped */
		/* Input edges go to `lines --watch` only, and only they. */
		if (!c->watching || c->watch_lines != line)
			continue;
		out = bufferevent_get_output(c->bev);
		if (c->watch_seq < seq) {
			if (evbuffer_get_length(out) > OUTPUT_MAX) {
				log_warnx("watcher uid %u: %zu bytes unread; dropped", (unsigned)c->uid,
					  evbuffer_get_length(out));
				client_free(c);
				continue;
			}
			queue_line(c, out, text, len);
		}
		total += evbuffer_get_length(out);
	}
	dumpbuf_free(&b);
	if (total > WATCHERS_MAX)
		trim_watchers(s, total);
}

/* Takes the reply; saves: its request queued a save (generation above
 * queued_before). Returns -1 when the client is gone. A read-only reply goes
 * out at once unless a reply of this connection waits (its replies keep their
 * order): a stuck save never holds up status or version. */
static int client_reply(struct client *c, json_t *reply, uint64_t queued_before)
{
	struct server *s = c->srv;
	int sets = c->watch_requested && !c->watching;
	int at_once = c->read_only && !c->queued;
	uint64_t gen;
	int rc;

	c->read_only = 0;
	if (!at_once && must_wait(s, &gen)) {
		outbox_add(s, gen, s->seq, c, reply, sets, gen > queued_before);
		c->queued++;
		return 0;
	}
	rc = client_send(c, reply);
	json_decref(reply);
	if (rc == 0 && sets) {
		c->watching = 1;
		c->watch_seq = s->seq;
	}
	return rc;
}

void server_flush(struct server *s, uint64_t done, int failed, const char *why)
{
	struct outmsg *m;

	if (!s)
		return;
	if (done > s->done)
		s->done = done;
	while ((m = STAILQ_FIRST(&s->outbox)) && m->gen <= s->done) {
		STAILQ_REMOVE_HEAD(&s->outbox, entry);
		if (!m->is_reply) {
			deliver_event(s, m->msg, m->seq);
		} else if (m->c) {
			m->c->queued--;
			if (failed && m->saves && json_is_true(json_object_get(m->msg, "ok"))) {
				/* Applied but not on disk: say so rather than acknowledge
				 * (S9; the storage alarm is up and stimulation cut). */
				json_t *err = json_object(), *id = json_object_get(m->msg, "id");

				if (id)
					json_object_set(err, "id", id);
				json_object_set_new(err, "ok", json_false());
				json_object_set_new(err, "error", json_pack(
					"{s:s,s:s+}", "code", "storage", "message",
					"the change took effect but could not be saved: ", why));
				json_decref(m->msg);
				m->msg = err;
			}
			if (client_send(m->c, m->msg) == 0 && m->sets_watching) {
				m->c->watching = 1;
				m->c->watch_seq = m->seq;
			}
		}
		json_decref(m->msg);
		free(m);
	}
}

static void read_cb(struct bufferevent *bev, void *arg);

/* While a reply is deferred the client's requests stay in its input buffer;
 * past this much the socket is not read (so a client cannot grow memory). */
#define DEFERRED_INPUT_MAX (4 * (ACU_REQUEST_MAX + 1))

struct deferred *server_defer(struct client *c, json_t *id)
{
	struct deferred *w = calloc(1, sizeof *w);

	if (!w)
		return NULL;
	w->c = c;
	w->id = id;
	json_incref(id);
	c->deferred = w;
	bufferevent_setwatermark(c->bev, EV_READ, 0, DEFERRED_INPUT_MAX);
	return w;
}

json_t *server_deferred_id(const struct deferred *w)
{
	return w->id;
}

void server_deferred_on_gone(struct deferred *w, void (*fn)(void *), void *arg)
{
	w->on_gone = fn;
	w->on_gone_arg = arg;
}

void server_deferred_reply(struct deferred *w, json_t *reply)
{
	struct client *c = w->c;

	json_decref(w->id);
	free(w);
	if (!c) {
		json_decref(reply);
		return;
	}
	c->deferred = NULL;
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	/* NULL: given up before it was made (the caller answers itself, from
	 * inside its own read_cb). */
	if (!reply)
		return;
	/* A query changes nothing: out at once unless an earlier reply of this
	 * connection still waits for its save. */
	c->read_only = 1;
	if (client_reply(c, reply, c->srv->d->persist ? persist_queued(c->srv->d->persist) : 0) < 0)
		return;
	/* The requests that waited, in order; none during shut-down, when the
	 * outputs are already closed. */
	if (!c->srv->d->quitting)
		read_cb(c->bev, c);
}

static json_t *too_long(void)
{
	return json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", "bad-request", "message",
			 "request longer than 4096 bytes");
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		struct evbuffer_ptr eol;
		size_t eol_len = 0, len;
		char *line;
		json_t *reply;
		uint64_t queued = c->srv->d->persist ? persist_queued(c->srv->d->persist) : 0;

		/* A reply is being made: what follows waits for it to go out. */
		if (c->deferred)
			return;
		/* A watch connection is an event stream: what it sends is ignored, so
		 * no broadcast can free a client while its own request is running. */
		if (c->watch_requested) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (c->discarding) {
			if (eol.pos < 0) {
				evbuffer_drain(in, evbuffer_get_length(in));
				return;
			}
			evbuffer_drain(in, (size_t)eol.pos + eol_len);
			c->discarding = 0;
			continue;
		}
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) <= ACU_REQUEST_MAX)
				return;
			/* Answer now and skip to the next newline: the connection lives on. */
			evbuffer_drain(in, evbuffer_get_length(in));
			c->discarding = 1;
			c->read_only = 1;
			if (client_reply(c, too_long(), queued) < 0)
				return;
			continue;
		}
		len = (size_t)eol.pos;
		if (len > ACU_REQUEST_MAX) {
			evbuffer_drain(in, len + eol_len);
			reply = too_long();
			c->read_only = 1;
		} else {
			line = xmalloc(len + 1);
			evbuffer_remove(in, line, len);
			evbuffer_drain(in, eol_len);
			line[len] = '\0';
			if (len && line[len - 1] == '\r')
				line[--len] = '\0';
			if (len == 0) {
				free(line);
				continue;
			}
			c->read_only = 0; /* cmd_dispatch says when it is */
			reply = cmd_dispatch(c->srv->d, c, line, len);
			free(line);
		}
		if (!reply)
			continue;
		if (client_reply(c, reply, queued) < 0)
			return;
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		client_free(arg);
}

static void peer_identity(struct client *c, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct passwd pw, *res = NULL;
	char buf[4096];

	c->uid = (uid_t)-1;
	c->gid = (gid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->uid = cred.uid;
		c->gid = cred.gid;
	}
	/* Supplementary groups as the peer had them at connect (Linux 4.13+);
	 * otherwise the group database's view of the user. */
	len = sizeof c->groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) == 0) {
		c->ngroups = (int)(len / sizeof(gid_t));
	} else if (getpwuid_r(c->uid, &pw, buf, sizeof buf, &res) == 0 && res) {
		int n = MAX_GROUPS;
		if (getgrouplist(res->pw_name, res->pw_gid, c->groups, &n) >= 0)
			c->ngroups = n;
	}
	res = NULL;
	/* The name goes into JSON: it must be UTF-8 (passwd does not promise it). */
	if (getpwuid_r(c->uid, &pw, buf, sizeof buf, &res) == 0 && res &&
	    strlen(res->pw_name) <= ACU_NAME_MAX && acu_utf8_valid(res->pw_name))
		snprintf(c->user, sizeof c->user, "%s", res->pw_name);
	else
		snprintf(c->user, sizeof c->user, "uid-%u", (unsigned)c->uid);
}

/* Whether FD_RESERVE more descriptors could still be opened. The accepted
 * fd is the lowest free one, so it counts those in use; F_DUPFD fails past
 * the limit as the kernel has it now, a limit lowered from outside included. */
static int fd_headroom(int fd)
{
	int probe = fcntl(fd, F_DUPFD_CLOEXEC, fd + FD_RESERVE);

	if (probe < 0)
		return 0;
	close(probe);
	return 1;
}

/* Closes a connection at once; logged at most once a second. */
static void refuse(struct server *s, int fd, const char *why)
{
	int64_t now = acu_mono_now();

	evutil_closesocket(fd);
	s->refused++;
	if (s->refused_logged && now - s->refused_logged < 1000000000LL)
		return;
	log_warnx("accept: %s; %lu connection%s refused", why, s->refused,
		  s->refused == 1 ? "" : "s");
	s->refused = 0;
	s->refused_logged = now;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct server *s = arg;
	struct client *c;

	(void)l;
	(void)sa;
	(void)salen;
	if (s->nclients >= CLIENTS_MAX) {
		refuse(s, fd, "client limit reached (" STR(CLIENTS_MAX) " connected)");
		return;
	}
	if (!fd_headroom(fd)) {
		refuse(s, fd, "descriptors nearly exhausted (" STR(FD_RESERVE)
		       " kept for state, history and config)");
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->srv = s;
	peer_identity(c, fd);
	c->bev = bufferevent_socket_new(s->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_priority_set(c->bev, ACU_PRIO_CLIENT);
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	LIST_INSERT_HEAD(&s->clients, c, entry);
	s->nclients++;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(s->listener);
}

/* Out of descriptors: stop accepting for a moment instead of spinning on a
 * listening socket that stays readable. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *s = arg;
	struct timeval tv = { 0, 100 * 1000 };
	int e = EVUTIL_SOCKET_ERROR();

	log_warnx("accept: %s; pausing new connections for 100 ms", evutil_socket_error_to_string(e));
	evconnlistener_disable(l);
	evtimer_add(s->resume, &tv);
}

/* A socket file that nobody answers on is stale and may be replaced; one that
 * answers means another acud owns it. */
static int socket_in_use(const char *path)
{
	struct sockaddr_un sa;
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
	return rc == 0;
}

int server_check_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	if (socket_in_use(path)) {
		snprintf(err, errlen, "%s: another acud is already listening", path);
		return -1;
	}
	return 0;
}

struct server *server_open(struct acud *d, char *err, size_t errlen)
{
	struct server *s = calloc(1, sizeof *s);
	struct sockaddr_un sa;
	mode_t old;
	int fd;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->d = d;
	LIST_INIT(&s->clients);
	STAILQ_INIT(&s->outbox);
	snprintf(s->path, sizeof s->path, "%s", d->cfg->socket);
	if (server_check_socket(s->path, err, errlen) < 0)
		goto fail;
	/* Stale (nobody answers): replaced. */
	if (unlink(s->path) < 0 && errno != ENOENT)
		log_warn("unlink %s", s->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s->path);
	/* Created 0660 from the start: no window in which anyone else may connect. */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		umask(old);
		snprintf(err, errlen, "bind %s: %s", s->path, strerror(errno));
		close(fd);
		goto fail;
	}
	umask(old);
	chmod(s->path, 0660);
	if (d->cfg->socket_group[0]) {
		struct group *g = getgrnam(d->cfg->socket_group);
		if (!g)
			log_warnx("socket_group %s: no such group; socket keeps its group",
				  d->cfg->socket_group);
		else if (chown(s->path, (uid_t)-1, g->gr_gid) < 0)
			log_warn("chown %s to group %s", s->path, d->cfg->socket_group);
	}
	s->listener = evconnlistener_new(d->base, accept_cb, s,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024, fd);
	if (!s->listener) {
		snprintf(err, errlen, "listen %s: %s", s->path, strerror(errno));
		close(fd);
		unlink(s->path);
		goto fail;
	}
	evconnlistener_set_error_cb(s->listener, accept_error_cb);
	s->resume = evtimer_new(d->base, resume_cb, s);
	s->sub.fn = server_published;
	s->sub.arg = s;
	publish_subscribe(d, &s->sub);
	return s;
fail:
	free(s);
	return NULL;
}

void server_close(struct server *s)
{
	struct client *c;
	struct outmsg *m;

	if (!s)
		return;
	publish_unsubscribe(s->d, &s->sub);
	while ((c = LIST_FIRST(&s->clients)))
		client_free(c); /* NOLINT(clang-analyzer-unix.Malloc): unlinks itself */
	while ((m = STAILQ_FIRST(&s->outbox))) {
		STAILQ_REMOVE_HEAD(&s->outbox, entry);
		json_decref(m->msg);
		free(m);
	}
	if (s->listener)
		evconnlistener_free(s->listener);
	if (s->resume)
		event_free(s->resume);
	unlink(s->path);
	free(s);
}

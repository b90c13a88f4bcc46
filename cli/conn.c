/* acuctl's connection to acud: one JSON request line out, one JSON reply line
 * in, or a stream of event lines for `watch`. Every wait is bounded, so a
 * wedged daemon makes acuctl fail (exit 3) rather than hang at the desk. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "acuctl.h"

#define REPLY_MAX (64u << 20) /* a longer line is garbage, not a status */

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - acuctl_now_ms();

	return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

int conn_connect(struct conn *c, char *why, size_t wlen)
{
	struct timeval tv = { TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000 };
	struct sockaddr_un sa;
	int fl;

	memset(c, 0, sizeof *c);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	c->fd = -1;
	if (strlen(acuctl_opts.socket) >= sizeof sa.sun_path) {
		snprintf(why, wlen, "socket path longer than %zu bytes", sizeof sa.sun_path - 1);
		return -1;
	}
	memcpy(sa.sun_path, acuctl_opts.socket, strlen(acuctl_opts.socket));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(why, wlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* connect() on a Unix socket waits while the listen backlog is full; on
	 * Linux SO_SNDTIMEO bounds that wait (it then fails with EAGAIN). */
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EAGAIN || errno == EINPROGRESS)
			snprintf(why, wlen, "connection timed out (acud not accepting)");
		else
			snprintf(why, wlen, "%s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	/* From here on every wait goes through poll() with a deadline. */
	fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(why, wlen, "fcntl: %s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

void conn_open(struct conn *c)
{
	char why[256];

	if (conn_connect(c, why, sizeof why) < 0)
		acuctl_unreachable("%s", why);
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

static int conn_write(struct conn *c, const char *data, size_t len, int64_t deadline,
		      char *why, size_t wlen)
{
	while (len) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		struct pollfd pfd = { c->fd, POLLOUT, 0 };
		int rc;

		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			snprintf(why, wlen, "cannot send the request: %s",
				 errno == EPIPE ? "connection closed by acud" : strerror(errno));
			return -1;
		}
		rc = poll(&pfd, 1, ms_left(deadline));
		if (rc < 0 && errno != EINTR) {
			snprintf(why, wlen, "poll: %s", strerror(errno));
			return -1;
		}
		if (rc == 0 && acuctl_now_ms() >= deadline) {
			snprintf(why, wlen, "timed out sending the request");
			return -1;
		}
	}
	return 0;
}

/* Reads what is available. >0 bytes, 0 end of stream, -1 nothing yet (EAGAIN)
 * or an error (errno). */
ssize_t conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->start > 0) { /* keep the unread part at the front */
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	if (c->end > REPLY_MAX)
		acuctl_unreachable("reply longer than %u bytes", REPLY_MAX);
	if (c->cap - c->end < 4096) {
		size_t cap = c->cap ? c->cap * 2 : 16384;
		char *p = realloc(c->buf, cap);

		if (!p)
			acuctl_die(RC_UNREACHABLE, "out of memory");
		c->buf = p;
		c->cap = cap;
	}
	n = read(c->fd, c->buf + c->end, c->cap - c->end);
	if (n > 0)
		c->end += (size_t)n;
	return n;
}

/* The next complete line, NUL-terminated in place, valid until the next
 * conn_fill(); NULL when none is buffered yet. */
char *conn_take_line(struct conn *c, size_t *len)
{
	char *line, *nl;

	if (c->end - c->start <= c->scanned)
		return NULL;
	line = c->buf + c->start;
	nl = memchr(line + c->scanned, '\n', c->end - c->start - c->scanned);
	if (!nl) {
		c->scanned = c->end - c->start;
		return NULL;
	}
	*nl = '\0';
	*len = (size_t)(nl - line);
	if (*len && line[*len - 1] == '\r')
		line[--*len] = '\0';
	c->start += (size_t)(nl - line) + 1;
	c->scanned = 0;
	return line;
}

char *conn_next_line(struct conn *c, int64_t deadline, size_t *len, char *why, size_t wlen)
{
	int64_t start = acuctl_now_ms();
	char *line;

	while (!(line = conn_take_line(c, len))) {
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		ssize_t n = conn_fill(c);
		int rc;

		if (n > 0)
			continue;
		if (n == 0) {
			snprintf(why, wlen, "connection closed before the reply");
			return NULL;
		}
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(why, wlen, "cannot read the reply: %s", strerror(errno));
			return NULL;
		}
		rc = poll(&pfd, 1, ms_left(deadline));
		if (rc < 0 && errno != EINTR) {
			snprintf(why, wlen, "poll: %s", strerror(errno));
			return NULL;
		}
		if (rc == 0 && acuctl_now_ms() >= deadline) {
			snprintf(why, wlen, "no reply within %lld s",
				 (long long)(deadline - start + 999) / 1000);
			return NULL;
		}
	}
	return line;
}

/* Sends requests as one write, so that acud handles them back to back. */
int conn_try_send(struct conn *c, json_t **reqs, int n, int64_t deadline, char *why,
		  size_t wlen)
{
	struct sbuf b = { 0 };
	int rc;

	for (int i = 0; i < n; i++) {
		char *text = json_dumps(reqs[i], JSON_COMPACT);

		if (!text)
			acuctl_die(RC_UNREACHABLE, "out of memory");
		sb_puts(&b, text);
		sb_add(&b, "\n", 1);
		free(text);
	}
	rc = conn_write(c, b.s, b.len, deadline, why, wlen);
	sb_free(&b);
	return rc;
}

void conn_send(struct conn *c, json_t **reqs, int n)
{
	char why[256];

	if (conn_try_send(c, reqs, n, acuctl_now_ms() + TIMEOUT_MS, why, sizeof why) < 0)
		acuctl_unreachable("%s", why);
}

/* Reads one line and checks that it answers req: a reply whether acud did it
 * or refused; NULL with why when the line is none. *line is the reply as it
 * came, for --json. */
static json_t *read_reply(struct conn *c, json_t *req, int64_t deadline, char **line,
			  size_t *len, char *why, size_t wlen)
{
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	json_t *reply, *v;
	json_error_t jerr;

	*line = conn_next_line(c, deadline, len, why, wlen);
	if (!*line)
		return NULL;
	reply = json_loadb(*line, *len, 0, &jerr);
	if (!reply) {
		snprintf(why, wlen, "garbage reply (%s)", jerr.text);
		return NULL;
	}
	v = json_object_get(reply, "id");
	/* A reply without id is fine (acud cannot echo the id of a line it could
	 * not read); one with another id answers someone else. */
	if (!json_is_object(reply) || !json_is_boolean(json_object_get(reply, "ok")) ||
	    (v && !(json_is_integer(v) && json_integer_value(v) == id))) {
		json_decref(reply);
		snprintf(why, wlen,
			 "garbage reply (not a reply to request %" JSON_INTEGER_FORMAT ")", id);
		return NULL;
	}
	return reply;
}

/* A yes to req, or NULL with why (a refusal included). */
json_t *conn_try_reply(struct conn *c, json_t *req, int64_t deadline, char *why, size_t wlen)
{
	json_t *reply, *e;
	size_t len;
	char *line;

	reply = read_reply(c, req, deadline, &line, &len, why, wlen);
	if (!reply || json_is_true(json_object_get(reply, "ok")))
		return reply;
	e = json_object_get(reply, "error");
	snprintf(why, wlen, "acud refused: %.40s: %.100s",
		 jstr(e, "code") ? jstr(e, "code") : acu_errcode_name(E_INTERNAL),
		 jstr(e, "message") ? jstr(e, "message") : "(no message)");
	json_decref(reply);
	return NULL;
}

/* Reads and checks one reply. With --json the line is printed as it came.
 * Returns the reply, or NULL when acud refused (reported on stderr). */
json_t *conn_reply(struct conn *c, json_t *req)
{
	char why[256], *line;
	const char *code, *msg;
	struct sbuf b = { 0 };
	json_t *reply, *e;
	size_t len;

	reply = read_reply(c, req, acuctl_now_ms() + TIMEOUT_MS, &line, &len, why, sizeof why);
	if (!reply)
		acuctl_unreachable("%s", why);
	if (acuctl_opts.json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	if (json_is_true(json_object_get(reply, "ok")))
		return reply;
	e = json_object_get(reply, "error");
	code = jstr(e, "code");
	msg = jstr(e, "message");
	sb_puts(&b, "acuctl: ");
	sb_clean_all(&b, code ? code : acu_errcode_name(E_INTERNAL));
	sb_puts(&b, ": ");
	sb_clean_all(&b, msg ? msg : "refused (no message)");
	sb_add(&b, "\n", 1);
	fflush(stdout);
	sb_flush(&b, stderr);
	sb_free(&b);
	json_decref(reply);
	return NULL;
}

/* A request with the next id: replies are matched to it. */
json_t *conn_request(const char *name)
{
	static json_int_t next_id = 1;
	json_t *r = json_pack("{s:I,s:s}", "id", next_id++, "cmd", name);

	if (!r)
		acuctl_die(RC_UNREACHABLE, "out of memory");
	return r;
}

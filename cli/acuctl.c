/* acuctl: the command-line client of acud (SPEC §7).
 *
 * One JSON request line, one JSON reply line, over the control socket. `watch`
 * keeps the connection as an event stream: JSON lines when stdout is not a
 * terminal, a live board of the rooms when it is. Every wait is bounded, so a
 * wedged daemon makes acuctl fail (exit 3) rather than hang at the desk. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "acud.h"

#define TIMEOUT_MS 10000        /* connect + send, and again for the reply */
#define REPLY_MAX (64u << 20)   /* a longer line is garbage, not a status */
#define MAX_ALARMS 16           /* shown per room; acud has five kinds */
#define BOARD_EVENTS 5          /* recent events kept under the live board */
#define RETRY_MS 1000           /* the board's reconnection attempts, when acud went away */
#define RECONNECT_MS 3000       /* bound on one attempt (Ctrl-C still quits during it) */

enum { RC_DONE, RC_REFUSED, RC_USAGE, RC_UNREACHABLE };

#define C_HIGH "\033[1;31m"
#define C_MEDIUM "\033[33m"
#define C_LOW "\033[36m"
#define C_BOLD "\033[1m"
#define C_OFF "\033[0m"
#define C_ALERT "\033[1;7;31m"  /* bold, reversed, red: NOT LIVE */

static const char *sock_path = ACU_DEFAULT_SOCKET;
static int opt_json;
static int use_colour;
static json_int_t next_id = 1;

/* --- terminal state, restored on every way out of the live board --------- */

static volatile sig_atomic_t screen_active; /* alternate screen entered */
static volatile sig_atomic_t tio_changed;   /* stdin echo and line mode off */
static volatile sig_atomic_t got_winch, got_cont; /* resized; back from a stop */
static struct termios saved_tio;

/* Async-signal-safe (write, tcsetattr): handlers call it as well as atexit. */
static void term_restore(void)
{
	static const char leave[] = "\033[0m\033[?25h\033[?1049l";
	ssize_t n;

	if (tio_changed) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_changed = 0;
	}
	if (screen_active) {
		n = write(STDOUT_FILENO, leave, sizeof leave - 1);
		(void)n;
		screen_active = 0;
	}
}

static void term_enter(void)
{
	static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";
	struct termios t;
	ssize_t n;

	/* Keys typed at the board are commands ('q'), not text to echo over it. */
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		t = saved_tio;
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
			tio_changed = 1;
	}
	screen_active = 1;
	n = write(STDOUT_FILENO, enter, sizeof enter - 1);
	(void)n;
}

static void on_quit(int sig)
{
	(void)sig;
	term_restore();
	_exit(RC_DONE);
}

static void on_winch(int sig)
{
	(void)sig;
	got_winch = 1;
}

/* Ctrl-Z: give the shell its screen back, then stop for real. The stop
 * happens inside the handler (SIGTSTP unblocked, default action), so when it
 * returns the process has been continued and the board comes back. */
static void on_tstp(int sig)
{
	struct sigaction sa, old;
	sigset_t set;
	int saved = errno;

	term_restore();
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(sig, &sa, &old);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigaction(sig, &old, NULL);
	got_cont = 1;
	errno = saved;
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll() wakes up to redraw */
	sigaction(sig, &sa, NULL);
}

/* --- errors ---------------------------------------------------------------- */

static void __attribute__((noreturn, format(printf, 2, 3))) die(int rc, const char *fmt, ...)
{
	va_list ap;

	term_restore(); /* or the message would vanish with the alternate screen */
	fflush(stdout);
	fputs("acuctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (rc == RC_USAGE)
		fputs("Try 'acuctl --help'.\n", stderr);
	exit(rc);
}

#define usage_error(...) die(RC_USAGE, __VA_ARGS__)

/* Exit 3, naming the socket that failed and why. */
static void __attribute__((noreturn, format(printf, 1, 2))) unreachable(const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	die(RC_UNREACHABLE, "cannot reach acud at %s: %s", sock_path, why);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: acuctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  status [ROOM]                 all rooms at a glance, or one room in detail\n"
		"  watch                         live board on a terminal, JSON events otherwise\n"
		"  start ROOM DURATION [--needles N] [--profile P] [--patient REF]\n"
		"                      [--flag F]... [--stim]\n"
		"  pause|resume|stop|checkin ROOM\n"
		"  extend ROOM DURATION\n"
		"  finish ROOM --removed N [--override REASON]\n"
		"  stim ROOM on|off\n"
		"  flag ROOM FLAG...\n"
		"  needles ROOM +N|-N            needles added or dropped during the session\n"
		"  silence ROOM [DURATION]       quiet the room's audible alarm (default 2m)\n"
		"  profiles | profile NAME\n"
		"  history [--room R] [--since T] [--limit N]\n"
		"  reload | version\n"
		"  sim-input LINE LEVEL          simulated GPIO: set an input line to 0 or 1\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default: $ACUD_SOCKET, else %s)\n"
		"      --json          print acud's replies (and watch events) as JSON lines\n"
		"  -h, --help          show this help\n"
		"      --version       show acuctl's version\n"
		"\n"
		"DURATION: 90s, 25m, 1h, 1h30m or plain seconds.  T: RFC 3339 time, unix\n"
		"seconds, or a duration meaning that long ago (2h).  FLAG: pacemaker, icd,\n"
		"implanted-device, pregnancy, epilepsy, heart-disease, bleeding-disorder,\n"
		"metal-implant.  REF: a chart code of 1 to 32 of A-Z a-z 0-9 . _ - (never a name).\n"
		"Exit status: 0 done, 1 refused by acud, 2 usage error, 3 cannot reach acud.\n",
		ACU_DEFAULT_SOCKET);
}

/* --- a growing string ------------------------------------------------------ */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p)
			die(RC_UNREACHABLE, "out of memory");
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		sb_add(b, small, (size_t)n);
		return;
	}
	sb_add(b, "", 0);
	{
		char *big = malloc((size_t)n + 1);

		if (!big)
			die(RC_UNREACHABLE, "out of memory");
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		sb_add(b, big, (size_t)n);
		free(big);
	}
}

/* Writes and empties the buffer. */
static void sb_flush(struct sbuf *b, FILE *f)
{
	if (b->len)
		fwrite(b->s, 1, b->len, f);
	b->len = 0;
	fflush(f);
}

static void sb_free(struct sbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

/* Display columns of UTF-8 text: one per code point (names are short and
 * mostly Latin; wide characters would only misalign their own row). */
static int text_cols(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Copies at most `cols` columns of s. Text from the daemon reaches a terminal:
 * control characters (C0, DEL, C1) become '?' so none can drive it. */
static void sb_clean(struct sbuf *b, const char *s, int cols)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		if ((*p & 0xC0) != 0x80) {
			if (cols-- <= 0)
				break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			sb_add(b, "?", 1);
		} else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
			sb_add(b, "?", 1);
			p++;
		} else {
			sb_add(b, (const char *)p, 1);
		}
		p++;
	}
}

static void sb_clean_all(struct sbuf *b, const char *s)
{
	sb_clean(b, s, 1 << 30);
}

/* Puts s in at most max columns, marking a cut with '~'. Returns columns used. */
static int put_text(struct sbuf *b, const char *s, int max, const char *col)
{
	int n = text_cols(s), cut = n > max;

	if (max <= 0)
		return 0;
	if (col)
		sb_puts(b, col);
	sb_clean(b, s, cut ? max - 1 : n);
	if (cut)
		sb_add(b, "~", 1);
	if (col)
		sb_puts(b, C_OFF);
	return cut ? max : n;
}

static void pad(struct sbuf *b, int n)
{
	for (; n > 0; n--)
		sb_add(b, " ", 1);
}

/* A table cell: text cut to width, padded to width. */
static void put_cell(struct sbuf *b, const char *s, int width, const char *col)
{
	pad(b, width - put_text(b, s, width, col));
}

/* Cuts every line to cols visible columns, so that nothing wraps on a narrow
 * terminal; escape sequences pass whole (colours still get reset). */
static void clip_lines(struct sbuf *b, int cols)
{
	size_t r = 0, w = 0;
	int col = 0, skipping = 0;

	while (r < b->len) {
		unsigned char c = (unsigned char)b->s[r];

		if (c == '\n') {
			col = skipping = 0;
			b->s[w++] = b->s[r++];
		} else if (c == 0x1b) {
			size_t e = r + 1;

			if (e < b->len && b->s[e] == '[')
				for (e++; e < b->len && !(b->s[e] >= 0x40 && b->s[e] <= 0x7e); e++)
					;
			e = e < b->len ? e + 1 : e;
			while (r < e)
				b->s[w++] = b->s[r++];
		} else {
			if ((c & 0xC0) != 0x80)
				skipping = ++col > cols;
			if (!skipping)
				b->s[w++] = b->s[r];
			r++;
		}
	}
	b->len = w;
	if (b->s)
		b->s[w] = '\0';
}

/* --- JSON access ----------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jint(json_t *o, const char *key, long long def)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return def;
}

static int prio_rank(const char *p)
{
	if (!p)
		return 0;
	if (strcmp(p, "high") == 0)
		return 3;
	if (strcmp(p, "medium") == 0)
		return 2;
	if (strcmp(p, "low") == 0)
		return 1;
	return 0;
}

/* IEC 60601-1-8 colours: high red, medium yellow, low cyan. */
static const char *prio_colour(const char *p)
{
	if (!use_colour)
		return NULL;
	switch (prio_rank(p)) {
	case 3: return C_HIGH;
	case 2: return C_MEDIUM;
	case 1: return C_LOW;
	default: return NULL;
	}
}

/* Scalars as a person reads them; lists of scalars comma-joined. */
static void put_value(struct sbuf *b, json_t *v, const char *yes, const char *no)
{
	size_t i;
	json_t *e;
	char *text;

	switch (json_typeof(v)) {
	case JSON_STRING:
		sb_clean_all(b, json_string_value(v));
		break;
	case JSON_INTEGER:
		sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		sb_printf(b, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		sb_puts(b, yes);
		break;
	case JSON_FALSE:
		sb_puts(b, no);
		break;
	case JSON_NULL:
		sb_puts(b, "-");
		break;
	case JSON_ARRAY:
		if (json_array_size(v) == 0) {
			sb_puts(b, "none");
			break;
		}
		json_array_foreach(v, i, e) {
			if (json_is_object(e) || json_is_array(e))
				goto compact;
		}
		json_array_foreach(v, i, e) {
			if (i)
				sb_puts(b, ",");
			put_value(b, e, yes, no);
		}
		break;
	default:
	compact:
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text)
			sb_clean_all(b, text);
		free(text);
		break;
	}
}

/* --- the connection ------------------------------------------------------ */

struct conn {
	int fd;
	char *buf;
	size_t start, end, cap; /* unread bytes are buf[start..end) */
	size_t scanned;         /* of those, already searched for a newline */
};

static int64_t now_ms(void)
{
	return acu_mono_now() / NS_PER_MS;
}

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* The connection helpers come in pairs: a core that says why it failed (the
 * live board retries with it) and a wrapper that exits 3 with that reason. */
static int conn_connect(struct conn *c, char *why, size_t wlen)
{
	struct timeval tv = { TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000 };
	struct sockaddr_un sa;
	int fl;

	memset(c, 0, sizeof *c);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	c->fd = -1;
	if (strlen(sock_path) >= sizeof sa.sun_path) {
		snprintf(why, wlen, "socket path longer than %zu bytes", sizeof sa.sun_path - 1);
		return -1;
	}
	memcpy(sa.sun_path, sock_path, strlen(sock_path));
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

static void conn_open(struct conn *c)
{
	char why[256];

	if (conn_connect(c, why, sizeof why) < 0)
		unreachable("%s", why);
}

static void conn_close(struct conn *c)
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
		if (rc == 0 && now_ms() >= deadline) {
			snprintf(why, wlen, "timed out sending the request");
			return -1;
		}
	}
	return 0;
}

/* Reads what is available. >0 bytes, 0 end of stream, -1 nothing yet (EAGAIN)
 * or an error (errno). */
static ssize_t conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->start > 0) { /* keep the unread part at the front */
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	if (c->end > REPLY_MAX)
		unreachable("reply longer than %u bytes", REPLY_MAX);
	if (c->cap - c->end < 4096) {
		size_t cap = c->cap ? c->cap * 2 : 16384;
		char *p = realloc(c->buf, cap);

		if (!p)
			die(RC_UNREACHABLE, "out of memory");
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
static char *conn_take_line(struct conn *c, size_t *len)
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

static char *conn_next_line(struct conn *c, int64_t deadline, size_t *len, char *why,
			    size_t wlen)
{
	int64_t start = now_ms();
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
		if (rc == 0 && now_ms() >= deadline) {
			snprintf(why, wlen, "no reply within %lld s",
				 (long long)(deadline - start + 999) / 1000);
			return NULL;
		}
	}
	return line;
}

static char *conn_read_line(struct conn *c, int64_t deadline, size_t *len)
{
	char why[256], *line = conn_next_line(c, deadline, len, why, sizeof why);

	if (!line)
		unreachable("%s", why);
	return line;
}

/* Sends requests as one write, so that acud handles them back to back. */
static int send_requests_by(struct conn *c, json_t **reqs, int n, int64_t deadline, char *why,
			    size_t wlen)
{
	struct sbuf b = { 0 };
	int rc;

	for (int i = 0; i < n; i++) {
		char *text = json_dumps(reqs[i], JSON_COMPACT);

		if (!text)
			die(RC_UNREACHABLE, "out of memory");
		sb_puts(&b, text);
		sb_add(&b, "\n", 1);
		free(text);
	}
	rc = conn_write(c, b.s, b.len, deadline, why, wlen);
	sb_free(&b);
	return rc;
}

static void send_requests(struct conn *c, json_t **reqs, int n)
{
	char why[256];

	if (send_requests_by(c, reqs, n, now_ms() + TIMEOUT_MS, why, sizeof why) < 0)
		unreachable("%s", why);
}

/* Reads and checks one reply. With --json the line is printed as it came.
 * Returns the reply, or NULL when acud refused (reported on stderr). */
static json_t *await_reply(struct conn *c, json_t *req)
{
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	json_t *reply, *v, *ok, *e;
	json_error_t jerr;
	size_t len;
	char *line = conn_read_line(c, now_ms() + TIMEOUT_MS, &len);

	reply = json_loadb(line, len, 0, &jerr);
	if (!reply)
		unreachable("garbage reply (%s)", jerr.text);
	ok = json_object_get(reply, "ok");
	v = json_object_get(reply, "id");
	/* A reply without id is fine (acud cannot echo the id of a line it could
	 * not read); one with another id answers someone else. */
	if (!json_is_object(reply) || !json_is_boolean(ok) ||
	    (v && !(json_is_integer(v) && json_integer_value(v) == id))) {
		json_decref(reply);
		unreachable("garbage reply (not a reply to request %" JSON_INTEGER_FORMAT ")", id);
	}
	if (opt_json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	if (json_is_false(ok)) {
		const char *code, *msg;
		struct sbuf b = { 0 };

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
	return reply;
}

/* --- command line ------------------------------------------------------- */

struct args {
	int argc;
	char **argv;
	int i;
	int dashdash; /* after "--" every argument is positional */
};

/* "-3" is a needle delta, not an option. */
static int looks_like_option(const char *s)
{
	return s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9');
}

/* The value of option `name` if arg is it ("--x V", "--x=V", "-sV"), else NULL. */
static const char *option_value(struct args *a, const char *arg, const char *name)
{
	size_t n = strlen(name);

	if (strcmp(arg, name) == 0) {
		if (a->i >= a->argc)
			usage_error("option %s needs a value", name);
		return a->argv[a->i++];
	}
	if (strncmp(arg, name, n) == 0) {
		if (name[1] == '-' && arg[n] == '=')
			return arg + n + 1;
		if (name[1] != '-' && arg[n])
			return arg + n;
	}
	return NULL;
}

/* Options that mean the same before and after the command word. */
static int global_option(struct args *a, const char *arg)
{
	const char *v;

	if (strcmp(arg, "--json") == 0) {
		opt_json = 1;
		return 1;
	}
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
		usage(stdout);
		exit(RC_DONE);
	}
	if (strcmp(arg, "--version") == 0) {
		printf("acuctl %s (protocol %d)\n", ACUD_VERSION, ACUD_PROTOCOL);
		exit(RC_DONE);
	}
	if ((v = option_value(a, arg, "--socket")) || (v = option_value(a, arg, "-s"))) {
		if (!*v)
			usage_error("empty socket path");
		sock_path = v;
		return 1;
	}
	return 0;
}

/* The next argument a command has to deal with; NULL at the end. *opt tells
 * whether it is an option (which the command must know, or refuse). */
static const char *next_arg(struct args *a, int *opt)
{
	while (a->i < a->argc) {
		const char *arg = a->argv[a->i++];

		if (!a->dashdash && strcmp(arg, "--") == 0) {
			a->dashdash = 1;
			continue;
		}
		if (a->dashdash || !looks_like_option(arg)) {
			*opt = 0;
			return arg;
		}
		if (global_option(a, arg))
			continue;
		*opt = 1;
		return arg;
	}
	return NULL;
}

struct command {
	const char *name;
	const char *synopsis;
	int min, max; /* positional arguments, for commands without options */
	json_t *(*build)(const struct command *cmd, struct args *a);
	void (*show)(json_t *reply);
};

static void __attribute__((noreturn)) bad_usage(const struct command *cmd, const char *what,
						const char *arg)
{
	die(RC_USAGE, "%s%s%s\nusage: acuctl %s", what, arg ? " " : "", arg ? arg : "",
	    cmd->synopsis);
}

/* Gathers up to cmd->max positional arguments; any option is refused. */
static int plain_args(const struct command *cmd, struct args *a, const char **pos)
{
	const char *arg;
	int n = 0, opt;

	while ((arg = next_arg(a, &opt))) {
		if (opt)
			bad_usage(cmd, "unknown option", arg);
		if (n >= cmd->max)
			bad_usage(cmd, "unexpected argument", arg);
		pos[n++] = arg;
	}
	if (n < cmd->min)
		bad_usage(cmd, "missing arguments", NULL);
	return n;
}

static json_t *new_request(const char *name)
{
	json_t *r = json_pack("{s:I,s:s}", "id", next_id++, "cmd", name);

	if (!r)
		die(RC_UNREACHABLE, "out of memory");
	return r;
}

static void set_str(json_t *req, const char *key, const char *val)
{
	json_t *s = json_string(val);

	if (!s)
		usage_error("%s: not valid UTF-8", key);
	json_object_set_new(req, key, s);
}

static void set_int(json_t *req, const char *key, long long v)
{
	json_object_set_new(req, key, json_integer(v));
}

static long long duration_arg(const char *s)
{
	int64_t v;

	if (acu_parse_duration(s, &v) < 0)
		usage_error("bad duration '%s': use e.g. 90s, 25m, 1h, 1h30m or plain seconds", s);
	return v;
}

static long long int_arg(const char *what, const char *s)
{
	int64_t v;

	if (acu_parse_int(s, INT32_MIN, INT32_MAX, &v) < 0)
		usage_error("%s: '%s' is not a whole number", what, s);
	return v;
}

/* Checked here so that a typo is a usage error, not a request. */
static void add_flags(json_t *list, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;

	if (!copy)
		die(RC_UNREACHABLE, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (acu_flag_parse(tok) < 0) {
			char known[160];

			acu_flag_list(known, sizeof known, ", ");
			fprintf(stderr, "acuctl: unknown flag '%s'; known: %s\n", tok, known);
			free(copy);
			exit(RC_USAGE);
		}
		json_array_append_new(list, json_string(tok));
	}
	free(copy);
	if (json_array_size(list) == 0)
		usage_error("empty flag list '%s'", arg);
}

static json_t *build_plain(const struct command *cmd, struct args *a)
{
	const char *pos[2] = { NULL, NULL };
	int n = plain_args(cmd, a, pos);
	json_t *req = new_request(cmd->name);

	if (n >= 1)
		set_str(req, strcmp(cmd->name, "profile") == 0 ? "name" : "room", pos[0]);
	return req;
}

static json_t *build_extend(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;
	long long d;

	plain_args(cmd, a, pos);
	d = duration_arg(pos[1]);
	req = new_request(cmd->name);
	set_str(req, "room", pos[0]);
	set_int(req, "duration_s", d);
	return req;
}

static json_t *build_silence(const struct command *cmd, struct args *a)
{
	const char *pos[2] = { NULL, NULL };
	int n = plain_args(cmd, a, pos);
	long long d = n > 1 ? duration_arg(pos[1]) : -1;
	json_t *req = new_request(cmd->name);

	set_str(req, "room", pos[0]);
	if (d >= 0)
		set_int(req, "duration_s", d);
	return req;
}

static json_t *build_stim(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;
	int on;

	plain_args(cmd, a, pos);
	if (strcmp(pos[1], "on") == 0)
		on = 1;
	else if (strcmp(pos[1], "off") == 0)
		on = 0;
	else
		bad_usage(cmd, "expected on or off, not", pos[1]);
	req = new_request(cmd->name);
	set_str(req, "room", pos[0]);
	json_object_set_new(req, "on", json_boolean(on));
	return req;
}

static json_t *build_flag(const struct command *cmd, struct args *a)
{
	json_t *req = new_request(cmd->name), *flags = json_array();
	const char *arg, *room = NULL;
	int opt;

	while ((arg = next_arg(a, &opt))) {
		if (opt)
			bad_usage(cmd, "unknown option", arg);
		if (!room)
			room = arg;
		else
			add_flags(flags, arg);
	}
	if (!room || json_array_size(flags) == 0)
		bad_usage(cmd, "missing arguments", NULL);
	set_str(req, "room", room);
	json_object_set_new(req, "flags", flags);
	return req;
}

/* The sign is required: "needles 1 3" could be read as "now 3". */
static json_t *build_needles(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;
	long long d;

	plain_args(cmd, a, pos);
	if (pos[1][0] != '+' && pos[1][0] != '-')
		bad_usage(cmd, "the change needs a sign (+N added, -N dropped), not", pos[1]);
	d = int_arg("needles", pos[1]);
	req = new_request(cmd->name);
	set_str(req, "room", pos[0]);
	set_int(req, "delta", d);
	return req;
}

static json_t *build_sim_input(const struct command *cmd, struct args *a)
{
	const char *pos[2];
	json_t *req;

	plain_args(cmd, a, pos);
	if (strcmp(pos[1], "0") != 0 && strcmp(pos[1], "1") != 0)
		bad_usage(cmd, "LEVEL is 0 or 1, not", pos[1]);
	req = new_request(cmd->name);
	set_str(req, "line", pos[0]);
	set_int(req, "level", pos[1][0] - '0');
	return req;
}

static json_t *build_start(const struct command *cmd, struct args *a)
{
	json_t *req = new_request(cmd->name), *flags = json_array();
	const char *pos[2], *arg, *v;
	int n = 0, opt, stim = 0;

	while ((arg = next_arg(a, &opt))) {
		if (!opt) {
			if (n >= 2)
				bad_usage(cmd, "unexpected argument", arg);
			pos[n++] = arg;
		} else if ((v = option_value(a, arg, "--needles"))) {
			set_int(req, "needles", int_arg("--needles", v));
		} else if ((v = option_value(a, arg, "--profile"))) {
			set_str(req, "profile", v);
		} else if ((v = option_value(a, arg, "--patient"))) {
			if (!acu_valid_ref(v))
				usage_error("--patient: '%s' is not a chart code (1 to 32 of "
					    "A-Z a-z 0-9 . _ -; never a name)", v);
			set_str(req, "patient", v);
		} else if ((v = option_value(a, arg, "--flag"))) {
			add_flags(flags, v);
		} else if (strcmp(arg, "--stim") == 0) {
			stim = 1;
		} else {
			bad_usage(cmd, "unknown option", arg);
		}
	}
	if (n < 2)
		bad_usage(cmd, "missing arguments", NULL);
	set_str(req, "room", pos[0]);
	set_int(req, "duration_s", duration_arg(pos[1]));
	if (json_array_size(flags))
		json_object_set(req, "flags", flags);
	json_decref(flags);
	if (stim)
		json_object_set_new(req, "stim", json_true());
	return req;
}

static json_t *build_finish(const struct command *cmd, struct args *a)
{
	json_t *req = new_request(cmd->name);
	const char *arg, *v, *room = NULL;
	int opt, removed = 0;

	while ((arg = next_arg(a, &opt))) {
		if (!opt) {
			if (room)
				bad_usage(cmd, "unexpected argument", arg);
			room = arg;
		} else if ((v = option_value(a, arg, "--removed"))) {
			set_int(req, "removed", int_arg("--removed", v));
			removed = 1;
		} else if ((v = option_value(a, arg, "--override"))) {
			set_str(req, "override", v);
		} else {
			bad_usage(cmd, "unknown option", arg);
		}
	}
	if (!room)
		bad_usage(cmd, "missing ROOM", NULL);
	if (!removed)
		bad_usage(cmd, "--removed N is required: count the needles taken out", NULL);
	set_str(req, "room", room);
	return req;
}

/* --since: RFC 3339 goes as a string, unix seconds as a number, and a
 * duration ("2h") as the unix time that long ago. */
static json_t *since_arg(const char *s)
{
	int64_t v, ns;

	if (acu_parse_int(s, 0, INT64_MAX, &v) == 0 && s[0] != '+' && s[0] != '-')
		return json_integer(v);
	if (acu_parse_rfc3339(s, &ns) == 0)
		return json_string(s);
	if (acu_parse_duration(s, &v) == 0)
		return json_integer(acu_now().wall / NS_PER_SEC - v);
	usage_error("--since: '%s' is neither an RFC 3339 time, unix seconds nor a duration", s);
}

static json_t *build_history(const struct command *cmd, struct args *a)
{
	json_t *req = new_request(cmd->name);
	const char *arg, *v;
	int opt;

	while ((arg = next_arg(a, &opt))) {
		if (!opt)
			bad_usage(cmd, "unexpected argument", arg);
		else if ((v = option_value(a, arg, "--room")))
			set_str(req, "room", v);
		else if ((v = option_value(a, arg, "--since")))
			json_object_set_new(req, "since", since_arg(v));
		else if ((v = option_value(a, arg, "--limit")))
			set_int(req, "limit", int_arg("--limit", v));
		else
			bad_usage(cmd, "unknown option", arg);
	}
	return req;
}

/* --- rooms ----------------------------------------------------------------- */

/* A room object and when (monotonic ms) it was current: the board counts
 * down from there between events. */
struct broom {
	json_t *room;
	int64_t at;
};

static int terminal_cols(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col)
		return ws.ws_col;
	return 80;
}

static int terminal_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
		return ws.ws_row;
	return 24;
}

static long long elapsed_s(const struct broom *r, int64_t now)
{
	return now > r->at ? (now - r->at) / 1000 : 0;
}

static long long room_remaining(const struct broom *r, int64_t now)
{
	long long rem = jint(r->room, "remaining_s", 0);
	const char *st = jstr(r->room, "state");

	if (st && strcmp(st, "running") == 0)
		rem -= elapsed_s(r, now);
	return rem < 0 ? 0 : rem;
}

static long long room_overdue(const struct broom *r, int64_t now)
{
	long long od = jint(r->room, "overdue_s", 0);
	const char *st = jstr(r->room, "state");

	if (st && strcmp(st, "due") == 0)
		od += elapsed_s(r, now);
	return od < 0 ? 0 : od;
}

static void mmss(long long s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
}

static const char *due_priority(json_t *room)
{
	json_t *al = json_object_get(room, "alarms"), *e;
	size_t i;

	json_array_foreach(al, i, e) {
		const char *k = jstr(e, "kind");

		if (k && strcmp(k, "due") == 0)
			return jstr(e, "priority");
	}
	return "medium";
}

/* The time column: a bar of the time left, "paused", plain OVERDUE, or "-".
 * Returns the colour to show it in, if any. */
static const char *time_text(const struct broom *r, int64_t now, int barw, char *out, size_t len)
{
	const char *st = jstr(r->room, "state");
	char t[32];

	if (!st)
		st = "?";
	if (strcmp(st, "running") == 0) {
		long long rem = room_remaining(r, now), dur = jint(r->room, "duration_s", 0);
		int fill = 0, i, n = 0;

		mmss(rem, t, sizeof t);
		if (barw <= 0) {
			snprintf(out, len, "%s left", t);
			return NULL;
		}
		if (dur > 0) /* rounded up: a sliver stays until the last second */
			fill = (int)((rem * barw + dur - 1) / dur);
		fill = fill < 0 ? 0 : fill > barw ? barw : fill;
		if ((size_t)barw + 32 > len)
			barw = (int)len - 32;
		out[n++] = '[';
		for (i = 0; i < barw; i++)
			out[n++] = i < fill ? '#' : '-';
		out[n++] = ']';
		snprintf(out + n, len - (size_t)n, " %s left", t);
		return NULL;
	}
	if (strcmp(st, "paused") == 0) {
		mmss(room_remaining(r, now), t, sizeof t);
		snprintf(out, len, "paused %s left", t);
		return NULL;
	}
	if (strcmp(st, "due") == 0) {
		mmss(room_overdue(r, now), t, sizeof t);
		snprintf(out, len, "OVERDUE %s", t);
		return use_colour ? prio_colour(due_priority(r->room)) : NULL;
	}
	if (strcmp(st, "idle") == 0) {
		snprintf(out, len, "-");
		return NULL;
	}
	snprintf(out, len, "%s", st);
	return NULL;
}

/* Active alarms, highest priority first (a stable insertion sort). */
static int sorted_alarms(json_t *room, json_t **out)
{
	json_t *al = json_object_get(room, "alarms"), *e;
	size_t i;
	int n = 0;

	json_array_foreach(al, i, e) {
		int j;

		if (!json_is_object(e) || n >= MAX_ALARMS)
			continue;
		for (j = n; j > 0 && prio_rank(jstr(out[j - 1], "priority")) <
					   prio_rank(jstr(e, "priority")); j--)
			out[j] = out[j - 1];
		out[j] = e;
		n++;
	}
	return n;
}

/* The ALARMS cell: kinds, highest first, HIGH ones in capitals so they stand
 * out without colour too; a room marked for attention leads with ATTN. */
static void put_alarms(struct sbuf *b, json_t *room, int width)
{
	json_t *al[MAX_ALARMS];
	int n = sorted_alarms(room, al), left = width, shown = 0;

	if (jstr(room, "attention")) {
		left -= put_text(b, "ATTN", left, use_colour ? C_HIGH : NULL);
		shown++;
	}
	for (int i = 0; i < n && left > 0; i++) {
		const char *kind = jstr(al[i], "kind"), *prio = jstr(al[i], "priority");
		char label[64];

		snprintf(label, sizeof label, "%s", kind ? kind : "?");
		if (prio_rank(prio) == 3)
			for (char *p = label; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
		if (shown++) {
			if (left < 2) {
				put_text(b, "~", left, NULL);
				break;
			}
			sb_add(b, ",", 1);
			left--;
		}
		left -= put_text(b, label, left, prio_colour(prio));
	}
	if (!shown)
		sb_add(b, "-", 1);
}

static const char *stim_text(json_t *room)
{
	json_t *st = json_object_get(room, "stim");
	const char *state = jstr(room, "state");

	if (json_is_true(json_object_get(st, "on")))
		return "ON";
	if (json_is_true(json_object_get(st, "armed")))
		return "armed";
	if (jstr(st, "blocked") && state && strcmp(state, "idle") != 0)
		return "BLOCK";
	if (!state || strcmp(state, "idle") == 0)
		return "-";
	return "off";
}

struct layout {
	int id, name, state, bar, time, patient, needles, stim, alarms;
};

/* What the rows need: widest id, name and patient, and the widest time text
 * without a bar (running rows add the bar and its brackets to theirs). */
struct natural {
	int id, name, patient, plain, running;
};

static int time_width(const struct natural *nat, int bar)
{
	int w = nat->plain > 4 ? nat->plain : 4;

	if (nat->running && nat->running + bar + 3 > w)
		w = nat->running + bar + 3;
	return w;
}

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Fits the columns to the width (80 on a pipe): ALARMS takes what is left,
 * at least about a dozen columns; a wider terminal gives more room to names,
 * patient codes and the bar; a narrow one takes it from the bar and names,
 * then drops NEEDLES and PATIENT (alarms stay in sight). */
static void layout_for(struct layout *l, const struct natural *nat, int cols)
{
	int fixed, name_max = clampi(nat->name, 4, 24), patient_max = clampi(nat->patient, 7, 12);

	l->id = clampi(nat->id, 2, 8);
	l->name = clampi(nat->name, 4, 12);
	l->state = 7;
	l->bar = 8;
	l->patient = clampi(nat->patient, 7, 8);
	l->needles = 7;
	l->stim = 5;
	for (;;) {
		l->time = time_width(nat, l->bar);
		fixed = l->id + l->name + l->state + l->time + l->stim + 5;
		fixed += (l->patient ? l->patient + 1 : 0) + (l->needles ? l->needles + 1 : 0);
		l->alarms = cols - fixed - 1; /* the last column stays free: no auto-wrap */
		if (l->alarms > 20 && l->name < name_max)
			l->name++;
		else if (l->alarms > 20 && l->patient && l->patient < patient_max)
			l->patient++;
		else if (l->alarms > 20 && nat->running && l->bar < 20)
			l->bar++;
		else if (l->alarms < 12 && nat->running && l->bar > 4)
			l->bar--;
		else if (l->alarms < 12 && l->name > 6)
			l->name--;
		else if (l->alarms < 10 && l->needles) /* alarms matter more */
			l->needles = 0;
		else if (l->alarms < 10 && l->patient)
			l->patient = 0;
		else
			break;
	}
	if (l->alarms < 4)
		l->alarms = 4;
}

/* One line per room; eol ends each line (the board also clears to its end).
 * At most maxrows lines are written; returns how many. */
static int render_table(struct sbuf *b, const struct broom *rooms, int n, int cols, int64_t now,
			int maxrows, const char *eol)
{
	struct natural nat = { 0, 0, 0, 0, 0 };
	struct layout l;
	int lines = 0, i;

	if (maxrows < 1)
		return 0;
	for (i = 0; i < n; i++) {
		json_t *r = rooms[i].room;
		const char *id = jstr(r, "id"), *name = jstr(r, "name"), *p = jstr(r, "patient");
		const char *state = jstr(r, "state");
		char t[128];
		int w;

		nat.id = (w = id ? text_cols(id) : 1) > nat.id ? w : nat.id;
		nat.name = (w = name ? text_cols(name) : 0) > nat.name ? w : nat.name;
		nat.patient = (w = p ? text_cols(p) : 1) > nat.patient ? w : nat.patient;
		time_text(&rooms[i], now, 0, t, sizeof t);
		w = text_cols(t);
		if (state && strcmp(state, "running") == 0)
			nat.running = w > nat.running ? w : nat.running;
		else
			nat.plain = w > nat.plain ? w : nat.plain;
	}
	layout_for(&l, &nat, cols);
	if (use_colour)
		sb_puts(b, C_BOLD);
	put_cell(b, "ID", l.id + 1, NULL);
	put_cell(b, "NAME", l.name + 1, NULL);
	put_cell(b, "STATE", l.state + 1, NULL);
	put_cell(b, "TIME", l.time + 1, NULL);
	if (l.patient)
		put_cell(b, "PATIENT", l.patient + 1, NULL);
	if (l.needles)
		put_cell(b, "NEEDLES", l.needles + 1, NULL);
	put_cell(b, "STIM", l.stim + 1, NULL);
	sb_puts(b, "ALARMS");
	if (use_colour)
		sb_puts(b, C_OFF);
	sb_puts(b, eol);
	lines++;
	for (i = 0; i < n; i++) {
		json_t *r = rooms[i].room;
		const char *state = jstr(r, "state"), *col, *patient = jstr(r, "patient");
		char t[128], nd[16];
		int idle = !state || strcmp(state, "idle") == 0;

		if (lines == maxrows - 1 && i < n - 1) {
			sb_printf(b, "... and %d more rooms (a taller terminal shows them)%s", n - i,
				  eol);
			return lines + 1;
		}
		col = time_text(&rooms[i], now, l.bar, t, sizeof t);
		if (idle)
			snprintf(nd, sizeof nd, "-");
		else
			snprintf(nd, sizeof nd, "%lld", jint(r, "needles", 0));
		put_cell(b, jstr(r, "id") ? jstr(r, "id") : "?", l.id, NULL);
		sb_add(b, " ", 1);
		put_cell(b, jstr(r, "name") ? jstr(r, "name") : "", l.name, NULL);
		sb_add(b, " ", 1);
		put_cell(b, state ? state : "?", l.state, NULL);
		sb_add(b, " ", 1);
		put_cell(b, t, l.time, col);
		sb_add(b, " ", 1);
		if (l.patient) {
			put_cell(b, patient ? patient : "-", l.patient, NULL);
			sb_add(b, " ", 1);
		}
		if (l.needles) {
			put_cell(b, nd, l.needles, NULL);
			sb_add(b, " ", 1);
		}
		put_cell(b, stim_text(r), l.stim, NULL);
		sb_add(b, " ", 1);
		put_alarms(b, r, l.alarms);
		sb_puts(b, eol);
		lines++;
	}
	return lines;
}

/* "key: value" lines of the detail views. */
static void kv_begin(struct sbuf *b, const char *key)
{
	int n = text_cols(key) + 1;

	sb_clean_all(b, key);
	sb_add(b, ":", 1);
	pad(b, (n < 23 ? 23 - n : 1));
}

static void kv_value(struct sbuf *b, const char *key, json_t *v)
{
	kv_begin(b, key);
	put_value(b, v, "yes", "no");
	sb_add(b, "\n", 1);
}

static void kv_seconds(struct sbuf *b, const char *key, json_t *v)
{
	char t[32];

	kv_begin(b, key);
	if (json_is_integer(v)) {
		mmss(json_integer_value(v), t, sizeof t);
		sb_printf(b, "%" JSON_INTEGER_FORMAT " (%s)", json_integer_value(v), t);
	} else {
		put_value(b, v, "yes", "no");
	}
	sb_add(b, "\n", 1);
}

static void show_stim_detail(struct sbuf *b, json_t *st)
{
	const char *key;
	json_t *v, *ch;
	size_t i;

	if (!json_is_object(st)) {
		kv_value(b, "stim", st);
		return;
	}
	json_object_foreach(st, key, v) {
		char label[64];

		if (strcmp(key, "channels") == 0 && json_is_array(v)) {
			json_array_foreach(v, i, ch) {
				json_t *p = json_object_get(ch, "pulses");

				snprintf(label, sizeof label, "stim.channel %lld",
					 jint(ch, "channel", (long long)i + 1));
				kv_begin(b, label);
				sb_printf(b, "%s, %lld s delivered",
					  json_is_true(json_object_get(ch, "on")) ? "on" : "off",
					  jint(ch, "delivered_s", 0));
				if (json_is_integer(p))
					sb_printf(b, ", %" JSON_INTEGER_FORMAT " pulses",
						  json_integer_value(p));
				sb_add(b, "\n", 1);
			}
			continue;
		}
		snprintf(label, sizeof label, "stim.%.40s", key);
		kv_value(b, label, v);
	}
}

static void show_alarms_detail(struct sbuf *b, json_t *room)
{
	json_t *al[MAX_ALARMS];
	int n = sorted_alarms(room, al);

	if (!n) {
		kv_begin(b, "alarms");
		sb_puts(b, "none\n");
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *kind = jstr(al[i], "kind"), *prio = jstr(al[i], "priority");
		const char *since = jstr(al[i], "since"), *sil = jstr(al[i], "silenced_until");
		const char *col = prio_colour(prio);
		char label[64];

		snprintf(label, sizeof label, "alarm %.40s", kind ? kind : "?");
		kv_begin(b, label);
		if (col)
			sb_puts(b, col);
		sb_clean_all(b, prio ? prio : "?");
		if (col)
			sb_puts(b, C_OFF);
		if (since) {
			sb_puts(b, ", since ");
			sb_clean_all(b, since);
		}
		sb_puts(b, ", ");
		if (sil) {
			sb_puts(b, "silenced until ");
			sb_clean_all(b, sil);
		} else {
			sb_puts(b, "not silenced");
		}
		sb_add(b, "\n", 1);
	}
}

/* Every field of the room object, the known ones in a sensible order with
 * the time line after the state, then anything newer acud adds. */
static void show_room_detail(struct sbuf *b, json_t *room)
{
	static const char *const order[] = {
		"id", "name", "state", "patient", "practitioner", "started_at", "ends_at",
		"duration_s", "remaining_s", "overdue_s", "paused_s", "needles", "profile",
		"flags", "stim", "checkin_due_at", "checkins", "alarms", "alarm_level",
		"attention", NULL,
	};
	struct broom r = { room, now_ms() };
	const char *key, *col;
	json_t *v;
	char t[128];

	for (int i = 0; order[i]; i++) {
		key = order[i];
		v = json_object_get(room, key);
		if (strcmp(key, "alarms") == 0) {
			show_alarms_detail(b, room);
			continue;
		}
		if (!v)
			continue;
		if (strcmp(key, "stim") == 0) {
			show_stim_detail(b, v);
		} else if (strlen(key) > 2 && strcmp(key + strlen(key) - 2, "_s") == 0) {
			kv_seconds(b, key, v);
		} else {
			kv_value(b, key, v);
		}
		if (strcmp(key, "state") == 0) {
			col = time_text(&r, r.at, 20, t, sizeof t);
			kv_begin(b, "time");
			put_text(b, t, (int)sizeof t, col);
			sb_add(b, "\n", 1);
		}
	}
	json_object_foreach(room, key, v) {
		int known = 0;

		for (int i = 0; order[i]; i++)
			known |= strcmp(key, order[i]) == 0;
		if (!known)
			kv_value(b, key, v);
	}
}

/* The one line a session command answers with, e.g.
 * "room 1: running, 20:00 left, 6 needles". */
static void room_line(struct sbuf *b, json_t *room)
{
	const char *state = jstr(room, "state"), *id = jstr(room, "id");
	const char *attention = jstr(room, "attention"), *col;
	struct broom r = { room, now_ms() };
	json_t *al[MAX_ALARMS], *stim = json_object_get(room, "stim");
	long long needles = jint(room, "needles", 0);
	int n;
	char t[128];

	sb_puts(b, "room ");
	sb_clean_all(b, id ? id : "?");
	sb_puts(b, ": ");
	sb_clean_all(b, state ? state : "?");
	if (state && strcmp(state, "idle") != 0) {
		col = time_text(&r, r.at, 0, t, sizeof t);
		if (strncmp(t, "paused ", 7) == 0)
			memmove(t, t + 7, strlen(t + 7) + 1);
		sb_puts(b, ", ");
		put_text(b, t, (int)sizeof t, col);
		sb_printf(b, ", %lld needle%s", needles, needles == 1 ? "" : "s");
		if (json_is_true(json_object_get(stim, "on")))
			sb_puts(b, ", stim on");
		else if (json_is_true(json_object_get(stim, "armed")))
			sb_puts(b, ", stim armed");
		else if (jstr(stim, "blocked")) {
			sb_puts(b, ", stim blocked (");
			sb_clean_all(b, jstr(stim, "blocked"));
			sb_puts(b, ")");
		}
	}
	n = sorted_alarms(room, al);
	for (int i = 0; i < n; i++) {
		const char *prio = jstr(al[i], "priority"), *c = prio_colour(prio);

		sb_puts(b, i ? ", " : ", alarms: ");
		if (c)
			sb_puts(b, c);
		sb_clean_all(b, jstr(al[i], "kind") ? jstr(al[i], "kind") : "?");
		sb_puts(b, " (");
		sb_clean_all(b, prio ? prio : "?");
		if (jstr(al[i], "silenced_until")) {
			sb_puts(b, ", silenced until ");
			sb_clean_all(b, jstr(al[i], "silenced_until"));
		}
		sb_puts(b, ")");
		if (c)
			sb_puts(b, C_OFF);
	}
	if (attention) {
		sb_puts(b, ", attention: ");
		sb_clean_all(b, attention);
	}
	sb_add(b, "\n", 1);
}

/* --- showing replies ------------------------------------------------------- */

static void show_room(json_t *reply)
{
	struct sbuf b = { 0 };
	json_t *room = json_object_get(reply, "room");

	if (json_is_object(room))
		room_line(&b, room);
	else
		sb_puts(&b, "done\n");
	sb_flush(&b, stdout);
	sb_free(&b);
}

static void show_status(json_t *reply)
{
	json_t *rooms = json_object_get(reply, "rooms"), *room = json_object_get(reply, "room");
	struct sbuf b = { 0 };

	if (json_is_object(room)) {
		show_room_detail(&b, room);
	} else if (json_is_array(rooms) && json_array_size(rooms) == 0) {
		sb_puts(&b, "no rooms configured\n");
	} else if (json_is_array(rooms)) {
		size_t n = json_array_size(rooms);
		struct broom *br = calloc(n, sizeof *br);
		int64_t now = now_ms();

		if (!br)
			die(RC_UNREACHABLE, "out of memory");
		for (size_t i = 0; i < n; i++) {
			br[i].room = json_array_get(rooms, i);
			br[i].at = now;
		}
		render_table(&b, br, (int)n, terminal_cols(), now, 1 << 30, "\n");
		if (isatty(STDOUT_FILENO))
			clip_lines(&b, terminal_cols() - 1);
		free(br);
	} else {
		sb_puts(&b, "no rooms in the reply\n");
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

static void profile_freq(json_t *p, char *buf, size_t len)
{
	const char *mode = jstr(p, "mode");
	long long f = jint(p, "frequency_hz", 0);

	if (mode && strcmp(mode, "dense-disperse") == 0)
		snprintf(buf, len, "%lld/%lld Hz", f, jint(p, "alt_frequency_hz", 0));
	else if (mode && strcmp(mode, "intermittent") == 0)
		snprintf(buf, len, "%lld Hz %lld/%llds", f, jint(p, "on_s", 0), jint(p, "off_s", 0));
	else
		snprintf(buf, len, "%lld Hz", f);
}

static void show_profiles(json_t *reply)
{
	json_t *list = json_object_get(reply, "profiles"), *p;
	struct sbuf b = { 0 };
	int namew = 4, cols = terminal_cols(), descw;
	size_t i;

	if (json_array_size(list) == 0) {
		puts("no profiles configured");
		return;
	}
	json_array_foreach(list, i, p) {
		const char *name = jstr(p, "name");
		int w = name ? text_cols(name) : 1;

		namew = w > namew ? w : namew;
	}
	namew = namew > 20 ? 20 : namew;
	descw = cols - (namew + 1 + 15 + 14 + 9);
	if (use_colour)
		sb_puts(&b, C_BOLD);
	put_cell(&b, "NAME", namew + 1, NULL);
	put_cell(&b, "MODE", 15, NULL);
	put_cell(&b, "FREQ", 14, NULL);
	put_cell(&b, "DURATION", 9, NULL);
	sb_puts(&b, "DESCRIPTION");
	if (use_colour)
		sb_puts(&b, C_OFF);
	sb_add(&b, "\n", 1);
	json_array_foreach(list, i, p) {
		json_t *d = json_object_get(p, "duration_s");
		char freq[64], dur[32];

		profile_freq(p, freq, sizeof freq);
		if (json_is_integer(d))
			mmss(json_integer_value(d), dur, sizeof dur);
		else
			snprintf(dur, sizeof dur, "session");
		put_cell(&b, jstr(p, "name") ? jstr(p, "name") : "?", namew, NULL);
		sb_add(&b, " ", 1);
		put_cell(&b, jstr(p, "mode") ? jstr(p, "mode") : "?", 14, NULL);
		sb_add(&b, " ", 1);
		put_cell(&b, freq, 13, NULL);
		sb_add(&b, " ", 1);
		put_cell(&b, dur, 8, NULL);
		sb_add(&b, " ", 1);
		put_text(&b, jstr(p, "description") ? jstr(p, "description") : "", descw, NULL);
		sb_add(&b, "\n", 1);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

static void show_profile(json_t *reply)
{
	static const char *const order[] = {
		"name", "description", "mode", "frequency_hz", "alt_frequency_hz", "switch_s",
		"on_s", "off_s", "pulse_width_us", "delay_s", "duration_s", "channels",
		"pregnancy_safe", NULL,
	};
	json_t *p = json_object_get(reply, "profile"), *v;
	struct sbuf b = { 0 };
	const char *key;

	for (int i = 0; order[i]; i++) {
		key = order[i];
		v = json_object_get(p, key);
		if (!v)
			continue;
		if (strcmp(key, "duration_s") == 0 && json_is_null(v)) {
			kv_begin(&b, key);
			sb_puts(&b, "- (the rest of the session)\n");
		} else if (strcmp(key, "channels") == 0 && json_is_null(v)) {
			kv_begin(&b, key);
			sb_puts(&b, "all of the room's\n");
		} else if (strcmp(key, "duration_s") == 0 || strcmp(key, "delay_s") == 0) {
			kv_seconds(&b, key, v);
		} else {
			kv_value(&b, key, v);
		}
	}
	json_object_foreach(p, key, v) {
		int known = 0;

		for (int i = 0; order[i]; i++)
			known |= strcmp(key, order[i]) == 0;
		if (!known)
			kv_value(&b, key, v);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

/* key=value, quoted when it has spaces; nested objects flattened one level
 * ("session" records only their gist: the whole room object is in --json). */
static void put_detail(struct sbuf *b, const char *key, json_t *v, int depth)
{
	static const char *const gist[] = {
		"patient", "practitioner", "started_at", "duration_s", "paused_s",
		"needles", "profile", "flags", NULL,
	};
	char sub[128];
	const char *k;
	json_t *e;

	if (json_is_null(v))
		return;
	if (json_is_object(v) && depth == 0) {
		if (strcmp(key, "session") == 0) {
			for (int i = 0; gist[i]; i++)
				if ((e = json_object_get(v, gist[i])))
					put_detail(b, gist[i], e, 1);
			return;
		}
		json_object_foreach(v, k, e) {
			snprintf(sub, sizeof sub, "%.60s.%.60s", key, k);
			put_detail(b, sub, e, 1);
		}
		return;
	}
	sb_add(b, " ", 1);
	sb_clean_all(b, key);
	sb_add(b, "=", 1);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (!*s || strpbrk(s, " \t\"=")) {
			char *q = json_dumps(v, JSON_ENCODE_ANY);

			sb_clean_all(b, q ? q : "?");
			free(q);
			return;
		}
	}
	if (json_is_array(v) && json_array_size(v) == 0)
		sb_puts(b, "none");
	else
		put_value(b, v, "yes", "no");
}

static void show_history(json_t *reply)
{
	json_t *list = json_object_get(reply, "entries"), *e, *v;
	struct sbuf b = { 0 };
	int roomw = 2, typew = 4;
	const char *key;
	size_t i;

	if (json_array_size(list) == 0) {
		puts("no history entries");
		return;
	}
	json_array_foreach(list, i, e) {
		const char *room = jstr(e, "room"), *type = jstr(e, "type");
		int w;

		if (room && (w = text_cols(room)) > roomw)
			roomw = w > 8 ? 8 : w;
		if (type && (w = text_cols(type)) > typew)
			typew = w > 12 ? 12 : w;
	}
	json_array_foreach(list, i, e) {
		const char *ts = jstr(e, "ts"), *room = jstr(e, "room"), *type = jstr(e, "type");
		char tbuf[40];

		if (!ts) {
			acu_rfc3339(jint(e, "ts_ns", 0), tbuf, sizeof tbuf);
			ts = tbuf;
		}
		put_cell(&b, ts, 20, NULL);
		sb_add(&b, " ", 1);
		put_cell(&b, room ? room : "-", roomw, NULL);
		sb_add(&b, " ", 1);
		put_text(&b, type ? type : "?", typew, NULL);
		if (json_object_size(e) > 0)
			pad(&b, typew - text_cols(type ? type : "?"));
		json_object_foreach(e, key, v) {
			if (strcmp(key, "ts") && strcmp(key, "ts_ns") && strcmp(key, "room") &&
			    strcmp(key, "type"))
				put_detail(&b, key, v, 0);
		}
		/* no trailing blanks when an entry has no details */
		while (b.len && b.s[b.len - 1] == ' ')
			b.s[--b.len] = '\0';
		sb_add(&b, "\n", 1);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

static void show_reload(json_t *reply)
{
	(void)reply;
	puts("acud: configuration reloaded");
}

static void show_version(json_t *reply)
{
	struct sbuf b = { 0 };
	const char *v = jstr(reply, "version"), *user = jstr(reply, "user");
	const char *role = jstr(reply, "role");
	long long proto = jint(reply, "protocol", -1);

	sb_printf(&b, "acuctl %s (protocol %d)\nacud   ", ACUD_VERSION, ACUD_PROTOCOL);
	sb_clean_all(&b, v ? v : "?");
	if (proto >= 0)
		sb_printf(&b, " (protocol %lld)", proto);
	sb_add(&b, "\n", 1);
	if (user) {
		sb_puts(&b, "you    ");
		sb_clean_all(&b, user);
		if (role) {
			sb_puts(&b, " (");
			sb_clean_all(&b, role);
			sb_puts(&b, ")");
		}
		sb_add(&b, "\n", 1);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
	if (proto >= 0 && proto != ACUD_PROTOCOL)
		fprintf(stderr, "acuctl: warning: acud speaks protocol %lld, acuctl %d\n", proto,
			ACUD_PROTOCOL);
}

static void show_sim_input(json_t *reply)
{
	struct sbuf b = { 0 };
	const char *line = jstr(reply, "line");

	sb_puts(&b, "line ");
	sb_clean_all(&b, line ? line : "?");
	sb_printf(&b, " set to %lld\n", jint(reply, "level", -1));
	sb_flush(&b, stdout);
	sb_free(&b);
}

/* --- watch ------------------------------------------------------------------ */

/* Not a terminal (or --json): every event line as it came, flushed, so a
 * pipe sees each one when it happens. */
static int watch_stream(struct conn *c)
{
	set_handler(SIGINT, on_quit);
	set_handler(SIGTERM, on_quit);
	set_handler(SIGHUP, on_quit);
	for (;;) {
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		size_t len;
		char *line;
		ssize_t n;

		while ((line = conn_take_line(c, &len))) {
			fwrite(line, 1, len, stdout);
			fputc('\n', stdout);
			if (fflush(stdout) == EOF)
				return RC_DONE; /* the reader went away */
		}
		n = conn_fill(c);
		if (n > 0)
			continue;
		if (n == 0)
			unreachable("acud closed the event stream");
		if (errno != EAGAIN && errno != EINTR)
			unreachable("event stream: %s", strerror(errno));
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			unreachable("poll: %s", strerror(errno));
	}
}

struct board {
	struct broom *rooms;
	int n, cap;
	char events[BOARD_EVENTS][160]; /* newest first */
	int nevents;
	/* The stream: live, or lost (acud restarting) and retried every second
	 * while the last known rooms stay on screen, their clocks stopped. */
	int live;
	int64_t lost_ms;                /* monotonic, when it was lost */
	char lost_clock[16];            /* the same as HH:MM:SS */
	char why[160];                  /* the last failure */
	int64_t next_try;
};

static struct broom *board_find(struct board *bd, const char *id)
{
	for (int i = 0; id && i < bd->n; i++) {
		const char *rid = jstr(bd->rooms[i].room, "id");

		if (rid && strcmp(rid, id) == 0)
			return &bd->rooms[i];
	}
	return NULL;
}

/* Takes a reference to room. */
static void board_put(struct board *bd, json_t *room)
{
	struct broom *r = board_find(bd, jstr(room, "id"));

	if (!r) { /* a room added by a reload */
		if (bd->n == bd->cap) {
			int cap = bd->cap ? bd->cap * 2 : 16;
			struct broom *p = realloc(bd->rooms, (size_t)cap * sizeof *p);

			if (!p)
				die(RC_UNREACHABLE, "out of memory");
			bd->rooms = p;
			bd->cap = cap;
		}
		r = &bd->rooms[bd->n++];
		r->room = NULL;
	}
	json_decref(r->room);
	r->room = json_incref(room);
	r->at = now_ms();
}

static void __attribute__((format(printf, 2, 3))) board_log(struct board *bd, const char *fmt, ...)
{
	char clock[16];
	time_t t = time(NULL);
	struct tm tm;
	va_list ap;
	int n;

	memmove(bd->events[1], bd->events[0], sizeof bd->events[0] * (BOARD_EVENTS - 1));
	strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&t, &tm));
	n = snprintf(bd->events[0], sizeof bd->events[0], "%s  ", clock);
	va_start(ap, fmt);
	vsnprintf(bd->events[0] + n, sizeof bd->events[0] - (size_t)n, fmt, ap);
	va_end(ap);
	if (bd->nevents < BOARD_EVENTS)
		bd->nevents++;
}

/* Room events replace the room; alarm and gate events patch it, so the board
 * is right even before the room event that follows them. */
static void board_apply(struct board *bd, const char *line, size_t len)
{
	json_t *ev = json_loadb(line, len, 0, NULL), *room;
	const char *type = jstr(ev, "event"), *id = jstr(ev, "room");
	struct broom *r;

	if (!type) {
		json_decref(ev);
		return;
	}
	if (strcmp(type, "room") == 0 && json_is_object(room = json_object_get(ev, "room"))) {
		const char *before = NULL, *after = jstr(room, "state");

		r = board_find(bd, jstr(room, "id"));
		if (r)
			before = jstr(r->room, "state");
		if (after && (!before || strcmp(before, after) != 0))
			board_log(bd, "room %.32s: %.16s", jstr(room, "id") ? jstr(room, "id") : "?",
				  after);
		board_put(bd, room);
	} else if (strcmp(type, "alarm") == 0 && (r = board_find(bd, id))) {
		json_t *alarms = json_object_get(r->room, "alarms"), *e;
		const char *kind = jstr(ev, "kind"), *prio = jstr(ev, "priority");
		size_t i;

		if (!json_is_array(alarms)) {
			alarms = json_array();
			json_object_set_new(r->room, "alarms", alarms);
		}
		json_array_foreach(alarms, i, e) {
			if (kind && jstr(e, "kind") && strcmp(jstr(e, "kind"), kind) == 0) {
				json_array_remove(alarms, i);
				break;
			}
		}
		if (kind && prio && json_is_true(json_object_get(ev, "active")))
			json_array_append_new(alarms, json_pack("{s:s,s:s,s:o,s:n}", "kind", kind,
								 "priority", prio, "since",
								 json_incref(json_object_get(ev, "since")),
								 "silenced_until"));
		board_log(bd, "room %.32s: alarm %.20s %.12s (%.8s)", id, kind ? kind : "?",
			  jstr(ev, "change") ? jstr(ev, "change") :
			  json_is_true(json_object_get(ev, "active")) ? "raised" : "cleared",
			  prio ? prio : "?");
	} else if (strcmp(type, "gate") == 0 && (r = board_find(bd, id))) {
		json_t *stim = json_object_get(r->room, "stim"), *chans, *ch;
		long long channel = jint(ev, "channel", 0);
		int on = json_is_true(json_object_get(ev, "on")), any = 0;
		size_t i;

		chans = json_object_get(stim, "channels");
		json_array_foreach(chans, i, ch) {
			if (jint(ch, "channel", 0) == channel)
				json_object_set_new(ch, "on", json_boolean(on));
			any |= json_is_true(json_object_get(ch, "on"));
		}
		if (json_is_object(stim))
			json_object_set_new(stim, "on", json_boolean(any));
		board_log(bd, "room %.32s: channel %lld %s (%.40s)", id, channel, on ? "on" : "off",
			  jstr(ev, "cause") ? jstr(ev, "cause") : "?");
	}
	json_decref(ev);
}

static void board_draw(struct board *bd, int full)
{
	static const char eol[] = "\033[K\n";
	int cols = terminal_cols(), rows = terminal_rows(), left;
	struct sbuf b = { 0 };
	char head[256], clock[16];
	time_t t = time(NULL);
	struct tm tm;
	ssize_t n;
	size_t off = 0;

	/* Lines stop one short of the bottom: a newline there would scroll. */
	rows = rows < 4 ? 4 : rows;
	strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&t, &tm));
	sb_puts(&b, full ? "\033[H\033[2J" : "\033[H");
	snprintf(head, sizeof head, "acud  %s  %d room%s  %s  (q quits)", clock, bd->n,
		 bd->n == 1 ? "" : "s", sock_path);
	put_text(&b, head, cols, use_colour ? C_BOLD : NULL);
	sb_puts(&b, eol);
	if (!bd->live) {
		/* What is shown is as it was then: the countdowns stop there too. */
		snprintf(head, sizeof head, "*** NOT LIVE since %s *** %s; retrying every second",
			 bd->lost_clock, bd->why);
		put_text(&b, head, cols, use_colour ? C_ALERT : NULL);
	}
	sb_puts(&b, eol);
	left = rows - 1 - 2;
	/* Rooms first; recent events get what is left under them. */
	left -= render_table(&b, bd->rooms, bd->n, cols, bd->live ? now_ms() : bd->lost_ms, left,
			     eol);
	if (bd->nevents && left >= 2) {
		sb_puts(&b, eol);
		left--;
		for (int i = 0; i < bd->nevents && left > 0; i++, left--) {
			put_text(&b, bd->events[i], cols, NULL);
			sb_puts(&b, eol);
		}
	}
	sb_puts(&b, "\033[J");
	clip_lines(&b, cols - 1);
	while (off < b.len) {
		n = write(STDOUT_FILENO, b.s + off, b.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	sb_free(&b);
}

static void board_clear(struct board *bd)
{
	for (int i = 0; i < bd->n; i++)
		json_decref(bd->rooms[i].room);
	bd->n = 0;
}

static void board_free(struct board *bd)
{
	board_clear(bd);
	free(bd->rooms);
}

/* The stream ended: the board stays, marked NOT LIVE, and reconnects. */
static void board_lost(struct board *bd, struct conn *c, const char *why)
{
	time_t t = time(NULL);
	struct tm tm;

	conn_close(c);
	bd->live = 0;
	bd->lost_ms = now_ms();
	strftime(bd->lost_clock, sizeof bd->lost_clock, "%H:%M:%S", localtime_r(&t, &tm));
	snprintf(bd->why, sizeof bd->why, "%s", why);
	bd->next_try = bd->lost_ms + RETRY_MS;
	board_log(bd, "NOT LIVE: %s", why);
}

/* One reply of the reconnection; NULL with why when it is not a yes. */
static json_t *board_reply(struct conn *c, json_t *req, int64_t deadline, char *why, size_t wlen)
{
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	char *line;
	json_t *reply, *v, *e;
	size_t len;

	line = conn_next_line(c, deadline, &len, why, wlen);
	if (!line)
		return NULL;
	reply = json_loadb(line, len, 0, NULL);
	v = json_object_get(reply, "id");
	if (!json_is_object(reply) || !json_is_boolean(json_object_get(reply, "ok")) ||
	    (v && !(json_is_integer(v) && json_integer_value(v) == id))) {
		snprintf(why, wlen, "garbage reply");
	} else if (json_is_false(json_object_get(reply, "ok"))) {
		e = json_object_get(reply, "error");
		snprintf(why, wlen, "acud refused: %.40s: %.100s",
			 jstr(e, "code") ? jstr(e, "code") : acu_errcode_name(E_INTERNAL),
			 jstr(e, "message") ? jstr(e, "message") : "(no message)");
	} else {
		return reply;
	}
	json_decref(reply);
	return NULL;
}

/* status and watch again, as at the start: the board starts over from a
 * snapshot no event can precede. */
static void board_reconnect(struct board *bd, struct conn *c)
{
	int64_t deadline = now_ms() + RECONNECT_MS;
	json_t *reqs[2] = { new_request("status"), new_request("watch") };
	json_t *status = NULL, *watch = NULL, *rooms, *room;
	char why[160];
	size_t i;

	if (conn_connect(c, why, sizeof why) < 0) {
		char tmp[sizeof why];

		snprintf(tmp, sizeof tmp, "%s", why);
		snprintf(why, sizeof why, "cannot reach acud: %.140s", tmp);
		goto fail;
	}
	if (send_requests_by(c, reqs, 2, deadline, why, sizeof why) < 0 ||
	    !(status = board_reply(c, reqs[0], deadline, why, sizeof why)) ||
	    !(watch = board_reply(c, reqs[1], deadline, why, sizeof why)))
		goto fail;
	rooms = json_object_get(status, "rooms");
	if (!json_is_array(rooms)) {
		snprintf(why, sizeof why, "garbage reply (no rooms in the status)");
		goto fail;
	}
	board_clear(bd);
	json_array_foreach(rooms, i, room)
		if (json_is_object(room))
			board_put(bd, room);
	bd->live = 1;
	board_log(bd, "live again (lost at %s)", bd->lost_clock);
	goto out;
fail:
	conn_close(c);
	if (strcmp(why, bd->why) != 0)
		board_log(bd, "NOT LIVE: %s", why);
	snprintf(bd->why, sizeof bd->why, "%s", why);
	bd->next_try = now_ms() + RETRY_MS;
out:
	json_decref(status);
	json_decref(watch);
	json_decref(reqs[0]);
	json_decref(reqs[1]);
}

/* A terminal: status and watch go in one write, so acud answers both before
 * any event and the board starts from a snapshot no event can precede. */
static int watch_board(struct conn *c, json_t *status_req, json_t *watch_req)
{
	json_t *reqs[2] = { status_req, watch_req }, *reply, *rooms, *room;
	struct board bd = { .live = 1 };
	int have_keys = isatty(STDIN_FILENO), full = 1;
	size_t i;

	send_requests(c, reqs, 2);
	reply = await_reply(c, status_req);
	if (!reply)
		return RC_REFUSED;
	rooms = json_object_get(reply, "rooms");
	if (!json_is_array(rooms)) {
		json_decref(reply);
		unreachable("garbage reply (no rooms in the status)");
	}
	json_array_foreach(rooms, i, room)
		if (json_is_object(room))
			board_put(&bd, room);
	json_decref(reply);
	reply = await_reply(c, watch_req);
	if (!reply) {
		board_free(&bd);
		return RC_REFUSED;
	}
	json_decref(reply);

	atexit(term_restore);
	set_handler(SIGINT, on_quit);
	set_handler(SIGTERM, on_quit);
	set_handler(SIGHUP, on_quit);
	set_handler(SIGWINCH, on_winch);
	set_handler(SIGTSTP, on_tstp);
	term_enter();
	for (;;) {
		struct pollfd pfd[2] = { { STDIN_FILENO, POLLIN, 0 }, { -1, POLLIN, 0 } };
		int64_t now;
		size_t len;
		char *line;
		ssize_t n;
		int prc, wait;

		if (got_cont) { /* back from Ctrl-Z */
			got_cont = 0;
			term_enter();
			full = 1;
		}
		if (got_winch) {
			got_winch = 0;
			full = 1;
		}
		if (!bd.live && now_ms() >= bd.next_try)
			board_reconnect(&bd, c);
		board_draw(&bd, full);
		full = 0;
		/* Wake at the next whole second: the countdowns move without events;
		 * and for the next attempt when not live. */
		now = now_ms();
		wait = (int)(1000 - now % 1000);
		if (!bd.live && bd.next_try - now < wait)
			wait = bd.next_try > now ? (int)(bd.next_try - now) : 0;
		/* Keys first in the set: without them, the stream alone (or nothing). */
		pfd[1].fd = c->fd;
		prc = poll(pfd + !have_keys, (nfds_t)(have_keys + bd.live), wait);
		if (prc < 0 && errno != EINTR)
			unreachable("poll: %s", strerror(errno));
		if (prc <= 0)
			continue;
		if (have_keys && (pfd[0].revents & (POLLIN | POLLHUP))) {
			char key[64];

			n = read(STDIN_FILENO, key, sizeof key);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				have_keys = 0; /* stdin gone: Ctrl-C still quits */
			for (ssize_t k = 0; k < n; k++) {
				if (key[k] == 'q' || key[k] == 'Q')
					goto out;
				if (key[k] == '\f' || key[k] == 'r')
					full = 1;
			}
		}
		if (bd.live && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			while ((n = conn_fill(c)) > 0)
				while ((line = conn_take_line(c, &len)))
					board_apply(&bd, line, len);
			if (n == 0)
				board_lost(&bd, c, "acud closed the event stream");
			else if (errno != EAGAIN && errno != EINTR)
				board_lost(&bd, c, strerror(errno));
		}
	}
out:
	term_restore();
	board_free(&bd);
	return RC_DONE;
}

static int do_watch(const struct command *cmd, struct args *a)
{
	const char *pos[1];
	json_t *watch_req, *status_req, *reply;
	struct conn c;
	int rc;

	plain_args(cmd, a, pos);
	use_colour = use_colour && !opt_json;
	conn_open(&c);
	if (!opt_json && isatty(STDOUT_FILENO)) {
		status_req = new_request("status");
		watch_req = new_request("watch");
		rc = watch_board(&c, status_req, watch_req);
		json_decref(status_req);
	} else {
		watch_req = new_request("watch");
		send_requests(&c, &watch_req, 1);
		reply = await_reply(&c, watch_req);
		rc = reply ? watch_stream(&c) : RC_REFUSED;
		json_decref(reply);
	}
	json_decref(watch_req);
	conn_close(&c);
	return rc;
}

/* --- main ---------------------------------------------------------------- */

static const struct command commands[] = {
	{ "status", "status [ROOM]", 0, 1, build_plain, show_status },
	{ "watch", "watch", 0, 0, NULL, NULL },
	{ "start", "start ROOM DURATION [--needles N] [--profile P] [--patient REF] "
		   "[--flag F]... [--stim]", 2, 2, build_start, show_room },
	{ "pause", "pause ROOM", 1, 1, build_plain, show_room },
	{ "resume", "resume ROOM", 1, 1, build_plain, show_room },
	{ "stop", "stop ROOM", 1, 1, build_plain, show_room },
	{ "checkin", "checkin ROOM", 1, 1, build_plain, show_room },
	{ "extend", "extend ROOM DURATION", 2, 2, build_extend, show_room },
	{ "finish", "finish ROOM --removed N [--override REASON]", 1, 1, build_finish, show_room },
	{ "stim", "stim ROOM on|off", 2, 2, build_stim, show_room },
	{ "flag", "flag ROOM FLAG...", 2, 2, build_flag, show_room },
	{ "needles", "needles ROOM +N|-N", 2, 2, build_needles, show_room },
	{ "silence", "silence ROOM [DURATION]", 1, 2, build_silence, show_room },
	{ "profiles", "profiles", 0, 0, build_plain, show_profiles },
	{ "profile", "profile NAME", 1, 1, build_plain, show_profile },
	{ "history", "history [--room R] [--since T] [--limit N]", 0, 0, build_history,
	  show_history },
	{ "reload", "reload", 0, 0, build_plain, show_reload },
	{ "version", "version", 0, 0, build_plain, show_version },
	{ "sim-input", "sim-input LINE LEVEL", 2, 2, build_sim_input, show_sim_input },
};

int main(int argc, char **argv)
{
	struct args a = { argc, argv, 1, 0 };
	const struct command *cmd = NULL;
	const char *name, *env = getenv("ACUD_SOCKET"), *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");
	json_t *req, *reply;
	struct conn c;
	int opt;

	if (env && *env)
		sock_path = env;
	name = next_arg(&a, &opt);
	if (!name) {
		usage(stderr);
		return RC_USAGE;
	}
	if (opt)
		usage_error("unknown option %s", name);
	if (strcmp(name, "help") == 0) {
		usage(stdout);
		return RC_DONE;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(name, commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd)
		usage_error("unknown command '%s'", name);
	/* https://no-color.org: a non-empty NO_COLOR turns colour off. */
	use_colour = isatty(STDOUT_FILENO) && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);

	if (!cmd->build)
		return do_watch(cmd, &a);
	req = cmd->build(cmd, &a);
	conn_open(&c);
	send_requests(&c, &req, 1);
	reply = await_reply(&c, req);
	conn_close(&c);
	json_decref(req);
	if (!reply)
		return RC_REFUSED;
	if (!opt_json)
		cmd->show(reply);
	json_decref(reply);
	/* acud did it: a lost reply on stdout does not make it undone. */
	if (fflush(stdout) == EOF || ferror(stdout))
		fprintf(stderr, "acuctl: warning: cannot write the reply: %s\n", strerror(errno));
	return RC_DONE;
}

/* acubench: the load generator of `make bench`. It speaks acud's raw protocol
 * (one JSON line per request, one line per reply) over the Unix socket, and the
 * same loops drive redis for the references. Every time is CLOCK_MONOTONIC, the
 * clock acud stamps its sim trace with, so client-side instants and trace lines
 * on this machine can be subtracted directly.
 *
 *   acubench rr SOCK CONNS SECS REQUEST
 *       closed-loop round trips: CONNS connections (one epoll thread, one
 *       request in flight per connection, like redis-benchmark), for SECS
 *       seconds; prints one JSON object (rps, p50/p99/max latency).
 *   acubench expiry SOCK SECS DMIN DMAX PROFILE ROOM...
 *       P2: keeps short sessions (DMIN..DMAX s, stimulation armed so the gate
 *       is on) cycling in ROOMs for SECS seconds; finishes each when due and
 *       starts the next after a random gap. Prints "S ROOM DUR SEND_NS RECV_NS"
 *       per session; the expiry lateness is read from the trace by the driver.
 *   acubench cutoff SOCK TRIALS PROFILE ROOM:INTERLOCK...
 *       P4: per trial and kind (stop, flag pacemaker, interlock sim-input):
 *       start with stimulation, then CLOCK_MONOTONIC just before send() of the
 *       cut-off request, then clean up. Prints "C KIND ROOM SEND_NS".
 *   acubench hop SOCK TRIALS
 *       P4's floor: TRIALS times a stop request to bench/hopref (which writes
 *       one trace line per request), 3 ms apart as cutoff's are; prints
 *       "H SEND_NS" per trial.
 *   acubench fanout SOCK NWATCH TRIALS WATCHREQ ACKMARK TRIGGER EVMARK
 *                   [STATUSREQ NSTATUS]
 *       P6: NWATCH watcher connections send WATCHREQ and wait for ACKMARK;
 *       then optionally NSTATUS sequential STATUSREQ round trips on another
 *       connection; then TRIALS times: send TRIGGER on the control connection
 *       and time until every watcher has received one more EVMARK. Prints one
 *       JSON object. The same code measures redis SUBSCRIBE/PUBLISH. SOCK may
 *       be "CTLSOCK,tcp:HOST:PORT": the watchers then connect there (P7's
 *       web board event streams, WATCHREQ an HTTP GET) and TRIGGER goes to
 *       CTLSOCK.
 *
 * Requests are given as they go on the wire without the trailing newline
 * ("\n" is appended; "\r\n" for requests starting with an upper-case letter,
 * which are redis inline commands). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL

static int64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
	struct timespec ts = { (time_t)(t / NS), (long)(t % NS) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "acubench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int dial(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect %s: %s", path, strerror(errno));
	return fd;
}

/* "tcp:HOST:PORT" (IPv4), or a Unix socket path. */
static int dial_any(const char *spec)
{
	struct sockaddr_in sa;
	char host[64];
	const char *colon;
	int fd, one = 1;

	if (strncmp(spec, "tcp:", 4) != 0)
		return dial(spec);
	colon = strrchr(spec + 4, ':');
	if (!colon || (size_t)(colon - spec - 4) >= sizeof host)
		die("bad address %s", spec);
	memcpy(host, spec + 4, (size_t)(colon - spec - 4));
	host[colon - spec - 4] = '\0';
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad address %s", spec);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect %s: %s", spec, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* The request as it goes on the wire. */
static char *wire(const char *req, size_t *len)
{
	size_t n = strlen(req);
	char *w = malloc(n + 3);

	if (!w)
		die("out of memory");
	memcpy(w, req, n);
	if (req[0] >= 'A' && req[0] <= 'Z')
		w[n++] = '\r';
	w[n++] = '\n';
	w[n] = '\0';
	*len = n;
	return w;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				usleep(50);
				continue;
			}
			die("send: %s", strerror(errno));
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* --- samples ---------------------------------------------------------------- */

struct samples {
	int64_t *v;
	size_t n, cap;
};

static void add_sample(struct samples *s, int64_t x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		if (!s->v)
			die("out of memory");
	}
	s->v[s->n++] = x;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile, in microseconds. */
static double pct_us(struct samples *s, double q)
{
	size_t i;

	if (!s->n)
		return -1;
	i = (size_t)(q * (double)s->n);
	if (i >= s->n)
		i = s->n - 1;
	return (double)s->v[i] / 1000.0;
}

static void print_lat(const char *prefix, struct samples *s)
{
	qsort(s->v, s->n, sizeof *s->v, cmp64);
	printf("\"%sn\":%zu,\"%sp50_us\":%.1f,\"%sp99_us\":%.1f,\"%smax_us\":%.1f", prefix, s->n,
	       prefix, pct_us(s, 0.50), prefix, pct_us(s, 0.99), prefix,
	       s->n ? (double)s->v[s->n - 1] / 1000.0 : -1.0);
}

/* --- blocking line client (set-up and the P2/P4 loops) ----------------------- */

struct line_conn {
	int fd;
	char buf[1 << 16];
	size_t len;
};

/* Reads one reply line into out (truncated to outlen); returns its length. */
static size_t read_line(struct line_conn *c, char *out, size_t outlen)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf) + 1, k = n - 1 < outlen - 1 ? n - 1 : outlen - 1;
			memcpy(out, c->buf, k);
			out[k] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return k;
		}
		if (c->len == sizeof c->buf) /* a long line: keep its head only */
			c->len = sizeof c->buf / 2;
		ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
		if (r <= 0)
			die("recv: %s", r == 0 ? "connection closed" : strerror(errno));
		c->len += (size_t)r;
	}
}

static int64_t t_sent; /* CLOCK_MONOTONIC just before send() of the last request */

/* One request, one reply; returns 1 when the reply says ok. */
static int call(struct line_conn *c, char *reply, size_t replen, const char *fmt, ...)
{
	char req[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(req, sizeof req - 1, fmt, ap);
	va_end(ap);
	req[n++] = '\n';
	t_sent = mono();
	send_all(c->fd, req, (size_t)n);
	read_line(c, reply, replen);
	return strstr(reply, "\"ok\":true") != NULL;
}

/* --- rr --------------------------------------------------------------------- */

struct rr_conn {
	int fd;
	int64_t sent;
	int first;
};

static int cmd_rr(int argc, char **argv)
{
	const char *path;
	int conns, secs, ep, errors = 0;
	char *req;
	size_t reqlen;
	struct rr_conn *cs;
	struct samples lat = { 0 };
	int64_t start, end, now;
	long long done = 0;
	static char buf[1 << 20];
	struct epoll_event evs[256];

	if (argc != 6)
		die("usage: rr SOCK CONNS SECS REQUEST");
	path = argv[2];
	conns = atoi(argv[3]);
	secs = atoi(argv[4]);
	req = wire(argv[5], &reqlen);
	raise_nofile();
	cs = calloc((size_t)conns, sizeof *cs);
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < conns; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		cs[i].fd = dial(path);
		cs[i].first = 1;
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
	}
	start = mono();
	end = start + (int64_t)secs * NS;
	for (int i = 0; i < conns; i++) {
		cs[i].sent = mono();
		send_all(cs[i].fd, req, reqlen);
	}
	int active = conns;
	while (active > 0) {
		int n = epoll_wait(ep, evs, 256, 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && mono() > end + 10 * NS)
			die("rr: no replies for 10 s");
		for (int k = 0; k < n; k++) {
			struct rr_conn *c = &cs[evs[k].data.u32];
			ssize_t r = recv(c->fd, buf, sizeof buf, 0);
			if (r <= 0)
				die("rr: recv: %s", r == 0 ? "connection closed" : strerror(errno));
			if (c->first) { /* the head of a reply: {"ok":true,... or a RESP +PONG */
				if (!(memmem(buf, (size_t)r, "\"ok\":true", 9) || buf[0] == '+' ||
				      buf[0] == '*'))
					errors++;
				c->first = 0;
			}
			if (buf[r - 1] != '\n') /* more of a long reply to come */
				continue;
			now = mono();
			add_sample(&lat, now - c->sent);
			done++;
			c->first = 1;
			if (now >= end) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				active--;
				continue;
			}
			c->sent = now;
			send_all(c->fd, req, reqlen);
		}
	}
	now = mono();
	printf("{\"conns\":%d,\"requests\":%lld,\"secs\":%.3f,\"rps\":%.0f,\"errors\":%d,", conns,
	       done, (double)(now - start) / NS, (double)done * NS / (double)(now - start), errors);
	print_lat("", &lat);
	printf("}\n");
	return errors ? 1 : 0;
}

/* --- expiry (P2) ------------------------------------------------------------ */

struct xroom {
	const char *id;
	int running;
	int dur;
	int64_t next, send, recv;
};

static int cmd_expiry(int argc, char **argv)
{
	struct line_conn *c = calloc(1, sizeof *c);
	int secs, dmin, dmax, n, idle_done = 0;
	const char *profile;
	struct xroom *rs;
	char reply[4096];
	int64_t start, end;
	long retries = 0, sessions = 0;

	if (argc < 8)
		die("usage: expiry SOCK SECS DMIN DMAX PROFILE ROOM...");
	c->fd = dial(argv[2]);
	secs = atoi(argv[3]);
	dmin = atoi(argv[4]);
	dmax = atoi(argv[5]);
	profile = argv[6];
	n = argc - 7;
	rs = calloc((size_t)n, sizeof *rs);
	srand(12345);
	start = mono();
	end = start + (int64_t)secs * NS;
	/* Staggered first starts, so that deadlines fall all over the second. */
	for (int i = 0; i < n; i++) {
		rs[i].id = argv[7 + i];
		rs[i].next = start + (int64_t)(rand() % 1000) * 1000000;
	}
	while (idle_done < n) {
		struct xroom *r = NULL;
		for (int i = 0; i < n; i++)
			if (rs[i].next >= 0 && (!r || rs[i].next < r->next))
				r = &rs[i];
		if (!r)
			break;
		sleep_until(r->next);
		if (!r->running) {
			if (mono() >= end) {
				r->next = -1;
				idle_done++;
				continue;
			}
			r->dur = dmin + rand() % (dmax - dmin + 1);
			if (!call(c, reply, sizeof reply,
				  "{\"cmd\":\"start\",\"room\":\"%s\",\"duration_s\":%d,\"needles\":1,"
				  "\"profile\":\"%s\",\"stim\":true}", r->id, r->dur, profile))
				die("expiry: start room %s: %s", r->id, reply);
			r->send = t_sent;
			r->recv = mono();
			r->running = 1;
			/* finish a little after the deadline; retried while not yet due */
			r->next = r->recv + (int64_t)r->dur * NS + 20 * 1000000;
			sessions++;
		} else {
			if (call(c, reply, sizeof reply, "{\"cmd\":\"finish\",\"room\":\"%s\",\"removed\":1}",
				 r->id)) {
				printf("S %s %d %lld %lld\n", r->id, r->dur, (long long)r->send,
				       (long long)r->recv);
				r->running = 0;
				r->next = mono() + (int64_t)(rand() % 300) * 1000000;
			} else if (strstr(reply, "invalid-state")) {
				retries++;
				r->next = mono() + 5 * 1000000;
			} else {
				die("expiry: finish room %s: %s", r->id, reply);
			}
		}
	}
	fprintf(stderr, "expiry: %ld sessions, %ld early finishes retried\n", sessions, retries);
	return 0;
}

/* --- cutoff (P4) ------------------------------------------------------------ */

static int cmd_cutoff(int argc, char **argv)
{
	struct line_conn *c = calloc(1, sizeof *c);
	static const char *const kinds[] = { "stop", "flag", "interlock" };
	int trials, n, k = 0;
	const char *profile;
	char reply[4096];

	if (argc < 6)
		die("usage: cutoff SOCK TRIALS PROFILE ROOM:INTERLOCK...");
	c->fd = dial(argv[2]);
	trials = atoi(argv[3]);
	profile = argv[4];
	n = argc - 5;
	for (int t = 0; t < trials; t++) {
		for (int kind = 0; kind < 3; kind++) {
			char room[32], *line;
			int64_t sent;

			snprintf(room, sizeof room, "%s", argv[5 + k++ % n]);
			line = strchr(room, ':');
			if (!line)
				die("cutoff: ROOM:INTERLOCK expected, not %s", room);
			*line++ = '\0';
			if (!call(c, reply, sizeof reply,
				  "{\"cmd\":\"start\",\"room\":\"%s\",\"duration_s\":600,\"needles\":1,"
				  "\"profile\":\"%s\",\"stim\":true}", room, profile))
				die("cutoff: start room %s: %s", room, reply);
			/* gate on, state saved; let the loop go quiet */
			usleep(3000);
			switch (kind) {
			case 0:
				if (!call(c, reply, sizeof reply, "{\"cmd\":\"stop\",\"room\":\"%s\"}", room))
					die("cutoff: stop: %s", reply);
				break;
			case 1:
				if (!call(c, reply, sizeof reply,
					  "{\"cmd\":\"flag\",\"room\":\"%s\",\"flags\":[\"pacemaker\"]}", room))
					die("cutoff: flag: %s", reply);
				break;
			default:
				if (!call(c, reply, sizeof reply,
					  "{\"cmd\":\"sim-input\",\"line\":\"%s\",\"level\":1}", line))
					die("cutoff: sim-input: %s", reply);
				break;
			}
			sent = t_sent;
			/* the interlock edge is handled after the reply: give it time */
			usleep(5000);
			if (kind == 2 && !call(c, reply, sizeof reply,
					       "{\"cmd\":\"sim-input\",\"line\":\"%s\",\"level\":0}", line))
				die("cutoff: sim-input clear: %s", reply);
			if (kind != 0 &&
			    !call(c, reply, sizeof reply, "{\"cmd\":\"stop\",\"room\":\"%s\"}", room))
				die("cutoff: stop after %s: %s", kinds[kind], reply);
			if (!call(c, reply, sizeof reply, "{\"cmd\":\"finish\",\"room\":\"%s\",\"removed\":1}",
				  room))
				die("cutoff: finish: %s", reply);
			printf("C %s %s %lld\n", kinds[kind], room, (long long)sent);
		}
	}
	return 0;
}

static int cmd_hop(int argc, char **argv)
{
	struct line_conn *c = calloc(1, sizeof *c);
	char reply[4096];
	int trials;

	if (argc != 4)
		die("usage: hop SOCK TRIALS");
	c->fd = dial(argv[2]);
	trials = atoi(argv[3]);
	for (int t = 0; t < trials; t++) {
		usleep(3000);
		if (!call(c, reply, sizeof reply, "{\"cmd\":\"stop\",\"room\":\"2\"}"))
			die("hop: %s", reply);
		printf("H %lld\n", (long long)t_sent);
	}
	return 0;
}

/* --- fanout (P6) ------------------------------------------------------------ */

struct watcher {
	int fd;
	int acked;
	long events;
	size_t keep;                   /* bytes of a possibly split marker kept from the last read */
	char tail[64];
};

/* Counts markers in what arrived, including one split across two reads. */
static long count_marks(struct watcher *w, const char *data, size_t len, const char *mark,
			size_t mlen, char *scratch)
{
	long found = 0;
	size_t total = w->keep + len;
	const char *p, *endp;

	memcpy(scratch, w->tail, w->keep);
	memcpy(scratch + w->keep, data, len);
	p = scratch;
	endp = scratch + total;
	while ((p = memmem(p, (size_t)(endp - p), mark, mlen))) {
		found++;
		p += mlen;
	}
	w->keep = total < mlen - 1 ? total : mlen - 1;
	memcpy(w->tail, endp - w->keep, w->keep);
	return found;
}

static int cmd_fanout(int argc, char **argv)
{
	const char *path, *wpath, *ackmark, *evmark;
	char *comma;
	int nwatch, trials, nstatus = 0, ep;
	char *watchreq, *trigger, *statusreq = NULL;
	size_t wlen, tlen, slen = 0, alen, elen;
	struct watcher *ws;
	struct line_conn *ctl = calloc(1, sizeof *ctl);
	struct samples fan = { 0 }, first = { 0 }, status = { 0 };
	static char buf[1 << 20], scratch[(1 << 20) + 128], reply[1 << 16];
	struct epoll_event evs[512];
	int64_t t0;

	if (argc != 9 && argc != 11)
		die("usage: fanout SOCK NWATCH TRIALS WATCHREQ ACKMARK TRIGGER EVMARK [STATUSREQ N]");
	path = argv[2];
	wpath = path;
	comma = strchr(argv[2], ',');
	if (comma) {
		*comma = '\0';
		wpath = comma + 1;
	}
	nwatch = atoi(argv[3]);
	trials = atoi(argv[4]);
	watchreq = wire(argv[5], &wlen);
	ackmark = argv[6];
	alen = strlen(ackmark);
	trigger = wire(argv[7], &tlen);
	evmark = argv[8];
	elen = strlen(evmark);
	if (argc == 11) {
		statusreq = wire(argv[9], &slen);
		nstatus = atoi(argv[10]);
	}
	raise_nofile();
	ws = calloc((size_t)nwatch, sizeof *ws);
	ep = epoll_create1(EPOLL_CLOEXEC);
	t0 = mono();
	for (int i = 0; i < nwatch; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		ws[i].fd = dial_any(wpath);
		send_all(ws[i].fd, watchreq, wlen);
		set_nonblock(ws[i].fd);
		epoll_ctl(ep, EPOLL_CTL_ADD, ws[i].fd, &e);
	}
	/* every watcher acknowledged */
	for (int acked = 0; acked < nwatch;) {
		int n = epoll_wait(ep, evs, 512, 10000);
		if (n <= 0)
			die("fanout: %d of %d watchers acknowledged", acked, nwatch);
		for (int k = 0; k < n; k++) {
			struct watcher *w = &ws[evs[k].data.u32];
			ssize_t r = recv(w->fd, buf, sizeof buf, 0);
			if (r <= 0)
				die("fanout: watcher closed before its ack");
			if (!w->acked && memmem(buf, (size_t)r, ackmark, alen)) {
				w->acked = 1;
				acked++;
			}
		}
	}
	double setup_s = (double)(mono() - t0) / NS;
	ctl->fd = dial(path);
	for (int i = 0; i < nstatus; i++) {
		int64_t s = mono();
		send_all(ctl->fd, statusreq, slen);
		read_line(ctl, reply, sizeof reply);
		add_sample(&status, mono() - s);
		if (!strstr(reply, "\"ok\":true"))
			die("fanout: status: %.200s", reply);
	}
	/* let whatever set-up produced drain, then count from zero */
	usleep(200000);
	for (;;) {
		int n = epoll_wait(ep, evs, 512, 0);
		if (n <= 0)
			break;
		for (int k = 0; k < n; k++)
			while (recv(ws[evs[k].data.u32].fd, buf, sizeof buf, 0) > 0)
				;
	}
	for (int t = 1; t <= trials; t++) {
		int64_t s, firstt = 0;
		int done = 0;

		/* Each trial counts the first event after its trigger. A running
		 * count went ahead of the trials for good with one event of
		 * another room (a timing alarm under P3's load, in P7's side
		 * load); now such an event ends one trial early at worst. */
		for (int i = 0; i < nwatch; i++) {
			ssize_t r;

			while ((r = recv(ws[i].fd, buf, sizeof buf, 0)) > 0)
				;
			if (r == 0)
				die("fanout: a watcher was dropped by the server");
			ws[i].events = 0;
			ws[i].keep = 0;
		}
		s = mono();
		send_all(ctl->fd, trigger, tlen);
		/* A change goes out once saved: under stress-ng --io one fsync
		 * has taken over 5 s here. */
		while (done < nwatch) {
			int n = epoll_wait(ep, evs, 512, 30000);
			if (n <= 0)
				die("fanout: trial %d: %d of %d watchers got the event", t, done, nwatch);
			for (int k = 0; k < n; k++) {
				struct watcher *w = &ws[evs[k].data.u32];
				ssize_t r;
				while ((r = recv(w->fd, buf, sizeof buf, 0)) > 0) {
					long before = w->events;
					w->events += count_marks(w, buf, (size_t)r, evmark, elen, scratch);
					if (!before && w->events) {
						if (!firstt)
							firstt = mono();
						done++;
					}
				}
				if (r == 0)
					die("fanout: a watcher was dropped by the server");
			}
		}
		add_sample(&fan, mono() - s);
		add_sample(&first, firstt - s);
		read_line(ctl, reply, sizeof reply);
		usleep(20000);
	}
	printf("{\"watchers\":%d,\"setup_s\":%.3f,", nwatch, setup_s);
	if (nstatus) {
		print_lat("status_", &status);
		printf(",");
	}
	print_lat("first_", &first);
	printf(",");
	print_lat("", &fan);
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		die("usage: acubench rr|expiry|cutoff|hop|fanout ...");
	if (strcmp(argv[1], "rr") == 0)
		return cmd_rr(argc, argv);
	if (strcmp(argv[1], "expiry") == 0)
		return cmd_expiry(argc, argv);
	if (strcmp(argv[1], "cutoff") == 0)
		return cmd_cutoff(argc, argv);
	if (strcmp(argv[1], "fanout") == 0)
		return cmd_fanout(argc, argv);
	if (strcmp(argv[1], "hop") == 0)
		return cmd_hop(argc, argv);
	die("unknown mode %s", argv[1]);
}

/* hopref: the floor of P4 (make bench). The least a daemon can do for a
 * cut-off request: read one request line from a Unix socket (blocking, one
 * connection) and write one line to a trace file stamped with CLOCK_MONOTONIC,
 * as the sim backend writes a gate-off, then answer. No parsing, no event
 * loop, no state: what is left of acud's cut-off latency above this is acud's.
 *
 * With -e it takes the same hop through libevent as acud does (a listener, a
 * bufferevent, acud's base flags): not the floor, but the share of
 * the gap that any libevent daemon pays, printed beside it.
 *
 *   hopref [-e] SOCK TRACE */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

static const char ok[] = "{\"ok\":true}\n";
static int trace_fd;

/* The trace line, stamped now, as the sim backend writes a gate-off. */
static int stamp(void)
{
	struct timespec ts;
	char line[96];
	int len;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	len = snprintf(line, sizeof line, "%lld 1 0\n",
		       (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	return write(trace_fd, line, (size_t)len) == len ? 0 : -1;
}

static int hop_plain(int ls)
{
	char buf[4096];
	int c;

	while ((c = accept(ls, NULL, NULL)) >= 0) {
		/* One request per read: the client waits for each answer. */
		while (read(c, buf, sizeof buf) > 0)
			if (stamp() < 0 || write(c, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
				break;
		close(c);
	}
	return 0;
}

static void ev_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	char *l;

	(void)arg;
	while ((l = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF))) {
		free(l);
		/* No answer would leave the client waiting for ever. */
		if (stamp() < 0) {
			perror("hopref: trace");
			exit(1);
		}
		bufferevent_write(bev, ok, sizeof ok - 1);
	}
}

static void ev_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void ev_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(arg, fd, BEV_OPT_CLOSE_ON_FREE);

	(void)l;
	(void)sa;
	(void)len;
	if (!bev) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, ev_read, NULL, ev_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int hop_libevent(int ls)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (!cfg)
		return 1;
	/* As acud.c sets up its base. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NO_CACHE_TIME);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!base || evutil_make_socket_nonblocking(ls) < 0 ||
	    !evconnlistener_new(base, ev_accept, base, LEV_OPT_CLOSE_ON_FREE, 0, ls))
		return 1;
	return event_base_dispatch(base) < 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ls, libevent = argc > 1 && strcmp(argv[1], "-e") == 0;

	argv += libevent;
	argc -= libevent;
	if (argc != 3 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: hopref [-e] SOCK TRACE\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	trace_fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (ls < 0 || trace_fd < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(ls, 4) < 0) {
		perror("hopref");
		return 1;
	}
	return libevent ? hop_libevent(ls) : hop_plain(ls);
}

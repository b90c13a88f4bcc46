/* hopref: the floor of P4 (make bench). The least a daemon can do for a
 * cut-off request: read one request line from a Unix socket (blocking, one
 * connection) and write one line to a trace file stamped with CLOCK_MONOTONIC,
 * as the sim backend writes a gate-off, then answer. No parsing, no event
 * loop, no state: what is left of acud's cut-off latency above this is acud's.
 *
 *   hopref SOCK TRACE */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char ok[] = "{\"ok\":true}\n";
	char buf[4096], line[96];
	int ls, c, t;

	if (argc != 3 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: hopref SOCK TRACE\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	t = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (ls < 0 || t < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4) < 0) {
		perror("hopref");
		return 1;
	}
	while ((c = accept(ls, NULL, NULL)) >= 0) {
		ssize_t n;

		while ((n = read(c, buf, sizeof buf)) > 0) {
			struct timespec ts;
			int len;

			/* One request per read: the client waits for each answer. */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			len = snprintf(line, sizeof line, "%lld 1 0\n",
				       (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
			if (write(t, line, (size_t)len) != len ||
			    write(c, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
				break;
		}
		close(c);
	}
	return 0;
}

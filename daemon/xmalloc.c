/* The allocation policy. Where the daemon cannot keep its promises without
 * the memory (start-up, the bookkeeping of a change): xmalloc and its family,
 * fatal on failure, which drives the outputs off first (fatalx). Where one
 * request, one client or one record can fail alone (a connection, a history
 * query, an event's text): a checked allocation that fails that one and says
 * so. The pure modules (cfg.c, room.c, history-pure.c) never exit: they
 * report. */
#include <stdlib.h>

#include "daemon.h"

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		fatalx("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *xrealloc(void *old, size_t n)
{
	void *p = realloc(old, n ? n : 1);

	if (!p)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

/* Logging to stderr with <N> syslog priority prefixes, which journald reads as
 * the message's priority (sd-daemon(3)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static int log_level = LOG_INFO;
static void (*fatal_hook)(void);

void log_init(int level)
{
	log_level = level;
}

void log_set_level(int level)
{
	log_level = level;
}

void log_set_fatal_hook(void (*hook)(void))
{
	fatal_hook = hook;
}

static void log_vmsg(int prio, const char *fmt, va_list ap)
{
	char buf[1024];

	if (prio > log_level)
		return;
	vsnprintf(buf, sizeof buf, fmt, ap);
	/* One write per message so concurrent writers never interleave mid-line. */
	fprintf(stderr, "<%d>acud: %s\n", prio, buf);
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, fmt, ap);
	va_end(ap);
	/* S1: outputs inactive on every exit path, fatal ones included. */
	if (fatal_hook)
		fatal_hook();
	exit(1);
}

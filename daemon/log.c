/* Logging to stderr with <N> syslog priority prefixes, which journald reads as
 * the message's priority (sd-daemon(3)). The conventions of OpenBSD's
 * daemons: a name without x appends ": strerror(errno)", one with x does not;
 * fatal and fatalx drive the outputs off (the hook) and exit.
 */
#include <errno.h>
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

static void __attribute__((format(printf, 2, 0))) log_vmsg(int prio, const char *fmt, va_list ap)
{
	char buf[1024];

	if (prio > log_level)
		return;
	vsnprintf(buf, sizeof buf, fmt, ap);
	/* One write per message so concurrent writers never interleave mid-line. */
	fprintf(stderr, "<%d>acud: %s\n", prio, buf);
}

/* The message and ": strerror(e)" (e = 0: the message alone). */
static void __attribute__((format(printf, 3, 0))) log_verr(int prio, int e, const char *fmt,
							     va_list ap)
{
	char buf[900];

	if (prio > log_level)
		return;
	vsnprintf(buf, sizeof buf, fmt, ap);
	if (e)
		fprintf(stderr, "<%d>acud: %s: %s\n", prio, buf, strerror(e));
	else
		fprintf(stderr, "<%d>acud: %s\n", prio, buf);
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

#define LOG_ERRNO(name, prio)                                                            \
	void name(const char *fmt, ...)                                                 \
	{                                                                               \
		int e = errno;                                                          \
		va_list ap;                                                             \
                                                                                        \
		va_start(ap, fmt);                                                      \
		log_verr(prio, e, fmt, ap);                                             \
		va_end(ap);                                                             \
		errno = e;                                                              \
	}
LOG_ERRNO(log_err, LOG_ERR)
LOG_ERRNO(log_warn, LOG_WARNING)

static void __attribute__((noreturn)) fatal_exit(void)
{
	/* S1: outputs inactive on every exit path, fatal ones included. */
	if (fatal_hook)
		fatal_hook();
	exit(1);
}

void fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	log_verr(LOG_CRIT, e, fmt, ap);
	va_end(ap);
	fatal_exit();
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, fmt, ap);
	va_end(ap);
	fatal_exit();
}

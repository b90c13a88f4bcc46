/* Small pure helpers shared by acud, acuctl and the tests. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strptime, timegm */
#endif
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acud.h"

static const char *const state_names[ST__N] = { "idle", "running", "paused", "due" };
static const char *const flag_names[FL__N] = {
	"pacemaker", "icd", "implanted-device", "pregnancy",
	"epilepsy", "heart-disease", "bleeding-disorder", "metal-implant",
};
static const char *const alarm_names[AL__N] = {
	"due", "checkin", "interlock", "needle-mismatch", "gpio-fault", "storage", "attention",
	"timing", "call",
};
static const char *const prio_names[] = { "none", "low", "medium", "high" };
static const char *const err_names[E__N] = {
	"ok", "bad-request", "unknown-command", "unknown-room", "unknown-profile",
	"forbidden", "invalid-state", "out-of-range", "contraindicated", "unsupported",
	"needle-mismatch", "interlock", "gpio-fault", "storage", "config", "internal",
};
static const char *const role_names[] = { "none", "desk", "practitioner", "technician" };
static const char *const cmd_names[CMD__N] = {
	"status", "watch", "start", "pause", "resume", "stop", "checkin", "extend", "finish",
	"stim", "flag", "needles", "silence", "profiles", "profile", "history", "reload",
	"version", "sim-input", "lines", "test",
};

const char *acu_state_name(enum acu_state s) { return (unsigned)s < ST__N ? state_names[s] : "?"; }
const char *acu_flag_name(enum acu_flag f) { return (unsigned)f < FL__N ? flag_names[f] : "?"; }
const char *acu_alarm_name(enum acu_alarm_kind k) { return (unsigned)k < AL__N ? alarm_names[k] : "?"; }
const char *acu_priority_name(enum acu_priority p) { return (unsigned)p <= PRIO_HIGH ? prio_names[p] : "?"; }
const char *acu_errcode_name(enum acu_errcode c) { return (unsigned)c < E__N ? err_names[c] : "internal"; }
const char *acu_role_name(enum acu_role r) { return (unsigned)r <= ROLE_TECHNICIAN ? role_names[r] : "?"; }
const char *acu_cmd_name(enum acu_cmd c) { return (unsigned)c < CMD__N ? cmd_names[c] : "?"; }

static int name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int acu_flag_parse(const char *s) { return name_index(flag_names, FL__N, s); }
int acu_cmd_parse(const char *s) { return name_index(cmd_names, CMD__N, s); }

int acu_flag_list(char *buf, size_t len, const char *sep)
{
	size_t n = 0;

	if (len)
		buf[0] = '\0';
	for (int i = 0; i < FL__N; i++) {
		int w = snprintf(n < len ? buf + n : NULL, n < len ? len - n : 0, "%s%s",
				 i ? sep : "", flag_names[i]);

		if (w < 0)
			return -1;
		n += (size_t)w;
	}
	return (int)n;
}

/* Length of the valid UTF-8 sequence at s, or 0 (overlongs, surrogates and
 * code points past U+10FFFF are invalid, as JSON requires). */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned c = s[0], cp, n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (unsigned i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int acu_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_seq(p);
		if (!n)
			return 0;
		p += n;
	}
	return 1;
}

/* Cuts s at its first invalid or incomplete sequence: a message cut to fit a
 * buffer never ends inside a character, so it stays valid JSON text. */
void acu_utf8_trim(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t n = utf8_seq(p);
		if (!n) {
			*p = '\0';
			return;
		}
		p += n;
	}
}

int acu_grow(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t n = *cap ? *cap : first;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -1;
		n *= 2;
	}
	if (!(p = realloc(*buf, n)))
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

int acu_fail(struct acu_err *err, enum acu_errcode code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		acu_utf8_trim(err->msg);
	}
	return -1;
}

int acu_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '-' || *s == '+'))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int acu_parse_share(const char *s, int64_t *ppm)
{
	int64_t whole = 0, frac = 0;
	int ndig = 0, nfrac = 0;

	if (!s)
		return -1;
	for (; isdigit((unsigned char)*s); s++, ndig++)
		if (ndig < 4)
			whole = whole * 10 + (*s - '0');
	if (ndig == 0 || ndig > 3)
		return -1;
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, nfrac++)
			if (nfrac < 4)
				frac = frac * 10 + (*s - '0');
		if (nfrac == 0 || nfrac > 4)
			return -1;
	}
	for (int i = nfrac; i < 4; i++)
		frac *= 10;
	if (*s == '%')
		s++;
	if (*s)
		return -1;
	/* percent with 4 decimals = ppm */
	whole = whole * 10000 + frac;
	if (whole > 1000000)
		return -1;
	*ppm = whole;
	return 0;
}

/* Accepts a sequence of NUMBER[UNIT] with units h, m, s in that order (a bare
 * number means seconds and must stand alone); caps at 10 days so nothing overflows. */
int acu_parse_duration(const char *s, int64_t *seconds)
{
	const int64_t cap = 10 * 24 * 3600;
	int64_t total = 0;
	int last_rank = 0, parts = 0;

	if (!s || !*s)
		return -1;
	while (*s) {
		int64_t v = 0;
		int digits = 0, rank;

		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s++ - '0');
			if (v > cap)
				return -1;
			digits++;
		}
		if (!digits)
			return -1;
		switch (*s) {
		case 'h': rank = 1; v *= 3600; s++; break;
		case 'm': rank = 2; v *= 60; s++; break;
		case 's': rank = 3; s++; break;
		case '\0':
			if (parts)
				return -1;
			rank = 4;
			break;
		default:
			return -1;
		}
		if (rank <= last_rank)
			return -1;
		last_rank = rank;
		total += v;
		if (total > cap)
			return -1;
		parts++;
	}
	*seconds = total;
	return 0;
}

int acu_valid_ref(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
			return 0;
		if (n >= ACU_ID_MAX)
			return 0;
	}
	return n >= 1;
}

void acu_rfc3339(int64_t wall_ns, char *buf, size_t len)
{
	time_t t = (time_t)(wall_ns / NS_PER_SEC);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

int acu_parse_rfc3339(const char *s, int64_t *wall_ns)
{
	struct tm tm;
	const char *p;
	int off = 0;
	time_t t;

	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') /* fractional seconds are accepted and dropped */
		for (p++; isdigit((unsigned char)*p); p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
			return -1;
		off = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	t = timegm(&tm);
	/* Within what nanoseconds since 1970 can hold (until 2262). */
	if (t == (time_t)-1 || t < 0 || (int64_t)t - off > INT64_MAX / NS_PER_SEC - 1)
		return -1;
	*wall_ns = ((int64_t)t - off) * NS_PER_SEC;
	return 0;
}

int64_t acu_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

struct acu_now acu_now(void)
{
	struct timespec ts;
	struct acu_now n;

	n.mono = acu_mono_now();
	clock_gettime(CLOCK_REALTIME, &ts);
	n.wall = (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
	return n;
}

/* The web board's decisions (SPEC §10) as pure functions of their inputs: no
 * I/O, no clock; tests/unit/test_web.c runs them over every case. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"

int web_parse_listen(const char *s, char *host, size_t hostlen, int *port, const char **why)
{
	const char *colon, *h = s, *p;
	size_t n;
	long v;
	char *end;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		char v6[64];
		struct in6_addr a;

		if (!close || close[1] != ':')
			return *why = "expected [IPV6]:PORT", -1;
		n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof v6)
			return *why = "not an IPv6 address in brackets", -1;
		memcpy(v6, s + 1, n);
		v6[n] = '\0';
		if (inet_pton(AF_INET6, v6, &a) != 1)
			return *why = "not an IPv6 address in brackets", -1;
		h = s + 1;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return *why = "expected HOST:PORT (e.g. 127.0.0.1:8080)", -1;
		if (memchr(s, ':', (size_t)(colon - s)))
			return *why = "an IPv6 address goes in brackets: [::1]:8080", -1;
		n = (size_t)(colon - s);
		if (n == 0)
			return *why = "the host is missing (0.0.0.0 for every address)", -1;
	}
	p = colon + 1;
	if (!isdigit((unsigned char)*p))
		return *why = "the port is not a number", -1;
	v = strtol(p, &end, 10);
	if (*end || strlen(p) > 5 || v > 65535)
		return *why = "the port is not a number from 0 to 65535", -1;
	if (n >= hostlen)
		return *why = "the host is too long", -1;
	memcpy(host, h, n);
	host[n] = '\0';
	if (*s != '[' && !web_valid_hostname(host)) {
		struct in_addr a;

		if (inet_pton(AF_INET, host, &a) != 1)
			return *why = "the host is neither an IP address nor a host name", -1;
	}
	*port = (int)v;
	return 0;
}

int web_valid_hostname(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Host without its port and trailing dot, into buf; 1 when it is an IP literal. */
static int host_part(const char *host, char *buf, size_t len, int *literal)
{
	const char *end;
	size_t n;

	*literal = 0;
	if (*host == '[') {
		struct in6_addr a;
		const char *close = strchr(host, ']');

		if (!close)
			return -1;
		n = (size_t)(close - host - 1);
		if (n == 0 || n >= len)
			return -1;
		memcpy(buf, host + 1, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, &a) != 1)
			return -1;
		*literal = 1;
		end = close + 1;
	} else {
		end = strchr(host, ':');
		if (!end)
			end = host + strlen(host);
		n = (size_t)(end - host);
		if (n == 0 || n >= len)
			return -1;
		memcpy(buf, host, n);
		buf[n] = '\0';
	}
	if (*end == ':') {
		const char *p = end + 1;

		if (!*p || strlen(p) > 5)
			return -1;
		for (; *p; p++)
			if (!isdigit((unsigned char)*p))
				return -1;
	} else if (*end) {
		return -1;
	}
	if (!*literal) {
		struct in_addr a;

		if (n > 1 && buf[n - 1] == '.')
			buf[--n] = '\0';
		if (inet_pton(AF_INET, buf, &a) == 1)
			*literal = 1;
		else if (!web_valid_hostname(buf))
			return -1;
	}
	return 0;
}

int web_host_allowed(const char *host, const char *const *names, int nnames)
{
	char h[256];
	int literal;

	if (!host || host_part(host, h, sizeof h, &literal) < 0)
		return 0;
	if (literal || strcasecmp(h, "localhost") == 0)
		return 1;
	for (int i = 0; i < nnames; i++) {
		size_t n = strlen(names[i]);

		if (n && names[i][n - 1] == '.')
			n--;
		if (n == strlen(h) && strncasecmp(h, names[i], n) == 0)
			return 1;
	}
	return 0;
}

enum web_route web_route(enum web_method m, const char *path)
{
	enum web_route r;

	if (!path)
		return WEB_NOT_FOUND;
	if (strcmp(path, "/") == 0)
		r = WEB_PAGE;
	else if (strcmp(path, "/api/status") == 0)
		r = WEB_STATUS;
	else if (strcmp(path, "/events") == 0)
		r = WEB_EVENTS;
	else
		return WEB_NOT_FOUND;
	return m == WEB_OTHER ? WEB_BAD_METHOD : r;
}

json_t *web_room_view(json_t *room, int show_patient)
{
	json_t *v;

	if (show_patient || !json_is_object(room))
		return json_incref(room);
	v = json_copy(room);
	if (!v)
		return NULL;
	if (json_object_get(v, "patient"))
		json_object_set_new(v, "patient", json_null());
	if (json_object_get(v, "flags"))
		json_object_set_new(v, "flags", json_array());
	return v;
}

int web_drop_pick(const size_t *backlog, int n, size_t per_max, size_t total_max)
{
	size_t total = 0, most = 0;
	int largest = -1;

	for (int i = 0; i < n; i++) {
		if (backlog[i] > per_max)
			return i;
		total += backlog[i];
		if (backlog[i] > most) {
			most = backlog[i];
			largest = i;
		}
	}
	return total > total_max ? largest : -1;
}

char *web_page_render(const char *page, size_t len, const char *nonce, size_t *outlen)
{
	static const char mark[] = "@NONCE@";
	size_t nl = strlen(nonce), count = 0, o = 0;
	const char *p = page, *end = page + len, *q;
	char *out;

	for (q = page; (q = memmem(q, (size_t)(end - q), mark, sizeof mark - 1)); q += sizeof mark - 1)
		count++;
	out = malloc(len + count * nl + 1);
	if (!out)
		return NULL;
	while ((q = memmem(p, (size_t)(end - p), mark, sizeof mark - 1))) {
		memcpy(out + o, p, (size_t)(q - p));
		o += (size_t)(q - p);
		memcpy(out + o, nonce, nl);
		o += nl;
		p = q + sizeof mark - 1;
	}
	memcpy(out + o, p, (size_t)(end - p));
	o += (size_t)(end - p);
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* The front desk's web board (SPEC §10): acud serves it with libevent's evhttp
 * on [web] listen or on a socket systemd passed. Read-only: what it shows comes
 * from `status` and the publisher of committed changes (daemon.h). */
#ifndef ACU_WEB_H
#define ACU_WEB_H

#include <stddef.h>
#include <jansson.h>

struct acud;
struct web;

/* The board, when [web] listen is set or systemd passed a listening socket;
 * NULL otherwise. NULL with err set (non-empty) when it could not start. */
struct web *web_open(struct acud *d, char *err, size_t errlen);
void web_close(struct web *w);

/* --- web-pure.c: the decisions, as pure functions ------------------------- */

/* "HOST:PORT" or "[IPV6]:PORT" into host (brackets removed) and port (0 to
 * 65535; 0 picks a free port). 0, or -1 with *why naming what is wrong. */
int web_parse_listen(const char *s, char *host, size_t hostlen, int *port, const char **why);

/* A DNS name as [web] hosts takes it: labels of letters, digits and '-',
 * dot-separated, at most 253 characters, no port. */
int web_valid_hostname(const char *s);

/* DNS rebinding: whether a request's Host header names this board. Accepted:
 * an IP literal (v4, or v6 in brackets; a rebinding attack needs a name),
 * "localhost", and the names given (the listen host and [web] hosts), any
 * case, with or without a trailing dot and a port. A missing or malformed
 * header is refused. */
int web_host_allowed(const char *host, const char *const *names, int nnames);

enum web_method { WEB_GET, WEB_HEAD, WEB_OTHER };
enum web_route { WEB_PAGE, WEB_STATUS, WEB_EVENTS, WEB_NOT_FOUND, WEB_BAD_METHOD };
/* The path decides first (every other path 404), then the method (GET and
 * HEAD only: 405). path is the request's path without its query. */
enum web_route web_route(enum web_method m, const char *path);

/* The room object as the board shows it: shared (a new reference) when
 * show_patient, else a copy without the chart code and the flags. */
json_t *web_room_view(json_t *room, int show_patient);

/* Slow clients: which event-stream client to drop so that the rest keep
 * flowing. backlog[i] is client i's unread output; returns the index of the
 * client to drop, or -1 when every backlog is at most per_max and their sum
 * at most total_max. Over per_max: that client; else the largest backlog. */
int web_drop_pick(const size_t *backlog, int n, size_t per_max, size_t total_max);

/* The page with its CSP nonce in place of every "@NONCE@"; the caller frees. */
char *web_page_render(const char *page, size_t len, const char *nonce, size_t *outlen);

#endif

/* The control socket (SPEC §6): what the protocol side of acud offers the
 * process (acud.c) and the command dispatch (cmd.c). The shell below them
 * (commit.c, stim.c) never includes this: it publishes (daemon.h). */
#ifndef ACU_SERVER_H
#define ACU_SERVER_H

#include "daemon.h"

/* -1 with err when path is something else than a free or stale socket (one
 * another acud answers on, or not a socket at all). */
int server_check_socket(const char *path, char *err, size_t errlen);
struct server *server_open(struct acud *d, char *err, size_t errlen);
void server_close(struct server *s);
/* Sends what waited for generation `done` to be durable; when the batch
 * failed, waiting replies become errors naming why. */
void server_flush(struct server *s, uint64_t done, int failed, const char *why);
uid_t client_uid(const struct client *c);
const char *client_user(const struct client *c);
enum acu_role client_role(struct acud *d, const struct client *c);
void client_set_watching(struct client *c);
/* `lines --watch`: the connection streams input edges (and nothing else). */
void client_set_watching_lines(struct client *c);
/* The request being handled changed nothing: its reply goes out at once, not
 * after the saves in progress, unless replies of this connection wait. */
void client_read_only(struct client *c);

/* A reply made later (a history query runs on a worker thread): until it is
 * sent the client's further requests wait, so each connection keeps its
 * order. A client gone meanwhile is forgotten by the deferred reply, which
 * then sends nothing. */
struct deferred;
struct deferred *server_defer(struct client *c, json_t *id);
json_t *server_deferred_id(const struct deferred *w);
/* fn(arg) runs (on the loop) if the client goes before the reply is sent. */
void server_deferred_on_gone(struct deferred *w, void (*fn)(void *), void *arg);
/* Sends the reply (taken) if the client is still there, frees w, and goes on
 * with the client's waiting requests. NULL: given up before it was made (from
 * inside the client's own request): nothing is sent. */
void server_deferred_reply(struct deferred *w, json_t *reply);

#endif

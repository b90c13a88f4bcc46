/* The publisher of committed changes (see daemon.h): a list of subscribers,
 * called in the order they subscribed. */
#include "daemon.h"

void publish_subscribe(struct acud *d, struct subscriber *s)
{
	struct subscriber **p = &d->subscribers;

	while (*p)
		p = &(*p)->next;
	s->next = NULL;
	*p = s;
}

void publish_unsubscribe(struct acud *d, struct subscriber *s)
{
	for (struct subscriber **p = &d->subscribers; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			return;
		}
}

void publish(struct acud *d, enum publish_kind kind, json_t *event)
{
	for (struct subscriber *s = d->subscribers; s; s = s->next)
		s->fn(s->arg, kind, event);
	json_decref(event);
}

/* Configuration in force: reload (SIGHUP, `acuctl reload`) and the role
 * groups of [access]. Rooms with a session keep it and cannot be removed or
 * rewired; a bad config is refused and the running one kept (SPEC §5). */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "mqtt.h"

static gid_t group_gid(const char *name)
{
	struct group *g = name[0] ? getgrnam(name) : NULL;

	return g ? g->gr_gid : (gid_t)-1;
}

void reload_access(struct acud *d)
{
	const char *missing[3];
	int n = 0;

	d->desk_gid = group_gid(d->cfg->desk_group);
	d->practitioner_gid = group_gid(d->cfg->practitioner_group);
	d->technician_gid = group_gid(d->cfg->technician_group);
	if (d->desk_gid == (gid_t)-1)
		missing[n++] = d->cfg->desk_group;
	if (d->practitioner_gid == (gid_t)-1)
		missing[n++] = d->cfg->practitioner_group;
	if (d->technician_gid == (gid_t)-1)
		missing[n++] = d->cfg->technician_group;
	/* Normal in a checkout (make demo): said once, as what it means. */
	if (n == 3)
		log_info("access: none of the groups %s, %s, %s exists: only root and uid %u "
			 "have a role (fine for a demo; see [access] in acud.conf(5))",
			 missing[0], missing[1], missing[2], (unsigned)d->self_uid);
	else
		for (int i = 0; i < n; i++)
			log_info("access: no group %s: nobody has that role through it", missing[i]);
	log_set_level(d->cfg->log_level);
}

/* Rooms with a session keep it and may not be removed or rewired; everything
 * else takes the new config. */
int reload_config(struct acud *d, char *err, size_t errlen)
{
	struct acu_cfg *cfg, *old_cfg;
	struct acu_room *rooms, *old_rooms;
	struct acu_now now = acu_now();
	int old_nrooms;
	char msg[256];

	notify("RELOADING=1");
	cfg = cfg_load(d->config_path, err, errlen);
	if (!cfg)
		goto fail;
	for (int i = 0; i < d->nrooms; i++) {
		const struct acu_room *r = &d->rooms[i];
		const struct acu_room_cfg *nr = cfg_room(cfg, r->cfg->id);

		if (r->s.state == ST_IDLE)
			continue;
		if (!nr || !cfg_room_same_wiring(r->cfg, nr)) {
			snprintf(err, errlen, "room %s has a %s session: it cannot be %s until finish",
				 r->cfg->id, acu_state_name(r->s.state), nr ? "rewired" : "removed");
			goto fail;
		}
	}
	if (stim_reload_check(d, cfg, err, errlen) < 0)
		goto fail;
	if (strcmp(cfg->socket, d->cfg->socket) || strcmp(cfg->state_dir, d->cfg->state_dir))
		log_warnx("reload: socket and state_dir changes take effect at restart");
	snprintf(cfg->socket, sizeof cfg->socket, "%s", d->cfg->socket);
	snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", d->cfg->state_dir);
	/* The board's other [web] keys apply at once. */
	if (strcmp(cfg->web.listen, d->cfg->web.listen))
		log_warnx("reload: [web] listen takes effect at restart");
	memcpy(cfg->web.listen, d->cfg->web.listen, sizeof cfg->web.listen);
	memcpy(cfg->web.host, d->cfg->web.host, sizeof cfg->web.host);
	cfg->web.port = d->cfg->web.port;
	rooms = calloc((size_t)cfg->nrooms + 1, sizeof *rooms);
	if (!rooms) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < cfg->nrooms; i++) {
		struct acu_room *old = commit_room(d, cfg->rooms[i].id);

		if (old)
			memcpy(&rooms[i], old, sizeof rooms[i]);
		else
			room_init(&rooms[i], &cfg->rooms[i]);
		rooms[i].cfg = &cfg->rooms[i];
		rooms[i].gpio_fault = 0; /* S7: a reload clears a GPIO fault */
		room_alarm_clear(&rooms[i], AL_GPIO_FAULT);
	}
	old_cfg = d->cfg;
	old_rooms = d->rooms;
	old_nrooms = d->nrooms;
	d->cfg = cfg;
	d->rooms = rooms;
	d->nrooms = cfg->nrooms;
	if (stim_reload(d, old_cfg, old_rooms, old_nrooms, msg, sizeof msg) < 0) {
		/* The new lines could not be had: back to the running config and its
		 * lines, and the reload is refused (SPEC §5). */
		char again[512];
		struct acu_cfg *new_cfg = d->cfg;
		struct acu_room *new_rooms = d->rooms;

		d->cfg = old_cfg;
		d->rooms = old_rooms;
		d->nrooms = old_nrooms;
		if (stim_open(d, again, sizeof again) == 0) {
			for (int i = 0; i < d->nrooms; i++)
				stim_apply(d, &d->rooms[i], &now, "reload");
			free(new_rooms);
			snprintf(err, errlen, "%s", msg);
			goto fail;
		}
		log_errx("reload: %s; the running lines cannot be had again: %s", msg, again);
		d->cfg = new_cfg;
		d->rooms = new_rooms;
		d->nrooms = new_cfg->nrooms;
		for (int i = 0; i < d->nrooms; i++) {
			d->rooms[i].gpio_fault = 1;
			room_stim_off(&d->rooms[i], "gpio-fault");
			room_alarm_raise(&d->rooms[i], AL_GPIO_FAULT, PRIO_HIGH, &now);
		}
	}
	for (int i = 0; i < d->nrooms; i++)
		for (int j = 0; j < old_nrooms; j++)
			if (strcmp(old_rooms[j].cfg->id, d->rooms[i].cfg->id) == 0)
				commit_alarms(d, &d->rooms[i], &old_rooms[j]);
	roomjson_clear(d);
	d->cfg_gen++;
	mqtt_reload(d, old_cfg);
	free(old_rooms);
	cfg_free(old_cfg);
	reload_access(d);
	if (d->history) {
		history_set_keep(d->history, cfg->history_keep);
		/* A shorter keep applies now, not at the next record: the writer
		 * prunes in the batch this reload's reply waits for. */
		if (d->persist)
			persist_history(d->persist, NULL, 0);
	}
	if (state_save(d, &now, msg, sizeof msg) < 0)
		log_errx("%s", msg);
	commit_reschedule(d);
	log_notice("reload: %s applied: %d rooms, %d profiles", d->config_path, cfg->nrooms,
		   cfg->nprofiles);
	notify("READY=1");
	return 0;
fail:
	if (cfg)
		cfg_free(cfg);
	log_errx("reload: %s; keeping the running configuration", err);
	notify("READY=1");
	return -1;
}


/* The parts of the history without I/O (SPEC §8): day files and their names,
 * what [history] keep removes, and the bounded queue of records waiting for
 * the disk. Unit-tested in tests/unit/test_history.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acud.h"
#include "history.h"

int64_t history_day(int64_t wall_ns)
{
	int64_t s = wall_ns / NS_PER_SEC - (wall_ns % NS_PER_SEC < 0);

	return s / HISTORY_DAY_S - (s % HISTORY_DAY_S < 0);
}

/* Proleptic Gregorian calendar, from days since 1970-01-01 and back (the
 * algorithms of H. Hinnant's "chrono-compatible low-level date algorithms"). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void history_day_name(int64_t day, char *buf, size_t len)
{
	int64_t y;
	int m, d;

	civil_from_days(day, &y, &m, &d);
	snprintf(buf, len, "%04lld-%02d-%02d.jsonl", (long long)y, m, d);
}

int history_day_parse(const char *name, int64_t *day)
{
	char again[32];
	int64_t y = 0, v;
	int m, d;

	/* YYYY-MM-DD.jsonl and nothing else: no temporary or stray files. */
	if (strlen(name) != 16 || strcmp(name + 10, ".jsonl") != 0 || name[4] != '-' ||
	    name[7] != '-')
		return -1;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (name[i] < '0' || name[i] > '9'))
			return -1;
	for (int i = 0; i < 4; i++)
		y = y * 10 + (name[i] - '0');
	m = (name[5] - '0') * 10 + (name[6] - '0');
	d = (name[8] - '0') * 10 + (name[9] - '0');
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	v = days_from_civil(y, m, d);
	/* A date that does not exist (02-30) comes back as another one. */
	history_day_name(v, again, sizeof again);
	if (strcmp(again, name) != 0)
		return -1;
	*day = v;
	return 0;
}

int history_day_expired(int64_t day, int64_t now_wall, int64_t keep_s)
{
	int64_t now_s = now_wall / NS_PER_SEC;

	/* The day ends at (day + 1) * 86400: expired once that is keep ago. */
	return (day + 1) * HISTORY_DAY_S <= now_s - keep_s;
}

/* --- the queue of records waiting for the disk ------------------------------- */

void history_queue_init(struct history_queue *q, size_t max)
{
	memset(q, 0, sizeof *q);
	q->max = max;
}

void history_queue_free(struct history_queue *q)
{
	free(q->text);
	free(q->rec);
	q->text = NULL;
	q->rec = NULL;
	q->len = q->cap = q->n = q->rec_cap = 0;
}

char *history_gap_record(uint64_t dropped, int64_t from_ns, int64_t to_ns, size_t *len)
{
	char from[40], to[40];
	json_t *o;
	char *text, *line;
	size_t n;

	acu_rfc3339(from_ns, from, sizeof from);
	acu_rfc3339(to_ns, to, sizeof to);
	/* Dated by the last record it stands for: a query since any time in the
	 * lost span still shows it. */
	o = json_pack("{s:s,s:I,s:s,s:s,s:s,s:I}", "type", "history-gap", "dropped",
		      (json_int_t)dropped, "from", from, "to", to, "ts", to, "ts_ns",
		      (json_int_t)to_ns);
	if (!o)
		return NULL;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return NULL;
	n = strlen(text);
	line = realloc(text, n + 2);
	if (!line) {
		free(text);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

/* Appends without checking max (the callers did). 0, or -1 out of memory. */
static int queue_put(struct history_queue *q, const char *rec, size_t len, int64_t ts_ns)
{
	if (acu_grow(&q->text, &q->cap, q->len + len, 4096) < 0)
		return -1;
	if (q->n == q->rec_cap) {
		size_t cap = q->rec_cap ? q->rec_cap * 2 : 64;
		struct history_rec *r = realloc(q->rec, cap * sizeof *r);

		if (!r)
			return -1;
		q->rec = r;
		q->rec_cap = cap;
	}
	memcpy(q->text + q->len, rec, len);
	q->len += len;
	q->rec[q->n].len = len;
	q->rec[q->n].ts_ns = ts_ns;
	q->n++;
	return 0;
}

static void count_dropped(struct history_queue *q, int64_t ts_ns)
{
	if (q->dropped++ == 0)
		q->dropped_from = ts_ns;
	q->dropped_to = ts_ns;
	q->dropped_total++;
}

/* The gap record goes in only together with room for what follows it (extra
 * bytes): it is never queued where it would push out a record. */
static int put_gap(struct history_queue *q, size_t extra)
{
	size_t glen;
	char *gap;
	int rc = 0;

	gap = history_gap_record(q->dropped, q->dropped_from, q->dropped_to, &glen);
	if (!gap)
		return 0;
	if (q->len + glen + extra <= q->max && queue_put(q, gap, glen, q->dropped_to) == 0) {
		q->dropped = 0;
		rc = 1;
	}
	free(gap);
	return rc;
}

int history_queue_add(struct history_queue *q, const char *rec, size_t len, int64_t ts_ns)
{
	if (q->len + len > q->max) {
		count_dropped(q, ts_ns);
		return 0;
	}
	/* Records were lost before this one: the count of them comes first. */
	if (q->dropped && !put_gap(q, len)) {
		count_dropped(q, ts_ns);
		return 0;
	}
	if (queue_put(q, rec, len, ts_ns) < 0) {
		count_dropped(q, ts_ns);
		return 0;
	}
	return 1;
}

void history_queue_drop(struct history_queue *q, int64_t ts_ns)
{
	count_dropped(q, ts_ns);
}

int history_queue_gap(struct history_queue *q)
{
	return q->dropped ? put_gap(q, 0) : 0;
}

void history_queue_pop(struct history_queue *q, size_t n)
{
	size_t bytes = 0;

	if (n == 0)
		return;
	if (n > q->n)
		n = q->n;
	for (size_t i = 0; i < n; i++)
		bytes += q->rec[i].len;
	memmove(q->text, q->text + bytes, q->len - bytes);
	memmove(q->rec, q->rec + n, (q->n - n) * sizeof *q->rec);
	q->len -= bytes;
	q->n -= n;
	/* Memory held through a full disk goes back once it is written. */
	if (q->n == 0 && q->cap > 16384)
		history_queue_free(q);
}

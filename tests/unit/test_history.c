/* Unit tests of the history's pure parts (daemon/history-pure.c, SPEC §8): day
 * numbers and file names, what [history] keep removes, the bounded queue of
 * records waiting for the disk with its history-gap record, and the [history]
 * keep key of the config (daemon/cfg.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "acud.h"
#include "cfg.h"
#include "history.h"
#include "unit.h"

#define DAY_NS (HISTORY_DAY_S * NS_PER_SEC)

static void test_days(void)
{
	char name[32];
	int64_t day = -1;

	CHECK_EQ(history_day(0), 0);
	CHECK_EQ(history_day(DAY_NS - 1), 0);
	CHECK_EQ(history_day(DAY_NS), 1);
	CHECK_EQ(history_day(-1), -1);
	/* 2024-02-29T23:59:59Z and the next second. */
	CHECK_EQ(history_day(INT64_C(1709251199) * NS_PER_SEC), 19782);
	CHECK_EQ(history_day(INT64_C(1709251200) * NS_PER_SEC), 19783);

	history_day_name(0, name, sizeof name);
	CHECK_STR(name, "1970-01-01.jsonl");
	history_day_name(19782, name, sizeof name);
	CHECK_STR(name, "2024-02-29.jsonl");
	history_day_name(19783, name, sizeof name);
	CHECK_STR(name, "2024-03-01.jsonl");
	history_day_name(10956, name, sizeof name);
	CHECK_STR(name, "1999-12-31.jsonl");
	history_day_name(11016, name, sizeof name);
	CHECK_STR(name, "2000-02-29.jsonl");

	/* Every day of 1970..2200 names itself and reads back. */
	for (int64_t d = 0; d < 84000; d++) {
		int64_t back = -1;

		history_day_name(d, name, sizeof name);
		if (history_day_parse(name, &back) < 0 || back != d) {
			CHECK(!"day name round trip");
			fprintf(stderr, "  day %lld: %s -> %lld\n", (long long)d, name, (long long)back);
			break;
		}
	}
	CHECK(history_day_parse("2024-02-29.jsonl", &day) == 0 && day == 19782);
	/* Only exact day file names: dates that do not exist, other files. */
	CHECK(history_day_parse("2023-02-29.jsonl", &day) < 0);
	CHECK(history_day_parse("2024-04-31.jsonl", &day) < 0);
	CHECK(history_day_parse("2024-13-01.jsonl", &day) < 0);
	CHECK(history_day_parse("2024-00-10.jsonl", &day) < 0);
	CHECK(history_day_parse("2024-01-00.jsonl", &day) < 0);
	CHECK(history_day_parse("1969-12-31.jsonl", &day) < 0);
	CHECK(history_day_parse("2024-1-01.jsonl", &day) < 0);
	CHECK(history_day_parse("2024-01-01.json", &day) < 0);
	CHECK(history_day_parse("2024-01-01.jsonl.tmp", &day) < 0);
	CHECK(history_day_parse("2024-01-01xjsonl", &day) < 0);
	CHECK(history_day_parse("+024-01-01.jsonl", &day) < 0);
	CHECK(history_day_parse("history.jsonl", &day) < 0);
	CHECK(history_day_parse("", &day) < 0);
	CHECK(history_day_parse(".", &day) < 0);
}

static void test_expiry(void)
{
	const int64_t keep = 365 * HISTORY_DAY_S;
	int64_t now = INT64_C(20000) * DAY_NS + 12 * 3600 * NS_PER_SEC; /* noon of day 20000 */

	/* A day goes once its end is keep ago: day 19634 ended at the start of
	 * 19635, which is 365 days before day 20000 began, and that was noon ago. */
	CHECK(history_day_expired(19634, now, keep));
	CHECK(history_day_expired(19000, now, keep));
	CHECK(!history_day_expired(19635, now, keep));
	CHECK(!history_day_expired(20000, now, keep));
	CHECK(!history_day_expired(20001, now, keep));
	/* The shortest keep still spares yesterday until today's end... */
	CHECK(!history_day_expired(19999, now, HISTORY_DAY_S));
	CHECK(history_day_expired(19998, now, HISTORY_DAY_S));
	/* ... and never today. */
	CHECK(!history_day_expired(20000, INT64_C(20001) * DAY_NS - 1, HISTORY_DAY_S));
	/* A clock at 1970 (a board without a real-time clock) removes nothing. */
	CHECK(!history_day_expired(0, 0, HISTORY_DAY_S));
}

static char *rec(const char *what, int64_t ts, size_t *len)
{
	/* About the size of a gap record, like most real records. */
	static const char pad[] = "0123456789012345678901234567890123456789"
				  "0123456789012345678901234567890123456789";
	json_t *o = json_pack("{s:s,s:s,s:I}", "type", what, "pad", pad, "ts_ns", (json_int_t)ts);
	char *t = json_dumps(o, JSON_COMPACT), *line;

	json_decref(o);
	*len = strlen(t) + 1;
	line = malloc(*len + 1);
	memcpy(line, t, *len - 1);
	line[*len - 1] = '\n';
	line[*len] = '\0';
	free(t);
	return line;
}

/* The i-th queued record, parsed. */
static json_t *queued(const struct history_queue *q, size_t i)
{
	size_t off = 0;

	for (size_t k = 0; k < i; k++)
		off += q->rec[k].len;
	return json_loadb(q->text + off, q->rec[i].len, 0, NULL);
}

static const char *type_of(json_t *o)
{
	return json_string_value(json_object_get(o, "type"));
}

static void test_queue(void)
{
	struct history_queue q;
	size_t len, total = 0, glen;
	char *r = rec("command", 2000, &len), *gap;
	json_t *o;
	int added = 0;

	history_queue_init(&q, 10 * len);
	/* Ten fit, the eleventh and twelfth are dropped and counted. */
	for (int i = 0; i < 12; i++) {
		char *x = rec("command", 1000 + i, &len);

		added += history_queue_add(&q, x, len, 1000 + i);
		free(x);
	}
	CHECK_EQ(added, 10);
	CHECK_EQ(q.n, 10);
	CHECK_EQ(q.dropped, 2);
	CHECK_EQ(q.dropped_from, 1010);
	CHECK_EQ(q.dropped_to, 1011);
	CHECK(q.len <= q.max);
	for (size_t i = 0; i < q.n; i++)
		total += q.rec[i].len;
	CHECK_EQ(total, q.len);
	/* Whole records only, in order. */
	for (size_t i = 0; i < q.n; i++) {
		o = queued(&q, i);
		CHECK(json_is_object(o));
		CHECK_EQ(json_integer_value(json_object_get(o, "ts_ns")), 1000 + (int64_t)i);
		json_decref(o);
	}
	/* No gap record while nothing fits: it would push out a record. */
	CHECK_EQ(history_queue_gap(&q), 0);

	/* Three written: the next record comes after the count of the lost. */
	history_queue_pop(&q, 3);
	CHECK_EQ(q.n, 7);
	o = queued(&q, 0);
	CHECK_EQ(json_integer_value(json_object_get(o, "ts_ns")), 1003);
	json_decref(o);
	CHECK_EQ(history_queue_add(&q, r, len, 2000), 1);
	CHECK_EQ(q.n, 9);
	o = queued(&q, 7);
	CHECK_STR(type_of(o), "history-gap");
	CHECK_EQ(json_integer_value(json_object_get(o, "dropped")), 2);
	/* Dated by the last record lost, with ts and ts_ns like every record. */
	CHECK_EQ(json_integer_value(json_object_get(o, "ts_ns")), 1011);
	CHECK(json_is_string(json_object_get(o, "ts")));
	CHECK(json_is_string(json_object_get(o, "from")) && json_is_string(json_object_get(o, "to")));
	json_decref(o);
	o = queued(&q, 8);
	CHECK_EQ(json_integer_value(json_object_get(o, "ts_ns")), 2000);
	json_decref(o);
	CHECK_EQ(q.dropped, 0);
	CHECK_EQ(q.dropped_total, 2);
	CHECK(q.len <= q.max);

	/* Everything written, more lost meanwhile: the gap goes in on its own. */
	history_queue_pop(&q, q.n);
	CHECK_EQ(q.n, 0);
	CHECK_EQ(q.len, 0);
	history_queue_drop(&q, 3000);
	CHECK_EQ(history_queue_gap(&q), 1);
	CHECK_EQ(q.n, 1);
	o = queued(&q, 0);
	CHECK_STR(type_of(o), "history-gap");
	CHECK_EQ(json_integer_value(json_object_get(o, "dropped")), 1);
	json_decref(o);
	CHECK_EQ(history_queue_gap(&q), 0);
	history_queue_pop(&q, 1);

	/* A record larger than the whole cap is dropped, never torn. */
	{
		char *big = malloc(q.max + 2);

		memset(big, 'x', q.max + 1);
		big[q.max + 1] = '\n';
		CHECK_EQ(history_queue_add(&q, big, q.max + 2, 4000), 0);
		CHECK_EQ(q.n, 0);
		CHECK_EQ(q.dropped, 1);
		free(big);
	}
	history_queue_free(&q);
	free(r);

	gap = history_gap_record(5, 0, DAY_NS, &glen);
	CHECK(gap && glen == strlen(gap) && gap[glen - 1] == '\n');
	o = gap ? json_loadb(gap, glen, 0, NULL) : NULL;
	CHECK_STR(type_of(o), "history-gap");
	CHECK_STR(json_string_value(json_object_get(o, "from")), "1970-01-01T00:00:00Z");
	CHECK_STR(json_string_value(json_object_get(o, "to")), "1970-01-02T00:00:00Z");
	CHECK_STR(json_string_value(json_object_get(o, "ts")), "1970-01-02T00:00:00Z");
	json_decref(o);
	free(gap);
}

/* The real cap holds what it says: records of a typical size, never more. */
static void test_queue_cap(void)
{
	struct history_queue q;
	size_t len;
	char *r = rec("gate", 1, &len);
	int n = 0;

	history_queue_init(&q, HISTORY_PENDING_MAX);
	while (history_queue_add(&q, r, len, 1))
		n++;
	CHECK(q.len <= HISTORY_PENDING_MAX);
	CHECK(q.len + len > HISTORY_PENDING_MAX);
	CHECK_EQ((size_t)n, HISTORY_PENDING_MAX / len);
	history_queue_free(&q);
	free(r);
}

/* [history] keep in a config file: days, durations, the bounds, the default. */
static void test_keep_config(void)
{
	static const struct {
		const char *value;
		int64_t want;           /* -1: refused */
	} cases[] = {
		{ NULL, 365 * 86400 },  { "365d", 365 * 86400 }, { "1d", 86400 },
		{ "30d", 30 * 86400 },  { "36500d", INT64_C(36500) * 86400 },
		{ "48h", 48 * 3600 },   { "86400", 86400 },    { "24h", 86400 },
		{ "0d", -1 },           { "23h", -1 },         { "36501d", -1 },
		{ "d", -1 },            { "1.5d", -1 },        { "-1d", -1 },
		{ "1y", -1 },           { "99999999999999999999d", -1 },
	};
	char dir[] = "/tmp/acuhist.XXXXXX", path[64], prof[64], err[1024];

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/acud.conf", dir);
	snprintf(prof, sizeof prof, "%s/profiles.d", dir);
	mkdir(prof, 0755);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		FILE *f = fopen(path, "w");
		struct acu_cfg *c;

		fprintf(f, "[daemon]\nstate_dir = state\nprofiles_dir = %s\n[gpio]\nbackend = sim\n",
			prof);
		if (cases[i].value)
			fprintf(f, "[history]\nkeep = %s\n", cases[i].value);
		fprintf(f, "[room 1]\ngate = 17\n");
		fclose(f);
		c = cfg_load(path, err, sizeof err);
		if (cases[i].want < 0) {
			char want[128];

			CHECK(c == NULL);
			/* The file and line of the key (line 7), like every error. */
			snprintf(want, sizeof want, "%s:7: keep: ", path);
			CHECK(strncmp(err, want, strlen(want)) == 0);
			if (c || strncmp(err, want, strlen(want)) != 0)
				fprintf(stderr, "  keep = %s: %s\n", cases[i].value, c ? "accepted" : err);
		} else {
			CHECK(c != NULL);
			if (!c) {
				fprintf(stderr, "  keep = %s: %s\n", cases[i].value, err);
				continue;
			}
			CHECK_EQ(c->history_keep, cases[i].want);
		}
		cfg_free(c);
	}
	unlink(path);
	rmdir(prof);
	rmdir(dir);
}

int main(void)
{
	test_days();
	test_expiry();
	test_queue();
	test_queue_cap();
	test_keep_config();
	return unit_report("test_history");
}

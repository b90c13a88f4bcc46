/* Unit tests of the shared name tables (daemon/util.c): flags, commands and
 * error codes each have one table, which acud and acuctl both read; and
 * acu_grow, the buffers' one way to grow. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acud.h"
#include "unit.h"

static void test_round_trips(void)
{
	for (int i = 0; i < FL__N; i++)
		CHECK_EQ(acu_flag_parse(acu_flag_name(i)), i);
	for (int i = 0; i < CMD__N; i++)
		CHECK_EQ(acu_cmd_parse(acu_cmd_name(i)), i);
	CHECK_EQ(acu_flag_parse("pacemakers"), -1);
	CHECK_EQ(acu_cmd_parse("help"), -1); /* acuctl's own, not a protocol command */
	CHECK_EQ(acu_cmd_parse(NULL), -1);
	CHECK_STR(acu_cmd_name(CMD_SIM_INPUT), "sim-input");
	CHECK_STR(acu_cmd_name(CMD__N), "?");
	CHECK_STR(acu_errcode_name(E_BAD_REQUEST), "bad-request");
	CHECK_STR(acu_errcode_name(E__N), "internal");
}

static void test_flag_list(void)
{
	char buf[256], small[10];
	int n = acu_flag_list(buf, sizeof buf, ", ");

	CHECK_STR(buf, "pacemaker, icd, implanted-device, pregnancy, epilepsy, heart-disease, "
		       "bleeding-disorder, metal-implant");
	CHECK_EQ(n, strlen(buf));
	/* Cut like snprintf: terminated, and the length it needed. */
	CHECK_EQ(acu_flag_list(small, sizeof small, " "), n - 7);
	CHECK_STR(small, "pacemaker");
	CHECK_EQ(acu_flag_list(NULL, 0, ","), n - 7);
}

/* acu_grow: at least what is asked, doubling, and nothing lost on failure. */
static void test_grow(void)
{
	char *b = NULL;
	size_t cap = 0;

	CHECK_EQ(acu_grow(&b, &cap, 0, 16), 0);
	CHECK(b == NULL);
	CHECK_EQ(cap, 0);
	CHECK_EQ(acu_grow(&b, &cap, 1, 16), 0);
	CHECK(b != NULL);
	CHECK_EQ(cap, 16);
	memcpy(b, "abcdefghijklmno", 16);
	CHECK_EQ(acu_grow(&b, &cap, 16, 16), 0);
	CHECK_EQ(cap, 16);
	CHECK_EQ(acu_grow(&b, &cap, 17, 16), 0);
	CHECK_EQ(cap, 32);
	CHECK_STR(b, "abcdefghijklmno");
	CHECK_EQ(acu_grow(&b, &cap, 100, 16), 0);
	CHECK_EQ(cap, 128);
	/* More than memory can hold: refused, the buffer as it was. */
	CHECK_EQ(acu_grow(&b, &cap, SIZE_MAX, 16), -1);
	CHECK_EQ(cap, 128);
	CHECK_STR(b, "abcdefghijklmno");
	free(b);
}

int main(void)
{
	test_grow();
	test_round_trips();
	test_flag_list();
	return unit_report("test_names");
}

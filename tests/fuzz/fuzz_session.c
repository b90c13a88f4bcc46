/* libFuzzer target: a sequence of request lines (split on newlines) with
 * directives between them: "#t N" lets N seconds pass (expiry, check-ins,
 * escalation, stimulation schedule and dose), "#u R" switches the client's role
 * (0 none .. 3 technician), "#c N" rewrites the config the next reload reads
 * (0 base, 1 other policies, 2 room 2 rewired, 3 room 3 removed, 4 broken) and
 * "#r" reloads. Safety invariants are checked after every line (harness.c),
 * persistence at the end. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	int lines = 0;

	if (size > 64 * 1024)
		return -1;
	fh_reset();
	while (p < end && lines++ < 400) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (len && p[len - 1] == '\r')
			len--;
		if (len > 0 && len <= ACU_REQUEST_MAX)
			fh_line(p, len);
		p += (nl ? (size_t)(nl - p) + 1 : len);
		if (!nl)
			break;
	}
	fh_check_persistence();
	fh_teardown();
	return 0;
}

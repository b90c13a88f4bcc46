/* libFuzzer target: one request line, as a client with every role would send
 * it, to the real command dispatch of a daemon whose rooms are running, paused,
 * due and idle (harness.c). */
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > ACU_REQUEST_MAX)
		return -1; /* the server answers longer lines without parsing them */
	fh_reset();
	fh_request((const char *)data, size);
	fh_check_persistence();
	fh_teardown();
	return 0;
}

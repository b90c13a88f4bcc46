/* floor: the floor of P5 (make bench). Linked against the shared libraries
 * acud is linked against (mk/bench.mk reads them from acud's NEEDED entries),
 * it does nothing: its peak RSS is what loading them costs any daemon. */
#include <unistd.h>

int main(void)
{
	pause();
	return 0;
}

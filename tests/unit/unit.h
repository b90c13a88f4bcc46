/* A minimal unit-test harness: CHECK records a failure and goes on; main prints
 * "unit: N passed, N failed" and exits non-zero on any failure. */
#ifndef ACU_UNIT_H
#define ACU_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_checks, unit_failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		unit_checks++;                                                       \
		if (!(cond)) {                                                       \
			unit_failures++;                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,       \
				__LINE__, #cond);                                    \
		}                                                                    \
	} while (0)

#define CHECK_EQ(a, b)                                                               \
	do {                                                                         \
		long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);        \
		unit_checks++;                                                       \
		if (unit_a_ != unit_b_) {                                            \
			unit_failures++;                                             \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",    \
				__FILE__, __LINE__, #a, #b, unit_a_, unit_b_);       \
		}                                                                    \
	} while (0)

#define CHECK_STR(a, b)                                                              \
	do {                                                                         \
		const char *unit_a_ = (a), *unit_b_ = (b);                           \
		unit_checks++;                                                       \
		if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0) {         \
			unit_failures++;                                             \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
				__FILE__, __LINE__, #a, #b, unit_a_ ? unit_a_ : "(null)", \
				unit_b_ ? unit_b_ : "(null)");                       \
		}                                                                    \
	} while (0)

static inline int unit_report(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_checks - unit_failures, unit_failures);
	return unit_failures ? 1 : 0;
}

#endif

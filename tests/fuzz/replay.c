/* Runs a libFuzzer target's entry point over files, without libFuzzer: how
 * make check replays every saved crash input and seed (tests/fuzz/regress/,
 * tests/fuzz/corpus/) with the plain compiler. A failing input aborts, as in
 * the fuzzer; the last file named on stderr is the one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0, got;

		if (!f) {
			perror(argv[i]);
			return 2;
		}
		fprintf(stderr, "replay: %s\n", argv[i]);
		do {
			if (len == cap) {
				uint8_t *b = realloc(buf, cap = cap ? cap * 2 : 4096);
				if (!b)
					abort();
				buf = b;
			}
			got = fread(buf + len, 1, cap - len, f);
			len += got;
		} while (got > 0);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
		n++;
	}
	printf("replay: %d passed, 0 failed\n", n);
	return 0;
}

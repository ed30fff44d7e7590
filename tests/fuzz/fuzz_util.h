/* SPDX-License-Identifier: MIT */
/*
 * Shared by the parser fuzz targets (fuzz_*.c but fuzz_server.c): the entry
 * points libFuzzer and run_corpus.c call, and a NUL-terminated copy of an
 * input for parsers that take C strings.
 */
#ifndef STOKER_FUZZ_UTIL_H
#define STOKER_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd copy of data[0, size) with a NUL after it; aborts when out of memory. */
static inline char *fz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = 0;
	return s;
}

/* A finding that no sanitizer would report: say what, and abort as a crash. */
#define fz_check(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif

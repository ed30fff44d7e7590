/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the response headers stokerd reads itself
 * (transports/http_fetch.c, stk__http_on_header: the ETag that tells whether
 * an object changed between its parts; curl parses the rest).  The input is
 * a server's header block: split at each '\n', each line (its '\n' kept) is
 * handed over as curl hands one, in a buffer of exactly its length.
 * Besides the sanitizers, it checks the callback takes every byte, and the
 * ETag kept is NUL-terminated, at most 127 bytes, and trimmed.
 */
#include "tests/fuzz/fuzz_util.h"
#include "transports/http_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char etag[128];
	etag[0] = 0;
	size_t off = 0;
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
		char *line = malloc(n ? n : 1);
		fz_check(line != NULL);
		memcpy(line, data + off, n);
		/* curl's size argument is always 1; its count is the length. */
		fz_check(stk__http_on_header(line, 1, n, etag) == n);
		free(line);
		off += n;
		size_t el = strnlen(etag, sizeof(etag));
		fz_check(el < sizeof(etag));
		/* Blanks are trimmed at both ends (a value cut at 127 bytes may end in one). */
		if (el)
			fz_check(etag[0] != ' ' && etag[0] != '\t');
		if (el && el < sizeof(etag) - 1)
			fz_check(etag[el - 1] != '\r' && etag[el - 1] != '\n' &&
				 etag[el - 1] != ' ' && etag[el - 1] != '\t');
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over manifests (transports/catalog.c,
 * stk__manifest_parse) and what a dataset open does next with one: the zstd
 * pass over its entries (catalog_zst.c, with the manifest's sizes: entries
 * without a size would be read from their backend, which a fuzz target must
 * not reach) and the sort.  The input is a manifest's text.  Besides the
 * sanitizers, it checks that a parsed catalog has only URIs with a scheme,
 * no URI twice, and that an error leaves a message.
 */
#include <errno.h>

#include "common/log.h"
#include "tests/fuzz/fuzz_util.h"
#include "transports/transport.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stk__log_level = STK_LOG_ERROR;
	return 0;
}

static int by_uri(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stk_catalog cat = { 0 };
	char err[512];
	err[0] = 0;
	int r = stk__manifest_parse((const char *)data, size, "fuzz", &cat, err, sizeof(err));
	fz_check(r == 0 || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
	if (r) {
		fz_check(err[0] != 0);
		stk__catalog_free(&cat);
		return 0;
	}
	char **uris = malloc((cat.n ? cat.n : 1) * sizeof(*uris));
	fz_check(uris != NULL);
	bool sized = true;
	for (uint32_t i = 0; i < cat.n; i++) {
		const struct stk_catalog_entry *e = &cat.e[i];
		fz_check(strstr(e->uri, "://") != NULL);
		fz_check(e->line > 0);
		fz_check(!strcmp(e->key, e->uri));
		uris[i] = e->uri;
		sized = sized && e->size != STK_SIZE_UNKNOWN;
	}
	qsort(uris, cat.n, sizeof(*uris), by_uri);
	for (uint32_t i = 1; i < cat.n; i++)
		fz_check(strcmp(uris[i - 1], uris[i]) != 0);
	free(uris);
	if (sized) {
		r = stk__catalog_zstd("fuzz", true, &cat, err, sizeof(err));
		fz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
		for (uint32_t i = 0; !r && i < cat.n; i++)
			fz_check(cat.e[i].codec != STK_CODEC_ZSTD ||
				 strlen(cat.e[i].key) + 4 == strlen(cat.e[i].uri));
	}
	stk__catalog_sort(&cat);
	for (uint32_t i = 1; i < cat.n; i++)
		fz_check(strcmp(cat.e[i - 1].key, cat.e[i].key) <= 0);
	stk__catalog_free(&cat);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over catalogs: the table a client reads from the memfd
 * stokerd sends with an OPEN reply (proto/proto.c, stk__catalog_walk, as
 * client/dataset.c walks it), and the daemon's side of a catalog
 * (transports/catalog.c and catalog_zst.c): the walked entries are added as
 * s3://b/KEY objects with their sizes, then made a zstd dataset's catalog
 * (stk__catalog_zstd with sizes known: ".zst" suffixes stripped, clashes
 * refused) and sorted.  The input's bytes are also read as the head of a
 * zstd object (common/zst.c, stk__zst_content_size), whose frame header
 * gives a listed .zst object its size.
 *
 * Besides the sanitizers, it checks a walk stays inside the buffer and
 * agrees with its count, and that keys come out sorted and unique.
 */
#include <errno.h>

#include "common/log.h"
#include "common/zst.h"
#include "proto/proto.h"
#include "tests/fuzz/fuzz_util.h"
#include "transports/transport.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stk__log_level = STK_LOG_ERROR;
	return 0;
}

struct fill {
	const uint8_t *buf;
	size_t len;
	uint32_t seen;
	struct stk_catalog cat;
};

static int entry(void *arg, uint32_t i, const char *key, uint32_t key_len, uint64_t size)
{
	struct fill *f = arg;
	fz_check(i == f->seen);
	f->seen++;
	fz_check((const uint8_t *)key >= f->buf &&
		 (const uint8_t *)key + key_len <= f->buf + f->len);
	char uri[16 + STK_URI_MAX];
	int n = snprintf(uri, sizeof(uri), "s3://b/%.*s", (int)key_len, key);
	fz_check(n > 0 && (size_t)n < sizeof(uri));
	if (size == STK_SIZE_UNKNOWN)
		size = 0;
	fz_check(stk__catalog_add(&f->cat, key, key_len, uri, size) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t zs;
	int r = stk__zst_content_size(data, size, &zs);
	fz_check(r == 0 || r == -EAGAIN || r == -EBADMSG || r == -ENODATA);
	if (size >= STK_ZST_HEAD_MAX)
		fz_check(r != -EAGAIN);

	/* The walk reads in place, as the client reads a mapped memfd: no slack after it. */
	uint8_t *buf = malloc(size ? size : 1);
	fz_check(buf != NULL);
	memcpy(buf, data, size);
	char err[256];
	uint32_t count = 0;
	r = stk__catalog_walk(buf, size, NULL, NULL, &count, err, sizeof(err));
	if (r) {
		free(buf);
		return 0;
	}
	struct fill f = { .buf = buf, .len = size };
	fz_check(stk__catalog_walk(buf, size, entry, &f, NULL, NULL, 0) == 0);
	fz_check(f.seen == count);

	r = stk__catalog_zstd("s3://b/", true, &f.cat, err, sizeof(err));
	fz_check(r == 0 || r == -EINVAL);
	stk__catalog_sort(&f.cat);
	for (uint32_t i = 1; i < f.cat.n; i++) {
		int c = strcmp(f.cat.e[i - 1].key, f.cat.e[i].key);
		/* stk__catalog_zstd refuses two entries that would be one key. */
		fz_check(r ? c <= 0 : c < 0);
	}
	stk__catalog_free(&f.cat);
	free(buf);
	return 0;
}

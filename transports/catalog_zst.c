/* SPDX-License-Identifier: MIT */
/*
 * Catalogs of datasets opened with STK_DS_ZSTD: ".zst" objects are served
 * decompressed, under keys without the suffix and with their plain sizes
 * (see stk_dataset_open in stoker.h).  The plain size comes from the frame
 * header, read on the listing worker, or from a manifest's SIZE column.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zst.h"
#include "transports/transport.h"

#define SUFFIX_LEN (sizeof(STK_ZST_SUFFIX) - 1)

static bool is_zst(const char *uri)
{
	size_t l = strlen(uri);
	return l > SUFFIX_LEN && !strcmp(uri + l - SUFFIX_LEN, STK_ZST_SUFFIX);
}

/* Sets e's size from its frame header.  0 or -errno with err naming its URI. */
static int plain_size(struct stk_catalog_entry *e, char *err, size_t errlen)
{
	int r;
	const struct stk_transport_ops *tp = stk__transport_find(e->uri, &r, err, errlen);
	if (!tp)
		return r;
	if (!tp->read_head) {
		snprintf(err, errlen,
			 "%s: a zstd dataset needs each .zst object's plain size, and %s:// "
			 "listings do not read frame headers: open a manifest that gives the "
			 "plain sizes (STK_DS_MANIFEST with STK_DS_ZSTD)",
			 e->uri, tp->name);
		return -ENOTSUP;
	}
	unsigned char head[STK_ZST_HEAD_MAX];
	long k = tp->read_head(e->uri, head, sizeof(head), err, errlen);
	if (k < 0)
		return (int)k;
	r = stk__zst_content_size(head, (size_t)k, &e->size);
	if (r == -ENODATA)
		snprintf(err, errlen,
			 "%s: its zstd frame does not declare its plain size (compressed from a "
			 "pipe?): compress it with `zstd FILE`, or list it in a manifest with its "
			 "plain size",
			 e->uri);
	else if (r)
		snprintf(err, errlen, "%s: is not zstd data (%s)", e->uri,
			 r == -EAGAIN ? "shorter than a frame header"
				      : "no zstd frame at its start");
	return r ? -EINVAL : 0;
}

/* Drops ".zst" from e's key, which becomes its own string. 0 or -ENOMEM. */
static int strip_key(struct stk_catalog_entry *e)
{
	size_t kl = strlen(e->key);
	if (kl < SUFFIX_LEN || strcmp(e->key + kl - SUFFIX_LEN, STK_ZST_SUFFIX))
		return 0; /* a key that is not the URI's tail keeps its name */
	if (!e->key_in_uri) {
		e->key[kl - SUFFIX_LEN] = 0;
		return 0;
	}
	char *k = strndup(e->key, kl - SUFFIX_LEN);
	if (!k)
		return -ENOMEM;
	e->key = k;
	e->key_in_uri = false;
	return 0;
}

static int by_key_idx(const void *a, const void *b, void *arg)
{
	const struct stk_catalog *cat = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(cat->e[x].key, cat->e[y].key);
	return c ? c : (x > y) - (x < y);
}

/* -EINVAL with err naming both entries when two keys are one, else 0 (or -ENOMEM). */
static int check_unique(const char *uri, struct stk_catalog *cat, char *err, size_t errlen)
{
	if (cat->n < 2)
		return 0;
	uint32_t *idx = malloc(cat->n * sizeof(*idx));
	if (!idx) {
		snprintf(err, errlen, "%s: out of memory listing", uri);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < cat->n; i++)
		idx[i] = i;
	qsort_r(idx, cat->n, sizeof(*idx), by_key_idx, cat);
	int r = 0;
	for (uint32_t i = 1; !r && i < cat->n; i++) {
		const struct stk_catalog_entry *a = &cat->e[idx[i - 1]], *b = &cat->e[idx[i]];
		if (strcmp(a->key, b->key))
			continue;
		snprintf(err, errlen, "%s: %s and %s would both be key '%s' in a zstd dataset", uri,
			 a->uri, b->uri, a->key);
		r = -EINVAL;
	}
	free(idx);
	return r;
}

int stk__catalog_zstd(const char *uri, bool manifest, struct stk_catalog *cat, char *err,
		      size_t errlen)
{
	int r = 0;
	for (uint32_t i = 0; !r && i < cat->n; i++) {
		struct stk_catalog_entry *e = &cat->e[i];
		if (!is_zst(e->uri))
			continue;
		e->codec = STK_CODEC_ZSTD;
		if (!manifest || e->size == STK_SIZE_UNKNOWN)
			r = plain_size(e, err, errlen);
		if (!r && (r = strip_key(e)))
			snprintf(err, errlen, "%s: out of memory listing", uri);
		if (r && e->line) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, " (manifest %s line %u)", uri,
				 (unsigned)e->line);
		}
	}
	if (!r && !manifest)
		stk__catalog_sort(cat);
	return r ? r : check_unique(uri, cat, err, errlen);
}

/* SPDX-License-Identifier: MIT */
/* zstd helpers: see zst.h.  One compression and one decompression context per thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
/* ZSTD_frameHeaderSize: exported by libzstd.so since 1.4, stable in practice. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include "common/zst.h"

static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static int keys_err;

static void cctx_free(void *p)
{
	ZSTD_freeCCtx(p);
}

static void dctx_free(void *p)
{
	ZSTD_freeDCtx(p);
}

static void keys_make(void)
{
	keys_err = pthread_key_create(&cctx_key, cctx_free);
	if (!keys_err)
		keys_err = pthread_key_create(&dctx_key, dctx_free);
}

/* This thread's compression context, made on first use; NULL when memory is short. */
static ZSTD_CCtx *cctx_get(void)
{
	if (pthread_once(&keys_once, keys_make) || keys_err)
		return NULL;
	ZSTD_CCtx *c = pthread_getspecific(cctx_key);
	if (!c) {
		c = ZSTD_createCCtx();
		if (c && pthread_setspecific(cctx_key, c)) {
			ZSTD_freeCCtx(c);
			c = NULL;
		}
	}
	return c;
}

static ZSTD_DCtx *dctx_get(void)
{
	if (pthread_once(&keys_once, keys_make) || keys_err)
		return NULL;
	ZSTD_DCtx *c = pthread_getspecific(dctx_key);
	if (!c) {
		c = ZSTD_createDCtx();
		if (c && pthread_setspecific(dctx_key, c)) {
			ZSTD_freeDCtx(c);
			c = NULL;
		}
	}
	return c;
}

size_t stk__zst_bound(size_t len)
{
	size_t b = ZSTD_compressBound(len);
	return ZSTD_isError(b) ? 0 : b;
}

int stk__zst_level_min(void)
{
	return ZSTD_minCLevel();
}

int stk__zst_level_max(void)
{
	return ZSTD_maxCLevel();
}

ssize_t stk__zst_compress(void *dst, size_t cap, const void *src, size_t len, int level)
{
	if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
		return -EINVAL;
	ZSTD_CCtx *c = cctx_get();
	if (!c)
		return -ENOMEM;
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	/* A checksum lets a decompression tell corruption from data (xxh64: cheap). */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)))
		return -EINVAL;
	size_t r = ZSTD_compress2(c, dst, cap, src, len);
	if (!ZSTD_isError(r))
		return (ssize_t)r;
	switch (ZSTD_getErrorCode(r)) {
	case ZSTD_error_dstSize_tooSmall:
		return -ENOSPC;
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
}

int stk__zst_decompress(void *dst, size_t size, const void *src, size_t len, const char *name,
			char *err, size_t errlen)
{
	char one;
	ZSTD_DCtx *c = dctx_get();
	if (!c) {
		if (err)
			snprintf(err, errlen, "%s: out of memory for a zstd context", name);
		return -ENOMEM;
	}
	if (!len) {
		/* libzstd takes no bytes as no frames; no object is stored that way. */
		if (err)
			snprintf(err, errlen, "%s: not valid zstd data (0 bytes)", name);
		return -EBADMSG;
	}
	ZSTD_DCtx_reset(c, ZSTD_reset_session_and_parameters);
	size_t r = ZSTD_decompressDCtx(c, size ? dst : &one, size, src, len);
	if (!ZSTD_isError(r) && r == size)
		return 0;
	if (!err)
		return -EBADMSG;
	if (!ZSTD_isError(r))
		snprintf(err, errlen, "%s: zstd data decodes to %zu bytes, not the %zu declared",
			 name, r, size);
	else if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
		snprintf(err, errlen, "%s: zstd data decodes to more than the %zu bytes declared",
			 name, size);
	else if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
		snprintf(err, errlen, "%s: out of memory decompressing", name);
	else
		snprintf(err, errlen, "%s: not valid zstd data (%zu bytes): %s", name, len,
			 ZSTD_getErrorName(r));
	return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : -EBADMSG;
}

int stk__zst_content_size(const void *src, size_t len, uint64_t *size)
{
	/* A file must start with a zstd frame: a skippable frame first declares nothing. */
	static const unsigned char magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	if (memcmp(src, magic, len < 4 ? len : 4))
		return -EBADMSG;
	if (len < ZSTD_FRAMEHEADERSIZE_PREFIX(ZSTD_f_zstd1))
		return -EAGAIN;
	size_t need = ZSTD_frameHeaderSize(src, len);
	if (ZSTD_isError(need))
		return -EBADMSG;
	if (need > len)
		return -EAGAIN;
	unsigned long long s = ZSTD_getFrameContentSize(src, len);
	if (s == ZSTD_CONTENTSIZE_ERROR)
		return -EBADMSG;
	if (s == ZSTD_CONTENTSIZE_UNKNOWN)
		return -ENODATA;
	*size = s;
	return 0;
}

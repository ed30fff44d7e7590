/* SPDX-License-Identifier: MIT */
/*
 * zstd for the daemon: whole-buffer compression and decompression with the
 * exact sizes the cache needs, over libzstd.
 *
 * Users: decompression on ingest of datasets opened with STK_DS_ZSTD
 * (prefetch/zfetch.c), and the NVMe tier's --nvme-compress (compress on
 * demotion, decompress on promotion).
 *
 * Threads: every function may be called from any thread.  Each thread keeps
 * one compression and one decompression context, made at its first call and
 * freed when it exits (a pthread key's destructor), so a worker pool pays
 * for them once per thread, not per object.  Nothing here keeps state
 * between calls beyond those contexts, and a fork()ed child may go on using
 * them (they are plain memory).
 *
 * Frames: an object is one zstd frame, or several concatenated (skippable
 * frames are allowed), as `zstd FILE` and stk__zst_compress write them.
 */
#ifndef STOKER_ZST_H
#define STOKER_ZST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes a frame header may need before its content size can be read (ZSTD_FRAMEHEADERSIZE_MAX). */
#define STK_ZST_HEAD_MAX 18

/* The suffix of objects stored compressed, which keys of STK_DS_ZSTD datasets drop. */
#define STK_ZST_SUFFIX ".zst"

/*
 * The largest frame stk__zst_compress can make of len plain bytes: a buffer
 * this large never gets -ENOSPC.  Returns 0 when len is too large for zstd
 * (about 2^64 - 2^56 on 64-bit hosts).
 */
size_t stk__zst_bound(size_t len);

/* The compression levels accepted: [min, max] (about -131072 to 22; 0 means 3). */
int stk__zst_level_min(void);
int stk__zst_level_max(void);

/*
 * Compresses len bytes at src into one frame at dst (cap bytes) at level,
 * recording len as the frame's content size.  Returns the frame's length;
 * -ENOSPC when cap is too small (give stk__zst_bound(len) to be sure: an
 * incompressible buffer grows a little), -EINVAL for a level outside
 * [stk__zst_level_min(), stk__zst_level_max()], -ENOMEM when no context can
 * be made.  dst and src must not overlap.  The caller owns both buffers.
 */
ssize_t stk__zst_compress(void *dst, size_t cap, const void *src, size_t len, int level);

/*
 * Decompresses len bytes at src, which must be exactly one or more whole
 * frames, into dst, which must come to exactly size bytes.  Returns 0 with
 * size bytes written at dst; -EBADMSG when the bytes are not zstd frames, are
 * corrupt or truncated (checksums are verified where the frame has one),
 * or decode to more or fewer bytes than size (dst's content is then
 * undefined); -ENOMEM when no context can be made.  On failure, err (errlen
 * bytes, may be NULL) says why, starting with name ("NAME: ..."), e.g.
 * "file:///d/x.zst: decodes to more than the 4096 bytes declared".
 */
int stk__zst_decompress(void *dst, size_t size, const void *src, size_t len, const char *name,
			char *err, size_t errlen);

/*
 * Reads the content size a frame declares in its header, from its first len
 * bytes (STK_ZST_HEAD_MAX are always enough).  Returns 0 with *size set;
 * -EAGAIN when len bytes do not hold the whole header (a caller that gave
 * the whole object has a truncated one); -EBADMSG when the bytes do not
 * start with a zstd frame (a skippable frame first counts as that); -ENODATA when the frame does
 * not declare its size (zstd writing from a pipe without --stream-size does that).  Only the first
 * frame is read: a file of several frames declares the first one's size,
 * and its decompression then fails the exact-size check.
 */
int stk__zst_content_size(const void *src, size_t len, uint64_t *size);

#endif

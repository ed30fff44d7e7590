/* SPDX-License-Identifier: MIT */
/*
 * Decompression on ingest (STK_DS_ZSTD).  The scheduler gives a ".zst"
 * object room for its plain size and starts it here as it would start a
 * transport's fetch.  Three steps, each ending on the loop thread:
 *
 *   1. the compressed size, on a worker (tp->stat: an fstat for file://, a
 *      HEAD for http and s3), since a transport fetches exactly the bytes it
 *      is told and a manifest gives only the plain size;
 *   2. the compressed bytes, through the transport, into a buffer of that
 *      size (malloc'd: it lives for one object's fetch, outside the cache's
 *      budget, at most the objects in flight at once);
 *   3. decompression into the object's room, on a worker (common/zst.c: a
 *      context per worker thread), checked to give exactly the plain size.
 *
 * The loop thread only moves between steps: the scheduler and the cache
 * stay single-threaded, and a large object's decompression never stalls
 * the loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/loop.h"
#include "common/zst.h"
#include "prefetch/zfetch.h"

#define BUSY_RETRY_NS 2000000ull /* a busy transport is asked again after 2 ms */

/*
 * Bytes beyond the largest frame a plain size can make that a compressed
 * object may have (skippable frames, several frames): more means the
 * listing's plain size is wrong, and nothing that large is allocated.
 */
#define SLACK (1u << 20)

struct zfetch {
	struct stk_fetch in;   /* the compressed bytes, from the backend */
	struct stk_fetch *out; /* the scheduler's: plain bytes into its room */
	const struct stk_transport_ops *tp;
	struct stk_loop *loop;
	struct stk_work w; /* the size, then decompression, on the pool */
	struct stk_op retry;
	uint64_t zsize;
	int err;
	char msg[512];
};

static void finish(struct zfetch *z, int err)
{
	struct stk_fetch *out = z->out;
	char msg[sizeof(z->msg)];
	memcpy(msg, z->msg, sizeof(msg));
	free(z->in.buf);
	free(z);
	out->done(out, err, err ? msg : NULL);
}

static void decode_work(struct stk_work *w)
{
	struct zfetch *z = stk_container_of(w, struct zfetch, w);
	int r = stk__zst_decompress(z->out->buf, z->out->size, z->in.buf, z->zsize, z->out->uri,
				    z->msg, sizeof(z->msg));
	z->err = r == -ENOMEM ? r : r ? -EIO : 0;
}

static void decode_done(struct stk_work *w)
{
	struct zfetch *z = stk_container_of(w, struct zfetch, w);
	finish(z, z->err);
}

static void fetched(struct stk_fetch *f, int err, const char *msg)
{
	struct zfetch *z = stk_container_of(f, struct zfetch, in);
	if (err) {
		snprintf(z->msg, sizeof(z->msg), "%s", msg ? msg : z->out->uri);
		finish(z, err);
		return;
	}
	memcpy(z->out->etag, f->etag, sizeof(f->etag));
	uint64_t fb = __atomic_load_n(&f->first_byte_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&z->out->first_byte_ns, fb, __ATOMIC_RELAXED);
	z->w.work = decode_work;
	z->w.done = decode_done;
	stk_loop_work(z->loop, &z->w);
}

static void submit_in(struct zfetch *z);

static void retry_cb(struct stk_op *op, int res)
{
	(void)res;
	submit_in(stk_container_of(op, struct zfetch, retry));
}

static void submit_in(struct zfetch *z)
{
	int q = z->tp->submit(&z->in);
	if (q == STK_Q_QUEUED)
		return;
	if (q == STK_Q_BUSY) {
		memset(&z->retry, 0, sizeof(z->retry));
		z->retry.cb = retry_cb;
		q = stk_loop_timeout(z->loop, &z->retry, BUSY_RETRY_NS);
		if (!q)
			return;
	}
	snprintf(z->msg, sizeof(z->msg), "%s: %s", z->out->uri, strerror(-q));
	finish(z, q);
}

static void size_work(struct stk_work *w)
{
	struct zfetch *z = stk_container_of(w, struct zfetch, w);
	z->err = z->tp->stat(z->out->uri, &z->zsize, z->msg, sizeof(z->msg));
}

static void size_done(struct stk_work *w)
{
	struct zfetch *z = stk_container_of(w, struct zfetch, w);
	if (z->err) {
		finish(z, z->err);
		return;
	}
	size_t bound = stk__zst_bound(z->out->size);
	if (!bound || z->zsize > bound + SLACK) {
		snprintf(z->msg, sizeof(z->msg),
			 "%s: %llu bytes is more than zstd data of %llu plain bytes can be",
			 z->out->uri, (unsigned long long)z->zsize,
			 (unsigned long long)z->out->size);
		finish(z, -EIO);
		return;
	}
	z->in.buf = malloc(z->zsize ? z->zsize : 1);
	if (!z->in.buf) {
		snprintf(z->msg, sizeof(z->msg), "%s: out of memory for %llu compressed bytes",
			 z->out->uri, (unsigned long long)z->zsize);
		finish(z, -ENOMEM);
		return;
	}
	z->in.uri = z->out->uri;
	z->in.cap = z->in.size = z->zsize;
	z->in.fd = -1;
	z->in.done = fetched;
	submit_in(z);
}

int stk__zfetch_submit(struct stk_loop *loop, const struct stk_transport_ops *tp,
		       struct stk_fetch *f)
{
	struct zfetch *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->out = f;
	z->tp = tp;
	z->loop = loop;
	z->w.work = size_work;
	z->w.done = size_done;
	stk_loop_work(loop, &z->w);
	return STK_Q_QUEUED;
}

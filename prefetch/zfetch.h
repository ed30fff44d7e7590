/* SPDX-License-Identifier: MIT */
/* Fetches of objects decoded from the backend's bytes (STK_CODEC_ZSTD): see zfetch.c. */
#ifndef STOKER_ZFETCH_H
#define STOKER_ZFETCH_H

#include "transports/transport.h"

struct stk_loop;

/*
 * Starts f as a transport's submit would, for an object stored compressed at
 * f->uri through tp: f->buf (f->cap bytes) receives exactly f->size plain
 * bytes.  The compressed size is asked of the backend (tp->stat) and the
 * compressed bytes fetched into a buffer of that size; a worker of loop's
 * pool decompresses them into f->buf.  Returns STK_Q_QUEUED, and f->done is
 * then called exactly once on loop's thread: 0, or -errno with a message
 * naming the URI (-EIO for bytes that are not zstd data or do not decode to
 * exactly f->size bytes; the backend's error otherwise).  Returns -ENOMEM
 * (done is never called).  A busy transport is retried after a millisecond
 * or two, so it never returns STK_Q_BUSY.  f->etag and f->first_byte_ns
 * are the compressed fetch's.
 */
int stk__zfetch_submit(struct stk_loop *loop, const struct stk_transport_ops *tp,
		       struct stk_fetch *f);

#endif

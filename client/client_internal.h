/* SPDX-License-Identifier: MIT */
#ifndef STOKER_CLIENT_INTERNAL_H
#define STOKER_CLIENT_INTERNAL_H

#include "stoker.h"

#include "proto/proto.h"

/* Sets this thread's stk_errmsg() text. */
void stk__set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* segments.c: the daemon's segments as this client maps them; callers hold the client's lock. */
struct stk_seg_map;
struct stk_segs {
	struct stk_seg_map **v; /* by segment index: newest generation first */
	uint32_t n;
};
/*
 * Counts a view into g's segment, mapping it from fd first if this client
 * has not (fd is consumed either way; -1 when the reply carried none).
 * Returns 0 with *base the mapping's start, -EPROTO when the segment was
 * never sent, or mmap's -errno.
 */
int stk__segs_take(struct stk_segs *s, const struct stk_get_where *g, int fd, const uint8_t **base);
/* Ends a view; unmaps a dedicated or replaced mapping no view uses any more. */
void stk__segs_put(struct stk_segs *s, uint32_t seg, uint32_t gen);
void stk__segs_fini(struct stk_segs *s);

#endif

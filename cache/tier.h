/* SPDX-License-Identifier: MIT */
/*
 * For tier authors.  A cache tier is a table of operations plus an instance
 * (struct stk_tier) holding its own state and budget, so a new tier (NVMe
 * next) is one new file and one registry line, and nothing above it changes.
 * Every object records the room its tier gave it (struct stk_tier_obj).
 */
#ifndef STOKER_TIER_H
#define STOKER_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/arena.h"

/* Where a tier keeps one object. */
struct stk_tier_obj {
	struct stk_extent ext; /* segment, offset, length and charge */
	void *map;	       /* the daemon's writable address of its first byte */
};

struct stk_tier;

struct stk_tier_ops {
	const char *name;
	/*
	 * Required. Sets up t, whose budget (bytes, waste included) and flags
	 * the caller set.  0, or -errno with err saying why.
	 */
	int (*init)(struct stk_tier *t, char *err, size_t errlen);
	/* Required. Frees everything t holds; accepts a tier whose init failed. */
	void (*fini)(struct stk_tier *t);
	/*
	 * Required. Finds room for size bytes of trust domain domain (stored
	 * only where clients of that domain alone can read) and charges it:
	 * 0 with to filled;
	 * -EFBIG when it can never fit; -ENOSPC when the budget left is too
	 * small and -EAGAIN when the room left is in pieces (evict, then retry
	 * either); -ENOMEM and the like when the tier could not grow.
	 */
	int (*alloc)(struct stk_tier *t, struct stk_tier_obj *to, uint64_t size, uint32_t domain);
	/* Required. Gives to's room back; nobody may read it any more. */
	void (*drop)(struct stk_tier *t, struct stk_tier_obj *to);
	/* Required. The shared segment seg, for delivery to clients. 0 or -ENOENT. */
	int (*segment)(const struct stk_tier *t, uint32_t seg, struct stk_arena_seg *out);
	/*
	 * Optional - may be NULL. After alloc said -EAGAIN: the segment whose
	 * emptying surely makes room (evict from it first), or STK_ARENA_NOSEG.
	 */
	uint32_t (*evict_hint)(const struct stk_tier *t);
};

struct stk_tier {
	const struct stk_tier_ops *ops;
	void *priv;	 /* the tier's own state */
	uint64_t budget; /* bytes it may charge, waste included */
	uint64_t used;	 /* bytes charged to the objects it holds */
	unsigned flags;	 /* tier-specific (ram: STK_ARENA_*) */
	/* Set by the tier's user after init: told when segment seg (generation gen) ends. */
	void (*gone)(void *arg, uint32_t seg, uint32_t gen);
	void *gone_arg;
};

/* Tier 0: objects packed into shared memfd segments (cache/arena.h). */
extern const struct stk_tier_ops stk_tier_ram;

#endif

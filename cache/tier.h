/* SPDX-License-Identifier: MIT */
/*
 * A cache tier is a table of operations, so a new tier (NVMe next) is one new
 * file and one pointer, and nothing above it changes.
 */
#ifndef STOKER_TIER_H
#define STOKER_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A tier's storage for one object. */
struct stk_tier_obj {
	int fd;	   /* the object's fd, passed to clients; -1 when none */
	void *map; /* writable while filling; read-only and locked once sealed, or NULL */
	size_t maplen;
	bool locked;
};

struct stk_tier_ops {
	const char *name;
	/* Required. Creates storage of size bytes, mapped writable at t->map. 0 or -errno. */
	int (*alloc)(struct stk_tier_obj *t, const char *name, uint64_t size, char *err,
		     size_t errlen);
	/* Required. Ends writing: unmaps, seals, and pins the pages if try_lock. 0 or -errno. */
	int (*seal)(struct stk_tier_obj *t, bool *try_lock, char *err, size_t errlen);
	/* Required. Frees the storage. */
	void (*drop)(struct stk_tier_obj *t);
};

/* Tier 0: one sealed memfd per object, mlock'd while RLIMIT_MEMLOCK allows. */
extern const struct stk_tier_ops stk_tier_ram;

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The arena's private parts, shared by arena.c (segments and the
 * interface), arena_extent.c (free extents), arena_slab.c (size classes and
 * slabs) and arena_check.c (stk__arena_check()).  Not installed; see arena.c
 * for the design.
 */
#ifndef STOKER_ARENA_INTERNAL_H
#define STOKER_ARENA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/arena.h"

#define PAGE	  ((uint64_t)STK_ARENA_PAGE)
#define FL_N	  32
#define SL_BITS	  4
#define SL_N	  (1u << SL_BITS)
#define SLAB_BIT  0x80000000u /* in a page tag: the page belongs to slab (tag & ~SLAB_BIT) */
#define BIN_SCAN  8	      /* free extents of the size's own bin looked at before moving up */
#define MIN_SLAB  (64u << 10)
#define MIN_SLOTS 8
#define NONE	  UINT32_MAX
#define POOL                                                                                       \
	UINT32_MAX /* stk_arena_segi.dom of a segment no domain owns yet (STK_ARENA_PREFAULT) */
#define DEF_SMALL (32u << 10)
#define MAX_DEDIC 1024

/* A segment. Shared ones file their free extents in bins[][]. */
struct stk_arena_segi {
	int fd;
	uint32_t gen;
	uint8_t *map;
	uint64_t size;
	uint64_t charged, slab_free, ext_free;
	bool dedicated;
	uint32_t dom; /* its trust domain's slot in doms[] */
	uint32_t npg;
	uint32_t *tag; /* per page: free extent (node index) at its ends, or SLAB_BIT | slab */
	uint32_t flmap;
	uint32_t slmap[FL_N];
	uint32_t bins[FL_N][SL_N]; /* heads of lists of nodes */
};

/* A free extent of a shared segment. */
struct stk_arena_node {
	uint32_t seg;
	uint32_t pg, npg;
	uint32_t prev, next; /* in its bin; next also links unused nodes */
	bool used;
};

struct stk_arena_slab {
	uint32_t seg, cls, dom;
	uint64_t off;
	uint32_t nslots, nfree;
	uint32_t prev, next; /* in its class's partial list */
	bool listed;
	uint64_t bits[]; /* 1: the slot is free */
};

static inline uint64_t round_up(uint64_t n, uint64_t a)
{
	return (n + a - 1) / a * a;
}

static inline unsigned log2_floor(uint64_t n)
{
	return 63u - (unsigned)__builtin_clzll(n);
}

/* --- size classes (slabs: arena_slab.c) --- */

static inline uint64_t class_bytes(unsigned c)
{
	if (c == 0)
		return 64;
	unsigned k = 6 + (c - 1) / 8, j = 1 + (c - 1) % 8;
	return (1ull << k) + ((uint64_t)j << (k - 3));
}

static inline unsigned class_of(uint64_t size)
{
	if (size <= 64)
		return 0;
	unsigned k = log2_floor(size - 1); /* 2^k < size <= 2^(k+1) */
	uint64_t j = (size - (1ull << k) + (1ull << (k - 3)) - 1) >> (k - 3);
	return 1 + (k - 6) * 8 + (unsigned)(j - 1);
}

uint64_t stk__arena_slab_bytes(uint64_t cls);
uint64_t stk__arena_max_slab(uint64_t small);

/* --- free extents: nodes and bins (arena_extent.c) --- */

static inline void bin_of(uint32_t n, unsigned *fl, unsigned *sl)
{
	if (n < SL_N) {
		*fl = 0;
		*sl = n;
		return;
	}
	unsigned f = log2_floor(n);
	*fl = f - SL_BITS + 1;
	*sl = (n >> (f - SL_BITS)) & (SL_N - 1);
}

/* Returns the free extent of segment seg whose end (or start) is page pg, or 0. */
static inline uint32_t free_at(const struct stk_arena *a, uint32_t seg, uint32_t pg, bool end)
{
	uint32_t t = a->segs[seg]->tag[pg];
	if (!t || (t & SLAB_BIT) || t >= a->nodecap)
		return 0;
	const struct stk_arena_node *n = &a->nodes[t];
	if (!n->used || n->seg != seg)
		return 0;
	if (end ? n->pg + n->npg - 1 != pg : n->pg != pg)
		return 0;
	return t;
}

int stk__arena_node_reserve(struct stk_arena *a);
void stk__arena_node_put(struct stk_arena *a, uint32_t i);
uint32_t stk__arena_ext_take(struct stk_arena *a, uint32_t seg, uint32_t npg);
void stk__arena_ext_give(struct stk_arena *a, uint32_t seg, uint32_t pg, uint32_t npg);
/* In arena.c: pages from a shared segment, making one if need be. */
int stk__arena_ext_alloc(struct stk_arena *a, uint32_t dom, uint32_t npg, uint32_t *segp,
			 uint32_t *pgp);

/* --- slabs (arena_slab.c) --- */

/* Head and tail of the list of slabs of class c in domain slot dom that have free slots. */
static inline uint32_t *partial_of(const struct stk_arena *a, uint32_t dom, unsigned c)
{
	return &a->partial[2 * ((size_t)dom * a->nclasses + c)];
}

void stk__arena_partial_unlink(struct stk_arena *a, struct stk_arena_slab *sl);
void stk__arena_partial_link(struct stk_arena *a, uint32_t i, bool at_head);
int stk__arena_slab_new(struct stk_arena *a, uint32_t dom, unsigned c, uint32_t *out);
void stk__arena_slab_release(struct stk_arena *a, uint32_t i);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The arena's size classes and slabs (see arena.c for the design), and the
 * per-domain lists of slabs with free slots.
 */
#include "cache/arena_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t gcd(uint64_t x, uint64_t y)
{
	while (y) {
		uint64_t t = x % y;
		x = y;
		y = t;
	}
	return x;
}

/* --- size classes (class_bytes() and class_of() are in arena_internal.h) --- */

uint64_t stk__arena_slab_bytes(uint64_t cls)
{
	uint64_t l = cls / gcd(cls, PAGE) * PAGE;
	uint64_t want = cls * MIN_SLOTS > MIN_SLAB ? cls * MIN_SLOTS : MIN_SLAB;
	return round_up(want, l);
}

/* The largest slab of the classes up to small. */
uint64_t stk__arena_max_slab(uint64_t small)
{
	uint64_t m = 0;
	for (unsigned c = 0; c <= class_of(small); c++)
		if (stk__arena_slab_bytes(class_bytes(c)) > m)
			m = stk__arena_slab_bytes(class_bytes(c));
	return m;
}

/* --- slabs --- */

void stk__arena_partial_unlink(struct stk_arena *a, struct stk_arena_slab *sl)
{
	uint32_t *head = partial_of(a, sl->dom, sl->cls), *tail = head + 1;
	if (sl->prev)
		a->slabs[sl->prev]->next = sl->next;
	else
		*head = sl->next;
	if (sl->next)
		a->slabs[sl->next]->prev = sl->prev;
	else
		*tail = sl->prev;
	sl->listed = false;
}

void stk__arena_partial_link(struct stk_arena *a, uint32_t i, bool at_head)
{
	struct stk_arena_slab *sl = a->slabs[i];
	uint32_t *head = partial_of(a, sl->dom, sl->cls), *tail = head + 1;
	if (at_head) {
		sl->prev = 0;
		sl->next = *head;
		if (*head)
			a->slabs[*head]->prev = i;
		else
			*tail = i;
		*head = i;
	} else {
		sl->next = 0;
		sl->prev = *tail;
		if (*tail)
			a->slabs[*tail]->next = i;
		else
			*head = i;
		*tail = i;
	}
	sl->listed = true;
}

int stk__arena_slab_new(struct stk_arena *a, uint32_t dom, unsigned c, uint32_t *out)
{
	if (!a->slabfree) {
		uint32_t cap = a->slabcap ? a->slabcap * 2 : 64;
		struct stk_arena_slab **v = realloc(a->slabs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->slabs = v;
		v[0] = NULL;
		uint32_t *st = realloc(a->slabstack, cap * sizeof(*st));
		if (!st)
			return -ENOMEM;
		a->slabstack = st;
		for (uint32_t i = cap - 1; i >= (a->slabcap ? a->slabcap : 1); i--) {
			v[i] = NULL;
			st[a->slabfree++] = i;
		}
		a->slabcap = cap;
	}
	uint64_t bytes = a->cls_slab[c], cls = a->cls_size[c];
	uint32_t nslots = (uint32_t)(bytes / cls), words = (nslots + 63) / 64;
	struct stk_arena_slab *sl = malloc(sizeof(*sl) + words * sizeof(uint64_t));
	if (!sl)
		return -ENOMEM;
	uint32_t seg, pg;
	int r = stk__arena_ext_alloc(a, dom, (uint32_t)(bytes / PAGE), &seg, &pg);
	if (r) {
		free(sl);
		return r;
	}
	uint32_t i = a->slabstack[--a->slabfree];
	a->slabs[i] = sl;
	sl->seg = seg;
	sl->cls = c;
	sl->dom = dom;
	sl->off = (uint64_t)pg * PAGE;
	sl->nslots = sl->nfree = nslots;
	memset(sl->bits, 0xff, words * sizeof(uint64_t));
	if (nslots % 64)
		sl->bits[words - 1] = (1ull << (nslots % 64)) - 1;
	struct stk_arena_segi *s = a->segs[seg];
	for (uint32_t p = 0; p < bytes / PAGE; p++)
		s->tag[pg + p] = SLAB_BIT | i;
	s->slab_free += bytes;
	a->slab_free += bytes;
	a->runs++;
	stk__arena_partial_link(a, i, true);
	*out = i;
	return 0;
}

void stk__arena_slab_release(struct stk_arena *a, uint32_t i)
{
	struct stk_arena_slab *sl = a->slabs[i];
	uint64_t bytes = a->cls_slab[sl->cls];
	struct stk_arena_segi *s = a->segs[sl->seg];
	if (sl->listed)
		stk__arena_partial_unlink(a, sl);
	/* Stale slab tags would let a bad free pass for a good one. */
	memset(s->tag + sl->off / PAGE, 0, bytes / PAGE * sizeof(*s->tag));
	stk__arena_ext_give(a, sl->seg, (uint32_t)(sl->off / PAGE), (uint32_t)(bytes / PAGE));
	a->runs--;
	s->slab_free -= bytes;
	a->slab_free -= bytes;
	free(sl);
	a->slabs[i] = NULL;
	a->slabstack[a->slabfree++] = i;
}

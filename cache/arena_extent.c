/* SPDX-License-Identifier: MIT */
/*
 * The arena's free extents: page runs of shared segments, filed by size in
 * TLSF bins, and the nodes that describe them (see arena.c for the design).
 */
#include "cache/arena_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- free extents: nodes and bins --- */

/*
 * Free extents are separated by allocated runs (slabs and extents), so a
 * shared segment never has more of them than its runs plus one.  Keeping
 * nodes for every run and segment, plus those an allocation may add, before
 * allocating means that freeing never needs memory and cannot fail.
 */
int stk__arena_node_reserve(struct stk_arena *a)
{
	uint64_t want = (uint64_t)a->runs + a->nnormal + 3;
	if (want < a->nodecap)
		return 0;
	uint32_t cap = a->nodecap ? a->nodecap : 256;
	while (cap <= want)
		cap *= 2;
	struct stk_arena_node *n = realloc(a->nodes, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n + a->nodecap, 0, (cap - a->nodecap) * sizeof(*n));
	/* Index 0 is never handed out: 0 means none in links and tags. */
	for (uint32_t i = cap - 1; i >= (a->nodecap ? a->nodecap : 1); i--) {
		n[i].next = a->nodefree;
		a->nodefree = i;
	}
	a->nodes = n;
	a->nodecap = cap;
	return 0;
}

static uint32_t node_get(struct stk_arena *a)
{
	uint32_t i = a->nodefree;
	a->nodefree = a->nodes[i].next;
	return i;
}

void stk__arena_node_put(struct stk_arena *a, uint32_t i)
{
	a->nodes[i].used = false;
	a->nodes[i].next = a->nodefree;
	a->nodefree = i;
}

static void bin_link(struct stk_arena *a, struct stk_arena_segi *s, uint32_t i)
{
	struct stk_arena_node *n = &a->nodes[i];
	unsigned fl, sl;
	bin_of(n->npg, &fl, &sl);
	n->prev = 0;
	n->next = s->bins[fl][sl];
	if (n->next)
		a->nodes[n->next].prev = i;
	s->bins[fl][sl] = i;
	s->slmap[fl] |= 1u << sl;
	s->flmap |= 1u << fl;
	n->used = true;
	s->tag[n->pg] = i;
	s->tag[n->pg + n->npg - 1] = i;
}

static void bin_unlink(struct stk_arena *a, struct stk_arena_segi *s, uint32_t i)
{
	struct stk_arena_node *n = &a->nodes[i];
	unsigned fl, sl;
	bin_of(n->npg, &fl, &sl);
	if (n->prev)
		a->nodes[n->prev].next = n->next;
	else
		s->bins[fl][sl] = n->next;
	if (n->next)
		a->nodes[n->next].prev = n->prev;
	if (!s->bins[fl][sl]) {
		s->slmap[fl] &= ~(1u << sl);
		if (!s->slmap[fl])
			s->flmap &= ~(1u << fl);
	}
	n->used = false;
}

/* Takes npg pages from segment seg's free extents. Returns the first page, or NONE. */
uint32_t stk__arena_ext_take(struct stk_arena *a, uint32_t seg, uint32_t npg)
{
	struct stk_arena_segi *s = a->segs[seg];
	unsigned fl, sl;
	uint32_t best = 0;
	if (s->ext_free < (uint64_t)npg * PAGE)
		return NONE;
	bin_of(npg, &fl, &sl);
	unsigned seen = 0;
	for (uint32_t i = s->bins[fl][sl]; i && seen < BIN_SCAN; i = a->nodes[i].next, seen++) {
		uint32_t have = a->nodes[i].npg;
		if (have >= npg && (!best || have < a->nodes[best].npg))
			best = i;
		if (have == npg)
			break;
	}
	if (!best) {
		uint32_t m = sl + 1 < SL_N ? s->slmap[fl] & (~0u << (sl + 1)) : 0;
		if (m) {
			best = s->bins[fl][__builtin_ctz(m)];
		} else {
			uint32_t f = fl + 1 < FL_N ? s->flmap & (~0u << (fl + 1)) : 0;
			if (!f)
				return NONE;
			unsigned fl2 = (unsigned)__builtin_ctz(f);
			best = s->bins[fl2][__builtin_ctz(s->slmap[fl2])];
		}
	}
	struct stk_arena_node *n = &a->nodes[best];
	uint32_t pg = n->pg;
	bin_unlink(a, s, best);
	if (n->npg > npg) {
		n->pg += npg;
		n->npg -= npg;
		bin_link(a, s, best);
	} else {
		stk__arena_node_put(a, best);
	}
	s->ext_free -= (uint64_t)npg * PAGE;
	a->ext_free -= (uint64_t)npg * PAGE;
	return pg;
}

/* Returns pages [pg, pg + npg) of segment seg to its free extents, merged with free neighbours. */
void stk__arena_ext_give(struct stk_arena *a, uint32_t seg, uint32_t pg, uint32_t npg)
{
	struct stk_arena_segi *s = a->segs[seg];
	uint32_t l = pg ? free_at(a, seg, pg - 1, true) : 0;
	uint32_t r = pg + npg < s->npg ? free_at(a, seg, pg + npg, false) : 0;
	uint32_t i;
	if (l) {
		i = l;
		bin_unlink(a, s, l);
		a->nodes[l].npg += npg;
		if (r) {
			bin_unlink(a, s, r);
			a->nodes[l].npg += a->nodes[r].npg;
			stk__arena_node_put(a, r);
		}
	} else if (r) {
		i = r;
		bin_unlink(a, s, r);
		a->nodes[r].pg = pg;
		a->nodes[r].npg += npg;
	} else {
		i = node_get(a);
		a->nodes[i].seg = seg;
		a->nodes[i].pg = pg;
		a->nodes[i].npg = npg;
	}
	bin_link(a, s, i);
	s->ext_free += (uint64_t)npg * PAGE;
	a->ext_free += (uint64_t)npg * PAGE;
}

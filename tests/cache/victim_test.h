/* SPDX-License-Identifier: MIT */
/*
 * What test_victim.c and test_victim_scale.c share: a seeded random
 * generator, plans kept the way prefetch/sched.c keeps them, next use
 * computed the way stk__next_use does, and room records for objects.
 */
#ifndef STOKER_TEST_VICTIM_H
#define STOKER_TEST_VICTIM_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "cache/victim.h"

#define NONE UINT32_MAX

static uint64_t rng;

static inline uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static inline uint32_t below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/* A plan as prefetch/sched.c keeps one (struct stk_plan), over objects 0..nobj-1. */
struct tplan {
	uint32_t *order, *next, *head, *last;
	uint32_t n, cap, cursor, scan;
	bool live;
};

static inline void tplan_init(struct tplan *p, uint32_t nobj)
{
	memset(p, 0, sizeof(*p));
	p->head = malloc(nobj * sizeof(*p->head));
	p->last = malloc(nobj * sizeof(*p->last));
	cr_assert(p->head && p->last);
	memset(p->head, 0xff, nobj * sizeof(*p->head));
	memset(p->last, 0xff, nobj * sizeof(*p->last));
	p->live = true;
}

static inline void tplan_fini(struct tplan *p)
{
	free(p->order);
	free(p->next);
	free(p->head);
	free(p->last);
	memset(p, 0, sizeof(*p));
}

/* stk__plan_append of one object. */
static inline void tplan_append(struct tplan *p, uint32_t obj)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 256;
		p->order = realloc(p->order, p->cap * sizeof(*p->order));
		p->next = realloc(p->next, p->cap * sizeof(*p->next));
		cr_assert(p->order && p->next);
	}
	uint32_t pos = p->n++;
	p->order[pos] = obj;
	p->next[pos] = NONE;
	if (p->last[obj] != NONE)
		p->next[p->last[obj]] = pos;
	if (p->head[obj] == NONE)
		p->head[obj] = pos;
	p->last[obj] = pos;
}

/*
 * stk__plan_advance.  Returns the cursor it started from: the objects at
 * positions from there to the new cursor - 1 moved to their next occurrence.
 */
static inline uint32_t tplan_advance(struct tplan *p, uint32_t obj)
{
	uint32_t c0 = p->cursor, h = p->head[obj];
	if (h == NONE)
		return c0;
	for (uint32_t k = p->cursor; k <= h; k++)
		p->head[p->order[k]] = p->next[k];
	p->cursor = h + 1;
	return c0;
}

/* What next_use sees: objects and plans. */
struct world {
	struct stk_object *o;
	uint32_t nobj;
	struct tplan *p;
	uint32_t np;
	uint64_t calls; /* of next_use, by the heap */
	uint64_t picks; /* of a nonempty heap, through pick() */
	uint64_t clock; /* the last stamp given */
};

/* stk__next_use: the nearest head over the live plans, UINT64_MAX for none. */
static inline uint64_t truth(const struct world *w, const struct stk_object *o)
{
	uint32_t id = (uint32_t)(o - w->o);
	uint64_t best = UINT64_MAX;
	for (uint32_t i = 0; i < w->np; i++) {
		const struct tplan *p = &w->p[i];
		if (!p->live)
			continue;
		uint32_t h = p->head[id];
		if (h != NONE && (uint64_t)(h - p->cursor) < best)
			best = h - p->cursor;
	}
	return best;
}

static inline uint64_t next_use(void *arg, const struct stk_object *o)
{
	struct world *w = arg;
	w->calls++;
	return truth(w, o);
}

/* The heap's keys live in an object's room record, which the cache gives resident objects. */
static inline struct stk_obj_room *give_rooms(struct stk_object *o, size_t n)
{
	struct stk_obj_room *r = calloc(n, sizeof(*r));
	cr_assert_not_null(r);
	for (size_t i = 0; i < n; i++)
		o[i].room = &r[i];
	return r;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The victims heap (see victim.h).  Why the lazy pick returns the brute-force
 * choice: let t be the top, (K, S) its (vkey, stamp), and d its next use,
 * found equal to K.  For any other object o in the heap, by heap order
 * (vkey(o), stamp(o)) < (K, S), and by the invariant next_use(o) <= vkey(o).
 * So next_use(o) <= K = d; and if next_use(o) == d then vkey(o) == K too,
 * which leaves stamp(o) < S.  Either way o comes after t in the brute-force
 * order (next use, then stamp).  When d < K instead, setting t's key to d
 * keeps the invariant and the next round looks again; the next uses do not
 * change during a pick, so an object whose key was corrected is accepted if
 * it reaches the top again, and the loop ends after at most n corrections.
 */
#include "cache/cache.h"

#include <errno.h>
#include <stdlib.h>

/* Whether a belongs above b: larger key, then the newer among equal keys. */
static inline bool above(const struct stk_object *a, const struct stk_object *b)
{
	return a->room->vkey > b->room->vkey ||
	       (a->room->vkey == b->room->vkey && a->room->stamp > b->room->stamp);
}

static inline void put(struct stk_victims *v, uint32_t i, struct stk_object *o)
{
	v->h[i] = o;
	o->vidx = i + 1;
}

/* Moves o, meant for slot i, up while it belongs above its parent. */
static void sift_up(struct stk_victims *v, uint32_t i, struct stk_object *o)
{
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!above(o, v->h[p]))
			break;
		put(v, i, v->h[p]);
		i = p;
	}
	put(v, i, o);
}

/* Moves o, meant for slot i, down while a child belongs above it. */
static void sift_down(struct stk_victims *v, uint32_t i, struct stk_object *o)
{
	uint32_t n = v->n;
	for (;;) {
		uint64_t l = 2 * (uint64_t)i + 1;
		if (l >= n)
			break;
		uint32_t c = (uint32_t)l;
		if (c + 1 < n && above(v->h[c + 1], v->h[c]))
			c++;
		if (!above(v->h[c], o))
			break;
		put(v, i, v->h[c]);
		i = c;
	}
	put(v, i, o);
}

/* Puts o, meant for slot i, where it belongs relative to its parent and children. */
static void fix(struct stk_victims *v, uint32_t i, struct stk_object *o)
{
	if (i > 0 && above(o, v->h[(i - 1) / 2]))
		sift_up(v, i, o);
	else
		sift_down(v, i, o);
}

int stk__victims_add(struct stk_victims *v, struct stk_object *o, uint64_t key)
{
	if (o->vidx) {
		stk__victims_rekey(v, o, key);
		return 0;
	}
	if (v->n == v->cap) {
		/* vidx is the slot + 1 in a uint32_t: UINT32_MAX - 1 slots at most. */
		if (v->cap >= UINT32_MAX - 1)
			return -ENOMEM;
		uint32_t cap = !v->cap			       ? 1024
			       : v->cap > (UINT32_MAX - 1) / 2 ? UINT32_MAX - 1
							       : v->cap * 2;
		struct stk_object **h = realloc(v->h, (size_t)cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		v->h = h;
		v->cap = cap;
	}
	o->room->vkey = key;
	sift_up(v, v->n++, o);
	return 0;
}

void stk__victims_del(struct stk_victims *v, struct stk_object *o)
{
	if (!o->vidx)
		return;
	uint32_t i = o->vidx - 1;
	o->vidx = 0;
	struct stk_object *last = v->h[--v->n];
	if (last != o)
		fix(v, i, last);
}

void stk__victims_rekey(struct stk_victims *v, struct stk_object *o, uint64_t key)
{
	if (!o->vidx)
		return;
	o->room->vkey = key;
	fix(v, o->vidx - 1, o);
}

struct stk_object *stk__victims_pick(struct stk_victims *v,
				     uint64_t (*next_use)(void *arg, const struct stk_object *o),
				     void *arg, uint64_t *dist)
{
	while (v->n) {
		struct stk_object *t = v->h[0];
		uint64_t d = next_use(arg, t);
		if (d == t->room->vkey) {
			*dist = d;
			return t;
		}
		/*
		 * d < vkey under the contract.  d > vkey means a rise went
		 * unreported; taking d as the key keeps t on top and ends the
		 * loop next round rather than looping or failing.
		 */
		t->room->vkey = d;
		fix(v, 0, t);
	}
	return NULL;
}

void stk__victims_fini(struct stk_victims *v)
{
	if (!v)
		return;
	for (uint32_t i = 0; i < v->n; i++)
		v->h[i]->vidx = 0;
	free(v->h);
	v->h = NULL;
	v->n = v->cap = 0;
}

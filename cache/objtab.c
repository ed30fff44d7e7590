/* SPDX-License-Identifier: MIT */
/*
 * The object table: every object some dataset lists, found by trust domain,
 * URI, size and codec.
 * Chained hashing with power-of-two buckets, grown at a load of 1, so a
 * million-object dataset costs one pointer per object and O(1) a lookup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

static uint32_t obj_hash(uint32_t domain, const char *uri, uint64_t size, uint8_t codec)
{
	uint64_t h =
	    ((1469598103934665603ull ^ size) * 1099511628211ull ^ domain) * 1099511628211ull ^
	    codec;
	for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32));
}

struct stk_object *stk__objtab_find(const struct stk_objtab *t, uint32_t domain, const char *uri,
				    uint64_t size, uint8_t codec)
{
	if (!t->b)
		return NULL;
	uint32_t h = obj_hash(domain, uri, size, codec);
	for (struct stk_object *o = t->b[h & t->mask]; o; o = o->hnext)
		if (o->hash == h && o->size == size && o->domain == domain && o->codec == codec &&
		    !strcmp(o->uri, uri))
			return o;
	return NULL;
}

static int grow(struct stk_objtab *t)
{
	uint32_t nb = t->b ? (t->mask + 1) * 2 : 1024;
	struct stk_object **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; t->b && i <= t->mask; i++) {
		for (struct stk_object *o = t->b[i], *n; o; o = n) {
			n = o->hnext;
			o->hnext = b[o->hash & (nb - 1)];
			b[o->hash & (nb - 1)] = o;
		}
	}
	free(t->b);
	t->b = b;
	t->mask = nb - 1;
	return 0;
}

int stk__objtab_add(struct stk_objtab *t, struct stk_object *o)
{
	if ((!t->b || t->n > t->mask) && grow(t) && !t->b)
		return -ENOMEM; /* a failed growth only costs longer chains */
	o->hash = obj_hash(o->domain, o->uri, o->size, o->codec);
	o->hnext = t->b[o->hash & t->mask];
	t->b[o->hash & t->mask] = o;
	t->n++;
	return 0;
}

void stk__objtab_del(struct stk_objtab *t, struct stk_object *o)
{
	for (struct stk_object **pp = &t->b[o->hash & t->mask]; *pp; pp = &(*pp)->hnext) {
		if (*pp == o) {
			*pp = o->hnext;
			t->n--;
			return;
		}
	}
}

void stk__objtab_fini(struct stk_objtab *t)
{
	free(t->b);
	t->b = NULL;
	t->mask = 0;
	t->n = 0;
}

int stk__obj_ref(struct stk_object *o, struct stk_ds *ds, uint32_t index)
{
	if (!o->caprefs) {
		o->refs = &o->ref0;
		o->caprefs = 1;
	}
	if (o->nrefs == o->caprefs) {
		uint32_t cap = o->caprefs * 2;
		bool inline_ = o->refs == &o->ref0;
		struct stk_obj_ref *r = realloc(inline_ ? NULL : o->refs, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		if (inline_)
			r[0] = o->ref0;
		o->refs = r;
		o->caprefs = cap;
	}
	o->refs[o->nrefs++] = (struct stk_obj_ref){ .ds = ds, .index = index };
	return 0;
}

void stk__obj_refs_free(struct stk_object *o)
{
	if (o->refs != &o->ref0)
		free(o->refs);
	o->refs = NULL;
	o->nrefs = o->caprefs = 0;
}

uint32_t stk__obj_unref(struct stk_object *o, struct stk_ds *ds, uint32_t index)
{
	for (uint32_t i = 0; i < o->nrefs; i++) {
		if (o->refs[i].ds == ds && o->refs[i].index == index) {
			o->refs[i] = o->refs[--o->nrefs];
			break;
		}
	}
	return o->nrefs;
}

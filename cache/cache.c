/* SPDX-License-Identifier: MIT */
#include "cache/cache.h"

#include <unistd.h>

uint64_t stk__cache_charge(const struct stk_object *o)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	return (o->size + pg - 1) & ~(pg - 1);
}

bool stk__cache_fits(const struct stk_cache *c, const struct stk_object *o)
{
	return stk__cache_charge(o) <= c->budget - c->used;
}

int stk__cache_alloc(struct stk_cache *c, struct stk_object *o, char *err, size_t errlen)
{
	int r = c->tier->alloc(&o->t, o->uri, o->size, err, errlen);
	if (r)
		return r;
	c->used += stk__cache_charge(o);
	o->state = STK_OBJ_FETCHING;
	return 0;
}

int stk__cache_seal(struct stk_cache *c, struct stk_object *o, char *err, size_t errlen)
{
	int r = c->tier->seal(&o->t, &c->try_mlock, err, errlen);
	if (r)
		return r;
	o->state = STK_OBJ_RESIDENT;
	o->stamp = ++c->stamp;
	o->rprev = NULL;
	o->rnext = c->res_head;
	if (c->res_head)
		c->res_head->rprev = o;
	c->res_head = o;
	c->resident++;
	return 0;
}

void stk__cache_drop(struct stk_cache *c, struct stk_object *o)
{
	if (o->state == STK_OBJ_RESIDENT) {
		if (o->rprev)
			o->rprev->rnext = o->rnext;
		else
			c->res_head = o->rnext;
		if (o->rnext)
			o->rnext->rprev = o->rprev;
		o->rprev = o->rnext = NULL;
		c->resident--;
	}
	if (o->state == STK_OBJ_RESIDENT || o->state == STK_OBJ_FETCHING) {
		c->tier->drop(&o->t);
		c->used -= stk__cache_charge(o);
	}
	o->state = STK_OBJ_ABSENT;
}

struct stk_object *stk__cache_victim(const struct stk_cache *c,
				     uint64_t (*next_use)(void *arg, const struct stk_object *o),
				     void *arg, uint64_t *dist)
{
	struct stk_object *best = NULL;
	uint64_t best_d = 0;
	for (struct stk_object *o = c->res_head; o; o = o->rnext) {
		if (o->pins)
			continue;
		uint64_t d = next_use(arg, o);
		if (!best || d > best_d || (d == best_d && o->stamp > best->stamp)) {
			best = o;
			best_d = d;
		}
	}
	*dist = best_d;
	return best;
}

/* SPDX-License-Identifier: MIT */
#include "cache/cache.h"

#include <errno.h>
#include <stdio.h>
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
	/* An upper bound of its next use is all the heap needs; the first pick corrects it. */
	o->stamp = ++c->stamp;
	if (!o->pins && stk__victims_add(&c->victims, o, UINT64_MAX)) {
		snprintf(err, errlen, "%s: out of memory", o->uri);
		return -ENOMEM; /* still FETCHING: the caller drops it */
	}
	o->state = STK_OBJ_RESIDENT;
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
		stk__victims_del(&c->victims, o);
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

struct stk_object *stk__cache_victim(struct stk_cache *c,
				     uint64_t (*next_use)(void *arg, const struct stk_object *o),
				     void *arg, uint64_t *dist)
{
	return stk__victims_pick(&c->victims, next_use, arg, dist);
}

void stk__cache_rekey(struct stk_cache *c, struct stk_object *o)
{
	stk__victims_rekey(&c->victims, o, UINT64_MAX);
}

bool stk__cache_pin(struct stk_cache *c, struct stk_object *o)
{
	if (o->pins++)
		return false;
	stk__victims_del(&c->victims, o);
	return true;
}

bool stk__cache_unpin(struct stk_cache *c, struct stk_object *o)
{
	if (!o->pins || --o->pins)
		return false;
	/* On failure (no memory to grow the heap) it stays, never a victim, until dropped. */
	if (o->state == STK_OBJ_RESIDENT)
		stk__victims_add(&c->victims, o, UINT64_MAX);
	return true;
}

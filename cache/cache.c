/* SPDX-License-Identifier: MIT */
#include "cache/cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int stk__cache_init(struct stk_cache *c, const struct stk_tier_ops *ops, uint64_t budget,
		    unsigned flags, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->t0.ops = ops;
	c->t0.budget = budget;
	c->t0.flags = flags;
	c->tier = &c->t0;
	return ops->init(c->tier, err, errlen);
}

void stk__cache_fini(struct stk_cache *c)
{
	stk__victims_fini(&c->victims);
	if (c->tier)
		c->tier->ops->fini(c->tier);
	c->tier = NULL;
}

int stk__cache_alloc(struct stk_cache *c, struct stk_object *o, char *err, size_t errlen)
{
	struct stk_tier_obj t;
	int r = c->tier->ops->alloc(c->tier, &t, o->size, o->domain);
	if (!r && !(o->room = calloc(1, sizeof(*o->room)))) {
		c->tier->ops->drop(c->tier, &t);
		r = -ENOMEM;
	}
	if (r == -EFBIG)
		snprintf(err, errlen, "%s: %llu bytes is larger than the whole RAM budget (%llu)",
			 o->uri, (unsigned long long)o->size, (unsigned long long)c->tier->budget);
	else if (r && r != -ENOSPC && r != -EAGAIN)
		snprintf(err, errlen, "cannot allocate %llu bytes of RAM for %s: %s",
			 (unsigned long long)o->size, o->uri, strerror(-r));
	if (!r) {
		o->room->t = t;
		o->state = STK_OBJ_FETCHING;
	}
	return r;
}

int stk__cache_seal(struct stk_cache *c, struct stk_object *o, char *err, size_t errlen)
{
	/* An upper bound of its next use is all the heap needs; the first pick corrects it. */
	o->room->stamp = ++c->stamp;
	if (!o->pins && stk__victims_add(&c->victims, o, UINT64_MAX)) {
		snprintf(err, errlen, "%s: out of memory", o->uri);
		return -ENOMEM; /* still FETCHING: the caller drops it */
	}
	o->state = STK_OBJ_RESIDENT;
	o->room->rprev = NULL;
	o->room->rnext = c->res_head;
	if (c->res_head)
		c->res_head->room->rprev = o;
	c->res_head = o;
	c->resident++;
	return 0;
}

void stk__cache_drop(struct stk_cache *c, struct stk_object *o)
{
	if (o->state == STK_OBJ_RESIDENT) {
		stk__victims_del(&c->victims, o);
		struct stk_obj_room *r = o->room;
		if (r->rprev)
			r->rprev->room->rnext = r->rnext;
		else
			c->res_head = r->rnext;
		if (r->rnext)
			r->rnext->room->rprev = r->rprev;
		c->resident--;
	}
	if (o->state == STK_OBJ_RESIDENT || o->state == STK_OBJ_FETCHING) {
		c->tier->ops->drop(c->tier, &o->room->t);
		free(o->room);
		o->room = NULL;
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

/* SPDX-License-Identifier: MIT */
/*
 * The scheduler against a recording transport: fetches complete only when a
 * test says so, so every decision can be checked in order.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "prefetch/daemon.h"
#include "stoker.h"
#include "transports/transport.h"

#define MAXF 64
static struct stk_fetch *pending[MAXF];
static int npending;

static int rec_submit(struct stk_fetch *f)
{
	cr_assert_lt(npending, MAXF);
	pending[npending++] = f;
	return STK_Q_QUEUED;
}

static const struct stk_transport_ops rec = { .name = "rec", .submit = rec_submit };

static struct stk_daemon d;
static struct stk_ds ds;
static struct stk_object *objs; /* ds's objects, each listed once at its index */
static int delivered[1024], ndelivered, failures;

static void on_ready(struct stk_daemon *dd, struct stk_waiter *w, struct stk_object *o, bool hit,
		     int err, const char *msg)
{
	if (err)
		failures++;
	else
		delivered[ndelivered++] = (int)(o - objs);
	free(w);
}

static void setup_n(uint32_t n, uint64_t size, uint64_t budget, unsigned inflight)
{
	memset(&d, 0, sizeof(d));
	memset(&ds, 0, sizeof(ds));
	npending = ndelivered = failures = 0;
	char err[256];
	cr_assert_eq(stk__cache_init(&d.cache, &stk_tier_ram, budget, 0, err, sizeof(err)), 0, "%s",
		     err);
	d.cfg.max_inflight = inflight;
	d.cfg.no_follow = true; /* demand alone; follow.c's prefetch: tests/e2e/test_e2e_follow.c */
	d.on_ready = on_ready;
	ds.count = n;
	ds.uri = "rec://ds/";
	objs = calloc(n, sizeof(*objs));
	ds.ents = calloc(n, sizeof(*ds.ents));
	for (uint32_t i = 0; i < n; i++) {
		ds.ents[i].o = &objs[i];
		cr_assert_eq(stk__obj_ref(&objs[i], &ds, i), 0);
		objs[i].size = size;
		objs[i].uri = "rec://ds/obj";
		objs[i].tp = &rec;
	}
}

static void teardown(void)
{
	while (ds.plans)
		stk__plan_free(&d, ds.plans);
	for (uint32_t i = 0; i < ds.count; i++) {
		struct stk_object *o = &objs[i];
		while (o->waiters) {
			struct stk_waiter *w = o->waiters;
			o->waiters = w->next;
			free(w);
		}
		stk__obj_refs_free(o);
		stk__cache_drop(&d.cache, o);
	}
	free(objs);
	free(ds.ents);
	stk__sched_fini(&d);
	stk__cache_fini(&d.cache);
}

/* The object a pending fetch is for. */
static int obj_of(struct stk_fetch *f)
{
	for (uint32_t i = 0; i < ds.count; i++)
		if (objs[i].state == STK_OBJ_FETCHING && objs[i].room->t.map == f->buf)
			return (int)i;
	return -1;
}

/* Completes the k-th pending fetch successfully. */
static int complete(int k)
{
	struct stk_fetch *f = pending[k];
	int o = obj_of(f);
	memmove(pending + k, pending + k + 1, (size_t)(npending - k - 1) * sizeof(*pending));
	npending--;
	f->done(f, 0, NULL);
	return o;
}

static struct stk_plan *plan(const uint32_t *order, uint32_t n)
{
	struct stk_plan *p = stk__plan_new(&d, &ds, NULL, false);
	cr_assert_not_null(p);
	cr_assert_eq(stk__plan_append(p, NULL, order, n), 0);
	return p;
}

static void get(struct stk_plan *p, uint32_t i)
{
	struct stk_waiter *w = calloc(1, sizeof(*w));
	stk__get(&d, p, &ds, i, w);
}

TestSuite(sched, .fini = teardown, .timeout = 10);

Test(sched, prefetches_in_plan_order_within_the_inflight_limit)
{
	setup_n(8, 4096, 1 << 20, 2);
	uint32_t order[] = { 5, 2, 7, 0 };
	plan(order, 4);
	stk__sched_run(&d);
	cr_assert_eq(npending, 2);
	cr_assert_eq(obj_of(pending[0]), 5);
	cr_assert_eq(obj_of(pending[1]), 2);
	cr_assert_eq(complete(0), 5);
	cr_assert_eq(npending, 2);
	cr_assert_eq(obj_of(pending[1]), 7, "the next in the plan starts as one finishes");
	cr_assert_eq(objs[5].state, STK_OBJ_RESIDENT);
}

Test(sched, demand_miss_jumps_the_queue)
{
	setup_n(8, 4096, 1 << 20, 2);
	uint32_t order[] = { 0, 1, 2, 3 };
	struct stk_plan *p = plan(order, 4);
	stk__sched_run(&d);
	cr_assert_eq(npending, 2);
	get(p, 6); /* not in the plan, inflight limit reached: starts anyway */
	cr_assert_eq(npending, 3);
	cr_assert_eq(obj_of(pending[2]), 6);
	complete(2);
	cr_assert_eq(ndelivered, 1);
	cr_assert_eq(delivered[0], 6);
}

Test(sched, nothing_is_fetched_twice)
{
	setup_n(4, 4096, 1 << 20, 4);
	uint32_t order[] = { 1, 1, 1, 1 };
	struct stk_plan *p = plan(order, 4);
	stk__sched_run(&d);
	cr_assert_eq(npending, 1);
	get(p, 1);
	get(p, 1);
	cr_assert_eq(npending, 1, "gets of an object in flight wait for that fetch");
	complete(0);
	cr_assert_eq(ndelivered, 2);
	get(p, 1);
	cr_assert_eq(ndelivered, 3, "a resident object is delivered at once");
	cr_assert_eq(npending, 0);
	cr_assert_eq(d.st[STK_ST_HITS_RAM], 1);
	cr_assert_eq(d.st[STK_ST_MISSES], 2);
}

Test(sched, belady_evicts_the_farthest_and_never_the_sooner_needed)
{
	/* Room for 2 objects. Plan: 0 1 2 1 0. */
	setup_n(3, 4096, 2 * 4096, 4);
	uint32_t order[] = { 0, 1, 2, 1, 0 };
	struct stk_plan *p = plan(order, 5);
	stk__sched_run(&d);
	cr_assert_eq(npending, 2);
	complete(0);
	complete(0);
	cr_assert_eq(npending, 0, "2 is needed after 0 and 1: nothing is evicted for it yet");
	get(p, 0);
	cr_assert_eq(ndelivered, 1);
	/* Cursor at 1: 2 is needed next but one; 1 is needed next, 0 last: 0 goes. */
	cr_assert_eq(npending, 1);
	cr_assert_eq(obj_of(pending[0]), 2);
	cr_assert_eq(objs[0].state, STK_OBJ_ABSENT);
	cr_assert_eq(objs[1].state, STK_OBJ_RESIDENT);
	cr_assert_eq(d.st[STK_ST_EVICTIONS], 1);
}

Test(sched, budget_is_never_exceeded)
{
	setup_n(64, 3 * 4096 + 5, 10 * 4096, 8);
	uint32_t order[256];
	srand(7);
	for (int i = 0; i < 256; i++)
		order[i] = (uint32_t)(rand() % 64);
	struct stk_plan *p = plan(order, 256);
	stk__sched_run(&d);
	for (int i = 0; i < 256; i++) {
		get(p, order[i]);
		cr_assert_leq(d.cache.tier->used, d.cache.tier->budget);
		while (ndelivered <= i) {
			cr_assert_gt(npending, 0, "get %d waits on nothing", i);
			complete(rand() % npending);
			cr_assert_leq(d.cache.tier->used, d.cache.tier->budget);
		}
		/* Release the pin the way a client would. */
		stk__unpin(&d, &objs[order[i]]);
	}
	cr_assert_gt(d.st[STK_ST_EVICTIONS], 0);
}

Test(sched, pinned_objects_block_demand_until_released)
{
	setup_n(3, 4096, 2 * 4096, 4);
	get(NULL, 0);
	complete(0);
	get(NULL, 1);
	complete(0);
	stk__pin(&d, &objs[0]);
	stk__pin(&d, &objs[1]);
	get(NULL, 2);
	cr_assert_eq(npending, 0, "no room while both are held");
	stk__unpin(&d, &objs[1]);
	cr_assert_eq(npending, 1, "released: the waiting get proceeds");
	cr_assert_eq(objs[1].state, STK_OBJ_ABSENT);
	complete(0);
	cr_assert_eq(ndelivered, 3);
	stk__unpin(&d, &objs[0]);
}

Test(sched, oversized_object_fails_with_efbig)
{
	setup_n(2, 1 << 20, 4096 * 4, 4);
	get(NULL, 0);
	cr_assert_eq(failures, 1);
	cr_assert_eq(npending, 0);
}

Test(sched, warm_stops_when_full_without_evicting)
{
	setup_n(6, 4096, 4 * 4096, 2);
	cr_assert_eq(stk__warm(&d, &ds), 0);
	cr_assert_eq(ds.warm, STK_WARM_RUNNING);
	cr_assert_eq(npending, 2);
	complete(0);
	complete(0);
	cr_assert_eq(npending, 2);
	complete(0);
	cr_assert_eq(ds.warm, STK_WARM_RUNNING, "full, but a fetch it started is still in flight");
	complete(0);
	cr_assert_eq(ds.resident, 4);
	cr_assert_eq(ds.warm, STK_WARM_FULL);
	cr_assert_eq(d.st[STK_ST_EVICTIONS], 0);
}

Test(sched, warm_done_when_all_fit)
{
	setup_n(5, 4096, 1 << 20, 2);
	cr_assert_eq(stk__warm(&d, &ds), 0);
	while (npending)
		complete(0);
	cr_assert_eq(ds.warm, STK_WARM_DONE);
	cr_assert_eq(ds.resident, 5);
}

Test(sched, failed_fetch_is_reported_and_retried_by_a_get)
{
	setup_n(2, 4096, 1 << 20, 2);
	get(NULL, 0);
	struct stk_fetch *f = pending[0];
	npending = 0;
	f->done(f, -EIO, "rec://ds/obj: boom");
	cr_assert_eq(failures, 1);
	cr_assert_eq(objs[0].state, STK_OBJ_FAILED);
	cr_assert_eq(d.cache.tier->used, 0, "a failed fetch gives its memory back");
	get(NULL, 0);
	cr_assert_eq(npending, 1, "a later get tries again");
}

Test(sched, plan_cursor_tracks_next_use)
{
	setup_n(4, 4096, 1 << 20, 0);
	uint32_t order[] = { 0, 1, 2, 1, 3 };
	struct stk_plan *p = plan(order, 5);
	cr_assert_eq(stk__next_use(&d, &objs[1]), 1);
	stk__plan_advance(&d, p, 1);
	cr_assert_eq(p->cursor, 2);
	cr_assert_eq(stk__next_use(&d, &objs[1]), 1, "1 is next at position 3");
	cr_assert_eq(stk__next_use(&d, &objs[0]), UINT64_MAX, "0 was passed");
	stk__plan_advance(&d, p, 3);
	cr_assert_eq(stk__next_use(&d, &objs[1]), UINT64_MAX);
}

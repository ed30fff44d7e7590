/* SPDX-License-Identifier: MIT */
/*
 * Following plan-less gets per plan group, and shared plans
 * (prefetch/follow.c), driven directly: which plan each group's stream has,
 * where its cursor is, when an epoch ends.  The prefetching these plans
 * cause is measured end to end in tests/e2e/test_e2e_plan_group.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "prefetch/daemon.h"
#include "stoker.h"
#include "transports/transport.h"

#define G 0x1234u /* a plan group */
#define H 0x5678u /* another */

static int no_submit(struct stk_fetch *f)
{
	(void)f;
	return -EIO; /* never asked: nothing here runs the scheduler */
}

static const struct stk_transport_ops rec = { .name = "rec", .submit = no_submit };

static struct stk_daemon d;
static struct stk_ds ds;
static struct stk_object *objs;
static char err[512];

static void setup_n(uint32_t n)
{
	memset(&d, 0, sizeof(d));
	memset(&ds, 0, sizeof(ds));
	cr_assert_eq(stk__cache_init(&d.cache, &stk_tier_ram, 1 << 20, 0, err, sizeof(err)), 0,
		     "%s", err);
	d.cfg.max_inflight = 2; /* window(): 256 positions; a shared plan's: 16,384 */
	d.cfg.client_max_plan = 1u << 24;
	ds.count = n;
	ds.uri = "rec://ds/";
	objs = calloc(n, sizeof(*objs));
	ds.ents = calloc(n, sizeof(*ds.ents));
	for (uint32_t i = 0; i < n; i++) {
		ds.ents[i].o = &objs[i];
		cr_assert_eq(stk__obj_ref(&objs[i], &ds, i), 0);
		objs[i].size = 4096;
		objs[i].uri = "rec://ds/obj";
		objs[i].tp = &rec;
	}
}

static void setup(void)
{
	setup_n(16);
}

static void teardown(void)
{
	stk__follow_free(&d, &ds);
	cr_assert_null(ds.plans, "every plan of the streams is freed with them");
	for (uint32_t i = 0; i < ds.count; i++) {
		stk__obj_refs_free(&objs[i]);
		stk__cache_drop(&d.cache, &objs[i]);
	}
	free(objs);
	free(ds.ents);
	stk__sched_fini(&d);
	stk__cache_fini(&d.cache);
}

/* A shared plan of order[0..n), in one chunk (reset) or continuing one. */
static int share(uint64_t group, bool reset, const uint32_t *order, uint32_t n)
{
	uint8_t *le = malloc(4 * (size_t)n + 1);
	for (uint32_t i = 0; i < n; i++)
		for (int b = 0; b < 4; b++)
			le[4 * i + b] = (uint8_t)(order[i] >> (8 * b));
	int r = stk__follow_plan(&d, &ds, group, reset, le, n, err, sizeof(err));
	free(le);
	return r;
}

static const struct stk_plan *plan_of(uint64_t group, bool *shared)
{
	const struct stk_plan *p = stk__follow_plan_of(&ds, group, shared);
	cr_assert_not_null(p, "group %llx has a stream", (unsigned long long)group);
	return p;
}

static void stream_gets(uint64_t group, const uint32_t *idx, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		stk__follow(&d, &ds, group, idx[i]);
}

TestSuite(follow, .init = setup, .fini = teardown, .timeout = 10);

Test(follow, each_group_is_a_stream_of_its_own)
{
	static const uint32_t listing[] = { 0, 1, 2, 3 }, other[] = { 9, 4, 12 };
	stream_gets(0, listing, 4);
	stream_gets(G, other, 3);
	const struct stk_plan *p0 = plan_of(0, NULL), *pg = plan_of(G, NULL);
	cr_assert_neq(p0, pg);
	cr_assert_eq(p0->cursor, 4, "group 0 followed its listing order");
	cr_assert_eq(pg->cursor, 0, "G's gets are off its listing order");
	cr_assert_null(stk__follow_plan_of(&ds, H, NULL), "H has no gets: no stream");
	/* A second epoch of G: its first epoch's order is its plan; group 0's is not. */
	stk__follow(&d, &ds, G, 9);
	pg = plan_of(G, NULL);
	cr_assert_eq(pg->n, 3);
	cr_assert_eq(pg->order[0], 9);
	cr_assert_eq(pg->order[2], 12);
	cr_assert_eq(pg->cursor, 1);
	cr_assert_eq(plan_of(0, NULL)->n, 16);
}

Test(follow, a_shared_plan_replaces_the_groups_and_moves_with_interleaved_gets)
{
	static const uint32_t order[] = { 7, 3, 11, 0, 5, 2 };
	stream_gets(G, (const uint32_t[]){ 0, 1 }, 2);
	cr_assert_eq(share(G, true, order, 4), 0, "%s", err);
	cr_assert_eq(share(G, false, order + 4, 2), 0, "%s", err);
	bool shared;
	const struct stk_plan *p = plan_of(G, &shared);
	cr_assert(shared);
	cr_assert_eq(p->n, 6);
	cr_assert_eq(p->cursor, 0);
	cr_assert_eq(p->order[4], 5);
	/* Two readers, the second a step ahead: the cursor passes only what both got. */
	stk__follow(&d, &ds, G, 3);
	cr_assert_eq(p->cursor, 0);
	stk__follow(&d, &ds, G, 7);
	cr_assert_eq(p->cursor, 2);
	/* 0 and 1 were got before the plan came: 0 again is no new epoch. */
	stk__follow(&d, &ds, G, 0);
	stk__follow(&d, &ds, G, 11);
	cr_assert_eq(plan_of(G, &shared), p, "the shared plan stays");
	cr_assert(shared);
	cr_assert_eq(p->cursor, 4);
	/* Group 0's stream has none of it. */
	cr_assert_null(stk__follow_plan_of(&ds, 0, NULL));
}

Test(follow, a_shared_plan_ends_only_past_its_end)
{
	/* An order with repeats, as a sampler with replacement draws. */
	static const uint32_t order[] = { 4, 1, 4, 6, 1, 9 };
	cr_assert_eq(share(G, true, order, 6), 0, "%s", err);
	stream_gets(G, order, 5);
	bool shared;
	const struct stk_plan *p = plan_of(G, &shared);
	cr_assert(shared, "repeats the order has end no epoch");
	cr_assert_eq(p->cursor, 5);
	stk__follow(&d, &ds, G, 9);
	cr_assert_eq(p->cursor, 6);
	/* Past its end, an object got again starts an epoch, predicted by the gets' order. */
	stk__follow(&d, &ds, G, 6);
	p = plan_of(G, &shared);
	cr_assert_not(shared);
	cr_assert_eq(p->cursor, 0);
	cr_assert_geq(p->n, 2);
	cr_assert_eq(p->order[p->n - 1], 9, "the order the gets came in, ending with 9");
	/* A new shared plan takes over again, cursor at the start. */
	cr_assert_eq(share(G, true, order + 2, 3), 0, "%s", err);
	p = plan_of(G, &shared);
	cr_assert(shared);
	cr_assert_eq(p->n, 3);
	cr_assert_eq(p->cursor, 0);
}

Test(follow, a_shared_plan_the_gets_do_not_keep_to_ends_after_an_epoch)
{
	static const uint32_t reversed[] = { 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 };
	cr_assert_eq(share(G, true, reversed, 16), 0, "%s", err);
	stream_gets(G, (const uint32_t[]){ 1, 2, 1 }, 3);
	bool shared;
	plan_of(G, &shared);
	cr_assert(shared, "1 got again is still ahead in the plan: a repeat it has");
	/* A plan none of whose objects are got, and an object got again. */
	cr_assert_eq(share(G, true, (const uint32_t[]){ 5, 6, 7, 8 }, 4), 0, "%s", err);
	stream_gets(G, (const uint32_t[]){ 1, 2, 1 }, 3);
	const struct stk_plan *p = plan_of(G, &shared);
	cr_assert_not(shared, "a plan the gets do not keep to is given up");
	cr_assert_eq(p->n, 2);
	cr_assert_eq(p->order[0], 1, "the last epoch's gets, 1 then 2, are the plan");
	cr_assert_eq(p->order[1], 2);
	cr_assert_eq(p->cursor, 1);
}

Test(follow, positions_nobody_got_are_given_up_behind_half_a_window)
{
	const uint32_t n = 30000;
	teardown();
	setup_n(n);
	uint32_t *order = malloc(n * sizeof(*order));
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	cr_assert_eq(share(G, true, order, n), 0, "%s", err);
	const struct stk_plan *p = plan_of(G, NULL);
	/* Position 0 was got before the plan came: the rest come in order. */
	stream_gets(G, order + 1, 8192);
	cr_assert_eq(p->cursor, 0, "8,192 done past it: the readers may still be spread");
	stk__follow(&d, &ds, G, 8193);
	cr_assert_eq(p->cursor, 8194, "past half a window, position 0 is given up");
	/* A get more than the window ahead marks nothing. */
	stk__follow(&d, &ds, G, n - 1);
	stream_gets(G, order + 8194, n - 1 - 8194);
	cr_assert_eq(p->cursor, n - 1);
	free(order);
}

Test(follow, bad_shared_plans_are_refused_and_forget_the_stream)
{
	static const uint32_t order[] = { 1, 2, 3 };
	cr_assert_eq(share(G, false, order, 3), -EINVAL);
	cr_assert(strstr(err, "continues no shared plan"), "%s", err);
	cr_assert_null(stk__follow_plan_of(&ds, G, NULL));
	cr_assert_eq(share(G, true, order, 3), 0, "%s", err);
	cr_assert_eq(share(G, false, (const uint32_t[]){ 4, 16 }, 2), -ERANGE);
	cr_assert(strstr(err, "out of range"), "%s", err);
	cr_assert_null(stk__follow_plan_of(&ds, G, NULL), "a bad chunk drops the plan");
	d.cfg.client_max_plan = 4;
	cr_assert_eq(share(G, true, order, 3), 0, "%s", err);
	cr_assert_eq(share(G, false, order, 2), -E2BIG);
	cr_assert(strstr(err, "--client-max-plan"), "%s", err);
	d.cfg.no_follow = true;
	cr_assert_eq(share(H, true, order, 3), -ENOTSUP);
	cr_assert(strstr(err, "--no-follow"), "%s", err);
	cr_assert_null(stk__follow_plan_of(&ds, H, NULL));
}

Test(follow, a_groups_stream_goes_when_no_client_of_the_group_has_the_dataset)
{
	struct stk_handle hd = { .ds = &ds };
	struct stk_session s = { .group = G, .handles = &hd, .nhandles = 1 };
	d.sessions = &s;
	stream_gets(0, (const uint32_t[]){ 0 }, 1);
	stream_gets(G, (const uint32_t[]){ 0 }, 1);
	stream_gets(H, (const uint32_t[]){ 0 }, 1);
	stk__follow_unuse(&d, &ds, G); /* s of G still has it open */
	cr_assert_not_null(stk__follow_plan_of(&ds, G, NULL));
	stk__follow_unuse(&d, &ds, H);
	cr_assert_null(stk__follow_plan_of(&ds, H, NULL), "no client of H has it open");
	s.dead = true;
	stk__follow_unuse(&d, &ds, G);
	cr_assert_null(stk__follow_plan_of(&ds, G, NULL), "G's last client is gone");
	cr_assert_not_null(stk__follow_plan_of(&ds, 0, NULL), "the others' streams stay");
	d.sessions = NULL;
}

/* SPDX-License-Identifier: MIT */
/*
 * Prefetch for clients that send no plan (prefetch/follow.c): a dataset
 * larger than the RAM budget, behind an emulated slow backend, read by a
 * client that never calls stk_plan.  A stream in listing order, and a second
 * epoch in the first one's order, are prefetched ahead of the reader: their
 * gets become hits, where without following the stream only the objects
 * kept from the start would be.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

#define N	 48
#define SIZE	 (256 * E2E_KIB)
#define THINK_MS 30   /* the reader's compute per object */
#define LATENCY	 "40" /* ms the backend adds per object */

static void make_ds(struct e2e_dataset *ds)
{
	uint64_t sizes[N];
	for (size_t i = 0; i < N; i++)
		sizes[i] = SIZE - 64 * i;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/ds", e2e_d.root);
	e2e_dataset_make(ds, dir, sizes, N, 0, 7);
}

static void think(void)
{
	struct timespec ts = { 0, THINK_MS * 1000000L };
	nanosleep(&ts, NULL);
}

/* Gets order[0..N) one at a time with a pause; returns the hits among order[from..). */
static unsigned epoch(struct stk_dataset *sds, const struct e2e_dataset *ds, const uint32_t *order,
		      size_t from)
{
	unsigned hits = 0;
	for (size_t k = 0; k < N; k++) {
		uint32_t flags = 0;
		cr_assert_eq(e2x_get_check(sds, order[k], &ds->o[order[k]], &flags, NULL), 0,
			     "get %u failed or returned wrong bytes", order[k]);
		if (k >= from && (flags & STK_VIEW_HIT))
			hits++;
		think();
	}
	return hits;
}

static struct stk_dataset *start(struct e2e_dataset *ds, struct stk_client **c)
{
	make_ds(ds);
	/* 4 MiB: 16 of the 48 objects. */
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--ram", "4M", "--emulate-latency", LATENCY, NULL });
	*c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	int r = stk_dataset_open(*c, ds->uri, 0, &sds);
	cr_assert_eq(r, 0, "open %s: %s: %s", ds->uri, stk_strerror(r), stk_errmsg());
	return sds;
}

static void finish(struct e2e_dataset *ds, struct stk_client *c, struct stk_dataset *sds)
{
	struct stk_stats st = e2e_stats(c);
	cr_expect_leq(st.ram_used, st.ram_budget);
	cr_expect_eq(st.fetch_errors, 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(ds);
}

Test(e2e_follow, listing_order_stream_is_prefetched, .init = e2e_init, .fini = e2e_fini,
     .timeout = 120)
{
	struct e2e_dataset ds;
	struct stk_client *c;
	struct stk_dataset *sds = start(&ds, &c);
	uint32_t order[N];
	for (uint32_t i = 0; i < N; i++)
		order[i] = i;
	/* Past the first few, a reader 30 ms a object behind a 40 ms backend finds them in. */
	unsigned hits = epoch(sds, &ds, order, 8);
	cr_expect_geq(hits, 30, "%u of the last %d gets in listing order were hits", hits, N - 8);
	cr_log_info("listing order: %u of the last %d gets were hits", hits, N - 8);
	finish(&ds, c, sds);
}

Test(e2e_follow, second_epoch_follows_the_first_ones_order, .init = e2e_init, .fini = e2e_fini,
     .timeout = 120)
{
	struct e2e_dataset ds;
	struct stk_client *c;
	struct stk_dataset *sds = start(&ds, &c);
	uint32_t order[N];
	for (uint32_t i = 0; i < N; i++)
		order[i] = i;
	struct e2e_rng r = { 11 };
	e2e_shuffle(order, N, &r);
	/* Epoch 1, shuffled: nothing predicts it (the listing-order plan keeps its start). */
	unsigned first = epoch(sds, &ds, order, 0);
	/* Epoch 2 in the same order: its first get ends epoch 1, whose order is the plan now. */
	unsigned second = epoch(sds, &ds, order, 8);
	cr_expect_geq(second, 30, "%u of the last %d gets of epoch 2 were hits (epoch 1: %u)",
		      second, N - 8, first);
	cr_log_info("epoch 2: %u of the last %d gets were hits (epoch 1: %u)", second, N - 8,
		    first);
	/* A third epoch in a fresh order still reads every byte right. */
	e2e_shuffle(order, N, &r);
	epoch(sds, &ds, order, 0);
	finish(&ds, c, sds);
}

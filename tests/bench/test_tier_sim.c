/* SPDX-License-Identifier: MIT */
/*
 * bench/tier_sim.c, the offline policies tier_replay compares stokerd with:
 * hit counts on traces whose answers are known (cyclic scans), and Belady's
 * bounds over LRU and keep-once-full on shuffled epochs of equal sizes,
 * where farthest-next-use is optimal.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "../../bench/tier_sim.h"

#define PG 4096u

struct trace {
	uint32_t *obj;
	uint64_t *size;
	struct tsim_trace t;
};

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* epochs of nobj objects of one page each, cyclic or each a new shuffle. */
static void make(struct trace *tr, uint32_t nobj, uint32_t epochs, bool shuffle, uint64_t seed)
{
	tr->obj = malloc((size_t)nobj * epochs * sizeof(*tr->obj));
	tr->size = malloc(nobj * sizeof(*tr->size));
	cr_assert(tr->obj && tr->size);
	for (uint32_t o = 0; o < nobj; o++)
		tr->size[o] = PG;
	for (uint32_t e = 0; e < epochs; e++) {
		uint32_t *ord = tr->obj + (size_t)e * nobj;

		for (uint32_t i = 0; i < nobj; i++)
			ord[i] = i;
		for (uint32_t i = nobj; shuffle && i > 1; i--) {
			uint32_t j = (uint32_t)(rng(&seed) % i), x = ord[i - 1];

			ord[i - 1] = ord[j];
			ord[j] = x;
		}
	}
	tr->t = (struct tsim_trace){ .obj = tr->obj,
				     .n = (size_t)nobj * epochs,
				     .size = tr->size,
				     .nobj = nobj,
				     .epoch_len = nobj,
				     .epochs = epochs };
}

static void drop(struct trace *tr)
{
	free(tr->obj);
	free(tr->size);
}

static uint64_t hits(const struct tsim_epoch *e, uint32_t from, uint32_t to)
{
	uint64_t h = 0;

	for (uint32_t i = from; i < to; i++)
		h += e[i].hits_ram + e[i].hits_nvme;
	return h;
}

Test(tier_sim, cyclic_scan_known_answers)
{
	struct tsim_epoch e[TSIM_NPOLICIES][3];
	struct trace tr;

	/* 10 pages read in order 3 times; RAM 2 pages, NVMe 2 pages. */
	make(&tr, 10, 3, false, 0);
	for (int p = 0; p < TSIM_NPOLICIES; p++)
		cr_assert_eq(tsim_run(p, &tr.t, 2 * PG, 2 * PG, e[p]), 0);
	for (int p = 0; p < TSIM_NPOLICIES; p++)
		cr_assert_eq(hits(e[p], 0, 1), 0, "%s hit in epoch 1", tsim_name(p));
	/* A scan longer than the cache defeats LRU, one cache or two. */
	cr_assert_eq(hits(e[TSIM_LRU], 1, 3), 0);
	cr_assert_eq(hits(e[TSIM_STREAMING], 1, 3), 0);
	/* Keep-once-full keeps 0-1 in RAM and 2-3 on NVMe for good. */
	for (int i = 1; i < 3; i++) {
		cr_assert_eq(e[TSIM_KEEP][i].hits_ram, 2);
		cr_assert_eq(e[TSIM_KEEP][i].hits_nvme, 2);
		cr_assert_eq(e[TSIM_KEEP][i].misses, 6);
		cr_assert_eq(e[TSIM_KEEP][i].miss_bytes, 6 * PG);
	}
	/* Belady keeps 4 of the pages too (after the last epoch there is no use). */
	cr_assert_eq(hits(e[TSIM_BELADY], 1, 3), 8, "belady %lu",
		     (unsigned long)hits(e[TSIM_BELADY], 1, 3));
	cr_assert_gt(e[TSIM_BELADY][1].hits_nvme, 0, "RAM victims are demoted, not dropped");
	drop(&tr);
}

Test(tier_sim, lru_demotes_and_streaming_is_one_cache)
{
	static const uint32_t seq[] = { 0, 1, 2, 0, 1, 2 };
	uint64_t size[3] = { PG, PG, PG };
	struct tsim_trace t = {
		.obj = seq, .n = 6, .size = size, .nobj = 3, .epoch_len = 3, .epochs = 2
	};
	struct tsim_epoch e[2];

	/* RAM 1 page, NVMe 2: every second-epoch get of a 3-object loop hits NVMe under LRU. */
	cr_assert_eq(tsim_run(TSIM_LRU, &t, PG, 2 * PG, e), 0);
	cr_assert_eq(e[1].hits_nvme, 3);
	cr_assert_eq(e[1].hits_ram, 0);
	cr_assert_eq(tsim_run(TSIM_STREAMING, &t, PG, 2 * PG, e), 0);
	cr_assert_eq(e[1].hits_nvme, 3,
		     "one LRU of 3 pages holds the loop; its hits count as disk");
	/* RAM only, 2 pages, a 3-object loop: LRU never hits. */
	cr_assert_eq(tsim_run(TSIM_LRU, &t, 2 * PG, 0, e), 0);
	cr_assert_eq(e[1].hits_ram + e[1].hits_nvme, 0);
	/* Sizes are charged rounded up to a page: 3 objects of 1 byte do not fit 2 pages. */
	size[0] = size[1] = size[2] = 1;
	cr_assert_eq(tsim_run(TSIM_LRU, &t, 2 * PG, 0, e), 0);
	cr_assert_eq(e[1].hits_ram, 0);
	/* An object larger than RAM is never cached, even with room on NVMe. */
	size[0] = 3 * PG;
	cr_assert_eq(tsim_run(TSIM_KEEP, &t, 2 * PG, 8 * PG, e), 0);
	cr_assert_eq(e[1].hits_ram + e[1].hits_nvme, 2);
	cr_assert_eq(e[1].misses, 1);
}

Test(tier_sim, belady_bounds_the_others_on_shuffled_epochs)
{
	struct tsim_epoch e[TSIM_NPOLICIES][4], one[4];

	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct trace tr;

		make(&tr, 300, 4, true, seed);
		for (int p = 0; p < TSIM_NPOLICIES; p++)
			cr_assert_eq(tsim_run(p, &tr.t, 40 * PG, 80 * PG, e[p]), 0);
		for (int p = 0; p < TSIM_NPOLICIES; p++)
			cr_assert_geq(hits(e[TSIM_BELADY], 0, 4), hits(e[p], 0, 4),
				      "seed %lu: %s beats belady", (unsigned long)seed,
				      tsim_name(p));
		/* Two tiers by farthest next use hit what one cache of both budgets does. */
		cr_assert_eq(tsim_run(TSIM_BELADY, &tr.t, 120 * PG, 0, one), 0);
		cr_assert_eq(hits(one, 0, 4), hits(e[TSIM_BELADY], 0, 4));
		/* And each epoch's counts add up to its gets. */
		for (int i = 0; i < 4; i++)
			cr_assert_eq(e[TSIM_BELADY][i].hits_ram + e[TSIM_BELADY][i].hits_nvme +
					 e[TSIM_BELADY][i].misses,
				     300);
		drop(&tr);
	}
}

Test(tier_sim, rejects_bad_traces)
{
	static const uint32_t seq[] = { 0, 5 };
	uint64_t size[2] = { PG, PG };
	struct tsim_trace t = {
		.obj = seq, .n = 2, .size = size, .nobj = 2, .epoch_len = 2, .epochs = 1
	};
	struct tsim_epoch e[1];

	cr_assert_eq(tsim_run(TSIM_LRU, &t, PG, 0, e), -EINVAL);
	t.n = 1;
	t.epoch_len = 0;
	cr_assert_eq(tsim_run(TSIM_LRU, &t, PG, 0, e), -EINVAL);
}

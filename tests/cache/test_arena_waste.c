/* SPDX-License-Identifier: MIT */
/*
 * Measures cache/arena.c's waste on ImageNet- and WebDataset-like traces
 * (the arena_waste tests print their numbers).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/arena.h"
#include "arena_test.h"

/*
 * --- waste on dataset-like traces ---
 *
 * A cache's view: a dataset of objects read in random order (a shuffled
 * epoch), each miss allocated, the budget made by evicting at random on
 * -ENOSPC (what Belady's MIN does on a shuffled epoch) and in the segment the
 * arena names on -EAGAIN.  After the cache first fills, the tests sample:
 *   waste      charged / payload - 1, what the arena adds to the objects;
 *   pages      the same if each object were charged whole pages, as one
 *              memfd per object is;
 *   occupancy  payload / budget, the budget's share that holds bytes the
 *              trainer reads: what waste and fragmentation together leave;
 *   fill       charged / budget when an allocation first fails;
 *   fds        the most segments open at once.
 * Segments are mapped but never touched here, so a 64 GiB budget costs no
 * memory.
 */
struct tobj {
	uint64_t size;
	struct stk_extent e;
	uint32_t rpos, spos;
	bool res;
};

struct trace {
	const char *name;
	uint64_t budget, seg_size, huge_min;
	uint64_t accesses;
	double p_second; /* chance that an access goes to the second dataset */
	uint32_t n1, n2; /* objects of the first and second dataset */
	struct tobj *o;
	uint32_t *res, nres;
	uint32_t **inseg, *nin, *capin, nseg; /* resident objects by segment */
};

struct waste {
	double waste, pages, occupancy, fill;
	uint32_t fds;
};

static void inseg_add(struct trace *t, uint32_t i)
{
	uint32_t s = t->o[i].e.seg;
	if (s == STK_ARENA_NOSEG)
		return;
	if (s >= t->nseg) {
		uint32_t n = s * 2 + 16;
		t->inseg = realloc(t->inseg, n * sizeof(*t->inseg));
		t->nin = realloc(t->nin, n * sizeof(*t->nin));
		t->capin = realloc(t->capin, n * sizeof(*t->capin));
		cr_assert(t->inseg && t->nin && t->capin);
		for (uint32_t k = t->nseg; k < n; k++) {
			t->inseg[k] = NULL;
			t->nin[k] = t->capin[k] = 0;
		}
		t->nseg = n;
	}
	if (t->nin[s] == t->capin[s]) {
		t->capin[s] = t->capin[s] ? t->capin[s] * 2 : 64;
		t->inseg[s] = realloc(t->inseg[s], t->capin[s] * sizeof(uint32_t));
		cr_assert_not_null(t->inseg[s]);
	}
	t->o[i].spos = t->nin[s];
	t->inseg[s][t->nin[s]++] = i;
}

static void evict(struct trace *t, uint32_t i, uint64_t *pages)
{
	struct tobj *ob = &t->o[i];
	uint32_t s = ob->e.seg;
	if (s != STK_ARENA_NOSEG) {
		uint32_t j = t->inseg[s][--t->nin[s]];
		t->inseg[s][ob->spos] = j;
		t->o[j].spos = ob->spos;
	}
	uint32_t j = t->res[--t->nres];
	t->res[ob->rpos] = j;
	t->o[j].rpos = ob->rpos;
	*pages -= (ob->size + 4095) / 4096 * 4096;
	stk__arena_free(&A, &ob->e);
	ob->res = false;
}

static struct waste replay(struct trace *t)
{
	arena_init(t->budget, t->seg_size, t->huge_min);
	uint32_t n = t->n1 + t->n2;
	t->res = malloc(n * sizeof(uint32_t));
	cr_assert_not_null(t->res);
	t->nres = 0;
	uint64_t pages = 0, samples = 0, fails = 0;
	double waste = 0, pw = 0, occ = 0, fill = 0;
	struct waste w = { 0 };
	bool full = false;
	for (uint64_t a = 0; a < t->accesses; a++) {
		uint32_t i = t->n2 && rndf() < t->p_second ? t->n1 + (uint32_t)(rnd() % t->n2)
							   : (uint32_t)(rnd() % t->n1);
		struct tobj *ob = &t->o[i];
		if (ob->res)
			continue;
		bool first = true;
		int r;
		while ((r = stk__arena_alloc(&A, ob->size, 0, &ob->e)) != 0) {
			cr_assert(r == -ENOSPC || r == -EAGAIN, "%s", strerror(-r));
			cr_assert_gt(t->nres, 0);
			if (first) {
				fill += (double)stats().charged / (double)t->budget;
				fails++;
				first = false;
				full = true;
			}
			uint32_t s = stk__arena_evict_hint(&A), v = t->res[rnd() % t->nres];
			if (r == -EAGAIN && s < t->nseg && t->nin[s])
				v = t->inseg[s][rnd() % t->nin[s]];
			evict(t, v, &pages);
		}
		ob->res = true;
		ob->rpos = t->nres;
		t->res[t->nres++] = i;
		inseg_add(t, i);
		pages += (ob->size + 4095) / 4096 * 4096;
		if (full && a % 16 == 0) {
			struct stk_arena_stats st = stats();
			waste += (double)st.charged / (double)st.payload;
			pw += (double)pages / (double)st.payload;
			occ += (double)st.payload / (double)t->budget;
			samples++;
			if (st.segments > w.fds)
				w.fds = st.segments;
		}
	}
	cr_assert_gt(samples, 1000, "the cache never filled");
	check();
	w.waste = waste / (double)samples - 1;
	w.pages = pw / (double)samples - 1;
	w.occupancy = occ / (double)samples;
	w.fill = fill / (double)fails;
	struct stk_arena_stats st = stats();
	fprintf(stderr,
		"arena waste, %s: budget %llu MiB, segments %llu MiB, dedicated from %llu KiB: "
		"waste %.2f%% (whole pages: %.2f%%), occupancy %.1f%%, fill at failure %.1f%%, "
		"fds <= %u\n",
		t->name, (unsigned long long)(t->budget >> 20),
		(unsigned long long)(st.seg_size >> 20), (unsigned long long)(st.huge_min >> 10),
		100 * w.waste, 100 * w.pages, 100 * w.occupancy, 100 * w.fill, w.fds);
	for (uint32_t s = 0; s < t->nseg; s++)
		free(t->inseg[s]);
	free(t->inseg);
	free(t->nin);
	free(t->capin);
	free(t->res);
	t->inseg = NULL;
	t->nin = t->capin = NULL;
	t->nseg = 0;
	for (uint32_t i = 0; i < n; i++)
		t->o[i].res = false;
	stk__arena_fini(&A);
	return w;
}

/* ImageNet-1k's 1,281,167 training JPEGs: log-normal sizes, mean 110 KB. */
static struct tobj *imagenet(uint32_t *n, uint32_t extra)
{
	*n = 1281167;
	struct tobj *o = calloc(*n + extra, sizeof(*o));
	cr_assert_not_null(o);
	for (uint32_t i = 0; i < *n; i++)
		o[i].size = rnd_lognormal(110e3, 0.6, 500, 16 * MiB);
	return o;
}

/* WebDataset tars: shards of 64 MiB to 1 GiB. */
static void shards(struct tobj *o, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		o[i].size = rnd_between(64 * MiB, 1 * GiB);
}

TestSuite(arena_waste, .fini = teardown, .timeout = 100);

Test(arena_waste, imagenet_like_in_2_gib)
{
	rng_state = 110;
	struct trace t = { .name = "ImageNet-like", .budget = 2 * GiB, .accesses = 1500000 };
	t.o = imagenet(&t.n1, 0);
	struct waste w = replay(&t);
	cr_assert_lt(w.waste, 0.03, "JPEGs are charged %.2f%% more than their bytes",
		     100 * w.waste);
	cr_assert_gt(w.occupancy, 0.95);
	cr_assert_lt(w.fds, 70);
	t.name = "ImageNet-like, 256 MiB segments";
	t.seg_size = 256 * MiB;
	w = replay(&t);
	cr_assert_lt(w.waste, 0.03);
	cr_assert_gt(w.occupancy, 0.95);
	cr_assert_lt(w.fds, 12);
	free(t.o);
}

Test(arena_waste, webdataset_like_in_64_gib)
{
	rng_state = 64;
	struct trace t = { .name = "WebDataset-like",
			   .budget = 64 * GiB,
			   .seg_size = 256 * MiB,
			   .accesses = 20000,
			   .n1 = 2000 };
	t.o = calloc(t.n1, sizeof(*t.o));
	cr_assert_not_null(t.o);
	shards(t.o, t.n1);
	struct waste w = replay(&t);
	cr_assert_lt(w.waste, 0.001, "shards are charged %.3f%% more", 100 * w.waste);
	cr_assert_gt(w.occupancy, 0.97);
	cr_assert_lt(w.fds, 200);
	free(t.o);
}

Test(arena_waste, jpegs_and_shards_share_16_gib)
{
	rng_state = 16;
	struct trace t = { .name = "ImageNet-like and WebDataset-like, half the bytes each",
			   .budget = 16 * GiB,
			   .accesses = 3000000,
			   .n2 = 2000,
			   .p_second = 110e3 / (110e3 + 544.0 * MiB) };
	t.o = imagenet(&t.n1, t.n2);
	shards(t.o + t.n1, t.n2);
	struct waste w = replay(&t);
	cr_assert_lt(w.waste, 0.02);
	cr_assert_gt(w.occupancy, 0.95, "jpegs and shards fragment the budget");
	free(t.o);
}

Test(arena_waste, small_files_in_1_gib)
{
	rng_state = 8;
	struct trace t = { .name = "small files (log-normal, mean 8 KiB)",
			   .budget = 1 * GiB,
			   .accesses = 2000000,
			   .n1 = 1000000 };
	t.o = calloc(t.n1, sizeof(*t.o));
	cr_assert_not_null(t.o);
	for (uint32_t i = 0; i < t.n1; i++)
		t.o[i].size = rnd_lognormal(8192, 1.0, 64, 1 * MiB);
	struct waste w = replay(&t);
	cr_assert_lt(w.waste, 0.08);
	cr_assert_lt(w.waste * 3, w.pages, "classes must beat whole pages by far");
	cr_assert_gt(w.occupancy, 0.90);
	free(t.o);
}

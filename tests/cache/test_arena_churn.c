/* SPDX-License-Identifier: MIT */
/*
 * Tests cache/arena.c under random churn: a million-odd allocations and frees
 * of mixed sizes, one or several trust domains, segments of every size, each
 * object's bytes stamped and checked, the budget, charges and bookkeeping
 * compared with the test's own after every operation.  (test_arena.c holds
 * the arena's single-behaviour tests.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/arena.h"
#include "arena_test.h"

static struct stk_arena_seg segment(uint32_t i)
{
	struct stk_arena_seg s;
	cr_assert_eq(stk__arena_segment(&A, i, &s), 0, "segment %u", i);
	return s;
}

TestSuite(arena, .fini = teardown, .timeout = 100);

struct live {
	struct stk_extent e;
	uint64_t id;
	uint32_t dom;
};

static uint64_t stamp(uint64_t id, uint64_t at)
{
	uint64_t z = id * 0x9e3779b97f4a7c15ull ^ at * 0xc2b2ae3d27d4eb4full;
	return z ^ (z >> 29);
}

/*
 * Writes (or verifies) the object's pattern: every byte of a small one, else
 * 8-byte stamps at its ends and 4093 bytes apart, or 64 spread over it when it
 * is larger (touching every page of 64 MiB objects costs minutes of faults).
 */
static void pattern(uint8_t *p, uint64_t len, uint64_t id, bool verify)
{
	if (len <= 256) {
		for (uint64_t i = 0; i < len; i++) {
			uint8_t want = (uint8_t)stamp(id, i);
			if (verify)
				cr_assert_eq(p[i], want, "object %llu byte %llu",
					     (unsigned long long)id, (unsigned long long)i);
			else
				p[i] = want;
		}
		return;
	}
	uint64_t stride = len / 64 > 4093 ? len / 64 + 1 : 4093;
	for (uint64_t at = 0;; at += stride) {
		if (at + 16 > len)
			at = len - 8; /* the last stamp, clear of the one before */
		uint64_t want = stamp(id, at), have;
		if (verify) {
			memcpy(&have, p + at, 8);
			cr_assert_eq(have, want,
				     "object %llu of %llu bytes: offset %llu overwritten",
				     (unsigned long long)id, (unsigned long long)len,
				     (unsigned long long)at);
		} else {
			memcpy(p + at, &want, 8);
		}
		if (at == len - 8)
			break;
	}
}

/* 5 % empty, 10 % 1 B-32 KiB, 40 % 1-4 KiB, 30 % ~110 KiB, 12 % ~1.5 MiB, 3 % 2-64 MiB. */
static uint64_t mixed_size(void)
{
	double u = rndf();
	if (u < 0.05)
		return 0;
	if (u < 0.15)
		return rnd_between(1, 32 * KiB);
	if (u < 0.55)
		return rnd_between(1 * KiB, 4 * KiB);
	if (u < 0.85)
		return rnd_lognormal(110e3, 0.3, 40 * KiB, 400 * KiB);
	if (u < 0.97)
		return rnd_between(1400 * KiB, 1700 * KiB);
	return (uint64_t)exp(log(2.0 * MiB) + rndf() * log(32.0));
}

static int cmp_live(const void *x, const void *y)
{
	const struct stk_extent *a = &((const struct live *)x)->e,
				*b = &((const struct live *)y)->e;
	if (a->seg != b->seg)
		return a->seg < b->seg ? -1 : 1;
	return a->off < b->off ? -1 : a->off > b->off;
}

/* No two live extents share a byte, and each lies inside its segment. */
static void check_disjoint(struct live *v, size_t n)
{
	static struct live *s;
	static size_t cap;
	if (cap < n) {
		cap = n * 2;
		s = realloc(s, cap * sizeof(*s));
		cr_assert_not_null(s);
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].e.seg != STK_ARENA_NOSEG)
			s[m++] = v[i];
	qsort(s, m, sizeof(*s), cmp_live);
	for (size_t i = 0; i < m; i++) {
		struct stk_arena_seg g = segment(s[i].e.seg);
		cr_assert_eq(g.gen, s[i].e.gen);
		cr_assert_leq(s[i].e.off + s[i].e.charge, g.size);
		if (i + 1 < m && s[i + 1].e.seg == s[i].e.seg)
			cr_assert_leq(s[i].e.off + s[i].e.charge, s[i + 1].e.off,
				      "segment %u: [%llu, +%llu) overlaps [%llu, ...)", s[i].e.seg,
				      (unsigned long long)s[i].e.off,
				      (unsigned long long)s[i].e.charge,
				      (unsigned long long)s[i + 1].e.off);
	}
}

struct churn {
	uint64_t budget, seg_size, huge_min;
	unsigned ops;
	unsigned domains; /* trust domains the objects are drawn from; 0 is one */
	uint64_t seed;
};

/* ASan makes every pattern byte dearer: a quarter of the operations still reach the limits. */
#if defined(__SANITIZE_ADDRESS__)
#define CHURN_SCALE 4u
#else
#define CHURN_SCALE 1u
#endif

static void churn(const struct churn *c)
{
	rng_state = c->seed;
	arena_init(c->budget, c->seg_size, c->huge_min);
	size_t cap = 1 << 16, n = 0;
	struct live *v = malloc(cap * sizeof(*v));
	cr_assert_not_null(v);
	uint64_t next_id = 1, charged = 0, payload = 0;
	unsigned eagain = 0, enospc = 0, dedicated = 0;
	unsigned ops = c->ops / CHURN_SCALE;
	for (unsigned op = 0; op < ops; op++) {
		if (n && rndf() >= 0.55) {
			size_t k = rnd() % n;
			pattern(stk__arena_ptr(&A, &v[k].e), v[k].e.len, v[k].id, true);
			charged -= v[k].e.charge;
			payload -= v[k].e.len;
			stk__arena_free(&A, &v[k].e);
			v[k] = v[--n];
		} else {
			uint64_t size = mixed_size();
			uint32_t dom = c->domains ? 1000 + (uint32_t)(rnd() % c->domains) : 0;
			struct stk_extent e;
			int r;
			while ((r = stk__arena_alloc(&A, size, dom, &e)) != 0) {
				/* The caller's side: evict at random and retry. */
				cr_assert(r == -ENOSPC || r == -EAGAIN, "alloc %llu: %s",
					  (unsigned long long)size, strerror(-r));
				cr_assert_neq(n, 0, "%s with nothing allocated", strerror(-r));
				cr_assert_eq(r == -ENOSPC, charged + e.charge > c->budget,
					     "%s for a charge of %llu with %llu charged",
					     strerror(-r), (unsigned long long)e.charge,
					     (unsigned long long)charged);
				eagain += r == -EAGAIN;
				enospc += r == -ENOSPC;
				size_t k = rnd() % n;
				cr_assert_eq(e.seg, STK_ARENA_NOSEG, "a failure gives no extent");
				if (r == -EAGAIN) {
					/* Evict in the segment the arena names, as the cache will.
					 */
					uint32_t h = stk__arena_evict_hint(&A);
					cr_assert_neq(h, STK_ARENA_NOSEG);
					cr_assert_gt(segment(h).charged, 0);
					size_t seen = 0;
					for (size_t j = 0; j < n; j++)
						if (v[j].e.seg == h && rnd() % ++seen == 0)
							k = j;
					cr_assert_gt(seen, 0, "no live object in segment %u", h);
				}
				pattern(stk__arena_ptr(&A, &v[k].e), v[k].e.len, v[k].id, true);
				charged -= v[k].e.charge;
				payload -= v[k].e.len;
				stk__arena_free(&A, &v[k].e);
				v[k] = v[--n];
			}
			cr_assert_eq(e.len, size);
			cr_assert_geq(e.charge, size);
			if (size)
				cr_assert_eq(segment(e.seg).domain, dom,
					     "an object of domain %u in segment %u of domain %u",
					     dom, e.seg, segment(e.seg).domain);
			if (n == cap) {
				cap *= 2;
				v = realloc(v, cap * sizeof(*v));
				cr_assert_not_null(v);
			}
			v[n].e = e;
			v[n].dom = dom;
			v[n].id = next_id++;
			pattern(stk__arena_ptr(&A, &e), e.len, v[n].id, false);
			n++;
			charged += e.charge;
			payload += size;
			dedicated += size >= stats().huge_min;
		}
		struct stk_arena_stats st = stats();
		cr_assert_leq(st.charged, st.budget);
		cr_assert_leq(st.mapped, st.budget);
		cr_assert_eq(st.charged, charged, "op %u", op);
		cr_assert_eq(st.payload, payload);
		cr_assert_eq(st.objects, n);
		if (op % 20000 == 0) {
			check();
			check_disjoint(v, n);
			for (size_t k = 0; k < n; k++)
				cr_assert(!v[k].e.len || segment(v[k].e.seg).domain == v[k].dom);
		}
	}
	check();
	check_disjoint(v, n);
	for (size_t k = 0; k < n; k++) {
		pattern(stk__arena_ptr(&A, &v[k].e), v[k].e.len, v[k].id, true);
		stk__arena_free(&A, &v[k].e);
	}
	struct stk_arena_stats st = stats();
	cr_assert_eq(st.charged, 0);
	cr_assert_eq(st.slab_free, 0);
	cr_assert_eq(st.mapped, st.extent_free);
	check();
	fprintf(stderr,
		"arena churn: %u ops, seed %llu, budget %llu MiB, segment %llu MiB: %u ENOSPC, "
		"%u EAGAIN, %u dedicated objects\n",
		ops, (unsigned long long)c->seed, (unsigned long long)(c->budget >> 20),
		(unsigned long long)(st.seg_size >> 20), enospc, eagain, dedicated);
	free(v);
	/* The run must have been at the limits it claims to test. */
	cr_assert_gt(enospc, 100, "the budget was never short");
	cr_assert_gt(dedicated, 100);
}

Test(arena, random_churn_keeps_budget_bytes_and_bookkeeping)
{
	/* Objects of 2 MiB and more in segments of their own: the run must make many. */
	struct churn c = {
		.budget = 512 * MiB, .huge_min = 2 * MiB, .ops = 250000, .seed = 20240601
	};
	churn(&c);
}

Test(arena, random_churn_keeps_trust_domains_apart)
{
	/* Three domains sharing 256 MiB of 8 MiB segments: each takes segments others freed. */
	struct churn c = { .budget = 256 * MiB,
			   .seg_size = 8 * MiB,
			   .huge_min = 4 * MiB,
			   .ops = 300000,
			   .domains = 3,
			   .seed = 31337 };
	churn(&c);
}

Test(arena, random_churn_with_256_mib_segments)
{
	struct churn c = { .budget = 1 * GiB,
			   .seg_size = 256 * MiB,
			   .huge_min = 32 * MiB,
			   .ops = 300000,
			   .seed = 7 };
	churn(&c);
}

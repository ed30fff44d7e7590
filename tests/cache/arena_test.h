/* SPDX-License-Identifier: MIT */
/*
 * What test_arena.c and test_arena_waste.c share: the arena under test, its
 * set-up and checks, and a seeded random generator.
 */
#ifndef STOKER_TEST_ARENA_H
#define STOKER_TEST_ARENA_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cache/arena.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct stk_arena A;

static inline int arena_open(uint64_t budget, uint64_t seg, uint64_t huge_min, unsigned flags)
{
	struct stk_arena_opts o = {
		.opts_size = sizeof(o),
		.budget = budget,
		.seg_size = seg,
		.flags = flags,
		.name = "test-arena",
		.huge_min = huge_min,
	};
	return stk__arena_init(&A, &o);
}

static inline void arena_init(uint64_t budget, uint64_t seg, uint64_t huge_min)
{
	int r = arena_open(budget, seg, huge_min, 0);
	cr_assert_eq(r, 0, "stk__arena_init: %s", strerror(-r));
}

static inline void teardown(void)
{
	stk__arena_fini(&A);
}

static inline void check(void)
{
	char err[256] = "";
	int r = stk__arena_check(&A, err, sizeof(err));
	cr_assert_eq(r, 0, "arena inconsistent: %s", err);
}

static inline struct stk_arena_stats stats(void)
{
	struct stk_arena_stats st;
	stk__arena_stats(&A, &st);
	return st;
}

/* splitmix64: a seeded generator, so that a failure can be replayed. */
static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline double rndf(void)
{
	return (double)(rnd() >> 11) / (double)(1ull << 53);
}

static inline uint64_t rnd_between(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

static inline double rnd_normal(void)
{
	double u = rndf(), v = rndf();
	return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* A size drawn from a log-normal of this mean, clamped. */
static inline uint64_t rnd_lognormal(double mean, double sigma, uint64_t lo, uint64_t hi)
{
	double mu = log(mean) - sigma * sigma / 2;
	double x = exp(mu + sigma * rnd_normal());
	uint64_t n = (uint64_t)x;
	return n < lo ? lo : n > hi ? hi : n;
}

#endif

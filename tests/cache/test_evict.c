/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache/cache.h"

#define N 6
static struct stk_cache cache;
static struct stk_object objs[N];
static uint64_t next[N];

static void init_budget(uint64_t budget)
{
	char err[256];
	stk__cache_fini(&cache);
	cr_assert_eq(stk__cache_init(&cache, &stk_tier_ram, budget, 0, err, sizeof(err)), 0, "%s",
		     err);
}

static void setup(void)
{
	memset(&cache, 0, sizeof(cache));
	memset(objs, 0, sizeof(objs));
	init_budget(1 << 20);
	for (int i = 0; i < N; i++) {
		objs[i].size = 4096;
		objs[i].uri = "test://obj";
		next[i] = UINT64_MAX;
	}
}

static void teardown(void)
{
	for (int i = 0; i < N; i++)
		stk__cache_drop(&cache, &objs[i]);
	stk__cache_fini(&cache);
}

static uint64_t next_use(void *arg, const struct stk_object *o)
{
	return next[o - objs];
}

static void make_resident(int i)
{
	char err[256];
	cr_assert_eq(stk__cache_alloc(&cache, &objs[i], err, sizeof(err)), 0, "%s", err);
	if (objs[i].size)
		memset(objs[i].room->t.map, 'a' + i, objs[i].size);
	cr_assert_eq(stk__cache_seal(&cache, &objs[i], err, sizeof(err)), 0, "%s", err);
}

TestSuite(cache_evict, .init = setup, .fini = teardown, .timeout = 10);

Test(cache_evict, belady_picks_farthest_next_use)
{
	for (int i = 0; i < 4; i++)
		make_resident(i);
	next[0] = 5;
	next[1] = 50;
	next[2] = 2;
	next[3] = 7;
	uint64_t d;
	cr_assert_eq(stk__cache_victim(&cache, next_use, NULL, &d), &objs[1]);
	cr_assert_eq(d, 50);
	next[2] = UINT64_MAX; /* never needed again beats any finite distance */
	stk__cache_rekey(&cache, &objs[2]);
	cr_assert_eq(stk__cache_victim(&cache, next_use, NULL, &d), &objs[2]);
}

Test(cache_evict, pinned_objects_are_never_victims)
{
	make_resident(0);
	make_resident(1);
	next[0] = 1;
	next[1] = 100;
	cr_assert(stk__cache_pin(&cache, &objs[1]));
	uint64_t d;
	cr_assert_eq(stk__cache_victim(&cache, next_use, NULL, &d), &objs[0]);
	cr_assert(stk__cache_pin(&cache, &objs[0]));
	cr_assert_not(stk__cache_pin(&cache, &objs[0]), "a second hold is not the first");
	cr_assert_null(stk__cache_victim(&cache, next_use, NULL, &d));
	cr_assert_not(stk__cache_unpin(&cache, &objs[0]));
	cr_assert(stk__cache_unpin(&cache, &objs[0]));
	cr_assert(stk__cache_unpin(&cache, &objs[1]));
	cr_assert_eq(stk__cache_victim(&cache, next_use, NULL, &d), &objs[1]);
}

Test(cache_evict, without_plans_the_newest_gives_way)
{
	/* Keep-once-full: cyclic scans keep the first-cached set (LRU would evict 0). */
	for (int i = 0; i < 4; i++)
		make_resident(i);
	uint64_t d;
	cr_assert_eq(stk__cache_victim(&cache, next_use, NULL, &d), &objs[3]);
	cr_assert_eq(d, UINT64_MAX);
}

Test(cache_evict, charges_what_the_tier_keeps_and_returns_it)
{
	objs[0].size = 1;
	objs[1].size = 64 * 1024 + 1; /* an extent of whole pages */
	objs[2].size = 0;
	make_resident(0);
	make_resident(1);
	make_resident(2);
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t c0 = objs[0].room->t.ext.charge, c1 = objs[1].room->t.ext.charge;
	cr_assert(c0 >= 1 && c0 < (uint64_t)pg, "1 byte charged %llu", (unsigned long long)c0);
	cr_assert_eq(c1, 64 * 1024 + (uint64_t)pg);
	cr_assert_eq(objs[2].room->t.ext.charge, 0);
	cr_assert_eq(cache.tier->used, c0 + c1);
	cr_assert_eq(cache.resident, 3);
	stk__cache_drop(&cache, &objs[1]);
	cr_assert_eq(cache.tier->used, c0);
	cr_assert_eq(objs[1].state, STK_OBJ_ABSENT);
	cr_assert_eq(cache.resident, 2);
}

Test(cache_evict, alloc_respects_the_budget)
{
	init_budget(3 * 64 * 1024);
	char err[256];
	for (int i = 0; i < N; i++)
		objs[i].size = 64 * 1024;
	make_resident(0);
	make_resident(1);
	make_resident(2);
	int r = stk__cache_alloc(&cache, &objs[3], err, sizeof(err));
	cr_assert(r == -ENOSPC || r == -EAGAIN, "alloc past the budget: %d", r);
	cr_assert_leq(cache.tier->used, cache.tier->budget);
	objs[4].size = 4 * 64 * 1024;
	cr_assert_eq(stk__cache_alloc(&cache, &objs[4], err, sizeof(err)), -EFBIG);
	cr_assert(strstr(err, "larger than the whole RAM budget"), "%s", err);
	stk__cache_drop(&cache, &objs[1]);
	cr_assert_eq(stk__cache_alloc(&cache, &objs[3], err, sizeof(err)), 0, "%s", err);
}

Test(tier_ram, segments_are_read_only_to_others_and_intact, .init = setup, .fini = teardown,
     .timeout = 10)
{
	make_resident(0);
	struct stk_arena_seg seg;
	cr_assert_eq(cache.tier->ops->segment(cache.tier, objs[0].room->t.ext.seg, &seg), 0);
	/* However a client reopens the segment, it cannot write it. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", seg.fd);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(mmap(NULL, seg.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED,
		     "a writable shared mapping of a segment must fail");
	cr_assert_eq(pwrite(fd, "x", 1, (off_t)objs[0].room->t.ext.off), -1);
	char *p = mmap(NULL, seg.size, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	for (uint64_t i = 0; i < objs[0].size; i++)
		cr_assert_eq(p[objs[0].room->t.ext.off + i], 'a');
	munmap(p, seg.size);
	close(fd);
}

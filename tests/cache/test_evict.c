/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache/cache.h"

#define N 6
static struct stk_cache cache;
static struct stk_object objs[N];
static uint64_t next[N];

static void setup(void)
{
	memset(&cache, 0, sizeof(cache));
	memset(objs, 0, sizeof(objs));
	cache.tier = &stk_tier_ram;
	cache.budget = 1 << 20;
	for (int i = 0; i < N; i++) {
		objs[i].size = 4096;
		objs[i].uri = "test://obj";
		objs[i].t.fd = -1;
		next[i] = UINT64_MAX;
	}
}

static void teardown(void)
{
	for (int i = 0; i < N; i++)
		stk__cache_drop(&cache, &objs[i]);
	stk__victims_fini(&cache.victims);
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
		memset(objs[i].t.map, 'a' + i, objs[i].size);
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

Test(cache_evict, charges_whole_pages_and_returns_them)
{
	objs[0].size = 1;
	objs[1].size = 4097;
	objs[2].size = 0;
	make_resident(0);
	make_resident(1);
	make_resident(2);
	long pg = sysconf(_SC_PAGESIZE);
	cr_assert_eq(cache.used, (uint64_t)(pg + 2 * pg));
	cr_assert_eq(cache.resident, 3);
	stk__cache_drop(&cache, &objs[1]);
	cr_assert_eq(cache.used, (uint64_t)pg);
	cr_assert_eq(objs[1].state, STK_OBJ_ABSENT);
	cr_assert_eq(cache.resident, 2);
}

Test(cache_evict, fits_respects_the_budget)
{
	cache.budget = 3 * 4096;
	make_resident(0);
	make_resident(1);
	cr_assert(stk__cache_fits(&cache, &objs[2]));
	make_resident(2);
	cr_assert_not(stk__cache_fits(&cache, &objs[3]));
}

Test(tier_ram, sealed_memfd_is_read_only_and_intact, .init = setup, .fini = teardown, .timeout = 10)
{
	make_resident(0);
	int fd = objs[0].t.fd;
	int seals = fcntl(fd, F_GET_SEALS);
	cr_assert(seals & F_SEAL_WRITE);
	cr_assert(seals & F_SEAL_SHRINK);
	cr_assert(seals & F_SEAL_GROW);
	cr_assert_eq(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED,
		     "a writable shared mapping of a sealed object must fail");
	char b[4096];
	cr_assert_eq(pread(fd, b, sizeof(b), 0), 4096);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(b[i], 'a');
	cr_assert_eq(pwrite(fd, "x", 1, 0), -1);
}

/* SPDX-License-Identifier: MIT */
/*
 * Tests cache/arena.c: the budget and its accounting hold, segments are
 * sealed against every writer but the daemon's mapping, fds stay few,
 * fragmentation is reported as such, trust domains take what others freed.
 * (test_arena_churn.c checks all of it under random churn;
 * test_arena_waste.c measures the waste on ImageNet- and WebDataset-like
 * traces.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/arena.h"
#include "arena_test.h"

static struct stk_extent must_alloc_in(uint64_t size, uint32_t domain)
{
	struct stk_extent e;
	int r = stk__arena_alloc(&A, size, domain, &e);
	cr_assert_eq(r, 0, "alloc %llu in domain %u: %s", (unsigned long long)size, domain,
		     strerror(-r));
	return e;
}

static struct stk_extent must_alloc(uint64_t size)
{
	return must_alloc_in(size, 0);
}

static struct stk_arena_seg segment(uint32_t i)
{
	struct stk_arena_seg s;
	cr_assert_eq(stk__arena_segment(&A, i, &s), 0, "segment %u", i);
	return s;
}
TestSuite(arena, .fini = teardown, .timeout = 100);

Test(arena, size_classes_waste_under_an_eighth)
{
	arena_init(64 * MiB, 0, 0);
	struct stk_arena_stats st = stats();
	cr_assert_eq(st.small_max, 32 * KiB);
	for (uint64_t size = 1; size < 2 * MiB; size += size < 64 * KiB ? 1 : 997) {
		struct stk_extent e = must_alloc(size);
		cr_assert_geq(e.charge, size);
		if (size <= 64)
			cr_assert_eq(e.charge, 64, "objects under 64 B are charged 64 B");
		else
			cr_assert_lt((e.charge - size) * 8, size, "%llu bytes charged %llu",
				     (unsigned long long)size, (unsigned long long)e.charge);
		cr_assert_eq(e.off % 8, 0, "a slot is 8-byte aligned");
		if (size > st.small_max)
			cr_assert_eq(e.off % STK_ARENA_PAGE, 0, "an extent is page-aligned");
		cr_assert_eq(stats().charged, e.charge);
		stk__arena_free(&A, &e);
	}
	st = stats();
	cr_assert_eq(st.charged, 0);
	cr_assert_eq(st.objects, 0);
	cr_assert_eq(st.slab_free, 0, "empty slabs give their pages back");
	check();
}

Test(arena, zero_byte_objects_are_charged_nothing)
{
	arena_init(1 * MiB, 0, 0);
	/* Fill the budget: a zero-byte object still fits. */
	struct stk_extent big = must_alloc(1 * MiB);
	struct stk_extent e, z;
	cr_assert_eq(stk__arena_alloc(&A, 1, 0, &e), -ENOSPC);
	z = must_alloc(0);
	cr_assert_eq(z.seg, STK_ARENA_NOSEG);
	cr_assert_eq(z.charge, 0);
	cr_assert_eq(z.len, 0);
	cr_assert_not_null(stk__arena_ptr(&A, &z));
	cr_assert_eq(stk__arena_populate(&A, &z), 0);
	cr_assert_eq(stats().objects, 2);
	cr_assert_eq(stats().charged, 1 * MiB);
	stk__arena_free(&A, &z);
	cr_assert_eq(stats().objects, 1);
	stk__arena_free(&A, &big);
	check();
}

Test(arena, init_rejects_bad_options)
{
	struct stk_arena_opts o = { .opts_size = sizeof(o), .budget = 64 * MiB };
	cr_assert_eq(stk__arena_init(&A, NULL), -EINVAL);
	o.opts_size = 0;
	cr_assert_eq(stk__arena_init(&A, &o), -EINVAL);
	o.opts_size = sizeof(o);
	o.flags = 1u << 7;
	cr_assert_eq(stk__arena_init(&A, &o), -EINVAL);
	o.flags = 0;
	o.small_max = 3000; /* not a power of two */
	cr_assert_eq(stk__arena_init(&A, &o), -EINVAL);
	o.small_max = 0;
	/* Options that end before a field leave it at its default. */
	o.opts_size = offsetof(struct stk_arena_opts, flags);
	o.seg_size = 8 * MiB;
	cr_assert_eq(stk__arena_init(&A, &o), 0);
	cr_assert_eq(stats().seg_size, 8 * MiB);
	cr_assert_eq(stats().segments, 1, "the first segment is made at init");
	stk__arena_fini(&A);
	stk__arena_fini(&A); /* twice, and NULL, are harmless */
	stk__arena_fini(NULL);
}

Test(arena, budget_below_a_page_holds_only_empty_objects)
{
	arena_init(1000, 0, 0);
	struct stk_extent e;
	cr_assert_eq(stk__arena_alloc(&A, 1, 0, &e), -EFBIG);
	cr_assert_eq(stats().segments, 0);
	e = must_alloc(0);
	stk__arena_free(&A, &e);
	check();
}

Test(arena, too_big_and_no_room_are_told_apart)
{
	arena_init(8 * MiB, 4 * MiB, 0);
	struct stk_extent e, f;
	cr_assert_eq(stk__arena_alloc(&A, 8 * MiB + 1, 0, &e), -EFBIG);
	e = must_alloc(6 * MiB); /* dedicated: larger than a segment */
	cr_assert_eq(stk__arena_alloc(&A, 3 * MiB, 0, &f), -ENOSPC);
	stk__arena_free(&A, &e);
	f = must_alloc(3 * MiB);
	stk__arena_free(&A, &f);
	check();
}

/* Segments, not only charges, stay within a budget smaller than one segment. */
Test(arena, segments_never_exceed_a_small_budget)
{
	const uint64_t budget = 5 * MiB + 12345;
	arena_init(budget, 256 * MiB, 0);
	struct stk_arena_stats st = stats();
	cr_assert_leq(st.seg_size, budget);
	static struct stk_extent v[8192];
	unsigned n = 0;
	int r;
	while ((r = stk__arena_alloc(&A, 1 * KiB, 0, &v[n])) == 0) {
		n++;
		cr_assert_lt(n, 8192);
	}
	cr_assert(r == -ENOSPC || r == -EAGAIN, "%s", strerror(-r));
	st = stats();
	cr_assert_leq(st.mapped, budget);
	cr_assert_geq(st.charged, budget / 100 * 95, "only %llu of %llu charged",
		      (unsigned long long)st.charged, (unsigned long long)budget);
	check();
	for (unsigned i = 0; i < n; i++)
		stk__arena_free(&A, &v[i]);
	n = 0;
	while ((r = stk__arena_alloc(&A, 100 * KiB, 0, &v[n])) == 0)
		n++;
	cr_assert_leq(stats().mapped, budget);
	cr_assert_geq(stats().charged, budget / 100 * 90);
	check();
}

Test(arena, many_small_objects_use_few_fds)
{
	enum { N = 200000 };
	static struct stk_extent v[N];
	int before = 0, after = 0;
	for (int fd = 0; fd < 65536; fd++)
		before += fcntl(fd, F_GETFD) >= 0;
	arena_init(1 * GiB, 0, 0);
	for (int i = 0; i < N; i++)
		v[i] = must_alloc(1 * KiB);
	for (int fd = 0; fd < 65536; fd++)
		after += fcntl(fd, F_GETFD) >= 0;
	struct stk_arena_stats st = stats();
	cr_assert_eq(st.charged, (uint64_t)N * KiB, "1 KiB is a class: no waste");
	cr_assert_lt(st.segments, 100, "%u segments", st.segments);
	cr_assert_lt(after - before, 100, "%d fds opened", after - before);
	cr_assert_eq((unsigned)(after - before), st.segments);
	check();
	for (int i = 0; i < N; i++)
		stk__arena_free(&A, &v[i]);
	cr_assert_eq(stats().charged, 0);
	check();
}

Test(arena, freed_extents_merge)
{
	/* One 4 MiB segment and nothing else: only merged extents can hold 4 MiB again. */
	arena_init(4 * MiB, 4 * MiB, 4 * MiB);
	struct stk_extent e[4];
	for (int i = 0; i < 4; i++)
		e[i] = must_alloc(1 * MiB);
	struct stk_extent x;
	cr_assert_eq(stk__arena_alloc(&A, 4096, 0, &x), -ENOSPC);
	static const int order[4] = { 1, 3, 0, 2 }; /* alone, alone, both sides, both sides */
	for (int k = 0; k < 4; k++) {
		stk__arena_free(&A, &e[order[k]]);
		check();
	}
	x = must_alloc(4 * MiB - 1);
	cr_assert_eq(x.off, 0);
	cr_assert_eq(stats().segments, 1);
	stk__arena_free(&A, &x);
	check();
}

Test(arena, fragmentation_is_told_apart_from_a_full_budget)
{
	/* Two 4 MiB segments of 64 KiB extents; objects of 2 MiB and more get their own. */
	arena_init(8 * MiB, 4 * MiB, 2 * MiB);
	cr_assert_eq(stats().huge_min, 2 * MiB);
	struct stk_extent e[128], x;
	for (int i = 0; i < 128; i++)
		e[i] = must_alloc(64 * KiB);
	cr_assert_eq(stats().segments, 2);
	cr_assert_eq(stk__arena_alloc(&A, 64 * KiB, 0, &x), -ENOSPC);
	for (int i = 0; i < 128; i += 2)
		stk__arena_free(&A, &e[i]);
	check();
	/* Half the budget is free, in 64 KiB holes. */
	cr_assert_eq(stats().charged, 4 * MiB);
	cr_assert_eq(stk__arena_alloc(&A, 128 * KiB, 0, &x), -EAGAIN);
	cr_assert_eq(stk__arena_alloc(&A, 2 * MiB, 0, &x), -EAGAIN);
	x = must_alloc(60 * KiB); /* a hole fits it */
	stk__arena_free(&A, &x);
	/* The hint names the segment holding least: here the second, once the first has more. */
	uint32_t s0 = e[0].seg, s1 = e[127].seg;
	cr_assert_neq(s0, s1);
	cr_assert_eq(stk__arena_evict_hint(&A), s0 > s1 ? s0 : s1, "equals: the highest");
	stk__arena_free(&A, &e[127]);
	cr_assert_eq(stk__arena_evict_hint(&A), s1);
	stk__arena_free(&A, &e[1]);
	stk__arena_free(&A, &e[3]);
	cr_assert_eq(stk__arena_evict_hint(&A), s0);
	/* Emptying that segment makes way for an object of its own. */
	for (int i = 5; i < 127; i += 2)
		if (e[i].seg == s0)
			stk__arena_free(&A, &e[i]);
	cr_assert_eq(segment(s0).charged, 0);
	cr_assert_eq(stk__arena_evict_hint(&A), s1);
	x = must_alloc(3 * MiB);
	struct stk_arena_seg s = segment(x.seg);
	cr_assert(s.dedicated);
	cr_assert_eq(stats().segments, 2, "the empty shared segment was closed for it");
	cr_assert_eq(stats().dedicated, 1);
	check();
}

Test(arena, objects_larger_than_a_segment_get_their_own)
{
	arena_init(64 * MiB, 4 * MiB, 0);
	const uint64_t len = 10 * MiB + 1;
	struct stk_extent e = must_alloc(len);
	struct stk_arena_seg s = segment(e.seg);
	cr_assert(s.dedicated);
	cr_assert_eq(s.size, 10 * MiB + STK_ARENA_PAGE);
	cr_assert_eq(e.charge, s.size);
	cr_assert_eq(e.off, 0);
	struct stat sb;
	cr_assert_eq(fstat(s.fd, &sb), 0);
	cr_assert_eq((uint64_t)sb.st_size, s.size);
	uint8_t *p = stk__arena_ptr(&A, &e);
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7);
	uint8_t b[4096];
	cr_assert_eq(pread(s.fd, b, sizeof(b), (off_t)(len - sizeof(b))), (ssize_t)sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		cr_assert_eq(b[i], (uint8_t)((len - sizeof(b) + i) * 7));
	uint32_t nseg = stats().segments;
	stk__arena_free(&A, &e);
	cr_assert_eq(stats().segments, nseg - 1);
	cr_assert_eq(stk__arena_segment(&A, e.seg, &s), -ENOENT);
	cr_assert_eq(stats().mapped, 4 * MiB);
	check();
}

static bool resident(const void *p, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p / (uintptr_t)pg * (uintptr_t)pg;
	size_t n = ((uintptr_t)p + len - a + (size_t)pg - 1) / (size_t)pg;
	unsigned char *v = malloc(n);
	cr_assert_eq(mincore((void *)a, n * (size_t)pg, v), 0, "mincore: %s", strerror(errno));
	bool all = true;
	for (size_t i = 0; i < n; i++)
		all &= v[i] & 1;
	free(v);
	return all;
}

Test(arena, populate_faults_pages_in_and_keeps_bytes)
{
	arena_init(64 * MiB, 0, 0);
	struct stk_extent e = must_alloc(1 * MiB + 123);
	void *p = stk__arena_ptr(&A, &e);
	cr_assert_not(resident(p, e.len), "segment memory is populated lazily");
	cr_assert_eq(stk__arena_populate(&A, &e), 0);
	cr_assert(resident(p, e.len));
	/* Pre-faulting an object leaves its neighbours in the slab alone. */
	struct stk_extent s1 = must_alloc(1000), s2 = must_alloc(1000);
	cr_assert_eq(s1.seg, s2.seg);
	cr_assert_eq(s1.off / 4096, s2.off / 4096, "neighbours in one page");
	memset(stk__arena_ptr(&A, &s1), 0x5a, 1000);
	cr_assert_eq(stk__arena_populate(&A, &s2), 0);
	const uint8_t *q = stk__arena_ptr(&A, &s1);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(q[i], 0x5a);
}

Test(arena, seal_forbids_writes_through_any_other_fd)
{
	arena_init(64 * MiB, 8 * MiB, 0);
	struct stk_extent e = must_alloc(100 * KiB);
	struct stk_arena_seg s = segment(e.seg);
	uint8_t *p = stk__arena_ptr(&A, &e);
	memset(p, 'a', e.len);

	int seals = fcntl(s.fd, F_GET_SEALS);
	cr_assert(seals & F_SEAL_FUTURE_WRITE);
	cr_assert(seals & F_SEAL_SHRINK);
	cr_assert(seals & F_SEAL_GROW);
	cr_assert(seals & F_SEAL_SEAL);

	/* What a client gets, and what it could turn it into. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s.fd);
	int ro = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(ro, 0, "%s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ro);
	int rw = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(rw, 0, "reopening read-write: %s", strerror(errno));

	int fds[] = { rw, s.fd };
	for (int i = 0; i < 2; i++) {
		int fd = fds[i];
		errno = 0;
		cr_assert_eq(mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
			     MAP_FAILED, "a new writable shared mapping must fail");
		cr_assert_eq(errno, EPERM);
		cr_assert_eq(pwrite(fd, "x", 1, (off_t)e.off), -1);
		cr_assert_eq(errno, EPERM);
		cr_assert_eq(write(fd, "x", 1), -1);
		cr_assert_eq(errno, EPERM);
		cr_assert_eq(ftruncate(fd, 0), -1);
		cr_assert_eq(ftruncate(fd, (off_t)s.size * 2), -1);
		cr_assert_eq(
		    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)e.off, 4096),
		    -1, "punching a hole would zero live bytes");
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	}
	/* A read-only mapping cannot be made writable afterwards. */
	uint8_t *q = mmap(NULL, s.size, PROT_READ, MAP_SHARED, ro, 0);
	cr_assert_neq(q, MAP_FAILED, "%s", strerror(errno));
	cr_assert_eq(mprotect(q, s.size, PROT_READ | PROT_WRITE), -1,
		     "mprotect must not turn a read-only view writable");
	/* A private copy-on-write mapping may write, and nobody else sees it. */
	uint8_t *c = mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_PRIVATE, rw, 0);
	cr_assert_neq(c, MAP_FAILED, "%s", strerror(errno));
	c[e.off] = 'z';
	cr_assert_eq(p[0], 'a');
	cr_assert_eq(q[e.off], 'a');

	/* The daemon's own mapping still writes, and every reader sees it. */
	p[0] = 'b';
	p[e.len - 1] = 'c';
	char b = 0;
	cr_assert_eq(pread(ro, &b, 1, (off_t)e.off), 1);
	cr_assert_eq(b, 'b');
	cr_assert_eq(q[e.off + e.len - 1], 'c');
	cr_assert_eq(p[1], 'a');

	munmap(q, s.size);
	munmap(c, s.size);
	close(ro);
	close(rw);
}

Test(arena, forked_child_cannot_reach_the_mapping)
{
	arena_init(64 * MiB, 0, 0);
	struct stk_extent e = must_alloc(4096);
	uint8_t *p = stk__arena_ptr(&A, &e);
	p[0] = 1;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		unsigned char v;
		/* ENOMEM: nothing is mapped there in the child. */
		int r = mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, &v);
		_exit(r == -1 && errno == ENOMEM ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child still has the daemon's writable mapping");
}

Test(arena, hugetlb_segments_are_whole_huge_pages)
{
	int r = arena_open(64 * MiB, 8 * MiB, 0, STK_ARENA_HUGETLB);
	if (r == -ENOMEM || r == -EINVAL || r == -ENOSYS)
		cr_skip_test("no hugetlb pages to map here (vm.nr_hugepages): %s", strerror(-r));
	cr_assert_eq(r, 0, "%s", strerror(-r));
	struct stk_arena_seg s = segment(0);
	struct stat sb;
	cr_assert_eq(fstat(s.fd, &sb), 0);
	cr_assert_eq(s.size % (uint64_t)sb.st_blksize, 0);
	struct stk_extent e = must_alloc(100 * KiB), d = must_alloc(20 * MiB + 1);
	cr_assert_eq(d.charge % (uint64_t)sb.st_blksize, 0);
	cr_assert_eq(stk__arena_populate(&A, &e), 0);
	memset(stk__arena_ptr(&A, &e), 1, e.len);
	memset(stk__arena_ptr(&A, &d), 2, d.len);
	/* The seal holds on hugetlbfs too. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s.fd);
	int rw = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(rw, 0);
	cr_assert_eq(mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0), MAP_FAILED);
	close(rw);
	check();
}

Test(arena, thp_is_advised_where_shmem_asks_for_it)
{
	char b[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
	if (f) {
		if (!fgets(b, sizeof(b), f))
			b[0] = 0;
		fclose(f);
	}
	if (!strstr(b, "[advise]"))
		cr_skip_test("shmem THP is not 'advise' here: %s", b);
	arena_init(64 * MiB, 8 * MiB, 0);
	struct stk_extent e = must_alloc(100 * KiB);
	uintptr_t p = (uintptr_t)stk__arena_ptr(&A, &e) - e.off;
	f = fopen("/proc/self/smaps", "r");
	cr_assert_not_null(f);
	char line[256];
	bool in = false, advised = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = lo == p;
		else if (in && !strncmp(line, "VmFlags:", 8))
			advised = strstr(line, " hg") != NULL;
	}
	fclose(f);
	cr_assert(advised, "the segment's mapping lacks MADV_HUGEPAGE");
}

/* --- randomized churn --- */

Test(arena, a_domain_takes_the_budget_another_emptied)
{
	arena_init(64 * MiB, 4 * MiB, 0);
	/* Domain 1 fills the budget with small objects and extents. */
	size_t n = 0, cap = 64 * MiB / KiB;
	struct stk_extent *v = malloc(cap * sizeof(*v));
	cr_assert_not_null(v);
	int r;
	for (uint64_t size = 1 * KiB; (r = stk__arena_alloc(&A, size, 1, &v[n])) == 0;
	     size = size == 1 * KiB ? 100 * KiB : 1 * KiB)
		n++;
	cr_assert(r == -ENOSPC || r == -EAGAIN);
	struct stk_extent e;
	cr_assert_eq(stk__arena_alloc(&A, 1 * KiB, 2, &e), -EAGAIN,
		     "domain 2 may not use domain 1's free slots");
	/* Emptying the hinted segment gives domain 2 a segment of its own. */
	uint32_t h = stk__arena_evict_hint(&A);
	cr_assert_neq(h, STK_ARENA_NOSEG);
	cr_assert_eq(segment(h).domain, 1);
	uint32_t hgen = segment(h).gen;
	for (size_t k = 0; k < n; k++)
		if (v[k].seg == h) {
			stk__arena_free(&A, &v[k]);
			v[k] = v[--n];
			k--;
		}
	e = must_alloc_in(1 * KiB, 2);
	cr_assert(e.seg != h || segment(e.seg).gen != hgen,
		  "the emptied segment was closed, not handed over");
	cr_assert_eq(segment(e.seg).domain, 2);
	struct stk_extent big = must_alloc_in(1 * MiB, 2);
	cr_assert_eq(big.seg, e.seg);
	check();
	stk__arena_free(&A, &big);
	stk__arena_free(&A, &e);
	for (size_t k = 0; k < n; k++)
		stk__arena_free(&A, &v[k]);
	free(v);
	cr_assert_eq(stats().charged, 0);
	check();
}

/* Resident pages of the range at p, per mincore(2). */
static size_t resident_pages(const void *p, size_t len)
{
	size_t n = (len + STK_ARENA_PAGE - 1) / STK_ARENA_PAGE, in = 0;
	unsigned char *v = malloc(n);
	cr_assert_not_null(v);
	cr_assert_eq(mincore((void *)p, len, v), 0);
	for (size_t i = 0; i < n; i++)
		in += v[i] & 1;
	free(v);
	return in;
}

Test(arena, prefault_commits_the_budget_and_domains_take_from_the_pool)
{
	cr_assert_eq(arena_open(32 * MiB, 4 * MiB, 0, STK_ARENA_PREFAULT), 0);
	struct stk_arena_stats st = stats();
	cr_assert_eq(st.mapped, 32 * MiB, "the budget is committed at init");
	cr_assert_eq(st.segments, 8);
	for (uint32_t i = 0; i < 8; i++) {
		struct stk_arena_seg sg = segment(i);
		cr_assert_eq(sg.domain, UINT32_MAX, "segment %u belongs to no domain yet", i);
		struct stk_extent all = { .seg = i, .gen = sg.gen, .len = 1 };
		cr_assert_eq(resident_pages(stk__arena_ptr(&A, &all), sg.size),
			     sg.size / STK_ARENA_PAGE, "segment %u is populated", i);
	}
	/* Two domains fill the budget from the pool: no segment is made or closed. */
	struct stk_extent a = must_alloc_in(3 * MiB, 1), b = must_alloc_in(100 * KiB, 2);
	cr_assert_neq(a.seg, b.seg, "two domains never share a segment");
	cr_assert_eq(segment(a.seg).domain, 1);
	cr_assert_eq(segment(b.seg).domain, 2);
	cr_assert_eq(segment(a.seg).gen, 1 + a.seg, "a pool segment, not a new one");
	struct stk_extent c = must_alloc_in(1 * KiB, 2);
	cr_assert_eq(c.seg, b.seg, "a domain fills its own segment before taking another");
	st = stats();
	cr_assert_eq(st.segments, 8);
	cr_assert_eq(st.mapped, 32 * MiB);
	check();
	stk__arena_free(&A, &a);
	stk__arena_free(&A, &b);
	stk__arena_free(&A, &c);
	/* A domain's emptied segment stays its own: it never returns to the pool. */
	cr_assert_eq(segment(a.seg).domain, 1);
	check();
}

/* SPDX-License-Identifier: MIT */
/*
 * The tier-0 arena: segments, and the allocator that packs objects into them.
 *
 * Size classes, for objects of 1 B to small_max (32 KiB by default): 64 B,
 * then eight classes per doubling, 2^k + j * 2^(k-3) for j = 1..8 (72, 80,
 * ..., 128, 144, ..., 32768: 73 classes up to 32 KiB).  An object is charged
 * its class, which wastes less than 1/9 of it (< 12.5 %) from 64 B up and
 * about 6 % on average; objects under 64 B are charged 64 B.  A slot is
 * aligned to its class's step (8 B at least; 512 B from 4 KiB up).
 *
 * Slabs.  A slab is an extent of lcm(class, 4 KiB) * m bytes, m the least
 * that makes it >= 64 KiB and >= 8 slots, so a slab is exactly its slots and
 * wastes no tail (64-120 KiB up to 8 KiB classes, 8 slots above, 256 KiB at
 * most).  A slab whose slots are all free gives its pages back at once.  Slabs
 * with free slots are used in list order, and a full slab that frees a slot
 * joins the end of the list, so slabs drained by eviction get time to empty.
 *
 * Why slabs stop at 32 KiB: above it, a page-rounded extent wastes less than
 * a class (at most 4095 B, under 1/9 of any object from 36 KiB; ~2 % of a
 * 110 KB JPEG against ~6 % for a class), and extents of mixed sizes merge
 * when freed, where a slab is stuck with its class until it is empty.
 *
 * Extents, for objects above small_max and below huge_min: page-granular
 * runs of a shared segment, kept per segment in a two-level segregated fit
 * (TLSF, Masmano et al., ECRTS 2004): free extents are filed by size in bins,
 * exact below 16 pages and 16 per doubling above, with bitmaps that find the
 * smallest non-empty bin above a size in O(1).  The bin of the size itself is
 * searched first (a few entries), so a fit is within 1/16 of the best.  A
 * freed extent merges with its free neighbours at once, found through
 * boundary tags in a per-page array (4 bytes per 4 KiB page: 0.1 %).
 * Segments are tried in index order, so objects pack into the lowest segments
 * and the highest ones empty first.
 *
 * Dedicated segments, for objects of huge_min and more: shards of 64 MiB to
 * 1 GiB, and anything larger than a shared segment, get a memfd of their own,
 * exactly their size rounded up to a page: no fragmentation, and freeing one
 * gives its memory back once clients unmap it.  huge_min >= budget / 1024
 * bounds them to 1024 fds.  Their bytes come out of the budget that shared
 * segments have not taken; when that is short, empty shared segments are
 * closed, and when none is empty the caller gets -EAGAIN and must empty one
 * (stk__arena_evict_hint() names the one holding least).
 *
 * Shared segments are budget / 64 by default (4 MiB to 1 GiB): at most 64
 * fds for them, and emptying one to make way for a shard means evicting about
 * 1/64 of the cache, not all of it.  A small budget gets segments of
 * budget / 8 (up to 64 MiB), and by default only objects larger than a
 * segment get one of their own: with a 64 MiB budget, 4 MiB segments and
 * objects of 2-4 MiB in dedicated segments competing for the budget the
 * shared ones had not mapped, the arena stayed fragmented and the demo's hit
 * ratio fell from 0.99 to 0.92 (0.96-0.97 with these defaults).
 *
 * Measured (tests/cache/test_arena.c, arena_waste, random eviction on a
 * shuffled epoch, evicting in the hinted segment on -EAGAIN): ImageNet-like
 * JPEGs (log-normal, mean 110 KB) in 2 GiB waste 1.8 % (whole pages: 1.9 %)
 * and fill 98 % of the budget with payload; WebDataset-like shards (64 MiB to
 * 1 GiB) in 64 GiB waste under 0.01 % and fill 99.5 %; both at once in
 * 16 GiB waste 0.35 %, fill 98.8 %; small files (log-normal, mean 8 KiB)
 * waste 4.5 % where whole pages waste 26 %.  Slabs up to 256 KiB instead of
 * 32 KiB would waste 4 % on the JPEGs.  A free and an allocation take about
 * 130 ns together.
 *
 * Freed memory in a shared segment stays populated: F_SEAL_FUTURE_WRITE
 * forbids punching holes (fallocate, MADV_REMOVE) even through the daemon's
 * own fd.  The budget still bounds it: segments never add up to more.
 */
#include "cache/arena.h"
#include "cache/arena_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static char empty_object[1];

/* --- segments --- */

static void seg_destroy(struct stk_arena *a, uint32_t idx)
{
	struct stk_arena_segi *s = a->segs[idx];
	if (!s->dedicated) {
		/* An empty shared segment is one free extent. */
		for (unsigned fl = 0; fl < FL_N; fl++)
			for (unsigned sl = 0; sl < SL_N; sl++)
				for (uint32_t i = s->bins[fl][sl], nx; i; i = nx) {
					nx = a->nodes[i].next;
					stk__arena_node_put(a, i);
				}
		a->ext_free -= s->ext_free;
		uint32_t k = 0;
		while (k < a->nnormal && a->normal[k] != idx)
			k++;
		memmove(a->normal + k, a->normal + k + 1, (a->nnormal - k - 1) * sizeof(uint32_t));
		a->nnormal--;
	} else {
		a->ndedicated--;
	}
	if (a->gone)
		a->gone(a->gone_arg, idx, s->gen);
	munmap(s->map, s->size);
	close(s->fd);
	a->mapped -= s->size;
	a->nsegs--;
	free(s->tag);
	free(s);
	a->segs[idx] = NULL;
}

static int seg_create(struct stk_arena *a, uint64_t size, bool dedicated, uint32_t dom,
		      uint32_t *idxp)
{
	struct stk_arena_segi *s = NULL;
	char name[96];
	int r;
	uint32_t idx = 0;
	if (!dedicated && (r = stk__arena_node_reserve(a)))
		return r;
	while (idx < a->segcap && a->segs[idx])
		idx++;
	if (idx == a->segcap) {
		uint32_t cap = a->segcap ? a->segcap * 2 : 16;
		struct stk_arena_segi **v = realloc(a->segs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + a->segcap, 0, (cap - a->segcap) * sizeof(*v));
		a->segs = v;
		a->segcap = cap;
	}
	if (!dedicated) {
		uint32_t *v = realloc(a->normal, (a->nnormal + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->normal = v;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->map = MAP_FAILED;
	s->dedicated = dedicated;
	s->dom = dom;
	s->size = size;
	s->gen = ++a->gen;
	if (!dedicated) {
		s->npg = (uint32_t)(size / PAGE);
		s->tag = calloc(s->npg, sizeof(*s->tag));
		if (!s->tag)
			goto nomem;
	}
	snprintf(name, sizeof(name), "%s.%u", a->name, s->gen);
	unsigned mfd = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	if (a->flags & STK_ARENA_HUGETLB)
		mfd |= MFD_HUGETLB;
	s->fd = memfd_create(name, mfd);
	if (s->fd < 0 || ftruncate(s->fd, (off_t)size) < 0)
		goto fail;
	/* With hugetlb, the mapping reserves the huge pages: it fails here, not at a fault. */
	s->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->map == MAP_FAILED)
		goto fail;
	madvise(s->map, size, MADV_DONTFORK);
	if (a->thp && !(a->flags & STK_ARENA_HUGETLB))
		madvise(s->map, size, MADV_HUGEPAGE);
	/*
	 * After this no new writable mapping and no write(2), fallocate or
	 * resize succeeds, through any fd; the mapping made above still writes.
	 */
	if (fcntl(s->fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
		goto fail;
	a->segs[idx] = s;
	a->nsegs++;
	a->mapped += size;
	if (dedicated) {
		a->ndedicated++;
	} else {
		uint32_t k = a->nnormal;
		while (k && a->normal[k - 1] > idx) {
			a->normal[k] = a->normal[k - 1];
			k--;
		}
		a->normal[k] = idx;
		a->nnormal++;
		stk__arena_ext_give(a, idx, 0, s->npg);
	}
	*idxp = idx;
	return 0;
nomem:
	errno = ENOMEM;
fail:
	r = -errno;
	if (s->map != MAP_FAILED)
		munmap(s->map, size);
	if (s->fd >= 0)
		close(s->fd);
	free(s->tag);
	free(s);
	return r;
}

static bool seg_empty(const struct stk_arena_segi *s)
{
	return !s->dedicated && s->charged == 0 && s->slab_free == 0;
}

/*
 * Whether make_room() may close s for domain slot dom: s is empty, and it
 * belongs to another domain (dom cannot use it) or is smaller than below
 * (when below is not 0).
 */
static bool closable(const struct stk_arena_segi *s, uint32_t dom, uint64_t below)
{
	return seg_empty(s) && (s->dom != dom || !below || s->size < below);
}

/*
 * Makes budget - mapped >= need for domain slot dom by closing empty shared
 * segments, the highest first (see closable()).  Closes nothing and returns
 * false when that cannot make room.
 */
static bool make_room(struct stk_arena *a, uint64_t need, uint64_t below, uint32_t dom)
{
	uint64_t room = a->budget - a->mapped, could = room;
	if (room >= need)
		return true;
	for (uint32_t k = 0; k < a->nnormal; k++) {
		struct stk_arena_segi *s = a->segs[a->normal[k]];
		if (closable(s, dom, below))
			could += s->size;
	}
	if (could < need)
		return false;
	for (uint32_t k = a->nnormal; k-- > 0 && a->budget - a->mapped < need;) {
		struct stk_arena_segi *s = a->segs[a->normal[k]];
		if (closable(s, dom, below))
			seg_destroy(a, a->normal[k]);
	}
	return true;
}

/*
 * Finds npg contiguous pages in a shared segment of domain slot dom, making
 * one if the budget allows.
 */
int stk__arena_ext_alloc(struct stk_arena *a, uint32_t dom, uint32_t npg, uint32_t *segp,
			 uint32_t *pgp)
{
	/* The domain's own segments, then the pool's (never given out: any domain may have one). */
	for (uint32_t pass = 0; pass < 2; pass++) {
		for (uint32_t k = 0; k < a->nnormal; k++) {
			struct stk_arena_segi *s = a->segs[a->normal[k]];
			if (s->dom != (pass ? POOL : dom))
				continue;
			uint32_t pg = stk__arena_ext_take(a, a->normal[k], npg);
			if (pg != NONE) {
				s->dom = dom;
				*segp = a->normal[k];
				*pgp = pg;
				return 0;
			}
		}
	}
	uint64_t need = round_up((uint64_t)npg * PAGE, a->align);
	/* Empty segments too small for this are worth more merged into one that fits. */
	if (!make_room(a, need, need, dom))
		return -EAGAIN;
	uint64_t size = a->budget - a->mapped;
	size = size < a->seg_size ? size / a->align * a->align : a->seg_size;
	uint32_t idx;
	int r = seg_create(a, size, false, dom, &idx);
	if (r)
		return r;
	*segp = idx;
	*pgp = stk__arena_ext_take(a, idx, npg);
	return 0;
}

/* --- trust domains --- */

/*
 * The slot of domain id in doms[], added if new (with its slab lists), or
 * NONE for want of memory.  Domains are few (one per uid that connects), and
 * a slot is never freed: it costs 8 bytes per size class.
 */
static uint32_t dom_slot(struct stk_arena *a, uint32_t id)
{
	for (uint32_t i = 0; i < a->ndoms; i++)
		if (a->doms[i] == id)
			return i;
	uint32_t *d = realloc(a->doms, (a->ndoms + 1) * sizeof(*d));
	if (!d)
		return NONE;
	a->doms = d;
	if (a->nclasses) {
		size_t n = 2 * (size_t)a->nclasses;
		uint32_t *p = realloc(a->partial, (a->ndoms + 1) * n * sizeof(*p));
		if (!p)
			return NONE;
		memset(p + a->ndoms * n, 0, n * sizeof(*p));
		a->partial = p;
	}
	d[a->ndoms] = id;
	return a->ndoms++;
}

/* --- the interface --- */

static bool thp_advise(void)
{
	char b[128];
	int fd = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return false;
	b[n] = 0;
	return strstr(b, "[advise]") != NULL;
}

/* The default huge page size, which MFD_HUGETLB uses: hugetlbfs reports it as st_blksize. */
static int hugetlb_page(uint64_t *out)
{
	struct stat st;
	int fd = memfd_create("stoker-probe", MFD_CLOEXEC | MFD_HUGETLB);
	if (fd < 0)
		return -errno;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (!r)
		*out = (uint64_t)st.st_blksize;
	return r;
}

#define OPT(o, f)                                                                                  \
	((o)->opts_size >= offsetof(struct stk_arena_opts, f) + sizeof((o)->f) ? (o)->f : 0)

/* Fills the budget with populated shared segments in the pool (STK_ARENA_PREFAULT). */
static int prefault(struct stk_arena *a)
{
	while (a->budget - a->mapped >= a->align) {
		uint64_t size = a->budget - a->mapped;
		size = size < a->seg_size ? size / a->align * a->align : a->seg_size;
		uint32_t idx;
		int r = seg_create(a, size, false, POOL, &idx);
		if (!r) {
			struct stk_extent all = { .seg = idx, .off = 0, .len = size };
			r = stk__arena_populate(a, &all);
		}
		if (r) {
			stk__arena_fini(a);
			return r;
		}
	}
	return 0;
}

int stk__arena_init(struct stk_arena *a, const struct stk_arena_opts *o)
{
	int r;
	memset(a, 0, sizeof(*a));
	if (!o || o->opts_size < offsetof(struct stk_arena_opts, budget) + sizeof(o->budget))
		return -EINVAL;
	a->budget = o->budget;
	a->flags = OPT(o, flags);
	if (a->flags & ~(unsigned)(STK_ARENA_HUGETLB | STK_ARENA_PREFAULT))
		return -EINVAL;
	a->gone = OPT(o, gone);
	a->gone_arg = OPT(o, gone_arg);
	const char *name = OPT(o, name);
	snprintf(a->name, sizeof(a->name), "%s", name ? name : "stoker-arena");
	a->align = PAGE;
	if (a->flags & STK_ARENA_HUGETLB) {
		r = hugetlb_page(&a->align);
		if (r)
			return r;
		if (a->align < PAGE || a->align % PAGE)
			return -EINVAL;
	} else {
		a->thp = thp_advise();
	}

	uint64_t seg = OPT(o, seg_size);
	if (!seg) {
		/*
		 * budget/64 (at most 64 fds), and at least budget/8 up to
		 * 64 MiB: a small budget's segments must still hold several of
		 * its larger objects, or holes stall prefetching.
		 */
		uint64_t eighth = a->budget / 8 < (64ull << 20) ? a->budget / 8 : 64ull << 20;
		uint64_t want = a->budget / 64 > eighth ? a->budget / 64 : eighth;
		seg = 4ull << 20;
		while (seg < want && seg < (1ull << 30))
			seg *= 2;
	}
	if (seg > a->budget)
		seg = a->budget;
	seg = seg / a->align * a->align;
	if (seg / PAGE >= SLAB_BIT) /* page tags must fit 31 bits */
		return -EINVAL;
	a->seg_size = seg;

	uint64_t huge = OPT(o, huge_min);
	if (!huge) {
		/*
		 * Objects smaller than a segment share segments; only larger
		 * ones get their own.  A segment of its own takes budget the
		 * shared segments have not mapped, and with a small budget
		 * (64 MiB: 4 MiB segments) objects of 2-4 MiB competing for it
		 * kept the arena fragmented and prefetching stalled: the demo's
		 * hit ratio fell from 0.99 to 0.92.  An object of exactly a
		 * segment's size (a 64 MiB shard in 64 MiB segments) takes a
		 * whole shared segment: mapped once by clients, read through
		 * the resident table, and a prefaulted segment's pages are used.
		 */
		huge = seg + 1;
	}
	huge = huge > seg ? seg + 1 : round_up(huge, PAGE);
	a->huge_min = huge;

	uint64_t small = OPT(o, small_max);
	if (!small)
		small = DEF_SMALL;
	if (small < 64 || small > (1u << 20) || (small & (small - 1)))
		return -EINVAL;
	while (small >= 64 && (stk__arena_max_slab(small) > seg || small >= huge))
		small /= 2;
	a->small_max = small >= 64 ? small : 0;
	a->nclasses = a->small_max ? class_of(a->small_max) + 1 : 0;
	if (a->nclasses) {
		a->cls_size = calloc(a->nclasses, sizeof(uint32_t));
		a->cls_slab = calloc(a->nclasses, sizeof(uint32_t));
		if (!a->cls_size || !a->cls_slab) {
			stk__arena_fini(a);
			return -ENOMEM;
		}
		for (unsigned c = 0; c < a->nclasses; c++) {
			a->cls_size[c] = (uint32_t)class_bytes(c);
			a->cls_slab[c] = (uint32_t)stk__arena_slab_bytes(class_bytes(c));
		}
	}
	/* The first segment is domain 0's: any other closes it when it needs the room. */
	if (dom_slot(a, 0) == NONE) {
		stk__arena_fini(a);
		return -ENOMEM;
	}
	if (seg && (a->flags & STK_ARENA_PREFAULT))
		return prefault(a);
	if (seg) {
		uint32_t idx;
		r = seg_create(a, seg, false, 0, &idx);
		if (r) {
			stk__arena_fini(a);
			return r;
		}
	}
	return 0;
}

void stk__arena_fini(struct stk_arena *a)
{
	if (!a)
		return;
	for (uint32_t i = 0; i < a->segcap; i++) {
		struct stk_arena_segi *s = a->segs[i];
		if (!s)
			continue;
		munmap(s->map, s->size);
		close(s->fd);
		free(s->tag);
		free(s);
	}
	for (uint32_t i = 1; i < a->slabcap; i++)
		free(a->slabs[i]);
	free(a->segs);
	free(a->normal);
	free(a->nodes);
	free(a->slabs);
	free(a->slabstack);
	free(a->cls_size);
	free(a->cls_slab);
	free(a->partial);
	free(a->doms);
	memset(a, 0, sizeof(*a));
}

/*
 * The fewest charged bytes (the highest of equals, since allocations pack
 * low): emptying it makes room for anything a shared segment of its size can
 * hold, and gives its bytes to a dedicated segment.
 */
uint32_t stk__arena_evict_hint(const struct stk_arena *a)
{
	uint32_t best = STK_ARENA_NOSEG;
	for (uint32_t k = 0; k < a->nnormal; k++) {
		const struct stk_arena_segi *s = a->segs[a->normal[k]];
		if (s->charged && (best == STK_ARENA_NOSEG || s->charged <= a->segs[best]->charged))
			best = a->normal[k];
	}
	return best;
}

int stk__arena_alloc(struct stk_arena *a, uint64_t size, uint32_t domain, struct stk_extent *out)
{
	int r;
	memset(out, 0, sizeof(*out));
	out->seg = STK_ARENA_NOSEG;
	if (size == 0) {
		a->objects++;
		return 0;
	}
	bool small = size <= a->small_max, huge = size >= a->huge_min;
	uint64_t charge;
	if (small)
		charge = class_bytes(class_of(size));
	else if (huge)
		charge = round_up(size, a->align);
	else
		charge = round_up(size, PAGE);
	out->charge = charge;
	if (charge > a->budget)
		return -EFBIG;
	if (charge > a->budget - a->charged)
		return -ENOSPC;

	uint32_t seg, dom = dom_slot(a, domain);
	if (dom == NONE)
		return -ENOMEM;
	if (!huge && (r = stk__arena_node_reserve(a)))
		return r;
	if (small) {
		unsigned c = class_of(size);
		uint32_t i = *partial_of(a, dom, c);
		if (!i && (r = stk__arena_slab_new(a, dom, c, &i)))
			goto fail;
		struct stk_arena_slab *sl = a->slabs[i];
		uint32_t w = 0;
		while (!sl->bits[w])
			w++;
		unsigned b = (unsigned)__builtin_ctzll(sl->bits[w]);
		sl->bits[w] &= ~(1ull << b);
		if (--sl->nfree == 0)
			stk__arena_partial_unlink(a, sl);
		seg = sl->seg;
		out->off = sl->off + (uint64_t)(w * 64 + b) * charge;
		a->segs[seg]->slab_free -= charge;
		a->slab_free -= charge;
	} else if (!huge) {
		uint32_t pg;
		r = stk__arena_ext_alloc(a, dom, (uint32_t)(charge / PAGE), &seg, &pg);
		if (r)
			goto fail;
		a->runs++;
		out->off = (uint64_t)pg * PAGE;
	} else {
		r = make_room(a, charge, 0, dom) ? seg_create(a, charge, true, dom, &seg) : -EAGAIN;
		if (r)
			goto fail;
		out->off = 0;
	}
	struct stk_arena_segi *s = a->segs[seg];
	s->charged += charge;
	a->charged += charge;
	a->payload += size;
	a->objects++;
	out->seg = seg;
	out->gen = s->gen;
	out->len = size;
	out->charge = charge;
	return 0;
fail:
	out->seg = STK_ARENA_NOSEG;
	return r;
}

void stk__arena_free(struct stk_arena *a, const struct stk_extent *e)
{
	if (e->seg == STK_ARENA_NOSEG) {
		if (e->len == 0)
			a->objects--;
		return;
	}
	struct stk_arena_segi *s = e->seg < a->segcap ? a->segs[e->seg] : NULL;
	if (!s || s->gen != e->gen || e->len == 0 || e->off + e->charge > s->size) {
		stk_err("arena: free of an extent it did not give (segment %u gen %u offset %llu)",
			e->seg, e->gen, (unsigned long long)e->off);
		return;
	}
	bool small = e->len <= a->small_max, huge = e->len >= a->huge_min;
	if (huge) {
		if (!s->dedicated || e->off || e->charge != s->size)
			goto bad;
		a->charged -= s->charged;
		a->payload -= e->len;
		a->objects--;
		seg_destroy(a, e->seg);
		return;
	}
	if (s->dedicated)
		goto bad;
	if (small) {
		uint32_t t = s->tag[e->off / PAGE];
		struct stk_arena_slab *sl =
		    (t & SLAB_BIT) && (t & ~SLAB_BIT) < a->slabcap ? a->slabs[t & ~SLAB_BIT] : NULL;
		unsigned c = class_of(e->len);
		if (!sl || sl->seg != e->seg || sl->cls != c || e->charge != a->cls_size[c] ||
		    (e->off - sl->off) % e->charge)
			goto bad;
		uint64_t slot = (e->off - sl->off) / e->charge;
		if (sl->bits[slot / 64] & (1ull << (slot % 64)))
			goto bad; /* freed twice */
		sl->bits[slot / 64] |= 1ull << (slot % 64);
		s->slab_free += e->charge;
		a->slab_free += e->charge;
		sl->nfree++;
		if (sl->nfree == sl->nslots)
			stk__arena_slab_release(a, t & ~SLAB_BIT);
		else if (!sl->listed)
			stk__arena_partial_link(a, t & ~SLAB_BIT, false);
	} else {
		uint32_t pg = (uint32_t)(e->off / PAGE);
		if (e->charge != round_up(e->len, PAGE) || e->off % PAGE ||
		    (s->tag[pg] & SLAB_BIT) || free_at(a, e->seg, pg, false))
			goto bad; /* not an extent, or freed already */
		stk__arena_ext_give(a, e->seg, pg, (uint32_t)(e->charge / PAGE));
		a->runs--;
	}
	s->charged -= e->charge;
	a->charged -= e->charge;
	a->payload -= e->len;
	a->objects--;
	return;
bad:
	stk_err("arena: free of a bad extent (segment %u offset %llu length %llu charge %llu)",
		e->seg, (unsigned long long)e->off, (unsigned long long)e->len,
		(unsigned long long)e->charge);
}

void *stk__arena_ptr(const struct stk_arena *a, const struct stk_extent *e)
{
	if (e->seg == STK_ARENA_NOSEG)
		return empty_object;
	return a->segs[e->seg]->map + e->off;
}

int stk__arena_populate(struct stk_arena *a, const struct stk_extent *e)
{
	if (e->seg == STK_ARENA_NOSEG || !e->len)
		return 0;
	struct stk_arena_segi *s = a->segs[e->seg];
	uint64_t pg = (a->flags & STK_ARENA_HUGETLB) ? a->align : PAGE;
	uint64_t start = e->off / pg * pg, end = round_up(e->off + e->len, pg);
	if (end > s->size)
		end = s->size;
	if (madvise(s->map + start, end - start, MADV_POPULATE_WRITE) < 0 && errno != EINVAL)
		return -errno;
	/*
	 * One write per page from user space, writing back what is there: the
	 * only population before Linux 5.14, and after MADV_POPULATE_WRITE too.
	 * Under a hypervisor that shadows page tables, the kernel's population
	 * leaves each page's first user access to exit to the hypervisor: a
	 * checksum pass over pages a disk has just filled ran at 0.3 GB/s after
	 * MADV_POPULATE_WRITE alone, 4-7 GB/s after this (docs/nvme.md).
	 */
	for (uint64_t p = start; p < end; p += pg)
		__atomic_fetch_or(s->map + p, (uint8_t)0, __ATOMIC_RELAXED);
	return 0;
}

int stk__arena_segment(const struct stk_arena *a, uint32_t seg, struct stk_arena_seg *out)
{
	const struct stk_arena_segi *s = seg < a->segcap ? a->segs[seg] : NULL;
	if (!s)
		return -ENOENT;
	out->fd = s->fd;
	out->gen = s->gen;
	out->size = s->size;
	out->charged = s->charged;
	out->dedicated = s->dedicated;
	out->domain = s->dom == POOL ? UINT32_MAX : a->doms[s->dom];
	return 0;
}

void stk__arena_stats(const struct stk_arena *a, struct stk_arena_stats *st)
{
	st->budget = a->budget;
	st->charged = a->charged;
	st->payload = a->payload;
	st->mapped = a->mapped;
	st->slab_free = a->slab_free;
	st->extent_free = a->ext_free;
	st->objects = a->objects;
	st->segments = a->nsegs;
	st->dedicated = a->ndedicated;
	st->seg_size = a->seg_size;
	st->small_max = a->small_max;
	st->huge_min = a->huge_min;
}

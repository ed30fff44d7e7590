/* SPDX-License-Identifier: MIT */
/*
 * The arena under tier 0: a few large shared segments (memfds) into which
 * objects are packed, so the daemon holds a handful of fds however many
 * objects are resident, and a client maps each segment once, read-only, and
 * reads any object in it as (segment, offset, length).
 *
 * Segments.  Each is a memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING, plus
 * MFD_HUGETLB with STK_ARENA_HUGETLB), mapped once read-write in the daemon,
 * then sealed F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL:
 * the daemon's mapping stays writable, while no other fd or mapping of the
 * segment, however it was opened, can write, resize or punch it.  Pages are
 * populated lazily, by the first write (see stk__arena_populate()).  The sum
 * of the segments' sizes never exceeds the budget, so neither can the memory
 * the arena holds, whatever the mix of objects.
 *
 * By its size, an object is stored as:
 *  - 0 bytes: no storage, charged 0 (the extent names no segment).
 *  - 1 B to small_max (32 KiB): a slot of a size class in a slab.
 *  - above small_max, below huge_min: a page-aligned extent in a shared
 *    segment.
 *  - huge_min and above: a segment of its own, exactly the object's size
 *    rounded up to a page (a huge page with STK_ARENA_HUGETLB), created by
 *    stk__arena_alloc() and closed by stk__arena_free().  That is how an
 *    object larger than a segment is stored.
 * See arena.c for why these sizes.
 *
 * Charges.  Every extent is charged the bytes it keeps from others: its size
 * class, its pages, or its segment.  The sum of charges never exceeds the
 * budget, and in every segment charges plus free bytes (free extents, free
 * slab slots) add up to the segment's size; stk__arena_check() verifies both.
 *
 * Trust domains.  A client that maps a segment can read all of it, so every
 * segment holds objects of one trust domain only (a number the caller
 * chooses: stokerd's is the client's uid by default).  The domains share the
 * budget: a domain that needs a segment when the others have mapped the
 * budget closes an empty one of theirs, and -EAGAIN names one to empty when
 * none is.
 *
 * Eviction always ends: once nothing is allocated, any object whose charge
 * fits the budget can be allocated, so a caller that evicts and retries on
 * -ENOSPC and -EAGAIN needs no other way out (but for pinned objects).
 *
 * An arena is not thread-safe: one thread (the daemon's event loop) calls
 * every function here.  The bytes behind an extent may be written and read
 * from any thread, through an address got from stk__arena_ptr().
 *
 * Needs Linux 5.1 (F_SEAL_FUTURE_WRITE); MADV_POPULATE_WRITE (5.14) is used
 * where present.
 *
 * Fork: a child inherits the segment fds (closed on exec) but not the
 * daemon's mappings (MADV_DONTFORK), so it cannot write into the arena; it
 * must not call any function here.
 */
#ifndef STOKER_ARENA_H
#define STOKER_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The granularity of extents and of segment sizes (without hugetlb). */
#define STK_ARENA_PAGE 4096u
/* stk_extent.seg of a zero-byte object. */
#define STK_ARENA_NOSEG UINT32_MAX

/* stk_arena_opts.flags */
enum {
	/*
	 * Back segments with hugetlb pages (MFD_HUGETLB, the default huge page
	 * size), for nodes whose operator reserved them (vm.nr_hugepages).
	 * Segments and dedicated objects are then rounded up to huge pages.
	 */
	STK_ARENA_HUGETLB = 1u << 0,
	/*
	 * Commit the budget at init: shared segments that fill it are made and
	 * their pages populated, in a pool no domain owns yet; a domain that
	 * needs a segment takes one from it before making one.  Ingest then
	 * writes into pages that exist (first touch cost 0.57 CPU-s per GB on
	 * our VM), and the memory is the daemon's from the start.
	 */
	STK_ARENA_PREFAULT = 1u << 1,
};

struct stk_arena_opts {
	size_t opts_size; /* sizeof(struct stk_arena_opts): fields past it read as 0 */
	uint64_t budget;  /* bytes: segments never add up to more */
	/*
	 * Bytes per shared segment; 0 picks the larger of budget/64 and
	 * budget/8 (at most 64 MiB), rounded up to a power of two within
	 * [4 MiB, 1 GiB].  Rounded down to the page (or huge page) and to the
	 * budget; the last segment may be smaller, to fit.
	 */
	uint64_t seg_size;
	unsigned flags;	  /* STK_ARENA_* */
	const char *name; /* memfd name prefix, as in /proc/PID/fd; NULL: "stoker-arena" */
	/* Tuning, 0 for the defaults. */
	uint64_t small_max; /* largest slab object: a power of two, default 32 KiB */
	/*
	 * Smallest object given a segment of its own.  Default: seg_size + 1,
	 * so only objects larger than a shared segment get one (at most
	 * budget/seg_size of them); larger values mean the same.
	 */
	uint64_t huge_min;
	/* Called when a segment is closed (not at stk__arena_fini()), or NULL. */
	void (*gone)(void *arg, uint32_t seg, uint32_t gen);
	void *gone_arg;
};

/* Where an object's bytes are. Filled by stk__arena_alloc(); the caller keeps it. */
struct stk_extent {
	uint32_t seg;	 /* segment index, or STK_ARENA_NOSEG for a zero-byte object */
	uint32_t gen;	 /* the segment's generation: an index reused later gets a new one */
	uint64_t off;	 /* byte offset in the segment */
	uint64_t len;	 /* the object's bytes */
	uint64_t charge; /* bytes counted against the budget: len plus its internal waste */
};

/* One segment, for delivery: clients map fd (size bytes) read-only and key it by (index, gen). */
struct stk_arena_seg {
	int fd;		  /* owned by the arena: dup it to keep it past the segment's end */
	uint32_t gen;	  /* as stk_extent.gen */
	uint64_t size;	  /* bytes */
	uint64_t charged; /* charges of the extents in it: empty it to give its bytes back */
	bool dedicated;	  /* holds one huge object, and ends when that object is freed */
	uint32_t domain;  /* the trust domain of every object in it */
};

struct stk_arena_stats {
	uint64_t budget;
	uint64_t charged;     /* sum of live extents' charges */
	uint64_t payload;     /* sum of live extents' lengths */
	uint64_t mapped;      /* sum of segments' sizes: <= budget */
	uint64_t slab_free;   /* bytes in free slots of slabs */
	uint64_t extent_free; /* bytes in free extents of shared segments */
	uint64_t objects;     /* live extents, zero-byte ones included */
	uint32_t segments;    /* live segments, each one fd and one mapping */
	uint32_t dedicated;   /* of which hold one huge object each */
	uint64_t seg_size;    /* as settled by stk__arena_init() */
	uint64_t small_max;   /* 0 when segments are too small for slabs */
	uint64_t huge_min;
};

struct stk_arena_segi;
struct stk_arena_slab;
struct stk_arena_node;

/* Embed it; every field is private (read counters through stk__arena_stats()). */
struct stk_arena {
	uint64_t budget, seg_size, small_max, huge_min;
	uint64_t align; /* segment sizes are multiples of it: a page, or a huge page */
	unsigned flags;
	bool thp; /* shmem_enabled says advise: MADV_HUGEPAGE on each segment */
	char name[64];
	uint64_t charged, payload, mapped, slab_free, ext_free, objects;
	uint32_t nsegs, ndedicated, gen;
	struct stk_arena_segi **segs; /* by index; NULL where none */
	uint32_t segcap;
	uint32_t *normal; /* indexes of shared segments, ascending */
	uint32_t nnormal;
	struct stk_arena_node *nodes; /* free extents; [0] unused */
	uint32_t nodecap, nodefree;
	uint32_t runs;		       /* slabs and extents allocated in shared segments */
	struct stk_arena_slab **slabs; /* [0] unused */
	uint32_t slabcap, slabfree;
	unsigned nclasses;
	uint32_t *cls_size, *cls_slab; /* bytes per slot, per slab */
	void (*gone)(void *arg, uint32_t seg, uint32_t gen);
	void *gone_arg;
	uint32_t *doms; /* trust domains' ids, by slot */
	uint32_t ndoms;
	uint32_t *partial;   /* per domain slot and class: head, tail of slabs
			      * with free slots */
	uint32_t *slabstack; /* indexes of unused slabs[] entries */
};

/*
 * Prepares a and creates its first segment, so that a hugetlb arena on a node
 * without reserved huge pages fails here rather than at the first object.
 * Returns 0, or -EINVAL when o is NULL, o->opts_size is too small to hold
 * budget, or the options contradict each other; -ENOMEM, -EMFILE, -ENFILE,
 * -EPERM (memfd_create, ftruncate, mmap or F_ADD_SEALS refused; -EINVAL
 * too from a kernel older than 5.1, which lacks F_SEAL_FUTURE_WRITE, or
 * from hugetlb without huge pages to map, -ENOMEM).  On failure
 * nothing needs freeing.  A budget below a page is valid: only zero-byte
 * objects then fit.
 */
int stk__arena_init(struct stk_arena *a, const struct stk_arena_opts *o);

/*
 * Unmaps and closes every segment and frees a's memory; every extent becomes
 * invalid.  Clients' mappings keep their pages alive until they unmap.  a may
 * be NULL, or finished already.
 */
void stk__arena_fini(struct stk_arena *a);

/*
 * Finds room for size bytes of trust domain domain and charges it: in a
 * segment that holds only objects of that domain.  Returns 0 with *out filled;
 * the bytes are writable through stk__arena_ptr() and hold whatever was
 * there before (zeros in a fresh page, or a freed object's bytes).
 *   -EFBIG   the charge exceeds the whole budget: it never fits.
 *   -ENOSPC  the charge exceeds the budget left (budget - charged): evict,
 *            then retry.
 *   -EAGAIN  the charge fits the budget left, but no contiguous room does:
 *            the free bytes are scattered (free slots of other size classes,
 *            holes in shared segments, or, for a dedicated object, shared
 *            segments that are not empty).  Evict in the segment that
 *            stk__arena_evict_hint() names, then retry.
 *   -ENOMEM, -EMFILE, -ENFILE  a new segment could not be created.
 * After a failure *out is no extent (seg is STK_ARENA_NOSEG; do not free
 * it) but out->charge says what the object would be charged, so the caller
 * knows how much to evict; nothing was freed.  The caller gives a successful
 * extent back with stk__arena_free().
 */
int stk__arena_alloc(struct stk_arena *a, uint64_t size, uint32_t domain, struct stk_extent *out);

/*
 * Returns the shared segment to evict from after -EAGAIN: the one whose
 * emptying surely makes room for anything that fits the budget, as it holds
 * the fewest charged bytes.  Evict objects in it (the caller knows which:
 * their extents name it) in the caller's own order, skipping pinned ones, and
 * retry the allocation after each; if all are pinned, evict elsewhere.
 * Random eviction ends too, but evicts far more.  Returns STK_ARENA_NOSEG
 * when no shared segment holds anything.
 */
uint32_t stk__arena_evict_hint(const struct stk_arena *a);

/*
 * Gives back e's room and charge.  The caller must know that no client can
 * still read it (pins): its bytes will be reused.  A dedicated segment is
 * unmapped and closed here, which frees its pages (unless a client still maps
 * them) and so takes time in proportion: 0.3 s for 1 GiB of 4 KiB pages on
 * our 2-core VM.  Freeing a zero-byte extent only counts it.
 */
void stk__arena_free(struct stk_arena *a, const struct stk_extent *e);

/*
 * Returns the daemon's writable address of e's first byte, valid until e is
 * freed; for a zero-byte extent, a valid address of no bytes.
 */
void *stk__arena_ptr(const struct stk_arena *a, const struct stk_extent *e);

/*
 * Pre-faults the pages under e (MADV_POPULATE_WRITE, or one touch per page
 * where the kernel lacks it, before 5.14), so that the ingest path does not
 * take a fault per page while writing.  Contents are unchanged.
 * Returns 0, or -ENOMEM (or -EFAULT) when the memory could not be had.
 */
int stk__arena_populate(struct stk_arena *a, const struct stk_extent *e);

/* Describes segment seg. Returns 0 with *out filled, or -ENOENT when no segment has that index. */
int stk__arena_segment(const struct stk_arena *a, uint32_t seg, struct stk_arena_seg *out);

/* Fills *st with a's counters. */
void stk__arena_stats(const struct stk_arena *a, struct stk_arena_stats *st);

/*
 * Verifies the arena's bookkeeping: charges within the budget; in every
 * segment, charges + free extents + free slab slots == its size; free extents
 * coalesced, filed in the right lists and disjoint from slabs; every slab's
 * count of free slots true.  Costs a walk of every segment: for tests.
 * Returns 0, or -EUCLEAN with err naming the first inconsistency.
 */
int stk__arena_check(const struct stk_arena *a, char *err, size_t errlen);

#endif

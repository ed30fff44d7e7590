/* SPDX-License-Identifier: MIT */
/*
 * Offline cache policies over a trace of object gets, for tier_replay: the
 * hits a two-tier cache (RAM, then NVMe) of given byte budgets would have
 * had under LRU, MosaicML Streaming's LRU, keep-once-full and Belady's
 * farthest-next-use.  Pure computation: no I/O, no daemon.
 *
 * Every policy caches on demand only (an object enters on its get, never
 * ahead of it), charges each object its size rounded up to a page (as
 * stokerd charges its RAM budget), and never caches an object larger than
 * the RAM budget.  A hit is a get served without reading the backend; its
 * tier is where the object was when asked for.
 */
#ifndef STK_BENCH_TIER_SIM_H
#define STK_BENCH_TIER_SIM_H

#include <stddef.h>
#include <stdint.h>

enum tsim_policy {
	/* LRU on RAM; RAM's victims go to an LRU on NVMe; an NVMe hit moves to RAM. */
	TSIM_LRU,
	/*
	 * MosaicML Streaming: one LRU cache of RAM + NVMe bytes (its cache is a
	 * local directory, evicting least recently used shards once over its
	 * limit).  Its hits are counted as NVMe hits when there is an NVMe
	 * budget, else as RAM hits.
	 */
	TSIM_STREAMING,
	/* The first objects that fit stay forever: RAM first, then NVMe. */
	TSIM_KEEP,
	/*
	 * Belady's farthest next use on RAM, its victims demoted to NVMe, which
	 * also evicts by farthest next use.  With sizes that vary, exact
	 * optimality is NP-hard; this is the usual reference.  Its hits in RAM
	 * plus NVMe are those of farthest-next-use on one cache of both budgets.
	 */
	TSIM_BELADY,
	TSIM_NPOLICIES
};

/* Per epoch counts. */
struct tsim_epoch {
	uint64_t hits_ram, hits_nvme, misses;
	uint64_t miss_bytes; /* bytes read from the backend */
};

struct tsim_trace {
	const uint32_t *obj;  /* object id of each get, in order */
	size_t n;	      /* gets */
	const uint64_t *size; /* size in bytes of each object id */
	uint32_t nobj;	      /* object ids are < nobj */
	size_t epoch_len;     /* gets per epoch: epoch of get i is i / epoch_len */
	uint32_t epochs;
};

/* Returns the policy's short name ("lru", "streaming", "keep", "belady"). */
const char *tsim_name(enum tsim_policy p);

/*
 * Replays t under policy p with budgets ram and nvme (bytes; nvme 0: RAM
 * only) and fills out[0 .. t->epochs - 1].  Returns 0, -EINVAL for a trace
 * that names an object >= nobj or an epoch_len of 0, -ENOMEM.
 */
int tsim_run(enum tsim_policy p, const struct tsim_trace *t, uint64_t ram, uint64_t nvme,
	     struct tsim_epoch *out);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * stk__arena_check(): a walk of every segment that verifies the arena's
 * bookkeeping, for tests (see arena.h).
 */
#include "cache/arena_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(err, errlen, __VA_ARGS__);                                                \
		r = -EUCLEAN;                                                                      \
		goto out;                                                                          \
	} while (0)

int stk__arena_check(const struct stk_arena *a, char *err, size_t errlen)
{
	int r = 0;
	uint8_t *seen = NULL; /* per page of the segment being checked: 1 free, 2 slab */
	uint64_t mapped = 0, charged = 0, sfree = 0, efree = 0;
	uint32_t nsegs = 0, ndedic = 0, nnormal = 0, nslabs = 0, live = 0;
	if (a->charged > a->budget || a->mapped > a->budget)
		FAIL("charged %llu or mapped %llu exceeds the budget %llu",
		     (unsigned long long)a->charged, (unsigned long long)a->mapped,
		     (unsigned long long)a->budget);
	for (uint32_t i = 0; i < a->segcap; i++) {
		const struct stk_arena_segi *s = a->segs[i];
		if (!s)
			continue;
		nsegs++;
		mapped += s->size;
		charged += s->charged;
		if (s->dedicated) {
			ndedic++;
			if (s->charged != s->size || s->slab_free || s->ext_free)
				FAIL("dedicated segment %u: charged %llu of %llu", i,
				     (unsigned long long)s->charged, (unsigned long long)s->size);
			continue;
		}
		if (nnormal >= a->nnormal || a->normal[nnormal] != i)
			FAIL("shared segment %u is missing from the ordered list", i);
		nnormal++;
		if (s->charged + s->slab_free + s->ext_free != s->size)
			FAIL(
			    "segment %u: charged %llu + slab free %llu + extents free %llu != size "
			    "%llu",
			    i, (unsigned long long)s->charged, (unsigned long long)s->slab_free,
			    (unsigned long long)s->ext_free, (unsigned long long)s->size);
		free(seen);
		seen = calloc(s->npg, 1);
		if (!seen)
			FAIL("no memory to check");
		uint64_t ef = 0;
		for (unsigned fl = 0; fl < FL_N; fl++) {
			for (unsigned sl = 0; sl < SL_N; sl++) {
				uint32_t prev = 0;
				bool any = s->bins[fl][sl] != 0;
				if (any != !!(s->slmap[fl] & (1u << sl)))
					FAIL("segment %u: bitmap of bin %u/%u is wrong", i, fl, sl);
				for (uint32_t n = s->bins[fl][sl]; n;
				     prev = n, n = a->nodes[n].next) {
					const struct stk_arena_node *nd = &a->nodes[n];
					unsigned f2, s2;
					if (n >= a->nodecap || !nd->used || nd->seg != i ||
					    nd->prev != prev)
						FAIL("segment %u: bin %u/%u is mislinked", i, fl,
						     sl);
					bin_of(nd->npg, &f2, &s2);
					if (!nd->npg || f2 != fl || s2 != sl ||
					    (uint64_t)nd->pg + nd->npg > s->npg)
						FAIL("segment %u: extent of %u pages at %u in bin "
						     "%u/%u",
						     i, nd->npg, nd->pg, fl, sl);
					if (s->tag[nd->pg] != n ||
					    s->tag[nd->pg + nd->npg - 1] != n)
						FAIL("segment %u: extent at page %u lacks its tags",
						     i, nd->pg);
					if (nd->pg && free_at(a, i, nd->pg - 1, true))
						FAIL("segment %u: free extents meet at page %u "
						     "unmerged",
						     i, nd->pg);
					for (uint32_t p = nd->pg; p < nd->pg + nd->npg; p++) {
						if (seen[p])
							FAIL("segment %u: page %u is in two free "
							     "extents",
							     i, p);
						seen[p] = 1;
					}
					ef += (uint64_t)nd->npg * PAGE;
				}
			}
			if (!!s->slmap[fl] != !!(s->flmap & (1u << fl)))
				FAIL("segment %u: first-level bitmap bit %u is wrong", i, fl);
		}
		if (ef != s->ext_free)
			FAIL("segment %u: free extents hold %llu bytes, counted %llu", i,
			     (unsigned long long)ef, (unsigned long long)s->ext_free);
		efree += ef;
		uint64_t sf = 0;
		for (uint32_t k = 1; k < a->slabcap; k++) {
			const struct stk_arena_slab *sl = a->slabs[k];
			if (!sl || sl->seg != i)
				continue;
			if (sl->dom != s->dom)
				FAIL("slab %u is domain slot %u's, in segment %u of slot %u", k,
				     sl->dom, i, s->dom);
			uint64_t cls = a->cls_size[sl->cls], bytes = a->cls_slab[sl->cls];
			uint32_t nf = 0;
			for (uint32_t w = 0; w < (sl->nslots + 63) / 64; w++)
				nf += (uint32_t)__builtin_popcountll(sl->bits[w]);
			if (nf != sl->nfree || !nf == sl->listed || nf == sl->nslots ||
			    sl->nslots != bytes / cls)
				FAIL("slab %u of class %llu: %u free slots of %u, counted %u, "
				     "listed %d",
				     k, (unsigned long long)cls, nf, sl->nslots, sl->nfree,
				     sl->listed);
			for (uint32_t p = (uint32_t)(sl->off / PAGE); p < (sl->off + bytes) / PAGE;
			     p++) {
				if (seen[p] || s->tag[p] != (SLAB_BIT | k))
					FAIL("segment %u: slab %u overlaps page %u", i, k, p);
				seen[p] = 2;
			}
			sf += nf * cls;
			nslabs++;
		}
		if (sf != s->slab_free)
			FAIL("segment %u: slabs have %llu bytes free, counted %llu", i,
			     (unsigned long long)sf, (unsigned long long)s->slab_free);
		sfree += sf;
	}
	for (uint32_t k = 1; k < a->slabcap; k++)
		live += a->slabs[k] != NULL;
	if (live != nslabs)
		FAIL("%u slabs, of which %u in live segments", live, nslabs);
	if (nsegs != a->nsegs || ndedic != a->ndedicated || nnormal != a->nnormal)
		FAIL("%u segments (%u dedicated, %u shared), counted %u (%u, %u)", nsegs, ndedic,
		     nnormal, a->nsegs, a->ndedicated, a->nnormal);
	if (mapped != a->mapped || charged != a->charged || sfree != a->slab_free ||
	    efree != a->ext_free)
		FAIL("totals: mapped %llu/%llu charged %llu/%llu slab free %llu/%llu extents "
		     "free %llu/%llu",
		     (unsigned long long)mapped, (unsigned long long)a->mapped,
		     (unsigned long long)charged, (unsigned long long)a->charged,
		     (unsigned long long)sfree, (unsigned long long)a->slab_free,
		     (unsigned long long)efree, (unsigned long long)a->ext_free);
	for (uint32_t dm = 0; dm < a->ndoms; dm++) {
		for (unsigned c = 0; c < a->nclasses; c++) {
			const uint32_t *ht = partial_of(a, dm, c);
			uint32_t prev = 0;
			for (uint32_t k = ht[0]; k; prev = k, k = a->slabs[k]->next) {
				const struct stk_arena_slab *sl = a->slabs[k];
				if (!sl || !sl->listed || sl->cls != c || sl->dom != dm ||
				    sl->prev != prev)
					FAIL("class %u of domain %u: partial list is mislinked "
					     "at slab %u",
					     c, a->doms[dm], k);
			}
			if (ht[1] != prev)
				FAIL("class %u of domain %u: partial list's tail is %u, not %u", c,
				     a->doms[dm], ht[1], prev);
		}
	}
out:
	free(seen);
	return r;
}

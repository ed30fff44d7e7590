/* SPDX-License-Identifier: MIT */
/*
 * Tier 0: RAM, as an arena of a few large shared memfd segments
 * (cache/arena.h) into which objects are packed.  The daemon holds one fd
 * per segment however many objects are resident, and clients map each
 * segment once, read-only: the segments are sealed against writes through
 * any fd or mapping but the daemon's own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/tier.h"
#include "common/log.h"

static void ram_gone(void *arg, uint32_t seg, uint32_t gen)
{
	struct stk_tier *t = arg;
	if (t->gone)
		t->gone(t->gone_arg, seg, gen);
}

static int ram_init(struct stk_tier *t, char *err, size_t errlen)
{
	struct stk_arena *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	struct stk_arena_opts o = {
		.opts_size = sizeof(o),
		.budget = t->budget,
		.flags = t->flags,
		.name = "stoker",
		.gone = ram_gone,
		.gone_arg = t,
	};
	int r = stk__arena_init(a, &o);
	if (r) {
		snprintf(err, errlen, "cannot set up %llu bytes of RAM segments%s: %s",
			 (unsigned long long)t->budget,
			 t->flags & STK_ARENA_HUGETLB ? " on hugetlb pages" : "", strerror(-r));
		free(a);
		return r;
	}
	struct stk_arena_stats st;
	stk__arena_stats(a, &st);
	stk_info("ram tier: segments of %llu MiB, objects up to %llu bytes in slabs, from %llu "
		 "bytes in a segment of their own",
		 (unsigned long long)(st.seg_size >> 20), (unsigned long long)st.small_max,
		 (unsigned long long)st.huge_min);
	t->priv = a;
	return 0;
}

static void ram_fini(struct stk_tier *t)
{
	if (!t->priv)
		return;
	stk__arena_fini(t->priv);
	free(t->priv);
	t->priv = NULL;
}

static int ram_alloc(struct stk_tier *t, struct stk_tier_obj *to, uint64_t size, uint32_t domain)
{
	int r = stk__arena_alloc(t->priv, size, domain, &to->ext);
	if (r)
		return r;
	to->map = stk__arena_ptr(t->priv, &to->ext);
	t->used += to->ext.charge;
	return 0;
}

static void ram_drop(struct stk_tier *t, struct stk_tier_obj *to)
{
	stk__arena_free(t->priv, &to->ext);
	t->used -= to->ext.charge;
	to->map = NULL;
}

static int ram_segment(const struct stk_tier *t, uint32_t seg, struct stk_arena_seg *out)
{
	return stk__arena_segment(t->priv, seg, out);
}

static uint32_t ram_evict_hint(const struct stk_tier *t)
{
	return stk__arena_evict_hint(t->priv);
}

const struct stk_tier_ops stk_tier_ram = {
	.name = "ram",
	.init = ram_init,
	.fini = ram_fini,
	.alloc = ram_alloc,
	.drop = ram_drop,
	.segment = ram_segment,
	.evict_hint = ram_evict_hint,
};

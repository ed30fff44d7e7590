/* SPDX-License-Identifier: MIT */
/*
 * Prefetch for clients that send no plan (the shim's, an unmodified loader's):
 * the daemon follows the access stream of a dataset's plan-less gets.
 *
 * The dataset gets an implicit plan, owned by no client: first its listing
 * order (directory order, sequential shards); once an object is got a second
 * time an epoch has ended, and the order in which that epoch got its objects
 * becomes the plan for the next one.  The plan's cursor moves only as the
 * stream keeps to it: a get within FOLLOW_WINDOW positions of the cursor
 * marks its position done, and the cursor passes done positions.  Readers
 * that interleave (DataLoader workers, each a batch apart) so never pass an
 * object another has still to read; a stream that does not follow the plan
 * (a fresh shuffle) leaves the cursor where it is, and the plan then keeps
 * its first objects, which is keep-once-full again.  Scheduling, eviction and
 * budgets are the plans' own (sched.c).
 *
 * Costs per dataset that has plan-less gets: the epoch's order (4 B an
 * object), two bitmaps, and a plan (16 B an object): 25 MB for ImageNet's
 * 1.28M objects.  Freed when no client has the dataset open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon.h"

struct stk_follow {
	uint32_t *order; /* this epoch's plan-less gets, each object once */
	uint32_t n;
	uint64_t *seen; /* by object: got this epoch */
	uint64_t *done; /* by position of plan: got while the stream followed it */
	struct stk_plan *plan;
	uint32_t epochs;
};

static size_t words(uint32_t n)
{
	return ((size_t)n + 63) / 64;
}

static bool bit(const uint64_t *b, uint32_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

static void set_bit(uint64_t *b, uint32_t i)
{
	b[i / 64] |= 1ull << (i % 64);
}

/* A window of positions ahead of the cursor within which a get follows the plan. */
static uint32_t window(const struct stk_daemon *d)
{
	uint32_t w = 4 * d->cfg.max_inflight;
	return w < 256 ? 256 : w;
}

/* Makes f's plan order[0..n) (the listing order when order is NULL). 0 or -ENOMEM. */
static int replan(struct stk_daemon *d, struct stk_ds *ds, struct stk_follow *f,
		  const uint32_t *order, uint32_t n)
{
	struct stk_plan *p = stk__plan_new(d, ds, NULL, false);
	if (!p)
		return -ENOMEM;
	int r = 0;
	for (uint32_t i = 0; !r && i < n; i++) {
		uint32_t obj = order ? order[i] : i;
		r = stk__plan_append(p, NULL, &obj, 1);
	}
	if (r) {
		stk__plan_free(d, p);
		return r;
	}
	stk__plan_free(d, f->plan);
	f->plan = p;
	memset(f->done, 0, words(ds->count) * sizeof(*f->done));
	return 0;
}

void stk__follow_free(struct stk_daemon *d, struct stk_ds *ds)
{
	struct stk_follow *f = ds->follow;
	if (!f)
		return;
	stk__plan_free(d, f->plan);
	free(f->order);
	free(f->seen);
	free(f->done);
	free(f);
	ds->follow = NULL;
}

static struct stk_follow *follow_new(struct stk_daemon *d, struct stk_ds *ds)
{
	struct stk_follow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->order = malloc(ds->count * sizeof(*f->order));
	f->seen = calloc(words(ds->count), sizeof(*f->seen));
	f->done = calloc(words(ds->count), sizeof(*f->done));
	ds->follow = f;
	if (!f->order || !f->seen || !f->done || replan(d, ds, f, NULL, ds->count)) {
		stk__follow_free(d, ds);
		return NULL;
	}
	return f;
}

void stk__follow(struct stk_daemon *d, struct stk_ds *ds, uint32_t index)
{
	if (index >= ds->count || d->cfg.no_follow)
		return;
	struct stk_follow *f = ds->follow ? ds->follow : follow_new(d, ds);
	if (!f) /* no memory: no prefetch for plan-less gets, nothing else lost */
		return;
	if (bit(f->seen, index)) {
		/* Got again: a new epoch, predicted by the last one's order. */
		f->epochs++;
		if (f->n > 1 && replan(d, ds, f, f->order, f->n) == 0)
			stk_dbg("dataset %s: epoch %u of plan-less gets; prefetching in the last "
				"one's order (%u objects)",
				ds->uri, f->epochs + 1, f->n);
		memset(f->seen, 0, words(ds->count) * sizeof(*f->seen));
		f->n = 0;
	}
	set_bit(f->seen, index);
	f->order[f->n++] = index;
	struct stk_plan *p = f->plan;
	uint32_t h = p->head[index];
	if (h == STK_NONE || h < p->cursor || h - p->cursor > window(d))
		return;
	set_bit(f->done, h);
	while (p->cursor < p->n && bit(f->done, p->cursor))
		stk__plan_advance(d, p, p->order[p->cursor]);
}

/* SPDX-License-Identifier: MIT */
/*
 * Prefetch for clients that send no plan (the shim's, an unmodified loader's):
 * the daemon follows the access stream of a dataset's plan-less gets.
 *
 * The stream is followed per plan group: the gets of connections without a
 * group are one stream per dataset, and the gets of each group (HELLO's
 * group: the workers of one DataLoader, say, each on a connection of its
 * own) are another.  Each stream gets an implicit plan, owned by no client:
 * first its listing order (directory order, sequential shards); once an
 * object is got a second time an epoch has ended, and the order in which
 * that epoch got its objects becomes the plan for the next one.  The plan's
 * cursor moves only as the stream keeps to it: a get within window() of the
 * cursor marks its position done, and the cursor passes done positions.
 * Readers that interleave (DataLoader workers, each a batch apart) so never
 * pass an object another has still to read; a stream that does not follow
 * the plan (a fresh shuffle) leaves the cursor where it is, and the plan
 * then keeps its first objects, which is keep-once-full again.  Scheduling,
 * eviction and budgets are the plans' own (sched.c).
 *
 * A group's stream may be told its order (PLAN with STK_PLAN_SHARED, from
 * stk_plan_shared(): the DataLoader's main process, which draws each epoch's
 * order).  That shared plan replaces the implicit one at once and is kept
 * until the stream has passed its end (shared_over()): an object got again
 * is then a repeat the order has, not a new epoch.  Its window is wider
 * (shared_window()), and once half a window of positions past the cursor are
 * done, the positions nobody got before them are given up, so one never read
 * (got before the plan came) cannot hold the cursor for good.
 *
 * Costs per stream that has plan-less gets: the epoch's order (4 B an
 * object), two bitmaps, and a plan (16 B an object): 25 MB for ImageNet's
 * 1.28M objects.  A stream is freed when no client of its group has the
 * dataset open (connections without a group are a group here too), and all
 * of them when no client has.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon.h"

struct stk_follow {
	struct stk_follow *next; /* ds->follow's list: one per group */
	uint64_t group;		 /* 0: the connections without a group */
	uint32_t *order;	 /* this epoch's plan-less gets, each object once */
	uint32_t n;
	uint64_t *seen; /* by object: got this epoch */
	uint64_t *done; /* by position of plan: got while the stream followed it */
	size_t ndone;	/* words at done */
	uint32_t ahead; /* done positions past the cursor */
	struct stk_plan *plan;
	uint32_t epochs;
	bool shared;	       /* plan came from PLAN SHARED and is not over */
	uint32_t epoch_cursor; /* plan's cursor when this epoch began */
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

/*
 * The window of a shared plan.  The stream is known to keep to it, so the
 * window need only bound how far interleaved readers spread (a DataLoader's
 * workers x prefetch factor x batch size: 4,096 for 8 x 2 x 256), and half
 * of it how many gets done past a position never read hold the cursor back
 * before that position is given up.
 */
static uint32_t shared_window(const struct stk_daemon *d)
{
	uint32_t w = window(d);
	return w < 16384 ? 16384 : w;
}

/* Done bits for positions [0, npos). 0 or -ENOMEM. */
static int done_room(struct stk_follow *f, uint32_t npos)
{
	size_t want = words(npos);
	if (want <= f->ndone)
		return 0;
	uint64_t *b = realloc(f->done, want * sizeof(*b));
	if (!b)
		return -ENOMEM;
	memset(b + f->ndone, 0, (want - f->ndone) * sizeof(*b));
	f->done = b;
	f->ndone = want;
	return 0;
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
	memset(f->done, 0, f->ndone * sizeof(*f->done));
	f->ahead = 0;
	return 0;
}

static void follow_free(struct stk_daemon *d, struct stk_follow *f)
{
	stk__plan_free(d, f->plan);
	free(f->order);
	free(f->seen);
	free(f->done);
	free(f);
}

void stk__follow_free(struct stk_daemon *d, struct stk_ds *ds)
{
	while (ds->follow) {
		struct stk_follow *f = ds->follow;
		ds->follow = f->next;
		follow_free(d, f);
	}
}

static void unlink_free(struct stk_daemon *d, struct stk_ds *ds, struct stk_follow *f)
{
	struct stk_follow **pp = &ds->follow;
	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	follow_free(d, f);
}

static struct stk_follow *find(const struct stk_ds *ds, uint64_t group)
{
	struct stk_follow *f = ds->follow;
	while (f && f->group != group)
		f = f->next;
	return f;
}

static struct stk_follow *follow_new(struct stk_daemon *d, struct stk_ds *ds, uint64_t group)
{
	struct stk_follow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->group = group;
	f->order = malloc((ds->count ? ds->count : 1) * sizeof(*f->order));
	f->seen = calloc(words(ds->count) + 1, sizeof(*f->seen));
	if (!f->order || !f->seen || done_room(f, ds->count) || replan(d, ds, f, NULL, ds->count)) {
		follow_free(d, f);
		return NULL;
	}
	f->next = ds->follow;
	ds->follow = f;
	return f;
}

/*
 * Whether object index, got again, ends f's shared plan: the stream has
 * passed its end, or nears it and index is not in what is left, or the
 * plan's cursor has not moved while a whole epoch's worth of objects were
 * got (the stream no longer keeps to it).  Any other repeat is one the order itself has.
 */
static bool shared_over(const struct stk_daemon *d, const struct stk_follow *f, uint32_t index)
{
	const struct stk_plan *p = f->plan;
	if (p->cursor >= p->n)
		return true;
	if (p->head[index] != STK_NONE)
		return false;
	uint32_t near = p->n / 16 < window(d) ? p->n / 16 : window(d);
	return p->n - p->cursor <= near || p->cursor == f->epoch_cursor;
}

void stk__follow(struct stk_daemon *d, struct stk_ds *ds, uint64_t group, uint32_t index)
{
	if (index >= ds->count || d->cfg.no_follow)
		return;
	struct stk_follow *f = find(ds, group);
	if (!f && !(f = follow_new(d, ds, group)))
		return; /* no memory: no prefetch for plan-less gets, nothing else lost */
	if (bit(f->seen, index)) {
		/* Got again: a new epoch, predicted by the last one's order. */
		f->epochs++;
		if (f->shared && shared_over(d, f, index)) {
			stk_dbg("dataset %s: the shared plan of group %016llx is over", ds->uri,
				(unsigned long long)group);
			f->shared = false;
		}
		if (!f->shared && f->n > 1 && replan(d, ds, f, f->order, f->n) == 0)
			stk_dbg("dataset %s: epoch %u of plan-less gets; prefetching in the last "
				"one's order (%u objects)",
				ds->uri, f->epochs + 1, f->n);
		memset(f->seen, 0, words(ds->count) * sizeof(*f->seen));
		f->n = 0;
		f->epoch_cursor = f->plan->cursor;
	}
	set_bit(f->seen, index);
	f->order[f->n++] = index;
	struct stk_plan *p = f->plan;
	uint32_t h = p->head[index];
	if (h == STK_NONE || h < p->cursor)
		return;
	if (h - p->cursor > (f->shared ? shared_window(d) : window(d)))
		return;
	if (!bit(f->done, h)) {
		set_bit(f->done, h);
		f->ahead++;
	}
	/*
	 * Half a window of gets done past positions of a shared plan that
	 * nobody got: they were got before the plan came, or never will be.
	 */
	if (f->shared && f->ahead > shared_window(d) / 2)
		while (p->cursor < p->n && !bit(f->done, p->cursor))
			stk__plan_advance(d, p, p->order[p->cursor]);
	while (p->cursor < p->n && bit(f->done, p->cursor)) {
		f->ahead--;
		stk__plan_advance(d, p, p->order[p->cursor]);
	}
}

int stk__follow_plan(struct stk_daemon *d, struct stk_ds *ds, uint64_t group, bool reset,
		     const uint8_t *le_idx, uint32_t n, char *err, size_t errlen)
{
	if (d->cfg.no_follow) {
		snprintf(err, errlen,
			 "shared PLAN for %s: this stokerd runs with --no-follow, so plan-less "
			 "gets are not followed and a group's plan would never move",
			 ds->uri);
		return -ENOTSUP;
	}
	struct stk_follow *f = find(ds, group);
	if (!reset && (!f || !f->shared)) {
		snprintf(err, errlen,
			 "shared PLAN for %s: a chunk that continues no shared plan (the first "
			 "chunk carries RESET)",
			 ds->uri);
		return -EINVAL;
	}
	if (!f && !(f = follow_new(d, ds, group)))
		goto nomem;
	struct stk_plan *p = f->plan;
	if (reset) {
		if (!(p = stk__plan_new(d, ds, NULL, false)))
			goto nomem;
		stk__plan_free(d, f->plan);
		f->plan = p;
		f->shared = true;
		memset(f->done, 0, f->ndone * sizeof(*f->done));
		f->ahead = 0;
		memset(f->seen, 0, words(ds->count) * sizeof(*f->seen));
		f->n = 0;
		f->epoch_cursor = 0;
	}
	uint64_t total = p->n + (uint64_t)n;
	int r = -E2BIG;
	if (total > d->cfg.client_max_plan || (r = stk__plan_append(p, le_idx, NULL, n)) ||
	    (r = done_room(f, p->n))) {
		if (r == -E2BIG)
			snprintf(err, errlen,
				 "shared PLAN for %s: %llu entries would pass the limit of %llu "
				 "(--client-max-plan); the plan is dropped",
				 ds->uri, (unsigned long long)total,
				 (unsigned long long)d->cfg.client_max_plan);
		else
			snprintf(err, errlen, "shared PLAN for %s: %s; the plan is dropped",
				 ds->uri,
				 r == -ERANGE ? "an object index is out of range" : strerror(-r));
		/* The group's stream is followed afresh from its next get. */
		unlink_free(d, ds, f);
		return r;
	}
	if (reset)
		stk_dbg("dataset %s: group %016llx shares a plan", ds->uri,
			(unsigned long long)group);
	return 0;
nomem:
	snprintf(err, errlen, "shared PLAN for %s: out of memory", ds->uri);
	return -ENOMEM;
}

const struct stk_plan *stk__follow_plan_of(const struct stk_ds *ds, uint64_t group, bool *shared)
{
	struct stk_follow *f = find(ds, group);
	if (shared)
		*shared = f && f->shared;
	return f ? f->plan : NULL;
}

void stk__follow_unuse(struct stk_daemon *d, struct stk_ds *ds, uint64_t group)
{
	struct stk_follow *f = find(ds, group);
	if (!f)
		return;
	for (const struct stk_session *s = d->sessions; s; s = s->next) {
		if (s->dead || s->group != group)
			continue;
		for (uint32_t i = 0; i < s->nhandles; i++)
			if (s->handles[i].ds == ds)
				return;
	}
	unlink_free(d, ds, f);
}

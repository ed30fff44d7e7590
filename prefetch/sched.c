/* SPDX-License-Identifier: MIT */
/*
 * The prefetch scheduler.
 *
 * Clients submit plans (the order of their gets).  After every event the
 * scheduler keeps the earliest-needed absent objects of all plans in flight,
 * up to max_inflight objects and within the RAM budget.  When the budget is
 * full it evicts the resident object whose next use is farthest (Belady's
 * MIN), but only if that is farther than the candidate's own next use:
 * otherwise prefetching would push out something needed sooner.  A get for
 * an absent object (a demand miss) jumps the queue: it is fetched before any
 * prefetch and may evict anything unpinned.  Nothing is fetched twice: an
 * object is absent, being fetched, resident or failed, and only absent ones
 * start a fetch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "prefetch/daemon.h"
#include "prefetch/zfetch.h"
#include "stoker.h"
#include "transports/transport.h"

struct fetch_ctx {
	struct stk_fetch f;
	struct stk_daemon *d;
	struct stk_object *o;
	double v0; /* its start on its endpoint model's virtual clock (obs.c) */
};

struct stk_plan *stk__plan_new(struct stk_daemon *d, struct stk_ds *ds, struct stk_session *owner,
			       bool warm)
{
	struct stk_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	size_t n = ds->count ? ds->count : 1;
	p->head = malloc(n * sizeof(*p->head));
	p->last = malloc(n * sizeof(*p->last));
	if (!p->head || !p->last) {
		free(p->head);
		free(p->last);
		free(p);
		return NULL;
	}
	memset(p->head, 0xff, n * sizeof(*p->head));
	memset(p->last, 0xff, n * sizeof(*p->last));
	p->ds = ds;
	p->owner = owner;
	p->warm = warm;
	p->ds_next = ds->plans;
	ds->plans = p;
	p->all_next = d->plans;
	d->plans = p;
	return p;
}

int stk__plan_append(struct stk_plan *p, const uint8_t *le_idx, const uint32_t *idx, uint32_t n)
{
	if (n > UINT32_MAX - 1 - p->n)
		return -E2BIG;
	if (p->n + n > p->cap) {
		uint32_t cap = p->cap ? p->cap : 1024;
		while (cap < p->n + n)
			cap = cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : cap * 2;
		uint32_t *o = realloc(p->order, (size_t)cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		p->order = o;
		uint32_t *x = realloc(p->next, (size_t)cap * sizeof(*x));
		if (!x)
			return -ENOMEM;
		p->next = x;
		p->cap = cap;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t obj = le_idx ? stk__get_u32(le_idx + 4 * (size_t)i) : idx[i];
		if (obj >= p->ds->count)
			return -ERANGE;
		uint32_t pos = p->n++;
		p->order[pos] = obj;
		p->next[pos] = STK_NONE;
		if (p->last[obj] != STK_NONE)
			p->next[p->last[obj]] = pos;
		if (p->head[obj] == STK_NONE)
			p->head[obj] = pos;
		p->last[obj] = pos;
	}
	return 0;
}

void stk__rekey(struct stk_daemon *d, struct stk_object *o)
{
	stk__cache_rekey(&d->cache, o);
	stk__tier1_rekey(d, o);
}

void stk__plan_advance(struct stk_daemon *d, struct stk_plan *p, uint32_t obj)
{
	uint32_t h = p->head[obj];
	if (h == STK_NONE)
		return;
	for (uint32_t k = p->cursor; k <= h; k++) {
		p->head[p->order[k]] = p->next[k];
		/* Passed: its next use in this plan moved later, or went. */
		stk__rekey(d, p->ds->ents[p->order[k]].o);
	}
	p->cursor = h + 1;
}

void stk__plan_free(struct stk_daemon *d, struct stk_plan *p)
{
	if (!p)
		return;
	/* Its objects' next uses grow (to another plan's, or never). */
	for (uint32_t k = p->cursor; k < p->n; k++)
		if (p->head[p->order[k]] == k)
			stk__rekey(d, p->ds->ents[p->order[k]].o);
	for (struct stk_plan **pp = &p->ds->plans; *pp; pp = &(*pp)->ds_next) {
		if (*pp == p) {
			*pp = p->ds_next;
			break;
		}
	}
	for (struct stk_plan **pp = &d->plans; *pp; pp = &(*pp)->all_next) {
		if (*pp == p) {
			*pp = p->all_next;
			break;
		}
	}
	free(p->order);
	free(p->next);
	free(p->head);
	free(p->last);
	free(p);
}

uint64_t stk__next_use(void *arg, const struct stk_object *o)
{
	(void)arg;
	uint64_t best = UINT64_MAX;
	for (uint32_t r = 0; r < o->nrefs; r++) {
		for (struct stk_plan *p = o->refs[r].ds->plans; p; p = p->ds_next) {
			uint32_t h = p->head[o->refs[r].index];
			if (h != STK_NONE && (uint64_t)(h - p->cursor) < best)
				best = h - p->cursor;
		}
	}
	return best;
}

/*
 * Counts o's change of state in every dataset that lists it: d_res resident
 * objects, d_inf in flight, d_fail failed (each -1, 0 or +1).
 */
static void count(struct stk_object *o, int d_res, int d_inf, int d_fail)
{
	for (uint32_t r = 0; r < o->nrefs; r++) {
		struct stk_ds *ds = o->refs[r].ds;
		ds->resident += (uint32_t)d_res;
		ds->resident_bytes += (uint64_t)(int64_t)d_res * o->size;
		ds->inflight += (uint32_t)d_inf;
		ds->failed += (uint32_t)d_fail;
	}
}

static void notify(struct stk_daemon *d, struct stk_object *o, int err, const char *msg)
{
	struct stk_waiter *w = o->waiters;
	o->waiters = NULL;
	while (w) {
		struct stk_waiter *n = w->next;
		d->on_ready(d, w, o, false, err, msg);
		w = n;
	}
}

/* o is absent again: the plans' searches for what to prefetch look at it again. */
static void rescan(struct stk_object *o)
{
	for (uint32_t r = 0; r < o->nrefs; r++) {
		for (struct stk_plan *p = o->refs[r].ds->plans; p; p = p->ds_next) {
			uint32_t h = p->head[o->refs[r].index];
			if (h != STK_NONE && h < p->scan)
				p->scan = h;
		}
	}
}

void stk__evict(struct stk_daemon *d, struct stk_object *o)
{
	stk__cache_drop(&d->cache, o);
	count(o, -1, 0, 0);
	d->st[STK_ST_EVICTIONS]++;
	rescan(o);
	stk_dbg("evicted %s", o->uri);
}

void stk__evict_unheld(struct stk_daemon *d, struct stk_object *o)
{
	if (o->state == STK_OBJ_RESIDENT && !o->pins && !o->stale && stk__rt_retract(d, o))
		stk__evict(d, o);
}

static int demand_push(struct stk_daemon *d, struct stk_object *o);

void stk__stale(struct stk_daemon *d, struct stk_object *o)
{
	/* Pin-area readers become holds here, so hiding the entries strands nobody. */
	if (stk__rt_retract(d, o) && !o->pins) {
		stk_dbg("%s changed since it was fetched; dropped", o->uri);
		stk__evict(d, o);
		return;
	}
	stk__rt_hide(d, o);
	o->stale = true;
	stk_dbg("%s changed since it was fetched; dropped when its %u holds go", o->uri, o->pins);
}

/* The last hold of a stale object went: drop it, and fetch the new version for waiting gets. */
static void stale_drop(struct stk_daemon *d, struct stk_object *o)
{
	o->stale = false;
	stk__evict(d, o);
	if (o->waiters && !o->queued && demand_push(d, o))
		notify(d, o, -ENOMEM, "out of memory queueing a get");
}

static void fetch_failed(struct stk_daemon *d, struct stk_object *o, int err, const char *msg)
{
	char m[STK_ERRMSG_MAX];
	snprintf(m, sizeof(m), "%s", msg ? msg : o->uri);
	for (uint32_t r = 0; r < o->nrefs; r++) {
		/* Say where a wrong entry came from: the first manifest that names it. */
		struct stk_ds *ds = o->refs[r].ds;
		uint32_t line = ds->ents[o->refs[r].index].line;
		if (line) {
			size_t l = strlen(m);
			snprintf(m + l, sizeof(m) - l, " (manifest %s line %u)", ds->uri, line);
			break;
		}
	}
	/* The message goes to the waiters and to STATUS (per dataset), not into each object. */
	o->state = STK_OBJ_FAILED;
	for (uint32_t r = 0; r < o->nrefs; r++) {
		free(o->refs[r].ds->last_errmsg);
		o->refs[r].ds->last_errmsg = strdup(m);
	}
	count(o, 0, 0, +1);
	d->st[STK_ST_FETCH_ERRORS]++;
	stk_warn("fetch failed: %s", m);
	notify(d, o, err, m);
}

static void fetch_done(struct stk_fetch *f, int err, const char *msg)
{
	struct fetch_ctx *fc = (struct fetch_ctx *)f;
	struct stk_daemon *d = fc->d;
	struct stk_object *o = fc->o;
	char fc_etag[sizeof(fc->f.etag)];
	memcpy(fc_etag, fc->f.etag, sizeof(fc_etag));
	uint64_t first_byte = __atomic_load_n(&fc->f.first_byte_ns, __ATOMIC_RELAXED);
	uint64_t start = o->room->fetch_start, end = stk__now_ns();
	double v0 = fc->v0;
	free(fc);
	stk__obs_fetch(d, o, start, v0, first_byte, end, err);
	count(o, 0, -1, 0);
	d->inflight--;
	if (o->prefetched)
		d->prefetch_inflight--;
	char e[512];
	if (!err) {
		err = stk__cache_seal(&d->cache, o, e, sizeof(e));
		msg = e;
	}
	if (err) {
		stk__cache_drop(&d->cache, o);
		fetch_failed(d, o, err, msg);
	} else {
		d->st[STK_ST_FETCHES]++;
		d->st[STK_ST_FETCH_BYTES] += o->size;
		o->fetch_ns = end - start;
		d->st[STK_ST_FETCH_NS] += o->fetch_ns;
		/* The listing said nothing of its version: the one fetched is it. */
		if (!o->version && fc_etag[0])
			o->version = strdup(fc_etag);
		count(o, +1, 0, 0);
		stk__rt_publish(d, o);
		notify(d, o, 0, NULL);
		stk__tier1_demote(d, o);
	}
	stk__sched_run(d);
}

/* Undoes start_fetch's counting of o in flight. */
static void uncount_fetch(struct stk_daemon *d, struct stk_object *o)
{
	count(o, 0, -1, 0);
	d->inflight--;
	if (o->prefetched) {
		d->prefetch_inflight--;
		d->st[STK_ST_PREFETCHES]--;
	}
}

/*
 * Fetches o (FETCHING, counted in flight) from its backend.  Returns false
 * when the transport is busy (o's room is given back, o uncounted).
 */
static bool backend_fetch(struct stk_daemon *d, struct stk_object *o)
{
	char e[512];
	struct fetch_ctx *fc = calloc(1, sizeof(*fc));
	if (!fc) {
		uncount_fetch(d, o);
		stk__cache_drop(&d->cache, o);
		snprintf(e, sizeof(e), "%s: out of memory", o->uri);
		fetch_failed(d, o, -ENOMEM, e);
		return true;
	}
	fc->d = d;
	fc->o = o;
	fc->f.uri = o->uri;
	fc->f.buf = o->room->t.map;
	fc->f.cap = o->room->t.ext.charge;
	fc->f.fd = -1;
	fc->f.size = o->size;
	fc->f.done = fetch_done;
	/* After a promotion that failed, the backend's time starts now. */
	o->room->fetch_start = stk__now_ns();
	fc->v0 = stk__obs_fetch_begin(d, o, o->room->fetch_start);
	/* A .zst object of a STK_DS_ZSTD dataset is decoded on the way in (zfetch.c). */
	int q = o->codec == STK_CODEC_ZSTD ? stk__zfetch_submit(d->loop, o->tp, &fc->f)
					   : o->tp->submit(&fc->f);
	if (q == STK_Q_QUEUED)
		return true;
	free(fc);
	stk__obs_fetch(d, o, o->room->fetch_start, 0, 0, stk__now_ns(),
		       q == STK_Q_BUSY ? -EAGAIN : q);
	uncount_fetch(d, o);
	stk__cache_drop(&d->cache, o);
	if (q == STK_Q_BUSY)
		return false;
	snprintf(e, sizeof(e), "%s: %s", o->uri, strerror(-q));
	fetch_failed(d, o, q, e);
	return true;
}

/*
 * Starts fetching o, which has its room (FETCHING): from its tier-1 copy
 * when it has one (a promotion, which the backend's model and counters
 * never see), else from its backend.  Returns false when the transport is
 * busy (o's room is given back).
 */
static bool start_fetch(struct stk_daemon *d, struct stk_object *o, bool prefetch)
{
	o->prefetched = prefetch;
	o->room->fetch_start = stk__now_ns();
	count(o, 0, +1, 0);
	d->inflight++;
	if (prefetch) {
		d->prefetch_inflight++;
		d->st[STK_ST_PREFETCHES]++;
	}
	if (stk__tier1_promote(d, o))
		return true;
	return backend_fetch(d, o);
}

void stk__fetch_backend(struct stk_daemon *d, struct stk_object *o)
{
	/*
	 * A busy transport gave o's room back: a get waiting for o queues it
	 * again, and a prefetch finds it again.
	 */
	if (!backend_fetch(d, o)) {
		rescan(o);
		if (o->waiters && !o->queued && demand_push(d, o))
			notify(d, o, -ENOMEM, "out of memory queueing a get");
	}
	stk__sched_run(d);
}

void stk__promoted(struct stk_daemon *d, struct stk_object *o)
{
	char e[512];
	count(o, 0, -1, 0);
	d->inflight--;
	if (o->prefetched)
		d->prefetch_inflight--;
	int err = stk__cache_seal(&d->cache, o, e, sizeof(e));
	if (err) {
		stk__cache_drop(&d->cache, o);
		fetch_failed(d, o, err, e);
	} else {
		count(o, +1, 0, 0);
		stk__rt_publish(d, o);
		notify(d, o, 0, NULL);
	}
	stk__sched_run(d);
}

/*
 * When the room left is in pieces, evicting by next use alone may take much
 * of the cache before a hole is large enough: the tier names the segment
 * whose emptying surely makes room, and this picks, among the unpinned
 * objects in it, the one needed last.  O(resident), on fragmentation only.
 */
static struct stk_object *victim_in_hinted_segment(struct stk_daemon *d, uint64_t *dist)
{
	const struct stk_tier *t = d->cache.tier;
	uint32_t seg = t->ops->evict_hint ? t->ops->evict_hint(t) : STK_ARENA_NOSEG;
	struct stk_object *best = NULL;
	uint64_t best_d = 0;
	for (struct stk_object *o = seg == STK_ARENA_NOSEG ? NULL : d->cache.res_head; o;
	     o = o->room->rnext) {
		if (o->pins || o->room->t.ext.seg != seg)
			continue;
		uint64_t nu = stk__next_use(d, o);
		if (!best || nu > best_d) {
			best = o;
			best_d = nu;
		}
	}
	*dist = best_d;
	return best;
}

/* Whom room() may evict. */
enum evict_mode {
	EVICT_NONE,    /* a warm: it never evicts */
	EVICT_FARTHER, /* a prefetch: only objects needed later than it */
	EVICT_ANY,     /* a demand miss: anything nobody holds */
};

/*
 * Finds room for o, evicting by next use as mode allows (dist: o's own next
 * use, for EVICT_FARTHER), and allocates it.  Returns 0 with o FETCHING;
 * -ENOSPC when the room would take an object needed sooner, or one a client
 * holds; or the allocation's failure (-EFBIG: o never fits), with e saying
 * why.
 */
static int room(struct stk_daemon *d, struct stk_object *o, enum evict_mode mode, uint64_t dist,
		char *e, size_t elen)
{
	bool rechecked = false;
	for (;;) {
		int r = stk__cache_alloc(&d->cache, o, e, elen);
		if (r != -ENOSPC && r != -EAGAIN)
			return r;
		if (mode == EVICT_NONE)
			return -ENOSPC;
		/* Victims being written to tier 1 give back at least o's bytes: wait for them. */
		if (d->t1.evict_bytes >= o->size)
			return -ENOSPC;
		/*
		 * Room in pieces: evict in the segment the tier names.  Evicting
		 * by next use alone could take much of the cache before a hole
		 * is large enough, which only a demand miss may do.
		 */
		uint64_t vd = 0;
		struct stk_object *v = r == -EAGAIN ? victim_in_hinted_segment(d, &vd) : NULL;
		if (!v && (r == -ENOSPC || mode == EVICT_ANY))
			v = stk__cache_victim(&d->cache, stk__next_use, d, &vd);
		if (!v && !rechecked && d->nheld) {
			/* Objects kept for clients' table reads may be free by now. */
			rechecked = true;
			if (stk__rt_recheck(d))
				continue;
		}
		if (!v || (mode == EVICT_FARTHER && vd <= dist))
			return -ENOSPC;
		/* Demoted, not dropped, when tier 1 takes it: its room comes when it is written. */
		if (stk__tier1_evict(d, v, vd))
			continue;
		if (stk__rt_retract(d, v)) /* else a client reads it: now held */
			stk__evict(d, v);
	}
}

/* The absent object needed soonest by any plan, with its distance and plan. */
static struct stk_object *candidate(struct stk_daemon *d, struct stk_plan **pp, uint64_t *dist)
{
	struct stk_object *best = NULL;
	for (struct stk_plan *p = d->plans; p; p = p->all_next) {
		if (p->stalled)
			continue;
		uint32_t s = p->scan > p->cursor ? p->scan : p->cursor;
		const struct stk_ds_entry *ents = p->ds->ents;
		while (s < p->n && (ents[p->order[s]].o->state != STK_OBJ_ABSENT ||
				    ents[p->order[s]].o->queued))
			s++;
		p->scan = s;
		if (s < p->n && (!best || s - p->cursor < *dist)) {
			best = ents[p->order[s]].o;
			*dist = s - p->cursor;
			*pp = p;
		}
	}
	return best;
}

static void warm_end(struct stk_daemon *d, struct stk_plan *p, uint32_t state)
{
	p->ds->warm = state;
	stk_info("warm of %s: %s (%u of %u objects resident)", p->ds->uri,
		 state == STK_WARM_FULL ? "RAM budget full" : "done", p->ds->resident,
		 p->ds->count);
	stk__plan_free(d, p);
}

/*
 * The demand queue: objects gets wait for, in arrival order, with when they
 * were queued.  An array in the daemon rather than links in every object:
 * few objects are ever in it at once.
 */
static int demand_push(struct stk_daemon *d, struct stk_object *o)
{
	if (d->ndemand == d->capdemand) {
		uint32_t cap = d->capdemand ? d->capdemand * 2 : 64;
		struct stk_demand *v = realloc(d->demand, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->demand = v;
		d->capdemand = cap;
	}
	d->demand[d->ndemand++] = (struct stk_demand){ .o = o, .queued_at = stk__now_ns() };
	o->queued = true;
	return 0;
}

static void sched_once(struct stk_daemon *d);

/*
 * Runs the scheduler.  Work it causes (a failure delivered to a client whose
 * session then ends) may ask for another run from inside this one: that run
 * happens after, not nested, so no loop here walks a queue under its feet.
 */
void stk__sched_run(struct stk_daemon *d)
{
	if (d->in_sched) {
		d->sched_again = true;
		return;
	}
	d->in_sched = true;
	do {
		d->sched_again = false;
		sched_once(d);
	} while (d->sched_again);
	d->in_sched = false;
}

static void sched_once(struct stk_daemon *d)
{
	char e[512];
	/*
	 * Demand misses first, in arrival order.  One that clients' holds leave
	 * no room for waits in place while those behind it that fit go ahead:
	 * otherwise a client holding half a batch, waiting for the rest behind
	 * someone's large object, and that object, waiting for the half batch's
	 * room, would wait for each other until --pin-wait.
	 */
	d->demand_blocked = false;
	uint32_t keep = 0, i = 0;
	for (; i < d->ndemand; i++) {
		struct stk_object *o = d->demand[i].o;
		int r = room(d, o, EVICT_ANY, 0, e, sizeof(e));
		if (r == -ENOSPC) {
			d->demand_blocked = true;
			d->demand[keep++] = d->demand[i];
			continue;
		}
		o->queued = false;
		if (r) {
			fetch_failed(d, o, r, e);
		} else if (!start_fetch(d, o, false)) {
			/* The transport is busy: back where it was; try again later. */
			o->queued = true;
			break;
		}
	}
	/* What was not looked at (after a busy transport) stays, in order. */
	if (i > keep && i < d->ndemand)
		memmove(d->demand + keep, d->demand + i, (d->ndemand - i) * sizeof(*d->demand));
	d->ndemand = keep + (d->ndemand - i);
	/*
	 * While a demand miss waits for room, prefetching would only take the
	 * room it waits for (and refetch what it evicted, in circles).
	 */
	while (!d->stopping && !d->demand_blocked && d->prefetch_inflight < d->cfg.max_inflight) {
		struct stk_plan *p = NULL;
		uint64_t dist = 0;
		struct stk_object *o = candidate(d, &p, &dist);
		if (!o)
			break;
		int r = room(d, o, p->warm ? EVICT_NONE : EVICT_FARTHER, dist, e, sizeof(e));
		if (r == -ENOSPC && p->warm) {
			/* A warm never evicts: it is over once what it started lands. */
			p->stalled = true;
			continue;
		}
		if (r == -ENOSPC)
			break;
		if (r) {
			fetch_failed(d, o, r, e);
			continue;
		}
		if (!start_fetch(d, o, true))
			break;
	}
	for (struct stk_plan *p = d->plans, *n; p; p = n) {
		n = p->all_next;
		if (p->warm && (p->stalled || p->scan >= p->n) && p->ds->inflight == 0)
			warm_end(d, p,
				 !p->stalled && p->ds->resident + p->ds->failed == p->ds->count
				     ? STK_WARM_DONE
				     : STK_WARM_FULL);
	}
}

void stk__get(struct stk_daemon *d, struct stk_plan *plan, struct stk_ds *ds, uint32_t index,
	      struct stk_waiter *w)
{
	struct stk_object *o = ds->ents[index].o;
	d->st[STK_ST_GETS]++;
	if (plan)
		stk__plan_advance(d, plan, index);
	else
		stk__follow(d, ds, w->s ? w->s->group : 0, index);
	if (o->state == STK_OBJ_RESIDENT && !o->stale) {
		d->st[STK_ST_HITS_RAM]++;
		d->st[STK_ST_HITS_NVME] += stk__tier1_promoted(o);
		d->on_ready(d, w, o, true, 0, NULL);
		stk__sched_run(d); /* the cursor moved: the window moves with it */
		return;
	}
	d->st[STK_ST_MISSES]++;
	if (o->size > d->cache.tier->budget) {
		char e[512];
		snprintf(e, sizeof(e), "%s: %llu bytes is larger than the whole RAM budget (%llu)",
			 o->uri, (unsigned long long)o->size,
			 (unsigned long long)d->cache.tier->budget);
		d->on_ready(d, w, o, false, -EFBIG, e);
		return;
	}
	w->next = o->waiters;
	o->waiters = w;
	if (o->state == STK_OBJ_FAILED) {
		count(o, 0, 0, -1);
		o->state = STK_OBJ_ABSENT; /* a get retries what failed before */
	}
	if (o->state == STK_OBJ_ABSENT && !o->queued && demand_push(d, o)) {
		o->waiters = w->next;
		d->on_ready(d, w, o, false, -ENOMEM, "out of memory queueing a get");
		return;
	}
	stk__sched_run(d);
}

void stk__sched_expire(struct stk_daemon *d, uint64_t now)
{
	if (!d->demand_blocked)
		return;
	/* Every get queued longer than --pin-wait behind pins fails, not only the head. */
	uint32_t keep = 0;
	for (uint32_t i = 0; i < d->ndemand; i++) {
		struct stk_object *o = d->demand[i].o;
		uint64_t at = d->demand[i].queued_at;
		if (now - at < d->cfg.pin_wait_ns) {
			d->demand[keep++] = d->demand[i];
			continue;
		}
		char m[STK_ERRMSG_MAX];
		snprintf(
		    m, sizeof(m),
		    "GET %s: no room for %llu bytes for %.0f s: clients hold every byte of the "
		    "RAM budget (%llu bytes, %u objects pinned) in unreleased views; they must "
		    "release some, or stokerd needs a larger --ram",
		    o->uri, (unsigned long long)o->size, (double)(now - at) / 1e9,
		    (unsigned long long)d->cache.tier->budget, d->pinned);
		stk_warn("%s", m);
		o->queued = false;
		notify(d, o, -ENOBUFS, m);
	}
	d->ndemand = keep;
	stk__sched_run(d);
}

void stk__sched_fini(struct stk_daemon *d)
{
	free(d->demand);
	d->demand = NULL;
	d->ndemand = d->capdemand = 0;
}

void stk__pin(struct stk_daemon *d, struct stk_object *o)
{
	if (stk__cache_pin(&d->cache, o))
		d->pinned++;
}

void stk__unpin(struct stk_daemon *d, struct stk_object *o)
{
	if (stk__cache_unpin(&d->cache, o)) {
		d->pinned--;
		if (o->stale)
			stale_drop(d, o);
		if (d->ndemand)
			stk__sched_run(d);
	}
}

int stk__warm(struct stk_daemon *d, struct stk_ds *ds)
{
	if (ds->warm == STK_WARM_RUNNING)
		return 0;
	struct stk_plan *p = stk__plan_new(d, ds, NULL, true);
	if (!p)
		return -ENOMEM;
	for (uint32_t i = 0; i < ds->count; i++) {
		int r = stk__plan_append(p, NULL, &i, 1);
		if (r) {
			stk__plan_free(d, p);
			return r;
		}
	}
	ds->warm = STK_WARM_RUNNING;
	stk__sched_run(d);
	return 0;
}

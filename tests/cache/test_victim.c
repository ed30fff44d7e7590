/* SPDX-License-Identifier: MIT */
/*
 * The victims heap (cache/victim.c) against brute force.
 *
 * The tests keep plans the way prefetch/sched.c does (order, next, head,
 * last, cursor) and compute next use the way stk__next_use does, so the
 * events on which a next use can rise are the daemon's: a get moves the
 * heads of every position it passes, and a freed plan takes its heads away.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "cache/victim.h"

#include "victim_test.h"

/* stk__victims_pick, counted: calls - picks is the number of keys corrected. */
static struct stk_object *pick(struct stk_victims *v, struct world *w, uint64_t *dist)
{
	w->picks += v->n > 0;
	return stk__victims_pick(v, next_use, w, dist);
}

static bool evictable(const struct stk_object *o)
{
	return o->state == STK_OBJ_RESIDENT && !o->pins;
}

/* The brute-force choice: the largest next use, the largest stamp among equals. */
static struct stk_object *brute(const struct world *w, uint64_t *dist, uint32_t *ties)
{
	struct stk_object *best = NULL;
	uint64_t bd = 0;
	for (uint32_t i = 0; i < w->nobj; i++) {
		struct stk_object *o = &w->o[i];
		if (!evictable(o))
			continue;
		uint64_t d = truth(w, o);
		if (!best || d > bd || (d == bd && o->room->stamp > best->room->stamp)) {
			best = o;
			bd = d;
		}
	}
	*ties = 0;
	for (uint32_t i = 0; best && i < w->nobj; i++)
		if (evictable(&w->o[i]) && &w->o[i] != best && truth(w, &w->o[i]) == bd)
			(*ties)++;
	*dist = bd;
	return best;
}

/*
 * The heap's shape and the caller's side of the contract: slots match vidx,
 * no child belongs above its parent, exactly the resident unpinned objects
 * are in, and every key bounds its next use.
 */
static void check_heap(const struct stk_victims *v, const struct world *w)
{
	uint32_t in = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		const struct stk_object *o = v->h[i];
		cr_assert_eq(o->vidx, i + 1, "slot %u holds an object with vidx %u", i, o->vidx);
		if (i) {
			const struct stk_object *p = v->h[(i - 1) / 2];
			cr_assert(
			    p->room->vkey > o->room->vkey ||
				(p->room->vkey == o->room->vkey && p->room->stamp > o->room->stamp),
			    "slot %u is above its parent", i);
		}
	}
	for (uint32_t i = 0; i < w->nobj; i++) {
		const struct stk_object *o = &w->o[i];
		cr_assert_eq(o->vidx != 0, evictable(o), "object %u: in the heap %d, evictable %d",
			     i, o->vidx != 0, evictable(o));
		if (o->vidx) {
			in++;
			cr_assert_geq(o->room->vkey, truth(w, o),
				      "object %u: key %llu below next use", i,
				      (unsigned long long)o->room->vkey);
		}
	}
	cr_assert_eq(in, v->n);
}

/* A key the contract allows for next use d: mostly d, sometimes a looser bound. */
static uint64_t loose(uint64_t d)
{
	uint32_t r = below(10);
	if (r < 7 || d == UINT64_MAX)
		return d;
	if (r < 9)
		return d + 1 + below(50);
	return UINT64_MAX;
}

static void make_resident(struct stk_victims *v, struct world *w, struct stk_object *o)
{
	o->state = STK_OBJ_RESIDENT;
	o->room->stamp = ++w->clock;
	o->pins = 0;
	cr_assert_eq(stk__victims_add(v, o, loose(truth(w, o))), 0);
}

static void make_absent(struct stk_victims *v, struct stk_object *o)
{
	stk__victims_del(v, o);
	cr_assert_eq(o->vidx, 0);
	o->state = STK_OBJ_ABSENT;
}

/* A random object in the given condition, or NULL after a few misses. */
static struct stk_object *any(struct world *w, bool (*ok)(const struct stk_object *o))
{
	for (int tries = 0; tries < 16; tries++) {
		struct stk_object *o = &w->o[below(w->nobj)];
		if (ok(o))
			return o;
	}
	return NULL;
}

static bool is_absent(const struct stk_object *o)
{
	return o->state == STK_OBJ_ABSENT;
}

static bool is_resident(const struct stk_object *o)
{
	return o->state == STK_OBJ_RESIDENT;
}

static bool is_pinned(const struct stk_object *o)
{
	return o->pins > 0;
}

/* Reports the rise of every object the plan listed from its cursor on. */
static void rekey_listed(struct stk_victims *v, struct world *w, const struct tplan *p)
{
	for (uint32_t k = p->cursor; k < p->n; k++) {
		struct stk_object *o = &w->o[p->order[k]];
		stk__victims_rekey(v, o, loose(truth(w, o)));
	}
}

struct trace_stats {
	uint64_t picks, found, ties_finite, ties_never, skips, frees, corrections;
};

#define RN	  200
#define RK	  4
#define RPLAN_MAX 3000

/* One random event, reported to the heap as the contract asks. */
static void event(struct stk_victims *v, struct world *w, struct trace_stats *st)
{
	uint32_t r = below(100);
	struct tplan *p = &w->p[below(w->np)];
	struct stk_object *o;
	uint64_t d;
	if (r < 20) {
		if ((o = any(w, is_absent)))
			make_resident(v, w, o);
	} else if (r < 35) {
		if ((o = pick(v, w, &d)))
			make_absent(v, o);
	} else if (r < 40) {
		/* Dropped for another reason than eviction (a failed revalidation, say). */
		if ((o = any(w, evictable)))
			make_absent(v, o);
	} else if (r < 50) {
		if ((o = any(w, is_resident)) && o->pins++ == 0)
			stk__victims_del(v, o);
	} else if (r < 60) {
		if ((o = any(w, is_pinned)) && --o->pins == 0)
			cr_assert_eq(stk__victims_add(v, o, loose(truth(w, o))), 0);
	} else if (r < 85) {
		if (!p->live || p->cursor >= p->n)
			return;
		/* Mostly in order; sometimes a get skips ahead, or names any object. */
		uint32_t left = p->n - p->cursor;
		uint32_t s = below(8) ? 0 : below(left < 20 ? left : 20);
		uint32_t obj = below(20) ? p->order[p->cursor + s] : below(w->nobj);
		uint32_t c0 = tplan_advance(p, obj);
		st->skips += p->cursor - c0 > 1;
		for (uint32_t k = c0; k < p->cursor; k++) {
			o = &w->o[p->order[k]];
			stk__victims_rekey(v, o, loose(truth(w, o)));
		}
	} else if (r < 93) {
		if (!p->live || p->n > RPLAN_MAX)
			return;
		for (uint32_t k = 1 + below(30); k; k--)
			tplan_append(p, below(w->nobj));
	} else if (r < 97) {
		if (p->live)
			return;
		tplan_init(p, w->nobj);
		for (uint32_t k = below(200); k; k--)
			tplan_append(p, below(w->nobj));
	} else {
		if (!p->live)
			return;
		p->live = false;
		rekey_listed(v, w, p);
		tplan_fini(p);
		st->frees++;
	}
}

static void trace(uint64_t seed, int steps, struct trace_stats *st)
{
	static struct stk_object objs[RN];
	static struct tplan plans[RK];
	struct world w = { .o = objs, .nobj = RN, .p = plans, .np = RK };
	struct stk_victims v = { 0 };
	memset(objs, 0, sizeof(objs));
	memset(plans, 0, sizeof(plans));
	struct stk_obj_room *rooms = give_rooms(objs, RN);
	rng = seed;
	for (int step = 0; step < steps; step++) {
		event(&v, &w, st);
		check_heap(&v, &w);
		uint32_t ties;
		uint64_t bd, d = 12345;
		struct stk_object *want = brute(&w, &bd, &ties);
		struct stk_object *got = pick(&v, &w, &d);
		st->picks++;
		cr_assert_eq(got, want, "seed %llu step %d: picked object %ld, brute force %ld",
			     (unsigned long long)seed, step, got ? (long)(got - objs) : -1L,
			     want ? (long)(want - objs) : -1L);
		if (!got) {
			cr_assert_eq(d, 12345, "dist is untouched when nothing is evictable");
			continue;
		}
		cr_assert_eq(d, bd, "seed %llu step %d: dist %llu, next use %llu",
			     (unsigned long long)seed, step, (unsigned long long)d,
			     (unsigned long long)bd);
		st->found++;
		if (ties && bd == UINT64_MAX)
			st->ties_never++;
		else if (ties)
			st->ties_finite++;
		check_heap(&v, &w);
	}
	st->corrections += w.calls - w.picks;
	stk__victims_fini(&v);
	for (uint32_t i = 0; i < RN; i++)
		cr_assert_eq(objs[i].vidx, 0, "fini leaves no object marked in the heap");
	for (uint32_t k = 0; k < RK; k++)
		if (plans[k].live)
			tplan_fini(&plans[k]);
	free(rooms);
}

TestSuite(victims, .timeout = 100);

Test(victims, pick_equals_brute_force_on_random_traces)
{
	struct trace_stats st = { 0 };
	for (uint64_t seed = 1; seed <= 4; seed++)
		trace(0x9e3779b97f4a7c15ull * seed, 25000, &st);
	fprintf(
	    stderr,
	    "victims: %llu picks checked, %llu found a victim; ties on next use: %llu finite, "
	    "%llu never used again; %llu skipping gets, %llu plans freed; %llu keys corrected\n",
	    (unsigned long long)st.picks, (unsigned long long)st.found,
	    (unsigned long long)st.ties_finite, (unsigned long long)st.ties_never,
	    (unsigned long long)st.skips, (unsigned long long)st.frees,
	    (unsigned long long)st.corrections);
	/* The traces must exercise what they claim to, or passing means little. */
	cr_assert_eq(st.picks, 100000);
	cr_assert_gt(st.found, 50000);
	cr_assert_gt(st.ties_finite, 100, "ties at a finite next use decided by stamp");
	cr_assert_gt(st.ties_never, 1000, "ties among objects never used again");
	cr_assert_gt(st.skips, 1000);
	cr_assert_gt(st.frees, 100);
	cr_assert_gt(st.corrections, 10000, "stale keys reached the top and were corrected");
}

Test(victims, empty_heap_and_absent_objects)
{
	struct stk_victims v = { 0 };
	struct stk_object o[2] = { 0 };
	struct stk_obj_room *rooms = give_rooms(o, 2);
	struct world w = { .o = o, .nobj = 2 };
	uint64_t d = 7;
	cr_assert_null(stk__victims_pick(&v, next_use, &w, &d));
	cr_assert_eq(d, 7);
	stk__victims_del(&v, &o[0]);
	stk__victims_rekey(&v, &o[0], 3);
	cr_assert_eq(v.n, 0);
	cr_assert_eq(o[0].vidx, 0);
	o[0].room->stamp = 1;
	o[1].room->stamp = 2;
	cr_assert_eq(stk__victims_add(&v, &o[0], 5), 0);
	cr_assert_eq(stk__victims_add(&v, &o[0], 9), 0, "adding twice rekeys");
	cr_assert_eq(v.n, 1);
	cr_assert_eq(o[0].room->vkey, 9);
	cr_assert_eq(stk__victims_add(&v, &o[1], 1), 0);
	stk__victims_del(&v, &o[0]);
	stk__victims_del(&v, &o[0]);
	cr_assert_eq(v.n, 1);
	cr_assert_eq(v.h[0], &o[1]);
	stk__victims_fini(&v);
	cr_assert_eq(o[1].vidx, 0);
	cr_assert_null(v.h);
	stk__victims_fini(NULL);
	free(rooms);
}

Test(victims, stale_keys_are_corrected_and_newest_breaks_ties)
{
	/* Object 0 is next used at 3 and 1 at 8 in one plan, 2 at 8 in another; 3 at 0. */
	static const uint32_t a[] = { 3, 3, 3, 0, 3, 3, 3, 3, 1 };
	static const uint32_t b[] = { 3, 3, 3, 3, 3, 3, 3, 3, 2 };
	struct stk_object o[4] = { 0 };
	struct stk_obj_room *rooms = give_rooms(o, 4);
	struct tplan ps[2];
	struct world w = { .o = o, .nobj = 4, .p = ps, .np = 2 };
	struct stk_victims v = { 0 };
	tplan_init(&ps[0], 4);
	tplan_init(&ps[1], 4);
	for (uint32_t i = 0; i < 9; i++) {
		tplan_append(&ps[0], a[i]);
		tplan_append(&ps[1], b[i]);
	}
	for (uint32_t i = 0; i < 4; i++) {
		o[i].state = STK_OBJ_RESIDENT;
		o[i].room->stamp = i + 1;
		cr_assert_eq(stk__victims_add(&v, &o[i], UINT64_MAX), 0);
	}
	uint64_t d;
	cr_assert_eq(stk__victims_pick(&v, next_use, &w, &d), &o[2], "1 and 2 at 8: 2 is newer");
	cr_assert_eq(d, 8);
	cr_assert_eq(o[3].room->vkey, 0, "3 was on top (newest, key UINT64_MAX) and was corrected");
	cr_assert_eq(o[2].room->vkey, 8);

	/* Plan b ends: 2's next use rises to never, which the caller reports. */
	ps[1].live = false;
	stk__victims_rekey(&v, &o[2], UINT64_MAX);
	cr_assert_eq(stk__victims_pick(&v, next_use, &w, &d), &o[2]);
	cr_assert_eq(d, UINT64_MAX);
	stk__victims_del(&v, &o[2]);
	cr_assert_eq(stk__victims_pick(&v, next_use, &w, &d), &o[1]);
	cr_assert_eq(d, 8);

	/* A get of 0 at position 3 moves the cursor to 4: every next use falls by 4, unreported. */
	uint32_t c0 = tplan_advance(&ps[0], 0);
	cr_assert_eq(c0, 0);
	for (uint32_t k = c0; k < ps[0].cursor; k++)
		stk__victims_rekey(&v, &o[ps[0].order[k]], truth(&w, &o[ps[0].order[k]]));
	cr_assert_eq(stk__victims_pick(&v, next_use, &w, &d), &o[0], "0 is never used again now");
	cr_assert_eq(d, UINT64_MAX);
	stk__victims_del(&v, &o[0]);
	cr_assert_eq(stk__victims_pick(&v, next_use, &w, &d), &o[1]);
	cr_assert_eq(d, 4, "the stale key 8 was corrected to 4");
	cr_assert_eq(o[1].room->vkey, 4);
	stk__victims_fini(&v);
	tplan_fini(&ps[0]);
	tplan_fini(&ps[1]);
	free(rooms);
}

Test(victims, without_plans_the_newest_gives_way)
{
	/* Keep-once-full: every next use is UINT64_MAX, so stamps decide, newest first. */
	struct stk_object o[5] = { 0 };
	struct stk_obj_room *rooms = give_rooms(o, 5);
	struct world w = { .o = o, .nobj = 5 };
	struct stk_victims v = { 0 };
	static const uint64_t stamps[] = { 4, 9, 2, 7, 5 };
	for (uint32_t i = 0; i < 5; i++) {
		o[i].state = STK_OBJ_RESIDENT;
		o[i].room->stamp = stamps[i];
		cr_assert_eq(stk__victims_add(&v, &o[i], UINT64_MAX), 0);
	}
	static const int want[] = { 1, 3, 4, 0, 2 };
	for (uint32_t i = 0; i < 5; i++) {
		uint64_t d;
		cr_assert_eq(stk__victims_pick(&v, next_use, &w, &d), &o[want[i]]);
		cr_assert_eq(d, UINT64_MAX);
		stk__victims_del(&v, &o[want[i]]);
	}
	cr_assert_eq(v.n, 0);
	stk__victims_fini(&v);
	free(rooms);
}

enum policy { HEAP_PLAN, HEAP_NO_PLAN, MIN_BRUTE, LRU };

/*
 * Serves ref[0..len) from a cache of cap objects (out of nobj) under policy
 * and returns the misses; the objects evicted, in order, go to victims.
 */
static uint64_t serve(const uint32_t *ref, uint32_t len, uint32_t nobj, uint32_t cap,
		      enum policy pol, uint32_t *victims)
{
	struct stk_object *o = calloc(nobj, sizeof(*o));
	uint64_t *used = calloc(nobj, sizeof(*used));
	cr_assert_not_null(o);
	struct stk_obj_room *rooms = give_rooms(o, nobj);
	struct tplan p;
	struct world w = { .o = o, .nobj = nobj, .p = &p, .np = pol == HEAP_PLAN };
	struct stk_victims v = { 0 };
	uint64_t misses = 0, nv = 0;
	uint32_t resident = 0;
	cr_assert(o && used);
	tplan_init(&p, nobj);
	for (uint32_t t = 0; t < len; t++)
		tplan_append(&p, ref[t]);
	for (uint32_t t = 0; t < len; t++) {
		uint32_t x = ref[t];
		uint32_t c0 = tplan_advance(&p, x);
		cr_assert_eq(c0, t);
		cr_assert_eq(p.cursor, t + 1);
		used[x] = t + 1;
		if (o[x].state == STK_OBJ_RESIDENT) {
			stk__victims_rekey(&v, &o[x], truth(&w, &o[x]));
			continue;
		}
		misses++;
		if (resident == cap) {
			struct stk_object *e = NULL;
			uint64_t d, bd = 0;
			if (pol == HEAP_PLAN || pol == HEAP_NO_PLAN) {
				e = stk__victims_pick(&v, next_use, &w, &d);
			} else {
				/* MIN by definition: the next reference found by reading ahead. */
				for (uint32_t i = 0; i < nobj; i++) {
					if (o[i].state != STK_OBJ_RESIDENT)
						continue;
					uint64_t nd = UINT64_MAX;
					if (pol == MIN_BRUTE) {
						for (uint32_t s = t + 1; s < len; s++) {
							if (ref[s] == i) {
								nd = s;
								break;
							}
						}
					} else {
						nd = UINT64_MAX - used[i];
					}
					if (!e || nd > bd ||
					    (nd == bd && o[i].room->stamp > e->room->stamp)) {
						e = &o[i];
						bd = nd;
					}
				}
			}
			cr_assert_not_null(e);
			victims[nv++] = (uint32_t)(e - o);
			stk__victims_del(&v, e);
			e->state = STK_OBJ_ABSENT;
			resident--;
		}
		o[x].state = STK_OBJ_RESIDENT;
		o[x].room->stamp = ++w.clock;
		cr_assert_eq(stk__victims_add(&v, &o[x], truth(&w, &o[x])), 0);
		resident++;
	}
	stk__victims_fini(&v);
	tplan_fini(&p);
	free(used);
	free(o);
	free(rooms);
	return misses;
}

Test(victims, heap_with_a_plan_misses_exactly_as_belady_min)
{
	enum { LEN = 4000, NOBJ = 150 };
	static uint32_t ref[LEN], va[LEN], vb[LEN], vc[LEN];
	static const uint32_t caps[] = { 5, 20, 60, 149 };
	for (uint64_t seed = 1; seed <= 6; seed++) {
		rng = 0x2545f4914f6cdd1dull * seed;
		/* A drifting hot set over a uniform background: locality, but not too much. */
		uint32_t base = 0;
		for (uint32_t t = 0; t < LEN; t++) {
			if (t % 200 == 0)
				base = below(NOBJ);
			ref[t] = below(2) ? (base + below(25)) % NOBJ : below(NOBJ);
		}
		for (uint32_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
			memset(va, 0xff, sizeof(va));
			memset(vb, 0xff, sizeof(vb));
			uint64_t heap = serve(ref, LEN, NOBJ, caps[c], HEAP_PLAN, va);
			uint64_t min = serve(ref, LEN, NOBJ, caps[c], MIN_BRUTE, vb);
			uint64_t lru = serve(ref, LEN, NOBJ, caps[c], LRU, vc);
			cr_assert_eq(heap, min, "seed %llu cap %u: heap %llu misses, MIN %llu",
				     (unsigned long long)seed, caps[c], (unsigned long long)heap,
				     (unsigned long long)min);
			cr_assert_eq(memcmp(va, vb, sizeof(va)), 0,
				     "seed %llu cap %u: the same victims in the same order",
				     (unsigned long long)seed, caps[c]);
			cr_assert_leq(min, lru);
			if (seed == 1)
				fprintf(
				    stderr,
				    "belady: cap %3u of %u: heap %llu misses, MIN %llu, LRU %llu\n",
				    caps[c], NOBJ, (unsigned long long)heap,
				    (unsigned long long)min, (unsigned long long)lru);
		}
	}
}

Test(victims, cyclic_epochs_belady_and_keep_once_full_beat_lru)
{
	enum { NOBJ = 100, CAP = 40, EPOCHS = 20, LEN = NOBJ * EPOCHS };
	static uint32_t ref[LEN], va[LEN], vb[LEN];
	for (uint32_t t = 0; t < LEN; t++)
		ref[t] = t % NOBJ;
	uint64_t heap = serve(ref, LEN, NOBJ, CAP, HEAP_PLAN, va);
	uint64_t min = serve(ref, LEN, NOBJ, CAP, MIN_BRUTE, vb);
	uint64_t lru = serve(ref, LEN, NOBJ, CAP, LRU, vb);
	uint64_t once = serve(ref, LEN, NOBJ, CAP, HEAP_NO_PLAN, vb);
	fprintf(stderr,
		"cyclic %u objects, room for %u, %u epochs: heap %llu, MIN %llu, "
		"keep-once-full %llu, LRU %llu misses\n",
		NOBJ, CAP, EPOCHS, (unsigned long long)heap, (unsigned long long)min,
		(unsigned long long)once, (unsigned long long)lru);
	cr_assert_eq(heap, min);
	cr_assert_eq(lru, LEN, "LRU misses every get of a cycle longer than the cache");
	/* Keep-once-full keeps the first CAP - 1 objects; the last slot turns over. */
	cr_assert_eq(once, NOBJ + (uint64_t)(EPOCHS - 1) * (NOBJ - CAP + 1));
	cr_assert_lt(heap, once);
	cr_assert_lt(once, lru);
}

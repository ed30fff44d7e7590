/* SPDX-License-Identifier: MIT */
/*
 * The victims heap: every resident, unpinned object, so the cache can choose
 * what to give up in O(log n) instead of scanning everything resident.
 *
 * Order: the object with the largest next use is evicted first (Belady's MIN
 * when clients submitted plans), and among equal next uses the newest, the
 * largest stamp (keep-once-full when they did not: every unplanned object's
 * next use is UINT64_MAX, so the newest gives way and the set cached first
 * stays).  That is the choice stk__cache_victim makes by scanning.
 *
 * The heap is a binary max-heap of objects ordered by (vkey, stamp).  vkey is
 * not the next use itself but an upper bound of it, corrected lazily when an
 * object reaches the top.  The reason: a client's get moves its plan's cursor
 * and with it the next use of every object the plan lists; rekeying them all
 * would cost as much as the scan this replaces.  So the caller keeps one
 * invariant instead, and the heap corrects what turns up on top:
 *
 *	for every object o in the heap: o->vkey >= next_use(arg, o)
 *
 * A next use that falls (a cursor moves on, a plan is added or appended to)
 * keeps it with no call.  A next use that rises must be reported with
 * stk__victims_rekey before the next stk__victims_pick.  In prefetch/sched.c
 * terms, rises happen on:
 *  - stk__plan_advance: every object at positions cursor..head[obj] of the
 *    plan, the one consumed and any the get skipped over, moves to its next
 *    occurrence or to none;
 *  - stk__plan_free (a warm ending, a client closing): every object the plan
 *    lists;
 *  - stk__obj_unref: the object loses the plans of that dataset.
 * Reporting UINT64_MAX instead of the new next use is always allowed, and
 * costs one correction at the next pick that reaches it.
 *
 * Membership: an object is in the heap while it is resident and unpinned.
 * The caller adds it when it becomes resident unpinned or its pins fall to
 * 0, and deletes it when its pins rise from 0 or it stops being resident.
 * The heap uses o->vkey, o->vidx and reads o->stamp; o->stamp must not change
 * while o is in the heap, and must be set before o is added.  Stamps should
 * be unique (stk__cache_seal makes them so): with two equal stamps and equal
 * next uses either object may be chosen.
 *
 * A zeroed struct stk_victims is an empty heap.  Not thread-safe: the
 * scheduler's thread owns it, like the rest of struct stk_cache.  After
 * fork() the child's copy is valid but describes the parent's objects.
 */
#ifndef STOKER_VICTIM_H
#define STOKER_VICTIM_H

#include <stdint.h>

struct stk_object; /* cache/cache.h */

struct stk_victims {
	struct stk_object **h; /* h[i]->vidx == i + 1 */
	uint32_t n, cap;
};

/*
 * Adds o, which must be resident and unpinned, with key, an upper bound of
 * its next use (next_use itself, or UINT64_MAX).  O(log n).  If o is already
 * in the heap this is stk__victims_rekey.  Returns 0, or -ENOMEM when the
 * heap cannot grow (o is then not in the heap and v is unchanged).
 */
int stk__victims_add(struct stk_victims *v, struct stk_object *o, uint64_t key);

/* Removes o; no-op when o is not in the heap. O(log n). o->vidx is 0 after. */
void stk__victims_del(struct stk_victims *v, struct stk_object *o);

/*
 * Sets o's key to key, higher or lower than before; key must be an upper
 * bound of o's next use.  Call it whenever o's next use rises (see above).
 * No-op when o is not in the heap: a pinned object's key is given when it is
 * added again.  O(log n).
 */
void stk__victims_rekey(struct stk_victims *v, struct stk_object *o, uint64_t key);

/*
 * Returns the object to evict: the one with the largest next_use(arg, o),
 * the largest stamp among equals, with *dist set to that next use; or NULL
 * when the heap is empty (*dist untouched).  The object stays in the heap:
 * the caller deletes it when it evicts it.
 *
 * next_use must return an object's next use as it stands (prefetch/sched.c:
 * stk__next_use) and must not change the heap.  pick calls it on the top
 * object and corrects that object's key while the key is higher than it,
 * then calls it on the new top; each object is corrected at most once per
 * pick, so a pick costs O((1 + c) log n) where c is the number of keys that
 * had grown stale above the largest next use.  Corrected keys stay, so later
 * picks do not pay for them again.
 *
 * The result is the brute-force choice whenever the invariant above holds.
 * If the caller broke it (a rise not reported), the result is still an object
 * in the heap, possibly not the farthest.
 */
struct stk_object *stk__victims_pick(struct stk_victims *v,
				     uint64_t (*next_use)(void *arg, const struct stk_object *o),
				     void *arg, uint64_t *dist);

/*
 * Frees the heap's array and empties it; every object in it gets vidx 0.
 * The objects themselves belong to the caller.  v may be NULL.
 */
void stk__victims_fini(struct stk_victims *v);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The object table and the cache: which objects are resident, in which tier,
 * who holds them, and which to give up when room is needed.
 *
 * Accounting: every object resident or being fetched is charged what its
 * tier keeps from others for it (its size plus the tier's waste: a slab
 * slot's rounding, an extent's pages), and a tier never charges more than
 * its budget: stk__cache_alloc fails instead, and the caller evicts.
 * Pinned objects (held by a client) are never evicted.
 */
#ifndef STOKER_CACHE_H
#define STOKER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/tier.h"
#include "common/stall.h"
#include "cache/victim.h"

enum stk_obj_state {
	STK_OBJ_ABSENT,
	STK_OBJ_FETCHING,
	STK_OBJ_RESIDENT,
	STK_OBJ_FAILED, /* the last fetch failed; a get retries */
};

struct stk_waiter;   /* owned by prefetch/: a client request waiting for the object */
struct stk_rt_entry; /* proto/proto.h: a resident table's entry */
struct stk_plan;     /* owned by prefetch/ */
struct stk_transport_ops;

/* A place where a dataset lists an object: its plans and counters are reached through it. */
struct stk_obj_ref {
	struct stk_ds *ds;
	uint32_t index;
};

/*
 * A backend object, once in the daemon however many datasets of one trust
 * domain list it: the object table finds it by domain, URI, size and codec
 * (the backend's bytes, or those decoded from them: a .zst file opened with
 * and without STK_DS_ZSTD is two objects, even at one size), so the
 * same file reached through a directory and through a manifest is fetched
 * and charged once.  Clients of another domain (another uid, by default) get
 * a copy of their own: they may not map segments holding this one.
 */
struct stk_object {
	const char *uri; /* what the transport fetches; the table's key with size and domain */
	const struct stk_transport_ops *tp;
	uint64_t size;
	uint32_t domain;	  /* the trust domain of the clients that may read it */
	uint32_t hash;		  /* of uri, size and domain */
	struct stk_object *hnext; /* the table's chain */
	struct stk_obj_ref *refs; /* the datasets that list it: &ref0, or an array */
	struct stk_obj_ref ref0;  /* most objects are listed once: no allocation */
	uint32_t nrefs, caprefs;
	uint8_t state;
	uint8_t codec; /* enum stk_codec: its bytes decoded from the backend's (a key) */
	bool queued;   /* waiting for room on behalf of a get */
	/*
	 * RESIDENT bytes of a version the listing no longer names, kept only
	 * because clients hold them: never handed out again, evicted when the
	 * last hold goes, and gets meanwhile wait for the new version.
	 */
	bool stale;
	bool prefetched; /* fetched by a plan, not a get */
	uint32_t pins;
	uint32_t vidx;	   /* victims heap: its slot + 1, 0 when not in the heap */
	uint64_t fetch_ns; /* how long its last fetch took: the stall a synchronous read pays */
	char *version;	   /* its version: the listing's, else the fetch's ETag, or NULL */
	struct stk_obj_room *room; /* while a tier holds room for it (FETCHING, RESIDENT) */
	struct stk_t1obj *t1;	   /* its tier-1 copy or write (prefetch/tier1.c), or NULL */
	struct stk_waiter *waiters;
};

/*
 * What an object has only while a tier holds room for it: most of a
 * million-object dataset is listed and never resident at once, so this is
 * not in every object.
 */
struct stk_obj_room {
	struct stk_tier_obj t;		  /* the tier's storage */
	uint64_t fetch_start;		  /* when its fetch began */
	struct stk_object *rprev, *rnext; /* resident list */
	uint64_t stamp;			  /* when it became resident; ties go to the newest */
	uint64_t vkey;			  /* victims heap: an upper bound of its next use */
};

/* One object of a dataset, as the dataset names it. */
struct stk_ds_entry {
	struct stk_object *o;
	char *key;	 /* relative key, shown to clients */
	uint32_t line;	 /* the manifest line that named it, or 0 */
	bool key_in_uri; /* key is the tail of o->uri (a suffix, or all of it), not its own */
};

/*
 * A dataset: its list of objects and who uses it.  Shared by every client of
 * one trust domain that opens its URI.
 */
struct stk_ds {
	uint32_t id;
	uint32_t domain; /* the trust domain of the clients that opened it: see stk_object */
	char *uri;
	unsigned flags;
	uint32_t count;
	uint64_t bytes;
	struct stk_ds_entry *ents;
	int catalog_fd; /* sealed memfd sent with every OPEN reply: catalog, then resident table */
	uint32_t cat_len;	 /* the catalog's bytes in it */
	struct stk_rt_entry *rt; /* the resident table: the daemon's writable mapping */
	size_t rt_len;		 /* bytes mapped at rt */
	uint32_t resident, inflight, failed;
	uint64_t resident_bytes;
	uint32_t warm;	   /* STK_WARM_* */
	char *last_errmsg; /* the latest fetch failure, for STATUS */
	struct stk_plan *plans;
	struct stk_ds *next;
	unsigned users;	     /* handles open on it, over all clients */
	uint64_t idle_since; /* when users last fell to 0 */
	/*
	 * Opening: listing runs on a worker; OPENs that arrive meanwhile wait.
	 * An OPEN of a dataset nobody uses lists it again (revalidating), so a
	 * file rewritten since it was cached is fetched again.
	 */
	bool ready, revalidating;
	struct stk_waiter *open_waiters;
	/* Stall accounting (prefetch/obs.c). */
	struct stk_stall stall;
	int16_t label;		   /* its --metrics-dataset name's index, or -1 */
	int16_t ep;		   /* the endpoint of its URI (prefetch/obs.c), or -1 */
	struct stk_follow *follow; /* plan-less gets' streams, one per plan group (follow.c) */
};

/* The object table: a hash table of every object some dataset lists, chained. */
struct stk_objtab {
	struct stk_object **b;
	uint32_t mask; /* buckets - 1 */
	uint64_t n;
};

/* Finds domain's object for uri, size and codec, or NULL. */
struct stk_object *stk__objtab_find(const struct stk_objtab *t, uint32_t domain, const char *uri,
				    uint64_t size, uint8_t codec);
/* Adds o (its uri, size, codec and domain set, not already in). 0 or -ENOMEM. */
int stk__objtab_add(struct stk_objtab *t, struct stk_object *o);
void stk__objtab_del(struct stk_objtab *t, struct stk_object *o);
void stk__objtab_fini(struct stk_objtab *t);
/* Records that ds lists o at index. 0 or -ENOMEM. */
int stk__obj_ref(struct stk_object *o, struct stk_ds *ds, uint32_t index);
/* Frees o's list of references (when o is freed). */
void stk__obj_refs_free(struct stk_object *o);
/* Forgets ds's listing of o at index; returns the references left. */
uint32_t stk__obj_unref(struct stk_object *o, struct stk_ds *ds, uint32_t index);

struct stk_cache {
	struct stk_tier *tier; /* tier 0; its budget and used are the cache's */
	struct stk_tier t0;
	uint64_t stamp;
	uint64_t resident;
	uint64_t evictions;
	struct stk_object *res_head;
	struct stk_victims victims; /* resident objects nobody holds, farthest next use on top */
};

/*
 * Sets up c with tier 0 from ops and a budget of bytes (flags: the tier's).
 * 0, or -errno with err saying why.  Free with stk__cache_fini().
 */
int stk__cache_init(struct stk_cache *c, const struct stk_tier_ops *ops, uint64_t budget,
		    unsigned flags, char *err, size_t errlen);
void stk__cache_fini(struct stk_cache *c);

/*
 * Finds room for o and charges it; o becomes FETCHING, writable at o->room->t.map.
 * Returns 0; -EFBIG (never fits: err says so, naming o and the budget);
 * -ENOSPC or -EAGAIN (no room now: evict, then retry); or another -errno
 * with err.
 */
int stk__cache_alloc(struct stk_cache *c, struct stk_object *o, char *err, size_t errlen);

/* Makes a filled object resident. 0 or -ENOMEM with err (o stays FETCHING). */
int stk__cache_seal(struct stk_cache *c, struct stk_object *o, char *err, size_t errlen);

/* Frees o's storage (resident or half-filled) and its charge; o becomes ABSENT. */
void stk__cache_drop(struct stk_cache *c, struct stk_object *o);

/*
 * Chooses a victim among unpinned resident objects: the one whose next use
 * (next_use(arg, o), in plan positions; UINT64_MAX for never) is farthest,
 * newest first among equals.  That is Belady's MIN when plans are known, and
 * keep-once-full (the newest unplanned object gives way, so the set cached
 * first stays) when not: never LRU, which thrashes on cyclic epochs.
 * Returns the victim with *dist set to its next use, or NULL when every
 * resident object is pinned.  O(log n) amortized (cache/victim.h): next uses
 * may shrink freely, but the caller must call stk__cache_rekey() for an
 * object whose next use grew.
 */
struct stk_object *stk__cache_victim(struct stk_cache *c,
				     uint64_t (*next_use)(void *arg, const struct stk_object *o),
				     void *arg, uint64_t *dist);

/* o's next use may have grown: a plan passed it or went away. */
void stk__cache_rekey(struct stk_cache *c, struct stk_object *o);

/* A client's hold on o, which is never a victim while held. Returns true on the first. */
bool stk__cache_pin(struct stk_cache *c, struct stk_object *o);
/* Ends a hold. Returns true when the last one ended. */
bool stk__cache_unpin(struct stk_cache *c, struct stk_object *o);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Tier 1: the NVMe store (cache/nvme.h) under the RAM cache, placed by next
 * use like tier 0.  docs/nvme.md ("Integration") and docs/ARCHITECTURE.md
 * ("Tier 1") describe the policy; in short:
 *
 *  - Promotion: a fetch (demand or prefetch) of an object with a copy of
 *    its current version reads the copy into the RAM room instead of the
 *    backend.  A copy that fails its checksum is dropped by the store, and
 *    the object is fetched from its backend; so is one any other error
 *    kept from being read.
 *  - Demotion, exclusive under pressure: the copy of an object resident in
 *    RAM is redundant and worth least (t1key).  An object that became
 *    resident from its backend is written to tier 1 (pinned in RAM
 *    meanwhile) into free room only.  An object RAM evicts without a copy
 *    is written first (stk__tier1_evict: room() waits for it) when there is
 *    room, or when copies worth less than its next use can be dropped.
 *    Without a plan (next use unknown) only into room or a redundant
 *    copy's: keep-once-full otherwise.  An object evicted from RAM that has
 *    a copy is thereby demoted.
 *  - Identity: uri (with the codec its bytes were decoded with, if any),
 *    size, version, domain.  An object without a version (no listing
 *    version and no ETag yet) is never written: a copy could not be told
 *    stale.
 *  - Restart: copies are found by identity when datasets list their objects
 *    (stk__tier1_link), from the index the store rebuilt at open.
 *  - Degraded: the store refuses writes after a disk error; tier 1 then
 *    only serves what it holds, and says so once.
 *  - Compression (--nvme-compress LEVEL): a demotion first compresses the
 *    object's bytes on the worker pool (tier1_zst.c; the object pinned and
 *    the job counted in ops meanwhile), then places the frame as
 *    STK_NVME_ZSTD when it charges fewer bytes of the budget than the plain
 *    copy would, else the plain bytes.  A promotion of a compressed copy
 *    reads the frame into a temporary buffer and decodes it on the pool
 *    into the RAM room, to exactly the object's size; a frame that does not
 *    decode is dropped like a copy that failed its checksum.  Compressed
 *    copies are promoted whatever the flag says now.
 *
 * The copies heap: every object with a copy, the largest (next use, stamp)
 * on top, keys kept as upper bounds of next uses and corrected at pick, as
 * cache/victim.h explains (that heap works on RAM rooms, which an object
 * with only a tier-1 copy does not have).  O(log n) per change at 1.28M
 * copies.  Rises are reported by stk__tier1_rekey(), which stk__rekey()
 * calls beside stk__cache_rekey().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cache/nvme.h"
#include "common/log.h"
#include "prefetch/daemon.h"
#include "stoker.h"

struct t1_io;

/* What tier 1 knows of one object: its copy, or a write or retry of it. */
struct stk_t1obj {
	struct stk_object *o;
	struct stk_nvme_ent *e; /* its copy, or NULL */
	uint64_t vkey, stamp;	/* heap order: an upper bound of its next use, then age */
	uint32_t hidx;		/* heap slot + 1; 0 when not in the heap */
	bool writing;		/* a put of it is in flight or waits for room (o pinned) */
	bool orphan;		/* o was freed by its datasets during the write */
	bool retry;		/* in the retry list, its put parked in wait */
	bool promoted;		/* o's RAM copy was read from e */
	bool leaving;		/* written on its way out of RAM: its copy is not redundant */
	struct t1_io *wait;	/* the put refused -EAGAIN, retried from freed() */
	struct stk_t1obj *rnext;
};

struct t1_io {
	struct stk_nvme_op op;
	struct stk_daemon *d;
	struct stk_object *o;
	char *version;		/* a put's: o's version may change during it */
	struct stk_nvme_ent *e; /* a get's copy */
	struct stk_t1zst z;	/* --nvme-compress: the frame (z.z, malloc'd) and its job */
	bool evict;		/* a demotion room() waits for (stk__tier1_evict) */
};

static inline bool above(const struct stk_t1obj *a, const struct stk_t1obj *b)
{
	return a->vkey > b->vkey || (a->vkey == b->vkey && a->stamp > b->stamp);
}

static inline void hput(struct stk_tier1 *t, uint32_t i, struct stk_t1obj *x)
{
	t->h[i] = x;
	x->hidx = i + 1;
}

static void hfix(struct stk_tier1 *t, uint32_t i, struct stk_t1obj *x)
{
	while (i > 0 && above(x, t->h[(i - 1) / 2])) {
		hput(t, i, t->h[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		uint64_t l = 2 * (uint64_t)i + 1;
		if (l >= t->n)
			break;
		uint32_t c = (uint32_t)l;
		if (c + 1 < t->n && above(t->h[c + 1], t->h[c]))
			c++;
		if (!above(t->h[c], x))
			break;
		hput(t, i, t->h[c]);
		i = c;
	}
	hput(t, i, x);
}

static int hadd(struct stk_tier1 *t, struct stk_t1obj *x)
{
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 1024;
		struct stk_t1obj **h = realloc(t->h, (size_t)cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		t->h = h;
		t->cap = cap;
	}
	x->vkey = UINT64_MAX;
	x->stamp = ++t->stamp;
	t->n++;
	hfix(t, t->n - 1, x);
	return 0;
}

static void hdel(struct stk_tier1 *t, struct stk_t1obj *x)
{
	if (!x->hidx)
		return;
	uint32_t i = x->hidx - 1;
	x->hidx = 0;
	struct stk_t1obj *last = t->h[--t->n];
	if (last != x)
		hfix(t, i, last);
}

/* A copy's key when its object is needed again, but no plan says when. */
#define T1_UNKNOWN (UINT64_MAX - 1)

/* What a copy of o would be worth (the larger, the less): o's next use. */
static uint64_t worth(struct stk_daemon *d, const struct stk_object *o)
{
	uint64_t nu = stk__next_use(d, o);
	return nu < T1_UNKNOWN ? nu : T1_UNKNOWN;
}

/*
 * The heap's key of a copy: its worth, except that the copy of an object
 * resident in RAM is redundant (RAM serves it) and goes first, even for an
 * object no plan needs: the tiers hold what their sum holds, not what the
 * larger one does.  A copy written on its object's way out of RAM is not
 * redundant meanwhile.
 */
static uint64_t t1key(struct stk_daemon *d, const struct stk_t1obj *x)
{
	if (x->o->state == STK_OBJ_RESIDENT && !x->leaving)
		return UINT64_MAX;
	return worth(d, x->o);
}

/* The copy worth least (Belady's victim, redundant ones first), its key in *dist; or NULL. */
static struct stk_t1obj *hpick(struct stk_daemon *d, uint64_t *dist)
{
	struct stk_tier1 *t = &d->t1;
	while (t->n) {
		struct stk_t1obj *x = t->h[0];
		uint64_t nu = t1key(d, x);
		if (nu == x->vkey) {
			*dist = nu;
			return x;
		}
		x->vkey = nu;
		hfix(t, 0, x);
	}
	return NULL;
}

static struct stk_t1obj *t1obj(struct stk_object *o)
{
	if (!o->t1) {
		o->t1 = calloc(1, sizeof(*o->t1));
		if (o->t1)
			o->t1->o = o;
	}
	return o->t1;
}

static void retry_del(struct stk_tier1 *t, struct stk_t1obj *x)
{
	if (!x->retry)
		return;
	for (struct stk_t1obj **pp = &t->retry; *pp; pp = &(*pp)->rnext)
		if (*pp == x) {
			*pp = x->rnext;
			break;
		}
	x->retry = false;
}

/* Frees o's record when nothing is left in it. */
static void t1obj_trim(struct stk_daemon *d, struct stk_object *o)
{
	struct stk_t1obj *x = o->t1;
	if (!x || x->e || x->writing || x->retry)
		return;
	hdel(&d->t1, x);
	free(x);
	o->t1 = NULL;
}

/* Gives up o's copy: dropped from the store (drop) or already gone there. */
static void detach(struct stk_daemon *d, struct stk_object *o, bool drop)
{
	struct stk_t1obj *x = o->t1;
	if (!x || !x->e)
		return;
	if (drop)
		stk__nvme_drop(d->t1.s, x->e);
	x->e = NULL;
	x->promoted = false;
	hdel(&d->t1, x);
	t1obj_trim(d, o);
}

static void attach(struct stk_daemon *d, struct stk_object *o, struct stk_nvme_ent *e)
{
	struct stk_t1obj *x = t1obj(o);
	if (!x)
		return; /* out of memory: the copy stays unused until found again */
	x->e = e;
	if (!x->hidx && hadd(&d->t1, x))
		x->e = NULL;
	t1obj_trim(d, o);
}

/* An object's identity in the store. */
struct t1_id {
	struct stk_nvme_id id;
	char uri[STK_NVME_URI_MAX + 1]; /* a decoded object's: its URI and codec */
};

/*
 * o's identity: URI, size, version (the listing's, or the ETag), domain.
 * Bytes decoded on ingest are another object than the raw bytes of the same
 * URI (the object table's key has the codec), so their URI is stored with
 * "#codec=N" after it: the store keys on (domain, size, URI) and drops a
 * copy whose version differs, which must never be another object's.
 * Returns false when o cannot be stored: no version known yet (a copy
 * could not be told stale), or too long a URI.
 */
static bool nvme_id(const struct stk_object *o, struct t1_id *t)
{
	t->id = (struct stk_nvme_id){
		.uri = o->uri, .size = o->size, .version = o->version, .domain = o->domain
	};
	if (!o->version || !o->version[0])
		return false;
	if (o->codec) {
		int n = snprintf(t->uri, sizeof(t->uri), "%s#codec=%u", o->uri, (unsigned)o->codec);
		if (n < 0 || (size_t)n >= sizeof(t->uri))
			return false;
		t->id.uri = t->uri;
	}
	return true;
}

static void degraded(struct stk_daemon *d)
{
	char why[256];
	int err = stk__nvme_degraded(d->t1.s, why, sizeof(why));
	if (!err || d->t1.degraded_logged)
		return;
	d->t1.degraded_logged = true;
	stk_err("tier 1 (%s) is degraded, RAM only from now on: %s (%s)", d->cfg.nvme_dir, why,
		strerror(err));
}

void stk__tier1_link(struct stk_daemon *d, struct stk_object *o)
{
	struct t1_id t;
	if (!d->t1.s)
		return;
	bool known = nvme_id(o, &t);
	if (o->t1 && o->t1->e && (!known || strcmp(o->t1->e->version, o->version)))
		detach(d, o, true); /* a copy of an older version: never served */
	if (o->t1 && (o->t1->writing || o->t1->e))
		return; /* a put's callback checks the version it wrote */
	if (!known)
		return;
	struct stk_nvme_ent *e = stk__nvme_lookup(d->t1.s, &t.id);
	if (e)
		attach(d, o, e);
}

void stk__tier1_rekey(struct stk_daemon *d, struct stk_object *o)
{
	struct stk_t1obj *x = o->t1;
	if (x && x->hidx) {
		x->vkey = UINT64_MAX;
		hfix(&d->t1, x->hidx - 1, x);
	}
}

unsigned stk__tier1_promoted(const struct stk_object *o)
{
	return o->t1 && o->t1->promoted;
}

unsigned stk__tier1_busy(const struct stk_daemon *d)
{
	return d->t1.ops;
}

static void promoted(struct stk_daemon *d, struct stk_object *o)
{
	d->st[STK_ST_NVME_READS]++;
	d->st[STK_ST_NVME_READ_BYTES] += o->size;
	if (o->t1) {
		o->t1->promoted = true;
		o->t1->leaving = false;
	}
	stk__tier1_rekey(d, o); /* resident: its copy is redundant now */
	for (struct stk_waiter *w = o->waiters; w; w = w->next)
		d->st[STK_ST_HITS_NVME]++;
	stk__promoted(d, o);
}

/* A compressed copy's frame was decoded into o's room (or failed to). */
static void unzipped(struct stk_work *w)
{
	struct t1_io *io = stk_container_of(w, struct t1_io, z.w);
	struct stk_daemon *d = io->d;
	struct stk_object *o = io->o;
	struct stk_nvme_ent *e = io->e;
	int err = io->z.err;
	d->t1.ops--;
	d->st[STK_ST_NVME_CODEC_NS] += io->z.ns;
	if (!err) {
		free(io->z.z);
		free(io);
		promoted(d, o);
		return;
	}
	if (err == -EBADMSG) {
		/* Its checksum held but the frame is bad: never served, as a checksum failure. */
		d->st[STK_ST_NVME_DROPPED_CORRUPT]++;
		stk_warn("%s: tier-1 copy does not decode (%s); dropped, fetching it again", o->uri,
			 io->z.why);
		if (o->t1 && o->t1->e == e)
			detach(d, o, true);
	} else {
		stk_warn("decoding %s: %s; fetching it from its backend", o->uri, strerror(-err));
	}
	free(io->z.z);
	free(io);
	stk__fetch_backend(d, o);
}

static void read_done(struct stk_nvme_op *op, int64_t res)
{
	struct t1_io *io = (struct t1_io *)op;
	struct stk_daemon *d = io->d;
	struct stk_object *o = io->o;
	bool zst = io->z.z != NULL;
	if (zst && res >= 0 && (uint64_t)res == io->z.zlen) {
		/* Decoded on the pool into o's room; o stays in flight, the job in ops. */
		io->z.plain = o->room->t.map;
		io->z.size = o->size;
		io->z.name = o->uri;
		stk__t1zst_decompress(d->loop, &io->z, unzipped);
		return;
	}
	free(io->z.z);
	free(io);
	d->t1.ops--;
	if (!zst && res >= 0 && (uint64_t)res == o->size) {
		promoted(d, o);
		return;
	}
	if (res == -EBADMSG) {
		/* The store dropped it: never served.  The backend has the bytes. */
		d->st[STK_ST_NVME_DROPPED_CORRUPT]++;
		stk_warn("%s failed its checksum; dropped, fetching it again", o->uri);
		detach(d, o, false);
	} else {
		stk_warn("reading %s: %s; fetching it from its backend", o->uri,
			 strerror(res < 0 ? (int)-res : EIO));
	}
	stk__fetch_backend(d, o);
}

bool stk__tier1_promote(struct stk_daemon *d, struct stk_object *o)
{
	if (!d->t1.s)
		return false;
	stk__tier1_link(d, o);
	struct stk_nvme_ent *e = o->t1 ? o->t1->e : NULL;
	if (!e || e->size != o->size)
		return false;
	bool zst = e->flags == STK_NVME_ZSTD;
	if (!zst && (e->flags || e->stored_len != o->size))
		return false; /* flags this build does not know */
	struct t1_io *io = calloc(1, sizeof(*io));
	if (!io)
		return false;
	io->d = d;
	io->o = o;
	io->e = e;
	void *buf = o->room->t.map;
	if (zst) {
		/* The frame goes to a temporary buffer, outside the RAM budget until decoded. */
		io->z.zlen = e->stored_len;
		buf = io->z.z = malloc(e->stored_len ? e->stored_len : 1);
		if (!buf) {
			free(io);
			return false;
		}
	}
	if (stk__nvme_get(d->t1.s, e, buf, &io->op, read_done)) {
		free(io->z.z);
		free(io);
		return false;
	}
	d->t1.ops++;
	return true;
}

static void write_done(struct stk_nvme_op *op, int64_t res)
{
	struct t1_io *io = (struct t1_io *)op;
	struct stk_daemon *d = io->d;
	struct stk_object *o = io->o;
	struct stk_t1obj *x = o->t1;
	bool evict = io->evict;
	d->t1.ops--;
	if (evict)
		d->t1.evict_bytes -= o->size;
	x->writing = false;
	struct t1_id t;
	bool same = nvme_id(o, &t) && !strcmp(o->version, io->version);
	t.id.version = io->version;
	if (!res) {
		d->st[STK_ST_NVME_WRITES]++;
		d->st[STK_ST_NVME_WRITE_BYTES] += o->size;
		struct stk_nvme_ent *e = stk__nvme_lookup(d->t1.s, &t.id);
		if (e && (x->orphan || !same))
			stk__nvme_drop(d->t1.s, e); /* o changed meanwhile: that copy is stale */
		else if (e)
			attach(d, o, e);
	} else if (res != -ECANCELED) {
		stk_dbg("writing %s: %s", o->uri, strerror((int)-res));
		degraded(d);
	}
	free(io->version);
	free(io->z.z);
	free(io);
	if (x->orphan) {
		hdel(&d->t1, x);
		retry_del(&d->t1, x);
		free(x);
		o->t1 = NULL;
		stk__cache_drop(&d->cache, o); /* before the unpin: never a victim again */
		stk__unpin(d, o);
		stk__obj_free(o);
	} else {
		t1obj_trim(d, o);
		stk__unpin(d, o);
		/* Its room was wanted: without a copy it goes now, not written again. */
		if (evict && !(o->t1 && o->t1->e))
			stk__evict_unheld(d, o);
	}
	if (evict)
		stk__sched_run(d); /* room() waits for this room */
}

/* Starts writing io's bytes (its frame, or o's); -ENOSPC / -EAGAIN: make room or wait. */
static int put(struct stk_daemon *d, struct stk_object *o, const struct stk_nvme_id *id,
	       struct t1_io *io)
{
	int r = io->z.z
		    ? stk__nvme_put(d->t1.s, id, io->z.z, io->z.zlen, STK_NVME_ZSTD, &io->op,
				    write_done)
		    : stk__nvme_put(d->t1.s, id, o->room->t.map, o->size, 0, &io->op, write_done);
	if (r == -EEXIST) /* stored already: found again */
		stk__tier1_link(d, o);
	return r;
}

/*
 * Writes io for o (o->t1 set) where there is room, or where copies keyed
 * above nu (o's worth; UINT64_MAX: displace nothing) can be dropped for it.
 * Without a plan only redundant copies give way: keep-once-full otherwise.
 * Returns 0 when the write is in flight, or parked until dropped copies'
 * blocks are punched (freed() retries it): either way write_done follows.
 * Else put's -errno, io unused.
 */
static int place(struct stk_daemon *d, struct stk_object *o, const struct stk_nvme_id *id,
		 struct t1_io *io, uint64_t nu)
{
	int r;
	while ((r = put(d, o, id, io)) == -ENOSPC) {
		uint64_t vd = 0;
		struct stk_t1obj *v = hpick(d, &vd);
		if (!v || vd <= nu || v->o == o)
			break;
		stk_dbg("%s gives way to %s", v->o->uri, o->uri);
		detach(d, v->o, true);
	}
	if (r == -EAGAIN) {
		struct stk_t1obj *x = o->t1;
		x->wait = io;
		x->retry = true;
		x->rnext = d->t1.retry;
		d->t1.retry = x;
		return 0;
	}
	if (r == -EROFS)
		degraded(d);
	return r;
}

/* Places io's put after its compression or a wait for room; or ends it, cancelled. */
static void place_again(struct stk_daemon *d, struct t1_io *io)
{
	struct stk_object *o = io->o;
	struct stk_t1obj *x = o->t1;
	struct t1_id t;
	int r = -ECANCELED;
	if (!x->orphan && !d->stopping && nvme_id(o, &t) && !strcmp(o->version, io->version)) {
		x->writing = false; /* so that -EEXIST finds the stored copy (stk__tier1_link) */
		r = place(d, o, &t.id, io, io->evict ? worth(d, o) : UINT64_MAX);
		x->writing = true;
	}
	if (r)
		write_done(&io->op, -ECANCELED); /* unpins o, frees it if orphaned */
}

/* o's bytes were compressed on the pool (or not): places the frame, or the plain bytes. */
static void zipped(struct stk_work *w)
{
	struct t1_io *io = stk_container_of(w, struct t1_io, z.w);
	struct stk_daemon *d = io->d;
	struct stk_object *o = io->o;
	struct t1_id t;
	d->st[STK_ST_NVME_CODEC_NS] += io->z.ns;
	/*
	 * A record is charged in whole blocks: a frame that saves none only
	 * costs a decode at each promotion, so the plain bytes are stored.
	 */
	if (io->z.z && nvme_id(o, &t) &&
	    stk__nvme_charge(d->t1.s, &t.id, io->z.zlen) >=
		stk__nvme_charge(d->t1.s, &t.id, o->size)) {
		free(io->z.z);
		io->z.z = NULL;
	}
	place_again(d, io);
}

/*
 * Writes o (resident) to tier 1: on its way out of RAM (evict: it displaces
 * copies worth less than its next use), or as it lands (into free room
 * only).  o stays pinned until write_done.  0, or -errno: nothing started.
 */
static int demote(struct stk_daemon *d, struct stk_object *o, bool evict)
{
	struct t1_id t;
	/* Stopping: what lands while fetches drain is not written, so the exit is prompt. */
	if (!d->t1.s || d->stopping || o->state != STK_OBJ_RESIDENT || o->stale || !nvme_id(o, &t))
		return -EINVAL;
	if (o->t1 && (o->t1->e || o->t1->writing))
		return -EEXIST;
	if (stk__nvme_degraded(d->t1.s, NULL, 0)) {
		degraded(d);
		return -EROFS;
	}
	struct stk_t1obj *x = t1obj(o);
	struct t1_io *io = x ? calloc(1, sizeof(*io)) : NULL;
	if (!io || !(io->version = strdup(t.id.version))) {
		free(io);
		if (x)
			t1obj_trim(d, o);
		return -ENOMEM;
	}
	io->d = d;
	io->o = o;
	io->evict = evict;
	if (d->cfg.nvme_compress) {
		io->z.plain = o->room->t.map;
		io->z.size = o->size;
		io->z.level = d->cfg.nvme_compress;
	} else {
		int r = place(d, o, &t.id, io, evict ? worth(d, o) : UINT64_MAX);
		if (r) {
			free(io->version);
			free(io);
			t1obj_trim(d, o);
			return r;
		}
	}
	x->writing = true;
	x->leaving = evict;
	/* Its RAM bytes stay until the write ends (counted in pinned_objects meanwhile). */
	stk__pin(d, o);
	d->t1.ops++;
	if (evict)
		d->t1.evict_bytes += o->size;
	if (d->cfg.nvme_compress)
		stk__t1zst_compress(d->loop, &io->z, zipped);
	return 0;
}

void stk__tier1_demote(struct stk_daemon *d, struct stk_object *o)
{
	stk__tier1_rekey(d, o); /* resident: a copy it has is redundant now */
	demote(d, o, false);
}

bool stk__tier1_evict(struct stk_daemon *d, struct stk_object *o, uint64_t nu)
{
	nu = nu < T1_UNKNOWN ? nu : T1_UNKNOWN;
	struct t1_id t;
	if (!d->t1.s || (o->t1 && (o->t1->e || o->t1->writing)) || !nvme_id(o, &t))
		return false;
	uint64_t charge = stk__nvme_charge(d->t1.s, &t.id, o->size);
	struct stk_nvme_stats ns;
	stk__nvme_stats(d->t1.s, &ns);
	uint64_t vd = 0;
	/* Room (now or once dropped copies' blocks are back), or a copy worth less than o. */
	bool fits = charge && ns.used - ns.freeing + charge <= ns.budget;
	if (!fits && (!charge || !hpick(d, &vd) || vd <= nu))
		return false;
	return demote(d, o, true) == 0;
}

static void freed(void *arg)
{
	struct stk_daemon *d = arg;
	struct stk_t1obj *l = d->t1.retry;
	d->t1.retry = NULL;
	while (l) {
		struct stk_t1obj *x = l;
		struct t1_io *io = x->wait;
		l = x->rnext;
		x->retry = false;
		x->wait = NULL;
		place_again(d, io);
	}
}

bool stk__tier1_forget(struct stk_daemon *d, struct stk_object *o)
{
	struct stk_t1obj *x = o->t1;
	if (!x)
		return false;
	hdel(&d->t1, x);
	x->e = NULL; /* the copy stays on disk, found again if o is listed again */
	x->promoted = false;
	if (x->writing) {
		x->orphan = true; /* a parked put stays in the retry list: freed() ends it */
		return true;
	}
	retry_del(&d->t1, x);
	free(x);
	o->t1 = NULL;
	return false;
}

void stk__tier1_stats(const struct stk_daemon *d, uint64_t *st)
{
	if (!d->t1.s)
		return;
	struct stk_nvme_stats ns;
	stk__nvme_stats(d->t1.s, &ns);
	st[STK_ST_NVME_BUDGET] = ns.budget;
	st[STK_ST_NVME_USED] = ns.used;
	st[STK_ST_NVME_OBJECTS] = ns.objects;
	st[STK_ST_NVME_DEGRADED] = ns.degraded != 0;
	st[STK_ST_NVME_STORED_BYTES] = ns.payload;
	st[STK_ST_NVME_PLAIN_BYTES] = ns.plain;
}

int stk__tier1_open(struct stk_daemon *d)
{
	const struct stk_config *c = &d->cfg;
	d->t1.dir_fd = -1;
	if (!c->nvme_dir)
		return 0;
	if (!c->nvme) {
		stk_err("--nvme-dir %s needs --nvme SIZE, tier 1's budget", c->nvme_dir);
		return -EINVAL;
	}
	/* Two daemons must never share a store: the second would delete the first's writes. */
	d->t1.dir_fd = open(c->nvme_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->t1.dir_fd < 0) {
		int err = errno;
		stk_err("--nvme-dir %s: %s", c->nvme_dir, strerror(err));
		return -err;
	}
	if (flock(d->t1.dir_fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		stk_err("--nvme-dir %s: %s", c->nvme_dir,
			err == EWOULDBLOCK ? "another stokerd uses this directory" : strerror(err));
		return -err;
	}
	struct stk_nvme_opts o = {
		.opts_size = sizeof(o),
		.dir = c->nvme_dir,
		.budget = c->nvme,
		.flags = c->no_direct ? STK_NVME_NO_DIRECT : 0,
		.freed = freed,
		.freed_arg = d,
	};
	char e[512];
	uint64_t t0 = stk__now_ns();
	int r = stk__nvme_open(d->loop, &o, &d->t1.s, e, sizeof(e));
	if (r) {
		stk_err("--nvme-dir %s: cannot open tier 1: %s", c->nvme_dir, e);
		return r;
	}
	struct stk_nvme_stats ns;
	stk__nvme_stats(d->t1.s, &ns);
	stk_info("%s, %llu MiB budget: index rebuilt in %.2f s: %llu objects, %llu "
		 "bytes, %u discarded%s",
		 c->nvme_dir, (unsigned long long)(c->nvme >> 20),
		 (double)(stk__now_ns() - t0) / 1e9, (unsigned long long)ns.objects,
		 (unsigned long long)ns.used, ns.discarded, ns.direct ? "" : " (no O_DIRECT)");
	return 0;
}

void stk__tier1_close(struct stk_daemon *d)
{
	if (d->t1.ops)
		stk_warn("%u reads and writes unfinished at exit; the store is left "
			 "open (the next start discards half-written records)",
			 d->t1.ops);
	else
		stk__nvme_close(d->t1.s);
	d->t1.s = NULL;
	free(d->t1.h);
	d->t1.h = NULL;
	d->t1.n = d->t1.cap = 0;
	if (d->t1.dir_fd >= 0)
		close(d->t1.dir_fd);
	d->t1.dir_fd = -1;
}

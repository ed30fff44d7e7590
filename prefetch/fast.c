/* SPDX-License-Identifier: MIT */
/*
 * Gets without a round trip: resident tables and pin areas (docs/PROTOCOL.md,
 * "Resident tables").
 *
 * Each dataset's catalog memfd carries, after the catalog, a table with one
 * entry per object: where its bytes are (segment, generation, offset) and a
 * sequence number, odd while the entry may not be used.  The daemon alone
 * writes it (its mapping is the only writable one: the memfd is sealed
 * F_SEAL_FUTURE_WRITE).  Each session has a pin area: a small memfd the
 * client writes and the daemon only reads, in which the client records the
 * objects it reads through the table.
 *
 * A client's get of a resident object: read the entry (seq even), record a
 * pin, read seq again; unchanged, the view is good until the pin is cleared.
 * Before the daemon gives an object's room away, it makes every entry of the
 * object odd, then looks for pins on it in the pin areas of the sessions of
 * its trust domain.  Both sides store, then load (sequentially consistent),
 * so at least one sees the other: either the client sees the odd seq and
 * falls back to a GET, or the daemon sees the pin, publishes the entry again
 * and keeps the object (held, as a GET's hold would), until a later look
 * finds the pin gone.
 *
 * A client's share: what it holds through its pin area counts against
 * --client-max-pinned, as GETs' holds do (each up to the limit).  libstoker
 * never pins more than that (the HELLO reply tells it the limit); a client
 * found holding more when the daemon wants the room has written its pin
 * area itself, and is dropped, which frees all it held.  Objects in
 * dedicated segments are never published: they go through GET.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"

#define PIN_BUCKETS 256u /* per session: 1024 slots in 8 KiB */

uint64_t stk__fast_max(const struct stk_daemon *d)
{
	return d->cfg.no_fast_gets ? 0 : d->cfg.client_max_pinned;
}

int stk__rt_memfd(struct stk_ds *ds, const void *cat, size_t cat_len, uint32_t count)
{
	size_t off = stk__rt_off(cat_len), tlen = stk__rt_len(count);
	int fd = memfd_create("stoker:catalog", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	int r = ftruncate(fd, (off_t)(off + tlen)) < 0 ? -errno : 0;
	for (size_t done = 0; !r && done < cat_len;) {
		ssize_t k = pwrite(fd, (const char *)cat + done, cat_len - done, (off_t)done);
		if (k < 0 && errno != EINTR)
			r = -errno;
		else if (k > 0)
			done += (size_t)k;
	}
	void *map = MAP_FAILED;
	if (!r && tlen) {
		map = mmap(NULL, tlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
		if (map == MAP_FAILED)
			r = -errno;
		else
			madvise(map, tlen, MADV_DONTFORK);
	}
	/* Every entry starts odd: nothing is published until stk__rt_publish(). */
	for (uint32_t i = 0; !r && i < count; i++)
		((struct stk_rt_entry *)map)[i].seq = 1;
	if (!r && fcntl(fd, F_ADD_SEALS,
			F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
		r = -errno;
	if (r) {
		if (map != MAP_FAILED)
			munmap(map, tlen);
		close(fd);
		return r;
	}
	stk__rt_free(ds);
	ds->rt = tlen ? map : NULL;
	ds->rt_len = tlen;
	ds->cat_len = (uint32_t)cat_len;
	return fd;
}

void stk__rt_free(struct stk_ds *ds)
{
	if (!ds->rt)
		return;
	/* Clients may map it still, and must find nothing to use. */
	for (uint32_t i = 0; i < ds->rt_len / sizeof(struct stk_rt_entry); i++)
		__atomic_store_n(&ds->rt[i].seq, ds->rt[i].seq | 1, __ATOMIC_SEQ_CST);
	munmap(ds->rt, ds->rt_len);
	ds->rt = NULL;
	ds->rt_len = 0;
}

/* Whether o may be read through the tables: resident, shared segment, small enough. */
static bool publishable(const struct stk_daemon *d, const struct stk_object *o)
{
	struct stk_arena_seg sg;
	return o->state == STK_OBJ_RESIDENT && !o->stale && o->size &&
	       o->size <= stk__fast_max(d) && o->room->t.ext.seg != STK_ARENA_NOSEG &&
	       o->room->t.ext.off <= UINT32_MAX &&
	       d->cache.tier->ops->segment(d->cache.tier, o->room->t.ext.seg, &sg) == 0 &&
	       !sg.dedicated;
}

static struct stk_rt_entry *entry(const struct stk_obj_ref *r)
{
	return r->ds->rt && r->index < r->ds->rt_len / sizeof(struct stk_rt_entry)
		   ? &r->ds->rt[r->index]
		   : NULL;
}

/* Writes where o is into e: odd while it changes, even (usable) after. */
static void put(struct stk_rt_entry *e, const struct stk_object *o)
{
	uint32_t seq = e->seq | 1;
	__atomic_store_n(&e->seq, seq, __ATOMIC_SEQ_CST);
	__atomic_store_n(&e->seg, o->room->t.ext.seg, __ATOMIC_RELAXED);
	__atomic_store_n(&e->gen, o->room->t.ext.gen, __ATOMIC_RELAXED);
	__atomic_store_n(&e->off, (uint32_t)o->room->t.ext.off, __ATOMIC_RELAXED);
	__atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELEASE);
}

void stk__rt_publish(struct stk_daemon *d, struct stk_object *o)
{
	if (!publishable(d, o))
		return;
	for (uint32_t i = 0; i < o->nrefs; i++) {
		struct stk_rt_entry *e = entry(&o->refs[i]);
		if (e)
			put(e, o);
	}
}

void stk__rt_publish_ds(struct stk_daemon *d, struct stk_ds *ds)
{
	for (uint32_t i = 0; i < ds->count; i++) {
		struct stk_obj_ref r = { .ds = ds, .index = i };
		struct stk_rt_entry *e = entry(&r);
		if (e && publishable(d, ds->ents[i].o))
			put(e, ds->ents[i].o);
	}
}

/* Whether s has a pin on one of o's entries. */
static bool pinned_by(const struct stk_session *s, const struct stk_object *o)
{
	if (!s->pin_area || s->domain != o->domain)
		return false;
	for (uint32_t i = 0; i < o->nrefs; i++) {
		uint64_t key = stk__pin_key(o->refs[i].ds->id, o->refs[i].index);
		const uint64_t *b =
		    s->pin_area + (size_t)stk__pin_bucket(key, s->pin_buckets) * STK_PIN_WAYS;
		for (unsigned w = 0; w < STK_PIN_WAYS; w++)
			if (__atomic_load_n(&b[w], __ATOMIC_SEQ_CST) == key)
				return true;
	}
	return false;
}

uint64_t stk__pins_bytes(const struct stk_session *s)
{
	uint64_t bytes = 0;
	const struct stk_ds *ds = NULL;
	if (!s->pin_area)
		return 0;
	for (size_t i = 0; i < (size_t)s->pin_buckets * STK_PIN_WAYS; i++) {
		uint64_t key = __atomic_load_n(&s->pin_area[i], __ATOMIC_RELAXED);
		if (!key)
			continue;
		uint32_t id = (uint32_t)(key >> 32), index = (uint32_t)key;
		if (!ds || ds->id != id) {
			ds = NULL;
			for (uint32_t h = 0; h < s->nhandles && !ds; h++)
				if (s->handles[h].ds && s->handles[h].ds->id == id)
					ds = s->handles[h].ds;
		}
		if (ds && index < ds->count)
			bytes += ds->ents[index].o->size;
	}
	return bytes;
}

/* The first live session with a pin on o, or NULL. */
static struct stk_session *pinner(const struct stk_daemon *d, const struct stk_object *o)
{
	for (struct stk_session *s = d->sessions; s; s = s->next)
		if (pinned_by(s, o))
			return s;
	return NULL;
}

static void held_drop(struct stk_daemon *d, uint32_t i)
{
	struct stk_held h = d->held[i];
	d->held[i] = d->held[--d->nheld];
	h.s->held_bytes -= h.o->size;
	stk__unpin(d, h.o);
}

/* Lets go of what s holds through its pin area that it no longer pins. */
static void recheck_session(struct stk_daemon *d, struct stk_session *s)
{
	for (uint32_t i = 0; i < d->nheld;)
		if (d->held[i].s == s && !pinned_by(s, d->held[i].o))
			held_drop(d, i);
		else
			i++;
}

bool stk__rt_retract(struct stk_daemon *d, struct stk_object *o)
{
	bool published = false;
	for (uint32_t i = 0; i < o->nrefs; i++) {
		struct stk_rt_entry *e = entry(&o->refs[i]);
		if (e && !(e->seq & 1)) {
			__atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_SEQ_CST);
			published = true;
		}
	}
	struct stk_session *s;
	while (published && (s = pinner(d, o))) {
		if (s->held_bytes + o->size <= d->cfg.client_max_pinned) {
			if (d->nheld == d->capheld) {
				uint32_t cap = d->capheld ? d->capheld * 2 : 64;
				struct stk_held *v = realloc(d->held, cap * sizeof(*v));
				if (!v)
					goto keep; /* not held: it is found pinned again next time
						    */
				d->held = v;
				d->capheld = cap;
			}
			d->held[d->nheld++] = (struct stk_held){ .o = o, .s = s };
			s->held_bytes += o->size;
			stk__pin(d, o);
			goto keep;
		}
		recheck_session(d, s);
		if (s->held_bytes + o->size <= d->cfg.client_max_pinned)
			continue;
		/* libstoker never pins more than its share: this client wrote its area itself. */
		stk__session_drop(
		    d, s, "holds more than --client-max-pinned through its pin area; dropped");
	}
	return true;
keep:
	/* A client reads it: it stays where it is, and the entries say so again. */
	for (uint32_t i = 0; i < o->nrefs; i++) {
		struct stk_rt_entry *e = entry(&o->refs[i]);
		if (e)
			__atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELEASE);
	}
	return false;
}

void stk__rt_hide(struct stk_daemon *d, struct stk_object *o)
{
	for (uint32_t i = 0; i < o->nrefs; i++) {
		struct stk_rt_entry *e = entry(&o->refs[i]);
		if (e && !(e->seq & 1))
			__atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_SEQ_CST);
	}
}

bool stk__rt_recheck(struct stk_daemon *d)
{
	bool freed = false;
	for (uint32_t i = 0; i < d->nheld;) {
		if (pinned_by(d->held[i].s, d->held[i].o)) {
			i++;
			continue;
		}
		held_drop(d, i);
		freed = true;
	}
	return freed;
}

void stk__rt_forget(struct stk_daemon *d, struct stk_object *o)
{
	for (uint32_t i = 0; i < d->nheld;)
		if (d->held[i].o == o)
			held_drop(d, i);
		else
			i++;
}

int stk__pins_create(struct stk_daemon *d, struct stk_session *s)
{
	if (!stk__fast_max(d))
		return -ENOTSUP;
	size_t len = stk__pin_area_len(PIN_BUCKETS);
	int fd = memfd_create("stoker:pins", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* The client may write it, never resize it: a shrunk area would fault the daemon. */
	int r = ftruncate(fd, (off_t)len) < 0 ||
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0
		    ? -errno
		    : 0;
	/* Writable for the segment generations: nothing read back from it is trusted. */
	void *map = r ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!r && map == MAP_FAILED)
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	madvise(map, len, MADV_DONTFORK);
	s->pin_area = map;
	s->pin_buckets = PIN_BUCKETS;
	s->seg_gens = (uint32_t *)((uint8_t *)map + stk__pin_gens_off(PIN_BUCKETS));
	return fd;
}

void stk__pins_free(struct stk_daemon *d, struct stk_session *s)
{
	if (!s->pin_area)
		return;
	munmap((void *)s->pin_area, stk__pin_area_len(s->pin_buckets));
	s->pin_area = NULL;
	s->seg_gens = NULL;
	/* Its pins are gone with it. */
	recheck_session(d, s);
}

void stk__seg_sent(struct stk_session *s, uint32_t seg, uint32_t gen)
{
	if (s->seg_gens && seg < STK_SEG_GENS)
		__atomic_store_n(&s->seg_gens[seg], gen + 1, __ATOMIC_RELEASE);
}

/* The tier closed segment seg: clients that were sent it may unmap it. */
static void seg_gone(void *arg, uint32_t seg, uint32_t gen)
{
	struct stk_daemon *d = arg;
	for (struct stk_session *s = d->sessions; s; s = s->next)
		if (s->seg_gens && seg < STK_SEG_GENS && s->seg_gens[seg] == gen + 1)
			__atomic_store_n(&s->seg_gens[seg], 0, __ATOMIC_RELEASE);
}

void stk__fast_init(struct stk_daemon *d)
{
	d->cache.tier->gone = seg_gone;
	d->cache.tier->gone_arg = d;
}

void stk__fast_fini(struct stk_daemon *d)
{
	free(d->held);
	d->held = NULL;
	d->nheld = d->capheld = 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libstoker: gets without a round trip (docs/PROTOCOL.md, "Resident tables").
 *
 * An OPEN brings the dataset's resident table (read-only, written by the
 * daemon) and the connection's HELLO a pin area (written here, read by the
 * daemon).  A get of a published object: read its entry (seq even), take a
 * free slot of the key's bucket in the pin area, read seq again; unchanged,
 * the object's bytes stay where the entry says until the slot is cleared,
 * which is what releasing the view does.  Anything else (an odd seq, a full
 * bucket, a segment this connection was never sent, a forked child) falls
 * back to a GET.  The objects got this way are told to the daemon in GOT
 * messages, a few dozen at a time, so its plans move and its counters count.
 */
#include "client_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOT_WAIT 2000000ull /* ns: a GOT is sent when the oldest entry is this old */

int stk__fast_map_pins(struct stk_client *c, int fd, uint32_t buckets, uint64_t limit)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size != stk__pin_area_len(buckets)) {
		close(fd);
		return -EPROTO;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	/* A forked child must not write its parent's pins (it gets -ECHILD instead). */
	madvise(p, (size_t)st.st_size, MADV_DONTFORK);
	c->pin_len = (size_t)st.st_size;
	c->pins = p;
	c->pin_buckets = buckets;
	c->pin_limit = limit;
	c->segs.gens = (const uint32_t *)((uint8_t *)p + stk__pin_gens_off(buckets));
	return 0;
}

void stk__fast_unmap_pins(struct stk_client *c)
{
	if (c->pins && !stk__forked(c))
		munmap(c->pins, c->pin_len);
	c->pins = NULL;
	c->segs.gens = NULL;
}

int stk__fast_map_table(struct stk_dataset *ds, int fd, uint32_t cat_len)
{
	size_t len = stk__rt_len(ds->count);
	if (!len)
		return 0;
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)stk__rt_off(cat_len));
	if (p == MAP_FAILED)
		return -errno;
	ds->rt = p;
	ds->rt_len = len;
	return 0;
}

void stk__fast_unmap_table(struct stk_dataset *ds)
{
	if (ds->rt)
		munmap((void *)ds->rt, ds->rt_len);
	ds->rt = NULL;
}

/* Takes the GOT entries to send, under c->mu. Returns how many were copied to out. */
static uint32_t got_take(struct stk_dataset *ds, uint32_t *out)
{
	uint32_t n = ds->ngot;
	memcpy(out, ds->got, n * sizeof(*out));
	/* Atomic: stk__got_flush() peeks at it without the lock. */
	__atomic_store_n(&ds->ngot, 0, __ATOMIC_RELAXED);
	return n;
}

static void got_post(struct stk_dataset *ds, const uint32_t *idx, uint32_t n)
{
	uint8_t msg[STK_HDR_SIZE + 8 + 4 * STK_GOT_MAX];
	if (!n || __atomic_load_n(&ds->closed, __ATOMIC_ACQUIRE))
		return;
	long len = stk__enc_batch(msg, sizeof(msg), STK_MSG_GOT, 0, ds->id, idx, n);
	if (len > 0)
		stk__post(ds->c, msg, (size_t)len);
}

void stk__got_flush(struct stk_dataset *ds)
{
	struct stk_client *c = ds->c;
	uint32_t idx[STK_GOT_MAX], n;
	if (!__atomic_load_n(&ds->ngot, __ATOMIC_RELAXED) || stk__forked(c))
		return;
	pthread_mutex_lock(&c->mu);
	n = got_take(ds, idx);
	pthread_mutex_unlock(&c->mu);
	got_post(ds, idx, n);
}

void stk__got_flush_all(struct stk_client *c)
{
	uint32_t idx[STK_GOT_MAX];
	if (stk__forked(c))
		return;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		struct stk_dataset *ds = c->datasets;
		while (ds && !ds->ngot)
			ds = ds->next;
		uint32_t n = ds ? got_take(ds, idx) : 0;
		if (ds)
			__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_unlock(&c->mu);
		if (!ds)
			return;
		got_post(ds, idx, n);
		stk__ds_unref(ds);
	}
}

/* Clears the pin slot holding key (any one of them: equal pins are interchangeable). */
static void unpin(struct stk_client *c, uint64_t key)
{
	uint64_t *b = c->pins + (size_t)stk__pin_bucket(key, c->pin_buckets) * STK_PIN_WAYS;
	for (unsigned w = 0; w < STK_PIN_WAYS; w++) {
		uint64_t k = key;
		/* Release: reads of the object happen before the daemon may reuse its room. */
		if (__atomic_compare_exchange_n(&b[w], &k, 0, false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			return;
	}
}

int stk__fast_get(struct stk_dataset *ds, uint32_t index, struct stk_view *v, bool batch)
{
	struct stk_client *c = ds->c;
	/* A connection known dead answers every get with its error, as a GET would. */
	if (!ds->rt || !c->pins || stk__forked(c) || __atomic_load_n(&c->dead, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	const struct stk_rt_entry *e = &ds->rt[index];
	uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
	if (seq & 1)
		return -EAGAIN;
	struct stk_get_where g = { .seg = __atomic_load_n(&e->seg, __ATOMIC_RELAXED),
				   .gen = __atomic_load_n(&e->gen, __ATOMIC_RELAXED),
				   .off = __atomic_load_n(&e->off, __ATOMIC_RELAXED),
				   .size = ds->sizes[index] };
	/* The daemon drops a client that holds more than its share through pins. */
	uint64_t size = g.size;
	if (__atomic_add_fetch(&c->pin_bytes, size, __ATOMIC_RELAXED) > c->pin_limit) {
		__atomic_sub_fetch(&c->pin_bytes, size, __ATOMIC_RELAXED);
		return -EAGAIN;
	}
	uint64_t key = stk__pin_key(ds->daemon_id, index);
	uint64_t *b = c->pins + (size_t)stk__pin_bucket(key, c->pin_buckets) * STK_PIN_WAYS;
	/*
	 * The CAS below is sequentially consistent, so a release: the loads of
	 * seg, gen and off above cannot move past it, nor past the second read
	 * of seq; an unchanged seq then says they were read whole.
	 */
	unsigned w = 0;
	for (; w < STK_PIN_WAYS; w++) {
		uint64_t zero = 0;
		if (__atomic_compare_exchange_n(&b[w], &zero, key, false, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED))
			break;
	}
	if (w == STK_PIN_WAYS)
		goto unpinned;
	/* The daemon marks the entry before it looks for pins: one of us sees the other. */
	if (__atomic_load_n(&e->seq, __ATOMIC_SEQ_CST) != seq)
		goto unpin;
	const uint8_t *base = NULL;
	uint32_t idx[STK_GOT_MAX], n = 0;
	uint64_t now = stk__now_ns();
	pthread_mutex_lock(&c->mu);
	int r = stk__segs_take(&c->segs, &g, -1, &base);
	if (!r) {
		if (!ds->ngot)
			ds->got_t0 = now;
		ds->got[ds->ngot] = index;
		__atomic_store_n(&ds->ngot, ds->ngot + 1, __ATOMIC_RELAXED);
		/*
		 * With a plan, the daemon prefetches from the plan's cursor: a
		 * step's gets told only at the next step (GOT_WAIT passed) cost
		 * the demo a third more stall.  One send (no reply) per get.
		 */
		if (ds->ngot == STK_GOT_MAX || now - ds->got_t0 > GOT_WAIT ||
		    (!batch && __atomic_load_n(&ds->planned, __ATOMIC_RELAXED)))
			n = got_take(ds, idx);
	}
	pthread_mutex_unlock(&c->mu);
	if (r) /* a segment this connection has not mapped: a GET brings it */
		goto unpin;
	got_post(ds, idx, n);
	memset(v, 0, sizeof(*v));
	v->data = base + g.off;
	v->size = g.size;
	v->index = index;
	v->flags = STK_VIEW_HIT | STK_VIEW_FAST_;
	v->seg = g.seg;
	v->gen = g.gen;
	v->ds = ds;
	__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL); /* the view's */
	return 0;
unpin:
	__atomic_store_n(&b[w], 0, __ATOMIC_RELEASE);
unpinned:
	__atomic_sub_fetch(&c->pin_bytes, size, __ATOMIC_RELAXED);
	return -EAGAIN;
}

void stk__fast_release(struct stk_view *v)
{
	struct stk_client *c = v->ds->c;
	/* A forked child's copy of the view: the parent's pin is the parent's to clear. */
	if (stk__forked(c))
		return;
	unpin(c, stk__pin_key(v->ds->daemon_id, v->index));
	__atomic_sub_fetch(&c->pin_bytes, v->size, __ATOMIC_RELAXED);
}

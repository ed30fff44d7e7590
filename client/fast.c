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
 * back to a GET.  Every get is told to the daemon in WAITS messages, with
 * the time its caller waited, a few dozen at a time (docs/stall.md), so its
 * plans move past the objects got here, and its counters count them.
 */
#include "client_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REP_WAIT 2000000ull /* ns: queued WAITS entries go when the oldest is this old */

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

/* Takes the queued entries to send, under c->mu. Returns how many were copied to out. */
static uint32_t rep_take(struct stk_dataset *ds, struct stk_wait_rec *out)
{
	uint32_t n = ds->nrep;
	memcpy(out, ds->rep, n * sizeof(*out));
	ds->nrep_got = 0;
	/* Atomic: stk__waits_flush() peeks at it without the lock. */
	__atomic_store_n(&ds->nrep, 0, __ATOMIC_RELAXED);
	return n;
}

/* Sends n entries, in messages of at most STK_REP_MAX. */
static void rep_post(struct stk_dataset *ds, const struct stk_wait_rec *e, size_t n)
{
	uint8_t msg[STK_HDR_SIZE + 8 + STK_WAITS_ENTRY * STK_REP_MAX];
	if (!n || __atomic_load_n(&ds->closed, __ATOMIC_ACQUIRE))
		return;
	for (size_t off = 0; off < n; off += STK_REP_MAX) {
		uint32_t k = (uint32_t)(n - off < STK_REP_MAX ? n - off : STK_REP_MAX);
		long len = stk__enc_waits(msg, sizeof(msg), 0, ds->id, e + off, k);
		if (len > 0)
			stk__post(ds->c, msg, (size_t)len);
	}
}

/*
 * Queues n entries (under c->mu), at most STK_REP_MAX; what must go now is
 * copied to out.  Returns how many entries that is.
 */
static uint32_t rep_queue(struct stk_dataset *ds, const struct stk_wait_rec *e, uint32_t n,
			  uint64_t now, bool at_once, struct stk_wait_rec *out)
{
	uint32_t k = 0;
	if (ds->nrep + n > STK_REP_MAX)
		k = rep_take(ds, out);
	if (!ds->nrep)
		ds->rep_t0 = now;
	memcpy(ds->rep + ds->nrep, e, n * sizeof(*e));
	for (uint32_t i = 0; i < n; i++)
		ds->nrep_got += e[i].flags & STK_WAIT_GOT ? 1 : 0;
	__atomic_store_n(&ds->nrep, ds->nrep + n, __ATOMIC_RELAXED);
	/*
	 * With a plan, the daemon prefetches from the plan's cursor: a step's
	 * gets told only at the next step cost the demo a third more stall.
	 */
	if (ds->nrep == STK_REP_MAX || now - ds->rep_t0 > REP_WAIT || at_once)
		k += rep_take(ds, out + k);
	return k;
}

/* Queues (or sends) the n entries at e. */
static void rep_add(struct stk_dataset *ds, const struct stk_wait_rec *e, size_t n, bool at_once)
{
	struct stk_client *c = ds->c;
	struct stk_wait_rec out[2 * STK_REP_MAX];
	if (stk__forked(c))
		return;
	if (n > STK_REP_MAX) { /* a large batch: what is queued, then it, at once */
		stk__waits_flush(ds, false);
		rep_post(ds, e, n);
		return;
	}
	uint64_t now = stk__now_ns();
	pthread_mutex_lock(&c->mu);
	uint32_t k = rep_queue(ds, e, (uint32_t)n, now, at_once, out);
	pthread_mutex_unlock(&c->mu);
	rep_post(ds, out, k);
}

void stk__waits_add(struct stk_dataset *ds, const struct stk_view *v, size_t n, uint64_t wait_ns,
		    bool got)
{
	struct stk_wait_rec one, *e = n == 1 ? &one : malloc(n * sizeof(*e));
	bool any_got = false;
	if (!e || !n) /* no memory: the daemon misses this report, nothing else */
		return;
	for (size_t i = 0; i < n; i++) {
		bool fast = got && (v[i].flags & STK_VIEW_FAST_);
		any_got |= fast;
		e[i].index = v[i].index;
		e[i].flags = (i ? STK_WAIT_CONT : 0) |
			     (v[i].flags & STK_VIEW_HIT ? 0 : STK_WAIT_MISS) |
			     (fast ? STK_WAIT_GOT : 0);
		e[i].wait_ns = i ? 0 : wait_ns;
	}
	rep_add(ds, e, n, any_got);
	if (e != &one)
		free(e);
}

int stk_report_wait(struct stk_dataset *ds, uint32_t index, uint64_t wait_ns)
{
	if (!ds || index >= ds->count) {
		stk__set_err("stk_report_wait: %s", ds ? "index past the catalog" : "NULL dataset");
		return -EINVAL;
	}
	if (stk__forked(ds->c))
		return stk__forked_err(ds->c);
	struct stk_wait_rec e = { .index = index, .flags = STK_WAIT_COPY, .wait_ns = wait_ns };
	rep_add(ds, &e, 1, false);
	return 0;
}

void stk__waits_got(struct stk_dataset *ds, const struct stk_view *v, size_t n)
{
	struct stk_wait_rec *e = malloc((n ? n : 1) * sizeof(*e));
	size_t k = 0;
	for (size_t i = 0; e && i < n; i++)
		if (v[i].flags & STK_VIEW_FAST_)
			e[k++] = (struct stk_wait_rec){ .index = v[i].index,
							.flags = STK_WAIT_GOT | STK_WAIT_NONE };
	if (k)
		rep_add(ds, e, k, true);
	free(e);
	stk__waits_flush(ds, true);
}

void stk__waits_flush(struct stk_dataset *ds, bool got_only)
{
	struct stk_client *c = ds->c;
	struct stk_wait_rec e[STK_REP_MAX];
	uint32_t n = 0;
	if (!__atomic_load_n(&ds->nrep, __ATOMIC_RELAXED) || stk__forked(c))
		return;
	pthread_mutex_lock(&c->mu);
	if (!got_only || ds->nrep_got)
		n = rep_take(ds, e);
	pthread_mutex_unlock(&c->mu);
	rep_post(ds, e, n);
}

void stk__waits_flush_all(struct stk_client *c)
{
	struct stk_wait_rec e[STK_REP_MAX];
	if (stk__forked(c))
		return;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		struct stk_dataset *ds = c->datasets;
		while (ds && !ds->nrep)
			ds = ds->next;
		uint32_t n = ds ? rep_take(ds, e) : 0;
		if (ds)
			__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_unlock(&c->mu);
		if (!ds)
			return;
		rep_post(ds, e, n);
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

int stk__fast_get(struct stk_dataset *ds, uint32_t index, struct stk_view *v, uint64_t t0)
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
	struct stk_wait_rec out[2 * STK_REP_MAX];
	uint32_t n = 0;
	uint64_t now = t0 ? stk__now_ns() : 0;
	pthread_mutex_lock(&c->mu);
	int r = stk__segs_take(&c->segs, &g, -1, &base);
	if (!r && t0) {
		struct stk_wait_rec rec = { .index = index,
					    .flags = STK_WAIT_GOT,
					    .wait_ns = now - t0 };
		n = rep_queue(ds, &rec, 1, now, __atomic_load_n(&ds->planned, __ATOMIC_RELAXED),
			      out);
	}
	pthread_mutex_unlock(&c->mu);
	if (r) /* a segment this connection has not mapped: a GET brings it */
		goto unpin;
	rep_post(ds, out, n);
	memset(v, 0, sizeof(*v));
	v->data = base + g.off;
	v->size = g.size;
	v->index = index;
	v->flags = STK_VIEW_HIT | STK_VIEW_FAST_;
	v->seg = g.seg;
	v->gen = g.gen;
	v->ds = ds;
	v->wait_ns = now - t0;
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

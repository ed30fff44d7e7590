/* SPDX-License-Identifier: MIT */
/*
 * libstoker: gets, views and batches.  A GET answers where its object is in one of the
 * daemon's segments; the reading thread maps the segment (segments.c)
 * before waking anyone, and a view is the mapping's base plus the offset.
 * A GETB's replies fill their positions' views as objects become resident.
 */
#include "client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * For a successful GET reply: maps the segment it names (or counts a view
 * of a mapping this client has), here in the reader with the lock held, so
 * that a later reply naming the same segment without its fd finds it mapped
 * whichever thread is woken first.  Takes x->fd.
 */
void stk__map_reply(struct stk_client *c, struct waiter *x)
{
	struct stk_reply r;
	x->base = NULL;
	x->map_err = 0;
	if (x->len < STK_HDR_SIZE ||
	    (x->buf[0] | x->buf[1] << 8) != (STK_MSG_GET | STK_MSG_REPLY) ||
	    stk__reply_decode(x->buf, x->len, &r, NULL, 0) || r.status < 0 ||
	    r.u.get.seg == STK_SEG_NONE)
		return;
	x->map_err = stk__segs_take(&c->segs, &r.u.get, x->fd, &x->base);
	x->fd = -1;
	/* A GET is a round trip anyway: a look at which segments closed is cheap beside it. */
	stk__segs_trim(&c->segs);
}

/* A GETB in flight: its views fill in as replies arrive, in any order. */
struct batch {
	struct stk_view *views; /* by position */
	uint8_t *state;		/* by position: 0 waiting, 1 got (held), 2 failed */
	uint32_t n, left;
	int err;	  /* the lowest failed position's error */
	uint32_t err_pos; /* ... and its position (n: none yet) */
	char msg[STK_ERRMSG_MAX];
};

/* Records a failure of position pos; the lowest position's is the one reported. */
static void batch_fail(struct batch *b, uint32_t pos, int err, const char *msg)
{
	if (pos < b->err_pos || b->err_pos == b->n) {
		b->err = err;
		b->err_pos = pos < b->n ? pos : b->n - 1;
		snprintf(b->msg, sizeof(b->msg), "%s", msg);
	}
}

/*
 * One GETB reply, in the reader with the lock held: fills its position's
 * view (mapping the segment as for a GET), or records its error.  Takes fd.
 */
void stk__batch_reply(struct stk_client *c, struct waiter *x, const uint8_t *buf, size_t n, int fd)
{
	struct batch *b = x->batch;
	struct stk_reply r;
	char e[200];
	if (stk__reply_decode(buf, n, &r, e, sizeof(e)) ||
	    (r.h.type & ~STK_MSG_REPLY) != STK_MSG_GETB || r.h.flags >= b->n ||
	    b->state[r.h.flags]) {
		if (fd >= 0)
			close(fd);
		/* Which object it answers is unknown: the batch cannot end well. */
		batch_fail(b, 0, -EPROTO, "malformed GETB reply from stokerd");
		b->left = 0;
		x->done = true;
		return;
	}
	uint32_t pos = r.h.flags;
	struct stk_view *v = &b->views[pos];
	if (r.status < 0) {
		if (fd >= 0)
			close(fd);
		b->state[pos] = 2;
		batch_fail(b, pos, r.status, r.errmsg);
	} else {
		b->state[pos] = 1; /* held by the daemon, whatever happens to the mapping */
		const uint8_t *base = NULL;
		int mr = r.u.get.seg == STK_SEG_NONE
			     ? (fd >= 0 ? close(fd), 0 : 0)
			     : stk__segs_take(&c->segs, &r.u.get, fd, &base);
		v->size = r.u.get.size;
		v->flags = r.u.get.flags & STK_GET_HIT ? STK_VIEW_HIT : 0;
		v->seg = base ? r.u.get.seg : STK_SEG_NONE;
		v->gen = r.u.get.gen;
		v->data = base ? base + r.u.get.off : NULL;
		if (mr)
			batch_fail(b, pos, mr, "cannot map a segment of stokerd's");
	}
	if (--b->left == 0)
		x->done = true;
}

/* Counts a get in the client's totals. */
static void count_get(struct stk_client *c, const struct stk_view *v)
{
	__atomic_fetch_add(&c->gets, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(v->flags & STK_VIEW_HIT ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->bytes, v->size, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->wait_ns, v->wait_ns, __ATOMIC_RELAXED);
}

/*
 * A get: on success, fills v (a view counted on its segment's mapping, and a
 * hold, which stk_release() ends): through the resident table when fast and
 * the object is there, else by a GET, whose hold is in the daemon.
 */
static int get_view(struct stk_dataset *ds, size_t index, struct stk_view *v, bool fast)
{
	memset(v, 0, sizeof(*v));
	if (index >= ds->count) {
		stk__set_err("object index %zu is out of range (dataset has %u)", index, ds->count);
		return -ERANGE;
	}
	if (fast && stk__fast_get(ds, (uint32_t)index, v, stk__now_ns()) == 0) {
		count_get(ds->c, v);
		return 0;
	}
	stk__waits_flush(ds, true); /* the daemon's plan moves past them before this GET */
	uint8_t msg[32];
	long len = stk__enc_obj(msg, sizeof(msg), STK_MSG_GET, 0, ds->id, (uint32_t)index);
	struct waiter *w = stk__waiter_new(REPLY_SMALL);
	if (!w)
		return -ENOMEM;
	uint64_t t0 = stk__now_ns();
	struct stk_reply rp;
	int r = stk__call(ds->c, msg, (size_t)len, w);
	if (!r)
		r = stk__reply(w, STK_MSG_GET, &rp);
	v->wait_ns = stk__now_ns() - t0;
	struct stk_client *c = ds->c;
	if (!r && rp.u.get.seg != STK_SEG_NONE && !w->base) {
		r = w->map_err ? w->map_err : -EPROTO;
		if (r == -EPROTO)
			stk__set_err("stokerd placed object %s in segment %u, which it never sent",
				     ds->keys[index], rp.u.get.seg);
		else
			stk__set_err("cannot map the segment of object %s (%llu bytes): %s",
				     ds->keys[index], (unsigned long long)rp.u.get.seg_size,
				     strerror(-r));
		/* The daemon holds it for us all the same: let go. */
		__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL);
		stk_release_index(ds, index);
	}
	if (!r) {
		v->size = rp.u.get.size;
		v->data = w->base ? w->base + rp.u.get.off : NULL;
		v->flags = rp.u.get.flags & STK_GET_HIT ? STK_VIEW_HIT : 0;
		v->index = (uint32_t)index;
		v->seg = rp.u.get.seg;
		v->gen = rp.u.get.gen;
		v->ds = ds;
		count_get(c, v);
		stk__waits_add(ds, v, 1, v->wait_ns, false);
		__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL); /* the hold's */
	}
	free(w);
	return r;
}

/* Ends v's use of its segment's mapping. */
static void put_view(struct stk_view *v)
{
	struct stk_client *c = v->ds->c;
	/* A forked child must not take a lock a parent thread may have held at the fork. */
	if (v->seg == STK_SEG_NONE || !v->data || stk__forked(c))
		return;
	pthread_mutex_lock(&c->mu);
	stk__segs_put(&c->segs, v->seg, v->gen);
	pthread_mutex_unlock(&c->mu);
}

int stk_get(struct stk_dataset *ds, size_t index, struct stk_view *v)
{
	return get_view(ds, index, v, true);
}

/*
 * A private copy of the object in a sealed memfd of its own: objects live
 * packed in shared segments, which a program wanting an fd (the shim's
 * open()) must not see whole.  One copy of the object's bytes; the hold is
 * kept until stk_release_index(), as before.
 */
int stk_get_fd(struct stk_dataset *ds, size_t index, int *fd, uint64_t *size)
{
	struct stk_view v;
	int r =
	    get_view(ds, index, &v, false); /* the hold is the daemon's: see stk_release_index */
	if (r)
		return r;
	int mfd = memfd_create("stoker:object", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	r = mfd < 0 ? -errno : 0;
	/* pwrite: the descriptor's offset stays at 0, where a reader starts. */
	for (uint64_t off = 0; !r && off < v.size;) {
		ssize_t k = pwrite(mfd, (const char *)v.data + off, v.size - off, (off_t)off);
		if (k < 0 && errno != EINTR)
			r = -errno;
		else if (k > 0)
			off += (uint64_t)k;
	}
	if (!r &&
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		r = -errno;
	put_view(&v);
	if (r) {
		stk__set_err("cannot copy object %s into a memfd: %s", ds->keys[index],
			     strerror(-r));
		if (mfd >= 0)
			close(mfd);
		stk_release_index(ds, index);
		return r;
	}
	*fd = mfd;
	*size = v.size;
	return 0;
}

void stk_release_index(struct stk_dataset *ds, size_t index)
{
	if (!__atomic_load_n(&ds->closed, __ATOMIC_ACQUIRE)) {
		uint8_t msg[32];
		long len =
		    stk__enc_obj(msg, sizeof(msg), STK_MSG_RELEASE, 0, ds->id, (uint32_t)index);
		stk__post(ds->c, msg, (size_t)len);
	}
	stk__ds_unref(ds);
}

void stk_release(struct stk_view *v)
{
	if (!v || !v->ds)
		return;
	put_view(v);
	if (v->flags & STK_VIEW_FAST_) {
		stk__fast_release(v);
		stk__ds_unref(v->ds);
	} else {
		stk_release_index(v->ds, v->index);
	}
	memset(v, 0, sizeof(*v));
}

/*
 * GETBs for the n objects idx names, in chunks, into views (state: 1 for a
 * view got, as struct batch says).  Returns 0 or the first failure.
 */
static int get_batch_slow(struct stk_dataset *ds, const uint32_t *idx, size_t n,
			  struct stk_view *views, uint8_t *state)
{
	uint8_t *msg = malloc(STK_MSG_MAX);
	struct waiter *w = stk__waiter_new(REPLY_SMALL);
	int r = msg && w ? 0 : -ENOMEM;
	for (size_t off = 0; !r && off < n;) {
		/* Chunks the daemon's per-client limit on waiting requests leaves room for. */
		uint32_t k = (uint32_t)(n - off < GETB_CHUNK ? n - off : GETB_CHUNK);
		struct batch b = {
			.views = views + off, .state = state + off, .n = k, .left = k, .err_pos = k
		};
		long len = stk__enc_batch(msg, STK_MSG_MAX, STK_MSG_GETB, 0, ds->id, idx + off, k);
		w->batch = &b;
		r = stk__call(ds->c, msg, (size_t)len, w);
		w->batch = NULL;
		if (!r && b.err_pos < k) {
			r = b.err;
			stk__set_err("%s", b.msg);
		}
		for (uint32_t i = 0; i < k; i++) {
			struct stk_view *v = &views[off + i];
			v->index = idx[off + i];
			if (state[off + i] == 1) {
				v->ds = ds;
				__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL); /* the hold's */
			}
		}
		off += k;
	}
	free(msg);
	free(w);
	return r;
}

int stk_get_batch(struct stk_dataset *ds, const uint32_t *idx, size_t n, struct stk_view *views)
{
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= ds->count) {
			stk__set_err("batch entry %zu: object index %u is out of range (dataset "
				     "has %u)",
				     i, idx[i], ds->count);
			return -ERANGE;
		}
	}
	memset(views, 0, n * sizeof(*views));
	struct stk_client *c = ds->c;
	uint64_t t0 = stk__now_ns();
	/* Resident objects through the table; the rest by GETB, scattered back after. */
	uint32_t *pos = malloc((n ? n : 1) * sizeof(*pos));
	uint32_t *sidx = malloc((n ? n : 1) * sizeof(*sidx));
	int r = pos && sidx ? 0 : -ENOMEM;
	size_t ns = 0;
	for (size_t i = 0; !r && i < n; i++) {
		if (stk__fast_get(ds, idx[i], &views[i], 0) == 0)
			continue;
		pos[ns] = (uint32_t)i;
		sidx[ns++] = idx[i];
	}
	struct stk_view *sv = NULL;
	uint8_t *state = NULL;
	if (!r && ns) {
		/* The daemon's plan moves past the resident ones before the GETB. */
		stk__waits_got(ds, views, n);
		sv = calloc(ns, sizeof(*sv));
		state = calloc(ns, 1);
		r = sv && state ? get_batch_slow(ds, sidx, ns, sv, state) : -ENOMEM;
		for (size_t j = 0; sv && j < ns; j++)
			views[pos[j]] = sv[j];
	}
	uint64_t wait = stk__now_ns() - t0;
	if (r) {
		/* All or nothing: give back what did arrive. */
		char keep[STK_ERRMSG_MAX];
		snprintf(keep, sizeof(keep), "%s", stk_errmsg());
		for (size_t i = 0; i < n; i++)
			if (views[i].ds)
				stk_release(&views[i]);
		memset(views, 0, n * sizeof(*views));
		stk__set_err("%s", keep);
	} else {
		uint64_t bytes = 0, hits = 0;
		for (size_t i = 0; i < n; i++) {
			views[i].wait_ns = wait;
			bytes += views[i].size;
			hits += views[i].flags & STK_VIEW_HIT ? 1 : 0;
		}
		__atomic_fetch_add(&c->gets, n, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->hits, hits, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->misses, n - hits, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->bytes, bytes, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->wait_ns, wait, __ATOMIC_RELAXED);
		/* One request; its resident objects are told now if not before the GETB. */
		stk__waits_add(ds, views, n, wait, ns == 0);
	}
	free(pos);
	free(sidx);
	free(sv);
	free(state);
	return r;
}

void stk_release_batch(struct stk_view *views, size_t n)
{
	/* One RELEASEB per run of views of the same dataset. */
	uint32_t idx[GETB_CHUNK];
	uint8_t *msg = NULL;
	for (size_t i = 0; i < n;) {
		struct stk_dataset *ds = views[i].ds;
		if (!ds) {
			i++;
			continue;
		}
		uint32_t k = 0;
		size_t j = i;
		for (; j < n && k < GETB_CHUNK && views[j].ds == ds; j++) {
			put_view(&views[j]);
			if (views[j].flags & STK_VIEW_FAST_)
				stk__fast_release(&views[j]);
			else
				idx[k++] = views[j].index;
		}
		if (k && !__atomic_load_n(&ds->closed, __ATOMIC_ACQUIRE)) {
			if (!msg)
				msg = malloc(8 + STK_HDR_SIZE + 4 * GETB_CHUNK);
			long len = msg ? stk__enc_batch(msg, 8 + STK_HDR_SIZE + 4 * GETB_CHUNK,
							STK_MSG_RELEASEB, 0, ds->id, idx, k)
				       : -1;
			if (len > 0)
				stk__post(ds->c, msg, (size_t)len);
			else /* no memory for one message: one each */
				for (uint32_t t = 0; t < k; t++) {
					uint8_t one[32];
					long l1 = stk__enc_obj(one, sizeof(one), STK_MSG_RELEASE, 0,
							       ds->id, idx[t]);
					stk__post(ds->c, one, (size_t)l1);
				}
		}
		for (size_t t = i; t < j; t++) {
			memset(&views[t], 0, sizeof(views[t]));
			stk__ds_unref(ds);
		}
		i = j;
	}
	free(msg);
}

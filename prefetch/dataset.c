/* SPDX-License-Identifier: MIT */
/*
 * The dataset registry.  A dataset is opened once per URI (and flags) and
 * trust domain, and shared by every client of that domain that opens it, so
 * their plans meet in one object table and one cache.  Another domain's
 * clients get a dataset and objects of their own (see stk_object).  file:// URIs are normalised
 * first ("//", "/./" and a trailing '/' do not make another dataset).  Listing (a directory walk, a
 * manifest, an object-store listing) blocks, so it runs on a worker; OPENs
 * that arrive meanwhile wait for it.  A failed listing is forgotten, so a
 * later OPEN tries again.
 *
 * Lifetime: a dataset stays while any client has it open or any of its
 * objects is cached (the next epoch's process finds it warm); one that is
 * unused with nothing cached is forgotten after --dataset-grace.  An OPEN of
 * a dataset nobody has open lists it again: objects whose version (a file's
 * inode, size and mtime; an object's ETag) changed are dropped and fetched
 * anew, and if the set of objects changed, the dataset is rebuilt.  While a
 * dataset is open, every client sees the same snapshot of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"
#include "stoker.h"
#include "transports/transport.h"

#define TRIM_AT 65536 /* objects in a listing that make it worth a malloc_trim() */

struct open_job {
	struct stk_work w;
	struct stk_daemon *d;
	struct stk_ds *ds;
	void (*ready)(struct stk_daemon *d, struct stk_waiter *w, struct stk_ds *ds, int err,
		      const char *msg);
	struct stk_catalog cat; /* the listing, handed to the loop thread */
	int err;
	char msg[600];
};

/* Writes the catalog clients receive into a sealed memfd. Returns the fd or -errno. */
static int catalog_memfd(struct stk_ds *ds, const struct stk_ds_entry *ents, uint32_t count)
{
	size_t len = 8;
	for (uint32_t i = 0; i < count; i++)
		len += 12 + strlen(ents[i].key);
	uint8_t *mem = malloc(len);
	if (!mem)
		return -ENOMEM;
	struct stk_buf b;
	stk__buf_init(&b, mem, len);
	stk__put_u32(&b, STK_CATALOG_MAGIC);
	stk__put_u32(&b, count);
	for (uint32_t i = 0; i < count; i++) {
		size_t kl = strlen(ents[i].key);
		stk__put_u64(&b, ents[i].o->size);
		stk__put_u32(&b, (uint32_t)kl);
		stk__put_bytes(&b, ents[i].key, kl);
	}
	int fd = stk__rt_memfd(ds, mem, len, count);
	free(mem);
	return fd;
}

static void open_work(struct stk_work *w)
{
	struct open_job *j = (struct open_job *)w;
	struct stk_ds *ds = j->ds;
	j->err = stk__catalog_build(ds->uri, ds->flags & STK_DS_MANIFEST, ds->flags & STK_DS_ZSTD,
				    &j->cat, j->msg, sizeof(j->msg));
	if (!j->err && j->cat.n >= STK_NONE) {
		snprintf(j->msg, sizeof(j->msg), "%s: %u objects is more than a dataset may hold",
			 ds->uri, j->cat.n);
		j->err = -E2BIG;
	}
	for (uint32_t i = 0; !j->err && i < j->cat.n; i++) {
		int r;
		if (!stk__transport_find(j->cat.e[i].uri, &r, j->msg, sizeof(j->msg)))
			j->err = r;
	}
	if (j->err)
		stk__catalog_free(&j->cat);
}

void stk__obj_free(struct stk_object *o)
{
	free((char *)o->uri);
	free(o->version);
	stk__obj_refs_free(o);
	free(o);
}

/*
 * Ends ds's listing of o at index; an object no dataset lists any more leaves
 * the table and the cache.  Nobody can hold or wait for it then: holds and
 * gets are taken through a dataset that lists it.
 */
static void obj_put(struct stk_daemon *d, struct stk_object *o, struct stk_ds *ds, uint32_t index)
{
	if (stk__obj_unref(o, ds, index)) {
		stk__rekey(d, o); /* ds's plans no longer count */
		return;
	}
	stk__rt_forget(d, o);
	stk__objtab_del(&d->objects, o);
	if (stk__tier1_forget(d, o))
		return; /* a write to tier 1 reads its bytes: freed when it ends */
	stk__cache_drop(&d->cache, o);
	stk__obj_free(o);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/*
 * The object for catalog entry e, from the table or new.  A version that
 * differs from the one the table knows (a file rewritten, an object
 * replaced) drops the cached bytes, which are fetched anew; bytes a client
 * still holds stay until it releases them.  Returns NULL for -ENOMEM.
 */
static struct stk_object *obj_get(struct stk_daemon *d, uint32_t domain,
				  struct stk_catalog_entry *e)
{
	struct stk_object *o = stk__objtab_find(&d->objects, domain, e->uri, e->size, e->codec);
	if (o) {
		if (e->version && !same_str(o->version, e->version)) {
			if (o->version && o->state == STK_OBJ_RESIDENT)
				stk__stale(d, o);
			free(o->version);
			o->version = e->version;
			e->version = NULL;
			stk__tier1_link(d, o); /* a copy of the old version is dropped */
		}
		return o;
	}
	int r;
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->tp = stk__transport_find(e->uri, &r, NULL, 0);
	o->uri = e->uri;
	o->size = e->size;
	o->codec = e->codec;
	o->domain = domain;
	o->version = e->version;
	if (stk__objtab_add(&d->objects, o)) {
		free(o);
		return NULL;
	}
	e->uri = e->version = NULL; /* now the object's */
	stk__tier1_link(d, o);	    /* a copy kept before a restart */
	return o;
}

static void ents_free(struct stk_daemon *d, struct stk_ds *ds, struct stk_ds_entry *ents,
		      uint32_t n)
{
	for (uint32_t i = 0; ents && i < n; i++) {
		if (!ents[i].key_in_uri)
			free(ents[i].key);
		if (ents[i].o)
			obj_put(d, ents[i].o, ds, i);
	}
	free(ents);
}

/* Recounts ds's totals from its objects' states. */
static void ds_recount(struct stk_ds *ds)
{
	ds->bytes = ds->resident_bytes = 0;
	ds->resident = ds->inflight = ds->failed = 0;
	for (uint32_t i = 0; i < ds->count; i++) {
		const struct stk_object *o = ds->ents[i].o;
		ds->bytes += o->size;
		ds->resident += o->state == STK_OBJ_RESIDENT;
		ds->resident_bytes += o->state == STK_OBJ_RESIDENT ? o->size : 0;
		ds->inflight += o->state == STK_OBJ_FETCHING;
		ds->failed += o->state == STK_OBJ_FAILED;
	}
}

/*
 * Makes ds's entries from cat (taking its strings), finding each object in
 * the table; the entries ds had before are released after, so objects listed
 * both times stay.  0 or -errno with msg.
 */
static int ents_from_catalog(struct stk_daemon *d, struct stk_ds *ds, struct stk_catalog *cat,
			     char *msg, size_t len)
{
	struct stk_ds_entry *ents = calloc(cat->n ? cat->n : 1, sizeof(*ents));
	int r = ents ? 0 : -ENOMEM;
	for (uint32_t i = 0; !r && i < cat->n; i++) {
		struct stk_object *o = obj_get(d, ds->domain, &cat->e[i]);
		if (!o || stk__obj_ref(o, ds, i)) {
			r = -ENOMEM;
			break;
		}
		ents[i].o = o;
		ents[i].line = cat->e[i].line;
		/*
		 * A key that is the tail of its URI (the catalog says) points into
		 * the object's copy of the URI, which outlives the entry.
		 */
		if (cat->e[i].key_in_uri) {
			ents[i].key = (char *)o->uri + strlen(o->uri) - strlen(cat->e[i].key);
			ents[i].key_in_uri = true;
		} else {
			ents[i].key = cat->e[i].key;
			cat->e[i].key = NULL;
			cat->e[i].key_in_uri = false;
		}
	}
	int fd = r ? r : catalog_memfd(ds, ents, cat->n);
	if (fd < 0) {
		snprintf(msg, len, "%s: %s", ds->uri,
			 fd == -ENOMEM ? "out of memory" : "cannot build the catalog");
		ents_free(d, ds, ents, cat->n);
		return fd;
	}
	if (ds->catalog_fd >= 0)
		close(ds->catalog_fd);
	ds->catalog_fd = fd;
	struct stk_ds_entry *old = ds->ents;
	uint32_t n = ds->count;
	ds->ents = ents;
	ds->count = cat->n;
	ents_free(d, ds, old, n);
	ds_recount(ds);
	stk__rt_publish_ds(d, ds);
	return 0;
}

static void ds_free(struct stk_daemon *d, struct stk_ds *ds)
{
	stk__follow_free(d, ds);
	ents_free(d, ds, ds->ents, ds->count);
	stk__rt_free(ds);
	if (ds->catalog_fd >= 0)
		close(ds->catalog_fd);
	free(ds->uri);
	free(ds->last_errmsg);
	free(ds);
}

static void ds_unlink(struct stk_daemon *d, struct stk_ds *ds)
{
	for (struct stk_ds **pp = &d->datasets; *pp; pp = &(*pp)->next) {
		if (*pp == ds) {
			*pp = ds->next;
			break;
		}
	}
}

static void open_done(struct stk_work *w)
{
	struct open_job *j = (struct open_job *)w;
	struct stk_daemon *d = j->d;
	struct stk_ds *ds = j->ds;
	struct stk_waiter *ws = ds->open_waiters;
	bool again = ds->revalidating;
	uint32_t was = ds->count;
	ds->open_waiters = NULL;
	ds->revalidating = false;
	stk__obs_listed(d, ds->uri, j->err);
	if (!j->err)
		j->err = ents_from_catalog(d, ds, &j->cat, j->msg, sizeof(j->msg));
	bool big = j->cat.n >= TRIM_AT;
	stk__catalog_free(&j->cat);
	/*
	 * A listing's strings were built on a worker (another malloc arena) and
	 * are freed now: give the pages back rather than keep them in RSS
	 * (about 100 B an object for a million-object manifest).
	 */
	if (big)
		malloc_trim(0);
	if (j->err) {
		stk_warn("open %s: %s", ds->uri, j->msg);
		ds_unlink(d, ds);
		if (again)
			d->st[STK_ST_DATASETS]--;
		ds_free(d, ds);
		ds = NULL;
	} else if (!again) {
		ds->ready = true;
		d->st[STK_ST_DATASETS]++;
		stk_info("dataset %s: %u objects, %llu bytes", ds->uri, ds->count,
			 (unsigned long long)ds->bytes);
	} else if (ds->count != was) {
		stk_info("dataset %s listed anew: %u objects, were %u", ds->uri, ds->count, was);
	}
	while (ws) {
		struct stk_waiter *n = ws->next;
		j->ready(d, ws, ds, j->err, j->msg);
		ws = n;
	}
	free(j);
}

/*
 * Writes uri into out (len bytes), normalised: for file:// URIs, repeated
 * '/', "." components and a trailing '/' are removed.  ".." is kept: it is
 * resolved beneath the root when opened, where symlinks are known.  Returns
 * the normalised length, or 0 when it does not fit.
 */
static size_t normalise(const char *uri, uint32_t uri_len, char *out, size_t len)
{
	if (uri_len >= len)
		return 0;
	if (uri_len < 8 || memcmp(uri, "file:///", 8)) {
		memcpy(out, uri, uri_len);
		out[uri_len] = 0;
		return uri_len;
	}
	size_t o = 7; /* "file://" */
	memcpy(out, uri, o);
	for (uint32_t i = 7; i < uri_len;) {
		while (i < uri_len && uri[i] == '/')
			i++;
		uint32_t e = i;
		while (e < uri_len && uri[e] != '/')
			e++;
		if (e == i || (e - i == 1 && uri[i] == '.')) {
			i = e;
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, uri + i, e - i);
		o += e - i;
		i = e;
	}
	if (o == 7)
		out[o++] = '/';
	out[o] = 0;
	return o;
}

/*
 * Whether nobody uses ds or waits for any of its objects, so that its
 * entries may be replaced or released.
 */
static bool ds_quiet(const struct stk_ds *ds)
{
	if (!ds->ready || ds->revalidating || ds->users || ds->plans || ds->inflight ||
	    ds->open_waiters)
		return false;
	for (uint32_t i = 0; i < ds->count; i++)
		if (ds->ents[i].o->queued || ds->ents[i].o->waiters)
			return false;
	return true;
}

static void start_listing(struct stk_daemon *d, struct stk_ds *ds, struct open_job *j,
			  void (*ready)(struct stk_daemon *d, struct stk_waiter *w,
					struct stk_ds *ds, int err, const char *msg))
{
	j->d = d;
	j->ds = ds;
	j->ready = ready;
	j->w.work = open_work;
	j->w.done = open_done;
	stk_loop_work(d->loop, &j->w);
}

void stk__ds_open(struct stk_daemon *d, uint32_t domain, const char *uri, uint32_t uri_len,
		  unsigned flags, struct stk_waiter *w,
		  void (*ready)(struct stk_daemon *d, struct stk_waiter *w, struct stk_ds *ds,
				int err, const char *msg))
{
	char msg[600], norm[STK_URI_MAX + 1];
	int err;
	size_t nl = normalise(uri, uri_len, norm, sizeof(norm));
	if (!nl) {
		snprintf(msg, sizeof(msg), "URI longer than %u bytes", STK_URI_MAX);
		ready(d, w, NULL, -ENAMETOOLONG, msg);
		return;
	}
	for (struct stk_ds *ds = d->datasets; ds; ds = ds->next) {
		if (ds->domain != domain || ds->flags != flags || strcmp(ds->uri, norm))
			continue;
		if (ds_quiet(ds)) {
			struct open_job *j = calloc(1, sizeof(*j));
			if (j) {
				ds->revalidating = true;
				start_listing(d, ds, j, ready);
			}
		}
		if (ds->revalidating || !ds->ready) {
			w->next = ds->open_waiters;
			ds->open_waiters = w;
		} else {
			ready(d, w, ds, 0, NULL);
		}
		return;
	}
	struct stk_ds *ds = calloc(1, sizeof(*ds));
	struct open_job *j = calloc(1, sizeof(*j));
	if (!ds || !j || !(ds->uri = strdup(norm))) {
		free(ds);
		free(j);
		snprintf(msg, sizeof(msg), "out of memory opening %.500s", norm);
		ready(d, w, NULL, -ENOMEM, msg);
		return;
	}
	ds->catalog_fd = -1;
	ds->domain = domain;
	ds->flags = flags;
	/* Reject an unknown scheme now rather than on a worker. */
	if (!stk__transport_find(ds->uri, &err, msg, sizeof(msg))) {
		ds_free(d, ds);
		free(j);
		ready(d, w, NULL, err, msg);
		return;
	}
	stk__obs_ds(d, ds);
	ds->id = ++d->next_ds_id;
	ds->next = d->datasets;
	d->datasets = ds;
	w->next = NULL;
	ds->open_waiters = w;
	start_listing(d, ds, j, ready);
}

void stk__ds_unuse(struct stk_daemon *d, struct stk_ds *ds)
{
	if (ds->users && --ds->users == 0) {
		ds->idle_since = stk__now_ns();
		stk__follow_free(d, ds); /* nobody reads it: no stream to follow */
	}
}

void stk__ds_sweep(struct stk_daemon *d, uint64_t now)
{
	for (struct stk_ds **pp = &d->datasets; *pp;) {
		struct stk_ds *ds = *pp;
		if (!ds->resident && now - ds->idle_since >= d->cfg.dataset_grace_ns &&
		    ds_quiet(ds)) {
			*pp = ds->next;
			stk_dbg("dataset %s: unused with nothing cached; forgotten", ds->uri);
			d->st[STK_ST_DATASETS]--;
			ds_free(d, ds);
			continue;
		}
		pp = &ds->next;
	}
}

void stk__ds_free_all(struct stk_daemon *d)
{
	while (d->datasets) {
		struct stk_ds *ds = d->datasets;
		d->datasets = ds->next;
		stk__follow_free(d, ds);
		while (ds->plans)
			stk__plan_free(d, ds->plans);
		ds_free(d, ds);
	}
	stk__objtab_fini(&d->objects);
	stk__victims_fini(&d->cache.victims);
}

/* SPDX-License-Identifier: MIT */
/*
 * The dataset registry.  A dataset is opened once per URI (and flags) and
 * shared by every client that opens it, so their plans meet in one object
 * table and one cache.  file:// URIs are normalised first ("//", "/./" and a
 * trailing '/' do not make another dataset).  Listing (a directory walk, a
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"
#include "transports/transport.h"

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
static int catalog_memfd(const struct stk_object *objs, uint32_t count)
{
	size_t len = 8;
	for (uint32_t i = 0; i < count; i++)
		len += 12 + strlen(objs[i].key);
	uint8_t *mem = malloc(len);
	if (!mem)
		return -ENOMEM;
	struct stk_buf b;
	stk__buf_init(&b, mem, len);
	stk__put_u32(&b, STK_CATALOG_MAGIC);
	stk__put_u32(&b, count);
	for (uint32_t i = 0; i < count; i++) {
		size_t kl = strlen(objs[i].key);
		stk__put_u64(&b, objs[i].size);
		stk__put_u32(&b, (uint32_t)kl);
		stk__put_bytes(&b, objs[i].key, kl);
	}
	int fd = memfd_create("stoker:catalog", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int r = fd < 0 ? -errno : 0;
	size_t off = 0;
	while (!r && off < len) {
		ssize_t k = write(fd, mem + off, len - off);
		if (k < 0 && errno != EINTR)
			r = -errno;
		else if (k > 0)
			off += (size_t)k;
	}
	if (!r &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		r = -errno;
	free(mem);
	if (r && fd >= 0)
		close(fd);
	return r ? r : fd;
}

static void open_work(struct stk_work *w)
{
	struct open_job *j = (struct open_job *)w;
	struct stk_ds *ds = j->ds;
	j->err = stk__catalog_build(ds->uri, ds->flags & 1u, &j->cat, j->msg, sizeof(j->msg));
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

static void objs_free(struct stk_object *objs, uint32_t n)
{
	for (uint32_t i = 0; objs && i < n; i++) {
		free((char *)objs[i].key);
		free((char *)objs[i].uri);
		free(objs[i].errmsg);
		free(objs[i].etag);
		free(objs[i].version);
	}
	free(objs);
}

/* Makes ds's object table from cat, taking its strings. 0 or -errno with msg. */
static int objs_from_catalog(struct stk_ds *ds, struct stk_catalog *cat, char *msg, size_t len)
{
	struct stk_object *objs = calloc(cat->n ? cat->n : 1, sizeof(*objs));
	if (!objs) {
		snprintf(msg, len, "%s: out of memory", ds->uri);
		return -ENOMEM;
	}
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < cat->n; i++) {
		struct stk_object *o = &objs[i];
		int r;
		o->tp = stk__transport_find(cat->e[i].uri, &r, NULL, 0);
		o->ds = ds;
		o->index = i;
		o->line = cat->e[i].line;
		o->key = cat->e[i].key;
		o->uri = cat->e[i].uri;
		o->version = cat->e[i].version;
		o->size = cat->e[i].size;
		o->t.fd = -1;
		cat->e[i].key = cat->e[i].uri = cat->e[i].version = NULL; /* now the object's */
		bytes += o->size;
	}
	int fd = catalog_memfd(objs, cat->n);
	if (fd < 0) {
		snprintf(msg, len, "%s: cannot build the catalog: %s", ds->uri, strerror(-fd));
		objs_free(objs, cat->n);
		return fd;
	}
	if (ds->catalog_fd >= 0)
		close(ds->catalog_fd);
	ds->catalog_fd = fd;
	ds->objs = objs;
	ds->count = cat->n;
	ds->bytes = bytes;
	return 0;
}

static void ds_free(struct stk_ds *ds)
{
	objs_free(ds->objs, ds->count);
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

/* Drops every cached object of ds; nobody holds or waits for them. */
static void ds_drop_cached(struct stk_daemon *d, struct stk_ds *ds)
{
	for (uint32_t i = 0; ds->objs && i < ds->count; i++)
		if (ds->objs[i].state == STK_OBJ_RESIDENT)
			stk__cache_drop(&d->cache, &ds->objs[i]);
	ds->resident = 0;
	ds->resident_bytes = 0;
	ds->failed = 0;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/*
 * Applies a new listing of ds, which nobody uses.  The same objects in the
 * same order: those whose version changed are dropped from the cache.  A
 * different set: the object table is rebuilt and the cache emptied of it.
 */
static int ds_revalidate(struct stk_daemon *d, struct stk_ds *ds, struct stk_catalog *cat,
			 char *msg, size_t len)
{
	bool same = cat->n == ds->count;
	for (uint32_t i = 0; same && i < cat->n; i++)
		same = cat->e[i].size == ds->objs[i].size &&
		       !strcmp(cat->e[i].key, ds->objs[i].key) &&
		       !strcmp(cat->e[i].uri, ds->objs[i].uri);
	if (!same) {
		stk_info("dataset %s changed since it was listed: listing it anew", ds->uri);
		ds_drop_cached(d, ds);
		struct stk_object *old = ds->objs;
		uint32_t n = ds->count;
		int r = objs_from_catalog(ds, cat, msg, len);
		if (r) {
			ds->objs = old;
			return r;
		}
		objs_free(old, n);
		return 0;
	}
	unsigned changed = 0;
	for (uint32_t i = 0; i < cat->n; i++) {
		struct stk_object *o = &ds->objs[i];
		if (same_str(o->version, cat->e[i].version))
			continue;
		if (o->state == STK_OBJ_RESIDENT) {
			stk__cache_drop(&d->cache, o);
			ds->resident--;
			ds->resident_bytes -= o->size;
			changed++;
		}
		free(o->version);
		o->version = cat->e[i].version;
		cat->e[i].version = NULL;
	}
	if (changed)
		stk_info("dataset %s: %u cached objects changed since they were fetched; dropped",
			 ds->uri, changed);
	return 0;
}

static void open_done(struct stk_work *w)
{
	struct open_job *j = (struct open_job *)w;
	struct stk_daemon *d = j->d;
	struct stk_ds *ds = j->ds;
	struct stk_waiter *ws = ds->open_waiters;
	bool again = ds->revalidating;
	ds->open_waiters = NULL;
	ds->revalidating = false;
	if (!j->err)
		j->err = again ? ds_revalidate(d, ds, &j->cat, j->msg, sizeof(j->msg))
			       : objs_from_catalog(ds, &j->cat, j->msg, sizeof(j->msg));
	stk__catalog_free(&j->cat);
	if (j->err) {
		stk_warn("open %s: %s", ds->uri, j->msg);
		ds_unlink(d, ds);
		if (again) {
			ds_drop_cached(d, ds);
			d->st[STK_ST_DATASETS]--;
		}
		ds_free(ds);
		ds = NULL;
	} else if (!again) {
		ds->ready = true;
		d->st[STK_ST_DATASETS]++;
		stk_info("dataset %s: %u objects, %llu bytes", ds->uri, ds->count,
			 (unsigned long long)ds->bytes);
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

void stk__ds_open(struct stk_daemon *d, const char *uri, uint32_t uri_len, unsigned flags,
		  struct stk_waiter *w,
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
		if (ds->flags != flags || strcmp(ds->uri, norm))
			continue;
		bool idle = ds->users == 0 && !ds->plans && !ds->inflight;
		if (ds->ready && idle && !ds->revalidating) {
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
	ds->flags = flags;
	/* Reject an unknown scheme now rather than on a worker. */
	if (!stk__transport_find(ds->uri, &err, msg, sizeof(msg))) {
		ds_free(ds);
		free(j);
		ready(d, w, NULL, err, msg);
		return;
	}
	ds->id = ++d->next_ds_id;
	ds->next = d->datasets;
	d->datasets = ds;
	w->next = NULL;
	ds->open_waiters = w;
	start_listing(d, ds, j, ready);
}

void stk__ds_unuse(struct stk_daemon *d, struct stk_ds *ds)
{
	if (ds->users && --ds->users == 0)
		ds->idle_since = stk__now_ns();
}

/* Whether ds can be forgotten: nobody uses, waits for or caches any of it. */
static bool ds_forgettable(const struct stk_ds *ds)
{
	if (!ds->ready || ds->revalidating || ds->users || ds->plans || ds->inflight ||
	    ds->resident || ds->open_waiters)
		return false;
	for (uint32_t i = 0; i < ds->count; i++)
		if (ds->objs[i].queued || ds->objs[i].waiters)
			return false;
	return true;
}

void stk__ds_sweep(struct stk_daemon *d, uint64_t now)
{
	for (struct stk_ds **pp = &d->datasets; *pp;) {
		struct stk_ds *ds = *pp;
		if (ds_forgettable(ds) && now - ds->idle_since >= d->cfg.dataset_grace_ns) {
			*pp = ds->next;
			stk_dbg("dataset %s: unused with nothing cached; forgotten", ds->uri);
			d->st[STK_ST_DATASETS]--;
			ds_free(ds);
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
		while (ds->plans)
			stk__plan_free(d, ds->plans);
		ds_drop_cached(d, ds);
		ds_free(ds);
	}
}

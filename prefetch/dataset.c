/* SPDX-License-Identifier: MIT */
/*
 * The dataset registry.  A dataset is opened once per URI (and flags) and
 * shared by every client that opens it, so their plans meet in one object
 * table and one cache.  Listing (a directory walk, a manifest, later an
 * object-store listing) blocks, so it runs on a worker; OPENs that arrive
 * meanwhile wait for it.  A failed listing is forgotten, so a later OPEN
 * tries again.
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
	int err;
	char msg[600];
};

/* Writes the catalog clients receive into a sealed memfd. Returns the fd or -errno. */
static int catalog_memfd(const struct stk_ds *ds)
{
	size_t len = 8;
	for (uint32_t i = 0; i < ds->count; i++)
		len += 12 + strlen(ds->objs[i].key);
	uint8_t *mem = malloc(len);
	if (!mem)
		return -ENOMEM;
	struct stk_buf b;
	stk__buf_init(&b, mem, len);
	stk__put_u32(&b, STK_CATALOG_MAGIC);
	stk__put_u32(&b, ds->count);
	for (uint32_t i = 0; i < ds->count; i++) {
		size_t kl = strlen(ds->objs[i].key);
		stk__put_u64(&b, ds->objs[i].size);
		stk__put_u32(&b, (uint32_t)kl);
		stk__put_bytes(&b, ds->objs[i].key, kl);
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
	struct stk_catalog cat = { 0 };
	j->err = stk__catalog_build(ds->uri, ds->flags & 1u, &cat, j->msg, sizeof(j->msg));
	if (j->err)
		return;
	if (cat.n >= STK_NONE) {
		snprintf(j->msg, sizeof(j->msg), "%s: %u objects is more than a dataset may hold",
			 ds->uri, cat.n);
		j->err = -E2BIG;
		goto out;
	}
	ds->objs = calloc(cat.n ? cat.n : 1, sizeof(*ds->objs));
	if (!ds->objs) {
		j->err = -ENOMEM;
		snprintf(j->msg, sizeof(j->msg), "%s: out of memory", ds->uri);
		goto out;
	}
	ds->count = cat.n;
	for (uint32_t i = 0; i < cat.n; i++) {
		struct stk_object *o = &ds->objs[i];
		int r;
		o->tp = stk__transport_find(cat.e[i].uri, &r, j->msg, sizeof(j->msg));
		if (!o->tp) {
			j->err = r;
			goto out;
		}
		o->ds = ds;
		o->index = i;
		o->key = cat.e[i].key;
		o->uri = cat.e[i].uri;
		o->size = cat.e[i].size;
		o->t.fd = -1;
		cat.e[i].key = cat.e[i].uri = NULL; /* now the object's */
		ds->bytes += o->size;
	}
	ds->catalog_fd = catalog_memfd(ds);
	if (ds->catalog_fd < 0) {
		j->err = ds->catalog_fd;
		snprintf(j->msg, sizeof(j->msg), "%s: cannot build the catalog: %s", ds->uri,
			 strerror(-j->err));
	}
out:
	stk__catalog_free(&cat);
}

static void ds_free(struct stk_ds *ds)
{
	for (uint32_t i = 0; ds->objs && i < ds->count; i++) {
		free((char *)ds->objs[i].key);
		free((char *)ds->objs[i].uri);
		free(ds->objs[i].errmsg);
		free(ds->objs[i].etag);
	}
	if (ds->catalog_fd >= 0)
		close(ds->catalog_fd);
	free(ds->objs);
	free(ds->uri);
	free(ds->open_errmsg);
	free(ds);
}

static void open_done(struct stk_work *w)
{
	struct open_job *j = (struct open_job *)w;
	struct stk_daemon *d = j->d;
	struct stk_ds *ds = j->ds;
	struct stk_waiter *ws = ds->open_waiters;
	ds->open_waiters = NULL;
	if (j->err) {
		for (struct stk_ds **pp = &d->datasets; *pp; pp = &(*pp)->next) {
			if (*pp == ds) {
				*pp = ds->next;
				break;
			}
		}
		stk_warn("open %s: %s", ds->uri, j->msg);
		ds_free(ds);
		ds = NULL;
	} else {
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

void stk__ds_open(struct stk_daemon *d, const char *uri, uint32_t uri_len, unsigned flags,
		  struct stk_waiter *w,
		  void (*ready)(struct stk_daemon *d, struct stk_waiter *w, struct stk_ds *ds,
				int err, const char *msg))
{
	char msg[600];
	int err;
	for (struct stk_ds *ds = d->datasets; ds; ds = ds->next) {
		if (ds->flags != flags || strlen(ds->uri) != uri_len ||
		    memcmp(ds->uri, uri, uri_len))
			continue;
		if (ds->ready) {
			ready(d, w, ds, 0, NULL);
		} else {
			w->next = ds->open_waiters;
			ds->open_waiters = w;
		}
		return;
	}
	struct stk_ds *ds = calloc(1, sizeof(*ds));
	struct open_job *j = calloc(1, sizeof(*j));
	if (!ds || !j || !(ds->uri = strndup(uri, uri_len))) {
		free(ds);
		free(j);
		snprintf(msg, sizeof(msg), "out of memory opening %.*s", (int)uri_len, uri);
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
	j->d = d;
	j->ds = ds;
	j->ready = ready;
	j->w.work = open_work;
	j->w.done = open_done;
	stk_loop_work(d->loop, &j->w);
}

void stk__ds_free_all(struct stk_daemon *d)
{
	while (d->datasets) {
		struct stk_ds *ds = d->datasets;
		d->datasets = ds->next;
		while (ds->plans)
			stk__plan_free(d, ds->plans);
		for (uint32_t i = 0; ds->objs && i < ds->count; i++)
			if (ds->objs[i].state == STK_OBJ_RESIDENT)
				stk__cache_drop(&d->cache, &ds->objs[i]);
		ds_free(ds);
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * libstoker: datasets: the catalog an OPEN brings (sizes, keys and a hash over them),
 * plans, closing.
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

static uint32_t hash_key(const char *k)
{
	uint32_t h = 2166136261u;
	for (; *k; k++)
		h = (h ^ (uint8_t)*k) * 16777619u;
	return h;
}

struct cat_fill {
	struct stk_dataset *ds;
	char *p;
};

static int cat_entry(void *arg, uint32_t i, const char *key, uint32_t kl, uint64_t size)
{
	struct cat_fill *f = arg;
	f->ds->sizes[i] = size;
	f->ds->keys[i] = f->p;
	memcpy(f->p, key, kl);
	f->p[kl] = 0;
	f->p += kl + 1;
	return 0;
}

/* Reads the catalog (its first len bytes) from an OPEN's memfd into ds. */
static int load_catalog(struct stk_dataset *ds, int fd, size_t len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (len > (size_t)st.st_size) {
		stk__set_err("bad catalog from stokerd: %zu bytes of %llu", len,
			     (unsigned long long)st.st_size);
		return -EPROTO;
	}
	void *map = len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
	if (len && map == MAP_FAILED)
		return -errno;
	char err[256];
	uint32_t n = 0;
	int r = stk__catalog_walk(map, len, NULL, NULL, &n, err, sizeof(err));
	if (r || n != ds->count) {
		stk__set_err("bad catalog from stokerd: %s", r ? err : "count mismatch");
		r = -EPROTO;
		goto out;
	}
	ds->sizes = calloc(n ? n : 1, sizeof(*ds->sizes));
	ds->keys = calloc(n ? n : 1, sizeof(*ds->keys));
	ds->keymem = malloc(len + 1); /* keys + NULs fit in the catalog's bytes */
	uint32_t hn = 16;
	while (hn < 2 * n)
		hn <<= 1;
	ds->hash = calloc(hn, sizeof(*ds->hash));
	ds->hash_mask = hn - 1;
	if (!ds->sizes || !ds->keys || !ds->keymem || !ds->hash) {
		r = -ENOMEM;
		goto out;
	}
	struct cat_fill f = { ds, ds->keymem };
	stk__catalog_walk(map, len, cat_entry, &f, NULL, NULL, 0);
	/*
	 * A key already in the table keeps its first index, as stk_dataset_find()
	 * promises; stopping at it also keeps a catalog of n equal keys from
	 * costing n^2 probes.
	 */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = hash_key(ds->keys[i]) & ds->hash_mask;
		while (ds->hash[h] && strcmp(ds->keys[ds->hash[h] - 1], ds->keys[i]))
			h = (h + 1) & ds->hash_mask;
		if (!ds->hash[h])
			ds->hash[h] = i + 1;
	}
out:
	if (map)
		munmap(map, len);
	return r;
}

int stk_dataset_open(struct stk_client *c, const char *uri, unsigned flags,
		     struct stk_dataset **out)
{
	char fixed[STK_URI_MAX + 8];
	if (uri && uri[0] == '/') {
		snprintf(fixed, sizeof(fixed), "file://%s", uri);
		uri = fixed;
	}
	if (!uri || !*uri || strlen(uri) > STK_URI_MAX) {
		stk__set_err("dataset URI is empty or longer than %u bytes", STK_URI_MAX);
		return -EINVAL;
	}
	struct stk_dataset *ds = calloc(1, sizeof(*ds));
	struct waiter *w = stk__waiter_new(REPLY_SMALL);
	uint8_t *msg = malloc(STK_URI_MAX + 64);
	int r = -ENOMEM;
	if (!ds || !w || !msg)
		goto out;
	ds->c = c;
	ds->refs = 1;
	long len = stk__enc_open(msg, STK_URI_MAX + 64, 0, flags, uri);
	struct stk_reply rp;
	r = stk__call(c, msg, (size_t)len, w);
	if (!r)
		r = stk__reply(w, STK_MSG_OPEN, &rp);
	if (r)
		goto out;
	ds->id = rp.u.open.ds;
	ds->count = rp.u.open.count;
	ds->bytes = rp.u.open.bytes;
	ds->daemon_id = rp.u.open.ds_id;
	if (w->fd < 0) {
		stk__set_err("stokerd sent no catalog for %s", uri);
		r = -EPROTO;
		goto out;
	}
	r = load_catalog(ds, w->fd, rp.u.open.cat_len);
	/* Without its resident table every get is a round trip: slower, still right. */
	if (!r && c->pins)
		stk__fast_map_table(ds, w->fd, rp.u.open.cat_len);
	close(w->fd);
	if (r)
		goto out;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&c->mu);
	ds->next = c->datasets;
	if (c->datasets)
		c->datasets->prev = ds;
	c->datasets = ds;
	pthread_mutex_unlock(&c->mu);
	*out = ds;
	ds = NULL;
out:
	if (ds && ds->id) {
		len = stk__enc_ds(msg, 64, STK_MSG_CLOSE, 0, ds->id);
		stk__post(c, msg, (size_t)len);
	}
	if (ds) {
		free(ds->sizes);
		free(ds->keys);
		free(ds->keymem);
		free(ds->hash);
		free(ds);
	}
	free(w);
	free(msg);
	return r;
}

void stk__ds_unref(struct stk_dataset *ds)
{
	if (__atomic_sub_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL))
		return;
	struct stk_client *c = ds->c;
	/* A forked child must not take a lock a parent thread may have held at the fork. */
	bool lock = !stk__forked(c);
	if (lock)
		pthread_mutex_lock(&c->mu);
	if (ds->prev)
		ds->prev->next = ds->next;
	else if (c->datasets == ds)
		c->datasets = ds->next;
	if (ds->next)
		ds->next->prev = ds->prev;
	if (lock)
		pthread_mutex_unlock(&c->mu);
	stk__fast_unmap_table(ds);
	free(ds->sizes);
	free(ds->keys);
	free(ds->keymem);
	free(ds->hash);
	free(ds);
	stk__client_unref(c);
}

void stk_dataset_close(struct stk_dataset *ds)
{
	if (!ds)
		return;
	/* CLOSE also ends, in the daemon, every hold still taken through this handle. */
	stk__waits_flush(ds, false);
	uint8_t msg[32];
	long len = stk__enc_ds(msg, sizeof(msg), STK_MSG_CLOSE, 0, ds->id);
	stk__post(ds->c, msg, (size_t)len);
	__atomic_store_n(&ds->closed, true, __ATOMIC_RELEASE);
	stk__ds_unref(ds);
}

size_t stk_dataset_count(const struct stk_dataset *ds)
{
	return ds->count;
}

uint64_t stk_dataset_bytes(const struct stk_dataset *ds)
{
	return ds->bytes;
}

int stk_dataset_object(const struct stk_dataset *ds, size_t index, const char **key, uint64_t *size)
{
	if (index >= ds->count) {
		stk__set_err("object index %zu is out of range (dataset has %u)", index, ds->count);
		return -ERANGE;
	}
	if (key)
		*key = ds->keys[index];
	if (size)
		*size = ds->sizes[index];
	return 0;
}

int stk_dataset_find(const struct stk_dataset *ds, const char *key, size_t *index)
{
	for (uint32_t h = hash_key(key) & ds->hash_mask; ds->hash[h]; h = (h + 1) & ds->hash_mask) {
		if (!strcmp(ds->keys[ds->hash[h] - 1], key)) {
			*index = ds->hash[h] - 1;
			return 0;
		}
	}
	stk__set_err("no object with key %s", key);
	return -ENOENT;
}

/* Sends order[0..n) in PLAN chunks, the first with RESET, each with flags. */
static int send_plan(struct stk_dataset *ds, const uint32_t *order, size_t n, uint16_t flags)
{
	for (size_t i = 0; i < n; i++) {
		if (order[i] >= ds->count) {
			stk__set_err(
			    "plan entry %zu: object index %u is out of range (dataset has %u)", i,
			    order[i], ds->count);
			return -ERANGE;
		}
	}
	uint8_t *msg = malloc(STK_MSG_MAX);
	struct waiter *w = stk__waiter_new(REPLY_SMALL);
	int r = -ENOMEM;
	if (!msg || !w)
		goto out;
	size_t off = 0;
	do {
		uint32_t k = (uint32_t)(n - off < STK_PLAN_CHUNK ? n - off : STK_PLAN_CHUNK);
		long len = stk__enc_plan(msg, STK_MSG_MAX, 0,
					 (uint16_t)(flags | (off == 0 ? STK_PLAN_RESET : 0)),
					 ds->id, order + off, k);
		struct stk_reply rp;
		r = stk__call(ds->c, msg, (size_t)len, w);
		if (!r)
			r = stk__reply(w, STK_MSG_PLAN, &rp);
		off += k;
	} while (!r && off < n);
out:
	free(msg);
	free(w);
	return r;
}

int stk_plan(struct stk_dataset *ds, const uint32_t *order, size_t n)
{
	int r = send_plan(ds, order, n, 0);
	if (!r)
		__atomic_store_n(&ds->planned, true, __ATOMIC_RELAXED);
	return r;
}

int stk_plan_shared(struct stk_dataset *ds, const uint32_t *order, size_t n)
{
	if (!ds->c->group) {
		stk__set_err(
		    "stk_plan_shared: this connection has no plan group; set "
		    "STOKER_PLAN_GROUP (or stk_connect_opts.plan_group) before connecting, "
		    "the same in every process whose gets the order describes");
		return -EINVAL;
	}
	if (!n) {
		stk__set_err("stk_plan_shared: an empty order");
		return -EINVAL;
	}
	/*
	 * Not planned: this handle's own gets stay plan-less, so they are the
	 * group's and move the shared plan like any worker's.
	 */
	return send_plan(ds, order, n, STK_PLAN_SHARED);
}

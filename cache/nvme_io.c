/* SPDX-License-Identifier: MIT */
/*
 * Puts and gets: records moved through the loop, in one I/O for a record in
 * a pack and in chunks of NVME_CHUNK for a large object's file, always
 * through a block-aligned staging buffer so that O_DIRECT takes them
 * whatever the caller's alignment (a get copies out once the checksum is
 * known; the copy runs at memory speed, several times the disk's).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache/nvme_internal.h"
#include "common/log.h"

static void large_name(char *buf, size_t len, uint64_t id, bool tmp)
{
	snprintf(buf, len, "l%" PRIu64 ".%s", id, tmp ? "tmp" : "obj");
}

/* Errors of a write that say the disk, not this object, is at fault. */
static bool disk_error(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO || err == EROFS;
}

/* Opens a file of the store, with O_DIRECT while the store uses it. -errno. */
static int open_file(struct stk_nvme *s, const char *name, int flags, bool *direct)
{
	int fd = -1;
	if (s->direct) {
		fd = openat(s->dfd, name, flags | O_DIRECT | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EINVAL)
			stk__nvme_no_direct(s, name, EINVAL);
		else if (fd < 0)
			return -errno;
	}
	*direct = fd >= 0;
	if (fd < 0)
		fd = openat(s->dfd, name, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* The I/O was refused EINVAL on an O_DIRECT fd: go buffered. Returns true to retry. */
static bool direct_refused(struct stk_nvme_op *op, int res)
{
	if (res != -EINVAL || !op->direct)
		return false;
	stk__nvme_no_direct(op->s, "first I/O", EINVAL);
	int fl = fcntl(op->fd, F_GETFL);
	if (fl < 0 || fcntl(op->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return false;
	op->direct = false;
	if (nvme_ent(op->e)->pack != NVME_NOPACK)
		op->s->packs[nvme_ent(op->e)->pack]->direct = false;
	return true;
}

static uint64_t padded(const struct stk_nvme_op *op)
{
	return nvme_round(op->rec_len, STK_NVME_BLOCK);
}

/* Ends op's I/O: its fd and buffers; the entry stays. */
static void op_end(struct stk_nvme_op *op)
{
	struct nvme_ent *e = nvme_ent(op->e);
	if (e->pack != NVME_NOPACK)
		op->s->packs[e->pack]->inflight--;
	else if (op->fd >= 0)
		close(op->fd);
	op->fd = -1;
	stk__nvme_buf_put(op->s, op->bounce, op->bounce_len);
	op->bounce = NULL;
	if (op->xxh)
		XXH3_freeState(op->xxh);
	op->xxh = NULL;
}

/* Fills bounce with the record's bytes from record offset op->cstart. */
static void put_fill(struct stk_nvme_op *op)
{
	char *b = op->bounce;
	uint64_t end = padded(op);
	op->clen = end - op->cstart < op->bounce_len ? end - op->cstart : op->bounce_len;
	uint64_t at = 0;
	if (op->cstart == 0) {
		struct nvme_ent *e = nvme_ent(op->e);
		struct stk_nvme_id id = { .uri = e->pub.uri,
					  .size = e->pub.size,
					  .version = e->pub.version,
					  .domain = e->pub.domain };
		memset(b, 0, op->hdr_len); /* format 2: zeros up to the stored bytes */
		stk__nvme_hdr_build(b, e->format, &id, e->pub.stored_len, e->pub.flags, e->seq,
				    e->data_xxh);
		at = op->hdr_len;
	}
	uint64_t doff = op->cstart + at - op->hdr_len; /* data offset of b[at] */
	uint64_t n = 0;
	if (doff < op->e->stored_len) {
		n = op->e->stored_len - doff;
		if (n > op->clen - at)
			n = op->clen - at;
		memcpy(b + at, (const char *)op->user + doff, n);
	}
	memset(b + at + n, 0, op->clen - at - n);
}

static void put_io_cb(struct stk_op *lop, int res);

static int put_submit(struct stk_nvme_op *op)
{
	uint64_t in = op->done - op->cstart;
	op->lop.cb = put_io_cb;
	return stk_loop_write(op->s->loop, &op->lop, op->fd, (char *)op->bounce + in, op->clen - in,
			      op->base + op->done);
}

static void put_finish(struct stk_nvme_op *op, int res)
{
	struct stk_nvme *s = op->s;
	struct nvme_ent *e = nvme_ent(op->e);
	bool large = e->pack == NVME_NOPACK;
	char tmp[64], obj[64];
	large_name(tmp, sizeof(tmp), e->file_id, true);
	large_name(obj, sizeof(obj), e->file_id, false);
	if (res == 0 && large && renameat(s->dfd, tmp, s->dfd, obj) < 0) {
		res = -errno;
		if (disk_error(-res))
			stk__nvme_degrade(s, -res, "rename of a finished object");
	}
	op_end(op);
	e->busy--;
	if (res == 0 && e->dropped)
		res = -ECANCELED;
	if (res == 0) {
		e->state = ENT_READY;
	} else {
		if (large) /* what was written is under the temporary name */
			unlinkat(s->dfd, tmp, 0);
		if (!e->dropped)
			stk__nvme_drop(s, &e->pub); /* busy is 0: released now */
		else if (!e->busy)
			stk__nvme_release(s, e);
	}
	op->cb(op, res);
}

static void put_io_cb(struct stk_op *lop, int res)
{
	struct stk_nvme_op *op = stk_container_of(lop, struct stk_nvme_op, lop);
	int r;
	if (res < 0 && direct_refused(op, res)) { /* the same write again, buffered */
		r = put_submit(op);
		if (r)
			put_finish(op, r);
		return;
	}
	if (res == 0)
		res = -EIO; /* a write that moved nothing */
	if (res < 0) {
		if (disk_error(-res))
			stk__nvme_degrade(op->s, -res,
					  nvme_ent(op->e)->pack == NVME_NOPACK
					      ? "write of a large object"
					      : "write into a pack");
		put_finish(op, res);
		return;
	}
	op->done += (uint64_t)res;
	if (op->done == op->cstart + op->clen) {
		if (op->done == padded(op)) {
			put_finish(op, 0);
			return;
		}
		op->cstart = op->done;
		put_fill(op);
	}
	r = put_submit(op);
	if (r)
		put_finish(op, r);
}

/* Why need bytes do not fit: none left, or not until dropped objects' room is back. */
static int no_room(const struct stk_nvme *s, uint64_t need)
{
	return s->used - s->freeing + need <= s->budget ? -EAGAIN : -ENOSPC;
}

/* Takes a slot for a record of rec bytes charged charge, making a pack when none has one. */
static int put_slot(struct stk_nvme *s, uint64_t rec, uint64_t charge, uint32_t *pack,
		    uint32_t *slotno)
{
	uint64_t slot = stk__nvme_slot_size(rec);
	bool dead;
	if (stk__nvme_slot_take(s, slot, pack, slotno, &dead) == 0) {
		if (s->used + charge <= s->budget)
			return 0;
		/* Undo: the budget says no. */
		struct nvme_pack *p = s->packs[*pack];
		stk__nvme_setbit(p->used, *slotno, false);
		p->nlive--;
		if (dead) {
			stk__nvme_setbit(p->dead, *slotno, true);
			p->ndead++;
			s->dead += slot;
			s->used += slot;
		}
		return no_room(s, charge);
	}
	if (s->used + charge + STK_NVME_BLOCK > s->budget)
		return no_room(s, charge + STK_NVME_BLOCK);
	uint32_t nslots = s->pack_size / slot ? (uint32_t)(s->pack_size / slot) : 1;
	int idx = stk__nvme_pack_add(s, slot, s->next_id++, nslots);
	if (idx < 0)
		return idx;
	int fd = stk__nvme_pack_fd(s, s->packs[idx]); /* creates the file */
	if (fd < 0) {
		if (disk_error(-fd))
			stk__nvme_degrade(s, -fd, "creating a pack file");
		stk__nvme_pack_remove(s, (uint32_t)idx);
		return fd;
	}
	return stk__nvme_slot_take(s, slot, pack, slotno, &dead);
}

int stk__nvme_put(struct stk_nvme *s, const struct stk_nvme_id *id, const void *data, uint64_t len,
		  unsigned flags, struct stk_nvme_op *op, stk_nvme_cb cb)
{
	if (s->degraded)
		return -EROFS;
	if ((flags & ~(unsigned)STK_NVME_ZSTD) || (!(flags & STK_NVME_ZSTD) && len != id->size))
		return -EINVAL;
	uint64_t charge = stk__nvme_charge(s, id, len);
	if (!charge)
		return -ENAMETOOLONG;
	const char *ver = id->version ? id->version : "";
	size_t ul = strlen(id->uri);
	struct nvme_ent *old = stk__nvme_find(s, id->domain, id->size, id->uri, ul);
	if (old && old->state == ENT_WRITING)
		return -EBUSY;
	if (old && !strcmp(old->pub.version, ver))
		return -EEXIST;
	/* The directory's block, and a pack's or the object file's allowance. */
	if (charge + 2 * STK_NVME_BLOCK > s->budget)
		return -EFBIG;
	if (s->used + charge > s->budget && !old)
		return no_room(s, charge);
	if (old)
		stk__nvme_drop(s, &old->pub);

	struct nvme_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->pub.uri = strdup(id->uri);
	e->pub.version = strdup(ver);
	*op = (struct stk_nvme_op){ .cb = cb, .arg = op->arg, .s = s, .e = &e->pub, .fd = -1 };
	int r = -ENOMEM;
	if (!e->pub.uri || !e->pub.version)
		goto err;
	e->pub.size = id->size;
	e->pub.stored_len = len;
	e->pub.charge = charge;
	e->pub.domain = id->domain;
	e->pub.flags = flags;
	e->seq = s->seq++;
	e->data_xxh = XXH3_64bits(data, len);
	op->user = (void *)data;
	op->hdr_len = stk__nvme_hdr_len(ul, strlen(ver));
	op->rec_len = op->hdr_len + len;
	e->format = NVME_FORMAT;
	if (op->rec_len >
	    s->small_max) { /* its own file: the bytes block-aligned after the header */
		e->format = NVME_FORMAT_ALIGNED;
		op->hdr_len = nvme_data_off(e->format, op->hdr_len);
		op->rec_len = op->hdr_len + len;
	}
	op->bounce_len = padded(op) < NVME_CHUNK ? padded(op) : NVME_CHUNK;
	if (op->rec_len <= s->small_max)
		op->bounce_len = padded(op); /* a pack's record goes in one write */
	op->bounce = stk__nvme_buf_get(s, op->bounce_len);
	if (!op->bounce)
		goto err;
	if (op->rec_len <= s->small_max) {
		r = put_slot(s, op->rec_len, charge, &e->pack, &e->slot);
		if (r)
			goto err;
		struct nvme_pack *p = s->packs[e->pack];
		r = stk__nvme_pack_fd(s, p);
		if (r < 0) {
			stk__nvme_slot_free(s, e->pack, e->slot, 0, false);
			goto err;
		}
		op->fd = r;
		op->direct = p->direct;
		op->base = (uint64_t)e->slot * p->slot;
		p->inflight++;
	} else {
		if (s->used + charge > s->budget) {
			r = no_room(s, charge);
			goto err;
		}
		e->pack = NVME_NOPACK;
		e->file_id = s->next_id++;
		char tmp[64];
		large_name(tmp, sizeof(tmp), e->file_id, true);
		r = open_file(s, tmp, O_WRONLY | O_CREAT | O_TRUNC, &op->direct);
		if (r < 0) {
			if (disk_error(-r))
				stk__nvme_degrade(s, -r, "creating an object file");
			goto err;
		}
		op->fd = r;
		s->nlarge++;
	}
	s->used += charge;
	s->payload += len;
	s->plain += id->size;
	s->objects++;
	e->state = ENT_WRITING;
	e->busy = 1;
	r = stk__nvme_insert(s, e);
	if (r == 0) {
		put_fill(op);
		r = put_submit(op);
	}
	if (r) {
		bool large = e->pack == NVME_NOPACK;
		op_end(op);
		e->busy = 0;
		if (large) {
			char tmp[64];
			large_name(tmp, sizeof(tmp), e->file_id, true);
			unlinkat(s->dfd, tmp, 0);
		}
		stk__nvme_drop(s, &e->pub);
		return r;
	}
	return 0;
err:
	stk__nvme_buf_put(s, op->bounce, op->bounce_len);
	op->bounce = NULL;
	free(e->pub.uri);
	free(e->pub.version);
	free(e);
	return r;
}

static void get_io_cb(struct stk_op *lop, int res);

static int get_submit(struct stk_nvme_op *op)
{
	uint64_t in = op->done - op->cstart;
	op->lop.cb = get_io_cb;
	return stk_loop_read(op->s->loop, &op->lop, op->fd, (char *)op->bounce + in, op->clen - in,
			     op->base + op->done);
}

static void get_finish(struct stk_nvme_op *op, int64_t res)
{
	struct stk_nvme *s = op->s;
	struct nvme_ent *e = nvme_ent(op->e);
	op_end(op);
	e->busy--;
	if (res == -EBADMSG) {
		s->discarded++;
		stk_warn("nvme %s: %s failed its checks on read: dropped, never served", s->dir,
			 e->pub.uri);
	}
	if (res == -EBADMSG && !e->dropped)
		stk__nvme_drop(s, &e->pub); /* released now unless other gets read it */
	else if (e->dropped && !e->busy)
		stk__nvme_release(s, e);
	op->cb(op, res);
}

/* The header read back must be the one this entry was stored with. */
static bool hdr_matches(const struct stk_nvme_op *op, const struct nvme_hdr *h)
{
	const struct nvme_ent *e = nvme_ent(op->e);
	const char *b = op->bounce;
	return h->size == e->pub.size && h->stored_len == e->pub.stored_len &&
	       h->domain == e->pub.domain && h->flags == e->pub.flags && h->seq == e->seq &&
	       h->data_xxh == e->data_xxh && h->format == e->format &&
	       nvme_data_off(h->format, h->hdr_len) == op->hdr_len &&
	       !memcmp(b + sizeof(*h), e->pub.uri, h->uri_len) &&
	       !memcmp(b + sizeof(*h) + h->uri_len, e->pub.version, h->ver_len);
}

/* Checks and delivers the record's bytes in bounce. Returns 0, or -EBADMSG. */
static int get_chunk(struct stk_nvme_op *op)
{
	const char *b = op->bounce;
	uint64_t at = 0;
	if (op->cstart == 0) {
		struct nvme_hdr h;
		if (stk__nvme_hdr_parse(b, op->clen, &h) || !hdr_matches(op, &h))
			return -EBADMSG;
		at = op->hdr_len;
	}
	uint64_t doff = op->cstart + at - op->hdr_len;
	uint64_t n = 0;
	if (doff < op->e->stored_len) {
		n = op->e->stored_len - doff;
		if (n > op->clen - at)
			n = op->clen - at;
	}
	if (!op->xxh) { /* the whole record is here: check before copying */
		if (XXH3_64bits(b + at, n) != nvme_ent(op->e)->data_xxh)
			return -EBADMSG;
		memcpy(op->user, b + at, n);
		return 0;
	}
	XXH3_64bits_update(op->xxh, b + at, n);
	memcpy((char *)op->user + doff, b + at, n);
	if (op->cstart + op->clen == nvme_round(op->rec_len, STK_NVME_BLOCK) &&
	    XXH3_64bits_digest(op->xxh) != nvme_ent(op->e)->data_xxh)
		return -EBADMSG;
	return 0;
}

static void get_io_cb(struct stk_op *lop, int res)
{
	struct stk_nvme_op *op = stk_container_of(lop, struct stk_nvme_op, lop);
	int r;
	if (res < 0 && direct_refused(op, res)) {
		r = get_submit(op);
		if (r)
			get_finish(op, r);
		return;
	}
	if (res <= 0) {
		/* End of file inside the record: it was cut short. */
		get_finish(op, res == 0 ? -EBADMSG : res);
		return;
	}
	op->done += (uint64_t)res;
	if (op->done == op->cstart + op->clen) {
		r = get_chunk(op);
		if (r || op->done == nvme_round(op->rec_len, STK_NVME_BLOCK)) {
			get_finish(op, r ? r : (int64_t)op->e->stored_len);
			return;
		}
		uint64_t left = nvme_round(op->rec_len, STK_NVME_BLOCK) - op->done;
		op->cstart = op->done;
		op->clen = left < op->bounce_len ? left : op->bounce_len;
	}
	r = get_submit(op);
	if (r)
		get_finish(op, r);
}

/*
 * A large record of format 2 is read straight into the caller's buffer: no
 * staging copy (with O_DIRECT, when the buffer is block-aligned: the disk
 * writes the RAM room itself).  Its header block, and the stored bytes'
 * last partial block, go through bounce.  The checksum is computed on the
 * worker pool once every byte is in, so the loop thread never reads the
 * bytes.  op->done counts record bytes read.
 */
static void straight_cb(struct stk_op *lop, int res);

static void sum_work(struct stk_work *w)
{
	struct stk_nvme_op *op = stk_container_of(w, struct stk_nvme_op, sum);
	op->sum_xxh = XXH3_64bits(op->user, op->e->stored_len);
}

static void sum_done(struct stk_work *w)
{
	struct stk_nvme_op *op = stk_container_of(w, struct stk_nvme_op, sum);
	get_finish(op, op->sum_xxh == nvme_ent(op->e)->data_xxh ? (int64_t)op->e->stored_len
								: -EBADMSG);
}

static int straight_submit(struct stk_nvme_op *op)
{
	struct stk_loop *l = op->s->loop;
	uint64_t whole = op->e->stored_len & ~(uint64_t)(STK_NVME_BLOCK - 1);
	op->lop.cb = straight_cb;
	if (op->done < STK_NVME_BLOCK) /* the header's block */
		return stk_loop_read(l, &op->lop, op->fd, (char *)op->bounce + op->done,
				     STK_NVME_BLOCK - op->done, op->done);
	uint64_t d = op->done - STK_NVME_BLOCK;
	if (d < whole) {
		uint64_t n = whole - d < NVME_CHUNK ? whole - d : NVME_CHUNK;
		return stk_loop_read(l, &op->lop, op->fd, (char *)op->user + d, n, op->done);
	}
	return stk_loop_read(l, &op->lop, op->fd, (char *)op->bounce + (d - whole),
			     STK_NVME_BLOCK - (d - whole), op->done);
}

static void straight_cb(struct stk_op *lop, int res)
{
	struct stk_nvme_op *op = stk_container_of(lop, struct stk_nvme_op, lop);
	int r;
	if (res < 0 && direct_refused(op, res)) {
		r = straight_submit(op);
		if (r)
			get_finish(op, r);
		return;
	}
	if (res <= 0) { /* end of file inside the record: it was cut short */
		get_finish(op, res == 0 ? -EBADMSG : res);
		return;
	}
	uint64_t len = op->e->stored_len, whole = len & ~(uint64_t)(STK_NVME_BLOCK - 1);
	uint64_t before = op->done;
	op->done += (uint64_t)res;
	if (before < STK_NVME_BLOCK && op->done == STK_NVME_BLOCK) {
		struct nvme_hdr h;
		if (stk__nvme_hdr_parse(op->bounce, STK_NVME_BLOCK, &h) || !hdr_matches(op, &h)) {
			get_finish(op, -EBADMSG);
			return;
		}
	}
	if (op->done >= STK_NVME_BLOCK && op->done - STK_NVME_BLOCK >= len) {
		memcpy((char *)op->user + whole, op->bounce, len - whole); /* the tail, if any */
		op->sum = (struct stk_work){ .work = sum_work, .done = sum_done };
		stk_loop_work(op->s->loop, &op->sum);
		return;
	}
	r = straight_submit(op);
	if (r)
		get_finish(op, r);
}

int stk__nvme_get(struct stk_nvme *s, struct stk_nvme_ent *pub, void *buf, struct stk_nvme_op *op,
		  stk_nvme_cb cb)
{
	struct nvme_ent *e = nvme_ent(pub);
	if (e->state != ENT_READY)
		return -EBUSY;
	*op = (struct stk_nvme_op){ .cb = cb, .arg = op->arg, .s = s, .e = pub, .fd = -1 };
	op->user = buf;
	op->hdr_len =
	    nvme_data_off(e->format, stk__nvme_hdr_len(strlen(pub->uri), strlen(pub->version)));
	op->rec_len = op->hdr_len + pub->stored_len;
	uint64_t pad = padded(op);
	bool large = e->pack == NVME_NOPACK;
	op->bounce_len = large && pad > NVME_CHUNK ? NVME_CHUNK : pad;
	op->clen = op->bounce_len;
	op->bounce = stk__nvme_buf_get(s, op->bounce_len);
	if (!op->bounce)
		return -ENOMEM;
	int r;
	if (large) {
		op->xxh = XXH3_createState();
		if (!op->xxh || XXH3_64bits_reset(op->xxh) != XXH_OK) {
			r = -ENOMEM;
			goto err;
		}
		char obj[64];
		large_name(obj, sizeof(obj), e->file_id, false);
		r = open_file(s, obj, O_RDONLY, &op->direct);
		if (r < 0) {
			if (r == -ENOENT) /* removed behind the store's back */
				stk__nvme_drop(s, pub);
			goto err;
		}
		op->fd = r;
	} else {
		struct nvme_pack *p = s->packs[e->pack];
		r = stk__nvme_pack_fd(s, p);
		if (r < 0)
			goto err;
		op->fd = r;
		op->direct = p->direct;
		op->base = (uint64_t)e->slot * p->slot;
		p->inflight++;
	}
	e->busy++;
	/* O_DIRECT needs the buffer aligned; a buffered read takes any. */
	bool straight = large && e->format == NVME_FORMAT_ALIGNED &&
			(!op->direct || (uintptr_t)buf % STK_NVME_BLOCK == 0);
	r = straight ? straight_submit(op) : get_submit(op);
	if (r) {
		op_end(op);
		e->busy--;
		return r;
	}
	return 0;
err:
	if (op->fd >= 0)
		close(op->fd);
	stk__nvme_buf_put(s, op->bounce, op->bounce_len);
	if (op->xxh)
		XXH3_freeState(op->xxh);
	op->bounce = op->xxh = NULL;
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * Tier 1's store: the record format, the index, packs and their slots, the
 * descriptor cache, drops and the degraded state.  Puts and gets are in
 * nvme_io.c, the rebuild at open in nvme_scan.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache/nvme_internal.h"
#include "common/log.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the record header is written in host order, which must be little-endian"
#endif

/* Records up to this size are padded to whole blocks: finer classes would be below a block. */
#define FINE_MAX (32u * 1024)

uint64_t stk__nvme_hdr_len(size_t uri_len, size_t ver_len)
{
	return nvme_round(sizeof(struct nvme_hdr) + uri_len + ver_len, 8);
}

/*
 * Slots are whole blocks (O_DIRECT), and above 32 KiB eight sizes per
 * doubling, so padding stays under 12.5% (an ImageNet image of 110 KB,
 * header included, takes a 112 KiB slot).
 */
uint64_t stk__nvme_slot_size(uint64_t rec_len)
{
	uint64_t r = nvme_round(rec_len ? rec_len : 1, STK_NVME_BLOCK);
	if (r <= FINE_MAX)
		return r;
	uint64_t p = 1ull << (63 - __builtin_clzll(r - 1)); /* largest power of two below r */
	return nvme_round(r, p / 8);
}

static uint64_t hdr_sum(const void *buf, size_t hdr_len)
{
	char tmp[STK_NVME_BLOCK]; /* hdr_len is checked to fit a block before this */
	memcpy(tmp, buf, hdr_len);
	memset(tmp + offsetof(struct nvme_hdr, hdr_xxh), 0, sizeof(uint64_t));
	return XXH3_64bits(tmp, hdr_len);
}

int stk__nvme_hdr_parse(const void *buf, size_t avail, struct nvme_hdr *h)
{
	if (avail < sizeof(*h))
		return -EBADMSG;
	memcpy(h, buf, sizeof(*h));
	if (h->magic != NVME_MAGIC ||
	    (h->format != NVME_FORMAT && h->format != NVME_FORMAT_ALIGNED))
		return -EBADMSG;
	if (h->uri_len == 0 || h->uri_len > STK_NVME_URI_MAX || h->ver_len > STK_NVME_VERSION_MAX)
		return -EBADMSG;
	if (h->hdr_len != stk__nvme_hdr_len(h->uri_len, h->ver_len) || h->hdr_len > avail ||
	    h->hdr_len > STK_NVME_BLOCK)
		return -EBADMSG;
	if ((h->flags & ~(uint32_t)STK_NVME_ZSTD) ||
	    (!(h->flags & STK_NVME_ZSTD) && h->stored_len != h->size))
		return -EBADMSG;
	if (h->stored_len > (1ull << 52))
		return -EBADMSG;
	if (hdr_sum(buf, h->hdr_len) != h->hdr_xxh)
		return -EBADMSG;
	return 0;
}

void stk__nvme_hdr_build(void *buf, unsigned format, const struct stk_nvme_id *id,
			 uint64_t stored_len, unsigned flags, uint64_t seq, uint64_t data_xxh)
{
	const char *ver = id->version ? id->version : "";
	size_t ul = strlen(id->uri), vl = strlen(ver);
	struct nvme_hdr h = {
		.magic = NVME_MAGIC,
		.format = (uint16_t)format,
		.hdr_len = (uint16_t)stk__nvme_hdr_len(ul, vl),
		.flags = flags,
		.domain = id->domain,
		.uri_len = (uint32_t)ul,
		.ver_len = (uint32_t)vl,
		.size = id->size,
		.stored_len = stored_len,
		.seq = seq,
		.data_xxh = data_xxh,
	};
	char *p = buf;
	memset(p, 0, h.hdr_len);
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), id->uri, ul);
	memcpy(p + sizeof(h) + ul, ver, vl);
	h.hdr_xxh = hdr_sum(p, h.hdr_len);
	memcpy(p, &h, sizeof(h));
}

uint64_t stk__nvme_hash(uint32_t domain, uint64_t size, const char *uri, size_t uri_len)
{
	return XXH3_64bits_withSeed(uri, uri_len, size * 0x9E3779B97F4A7C15ull ^ domain);
}

struct nvme_ent *stk__nvme_find(struct stk_nvme *s, uint32_t domain, uint64_t size, const char *uri,
				size_t uri_len)
{
	uint64_t h = stk__nvme_hash(domain, size, uri, uri_len);
	for (struct nvme_ent *e = s->tab[h & s->tmask]; e; e = e->hnext)
		if (e->hash == h && e->pub.size == size && e->pub.domain == domain &&
		    strlen(e->pub.uri) == uri_len && !memcmp(e->pub.uri, uri, uri_len))
			return e;
	return NULL;
}

int stk__nvme_insert(struct stk_nvme *s, struct nvme_ent *e)
{
	if (s->n + 1 > s->tmask + 1) { /* keep chains short: grow at load factor 1 */
		uint64_t nb = (s->tmask + 1) * 2;
		struct nvme_ent **t = calloc(nb, sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (uint64_t i = 0; i <= s->tmask; i++) {
			for (struct nvme_ent *x = s->tab[i], *nx; x; x = nx) {
				nx = x->hnext;
				x->hnext = t[x->hash & (nb - 1)];
				t[x->hash & (nb - 1)] = x;
			}
		}
		free(s->tab);
		s->tab = t;
		s->tmask = nb - 1;
	}
	e->hash = stk__nvme_hash(e->pub.domain, e->pub.size, e->pub.uri, strlen(e->pub.uri));
	e->hnext = s->tab[e->hash & s->tmask];
	s->tab[e->hash & s->tmask] = e;
	s->n++;
	return 0;
}

void stk__nvme_unlink(struct stk_nvme *s, struct nvme_ent *e)
{
	for (struct nvme_ent **p = &s->tab[e->hash & s->tmask]; *p; p = &(*p)->hnext) {
		if (*p == e) {
			*p = e->hnext;
			s->n--;
			return;
		}
	}
}

bool stk__nvme_bit(const uint64_t *map, uint32_t i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

void stk__nvme_setbit(uint64_t *map, uint32_t i, bool on)
{
	if (on)
		map[i / 64] |= 1ull << (i % 64);
	else
		map[i / 64] &= ~(1ull << (i % 64));
}

void stk__nvme_degrade(struct stk_nvme *s, int err, const char *what)
{
	if (s->degraded)
		return;
	s->degraded = err;
	snprintf(s->why, sizeof(s->why), "%s: %s", what, strerror(err));
	stk_err(
	    "nvme %s: degraded, writes refused from now on (%s); stored objects are still served",
	    s->dir, s->why);
}

void stk__nvme_no_direct(struct stk_nvme *s, const char *what, int err)
{
	s->direct = false;
	if (s->warned_direct)
		return;
	s->warned_direct = true;
	stk_warn("nvme %s: O_DIRECT refused (%s: %s); using buffered I/O", s->dir, what,
		 strerror(err));
}

static struct nvme_class *class_of(struct stk_nvme *s, uint64_t slot, bool add)
{
	for (uint32_t i = 0; i < s->nclasses; i++)
		if (s->classes[i].slot == slot)
			return &s->classes[i];
	if (!add)
		return NULL;
	if (s->nclasses == s->classcap) {
		uint32_t cap = s->classcap ? s->classcap * 2 : 16;
		struct nvme_class *c = realloc(s->classes, cap * sizeof(*c));
		if (!c)
			return NULL;
		s->classes = c;
		s->classcap = cap;
	}
	struct nvme_class *c = &s->classes[s->nclasses++];
	*c = (struct nvme_class){ .slot = slot };
	return c;
}

static void pack_name(char *buf, size_t len, uint64_t slot, uint64_t id)
{
	snprintf(buf, len, "s%" PRIu64 "-%" PRIu64 ".pack", slot, id);
}

int stk__nvme_pack_add(struct stk_nvme *s, uint64_t slot, uint64_t id, uint32_t nslots)
{
	struct nvme_class *c = class_of(s, slot, true);
	if (!c)
		return -ENOMEM;
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 8;
		uint32_t *np = realloc(c->packs, cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		c->packs = np;
		c->cap = cap;
	}
	uint32_t idx = 0;
	while (idx < s->npacks && s->packs[idx])
		idx++;
	if (idx == s->packcap) {
		uint32_t cap = s->packcap ? s->packcap * 2 : 16;
		struct nvme_pack **np = realloc(s->packs, cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		s->packs = np;
		s->packcap = cap;
	}
	struct nvme_pack *p = calloc(1, sizeof(*p));
	size_t words = (nslots + 63) / 64;
	if (p) {
		p->used = calloc(words, sizeof(uint64_t));
		p->dead = calloc(words, sizeof(uint64_t));
	}
	if (!p || !p->used || !p->dead) {
		if (p) {
			free(p->used);
			free(p->dead);
		}
		free(p);
		return -ENOMEM;
	}
	p->slot = slot;
	p->id = id;
	p->nslots = nslots;
	p->fd = -1;
	p->cpos = c->n;
	c->packs[c->n++] = idx;
	s->packs[idx] = p;
	if (idx == s->npacks)
		s->npacks++;
	s->used += STK_NVME_BLOCK; /* the file's allowance: inode, directory entry, extents */
	return (int)idx;
}

void stk__nvme_pack_remove(struct stk_nvme *s, uint32_t idx)
{
	struct nvme_pack *p = s->packs[idx];
	struct nvme_class *c = class_of(s, p->slot, false);
	if (c) {
		uint32_t last = c->packs[--c->n];
		c->packs[p->cpos] = last;
		s->packs[last]->cpos = p->cpos;
		if (c->hint > c->n)
			c->hint = c->n;
		if (p->cpos < c->hint)
			c->hint = p->cpos;
	}
	if (p->fd >= 0) {
		close(p->fd);
		s->nopen--;
	}
	char name[64];
	pack_name(name, sizeof(name), p->slot, p->id);
	if (unlinkat(s->dfd, name, 0) < 0 && errno != ENOENT)
		stk_warn("nvme %s: unlink %s: %s", s->dir, name, strerror(errno));
	s->used -= STK_NVME_BLOCK + (uint64_t)p->ndead * p->slot;
	s->dead -= (uint64_t)p->ndead * p->slot;
	free(p->used);
	free(p->dead);
	free(p);
	s->packs[idx] = NULL;
	while (s->npacks && !s->packs[s->npacks - 1])
		s->npacks--;
}

static int open_pack(struct stk_nvme *s, struct nvme_pack *p)
{
	char name[64];
	pack_name(name, sizeof(name), p->slot, p->id);
	int fl = O_RDWR | O_CREAT | O_CLOEXEC;
	int fd = -1;
	if (s->direct) {
		fd = openat(s->dfd, name, fl | O_DIRECT, 0600);
		if (fd < 0 && errno == EINVAL)
			stk__nvme_no_direct(s, name, EINVAL);
	}
	if (fd < 0 && !s->direct)
		fd = openat(s->dfd, name, fl, 0600);
	if (fd < 0)
		return -errno;
	p->fd = fd;
	p->direct = s->direct;
	s->nopen++;
	return 0;
}

int stk__nvme_pack_fd(struct stk_nvme *s, struct nvme_pack *p)
{
	p->stamp = ++s->stamp;
	if (p->fd >= 0) {
		if (p->direct && !s->direct) { /* the store went buffered since */
			int fl = fcntl(p->fd, F_GETFL);
			if (fl >= 0 && fcntl(p->fd, F_SETFL, fl & ~O_DIRECT) == 0)
				p->direct = false;
		}
		return p->fd;
	}
	if (s->nopen >= s->max_fds) {
		/* The least recently used pack with no I/O gives its fd up. */
		struct nvme_pack *v = NULL;
		for (uint32_t i = 0; i < s->npacks; i++) {
			struct nvme_pack *q = s->packs[i];
			if (q && q->fd >= 0 && !q->inflight && (!v || q->stamp < v->stamp))
				v = q;
		}
		if (v) {
			close(v->fd);
			v->fd = -1;
			s->nopen--;
		}
	}
	int r = open_pack(s, p);
	return r < 0 ? r : p->fd;
}

static int find_bit(const uint64_t *map, uint32_t n, bool want)
{
	for (uint32_t w = 0; w < (n + 63) / 64; w++) {
		uint64_t v = want ? map[w] : ~map[w];
		if (!v)
			continue;
		uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(v);
		return i < n ? (int)i : -1;
	}
	return -1;
}

int stk__nvme_slot_take(struct stk_nvme *s, uint64_t slot, uint32_t *pack, uint32_t *slotno,
			bool *was_dead)
{
	struct nvme_class *c = class_of(s, slot, false);
	if (!c)
		return -ENOENT;
	for (uint32_t i = c->hint; i < c->n; i++) {
		struct nvme_pack *p = s->packs[c->packs[i]];
		if (p->nlive == p->nslots)
			continue;
		c->hint = i;
		/* A dead slot first: its blocks are charged already. */
		int k = p->ndead ? find_bit(p->dead, p->nslots, true) : -1;
		*was_dead = k >= 0;
		if (k < 0)
			k = find_bit(p->used, p->nslots, false);
		if (k < 0)
			continue; /* not reached: nlive says there is one */
		if (*was_dead) {
			stk__nvme_setbit(p->dead, (uint32_t)k, false);
			p->ndead--;
			s->dead -= p->slot;
			s->used -= p->slot; /* the caller charges it again */
		}
		stk__nvme_setbit(p->used, (uint32_t)k, true);
		p->nlive++;
		*pack = c->packs[i];
		*slotno = (uint32_t)k;
		return 0;
	}
	c->hint = c->n;
	return -ENOENT;
}

/* Clears slotno of its pack; the pack goes when nothing is left in it. */
static void slot_clear(struct stk_nvme *s, uint32_t pidx, uint32_t slotno, uint64_t charge,
		       bool punched)
{
	struct nvme_pack *p = s->packs[pidx];
	stk__nvme_setbit(p->used, slotno, false);
	p->nlive--;
	s->used -= charge;
	if (p->nlive == 0) { /* nothing left in it: the file goes */
		stk__nvme_pack_remove(s, pidx);
		return;
	}
	if (!punched) {
		stk__nvme_setbit(p->dead, slotno, true);
		p->ndead++;
		s->dead += p->slot;
		s->used += p->slot;
	}
	struct nvme_class *c = class_of(s, p->slot, false);
	if (c && p->cpos < c->hint)
		c->hint = p->cpos;
}

/*
 * Room being given back on the worker pool: punching a slot or deleting a
 * file can take milliseconds on ext4 (a hole punched in a file written with
 * O_DIRECT took 2-10 ms on our VM), which the loop must not wait for.  The
 * charge stays until the blocks are gone, so du never exceeds the budget.
 */
struct nvme_free {
	struct stk_work w;
	struct stk_nvme *s;
	uint32_t pack, slot; /* a slot of a pack, or pack NVME_NOPACK: file l<id>.obj */
	uint64_t id, charge, off, len;
	int fd, err;
};

static void free_work(struct stk_work *w)
{
	struct nvme_free *f = stk_container_of(w, struct nvme_free, w);
	int r;
	if (f->pack != NVME_NOPACK) {
		r = fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)f->off,
			      (off_t)f->len);
	} else {
		char name[64];
		snprintf(name, sizeof(name), "l%" PRIu64 ".obj", f->id);
		r = unlinkat(f->s->dfd, name, 0);
		if (r < 0 && errno == ENOENT)
			r = 0;
	}
	f->err = r < 0 ? errno : 0;
}

static void free_done(struct stk_work *w)
{
	struct nvme_free *f = stk_container_of(w, struct nvme_free, w);
	struct stk_nvme *s = f->s;
	s->nfreeing--;
	s->freeing -= f->charge;
	if (f->pack != NVME_NOPACK) {
		s->packs[f->pack]->inflight--;
		if (f->err == EOPNOTSUPP || f->err == ENOSYS) {
			if (s->punch_ok)
				stk_warn("nvme %s: the filesystem cannot punch holes; freed slots "
					 "stay charged until reused",
					 s->dir);
			s->punch_ok = false;
		}
		slot_clear(s, f->pack, f->slot, f->charge, f->err == 0);
	} else {
		if (f->err)
			stk_warn("nvme %s: unlink l%" PRIu64 ".obj: %s", s->dir, f->id,
				 strerror(f->err));
		s->used -= f->charge;
		s->nlarge--;
	}
	free(f);
	if (s->freed)
		s->freed(s->freed_arg);
}

void stk__nvme_slot_free(struct stk_nvme *s, uint32_t pidx, uint32_t slotno, uint64_t charge,
			 bool written)
{
	struct nvme_pack *p = s->packs[pidx];
	if (!written || p->nlive == 1) { /* nothing to punch, or the whole file goes */
		slot_clear(s, pidx, slotno, charge, true);
		return;
	}
	/*
	 * Punching gives the slot's blocks back to the filesystem, so its
	 * charge can go, and leaves zeros where its header was, so a crash
	 * cannot bring the object back.  Where the filesystem cannot punch,
	 * the slot stays charged (dead) until a put of its size reuses it or
	 * its pack empties.
	 */
	int fd = s->punch_ok ? stk__nvme_pack_fd(s, p) : -1;
	struct nvme_free *f = fd >= 0 ? calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		slot_clear(s, pidx, slotno, charge, false);
		return;
	}
	*f = (struct nvme_free){ .w = { .work = free_work, .done = free_done },
				 .s = s,
				 .pack = pidx,
				 .slot = slotno,
				 .charge = charge,
				 .off = (uint64_t)slotno * p->slot,
				 .len = p->slot,
				 .fd = fd };
	p->inflight++; /* keeps fd open */
	s->nfreeing++;
	s->freeing += charge;
	stk_loop_work(s->loop, &f->w);
}

void stk__nvme_release(struct stk_nvme *s, struct nvme_ent *e)
{
	if (e->pack != NVME_NOPACK) {
		stk__nvme_slot_free(s, e->pack, e->slot, e->pub.charge, true);
	} else {
		struct nvme_free *f = calloc(1, sizeof(*f));
		if (f) {
			*f = (struct nvme_free){ .w = { .work = free_work, .done = free_done },
						 .s = s,
						 .pack = NVME_NOPACK,
						 .id = e->file_id,
						 .charge = e->pub.charge };
			s->nfreeing++;
			s->freeing += e->pub.charge;
			stk_loop_work(s->loop, &f->w);
		} else {
			char name[64];
			snprintf(name, sizeof(name), "l%" PRIu64 ".obj", e->file_id);
			unlinkat(s->dfd, name, 0);
			s->used -= e->pub.charge;
			s->nlarge--;
		}
	}
	s->payload -= e->pub.stored_len;
	s->plain -= e->pub.size;
	s->objects--;
	free(e->pub.uri);
	free(e->pub.version);
	free(e);
}

void *stk__nvme_buf_get(struct stk_nvme *s, size_t len)
{
	if (len <= NVME_CHUNK && s->nbufs)
		return s->bufs[--s->nbufs];
	void *b;
	return posix_memalign(&b, STK_NVME_BLOCK, len <= NVME_CHUNK ? NVME_CHUNK : len) ? NULL : b;
}

void stk__nvme_buf_put(struct stk_nvme *s, void *buf, size_t len)
{
	if (buf && len <= NVME_CHUNK && s->nbufs < sizeof(s->bufs) / sizeof(s->bufs[0]))
		s->bufs[s->nbufs++] = buf;
	else
		free(buf);
}

/* Whether the filesystem under dfd punches holes: decides how freed slots are charged. */
static bool probe_punch(int dfd)
{
	const char *name = ".punch-probe";
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	bool ok = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0 ||
		  (errno != EOPNOTSUPP && errno != ENOSYS);
	close(fd);
	unlinkat(dfd, name, 0);
	return ok;
}

int stk__nvme_open(struct stk_loop *l, const struct stk_nvme_opts *o, struct stk_nvme **out,
		   char *err, size_t errlen)
{
	if (!o || o->opts_size < offsetof(struct stk_nvme_opts, flags) || !o->dir || !l) {
		snprintf(err, errlen, "nvme: no directory or options");
		return -EINVAL;
	}
	struct stk_nvme_opts opt = { 0 };
	memcpy(&opt, o, o->opts_size < sizeof(opt) ? o->opts_size : sizeof(opt));
	struct stk_nvme *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->dfd = -1;
	s->budget = opt.budget;
	s->flags = opt.flags;
	s->small_max = opt.small_max ? opt.small_max : (1u << 20);
	s->pack_size = opt.pack_size ? opt.pack_size : (64u << 20);
	s->max_fds = opt.max_fds ? opt.max_fds : 64;
	s->direct = !(opt.flags & STK_NVME_NO_DIRECT);
	s->freed = opt.freed;
	s->freed_arg = opt.freed_arg;
	s->used = STK_NVME_BLOCK; /* the directory's own block */
	s->seq = 1;
	s->next_id = 1;
	int r = -ENOMEM;
	s->dir = strdup(opt.dir);
	s->tab = calloc(1024, sizeof(*s->tab));
	s->tmask = 1023;
	if (!s->dir || !s->tab)
		goto err;
	if (s->small_max < STK_NVME_BLOCK || s->small_max > (64u << 20)) {
		snprintf(err, errlen, "nvme: small_max must be 4 KiB to 64 MiB");
		r = -EINVAL;
		goto err;
	}
	s->dfd = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dfd < 0) {
		r = -errno;
		snprintf(err, errlen, "nvme: %s: %s", opt.dir, strerror(errno));
		goto err;
	}
	s->punch_ok = probe_punch(s->dfd);
	r = stk__nvme_scan(s, err, errlen);
	if (r)
		goto err;
	*out = s;
	return 0;
err:
	stk__nvme_close(s);
	return r;
}

void stk__nvme_close(struct stk_nvme *s)
{
	if (!s)
		return;
	while (s->nfreeing) /* room being given back: its jobs point at s */
		if (stk_loop_run_once(s->loop) < 0)
			break;
	for (uint64_t i = 0; s->tab && i <= s->tmask; i++) {
		for (struct nvme_ent *e = s->tab[i], *n; e; e = n) {
			n = e->hnext;
			free(e->pub.uri);
			free(e->pub.version);
			free(e);
		}
	}
	free(s->tab);
	for (uint32_t i = 0; i < s->npacks; i++) {
		struct nvme_pack *p = s->packs[i];
		if (!p)
			continue;
		if (p->fd >= 0)
			close(p->fd);
		free(p->used);
		free(p->dead);
		free(p);
	}
	free(s->packs);
	for (uint32_t i = 0; i < s->nclasses; i++)
		free(s->classes[i].packs);
	free(s->classes);
	while (s->nbufs)
		free(s->bufs[--s->nbufs]);
	if (s->dfd >= 0)
		close(s->dfd);
	free(s->dir);
	free(s);
}

struct stk_nvme_ent *stk__nvme_lookup(struct stk_nvme *s, const struct stk_nvme_id *id)
{
	struct nvme_ent *e = stk__nvme_find(s, id->domain, id->size, id->uri, strlen(id->uri));
	if (!e || e->state != ENT_READY)
		return NULL;
	if (strcmp(e->pub.version, id->version ? id->version : "")) {
		stk_dbg("nvme: %s changed in its backend (stored %s, now %s): dropped", id->uri,
			e->pub.version, id->version ? id->version : "");
		stk__nvme_drop(s, &e->pub);
		return NULL;
	}
	return &e->pub;
}

uint64_t stk__nvme_charge(const struct stk_nvme *s, const struct stk_nvme_id *id,
			  uint64_t stored_len)
{
	size_t ul = strlen(id->uri), vl = id->version ? strlen(id->version) : 0;
	if (!ul || ul > STK_NVME_URI_MAX || vl > STK_NVME_VERSION_MAX)
		return 0;
	uint64_t rec = stk__nvme_hdr_len(ul, vl) + stored_len;
	if (rec <= s->small_max)
		return stk__nvme_slot_size(rec);
	/* A large object's file: its header block, its bytes, the file's allowance. */
	return STK_NVME_BLOCK + nvme_round(stored_len, STK_NVME_BLOCK) + STK_NVME_BLOCK;
}

void stk__nvme_drop(struct stk_nvme *s, struct stk_nvme_ent *pub)
{
	struct nvme_ent *e = nvme_ent(pub);
	if (e->dropped)
		return;
	e->dropped = true;
	stk__nvme_unlink(s, e);
	if (!e->busy)
		stk__nvme_release(s, e);
}

int stk__nvme_degraded(const struct stk_nvme *s, char *why, size_t whylen)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", s->degraded ? s->why : "");
	return s->degraded;
}

void stk__nvme_stats(const struct stk_nvme *s, struct stk_nvme_stats *st)
{
	uint32_t packs = 0;
	for (uint32_t i = 0; i < s->npacks; i++)
		packs += s->packs[i] != NULL;
	*st = (struct stk_nvme_stats){
		.budget = s->budget,
		.used = s->used,
		.payload = s->payload,
		.plain = s->plain,
		.objects = s->objects,
		.dead = s->dead,
		.freeing = s->freeing,
		.packs = packs,
		.larges = s->nlarge,
		.open_fds = s->nopen,
		.discarded = s->discarded,
		.direct = s->direct,
		.degraded = s->degraded,
	};
}

void stk__nvme_foreach(struct stk_nvme *s, void (*fn)(void *arg, struct stk_nvme_ent *e), void *arg)
{
	for (uint64_t i = 0; i <= s->tmask; i++)
		for (struct nvme_ent *e = s->tab[i]; e; e = e->hnext)
			if (e->state == ENT_READY)
				fn(arg, &e->pub);
}

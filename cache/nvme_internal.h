/* SPDX-License-Identifier: MIT */
/* Shared by cache/nvme*.c: the record format and the store's bookkeeping. */
#ifndef STOKER_NVME_INTERNAL_H
#define STOKER_NVME_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/nvme.h"

#define NVME_MAGIC	    0x314b5453u /* "STK1" little-endian */
#define NVME_FORMAT	    1u /* the stored bytes at hdr_len: records in packs (and older large ones) */
#define NVME_FORMAT_ALIGNED 2u /* the stored bytes at STK_NVME_BLOCK: a large object's file */
#define NVME_NOPACK	    UINT32_MAX
#define NVME_CHUNK	    (1u << 20) /* bytes per I/O of a large record */

/*
 * A record's header, little-endian (the only byte order stokerd runs on is
 * checked at build time in nvme.c), followed by the URI, the version string
 * and the stored bytes: at hdr_len (format 1), or after zeros at
 * STK_NVME_BLOCK (format 2, large objects' files: block-aligned, so a get
 * reads them with O_DIRECT straight into the caller's buffer).  hdr_xxh
 * covers the first hdr_len bytes with itself zeroed; data_xxh covers the
 * stored_len stored bytes.
 */
struct nvme_hdr {
	uint32_t magic;
	uint16_t format;
	uint16_t hdr_len; /* 64 + uri_len + ver_len, rounded up to 8 */
	uint32_t flags;	  /* STK_NVME_ZSTD */
	uint32_t domain;
	uint32_t uri_len;
	uint32_t ver_len;
	uint64_t size;
	uint64_t stored_len;
	uint64_t seq; /* the store's write counter: among duplicates the newest wins */
	uint64_t data_xxh;
	uint64_t hdr_xxh;
};
_Static_assert(sizeof(struct nvme_hdr) == 64, "the header's fixed part is 64 bytes");

/* Where a record's stored bytes start. */
static inline uint64_t nvme_data_off(unsigned format, uint64_t hdr_len)
{
	return format == NVME_FORMAT_ALIGNED ? STK_NVME_BLOCK : hdr_len;
}

enum { ENT_WRITING, ENT_READY };

/* An object the store holds; pub first, so a struct stk_nvme_ent * converts back. */
struct nvme_ent {
	struct stk_nvme_ent pub;
	struct nvme_ent *hnext;
	uint64_t hash;
	uint64_t seq;
	uint64_t data_xxh;
	uint64_t file_id; /* a large object's file, l<file_id>.obj */
	uint32_t pack;	  /* pack index, or NVME_NOPACK for a large object */
	uint32_t slot;
	uint32_t busy; /* gets and the put in flight */
	uint8_t state;
	uint8_t format; /* its header's: where its stored bytes start */
	bool dropped;	/* out of the index; freed when busy falls to 0 */
};

struct nvme_pack {
	uint64_t slot; /* bytes per slot */
	uint64_t id;   /* its file: s<slot>-<id>.pack */
	uint32_t nslots;
	uint32_t nlive;
	uint32_t ndead;	   /* freed, but their blocks could not be punched */
	uint64_t *used;	   /* a bit per slot: live or being written */
	uint64_t *dead;	   /* a bit per slot */
	int fd;		   /* -1 while closed */
	uint32_t inflight; /* I/O on fd: it is not closed meanwhile */
	uint64_t stamp;	   /* last use, for the descriptor cache */
	uint32_t cpos;	   /* its place in its class's list */
	bool direct;	   /* fd has O_DIRECT */
};

/* The packs of one slot size, so a put looks only at packs that could take it. */
struct nvme_class {
	uint64_t slot;
	uint32_t *packs; /* indexes into stk_nvme.packs */
	uint32_t n, cap;
	uint32_t hint; /* packs[] before this position are full */
};

struct stk_nvme {
	struct stk_loop *loop;
	int dfd;
	char *dir;
	uint64_t budget, small_max, pack_size;
	unsigned max_fds, flags;
	uint64_t used, payload, dead, objects;
	uint64_t plain; /* objects' sizes: payload before compression */
	uint32_t nlarge, nopen, discarded;
	uint64_t freeing;  /* charges of room being given back on the pool */
	uint32_t nfreeing; /* its jobs */
	void (*freed)(void *arg);
	void *freed_arg;
	uint64_t seq, next_id, stamp;
	bool direct, punch_ok, warned_direct;
	int degraded;
	char why[256];
	struct nvme_ent **tab;
	uint64_t tmask, n;
	struct nvme_pack **packs; /* by index; NULL where none */
	uint32_t npacks, packcap;
	struct nvme_class *classes;
	uint32_t nclasses, classcap;
	void *bufs[32]; /* NVME_CHUNK-sized staging buffers kept for reuse */
	uint32_t nbufs;
};

static inline uint64_t nvme_round(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static inline struct nvme_ent *nvme_ent(struct stk_nvme_ent *e)
{
	return (struct nvme_ent *)e;
}

/* nvme.c */
uint64_t stk__nvme_hdr_len(size_t uri_len, size_t ver_len);
uint64_t stk__nvme_slot_size(uint64_t rec_len);
/*
 * Checks the header at buf (avail bytes readable): magic, format, lengths,
 * its checksum.  Returns 0 with *h filled (host order), or -EBADMSG.
 */
int stk__nvme_hdr_parse(const void *buf, size_t avail, struct nvme_hdr *h);
/* Writes the header of format (NVME_FORMAT*) at buf: hdr_len bytes, padding zeroed. */
void stk__nvme_hdr_build(void *buf, unsigned format, const struct stk_nvme_id *id,
			 uint64_t stored_len, unsigned flags, uint64_t seq, uint64_t data_xxh);
/* Index. */
uint64_t stk__nvme_hash(uint32_t domain, uint64_t size, const char *uri, size_t uri_len);
struct nvme_ent *stk__nvme_find(struct stk_nvme *s, uint32_t domain, uint64_t size, const char *uri,
				size_t uri_len);
int stk__nvme_insert(struct stk_nvme *s, struct nvme_ent *e);
void stk__nvme_unlink(struct stk_nvme *s, struct nvme_ent *e);
/* Gives e's room back (punch or unlink) and frees it; e is out of the index. */
void stk__nvme_release(struct stk_nvme *s, struct nvme_ent *e);
/* Pack p's fd, opened if closed (evicting another from the descriptor cache). -errno. */
int stk__nvme_pack_fd(struct stk_nvme *s, struct nvme_pack *p);
/* Registers pack file s<slot>-<id>.pack; its slots all free. Index, or -ENOMEM. */
int stk__nvme_pack_add(struct stk_nvme *s, uint64_t slot, uint64_t id, uint32_t nslots);
void stk__nvme_pack_remove(struct stk_nvme *s, uint32_t idx);
/*
 * Takes a free slot of size slot: *pack and *slotno set, *was_dead when its
 * blocks were still charged.  Returns 0, or -ENOENT when no pack has one.
 */
int stk__nvme_slot_take(struct stk_nvme *s, uint64_t slot, uint32_t *pack, uint32_t *slotno,
			bool *was_dead);
/*
 * Gives a slot back: at once when nothing was written into it (or its pack
 * goes with it), else after its blocks are punched on the worker pool.
 */
void stk__nvme_slot_free(struct stk_nvme *s, uint32_t pack, uint32_t slotno, uint64_t charge,
			 bool written);
/* Marks s degraded by err (the first reason stays). */
void stk__nvme_degrade(struct stk_nvme *s, int err, const char *what);
/* The store noticed that O_DIRECT is refused: buffered from now on. */
void stk__nvme_no_direct(struct stk_nvme *s, const char *what, int err);
bool stk__nvme_bit(const uint64_t *map, uint32_t i);
void stk__nvme_setbit(uint64_t *map, uint32_t i, bool on);

/*
 * A block-aligned staging buffer of len bytes: one kept from an earlier
 * I/O when len <= NVME_CHUNK (fresh pages cost a fault each, and on our VM
 * first touches run at 0.5 GB/s), else a new one.  NULL when out of memory.
 */
void *stk__nvme_buf_get(struct stk_nvme *s, size_t len);
void stk__nvme_buf_put(struct stk_nvme *s, void *buf, size_t len);

/* nvme_scan.c: rebuilds the index from the directory. 0 or -errno with err. */
int stk__nvme_scan(struct stk_nvme *s, char *err, size_t errlen);

#endif

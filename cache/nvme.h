/* SPDX-License-Identifier: MIT */
/*
 * The storage layer of tier 1: objects kept on a local disk (NVMe) under one
 * directory, within a byte budget that counts headers, padding and a
 * per-file allowance for the filesystem's own metadata, so `du` of the
 * directory stays within it.  docs/nvme.md has the on-disk format.
 *
 * Placement.  Every object is stored as a record: a header (identity,
 * lengths, flags, checksums) followed by its stored bytes, padded to
 * STK_NVME_BLOCK.  Records up to small_max bytes go into a slot of a pack
 * file (one slot size per pack, slot sizes rounded so that padding stays
 * under 12.5%); larger ones get a file of their own.  Pack descriptors are
 * kept in a small cache (max_fds), so the store holds a bounded number of
 * fds however many objects it keeps (ImageNet's 1.28M objects of 110 KB
 * fill about 2,200 packs of 64 MiB and cost max_fds descriptors).
 *
 * I/O.  Data is written and read through the loop (io_uring, or its
 * threads), with O_DIRECT where the filesystem takes it: buffers are
 * STK_NVME_BLOCK-aligned and lengths and offsets are multiples of it.  When
 * open(2) or the first I/O refuses O_DIRECT with EINVAL, the store goes
 * buffered for good and says so once in the log.
 *
 * Integrity.  A get verifies the record's header and the XXH3-64 of its
 * stored bytes before its callback reports success; a record that fails is
 * dropped and reported -EBADMSG, never served.  stk__nvme_open() rebuilds
 * the index from the records' own headers: a header that fails its checksum
 * (a torn write, a crash mid-write) is discarded; with STK_NVME_VERIFY every
 * stored byte is checked there too.  Writes need no commit step: a record
 * counts only once its header and bytes check out, and a large object's file
 * is written under a temporary name and renamed when complete.
 *
 * Degraded.  A write that fails with ENOSPC, EDQUOT, EFBIG or EIO marks the
 * store degraded: later puts fail at once with -EROFS, gets of what is
 * stored keep working, and stk__nvme_degraded() says why.
 *
 * Threads: a store belongs to its loop's thread, which alone calls these
 * functions; every callback runs there, from stk_loop_run_once().
 * Async contract (common/loop.h): a submit that returns 0 calls its
 * callback exactly once, later, never from within the submit; one that
 * returns -errno never calls it.
 *
 * Fork: a child inherits the store's fds (O_CLOEXEC) but must not call
 * anything here; two processes must never open one directory at once.
 */
#ifndef STOKER_NVME_H
#define STOKER_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"

/* Alignment of buffers, lengths and offsets for O_DIRECT, and the unit of every charge. */
#define STK_NVME_BLOCK 4096u
/* Longest URI and version string a record can name (the header fits one block). */
#define STK_NVME_URI_MAX     3072u
#define STK_NVME_VERSION_MAX 512u

/* stk_nvme_opts.flags */
enum {
	STK_NVME_NO_DIRECT = 1u << 0, /* never try O_DIRECT */
	STK_NVME_VERIFY = 1u << 1,    /* open: read and check every stored byte, not only headers */
};

/* Flags stored with an object (stk__nvme_put's flags, stk_nvme_ent.flags). */
enum {
	STK_NVME_ZSTD = 1u << 0, /* the stored bytes are a zstd frame of the object's size bytes */
};

struct stk_nvme_opts {
	size_t opts_size; /* sizeof(struct stk_nvme_opts): fields past it read as 0 */
	const char *dir;  /* an existing directory, the store's alone */
	uint64_t budget;  /* bytes of disk the store may take, metadata included */
	unsigned flags;	  /* STK_NVME_* */
	/* Tuning, 0 for the defaults. */
	uint64_t small_max; /* largest record packed into a pack file; default 1 MiB */
	uint64_t pack_size; /* bytes of slots per pack file; default 64 MiB */
	unsigned max_fds;   /* pack descriptors kept open at once; default 64 */
	/*
	 * Called on the loop thread when room dropped objects held has been
	 * given back (their blocks punched or files deleted on the worker
	 * pool), so a put refused -EAGAIN may be retried; or NULL.
	 */
	void (*freed)(void *arg);
	void *freed_arg;
};

/* Who an object is.  A stored object is served only for an identity equal in every field. */
struct stk_nvme_id {
	const char *uri;
	uint64_t size;	     /* the object's size in the backend (plain, not compressed) */
	const char *version; /* ETag, or mtime as text; NULL means "" */
	uint32_t domain;     /* trust domain (cache.h): another domain's copy is another object */
};

/* A stored object, as stk__nvme_lookup() finds it.  Read-only outside nvme*.c. */
struct stk_nvme_ent {
	char *uri;
	char *version;
	uint64_t size;	     /* as its identity */
	uint64_t stored_len; /* bytes a get delivers: size, or the compressed length */
	uint64_t charge;     /* bytes of the budget it holds */
	uint32_t domain;
	uint32_t flags; /* STK_NVME_ZSTD */
};

struct stk_nvme;
struct stk_nvme_op;

/* res: 0 for a put, stored_len for a get, or -errno. */
typedef void (*stk_nvme_cb)(struct stk_nvme_op *op, int64_t res);

/* One put or get in flight: the caller allocates it and keeps it until its callback. */
struct stk_nvme_op {
	stk_nvme_cb cb;
	void *arg; /* the caller's */
	/* Private to nvme*.c. */
	struct stk_op lop;
	struct stk_nvme *s;
	struct stk_nvme_ent *e;
	void *bounce; /* STK_NVME_BLOCK-aligned staging buffer */
	size_t bounce_len;
	void *user;	     /* the caller's data (put) or destination (get) */
	uint64_t rec_len;    /* header + stored bytes */
	uint64_t base;	     /* the record's offset in its file */
	uint64_t done;	     /* bytes of the padded record moved so far */
	uint64_t cstart;     /* the record offset of bounce's first byte */
	uint64_t clen;	     /* bytes of the record in bounce */
	uint64_t hdr_len;    /* where the stored bytes start: the header's length, or a block */
	void *xxh;	     /* get of a large record: the running checksum */
	struct stk_work sum; /* get straight into the caller's buffer: its checksum, on the pool */
	uint64_t sum_xxh;
	int fd;	     /* the file the I/O goes to */
	bool direct; /* fd has O_DIRECT */
};

struct stk_nvme_stats {
	uint64_t budget;
	uint64_t used;	    /* charges of objects, dead slots and per-file allowances */
	uint64_t payload;   /* stored bytes of the objects held */
	uint64_t plain;	    /* their objects' sizes (payload before STK_NVME_ZSTD) */
	uint64_t objects;   /* held, writes in flight included */
	uint64_t dead;	    /* freed slots whose blocks the filesystem could not punch */
	uint64_t freeing;   /* of used: room of dropped objects being given back now */
	uint32_t packs;	    /* pack files */
	uint32_t larges;    /* large objects' files */
	uint32_t open_fds;  /* pack descriptors open now: <= max_fds, plus those with I/O */
	uint32_t discarded; /* records found bad at the last open, or by a get since */
	bool direct;	    /* O_DIRECT in use */
	int degraded;	    /* 0, or the errno that degraded the store */
};

/*
 * Opens the store in o->dir on loop l, rebuilding its index from the files
 * there: records that fail their checks and temporary files of unfinished
 * writes are deleted (files of other names are left alone, and not
 * counted: the directory should be the store's alone); a budget
 * smaller than what the directory holds drops objects until it fits.
 * Synchronous (it runs before the store serves anything).  Returns 0 with
 * *out set; -EINVAL (bad options), -ENOENT / -ENOTDIR / -EACCES (the
 * directory), -ENOMEM; err says why.  Close with stk__nvme_close().
 */
int stk__nvme_open(struct stk_loop *l, const struct stk_nvme_opts *o, struct stk_nvme **out,
		   char *err, size_t errlen);

/*
 * Closes every fd and frees the index; what is stored stays on disk for the
 * next open.  No put or get may be in flight (the caller counts them);
 * room still being given back is waited for, running the loop (other
 * callbacks of the loop may run meanwhile).  Accepts NULL.
 */
void stk__nvme_close(struct stk_nvme *s);

/*
 * Finds the object stored for id.  Returns it, or NULL when none is stored,
 * its write has not finished, or it was stored for another version (that
 * copy is then dropped: it will never be served).  The pointer stays valid
 * until stk__nvme_drop() or stk__nvme_close().
 */
struct stk_nvme_ent *stk__nvme_lookup(struct stk_nvme *s, const struct stk_nvme_id *id);

/*
 * What storing stored_len bytes under id would charge (stk_nvme_ent.charge),
 * or 0 when id cannot be stored (-ENAMETOOLONG).  A put that needs a new
 * pack file charges STK_NVME_BLOCK more, for the file's metadata.
 */
uint64_t stk__nvme_charge(const struct stk_nvme *s, const struct stk_nvme_id *id,
			  uint64_t stored_len);

/*
 * Stores len bytes at data (the object's bytes, or with STK_NVME_ZSTD its
 * compressed form) as the object id.  data must stay unchanged until the
 * callback; any alignment.  A copy stored for another version of id is
 * dropped first.  Returns 0 (callback called once: 0, or -ENOSPC / -EIO /
 * -EDQUOT / -EFBIG from the disk, which degraded the store, or -ECANCELED
 * when stk__nvme_drop() dropped it meanwhile); or
 *   -EROFS    the store is degraded (stk__nvme_degraded() says why);
 *   -EFBIG    its charge exceeds the budget: it never fits;
 *   -ENOSPC   its charge exceeds the budget left: drop objects, retry;
 *   -EAGAIN   it fits once the room of dropped objects is given back:
 *             retry after opts.freed is called (or stats' freeing is 0);
 *   -EEXIST   this version of id is stored already (-EBUSY: being stored);
 *   -ENAMETOOLONG, -EINVAL (flags), -ENOMEM, -EMFILE.
 * Once the callback said 0, stk__nvme_lookup(id) finds it.
 */
int stk__nvme_put(struct stk_nvme *s, const struct stk_nvme_id *id, const void *data, uint64_t len,
		  unsigned flags, struct stk_nvme_op *op, stk_nvme_cb cb);

/*
 * Reads e's stored bytes (e->stored_len) into buf, which needs that much
 * room, any alignment.  The callback gets e->stored_len once the header
 * and checksum verified, or -EBADMSG (the record is corrupt: e is dropped,
 * never served again), -EIO and the like (buf's contents are then
 * undefined), -ENOMEM.  e stays valid during the get even if dropped
 * meanwhile.  Returns 0, or -ENOMEM / -EMFILE.
 */
int stk__nvme_get(struct stk_nvme *s, struct stk_nvme_ent *e, void *buf, struct stk_nvme_op *op,
		  stk_nvme_cb cb);

/*
 * Forgets e at once (lookups no longer find it; a put in flight ends with
 * -ECANCELED; e is invalid afterwards) and gives its room back: once its
 * gets in flight end, its blocks are punched out of its pack or its file
 * deleted on the loop's worker pool, and the charge is released when that
 * is done (opts.freed is then called), so the disk never holds more than
 * the budget.
 */
void stk__nvme_drop(struct stk_nvme *s, struct stk_nvme_ent *e);

/* 0 when healthy, else the errno that degraded s, with why (if not NULL) saying what failed. */
int stk__nvme_degraded(const struct stk_nvme *s, char *why, size_t whylen);

void stk__nvme_stats(const struct stk_nvme *s, struct stk_nvme_stats *st);

/*
 * Calls fn for every stored object (not writes in flight), in no order;
 * fn must not drop or put.  For the scheduler's restart and for tests.
 */
void stk__nvme_foreach(struct stk_nvme *s, void (*fn)(void *arg, struct stk_nvme_ent *e),
		       void *arg);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim internals: the mapping table (config.c), the lazy client and
 * per-dataset catalogs (catalog.c), and the interposed calls: what they share
 * (interpose.c, fd.c) and one file per family (open.c, stat.c, dir.c).
 *
 * Every function here is called with the thread's "inside the shim" flag set
 * (see shim_enter()), so what it calls in libc and libstoker goes to the real
 * functions.
 */
#ifndef STK_SHIM_INT_H
#define STK_SHIM_INT_H

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "stoker.h"

#define SHIM_MAX_MAPS 16
#define SHIM_PATH_MAX 1024

/*
 * A mapping's open dataset and its keys in sorted order.  Published whole
 * through one pointer and never freed (a fork or a dead daemon abandons it),
 * so a thread or a DIR holding it may go on reading.
 */
struct shim_cat {
	struct stk_dataset *ds;
	uint32_t *sorted; /* object indices in strcmp order of their keys */
	size_t count;
};

/* One STOKER_SHIM_MAP entry: local prefix (no trailing '/') to dataset URI. */
struct shim_map {
	char prefix[SHIM_PATH_MAX];
	size_t plen;
	char uri[SHIM_PATH_MAX];
	/* The lazy state, under shim_mu; cat is read without it (an atomic pointer). */
	struct shim_cat *cat;
	int err;	   /* the last open's -errno, 0 */
	uint64_t retry_ns; /* when to try again after err */
};

extern struct shim_map shim_maps[SHIM_MAX_MAPS];
extern int shim_nmaps;

/* The thread's re-entry flag: calls made while it is set go to libc unchanged. */
extern __thread int shim_inside __attribute__((tls_model("initial-exec")));

/* config.c */
/* >= 0 when the cwd lies in or above a mapping, so that relative paths may be mapped. */
extern int shim_cwd_map;

/*
 * Whether path (relative to the cwd) may lie in a mapping: the test every
 * wrapper makes first.  Inline, no lock, no call, no allocation: for an
 * absolute path one byte loop per mapping that stops at the first byte that
 * differs.  True answers are confirmed by shim__match().
 */
static inline bool shim__maybe(const char *path)
{
	if (path[0] != '/')
		return path[0] && __atomic_load_n(&shim_cwd_map, __ATOMIC_RELAXED) >= 0;
	for (int i = 0; i < shim_nmaps; i++) {
		const char *p = shim_maps[i].prefix;
		size_t pl = shim_maps[i].plen, j = 1;
		while (j < pl && path[j] == p[j])
			j++;
		if (j == pl && (path[j] == '/' || path[j] == 0))
			return true;
	}
	return false;
}

void shim__config_init(void);
/*
 * Whether path (relative to AT_FDCWD) lies in a mapping: returns its index
 * with rel (the key-relative remainder, "" for the mapping's root, normalized)
 * filled in, or -1.  Allocation-free; for unmapped absolute paths it costs a
 * few memcmp()s.
 */
int shim__match(const char *path, char *rel, size_t cap);
/*
 * Whether absolute path is, once normalized, a proper ancestor of a mapping's
 * prefix (the ".." of a mapping's root).
 */
bool shim__is_ancestor(const char *path);
/* Recomputes whether the cwd lies in a mapping (after chdir()). */
void shim__cwd_changed(void);

/* catalog.c */
/* What a key-relative path is in the mapping's dataset. */
enum shim_kind {
	SHIM_NONE = 0, /* not in the catalog */
	SHIM_FILE,
	SHIM_DIR,
	SHIM_NOTDIR, /* a proper prefix of it is an object */
};
/*
 * Returns the catalog of mapping m, connecting and opening it on first use,
 * or NULL with *err set (-errno) when stokerd is unreachable or refused it.
 */
struct shim_cat *shim__dataset(int m, int *err);
enum shim_kind shim__lookup(const struct shim_cat *cat, const char *rel, size_t *index);
/* Fills st for an object or directory of mapping m. */
void shim__fill_stat(int m, const char *rel, enum shim_kind k, uint64_t size, struct stat *st);
/* The first position in sorted (count indices of ds) whose key is >= key. */
size_t shim__lower_bound(const struct stk_dataset *ds, const uint32_t *sorted, size_t count,
			 const char *key);
/*
 * Called when a libstoker call on mapping m's dataset failed with err: a dead
 * connection (-EPIPE, -ETIMEDOUT) is abandoned so that a later access
 * connects anew.
 */
void shim__failed(int err);
/* Logs "stoker-shim: ..." to stderr once per process per kind. */
void shim__log_once(int kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum { LOG_UNREACHABLE, LOG_FALLBACK, LOG_EIO, LOG_PLAN, LOG_N };
uint64_t shim__hash(const char *s, const char *t);
void shim__catalog_init(void);

/* ---- the interposers ------------------------------------------------- */

/*
 * What the interposer files share.  Unlike the calls above, these are also
 * called with the "inside" flag clear, on the wrappers' way in: they call
 * libc only through REAL() or with the flag set.
 */

/* Marks an interposer: the only functions the shim exports (see shim.map). */
#define EXPORT __attribute__((visibility("default")))

/* interpose.c */
/*
 * The real function behind an interposer, for REAL(): returns *slot, filled
 * in from dlsym(RTLD_NEXT, name) on first use (NULL if libc lacks it).
 */
void *stk__shim_resolve(void **slot, const char *name);

/*
 * REAL_DECL declares a file's slot for a real function.  Each file keeps
 * slots for the functions it calls; two files that call the same one resolve
 * the same pointer.
 */
#define REAL_DECL(ret, name, args) static ret(*real_##name) args

/* Calls the real function through the file's slot, resolving it on first use. */
#define REAL(name) ((__typeof__(real_##name))stk__shim_resolve((void **)&real_##name, #name))

/*
 * Whether (dirfd, path) lies in a mapping: its index with rel (SHIM_PATH_MAX
 * bytes) filled in, or -1.
 */
int stk__shim_mapped_at(int dirfd, const char *path, char *rel);
/* Whether the path exists on the local filesystem (the real lstat). */
bool stk__shim_local_exists(int dirfd, const char *path);

/* fd.c */
/*
 * A placeholder memfd standing for a mapped directory.  close() is not
 * interposed, so an entry may outlive its descriptor: the memfd's inode
 * number, checked with fstat() on every use, tells a reused number apart.
 */
struct dfd {
	int map;
	bool file;     /* an object's memfd, not a directory's placeholder */
	uint64_t size; /* the object's */
	ino_t ino;
	char rel[]; /* the directory, key-relative ("" for the root) */
};

#define DFD_MAX 4096
/*
 * The registry, indexed by descriptor.  Written under fd.c's lock; read
 * without it through atomic loads (a set entry is the fast paths' cue).
 */
extern struct dfd *stk__shim_dfds[DFD_MAX];

/* Sets fd's entry to d (NULL clears it), freeing the old one. */
void stk__shim_dfd_set(int fd, struct dfd *d);
/* The entry for fd when it is still the memfd the shim made, else NULL. */
struct dfd *stk__shim_dfd_get(int fd);
/* A new placeholder descriptor for directory rel of mapping m. Returns it or -1 with errno. */
int stk__shim_dfd_make(int m, const char *rel, bool cloexec);
/* Remembers an object's memfd, so that fstat() of it agrees with stat() of its path. */
void stk__shim_dfd_note_file(int fd, int m, const char *rel, uint64_t size);

/* The cheap test every wrapper makes first; see shim__maybe(). */
static inline bool maybe_at(int dirfd, const char *path)
{
	if (shim_inside || !shim_nmaps || !path)
		return false;
	if (path[0] == '/' || dirfd == AT_FDCWD)
		return shim__maybe(path);
	return (unsigned)dirfd < DFD_MAX &&
	       __atomic_load_n(&stk__shim_dfds[dirfd], __ATOMIC_RELAXED);
}

/* Enters the mapped path: what the shim calls from here goes to libc. */
#define ENTER()                                                                                    \
	int saved_errno_ = errno;                                                                  \
	shim_inside = 1
#define LEAVE_OK()   (shim_inside = 0, errno = saved_errno_)
#define LEAVE_ERR(e) (shim_inside = 0, errno = (e))
#define LEAVE_PASS() LEAVE_OK()

#endif

/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim: the calls that ask about a path or descriptor without
 * opening it.  The stat family (stat, lstat, fstat, fstatat, statx and the
 * pre-2.33 __xstat entry points), access and faccessat, realpath, and the
 * extended attributes.  A mapped entry stats from the catalog, with the same
 * answer by path and by the descriptor open() gave.
 */
#include "shim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

REAL_DECL(int, stat, (const char *, struct stat *));
REAL_DECL(int, stat64, (const char *, struct stat64 *));
REAL_DECL(int, lstat, (const char *, struct stat *));
REAL_DECL(int, lstat64, (const char *, struct stat64 *));
REAL_DECL(int, fstat, (int, struct stat *));
REAL_DECL(int, fstat64, (int, struct stat64 *));
REAL_DECL(int, fstatat, (int, const char *, struct stat *, int));
REAL_DECL(int, fstatat64, (int, const char *, struct stat64 *, int));
REAL_DECL(int, __xstat, (int, const char *, struct stat *));
REAL_DECL(int, __xstat64, (int, const char *, struct stat64 *));
REAL_DECL(int, __lxstat, (int, const char *, struct stat *));
REAL_DECL(int, __lxstat64, (int, const char *, struct stat64 *));
REAL_DECL(int, __fxstat, (int, int, struct stat *));
REAL_DECL(int, __fxstat64, (int, int, struct stat64 *));
REAL_DECL(int, __fxstatat, (int, int, const char *, struct stat *, int));
REAL_DECL(int, __fxstatat64, (int, int, const char *, struct stat64 *, int));
REAL_DECL(int, statx, (int, const char *, int, unsigned, struct statx *));
REAL_DECL(int, access, (const char *, int));
REAL_DECL(int, faccessat, (int, const char *, int, int));
REAL_DECL(char *, realpath, (const char *, char *));
REAL_DECL(char *, __realpath_chk, (const char *, char *, size_t));

/* glibc's internal entry points, which its headers do not declare to us. */
int __xstat(int, const char *, struct stat *);
int __xstat64(int, const char *, struct stat64 *);
int __lxstat(int, const char *, struct stat *);
int __lxstat64(int, const char *, struct stat64 *);
int __fxstat(int, int, struct stat *);
int __fxstat64(int, int, struct stat64 *);
int __fxstatat(int, int, const char *, struct stat *, int);
int __fxstatat64(int, int, const char *, struct stat64 *, int);
char *__realpath_chk(const char *, char *, size_t);

/* ---- stat ------------------------------------------------------------- */

/*
 * The parent of a mapping whose local prefix does not exist ("root/.." in
 * ls -la) stats as an empty read-only directory, as the parents of a mount
 * point would; when it exists, it is the real one.
 */
static bool missing_ancestor(const char *path, int atflags, struct stat *st, int *ret)
{
	if (!shim__is_ancestor(path))
		return false;
	ENTER();
	int r = REAL(fstatat)(AT_FDCWD, path, st, atflags);
	if (r == 0 || errno != ENOENT) {
		*ret = r;
		if (r == 0)
			LEAVE_OK();
		else
			LEAVE_ERR(errno);
		return true;
	}
	shim__fill_stat(0, path, SHIM_DIR, 0, st);
	*ret = 0;
	LEAVE_OK();
	return true;
}

/*
 * stat() of (dirfd, path), or of dirfd itself with AT_EMPTY_PATH and "".
 * True when answered (*ret 0 or -1 with errno).
 */
static __attribute__((noinline)) bool mapped_stat_slow(int dirfd, const char *path, int atflags,
						       struct stat *st, int *ret)
{
	if (shim_inside || !shim_nmaps || !path)
		return false;
	if (!path[0] && (atflags & AT_EMPTY_PATH)) {
		struct dfd *d = stk__shim_dfd_get(dirfd);
		if (!d)
			return false;
		ENTER();
		shim__fill_stat(d->map, d->rel, d->file ? SHIM_FILE : SHIM_DIR, d->size, st);
		*ret = 0;
		LEAVE_OK();
		return true;
	}
	char rel[SHIM_PATH_MAX];
	int m = stk__shim_mapped_at(dirfd, path, rel);
	if (m < 0)
		return path[0] == '/' && missing_ancestor(path, atflags, st, ret);
	ENTER();
	int err;
	struct shim_cat *cat = shim__dataset(m, &err);
	size_t idx = 0;
	enum shim_kind k = cat ? shim__lookup(cat, rel, &idx) : SHIM_NONE;
	if (k == SHIM_NONE || (k == SHIM_NOTDIR && stk__shim_local_exists(dirfd, path))) {
		LEAVE_PASS();
		return false;
	}
	if (k == SHIM_NOTDIR) {
		*ret = -1;
		LEAVE_ERR(ENOTDIR);
		return true;
	}
	uint64_t size = 0;
	if (k == SHIM_FILE)
		stk_dataset_object(cat->ds, idx, NULL, &size);
	shim__fill_stat(m, rel, k, size, st);
	*ret = 0;
	LEAVE_OK();
	return true;
}

static inline bool mapped_stat(int dirfd, const char *path, int atflags, struct stat *st, int *ret)
{
	return maybe_at(dirfd, path) && mapped_stat_slow(dirfd, path, atflags, st, ret);
}

/* fstat() of a placeholder directory descriptor. */
static bool mapped_fstat(int fd, struct stat *st, int *ret)
{
	if (shim_inside || (unsigned)fd >= DFD_MAX ||
	    !__atomic_load_n(&stk__shim_dfds[fd], __ATOMIC_RELAXED))
		return false;
	return mapped_stat(fd, "", AT_EMPTY_PATH, st, ret);
}

#define STAT_WRAP(name, call)                                                                      \
	EXPORT int name(const char *path, struct stat *st)                                         \
	{                                                                                          \
		int r;                                                                             \
		if (mapped_stat(AT_FDCWD, path, 0, st, &r))                                        \
			return r;                                                                  \
		return call;                                                                       \
	}
/* struct stat and struct stat64 are the same on LP64. */
#define STAT_WRAP64(name)                                                                          \
	EXPORT int name(const char *path, struct stat64 *st)                                       \
	{                                                                                          \
		int r;                                                                             \
		if (mapped_stat(AT_FDCWD, path, 0, (struct stat *)st, &r))                         \
			return r;                                                                  \
		return REAL(name)(path, st);                                                       \
	}
STAT_WRAP(stat, REAL(stat)(path, st))
STAT_WRAP64(stat64)
STAT_WRAP(lstat, REAL(lstat)(path, st))
STAT_WRAP64(lstat64)

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	int r;
	if (mapped_stat(dirfd, path, flags, st, &r))
		return r;
	return REAL(fstatat)(dirfd, path, st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	int r;
	if (mapped_stat(dirfd, path, flags, (struct stat *)st, &r))
		return r;
	return REAL(fstatat64)(dirfd, path, st, flags);
}

EXPORT int fstat(int fd, struct stat *st)
{
	int r;
	if (mapped_fstat(fd, st, &r))
		return r;
	return REAL(fstat)(fd, st);
}

EXPORT int fstat64(int fd, struct stat64 *st)
{
	int r;
	if (mapped_fstat(fd, (struct stat *)st, &r))
		return r;
	return REAL(fstat64)(fd, st);
}

/* The pre-2.33 entry points, which binaries built against older glibc still call. */
#define XSTAT_WRAP(name)                                                                           \
	EXPORT int name(int ver, const char *path, struct stat *st)                                \
	{                                                                                          \
		int r;                                                                             \
		if (mapped_stat(AT_FDCWD, path, 0, st, &r))                                        \
			return r;                                                                  \
		return REAL(name)(ver, path, st);                                                  \
	}
#define XSTAT_WRAP64(name)                                                                         \
	EXPORT int name(int ver, const char *path, struct stat64 *st)                              \
	{                                                                                          \
		int r;                                                                             \
		if (mapped_stat(AT_FDCWD, path, 0, (struct stat *)st, &r))                         \
			return r;                                                                  \
		return REAL(name)(ver, path, st);                                                  \
	}
XSTAT_WRAP(__xstat)
XSTAT_WRAP64(__xstat64)
XSTAT_WRAP(__lxstat)
XSTAT_WRAP64(__lxstat64)

EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	int r;
	if (mapped_fstat(fd, st, &r))
		return r;
	return REAL(__fxstat)(ver, fd, st);
}

EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
	int r;
	if (mapped_fstat(fd, (struct stat *)st, &r))
		return r;
	return REAL(__fxstat64)(ver, fd, st);
}

EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	int r;
	if (mapped_stat(dirfd, path, flags, st, &r))
		return r;
	return REAL(__fxstatat)(ver, dirfd, path, st, flags);
}

EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	int r;
	if (mapped_stat(dirfd, path, flags, (struct stat *)st, &r))
		return r;
	return REAL(__fxstatat64)(ver, dirfd, path, st, flags);
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
	struct stat st;
	int r;
	if (!mapped_stat(dirfd, path, flags, &st, &r))
		return REAL(statx)(dirfd, path, flags, mask, stx);
	if (r == 0) {
		memset(stx, 0, sizeof(*stx));
		stx->stx_mask = STATX_BASIC_STATS;
		stx->stx_blksize = (uint32_t)st.st_blksize;
		stx->stx_nlink = (uint32_t)st.st_nlink;
		stx->stx_uid = st.st_uid;
		stx->stx_gid = st.st_gid;
		stx->stx_mode = (uint16_t)st.st_mode;
		stx->stx_ino = st.st_ino;
		stx->stx_size = (uint64_t)st.st_size;
		stx->stx_blocks = (uint64_t)st.st_blocks;
		stx->stx_dev_major = major(st.st_dev);
		stx->stx_dev_minor = minor(st.st_dev);
	}
	return r;
}

/* ---- access ----------------------------------------------------------- */

static bool mapped_access(int dirfd, const char *path, int amode, int *ret)
{
	struct stat st;
	int r;
	if (!mapped_stat(dirfd, path, 0, &st, &r))
		return false;
	*ret = r;
	if (r == 0 && (amode & W_OK)) {
		*ret = -1;
		errno = EROFS;
	} else if (r == 0 && (amode & X_OK) && !S_ISDIR(st.st_mode)) {
		*ret = -1;
		errno = EACCES;
	}
	return true;
}

EXPORT int access(const char *path, int amode)
{
	int r;
	if (mapped_access(AT_FDCWD, path, amode, &r))
		return r;
	return REAL(access)(path, amode);
}

EXPORT int faccessat(int dirfd, const char *path, int amode, int flags)
{
	int r;
	if (mapped_access(dirfd, path, amode, &r))
		return r;
	return REAL(faccessat)(dirfd, path, amode, flags);
}

/* ---- realpath ---------------------------------------------------------- */

/* realpath() of a mapped path: lexical, since the mapping has no symbolic links. */
static bool mapped_realpath(const char *path, char *resolved, size_t cap, char **ret)
{
	struct stat st;
	int r;
	char rel[SHIM_PATH_MAX];
	if (!mapped_stat(AT_FDCWD, path, 0, &st, &r))
		return false;
	*ret = NULL;
	if (r)
		return true;
	int m = shim__match(path, rel, sizeof(rel));
	if (m < 0) {
		errno = ENOENT;
		return true;
	}
	const struct shim_map *mp = &shim_maps[m];
	size_t rl = strlen(rel), n = mp->plen + (rl ? rl + 1 : 0);
	if (n + 1 > cap) {
		errno = ENAMETOOLONG;
		return true;
	}
	int saved = errno;
	char *out = resolved ? resolved : malloc(n + 1);
	if (!out) {
		errno = ENOMEM;
		return true;
	}
	memcpy(out, mp->prefix, mp->plen);
	if (rl) {
		out[mp->plen] = '/';
		memcpy(out + mp->plen + 1, rel, rl);
	}
	out[n] = 0;
	errno = saved;
	*ret = out;
	return true;
}

EXPORT char *realpath(const char *path, char *resolved)
{
	char *r;
	if (mapped_realpath(path, resolved, PATH_MAX, &r))
		return r;
	return REAL(realpath)(path, resolved);
}

EXPORT char *__realpath_chk(const char *path, char *resolved, size_t len)
{
	char *r;
	if (mapped_realpath(path, resolved, resolved && len < PATH_MAX ? len : PATH_MAX, &r))
		return r;
	return REAL(__realpath_chk)(path, resolved, len);
}

/* ---- extended attributes ----------------------------------------------- */

/* A mapped entry has none (ls -l asks for ACLs and SELinux labels). */
static bool mapped_xattr(const char *path, ssize_t *ret)
{
	struct stat st;
	int r;
	if (!mapped_stat(AT_FDCWD, path, 0, &st, &r))
		return false;
	*ret = -1;
	if (r == 0)
		errno = ENODATA;
	return true;
}

REAL_DECL(ssize_t, getxattr, (const char *, const char *, void *, size_t));
REAL_DECL(ssize_t, lgetxattr, (const char *, const char *, void *, size_t));
REAL_DECL(ssize_t, listxattr, (const char *, char *, size_t));
REAL_DECL(ssize_t, llistxattr, (const char *, char *, size_t));

EXPORT ssize_t getxattr(const char *path, const char *name, void *v, size_t n)
{
	ssize_t r;
	if (mapped_xattr(path, &r))
		return r;
	return REAL(getxattr)(path, name, v, n);
}

EXPORT ssize_t lgetxattr(const char *path, const char *name, void *v, size_t n)
{
	ssize_t r;
	if (mapped_xattr(path, &r))
		return r;
	return REAL(lgetxattr)(path, name, v, n);
}

EXPORT ssize_t listxattr(const char *path, char *list, size_t n)
{
	ssize_t r;
	int saved = errno;
	if (!mapped_xattr(path, &r))
		return REAL(listxattr)(path, list, n);
	if (r < 0 && errno == ENODATA) {
		errno = saved;
		r = 0;
	}
	return r;
}

EXPORT ssize_t llistxattr(const char *path, char *list, size_t n)
{
	ssize_t r;
	int saved = errno;
	if (!mapped_xattr(path, &r))
		return REAL(llistxattr)(path, list, n);
	if (r < 0 && errno == ENODATA) {
		errno = saved;
		r = 0;
	}
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim: the open family.  open, open64, openat, openat64 and their
 * _FORTIFY_SOURCE forms (__open_2 ...), fopen and freopen.  A mapped object
 * opens as its sealed memfd copy, a mapped directory as a placeholder
 * descriptor (fd.c); anything the catalog does not answer goes to libc.
 */
#include "shim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

REAL_DECL(int, open, (const char *, int, ...));
REAL_DECL(int, open64, (const char *, int, ...));
REAL_DECL(int, openat, (int, const char *, int, ...));
REAL_DECL(int, openat64, (int, const char *, int, ...));
REAL_DECL(int, __open_2, (const char *, int));
REAL_DECL(int, __open64_2, (const char *, int));
REAL_DECL(int, __openat_2, (int, const char *, int));
REAL_DECL(int, __openat64_2, (int, const char *, int));
REAL_DECL(FILE *, fopen, (const char *, const char *));
REAL_DECL(FILE *, fopen64, (const char *, const char *));
REAL_DECL(FILE *, freopen, (const char *, const char *, FILE *));
REAL_DECL(FILE *, freopen64, (const char *, const char *, FILE *));

/* glibc's internal entry points, which its headers do not declare to us. */
int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);

/* ---- mapped paths ------------------------------------------------------ */

/* The parent of rel is a directory of the mapping (for O_CREAT's EROFS against ENOENT). */
static bool parent_is_dir(const struct shim_cat *cat, const char *rel)
{
	const char *sl = strrchr(rel, '/');
	if (!sl)
		return true;
	char buf[SHIM_PATH_MAX];
	memcpy(buf, rel, (size_t)(sl - rel));
	buf[sl - rel] = 0;
	size_t idx;
	return shim__lookup(cat, buf, &idx) == SHIM_DIR;
}

/*
 * open() of a mapped path.  Returns true when the shim answered (*ret is the
 * descriptor, or -1 with errno set), false when the real call should run:
 * the path is not mapped, stokerd cannot serve it and the local filesystem
 * may, or the catalog does not know it.
 */
static __attribute__((noinline)) bool mapped_open_slow(int dirfd, const char *path, int flags,
						       mode_t mode, int *ret)
{
	char rel[SHIM_PATH_MAX];
	int m = stk__shim_mapped_at(dirfd, path, rel);
	if (m < 0)
		return false;
	ENTER();
	int err = 0;
	struct shim_cat *cat = shim__dataset(m, &err);
	if (!cat) {
		LEAVE_PASS();
		return false;
	}
	size_t idx = 0;
	enum shim_kind k = shim__lookup(cat, rel, &idx);
	bool wr = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) ||
		  (flags & __O_TMPFILE) == __O_TMPFILE;
	if (k == SHIM_NONE && (flags & O_CREAT) && parent_is_dir(cat, rel)) {
		/* Creating in a directory only the catalog has: the filesystem is read-only. */
		int fd = REAL(openat)(dirfd, path, flags, mode);
		*ret = fd;
		if (fd >= 0)
			LEAVE_OK();
		else
			LEAVE_ERR(errno == ENOENT ? EROFS : errno);
		return true;
	}
	if (k == SHIM_NONE || ((wr || k == SHIM_NOTDIR) && stk__shim_local_exists(dirfd, path))) {
		LEAVE_PASS();
		return false;
	}
	*ret = -1;
	if (k == SHIM_NOTDIR) {
		LEAVE_ERR(ENOTDIR);
		return true;
	}
	if (wr) {
		int e = k == SHIM_DIR ? EISDIR : EROFS;
		if (k == SHIM_FILE && (flags & O_CREAT) && (flags & O_EXCL))
			e = EEXIST;
		LEAVE_ERR(e);
		return true;
	}
	if (k == SHIM_DIR) {
		int fd = stk__shim_dfd_make(m, rel, flags & O_CLOEXEC);
		if (fd < 0) {
			LEAVE_ERR(errno);
			return true;
		}
		*ret = fd;
		LEAVE_OK();
		return true;
	}
	if (flags & O_DIRECTORY) {
		LEAVE_ERR(ENOTDIR);
		return true;
	}
	int fd = -1;
	uint64_t size;
	int r = stk_get_fd(cat->ds, idx, &fd, &size);
	if (r == 0) {
		stk_release_index(cat->ds, idx);
		/* stk_get_fd() leaves the offset where its copy ended; a fresh open starts at 0. */
		lseek(fd, 0, SEEK_SET);
		if (!(flags & O_CLOEXEC))
			fcntl(fd, F_SETFD, 0);
		stk__shim_dfd_note_file(fd, m, rel, size);
		*ret = fd;
		LEAVE_OK();
		return true;
	}
	shim__failed(r);
	if (stk__shim_local_exists(dirfd, path)) {
		shim__log_once(LOG_FALLBACK,
			       "stokerd could not deliver %s (%s); reading it locally", path,
			       stk_errmsg());
		LEAVE_PASS();
		return false;
	}
	shim__log_once(LOG_EIO, "stokerd could not deliver %s: %s", path, stk_errmsg());
	LEAVE_ERR(r == -ENOENT || r == -EACCES ? -r : EIO);
	return true;
}

static inline bool mapped_open(int dirfd, const char *path, int flags, mode_t mode, int *ret)
{
	return maybe_at(dirfd, path) && mapped_open_slow(dirfd, path, flags, mode, ret);
}

/* ---- open ------------------------------------------------------------- */

#define OPEN_MODE(flags)                                                                           \
	mode_t mode = 0;                                                                           \
	if ((flags) & (O_CREAT | __O_TMPFILE)) {                                                   \
		va_list ap;                                                                        \
		va_start(ap, flags);                                                               \
		mode = va_arg(ap, mode_t);                                                         \
		va_end(ap);                                                                        \
	}

EXPORT int open(const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	int r;
	if (mapped_open(AT_FDCWD, path, flags, mode, &r))
		return r;
	if (!real_open && shim_inside)
		return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	return REAL(open)(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	int r;
	if (mapped_open(AT_FDCWD, path, flags, mode, &r))
		return r;
	if (!real_open64 && shim_inside)
		return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	return REAL(open64)(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	int r;
	if (mapped_open(dirfd, path, flags, mode, &r))
		return r;
	if (!real_openat && shim_inside)
		return (int)syscall(SYS_openat, dirfd, path, flags, mode);
	return REAL(openat)(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	int r;
	if (mapped_open(dirfd, path, flags, mode, &r))
		return r;
	if (!real_openat64 && shim_inside)
		return (int)syscall(SYS_openat, dirfd, path, flags, mode);
	return REAL(openat64)(dirfd, path, flags, mode);
}

EXPORT int __open_2(const char *path, int flags)
{
	int r;
	if (mapped_open(AT_FDCWD, path, flags, 0, &r))
		return r;
	return REAL(__open_2)(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
	int r;
	if (mapped_open(AT_FDCWD, path, flags, 0, &r))
		return r;
	return REAL(__open64_2)(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	int r;
	if (mapped_open(dirfd, path, flags, 0, &r))
		return r;
	return REAL(__openat_2)(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	int r;
	if (mapped_open(dirfd, path, flags, 0, &r))
		return r;
	return REAL(__openat64_2)(dirfd, path, flags);
}

/* ---- fopen ------------------------------------------------------------ */

/* open(2) flags for an fopen() mode, as glibc reads it. */
static int mode_flags(const char *mode)
{
	int f;
	switch (mode[0]) {
	case 'r':
		f = O_RDONLY;
		break;
	case 'w':
		f = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		f = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	for (const char *p = mode + 1; *p && *p != ','; p++) {
		if (*p == '+')
			f = (f & ~O_ACCMODE) | O_RDWR;
		else if (*p == 'e')
			f |= O_CLOEXEC;
		else if (*p == 'x')
			f |= O_EXCL;
	}
	return f;
}

/* fopen() of a mapped path: true when answered (*ret the stream or NULL with errno). */
static bool mapped_fopen(const char *path, const char *mode, FILE **ret)
{
	if (shim_inside || !shim_nmaps || !path || !mode)
		return false;
	int flags = mode_flags(mode);
	int fd;
	if (flags < 0 || !mapped_open(AT_FDCWD, path, flags, 0666, &fd))
		return false;
	*ret = NULL;
	if (fd < 0)
		return true;
	ENTER();
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		close(fd);
		LEAVE_ERR(e);
		return true;
	}
	*ret = f;
	LEAVE_OK();
	return true;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	FILE *f;
	if (mapped_fopen(path, mode, &f))
		return f;
	return REAL(fopen)(path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	FILE *f;
	if (mapped_fopen(path, mode, &f))
		return f;
	return REAL(fopen64)(path, mode);
}

/*
 * freopen() of a mapped path: the object's descriptor takes the place of the
 * stream's (dup3), which keeps the FILE and its orientation.  On failure the
 * stream is closed, as freopen() does.
 */
static bool mapped_freopen(const char *path, const char *mode, FILE *stream, FILE **ret)
{
	if (shim_inside || !shim_nmaps || !path || !mode || !stream)
		return false;
	int flags = mode_flags(mode);
	int fd;
	if (flags < 0 || !mapped_open(AT_FDCWD, path, flags, 0666, &fd))
		return false;
	*ret = NULL;
	ENTER();
	int e = fd < 0 ? errno : 0;
	fflush(stream);
	int old = fileno(stream);
	if (!e && (old < 0 || dup3(fd, old, (flags & O_CLOEXEC) ? O_CLOEXEC : 0) < 0))
		e = old < 0 ? EBADF : errno;
	if (fd >= 0)
		close(fd);
	if (e) {
		fclose(stream);
		LEAVE_ERR(e);
		return true;
	}
	clearerr(stream);
	rewind(stream);
	*ret = stream;
	LEAVE_OK();
	return true;
}

EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	FILE *f;
	if (mapped_freopen(path, mode, stream, &f))
		return f;
	return REAL(freopen)(path, mode, stream);
}

EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	FILE *f;
	if (mapped_freopen(path, mode, stream, &f))
		return f;
	return REAL(freopen64)(path, mode, stream);
}

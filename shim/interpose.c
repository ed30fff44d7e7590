/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim: the interposed libc calls.
 *
 * Every wrapper starts with the same cheap test: inside the shim already, no
 * mappings, or a path outside every mapping, and the call goes to the real
 * function at once, with no lock and no allocation.  For a mapped path the
 * wrapper sets the thread's "inside" flag, so what the shim and libstoker
 * call from there (open, stat, fopen of the plan file ...) reaches libc.
 *
 * A mapped object is opened as a private sealed memfd copy (stk_get_fd()),
 * so read, pread, lseek, mmap, fstat and close on it are the kernel's.  A
 * mapped directory that is not on the local disk is synthesized from the
 * catalog: its descriptors are placeholder memfds the shim remembers (for
 * fdopendir(), fstat() and openat() relative to them), its DIR streams are
 * shim-owned and kept in a registry that readdir() and friends consult.  The
 * shim remembers the objects' memfds as well, so that their fstat() agrees
 * with stat() of the path.
 *
 * This file holds what the families share: the thread's re-entry flag, the
 * resolution of the real functions, the test of which paths are mapped, and
 * the constructor.  The interposers are in open.c (open, fopen, freopen),
 * stat.c (stat, access, realpath, xattrs), dir.c (DIR streams, chdir) and
 * fd.c (the descriptor registry, dup, fcntl).
 */
#include "shim_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

__thread int shim_inside __attribute__((tls_model("initial-exec")));

/* ---- the real functions ---------------------------------------------- */

/*
 * Resolved in the constructor, or lazily when another library's constructor
 * calls in first.  dlsym() may itself open files or allocate: the inside flag
 * is set around it, so such calls pass through (the open family falls back
 * to the raw system call while its pointer is not yet known).
 */
void *stk__shim_resolve(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (p)
		return p;
	int was = shim_inside;
	shim_inside = 1;
	p = dlsym(RTLD_NEXT, name);
	shim_inside = was;
	__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	return p;
}

REAL_DECL(int, fstatat, (int, const char *, struct stat *, int));

/* ---- which paths are mapped ------------------------------------------ */

/*
 * Whether (dirfd, path) lies in a mapping: its index with rel filled in, or
 * -1 (also when the caller is the shim itself).  Paths relative to a real
 * directory descriptor are never mapped.
 */
int stk__shim_mapped_at(int dirfd, const char *path, char *rel)
{
	if (shim_inside || !shim_nmaps || !path)
		return -1;
	if (path[0] == '/' || dirfd == AT_FDCWD)
		return shim__match(path, rel, SHIM_PATH_MAX);
	struct dfd *d = stk__shim_dfd_get(dirfd);
	if (!d || d->file || !path[0])
		return -1;
	char abs[SHIM_PATH_MAX * 3];
	const char *pre = shim_maps[d->map].prefix;
	int n = snprintf(abs, sizeof(abs), "%s/%s/%s", pre, d->rel, path);
	if (n < 0 || (size_t)n >= sizeof(abs))
		return -1;
	return shim__match(abs, rel, SHIM_PATH_MAX);
}

/* Whether the path exists on the local filesystem (the real lstat). */
bool stk__shim_local_exists(int dirfd, const char *path)
{
	struct stat st;
	return REAL(fstatat)(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- start-up ----------------------------------------------------------- */

/*
 * Reads the environment and nothing more: no connection, no allocation but
 * what getenv() and pthread_atfork() do.  Runs in every process the
 * variable reaches, including those that never touch a mapped path.
 */
__attribute__((constructor)) static void shim_init(void)
{
	int saved = errno;
	shim_inside = 1;
	shim__config_init();
	shim__catalog_init();
	shim_inside = 0;
	errno = saved;
}

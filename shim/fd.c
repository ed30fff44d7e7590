/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim: the descriptors the shim made.  The registry of placeholder
 * directory descriptors and object memfds (struct dfd), and dup, dup2, dup3,
 * fcntl and fcntl64, whose copies of such a descriptor stand for the same
 * entry.
 */
#include "shim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

REAL_DECL(int, fstat, (int, struct stat *));
REAL_DECL(int, dup, (int));
REAL_DECL(int, dup2, (int, int));
REAL_DECL(int, dup3, (int, int, int));
REAL_DECL(int, fcntl, (int, int, ...));
REAL_DECL(int, fcntl64, (int, int, ...));

/* ---- synthesized directory descriptors ------------------------------- */

struct dfd *stk__shim_dfds[DFD_MAX];
static int ndfds; /* entries set, for the fast path of dup() and fcntl() */
static pthread_mutex_t dfd_mu = PTHREAD_MUTEX_INITIALIZER;

void stk__shim_dfd_set(int fd, struct dfd *d)
{
	pthread_mutex_lock(&dfd_mu);
	struct dfd *old = stk__shim_dfds[fd];
	__atomic_store_n(&stk__shim_dfds[fd], d, __ATOMIC_RELEASE);
	ndfds += (d != NULL) - (old != NULL);
	pthread_mutex_unlock(&dfd_mu);
	free(old);
}

static struct dfd *dfd_new(int map, const char *rel, ino_t ino)
{
	size_t n = strlen(rel);
	struct dfd *d = malloc(sizeof(*d) + n + 1);
	if (d) {
		d->map = map;
		d->file = false;
		d->size = 0;
		d->ino = ino;
		memcpy(d->rel, rel, n + 1);
	}
	return d;
}

/* The entry for fd when it is still the memfd the shim made, else NULL (and the stale entry goes).
 */
struct dfd *stk__shim_dfd_get(int fd)
{
	if ((unsigned)fd >= DFD_MAX || !__atomic_load_n(&stk__shim_dfds[fd], __ATOMIC_ACQUIRE))
		return NULL;
	struct stat st;
	int saved = errno;
	int r = REAL(fstat)(fd, &st);
	errno = saved;
	struct dfd *d = __atomic_load_n(&stk__shim_dfds[fd], __ATOMIC_ACQUIRE);
	if (d && (r < 0 || st.st_ino != d->ino)) {
		stk__shim_dfd_set(fd, NULL);
		return NULL;
	}
	return d;
}

/* A new placeholder descriptor for directory rel of mapping m. Returns it or -1 with errno. */
int stk__shim_dfd_make(int m, const char *rel, bool cloexec)
{
	int fd = memfd_create("stoker-shim:dir", cloexec ? MFD_CLOEXEC : 0);
	if (fd < 0)
		return -1;
	struct stat st;
	struct dfd *d = NULL;
	if (fd >= DFD_MAX || REAL(fstat)(fd, &st) < 0 || !(d = dfd_new(m, rel, st.st_ino))) {
		close(fd);
		errno = fd >= DFD_MAX ? EMFILE : ENOMEM;
		return -1;
	}
	stk__shim_dfd_set(fd, d);
	return fd;
}

/*
 * Remembers an object's memfd so that fstat() of it agrees with stat() of its
 * path (cp and tar compare st_dev and st_ino of the two).  Best effort: a
 * descriptor beyond the table just shows the memfd's own attributes.
 */
void stk__shim_dfd_note_file(int fd, int m, const char *rel, uint64_t size)
{
	struct stat st;
	if ((unsigned)fd >= DFD_MAX || REAL(fstat)(fd, &st) < 0)
		return;
	struct dfd *d = dfd_new(m, rel, st.st_ino);
	if (!d)
		return;
	d->file = true;
	d->size = size;
	stk__shim_dfd_set(fd, d);
}

/* After a dup of a placeholder: the copy stands for the same directory. */
static void dfd_dup(int from, int to)
{
	if (to < 0 || (unsigned)to >= DFD_MAX)
		return;
	struct dfd *d = stk__shim_dfd_get(from);
	if (!d) {
		if (__atomic_load_n(&stk__shim_dfds[to], __ATOMIC_RELAXED))
			stk__shim_dfd_set(to, NULL);
		return;
	}
	struct dfd *c = dfd_new(d->map, d->rel, d->ino);
	if (c) {
		c->file = d->file;
		c->size = d->size;
		stk__shim_dfd_set(to, c);
	}
}

/* ---- duplicated descriptors ---------------------------------------------- */

/* A copy of a placeholder directory descriptor (fts dups the one it descends into). */
static inline void after_dup(int from, int to)
{
	if (to >= 0 && __atomic_load_n(&ndfds, __ATOMIC_RELAXED)) {
		int saved = errno;
		dfd_dup(from, to);
		errno = saved;
	}
}

EXPORT int dup(int fd)
{
	int r = REAL(dup)(fd);
	after_dup(fd, r);
	return r;
}

EXPORT int dup2(int fd, int fd2)
{
	int r = REAL(dup2)(fd, fd2);
	after_dup(fd, r);
	return r;
}

EXPORT int dup3(int fd, int fd2, int flags)
{
	int r = REAL(dup3)(fd, fd2, flags);
	after_dup(fd, r);
	return r;
}

/* The argument is passed on as a pointer-sized word, as glibc's own fcntl() reads it. */
EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r = REAL(fcntl)(fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		after_dup(fd, r);
	return r;
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r = REAL(fcntl64)(fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		after_dup(fd, r);
	return r;
}

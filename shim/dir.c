/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim: directories.  Shim-owned DIR streams over a mapped
 * directory's catalog entries and the registry that tells them from libc's
 * (opendir, fdopendir, readdir, readdir64, closedir, rewinddir, telldir,
 * seekdir, dirfd, scandir, scandir64), and chdir/fchdir, after which relative
 * paths may lie in a mapping.
 */
#include "shim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

REAL_DECL(DIR *, opendir, (const char *));
REAL_DECL(DIR *, fdopendir, (int));
REAL_DECL(struct dirent *, readdir, (DIR *));
REAL_DECL(struct dirent64 *, readdir64, (DIR *));
REAL_DECL(int, closedir, (DIR *));
REAL_DECL(void, rewinddir, (DIR *));
REAL_DECL(int, dirfd, (DIR *));
REAL_DECL(long, telldir, (DIR *));
REAL_DECL(void, seekdir, (DIR *, long));
REAL_DECL(int, scandir,
	  (const char *, struct dirent ***, int (*)(const struct dirent *),
	   int (*)(const struct dirent **, const struct dirent **)));
REAL_DECL(int, scandir64,
	  (const char *, struct dirent64 ***, int (*)(const struct dirent64 *),
	   int (*)(const struct dirent64 **, const struct dirent64 **)));
REAL_DECL(int, chdir, (const char *));
REAL_DECL(int, fchdir, (int));

/* ---- directories ------------------------------------------------------ */

/*
 * A shim-owned directory stream.  It keeps its own copy of the dataset and
 * the sorted keys, which stay allocated for the life of the process (a fork
 * abandons them, never frees them), so a stream opened before a fork reads
 * on in the child.
 */
struct shim_dir {
	int map;
	struct stk_dataset *ds;
	const uint32_t *sorted;
	size_t count;
	int phase;  /* 0: ".", 1: "..", 2: the children from pos */
	size_t pos; /* the next position in sorted */
	int fd;	    /* its descriptor: from fdopendir(), made by dirfd(), or -1 */
	struct dirent64 ent;
	size_t plen;		    /* strlen(prefix) */
	char prefix[SHIM_PATH_MAX]; /* the directory's key prefix: "" or "a/b/" */
};

#define DIRS_MAX 1024
static struct shim_dir *dirs[DIRS_MAX];
static int ndirs; /* atomic; 0 lets readdir() of real streams skip the lock */
static pthread_mutex_t dirs_mu = PTHREAD_MUTEX_INITIALIZER;

static bool is_shim_dir(DIR *d)
{
	if (!d || !__atomic_load_n(&ndirs, __ATOMIC_ACQUIRE))
		return false;
	bool found = false;
	pthread_mutex_lock(&dirs_mu);
	for (int i = 0; i < DIRS_MAX && !found; i++)
		found = dirs[i] == (struct shim_dir *)d;
	pthread_mutex_unlock(&dirs_mu);
	return found;
}

static bool dirs_add(struct shim_dir *d)
{
	bool ok = false;
	pthread_mutex_lock(&dirs_mu);
	for (int i = 0; i < DIRS_MAX && !ok; i++) {
		if (!dirs[i]) {
			dirs[i] = d;
			__atomic_add_fetch(&ndirs, 1, __ATOMIC_RELEASE);
			ok = true;
		}
	}
	pthread_mutex_unlock(&dirs_mu);
	return ok;
}

static void dirs_del(struct shim_dir *d)
{
	pthread_mutex_lock(&dirs_mu);
	for (int i = 0; i < DIRS_MAX; i++) {
		if (dirs[i] == d) {
			dirs[i] = NULL;
			__atomic_sub_fetch(&ndirs, 1, __ATOMIC_RELEASE);
			break;
		}
	}
	pthread_mutex_unlock(&dirs_mu);
}

/* A stream over directory rel of mapping m (known to be one), owning fd when >= 0. */
static DIR *dir_new(int m, const struct shim_cat *cat, const char *rel, int fd)
{
	size_t n = strlen(rel);
	struct shim_dir *d = calloc(1, sizeof(*d));
	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	d->map = m;
	d->ds = cat->ds;
	d->sorted = cat->sorted;
	d->count = cat->count;
	d->fd = fd;
	if (n) {
		memcpy(d->prefix, rel, n);
		d->prefix[n++] = '/';
	}
	d->prefix[n] = 0;
	d->plen = n;
	if (!dirs_add(d)) {
		free(d);
		errno = EMFILE;
		return NULL;
	}
	return (DIR *)d;
}

static struct dirent64 *dir_entry(struct shim_dir *d, const char *name, size_t n,
				  unsigned char type, uint64_t ino)
{
	d->ent.d_ino = ino;
	d->ent.d_off = (off_t)(d->phase < 2 ? d->phase + 1 : (long)d->pos + 2);
	d->ent.d_reclen = sizeof(d->ent);
	d->ent.d_type = type;
	memcpy(d->ent.d_name, name, n);
	d->ent.d_name[n] = 0;
	return &d->ent;
}

/*
 * The next entry: ".", "..", then each immediate child once.  A child
 * directory is skipped past in one binary search for the first key after its
 * subtree, so listing a directory costs O(children x log keys), whatever lies
 * below.
 */
static struct dirent64 *dir_next(struct shim_dir *d)
{
	const char *uri = shim_maps[d->map].uri;
	char buf[SHIM_PATH_MAX + 2];
	if (d->phase == 0) {
		d->phase = 1;
		memcpy(buf, d->prefix, d->plen);
		buf[d->plen ? d->plen - 1 : 0] = 0;
		return dir_entry(d, ".", 1, DT_DIR, shim__hash(uri, buf));
	}
	if (d->phase == 1) {
		d->phase = 2;
		d->pos = shim__lower_bound(d->ds, d->sorted, d->count, d->prefix);
		return dir_entry(d, "..", 2, DT_DIR, shim__hash(uri, ".."));
	}
	while (d->pos < d->count) {
		const char *key = "";
		stk_dataset_object(d->ds, d->sorted[d->pos], &key, NULL);
		if (strncmp(key, d->prefix, d->plen) != 0)
			break;
		const char *name = key + d->plen;
		const char *sl = strchr(name, '/');
		if (!sl) {
			d->pos++;
			size_t n = strlen(name);
			if (n == 0 || n > 255)
				continue;
			return dir_entry(d, name, n, DT_REG, shim__hash(uri, key));
		}
		size_t n = (size_t)(sl - name), kl = d->plen + n;
		memcpy(buf, key, kl);
		buf[kl] = '0'; /* '/' + 1: the first key after the subtree "prefix/name/" */
		buf[kl + 1] = 0;
		d->pos = shim__lower_bound(d->ds, d->sorted, d->count, buf);
		if (n == 0 || n > 255)
			continue;
		buf[kl] = 0;
		return dir_entry(d, name, n, DT_DIR, shim__hash(uri, buf));
	}
	return NULL;
}

/* opendir() of a mapped directory: true when answered (*ret the stream or NULL with errno). */
static __attribute__((noinline)) bool mapped_opendir_slow(int dirfd, const char *path, DIR **ret)
{
	char rel[SHIM_PATH_MAX];
	int m = stk__shim_mapped_at(dirfd, path, rel);
	if (m < 0)
		return false;
	ENTER();
	int err;
	struct shim_cat *cat = shim__dataset(m, &err);
	size_t idx;
	enum shim_kind k = cat ? shim__lookup(cat, rel, &idx) : SHIM_NONE;
	if (k == SHIM_NONE || (k == SHIM_NOTDIR && stk__shim_local_exists(dirfd, path))) {
		LEAVE_PASS();
		return false;
	}
	*ret = NULL;
	if (k != SHIM_DIR) {
		LEAVE_ERR(ENOTDIR);
		return true;
	}
	*ret = dir_new(m, cat, rel, -1);
	if (!*ret) {
		LEAVE_ERR(errno);
		return true;
	}
	LEAVE_OK();
	return true;
}

static inline bool mapped_opendir(int dirfd, const char *path, DIR **ret)
{
	return maybe_at(dirfd, path) && mapped_opendir_slow(dirfd, path, ret);
}

EXPORT DIR *opendir(const char *path)
{
	DIR *d;
	if (mapped_opendir(AT_FDCWD, path, &d))
		return d;
	return REAL(opendir)(path);
}

EXPORT DIR *fdopendir(int fd)
{
	struct dfd *p = shim_inside ? NULL : stk__shim_dfd_get(fd);
	if (!p || p->file)
		return REAL(fdopendir)(fd);
	ENTER();
	int err;
	struct shim_cat *cat = shim__dataset(p->map, &err);
	if (!cat) {
		LEAVE_ERR(EIO);
		return NULL;
	}
	DIR *d = dir_new(p->map, cat, p->rel, fd);
	if (!d) {
		LEAVE_ERR(errno);
		return NULL;
	}
	LEAVE_OK();
	return d;
}

EXPORT struct dirent *readdir(DIR *dirp)
{
	if (!is_shim_dir(dirp))
		return REAL(readdir)(dirp);
	/* struct dirent and struct dirent64 are the same on LP64. */
	int saved = errno;
	shim_inside = 1;
	struct dirent *e = (struct dirent *)dir_next((struct shim_dir *)dirp);
	shim_inside = 0;
	errno = saved;
	return e;
}

EXPORT struct dirent64 *readdir64(DIR *dirp)
{
	if (!is_shim_dir(dirp))
		return REAL(readdir64)(dirp);
	int saved = errno;
	shim_inside = 1;
	struct dirent64 *e = dir_next((struct shim_dir *)dirp);
	shim_inside = 0;
	errno = saved;
	return e;
}

EXPORT int closedir(DIR *dirp)
{
	if (!is_shim_dir(dirp))
		return REAL(closedir)(dirp);
	struct shim_dir *d = (struct shim_dir *)dirp;
	dirs_del(d);
	if (d->fd >= 0) {
		if ((unsigned)d->fd < DFD_MAX)
			stk__shim_dfd_set(d->fd, NULL);
		close(d->fd);
	}
	free(d);
	return 0;
}

EXPORT void rewinddir(DIR *dirp)
{
	if (!is_shim_dir(dirp)) {
		REAL(rewinddir)(dirp);
		return;
	}
	((struct shim_dir *)dirp)->phase = 0;
}

EXPORT long telldir(DIR *dirp)
{
	if (!is_shim_dir(dirp))
		return REAL(telldir)(dirp);
	struct shim_dir *d = (struct shim_dir *)dirp;
	return d->phase < 2 ? d->phase : (long)d->pos + 2;
}

EXPORT void seekdir(DIR *dirp, long loc)
{
	if (!is_shim_dir(dirp)) {
		REAL(seekdir)(dirp, loc);
		return;
	}
	struct shim_dir *d = (struct shim_dir *)dirp;
	d->phase = loc < 2 ? (int)loc : 2;
	if (loc >= 2)
		d->pos = (size_t)(loc - 2);
}

EXPORT int dirfd(DIR *dirp)
{
	if (!is_shim_dir(dirp))
		return REAL(dirfd)(dirp);
	struct shim_dir *d = (struct shim_dir *)dirp;
	if (d->fd < 0) {
		int saved = errno;
		shim_inside = 1;
		char rel[SHIM_PATH_MAX];
		memcpy(rel, d->prefix, d->plen);
		rel[d->plen ? d->plen - 1 : 0] = 0;
		d->fd = stk__shim_dfd_make(d->map, rel, true);
		shim_inside = 0;
		if (d->fd >= 0)
			errno = saved;
	}
	return d->fd;
}

/* scandir() over a shim stream: entries copied with malloc(), as glibc's, for free(). */
static int dir_scan(DIR *dirp, struct dirent64 ***list, int (*sel)(const struct dirent64 *),
		    int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	struct dirent64 **v = NULL, *e;
	size_t n = 0, cap = 0;
	int saved = errno;
	while ((e = readdir64(dirp))) {
		if (sel && !sel(e))
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct dirent64 **nv = realloc(v, nc * sizeof(*nv));
			if (!nv)
				goto nomem;
			v = nv;
			cap = nc;
		}
		if (!(v[n] = malloc(sizeof(*e))))
			goto nomem;
		memcpy(v[n++], e, sizeof(*e));
	}
	if (cmp && n > 1)
		qsort(v, n, sizeof(*v), (int (*)(const void *, const void *))cmp);
	closedir(dirp);
	*list = v;
	errno = saved;
	return (int)n;
nomem:
	while (n)
		free(v[--n]);
	free(v);
	closedir(dirp);
	errno = ENOMEM;
	return -1;
}

EXPORT int scandir(const char *path, struct dirent ***list, int (*sel)(const struct dirent *),
		   int (*cmp)(const struct dirent **, const struct dirent **))
{
	DIR *d;
	if (!mapped_opendir(AT_FDCWD, path, &d))
		return REAL(scandir)(path, list, sel, cmp);
	if (!d)
		return -1;
	return dir_scan(d, (struct dirent64 ***)list, (int (*)(const struct dirent64 *))sel,
			(int (*)(const struct dirent64 **, const struct dirent64 **))cmp);
}

EXPORT int scandir64(const char *path, struct dirent64 ***list, int (*sel)(const struct dirent64 *),
		     int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	DIR *d;
	if (!mapped_opendir(AT_FDCWD, path, &d))
		return REAL(scandir64)(path, list, sel, cmp);
	if (!d)
		return -1;
	return dir_scan(d, list, sel, cmp);
}

/* ---- the cwd ------------------------------------------------------------ */

EXPORT int chdir(const char *path)
{
	int r = REAL(chdir)(path);
	if (r == 0 && shim_nmaps && !shim_inside) {
		int saved = errno;
		shim_inside = 1;
		shim__cwd_changed();
		shim_inside = 0;
		errno = saved;
	}
	return r;
}

EXPORT int fchdir(int fd)
{
	int r = REAL(fchdir)(fd);
	if (r == 0 && shim_nmaps && !shim_inside) {
		int saved = errno;
		shim_inside = 1;
		shim__cwd_changed();
		shim_inside = 0;
		errno = saved;
	}
	return r;
}

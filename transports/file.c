/* SPDX-License-Identifier: MIT */
/*
 * file://: POSIX files on local disks and parallel filesystems (Lustre, GPFS,
 * Weka, NFS mounts).
 *
 * Confinement: the daemon serves only files below its allowed roots.  A path
 * is matched to a root by prefix, then opened with openat2(RESOLVE_BENEATH)
 * relative to the root's directory fd, so neither ".." nor a symlink can
 * leave the root whatever the path says.
 *
 * Reads go through the loop (io_uring), straight into the cache's pages,
 * O_DIRECT where the filesystem takes it, several chunks in flight per object.
 *
 * Emulation (for demos and benchmarks only, off by default): an added latency
 * before each object and a bandwidth cap shared by all reads, to stand in for
 * a slow remote backend.  The daemon logs when it is on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "transports/transport.h"

#define CHUNK		  (1u << 20)
#define CHUNKS_PER_OBJECT 8
#define ALIGN		  4096u
#define MAX_DEPTH	  64

struct root {
	char *path; /* without trailing '/', "" for "/" */
	int fd;
};

static struct {
	struct stk_loop *loop;
	struct root *roots;
	unsigned nroots;
	bool disabled; /* running as root with no --allow-root */
	uint64_t lat_ns;
	uint64_t bw;
	uint64_t bw_next; /* token bucket: when the link is free again */
	bool no_direct;
} F;

struct file_fetch;

struct chunk {
	struct stk_op op;
	struct file_fetch *ff;
	uint64_t off;
	size_t len, pos;
	bool busy;
};

struct file_fetch {
	struct stk_fetch *f;
	struct stk_op open_op;
	const char *rel;
	int rootfd;
	int fd;
	bool direct;
	uint64_t next_off;
	unsigned busy;
	int err;
	char msg[512];
	struct chunk ch[CHUNKS_PER_OBJECT];
};

static int file_init(const struct stk_tp_env *env)
{
	F.loop = env->loop;
	F.lat_ns = (uint64_t)env->emulate_latency_ms * 1000000u;
	F.bw = env->emulate_bandwidth;
	F.no_direct = env->no_direct;
	unsigned n = 0;
	while (env->roots && env->roots[n])
		n++;
	if (n == 0 && geteuid() == 0) {
		F.disabled = true;
		stk_warn(
		    "file://: running as root with no --allow-root: no file:// dataset will be "
		    "served");
		return 0;
	}
	F.roots = calloc(n ? n : 1, sizeof(*F.roots));
	if (!F.roots)
		return -ENOMEM;
	for (unsigned i = 0; i < (n ? n : 1); i++) {
		const char *p = n ? env->roots[i] : "/";
		size_t l = strlen(p);
		while (l > 1 && p[l - 1] == '/')
			l--;
		if (p[0] != '/') {
			stk_err("--allow-root %s: must be an absolute path", p);
			return -EINVAL;
		}
		int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int r = -errno;
			stk_err("--allow-root %s: %s", p, strerror(-r));
			return r;
		}
		F.roots[F.nroots].path = strndup(p, l == 1 ? 0 : l);
		F.roots[F.nroots].fd = fd;
		F.nroots++;
		stk_info("file://: serving files below %s", p);
	}
	if (F.lat_ns || F.bw)
		stk_warn("file://: EMULATING a slow backend: +%u ms per object, %s%llu MB/s cap",
			 env->emulate_latency_ms, F.bw ? "" : "no ",
			 (unsigned long long)(F.bw / 1000000u));
	return 0;
}

static void file_fini(void)
{
	for (unsigned i = 0; i < F.nroots; i++) {
		free(F.roots[i].path);
		close(F.roots[i].fd);
	}
	free(F.roots);
	F.roots = NULL;
	F.nroots = 0;
}

/*
 * Maps a file:// URI to a root's fd and a path relative to it.
 * Returns 0, or -EINVAL / -EACCES with err naming the URI.
 */
static int resolve(const char *uri, int *rootfd, const char **rel, char *err, size_t errlen)
{
	if (strncmp(uri, "file://", 7) || uri[7] != '/') {
		snprintf(err, errlen, "%s: a file URI must be absolute: file:///path", uri);
		return -EINVAL;
	}
	const char *path = uri + 7;
	if (F.disabled) {
		snprintf(err, errlen,
			 "%s: file:// is disabled (stokerd runs as root with no --allow-root)",
			 uri);
		return -EACCES;
	}
	for (unsigned i = 0; i < F.nroots; i++) {
		size_t l = strlen(F.roots[i].path);
		if (strncmp(path, F.roots[i].path, l) || (path[l] && path[l] != '/'))
			continue;
		const char *r = path + l;
		while (*r == '/')
			r++;
		*rel = *r ? r : ".";
		*rootfd = F.roots[i].fd;
		return 0;
	}
	snprintf(err, errlen, "%s: outside the directories stokerd may serve (--allow-root)", uri);
	return -EACCES;
}

static void open_how_init(struct open_how *how, int flags)
{
	memset(how, 0, sizeof(*how));
	how->flags = (uint64_t)(flags | O_CLOEXEC);
	how->resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
}

/* Explains an open failure. EXDEV and ELOOP mean the path tried to leave its root. */
static int open_error(int r, const char *uri, char *err, size_t errlen)
{
	if (r == -EXDEV || r == -ELOOP) {
		snprintf(err, errlen, "%s: path escapes the allowed root", uri);
		return -EACCES;
	}
	snprintf(err, errlen, "%s: %s", uri, strerror(-r));
	return r;
}

/* Opens uri confined, blocking (worker threads only). Returns an fd or -errno with err. */
static int open_confined(const char *uri, int flags, char *err, size_t errlen)
{
	int rootfd;
	const char *rel;
	int r = resolve(uri, &rootfd, &rel, err, errlen);
	if (r)
		return r;
	struct open_how how;
	open_how_init(&how, flags);
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	if (fd < 0)
		return open_error(-errno, uri, err, errlen);
	return (int)fd;
}

struct walk {
	struct stk_catalog *cat;
	const char *base; /* the dataset URI, ending in '/' */
	char key[4096];
	char *err;
	size_t errlen;
};

static int walk_dir(struct walk *w, int dfd, size_t klen, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while (!r && (errno = 0, de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		size_t nl = strlen(n);
		if (klen + nl + 2 > sizeof(w->key)) {
			snprintf(w->err, w->errlen, "%s%s: path too long", w->base, w->key);
			r = -ENAMETOOLONG;
			break;
		}
		memcpy(w->key + klen, n, nl + 1);
		struct stat st;
		if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			snprintf(w->err, w->errlen, "%s%s: %s", w->base, w->key, strerror(-r));
			break;
		}
		if (S_ISREG(st.st_mode)) {
			char uri[8192];
			snprintf(uri, sizeof(uri), "%s%s", w->base, w->key);
			r = stk__catalog_add(w->cat, w->key, klen + nl, uri, (uint64_t)st.st_size);
		} else if (S_ISDIR(st.st_mode)) {
			if (depth >= MAX_DEPTH) {
				snprintf(w->err, w->errlen, "%s%s: deeper than %d levels", w->base,
					 w->key, MAX_DEPTH);
				r = -ELOOP;
				break;
			}
			int sub =
			    openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = -errno;
				snprintf(w->err, w->errlen, "%s%s: %s", w->base, w->key,
					 strerror(-r));
				break;
			}
			w->key[klen + nl] = '/';
			w->key[klen + nl + 1] = 0;
			r = walk_dir(w, sub, klen + nl + 1, depth + 1);
		}
		/* Symlinks and special files are not objects: a link could point anywhere. */
	}
	if (!r && errno) {
		r = -errno;
		snprintf(w->err, w->errlen, "%s: reading directory: %s", w->base, strerror(-r));
	}
	closedir(d);
	return r;
}

static int file_list(const char *uri, struct stk_catalog *cat, char *err, size_t errlen)
{
	int fd = open_confined(uri, O_RDONLY, err, errlen);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		snprintf(err, errlen, "%s: %s", uri, strerror(-r));
		return r;
	}
	if (S_ISREG(st.st_mode)) {
		close(fd);
		const char *slash = strrchr(uri, '/');
		const char *key = slash[1] ? slash + 1 : uri;
		return stk__catalog_add(cat, key, strlen(key), uri, (uint64_t)st.st_size);
	}
	if (!S_ISDIR(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: neither a regular file nor a directory", uri);
		return -EINVAL;
	}
	struct walk *w = calloc(1, sizeof(*w));
	char *base = malloc(strlen(uri) + 2);
	int r = -ENOMEM;
	if (!w || !base) {
		close(fd);
		goto out;
	}
	size_t ul = strlen(uri);
	memcpy(base, uri, ul + 1);
	if (base[ul - 1] != '/') {
		base[ul] = '/';
		base[ul + 1] = 0;
	}
	w->cat = cat;
	w->base = base;
	w->err = err;
	w->errlen = errlen;
	r = walk_dir(w, fd, 0, 0);
	if (r == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory listing", uri);
	if (!r)
		stk__catalog_sort(cat);
out:
	if (r)
		stk__catalog_free(cat);
	free(w);
	free(base);
	return r;
}

static int file_stat(const char *uri, uint64_t *size, char *err, size_t errlen)
{
	int fd = open_confined(uri, O_RDONLY, err, errlen);
	if (fd < 0)
		return fd;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (!r && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", uri);
		return -EINVAL;
	}
	if (r) {
		snprintf(err, errlen, "%s: %s", uri, strerror(-r));
		return r;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int file_read_all(const char *uri, size_t max, char **buf, size_t *len, char *err,
			 size_t errlen)
{
	int fd = open_confined(uri, O_RDONLY, err, errlen);
	if (fd < 0)
		return fd;
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);
	int r = 0;
	for (;;) {
		if (!b) {
			r = -ENOMEM;
			break;
		}
		ssize_t k = read(fd, b + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", uri, strerror(-r));
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > max) {
			snprintf(err, errlen, "%s: larger than %zu bytes", uri, max);
			r = -EFBIG;
			break;
		}
		if (n == cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb)
				free(b);
			b = nb;
		}
	}
	close(fd);
	if (r) {
		free(b);
		return r;
	}
	*buf = b;
	*len = n;
	return 0;
}

static void finish(struct file_fetch *ff)
{
	if (ff->busy)
		return;
	if (ff->fd >= 0)
		close(ff->fd);
	struct stk_fetch *f = ff->f;
	int err = ff->err;
	char msg[512];
	memcpy(msg, ff->msg, sizeof(msg));
	free(ff);
	f->done(f, err, err ? msg : NULL);
}

static void fail(struct file_fetch *ff, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct file_fetch *ff, int err, const char *fmt, ...)
{
	if (!ff->err) {
		ff->err = err;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ff->msg, sizeof(ff->msg), fmt, ap);
		va_end(ap);
	}
}

static void read_cb(struct stk_op *op, int res);
static bool chunk_start(struct chunk *ch);

/* Reads what is left of the chunk; O_DIRECT needs aligned offset and length. */
static void chunk_read(struct chunk *ch)
{
	struct file_fetch *ff = ch->ff;
	uint64_t off = ch->off + ch->pos;
	size_t len = ch->len - ch->pos;
	if (ff->direct) {
		uint64_t a = off & (ALIGN - 1);
		off -= a;
		len = (len + a + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	}
	ch->op.cb = read_cb;
	int r = stk_loop_read(F.loop, &ch->op, ff->fd, (char *)ff->f->buf + off, len, off);
	if (r) {
		fail(ff, r, "%s: cannot queue a read: %s", ff->f->uri, strerror(-r));
		return;
	}
	ch->busy = true;
	ff->busy++;
}

static void next_cb(struct stk_op *op, int res)
{
	struct chunk *ch = (struct chunk *)op;
	struct file_fetch *ff = ch->ff;
	ch->busy = false;
	ff->busy--;
	if (ff->err || !chunk_start(ch))
		finish(ff);
}

static void read_cb(struct stk_op *op, int res)
{
	struct chunk *ch = (struct chunk *)op;
	struct file_fetch *ff = ch->ff;
	ch->busy = false;
	ff->busy--;
	if (res == -EINTR || res == -EAGAIN) {
		chunk_read(ch);
		goto out;
	}
	if (res == -EINVAL && ff->direct) {
		/* The filesystem took O_DIRECT at open but not for this read; go buffered. */
		int fl = fcntl(ff->fd, F_GETFL);
		if (fl >= 0 && fcntl(ff->fd, F_SETFL, fl & ~O_DIRECT) == 0) {
			ff->direct = false;
			chunk_read(ch);
			goto out;
		}
	}
	if (res < 0) {
		fail(ff, res, "%s: read at offset %llu: %s", ff->f->uri,
		     (unsigned long long)(ch->off + ch->pos), strerror(-res));
		goto out;
	}
	uint64_t start = ch->off + ch->pos;
	if (ff->direct)
		start &= ~(uint64_t)(ALIGN - 1);
	uint64_t end = start + (uint64_t)res;
	if (end <= ch->off + ch->pos) {
		fail(ff, -EIO,
		     "%s: file ended at byte %llu, expected %llu bytes (changed since listing?)",
		     ff->f->uri, (unsigned long long)end, (unsigned long long)ff->f->size);
		goto out;
	}
	ch->pos = end - ch->off < ch->len ? (size_t)(end - ch->off) : ch->len;
	if (ch->pos < ch->len) {
		chunk_read(ch); /* a short read */
		goto out;
	}
	if (F.bw && !ff->err) {
		uint64_t now = stk__now_ns();
		uint64_t t = (F.bw_next > now ? F.bw_next : now) + ch->len * 1000000000u / F.bw;
		F.bw_next = t;
		ch->op.cb = next_cb;
		if (stk_loop_timeout(F.loop, &ch->op, t - now) == 0) {
			ch->busy = true;
			ff->busy++;
			return;
		}
	}
	if (!ff->err && chunk_start(ch))
		return;
out:
	finish(ff);
}

/* Starts the next unread chunk on ch. Returns false when nothing is left. */
static bool chunk_start(struct chunk *ch)
{
	struct file_fetch *ff = ch->ff;
	if (ff->next_off >= ff->f->size)
		return false;
	ch->off = ff->next_off;
	ch->len = ff->f->size - ch->off < CHUNK ? (size_t)(ff->f->size - ch->off) : CHUNK;
	ch->pos = 0;
	ff->next_off += ch->len;
	chunk_read(ch);
	return ch->busy;
}

static void open_cb(struct stk_op *op, int res)
{
	struct file_fetch *ff = stk_container_of(op, struct file_fetch, open_op);
	ff->busy--;
	if (res == -EINVAL && ff->direct) {
		ff->direct = false; /* this filesystem refuses O_DIRECT */
		struct open_how how;
		open_how_init(&how, O_RDONLY);
		if (stk_loop_openat2(F.loop, &ff->open_op, ff->rootfd, ff->rel, &how) == 0) {
			ff->busy++;
			return;
		}
	}
	if (res < 0) {
		char e[400];
		int r = open_error(res, ff->f->uri, e, sizeof(e));
		fail(ff, r, "%s", e);
		finish(ff);
		return;
	}
	ff->fd = res;
	struct stat st;
	if (fstat(ff->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fail(ff, -EINVAL, "%s: not a regular file", ff->f->uri);
	} else if ((uint64_t)st.st_size < ff->f->size) {
		fail(ff, -EIO, "%s: is %llu bytes now, %llu when listed", ff->f->uri,
		     (unsigned long long)st.st_size, (unsigned long long)ff->f->size);
	} else {
		for (int i = 0; i < CHUNKS_PER_OBJECT && chunk_start(&ff->ch[i]); i++)
			;
	}
	finish(ff);
}

static void start_open(struct file_fetch *ff)
{
	struct open_how how;
	open_how_init(&how, O_RDONLY | (ff->direct ? O_DIRECT : 0));
	ff->open_op.cb = open_cb;
	int r = stk_loop_openat2(F.loop, &ff->open_op, ff->rootfd, ff->rel, &how);
	if (r) {
		fail(ff, r, "%s: cannot queue open: %s", ff->f->uri, strerror(-r));
		finish(ff);
		return;
	}
	ff->busy++;
}

static void latency_cb(struct stk_op *op, int res)
{
	struct file_fetch *ff = stk_container_of(op, struct file_fetch, open_op);
	ff->busy--;
	start_open(ff);
}

static void deferred_cb(struct stk_op *op, int res)
{
	struct file_fetch *ff = stk_container_of(op, struct file_fetch, open_op);
	ff->busy--;
	finish(ff);
}

static int file_submit(struct stk_fetch *f)
{
	struct file_fetch *ff = calloc(1, sizeof(*ff));
	if (!ff)
		return -ENOMEM;
	ff->f = f;
	ff->fd = -1;
	ff->direct = !F.no_direct;
	for (int i = 0; i < CHUNKS_PER_OBJECT; i++)
		ff->ch[i].ff = ff;
	int r = resolve(f->uri, &ff->rootfd, &ff->rel, ff->msg, sizeof(ff->msg));
	if (r) {
		/* Report through done() from the loop, as for any failure after queueing. */
		ff->err = r;
		ff->open_op.cb = deferred_cb;
		if (stk_loop_timeout(F.loop, &ff->open_op, 0) == 0) {
			ff->busy++;
			return STK_Q_QUEUED;
		}
		free(ff);
		return r;
	}
	if (F.lat_ns) {
		ff->open_op.cb = latency_cb;
		if (stk_loop_timeout(F.loop, &ff->open_op, F.lat_ns) == 0) {
			ff->busy++;
			return STK_Q_QUEUED;
		}
	}
	start_open(ff);
	return STK_Q_QUEUED;
}

const struct stk_transport_ops stk_transport_file = {
	.name = "file",
	.init = file_init,
	.fini = file_fini,
	.list = file_list,
	.stat = file_stat,
	.read_all = file_read_all,
	.submit = file_submit,
};

/* SPDX-License-Identifier: MIT */
/*
 * file://: POSIX files on local disks and parallel filesystems (Lustre, GPFS,
 * Weka, NFS mounts).
 *
 * Confinement: the daemon serves only files below its allowed roots.  A path
 * is matched to a root by prefix, then opened with openat2(RESOLVE_BENEATH)
 * relative to the root's directory fd, so neither ".." nor a symlink can
 * leave the root whatever the path says.  With no root, nothing is served.
 * Whatever the roots, stokerd's own AWS credentials and config files are
 * never served: they are known by device and inode from startup, and every
 * open is checked against them after the fact, so neither a hard link nor a
 * symlink below a root reaches them.
 *
 * Nothing a client names may block a thread: every open is O_NONBLOCK, so a
 * FIFO or a device opens at once (a socket fails at once), and is refused by
 * fstat before a byte is read.  O_NONBLOCK is then cleared, because the
 * io_uring of some kernels honours it on regular files and would answer a
 * buffered read of pages not in memory -EAGAIN.
 *
 * Reads go through the loop (io_uring), straight into the cache's pages,
 * O_DIRECT where the filesystem takes it, several chunks in flight per object.
 *
 * Listing a dataset (the directory walk that builds its catalog) is in
 * file_list.c.
 *
 * Emulation (for demos and benchmarks only, off by default): an added latency
 * before each object and a bandwidth cap shared by all reads, to stand in for
 * a slow remote backend.  The daemon logs when it is on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "transports/aws_creds.h"
#include "transports/file_int.h"
#include "transports/transport.h"

#define CHUNK		  (1u << 20)
#define CHUNKS_PER_OBJECT 8
#define ALIGN		  4096u

struct root {
	char *path; /* without trailing '/', "" for "/" */
	int fd;
};

/* A file never served, by identity. */
struct secret {
	dev_t dev;
	ino_t ino;
};

static struct {
	struct stk_loop *loop;
	struct root *roots;
	unsigned nroots;
	bool disabled; /* no --allow-root */
	struct secret secrets[2];
	unsigned nsecrets;
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
	uint64_t t_start; /* emulation: when its first read was queued */
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

/*
 * Records stokerd's AWS credentials and config files, found as the s3
 * transport finds them.  One that does not exist now is not recorded: a file
 * created later is not protected.
 */
static void find_secrets(void)
{
	static const int which[] = { STK_AWS_CREDENTIALS_FILE, STK_AWS_CONFIG_FILE };
	for (unsigned i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
		char path[PATH_MAX], e[256];
		struct stat st;
		if (stk__aws_creds_file_path(which[i], path, sizeof(path), e, sizeof(e)) ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		F.secrets[F.nsecrets].dev = st.st_dev;
		F.secrets[F.nsecrets].ino = st.st_ino;
		F.nsecrets++;
		stk_dbg("file://: never serving %s", path);
	}
}

bool stk__file_is_secret(const struct stat *st)
{
	for (unsigned i = 0; i < F.nsecrets; i++)
		if (F.secrets[i].dev == st->st_dev && F.secrets[i].ino == st->st_ino)
			return true;
	return false;
}

static int file_init(const struct stk_tp_env *env)
{
	F.loop = env->loop;
	F.lat_ns = (uint64_t)env->emulate_latency_ms * 1000000u;
	F.bw = env->emulate_bandwidth;
	F.no_direct = env->no_direct;
	unsigned n = 0;
	while (env->roots && env->roots[n])
		n++;
	if (n == 0) {
		F.disabled = true;
		stk_warn("file:// is disabled (no --allow-root given)");
		return 0;
	}
	find_secrets();
	F.roots = calloc(n, sizeof(*F.roots));
	if (!F.roots)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		const char *p = env->roots[i];
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
	F.nsecrets = 0;
	F.disabled = false;
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
		snprintf(err, errlen, "%s: file:// is disabled (no --allow-root given)", uri);
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

/* "a FIFO" and so on, for what an open gave that is not a regular file. */
static const char *kind(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "of an unknown type";
}

/*
 * Checks what a confined open gave: a regular file (or, with dir_ok, a
 * directory) that is not one of stokerd's credentials files.  Returns 0, or
 * -EINVAL (the wrong kind of file) or -EACCES with err naming uri.
 */
static int check_opened(const struct stat *st, const char *uri, bool dir_ok, char *err,
			size_t errlen)
{
	if (!S_ISREG(st->st_mode) && !(dir_ok && S_ISDIR(st->st_mode))) {
		snprintf(err, errlen, "%s: is %s, not a regular file%s", uri, kind(st->st_mode),
			 dir_ok ? " or a directory" : "");
		return -EINVAL;
	}
	if (stk__file_is_secret(st)) {
		snprintf(err, errlen, "%s: is stokerd's credentials file, which is never served",
			 uri);
		return -EACCES;
	}
	return 0;
}

/*
 * open() fails on a socket (ENXIO) and on a device without a driver (ENXIO,
 * ENODEV) or on a nodev mount (EACCES) before there is an fd to fstat.  An
 * O_PATH open, which opens nothing, finds what the path is, so the message
 * can say.  Returns -EINVAL with err set when it is neither a regular file nor
 * (with dir_ok) a directory, else r (err untouched).
 */
static int explain_open_error(int r, int rootfd, const char *rel, const char *uri, bool dir_ok,
			      char *err, size_t errlen)
{
	if (r != -ENXIO && r != -ENODEV && r != -EACCES && r != -EPERM && r != -EOPNOTSUPP)
		return r;
	struct open_how how;
	open_how_init(&how, O_PATH);
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	if (fd < 0)
		return r;
	struct stat st;
	int bad =
	    fstat((int)fd, &st) == 0 && !S_ISREG(st.st_mode) && !(dir_ok && S_ISDIR(st.st_mode));
	close((int)fd);
	return bad ? check_opened(&st, uri, dir_ok, err, errlen) : r;
}

/* Clears O_NONBLOCK on a regular file.  0 or -errno with err. */
static int set_blocking(int fd, const char *uri, char *err, size_t errlen)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s", uri, strerror(-r));
		return r;
	}
	return 0;
}

/*
 * Opens uri confined and read-only, on a worker thread (it may block on the
 * filesystem, never on a FIFO or a device), and checks it with
 * check_opened().  Returns an fd, blocking again for a regular file, with *st
 * filled in; or -errno with err naming uri.
 */
int stk__file_open_confined(const char *uri, bool dir_ok, struct stat *st, char *err, size_t errlen)
{
	int rootfd;
	const char *rel;
	int r = resolve(uri, &rootfd, &rel, err, errlen);
	if (r)
		return r;
	struct open_how how;
	open_how_init(&how, OPEN_FLAGS);
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	if (fd < 0) {
		r = explain_open_error(-errno, rootfd, rel, uri, dir_ok, err, errlen);
		return r == -EINVAL ? r : open_error(r, uri, err, errlen);
	}
	if (fstat((int)fd, st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", uri, strerror(-r));
	} else {
		r = check_opened(st, uri, dir_ok, err, errlen);
	}
	if (!r && S_ISREG(st->st_mode))
		r = set_blocking((int)fd, uri, err, errlen);
	if (r) {
		close((int)fd);
		return r;
	}
	return (int)fd;
}

/*
 * The version of a file's bytes, for noticing a rewrite: inode, size and
 * modification time.  Writes it into buf (len bytes, 80 is enough).
 */
void stk__file_version(const struct stat *st, char *buf, size_t len)
{
	snprintf(buf, len, "%llx-%llx-%llx.%09ld", (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size, (unsigned long long)st->st_mtim.tv_sec,
		 (long)st->st_mtim.tv_nsec);
}

static int file_stat(const char *uri, uint64_t *size, char *err, size_t errlen)
{
	struct stat st;
	int fd = stk__file_open_confined(uri, false, &st, err, errlen);
	if (fd < 0)
		return fd;
	close(fd);
	*size = (uint64_t)st.st_size;
	return 0;
}

static long file_read_head(const char *uri, void *buf, size_t len, char *err, size_t errlen)
{
	struct stat st;
	int fd = stk__file_open_confined(uri, false, &st, err, errlen);
	if (fd < 0)
		return fd;
	ssize_t k;
	do
		k = pread(fd, buf, len, 0);
	while (k < 0 && errno == EINTR);
	int r = k < 0 ? -errno : 0;
	close(fd);
	if (r)
		snprintf(err, errlen, "%s: reading: %s", uri, strerror(-r));
	return r ? r : (long)k;
}

static int file_read_all(const char *uri, size_t max, char **buf, size_t *len, char *err,
			 size_t errlen)
{
	struct stat st;
	int fd = stk__file_open_confined(uri, false, &st, err, errlen);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size > max) {
		close(fd);
		char mib[32] = "";
		if (max && max % (1u << 20) == 0)
			snprintf(mib, sizeof(mib), " (%zu MiB)", max >> 20);
		snprintf(err, errlen, "%s: is %llu bytes, over the limit of %zu bytes%s", uri,
			 (unsigned long long)st.st_size, max, mib);
		return -EFBIG;
	}
	/* Room for all of it and one byte more, to see it end (or grow) in one read. */
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *b = malloc(cap);
	int r = 0;
	for (;;) {
		if (!b) {
			r = -ENOMEM;
			snprintf(err, errlen, "%s: out of memory reading", uri);
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
			snprintf(err, errlen, "%s: grew past the limit of %zu bytes while read",
				 uri, max);
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
		/*
		 * The cap as the direct reader pays it: the chunk's bytes are due
		 * len/bw after it began (or after the bytes before it), and the
		 * read's own time counts toward that, rather than on top.
		 */
		uint64_t now = stk__now_ns();
		uint64_t t = (F.bw_next > ch->t_start ? F.bw_next : ch->t_start) +
			     ch->len * 1000000000u / F.bw;
		F.bw_next = t;
		ch->op.cb = next_cb;
		if (stk_loop_timeout(F.loop, &ch->op, t > now ? t - now : 0) == 0) {
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
	if (F.bw)
		ch->t_start = stk__now_ns();
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
		open_how_init(&how, OPEN_FLAGS);
		if (stk_loop_openat2(F.loop, &ff->open_op, ff->rootfd, ff->rel, &how) == 0) {
			ff->busy++;
			return;
		}
	}
	char e[400];
	if (res < 0) {
		int r =
		    explain_open_error(res, ff->rootfd, ff->rel, ff->f->uri, false, e, sizeof(e));
		if (r != -EINVAL)
			r = open_error(r, ff->f->uri, e, sizeof(e));
		fail(ff, r, "%s", e);
		finish(ff);
		return;
	}
	ff->fd = res;
	struct stat st;
	int r = fstat(ff->fd, &st) < 0 ? -errno : 0;
	if (r)
		snprintf(e, sizeof(e), "%s: %s", ff->f->uri, strerror(-r));
	else
		r = check_opened(&st, ff->f->uri, false, e, sizeof(e));
	if (!r && (uint64_t)st.st_size != ff->f->size) {
		snprintf(e, sizeof(e),
			 "%s: is %llu bytes, listed as %llu (changed since listing, or a wrong "
			 "size in the manifest)",
			 ff->f->uri, (unsigned long long)st.st_size,
			 (unsigned long long)ff->f->size);
		r = -EIO;
	}
	if (!r)
		r = set_blocking(ff->fd, ff->f->uri, e, sizeof(e));
	if (r) {
		fail(ff, r, "%s", e);
	} else {
		stk__file_version(&st, ff->f->etag, sizeof(ff->f->etag));
		/*
		 * Bytes flow from here: a read's time is transfer, as a socket's
		 * bytes after the first are.  The loop's thread: no other writer.
		 */
		ff->f->first_byte_ns = stk__now_ns();
		for (int i = 0; i < CHUNKS_PER_OBJECT && chunk_start(&ff->ch[i]); i++)
			;
	}
	finish(ff);
}

static void start_open(struct file_fetch *ff)
{
	struct open_how how;
	open_how_init(&how, OPEN_FLAGS | (ff->direct ? O_DIRECT : 0));
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
	/*
	 * O_DIRECT reads whole aligned blocks: only into an aligned buffer with
	 * room for the size rounded up (a slab slot of the arena has neither).
	 */
	ff->direct = !F.no_direct && !((uintptr_t)f->buf & (ALIGN - 1)) &&
		     f->cap >= ((f->size + ALIGN - 1) & ~(uint64_t)(ALIGN - 1));
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
	.list = stk__file_list,
	.stat = file_stat,
	.read_all = file_read_all,
	.read_head = file_read_head,
	.submit = file_submit,
};

/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim: the lazy connection to stokerd, one dataset per mapping
 * with its keys in sorted order (for directories), and what a fork does to
 * them.
 *
 * Fork: a child must not use its parent's connection (stoker.h, Fork).  The
 * shim remembers which process connected; in any other process (a pid check
 * on every mapped access, and a pthread_atfork() child handler for children
 * that skip neither) it closes its copy of the parent's socket, abandons the
 * parent's client and datasets without calling into them (their locks may
 * have been held by a thread that does not exist in the child) and connects
 * anew on the child's next mapped access.  Nothing happens in vfork(),
 * posix_spawn() or exec: the socket is close-on-exec.
 */
#include "shim_int.h"
#include "client/client_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t shim_mu = PTHREAD_MUTEX_INITIALIZER;
static struct stk_client *client; /* under shim_mu */
static pid_t owner_pid;		  /* the process client and every map's ds belong to */
static int client_err;		  /* the last connect's -errno */
static uint64_t client_retry_ns;  /* no new connect before this after a failure */
static bool logged[LOG_N];

#define RETRY_NS 1000000000ull /* a failed connect or open is retried after 1 s */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void shim__log_once(int kind, const char *fmt, ...)
{
	if (__atomic_exchange_n(&logged[kind], true, __ATOMIC_RELAXED))
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "stoker-shim: %s\n", buf);
}

/* FNV-1a over s then t: stable inode numbers for synthesized entries. */
uint64_t shim__hash(const char *s, const char *t)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (; *t; t++)
		h = (h ^ (uint8_t)*t) * 1099511628211ull;
	return h ? h : 1;
}

/*
 * Forgets the parent's client and datasets in a child.  Closes only the
 * child's copy of the socket; everything else is abandoned, not freed through
 * libstoker.
 */
static void drop_inherited(void)
{
	/* The parent's datasets stay allocated (copy-on-write, shared with the parent). */
	if (client && client->fd >= 0)
		close(client->fd);
	client = NULL;
	client_err = 0;
	client_retry_ns = 0;
	for (int i = 0; i < shim_nmaps; i++) {
		struct shim_map *m = &shim_maps[i];
		__atomic_store_n(&m->cat, NULL, __ATOMIC_RELEASE);
		m->err = 0;
		m->retry_ns = 0;
	}
	for (int k = 0; k < LOG_N; k++)
		logged[k] = false;
	owner_pid = getpid();
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&shim_mu);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&shim_mu);
}

static void atfork_child(void)
{
	int saved = errno;
	int was = shim_inside;
	shim_inside = 1;
	pthread_mutex_unlock(&shim_mu);
	if (owner_pid)
		drop_inherited();
	shim_inside = was;
	errno = saved;
}

void shim__catalog_init(void)
{
	if (shim_nmaps)
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static const char *key_of(const struct stk_dataset *ds, size_t i)
{
	const char *k = "";
	stk_dataset_object(ds, i, &k, NULL);
	return k;
}

static int cmp_idx(const void *a, const void *b, void *arg)
{
	return strcmp(key_of(arg, *(const uint32_t *)a), key_of(arg, *(const uint32_t *)b));
}

/* The catalog of ds: the object indices in strcmp order of their keys (one pass when sorted). */
static struct shim_cat *cat_new(struct stk_dataset *ds)
{
	size_t n = stk_dataset_count(ds);
	struct shim_cat *c = malloc(sizeof(*c));
	uint32_t *s = malloc((n ? n : 1) * sizeof(*s));
	if (!c || !s) {
		free(c);
		free(s);
		return NULL;
	}
	bool sorted = true;
	for (size_t i = 0; i < n; i++) {
		s[i] = (uint32_t)i;
		if (i && sorted && strcmp(key_of(ds, i - 1), key_of(ds, i)) > 0)
			sorted = false;
	}
	if (!sorted)
		qsort_r(s, n, sizeof(*s), cmp_idx, ds);
	c->ds = ds;
	c->sorted = s;
	c->count = n;
	return c;
}

/* STOKER_SHIM_PLAN: the file's lines under mapping mi, as indices, become its plan. */
static bool plan_from_file(int mi, struct stk_dataset *ds)
{
	const char *file = getenv("STOKER_SHIM_PLAN");
	if (!file || !*file)
		return false;
	FILE *f = fopen(file, "re");
	if (!f) {
		shim__log_once(LOG_PLAN, "cannot read STOKER_SHIM_PLAN=%s: %s", file,
			       strerror(errno));
		return false;
	}
	uint32_t *order = NULL;
	size_t n = 0, cap = 0;
	char line[SHIM_PATH_MAX], rel[SHIM_PATH_MAX];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		size_t idx;
		if (shim__match(line, rel, sizeof(rel)) != mi || stk_dataset_find(ds, rel, &idx))
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 1024;
			uint32_t *o = realloc(order, nc * sizeof(*o));
			if (!o)
				break;
			order = o;
			cap = nc;
		}
		order[n++] = (uint32_t)idx;
	}
	fclose(f);
	bool done = false;
	if (n) {
		int r = stk_plan(ds, order, n);
		if (r)
			shim__log_once(LOG_PLAN, "stk_plan for %s failed: %s", shim_maps[mi].uri,
				       stk_errmsg());
		done = r == 0;
	}
	free(order);
	return done;
}

struct shim_cat *shim__dataset(int mi, int *err)
{
	struct shim_map *m = &shim_maps[mi];
	pid_t pid = getpid();
	struct shim_cat *cat = __atomic_load_n(&m->cat, __ATOMIC_ACQUIRE);
	if (cat && pid == __atomic_load_n(&owner_pid, __ATOMIC_RELAXED))
		return cat;
	struct stk_dataset *ds = NULL;

	pthread_mutex_lock(&shim_mu);
	if (owner_pid != pid) {
		if (owner_pid)
			drop_inherited();
		owner_pid = pid;
	}
	cat = m->cat;
	if (cat)
		goto out;
	uint64_t now = now_ns();
	if (!client) {
		if (client_err && now < client_retry_ns) {
			*err = client_err;
			goto out;
		}
		int r = stk_connect(NULL, &client);
		if (r) {
			client = NULL;
			client_err = r;
			client_retry_ns = now + RETRY_NS;
			shim__log_once(LOG_UNREACHABLE, "cannot reach stokerd (%s): %s",
				       stk_strerror(r), stk_errmsg());
			*err = r;
			goto out;
		}
		client_err = 0;
	}
	if (m->err && now < m->retry_ns) {
		*err = m->err;
		goto out;
	}
	int r = stk_dataset_open(client, m->uri, 0, &ds);
	if (!r && !(cat = cat_new(ds))) {
		stk_dataset_close(ds);
		r = -ENOMEM;
	}
	if (r) {
		m->err = r;
		m->retry_ns = now + RETRY_NS;
		shim__log_once(LOG_UNREACHABLE, "cannot open %s: %s", m->uri, stk_errmsg());
		*err = r;
		goto out;
	}
	m->err = 0;
	if (!plan_from_file(mi, ds))
		stk_warm(ds);
	__atomic_store_n(&m->cat, cat, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&shim_mu);
	return cat;
}

static bool has_prefix(const char *s, const char *p, size_t pl)
{
	return strncmp(s, p, pl) == 0;
}

size_t shim__lower_bound(const struct stk_dataset *ds, const uint32_t *sorted, size_t count,
			 const char *key)
{
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(key_of(ds, sorted[mid]), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

enum shim_kind shim__lookup(const struct shim_cat *cat, const char *rel, size_t *index)
{
	struct stk_dataset *ds = cat->ds;
	if (!rel[0])
		return SHIM_DIR;
	if (stk_dataset_find(ds, rel, index) == 0)
		return SHIM_FILE;
	char buf[SHIM_PATH_MAX + 1];
	size_t n = strlen(rel);
	if (n + 2 > sizeof(buf))
		return SHIM_NONE;
	memcpy(buf, rel, n);
	buf[n] = '/';
	buf[n + 1] = 0;
	size_t pos = shim__lower_bound(ds, cat->sorted, cat->count, buf);
	if (pos < cat->count && has_prefix(key_of(ds, cat->sorted[pos]), buf, n + 1))
		return SHIM_DIR;
	/* A path through an object is ENOTDIR, as on a filesystem. */
	for (size_t i = 1; i < n; i++) {
		size_t idx;
		if (rel[i] != '/')
			continue;
		buf[i] = 0;
		if (stk_dataset_find(ds, buf, &idx) == 0)
			return SHIM_NOTDIR;
		buf[i] = '/';
	}
	return SHIM_NONE;
}

void shim__fill_stat(int mi, const char *rel, enum shim_kind k, uint64_t size, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = 0x73746b; /* "stk": one made-up device for every mapping */
	st->st_ino = (ino_t)shim__hash(shim_maps[mi].uri, rel);
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 4096;
	if (k == SHIM_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_size = 4096;
		st->st_blocks = 8;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blocks = (blkcnt_t)((size + 511) / 512);
	}
}

void shim__failed(int err)
{
	if (err != -EPIPE && err != -ETIMEDOUT && err != -ECONNRESET && err != -ENOTCONN)
		return;
	/*
	 * Other threads may still be inside calls on the old client, so it and
	 * its datasets are abandoned, not closed: a dead daemon costs one
	 * descriptor and the catalogs' memory.
	 */
	pthread_mutex_lock(&shim_mu);
	client = NULL;
	client_err = err;
	client_retry_ns = now_ns() + RETRY_NS;
	for (int i = 0; i < shim_nmaps; i++)
		__atomic_store_n(&shim_maps[i].cat, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&shim_mu);
}

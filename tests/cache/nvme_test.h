/* SPDX-License-Identifier: MIT */
/*
 * What the tests of cache/nvme*.c share: a loop, a scratch directory, the
 * store under test, synchronous wrappers of its puts and gets, object bytes
 * derived from the URI (so any process can check them), and the disk usage
 * of the directory as du counts it.
 */
#ifndef STOKER_TEST_NVME_H
#define STOKER_TEST_NVME_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/nvme.h"
#include "cache/nvme_internal.h"
#include "common/loop.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)

static struct stk_loop *L;
static struct stk_nvme *S;
static char D[192];   /* the store's directory */
static char MNT[128]; /* a mount made for the test, or "" */

struct sync_op {
	struct stk_nvme_op op;
	int64_t res;
	bool done;
};

static void sync_cb(struct stk_nvme_op *op, int64_t res)
{
	struct sync_op *t = stk_container_of(op, struct sync_op, op);
	t->res = res;
	t->done = true;
}

static inline void run_until(const bool *done)
{
	while (!*done)
		cr_assert_eq(stk_loop_run_once(L), 0);
}

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* The bytes of object uri: a stream seeded by its name. */
static inline void fill(void *buf, uint64_t len, const char *uri)
{
	uint64_t seed = 1469598103934665603ull;
	for (const char *p = uri; *p; p++)
		seed = (seed ^ (unsigned char)*p) * 1099511628211ull;
	unsigned char *b = buf;
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t v = mix64(seed + i);
		memcpy(b + i, &v, len - i < 8 ? len - i : 8);
	}
}

static inline struct stk_nvme_id ident(const char *uri, uint64_t size, const char *ver)
{
	return (struct stk_nvme_id){ .uri = uri, .size = size, .version = ver, .domain = 0 };
}

/* Runs the loop until the room of dropped objects is given back. */
static inline void settle(void)
{
	while (S->nfreeing)
		cr_assert_eq(stk_loop_run_once(L), 0);
}

/* Puts uri's bytes; returns the submit's error or the callback's result. */
static inline int64_t put_obj(const char *uri, uint64_t size, const char *ver)
{
	void *b = malloc(size ? size : 1);
	cr_assert(b);
	fill(b, size, uri);
	struct sync_op t = { 0 };
	struct stk_nvme_id id = ident(uri, size, ver);
	int r = stk__nvme_put(S, &id, b, size, 0, &t.op, sync_cb);
	if (r == -EAGAIN) { /* room comes back once the drops' punches are done */
		settle();
		r = stk__nvme_put(S, &id, b, size, 0, &t.op, sync_cb);
	}
	if (r == 0)
		run_until(&t.done);
	free(b);
	return r ? r : t.res;
}

/* Gets e and compares it with uri's bytes; returns the callback's result. */
static inline int64_t get_check(struct stk_nvme_ent *e)
{
	uint64_t n = e->stored_len;
	/* Block-aligned, as RAM rooms are: a large object is read straight into it. */
	char *want = malloc(n + 1), *got = NULL;
	cr_assert(want && !posix_memalign((void **)&got, STK_NVME_BLOCK, n + 1));
	fill(want, n, e->uri);
	char *uri = strdup(e->uri); /* e goes if the get finds it corrupt */
	struct sync_op t = { 0 };
	int r = stk__nvme_get(S, e, got, &t.op, sync_cb);
	cr_assert_eq(r, 0, "get %s: %s", uri, strerror(-r));
	run_until(&t.done);
	if (t.res >= 0) {
		cr_assert_eq(t.res, (int64_t)n);
		cr_assert(!memcmp(want, got, n), "%s: bytes differ", uri);
	}
	free(uri);
	free(want);
	free(got);
	return t.res;
}

static inline struct stk_nvme_ent *find(const char *uri, uint64_t size, const char *ver)
{
	struct stk_nvme_id id = ident(uri, size, ver);
	return stk__nvme_lookup(S, &id);
}

static inline int store_open_flags(uint64_t budget, uint64_t small_max, unsigned flags)
{
	struct stk_nvme_opts o = {
		.opts_size = sizeof(o),
		.dir = D,
		.budget = budget,
		.flags = flags,
		.small_max = small_max,
		.pack_size = 1 * MiB,
	};
	char err[256] = "";
	int r = stk__nvme_open(L, &o, &S, err, sizeof(err));
	if (r)
		cr_log_warn("stk__nvme_open: %s", err);
	return r;
}

static inline void store_open(uint64_t budget, uint64_t small_max)
{
	int r = store_open_flags(budget, small_max, 0);
	cr_assert_eq(r, 0, "open: %s", strerror(-r));
}

static inline void store_close(void)
{
	stk__nvme_close(S);
	S = NULL;
}

static inline struct stk_nvme_stats stats(void)
{
	settle();
	struct stk_nvme_stats st;
	stk__nvme_stats(S, &st);
	return st;
}

/* Bytes the directory takes on disk, as `du` counts them: allocated blocks. */
static inline uint64_t du(void)
{
	settle();
	struct stat st;
	cr_assert_eq(stat(D, &st), 0);
	uint64_t sum = (uint64_t)st.st_blocks * 512;
	DIR *d = opendir(D);
	cr_assert(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		cr_assert_eq(fstatat(dirfd(d), de->d_name, &st, 0), 0);
		sum += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return sum;
}

/* The store's directory: under base (a disk that takes O_DIRECT by default). */
static inline void setup_in(const char *base)
{
	cr_assert_eq(stk_loop_create(true, 2, &L), 0);
	snprintf(D, sizeof(D), "%s/stk-nvme-XXXXXX", base);
	cr_assert(mkdtemp(D), "mkdtemp %s: %s", D, strerror(errno));
}

static inline void setup(void)
{
	MNT[0] = 0;
	setup_in("/tmp");
}

/* Mounts a filesystem of type (tmpfs, ramfs) with opts for the test, or skips it. */
static inline void setup_mount(const char *type, const char *opts)
{
	snprintf(MNT, sizeof(MNT), "/tmp/stk-mnt-XXXXXX");
	cr_assert(mkdtemp(MNT));
	if (mount(type, MNT, type, 0, opts) < 0) {
		int e = errno;
		rmdir(MNT);
		MNT[0] = 0;
		cr_skip_test("cannot mount %s here (%s): needs root", type, strerror(e));
	}
	setup_in(MNT);
}

static inline void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(dir);
}

static inline void teardown(void)
{
	store_close();
	stk_loop_destroy(L);
	L = NULL;
	rm_dir(D);
	if (MNT[0]) {
		umount2(MNT, MNT_DETACH);
		rmdir(MNT);
	}
}

/* A file of the directory whose name starts with prefix, or "" when none. */
static inline void file_with(const char *prefix, char *out, size_t len)
{
	out[0] = 0;
	DIR *d = opendir(D);
	cr_assert(d);
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			snprintf(out, len, "%s/%s", D, de->d_name);
	closedir(d);
}

#endif

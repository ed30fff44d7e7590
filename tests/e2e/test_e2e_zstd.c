/* SPDX-License-Identifier: MIT */
/*
 * Datasets of .zst objects opened with STK_DS_ZSTD (issue 12): the real
 * stokerd serves the plain bytes and sizes under keys without ".zst", a
 * corrupt or mis-sized object fails with -EIO naming its URI while the
 * others are served, the same files opened without the flag give the
 * compressed bytes (another object in the cache), manifests give plain
 * sizes, and listings refuse what they cannot size.  The .zst files are made
 * here with libzstd, not with the code under test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "harness.h"

#ifndef STOKER_CLI_PATH
#error "build with -DSTOKER_CLI_PATH=\"path/to/stoker\""
#endif

/* One object of the test dataset: its plain bytes and its file. */
struct zobj {
	const char *name; /* key, without ".zst" */
	uint64_t size;
	bool random; /* incompressible */
	unsigned char *plain;
	uint64_t zsize; /* of the .zst file */
	uint64_t zhash; /* of the .zst file's bytes */
};

static struct zobj objs[] = {
	{ .name = "a/empty.bin", .size = 0, .random = false },
	{ .name = "a/one.bin", .size = 1, .random = true },
	{ .name = "b/page.npy", .size = 4096, .random = false },
	/* Stored after b/page.npy.zst, listed before b/page.npy: the listing is sorted by key. */
	{ .name = "b/page", .size = 77, .random = false },
	{ .name = "b/small.txt", .size = 100, .random = false },
	{ .name = "c/110k.npy", .size = 110 * 1024, .random = false },
	{ .name = "c/110k-random.bin", .size = 110 * 1024, .random = true },
	{ .name = "d/1m.npy", .size = E2E_MIB + 3, .random = false },
	{ .name = "d/3m-random.bin", .size = 3 * E2E_MIB, .random = true },
	{ .name = "e/5m.txt", .size = 5 * E2E_MIB + 1, .random = false },
};
#define NOBJ (sizeof(objs) / sizeof(objs[0]))

static void gen(unsigned char *p, uint64_t n, uint64_t seed, bool random)
{
	struct e2e_rng r = { seed };
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = e2e_rand(&r);
		/* Compressible: a few letters with long repeats. */
		p[i] = random ? (unsigned char)x
			      : (unsigned char)("stoker  \n"[x % 9] + (i / 4096) % 3);
	}
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	cr_assert_eq(e2x_mkdirs(dir), 0, "mkdir %s", dir);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(p, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
}

/* Writes p as a one-frame .zst file at path (content size declared); returns its size. */
static uint64_t write_zst(const char *path, const void *p, size_t n, int level, uint64_t *hash)
{
	size_t cap = ZSTD_compressBound(n);
	void *z = malloc(cap);
	size_t zl = ZSTD_compress(z, cap, p, n, level);
	cr_assert(!ZSTD_isError(zl), "%s", ZSTD_getErrorName(zl));
	write_bytes(path, z, zl);
	if (hash)
		*hash = e2e_hash(z, zl);
	free(z);
	return zl;
}

static char dsdir[300], dsuri[320];

/* The dataset: every object as NAME.zst, plus plain.txt stored as it is. */
static void make(void)
{
	snprintf(dsdir, sizeof(dsdir), "%s/zds", e2e_d.root);
	snprintf(dsuri, sizeof(dsuri), "file://%s/", dsdir);
	for (size_t i = 0; i < NOBJ; i++) {
		struct zobj *o = &objs[i];
		o->plain = malloc(o->size ? o->size : 1);
		gen(o->plain, o->size, 100 + i, o->random);
		char path[512];
		snprintf(path, sizeof(path), "%s/%s.zst", dsdir, o->name);
		o->zsize = write_zst(path, o->plain, o->size, (int)(i % 4) * 3 + 1, &o->zhash);
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/plain.txt", dsdir);
	write_bytes(path, "not compressed\n", 15);
}

static void unmake(void)
{
	for (size_t i = 0; i < NOBJ; i++) {
		free(objs[i].plain);
		objs[i].plain = NULL;
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct zobj *)a)->name, ((const struct zobj *)b)->name);
}

static struct stk_dataset *open_ok(struct stk_client *c, const char *uri, unsigned flags)
{
	struct stk_dataset *ds;
	int r = stk_dataset_open(c, uri, flags, &ds);
	cr_assert_eq(r, 0, "open %s: %s", uri, stk_errmsg());
	return ds;
}

static void open_fails(struct stk_client *c, const char *uri, unsigned flags, int err,
		       const char *want1, const char *want2)
{
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(c, uri, flags, &ds);
	cr_assert_eq(r, err, "open %s gave %d (%s), not %d", uri, r, stk_errmsg(), err);
	cr_assert(strstr(stk_errmsg(), want1), "'%s' does not say '%s'", stk_errmsg(), want1);
	cr_assert(!want2 || strstr(stk_errmsg(), want2), "'%s' does not say '%s'", stk_errmsg(),
		  want2);
}

/* Gets index and checks it is exactly n bytes hashing to h. */
static void get_is(struct stk_dataset *ds, size_t index, uint64_t n, uint64_t h, const char *what)
{
	struct stk_view v;
	int r = stk_get(ds, index, &v);
	cr_assert_eq(r, 0, "get %s: %s", what, stk_errmsg());
	cr_assert_eq(v.size, n, "%s: %llu bytes, not %llu", what, (unsigned long long)v.size,
		     (unsigned long long)n);
	cr_assert_eq(e2e_hash(v.data, (size_t)v.size), h, "%s: wrong bytes", what);
	stk_release(&v);
}

/* The dataset opened with STK_DS_ZSTD: plain keys, sizes and bytes, in key order. */
static void check_plain(struct stk_dataset *ds, bool through_fd)
{
	struct zobj sorted[NOBJ];
	memcpy(sorted, objs, sizeof(sorted));
	qsort(sorted, NOBJ, sizeof(*sorted), by_name);
	cr_assert_eq(stk_dataset_count(ds), NOBJ + 1);
	uint64_t bytes = 15;
	for (size_t i = 0, j = 0; i < NOBJ + 1; i++) {
		const char *key;
		uint64_t size;
		cr_assert_eq(stk_dataset_object(ds, i, &key, &size), 0);
		if (!strcmp(key, "plain.txt")) {
			cr_assert_eq(size, 15);
			get_is(ds, i, 15, e2e_hash("not compressed\n", 15), key);
			continue;
		}
		const struct zobj *o = &sorted[j++];
		cr_assert_str_eq(key, o->name, "object %zu", i);
		cr_assert_eq(size, o->size, "%s: listed as %llu bytes, not %llu", key,
			     (unsigned long long)size, (unsigned long long)o->size);
		bytes += o->size;
		if (!through_fd) {
			get_is(ds, i, o->size, e2e_hash(o->plain, o->size), key);
			continue;
		}
		struct e2e_obj want = { .size = o->size, .hash = e2e_hash(o->plain, o->size) };
		snprintf(want.key, sizeof(want.key), "%s", o->name);
		cr_assert_eq(e2x_get_fd_check(ds, i, &want), 0, "%s through an fd", key);
	}
	cr_assert_eq(stk_dataset_bytes(ds), bytes);
}

Test(e2e_zstd, served_decompressed_and_compressed_apart, .init = e2e_init, .fini = e2e_fini,
     .timeout = 120)
{
	make();
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *z = open_ok(c, dsuri, STK_DS_ZSTD);
	check_plain(z, false);
	/* The same files without the flag, both open at once: the compressed bytes. */
	struct stk_dataset *raw = open_ok(c, dsuri, 0);
	cr_assert_eq(stk_dataset_count(raw), NOBJ + 1);
	for (size_t i = 0; i < NOBJ; i++) {
		char key[128];
		size_t idx;
		snprintf(key, sizeof(key), "%s.zst", objs[i].name);
		cr_assert_eq(stk_dataset_find(raw, key, &idx), 0, "%s not listed", key);
		get_is(raw, idx, objs[i].zsize, objs[i].zhash, key);
		cr_assert_eq(stk_dataset_find(raw, objs[i].name, &idx), -ENOENT);
	}
	/* Resident now under both identities: each still its own bytes, and as an fd. */
	check_plain(z, true);
	/* A one-object dataset of a .zst file. */
	char one[600];
	snprintf(one, sizeof(one), "%s%s.zst", dsuri, objs[7].name);
	struct stk_dataset *o1 = open_ok(c, one, STK_DS_ZSTD);
	const char *key;
	cr_assert_eq(stk_dataset_object(o1, 0, &key, NULL), 0);
	cr_assert_str_eq(key, "1m.npy");
	get_is(o1, 0, objs[7].size, e2e_hash(objs[7].plain, objs[7].size), key);
	stk_dataset_close(o1);
	stk_dataset_close(raw);
	stk_dataset_close(z);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	unmake();
}

/*
 * A .zst file exactly as long as its plain content (a skippable frame pads
 * it): opened with and without STK_DS_ZSTD it has one URI and one size, and
 * must still be two objects with their own bytes.
 */
Test(e2e_zstd, same_uri_and_size_two_objects, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	size_t n = 65536;
	unsigned char *p = malloc(n), *f = malloc(n);
	gen(p, n, 9, false);
	size_t zl = ZSTD_compress(f, n, p, n, 3);
	cr_assert(!ZSTD_isError(zl) && zl + 8 <= n);
	uint32_t magic = 0x184D2A50, pad = (uint32_t)(n - zl - 8);
	memcpy(f + zl, &magic, 4); /* little-endian hosts only, as stoker is */
	memcpy(f + zl + 4, &pad, 4);
	memset(f + zl + 8, 0, pad);
	char path[512], uri[600];
	snprintf(path, sizeof(path), "%s/same/same.bin.zst", e2e_d.root);
	write_bytes(path, f, n);
	snprintf(uri, sizeof(uri), "file://%s", path);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *z = open_ok(c, uri, STK_DS_ZSTD), *raw = open_ok(c, uri, 0);
	uint64_t zs, rs;
	cr_assert_eq(stk_dataset_object(z, 0, NULL, &zs), 0);
	cr_assert_eq(stk_dataset_object(raw, 0, NULL, &rs), 0);
	cr_assert(zs == n && rs == n);
	for (int k = 0; k < 2; k++) {
		get_is(z, 0, n, e2e_hash(p, n), "decompressed");
		get_is(raw, 0, n, e2e_hash(f, n), "as stored");
	}
	stk_dataset_close(z);
	stk_dataset_close(raw);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	free(p);
	free(f);
}

Test(e2e_zstd, corrupt_object_fails_alone, .init = e2e_init, .fini = e2e_fini, .timeout = 120)
{
	make();
	/* A valid header over a damaged body, and a frame cut short. */
	size_t n = 300000;
	unsigned char *p = malloc(n), *zb = malloc(ZSTD_compressBound(n));
	gen(p, n, 7, false);
	size_t zl = ZSTD_compress(zb, ZSTD_compressBound(n), p, n, 3);
	cr_assert(!ZSTD_isError(zl) && zl > 1000);
	char path[512], bad_uri[600], cut_uri[600];
	for (size_t i = zl / 3; i < zl / 3 + 64; i++)
		zb[i] ^= 0xff;
	snprintf(path, sizeof(path), "%s/bad/damaged.bin.zst", dsdir);
	write_bytes(path, zb, zl);
	snprintf(bad_uri, sizeof(bad_uri), "file://%s", path);
	zl = ZSTD_compress(zb, ZSTD_compressBound(n), p, n, 3);
	snprintf(path, sizeof(path), "%s/bad/truncated.bin.zst", dsdir);
	write_bytes(path, zb, zl / 2);
	snprintf(cut_uri, sizeof(cut_uri), "file://%s", path);
	free(p);
	free(zb);

	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *z = open_ok(c, dsuri, STK_DS_ZSTD);
	const char *bad[] = { "bad/damaged.bin", "bad/truncated.bin" };
	const char *uris[] = { bad_uri, cut_uri };
	for (int k = 0; k < 2; k++) {
		size_t idx;
		uint64_t size;
		cr_assert_eq(stk_dataset_find(z, bad[k], &idx), 0, "%s not listed", bad[k]);
		cr_assert_eq(stk_dataset_object(z, idx, NULL, &size), 0);
		cr_assert_eq(size, n, "the header's plain size");
		struct stk_view v;
		for (int again = 0; again < 2; again++) {
			int r = stk_get(z, idx, &v);
			cr_assert_eq(r, -EIO, "get %s gave %d (%s)", bad[k], r, stk_errmsg());
			cr_assert(strstr(stk_errmsg(), uris[k]), "'%s' does not name %s",
				  stk_errmsg(), uris[k]);
		}
	}
	/* The others are served, plain. */
	for (size_t i = 0; i < NOBJ; i++) {
		size_t idx;
		cr_assert_eq(stk_dataset_find(z, objs[i].name, &idx), 0);
		get_is(z, idx, objs[i].size, e2e_hash(objs[i].plain, objs[i].size), objs[i].name);
	}
	struct stk_dataset_status st;
	cr_assert_eq(stk_dataset_status(z, &st), 0);
	stk_dataset_close(z);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	cr_assert(e2e_log_contains(&e2e_d, "damaged.bin.zst"), "the log does not name it");
	unmake();
}

Test(e2e_zstd, manifest_gives_plain_sizes, .init = e2e_init, .fini = e2e_fini, .timeout = 120)
{
	make();
	/* Sizes for most; none for one .zst (its header is read); a wrong one; a plain file. */
	char man[512];
	snprintf(man, sizeof(man), "%s/zds.manifest", e2e_d.root);
	FILE *f = fopen(man, "w");
	cr_assert_not_null(f);
	fprintf(f, "# plain sizes\n");
	for (size_t i = 0; i < NOBJ; i++) {
		if (i == 2)
			fprintf(f, "file://%s/%s.zst\n", dsdir, objs[i].name);
		else if (i == 5)
			fprintf(f, "file://%s/%s.zst %llu\n", dsdir, objs[i].name,
				(unsigned long long)objs[i].size + 1);
		else
			fprintf(f, "file://%s/%s.zst %llu\n", dsdir, objs[i].name,
				(unsigned long long)objs[i].size);
	}
	fprintf(f, "file://%s/plain.txt\n", dsdir);
	cr_assert_eq(fclose(f), 0);
	char muri[600];
	snprintf(muri, sizeof(muri), "file://%s", man);

	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *z = open_ok(c, muri, STK_DS_MANIFEST | STK_DS_ZSTD);
	cr_assert_eq(stk_dataset_count(z), NOBJ + 1);
	for (size_t i = 0; i < NOBJ; i++) {
		const char *key;
		uint64_t size;
		char want[600];
		snprintf(want, sizeof(want), "file://%s/%s", dsdir, objs[i].name);
		cr_assert_eq(stk_dataset_object(z, i, &key, &size), 0);
		cr_assert_str_eq(key, want, "manifest keys are URIs without .zst");
		if (i == 5) {
			cr_assert_eq(size, objs[i].size + 1);
			struct stk_view v;
			int r = stk_get(z, i, &v);
			cr_assert_eq(r, -EIO, "a wrong plain size gave %d (%s)", r, stk_errmsg());
			cr_assert(strstr(stk_errmsg(), "c/110k.npy.zst") &&
				      strstr(stk_errmsg(), "line 7"),
				  "'%s' names neither the URI nor the manifest line", stk_errmsg());
			continue;
		}
		cr_assert_eq(size, objs[i].size, "%s", key);
		get_is(z, i, objs[i].size, e2e_hash(objs[i].plain, objs[i].size), key);
	}
	get_is(z, NOBJ, 15, e2e_hash("not compressed\n", 15), "plain.txt");
	stk_dataset_close(z);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	unmake();
}

Test(e2e_zstd, listings_refuse_what_they_cannot_size, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	char d1[300], uri[400], path[512];
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);

	/* Not zstd at all. */
	snprintf(d1, sizeof(d1), "%s/notzst", e2e_d.root);
	snprintf(path, sizeof(path), "%s/x.npy.zst", d1);
	write_bytes(path, "\x93NUMPY this is no frame", 24);
	snprintf(uri, sizeof(uri), "file://%s/", d1);
	open_fails(c, uri, STK_DS_ZSTD, -EINVAL, "x.npy.zst", "is not zstd data");
	/* Without the flag it is just a file. */
	struct stk_dataset *ds = open_ok(c, uri, 0);
	stk_dataset_close(ds);

	/* A frame that does not declare its size (what a pipe makes). */
	snprintf(d1, sizeof(d1), "%s/nosize", e2e_d.root);
	snprintf(path, sizeof(path), "%s/y.bin.zst", d1);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	char zb[256];
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	size_t zl = ZSTD_compress2(cc, zb, sizeof(zb), "streamed without a size", 23);
	cr_assert(!ZSTD_isError(zl));
	ZSTD_freeCCtx(cc);
	write_bytes(path, zb, zl);
	snprintf(uri, sizeof(uri), "file://%s/", d1);
	open_fails(c, uri, STK_DS_ZSTD, -EINVAL, "y.bin.zst", "does not declare its plain size");

	/* Two objects with one key. */
	snprintf(d1, sizeof(d1), "%s/twice", e2e_d.root);
	snprintf(path, sizeof(path), "%s/k.bin", d1);
	write_bytes(path, "plain", 5);
	snprintf(path, sizeof(path), "%s/k.bin.zst", d1);
	write_zst(path, "plain", 5, 1, NULL);
	snprintf(uri, sizeof(uri), "file://%s/", d1);
	open_fails(c, uri, STK_DS_ZSTD, -EINVAL, "would both be key 'k.bin'", "k.bin.zst");

	/* An empty .zst file. */
	snprintf(d1, sizeof(d1), "%s/empty", e2e_d.root);
	snprintf(path, sizeof(path), "%s/e.zst", d1);
	write_bytes(path, "", 0);
	snprintf(uri, sizeof(uri), "file://%s/", d1);
	open_fails(c, uri, STK_DS_ZSTD, -EINVAL, "e.zst", "shorter than a frame header");

	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

Test(e2e_zstd, cli_ls_and_cat, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	make();
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	char *out, *err;
	size_t len;
	int st = e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "ls", "--zstd",
					   dsuri, NULL },
			 &out, &len, &err);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stoker ls --zstd: %s", err);
	for (size_t i = 0; i < NOBJ; i++) {
		char want[200];
		snprintf(want, sizeof(want), "%s\t%llu\n", objs[i].name,
			 (unsigned long long)objs[i].size);
		cr_assert(strstr(out, want), "ls --zstd lacks '%s':\n%s", want, out);
	}
	cr_assert(!strstr(out, ".zst"), "ls --zstd shows a .zst key:\n%s", out);
	free(out);
	free(err);
	char one[600];
	snprintf(one, sizeof(one), "%s%s.zst", dsuri, objs[3].name);
	st = e2e_run(
	    (const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "cat", "--zstd", one, NULL },
	    &out, &len, &err);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stoker cat --zstd: %s", err);
	cr_assert_eq(len, objs[3].size);
	cr_assert(!memcmp(out, objs[3].plain, len), "cat --zstd gave other bytes");
	free(out);
	free(err);
	e2e_daemon_stop(&e2e_d);
	unmake();
}

/* The daemon's CPU time so far (user + system), in seconds. */
static double daemon_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields 14 and 15, counted after the command's closing ')'. */
	char *p = strrchr(buf, ')');
	cr_assert_not_null(p);
	unsigned long ut = 0, st = 0;
	cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
		     2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Warms uri (flags) to DONE; returns the seconds it took. */
static double warm_s(struct stk_client *c, const char *uri, unsigned flags, uint64_t *bytes)
{
	struct stk_dataset *ds = open_ok(c, uri, flags);
	uint64_t t0 = e2x_now_ns();
	cr_assert_eq(stk_warm(ds), 0);
	struct stk_dataset_status st;
	do {
		e2x_sleep_ms(2);
		cr_assert_eq(stk_dataset_status(ds, &st), 0);
	} while (st.warm == STK_WARM_RUNNING);
	double s = (double)(e2x_now_ns() - t0) / 1e9;
	cr_assert_eq(st.warm, STK_WARM_DONE, "%s: warm ended %u (%s)", uri, st.warm, stk_errmsg());
	*bytes = st.resident_bytes;
	/* The last object, as a check that what landed is the plain bytes. */
	size_t last = stk_dataset_count(ds) - 1;
	uint64_t size;
	cr_assert_eq(stk_dataset_object(ds, last, NULL, &size), 0);
	unsigned char *p = malloc(size);
	gen(p, size, 1000 + last, false);
	get_is(ds, last, size, e2e_hash(p, size), "last object");
	free(p);
	stk_dataset_close(ds);
	return s;
}

/*
 * What ingest costs with decompression: warms of 32 text-like 1 MiB objects
 * stored plain and as .zst (level 3, about 4x), alternated, each on fresh
 * files; prints the rate and the daemon's CPU seconds per plain GB.  A
 * measure for the record (noisy on 2 shared cores), not a pass mark.
 */
Test(e2e_zstd, ingest_rate, .init = e2e_init, .fini = e2e_fini, .timeout = 120)
{
	enum { N = 32, ROUNDS = 2 };
	size_t n = E2E_MIB;
	unsigned char *p = malloc(n);
	char path[512], uri[2][ROUNDS][400];
	for (int r = 0; r < ROUNDS; r++) {
		for (int z = 0; z < 2; z++) {
			snprintf(uri[z][r], sizeof(uri[z][r]), "file://%s/rate%d-%s/", e2e_d.root,
				 r, z ? "zst" : "plain");
			for (int i = 0; i < N; i++) {
				gen(p, n, 1000 + (unsigned)i, false);
				snprintf(path, sizeof(path), "%s/rate%d-%s/%03d.bin%s", e2e_d.root,
					 r, z ? "zst" : "plain", i, z ? ".zst" : "");
				if (z)
					write_zst(path, p, n, 3, NULL);
				else
					write_bytes(path, p, n);
			}
		}
	}
	free(p);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "256M", "--prefault", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	for (int r = 0; r < ROUNDS; r++) {
		for (int z = 0; z < 2; z++) {
			uint64_t bytes;
			double cpu0 = daemon_cpu_s(e2e_d.pid);
			double s = warm_s(c, uri[z][r], z ? STK_DS_ZSTD : 0, &bytes);
			double cpu = daemon_cpu_s(e2e_d.pid) - cpu0;
			cr_assert_eq(bytes, (uint64_t)N * n);
			printf(
			    "ingest %s, %d x 1 MiB: %.0f MB/s plain, stokerd %.2f CPU-s per GB\n",
			    z ? "from .zst (level 3)" : "plain             ", N, bytes / s / 1e6,
			    cpu / (bytes / 1e9));
		}
	}
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

/* SPDX-License-Identifier: MIT */
/*
 * Tier 1 (--nvme-dir) against the real daemon: a dataset 3x the RAM budget
 * and 1.5x the NVMe budget streams for shuffled epochs with both budgets
 * held and later epochs served partly from disk; copies survive a restart
 * and a kill -9; a corrupted copy is refetched; a file changed in the
 * backend is never served stale; a full disk degrades to RAM only; objects
 * decoded on ingest (STK_DS_ZSTD) round-trip through it.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "harness.h"

#define RAM_BUDGET  (8 * E2E_MIB)
#define NVME_BUDGET (16 * E2E_MIB)

static char nvme_dir[200];
static bool mounted;

static void init(void)
{
	e2e_init();
	snprintf(nvme_dir, sizeof(nvme_dir), "%s/nvme", e2e_d.dir);
	cr_assert_eq(e2x_mkdirs(nvme_dir), 0);
	mounted = false;
}

static void fini(void)
{
	if (e2e_d.pid > 0) {
		kill(e2e_d.pid, SIGKILL);
		e2x_daemon_wait(&e2e_d, 10);
		e2e_dump_log(&e2e_d);
	}
	if (mounted)
		umount2(nvme_dir, MNT_DETACH);
	e2e_fini();
}

/* 24 MiB in objects from 4 KiB to 1.5 MiB: packs and large files both. */
static void make_ds(struct e2e_dataset *ds, uint64_t seed)
{
	enum { N = 96 };
	uint64_t sizes[N];
	struct e2e_rng r = { 7 };
	uint64_t total = 0;
	for (size_t i = 0; i < N; i++) {
		sizes[i] = i % 16 == 0 ? 1536 * E2E_KIB - 333
				       : 4 * E2E_KIB + e2e_rand_below(&r, 380 * E2E_KIB);
		total += sizes[i];
	}
	/* Scale the small ones so the whole is 24 MiB, give or take a few KiB. */
	uint64_t large = (N / 16) * (1536 * E2E_KIB - 333);
	for (size_t i = 0; i < N; i++)
		if (i % 16)
			sizes[i] = sizes[i] * (24 * E2E_MIB - large) / (total - large) + 1;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/ds", e2e_d.root);
	e2e_dataset_make(ds, dir, sizes, N, 0, seed);
}

static void start(const char *dir, const char *extra)
{
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "8M", "--nvme-dir", dir, "--nvme",
						   "16M", "--log-level", "info", extra, NULL });
}

static struct stk_dataset *open_ds(struct stk_client *c, const struct e2e_dataset *ds)
{
	struct stk_dataset *sds;
	int r = stk_dataset_open(c, ds->uri, 0, &sds);
	cr_assert_eq(r, 0, "open %s: %s: %s", ds->uri, stk_strerror(r), stk_errmsg());
	return sds;
}

/* Bytes the directory's files take on disk (what du counts), the directory included. */
static uint64_t du(const char *dir)
{
	struct stat st;
	uint64_t sum = stat(dir, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
	DIR *dd = opendir(dir);
	cr_assert_not_null(dd, "opendir %s: %s", dir, strerror(errno));
	struct dirent *de;
	while ((de = readdir(dd)))
		if (de->d_name[0] != '.' && fstatat(dirfd(dd), de->d_name, &st, 0) == 0)
			sum += (uint64_t)st.st_blocks * 512;
	closedir(dd);
	return sum;
}

struct epoch {
	uint64_t bad, ram_over, disk_over, max_disk;
};

/* One shuffled epoch with its plan; every get checked, both budgets sampled. */
static void epoch(struct stk_client *c, struct stk_dataset *sds, const struct e2e_dataset *ds,
		  uint64_t seed, struct epoch *e, bool check_disk)
{
	uint32_t order[256];
	cr_assert_leq(ds->n, 256);
	for (size_t i = 0; i < ds->n; i++)
		order[i] = (uint32_t)i;
	struct e2e_rng r = { seed };
	e2e_shuffle(order, ds->n, &r);
	cr_assert_eq(stk_plan(sds, order, ds->n), 0, "stk_plan: %s", stk_errmsg());
	for (size_t k = 0; k < ds->n; k++) {
		if (e2x_get_check(sds, order[k], &ds->o[order[k]], NULL, NULL))
			e->bad++;
		struct stk_stats st = e2e_stats(c);
		e->ram_over += st.ram_used > st.ram_budget;
		e->disk_over += st.nvme_used > st.nvme_budget;
		if (check_disk && k % 8 == 0) {
			uint64_t u = du(nvme_dir);
			e->max_disk = u > e->max_disk ? u : e->max_disk;
			e->disk_over += u > NVME_BUDGET;
		}
	}
}

/* Waits until the daemon has no write to tier 1 left: its object count stops moving. */
static void settle(struct stk_client *c)
{
	uint64_t last = UINT64_MAX;
	for (int i = 0; i < 100; i++) {
		struct stk_stats st = e2e_stats(c);
		uint64_t cur = st.nvme_writes + st.nvme_objects;
		if (cur == last && st.inflight_objects == 0)
			return;
		last = cur;
		e2x_sleep_ms(50);
	}
}

Test(e2e_nvme, three_epochs_two_budgets_then_restart, .init = init, .fini = fini, .timeout = 80)
{
	struct e2e_dataset ds;
	make_ds(&ds, 11);
	cr_assert_geq(ds.bytes, 23 * E2E_MIB);
	cr_assert_leq(ds.bytes, 25 * E2E_MIB);
	start(nvme_dir, "--max-inflight=8");
	cr_assert(e2e_log_contains(&e2e_d, "index rebuilt"), "no log line for tier 1's index");
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	uint64_t fetches[3], prev = 0;
	struct epoch e = { 0 };
	for (int k = 0; k < 3; k++) {
		epoch(c, sds, &ds, 100 + (uint64_t)k, &e, true);
		struct stk_stats st = e2e_stats(c);
		fetches[k] = st.fetches - prev;
		prev = st.fetches;
	}
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets failed or returned wrong bytes",
		     (unsigned long long)e.bad);
	cr_assert_eq(e.ram_over, 0, "ram_used exceeded the RAM budget");
	cr_assert_eq(e.disk_over, 0, "the NVMe budget was exceeded (max du %llu)",
		     (unsigned long long)e.max_disk);
	cr_assert_gt(e.max_disk, NVME_BUDGET / 2, "tier 1 was hardly used: du peaked at %llu",
		     (unsigned long long)e.max_disk);
	cr_assert_eq(st.nvme_budget, NVME_BUDGET);
	cr_assert_eq(st.ram_budget, RAM_BUDGET);
	cr_assert_gt(st.nvme_writes, 0);
	cr_assert_gt(st.nvme_reads, 0, "nothing was promoted from tier 1");
	cr_assert_gt(st.hits_nvme, 0, "no get was served from tier 1");
	cr_assert_eq(st.nvme_degraded, 0);
	cr_assert_eq(st.fetch_errors, 0);
	cr_assert_eq(fetches[0], ds.n, "epoch 1 fetched %llu of %zu",
		     (unsigned long long)fetches[0], ds.n);
	/*
	 * The tiers are exclusive under pressure: epochs 2-3 refetch about what
	 * RAM and NVMe cannot hold together (21 of 96 measured: the budgets
	 * count headers, padding and metadata, so less than the dataset fits),
	 * not what NVMe alone cannot.
	 */
	cr_assert_lt(fetches[1], fetches[0] / 3, "epoch 2 fetched %llu of %zu from the backend",
		     (unsigned long long)fetches[1], ds.n);
	cr_assert_lt(fetches[2], fetches[0] / 3, "epoch 3 fetched %llu of %zu from the backend",
		     (unsigned long long)fetches[2], ds.n);
	/* A clean restart finds the copies again from the files alone. */
	settle(c);
	uint64_t objects = e2e_stats(c).nvme_objects;
	cr_assert_gt(objects, 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	start(nvme_dir, NULL);
	c = e2e_connect(&e2e_d);
	st = e2e_stats(c);
	cr_assert_eq(st.nvme_objects, objects, "%llu objects before the restart, %llu after",
		     (unsigned long long)objects, (unsigned long long)st.nvme_objects);
	sds = open_ds(c, &ds);
	memset(&e, 0, sizeof(e));
	epoch(c, sds, &ds, 200, &e, false);
	st = e2e_stats(c);
	cr_assert_eq(e.bad, 0);
	cr_assert_gt(st.nvme_reads, 0, "nothing came from tier 1 after the restart");
	cr_assert_lt(st.fetches, ds.n * 3 / 4);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

Test(e2e_nvme, kill9_during_writes_then_every_object_verifies, .init = init, .fini = fini,
     .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, 12);
	int mid_write = 0;
	for (int round = 0; round < 3; round++) {
		start(nvme_dir, NULL);
		struct stk_client *c = e2e_connect(&e2e_d);
		struct stk_dataset *sds = open_ds(c, &ds);
		/* A plan: fetches land and are written behind the reader. */
		uint32_t order[256];
		for (size_t i = 0; i < ds.n; i++)
			order[i] = (uint32_t)((ds.n - 1 - i + (size_t)round * 31) % ds.n);
		cr_assert_eq(stk_plan(sds, order, ds.n), 0);
		/*
		 * Killed past a quarter of the epoch, as soon as a write is in flight:
		 * views are released after each get, so pinned objects are writes.
		 */
		for (size_t k = 0; k < ds.n; k++) {
			cr_assert_eq(e2x_get_check(sds, order[k], &ds.o[order[k]], NULL, NULL), 0);
			struct stk_stats st = e2e_stats(c);
			if (k >= ds.n / 4 && st.pinned_objects > 0 && st.nvme_objects > 0) {
				mid_write++;
				break;
			}
		}
		kill(e2e_d.pid, SIGKILL);
		e2x_daemon_wait(&e2e_d, 10);
		stk_dataset_close(sds);
		stk_close(c);
	}
	cr_assert_gt(mid_write, 0, "no kill landed while a write was in flight");
	start(nvme_dir, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct epoch e = { 0 };
	epoch(c, sds, &ds, 300, &e, false);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu objects came back wrong after kill -9",
		     (unsigned long long)e.bad);
	cr_assert_gt(st.nvme_reads, 0, "nothing came from tier 1 after kill -9");
	cr_assert_eq(st.fetch_errors, 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* Flips one byte of stored data in every pack file (past the first record's header). */
static int corrupt_packs(const char *dir)
{
	int n = 0;
	DIR *dd = opendir(dir);
	cr_assert_not_null(dd);
	struct dirent *de;
	while ((de = readdir(dd))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 5, ".pack"))
			continue;
		int fd = openat(dirfd(dd), de->d_name, O_RDWR);
		cr_assert_geq(fd, 0);
		unsigned char b;
		if (pread(fd, &b, 1, 3000) == 1) {
			b ^= 0x5a;
			cr_assert_eq(pwrite(fd, &b, 1, 3000), 1);
			n++;
		}
		close(fd);
	}
	closedir(dd);
	return n;
}

Test(e2e_nvme, corrupt_copy_refetched_and_changed_file_never_stale, .init = init, .fini = fini,
     .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, 13);
	start(nvme_dir, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct epoch e = { 0 };
	epoch(c, sds, &ds, 400, &e, false);
	settle(c);
	cr_assert_gt(e2e_stats(c).nvme_objects, 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);

	cr_assert_gt(corrupt_packs(nvme_dir), 0, "no pack file to corrupt");
	start(nvme_dir, NULL);
	c = e2e_connect(&e2e_d);
	sds = open_ds(c, &ds);
	epoch(c, sds, &ds, 401, &e, false);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets returned wrong bytes", (unsigned long long)e.bad);
	cr_assert_gt(st.nvme_dropped_corrupt, 0, "the corrupted copies were not detected");
	cr_assert_gt(st.nvme_reads, 0);
	cr_assert(e2e_log_contains(&e2e_d, "failed its checksum"));
	settle(c);

	/* Every file rewritten with new bytes (same sizes): a relist sees new versions. */
	cr_assert_gt(e2e_stats(c).nvme_objects, 0, "nothing on tier 1 to go stale");
	stk_dataset_close(sds);
	struct e2e_dataset ds2;
	e2e_dataset_free(&ds);
	make_ds(&ds2, 14);
	uint64_t before = e2e_stats(c).fetches;
	sds = open_ds(c, &ds2);
	memset(&e, 0, sizeof(e));
	epoch(c, sds, &ds2, 402, &e, false);
	st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets served stale or wrong bytes", (unsigned long long)e.bad);
	cr_assert_geq(st.fetches - before, ds2.n, "%llu of %zu changed objects refetched",
		      (unsigned long long)(st.fetches - before), ds2.n);
	settle(c);
	cr_assert_gt(e2e_stats(c).nvme_objects, 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);

	/* Rewritten while the daemon is down: the copies of the old bytes are never served. */
	e2e_dataset_free(&ds2);
	make_ds(&ds2, 16);
	start(nvme_dir, NULL);
	c = e2e_connect(&e2e_d);
	cr_assert_gt(e2e_stats(c).nvme_objects, 0, "the copies did not survive the restart");
	sds = open_ds(c, &ds2);
	/* The relisting saw new versions: every copy of the old bytes is dropped. */
	cr_assert_eq(e2e_stats(c).nvme_objects, 0, "copies of changed files kept");
	memset(&e, 0, sizeof(e));
	epoch(c, sds, &ds2, 403, &e, false);
	st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets served stale or wrong bytes after a restart",
		     (unsigned long long)e.bad);
	cr_assert_geq(st.fetches, ds2.n);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds2);
}

Test(e2e_nvme, full_disk_degrades_to_ram_only, .init = init, .fini = fini, .timeout = 60)
{
	if (mount("tmpfs", nvme_dir, "tmpfs", 0, "size=2m") < 0)
		cr_skip_test("cannot mount a tmpfs at %s: %s", nvme_dir, strerror(errno));
	mounted = true;
	struct e2e_dataset ds;
	make_ds(&ds, 15);
	start(nvme_dir, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct epoch e = { 0 };
	epoch(c, sds, &ds, 500, &e, false);
	epoch(c, sds, &ds, 501, &e, false);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets returned wrong bytes", (unsigned long long)e.bad);
	cr_assert_eq(st.nvme_degraded, 1, "a full disk did not degrade tier 1");
	cr_assert_eq(st.fetch_errors, 0);
	cr_assert(e2e_log_contains(&e2e_d, "degraded"));
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	cr_assert_eq(umount2(nvme_dir, 0), 0, "umount: %s", strerror(errno));
	mounted = false;
	e2e_dataset_free(&ds);
}

Test(e2e_nvme, unusable_dir_is_fatal_and_named, .init = init, .fini = fini, .timeout = 30)
{
	char missing[256], sock[200];
	snprintf(missing, sizeof(missing), "%s/no-such-dir", e2e_d.dir);
	snprintf(sock, sizeof(sock), "%s/other.sock", e2e_d.dir);
	char *out, *err;
	const char *argv[] = { STOKERD_PATH, "--foreground", "--socket", sock,	"--metrics", "off",
			       "--nvme-dir", missing,	     "--nvme",	 "16M", NULL };
	int st = e2e_run(argv, &out, NULL, &err);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "stokerd started on a missing --nvme-dir");
	cr_assert_not_null(strstr(err, missing), "the error does not name the directory: %s", err);
	free(out);
	free(err);
	/* A second daemon on a directory in use fails naming it, and the first is untouched. */
	start(nvme_dir, NULL);
	argv[7] = nvme_dir;
	st = e2e_run(argv, &out, NULL, &err);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "two daemons opened one --nvme-dir");
	cr_assert_not_null(strstr(err, "another stokerd uses this directory"), "%s", err);
	free(out);
	free(err);
	e2e_daemon_stop(&e2e_d);
}

/*
 * A STK_DS_ZSTD dataset (objects decoded on ingest) through tier 1: copies
 * hold the plain bytes, promotions deliver them, and the same files opened
 * raw are other objects, never served from the decoded copies.
 */
Test(e2e_nvme, decoded_objects_round_trip_through_tier1, .init = init, .fini = fini, .timeout = 60)
{
	enum { N = 48 };
	struct e2e_dataset ds = { .n = N };
	snprintf(ds.dir, sizeof(ds.dir), "%s/zds", e2e_d.root);
	snprintf(ds.uri, sizeof(ds.uri), "file://%s/", ds.dir);
	cr_assert_eq(e2x_mkdirs(ds.dir), 0);
	ds.o = calloc(N, sizeof(*ds.o));
	struct e2e_obj *raw = calloc(N, sizeof(*raw));
	cr_assert(ds.o && raw);
	struct e2e_rng r = { 21 };
	for (size_t i = 0; i < N; i++) {
		uint64_t n = 64 * E2E_KIB + e2e_rand_below(&r, 600 * E2E_KIB);
		unsigned char *p = malloc(n);
		cr_assert_not_null(p);
		for (uint64_t k = 0; k < n; k++) /* compressible, and different per object */
			p[k] = (unsigned char)("tier one\n"[(k * 7 + i) % 9] + (k / 8192) % 5);
		size_t cap = ZSTD_compressBound(n);
		void *z = malloc(cap);
		cr_assert_not_null(z);
		size_t zl = ZSTD_compress(z, cap, p, n, 3);
		cr_assert(!ZSTD_isError(zl));
		snprintf(ds.o[i].key, sizeof(ds.o[i].key), "z%03zu.bin", i);
		ds.o[i].size = n;
		ds.o[i].hash = e2e_hash(p, n);
		raw[i].size = zl;
		raw[i].hash = e2e_hash(z, zl);
		char path[512];
		snprintf(path, sizeof(path), "%s/%s.zst", ds.dir, ds.o[i].key);
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(fwrite(z, 1, zl, f), zl);
		cr_assert_eq(fclose(f), 0);
		ds.bytes += n;
		free(p);
		free(z);
	}
	cr_assert_gt(ds.bytes, 12 * E2E_MIB, "the plain bytes must not fit in RAM");
	start(nvme_dir, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	int rc = stk_dataset_open(c, ds.uri, STK_DS_ZSTD, &sds);
	cr_assert_eq(rc, 0, "open: %s", stk_errmsg());
	cr_assert_eq(stk_dataset_count(sds), N);
	struct epoch e = { 0 };
	epoch(c, sds, &ds, 600, &e, false);
	epoch(c, sds, &ds, 601, &e, false);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu decoded gets returned wrong bytes", (unsigned long long)e.bad);
	cr_assert_gt(st.nvme_reads, 0, "no decoded object was promoted");
	/* The same files raw: other objects; their bytes are the .zst files'. */
	struct stk_dataset *rds;
	rc = stk_dataset_open(c, ds.uri, 0, &rds);
	cr_assert_eq(rc, 0, "open raw: %s", stk_errmsg());
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(e2x_get_check(rds, i, &raw[i], NULL, NULL), 0, "raw object %zu", i);
	stk_dataset_close(rds);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	free(raw);
	e2e_dataset_free(&ds);
}

/*
 * Writes one object per size under root/name: bytes of a 4-letter alphabet
 * (about 4x compressible) where compressible(i), else random bytes.
 */
static void make_mixed(struct e2e_dataset *ds, const char *name, const uint64_t *sizes, size_t n,
		       bool (*compressible)(size_t i), uint64_t seed)
{
	*ds = (struct e2e_dataset){ .n = n };
	snprintf(ds->dir, sizeof(ds->dir), "%s/%s", e2e_d.root, name);
	snprintf(ds->uri, sizeof(ds->uri), "file://%s/", ds->dir);
	cr_assert_eq(e2x_mkdirs(ds->dir), 0);
	ds->o = calloc(n, sizeof(*ds->o));
	cr_assert_not_null(ds->o);
	struct e2e_rng r = { seed };
	for (size_t i = 0; i < n; i++) {
		uint64_t len = sizes[i];
		unsigned char *p = malloc(len ? len : 1);
		cr_assert_not_null(p);
		bool z = compressible(i);
		for (uint64_t k = 0; k < len; k += 8) {
			uint64_t v = e2e_rand(&r);
			for (uint64_t b = 0; b < 8 && k + b < len; b++)
				p[k + b] = z ? (unsigned char)"ACGT"[(v >> (2 * b)) & 3]
					     : (unsigned char)(v >> (8 * b));
		}
		snprintf(ds->o[i].key, sizeof(ds->o[i].key), "o%04zu.bin", i);
		ds->o[i].size = len;
		ds->o[i].hash = e2e_hash(p, len);
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", ds->dir, ds->o[i].key);
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(fwrite(p, 1, len, f), len);
		cr_assert_eq(fclose(f), 0);
		ds->bytes += len;
		free(p);
	}
}

static bool every_third_random(size_t i)
{
	return i % 3 != 2;
}

static bool all_compressible(size_t i)
{
	(void)i;
	return true;
}

static void start_z(const char *ram, const char *nvme)
{
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--ram", ram, "--nvme-dir", nvme_dir, "--nvme", nvme,
					   "--nvme-compress", "3", "--log-level", "info", NULL });
}

static void print_ratio(const char *what, const struct stk_stats *st)
{
	double plain = (double)st->nvme_plain_bytes, stored = (double)st->nvme_stored_bytes;
	double mib = (double)(st->nvme_write_bytes + st->nvme_read_bytes) / E2E_MIB;
	printf(
	    "e2e_nvme %s: zstd level 3: %.2f MiB plain stored as %.2f MiB: ratio %.2fx; "
	    "worker CPU in zstd %.3f s for %.1f MiB demoted+promoted since start (%.1f ms/MiB)\n",
	    what, plain / E2E_MIB, stored / E2E_MIB, stored > 0 ? plain / stored : 0.0,
	    (double)st->nvme_codec_ns / 1e9, mib,
	    mib > 0 ? (double)st->nvme_codec_ns / 1e6 / mib : 0.0);
	fflush(stdout);
}

/*
 * Replaces the zstd magic of every compressed record in every pack file's
 * slots with zeros and rewrites both checksums (docs/nvme.md, "On-disk
 * format"): the store's checks pass, the frame does not decode.  Returns
 * the records changed.
 */
static int forge_bad_frames(const char *dir)
{
	int n = 0;
	DIR *dd = opendir(dir);
	cr_assert_not_null(dd);
	struct dirent *de;
	while ((de = readdir(dd))) {
		unsigned long slot;
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 5, ".pack") ||
		    sscanf(de->d_name, "s%lu-", &slot) != 1 || slot < 4096)
			continue;
		int fd = openat(dirfd(dd), de->d_name, O_RDWR);
		cr_assert_geq(fd, 0);
		struct stat st;
		cr_assert_eq(fstat(fd, &st), 0);
		unsigned char *b = malloc(slot);
		cr_assert_not_null(b);
		for (off_t at = 0; at + (off_t)slot <= st.st_size; at += (off_t)slot) {
			uint16_t hl;
			uint32_t flags;
			uint64_t stored;
			if (pread(fd, b, slot, at) != (ssize_t)slot || memcmp(b, "STK1", 4))
				continue;
			memcpy(&hl, b + 6, 2);
			memcpy(&flags, b + 8, 4);
			memcpy(&stored, b + 32, 8);
			if (!(flags & 1) || hl + stored > slot || stored < 4)
				continue;
			memset(b + hl, 0, 4);
			uint64_t x = XXH3_64bits(b + hl, stored);
			memcpy(b + 48, &x, 8);
			memset(b + 56, 0, 8);
			x = XXH3_64bits(b, hl);
			memcpy(b + 56, &x, 8);
			cr_assert_eq(pwrite(fd, b, slot, at), (ssize_t)slot);
			n++;
		}
		free(b);
		close(fd);
	}
	closedir(dd);
	return n;
}

/*
 * --nvme-compress: every size from 0 bytes up (uneven steps to 70 KiB, the
 * block and slot edges, and objects past the 1 MiB packing limit), both
 * compressible and random, comes back byte-identical from its copies after a
 * restart empties RAM.
 */
Test(e2e_nvme, compressed_tier_round_trips_every_size, .init = init, .fini = fini, .timeout = 60)
{
	uint64_t sizes[256];
	size_t n = 0;
	for (uint64_t s = 0; s <= 70 * E2E_KIB; s += 1 + s / 8 + (n * 37) % 101)
		sizes[n++] = s;
	static const uint64_t edges[] = { 4095,
					  4096,
					  4097,
					  8191,
					  65535,
					  65536,
					  65537,
					  E2E_MIB - 1,
					  E2E_MIB + 7,
					  E2E_MIB + 4096,
					  3 * E2E_MIB + 123,
					  2 * E2E_MIB - 5 };
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		sizes[n++] = edges[i];
	cr_assert_leq(n, 256);
	struct e2e_dataset ds;
	make_mixed(&ds, "every", sizes, n, every_third_random, 31);
	start_z("256M", "64M");
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct epoch e = { 0 };
	epoch(c, sds, &ds, 700, &e, false);
	cr_assert_eq(e.bad, 0, "%llu gets returned wrong bytes", (unsigned long long)e.bad);
	settle(c);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.fetch_errors, 0);
	cr_assert_geq(st.nvme_objects, n - 1, "only %llu of %zu objects went to tier 1",
		      (unsigned long long)st.nvme_objects, n);
	cr_assert_lt(st.nvme_stored_bytes, st.nvme_plain_bytes, "nothing was compressed");
	cr_assert_gt(st.nvme_codec_ns, 0);
	uint64_t objects = st.nvme_objects;
	print_ratio("every size, 2/3 compressible", &st);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);

	/* RAM starts empty: every object that has a copy is promoted, decoded, checked. */
	start_z("256M", "64M");
	c = e2e_connect(&e2e_d);
	sds = open_ds(c, &ds);
	epoch(c, sds, &ds, 701, &e, false);
	st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets returned wrong bytes after promotion",
		     (unsigned long long)e.bad);
	cr_assert_geq(st.nvme_reads, objects, "%llu promotions of %llu copies",
		      (unsigned long long)st.nvme_reads, (unsigned long long)objects);
	cr_assert_leq(st.fetches, n - objects, "%llu objects fetched from the backend",
		      (unsigned long long)st.fetches);
	cr_assert_eq(st.nvme_dropped_corrupt, 0);
	cr_assert_gt(st.nvme_codec_ns, 0, "no decode time counted");
	print_ratio("every size, promoted", &st);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);

	/* Frames whose checksums hold but that do not decode: dropped, refetched. */
	int forged = forge_bad_frames(nvme_dir);
	cr_assert_gt(forged, 0, "no compressed record to forge");
	start_z("256M", "64M");
	c = e2e_connect(&e2e_d);
	sds = open_ds(c, &ds);
	epoch(c, sds, &ds, 702, &e, false);
	st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets returned wrong bytes after bad frames",
		     (unsigned long long)e.bad);
	cr_assert_eq(st.nvme_dropped_corrupt, (uint64_t)forged, "%llu of %d bad frames dropped",
		     (unsigned long long)st.nvme_dropped_corrupt, forged);
	cr_assert_geq(st.fetches, (uint64_t)forged);
	cr_assert(e2e_log_contains(&e2e_d, "does not decode"));
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/*
 * With compressible data the tier holds more plain bytes than its budget,
 * the disk (du) still within it; a later epoch comes mostly from tier 1; a
 * byte flipped in every pack file is caught and those objects refetched.
 */
Test(e2e_nvme, compressed_tier_holds_more_than_its_budget, .init = init, .fini = fini,
     .timeout = 60)
{
	enum { N = 72 };
	uint64_t sizes[N];
	struct e2e_rng r = { 41 };
	for (size_t i = 0; i < N; i++)
		sizes[i] = 64 * E2E_KIB + e2e_rand_below(&r, 900 * E2E_KIB);
	struct e2e_dataset ds;
	make_mixed(&ds, "dna", sizes, N, all_compressible, 42);
	cr_assert_gt(ds.bytes, 2 * NVME_BUDGET, "the plain bytes must be twice tier 1's budget");
	start_z("8M", "16M");
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct epoch e = { 0 };
	epoch(c, sds, &ds, 800, &e, true);
	settle(c);
	struct stk_stats st = e2e_stats(c);
	uint64_t u = du(nvme_dir);
	cr_assert_eq(e.bad, 0, "%llu gets returned wrong bytes", (unsigned long long)e.bad);
	cr_assert_eq(e.disk_over, 0, "the NVMe budget was exceeded (max du %llu)",
		     (unsigned long long)e.max_disk);
	cr_assert_leq(u, NVME_BUDGET, "du %llu over the budget", (unsigned long long)u);
	cr_assert_leq(st.nvme_used, st.nvme_budget);
	cr_assert_gt(st.nvme_plain_bytes, st.nvme_budget,
		     "tier 1 holds %llu plain bytes in a %llu budget (%llu stored)",
		     (unsigned long long)st.nvme_plain_bytes, (unsigned long long)st.nvme_budget,
		     (unsigned long long)st.nvme_stored_bytes);
	print_ratio("4-letter data", &st);
	printf("e2e_nvme 4-letter data: %llu objects, %.2f MiB plain on tier 1, du %.2f MiB of a "
	       "%.0f MiB budget\n",
	       (unsigned long long)st.nvme_objects, (double)st.nvme_plain_bytes / E2E_MIB,
	       (double)u / E2E_MIB, (double)NVME_BUDGET / E2E_MIB);
	uint64_t before = st.fetches;
	epoch(c, sds, &ds, 801, &e, true);
	st = e2e_stats(c);
	cr_assert_eq(e.bad, 0);
	cr_assert_eq(e.disk_over, 0);
	cr_assert_lt(st.fetches - before, N / 2, "epoch 2 fetched %llu of %d from the backend",
		     (unsigned long long)(st.fetches - before), N);
	cr_assert_gt(st.hits_nvme, 0);
	print_ratio("4-letter data, after epoch 2", &st);
	settle(c);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);

	/* A flipped byte in a compressed copy: dropped, refetched, correct bytes. */
	cr_assert_gt(corrupt_packs(nvme_dir), 0, "no pack file to corrupt");
	start_z("8M", "16M");
	c = e2e_connect(&e2e_d);
	sds = open_ds(c, &ds);
	memset(&e, 0, sizeof(e));
	epoch(c, sds, &ds, 802, &e, false);
	st = e2e_stats(c);
	cr_assert_eq(e.bad, 0, "%llu gets returned wrong bytes", (unsigned long long)e.bad);
	cr_assert_gt(st.nvme_dropped_corrupt, 0, "the corrupted copies were not detected");
	cr_assert_gt(st.nvme_reads, 0);
	cr_assert_eq(st.fetch_errors, 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

Test(e2e_nvme, compress_level_out_of_range_is_fatal_and_named, .init = init, .fini = fini,
     .timeout = 30)
{
	char sock[200];
	snprintf(sock, sizeof(sock), "%s/other.sock", e2e_d.dir);
	char *out, *err;
	const char *argv[] = { STOKERD_PATH, "--foreground", "--socket",	sock,
			       "--metrics",  "off",	     "--nvme-dir",	nvme_dir,
			       "--nvme",     "16M",	     "--nvme-compress", "23",
			       NULL };
	int st = e2e_run(argv, &out, NULL, &err);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "stokerd started at zstd level 23");
	cr_assert_not_null(strstr(err, "--nvme-compress"), "the error does not name the flag: %s",
			   err);
	free(out);
	free(err);
}

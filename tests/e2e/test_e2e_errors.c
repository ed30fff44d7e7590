/* SPDX-License-Identifier: MIT */
/*
 * Bad input gives a clear error (the errno the API documents and a message
 * naming what was wrong), and the daemon goes on serving.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MSG_MAX 600

/* Opens uri expecting err; asserts the message mentions every needle. */
static void open_fails(struct stk_client *c, const char *uri, unsigned flags, int err,
		       const char *needle, const char *needle2)
{
	struct stk_dataset *sds = NULL;
	int r = stk_dataset_open(c, uri, flags, &sds);
	char msg[MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", stk_errmsg());
	if (!r)
		stk_dataset_close(sds);
	cr_assert_eq(r, err, "open %s: got %d (%s) '%s', want %d (%s)", uri, r, stk_strerror(r),
		     msg, err, stk_strerror(err));
	cr_assert(needle == NULL || strstr(msg, needle), "open %s: message '%s' lacks '%s'", uri,
		  msg, needle);
	cr_assert(needle2 == NULL || strstr(msg, needle2), "open %s: message '%s' lacks '%s'", uri,
		  msg, needle2);
}

/* Gets index expecting err; asserts the message mentions needle. */
static void get_fails(struct stk_dataset *sds, size_t index, int err, const char *needle)
{
	struct stk_view v;
	int r = stk_get(sds, index, &v);
	char msg[MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", stk_errmsg());
	if (!r)
		stk_release(&v);
	cr_assert_eq(r, err, "get %zu: got %d (%s) '%s', want %d (%s)", index, r, stk_strerror(r),
		     msg, err, stk_strerror(err));
	cr_assert(needle == NULL || strstr(msg, needle), "get %zu: message '%s' lacks '%s'", index,
		  msg, needle);
}

static struct stk_dataset *open_ok(struct stk_client *c, const char *uri, unsigned flags)
{
	struct stk_dataset *sds;
	int r = stk_dataset_open(c, uri, flags, &sds);
	cr_assert_eq(r, 0, "open %s: %s: %s", uri, stk_strerror(r), stk_errmsg());
	return sds;
}

static void write_file(const char *path, uint64_t size, uint64_t seed)
{
	int r = e2x_write_file(path, size, seed);
	cr_assert_eq(r, 0, "write %s: %s", path, strerror(-r));
}

/* Opens the one-object dataset path and checks its bytes against the file. */
static void single_ok(struct stk_client *c, const char *path)
{
	char uri[600];
	snprintf(uri, sizeof(uri), "file://%s", path);
	struct e2e_obj o;
	memset(&o, 0, sizeof(o));
	cr_assert_eq(e2x_file_hash(path, &o.hash, &o.size), 0);
	snprintf(o.key, sizeof(o.key), "%s", strrchr(path, '/') + 1);
	struct stk_dataset *sds = open_ok(c, uri, 0);
	cr_assert_eq(stk_dataset_count(sds), 1);
	cr_assert_eq(e2x_get_check(sds, 0, &o, NULL, NULL), 0, "get %s", uri);
	stk_dataset_close(sds);
}

Test(e2e_errors, bad_uris_and_escapes, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	const char *R = e2e_d.root;
	char p[512], q[512], uri[600];
	snprintf(p, sizeof(p), "%s/ok/a.bin", R);
	write_file(p, 10001, 1);
	snprintf(p, sizeof(p), "%s/outside/secret.bin", e2e_d.dir);
	write_file(p, 4242, 2);
	snprintf(p, sizeof(p), "%s/links/real1.bin", R);
	write_file(p, 333, 3);
	snprintf(p, sizeof(p), "%s/links/real2.bin", R);
	write_file(p, 4444, 4);
	snprintf(p, sizeof(p), "%s/links/etc_link", R);
	cr_assert_eq(symlink("/etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/links/rel_link.bin", R);
	cr_assert_eq(symlink("real1.bin", p), 0);
	snprintf(p, sizeof(p), "%s/links/dir_out", R);
	snprintf(q, sizeof(q), "%s/outside", e2e_d.dir);
	cr_assert_eq(symlink(q, p), 0);
	snprintf(p, sizeof(p), "%s/big.bin", R);
	write_file(p, 9 * E2E_MIB, 5);

	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "8M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);

	open_fails(c, "bogus://x", 0, -EPROTONOSUPPORT, "bogus", NULL);
	open_fails(c, "not-a-uri", 0, -EINVAL, "not-a-uri", NULL);
	open_fails(c, "", 0, -EINVAL, NULL, NULL);
	open_fails(c, "file://relative/path", 0, -EINVAL, "file://relative/path", NULL);

	snprintf(uri, sizeof(uri), "file://%s/nonexistent-under-root", R);
	open_fails(c, uri, 0, -ENOENT, uri, NULL);
	snprintf(uri, sizeof(uri), "file://%s/outside/secret.bin", e2e_d.dir);
	open_fails(c, uri, 0, -EACCES, uri, NULL);
	open_fails(c, "file:///etc/passwd", 0, -EACCES, "/etc/passwd", NULL);
	/* A sibling directory whose name starts with the root's is not below it. */
	snprintf(p, sizeof(p), "%s-sibling/x.bin", R);
	write_file(p, 10, 6);
	snprintf(uri, sizeof(uri), "file://%s", p);
	open_fails(c, uri, 0, -EACCES, "sibling", NULL);

	/* ".." and symlinks are resolved beneath the root. */
	snprintf(uri, sizeof(uri), "file://%s/../outside/secret.bin", R);
	open_fails(c, uri, 0, -EACCES, "secret.bin", NULL);
	snprintf(uri, sizeof(uri), "file://%s/ok/../../../../../../etc/passwd", R);
	open_fails(c, uri, 0, -EACCES, "passwd", NULL);
	snprintf(uri, sizeof(uri), "file://%s/links/etc_link", R);
	open_fails(c, uri, 0, -EACCES, "etc_link", NULL);
	snprintf(uri, sizeof(uri), "file://%s/links/dir_out/secret.bin", R);
	open_fails(c, uri, 0, -EACCES, "secret.bin", NULL);
	snprintf(uri, sizeof(uri), "file://%s/links/dir_out/", R);
	open_fails(c, uri, 0, -EACCES, "dir_out", NULL);

	/* A listing holds regular files only: symlinks are skipped. */
	snprintf(uri, sizeof(uri), "file://%s/links/", R);
	struct stk_dataset *sds = open_ok(c, uri, 0);
	cr_assert_eq(stk_dataset_count(sds), 2, "the listing of links/ has %zu objects, want 2",
		     stk_dataset_count(sds));
	const char *key;
	cr_assert_eq(stk_dataset_object(sds, 0, &key, NULL), 0);
	cr_assert_str_eq(key, "real1.bin");
	cr_assert_eq(stk_dataset_object(sds, 1, &key, NULL), 0);
	cr_assert_str_eq(key, "real2.bin");
	size_t idx;
	cr_assert_eq(stk_dataset_find(sds, "etc_link", &idx), -ENOENT);
	cr_assert_eq(stk_dataset_find(sds, "real2.bin", &idx), 0);
	cr_assert_eq(idx, 1);
	cr_assert_eq(stk_dataset_object(sds, 2, &key, NULL), -ERANGE);
	get_fails(sds, 2, -ERANGE, "2");
	uint32_t bad_plan[] = { 0, 1, 7 };
	cr_assert_eq(stk_plan(sds, bad_plan, 3), -ERANGE);
	cr_assert(strstr(stk_errmsg(), "7"), "plan error '%s' lacks the index", stk_errmsg());
	stk_dataset_close(sds);

	/* An object larger than the whole budget. */
	snprintf(uri, sizeof(uri), "file://%s/big.bin", R);
	sds = open_ok(c, uri, 0);
	get_fails(sds, 0, -EFBIG, "big.bin");
	stk_dataset_close(sds);

	/* A failed open is not remembered: once the directory exists, it opens (empty). */
	snprintf(uri, sizeof(uri), "file://%s/later/", R);
	open_fails(c, uri, 0, -ENOENT, "later", NULL);
	snprintf(p, sizeof(p), "%s/later", R);
	cr_assert_eq(e2x_mkdirs(p), 0);
	sds = open_ok(c, uri, 0);
	cr_assert_eq(stk_dataset_count(sds), 0);
	cr_assert_eq(stk_dataset_bytes(sds), 0);
	cr_assert_eq(stk_plan(sds, NULL, 0), 0, "an empty plan: %s", stk_errmsg());
	get_fails(sds, 0, -ERANGE, NULL);
	stk_dataset_close(sds);

	/* After all that, the daemon still serves: a URI, and a plain path. */
	snprintf(p, sizeof(p), "%s/ok/a.bin", R);
	single_ok(c, p);
	struct stk_dataset *plain = open_ok(c, p, 0);
	cr_assert_eq(stk_dataset_count(plain), 1);
	stk_dataset_close(plain);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

Test(e2e_errors, files_changed_after_listing, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	uint64_t sizes[6];
	for (int i = 0; i < 6; i++)
		sizes[i] = 200 * E2E_KIB + 2 * (uint64_t)i + 1;
	struct e2e_dataset ds;
	char dir[256], path[512];
	snprintf(dir, sizeof(dir), "%s/vt", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 6, 0, 77);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ok(c, ds.uri, 0);
	cr_assert_eq(e2x_check_catalog(sds, &ds), 0);

	/* Object 1 vanishes, object 2 shrinks, after the listing. */
	snprintf(path, sizeof(path), "%s/%s", dir, ds.o[1].key);
	cr_assert_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, ds.o[2].key);
	cr_assert_eq(truncate(path, (off_t)ds.o[2].size / 2), 0);

	/* A plan prefetches them first; those failures must not stick either. */
	uint32_t order[6] = { 0, 1, 2, 3, 4, 5 };
	cr_assert_eq(stk_plan(sds, order, 6), 0, "%s", stk_errmsg());
	e2x_sleep_ms(50);
	get_fails(sds, 1, -ENOENT, ds.o[1].key);
	get_fails(sds, 2, -EIO, ds.o[2].key);
	for (size_t i = 3; i < ds.n; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	cr_assert_eq(e2x_get_check(sds, 0, &ds.o[0], NULL, NULL), 0);
	struct stk_dataset_status st;
	cr_assert_eq(stk_dataset_status(sds, &st), 0);
	cr_assert_eq(st.failed, 2, "status counts %u failed objects, want 2", st.failed);
	struct stk_stats ss = e2e_stats(c);
	cr_assert_geq(ss.fetch_errors, 2);

	/* Failures are not sticky: once the files are back (new bytes), a get retries. */
	for (int i = 1; i <= 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, ds.o[i].key);
		cr_assert_eq(e2x_write_file(path, ds.o[i].size, 1234u + (uint64_t)i), 0);
		cr_assert_eq(e2x_file_hash(path, &ds.o[i].hash, &ds.o[i].size), 0);
		cr_assert_eq(e2x_get_check(sds, (size_t)i, &ds.o[i], NULL, NULL), 0,
			     "retry of %s after it came back", ds.o[i].key);
	}
	cr_assert_eq(stk_dataset_status(sds, &st), 0);
	cr_assert_eq(st.failed, 0, "status still counts %u failed objects", st.failed);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

Test(e2e_errors, manifests, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	const char *R = e2e_d.root;
	uint64_t sizes[4] = { 12345, 0, 4097, 300001 };
	struct e2e_dataset ds;
	char dir[256], mpath[512], text[4096], uri[600];
	snprintf(dir, sizeof(dir), "%s/m", R);
	e2e_dataset_make(&ds, dir, sizes, 4, 0, 21);
	char secret[300];
	snprintf(secret, sizeof(secret), "%s/outside/secret.bin", e2e_d.dir);
	write_file(secret, 4242, 2);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);

	/* Good: comments, blank lines, stray spaces, sizes given and not. */
	snprintf(text, sizeof(text),
		 "# a manifest\n"
		 "file://%s/%s %llu\n"
		 "\n"
		 "   file://%s/%s\n"
		 "file://%s/%s\t %llu  \n"
		 "file://%s/%s",
		 dir, ds.o[0].key, (unsigned long long)ds.o[0].size, dir, ds.o[1].key, dir,
		 ds.o[2].key, (unsigned long long)ds.o[2].size, dir, ds.o[3].key);
	snprintf(mpath, sizeof(mpath), "%s/good.manifest", R);
	write_text(mpath, text);
	snprintf(uri, sizeof(uri), "file://%s", mpath);
	struct stk_dataset *sds = open_ok(c, uri, STK_DS_MANIFEST);
	cr_assert_eq(stk_dataset_count(sds), 4);
	cr_assert_eq(stk_dataset_bytes(sds), ds.bytes);
	for (size_t i = 0; i < 4; i++) {
		const char *key;
		uint64_t size;
		char want[400];
		snprintf(want, sizeof(want), "file://%s/%s", dir, ds.o[i].key);
		cr_assert_eq(stk_dataset_object(sds, i, &key, &size), 0);
		cr_assert_str_eq(key, want);
		cr_assert_eq(size, ds.o[i].size, "%s: size %llu, want %llu", key,
			     (unsigned long long)size, (unsigned long long)ds.o[i].size);
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	}
	stk_dataset_close(sds);

	/* Malformed lines are named by number. */
	snprintf(text, sizeof(text), "# x\nfile://%s/%s\nfile://%s/%s abc\n", dir, ds.o[0].key, dir,
		 ds.o[1].key);
	snprintf(mpath, sizeof(mpath), "%s/badsize.manifest", R);
	write_text(mpath, text);
	snprintf(uri, sizeof(uri), "file://%s", mpath);
	open_fails(c, uri, STK_DS_MANIFEST, -EINVAL, "line 3", "abc");
	snprintf(mpath, sizeof(mpath), "%s/nouri.manifest", R);
	write_text(mpath, "\njust/a/relative/path 10\n");
	snprintf(uri, sizeof(uri), "file://%s", mpath);
	open_fails(c, uri, STK_DS_MANIFEST, -EINVAL, "line 2", NULL);
	snprintf(mpath, sizeof(mpath), "%s/scheme.manifest", R);
	write_text(mpath, "bogus://bucket/x 10\n");
	snprintf(uri, sizeof(uri), "file://%s", mpath);
	open_fails(c, uri, STK_DS_MANIFEST, -EPROTONOSUPPORT, "bogus", NULL);
	snprintf(uri, sizeof(uri), "file://%s/missing.manifest", R);
	open_fails(c, uri, STK_DS_MANIFEST, -ENOENT, "missing.manifest", NULL);

	/* A manifest cannot reach outside the root, with or without a size. */
	snprintf(text, sizeof(text), "file://%s\n", secret);
	snprintf(mpath, sizeof(mpath), "%s/escape1.manifest", R);
	write_text(mpath, text);
	snprintf(uri, sizeof(uri), "file://%s", mpath);
	open_fails(c, uri, STK_DS_MANIFEST, -EACCES, "secret.bin", NULL);
	snprintf(text, sizeof(text), "file://%s 4242\nfile://%s/../outside/secret.bin 4242\n",
		 secret, R);
	snprintf(mpath, sizeof(mpath), "%s/escape2.manifest", R);
	write_text(mpath, text);
	snprintf(uri, sizeof(uri), "file://%s", mpath);
	sds = open_ok(c, uri, STK_DS_MANIFEST);
	cr_assert_eq(stk_dataset_count(sds), 2);
	get_fails(sds, 0, -EACCES, "secret.bin");
	get_fails(sds, 1, -EACCES, "secret.bin");
	stk_dataset_close(sds);

	/* A size larger than the file: the get fails, naming the object. */
	snprintf(text, sizeof(text), "file://%s/%s %llu\n", dir, ds.o[0].key,
		 (unsigned long long)ds.o[0].size + 100);
	snprintf(mpath, sizeof(mpath), "%s/toolarge.manifest", R);
	write_text(mpath, text);
	snprintf(uri, sizeof(uri), "file://%s", mpath);
	sds = open_ok(c, uri, STK_DS_MANIFEST);
	get_fails(sds, 0, -EIO, ds.o[0].key);
	stk_dataset_close(sds);

	/* And the good manifest still works. */
	snprintf(uri, sizeof(uri), "file://%s/good.manifest", R);
	sds = open_ok(c, uri, STK_DS_MANIFEST);
	cr_assert_eq(e2x_get_check(sds, 3, &ds.o[3], NULL, NULL), 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

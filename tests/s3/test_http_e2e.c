/* SPDX-License-Identifier: MIT */
/*
 * End to end, http://: a real stokerd fetching from a real nginx (Range
 * support, keep-alive) through manifests of URLs with and without sizes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3_harness.h"

static struct th_nginx ng;
static struct th_daemon d;

static void setup(void)
{
	cr_assert_eq(th_setup("http"), 0, "cannot make a temporary directory");
}

static void teardown(void)
{
	th_teardown();
}

#define NEED_NGINX()                                                                               \
	do {                                                                                       \
		const char *why_ = th_nginx_unavailable();                                         \
		if (why_)                                                                          \
			th_skip(why_);                                                             \
	} while (0)

/* Gets index and checks it is the generated object (seed, size). */
static void check_object(struct stk_dataset *ds, size_t index, uint64_t seed, uint64_t size)
{
	const char *key = NULL;
	struct stk_view v;
	int r = stk_get(ds, index, &v);
	stk_dataset_object(ds, index, &key, NULL);
	cr_assert_eq(r, 0, "get %zu (%s): %s: %s", index, key, stk_strerror(r), stk_errmsg());
	cr_assert_eq(v.size, size, "%s: %llu bytes delivered, %llu uploaded", key,
		     (unsigned long long)v.size, (unsigned long long)size);
	int64_t at = th_diff(seed, v.data, v.size);
	cr_assert_eq(at, -1, "%s: differs from what was served at byte %lld", key, (long long)at);
	stk_release(&v);
}

/* Counts lines of nginx's access log with this status and request substring. */
static unsigned access_count(const char *status, const char *what)
{
	cr_assert_eq(th_nginx_sync(&ng), 0, "nginx's access log is not being written");
	FILE *f = fopen(ng.access_log, "re");
	cr_assert_not_null(f, "no nginx access log");
	char line[2048];
	unsigned n = 0;
	char st[16];
	snprintf(st, sizeof(st), "\" %s ", status);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, st) && strstr(line, what))
			n++;
	fclose(f);
	return n;
}

struct obj {
	const char *name;
	uint64_t size;
	bool give_size; /* in the manifest; otherwise the daemon HEADs it */
};

static const struct obj objs[] = {
	{ "empty.bin", 0, true },
	{ "one.bin", 1, false },
	{ "small.bin", 100 * 1024 + 7, true },
	{ "sub/dir/mid.bin", 3 * 1024 * 1024 + 1, false },
	{ "large.bin", 12 * 1024 * 1024 + 4097, true }, /* 13 parts of 1 MiB */
	{ "large2.bin", 9 * 1024 * 1024, false },	/* exactly 9 parts */
};
#define NOBJ (sizeof(objs) / sizeof(objs[0]))

static const char *write_site(void)
{
	const char *www = th_fmt("%s/www", th_dir);
	for (size_t i = 0; i < NOBJ; i++)
		cr_assert_eq(
		    th_write_file(th_fmt("%s/%s", www, objs[i].name), 100 + i, objs[i].size), 0,
		    "cannot write %s", objs[i].name);
	return www;
}

static const char *write_manifest(const char *name, const char *extra)
{
	char text[8192] = "# http objects, some with sizes, some to be HEADed\n";
	size_t l = strlen(text);
	for (size_t i = 0; i < NOBJ; i++) {
		if (objs[i].give_size)
			l += (size_t)snprintf(text + l, sizeof(text) - l, "%s/%s %llu\n", ng.base,
					      objs[i].name, (unsigned long long)objs[i].size);
		else
			l += (size_t)snprintf(text + l, sizeof(text) - l, "  %s/%s\n\n", ng.base,
					      objs[i].name);
	}
	if (extra)
		snprintf(text + l, sizeof(text) - l, "%s", extra);
	const char *path = th_fmt("%s/%s", th_dir, name);
	cr_assert_eq(th_write_text(path, text), 0);
	return th_fmt("file://%s", path);
}

Test(http_e2e, manifest_ranged_parts_byte_identical, .init = setup, .fini = teardown, .timeout = 60)
{
	NEED_NGINX();
	const char *www = write_site();
	cr_assert_eq(th_nginx_start(&ng, www), 0, "nginx did not start");
	const char *args[] = { "--part-size", "1M", "-m", "256M", NULL };
	cr_assert_eq(th_stokerd_start(&d, args, NULL), 0, "stokerd did not start");

	const char *uri = write_manifest("http.manifest", NULL);
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, uri, STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", uri, stk_strerror(r), stk_errmsg());
	cr_assert_eq(stk_dataset_count(ds), NOBJ);
	uint64_t total = 0;
	for (size_t i = 0; i < NOBJ; i++) {
		const char *key;
		uint64_t size;
		cr_assert_eq(stk_dataset_object(ds, i, &key, &size), 0);
		/* A manifest keeps its order, and its keys are the URLs. */
		const char *want = th_fmt("%s/%s", ng.base, objs[i].name);
		cr_assert_str_eq(key, want);
		cr_assert_eq(size, objs[i].size, "%s: size %llu, want %llu (%s)", key,
			     (unsigned long long)size, (unsigned long long)objs[i].size,
			     objs[i].give_size ? "from the manifest" : "from a HEAD");
		total += objs[i].size;
	}
	cr_assert_eq(stk_dataset_bytes(ds), total);

	/* Backwards, so the large objects are demand misses as well as the small ones. */
	for (size_t i = NOBJ; i-- > 0;)
		check_object(ds, i, 100 + i, objs[i].size);

	/* The large objects came as 1 MiB ranged parts: 13 + 9 answers 206. */
	unsigned parts_large = access_count("206", "GET /large.bin ");
	unsigned parts_large2 = access_count("206", "GET /large2.bin ");
	cr_expect_eq(parts_large, 13, "large.bin: %u ranged GETs answered 206, want 13",
		     parts_large);
	cr_expect_eq(parts_large2, 9, "large2.bin: %u ranged GETs answered 206, want 9",
		     parts_large2);
	/* Each part's Range, exactly once; the last one short. */
	for (uint64_t off = 0; off < objs[4].size; off += 1024 * 1024) {
		uint64_t end =
		    off + 1024 * 1024 < objs[4].size ? off + 1024 * 1024 - 1 : objs[4].size - 1;
		const char *range = th_fmt("range=\"bytes=%llu-%llu\"", (unsigned long long)off,
					   (unsigned long long)end);
		cr_expect_eq(
		    access_count("206", th_fmt("GET /large.bin HTTP/1.1\" 206 %llu %s",
					       (unsigned long long)(end - off + 1), range)),
		    1, "large.bin: no single 206 for %s", range);
	}
	/* Sizes not in the manifest were asked for with HEAD. */
	cr_expect_geq(access_count("200", "HEAD /one.bin "), 1, "one.bin was not HEADed");

	/* Again: now from the cache, no new requests. */
	unsigned before = access_count("20", "GET ");
	for (size_t i = 0; i < NOBJ; i++)
		check_object(ds, i, 100 + i, objs[i].size);
	cr_expect_eq(access_count("20", "GET "), before, "resident objects were fetched again");

	struct stk_stats st = { .size = sizeof(st) };
	cr_assert_eq(stk_stats(d.c, &st), 0);
	cr_expect_eq(st.fetch_errors, 0);
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

Test(http_e2e, missing_url_is_enoent_naming_it, .init = setup, .fini = teardown, .timeout = 60)
{
	NEED_NGINX();
	const char *www = write_site();
	cr_assert_eq(th_nginx_start(&ng, www), 0, "nginx did not start");
	const char *args[] = { "--part-size", "1M", "--retries", "2", NULL };
	cr_assert_eq(th_stokerd_start(&d, args, NULL), 0, "stokerd did not start");

	/* Without a size the daemon HEADs it while opening: the open fails. */
	const char *gone = th_fmt("%s/no/such/object.bin", ng.base);
	const char *uri = write_manifest("nosize.manifest", th_fmt("%s\n", gone));
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, uri, STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, -ENOENT, "open of a manifest naming a missing URL: %d (%s), want -ENOENT",
		     r, stk_strerror(r));
	cr_expect(strstr(stk_errmsg(), gone), "the message does not name %s: \"%s\"", gone,
		  stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "404"), "the message does not say 404: \"%s\"",
		  stk_errmsg());

	/* With a size it opens; the get fails, names it, and the rest is still served. */
	const char *gone2 = th_fmt("%s/also/missing.bin", ng.base);
	uri = write_manifest("sized.manifest", th_fmt("%s 5000\n", gone2));
	r = stk_dataset_open(d.c, uri, STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", uri, stk_strerror(r), stk_errmsg());
	size_t idx;
	cr_assert_eq(stk_dataset_find(ds, gone2, &idx), 0);
	struct stk_view v;
	r = stk_get(ds, idx, &v);
	cr_assert_eq(r, -ENOENT, "get of a missing URL: %d (%s), want -ENOENT", r, stk_strerror(r));
	cr_expect(strstr(stk_errmsg(), gone2), "the message does not name %s: \"%s\"", gone2,
		  stk_errmsg());
	/* A 404 is not retried. */
	cr_expect_eq(access_count("404", "GET /also/missing.bin "), 1, "a 404 was asked %u times",
		     access_count("404", "GET /also/missing.bin "));
	/* And a later get asks again (failures are not cached), still -ENOENT. */
	r = stk_get(ds, idx, &v);
	cr_expect_eq(r, -ENOENT);
	for (size_t i = 0; i < NOBJ; i++)
		check_object(ds, i, 100 + i, objs[i].size);
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

Test(http_e2e, single_url_dataset, .init = setup, .fini = teardown, .timeout = 60)
{
	NEED_NGINX();
	const char *www = write_site();
	cr_assert_eq(th_nginx_start(&ng, www), 0, "nginx did not start");
	const char *args[] = { "--part-size", "1M", NULL };
	cr_assert_eq(th_stokerd_start(&d, args, NULL), 0, "stokerd did not start");

	const char *url = th_fmt("%s/sub/dir/mid.bin", ng.base);
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, url, 0, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", url, stk_strerror(r), stk_errmsg());
	cr_assert_eq(stk_dataset_count(ds), 1);
	const char *key;
	uint64_t size;
	cr_assert_eq(stk_dataset_object(ds, 0, &key, &size), 0);
	cr_expect_str_eq(key, "mid.bin");
	cr_assert_eq(size, objs[3].size);
	check_object(ds, 0, 103, objs[3].size);
	stk_dataset_close(ds);

	/* An HTTP "prefix" cannot be listed: a clear -EINVAL, not a hang. */
	r = stk_dataset_open(d.c, th_fmt("%s/sub/", ng.base), 0, &ds);
	cr_expect_eq(r, -EINVAL, "open of an http:// prefix: %d (%s)", r, stk_strerror(r));
	th_stokerd_finish(&d);
}

/*
 * A warm hands the engine a burst of objects: the first gets the shard's
 * idle connections as ranged parts, and once every connection is busy the
 * rest come whole, one GET each (not 17 parts each).
 */
Test(http_e2e, busy_engine_fetches_whole_objects, .init = setup, .fini = teardown, .timeout = 60)
{
	NEED_NGINX();
	enum { N = 16, SIZE = 1024 * 1024 + 1 };
	const char *www = th_fmt("%s/www", th_dir);
	char text[4096] = "";
	size_t l = 0;
	cr_assert_eq(th_nginx_start(&ng, www), 0, "nginx did not start");
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(th_write_file(th_fmt("%s/burst/%02u.bin", www, i), 500 + i, SIZE), 0);
		l += (size_t)snprintf(text + l, sizeof(text) - l, "%s/burst/%02u.bin %u\n", ng.base,
				      i, (unsigned)SIZE);
	}
	const char *man = th_fmt("%s/burst.manifest", th_dir);
	cr_assert_eq(th_write_text(man, text), 0);
	const char *args[] = {
		"--part-size", "64K", "--http-max-conns", "4", "--http-threads", "1", "-m",
		"256M",	       NULL
	};
	cr_assert_eq(th_stokerd_start(&d, args, NULL), 0, "stokerd did not start");

	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, th_fmt("file://%s", man), STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", man, stk_strerror(r), stk_errmsg());
	cr_assert_eq(stk_warm(ds), 0);
	struct stk_dataset_status st;
	for (int polls = 0;; polls++) {
		cr_assert_eq(stk_dataset_status(ds, &st), 0);
		if (st.warm == STK_WARM_DONE && !st.inflight)
			break;
		cr_assert_lt(polls, 3000, "the warm did not finish in 30 s");
		usleep(10000);
	}
	cr_assert_eq(st.resident, N, "%u of %u objects resident", st.resident, N);
	for (unsigned i = 0; i < N; i++)
		check_object(ds, i, 500 + i, SIZE);
	/*
	 * Stall accounting through the HTTP engine (first bytes stamped on its
	 * threads) and a manifest (an endpoint per object): every get was a hit
	 * the daemon had fetched, so each avoided about a synchronous read, and
	 * never more than its own fetch took.
	 */
	struct stk_stats sts = { .size = sizeof(sts) };
	cr_assert_eq(stk_stats(d.c, &sts), 0);
	cr_expect_eq(sts.waits, N, "%llu waits reported", (unsigned long long)sts.waits);
	cr_expect_eq(sts.stall_fetch_ns, 0, "a resident object's wait counted as fetch stall");
	cr_expect_gt(sts.stall_avoided_ns, 0, "no stall avoided by %u prefetched objects", N);
	cr_expect_leq(sts.stall_avoided_ns, sts.fetch_ns,
		      "avoided %llu ns, more than the fetches took (%llu ns)",
		      (unsigned long long)sts.stall_avoided_ns, (unsigned long long)sts.fetch_ns);
	cr_expect_eq(sts.stall_avoided_model_ns, 0, "every object was fetched here");

	/* 4 parts (the 4 idle connections), then whole objects (plain GETs, no
	 * Range): 19 GETs if no part finished before the burst was handed over,
	 * a few more if some did. */
	unsigned parts = access_count("206", "GET /burst/");
	unsigned whole = access_count("200", "GET /burst/");
	cr_expect_geq(parts + whole, N, "%u GETs for %u objects", parts + whole, N);
	cr_expect_leq(parts + whole, 28,
		      "%u GETs: objects were split although every connection was busy",
		      parts + whole);
	cr_expect_geq(whole, N / 2, "only %u of %u objects came in one GET", whole, N);
	cr_expect_eq(access_count("200", "range=\"bytes"), 0,
		     "a whole object was asked for with Range");
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

/*
 * A manifest whose size is wrong: the whole-object GET brings more bytes than
 * it says (or fewer), which is retried, then reported naming the URL and the
 * sizes; nothing is cached, and the right size is still served.
 */
Test(http_e2e, wrong_manifest_size_is_an_error_naming_it, .init = setup, .fini = teardown,
     .timeout = 60)
{
	NEED_NGINX();
	const char *www = write_site();
	cr_assert_eq(th_nginx_start(&ng, www), 0, "nginx did not start");
	/* --no-follow: each failure counted is one get's (no prefetch fetches them too). */
	const char *args[] = { "--retries", "1", "--no-follow", NULL };
	cr_assert_eq(th_stokerd_start(&d, args, NULL), 0, "stokerd did not start");

	const char *url = th_fmt("%s/%s", ng.base, objs[2].name); /* 100 KiB + 7 */
	/* The same object again under another URI: a manifest may not repeat one. */
	const char *text = th_fmt("%s 1000\n%s?again 200000\n%s/%s %llu\n", url, url, ng.base,
				  objs[3].name, (unsigned long long)objs[3].size);
	const char *man = th_fmt("%s/wrong.manifest", th_dir);
	cr_assert_eq(th_write_text(man, text), 0);
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, th_fmt("file://%s", man), STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", man, stk_strerror(r), stk_errmsg());
	struct stk_view v;
	r = stk_get(ds, 0, &v);
	cr_assert_eq(r, -EIO, "get with a size too small: %d (%s), want -EIO", r, stk_strerror(r));
	cr_expect(strstr(stk_errmsg(), url), "the message does not name %s: \"%s\"", url,
		  stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "longer than the 1000 bytes"), "%s", stk_errmsg());
	r = stk_get(ds, 1, &v);
	cr_assert_eq(r, -EIO, "get with a size too large: %d (%s), want -EIO", r, stk_strerror(r));
	cr_expect(strstr(stk_errmsg(), "truncated body"), "%s", stk_errmsg());
	check_object(ds, 2, 103, objs[3].size);
	struct stk_stats st = { .size = sizeof(st) };
	cr_assert_eq(stk_stats(d.c, &st), 0);
	cr_expect_eq(st.fetch_errors, 2);
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

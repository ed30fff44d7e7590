/* SPDX-License-Identifier: MIT */
/*
 * End to end, s3://: a real stokerd against s3rver 5 (which verifies SigV4),
 * directly or through tests/tools/faultproxy.py, and manifests that mix
 * s3://, http:// (nginx) and file:// objects.
 *
 * Objects are uploaded with unsigned PUTs (s3rver accepts them); what the
 * daemon sends is signed, which the wrong-secret test proves.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_harness.h"

#define MiB	     (1024ull * 1024)
#define KiB	     1024ull
#define SECRET_WRONG "wrongSecret-7f3a9c"

static struct th_s3rver s3;
static struct th_nginx ng;
static struct th_proxy px;
static struct th_daemon d;

static void setup(void)
{
	cr_assert_eq(th_setup("s3"), 0, "cannot make a temporary directory");
}

static void teardown(void)
{
	th_teardown();
}

#define NEED_S3RVER()                                                                              \
	do {                                                                                       \
		const char *why_ = th_s3rver_unavailable();                                        \
		if (why_)                                                                          \
			th_skip(why_);                                                             \
	} while (0)

static void start_s3rver(const char *const *buckets)
{
	NEED_S3RVER();
	cr_assert_eq(th_s3rver_start(&s3, buckets), 0, "s3rver did not start (see above)");
}

/*
 * Starts stokerd talking S3 to endpoint with the given secret key and extra
 * arguments: the endpoint from --s3-endpoint and --s3-addressing path, or
 * with via_env from AWS_ENDPOINT_URL alone (path-style is then the default
 * for a custom endpoint).  HOME and the AWS file variables point into th_dir
 * so that no ~/.aws of the machine running the tests leaks in.
 */
static void start_stokerd_how(const char *endpoint, const char *secret, const char *const *extra,
			      bool via_env)
{
	const char *args[32] = { "-l", "debug" };
	int n = 2;
	if (!via_env) {
		args[n++] = "--s3-endpoint";
		args[n++] = endpoint;
		args[n++] = "--s3-addressing";
		args[n++] = "path";
	}
	for (size_t i = 0; extra && extra[i] && n < 31; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	const char *env[] = {
		"AWS_ACCESS_KEY_ID=S3RVER",
		th_fmt("AWS_SECRET_ACCESS_KEY=%s", secret),
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=",
		via_env ? th_fmt("AWS_ENDPOINT_URL=%s", endpoint) : "AWS_ENDPOINT_URL=",
		"AWS_ENDPOINT_URL_S3=",
		"STOKER_S3_ADDRESSING=",
		th_fmt("AWS_CONFIG_FILE=%s/no-aws-config", th_dir),
		th_fmt("AWS_SHARED_CREDENTIALS_FILE=%s/no-aws-credentials", th_dir),
		th_fmt("HOME=%s", th_dir),
		NULL,
	};
	cr_assert_eq(th_stokerd_start(&d, args, env), 0, "stokerd did not start (see above)");
}

static void start_stokerd(const char *endpoint, const char *secret, const char *const *extra)
{
	start_stokerd_how(endpoint, secret, extra, false);
}

static struct stk_dataset *open_ds(const char *uri, unsigned flags)
{
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, uri, flags, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", uri, stk_strerror(r), stk_errmsg());
	return ds;
}

/* Gets index and checks that it is the generated object (seed, size). */
static void check_object(struct stk_dataset *ds, size_t index, uint64_t seed, uint64_t size)
{
	const char *key = NULL;
	stk_dataset_object(ds, index, &key, NULL);
	struct stk_view v;
	int r = stk_get(ds, index, &v);
	cr_assert_eq(r, 0, "get %zu (%s): %s: %s", index, key, stk_strerror(r), stk_errmsg());
	cr_assert_eq(v.size, size, "%s: %llu bytes delivered, %llu uploaded", key,
		     (unsigned long long)v.size, (unsigned long long)size);
	int64_t at = th_diff(seed, v.data, v.size);
	cr_assert_eq(at, -1, "%s: differs from what was uploaded at byte %lld", key, (long long)at);
	stk_release(&v);
}

static void upload(const char *bucket, const char *key, uint64_t seed, uint64_t size)
{
	const char *url = th_fmt("%s/%s/%s", s3.endpoint, bucket, th_url_path(key));
	long st = th_put(url, seed, size);
	cr_assert_eq(st, 200, "PUT %s: %ld", url, st);
}

static unsigned count_lines(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char line[8192];
	unsigned n = 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, a) && (!b || strstr(line, b)))
			n++;
	fclose(f);
	return n;
}

/* Listing */

#define NMANY 1100

static uint64_t many_size(unsigned i)
{
	return (i * 37u) % 301u; /* 0 for i = 0 */
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

Test(s3_e2e, prefix_listing_pages_past_1000_keys, .init = setup, .fini = teardown, .timeout = 90)
{
	const char *buckets[] = { "listing", NULL };
	start_s3rver(buckets);

	/* Keys unpadded, so S3's order (bytewise) is not the upload order. */
	static char names[NMANY][16];
	static const char *urls[NMANY + 3];
	static uint64_t seeds[NMANY + 3], sizes[NMANY + 3];
	for (unsigned i = 0; i < NMANY; i++) {
		unsigned j = (i * 7919u) % NMANY; /* upload in a scrambled order */
		snprintf(names[j], sizeof(names[j]), "k%u", j);
		urls[i] = strdup(th_fmt("%s/listing/many/%s", s3.endpoint, names[j]));
		seeds[i] = 1000 + j;
		sizes[i] = many_size(j);
	}
	/* Neighbours that the prefix must leave out. */
	urls[NMANY] = strdup(th_fmt("%s/listing/manyx", s3.endpoint));
	urls[NMANY + 1] = strdup(th_fmt("%s/listing/many-not/k1", s3.endpoint));
	urls[NMANY + 2] = strdup(th_fmt("%s/listing/k1", s3.endpoint));
	for (unsigned i = NMANY; i < NMANY + 3; i++) {
		seeds[i] = 7;
		sizes[i] = 10;
	}
	uint64_t t0 = th_now_ms();
	cr_assert_eq(th_put_many(urls, seeds, sizes, NMANY + 3), 0, "upload failed");
	fprintf(stderr, "uploaded %u objects in %llu ms\n", NMANY + 3,
		(unsigned long long)(th_now_ms() - t0));
	for (unsigned i = 0; i < NMANY + 3; i++)
		free((void *)urls[i]);

	/* Through the proxy without faults, for its request log. */
	const char *pargs[] = { "--rate", "0", NULL };
	cr_assert_eq(th_proxy_start(&px, s3.port, pargs), 0, "faultproxy did not start");
	start_stokerd(px.base, "S3RVER", NULL);

	struct stk_dataset *ds = open_ds("s3://listing/many/", 0);
	cr_assert_eq(stk_dataset_count(ds), NMANY, "%zu objects listed below many/, want %u",
		     stk_dataset_count(ds), NMANY);

	const char *sorted[NMANY];
	for (unsigned i = 0; i < NMANY; i++)
		sorted[i] = names[i];
	qsort(sorted, NMANY, sizeof(sorted[0]), by_str);
	uint64_t total = 0;
	for (unsigned i = 0; i < NMANY; i++) {
		const char *key;
		uint64_t size;
		cr_assert_eq(stk_dataset_object(ds, i, &key, &size), 0);
		cr_assert_str_eq(key, sorted[i],
				 "object %u is '%s', want '%s' (S3's order, "
				 "relative to the prefix)",
				 i, key, sorted[i]);
		unsigned j = (unsigned)strtoul(key + 1, NULL, 10);
		cr_assert_eq(size, many_size(j), "%s: size %llu, want %llu", key,
			     (unsigned long long)size, (unsigned long long)many_size(j));
		total += size;
	}
	cr_assert_eq(stk_dataset_bytes(ds), total);

	/* The listing took two pages, the second asked for with the first's token. */
	unsigned lists = count_lines(px.reqlog, "list-type=2", NULL);
	unsigned cont = count_lines(px.reqlog, "list-type=2", "continuation-token=");
	cr_expect_eq(lists, 2, "%u ListObjectsV2 requests, want 2 (1000 + 100 keys)", lists);
	cr_expect_eq(cont, 1, "%u requests carried a continuation token, want 1", cont);

	size_t idx;
	cr_assert_eq(stk_dataset_find(ds, "k1099", &idx), 0);
	cr_assert_str_eq(sorted[idx], "k1099");
	cr_expect_eq(stk_dataset_find(ds, "many/k1099", &idx), -ENOENT,
		     "keys must be relative to the prefix");

	/* A sample, byte for byte: both pages, both ends, the empty one. */
	const char *sample[] = { "k0", "k1", "k10", "k999", "k1000", "k1099", "k555", "k73" };
	for (size_t s = 0; s < sizeof(sample) / sizeof(sample[0]); s++) {
		cr_assert_eq(stk_dataset_find(ds, sample[s], &idx), 0, "%s not listed", sample[s]);
		unsigned j = (unsigned)strtoul(sample[s] + 1, NULL, 10);
		check_object(ds, idx, 1000 + j, many_size(j));
	}
	for (size_t i = 0; i < NMANY; i += 97) {
		const char *key;
		stk_dataset_object(ds, i, &key, NULL);
		unsigned j = (unsigned)strtoul(key + 1, NULL, 10);
		check_object(ds, i, 1000 + j, many_size(j));
	}
	stk_dataset_close(ds);

	/* The prefix without its slash is a prefix too (no object is named "many"). */
	ds = open_ds("s3://listing/many", 0);
	cr_expect_eq(stk_dataset_count(ds), NMANY);
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

/* One large object */

Test(s3_e2e, ranged_parts_of_200mib_object_byte_identical, .init = setup, .fini = teardown,
     .timeout = 120)
{
	const char *buckets[] = { "big", NULL };
	start_s3rver(buckets);
	const uint64_t size = 200 * MiB + 12345; /* the last part is short */
	uint64_t t0 = th_now_ms();
	upload("big", "data/huge.bin", 4242, size);
	fprintf(stderr, "uploaded 200 MiB in %llu ms\n", (unsigned long long)(th_now_ms() - t0));

	/* Through the proxy without faults, to see the ranged GETs. */
	const char *pargs[] = { "--rate", "0", NULL };
	cr_assert_eq(th_proxy_start(&px, s3.port, pargs), 0, "faultproxy did not start");
	const char *extra[] = { "--part-size", "8M", "-m", "320M", NULL };
	start_stokerd(px.base, "S3RVER", extra);
	struct stk_dataset *ds = open_ds("s3://big/data/huge.bin", 0);
	cr_assert_eq(stk_dataset_count(ds), 1);
	const char *key;
	uint64_t got;
	cr_assert_eq(stk_dataset_object(ds, 0, &key, &got), 0);
	cr_expect_str_eq(key, "huge.bin");
	cr_assert_eq(got, size, "size %llu, want %llu", (unsigned long long)got,
		     (unsigned long long)size);

	t0 = th_now_ms();
	check_object(ds, 0, 4242, size);
	fprintf(stderr, "fetched and checked 200 MiB in %llu ms\n",
		(unsigned long long)(th_now_ms() - t0));

	struct stk_stats st = { .size = sizeof(st) };
	cr_assert_eq(stk_stats(d.c, &st), 0);
	cr_expect_eq(st.fetches, 1);
	cr_expect_eq(st.fetch_bytes, size);
	cr_expect_eq(st.fetch_errors, 0);
	/* 26 ranged GETs of 8 MiB, the last one short, each asked for once. */
	cr_expect_eq(count_lines(d.proc.log, "; retry ", NULL), 0, "parts were retried");
	unsigned parts = count_lines(px.reqlog, "GET /big/data/huge.bin", "status=206");
	cr_expect_eq(parts, 26, "%u ranged GETs answered 206, want 26", parts);
	for (uint64_t off = 0; off < size; off += 8 * MiB) {
		uint64_t end = off + 8 * MiB < size ? off + 8 * MiB - 1 : size - 1;
		const char *range = th_fmt("range=bytes=%llu-%llu ", (unsigned long long)off,
					   (unsigned long long)end);
		cr_expect_eq(count_lines(px.reqlog, "GET /big/data/huge.bin", range), 1,
			     "no single GET with %s", range);
	}
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

/* Mixed sizes, many threads on one client */

struct mixed {
	const char *key;
	uint64_t size;
};

static const struct mixed mixed[] = {
	{ "empty.bin", 0 },
	{ "one.bin", 1 },
	{ "small.bin", 100 * KiB + 3 },
	{ "large.bin", 20 * MiB + 5 },
	{ "part-exact.bin", 8 * MiB }, /* exactly two 4 MiB parts */
	{ "dir/nested/obj.bin", 4 * KiB },
	/* Keys SigV4 must encode: spaces, '+', '=', '~', UTF-8. */
	{ "odd name+plus=eq~tilde.bin", 3000 },
	{ "\xc3\xbcnicode/\xc3\x9f.bin", 777 },
};
#define NMIXED (sizeof(mixed) / sizeof(mixed[0]))

struct worker {
	struct stk_dataset *ds;
	size_t idx[NMIXED];
	uint64_t seed_of[NMIXED];
	unsigned id;
	int err;
	char msg[512];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (unsigned round = 0; round < 3 && !w->err; round++) {
		for (size_t k = 0; k < NMIXED && !w->err; k++) {
			size_t m = (k * (w->id + 1) + w->id + round) % NMIXED;
			struct stk_view v;
			int r = stk_get(w->ds, w->idx[m], &v);
			if (r) {
				w->err = r;
				snprintf(w->msg, sizeof(w->msg), "get %s: %s: %s", mixed[m].key,
					 stk_strerror(r), stk_errmsg());
				break;
			}
			int64_t at = th_diff(w->seed_of[m], v.data, v.size);
			if (v.size != mixed[m].size || at != -1) {
				w->err = -EILSEQ;
				snprintf(w->msg, sizeof(w->msg),
					 "%s: %llu bytes (want %llu), first difference at %lld",
					 mixed[m].key, (unsigned long long)v.size,
					 (unsigned long long)mixed[m].size, (long long)at);
			}
			stk_release(&v);
		}
	}
	return NULL;
}

Test(s3_e2e, mixed_sizes_concurrent_gets_byte_identical, .init = setup, .fini = teardown,
     .timeout = 90)
{
	const char *buckets[] = { "mixed", NULL };
	start_s3rver(buckets);
	for (size_t i = 0; i < NMIXED; i++)
		upload("mixed", th_fmt("set/%s", mixed[i].key), 500 + i, mixed[i].size);
	const char *extra[] = { "--part-size", "4M", "-m", "256M", NULL };
	start_stokerd(s3.endpoint, "S3RVER", extra);

	struct stk_dataset *ds = open_ds("s3://mixed/set/", 0);
	cr_assert_eq(stk_dataset_count(ds), NMIXED);
	struct worker w[6];
	memset(w, 0, sizeof(w));
	for (size_t i = 0; i < NMIXED; i++) {
		size_t idx;
		int r = stk_dataset_find(ds, mixed[i].key, &idx);
		cr_assert_eq(r, 0, "'%s' is not in the listing", mixed[i].key);
		uint64_t size;
		stk_dataset_object(ds, idx, NULL, &size);
		cr_assert_eq(size, mixed[i].size, "%s: listed size %llu, want %llu", mixed[i].key,
			     (unsigned long long)size, (unsigned long long)mixed[i].size);
		for (unsigned t = 0; t < 6; t++) {
			w[t].idx[i] = idx;
			w[t].seed_of[i] = 500 + i;
		}
	}
	pthread_t th[6];
	for (unsigned t = 0; t < 6; t++) {
		w[t].ds = ds;
		w[t].id = t;
		cr_assert_eq(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (unsigned t = 0; t < 6; t++)
		pthread_join(th[t], NULL);
	for (unsigned t = 0; t < 6; t++)
		cr_expect_eq(w[t].err, 0, "thread %u: %s", t, w[t].msg);

	/* Each object was fetched once however many threads asked at once. */
	struct stk_stats st = { .size = sizeof(st) };
	cr_assert_eq(stk_stats(d.c, &st), 0);
	cr_expect_eq(st.fetch_errors, 0);
	cr_expect_eq(st.fetches, NMIXED, "%llu fetches for %zu objects",
		     (unsigned long long)st.fetches, NMIXED);

	/* A single object whose key needs encoding, opened by its own URI. */
	struct stk_dataset *one = open_ds("s3://mixed/set/odd name+plus=eq~tilde.bin", 0);
	cr_assert_eq(stk_dataset_count(one), 1);
	check_object(one, 0, 506, 3000);
	stk_dataset_close(one);
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

/* Errors */

Test(s3_e2e, wrong_secret_is_eacces_signature_does_not_match, .init = setup, .fini = teardown,
     .timeout = 60)
{
	const char *buckets[] = { "sec", NULL };
	start_s3rver(buckets);
	upload("sec", "obj.bin", 9, 5000);
	upload("sec", "dir/a.bin", 10, 100);
	/* Through the proxy without faults, to count the requests. */
	const char *pargs[] = { "--rate", "0", NULL };
	cr_assert_eq(th_proxy_start(&px, s3.port, pargs), 0, "faultproxy did not start");
	const char *extra[] = { "--retries", "3", NULL };
	start_stokerd(px.base, SECRET_WRONG, extra);

	/* A single object: HEAD answers 403 without a body; the code must still show. */
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, "s3://sec/obj.bin", 0, &ds);
	cr_assert_eq(r, -EACCES, "open with a wrong secret: %d (%s: %s), want -EACCES", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "s3://sec/obj.bin"), "message does not name the URI: %s",
		  stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "SignatureDoesNotMatch"),
		  "message does not carry S3's code: %s", stk_errmsg());
	cr_expect(!strstr(stk_errmsg(), SECRET_WRONG), "the secret is in the message!");

	/* A listing. */
	r = stk_dataset_open(d.c, "s3://sec/dir/", 0, &ds);
	cr_assert_eq(r, -EACCES, "list with a wrong secret: %d (%s: %s), want -EACCES", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "SignatureDoesNotMatch"), "%s", stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "s3://sec/dir/"), "message does not name the URI: %s",
		  stk_errmsg());

	/* A GET: the manifest gives the size, so the open asks S3 nothing. */
	const char *man = th_fmt("%s/sec.manifest", th_dir);
	cr_assert_eq(th_write_text(man, "s3://sec/obj.bin 5000\n"), 0);
	ds = open_ds(th_fmt("file://%s", man), STK_DS_MANIFEST);
	struct stk_view v;
	r = stk_get(ds, 0, &v);
	cr_assert_eq(r, -EACCES, "get with a wrong secret: %d (%s: %s), want -EACCES", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "SignatureDoesNotMatch"), "%s", stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "s3://sec/obj.bin"), "%s", stk_errmsg());
	/* A 403 is final: not retried.  Two GETs in all: the one after the
	 * HEAD above (to learn S3's error code) and the fetch; neither has a
	 * Range, since both ask for the whole object. */
	unsigned gets = count_lines(px.reqlog, "GET /sec/obj.bin range=- ", NULL);
	cr_expect_eq(gets, 2, "the object's GET was sent %u times, want 1 + 1 (403 is final)",
		     gets);
	cr_expect_eq(count_lines(px.reqlog, "status=403", NULL),
		     count_lines(px.reqlog, "/sec", NULL), "a request was not refused");
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
	cr_expect(!th_file_contains(d.proc.log, SECRET_WRONG), "the secret is in stokerd's log!");
	cr_expect(th_file_contains(d.proc.log, "SignatureDoesNotMatch"),
		  "the log does not say why the requests failed");
}

Test(s3_e2e, missing_key_is_enoent_no_such_key, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *buckets[] = { "miss", NULL };
	start_s3rver(buckets);
	upload("miss", "here.bin", 11, 2048);
	const char *extra[] = { "--retries", "2", NULL };
	start_stokerd(s3.endpoint, "S3RVER", extra);

	/* GET of a missing key (the manifest gives a size): NoSuchKey. */
	const char *man = th_fmt("%s/miss.manifest", th_dir);
	cr_assert_eq(th_write_text(man, "s3://miss/here.bin\ns3://miss/gone/away.bin 100\n"), 0);
	struct stk_dataset *ds = open_ds(th_fmt("file://%s", man), STK_DS_MANIFEST);
	struct stk_view v;
	int r = stk_get(ds, 1, &v);
	cr_assert_eq(r, -ENOENT, "get of a missing key: %d (%s: %s), want -ENOENT", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "s3://miss/gone/away.bin"),
		  "message does not name the URI: %s", stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "NoSuchKey"), "message does not carry S3's code: %s",
		  stk_errmsg());
	/* The daemon goes on serving the dataset. */
	check_object(ds, 0, 11, 2048);
	stk_dataset_close(ds);

	/* Opening a missing key (HEAD 404, then an empty prefix listing). */
	r = stk_dataset_open(d.c, "s3://miss/nothing.bin", 0, &ds);
	cr_assert_eq(r, -ENOENT, "open of a missing key: %d (%s: %s), want -ENOENT", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "s3://miss/nothing.bin"),
		  "message does not name the URI: %s", stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "NoSuchKey"), "message does not carry S3's code: %s",
		  stk_errmsg());

	/* A manifest entry without a size is sized by HEAD at open: the open fails. */
	const char *man2 = th_fmt("%s/miss2.manifest", th_dir);
	cr_assert_eq(th_write_text(man2, "s3://miss/here.bin\ns3://miss/absent.bin\n"), 0);
	r = stk_dataset_open(d.c, th_fmt("file://%s", man2), STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, -ENOENT, "open of a manifest naming a missing key: %d (%s: %s)", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "s3://miss/absent.bin"), "%s", stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "NoSuchKey"), "message does not carry S3's code: %s",
		  stk_errmsg());

	/* A missing bucket. */
	r = stk_dataset_open(d.c, "s3://no-such-bucket/x/", 0, &ds);
	cr_assert_eq(r, -ENOENT, "open in a missing bucket: %d (%s: %s), want -ENOENT", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "NoSuchBucket"), "%s", stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "no-such-bucket"), "%s", stk_errmsg());
	th_stokerd_finish(&d);
}

/* Faults */

#define NFAULT 40

static uint64_t fault_size(unsigned i)
{
	static const uint64_t s[] = { 0,	 1,
				      700,	 64 * KiB,
				      256 * KiB, 256 * KiB + 1,
				      300 * KiB, 1 * MiB + 17,
				      2 * MiB,	 3 * MiB / 2 };
	return s[i % 10] + (i / 10) * 4099;
}

Test(s3_e2e, faults_503_resets_truncations_are_retried, .init = setup, .fini = teardown,
     .timeout = 120)
{
	const char *buckets[] = { "flaky", NULL };
	start_s3rver(buckets);
	static const char *urls[NFAULT];
	uint64_t seeds[NFAULT], sizes[NFAULT], total = 0;
	for (unsigned i = 0; i < NFAULT; i++) {
		urls[i] = strdup(th_fmt("%s/flaky/ds/obj%02u.bin", s3.endpoint, i));
		seeds[i] = 3000 + i;
		sizes[i] = fault_size(i);
		total += sizes[i];
	}
	cr_assert_eq(th_put_many(urls, seeds, sizes, NFAULT), 0, "upload failed");
	for (unsigned i = 0; i < NFAULT; i++)
		free((void *)urls[i]);

	/* A quarter of all requests (listing and HEADs included) fail one way or another. */
	const char *pargs[] = { "--rate", "0.25", "--seed", "20240611", NULL };
	cr_assert_eq(th_proxy_start(&px, s3.port, pargs), 0, "faultproxy did not start");
	/* Few objects in flight and idle connections: every object above
	 * 128 KiB is split into ranged parts, so part retries are exercised. */
	const char *extra[] = { "--part-size",	  "128K", "--retries",	      "12",  "-m", "256M",
				"--max-inflight", "4",	  "--http-max-conns", "128", NULL };
	start_stokerd(px.base, "S3RVER", extra);

	struct stk_dataset *ds = open_ds("s3://flaky/ds/", 0);
	cr_assert_eq(stk_dataset_count(ds), NFAULT);
	cr_assert_eq(stk_dataset_bytes(ds), total);
	uint32_t order[NFAULT];
	for (unsigned i = 0; i < NFAULT; i++)
		order[i] = (i * 17u) % NFAULT;
	cr_assert_eq(stk_plan(ds, order, NFAULT), 0);
	for (unsigned k = 0; k < NFAULT; k++) {
		unsigned i = order[k];
		const char *key;
		stk_dataset_object(ds, i, &key, NULL);
		unsigned j = (unsigned)strtoul(key + 3, NULL, 10);
		check_object(ds, i, 3000 + j, fault_size(j));
	}
	struct stk_stats st = { .size = sizeof(st) };
	cr_assert_eq(stk_stats(d.c, &st), 0);
	cr_expect_eq(st.fetch_errors, 0, "%llu fetches failed despite 12 retries",
		     (unsigned long long)st.fetch_errors);
	stk_dataset_close(ds);

	/* Sizes asked for with HEAD, through the same faults (the manifest's
	 * own read is a file://, so only the HEADs are at risk). */
	char text[4096] = "";
	size_t l = 0;
	for (unsigned i = 0; i < NFAULT; i += 2)
		l += (size_t)snprintf(text + l, sizeof(text) - l, "s3://flaky/ds/obj%02u.bin\n", i);
	const char *man = th_fmt("%s/flaky.manifest", th_dir);
	cr_assert_eq(th_write_text(man, text), 0);
	ds = open_ds(th_fmt("file://%s", man), STK_DS_MANIFEST);
	cr_assert_eq(stk_dataset_count(ds), NFAULT / 2);
	for (unsigned i = 0; i < NFAULT / 2; i++) {
		uint64_t size;
		cr_assert_eq(stk_dataset_object(ds, i, NULL, &size), 0);
		cr_expect_eq(size, fault_size(2 * i), "obj%02u.bin: HEAD said %llu, want %llu",
			     2 * i, (unsigned long long)size,
			     (unsigned long long)fault_size(2 * i));
	}
	stk_dataset_close(ds);
	cr_expect_gt(count_lines(px.reqlog, "HEAD /flaky/ds/", "fault="), 0);

	long reqs = th_proxy_stat(&px, "requests"), inj = th_proxy_stat(&px, "injected");
	fprintf(stderr, "faultproxy: %ld requests, %ld faults injected\n", reqs, inj);
	cr_assert_gt(inj, 0, "the proxy injected no faults: this test proved nothing");
	cr_expect_gt(reqs, 200, "only %ld requests: parts are not small enough", reqs);
	static const char *kinds[] = { "503", "reset", "midbody", "truncate", "long" };
	for (size_t k = 0; k < 5; k++) {
		unsigned n = count_lines(px.reqlog, th_fmt("fault=%s ", kinds[k]), NULL);
		cr_expect_gt(n, 0, "no '%s' fault was injected", kinds[k]);
	}
	/*
	 * Every 503, midbody reset or truncation of an object GET cost the daemon
	 * one retry, which its debug log records.  (A reset before any response
	 * byte on a reused connection may instead be retried inside libcurl, and
	 * the listing's retries are not logged: those are not counted.)
	 */
	unsigned must_retry = 0;
	for (size_t k = 0; k < 5; k++)
		if (strcmp(kinds[k], "reset"))
			must_retry +=
			    count_lines(px.reqlog, "GET /flaky/ds/", th_fmt("fault=%s ", kinds[k]));
	unsigned retries = count_lines(d.proc.log, "; retry ", NULL);
	cr_expect_geq(retries, must_retry, "stokerd logged %u retries for %u faulted GETs", retries,
		      must_retry);
	cr_expect_gt(must_retry, 0);
	th_stokerd_finish(&d);
}

/* Exactly: each kind of fault once, then success; then too many faults. */
Test(s3_e2e, fault_first_n_each_kind_retried_once, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *buckets[] = { "exact", NULL };
	start_s3rver(buckets);
	upload("exact", "one.bin", 77, 1 * MiB);
	/*
	 * The first 5 GETs of one.bin fail: 503, reset, midbody, truncate, long.
	 * It comes as two ranged parts of 512 KiB ("long" needs a Range: a body
	 * longer than asked for is a 206 longer than its range).
	 */
	const char *pargs[] = { "--fault-first", "5", "--match", "GET /exact/one.bin", NULL };
	cr_assert_eq(th_proxy_start(&px, s3.port, pargs), 0, "faultproxy did not start");
	const char *extra[] = { "--part-size", "512K", "--retries", "5", NULL };
	start_stokerd(px.base, "S3RVER", extra);

	const char *man = th_fmt("%s/exact.manifest", th_dir);
	cr_assert_eq(th_write_text(man, "s3://exact/one.bin 1048576\n"), 0);
	struct stk_dataset *ds = open_ds(th_fmt("file://%s", man), STK_DS_MANIFEST);
	check_object(ds, 0, 77, 1 * MiB);
	stk_dataset_close(ds);
	cr_expect_eq(th_proxy_stat(&px, "injected"), 5);
	unsigned gets = count_lines(px.reqlog, "GET /exact/one.bin", NULL);
	cr_expect_eq(gets, 7, "%u GETs of one.bin, want 5 faulted + 2", gets);
	static const char *kinds[] = { "503", "reset", "midbody", "truncate", "long" };
	for (size_t k = 0; k < 5; k++)
		cr_expect_eq(
		    count_lines(px.reqlog, "GET /exact/one.bin", th_fmt("fault=%s ", kinds[k])), 1,
		    "fault %s was not injected once", kinds[k]);
	cr_expect_eq(count_lines(px.reqlog, "GET /exact/one.bin", "fault=-"), 2);
	th_stokerd_finish(&d);
}

Test(s3_e2e, retries_exhausted_is_eio_naming_the_uri, .init = setup, .fini = teardown,
     .timeout = 60)
{
	const char *buckets[] = { "exact", NULL };
	start_s3rver(buckets);
	upload("exact", "two.bin", 78, 300 * KiB);
	const char *pargs[] = { "--fault-first",      "100", "--kinds", "503", "--match",
				"GET /exact/two.bin", NULL };
	cr_assert_eq(th_proxy_start(&px, s3.port, pargs), 0, "faultproxy did not start");
	const char *extra[] = { "--retries", "2", NULL };
	start_stokerd(px.base, "S3RVER", extra);

	const char *man = th_fmt("%s/two.manifest", th_dir);
	cr_assert_eq(th_write_text(man, "s3://exact/two.bin 307200\n"), 0);
	struct stk_dataset *ds = open_ds(th_fmt("file://%s", man), STK_DS_MANIFEST);
	struct stk_view v;
	int r = stk_get(ds, 0, &v);
	cr_assert_eq(r, -EIO, "get after every attempt answered 503: %d (%s: %s), want -EIO", r,
		     stk_strerror(r), stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "s3://exact/two.bin"), "%s", stk_errmsg());
	cr_expect(strstr(stk_errmsg(), "503"), "the message does not say 503: %s", stk_errmsg());
	unsigned gets = count_lines(px.reqlog, "GET /exact/two.bin", NULL);
	cr_expect_eq(gets, 3, "%u attempts with --retries 2, want 3", gets);
	struct stk_dataset_status dst;
	cr_assert_eq(stk_dataset_status(ds, &dst), 0);
	cr_expect_eq(dst.failed, 1);
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

/* Manifests that mix schemes */

Test(s3_e2e, manifest_mixing_s3_http_file, .init = setup, .fini = teardown, .timeout = 90)
{
	const char *why = th_nginx_unavailable();
	if (why)
		th_skip(why);
	const char *buckets[] = { "mix", NULL };
	start_s3rver(buckets);
	upload("mix", "a/s3-small.bin", 1, 5000);
	upload("mix", "a/s3-large.bin", 2, 9 * MiB + 1);
	upload("mix", "a/s3-empty.bin", 3, 0);
	const char *www = th_fmt("%s/www", th_dir);
	cr_assert_eq(th_write_file(th_fmt("%s/h/web-small.bin", www), 4, 4096), 0);
	cr_assert_eq(th_write_file(th_fmt("%s/h/web-large.bin", www), 5, 5 * MiB + 3), 0);
	const char *files = th_fmt("%s/files", th_dir);
	cr_assert_eq(th_write_file(th_fmt("%s/f-small.bin", files), 6, 1), 0);
	cr_assert_eq(th_write_file(th_fmt("%s/f-large.bin", files), 7, 6 * MiB), 0);
	cr_assert_eq(th_nginx_start(&ng, www), 0, "nginx did not start");
	/* This one finds its endpoint in AWS_ENDPOINT_URL. */
	const char *extra[] = { "--part-size", "2M", "-m", "256M", NULL };
	start_stokerd_how(s3.endpoint, "S3RVER", extra, true);

	struct {
		const char *uri;
		uint64_t seed, size;
		bool sized;
	} e[] = {
		{ "s3://mix/a/s3-small.bin", 1, 5000, true },
		{ th_fmt("%s/h/web-small.bin", ng.base), 4, 4096, false },
		{ th_fmt("file://%s/f-small.bin", files), 6, 1, true },
		{ "s3://mix/a/s3-large.bin", 2, 9 * MiB + 1, false },
		{ th_fmt("%s/h/web-large.bin", ng.base), 5, 5 * MiB + 3, true },
		{ th_fmt("file://%s/f-large.bin", files), 7, 6 * MiB, false },
		{ "s3://mix/a/s3-empty.bin", 3, 0, false },
	};
	size_t n = sizeof(e) / sizeof(e[0]);
	char text[8192] = "# s3, http and file objects in one dataset\n";
	size_t l = strlen(text);
	for (size_t i = 0; i < n; i++) {
		if (e[i].sized)
			l += (size_t)snprintf(text + l, sizeof(text) - l, "%s %llu\n", e[i].uri,
					      (unsigned long long)e[i].size);
		else
			l += (size_t)snprintf(text + l, sizeof(text) - l, "%s\n", e[i].uri);
	}

	/* The same manifest, itself read over each scheme. */
	cr_assert_eq(th_write_text(th_fmt("%s/mixed.manifest", th_dir), text), 0);
	cr_assert_eq(th_write_text(th_fmt("%s/mixed.manifest", www), text), 0);
	long st = th_put_text(th_fmt("%s/mix/mixed.manifest", s3.endpoint), text);
	cr_assert_eq(st, 200, "cannot upload the manifest to s3rver: %ld", st);
	const char *where[] = {
		th_fmt("file://%s/mixed.manifest", th_dir),
		th_fmt("%s/mixed.manifest", ng.base),
		"s3://mix/mixed.manifest",
	};
	for (size_t w = 0; w < 3; w++) {
		struct stk_dataset *ds = open_ds(where[w], STK_DS_MANIFEST);
		cr_assert_eq(stk_dataset_count(ds), n, "%s: %zu objects, want %zu", where[w],
			     stk_dataset_count(ds), n);
		for (size_t i = 0; i < n; i++) {
			const char *key;
			uint64_t size;
			cr_assert_eq(stk_dataset_object(ds, i, &key, &size), 0);
			cr_assert_str_eq(key, e[i].uri, "%s: entry %zu", where[w], i);
			cr_assert_eq(size, e[i].size, "%s: %s: size %llu, want %llu", where[w], key,
				     (unsigned long long)size, (unsigned long long)e[i].size);
		}
		for (size_t i = n; i-- > 0;)
			check_object(ds, i, e[i].seed, e[i].size);
		stk_dataset_close(ds);
	}
	/* S3 credentials went to the S3 endpoint only: nothing signed reached nginx. */
	cr_assert_eq(th_nginx_sync(&ng), 0, "nginx's access log is not being written");
	const char *alog = ng.access_log;
	cr_assert(th_file_contains(alog, "GET /h/web-large.bin"), "nginx logged no GETs");
	cr_expect(!th_file_contains(alog, "AWS4-HMAC-SHA256"), "nginx got an S3 signature");
	cr_expect(!th_file_contains(alog, "S3RVER"), "nginx got the S3 access key");
	th_stokerd_finish(&d);
}

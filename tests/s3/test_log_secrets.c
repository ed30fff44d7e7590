/* SPDX-License-Identifier: MIT */
/*
 * End to end, the log: a real stokerd with --log-format json --log-level
 * debug, credentials with a session token, against s3rver: listings, gets,
 * a missing key, a signed-looking http:// URL that fails, and requests
 * refused for a wrong secret.  Afterwards every line of its stderr must be a
 * JSON object with time, level and component, and no secret may be in the
 * log: not the secret key, not the session token, not a signature.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_harness.h"

/* s3rver knows one key pair, S3RVER / S3RVER; it does not check tokens. */
#define KEY_ID	     "S3RVER"
#define SECRET_GOOD  "S3RVER"
#define SECRET_WRONG "wrongSecret-LogTest-5b1f0e9a"
#define TOKEN	     "FwoGZXIvYXdzELT0kenLogTest//////////wEaDPq9r7Zs+3Tok3nQ=="
#define TOKEN_URL    "IQoJb3JpZ2luX2VjELTokenInURL"
#define SIG_URL	     "7d5b3e0c9a1f4b2e8d6c0a9f3e2d1c4b5a6978f0e1d2c3b4a5968778695a4b3c"
#define CRED_URL     "AKIALOGTESTURLKEY"

static struct th_s3rver s3;
static struct th_daemon d;

static void setup(void)
{
	cr_assert_eq(th_setup("logsec"), 0, "cannot make a temporary directory");
}

static void teardown(void)
{
	th_teardown();
}

static void start_s3rver(const char *const *buckets)
{
	const char *why = th_s3rver_unavailable();
	if (why)
		th_skip(why);
	cr_assert_eq(th_s3rver_start(&s3, buckets), 0, "s3rver did not start (see above)");
}

/* stokerd logging JSON at debug, with these credentials and a session token. */
static void start_stokerd(const char *secret)
{
	const char *args[] = { "--log-format",
			       "json",
			       "--log-level",
			       "debug",
			       "--s3-endpoint",
			       s3.endpoint,
			       "--s3-addressing",
			       "path",
			       "--retries",
			       "1",
			       NULL };
	const char *env[] = {
		"AWS_ACCESS_KEY_ID=" KEY_ID,
		th_fmt("AWS_SECRET_ACCESS_KEY=%s", secret),
		"AWS_SESSION_TOKEN=" TOKEN,
		"AWS_PROFILE=",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=",
		"AWS_ENDPOINT_URL=",
		"AWS_ENDPOINT_URL_S3=",
		"STOKER_S3_ADDRESSING=",
		"STOKER_LOG_FORMAT=",
		"STOKER_LOG_LEVEL=",
		th_fmt("AWS_CONFIG_FILE=%s/no-aws-config", th_dir),
		th_fmt("AWS_SHARED_CREDENTIALS_FILE=%s/no-aws-credentials", th_dir),
		th_fmt("HOME=%s", th_dir),
		NULL,
	};
	cr_assert_eq(th_stokerd_start(&d, args, env), 0,
		     "stokerd did not start (see above; does it know --log-format?)");
}

static void upload(const char *key, uint64_t seed, uint64_t size)
{
	const char *url = th_fmt("%s/logsec/%s", s3.endpoint, th_url_path(key));
	long st = th_put(url, seed, size);
	cr_assert_eq(st, 200, "PUT %s: %ld", url, st);
}

static void check_object(struct stk_dataset *ds, size_t index, uint64_t seed, uint64_t size)
{
	struct stk_view v;
	int r = stk_get(ds, index, &v);
	cr_assert_eq(r, 0, "get %zu: %s: %s", index, stk_strerror(r), stk_errmsg());
	cr_assert_eq(v.size, size, "object %zu: %llu bytes, want %llu", index,
		     (unsigned long long)v.size, (unsigned long long)size);
	cr_assert_eq(th_diff(seed, v.data, v.size), -1, "object %zu differs", index);
	stk_release(&v);
}

static bool matches(const char *re, const char *s)
{
	regex_t r;
	cr_assert_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0, "bad regex %s", re);
	bool m = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return m;
}

struct seen {
	unsigned lines, debug;
	bool comp_s3, comp_stokerd;
};

/*
 * Every line of the log is one JSON object with a time, a level, a
 * component, and a msg or an event.  No secret is anywhere in the file.
 */
static struct seen check_log(const char *const *secrets)
{
	struct seen s = { 0 };
	size_t len;
	char *log = th_slurp(d.proc.log, &len);
	cr_assert_not_null(log, "cannot read %s", d.proc.log);
	cr_assert_gt(len, 0, "stokerd wrote no log");
	cr_expect_eq(log[len - 1], '\n', "the log does not end with a whole line");
	bool leaked = false;
	for (size_t i = 0; secrets[i]; i++) {
		bool in = strstr(log, secrets[i]) != NULL;
		cr_expect(!in, "the log holds the secret '%s'", secrets[i]);
		leaked |= in;
	}
	/* A SigV4 signature, wherever it came from, is 64 hex digits. */
	bool sig = matches("[Ss]ignature=[0-9a-fA-F]{8}", log);
	bool hex = matches("[0-9a-f]{64}", log);
	cr_expect(!sig, "a signature is in the log");
	cr_expect(!hex, "64 hex digits (a signature?) in the log");
	if (leaked || sig || hex)
		th_proc_dump(&d.proc, 8000);

	char *line = log;
	for (char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = 0;
		s.lines++;
		json_error_t e;
		json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &e);
		cr_assert_not_null(j, "line %u is not JSON (%s): %s", s.lines, e.text, line);
		cr_assert(json_is_object(j), "line %u is not an object: %s", s.lines, line);
		const char *t = json_string_value(json_object_get(j, "time"));
		const char *lv = json_string_value(json_object_get(j, "level"));
		const char *c = json_string_value(json_object_get(j, "component"));
		cr_assert(t && matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$", t),
			  "line %u: no time: %s", s.lines, line);
		cr_assert(lv && (!strcmp(lv, "error") || !strcmp(lv, "warn") ||
				 !strcmp(lv, "info") || !strcmp(lv, "debug")),
			  "line %u: no level: %s", s.lines, line);
		cr_assert(c && *c, "line %u: no component: %s", s.lines, line);
		cr_assert(json_is_string(json_object_get(j, "msg")) ||
			      json_is_string(json_object_get(j, "event")),
			  "line %u: neither msg nor event: %s", s.lines, line);
		s.debug += !strcmp(lv, "debug");
		s.comp_s3 |= !strcmp(c, "s3");
		s.comp_stokerd |= !strcmp(c, "stokerd");
		json_decref(j);
	}
	cr_expect_eq(*line, 0, "a partial line at the end of the log");
	free(log);
	return s;
}

/*
 * A URL shaped like a presigned S3 URL, pointed at s3rver: s3rver checks
 * its query signature and refuses it, so the URL ends up in error lines.
 */
static const char *signed_url(const char *key)
{
	return th_fmt("%s/logsec/%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" CRED_URL
		      "%%2F20261201%%2Fus-east-1%%2Fs3%%2Faws4_request&X-Amz-Date=20261201T000000Z"
		      "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=" TOKEN_URL
		      "&X-Amz-Signature=" SIG_URL,
		      s3.endpoint, key);
}

Test(log_secrets, json_log_of_lists_gets_and_failures_holds_no_secret, .init = setup,
     .fini = teardown, .timeout = 60)
{
	const char *buckets[] = { "logsec", NULL };
	start_s3rver(buckets);
	upload("data/a.bin", 1, 3000);
	upload("data/b.bin", 2, 70000);
	upload("data/sub/c.bin", 3, 0);
	start_stokerd(SECRET_GOOD);

	/* A listing and gets, signed with the session token. */
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, "s3://logsec/data/", 0, &ds);
	cr_assert_eq(r, 0, "open s3://logsec/data/: %s: %s", stk_strerror(r), stk_errmsg());
	cr_assert_eq(stk_dataset_count(ds), 3);
	size_t idx;
	cr_assert_eq(stk_dataset_find(ds, "a.bin", &idx), 0);
	check_object(ds, idx, 1, 3000);
	cr_assert_eq(stk_dataset_find(ds, "b.bin", &idx), 0);
	check_object(ds, idx, 2, 70000);
	cr_assert_eq(stk_dataset_find(ds, "sub/c.bin", &idx), 0);
	check_object(ds, idx, 3, 0);
	stk_dataset_close(ds);

	/* A missing key (404), and a signed URL s3rver refuses. */
	const char *man = th_fmt("%s/log.manifest", th_dir);
	cr_assert_eq(th_write_text(man, th_fmt("s3://logsec/gone.bin 100\n%s 3000\n",
					       signed_url("data/a.bin"))),
		     0);
	ds = NULL;
	r = stk_dataset_open(d.c, th_fmt("file://%s", man), STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", man, stk_strerror(r), stk_errmsg());
	struct stk_view v;
	r = stk_get(ds, 0, &v);
	cr_assert_eq(r, -ENOENT, "get of a missing key: %d (%s: %s)", r, stk_strerror(r),
		     stk_errmsg());
	r = stk_get(ds, 1, &v);
	cr_assert_neq(r, 0, "s3rver served a URL with a made-up signature");
	stk_dataset_close(ds);
	r = stk_dataset_open(d.c, "s3://logsec/nothing.bin", 0, &ds);
	cr_assert_eq(r, -ENOENT, "open of a missing key: %d (%s)", r, stk_strerror(r));
	th_stokerd_finish(&d);

	const char *secrets[] = { TOKEN, SIG_URL, TOKEN_URL, CRED_URL, KEY_ID, NULL };
	struct seen s = check_log(secrets);
	cr_expect_geq(s.lines, 5, "only %u lines", s.lines);
	cr_expect_gt(s.debug, 0, "no debug line: was --log-level debug taken?");
	cr_expect(s.comp_s3, "no line from the s3 component");
	cr_expect(s.comp_stokerd, "no line from the stokerd component");
	cr_expect(th_file_contains(d.proc.log, "X-Amz-Signature=REDACTED"),
		  "the signed URL's failure is not in the log, redacted");
	cr_expect(th_file_contains(d.proc.log, "gone.bin"), "the 404 is not in the log");
}

Test(log_secrets, json_log_of_refused_requests_holds_no_secret, .init = setup, .fini = teardown,
     .timeout = 60)
{
	const char *buckets[] = { "logsec", NULL };
	start_s3rver(buckets);
	upload("obj.bin", 9, 5000);
	upload("dir/a.bin", 10, 100);
	start_stokerd(SECRET_WRONG);

	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, "s3://logsec/obj.bin", 0, &ds);
	cr_assert_eq(r, -EACCES, "open with a wrong secret: %d (%s: %s)", r, stk_strerror(r),
		     stk_errmsg());
	r = stk_dataset_open(d.c, "s3://logsec/dir/", 0, &ds);
	cr_assert_eq(r, -EACCES, "list with a wrong secret: %d (%s: %s)", r, stk_strerror(r),
		     stk_errmsg());
	const char *man = th_fmt("%s/sec.manifest", th_dir);
	cr_assert_eq(th_write_text(man, "s3://logsec/obj.bin 5000\n"), 0);
	r = stk_dataset_open(d.c, th_fmt("file://%s", man), STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", man, stk_strerror(r), stk_errmsg());
	struct stk_view v;
	r = stk_get(ds, 0, &v);
	cr_assert_eq(r, -EACCES, "get with a wrong secret: %d (%s: %s)", r, stk_strerror(r),
		     stk_errmsg());
	stk_dataset_close(ds);
	th_stokerd_finish(&d);

	const char *secrets[] = { SECRET_WRONG, TOKEN, KEY_ID, NULL };
	struct seen s = check_log(secrets);
	cr_expect_gt(s.debug, 0, "no debug line: was --log-level debug taken?");
	cr_expect(th_file_contains(d.proc.log, "SignatureDoesNotMatch"),
		  "the log does not say why the requests failed");
}

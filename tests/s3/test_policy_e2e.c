/* SPDX-License-Identifier: MIT */
/*
 * End to end, the host policy (issue 7, item 9): stokerd never connects to a
 * link-local or cloud metadata address unless --allow-host names the host,
 * and with --allow-host it reaches only the hosts listed, on every request
 * path (single-URL opens, which HEAD; manifests, read whole; fetches; S3
 * listings).
 *
 * Every test that names a link-local or metadata address runs stokerd in an
 * empty network namespace (th_stokerd_start_isolated), so that nothing could
 * leave the machine even if the policy were missing; its /etc/hosts there is
 * the test's, which is how names that resolve to those addresses are tested
 * without real DNS.  Refusals must come at once: the daemons run with many
 * retries, whose backoff alone would take seconds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_harness.h"

/* A refusal is a policy decision, made before any connection: never after retries. */
#define FAST_MS 2000

static struct th_nginx ng;
static struct th_s3rver s3;
static struct th_daemon d;

static void setup(void)
{
	cr_assert_eq(th_setup("policy"), 0, "cannot make a temporary directory");
}

static void teardown(void)
{
	th_teardown();
}

#define NEED(why_fn)                                                                               \
	do {                                                                                       \
		const char *why_ = why_fn();                                                       \
		if (why_)                                                                          \
			th_skip(why_);                                                             \
	} while (0)

/* Names that resolve, inside the daemon's namespace, to forbidden addresses. */
static const char *write_hosts(void)
{
	const char *path = th_fmt("%s/hosts", th_dir);
	cr_assert_eq(th_write_text(path, "127.0.0.1 localhost\n"
					 "169.254.169.254 meta.stoker.test\n"
					 "100.100.100.200 ali.stoker.test\n"
					 "fe80::1 ll6.stoker.test\n"),
		     0);
	return path;
}

/* The environment of a daemon that must read no AWS settings of the machine's. */
static const char *const *aws_env(void)
{
	static const char *env[16];
	const char *e[] = {
		"AWS_ACCESS_KEY_ID=AKIDPOLICYTEST",
		"AWS_SECRET_ACCESS_KEY=policy-test-secret",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=",
		"AWS_ENDPOINT_URL=",
		"AWS_ENDPOINT_URL_S3=",
		"STOKER_S3_ADDRESSING=",
		"STOKER_ALLOW_HOST=",
		th_fmt("AWS_CONFIG_FILE=%s/no-aws-config", th_dir),
		th_fmt("AWS_SHARED_CREDENTIALS_FILE=%s/no-aws-credentials", th_dir),
		th_fmt("HOME=%s", th_dir),
		NULL,
	};
	memcpy(env, e, sizeof(e));
	return env;
}

/* Asserts that the last call failed with want, quickly, with a message holding each of needles. */
static void check_refusal(const char *what, int r, int want, uint64_t t0,
			  const char *const *needles)
{
	uint64_t ms = th_now_ms() - t0;
	cr_assert_eq(r, want, "%s: %d (%s), want %d (%s): \"%s\"", what, r, stk_strerror(r), want,
		     stk_strerror(want), stk_errmsg());
	for (size_t i = 0; needles[i]; i++)
		cr_assert(strstr(stk_errmsg(), needles[i]), "%s: the message lacks \"%s\": \"%s\"",
			  what, needles[i], stk_errmsg());
	cr_assert_lt(ms, FAST_MS, "%s: refused after %llu ms, not at once: retried?", what,
		     (unsigned long long)ms);
}

struct bad_url {
	const char *url;
	const char *says; /* what the refusal says */
};

static const char LL[] = "a link-local/cloud metadata address";

Test(policy_e2e, link_local_and_metadata_refused_without_allow_list, .init = setup,
     .fini = teardown, .timeout = 90)
{
	NEED(th_netns_unavailable);
	const char *hosts = write_hosts();
	const char *args[] = {
		"--retries", "10", "--s3-endpoint", "http://169.254.169.254", "--s3-addressing",
		"path",	     NULL
	};
	cr_assert_eq(th_stokerd_start_isolated(&d, hosts, args, aws_env()), 0,
		     "stokerd did not start (see above)");

	static const struct bad_url bad[] = {
		{ "http://169.254.169.254/latest/meta-data/iam/info", "169.254.169.254 is a " },
		{ "http://[fe80::1]/x", "fe80::1 is a " },
		{ "http://100.100.100.200/x", "100.100.100.200 is a " },
		{ "http://192.0.0.192/x", "192.0.0.192 is a " },
		{ "http://[fd00:ec2::254]/x", "fd00:ec2::254 is a " },
		{ "http://[::ffff:169.254.169.254]/x", "::ffff:169.254.169.254 is a " },
		{ "http://169.254.1.2:8080/x", "169.254.1.2 is a " },
		{ "https://169.254.169.254/x", "169.254.169.254 is a " },
		/* Names: the address curl is about to connect to is what is checked. */
		{ "http://meta.stoker.test/latest/meta-data/x",
		  "meta.stoker.test resolved to 169.254.169.254, " },
		{ "http://ali.stoker.test/x", "ali.stoker.test resolved to 100.100.100.200, " },
		{ "http://ll6.stoker.test/x", "ll6.stoker.test resolved to fe80::1, " },
	};
	const size_t nbad = sizeof(bad) / sizeof(bad[0]);
	char manifest[4096] = "";
	size_t l = 0;
	struct stk_dataset *ds = NULL;

	/* A single URL: the daemon HEADs it while opening. */
	for (size_t i = 0; i < nbad; i++) {
		const char *needles[] = { bad[i].url, bad[i].says, LL, "--allow-host", NULL };
		uint64_t t0 = th_now_ms();
		int r = stk_dataset_open(d.c, bad[i].url, 0, &ds);
		check_refusal(th_fmt("open %s", bad[i].url), r, -EACCES, t0, needles);
		l += (size_t)snprintf(manifest + l, sizeof(manifest) - l, "%s 4096\n", bad[i].url);
	}

	/* The metadata service's own path, read as a manifest (a whole GET). */
	const char *md = "http://169.254.169.254/latest/meta-data/";
	const char *md_needles[] = { md, "169.254.169.254 is a ", LL, NULL };
	uint64_t t0 = th_now_ms();
	int r = stk_dataset_open(d.c, md, STK_DS_MANIFEST, &ds);
	check_refusal(th_fmt("open manifest %s", md), r, -EACCES, t0, md_needles);

	/* With sizes, a manifest opens; each get is a fetch by the engine, refused. */
	l += (size_t)snprintf(manifest + l, sizeof(manifest) - l, "%s 100\ns3://bucket/key 100\n",
			      md);
	const char *man = th_fmt("%s/bad.manifest", th_dir);
	cr_assert_eq(th_write_text(man, manifest), 0);
	r = stk_dataset_open(d.c, th_fmt("file://%s", man), STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", man, stk_strerror(r), stk_errmsg());
	cr_assert_eq(stk_dataset_count(ds), nbad + 2);
	for (size_t i = 0; i < nbad + 2; i++) {
		const char *url = i < nbad ? bad[i].url : i == nbad ? md : "s3://bucket/key";
		const char *says = i < nbad ? bad[i].says : "169.254.169.254 is a ";
		const char *needles[] = { url, says, LL, "--allow-host", NULL };
		struct stk_view v;
		t0 = th_now_ms();
		r = stk_get(ds, i, &v);
		check_refusal(th_fmt("get %s", url), r, -EACCES, t0, needles);
	}
	stk_dataset_close(ds);

	/* Without sizes, the open HEADs each entry, and fails. */
	man = th_fmt("%s/nosize.manifest", th_dir);
	cr_assert_eq(th_write_text(man, "http://ali.stoker.test/y\n"), 0);
	const char *ns_needles[] = { "http://ali.stoker.test/y", "resolved to 100.100.100.200", LL,
				     NULL };
	t0 = th_now_ms();
	r = stk_dataset_open(d.c, th_fmt("file://%s", man), STK_DS_MANIFEST, &ds);
	check_refusal("open of a manifest without sizes", r, -EACCES, t0, ns_needles);

	/* s3:// goes to its endpoint, here the metadata address: a listing, a HEAD. */
	const char *s3_needles[] = { "s3://bucket/", "169.254.169.254 is a ", LL, NULL };
	t0 = th_now_ms();
	r = stk_dataset_open(d.c, "s3://bucket/prefix/", 0, &ds);
	check_refusal("open s3://bucket/prefix/ (ListObjectsV2)", r, -EACCES, t0, s3_needles);
	t0 = th_now_ms();
	r = stk_dataset_open(d.c, "s3://bucket/one/key.bin", 0, &ds);
	check_refusal("open s3://bucket/one/key.bin (HEAD)", r, -EACCES, t0, s3_needles);
	th_stokerd_finish(&d);
}

/*
 * --allow-host names a host: it is not refused, whatever it resolves to.  In
 * the empty namespace the request then fails as any unreachable one does.
 */
Test(policy_e2e, named_metadata_host_is_not_refused, .init = setup, .fini = teardown, .timeout = 60)
{
	NEED(th_netns_unavailable);
	const char *hosts = write_hosts();
	const char *args[] = { "--allow-host",
			       "169.254.169.254",
			       "--allow-host",
			       "META.stoker.test:80",
			       "--retries",
			       "0",
			       NULL };
	cr_assert_eq(th_stokerd_start_isolated(&d, hosts, args, aws_env()), 0,
		     "stokerd did not start (see above)");
	const char *reached[] = {
		"http://169.254.169.254/latest/meta-data/iam/info",
		"http://169.254.169.254:8080/x", /* "HOST": any port */
		"http://meta.stoker.test/latest/meta-data/x",
	};
	struct stk_dataset *ds = NULL;
	for (size_t i = 0; i < sizeof(reached) / sizeof(reached[0]); i++) {
		int r = stk_dataset_open(d.c, reached[i], 0, &ds);
		cr_assert_eq(r, -EIO, "open %s: %d (%s), want -EIO (no network here): \"%s\"",
			     reached[i], r, stk_strerror(r), stk_errmsg());
		cr_assert(strstr(stk_errmsg(), "Couldn't connect"),
			  "open %s: not a connection error: \"%s\"", reached[i], stk_errmsg());
		cr_assert_null(strstr(stk_errmsg(), "refused"), "open %s: \"%s\"", reached[i],
			       stk_errmsg());
	}
	/* Others are still refused: by the list now. */
	const struct bad_url bad[] = {
		{ "http://100.100.100.200/x", "host 100.100.100.200:80 is not in --allow-host" },
		{ "http://169.254.169.253/x", "host 169.254.169.253:80 is not in --allow-host" },
		{ "http://meta.stoker.test:8080/x", "host meta.stoker.test:8080 is not in " },
		{ "http://stoker.test/x", "host stoker.test:80 is not in --allow-host" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *needles[] = { bad[i].url, bad[i].says, NULL };
		uint64_t t0 = th_now_ms();
		int r = stk_dataset_open(d.c, bad[i].url, 0, &ds);
		check_refusal(th_fmt("open %s", bad[i].url), r, -EACCES, t0, needles);
	}
	th_stokerd_finish(&d);
}

/* Counts lines of nginx's access log holding what. */
static unsigned access_count(const char *what)
{
	cr_assert_eq(th_nginx_sync(&ng), 0, "nginx's access log is not being written");
	FILE *f = fopen(ng.access_log, "re");
	cr_assert_not_null(f, "no nginx access log");
	char line[2048];
	unsigned n = 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

static void check_ok_object(const char *url)
{
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, url, 0, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", url, stk_strerror(r), stk_errmsg());
	struct stk_view v;
	r = stk_get(ds, 0, &v);
	cr_assert_eq(r, 0, "get %s: %s: %s", url, stk_strerror(r), stk_errmsg());
	cr_assert_eq(v.size, 5000);
	cr_assert_eq(th_diff(7, v.data, v.size), -1, "%s: not the object served", url);
	stk_release(&v);
	stk_dataset_close(ds);
}

Test(policy_e2e, allow_list_admits_only_the_hosts_it_names, .init = setup, .fini = teardown,
     .timeout = 60)
{
	NEED(th_nginx_unavailable);
	const char *www = th_fmt("%s/www", th_dir);
	cr_assert_eq(th_write_file(th_fmt("%s/ok.bin", www), 7, 5000), 0);
	const char *names[] = { "refused-a.bin", "refused-b.bin", "refused-c.bin",
				"refused-d.bin", "refused-e.bin", "refused.manifest" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert_eq(th_write_file(th_fmt("%s/%s", www, names[i]), 8, 100), 0);
	cr_assert_eq(th_nginx_start(&ng, www), 0, "nginx did not start");
	int other = ng.port + 1;
	const char *ok = th_fmt("%s/ok.bin", ng.base);
	const char *args[] = { "--allow-host", th_fmt("127.0.0.1:%d", ng.port), "--retries", "10",
			       NULL };
	cr_assert_eq(th_stokerd_start(&d, args, aws_env()), 0, "stokerd did not start");

	check_ok_object(ok);

	/* Another port of the host, and other names of it, fetched by the engine. */
	const struct bad_url bad[] = {
		{ th_fmt("http://127.0.0.1:%d/refused-a.bin", other),
		  th_fmt("host 127.0.0.1:%d is not in --allow-host", other) },
		{ th_fmt("http://localhost:%d/refused-b.bin", ng.port),
		  th_fmt("host localhost:%d is not in --allow-host", ng.port) },
		{ th_fmt("http://[::ffff:127.0.0.1]:%d/refused-c.bin", ng.port),
		  th_fmt(":%d is not in --allow-host", ng.port) },
		{ th_fmt("http://127.0.0.1/refused-d.bin"), "host 127.0.0.1:80 is not in " },
	};
	const size_t nbad = sizeof(bad) / sizeof(bad[0]);
	char text[2048] = "";
	size_t l = 0;
	for (size_t i = 0; i < nbad; i++)
		l += (size_t)snprintf(text + l, sizeof(text) - l, "%s 100\n", bad[i].url);
	snprintf(text + l, sizeof(text) - l, "%s 5000\n", ok);
	const char *man = th_fmt("%s/refused.manifest", th_dir);
	cr_assert_eq(th_write_text(man, text), 0);
	struct stk_dataset *ds = NULL;
	int r = stk_dataset_open(d.c, th_fmt("file://%s", man), STK_DS_MANIFEST, &ds);
	cr_assert_eq(r, 0, "open %s: %s: %s", man, stk_strerror(r), stk_errmsg());
	for (size_t i = 0; i < nbad; i++) {
		const char *needles[] = { bad[i].url, bad[i].says, NULL };
		struct stk_view v;
		uint64_t t0 = th_now_ms();
		r = stk_get(ds, i, &v);
		check_refusal(th_fmt("get %s", bad[i].url), r, -EACCES, t0, needles);
	}
	struct stk_view v;
	r = stk_get(ds, nbad, &v);
	cr_assert_eq(r, 0, "get %s: %s: %s", ok, stk_strerror(r), stk_errmsg());
	stk_release(&v);
	stk_dataset_close(ds);

	/* A single URL (HEAD) and a manifest (GET) on a name the list lacks. */
	const char *single = th_fmt("http://localhost:%d/refused-e.bin", ng.port);
	const char *needles[] = { single,
				  th_fmt("host localhost:%d is not in --allow-host", ng.port),
				  NULL };
	uint64_t t0 = th_now_ms();
	r = stk_dataset_open(d.c, single, 0, &ds);
	check_refusal(th_fmt("open %s", single), r, -EACCES, t0, needles);
	const char *mu = th_fmt("http://localhost:%d/refused.manifest", ng.port);
	const char *mneedles[] = { mu, "is not in --allow-host", NULL };
	t0 = th_now_ms();
	r = stk_dataset_open(d.c, mu, STK_DS_MANIFEST, &ds);
	check_refusal(th_fmt("open manifest %s", mu), r, -EACCES, t0, mneedles);
	/* s3:// to the default AWS endpoint, which the list lacks too. */
	const char *sneedles[] = { "s3://some-bucket/", "amazonaws.com:443 is not in --allow-host",
				   NULL };
	t0 = th_now_ms();
	r = stk_dataset_open(d.c, "s3://some-bucket/prefix/", 0, &ds);
	check_refusal("open s3://some-bucket/prefix/", r, -EACCES, t0, sneedles);
	th_stokerd_finish(&d);

	/* From the environment, comma-separated, a HOST entry: any port of it. */
	const char *env[] = { "STOKER_ALLOW_HOST=example.invalid,127.0.0.1", NULL };
	const char *args2[] = { "--retries", "10", NULL };
	cr_assert_eq(th_stokerd_start(&d, args2, env), 0, "stokerd did not start");
	check_ok_object(ok);
	const char *needles2[] = { th_fmt("host localhost:%d is not in --allow-host", ng.port),
				   NULL };
	t0 = th_now_ms();
	r = stk_dataset_open(d.c, single, 0, &ds);
	check_refusal(th_fmt("open %s", single), r, -EACCES, t0, needles2);
	th_stokerd_finish(&d);

	/* None of the refused URLs reached nginx; the allowed one did. */
	cr_expect_eq(access_count("refused"), 0, "a refused URL was requested from nginx");
	cr_expect_geq(access_count("GET /ok.bin "), 2, "ok.bin was not fetched from nginx");
}

/* With --allow-host, the S3 endpoint is a host like any other: listed, or refused. */
Test(policy_e2e, s3_endpoint_must_be_in_the_allow_list, .init = setup, .fini = teardown,
     .timeout = 90)
{
	NEED(th_s3rver_unavailable);
	const char *buckets[] = { "policy", NULL };
	cr_assert_eq(th_s3rver_start(&s3, buckets), 0, "s3rver did not start (see above)");
	const char *url = th_fmt("%s/policy/ds/a.bin", s3.endpoint);
	long st = th_put(url, 7, 5000);
	cr_assert_eq(st, 200, "PUT %s: %ld", url, st);
	const char *const *env = aws_env();
	static const char *env_s3[16];
	size_t n = 0;
	for (; env[n]; n++)
		env_s3[n] = strncmp(env[n], "AWS_ACCESS_KEY_ID=", 18)
				? strncmp(env[n], "AWS_SECRET_ACCESS_KEY=", 22)
				      ? env[n]
				      : "AWS_SECRET_ACCESS_KEY=S3RVER"
				: "AWS_ACCESS_KEY_ID=S3RVER";
	env_s3[n] = NULL;

	const char *args[] = { "--s3-endpoint",
			       s3.endpoint,
			       "--allow-host",
			       th_fmt("127.0.0.1:%d", s3.port + 1),
			       "--retries",
			       "10",
			       NULL };
	cr_assert_eq(th_stokerd_start(&d, args, env_s3), 0, "stokerd did not start");
	struct stk_dataset *ds = NULL;
	const char *needles[] = { "s3://policy/ds/",
				  th_fmt("host 127.0.0.1:%d is not in --allow-host", s3.port),
				  NULL };
	uint64_t t0 = th_now_ms();
	int r = stk_dataset_open(d.c, "s3://policy/ds/", 0, &ds);
	check_refusal("open s3://policy/ds/", r, -EACCES, t0, needles);
	th_stokerd_finish(&d);
	cr_expect(th_file_contains(d.proc.log, "every s3:// request will be refused"),
		  "stokerd did not warn at start that its S3 endpoint is not allowed");

	const char *args2[] = { "--s3-endpoint", s3.endpoint, "--allow-host",
				th_fmt("127.0.0.1:%d", s3.port), NULL };
	cr_assert_eq(th_stokerd_start(&d, args2, env_s3), 0, "stokerd did not start");
	r = stk_dataset_open(d.c, "s3://policy/ds/", 0, &ds);
	cr_assert_eq(r, 0, "open s3://policy/ds/: %s: %s", stk_strerror(r), stk_errmsg());
	cr_assert_eq(stk_dataset_count(ds), 1);
	struct stk_view v;
	r = stk_get(ds, 0, &v);
	cr_assert_eq(r, 0, "get: %s: %s", stk_strerror(r), stk_errmsg());
	cr_assert_eq(th_diff(7, v.data, v.size), -1);
	stk_release(&v);
	stk_dataset_close(ds);
	th_stokerd_finish(&d);
}

/* A bucket name becomes part of the host or path: nothing but S3's characters passes. */
Test(policy_e2e, bucket_cannot_steer_the_host, .init = setup, .fini = teardown, .timeout = 60)
{
	NEED(th_netns_unavailable);
	const char *hosts = write_hosts();
	const char *args[] = { "--retries", "10", "--s3-addressing", "virtual", NULL };
	cr_assert_eq(th_stokerd_start_isolated(&d, hosts, args, aws_env()), 0,
		     "stokerd did not start (see above)");
	const char *uris[] = { "s3://meta.stoker.test#/key", "s3://x@meta.stoker.test#/key",
			       "s3://meta.stoker.test:80#/key" };
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		struct stk_dataset *ds = NULL;
		const char *needles[] = { uris[i], "bucket name", NULL };
		uint64_t t0 = th_now_ms();
		int r = stk_dataset_open(d.c, uris[i], 0, &ds);
		check_refusal(th_fmt("open %s", uris[i]), r, -EINVAL, t0, needles);
	}
	th_stokerd_finish(&d);
}

/* SPDX-License-Identifier: MIT */
/*
 * Tests of transports/sigv4.c.  Every expected signature below is a published
 * value, not one this code produced:
 *
 * [suite]  The AWS SigV4 test suite (docs.aws.amazon.com/general/latest/gr/
 *          signature-v4-test-suite.html), as AWS ships it in
 *          github.com/awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<name>/
 *          header-signed-request.txt (the Authorization line) and
 *          context.json; the same values are in aws-sdk-js-v3
 *          packages/signature-v4/src/suite.fixture.ts.  Credentials
 *          AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
 *          2015-08-30T12:36:00Z, us-east-1, service "service", host
 *          example.amazonaws.com.  These vectors do not sign
 *          x-amz-content-sha256, hence STK_SIGV4_NO_CONTENT_SHA256.  Only
 *          the cases valid for S3-style signing are used: the path is signed
 *          as sent (the "-unnormalized" variants), the query canonicalised.
 *
 * [s3doc]  AWS S3 API Reference, "Signature Calculations for the Authorization
 *          Header: Transferring Payload in a Single Chunk"
 *          (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html),
 *          section "Examples: Signature Calculations".  Credentials
 *          AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
 *          2013-05-24T00:00:00Z, us-east-1, s3, examplebucket.s3.amazonaws.com.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "transports/sigv4.h"

/* ---- uri_encode ----------------------------------------------------------- */

static const char *enc(const char *s, bool keep_slash)
{
	static char buf[256];
	ssize_t n = stk__sigv4_uri_encode(s, strlen(s), keep_slash, buf, sizeof(buf));

	cr_assert_geq(n, 0);
	cr_assert_eq((size_t)n, strlen(buf));
	return buf;
}

Test(sigv4_uri_encode, space_slash_tilde_and_reserved)
{
	cr_assert_str_eq(enc("a b/c~d", true), "a%20b/c~d");
	cr_assert_str_eq(enc("a b/c~d", false), "a%20b%2Fc~d");
	cr_assert_str_eq(enc("-._~09AZaz", false), "-._~09AZaz");
	cr_assert_str_eq(enc("+=&?%#$@:,;*'()!", true),
			 "%2B%3D%26%3F%25%23%24%40%3A%2C%3B%2A%27%28%29%21");
}

Test(sigv4_uri_encode, utf8_bytes_each_encoded_uppercase)
{
	cr_assert_str_eq(enc("\xc3\xa9t\xc3\xa9", true), "%C3%A9t%C3%A9");
	cr_assert_str_eq(enc("\xe1\x88\xb4", false), "%E1%88%B4");
}

Test(sigv4_uri_encode, length_not_nul_bounds_input)
{
	char out[16];

	cr_assert_eq(stk__sigv4_uri_encode("a\0b", 3, true, out, sizeof(out)), 5);
	cr_assert_str_eq(out, "a%00b");
}

Test(sigv4_uri_encode, too_small_buffer)
{
	char out[8];

	/* "a%20b" is 5 bytes plus the NUL. */
	cr_assert_eq(stk__sigv4_uri_encode("a b", 3, true, out, 6), 5);
	cr_assert_eq(stk__sigv4_uri_encode("a b", 3, true, out, 5), -ENAMETOOLONG);
	cr_assert_eq(strlen(out), 4, "a truncated result is still terminated");
	cr_assert_eq(stk__sigv4_uri_encode("a", 1, true, out, 0), -ENAMETOOLONG);
}

/* ---- canonical query ----------------------------------------------------- */

static const char *cq(const char *q)
{
	static char buf[1024];
	ssize_t n = stk__sigv4_canonical_query(q, buf, sizeof(buf));

	cr_assert_geq(n, 0, "%zd for %s", n, q);
	cr_assert_eq((size_t)n, strlen(buf));
	return buf;
}

Test(sigv4_query, sorts_by_name_then_value)
{
	cr_assert_str_eq(cq("prefix=J&max-keys=2"), "max-keys=2&prefix=J");
	cr_assert_str_eq(cq("a=2&b=0&a=1"), "a=1&a=2&b=0");
	/* Byte order, so upper case sorts first. */
	cr_assert_str_eq(cq("b=1&B=2&a=3"), "B=2&a=3&b=1");
}

Test(sigv4_query, sorts_encoded_names)
{
	/* [suite] get-vanilla-query-order-encoded, canonical query of its
	 * canonical request: '%' sorts before letters once encoded. */
	cr_assert_str_eq(cq("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
			 "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
	/* The same with the name sent raw. */
	cr_assert_str_eq(cq("Param-3=Value3&Param=Value2&\xe1\x88\xb4=Value1"),
			 "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
}

Test(sigv4_query, valueless_params_get_equals)
{
	cr_assert_str_eq(cq("lifecycle"), "lifecycle=");
	cr_assert_str_eq(cq("uploads&prefix="), "prefix=&uploads=");
}

Test(sigv4_query, slash_and_reserved_in_values_are_encoded)
{
	cr_assert_str_eq(cq("prefix=photos/2024/&delimiter=/"),
			 "delimiter=%2F&prefix=photos%2F2024%2F");
	cr_assert_str_eq(cq("list-type=2&prefix=a b/&continuation-token=x+y/z="),
			 "continuation-token=x%2By%2Fz%3D&list-type=2&prefix=a%20b%2F");
	/* [suite] get-vanilla-query-unreserved/query-canonical-request.txt (its
	 * presigned form): the credential's '/' become %2F. */
	cr_assert_str_eq(
	    cq("X-Amz-SignedHeaders=host&X-Amz-Date=20150830T123600Z"
	       "&X-Amz-Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
	       "&X-Amz-Algorithm=AWS4-HMAC-SHA256"),
	    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
	    "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request"
	    "&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host");
}

Test(sigv4_query, decodes_before_encoding_so_it_is_idempotent)
{
	const char *canon = "delimiter=%2F&prefix=a%20b%2F%C3%A9";
	char once[256];

	cr_assert_str_eq(cq("prefix=a%20b%2f%c3%a9&delimiter=%2F"), canon);
	cr_assert_str_eq(cq(canon), canon);
	snprintf(once, sizeof(once), "%s", cq("prefix=a b/\xc3\xa9&delimiter=/"));
	cr_assert_str_eq(once, canon);
	/* A '%' that starts no escape is a literal '%'; '+' is a literal '+'. */
	cr_assert_str_eq(cq("a=%zz&b=%4&c=1+1"), "a=%25zz&b=%254&c=1%2B1");
}

Test(sigv4_query, empty_pieces_and_empty_query)
{
	cr_assert_str_eq(cq("&&a=1&&"), "a=1");
	cr_assert_str_eq(cq(""), "");
	cr_assert_str_eq(cq(NULL), "");
}

Test(sigv4_query, limits)
{
	char q[4 * (STK_SIGV4_MAX_PARAMS + 1) + 1], out[16];
	size_t n = 0;

	for (int i = 0; i <= STK_SIGV4_MAX_PARAMS; i++)
		n += (size_t)snprintf(q + n, sizeof(q) - n, "a=%d&", i % 10);
	cr_assert_eq(stk__sigv4_canonical_query(q, out, sizeof(out)), -E2BIG);
	cr_assert_eq(stk__sigv4_canonical_query("a=1&b=2", out, 7), -ENAMETOOLONG);
	cr_assert_eq(stk__sigv4_canonical_query("a=1&b=2", out, 8), 7);
}

/* ---- [suite] vectors ----------------------------------------------------- */

#define SUITE_CRED                                                                                 \
	"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900,
			 .tm_mon = mo - 1,
			 .tm_mday = d,
			 .tm_hour = h,
			 .tm_min = mi,
			 .tm_sec = s };

	return timegm(&tm);
}

static const struct stk_sigv4_creds suite_creds = {
	.access_key = "AKIDEXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

static struct stk_sigv4_req suite_req(const char *method, const char *path, const char *query)
{
	return (struct stk_sigv4_req){
		.method = method,
		.host = "example.amazonaws.com",
		.path = path,
		.query = query,
		.region = "us-east-1",
		.service = "service",
		.now = utc(2015, 8, 30, 12, 36, 0),
		.flags = STK_SIGV4_NO_CONTENT_SHA256,
	};
}

static void expect_auth(const struct stk_sigv4_req *r, const struct stk_sigv4_creds *c,
			const char *want)
{
	struct stk_sigv4_out out;
	int err = stk__sigv4_sign(r, c, &out);

	cr_assert_eq(err, 0, "sign: %d", err);
	cr_assert_str_eq(out.authorization, want);
}

Test(sigv4_suite, get_vanilla)
{
	struct stk_sigv4_req r = suite_req("GET", "/", NULL);
	struct stk_sigv4_out out;

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	cr_assert_eq(stk__sigv4_sign(&r, &suite_creds, &out), 0);
	cr_assert_str_eq(out.amz_date, "20150830T123600Z");
	cr_assert_str_eq(out.content_sha256, "");
	/* get-vanilla-query: an empty query signs as none.  An empty path is "/". */
	r = suite_req("GET", "", "");
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

Test(sigv4_suite, get_vanilla_empty_query_key)
{
	struct stk_sigv4_req r = suite_req("GET", "/", "Param1=value1");

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
}

Test(sigv4_suite, get_vanilla_query_order_key_case)
{
	struct stk_sigv4_req r = suite_req("GET", "/", "Param2=value2&Param1=value1");

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

Test(sigv4_suite, get_vanilla_query_order_encoded)
{
	struct stk_sigv4_req r =
	    suite_req("GET", "/", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1");

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac");
}

Test(sigv4_suite, get_vanilla_query_unreserved)
{
	const char *u = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char q[160];
	struct stk_sigv4_req r;

	snprintf(q, sizeof(q), "%s=%s", u, u);
	r = suite_req("GET", "/", q);
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

Test(sigv4_suite, get_vanilla_utf8_query)
{
	struct stk_sigv4_req r = suite_req("GET", "/", "\xe1\x88\xb4=bar");

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

Test(sigv4_suite, get_header_key_duplicate)
{
	const char *h[] = { "My-Header1:value2", "My-Header1:value2", "My-Header1:value1", NULL };
	struct stk_sigv4_req r = suite_req("GET", "/", NULL);
	char creq[512];

	r.headers = h;
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;my-header1;x-amz-date, "
		    "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
	cr_assert_gt(stk__sigv4_canonical_request(&r, NULL, creq, sizeof(creq)), 0);
	cr_assert(strstr(creq, "\nmy-header1:value2,value2,value1\n"), "%s", creq);
}

Test(sigv4_suite, get_header_value_trim)
{
	const char *h[] = { "My-Header1: value1", "My-Header2: \"a   b   c\"", NULL };
	struct stk_sigv4_req r = suite_req("GET", "/", NULL);

	r.headers = h;
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
		    "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

Test(sigv4_suite, get_unreserved_path)
{
	struct stk_sigv4_req r = suite_req(
	    "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL);

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

Test(sigv4_suite, get_utf8_path_encoded_by_caller)
{
	char path[32] = "/";
	struct stk_sigv4_req r;

	cr_assert_eq(stk__sigv4_uri_encode("\xe1\x88\xb4", 3, true, path + 1, sizeof(path) - 1), 9);
	r = suite_req("GET", path, NULL);
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

Test(sigv4_suite, get_space_unnormalized)
{
	struct stk_sigv4_req r = suite_req("GET", "/example%20space/", NULL);

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
}

/* S3 signs the path as sent: no merging of slashes, no removal of dot segments. */
Test(sigv4_suite, path_not_normalised)
{
	struct stk_sigv4_req r = suite_req("GET", "//example//", NULL);

	/* get-slashes-unnormalized */
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5");
	/* get-slash-dot-slash-unnormalized */
	r.path = "/./";
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145");
}

Test(sigv4_suite, post_vanilla_and_header_key_sort)
{
	const char *h[] = { "My-Header1:value1", NULL };
	struct stk_sigv4_req r = suite_req("POST", "/", NULL);

	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
	/* post-header-key-sort */
	r.headers = h;
	expect_auth(&r, &suite_creds,
		    SUITE_CRED
		    "SignedHeaders=host;my-header1;x-amz-date, "
		    "Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c");
}

Test(sigv4_suite, session_token_is_signed)
{
	struct stk_sigv4_creds c = suite_creds;
	struct stk_sigv4_req r = suite_req("GET", "/", NULL);

	/* get-vanilla-with-session-token (token from its context.json) */
	c.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
	expect_auth(&r, &c,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date;x-amz-security-token, "
		    "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
	/* post-sts-token/post-sts-header-before (aws-sdk-js-v3 suite.fixture) */
	c.session_token =
	    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAe"
	    "MicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phU"
	    "ZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38x"
	    "Vqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2"
	    "ICCR/oLxBA==";
	r.method = "POST";
	expect_auth(&r, &c,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date;x-amz-security-token, "
		    "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
	/* An empty token is no token. */
	c.session_token = "";
	r.method = "GET";
	expect_auth(&r, &c,
		    SUITE_CRED
		    "SignedHeaders=host;x-amz-date, "
		    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

/* ---- [s3doc] vectors ----------------------------------------------------- */

#define S3_CRED                                                                                    \
	"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "

static const struct stk_sigv4_creds s3_creds = {
	.access_key = "AKIAIOSFODNN7EXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

static struct stk_sigv4_req s3_req(const char *path, const char *query)
{
	return (struct stk_sigv4_req){
		.method = "GET",
		.host = "examplebucket.s3.amazonaws.com",
		.path = path,
		.query = query,
		.region = "us-east-1",
		.service = "s3",
		.now = utc(2013, 5, 24, 0, 0, 0),
	};
}

Test(sigv4_s3doc, get_object_with_range)
{
	const char *h[] = { "Range:bytes=0-9", NULL };
	struct stk_sigv4_req r = s3_req("/test.txt", NULL);
	struct stk_sigv4_out out;
	char creq[512], hex[65];
	ssize_t n;

	r.headers = h;
	expect_auth(&r, &s3_creds,
		    S3_CRED
		    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	cr_assert_eq(stk__sigv4_sign(&r, &s3_creds, &out), 0);
	cr_assert_str_eq(out.amz_date, "20130524T000000Z");
	cr_assert_str_eq(out.content_sha256, STK_SIGV4_EMPTY_SHA256);

	/* The document's CanonicalRequest, and its hash as the last line of StringToSign. */
	n = stk__sigv4_canonical_request(&r, &s3_creds, creq, sizeof(creq));
	cr_assert_str_eq(creq,
			 "GET\n/test.txt\n\n"
			 "host:examplebucket.s3.amazonaws.com\n"
			 "range:bytes=0-9\n"
			 "x-amz-content-sha256:" STK_SIGV4_EMPTY_SHA256 "\n"
			 "x-amz-date:20130524T000000Z\n\n"
			 "host;range;x-amz-content-sha256;x-amz-date\n" STK_SIGV4_EMPTY_SHA256);
	cr_assert_eq((size_t)n, strlen(creq));
	cr_assert_eq(stk__sigv4_sha256_hex(creq, (size_t)n, hex), 0);
	cr_assert_str_eq(hex, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
}

Test(sigv4_s3doc, put_object)
{
	/* Example: PUT Object, key "test$file.text", body "Welcome to Amazon S3." */
	const char *h[] = { "Date:Fri, 24 May 2013 00:00:00 GMT",
			    "x-amz-storage-class:REDUCED_REDUNDANCY", NULL };
	const char *body = "Welcome to Amazon S3.";
	char path[64] = "/", hash[65];
	struct stk_sigv4_req r = s3_req(NULL, NULL);

	cr_assert_eq(stk__sigv4_sha256_hex(body, strlen(body), hash), 0);
	cr_assert_str_eq(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	cr_assert_gt(stk__sigv4_uri_encode("test$file.text", 14, true, path + 1, sizeof(path) - 1),
		     0);
	cr_assert_str_eq(path, "/test%24file.text");
	r.method = "PUT";
	r.path = path;
	r.headers = h;
	r.payload_hash = hash;
	expect_auth(&r, &s3_creds,
		    S3_CRED
		    "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
		    "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

Test(sigv4_s3doc, get_bucket_lifecycle)
{
	struct stk_sigv4_req r = s3_req("/", "lifecycle");

	expect_auth(&r, &s3_creds,
		    S3_CRED
		    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		    "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

Test(sigv4_s3doc, get_bucket_list_objects)
{
	struct stk_sigv4_req r = s3_req("/", "max-keys=2&prefix=J");

	expect_auth(&r, &s3_creds,
		    S3_CRED
		    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		    "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	/* Parameter order as sent does not matter: the query is canonicalised. */
	r.query = "prefix=J&max-keys=2";
	expect_auth(&r, &s3_creds,
		    S3_CRED
		    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		    "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* ---- Properties and errors ----------------------------------------------- */

/* The signature of r (valid until the next call). */
static const char *sig_of(const struct stk_sigv4_req *r, const struct stk_sigv4_creds *c)
{
	static char sig[65];
	struct stk_sigv4_out out;
	const char *s;

	cr_assert_eq(stk__sigv4_sign(r, c, &out), 0);
	s = strstr(out.authorization, "Signature=");
	cr_assert_not_null(s);
	snprintf(sig, sizeof(sig), "%s", s + 10);
	return sig;
}

Test(sigv4, every_input_changes_the_signature)
{
	struct stk_sigv4_req r = s3_req("/test.txt", NULL), r2;
	struct stk_sigv4_creds c2 = s3_creds;
	const char *h[] = { "range:bytes=0-9", NULL };
	char base[65];

	snprintf(base, sizeof(base), "%s", sig_of(&r, &s3_creds));

	c2.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
	cr_assert_str_neq(sig_of(&r, &c2), base);
	r2 = r, r2.path = "/test.txu";
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r, r2.query = "a=1";
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r, r2.region = "eu-west-1";
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r, r2.now += 1;
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r, r2.method = "HEAD";
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r, r2.host = "examplebucket.s3.amazonaws.com:8443";
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r, r2.headers = h;
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r, r2.payload_hash = STK_SIGV4_UNSIGNED_PAYLOAD;
	cr_assert_str_neq(sig_of(&r2, &s3_creds), base);
	r2 = r;
	cr_assert_str_eq(sig_of(&r2, &s3_creds), base, "and the same input signs the same");
}

Test(sigv4, unsigned_payload_is_sent_and_signed)
{
	struct stk_sigv4_req r = s3_req("/k", NULL);
	struct stk_sigv4_out out;
	char creq[512];

	r.payload_hash = STK_SIGV4_UNSIGNED_PAYLOAD;
	cr_assert_eq(stk__sigv4_sign(&r, &s3_creds, &out), 0);
	cr_assert_str_eq(out.content_sha256, "UNSIGNED-PAYLOAD");
	cr_assert_gt(stk__sigv4_canonical_request(&r, &s3_creds, creq, sizeof(creq)), 0);
	cr_assert(strstr(creq, "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"), "%s", creq);
	cr_assert(strstr(creq, "\nUNSIGNED-PAYLOAD") == creq + strlen(creq) - 17, "%s", creq);
}

Test(sigv4, secrets_stay_out_of_the_outputs)
{
	struct stk_sigv4_req r = s3_req("/k", NULL);
	struct stk_sigv4_out out;
	char creq[512];

	cr_assert_eq(stk__sigv4_sign(&r, &s3_creds, &out), 0);
	cr_assert_null(strstr(out.authorization, "EXAMPLEKEY"));
	cr_assert_gt(stk__sigv4_canonical_request(&r, &s3_creds, creq, sizeof(creq)), 0);
	cr_assert_null(strstr(creq, "EXAMPLEKEY"));
}

Test(sigv4, rejects_malformed_requests)
{
	struct stk_sigv4_req r = s3_req("/k", NULL), r2;
	struct stk_sigv4_creds c = s3_creds;
	struct stk_sigv4_out out;
	const char *reserved[] = { "Host:x", "authorization:x", "X-Amz-Date:x",
				   "x-amz-content-sha256:x", "x-amz-security-token:x" };
	const char *bad_hdr[] = { "no-colon", ":empty-name", "sp ace:v", "a:b\r\nx-evil:1" };

	cr_assert_eq(stk__sigv4_sign(&r, &c, &out), 0);
	for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved); i++) {
		const char *h[] = { reserved[i], NULL };

		r2 = r, r2.headers = h;
		cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL, "%s", reserved[i]);
	}
	for (size_t i = 0; i < sizeof(bad_hdr) / sizeof(*bad_hdr); i++) {
		const char *h[] = { bad_hdr[i], NULL };

		r2 = r, r2.headers = h;
		cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL, "%s", bad_hdr[i]);
	}
	{
		/* Generic services may send x-amz-content-sha256 themselves. */
		const char *h[] = { "x-amz-content-sha256:abc", NULL };

		r2 = r, r2.headers = h, r2.flags = STK_SIGV4_NO_CONTENT_SHA256;
		cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), 0);
	}
	/* Paths the caller forgot to encode, or encoded unlike S3. */
	r2 = r, r2.path = "/a b";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.path = "/a%2fb";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.path = "/a%2";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.path = "k";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r,
	r2.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.payload_hash = "abc";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.region = "us/east";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.service = NULL;
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.host = "a b";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	r2 = r, r2.method = "";
	cr_assert_eq(stk__sigv4_sign(&r2, &c, &out), -EINVAL);
	c.access_key = "AKIA/EXAMPLE";
	cr_assert_eq(stk__sigv4_sign(&r, &c, &out), -EINVAL);
	c = s3_creds, c.secret_key = "";
	cr_assert_eq(stk__sigv4_sign(&r, &c, &out), -EINVAL);
	c = s3_creds, c.session_token = "tok\nx-evil: 1";
	cr_assert_eq(stk__sigv4_sign(&r, &c, &out), -EINVAL);
	cr_assert_eq(stk__sigv4_sign(&r, NULL, &out), -EINVAL);
}

Test(sigv4, limits)
{
	const char *h[STK_SIGV4_MAX_HEADERS + 2];
	char names[STK_SIGV4_MAX_HEADERS + 1][16], creq[64];
	char secret[258];
	struct stk_sigv4_req r = s3_req("/k", NULL);
	struct stk_sigv4_creds c = s3_creds;
	struct stk_sigv4_out out;

	for (int i = 0; i <= STK_SIGV4_MAX_HEADERS; i++) {
		snprintf(names[i], sizeof(names[i]), "x-h%d:v", i);
		h[i] = names[i];
	}
	h[STK_SIGV4_MAX_HEADERS + 1] = NULL;
	r.headers = h;
	cr_assert_eq(stk__sigv4_sign(&r, &c, &out), -E2BIG);
	h[STK_SIGV4_MAX_HEADERS] = NULL;
	cr_assert_eq(stk__sigv4_sign(&r, &c, &out), 0);

	memset(secret, 'k', sizeof(secret) - 1);
	secret[sizeof(secret) - 1] = '\0';
	c.secret_key = secret;
	cr_assert_eq(stk__sigv4_sign(&r, &c, &out), -E2BIG);

	r.headers = NULL;
	cr_assert_eq(stk__sigv4_canonical_request(&r, NULL, creq, sizeof(creq)), -ENAMETOOLONG);
	cr_assert_eq(strlen(creq), sizeof(creq) - 1);
}

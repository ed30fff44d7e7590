/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "transports/s3_xml.h"

static const char page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bkt</Name><Prefix>ds/</Prefix><KeyCount>3</KeyCount>"
    "<IsTruncated>true</IsTruncated><NextContinuationToken>tok/+=1</NextContinuationToken>"
    "<Contents><Key>ds/a.bin</Key><Size>10</Size><ETag>\"x\"</ETag></Contents>"
    "<Contents><Key>ds/sub/</Key><Size>0</Size></Contents>"
    "<Contents><Key>ds/sub/b &amp; c.bin</Key><Size>12345678901</Size></Contents>"
    "</ListBucketResult>";

Test(s3_xml, list_page_keys_sizes_and_token)
{
	struct stk_catalog cat = { 0 };
	bool trunc = false;
	char token[64], err[256];
	int r = stk__s3_parse_list(page, strlen(page), "ds/", "s3://bkt/", &cat, &trunc, token,
				   sizeof(token), err, sizeof(err));
	cr_assert_eq(r, 0, "%s", err);
	cr_assert(trunc);
	cr_assert_str_eq(token, "tok/+=1");
	cr_assert_eq(cat.n, 2, "the directory placeholder ds/sub/ is not an object");
	cr_assert_str_eq(cat.e[0].key, "a.bin");
	cr_assert_str_eq(cat.e[0].uri, "s3://bkt/ds/a.bin");
	cr_assert_eq(cat.e[0].size, 10);
	cr_assert_str_eq(cat.e[1].key, "sub/b & c.bin", "entities are decoded");
	cr_assert_eq(cat.e[1].size, 12345678901ull);
	stk__catalog_free(&cat);
}

Test(s3_xml, malformed_pages_are_refused)
{
	struct stk_catalog cat = { 0 };
	bool trunc;
	char token[64], err[256];
	const char *bad[] = {
		"<ListBucketResult><Contents><Key>ds/a</Key><Size>-1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key>ds/a</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>ds/a</Key><Size>1</Size>",
		"not xml at all",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = stk__s3_parse_list(bad[i], strlen(bad[i]), "ds/", "s3://b/", &cat, &trunc,
					   token, sizeof(token), err, sizeof(err));
		cr_assert_eq(r, -EINVAL, "case %zu parsed", i);
		cr_assert(strstr(err, "ListObjectsV2"), "case %zu: %s", i, err);
		stk__catalog_free(&cat);
	}
}

Test(s3_xml, error_body_code_and_message)
{
	const char *x = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
			"<Message>The specified key does not exist.</Message><Key>k</Key></Error>";
	char code[32], msg[64];
	cr_assert_eq(stk__s3_parse_error(x, strlen(x), code, sizeof(code), msg, sizeof(msg)), 0);
	cr_assert_str_eq(code, "NoSuchKey");
	cr_assert_str_eq(msg, "The specified key does not exist.");
	cr_assert_eq(stk__s3_parse_error("<html/>", 7, code, sizeof(code), msg, sizeof(msg)),
		     -EINVAL);
}

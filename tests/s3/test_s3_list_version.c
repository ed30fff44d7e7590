/* SPDX-License-Identifier: MIT */
/*
 * A ListObjectsV2 listing gives each object its ETag as the catalog entry's
 * version (transports/s3_xml.c), so that a changed object can be noticed.
 * (It belongs with tests/transports/test_s3_xml.c, and can move there.)
 */
#include <criterion/criterion.h>
#include <string.h>

#include "transports/s3_xml.h"

static const char page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bkt</Name><Prefix>ds/</Prefix><IsTruncated>false</IsTruncated>"
    "<Contents><Key>ds/a.bin</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
    "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>10</Size></Contents>"
    "<Contents><Key>ds/b.bin</Key><Size>20</Size></Contents>"
    "<Contents><ETag>\"d41d8cd98f00b204e9800998ecf8427e-2\"</ETag><Key>ds/c.bin</Key>"
    "<Size>30</Size></Contents>"
    "</ListBucketResult>";

Test(s3_list_version, etag_is_each_entrys_version)
{
	struct stk_catalog cat = { 0 };
	bool trunc = true;
	char token[64], err[256];
	int r = stk__s3_parse_list(page, strlen(page), "ds/", "s3://bkt/", &cat, &trunc, token,
				   sizeof(token), err, sizeof(err));
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(cat.n, 3);
	cr_assert_str_eq(cat.e[0].key, "a.bin");
	cr_assert_not_null(cat.e[0].version);
	/* As the ETag header gives it, quotes and all. */
	cr_assert_str_eq(cat.e[0].version, "\"9b2cf535f27731c974343645a3985328\"");
	cr_assert_null(cat.e[1].version, "an entry without <ETag> has no version");
	cr_assert_str_eq(cat.e[2].version, "\"d41d8cd98f00b204e9800998ecf8427e-2\"",
			 "<ETag> before <Key> counts too");
	stk__catalog_free(&cat);
}

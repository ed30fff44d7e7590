/* SPDX-License-Identifier: MIT */
/*
 * transports/catalog_zst.c without I/O: keys lose ".zst", entries become
 * STK_CODEC_ZSTD, a manifest's sizes stand as the plain sizes and its order
 * stays, repeated keys fail, and a prefix whose transport cannot read
 * frame headers (http, s3) is refused with what to do instead.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "transports/transport.h"

Test(catalog_zst, manifest_keys_and_codecs)
{
	const char *t = "https://h/d/b.npy.zst 4096\nhttps://h/d/a.txt 5\ns3://b/c.zst 0\n";
	struct stk_catalog c = { 0 };
	char err[512];
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "m", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stk__catalog_zstd("file:///m", true, &c, err, sizeof(err)), 0, "%s", err);
	/* A manifest keeps its order. */
	cr_assert_str_eq(c.e[0].key, "https://h/d/b.npy");
	cr_assert_str_eq(c.e[0].uri, "https://h/d/b.npy.zst");
	cr_assert_eq(c.e[0].codec, STK_CODEC_ZSTD);
	cr_assert_eq(c.e[0].size, 4096);
	cr_assert_str_eq(c.e[1].key, "https://h/d/a.txt");
	cr_assert_eq(c.e[1].codec, STK_CODEC_NONE);
	cr_assert_str_eq(c.e[2].key, "s3://b/c");
	cr_assert_eq(c.e[2].codec, STK_CODEC_ZSTD);
	stk__catalog_free(&c);
}

Test(catalog_zst, repeated_key_names_both)
{
	const char *t = "file:///d/x 5\nfile:///d/y.zst 1\nfile:///d/x.zst 7\n";
	struct stk_catalog c = { 0 };
	char err[512];
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "m", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stk__catalog_zstd("file:///m", true, &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "file:///d/x and file:///d/x.zst") && strstr(err, "'file:///d/x'"),
		  "%s", err);
	stk__catalog_free(&c);
}

Test(catalog_zst, prefix_without_headers_refused)
{
	struct stk_catalog c = { 0 };
	char err[512];
	/* As a listing gives them: sorted by the stored names. */
	cr_assert_eq(stk__catalog_add(&c, "a.bin", 5, "https://h/d/a.bin", 3), 0);
	cr_assert_eq(stk__catalog_add(&c, "a.zst", 5, "https://h/d/a.zst", 3), 0);
	c.e[1].codec = STK_CODEC_NONE;
	/* http cannot read headers: refused, saying what to do. */
	cr_assert_eq(stk__catalog_zstd("https://h/d/", false, &c, err, sizeof(err)), -ENOTSUP);
	cr_assert(strstr(err, "https://h/d/a.zst") && strstr(err, "manifest"), "%s", err);
	stk__catalog_free(&c);
	/* Without .zst objects such a listing is fine. */
	cr_assert_eq(stk__catalog_add(&c, "a.bin", 5, "https://h/d/a.bin", 3), 0);
	cr_assert_eq(stk__catalog_zstd("https://h/d/", false, &c, err, sizeof(err)), 0, "%s", err);
	stk__catalog_free(&c);
}

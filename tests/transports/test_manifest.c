/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "transports/transport.h"

Test(manifest, parses_uris_sizes_and_comments)
{
	const char *t = "# a comment\n\nfile:///d/a 10\n  s3://b/k\t 0 \nfile:///d/c\n";
	struct stk_catalog c = { 0 };
	char err[256];
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "m", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.n, 3);
	cr_assert_str_eq(c.e[0].uri, "file:///d/a");
	cr_assert_eq(c.e[0].size, 10);
	cr_assert_str_eq(c.e[1].key, "s3://b/k");
	cr_assert_eq(c.e[1].size, 0);
	cr_assert_eq(c.e[2].size, STK_SIZE_UNKNOWN);
	stk__catalog_free(&c);
}

Test(manifest, bad_lines_name_the_line)
{
	struct stk_catalog c = { 0 };
	char err[256];
	const char *t = "file:///d/a 10\nfile:///d/b abc\n";
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "list.txt", &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "list.txt line 2"), "%s", err);
	cr_assert(strstr(err, "abc"), "%s", err);
	stk__catalog_free(&c);
	t = "not-a-uri\n";
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "m", &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "line 1"), "%s", err);
	stk__catalog_free(&c);
}

Test(transport, unknown_scheme_is_named)
{
	int r = 0;
	char err[256];
	cr_assert_null(stk__transport_find("gopher://x/y", &r, err, sizeof(err)));
	cr_assert_eq(r, -EPROTONOSUPPORT);
	cr_assert(strstr(err, "'gopher'"), "%s", err);
	cr_assert_null(stk__transport_find("/no/scheme", &r, err, sizeof(err)));
	cr_assert_eq(r, -EINVAL);
	cr_assert_not_null(stk__transport_find("file:///x", &r, err, sizeof(err)));
}

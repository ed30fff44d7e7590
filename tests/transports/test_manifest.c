/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

Test(manifest, entries_carry_their_line)
{
	const char *t = "# head\n\nfile:///d/a 1\n  \nfile:///d/b\n";
	struct stk_catalog c = { 0 };
	char err[256];
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "m", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(c.e[0].line, 3);
	cr_assert_eq(c.e[1].line, 5);
	cr_assert_null(c.e[0].version);
	stk__catalog_free(&c);
}

Test(manifest, repeated_uri_names_both_lines)
{
	const char *t = "file:///x 1\nfile:///y\n# c\nfile:///z 3\n\nfile:///y 2\nfile:///w\n";
	struct stk_catalog c = { 0 };
	char err[256];
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "list.txt", &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "list.txt line 6: file:///y repeats line 2"), "%s", err);
	stk__catalog_free(&c);
	/* A URI that is a prefix of another, or differs in one byte, is not a repeat. */
	t = "file:///a\nfile:///ab\nfile:///b\nfile:///a/\n";
	cr_assert_eq(stk__manifest_parse(t, strlen(t), "m", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.n, 4);
	stk__catalog_free(&c);
}

/* n lines "file:///data/<i or 0>/obj.bin <i>"; distinct or all the same URI. */
static char *big_manifest(size_t n, bool distinct, size_t *len)
{
	size_t cap = n * 48 + 1;
	char *t = malloc(cap);
	cr_assert_not_null(t);
	size_t off = 0;
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(t + off, cap - off, "file:///data/%zu/obj.bin %zu\n",
					distinct ? i : 0, i);
	*len = off;
	return t;
}

/*
 * A million lines parse in linear time: a return to a quadratic duplicate
 * check shows as this test's timeout (it took minutes).
 */
Test(manifest, a_million_lines_parse_quickly, .timeout = 20)
{
	size_t len, n = 1000000;
	char *t = big_manifest(n, true, &len);
	struct stk_catalog c = { 0 };
	char err[256];
	cr_assert_eq(stk__manifest_parse(t, len, "big", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.n, n);
	cr_assert_str_eq(c.e[n - 1].uri, "file:///data/999999/obj.bin");
	cr_assert_eq(c.e[n - 1].size, 999999);
	cr_assert_eq(c.e[n - 1].line, 1000000);
	stk__catalog_free(&c);
	free(t);

	/* The same URI a million times fails at line 2, before reading the rest. */
	t = big_manifest(n, false, &len);
	cr_assert_eq(stk__manifest_parse(t, len, "same", &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "same line 2: file:///data/0/obj.bin repeats line 1"), "%s", err);
	cr_assert_eq(c.n, 1);
	stk__catalog_free(&c);
	free(t);
}

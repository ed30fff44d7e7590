/* SPDX-License-Identifier: MIT */
/*
 * The host policy's rules, without a daemon (transports/http_common.c): how
 * --allow-host entries match URLs, and which addresses are link-local or
 * cloud metadata ones.  test_policy_e2e.c shows them applied on each request
 * path.  (Unit tests of transports/ belong in tests/transports; these sit
 * here beside the end-to-end tests of the same rules.)
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "transports/http_int.h"

static void allow(const char *const *list)
{
	cr_assert_eq(stk__http_policy_init((char *const *)list), 0, "the list was refused");
}

/* Checks url; returns 0 or -errno, with the message in err. */
static int check(const char *url, char *err, size_t errlen, bool *named)
{
	struct stk_http_guard g = { 0 };
	err[0] = 0;
	int r = stk__http_policy_check(url, url, &g, err, errlen);
	if (named)
		*named = g.named;
	stk__http_guard_clear(&g);
	return r;
}

static void fini(void)
{
	stk__http_policy_fini();
}

Test(http_policy, allow_list_matches_host_and_port_exactly, .fini = fini)
{
	const char *list[] = { "Example.COM", "127.0.0.1:9000",	    "[::1]:9001",
			       "::2",	      "secure.example:443", NULL };
	allow(list);
	cr_assert(stk__http_restricted());
	static const struct {
		const char *url;
		bool ok;
	} c[] = {
		{ "http://example.com/a", true },
		{ "http://EXAMPLE.com:8080/a", true }, /* "HOST": any port, any case */
		{ "https://example.com/a", true },
		{ "http://a.example.com/a", false }, /* no suffix matching */
		{ "http://example.com.evil.test/a", false },
		{ "http://xexample.com/a", false },
		{ "http://user@example.com/a", true }, /* userinfo is not the host */
		{ "http://example.com@evil.test/a", false },
		{ "http://127.0.0.1:9000/a", true },
		{ "http://127.0.0.1/a", false }, /* 80, not 9000 */
		{ "http://127.0.0.1:9001/a", false },
		{ "http://127.0.0.2:9000/a", false },
		{ "http://localhost:9000/a", false }, /* names compare, not addresses */
		{ "http://[::1]:9001/a", true },
		{ "http://[0:0::1]:9001/a", true }, /* one form of an IPv6 address */
		{ "http://[::1]:9000/a", false },
		{ "http://[::2]:1234/a", true },
		{ "https://secure.example/a", true }, /* 443 by scheme */
		{ "http://secure.example/a", false }, /* 80 */
		{ "http://secure.example:443/a", true },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char err[512];
		bool named = false;
		int r = check(c[i].url, err, sizeof(err), &named);
		if (c[i].ok) {
			cr_expect_eq(r, 0, "%s was refused: %s", c[i].url, err);
			cr_expect(named, "%s: not named", c[i].url);
		} else {
			cr_expect_eq(r, -EACCES, "%s: %d, want -EACCES", c[i].url, r);
			cr_expect(strstr(err, "is not in --allow-host"), "%s: %s", c[i].url, err);
		}
	}
	char err[512];
	cr_assert_eq(check("http://x:81/a", err, sizeof(err), NULL), -EACCES);
	cr_assert_str_eq(err, "http://x:81/a: host x:81 is not in --allow-host");
	cr_assert_eq(check("http://[::1]:9000/a", err, sizeof(err), NULL), -EACCES);
	cr_assert_str_eq(err, "http://[::1]:9000/a: host [::1]:9000 is not in --allow-host");
}

Test(http_policy, bad_entries_are_refused, .fini = fini)
{
	const char *bad[] = { "",     "a/b", "host:0",	 "host:65536", "host:",
			      "[::1", "a@b", "a b",	 "host:12x",   "[::1]:x",
			      "a?b",  "a#b", "http://a", "%61",	       NULL };
	for (size_t i = 0; bad[i]; i++) {
		const char *list[] = { "ok.example", bad[i], NULL };
		cr_expect_eq(stk__http_policy_init((char *const *)list), -EINVAL,
			     "--allow-host '%s' was taken", bad[i]);
		cr_expect(!stk__http_restricted(), "'%s': a failed init left a list", bad[i]);
	}
	cr_assert_eq(stk__http_policy_init(NULL), 0);
	cr_assert(!stk__http_restricted());
}

Test(http_policy, literal_metadata_refused_unless_named, .fini = fini)
{
	allow(NULL);
	cr_assert(!stk__http_restricted());
	const char *refused[] = {
		"http://169.254.169.254/latest/meta-data/",
		"http://169.254.0.1/x",
		"http://169.254.255.255:8080/x",
		"https://100.100.100.200/x",
		"http://192.0.0.192/x",
		"http://168.63.129.16/x",
		"http://[fe80::1]/x",
		"http://[FEBF::1]/x",
		"http://[fd00:ec2::254]/x",
		"http://[::ffff:169.254.169.254]/x",
		"http://[::ffff:100.100.100.200]/x",
		"http://[64:ff9b::a9fe:a9fe]/x",
		"http://0xa9.0xfe.0xa9.0xfe/x", /* curl reads these as 169.254.169.254 */
		"http://2852039166/x",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char err[512];
		int r = check(refused[i], err, sizeof(err), NULL);
		cr_expect_eq(r, -EACCES, "%s: %d, want -EACCES", refused[i], r);
		cr_expect(strstr(err, "is a link-local/cloud metadata address; name it in "
				      "--allow-host to allow it"),
			  "%s: %s", refused[i], err);
	}
	const char *fine[] = { "http://127.0.0.1/x",	   "http://10.0.0.1/x",
			       "http://169.253.255.255/x", "http://169.255.0.0/x",
			       "http://[::1]/x",	   "http://[fec0::1]/x",
			       "http://[fe7f::1]/x",	   "http://[2600::1]/x",
			       "http://example.com/x",	   "http://100.100.100.201/x" };
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		char err[512];
		cr_expect_eq(check(fine[i], err, sizeof(err), NULL), 0, "%s: %s", fine[i], err);
	}
	char err[512];
	cr_assert_eq(check("http://169.254.169.254/x", err, sizeof(err), NULL), -EACCES);
	cr_assert_str_eq(err, "http://169.254.169.254/x: refused: 169.254.169.254 is a "
			      "link-local/cloud metadata address; name it in --allow-host to "
			      "allow it");

	/* Named, it passes: in any of its spellings. */
	const char *list[] = { "169.254.169.254", "[fe80::1]:8080", NULL };
	allow(list);
	cr_assert_eq(check("http://169.254.169.254/x", err, sizeof(err), NULL), 0, "%s", err);
	cr_assert_eq(check("http://[fe80::0:1]:8080/x", err, sizeof(err), NULL), 0, "%s", err);
	cr_assert_eq(check("http://[fe80::1]/x", err, sizeof(err), NULL), -EACCES);
}

static bool forbidden(const char *addr)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	if (inet_pton(AF_INET, addr, &a4.sin_addr) == 1)
		return stk__http_addr_forbidden((struct sockaddr *)&a4);
	cr_assert_eq(inet_pton(AF_INET6, addr, &a6.sin6_addr), 1, "%s: not an address", addr);
	return stk__http_addr_forbidden((struct sockaddr *)&a6);
}

/* What the connect-time check refuses: the resolved address, however it was named. */
Test(http_policy, resolved_addresses)
{
	const char *yes[] = { "169.254.169.254",
			      "169.254.0.0",
			      "169.254.255.255",
			      "100.100.100.200",
			      "192.0.0.192",
			      "168.63.129.16",
			      "fe80::1",
			      "fe80::a9fe:a9fe",
			      "febf:ffff::1",
			      "fd00:ec2::254",
			      "::ffff:169.254.169.254",
			      "::ffff:169.254.1.1",
			      "::ffff:100.100.100.200",
			      "::ffff:192.0.0.192",
			      "64:ff9b::169.254.169.254",
			      "::169.254.169.254" };
	const char *no[] = { "127.0.0.1",
			     "0.0.0.0",
			     "10.0.0.1",
			     "169.253.255.255",
			     "169.255.0.0",
			     "100.100.100.199",
			     "192.0.0.193",
			     "8.8.8.8",
			     "::1",
			     "::",
			     "fec0::1",
			     "fe7f:ffff::1",
			     "fd00:ec2::253",
			     "fd00:ec3::254",
			     "::ffff:127.0.0.1",
			     "2600::1" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_expect(forbidden(yes[i]), "%s is not refused", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_expect(!forbidden(no[i]), "%s is refused", no[i]);
	struct sockaddr sa = { .sa_family = AF_UNIX };
	cr_expect(!stk__http_addr_forbidden(&sa));
}

/* SPDX-License-Identifier: MIT */
/*
 * common/log.c: the text and JSON line formats, components, JSON escaping,
 * event fields and their types, truncation, and the scrubber on every
 * secret form it knows.  Lines are captured by pointing fd 2 at a file.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static int saved_fd = -1, cap_fd = -1;

static void cap_begin(void)
{
	/*
	 * A file open(2) made, not a memfd: Linux serializes concurrent
	 * writes' offsets only for those (FMODE_ATOMIC_POS), as for the
	 * daemon's stderr redirected to a log file.
	 */
	char path[] = "/tmp/stk-test-log.XXXXXX";
	cap_fd = mkstemp(path);
	cr_assert_geq(cap_fd, 0);
	unlink(path);
	saved_fd = dup(STDERR_FILENO);
	cr_assert_geq(saved_fd, 0);
	cr_assert_eq(dup2(cap_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Ends the capture; returns what was written to stderr, NUL-terminated. Caller frees. */
static char *cap_end(void)
{
	dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);
	off_t len = lseek(cap_fd, 0, SEEK_END);
	cr_assert_geq(len, 0);
	char *buf = malloc((size_t)len + 1);
	cr_assert(buf);
	cr_assert_eq(pread(cap_fd, buf, (size_t)len, 0), len);
	buf[len] = 0;
	close(cap_fd);
	return buf;
}

static void reset(void)
{
	stk__log_level = STK_LOG_INFO;
	cr_assert_eq(stk__log_set_format("text"), 0);
}

/* Parses one JSON line (with its newline, nothing else) into an object. */
static json_t *json_line(const char *line)
{
	size_t len = strlen(line);
	cr_assert(len > 0 && line[len - 1] == '\n', "not one line: [%s]", line);
	cr_assert_null(memchr(line, '\n', len - 1), "more than one line: [%s]", line);
	json_error_t e;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
	cr_assert(j, "not JSON (%s at %d): [%s]", e.text, e.position, line);
	cr_assert(json_is_object(j), "not an object: [%s]", line);
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_string(v), "\"%s\" is not a string", key);
	return json_string_value(v);
}

static bool matches(const char *re, const char *s)
{
	regex_t r;
	cr_assert_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0, "bad regex %s", re);
	bool m = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return m;
}

TestSuite(log, .init = reset);

/* Components */

Test(log, component_from_the_file_name)
{
	static const char *const map[][2] = {
		{ "/src/prefetch/main.c", "stokerd" },
		{ "/src/prefetch/sched.c", "sched" },
		{ "/src/prefetch/dataset.c", "dataset" },
		{ "/src/prefetch/server.c", "server" },
		{ "/src/prefetch/session.c", "server" },
		{ "/src/prefetch/listen.c", "server" },
		{ "/src/prefetch/fast.c", "server" },
		{ "/src/prefetch/metrics.c", "metrics" },
		{ "/src/cache/arena.c", "cache" },
		{ "cache/ram.c", "cache" },
		{ "/src/transports/file.c", "file" },
		{ "/src/transports/file_list.c", "file" },
		{ "/src/transports/http.c", "http" },
		{ "/src/transports/http_fetch.c", "http" },
		{ "/src/transports/http_common.c", "http" },
		{ "/src/transports/web.c", "http" },
		{ "/src/transports/s3.c", "s3" },
		{ "/src/transports/s3_xml.c", "s3" },
		{ "/src/transports/sigv4.c", "s3" },
		{ "/src/transports/aws_creds.c", "s3" },
		{ "/src/transports/catalog.c", "catalog" },
		{ "/src/transports/registry.c", "catalog" },
		{ "/src/common/loop.c", "loop" },
		{ "/src/notcache/loop.c", "loop" },
		{ "weird", "weird" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t len = 0;
		const char *c = stk__log_component(map[i][0], &len);
		cr_expect(len == strlen(map[i][1]) && !memcmp(c, map[i][1], len),
			  "%s: component '%.*s', want '%s'", map[i][0], (int)len, c, map[i][1]);
	}
}

/* Text */

Test(log, text_line_has_time_level_component_message)
{
	cap_begin();
	stk__log(STK_LOG_INFO, "/src/prefetch/sched.c", "warm of %s: %d objects", "s3://b/p/", 42);
	stk_warn("from the test");
	char *out = cap_end();
	const char *re = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
			 "stokerd info sched: warm of s3://b/p/: 42 objects\n"
			 "[0-9]{4}-[^ ]+Z stokerd warn test_log: from the test\n$";
	cr_expect(matches(re, out), "got [%s]", out);
	free(out);
}

Test(log, level_filter_and_errno_kept)
{
	cap_begin();
	stk_dbg("not written at info %d", 1);
	stk_event(STK_LOG_DEBUG, "nor_this", "a=%d", 1);
	errno = EAGAIN;
	stk_err("written");
	int e = errno;
	stk__log_level = STK_LOG_DEBUG;
	stk_dbg("now written");
	char *out = cap_end();
	cr_expect_eq(e, EAGAIN, "logging changed errno");
	cr_expect_null(strstr(out, "not written"), "%s", out);
	cr_expect_null(strstr(out, "nor_this"), "%s", out);
	cr_expect(strstr(out, "stokerd error test_log: written\n"), "%s", out);
	cr_expect(strstr(out, "stokerd debug test_log: now written\n"), "%s", out);
	free(out);
}

Test(log, text_keeps_one_event_per_line)
{
	cap_begin();
	stk_info("two\nlines\r and a \x01 tab\t");
	char *out = cap_end();
	cr_expect(strstr(out, "info test_log: two\\nlines\\r and a \\x01 tab\\t\n"), "got [%s]",
		  out);
	cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "more than one line: [%s]", out);
	free(out);
}

Test(log, set_format_accepts_text_and_json_only)
{
	cr_expect_eq(stk__log_set_format("json"), 0);
	cr_expect_eq(stk__log_format(), STK_LOG_JSON);
	cr_expect_eq(stk__log_set_format("JSON"), -EINVAL);
	cr_expect_eq(stk__log_set_format(""), -EINVAL);
	cr_expect_eq(stk__log_set_format(NULL), -EINVAL);
	cr_expect_eq(stk__log_format(), STK_LOG_JSON, "a refused format changed the format");
	cr_expect_eq(stk__log_set_format("text"), 0);
	cr_expect_eq(stk__log_format(), STK_LOG_TEXT);
}

/* JSON */

Test(log, json_line_has_time_level_component_msg)
{
	cr_assert_eq(stk__log_set_format("json"), 0);
	cap_begin();
	stk__log(STK_LOG_ERROR, "/src/transports/s3.c", "GET %s: %d", "s3://b/k", 403);
	char *out = cap_end();
	json_t *j = json_line(out);
	cr_expect(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
			  jstr(j, "time")),
		  "time %s", jstr(j, "time"));
	cr_expect_str_eq(jstr(j, "level"), "error");
	cr_expect_str_eq(jstr(j, "component"), "s3");
	cr_expect_str_eq(jstr(j, "msg"), "GET s3://b/k: 403");
	cr_expect_eq(json_object_size(j), 4, "members beyond time, level, component, msg: %s", out);
	cr_expect(!strncmp(out, "{\"time\":\"", 9), "members out of order: %s", out);
	json_decref(j);
	free(out);
}

Test(log, json_escapes_quotes_controls_and_bad_utf8)
{
	/* "q\"b\\ nl\n cr\r tab\t \x01 \x7f é € 😀", then invalid bytes. */
	const char in[] = "q\"b\\ nl\n cr\r tab\t \x01 \x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"
			  " | \xff \xc0\xaf \xed\xa0\x80 \xe2\x82 \xf4\x90\x80\x80 \x80";
	char out[512];
	size_t n = stk__log_json_escape(in, sizeof(in) - 1, out, sizeof(out));
	const char want[] =
	    "q\\\"b\\\\ nl\\n cr\\r tab\\t \\u0001 \x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"
	    " | \\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd "
	    "\\ufffd\\ufffd\\ufffd\\ufffd \\ufffd";
	cr_expect_str_eq(out, want);
	cr_expect_eq(n, strlen(want));

	/* Through a whole line: what a JSON parser reads back. */
	cr_assert_eq(stk__log_set_format("json"), 0);
	cap_begin();
	stk_info("%s", in);
	char *line = cap_end();
	json_t *j = json_line(line);
	const char *msg = jstr(j, "msg");
	const char valid[] =
	    "q\"b\\ nl\n cr\r tab\t \x01 \x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	cr_expect(!strncmp(msg, valid, sizeof(valid) - 1), "read back [%s]", msg);
	cr_expect(strstr(msg, " | \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "), "read back [%s]", msg);
	json_decref(j);
	free(line);
}

Test(log, json_escape_never_splits_an_escape_or_a_character)
{
	const char in[] = "ab\"\xe2\x82\xac";
	char out[16];
	/* Room for "ab" and one byte of \" : stops after "ab". */
	size_t n = stk__log_json_escape(in, sizeof(in) - 1, out, 4);
	cr_expect_eq(n, 2 | STK__LOG_CUT);
	cr_expect_str_eq(out, "ab");
	/* Room for ab\" and two bytes of the euro sign: stops before it. */
	n = stk__log_json_escape(in, sizeof(in) - 1, out, 7);
	cr_expect_eq(n, 4 | STK__LOG_CUT);
	cr_expect_str_eq(out, "ab\\\"");
	n = stk__log_json_escape(in, sizeof(in) - 1, out, 8);
	cr_expect_eq(n, 7, "fits exactly: no cut flag");
	cr_expect_str_eq(out, "ab\\\"\xe2\x82\xac");
}

Test(log, long_message_is_cut_to_valid_json)
{
	cr_assert_eq(stk__log_set_format("json"), 0);
	static char big[6000];
	memset(big, 'x', sizeof(big) - 1);
	static char ctl[2000];
	memset(ctl, 1, sizeof(ctl) - 1); /* each becomes \u0001: 6 bytes */
	cap_begin();
	stk_info("%s", big);
	stk_info("%s", ctl);
	char *out = cap_end();
	char *second = strchr(out, '\n');
	cr_assert(second);
	second++;
	char first[9000];
	snprintf(first, sizeof(first), "%.*s", (int)(second - out), out);
	for (int i = 0; i < 2; i++) {
		json_t *j = json_line(i ? second : first);
		cr_expect(json_is_true(json_object_get(j, "truncated")), "line %d not marked", i);
		cr_expect_gt(strlen(jstr(j, "msg")), 1000, "line %d cut too short", i);
		json_decref(j);
	}
	cr_expect_leq(strlen(second), 8192, "a line longer than the line buffer");
	free(out);
}

/* Fields */

Test(log, is_number_is_json_grammar)
{
	static const char *const yes[] = { "0",	   "-0",      "42",
					   "-17",  "0.97",    "1e9",
					   "1E+9", "-2.5e-3", "123456789012345678901234567890" };
	static const char *const no[] = { "",	 "-",	"01",  "+1",  "1.", ".5",   "0x10", "1e",
					  "1e+", "nan", "inf", "1,5", "1 ", "12ab", "--1" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_expect(stk__log_is_number(yes[i]), "'%s' is a JSON number", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_expect(!stk__log_is_number(no[i]), "'%s' is not a JSON number", no[i]);
}

Test(log, fields_split_typed_and_unquoted)
{
	char buf[] = "  pid=42 bytes=123\thit_ratio=0.97 name=foo q=\"a b\" qnum=\"5\" flag "
		     "hex=0x10 empty= esc=\"x\\\"y\\\\z\" end=-1.5e3  ";
	struct stk__log_field f[16];
	int n = stk__log_fields(buf, f, 16);
	static const struct {
		const char *k, *v;
		int t;
	} want[] = {
		{ "pid", "42", STK__LOG_NUM },	       { "bytes", "123", STK__LOG_NUM },
		{ "hit_ratio", "0.97", STK__LOG_NUM }, { "name", "foo", STK__LOG_STR },
		{ "q", "a b", STK__LOG_STR },	       { "qnum", "5", STK__LOG_STR },
		{ "flag", "", STK__LOG_TRUE },	       { "hex", "0x10", STK__LOG_STR },
		{ "empty", "", STK__LOG_STR },	       { "esc", "x\"y\\z", STK__LOG_STR },
		{ "end", "-1.5e3", STK__LOG_NUM },
	};
	size_t nw = sizeof(want) / sizeof(want[0]);
	cr_assert_eq(n, (int)nw, "%d fields, want %zu", n, nw);
	for (size_t i = 0; i < nw; i++) {
		cr_expect_str_eq(f[i].key, want[i].k, "field %zu", i);
		cr_expect_str_eq(f[i].val, want[i].v, "field %s", want[i].k);
		cr_expect_eq(f[i].type, want[i].t, "field %s: type %d, want %d", want[i].k,
			     f[i].type, want[i].t);
	}
}

Test(log, fields_past_the_last_slot_go_to_rest)
{
	char buf[] = "a=1 b=2 c=3 d=\"x y\"";
	struct stk__log_field f[3];
	int n = stk__log_fields(buf, f, 3);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(f[1].key, "b");
	cr_expect_str_eq(f[2].key, "_rest");
	cr_expect_str_eq(f[2].val, "c=3 d=\"x y\"");
	cr_expect_eq(f[2].type, STK__LOG_STR);

	char exact[] = "a=1 b=2 c=\"3 4\" ";
	n = stk__log_fields(exact, f, 3);
	cr_assert_eq(n, 3, "three fields fill three slots");
	cr_expect_str_eq(f[2].key, "c");
	cr_expect_str_eq(f[2].val, "3 4");

	char unterminated[] = "k=\"open";
	n = stk__log_fields(unterminated, f, 3);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(f[0].val, "open");
}

Test(log, event_text_line)
{
	cap_begin();
	stk__event(STK_LOG_INFO, "/src/prefetch/server.c", "client_summary",
		   "pid=%d bytes=%llu hit_ratio=%.2f who=\"%s\"", 42, 123ull, 0.97, "a b");
	char *out = cap_end();
	cr_expect(matches("^[0-9]{4}-[^ ]+Z stokerd info server: client_summary pid=42 bytes=123 "
			  "hit_ratio=0.97 who=\"a b\"\n$",
			  out),
		  "got [%s]", out);
	free(out);
}

Test(log, event_json_line_types_its_fields)
{
	cr_assert_eq(stk__log_set_format("json"), 0);
	cap_begin();
	stk__event(STK_LOG_WARN, "/src/prefetch/server.c", "client_summary",
		   "pid=%d bytes=%llu hit_ratio=%.2f who=\"%s\" id=\"%d\" path=%s level=x slow", 42,
		   123ull, 0.97, "a \"b\"", 7, "/tmp/x");
	stk_event(STK_LOG_INFO, "no_fields", NULL);
	char *out = cap_end();
	char *second = strchr(out, '\n') + 1;
	second[-1] = 0;
	char first[4096];
	snprintf(first, sizeof(first), "%s\n", out);

	json_t *j = json_line(first);
	cr_expect_str_eq(jstr(j, "level"), "warn");
	cr_expect_str_eq(jstr(j, "component"), "server");
	cr_expect_str_eq(jstr(j, "event"), "client_summary");
	json_t *v = json_object_get(j, "pid");
	cr_expect(json_is_integer(v) && json_integer_value(v) == 42, "pid: %s", first);
	v = json_object_get(j, "bytes");
	cr_expect(json_is_integer(v) && json_integer_value(v) == 123, "bytes: %s", first);
	v = json_object_get(j, "hit_ratio");
	cr_expect(json_is_real(v) && json_real_value(v) == 0.97, "hit_ratio: %s", first);
	cr_expect_str_eq(jstr(j, "who"), "a \"b\"");
	cr_expect_str_eq(jstr(j, "id"), "7", "a quoted number is a string");
	cr_expect_str_eq(jstr(j, "path"), "/tmp/x");
	cr_expect_str_eq(jstr(j, "_level"), "x", "a field named like a member is renamed");
	cr_expect(json_is_true(json_object_get(j, "slow")), "bare key: %s", first);
	cr_expect_null(json_object_get(j, "msg"));
	json_decref(j);

	j = json_line(second);
	cr_expect_str_eq(jstr(j, "event"), "no_fields");
	cr_expect_str_eq(jstr(j, "component"), "test_log");
	cr_expect_eq(json_object_size(j), 4);
	json_decref(j);
	free(out);
}

Test(log, event_with_too_many_bytes_is_cut_to_valid_json)
{
	cr_assert_eq(stk__log_set_format("json"), 0);
	static char ctl[700];
	memset(ctl, 2, sizeof(ctl) - 1);
	cap_begin();
	stk_event(STK_LOG_INFO, "big", "a=1 b=\"%s\" c=\"%s\" d=\"%s\"", ctl, ctl, ctl);
	char *out = cap_end();
	json_t *j = json_line(out);
	cr_expect(json_is_integer(json_object_get(j, "a")));
	cr_expect(json_is_true(json_object_get(j, "truncated")), "%s", out);
	cr_expect_null(json_object_get(j, "d"), "the field that did not fit is left out");
	json_decref(j);
	free(out);
}

/* Secrets */

static void scrubbed(const char *in, const char *want)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", in);
	stk__log_scrub(buf, sizeof(buf));
	cr_expect_str_eq(buf, want, "scrubbing [%s]", in);
	/* Scrubbing twice changes nothing more. */
	cr_expect_eq(stk__log_scrub(buf, sizeof(buf)), 0, "second scrub of [%s] redacted more", in);
}

Test(log, scrubber_redacts_each_secret_form)
{
	scrubbed("> GET /b/k HTTP/1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/"
		 "20261201/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, "
		 "Signature=0123abcd\r\nx-amz-date: 20261201T000000Z",
		 "> GET /b/k HTTP/1.1\r\nAuthorization: REDACTED\r\nx-amz-date: 20261201T000000Z");
	scrubbed("authorization:Bearer tok", "authorization:REDACTED");
	scrubbed("Proxy-Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: REDACTED");
	scrubbed("{\"Authorization\": \"Bearer x y\", \"n\": 1}",
		 "{\"Authorization\": \"REDACTED\", \"n\": 1}");
	scrubbed("hdr=\"Authorization: Bearer x y\" next=1",
		 "hdr=\"Authorization: REDACTED\" next=1");
	scrubbed("https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
		 "AKIAEXAMPLE%2F20261201%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261201T0"
		 "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoGZXIvYXdz"
		 "&X-Amz-Signature=9f86d081884c7d65 fetched",
		 "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
		 "REDACTED&X-Amz-Date=20261201T0&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
		 "&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED fetched");
	scrubbed("http://h/k?x-amz-signature=abc#frag", "http://h/k?x-amz-signature=REDACTED#frag");
	scrubbed("X-Amz-Security-Token: FQoGZXIvYXdz\nnext",
		 "X-Amz-Security-Token: REDACTED\nnext");
	scrubbed("http://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIAEXAMPLE&Expires=1700000000"
		 "&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D: 403",
		 "http://b.s3.amazonaws.com/k?AWSAccessKeyId=REDACTED&Expires=1700000000"
		 "&Signature=REDACTED: 403");
	scrubbed("Signature = x", "Signature = REDACTED");
	scrubbed("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		 "aws_secret_access_key = REDACTED");
	scrubbed("aws_session_token=FQoGZXIvYXdzEPT//////////wEaDE; aws_access_key_id\t=AKIA1",
		 "aws_session_token=REDACTED; aws_access_key_id\t=REDACTED");
	scrubbed("AWS_SECRET_ACCESS_KEY=abc AWS_SESSION_TOKEN=def",
		 "AWS_SECRET_ACCESS_KEY=REDACTED AWS_SESSION_TOKEN=REDACTED");
	scrubbed("\"aws_secret_access_key\":\"abc def\"", "\"aws_secret_access_key\":\"REDACTED\"");
	/* JSON escaped into a message, and a signed URL encoded into another URL. */
	scrubbed("body {\\\"Authorization\\\": \\\"Bearer x\\\", \\\"n\\\": 1}",
		 "body {\\\"Authorization\\\": \\\"REDACTED\\\", \\\"n\\\": 1}");
	scrubbed("http://p/?u=https%3A%2F%2Fb%2Fk%3FX-Amz-Signature%3Dabc123%26X-Amz-Date%3D1 x",
		 "http://p/?u=https%3A%2F%2Fb%2Fk%3FX-Amz-Signature%3DREDACTED%26X-Amz-Date%3D1 x");
}

Test(log, scrubber_leaves_ordinary_text_alone)
{
	static const char *const same[] = {
		"SignatureDoesNotMatch: The request signature we calculated does not match",
		"s3://sec/obj.bin: 403 SignatureDoesNotMatch",
		"no Authorization header was sent",
		"X-Amz-Signature=&X-Amz-Date=20261201T000000Z",
		"signed (SigV4), aws credentials from the environment",
		"stokerd: RAM budget 4096 MiB, axes and ssss",
		"",
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		scrubbed(same[i], same[i]);
}

Test(log, scrubber_growing_a_value_stays_in_its_buffer)
{
	char buf[16] = "Signature=a&x=1";
	cr_expect_eq(stk__log_scrub(buf, sizeof(buf)), 1);
	cr_expect_str_eq(buf, "Signature=REDAC", "cut at the buffer's end");
	char buf2[24] = "Signature=a&x=1";
	stk__log_scrub(buf2, sizeof(buf2));
	cr_expect_str_eq(buf2, "Signature=REDACTED&x=1");
}

Test(log, no_secret_reaches_either_format)
{
	const char *secrets[] = { "SECRETKEY123", "SESSIONTOK456", "deadbeef789", "AKIAKEYID" };
	for (int fmt = 0; fmt < 2; fmt++) {
		cr_assert_eq(stk__log_set_format(fmt ? "json" : "text"), 0);
		stk__log_level = STK_LOG_DEBUG;
		cap_begin();
		stk_dbg("GET http://h/b/k?X-Amz-Signature=%s&X-Amz-Security-Token=%s: retry",
			secrets[2], secrets[1]);
		stk_err("creds: aws_secret_access_key=%s", secrets[0]);
		stk_info("> Authorization: AWS4-HMAC-SHA256 Credential=%s/x, Signature=%s",
			 secrets[3], secrets[2]);
		stk_event(STK_LOG_INFO, "fetch",
			  "url=\"http://h/k?Signature=%s&AWSAccessKeyId=%s\" n=1", secrets[2],
			  secrets[3]);
		stk_event(STK_LOG_INFO, "creds", "aws_session_token=%s authorization=\"Bearer %s\"",
			  secrets[1], secrets[0]);
		char *out = cap_end();
		for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
			cr_expect_null(strstr(out, secrets[i]), "%s leaked (%s): %s", secrets[i],
				       fmt ? "json" : "text", out);
		cr_expect(strstr(out, "REDACTED"), "%s", out);
		if (fmt) {
			char *line = out;
			int lines = 0;
			for (char *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
				char one[4096];
				snprintf(one, sizeof(one), "%.*s", (int)(nl + 1 - line), line);
				json_decref(json_line(one));
			}
			cr_expect_eq(lines, 5);
		}
		free(out);
	}
}

/* Threads */

#define NTHREADS 8
#define NLINES	 500

static void *spam(void *arg)
{
	long t = (long)(intptr_t)arg;
	for (int i = 0; i < NLINES; i++)
		stk_event(STK_LOG_INFO, "spam", "thread=%ld i=%d pad=\"%0*d\"", t, i, 200 + (int)t,
			  0);
	return NULL;
}

Test(log, threads_never_interleave_within_a_line)
{
	cr_assert_eq(stk__log_set_format("json"), 0);
	cap_begin();
	pthread_t th[NTHREADS];
	for (long t = 0; t < NTHREADS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, spam, (void *)(intptr_t)t), 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	char *out = cap_end();
	int seen[NTHREADS] = { 0 }, lines = 0;
	char *line = out;
	for (char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		char one[1024];
		snprintf(one, sizeof(one), "%.*s", (int)(nl + 1 - line), line);
		json_t *j = json_line(one);
		json_int_t t = json_integer_value(json_object_get(j, "thread"));
		cr_assert(t >= 0 && t < NTHREADS);
		cr_expect_eq(json_integer_value(json_object_get(j, "i")), seen[t],
			     "thread %lld's lines out of order", (long long)t);
		seen[t]++;
		lines++;
		json_decref(j);
	}
	cr_expect_eq(*line, 0, "a partial line at the end");
	cr_expect_eq(lines, NTHREADS * NLINES);
	free(out);
}

/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "proto/proto.h"

static uint8_t buf[STK_MSG_MAX];
static char err[256];

Test(proto, open_round_trip)
{
	long n = stk__enc_open(buf, sizeof(buf), 7, 1, "file:///data/");
	cr_assert_gt(n, 0);
	struct stk_msg m;
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.h.type, STK_MSG_OPEN);
	cr_assert_eq(m.h.seq, 7);
	cr_assert_eq(m.u.open.flags, 1);
	cr_assert_eq(m.u.open.uri_len, strlen("file:///data/"));
	cr_assert_eq(memcmp(m.u.open.uri, "file:///data/", m.u.open.uri_len), 0);
}

Test(proto, plan_round_trip_and_chunk_limit)
{
	uint32_t idx[5] = { 4, 0, 3, 1, 2 };
	long n = stk__enc_plan(buf, sizeof(buf), 1, STK_PLAN_RESET, 9, idx, 5);
	struct stk_msg m;
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.u.plan.ds, 9);
	cr_assert_eq(m.u.plan.n, 5);
	cr_assert_eq(m.h.flags, STK_PLAN_RESET);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(stk__get_u32(m.u.plan.idx + 4 * i), idx[i]);
	/* A full chunk fits one datagram; one more index does not. */
	static uint32_t big[STK_PLAN_CHUNK + 1];
	cr_assert_gt(stk__enc_plan(buf, sizeof(buf), 1, 0, 1, big, STK_PLAN_CHUNK), 0);
	cr_assert_eq(stk__enc_plan(buf, sizeof(buf), 1, 0, 1, big, STK_PLAN_CHUNK + 1), -EMSGSIZE);
}

Test(proto, hello_carries_an_optional_plan_group)
{
	struct stk_msg m;
	/* Without a group: the 12-byte body of every version, group 0. */
	long n = stk__enc_hello(buf, sizeof(buf), 1, 42);
	cr_assert_eq(n, STK_HDR_SIZE + 12);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.u.hello.version, STK_PROTO_VERSION);
	cr_assert_eq(m.u.hello.pid, 42);
	cr_assert_eq(m.u.hello.group, 0);
	cr_assert_eq(stk__enc_hello_group(buf, sizeof(buf), 1, 42, 0), n, "group 0 is none");
	/* With one: 8 more bytes. */
	n = stk__enc_hello_group(buf, sizeof(buf), 2, 43, 0x8877665544332211ull);
	cr_assert_eq(n, STK_HDR_SIZE + 20);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.u.hello.pid, 43);
	cr_assert_eq(m.u.hello.group, 0x8877665544332211ull);
	/* Any other length is refused, naming it. */
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__msg_begin(&b, STK_MSG_HELLO, 0, 3);
	stk__put_u32(&b, STK_PROTO_MAGIC);
	stk__put_u32(&b, STK_PROTO_VERSION);
	stk__put_u32(&b, 1);
	stk__put_u32(&b, 7);
	n = stk__msg_end(&b);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "HELLO body is 16 bytes, expected 12"), "%s", err);
}

Test(proto, shared_plan_flag_round_trips)
{
	uint32_t idx[3] = { 2, 0, 1 };
	long n = stk__enc_plan(buf, sizeof(buf), 5, STK_PLAN_RESET | STK_PLAN_SHARED, 4, idx, 3);
	struct stk_msg m;
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.h.flags, STK_PLAN_RESET | STK_PLAN_SHARED);
	cr_assert_eq(m.handle, 4);
	cr_assert_eq(m.u.plan.n, 3);
	cr_assert_eq(stk__get_u32(m.u.plan.idx + 8), 1);
	cr_assert_neq(STK_PLAN_SHARED & STK_PLAN_RESET, STK_PLAN_SHARED, "distinct bits");
}

Test(proto, header_length_must_match_datagram)
{
	long n = stk__enc_obj(buf, sizeof(buf), STK_MSG_GET, 3, 1, 2);
	struct stk_msg m;
	cr_assert_eq(stk__msg_decode(buf, (size_t)n - 1, &m, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "len="), "%s", err);
	cr_assert_eq(stk__msg_decode(buf, 5, &m, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "shorter than"), "%s", err);
}

Test(proto, bad_bodies_are_rejected_with_the_field_named)
{
	struct stk_msg m;
	/* GET with a 4-byte body. */
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__msg_begin(&b, STK_MSG_GET, 0, 1);
	stk__put_u32(&b, 1);
	long n = stk__msg_end(&b);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "GET body is 4 bytes"), "%s", err);
	cr_assert_eq(m.h.seq, 1, "the header stays usable for the error reply");

	/* OPEN whose uri_len claims more than the body holds. */
	stk__buf_init(&b, buf, sizeof(buf));
	stk__msg_begin(&b, STK_MSG_OPEN, 0, 2);
	stk__put_u32(&b, 0);
	stk__put_u32(&b, 100);
	stk__put_bytes(&b, "file:///x", 9);
	n = stk__msg_end(&b);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);

	/* OPEN with uri_len beyond the maximum. */
	stk__buf_init(&b, buf, sizeof(buf));
	stk__msg_begin(&b, STK_MSG_OPEN, 0, 2);
	stk__put_u32(&b, 0);
	stk__put_u32(&b, STK_URI_MAX + 1);
	n = stk__msg_end(&b);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "uri_len"), "%s", err);

	/* PLAN whose n exceeds the body. */
	stk__buf_init(&b, buf, sizeof(buf));
	stk__msg_begin(&b, STK_MSG_PLAN, 0, 3);
	stk__put_u32(&b, 1);
	stk__put_u32(&b, 10);
	stk__put_u32(&b, 0);
	n = stk__msg_end(&b);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);

	/* Unknown type and a bad HELLO magic. */
	stk__buf_init(&b, buf, sizeof(buf));
	stk__msg_begin(&b, 77, 0, 4);
	n = stk__msg_end(&b);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "unknown message type 77"), "%s", err);
	n = stk__enc_hello(buf, sizeof(buf), 1, 1);
	buf[STK_HDR_SIZE] ^= 0xff;
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);
}

Test(proto, replies_round_trip)
{
	struct stk_msg_hdr req = { .type = STK_MSG_GET, .seq = 42 };
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__reply_begin(&b, &req, 0, NULL);
	stk__put_u32(&b, STK_GET_HIT);
	stk__put_u64(&b, 123456789012ull);
	long n = stk__msg_end(&b);
	struct stk_reply r;
	/* A protocol 2 GET reply (no segment) is refused, naming its length. */
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "GET reply is 12 bytes"), "%s", err);
	stk__put_u32(&b, 3);
	stk__put_u32(&b, 1);
	stk__put_u64(&b, 4096);
	stk__put_u64(&b, 1ull << 40);
	n = stk__msg_end(&b);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(r.h.seq, 42);
	cr_assert_eq(r.u.get.flags, STK_GET_HIT);
	cr_assert_eq(r.u.get.size, 123456789012ull);
	cr_assert_eq(r.u.get.seg, 3);
	cr_assert_eq(r.u.get.off, 4096);

	stk__buf_init(&b, buf, sizeof(buf));
	stk__reply_begin(&b, &req, -ENOENT, "file:///d/x: No such file");
	n = stk__msg_end(&b);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(r.status, -ENOENT);
	cr_assert_str_eq(r.errmsg, "file:///d/x: No such file");
	/* A message length that overruns the datagram is refused. */
	buf[STK_HDR_SIZE + 4] = 200;
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), -EPROTO);
}

static int count_entries(void *arg, uint32_t i, const char *key, uint32_t kl, uint64_t size)
{
	(*(int *)arg)++;
	return 0;
}

Test(proto, catalog_walk_checks_bounds)
{
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__put_u32(&b, STK_CATALOG_MAGIC);
	stk__put_u32(&b, 2);
	stk__put_u64(&b, 10);
	stk__put_u32(&b, 1);
	stk__put_bytes(&b, "a", 1);
	stk__put_u64(&b, 20);
	stk__put_u32(&b, 2);
	stk__put_bytes(&b, "bc", 2);
	int seen = 0;
	uint32_t cnt = 0;
	cr_assert_eq(stk__catalog_walk(buf, b.len, count_entries, &seen, &cnt, err, sizeof(err)),
		     0);
	cr_assert_eq(seen, 2);
	cr_assert_eq(cnt, 2);
	cr_assert_eq(stk__catalog_walk(buf, b.len - 1, NULL, NULL, &cnt, err, sizeof(err)),
		     -EPROTO);
	cr_assert_eq(stk__catalog_walk(buf, b.len + 1, NULL, NULL, &cnt, err, sizeof(err)),
		     -EPROTO);
}

/* A STATUS reply with the given fields, and the last-error tail when msg is non-NULL. */
static long status_reply(const char *msg, uint16_t claimed_len)
{
	struct stk_msg_hdr req = { .type = STK_MSG_STATUS, .seq = 9 };
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__reply_begin(&b, &req, 0, NULL);
	stk__put_u32(&b, 3);	/* objects */
	stk__put_u32(&b, 1);	/* resident */
	stk__put_u32(&b, 0);	/* inflight */
	stk__put_u32(&b, 2);	/* failed */
	stk__put_u32(&b, 2);	/* warm */
	stk__put_u64(&b, 3000); /* bytes */
	stk__put_u64(&b, 1000); /* resident bytes */
	if (msg) {
		stk__put_u16(&b, claimed_len);
		stk__put_bytes(&b, msg, strlen(msg));
	}
	return stk__msg_end(&b);
}

Test(proto, status_reply_carries_the_last_fetch_error)
{
	struct stk_reply r;
	/* A daemon that predates the message: 36 bytes, no message. */
	long n = status_reply(NULL, 0);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(r.u.status.failed, 2);
	cr_assert_eq(r.u.status.resident_bytes, 1000);
	cr_assert_eq(r.u.status.last_error_len, 0);

	/* The new layout: u16 len + bytes, no NUL. */
	const char *m = "file:///r/big: 300000000 bytes is larger than the whole RAM budget";
	n = status_reply(m, (uint16_t)strlen(m));
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(r.u.status.failed, 2);
	cr_assert_eq(r.u.status.warm, 2);
	cr_assert_eq(r.u.status.last_error_len, strlen(m));
	cr_assert_eq(memcmp(r.u.status.last_error, m, strlen(m)), 0);

	/* An empty message is len 0. */
	n = status_reply("", 0);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(r.u.status.last_error_len, 0);

	/* A len past the datagram, or short of it, is refused. */
	n = status_reply("abc", 4);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "STATUS last error length 4"), "%s", err);
	n = status_reply("abc", 60000);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), -EPROTO);
	n = status_reply("abc", 2);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), -EPROTO);

	/* A lone byte after the 36 (half a length) is refused too. */
	n = status_reply(NULL, 0);
	buf[n] = 0;
	buf[8] = 4 + 36 + 1;
	cr_assert_eq(stk__reply_decode(buf, (size_t)n + 1, &r, err, sizeof(err)), -EPROTO);
}

/* Decodes buf as a reply and checks the header it must echo. */
static void decode_reply(long n, const struct stk_msg_hdr *req, struct stk_reply *r)
{
	cr_assert_gt(n, 0, "encoder failed: %ld", n);
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(r->h.type, req->type | STK_MSG_REPLY);
	cr_assert_eq(r->h.seq, req->seq);
	cr_assert_eq(r->h.len, (uint32_t)n - STK_HDR_SIZE);
}

Test(proto, reply_encoders_round_trip)
{
	struct stk_reply r;
	struct stk_msg_hdr hello = { .type = STK_MSG_HELLO, .seq = 1 };
	decode_reply(stk__enc_reply_hello(buf, sizeof(buf), &hello, 77, 256, 1ull << 33), &hello,
		     &r);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.u.hello.version, 77);
	cr_assert_eq(r.u.hello.pin_buckets, 256);
	cr_assert_eq(r.u.hello.pin_limit, 1ull << 33);
	long n = stk__enc_reply_hello(buf, sizeof(buf), &hello, 4, 100, 1);
	char why[128];
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, why, sizeof(why)), -EPROTO,
		     "pin buckets must be a power of two");

	struct stk_msg_hdr open = { .type = STK_MSG_OPEN, .seq = 0xfffffffe };
	decode_reply(
	    stk__enc_reply_open(buf, sizeof(buf), &open, 3, 1000001, 1ull << 40, 99, 123456), &open,
	    &r);
	cr_assert_eq(r.u.open.ds, 3);
	cr_assert_eq(r.u.open.count, 1000001);
	cr_assert_eq(r.u.open.bytes, 1ull << 40);
	cr_assert_eq(r.u.open.ds_id, 99);
	cr_assert_eq(r.u.open.cat_len, 123456);

	struct stk_msg_hdr get = { .type = STK_MSG_GET, .seq = 42 };
	struct stk_get_where gw = { .flags = STK_GET_HIT,
				    .size = 123456789012ull,
				    .seg = 7,
				    .gen = 9,
				    .off = 1ull << 33,
				    .seg_size = 1ull << 40 };
	decode_reply(stk__enc_reply_get(buf, sizeof(buf), &get, &gw), &get, &r);
	cr_assert_eq(r.u.get.flags, STK_GET_HIT);
	cr_assert_eq(r.u.get.size, 123456789012ull);
	cr_assert_eq(r.u.get.seg, 7);
	cr_assert_eq(r.u.get.gen, 9);
	cr_assert_eq(r.u.get.off, 1ull << 33);
	cr_assert_eq(r.u.get.seg_size, 1ull << 40);
	/* An object that would end past its segment is refused. */
	gw.off = (1ull << 40) - 10;
	char e[200];
	long gl = stk__enc_reply_get(buf, sizeof(buf), &get, &gw);
	cr_assert_eq(stk__reply_decode(buf, (size_t)gl, &r, e, sizeof(e)), -EPROTO);
	cr_assert(strstr(e, "do not fit"), "%s", e);

	static const uint16_t bodiless[] = { STK_MSG_PLAN, STK_MSG_WARM };
	for (unsigned i = 0; i < 2; i++) {
		struct stk_msg_hdr ok = { .type = bodiless[i], .seq = i };
		decode_reply(stk__enc_reply_ok(buf, sizeof(buf), &ok), &ok, &r);
		cr_assert_eq(r.status, 0);
		cr_assert_str_eq(r.errmsg, "");
	}
}

Test(proto, stats_reply_round_trip)
{
	struct stk_reply r;
	struct stk_msg_hdr req = { .type = STK_MSG_STATS, .seq = 5 };
	uint64_t v[STK_STATS_COUNT + 2];
	for (unsigned i = 0; i < STK_STATS_COUNT + 2; i++)
		v[i] = 1000ull * i + 7;
	decode_reply(stk__enc_reply_stats(buf, sizeof(buf), &req, v, STK_STATS_COUNT), &req, &r);
	cr_assert_eq(r.u.stats.n, STK_STATS_COUNT);
	for (unsigned i = 0; i < STK_STATS_COUNT; i++)
		cr_assert_eq(r.u.stats.v[i], v[i], "counter %u", i);
	/* A newer daemon's extra counters are skipped; an older one's missing ones read 0. */
	decode_reply(stk__enc_reply_stats(buf, sizeof(buf), &req, v, STK_STATS_COUNT + 2), &req,
		     &r);
	cr_assert_eq(r.u.stats.n, STK_STATS_COUNT);
	cr_assert_eq(r.u.stats.v[STK_STATS_COUNT - 1], v[STK_STATS_COUNT - 1]);
	decode_reply(stk__enc_reply_stats(buf, sizeof(buf), &req, v, 3), &req, &r);
	cr_assert_eq(r.u.stats.n, 3);
	cr_assert_eq(r.u.stats.v[2], v[2]);
	cr_assert_eq(r.u.stats.v[3], 0);
}

Test(proto, status_reply_encoder_round_trip)
{
	struct stk_reply r;
	struct stk_msg_hdr req = { .type = STK_MSG_STATUS, .seq = 9 };
	const char *m = "file:///r/big: 300000000 bytes is larger than the whole RAM budget";
	struct stk_ds_status st = { .objects = 3,
				    .resident = 1,
				    .inflight = 4,
				    .failed = 2,
				    .warm = 3,
				    .bytes = 3000,
				    .resident_bytes = 1000,
				    .last_error = m,
				    .last_error_len = (uint16_t)strlen(m) };
	decode_reply(stk__enc_reply_status(buf, sizeof(buf), &req, &st), &req, &r);
	cr_assert_eq(r.u.status.objects, 3);
	cr_assert_eq(r.u.status.resident, 1);
	cr_assert_eq(r.u.status.inflight, 4);
	cr_assert_eq(r.u.status.failed, 2);
	cr_assert_eq(r.u.status.warm, 3);
	cr_assert_eq(r.u.status.bytes, 3000);
	cr_assert_eq(r.u.status.resident_bytes, 1000);
	cr_assert_eq(r.u.status.last_error_len, strlen(m));
	cr_assert_eq(memcmp(r.u.status.last_error, m, strlen(m)), 0);

	/* No error: length 0.  A longer one is cut to STK_ERRMSG_MAX bytes. */
	st.last_error = NULL;
	decode_reply(stk__enc_reply_status(buf, sizeof(buf), &req, &st), &req, &r);
	cr_assert_eq(r.u.status.last_error_len, 0);
	static char big[STK_ERRMSG_MAX + 100];
	memset(big, 'x', sizeof(big));
	st.last_error = big;
	st.last_error_len = sizeof(big);
	decode_reply(stk__enc_reply_status(buf, sizeof(buf), &req, &st), &req, &r);
	cr_assert_eq(r.u.status.last_error_len, STK_ERRMSG_MAX);
	cr_assert_eq(r.u.status.resident_bytes, 1000);
}

Test(proto, endpoints_reply_round_trip)
{
	struct stk_reply r;
	struct stk_msg_hdr req = { .type = STK_MSG_ENDPOINTS, .seq = 11 };
	static char longname[STK_ENDPOINT_NAME_MAX + 20];
	memset(longname, 'h', sizeof(longname));
	struct stk_endpoint_entry in[3] = {
		{ .name = "http://127.0.0.1:9000",
		  .name_len = 21,
		  .requests = 1,
		  .retries = 2,
		  .errors = 3,
		  .bytes = 4,
		  .busy_ns = 5 },
		{ .name = "", .name_len = 0, .requests = 10, .busy_ns = 1ull << 50 },
		{ .name = longname, .name_len = sizeof(longname), .errors = 99 },
	};
	decode_reply(stk__enc_reply_endpoints(buf, sizeof(buf), &req, in, 3), &req, &r);
	cr_assert_eq(r.u.endpoints.n, 3);
	const uint8_t *p = r.u.endpoints.p;
	struct stk_endpoint_entry e;
	p = stk__endpoints_next(p, &e);
	cr_assert_eq(e.name_len, 21);
	cr_assert_eq(memcmp(e.name, "http://127.0.0.1:9000", 21), 0);
	cr_assert(e.requests == 1 && e.retries == 2 && e.errors == 3 && e.bytes == 4 &&
		  e.busy_ns == 5);
	p = stk__endpoints_next(p, &e);
	cr_assert_eq(e.name_len, 0);
	cr_assert_eq(e.requests, 10);
	cr_assert_eq(e.busy_ns, 1ull << 50);
	p = stk__endpoints_next(p, &e);
	cr_assert_eq(e.name_len, STK_ENDPOINT_NAME_MAX, "a long name is cut, not refused");
	cr_assert_eq(e.errors, 99);
	cr_assert_eq(p, buf + STK_HDR_SIZE + r.h.len, "the entries end where the datagram does");

	/* None at all. */
	decode_reply(stk__enc_reply_endpoints(buf, sizeof(buf), &req, NULL, 0), &req, &r);
	cr_assert_eq(r.u.endpoints.n, 0);
	/* More than a datagram holds is refused, not truncated. */
	static struct stk_endpoint_entry many[400];
	for (unsigned i = 0; i < 400; i++)
		many[i] = (struct stk_endpoint_entry){ .name = longname, .name_len = 127 };
	cr_assert_eq(stk__enc_reply_endpoints(buf, sizeof(buf), &req, many, 400), -EMSGSIZE);
}

Test(proto, error_reply_round_trip)
{
	struct stk_reply r;
	struct stk_msg_hdr req = { .type = STK_MSG_OPEN, .seq = 8 };
	decode_reply(stk__enc_reply_err(buf, sizeof(buf), &req, -EACCES, "uid 5 is not allowed"),
		     &req, &r);
	cr_assert_eq(r.status, -EACCES);
	cr_assert_str_eq(r.errmsg, "uid 5 is not allowed");
	decode_reply(stk__enc_reply_err(buf, sizeof(buf), &req, -EIO, NULL), &req, &r);
	cr_assert_eq(r.status, -EIO);
	cr_assert_str_eq(r.errmsg, "");
	/* A message longer than the maximum is cut, and still NUL-terminated. */
	static char big[STK_ERRMSG_MAX * 2];
	memset(big, 'e', sizeof(big) - 1);
	decode_reply(stk__enc_reply_err(buf, sizeof(buf), &req, -E2BIG, big), &req, &r);
	cr_assert_eq(strlen(r.errmsg), STK_ERRMSG_MAX - 1);
	/* An error reply to a type the decoder does not know still decodes: it answers it. */
	struct stk_msg_hdr odd = { .type = 77, .seq = 1 };
	decode_reply(stk__enc_reply_err(buf, sizeof(buf), &odd, -EPROTO, "unknown"), &odd, &r);
	/* Status 0 is not an error, and too small a buffer is refused. */
	cr_assert_eq(stk__enc_reply_err(buf, sizeof(buf), &req, 0, "x"), -EINVAL);
	cr_assert_eq(stk__enc_reply_open(buf, 20, &req, 1, 1, 1, 1, 1), -EMSGSIZE);
}

Test(proto, decoded_requests_name_their_handle)
{
	struct stk_msg m;
	uint32_t idx = 0;
	long n = stk__enc_plan(buf, sizeof(buf), 1, 0, 5, &idx, 1);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.handle, 5);
	n = stk__enc_obj(buf, sizeof(buf), STK_MSG_RELEASE, 1, 6, 2);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.handle, 6);
	cr_assert_eq(m.u.obj.index, 2);
	n = stk__enc_ds(buf, sizeof(buf), STK_MSG_STATUS, 1, 7);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.handle, 7);
	n = stk__enc_endpoints(buf, sizeof(buf), 3);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.h.type, STK_MSG_ENDPOINTS);
	cr_assert_eq(m.handle, 0, "ENDPOINTS names no dataset");
	n = stk__enc_hello(buf, sizeof(buf), 1, 1);
	cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.handle, 0);
}

static struct stk_stall_rec stall_of(uint64_t base)
{
	return (struct stk_stall_rec){ .requests = base + 1,
				       .objects = base + 2,
				       .hits = base + 3,
				       .bytes = base + 4,
				       .stall_ns = base + 5,
				       .fetch_stall_ns = base + 6,
				       .delivery_stall_ns = base + 7,
				       .avoided_ns = base + 8,
				       .avoided_model_ns = base + 9,
				       .unknown_objects = base + 10 };
}

static void assert_stall(const struct stk_stall_rec *t, uint64_t base)
{
	struct stk_stall_rec w = stall_of(base);
	cr_assert(t->requests == w.requests && t->objects == w.objects && t->hits == w.hits &&
		      t->bytes == w.bytes && t->stall_ns == w.stall_ns &&
		      t->fetch_stall_ns == w.fetch_stall_ns &&
		      t->delivery_stall_ns == w.delivery_stall_ns &&
		      t->avoided_ns == w.avoided_ns && t->avoided_model_ns == w.avoided_model_ns &&
		      t->unknown_objects == w.unknown_objects,
		  "stall totals of base %llu differ", (unsigned long long)base);
}

Test(proto, list_requests_have_no_body)
{
	static const uint16_t types[] = { STK_MSG_CLIENTS, STK_MSG_DATASETS };
	for (unsigned i = 0; i < 2; i++) {
		struct stk_msg m;
		long n = stk__enc_list(buf, sizeof(buf), types[i], 40 + i);
		cr_assert_eq(n, STK_HDR_SIZE);
		cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(m.h.type, types[i]);
		cr_assert_eq(m.h.seq, 40 + i);
		cr_assert_eq(m.handle, 0, "%s names no dataset", stk__msg_name(types[i]));
		/* A body is refused, naming the type. */
		struct stk_buf b;
		stk__buf_init(&b, buf, sizeof(buf));
		stk__msg_begin(&b, types[i], 0, 1);
		stk__put_u32(&b, 7);
		n = stk__msg_end(&b);
		cr_assert_eq(stk__msg_decode(buf, (size_t)n, &m, err, sizeof(err)), -EBADMSG);
		cr_assert(strstr(err, stk__msg_name(types[i])) && strstr(err, "4 bytes"), "%s",
			  err);
	}
	cr_assert_str_eq(stk__msg_name(STK_MSG_CLIENTS), "CLIENTS");
	cr_assert_str_eq(stk__msg_name(STK_MSG_DATASETS | STK_MSG_REPLY), "DATASETS");
	cr_assert_eq(STK_MSG_TYPE_MAX, STK_MSG_DATASETS);
}

Test(proto, clients_reply_round_trip)
{
	struct stk_reply r;
	struct stk_msg_hdr req = { .type = STK_MSG_CLIENTS, .seq = 21 };
	struct stk_client_rec in[2] = {
		{ .pid = 4242,
		  .uid = 1000,
		  .id = 1ull << 60,
		  .age_ns = 123456789,
		  .open = 3,
		  .pinned_bytes = 1ull << 33,
		  .stall = stall_of(100) },
		{ .pid = UINT32_MAX, .uid = 0, .id = 1, .stall = stall_of(1ull << 50) },
	};
	uint32_t sent = 99;
	decode_reply(stk__enc_reply_clients(buf, sizeof(buf), &req, 5, in, 2, &sent), &req, &r);
	cr_assert_eq(sent, 2);
	cr_assert_eq(r.u.list.total, 5);
	cr_assert_eq(r.u.list.n, 2);
	cr_assert_eq(r.h.len, 4 + STK_LIST_HDR + 2 * STK_CLIENT_REC);
	const uint8_t *p = r.u.list.p;
	struct stk_client_rec e;
	p = stk__client_next(p, &e);
	cr_assert(e.pid == 4242 && e.uid == 1000 && e.id == 1ull << 60 && e.age_ns == 123456789 &&
		  e.open == 3 && e.pinned_bytes == 1ull << 33);
	assert_stall(&e.stall, 100);
	p = stk__client_next(p, &e);
	cr_assert(e.pid == UINT32_MAX && e.uid == 0 && e.id == 1 && e.age_ns == 0);
	assert_stall(&e.stall, 1ull << 50);
	cr_assert_eq(p, buf + STK_HDR_SIZE + r.h.len, "the records end where the datagram does");

	/* None. */
	decode_reply(stk__enc_reply_clients(buf, sizeof(buf), &req, 0, NULL, 0, &sent), &req, &r);
	cr_assert(sent == 0 && r.u.list.total == 0 && r.u.list.n == 0);
}

Test(proto, datasets_reply_round_trip)
{
	struct stk_reply r;
	struct stk_msg_hdr req = { .type = STK_MSG_DATASETS, .seq = 22 };
	static char longuri[STK_LIST_URI_MAX + 50], longlabel[STK_LABEL_MAX + 9];
	memset(longuri, 'u', sizeof(longuri));
	memset(longlabel, 'l', sizeof(longlabel));
	const char *uri = "file:///data/train/";
	struct stk_dataset_rec in[3] = {
		{ .id = 7,
		  .users = 2,
		  .objects = 1000001,
		  .resident = 500,
		  .inflight = 4,
		  .failed = 1,
		  .bytes = 1ull << 40,
		  .resident_bytes = 1ull << 30,
		  .stall = stall_of(7),
		  .label = "train",
		  .label_len = 5,
		  .uri = uri,
		  .uri_len = (uint16_t)strlen(uri) },
		{ .id = 8, .label = NULL, .label_len = 9, .uri = NULL, .uri_len = 3 },
		{ .id = 9,
		  .label = longlabel,
		  .label_len = sizeof(longlabel),
		  .uri = longuri,
		  .uri_len = sizeof(longuri),
		  .stall = stall_of(9) },
	};
	uint32_t sent;
	decode_reply(stk__enc_reply_datasets(buf, sizeof(buf), &req, 3, in, 3, &sent), &req, &r);
	cr_assert_eq(sent, 3);
	cr_assert(r.u.list.total == 3 && r.u.list.n == 3);
	const uint8_t *p = r.u.list.p;
	struct stk_dataset_rec e;
	p = stk__dataset_next(p, &e);
	cr_assert(e.id == 7 && e.users == 2 && e.objects == 1000001 && e.resident == 500 &&
		  e.inflight == 4 && e.failed == 1 && e.bytes == 1ull << 40 &&
		  e.resident_bytes == 1ull << 30);
	assert_stall(&e.stall, 7);
	cr_assert(e.label_len == 5 && !memcmp(e.label, "train", 5));
	cr_assert(e.uri_len == strlen(uri) && !memcmp(e.uri, uri, e.uri_len));
	p = stk__dataset_next(p, &e);
	cr_assert(e.id == 8 && e.label_len == 0 && e.uri_len == 0, "NULL strings go as empty");
	p = stk__dataset_next(p, &e);
	cr_assert_eq(e.label_len, STK_LABEL_MAX, "a long label is cut, not refused");
	cr_assert_eq(e.uri_len, STK_LIST_URI_MAX, "a long URI is cut to its first bytes");
	cr_assert_eq(memcmp(e.uri, longuri, STK_LIST_URI_MAX), 0);
	assert_stall(&e.stall, 9);
	cr_assert_eq(p, buf + STK_HDR_SIZE + r.h.len);
}

Test(proto, list_replies_hold_what_fits)
{
	struct stk_reply r;
	struct stk_msg_hdr creq = { .type = STK_MSG_CLIENTS, .seq = 1 };
	struct stk_msg_hdr dreq = { .type = STK_MSG_DATASETS, .seq = 2 };
	static struct stk_client_rec cl[1000];
	static struct stk_dataset_rec ds[400];
	static char uri[STK_LIST_URI_MAX];
	memset(uri, 'x', sizeof(uri));
	for (unsigned i = 0; i < 1000; i++)
		cl[i] = (struct stk_client_rec){ .pid = i, .stall = stall_of(i) };
	for (unsigned i = 0; i < 400; i++)
		ds[i] = (struct stk_dataset_rec){ .id = i, .uri = uri, .uri_len = sizeof(uri) };

	/* Cut to the room given: as many whole records as fit, and total says the rest. */
	uint32_t sent;
	long n = stk__enc_reply_clients(buf, STK_LIST_REPLY_MAX, &creq, 1000, cl, 1000, &sent);
	decode_reply(n, &creq, &r);
	uint32_t want = (STK_LIST_REPLY_MAX - STK_HDR_SIZE - 4 - STK_LIST_HDR) / STK_CLIENT_REC;
	cr_assert_eq(sent, want, "sent %u, want %u", sent, want);
	cr_assert(r.u.list.n == want && r.u.list.total == 1000);
	cr_assert_leq(n, STK_LIST_REPLY_MAX);
	struct stk_client_rec e;
	const uint8_t *p = r.u.list.p;
	for (uint32_t i = 0; i < r.u.list.n; i++)
		p = stk__client_next(p, &e);
	cr_assert_eq(e.pid, want - 1, "in order");

	/* Never past one datagram, whatever the room. */
	static uint8_t huge[2 * STK_MSG_MAX];
	n = stk__enc_reply_clients(huge, sizeof(huge), &creq, 1000, cl, 1000, &sent);
	cr_assert_gt(n, 0);
	cr_assert_leq(n, STK_MSG_MAX);
	cr_assert_eq(sent, (STK_MSG_MAX - STK_HDR_SIZE - 4 - STK_LIST_HDR) / STK_CLIENT_REC);

	n = stk__enc_reply_datasets(buf, STK_LIST_REPLY_MAX, &dreq, 400, ds, 400, &sent);
	decode_reply(n, &dreq, &r);
	want = (STK_LIST_REPLY_MAX - STK_HDR_SIZE - 4 - STK_LIST_HDR) /
	       (STK_DATASET_REC_MIN + STK_LIST_URI_MAX);
	cr_assert_eq(sent, want, "sent %u, want %u", sent, want);
	cr_assert(r.u.list.n == want && r.u.list.total == 400);

	/* Room for not even the header: refused. */
	cr_assert_eq(stk__enc_reply_clients(buf, 20, &creq, 1, cl, 1, &sent), -EMSGSIZE);
	cr_assert_eq(stk__enc_reply_datasets(buf, 20, &dreq, 1, ds, 1, NULL), -EMSGSIZE);
	/* Room for the header only: an empty list, with its total. */
	n = stk__enc_reply_clients(buf, STK_HDR_SIZE + 4 + STK_LIST_HDR, &creq, 3, cl, 3, &sent);
	decode_reply(n, &creq, &r);
	cr_assert(sent == 0 && r.u.list.n == 0 && r.u.list.total == 3);
}

/* Rewrites the u32 at body offset off of the datagram in buf. */
static void poke_u32(size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		buf[STK_HDR_SIZE + off + i] = (uint8_t)(v >> (8 * i));
}

static void poke_u16(size_t off, uint16_t v)
{
	buf[STK_HDR_SIZE + off] = (uint8_t)v;
	buf[STK_HDR_SIZE + off + 1] = (uint8_t)(v >> 8);
}

/* Patches the header's len to a datagram of n bytes. */
static void relen(size_t n)
{
	uint32_t body = (uint32_t)(n - STK_HDR_SIZE);
	for (int i = 0; i < 4; i++)
		buf[8 + i] = (uint8_t)(body >> (8 * i));
}

/* Asserts the reply in buf (n bytes) is refused, with needle in the message. */
static void refused(size_t n, const char *needle)
{
	struct stk_reply r;
	relen(n);
	err[0] = 0;
	cr_assert_eq(stk__reply_decode(buf, n, &r, err, sizeof(err)), -EPROTO,
		     "accepted; want \"%s\"", needle);
	cr_assert(strstr(err, needle), "\"%s\" lacks \"%s\"", err, needle);
}

Test(proto, list_replies_check_every_length)
{
	struct stk_msg_hdr creq = { .type = STK_MSG_CLIENTS, .seq = 1 };
	struct stk_msg_hdr dreq = { .type = STK_MSG_DATASETS, .seq = 2 };
	struct stk_client_rec cl[2] = { { .pid = 1 }, { .pid = 2 } };
	struct stk_dataset_rec ds[2] = {
		{ .id = 1, .label = "lab", .label_len = 3, .uri = "file:///a/", .uri_len = 10 },
		{ .id = 2, .uri = "file:///b/", .uri_len = 10 },
	};
	/* Body offsets: status 0, total 4, n 8, records from 12. */
	const size_t N = 8, REC = 12;

	/* CLIENTS: no total and n, n past total, a record cut short, bytes left over. */
	long n = stk__enc_reply_clients(buf, sizeof(buf), &creq, 2, cl, 2, NULL);
	refused(STK_HDR_SIZE + 4 + 6, "lacks total and n");
	n = stk__enc_reply_clients(buf, sizeof(buf), &creq, 2, cl, 2, NULL);
	poke_u32(4, 1);
	refused((size_t)n, "n=2 exceeds total=1");
	n = stk__enc_reply_clients(buf, sizeof(buf), &creq, 2, cl, 2, NULL);
	refused((size_t)n - 1, "CLIENTS record 1 is truncated");
	n = stk__enc_reply_clients(buf, sizeof(buf), &creq, 2, cl, 2, NULL);
	poke_u32(N, 3);
	poke_u32(4, 3);
	refused((size_t)n, "CLIENTS record 2 is truncated");
	n = stk__enc_reply_clients(buf, sizeof(buf), &creq, 2, cl, 2, NULL);
	poke_u32(N, 1);
	refused((size_t)n, "CLIENTS reply has 116 trailing bytes");
	/* A huge n over a short body fails at once, without reading past it. */
	n = stk__enc_reply_clients(buf, sizeof(buf), &creq, 2, cl, 2, NULL);
	poke_u32(4, UINT32_MAX);
	poke_u32(N, UINT32_MAX);
	refused((size_t)n, "record 2 is truncated");

	/* DATASETS: a label or URI past its maximum or the body, a record cut short. */
	const size_t L0 = REC + STK_DATASET_FIXED; /* record 0's label_len */
	const size_t U0 = L0 + 2 + 3;		   /* its uri_len */
	const size_t R1 = U0 + 2 + 10;		   /* record 1 */
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	refused(STK_HDR_SIZE + 4 + 7, "DATASETS reply of 7 bytes lacks total and n");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	poke_u16(L0, STK_LABEL_MAX + 1);
	refused((size_t)n, "record 0 label_len=64 exceeds 63");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	poke_u16(U0, STK_LIST_URI_MAX + 1);
	refused((size_t)n, "record 0 uri_len=257 exceeds 256");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	poke_u16(R1 + STK_DATASET_FIXED, 60); /* record 1's label runs past the end */
	refused((size_t)n, "record 1 label overruns");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	poke_u16(R1 + STK_DATASET_FIXED + 2, 11); /* record 1's URI one byte too long */
	refused((size_t)n, "record 1 uri overruns");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	refused(STK_HDR_SIZE + R1 + STK_DATASET_FIXED + 1, "record 1 is truncated");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	refused(STK_HDR_SIZE + R1 + STK_DATASET_FIXED + 3, "record 1 label overruns");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	refused(STK_HDR_SIZE + R1 + STK_DATASET_FIXED + 4 + 5, "record 1 uri overruns");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	poke_u32(N, 1);
	refused((size_t)n, "DATASETS reply has 134 trailing bytes");
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	poke_u32(N, 3);
	poke_u32(4, 3);
	refused((size_t)n, "DATASETS record 2 is truncated");

	/* And the untouched reply still decodes: the checks above fail on what they poke. */
	struct stk_reply r;
	n = stk__enc_reply_datasets(buf, sizeof(buf), &dreq, 2, ds, 2, NULL);
	decode_reply(n, &dreq, &r);
	cr_assert_eq(r.u.list.n, 2);
	/* An error reply to either decodes as one. */
	decode_reply(stk__enc_reply_err(buf, sizeof(buf), &creq, -ENOMEM, "out of memory"), &creq,
		     &r);
	cr_assert_eq(r.status, -ENOMEM);
}

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
	cr_assert_eq(stk__reply_decode(buf, (size_t)n, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(r.h.seq, 42);
	cr_assert_eq(r.u.get.flags, STK_GET_HIT);
	cr_assert_eq(r.u.get.size, 123456789012ull);

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

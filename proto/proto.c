/* SPDX-License-Identifier: MIT */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void stk__buf_init(struct stk_buf *b, void *mem, size_t cap)
{
	b->p = mem;
	b->cap = cap;
	b->len = 0;
	b->overflow = false;
}

void stk__put_bytes(struct stk_buf *b, const void *p, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

void stk__put_u16(struct stk_buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	stk__put_bytes(b, x, 2);
}

void stk__put_u32(struct stk_buf *b, uint32_t v)
{
	uint8_t x[4];
	for (int i = 0; i < 4; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	stk__put_bytes(b, x, 4);
}

void stk__put_u64(struct stk_buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	stk__put_bytes(b, x, 8);
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t stk__get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t stk__get_u64(const uint8_t *p)
{
	return (uint64_t)stk__get_u32(p) | (uint64_t)stk__get_u32(p + 4) << 32;
}

void stk__msg_begin(struct stk_buf *b, uint16_t type, uint16_t flags, uint32_t seq)
{
	stk__put_u16(b, type);
	stk__put_u16(b, flags);
	stk__put_u32(b, seq);
	stk__put_u32(b, 0);
}

long stk__msg_end(struct stk_buf *b)
{
	if (b->overflow || b->len < STK_HDR_SIZE || b->len > STK_MSG_MAX)
		return -EMSGSIZE;
	uint32_t body = (uint32_t)(b->len - STK_HDR_SIZE);
	for (int i = 0; i < 4; i++)
		b->p[8 + i] = (uint8_t)(body >> (8 * i));
	return (long)b->len;
}

long stk__enc_hello_group(void *mem, size_t cap, uint32_t seq, uint32_t pid, uint64_t group)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, STK_MSG_HELLO, 0, seq);
	stk__put_u32(&b, STK_PROTO_MAGIC);
	stk__put_u32(&b, STK_PROTO_VERSION);
	stk__put_u32(&b, pid);
	if (group)
		stk__put_u64(&b, group);
	return stk__msg_end(&b);
}

long stk__enc_hello(void *mem, size_t cap, uint32_t seq, uint32_t pid)
{
	return stk__enc_hello_group(mem, cap, seq, pid, 0);
}

long stk__enc_open(void *mem, size_t cap, uint32_t seq, uint32_t flags, const char *uri)
{
	size_t n = strlen(uri);
	if (n == 0 || n > STK_URI_MAX)
		return -ENAMETOOLONG;
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, STK_MSG_OPEN, 0, seq);
	stk__put_u32(&b, flags);
	stk__put_u32(&b, (uint32_t)n);
	stk__put_bytes(&b, uri, n);
	return stk__msg_end(&b);
}

long stk__enc_plan(void *mem, size_t cap, uint32_t seq, uint16_t flags, uint32_t ds,
		   const uint32_t *idx, uint32_t n)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, STK_MSG_PLAN, flags, seq);
	stk__put_u32(&b, ds);
	stk__put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++)
		stk__put_u32(&b, idx[i]);
	return stk__msg_end(&b);
}

long stk__enc_batch(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds,
		    const uint32_t *idx, uint32_t n)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, type, 0, seq);
	stk__put_u32(&b, ds);
	stk__put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++)
		stk__put_u32(&b, idx[i]);
	return stk__msg_end(&b);
}

long stk__enc_waits(void *mem, size_t cap, uint32_t seq, uint32_t ds, const struct stk_wait_rec *e,
		    uint32_t n)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, STK_MSG_WAITS, 0, seq);
	stk__put_u32(&b, ds);
	stk__put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++) {
		stk__put_u32(&b, e[i].index);
		stk__put_u32(&b, e[i].flags);
		stk__put_u64(&b, e[i].wait_ns);
	}
	return stk__msg_end(&b);
}

void stk__wait_entry(const struct stk_msg *m, uint32_t i, struct stk_wait_rec *out)
{
	const uint8_t *p = m->u.waits.e + (size_t)i * STK_WAITS_ENTRY;
	out->index = stk__get_u32(p);
	out->flags = stk__get_u32(p + 4);
	out->wait_ns = stk__get_u64(p + 8);
}

long stk__enc_obj(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds, uint32_t index)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, type, 0, seq);
	stk__put_u32(&b, ds);
	stk__put_u32(&b, index);
	return stk__msg_end(&b);
}

long stk__enc_ds(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, type, 0, seq);
	stk__put_u32(&b, ds);
	return stk__msg_end(&b);
}

long stk__enc_stats(void *mem, size_t cap, uint32_t seq)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, STK_MSG_STATS, 0, seq);
	return stk__msg_end(&b);
}

long stk__enc_endpoints(void *mem, size_t cap, uint32_t seq)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, STK_MSG_ENDPOINTS, 0, seq);
	return stk__msg_end(&b);
}

long stk__enc_list(void *mem, size_t cap, uint16_t type, uint32_t seq)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__msg_begin(&b, type, 0, seq);
	return stk__msg_end(&b);
}

void stk__reply_begin(struct stk_buf *b, const struct stk_msg_hdr *req, int32_t status,
		      const char *errmsg)
{
	/* A GETB reply answers one object: its position in the request rides in flags. */
	stk__msg_begin(b, (uint16_t)(req->type | STK_MSG_REPLY),
		       req->type == STK_MSG_GETB ? req->flags : 0, req->seq);
	stk__put_u32(b, (uint32_t)status);
	if (status < 0) {
		size_t n = errmsg ? strnlen(errmsg, STK_ERRMSG_MAX - 1) : 0;
		stk__put_u16(b, (uint16_t)n);
		stk__put_bytes(b, errmsg, n);
		stk__put_bytes(b, "", 1);
	}
}

long stk__enc_reply_err(void *mem, size_t cap, const struct stk_msg_hdr *req, int32_t status,
			const char *errmsg)
{
	if (status >= 0)
		return -EINVAL; /* a status 0 reply has its type's body, not a message */
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, status, errmsg);
	return stk__msg_end(&b);
}

long stk__enc_reply_ok(void *mem, size_t cap, const struct stk_msg_hdr *req)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, 0, NULL);
	return stk__msg_end(&b);
}

long stk__enc_reply_hello(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t version,
			  uint32_t pin_buckets, uint64_t pin_limit)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, 0, NULL);
	stk__put_u32(&b, version);
	stk__put_u32(&b, pin_buckets);
	stk__put_u64(&b, pin_limit);
	return stk__msg_end(&b);
}

long stk__enc_reply_open(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t handle,
			 uint32_t count, uint64_t bytes, uint32_t ds_id, uint32_t cat_len)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, 0, NULL);
	stk__put_u32(&b, handle);
	stk__put_u32(&b, count);
	stk__put_u64(&b, bytes);
	stk__put_u32(&b, ds_id);
	stk__put_u32(&b, cat_len);
	return stk__msg_end(&b);
}

long stk__enc_reply_get(void *mem, size_t cap, const struct stk_msg_hdr *req,
			const struct stk_get_where *g)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, 0, NULL);
	stk__put_u32(&b, g->flags);
	stk__put_u64(&b, g->size);
	stk__put_u32(&b, g->seg);
	stk__put_u32(&b, g->gen);
	stk__put_u64(&b, g->off);
	stk__put_u64(&b, g->seg_size);
	return stk__msg_end(&b);
}

long stk__enc_reply_stats(void *mem, size_t cap, const struct stk_msg_hdr *req, const uint64_t *v,
			  uint32_t n)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, 0, NULL);
	stk__put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++)
		stk__put_u64(&b, v[i]);
	return stk__msg_end(&b);
}

long stk__enc_reply_status(void *mem, size_t cap, const struct stk_msg_hdr *req,
			   const struct stk_ds_status *st)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, 0, NULL);
	stk__put_u32(&b, st->objects);
	stk__put_u32(&b, st->resident);
	stk__put_u32(&b, st->inflight);
	stk__put_u32(&b, st->failed);
	stk__put_u32(&b, st->warm);
	stk__put_u64(&b, st->bytes);
	stk__put_u64(&b, st->resident_bytes);
	/* Protocol 2: the last fetch error's length and bytes, no NUL. */
	uint16_t el = st->last_error ? st->last_error_len : 0;
	if (el > STK_ERRMSG_MAX)
		el = STK_ERRMSG_MAX;
	stk__put_u16(&b, el);
	stk__put_bytes(&b, st->last_error, el);
	return stk__msg_end(&b);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EPROTO;
}

static int decode_hdr(const uint8_t *p, size_t len, struct stk_msg_hdr *h, char *err, size_t errlen)
{
	if (len < STK_HDR_SIZE)
		return fail(err, errlen, "message of %zu bytes is shorter than the %u-byte header",
			    len, STK_HDR_SIZE);
	h->type = get_u16(p);
	h->flags = get_u16(p + 2);
	h->seq = stk__get_u32(p + 4);
	h->len = stk__get_u32(p + 8);
	if ((size_t)h->len != len - STK_HDR_SIZE)
		return fail(err, errlen,
			    "header field len=%u but the datagram carries %zu body bytes", h->len,
			    len - STK_HDR_SIZE);
	return 0;
}

/* Checks that a body of len bytes is exactly want bytes long. */
static int want_len(const struct stk_msg_hdr *h, size_t want, char *err, size_t errlen)
{
	if (h->len != want) {
		fail(err, errlen, "%s body is %u bytes, expected %zu", stk__msg_name(h->type),
		     h->len, want);
		return -EBADMSG;
	}
	return 0;
}

int stk__msg_decode(const void *buf, size_t len, struct stk_msg *m, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	int r = decode_hdr(p, len, &m->h, err, errlen);
	if (r)
		return r;
	const uint8_t *b = p + STK_HDR_SIZE;
	m->handle = 0;
	switch (m->h.type) {
	case STK_MSG_HELLO:
		/* The plan group is optional: 12 bytes without one, 20 with. */
		if ((r = want_len(&m->h, m->h.len == 20 ? 20 : 12, err, errlen)))
			return r;
		m->u.hello.magic = stk__get_u32(b);
		m->u.hello.version = stk__get_u32(b + 4);
		m->u.hello.pid = stk__get_u32(b + 8);
		m->u.hello.group = m->h.len == 20 ? stk__get_u64(b + 12) : 0;
		if (m->u.hello.magic != STK_PROTO_MAGIC) {
			fail(err, errlen, "HELLO magic 0x%08x is not stoker's", m->u.hello.magic);
			return -EBADMSG;
		}
		return 0;
	case STK_MSG_OPEN:
		if (m->h.len < 8) {
			fail(err, errlen, "OPEN body of %u bytes lacks flags and uri_len",
			     m->h.len);
			return -EBADMSG;
		}
		m->u.open.flags = stk__get_u32(b);
		m->u.open.uri_len = stk__get_u32(b + 4);
		if (m->u.open.uri_len == 0 || m->u.open.uri_len > STK_URI_MAX) {
			fail(err, errlen, "OPEN uri_len=%u is outside 1..%u", m->u.open.uri_len,
			     STK_URI_MAX);
			return -EBADMSG;
		}
		if ((r = want_len(&m->h, 8 + (size_t)m->u.open.uri_len, err, errlen)))
			return r;
		m->u.open.uri = (const char *)b + 8;
		if (memchr(m->u.open.uri, 0, m->u.open.uri_len)) {
			fail(err, errlen, "OPEN uri contains a NUL byte");
			return -EBADMSG;
		}
		return 0;
	case STK_MSG_PLAN:
	case STK_MSG_GETB:
	case STK_MSG_RELEASEB:
		if (m->h.len < 8) {
			fail(err, errlen, "%s body of %u bytes lacks ds and n",
			     stk__msg_name(m->h.type), m->h.len);
			return -EBADMSG;
		}
		m->u.plan.ds = stk__get_u32(b);
		m->u.plan.n = stk__get_u32(b + 4);
		if (m->u.plan.n > STK_PLAN_CHUNK) {
			fail(err, errlen, "%s n=%u exceeds %u per message",
			     stk__msg_name(m->h.type), m->u.plan.n, STK_PLAN_CHUNK);
			return -EBADMSG;
		}
		if ((r = want_len(&m->h, 8 + 4 * (size_t)m->u.plan.n, err, errlen)))
			return r;
		m->u.plan.idx = b + 8;
		m->handle = m->u.plan.ds;
		return 0;
	case STK_MSG_WAITS:
		if (m->h.len < 8) {
			fail(err, errlen, "WAITS body of %u bytes lacks ds and n", m->h.len);
			return -EBADMSG;
		}
		m->u.waits.ds = stk__get_u32(b);
		m->u.waits.n = stk__get_u32(b + 4);
		if (m->u.waits.n > STK_WAITS_MAX) {
			fail(err, errlen, "WAITS n=%u exceeds %u per message", m->u.waits.n,
			     STK_WAITS_MAX);
			return -EBADMSG;
		}
		if ((r = want_len(&m->h, 8 + (size_t)STK_WAITS_ENTRY * m->u.waits.n, err, errlen)))
			return r;
		m->u.waits.e = b + 8;
		m->handle = m->u.waits.ds;
		return 0;
	case STK_MSG_GET:
	case STK_MSG_RELEASE:
		if ((r = want_len(&m->h, 8, err, errlen)))
			return r;
		m->u.obj.ds = stk__get_u32(b);
		m->u.obj.index = stk__get_u32(b + 4);
		m->handle = m->u.obj.ds;
		return 0;
	case STK_MSG_CLOSE:
	case STK_MSG_WARM:
	case STK_MSG_STATUS:
		if ((r = want_len(&m->h, 4, err, errlen)))
			return r;
		m->u.ds.ds = stk__get_u32(b);
		m->handle = m->u.ds.ds;
		return 0;
	case STK_MSG_STATS:
	case STK_MSG_ENDPOINTS:
	case STK_MSG_CLIENTS:
	case STK_MSG_DATASETS:
		return want_len(&m->h, 0, err, errlen);
	default:
		fail(err, errlen, "unknown message type %u", m->h.type);
		return -EBADMSG;
	}
}

int stk__reply_decode(const void *buf, size_t len, struct stk_reply *r, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	int rc = decode_hdr(p, len, &r->h, err, errlen);
	if (rc)
		return rc;
	if (!(r->h.type & STK_MSG_REPLY))
		return fail(err, errlen, "type %u is not a reply", r->h.type);
	if (r->h.len < 4)
		return fail(err, errlen, "reply body of %u bytes lacks a status", r->h.len);
	const uint8_t *b = p + STK_HDR_SIZE;
	size_t n = r->h.len;
	r->status = (int32_t)stk__get_u32(b);
	r->errmsg = "";
	if (r->status < 0) {
		if (n < 7)
			return fail(err, errlen, "error reply lacks its message");
		uint16_t ml = get_u16(b + 4);
		if ((size_t)ml + 7 != n || b[6 + ml] != 0)
			return fail(err, errlen, "error message length %u does not fit the reply",
				    ml);
		r->errmsg = (const char *)b + 6;
		return 0;
	}
	b += 4;
	n -= 4;
	switch (r->h.type & ~STK_MSG_REPLY) {
	case STK_MSG_HELLO:
		if (n == 4) { /* an older daemon: the client reports its version */
			r->u.hello.version = stk__get_u32(b);
			r->u.hello.pin_buckets = 0;
			r->u.hello.pin_limit = 0;
			return 0;
		}
		if (n != 16)
			return fail(err, errlen, "HELLO reply is %zu bytes", n);
		r->u.hello.version = stk__get_u32(b);
		r->u.hello.pin_buckets = stk__get_u32(b + 4);
		r->u.hello.pin_limit = stk__get_u64(b + 8);
		if (r->u.hello.pin_buckets & (r->u.hello.pin_buckets - 1))
			return fail(err, errlen, "HELLO pin_buckets=%u is not a power of two",
				    r->u.hello.pin_buckets);
		return 0;
	case STK_MSG_OPEN:
		if (n != 24)
			return fail(err, errlen, "OPEN reply is %zu bytes", n);
		r->u.open.ds = stk__get_u32(b);
		r->u.open.count = stk__get_u32(b + 4);
		r->u.open.bytes = stk__get_u64(b + 8);
		r->u.open.ds_id = stk__get_u32(b + 16);
		r->u.open.cat_len = stk__get_u32(b + 20);
		return 0;
	case STK_MSG_GET:
	case STK_MSG_GETB: {
		if (n != 36)
			return fail(err, errlen, "GET reply is %zu bytes", n);
		struct stk_get_where *g = &r->u.get;
		g->flags = stk__get_u32(b);
		g->size = stk__get_u64(b + 4);
		g->seg = stk__get_u32(b + 12);
		g->gen = stk__get_u32(b + 16);
		g->off = stk__get_u64(b + 20);
		g->seg_size = stk__get_u64(b + 28);
		if (g->seg == STK_SEG_NONE ? g->size != 0
					   : g->off > g->seg_size || g->size > g->seg_size - g->off)
			return fail(
			    err, errlen,
			    "GET reply: %llu bytes at %llu do not fit segment %u of %llu bytes",
			    (unsigned long long)g->size, (unsigned long long)g->off, g->seg,
			    (unsigned long long)g->seg_size);
		return 0;
	}
	case STK_MSG_STATS: {
		if (n < 4)
			return fail(err, errlen, "STATS reply lacks its count");
		uint32_t cnt = stk__get_u32(b);
		if ((size_t)cnt * 8 + 4 != n)
			return fail(err, errlen, "STATS reply count %u does not fit %zu bytes", cnt,
				    n);
		r->u.stats.n = cnt < STK_STATS_COUNT ? cnt : STK_STATS_COUNT;
		memset(r->u.stats.v, 0, sizeof(r->u.stats.v));
		for (uint32_t i = 0; i < r->u.stats.n; i++)
			r->u.stats.v[i] = stk__get_u64(b + 4 + 8 * i);
		return 0;
	}
	case STK_MSG_STATUS:
		/* 36 bytes from daemons that predate the trailing message. */
		if (n != 36 && n < 38)
			return fail(err, errlen, "STATUS reply is %zu bytes", n);
		r->u.status.objects = stk__get_u32(b);
		r->u.status.resident = stk__get_u32(b + 4);
		r->u.status.inflight = stk__get_u32(b + 8);
		r->u.status.failed = stk__get_u32(b + 12);
		r->u.status.warm = stk__get_u32(b + 16);
		r->u.status.bytes = stk__get_u64(b + 20);
		r->u.status.resident_bytes = stk__get_u64(b + 28);
		r->u.status.last_error_len = 0;
		r->u.status.last_error = "";
		if (n > 36) {
			uint16_t ml = get_u16(b + 36);
			if ((size_t)ml + 38 != n)
				return fail(
				    err, errlen,
				    "STATUS last error length %u does not fit the reply's %zu "
				    "bytes",
				    ml, n - 38);
			r->u.status.last_error_len = ml;
			r->u.status.last_error = (const char *)b + 38;
		}
		return 0;
	case STK_MSG_ENDPOINTS: {
		if (n < 4)
			return fail(err, errlen, "ENDPOINTS reply lacks its count");
		uint32_t cnt = stk__get_u32(b);
		size_t off = 4;
		for (uint32_t i = 0; i < cnt; i++) {
			if (n - off < 2)
				return fail(err, errlen, "ENDPOINTS entry %u is truncated", i);
			uint16_t nl = get_u16(b + off);
			if (nl > STK_ENDPOINT_NAME_MAX || n - off - 2 < (size_t)nl + 40)
				return fail(err, errlen, "ENDPOINTS entry %u overruns", i);
			off += 2 + (size_t)nl + 40;
		}
		if (off != n)
			return fail(err, errlen, "ENDPOINTS reply has %zu trailing bytes", n - off);
		r->u.endpoints.n = cnt;
		r->u.endpoints.p = b + 4;
		return 0;
	}
	case STK_MSG_CLIENTS:
	case STK_MSG_DATASETS: {
		const char *what = stk__msg_name(r->h.type & ~STK_MSG_REPLY);
		if (n < STK_LIST_HDR)
			return fail(err, errlen, "%s reply of %zu bytes lacks total and n", what,
				    n);
		uint32_t total = stk__get_u32(b), cnt = stk__get_u32(b + 4);
		if (cnt > total)
			return fail(err, errlen, "%s reply n=%u exceeds total=%u", what, cnt,
				    total);
		size_t off = STK_LIST_HDR;
		bool clients = (r->h.type & ~STK_MSG_REPLY) == STK_MSG_CLIENTS;
		for (uint32_t i = 0; i < cnt; i++) {
			if (clients) {
				if (n - off < STK_CLIENT_REC)
					return fail(err, errlen, "CLIENTS record %u is truncated",
						    i);
				off += STK_CLIENT_REC;
				continue;
			}
			if (n - off < STK_DATASET_FIXED + 2)
				return fail(err, errlen, "DATASETS record %u is truncated", i);
			off += STK_DATASET_FIXED;
			uint16_t ll = get_u16(b + off);
			if (ll > STK_LABEL_MAX)
				return fail(err, errlen,
					    "DATASETS record %u label_len=%u exceeds %u", i, ll,
					    STK_LABEL_MAX);
			if (n - off - 2 < (size_t)ll + 2)
				return fail(err, errlen, "DATASETS record %u label overruns", i);
			off += 2 + (size_t)ll;
			uint16_t ul = get_u16(b + off);
			if (ul > STK_LIST_URI_MAX)
				return fail(err, errlen, "DATASETS record %u uri_len=%u exceeds %u",
					    i, ul, STK_LIST_URI_MAX);
			if (n - off - 2 < ul)
				return fail(err, errlen, "DATASETS record %u uri overruns", i);
			off += 2 + (size_t)ul;
		}
		if (off != n)
			return fail(err, errlen, "%s reply has %zu trailing bytes", what, n - off);
		r->u.list.total = total;
		r->u.list.n = cnt;
		r->u.list.p = b + STK_LIST_HDR;
		return 0;
	}
	case STK_MSG_PLAN:
	case STK_MSG_WARM:
		if (n != 0)
			return fail(err, errlen, "%s reply has %zu unexpected bytes",
				    stk__msg_name(r->h.type & ~STK_MSG_REPLY), n);
		return 0;
	default:
		return fail(err, errlen, "reply to unknown type %u", r->h.type & ~STK_MSG_REPLY);
	}
}

int stk__catalog_walk(const void *buf, size_t len,
		      int (*fn)(void *arg, uint32_t i, const char *key, uint32_t key_len,
				uint64_t size),
		      void *arg, uint32_t *count, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	if (len < 8 || stk__get_u32(p) != STK_CATALOG_MAGIC)
		return fail(err, errlen, "catalog lacks its header");
	uint32_t cnt = stk__get_u32(p + 4);
	size_t off = 8;
	for (uint32_t i = 0; i < cnt; i++) {
		if (len - off < 12)
			return fail(err, errlen, "catalog entry %u is truncated", i);
		uint64_t size = stk__get_u64(p + off);
		uint32_t kl = stk__get_u32(p + off + 8);
		off += 12;
		if (kl > len - off || kl > STK_URI_MAX)
			return fail(err, errlen, "catalog entry %u key_len=%u overruns", i, kl);
		if (fn) {
			int r = fn(arg, i, (const char *)p + off, kl, size);
			if (r)
				return r;
		}
		off += kl;
	}
	if (off != len)
		return fail(err, errlen, "catalog has %zu trailing bytes", len - off);
	if (count)
		*count = cnt;
	return 0;
}

const char *stk__msg_name(uint16_t type)
{
	static const char *const names[] = {
		[STK_MSG_HELLO] = "HELLO",	 [STK_MSG_OPEN] = "OPEN",
		[STK_MSG_PLAN] = "PLAN",	 [STK_MSG_GET] = "GET",
		[STK_MSG_RELEASE] = "RELEASE",	 [STK_MSG_STATS] = "STATS",
		[STK_MSG_CLOSE] = "CLOSE",	 [STK_MSG_WARM] = "WARM",
		[STK_MSG_STATUS] = "STATUS",	 [STK_MSG_ENDPOINTS] = "ENDPOINTS",
		[STK_MSG_GETB] = "GETB",	 [STK_MSG_RELEASEB] = "RELEASEB",
		[STK_MSG_WAITS] = "WAITS",	 [STK_MSG_CLIENTS] = "CLIENTS",
		[STK_MSG_DATASETS] = "DATASETS",
	};
	type &= (uint16_t)~STK_MSG_REPLY;
	return type >= 1 && type <= STK_MSG_TYPE_MAX ? names[type] : "unknown";
}

/* SPDX-License-Identifier: MIT */
/*
 * The protocol's list replies (ENDPOINTS, CLIENTS, DATASETS): their encoders
 * and the iterators over a decoded reply's records.  stk__reply_decode
 * (proto.c) checks their lengths before any iterator runs.
 */
#include <string.h>

#include "proto.h"

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

long stk__enc_reply_endpoints(void *mem, size_t cap, const struct stk_msg_hdr *req,
			      const struct stk_endpoint_entry *e, uint32_t n)
{
	struct stk_buf b;
	stk__buf_init(&b, mem, cap);
	stk__reply_begin(&b, req, 0, NULL);
	stk__put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++) {
		uint16_t nl = e[i].name ? e[i].name_len : 0;
		if (nl > STK_ENDPOINT_NAME_MAX)
			nl = STK_ENDPOINT_NAME_MAX;
		stk__put_u16(&b, nl);
		stk__put_bytes(&b, e[i].name, nl);
		stk__put_u64(&b, e[i].requests);
		stk__put_u64(&b, e[i].retries);
		stk__put_u64(&b, e[i].errors);
		stk__put_u64(&b, e[i].bytes);
		stk__put_u64(&b, e[i].busy_ns);
	}
	return stk__msg_end(&b);
}

static void put_stall(struct stk_buf *b, const struct stk_stall_rec *t)
{
	stk__put_u64(b, t->requests);
	stk__put_u64(b, t->objects);
	stk__put_u64(b, t->hits);
	stk__put_u64(b, t->bytes);
	stk__put_u64(b, t->stall_ns);
	stk__put_u64(b, t->fetch_stall_ns);
	stk__put_u64(b, t->delivery_stall_ns);
	stk__put_u64(b, t->avoided_ns);
	stk__put_u64(b, t->avoided_model_ns);
	stk__put_u64(b, t->unknown_objects);
}

/*
 * Starts a CLIENTS or DATASETS reply in b, whose room is cut to what one
 * datagram may hold.  The caller patches n (at b->len - 4) once it knows it.
 */
static void list_begin(struct stk_buf *b, void *mem, size_t cap, const struct stk_msg_hdr *req,
		       uint32_t total)
{
	stk__buf_init(b, mem, cap < STK_MSG_MAX ? cap : STK_MSG_MAX);
	stk__reply_begin(b, req, 0, NULL);
	stk__put_u32(b, total);
	stk__put_u32(b, 0);
}

static long list_end(struct stk_buf *b, uint32_t n, uint32_t *sent)
{
	if (!b->overflow)
		for (int i = 0; i < 4; i++)
			b->p[STK_HDR_SIZE + 8 + i] = (uint8_t)(n >> (8 * i));
	if (sent)
		*sent = n;
	return stk__msg_end(b);
}

long stk__enc_reply_clients(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t total,
			    const struct stk_client_rec *e, uint32_t n, uint32_t *sent)
{
	struct stk_buf b;
	list_begin(&b, mem, cap, req, total);
	uint32_t i = 0;
	for (; i < n && !b.overflow && b.cap - b.len >= STK_CLIENT_REC; i++) {
		stk__put_u32(&b, e[i].pid);
		stk__put_u32(&b, e[i].uid);
		stk__put_u64(&b, e[i].id);
		stk__put_u64(&b, e[i].age_ns);
		stk__put_u32(&b, e[i].open);
		stk__put_u64(&b, e[i].pinned_bytes);
		put_stall(&b, &e[i].stall);
	}
	return list_end(&b, i, sent);
}

long stk__enc_reply_datasets(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t total,
			     const struct stk_dataset_rec *e, uint32_t n, uint32_t *sent)
{
	struct stk_buf b;
	list_begin(&b, mem, cap, req, total);
	uint32_t i = 0;
	for (; i < n && !b.overflow; i++) {
		uint16_t ll = e[i].label ? e[i].label_len : 0;
		uint16_t ul = e[i].uri ? e[i].uri_len : 0;
		ll = ll < STK_LABEL_MAX ? ll : STK_LABEL_MAX;
		ul = ul < STK_LIST_URI_MAX ? ul : STK_LIST_URI_MAX;
		if (b.cap - b.len < (size_t)STK_DATASET_REC_MIN + ll + ul)
			break;
		stk__put_u32(&b, e[i].id);
		stk__put_u32(&b, e[i].users);
		stk__put_u32(&b, e[i].objects);
		stk__put_u32(&b, e[i].resident);
		stk__put_u32(&b, e[i].inflight);
		stk__put_u32(&b, e[i].failed);
		stk__put_u64(&b, e[i].bytes);
		stk__put_u64(&b, e[i].resident_bytes);
		put_stall(&b, &e[i].stall);
		stk__put_u16(&b, ll);
		stk__put_bytes(&b, e[i].label, ll);
		stk__put_u16(&b, ul);
		stk__put_bytes(&b, e[i].uri, ul);
	}
	return list_end(&b, i, sent);
}

const uint8_t *stk__endpoints_next(const uint8_t *p, struct stk_endpoint_entry *e)
{
	e->name_len = get_u16(p);
	e->name = (const char *)p + 2;
	p += 2 + e->name_len;
	e->requests = stk__get_u64(p);
	e->retries = stk__get_u64(p + 8);
	e->errors = stk__get_u64(p + 16);
	e->bytes = stk__get_u64(p + 24);
	e->busy_ns = stk__get_u64(p + 32);
	return p + 40;
}

static const uint8_t *get_stall(const uint8_t *p, struct stk_stall_rec *t)
{
	t->requests = stk__get_u64(p);
	t->objects = stk__get_u64(p + 8);
	t->hits = stk__get_u64(p + 16);
	t->bytes = stk__get_u64(p + 24);
	t->stall_ns = stk__get_u64(p + 32);
	t->fetch_stall_ns = stk__get_u64(p + 40);
	t->delivery_stall_ns = stk__get_u64(p + 48);
	t->avoided_ns = stk__get_u64(p + 56);
	t->avoided_model_ns = stk__get_u64(p + 64);
	t->unknown_objects = stk__get_u64(p + 72);
	return p + STK_STALL_REC;
}

const uint8_t *stk__client_next(const uint8_t *p, struct stk_client_rec *e)
{
	e->pid = stk__get_u32(p);
	e->uid = stk__get_u32(p + 4);
	e->id = stk__get_u64(p + 8);
	e->age_ns = stk__get_u64(p + 16);
	e->open = stk__get_u32(p + 24);
	e->pinned_bytes = stk__get_u64(p + 28);
	return get_stall(p + 36, &e->stall);
}

const uint8_t *stk__dataset_next(const uint8_t *p, struct stk_dataset_rec *e)
{
	e->id = stk__get_u32(p);
	e->users = stk__get_u32(p + 4);
	e->objects = stk__get_u32(p + 8);
	e->resident = stk__get_u32(p + 12);
	e->inflight = stk__get_u32(p + 16);
	e->failed = stk__get_u32(p + 20);
	e->bytes = stk__get_u64(p + 24);
	e->resident_bytes = stk__get_u64(p + 32);
	p = get_stall(p + 40, &e->stall);
	e->label_len = get_u16(p);
	e->label = (const char *)p + 2;
	p += 2 + e->label_len;
	e->uri_len = get_u16(p);
	e->uri = (const char *)p + 2;
	return p + 2 + e->uri_len;
}

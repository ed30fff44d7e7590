/* SPDX-License-Identifier: MIT */
/*
 * The control protocol between libstoker and stokerd, encoded and decoded in
 * this one place.  See docs/PROTOCOL.md.
 *
 * Transport: a SOCK_SEQPACKET Unix socket; one message per datagram.  Every
 * message starts with a 12-byte little-endian header; the body layout is
 * fixed per type.  Decoders check every length against the datagram size and
 * return -EPROTO with a message naming the field that was wrong.
 */
#ifndef STOKER_PROTO_H
#define STOKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STK_PROTO_MAGIC	      0x314b5453u /* "STK1" */
#define STK_PROTO_VERSION     2		  /* 2: HELLO first; STATUS: last error */
#define STK_MSG_MAX	      65536u	  /* largest datagram either side sends */
#define STK_HDR_SIZE	      12u
#define STK_URI_MAX	      4096u
#define STK_ERRMSG_MAX	      512u
#define STK_PLAN_CHUNK	      ((STK_MSG_MAX - STK_HDR_SIZE - 8u) / 4u) /* indices per PLAN message */
#define STK_STATS_COUNT	      16u
#define STK_ENDPOINT_NAME_MAX 127u /* counters in a STATS reply, see stk_stats_field */

enum stk_msg_type {
	STK_MSG_HELLO = 1,
	STK_MSG_OPEN = 2, /* reply carries the catalog memfd */
	STK_MSG_PLAN = 3,
	STK_MSG_GET = 4,     /* reply carries the object's memfd */
	STK_MSG_RELEASE = 5, /* no reply */
	STK_MSG_STATS = 6,
	STK_MSG_CLOSE = 7, /* closes a dataset handle; no reply */
	STK_MSG_WARM = 8,
	STK_MSG_STATUS = 9,
	STK_MSG_ENDPOINTS = 10, /* per-endpoint HTTP counters */
	STK_MSG_TYPE_MAX = 10,
	STK_MSG_REPLY = 0x8000, /* or'ed into the type of a reply */
};

/* Header flags. */
#define STK_PLAN_RESET 0x1u /* PLAN: first chunk; replaces the previous plan */

/* GET reply flags. */
#define STK_GET_HIT 0x1u

/* The order of counters in a STATS reply; new ones are appended. */
enum stk_stats_field {
	STK_ST_GETS,
	STK_ST_HITS_RAM,
	STK_ST_MISSES,
	STK_ST_FETCHES,
	STK_ST_FETCH_BYTES,
	STK_ST_FETCH_NS,
	STK_ST_FETCH_ERRORS,
	STK_ST_EVICTIONS,
	STK_ST_RAM_BUDGET,
	STK_ST_RAM_USED,
	STK_ST_RESIDENT,
	STK_ST_INFLIGHT,
	STK_ST_PINNED,
	STK_ST_CLIENTS,
	STK_ST_DATASETS,
	STK_ST_PREFETCHES,
};

struct stk_msg_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t seq; /* chosen by the client, echoed in the reply */
	uint32_t len; /* body bytes after the header */
};

/* A decoded message.  Pointers point into the datagram that was decoded. */
struct stk_msg {
	struct stk_msg_hdr h;
	union {
		struct {
			uint32_t magic, version, pid;
		} hello;
		struct {
			uint32_t flags;
			uint32_t uri_len;
			const char *uri;
		} open;
		struct {
			uint32_t ds, n;
			const uint8_t *idx;
		} plan; /* n LE u32s */
		struct {
			uint32_t ds, index;
		} obj; /* GET, RELEASE */
		struct {
			uint32_t ds;
		} ds; /* CLOSE, WARM, STATUS */
	} u;
};

/* A decoded reply.  status < 0 carries an error message. */
struct stk_reply {
	struct stk_msg_hdr h;
	int32_t status;
	const char *errmsg; /* NUL-terminated copy lives in the datagram; "" if none */
	union {
		struct {
			uint32_t version;
		} hello;
		struct {
			uint32_t ds, count;
			uint64_t bytes;
		} open;
		struct {
			uint32_t flags;
			uint64_t size;
		} get;
		struct {
			uint32_t n;
			uint64_t v[STK_STATS_COUNT];
		} stats;
		struct {
			uint32_t objects, resident, inflight, failed, warm;
			uint64_t bytes, resident_bytes;
			/* The most recent failed fetch's message: not NUL-terminated,
			 * len 0 if none or from a daemon that predates it. */
			uint16_t last_error_len;
			const char *last_error;
		} status;
		/* n entries of { u16 name_len, name, u64 requests, retries, errors, bytes,
		 * busy_ns }, bounds already checked */
		struct {
			uint32_t n;
			const uint8_t *p;
		} endpoints;
	} u;
};

/* A cursor for building a message. */
struct stk_buf {
	uint8_t *p;
	size_t cap, len;
	bool overflow;
};

void stk__buf_init(struct stk_buf *b, void *mem, size_t cap);
void stk__put_u16(struct stk_buf *b, uint16_t v);
void stk__put_u32(struct stk_buf *b, uint32_t v);
void stk__put_u64(struct stk_buf *b, uint64_t v);
void stk__put_bytes(struct stk_buf *b, const void *p, size_t n);
uint32_t stk__get_u32(const uint8_t *p);
uint64_t stk__get_u64(const uint8_t *p);

/* Starts a message: writes the header with len 0. Finish with stk__msg_end(). */
void stk__msg_begin(struct stk_buf *b, uint16_t type, uint16_t flags, uint32_t seq);
/* Patches the header's length. Returns the datagram size, or -EMSGSIZE on overflow. */
long stk__msg_end(struct stk_buf *b);

/* Builders for requests, each a whole datagram; return its size or -EMSGSIZE. */
long stk__enc_hello(void *mem, size_t cap, uint32_t seq, uint32_t pid);
long stk__enc_open(void *mem, size_t cap, uint32_t seq, uint32_t flags, const char *uri);
long stk__enc_plan(void *mem, size_t cap, uint32_t seq, uint16_t flags, uint32_t ds,
		   const uint32_t *idx, uint32_t n);
long stk__enc_obj(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds, uint32_t index);
long stk__enc_ds(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds);
long stk__enc_stats(void *mem, size_t cap, uint32_t seq);

/* Starts a reply to hdr: status, then the error message if status < 0. */
void stk__reply_begin(struct stk_buf *b, const struct stk_msg_hdr *req, int32_t status,
		      const char *errmsg);

/*
 * Decodes a request datagram of len bytes.  Returns 0, or -EPROTO with a
 * message naming the bad field written to err (errlen bytes, may be 0).  On a
 * bad body the header is still decoded (m->h is valid) when the function
 * returns -EBADMSG instead, so the caller can answer the request.
 */
int stk__msg_decode(const void *buf, size_t len, struct stk_msg *m, char *err, size_t errlen);

/* Decodes a reply datagram.  Returns 0 or -EPROTO with err filled in. */
int stk__reply_decode(const void *buf, size_t len, struct stk_reply *r, char *err, size_t errlen);

/*
 * The catalog: the object table of an opened dataset, passed as a sealed
 * memfd with the OPEN reply.  Layout: u32 magic "STKC", u32 count, then count
 * entries of { u64 size, u32 key_len, key bytes }.
 */
#define STK_CATALOG_MAGIC 0x434b5453u /* "STKC" */

/* Walks a catalog.  Calls fn for each entry; fn returning non-zero stops. */
int stk__catalog_walk(const void *buf, size_t len,
		      int (*fn)(void *arg, uint32_t i, const char *key, uint32_t key_len,
				uint64_t size),
		      void *arg, uint32_t *count, char *err, size_t errlen);

const char *stk__msg_name(uint16_t type);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The control protocol between libstoker and stokerd, encoded and decoded in
 * this one place.  See docs/PROTOCOL.md.
 *
 * Transport: a SOCK_SEQPACKET Unix socket; one message per datagram.  Every
 * message starts with a 12-byte little-endian header; the body layout is
 * fixed per type.  Decoders check every length against the datagram size and
 * return -EPROTO with a message naming the field that was wrong.
 *
 * Every request and reply layout lives here and nowhere else: a request or
 * reply is built by one stk__enc_* call and read by stk__msg_decode or
 * stk__reply_decode.  A new message is one request encoder, one case in each
 * decoder, one reply encoder, and one handler in prefetch/server.c's table.
 */
#ifndef STOKER_PROTO_H
#define STOKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STK_PROTO_MAGIC	      0x314b5453u /* "STK1" */
#define STK_PROTO_VERSION     6		  /* 6: plan groups (HELLO group, PLAN SHARED) */
#define STK_MSG_MAX	      65536u	  /* largest datagram either side sends */
#define STK_HDR_SIZE	      12u
#define STK_URI_MAX	      4096u
#define STK_ERRMSG_MAX	      512u
#define STK_PLAN_CHUNK	      ((STK_MSG_MAX - STK_HDR_SIZE - 8u) / 4u) /* indices per PLAN message */
#define STK_STATS_COUNT	      39u  /* counters in a STATS reply, see stk_stats_field */
#define STK_ENDPOINT_NAME_MAX 127u /* bytes of an endpoint's name in an ENDPOINTS reply */

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
	STK_MSG_GETB = 11,	/* many GETs: one reply per object, its position in header flags */
	STK_MSG_RELEASEB = 12,	/* many RELEASEs; no reply */
	STK_MSG_WAITS = 13,	/* gets' waits, and objects got through the resident table;
				 * no reply */
	STK_MSG_CLIENTS = 14,	/* per-connection totals: a list */
	STK_MSG_DATASETS = 15,	/* per-dataset totals: a list */
	STK_MSG_TYPE_MAX = 15,
	STK_MSG_REPLY = 0x8000, /* or'ed into the type of a reply */
};

/* Header flags. */
#define STK_PLAN_RESET 0x1u /* PLAN: first chunk; replaces the previous plan */
/*
 * PLAN: the plan of the plan-less gets of every connection in the sender's
 * plan group (HELLO's group) on this dataset, not of this handle's gets.
 */
#define STK_PLAN_SHARED 0x2u

/* WAITS: n entries of { u32 index, u32 flags, u64 wait_ns } after ds and n. */
#define STK_WAITS_ENTRY 16u
#define STK_WAITS_MAX	((STK_MSG_MAX - STK_HDR_SIZE - 8u) / STK_WAITS_ENTRY)
#define STK_WAIT_GOT	0x1u /* got through the resident table: a get the daemon did not see */
#define STK_WAIT_MISS	0x2u /* not resident when asked for */
#define STK_WAIT_CONT	0x4u /* the same request (a batch) as the entry before; wait_ns 0 */
#define STK_WAIT_NONE	0x8u /* no request of its own (its wait comes in a later entry) */
/* Time after the get moving the object onward (an H2D copy): delivery stall, no get of its own. */
#define STK_WAIT_COPY  0x10u
#define STK_WAIT_FLAGS 0x1fu

/* A WAITS entry: one object of a request; the request's first entry carries its wait. */
struct stk_wait_rec {
	uint32_t index;
	uint32_t flags;
	uint64_t wait_ns;
};

/* GET reply flags. */
#define STK_GET_HIT	  0x1u /* resident when asked for */
#define STK_GET_DEDICATED 0x2u /* the segment holds this object alone: map it for the view only */
#define STK_SEG_NONE	  UINT32_MAX /* GET reply seg of a zero-byte object */

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
	/* protocol 5: stall accounting (docs/stall.md) */
	STK_ST_WAITS,
	STK_ST_STALL_NS,
	STK_ST_STALL_FETCH_NS,
	STK_ST_STALL_DELIVERY_NS,
	STK_ST_AVOIDED_NS,
	STK_ST_AVOIDED_MODEL_NS,
	STK_ST_DELIVERED_BYTES,
	STK_ST_SELF_STALL_NS, /* the asking connection's */
	STK_ST_SELF_STALL_FETCH_NS,
	STK_ST_SELF_AVOIDED_NS,
	/* tier 1 (--nvme-dir; docs/nvme.md) */
	STK_ST_NVME_BUDGET,
	STK_ST_NVME_USED,
	STK_ST_NVME_OBJECTS,
	STK_ST_HITS_NVME,
	STK_ST_NVME_READS,
	STK_ST_NVME_READ_BYTES,
	STK_ST_NVME_WRITES,
	STK_ST_NVME_WRITE_BYTES,
	STK_ST_NVME_DROPPED_CORRUPT,
	STK_ST_NVME_DEGRADED,
	/* tier 1 --nvme-compress */
	STK_ST_NVME_STORED_BYTES,
	STK_ST_NVME_PLAIN_BYTES,
	STK_ST_NVME_CODEC_NS,
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
	/* The dataset handle the message names (PLAN, GET, RELEASE, CLOSE, WARM,
	 * STATUS; the same as u.*.ds), or 0, which is never a handle. */
	uint32_t handle;
	union {
		struct {
			uint32_t magic, version, pid;
			uint64_t group; /* the connection's plan group; 0: none */
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
		struct {
			uint32_t ds, n;
			const uint8_t *e; /* n entries of STK_WAITS_ENTRY bytes */
		} waits;
	} u;
};

/* A STATUS reply's body: one dataset's state. */
struct stk_ds_status {
	uint32_t objects, resident, inflight, failed, warm;
	uint64_t bytes, resident_bytes;
	/* The most recent failed fetch's message: not NUL-terminated, len 0 if
	 * none or from a daemon that predates it.  At most STK_ERRMSG_MAX bytes
	 * are sent. */
	uint16_t last_error_len;
	const char *last_error;
};

/* One entry of an ENDPOINTS reply.  name is not NUL-terminated. */
struct stk_endpoint_entry {
	const char *name;
	uint16_t name_len; /* at most STK_ENDPOINT_NAME_MAX bytes are sent */
	uint64_t requests, retries, errors, bytes, busy_ns;
};

/*
 * CLIENTS and DATASETS replies: u32 total (how many the daemon has), u32 n
 * (how many follow), then n records.  A reply holds as many as fit
 * STK_LIST_REPLY_MAX bytes, which is what libstoker's reader receives
 * (REPLY_MAX in client/client_internal.h; raise both together).
 */
#define STK_LIST_REPLY_MAX  16384u
#define STK_LIST_HDR	    8u	 /* total, n */
#define STK_STALL_REC	    80u	 /* struct stk_stall_rec on the wire: 10 u64 */
#define STK_CLIENT_REC	    116u /* a CLIENTS record: 36 bytes, then the stall totals */
#define STK_DATASET_FIXED   120u /* a DATASETS record before its label and URI */
#define STK_DATASET_REC_MIN (STK_DATASET_FIXED + 4u) /* with an empty label and URI */
#define STK_LABEL_MAX	    63u	 /* bytes of a dataset's label in a DATASETS reply */
#define STK_LIST_URI_MAX    256u /* bytes of a dataset's URI in a DATASETS reply */

/* Stall totals (docs/stall.md, common/stall.h's struct stk_stall), in wire order. */
struct stk_stall_rec {
	uint64_t requests, objects, hits, bytes;
	uint64_t stall_ns, fetch_stall_ns, delivery_stall_ns;
	uint64_t avoided_ns, avoided_model_ns, unknown_objects;
};

/*
 * A CLIENTS record: u32 pid, u32 uid, u64 id, u64 age_ns, u32 open, u64
 * pinned_bytes, then the stall totals.
 */
struct stk_client_rec {
	uint32_t pid, uid;
	uint64_t id;	 /* the daemon's clock when it connected: with pid, names the connection */
	uint64_t age_ns; /* how long it has been connected */
	uint32_t open;	 /* dataset handles it has open */
	uint64_t pinned_bytes; /* held by its unreleased GETs */
	struct stk_stall_rec stall;
};

/*
 * A DATASETS record: u32 id, users, objects, resident, inflight, failed; u64
 * bytes, resident bytes; the stall totals; u16 label_len, label; u16
 * uri_len, uri.  label and uri are not NUL-terminated.
 */
struct stk_dataset_rec {
	uint32_t id, users, objects, resident, inflight, failed;
	uint64_t bytes, resident_bytes;
	struct stk_stall_rec stall;
	const char *label; /* its --metrics-dataset name; at most STK_LABEL_MAX bytes are sent */
	uint16_t label_len;
	const char *uri; /* its first STK_LIST_URI_MAX bytes are sent */
	uint16_t uri_len;
};

/* A GET reply's body. */
struct stk_get_where {
	uint32_t flags; /* STK_GET_* */
	uint64_t size;
	uint32_t seg, gen; /* STK_SEG_NONE for a zero-byte object */
	uint64_t off, seg_size;
};

/*
 * Gets without a round trip (docs/PROTOCOL.md, "Resident tables").  An OPEN
 * reply's memfd holds the catalog (cat_len bytes) and, from the next page
 * boundary, the dataset's resident table: one entry per object, written by
 * the daemon alone, in this host's byte order.  seq is odd while the object
 * is absent, being replaced or not published (too large, dedicated); when it
 * is even, the object's bytes are at off in segment (seg, gen).
 */
struct stk_rt_entry {
	uint32_t seq, seg, gen, off;
};

/* Where the resident table starts in an OPEN's memfd: the page after the catalog. */
static inline size_t stk__rt_off(size_t cat_len)
{
	return (cat_len + 4095) / 4096 * 4096;
}

/* The resident table's bytes for count objects: whole pages. */
static inline size_t stk__rt_len(uint32_t count)
{
	return stk__rt_off((size_t)count * sizeof(struct stk_rt_entry));
}

/*
 * A HELLO reply's memfd is the client's pin area: pin_buckets buckets of
 * STK_PIN_WAYS u64 slots, written by the client alone, read by the daemon.
 * A slot holds stk__pin_key() of an object the client reads through its
 * resident table, or 0.  A slot is taken before the entry's seq is checked
 * again, and the daemon marks an entry odd before it looks for pins: so
 * either the client sees the change or the daemon sees the pin.
 */
#define STK_PIN_WAYS 4u
/*
 * After the buckets, the pin area holds STK_SEG_GENS u32s the daemon writes:
 * for segment index i, the generation + 1 of the segment it last sent this
 * connection, or 0 once that segment is closed, so the client can unmap a
 * closed segment's pages instead of keeping them alive.
 */
#define STK_SEG_GENS 2048u

/* Bytes of a pin area of buckets buckets: the pins, then the generations. */
static inline size_t stk__pin_area_len(uint32_t buckets)
{
	return (size_t)buckets * STK_PIN_WAYS * sizeof(uint64_t) + STK_SEG_GENS * sizeof(uint32_t);
}

/* Where a pin area's segment generations start. */
static inline size_t stk__pin_gens_off(uint32_t buckets)
{
	return (size_t)buckets * STK_PIN_WAYS * sizeof(uint64_t);
}

/* The buckets of a pin area of len bytes. */
static inline uint32_t stk__pin_buckets_of(size_t len)
{
	return (uint32_t)((len - STK_SEG_GENS * sizeof(uint32_t)) /
			  (STK_PIN_WAYS * sizeof(uint64_t)));
}

static inline uint64_t stk__pin_key(uint32_t ds_id, uint32_t index)
{
	return (uint64_t)ds_id << 32 | index;
}

static inline uint32_t stk__pin_bucket(uint64_t key, uint32_t buckets)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 40) & (buckets - 1);
}

/* A decoded reply.  status < 0 carries an error message. */
struct stk_reply {
	struct stk_msg_hdr h;
	int32_t status;
	const char *errmsg; /* NUL-terminated copy lives in the datagram; "" if none */
	union {
		struct {
			uint32_t version;
			uint32_t pin_buckets; /* 0: no pin area (no fast gets) */
			uint64_t pin_limit;   /* bytes the client may hold through its pins */
		} hello;
		struct {
			uint32_t ds, count;
			uint64_t bytes;
			uint32_t ds_id;	  /* the daemon's dataset id, for pin keys */
			uint32_t cat_len; /* catalog bytes; the resident table follows */
		} open;
		struct stk_get_where get;
		struct {
			uint32_t n;
			uint64_t v[STK_STATS_COUNT];
		} stats;
		struct stk_ds_status status;
		/* n entries of { u16 name_len, name, u64 requests, retries, errors, bytes,
		 * busy_ns }, bounds already checked: read them with stk__endpoints_next */
		struct {
			uint32_t n;
			const uint8_t *p;
		} endpoints;
		/* CLIENTS, DATASETS: n records of total, bounds already checked: read
		 * them with stk__client_next or stk__dataset_next */
		struct {
			uint32_t total, n;
			const uint8_t *p;
		} list;
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
/* HELLO of a connection in plan group group (0: none, the same as stk__enc_hello). */
long stk__enc_hello_group(void *mem, size_t cap, uint32_t seq, uint32_t pid, uint64_t group);
long stk__enc_open(void *mem, size_t cap, uint32_t seq, uint32_t flags, const char *uri);
long stk__enc_plan(void *mem, size_t cap, uint32_t seq, uint16_t flags, uint32_t ds,
		   const uint32_t *idx, uint32_t n);
/* GETB or RELEASEB (type) of n (<= STK_PLAN_CHUNK) object indices of dataset handle ds. */
/* WAITS for dataset handle ds: n entries (at most STK_WAITS_MAX). */
long stk__enc_waits(void *mem, size_t cap, uint32_t seq, uint32_t ds, const struct stk_wait_rec *e,
		    uint32_t n);
/* The i-th entry of a decoded WAITS. */
void stk__wait_entry(const struct stk_msg *m, uint32_t i, struct stk_wait_rec *out);
long stk__enc_batch(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds,
		    const uint32_t *idx, uint32_t n);
long stk__enc_obj(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds, uint32_t index);
long stk__enc_ds(void *mem, size_t cap, uint16_t type, uint32_t seq, uint32_t ds);
long stk__enc_stats(void *mem, size_t cap, uint32_t seq);
long stk__enc_endpoints(void *mem, size_t cap, uint32_t seq);
/* CLIENTS or DATASETS (type): no body. */
long stk__enc_list(void *mem, size_t cap, uint16_t type, uint32_t seq);

/*
 * Starts a reply to req: status, then the error message if status < 0.  The
 * stk__enc_reply_* builders below are made of it; it is public for tests that
 * need a malformed reply.
 */
void stk__reply_begin(struct stk_buf *b, const struct stk_msg_hdr *req, int32_t status,
		      const char *errmsg);

/*
 * Builders for replies to req, each a whole datagram: the same type with
 * STK_MSG_REPLY or'ed in, the same seq.  Each returns the datagram's size, or
 * -EMSGSIZE when it does not fit cap or STK_MSG_MAX (only an ENDPOINTS reply of
 * hundreds of entries can outgrow a datagram).  -EINVAL from
 * stk__enc_reply_err for a status that is not negative.  What
 * stk__reply_decode reads back is what was passed, except that strings are
 * cut to their maximum (errmsg to STK_ERRMSG_MAX - 1 bytes, a last error to
 * STK_ERRMSG_MAX, an endpoint name to STK_ENDPOINT_NAME_MAX).
 */
/* Any request: status < 0 (a negated errno) and a message for people (NULL: ""). */
long stk__enc_reply_err(void *mem, size_t cap, const struct stk_msg_hdr *req, int32_t status,
			const char *errmsg);
/* PLAN, WARM: status 0 and no body. */
long stk__enc_reply_ok(void *mem, size_t cap, const struct stk_msg_hdr *req);
/* The pin area's memfd travels beside it when pin_buckets is not 0. */
long stk__enc_reply_hello(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t version,
			  uint32_t pin_buckets, uint64_t pin_limit);
/* The catalog and resident table memfd travels beside it, as SCM_RIGHTS. */
long stk__enc_reply_open(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t handle,
			 uint32_t count, uint64_t bytes, uint32_t ds_id, uint32_t cat_len);
/*
 * Where a GET's object is: bytes off..off+size of segment seg (generation
 * gen, seg_size bytes).  The segment's memfd travels beside it, as
 * SCM_RIGHTS, the first time a connection is told of that segment (always,
 * for a dedicated one).
 */
long stk__enc_reply_get(void *mem, size_t cap, const struct stk_msg_hdr *req,
			const struct stk_get_where *g);
/* n counters in enum stk_stats_field order. */
long stk__enc_reply_stats(void *mem, size_t cap, const struct stk_msg_hdr *req, const uint64_t *v,
			  uint32_t n);
long stk__enc_reply_status(void *mem, size_t cap, const struct stk_msg_hdr *req,
			   const struct stk_ds_status *st);
long stk__enc_reply_endpoints(void *mem, size_t cap, const struct stk_msg_hdr *req,
			      const struct stk_endpoint_entry *e, uint32_t n);
/*
 * CLIENTS and DATASETS: total, then as many of the n records as fit cap and
 * STK_MSG_MAX, in order (strings cut to their maximum); *sent (may be NULL)
 * says how many.  Never -EMSGSIZE for want of room for records: only when
 * not even the header fits.
 */
long stk__enc_reply_clients(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t total,
			    const struct stk_client_rec *e, uint32_t n, uint32_t *sent);
long stk__enc_reply_datasets(void *mem, size_t cap, const struct stk_msg_hdr *req, uint32_t total,
			     const struct stk_dataset_rec *e, uint32_t n, uint32_t *sent);

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
 * Reads the ENDPOINTS entry at p (r->u.endpoints.p first) of a reply that
 * stk__reply_decode accepted, into e (whose name points into the datagram).
 * Returns where the next entry starts.  Call it r->u.endpoints.n times.
 */
const uint8_t *stk__endpoints_next(const uint8_t *p, struct stk_endpoint_entry *e);

/*
 * Read the record at p (r->u.list.p first) of a CLIENTS or DATASETS reply
 * that stk__reply_decode accepted, into e (whose strings point into the
 * datagram).  Return where the next record starts.  Call r->u.list.n times.
 */
const uint8_t *stk__client_next(const uint8_t *p, struct stk_client_rec *e);
const uint8_t *stk__dataset_next(const uint8_t *p, struct stk_dataset_rec *e);

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

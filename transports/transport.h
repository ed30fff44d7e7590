/* SPDX-License-Identifier: MIT */
/*
 * For transport authors.  A transport is a table of operations for one URI
 * scheme; adding a backend is one new file plus one line in registry.c, and
 * nothing in prefetch/ changes (the fio ioengine / curl vtls pattern).
 */
#ifndef STOKER_TRANSPORT_H
#define STOKER_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stk_loop;

/* Return values of submit besides -errno. */
#define STK_Q_QUEUED 0 /* done() will be called exactly once */
#define STK_Q_BUSY   1 /* no capacity now; the caller retries later, done() is not called */

/* One object to fetch into memory the cache allocated. */
struct stk_fetch {
	const char *uri;
	void *buf;     /* writable: size bytes, and cap in all (reads may round up into it) */
	uint64_t cap;  /* bytes writable at buf, >= size */
	int fd;	       /* the same bytes as a file at offset 0 (a memfd), or -1 */
	uint64_t size; /* bytes expected, exactly */
	/* Called once on the loop thread: err 0, or -errno with msg naming the URI. */
	void (*done)(struct stk_fetch *f, int err, const char *msg);
	void *arg;	/* the caller's */
	void *priv;	/* the transport's */
	char etag[128]; /* set by transports that have one, on success */
	/*
	 * When the first byte arrived (stk__now_ns), set by the transport, from
	 * any thread with an atomic compare-and-swap from 0; 0 when it cannot
	 * say.  Stall accounting's model of the endpoint uses it (docs/stall.md).
	 */
	uint64_t first_byte_ns;
};

/*
 * How a backend object's bytes become the object clients see: as they are,
 * or decompressed (a ".zst" object of a dataset opened with STK_DS_ZSTD;
 * its catalog size is then the plain size).
 */
enum stk_codec {
	STK_CODEC_NONE = 0,
	STK_CODEC_ZSTD = 1,
};

/* A listed object. */
struct stk_catalog_entry {
	char *key; /* its own string, or the tail of uri when key_in_uri */
	char *uri;
	uint64_t size;
	uint32_t line;	 /* a manifest's line that named it; 0 for a listing */
	bool key_in_uri; /* a key that ends the URI is not copied: a million keys cost 80 MB */
	uint8_t codec;	 /* enum stk_codec; STK_CODEC_NONE from stk__catalog_add */
	char *version;	 /* the backend's version of the bytes (file: inode, size, mtime;
			  * s3: ETag), malloc'd, or NULL when the listing does not say */
};

struct stk_catalog {
	struct stk_catalog_entry *e;
	uint32_t n, cap;
};

/* Appends an entry (copies key and uri). 0 or -ENOMEM. */
int stk__catalog_add(struct stk_catalog *c, const char *key, size_t key_len, const char *uri,
		     uint64_t size);
void stk__catalog_free(struct stk_catalog *c);
/* Sorts entries by key (strcmp). */
void stk__catalog_sort(struct stk_catalog *c);

/* What every transport may need from the daemon. */
struct stk_tp_env {
	struct stk_loop *loop;
	char **roots;		     /* file://: directories it may serve; NULL-terminated */
	uint32_t emulate_latency_ms; /* file://: added before each object (emulation) */
	uint64_t emulate_bandwidth;  /* file://: bytes/s cap over all reads, 0 = none */
	bool no_direct;		     /* file://: never O_DIRECT */
	uint64_t part_size;	     /* http, s3: ranged part size; 0 = 8 MiB */
	unsigned max_host_conns;     /* http, s3: requests in flight per endpoint; 0 = 64 */
	unsigned http_threads;	     /* http, s3: engine threads; 0 = 1 */
	unsigned retries;	     /* http, s3: retries of a failed request */
	unsigned stall_timeout_s;    /* http, s3: a request this long under 1 KiB/s fails; 0 = 30 */
	bool insecure;		     /* http, s3: skip TLS verification */
	const char *s3_endpoint;     /* s3: e.g. http://127.0.0.1:9000; NULL = AWS */
	const char *s3_region;	     /* s3: NULL = from the environment/config */
	int s3_addressing;	     /* s3: STK_S3_* */
	char **allow_hosts; /* http, s3: "HOST" or "HOST:PORT" it may reach; NULL-terminated,
			     * NULL or empty for any host but link-local/metadata ones */
};

#define STK_S3_AUTO    0 /* virtual-hosted for AWS, path-style for a custom endpoint */
#define STK_S3_PATH    1
#define STK_S3_VIRTUAL 2

struct stk_transport_ops {
	const char *name; /* the URI scheme */
	/* Optional - may be NULL. Called once at startup on the loop thread. 0 or -errno. */
	int (*init)(const struct stk_tp_env *env);
	/* Optional - may be NULL. Called once at exit. */
	void (*fini)(void);
	/*
	 * Required. Lists uri, on a worker thread (it may block): a prefix gives
	 * every object below it with keys relative to it, a single object gives
	 * itself with its base name as key.  0 or -errno with err naming the URI.
	 */
	int (*list)(const char *uri, struct stk_catalog *cat, char *err, size_t errlen);
	/* Required. The size of one object, on a worker thread. 0 or -errno with err. */
	int (*stat)(const char *uri, uint64_t *size, char *err, size_t errlen);
	/* Required. Reads a small object whole (a manifest), on a worker thread; *buf is malloc'd.
	 */
	int (*read_all)(const char *uri, size_t max, char **buf, size_t *len, char *err,
			size_t errlen);
	/* Required. Starts a fetch, on the loop thread: STK_Q_QUEUED, STK_Q_BUSY or -errno. */
	int (*submit)(struct stk_fetch *f);
	/*
	 * Optional - may be NULL. Reads the first len bytes (or fewer, at the
	 * object's end) of uri into buf, on a worker thread: a zstd frame's
	 * header at listing.  Returns the bytes read, or -errno with err.
	 */
	long (*read_head)(const char *uri, void *buf, size_t len, char *err, size_t errlen);
};

/*
 * Finds the transport for uri's scheme.  Returns it, or NULL with err saying
 * why (-EINVAL for no scheme, -EPROTONOSUPPORT for an unknown one in *errp).
 */
const struct stk_transport_ops *stk__transport_find(const char *uri, int *errp, char *err,
						    size_t errlen);

/* Initialises every transport. 0 or the first failure's -errno. */
int stk__transports_init(const struct stk_tp_env *env);
void stk__transports_fini(void);

/*
 * Builds a dataset's catalog on a worker thread: lists uri, or, with
 * manifest, reads and parses the manifest at uri and sizes entries that give
 * none.  With zstd (STK_DS_ZSTD), ".zst" entries become STK_CODEC_ZSTD ones
 * (stk__catalog_zstd).  0 or -errno with err naming the URI (and line, for a
 * manifest).
 */
int stk__catalog_build(const char *uri, bool manifest, bool zstd, struct stk_catalog *cat,
		       char *err, size_t errlen);

/*
 * Makes cat's entries whose URI ends in ".zst" STK_CODEC_ZSTD: their keys
 * lose the suffix, and their sizes become the plain sizes their frame
 * headers declare (read through the transport's read_head), except a
 * manifest's entries that give a size, which is the plain size.  A listing
 * (not manifest) is sorted again by its new keys.  Two entries with one key
 * fail.  Returns 0, or -errno with err naming the URI (and manifest line):
 * -EINVAL for a file that is not zstd data or declares no size, or a key
 * repeated; -ENOTSUP where the transport cannot read headers; -ENOMEM.
 */
int stk__catalog_zstd(const char *uri, bool manifest, struct stk_catalog *cat, char *err,
		      size_t errlen);

#define STK_SIZE_UNKNOWN UINT64_MAX

/*
 * Parses manifest text ("URI [SIZE]" per line, '#' comments, blank lines) into
 * cat; an entry without a size gets STK_SIZE_UNKNOWN.  Keys are the URIs.
 * 0 or -EINVAL with err naming the manifest (name) and the line.
 */
int stk__manifest_parse(const char *text, size_t len, const char *name, struct stk_catalog *cat,
			char *err, size_t errlen);

extern const struct stk_transport_ops stk_transport_file;
extern const struct stk_transport_ops stk_transport_http;
extern const struct stk_transport_ops stk_transport_https;
extern const struct stk_transport_ops stk_transport_s3;

#endif

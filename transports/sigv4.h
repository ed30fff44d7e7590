/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4, header form, as S3 checks it: the path is signed as
 * sent (no normalisation, no second encoding), the query is canonicalised,
 * and x-amz-content-sha256 is signed.  Pure functions over caller memory; the
 * only calls out are to OpenSSL (SHA-256, HMAC) and gmtime_r.
 *
 * libcurl's CURLOPT_AWS_SIGV4 is not used: curl 7.88 signs the query exactly
 * as given and does not add x-amz-content-sha256, which S3 (and s3rver)
 * require.
 *
 * To sign a request: fill a struct stk_sigv4_req, call stk__sigv4_sign(), then
 * send, besides the body:
 *   the URL  scheme://host + path + ('?' + stk__sigv4_canonical_query(query)
 *            when the query is non-empty), so the server sees what was signed;
 *   Host: r->host  (curl sends this from the URL; it must be the same string:
 *            host, plus ":port" only when the port is not the scheme's default);
 *   x-amz-date: out.amz_date;
 *   x-amz-content-sha256: out.content_sha256  (unless STK_SIGV4_NO_CONTENT_SHA256);
 *   x-amz-security-token: c->session_token  (when there is one);
 *   every header of r->headers, as given;
 *   Authorization: out.authorization.
 */
#ifndef STOKER_SIGV4_H
#define STOKER_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Bounds on the inputs; beyond them the functions answer -E2BIG. */
#define STK_SIGV4_MAX_HEADERS 32   /* entries of stk_sigv4_req.headers */
#define STK_SIGV4_MAX_PARAMS  64   /* '&'-separated parameters of a query */
#define STK_SIGV4_AUTH_MAX    1024 /* size of stk_sigv4_out.authorization */

/* The hex SHA-256 of an empty body. */
#define STK_SIGV4_EMPTY_SHA256	   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define STK_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/*
 * stk_sigv4_req.flags.  STK_SIGV4_NO_CONTENT_SHA256: do not add or sign
 * x-amz-content-sha256.  S3 needs that header, so only the generic
 * (non-S3) AWS test-suite vectors use this; the payload hash still ends the
 * canonical request either way.
 */
#define STK_SIGV4_NO_CONTENT_SHA256 (1u << 0)

/* Borrowed for the duration of a call. */
struct stk_sigv4_creds {
	const char *access_key; /* printable ASCII, no space or ',' */
	const char *secret_key;
	const char *session_token; /* NULL or "" when there is none */
};

/* Borrowed for the duration of a call. */
struct stk_sigv4_req {
	const char *method; /* "GET", "HEAD" */
	/* The Host header's value: "bucket.s3.amazonaws.com", "127.0.0.1:4569". */
	const char *host;
	/*
	 * The path exactly as it will be sent, already percent-encoded by the
	 * caller (S3: each key segment encoded once with stk__sigv4_uri_encode(),
	 * '/' kept).  It must start with '/' and hold only A-Z a-z 0-9 - . _ ~ /
	 * and %XX with uppercase hex; anything else is -EINVAL, since a server
	 * would canonicalise it differently.  "" or NULL means "/".
	 */
	const char *path;
	/*
	 * The query without '?', or NULL/"".  Canonicalised as described at
	 * stk__sigv4_canonical_query(); send that canonical form.
	 */
	const char *query;
	/*
	 * Extra headers to sign and send, each "name:value", NULL-terminated, or
	 * NULL: e.g. "range:bytes=0-9".  Names are compared case-insensitively;
	 * repeated names are signed as one header with the values joined by ','
	 * in the order given (as HTTP folds them).  Values may not contain CR or
	 * LF.  Host, Authorization, x-amz-date, x-amz-security-token and (unless
	 * STK_SIGV4_NO_CONTENT_SHA256) x-amz-content-sha256 belong to the signer:
	 * passing one is -EINVAL.
	 */
	const char *const *headers;
	/* 64 lowercase hex digits, STK_SIGV4_UNSIGNED_PAYLOAD, or NULL for an empty body. */
	const char *payload_hash;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
	time_t now;	     /* the request's time; x-amz-date is its UTC form */
	unsigned flags;	     /* STK_SIGV4_* */
};

/* Header values to send; see the top of this file. */
struct stk_sigv4_out {
	/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
	char authorization[STK_SIGV4_AUTH_MAX];
	/* "20130524T000000Z" */
	char amz_date[17];
	/* The payload hash; "" with STK_SIGV4_NO_CONTENT_SHA256. */
	char content_sha256[65];
};

/*
 * Signs r with c.  Returns 0 with out filled in, or:
 *   -EINVAL        a missing or malformed field (see the struct comments), a
 *                  reserved or malformed header, a bad payload hash, or a time
 *                  gmtime_r cannot convert;
 *   -E2BIG         more than STK_SIGV4_MAX_HEADERS headers or
 *                  STK_SIGV4_MAX_PARAMS query parameters, or a secret key
 *                  longer than 256 bytes;
 *   -ENAMETOOLONG  the Authorization value would not fit STK_SIGV4_AUTH_MAX;
 *   -ENOMEM, -EIO  OpenSSL could not allocate, or failed.
 * On error out's contents are unspecified.  Nothing is allocated past the
 * call; key material on the stack is wiped before returning.
 */
int stk__sigv4_sign(const struct stk_sigv4_req *r, const struct stk_sigv4_creds *c,
		    struct stk_sigv4_out *out);

/*
 * Writes the canonical request that stk__sigv4_sign() would hash for r, c
 * (c may be NULL: no session token) into buf, NUL-terminated.  For tests, and
 * for logs when a server answers SignatureDoesNotMatch (S3 echoes its own
 * canonical request).  It contains no secret, but it does contain the
 * session token's value when there is one.  Returns its length, or the
 * errors of stk__sigv4_sign(), with -ENAMETOOLONG when cap is too small.
 */
ssize_t stk__sigv4_canonical_request(const struct stk_sigv4_req *r, const struct stk_sigv4_creds *c,
				     char *buf, size_t cap);

/*
 * Percent-encodes s[0..len) per SigV4 (RFC 3986): A-Z a-z 0-9 - . _ ~ are
 * kept, every other byte becomes %XX with uppercase hex (a space is %20, a
 * UTF-8 character is one %XX per byte); '/' is kept when keep_slash (paths)
 * and is %2F otherwise.  Writes the result and a NUL into out.  Returns its
 * length (without the NUL), or -ENAMETOOLONG if it and the NUL do not fit in
 * cap bytes (out then holds a truncated, still NUL-terminated prefix when
 * cap > 0).
 */
ssize_t stk__sigv4_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t cap);

/*
 * Writes the canonical form of a query string (without '?', may be NULL) into
 * out, NUL-terminated: the string is split on '&' (empty pieces dropped),
 * each piece on its first '=' into name and value (value "" when there is no
 * '='); each name and value is percent-decoded (%XX in either case; a '%' not
 * followed by two hex digits is a literal '%'; '+' is a literal '+', not a
 * space) and encoded again as stk__sigv4_uri_encode() does with '/' as %2F;
 * the pairs are sorted by encoded name, then encoded value, and joined as
 * name=value&name=value.  So "prefix=a/b&max-keys=2" and
 * "max-keys=2&prefix=a%2fb" both give "max-keys=2&prefix=a%2Fb", and a
 * canonical query is its own canonical form.  Returns the length (without
 * the NUL), -E2BIG for more than STK_SIGV4_MAX_PARAMS parameters, or
 * -ENAMETOOLONG when cap is too small.
 */
ssize_t stk__sigv4_canonical_query(const char *query, char *out, size_t cap);

/* Writes the lowercase hex SHA-256 of data[0..len) and a NUL into hex.  0, -ENOMEM or -EIO. */
int stk__sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4 (header form) for S3; the contract is in sigv4.h.
 *
 * The canonical request is never built in memory: its pieces are fed to the
 * SHA-256 context as they are produced (a "sink"), so a long query or path
 * needs no buffer.  stk__sigv4_canonical_request() runs the same code with a
 * text buffer as the sink, so what tests and logs see is what is hashed.
 *
 * References: AWS S3 API Reference, "Signature Calculations for the
 * Authorization Header: Transferring Payload in a Single Chunk"
 * (sig-v4-header-based-auth.html), and the AWS SigV4 test suite.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "transports/sigv4.h"

#define ALGORITHM      "AWS4-HMAC-SHA256"
#define SECRET_MAX     256
#define ACCESS_KEY_MAX 128
#define SCOPE_PART_MAX 63 /* region, service */

static const char hexdig[] = "0123456789ABCDEF";
static const char hexlow[] = "0123456789abcdef";

/* Where canonical text goes: a digest, a text buffer, or both. */
struct sink {
	EVP_MD_CTX *md; /* NULL: no digest */
	char *buf;	/* NULL: no text */
	size_t cap;	/* of buf, counting the NUL */
	size_t len;	/* bytes put so far, stored or not */
	bool md_failed;
};

static void put(struct sink *s, const char *p, size_t n)
{
	if (!n)
		return;
	if (s->md && !EVP_DigestUpdate(s->md, p, n))
		s->md_failed = true;
	if (s->buf && s->cap && s->len < s->cap - 1) {
		size_t room = s->cap - 1 - s->len;

		memcpy(s->buf + s->len, p, n < room ? n : room);
	}
	s->len += n;
}

static void put_str(struct sink *s, const char *str)
{
	put(s, str, strlen(str));
}

/* NUL-terminates the text; false when it did not fit. */
static bool sink_finish_text(struct sink *s)
{
	if (!s->cap)
		return false;
	s->buf[s->len < s->cap ? s->len : s->cap - 1] = '\0';
	return s->len < s->cap;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Puts s[0..len) percent-encoded, a chunk at a time. */
static void put_encoded(struct sink *sk, const char *s, size_t len, bool keep_slash)
{
	char tmp[96];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (n > sizeof(tmp) - 3) {
			put(sk, tmp, n);
			n = 0;
		}
		if (unreserved(c) || (keep_slash && c == '/')) {
			tmp[n++] = (char)c;
		} else {
			tmp[n++] = '%';
			tmp[n++] = hexdig[c >> 4];
			tmp[n++] = hexdig[c & 15];
		}
	}
	put(sk, tmp, n);
}

ssize_t stk__sigv4_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t cap)
{
	struct sink sk = { .buf = out, .cap = cap };

	put_encoded(&sk, s, len, keep_slash);
	if (!sink_finish_text(&sk))
		return -ENAMETOOLONG;
	return (ssize_t)sk.len;
}

/* ---- Query canonicalisation ---------------------------------------------- */

struct param {
	const char *name, *value;
	size_t nlen, vlen;
};

/*
 * Yields the canonical encoding of a raw query name or value one byte at a
 * time: decodes a %XX (or takes a byte), then re-encodes it.  Lets the sort
 * compare encoded strings without storing them.
 */
struct enc_it {
	const char *p, *end;
	char pend[2];
	unsigned npend;
};

/* Consumes one decoded byte from *p. */
static unsigned char decode_one(const char **p, const char *end)
{
	const unsigned char *q = (const unsigned char *)*p;

	if (q[0] == '%' && end - *p >= 3 && hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
		*p += 3;
		return (unsigned char)(hexval(q[1]) << 4 | hexval(q[2]));
	}
	*p += 1;
	return q[0];
}

/* The next byte of the encoding, or -1 at the end. */
static int enc_next(struct enc_it *it)
{
	unsigned char b;

	if (it->npend)
		return (unsigned char)it->pend[2 - it->npend--];
	if (it->p == it->end)
		return -1;
	b = decode_one(&it->p, it->end);
	if (unreserved(b))
		return b;
	it->pend[0] = hexdig[b >> 4];
	it->pend[1] = hexdig[b & 15];
	it->npend = 2;
	return '%';
}

static int enc_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	struct enc_it x = { .p = a, .end = a + alen }, y = { .p = b, .end = b + blen };

	for (;;) {
		int cx = enc_next(&x), cy = enc_next(&y);

		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (cx < 0)
			return 0;
	}
}

static int param_cmp(const void *va, const void *vb)
{
	const struct param *a = va, *b = vb;
	int d = enc_cmp(a->name, a->nlen, b->name, b->nlen);

	return d ? d : enc_cmp(a->value, a->vlen, b->value, b->vlen);
}

static void put_reencoded(struct sink *sk, const char *s, size_t len)
{
	struct enc_it it = { .p = s, .end = s + len };
	char tmp[64];
	size_t n = 0;
	int c;

	while ((c = enc_next(&it)) >= 0) {
		if (n == sizeof(tmp)) {
			put(sk, tmp, n);
			n = 0;
		}
		tmp[n++] = (char)c;
	}
	put(sk, tmp, n);
}

/* Splits and sorts; 0 or -E2BIG. */
static int parse_query(const char *q, struct param *p, size_t *np)
{
	size_t n = 0;

	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);

		if (len) {
			if (n == STK_SIGV4_MAX_PARAMS)
				return -E2BIG;
			p[n].name = q;
			p[n].nlen = eq ? (size_t)(eq - q) : len;
			p[n].value = eq ? eq + 1 : q + len;
			p[n].vlen = eq ? len - p[n].nlen - 1 : 0;
			n++;
		}
		q += len + (amp ? 1 : 0);
	}
	qsort(p, n, sizeof(*p), param_cmp);
	*np = n;
	return 0;
}

static int put_canonical_query(struct sink *sk, const char *query)
{
	struct param p[STK_SIGV4_MAX_PARAMS];
	size_t n;
	int r = parse_query(query, p, &n);

	if (r)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (i)
			put(sk, "&", 1);
		put_reencoded(sk, p[i].name, p[i].nlen);
		put(sk, "=", 1);
		put_reencoded(sk, p[i].value, p[i].vlen);
	}
	return 0;
}

ssize_t stk__sigv4_canonical_query(const char *query, char *out, size_t cap)
{
	struct sink sk = { .buf = out, .cap = cap };
	int r = put_canonical_query(&sk, query);

	if (r) {
		if (cap)
			out[0] = '\0';
		return r;
	}
	if (!sink_finish_text(&sk))
		return -ENAMETOOLONG;
	return (ssize_t)sk.len;
}

/* ---- Headers ------------------------------------------------------------- */

struct hdr {
	const char *name, *value;
	size_t nlen, vlen;
};

/* RFC 9110 tchar. */
static bool tchar(unsigned char c)
{
	return unreserved(c) || (c && strchr("!#$%&'*+^`|", c));
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static int lc(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int name_cmp(const struct hdr *a, const struct hdr *b)
{
	size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;

	for (size_t i = 0; i < n; i++) {
		int d = lc((unsigned char)a->name[i]) - lc((unsigned char)b->name[i]);

		if (d)
			return d;
	}
	return a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
}

static bool name_is(const struct hdr *h, const char *lname)
{
	return h->nlen == strlen(lname) && !strncasecmp(h->name, lname, h->nlen);
}

static void put_lower(struct sink *sk, const char *s, size_t len)
{
	char tmp[64];

	while (len) {
		size_t n = len < sizeof(tmp) ? len : sizeof(tmp);

		for (size_t i = 0; i < n; i++)
			tmp[i] = (char)lc((unsigned char)s[i]);
		put(sk, tmp, n);
		s += n;
		len -= n;
	}
}

/* Puts v without leading or trailing blanks, each inner run of blanks as one space. */
static void put_trimmed(struct sink *sk, const char *v, size_t len)
{
	size_t i = 0, end = len;

	while (i < end && is_ws(v[i]))
		i++;
	while (end > i && is_ws(v[end - 1]))
		end--;
	while (i < end) {
		size_t j = i;

		while (j < end && !is_ws(v[j]))
			j++;
		put(sk, v + i, j - i);
		if (j == end)
			break;
		put(sk, " ", 1);
		while (is_ws(v[j]))
			j++;
		i = j;
	}
}

/* ---- Request preparation ------------------------------------------------- */

struct prep {
	const struct stk_sigv4_req *r;
	const char *path;
	const char *token; /* NULL when none */
	const char *payload;
	char amz_date[17];
	char date[9];
	struct hdr h[STK_SIGV4_MAX_HEADERS + 4];
	size_t nh;
};

static bool upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Already encoded as stk__sigv4_uri_encode() would: what S3 canonicalises to itself. */
static bool valid_path(const char *p)
{
	if (p[0] != '/')
		return false;
	for (; *p; p++) {
		if (unreserved((unsigned char)*p) || *p == '/')
			continue;
		if (*p != '%' || !upper_hex(p[1]) || !upper_hex(p[2]))
			return false;
		p += 2;
	}
	return true;
}

static bool valid_token_str(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++, n++)
		if (!tchar((unsigned char)*s) || n == max)
			return false;
	return true;
}

/* Region and service go into the credential scope, which '/' delimits. */
static bool valid_scope_part(const char *s)
{
	return valid_token_str(s, SCOPE_PART_MAX);
}

static bool valid_access_key(const char *s)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++, n++)
		if (*s <= ' ' || *s > '~' || *s == ',' || *s == '/' || n == ACCESS_KEY_MAX)
			return false;
	return true;
}

static bool has_crlf(const char *s, size_t len)
{
	return memchr(s, '\r', len) || memchr(s, '\n', len);
}

static bool valid_payload_hash(const char *s)
{
	if (!strcmp(s, STK_SIGV4_UNSIGNED_PAYLOAD))
		return true;
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* Headers the signer adds itself; the caller may not pass them. */
static bool reserved(const struct hdr *h, unsigned flags)
{
	return name_is(h, "host") || name_is(h, "authorization") || name_is(h, "x-amz-date") ||
	       name_is(h, "x-amz-security-token") ||
	       (!(flags & STK_SIGV4_NO_CONTENT_SHA256) && name_is(h, "x-amz-content-sha256"));
}

static void add_hdr(struct prep *p, const char *name, const char *value)
{
	p->h[p->nh++] = (struct hdr){ name, value, strlen(name), strlen(value) };
}

/* Validates r and c and gathers the signed headers, sorted.  0 or -errno. */
static int prepare(struct prep *p, const struct stk_sigv4_req *r, const struct stk_sigv4_creds *c)
{
	struct tm tm;

	memset(p, 0, sizeof(*p));
	p->r = r;
	if (!r || !valid_token_str(r->method, 32) || !r->host || !*r->host ||
	    !valid_scope_part(r->region) || !valid_scope_part(r->service))
		return -EINVAL;
	for (const char *h = r->host; *h; h++)
		if (*h <= ' ' || *h > '~')
			return -EINVAL;
	p->path = r->path && *r->path ? r->path : "/";
	if (!valid_path(p->path))
		return -EINVAL;
	p->payload = r->payload_hash ? r->payload_hash : STK_SIGV4_EMPTY_SHA256;
	if (!valid_payload_hash(p->payload))
		return -EINVAL;
	if (c && c->session_token && *c->session_token) {
		if (has_crlf(c->session_token, strlen(c->session_token)))
			return -EINVAL;
		p->token = c->session_token;
	}
	if (!gmtime_r(&r->now, &tm) ||
	    strftime(p->amz_date, sizeof(p->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
		return -EINVAL;
	memcpy(p->date, p->amz_date, 8);
	p->date[8] = '\0';

	add_hdr(p, "host", r->host);
	add_hdr(p, "x-amz-date", p->amz_date);
	if (!(r->flags & STK_SIGV4_NO_CONTENT_SHA256))
		add_hdr(p, "x-amz-content-sha256", p->payload);
	if (p->token)
		add_hdr(p, "x-amz-security-token", p->token);

	for (size_t i = 0; r->headers && r->headers[i]; i++) {
		const char *line = r->headers[i], *colon = strchr(line, ':');
		struct hdr *h;

		if (i == STK_SIGV4_MAX_HEADERS)
			return -E2BIG;
		if (!colon || colon == line)
			return -EINVAL;
		for (const char *q = line; q < colon; q++)
			if (!tchar((unsigned char)*q))
				return -EINVAL;
		h = &p->h[p->nh];
		*h = (struct hdr){ line, colon + 1, (size_t)(colon - line), strlen(colon + 1) };
		if (has_crlf(h->value, h->vlen) || reserved(h, r->flags))
			return -EINVAL;
		p->nh++;
	}

	/* Stable insertion sort: repeated names keep the order given. */
	for (size_t i = 1; i < p->nh; i++) {
		struct hdr t = p->h[i];
		size_t j = i;

		for (; j > 0 && name_cmp(&p->h[j - 1], &t) > 0; j--)
			p->h[j] = p->h[j - 1];
		p->h[j] = t;
	}
	return 0;
}

static void put_signed_headers(struct sink *sk, const struct prep *p)
{
	for (size_t i = 0; i < p->nh; i++) {
		if (i && name_cmp(&p->h[i - 1], &p->h[i]) == 0)
			continue;
		if (i)
			put(sk, ";", 1);
		put_lower(sk, p->h[i].name, p->h[i].nlen);
	}
}

static int put_canonical_request(struct sink *sk, const struct prep *p)
{
	int r;

	put_str(sk, p->r->method);
	put(sk, "\n", 1);
	put_str(sk, p->path);
	put(sk, "\n", 1);
	r = put_canonical_query(sk, p->r->query);
	if (r)
		return r;
	put(sk, "\n", 1);
	for (size_t i = 0; i < p->nh; i++) {
		bool cont = i && name_cmp(&p->h[i - 1], &p->h[i]) == 0;

		if (cont) {
			put(sk, ",", 1);
		} else {
			if (i)
				put(sk, "\n", 1);
			put_lower(sk, p->h[i].name, p->h[i].nlen);
			put(sk, ":", 1);
		}
		put_trimmed(sk, p->h[i].value, p->h[i].vlen);
	}
	put(sk, "\n\n", 2);
	put_signed_headers(sk, p);
	put(sk, "\n", 1);
	put_str(sk, p->payload);
	return 0;
}

ssize_t stk__sigv4_canonical_request(const struct stk_sigv4_req *r, const struct stk_sigv4_creds *c,
				     char *buf, size_t cap)
{
	struct prep p;
	struct sink sk = { .buf = buf, .cap = cap };
	int err = prepare(&p, r, c);

	if (!err)
		err = put_canonical_request(&sk, &p);
	if (err) {
		if (cap)
			buf[0] = '\0';
		return err;
	}
	if (!sink_finish_text(&sk))
		return -ENAMETOOLONG;
	return (ssize_t)sk.len;
}

/* ---- Hashing and signing ------------------------------------------------- */

static void to_hex(const unsigned char *d, size_t n, char *hex)
{
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = hexlow[d[i] >> 4];
		hex[2 * i + 1] = hexlow[d[i] & 15];
	}
	hex[2 * n] = '\0';
}

static int digest_finish_hex(EVP_MD_CTX *md, char hex[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(md, d, &n) || n != 32)
		return -EIO;
	to_hex(d, 32, hex);
	return 0;
}

int stk__sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r = -EIO;

	if (!md)
		return -ENOMEM;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, data, len))
		r = digest_finish_hex(md, hex);
	EVP_MD_CTX_free(md);
	return r;
}

static bool hmac(const void *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
	unsigned int n = 0;

	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &n) &&
	       n == 32;
}

int stk__sigv4_sign(const struct stk_sigv4_req *r, const struct stk_sigv4_creds *c,
		    struct stk_sigv4_out *out)
{
	struct prep p;
	struct sink sk = { 0 };
	char creq_hex[65], scope[2 * SCOPE_PART_MAX + 32], sts[sizeof(scope) + 128];
	char signed_hdrs[STK_SIGV4_AUTH_MAX], sig_hex[65];
	char kbuf[4 + SECRET_MAX];
	unsigned char k1[32], k2[32];
	size_t slen;
	int n, err;

	if (!c || !valid_access_key(c->access_key) || !c->secret_key || !*c->secret_key || !out)
		return -EINVAL;
	slen = strlen(c->secret_key);
	if (slen > SECRET_MAX)
		return -E2BIG;
	err = prepare(&p, r, c);
	if (err)
		return err;

	/* The canonical request, hashed as it is produced. */
	sk.md = EVP_MD_CTX_new();
	if (!sk.md)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(sk.md, EVP_sha256(), NULL)) {
		err = -EIO;
		goto done;
	}
	err = put_canonical_request(&sk, &p);
	if (err)
		goto done;
	err = sk.md_failed ? -EIO : digest_finish_hex(sk.md, creq_hex);
	if (err)
		goto done;

	/* Sizes are bounded by prepare(), so these cannot truncate. */
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", p.date, r->region, r->service);
	n = snprintf(sts, sizeof(sts), ALGORITHM "\n%s\n%s\n%s", p.amz_date, scope, creq_hex);

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
	 */
	memcpy(kbuf, "AWS4", 4);
	memcpy(kbuf + 4, c->secret_key, slen);
	if (!hmac(kbuf, 4 + slen, p.date, 8, k1) ||
	    !hmac(k1, 32, r->region, strlen(r->region), k2) ||
	    !hmac(k2, 32, r->service, strlen(r->service), k1) ||
	    !hmac(k1, 32, "aws4_request", 12, k2) || !hmac(k2, 32, sts, (size_t)n, k1)) {
		err = -EIO;
		goto done;
	}
	to_hex(k1, 32, sig_hex);

	{
		struct sink hs = { .buf = signed_hdrs, .cap = sizeof(signed_hdrs) };

		put_signed_headers(&hs, &p);
		if (!sink_finish_text(&hs)) {
			err = -ENAMETOOLONG;
			goto done;
		}
	}
	n = snprintf(out->authorization, sizeof(out->authorization),
		     ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s", c->access_key,
		     scope, signed_hdrs, sig_hex);
	if (n < 0 || (size_t)n >= sizeof(out->authorization)) {
		err = -ENAMETOOLONG;
		goto done;
	}
	memcpy(out->amz_date, p.amz_date, sizeof(out->amz_date));
	if (r->flags & STK_SIGV4_NO_CONTENT_SHA256)
		out->content_sha256[0] = '\0';
	else
		snprintf(out->content_sha256, sizeof(out->content_sha256), "%s", p.payload);
	err = 0;
done:
	explicit_bzero(kbuf, sizeof(kbuf));
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	EVP_MD_CTX_free(sk.md);
	return err;
}

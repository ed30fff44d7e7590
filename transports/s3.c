/* SPDX-License-Identifier: MIT */
/*
 * s3://bucket/key: Amazon S3 and S3-compatible stores (MinIO, Ceph RGW, ...).
 *
 * Requests go through the HTTP engine, signed with SigV4 (transports/sigv4.c)
 * before each attempt.  Addressing is virtual-hosted on AWS and path-style on
 * a custom endpoint unless told otherwise.  Listing is ListObjectsV2 with
 * continuation tokens, parsed with expat.  Credentials stay in this file:
 * they are never logged, and never sent anywhere but the endpoint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "transports/aws_creds.h"
#include "transports/http.h"
#include "transports/s3_xml.h"
#include "transports/sigv4.h"
#include "transports/transport.h"

#define LIST_PAGE_MAX (64u << 20)
#define READ_ALL_MAX  (256u << 20)
#define KEY_MAX	      1024 /* S3's own limit on key length, in bytes */

static struct {
	char scheme[8];
	char host[256]; /* endpoint host[:port] */
	char region[64];
	bool path_style;
	bool signed_requests;
	struct stk_aws_creds *creds; /* in a mapping of its own: creds_load() */
	size_t creds_len, token_len;
} S;

/* A zeroed, page-aligned mapping of at least n bytes that core dumps leave out. */
static void *secret_map(size_t n, size_t *len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	*len = (n + pg - 1) / pg * pg;
	void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, *len, MADV_DONTDUMP) < 0)
		stk_warn("s3://: madvise(MADV_DONTDUMP): %s: a core dump would hold the keys",
			 strerror(errno));
	return p;
}

/* Overwrites a variable's value where the kernel keeps it (/proc/PID/environ), then drops it. */
static void scrub_env(const char *name)
{
	char *v = getenv(name);
	if (v)
		explicit_bzero(v, strlen(v));
	unsetenv(name);
}

/*
 * Loads the keys (stk__aws_creds_load's contract) into S.creds, a mapping
 * marked MADV_DONTDUMP, and moves the session token into another: so that
 * no core dump of stokerd holds them (gcore and the kernel both honour it;
 * tests/e2e/test_e2e_sandbox.c checks).  The secret variables are wiped
 * from the environment, which a core dump (the initial stack) and
 * /proc/PID/environ would otherwise show.
 */
static int creds_load(char *err, size_t errlen)
{
	S.creds = secret_map(sizeof(*S.creds), &S.creds_len);
	if (!S.creds) {
		snprintf(err, errlen, "out of memory for the keys");
		return -ENOMEM;
	}
	int r = stk__aws_creds_load(S.creds, err, errlen);
	char *t = S.creds->session_token;
	if (!r && t) {
		size_t tl = strlen(t) + 1;
		char *m = secret_map(tl, &S.token_len);
		if (!m) {
			stk__aws_creds_clear(S.creds);
			snprintf(err, errlen, "out of memory for the session token");
			return -ENOMEM;
		}
		memcpy(m, t, tl);
		explicit_bzero(t, tl);
		free(t);
		S.creds->session_token = m;
	}
	scrub_env("AWS_SECRET_ACCESS_KEY");
	scrub_env("AWS_SESSION_TOKEN");
	return r;
}

static void creds_free(void)
{
	if (!S.creds)
		return;
	if (S.token_len) {
		explicit_bzero(S.creds->session_token, S.token_len);
		munmap(S.creds->session_token, S.token_len);
		S.creds->session_token = NULL;
		S.token_len = 0;
	}
	stk__aws_creds_clear(S.creds);
	munmap(S.creds, S.creds_len);
	S.creds = NULL;
}

/*
 * The endpoint and --allow-host.  s3:// requests pass the same host policy
 * as http:// ones (http_common.c): with --allow-host, the endpoint must be
 * in it too, or every s3:// request is refused naming its host.  The
 * endpoint is the operator's choice, not a client's, but exempting it would
 * make the list say less than it seems to ("only these hosts"), and with
 * virtual-hosted addressing the host is BUCKET.endpoint, part of it the
 * client's: each bucket's host must then be listed (hosts match exactly),
 * which makes the list say which buckets clients may reach.  Starting the
 * daemon anyway with a warning, rather than failing, keeps http:// working
 * for those who list only web hosts and never use s3://.  (An endpoint at a
 * link-local or metadata address is refused, and warned about, likewise.)
 */
static void endpoint_policy(void)
{
	if (!S.path_style) {
		if (stk__http_restricted())
			stk_info("s3://: requests go to BUCKET.%s, so --allow-host must name that "
				 "host for each bucket",
				 S.host);
		return;
	}
	char url[300], err[512];
	snprintf(url, sizeof(url), "%s://%s/", S.scheme, S.host);
	if (stk__http_check_url(url, url, err, sizeof(err)))
		stk_warn("s3://: %s: every s3:// request will be refused", err);
}

static int s3_init(const struct stk_tp_env *env)
{
	int r = stk__http_init(env);
	if (r)
		return r;
	char err[512];
	r = creds_load(err, sizeof(err));
	S.signed_requests = r == 0;
	if (r == -ENOENT) {
		stk_warn("s3://: %s; requests will be unsigned (public buckets only)", err);
	} else if (r) {
		stk_err("s3://: %s",
			err); /* e.g. AWS_PROFILE names no profile: say so, do not go anonymous */
		return r;
	}
	const char *region = env->s3_region ? env->s3_region : S.creds->region;
	snprintf(S.region, sizeof(S.region), "%s", region && *region ? region : "us-east-1");
	bool custom = env->s3_endpoint != NULL;
	if (custom) {
		const char *ep = env->s3_endpoint;
		const char *h = strstr(ep, "://");
		size_t sl = (size_t)(h - ep);
		if (!h || sl >= sizeof(S.scheme)) {
			stk_err("--s3-endpoint %s: expected http://host[:port] or https://...", ep);
			return -EINVAL;
		}
		memcpy(S.scheme, ep, sl);
		S.scheme[sl] = 0;
		h += 3;
		size_t hl = strcspn(h, "/");
		if (hl == 0 || hl >= sizeof(S.host) || (h[hl] == '/' && h[hl + 1])) {
			stk_err("--s3-endpoint %s: expected scheme://host[:port] with no path", ep);
			return -EINVAL;
		}
		memcpy(S.host, h, hl);
		S.host[hl] = 0;
		/* curl leaves a default port out of Host; the signed host must match. */
		const char *dflt = !strcmp(S.scheme, "https") ? ":443" : ":80";
		size_t dl = strlen(dflt);
		if (hl > dl && !strcmp(S.host + hl - dl, dflt))
			S.host[hl - dl] = 0;
	} else {
		snprintf(S.scheme, sizeof(S.scheme), "https");
		snprintf(S.host, sizeof(S.host), "s3.%s.amazonaws.com", S.region);
	}
	S.path_style =
	    env->s3_addressing == STK_S3_PATH || (env->s3_addressing == STK_S3_AUTO && custom);
	stk_info("s3://: endpoint %s://%s, region %s, %s-style, %s", S.scheme, S.host, S.region,
		 S.path_style ? "path" : "virtual-hosted",
		 S.signed_requests ? "signed (SigV4)" : "unsigned");
	endpoint_policy();
	return 0;
}

static void s3_fini(void)
{
	creds_free();
	stk__http_fini();
}

/*
 * Whether b[0, n) can be a bucket name: S3's characters, with the upper case
 * and '_' that old us-east-1 buckets have.  A bucket becomes part of the
 * request's host (virtual-hosted) or path, so nothing else may pass: with
 * "evil.example#" for a bucket, the host would have been evil.example, and
 * the signed headers (a session token among them) sent there.
 */
static bool bucket_ok(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = b[i];
		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
		    !(ch >= '0' && ch <= '9') && ch != '.' && ch != '-' && ch != '_')
			return false;
	}
	return true;
}

int stk__s3_split(const char *uri, char *bucket, size_t bcap, const char **key, char *err,
		  size_t errlen)
{
	if (strncmp(uri, "s3://", 5)) {
		snprintf(err, errlen, "%s: not an s3:// URI", uri);
		return -EINVAL;
	}
	const char *b = uri + 5;
	size_t bl = strcspn(b, "/?");
	if (bl < 3 || bl > 63 || bl >= bcap || b[bl] == '?') {
		snprintf(err, errlen, "%s: expected s3://bucket/key with a 3-63 character bucket",
			 uri);
		return -EINVAL;
	}
	if (!bucket_ok(b, bl)) {
		snprintf(err, errlen,
			 "%s: a bucket name has only letters, digits, '.', '-' and '_'", uri);
		return -EINVAL;
	}
	memcpy(bucket, b, bl);
	bucket[bl] = 0;
	*key = b[bl] ? b + bl + 1 : "";
	if (strlen(*key) > KEY_MAX) {
		snprintf(err, errlen, "%s: key longer than %d bytes", uri, KEY_MAX);
		return -EINVAL;
	}
	return 0;
}

/*
 * Builds the signed request for bucket/key with an optional raw query.
 * Returns 0 with *url and *hdrs, or -errno with err.
 */
static int build(const char *uri, const char *bucket, const char *key, const char *query,
		 const char *method, const char *range, char **url, struct curl_slist **hdrs,
		 char *err, size_t errlen)
{
	char enc[3 * KEY_MAX + 1], path[3 * KEY_MAX + 80], host[320], cq[4096];
	ssize_t n = stk__sigv4_uri_encode(key, strlen(key), true, enc, sizeof(enc));
	if (n < 0)
		goto toolong;
	if (S.path_style) {
		snprintf(host, sizeof(host), "%s", S.host);
		/* s3rver (and S3) sign "/bucket" for bucket-level requests. */
		snprintf(path, sizeof(path), "/%s%s%s", bucket, *key ? "/" : "", enc);
	} else {
		snprintf(host, sizeof(host), "%s.%s", bucket, S.host);
		snprintf(path, sizeof(path), "/%s", enc);
	}
	cq[0] = 0;
	if (query && stk__sigv4_canonical_query(query, cq, sizeof(cq)) < 0)
		goto toolong;
	size_t ul = strlen(S.scheme) + strlen(host) + strlen(path) + strlen(cq) + 8;
	*url = malloc(ul);
	if (!*url)
		goto nomem;
	snprintf(*url, ul, "%s://%s%s%s%s", S.scheme, host, path, cq[0] ? "?" : "", cq);
	*hdrs = NULL;
	if (!S.signed_requests)
		return 0;
	char rh[96];
	const char *extra[2] = { NULL, NULL };
	if (range) {
		snprintf(rh, sizeof(rh), "range:%s", range);
		extra[0] = rh;
	}
	struct stk_sigv4_req req = {
		.method = method,
		.host = host,
		.path = path,
		.query = cq,
		.headers = extra,
		.payload_hash = NULL,
		.region = S.region,
		.service = "s3",
		.now = time(NULL),
	};
	struct stk_sigv4_creds c = {
		.access_key = S.creds->access_key,
		.secret_key = S.creds->secret_key,
		.session_token = S.creds->session_token,
	};
	struct stk_sigv4_out out;
	int r = stk__sigv4_sign(&req, &c, &out);
	if (r) {
		snprintf(err, errlen, "%s: cannot sign the request: %s", uri, strerror(-r));
		free(*url);
		*url = NULL;
		return r;
	}
	char h[STK_SIGV4_AUTH_MAX + 32];
	struct curl_slist *l = NULL, *t;
	snprintf(h, sizeof(h), "x-amz-date: %s", out.amz_date);
	l = curl_slist_append(l, h);
	snprintf(h, sizeof(h), "x-amz-content-sha256: %s", out.content_sha256);
	if (l && (t = curl_slist_append(l, h)))
		l = t;
	if (l && c.session_token && *c.session_token) {
		size_t tl = strlen(c.session_token) + 32;
		char *th = malloc(tl);
		if (th) {
			snprintf(th, tl, "x-amz-security-token: %s", c.session_token);
			if ((t = curl_slist_append(l, th)))
				l = t;
			explicit_bzero(th, tl);
			free(th);
		}
	}
	snprintf(h, sizeof(h), "Authorization: %s", out.authorization);
	if (l && (t = curl_slist_append(l, h)))
		l = t;
	explicit_bzero(h, sizeof(h));
	if (!l) {
		free(*url);
		*url = NULL;
		goto nomem;
	}
	*hdrs = l;
	return 0;
toolong:
	snprintf(err, errlen, "%s: request too long to sign", uri);
	return -ENAMETOOLONG;
nomem:
	snprintf(err, errlen, "%s: out of memory", uri);
	return -ENOMEM;
}

/* Object requests: the whole URI after the bucket is the key. */
static int s3_prepare(const char *uri, const char *method, const char *range, char **url,
		      struct curl_slist **hdrs, char *err, size_t errlen)
{
	char bucket[64];
	const char *key;
	int r = stk__s3_split(uri, bucket, sizeof(bucket), &key, err, errlen);
	if (r)
		return r;
	return build(uri, bucket, key, NULL, method, range, url, hdrs, err, errlen);
}

/* Bucket requests: "s3://bucket?query" (a bucket name has no '?'). */
static int s3_prepare_bucket(const char *uri, const char *method, const char *range, char **url,
			     struct curl_slist **hdrs, char *err, size_t errlen)
{
	const char *q = strchr(uri + 5, '?');
	size_t bl = q ? (size_t)(q - uri - 5) : strlen(uri + 5);
	char bucket[64];
	if (bl == 0 || bl >= sizeof(bucket) || !bucket_ok(uri + 5, bl)) {
		snprintf(err, errlen, "%s: bad bucket", uri);
		return -EINVAL;
	}
	memcpy(bucket, uri + 5, bl);
	bucket[bl] = 0;
	return build(uri, bucket, "", q ? q + 1 : NULL, method, range, url, hdrs, err, errlen);
}

static int s3_error(const char *uri, long status, const char *body, size_t len, char *err,
		    size_t errlen)
{
	char code[64], msg[256];
	int r = stk__http_status_errno(status);
	/* Bucket requests carry their query in the URI; name only the bucket. */
	int ul = (int)strcspn(uri, "?");
	if (len && stk__s3_parse_error(body, len, code, sizeof(code), msg, sizeof(msg)) == 0) {
		if (!strcmp(code, "NoSuchKey") || !strcmp(code, "NoSuchBucket"))
			r = -ENOENT;
		else if (!strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "AccessDenied") ||
			 !strcmp(code, "InvalidAccessKeyId"))
			r = -EACCES;
		snprintf(err, errlen, "%.*s: HTTP %ld %s: %s", ul, uri, status, code, msg);
	} else {
		snprintf(err, errlen, "%.*s: HTTP %ld%s", ul, uri, status,
			 status == 404	 ? " (no such key)"
			 : status == 403 ? " (access denied)"
					 : "");
	}
	return r;
}

static int s3_stat(const char *uri, uint64_t *size, char *err, size_t errlen)
{
	int r =
	    stk__http_request(uri, "HEAD", s3_prepare, s3_error, 0, NULL, NULL, size, err, errlen);
	if (r == 0)
		return r;
	/* A HEAD error has no body: ask again with a GET to learn S3's error code. */
	char e2[512];
	char *body = NULL;
	int r2 = stk__http_request(uri, "GET", s3_prepare, s3_error, 4096, &body, NULL, NULL, e2,
				   sizeof(e2));
	free(body);
	if (r2 && r2 != -EFBIG) {
		snprintf(err, errlen, "%s", e2);
		return r2;
	}
	return r;
}

static int s3_read_all(const char *uri, size_t max, char **buf, size_t *len, char *err,
		       size_t errlen)
{
	return stk__http_request(uri, "GET", s3_prepare, s3_error, max ? max : READ_ALL_MAX, buf,
				 len, NULL, err, errlen);
}

/* Lists every object below prefix into cat, page by page. */
static int list_prefix(const char *bucket, const char *prefix, struct stk_catalog *cat, char *err,
		       size_t errlen)
{
	char uri_base[128 + KEY_MAX];
	snprintf(uri_base, sizeof(uri_base), "s3://%s/", bucket);
	char eprefix[3 * KEY_MAX + 1], token[1024], etoken[3 * 1024 + 1];
	if (stk__sigv4_uri_encode(prefix, strlen(prefix), false, eprefix, sizeof(eprefix)) < 0) {
		snprintf(err, errlen, "s3://%s/%s: prefix too long", bucket, prefix);
		return -ENAMETOOLONG;
	}
	token[0] = 0;
	for (unsigned page = 0;; page++) {
		char req[sizeof(eprefix) + sizeof(etoken) + 128];
		etoken[0] = 0;
		if (token[0] && stk__sigv4_uri_encode(token, strlen(token), false, etoken,
						      sizeof(etoken)) < 0) {
			snprintf(err, errlen, "s3://%s/%s: continuation token too long", bucket,
				 prefix);
			return -EINVAL;
		}
		snprintf(req, sizeof(req), "s3://%s?list-type=2&prefix=%s%s%s", bucket, eprefix,
			 token[0] ? "&continuation-token=" : "", etoken);
		char *body = NULL;
		size_t len = 0;
		int r = stk__http_request(req, "GET", s3_prepare_bucket, s3_error, LIST_PAGE_MAX,
					  &body, &len, NULL, err, errlen);
		if (r) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, " (listing s3://%s/%s)", bucket, prefix);
			return r;
		}
		bool truncated = false;
		r = stk__s3_parse_list(body, len, prefix, uri_base, cat, &truncated, token,
				       sizeof(token), err, errlen);
		free(body);
		if (r) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, " (listing s3://%s/%s, page %u)", bucket,
				 prefix, page + 1);
			return r;
		}
		if (!truncated)
			return 0;
		if (!token[0]) {
			snprintf(err, errlen,
				 "s3://%s/%s: page %u is truncated but has no continuation token",
				 bucket, prefix, page + 1);
			return -EPROTO;
		}
	}
}

static int s3_list(const char *uri, struct stk_catalog *cat, char *err, size_t errlen)
{
	char bucket[64];
	const char *key;
	int r = stk__s3_split(uri, bucket, sizeof(bucket), &key, err, errlen);
	if (r)
		return r;
	size_t kl = strlen(key);
	if (kl && key[kl - 1] != '/') {
		/* A key names one object; failing that, it is a prefix without its '/'. */
		uint64_t size;
		char e2[512];
		r = s3_stat(uri, &size, e2, sizeof(e2));
		if (r == 0) {
			const char *slash = strrchr(key, '/');
			const char *base = slash ? slash + 1 : key;
			return stk__catalog_add(cat, base, strlen(base), uri, size);
		}
		if (r != -ENOENT) {
			snprintf(err, errlen, "%s", e2);
			return r;
		}
		char prefix[KEY_MAX + 2];
		snprintf(prefix, sizeof(prefix), "%s/", key);
		r = list_prefix(bucket, prefix, cat, err, errlen);
		if (!r && cat->n == 0) {
			snprintf(err, errlen, "%s; and no objects below %s/", e2, uri);
			r = -ENOENT;
		}
		return r;
	}
	r = list_prefix(bucket, key, cat, err, errlen);
	if (!r && cat->n == 0)
		stk_warn("%s: no objects below this prefix", uri);
	return r;
}

static int s3_submit(struct stk_fetch *f)
{
	return stk__http_fetch(f, s3_prepare, s3_error);
}

const struct stk_transport_ops stk_transport_s3 = {
	.name = "s3",
	.init = s3_init,
	.fini = s3_fini,
	.list = s3_list,
	.stat = s3_stat,
	.read_all = s3_read_all,
	.submit = s3_submit,
};

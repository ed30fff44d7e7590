/* SPDX-License-Identifier: MIT */
/*
 * What both halves of the HTTP engine share: the options, curl's settings
 * for every request, the host policy (which hosts and addresses requests may
 * reach), the retry policy (which failures, how long to wait), the
 * per-endpoint counters, and blocking requests for worker threads (listing,
 * HEAD, manifests).  The fetches themselves, on engine threads, are in
 * http.c.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/loop.h"
#include "stoker.h"
#include "transports/http.h"
#include "transports/http_int.h"

#define STK_STR_(x) #x
#define STK_STR(x)  STK_STR_(x)

#define BACKOFF_BASE_NS 50000000ull   /* 50 ms */
#define BACKOFF_CAP_NS	5000000000ull /* 5 s */
#define MAX_ENDPOINTS	64

struct stk_http_opts stk__http_o;

static struct {
	pthread_mutex_t mu; /* engine threads and workers count here */
	struct stk_http_endpoint_stats ep[MAX_ENDPOINTS];
	unsigned nep;
} E = { .mu = PTHREAD_MUTEX_INITIALIZER };

int stk__http_status_errno(long status)
{
	switch (status) {
	case 404:
	case 410:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 400:
		return -EINVAL;
	case 416:
		return -ERANGE;
	default:
		return -EIO;
	}
}

/* Returns the index of url's endpoint (scheme://host:port) in the table. */
int stk__http_endpoint_of(const char *url)
{
	char key[128];
	const char *p = strstr(url, "://");
	const char *end = p ? strchr(p + 3, '/') : NULL;
	size_t n = end ? (size_t)(end - url) : strlen(url);
	if (n >= sizeof(key))
		n = sizeof(key) - 1;
	memcpy(key, url, n);
	key[n] = 0;
	pthread_mutex_lock(&E.mu);
	unsigned i;
	for (i = 0; i < E.nep; i++)
		if (!strcmp(E.ep[i].endpoint, key))
			break;
	if (i == E.nep && E.nep < MAX_ENDPOINTS) {
		memcpy(E.ep[i].endpoint, key, n + 1);
		E.nep++;
	}
	pthread_mutex_unlock(&E.mu);
	return i < MAX_ENDPOINTS ? (int)i : -1;
}

void stk__http_count(int ep, uint64_t req, uint64_t retries, uint64_t errors, uint64_t bytes,
		     uint64_t ns)
{
	if (ep < 0)
		return;
	pthread_mutex_lock(&E.mu);
	E.ep[ep].requests += req;
	E.ep[ep].retries += retries;
	E.ep[ep].errors += errors;
	E.ep[ep].bytes += bytes;
	E.ep[ep].busy_ns += ns;
	pthread_mutex_unlock(&E.mu);
}

unsigned stk__http_endpoints(struct stk_http_endpoint_stats *out, unsigned max)
{
	pthread_mutex_lock(&E.mu);
	unsigned n = E.nep;
	memcpy(out, E.ep, (n < max ? n : max) * sizeof(*out));
	pthread_mutex_unlock(&E.mu);
	return n;
}

/*
 * Jittered exponential backoff: uniform in [d/4, d], d = min(cap, base *
 * 2^attempt).  The floor keeps a retry from coming at once.
 */
uint64_t stk__http_backoff_ns(unsigned attempt)
{
	uint64_t d = BACKOFF_BASE_NS << (attempt < 16 ? attempt : 16);
	if (d > BACKOFF_CAP_NS)
		d = BACKOFF_CAP_NS;
	static __thread unsigned seed;
	if (!seed)
		seed = (unsigned)stk__now_ns() ^ (unsigned)pthread_self();
	return d / 4 + (uint64_t)rand_r(&seed) % (d - d / 4 + 1);
}

/* Retryable: the server or the path failed, not the request. */
bool stk__http_retryable(CURLcode rc, long status)
{
	switch (rc) {
	case CURLE_OK:
		return status >= 500 || status == 429 || status == 408;
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WRITE_ERROR: /* a body longer than asked for */
		return true;
	default:
		return false;
	}
}

static void set_common(CURL *e)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/*
	 * The bound on a stalled server (--http-stall-timeout): a request that
	 * moves under 1 KiB/s for stall_s seconds, a server that accepts and
	 * never answers included, fails with CURLE_OPERATION_TIMEDOUT and is
	 * retried; so a demand get of it ends after about (retries + 1) times
	 * that plus the backoffs.  Connecting gets at most 10 s, or less when the
	 * stall bound is shorter.
	 */
	long stall = (long)stk__http_o.stall_s;
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, stall < 10 ? stall * 1000L : 10000L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, stall);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, stk__http_o.insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, stk__http_o.insecure ? 0L : 2L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/*
	 * Redirects are not followed (a 3xx is an error naming its status): a
	 * Location could name any host, and only the first URL is checked
	 * against --allow-host.  Should they ever be followed, the addresses are
	 * still checked (open_socket) but the allow list must be applied to each
	 * Location too.
	 */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* Servers' logs (S3 access logs, nginx) should say who is asking. */
	curl_easy_setopt(e, CURLOPT_USERAGENT,
			 "stoker/" STK_STR(STK_VERSION_MAJOR) "." STK_STR(STK_VERSION_MINOR));
}

/*
 * The host policy.  Clients name the URLs, so without one the daemon would
 * make requests to any address a client chooses, including the link-local
 * ones where cloud metadata services hand out the node's credentials
 * (issue 7, item 9).  Two rules, applied to every request the engine makes
 * (fetches, HEADs, manifests, S3 listings, s3:// requests to the endpoint):
 *
 * - With --allow-host, a URL's host and port must match an entry: "HOST"
 *   any port, "HOST:PORT" (or "[IPV6]:PORT") that port, the URL's port being
 *   80 or 443 by scheme when it names none.  Hosts compare whole and
 *   case-insensitively (no suffix matching), IPv6 addresses in one form.
 *   Anything else is refused before a connection is made.
 *
 * - Whatever the list, an address that is link-local or a cloud metadata
 *   service (stk__http_addr_forbidden) is refused unless the URL's host is
 *   itself in the list.  This is checked on the address curl is about to
 *   connect to (CURLOPT_OPENSOCKETFUNCTION), so a DNS name that resolves to
 *   169.254.169.254 is refused as the literal is, and on a literal address
 *   before any connection, for a plain message.
 *
 * A refusal is -EACCES and is never retried.  Through a proxy (http_proxy
 * and friends, which libcurl honours) the connect-time check sees the
 * proxy's address, not the target's: then only the allow list and the
 * literal-address check stand between a client and a metadata address.
 */

struct allow_entry {
	char host[256]; /* normalised: host_norm() */
	unsigned port;	/* 0: any */
};

static struct {
	struct allow_entry *e;
	unsigned n;
} P;

/*
 * Lowercases host into out without IPv6 brackets, an IPv6 address in
 * inet_ntop()'s form, so that spellings of one address compare equal.
 * Returns false when it is empty or does not fit.
 */
static bool host_norm(const char *host, char *out, size_t cap)
{
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= cap || cap < INET6_ADDRSTRLEN)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)host[i]);
	out[n] = 0;
	struct in6_addr a6;
	if (strchr(out, ':') && inet_pton(AF_INET6, out, &a6) == 1)
		inet_ntop(AF_INET6, &a6, out, (socklen_t)cap);
	return true;
}

/* Parses "HOST", "HOST:PORT", "[IPV6]", "[IPV6]:PORT" or a bare IPv6 address. */
static int entry_parse(const char *s, struct allow_entry *out)
{
	size_t n = strlen(s);
	/* Nothing that would make curl read a path, user or query into it. */
	if (!n || n > 300 || strpbrk(s, "/?#@%\\ \t\r\n") || s[n - 1] == ':')
		return -EINVAL;
	bool bare6 = s[0] != '[' && strchr(s, ':') != strrchr(s, ':');
	char url[320];
	snprintf(url, sizeof(url), bare6 ? "http://[%s]/" : "http://%s/", s);
	CURLU *u = curl_url();
	if (!u)
		return -ENOMEM;
	char *host = NULL, *port = NULL, *zone = NULL;
	int r = -EINVAL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_ZONEID, &zone, 0) != CURLUE_NO_ZONEID ||
	    !host_norm(host, out->host, sizeof(out->host)))
		goto out;
	out->port = 0;
	CURLUcode pc = curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (pc == CURLUE_OK) {
		char *end;
		unsigned long p = strtoul(port, &end, 10);
		if (*end || p == 0 || p > 65535)
			goto out;
		out->port = (unsigned)p;
	} else if (pc != CURLUE_NO_PORT) {
		goto out;
	}
	r = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_free(zone);
	curl_url_cleanup(u);
	return r;
}

int stk__http_policy_init(char *const *allow)
{
	stk__http_policy_fini();
	unsigned n = 0;
	while (allow && allow[n])
		n++;
	if (!n)
		return 0;
	P.e = calloc(n, sizeof(*P.e));
	if (!P.e)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		int r = entry_parse(allow[i], &P.e[i]);
		if (r) {
			stk_err("--allow-host %s: expected HOST, HOST:PORT or [IPV6]:PORT",
				allow[i]);
			stk__http_policy_fini();
			return r;
		}
	}
	P.n = n;
	char list[512];
	size_t l = 0;
	for (unsigned i = 0; i < n && l < sizeof(list); i++)
		l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", allow[i]);
	stk_info("http, s3: requests reach only --allow-host %s", list);
	return 0;
}

void stk__http_policy_fini(void)
{
	free(P.e);
	P.e = NULL;
	P.n = 0;
}

bool stk__http_restricted(void)
{
	return P.n > 0;
}

static bool v4_forbidden(uint32_t a) /* host byte order */
{
	return (a >> 16) == 0xa9fe || /* 169.254.0.0/16 link-local, 169.254.169.254 AWS,
				       * GCP, Azure, OCI, OpenStack metadata */
	       a == 0x646464c8u ||    /* 100.100.100.200 Alibaba Cloud metadata */
	       a == 0xc00000c0u ||    /* 192.0.0.192 Oracle Cloud metadata */
	       a == 0xa83f8110u;      /* 168.63.129.16 Azure WireServer */
}

static bool v6_forbidden(const struct in6_addr *a)
{
	const uint8_t *b = a->s6_addr;
	static const uint8_t ec2[16] = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02 };
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const uint8_t compat[12] = { 0 };
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
		return true;
	if (!memcmp(b, ec2, 16)) /* fd00:ec2::254 AWS metadata over IPv6 */
		return true;
	/* IPv4 in IPv6: mapped (::ffff:a.b.c.d), NAT64's well-known prefix
	 * (64:ff9b::a.b.c.d) and the old compatible form (::a.b.c.d). */
	if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12) || !memcmp(b, compat, 12)) {
		uint32_t v4 =
		    (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
		return v4_forbidden(v4);
	}
	return false;
}

bool stk__http_addr_forbidden(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_forbidden(
		    ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
		return v6_forbidden(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false;
}

/* Whether the normalised host is a literal address that is forbidden. */
static bool literal_forbidden(const char *host)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1)
		return stk__http_addr_forbidden((struct sockaddr *)&a4);
	if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1)
		return stk__http_addr_forbidden((struct sockaddr *)&a6);
	return false;
}

/*
 * How much of uri to name in a message: the s3 transport carries a bucket
 * request's query in its URI ("s3://bucket?list-type=2&..."), which says
 * nothing to a person.
 */
static int uri_shown(const char *uri)
{
	return (int)(strncmp(uri, "s3://", 5) ? strlen(uri) : strcspn(uri, "?"));
}

int stk__http_policy_check(const char *uri, const char *url, struct stk_http_guard *g, char *err,
			   size_t errlen)
{
	char *host = NULL, *port = NULL;
	char h[256];
	int r = -EINVAL;
	g->named = g->refused = false;
	g->host[0] = g->addr[0] = 0;
	if (!g->url && !(g->url = curl_url())) {
		snprintf(err, errlen, "%.*s: out of memory", uri_shown(uri), uri);
		return -ENOMEM;
	}
	CURLUcode uc = curl_url_set(g->url, CURLUPART_URL, url, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(g->url, CURLUPART_HOST, &host, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(g->url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (uc != CURLUE_OK) {
		snprintf(err, errlen, "%.*s: bad URL: %s", uri_shown(uri), uri,
			 curl_url_strerror(uc));
		goto out;
	}
	if (!host_norm(host, h, sizeof(h))) {
		snprintf(err, errlen, "%.*s: bad host in the URL", uri_shown(uri), uri);
		goto out;
	}
	snprintf(g->host, sizeof(g->host), "%s", host);
	unsigned pn = (unsigned)strtoul(port, NULL, 10);
	for (unsigned i = 0; i < P.n && !g->named; i++)
		g->named = !strcmp(P.e[i].host, h) && (!P.e[i].port || P.e[i].port == pn);
	r = -EACCES;
	if (P.n && !g->named) {
		snprintf(err, errlen, "%.*s: host %s:%s is not in --allow-host", uri_shown(uri),
			 uri, host, port);
		goto out;
	}
	if (!g->named && literal_forbidden(h)) {
		snprintf(err, errlen,
			 "%.*s: refused: %s is a link-local/cloud metadata address; name it in "
			 "--allow-host to allow it",
			 uri_shown(uri), uri, h);
		goto out;
	}
	r = 0;
out:
	curl_free(host);
	curl_free(port);
	return r;
}

int stk__http_check_url(const char *uri, const char *url, char *err, size_t errlen)
{
	struct stk_http_guard g = { 0 };
	int r = stk__http_policy_check(uri, url, &g, err, errlen);
	stk__http_guard_clear(&g);
	return r;
}

/* Called by curl for each address it connects to, before the socket exists. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct stk_http_guard *g = arg;
	if (!g->named && stk__http_addr_forbidden(&a->addr)) {
		const void *in =
		    a->family == AF_INET6
			? (const void *)&((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr
			: (const void *)&((struct sockaddr_in *)(void *)&a->addr)->sin_addr;
		if (!inet_ntop(a->family, in, g->addr, sizeof(g->addr)))
			snprintf(g->addr, sizeof(g->addr), "?");
		g->refused = true;
		return CURL_SOCKET_BAD; /* curl tries the host's other addresses, if any */
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int stk__http_setup(CURL *e, struct stk_http_guard *g, const char *uri, const char *url, char *err,
		    size_t errlen)
{
	int r = stk__http_policy_check(uri, url, g, err, errlen);
	if (r)
		return r;
	set_common(e);
	/* The URL as checked, not a second parse of the string. */
	curl_easy_setopt(e, CURLOPT_CURLU, g->url);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, g);
	return 0;
}

int stk__http_guard_refusal(const struct stk_http_guard *g, CURLcode rc, const char *uri, char *err,
			    size_t errlen)
{
	/* A refused socket fails the connect; another address may have been tried and
	 * failed too, but the refusal is what the person needs to hear about. */
	if (rc != CURLE_COULDNT_CONNECT || !g->refused)
		return 0;
	char h[256];
	if (host_norm(g->host, h, sizeof(h)) && !strcmp(h, g->addr))
		snprintf(err, errlen,
			 "%.*s: refused: %s is a link-local/cloud metadata address; name it in "
			 "--allow-host to allow it",
			 uri_shown(uri), uri, g->addr);
	else
		snprintf(err, errlen,
			 "%.*s: refused: %s resolved to %s, a link-local/cloud metadata address; "
			 "name %s in --allow-host to allow it",
			 uri_shown(uri), uri, g->host, g->addr, g->host);
	return -EACCES;
}

void stk__http_guard_clear(struct stk_http_guard *g)
{
	curl_url_cleanup(g->url);
	g->url = NULL;
}

/* Blocking requests, for worker threads. */

struct body {
	char *p;
	size_t len, max;
	bool over;
};

static size_t body_write(char *p, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = sz * n;
	if (len > b->max - b->len) {
		b->over = true;
		return 0;
	}
	char *np = realloc(b->p, b->len + len + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = 0;
	return len;
}

int stk__http_request(const char *uri, const char *method, stk_http_prepare_fn prepare,
		      stk_http_error_fn error, size_t max, char **body, size_t *len,
		      uint64_t *length, char *err, size_t errlen)
{
	CURL *e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	bool head = !strcmp(method, "HEAD");
	int r = -EIO;
	int ep = -1;
	struct stk_http_guard g = { 0 };
	for (unsigned attempt = 0;; attempt++) {
		char *url = NULL;
		struct curl_slist *hdrs = NULL;
		struct body b = { .max = max ? max : ERRBODY_MAX };
		r = prepare(uri, method, NULL, &url, &hdrs, err, errlen);
		if (r)
			break;
		curl_easy_reset(e);
		r = stk__http_setup(e, &g, uri, url, err, errlen);
		if (r) { /* refused by the host policy: no request, nothing to retry */
			curl_slist_free_all(hdrs);
			free(url);
			break;
		}
		ep = stk__http_endpoint_of(url);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(e, CURLOPT_NOBODY, head ? 1L : 0L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_write);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
		uint64_t t0 = stk__now_ns();
		CURLcode rc = curl_easy_perform(e);
		long status = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		stk__http_count(ep, 1, attempt ? 1 : 0, 0, b.len, stk__now_ns() - t0);
		curl_slist_free_all(hdrs);
		free(url);
		if (rc == CURLE_OK && status >= 200 && status < 300) {
			if (length) {
				curl_off_t cl = -1;
				curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
				*length = cl < 0 ? 0 : (uint64_t)cl;
			}
			if (body) {
				*body = b.p ? b.p : calloc(1, 1);
				if (len)
					*len = b.len;
			} else {
				free(b.p);
			}
			r = 0;
			break;
		}
		int refused =
		    rc != CURLE_OK ? stk__http_guard_refusal(&g, rc, uri, err, errlen) : 0;
		if (refused) { /* the host policy's: not retried */
			r = refused;
			stk__http_count(ep, 0, 0, 1, 0, 0);
			free(b.p);
			break;
		}
		bool again =
		    (rc == CURLE_OK && stk__http_retryable(rc, status)) ||
		    (rc != CURLE_OK && rc != CURLE_WRITE_ERROR && stk__http_retryable(rc, 0));
		if (again && attempt < stk__http_o.retries) {
			free(b.p);
			uint64_t d = stk__http_backoff_ns(attempt);
			stk_dbg("%s %s: %s; retry %u in %llu ms", method, uri,
				rc == CURLE_OK ? "server error" : curl_easy_strerror(rc),
				attempt + 1, (unsigned long long)(d / 1000000));
			struct timespec ts = { (time_t)(d / 1000000000u), (long)(d % 1000000000u) };
			nanosleep(&ts, NULL);
			continue;
		}
		if (rc == CURLE_WRITE_ERROR && b.over) {
			snprintf(err, errlen, "%s: larger than %zu bytes", uri, b.max);
			r = -EFBIG;
		} else if (rc != CURLE_OK) {
			snprintf(err, errlen, "%s: %s%s", uri, curl_easy_strerror(rc),
				 again ? " (gave up after retries)" : "");
			r = rc == CURLE_PEER_FAILED_VERIFICATION ? -EACCES : -EIO;
		} else {
			r = error(uri, status, b.p ? b.p : "", b.len, err, errlen);
		}
		stk__http_count(ep, 0, 0, 1, 0, 0);
		free(b.p);
		break;
	}
	curl_easy_cleanup(e);
	stk__http_guard_clear(&g);
	return r;
}

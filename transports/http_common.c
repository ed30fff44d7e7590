/* SPDX-License-Identifier: MIT */
/*
 * What both halves of the HTTP engine share: the options, curl's settings
 * for every request, the retry policy (which failures, how long to wait),
 * the per-endpoint counters, and blocking requests for worker threads
 * (listing, HEAD, manifests).  The fetches themselves, on engine threads,
 * are in http.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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

void stk__http_set_common(CURL *e)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* stalled: < 1 KiB/s ... */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);    /* ... for 30 s */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, stk__http_o.insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, stk__http_o.insecure ? 0L : 2L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Servers' logs (S3 access logs, nginx) should say who is asking. */
	curl_easy_setopt(e, CURLOPT_USERAGENT,
			 "stoker/" STK_STR(STK_VERSION_MAJOR) "." STK_STR(STK_VERSION_MINOR));
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
	for (unsigned attempt = 0;; attempt++) {
		char *url = NULL;
		struct curl_slist *hdrs = NULL;
		struct body b = { .max = max ? max : ERRBODY_MAX };
		r = prepare(uri, method, NULL, &url, &hdrs, err, errlen);
		if (r)
			break;
		ep = stk__http_endpoint_of(url);
		curl_easy_reset(e);
		stk__http_set_common(e);
		curl_easy_setopt(e, CURLOPT_URL, url);
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
	return r;
}

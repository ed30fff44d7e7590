/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine shared by the http(s):// and s3:// transports: libcurl's
 * multi interface on a few engine threads, each with its own io_uring loop
 * and multi (no thread per request); objects split into ranged GETs while
 * connections are spare, written straight into the cache's pages; retries
 * with exponential backoff and jitter; per-endpoint counters.
 */
#ifndef STOKER_HTTP_H
#define STOKER_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "transports/transport.h"

/*
 * How a transport turns one request into a URL and headers.  Called on an
 * engine thread (or a worker, for blocking requests) before each attempt, so
 * signatures are fresh; it must be thread-safe.  Returns 0 with *url
 * (malloc'd, freed by the engine) and *hdrs (freed by the engine with
 * curl_slist_free_all), or -errno with err filled in.
 */
typedef int (*stk_http_prepare_fn)(const char *uri, const char *method, const char *range,
				   char **url, struct curl_slist **hdrs, char *err, size_t errlen);

/* Maps an HTTP error response to -errno and a message naming the URI. */
typedef int (*stk_http_error_fn)(const char *uri, long status, const char *body, size_t len,
				 char *err, size_t errlen);

/* Starts the engine from the daemon's settings (once; later calls do nothing). */
int stk__http_init(const struct stk_tp_env *env);
void stk__http_fini(void);

/*
 * Starts fetching f (see struct stk_fetch), on the daemon's loop thread; f is
 * fetched on an engine thread and f->done runs back on the daemon's loop.
 * Returns STK_Q_QUEUED or -errno.
 */
int stk__http_fetch(struct stk_fetch *f, stk_http_prepare_fn prepare, stk_http_error_fn error);

/*
 * Blocking request for worker threads (listing, HEAD, small reads).  method
 * "GET" or "HEAD".  On 2xx returns 0 with the body in *body (malloc'd, NUL-
 * terminated, at most max bytes) and the Content-Length in *length (HEAD);
 * otherwise -errno with err from error().  Retries like fetches do.
 */
int stk__http_request(const char *uri, const char *method, stk_http_prepare_fn prepare,
		      stk_http_error_fn error, size_t max, char **body, size_t *len,
		      uint64_t *length, char *err, size_t errlen);

/*
 * The host policy (--allow-host; never link-local or cloud metadata
 * addresses unless listed) applies to every request above; a refusal is
 * -EACCES with err naming the URI and why, and is not retried.
 */

/* Whether --allow-host restricts requests to the hosts it names. */
bool stk__http_restricted(void);

/*
 * Checks url, for a request on behalf of uri, against the host policy
 * without making one.  Returns 0, -EACCES with err saying why it would be
 * refused, -EINVAL for a URL curl cannot parse, or -ENOMEM.  An address the
 * host resolves to is checked only when a request connects.
 */
int stk__http_check_url(const char *uri, const char *url, char *err, size_t errlen);

/* Counters for one endpoint (scheme://host:port). */
struct stk_http_endpoint_stats {
	char endpoint[128];
	uint64_t requests, retries, errors, bytes, busy_ns;
};

/* Copies up to max endpoints' counters into out. Returns how many there are. */
unsigned stk__http_endpoints(struct stk_http_endpoint_stats *out, unsigned max);

/* Classic error mapping for plain HTTP: 404 -ENOENT, 401/403 -EACCES, else -EIO. */
int stk__http_status_errno(long status);

#endif

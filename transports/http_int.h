/* SPDX-License-Identifier: MIT */
/*
 * Inside the HTTP engine: what http.c (fetches on engine threads) and
 * http_common.c (options, curl settings, retry policy, endpoint counters,
 * blocking requests) share.  Not for transports: they use http.h.
 */
#ifndef STOKER_HTTP_INT_H
#define STOKER_HTTP_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "transports/http.h"

#define ERRBODY_MAX 4096 /* the start of an error body kept for the message */

/* The engine's settings, from the daemon's (struct stk_tp_env). */
struct stk_http_opts {
	uint64_t part_size;	 /* the smallest ranged part */
	unsigned max_host_conns; /* connections (= requests in flight) per endpoint */
	unsigned retries;	 /* attempts after the first, for retryable failures */
	unsigned threads;	 /* engine shards: threads with a loop and a curl multi each */
	bool insecure;		 /* skip TLS verification */
};

/* Set once by stk__http_init, before any request; read-only after. */
extern struct stk_http_opts stk__http_o;

/* The options every request gets (timeouts, TLS, buffer, User-Agent). */
void stk__http_set_common(CURL *e);

/* The index of url's endpoint (scheme://host:port) in the counters, or -1. */
int stk__http_endpoint_of(const char *url);

/* Adds to an endpoint's counters (thread-safe; ep < 0 is ignored). */
void stk__http_count(int ep, uint64_t req, uint64_t retries, uint64_t errors, uint64_t bytes,
		     uint64_t ns);

/* Whether a failure is the server's or the path's (retried), not the request's. */
bool stk__http_retryable(CURLcode rc, long status);

/* Jittered exponential backoff: how long to wait before retry attempt + 1. */
uint64_t stk__http_backoff_ns(unsigned attempt);

#endif

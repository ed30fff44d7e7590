/* SPDX-License-Identifier: MIT */
/*
 * Inside the HTTP engine: what http.c (the engine threads), http_fetch.c
 * (fetches on them) and http_common.c (options, curl settings, host policy,
 * retry policy, endpoint counters, blocking requests) share.  Not for
 * transports: they use http.h.
 */
#ifndef STOKER_HTTP_INT_H
#define STOKER_HTTP_INT_H

#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/loop.h"
#include "transports/http.h"

#define ERRBODY_MAX 4096 /* the start of an error body kept for the message */

/* The engine's settings, from the daemon's (struct stk_tp_env). */
struct stk_http_opts {
	uint64_t part_size;	 /* the smallest ranged part */
	unsigned max_host_conns; /* connections (= requests in flight) per endpoint */
	unsigned retries;	 /* attempts after the first, for retryable failures */
	unsigned stall_s;	 /* a request under 1 KiB/s this long fails (retryable) */
	unsigned threads;	 /* engine shards: threads with a loop and a curl multi each */
	bool insecure;		 /* skip TLS verification */
};

/* Set once by stk__http_init, before any request; read-only after. */
extern struct stk_http_opts stk__http_o;

/* One shard of the engine (http.c): a thread with its own loop and curl multi. */
struct engine {
	struct stk_loop *loop;
	CURLM *multi;
	struct timer *timer;
	struct sock *socks; /* every sock not yet freed */
	unsigned pending;   /* polls and timers armed whose callback has not run */
	unsigned requests;  /* GETs in curl's hands (engine thread) */
	unsigned assigned;  /* objects handed over, done() not yet run (daemon's loop) */
	unsigned conns;	    /* connections per endpoint, this shard's share */
	bool quit;
	bool uring;    /* try io_uring for this shard's loop */
	int start_err; /* from the thread's setup; 1 while it runs */
	pthread_t thread;
	struct stk_work quit_work;
};

/* The shards, and the daemon's loop (set by stk__http_init). */
struct stk_http_shards {
	struct stk_loop *loop; /* the daemon's: f->done runs there */
	struct engine *eng;
	unsigned neng;
	bool init;
};

extern struct stk_http_shards stk__http_h;

/*
 * A part's CURLOPT_HEADERFUNCTION (http_fetch.c): keeps the ETag of the last
 * response in etag (128 bytes, the value cut to 127 and blanks trimmed;
 * emptied at each status line).  Returns sz * n.  Not static so that
 * tests/fuzz/fuzz_http_header.c can feed it a server's bytes.
 */
size_t stk__http_on_header(char *p, size_t sz, size_t n, void *arg);

/* On the shard: hands every transfer curl has finished to its part (http_fetch.c). */
void stk__http_check_done(struct engine *e);

/*
 * One request's dealings with the host policy (http_common.c): its URL,
 * parsed once, checked, and handed to curl as checked (CURLOPT_CURLU), and
 * what the check at connect time saw.  Zero it before first use; it may be
 * used again for the next attempt; stk__http_guard_clear frees what it holds
 * once the easy handle no longer uses it (reset or cleaned up).
 */
struct stk_http_guard {
	CURLU *url;
	bool named;	/* host[:port] is in --allow-host: any address it has is allowed */
	bool refused;	/* the connect-time check refused an address of the host */
	char host[256]; /* as curl has it ("[::1]" for IPv6), for messages */
	char addr[INET6_ADDRSTRLEN]; /* the address refused */
};

/*
 * Sets the host policy from the daemon's --allow-host list (NULL-terminated;
 * NULL or empty: any host but link-local and metadata addresses).  Call once,
 * before any request; read-only after.  Returns 0, -EINVAL for an entry that
 * is not HOST, HOST:PORT, [IPV6] or [IPV6]:PORT (logged, naming it), or
 * -ENOMEM.
 */
int stk__http_policy_init(char *const *allow);
void stk__http_policy_fini(void);

/*
 * Checks url, a request made on behalf of uri, against the host policy, and
 * leaves it parsed in g->url.  Returns 0 (g->named says whether the host is
 * listed), -EACCES when the policy refuses it, -EINVAL for a URL curl cannot
 * parse, or -ENOMEM; err names uri.  Makes no connection.
 */
int stk__http_policy_check(const char *uri, const char *url, struct stk_http_guard *g, char *err,
			   size_t errlen);

/*
 * Readies e, fresh or reset, for one request to url on behalf of uri: checks
 * url (stk__http_policy_check), then sets the options every request gets
 * (timeouts, TLS, buffer, User-Agent, no redirects), the URL, and the check
 * of every address curl connects to.  Returns 0, or what the check returned,
 * with err; then e must not be performed.
 */
int stk__http_setup(CURL *e, struct stk_http_guard *g, const char *uri, const char *url, char *err,
		    size_t errlen);

/*
 * After a transfer failed with rc: -EACCES with err naming uri when the
 * connect-time check refused its connection (a policy error, never retried),
 * else 0.
 */
int stk__http_guard_refusal(const struct stk_http_guard *g, CURLcode rc, const char *uri, char *err,
			    size_t errlen);

void stk__http_guard_clear(struct stk_http_guard *g);

/*
 * Whether sa (AF_INET or AF_INET6, IPv4-mapped and NAT64 forms included) is
 * link-local or a well-known cloud metadata address.
 */
bool stk__http_addr_forbidden(const struct sockaddr *sa);

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

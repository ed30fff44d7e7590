/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint (issue 9, docs/metrics.md): Prometheus text
 * exposition on /metrics, and the /healthz and /readyz probes, served by
 * libmicrohttpd on one thread of its own.
 *
 * Everything the endpoint reports belongs to the loop thread, so the HTTP
 * thread never reads the daemon's state.  It posts a work item to the loop
 * (stk_loop_post), which copies what the metrics need into a snapshot and
 * hands it over; the HTTP thread waits at most ANSWER_NS for it and formats
 * the text itself.  Three snapshot buffers change hands under a mutex held
 * only for a pointer swap: the loop fills its own (back) and swaps it with
 * the shared one (ready); the HTTP thread swaps ready with its own (front)
 * when ready is newer.  So the loop never waits on the HTTP thread, and a
 * wedged loop costs a scrape one second and a stale snapshot (its age is the
 * gauge stoker_snapshot_age_seconds), never a hang.
 *
 * At most one snapshot request and one test wedge are queued on the loop at
 * a time, and both work items live in struct stk_metrics.  Stopping stops
 * the HTTP server first (no more posts), then runs the loop until neither is
 * queued, and only then frees them: a work item still queued cannot touch
 * freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "metrics_int.h"

#define ANSWER_NS	 1000000000ull /* how long a request waits for the loop */
#define HEARTBEAT_MAX_NS 2000000000ull /* /healthz: the loop ticks every 250 ms */
#define WEDGE_MAX_S	 30
#define CONN_LIMIT	 64
#define CONN_TIMEOUT_S	 10

/* Copies what the metrics report into s. Loop thread. */
static void snap_fill(struct stk_metrics *m, struct snap *s)
{
	struct stk_daemon *d = m->d;
	const struct stk_obs *ob = &d->obs;

	s->taken_ns = stk__now_ns();
	memcpy(s->st, d->st, sizeof(s->st));
	stk__tier1_stats(d, s->st);
	stk__obs_stats(d, NULL, s->st);
	s->wait = ob->wait;
	s->ntp = ob->ntp < STK_OBS_TP_MAX ? ob->ntp : STK_OBS_TP_MAX;
	for (unsigned i = 0; i < s->ntp; i++) {
		snprintf(s->tp[i], sizeof(s->tp[i]), "%s", ob->tp[i] ? ob->tp[i] : "unknown");
		s->fetch[i] = ob->fetch[i];
	}
	memcpy(s->errors, ob->errors, sizeof(s->errors));
	s->nep = ob->nep < STK_OBS_EP_MAX ? ob->nep : STK_OBS_EP_MAX;
	for (unsigned i = 0; i < s->nep; i++) {
		memcpy(s->ep[i].name, ob->ep[i].name, sizeof(s->ep[i].name));
		s->ep[i].name[sizeof(s->ep[i].name) - 1] = 0;
		s->ep[i].attempts = ob->ep[i].attempts;
		s->ep[i].reached = ob->ep[i].reached;
	}
	s->tier_used = d->cache.tier ? d->cache.tier->used : 0;
	s->tier_budget = d->cache.tier ? d->cache.tier->budget : 0;
	s->resident = d->cache.resident;
	s->inflight = d->inflight;
	s->pinned = d->pinned;
	s->listening = d->listen_fd >= 0;
	if (m->nlabels && ob->labels)
		memcpy(s->labels, ob->labels, m->nlabels * sizeof(*s->labels));
}

/* On the loop: a snapshot for the HTTP thread. */
static void snap_done(struct stk_work *w)
{
	struct stk_metrics *m = stk_container_of(w, struct stk_metrics, snap_work);
	pthread_mutex_lock(&m->mu);
	bool stopping = m->stopping;
	pthread_mutex_unlock(&m->mu);
	if (!stopping)
		snap_fill(m, m->back);
	pthread_mutex_lock(&m->mu);
	if (!stopping) {
		struct snap *t = m->ready;
		m->ready = m->back;
		m->back = t;
		m->ready_fresh = true;
	}
	m->answered++;
	m->snap_queued = false;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

/*
 * Asks the loop for a snapshot and waits for it at most ANSWER_NS.  Returns
 * true when the loop answered; either way m->front is then the newest
 * snapshot there is.  HTTP thread only.
 */
static bool refresh(struct stk_metrics *m)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ANSWER_NS / 1000000000ull;

	pthread_mutex_lock(&m->mu);
	uint64_t want = m->answered + 1;
	bool post = !m->snap_queued && !m->stopping;
	if (post)
		m->snap_queued = true;
	pthread_mutex_unlock(&m->mu);
	if (post)
		stk_loop_post(m->d->loop, &m->snap_work);

	pthread_mutex_lock(&m->mu);
	while (m->answered < want && !m->stopping)
		if (pthread_cond_timedwait(&m->cv, &m->mu, &until) == ETIMEDOUT)
			break;
	bool ok = m->answered >= want;
	if (m->ready_fresh) {
		struct snap *t = m->front;
		m->front = m->ready;
		m->ready = t;
		m->ready_fresh = false;
	}
	pthread_mutex_unlock(&m->mu);
	return ok;
}

/* On the loop: POST /test/wedge blocks the loop thread, which is its purpose. */
static void wedge_done(struct stk_work *w)
{
	struct stk_metrics *m = stk_container_of(w, struct stk_metrics, wedge_work);
	pthread_mutex_lock(&m->mu);
	unsigned s = m->stopping ? 0 : m->wedge_s;
	pthread_mutex_unlock(&m->mu);
	if (s)
		stk_warn("test hook: blocking the event loop for %u s", s);
	struct timespec ts = { .tv_sec = s };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&m->mu);
	m->wedge_queued = false;
	pthread_mutex_unlock(&m->mu);
}

/*
 * Queues a response of text (len bytes, malloc'd; taken over) with status;
 * allow: the methods a 405 names.
 */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
			     const char *allow, char *text, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
	struct buf b = { .p = malloc(256), .cap = 256 };
	b.oom = !b.p;
	va_list ap;
	va_start(ap, fmt);
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	stk__bprintf(&b, "%s", line);
	if (b.oom) {
		free(b.p);
		return MHD_NO;
	}
	const char *allow = NULL;
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		allow = strstr(line, "POST") ? "POST" : "GET, HEAD";
	return reply(c, status, "text/plain; charset=utf-8", allow, b.p, b.len);
}

static enum MHD_Result serve_metrics(struct stk_metrics *m, struct MHD_Connection *c)
{
	refresh(m); /* unanswered: the last snapshot, its age says so */
	struct buf b = { .p = malloc(64 * 1024), .cap = 64 * 1024 };
	b.oom = !b.p;
	stk__metrics_format(m, m->front, &b);
	if (b.oom) {
		free(b.p);
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", NULL, b.p, b.len);
}

/* 200 when the loop ticks and answers; else 503 saying which it does not. */
static enum MHD_Result serve_healthz(struct stk_metrics *m, struct MHD_Connection *c)
{
	bool answered = refresh(m);
	uint64_t hb = __atomic_load_n(&m->d->heartbeat_ns, __ATOMIC_ACQUIRE);
	uint64_t age = age_ns(stk__now_ns(), hb);
	if (age > HEARTBEAT_MAX_NS)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "event loop: no heartbeat for %.3f s (limit %.0f s)\n",
				  (double)age / 1e9, (double)HEARTBEAT_MAX_NS / 1e9);
	if (!answered)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "event loop: did not answer within %.0f s\n",
				  (double)ANSWER_NS / 1e9);
	return reply_text(c, MHD_HTTP_OK, "ok\n");
}

/* 200 when the daemon listens, has its budget and reached each backend it tried. */
static enum MHD_Result serve_readyz(struct stk_metrics *m, struct MHD_Connection *c)
{
	if (!refresh(m))
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "not ready:\n- event loop: did not answer within %.0f s\n",
				  (double)ANSWER_NS / 1e9);
	const struct snap *s = m->front;
	struct buf b = { .p = malloc(1024), .cap = 1024 };
	b.oom = !b.p;
	if (!s->listening)
		stk__bprintf(&b, "- socket: not listening\n");
	if (!s->tier_budget)
		stk__bprintf(&b, "- ram tier: no budget allocated\n");
	for (unsigned i = 0; i < s->nep; i++)
		if (s->ep[i].attempts && !s->ep[i].reached)
			stk__bprintf(&b, "- backend %s: not reached in %" PRIu64 " attempts\n",
				     s->ep[i].name, s->ep[i].attempts);
	if (b.oom) {
		free(b.p);
		return MHD_NO;
	}
	if (!b.len) {
		free(b.p);
		return reply_text(c, MHD_HTTP_OK, "ready\n");
	}
	enum MHD_Result r =
	    reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready:\n%.*s", (int)b.len, b.p);
	free(b.p);
	return r;
}

/* Test only (STOKER_TEST_HOOKS=1): POST /test/wedge?seconds=N blocks the loop N s. */
static enum MHD_Result serve_wedge(struct stk_metrics *m, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seconds");
	uint64_t n;
	if (!v || stk__parse_u64(v, WEDGE_MAX_S, &n) || !n)
		return reply_text(c, MHD_HTTP_BAD_REQUEST, "seconds: expected 1 to %d\n",
				  WEDGE_MAX_S);
	pthread_mutex_lock(&m->mu);
	bool busy = m->wedge_queued || m->stopping;
	if (!busy) {
		m->wedge_queued = true;
		m->wedge_s = (unsigned)n;
	}
	pthread_mutex_unlock(&m->mu);
	if (busy)
		return reply_text(c, MHD_HTTP_CONFLICT, "a wedge is already pending\n");
	stk_loop_post(m->d->loop, &m->wedge_work);
	return reply_text(c, MHD_HTTP_ACCEPTED, "blocking the event loop for %u s\n", (unsigned)n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **ctx)
{
	static int seen;
	struct stk_metrics *m = cls;
	/* Answer once the request, body included, has arrived; a body is ignored. */
	if (!*ctx) {
		*ctx = &seen;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
	if (m->hooks && !strcmp(url, "/test/wedge")) {
		if (strcmp(method, MHD_HTTP_METHOD_POST))
			return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST\n");
		return serve_wedge(m, c);
	}
	enum MHD_Result (*fn)(struct stk_metrics *, struct MHD_Connection *) =
	    !strcmp(url, "/metrics")   ? serve_metrics
	    : !strcmp(url, "/healthz") ? serve_healthz
	    : !strcmp(url, "/readyz")  ? serve_readyz
				       : NULL;
	if (!fn)
		return reply_text(
		    c, MHD_HTTP_NOT_FOUND,
		    "not found; this server answers /metrics, /healthz and /readyz\n");
	if (!get)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
	return fn(m, c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	stk_warn("libmicrohttpd: %s", line);
}

/*
 * Parses "HOST:PORT" or "[IPV6]:PORT" (HOST a literal or a name) into *ss.
 * Returns 0, or -EINVAL with why in err.
 */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char *err,
		      size_t errlen)
{
	char host[256];
	const char *port;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof(host)) {
			snprintf(err, errlen, "expected [IPV6]:PORT");
			return -EINVAL;
		}
		memcpy(host, addr + 1, (size_t)(close - addr - 1));
		host[close - addr - 1] = 0;
		port = close + 2;
	} else {
		const char *colon = strrchr(addr, ':');
		if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host) ||
		    memchr(addr, ':', (size_t)(colon - addr))) {
			snprintf(err, errlen, "expected HOST:PORT, [IPV6]:PORT or off");
			return -EINVAL;
		}
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = 0;
		port = colon + 1;
	}
	uint64_t p;
	if (stk__parse_u64(port, 65535, &p)) {
		snprintf(err, errlen, "bad port '%s'", port);
		return -EINVAL;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int r = getaddrinfo(host, port, &hints, &res);
	if (r || !res) {
		snprintf(err, errlen, "cannot resolve '%.100s': %s", host, gai_strerror(r));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* "127.0.0.1:PORT" or "[::1]:PORT" of a bound socket. */
static void addr_str(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	}
}

/* Binds and listens on addr. Returns the socket, or -errno with the step that failed in *what. */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len, const char **what)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	*what = "socket";
	if (fd < 0)
		return -errno;
	/* Past a restart's TIME_WAIT; it never lets two listeners share a port on Linux. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	*what = "bind";
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		goto err;
	*what = "listen";
	if (listen(fd, 64) < 0)
		goto err;
	return fd;
err:;
	int r = -errno;
	close(fd);
	return r;
}

/* A label value escaped per the text format (\\, \", \n); the caller frees it. */
static char *label_escape(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(2 * n + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s == '\\' || *s == '"') {
			*o++ = '\\';
			*o++ = *s;
		} else if (*s == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return out;
}

static void metrics_free(struct stk_metrics *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < 3; i++)
		free(m->bufs[i].labels);
	for (unsigned i = 0; i < m->nnames; i++)
		free(m->names[i]);
	free(m->names);
	free(m->label_name);
	free(m->merged);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* The --metrics-dataset names, each once, escaped. 0 or -ENOMEM. */
static int names_init(struct stk_metrics *m, const struct stk_config *c)
{
	m->nlabels = c->nlabels;
	if (!c->nlabels)
		return 0;
	m->names = calloc(c->nlabels, sizeof(*m->names));
	m->label_name = calloc(c->nlabels, sizeof(*m->label_name));
	m->merged = calloc(c->nlabels, sizeof(*m->merged));
	if (!m->names || !m->label_name || !m->merged)
		return -ENOMEM;
	for (unsigned i = 0; i < 3; i++) {
		m->bufs[i].labels = calloc(c->nlabels, sizeof(*m->bufs[i].labels));
		if (!m->bufs[i].labels)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < c->nlabels; i++) {
		char *e = label_escape(c->labels[i].name);
		if (!e)
			return -ENOMEM;
		unsigned k = 0;
		while (k < m->nnames && strcmp(m->names[k], e))
			k++;
		if (k < m->nnames)
			free(e); /* two prefixes under one name: one series */
		else
			m->names[m->nnames++] = e;
		m->label_name[i] = k;
	}
	return 0;
}

int stk__metrics_start(struct stk_daemon *d)
{
	const char *addr = d->cfg.metrics_addr;
	if (!addr)
		return 0;
	/*
	 * The default address may be held by another daemon (a test suite
	 * runs many): that only warns.  An address given explicitly (flag or
	 * environment) that cannot be bound fails startup.
	 */
	bool dflt = !d->cfg.metrics_explicit;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char err[160];
	int r = parse_addr(addr, &ss, &len, err, sizeof(err));
	if (r) {
		stk_err("--metrics %s: %s", addr, err);
		return r;
	}
	const char *what;
	int fd = listen_on(&ss, len, &what);
	if (fd < 0) {
		if (dflt) {
			stk_warn(
			    "cannot serve metrics on the default address %s (%s: %s); going on "
			    "without them: give --metrics HOST:PORT for another address, or "
			    "--metrics off",
			    addr, what, strerror(-fd));
			return 0;
		}
		stk_err("--metrics %s: cannot %s: %s", addr, what, strerror(-fd));
		return fd;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);

	struct stk_metrics *m = calloc(1, sizeof(*m));
	r = -ENOMEM;
	if (!m)
		goto err;
	m->d = d;
	pthread_mutex_init(&m->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cv, &ca);
	pthread_condattr_destroy(&ca);
	r = names_init(m, &d->cfg);
	if (r)
		goto err;
	m->front = &m->bufs[0];
	m->ready = &m->bufs[1];
	m->back = &m->bufs[2];
	m->snap_work.done = snap_done;
	m->wedge_work.done = wedge_done;
	const char *h = getenv("STOKER_TEST_HOOKS");
	m->hooks = h && !strcmp(h, "1");
	snap_fill(m, m->front); /* called on the loop thread: a first snapshot */

	/*
	 * One internal thread serves every connection.  MHD owns fd from here:
	 * MHD_stop_daemon closes it.  The logger must come first, or MHD logs
	 * to stderr what it meets before it.
	 */
	m->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				  on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, m,
				  MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)CONN_TIMEOUT_S, MHD_OPTION_END);
	if (!m->mhd) {
		fd = -1; /* whether MHD closed it on failure is not documented: leave it */
		r = -EIO;
		goto err;
	}
	char bound[INET6_ADDRSTRLEN + 8];
	addr_str(&ss, bound, sizeof(bound));
	stk_info("serving http://%s/metrics", bound);
	if (m->hooks)
		stk_warn(
		    "test hooks on (STOKER_TEST_HOOKS=1): POST http://%s/test/wedge blocks the "
		    "event loop; never use this in production",
		    bound);
	d->metrics = m;
	return 0;
err:
	if (dflt) {
		stk_warn(
		    "cannot serve metrics on the default address %s: %s; going on without them",
		    addr, strerror(-r));
		r = 0;
	} else {
		stk_err("--metrics %s: cannot start the HTTP server: %s", addr, strerror(-r));
	}
	if (fd >= 0)
		close(fd);
	metrics_free(m);
	return r;
}

#define DRAIN_NS 2000000000ull

void stk__metrics_stop(struct stk_daemon *d)
{
	struct stk_metrics *m = d->metrics;
	if (!m)
		return;
	d->metrics = NULL;
	pthread_mutex_lock(&m->mu);
	m->stopping = true; /* requests waiting for the loop return now */
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	MHD_stop_daemon(m->mhd); /* joins the HTTP thread: nothing is posted after this */

	/* Work posted to the loop points into m: run it before m goes. */
	uint64_t deadline = stk__now_ns() + DRAIN_NS;
	for (;;) {
		pthread_mutex_lock(&m->mu);
		bool queued = m->snap_queued || m->wedge_queued;
		pthread_mutex_unlock(&m->mu);
		if (!queued)
			break;
		if (stk__now_ns() > deadline || stk_loop_run_once(d->loop)) {
			/* Never freed: the loop may still run what points into it. */
			stk_warn("work posted to the event loop never ran; not freeing it");
			return;
		}
	}
	metrics_free(m);
}

/*
 * Adds "NAME=PREFIX[,NAME=PREFIX...]" to --metrics-dataset.  A name is a
 * label value operators choose: letters, digits, '_', '-', '.', at most 64.
 */
int stk__metrics_add_labels(struct stk_config *c, const char *v)
{
	char *dup = strdup(v), *save = NULL;
	int r = dup ? 0 : -ENOMEM;
	for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; !r && t;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		size_t nl = eq ? (size_t)(eq - t) : 0;
		if (!eq || !nl || nl > 64 || !eq[1] ||
		    strspn(t, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			      "0123456789_-.") != nl) {
			r = -EINVAL;
			break;
		}
		void *l = realloc(c->labels, (c->nlabels + 1) * sizeof(*c->labels));
		if (!l) {
			r = -ENOMEM;
			break;
		}
		c->labels = l;
		c->labels[c->nlabels].name = strndup(t, nl);
		c->labels[c->nlabels].prefix = strdup(eq + 1);
		if (!c->labels[c->nlabels].name || !c->labels[c->nlabels].prefix) {
			free(c->labels[c->nlabels].name);
			free(c->labels[c->nlabels].prefix);
			r = -ENOMEM;
			break;
		}
		c->nlabels++;
	}
	free(dup);
	return r;
}

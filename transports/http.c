/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine: libcurl multi on event loops of our own.
 *
 * The engine runs `threads` shards; each is a thread with its own loop and
 * its own curl multi (one core moves a few GB/s; a 100 Gb/s NIC wants more).
 * An object is handed to the shard with the fewest objects (stk_loop_post),
 * fetched there, and its completion is posted back to the daemon's
 * loop, where f->done runs.
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION) and
 * when to wake it (CURLMOPT_TIMERFUNCTION); we arm one-shot polls and
 * timeouts on the shard's loop and hand readiness back with
 * curl_multi_socket_action.  A poll armed for events curl no longer wants is
 * cancelled and re-armed.
 *
 * An object is split into ranged GETs (whole multiples of part_size, each
 * written at its offset in the object's pages) only as far as the shard has
 * idle connections: once every connection is busy, whole-object GETs keep
 * them busy for the fewest requests, and the server's per-request work
 * (signature checks, opens) is paid once per object.  The first objects of a
 * burst, which a plan needs first, are the ones split.
 *
 * A part whose body is short or long, or that failed with a 5xx, 429, a
 * timeout or a reset, is retried with jittered exponential backoff; an
 * object is delivered only when every part has exactly its bytes, so nothing
 * partial is ever cached.
 *
 * The options, curl's settings, the host policy (--allow-host, no link-local
 * or metadata addresses), the retry policy, the endpoint counters and
 * blocking requests for worker threads are in http_common.c.
 */
#include "transports/http.h"
#include "transports/http_int.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"

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

struct sock {
	struct engine *e;
	struct sock *prev, *next;
	curl_socket_t fd;
	int want; /* CURL_POLL_* */
	short armed_ev;
	bool armed, dead, busy;
	struct stk_op op;
};

struct timer {
	struct engine *e;
	struct stk_op op;
	bool live;
};

struct object_fetch {
	struct engine *e;
	struct stk_work start, finish; /* posted to the shard, then back to the daemon */
	struct stk_fetch *f;
	stk_http_prepare_fn prepare;
	stk_http_error_fn error;
	unsigned left, parts;
	uint64_t t0;
	int err;
	char msg[512];
	char etag[128];
};

struct part {
	struct object_fetch *of;
	CURL *easy;
	uint64_t off, len, got;
	unsigned attempt;
	bool overflow;
	bool in_multi;
	char range[64];
	char *url;
	struct curl_slist *hdrs;
	char etag[128];
	char errbody[ERRBODY_MAX];
	size_t errlen;
	uint64_t t0;
	struct stk_op retry_op;
	int ep;
	struct stk_http_guard guard;
};

static struct {
	struct stk_loop *loop; /* the daemon's: f->done runs there */
	struct engine *eng;
	unsigned neng;
	bool init;
} H;

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
	char *etag = arg;
	size_t len = sz * n;
	if (len > 5 && !strncmp(p, "HTTP/", 5)) {
		etag[0] = 0; /* a new response (after a redirect or 100) */
	} else if (len > 5 && !strncasecmp(p, "etag:", 5)) {
		const char *v = p + 5;
		size_t vl = len - 5;
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl > 127)
			vl = 127;
		memcpy(etag, v, vl);
		etag[vl] = 0;
	}
	return len;
}

static size_t on_write(char *p, size_t sz, size_t n, void *arg)
{
	struct part *pt = arg;
	size_t len = sz * n;
	long status = 0;
	curl_easy_getinfo(pt->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300) { /* keep the start of an error body */
		size_t k = ERRBODY_MAX - 1 - pt->errlen < len ? ERRBODY_MAX - 1 - pt->errlen : len;
		memcpy(pt->errbody + pt->errlen, p, k);
		pt->errlen += k;
		pt->errbody[pt->errlen] = 0;
		return len;
	}
	if (len > pt->len - pt->got) {
		pt->overflow = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	struct stk_fetch *f = pt->of->f;
	if (f->fd < 0) {
		memcpy((char *)f->buf + pt->off + pt->got, p, len);
		pt->got += len;
		return len;
	}
	/*
	 * pwrite() into the memfd rather than a copy through its mapping: the
	 * copy faults once per fresh 4 KiB page, and those faults were most of
	 * stokerd's CPU when ingesting over HTTP (bench/README.md, s3_ingest).
	 */
	for (size_t done = 0; done < len;) {
		ssize_t k = pwrite(f->fd, p + done, len - done, (off_t)(pt->off + pt->got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return 0; /* CURLE_WRITE_ERROR; overflow stays false: not retried */
		done += (size_t)k;
		pt->got += (uint64_t)k;
	}
	return len;
}

/* On the daemon's loop: the object is done. */
static void object_finish(struct stk_work *w)
{
	struct object_fetch *of = stk_container_of(w, struct object_fetch, finish);
	struct stk_fetch *f = of->f;
	of->e->assigned--;
	stk_dbg("%s: %s, %llu bytes in %u GET(s), %.1f ms", f->uri, of->err ? "failed" : "fetched",
		(unsigned long long)f->size, of->parts, (double)(stk__now_ns() - of->t0) / 1e6);
	if (!of->err)
		memcpy(f->etag, of->etag, sizeof(f->etag));
	f->done(f, of->err, of->err ? of->msg : NULL);
	free(of);
}

static void object_part_done(struct object_fetch *of)
{
	if (--of->left)
		return;
	of->finish.done = object_finish;
	stk_loop_post(H.loop, &of->finish);
}

static void part_free(struct part *pt)
{
	if (pt->easy)
		curl_easy_cleanup(pt->easy);
	stk__http_guard_clear(&pt->guard);
	curl_slist_free_all(pt->hdrs);
	free(pt->url);
	free(pt);
}

static void part_fail(struct part *pt, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void part_fail(struct part *pt, int err, const char *fmt, ...)
{
	struct object_fetch *of = pt->of;
	if (!of->err) {
		of->err = err;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(of->msg, sizeof(of->msg), fmt, ap);
		va_end(ap);
	}
	stk__http_count(pt->ep, 0, 0, 1, 0, 0);
	part_free(pt);
	object_part_done(of);
}

static void part_start(struct part *pt);

static void retry_cb(struct stk_op *op, int res)
{
	struct part *pt = stk_container_of(op, struct part, retry_op);
	if (pt->of->err) { /* another part failed for good: stop */
		struct object_fetch *of = pt->of;
		part_free(pt);
		object_part_done(of);
		return;
	}
	part_start(pt);
}

static void part_start(struct part *pt)
{
	struct object_fetch *of = pt->of;
	char err[400];
	curl_slist_free_all(pt->hdrs);
	free(pt->url);
	pt->hdrs = NULL;
	pt->url = NULL;
	/*
	 * A whole object is asked for without Range: the plain GET is what
	 * servers serve cheapest (s3rver: about 6% more objects/s), and if the
	 * object has changed size its body's length says so (retried, then an
	 * error), where a Range would quietly return a prefix of it.
	 */
	const char *range =
	    pt->range[0] && !(pt->off == 0 && pt->len == of->f->size) ? pt->range : NULL;
	int r = of->prepare(of->f->uri, "GET", range, &pt->url, &pt->hdrs, err, sizeof(err));
	if (r) {
		part_fail(pt, r, "%s", err);
		return;
	}
	struct engine *eng = of->e;
	if (!pt->easy && !(pt->easy = curl_easy_init())) {
		part_fail(pt, -ENOMEM, "%s: out of memory", of->f->uri);
		return;
	}
	CURL *e = pt->easy;
	curl_easy_reset(e);
	r = stk__http_setup(e, &pt->guard, of->f->uri, pt->url, err, sizeof(err));
	if (r) { /* refused by the host policy: no request, nothing to retry */
		part_fail(pt, r, "%s", err);
		return;
	}
	pt->ep = stk__http_endpoint_of(pt->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, pt->hdrs);
	if (range)
		curl_easy_setopt(e, CURLOPT_RANGE, range + 6); /* past "bytes=" */
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, pt);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, pt->etag);
	curl_easy_setopt(e, CURLOPT_PRIVATE, pt);
	pt->got = 0;
	pt->overflow = false;
	pt->errlen = 0;
	pt->errbody[0] = 0;
	pt->etag[0] = 0;
	pt->t0 = stk__now_ns();
	CURLMcode mc = curl_multi_add_handle(eng->multi, e);
	if (mc != CURLM_OK) {
		part_fail(pt, -EIO, "%s: curl_multi_add_handle: %s", of->f->uri,
			  curl_multi_strerror(mc));
		return;
	}
	pt->in_multi = true;
	eng->requests++;
	stk__http_count(pt->ep, 1, 0, 0, 0, 0);
}

static void part_retry(struct part *pt, const char *why)
{
	struct object_fetch *of = pt->of;
	if (of->err || pt->attempt >= stk__http_o.retries) {
		part_fail(pt, -EIO, "%s: %s (gave up after %u attempts)", of->f->uri, why,
			  pt->attempt + 1);
		return;
	}
	uint64_t d = stk__http_backoff_ns(pt->attempt++);
	stk_dbg("%s [%s]: %s; retry %u in %llu ms", of->f->uri, pt->range, why, pt->attempt,
		(unsigned long long)(d / 1000000));
	stk__http_count(pt->ep, 0, 1, 0, 0, 0);
	pt->retry_op.cb = retry_cb;
	if (stk_loop_timeout(of->e->loop, &pt->retry_op, d))
		part_fail(pt, -EIO, "%s: %s (cannot schedule a retry)", of->f->uri, why);
}

static void part_finished(struct part *pt, CURLcode rc)
{
	struct object_fetch *of = pt->of;
	long status = 0;
	curl_easy_getinfo(pt->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(of->e->multi, pt->easy);
	pt->in_multi = false;
	of->e->requests--;
	stk__http_count(pt->ep, 0, 0, 0, pt->got, stk__now_ns() - pt->t0);
	char why[300];
	if (of->err) { /* the object already failed: do not spend retries on it */
		struct object_fetch *o = of;
		part_free(pt);
		object_part_done(o);
		return;
	}
	if (rc == CURLE_OK && status >= 200 && status < 300) {
		bool whole = pt->off == 0 && pt->len == of->f->size;
		if (status == 200 && pt->len && !whole) {
			part_fail(pt, -EIO, "%s: the server ignored the Range header (HTTP 200)",
				  of->f->uri);
			return;
		}
		if (pt->got != pt->len) {
			snprintf(why, sizeof(why), "truncated body: %llu of %llu bytes",
				 (unsigned long long)pt->got, (unsigned long long)pt->len);
			part_retry(pt, why);
			return;
		}
		if (pt->etag[0]) {
			if (!of->etag[0]) {
				memcpy(of->etag, pt->etag, sizeof(of->etag));
			} else if (strcmp(of->etag, pt->etag)) {
				part_fail(pt, -EAGAIN,
					  "%s: changed while being fetched (ETag %s, then %s)",
					  of->f->uri, of->etag, pt->etag);
				return;
			}
		}
		part_free(pt);
		object_part_done(of);
		return;
	}
	if (rc != CURLE_OK) {
		char m[512];
		int err = stk__http_guard_refusal(&pt->guard, rc, of->f->uri, m, sizeof(m));
		if (err) { /* the host policy's: not retried */
			part_fail(pt, err, "%s", m);
			return;
		}
	}
	if (rc == CURLE_WRITE_ERROR && pt->overflow) {
		snprintf(why, sizeof(why), "body longer than the %llu bytes asked for",
			 (unsigned long long)pt->len);
		part_retry(pt, why);
		return;
	}
	if (rc == CURLE_OK && stk__http_retryable(rc, status)) {
		snprintf(why, sizeof(why), "HTTP %ld", status);
		part_retry(pt, why);
		return;
	}
	if (rc != CURLE_OK && stk__http_retryable(rc, 0)) {
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
		part_retry(pt, why);
		return;
	}
	if (rc != CURLE_OK) {
		part_fail(pt, rc == CURLE_PEER_FAILED_VERIFICATION ? -EACCES : -EIO, "%s: %s%s",
			  of->f->uri, curl_easy_strerror(rc),
			  rc == CURLE_PEER_FAILED_VERIFICATION ? " (--insecure skips verification)"
							       : "");
		return;
	}
	char m[512];
	int err = of->error(of->f->uri, status, pt->errbody, pt->errlen, m, sizeof(m));
	part_fail(pt, err, "%s", m);
}

static void check_done(struct engine *e)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(e->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct part *pt = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&pt);
		part_finished(pt, msg->data.result);
	}
}

static void sock_arm(struct sock *sk);

static void sock_free(struct sock *sk)
{
	struct engine *e = sk->e;
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		e->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	free(sk);
}

static void sock_cb(struct stk_op *op, int res)
{
	struct sock *sk = stk_container_of(op, struct sock, op);
	struct engine *e = sk->e;
	e->pending--;
	sk->armed = false;
	if (sk->dead) {
		sock_free(sk);
		return;
	}
	if (res == -ECANCELED || res == 0) {
		sock_arm(sk);
		return;
	}
	int ev = 0;
	if (res > 0) {
		if (res & POLLIN)
			ev |= CURL_CSELECT_IN;
		if (res & POLLOUT)
			ev |= CURL_CSELECT_OUT;
		if (res & (POLLERR | POLLHUP))
			ev |= CURL_CSELECT_ERR;
	} else {
		ev = CURL_CSELECT_ERR;
	}
	int running;
	sk->busy = true;
	curl_multi_socket_action(e->multi, sk->fd, ev, &running);
	sk->busy = false;
	if (sk->dead) {
		sock_free(sk);
	} else {
		sock_arm(sk);
	}
	check_done(e);
}

/* Arms a poll for what curl wants; cancels one armed for something else. */
static void sock_arm(struct sock *sk)
{
	struct engine *e = sk->e;
	short ev = (short)(((sk->want & CURL_POLL_IN) ? POLLIN : 0) |
			   ((sk->want & CURL_POLL_OUT) ? POLLOUT : 0));
	if (sk->armed) {
		if (sk->armed_ev != ev)
			stk_loop_cancel(e->loop, &sk->op); /* sock_cb re-arms */
		return;
	}
	if (!ev || sk->busy)
		return;
	sk->op.cb = sock_cb;
	if (stk_loop_poll(e->loop, &sk->op, sk->fd, ev) == 0) {
		sk->armed = true;
		sk->armed_ev = ev;
		e->pending++;
	}
}

/* The sock is done with: freed now, or by its callback if a poll is armed. */
static void sock_drop(struct sock *sk)
{
	sk->dead = true;
	sk->want = 0;
	if (sk->armed)
		stk_loop_cancel(sk->e->loop, &sk->op); /* sock_cb frees it */
	else if (!sk->busy)
		sock_free(sk);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct engine *e = userp;
	struct sock *sk = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (!sk)
			return 0;
		curl_multi_assign(e->multi, fd, NULL);
		sock_drop(sk);
		return 0;
	}
	if (!sk) {
		sk = calloc(1, sizeof(*sk));
		if (!sk)
			return -1;
		sk->e = e;
		sk->fd = fd;
		sk->next = e->socks;
		if (e->socks)
			e->socks->prev = sk;
		e->socks = sk;
		curl_multi_assign(e->multi, fd, sk);
	}
	sk->want = what;
	sock_arm(sk);
	return 0;
}

static void timer_cb(struct stk_op *op, int res)
{
	struct timer *t = stk_container_of(op, struct timer, op);
	struct engine *e = t->e;
	bool live = t->live && res != -ECANCELED;
	e->pending--;
	if (e->timer == t)
		e->timer = NULL;
	free(t);
	if (!live)
		return;
	int running;
	curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(e);
}

static void timer_stop(struct engine *e)
{
	if (e->timer) {
		e->timer->live = false;
		stk_loop_cancel(e->loop, &e->timer->op); /* timer_cb frees it */
		e->timer = NULL;
	}
}

static int on_timer(CURLM *m, long ms, void *userp)
{
	struct engine *e = userp;
	timer_stop(e);
	if (ms < 0)
		return 0;
	struct timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->e = e;
	t->live = true;
	t->op.cb = timer_cb;
	if (stk_loop_timeout(e->loop, &t->op, (uint64_t)ms * 1000000u)) {
		free(t);
		return -1;
	}
	e->pending++;
	e->timer = t;
	return 0;
}

/* On the shard: curl lets go of every connection, then the thread ends. */
static void engine_quit(struct stk_work *w)
{
	struct engine *e = stk_container_of(w, struct engine, quit_work);
	curl_multi_cleanup(e->multi);
	e->multi = NULL;
	timer_stop(e);
	while (e->socks) {
		struct sock *sk = e->socks;
		while (sk && sk->dead) /* cancelled already; its callback frees it */
			sk = sk->next;
		if (!sk)
			break;
		sock_drop(sk);
	}
	e->quit = true;
}

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;

/* Made on the shard's own thread: an io_uring loop belongs to its creator. */
static int engine_setup(struct engine *e)
{
	/* One pool thread (the loop wants one); the shard never reads files. */
	int r = stk_loop_create(e->uring, 1, &e->loop);
	if (r)
		return r;
	e->multi = curl_multi_init();
	if (!e->multi) {
		stk_loop_destroy(e->loop);
		e->loop = NULL;
		return -ENOMEM;
	}
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->conns);
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)e->conns * 4);
	return 0;
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	int r = engine_setup(e);
	pthread_mutex_lock(&start_mu);
	e->start_err = r;
	pthread_cond_broadcast(&start_cv);
	pthread_mutex_unlock(&start_mu);
	if (r)
		return NULL;
	/* After quit, run until the cancelled polls and timers have come back. */
	while (!e->quit || e->pending) {
		r = stk_loop_run_once(e->loop);
		if (r < 0 && r != -EINTR) {
			stk_err("http: event loop: %s", strerror(-r));
			struct timespec ts = { 0, 10000000 };
			nanosleep(&ts, NULL);
		}
	}
	stk_loop_destroy(e->loop);
	return NULL;
}

static void engines_stop(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		H.eng[i].quit_work.done = engine_quit;
		stk_loop_post(H.eng[i].loop, &H.eng[i].quit_work);
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(H.eng[i].thread, NULL);
	free(H.eng);
	H.eng = NULL;
	H.neng = 0;
}

/* Starts the shard's thread and waits until it has its loop, or failed. */
static int engine_start(struct engine *e)
{
	e->start_err = 1;
	int r = -pthread_create(&e->thread, NULL, engine_main, e);
	if (r)
		return r;
	pthread_mutex_lock(&start_mu);
	while (e->start_err == 1)
		pthread_cond_wait(&start_cv, &start_mu);
	r = e->start_err;
	pthread_mutex_unlock(&start_mu);
	if (r)
		pthread_join(e->thread, NULL);
	return r;
}

int stk__http_init(const struct stk_tp_env *env)
{
	if (H.init)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -EIO;
	int r = stk__http_policy_init(env->allow_hosts);
	if (r) {
		curl_global_cleanup();
		return r;
	}
	H.loop = env->loop;
	stk__http_o = (struct stk_http_opts){
		.part_size = env->part_size,
		.max_host_conns = env->max_host_conns,
		.threads = env->http_threads,
		.retries = env->retries,
		.insecure = env->insecure,
	};
	if (!stk__http_o.part_size)
		stk__http_o.part_size = 8u << 20;
	if (!stk__http_o.max_host_conns)
		stk__http_o.max_host_conns = 64;
	if (!stk__http_o.threads)
		stk__http_o.threads = 1;
	if (stk__http_o.threads > stk__http_o.max_host_conns)
		stk__http_o.threads = stk__http_o.max_host_conns;
	H.eng = calloc(stk__http_o.threads, sizeof(*H.eng));
	if (!H.eng) {
		stk__http_policy_fini();
		curl_global_cleanup();
		return -ENOMEM;
	}
	bool uring = strcmp(stk_loop_backend(env->loop), "io_uring") == 0;
	for (unsigned i = 0; i < stk__http_o.threads; i++) {
		struct engine *e = &H.eng[i];
		e->conns =
		    (stk__http_o.max_host_conns + stk__http_o.threads - 1) / stk__http_o.threads;
		e->uring = uring;
		r = engine_start(e);
		if (r) {
			engines_stop(i);
			stk__http_policy_fini();
			curl_global_cleanup();
			return r;
		}
		H.neng++;
	}
	H.init = true;
	return 0;
}

void stk__http_fini(void)
{
	if (!H.init)
		return;
	engines_stop(H.neng);
	stk__http_policy_fini();
	curl_global_cleanup();
	H.init = false;
}

/*
 * How many ranged GETs for an object: one per idle connection of its shard,
 * at most one per part_size, and one (the whole object) when none is idle.
 */
static uint64_t parts_for(const struct engine *e, uint64_t size)
{
	uint64_t ps = stk__http_o.part_size;
	uint64_t most = size ? (size + ps - 1) / ps : 1;
	uint64_t idle = e->conns > e->requests ? e->conns - e->requests : 1;
	return most < idle ? most : idle;
}

/* On the shard: split the object into parts and start them. */
static void object_start(struct stk_work *w)
{
	struct object_fetch *of = stk_container_of(w, struct object_fetch, start);
	struct stk_fetch *f = of->f;
	struct engine *e = of->e;
	uint64_t nparts = parts_for(e, f->size);
	/* Parts are whole multiples of part_size: aligned ranges, as the CRT asks. */
	uint64_t ps = stk__http_o.part_size;
	uint64_t plen = ((f->size + nparts - 1) / nparts + ps - 1) / ps * ps;
	nparts = f->size ? (f->size + plen - 1) / plen : 1;
	of->left = of->parts = (unsigned)nparts;
	for (uint64_t i = 0; i < nparts; i++) {
		struct part *pt = calloc(1, sizeof(*pt));
		if (!pt) {
			if (!of->err) {
				of->err = -ENOMEM;
				snprintf(of->msg, sizeof(of->msg), "%s: out of memory", f->uri);
			}
			/* The parts never started count as done. */
			of->left -= (unsigned)(nparts - i - 1);
			object_part_done(of);
			return;
		}
		pt->of = of;
		pt->ep = -1;
		pt->off = i * plen;
		pt->len = f->size - pt->off < plen ? f->size - pt->off : plen;
		if (pt->len)
			snprintf(pt->range, sizeof(pt->range), "bytes=%llu-%llu",
				 (unsigned long long)pt->off,
				 (unsigned long long)(pt->off + pt->len - 1));
		part_start(pt);
	}
}

int stk__http_fetch(struct stk_fetch *f, stk_http_prepare_fn prepare, stk_http_error_fn error)
{
	if (!H.init)
		return -ENOTCONN;
	struct object_fetch *of = calloc(1, sizeof(*of));
	if (!of)
		return -ENOMEM;
	struct engine *e = &H.eng[0];
	for (unsigned i = 1; i < H.neng; i++)
		if (H.eng[i].assigned < e->assigned)
			e = &H.eng[i];
	e->assigned++;
	of->e = e;
	of->t0 = stk__now_ns();
	of->f = f;
	of->prepare = prepare;
	of->error = error;
	f->etag[0] = 0;
	of->start.done = object_start;
	stk_loop_post(e->loop, &of->start);
	return STK_Q_QUEUED;
}

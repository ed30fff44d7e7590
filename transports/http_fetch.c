/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine's fetches: an object handed to a shard (http.c) becomes
 * ranged GETs on the shard's curl multi, and its completion is posted back
 * to the daemon's loop, where f->done runs.
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
 */
#include "transports/http.h"
#include "transports/http_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"

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

size_t stk__http_on_header(char *p, size_t sz, size_t n, void *arg)
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
		/*
		 * The ETag is kept and compared as a string: a NUL ends it, so
		 * that blanks before one are trimmed too.  Trailing blanks are
		 * space and tab (RFC 9110 OWS), as leading ones are.
		 */
		vl = strnlen(v, vl);
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' ||
			      v[vl - 1] == '\t'))
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
	if (!pt->got && !__atomic_load_n(&f->first_byte_ns, __ATOMIC_RELAXED)) {
		uint64_t zero = 0; /* parts run on several threads: the first one sets it */
		__atomic_compare_exchange_n(&f->first_byte_ns, &zero, stk__now_ns(), false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	}
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
	stk_loop_post(stk__http_h.loop, &of->finish);
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
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, stk__http_on_header);
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

void stk__http_check_done(struct engine *e)
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
	if (!stk__http_h.init)
		return -ENOTCONN;
	struct object_fetch *of = calloc(1, sizeof(*of));
	if (!of)
		return -ENOMEM;
	struct engine *e = &stk__http_h.eng[0];
	for (unsigned i = 1; i < stk__http_h.neng; i++)
		if (stk__http_h.eng[i].assigned < e->assigned)
			e = &stk__http_h.eng[i];
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

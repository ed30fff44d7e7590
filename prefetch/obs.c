/* SPDX-License-Identifier: MIT */
/*
 * Stall accounting in the daemon (docs/stall.md): every fetch feeds its
 * endpoint's model of a synchronous read; every wait a client reports is
 * tallied, with the stall it avoided, into the client's, the dataset's, its
 * label's and the overall totals.  Also what the metrics endpoint counts
 * besides: fetch durations per transport, backend errors per errno.
 * Loop thread only; metrics.c copies it from there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stoker.h"

#include "common/log.h"
#include "daemon.h"
#include "transports/transport.h"

int stk__obs_init(struct stk_daemon *d)
{
	memset(&d->obs, 0, sizeof(d->obs));
	if (d->cfg.nlabels) {
		d->obs.labels = calloc(d->cfg.nlabels, sizeof(*d->obs.labels));
		if (!d->obs.labels)
			return -ENOMEM;
	}
	return 0;
}

void stk__obs_fini(struct stk_daemon *d)
{
	free(d->obs.labels);
	d->obs.labels = NULL;
}

static unsigned tp_index(struct stk_obs *ob, const char *name)
{
	for (unsigned i = 0; i < ob->ntp; i++)
		if (ob->tp[i] == name || !strcmp(ob->tp[i], name))
			return i;
	if (ob->ntp == STK_OBS_TP_MAX)
		return STK_OBS_TP_MAX - 1;
	ob->tp[ob->ntp] = name;
	return ob->ntp++;
}

unsigned stk__obs_ep(struct stk_daemon *d, const struct stk_transport_ops *tp, const char *uri)
{
	struct stk_obs *ob = &d->obs;
	/* scheme://authority: the endpoint; file:// has one, whatever the path. */
	const char *a = strstr(uri, "://");
	size_t len = a ? (size_t)(a - uri) + 3 : strlen(uri);
	if (a && strcmp(tp->name, "file")) {
		const char *slash = strchr(a + 3, '/');
		len = slash ? (size_t)(slash - uri) : strlen(uri);
	}
	if (len >= sizeof(ob->ep[0].name))
		len = sizeof(ob->ep[0].name) - 1;
	for (unsigned i = 0; i < ob->nep; i++)
		if (!strncmp(ob->ep[i].name, uri, len) && !ob->ep[i].name[len])
			return i;
	if (ob->nep == STK_OBS_EP_MAX)
		return STK_OBS_EP_MAX - 1; /* past the bound: shares the last one's model */
	struct stk_obs_ep *e = &ob->ep[ob->nep];
	memcpy(e->name, uri, len);
	e->name[len] = 0;
	e->tp = tp_index(ob, tp->name);
	return ob->nep++;
}

void stk__obs_ds(struct stk_daemon *d, struct stk_ds *ds)
{
	ds->label = -1;
	for (unsigned i = 0; i < d->cfg.nlabels; i++) {
		const char *p = d->cfg.labels[i].prefix;
		if (!strncmp(ds->uri, p, strlen(p))) {
			ds->label = (int16_t)i;
			break;
		}
	}
	int err;
	char e[128];
	const struct stk_transport_ops *tp = stk__transport_find(ds->uri, &err, e, sizeof(e));
	ds->ep = tp && !(ds->flags & STK_DS_MANIFEST) ? (int16_t)stk__obs_ep(d, tp, ds->uri) : -1;
}

double stk__obs_fetch_begin(struct stk_daemon *d, struct stk_object *o, uint64_t now)
{
	return stk__model_begin(&d->obs.ep[stk__obs_ep(d, o->tp, o->uri)].model, now);
}

void stk__obs_fetch(struct stk_daemon *d, struct stk_object *o, uint64_t start, double v0,
		    uint64_t first_byte, uint64_t end, int err)
{
	struct stk_obs *ob = &d->obs;
	struct stk_obs_ep *e = &ob->ep[stk__obs_ep(d, o->tp, o->uri)];
	if (err)
		stk__model_abort(&e->model, end);
	if (err == -EAGAIN) /* never submitted: the transport was busy */
		return;
	e->attempts++;
	if (err) {
		unsigned n = (unsigned)-err < STK_OBS_ERRNO ? (unsigned)-err : EIO;
		ob->errors[e->tp][n]++;
		/* An answer all the same, but for a failure to reach it. */
		if (err != -ECONNREFUSED && err != -ETIMEDOUT && err != -EHOSTUNREACH &&
		    err != -ENETUNREACH && err != -ECONNRESET)
			e->reached++;
		return;
	}
	e->reached++;
	stk__model_fetch(&e->model, o->size, start, v0, first_byte, end);
	stk__hist_add(&ob->fetch[e->tp], end - start);
}

void stk__obs_listed(struct stk_daemon *d, const char *uri, int err)
{
	int e2;
	char e[128];
	const struct stk_transport_ops *tp = stk__transport_find(uri, &e2, e, sizeof(e));
	if (!tp)
		return;
	struct stk_obs_ep *ep = &d->obs.ep[stk__obs_ep(d, tp, uri)];
	ep->attempts++;
	if (!err)
		ep->reached++;
}

/* The totals a request of s through ds counts in. Returns how many. */
static unsigned totals(struct stk_daemon *d, struct stk_session *s, struct stk_ds *ds,
		       struct stk_stall **t)
{
	unsigned n = 0;
	t[n++] = &d->obs.all;
	t[n++] = &s->stall;
	t[n++] = &ds->stall;
	if (ds->label >= 0 && d->obs.labels)
		t[n++] = &d->obs.labels[ds->label];
	return n;
}

static void req_end(struct stk_daemon *d, struct stk_req *r, struct stk_stall **t, unsigned nt)
{
	stk__req_end(r, t, nt);
	stk__hist_add(&d->obs.wait, r->wait_ns);
	d->st[STK_ST_DELIVERED_BYTES] += r->bytes;
}

void stk__obs_waits(struct stk_daemon *d, struct stk_session *s, struct stk_handle *hd,
		    const uint8_t *e, uint32_t n)
{
	struct stk_ds *ds = hd->ds;
	struct stk_stall *t[4];
	unsigned nt = totals(d, s, ds, t);
	struct stk_msg m = { .u.waits = { .n = n, .e = e } };
	/* A wait cannot be longer than the connection: a client's report is bounded by it. */
	uint64_t now = stk__now_ns();
	uint64_t bound = now > s->connected_ns ? now - s->connected_ns : 0;
	struct stk_req r;
	bool open = false, got = false;
	for (uint32_t i = 0; i < n; i++) {
		struct stk_wait_rec w;
		stk__wait_entry(&m, i, &w);
		if (w.index >= ds->count)
			continue;
		if (w.flags & STK_WAIT_COPY) {
			/* After the get: neither a get nor a request, and nothing it avoided. */
			stk__stall_copy(w.wait_ns < bound ? w.wait_ns : bound, t, nt);
			continue;
		}
		if (w.flags & STK_WAIT_GOT) {
			d->st[STK_ST_GETS]++;
			d->st[STK_ST_HITS_RAM]++;
			d->st[STK_ST_HITS_NVME] += stk__tier1_promoted(ds->ents[w.index].o);
			if (hd->plan)
				stk__plan_advance(d, hd->plan, w.index);
			else
				stk__follow(d, ds, s->group, w.index);
			got = true;
		}
		if (w.flags & STK_WAIT_NONE)
			continue;
		if (!(w.flags & STK_WAIT_CONT) || !open) {
			if (open)
				req_end(d, &r, t, nt);
			memset(&r, 0, sizeof(r));
			r.wait_ns = w.flags & STK_WAIT_CONT ? 0
				    : w.wait_ns < bound	    ? w.wait_ns
							    : bound;
			open = true;
		}
		struct stk_object *o = ds->ents[w.index].o;
		unsigned ep = ds->ep >= 0 ? (unsigned)ds->ep : stk__obs_ep(d, o->tp, o->uri);
		stk__req_object(&r, &d->obs.ep[ep].model, o->size, o->fetch_ns,
				!(w.flags & STK_WAIT_MISS));
	}
	if (open)
		req_end(d, &r, t, nt);
	if (got)
		stk__sched_run(d); /* the cursor moved: the window moves with it */
}

void stk__obs_stats(const struct stk_daemon *d, const struct stk_session *self, uint64_t *st)
{
	const struct stk_stall *a = &d->obs.all;
	st[STK_ST_WAITS] = a->requests;
	st[STK_ST_STALL_NS] = a->stall_ns;
	st[STK_ST_STALL_FETCH_NS] = a->fetch_stall_ns;
	st[STK_ST_STALL_DELIVERY_NS] = a->delivery_stall_ns;
	st[STK_ST_AVOIDED_NS] = a->avoided_ns;
	st[STK_ST_AVOIDED_MODEL_NS] = a->avoided_model_ns;
	st[STK_ST_SELF_STALL_NS] = self ? self->stall.stall_ns : 0;
	st[STK_ST_SELF_STALL_FETCH_NS] = self ? self->stall.fetch_stall_ns : 0;
	st[STK_ST_SELF_AVOIDED_NS] = self ? self->stall.avoided_ns : 0;
}

/* "bytes=... hit_ratio=... stall_s=... stall_avoided_s=..." of t, into buf. */
static void summary(const struct stk_stall *t, char *buf, size_t len)
{
	snprintf(buf, len,
		 "gets=%" PRIu64 " bytes=%" PRIu64 " hit_ratio=%.4f stall_s=%.6f "
		 "fetch_stall_s=%.6f delivery_stall_s=%.6f stall_avoided_s=%.6f "
		 "stall_avoided_estimate=true",
		 t->objects, t->bytes, t->objects ? (double)t->hits / (double)t->objects : 0.0,
		 (double)t->stall_ns / 1e9, (double)t->fetch_stall_ns / 1e9,
		 (double)t->delivery_stall_ns / 1e9, (double)t->avoided_ns / 1e9);
}

void stk__obs_session_end(struct stk_daemon *d, struct stk_session *s)
{
	char f[384];
	if (!s->hello)
		return;
	d->obs.sessions_ended++;
	summary(&s->stall, f, sizeof(f));
	stk_event(STK_LOG_INFO, "client_summary", "pid=%d uid=%u seconds=%.3f %s", (int)s->pid,
		  (unsigned)s->uid, (double)(stk__now_ns() - s->connected_ns) / 1e9, f);
}

void stk__obs_shutdown(struct stk_daemon *d)
{
	char f[384];
	summary(&d->obs.all, f, sizeof(f));
	stk_event(STK_LOG_INFO, "daemon_summary",
		  "clients=%" PRIu64 " fetches=%" PRIu64 " fetch_bytes=%" PRIu64 " %s",
		  d->obs.sessions_ended, d->st[STK_ST_FETCHES], d->st[STK_ST_FETCH_BYTES], f);
	for (unsigned i = 0; i < d->obs.nep; i++) {
		const struct stk_obs_ep *e = &d->obs.ep[i];
		const struct stk_model *m = &e->model;
		stk_event(STK_LOG_INFO, "endpoint_model",
			  "endpoint=\"%s\" fetches=%" PRIu64
			  " latency_ms=%.3f throughput_mb_s=%.3f",
			  e->name, m->fetches, (double)m->lat_ns / 1e6,
			  m->share_ns > 0 ? (double)m->bytes / m->share_ns * 1e3 : 0.0);
	}
}

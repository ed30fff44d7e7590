/* SPDX-License-Identifier: MIT */
/*
 * Client sessions: decodes their requests and answers them.  (listen.c
 * accepts them; session.c receives their datagrams, sends the replies and
 * ends sessions.)  Each message type has a handler in handlers[], the table
 * at the end; every byte on the wire is laid out by proto/'s encoders and
 * decoders, never here.
 *
 * The socket is the trust boundary (see session.c).  Every datagram is
 * decoded by proto/ with every length checked; a malformed request gets an
 * error reply naming the field and the session goes on.
 *
 * One client never starves the others: what a connection may hold (bytes
 * pinned by unreleased gets, plan entries, open datasets, requests waiting)
 * is capped by the --client-max-* flags, and past a cap that client gets an
 * error naming the flag while everyone else is served as before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "transports/http.h"
#include "prefetch/daemon.h"
#include "prefetch/server_int.h"
#include "stoker.h"

static void reply_ok(struct stk_daemon *d, struct stk_session *s, const struct stk_msg_hdr *h)
{
	uint8_t buf[REPLY_MAX];
	stk__send_msg(d, s, buf, stk__enc_reply_ok(buf, sizeof(buf), h), -1);
}

/*
 * The open dataset m names, or NULL when it names none; then the client is
 * told so with -EBADF, unless answer is false (a message that has no reply).
 */
static struct stk_handle *handle(struct stk_daemon *d, struct stk_session *s,
				 const struct stk_msg *m, bool answer)
{
	uint32_t id = m->handle;
	if (id == 0 || id > s->nhandles || !s->handles[id - 1].ds) {
		char e[96];
		snprintf(e, sizeof(e), "%s: no open dataset with handle %u",
			 stk__msg_name(m->h.type), id);
		if (answer)
			stk__reply_err(d, s, &m->h, -EBADF, e);
		return NULL;
	}
	return &s->handles[id - 1];
}

static void open_ready(struct stk_daemon *d, struct stk_waiter *w, struct stk_ds *ds, int err,
		       const char *msg)
{
	struct stk_session *s = w->s;
	struct stk_msg_hdr h = { .type = STK_MSG_OPEN, .seq = w->seq };
	free(w);
	s->waiting--;
	s->opening--;
	if (s->dead)
		goto out;
	if (err) {
		stk__reply_err(d, s, &h, err, msg);
		goto out;
	}
	uint32_t slot = 0;
	while (slot < s->nhandles && s->handles[slot].ds)
		slot++;
	if (slot == s->nhandles) {
		struct stk_handle *n = realloc(s->handles, (slot + 8) * sizeof(*n));
		if (!n) {
			stk__reply_err(d, s, &h, -ENOMEM, "out of memory");
			goto out;
		}
		memset(n + slot, 0, 8 * sizeof(*n));
		s->handles = n;
		s->nhandles = slot + 8;
	}
	s->handles[slot].ds = ds;
	s->handles[slot].plan = NULL;
	s->open_handles++;
	ds->users++;
	uint8_t buf[REPLY_MAX];
	stk__send_msg(d, s, buf,
		      stk__enc_reply_open(buf, sizeof(buf), &h, slot + 1, ds->count, ds->bytes,
					  ds->id, ds->cat_len),
		      ds->catalog_fd);
out:
	stk__session_unref(d, s);
}

/*
 * Whether getting o would take s past --client-max-pinned: its GETs' holds
 * and what it pins through its pin area count together, so holding objects
 * both ways never gets a client more than its share.  A client that holds
 * nothing may always get one object (it fits the budget, or the get failed
 * before this).
 */
static bool over_pin_limit(struct stk_daemon *d, struct stk_session *s, struct stk_object *o,
			   char *e, size_t len)
{
	uint64_t fast = stk__pins_bytes(s), held = s->pinned_bytes + fast;
	if (!held || held + o->size <= d->cfg.client_max_pinned)
		return false;
	snprintf(e, len,
		 "GET %s: this client holds %llu bytes in %u unreleased views (and %llu more read "
		 "without a round trip); another %llu would pass its limit of %llu "
		 "(--client-max-pinned): release views first",
		 o->uri, (unsigned long long)s->pinned_bytes, s->npins, (unsigned long long)fast,
		 (unsigned long long)o->size, (unsigned long long)d->cfg.client_max_pinned);
	return true;
}

/*
 * Fills in where o's bytes are, and returns the segment's fd when s must be
 * sent it (the first time s hears of the segment's generation, and every
 * time for a dedicated segment, which the client maps for the view only),
 * else -1.
 */
static int where(struct stk_daemon *d, struct stk_session *s, const struct stk_object *o,
		 struct stk_get_where *g)
{
	struct stk_arena_seg seg;
	g->seg = STK_SEG_NONE;
	if (o->room->t.ext.seg == STK_ARENA_NOSEG ||
	    d->cache.tier->ops->segment(d->cache.tier, o->room->t.ext.seg, &seg))
		return -1;
	g->seg = o->room->t.ext.seg;
	g->gen = seg.gen;
	g->off = o->room->t.ext.off;
	g->seg_size = seg.size;
	if (seg.dedicated) {
		g->flags |= STK_GET_DEDICATED;
		return seg.fd;
	}
	if (g->seg >= s->nsegs_sent) {
		uint32_t n = g->seg + 16;
		uint32_t *v = realloc(s->segs_sent, n * sizeof(*v));
		if (!v)
			return seg.fd; /* the client maps it again: costly, not wrong */
		memset(v + s->nsegs_sent, 0, (n - s->nsegs_sent) * sizeof(*v));
		s->segs_sent = v;
		s->nsegs_sent = n;
	}
	if (s->segs_sent[g->seg] == seg.gen + 1)
		return -1;
	s->segs_sent[g->seg] = seg.gen + 1;
	stk__seg_sent(s, g->seg, seg.gen);
	return seg.fd;
}

static void get_ready(struct stk_daemon *d, struct stk_waiter *w, struct stk_object *o, bool hit,
		      int err, const char *msg)
{
	struct stk_session *s = w->s;
	struct stk_msg_hdr h = { .type = w->pos < 0 ? STK_MSG_GET : STK_MSG_GETB,
				 .seq = w->seq,
				 .flags = w->pos < 0 ? 0 : (uint16_t)w->pos };
	s->waiting--;
	if (s->dead)
		goto out;
	if (err) {
		stk__reply_err(d, s, &h, err, msg);
		goto out;
	}
	struct stk_ds *wds =
	    w->handle && w->handle <= s->nhandles ? s->handles[w->handle - 1].ds : NULL;
	if (!wds || w->index >= wds->count || wds->ents[w->index].o != o) {
		stk__reply_err(d, s, &h, -EBADF,
			       "the dataset handle was closed while the GET waited");
		goto out;
	}
	if (o->domain != s->domain) { /* never: its dataset is the session's domain's */
		stk_err("GET %s: object of trust domain %u asked by a client of domain %u", o->uri,
			(unsigned)o->domain, (unsigned)s->domain);
		stk__reply_err(d, s, &h, -EACCES, "the object belongs to another trust domain");
		goto out;
	}
	char e[STK_ERRMSG_MAX];
	if (over_pin_limit(d, s, o, e, sizeof(e))) {
		stk__reply_err(d, s, &h, -ENOBUFS, e);
		goto out;
	}
	if (s->npins == s->cappins) {
		uint32_t cap = s->cappins ? s->cappins * 2 : 16;
		struct stk_pin *p = realloc(s->pins, cap * sizeof(*p));
		if (!p) {
			stk__reply_err(d, s, &h, -ENOMEM, "out of memory");
			goto out;
		}
		s->pins = p;
		s->cappins = cap;
	}
	s->pins[s->npins++] = (struct stk_pin){ .o = o, .handle = w->handle, .index = w->index };
	s->pinned_bytes += o->size;
	stk__pin(d, o);
	struct stk_get_where g = { .flags = hit ? STK_GET_HIT : 0, .size = o->size };
	int fd = where(d, s, o, &g);
	uint8_t buf[REPLY_MAX];
	stk__send_msg(d, s, buf, stk__enc_reply_get(buf, sizeof(buf), &h, &g), fd);
out:
	free(w);
	stk__session_unref(d, s);
}

/* Ends one hold on object idx taken through handle, or (idx STK_NONE) all of them. */
static void release(struct stk_daemon *d, struct stk_session *s, uint32_t handle, uint32_t idx)
{
	for (uint32_t i = s->npins; i-- > 0;) {
		struct stk_object *o = s->pins[i].o;
		if (s->pins[i].handle == handle && (idx == STK_NONE || s->pins[i].index == idx)) {
			s->pins[i] = s->pins[--s->npins];
			s->pinned_bytes -= o->size;
			stk__unpin(d, o);
			if (idx != STK_NONE)
				return;
		}
	}
}

/* Frees hd's plan and its entries' charge to s. */
static void plan_drop(struct stk_daemon *d, struct stk_session *s, struct stk_handle *hd)
{
	if (!hd->plan)
		return;
	s->plan_entries -= hd->plan->n;
	stk__plan_free(d, hd->plan);
	hd->plan = NULL;
}

/* Refuses a request past --client-max-requests. Returns true when refused. */
static bool too_many_waiting(struct stk_daemon *d, struct stk_session *s,
			     const struct stk_msg_hdr *h)
{
	if (s->waiting < d->cfg.client_max_requests)
		return false;
	char e[200];
	snprintf(e, sizeof(e),
		 "%s: this client has %u requests waiting, the limit (--client-max-requests)",
		 stk__msg_name(h->type), s->waiting);
	stk__reply_err(d, s, h, -EBUSY, e);
	return true;
}

/*
 * The handlers, one per message type.  Each runs once its message decoded,
 * the client is authorised and (but for HELLO) has said HELLO, and, for a
 * type that names a dataset, hd is that open dataset; it sends the reply, if
 * the type has one.
 */
static void on_hello(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		     struct stk_handle *hd)
{
	if (m->u.hello.version != STK_PROTO_VERSION) {
		char err[256];
		snprintf(err, sizeof(err), "client speaks protocol %u, stokerd %u",
			 m->u.hello.version, STK_PROTO_VERSION);
		stk__reply_err(d, s, &m->h, -EPROTO, err);
		return;
	}
	/* The first HELLO gets a pin area; later ones are liveness probes. */
	int fd = s->hello || s->pin_area ? -1 : stk__pins_create(d, s);
	if (fd < 0 && fd != -1 && fd != -ENOTSUP)
		stk_warn("client pid %d: no pin area, every get is a round trip: %s", (int)s->pid,
			 strerror(-fd));
	uint8_t out[REPLY_MAX];
	stk__send_msg(d, s, out,
		      stk__enc_reply_hello(out, sizeof(out), &m->h, STK_PROTO_VERSION,
					   fd >= 0 ? s->pin_buckets : 0, d->cfg.client_max_pinned),
		      fd);
	if (fd >= 0)
		close(fd);
	if (!s->hello)
		s->group = m->u.hello.group; /* later HELLOs are probes: the first one's holds */
	s->hello = true;
}

static void on_open(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		    struct stk_handle *hd)
{
	if (s->open_handles + s->opening >= d->cfg.client_max_datasets) {
		char err[256];
		snprintf(err, sizeof(err),
			 "OPEN: this client has %u datasets open or opening, the limit "
			 "(--client-max-datasets); close some first",
			 s->open_handles + s->opening);
		stk__reply_err(d, s, &m->h, -EMFILE, err);
		return;
	}
	if (too_many_waiting(d, s, &m->h))
		return;
	struct stk_waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		stk__reply_err(d, s, &m->h, -ENOMEM, "out of memory");
		return;
	}
	w->s = s;
	w->seq = m->h.seq;
	s->refs++;
	s->waiting++;
	s->opening++;
	stk__ds_open(d, s->domain, m->u.open.uri, m->u.open.uri_len,
		     m->u.open.flags & (STK_DS_MANIFEST | STK_DS_ZSTD), w, open_ready);
}

/*
 * A chunk of a shared plan: the order of the plan-less gets of s's plan
 * group on hd's dataset (prefetch/follow.c).  It is no plan of hd's: hd's
 * own gets stay plan-less, and no entry counts against s's limit (the plan
 * is bounded by --client-max-plan on its own).
 */
static void plan_shared(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
			struct stk_handle *hd)
{
	char err[320];
	if (!s->group) {
		snprintf(err, sizeof(err),
			 "shared PLAN for %s: this connection has no plan group (set "
			 "STOKER_PLAN_GROUP before connecting)",
			 hd->ds->uri);
		stk__reply_err(d, s, &m->h, -EINVAL, err);
		return;
	}
	int r = stk__follow_plan(d, hd->ds, s->group, m->h.flags & STK_PLAN_RESET, m->u.plan.idx,
				 m->u.plan.n, err, sizeof(err));
	if (r) {
		stk__reply_err(d, s, &m->h, r, err);
		return;
	}
	reply_ok(d, s, &m->h);
	stk__sched_run(d);
}

static void on_plan(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		    struct stk_handle *hd)
{
	char err[256];
	if (m->h.flags & STK_PLAN_SHARED) {
		plan_shared(d, s, m, hd);
		return;
	}
	if ((m->h.flags & STK_PLAN_RESET) || !hd->plan) {
		plan_drop(d, s, hd);
		hd->plan = stk__plan_new(d, hd->ds, s, false);
		if (!hd->plan) {
			stk__reply_err(d, s, &m->h, -ENOMEM, "out of memory for the plan");
			return;
		}
	}
	if (s->plan_entries + m->u.plan.n > d->cfg.client_max_plan) {
		snprintf(err, sizeof(err),
			 "PLAN for %s: %llu entries would pass this client's limit of %llu "
			 "(--client-max-plan); the plan is dropped",
			 hd->ds->uri, (unsigned long long)(s->plan_entries + m->u.plan.n),
			 (unsigned long long)d->cfg.client_max_plan);
		plan_drop(d, s, hd);
		stk__reply_err(d, s, &m->h, -E2BIG, err);
		return;
	}
	int r = stk__plan_append(hd->plan, m->u.plan.idx, NULL, m->u.plan.n);
	if (r) {
		snprintf(err, sizeof(err), "PLAN for %s: %s", hd->ds->uri,
			 r == -ERANGE ? "an object index is out of range" : strerror(-r));
		plan_drop(d, s, hd);
		stk__reply_err(d, s, &m->h, r, err);
		return;
	}
	s->plan_entries += m->u.plan.n;
	reply_ok(d, s, &m->h);
	stk__sched_run(d);
}

/*
 * One object of a GET (pos -1) or of a GETB (its position): checks it, and
 * starts a get whose reply, or the error, goes out under h.
 */
static void get_one(struct stk_daemon *d, struct stk_session *s, struct stk_handle *hd,
		    uint32_t handle, const struct stk_msg_hdr *h, uint32_t idx, int32_t pos)
{
	char err[256];
	if (idx >= hd->ds->count) {
		snprintf(err, sizeof(err), "%s %s: object index %u is out of range (%u objects)",
			 stk__msg_name(h->type), hd->ds->uri, idx, hd->ds->count);
		stk__reply_err(d, s, h, -ERANGE, err);
		return;
	}
	if (over_pin_limit(d, s, hd->ds->ents[idx].o, err, sizeof(err))) {
		stk__reply_err(d, s, h, -ENOBUFS, err);
		return;
	}
	if (too_many_waiting(d, s, h))
		return;
	struct stk_waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		stk__reply_err(d, s, h, -ENOMEM, "out of memory");
		return;
	}
	w->s = s;
	w->seq = h->seq;
	w->handle = handle;
	w->index = idx;
	w->pos = pos;
	s->refs++;
	s->waiting++;
	stk__get(d, hd->plan, hd->ds, idx, w);
}

static void on_get(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		   struct stk_handle *hd)
{
	get_one(d, s, hd, m->handle, &m->h, m->u.obj.index, -1);
}

/* GETB: one reply per object, as it becomes resident; each carries its position. */
static void on_getb(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		    struct stk_handle *hd)
{
	for (uint32_t i = 0; i < m->u.plan.n && !s->dead; i++) {
		struct stk_msg_hdr h = m->h;
		h.flags = (uint16_t)i;
		get_one(d, s, hd, m->handle, &h, stk__get_u32(m->u.plan.idx + 4 * (size_t)i),
			(int32_t)i);
		/* A handle the session closed in between (it cannot here) would end it. */
		if (!s->handles[m->handle - 1].ds)
			break;
	}
}

static void on_releaseb(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
			struct stk_handle *hd)
{
	for (uint32_t i = 0; i < m->u.plan.n; i++)
		release(d, s, m->handle, stk__get_u32(m->u.plan.idx + 4 * (size_t)i));
}

/*
 * The waits of the client's gets, and the objects it got through the
 * resident table (counted as hits; its plan's cursor moves past them, as a
 * GET would have moved it): prefetch/obs.c.
 */
static void on_waits(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		     struct stk_handle *hd)
{
	stk__obs_waits(d, s, hd, m->u.waits.e, m->u.waits.n);
}

static void on_release(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		       struct stk_handle *hd)
{
	release(d, s, m->handle, m->u.obj.index);
}

static void on_close(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		     struct stk_handle *hd)
{
	release(d, s, m->handle, STK_NONE);
	plan_drop(d, s, hd);
	struct stk_ds *ds = hd->ds;
	stk__ds_unuse(d, ds);
	hd->ds = NULL;
	stk__follow_unuse(d, ds, s->group);
	s->open_handles--;
	stk__sched_run(d);
}

static void on_warm(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		    struct stk_handle *hd)
{
	int r = stk__warm(d, hd->ds);
	if (r)
		stk__reply_err(d, s, &m->h, r, "out of memory for the warm plan");
	else
		reply_ok(d, s, &m->h);
}

static void on_status(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		      struct stk_handle *hd)
{
	const struct stk_ds *ds = hd->ds;
	struct stk_ds_status st = {
		.objects = ds->count,
		.resident = ds->resident,
		.inflight = ds->inflight,
		.failed = ds->failed,
		.warm = ds->warm,
		.bytes = ds->bytes,
		.resident_bytes = ds->resident_bytes,
		/* The latest fetch failure, so a client can say why without the log. */
		.last_error = ds->last_errmsg,
		.last_error_len =
		    (uint16_t)(ds->last_errmsg ? strnlen(ds->last_errmsg, STK_ERRMSG_MAX) : 0),
	};
	uint8_t out[REPLY_MAX];
	stk__send_msg(d, s, out, stk__enc_reply_status(out, sizeof(out), &m->h, &st), -1);
}

static void on_endpoints(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
			 struct stk_handle *hd)
{
	static struct stk_http_endpoint_stats ep[64];
	static struct stk_endpoint_entry e[64];
	static uint8_t out[64 * (2 + STK_ENDPOINT_NAME_MAX + 40) + 64];
	unsigned nep = stk__http_endpoints(ep, 64);
	nep = nep < 64 ? nep : 64;
	for (unsigned i = 0; i < nep; i++)
		e[i] = (struct stk_endpoint_entry){
			.name = ep[i].endpoint,
			.name_len = (uint16_t)strnlen(ep[i].endpoint, sizeof(ep[i].endpoint)),
			.requests = ep[i].requests,
			.retries = ep[i].retries,
			.errors = ep[i].errors,
			.bytes = ep[i].bytes,
			.busy_ns = ep[i].busy_ns,
		};
	stk__send_msg(d, s, out, stk__enc_reply_endpoints(out, sizeof(out), &m->h, e, nep), -1);
}

static struct stk_stall_rec stall_rec(const struct stk_stall *t)
{
	return (struct stk_stall_rec){
		.requests = t->requests,
		.objects = t->objects,
		.hits = t->hits,
		.bytes = t->bytes,
		.stall_ns = t->stall_ns,
		.fetch_stall_ns = t->fetch_stall_ns,
		.delivery_stall_ns = t->delivery_stall_ns,
		.avoided_ns = t->avoided_ns,
		.avoided_model_ns = t->avoided_model_ns,
		.unknown_objects = t->unknown_objects,
	};
}

/* Records one reply can hold at most: the encoder sends as many of them as fit. */
#define LIST_CLIENTS  ((STK_LIST_REPLY_MAX - STK_HDR_SIZE - 4 - STK_LIST_HDR) / STK_CLIENT_REC)
#define LIST_DATASETS ((STK_LIST_REPLY_MAX - STK_HDR_SIZE - 4 - STK_LIST_HDR) / STK_DATASET_REC_MIN)

/*
 * Every connection's totals, newest first, as many as one reply holds; the
 * rest are counted in total only.  Any client of this daemon may see every
 * other's pid, uid and totals, as it sees their sum in STATS.
 */
static void on_clients(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		       struct stk_handle *hd)
{
	static struct stk_client_rec e[LIST_CLIENTS];
	static uint8_t out[STK_LIST_REPLY_MAX];
	uint64_t now = stk__now_ns();
	uint32_t total = 0, n = 0;
	for (const struct stk_session *x = d->sessions; x; x = x->next, total++) {
		if (n == LIST_CLIENTS)
			continue;
		e[n++] = (struct stk_client_rec){
			.pid = (uint32_t)x->pid,
			.uid = (uint32_t)x->uid,
			.id = x->connected_ns,
			.age_ns = now > x->connected_ns ? now - x->connected_ns : 0,
			.open = x->open_handles,
			.pinned_bytes = x->pinned_bytes,
			.stall = stall_rec(&x->stall),
		};
	}
	stk__send_msg(d, s, out, stk__enc_reply_clients(out, sizeof(out), &m->h, total, e, n, NULL),
		      -1);
}

/* Every listed dataset's state and totals, newest first, as many as one reply holds. */
static void on_datasets(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
			struct stk_handle *hd)
{
	static struct stk_dataset_rec e[LIST_DATASETS];
	static uint8_t out[STK_LIST_REPLY_MAX];
	uint32_t total = 0, n = 0;
	for (const struct stk_ds *ds = d->datasets; ds; ds = ds->next) {
		if (!ds->ready) /* still being listed: not a dataset yet (nor in STATS) */
			continue;
		total++;
		if (n == LIST_DATASETS)
			continue;
		const char *label = ds->label >= 0 && (unsigned)ds->label < d->cfg.nlabels
					? d->cfg.labels[ds->label].name
					: NULL;
		e[n++] = (struct stk_dataset_rec){
			.id = ds->id,
			.users = ds->users,
			.objects = ds->count,
			.resident = ds->resident,
			.inflight = ds->inflight,
			.failed = ds->failed,
			.bytes = ds->bytes,
			.resident_bytes = ds->resident_bytes,
			.stall = stall_rec(&ds->stall),
			.label = label,
			.label_len = (uint16_t)(label ? strnlen(label, STK_LABEL_MAX) : 0),
			.uri = ds->uri,
			.uri_len = (uint16_t)strnlen(ds->uri, STK_LIST_URI_MAX),
		};
	}
	stk__send_msg(d, s, out,
		      stk__enc_reply_datasets(out, sizeof(out), &m->h, total, e, n, NULL), -1);
}

static void on_stats(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		     struct stk_handle *hd)
{
	d->st[STK_ST_RAM_BUDGET] = d->cache.tier->budget;
	d->st[STK_ST_RAM_USED] = d->cache.tier->used;
	d->st[STK_ST_RESIDENT] = d->cache.resident;
	d->st[STK_ST_INFLIGHT] = d->inflight;
	d->st[STK_ST_PINNED] = d->pinned;
	stk__tier1_stats(d, d->st);
	stk__obs_stats(d, s, d->st);
	uint8_t out[REPLY_MAX];
	stk__send_msg(d, s, out,
		      stk__enc_reply_stats(out, sizeof(out), &m->h, d->st, STK_STATS_COUNT), -1);
}

/*
 * How each message type is served: a new message is a line here, a handler
 * above, and its encoder and decoder in proto/.  Indexed by type; the decoder
 * refuses the types it does not know, so every type that reaches the table
 * has an entry.
 */
static const struct msg_handler {
	/* Required. */
	void (*fn)(struct stk_daemon *d, struct stk_session *s, const struct stk_msg *m,
		   struct stk_handle *hd);
	bool before_hello; /* may be a connection's first message: HELLO itself */
	bool needs_handle; /* m->handle must name a dataset the client has open; fn gets it */
	bool no_reply;	   /* never answered, not even with an error */
} handlers[STK_MSG_TYPE_MAX + 1] = {
	[STK_MSG_HELLO] = { .fn = on_hello, .before_hello = true },
	[STK_MSG_OPEN] = { .fn = on_open },
	[STK_MSG_PLAN] = { .fn = on_plan, .needs_handle = true },
	[STK_MSG_GET] = { .fn = on_get, .needs_handle = true },
	[STK_MSG_RELEASE] = { .fn = on_release, .needs_handle = true, .no_reply = true },
	[STK_MSG_STATS] = { .fn = on_stats },
	[STK_MSG_CLOSE] = { .fn = on_close, .needs_handle = true, .no_reply = true },
	[STK_MSG_WARM] = { .fn = on_warm, .needs_handle = true },
	[STK_MSG_STATUS] = { .fn = on_status, .needs_handle = true },
	[STK_MSG_ENDPOINTS] = { .fn = on_endpoints },
	[STK_MSG_GETB] = { .fn = on_getb, .needs_handle = true },
	[STK_MSG_RELEASEB] = { .fn = on_releaseb, .needs_handle = true, .no_reply = true },
	[STK_MSG_WAITS] = { .fn = on_waits, .needs_handle = true, .no_reply = true },
	[STK_MSG_CLIENTS] = { .fn = on_clients },
	[STK_MSG_DATASETS] = { .fn = on_datasets },
};

/* Decodes one datagram from s and hands it to its type's handler. */
void stk__handle_msg(struct stk_daemon *d, struct stk_session *s, const uint8_t *buf, size_t n)
{
	struct stk_msg m;
	char err[256];
	int r = stk__msg_decode(buf, n, &m, err, sizeof(err));
	if (r == -EPROTO) {
		/* No header to answer: say why on stderr and drop the client. */
		stk_warn("client pid %d: malformed message: %s", (int)s->pid, err);
		stk__session_kill(d, s, "malformed header");
		return;
	}
	if (r) {
		stk__reply_err(d, s, &m.h, -EPROTO, err);
		return;
	}
	if (!s->authorized) {
		snprintf(err, sizeof(err),
			 "uid %u is not allowed to use this stokerd (gid %u; its --allow-uid and "
			 "--allow-gid say who may)",
			 (unsigned)s->uid, (unsigned)s->gid);
		stk__reply_err(d, s, &m.h, -EACCES, err);
		stk__session_kill(d, s, "not authorized");
		return;
	}
	const struct msg_handler *h = m.h.type <= STK_MSG_TYPE_MAX ? &handlers[m.h.type] : NULL;
	if (!h || !h->fn) { /* a type proto/ decodes and this table lacks: our bug */
		snprintf(err, sizeof(err), "stokerd does not serve %s (type %u)",
			 stk__msg_name(m.h.type), m.h.type);
		stk__reply_err(d, s, &m.h, -ENOSYS, err);
		return;
	}
	if (!s->hello && !h->before_hello) {
		snprintf(err, sizeof(err), "%s before HELLO: HELLO must be the first message",
			 stk__msg_name(m.h.type));
		stk__reply_err(d, s, &m.h, -EPROTO, err);
		stk__session_kill(d, s, "no HELLO first");
		return;
	}
	struct stk_handle *hd = NULL;
	if (h->needs_handle && !(hd = handle(d, s, &m, !h->no_reply)))
		return;
	h->fn(d, s, &m, hd);
}

void stk__server_init(struct stk_daemon *d)
{
	d->on_ready = get_ready;
	stk__fast_init(d);
}

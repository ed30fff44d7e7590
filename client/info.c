/* SPDX-License-Identifier: MIT */
/*
 * libstoker: the daemon's per-connection and per-dataset totals
 * (stk_daemon_clients(), stk_daemon_datasets()), for `stoker top` and
 * `stoker stats --json`.
 */
#include "client_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"

_Static_assert(STK_LIST_REPLY_MAX <= REPLY_MAX,
	       "a CLIENTS or DATASETS reply must fit what the reading thread receives");
_Static_assert(STK_LABEL_MAX < sizeof(((struct stk_daemon_dataset *)0)->label),
	       "label holds the longest label sent and its NUL");
_Static_assert(STK_LIST_URI_MAX < sizeof(((struct stk_daemon_dataset *)0)->uri),
	       "uri holds the longest URI sent and its NUL");

/*
 * Asks for the list type and decodes its reply into *rp.  Returns 0 with
 * *wp holding the reply's bytes, which rp points into (the caller frees
 * *wp), or -errno with *wp NULL.
 */
static int list_rpc(struct stk_client *c, uint16_t type, struct stk_reply *rp, struct waiter **wp)
{
	uint8_t msg[STK_HDR_SIZE];
	*wp = NULL;
	stk__waits_flush_all(c); /* the daemon's totals then count every get made here */
	struct waiter *w = stk__waiter_new(REPLY_MAX);
	if (!w)
		return -ENOMEM;
	long len = stk__enc_list(msg, sizeof(msg), type, 0);
	int r = len < 0 ? (int)len : stk__call(c, msg, (size_t)len, w);
	if (!r)
		r = stk__reply(w, type, rp);
	if (!r && w->fd >= 0)
		close(w->fd);
	if (r) {
		free(w);
		return r;
	}
	*wp = w;
	return 0;
}

static void copy_stall(const struct stk_stall_rec *t, uint64_t *waits, uint64_t *gets,
		       uint64_t *hits, uint64_t *bytes, uint64_t *stall, uint64_t *fetch,
		       uint64_t *delivery, uint64_t *avoided, uint64_t *model, uint64_t *unknown)
{
	*waits = t->requests;
	*gets = t->objects;
	*hits = t->hits;
	*bytes = t->bytes;
	*stall = t->stall_ns;
	*fetch = t->fetch_stall_ns;
	*delivery = t->delivery_stall_ns;
	*avoided = t->avoided_ns;
	*model = t->avoided_model_ns;
	*unknown = t->unknown_objects;
}

int stk_daemon_clients(struct stk_client *c, struct stk_daemon_client *out, size_t max, size_t *n,
		       size_t *total)
{
	struct stk_reply rp;
	struct waiter *w;
	int r = list_rpc(c, STK_MSG_CLIENTS, &rp, &w);
	if (r)
		return r;
	const uint8_t *p = rp.u.list.p;
	size_t i = 0;
	for (; i < rp.u.list.n && i < max; i++) {
		struct stk_client_rec e;
		p = stk__client_next(p, &e);
		struct stk_daemon_client *o = &out[i];
		memset(o, 0, sizeof(*o));
		o->pid = e.pid;
		o->uid = e.uid;
		o->id = e.id;
		o->connected_ns = e.age_ns;
		o->pinned_bytes = e.pinned_bytes;
		o->open_datasets = e.open;
		copy_stall(&e.stall, &o->waits, &o->gets, &o->hits, &o->delivered_bytes,
			   &o->stall_ns, &o->stall_fetch_ns, &o->stall_delivery_ns,
			   &o->stall_avoided_ns, &o->stall_avoided_model_ns,
			   &o->stall_unknown_gets);
	}
	*n = i;
	if (total)
		*total = rp.u.list.total;
	free(w); /* rp points into it */
	return 0;
}

int stk_daemon_datasets(struct stk_client *c, struct stk_daemon_dataset *out, size_t max, size_t *n,
			size_t *total)
{
	struct stk_reply rp;
	struct waiter *w;
	int r = list_rpc(c, STK_MSG_DATASETS, &rp, &w);
	if (r)
		return r;
	const uint8_t *p = rp.u.list.p;
	size_t i = 0;
	for (; i < rp.u.list.n && i < max; i++) {
		struct stk_dataset_rec e;
		p = stk__dataset_next(p, &e);
		struct stk_daemon_dataset *o = &out[i];
		memset(o, 0, sizeof(*o));
		o->id = e.id;
		o->users = e.users;
		o->objects = e.objects;
		o->resident = e.resident;
		o->inflight = e.inflight;
		o->failed = e.failed;
		o->bytes = e.bytes;
		o->resident_bytes = e.resident_bytes;
		copy_stall(&e.stall, &o->waits, &o->gets, &o->hits, &o->delivered_bytes,
			   &o->stall_ns, &o->stall_fetch_ns, &o->stall_delivery_ns,
			   &o->stall_avoided_ns, &o->stall_avoided_model_ns,
			   &o->stall_unknown_gets);
		memcpy(o->label, e.label, e.label_len);
		memcpy(o->uri, e.uri, e.uri_len);
	}
	*n = i;
	if (total)
		*total = rp.u.list.total;
	free(w);
	return 0;
}

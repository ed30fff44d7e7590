/* SPDX-License-Identifier: MIT */
/*
 * The control socket: accepts clients, decodes their requests, answers them.
 *
 * The socket is the trust boundary.  It is created 0660; a peer is served
 * only if SO_PEERCRED shows root, the daemon's own uid, or the daemon's gid.
 * Every datagram is decoded by proto/ with every length checked; a malformed
 * request gets an error reply naming the field and the session goes on.  A
 * client that disconnects releases everything it held: pins, plans, waits.
 *
 * Sends never block the loop: a reply that does not fit in the socket buffer
 * is queued and flushed when the socket is writable.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "transports/http.h"
#include "prefetch/daemon.h"
#include "stoker.h"

struct stk_out {
	struct stk_out *next;
	int fd; /* to pass, or -1; owned by the entry */
	size_t len;
	uint8_t data[];
};

static void session_unref(struct stk_daemon *d, struct stk_session *s)
{
	if (--s->refs)
		return;
	close(s->fd);
	d->live_sessions--;
	free(s->handles);
	free(s->pins);
	free(s);
}

/* Ends a session: releases what it held; the memory goes when the last ref does. */
static void session_kill(struct stk_daemon *d, struct stk_session *s, const char *why)
{
	if (s->dead)
		return;
	s->dead = true;
	stk_dbg("client pid %d: %s", (int)s->pid, why);
	for (uint32_t i = 0; i < s->npins; i++)
		stk__unpin(d, s->pins[i].o);
	s->npins = 0;
	for (uint32_t i = 0; i < s->nhandles; i++) {
		stk__plan_free(d, s->handles[i].plan);
		s->handles[i].plan = NULL;
		s->handles[i].ds = NULL;
	}
	while (s->outq) {
		struct stk_out *o = s->outq;
		s->outq = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	d->st[STK_ST_CLIENTS]--;
	/* Wakes the armed polls so they drop their refs. */
	shutdown(s->fd, SHUT_RDWR);
	session_unref(d, s);
	stk__sched_run(d);
}

static ssize_t send_one(int fd, const void *buf, size_t len, int pass_fd)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (pass_fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static void out_cb(struct stk_op *op, int res);

static void arm_out(struct stk_daemon *d, struct stk_session *s)
{
	if (s->out_armed || s->dead)
		return;
	s->out_op.cb = out_cb;
	if (stk_loop_poll(d->loop, &s->out_op, s->fd, POLLOUT) == 0) {
		s->out_armed = true;
		s->refs++;
	}
}

/* Sends what is queued. Returns false if the session died. */
static bool flush(struct stk_daemon *d, struct stk_session *s)
{
	while (s->outq) {
		struct stk_out *o = s->outq;
		ssize_t n = send_one(s->fd, o->data, o->len, o->fd);
		if (n == -EAGAIN) {
			arm_out(d, s);
			return true;
		}
		if (n < 0) {
			session_kill(d, s, "send failed");
			return false;
		}
		s->outq = o->next;
		if (!s->outq)
			s->outq_tail = &s->outq;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	return true;
}

static void out_cb(struct stk_op *op, int res)
{
	struct stk_session *s = stk_container_of(op, struct stk_session, out_op);
	s->out_armed = false;
	if (!s->dead)
		flush(s->d, s);
	session_unref(s->d, s);
}

/* Sends a datagram, passing fd (not consumed) if >= 0; queues it if the socket is full. */
static void send_msg(struct stk_daemon *d, struct stk_session *s, const uint8_t *buf, long len,
		     int fd)
{
	if (s->dead || len < 0)
		return;
	if (!s->outq) {
		ssize_t n = send_one(s->fd, buf, (size_t)len, fd);
		if (n >= 0)
			return;
		if (n != -EAGAIN) {
			session_kill(d, s, "send failed");
			return;
		}
	}
	struct stk_out *o = malloc(sizeof(*o) + (size_t)len);
	if (!o) {
		session_kill(d, s, "out of memory queueing a reply");
		return;
	}
	o->next = NULL;
	o->len = (size_t)len;
	memcpy(o->data, buf, (size_t)len);
	o->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (!s->outq)
		s->outq_tail = &s->outq;
	*s->outq_tail = o;
	s->outq_tail = &o->next;
	arm_out(d, s);
}

static void reply_err(struct stk_daemon *d, struct stk_session *s, const struct stk_msg_hdr *h,
		      int err, const char *msg)
{
	uint8_t buf[STK_ERRMSG_MAX + 64];
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__reply_begin(&b, h, err, msg);
	send_msg(d, s, buf, stk__msg_end(&b), -1);
}

static void reply_ok(struct stk_daemon *d, struct stk_session *s, const struct stk_msg_hdr *h)
{
	uint8_t buf[64];
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__reply_begin(&b, h, 0, NULL);
	send_msg(d, s, buf, stk__msg_end(&b), -1);
}

static struct stk_handle *handle(struct stk_daemon *d, struct stk_session *s,
				 const struct stk_msg_hdr *h, uint32_t id)
{
	if (id == 0 || id > s->nhandles || !s->handles[id - 1].ds) {
		char m[96];
		snprintf(m, sizeof(m), "%s: no open dataset with handle %u", stk__msg_name(h->type),
			 id);
		if (h->type != STK_MSG_RELEASE && h->type != STK_MSG_CLOSE)
			reply_err(d, s, h, -EBADF, m);
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
	if (s->dead)
		goto out;
	if (err) {
		reply_err(d, s, &h, err, msg);
		goto out;
	}
	uint32_t slot = 0;
	while (slot < s->nhandles && s->handles[slot].ds)
		slot++;
	if (slot == s->nhandles) {
		struct stk_handle *n = realloc(s->handles, (slot + 8) * sizeof(*n));
		if (!n) {
			reply_err(d, s, &h, -ENOMEM, "out of memory");
			goto out;
		}
		memset(n + slot, 0, 8 * sizeof(*n));
		s->handles = n;
		s->nhandles = slot + 8;
	}
	s->handles[slot].ds = ds;
	s->handles[slot].plan = NULL;
	uint8_t buf[64];
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__reply_begin(&b, &h, 0, NULL);
	stk__put_u32(&b, slot + 1);
	stk__put_u32(&b, ds->count);
	stk__put_u64(&b, ds->bytes);
	send_msg(d, s, buf, stk__msg_end(&b), ds->catalog_fd);
out:
	session_unref(d, s);
}

static void get_ready(struct stk_daemon *d, struct stk_waiter *w, struct stk_object *o, bool hit,
		      int err, const char *msg)
{
	struct stk_session *s = w->s;
	struct stk_msg_hdr h = { .type = STK_MSG_GET, .seq = w->seq };
	if (s->dead)
		goto out;
	if (err) {
		reply_err(d, s, &h, err, msg);
		goto out;
	}
	if (w->handle == 0 || w->handle > s->nhandles || s->handles[w->handle - 1].ds != o->ds) {
		reply_err(d, s, &h, -EBADF, "the dataset handle was closed while the GET waited");
		goto out;
	}
	if (s->npins == s->cappins) {
		uint32_t cap = s->cappins ? s->cappins * 2 : 16;
		struct stk_pin *p = realloc(s->pins, cap * sizeof(*p));
		if (!p) {
			reply_err(d, s, &h, -ENOMEM, "out of memory");
			goto out;
		}
		s->pins = p;
		s->cappins = cap;
	}
	s->pins[s->npins++] = (struct stk_pin){ .o = o, .handle = w->handle };
	stk__pin(d, o);
	uint8_t buf[64];
	struct stk_buf b;
	stk__buf_init(&b, buf, sizeof(buf));
	stk__reply_begin(&b, &h, 0, NULL);
	stk__put_u32(&b, hit ? STK_GET_HIT : 0);
	stk__put_u64(&b, o->size);
	send_msg(d, s, buf, stk__msg_end(&b), o->t.fd);
out:
	free(w);
	session_unref(d, s);
}

/* Ends one hold on object idx taken through handle, or (idx STK_NONE) all of them. */
static void release(struct stk_daemon *d, struct stk_session *s, uint32_t handle, uint32_t idx)
{
	for (uint32_t i = s->npins; i-- > 0;) {
		struct stk_object *o = s->pins[i].o;
		if (s->pins[i].handle == handle && (idx == STK_NONE || o->index == idx)) {
			s->pins[i] = s->pins[--s->npins];
			stk__unpin(d, o);
			if (idx != STK_NONE)
				return;
		}
	}
}

static void handle_msg(struct stk_daemon *d, struct stk_session *s, const uint8_t *buf, size_t n)
{
	struct stk_msg m;
	char err[256];
	int r = stk__msg_decode(buf, n, &m, err, sizeof(err));
	if (r == -EPROTO) {
		/* No header to answer: say why on stderr and drop the client. */
		stk_warn("client pid %d: malformed message: %s", (int)s->pid, err);
		session_kill(d, s, "malformed header");
		return;
	}
	if (r) {
		reply_err(d, s, &m.h, -EPROTO, err);
		return;
	}
	if (!s->authorized) {
		snprintf(err, sizeof(err), "uid %u is not allowed to use this stokerd",
			 (unsigned)s->uid);
		reply_err(d, s, &m.h, -EACCES, err);
		session_kill(d, s, "not authorized");
		return;
	}
	struct stk_handle *hd;
	switch (m.h.type) {
	case STK_MSG_HELLO: {
		if (m.u.hello.version != STK_PROTO_VERSION) {
			snprintf(err, sizeof(err), "client speaks protocol %u, stokerd %u",
				 m.u.hello.version, STK_PROTO_VERSION);
			reply_err(d, s, &m.h, -EPROTO, err);
			return;
		}
		uint8_t out[64];
		struct stk_buf b;
		stk__buf_init(&b, out, sizeof(out));
		stk__reply_begin(&b, &m.h, 0, NULL);
		stk__put_u32(&b, STK_PROTO_VERSION);
		send_msg(d, s, out, stk__msg_end(&b), -1);
		return;
	}
	case STK_MSG_OPEN: {
		struct stk_waiter *w = calloc(1, sizeof(*w));
		if (!w) {
			reply_err(d, s, &m.h, -ENOMEM, "out of memory");
			return;
		}
		w->s = s;
		w->seq = m.h.seq;
		s->refs++;
		stk__ds_open(d, m.u.open.uri, m.u.open.uri_len, m.u.open.flags & STK_DS_MANIFEST, w,
			     open_ready);
		return;
	}
	case STK_MSG_PLAN:
		if (!(hd = handle(d, s, &m.h, m.u.plan.ds)))
			return;
		if ((m.h.flags & STK_PLAN_RESET) || !hd->plan) {
			stk__plan_free(d, hd->plan);
			hd->plan = stk__plan_new(d, hd->ds, s, false);
			if (!hd->plan) {
				reply_err(d, s, &m.h, -ENOMEM, "out of memory for the plan");
				return;
			}
		}
		r = stk__plan_append(hd->plan, m.u.plan.idx, NULL, m.u.plan.n);
		if (r) {
			snprintf(err, sizeof(err), "PLAN for %s: %s", hd->ds->uri,
				 r == -ERANGE ? "an object index is out of range" : strerror(-r));
			stk__plan_free(d, hd->plan);
			hd->plan = NULL;
			reply_err(d, s, &m.h, r, err);
			return;
		}
		reply_ok(d, s, &m.h);
		stk__sched_run(d);
		return;
	case STK_MSG_GET: {
		if (!(hd = handle(d, s, &m.h, m.u.obj.ds)))
			return;
		if (m.u.obj.index >= hd->ds->count) {
			snprintf(err, sizeof(err),
				 "GET %s: object index %u is out of range (%u objects)",
				 hd->ds->uri, m.u.obj.index, hd->ds->count);
			reply_err(d, s, &m.h, -ERANGE, err);
			return;
		}
		struct stk_waiter *w = calloc(1, sizeof(*w));
		if (!w) {
			reply_err(d, s, &m.h, -ENOMEM, "out of memory");
			return;
		}
		w->s = s;
		w->seq = m.h.seq;
		w->handle = m.u.obj.ds;
		s->refs++;
		stk__get(d, hd->plan, &hd->ds->objs[m.u.obj.index], w);
		return;
	}
	case STK_MSG_RELEASE:
		if ((hd = handle(d, s, &m.h, m.u.obj.ds)))
			release(d, s, m.u.obj.ds, m.u.obj.index);
		return;
	case STK_MSG_CLOSE:
		if (!(hd = handle(d, s, &m.h, m.u.ds.ds)))
			return;
		release(d, s, m.u.ds.ds, STK_NONE);
		stk__plan_free(d, hd->plan);
		hd->plan = NULL;
		hd->ds = NULL;
		stk__sched_run(d);
		return;
	case STK_MSG_WARM:
		if (!(hd = handle(d, s, &m.h, m.u.ds.ds)))
			return;
		r = stk__warm(d, hd->ds);
		if (r)
			reply_err(d, s, &m.h, r, "out of memory for the warm plan");
		else
			reply_ok(d, s, &m.h);
		return;
	case STK_MSG_STATUS: {
		if (!(hd = handle(d, s, &m.h, m.u.ds.ds)))
			return;
		struct stk_ds *ds = hd->ds;
		uint8_t out[96];
		struct stk_buf b;
		stk__buf_init(&b, out, sizeof(out));
		stk__reply_begin(&b, &m.h, 0, NULL);
		stk__put_u32(&b, ds->count);
		stk__put_u32(&b, ds->resident);
		stk__put_u32(&b, ds->inflight);
		stk__put_u32(&b, ds->failed);
		stk__put_u32(&b, ds->warm);
		stk__put_u64(&b, ds->bytes);
		stk__put_u64(&b, ds->resident_bytes);
		send_msg(d, s, out, stk__msg_end(&b), -1);
		return;
	}
	case STK_MSG_ENDPOINTS: {
		static struct stk_http_endpoint_stats ep[64];
		static uint8_t out[64 * 200 + 64];
		unsigned nep = stk__http_endpoints(ep, 64);
		nep = nep < 64 ? nep : 64;
		struct stk_buf b;
		stk__buf_init(&b, out, sizeof(out));
		stk__reply_begin(&b, &m.h, 0, NULL);
		stk__put_u32(&b, nep);
		for (unsigned i = 0; i < nep; i++) {
			size_t nl = strnlen(ep[i].endpoint, STK_ENDPOINT_NAME_MAX);
			stk__put_u16(&b, (uint16_t)nl);
			stk__put_bytes(&b, ep[i].endpoint, nl);
			stk__put_u64(&b, ep[i].requests);
			stk__put_u64(&b, ep[i].retries);
			stk__put_u64(&b, ep[i].errors);
			stk__put_u64(&b, ep[i].bytes);
			stk__put_u64(&b, ep[i].busy_ns);
		}
		send_msg(d, s, out, stk__msg_end(&b), -1);
		return;
	}
	case STK_MSG_STATS: {
		d->st[STK_ST_RAM_BUDGET] = d->cache.budget;
		d->st[STK_ST_RAM_USED] = d->cache.used;
		d->st[STK_ST_RESIDENT] = d->cache.resident;
		d->st[STK_ST_INFLIGHT] = d->inflight;
		d->st[STK_ST_PINNED] = d->pinned;
		uint8_t out[256];
		struct stk_buf b;
		stk__buf_init(&b, out, sizeof(out));
		stk__reply_begin(&b, &m.h, 0, NULL);
		stk__put_u32(&b, STK_STATS_COUNT);
		for (unsigned i = 0; i < STK_STATS_COUNT; i++)
			stk__put_u64(&b, d->st[i]);
		send_msg(d, s, out, stk__msg_end(&b), -1);
		return;
	}
	}
}

static void in_cb(struct stk_op *op, int res)
{
	struct stk_session *s = stk_container_of(op, struct stk_session, in_op);
	struct stk_daemon *d = s->d;
	s->in_armed = false;
	static uint8_t buf[STK_MSG_MAX];
	for (int i = 0; i < 64 && !s->dead; i++) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 8)];
		} cm;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cm.b,
				     .msg_controllen = sizeof(cm.b) };
		ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			session_kill(d, s, n == 0 ? "disconnected" : strerror(errno));
			break;
		}
		/* Clients pass no descriptors; close any they send. */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int fds[8];
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				memcpy(fds, CMSG_DATA(c), k * sizeof(int));
				for (size_t j = 0; j < k; j++)
					close(fds[j]);
			}
		}
		if (mh.msg_flags & MSG_TRUNC) {
			stk_warn("client pid %d: datagram larger than %u bytes", (int)s->pid,
				 STK_MSG_MAX);
			session_kill(d, s, "oversized datagram");
			break;
		}
		handle_msg(d, s, buf, (size_t)n);
	}
	if (!s->dead) {
		s->in_op.cb = in_cb;
		if (stk_loop_poll(d->loop, &s->in_op, s->fd, POLLIN) == 0)
			s->in_armed = true;
		else
			session_kill(d, s, "cannot poll");
	}
	if (!s->in_armed)
		session_unref(d, s);
}

static bool peer_allowed(uid_t uid, gid_t gid)
{
	return uid == 0 || uid == geteuid() || gid == getegid();
}

static void accept_cb(struct stk_op *op, int res)
{
	struct stk_daemon *d = stk_container_of(op, struct stk_daemon, listen_op);
	if (d->listen_fd < 0)
		return;
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				stk_warn("accept: %s", strerror(errno));
			if (errno == EINTR)
				continue;
			break;
		}
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		struct stk_session *s = calloc(1, sizeof(*s));
		if (!s || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
			free(s);
			close(fd);
			continue;
		}
		s->d = d;
		s->fd = fd;
		s->uid = cr.uid;
		s->gid = cr.gid;
		s->pid = cr.pid;
		s->authorized = peer_allowed(cr.uid, cr.gid);
		if (!s->authorized)
			stk_warn(
			    "client pid %d uid %u gid %u is not allowed (root, uid %u or gid %u)",
			    (int)cr.pid, (unsigned)cr.uid, (unsigned)cr.gid, (unsigned)geteuid(),
			    (unsigned)getegid());
		s->outq_tail = &s->outq;
		s->refs = 2; /* alive + the in poll */
		s->in_op.cb = in_cb;
		if (stk_loop_poll(d->loop, &s->in_op, fd, POLLIN)) {
			close(fd);
			free(s);
			continue;
		}
		s->in_armed = true;
		d->live_sessions++;
		s->next = d->sessions;
		if (d->sessions)
			d->sessions->prev = s;
		d->sessions = s;
		d->st[STK_ST_CLIENTS]++;
	}
	if (stk_loop_poll(d->loop, &d->listen_op, d->listen_fd, POLLIN))
		stk_err("cannot poll the listening socket");
}

/*
 * Whether a live stokerd answers a HELLO at sa within a second.  A socket
 * file nobody answers on is left over from a crash.  Connecting is not proof:
 * a killed daemon's listening socket can outlive it briefly (its io_uring is
 * torn down asynchronously) and still accept connections nobody serves.
 */
static bool daemon_answers(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool live = false;
	uint8_t buf[256];
	long n = stk__enc_hello(buf, sizeof(buf), 1, (uint32_t)getpid());
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 &&
	    send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		live = poll(&p, 1, 1000) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
	}
	close(fd);
	return live;
}

int stk__server_start(struct stk_daemon *d)
{
	const char *path = d->cfg.socket_path;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		stk_err("socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Create the parent directory if it is missing (e.g. /run/stoker). */
	char dir[sizeof(sa.sun_path)];
	memcpy(dir, path, strlen(path) + 1);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			stk_warn("mkdir %s: %s", dir, strerror(errno));
	}
	if (daemon_answers(&sa)) {
		stk_err("another stokerd already listens on %s", path);
		return -EADDRINUSE;
	}
	int fd;
	unlink(path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0660) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		stk_err("cannot listen on %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	d->listen_fd = fd;
	d->listen_op.cb = accept_cb;
	r = stk_loop_poll(d->loop, &d->listen_op, fd, POLLIN);
	if (r)
		return r;
	stk_info("listening on %s (protocol %u, %s backend)", path, STK_PROTO_VERSION,
		 stk_loop_backend(d->loop));
	d->on_ready = get_ready;
	return 0;
}

void stk__server_stop_accepting(struct stk_daemon *d)
{
	if (d->listen_fd < 0)
		return;
	/* The armed poll stays with the loop; accept_cb sees listen_fd < 0 and stops. */
	shutdown(d->listen_fd, SHUT_RDWR);
	close(d->listen_fd);
	d->listen_fd = -1;
	unlink(d->cfg.socket_path);
}

void stk__server_close_all(struct stk_daemon *d)
{
	while (d->sessions)
		session_kill(d, d->sessions, "daemon exiting");
}

unsigned stk__server_sessions(const struct stk_daemon *d)
{
	unsigned n = 0;
	for (struct stk_session *s = d->sessions; s; s = s->next)
		n++;
	return n;
}

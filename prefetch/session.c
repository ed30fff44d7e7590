/* SPDX-License-Identifier: MIT */
/*
 * Client sessions' connections: receiving datagrams, sending replies, and a
 * session's start and end.  (server.c decodes the requests and answers them;
 * listen.c accepts the connections.)
 *
 * The socket is the trust boundary.  It is created 0660; a peer is served
 * only if SO_PEERCRED shows root or the daemon's own uid, or the policy of
 * --allow-uid and --allow-gid admits it (without them: the daemon's gid,
 * primary or supplementary).  A refused peer's first request is answered
 * with -EACCES, naming its uid and gid, and the connection is closed.
 * A client that disconnects releases everything it held: pins, plans, waits.
 *
 * Sends never block the loop: a reply that does not fit in the socket buffer
 * is queued and flushed when the socket is writable.  A client that lets
 * OUTQ_MAX replies pile up unread is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"
#include "prefetch/server_int.h"
#include "stoker.h"

#define OUTQ_MAX 1024 /* replies queued for a client that does not read */

struct stk_out {
	struct stk_out *next;
	int fd; /* to pass, or -1; owned by the entry */
	size_t len;
	uint8_t data[];
};

void stk__session_unref(struct stk_daemon *d, struct stk_session *s)
{
	if (--s->refs)
		return;
	close(s->fd);
	d->live_sessions--;
	free(s->handles);
	free(s->pins);
	free(s->segs_sent);
	free(s);
	stk__accept_resume(d); /* a descriptor just freed */
}

/* Ends a session: releases what it held; the memory goes when the last ref does. */
void stk__session_kill(struct stk_daemon *d, struct stk_session *s, const char *why)
{
	if (s->dead)
		return;
	s->dead = true;
	stk_dbg("client pid %d: %s", (int)s->pid, why);
	stk__obs_session_end(d, s);
	for (uint32_t i = 0; i < s->npins; i++)
		stk__unpin(d, s->pins[i].o);
	s->npins = 0;
	s->pinned_bytes = 0;
	for (uint32_t i = 0; i < s->nhandles; i++) {
		stk__plan_free(d, s->handles[i].plan);
		s->handles[i].plan = NULL;
		struct stk_ds *ds = s->handles[i].ds;
		s->handles[i].ds = NULL;
		if (ds) {
			stk__ds_unuse(d, ds);
			stk__follow_unuse(d, ds, s->group); /* s is dead: others of its group */
		}
	}
	s->open_handles = 0;
	s->plan_entries = 0;
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
	stk__pins_free(d, s); /* after the unlink: its pins count no more */
	d->st[STK_ST_CLIENTS]--;
	/* Wakes the armed polls so they drop their refs. */
	shutdown(s->fd, SHUT_RDWR);
	stk__session_unref(d, s);
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
			stk__session_kill(d, s, "send failed");
			return false;
		}
		s->outq = o->next;
		s->noutq--;
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
	stk__session_unref(s->d, s);
}

/*
 * Sends a datagram of len bytes (an stk__enc_reply_* result), passing fd (not
 * consumed) if >= 0; queues it if the socket is full.
 */
void stk__send_msg(struct stk_daemon *d, struct stk_session *s, const uint8_t *buf, long len,
		   int fd)
{
	if (s->dead)
		return;
	if (len < 0) { /* a reply bigger than its buffer here: our bug, not the client's */
		stk_err("client pid %d: a reply was not sent: %s", (int)s->pid,
			strerror((int)-len));
		return;
	}
	if (!s->outq) {
		ssize_t n = send_one(s->fd, buf, (size_t)len, fd);
		if (n >= 0)
			return;
		if (n != -EAGAIN) {
			stk__session_kill(d, s, "send failed");
			return;
		}
	}
	if (s->noutq >= OUTQ_MAX) {
		stk_warn("client pid %d: %u replies unread; dropping it", (int)s->pid, s->noutq);
		stk__session_kill(d, s, "not reading its replies");
		return;
	}
	struct stk_out *o = malloc(sizeof(*o) + (size_t)len);
	if (!o) {
		stk__session_kill(d, s, "out of memory queueing a reply");
		return;
	}
	s->noutq++;
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

void stk__reply_err(struct stk_daemon *d, struct stk_session *s, const struct stk_msg_hdr *h,
		    int err, const char *msg)
{
	uint8_t buf[REPLY_MAX];
	stk__send_msg(d, s, buf, stk__enc_reply_err(buf, sizeof(buf), h, err, msg), -1);
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
		/*
		 * Clients pass no descriptors; close any they send, also with an
		 * empty datagram, which reads as a hang-up (fuzz_server found the
		 * descriptors of those left open).
		 */
		for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c;
		     c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int fds[8];
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				memcpy(fds, CMSG_DATA(c), k * sizeof(int));
				for (size_t j = 0; j < k; j++)
					close(fds[j]);
			}
		}
		if (n <= 0) {
			stk__session_kill(d, s, n == 0 ? "disconnected" : strerror(errno));
			break;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			stk_warn("client pid %d: datagram larger than %u bytes", (int)s->pid,
				 STK_MSG_MAX);
			stk__session_kill(d, s, "oversized datagram");
			break;
		}
		stk__handle_msg(d, s, buf, (size_t)n);
	}
	if (!s->dead) {
		s->in_op.cb = in_cb;
		if (stk_loop_poll(d->loop, &s->in_op, s->fd, POLLIN) == 0)
			s->in_armed = true;
		else
			stk__session_kill(d, s, "cannot poll");
	}
	if (!s->in_armed)
		stk__session_unref(d, s);
}

static bool in_list(const uint32_t *v, unsigned n, uint32_t x)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/*
 * Whether one of the peer's gids is in v: its primary gid from SO_PEERCRED,
 * then its supplementary groups from SO_PEERGROUPS (Linux 4.13; where the
 * kernel lacks it, only the primary gid counts).
 */
static bool peer_gid_in(int fd, gid_t primary, const uint32_t *v, unsigned n)
{
	if (in_list(v, n, primary))
		return true;
	gid_t small[64], *g = small;
	socklen_t len = sizeof(small);
	bool found = false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		if (errno != ERANGE || !(g = malloc(len)) ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
			goto out;
	}
	for (size_t i = 0; i < len / sizeof(gid_t) && !found; i++)
		found = in_list(v, n, g[i]);
out:
	if (g != small)
		free(g);
	return found;
}

/* The policy of struct stk_config's allow_uids and allow_gids. */
static bool peer_allowed(const struct stk_config *c, int fd, uid_t uid, gid_t gid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	if (!c->nallow_uids && !c->nallow_gids) {
		uint32_t own = getegid();
		return peer_gid_in(fd, gid, &own, 1);
	}
	return in_list(c->allow_uids, c->nallow_uids, uid) ||
	       peer_gid_in(fd, gid, c->allow_gids, c->nallow_gids);
}

/*
 * Refusals are logged once per episode: the first, then at most one line per
 * REFUSE_LOG_NS saying how many more there were, so that a peer retrying in a
 * loop cannot flood the log.
 */
#define REFUSE_LOG_NS (10ull * 1000000000ull)

static void log_refusal(const struct stk_config *c, const struct ucred *cr)
{
	static uint64_t last_ns, quiet;
	uint64_t now = stk__now_ns();
	if (last_ns && now - last_ns < REFUSE_LOG_NS) {
		quiet++;
		return;
	}
	char more[64] = "";
	if (quiet)
		snprintf(more, sizeof(more), " (%llu more refused since the last such line)",
			 (unsigned long long)quiet);
	last_ns = now;
	quiet = 0;
	if (!c->nallow_uids && !c->nallow_gids)
		stk_warn("client pid %d uid %u gid %u is not allowed (root, uid %u or gid %u may "
			 "connect; --allow-uid and --allow-gid admit others)%s",
			 (int)cr->pid, (unsigned)cr->uid, (unsigned)cr->gid, (unsigned)geteuid(),
			 (unsigned)getegid(), more);
	else
		stk_warn("client pid %d uid %u gid %u is not allowed (not in --allow-uid or "
			 "--allow-gid)%s",
			 (int)cr->pid, (unsigned)cr->uid, (unsigned)cr->gid, more);
}

int stk__session_add(struct stk_daemon *d, int fd)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	struct stk_session *s = calloc(1, sizeof(*s));
	if (!s || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
		free(s);
		return -ENOMEM;
	}
	s->d = d;
	s->fd = fd;
	s->uid = cr.uid;
	s->gid = cr.gid;
	s->pid = cr.pid;
	s->domain = d->cfg.isolate == STK_ISOLATE_UID	? (uint32_t)cr.uid
		    : d->cfg.isolate == STK_ISOLATE_GID ? (uint32_t)cr.gid
							: 0;
	s->authorized = peer_allowed(&d->cfg, fd, cr.uid, cr.gid);
	if (!s->authorized)
		log_refusal(&d->cfg, &cr);
	s->outq_tail = &s->outq;
	s->connected_ns = stk__now_ns();
	s->refs = 2; /* alive + the in poll */
	s->in_op.cb = in_cb;
	int r = stk_loop_poll(d->loop, &s->in_op, fd, POLLIN);
	if (r) {
		free(s);
		return r;
	}
	s->in_armed = true;
	d->live_sessions++;
	s->next = d->sessions;
	if (d->sessions)
		d->sessions->prev = s;
	d->sessions = s;
	d->st[STK_ST_CLIENTS]++;
	return 0;
}

void stk__session_drop(struct stk_daemon *d, struct stk_session *s, const char *why)
{
	stk_warn("client pid %d uid %u: %s", (int)s->pid, (unsigned)s->uid, why);
	stk__session_kill(d, s, why);
}

void stk__server_close_all(struct stk_daemon *d)
{
	while (d->sessions)
		stk__session_kill(d, d->sessions, "daemon exiting");
}

unsigned stk__server_sessions(const struct stk_daemon *d)
{
	unsigned n = 0;
	for (struct stk_session *s = d->sessions; s; s = s->next)
		n++;
	return n;
}

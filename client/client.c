/* SPDX-License-Identifier: MIT */
/*
 * libstoker: connection, request/reply matching, datasets, views.
 *
 * Many threads share one socket.  Each request carries a sequence number; the
 * daemon may answer out of order (a GET waits for its object while a STATS is
 * answered at once).  Whichever waiting thread finds no reader becomes the
 * reader: it receives one datagram outside the lock, hands it to the waiter
 * whose seq it carries, and wakes everyone.  No thread of our own, no
 * callbacks into the application.
 *
 * Liveness: the reader waits in poll() for at most the timeout since the
 * last datagram arrived (or since a request went out with none outstanding).
 * Then it sends a HELLO as a probe, which the daemon answers at any time, so
 * a long GET from slow storage keeps the connection alive; a daemon that is
 * stopped answers nothing, and after another timeout the connection is dead.
 *
 * Fork: a client belongs to the process that connected it (see stoker.h).
 * stk__call() and stk__post() are the only places that write to the socket or read
 * from it, and both refuse in any other process (stk__forked()) before they touch
 * the socket or c->mu, which another of the parent's threads may have held,
 * or been waiting on, when it forked.
 */
#include "client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/proto.h"

/* A waiter with room for a reply of cap bytes: small for the hot path (GET). */
struct waiter *stk__waiter_new(size_t cap)
{
	struct waiter *w = malloc(sizeof(*w) + cap);
	if (w) {
		memset(w, 0, sizeof(*w));
		w->cap = cap;
		w->fd = -1;
	}
	return w;
}

static __thread char tls_err[STK_ERRMSG_MAX];

const char *stk_errmsg(void)
{
	return tls_err;
}

void stk__set_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tls_err, sizeof(tls_err), fmt, ap);
	va_end(ap);
}

uint64_t stk__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Whether the caller is a process other than the one that connected c: a
 * child made by fork(), _Fork() or clone(), which shares the parent's socket
 * and must never use it.
 *
 * getpid() is a real system call since glibc 2.25: about 0.1 us on the
 * development VM, paid once per request and once per release, against about
 * 26 us for a GET and its release of a resident 4 KiB object there (several
 * system calls and two context switches), so under 1%, below the noise of
 * an A/B run.  A pthread_atfork() child handler bumping a generation counter
 * would cost nothing per call, but children made by _Fork() (glibc 2.34) or
 * a raw clone() skip those handlers, and a shared library's handler has to
 * be registered (and goes away at dlclose()); comparing pids keeps no state
 * and has no way round it.  (Only a child in a new PID namespace that
 * happened to get the parent's number there would pass for the parent.)
 */
bool stk__forked(const struct stk_client *c)
{
	return getpid() != c->pid;
}

/* Fails a request made in a forked child. Returns -ECHILD; see stoker.h for why that errno. */
int stk__forked_err(const struct stk_client *c)
{
	stk__set_err("this stoker client was connected by pid %ld; a forked child must call "
		     "stk_connect() for its own connection",
		     (long)c->pid);
	return -ECHILD;
}

/* Receives one datagram and at most one fd. Returns its length, 0 on EOF, -errno. */
static ssize_t recv_one(int fd, void *buf, size_t cap, int *rfd)
{
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.b,
			     .msg_controllen = sizeof(cm.b) };
	*rfd = -1;
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[4];
		memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
		for (size_t i = 0; i < nfd; i++) {
			if (*rfd < 0)
				*rfd = fds[i];
			else
				close(fds[i]);
		}
	}
	if (mh.msg_flags & MSG_TRUNC) {
		if (*rfd >= 0)
			close(*rfd);
		*rfd = -1;
		return -EMSGSIZE;
	}
	return n;
}

/* The next request seq, never 0. Called with c->mu held. */
static uint32_t take_seq(struct stk_client *c)
{
	uint32_t seq = c->next_seq++;
	if (seq == 0)
		seq = c->next_seq++;
	return seq;
}

/* Formats the message of a timed-out connection: quiet_ns is how long the daemon was silent. */
static void timeout_msg(char *buf, size_t len, const char *path, uint64_t quiet_ns)
{
	double s = (double)quiet_ns / 1e9;
	snprintf(buf, len, "stokerd at %s has not answered for %.*f s (stopped or overloaded?)",
		 path, s < 10 ? 1 : 0, s);
}

/*
 * Declares the connection dead (err is -EPIPE or -ETIMEDOUT) and wakes every
 * waiter.  A timed-out socket is shut down, so that the daemon, should it
 * resume, sees this client leave and releases what it held; the fd itself
 * stays open until stk_close().  Called with c->mu held.
 */
static void kill_locked(struct stk_client *c, int err, uint64_t quiet_ns)
{
	if (c->dead)
		return;
	c->dead = true;
	c->dead_err = err;
	if (err == -ETIMEDOUT) {
		timeout_msg(c->dead_msg, sizeof(c->dead_msg), c->path, quiet_ns);
		shutdown(c->fd, SHUT_RDWR);
	} else {
		snprintf(c->dead_msg, sizeof(c->dead_msg), "stokerd closed the connection");
	}
	pthread_cond_broadcast(&c->cv);
}

/* Whether a send that failed with errno e ran into SO_SNDTIMEO. */
static bool send_timed_out(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK;
}

/*
 * The reader's wait for one datagram (c->reading is set, c->mu not held).
 * Without a timeout it blocks in recvmsg.  With one, it polls until the
 * timeout has passed since c->rx_ns, then sends a HELLO probe with a seq of
 * its own (whose reply matches no waiter and is dropped) and polls for
 * another timeout.  Returns recv_one()'s result, or -ETIMEDOUT with *quiet
 * set to how long nothing arrived.
 */
static ssize_t read_next(struct stk_client *c, uint8_t *buf, size_t cap, int *rfd, uint64_t *quiet)
{
	const uint64_t t = (uint64_t)c->timeout_ms * 1000000u;
	*rfd = -1;
	while (t) {
		uint32_t probe = 0;
		pthread_mutex_lock(&c->mu);
		uint64_t now = stk__now_ns();
		if (c->probe_ns && now - c->probe_ns >= t) {
			*quiet = now - c->rx_ns;
			pthread_mutex_unlock(&c->mu);
			return -ETIMEDOUT;
		}
		if (!c->probe_ns && now - c->rx_ns >= t) {
			c->probe_ns = now;
			probe = take_seq(c);
		}
		uint64_t deadline = (c->probe_ns ? c->probe_ns : c->rx_ns) + t;
		pthread_mutex_unlock(&c->mu);
		if (probe) {
			uint8_t msg[64];
			long len = stk__enc_hello_group(msg, sizeof(msg), probe, (uint32_t)getpid(),
							c->group);
			ssize_t s;
			do
				s = send(c->fd, msg, (size_t)len, MSG_NOSIGNAL);
			while (s < 0 && errno == EINTR);
			if (s < 0 && send_timed_out(errno)) {
				*quiet = stk__now_ns() - c->rx_ns;
				return -ETIMEDOUT;
			}
			if (s < 0)
				return -errno;
		}
		uint64_t ms = (deadline - now + 999999) / 1000000;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = poll(&pfd, 1, ms > INT_MAX ? INT_MAX : (int)ms);
		if (r > 0)
			break; /* readable, or hung up: recvmsg says which */
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	return recv_one(c->fd, buf, cap, rfd);
}

/*
 * Sends msg (its seq field is patched in here) and waits for the reply into w.
 * Returns 0 with w filled, -EPIPE when the daemon is gone, -ETIMEDOUT when it
 * stopped answering (see stk_connect()), or -ECHILD in a forked child.
 */
int stk__call(struct stk_client *c, uint8_t *msg, size_t len, struct waiter *w)
{
	if (stk__forked(c))
		return stk__forked_err(c);
	w->done = false;
	w->fd = -1;
	pthread_mutex_lock(&c->mu);
	if (c->dead) {
		int err = c->dead_err;
		stk__set_err("%s", c->dead_msg);
		pthread_mutex_unlock(&c->mu);
		return err;
	}
	w->seq = take_seq(c);
	if (!c->waiters) {
		/* The daemon owed us nothing until now: the clock starts here. */
		c->rx_ns = stk__now_ns();
		c->probe_ns = 0;
	}
	w->next = c->waiters;
	c->waiters = w;
	pthread_mutex_unlock(&c->mu);

	for (int i = 0; i < 4; i++)
		msg[4 + i] = (uint8_t)(w->seq >> (8 * i));
	ssize_t s;
	do
		s = send(c->fd, msg, len, MSG_NOSIGNAL);
	while (s < 0 && errno == EINTR);
	int send_err = s < 0 ? errno : 0;

	pthread_mutex_lock(&c->mu);
	if (send_err)
		kill_locked(c, send_timed_out(send_err) ? -ETIMEDOUT : -EPIPE,
			    (uint64_t)c->timeout_ms * 1000000u);
	while (!w->done && !c->dead) {
		if (c->reading) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		c->reading = true;
		pthread_mutex_unlock(&c->mu);
		uint8_t buf[REPLY_MAX];
		int rfd;
		uint64_t quiet = 0;
		ssize_t n = read_next(c, buf, sizeof(buf), &rfd, &quiet);
		pthread_mutex_lock(&c->mu);
		c->reading = false;
		if (n <= 0) {
			kill_locked(c, n == -ETIMEDOUT ? -ETIMEDOUT : -EPIPE, quiet);
		} else {
			c->rx_ns = stk__now_ns();
			c->probe_ns = 0;
		}
		if (n >= (ssize_t)STK_HDR_SIZE) {
			uint32_t seq = stk__get_u32(buf + 4);
			struct waiter *x = c->waiters;
			while (x && x->seq != seq)
				x = x->next;
			if (x && !x->done && x->batch) {
				stk__batch_reply(c, x, buf, (size_t)n, rfd);
				rfd = -1;
			} else if (x && !x->done) {
				x->len = (size_t)n <= x->cap ? (size_t)n : 0;
				memcpy(x->buf, buf, x->len);
				x->fd = rfd;
				x->done = true;
				rfd = -1;
				stk__map_reply(c, x);
			}
		}
		if (rfd >= 0)
			close(rfd);
		pthread_cond_broadcast(&c->cv);
	}
	for (struct waiter **p = &c->waiters; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	int r = 0;
	if (!w->done) {
		r = c->dead_err;
		stk__set_err("%s", c->dead_msg);
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

/*
 * Sends a request that has no reply.  One the daemon never gets would leave
 * state behind in it (a hold that is never released), so a send that times
 * out kills the connection, which makes the daemon drop all of this client's
 * state when it resumes.  A forked child sends nothing: what it would release
 * or close is the parent's.
 */
void stk__post(struct stk_client *c, const uint8_t *msg, size_t len)
{
	if (__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE) || stk__forked(c))
		return;
	ssize_t s;
	do
		s = send(c->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (s < 0 && errno == EINTR);
	if (s < 0 && send_timed_out(errno)) {
		/* The daemon is slow to read: wait for room, up to SO_SNDTIMEO. */
		do
			s = send(c->fd, msg, len, MSG_NOSIGNAL);
		while (s < 0 && errno == EINTR);
		if (s < 0 && send_timed_out(errno)) {
			pthread_mutex_lock(&c->mu);
			kill_locked(c, -ETIMEDOUT, (uint64_t)c->timeout_ms * 1000000u);
			pthread_mutex_unlock(&c->mu);
		}
	}
}

/* Decodes w's reply; on a daemon error returns its status with the message set. */
int stk__reply(struct waiter *w, uint16_t type, struct stk_reply *r)
{
	char err[256];
	if (stk__reply_decode(w->buf, w->len, r, err, sizeof(err)) < 0) {
		stk__set_err("malformed reply from stokerd: %s", err);
		goto bad;
	}
	if (r->h.type != (type | STK_MSG_REPLY)) {
		stk__set_err("stokerd answered %s with a reply to %s", stk__msg_name(type),
			     stk__msg_name(r->h.type));
		goto bad;
	}
	if (r->status < 0) {
		stk__set_err("%s", r->errmsg);
		goto fail;
	}
	return 0;
bad:
	r->status = -EPROTO;
fail:
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	return r->status;
}

/* Whether the caller's opts (possibly from an older header) include field f. */
#define OPT_HAS(o, f)                                                                              \
	((o) && (o)->opts_size >= offsetof(struct stk_connect_opts, f) + sizeof((o)->f))

/*
 * Parses $STOKER_TIMEOUT ("30", "0.5"; 0 = never) by hand, so that the
 * application's LC_NUMERIC cannot change what "0.5" means.  Returns 0 with
 * *ms set (0: never), or -EINVAL.
 */
static int parse_timeout(const char *s, uint32_t *ms)
{
	const char *p = s;
	uint64_t v = 0; /* milliseconds, saturating */
	bool digits = false, sub_ms = false;
	for (; *p >= '0' && *p <= '9'; p++, digits = true)
		v = v < UINT32_MAX ? v * 10 + (uint64_t)(*p - '0') : v;
	v = v < UINT32_MAX ? v * 1000 : v;
	if (*p == '.') {
		uint64_t scale = 100;
		for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
			v += (uint64_t)(*p - '0') * scale;
			sub_ms |= !scale && *p != '0';
			scale /= 10;
		}
	}
	if (!digits || *p)
		return -EINVAL;
	if (!v && sub_ms)
		v = 1;
	*ms = v >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)v;
	return 0;
}

/* The call timeout from opts, $STOKER_TIMEOUT or the default. Returns 0 or -EINVAL. */
static int connect_timeout(const struct stk_connect_opts *opts, uint32_t *ms)
{
	if (OPT_HAS(opts, timeout_ms) && opts->timeout_ms) {
		*ms = opts->timeout_ms == STK_TIMEOUT_NEVER ? 0 : opts->timeout_ms;
		return 0;
	}
	const char *env = getenv("STOKER_TIMEOUT");
	if (!env || !*env) {
		*ms = STK_DEFAULT_TIMEOUT_MS;
		return 0;
	}
	if (parse_timeout(env, ms)) {
		stk__set_err("STOKER_TIMEOUT=%s is not a number of seconds (0 = never)", env);
		return -EINVAL;
	}
	return 0;
}

/*
 * The plan group from opts or $STOKER_PLAN_GROUP, as the nonzero hash HELLO
 * carries (FNV-1a), or 0 for none.  Returns 0, or -EINVAL for a bad name.
 */
static int plan_group(const struct stk_connect_opts *opts, uint64_t *group)
{
	const char *name = OPT_HAS(opts, plan_group) ? opts->plan_group : NULL;
	const char *what = "stk_connect_opts.plan_group";
	if (!name) {
		name = getenv("STOKER_PLAN_GROUP");
		what = "STOKER_PLAN_GROUP";
	}
	*group = 0;
	if (!name || !*name)
		return 0;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++, n++) {
		if (*p <= ' ' || *p >= 0x7f) {
			stk__set_err("%s: byte %zu (0x%02x) is a space, a control character or "
				     "not ASCII; a plan group is 1 to %d printable ASCII bytes",
				     what, n, *p, STK_PLAN_GROUP_MAX);
			return -EINVAL;
		}
		if (n == STK_PLAN_GROUP_MAX) {
			stk__set_err("%s=%.32s...: a plan group is at most %d bytes", what, name,
				     STK_PLAN_GROUP_MAX);
			return -EINVAL;
		}
		h = (h ^ *p) * 0x100000001b3ull;
	}
	*group = h ? h : 1;
	return 0;
}

/* Why connect(2) said EACCES, for the message: "; what was closed to this user", or "". */
static const char *eacces_hint(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return "; a directory on the way to the socket is closed to this user";
	if (!(st.st_mode & S_IWOTH))
		return "; the socket is accessible to the daemon's uid and group only";
	return "";
}

int stk_connect(const struct stk_connect_opts *opts, struct stk_client **out)
{
	const char *path = OPT_HAS(opts, socket_path) ? opts->socket_path : NULL;
	if (!path)
		path = getenv("STOKER_SOCKET");
	if (!path || !*path)
		path = STK_DEFAULT_SOCKET;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		stk__set_err("socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	uint32_t timeout_ms;
	int r = connect_timeout(opts, &timeout_ms);
	if (r)
		return r;
	uint64_t group;
	if ((r = plan_group(opts, &group)))
		return r;

	struct stk_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->refs = 1;
	c->pid = getpid();
	c->next_seq = 1;
	c->timeout_ms = timeout_ms;
	c->group = group;
	memcpy(c->path, sa.sun_path, sizeof(c->path));
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto err;
	}
	/* Bounds every send, and connect(2) itself when the listen backlog is full. */
	if (timeout_ms) {
		struct timeval tv = { .tv_sec = timeout_ms / 1000,
				      .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };
		if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
			r = -errno;
			goto err;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (send_timed_out(-r)) {
			char m[STK_ERRMSG_MAX];
			timeout_msg(m, sizeof(m), path, (uint64_t)timeout_ms * 1000000u);
			stk__set_err("%s", m);
			r = -ETIMEDOUT;
		} else if (r == -EACCES) {
			stk__set_err("cannot connect to stokerd at %s: %s%s", path, strerror(-r),
				     eacces_hint(path));
		} else {
			stk__set_err("cannot connect to stokerd at %s: %s", path, strerror(-r));
		}
		goto err;
	}
	uint8_t msg[64];
	long len = stk__enc_hello_group(msg, sizeof(msg), 0, (uint32_t)getpid(), c->group);
	struct waiter *w = stk__waiter_new(REPLY_SMALL);
	if (!w) {
		r = -ENOMEM;
		goto err;
	}
	struct stk_reply rp;
	/* A refused user gets -EACCES here, with the daemon's reason as the message. */
	r = stk__call(c, msg, (size_t)len, w);
	if (!r)
		r = stk__reply(w, STK_MSG_HELLO, &rp);
	if (!r && rp.u.hello.version != STK_PROTO_VERSION) {
		stk__set_err("stokerd at %s speaks protocol %u, this library %u", path,
			     rp.u.hello.version, STK_PROTO_VERSION);
		r = -EPROTO;
	}
	if (w->fd >= 0) {
		/* Without a pin area every get is a round trip: slower, still right. */
		if (!r && rp.u.hello.pin_buckets)
			stk__fast_map_pins(c, w->fd, rp.u.hello.pin_buckets,
					   rp.u.hello.pin_limit); /* takes the fd */
		else
			close(w->fd);
		w->fd = -1;
	}
	free(w);
	if (r)
		goto err;
	*out = c;
	return 0;
err:
	stk_close(c);
	return r;
}

void stk__client_unref(struct stk_client *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	/*
	 * A forked child's copies of mu and cv are in whatever state the
	 * parent's threads left them at the fork: glibc's pthread_cond_destroy()
	 * waits for the waiters it counts, which do not exist in the child, and
	 * would never return.  The child just frees the memory.
	 */
	if (!stk__forked(c)) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
	}
	stk__segs_fini(&c->segs);
	stk__fast_unmap_pins(c);
	free(c);
}

void stk_close(struct stk_client *c)
{
	if (!c)
		return;
	stk__waits_flush_all(c); /* its totals, and the summary it logs, count every get */
	__atomic_store_n(&c->closed, true, __ATOMIC_RELEASE);
	/*
	 * The daemon releases everything this connection held when it sees it
	 * close.  Forked children may still hold copies of the descriptor, which
	 * would keep the connection open, so the owner shuts the socket down
	 * first; a child only closes its own copy, which leaves the parent's
	 * connection alone.
	 */
	if (c->fd >= 0) {
		if (!stk__forked(c))
			shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
	}
	c->fd = -1;
	stk__client_unref(c);
}

/*
 * Sends a request whose reply carries no descriptor and decodes the reply into
 * *rp.  Returns 0 with *wp holding the reply's bytes, which rp points into
 * (the caller frees *wp), or -errno with *wp NULL.
 */
static int rpc(struct stk_client *c, uint8_t *msg, long len, uint16_t type, struct stk_reply *rp,
	       struct waiter **wp)
{
	/* ENDPOINTS is long, and STATUS may carry an error message naming a long URI. */
	bool big = type == STK_MSG_ENDPOINTS || type == STK_MSG_STATUS;
	struct waiter *w = stk__waiter_new(big ? REPLY_MAX : REPLY_SMALL);
	*wp = NULL;
	if (!w)
		return -ENOMEM;
	int r = stk__call(c, msg, (size_t)len, w);
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

int stk_warm(struct stk_dataset *ds)
{
	uint8_t msg[32];
	struct waiter *w;
	struct stk_reply rp;
	long len = stk__enc_ds(msg, sizeof(msg), STK_MSG_WARM, 0, ds->id);
	int r = rpc(ds->c, msg, len, STK_MSG_WARM, &rp, &w);
	free(w);
	return r;
}

int stk_dataset_status(struct stk_dataset *ds, struct stk_dataset_status *st)
{
	uint8_t msg[32];
	struct waiter *w;
	struct stk_reply rp;
	long len = stk__enc_ds(msg, sizeof(msg), STK_MSG_STATUS, 0, ds->id);
	int r = rpc(ds->c, msg, len, STK_MSG_STATUS, &rp, &w);
	if (r)
		return r;
	st->objects = rp.u.status.objects;
	st->resident = rp.u.status.resident;
	st->inflight = rp.u.status.inflight;
	st->failed = rp.u.status.failed;
	st->warm = rp.u.status.warm;
	st->bytes = rp.u.status.bytes;
	st->resident_bytes = rp.u.status.resident_bytes;
	if (st->failed)
		stk__set_err("%.*s", (int)rp.u.status.last_error_len, rp.u.status.last_error);
	free(w); /* rp points into it */
	return 0;
}

int stk_endpoint_stats(struct stk_client *c, struct stk_endpoint_stats *out, size_t max, size_t *n)
{
	uint8_t msg[32];
	struct waiter *w;
	struct stk_reply rp;
	struct stk_buf b;
	stk__buf_init(&b, msg, sizeof(msg));
	stk__msg_begin(&b, STK_MSG_ENDPOINTS, 0, 0);
	int r = rpc(c, msg, stk__msg_end(&b), STK_MSG_ENDPOINTS, &rp, &w);
	if (!r) {
		const uint8_t *p = rp.u.endpoints.p;
		for (uint32_t i = 0; i < rp.u.endpoints.n; i++) {
			uint16_t nl = (uint16_t)(p[0] | p[1] << 8);
			if (i < max) {
				struct stk_endpoint_stats *e = &out[i];
				memcpy(e->endpoint, p + 2, nl);
				e->endpoint[nl] = 0;
				const uint8_t *v = p + 2 + nl;
				e->requests = stk__get_u64(v);
				e->retries = stk__get_u64(v + 8);
				e->errors = stk__get_u64(v + 16);
				e->bytes = stk__get_u64(v + 24);
				e->busy_ns = stk__get_u64(v + 32);
			}
			p += 2 + nl + 40;
		}
		*n = rp.u.endpoints.n;
	}
	free(w);
	return r;
}

/* The size of struct stk_stats before protocol 5 appended stall accounting. */
#define STATS_V4_SIZE offsetof(struct stk_stats, waits)

int stk_stats(struct stk_client *c, struct stk_stats *st)
{
	if (!st || st->size < STATS_V4_SIZE) {
		stk__set_err("struct stk_stats size field is %zu, expected at least %zu",
			     st ? st->size : 0, STATS_V4_SIZE);
		return -EINVAL;
	}
	uint8_t msg[32];
	struct waiter *w;
	struct stk_reply rp;
	stk__waits_flush_all(c); /* the daemon's counters then count every get */
	long len = stk__enc_stats(msg, sizeof(msg), 0);
	int r = rpc(c, msg, len, STK_MSG_STATS, &rp, &w);
	if (r) {
		free(w);
		return r;
	}
	/* Filled whole, then copied as far as the caller's struct goes (an older one). */
	struct stk_stats all = { .size = st->size < sizeof(all) ? st->size : sizeof(all) };
	all.client_gets = __atomic_load_n(&c->gets, __ATOMIC_RELAXED);
	all.client_hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
	all.client_misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
	all.client_bytes = __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
	all.client_wait_ns = __atomic_load_n(&c->wait_ns, __ATOMIC_RELAXED);
	uint64_t v[STK_STATS_COUNT] = { 0 };
	memcpy(v, rp.u.stats.v, rp.u.stats.n * sizeof(v[0]));
	free(w);
	all.gets = v[STK_ST_GETS];
	all.hits_ram = v[STK_ST_HITS_RAM];
	all.misses = v[STK_ST_MISSES];
	all.fetches = v[STK_ST_FETCHES];
	all.fetch_bytes = v[STK_ST_FETCH_BYTES];
	all.fetch_ns = v[STK_ST_FETCH_NS];
	all.fetch_errors = v[STK_ST_FETCH_ERRORS];
	all.evictions = v[STK_ST_EVICTIONS];
	all.ram_budget = v[STK_ST_RAM_BUDGET];
	all.ram_used = v[STK_ST_RAM_USED];
	all.resident_objects = v[STK_ST_RESIDENT];
	all.inflight_objects = v[STK_ST_INFLIGHT];
	all.pinned_objects = v[STK_ST_PINNED];
	all.clients = v[STK_ST_CLIENTS];
	all.datasets = v[STK_ST_DATASETS];
	all.prefetches = v[STK_ST_PREFETCHES];
	all.waits = v[STK_ST_WAITS];
	all.stall_ns = v[STK_ST_STALL_NS];
	all.stall_fetch_ns = v[STK_ST_STALL_FETCH_NS];
	all.stall_delivery_ns = v[STK_ST_STALL_DELIVERY_NS];
	all.stall_avoided_ns = v[STK_ST_AVOIDED_NS];
	all.stall_avoided_model_ns = v[STK_ST_AVOIDED_MODEL_NS];
	all.delivered_bytes = v[STK_ST_DELIVERED_BYTES];
	all.self_stall_ns = v[STK_ST_SELF_STALL_NS];
	all.self_stall_fetch_ns = v[STK_ST_SELF_STALL_FETCH_NS];
	all.self_stall_avoided_ns = v[STK_ST_SELF_AVOIDED_NS];
	all.nvme_budget = v[STK_ST_NVME_BUDGET];
	all.nvme_used = v[STK_ST_NVME_USED];
	all.nvme_objects = v[STK_ST_NVME_OBJECTS];
	all.hits_nvme = v[STK_ST_HITS_NVME];
	all.nvme_reads = v[STK_ST_NVME_READS];
	all.nvme_read_bytes = v[STK_ST_NVME_READ_BYTES];
	all.nvme_writes = v[STK_ST_NVME_WRITES];
	all.nvme_write_bytes = v[STK_ST_NVME_WRITE_BYTES];
	all.nvme_dropped_corrupt = v[STK_ST_NVME_DROPPED_CORRUPT];
	all.nvme_degraded = v[STK_ST_NVME_DEGRADED];
	all.nvme_stored_bytes = v[STK_ST_NVME_STORED_BYTES];
	all.nvme_plain_bytes = v[STK_ST_NVME_PLAIN_BYTES];
	all.nvme_codec_ns = v[STK_ST_NVME_CODEC_NS];
	memcpy(st, &all, all.size);
	return 0;
}

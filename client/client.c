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
 * call() and post() are the only places that write to the socket or read
 * from it, and both refuse in any other process (forked()) before they touch
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

#define GETB_CHUNK  1024  /* objects per GETB: well inside the daemon's waiting limit */
#define REPLY_SMALL 1024  /* room for every reply but ENDPOINTS (and STATUS with a long message) */
#define REPLY_MAX   16384 /* the largest reply the daemon sends (ENDPOINTS) */

struct waiter {
	uint32_t seq;
	bool done;
	size_t len; /* 0 if the reply did not fit cap */
	int fd;	    /* received with the reply, or -1 */
	/* A GET's: the mapping of its segment (a view counted), or map_err. */
	const uint8_t *base;
	int map_err;
	struct batch *batch; /* a GETB's: replies go there, one per object */
	struct waiter *next;
	size_t cap;
	uint8_t buf[];
};

/* A waiter with room for a reply of cap bytes: small for the hot path (GET). */
static struct waiter *waiter_new(size_t cap)
{
	struct waiter *w = malloc(sizeof(*w) + cap);
	if (w) {
		memset(w, 0, sizeof(*w));
		w->cap = cap;
		w->fd = -1;
	}
	return w;
}

/*
 * Lifetimes: a client lives while it is open or any of its datasets lives; a
 * dataset lives while its handle is open or any view or fd hold taken through
 * it is unreleased.  So views outlive stk_dataset_close() and stk_close(), as
 * stoker.h promises, and their release after a close only unmaps.
 */
struct stk_client {
	unsigned refs; /* atomic */
	bool closed;
	int fd;
	pid_t pid;	     /* the process that connected; see forked() */
	uint32_t timeout_ms; /* 0: never */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t next_seq;
	bool reading;
	bool dead;
	int dead_err;		       /* -EPIPE or -ETIMEDOUT, once dead */
	char dead_msg[STK_ERRMSG_MAX]; /* stk_errmsg() for calls on a dead connection */
	uint64_t rx_ns;		       /* the liveness clock's start; see read_next() */
	uint64_t probe_ns;	       /* when the outstanding probe went out; 0: none */
	struct waiter *waiters;
	struct stk_segs segs;			     /* under mu */
	uint64_t gets, hits, misses, bytes, wait_ns; /* atomics */
};

struct stk_dataset {
	unsigned refs; /* atomic */
	bool closed;
	struct stk_client *c;
	uint32_t id;
	uint32_t count;
	uint64_t bytes;
	uint64_t *sizes;
	char **keys;
	char *keymem;
	uint32_t *hash; /* open addressing over key indices + 1; 0 = empty */
	uint32_t hash_mask;
};

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

static uint64_t now_ns(void)
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
static bool forked(const struct stk_client *c)
{
	return getpid() != c->pid;
}

/* Fails a request made in a forked child. Returns -ECHILD; see stoker.h for why that errno. */
static int forked_err(const struct stk_client *c)
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
		uint64_t now = now_ns();
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
			long len = stk__enc_hello(msg, sizeof(msg), probe, (uint32_t)getpid());
			ssize_t s;
			do
				s = send(c->fd, msg, (size_t)len, MSG_NOSIGNAL);
			while (s < 0 && errno == EINTR);
			if (s < 0 && send_timed_out(errno)) {
				*quiet = now_ns() - c->rx_ns;
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
 * For a successful GET reply: maps the segment it names (or counts a view
 * of a mapping this client has), here in the reader with the lock held, so
 * that a later reply naming the same segment without its fd finds it mapped
 * whichever thread is woken first.  Takes x->fd.
 */
static void map_reply(struct stk_client *c, struct waiter *x)
{
	struct stk_reply r;
	x->base = NULL;
	x->map_err = 0;
	if (x->len < STK_HDR_SIZE ||
	    (x->buf[0] | x->buf[1] << 8) != (STK_MSG_GET | STK_MSG_REPLY) ||
	    stk__reply_decode(x->buf, x->len, &r, NULL, 0) || r.status < 0 ||
	    r.u.get.seg == STK_SEG_NONE)
		return;
	x->map_err = stk__segs_take(&c->segs, &r.u.get, x->fd, &x->base);
	x->fd = -1;
}

/* A GETB in flight: its views fill in as replies arrive, in any order. */
struct batch {
	struct stk_view *views; /* by position */
	uint8_t *state;		/* by position: 0 waiting, 1 got (held), 2 failed */
	uint32_t n, left;
	int err;	  /* the lowest failed position's error */
	uint32_t err_pos; /* ... and its position (n: none yet) */
	char msg[STK_ERRMSG_MAX];
};

/* Records a failure of position pos; the lowest position's is the one reported. */
static void batch_fail(struct batch *b, uint32_t pos, int err, const char *msg)
{
	if (pos < b->err_pos || b->err_pos == b->n) {
		b->err = err;
		b->err_pos = pos < b->n ? pos : b->n - 1;
		snprintf(b->msg, sizeof(b->msg), "%s", msg);
	}
}

/*
 * One GETB reply, in the reader with the lock held: fills its position's
 * view (mapping the segment as for a GET), or records its error.  Takes fd.
 */
static void batch_reply(struct stk_client *c, struct waiter *x, const uint8_t *buf, size_t n,
			int fd)
{
	struct batch *b = x->batch;
	struct stk_reply r;
	char e[200];
	if (stk__reply_decode(buf, n, &r, e, sizeof(e)) ||
	    (r.h.type & ~STK_MSG_REPLY) != STK_MSG_GETB || r.h.flags >= b->n ||
	    b->state[r.h.flags]) {
		if (fd >= 0)
			close(fd);
		/* Which object it answers is unknown: the batch cannot end well. */
		batch_fail(b, 0, -EPROTO, "malformed GETB reply from stokerd");
		b->left = 0;
		x->done = true;
		return;
	}
	uint32_t pos = r.h.flags;
	struct stk_view *v = &b->views[pos];
	if (r.status < 0) {
		if (fd >= 0)
			close(fd);
		b->state[pos] = 2;
		batch_fail(b, pos, r.status, r.errmsg);
	} else {
		b->state[pos] = 1; /* held by the daemon, whatever happens to the mapping */
		const uint8_t *base = NULL;
		int mr = r.u.get.seg == STK_SEG_NONE
			     ? (fd >= 0 ? close(fd), 0 : 0)
			     : stk__segs_take(&c->segs, &r.u.get, fd, &base);
		v->size = r.u.get.size;
		v->flags = r.u.get.flags & STK_GET_HIT ? STK_VIEW_HIT : 0;
		v->seg = base ? r.u.get.seg : STK_SEG_NONE;
		v->gen = r.u.get.gen;
		v->data = base ? base + r.u.get.off : NULL;
		if (mr)
			batch_fail(b, pos, mr, "cannot map a segment of stokerd's");
	}
	if (--b->left == 0)
		x->done = true;
}

/*
 * Sends msg (its seq field is patched in here) and waits for the reply into w.
 * Returns 0 with w filled, -EPIPE when the daemon is gone, -ETIMEDOUT when it
 * stopped answering (see stk_connect()), or -ECHILD in a forked child.
 */
static int call(struct stk_client *c, uint8_t *msg, size_t len, struct waiter *w)
{
	if (forked(c))
		return forked_err(c);
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
		c->rx_ns = now_ns();
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
			c->rx_ns = now_ns();
			c->probe_ns = 0;
		}
		if (n >= (ssize_t)STK_HDR_SIZE) {
			uint32_t seq = stk__get_u32(buf + 4);
			struct waiter *x = c->waiters;
			while (x && x->seq != seq)
				x = x->next;
			if (x && !x->done && x->batch) {
				batch_reply(c, x, buf, (size_t)n, rfd);
				rfd = -1;
			} else if (x && !x->done) {
				x->len = (size_t)n <= x->cap ? (size_t)n : 0;
				memcpy(x->buf, buf, x->len);
				x->fd = rfd;
				x->done = true;
				rfd = -1;
				map_reply(c, x);
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
static void post(struct stk_client *c, const uint8_t *msg, size_t len)
{
	if (__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE) || forked(c))
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
static int reply(struct waiter *w, uint16_t type, struct stk_reply *r)
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

	struct stk_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->refs = 1;
	c->pid = getpid();
	c->next_seq = 1;
	c->timeout_ms = timeout_ms;
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
	long len = stk__enc_hello(msg, sizeof(msg), 0, (uint32_t)getpid());
	struct waiter *w = waiter_new(REPLY_SMALL);
	if (!w) {
		r = -ENOMEM;
		goto err;
	}
	struct stk_reply rp;
	/* A refused user gets -EACCES here, with the daemon's reason as the message. */
	r = call(c, msg, (size_t)len, w);
	if (!r)
		r = reply(w, STK_MSG_HELLO, &rp);
	if (!r && rp.u.hello.version != STK_PROTO_VERSION) {
		stk__set_err("stokerd at %s speaks protocol %u, this library %u", path,
			     rp.u.hello.version, STK_PROTO_VERSION);
		r = -EPROTO;
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

static void client_unref(struct stk_client *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	/*
	 * A forked child's copies of mu and cv are in whatever state the
	 * parent's threads left them at the fork: glibc's pthread_cond_destroy()
	 * waits for the waiters it counts, which do not exist in the child, and
	 * would never return.  The child just frees the memory.
	 */
	if (!forked(c)) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
	}
	stk__segs_fini(&c->segs);
	free(c);
}

void stk_close(struct stk_client *c)
{
	if (!c)
		return;
	__atomic_store_n(&c->closed, true, __ATOMIC_RELEASE);
	/*
	 * The daemon releases everything this connection held when it sees it
	 * close.  Forked children may still hold copies of the descriptor, which
	 * would keep the connection open, so the owner shuts the socket down
	 * first; a child only closes its own copy, which leaves the parent's
	 * connection alone.
	 */
	if (c->fd >= 0) {
		if (!forked(c))
			shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
	}
	c->fd = -1;
	client_unref(c);
}

static uint32_t hash_key(const char *k)
{
	uint32_t h = 2166136261u;
	for (; *k; k++)
		h = (h ^ (uint8_t)*k) * 16777619u;
	return h;
}

struct cat_fill {
	struct stk_dataset *ds;
	char *p;
};

static int cat_entry(void *arg, uint32_t i, const char *key, uint32_t kl, uint64_t size)
{
	struct cat_fill *f = arg;
	f->ds->sizes[i] = size;
	f->ds->keys[i] = f->p;
	memcpy(f->p, key, kl);
	f->p[kl] = 0;
	f->p += kl + 1;
	return 0;
}

/* Reads the catalog memfd into ds. */
static int load_catalog(struct stk_dataset *ds, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	size_t len = (size_t)st.st_size;
	void *map = len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
	if (len && map == MAP_FAILED)
		return -errno;
	char err[256];
	uint32_t n = 0;
	int r = stk__catalog_walk(map, len, NULL, NULL, &n, err, sizeof(err));
	if (r || n != ds->count) {
		stk__set_err("bad catalog from stokerd: %s", r ? err : "count mismatch");
		r = -EPROTO;
		goto out;
	}
	ds->sizes = calloc(n ? n : 1, sizeof(*ds->sizes));
	ds->keys = calloc(n ? n : 1, sizeof(*ds->keys));
	ds->keymem = malloc(len + 1); /* keys + NULs fit in the catalog's bytes */
	uint32_t hn = 16;
	while (hn < 2 * n)
		hn <<= 1;
	ds->hash = calloc(hn, sizeof(*ds->hash));
	ds->hash_mask = hn - 1;
	if (!ds->sizes || !ds->keys || !ds->keymem || !ds->hash) {
		r = -ENOMEM;
		goto out;
	}
	struct cat_fill f = { ds, ds->keymem };
	stk__catalog_walk(map, len, cat_entry, &f, NULL, NULL, 0);
	/*
	 * A key already in the table keeps its first index, as stk_dataset_find()
	 * promises; stopping at it also keeps a catalog of n equal keys from
	 * costing n^2 probes.
	 */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = hash_key(ds->keys[i]) & ds->hash_mask;
		while (ds->hash[h] && strcmp(ds->keys[ds->hash[h] - 1], ds->keys[i]))
			h = (h + 1) & ds->hash_mask;
		if (!ds->hash[h])
			ds->hash[h] = i + 1;
	}
out:
	if (map)
		munmap(map, len);
	return r;
}

int stk_dataset_open(struct stk_client *c, const char *uri, unsigned flags,
		     struct stk_dataset **out)
{
	char fixed[STK_URI_MAX + 8];
	if (uri && uri[0] == '/') {
		snprintf(fixed, sizeof(fixed), "file://%s", uri);
		uri = fixed;
	}
	if (!uri || !*uri || strlen(uri) > STK_URI_MAX) {
		stk__set_err("dataset URI is empty or longer than %u bytes", STK_URI_MAX);
		return -EINVAL;
	}
	struct stk_dataset *ds = calloc(1, sizeof(*ds));
	struct waiter *w = waiter_new(REPLY_SMALL);
	uint8_t *msg = malloc(STK_URI_MAX + 64);
	int r = -ENOMEM;
	if (!ds || !w || !msg)
		goto out;
	ds->c = c;
	ds->refs = 1;
	long len = stk__enc_open(msg, STK_URI_MAX + 64, 0, flags, uri);
	struct stk_reply rp;
	r = call(c, msg, (size_t)len, w);
	if (!r)
		r = reply(w, STK_MSG_OPEN, &rp);
	if (r)
		goto out;
	ds->id = rp.u.open.ds;
	ds->count = rp.u.open.count;
	ds->bytes = rp.u.open.bytes;
	if (w->fd < 0) {
		stk__set_err("stokerd sent no catalog for %s", uri);
		r = -EPROTO;
		goto out;
	}
	r = load_catalog(ds, w->fd);
	close(w->fd);
	if (r)
		goto out;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	*out = ds;
	ds = NULL;
out:
	if (ds && ds->id) {
		len = stk__enc_ds(msg, 64, STK_MSG_CLOSE, 0, ds->id);
		post(c, msg, (size_t)len);
	}
	if (ds) {
		free(ds->sizes);
		free(ds->keys);
		free(ds->keymem);
		free(ds->hash);
		free(ds);
	}
	free(w);
	free(msg);
	return r;
}

static void ds_unref(struct stk_dataset *ds)
{
	if (__atomic_sub_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL))
		return;
	struct stk_client *c = ds->c;
	free(ds->sizes);
	free(ds->keys);
	free(ds->keymem);
	free(ds->hash);
	free(ds);
	client_unref(c);
}

void stk_dataset_close(struct stk_dataset *ds)
{
	if (!ds)
		return;
	/* CLOSE also ends, in the daemon, every hold still taken through this handle. */
	uint8_t msg[32];
	long len = stk__enc_ds(msg, sizeof(msg), STK_MSG_CLOSE, 0, ds->id);
	post(ds->c, msg, (size_t)len);
	__atomic_store_n(&ds->closed, true, __ATOMIC_RELEASE);
	ds_unref(ds);
}

size_t stk_dataset_count(const struct stk_dataset *ds)
{
	return ds->count;
}

uint64_t stk_dataset_bytes(const struct stk_dataset *ds)
{
	return ds->bytes;
}

int stk_dataset_object(const struct stk_dataset *ds, size_t index, const char **key, uint64_t *size)
{
	if (index >= ds->count) {
		stk__set_err("object index %zu is out of range (dataset has %u)", index, ds->count);
		return -ERANGE;
	}
	if (key)
		*key = ds->keys[index];
	if (size)
		*size = ds->sizes[index];
	return 0;
}

int stk_dataset_find(const struct stk_dataset *ds, const char *key, size_t *index)
{
	for (uint32_t h = hash_key(key) & ds->hash_mask; ds->hash[h]; h = (h + 1) & ds->hash_mask) {
		if (!strcmp(ds->keys[ds->hash[h] - 1], key)) {
			*index = ds->hash[h] - 1;
			return 0;
		}
	}
	stk__set_err("no object with key %s", key);
	return -ENOENT;
}

int stk_plan(struct stk_dataset *ds, const uint32_t *order, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (order[i] >= ds->count) {
			stk__set_err(
			    "plan entry %zu: object index %u is out of range (dataset has %u)", i,
			    order[i], ds->count);
			return -ERANGE;
		}
	}
	uint8_t *msg = malloc(STK_MSG_MAX);
	struct waiter *w = waiter_new(REPLY_SMALL);
	int r = -ENOMEM;
	if (!msg || !w)
		goto out;
	size_t off = 0;
	do {
		uint32_t k = (uint32_t)(n - off < STK_PLAN_CHUNK ? n - off : STK_PLAN_CHUNK);
		long len = stk__enc_plan(msg, STK_MSG_MAX, 0, off == 0 ? STK_PLAN_RESET : 0, ds->id,
					 order + off, k);
		struct stk_reply rp;
		r = call(ds->c, msg, (size_t)len, w);
		if (!r)
			r = reply(w, STK_MSG_PLAN, &rp);
		off += k;
	} while (!r && off < n);
out:
	free(msg);
	free(w);
	return r;
}

/*
 * A GET: on success, fills v (a view counted on its segment's mapping, and a
 * hold in the daemon, which stk_release() ends).
 */
static int get_view(struct stk_dataset *ds, size_t index, struct stk_view *v)
{
	memset(v, 0, sizeof(*v));
	if (index >= ds->count) {
		stk__set_err("object index %zu is out of range (dataset has %u)", index, ds->count);
		return -ERANGE;
	}
	uint8_t msg[32];
	long len = stk__enc_obj(msg, sizeof(msg), STK_MSG_GET, 0, ds->id, (uint32_t)index);
	struct waiter *w = waiter_new(REPLY_SMALL);
	if (!w)
		return -ENOMEM;
	uint64_t t0 = now_ns();
	struct stk_reply rp;
	int r = call(ds->c, msg, (size_t)len, w);
	if (!r)
		r = reply(w, STK_MSG_GET, &rp);
	v->wait_ns = now_ns() - t0;
	struct stk_client *c = ds->c;
	if (!r && rp.u.get.seg != STK_SEG_NONE && !w->base) {
		r = w->map_err ? w->map_err : -EPROTO;
		if (r == -EPROTO)
			stk__set_err("stokerd placed object %s in segment %u, which it never sent",
				     ds->keys[index], rp.u.get.seg);
		else
			stk__set_err("cannot map the segment of object %s (%llu bytes): %s",
				     ds->keys[index], (unsigned long long)rp.u.get.seg_size,
				     strerror(-r));
		/* The daemon holds it for us all the same: let go. */
		__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL);
		stk_release_index(ds, index);
	}
	if (!r) {
		v->size = rp.u.get.size;
		v->data = w->base ? w->base + rp.u.get.off : NULL;
		v->flags = rp.u.get.flags & STK_GET_HIT ? STK_VIEW_HIT : 0;
		v->index = (uint32_t)index;
		v->seg = rp.u.get.seg;
		v->gen = rp.u.get.gen;
		v->ds = ds;
		__atomic_fetch_add(&c->gets, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(v->flags ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->bytes, v->size, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->wait_ns, v->wait_ns, __ATOMIC_RELAXED);
		__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL); /* the hold's */
	}
	free(w);
	return r;
}

/* Ends v's use of its segment's mapping. */
static void put_view(struct stk_view *v)
{
	struct stk_client *c = v->ds->c;
	/* A forked child must not take a lock a parent thread may have held at the fork. */
	if (v->seg == STK_SEG_NONE || !v->data || forked(c))
		return;
	pthread_mutex_lock(&c->mu);
	stk__segs_put(&c->segs, v->seg, v->gen);
	pthread_mutex_unlock(&c->mu);
}

int stk_get(struct stk_dataset *ds, size_t index, struct stk_view *v)
{
	return get_view(ds, index, v);
}

/*
 * A private copy of the object in a sealed memfd of its own: objects live
 * packed in shared segments, which a program wanting an fd (the shim's
 * open()) must not see whole.  One copy of the object's bytes; the hold is
 * kept until stk_release_index(), as before.
 */
int stk_get_fd(struct stk_dataset *ds, size_t index, int *fd, uint64_t *size)
{
	struct stk_view v;
	int r = get_view(ds, index, &v);
	if (r)
		return r;
	int mfd = memfd_create("stoker:object", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	r = mfd < 0 ? -errno : 0;
	for (uint64_t off = 0; !r && off < v.size;) {
		ssize_t k = write(mfd, (const char *)v.data + off, v.size - off);
		if (k < 0 && errno != EINTR)
			r = -errno;
		else if (k > 0)
			off += (uint64_t)k;
	}
	if (!r &&
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		r = -errno;
	put_view(&v);
	if (r) {
		stk__set_err("cannot copy object %s into a memfd: %s", ds->keys[index],
			     strerror(-r));
		if (mfd >= 0)
			close(mfd);
		stk_release_index(ds, index);
		return r;
	}
	*fd = mfd;
	*size = v.size;
	return 0;
}

void stk_release_index(struct stk_dataset *ds, size_t index)
{
	if (!__atomic_load_n(&ds->closed, __ATOMIC_ACQUIRE)) {
		uint8_t msg[32];
		long len =
		    stk__enc_obj(msg, sizeof(msg), STK_MSG_RELEASE, 0, ds->id, (uint32_t)index);
		post(ds->c, msg, (size_t)len);
	}
	ds_unref(ds);
}

void stk_release(struct stk_view *v)
{
	if (!v || !v->ds)
		return;
	put_view(v);
	stk_release_index(v->ds, v->index);
	memset(v, 0, sizeof(*v));
}

int stk_get_batch(struct stk_dataset *ds, const uint32_t *idx, size_t n, struct stk_view *views)
{
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= ds->count) {
			stk__set_err("batch entry %zu: object index %u is out of range (dataset "
				     "has %u)",
				     i, idx[i], ds->count);
			return -ERANGE;
		}
	}
	memset(views, 0, n * sizeof(*views));
	uint8_t *msg = malloc(STK_MSG_MAX);
	uint8_t *state = calloc(n ? n : 1, 1);
	struct waiter *w = waiter_new(REPLY_SMALL);
	int r = msg && state && w ? 0 : -ENOMEM;
	struct stk_client *c = ds->c;
	uint64_t t0 = now_ns();
	size_t off = 0;
	while (!r && off < n) {
		/* Chunks the daemon's per-client limit on waiting requests leaves room for. */
		uint32_t k = (uint32_t)(n - off < GETB_CHUNK ? n - off : GETB_CHUNK);
		struct batch b = {
			.views = views + off, .state = state + off, .n = k, .left = k, .err_pos = k
		};
		long len = stk__enc_batch(msg, STK_MSG_MAX, STK_MSG_GETB, 0, ds->id, idx + off, k);
		w->batch = &b;
		r = call(c, msg, (size_t)len, w);
		w->batch = NULL;
		if (!r && b.err_pos < k) {
			r = b.err;
			stk__set_err("%s", b.msg);
		}
		for (uint32_t i = 0; i < k; i++) {
			struct stk_view *v = &views[off + i];
			v->index = idx[off + i];
			if (state[off + i] == 1) {
				v->ds = ds;
				__atomic_add_fetch(&ds->refs, 1, __ATOMIC_ACQ_REL); /* the hold's */
			}
		}
		off += k;
	}
	uint64_t wait = now_ns() - t0;
	if (r) {
		/* All or nothing: give back what did arrive. */
		char keep[STK_ERRMSG_MAX];
		snprintf(keep, sizeof(keep), "%s", stk_errmsg());
		for (size_t i = 0; i < n; i++)
			if (state[i] == 1)
				stk_release(&views[i]);
		memset(views, 0, n * sizeof(*views));
		stk__set_err("%s", keep);
	} else {
		uint64_t bytes = 0, hits = 0;
		for (size_t i = 0; i < n; i++) {
			views[i].wait_ns = wait;
			bytes += views[i].size;
			hits += views[i].flags & STK_VIEW_HIT ? 1 : 0;
		}
		__atomic_fetch_add(&c->gets, n, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->hits, hits, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->misses, n - hits, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->bytes, bytes, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->wait_ns, wait, __ATOMIC_RELAXED);
	}
	free(msg);
	free(state);
	free(w);
	return r;
}

void stk_release_batch(struct stk_view *views, size_t n)
{
	/* One RELEASEB per run of views of the same dataset. */
	uint32_t idx[GETB_CHUNK];
	uint8_t *msg = NULL;
	for (size_t i = 0; i < n;) {
		struct stk_dataset *ds = views[i].ds;
		if (!ds) {
			i++;
			continue;
		}
		uint32_t k = 0;
		size_t j = i;
		for (; j < n && k < GETB_CHUNK && views[j].ds == ds; j++) {
			put_view(&views[j]);
			idx[k++] = views[j].index;
		}
		if (!__atomic_load_n(&ds->closed, __ATOMIC_ACQUIRE)) {
			if (!msg)
				msg = malloc(8 + STK_HDR_SIZE + 4 * GETB_CHUNK);
			long len = msg ? stk__enc_batch(msg, 8 + STK_HDR_SIZE + 4 * GETB_CHUNK,
							STK_MSG_RELEASEB, 0, ds->id, idx, k)
				       : -1;
			if (len > 0)
				post(ds->c, msg, (size_t)len);
			else /* no memory for one message: one each */
				for (uint32_t t = 0; t < k; t++) {
					uint8_t one[32];
					long l1 = stk__enc_obj(one, sizeof(one), STK_MSG_RELEASE, 0,
							       ds->id, idx[t]);
					post(ds->c, one, (size_t)l1);
				}
		}
		for (size_t t = i; t < j; t++) {
			memset(&views[t], 0, sizeof(views[t]));
			ds_unref(ds);
		}
		i = j;
	}
	free(msg);
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
	struct waiter *w = waiter_new(big ? REPLY_MAX : REPLY_SMALL);
	*wp = NULL;
	if (!w)
		return -ENOMEM;
	int r = call(c, msg, (size_t)len, w);
	if (!r)
		r = reply(w, type, rp);
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

int stk_stats(struct stk_client *c, struct stk_stats *st)
{
	if (!st || st->size < sizeof(*st)) {
		stk__set_err("struct stk_stats size field is %zu, expected %zu", st ? st->size : 0,
			     sizeof(*st));
		return -EINVAL;
	}
	uint8_t msg[32];
	struct waiter *w;
	struct stk_reply rp;
	long len = stk__enc_stats(msg, sizeof(msg), 0);
	int r = rpc(c, msg, len, STK_MSG_STATS, &rp, &w);
	free(w);
	if (r)
		return r;
	size_t size = st->size;
	memset(st, 0, sizeof(*st));
	st->size = size;
	st->client_gets = __atomic_load_n(&c->gets, __ATOMIC_RELAXED);
	st->client_hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
	st->client_misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
	st->client_bytes = __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
	st->client_wait_ns = __atomic_load_n(&c->wait_ns, __ATOMIC_RELAXED);
	const uint64_t *v = rp.u.stats.v;
	st->gets = v[STK_ST_GETS];
	st->hits_ram = v[STK_ST_HITS_RAM];
	st->misses = v[STK_ST_MISSES];
	st->fetches = v[STK_ST_FETCHES];
	st->fetch_bytes = v[STK_ST_FETCH_BYTES];
	st->fetch_ns = v[STK_ST_FETCH_NS];
	st->fetch_errors = v[STK_ST_FETCH_ERRORS];
	st->evictions = v[STK_ST_EVICTIONS];
	st->ram_budget = v[STK_ST_RAM_BUDGET];
	st->ram_used = v[STK_ST_RAM_USED];
	st->resident_objects = v[STK_ST_RESIDENT];
	st->inflight_objects = v[STK_ST_INFLIGHT];
	st->pinned_objects = v[STK_ST_PINNED];
	st->clients = v[STK_ST_CLIENTS];
	st->datasets = v[STK_ST_DATASETS];
	st->prefetches = v[STK_ST_PREFETCHES];
	return 0;
}

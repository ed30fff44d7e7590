/* SPDX-License-Identifier: MIT */
/*
 * The listening socket: one daemon per path, and accept() that never spins.
 *
 * A daemon takes PATH.lock (flock) before it binds, so two started at once
 * cannot both serve one path, and only the holder ever unlinks the socket.
 * At the descriptor limit accept() cannot succeed until a descriptor frees:
 * accepting pauses (one log line per episode) and resumes when a session
 * ends, or at the next tick.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"

static void accept_cb(struct stk_op *op, int res);

static void listen_arm(struct stk_daemon *d)
{
	d->listen_op.cb = accept_cb;
	if (stk_loop_poll(d->loop, &d->listen_op, d->listen_fd, POLLIN))
		stk_err("cannot poll the listening socket");
}

/*
 * accept() failed for want of descriptors: wait until one frees rather than
 * spin.  An episode lasts until an accept succeeds; it is logged once.
 */
static void accept_pause(struct stk_daemon *d, int err)
{
	d->accept_paused = true;
	if (d->accept_refused++)
		return;
	d->accept_paused_at = stk__now_ns();
	struct rlimit rl = { 0 };
	getrlimit(RLIMIT_NOFILE, &rl);
	stk_warn("accept: %s (descriptor limit %llu, %u clients): not accepting until a "
		 "descriptor frees",
		 strerror(err), (unsigned long long)rl.rlim_cur, d->live_sessions);
}

void stk__accept_resume(struct stk_daemon *d)
{
	if (!d->accept_paused || d->listen_fd < 0)
		return;
	d->accept_paused = false;
	listen_arm(d);
}

static void accept_cb(struct stk_op *op, int res)
{
	struct stk_daemon *d = stk_container_of(op, struct stk_daemon, listen_op);
	if (d->listen_fd < 0)
		return;
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e == EINTR || e == ECONNABORTED)
				continue;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				accept_pause(d, e);
				return; /* not re-armed: the listening socket would poll ready */
			}
			if (e != EAGAIN)
				stk_warn("accept: %s", strerror(e));
			break;
		}
		if (d->accept_refused) {
			stk_info("accepting clients again after %.1f s (%llu attempts refused)",
				 (double)(stk__now_ns() - d->accept_paused_at) / 1e9,
				 (unsigned long long)d->accept_refused);
			d->accept_refused = 0;
		}
		if (stk__session_add(d, fd))
			close(fd);
	}
	listen_arm(d);
}

/*
 * Takes PATH.lock (flock, held for the daemon's life) so that exactly one
 * stokerd owns a socket path: two started at once cannot both bind, and only
 * the holder ever unlinks the socket.  Returns the lock's fd or -errno.
 */
static int lock_socket_path(const char *path)
{
	char lp[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	snprintf(lp, sizeof(lp), "%s.lock", path);
	int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int r = -errno;
		stk_err("cannot open the lock file %s: %s", lp, strerror(-r));
		return r;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		if (r == -EWOULDBLOCK)
			stk_err("another stokerd%s%s holds %s: it serves %s", pid[0] ? " pid " : "",
				pid, lp, path);
		else
			stk_err("cannot lock %s: %s", lp, strerror(-r));
		close(fd);
		return r == -EWOULDBLOCK ? -EADDRINUSE : r;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		stk_warn("cannot write our pid to %s: %s", lp, strerror(errno));
	return fd;
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
	d->lock_fd = lock_socket_path(path);
	if (d->lock_fd < 0)
		return d->lock_fd;
	/* We hold the lock: a socket file there is a dead daemon's. */
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
	unlink(d->cfg.socket_path); /* ours: we hold the lock until we exit */
}

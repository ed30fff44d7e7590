/* SPDX-License-Identifier: MIT */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

enum { OP_POLL = 1, OP_TIMEOUT, OP_READ, OP_OPENAT2, OP_WRITE };

#define stk_container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

struct stk_loop {
	bool uring;
	struct io_uring ring;
	unsigned pending_sqes;

	/* Worker pool, shared by both backends. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct stk_work *jobs, **jobs_tail;
	struct stk_work *done;
	bool quit;
	unsigned nthreads;
	pthread_t *threads;
	int efd;
	struct stk_op efd_op;

	struct stk_op cancel_op; /* completions of cancel requests land here */

	/* poll(2) backend. */
	struct stk_op *polls;
	struct stk_op *cancelled; /* run with -ECANCELED on the next turn */
	struct stk_op *timers;	  /* sorted by deadline */
};

/* Queues w's done() for the loop thread and wakes it. Called with l->mu held. */
static void push_done(struct stk_loop *l, struct stk_work *w)
{
	w->next = l->done;
	l->done = w;
	uint64_t one = 1;
	if (write(l->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		stk_err("loop: eventfd write: %s", strerror(errno));
}

static void *worker(void *arg)
{
	struct stk_loop *l = arg;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->jobs && !l->quit)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->quit)
			break;
		struct stk_work *w = l->jobs;
		l->jobs = w->next;
		if (!l->jobs)
			l->jobs_tail = &l->jobs;
		pthread_mutex_unlock(&l->mu);
		w->work(w);
		pthread_mutex_lock(&l->mu);
		push_done(l, w);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

void stk_loop_post(struct stk_loop *l, struct stk_work *w)
{
	pthread_mutex_lock(&l->mu);
	push_done(l, w);
	pthread_mutex_unlock(&l->mu);
}

void stk_loop_work(struct stk_loop *l, struct stk_work *w)
{
	w->next = NULL;
	pthread_mutex_lock(&l->mu);
	*l->jobs_tail = w;
	l->jobs_tail = &w->next;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/* Runs done() for every finished job, oldest first. */
static void drain_done(struct stk_loop *l)
{
	uint64_t v;
	if (read(l->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		stk_err("pool: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&l->mu);
	struct stk_work *list = l->done, *rev = NULL;
	l->done = NULL;
	pthread_mutex_unlock(&l->mu);
	while (list) {
		struct stk_work *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct stk_work *n = rev->next;
		rev->done(rev);
		rev = n;
	}
}

static struct io_uring_sqe *get_sqe(struct stk_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe) {
		io_uring_submit(&l->ring);
		l->pending_sqes = 0;
		sqe = io_uring_get_sqe(&l->ring);
	}
	if (sqe)
		l->pending_sqes++;
	return sqe;
}

static void ignore_cb(struct stk_op *op, int res)
{
}

static void efd_cb(struct stk_op *op, int res)
{
	struct stk_loop *l = stk_container_of(op, struct stk_loop, efd_op);
	drain_done(l);
	if (stk_loop_poll(l, &l->efd_op, l->efd, POLLIN) < 0)
		stk_err("loop: cannot re-arm the pool's eventfd poll");
}

int stk_loop_create(bool try_uring, unsigned workers, struct stk_loop **out)
{
	struct stk_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->jobs_tail = &l->jobs;
	l->cancel_op.cb = ignore_cb;
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int r = -errno;
	if (l->efd < 0)
		goto err;
	if (try_uring) {
		/*
		 * Completion work runs when this thread asks for completions,
		 * not as an interrupt of it from whichever thread woke the
		 * socket (DEFER_TASKRUN, Linux 6.1; COOP_TASKRUN, 5.19): a local
		 * sender then pays a plain wakeup, not io_uring's task work.
		 * Both need every submit on the creating thread, which is the
		 * contract of this file anyway.
		 */
		static const unsigned tries[] = {
			IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
			IORING_SETUP_COOP_TASKRUN,
			0,
		};
		for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
			r = io_uring_queue_init(512, &l->ring, tries[i]);
			if (r != -EINVAL)
				break;
		}
		if (r == 0) {
			l->uring = true;
		} else {
			stk_warn("io_uring is not available (%s); using poll(2) and %u I/O threads",
				 strerror(-r), workers);
		}
	}
	l->threads = calloc(workers ? workers : 1, sizeof(*l->threads));
	if (!l->threads) {
		r = -ENOMEM;
		goto err;
	}
	for (unsigned i = 0; i < (workers ? workers : 1); i++) {
		r = -pthread_create(&l->threads[i], NULL, worker, l);
		if (r)
			goto err;
		l->nthreads++;
	}
	if (l->uring) { /* the poll(2) backend watches the eventfd itself */
		l->efd_op.cb = efd_cb;
		r = stk_loop_poll(l, &l->efd_op, l->efd, POLLIN);
		if (r)
			goto err;
	}
	*out = l;
	return 0;
err:
	stk_loop_destroy(l);
	return r;
}

void stk_loop_destroy(struct stk_loop *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->quit = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	for (unsigned i = 0; i < l->nthreads; i++)
		pthread_join(l->threads[i], NULL);
	free(l->threads);
	if (l->uring)
		io_uring_queue_exit(&l->ring);
	if (l->efd >= 0)
		close(l->efd);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

const char *stk_loop_backend(const struct stk_loop *l)
{
	return l->uring ? "io_uring" : "threads";
}

int stk_loop_poll(struct stk_loop *l, struct stk_op *op, int fd, short events)
{
	op->kind = OP_POLL;
	op->fd = fd;
	op->events = events;
	if (l->uring) {
		struct io_uring_sqe *sqe = get_sqe(l);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_add(sqe, fd, (unsigned)events);
		io_uring_sqe_set_data(sqe, op);
		return 0;
	}
	op->next = l->polls;
	l->polls = op;
	return 0;
}

int stk_loop_timeout(struct stk_loop *l, struct stk_op *op, uint64_t ns)
{
	op->kind = OP_TIMEOUT;
	if (l->uring) {
		op->ts.tv_sec = (long long)(ns / 1000000000u);
		op->ts.tv_nsec = (long long)(ns % 1000000000u);
		struct io_uring_sqe *sqe = get_sqe(l);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_timeout(sqe, &op->ts, 0, 0);
		io_uring_sqe_set_data(sqe, op);
		return 0;
	}
	op->deadline = stk__now_ns() + ns;
	struct stk_op **p = &l->timers;
	while (*p && (*p)->deadline <= op->deadline)
		p = &(*p)->next;
	op->next = *p;
	*p = op;
	return 0;
}

/* Unlinks op from a singly linked list. Returns true if it was there. */
static bool unlink_op(struct stk_op **list, struct stk_op *op)
{
	for (struct stk_op **p = list; *p; p = &(*p)->next) {
		if (*p == op) {
			*p = op->next;
			return true;
		}
	}
	return false;
}

int stk_loop_cancel(struct stk_loop *l, struct stk_op *op)
{
	if (op->kind != OP_POLL && op->kind != OP_TIMEOUT)
		return -ENOENT;
	if (l->uring) {
		struct io_uring_sqe *sqe = get_sqe(l);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_cancel(sqe, op, 0);
		io_uring_sqe_set_data(sqe, &l->cancel_op);
		return 0;
	}
	if (!unlink_op(op->kind == OP_POLL ? &l->polls : &l->timers, op))
		return -ENOENT;
	op->next = l->cancelled;
	l->cancelled = op;
	return 0;
}

/* Blocking I/O for the poll(2) backend, run on a pool thread. */
static void io_work(struct stk_work *w)
{
	struct stk_op *op = stk_container_of(w, struct stk_op, work);
	long r;
	if (op->kind == OP_READ) {
		do
			r = pread(op->fd, op->buf, op->len, (off_t)op->off);
		while (r < 0 && errno == EINTR);
	} else if (op->kind == OP_WRITE) {
		do
			r = pwrite(op->fd, op->buf, op->len, (off_t)op->off);
		while (r < 0 && errno == EINTR);
	} else {
		r = syscall(SYS_openat2, op->fd, op->path, &op->how, sizeof(op->how));
	}
	op->res = r < 0 ? -errno : (int)r;
}

static void io_done(struct stk_work *w)
{
	struct stk_op *op = stk_container_of(w, struct stk_op, work);
	op->cb(op, op->res);
}

/* A pread (OP_READ) or pwrite (OP_WRITE, buf only read from) of op. */
static int submit_rw(struct stk_loop *l, struct stk_op *op, int kind, int fd, void *buf, size_t len,
		     uint64_t off)
{
	op->kind = kind;
	op->fd = fd;
	op->buf = buf;
	op->len = len;
	op->off = off;
	if (l->uring) {
		struct io_uring_sqe *sqe = get_sqe(l);
		if (!sqe)
			return -EBUSY;
		if (kind == OP_READ)
			io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
		else
			io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
		io_uring_sqe_set_data(sqe, op);
		return 0;
	}
	op->work.work = io_work;
	op->work.done = io_done;
	stk_loop_work(l, &op->work);
	return 0;
}

int stk_loop_read(struct stk_loop *l, struct stk_op *op, int fd, void *buf, size_t len,
		  uint64_t off)
{
	return submit_rw(l, op, OP_READ, fd, buf, len, off);
}

int stk_loop_write(struct stk_loop *l, struct stk_op *op, int fd, const void *buf, size_t len,
		   uint64_t off)
{
	return submit_rw(l, op, OP_WRITE, fd, (void *)buf, len, off);
}

int stk_loop_openat2(struct stk_loop *l, struct stk_op *op, int dirfd, const char *path,
		     const struct open_how *how)
{
	op->kind = OP_OPENAT2;
	op->fd = dirfd;
	op->path = path;
	op->how = *how;
	if (l->uring) {
		struct io_uring_sqe *sqe = get_sqe(l);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_openat2(sqe, dirfd, path, &op->how);
		io_uring_sqe_set_data(sqe, op);
		return 0;
	}
	op->work.work = io_work;
	op->work.done = io_done;
	stk_loop_work(l, &op->work);
	return 0;
}

static int run_uring(struct stk_loop *l)
{
	int r = io_uring_submit_and_wait(&l->ring, 1);
	l->pending_sqes = 0;
	if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
		return r;
	/* Copy completions out first: callbacks submit new work and may touch the ring. */
	struct {
		struct stk_op *op;
		int res;
	} done[256];
	unsigned n = 0, head;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&l->ring, head, cqe) {
		done[n].op = io_uring_cqe_get_data(cqe);
		done[n].res = cqe->res;
		if (++n == 256)
			break;
	}
	io_uring_cq_advance(&l->ring, n);
	for (unsigned i = 0; i < n; i++) {
		struct stk_op *op = done[i].op;
		int res = done[i].res;
		if (op->kind == OP_TIMEOUT && res == -ETIME)
			res = 0;
		op->cb(op, res);
	}
	return 0;
}

static int run_poll(struct stk_loop *l)
{
	size_t n = 1;
	for (struct stk_op *op = l->polls; op; op = op->next)
		n++;
	struct pollfd *pfd = calloc(n, sizeof(*pfd));
	if (!pfd)
		return -ENOMEM;
	pfd[0] = (struct pollfd){ .fd = l->efd, .events = POLLIN };
	size_t i = 1;
	for (struct stk_op *op = l->polls; op; op = op->next, i++)
		pfd[i] = (struct pollfd){ .fd = op->fd, .events = op->events };
	int timeout = l->cancelled ? 0 : -1;
	if (l->timers && timeout) {
		uint64_t now = stk__now_ns();
		uint64_t d = l->timers->deadline > now ? l->timers->deadline - now : 0;
		timeout = (int)((d + 999999) / 1000000);
	}
	int r = poll(pfd, n, timeout);
	if (r < 0 && errno != EINTR) {
		r = -errno;
		free(pfd);
		return r;
	}
	/* Unlink the ready ops before calling anything: callbacks re-arm. */
	struct stk_op *ready = NULL, **tail = &ready, **p = &l->polls;
	i = 1;
	while (*p) {
		struct stk_op *op = *p;
		short rev = r > 0 ? pfd[i].revents : 0;
		i++;
		if (rev) {
			op->res = rev;
			*p = op->next;
			op->next = NULL;
			*tail = op;
			tail = &op->next;
		} else {
			p = &op->next;
		}
	}
	bool pool_ready = r > 0 && pfd[0].revents;
	free(pfd);
	uint64_t now = stk__now_ns();
	while (l->timers && l->timers->deadline <= now) {
		struct stk_op *op = l->timers;
		l->timers = op->next;
		op->res = 0;
		op->next = NULL;
		*tail = op;
		tail = &op->next;
	}
	while (l->cancelled) {
		struct stk_op *op = l->cancelled;
		l->cancelled = op->next;
		op->res = -ECANCELED;
		op->next = NULL;
		*tail = op;
		tail = &op->next;
	}
	while (ready) {
		struct stk_op *op = ready;
		ready = op->next;
		op->cb(op, op->res);
	}
	if (pool_ready)
		drain_done(l);
	return 0;
}

int stk_loop_run_once(struct stk_loop *l)
{
	return l->uring ? run_uring(l) : run_poll(l);
}

/* SPDX-License-Identifier: MIT */
/*
 * The daemon's event loop (the HTTP engine runs more of them, one per
 * thread).  io_uring drives socket readiness, file opens and reads, and
 * timers.  When the kernel refuses io_uring (seccomp, an old kernel, or
 * STOKER_NO_URING=1), the same calls run on poll(2) plus a thread pool, so
 * callers never know which backend they have.
 *
 * Contract of every submit function below: it returns 0 and the op's callback
 * is then called exactly once, on the loop thread, from stk_loop_run_once();
 * or it returns -errno and the callback is never called.  The op must stay
 * allocated until its callback runs.  The loop thread is the thread that
 * created the loop: it alone submits and runs (other threads use
 * stk_loop_post and stk_loop_work).
 */
#ifndef STOKER_LOOP_H
#define STOKER_LOOP_H

#include <linux/openat2.h>
#include <linux/time_types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stk_loop;

/* The struct of type that has member at p: how callbacks find their owner from an op. */
#define stk_container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* A job for the worker pool: work() runs on a pool thread, done() on the loop. */
struct stk_work {
	void (*work)(struct stk_work *w);
	void (*done)(struct stk_work *w);
	struct stk_work *next; /* private */
};

struct stk_op {
	/* res: bytes read or written, the new fd, revents for a poll, 0 for a timer, or -errno. */
	void (*cb)(struct stk_op *op, int res);
	/* The rest is private to the loop. */
	int kind;
	int fd;
	short events;
	void *buf;
	size_t len;
	uint64_t off;
	const char *path;
	struct open_how how;
	struct __kernel_timespec ts;
	uint64_t deadline;
	int res;
	struct stk_op *next;
	struct stk_work work;
};

/*
 * Creates a loop with a pool of workers threads.  try_uring false forces the
 * poll+threads backend.  Returns 0 with *out set, or -errno.
 */
int stk_loop_create(bool try_uring, unsigned workers, struct stk_loop **out);

/* Destroys the loop; ops still pending are abandoned. Accepts NULL. */
void stk_loop_destroy(struct stk_loop *l);

/* "io_uring" or "threads". */
const char *stk_loop_backend(const struct stk_loop *l);

/* One-shot readiness: res is the revents mask (POLLHUP and POLLERR always count). */
int stk_loop_poll(struct stk_loop *l, struct stk_op *op, int fd, short events);

/* Fires after ns nanoseconds with res 0. */
int stk_loop_timeout(struct stk_loop *l, struct stk_op *op, uint64_t ns);

/* pread(fd, buf, len, off): res is the byte count (maybe short) or -errno. */
int stk_loop_read(struct stk_loop *l, struct stk_op *op, int fd, void *buf, size_t len,
		  uint64_t off);

/*
 * pwrite(fd, buf, len, off): res is the byte count (maybe short) or -errno.
 * len must fit an int (the result does): callers write in chunks.
 */
int stk_loop_write(struct stk_loop *l, struct stk_op *op, int fd, const void *buf, size_t len,
		   uint64_t off);

/* openat2(dirfd, path, how): res is the new fd or -errno. path must outlive the op. */
int stk_loop_openat2(struct stk_loop *l, struct stk_op *op, int dirfd, const char *path,
		     const struct open_how *how);

/*
 * Cancels a pending poll or timeout.  Its callback still runs exactly once:
 * with -ECANCELED, or with its own result if it completed first.
 * Returns 0, or -ENOENT if op is not a pending poll or timeout.
 */
int stk_loop_cancel(struct stk_loop *l, struct stk_op *op);

/* Queues w on the worker pool. Always succeeds; done() is called exactly once. */
void stk_loop_work(struct stk_loop *l, struct stk_work *w);

/*
 * From any thread: runs w->done() on l's loop thread, in stk_loop_run_once()
 * (w->work is not used).  How another thread hands a result to a loop, or
 * wakes it.  Always succeeds.
 */
void stk_loop_post(struct stk_loop *l, struct stk_work *w);

/* Submits what is queued, waits for at least one completion, and runs callbacks. */
int stk_loop_run_once(struct stk_loop *l);

#endif

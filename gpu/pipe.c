/* SPDX-License-Identifier: MIT */
/*
 * The double-buffered batch pipe (stoker/gpu.h, stk_gpu_pipe_*): two slots of
 * device memory.  A slot goes FREE -> COPYING (submit: stk_get_batch(), the
 * copies queued on the copy stream, an event "copied" recorded after them)
 * -> HANDED (next: the host waits for "copied", releases the views, makes the
 * compute stream wait on it) -> FREE (the next next() or the submit that
 * reuses it records "consumed" on the compute stream; the slot's next copies
 * wait for it on the copy stream, so they never overwrite a batch that
 * compute is still reading).
 */
#include "stoker/gpu.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu_internal.h"

#define NSLOT 2

enum { FREE, COPYING, HANDED };

struct slot {
	int state;
	uint64_t seq;	       /* submit order */
	unsigned char *dev;    /* max_bytes of device memory */
	cudaEvent_t copied;    /* on the copy stream, after the slot's copies */
	cudaEvent_t consumed;  /* on the compute stream, once its batch was done with */
	bool consumed_pending; /* consumed recorded; the copy stream has not waited on it */
	cudaStream_t compute;  /* HANDED: where it went */
	struct stk_view *views;
	uint64_t *off, *size;
	uint32_t *index;
	size_t n, cap;
	uint64_t bytes;
};

struct stk_gpu_pipe {
	struct stk_dataset *ds; /* borrowed */
	int device;
	cudaStream_t copy;	       /* borrowed */
	struct stk_gpu_stager *stager; /* copies on copy; pins what the arena does not hold */
	size_t max_bytes;
	uint64_t seq;
	struct slot slot[NSLOT];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int stk_gpu_pipe_create(struct stk_dataset *ds, int device, void *copy_stream,
			size_t max_batch_bytes, struct stk_gpu_pipe **out)
{
	struct stk_gpu_pipe *p;
	cudaError_t e = cudaSuccess;
	const char *call = NULL;
	int prev, r;

	if (!out)
		return stk__gpu_fail(-EINVAL, "stk_gpu_pipe_create: out is NULL");
	*out = NULL;
	if (!ds || !max_batch_bytes)
		return stk__gpu_fail(-EINVAL, "stk_gpu_pipe_create: NULL dataset or no bytes");
	p = calloc(1, sizeof(*p));
	if (!p)
		return stk__gpu_fail(-ENOMEM, "stk_gpu_pipe_create: out of memory");
	p->ds = ds;
	p->device = device;
	p->copy = copy_stream;
	p->max_bytes = max_batch_bytes;
	/* On failure the stager's or the device's message stays. */
	r = stk_gpu_stager_create(device, copy_stream, &p->stager);
	if (r)
		goto err;
	r = stk__gpu_enter(device, &prev);
	if (r)
		goto err;
	for (int i = 0; i < NSLOT && e == cudaSuccess; i++) {
		struct slot *sl = &p->slot[i];

		e = cudaMalloc((void **)&sl->dev, max_batch_bytes);
		call = "cudaMalloc";
		if (e == cudaSuccess) {
			e = cudaEventCreateWithFlags(&sl->copied, cudaEventDisableTiming);
			call = "cudaEventCreateWithFlags";
		}
		if (e == cudaSuccess)
			e = cudaEventCreateWithFlags(&sl->consumed, cudaEventDisableTiming);
	}
	stk__gpu_leave(device, prev);
	if (e != cudaSuccess) {
		r = stk__gpu_cuda_fail(call, e);
		goto err;
	}
	*out = p;
	return 0;
err:
	stk_gpu_pipe_destroy(p);
	return r;
}

/* Ends the batch of a HANDED slot: "consumed" goes on its compute stream. */
static int retire(struct slot *sl)
{
	cudaError_t e;

	if (sl->state != HANDED)
		return 0;
	e = cudaEventRecord(sl->consumed, sl->compute);
	if (e != cudaSuccess)
		return stk__gpu_cuda_fail("cudaEventRecord", e);
	sl->consumed_pending = true;
	sl->state = FREE;
	return 0;
}

/* Room for n objects in sl. */
static int reserve(struct slot *sl, size_t n)
{
	struct stk_view *v;
	uint64_t *off, *size;
	uint32_t *index;

	if (n <= sl->cap)
		return 0;
	v = realloc(sl->views, n * sizeof(*v));
	if (v)
		sl->views = v;
	off = realloc(sl->off, n * sizeof(*off));
	if (off)
		sl->off = off;
	size = realloc(sl->size, n * sizeof(*size));
	if (size)
		sl->size = size;
	index = realloc(sl->index, n * sizeof(*index));
	if (index)
		sl->index = index;
	if (!v || !off || !size || !index)
		return stk__gpu_fail(-ENOMEM, "stk_gpu_pipe_submit: out of memory");
	sl->cap = n;
	return 0;
}

/* Places idx's objects in sl, each at a multiple of STK_GPU_PIPE_ALIGN. */
static int layout(struct stk_gpu_pipe *p, struct slot *sl, const uint32_t *idx, size_t n)
{
	uint64_t at = 0, size;
	int r;

	for (size_t i = 0; i < n; i++) {
		r = stk_dataset_object(p->ds, idx[i], NULL, &size);
		if (r)
			return stk__gpu_fail(r, "stk_gpu_pipe_submit: %s", stk_errmsg());
		at = (at + STK_GPU_PIPE_ALIGN - 1) & ~(uint64_t)(STK_GPU_PIPE_ALIGN - 1);
		if (size > p->max_bytes || at > p->max_bytes - size)
			return stk__gpu_fail(-E2BIG,
					     "stk_gpu_pipe_submit: a batch of %zu objects is past "
					     "max_batch_bytes %zu at object %u",
					     n, p->max_bytes, idx[i]);
		sl->off[i] = at;
		sl->size[i] = size;
		sl->index[i] = idx[i];
		at += size;
	}
	sl->n = n;
	sl->bytes = at;
	return 0;
}

int stk_gpu_pipe_submit(struct stk_gpu_pipe *p, const uint32_t *idx, size_t n)
{
	struct slot *sl = NULL;
	cudaError_t e;
	int prev, r;

	if (!p || !idx || !n)
		return stk__gpu_fail(-EINVAL, "stk_gpu_pipe_submit: NULL pipe or indices, or none");
	for (int i = 0; i < NSLOT; i++)
		if (p->slot[i].state != COPYING &&
		    (!sl || (sl->state != FREE && p->slot[i].state == FREE)))
			sl = &p->slot[i];
	if (!sl)
		return stk__gpu_fail(-EBUSY, "stk_gpu_pipe_submit: both slots hold batches not "
					     "taken by stk_gpu_pipe_next()");
	r = reserve(sl, n);
	if (!r)
		r = layout(p, sl, idx, n);
	if (r)
		return r;
	r = stk__gpu_enter(p->device, &prev);
	if (r)
		return r;
	r = retire(sl);
	if (r)
		goto out;
	r = stk_get_batch(p->ds, idx, n, sl->views);
	if (r) {
		stk__gpu_fail(r, "stk_gpu_pipe_submit: %s", stk_errmsg());
		goto out;
	}
	if (sl->consumed_pending) {
		e = cudaStreamWaitEvent(p->copy, sl->consumed, 0);
		if (e != cudaSuccess) {
			r = stk__gpu_cuda_fail("cudaStreamWaitEvent", e);
			goto release;
		}
		sl->consumed_pending = false;
	}
	for (size_t i = 0; i < n; i++) {
		r = stk_gpu_copy_view_async(p->stager, &sl->views[i], 0, sl->size[i],
					    sl->dev + sl->off[i]);
		if (r)
			goto release;
	}
	e = cudaEventRecord(sl->copied, p->copy);
	if (e != cudaSuccess) {
		r = stk__gpu_cuda_fail("cudaEventRecord", e);
		goto release;
	}
	sl->state = COPYING;
	sl->seq = ++p->seq;
	goto out;
release:
	/* Copies queued may still read the views. */
	if (cudaStreamSynchronize(p->copy) != cudaSuccess)
		(void)cudaGetLastError();
	stk_release_batch(sl->views, n);
out:
	stk__gpu_leave(p->device, prev);
	return r;
}

int stk_gpu_pipe_next(struct stk_gpu_pipe *p, void *compute_stream, struct stk_gpu_batch *b)
{
	struct slot *sl = NULL;
	uint64_t t0, wait = 0;
	cudaError_t e;
	int prev, r;

	if (!p || !b)
		return stk__gpu_fail(-EINVAL, "stk_gpu_pipe_next: NULL pipe or batch");
	for (int i = 0; i < NSLOT; i++)
		if (p->slot[i].state == COPYING && (!sl || p->slot[i].seq < sl->seq))
			sl = &p->slot[i];
	if (!sl)
		return stk__gpu_fail(-EAGAIN, "stk_gpu_pipe_next: no batch submitted");
	r = stk__gpu_enter(p->device, &prev);
	if (r)
		return r;
	for (int i = 0; i < NSLOT && !r; i++)
		r = retire(&p->slot[i]);
	if (r)
		goto out;
	t0 = now_ns();
	e = cudaEventQuery(sl->copied);
	if (e == cudaErrorNotReady) {
		e = cudaEventSynchronize(sl->copied);
		wait = now_ns() - t0;
	}
	if (e != cudaSuccess) {
		r = stk__gpu_cuda_fail("cudaEventSynchronize", e);
		/* The copies ended one way or another: nothing reads the views. */
		stk_release_batch(sl->views, sl->n);
		sl->state = FREE;
		goto out;
	}
	/* The copies are done: the objects' holds can go before compute starts. */
	stk_release_batch(sl->views, sl->n);
	if (wait)
		stk_report_wait(p->ds, sl->index[0], wait);
	e = cudaStreamWaitEvent(compute_stream, sl->copied, 0);
	if (e != cudaSuccess) {
		r = stk__gpu_cuda_fail("cudaStreamWaitEvent", e);
		sl->state = FREE;
		goto out;
	}
	sl->state = HANDED;
	sl->compute = compute_stream;
	*b = (struct stk_gpu_batch){ .data = sl->dev,
				     .n = sl->n,
				     .offsets = sl->off,
				     .sizes = sl->size,
				     .index = sl->index,
				     .bytes = sl->bytes,
				     .wait_ns = wait };
out:
	stk__gpu_leave(p->device, prev);
	return r;
}

void stk_gpu_pipe_destroy(struct stk_gpu_pipe *p)
{
	int prev;

	if (!p)
		return;
	if (stk__gpu_enter(p->device, &prev) == 0) {
		for (int i = 0; i < NSLOT; i++) {
			struct slot *sl = &p->slot[i];

			if (sl->state == COPYING) {
				if (cudaEventSynchronize(sl->copied) != cudaSuccess)
					(void)cudaGetLastError();
				stk_release_batch(sl->views, sl->n);
				sl->state = FREE;
			}
			if (retire(sl) == 0 && sl->consumed_pending &&
			    cudaEventSynchronize(sl->consumed) != cudaSuccess)
				(void)cudaGetLastError();
			if (sl->dev && cudaFree(sl->dev) != cudaSuccess)
				(void)cudaGetLastError();
			if (sl->copied)
				(void)cudaEventDestroy(sl->copied);
			if (sl->consumed)
				(void)cudaEventDestroy(sl->consumed);
		}
		stk__gpu_leave(p->device, prev);
	}
	for (int i = 0; i < NSLOT; i++) {
		free(p->slot[i].views);
		free(p->slot[i].off);
		free(p->slot[i].size);
		free(p->slot[i].index);
	}
	stk_gpu_stager_destroy(p->stager);
	free(p);
}

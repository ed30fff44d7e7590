/* SPDX-License-Identifier: MIT */
/*
 * stoker/gpu.h: asynchronous host-to-device copies out of stoker views, in
 * libstoker_gpu (link -lstoker_gpu -lstoker).
 *
 * A trainer on CUDA gets an object's read-only view (stk_get()) and wants its
 * bytes on the device while the device computes.  cudaMemcpyAsync() only
 * overlaps compute when the host memory is page-locked.  Three levels:
 *
 *  1. The pinned arena.  stk_gpu_pin_arena() registers (cudaHostRegister)
 *     each of the daemon's RAM segments once, when libstoker maps it into
 *     this process, and unregisters it before libstoker unmaps it, so every
 *     view into the arena can be copied with no registration per get:
 *
 *	stk_gpu_pin_arena(client, dev);                      once, after stk_connect()
 *	stk_gpu_stager_create(dev, stream, &s);              one per stream
 *	stk_get(ds, i, &view);
 *	stk_gpu_copy_view_async(s, &view, 0, view.size, dptr);  queues the copy only
 *	...  kernels on stream read dptr  ...
 *	stk_gpu_sync(s);                                     or an event: then
 *	stk_release(&view);                                  the copy is done
 *
 *  2. Host pointers.  stk_gpu_copy_async() copies from any host memory (a
 *     view, a memfd from stk_get_fd() the caller mapped); where the bytes
 *     are not in the pinned arena, the stager pins the pages it copies from
 *     the first time it sees them and keeps the registration until
 *     stk_gpu_unregister() or stk_gpu_stager_destroy().
 *
 *  3. The batch pipe.  stk_gpu_pipe_*() gets a training step's batch
 *     (stk_get_batch()), copies it into one of two device buffers on a copy
 *     stream while the compute stream works on the previous one, and hands
 *     it over with CUDA events (see stk_gpu_pipe_create()).
 *
 * A copy of (view, offset, len) to a device pointer on a stream is
 * stk_gpu_copy_view_async() on a stager made for that stream: one stager
 * per stream.
 *
 * Conventions, as in stoker.h:
 *  - int functions return 0 or a negative errno.  CUDA errors are mapped at
 *    this boundary: cudaErrorMemoryAllocation -> -ENOMEM; no device, no or a
 *    too old driver, an invalid device -> -ENODEV; cudaErrorInvalidValue ->
 *    -EINVAL; cudaErrorNotSupported -> -ENOTSUP; anything else -> -EIO.
 *  - After a failure, stk_gpu_errmsg() names the CUDA call and its error
 *    string.  The runtime's last error (cudaGetLastError()) is reset, so the
 *    trainer's own error checks never see a failure of ours.
 *  - Built without CUDA (the CMake variable STOKER_HAVE_CUDA off),
 *    libstoker_gpu still exists and every function below with it:
 *    stk_gpu_available() returns 0 saying "built without CUDA" and the rest
 *    return -ENOTSUP, so callers need no #ifdef.
 *  - Host bytes being copied must stay mapped until the copy completes: do
 *    not release a view (nor unpin the arena) while a copy from it may be in
 *    flight.
 *  - Fork: CUDA does not survive fork(); a forked child must not use
 *    anything made here in its parent.  libstoker calls no map hooks in a
 *    forked child, so the child never touches the parent's registrations.
 *
 * A stager or a pipe is not thread-safe: use one per stream, from one thread
 * at a time.  The pinned arena's table is process-wide and locked.
 */
#ifndef STOKER_GPU_H
#define STOKER_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "stoker.h"

#ifdef __cplusplus
extern "C" {
#endif

struct stk_gpu_stager;

/*
 * Returns 1 if a CUDA device can be used, else 0 with a reason for people
 * written to why (NUL-terminated, truncated to len bytes; why may be NULL),
 * e.g. "cudaGetDeviceCount: no CUDA-capable device is detected".
 */
STK_EXTERN int stk_gpu_available(char *why, size_t len);

/*
 * Creates a stager that copies to device (a CUDA ordinal) on stream, a
 * cudaStream_t passed as void * (NULL: the legacy default stream).  The stream
 * is borrowed: it must outlive the stager.  The stager makes device current
 * around its own CUDA calls and restores the caller's current device, so a
 * thread that never chose a device does not create a context on device 0.
 * Returns 0 with *out set; -EINVAL for a NULL out or a negative device;
 * -ENODEV when device does not exist or no driver or device is usable;
 * -ENOMEM; -ENOTSUP without CUDA.  On failure *out is NULL (if out is not).
 * The caller frees *out with stk_gpu_stager_destroy().
 */
STK_EXTERN int stk_gpu_stager_create(int device, void *stream, struct stk_gpu_stager **out);

/*
 * Waits for the stream, then unregisters every range the stager registered,
 * and frees it.  Accepts NULL.
 */
STK_EXTERN void stk_gpu_stager_destroy(struct stk_gpu_stager *s);

/*
 * Queues a copy of len bytes from host to dst_device on the stager's stream
 * and returns without waiting for it (stk_gpu_sync() waits).  The host bytes
 * must stay mapped and unchanged until the copy completes.
 *
 * Pinning: bytes inside a segment stk_gpu_pin_arena() registered need
 * none.  Elsewhere the driver pins whole pages, so the stager registers the
 * page-aligned range enclosing [host, host + len), which lies inside the
 * caller's mapping because mappings are made of whole pages.  A range already
 * inside one of the stager's registrations is not registered again.  A range
 * that overlaps some of them is registered as one range together with them
 * (after waiting for the stream, since queued copies may read the ranges it
 * drops), because the driver refuses overlapping registrations.  Ranges are
 * registered read-only (cudaHostRegisterReadOnly | cudaHostRegisterPortable),
 * or read-write where the device refuses read-only.  If the pages are already
 * registered by someone else (another stager, the application), the copy uses
 * that registration and this stager owns none of it.  Lookups are linear in
 * the number of registrations held.
 *
 * Returns 0 (also for len 0, which does nothing); -EINVAL for a NULL s, a
 * NULL pointer with a non-zero len, or a range past the end of the address
 * space; -ENOMEM when the stager's table or the pinning fails for memory;
 * otherwise the mapped error of cudaHostRegister or cudaMemcpyAsync.  When
 * registering fails no copy is queued.
 */
STK_EXTERN int stk_gpu_copy_async(struct stk_gpu_stager *s, void *dst_device, const void *host,
				  size_t len);

/*
 * Unregisters every registration of the stager that overlaps the page-aligned
 * range enclosing [host, host + len), after waiting for the stream.  Call it
 * before the host range is unmapped: a registration outliving its mapping
 * would make a later copy from a new mapping at the same address read the old,
 * still pinned pages.  Registrations only partly inside the range are dropped
 * whole; a later copy registers again what it needs.
 * Returns 0 (also when nothing was registered there); -EINVAL for a NULL s or
 * a range past the end of the address space; the mapped error of
 * cudaStreamSynchronize, in which case the registrations are dropped anyway.
 */
STK_EXTERN int stk_gpu_unregister(struct stk_gpu_stager *s, const void *host, size_t len);

/*
 * Waits until every copy queued on the stager's stream (and all other work on
 * that stream) has completed.  Returns 0; -EINVAL for a NULL s; the mapped
 * error of cudaStreamSynchronize, which includes errors of earlier work.
 */
STK_EXTERN int stk_gpu_sync(struct stk_gpu_stager *s);

/*
 * Queues a copy of len bytes at off into the view v (from stk_get() or
 * stk_get_batch()) to dst_device on the stager's stream, like
 * stk_gpu_copy_async() of v->data + off: with no registration when the view
 * lies in a segment stk_gpu_pin_arena() registered, else pinning its pages
 * in the stager.  v must stay held until the copy completes.  Returns 0
 * (also for len 0); -EINVAL for a NULL s, v or dst_device, or bytes past
 * the object's end; otherwise as stk_gpu_copy_async().
 */
STK_EXTERN int stk_gpu_copy_view_async(struct stk_gpu_stager *s, const struct stk_view *v,
				       uint64_t off, size_t len, void *dst_device);

/*
 * Pins the arena of client c for device (a CUDA ordinal): every segment c
 * maps from now on, and every one it holds already, is registered with
 * cudaHostRegister() once (cudaHostRegisterReadOnly | Portable, or Portable
 * alone where the device refuses read-only), and unregistered before c
 * unmaps it (libstoker's stk_set_map_hooks(), which this installs).  Copies
 * from views in those segments (stk_gpu_copy_view_async(),
 * stk_gpu_copy_async(), the pipe) then need no registration.  A segment the
 * driver refuses later (out of pinnable memory) is left unregistered, and
 * copies from it pin per range as a stager does.  The pinning lasts until
 * stk_gpu_unpin_arena(c), or until c is freed (stk_close() and the release
 * of its last view).
 * Returns 0; -EINVAL for a NULL c or a negative device; -ENODEV when device
 * does not exist or no driver or device is usable; -EBUSY when c is pinned
 * already (or has other map hooks); -ECHILD in a forked child; -ENOMEM; the
 * mapped error of cudaHostRegister() when a segment held already could not
 * be registered (then nothing stays registered); -ENOTSUP without CUDA.
 */
STK_EXTERN int stk_gpu_pin_arena(struct stk_client *c, int device);

/*
 * Unregisters every segment stk_gpu_pin_arena() registered for c and stops
 * following c's mappings.  No copy from c's views may be in flight.
 * Returns 0 (also when c was not pinned); -EINVAL for a NULL c; -ECHILD in
 * a forked child; -ENOTSUP without CUDA.
 */
STK_EXTERN int stk_gpu_unpin_arena(struct stk_client *c);

/* Device offsets of the objects of a pipe's batch are multiples of this. */
#define STK_GPU_PIPE_ALIGN 256

struct stk_gpu_pipe;

/* A batch on the device, from stk_gpu_pipe_next(); its arrays belong to the pipe. */
struct stk_gpu_batch {
	void *data;		 /* device memory: object i at data + offsets[i] */
	size_t n;		 /* objects */
	const uint64_t *offsets; /* n, each a multiple of STK_GPU_PIPE_ALIGN */
	const uint64_t *sizes;	 /* n */
	const uint32_t *index;	 /* n: the dataset's indices, as submitted */
	uint64_t bytes;		 /* of data used, padding included */
	uint64_t wait_ns;	 /* how long stk_gpu_pipe_next() blocked on the copy */
};

/*
 * Creates a pipe that copies batches of ds's objects to device on
 * copy_stream (a cudaStream_t as void *, borrowed: it must outlive the
 * pipe), through two device buffers of max_batch_bytes each (cudaMalloc).
 * Pin the client's arena first (stk_gpu_pin_arena()) or every batch's
 * pages are registered by the pipe's own stager.  The loop, where step i's
 * copy overlaps step i-1's compute:
 *
 *	stk_gpu_pipe_create(ds, dev, copy_stream, max_bytes, &p);
 *	stk_gpu_pipe_submit(p, idx[0], n);
 *	for (i = 0; i < steps; i++) {
 *		stk_gpu_pipe_next(p, compute_stream, &b);     batch i, on compute_stream
 *		if (i + 1 < steps)
 *			stk_gpu_pipe_submit(p, idx[i + 1], n);  its copy starts now
 *		kernel<<<g, t, 0, compute_stream>>>(b.data, b.offsets ...);
 *	}
 *	stk_gpu_pipe_destroy(p);
 *
 * (Submitting before next() works too: at most two batches are submitted
 * and not yet taken.)  Returns 0 with *out set; -EINVAL for a NULL out or
 * ds, or max_batch_bytes 0; the errors of stk_gpu_stager_create(); the
 * mapped error of cudaMalloc() or cudaEventCreateWithFlags(); -ENOTSUP
 * without CUDA.  On failure *out is NULL.  Free with stk_gpu_pipe_destroy()
 * before the dataset is closed and the streams are destroyed.
 */
STK_EXTERN int stk_gpu_pipe_create(struct stk_dataset *ds, int device, void *copy_stream,
				   size_t max_batch_bytes, struct stk_gpu_pipe **out);

/*
 * Gets objects idx[0..n) (stk_get_batch(), which blocks until they are
 * resident) and queues their copies on the copy stream into a free slot,
 * each object at the next multiple of STK_GPU_PIPE_ALIGN, then records the
 * slot's "copied" event.  A slot whose batch was handed out is reused only
 * after that batch's compute: the copies wait (cudaStreamWaitEvent) on a
 * "consumed" event recorded on the compute stream by the stk_gpu_pipe_next()
 * after it, or by this call.  So all work reading a batch must be queued on
 * its compute stream before the next stk_gpu_pipe_next() or
 * stk_gpu_pipe_submit().  Returns 0; -EINVAL for a NULL p or idx or n 0;
 * -EBUSY when two batches wait to be taken; -ERANGE for an index past the
 * catalog; -E2BIG when the batch does not fit max_batch_bytes; the errors
 * of stk_get_batch() and stk_gpu_copy_view_async(); the mapped error of
 * cudaEventRecord() or cudaStreamWaitEvent().  On failure no batch is
 * queued and no view is held.
 */
STK_EXTERN int stk_gpu_pipe_submit(struct stk_gpu_pipe *p, const uint32_t *idx, size_t n);

/*
 * Takes the oldest submitted batch into *b, for compute_stream (void * as a
 * cudaStream_t; NULL: the legacy default stream).  The previous batch handed
 * out is done with (its "consumed" event is recorded on its compute stream).
 * Then the host waits for the batch's copies (cudaEventSynchronize on
 * "copied", when cudaEventQuery says they are not done), releases the
 * batch's views, and makes compute_stream wait on "copied".  Time blocked
 * here is the trainer's stall on the copy: it is reported to the daemon as
 * delivery stall (stk_report_wait(), docs/stall.md) and in b->wait_ns; it
 * overstates the device's idle time when compute_stream was still busy.
 * b's memory is valid until the next stk_gpu_pipe_next(), or the
 * stk_gpu_pipe_submit() that reuses it.  Returns 0; -EINVAL for a NULL p or
 * b; -EAGAIN when no batch was submitted; the mapped error of
 * cudaEventSynchronize() (its views are released), cudaEventRecord() or
 * cudaStreamWaitEvent().
 */
STK_EXTERN int stk_gpu_pipe_next(struct stk_gpu_pipe *p, void *compute_stream,
				 struct stk_gpu_batch *b);

/*
 * Waits for the pipe's copies and for the compute of the batch handed out
 * last, releases every view, frees the device buffers and events, and
 * frees p.  Accepts NULL.
 */
STK_EXTERN void stk_gpu_pipe_destroy(struct stk_gpu_pipe *p);

/*
 * Returns this thread's message for its last failed stk_gpu_ call, or "".
 * The string is thread-local and stays valid until the thread's next failing
 * stk_gpu_ call.
 */
STK_EXTERN const char *stk_gpu_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif /* STOKER_GPU_H */

/* SPDX-License-Identifier: MIT */
/*
 * stoker/gpu.h: asynchronous host-to-device copies out of stoker views.
 *
 * A trainer on CUDA gets an object's read-only view (stk_get()) and wants its
 * bytes on the device while the device computes.  cudaMemcpyAsync() only
 * overlaps compute when the host memory is page-locked, so a stager pins
 * (cudaHostRegister) the pages it copies from the first time it sees them and
 * keeps the registration until the caller says the mapping is going away:
 *
 *	stk_gpu_stager_create(dev, stream, &s);
 *	stk_get(ds, i, &view);
 *	stk_gpu_copy_async(s, dptr, view.data, view.size);  pins once, queues the copy
 *	...  kernels on stream read dptr  ...
 *	stk_gpu_unregister(s, view.data, view.size);        before the view is unmapped
 *	stk_release(&view);
 *	stk_gpu_stager_destroy(s);
 *
 * Conventions, as in stoker.h:
 *  - int functions return 0 or a negative errno.  CUDA errors are mapped at
 *    this boundary: cudaErrorMemoryAllocation -> -ENOMEM; no device, no or a
 *    too old driver, an invalid device -> -ENODEV; cudaErrorInvalidValue ->
 *    -EINVAL; cudaErrorNotSupported -> -ENOTSUP; anything else -> -EIO.
 *  - After a failure, stk_gpu_errmsg() names the CUDA call and its error
 *    string.  The runtime's last error (cudaGetLastError()) is reset, so the
 *    trainer's own error checks never see a failure of ours.
 *  - Built without CUDA (the CMake variable STOKER_HAVE_CUDA off), every
 *    function below still exists: stk_gpu_available() returns 0 saying "built
 *    without CUDA" and the rest return -ENOTSUP, so callers need no #ifdef.
 *
 * A stager is not thread-safe: use one per stream, from one thread at a time.
 */
#ifndef STOKER_GPU_H
#define STOKER_GPU_H

#include <stddef.h>

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
 * Pinning: the driver pins whole pages, so the stager registers the
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
 * Returns this thread's message for its last failed stk_gpu_ call, or "".
 * The string is thread-local and stays valid until the thread's next failing
 * stk_gpu_ call.
 */
STK_EXTERN const char *stk_gpu_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif /* STOKER_GPU_H */

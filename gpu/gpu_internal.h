/* SPDX-License-Identifier: MIT */
/* What the CUDA path's files share (gpu/): error reporting and the pinned arena's table. */
#ifndef STOKER_GPU_INTERNAL_H
#define STOKER_GPU_INTERNAL_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>

/* Records a failure for stk_gpu_errmsg() and returns err. */
int stk__gpu_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Records a failed CUDA call for stk_gpu_errmsg() and returns its errno.  The
 * runtime's last error is reset so that the trainer's own cudaGetLastError()
 * after its next launch does not report our failure as its own.
 */
int stk__gpu_cuda_fail(const char *call, cudaError_t e);
/* cudaError_t to a negative errno (stoker/gpu.h lists the mapping). */
int stk__gpu_errno(cudaError_t e);

/*
 * Makes device current on the calling thread, saving the previous one in
 * *prev.  Returns 0 or the mapped error (recorded).
 */
int stk__gpu_enter(int device, int *prev);
/* Restores the device stk__gpu_enter() saved. */
void stk__gpu_leave(int device, int prev);

/*
 * cudaHostRegister() of a page-aligned range, read-only and portable, or
 * portable alone where the device refuses read-only.  Returns the runtime's
 * answer (the last error is left to the caller).
 */
cudaError_t stk__gpu_register(void *p, size_t len);

/* Whether [p, p + len) lies inside one range the pinned arena registered (arena.c). */
bool stk__gpu_arena_covers(const void *p, size_t len);

/* The stager's stream (stager.c), for the pipe that owns one. */
struct stk_gpu_stager;
cudaStream_t stk__gpu_stager_stream(const struct stk_gpu_stager *s);

#endif

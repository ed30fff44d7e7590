/* SPDX-License-Identifier: MIT */
/*
 * Controls for the fake CUDA runtime in fake_cudart.c, which tests link
 * instead of libcudart to watch what gpu/stager.c asks of the driver.
 *
 * The fake keeps a trace of the calls that act on memory or devices, each
 * followed by "=<cudaError_t>" when it failed, separated by spaces:
 *	set(D)		cudaSetDevice(D)
 *	reg(O,N,0xF)	cudaHostRegister(base + O, N, F)
 *	unreg(O)	cudaHostUnregister(base + O)
 *	copy(O,N)	cudaMemcpyAsync(dst, base + O, N, HostToDevice, stream) from
 *			pinned memory; pcopy(O,N) when the source was not pinned
 *	sync		cudaStreamSynchronize()
 * Like old drivers, it refuses registrations that are not page-aligned, and
 * like every driver, registrations that overlap one it holds.  Copies are
 * performed with memcpy(), so dst may be host memory standing in for a device.
 */
#ifndef STK_TESTS_FAKE_CUDART_H
#define STK_TESTS_FAKE_CUDART_H

#include <cuda_runtime_api.h>
#include <stddef.h>

/* Clears the trace, registrations and failures; one device, current device 0. */
void fake_reset(const void *base);

/* Clears the trace only. */
void fake_clear_trace(void);

/* Returns the trace since fake_reset() or fake_clear_trace(). */
const char *fake_trace(void);

/* Makes the next n calls of the runtime function named fn fail with err. */
void fake_fail(const char *fn, cudaError_t err, int n);

/* Returns how many registrations the fake driver holds. */
size_t fake_nregs(void);

extern int fake_ndevices;	      /* reported by cudaGetDeviceCount() */
extern int fake_current;	      /* the calling thread's current device */
extern cudaStream_t fake_last_stream; /* of the last cudaMemcpyAsync() */

#endif

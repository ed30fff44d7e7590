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
 *	malloc(N), free	cudaMalloc(), cudaFree() (host memory standing in)
 *	evcreate(0xF)	cudaEventCreateWithFlags(); events are E0, E1 ... in order
 *	evrec(E,S)	cudaEventRecord(event E, stream S as a number)
 *	evwait(S,E)	cudaStreamWaitEvent(stream S, event E)
 *	evquery(E)	cudaEventQuery(); "=busy" when it answered cudaErrorNotReady
 *	evsync(E)	cudaEventSynchronize()
 *	evdestroy(E)	cudaEventDestroy()
 * Like old drivers, it refuses registrations that are not page-aligned, and
 * like every driver, registrations that overlap one it holds.  Copies are
 * performed with memcpy(), so dst may be host memory standing in for a device.
 */
#ifndef STK_TESTS_FAKE_CUDART_H
#define STK_TESTS_FAKE_CUDART_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* How many times the runtime function named fn was called since fake_reset(). */
int fake_calls(const char *fn);

/* Whether [p, p + len) lies inside one registration the fake driver holds. */
bool fake_registered(const void *p, size_t len);

/* The first FAKE_COPIES successful cudaMemcpyAsync() calls since fake_reset(). */
#define FAKE_COPIES 256
struct fake_copy {
	void *dst;
	const void *src;
	size_t len;
	cudaStream_t stream;
	bool pinned; /* the source lay inside one registration */
};
const struct fake_copy *fake_copies(size_t *n);

extern int fake_not_ready;	      /* cudaEventQuery() answers cudaErrorNotReady this often */
extern uint64_t fake_sync_ns;	      /* cudaEventSynchronize() sleeps this long */
extern int fake_ndevices;	      /* reported by cudaGetDeviceCount() */
extern int fake_current;	      /* the calling thread's current device */
extern cudaStream_t fake_last_stream; /* of the last cudaMemcpyAsync() */

#endif

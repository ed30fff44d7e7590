/* SPDX-License-Identifier: MIT */
/* A fake CUDA runtime: see fake_cudart.h. */
#include "fake_cudart.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fake_ndevices;
int fake_current;
cudaStream_t fake_last_stream;

static struct {
	uintptr_t lo, hi;
} regs[64];
static size_t nregs;
static char trace[8192];
static uintptr_t base;
static cudaError_t last;
static struct {
	const char *fn;
	cudaError_t err;
	int n;
} inj;

void fake_clear_trace(void)
{
	trace[0] = '\0';
}

void fake_reset(const void *b)
{
	base = (uintptr_t)b;
	nregs = 0;
	fake_clear_trace();
	last = cudaSuccess;
	inj.n = 0;
	fake_ndevices = 1;
	fake_current = 0;
	fake_last_stream = NULL;
}

const char *fake_trace(void)
{
	return trace;
}

void fake_fail(const char *fn, cudaError_t err, int n)
{
	inj.fn = fn;
	inj.err = err;
	inj.n = n;
}

size_t fake_nregs(void)
{
	return nregs;
}

static long long off(const void *p)
{
	return (long long)((intptr_t)p - (intptr_t)base);
}

/* Appends one call and its result to the trace, and returns the result. */
__attribute__((format(printf, 2, 3))) static cudaError_t log_call(cudaError_t e, const char *fmt,
								  ...)
{
	size_t n = strlen(trace);
	char call[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call, sizeof(call), fmt, ap);
	va_end(ap);
	if (e == cudaSuccess) {
		snprintf(trace + n, sizeof(trace) - n, "%s%s", n ? " " : "", call);
	} else {
		snprintf(trace + n, sizeof(trace) - n, "%s%s=%d", n ? " " : "", call, (int)e);
		last = e;
	}
	return e;
}

static cudaError_t injected(const char *fn)
{
	if (inj.n > 0 && strcmp(fn, inj.fn) == 0) {
		inj.n--;
		return inj.err;
	}
	return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *count)
{
	cudaError_t e = injected(__func__);

	if (e != cudaSuccess)
		return last = e;
	*count = fake_ndevices;
	return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
	*device = fake_current;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
	cudaError_t e = injected(__func__);

	if (e == cudaSuccess && (device < 0 || device >= fake_ndevices))
		e = cudaErrorInvalidDevice;
	if (e == cudaSuccess)
		fake_current = device;
	return log_call(e, "set(%d)", device);
}

cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
	uintptr_t lo = (uintptr_t)ptr, hi = lo + size, page = (uintptr_t)sysconf(_SC_PAGESIZE);
	cudaError_t e = injected(__func__);
	size_t i;

	if (e == cudaSuccess && (!size || (lo | hi) & (page - 1) || nregs == 64))
		e = cudaErrorInvalidValue;
	for (i = 0; e == cudaSuccess && i < nregs; i++)
		if (regs[i].lo < hi && lo < regs[i].hi)
			e = cudaErrorHostMemoryAlreadyRegistered;
	if (e == cudaSuccess) {
		regs[nregs].lo = lo;
		regs[nregs++].hi = hi;
	}
	return log_call(e, "reg(%lld,%zu,0x%x)", off(ptr), size, flags);
}

cudaError_t cudaHostUnregister(void *ptr)
{
	cudaError_t e = injected(__func__);
	size_t i;

	for (i = 0; i < nregs && regs[i].lo != (uintptr_t)ptr; i++)
		;
	if (e == cudaSuccess && i == nregs)
		e = cudaErrorHostMemoryNotRegistered;
	if (e == cudaSuccess)
		regs[i] = regs[--nregs];
	return log_call(e, "unreg(%lld)", off(ptr));
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
			    cudaStream_t stream)
{
	uintptr_t lo = (uintptr_t)src, hi = lo + count;
	cudaError_t e = injected(__func__);
	int pinned = 0;
	size_t i;

	for (i = 0; i < nregs; i++)
		pinned |= regs[i].lo <= lo && hi <= regs[i].hi;
	if (e == cudaSuccess && kind != cudaMemcpyHostToDevice)
		e = cudaErrorInvalidValue;
	if (e == cudaSuccess) {
		memcpy(dst, src, count);
		fake_last_stream = stream;
	}
	return log_call(e, "%scopy(%lld,%zu)", pinned ? "" : "p", off(src), count);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
	return log_call(injected(__func__), "sync");
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last;

	last = cudaSuccess;
	return e;
}

const char *cudaGetErrorString(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return "no error";
	case cudaErrorMemoryAllocation:
		return "out of memory";
	case cudaErrorInvalidValue:
		return "invalid argument";
	case cudaErrorNoDevice:
		return "no CUDA-capable device is detected";
	default:
		return "fake error";
	}
}

/* SPDX-License-Identifier: MIT */
/* A fake CUDA runtime: see fake_cudart.h. */
#include "fake_cudart.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fake_ndevices;
int fake_current;
cudaStream_t fake_last_stream;
int fake_not_ready;
uint64_t fake_sync_ns;

struct CUevent_st {
	int id;
};
static struct CUevent_st events[16];
static int nevents;
static struct fake_copy copies[FAKE_COPIES];
static size_t ncopies;
static struct {
	const char *fn;
	int n;
} calls[32];

static struct {
	uintptr_t lo, hi;
} regs[64];
static size_t nregs;
static char trace[16384];
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
	fake_not_ready = 0;
	fake_sync_ns = 0;
	nevents = 0;
	ncopies = 0;
	memset(calls, 0, sizeof(calls));
}

/* Counts a call of fn (a string literal: __func__). */
static void tally(const char *fn)
{
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		if (calls[i].fn && strcmp(calls[i].fn, fn))
			continue;
		calls[i].fn = fn;
		calls[i].n++;
		return;
	}
}

int fake_calls(const char *fn)
{
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]) && calls[i].fn; i++)
		if (!strcmp(calls[i].fn, fn))
			return calls[i].n;
	return 0;
}

const struct fake_copy *fake_copies(size_t *n)
{
	*n = ncopies;
	return copies;
}

bool fake_registered(const void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p;

	for (size_t i = 0; i < nregs; i++)
		if (regs[i].lo <= lo && lo + len <= regs[i].hi)
			return true;
	return false;
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

	tally(__func__);
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

	tally(__func__);
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

	tally(__func__);
	for (i = 0; i < nregs; i++)
		pinned |= regs[i].lo <= lo && hi <= regs[i].hi;
	if (e == cudaSuccess && kind != cudaMemcpyHostToDevice)
		e = cudaErrorInvalidValue;
	if (e == cudaSuccess) {
		memcpy(dst, src, count);
		fake_last_stream = stream;
		if (ncopies < FAKE_COPIES)
			copies[ncopies++] = (struct fake_copy){ dst, src, count, stream, pinned };
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

static int ev(cudaEvent_t e)
{
	return e ? e->id : -1;
}

cudaError_t cudaMalloc(void **p, size_t size)
{
	cudaError_t e = injected(__func__);

	tally(__func__);
	if (e == cudaSuccess) {
		*p = calloc(1, size);
		if (!*p)
			e = cudaErrorMemoryAllocation;
	}
	return log_call(e, "malloc(%zu)", size);
}

cudaError_t cudaFree(void *p)
{
	tally(__func__);
	free(p);
	return log_call(cudaSuccess, "free");
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
	cudaError_t e = injected(__func__);

	tally(__func__);
	if (e == cudaSuccess && nevents == 16)
		e = cudaErrorMemoryAllocation;
	if (e == cudaSuccess) {
		events[nevents].id = nevents;
		*event = &events[nevents++];
	}
	return log_call(e, "evcreate(0x%x)", flags);
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
	tally(__func__);
	return log_call(cudaSuccess, "evdestroy(E%d)", ev(event));
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
	tally(__func__);
	return log_call(injected(__func__), "evrec(E%d,S%lu)", ev(event),
			(unsigned long)(uintptr_t)stream);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
	tally(__func__);
	return log_call(injected(__func__), "evwait(S%lu,E%d)", (unsigned long)(uintptr_t)stream,
			ev(event));
}

cudaError_t cudaEventQuery(cudaEvent_t event)
{
	tally(__func__);
	if (fake_not_ready > 0) {
		/* Not an error: the runtime keeps no last error for it. */
		fake_not_ready--;
		log_call(cudaSuccess, "evquery(E%d)=busy", ev(event));
		return cudaErrorNotReady;
	}
	return log_call(cudaSuccess, "evquery(E%d)", ev(event));
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
	cudaError_t e = injected(__func__);

	tally(__func__);
	if (fake_sync_ns) {
		struct timespec ts = { (time_t)(fake_sync_ns / 1000000000u),
				       (long)(fake_sync_ns % 1000000000u) };
		nanosleep(&ts, NULL);
	}
	return log_call(e, "evsync(E%d)", ev(event));
}

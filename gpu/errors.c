/* SPDX-License-Identifier: MIT */
/* Errors of the CUDA path (gpu/): the thread's message and cudaError_t to errno. */
#include "stoker/gpu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "gpu_internal.h"

static _Thread_local char errmsg[256];

const char *stk_gpu_errmsg(void)
{
	return errmsg;
}

int stk__gpu_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int stk__gpu_errno(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return 0;
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorInvalidValue:
		return -EINVAL;
	case cudaErrorNotSupported:
		return -ENOTSUP;
	case cudaErrorNoDevice:
	case cudaErrorInvalidDevice:
	case cudaErrorInsufficientDriver:
	case cudaErrorStubLibrary:
	case cudaErrorDevicesUnavailable:
		return -ENODEV;
	default:
		return -EIO;
	}
}

int stk__gpu_cuda_fail(const char *call, cudaError_t e)
{
	(void)cudaGetLastError();
	return stk__gpu_fail(stk__gpu_errno(e), "%s: %s", call, cudaGetErrorString(e));
}

int stk__gpu_enter(int device, int *prev)
{
	cudaError_t e = cudaGetDevice(prev);

	if (e != cudaSuccess)
		return stk__gpu_cuda_fail("cudaGetDevice", e);
	if (*prev != device) {
		e = cudaSetDevice(device);
		if (e != cudaSuccess)
			return stk__gpu_cuda_fail("cudaSetDevice", e);
	}
	return 0;
}

void stk__gpu_leave(int device, int prev)
{
	if (prev != device && cudaSetDevice(prev) != cudaSuccess)
		(void)cudaGetLastError();
}

cudaError_t stk__gpu_register(void *p, size_t len)
{
	unsigned int flags = cudaHostRegisterPortable | cudaHostRegisterReadOnly;
	cudaError_t e = cudaHostRegister(p, len, flags);

	if (e == cudaErrorNotSupported || e == cudaErrorInvalidValue) {
		/* Devices without cudaDevAttrHostRegisterReadOnlySupported refuse the flag. */
		(void)cudaGetLastError();
		flags &= ~(unsigned int)cudaHostRegisterReadOnly;
		e = cudaHostRegister(p, len, flags);
	}
	return e;
}

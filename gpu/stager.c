/* SPDX-License-Identifier: MIT */
/*
 * The CUDA path of stoker/gpu.h, built when STOKER_HAVE_CUDA is on.  Plain C
 * against the CUDA runtime API; no device code.
 */
#include "stoker/gpu.h"

#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gpu_internal.h"

/* A page-aligned range [lo, hi) this stager registered with the driver. */
struct reg {
	uintptr_t lo, hi;
};

struct stk_gpu_stager {
	int device;
	cudaStream_t stream; /* borrowed */
	uintptr_t page;	     /* a power of two */
	struct reg *regs;    /* pairwise disjoint */
	size_t nregs, cap;
};

#define fail	  stk__gpu_fail
#define cuda_fail stk__gpu_cuda_fail

int stk_gpu_available(char *why, size_t len)
{
	cudaError_t e;
	int n = 0;

	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess)
		cuda_fail("cudaGetDeviceCount", e);
	else if (n < 1)
		fail(-ENODEV, "cudaGetDeviceCount: no CUDA device");
	else
		return 1;
	if (why && len)
		snprintf(why, len, "%s", stk_gpu_errmsg());
	return 0;
}

int stk_gpu_stager_create(int device, void *stream, struct stk_gpu_stager **out)
{
	struct stk_gpu_stager *s;
	cudaError_t e;
	int n = 0;

	if (!out)
		return fail(-EINVAL, "stk_gpu_stager_create: out is NULL");
	*out = NULL;
	if (device < 0)
		return fail(-EINVAL, "stk_gpu_stager_create: device %d is negative", device);
	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess)
		return cuda_fail("cudaGetDeviceCount", e);
	if (device >= n)
		return fail(-ENODEV, "stk_gpu_stager_create: no device %d (%d present)", device, n);
	s = calloc(1, sizeof(*s));
	if (!s)
		return fail(-ENOMEM, "stk_gpu_stager_create: out of memory");
	s->device = device;
	s->stream = stream;
	s->page = (uintptr_t)sysconf(_SC_PAGESIZE);
	*out = s;
	return 0;
}

/* Page-aligned [*lo, *hi) enclosing [host, host + len); -EINVAL if it wraps. */
static int span(const struct stk_gpu_stager *s, const void *host, size_t len, uintptr_t *lo,
		uintptr_t *hi)
{
	uintptr_t a = (uintptr_t)host;

	if (len > UINTPTR_MAX - a || a + len > UINTPTR_MAX - (s->page - 1))
		return fail(-EINVAL, "stk_gpu: range %p + %zu wraps", host, len);
	*lo = a & ~(s->page - 1);
	*hi = (a + len + s->page - 1) & ~(s->page - 1);
	return 0;
}

static int overlaps(const struct reg *r, uintptr_t lo, uintptr_t hi)
{
	return r->lo < hi && lo < r->hi;
}

/*
 * Drops the registrations overlapping [lo, hi) from the table and the driver,
 * widening [*ulo, *uhi) (if not NULL) to their union.  The caller has waited
 * for the stream.  An unregister can only fail for memory the driver does not
 * hold pinned, which then needs no unregistering, so failures are ignored.
 */
static void drop(struct stk_gpu_stager *s, uintptr_t lo, uintptr_t hi, uintptr_t *ulo,
		 uintptr_t *uhi)
{
	size_t i = 0;

	while (i < s->nregs) {
		struct reg r = s->regs[i];

		if (!overlaps(&r, lo, hi)) {
			i++;
			continue;
		}
		if (cudaHostUnregister((void *)r.lo) != cudaSuccess)
			(void)cudaGetLastError();
		if (ulo && r.lo < *ulo)
			*ulo = r.lo;
		if (uhi && r.hi > *uhi)
			*uhi = r.hi;
		s->regs[i] = s->regs[--s->nregs];
	}
}

/*
 * Makes sure the page-aligned [lo, hi) is pinned.  Registrations it overlaps
 * are merged with it; their union lies inside the caller's mappings because
 * each of them is made of whole mapped pages.  The table stays disjoint, so
 * anything overlapping the union already overlapped [lo, hi).
 */
static int pin(struct stk_gpu_stager *s, uintptr_t lo, uintptr_t hi)
{
	uintptr_t ulo = lo, uhi = hi;
	size_t i, nover = 0;
	cudaError_t e;

	for (i = 0; i < s->nregs; i++) {
		if (s->regs[i].lo <= lo && hi <= s->regs[i].hi)
			return 0;
		nover += overlaps(&s->regs[i], lo, hi);
	}
	if (s->nregs == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct reg *regs = realloc(s->regs, cap * sizeof(*regs));

		if (!regs)
			return fail(-ENOMEM, "stk_gpu_copy_async: out of memory");
		s->regs = regs;
		s->cap = cap;
	}
	if (nover) {
		/* Copies queued from the ranges about to be dropped may still be reading them. */
		e = cudaStreamSynchronize(s->stream);
		if (e != cudaSuccess)
			return cuda_fail("cudaStreamSynchronize", e);
		drop(s, lo, hi, &ulo, &uhi);
	}
	e = stk__gpu_register((void *)ulo, uhi - ulo);
	if (e == cudaErrorHostMemoryAlreadyRegistered) {
		/* Pinned by someone else, who keeps it pinned; the copy can use it. */
		(void)cudaGetLastError();
		return 0;
	}
	if (e != cudaSuccess)
		return cuda_fail("cudaHostRegister", e);
	s->regs[s->nregs++] = (struct reg){ .lo = ulo, .hi = uhi };
	return 0;
}

int stk_gpu_copy_async(struct stk_gpu_stager *s, void *dst_device, const void *host, size_t len)
{
	uintptr_t lo = 0, hi = 0;
	cudaError_t e;
	int prev, ret;

	if (!s || (len && (!dst_device || !host)))
		return fail(-EINVAL, "stk_gpu_copy_async: NULL stager or pointer");
	if (len == 0)
		return 0;
	ret = span(s, host, len, &lo, &hi);
	if (ret)
		return ret;
	ret = stk__gpu_enter(s->device, &prev);
	if (ret)
		return ret;
	/* Inside a segment stk_gpu_pin_arena() registered: nothing to pin. */
	if (!stk__gpu_arena_covers(host, len)) {
		ret = pin(s, lo, hi);
		if (ret)
			goto out;
	}
	e = cudaMemcpyAsync(dst_device, host, len, cudaMemcpyHostToDevice, s->stream);
	if (e != cudaSuccess)
		ret = cuda_fail("cudaMemcpyAsync", e);
out:
	stk__gpu_leave(s->device, prev);
	return ret;
}

int stk_gpu_copy_view_async(struct stk_gpu_stager *s, const struct stk_view *v, uint64_t off,
			    size_t len, void *dst_device)
{
	if (!s || !v || !dst_device)
		return fail(-EINVAL, "stk_gpu_copy_view_async: NULL stager, view or pointer");
	if (off > v->size || len > v->size - off)
		return fail(-EINVAL,
			    "stk_gpu_copy_view_async: bytes %llu + %zu past the end of object %u "
			    "(%llu bytes)",
			    (unsigned long long)off, len, v->index, (unsigned long long)v->size);
	if (len == 0)
		return 0;
	return stk_gpu_copy_async(s, dst_device, (const unsigned char *)v->data + off, len);
}

cudaStream_t stk__gpu_stager_stream(const struct stk_gpu_stager *s)
{
	return s->stream;
}

int stk_gpu_unregister(struct stk_gpu_stager *s, const void *host, size_t len)
{
	uintptr_t lo = 0, hi = 0;
	cudaError_t e;
	size_t i;
	int ret;

	if (!s)
		return fail(-EINVAL, "stk_gpu_unregister: NULL stager");
	if (len == 0)
		return 0;
	ret = span(s, host, len, &lo, &hi);
	if (ret)
		return ret;
	for (i = 0; i < s->nregs && !overlaps(&s->regs[i], lo, hi); i++)
		;
	if (i == s->nregs)
		return 0;
	/* Copies queued from these pages may still be reading them. */
	e = cudaStreamSynchronize(s->stream);
	if (e != cudaSuccess)
		ret = cuda_fail("cudaStreamSynchronize", e);
	drop(s, lo, hi, NULL, NULL);
	return ret;
}

int stk_gpu_sync(struct stk_gpu_stager *s)
{
	cudaError_t e;

	if (!s)
		return fail(-EINVAL, "stk_gpu_sync: NULL stager");
	e = cudaStreamSynchronize(s->stream);
	return e == cudaSuccess ? 0 : cuda_fail("cudaStreamSynchronize", e);
}

void stk_gpu_stager_destroy(struct stk_gpu_stager *s)
{
	if (!s)
		return;
	if (s->nregs) {
		if (cudaStreamSynchronize(s->stream) != cudaSuccess)
			(void)cudaGetLastError();
		drop(s, 0, UINTPTR_MAX, NULL, NULL);
	}
	free(s->regs);
	free(s);
}

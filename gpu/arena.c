/* SPDX-License-Identifier: MIT */
/*
 * The pinned arena (stoker/gpu.h, stk_gpu_pin_arena()): every segment a
 * client maps is registered with the driver once, when libstoker maps it,
 * through libstoker's map hooks, and unregistered before libstoker unmaps
 * it.  The ranges are kept in one process-wide table, so a copy from any
 * view inside them needs no registration.
 *
 * Lock order: a client's lock (held while libstoker calls the hooks), then
 * this file's.  Nothing here calls libstoker with the table locked.
 */
#include "stoker/gpu.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gpu_internal.h"

/* One client's pinning: the hooks' arg. */
struct arena {
	int device;
	int err; /* atomic: the first registration that failed */
};

/* A range registered for a client's mapping. */
struct range {
	uintptr_t lo, hi;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct range *tab; /* pairwise disjoint: the mappings are */
static size_t ntab, captab;

bool stk__gpu_arena_covers(const void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p;
	bool in = false;

	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < ntab && !in; i++)
		in = tab[i].lo <= lo && len <= tab[i].hi - lo && lo < tab[i].hi;
	pthread_mutex_unlock(&mu);
	return in;
}

static size_t page_up(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (len + page - 1) & ~(page - 1);
}

static void mapped(void *arg, const void *base, size_t len)
{
	struct arena *a = arg;
	cudaError_t e;
	int prev, r;

	len = page_up(len);
	pthread_mutex_lock(&mu);
	if (ntab == captab) {
		size_t cap = captab ? 2 * captab : 16;
		struct range *t = realloc(tab, cap * sizeof(*t));

		if (!t) {
			r = stk__gpu_fail(-ENOMEM, "stk_gpu_pin_arena: out of memory");
			goto out;
		}
		tab = t;
		captab = cap;
	}
	r = stk__gpu_enter(a->device, &prev);
	if (r)
		goto out;
	e = stk__gpu_register((void *)base, len);
	stk__gpu_leave(a->device, prev);
	if (e == cudaErrorHostMemoryAlreadyRegistered) {
		/*
		 * Pinned by someone else (a stager, the application), who
		 * unregisters it: not ours to keep, copies fall back to the
		 * stager, which finds it pinned.
		 */
		(void)cudaGetLastError();
		r = 0;
		goto out;
	}
	if (e != cudaSuccess) {
		r = stk__gpu_cuda_fail("cudaHostRegister", e);
		goto out;
	}
	tab[ntab++] = (struct range){ .lo = (uintptr_t)base, .hi = (uintptr_t)base + len };
out:
	pthread_mutex_unlock(&mu);
	/* Later failures are not an error of anyone's: copies from there pin per range. */
	if (r) {
		int zero = 0;

		__atomic_compare_exchange_n(&a->err, &zero, r, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
}

static void unmapping(void *arg, const void *base, size_t len)
{
	struct arena *a = arg;
	int prev;

	(void)len;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < ntab; i++) {
		if (tab[i].lo != (uintptr_t)base)
			continue;
		tab[i] = tab[--ntab];
		/*
		 * No view into the mapping is held, so no copy of ours reads it.
		 * An unregister can only fail for memory the driver does not
		 * hold pinned, which then needs no unregistering.
		 */
		if (stk__gpu_enter(a->device, &prev) == 0) {
			if (cudaHostUnregister((void *)base) != cudaSuccess)
				(void)cudaGetLastError();
			stk__gpu_leave(a->device, prev);
		}
		break;
	}
	pthread_mutex_unlock(&mu);
}

static void release(void *arg)
{
	free(arg);
}

int stk_gpu_pin_arena(struct stk_client *c, int device)
{
	struct stk_map_hooks h = {
		.size = sizeof(h), .mapped = mapped, .unmapping = unmapping, .release = release
	};
	struct arena *a;
	cudaError_t e;
	int n = 0, r;

	if (!c || device < 0)
		return stk__gpu_fail(-EINVAL, "stk_gpu_pin_arena: NULL client or negative device");
	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess)
		return stk__gpu_cuda_fail("cudaGetDeviceCount", e);
	if (device >= n)
		return stk__gpu_fail(-ENODEV, "stk_gpu_pin_arena: no device %d (%d present)",
				     device, n);
	a = calloc(1, sizeof(*a));
	if (!a)
		return stk__gpu_fail(-ENOMEM, "stk_gpu_pin_arena: out of memory");
	a->device = device;
	h.arg = a;
	r = stk_set_map_hooks(c, &h);
	if (r) {
		free(a);
		return stk__gpu_fail(r, "stk_gpu_pin_arena: %s",
				     r == -EBUSY ? "the client is pinned already (or has other "
						   "map hooks)"
						 : stk_errmsg());
	}
	/* The mappings held already were registered during the install. */
	r = __atomic_load_n(&a->err, __ATOMIC_RELAXED);
	if (r) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", stk_gpu_errmsg());
		stk_set_map_hooks(c, NULL); /* unregisters what did register; frees a */
		return stk__gpu_fail(r, "%s", msg);
	}
	return 0;
}

int stk_gpu_unpin_arena(struct stk_client *c)
{
	int r;

	if (!c)
		return stk__gpu_fail(-EINVAL, "stk_gpu_unpin_arena: NULL client");
	r = stk_set_map_hooks(c, NULL);
	return r ? stk__gpu_fail(r, "stk_gpu_unpin_arena: %s", stk_errmsg()) : 0;
}

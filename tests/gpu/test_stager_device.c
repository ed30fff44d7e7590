/* SPDX-License-Identifier: MIT */
/*
 * gpu/stager.c on a real device: bytes from a read-only shared mapping (as
 * stk_get() hands out) reach device memory intact.  Skips without a device.
 */
#include "stoker/gpu.h"

#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

Test(gpu_stager_device, copy_round_trips, .timeout = 60)
{
	struct stk_gpu_stager *s = NULL;
	size_t P = (size_t)sysconf(_SC_PAGESIZE), len = 4 * P, i;
	unsigned char *want, *got;
	const unsigned char *view;
	cudaStream_t stream;
	char why[256];
	void *dptr;
	int fd;

	if (!stk_gpu_available(why, sizeof(why)))
		cr_skip_test("no CUDA device: %s", why);
	want = malloc(len);
	got = calloc(1, len);
	cr_assert(want && got);
	for (i = 0; i < len; i++)
		want[i] = (unsigned char)(i * 131 + 7);
	/* A sealed memfd mapped read-only: what the pinning has to cope with in real use. */
	fd = memfd_create("stk-gpu-test", MFD_ALLOW_SEALING);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, want, len), (ssize_t)len);
	view = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert(view != MAP_FAILED);
	cr_assert_eq(cudaSetDevice(0), cudaSuccess);
	cr_assert_eq(cudaStreamCreate(&stream), cudaSuccess);
	cr_assert_eq(cudaMalloc(&dptr, len), cudaSuccess);
	cr_assert_eq(cudaMemset(dptr, 0, len), cudaSuccess);
	cr_assert_eq(stk_gpu_stager_create(0, stream, &s), 0, "%s", stk_gpu_errmsg());

	/* An unaligned piece first, then the rest, which widens the registration. */
	cr_assert_eq(stk_gpu_copy_async(s, (char *)dptr + 100, view + 100, P), 0, "%s",
		     stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_copy_async(s, dptr, view, 100), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_copy_async(s, (char *)dptr + 100 + P, view + 100 + P, len - 100 - P),
		     0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_sync(s), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(cudaMemcpy(got, dptr, len, cudaMemcpyDeviceToHost), cudaSuccess);
	cr_assert_arr_eq(got, want, len);

	/* After unregistering, a copy pins again and still delivers. */
	cr_assert_eq(stk_gpu_unregister(s, view, len), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(cudaMemset(dptr, 0, len), cudaSuccess);
	cr_assert_eq(stk_gpu_copy_async(s, dptr, view, len), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_sync(s), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(cudaMemcpy(got, dptr, len, cudaMemcpyDeviceToHost), cudaSuccess);
	cr_assert_arr_eq(got, want, len);

	stk_gpu_stager_destroy(s);
	cr_assert_eq(cudaGetLastError(), cudaSuccess);
	cudaFree(dptr);
	cudaStreamDestroy(stream);
	munmap((void *)view, len);
	close(fd);
	free(want);
	free(got);
}

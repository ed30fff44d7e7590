/* SPDX-License-Identifier: MIT */
/*
 * gpu/ on a real device: bytes from a read-only shared mapping (as stk_get()
 * hands out) reach device memory intact, through a stager's per-range
 * pinning, the pinned arena and the pipe.  Skips without a device.
 */
#include "stoker/gpu.h"

#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

Test(gpu_stager_device, copy_round_trips, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
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

/*
 * The pinned arena and the pipe on the device, from a real stokerd: every
 * object's bytes reach device memory intact through
 * stk_gpu_copy_view_async() and through the pipe's batches.
 */
#define NOBJ 12

static void check_dev(const void *dptr, const struct e2e_obj *o, unsigned char *host)
{
	cr_assert_eq(cudaMemcpy(host, dptr, o->size, cudaMemcpyDeviceToHost), cudaSuccess);
	cr_assert_eq(e2e_hash(host, o->size), o->hash, "%s differs on the device", o->key);
}

Test(gpu_stager_device, arena_and_pipe_round_trip, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	uint64_t sizes[NOBJ];
	struct e2e_dataset ds;
	struct stk_client *c;
	struct stk_dataset *sds = NULL;
	struct stk_gpu_stager *s = NULL;
	struct stk_gpu_pipe *p = NULL;
	struct stk_view v[NOBJ];
	struct stk_gpu_batch b;
	cudaStream_t copy, compute;
	unsigned char *host;
	char why[256], dir[256];
	uint32_t idx[NOBJ];
	void *dptr;
	int r;

	if (!stk_gpu_available(why, sizeof(why)))
		cr_skip_test("no CUDA device: %s", why);
	for (size_t i = 0; i < NOBJ; i++) {
		sizes[i] = 300 * 1024 + 4099 * i;
		idx[i] = (uint32_t)i;
	}
	sizes[NOBJ - 1] = 12 << 20; /* a segment of its own with --ram 64M */
	snprintf(dir, sizeof(dir), "%s/dev", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, NOBJ, 0, 0xd3f);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	c = e2e_connect(&e2e_d);
	r = stk_dataset_open(c, ds.uri, 0, &sds);
	cr_assert_eq(r, 0, "%s", stk_errmsg());
	host = malloc(sizes[NOBJ - 1]);
	cr_assert_not_null(host);
	cr_assert_eq(cudaSetDevice(0), cudaSuccess);
	cr_assert_eq(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking), cudaSuccess);
	cr_assert_eq(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), cudaSuccess);
	cr_assert_eq(cudaMalloc(&dptr, ds.bytes), cudaSuccess);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), 0, "%s", stk_gpu_errmsg());

	/* Views, copied one by one from the pinned segments. */
	cr_assert_eq(stk_gpu_stager_create(0, copy, &s), 0, "%s", stk_gpu_errmsg());
	for (size_t i = 0, at = 0; i < NOBJ; at += sizes[i], i++) {
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, &v[i]), 0);
		cr_assert_eq(stk_gpu_copy_view_async(s, &v[i], 0, v[i].size, (char *)dptr + at), 0,
			     "%s", stk_gpu_errmsg());
	}
	cr_assert_eq(stk_gpu_sync(s), 0, "%s", stk_gpu_errmsg());
	for (size_t i = 0, at = 0; i < NOBJ; at += sizes[i], i++) {
		check_dev((char *)dptr + at, &ds.o[i], host);
		stk_release(&v[i]);
	}
	stk_gpu_stager_destroy(s);

	/* Batches of 3 through the pipe, the next copy queued before the compute. */
	cr_assert_eq(stk_gpu_pipe_create(sds, 0, copy, 16 << 20, &p), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_pipe_submit(p, idx, 3), 0, "%s", stk_gpu_errmsg());
	for (size_t k = 0; k < NOBJ; k += 3) {
		cr_assert_eq(stk_gpu_pipe_next(p, compute, &b), 0, "%s", stk_gpu_errmsg());
		if (k + 3 < NOBJ)
			cr_assert_eq(stk_gpu_pipe_submit(p, idx + k + 3, 3), 0, "%s",
				     stk_gpu_errmsg());
		cr_assert_eq(cudaStreamSynchronize(compute), cudaSuccess);
		cr_assert_eq(b.n, 3);
		for (size_t i = 0; i < 3; i++)
			check_dev((char *)b.data + b.offsets[i], &ds.o[k + i], host);
	}
	stk_gpu_pipe_destroy(p);
	cr_assert_eq(stk_gpu_unpin_arena(c), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(cudaGetLastError(), cudaSuccess);
	cudaFree(dptr);
	cudaStreamDestroy(copy);
	cudaStreamDestroy(compute);
	free(host);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

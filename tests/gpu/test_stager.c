/* SPDX-License-Identifier: MIT */
/*
 * gpu/stager.c against the fake CUDA runtime (fake_cudart.h): which ranges
 * are pinned, when, and how often, and what a failing driver turns into.
 */
#include "stoker/gpu.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_cudart.h"

#define NPAGES 8
#define STREAM ((void *)0x5a)

static size_t P;	    /* page size */
static unsigned char *host; /* NPAGES mapped pages, the offsets in the trace are from here */
static unsigned char *dev;  /* stands in for device memory */
static struct stk_gpu_stager *s;

static void setup(void)
{
	size_t i;

	P = (size_t)sysconf(_SC_PAGESIZE);
	host = mmap(NULL, NPAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(host != MAP_FAILED);
	for (i = 0; i < NPAGES * P; i++)
		host[i] = (unsigned char)(i * 7 + 1);
	dev = calloc(NPAGES, P);
	cr_assert(dev);
	fake_reset(host);
	cr_assert_eq(stk_gpu_stager_create(0, STREAM, &s), 0, "%s", stk_gpu_errmsg());
}

static void teardown(void)
{
	stk_gpu_stager_destroy(s);
	free(dev);
	munmap(host, NPAGES * P);
}

/* Asserts that the fake's trace is exactly the formatted string. */
__attribute__((format(printf, 1, 2))) static void expect(const char *fmt, ...)
{
	char want[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	cr_assert_str_eq(fake_trace(), want);
}

static void copy_ok(size_t off, size_t len)
{
	cr_assert_eq(stk_gpu_copy_async(s, dev + off, host + off, len), 0, "%s", stk_gpu_errmsg());
	cr_assert_arr_eq(dev + off, host + off, len);
}

TestSuite(gpu_stager, .init = setup, .fini = teardown, .timeout = 10);

Test(gpu_stager, first_copy_registers_then_copies)
{
	copy_ok(100, 200);
	expect("reg(0,%zu,0x9) copy(100,200)", P);
	cr_assert_eq(fake_last_stream, STREAM);
	cr_assert_eq(fake_nregs(), 1);
}

Test(gpu_stager, same_mapping_registers_once)
{
	copy_ok(100, 200);
	copy_ok(1000, 300);
	copy_ok(0, P);
	expect("reg(0,%zu,0x9) copy(100,200) copy(1000,300) copy(0,%zu)", P, P);
}

Test(gpu_stager, registers_enclosing_pages)
{
	copy_ok(P - 10, 20);	       /* straddles pages 0 and 1 */
	copy_ok(3 * P, P);	       /* exactly page 3 */
	copy_ok(5 * P + 1, 2 * P - 2); /* inside pages 5 and 6 */
	expect("reg(0,%zu,0x9) copy(%zu,20) reg(%zu,%zu,0x9) copy(%zu,%zu) "
	       "reg(%zu,%zu,0x9) copy(%zu,%zu)",
	       2 * P, P - 10, 3 * P, P, 3 * P, P, 5 * P, 2 * P, 5 * P + 1, 2 * P - 2);
}

Test(gpu_stager, overlapping_copy_merges_after_sync)
{
	copy_ok(10, 10);       /* page 0 */
	copy_ok(2 * P, 10);    /* page 2 */
	copy_ok(4 * P, 10);    /* page 4: adjacent to the next copy, not overlapping it */
	copy_ok(P / 2, 3 * P); /* pages 0..3 */
	expect("reg(0,%zu,0x9) copy(10,10) reg(%zu,%zu,0x9) copy(%zu,10) reg(%zu,%zu,0x9) "
	       "copy(%zu,10) sync unreg(0) unreg(%zu) reg(0,%zu,0x9) copy(%zu,%zu)",
	       P, 2 * P, P, 2 * P, 4 * P, P, 4 * P, 2 * P, 4 * P, P / 2, 3 * P);
	cr_assert_eq(fake_nregs(), 2);
	/* Pages 3..4 join both: the union reaches back to page 0. */
	fake_clear_trace();
	copy_ok(3 * P + 10, P);
	expect("sync unreg(%zu) unreg(0) reg(0,%zu,0x9) copy(%zu,%zu)", 4 * P, 5 * P, 3 * P + 10,
	       P);
}

Test(gpu_stager, unregister_and_destroy_drop_exactly_ours)
{
	copy_ok(10, 10);
	copy_ok(2 * P, 10);
	cr_assert_eq(stk_gpu_unregister(s, host + 6 * P, P), 0); /* nothing there */
	expect("reg(0,%zu,0x9) copy(10,10) reg(%zu,%zu,0x9) copy(%zu,10)", P, 2 * P, P, 2 * P);
	cr_assert_eq(stk_gpu_unregister(s, host, 10), 0);
	cr_assert_eq(fake_nregs(), 1);
	copy_ok(20, 10); /* registers page 0 again */
	stk_gpu_stager_destroy(s);
	s = NULL;
	expect("reg(0,%zu,0x9) copy(10,10) reg(%zu,%zu,0x9) copy(%zu,10) sync unreg(0) "
	       "reg(0,%zu,0x9) copy(20,10) sync unreg(%zu) unreg(0)",
	       P, 2 * P, P, 2 * P, P, 2 * P);
	cr_assert_eq(fake_nregs(), 0);
}

Test(gpu_stager, register_failure_maps_errno_and_copies_nothing)
{
	static const struct {
		cudaError_t err;
		int tries; /* the read-only attempt, and the fallback for some errors */
		int ret;
	} cases[] = {
		{ cudaErrorMemoryAllocation, 1, -ENOMEM },
		{ cudaErrorInvalidValue, 2, -EINVAL },
		{ cudaErrorNoDevice, 1, -ENODEV },
		{ cudaErrorLaunchFailure, 1, -EIO },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_reset(host);
		fake_fail("cudaHostRegister", cases[i].err, 2);
		cr_assert_eq(stk_gpu_copy_async(s, dev, host + 100, 10), cases[i].ret, "case %zu",
			     i);
		if (cases[i].tries == 2)
			expect("reg(0,%zu,0x9)=%d reg(0,%zu,0x1)=%d", P, (int)cases[i].err, P,
			       (int)cases[i].err);
		else
			expect("reg(0,%zu,0x9)=%d", P, (int)cases[i].err);
		cr_assert(strncmp(stk_gpu_errmsg(), "cudaHostRegister: ", 18) == 0, "%s",
			  stk_gpu_errmsg());
		cr_assert_eq(cudaGetLastError(), cudaSuccess, "case %zu: error left behind", i);
	}
	/* Nothing was cached from the failures: the next copy registers. */
	fake_reset(host);
	copy_ok(100, 10);
	expect("reg(0,%zu,0x9) copy(100,10)", P);
}

Test(gpu_stager, read_only_refused_falls_back_to_read_write)
{
	fake_fail("cudaHostRegister", cudaErrorNotSupported, 1);
	copy_ok(100, 10);
	copy_ok(200, 10);
	expect("reg(0,%zu,0x9)=%d reg(0,%zu,0x1) copy(100,10) copy(200,10)", P,
	       cudaErrorNotSupported, P);
}

Test(gpu_stager, pinned_by_someone_else_is_used_not_owned)
{
	cr_assert_eq(cudaHostRegister(host, P, 0), cudaSuccess);
	copy_ok(100, 10);
	stk_gpu_stager_destroy(s);
	s = NULL;
	expect("reg(0,%zu,0x0) reg(0,%zu,0x9)=%d copy(100,10)", P, P,
	       cudaErrorHostMemoryAlreadyRegistered);
	cr_assert_eq(fake_nregs(), 1);
	cr_assert_eq(cudaGetLastError(), cudaSuccess);
}

Test(gpu_stager, copy_failure_keeps_registration)
{
	fake_fail("cudaMemcpyAsync", cudaErrorInvalidValue, 1);
	cr_assert_eq(stk_gpu_copy_async(s, dev, host, 10), -EINVAL);
	cr_assert_str_eq(stk_gpu_errmsg(), "cudaMemcpyAsync: invalid argument");
	copy_ok(0, 10);
	expect("reg(0,%zu,0x9) copy(0,10)=%d copy(0,10)", P, cudaErrorInvalidValue);
}

Test(gpu_stager, bad_arguments_reach_no_driver)
{
	cr_assert_eq(stk_gpu_copy_async(NULL, dev, host, 10), -EINVAL);
	cr_assert_eq(stk_gpu_copy_async(s, NULL, host, 10), -EINVAL);
	cr_assert_eq(stk_gpu_copy_async(s, dev, NULL, 10), -EINVAL);
	cr_assert_eq(stk_gpu_copy_async(s, dev, (void *)(UINTPTR_MAX - 8), 16), -EINVAL);
	cr_assert_eq(stk_gpu_copy_async(s, dev, host, 0), 0);
	cr_assert_eq(stk_gpu_unregister(NULL, host, 10), -EINVAL);
	cr_assert_eq(stk_gpu_sync(NULL), -EINVAL);
	expect("%s", "");
	cr_assert_eq(stk_gpu_sync(s), 0);
	expect("sync");
}

Test(gpu_stager, works_on_its_device_and_restores_the_callers)
{
	struct stk_gpu_stager *s1 = NULL;

	fake_ndevices = 2;
	cr_assert_eq(stk_gpu_stager_create(2, NULL, &s1), -ENODEV);
	cr_assert_null(s1);
	cr_assert_eq(stk_gpu_stager_create(-1, NULL, &s1), -EINVAL);
	cr_assert_eq(stk_gpu_stager_create(1, NULL, &s1), 0);
	cr_assert_eq(stk_gpu_copy_async(s1, dev, host, 10), 0);
	stk_gpu_stager_destroy(s1);
	expect("set(1) reg(0,%zu,0x9) copy(0,10) set(0) sync unreg(0)", P);
	cr_assert_eq(fake_current, 0);
}

Test(gpu_stager, available_reports_why_not)
{
	char why[128] = "";

	fake_fail("cudaGetDeviceCount", cudaErrorNoDevice, 1);
	cr_assert_eq(stk_gpu_available(why, sizeof(why)), 0);
	cr_assert_str_eq(why, "cudaGetDeviceCount: no CUDA-capable device is detected");
	fake_ndevices = 0;
	cr_assert_eq(stk_gpu_available(why, sizeof(why)), 0);
	cr_assert_str_eq(why, "cudaGetDeviceCount: no CUDA device");
	fake_ndevices = 1;
	cr_assert_eq(stk_gpu_available(why, 4), 1);
	cr_assert_eq(stk_gpu_available(NULL, 0), 1);
}

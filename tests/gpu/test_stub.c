/* SPDX-License-Identifier: MIT */
/* gpu/stub.c: without CUDA, every call exists and says why it cannot work. */
#include "stoker/gpu.h"

#include <criterion/criterion.h>
#include <errno.h>

Test(gpu_stub, everything_is_not_supported)
{
	struct stk_gpu_stager *s = (struct stk_gpu_stager *)&s;
	char why[8];
	char buf[64];

	cr_assert_eq(stk_gpu_available(buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "built without CUDA");
	cr_assert_eq(stk_gpu_available(why, sizeof(why)), 0);
	cr_assert_str_eq(why, "built w");
	cr_assert_str_eq(stk_gpu_errmsg(), "");
	cr_assert_eq(stk_gpu_stager_create(0, NULL, &s), -ENOTSUP);
	cr_assert_null(s);
	cr_assert_str_eq(stk_gpu_errmsg(), "built without CUDA");
	cr_assert_eq(stk_gpu_copy_async(s, buf, buf, 1), -ENOTSUP);
	cr_assert_eq(stk_gpu_unregister(s, buf, 1), -ENOTSUP);
	cr_assert_eq(stk_gpu_sync(s), -ENOTSUP);
	stk_gpu_stager_destroy(NULL);

	struct stk_view v = { .data = buf, .size = 1 };
	struct stk_gpu_pipe *p = (struct stk_gpu_pipe *)&p;
	struct stk_gpu_batch b;
	uint32_t idx = 0;

	cr_assert_eq(stk_gpu_copy_view_async(s, &v, 0, 1, buf), -ENOTSUP);
	cr_assert_eq(stk_gpu_pin_arena((struct stk_client *)buf, 0), -ENOTSUP);
	cr_assert_eq(stk_gpu_unpin_arena((struct stk_client *)buf), -ENOTSUP);
	cr_assert_eq(stk_gpu_pipe_create((struct stk_dataset *)buf, 0, NULL, 1, &p), -ENOTSUP);
	cr_assert_null(p);
	cr_assert_eq(stk_gpu_pipe_submit(p, &idx, 1), -ENOTSUP);
	cr_assert_eq(stk_gpu_pipe_next(p, NULL, &b), -ENOTSUP);
	stk_gpu_pipe_destroy(NULL);
}

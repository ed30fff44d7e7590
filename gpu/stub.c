/* SPDX-License-Identifier: MIT */
/*
 * stoker/gpu.h without CUDA (STOKER_HAVE_CUDA off): the same API, so callers
 * need no #ifdef, and every call says why it cannot work.
 */
#include "stoker/gpu.h"

#include <errno.h>
#include <stdio.h>

#define NO_CUDA "built without CUDA"

static _Thread_local const char *errmsg = "";

static int no_cuda(void)
{
	errmsg = NO_CUDA;
	return -ENOTSUP;
}

const char *stk_gpu_errmsg(void)
{
	return errmsg;
}

int stk_gpu_available(char *why, size_t len)
{
	if (why && len)
		snprintf(why, len, "%s", NO_CUDA);
	return 0;
}

int stk_gpu_stager_create(int device, void *stream, struct stk_gpu_stager **out)
{
	if (out)
		*out = NULL;
	return no_cuda();
}

/* No stager can exist, so there is never one to free. */
void stk_gpu_stager_destroy(struct stk_gpu_stager *s)
{
}

int stk_gpu_copy_async(struct stk_gpu_stager *s, void *dst_device, const void *host, size_t len)
{
	return no_cuda();
}

int stk_gpu_unregister(struct stk_gpu_stager *s, const void *host, size_t len)
{
	return no_cuda();
}

int stk_gpu_sync(struct stk_gpu_stager *s)
{
	return no_cuda();
}

int stk_gpu_copy_view_async(struct stk_gpu_stager *s, const struct stk_view *v, uint64_t off,
			    size_t len, void *dst_device)
{
	return no_cuda();
}

int stk_gpu_pin_arena(struct stk_client *c, int device)
{
	return no_cuda();
}

int stk_gpu_unpin_arena(struct stk_client *c)
{
	return no_cuda();
}

int stk_gpu_pipe_create(struct stk_dataset *ds, int device, void *copy_stream,
			size_t max_batch_bytes, struct stk_gpu_pipe **out)
{
	if (out)
		*out = NULL;
	return no_cuda();
}

int stk_gpu_pipe_submit(struct stk_gpu_pipe *p, const uint32_t *idx, size_t n)
{
	return no_cuda();
}

int stk_gpu_pipe_next(struct stk_gpu_pipe *p, void *compute_stream, struct stk_gpu_batch *b)
{
	return no_cuda();
}

/* No pipe can exist either. */
void stk_gpu_pipe_destroy(struct stk_gpu_pipe *p)
{
}

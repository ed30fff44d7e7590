/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "client_internal.h"

const char *stk_strerror(int err)
{
	if (err == 0)
		return "success";
	/* Where stoker gives an errno a meaning of its own, say that. */
	if (err == -ECHILD)
		return "stoker client belongs to the parent process";
	/* strerrordesc_np returns static, untranslated text and is thread-safe. */
	const char *s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "unknown error";
}

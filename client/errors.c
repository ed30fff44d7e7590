/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "client_internal.h"

const char *stk_strerror(int err)
{
	if (err == 0)
		return "success";
	/* strerrordesc_np returns static, untranslated text and is thread-safe. */
	const char *s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "unknown error";
}

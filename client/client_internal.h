/* SPDX-License-Identifier: MIT */
#ifndef STOKER_CLIENT_INTERNAL_H
#define STOKER_CLIENT_INTERNAL_H

#include "stoker.h"

/* Sets this thread's stk_errmsg() text. */
void stk__set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

/* SPDX-License-Identifier: MIT */
/* Inside the stoker CLI: what cli.c (the commands) and cli_stats.c (stats' output) share. */
#ifndef STOKER_CLI_INT_H
#define STOKER_CLI_INT_H

#include <stddef.h>

#include "stoker.h"

#define MIB (1024.0 * 1024.0)

/* Flushes stdout. Returns 0, or 1 after saying why (nothing when the reader left). */
int cli_finish_stdout(const char *what);

/* Prints the counters as JSON, or for people; the exit status of "stats". */
int cli_stats_json(const struct stk_stats *st, const struct stk_endpoint_stats *ep, size_t nep);
int cli_stats_human(const struct stk_stats *st, const struct stk_endpoint_stats *ep, size_t nep);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Inside the stoker CLI: what cli.c (the commands) and cli_stats.c (the
 * output of stats and top) share.
 */
#ifndef STOKER_CLI_INT_H
#define STOKER_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "stoker.h"

#define MIB (1024.0 * 1024.0)

/* Flushes stdout. Returns 0, or 1 after saying why (nothing when the reader left). */
int cli_finish_stdout(const char *what);

/*
 * Prints "stoker: WHAT: <stk_strerror>: <stk_errmsg>" for a failed library
 * call (err < 0), taking the detail before anything else is asked of the
 * library.
 */
void cli_report(const char *what, int err);

/* What "stats" prints besides struct stk_stats: lists, each n of the daemon's total. */
struct cli_lists {
	const struct stk_endpoint_stats *ep;
	size_t nep;
	const struct stk_daemon_client *cl;
	size_t ncl, ncl_total;
	const struct stk_daemon_dataset *ds;
	size_t nds, nds_total;
};

/* Prints the counters as JSON, or for people; the exit status of "stats". */
int cli_stats_json(const struct stk_stats *st, const struct cli_lists *l);
int cli_stats_human(const struct stk_stats *st, const struct cli_lists *l);

/*
 * stoker top: redraws the daemon's totals, clients and datasets every
 * interval seconds until a signal, on a terminal; prints one frame (after
 * one interval, for the rates) when stdout is not a terminal or with once.
 * sock names the daemon in messages.  Returns the exit status: 1 when the
 * daemon went away (after saying so).
 */
int cli_top(struct stk_client *c, const char *sock, double interval, bool once);

#endif

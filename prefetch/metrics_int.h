/* SPDX-License-Identifier: MIT */
/*
 * What the metrics endpoint's two halves share: metrics.c (the HTTP server,
 * snapshots, probes) and metrics_text.c (the Prometheus exposition).
 */
#ifndef STOKER_METRICS_INT_H
#define STOKER_METRICS_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

struct snap_ep {
	char name[sizeof(((struct stk_obs_ep *)0)->name)];
	uint64_t attempts, reached;
};

/* What the loop copies for one scrape or probe. */
struct snap {
	uint64_t taken_ns;
	uint64_t st[STK_STATS_COUNT]; /* stall fields filled by stk__obs_stats */
	struct stk_hist wait;
	unsigned ntp, nep;
	char tp[STK_OBS_TP_MAX][32];
	struct stk_hist fetch[STK_OBS_TP_MAX];
	uint64_t errors[STK_OBS_TP_MAX][STK_OBS_ERRNO];
	struct snap_ep ep[STK_OBS_EP_MAX];
	uint64_t tier_used, tier_budget, resident;
	unsigned inflight, pinned;
	bool listening;
	struct stk_stall *labels; /* cfg.nlabels, as the loop keeps them */
};

struct stk_metrics {
	struct stk_daemon *d;
	struct MHD_Daemon *mhd;
	bool hooks; /* STOKER_TEST_HOOKS=1: POST /test/wedge */
	/*
	 * --metrics-dataset names, escaped for a label value, each once:
	 * label i of the configuration counts under name label_name[i].
	 */
	unsigned nnames, nlabels;
	char **names;
	unsigned *label_name;
	struct stk_stall *merged; /* per name; HTTP thread */
	struct snap bufs[3];
	struct snap *back;  /* loop thread */
	struct snap *front; /* HTTP thread (and start) */

	pthread_mutex_t mu; /* guards what follows */
	pthread_cond_t cv;  /* answered moved, or stopping */
	struct snap *ready;
	bool ready_fresh;  /* ready is newer than front */
	uint64_t answered; /* snapshots the loop has taken */
	bool snap_queued;  /* snap_work is posted and has not run */
	bool wedge_queued; /* wedge_work is posted or running */
	unsigned wedge_s;  /* how long it blocks the loop */
	bool stopping;
	struct stk_work snap_work, wedge_work;
};

/* A growing text buffer; oom sticks once an append failed. */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static inline uint64_t age_ns(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

void stk__bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exposition of snapshot s into b. HTTP thread. */
void stk__metrics_format(struct stk_metrics *m, const struct snap *s, struct buf *b);

#endif

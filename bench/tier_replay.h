/* SPDX-License-Identifier: MIT */
/*
 * tier_replay: a trace of shuffled or cyclic epochs replayed against a real
 * stokerd by several clients, next to offline policies over the same trace
 * (tier_sim.h).  tier_replay.c parses options and reports; tier_live.c
 * writes the dataset and runs the clients.
 */
#ifndef STK_BENCH_TIER_REPLAY_H
#define STK_BENCH_TIER_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "tier_sim.h"

struct tr_opts {
	const char *dir;    /* dataset directory: DIR/oNNNNNN, one file per object */
	const char *socket; /* the daemon's; NULL: offline policies only */
	const char *json;   /* also write the report as JSON to this file */
	bool write;	    /* (re)write the dataset's files first */
	uint64_t dataset;   /* bytes of objects to make (about) */
	uint64_t min_size, max_size;
	uint64_t ram, nvme; /* the budgets the offline policies get */
	uint32_t epochs, clients;
	bool cyclic;	  /* every epoch in id order; else a new shuffle each */
	bool independent; /* each client reads every object an epoch; else they split it */
	bool plan_run;	  /* each client plans its whole run at once; else each epoch */
	uint64_t seed;
	uint64_t compute_us;		   /* sleep after each get */
	double emul_latency_ms, emul_mbps; /* the daemon's emulation, for the stall model */
};

/* The objects and the order of gets; client c reads positions c, c + C, ... of each epoch. */
struct tr_trace {
	uint32_t nobj;
	uint32_t per_epoch; /* gets per epoch: nobj, or nobj * clients when independent */
	uint64_t *size;
	uint64_t bytes;
	uint32_t *order; /* epochs * per_epoch object ids */
};

/* What stokerd and the clients saw in one epoch. */
struct tr_live_epoch {
	uint64_t gets, hits_ram, hits_nvme, misses, fetches, fetch_bytes, evictions;
	uint64_t view_hits;	/* gets whose view had STK_VIEW_HIT */
	uint64_t wait_ns_sum;	/* all clients' stk_get() time */
	uint64_t wait_ns_max;	/* the largest client's */
	uint64_t verify_errors; /* objects whose bytes were not their id's */
	double wall_s;
	bool nvme_known;		  /* the daemon reports NVMe counters (the nvme_ fields) */
	uint64_t nvme_reads, nvme_writes; /* promotions and demotions in the epoch */
	uint64_t nvme_used, ram_used;	  /* bytes charged at the epoch's end */
	uint64_t nvme_objects, ram_objects; /* objects held at the epoch's end (all datasets) */
};

/* Sizes and order from the options (deterministic in seed).  0 or -ENOMEM. */
int tr_trace_make(const struct tr_opts *o, struct tr_trace *t);
void tr_trace_free(struct tr_trace *t);

/* Writes DIR/oNNNNNN for every object, with bytes derived from its id.  0 or -errno. */
int tr_write_dataset(const struct tr_opts *o, const struct tr_trace *t);

/* Runs the clients against o->socket; fills out[0 .. epochs - 1].  0 or -errno (printed). */
int tr_live_run(const struct tr_opts *o, const struct tr_trace *t, struct tr_live_epoch *out);

#endif

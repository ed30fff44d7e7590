/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench's own state, shared by its driver (stoker-bench.c), its options
 * (options.c) and its reports (report.c; html.c for --report).
 */
#ifndef STOKER_BENCH_CLI_H
#define STOKER_BENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

#define MAX_REPEAT BENCH_MAX_ROUNDS

/* The demo's defaults: chosen so both modes together take ~30-60 s on a
 * 2-core VM and compute hides most of the emulated I/O when it is
 * prefetched.  See README.md for the arithmetic. */
#define DEMO_FILES	    256u
#define DEMO_MIN_SIZE	    (64u << 10)
#define DEMO_MAX_SIZE	    (2u << 20)
#define DEMO_STEPS	    96ul
#define DEMO_BATCH	    8ul
#define DEMO_COMPUTE_MS	    60.0
#define DEMO_LATENCY_MS	    20.0
#define DEMO_BANDWIDTH_MB_S 150.0
#define DEMO_RAM	    "64M"

/*
 * --hot's sizes: from a small sample to a shard, with counts that keep one
 * run (3 rounds) under a minute on a 2-core VM: 62.5 MiB of 4 KiB objects
 * (more than a CPU cache holds), 430, 450 and 512 MiB of the others.  Not
 * 20,000 small ones: stokerd up to commit 84bba61 keeps a descriptor per
 * resident object, and at a hard RLIMIT_NOFILE of 20,000 (as on our VMs) the
 * last ones fail with EMFILE.
 */
#define HOT_SIZES   "4K:16000,110K:4000,1.5M:300,64M:8"
#define HOT_SECONDS 0.5
#define HOT_ROUNDS  3u

enum mode { MODE_AB, MODE_DIRECT, MODE_STOKER };

struct options {
	const char *dataset;
	unsigned long steps, batch, repeat;
	double compute_ms;
	enum mode mode;
	bool mode_set;
	const char *socket, *stokerd, *ram;
	struct bench_emul emul;
	uint64_t seed;
	double hot_s;
	bool json, demo, hot, warm_only;
	const char *report; /* --report FILE.html, or NULL */
	bool steps_set, batch_set, compute_set, lat_set, bw_set, repeat_set;
	/* --hot-sizes: the object sizes of --hot and how many objects of each */
	uint64_t hot_size[BENCH_HOT_MAX_SIZES];
	uint32_t hot_count[BENCH_HOT_MAX_SIZES];
	unsigned hot_n;
};

struct ctx {
	struct options o;
	struct bench_dataset ds;
	char demo_dir[256]; /* the --demo dataset we made, removed at exit */
	char stokerd[4096];
	char ram_default[32];
	const char *ram;     /* passed to a started daemon */
	bool spawn;	     /* start a fresh daemon per stoker run */
	bool cache_dropped;  /* every page-cache drop before a run succeeded */
	bool daemon_unclean; /* a started daemon did not exit 0 on SIGTERM */
	pid_t daemon_pid;    /* the daemon with_daemon() runs now, or 0 */
	/* results */
	bool ran_direct, ran_stoker, ran_hot, ran_warm;
	struct bench_result runs_direct[MAX_REPEAT], runs_stoker[MAX_REPEAT];
	struct bench_result direct, stoker;
	struct bench_warm warm;
	/* --hot: one dataset per size under hot_parent (--dataset, or hot_tmp,
	 * which we made and remove at exit), one daemon per size */
	const char *hot_parent;
	char hot_tmp[256];
	char hot_dir[BENCH_HOT_MAX_SIZES][4096];
	char hot_ram[BENCH_HOT_MAX_SIZES][32]; /* --ram of each size's started daemon */
	struct bench_hot_size hot[BENCH_HOT_MAX_SIZES];
	unsigned hot_n;	    /* sizes measured */
	double hot_load[2]; /* 1-minute load average before and after --hot */
	bool checksums_match;
};

/*
 * The A/B stall comparison of the medians over --repeat, which the text,
 * JSON and HTML reports all print: the stall avoided as the bench measured
 * it and as stokerd reported it, and the split of the stoker run's stall.
 */
struct stall_cmp {
	double measured_s;    /* direct stall - stoker stall */
	double reported_s;    /* stokerd's stall avoided for the stoker run's connection */
	double ratio;	      /* reported / measured; NAN when measured <= 0 */
	double model_s;	      /* daemon-wide avoided stall resting on its model alone */
	double daemon_s;      /* the stoker run's stall as stokerd counted it */
	double fetch_s;	      /* of which for bytes not resident when asked */
	double delivery_s;    /* of which the rest */
	double bench_s;	      /* the stoker run's stall as the bench measured it */
	bool have_accounting; /* stokerd reported stall accounting (protocol 5) */
};
/* Fills *c from the medians of x; meaningful when both modes ran. */
void stall_compare(const struct ctx *x, struct stall_cmp *c);

/* Per-metric medians of n runs into *m; counts equal in every run stay exact. */
void median_result(const struct bench_result *runs, size_t n, struct bench_result *m);
/* Whether the options ask for the slow-backend emulation. */
bool emulating(const struct options *o);
/* Rounds of --hot: --repeat, or 3 when it was not given. */
unsigned hot_rounds(const struct options *o);
/* "4 KiB", "110 KiB", "1.5 MiB": a size for people, into buf. */
const char *size_name(uint64_t size, char *buf, size_t len);
/* Parses argv into *o (options.c): 0 to run, 1 when --help was printed, -EINVAL for bad usage. */
int bench_parse_options(int argc, char **argv, struct options *o);
/*
 * --gpu: execs stoker-h2d with the other arguments (h2d_exec.c).  Returns
 * only when it could not: 77 (skipped) after saying why.
 */
int bench_gpu_exec(int argc, char **argv);
/* The human report, and the --json one (0, or -1 if it could not be written). */
void report_text(const struct ctx *x);
int report_json(const struct ctx *x);
/*
 * --report (html.c): writes one self-contained HTML page about the A/B runs
 * of x to path (inline SVG and CSS, no script, nothing fetched from a
 * network).  Returns 0, or a negative errno after saying why on stderr.
 */
int report_html(const struct ctx *x, const char *path);

#endif

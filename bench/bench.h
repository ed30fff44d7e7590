/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench internals: the simulated trainer (trainer.c), the daemon it
 * spawns and the demo dataset it builds (daemon.c), and the report
 * (stoker-bench.c).
 *
 * Every int function returns 0 or a negative errno and has already printed
 * a sentence naming what failed to stderr, so callers only unwind.
 */
#ifndef STOKER_BENCH_H
#define STOKER_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MB 1e6 /* MB/s and --emulate-bandwidth are decimal megabytes */
#define BENCH_GB 1e9

/* Set by SIGINT/SIGTERM; long loops check it and unwind with -EINTR. */
extern volatile sig_atomic_t bench_stop;

/* One file of the dataset as the direct reader sees it. */
struct bench_file {
	char *rel;  /* path relative to the dataset directory: the daemon's key */
	char *path; /* absolute path */
	uint64_t size;
};

/* A dataset directory listed like the daemon lists file:///dir/: every
 * regular file below dir, sorted by relative path (strcmp order). */
struct bench_dataset {
	char *dir; /* absolute, resolved, no trailing slash */
	struct bench_file *files;
	size_t count;
	uint64_t bytes;
	uint64_t max_size;
};

/* The emulated slow backend; 0 turns a part off. */
struct bench_emul {
	double latency_ms;     /* added before each object's first byte */
	double bandwidth_mb_s; /* cap on the bytes/s of all reads together */
};

/* What one trainer run reads and how; shared by both modes. */
struct bench_run_cfg {
	unsigned long steps;
	unsigned long batch;
	double compute_ms;
	const uint32_t *order;	/* steps * batch dataset indices (struct bench_dataset order) */
	struct bench_emul emul; /* paid by the direct reader itself */
};

/* The result of one trainer run of one mode. */
struct bench_result {
	double wall_s;	   /* first load to end of last compute */
	double stall_s;	   /* sum over steps of the time spent getting the batch */
	double plan_s;	   /* stoker: stk_plan(), counted in step 0's stall */
	double get_wait_s; /* stoker: sum of stk_view.wait_ns */
	double step_p50_ms, step_p99_ms, step_max_ms; /* per-step load time */
	uint64_t bytes;
	uint64_t objects;
	uint64_t hits;	   /* stoker: views with STK_VIEW_HIT */
	uint64_t checksum; /* order-independent sum of per-object hashes */
	/* stoker: counters from stk_stats() after the run */
	bool have_stats;
	uint64_t client_gets, client_hits;
	uint64_t d_fetches, d_prefetches, d_fetch_bytes, d_evictions, d_fetch_errors;
	double d_fetch_s;
	uint32_t resident_at_start; /* stoker: objects already cached when the run began */
};

/* Results of --hot. */
struct bench_hot {
	double warm_s;
	uint64_t warm_bytes;
	uint32_t warm_state; /* STK_WARM_* */
	uint64_t gets;
	double gets_s;
	uint64_t hits;
	uint64_t read_bytes;
	double read_s;
	uint64_t read_objects;
	uint64_t ref_bytes; /* the same hash over private, touched memory */
	double ref_s;
};

/* Results of --warm-only. */
struct bench_warm {
	double seconds;
	uint64_t bytes; /* resident bytes at the end */
	uint32_t objects, resident, failed;
	uint32_t state;
};

/* A stokerd this process started. */
struct bench_daemon {
	pid_t pid;     /* 0 when none runs */
	char dir[256]; /* private temp dir holding the socket */
	char sock[256];
};

/* --- time and sleeping (trainer.c) --- */
double bench_now(void);		 /* CLOCK_MONOTONIC seconds */
int bench_sleep_until(double t); /* 0, or -EINTR when bench_stop is set */
int bench_sleep(double seconds);

/* --- dataset (trainer.c) --- */
int bench_dataset_load(const char *dir, struct bench_dataset *ds);
void bench_dataset_free(struct bench_dataset *ds);
/* Drops the dataset's pages from the page cache (POSIX_FADV_DONTNEED on each
 * file).  Returns 0, or the first negative errno (the rest are still tried). */
int bench_dataset_drop_cache(const struct bench_dataset *ds);
/* Fills order[0..n) with per-epoch seeded shuffles of 0..count-1: epoch e
 * is a Fisher-Yates shuffle seeded from (seed, e), so runs and modes agree. */
void bench_make_order(uint32_t *order, size_t n, size_t count, uint64_t seed);
/* A seeded PRNG (xoshiro256** seeded by splitmix64): deterministic data. */
void bench_seed(uint64_t s[4], uint64_t seed);
uint64_t bench_rand(uint64_t s[4]);
void bench_fill_random(void *buf, size_t len, uint64_t s[4]);
/* Hash of every byte of buf, the work a trainer does to use a sample. */
uint64_t bench_touch(const void *buf, uint64_t len);
/* Parses "123", "64K", "1.5G" (binary units) into bytes. */

/* --- the two readers (trainer.c) --- */
int bench_run_direct(const struct bench_dataset *ds, const struct bench_run_cfg *rc,
		     struct bench_result *r);
int bench_run_stoker(const struct bench_dataset *ds, const struct bench_run_cfg *rc,
		     const char *sock, struct bench_result *r);
int bench_run_hot(const struct bench_dataset *ds, const char *sock, double seconds,
		  struct bench_hot *h);
int bench_run_warm(const struct bench_dataset *ds, const char *sock, struct bench_warm *w);

/* --- daemon and demo data (daemon.c) --- */
/* Resolves the stokerd binary: explicit, else next to /proc/self/exe (or
 * ../prefetch/stokerd in a build tree), else "stokerd" looked up in PATH.
 * Writes into buf; returns 0 or -ENAMETOOLONG. */
int bench_find_stokerd(const char *explicit_path, char *buf, size_t len);
/* Starts stokerd in a fresh temp dir and waits (20 ms polls, 10 s) until
 * stk_connect() succeeds.  ram may be NULL (the daemon's default). */
int bench_daemon_start(struct bench_daemon *d, const char *stokerd, const char *ram,
		       const char *allow_root, const struct bench_emul *em, bool quiet);
/* SIGTERM, waitpid (SIGKILL after 10 s), removes the temp dir.  Returns 0
 * when the daemon exited 0, -ECHILD-like negative errno otherwise (printed). */
int bench_daemon_stop(struct bench_daemon *d);
/* Makes a temp dir under $TMPDIR or /var/tmp (a disk, not tmpfs, so the
 * page cache can be dropped) named prefix.XXXXXX. */
int bench_mkdtemp(const char *prefix, char *buf, size_t len);
/* Removes dir and everything below it.  Returns 0 or the first -errno. */
int bench_rmtree(const char *dir);
/* Writes the demo dataset: count files of log-uniform sizes in [min, max]
 * filled from a PRNG seeded with seed, fsync'ed so their pages can be dropped. */
int bench_make_demo_dataset(const char *dir, unsigned count, uint64_t min, uint64_t max,
			    uint64_t seed);

#endif /* STOKER_BENCH_H */

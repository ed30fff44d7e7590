/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench internals: the simulated trainer (trainer.c), hot delivery of
 * resident objects (hot.c), the daemon it spawns and the demo dataset it
 * builds (daemon.c), and the report (stoker-bench.c, report.c, html.c).
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

struct stk_client;
struct stk_dataset;
struct stk_dataset_status;

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

/*
 * What each step of one trainer run did: when it began (seconds from the
 * run's start), how long it waited for its batch (the step's stall), how
 * long it computed, and the batch's bytes.  The runner mallocs the arrays;
 * bench_steps_free() frees them.
 */
struct bench_steps {
	size_t n; /* steps recorded */
	double *start_s;
	double *wait_s;
	double *compute_s;
	uint64_t *bytes;
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
	/*
	 * stoker: the stall stokerd counted from the waits this run's
	 * connection reported (stk_stats() self_* fields, taken after the last
	 * step), and the daemon-wide share of its avoided-stall estimate that
	 * rests on its model alone; 0 from a daemon older than protocol 5.
	 */
	double self_stall_s, self_stall_fetch_s, self_stall_avoided_s;
	double d_stall_avoided_model_s;
	uint64_t d_waits, d_delivered_bytes;
	uint32_t resident_at_start; /* stoker: objects already cached when the run began */
	/* Owned by the run; the medians of median_result() hold none (n 0). */
	struct bench_steps steps;
};

/* At most this many --repeat runs or --hot rounds. */
#define BENCH_MAX_ROUNDS 99u
/* At most this many object sizes in one --hot run. */
#define BENCH_HOT_MAX_SIZES 8u

/* What --hot times for each object size; one round runs each once. */
enum bench_hot_kind {
	BENCH_HOT_GETS,		/* stk_get + stk_release, no byte touched */
	BENCH_HOT_STREAM,	/* stk_get, hash every byte, stk_release */
	BENCH_HOT_BATCH_GETS,	/* stk_get_batch + stk_release_batch, no byte touched */
	BENCH_HOT_BATCH_STREAM, /* stk_get_batch, hash every byte, stk_release_batch */
	BENCH_HOT_PRIVATE,	/* the hash over private copies of the objects: the ceiling */
	BENCH_HOT_PAGECACHE,	/* open, read into one reused buffer, close, hash */
	BENCH_HOT_KINDS
};

/* One timed loop: items (gets, or files) and their bytes in seconds. */
struct bench_rate {
	uint64_t items;
	uint64_t bytes;
	double seconds;
};

/* How --hot measures each size. */
struct bench_hot_cfg {
	double seconds;	 /* length of each timed loop */
	unsigned rounds; /* each kind once per round; medians over rounds */
	unsigned batch;	 /* objects per stk_get_batch(), before the caps in hot.c */
	uint64_t seed;	 /* the shuffled order in which every loop walks the objects */
};

/* Results of --hot for one object size. */
struct bench_hot_size {
	uint64_t size; /* bytes per object */
	uint32_t count;
	double warm_s;
	uint64_t warm_bytes;
	uint32_t warm_state; /* STK_WARM_* */
	unsigned batch;	     /* objects per batched get, as capped */
	bool have_batch;     /* libstoker has stk_get_batch() (STK_HAVE_GET_BATCH) */
	uint64_t gets, hits; /* every view got, timed or not, and those with STK_VIEW_HIT */
	/* Sums of per-object hashes of one untimed pass over all objects by
	 * each way that reads bytes (STREAM, BATCH_STREAM, PRIVATE,
	 * PAGECACHE); they must agree. */
	uint64_t checksum[BENCH_HOT_KINDS];
	bool checksums_match;
	unsigned rounds; /* rounds completed */
	struct bench_rate runs[BENCH_MAX_ROUNDS][BENCH_HOT_KINDS];
};

/* Results of --warm-only. */
struct bench_warm {
	double seconds;
	double daemon_cpu_s; /* user + system seconds stokerd spent in it; < 0: unknown */
	uint64_t bytes;	     /* resident bytes at the end */
	uint32_t objects, resident, failed;
	uint32_t state;
	uint64_t promoted; /* of the daemon's objects, those read from tier 1 (all time) */
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
/*
 * Writes size bytes of seeded random data to fd, path naming it for the
 * message, through buf (chunk bytes).  Returns 0, or -errno after saying why
 * on stderr; -EINTR when bench_stop is set.
 */
int bench_write_random(int fd, const char *path, uint64_t size, uint64_t seed, void *buf,
		       size_t chunk);
/* Hash of every byte of buf, the work a trainer does to use a sample. */
uint64_t bench_touch(const void *buf, uint64_t len);

/* --- the two readers (trainer.c) --- */
/* Allocates s for n steps, zeroed.  Returns 0 or -ENOMEM (s then empty). */
int bench_steps_alloc(struct bench_steps *s, size_t n);
/* Frees what bench_steps_alloc() allocated and empties s; s may be empty. */
void bench_steps_free(struct bench_steps *s);
/* Both fill r->steps, which the caller frees with bench_steps_free(), also
 * when they fail. */
int bench_run_direct(const struct bench_dataset *ds, const struct bench_run_cfg *rc,
		     struct bench_result *r);
int bench_run_stoker(const struct bench_dataset *ds, const struct bench_run_cfg *rc,
		     const char *sock, struct bench_result *r);
int bench_run_warm(const struct bench_dataset *ds, const char *sock, struct bench_warm *w);
/* Connects to the daemon at sock (NULL: the default) and opens file://DIR/. */
int bench_open_dataset(const struct bench_dataset *ds, const char *sock, struct stk_client **c,
		       struct stk_dataset **d);
/* Fills *out (malloc'd, the caller frees) with the daemon's index of each of
 * our objects, found by key, so every reader walks the same objects whatever
 * order the daemon lists them in.  -EINVAL when the listings differ. */
int bench_map_indices(const struct bench_dataset *ds, struct stk_dataset *d, uint32_t **out);
/* stk_warm(d), then polls until the warm is done, stopped by the budget, or
 * every object has arrived or failed; gives up after 60 s without progress.
 * *seconds is the time from the request to the end; *st the last status. */
int bench_warm_wait(struct stk_dataset *d, double *seconds, struct stk_dataset_status *st);

/* --- hot delivery (hot.c) --- */
/* Writes count files of size bytes each into a new directory dir (made
 * under a temp name beside it and renamed when complete, so dir is never
 * half written), content from a PRNG seeded from (seed, size, file), all
 * synced so that writeback does not run during the measurements. */
int bench_hot_make_dataset(const char *dir, uint64_t size, uint32_t count, uint64_t seed);
/* Warms ds (whose objects must all have h->size bytes) into the daemon at
 * sock, checks that every way of reading delivers the same bytes, then runs
 * cfg->rounds rounds of every BENCH_HOT_* loop, each cfg->seconds long.
 * Fills *h (h->size and h->count are the caller's).  Returns -EBADMSG,
 * with every figure filled in, when the bytes differed. */
int bench_run_hot_size(const struct bench_dataset *ds, const char *sock,
		       const struct bench_hot_cfg *cfg, struct bench_hot_size *h);

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

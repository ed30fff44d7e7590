/* SPDX-License-Identifier: MIT */
/*
 * End-to-end test harness: starts the real stokerd (STOKERD_PATH) on a socket
 * in a fresh temporary directory, makes datasets with deterministic content,
 * and checks bytes with a 64-bit hash.
 *
 * Each Criterion test uses the one daemon in e2e_d:
 *
 *   Test(e2e_x, y, .init = e2e_init, .fini = e2e_fini, .timeout = 60) {
 *           e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "16M", NULL });
 *           ...
 *           e2e_daemon_stop(&e2e_d);   // SIGTERM; asserts it exits 0
 *   }
 *
 * e2e_fini kills a daemon the test left running (a failed assertion) and
 * removes the directory.  The daemon also dies with the test process
 * (PR_SET_PDEATHSIG), so a crashed or timed-out test leaves nothing behind.
 *
 * Functions named e2e_* assert with Criterion and must only be called from the
 * test's main thread.  Functions named e2x_* never assert: they return an
 * error and print why to stderr, so forked children and threads may use them.
 */
#ifndef STOKER_E2E_HARNESS_H
#define STOKER_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stoker.h"

#define E2E_KIB 1024ull
#define E2E_MIB (1024ull * 1024ull)

struct e2e_daemon {
	pid_t pid;	/* 0 when not running */
	char dir[128];	/* the test's temporary directory */
	char root[160]; /* dir/root: the daemon's --allow-root */
	char sock[160]; /* dir/stokerd.sock */
	char log[160];	/* dir/stokerd.log: the daemon's stdout and stderr */
};

extern struct e2e_daemon e2e_d;

/* Criterion .init / .fini for e2e_d. */
void e2e_init(void);
void e2e_fini(void);

/*
 * Starts stokerd --foreground --socket d->sock --allow-root d->root
 * --log-level warn --ram 256M, then extra (NULL-terminated, may be NULL; a
 * later flag overrides an earlier one), and waits until a client can connect.
 */
void e2e_daemon_start(struct e2e_daemon *d, const char *const *extra);
/* Sends SIGTERM and asserts the daemon exits with status 0 within timeout_s. */
void e2e_daemon_stop(struct e2e_daemon *d);
void e2e_daemon_stop_timeout(struct e2e_daemon *d, int timeout_s);
/* Waits for the daemon to exit; returns the waitpid() status, or -1 on timeout. */
int e2x_daemon_wait(struct e2e_daemon *d, int timeout_s);
/* Prints the daemon's log to stderr, each line prefixed. */
void e2e_dump_log(const struct e2e_daemon *d);
/* True if the daemon's log contains needle. */
bool e2e_log_contains(const struct e2e_daemon *d, const char *needle);

/* Connects to the daemon. e2e_connect asserts success. */
int e2x_connect(const char *sock, struct stk_client **out);
struct stk_client *e2e_connect(const struct e2e_daemon *d);
/* stk_stats with the size set; asserts success. */
struct stk_stats e2e_stats(struct stk_client *c);

/* A seeded PRNG (splitmix64): the same seed gives the same bytes everywhere. */
struct e2e_rng {
	uint64_t s;
};
uint64_t e2e_rand(struct e2e_rng *r);
/* Uniform in [0, n). */
uint64_t e2e_rand_below(struct e2e_rng *r, uint64_t n);
void e2e_shuffle(uint32_t *a, size_t n, struct e2e_rng *r);

/* A 64-bit hash of n bytes (8 bytes a step, length folded in). */
uint64_t e2e_hash(const void *p, size_t n);

/*
 * Writes size bytes generated from seed to path (parent directories are
 * created).  Returns 0 or -errno.
 */
int e2x_write_file(const char *path, uint64_t size, uint64_t seed);
/* Reads a file back: its hash and size. Returns 0 or -errno. */
int e2x_file_hash(const char *path, uint64_t *hash, uint64_t *size);
/* mkdir -p. Returns 0 or -errno. */
int e2x_mkdirs(const char *path);

/* An object written by e2e_dataset_make: its key (path below the dataset). */
struct e2e_obj {
	char key[96];
	uint64_t size;
	uint64_t hash; /* of the file as read back from disk */
};

struct e2e_dataset {
	char dir[256];	   /* absolute, no trailing '/' */
	char uri[272];	   /* file://dir/ */
	struct e2e_obj *o; /* sorted by key, as the daemon lists them */
	size_t n;
	uint64_t bytes;
};

/*
 * Makes a dataset of n files in dir with the given sizes.  With nest > 0 the
 * files are spread over nested directories up to nest levels deep.  Content
 * comes from seed.  Asserts on failure.  Free with e2e_dataset_free().
 */
void e2e_dataset_make(struct e2e_dataset *ds, const char *dir, const uint64_t *sizes, size_t n,
		      int nest, uint64_t seed);
void e2e_dataset_free(struct e2e_dataset *ds);

/*
 * Checks that an opened stk_dataset lists exactly ds's objects, in order.
 * Returns 0, or -1 after printing the first difference.
 */
int e2x_check_catalog(struct stk_dataset *sds, const struct e2e_dataset *ds);

/*
 * Gets object i and compares its bytes with want (size and hash).  Returns 0,
 * or the stk_get error / -EBADMSG for a mismatch, after printing why.  The
 * view is released unless keep is non-NULL, in which case it is stored there.
 * flags (may be NULL) receives the view's flags.
 */
int e2x_get_check(struct stk_dataset *sds, size_t i, const struct e2e_obj *want, uint32_t *flags,
		  struct stk_view *keep);

/*
 * The same through stk_get_fd(): checks the fd is a sealed memfd of the right
 * size, reads it with pread, closes it and calls stk_release_index().
 */
int e2x_get_fd_check(struct stk_dataset *sds, size_t i, const struct e2e_obj *want);

/*
 * Runs argv[0] (a path) with stdin from /dev/null and stdout and stderr
 * captured into malloc'd, NUL-terminated buffers (*out, *err; the caller
 * frees them).  Returns the wait status.  Asserts when the program cannot be
 * run or runs longer than 60 s.  The captures pass through files in e2e_d.dir.
 */
int e2e_run(const char *const *argv, char **out, size_t *outlen, char **err);

/* How many descriptors process pid holds (from /proc), or -1. */
int e2x_fd_count(pid_t pid);

/* Sleeps ms milliseconds. */
void e2x_sleep_ms(unsigned ms);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t e2x_now_ns(void);

/* Waits for a forked child; returns its wait status, or -1 after timeout_s (then kills it). */
int e2x_wait_child(pid_t pid, int timeout_s);

/* How many listening TCP sockets process pid holds (from /proc). */
int e2x_tcp_listeners(pid_t pid);

#endif

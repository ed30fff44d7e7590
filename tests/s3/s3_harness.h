/* SPDX-License-Identifier: MIT */
/*
 * End-to-end harness for the s3:// and http:// transports: starts real peers
 * on loopback (s3rver, nginx, the fault proxy) and a real stokerd on a socket
 * in a temporary directory, uploads generated objects, and checks what the
 * daemon delivers byte for byte.
 *
 * Every process a test starts dies with it (PR_SET_PDEATHSIG), writes its
 * output to a log file in the test's directory, and is stopped by th_*_stop()
 * or th_teardown().  The directory is removed at teardown unless
 * $STK_TEST_KEEP is set (then its path is printed).
 *
 * Functions returning int return 0 or a negative errno, and print a line
 * saying what failed to stderr; the tests assert on them.
 */
#ifndef STK_TESTS_S3_HARNESS_H
#define STK_TESTS_S3_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "stoker.h"

struct th_proc {
	pid_t pid; /* 0: not running */
	char name[32];
	char log[512]; /* its stdout and stderr */
};

struct th_s3rver {
	struct th_proc proc;
	int port;
	char endpoint[64]; /* http://127.0.0.1:PORT */
	char dir[512];	   /* its data directory */
};

struct th_nginx {
	struct th_proc proc;
	int port;
	char root[512];	      /* the directory it serves */
	char base[64];	      /* http://127.0.0.1:PORT */
	char access_log[512]; /* '$remote_addr "$request" $status $bytes range="" auth=""' */
};

struct th_proxy {
	struct th_proc proc;
	int port;
	char base[64];	  /* http://127.0.0.1:PORT */
	char stats[512];  /* JSON counts, rewritten after every request */
	char reqlog[512]; /* one line per request */
};

struct th_daemon {
	struct th_proc proc;
	char sock[512];
	struct stk_client *c;
};

/* The test's temporary directory, made by th_setup(). */
extern char th_dir[256];

/* Makes th_dir. Returns 0 or -errno. */
int th_setup(const char *name);

/*
 * Closes d's client, stops stokerd with SIGTERM and asserts that it exited 0
 * (a sanitizer report or a crash fails the test, after its log tail is
 * printed).  Tests call it last.
 */
void th_stokerd_finish(struct th_daemon *d);

/*
 * For .fini: stops every process still running (stokerd first) and removes
 * th_dir.  Criterion ignores assertions made in .fini, so a stokerd that did
 * not exit 0 here (the test failed early, or did not call
 * th_stokerd_finish) makes it abort(), which Criterion reports as a crash in
 * teardown and the test binary's exit status carries to ctest.
 */
void th_teardown(void);

/*
 * Skips the test, with a marker ctest's SKIP_REGULAR_EXPRESSION recognises
 * (Criterion's own "[SKIP]" also labels tests a --filter left out).
 */
#define TH_SKIP_MARK "stoker-test-skipped: "
#define th_skip(why)                                                                               \
	do {                                                                                       \
		/* Criterion prints no skip reason at --verbose=0. */                              \
		fprintf(stderr, TH_SKIP_MARK "%s\n", (why));                                       \
		cr_skip_test(TH_SKIP_MARK "%s", (why));                                            \
	} while (0)

/* Returns why s3rver cannot run here (no node), or NULL when it can. */
const char *th_s3rver_unavailable(void);
/* Returns why nginx cannot run here, or NULL. */
const char *th_nginx_unavailable(void);

/* Starts s3rver on a free port with the NULL-terminated buckets created. */
int th_s3rver_start(struct th_s3rver *s, const char *const *buckets);

/* Starts nginx (no master, foreground) serving root on a free port. */
int th_nginx_start(struct th_nginx *n, const char *root);

/*
 * nginx writes a request's access log line after it sent the response, so a
 * client can see the response before the line exists.  This makes a request
 * of its own and waits until nginx has logged it: lines for the requests that
 * finished before are then in the log.  Returns 0 or -ETIMEDOUT.
 */
int th_nginx_sync(struct th_nginx *n);

/*
 * Starts tests/tools/faultproxy.py in front of 127.0.0.1:upstream_port with
 * the NULL-terminated extra arguments (--rate, --seed, --kinds ...).
 */
int th_proxy_start(struct th_proxy *p, int upstream_port, const char *const *args);

/* Reads an integer field of the proxy's stats ("requests", "injected"). -1 if absent. */
long th_proxy_stat(const struct th_proxy *p, const char *field);

/*
 * Starts stokerd ($STK_TEST_STOKERD, else the one built here) in the foreground on a socket in
 * th_dir, allowed to serve file:// below th_dir, with the NULL-terminated extra arguments and the
 * NULL-terminated "NAME=VALUE" environment overrides ("NAME=" removes
 * NAME), and connects d->c once it answers.
 */
int th_stokerd_start(struct th_daemon *d, const char *const *args, const char *const *env);

/*
 * Returns why stokerd cannot be started in namespaces of its own here (no
 * unshare(1), not root), or NULL when it can.
 */
const char *th_netns_unavailable(void);

/*
 * th_stokerd_start, with stokerd in an empty network namespace of its own
 * (unshare -n): not even loopback is up there, so nothing it sends can
 * leave it.  The control socket, a file in th_dir, still reaches it.  With
 * hosts (a file path), also in a mount namespace of its own where that file
 * is bind-mounted over /etc/hosts, so names resolve as the test says and the
 * system's file is untouched.
 */
int th_stokerd_start_isolated(struct th_daemon *d, const char *hosts, const char *const *args,
			      const char *const *env);

/* Sends SIGTERM and waits; SIGKILL after timeout_ms. Returns the wait status, or -1. */
int th_proc_stop(struct th_proc *p, int timeout_ms);

/* Prints the last bytes of p's log to stderr. */
void th_proc_dump(const struct th_proc *p, size_t tail);

/*
 * Test data: the byte at offset off of the object with this seed is a pure
 * function of (seed, off), so any range can be regenerated without keeping
 * the object in memory.
 */
void th_fill(uint64_t seed, uint64_t off, void *buf, size_t len);

/* Returns -1 when data[0, size) is the object with this seed, else the first offset that differs.
 */
int64_t th_diff(uint64_t seed, const void *data, uint64_t size);

/* Unsigned PUT of the generated object (seed, size) to url. Returns the HTTP status, or -errno. */
long th_put(const char *url, uint64_t seed, uint64_t size);

/*
 * PUTs many objects on one keep-alive connection: urls[i] receives the bytes of (seeds[i],
 * sizes[i]). Returns 0, or the first failure's HTTP status / -errno.
 */
long th_put_many(const char *const *urls, const uint64_t *seeds, const uint64_t *sizes, size_t n);

/* Unsigned PUT of text to url. Returns the HTTP status, or -errno. */
long th_put_text(const char *url, const char *text);

/* Percent-encodes a key for a URL path ('/' kept), into a th_fmt() buffer. */
const char *th_url_path(const char *key);

/* Writes the generated object (seed, size) to path, making its parent directories. */
int th_write_file(const char *path, uint64_t seed, uint64_t size);

/* Writes text to path. */
int th_write_text(const char *path, const char *text);

/* Formats into a thread's rotating buffers (32 slots of 1 KiB), for building paths and URIs. */
const char *th_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns true when file contains needle. */
bool th_file_contains(const char *path, const char *needle);

/* Reads a whole file, NUL-terminated; *len (may be NULL) its size. NULL on error. Caller frees. */
char *th_slurp(const char *path, size_t *len);

/* Monotonic milliseconds. */
uint64_t th_now_ms(void);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * libstoker against a daemon that stops answering: the call timeout
 * ($STOKER_TIMEOUT, stk_connect_opts.timeout_ms) and its liveness probe.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* A one-object dataset of size bytes under the daemon's root. */
static void make(struct e2e_dataset *ds, uint64_t size)
{
	const uint64_t sizes[] = { size, 4096 };
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/timeout", e2e_d.root);
	e2e_dataset_make(ds, dir, sizes, 2, 0, 77);
}

static void sigstop_daemon(void)
{
	cr_assert_eq(kill(e2e_d.pid, SIGSTOP), 0, "SIGSTOP: %s", strerror(errno));
}

/* Resumes the daemon and stops it; it must still exit cleanly. */
static void sigcont_and_stop(void)
{
	cr_assert_eq(kill(e2e_d.pid, SIGCONT), 0, "SIGCONT: %s", strerror(errno));
	e2e_daemon_stop(&e2e_d);
}

/* One call made from its own thread, so that several wait on one connection. */
struct waiter_call {
	pthread_t t;
	struct stk_client *c;
	struct stk_dataset *ds; /* NULL: stk_stats */
	int r;
	uint64_t ns;
	char msg[512];
};

static void *waiter_main(void *arg)
{
	struct waiter_call *w = arg;
	uint64_t t0 = e2x_now_ns();
	if (w->ds) {
		struct stk_view v;
		w->r = stk_get(w->ds, 0, &v);
		if (!w->r)
			stk_release(&v);
	} else {
		struct stk_stats st = { .size = sizeof(st) };
		w->r = stk_stats(w->c, &st);
	}
	w->ns = e2x_now_ns() - t0;
	snprintf(w->msg, sizeof(w->msg), "%s", stk_errmsg());
	return NULL;
}

static void check_timed_out(const struct waiter_call *w, const char *what)
{
	cr_assert_eq(w->r, -ETIMEDOUT, "%s on a stopped daemon returned %d (%s): %s", what, w->r,
		     stk_strerror(w->r), w->msg);
	cr_assert_lt(w->ns, 3000000000ull, "%s took %.2f s to time out", what, (double)w->ns / 1e9);
	cr_assert(strstr(w->msg, "has not answered for") && strstr(w->msg, e2e_d.sock) &&
		      strstr(w->msg, "stopped or overloaded?"),
		  "%s: stk_errmsg() is '%s'", what, w->msg);
}

Test(e2e_client, stopped_daemon_times_out_every_waiting_call, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	struct e2e_dataset ds;
	make(&ds, 100000);
	cr_assert_eq(setenv("STOKER_TIMEOUT", "0.5", 1), 0);
	/* --no-follow: object 0 must still be absent (a resident one needs no daemon). */
	e2e_daemon_start(&e2e_d, (const char *[]){ "--no-follow", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	int r = stk_dataset_open(c, ds.uri, 0, &sds);
	cr_assert_eq(r, 0, "open: %s", stk_errmsg());
	cr_assert_eq(e2x_get_check(sds, 1, &ds.o[1], NULL, NULL), 0);

	sigstop_daemon();
	/* A GET and a STATS from two threads and a STATS from this one: all wait on one socket. */
	struct waiter_call w[3] = { { .c = c, .ds = sds }, { .c = c }, { .c = c } };
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&w[i].t, NULL, waiter_main, &w[i]), 0);
	waiter_main(&w[2]);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i].t, NULL);
	check_timed_out(&w[0], "stk_get");
	check_timed_out(&w[1], "stk_stats");
	check_timed_out(&w[2], "stk_stats");

	/* The connection stays dead, with the same reason, and fails at once. */
	struct waiter_call again = { .c = c };
	waiter_main(&again);
	check_timed_out(&again, "stk_stats after the timeout");
	cr_assert_lt(again.ns, 100000000ull, "a call on a dead connection waited");

	/* A new connection's handshake times out too. */
	struct stk_client *c2 = NULL;
	uint64_t t0 = e2x_now_ns();
	r = e2x_connect(e2e_d.sock, &c2);
	uint64_t dt = e2x_now_ns() - t0;
	cr_assert_eq(r, -ETIMEDOUT, "stk_connect to a stopped daemon: %d (%s)", r, stk_errmsg());
	cr_assert_lt(dt, 3000000000ull, "stk_connect took %.2f s", (double)dt / 1e9);
	cr_assert(strstr(stk_errmsg(), "has not answered for"), "%s", stk_errmsg());

	stk_dataset_close(sds);
	stk_close(c);
	sigcont_and_stop();
	e2e_dataset_free(&ds);
}

Test(e2e_client, timeout_from_connect_opts, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	cr_assert_eq(unsetenv("STOKER_TIMEOUT"), 0);
	e2e_daemon_start(&e2e_d, NULL);

	/* A caller built before timeout_ms existed: its opts_size stops short of it. */
	struct stk_connect_opts old = { .opts_size = offsetof(struct stk_connect_opts, timeout_ms),
					.socket_path = e2e_d.sock };
	struct stk_client *c = NULL;
	int r = stk_connect(&old, &c);
	cr_assert_eq(r, 0, "connect with the old opts_size: %s", stk_errmsg());
	stk_close(c);

	struct stk_connect_opts o = { .opts_size = sizeof(o),
				      .socket_path = e2e_d.sock,
				      .timeout_ms = 500 };
	r = stk_connect(&o, &c);
	cr_assert_eq(r, 0, "connect: %s", stk_errmsg());
	sigstop_daemon();
	struct waiter_call w = { .c = c };
	waiter_main(&w);
	check_timed_out(&w, "stk_stats with timeout_ms 500");
	stk_close(c);
	sigcont_and_stop();
}

Test(e2e_client, timeout_zero_waits_forever_and_bad_values_are_refused, .init = e2e_init,
     .fini = e2e_fini, .timeout = 60)
{
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = NULL;

	static const char *const bad[] = { "soon", "-1", "1e3", "0.5s", " 1", "." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(setenv("STOKER_TIMEOUT", bad[i], 1), 0);
		int r = e2x_connect(e2e_d.sock, &c);
		cr_assert_eq(r, -EINVAL, "STOKER_TIMEOUT=%s: connect returned %d", bad[i], r);
		cr_assert(strstr(stk_errmsg(), "STOKER_TIMEOUT"), "%s", stk_errmsg());
	}

	/* 0 = never: a stopped daemon keeps the call waiting until it resumes. */
	cr_assert_eq(setenv("STOKER_TIMEOUT", "0", 1), 0);
	c = e2e_connect(&e2e_d);
	sigstop_daemon();
	struct waiter_call w = { .c = c };
	cr_assert_eq(pthread_create(&w.t, NULL, waiter_main, &w), 0);
	e2x_sleep_ms(1500);
	cr_assert_eq(kill(e2e_d.pid, SIGCONT), 0);
	pthread_join(w.t, NULL);
	cr_assert_eq(w.r, 0, "stk_stats with STOKER_TIMEOUT=0: %d (%s)", w.r, w.msg);
	cr_assert_geq(w.ns, 1400000000ull, "stk_stats returned after %.2f s while stopped",
		      (double)w.ns / 1e9);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

/* A GET that takes three timeouts: the daemon answers the probes, so the GET completes. */
Test(e2e_client, slow_get_outlives_the_timeout, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	struct e2e_dataset ds;
	make(&ds, 3 * E2E_MIB + 7);
	cr_assert_eq(setenv("STOKER_TIMEOUT", "0.5", 1), 0);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--emulate-latency", "1500", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	int r = stk_dataset_open(c, ds.uri, 0, &sds);
	cr_assert_eq(r, 0, "open: %s", stk_errmsg());
	struct stk_view v;
	r = e2x_get_check(sds, 0, &ds.o[0], NULL, &v);
	cr_assert_eq(r, 0, "a 1.5 s GET with a 0.5 s timeout: %d (%s)", r, stk_errmsg());
	cr_assert_geq(v.wait_ns, 1400000000ull, "the GET took only %.2f s: no latency emulated?",
		      (double)v.wait_ns / 1e9);
	stk_release(&v);
	/* The connection is still good afterwards. */
	e2e_stats(c);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* SPDX-License-Identifier: MIT */
/*
 * Clients and the daemon coming and going: a client killed while it holds
 * objects frees its pins; views outlive their client; SIGTERM finishes the
 * delivery in flight and exits 0.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void make_ds(struct e2e_dataset *ds, const char *name, size_t n, uint64_t size)
{
	uint64_t sizes[16];
	cr_assert_leq(n, 16);
	for (size_t i = 0; i < n; i++)
		sizes[i] = size + 2 * i + 1;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", e2e_d.root, name);
	e2e_dataset_make(ds, dir, sizes, n, 0, 11);
}

/* Reads one byte from fd within timeout_ms; returns it, or -1. */
static int read_byte(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	char b;
	return read(fd, &b, 1) == 1 ? (unsigned char)b : -1;
}

/* The doomed client: holds 3 views and 2 fds, says so on fd, then waits to be killed. */
static void holder(const struct e2e_dataset *ds, int fd)
{
	struct stk_client *c;
	struct stk_dataset *sds;
	struct stk_view v[3];
	char verdict = 'e';
	if (e2x_connect(e2e_d.sock, &c) || stk_dataset_open(c, ds->uri, 0, &sds)) {
		fprintf(stderr, "holder: %s\n", stk_errmsg());
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if (e2x_get_check(sds, (size_t)i, &ds->o[i], NULL, &v[i]))
			goto out;
	for (int i = 3; i < 5; i++) {
		int ofd;
		uint64_t size;
		if (stk_get_fd(sds, (size_t)i, &ofd, &size) || size != ds->o[i].size) {
			fprintf(stderr, "holder: stk_get_fd %d: %s\n", i, stk_errmsg());
			goto out;
		}
	}
	verdict = 'k';
out:
	if (write(fd, &verdict, 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

Test(e2e_lifecycle, killed_client_frees_its_pins, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, "pins", 8, 300 * E2E_KIB);
	/* --no-follow: only the objects got are fetched and pinned, as counted below. */
	e2e_daemon_start(&e2e_d, (const char *[]){ "--no-follow", NULL });
	int p[2];
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		holder(&ds, p[1]);
	}
	close(p[1]);
	int b = read_byte(p[0], 30000);
	close(p[0]);
	if (b != 'k') {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("the holder did not get its objects (%d)", b);
	}

	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.pinned_objects, 5, "%llu objects pinned while the holder holds 5",
		     (unsigned long long)st.pinned_objects);
	cr_assert_eq(st.clients, 2);

	cr_assert_eq(kill(pid, SIGKILL), 0);
	int ws = e2x_wait_child(pid, 10);
	cr_assert(ws != -1 && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

	uint64_t deadline = e2x_now_ns() + 5000000000ull;
	do {
		e2x_sleep_ms(5);
		st = e2e_stats(c);
	} while ((st.pinned_objects || st.clients != 1) && e2x_now_ns() < deadline);
	cr_assert_eq(st.pinned_objects, 0, "%llu objects still pinned 5 s after the holder died",
		     (unsigned long long)st.pinned_objects);
	cr_assert_eq(st.clients, 1, "%llu clients 5 s after the holder died",
		     (unsigned long long)st.clients);

	/* The daemon goes on serving the same objects. */
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	for (size_t i = 0; i < ds.n; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/*
 * stoker.h: "Views obtained through the client stay mapped and readable until
 * released; datasets must be closed before the client."  So a program may
 * close its dataset and client first and release its views afterwards.  Runs
 * in a child so that a crash there is a failed exit status, not a dead test.
 */
static int outlive(const struct e2e_dataset *ds)
{
	struct stk_client *c;
	struct stk_dataset *sds;
	struct stk_view v[2];
	if (e2x_connect(e2e_d.sock, &c) || stk_dataset_open(c, ds->uri, 0, &sds))
		return 10;
	for (int i = 0; i < 2; i++)
		if (e2x_get_check(sds, (size_t)i, &ds->o[i], NULL, &v[i]))
			return 11;
	stk_dataset_close(sds);
	stk_close(c);
	int bad = 0;
	for (int i = 0; i < 2; i++) {
		if (v[i].size != ds->o[i].size || e2e_hash(v[i].data, v[i].size) != ds->o[i].hash)
			bad++;
		stk_release(&v[i]);
	}
	return bad ? 12 : 0;
}

Test(e2e_lifecycle, views_outlive_dataset_and_client, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, "outlive", 2, 100 * E2E_KIB);
	e2e_daemon_start(&e2e_d, NULL);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(outlive(&ds));
	int st = e2x_wait_child(pid, 30);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "reading and releasing views after stk_dataset_close + stk_close failed: %s %d",
		  st == -1	  ? "timeout"
		  : WIFEXITED(st) ? "exit"
				  : "signal",
		  st == -1	  ? 0
		  : WIFEXITED(st) ? WEXITSTATUS(st)
				  : WTERMSIG(st));
	/* The daemon dropped the closed client's pins. */
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_stats s = e2e_stats(c);
	for (int i = 0; i < 500 && (s.pinned_objects || s.clients != 1); i++) {
		e2x_sleep_ms(5);
		s = e2e_stats(c);
	}
	cr_assert_eq(s.pinned_objects, 0);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

struct slow_get {
	pthread_t t;
	struct stk_dataset *sds;
	const struct e2e_obj *want;
	int r;
	uint64_t done_ns, wait_ns;
};

static void *slow_get_main(void *arg)
{
	struct slow_get *g = arg;
	struct stk_view v;
	g->r = e2x_get_check(g->sds, 0, g->want, NULL, &v);
	g->done_ns = e2x_now_ns();
	if (!g->r) {
		g->wait_ns = v.wait_ns;
		stk_release(&v);
	}
	return NULL;
}

Test(e2e_lifecycle, sigterm_finishes_inflight_delivery, .init = e2e_init, .fini = e2e_fini,
     .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, "slow", 2, 2 * E2E_MIB);
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--emulate-latency", "500", "--no-follow", NULL });
	struct stk_client *getter = e2e_connect(&e2e_d);
	struct stk_client *watcher = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(getter, ds.uri, 0, &sds), 0, "%s", stk_errmsg());

	struct slow_get g = { .sds = sds, .want = &ds.o[0] };
	cr_assert_eq(pthread_create(&g.t, NULL, slow_get_main, &g), 0);
	/* SIGTERM once the fetch is under way. */
	uint64_t deadline = e2x_now_ns() + 5000000000ull;
	struct stk_stats st;
	do {
		st = e2e_stats(watcher);
	} while (st.inflight_objects == 0 && e2x_now_ns() < deadline && (e2x_sleep_ms(2), 1));
	cr_assert_eq(st.inflight_objects, 1, "the get's fetch never started");
	uint64_t kill_ns = e2x_now_ns();
	cr_assert_eq(kill(e2e_d.pid, SIGTERM), 0);

	pthread_join(g.t, NULL);
	cr_assert_eq(g.r, 0, "the get in flight at SIGTERM failed: %s", stk_strerror(g.r));
	cr_assert_gt(g.done_ns, kill_ns,
		     "the get finished before SIGTERM: the test proves nothing");
	cr_assert_geq(g.wait_ns, 300000000u, "the get waited only %llu ns for a 500 ms object",
		      (unsigned long long)g.wait_ns);

	int ws = e2x_daemon_wait(&e2e_d, 30);
	if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws))
		e2e_dump_log(&e2e_d);
	cr_assert_neq(ws, -1, "stokerd did not exit within 30 s of SIGTERM");
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "stokerd ended with status 0x%x", ws);

	/* It is gone: no new connections, and the old ones see the end. */
	struct stk_client *late;
	int r = e2x_connect(e2e_d.sock, &late);
	cr_assert(r == -ENOENT || r == -ECONNREFUSED, "connect after exit: %d", r);
	struct stk_stats s2 = { .size = sizeof(s2) };
	cr_assert_eq(stk_stats(watcher, &s2), -EPIPE);
	stk_dataset_close(sds);
	stk_close(getter);
	stk_close(watcher);
	e2e_dataset_free(&ds);
}

/* One daemon per socket: a second one refuses, and the first goes on serving. */
Test(e2e_lifecycle, second_daemon_on_the_socket_refuses, .init = e2e_init, .fini = e2e_fini,
     .timeout = 90)
{
	struct e2e_dataset ds;
	make_ds(&ds, "two", 2, 10000);
	e2e_daemon_start(&e2e_d, NULL);
	char *out, *err;
	size_t len;
	int st =
	    e2e_run((const char *[]){ STOKERD_PATH, "--foreground", "--socket", e2e_d.sock,
				      "--allow-root", e2e_d.root, "--log-level", "warn", NULL },
		    &out, &len, &err);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "a second stokerd on %s: status 0x%x",
		  e2e_d.sock, st);
	cr_assert(strstr(err, e2e_d.sock), "its stderr does not name the socket: %s", err);
	free(out);
	free(err);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	cr_assert_eq(e2x_get_check(sds, 1, &ds.o[1], NULL, NULL), 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* A daemon that crashed leaves its socket file; the next one replaces it. */
Test(e2e_lifecycle, restart_after_a_crash, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, "crash", 3, 50000);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	cr_assert_eq(kill(e2e_d.pid, SIGKILL), 0);
	int ws = e2x_daemon_wait(&e2e_d, 10);
	cr_assert(ws != -1 && WIFSIGNALED(ws));
	struct stat sb;
	cr_assert(stat(e2e_d.sock, &sb) == 0 && S_ISSOCK(sb.st_mode), "no stale socket to test");
	struct stk_stats st = { .size = sizeof(st) };
	cr_assert_eq(stk_stats(c, &st), -EPIPE, "a client of the dead daemon");
	stk_close(c);

	e2e_daemon_start(&e2e_d, NULL);
	c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	for (size_t i = 0; i < ds.n; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/*
 * Two handles of one dataset in one connection (e.g. two DataLoader workers
 * sharing a client): closing one must not drop what the other still holds.
 */
Test(e2e_lifecycle, closing_one_handle_keeps_the_pins_of_another, .init = e2e_init,
     .fini = e2e_fini, .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, "handles", 3, 20000);
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--no-follow", NULL }); /* pins by GET, counted */
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *h1, *h2;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &h1), 0, "%s", stk_errmsg());
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &h2), 0, "%s", stk_errmsg());
	struct stk_view v1, v2;
	cr_assert_eq(e2x_get_check(h1, 0, &ds.o[0], NULL, &v1), 0);
	cr_assert_eq(e2x_get_check(h2, 1, &ds.o[1], NULL, &v2), 0);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.pinned_objects, 2);

	stk_release(&v2);
	stk_dataset_close(h2);
	/* CLOSE and RELEASE have no reply: STATS, answered in order, comes after them. */
	st = e2e_stats(c);
	cr_assert_eq(st.pinned_objects, 1,
		     "closing handle 2 left %llu objects pinned; handle 1 still holds object 0",
		     (unsigned long long)st.pinned_objects);
	stk_release(&v1);
	st = e2e_stats(c);
	cr_assert_eq(st.pinned_objects, 0);
	stk_dataset_close(h1);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

struct waiting_get {
	pthread_t t;
	struct stk_dataset *sds;
	size_t index;
	int r;
};

static void *waiting_get_main(void *arg)
{
	struct waiting_get *g = arg;
	struct stk_view v;
	g->r = stk_get(g->sds, g->index, &v);
	if (!g->r)
		stk_release(&v);
	return NULL;
}

/*
 * The daemon dies (SIGKILL): threads blocked in stk_get return -EPIPE instead
 * of hanging, and views taken before stay readable and can be released.
 */
Test(e2e_lifecycle, daemon_crash_wakes_waiters_and_views_survive, .init = e2e_init,
     .fini = e2e_fini, .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, "crash", 4, 1 * E2E_MIB);
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--emulate-latency", "2000", "--no-follow", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	struct stk_dataset_status dst;
	/* Object 0 the slow way (2 s), kept as a view. */
	struct stk_view held;
	cr_assert_eq(e2x_get_check(sds, 0, &ds.o[0], NULL, &held), 0);

	struct waiting_get g[3];
	for (int i = 0; i < 3; i++) {
		g[i] = (struct waiting_get){ .sds = sds, .index = 1 + (size_t)i, .r = 1 };
		cr_assert_eq(pthread_create(&g[i].t, NULL, waiting_get_main, &g[i]), 0);
	}
	/* Wait until all three fetches are under way, then kill the daemon. */
	uint64_t deadline = e2x_now_ns() + 5000000000ull;
	do {
		e2x_sleep_ms(5);
		cr_assert_eq(stk_dataset_status(sds, &dst), 0);
	} while (dst.inflight < 3 && e2x_now_ns() < deadline);
	cr_assert_eq(dst.inflight, 3);
	uint64_t t0 = e2x_now_ns();
	cr_assert_eq(kill(e2e_d.pid, SIGKILL), 0);
	e2x_daemon_wait(&e2e_d, 10);
	for (int i = 0; i < 3; i++) {
		pthread_join(g[i].t, NULL);
		cr_assert_eq(g[i].r, -EPIPE, "a get waiting when the daemon died returned %d",
			     g[i].r);
	}
	cr_assert_lt(e2x_now_ns() - t0, 2000000000ull, "the waiters took more than 2 s to notice");
	cr_assert_eq(held.size, ds.o[0].size);
	cr_assert_eq(e2e_hash(held.data, held.size), ds.o[0].hash,
		     "a view changed after the daemon died");
	stk_release(&held);
	struct stk_view v;
	cr_assert_eq(stk_get(sds, 0, &v), -EPIPE);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_dataset_free(&ds);
}

/* SIGINT stops the daemon as SIGTERM does, with clients connected. */
Test(e2e_lifecycle, sigint_stops_cleanly, .init = e2e_init, .fini = e2e_fini, .timeout = 60)
{
	struct e2e_dataset ds;
	make_ds(&ds, "int", 2, 5000);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	struct stk_view v;
	cr_assert_eq(e2x_get_check(sds, 1, &ds.o[1], NULL, &v), 0);
	cr_assert_eq(kill(e2e_d.pid, SIGINT), 0);
	int ws = e2x_daemon_wait(&e2e_d, 30);
	if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws))
		e2e_dump_log(&e2e_d);
	cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "status 0x%x after SIGINT",
		  ws);
	struct stat sb;
	cr_assert_neq(stat(e2e_d.sock, &sb), 0, "the socket file outlived a clean stop");
	cr_assert_eq(e2e_hash(v.data, v.size), ds.o[1].hash);
	stk_release(&v);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_dataset_free(&ds);
}

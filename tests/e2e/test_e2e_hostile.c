/* SPDX-License-Identifier: MIT */
/*
 * What a hostile (or careless) client does to the daemon: hold every
 * descriptor, every byte, endless plans, endless spellings of one path; two
 * daemons on one socket; files rewritten under the cache.  In each case the
 * offender gets a clear error, and everyone else keeps being served.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"
#include "harness.h"

#define MSG_MAX 600

static void write_file(const char *path, uint64_t size, uint64_t seed)
{
	int r = e2x_write_file(path, size, seed);
	cr_assert_eq(r, 0, "write %s: %s", path, strerror(-r));
}

static struct stk_dataset *open_ok(struct stk_client *c, const char *uri, unsigned flags)
{
	struct stk_dataset *sds;
	int r = stk_dataset_open(c, uri, flags, &sds);
	cr_assert_eq(r, 0, "open %s: %s: %s", uri, stk_strerror(r), stk_errmsg());
	return sds;
}

/* The daemon's CPU time so far (user + system), in seconds. */
static double cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = 0;
	/* Fields after "(comm)": state is 3rd; utime and stime are the 14th and 15th. */
	char *p = strrchr(buf, ')');
	cr_assert_not_null(p);
	unsigned long long ut = 0, st = 0;
	cr_assert_eq(
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Lines of the daemon's log that contain needle. */
static int log_lines(const struct e2e_daemon *d, const char *needle)
{
	FILE *f = fopen(d->log, "re");
	cr_assert_not_null(f);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static int sock_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/*
 * Item 2: at its descriptor limit the daemon used to spin in accept() and log
 * half a million lines a second.  It must pause, log once, and serve again
 * once the connections go.
 */
Test(e2e_hostile, fd_limit_flood_costs_no_cpu, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	e2e_daemon_start(&e2e_d, NULL);
	struct rlimit rl = { .rlim_cur = 64, .rlim_max = 64 };
	cr_assert_eq(prlimit(e2e_d.pid, RLIMIT_NOFILE, &rl, NULL), 0, "prlimit: %s",
		     strerror(errno));
	enum { N = 150 };
	int fds[N], held = 0;
	for (int i = 0; i < N; i++) {
		fds[i] = sock_connect(e2e_d.sock);
		held += fds[i] >= 0;
	}
	cr_assert_geq(held, 100, "only %d connections were made", held);
	e2x_sleep_ms(300);
	double c0 = cpu_s(e2e_d.pid);
	e2x_sleep_ms(2000);
	double used = cpu_s(e2e_d.pid) - c0;
	cr_assert_lt(used, 0.2, "stokerd used %.2f s of CPU in 2 s with the flood held", used);
	int lines = log_lines(&e2e_d, "accept");
	cr_assert(lines >= 1 && lines <= 3, "%d log lines about accept", lines);

	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* Serving again: a new client is answered within seconds. */
	uint64_t t0 = e2x_now_ns();
	struct stk_client *c = NULL;
	while (e2x_connect(e2e_d.sock, &c) != 0) {
		cr_assert_lt(e2x_now_ns() - t0, 5000000000ull, "no service after the flood");
		e2x_sleep_ms(50);
	}
	struct stk_stats st = e2e_stats(c);
	cr_assert_leq(st.clients, 2);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

/* Item 4: a client that gets without releasing is refused; others are served. */
Test(e2e_hostile, greedy_client_refused_others_served, .init = e2e_init, .fini = e2e_fini,
     .timeout = 90)
{
	char p[512], uri[600];
	for (int i = 0; i < 16; i++) {
		snprintf(p, sizeof(p), "%s/g/%02d.bin", e2e_d.root, i);
		write_file(p, E2E_MIB, (uint64_t)i);
	}
	snprintf(p, sizeof(p), "%s/other.bin", e2e_d.root);
	write_file(p, 100 * E2E_KIB, 99);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "16M", NULL });

	struct stk_client *greedy = e2e_connect(&e2e_d);
	snprintf(uri, sizeof(uri), "file://%s/g/", e2e_d.root);
	struct stk_dataset *g = open_ok(greedy, uri, 0);
	struct stk_view v[16];
	int got = 0, r = 0;
	while (got < 16 && (r = stk_get(g, (size_t)got, &v[got])) == 0)
		got++;
	char msg[MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", stk_errmsg());
	cr_assert_eq(r, -ENOBUFS, "get %d: %d %s", got, r, msg);
	cr_assert_eq(got, 8, "the default cap is half the budget: got %d", got);
	cr_assert(strstr(msg, "--client-max-pinned") && strstr(msg, "release"), "message: %s", msg);

	/* Another client is served at once, while the greedy one still holds all it got. */
	struct stk_client *c = e2e_connect(&e2e_d);
	snprintf(uri, sizeof(uri), "file://%s/other.bin", e2e_d.root);
	struct stk_dataset *o = open_ok(c, uri, 0);
	uint64_t t0 = e2x_now_ns();
	struct stk_view ov;
	cr_assert_eq(stk_get(o, 0, &ov), 0, "%s", stk_errmsg());
	cr_assert_lt(e2x_now_ns() - t0, 1000000000ull);
	stk_release(&ov);
	stk_dataset_close(o);
	stk_close(c);

	for (int i = 0; i < got; i++)
		stk_release(&v[i]);
	stk_dataset_close(g);
	stk_close(greedy);
	e2e_daemon_stop(&e2e_d);
}

/*
 * Item 4: when clients' pins hold every byte, a get fails after --pin-wait
 * with a message saying so, instead of hanging; it succeeds once they release.
 */
Test(e2e_hostile, get_blocked_by_pins_fails_after_bounded_wait, .init = e2e_init, .fini = e2e_fini,
     .timeout = 90)
{
	char p[512], uri[600];
	for (int i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), "%s/g/%02d.bin", e2e_d.root, i);
		write_file(p, E2E_MIB, (uint64_t)i);
	}
	snprintf(p, sizeof(p), "%s/other.bin", e2e_d.root);
	write_file(p, 100 * E2E_KIB, 99);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "8M", "--client-max-pinned", "8M",
						   "--pin-wait", "1", NULL });
	struct stk_client *greedy = e2e_connect(&e2e_d);
	snprintf(uri, sizeof(uri), "file://%s/g/", e2e_d.root);
	struct stk_dataset *g = open_ok(greedy, uri, 0);
	struct stk_view v[8];
	for (int i = 0; i < 8; i++)
		cr_assert_eq(stk_get(g, (size_t)i, &v[i]), 0, "get %d: %s", i, stk_errmsg());

	struct stk_client *c = e2e_connect(&e2e_d);
	snprintf(uri, sizeof(uri), "file://%s/other.bin", e2e_d.root);
	struct stk_dataset *o = open_ok(c, uri, 0);
	uint64_t t0 = e2x_now_ns();
	struct stk_view ov;
	int r = stk_get(o, 0, &ov);
	double waited = (double)(e2x_now_ns() - t0) / 1e9;
	cr_assert_eq(r, -ENOBUFS, "get: %d %s", r, stk_errmsg());
	cr_assert(strstr(stk_errmsg(), "unreleased views"), "message: %s", stk_errmsg());
	cr_assert(waited >= 0.9 && waited < 5.0, "failed after %.2f s", waited);

	stk_release(&v[0]);
	cr_assert_eq(stk_get(o, 0, &ov), 0, "after a release: %s", stk_errmsg());
	stk_release(&ov);
	for (int i = 1; i < 8; i++)
		stk_release(&v[i]);
	stk_dataset_close(o);
	stk_close(c);
	stk_dataset_close(g);
	stk_close(greedy);
	e2e_daemon_stop(&e2e_d);
}

/* Item 4: a plan past --client-max-plan is refused and dropped; the daemon does not grow. */
Test(e2e_hostile, plan_growth_is_capped, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	char p[512], uri[600];
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/d/%d.bin", e2e_d.root, i);
		write_file(p, 1000, (uint64_t)i);
	}
	e2e_daemon_start(&e2e_d, (const char *[]){ "--client-max-plan", "100000", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	snprintf(uri, sizeof(uri), "file://%s/d/", e2e_d.root);
	struct stk_dataset *ds = open_ok(c, uri, 0);
	enum { N = 1000000 };
	uint32_t *order = malloc(N * sizeof(*order));
	cr_assert_not_null(order);
	for (uint32_t i = 0; i < N; i++)
		order[i] = i % 4;
	int r = stk_plan(ds, order, N);
	cr_assert_eq(r, -E2BIG, "plan of %d: %d %s", N, r, stk_errmsg());
	cr_assert(strstr(stk_errmsg(), "--client-max-plan"), "message: %s", stk_errmsg());
	/* Within the cap, plans work, also after the refusal. */
	cr_assert_eq(stk_plan(ds, order, 90000), 0, "%s", stk_errmsg());
	/* The cap counts every handle of the client. */
	struct stk_dataset *ds2 = open_ok(c, uri, 0);
	cr_assert_eq(stk_plan(ds2, order, 20000), -E2BIG);
	stk_dataset_close(ds2);
	cr_assert_eq(stk_plan(ds, order, 100000), 0, "a RESET plan replaces: %s", stk_errmsg());
	free(order);
	stk_dataset_close(ds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

/*
 * Item 5: spellings of one path are one dataset, and datasets nobody uses with
 * nothing cached are forgotten: the daemon's descriptors stay flat.
 */
Test(e2e_hostile, spellings_and_idle_datasets_leave_fds_flat, .init = e2e_init, .fini = e2e_fini,
     .timeout = 90)
{
	char p[512], uri[4200];
	snprintf(p, sizeof(p), "%s/known.bin", e2e_d.root);
	write_file(p, 5000, 1);
	for (int i = 0; i < 40; i++) {
		snprintf(p, sizeof(p), "%s/many/%02d/x.bin", e2e_d.root, i);
		write_file(p, 100, (uint64_t)i);
	}
	e2e_daemon_start(&e2e_d, (const char *[]){ "--dataset-grace", "1", NULL });
	int fds0 = e2x_fd_count(e2e_d.pid);
	for (int i = 0; i < 1000; i++) {
		struct stk_client *c = e2e_connect(&e2e_d);
		int n = snprintf(uri, sizeof(uri), "file://%s/", e2e_d.root);
		for (int k = 0; k < i % 500; k++)
			n += snprintf(uri + n, sizeof(uri) - (size_t)n, "%s", k % 2 ? ".//" : "./");
		snprintf(uri + n, sizeof(uri) - (size_t)n, "known.bin");
		struct stk_dataset *ds = open_ok(c, uri, 0);
		if (i % 100 == 0) {
			struct stk_view v;
			cr_assert_eq(stk_get(ds, 0, &v), 0, "%s", stk_errmsg());
			stk_release(&v);
		}
		stk_dataset_close(ds);
		stk_close(c);
	}
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.datasets, 1, "%llu datasets for one file", (unsigned long long)st.datasets);
	/* 40 directories opened once each, nothing fetched: forgotten after the grace. */
	for (int i = 0; i < 40; i++) {
		snprintf(uri, sizeof(uri), "file://%s/many/%02d/", e2e_d.root, i);
		stk_dataset_close(open_ok(c, uri, 0));
	}
	cr_assert_eq(e2e_stats(c).datasets, 41);
	e2x_sleep_ms(2500);
	st = e2e_stats(c);
	cr_assert_eq(st.datasets, 1, "%llu datasets after the grace period",
		     (unsigned long long)st.datasets);
	int fds1 = e2x_fd_count(e2e_d.pid);
	/* + this client's connection and the cached object's memfd. */
	cr_assert_leq(fds1, fds0 + 3, "daemon fds %d before, %d after", fds0, fds1);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

/* Item 6: two daemons started at once on one socket: exactly one stays, and it is reachable. */
Test(e2e_hostile, two_daemons_one_socket, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	for (int trial = 0; trial < 10; trial++) {
		char sock[200], log[2][220];
		snprintf(sock, sizeof(sock), "%s/race%d.sock", e2e_d.dir, trial);
		pid_t pid[2];
		for (int k = 0; k < 2; k++) {
			snprintf(log[k], sizeof(log[k]), "%s/race%d.%d.log", e2e_d.dir, trial, k);
			const char *argv[] = { STOKERD_PATH,   "-f",	   "--socket",
					       sock,	       "--ram",	   "16M",
					       "--allow-root", e2e_d.root, NULL };
			pid[k] = stk_test_spawn(STOKERD_PATH, argv, NULL, log[k]);
			cr_assert_gt(pid[k], 0);
		}
		/* The loser exits at once; the winner listens. */
		int alive = -1, exited = 0;
		uint64_t t0 = e2x_now_ns();
		while (exited == 0 && e2x_now_ns() - t0 < 10000000000ull) {
			for (int k = 0; k < 2; k++) {
				int st;
				if (waitpid(pid[k], &st, WNOHANG) == pid[k]) {
					cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0,
						  "trial %d: the loser's status 0x%x", trial, st);
					exited++;
					alive = !k;
				}
			}
			e2x_sleep_ms(10);
		}
		cr_assert_eq(exited, 1, "trial %d: %d daemons exited", trial, exited);
		struct stk_client *c = NULL;
		t0 = e2x_now_ns();
		while (e2x_connect(sock, &c) != 0) {
			cr_assert_lt(e2x_now_ns() - t0, 5000000000ull,
				     "trial %d: no daemon answers", trial);
			e2x_sleep_ms(10);
		}
		stk_close(c);
		FILE *f = fopen(log[!alive], "re");
		cr_assert_not_null(f);
		char line[1024];
		bool said = false;
		while (fgets(line, sizeof(line), f))
			said |= strstr(line, "another stokerd") != NULL;
		fclose(f);
		cr_assert(said, "trial %d: the loser did not say why", trial);
		kill(pid[alive], SIGTERM);
		cr_assert_eq(e2x_wait_child(pid[alive], 10), 0);
		struct stat sb;
		cr_assert_eq(stat(sock, &sb), -1, "the winner left its socket behind");
	}
}

/* Item 7: a file rewritten after it was cached is fetched again at the next OPEN. */
Test(e2e_hostile, rewritten_file_is_refetched, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	char p[512], uri[600];
	snprintf(p, sizeof(p), "%s/d/f.bin", e2e_d.root);
	write_file(p, 50000, 1);
	e2e_daemon_start(&e2e_d, NULL);
	snprintf(uri, sizeof(uri), "file://%s/d/", e2e_d.root);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct e2e_obj want = { .key = "f.bin" };
	cr_assert_eq(e2x_file_hash(p, &want.hash, &want.size), 0);
	struct stk_dataset *ds = open_ok(c, uri, 0);
	cr_assert_eq(e2x_get_check(ds, 0, &want, NULL, NULL), 0);
	stk_dataset_close(ds);

	/* The same size, other bytes, and a later mtime. */
	write_file(p, 50000, 2);
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = time(NULL) + 5 } };
	cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
	cr_assert_eq(e2x_file_hash(p, &want.hash, &want.size), 0);
	ds = open_ok(c, uri, 0);
	uint32_t flags = 0;
	cr_assert_eq(e2x_get_check(ds, 0, &want, &flags, NULL), 0, "stale bytes served");
	cr_assert_eq(flags & STK_VIEW_HIT, 0, "served from the cache, not refetched");

	/* A file added to the directory is listed at the next OPEN too. */
	stk_dataset_close(ds);
	snprintf(p, sizeof(p), "%s/d/g.bin", e2e_d.root);
	write_file(p, 777, 3);
	ds = open_ok(c, uri, 0);
	cr_assert_eq(stk_dataset_count(ds), 2);
	stk_dataset_close(ds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

/* Item 7: a manifest size smaller than the file is an error naming the manifest line. */
Test(e2e_hostile, manifest_size_too_small_names_the_line, .init = e2e_init, .fini = e2e_fini,
     .timeout = 90)
{
	char p[512], m[512], text[2048];
	snprintf(p, sizeof(p), "%s/big.bin", e2e_d.root);
	write_file(p, 5000, 1);
	snprintf(m, sizeof(m), "%s/list.manifest", e2e_d.root);
	int n = snprintf(text, sizeof(text), "# two lines of comment\n\nfile://%s 1000\n", p);
	int fd = open(m, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, (size_t)n), n);
	close(fd);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	char uri[600];
	snprintf(uri, sizeof(uri), "file://%s", m);
	struct stk_dataset *ds = open_ok(c, uri, STK_DS_MANIFEST);
	struct stk_view v;
	int r = stk_get(ds, 0, &v);
	cr_assert_eq(r, -EIO, "get: %d %s", r, stk_errmsg());
	cr_assert(strstr(stk_errmsg(), "line 3") && strstr(stk_errmsg(), "1000"), "message: %s",
		  stk_errmsg());
	stk_dataset_close(ds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

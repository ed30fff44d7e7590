/* SPDX-License-Identifier: MIT */
/*
 * libstoker across fork(), as stoker.h's "Fork" paragraph states it: a client
 * belongs to the process that connected it.  A forked child's calls that
 * would talk to the daemon fail with -ECHILD without touching the parent's
 * socket, its releases and closes send nothing, the views it inherited stay
 * readable, and a child that connects for itself (a DataLoader worker) gets
 * a connection of its own.  The parent's close ends its connection even while
 * children hold copies of the socket.
 *
 * Children report through their exit status and stderr; they never assert
 * (see harness.h) and leave with _exit().
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Every test in this file: Criterion 2.4.1 leaks under ASan when timeouts differ within a file. */
#define TIMEOUT_S 60

/* A dataset of n objects under the daemon's root, sizes varied around size. */
static void make_ds(struct e2e_dataset *ds, const char *name, size_t n, uint64_t size)
{
	uint64_t sizes[64];
	cr_assert_leq(n, 64);
	for (size_t i = 0; i < n; i++)
		sizes[i] = size / (1 + i % 4) + 13 * i + 1;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", e2e_d.root, name);
	e2e_dataset_make(ds, dir, sizes, n, 0, 0xf0f0 + n);
}

static struct stk_dataset *open_ds(struct stk_client *c, const struct e2e_dataset *ds)
{
	struct stk_dataset *sds = NULL;
	int r = stk_dataset_open(c, ds->uri, 0, &sds);
	cr_assert_eq(r, 0, "open %s: %s (%s)", ds->uri, stk_strerror(r), stk_errmsg());
	return sds;
}

/* Describes a wait status for a message. */
static const char *status_str(int st, char *buf, size_t len)
{
	if (st == -1)
		snprintf(buf, len, "timed out (killed)");
	else if (WIFEXITED(st))
		snprintf(buf, len, "exit %d", WEXITSTATUS(st));
	else
		snprintf(buf, len, "signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	return buf;
}

static void assert_child_ok(pid_t pid, int timeout_s, const char *what)
{
	char b[64];
	int st = e2x_wait_child(pid, timeout_s);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s (see stderr)", what,
		  status_str(st, b, sizeof(b)));
}

/*
 * Checks, in a child, that a call on a client connected by owner was refused
 * as stoker.h promises.  Returns 0, or 1 after printing why not.
 */
static int refused(const char *what, int r, pid_t owner)
{
	char want[256];
	snprintf(want, sizeof(want),
		 "this stoker client was connected by pid %ld; a forked child must call "
		 "stk_connect() for its own connection",
		 (long)owner);
	if (r == -ECHILD && !strcmp(stk_errmsg(), want))
		return 0;
	fprintf(stderr,
		"child %ld: %s on the parent's client returned %d (%s) '%s'; want %d '%s'\n",
		(long)getpid(), what, r, stk_strerror(r), stk_errmsg(), -ECHILD, want);
	return 1;
}

/* Hashes what fd holds (size bytes from offset 0). Returns 0 with *hash set, or -errno. */
static int fd_hash(int fd, uint64_t size, uint64_t *hash)
{
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	uint64_t off = 0;
	while (off < size) {
		ssize_t n = pread(fd, buf + off, size - off, (off_t)off);
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		off += (uint64_t)n;
	}
	*hash = e2e_hash(buf, size);
	free(buf);
	return 0;
}

/* Polls the daemon (bounded) until it counts clients clients and pinned pins. */
static struct stk_stats settle(struct stk_client *c, uint64_t clients, uint64_t pinned)
{
	struct stk_stats st = e2e_stats(c);
	for (int i = 0; i < 500 && (st.clients != clients || st.pinned_objects != pinned); i++) {
		e2x_sleep_ms(10);
		st = e2e_stats(c);
	}
	return st;
}

/*
 * The child of inherited_client_is_refused: everything that would talk to the
 * daemon is refused, everything local works, and the releases and closes
 * free only the child's copies.  v maps object 0 and fd is object 1's memfd.
 */
static int refused_child(const struct e2e_dataset *ds, struct stk_client *c,
			 struct stk_dataset *sds, struct stk_view *v, int fd, pid_t owner)
{
	int bad = 0;
	uint64_t t0 = e2x_now_ns();
	struct stk_view v2;
	bad += refused("stk_get", stk_get(sds, 2, &v2), owner);
	int fd2 = -1;
	uint64_t size = 0;
	bad += refused("stk_get_fd", stk_get_fd(sds, 2, &fd2, &size), owner);
	const uint32_t order[] = { 2, 1, 0 };
	bad += refused("stk_plan", stk_plan(sds, order, 3), owner);
	bad += refused("stk_warm", stk_warm(sds), owner);
	struct stk_dataset_status dst;
	bad += refused("stk_dataset_status", stk_dataset_status(sds, &dst), owner);
	struct stk_stats st = { .size = sizeof(st) };
	bad += refused("stk_stats", stk_stats(c, &st), owner);
	struct stk_endpoint_stats es[2];
	size_t nes;
	bad += refused("stk_endpoint_stats", stk_endpoint_stats(c, es, 2, &nes), owner);
	struct stk_dataset *sds2 = NULL;
	bad += refused("stk_dataset_open", stk_dataset_open(c, ds->uri, 0, &sds2), owner);
	uint64_t dt = e2x_now_ns() - t0;
	if (dt > 500000000ull) {
		fprintf(stderr, "child: the refused calls took %.2f s, not at once\n",
			(double)dt / 1e9);
		bad++;
	}

	/* The catalog is local and stays usable. */
	size_t idx = 99;
	const char *key = NULL;
	if (stk_dataset_count(sds) != ds->n || stk_dataset_find(sds, ds->o[1].key, &idx) ||
	    idx != 1 || stk_dataset_object(sds, 2, &key, NULL) || strcmp(key, ds->o[2].key)) {
		fprintf(stderr, "child: the inherited catalog is wrong\n");
		bad++;
	}
	/* The inherited view and descriptor still hold the bytes. */
	if (v->size != ds->o[0].size || e2e_hash(v->data, v->size) != ds->o[0].hash) {
		fprintf(stderr, "child: the inherited view of %s reads wrong\n", ds->o[0].key);
		bad++;
	}
	uint64_t h = 0;
	if (fd_hash(fd, ds->o[1].size, &h) || h != ds->o[1].hash) {
		fprintf(stderr, "child: the inherited fd of %s reads wrong\n", ds->o[1].key);
		bad++;
	}

	stk_release(v);
	close(fd);
	stk_release_index(sds, 1);
	stk_dataset_close(sds);
	stk_close(c);
	return bad ? 1 : 0;
}

Test(e2e_fork, inherited_client_is_refused_and_releases_nothing, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct e2e_dataset ds;
	make_ds(&ds, "refused", 4, 200 * E2E_KIB);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct stk_view v;
	cr_assert_eq(e2x_get_check(sds, 0, &ds.o[0], NULL, &v), 0);
	int fd;
	uint64_t size;
	int r = stk_get_fd(sds, 1, &fd, &size);
	cr_assert_eq(r, 0, "stk_get_fd: %s", stk_errmsg());
	struct stk_stats before = e2e_stats(c);
	cr_assert_eq(before.pinned_objects, 2, "%llu pinned while holding a view and an fd",
		     (unsigned long long)before.pinned_objects);

	pid_t owner = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(refused_child(&ds, c, sds, &v, fd, owner));
	int cst = e2x_wait_child(pid, 20);

	/*
	 * Anything the child had sent went out on this socket before the STATS
	 * below, so the daemon would have seen it first: no GET reached it, and
	 * the child's releases and closes freed none of the parent's holds.
	 * Expected rather than asserted, so that a failure reports these and the
	 * child's verdict together.
	 */
	struct stk_stats after = e2e_stats(c);
	cr_expect_eq(after.gets, before.gets, "the daemon served %llu GETs during the child's life",
		     (unsigned long long)(after.gets - before.gets));
	cr_expect_eq(after.pinned_objects, 2,
		     "%llu pinned after the child released and closed its copies; want the "
		     "parent's 2",
		     (unsigned long long)after.pinned_objects);
	cr_expect_eq(after.clients, 1);
	char b[64];
	cr_assert(cst != -1 && WIFEXITED(cst) && WEXITSTATUS(cst) == 0,
		  "the child using the inherited client: %s (see stderr)",
		  status_str(cst, b, sizeof(b)));
	cr_assert(after.gets == before.gets && after.pinned_objects == 2 && after.clients == 1);

	/* The parent's dataset handle is still open in the daemon and its view intact. */
	cr_assert_eq(e2x_get_check(sds, 2, &ds.o[2], NULL, NULL), 0,
		     "the parent's get after the child closed its copy of the dataset");
	cr_assert_eq(e2e_hash(v.data, v.size), ds.o[0].hash);
	uint64_t h = 0;
	cr_assert_eq(fd_hash(fd, size, &h), 0);
	cr_assert_eq(h, ds.o[1].hash);

	/* The parent's own releases still work. */
	stk_release(&v);
	close(fd);
	stk_release_index(sds, 1);
	struct stk_stats st = settle(c, 1, 0);
	cr_assert_eq(st.pinned_objects, 0, "%llu pinned after the parent released both",
		     (unsigned long long)st.pinned_objects);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* Reads every object of ds through a connection of this process's own. Returns 0 or 1. */
static int read_all_own(const struct e2e_dataset *ds, uint64_t seed)
{
	struct stk_client *c;
	struct stk_dataset *sds;
	int r = e2x_connect(e2e_d.sock, &c);
	if (!r && (r = stk_dataset_open(c, ds->uri, 0, &sds)))
		stk_close(c);
	if (r) {
		fprintf(stderr, "pid %ld: own connection: %s: %s\n", (long)getpid(),
			stk_strerror(r), stk_errmsg());
		return 1;
	}
	uint32_t *order = malloc(ds->n * sizeof(*order));
	if (!order)
		return 1;
	for (size_t i = 0; i < ds->n; i++)
		order[i] = (uint32_t)i;
	struct e2e_rng rng = { seed };
	e2e_shuffle(order, ds->n, &rng);
	int bad = 0;
	if (stk_plan(sds, order, ds->n)) {
		fprintf(stderr, "pid %ld: stk_plan: %s\n", (long)getpid(), stk_errmsg());
		bad++;
	}
	for (size_t i = 0; i < ds->n; i++) {
		/* Every third get takes the descriptor instead of a mapping. */
		const struct e2e_obj *o = &ds->o[order[i]];
		if (i % 3 == 2 ? e2x_get_fd_check(sds, order[i], o)
			       : e2x_get_check(sds, order[i], o, NULL, NULL))
			bad++;
	}
	free(order);
	stk_dataset_close(sds);
	stk_close(c);
	return bad ? 1 : 0;
}

/* The grandchild: both inherited clients are refused, each naming its own owner. */
static int grandchild(struct stk_client *parents, pid_t parent, struct stk_client *childs,
		      pid_t child)
{
	struct stk_stats st = { .size = sizeof(st) };
	int bad = refused("stk_stats (the child's client, in the grandchild)",
			  stk_stats(childs, &st), child);
	bad += refused("stk_stats (the parent's client, in the grandchild)",
		       stk_stats(parents, &st), parent);
	return bad ? 1 : 0;
}

static int connecting_child(const struct e2e_dataset *ds, struct stk_client *pc,
			    struct stk_dataset *psds, pid_t parent)
{
	struct stk_stats st = { .size = sizeof(st) };
	int bad = refused("stk_stats", stk_stats(pc, &st), parent);
	bad += read_all_own(ds, 0xc0ffee);

	/* A client this child connects is its own, and is refused in its children. */
	struct stk_client *c;
	int r = e2x_connect(e2e_d.sock, &c);
	if (r) {
		fprintf(stderr, "child: connect: %s\n", stk_errmsg());
		return 1;
	}
	/* The parent's and this one; read_all_own()'s may take a moment to go. */
	for (int i = 0; i < 500; i++) {
		if ((r = stk_stats(c, &st)) || st.clients == 2)
			break;
		e2x_sleep_ms(10);
	}
	if (r || st.clients != 2) {
		fprintf(stderr, "child: stk_stats on its own client: %d, %llu clients (want 2)\n",
			r, (unsigned long long)st.clients);
		bad++;
	}
	pid_t me = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(grandchild(pc, parent, c, me));
	if (pid < 0 || e2x_wait_child(pid, 10) != 0) {
		fprintf(stderr, "child: the grandchild failed\n");
		bad++;
	}
	/* The child's client still works after its own child used (and dropped) its copy. */
	if ((r = stk_stats(c, &st))) {
		fprintf(stderr, "child: stk_stats after the grandchild: %s\n", stk_errmsg());
		bad++;
	}
	stk_close(c);
	stk_dataset_close(psds);
	stk_close(pc);
	return bad ? 1 : 0;
}

Test(e2e_fork, child_that_connects_gets_its_own_connection, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct e2e_dataset ds;
	make_ds(&ds, "own", 12, 150 * E2E_KIB);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct stk_view v;
	cr_assert_eq(e2x_get_check(sds, 3, &ds.o[3], NULL, &v), 0);

	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(connecting_child(&ds, c, sds, parent));
	assert_child_ok(pid, 30, "the child that connected for itself");

	/* The child's connections are gone and the parent's hold and handle are intact. */
	struct stk_stats st = settle(c, 1, 1);
	cr_assert_eq(st.clients, 1, "%llu clients after the child exited",
		     (unsigned long long)st.clients);
	cr_assert_eq(st.pinned_objects, 1, "%llu pinned; want the parent's 1",
		     (unsigned long long)st.pinned_objects);
	cr_assert_eq(e2e_hash(v.data, v.size), ds.o[3].hash);
	cr_assert_eq(e2x_get_check(sds, 4, &ds.o[4], NULL, NULL), 0);
	stk_release(&v);
	st = settle(c, 1, 0);
	cr_assert_eq(st.pinned_objects, 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

#define WORKERS 8

/* A DataLoader worker forked from a main process that holds a client. */
static int worker(const struct e2e_dataset *ds, struct stk_dataset *psds, pid_t parent, int i)
{
	struct stk_view v;
	int bad = refused("stk_get", stk_get(psds, 0, &v), parent);
	bad += read_all_own(ds, 0x5eed00u + (uint64_t)i);
	return bad ? 1 : 0;
}

Test(e2e_fork, forked_workers_each_connect_and_read_everything, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct e2e_dataset ds;
	make_ds(&ds, "workers", 40, 120 * E2E_KIB);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct stk_stats before = e2e_stats(c);

	pid_t parent = getpid();
	pid_t pids[WORKERS];
	fflush(NULL);
	for (int i = 0; i < WORKERS; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0, "fork: %s", strerror(errno));
		if (pids[i] == 0)
			_exit(worker(&ds, sds, parent, i));
	}
	int failed = 0;
	for (int i = 0; i < WORKERS; i++) {
		char b[64];
		int st = e2x_wait_child(pids[i], 40);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "worker %d: %s\n", i, status_str(st, b, sizeof(b)));
			failed++;
		}
	}
	cr_assert_eq(failed, 0, "%d of %d workers failed (see above)", failed, WORKERS);

	struct stk_stats st = settle(c, 1, 0);
	cr_assert_eq(st.clients, 1);
	cr_assert_eq(st.pinned_objects, 0);
	cr_assert_eq(st.gets - before.gets, (uint64_t)WORKERS * ds.n,
		     "the daemon served %llu GETs; want %d workers x %zu objects",
		     (unsigned long long)(st.gets - before.gets), WORKERS, ds.n);
	/* The main process's client was never disturbed. */
	for (size_t i = 0; i < ds.n; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

struct slow_get {
	pthread_t t;
	struct stk_dataset *sds;
	size_t index;
	const struct e2e_obj *want;
	int r;
};

static void *slow_get_main(void *arg)
{
	struct slow_get *g = arg;
	g->r = e2x_get_check(g->sds, g->index, g->want, NULL, NULL);
	return NULL;
}

/* Forked while two parent threads wait on the connection, one reading, one on the condvar. */
static int midcall_child(struct stk_client *c, struct stk_dataset *sds, pid_t parent)
{
	uint64_t t0 = e2x_now_ns();
	struct stk_stats st = { .size = sizeof(st) };
	int bad = refused("stk_stats", stk_stats(c, &st), parent);
	struct stk_view v;
	bad += refused("stk_get", stk_get(sds, 0, &v), parent);
	uint64_t dt = e2x_now_ns() - t0;
	if (dt > 200000000ull) {
		fprintf(stderr, "child: the refused calls took %.2f s\n", (double)dt / 1e9);
		bad++;
	}
	stk_dataset_close(sds);
	stk_close(c); /* frees a mutex and condvar the parent's threads were using */
	return bad ? 1 : 0;
}

Test(e2e_fork, child_forked_mid_call_neither_hangs_nor_steals_replies, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct e2e_dataset ds;
	make_ds(&ds, "midcall", 2, 64 * E2E_KIB);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--emulate-latency", "1000", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);

	struct slow_get g[2];
	for (size_t i = 0; i < 2; i++) {
		g[i] = (struct slow_get){ .sds = sds, .index = i, .want = &ds.o[i] };
		cr_assert_eq(pthread_create(&g[i].t, NULL, slow_get_main, &g[i]), 0);
	}
	e2x_sleep_ms(300); /* both GETs are now waiting for the 1 s fetches */
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.inflight_objects, 2, "%llu objects in flight; want the 2 slow GETs",
		     (unsigned long long)st.inflight_objects);

	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(midcall_child(c, sds, parent));
	assert_child_ok(pid, 10, "the child forked while the parent's threads waited");

	for (size_t i = 0; i < 2; i++) {
		pthread_join(g[i].t, NULL);
		cr_assert_eq(g[i].r, 0, "the parent's GET of %zu: %d", i, g[i].r);
	}
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* Waits until the parent closes the other end of the pipe, holding the inherited socket. */
static int bystander(int rfd)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	return poll(&p, 1, 30000) == 1 ? 0 : 1;
}

Test(e2e_fork, parent_close_ends_its_connection_while_children_live, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct e2e_dataset ds;
	make_ds(&ds, "bystander", 3, 80 * E2E_KIB);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	struct stk_view v;
	cr_assert_eq(e2x_get_check(sds, 1, &ds.o[1], NULL, &v), 0);

	int p[2];
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[1]);
		_exit(bystander(p[0]));
	}
	close(p[0]);

	stk_dataset_close(sds);
	stk_close(c);
	struct stk_client *c2 = e2e_connect(&e2e_d);
	struct stk_stats st = settle(c2, 1, 0);
	cr_assert_eq(st.clients, 1,
		     "%llu clients after the parent closed, while its child holds a copy of the "
		     "socket; want only the observer",
		     (unsigned long long)st.clients);
	cr_assert_eq(st.pinned_objects, 0, "%llu pinned after the parent closed",
		     (unsigned long long)st.pinned_objects);
	cr_assert_eq(kill(pid, 0), 0, "the child holding the socket is gone already");

	/* The view outlives the connection, as stk_close() promises. */
	cr_assert_eq(e2e_hash(v.data, v.size), ds.o[1].hash);
	stk_release(&v);
	close(p[1]);
	assert_child_ok(pid, 10, "the bystander child");
	stk_close(c2);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

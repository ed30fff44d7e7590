/* SPDX-License-Identifier: MIT */
/*
 * Plan groups (prefetch/follow.c, stk_plan_shared()): a DataLoader's main
 * process draws each epoch's order and tells the daemon, and its workers,
 * each on a connection of its own in the same group, read that order
 * interleaved with plan-less gets.  Behind an emulated slow backend, with a
 * dataset larger than the RAM budget, their gets become hits in a
 * reshuffled epoch, which following the last epoch's order cannot predict.
 * Groups on one dataset keep their own plans, connections without a group
 * are followed apart, and the group reaches forked workers through
 * $STOKER_PLAN_GROUP.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Every test in this file: Criterion 2.4.1 leaks under ASan when timeouts differ within a file. */
#define TIMEOUT_S 150

#define NMAX	 96
#define SIZE	 (256 * E2E_KIB)
#define THINK_MS 30   /* the readers' compute per step */
#define LATENCY	 "40" /* ms the backend adds per object */
#define SKIP	 8    /* gets at the start of a stream that are not counted */

static void make_ds(struct e2e_dataset *ds, size_t n)
{
	uint64_t sizes[NMAX];
	cr_assert_leq(n, NMAX);
	for (size_t i = 0; i < n; i++)
		sizes[i] = SIZE - 64 * i;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/ds", e2e_d.root);
	e2e_dataset_make(ds, dir, sizes, n, 0, 7);
}

/* Connects in plan group group ("" for none, NULL for $STOKER_PLAN_GROUP). */
static int connect_group(const char *group, struct stk_client **c)
{
	struct stk_connect_opts o = { .opts_size = sizeof(o),
				      .socket_path = e2e_d.sock,
				      .plan_group = group };
	return stk_connect(&o, c);
}

/* A process's connection and its handle on the dataset. */
struct conn {
	struct stk_client *c;
	struct stk_dataset *sds;
};

static void conn_open(struct conn *k, const char *group, const struct e2e_dataset *ds)
{
	int r = connect_group(group, &k->c);
	cr_assert_eq(r, 0, "connect in group '%s': %s (%s)", group, stk_strerror(r), stk_errmsg());
	r = stk_dataset_open(k->c, ds->uri, 0, &k->sds);
	cr_assert_eq(r, 0, "open %s: %s (%s)", ds->uri, stk_strerror(r), stk_errmsg());
}

static void conn_close(struct conn *k)
{
	stk_dataset_close(k->sds);
	stk_close(k->c);
}

/* A stream of gets: order, read by its workers in turn (get k by worker k % nw). */
struct stream {
	const char *name;
	struct conn *w;
	size_t nw;
	const uint32_t *order;
	unsigned hits; /* among gets SKIP.. */
};

static void sleep_think(void)
{
	e2x_sleep_ms(THINK_MS);
}

/* Reads n steps: at each, every stream gets its next object; then a pause. */
static void run(struct stream *s, size_t ns, const struct e2e_dataset *ds, size_t n)
{
	for (size_t i = 0; i < ns; i++)
		s[i].hits = 0;
	for (size_t k = 0; k < n; k++) {
		for (size_t i = 0; i < ns; i++) {
			uint32_t obj = s[i].order[k], flags = 0;
			int r =
			    e2x_get_check(s[i].w[k % s[i].nw].sds, obj, &ds->o[obj], &flags, NULL);
			cr_assert_eq(r, 0, "%s: get %u failed or returned wrong bytes", s[i].name,
				     obj);
			if (k >= SKIP && (flags & STK_VIEW_HIT))
				s[i].hits++;
		}
		sleep_think();
	}
}

static void start(struct e2e_dataset *ds, size_t n, const char *ram)
{
	make_ds(ds, n);
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--ram", ram, "--emulate-latency", LATENCY, NULL });
}

static void check_stats(struct conn *k)
{
	struct stk_stats st = e2e_stats(k->c);
	cr_expect_leq(st.ram_used, st.ram_budget);
	cr_expect_eq(st.fetch_errors, 0);
}

static void finish(struct e2e_dataset *ds)
{
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(ds);
}

static void shuffled(uint32_t *order, size_t n, struct e2e_rng *r)
{
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	e2e_shuffle(order, n, r);
}

Test(e2e_plan_group, shared_plan_prefetches_reshuffled_epochs, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	const size_t n = 48;
	struct e2e_dataset ds;
	start(&ds, n, "4M"); /* 16 of the 48 objects */
	struct conn main_, w[2];
	conn_open(&main_, "loader", &ds);
	conn_open(&w[0], "loader", &ds);
	conn_open(&w[1], "loader", &ds);
	uint32_t a[NMAX], b[NMAX], c[NMAX];
	struct e2e_rng rng = { 21 };
	shuffled(a, n, &rng);
	shuffled(b, n, &rng);
	shuffled(c, n, &rng);
	struct stream s = { .name = "workers", .w = w, .nw = 2 };

	/* Epoch 1: the main process tells the order, the two workers read it. */
	int r = stk_plan_shared(main_.sds, a, n);
	cr_assert_eq(r, 0, "stk_plan_shared: %s (%s)", stk_strerror(r), stk_errmsg());
	s.order = a;
	run(&s, 1, &ds, n);
	unsigned e1 = s.hits;
	/* Epoch 2, reshuffled: following would predict epoch 1's order. */
	r = stk_plan_shared(main_.sds, b, n);
	cr_assert_eq(r, 0, "stk_plan_shared: %s (%s)", stk_strerror(r), stk_errmsg());
	s.order = b;
	run(&s, 1, &ds, n);
	unsigned e2 = s.hits;
	/* Epoch 3, reshuffled and not told: the daemon follows epoch 2's order, wrongly. */
	s.order = c;
	run(&s, 1, &ds, n);
	unsigned e3 = s.hits;
	cr_log_info("hits among the last %zu gets: epoch 1 %u, epoch 2 %u (shared plans), "
		    "epoch 3 %u (none)",
		    n - SKIP, e1, e2, e3);
	cr_expect_geq(e1, 30, "epoch 1: %u of the last %zu gets were hits", e1, n - SKIP);
	cr_expect_geq(e2, 30, "epoch 2: %u of the last %zu gets were hits", e2, n - SKIP);
	/* About a third by chance: the plan that was right is what makes the difference. */
	cr_expect_leq(e3, 24, "epoch 3, not told: %u of the last %zu gets were hits", e3, n - SKIP);
	check_stats(&main_);
	conn_close(&w[1]);
	conn_close(&w[0]);
	conn_close(&main_);
	finish(&ds);
}

Test(e2e_plan_group, groups_and_ungrouped_streams_keep_apart, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	const size_t n = 96;
	struct e2e_dataset ds;
	start(&ds, n, "6M"); /* 24 of the 96 objects: each of 3 streams needs a few */
	/* Two ranks' loaders on one dataset, and a reader with no group at all. */
	struct conn mg, mh, g[2], h[2], u[2];
	conn_open(&mg, "rank0", &ds);
	conn_open(&mh, "rank1", &ds);
	for (int i = 0; i < 2; i++) {
		conn_open(&g[i], "rank0", &ds);
		conn_open(&h[i], "rank1", &ds);
		conn_open(&u[i], "", &ds);
	}
	uint32_t a[NMAX], b[NMAX], listing[NMAX];
	struct e2e_rng rng = { 5 };
	shuffled(a, n, &rng);
	shuffled(b, n, &rng);
	for (uint32_t i = 0; i < n; i++)
		listing[i] = i;
	int r = stk_plan_shared(mg.sds, a, n);
	cr_assert_eq(r, 0, "stk_plan_shared rank0: %s (%s)", stk_strerror(r), stk_errmsg());
	r = stk_plan_shared(mh.sds, b, n);
	cr_assert_eq(r, 0, "stk_plan_shared rank1: %s (%s)", stk_strerror(r), stk_errmsg());
	struct stream s[3] = {
		{ .name = "rank0", .w = g, .nw = 2, .order = a },
		{ .name = "rank1", .w = h, .nw = 2, .order = b },
		/* Followed as today: the listing order is its first plan. */
		{ .name = "no group", .w = u, .nw = 2, .order = listing },
	};
	run(s, 3, &ds, n);
	cr_log_info("hits among the last %zu gets: rank0 %u, rank1 %u, no group %u", n - SKIP,
		    s[0].hits, s[1].hits, s[2].hits);
	/* Chance is about a quarter; a stream whose plan another overwrote gets that. */
	for (int i = 0; i < 3; i++)
		cr_expect_geq(s[i].hits, (n - SKIP) * 3 / 4,
			      "%s: %u of the last %zu gets were hits", s[i].name, s[i].hits,
			      n - SKIP);
	check_stats(&mg);
	for (int i = 0; i < 2; i++) {
		conn_close(&u[i]);
		conn_close(&h[i]);
		conn_close(&g[i]);
	}
	conn_close(&mh);
	conn_close(&mg);
	finish(&ds);
}

/*
 * A worker forked by the main process after it connected: connects on its
 * own (so in the group of the inherited $STOKER_PLAN_GROUP), reads every
 * second object of order from position first, and exits with its hits.
 */
static void worker(const struct e2e_dataset *ds, const uint32_t *order, size_t n, size_t first)
{
	struct stk_client *c = NULL;
	struct stk_dataset *sds = NULL;
	if (e2x_connect(e2e_d.sock, &c) || stk_dataset_open(c, ds->uri, 0, &sds)) {
		fprintf(stderr, "worker %zu: %s\n", first, stk_errmsg());
		_exit(255);
	}
	unsigned hits = 0;
	e2x_sleep_ms((unsigned)first * THINK_MS);
	for (size_t k = first; k < n; k += 2) {
		uint32_t flags = 0;
		if (e2x_get_check(sds, order[k], &ds->o[order[k]], &flags, NULL))
			_exit(254);
		hits += k >= SKIP && (flags & STK_VIEW_HIT);
		e2x_sleep_ms(2 * THINK_MS);
	}
	stk_dataset_close(sds);
	stk_close(c);
	_exit((int)hits);
}

Test(e2e_plan_group, forked_workers_join_the_group_of_the_environment, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	const size_t n = 48;
	struct e2e_dataset ds;
	start(&ds, n, "4M");
	cr_assert_eq(setenv("STOKER_PLAN_GROUP", "job-7/rank:0", 1), 0);
	struct conn main_;
	conn_open(&main_, NULL, &ds);
	uint32_t order[NMAX];
	struct e2e_rng rng = { 99 };
	shuffled(order, n, &rng);
	int r = stk_plan_shared(main_.sds, order, n);
	cr_assert_eq(r, 0, "stk_plan_shared: %s (%s)", stk_strerror(r), stk_errmsg());
	pid_t pid[2];
	for (size_t i = 0; i < 2; i++) {
		pid[i] = fork();
		cr_assert_geq(pid[i], 0);
		if (pid[i] == 0)
			worker(&ds, order, n, i);
	}
	unsigned hits = 0;
	for (size_t i = 0; i < 2; i++) {
		int st = e2x_wait_child(pid[i], 60);
		cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) < 254,
			  "worker %zu failed (status %d)", i, st);
		hits += (unsigned)WEXITSTATUS(st);
	}
	unsetenv("STOKER_PLAN_GROUP");
	cr_log_info("forked workers: %u of the last %zu gets were hits", hits, n - SKIP);
	cr_expect_geq(hits, 30, "forked workers: %u of the last %zu gets were hits", hits,
		      n - SKIP);
	check_stats(&main_);
	conn_close(&main_);
	finish(&ds);
}

Test(e2e_plan_group, errors_name_the_group, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct e2e_dataset ds;
	make_ds(&ds, 4);
	e2e_daemon_start(&e2e_d, NULL);
	uint32_t order[4] = { 3, 1, 2, 0 };

	/* No group: stk_plan_shared says how to get one. */
	unsetenv("STOKER_PLAN_GROUP");
	struct conn k;
	conn_open(&k, NULL, &ds);
	int r = stk_plan_shared(k.sds, order, 4);
	cr_expect_eq(r, -EINVAL, "no group: %d", r);
	cr_expect(strstr(stk_errmsg(), "STOKER_PLAN_GROUP"), "message: %s", stk_errmsg());
	conn_close(&k);

	/* A bad $STOKER_PLAN_GROUP fails the connect, naming the variable. */
	struct stk_client *c = NULL;
	cr_assert_eq(setenv("STOKER_PLAN_GROUP", "rank 0", 1), 0);
	r = connect_group(NULL, &c);
	cr_expect_eq(r, -EINVAL, "a space: %d", r);
	cr_expect(strstr(stk_errmsg(), "STOKER_PLAN_GROUP: byte 4"), "message: %s", stk_errmsg());
	char longer[STK_PLAN_GROUP_MAX + 2];
	memset(longer, 'g', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	cr_assert_eq(setenv("STOKER_PLAN_GROUP", longer, 1), 0);
	r = connect_group(NULL, &c);
	cr_expect_eq(r, -EINVAL, "too long: %d", r);
	cr_expect(strstr(stk_errmsg(), "STOKER_PLAN_GROUP=ggg"), "message: %s", stk_errmsg());
	longer[STK_PLAN_GROUP_MAX] = 0; /* the longest allowed */
	cr_assert_eq(setenv("STOKER_PLAN_GROUP", longer, 1), 0);
	conn_open(&k, NULL, &ds);
	cr_expect_eq(stk_plan_shared(k.sds, order, 4), 0, "%s", stk_errmsg());
	/* The group is sent: a bad index is the daemon's -ERANGE, an empty order -EINVAL. */
	order[2] = 4;
	cr_expect_eq(stk_plan_shared(k.sds, order, 4), -ERANGE);
	cr_expect_eq(stk_plan_shared(k.sds, order, 0), -EINVAL);
	order[2] = 2;
	conn_close(&k);

	/* opts.plan_group overrides the environment; "" is no group. */
	r = connect_group("", &c);
	cr_assert_eq(r, 0, "%s", stk_errmsg());
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0);
	cr_expect_eq(stk_plan_shared(sds, order, 4), -EINVAL);
	stk_dataset_close(sds);
	stk_close(c);
	r = connect_group("bad\tname", &c);
	cr_expect_eq(r, -EINVAL);
	cr_expect(strstr(stk_errmsg(), "stk_connect_opts.plan_group"), "message: %s", stk_errmsg());
	unsetenv("STOKER_PLAN_GROUP");
	e2e_daemon_stop(&e2e_d);

	/* A daemon that follows no stream refuses a shared plan, saying why. */
	e2e_daemon_start(&e2e_d, (const char *[]){ "--no-follow", NULL });
	conn_open(&k, "g", &ds);
	r = stk_plan_shared(k.sds, order, 4);
	cr_expect_eq(r, -ENOTSUP, "--no-follow: %d", r);
	cr_expect(strstr(stk_errmsg(), "--no-follow"), "message: %s", stk_errmsg());
	conn_close(&k);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* SPDX-License-Identifier: MIT */
/*
 * Many objects of awkward sizes, in nested directories, read by several
 * client processes and by several threads sharing one client, on both event
 * loop backends: every byte must arrive as it is on disk.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NPROC	4
#define NTHREAD 4

/* Sizes where reads go wrong: empty, one byte, page and O_DIRECT edges, chunk edges. */
static const uint64_t edge_sizes[] = {
	0,	     1,
	2,	     3,
	7,	     511,
	512,	     513,
	4095,	     4096,
	4097,	     8191,
	8192,	     8193,
	12289,	     65535,
	65536,	     65537,
	E2E_MIB - 1, E2E_MIB,
	E2E_MIB + 1, 2 * E2E_MIB + 4095,
};
/* Several MiB: more than one 1 MiB read chunk, and more chunks than run at once (8). */
static const uint64_t big_sizes[] = {
	3 * E2E_MIB + 17, 5 * E2E_MIB - 1, 8 * E2E_MIB, 8 * E2E_MIB + 1, 9 * E2E_MIB - 4097,
};

#define NEDGE (sizeof(edge_sizes) / sizeof(edge_sizes[0]))
#define NBIG  (sizeof(big_sizes) / sizeof(big_sizes[0]))

/* Fills sizes: the edge sizes, nbig of the big ones, then nrand random (mostly small, odd). */
static size_t mixed_sizes(uint64_t *sizes, size_t nbig, size_t nrand, uint64_t seed)
{
	size_t n = 0;
	for (size_t i = 0; i < NEDGE; i++)
		sizes[n++] = edge_sizes[i];
	for (size_t i = 0; i < nbig && i < NBIG; i++)
		sizes[n++] = big_sizes[i];
	struct e2e_rng r = { seed };
	for (size_t i = 0; i < nrand; i++) {
		uint64_t p = e2e_rand_below(&r, 100);
		if (p < 70)
			sizes[n++] = e2e_rand_below(&r, 16 * E2E_KIB) | 1;
		else if (p < 95)
			sizes[n++] = 16 * E2E_KIB + e2e_rand_below(&r, 112 * E2E_KIB);
		else
			sizes[n++] = 128 * E2E_KIB + e2e_rand_below(&r, 384 * E2E_KIB);
	}
	return n;
}

static void make_mixed(struct e2e_dataset *ds, const char *name, size_t nbig, size_t nrand,
		       uint64_t seed)
{
	uint64_t *sizes = calloc(NEDGE + NBIG + nrand, sizeof(*sizes));
	cr_assert_not_null(sizes);
	size_t n = mixed_sizes(sizes, nbig, nrand, seed);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", e2e_d.root, name);
	e2e_dataset_make(ds, dir, sizes, n, 3, seed);
	free(sizes);
}

/* Gets n objects in one batch and checks each. Returns how many were wrong (n if it failed). */
static int batch_check(struct stk_dataset *sds, const struct e2e_dataset *ds, const uint32_t *idx,
		       size_t n)
{
	struct stk_view v[16];
	int r = stk_get_batch(sds, idx, n, v);
	if (r) {
		fprintf(stderr, "pid %d: batch of %zu: %s: %s\n", (int)getpid(), n, stk_strerror(r),
			stk_errmsg());
		return (int)n;
	}
	int bad = 0;
	for (size_t k = 0; k < n; k++) {
		const struct e2e_obj *o = &ds->o[idx[k]];
		if (v[k].index != idx[k] || v[k].size != o->size ||
		    e2e_hash(v[k].data, v[k].size) != o->hash) {
			fprintf(stderr, "pid %d: batch view %zu (%s): wrong bytes\n", (int)getpid(),
				k, o->key);
			bad++;
		}
	}
	stk_release_batch(v, n);
	return bad;
}

/*
 * One client process: connects, opens the dataset, checks its catalog, plans
 * its own shuffled order, gets and checks every object.  Returns an exit code.
 */
static int client_proc(const struct e2e_dataset *ds, uint64_t seed)
{
	struct stk_client *c;
	struct stk_dataset *sds;
	int r = e2x_connect(e2e_d.sock, &c);
	if (r) {
		fprintf(stderr, "child: connect: %s\n", stk_errmsg());
		return 10;
	}
	r = stk_dataset_open(c, ds->uri, 0, &sds);
	if (r) {
		fprintf(stderr, "child: open %s: %s\n", ds->uri, stk_errmsg());
		return 11;
	}
	if (e2x_check_catalog(sds, ds))
		return 12;
	uint32_t *order = malloc(ds->n * sizeof(*order));
	if (!order)
		return 13;
	for (size_t i = 0; i < ds->n; i++)
		order[i] = (uint32_t)i;
	struct e2e_rng rng = { seed };
	e2e_shuffle(order, ds->n, &rng);
	r = stk_plan(sds, order, ds->n);
	if (r) {
		fprintf(stderr, "child: plan: %s\n", stk_errmsg());
		return 14;
	}
	int bad = 0;
	for (size_t i = 0; i < ds->n; i++) {
		/*
		 * Every fourth step gets the next objects of up to 256 KiB, at
		 * most 8, in one batch (a batch holds all of its objects at
		 * once: these tests' budgets are small).
		 */
		size_t k = 0;
		while (i % 4 == 3 && k < 8 && i + k < ds->n &&
		       ds->o[order[i + k]].size <= 256 * 1024)
			k++;
		if (k > 1) {
			bad += batch_check(sds, ds, order + i, k);
			i += k - 1;
			continue;
		}
		/* Every third get takes the descriptor instead of a mapping. */
		const struct e2e_obj *o = &ds->o[order[i]];
		if (i % 3 == 2 ? e2x_get_fd_check(sds, order[i], o)
			       : e2x_get_check(sds, order[i], o, NULL, NULL))
			bad++;
	}
	free(order);
	stk_dataset_close(sds);
	stk_close(c);
	if (bad)
		fprintf(stderr, "child %d: %d of %zu objects wrong\n", (int)getpid(), bad, ds->n);
	return bad ? 1 : 0;
}

/* Runs nproc client processes over ds and asserts they all exit 0. */
static void run_procs(const struct e2e_dataset *ds, int nproc, int timeout_s)
{
	pid_t pids[NPROC];
	fflush(NULL);
	for (int i = 0; i < nproc; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0, "fork: %s", strerror(errno));
		if (pids[i] == 0)
			_exit(client_proc(ds, 0x5eed0000u + (uint64_t)i));
	}
	int failed = 0;
	for (int i = 0; i < nproc; i++) {
		int st = e2x_wait_child(pids[i], timeout_s);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "client process %d: %s %d\n", i,
				st == -1	? "timed out"
				: WIFEXITED(st) ? "exit"
						: "signal",
				st == -1	? timeout_s
				: WIFEXITED(st) ? WEXITSTATUS(st)
						: WTERMSIG(st));
			failed++;
		}
	}
	cr_assert_eq(failed, 0, "%d of %d client processes failed (see above)", failed, nproc);
}

/*
 * Waits (bounded) until the daemon holds no pins and only this client is
 * connected: releases are posted without a reply, and a client's exit is seen
 * by the daemon a moment later.
 */
static struct stk_stats settled_stats(struct stk_client *c)
{
	struct stk_stats st = e2e_stats(c);
	for (int i = 0; i < 500 && (st.pinned_objects || st.inflight_objects || st.clients != 1);
	     i++) {
		e2x_sleep_ms(10);
		st = e2e_stats(c);
	}
	return st;
}

static void check_backend(const char *want)
{
	if (!strcmp(want, "io_uring") && e2e_log_contains(&e2e_d, "io_uring is not available")) {
		fprintf(stderr, "e2e: io_uring is not available here; the default backend run "
				"used threads\n");
		return;
	}
	char needle[64];
	snprintf(needle, sizeof(needle), "%s backend", want);
	cr_assert(e2e_log_contains(&e2e_d, needle), "stokerd did not log '%s'", needle);
}

static void procs_test(const char *backend_flag, size_t nbig, size_t nrand, int nproc)
{
	struct e2e_dataset ds;
	make_mixed(&ds, "mixed", nbig, nrand, 42);
	cr_assert_geq(ds.n, nrand);
	e2e_daemon_start(
	    &e2e_d, (const char *[]){ "--log-level", "info", "--ram", "256M", backend_flag, NULL });
	check_backend(backend_flag ? "threads" : "io_uring");

	run_procs(&ds, nproc, 100);

	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_stats st = settled_stats(c);
	cr_assert_geq(st.gets, (uint64_t)nproc * ds.n, "daemon counted %llu gets, want >= %llu",
		      (unsigned long long)st.gets, (unsigned long long)nproc * ds.n);
	cr_assert_eq(st.fetch_errors, 0);
	/* The budget holds everything: each object is fetched exactly once, never evicted. */
	cr_assert_eq(st.evictions, 0);
	cr_assert_eq(st.fetches, ds.n, "%llu fetches for %zu objects",
		     (unsigned long long)st.fetches, ds.n);
	cr_assert_eq(st.fetch_bytes, ds.bytes);
	cr_assert_eq(st.pinned_objects, 0, "%llu objects still pinned after every client left",
		     (unsigned long long)st.pinned_objects);
	cr_assert_eq(st.clients, 1, "%llu clients connected, only this one should be",
		     (unsigned long long)st.clients);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

Test(e2e_integrity, many_objects_four_processes, .init = e2e_init, .fini = e2e_fini, .timeout = 120)
{
	procs_test(NULL, NBIG, 1000, NPROC);
}

Test(e2e_integrity, no_uring_three_processes, .init = e2e_init, .fini = e2e_fini, .timeout = 120)
{
	procs_test("--no-uring", 3, 300, 3);
}

/*
 * Four processes with different plans through a budget of a fifth of the
 * dataset, where the largest objects are 9 MiB: demand misses wait for room
 * held by pins and in-flight prefetches, and nothing may deadlock.
 */
Test(e2e_integrity, four_processes_under_eviction, .init = e2e_init, .fini = e2e_fini,
     .timeout = 120)
{
	struct e2e_dataset ds;
	make_mixed(&ds, "mixed", NBIG, 400, 43);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "14M", "--max-inflight", "8", NULL });
	run_procs(&ds, NPROC, 100);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_stats st = settled_stats(c);
	cr_assert_eq(st.fetch_errors, 0);
	cr_assert_gt(st.evictions, 0);
	cr_assert_leq(st.ram_used, st.ram_budget);
	cr_assert_eq(st.pinned_objects, 0);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

struct thr {
	pthread_t t;
	int id;
	struct stk_client *c;
	struct stk_dataset *shared; /* NULL: open an own handle and plan */
	const struct e2e_dataset *ds;
	int bad, err;
	size_t hits;
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	struct stk_dataset *sds = t->shared;
	uint32_t *order = malloc(t->ds->n * sizeof(*order));
	if (!order) {
		t->err = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < t->ds->n; i++)
		order[i] = (uint32_t)i;
	struct e2e_rng rng = { 0x7700u + (uint64_t)t->id };
	e2e_shuffle(order, t->ds->n, &rng);
	if (!sds) {
		t->err = stk_dataset_open(t->c, t->ds->uri, 0, &sds);
		if (!t->err && e2x_check_catalog(sds, t->ds))
			t->err = -EBADMSG;
		if (!t->err)
			t->err = stk_plan(sds, order, t->ds->n);
		if (t->err) {
			fprintf(stderr, "thread %d: open/plan: %s\n", t->id, stk_errmsg());
			free(order);
			return NULL;
		}
	}
	for (size_t i = 0; i < t->ds->n; i++) {
		uint32_t f = 0;
		if (e2x_get_check(sds, order[i], &t->ds->o[order[i]], &f, NULL))
			t->bad++;
		if (f & STK_VIEW_HIT)
			t->hits++;
	}
	if (!t->shared)
		stk_dataset_close(sds);
	free(order);
	return NULL;
}

/*
 * Four threads share one client; two also share one dataset handle (no plan),
 * two open their own and plan.  The budget is a third of the dataset, so
 * objects are evicted and fetched again while other threads read.
 */
Test(e2e_integrity, threads_share_one_client_under_eviction, .init = e2e_init, .fini = e2e_fini,
     .timeout = 120)
{
	struct e2e_dataset ds;
	make_mixed(&ds, "mixed", 3, 400, 7);
	/* One client of 4 threads may hold the whole budget: it waits for its own pins. */
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--ram", "24M", "--client-max-pinned", "24M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *shared;
	int r = stk_dataset_open(c, ds.uri, 0, &shared);
	cr_assert_eq(r, 0, "open %s: %s", ds.uri, stk_errmsg());
	cr_assert_eq(e2x_check_catalog(shared, &ds), 0);

	struct thr t[NTHREAD];
	memset(t, 0, sizeof(t));
	for (int i = 0; i < NTHREAD; i++) {
		t[i].id = i;
		t[i].c = c;
		t[i].ds = &ds;
		t[i].shared = i % 2 ? NULL : shared;
		cr_assert_eq(pthread_create(&t[i].t, NULL, thread_main, &t[i]), 0);
	}
	int bad = 0, err = 0;
	for (int i = 0; i < NTHREAD; i++) {
		pthread_join(t[i].t, NULL);
		bad += t[i].bad;
		err |= t[i].err;
	}
	cr_assert_eq(err, 0, "a thread could not open or plan (see above)");
	cr_assert_eq(bad, 0, "%d gets returned wrong bytes or failed (see above)", bad);

	struct stk_stats st = settled_stats(c);
	cr_assert_eq(st.client_gets, NTHREAD * ds.n, "this client counted %llu gets, want %zu",
		     (unsigned long long)st.client_gets, NTHREAD * ds.n);
	cr_assert_eq(st.client_hits + st.client_misses, st.client_gets);
	cr_assert_eq(st.fetch_errors, 0);
	cr_assert_gt(st.evictions, 0, "a 24 MiB budget over %llu bytes must evict",
		     (unsigned long long)ds.bytes);
	cr_assert_leq(st.ram_used, st.ram_budget);
	cr_assert_eq(st.pinned_objects, 0);
	stk_dataset_close(shared);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* A client cannot change what the cache hands to others. */
Test(e2e_integrity, delivered_fds_are_sealed, .init = e2e_init, .fini = e2e_fini, .timeout = 120)
{
	static const uint64_t sizes[] = { 0, 4097, 3 * E2E_MIB + 1 };
	struct e2e_dataset ds;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/sealed", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 3, 0, 17);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	for (size_t i = 0; i < ds.n; i++) {
		int fd;
		uint64_t size;
		cr_assert_eq(stk_get_fd(sds, i, &fd, &size), 0, "%s", stk_errmsg());
		cr_assert_eq(size, ds.o[i].size);
		errno = 0;
		cr_assert_eq(pwrite(fd, "x", 1, 0), -1, "%s: a client wrote into the cache",
			     ds.o[i].key);
		cr_assert_eq(errno, EPERM, "pwrite: %s", strerror(errno));
		cr_assert_eq(ftruncate(fd, 1), -1, "%s: a client resized a cached object",
			     ds.o[i].key);
		if (size) {
			void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			cr_assert_eq(p, MAP_FAILED, "%s: writable shared mapping allowed",
				     ds.o[i].key);
		}
		close(fd);
		stk_release_index(sds, i);
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	}
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/*
 * Batched gets of every size from 0 bytes to 64 MiB, from threads sharing a
 * client, with the cache cold at first; a batch that cannot be served fails
 * whole and holds nothing.
 */
static const struct e2e_dataset *bds;
static struct stk_dataset *bsds;

static void *batch_thread(void *arg)
{
	uintptr_t seed = (uintptr_t)arg;
	struct e2e_rng rng = { seed };
	int bad = 0;
	for (int round = 0; round < 12; round++) {
		/* Six different objects: a batch holds each of its objects at once. */
		uint32_t all[16], idx[6];
		for (uint32_t k = 0; k < bds->n; k++)
			all[k] = k;
		e2e_shuffle(all, bds->n, &rng);
		memcpy(idx, all, sizeof(idx));
		bad += batch_check(bsds, bds, idx, 6);
	}
	return (void *)(uintptr_t)bad;
}

Test(e2e_integrity, batches_of_all_sizes_from_threads, .init = e2e_init, .fini = e2e_fini,
     .timeout = 120)
{
	static const uint64_t sizes[] = { 0,
					  1,
					  63,
					  64,
					  4095,
					  4096,
					  32 * E2E_KIB,
					  32 * E2E_KIB + 1,
					  110 * 1000,
					  1536 * E2E_KIB,
					  8 * E2E_MIB,
					  64 * E2E_MIB,
					  3,
					  5000,
					  20 * E2E_MIB,
					  100 };
	struct e2e_dataset ds;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/mixed", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, sizeof(sizes) / sizeof(sizes[0]), 1, 77);
	/* Room for any three batches at once: each holds all of its objects. */
	e2e_daemon_start(&e2e_d,
			 (const char *[]){ "--ram", "300M", "--client-max-pinned", "300M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &bsds), 0, "%s", stk_errmsg());
	bds = &ds;
	pthread_t t[3];
	for (uintptr_t i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, batch_thread, (void *)(i + 1)), 0);
	int bad = 0;
	for (int i = 0; i < 3; i++) {
		void *rv;
		pthread_join(t[i], &rv);
		bad += (int)(uintptr_t)rv;
	}
	cr_assert_eq(bad, 0, "%d objects wrong or failed (see above)", bad);

	/* Out of range: refused before anything is asked. */
	uint32_t idx[3] = { 0, 1, (uint32_t)ds.n };
	struct stk_view v[3];
	cr_assert_eq(stk_get_batch(bsds, idx, 3, v), -ERANGE);
	cr_assert(strstr(stk_errmsg(), "batch entry 2"), "%s", stk_errmsg());
	stk_dataset_close(bsds);
	struct stk_stats st = settled_stats(c);
	cr_assert_eq(st.pinned_objects, 0);
	cr_assert_leq(st.ram_used, st.ram_budget);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* A batch with an object that can never fit fails whole, naming it, and holds nothing. */
Test(e2e_integrity, failed_batch_holds_nothing, .init = e2e_init, .fini = e2e_fini, .timeout = 120)
{
	static const uint64_t sizes[] = { 1000, 2000, 20 * E2E_MIB, 3000 };
	struct e2e_dataset ds;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/big", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 4, 0, 78);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "8M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	uint32_t idx[4] = { 0, 1, 2, 3 };
	struct stk_view v[4];
	int r = stk_get_batch(sds, idx, 4, v);
	cr_assert_eq(r, -EFBIG, "batch: %d %s", r, stk_errmsg());
	cr_assert(strstr(stk_errmsg(), ds.o[2].key), "%s", stk_errmsg());
	for (int i = 0; i < 4; i++)
		cr_assert_null(v[i].ds, "view %d still held", i);
	struct stk_stats st = settled_stats(c);
	cr_assert_eq(st.pinned_objects, 0, "%llu objects still pinned",
		     (unsigned long long)st.pinned_objects);
	/* The others are fine alone. */
	uint32_t ok[3] = { 0, 1, 3 };
	cr_assert_eq(stk_get_batch(sds, ok, 3, v), 0, "%s", stk_errmsg());
	stk_release_batch(v, 3);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

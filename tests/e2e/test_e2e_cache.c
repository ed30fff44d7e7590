/* SPDX-License-Identifier: MIT */
/*
 * The cache against the real daemon: a dataset larger than the RAM budget
 * streams through with the budget held; plan-ordered gets become hits once
 * the prefetcher is ahead; warm fills the cache or stops at the budget.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void make_ds(struct e2e_dataset *ds, const char *name, size_t n, uint64_t base,
		    uint64_t jitter, uint64_t seed)
{
	uint64_t *sizes = calloc(n, sizeof(*sizes));
	cr_assert_not_null(sizes);
	struct e2e_rng r = { seed };
	for (size_t i = 0; i < n; i++)
		sizes[i] = (base - jitter / 2 + e2e_rand_below(&r, jitter)) | 1;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", e2e_d.root, name);
	e2e_dataset_make(ds, dir, sizes, n, 0, seed);
	free(sizes);
}

static struct stk_dataset *open_checked(struct stk_client *c, const struct e2e_dataset *ds)
{
	struct stk_dataset *sds;
	int r = stk_dataset_open(c, ds->uri, 0, &sds);
	cr_assert_eq(r, 0, "open %s: %s: %s", ds->uri, stk_strerror(r), stk_errmsg());
	cr_assert_eq(e2x_check_catalog(sds, ds), 0, "the catalog differs from the files");
	return sds;
}

static void plan_seq(struct stk_dataset *sds, size_t n, struct e2e_rng *shuffle, uint32_t *order)
{
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	if (shuffle)
		e2e_shuffle(order, n, shuffle);
	int r = stk_plan(sds, order, n);
	cr_assert_eq(r, 0, "stk_plan: %s", stk_errmsg());
}

/* Samples the daemon's RAM use from its own connection while the test reads. */
struct sampler {
	pthread_t t;
	volatile int stop;
	int err;
	uint64_t samples, over, max_used, budget;
};

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	struct stk_client *c;
	s->err = e2x_connect(e2e_d.sock, &c);
	if (s->err)
		return NULL;
	while (!s->stop) {
		struct stk_stats st = { .size = sizeof(st) };
		s->err = stk_stats(c, &st);
		if (s->err)
			break;
		s->samples++;
		s->budget = st.ram_budget;
		if (st.ram_used > s->max_used)
			s->max_used = st.ram_used;
		if (st.ram_used > st.ram_budget) {
			if (!s->over)
				fprintf(stderr, "sampler: ram_used %llu > ram_budget %llu\n",
					(unsigned long long)st.ram_used,
					(unsigned long long)st.ram_budget);
			s->over++;
		}
		e2x_sleep_ms(1);
	}
	stk_close(c);
	return NULL;
}

Test(e2e_cache, larger_than_budget_streams_within_budget, .init = e2e_init, .fini = e2e_fini,
     .timeout = 180)
{
	struct e2e_dataset ds;
	make_ds(&ds, "big", 64, E2E_MIB, 64 * E2E_KIB, 3);
	cr_assert_gt(ds.bytes, 60 * E2E_MIB);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "16M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_checked(c, &ds);

	struct sampler s = { 0 };
	cr_assert_eq(pthread_create(&s.t, NULL, sampler_main, &s), 0);
	uint32_t *order = malloc(ds.n * sizeof(*order));
	cr_assert_not_null(order);
	uint64_t over = 0, bad = 0;
	for (int epoch = 0; epoch < 2; epoch++) {
		plan_seq(sds, ds.n, NULL, order);
		for (size_t i = 0; i < ds.n; i++) {
			if (e2x_get_check(sds, i, &ds.o[i], NULL, NULL))
				bad++;
			struct stk_stats st = e2e_stats(c);
			if (st.ram_used > st.ram_budget)
				over++;
		}
	}
	s.stop = 1;
	pthread_join(s.t, NULL);
	cr_assert_eq(bad, 0, "%llu gets failed or returned wrong bytes (see above)",
		     (unsigned long long)bad);
	cr_assert_eq(s.err, 0, "the sampler's stk_stats failed: %s", stk_strerror(s.err));
	cr_assert_gt(s.samples, 10, "the sampler took only %llu samples",
		     (unsigned long long)s.samples);
	cr_assert_eq(s.budget, 16 * E2E_MIB);
	cr_assert_eq(over, 0, "ram_used exceeded ram_budget after %llu gets",
		     (unsigned long long)over);
	cr_assert_eq(s.over, 0, "ram_used exceeded ram_budget in %llu of %llu samples (max %llu)",
		     (unsigned long long)s.over, (unsigned long long)s.samples,
		     (unsigned long long)s.max_used);
	/* The prefetcher filled the budget rather than idling. */
	cr_assert_geq(s.max_used, 8 * E2E_MIB, "RAM use peaked at %llu bytes of 16 MiB",
		      (unsigned long long)s.max_used);

	struct stk_stats st = e2e_stats(c);
	cr_assert_gt(st.evictions, 0, "64 MiB through a 16 MiB cache twice without evictions");
	cr_assert_gt(st.prefetches, 0, "the plan started no prefetch");
	cr_assert_eq(st.fetch_errors, 0);
	cr_assert_geq(st.fetches, 2 * ds.n - 16, "%llu fetches for two epochs of %zu objects",
		      (unsigned long long)st.fetches, ds.n);
	free(order);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

#define BATCH	   4
#define COMPUTE_MS 300

Test(e2e_cache, plan_ordered_gets_become_hits, .init = e2e_init, .fini = e2e_fini, .timeout = 180)
{
	struct e2e_dataset ds;
	make_ds(&ds, "slow", 40, 256 * E2E_KIB, 32 * E2E_KIB, 4);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--emulate-latency", "20", "--emulate-bandwidth",
						   "200", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_checked(c, &ds);
	uint32_t *order = malloc(ds.n * sizeof(*order));
	cr_assert_not_null(order);
	struct e2e_rng rng = { 99 };

	plan_seq(sds, ds.n, &rng, order);
	size_t hits_late = 0, bad = 0;
	uint32_t first_flags = 0;
	uint64_t first_wait = 0;
	for (size_t i = 0; i < ds.n; i++) {
		if (i && i % BATCH == 0)
			e2x_sleep_ms(COMPUTE_MS); /* the training step */
		struct stk_view v;
		if (e2x_get_check(sds, order[i], &ds.o[order[i]], NULL, &v)) {
			bad++;
			continue;
		}
		if (i == 0) {
			first_flags = v.flags;
			first_wait = v.wait_ns;
		}
		if (i >= 8 && (v.flags & STK_VIEW_HIT))
			hits_late++;
		stk_release(&v);
	}
	cr_assert_eq(bad, 0, "%zu gets failed or returned wrong bytes", bad);
	/* The emulated backend is slow: the very first get has to wait for it. */
	cr_assert_eq(first_flags & STK_VIEW_HIT, 0, "the first get was a hit: is emulation on?");
	cr_assert_geq(first_wait, 10000000u, "the first get waited only %llu ns",
		      (unsigned long long)first_wait);
	cr_assert_gt(hits_late * 100, (ds.n - 8) * 80,
		     "only %zu of the %zu gets after warm-up were hits", hits_late, ds.n - 8);

	/* Second epoch: everything fits the budget, so every get is a hit. */
	plan_seq(sds, ds.n, &rng, order);
	size_t hits2 = 0;
	for (size_t i = 0; i < ds.n; i++) {
		uint32_t f = 0;
		if (e2x_get_check(sds, order[i], &ds.o[order[i]], &f, NULL))
			bad++;
		hits2 += (f & STK_VIEW_HIT) != 0;
	}
	cr_assert_eq(bad, 0);
	cr_assert_eq(hits2, ds.n, "epoch 2: %zu of %zu gets were hits", hits2, ds.n);

	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.client_gets, 2 * ds.n);
	cr_assert_geq(st.client_hits, hits_late + hits2);
	cr_assert_geq(st.hits_ram, st.client_hits, "daemon hits %llu < client hits %llu",
		      (unsigned long long)st.hits_ram, (unsigned long long)st.client_hits);
	cr_assert_gt(st.prefetches, ds.n / 2, "only %llu prefetches",
		     (unsigned long long)st.prefetches);
	cr_assert_eq(st.fetches, ds.n, "%llu fetches for %zu objects (each once)",
		     (unsigned long long)st.fetches, ds.n);
	free(order);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* Polls until the warm is no longer running (bounded). */
static struct stk_dataset_status wait_warm(struct stk_dataset *sds)
{
	struct stk_dataset_status st;
	uint64_t deadline = e2x_now_ns() + 30000000000ull;
	for (;;) {
		int r = stk_dataset_status(sds, &st);
		cr_assert_eq(r, 0, "stk_dataset_status: %s", stk_errmsg());
		if (st.warm != STK_WARM_RUNNING)
			return st;
		cr_assert_lt(e2x_now_ns(), deadline,
			     "warm still running after 30 s: %u of %u resident", st.resident,
			     st.objects);
		e2x_sleep_ms(10);
	}
}

Test(e2e_cache, warm_fills_the_cache, .init = e2e_init, .fini = e2e_fini, .timeout = 180)
{
	struct e2e_dataset ds;
	make_ds(&ds, "warm", 24, 512 * E2E_KIB, 64 * E2E_KIB, 5);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_checked(c, &ds);

	struct stk_dataset_status st;
	cr_assert_eq(stk_dataset_status(sds, &st), 0);
	cr_assert_eq(st.warm, STK_WARM_NONE);
	cr_assert_eq(st.resident, 0);
	cr_assert_eq(st.objects, ds.n);
	cr_assert_eq(st.bytes, ds.bytes);

	int r = stk_warm(sds);
	cr_assert_eq(r, 0, "stk_warm: %s", stk_errmsg());
	st = wait_warm(sds);
	cr_assert_eq(st.warm, STK_WARM_DONE, "warm ended in state %u with %u of %u resident",
		     st.warm, st.resident, st.objects);
	cr_assert_eq(st.resident, ds.n);
	cr_assert_eq(st.resident_bytes, ds.bytes);
	cr_assert_eq(st.inflight, 0);
	cr_assert_eq(st.failed, 0);
	for (size_t i = 0; i < ds.n; i++) {
		uint32_t f = 0;
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], &f, NULL), 0);
		cr_assert(f & STK_VIEW_HIT, "object %zu was not resident after the warm", i);
	}
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

Test(e2e_cache, warm_stops_at_a_full_budget, .init = e2e_init, .fini = e2e_fini, .timeout = 180)
{
	struct e2e_dataset ds;
	make_ds(&ds, "warm", 24, 512 * E2E_KIB, 64 * E2E_KIB, 6);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "4M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_checked(c, &ds);

	int r = stk_warm(sds);
	cr_assert_eq(r, 0, "stk_warm: %s", stk_errmsg());
	struct stk_dataset_status st = wait_warm(sds);
	cr_assert_eq(st.warm, STK_WARM_FULL, "warm ended in state %u with %u of %u resident",
		     st.warm, st.resident, st.objects);
	cr_assert_gt(st.resident, 0, "a warm into 4 MiB made nothing resident");
	cr_assert_lt(st.resident, ds.n);
	cr_assert_leq(st.resident_bytes, 4 * E2E_MIB);
	cr_assert_eq(st.failed, 0);
	struct stk_stats ss = e2e_stats(c);
	cr_assert_leq(ss.ram_used, ss.ram_budget);
	cr_assert_eq(ss.evictions, 0, "a warm must not evict");

	/* Gets past the warmed part still work, evicting as they go. */
	for (size_t i = 0; i < ds.n; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	ss = e2e_stats(c);
	cr_assert_leq(ss.ram_used, ss.ram_budget);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* A plan longer than one PLAN message (STK_PLAN_CHUNK indices) arrives whole. */
Test(e2e_cache, long_plan_spans_several_messages, .init = e2e_init, .fini = e2e_fini,
     .timeout = 180)
{
	struct e2e_dataset ds;
	make_ds(&ds, "long", 10, 64 * E2E_KIB, 8 * E2E_KIB, 12);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "300K", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_checked(c, &ds);
	const size_t n = 50000; /* about three messages */
	uint32_t *order = malloc(n * sizeof(*order));
	cr_assert_not_null(order);
	struct e2e_rng rng = { 5 };
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)e2e_rand_below(&rng, ds.n);
	cr_assert_eq(stk_plan(sds, order, n), 0, "%s", stk_errmsg());
	/* Follow the plan's last stretch too: the tail arrived in a later message. */
	for (size_t i = 0; i < n; i += (i < 200 || i > n - 200) ? 1 : 97)
		cr_assert_eq(e2x_get_check(sds, order[i], &ds.o[order[i]], NULL, NULL), 0,
			     "plan position %zu", i);
	struct stk_stats st = e2e_stats(c);
	cr_assert_leq(st.ram_used, st.ram_budget);
	cr_assert_gt(st.prefetches, 0);
	free(order);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/*
 * One object table: the same files reached through a directory and through
 * a manifest (with and without sizes) are fetched and charged once, and stay
 * cached for the manifest after the directory's dataset is forgotten.
 */
Test(e2e_cache, same_object_through_two_datasets_is_fetched_once, .init = e2e_init,
     .fini = e2e_fini, .timeout = 180)
{
	enum { N = 5 };
	uint64_t sizes[N] = { 1, 4096, 10000, 100000, 1000000 };
	struct e2e_dataset ds;
	char dir[300], m[400], uri[600];
	snprintf(dir, sizeof(dir), "%s/both", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, N, 0, 11);
	snprintf(m, sizeof(m), "%s/both.manifest", e2e_d.root);
	/* Every other entry gives no size: the daemon stats it. */
	FILE *f = fopen(m, "we");
	cr_assert_not_null(f);
	for (size_t i = 0; i < N; i++) {
		if (i % 2)
			fprintf(f, "file://%s/%s\n", dir, ds.o[i].key);
		else
			fprintf(f, "file://%s/%s %llu\n", dir, ds.o[i].key,
				(unsigned long long)ds.o[i].size);
	}
	fclose(f);

	e2e_daemon_start(&e2e_d, (const char *[]){ "--dataset-grace", "0", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *a = NULL, *b = NULL;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &a), 0, "%s", stk_errmsg());
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(e2x_get_check(a, i, &ds.o[i], NULL, NULL), 0);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.fetches, N);
	uint64_t charged = st.ram_used;
	snprintf(uri, sizeof(uri), "file://%s", m);
	cr_assert_eq(stk_dataset_open(c, uri, STK_DS_MANIFEST, &b), 0, "%s", stk_errmsg());
	for (size_t i = 0; i < N; i++) {
		uint32_t flags = 0;
		cr_assert_eq(e2x_get_check(b, i, &ds.o[i], &flags, NULL), 0);
		cr_assert(flags & STK_VIEW_HIT, "object %zu was not a hit through the manifest", i);
	}
	st = e2e_stats(c);
	cr_assert_eq(st.fetches, N, "%llu fetches for %d objects", (unsigned long long)st.fetches,
		     N);
	cr_assert_eq(st.resident_objects, N);
	cr_assert_eq(st.ram_used, charged, "charged %llu, then %llu: twice",
		     (unsigned long long)charged, (unsigned long long)st.ram_used);

	/* Closing the directory's dataset leaves the objects cached for the manifest's. */
	stk_dataset_close(a);
	e2x_sleep_ms(600);
	for (size_t i = 0; i < N; i++) {
		uint32_t flags = 0;
		cr_assert_eq(e2x_get_check(b, i, &ds.o[i], &flags, NULL), 0);
		cr_assert(flags & STK_VIEW_HIT);
	}
	cr_assert_eq(e2e_stats(c).fetches, N);
	stk_dataset_close(b);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/*
 * ImageNet's shape at a fifth of its count: 200,000 objects of 1 KiB, all
 * resident, cost the daemon a handful of descriptors (the RAM tier packs
 * them into shared segments), not one each, and every byte reads back.
 */
Test(e2e_cache, two_hundred_thousand_small_objects_few_fds, .init = e2e_init, .fini = e2e_fini,
     .timeout = 180)
{
	enum { N = 200000 };
	uint64_t *sizes = malloc(N * sizeof(*sizes));
	cr_assert_not_null(sizes);
	for (size_t i = 0; i < N; i++)
		sizes[i] = 1024;
	struct e2e_dataset ds;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/small", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, N, 2, 21);
	free(sizes);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "1G", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	cr_assert_eq(stk_warm(sds), 0, "%s", stk_errmsg());
	struct stk_dataset_status st = wait_warm(sds);
	cr_assert_eq(st.warm, STK_WARM_DONE, "warm ended in state %u with %u of %u resident",
		     st.warm, st.resident, st.objects);
	cr_assert_eq(st.resident, N);
	int fds = e2x_fd_count(e2e_d.pid);
	cr_assert_lt(fds, 1000, "the daemon holds %d descriptors for %d resident objects", fds, N);
	struct stk_stats s = e2e_stats(c);
	cr_assert_leq(s.ram_used, s.ram_budget);
	/* Packed, not a page each: well under 4 KiB charged per 1 KiB object. */
	cr_assert_lt(s.ram_used, (uint64_t)N * 2048, "%llu bytes charged for %d KiB",
		     (unsigned long long)s.ram_used, N);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0, "object %zu", i);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

struct stale_get {
	struct stk_dataset *sds;
	size_t index;
	const struct e2e_obj *want;
	int r;
	uint64_t done_ns;
};

static void *stale_get_main(void *arg)
{
	struct stale_get *g = arg;
	g->r = e2x_get_check(g->sds, g->index, g->want, NULL, NULL);
	g->done_ns = e2x_now_ns();
	return NULL;
}

/*
 * A file rewritten while a client still holds a view of its old bytes: a
 * dataset listed afterwards (the files' parent directory) sees a new
 * version, and no get of it (through the daemon or the resident table) is
 * ever handed the old bytes; a get of the held object waits until the old
 * bytes are let go, then gets the new ones.
 */
Test(e2e_cache, a_changed_file_is_never_served_from_bytes_still_held, .init = e2e_init,
     .fini = e2e_fini, .timeout = 180)
{
	struct e2e_dataset ds, ds2;
	const uint64_t sizes[] = { 65537, 70001, 60001, 50001 };
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/chg", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 4, 0, 91);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "16M", NULL });
	struct stk_client *a = e2e_connect(&e2e_d);
	struct stk_dataset *sa = open_checked(a, &ds);
	struct stk_view held;
	cr_assert_eq(e2x_get_check(sa, 0, &ds.o[0], NULL, &held), 0);
	cr_assert_eq(e2x_get_check(sa, 1, &ds.o[1], NULL, NULL), 0);

	e2x_sleep_ms(20); /* a new mtime, whatever the filesystem's granularity */
	e2e_dataset_make(&ds2, dir, sizes, 4, 0, 92);
	cr_assert_neq(ds2.o[0].hash, ds.o[0].hash); /* the same sizes: only the version tells */
	/* Another dataset over the same files (their parent directory): listed now. */
	struct stk_client *b = e2e_connect(&e2e_d);
	char puri[300], key[128];
	snprintf(puri, sizeof(puri), "file://%s/", e2e_d.root);
	struct stk_dataset *sb;
	int r = stk_dataset_open(b, puri, 0, &sb);
	cr_assert_eq(r, 0, "open %s: %s", puri, stk_errmsg());
	size_t i0, i1;
	snprintf(key, sizeof(key), "chg/%s", ds2.o[0].key);
	cr_assert_eq(stk_dataset_find(sb, key, &i0), 0, "%s not listed", key);
	snprintf(key, sizeof(key), "chg/%s", ds2.o[1].key);
	cr_assert_eq(stk_dataset_find(sb, key, &i1), 0, "%s not listed", key);
	cr_assert_eq(e2x_get_check(sb, i1, &ds2.o[1], NULL, NULL), 0, "object 1 served stale");
	struct stale_get g = { .sds = sb, .index = i0, .want = &ds2.o[0] };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, stale_get_main, &g), 0);
	e2x_sleep_ms(300);
	cr_assert_eq(g.done_ns, 0, "object 0 was got (%s) while its old bytes were held",
		     stk_strerror(g.r));
	/* The holder still reads its old bytes, unchanged. */
	cr_assert_eq(e2e_hash(held.data, held.size), ds.o[0].hash);
	uint64_t released = e2x_now_ns();
	stk_release(&held);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(g.r, 0, "object 0 after the old bytes went: %s", stk_strerror(g.r));
	cr_assert_geq(g.done_ns, released);
	/* And again, now resident: the new bytes, whichever path serves them. */
	cr_assert_eq(e2x_get_check(sb, i0, &ds2.o[0], NULL, NULL), 0);
	stk_dataset_close(sb);
	stk_dataset_close(sa);
	stk_close(b);
	stk_close(a);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
	e2e_dataset_free(&ds2);
}

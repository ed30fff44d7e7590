/* SPDX-License-Identifier: MIT */
/*
 * Tests cache/nvme*.c, the store under tier 1: every size round-trips across
 * the pack/file threshold and across chunks; the budget holds as du counts
 * it, metadata and padding included; a reopen rebuilds the same index; a
 * changed backend version is never served; descriptors stay bounded.
 * (test_nvme_recovery.c: corruption, torn writes, SIGKILL, full disks,
 * O_DIRECT and its fallback.)
 */
#include "nvme_test.h"

TestSuite(nvme, .init = setup, .fini = teardown, .timeout = 120);

struct batch {
	struct sync_op t[128];
	char uri[128][64];
	uint64_t size[128];
	void *buf[128];
	unsigned n;
};

static void wait_all(struct batch *b)
{
	for (unsigned i = 0; i < b->n; i++)
		run_until(&b->t[i].done);
}

/*
 * Puts b's objects at once (many writes in flight), then gets them all at
 * once and compares.  Every other buffer is block-aligned: a large object
 * is then read straight into it, else through the staging buffer.
 */
static void round_trip(struct batch *b)
{
	settle();
	for (unsigned i = 0; i < b->n; i++) {
		b->buf[i] = NULL;
		if (i % 2)
			cr_assert(!posix_memalign(&b->buf[i], STK_NVME_BLOCK, b->size[i] + 1));
		else
			b->buf[i] = (char *)malloc(b->size[i] + 16) + 1; /* never aligned */
		cr_assert(b->buf[i]);
		fill(b->buf[i], b->size[i], b->uri[i]);
		struct stk_nvme_id id = ident(b->uri[i], b->size[i], "v1");
		b->t[i] = (struct sync_op){ 0 };
		int r = stk__nvme_put(S, &id, b->buf[i], b->size[i], 0, &b->t[i].op, sync_cb);
		cr_assert_eq(r, 0, "put %llu: %s", (unsigned long long)b->size[i], strerror(-r));
	}
	wait_all(b);
	struct stk_nvme_ent *e[128];
	for (unsigned i = 0; i < b->n; i++) {
		cr_assert_eq(b->t[i].res, 0, "put %llu: %s", (unsigned long long)b->size[i],
			     strerror((int)-b->t[i].res));
		e[i] = find(b->uri[i], b->size[i], "v1");
		cr_assert(e[i], "%s not found after its put", b->uri[i]);
		cr_assert_eq(e[i]->stored_len, b->size[i]);
		memset(b->buf[i], 0xa5, b->size[i]);
		b->t[i] = (struct sync_op){ 0 };
		cr_assert_eq(stk__nvme_get(S, e[i], b->buf[i], &b->t[i].op, sync_cb), 0);
	}
	wait_all(b);
	for (unsigned i = 0; i < b->n; i++) {
		cr_assert_eq(b->t[i].res, (int64_t)b->size[i], "get %llu: %lld",
			     (unsigned long long)b->size[i], (long long)b->t[i].res);
		char *want = malloc(b->size[i] + 1);
		fill(want, b->size[i], b->uri[i]);
		cr_assert(!memcmp(want, b->buf[i], b->size[i]), "size %llu: bytes differ",
			  (unsigned long long)b->size[i]);
		free(want);
		free(i % 2 ? b->buf[i] : (char *)b->buf[i] - 1);
		stk__nvme_drop(S, e[i]);
	}
	b->n = 0;
}

static void add(struct batch *b, uint64_t size)
{
	snprintf(b->uri[b->n], sizeof(b->uri[0]), "file:///ds/obj-%llu", (unsigned long long)size);
	b->size[b->n++] = size;
	if (b->n == 128)
		round_trip(b);
}

Test(nvme, every_size_round_trips_across_the_threshold_and_chunks)
{
	/*
	 * Records up to 4 KiB (a header and 4,032 bytes for these URIs) go
	 * into packs; larger ones, to files written in 1 MiB chunks.  Every
	 * size to 6 KiB, then sizes growing by 1/16 to 3 MiB, and every third
	 * size around the chunk boundaries.
	 */
	store_open(256 * MiB, 4 * KiB);
	static struct batch b;
	for (uint64_t size = 0; size <= 6 * KiB; size++)
		add(&b, size);
	for (uint64_t size = 6 * KiB + 1; size < 3 * MiB; size += size / 16 + 1)
		add(&b, size);
	for (uint64_t k = 1; k <= 2; k++)
		for (uint64_t size = k * MiB - 160; size < k * MiB + 160; size += 3)
			add(&b, size);
	round_trip(&b);
	struct stk_nvme_stats st = stats();
	cr_assert_eq(st.objects, 0);
	cr_assert_eq(st.payload, 0);
	cr_assert_eq(st.packs, 0, "empty packs are deleted");
	cr_assert_eq(st.larges, 0);
	cr_assert_eq(st.used, STK_NVME_BLOCK, "all that is left charged is the directory");
	cr_assert_eq(st.degraded, 0);
}

Test(nvme, budget_holds_on_disk_metadata_and_padding_included)
{
	const uint64_t budget = 24 * MiB;
	store_open(budget, 256 * KiB);
	uint64_t rng = 42, puts = 0, full = 0;
	char uri[64];
	for (int round = 0; round < 6; round++) {
		/* Fill until the budget refuses three times in a row, then free about half. */
		for (int refused = 0; refused < 3;) {
			uint64_t r = mix64(rng++);
			uint64_t size = r % 4 == 0 ? r % (3 * MiB) : (r >> 8) % (200 * KiB);
			snprintf(uri, sizeof(uri), "s3://b/%llu", (unsigned long long)rng);
			int64_t res = put_obj(uri, size, "etag");
			if (res == -ENOSPC) {
				refused++;
				full++;
				continue;
			}
			cr_assert_eq(res, 0, "put %llu: %s", (unsigned long long)size,
				     strerror((int)-res));
			puts++;
			struct stk_nvme_stats st = stats();
			cr_assert_leq(st.used, budget);
		}
		uint64_t disk = du();
		struct stk_nvme_stats st = stats();
		cr_assert_leq(disk, budget, "du says %llu bytes, budget %llu",
			      (unsigned long long)disk, (unsigned long long)budget);
		cr_assert_leq(disk, st.used, "du %llu exceeds what is charged, %llu",
			      (unsigned long long)disk, (unsigned long long)st.used);
		cr_assert_geq(st.used, budget / 2, "a full store uses its budget: %llu",
			      (unsigned long long)st.used);
		cr_assert_leq(st.payload, st.used);
		/* Drop every other object in hash order. */
		struct stk_nvme_ent *all[4096];
		unsigned n = 0;
		for (uint64_t i = 0; i <= S->tmask; i++)
			for (struct nvme_ent *e = S->tab[i]; e && n < 4096; e = e->hnext)
				all[n++] = &e->pub;
		for (unsigned i = 0; i < n; i += 2)
			stk__nvme_drop(S, all[i]);
		cr_assert_leq(du(), stats().used);
	}
	cr_assert_gt(puts, 100);
	cr_assert_gt(full, 0);
	/* And the budget charges everything to its last byte: what is held fits exactly. */
	store_close();
	store_open(budget, 256 * KiB);
	cr_assert_leq(du(), stats().used);
}

struct snap {
	char line[160];
};

static int cmp_snap(const void *a, const void *b)
{
	return strcmp(((const struct snap *)a)->line, ((const struct snap *)b)->line);
}

struct snaps {
	struct snap *v;
	unsigned n;
};

static void snap_one(void *arg, struct stk_nvme_ent *e)
{
	struct snaps *s = arg;
	struct nvme_ent *ie = nvme_ent(e);
	snprintf(s->v[s->n++].line, sizeof(s->v[0].line), "%s %llu %s %llu %llu %u %u %u %llu",
		 e->uri, (unsigned long long)e->size, e->version, (unsigned long long)e->stored_len,
		 (unsigned long long)e->charge, e->flags, ie->pack == NVME_NOPACK ? 0 : ie->slot,
		 e->domain, (unsigned long long)ie->data_xxh);
}

static struct snaps snapshot(void)
{
	struct snaps s = { .v = calloc(stats().objects + 1, sizeof(struct snap)) };
	stk__nvme_foreach(S, snap_one, &s);
	qsort(s.v, s.n, sizeof(*s.v), cmp_snap);
	return s;
}

Test(nvme, reopen_rebuilds_the_same_index)
{
	store_open(64 * MiB, 64 * KiB);
	char uri[64];
	for (unsigned i = 0; i < 300; i++) {
		snprintf(uri, sizeof(uri), "file:///data/train/%05u.jpg", i);
		uint64_t size = i % 50 == 0 ? 300 * KiB + i : mix64(i) % (100 * KiB);
		cr_assert_eq(put_obj(uri, size, i % 3 ? "1700000000.123" : "\"etag-x\""), 0);
	}
	/* Some drops, so packs have holes. */
	for (unsigned i = 0; i < 300; i += 7) {
		snprintf(uri, sizeof(uri), "file:///data/train/%05u.jpg", i);
		uint64_t size = i % 50 == 0 ? 300 * KiB + i : mix64(i) % (100 * KiB);
		struct stk_nvme_ent *e = find(uri, size, i % 3 ? "1700000000.123" : "\"etag-x\"");
		cr_assert(e);
		stk__nvme_drop(S, e);
	}
	struct stk_nvme_stats before = stats();
	struct snaps a = snapshot();
	store_close();
	store_open(64 * MiB, 64 * KiB);
	struct stk_nvme_stats after = stats();
	struct snaps b = snapshot();
	cr_assert_eq(a.n, b.n);
	cr_assert_gt(a.n, 200);
	for (unsigned i = 0; i < a.n; i++)
		cr_assert_str_eq(a.v[i].line, b.v[i].line);
	cr_assert_eq(before.used, after.used);
	cr_assert_eq(before.payload, after.payload);
	cr_assert_eq(before.packs, after.packs);
	cr_assert_eq(before.larges, after.larges);
	cr_assert_eq(after.discarded, 0);
	/* And every object still reads back. */
	for (unsigned i = 0; i < 300; i++) {
		snprintf(uri, sizeof(uri), "file:///data/train/%05u.jpg", i);
		uint64_t size = i % 50 == 0 ? 300 * KiB + i : mix64(i) % (100 * KiB);
		struct stk_nvme_ent *e = find(uri, size, i % 3 ? "1700000000.123" : "\"etag-x\"");
		cr_assert_eq(!!e, i % 7 != 0, "%s", uri);
		if (e)
			cr_assert_eq(get_check(e), (int64_t)size);
	}
	/* A new put after the reopen does not reuse a file name or sequence number. */
	cr_assert_eq(put_obj("file:///new", 2 * MiB, "v"), 0);
	store_close();
	store_open(64 * MiB, 64 * KiB);
	cr_assert(find("file:///new", 2 * MiB, "v"));
	cr_assert_eq(stats().objects, after.objects + 1);
	free(a.v);
	free(b.v);
}

Test(nvme, a_changed_backend_version_is_not_served)
{
	store_open(16 * MiB, 64 * KiB);
	cr_assert_eq(put_obj("s3://b/k", 5000, "\"etag-1\""), 0);
	cr_assert_eq(put_obj("s3://b/big", 2 * MiB, "\"etag-1\""), 0);
	cr_assert_eq(put_obj("s3://b/k", 5000, "\"etag-1\""), -EEXIST);
	uint64_t used = stats().used;
	cr_assert_null(find("s3://b/k", 5000, "\"etag-2\""));
	cr_assert_null(find("s3://b/k", 5000, "\"etag-1\""), "the stale copy was dropped");
	cr_assert_null(find("s3://b/k", 5001, "\"etag-1\""), "size is part of the identity");
	cr_assert_lt(stats().used, used);
	/* A put of the new version replaces a stored old one. */
	struct stk_nvme_id other = {
		.uri = "s3://b/big", .size = 2 * MiB, .version = "\"etag-1\"", .domain = 7
	};
	cr_assert_null(stk__nvme_lookup(S, &other),
		       "another trust domain's copy is another object");
	cr_assert_eq(put_obj("s3://b/big", 2 * MiB, "\"etag-2\""), 0);
	struct stk_nvme_ent *e = find("s3://b/big", 2 * MiB, "\"etag-2\"");
	cr_assert(e);
	cr_assert_eq(get_check(e), 2 * MiB);
	cr_assert_eq(stats().larges, 1);
	/* After a reopen too. */
	store_close();
	store_open(16 * MiB, 64 * KiB);
	cr_assert_null(find("s3://b/k", 5000, "\"etag-1\""));
	cr_assert_eq(stats().objects, 1);
	cr_assert(find("s3://b/big", 2 * MiB, "\"etag-2\""));
}

Test(nvme, descriptors_stay_bounded_however_many_packs)
{
	struct stk_nvme_opts o = {
		.opts_size = sizeof(o),
		.dir = D,
		.budget = 512 * MiB,
		.small_max = 1 * MiB,
		.pack_size = 256 * KiB,
		.max_fds = 4,
	};
	char err[256];
	cr_assert_eq(stk__nvme_open(L, &o, &S, err, sizeof(err)), 0, "%s", err);
	char uri[64];
	/* 40 slot sizes, 3 objects each: 40+ packs. */
	for (unsigned i = 0; i < 120; i++) {
		snprintf(uri, sizeof(uri), "file:///x/%u", i);
		int64_t r = put_obj(uri, (i % 40) * 9 * KiB + 1, "");
		cr_assert_eq(r, 0, "put %u: %s", i, strerror((int)-r));
		cr_assert_leq(stats().open_fds, 4);
	}
	cr_assert_geq(stats().packs, 40);
	for (unsigned i = 0; i < 120; i++) {
		snprintf(uri, sizeof(uri), "file:///x/%u", i);
		struct stk_nvme_ent *e = find(uri, (i % 40) * 9 * KiB + 1, NULL);
		cr_assert(e);
		cr_assert_eq(get_check(e), (int64_t)e->size);
		cr_assert_leq(stats().open_fds, 4);
	}
}

Test(nvme, refusals_are_immediate_and_say_why)
{
	store_open(1 * MiB, 64 * KiB);
	struct sync_op t = { 0 };
	char b[16] = "";
	struct stk_nvme_id id = ident("s3://b/huge", 2 * MiB, "");
	cr_assert_eq(stk__nvme_put(S, &id, b, 2 * MiB, 0, &t.op, sync_cb), -EFBIG);
	id = ident("s3://b/x", 16, "");
	cr_assert_eq(stk__nvme_put(S, &id, b, 15, 0, &t.op, sync_cb), -EINVAL, "len != size");
	cr_assert_eq(stk__nvme_put(S, &id, b, 10, STK_NVME_ZSTD, &t.op, sync_cb), 0);
	run_until(&t.done);
	cr_assert_eq(t.res, 0);
	struct stk_nvme_ent *e = find("s3://b/x", 16, "");
	cr_assert(e);
	cr_assert_eq(e->stored_len, 10);
	cr_assert_eq(e->flags, STK_NVME_ZSTD);
	static char longuri[STK_NVME_URI_MAX + 2];
	memset(longuri, 'a', sizeof(longuri) - 1);
	id = ident(longuri, 1, "");
	cr_assert_eq(stk__nvme_put(S, &id, b, 1, 0, &t.op, sync_cb), -ENAMETOOLONG);
	cr_assert_eq(stk__nvme_charge(S, &id, 1), 0);
	/* Fill: the next put is refused -ENOSPC before any I/O. */
	char uri[32];
	int64_t r = 0;
	for (unsigned i = 0; r == 0; i++) {
		snprintf(uri, sizeof(uri), "s3://b/%u", i);
		r = put_obj(uri, 60 * KiB, "");
	}
	cr_assert_eq(r, -ENOSPC);
	cr_assert_leq(stats().used, 1 * MiB);
	cr_assert_eq(stats().degraded, 0, "a full budget is not a degraded disk");
}

Test(nvme, a_smaller_budget_at_reopen_drops_until_it_fits)
{
	store_open(32 * MiB, 64 * KiB);
	char uri[32];
	for (unsigned i = 0; i < 200; i++) {
		snprintf(uri, sizeof(uri), "s3://b/%u", i);
		cr_assert_eq(put_obj(uri, i % 10 ? 50 * KiB : 700 * KiB, ""), 0);
	}
	cr_assert_gt(du(), 8 * MiB);
	store_close();
	store_open(4 * MiB, 64 * KiB);
	struct stk_nvme_stats st = stats();
	cr_assert_leq(st.used, 4 * MiB);
	cr_assert_gt(st.objects, 10, "only what does not fit goes: %llu left",
		     (unsigned long long)st.objects);
	cr_assert_leq(du(), 4 * MiB);
}

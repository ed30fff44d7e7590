/* SPDX-License-Identifier: MIT */
/*
 * Stall accounting's arithmetic (common/stall.c) on a synthetic clock: known
 * fetch and wait times give exactly the avoided totals docs/stall.md defines.
 */
#include <criterion/criterion.h>

#include "common/stall.h"

#define MS 1000000ull
#define MB 1000000ull

/* A fetch begun and ended on m at once (nothing else in flight meanwhile). */
static void alone(struct stk_model *m, uint64_t size, uint64_t start, uint64_t fb, uint64_t end)
{
	stk__model_fetch(m, size, start, stk__model_begin(m, start), fb, end);
}

/* One fetch: 20 ms to the first byte, then 1 MB in 10 ms (100 MB/s). */
Test(stall, model_from_one_fetch)
{
	static struct stk_model m;
	cr_assert_eq(stk__model_predict(&m, MB), 0, "no fetch seen: no estimate");
	alone(&m, MB, 1000 * MS, 1020 * MS, 1030 * MS);
	cr_assert_eq(stk__model_predict(&m, MB), 30 * MS);
	cr_assert_eq(stk__model_predict(&m, 2 * MB), 40 * MS);
	cr_assert_eq(stk__model_predict(&m, 0), 20 * MS);
}

/*
 * Four fetches at once through one 100 MB/s bottleneck: each takes 60 ms,
 * but a synchronous reader would take 30 ms for each: the model says so,
 * from the first fetch that ends on (no warm-up: shares, not a union).
 */
Test(stall, model_sees_through_concurrency)
{
	static struct stk_model m;
	double v0[4];
	for (int i = 0; i < 4; i++)
		v0[i] = stk__model_begin(&m, 0);
	stk__model_fetch(&m, MB, 0, v0[0], 20 * MS, 60 * MS);
	cr_assert_eq(stk__model_predict(&m, MB), 30 * MS, "%llu",
		     (unsigned long long)stk__model_predict(&m, MB));
	for (int i = 1; i < 4; i++)
		stk__model_fetch(&m, MB, 0, v0[i], 20 * MS, 60 * MS);
	cr_assert_eq(stk__model_predict(&m, MB), 30 * MS);
	cr_assert_eq(m.inflight, 0);
	/* Shares of overlapping and disjoint fetches add up to the time something ran. */
	static struct stk_model d;
	alone(&d, MB, 0, 0, 10 * MS);
	double b = stk__model_begin(&d, 20 * MS);
	double c = stk__model_begin(&d, 22 * MS);
	stk__model_fetch(&d, MB, 22 * MS, c, 22 * MS, 28 * MS);
	stk__model_fetch(&d, MB, 20 * MS, b, 20 * MS, 30 * MS);
	cr_assert_float_eq(d.share_ns, 20.0 * MS, 1.0);
	cr_assert_eq(d.bytes, 3 * MB);
	/* Without a first byte, the whole fetch is transfer; a failure teaches nothing. */
	static struct stk_model n;
	stk__model_begin(&n, 0);
	stk__model_abort(&n, 3 * MS);
	alone(&n, MB, 5 * MS, 0, 15 * MS);
	cr_assert_eq(stk__model_predict(&n, MB), 10 * MS);
	cr_assert_eq(n.fetches, 1);
}

/* The latency is the lowest decile of recent times to first byte: queueing is not latency. */
Test(stall, model_latency_is_a_low_decile)
{
	static struct stk_model m;
	for (uint64_t i = 0; i < 64; i++) /* 10 fast ones (20 ms), 54 queued (20 to 73 ms) */
		alone(&m, 0, i * 1000 * MS, i * 1000 * MS + (i < 10 ? 20 : 20 + i) * MS,
		      i * 1000 * MS + 100 * MS);
	cr_assert_eq(m.lat_ns, 20 * MS, "%llu", (unsigned long long)m.lat_ns);
}

static struct stk_stall total;
static struct stk_stall *const one[] = { &total };

static uint64_t request(uint64_t wait, const struct stk_model *m, uint64_t size, uint64_t fetch_ns,
			bool resident)
{
	struct stk_req r = { .wait_ns = wait };
	stk__req_object(&r, m, size, fetch_ns, resident);
	return stk__req_end(&r, one, 1);
}

Test(stall, avoided_is_sync_minus_wait_clipped_at_zero)
{
	static struct stk_model m;
	alone(&m, MB, 0, 20 * MS, 30 * MS); /* predicts 30 ms for 1 MB */
	memset(&total, 0, sizeof(total));
	/* Fetched here in 25 ms (less than the model): its own time counts. */
	cr_assert_eq(request(1 * MS, &m, MB, 25 * MS, true), 24 * MS);
	/* Fetched in 80 ms alongside others: the model's 30 ms counts. */
	cr_assert_eq(request(2 * MS, &m, MB, 80 * MS, true), 28 * MS);
	/* Waited longer than a synchronous read: clipped at zero, a fetch stall. */
	cr_assert_eq(request(45 * MS, &m, MB, 40 * MS, false), 0);
	/* Never fetched here (restored, shared): the model alone, labelled. */
	cr_assert_eq(request(10 * MS, &m, 2 * MB, 0, true), 30 * MS);
	cr_assert_eq(total.requests, 4);
	cr_assert_eq(total.objects, 4);
	cr_assert_eq(total.hits, 3);
	cr_assert_eq(total.bytes, 5 * MB);
	cr_assert_eq(total.stall_ns, 58 * MS);
	cr_assert_eq(total.fetch_stall_ns, 45 * MS);
	cr_assert_eq(total.delivery_stall_ns, 13 * MS);
	cr_assert_eq(total.avoided_ns, 82 * MS);
	cr_assert_eq(total.avoided_model_ns, 30 * MS);
	cr_assert_eq(total.unknown_objects, 0);
}

Test(stall, no_estimate_avoids_nothing)
{
	memset(&total, 0, sizeof(total));
	cr_assert_eq(request(MS, NULL, MB, 0, true), 0);
	cr_assert_eq(total.unknown_objects, 1);
	cr_assert_eq(total.stall_ns, MS);
}

/* A batch is one request: its wait against the sum of its objects' reads. */
Test(stall, batch_is_one_request)
{
	static struct stk_model m;
	alone(&m, MB, 0, 20 * MS, 30 * MS);
	struct stk_stall a = { 0 }, b = { 0 };
	struct stk_stall *const both[] = { &a, &b };
	struct stk_req r = { .wait_ns = 50 * MS };
	stk__req_object(&r, &m, MB, 30 * MS, true);
	stk__req_object(&r, &m, MB, 0, true);	     /* 30 ms, from the model */
	stk__req_object(&r, &m, MB, 30 * MS, false); /* one miss: a fetch stall */
	cr_assert_eq(stk__req_end(&r, both, 2), 40 * MS);
	for (int i = 0; i < 2; i++) {
		const struct stk_stall *t = both[i];
		cr_assert_eq(t->requests, 1);
		cr_assert_eq(t->objects, 3);
		cr_assert_eq(t->fetch_stall_ns, 50 * MS);
		cr_assert_eq(t->delivery_stall_ns, 0);
		cr_assert_eq(t->avoided_ns, 40 * MS);
		/* A third of the estimate came from the model: a third of what was avoided. */
		cr_assert_eq(t->avoided_model_ns, 40 * MS / 3);
	}
}

Test(stall, histogram_buckets)
{
	struct stk_hist h = { 0 };
	stk__hist_add(&h, 50000);	 /* 50 µs: the first bucket */
	stk__hist_add(&h, 100000);	 /* exactly a bound: in it */
	stk__hist_add(&h, 3 * MS);	 /* 0.005 */
	stk__hist_add(&h, 3600000 * MS); /* an hour: above every bound */
	cr_assert_eq(h.bucket[0], 2);
	cr_assert_eq(h.bucket[5], 1);
	cr_assert_eq(h.bucket[STK_HIST_BOUNDS], 1);
	cr_assert_eq(h.count, 4);
	cr_assert_eq(h.sum_ns, 150000 + 3 * MS + 3600000 * MS);
}

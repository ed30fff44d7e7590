/* SPDX-License-Identifier: MIT */
/* stoker-bench's report: medians over --repeat, the table for people, --json. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stoker.h>

#include "stoker-bench.h"

/* --- medians over --repeat --- */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static double median_of(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MEDIAN_FIELD(out, runs, n, field)                                                          \
	do {                                                                                       \
		double v_[MAX_REPEAT];                                                             \
		for (size_t i_ = 0; i_ < (n); i_++)                                                \
			v_[i_] = (double)(runs)[i_].field;                                         \
		(out)->field = median_of(v_, (n));                                                 \
	} while (0)

/* Per-metric medians; counts that are equal in every run (bytes, objects)
 * stay exact. */
void median_result(const struct bench_result *runs, size_t n, struct bench_result *m)
{
	*m = runs[0];
	memset(&m->steps, 0, sizeof(m->steps)); /* the runs own theirs */
	if (n == 1)
		return;
	MEDIAN_FIELD(m, runs, n, wall_s);
	MEDIAN_FIELD(m, runs, n, stall_s);
	MEDIAN_FIELD(m, runs, n, plan_s);
	MEDIAN_FIELD(m, runs, n, get_wait_s);
	MEDIAN_FIELD(m, runs, n, step_p50_ms);
	MEDIAN_FIELD(m, runs, n, step_p99_ms);
	MEDIAN_FIELD(m, runs, n, step_max_ms);
	MEDIAN_FIELD(m, runs, n, d_fetch_s);
	MEDIAN_FIELD(m, runs, n, self_stall_s);
	MEDIAN_FIELD(m, runs, n, self_stall_fetch_s);
	MEDIAN_FIELD(m, runs, n, self_stall_avoided_s);
	MEDIAN_FIELD(m, runs, n, d_stall_avoided_model_s);
	{
		double v[MAX_REPEAT];

		for (size_t i = 0; i < n; i++)
			v[i] = (double)runs[i].hits;
		m->hits = (uint64_t)llround(median_of(v, n));
	}
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

void stall_compare(const struct ctx *x, struct stall_cmp *c)
{
	const struct bench_result *s = &x->stoker;

	memset(c, 0, sizeof(*c));
	c->measured_s = x->direct.stall_s - s->stall_s;
	c->reported_s = s->self_stall_avoided_s;
	c->ratio = c->measured_s > 0 ? c->reported_s / c->measured_s : NAN;
	c->model_s = s->d_stall_avoided_model_s;
	c->daemon_s = s->self_stall_s;
	c->fetch_s = s->self_stall_fetch_s;
	c->delivery_s =
	    s->self_stall_s > s->self_stall_fetch_s ? s->self_stall_s - s->self_stall_fetch_s : 0;
	c->bench_s = s->stall_s;
	c->have_accounting = s->d_waits > 0 || s->self_stall_s > 0;
}

/* v, or JSON null where it is not a number. */
static json_t *real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* --- report --- */

static json_t *result_json(const struct bench_result *r, const struct bench_result *runs, size_t n,
			   bool stoker)
{
	json_t *o = json_object();

	json_object_set_new(o, "wall_s", json_real(r->wall_s));
	json_object_set_new(o, "stall_s", json_real(r->stall_s));
	json_object_set_new(o, "stall_fraction", json_real(ratio(r->stall_s, r->wall_s)));
	json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
	json_object_set_new(o, "objects", json_integer((json_int_t)r->objects));
	json_object_set_new(o, "mb_per_s",
			    json_real(ratio((double)r->bytes / BENCH_MB, r->wall_s)));
	json_object_set_new(o, "objects_per_s", json_real(ratio((double)r->objects, r->wall_s)));
	json_object_set_new(o, "hit_ratio", json_real(ratio((double)r->hits, (double)r->objects)));
	json_object_set_new(o, "step_load_ms",
			    json_pack("{s:f,s:f,s:f}", "p50", r->step_p50_ms, "p99", r->step_p99_ms,
				      "max", r->step_max_ms));
	json_object_set_new(o, "checksum",
			    json_sprintf("%016llx", (unsigned long long)r->checksum));
	if (stoker) {
		json_object_set_new(o, "plan_s", json_real(r->plan_s));
		json_object_set_new(o, "get_wait_s", json_real(r->get_wait_s));
		json_object_set_new(o, "resident_at_start", json_integer(r->resident_at_start));
		if (r->have_stats) {
			json_object_set_new(
			    o, "client_hit_ratio",
			    json_real(ratio((double)r->client_hits, (double)r->client_gets)));
			json_object_set_new(o, "daemon",
					    json_pack("{s:I,s:I,s:I,s:I,s:I,s:f}", "fetches",
						      (json_int_t)r->d_fetches, "prefetches",
						      (json_int_t)r->d_prefetches, "fetch_bytes",
						      (json_int_t)r->d_fetch_bytes, "evictions",
						      (json_int_t)r->d_evictions, "fetch_errors",
						      (json_int_t)r->d_fetch_errors, "fetch_s",
						      r->d_fetch_s));
			/* stall_s, fetch_s, delivery_s and avoided_s are this
			 * connection's, as stokerd counted them; the rest are
			 * daemon-wide (a started daemon served this run alone). */
			json_object_set_new(
			    o, "daemon_stall",
			    json_pack("{s:f,s:f,s:f,s:f,s:f,s:I,s:I}", "stall_s", r->self_stall_s,
				      "fetch_s", r->self_stall_fetch_s, "delivery_s",
				      r->self_stall_s > r->self_stall_fetch_s
					  ? r->self_stall_s - r->self_stall_fetch_s
					  : 0.0,
				      "avoided_s", r->self_stall_avoided_s, "avoided_model_s",
				      r->d_stall_avoided_model_s, "waits", (json_int_t)r->d_waits,
				      "delivered_bytes", (json_int_t)r->d_delivered_bytes));
		}
	}
	if (n > 1) {
		json_t *a = json_array();

		for (size_t i = 0; i < n; i++) {
			json_t *e = json_pack("{s:f,s:f}", "wall_s", runs[i].wall_s, "stall_s",
					      runs[i].stall_s);

			if (stoker && runs[i].have_stats)
				json_object_set_new(e, "stall_avoided_reported_s",
						    json_real(runs[i].self_stall_avoided_s));
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "runs", a);
	}
	return o;
}

static void print_row(const char *name, const struct bench_result *r, bool hits)
{
	char hr[16];

	if (hits)
		snprintf(hr, sizeof(hr), "%.3f", ratio((double)r->hits, (double)r->objects));
	else
		snprintf(hr, sizeof(hr), "-");
	printf("%-7s %8.2f %8.2f %6.1f%% %9.1f %8.1f %9.1f %9s %7.1f/%.1f\n", name, r->wall_s,
	       r->stall_s, 100 * ratio(r->stall_s, r->wall_s), (double)r->bytes / BENCH_MB,
	       ratio((double)r->bytes / BENCH_MB, r->wall_s), ratio((double)r->objects, r->wall_s),
	       hr, r->step_p50_ms, r->step_p99_ms);
}

const char *size_name(uint64_t size, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB" };
	double v = (double)size;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.4g %s", v, unit[u]);
	return buf;
}

/* --- --hot: per-round figures and their medians --- */

enum hot_metric {
	H_GETS,		  /* single gets/s */
	H_STREAM_GB,	  /* single streaming GB/s */
	H_STREAM_OBJ,	  /* single streaming objects/s */
	H_BATCH_GETS,	  /* batched gets/s (objects) */
	H_BATCH_STREAM,	  /* batched streaming GB/s */
	H_PRIVATE_GB,	  /* hash over private copies, GB/s */
	H_PC_FILES,	  /* page-cache loop, files/s */
	H_PC_GB,	  /* page-cache loop, GB/s */
	H_STREAM_PRIVATE, /* streaming / private */
	H_STREAM_PC,	  /* streaming / page cache (GB/s) */
	H_GETS_PC,	  /* single gets/s / page-cache files/s */
	H_BATCH_PC,	  /* batched streaming / page cache (GB/s) */
	H_BGETS_PC,	  /* batched gets/s / page-cache files/s */
	H_BGETS_GETS,	  /* batched gets/s / single gets/s */
	H_METRICS
};

static bool batch_metric(enum hot_metric m)
{
	return m == H_BATCH_GETS || m == H_BATCH_STREAM || m == H_BATCH_PC || m == H_BGETS_PC ||
	       m == H_BGETS_GETS;
}

static double per_s(const struct bench_rate *r)
{
	return ratio((double)r->items, r->seconds);
}

static double gb_s(const struct bench_rate *r)
{
	return ratio((double)r->bytes / BENCH_GB, r->seconds);
}

/* Metric m of one round; ratios pair loops of the same round. */
static double hot_metric(const struct bench_rate *row, enum hot_metric m)
{
	switch (m) {
	case H_GETS:
		return per_s(&row[BENCH_HOT_GETS]);
	case H_STREAM_GB:
		return gb_s(&row[BENCH_HOT_STREAM]);
	case H_STREAM_OBJ:
		return per_s(&row[BENCH_HOT_STREAM]);
	case H_BATCH_GETS:
		return per_s(&row[BENCH_HOT_BATCH_GETS]);
	case H_BATCH_STREAM:
		return gb_s(&row[BENCH_HOT_BATCH_STREAM]);
	case H_PRIVATE_GB:
		return gb_s(&row[BENCH_HOT_PRIVATE]);
	case H_PC_FILES:
		return per_s(&row[BENCH_HOT_PAGECACHE]);
	case H_PC_GB:
		return gb_s(&row[BENCH_HOT_PAGECACHE]);
	case H_STREAM_PRIVATE:
		return ratio(gb_s(&row[BENCH_HOT_STREAM]), gb_s(&row[BENCH_HOT_PRIVATE]));
	case H_STREAM_PC:
		return ratio(gb_s(&row[BENCH_HOT_STREAM]), gb_s(&row[BENCH_HOT_PAGECACHE]));
	case H_GETS_PC:
		return ratio(per_s(&row[BENCH_HOT_GETS]), per_s(&row[BENCH_HOT_PAGECACHE]));
	case H_BATCH_PC:
		return ratio(gb_s(&row[BENCH_HOT_BATCH_STREAM]), gb_s(&row[BENCH_HOT_PAGECACHE]));
	case H_BGETS_PC:
		return ratio(per_s(&row[BENCH_HOT_BATCH_GETS]), per_s(&row[BENCH_HOT_PAGECACHE]));
	case H_BGETS_GETS:
		return ratio(per_s(&row[BENCH_HOT_BATCH_GETS]), per_s(&row[BENCH_HOT_GETS]));
	default:
		return 0;
	}
}

/* The median over rounds of metric m; NAN where it was not measured. */
static double hot_median(const struct bench_hot_size *h, enum hot_metric m)
{
	double v[BENCH_MAX_ROUNDS];

	if (!h->rounds || (batch_metric(m) && !h->have_batch))
		return NAN;
	for (unsigned r = 0; r < h->rounds; r++)
		v[r] = hot_metric(h->runs[r], m);
	return median_of(v, h->rounds);
}

/* v with prec decimals into buf, or "n/a" when it was not measured. */
static const char *fig(char *buf, size_t len, int prec, double v)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.*f", prec, v);
	return buf;
}

static const char *warm_state_name(uint32_t st)
{
	switch (st) {
	case STK_WARM_DONE:
		return "done";
	case STK_WARM_FULL:
		return "FULL";
	case STK_WARM_RUNNING:
		return "running";
	default:
		return "none";
	}
}

static void print_hot(const struct ctx *x)
{
	char a[16], b[16], c[16], d[16], e[16], name[32];
	bool batch = x->hot_n && x->hot[0].have_batch;

	printf("hot: resident objects, one thread; medians of %u rounds, each measurement %g s, "
	       "stoker and references alternating (GB = 10^9 B)\n",
	       hot_rounds(&x->o), x->o.hot_s);
	if (x->spawn)
		printf("hot: a fresh %s per size, --ram %s\n", x->stokerd,
		       x->o.ram ? x->o.ram : "its dataset + 25% + 64 MiB");
	else
		printf("hot: the running stokerd at %s\n", x->o.socket);
	printf("hot: datasets under %s%s\n", x->hot_parent,
	       x->hot_tmp[0] ? " (removed at exit)" : " (kept for the next run)");
	printf("hot: %ld CPUs, 1-minute load average %.2f before, %.2f after\n",
	       sysconf(_SC_NPROCESSORS_ONLN), x->hot_load[0], x->hot_load[1]);
	printf("\n%-8s %7s  %-17s  %-23s  %7s  %-17s\n", "", "", "stoker, single",
	       "stoker, batched", "private", "page-cache loop");
	printf("%-8s %7s  %9s %7s  %5s %9s %7s  %7s  %9s %7s\n", "size", "objects", "gets/s",
	       "GB/s", "batch", "gets/s", "GB/s", "GB/s", "files/s", "GB/s");
	for (unsigned i = 0; i < x->hot_n; i++) {
		const struct bench_hot_size *h = &x->hot[i];

		printf("%-8s %7u  %9.0f %7.2f  %5u %9s %7s  %7.2f  %9.0f %7.2f\n",
		       size_name(h->size, name, sizeof(name)), h->count, hot_median(h, H_GETS),
		       hot_median(h, H_STREAM_GB), h->batch,
		       fig(a, sizeof(a), 0, hot_median(h, H_BATCH_GETS)),
		       fig(b, sizeof(b), 2, hot_median(h, H_BATCH_STREAM)),
		       hot_median(h, H_PRIVATE_GB), hot_median(h, H_PC_FILES),
		       hot_median(h, H_PC_GB));
	}
	printf("\nratios, each the median of the rounds' own ratios:\n");
	printf("%-8s %10s %10s %10s %10s %10s\n", "", "stream /", "stream /", "gets/s /",
	       "batched /", "batch gets");
	printf("%-8s %10s %10s %10s %10s %10s\n", "size", "private", "page cache", "files/s",
	       "page cache", "/ single");
	for (unsigned i = 0; i < x->hot_n; i++) {
		const struct bench_hot_size *h = &x->hot[i];

		printf("%-8s %10s %10s %10s %10s %10s\n", size_name(h->size, name, sizeof(name)),
		       fig(a, sizeof(a), 3, hot_median(h, H_STREAM_PRIVATE)),
		       fig(b, sizeof(b), 3, hot_median(h, H_STREAM_PC)),
		       fig(c, sizeof(c), 3, hot_median(h, H_GETS_PC)),
		       fig(d, sizeof(d), 3, hot_median(h, H_BATCH_PC)),
		       fig(e, sizeof(e), 2, hot_median(h, H_BGETS_GETS)));
	}
	putchar('\n');
	printf("single: stk_get + stk_release (gets/s, no byte touched); get, hash every byte, "
	       "release (GB/s)\n");
	if (batch)
		printf("batched: stk_get_batch of 'batch' objects + stk_release_batch, the same "
		       "two ways\n");
	else
		printf("batched: n/a, this libstoker has no stk_get_batch (no STK_HAVE_GET_BATCH "
		       "in stoker.h)\n");
	printf("private: the same hash over private copies of the same objects (malloc'd, "
	       "touched): the ceiling\n");
	printf("page cache: open, read into one reused buffer, close, hash; the same files, "
	       "in the page cache\n");
	printf("stream / page cache: GB/s, both hash every byte; gets/s / files/s: a get that "
	       "touches nothing against a read that copies and hashes\n");
	for (unsigned i = 0; i < x->hot_n; i++) {
		const struct bench_hot_size *h = &x->hot[i];

		printf("%s: warm of %.1f MB in %.2f s (%s), hit ratio %.3f of %llu gets, "
		       "checksums %s\n",
		       size_name(h->size, name, sizeof(name)), (double)h->warm_bytes / BENCH_MB,
		       h->warm_s, warm_state_name(h->warm_state),
		       ratio((double)h->hits, (double)h->gets), (unsigned long long)h->gets,
		       !h->checksums_match ? "MISMATCH"
		       : h->have_batch	   ? "match (single, batched, private, page cache)"
					   : "match (stoker, private, page cache)");
	}
}

static json_t *hot_size_json(const struct bench_hot_size *h, const char *dir, const char *ram)
{
	json_t *o = json_object(), *batched = json_null();

	json_object_set_new(o, "object_bytes", json_integer((json_int_t)h->size));
	json_object_set_new(o, "objects", json_integer(h->count));
	json_object_set_new(o, "dataset", json_string(dir));
	json_object_set_new(o, "dataset_bytes", json_integer((json_int_t)(h->size * h->count)));
	if (ram)
		json_object_set_new(o, "ram", json_string(ram));
	json_object_set_new(o, "warm_s", json_real(h->warm_s));
	json_object_set_new(o, "warm_bytes", json_integer((json_int_t)h->warm_bytes));
	json_object_set_new(o, "warm_state", json_string(warm_state_name(h->warm_state)));
	json_object_set_new(o, "gets", json_integer((json_int_t)h->gets));
	json_object_set_new(o, "hit_ratio", json_real(ratio((double)h->hits, (double)h->gets)));
	json_object_set_new(o, "checksums_match", json_boolean(h->checksums_match));
	json_object_set_new(o, "rounds", json_integer(h->rounds));
	json_object_set_new(o, "single",
			    json_pack("{s:f,s:f,s:f}", "gets_per_s", hot_median(h, H_GETS),
				      "stream_gb_per_s", hot_median(h, H_STREAM_GB),
				      "stream_objects_per_s", hot_median(h, H_STREAM_OBJ)));
	if (h->have_batch) {
		json_decref(batched);
		batched = json_pack("{s:i,s:f,s:f}", "batch", (int)h->batch, "gets_per_s",
				    hot_median(h, H_BATCH_GETS), "stream_gb_per_s",
				    hot_median(h, H_BATCH_STREAM));
	}
	json_object_set_new(o, "batched", batched);
	json_object_set_new(o, "private",
			    json_pack("{s:f}", "gb_per_s", hot_median(h, H_PRIVATE_GB)));
	json_object_set_new(o, "page_cache",
			    json_pack("{s:f,s:f}", "files_per_s", hot_median(h, H_PC_FILES),
				      "gb_per_s", hot_median(h, H_PC_GB)));
	json_object_set_new(
	    o, "ratios",
	    json_pack("{s:f,s:f,s:f,s:o,s:o,s:o}", "stream_vs_private",
		      hot_median(h, H_STREAM_PRIVATE), "stream_vs_page_cache",
		      hot_median(h, H_STREAM_PC), "gets_vs_page_cache_files",
		      hot_median(h, H_GETS_PC), "batched_stream_vs_page_cache",
		      h->have_batch ? json_real(hot_median(h, H_BATCH_PC)) : json_null(),
		      "batched_gets_vs_page_cache_files",
		      h->have_batch ? json_real(hot_median(h, H_BGETS_PC)) : json_null(),
		      "batched_gets_vs_single",
		      h->have_batch ? json_real(hot_median(h, H_BGETS_GETS)) : json_null()));
	if (h->rounds > 1) {
		json_t *a = json_array();

		for (unsigned r = 0; r < h->rounds; r++) {
			const struct bench_rate *row = h->runs[r];
			json_t *e = json_pack("{s:f,s:f,s:f,s:f,s:f}", "gets_per_s",
					      hot_metric(row, H_GETS), "stream_gb_per_s",
					      hot_metric(row, H_STREAM_GB), "private_gb_per_s",
					      hot_metric(row, H_PRIVATE_GB),
					      "page_cache_files_per_s", hot_metric(row, H_PC_FILES),
					      "page_cache_gb_per_s", hot_metric(row, H_PC_GB));

			if (h->have_batch) {
				json_object_set_new(e, "batched_gets_per_s",
						    json_real(hot_metric(row, H_BATCH_GETS)));
				json_object_set_new(e, "batched_stream_gb_per_s",
						    json_real(hot_metric(row, H_BATCH_STREAM)));
			}
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "runs", a);
	}
	return o;
}

/*
 * The "hot" object.  Its first fields are the ones the single-dataset --hot
 * wrote before sizes existed; they repeat the figures of the size nearest
 * 1.5 MiB, the object size its "read_gb_per_s" was measured at.
 */
static json_t *hot_json(const struct ctx *x)
{
	const struct bench_hot_size *l = NULL;
	json_t *o = json_object(), *sizes = json_array();
	double best = INFINITY;
	uint64_t gets = 0, hits = 0, warm_bytes = 0;
	double warm_s = 0;

	for (unsigned i = 0; i < x->hot_n; i++) {
		const struct bench_hot_size *h = &x->hot[i];
		double dist = fabs(log((double)h->size / (1.5 * 1024 * 1024)));

		if (dist < best) {
			best = dist;
			l = h;
		}
		gets += h->gets;
		hits += h->hits;
		warm_bytes += h->warm_bytes;
		warm_s += h->warm_s;
		json_array_append_new(
		    sizes, hot_size_json(h, x->hot_dir[i], x->spawn ? x->hot_ram[i] : NULL));
	}
	if (l) {
		json_object_set_new(o, "gets_per_s", json_real(hot_median(l, H_GETS)));
		json_object_set_new(o, "read_gb_per_s", json_real(hot_median(l, H_STREAM_GB)));
		json_object_set_new(o, "read_mb_per_object", json_real((double)l->size / BENCH_MB));
		json_object_set_new(o, "private_read_gb_per_s",
				    json_real(hot_median(l, H_PRIVATE_GB)));
	}
	json_object_set_new(o, "gets", json_integer((json_int_t)gets));
	json_object_set_new(o, "hit_ratio", json_real(ratio((double)hits, (double)gets)));
	json_object_set_new(o, "warm_s", json_real(warm_s));
	json_object_set_new(o, "warm_bytes", json_integer((json_int_t)warm_bytes));
	json_object_set_new(o, "rounds", json_integer(hot_rounds(&x->o)));
	json_object_set_new(o, "seconds_per_measurement", json_real(x->o.hot_s));
	json_object_set_new(o, "batch_api", json_boolean(x->hot_n && x->hot[0].have_batch));
	json_object_set_new(o, "datasets", json_string(x->hot_parent));
	json_object_set_new(o, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_set_new(o, "load_avg_1m", json_pack("[f,f]", x->hot_load[0], x->hot_load[1]));
	json_object_set_new(o, "sizes", sizes);
	return o;
}

/* The stall avoided both ways and the split of the stoker run's stall. */
static void print_stall(const struct ctx *x)
{
	struct stall_cmp c;
	char r[16];

	stall_compare(x, &c);
	printf("\nstall avoided (measured): %.2f s (direct stall - stoker stall), "
	       "%.0f%% of the direct stall; wall time %.2fx shorter\n",
	       c.measured_s, 100 * ratio(c.measured_s, x->direct.stall_s),
	       ratio(x->direct.wall_s, x->stoker.wall_s));
	printf("stall avoided (reported by stokerd): %.2f s; reported / measured = %s",
	       c.reported_s, fig(r, sizeof(r), 3, c.ratio));
	if (c.model_s > 0)
		printf(" (%.2f s of it, daemon-wide, from its model alone)", c.model_s);
	putchar('\n');
	printf("stall split: direct %.2f s, all fetch (every byte read while the trainer "
	       "waited)\n",
	       x->direct.stall_s);
	if (c.have_accounting)
		printf("             stoker %.2f s as the bench measured it, %.2f s as stokerd "
		       "counted it: fetch %.2f s, delivery %.2f s\n",
		       c.bench_s, c.daemon_s, c.fetch_s, c.delivery_s);
	else
		printf("             stoker %.2f s as the bench measured it; stokerd reported no "
		       "stall accounting (a daemon before protocol 5?)\n",
		       c.bench_s);
}

bool emulating(const struct options *o)
{
	return o->emul.latency_ms > 0 || o->emul.bandwidth_mb_s > 0;
}

void report_text(const struct ctx *x)
{
	const struct options *o = &x->o;
	bool used_daemon = x->ran_stoker || x->ran_warm;
	unsigned long k = o->repeat;

	if (x->ds.dir)
		printf("stoker-bench: dataset %s: %zu objects, %.1f MB\n", x->ds.dir, x->ds.count,
		       (double)x->ds.bytes / BENCH_MB);
	if (x->ran_direct || x->ran_stoker)
		printf("trainer: %lu steps x %lu objects (%.2f epochs, seeded shuffle, seed %llu), "
		       "compute %g ms/step\n",
		       o->steps, o->batch, (double)(o->steps * o->batch) / (double)x->ds.count,
		       (unsigned long long)o->seed, o->compute_ms);
	if (emulating(o))
		printf("EMULATED slow backend: +%g ms per request, %g MB/s cap "
		       "(stokerd's file transport and the direct reader pay the same)\n",
		       o->emul.latency_ms, o->emul.bandwidth_mb_s);
	if (x->ran_direct || x->ran_stoker || x->ran_warm)
		printf("cold start: %s\n",
		       x->cache_dropped
			   ? "dataset pages dropped from the page cache before each run "
			     "(posix_fadvise DONTNEED)"
			   : "NOT guaranteed (page cache drop failed)");
	if (used_daemon && x->spawn)
		printf("daemon: %s --ram %s, a fresh one per run (empty cache)\n", x->stokerd,
		       x->ram ? x->ram : "(default)");
	else if (used_daemon)
		printf("daemon: the running one at %s (its cache may be warm)\n", o->socket);

	if (x->ran_direct || x->ran_stoker) {
		printf("\n%-7s %8s %8s %7s %9s %8s %9s %9s %s\n", "mode", "wall s", "stall s",
		       "stall", "MB", "MB/s", "objects/s", "hit ratio", "step load p50/p99 ms");
		if (x->ran_direct)
			print_row("direct", &x->direct, false);
		if (x->ran_stoker)
			print_row("stoker", &x->stoker, true);
		if (k > 1)
			printf("(medians of %lu runs each, alternating direct, stoker)\n", k);
		if (x->ran_stoker && x->stoker.have_stats)
			printf("stoker: plan %.1f ms; daemon fetched %llu objects (%.1f MB, %llu "
			       "by the plan), %llu evictions, %llu fetch errors; gets waited "
			       "%.2f s\n",
			       x->stoker.plan_s * 1e3, (unsigned long long)x->stoker.d_fetches,
			       (double)x->stoker.d_fetch_bytes / BENCH_MB,
			       (unsigned long long)x->stoker.d_prefetches,
			       (unsigned long long)x->stoker.d_evictions,
			       (unsigned long long)x->stoker.d_fetch_errors, x->stoker.get_wait_s);
		printf("checksums: %s\n", x->checksums_match ? "every run read identical bytes"
							     : "MISMATCH (see above)");
		if (x->ran_direct && x->ran_stoker)
			print_stall(x);
	}
	if (x->ran_warm)
		printf("warm: %u/%u objects, %.1f MB resident in %.3f s: %.1f MB/s (cold)%s\n",
		       x->warm.resident, x->warm.objects, (double)x->warm.bytes / BENCH_MB,
		       x->warm.seconds, ratio((double)x->warm.bytes / BENCH_MB, x->warm.seconds),
		       x->warm.state == STK_WARM_FULL ? " - budget FULL" : "");
	if (x->ran_hot) {
		if (x->ran_direct || x->ran_stoker || x->ran_warm)
			putchar('\n');
		print_hot(x);
	}
	if (x->daemon_unclean)
		printf("WARNING: stokerd did not exit cleanly (see stderr)\n");
}

int report_json(const struct ctx *x)
{
	const struct options *o = &x->o;
	json_t *root = json_object(), *cfg;
	uint64_t objects = x->ds.count, bytes = x->ds.bytes;
	int ret = 0;

	/* --hot alone reads no dataset of its own: report its datasets'. */
	if (!x->ds.dir)
		for (unsigned i = 0; i < x->hot_n; i++) {
			objects += x->hot[i].count;
			bytes += x->hot[i].size * x->hot[i].count;
		}
	cfg = json_pack("{s:s?,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:b,s:s?}", "dataset",
			x->ds.dir ? x->ds.dir : x->hot_parent, "objects", (json_int_t)objects,
			"dataset_bytes", (json_int_t)bytes, "steps", (json_int_t)o->steps, "batch",
			(json_int_t)o->batch, "compute_ms", o->compute_ms, "seed",
			(json_int_t)o->seed, "repeat", (json_int_t)o->repeat, "cold_start",
			x->cache_dropped, "ram", x->spawn ? x->ram : NULL);
	if (o->report)
		json_object_set_new(cfg, "report", json_string(o->report));
	json_object_set_new(root, "config", cfg);
	if (emulating(o))
		json_object_set_new(root, "emulation",
				    json_pack("{s:f,s:f}", "latency_ms", o->emul.latency_ms,
					      "bandwidth_mb_s", o->emul.bandwidth_mb_s));
	if (x->ran_direct)
		json_object_set_new(root, "direct",
				    result_json(&x->direct, x->runs_direct, o->repeat, false));
	if (x->ran_stoker)
		json_object_set_new(root, "stoker",
				    result_json(&x->stoker, x->runs_stoker, o->repeat, true));
	if (x->ran_direct && x->ran_stoker) {
		struct stall_cmp c;

		stall_compare(x, &c);
		json_object_set_new(root, "stall_avoided_measured_s", json_real(c.measured_s));
		json_object_set_new(root, "stall_avoided_reported_s", json_real(c.reported_s));
		json_object_set_new(root, "stall_avoided_ratio", real_or_null(c.ratio));
		json_object_set_new(
		    root, "stall_split",
		    json_pack("{s:{s:f},s:{s:f,s:o,s:o,s:o}}", "direct", "fetch_s",
			      x->direct.stall_s, "stoker", "measured_s", c.bench_s, "daemon_s",
			      c.have_accounting ? json_real(c.daemon_s) : json_null(), "fetch_s",
			      c.have_accounting ? json_real(c.fetch_s) : json_null(), "delivery_s",
			      c.have_accounting ? json_real(c.delivery_s) : json_null()));
	}
	if (x->ran_direct || x->ran_stoker)
		json_object_set_new(root, "checksums_match", json_boolean(x->checksums_match));
	if (x->ran_warm)
		json_object_set_new(
		    root, "warm",
		    json_pack("{s:f,s:I,s:I,s:I,s:I,s:I,s:f,s:b,s:f}", "seconds", x->warm.seconds,
			      "bytes", (json_int_t)x->warm.bytes, "objects",
			      (json_int_t)x->warm.objects, "resident", (json_int_t)x->warm.resident,
			      "failed", (json_int_t)x->warm.failed, "promoted",
			      (json_int_t)x->warm.promoted, "mb_per_s",
			      ratio((double)x->warm.bytes / BENCH_MB, x->warm.seconds), "complete",
			      x->warm.state == STK_WARM_DONE, "daemon_cpu_s",
			      x->warm.daemon_cpu_s));
	if (x->ran_hot)
		json_object_set_new(root, "hot", hot_json(x));
	json_object_set_new(root, "daemon_exit_clean", json_boolean(!x->daemon_unclean));
	if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) < 0)
		ret = -EIO;
	putchar('\n');
	json_decref(root);
	return ret;
}

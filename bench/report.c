/* SPDX-License-Identifier: MIT */
/* stoker-bench's report: medians over --repeat, the table for people, --json. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
		}
	}
	if (n > 1) {
		json_t *a = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_pack("{s:f,s:f}", "wall_s", runs[i].wall_s,
							   "stall_s", runs[i].stall_s));
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

static void print_hot(const struct bench_hot *h)
{
	printf("hot: warm of %.1f MB took %.2f s (%.0f MB/s)%s\n", (double)h->warm_bytes / BENCH_MB,
	       h->warm_s, ratio((double)h->warm_bytes / BENCH_MB, h->warm_s),
	       h->warm_state == STK_WARM_FULL ? " - budget FULL, not all resident" : "");
	printf("hot: get+release of resident objects: %.0f gets/s (%llu gets, hit ratio %.3f)\n",
	       ratio((double)h->gets, h->gets_s), (unsigned long long)h->gets,
	       ratio((double)h->hits, (double)h->gets));
	printf("hot: streaming read (get, hash every byte, release): %.2f GB/s "
	       "(%llu objects, %.1f MB/object)\n",
	       ratio((double)h->read_bytes / BENCH_GB, h->read_s),
	       (unsigned long long)h->read_objects,
	       ratio((double)h->read_bytes / BENCH_MB, (double)h->read_objects));
	printf("hot: reference, the same hash over private already-touched memory: %.2f GB/s\n",
	       ratio((double)h->ref_bytes / BENCH_GB, h->ref_s));
}

bool emulating(const struct options *o)
{
	return o->emul.latency_ms > 0 || o->emul.bandwidth_mb_s > 0;
}

void report_text(const struct ctx *x)
{
	const struct options *o = &x->o;
	bool used_daemon = x->ran_stoker || x->ran_hot || x->ran_warm;
	unsigned long k = o->repeat;

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
		if (x->ran_direct && x->ran_stoker) {
			double avoided = x->direct.stall_s - x->stoker.stall_s;

			printf("\nstall avoided (measured): %.2f s (direct stall - stoker stall), "
			       "%.0f%% of the direct stall; wall time %.2fx shorter\n",
			       avoided, 100 * ratio(avoided, x->direct.stall_s),
			       ratio(x->direct.wall_s, x->stoker.wall_s));
		}
	}
	if (x->ran_warm)
		printf("warm: %u/%u objects, %.1f MB resident in %.3f s: %.1f MB/s (cold)%s\n",
		       x->warm.resident, x->warm.objects, (double)x->warm.bytes / BENCH_MB,
		       x->warm.seconds, ratio((double)x->warm.bytes / BENCH_MB, x->warm.seconds),
		       x->warm.state == STK_WARM_FULL ? " - budget FULL" : "");
	if (x->ran_hot) {
		if (x->ran_direct || x->ran_stoker)
			putchar('\n');
		print_hot(&x->hot);
	}
	if (x->daemon_unclean)
		printf("WARNING: stokerd did not exit cleanly (see stderr)\n");
}

int report_json(const struct ctx *x)
{
	const struct options *o = &x->o;
	json_t *root = json_object(), *cfg;
	int ret = 0;

	cfg =
	    json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:b,s:s?}", "dataset", x->ds.dir, "objects",
		      (json_int_t)x->ds.count, "dataset_bytes", (json_int_t)x->ds.bytes, "steps",
		      (json_int_t)o->steps, "batch", (json_int_t)o->batch, "compute_ms",
		      o->compute_ms, "seed", (json_int_t)o->seed, "repeat", (json_int_t)o->repeat,
		      "cold_start", x->cache_dropped, "ram", x->spawn ? x->ram : NULL);
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
	if (x->ran_direct && x->ran_stoker)
		json_object_set_new(root, "stall_avoided_measured_s",
				    json_real(x->direct.stall_s - x->stoker.stall_s));
	if (x->ran_direct || x->ran_stoker)
		json_object_set_new(root, "checksums_match", json_boolean(x->checksums_match));
	if (x->ran_warm)
		json_object_set_new(
		    root, "warm",
		    json_pack("{s:f,s:I,s:I,s:I,s:I,s:f,s:b}", "seconds", x->warm.seconds, "bytes",
			      (json_int_t)x->warm.bytes, "objects", (json_int_t)x->warm.objects,
			      "resident", (json_int_t)x->warm.resident, "failed",
			      (json_int_t)x->warm.failed, "mb_per_s",
			      ratio((double)x->warm.bytes / BENCH_MB, x->warm.seconds), "complete",
			      x->warm.state == STK_WARM_DONE));
	if (x->ran_hot)
		json_object_set_new(
		    root, "hot",
		    json_pack(
			"{s:f,s:f,s:I,s:f,s:f,s:I,s:f,s:f}", "gets_per_s",
			ratio((double)x->hot.gets, x->hot.gets_s), "read_gb_per_s",
			ratio((double)x->hot.read_bytes / BENCH_GB, x->hot.read_s), "gets",
			(json_int_t)x->hot.gets, "hit_ratio",
			ratio((double)x->hot.hits, (double)x->hot.gets), "warm_s", x->hot.warm_s,
			"warm_bytes", (json_int_t)x->hot.warm_bytes, "read_mb_per_object",
			ratio((double)x->hot.read_bytes / BENCH_MB, (double)x->hot.read_objects),
			"private_read_gb_per_s",
			ratio((double)x->hot.ref_bytes / BENCH_GB, x->hot.ref_s)));
	json_object_set_new(root, "daemon_exit_clean", json_boolean(!x->daemon_unclean));
	if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) < 0)
		ret = -EIO;
	putchar('\n');
	json_decref(root);
	return ret;
}

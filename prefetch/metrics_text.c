/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition (format 0.0.4) of a metrics snapshot, on
 * the HTTP thread; docs/metrics.md lists every metric.  metrics.c takes the
 * snapshots and serves them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "metrics_int.h"

void stk__bprintf(struct buf *b, const char *fmt, ...)
{
	for (;;) {
		if (b->oom)
			return;
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap =
		    b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 : b->len + (size_t)n + 1;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void header(struct buf *b, const char *name, const char *type, const char *help)
{
	stk__bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * Nanoseconds as seconds, exactly: "S.NNNNNNNNN".  Totals then match what
 * `stoker stats --json` reports in ns to the last digit.
 */
#define NS_FMT		    "%" PRIu64 ".%09" PRIu64
#define NS_ARGS(ns)	    (uint64_t)(ns) / 1000000000u, (uint64_t)(ns) % 1000000000u
#define U64(b, name, l, v)  stk__bprintf(b, "%s%s %" PRIu64 "\n", name, l, (uint64_t)(v))
#define SEC(b, name, l, ns) stk__bprintf(b, "%s%s " NS_FMT "\n", name, l, NS_ARGS(ns))

/*
 * A histogram's samples: cumulative buckets up to +Inf, _sum and _count.
 * labels: "" or `key="value",` (with the trailing comma) for each sample.
 */
static void hist(struct buf *b, const char *name, const char *labels, const struct stk_hist *h)
{
	uint64_t cum = 0;
	for (unsigned i = 0; i < STK_HIST_BOUNDS; i++) {
		cum += h->bucket[i];
		stk__bprintf(b, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels,
			     stk_hist_bounds_s[i], cum);
	}
	cum += h->bucket[STK_HIST_BOUNDS];
	stk__bprintf(b, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
	size_t n = strlen(labels);
	if (n) /* without the trailing comma */
		stk__bprintf(b, "%s_sum{%.*s} " NS_FMT "\n%s_count{%.*s} %" PRIu64 "\n", name,
			     (int)n - 1, labels, NS_ARGS(h->sum_ns), name, (int)n - 1, labels, cum);
	else
		stk__bprintf(b, "%s_sum " NS_FMT "\n%s_count %" PRIu64 "\n", name,
			     NS_ARGS(h->sum_ns), name, cum);
}

static void stall_add(struct stk_stall *t, const struct stk_stall *a)
{
	t->requests += a->requests;
	t->objects += a->objects;
	t->hits += a->hits;
	t->bytes += a->bytes;
	t->stall_ns += a->stall_ns;
	t->fetch_stall_ns += a->fetch_stall_ns;
	t->delivery_stall_ns += a->delivery_stall_ns;
	t->avoided_ns += a->avoided_ns;
	t->avoided_model_ns += a->avoided_model_ns;
	t->unknown_objects += a->unknown_objects;
}

/* The exposition of snapshot s into b. HTTP thread. */
void stk__metrics_format(struct stk_metrics *m, const struct snap *s, struct buf *b)
{
	const uint64_t *st = s->st;
	uint64_t now = stk__now_ns();
	uint64_t hb = __atomic_load_n(&m->d->heartbeat_ns, __ATOMIC_ACQUIRE);

	header(b, "stoker_stall_seconds_total", "counter",
	       "Time clients waited for objects (gets and batch gets), summed over all "
	       "requests; the sum of the fetch and delivery parts.");
	SEC(b, "stoker_stall_seconds_total", "", st[STK_ST_STALL_NS]);
	header(b, "stoker_stall_fetch_seconds_total", "counter",
	       "Part of stoker_stall_seconds_total spent waiting for objects not resident "
	       "anywhere when asked for (a backend fetch).");
	SEC(b, "stoker_stall_fetch_seconds_total", "", st[STK_ST_STALL_FETCH_NS]);
	header(b, "stoker_stall_delivery_seconds_total", "counter",
	       "Part of stoker_stall_seconds_total spent on objects that were resident "
	       "(delivery only).");
	SEC(b, "stoker_stall_delivery_seconds_total", "", st[STK_ST_STALL_DELIVERY_NS]);
	header(b, "stoker_stall_avoided_seconds_total", "counter",
	       "Estimate: what reading the objects synchronously from their backends would "
	       "have cost beyond the waits clients saw (docs/stall.md).");
	SEC(b, "stoker_stall_avoided_seconds_total", "", st[STK_ST_AVOIDED_NS]);
	header(b, "stoker_stall_avoided_model_seconds_total", "counter",
	       "Part of stoker_stall_avoided_seconds_total estimated from an endpoint's model "
	       "alone (objects this daemon never fetched).");
	SEC(b, "stoker_stall_avoided_model_seconds_total", "", st[STK_ST_AVOIDED_MODEL_NS]);

	header(b, "stoker_wait_seconds", "histogram",
	       "Time each client request (a get or a batch get) waited for its objects.");
	hist(b, "stoker_wait_seconds", "", &s->wait);
	header(b, "stoker_fetch_seconds", "histogram",
	       "Duration of successful backend fetches, by transport (URI scheme).");
	for (unsigned i = 0; i < s->ntp; i++) {
		char l[64];
		snprintf(l, sizeof(l), "transport=\"%s\",", s->tp[i]);
		hist(b, "stoker_fetch_seconds", l, &s->fetch[i]);
	}

	header(b, "stoker_bytes_total", "counter",
	       "Bytes moved through a cache tier: direction=\"in\" fetched from backends into "
	       "it, direction=\"out\" delivered to clients.");
	U64(b, "stoker_bytes_total", "{tier=\"ram\",direction=\"in\"}", st[STK_ST_FETCH_BYTES]);
	U64(b, "stoker_bytes_total", "{tier=\"ram\",direction=\"out\"}",
	    st[STK_ST_DELIVERED_BYTES]);
	header(b, "stoker_gets_total", "counter", "Objects clients got.");
	U64(b, "stoker_gets_total", "", st[STK_ST_GETS]);
	header(b, "stoker_hits_total", "counter",
	       "Gets of objects resident in the tier when asked for.");
	U64(b, "stoker_hits_total", "{tier=\"ram\"}", st[STK_ST_HITS_RAM]);
	header(b, "stoker_misses_total", "counter",
	       "Gets of objects resident in no tier when asked for.");
	U64(b, "stoker_misses_total", "", st[STK_ST_MISSES]);
	header(b, "stoker_fetches_total", "counter", "Objects fetched from backends.");
	U64(b, "stoker_fetches_total", "", st[STK_ST_FETCHES]);
	header(b, "stoker_evictions_total", "counter", "Objects evicted from the cache.");
	U64(b, "stoker_evictions_total", "", st[STK_ST_EVICTIONS]);
	header(b, "stoker_backend_errors_total", "counter",
	       "Failed backend fetches, by transport and errno name (code).");
	for (unsigned t = 0; t < s->ntp; t++)
		for (unsigned e = 0; e < STK_OBS_ERRNO; e++) {
			if (!s->errors[t][e])
				continue;
			const char *name = strerrorname_np((int)e);
			char code[24], l[96];
			if (!name) {
				snprintf(code, sizeof(code), "errno_%u", e);
				name = code;
			}
			snprintf(l, sizeof(l), "{transport=\"%s\",code=\"%s\"}", s->tp[t], name);
			U64(b, "stoker_backend_errors_total", l, s->errors[t][e]);
		}

	header(b, "stoker_tier_bytes", "gauge",
	       "Bytes a cache tier charges to the objects it holds or is fetching.");
	U64(b, "stoker_tier_bytes", "{tier=\"ram\"}", s->tier_used);
	header(b, "stoker_tier_budget_bytes", "gauge", "Bytes a cache tier may hold.");
	U64(b, "stoker_tier_budget_bytes", "{tier=\"ram\"}", s->tier_budget);
	header(b, "stoker_resident_objects", "gauge", "Objects resident in the cache.");
	U64(b, "stoker_resident_objects", "", s->resident);
	header(b, "stoker_pinned_objects", "gauge", "Resident objects some client holds.");
	U64(b, "stoker_pinned_objects", "", s->pinned);
	header(b, "stoker_inflight_requests", "gauge", "Backend fetches in flight.");
	U64(b, "stoker_inflight_requests", "", s->inflight);
	header(b, "stoker_clients", "gauge", "Connected clients.");
	U64(b, "stoker_clients", "", st[STK_ST_CLIENTS]);
	header(b, "stoker_datasets", "gauge", "Datasets open or cached.");
	U64(b, "stoker_datasets", "", st[STK_ST_DATASETS]);

	/* Tier 1: one unlabelled sample each, straight from stk_stats. */
	static const struct {
		const char *name, *type, *help;
		unsigned st;
		bool ns; /* nanoseconds, written as seconds */
	} t1[] = {
		{ "stoker_nvme_budget_bytes", "gauge",
		  "Bytes of disk tier 1 (--nvme-dir) may take, metadata included; 0 without it.",
		  STK_ST_NVME_BUDGET, false },
		{ "stoker_nvme_used_bytes", "gauge", "Bytes of disk tier 1 charges now.",
		  STK_ST_NVME_USED, false },
		{ "stoker_nvme_objects", "gauge", "Objects tier 1 holds, writes included.",
		  STK_ST_NVME_OBJECTS, false },
		{ "stoker_nvme_hits_total", "counter",
		  "Gets served from a RAM copy promoted from tier 1.", STK_ST_HITS_NVME, false },
		{ "stoker_nvme_reads_total", "counter",
		  "Promotions: objects read from tier 1 into RAM.", STK_ST_NVME_READS, false },
		{ "stoker_nvme_read_bytes_total", "counter", "Bytes promoted from tier 1.",
		  STK_ST_NVME_READ_BYTES, false },
		{ "stoker_nvme_writes_total", "counter", "Demotions: objects written to tier 1.",
		  STK_ST_NVME_WRITES, false },
		{ "stoker_nvme_write_bytes_total", "counter", "Bytes written to tier 1.",
		  STK_ST_NVME_WRITE_BYTES, false },
		{ "stoker_nvme_dropped_corrupt_total", "counter",
		  "Tier-1 copies that failed their checksum: dropped and refetched.",
		  STK_ST_NVME_DROPPED_CORRUPT, false },
		{ "stoker_nvme_degraded", "gauge",
		  "1 while tier 1 takes no writes after a disk error (RAM only).",
		  STK_ST_NVME_DEGRADED, false },
		{ "stoker_nvme_stored_bytes", "gauge",
		  "Bytes of tier 1's copies as stored, compressed with --nvme-compress.",
		  STK_ST_NVME_STORED_BYTES, false },
		{ "stoker_nvme_plain_bytes", "gauge", "The plain size of the same copies.",
		  STK_ST_NVME_PLAIN_BYTES, false },
		{ "stoker_nvme_codec_seconds_total", "counter",
		  "Worker CPU time spent compressing and decompressing tier-1 copies.",
		  STK_ST_NVME_CODEC_NS, true },
	};
	for (unsigned k = 0; k < sizeof(t1) / sizeof(t1[0]); k++) {
		header(b, t1[k].name, t1[k].type, t1[k].help);
		if (t1[k].ns)
			SEC(b, t1[k].name, "", st[t1[k].st]);
		else
			U64(b, t1[k].name, "", st[t1[k].st]);
	}

	if (m->nnames) {
		memset(m->merged, 0, m->nnames * sizeof(*m->merged));
		for (unsigned i = 0; i < m->nlabels; i++)
			stall_add(&m->merged[m->label_name[i]], &s->labels[i]);
		static const struct {
			const char *name, *type, *help;
		} per[] = {
			{ "stoker_dataset_stall_seconds_total", "counter",
			  "stoker_stall_seconds_total of the datasets an operator named with "
			  "--metrics-dataset." },
			{ "stoker_dataset_stall_avoided_seconds_total", "counter",
			  "Estimate: stoker_stall_avoided_seconds_total of a named dataset." },
			{ "stoker_dataset_bytes_total", "counter",
			  "Bytes of the objects clients got from a named dataset." },
			{ "stoker_dataset_gets_total", "counter",
			  "Objects clients got from a named dataset." },
		};
		for (unsigned k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
			header(b, per[k].name, per[k].type, per[k].help);
			for (unsigned i = 0; i < m->nnames; i++) {
				const struct stk_stall *t = &m->merged[i];
				char l[160];
				snprintf(l, sizeof(l), "{dataset=\"%s\"}", m->names[i]);
				if (k == 0)
					SEC(b, per[k].name, l, t->stall_ns);
				else if (k == 1)
					SEC(b, per[k].name, l, t->avoided_ns);
				else if (k == 2)
					U64(b, per[k].name, l, t->bytes);
				else
					U64(b, per[k].name, l, t->objects);
			}
		}
	}

	header(b, "stoker_snapshot_age_seconds", "gauge",
	       "Age of the numbers in this scrape: near 0, or how long the event loop has "
	       "not answered.");
	SEC(b, "stoker_snapshot_age_seconds", "", age_ns(now, s->taken_ns));
	header(b, "stoker_heartbeat_age_seconds", "gauge",
	       "Time since the event loop's last housekeeping tick (every 250 ms).");
	SEC(b, "stoker_heartbeat_age_seconds", "", age_ns(now, hb));
}

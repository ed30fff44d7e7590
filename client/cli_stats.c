/* SPDX-License-Identifier: MIT */
/*
 * stoker stats: the daemon's and this client's counters printed for people,
 * one line each with its meaning, then the endpoints, connections and
 * datasets, or all of it as JSON for scripts (--json).  The command itself
 * (asking the daemon) is in cli.c.
 *
 * stoker top: the same totals redrawn on a terminal, with rates over each
 * interval (at the end of this file).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "stoker.h"
#include "cli_int.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

enum stat_kind {
	ST_COUNT,
	ST_BYTES,
	ST_NS,
};

struct stat_field {
	const char *name; /* as in struct stk_stats */
	size_t off;
	enum stat_kind kind;
	const char *help;
};

#define STAT(f, k, h)                                                                              \
	{                                                                                          \
		.name = #f, .off = offsetof(struct stk_stats, f), .kind = k, .help = h             \
	}

/* Every counter of struct stk_stats, in its order; "size" is the ABI size, not a counter. */
static const struct stat_field stat_fields[] = {
	STAT(client_gets, ST_COUNT, "gets by this client"),
	STAT(client_hits, ST_COUNT, "of which resident when asked for"),
	STAT(client_misses, ST_COUNT, "of which had to wait for a fetch"),
	STAT(client_bytes, ST_BYTES, "bytes this client got"),
	STAT(client_wait_ns, ST_NS, "time this client blocked in stk_get"),
	STAT(gets, ST_COUNT, "gets by all clients"),
	STAT(hits_ram, ST_COUNT, "of which resident in RAM"),
	STAT(misses, ST_COUNT, "of which not resident"),
	STAT(fetches, ST_COUNT, "objects fetched from backends"),
	STAT(fetch_bytes, ST_BYTES, "bytes fetched from backends"),
	STAT(fetch_ns, ST_NS, "summed duration of the fetches"),
	STAT(fetch_errors, ST_COUNT, "fetches that failed"),
	STAT(evictions, ST_COUNT, "objects evicted"),
	STAT(ram_budget, ST_BYTES, "RAM budget"),
	STAT(ram_used, ST_BYTES, "resident plus in-flight, page-rounded"),
	STAT(resident_objects, ST_COUNT, "objects resident"),
	STAT(inflight_objects, ST_COUNT, "objects being fetched"),
	STAT(pinned_objects, ST_COUNT, "objects held by some client"),
	STAT(clients, ST_COUNT, "clients connected"),
	STAT(datasets, ST_COUNT, "datasets open"),
	STAT(prefetches, ST_COUNT, "fetches started by plans"),
	/* Stall accounting (docs/stall.md), from the waits clients report. */
	STAT(waits, ST_COUNT, "requests (gets, batch gets) clients reported"),
	STAT(stall_ns, ST_NS, "stall: the clients' waits summed"),
	STAT(stall_fetch_ns, ST_NS, "of which for bytes not resident when asked"),
	STAT(stall_delivery_ns, ST_NS, "of which for bytes that were resident"),
	STAT(stall_avoided_ns, ST_NS, "stall avoided (estimate)"),
	STAT(stall_avoided_model_ns, ST_NS, "of which for objects never fetched here (estimate)"),
	STAT(delivered_bytes, ST_BYTES, "bytes of the objects clients got"),
	/* This command's own connection: always 0, so for scripts only. */
	STAT(self_stall_ns, ST_NS, NULL),
	STAT(self_stall_fetch_ns, ST_NS, NULL),
	STAT(self_stall_avoided_ns, ST_NS, NULL),
	/* Tier 1 (--nvme-dir). */
	STAT(nvme_budget, ST_BYTES, "tier-1 (NVMe) budget"),
	STAT(nvme_used, ST_BYTES, "tier-1 bytes charged, metadata included"),
	STAT(nvme_objects, ST_COUNT, "objects on tier 1"),
	STAT(hits_nvme, ST_COUNT, "gets served from a copy promoted from tier 1"),
	STAT(nvme_reads, ST_COUNT, "promotions: objects read from tier 1"),
	STAT(nvme_read_bytes, ST_BYTES, "bytes promoted"),
	STAT(nvme_writes, ST_COUNT, "demotions: objects written to tier 1"),
	STAT(nvme_write_bytes, ST_BYTES, "bytes demoted"),
	STAT(nvme_dropped_corrupt, ST_COUNT, "tier-1 copies that failed their checksum"),
	STAT(nvme_degraded, ST_COUNT, "1: tier 1 takes no writes (disk error)"),
	STAT(nvme_stored_bytes, ST_BYTES, "tier-1 copies' bytes on disk (compressed)"),
	STAT(nvme_plain_bytes, ST_BYTES, "the same copies' plain bytes"),
	STAT(nvme_codec_ns, ST_NS, "worker CPU time in tier-1 zstd"),
};

/* A field of struct stk_daemon_client or stk_daemon_dataset, for JSON. */
struct list_field {
	const char *name; /* as in the struct */
	size_t off, size; /* a uint32_t or a uint64_t */
};

#define LF(type, f)                                                                                \
	{                                                                                          \
		.name = #f, .off = offsetof(type, f), .size = sizeof(((type *)0)->f)               \
	}
#define CLF(f) LF(struct stk_daemon_client, f)
#define DLF(f) LF(struct stk_daemon_dataset, f)
#define STALL_FIELDS(M)                                                                            \
	M(waits), M(gets), M(hits), M(delivered_bytes), M(stall_ns), M(stall_fetch_ns),            \
	    M(stall_delivery_ns), M(stall_avoided_ns), M(stall_avoided_model_ns),                  \
	    M(stall_unknown_gets)

static const struct list_field client_fields[] = {
	CLF(pid),	    CLF(uid),	       CLF(id),		  CLF(connected_ns),
	CLF(open_datasets), CLF(pinned_bytes), STALL_FIELDS(CLF),
};

static const struct list_field dataset_fields[] = {
	DLF(id),     DLF(users), DLF(objects),	      DLF(resident),	 DLF(inflight),
	DLF(failed), DLF(bytes), DLF(resident_bytes), STALL_FIELDS(DLF),
};

static uint64_t field_value(const void *p, const struct list_field *f)
{
	if (f->size == sizeof(uint32_t)) {
		uint32_t v;
		memcpy(&v, (const char *)p + f->off, sizeof(v));
		return v;
	}
	uint64_t v;
	memcpy(&v, (const char *)p + f->off, sizeof(v));
	return v;
}

/* A JSON number for a counter; json_int_t is signed, and one past its range would wrap. */
static json_t *json_u64(uint64_t v)
{
	return v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}

/*
 * A JSON string of s, which is bytes (a URI): JSON strings are UTF-8, so
 * where s is not, every byte past ASCII becomes '?'.  NULL when out of memory.
 */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char *t = strdup(s);
	if (!t)
		return NULL;
	for (char *p = t; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(t);
	free(t);
	return j;
}

/* An object of p's fields. Returns it, or NULL when out of memory. */
static json_t *json_fields(const void *p, const struct list_field *f, size_t nf)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; i < nf; i++) {
		if (json_object_set_new(o, f[i].name, json_u64(field_value(p, &f[i])))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static uint64_t stat_value(const struct stk_stats *st, const struct stat_field *f)
{
	uint64_t v;

	memcpy(&v, (const char *)st + f->off, sizeof(v));
	return v;
}

int cli_stats_json(const struct stk_stats *st, const struct cli_lists *l)
{
	json_t *obj = json_object();
	int ret = EXIT_FAILURE;

	if (!obj)
		goto nomem;
	for (size_t i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++) {
		json_t *j = json_u64(stat_value(st, &stat_fields[i]));

		if (!j || json_object_set_new(obj, stat_fields[i].name, j))
			goto nomem;
	}
	json_t *eps = json_array();
	if (!eps || json_object_set_new(obj, "endpoints", eps))
		goto nomem;
	for (size_t i = 0; i < l->nep; i++) {
		const struct stk_endpoint_stats *ep = &l->ep[i];
		json_t *e =
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "endpoint", ep->endpoint,
			      "requests", (json_int_t)ep->requests, "retries",
			      (json_int_t)ep->retries, "errors", (json_int_t)ep->errors, "bytes",
			      (json_int_t)ep->bytes, "busy_ns", (json_int_t)ep->busy_ns);
		if (!e || json_array_append_new(eps, e))
			goto nomem;
	}
	/* "clients" and "datasets" are the counts: the lists get names of their own. */
	json_t *cls = json_array();
	if (!cls || json_object_set_new(obj, "per_client", cls))
		goto nomem;
	for (size_t i = 0; i < l->ncl; i++) {
		json_t *e = json_fields(&l->cl[i], client_fields,
					sizeof(client_fields) / sizeof(client_fields[0]));
		if (!e || json_array_append_new(cls, e))
			goto nomem;
	}
	json_t *dss = json_array();
	if (!dss || json_object_set_new(obj, "per_dataset", dss))
		goto nomem;
	for (size_t i = 0; i < l->nds; i++) {
		const struct stk_daemon_dataset *d = &l->ds[i];
		json_t *e = json_fields(d, dataset_fields,
					sizeof(dataset_fields) / sizeof(dataset_fields[0]));
		if (!e || json_array_append_new(dss, e) ||
		    json_object_set_new(e, "label", json_text(d->label)) ||
		    json_object_set_new(e, "uri", json_text(d->uri)))
			goto nomem;
	}
	if (json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) || putchar('\n') == EOF) {
		cli_finish_stdout("stats");
		goto out;
	}
	ret = cli_finish_stdout("stats") ? EXIT_FAILURE : EXIT_SUCCESS;
	goto out;
nomem:
	fprintf(stderr, "stoker: stats: %s\n", strerror(ENOMEM));
out:
	json_decref(obj);
	return ret;
}

/* Formats v for people into buf: "" or "(1.5 GiB)", "(0.123 s)", "(70.0%)". */
static void human_extra(const struct stk_stats *st, const struct stat_field *f, uint64_t v,
			char *buf, size_t len)
{
	uint64_t whole = 0;

	buf[0] = '\0';
	if (f->kind == ST_BYTES) {
		if ((double)v >= GIB)
			snprintf(buf, len, "(%.2f GiB)", (double)v / GIB);
		else if ((double)v >= MIB)
			snprintf(buf, len, "(%.1f MiB)", (double)v / MIB);
		return;
	}
	if (f->kind == ST_NS) {
		snprintf(buf, len, "(%.3f s)", (double)v / 1e9);
		return;
	}
	if (f->off == offsetof(struct stk_stats, client_hits) ||
	    f->off == offsetof(struct stk_stats, client_misses))
		whole = st->client_gets;
	else if (f->off == offsetof(struct stk_stats, hits_ram) ||
		 f->off == offsetof(struct stk_stats, hits_nvme) ||
		 f->off == offsetof(struct stk_stats, misses))
		whole = st->gets;
	if (whole)
		snprintf(buf, len, "(%.1f%%)", 100.0 * (double)v / (double)whole);
}

/* Replaces the bytes that would break a table's line or drive the terminal. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/*
 * A dataset's name for a column of width (>= 4) bytes, into buf (width + 1
 * bytes): its label, else its URI, whose tail names it best, so a long one
 * keeps "..." and its last bytes.
 */
static void ds_name(const struct stk_daemon_dataset *d, char *buf, size_t width)
{
	const char *s = d->label[0] ? d->label : d->uri;
	size_t n = strlen(s);

	if (n <= width)
		snprintf(buf, width + 1, "%s", s);
	else
		snprintf(buf, width + 1, "...%s", s + n - (width - 3));
	printable(buf);
}

/* "12.3" percent of part in whole, or "-" when whole is 0, into buf. */
static const char *pct(char *buf, size_t len, uint64_t part, uint64_t whole)
{
	if (!whole)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", 100.0 * (double)part / (double)whole);
	return buf;
}

/* "  zstd 3.20x" when tier 1's copies are stored compressed (--nvme-compress), else "". */
static const char *zratio(char *buf, size_t len, const struct stk_stats *s)
{
	buf[0] = '\0';
	if (s->nvme_stored_bytes && s->nvme_plain_bytes > s->nvme_stored_bytes)
		snprintf(buf, len, "  zstd %.2fx",
			 (double)s->nvme_plain_bytes / (double)s->nvme_stored_bytes);
	return buf;
}

#define DS_COL 40 /* the dataset column, where the width is not the terminal's */

/* The per-client and per-dataset totals, for people. */
static void human_lists(const struct cli_lists *l)
{
	char h[16], r[16], name[DS_COL + 1];

	printf("clients: %zu\n", l->ncl_total);
	printf("  %8s %6s %11s %4s %10s %6s %10s %10s %10s\n", "pid", "uid", "connected s", "open",
	       "gets", "hit%", "MiB", "stall s", "avoided s");
	for (size_t i = 0; i < l->ncl; i++) {
		const struct stk_daemon_client *c = &l->cl[i];

		printf("  %8" PRIu32 " %6" PRIu32 " %11.1f %4" PRIu32 " %10" PRIu64
		       " %6s %10.1f %10.3f %10.3f\n",
		       c->pid, c->uid, (double)c->connected_ns / 1e9, c->open_datasets, c->gets,
		       pct(h, sizeof(h), c->hits, c->gets), (double)c->delivered_bytes / MIB,
		       (double)c->stall_ns / 1e9, (double)c->stall_avoided_ns / 1e9);
	}
	if (l->ncl < l->ncl_total)
		printf("  (%zu more not shown)\n", l->ncl_total - l->ncl);
	printf("datasets: %zu\n", l->nds_total);
	printf("  %-*s %9s %6s %5s %10s %6s %10s %10s\n", DS_COL, "dataset", "objects", "res%",
	       "users", "gets", "hit%", "stall s", "avoided s");
	for (size_t i = 0; i < l->nds; i++) {
		const struct stk_daemon_dataset *d = &l->ds[i];

		ds_name(d, name, DS_COL);
		printf("  %-*s %9" PRIu32 " %6s %5" PRIu32 " %10" PRIu64 " %6s %10.3f %10.3f\n",
		       DS_COL, name, d->objects, pct(r, sizeof(r), d->resident_bytes, d->bytes),
		       d->users, d->gets, pct(h, sizeof(h), d->hits, d->gets),
		       (double)d->stall_ns / 1e9, (double)d->stall_avoided_ns / 1e9);
	}
	if (l->nds < l->nds_total)
		printf("  (%zu more not shown)\n", l->nds_total - l->nds);
	if (l->ncl || l->nds)
		puts("  (avoided: an estimate, see docs/stall.md)");
}

int cli_stats_human(const struct stk_stats *st, const struct cli_lists *l)
{
	for (size_t i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++) {
		const struct stat_field *f = &stat_fields[i];
		uint64_t v = stat_value(st, f);
		char extra[64];

		if (!f->help)
			continue;
		if (i == 0)
			puts("this client:");
		else if (f->off == offsetof(struct stk_stats, gets))
			puts("stokerd:");
		human_extra(st, f, v, extra, sizeof(extra));
		printf("  %-22s %14" PRIu64 " %-14s %s\n", f->name, v, extra, f->help);
	}
	if (st->fetch_ns && st->fetch_bytes)
		printf("  mean rate of one fetch: %.1f MB/s\n",
		       (double)st->fetch_bytes / ((double)st->fetch_ns / 1e9) / 1e6);
	if (l->nep)
		printf("endpoints:\n  %-36s %10s %8s %7s %12s %10s\n", "endpoint", "requests",
		       "retries", "errors", "MiB", "MB/s busy");
	for (size_t i = 0; i < l->nep; i++) {
		const struct stk_endpoint_stats *ep = &l->ep[i];

		printf("  %-36s %10" PRIu64 " %8" PRIu64 " %7" PRIu64 " %12.1f %10.1f\n",
		       ep->endpoint, ep->requests, ep->retries, ep->errors, (double)ep->bytes / MIB,
		       ep->busy_ns ? (double)ep->bytes / ((double)ep->busy_ns / 1e9) / 1e6 : 0.0);
	}
	human_lists(l);
	return cli_finish_stdout("stats");
}

/*
 * stoker top: the daemon's totals, its clients and its datasets, redrawn
 * every interval on a terminal.  Rates and ratios are over the interval,
 * from the difference of two samples; a connection is known again by its
 * pid and id, a dataset by its id.
 */

#define TOP_MAX 256 /* connections, and datasets, a frame shows at most */

struct top_sample {
	double t; /* CLOCK_MONOTONIC, s */
	struct stk_stats st;
	struct stk_daemon_client cl[TOP_MAX];
	size_t ncl, ncl_total;
	struct stk_daemon_dataset ds[TOP_MAX];
	size_t nds, nds_total;
};

static double top_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_client_id(const void *a, const void *b)
{
	const struct stk_daemon_client *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int by_dataset_id(const void *a, const void *b)
{
	const struct stk_daemon_dataset *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Takes a sample, oldest connection and dataset first. 0 or the library's -errno. */
static int top_sample(struct stk_client *c, struct top_sample *s)
{
	int err;

	s->st = (struct stk_stats){ .size = sizeof(s->st) };
	err = stk_stats(c, &s->st);
	if (!err)
		err = stk_daemon_clients(c, s->cl, TOP_MAX, &s->ncl, &s->ncl_total);
	if (!err)
		err = stk_daemon_datasets(c, s->ds, TOP_MAX, &s->nds, &s->nds_total);
	s->t = top_now();
	if (err)
		return err;
	qsort(s->cl, s->ncl, sizeof(s->cl[0]), by_client_id);
	qsort(s->ds, s->nds, sizeof(s->ds[0]), by_dataset_id);
	return 0;
}

static uint64_t delta(uint64_t now, uint64_t was)
{
	return now > was ? now - was : 0;
}

/* v per second over el seconds into buf ("-" when el is not known), v scaled by div. */
static const char *rate(char *buf, size_t len, uint64_t v, double div, double el)
{
	if (el <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", (double)v / div / el);
	return buf;
}

/* What one frame shows, and where. */
struct top_view {
	const char *sock;
	double interval;
	bool tty;
	unsigned rows, cols; /* the terminal's; 0 when not one */
	pid_t self;	     /* this command's connection is left out of the table */
};

/* How many rows each table gets of the room left under the header. */
static void top_rows(const struct top_view *v, size_t nc, size_t nd, size_t *cmax, size_t *dmax)
{
	*cmax = nc;
	*dmax = nd;
	if (!v->rows)
		return;
	size_t room = v->rows > 13 ? v->rows - 11 : 2; /* the header's 11 lines */
	size_t c = room / 2, d = room - c;
	if (nc < c) {
		d += c - nc;
		c = nc;
	}
	if (nd < d) {
		c += d - nd;
		d = nd;
	}
	*cmax = nc < c ? nc : c;
	*dmax = nd < d ? nd : d;
}

/* Draws one frame: b's totals, and the rates from a to b (a NULL: not known yet). */
static void top_frame(FILE *f, const struct top_view *v, const struct top_sample *a,
		      const struct top_sample *b)
{
	const struct stk_stats *s = &b->st;
	double el = a ? b->t - a->t : 0;
	char r1[32], r2[32], r3[32], r4[32], r5[48], clock[16] = "";
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm))
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	fprintf(f, "stoker top: stokerd at %s, every %.1f s, %s\n", v->sock, v->interval, clock);
	fprintf(f,
		"RAM %.1f of %.1f MiB (%s%%)  resident %" PRIu64 " objects  inflight %" PRIu64
		"  pinned %" PRIu64 "\n",
		(double)s->ram_used / MIB, (double)s->ram_budget / MIB,
		pct(r1, sizeof(r1), s->ram_used, s->ram_budget), s->resident_objects,
		s->inflight_objects, s->pinned_objects);
	if (s->nvme_budget)
		fprintf(f,
			"NVMe %.1f of %.1f MiB (%s%%)  objects %" PRIu64 "  promoted %" PRIu64
			"  demoted %" PRIu64 "%s%s\n",
			(double)s->nvme_used / MIB, (double)s->nvme_budget / MIB,
			pct(r4, sizeof(r4), s->nvme_used, s->nvme_budget), s->nvme_objects,
			s->nvme_reads, s->nvme_writes, zratio(r5, sizeof(r5), s),
			s->nvme_degraded ? "  DEGRADED (RAM only)" : "");

	uint64_t gets = a ? delta(s->gets, a->st.gets) : 0;
	uint64_t hits = a ? delta(s->hits_ram, a->st.hits_ram) : 0;
	uint64_t bytes = a ? delta(s->delivered_bytes, a->st.delivered_bytes) : 0;
	size_t shown = 0;
	for (size_t i = 0; i < b->ncl; i++)
		shown += b->cl[i].pid != (uint32_t)v->self;
	size_t others = b->ncl_total - (b->ncl - shown); /* less this command */
	fprintf(f, "clients %zu  datasets %zu  gets/s %s  delivered %s MB/s  hit ratio %s%s\n",
		others, b->nds_total, rate(r1, sizeof(r1), gets, 1, el),
		rate(r2, sizeof(r2), bytes, 1e6, el), a ? pct(r3, sizeof(r3), hits, gets) : "-",
		a && gets ? "%" : "");
	if (a) {
		fprintf(f, "stall %.3f s in the last %.1f s, %.3f s in all\n",
			(double)delta(s->stall_ns, a->st.stall_ns) / 1e9, el,
			(double)s->stall_ns / 1e9);
		fprintf(f, "stall avoided (estimate) %.3f s in the last %.1f s, %.3f s in all\n",
			(double)delta(s->stall_avoided_ns, a->st.stall_avoided_ns) / 1e9, el,
			(double)s->stall_avoided_ns / 1e9);
	} else {
		fprintf(f, "stall %.3f s in all\n", (double)s->stall_ns / 1e9);
		fprintf(f, "stall avoided (estimate) %.3f s in all\n",
			(double)s->stall_avoided_ns / 1e9);
	}

	size_t cmax, dmax;
	top_rows(v, shown, b->nds, &cmax, &dmax);
	fprintf(f, "\nclients (%zu shown of %zu)\n", cmax, others);
	/* 79 columns: an 80-column terminal holds a row. */
	fprintf(f, "%7s %6s %9s %3s %8s %7s %6s %6s %9s %9s\n", "PID", "UID", "CONNECTED", "DS",
		"GETS/s", "MB/s", "HIT%", "STALL%", "STALL s", "AVOIDED s");
	size_t rows = 0;
	for (size_t i = 0; i < b->ncl && rows < cmax; i++) {
		const struct stk_daemon_client *c = &b->cl[i], *p = NULL;
		if (c->pid == (uint32_t)v->self)
			continue;
		rows++;
		for (size_t j = 0; a && j < a->ncl && !p; j++)
			if (a->cl[j].id == c->id && a->cl[j].pid == c->pid)
				p = &a->cl[j];
		/* One that came since the last frame: its rates since it connected. */
		double cel = p ? el : (a ? (double)c->connected_ns / 1e9 : 0);
		struct stk_daemon_client z = { 0 };
		if (!p)
			p = &z;
		uint64_t g = delta(c->gets, p->gets), st = delta(c->stall_ns, p->stall_ns);
		double up = (double)c->connected_ns / 1e9;
		char conn[48];
		if (up >= 3600)
			snprintf(conn, sizeof(conn), "%" PRIu64 "h%02" PRIu64 "m",
				 (uint64_t)up / 3600, (uint64_t)up % 3600 / 60);
		else
			snprintf(conn, sizeof(conn), "%.0fs", up);
		fprintf(
		    f, "%7" PRIu32 " %6" PRIu32 " %9s %3" PRIu32 " %8s %7s %6s %6s %9.3f %9.3f\n",
		    c->pid, c->uid, conn, c->open_datasets, rate(r1, sizeof(r1), g, 1, cel),
		    rate(r2, sizeof(r2), delta(c->delivered_bytes, p->delivered_bytes), 1e6, cel),
		    cel > 0 ? pct(r3, sizeof(r3), delta(c->hits, p->hits), g) : "-",
		    cel > 0 ? pct(r4, sizeof(r4), st, (uint64_t)(cel * 1e9)) : "-",
		    (double)c->stall_ns / 1e9, (double)c->stall_avoided_ns / 1e9);
	}

	/* The name takes what the other columns (64 bytes) leave of the terminal's width. */
	size_t w = v->cols > 16 + 64 ? v->cols - 64 : 16;
	w = v->cols ? (w < 120 ? w : 120) : DS_COL;
	char name[121];
	fprintf(f, "\ndatasets (%zu shown of %zu)\n", dmax, b->nds_total);
	fprintf(f, "%4s %-*s %8s %6s %5s %8s %6s %9s %9s\n", "ID", (int)w, "DATASET", "OBJECTS",
		"RES%", "USERS", "GETS/s", "STALL%", "STALL s", "AVOIDED s");
	for (size_t i = 0; i < dmax; i++) {
		const struct stk_daemon_dataset *d = &b->ds[i], *p = NULL;
		for (size_t j = 0; a && j < a->nds && !p; j++)
			if (a->ds[j].id == d->id)
				p = &a->ds[j];
		struct stk_daemon_dataset z = { 0 };
		if (!p)
			p = &z;
		uint64_t st = delta(d->stall_ns, p->stall_ns);
		ds_name(d, name, w);
		fprintf(f, "%4" PRIu32 " %-*s %8" PRIu32 " %6s %5" PRIu32 " %8s %6s %9.3f %9.3f\n",
			d->id, (int)w, name, d->objects,
			pct(r1, sizeof(r1), d->resident_bytes, d->bytes), d->users,
			rate(r2, sizeof(r2), delta(d->gets, p->gets), 1, el),
			el > 0 ? pct(r3, sizeof(r3), st, (uint64_t)(el * 1e9)) : "-",
			(double)d->stall_ns / 1e9, (double)d->stall_avoided_ns / 1e9);
	}
}

static volatile sig_atomic_t top_stop;			/* a signal asked top to end */
static volatile sig_atomic_t top_screen;		/* the alternate screen is up */
static const char top_enter[] = "\033[?1049h\033[?25l"; /* alternate screen, no cursor */
static const char top_leave[] = "\033[?25h\033[?1049l";

static void top_signal(int sig)
{
	/* A second signal while a call waits for a slow daemon: leave at once. */
	if (top_stop) {
		if (top_screen) {
			ssize_t r = write(STDOUT_FILENO, top_leave, sizeof(top_leave) - 1);
			(void)r;
		}
		_exit(128 + sig);
	}
	top_stop = 1;
}

/* Sleeps s seconds. Returns true when a signal asked top to end. */
static bool top_sleep(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s,
			       .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };

	while (!top_stop && nanosleep(&ts, &ts) && errno == EINTR)
		;
	return top_stop;
}

/* Writes a frame, the screen cleared first on a terminal. Returns 0, or 1 after saying why. */
static int top_draw(const struct top_view *v, const struct top_sample *a,
		    const struct top_sample *b)
{
	char *frame = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&frame, &len);

	if (!f) {
		fprintf(stderr, "stoker: top: %s\n", strerror(errno));
		return 1;
	}
	/* Built whole, then written at once: a redraw does not flicker. */
	if (v->tty)
		fputs("\033[H\033[2J", f);
	top_frame(f, v, a, b);
	if (fclose(f)) {
		free(frame);
		fprintf(stderr, "stoker: top: %s\n", strerror(ENOMEM));
		return 1;
	}
	fwrite(frame, 1, len, stdout);
	free(frame);
	return cli_finish_stdout("top");
}

int cli_top(struct stk_client *c, const char *sock, double interval, bool once)
{
	struct top_sample *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct top_view v = { .sock = sock, .interval = interval, .self = getpid() };
	struct sigaction sa = { .sa_handler = top_signal }; /* no SA_RESTART: sleeps end */
	int err = 0, status = EXIT_FAILURE;

	if (!a || !b) {
		fprintf(stderr, "stoker: top: %s\n", strerror(ENOMEM));
		goto out;
	}
	v.tty = isatty(STDOUT_FILENO) && !once;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	err = top_sample(c, a);
	if (err)
		goto lost;
	if (v.tty) {
		struct winsize ws;

		if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_row && ws.ws_col) {
			v.rows = ws.ws_row;
			v.cols = ws.ws_col;
		} else {
			v.rows = 24;
			v.cols = 80;
		}
		fputs(top_enter, stdout);
		top_screen = 1;
		/* Something at once; the rates need a second sample. */
		if (top_draw(&v, NULL, a))
			goto out;
	}
	for (;;) {
		if (top_sleep(interval)) {
			/* Asked to end: the normal way out on a terminal. */
			status = v.tty ? EXIT_SUCCESS : 128 + SIGINT;
			goto out;
		}
		err = top_sample(c, b);
		if (err)
			goto lost;
		if (v.tty) {
			struct winsize ws;

			if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_row && ws.ws_col) {
				v.rows = ws.ws_row;
				v.cols = ws.ws_col;
			}
		}
		if (top_draw(&v, a, b))
			goto out;
		if (!v.tty) {
			status = EXIT_SUCCESS;
			goto out;
		}
		struct top_sample *t = a;
		a = b;
		b = t;
	}
lost:
	if (top_screen) {
		fputs(top_leave, stdout);
		fflush(stdout);
		top_screen = 0;
	}
	cli_report("top: lost stokerd", err);
out:
	if (top_screen) {
		fputs(top_leave, stdout);
		fflush(stdout);
		top_screen = 0;
	}
	free(a);
	free(b);
	return status;
}

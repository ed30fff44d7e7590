/* SPDX-License-Identifier: MIT */
/*
 * stoker stats: the daemon's and this client's counters printed for people,
 * one line each with its meaning, or as JSON for scripts (--json).  The
 * command itself (asking the daemon) is in cli.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

static uint64_t stat_value(const struct stk_stats *st, const struct stat_field *f)
{
	uint64_t v;

	memcpy(&v, (const char *)st + f->off, sizeof(v));
	return v;
}

int cli_stats_json(const struct stk_stats *st, const struct stk_endpoint_stats *ep, size_t nep)
{
	json_t *obj = json_object();
	int ret = EXIT_FAILURE;

	if (!obj)
		goto nomem;
	for (size_t i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++) {
		uint64_t v = stat_value(st, &stat_fields[i]);
		/* json_int_t is signed; a counter past its range would wrap to negative. */
		json_t *j =
		    v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);

		if (!j || json_object_set_new(obj, stat_fields[i].name, j))
			goto nomem;
	}
	json_t *eps = json_array();
	if (!eps || json_object_set_new(obj, "endpoints", eps))
		goto nomem;
	for (size_t i = 0; i < nep; i++) {
		json_t *e = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "endpoint", ep[i].endpoint,
				      "requests", (json_int_t)ep[i].requests, "retries",
				      (json_int_t)ep[i].retries, "errors", (json_int_t)ep[i].errors,
				      "bytes", (json_int_t)ep[i].bytes, "busy_ns",
				      (json_int_t)ep[i].busy_ns);
		if (!e || json_array_append_new(eps, e))
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
		 f->off == offsetof(struct stk_stats, misses))
		whole = st->gets;
	if (whole)
		snprintf(buf, len, "(%.1f%%)", 100.0 * (double)v / (double)whole);
}

int cli_stats_human(const struct stk_stats *st, const struct stk_endpoint_stats *ep, size_t nep)
{
	for (size_t i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++) {
		const struct stat_field *f = &stat_fields[i];
		uint64_t v = stat_value(st, f);
		char extra[64];

		if (i == 0)
			puts("this client:");
		else if (f->off == offsetof(struct stk_stats, gets))
			puts("stokerd:");
		human_extra(st, f, v, extra, sizeof(extra));
		printf("  %-17s %14" PRIu64 " %-12s %s\n", f->name, v, extra, f->help);
	}
	if (st->fetch_ns && st->fetch_bytes)
		printf("  mean rate of one fetch: %.1f MB/s\n",
		       (double)st->fetch_bytes / ((double)st->fetch_ns / 1e9) / 1e6);
	if (nep)
		printf("endpoints:\n  %-36s %10s %8s %7s %12s %10s\n", "endpoint", "requests",
		       "retries", "errors", "MiB", "MB/s busy");
	for (size_t i = 0; i < nep; i++)
		printf("  %-36s %10" PRIu64 " %8" PRIu64 " %7" PRIu64 " %12.1f %10.1f\n",
		       ep[i].endpoint, ep[i].requests, ep[i].retries, ep[i].errors,
		       (double)ep[i].bytes / MIB,
		       ep[i].busy_ns ? (double)ep[i].bytes / ((double)ep[i].busy_ns / 1e9) / 1e6
				     : 0.0);
	return cli_finish_stdout("stats");
}

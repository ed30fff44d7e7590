/* SPDX-License-Identifier: MIT */
/*
 * tier_replay: how close does stokerd's placement come to Belady's?  Makes a
 * trace (objects of log-uniform sizes, epochs cyclic or each a new shuffle,
 * split among clients), computes what LRU, Streaming's LRU, keep-once-full
 * and Belady would hit on it with the same budgets (tier_sim.c), and, given
 * a daemon's socket, replays it there with real clients (tier_live.c).
 * Prints a table per epoch and, with --json, the same as JSON.
 * See bench/README.md, "tier_replay".
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h" /* stk__parse_size: the grammar of stokerd --ram */
#include "tier_replay.h"

#define MB 1e6

static void usage(FILE *f)
{
	fputs(
	    "usage: tier_replay --ram SIZE [--nvme SIZE] [--dataset SIZE] [options]\n"
	    "  --dir DIR             the dataset's directory (DIR/oNNNNNN); needed with --socket\n"
	    "  --write               write the dataset's files into DIR first\n"
	    "  --socket PATH         replay against the stokerd listening there (its\n"
	    "                        --allow-root must cover DIR); without: offline only\n"
	    "  --ram SIZE            RAM budget the offline policies get (the daemon's --ram)\n"
	    "  --nvme SIZE           NVMe budget (the daemon's --nvme; default 0: RAM only)\n"
	    "  --dataset SIZE        bytes of objects (default 24M)\n"
	    "  --min-size SIZE, --max-size SIZE  log-uniform object sizes (16K, 256K)\n"
	    "  --epochs N            (3)   --clients N (2)   --seed N (1)\n"
	    "  --cyclic              every epoch in the same order (default: a new shuffle)\n"
	    "  --independent         each client reads every object each epoch, in its own\n"
	    "                        order (default: the clients split each epoch)\n"
	    "  --plan epoch|run      each client plans each epoch as it starts (default),\n"
	    "                        or its whole run at once\n"
	    "  --compute-us N        sleep after each get (default 0)\n"
	    "  --emulate-latency MS, --emulate-bandwidth MBPS  the daemon's emulation, for\n"
	    "                        the offline policies' modelled stall\n"
	    "  --json FILE           also write the report as JSON to FILE\n",
	    f);
}

static int parse(int argc, char **argv, struct tr_opts *o)
{
	static const struct option lo[] = { { "dir", 1, 0, 'd' },
					    { "write", 0, 0, 'w' },
					    { "socket", 1, 0, 's' },
					    { "ram", 1, 0, 'r' },
					    { "nvme", 1, 0, 'n' },
					    { "dataset", 1, 0, 'D' },
					    { "min-size", 1, 0, 'a' },
					    { "max-size", 1, 0, 'b' },
					    { "epochs", 1, 0, 'e' },
					    { "clients", 1, 0, 'c' },
					    { "seed", 1, 0, 'S' },
					    { "cyclic", 0, 0, 'C' },
					    { "independent", 0, 0, 'I' },
					    { "plan", 1, 0, 'p' },
					    { "compute-us", 1, 0, 'u' },
					    { "emulate-latency", 1, 0, 'L' },
					    { "emulate-bandwidth", 1, 0, 'B' },
					    { "json", 1, 0, 'j' },
					    { "help", 0, 0, 'h' },
					    { 0 } };
	uint64_t v;
	int ch;

	*o = (struct tr_opts){ .dataset = 24ull << 20,
			       .min_size = 16 << 10,
			       .max_size = 256 << 10,
			       .epochs = 3,
			       .clients = 2,
			       .seed = 1 };
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		int ret = 0;

		switch (ch) {
		case 'd':
			o->dir = optarg;
			break;
		case 'w':
			o->write = true;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'j':
			o->json = optarg;
			break;
		case 'C':
			o->cyclic = true;
			break;
		case 'I':
			o->independent = true;
			break;
		case 'r':
			ret = stk__parse_size(optarg, &o->ram);
			break;
		case 'n':
			ret = stk__parse_size(optarg, &o->nvme);
			break;
		case 'D':
			ret = stk__parse_size(optarg, &o->dataset);
			break;
		case 'a':
			ret = stk__parse_size(optarg, &o->min_size);
			break;
		case 'b':
			ret = stk__parse_size(optarg, &o->max_size);
			break;
		case 'e':
			ret = stk__parse_u64(optarg, 1000, &v);
			o->epochs = (uint32_t)v;
			break;
		case 'c':
			ret = stk__parse_u64(optarg, 256, &v);
			o->clients = (uint32_t)v;
			break;
		case 'S':
			ret = stk__parse_u64(optarg, UINT64_MAX, &o->seed);
			break;
		case 'u':
			ret = stk__parse_u64(optarg, 10000000, &o->compute_us);
			break;
		case 'L':
			ret = stk__parse_u64(optarg, 100000, &v);
			o->emul_latency_ms = (double)v;
			break;
		case 'B':
			ret = stk__parse_u64(optarg, 1000000, &v);
			o->emul_mbps = (double)v;
			break;
		case 'p':
			if (!strcmp(optarg, "run"))
				o->plan_run = true;
			else if (strcmp(optarg, "epoch"))
				ret = -EINVAL;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (ret) {
			fprintf(stderr, "tier_replay: bad value: %s\n", optarg);
			return -EINVAL;
		}
	}
	if (optind != argc || !o->ram || !o->epochs || !o->clients || !o->min_size ||
	    o->min_size > o->max_size || (o->socket && !o->dir) || (o->write && !o->dir)) {
		fprintf(stderr, "tier_replay: needs --ram, sane sizes and counts, and --dir with "
				"--socket or --write\n");
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* One row of the report: a policy's (or stoker's) counts for one epoch or a span. */
struct row {
	uint64_t gets, hits_ram, hits_nvme, misses, backend_bytes;
	double stall_s; /* < 0: none */
};

/* Demand-fetch stall model for the offline policies: each miss waits its
 * latency (clients wait in parallel) and all misses share the bandwidth. */
static double model_stall(const struct tr_opts *o, const struct tsim_epoch *e)
{
	double s = 0;

	if (o->emul_latency_ms <= 0 && o->emul_mbps <= 0)
		return -1;
	s += (double)e->misses * o->emul_latency_ms / 1e3 / o->clients;
	if (o->emul_mbps > 0)
		s += (double)e->miss_bytes / (o->emul_mbps * MB);
	return s;
}

/* Adds x's counts to r, and its stall when with_stall (epochs 2 on). */
static void add(struct row *r, const struct row *x, bool with_stall)
{
	r->gets += x->gets;
	r->hits_ram += x->hits_ram;
	r->hits_nvme += x->hits_nvme;
	r->misses += x->misses;
	r->backend_bytes += x->backend_bytes;
	if (with_stall)
		r->stall_s = (r->stall_s < 0 || x->stall_s < 0) ? -1 : r->stall_s + x->stall_s;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0;
}

/* The share of the bytes asked for that did not come from the backend (0 when more did). */
static double byte_hits(const struct row *r, uint64_t asked)
{
	return r->backend_bytes < asked ? 1.0 - ratio(r->backend_bytes, asked) : 0;
}

static void print_row(const char *name, const struct row *r)
{
	printf("  %-16s %6lu %6lu %6lu  %6.3f %10.1f", name, (unsigned long)r->hits_ram,
	       (unsigned long)r->hits_nvme, (unsigned long)r->misses,
	       ratio(r->hits_ram + r->hits_nvme, r->gets), (double)r->backend_bytes / MB);
	if (r->stall_s >= 0)
		printf(" %8.3f\n", r->stall_s);
	else
		printf(" %8s\n", "-");
}

static void json_row(FILE *f, const char *name, const struct row *r, bool last)
{
	fprintf(f,
		"\"%s\": {\"hits_ram\": %lu, \"hits_nvme\": %lu, \"misses\": %lu, "
		"\"hit_ratio\": %.4f, \"backend_mb\": %.3f, \"stall_s\": ",
		name, (unsigned long)r->hits_ram, (unsigned long)r->hits_nvme,
		(unsigned long)r->misses, ratio(r->hits_ram + r->hits_nvme, r->gets),
		(double)r->backend_bytes / MB);
	if (r->stall_s >= 0)
		fprintf(f, "%.4f}%s", r->stall_s, last ? "" : ", ");
	else
		fprintf(f, "null}%s", last ? "" : ", ");
}

/* Strings from outside go into the JSON with quotes, backslashes and controls escaped. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* The daemon's own counts for one epoch; hits_nvme and the like are null without tier 1. */
static void json_daemon(FILE *f, const struct tr_live_epoch *l)
{
	fprintf(
	    f,
	    "\"daemon\": {\"gets\": %lu, \"hits_ram\": %lu, \"misses\": %lu, "
	    "\"fetches\": %lu, \"fetch_bytes\": %lu, \"evictions\": %lu, "
	    "\"view_hits\": %lu, \"ram_used\": %lu, \"ram_objects\": %lu, \"wait_max_s\": %.4f, "
	    "\"wall_s\": %.3f, \"verify_errors\": %lu, ",
	    (unsigned long)l->gets, (unsigned long)l->hits_ram, (unsigned long)l->misses,
	    (unsigned long)l->fetches, (unsigned long)l->fetch_bytes, (unsigned long)l->evictions,
	    (unsigned long)l->view_hits, (unsigned long)l->ram_used, (unsigned long)l->ram_objects,
	    (double)l->wait_ns_max / 1e9, l->wall_s, (unsigned long)l->verify_errors);
	if (l->nvme_known)
		fprintf(f,
			"\"hits_nvme\": %lu, \"nvme_reads\": %lu, \"nvme_writes\": %lu, "
			"\"nvme_used\": %lu, \"nvme_objects\": %lu}, ",
			(unsigned long)l->hits_nvme, (unsigned long)l->nvme_reads,
			(unsigned long)l->nvme_writes, (unsigned long)l->nvme_used,
			(unsigned long)l->nvme_objects);
	else
		fprintf(f, "\"hits_nvme\": null, \"nvme_reads\": null, \"nvme_writes\": null, "
			   "\"nvme_used\": null, \"nvme_objects\": null}, ");
}

#define NROWS (TSIM_NPOLICIES + 1) /* stoker, then the offline policies */

static const char *row_name(int i)
{
	return i == 0 ? "stoker" : tsim_name((enum tsim_policy)(i - 1));
}

/*
 * stoker's row: hits are the gets served without a backend fetch in the
 * epoch (gets - fetches), the measure the offline policies count (they
 * fetch on demand only; stokerd also prefetches, which turns fetches into
 * "resident when asked" without saving any).  Of those, NVMe hits are the
 * daemon's own count where it reports one; the rest count as RAM.
 */
static void stoker_row(const struct tr_opts *o, const struct tr_live_epoch *l, struct row *r)
{
	uint64_t reuse = l->gets > l->fetches ? l->gets - l->fetches : 0;

	r->gets = l->gets;
	r->hits_nvme = l->nvme_known && l->hits_nvme < reuse ? l->hits_nvme : 0;
	r->hits_ram = reuse - r->hits_nvme;
	r->misses = l->gets - reuse;
	r->backend_bytes = l->fetch_bytes;
	r->stall_s = (double)l->wait_ns_sum / 1e9 / o->clients;
}

/*
 * stoker's row for the run after each object's first get (epochs 2 on when
 * the clients split epochs), from whole-run totals: all gets - all fetches.
 * No policy serves an object's first get without a fetch, so this charges
 * stoker every fetch beyond those: refetches, and prefetches for epoch 2
 * made during epoch 1 (with --plan run), which per-epoch deltas would book
 * to epoch 1.  Its stall is that of epochs 2 on.
 */
static void stoker_span(const struct tr_opts *o, const struct tr_trace *t,
			const struct tr_live_epoch *l, struct row *r)
{
	uint64_t gets = 0, fetches = 0, bytes = 0, nvme = 0, stall = 0;

	for (uint32_t e = 0; e < o->epochs; e++) {
		gets += l[e].gets;
		fetches += l[e].fetches;
		bytes += l[e].fetch_bytes;
		nvme += l[e].nvme_known ? l[e].hits_nvme : 0;
		if (e > 0)
			stall += l[e].wait_ns_sum;
	}
	r->gets = gets > t->nobj ? gets - t->nobj : 0;
	r->hits_ram = gets > fetches ? gets - fetches : 0;
	if (r->hits_ram > r->gets) /* a daemon that had objects cached before the run */
		r->hits_ram = r->gets;
	r->hits_nvme = nvme < r->hits_ram ? nvme : r->hits_ram;
	r->hits_ram -= r->hits_nvme;
	r->misses = r->gets - r->hits_ram - r->hits_nvme;
	r->backend_bytes = bytes > t->bytes ? bytes - t->bytes : 0;
	r->stall_s = (double)stall / 1e9 / o->clients;
}

static void report(const struct tr_opts *o, const struct tr_trace *t, struct tsim_epoch **sim,
		   const struct tr_live_epoch *live, FILE *jf)
{
	struct row span[NROWS];
	uint32_t E = o->epochs;

	memset(span, 0, sizeof(span));
	printf("tier_replay: %u objects, %.1f MB (%.0f-%.0f KiB, log-uniform), %u %s epochs, "
	       "%u clients %s, plan per %s; RAM %.1f MB, NVMe %.1f MB%s\n",
	       t->nobj, (double)t->bytes / MB, (double)o->min_size / 1024.0,
	       (double)o->max_size / 1024.0, E, o->cyclic ? "cyclic" : "shuffled", o->clients,
	       o->independent ? "each reading all" : "splitting each epoch",
	       o->plan_run ? "run" : "epoch", (double)o->ram / MB, (double)o->nvme / MB,
	       o->nvme ? "" : " (RAM only)");
	printf("  hits: gets served without reading the backend; stoker: gets - fetches.\n"
	       "  stall: stoker's measured stk_get() time per client (mean); the offline\n"
	       "  policies' is a demand-fetch model of the emulated backend (none without one).\n");
	if (jf) {
		fprintf(
		    jf,
		    "{\"objects\": %u, \"dataset_bytes\": %lu, \"min_size\": %lu, "
		    "\"max_size\": %lu, \"epochs\": %u, \"clients\": %u, \"clients_read\": \"%s\", "
		    "\"order\": \"%s\", "
		    "\"plan\": \"%s\", \"ram\": %lu, \"nvme\": %lu, \"compute_us\": %lu, "
		    "\"seed\": %lu, \"live\": %s, \"dir\": ",
		    t->nobj, (unsigned long)t->bytes, (unsigned long)o->min_size,
		    (unsigned long)o->max_size, E, o->clients, o->independent ? "all" : "split",
		    o->cyclic ? "cyclic" : "shuffled", o->plan_run ? "run" : "epoch",
		    (unsigned long)o->ram, (unsigned long)o->nvme, (unsigned long)o->compute_us,
		    (unsigned long)o->seed, live ? "true" : "false");
		json_str(jf, o->dir);
		fprintf(jf, ", \"epoch_list\": [");
	}
	for (uint32_t e = 0; e < E; e++) {
		struct row r[NROWS];

		printf("epoch %u: %u gets%s\n  %-16s %6s %6s %6s  %6s %10s %8s\n", e + 1,
		       t->per_epoch, live ? "" : " (offline only)", "policy", "ram", "nvme", "miss",
		       "hit", "backendMB", "stall_s");
		for (int i = 0; i < NROWS; i++) {
			if (i == 0) {
				if (!live)
					continue;
				stoker_row(o, &live[e], &r[0]);
			} else {
				const struct tsim_epoch *s = &sim[i - 1][e];

				r[i] = (struct row){ .gets = t->per_epoch,
						     .hits_ram = s->hits_ram,
						     .hits_nvme = s->hits_nvme,
						     .misses = s->misses,
						     .backend_bytes = s->miss_bytes,
						     .stall_s = model_stall(o, s) };
			}
			print_row(row_name(i), &r[i]);
			add(&span[i], &r[i], e > 0);
		}
		if (live)
			printf("  stoker: %lu hits_ram %lu misses (resident when asked, daemon), "
			       "%lu evictions, slowest client waited %.3f s, wall %.2f s%s\n",
			       (unsigned long)live[e].hits_ram, (unsigned long)live[e].misses,
			       (unsigned long)live[e].evictions, (double)live[e].wait_ns_max / 1e9,
			       live[e].wall_s, live[e].verify_errors ? ", BYTES WRONG" : "");
		if (live && live[e].nvme_known)
			printf(
			    "  stoker tier 1: %lu hits_nvme, %lu promotions, %lu demotions; at the "
			    "end %lu objects (%.1f MB) on NVMe, %lu (%.1f MB) in RAM\n",
			    (unsigned long)live[e].hits_nvme, (unsigned long)live[e].nvme_reads,
			    (unsigned long)live[e].nvme_writes, (unsigned long)live[e].nvme_objects,
			    (double)live[e].nvme_used / MB, (unsigned long)live[e].ram_objects,
			    (double)live[e].ram_used / MB);
		if (jf) {
			fprintf(jf, "%s{\"epoch\": %u, \"gets\": %u, ", e ? ", " : "", e + 1,
				t->per_epoch);
			if (live)
				json_daemon(jf, &live[e]);
			for (int i = live ? 0 : 1; i < NROWS; i++)
				json_row(jf, row_name(i), &r[i], i == NROWS - 1);
			fputc('}', jf);
		}
	}
	/* The offline policies miss every object's first get: leave those out too. */
	for (int i = 1; i < NROWS; i++) {
		span[i].gets -= t->nobj;
		span[i].misses -= t->nobj;
		span[i].backend_bytes -= t->bytes;
	}
	if (live)
		stoker_span(o, t, live, &span[0]);
	if (E > 1 || o->independent) {
		uint64_t asked = (uint64_t)E * (t->per_epoch / t->nobj) * t->bytes - t->bytes;

		printf("after each object's first get (epochs 2-%u%s): hit ratio, byte hit ratio, "
		       "stall_s of epochs 2-%u\n",
		       E, o->independent ? " and the other clients' gets in epoch 1" : "", E);
		for (int i = live ? 0 : 1; i < NROWS; i++) {
			printf("  %-10s %.3f %.3f", row_name(i),
			       ratio(span[i].hits_ram + span[i].hits_nvme, span[i].gets),
			       byte_hits(&span[i], asked));
			if (span[i].stall_s >= 0)
				printf(" (%.3f s)", span[i].stall_s);
			if (live && i > 0 && span[i].hits_ram + span[i].hits_nvme)
				printf("   stoker/%s %.3f", row_name(i),
				       ratio(span[0].hits_ram + span[0].hits_nvme,
					     span[i].hits_ram + span[i].hits_nvme));
			else if (live && i > 0)
				printf("   stoker/%s n/a (%s hit nothing)", row_name(i),
				       row_name(i));
			putchar('\n');
		}
	}
	if (jf) {
		uint64_t asked = (uint64_t)E * (t->per_epoch / t->nobj) * t->bytes - t->bytes;

		fprintf(jf, "], \"after_first_gets\": {\"gets\": %lu, \"byte_hit_ratio\": {",
			(unsigned long)span[1].gets);
		for (int i = live ? 0 : 1; i < NROWS; i++)
			fprintf(jf, "\"%s\": %.4f%s", row_name(i), byte_hits(&span[i], asked),
				i == NROWS - 1 ? "}, " : ", ");
		for (int i = live ? 0 : 1; i < NROWS; i++)
			json_row(jf, row_name(i), &span[i], i == NROWS - 1);
		fprintf(jf, "}}\n");
	}
}

int main(int argc, char **argv)
{
	struct tsim_epoch *sim[TSIM_NPOLICIES] = { 0 };
	struct tr_live_epoch *live = NULL;
	struct tr_trace t;
	struct tr_opts o;
	FILE *jf = NULL;
	int ret, status = 1;

	if (parse(argc, argv, &o))
		return 2;
	ret = tr_trace_make(&o, &t);
	if (ret) {
		fprintf(stderr, "tier_replay: %s\n", strerror(-ret));
		return 1;
	}
	for (int p = 0; p < TSIM_NPOLICIES; p++) {
		struct tsim_trace st = { .obj = t.order,
					 .n = (size_t)o.epochs * t.per_epoch,
					 .size = t.size,
					 .nobj = t.nobj,
					 .epoch_len = t.per_epoch,
					 .epochs = o.epochs };

		sim[p] = calloc(o.epochs, sizeof(*sim[p]));
		if (!sim[p] || tsim_run((enum tsim_policy)p, &st, o.ram, o.nvme, sim[p])) {
			fprintf(stderr, "tier_replay: offline %s failed\n", tsim_name(p));
			goto out;
		}
	}
	if (o.write && (ret = tr_write_dataset(&o, &t)))
		goto out;
	if (o.socket) {
		live = calloc(o.epochs, sizeof(*live));
		if (!live || tr_live_run(&o, &t, live))
			goto out;
	}
	if (o.json) {
		jf = fopen(o.json, "w");
		if (!jf) {
			fprintf(stderr, "tier_replay: %s: %s\n", o.json, strerror(errno));
			goto out;
		}
	}
	report(&o, &t, sim, live, jf);
	status = 0;
	for (uint32_t e = 0; live && e < o.epochs; e++)
		if (live[e].verify_errors) {
			fprintf(stderr, "tier_replay: epoch %u: %lu objects with wrong bytes\n",
				e + 1, (unsigned long)live[e].verify_errors);
			status = 1;
		}
	if (jf && fclose(jf)) {
		fprintf(stderr, "tier_replay: %s: %s\n", o.json, strerror(errno));
		status = 1;
	}
out:
	for (int p = 0; p < TSIM_NPOLICIES; p++)
		free(sim[p]);
	free(live);
	tr_trace_free(&t);
	return status;
}

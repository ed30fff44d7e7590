/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench: a simulated trainer that reads a dataset directly and through
 * stoker, and reports the data stall each way and the stall stoker avoided.
 * See bench/README.md.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <stoker.h>

#include "bench.h"
#include "common/log.h" /* stk__parse_size: the grammar of stokerd --ram */

/* The demo's defaults: chosen so both modes together take ~30-60 s on a
 * 2-core VM and compute hides most of the emulated I/O when it is
 * prefetched.  See README.md for the arithmetic. */
#define DEMO_FILES	    256u
#define DEMO_MIN_SIZE	    (64u << 10)
#define DEMO_MAX_SIZE	    (2u << 20)
#define DEMO_STEPS	    96ul
#define DEMO_BATCH	    8ul
#define DEMO_COMPUTE_MS	    60.0
#define DEMO_LATENCY_MS	    20.0
#define DEMO_BANDWIDTH_MB_S 150.0
#define DEMO_RAM	    "64M"

#define MAX_REPEAT 99ul

enum mode { MODE_AB, MODE_DIRECT, MODE_STOKER };

struct options {
	const char *dataset;
	unsigned long steps, batch, repeat;
	double compute_ms;
	enum mode mode;
	bool mode_set;
	const char *socket, *stokerd, *ram;
	struct bench_emul emul;
	uint64_t seed;
	double hot_s;
	bool json, demo, hot, warm_only;
	bool steps_set, batch_set, compute_set, lat_set, bw_set;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: stoker-bench [OPTIONS]\n"
	    "A simulated trainer: STEPS steps of BATCH objects each, COMPUTE-MS of 'compute'\n"
	    "(a sleep) after each batch, reading a dataset directly (open/read) and through\n"
	    "stoker (a plan of the whole order, then zero-copy gets), and reporting the\n"
	    "stall time (time blocked getting batches) of each and the stall avoided.\n"
	    "\n"
	    "  --dataset DIR          directory of files (stoker opens file://DIR/)\n"
	    "  --steps N              training steps (default 100; demo %lu)\n"
	    "  --batch B              objects per step (default 16; demo %lu)\n"
	    "  --compute-ms MS        compute time per step (default 50; demo %g)\n"
	    "  --mode direct|stoker|ab  what to run (default ab: direct, then stoker)\n"
	    "  --repeat K             K runs of each mode, alternating A,B,A,B; medians reported\n"
	    "  --seed S               seed of the per-epoch shuffles (default 1)\n"
	    "  --socket PATH          use a running stokerd instead of starting one\n"
	    "  --stokerd PATH         daemon binary to start (default: next to this program,\n"
	    "                         ../prefetch/stokerd in a build tree, else PATH)\n"
	    "  --ram SIZE             RAM budget of a started daemon (default: dataset + 25%%\n"
	    "                         + 64 MiB; demo %s)\n"
	    "  --emulate-latency MS   EMULATED slow backend: added ms (whole) per object request\n"
	    "  --emulate-bandwidth MBPS  EMULATED slow backend: cap on MB/s (10^6 B) of all reads\n"
	    "                         (the started daemon and the direct reader both pay these)\n"
	    "  --json                 print one JSON object on stdout instead of the report\n"
	    "  --demo                 make a %u-file dataset (%u KiB..%u MiB), emulate a slow\n"
	    "                         backend (+%g ms, %g MB/s) and run A/B; removes it after\n"
	    "  --hot                  warm the dataset, then measure gets/s and read GB/s of\n"
	    "                         resident objects (makes the demo dataset without --dataset)\n"
	    "  --hot-seconds S        length of each --hot measurement (default 2.5)\n"
	    "  --warm-only            time a cold stk_warm() of the whole dataset (MB/s)\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "Before each run the dataset's pages are dropped from the page cache\n"
	    "(posix_fadvise DONTNEED) and a started daemon is fresh, so every run starts cold.\n",
	    DEMO_STEPS, DEMO_BATCH, DEMO_COMPUTE_MS, DEMO_RAM, DEMO_FILES, DEMO_MIN_SIZE >> 10,
	    DEMO_MAX_SIZE >> 20, DEMO_LATENCY_MS, DEMO_BANDWIDTH_MB_S);
}

static int parse_ulong(const char *opt, const char *s, unsigned long min, unsigned long max,
		       unsigned long *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "stoker-bench: %s wants an integer in [%lu, %lu], not '%s'\n", opt,
			min, max, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_double(const char *opt, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e7) {
		fprintf(stderr, "stoker-bench: %s wants a number >= 0, not '%s'\n", opt, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Returns 0 to run, 1 when --help was printed, -EINVAL for bad usage. */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_STEPS = 256,
		O_BATCH,
		O_COMPUTE,
		O_MODE,
		O_SOCKET,
		O_STOKERD,
		O_RAM,
		O_LAT,
		O_BW,
		O_SEED,
		O_REPEAT,
		O_JSON,
		O_DEMO,
		O_HOT,
		O_HOT_S,
		O_WARM,
		O_DATASET
	};
	static const struct option lo[] = {
		{ "dataset", required_argument, NULL, O_DATASET },
		{ "steps", required_argument, NULL, O_STEPS },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "compute-ms", required_argument, NULL, O_COMPUTE },
		{ "mode", required_argument, NULL, O_MODE },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "stokerd", required_argument, NULL, O_STOKERD },
		{ "ram", required_argument, NULL, O_RAM },
		{ "emulate-latency", required_argument, NULL, O_LAT },
		{ "emulate-bandwidth", required_argument, NULL, O_BW },
		{ "seed", required_argument, NULL, O_SEED },
		{ "repeat", required_argument, NULL, O_REPEAT },
		{ "json", no_argument, NULL, O_JSON },
		{ "demo", no_argument, NULL, O_DEMO },
		{ "hot", no_argument, NULL, O_HOT },
		{ "hot-seconds", required_argument, NULL, O_HOT_S },
		{ "warm-only", no_argument, NULL, O_WARM },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long ul;
	uint64_t sz;
	int c;

	memset(o, 0, sizeof(*o));
	o->steps = 100;
	o->batch = 16;
	o->compute_ms = 50;
	o->repeat = 1;
	o->seed = 1;
	o->hot_s = 2.5;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_DATASET:
			o->dataset = optarg;
			break;
		case O_STEPS:
			if (parse_ulong("--steps", optarg, 1, 100000000ul, &o->steps))
				return -EINVAL;
			o->steps_set = true;
			break;
		case O_BATCH:
			if (parse_ulong("--batch", optarg, 1, 1000000ul, &o->batch))
				return -EINVAL;
			o->batch_set = true;
			break;
		case O_COMPUTE:
			if (parse_double("--compute-ms", optarg, &o->compute_ms))
				return -EINVAL;
			o->compute_set = true;
			break;
		case O_MODE:
			if (!strcmp(optarg, "ab"))
				o->mode = MODE_AB;
			else if (!strcmp(optarg, "direct"))
				o->mode = MODE_DIRECT;
			else if (!strcmp(optarg, "stoker"))
				o->mode = MODE_STOKER;
			else {
				fprintf(stderr,
					"stoker-bench: --mode is direct, stoker or ab, "
					"not '%s'\n",
					optarg);
				return -EINVAL;
			}
			o->mode_set = true;
			break;
		case O_SOCKET:
			o->socket = optarg;
			break;
		case O_STOKERD:
			o->stokerd = optarg;
			break;
		case O_RAM:
			if (stk__parse_size(optarg, &sz) || !sz) {
				fprintf(stderr,
					"stoker-bench: --ram wants a size like 512M or 4G, "
					"not '%s'\n",
					optarg);
				return -EINVAL;
			}
			o->ram = optarg;
			break;
		/* Whole numbers: stokerd takes whole ms and whole MB/s, and
		 * both sides must pay exactly the same. */
		case O_LAT:
			if (parse_ulong("--emulate-latency", optarg, 0, 600000, &ul))
				return -EINVAL;
			o->emul.latency_ms = (double)ul;
			o->lat_set = true;
			break;
		case O_BW:
			if (parse_ulong("--emulate-bandwidth", optarg, 0, 1000000, &ul))
				return -EINVAL;
			o->emul.bandwidth_mb_s = (double)ul;
			o->bw_set = true;
			break;
		case O_SEED:
			if (parse_ulong("--seed", optarg, 0, ULONG_MAX, &ul))
				return -EINVAL;
			o->seed = ul;
			break;
		case O_REPEAT:
			if (parse_ulong("--repeat", optarg, 1, MAX_REPEAT, &o->repeat))
				return -EINVAL;
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_DEMO:
			o->demo = true;
			break;
		case O_HOT:
			o->hot = true;
			break;
		case O_HOT_S:
			if (parse_double("--hot-seconds", optarg, &o->hot_s) || o->hot_s <= 0)
				return -EINVAL;
			break;
		case O_WARM:
			o->warm_only = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "stoker-bench: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return -EINVAL;
	}
	if (o->demo) {
		if (o->dataset) {
			fprintf(stderr, "stoker-bench: --demo makes its own dataset; "
					"drop --dataset\n");
			return -EINVAL;
		}
		if (!o->steps_set)
			o->steps = DEMO_STEPS;
		if (!o->batch_set)
			o->batch = DEMO_BATCH;
		if (!o->compute_set)
			o->compute_ms = DEMO_COMPUTE_MS;
		if (!o->lat_set)
			o->emul.latency_ms = DEMO_LATENCY_MS;
		if (!o->bw_set)
			o->emul.bandwidth_mb_s = DEMO_BANDWIDTH_MB_S;
		if (!o->ram)
			o->ram = DEMO_RAM;
	}
	if (!o->dataset && !o->demo && !o->hot) {
		fprintf(stderr, "stoker-bench: give --dataset DIR, or --demo (see --help)\n");
		return -EINVAL;
	}
	if (o->warm_only && !o->dataset) {
		fprintf(stderr, "stoker-bench: --warm-only needs --dataset DIR\n");
		return -EINVAL;
	}
	if (o->steps > SIZE_MAX / 8 / o->batch || o->steps * o->batch > UINT32_MAX) {
		fprintf(stderr, "stoker-bench: --steps x --batch is too large\n");
		return -EINVAL;
	}
	if (o->socket && (o->lat_set || o->bw_set || o->demo) && !o->json)
		fprintf(stderr,
			"stoker-bench: note: with --socket the daemon's emulation is "
			"whatever it was started with; the direct reader uses +%g ms, %g MB/s\n",
			o->emul.latency_ms, o->emul.bandwidth_mb_s);
	return 0;
}

static void on_signal(int sig)
{
	bench_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: sleeps must wake up */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

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
static void median_result(const struct bench_result *runs, size_t n, struct bench_result *m)
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

/* --- running --- */

struct ctx {
	struct options o;
	struct bench_dataset ds;
	char demo_dir[256]; /* the --demo / --hot dataset we made, removed at exit */
	char stokerd[4096];
	char ram_default[32];
	const char *ram;     /* passed to a started daemon */
	bool spawn;	     /* start a fresh daemon per stoker run */
	bool cache_dropped;  /* every page-cache drop before a run succeeded */
	bool daemon_unclean; /* a started daemon did not exit 0 on SIGTERM */
	/* results */
	bool ran_direct, ran_stoker, ran_hot, ran_warm;
	struct bench_result runs_direct[MAX_REPEAT], runs_stoker[MAX_REPEAT];
	struct bench_result direct, stoker;
	struct bench_hot hot;
	struct bench_warm warm;
	bool checksums_match;
};

static void drop_cache(struct ctx *x)
{
	int ret = bench_dataset_drop_cache(&x->ds);

	if (ret && x->cache_dropped) {
		fprintf(stderr,
			"stoker-bench: warning: could not drop the dataset's page cache "
			"(%s); runs may start warm\n",
			strerror(-ret));
		x->cache_dropped = false;
	}
}

/* Runs fn against a daemon: the one at --socket, or a fresh one started
 * for this call alone, so its cache starts empty. */
static int with_daemon(struct ctx *x, int (*fn)(struct ctx *x, const char *sock, void *arg),
		       void *arg)
{
	struct bench_daemon d;
	int ret;

	if (!x->spawn)
		return fn(x, x->o.socket, arg);
	ret = bench_daemon_start(&d, x->stokerd, x->ram, x->ds.dir, &x->o.emul, true);
	if (ret)
		return ret;
	ret = fn(x, d.sock, arg);
	if (bench_daemon_stop(&d))
		x->daemon_unclean = true;
	return ret;
}

struct stoker_arg {
	const struct bench_run_cfg *rc;
	struct bench_result *r;
};

static int do_stoker(struct ctx *x, const char *sock, void *arg)
{
	struct stoker_arg *a = arg;

	return bench_run_stoker(&x->ds, a->rc, sock, a->r);
}

static int do_hot(struct ctx *x, const char *sock, void *arg)
{
	return bench_run_hot(&x->ds, sock, x->o.hot_s, arg);
}

static int do_warm(struct ctx *x, const char *sock, void *arg)
{
	return bench_run_warm(&x->ds, sock, arg);
}

static int run_ab(struct ctx *x)
{
	const unsigned long k_max = x->o.repeat;
	size_t n = x->o.steps * x->o.batch;
	struct bench_run_cfg rc = {
		.steps = x->o.steps,
		.batch = x->o.batch,
		.compute_ms = x->o.compute_ms,
		.emul = x->o.emul,
	};
	uint32_t *order;
	uint64_t want;
	int ret = 0;

	x->ran_direct = x->o.mode != MODE_STOKER;
	x->ran_stoker = x->o.mode != MODE_DIRECT;
	order = malloc(n * sizeof(*order));
	if (!order)
		return -ENOMEM;
	bench_make_order(order, n, x->ds.count, x->o.seed);
	rc.order = order;

	for (unsigned long k = 0; k < k_max; k++) {
		if (x->ran_direct) {
			struct bench_result *r = &x->runs_direct[k];

			drop_cache(x);
			fprintf(stderr, "stoker-bench: run %lu/%lu direct ...\n", k + 1, k_max);
			ret = bench_run_direct(&x->ds, &rc, r);
			if (ret)
				goto out;
			fprintf(stderr, "stoker-bench:   direct: wall %.2f s, stall %.2f s\n",
				r->wall_s, r->stall_s);
		}
		if (x->ran_stoker) {
			struct bench_result *r = &x->runs_stoker[k];
			struct stoker_arg a = { .rc = &rc, .r = r };

			drop_cache(x);
			fprintf(stderr, "stoker-bench: run %lu/%lu stoker ...\n", k + 1, k_max);
			ret = with_daemon(x, do_stoker, &a);
			if (ret)
				goto out;
			fprintf(stderr,
				"stoker-bench:   stoker: wall %.2f s, stall %.2f s, "
				"hits %llu/%llu\n",
				r->wall_s, r->stall_s, (unsigned long long)r->hits,
				(unsigned long long)r->objects);
			if (!x->spawn && r->resident_at_start)
				fprintf(stderr,
					"stoker-bench: warning: %u objects were already "
					"cached in the daemon when stoker run %lu began\n",
					r->resident_at_start, k + 1);
		}
	}
	if (x->ran_direct)
		median_result(x->runs_direct, k_max, &x->direct);
	if (x->ran_stoker)
		median_result(x->runs_stoker, k_max, &x->stoker);

	/* Every run read the same objects in the same order: every hash of
	 * every run of either mode must agree. */
	x->checksums_match = true;
	want = x->ran_direct ? x->runs_direct[0].checksum : x->runs_stoker[0].checksum;
	for (unsigned long k = 0; k < k_max; k++) {
		if ((x->ran_direct && x->runs_direct[k].checksum != want) ||
		    (x->ran_stoker && x->runs_stoker[k].checksum != want)) {
			fprintf(stderr,
				"stoker-bench: CHECKSUM MISMATCH in run %lu: the bytes "
				"read differ between runs or modes\n",
				k + 1);
			x->checksums_match = false;
			ret = -EBADMSG;
		}
	}
out:
	free(order);
	return ret;
}

static bool emulating(const struct options *o)
{
	return o->emul.latency_ms > 0 || o->emul.bandwidth_mb_s > 0;
}

static bool ab_wanted(const struct options *o)
{
	if (o->warm_only)
		return o->mode_set;
	if (o->hot && !o->demo)
		return o->mode_set;
	return true;
}

static void report_text(const struct ctx *x)
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

static int report_json(const struct ctx *x)
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

int main(int argc, char **argv)
{
	struct ctx *x;
	int ret, status = 1;
	bool bad = false;

	x = calloc(1, sizeof(*x));
	if (!x)
		return 1;
	ret = parse_options(argc, argv, &x->o);
	if (ret) {
		free(x);
		return ret > 0 ? 0 : 2;
	}
	install_signals();
	x->cache_dropped = true;
	x->spawn = !x->o.socket;

	if (x->o.demo || !x->o.dataset) {
		ret = bench_mkdtemp("stoker-demo", x->demo_dir, sizeof(x->demo_dir));
		if (ret)
			goto out;
		fprintf(stderr,
			"stoker-bench: writing the demo dataset (%u files, %u KiB..%u "
			"MiB) to %s ...\n",
			DEMO_FILES, DEMO_MIN_SIZE >> 10, DEMO_MAX_SIZE >> 20, x->demo_dir);
		ret = bench_make_demo_dataset(x->demo_dir, DEMO_FILES, DEMO_MIN_SIZE, DEMO_MAX_SIZE,
					      x->o.seed);
		if (ret)
			goto out;
		x->o.dataset = x->demo_dir;
	}
	ret = bench_dataset_load(x->o.dataset, &x->ds);
	if (ret)
		goto out;

	if (x->spawn) {
		ret = bench_find_stokerd(x->o.stokerd, x->stokerd, sizeof(x->stokerd));
		if (ret)
			goto out;
		x->ram = x->o.ram;
		/* --hot and --warm-only need the whole dataset resident; A/B
		 * runs default to the same so only prefetching differs. */
		if (!x->ram) {
			uint64_t b = x->ds.bytes + x->ds.bytes / 4 + (64ull << 20);

			snprintf(x->ram_default, sizeof(x->ram_default), "%lluM",
				 (unsigned long long)((b + (1u << 20) - 1) >> 20));
			x->ram = x->ram_default;
		}
	}

	if (ab_wanted(&x->o)) {
		ret = run_ab(x);
		if (ret == -EBADMSG)
			bad = true; /* report the figures, then fail */
		else if (ret)
			goto out;
	}
	if (x->o.warm_only && !bench_stop) {
		drop_cache(x);
		fprintf(stderr, "stoker-bench: cold warm of %s ...\n", x->ds.dir);
		ret = with_daemon(x, do_warm, &x->warm);
		if (ret)
			goto out;
		x->ran_warm = true;
	}
	if (x->o.hot && !bench_stop) {
		fprintf(stderr,
			"stoker-bench: hot: warming, then %.1f s of gets and %.1f s of "
			"reads ...\n",
			x->o.hot_s, x->o.hot_s);
		ret = with_daemon(x, do_hot, &x->hot);
		if (ret)
			goto out;
		x->ran_hot = true;
	}

	if (x->o.json)
		ret = report_json(x) ? -EIO : ret;
	else
		report_text(x);
	status = ret || bad || x->daemon_unclean ? 1 : 0;
out:
	if (ret == -EINTR)
		fprintf(stderr, "stoker-bench: interrupted\n");
	bench_dataset_free(&x->ds);
	if (x->demo_dir[0])
		bench_rmtree(x->demo_dir);
	free(x);
	return status;
}

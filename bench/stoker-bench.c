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
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <stoker.h>

#include "bench.h"
#include "stoker-bench.h"
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

/*
 * --hot's sizes: from a small sample to a shard, with counts that keep one
 * run (3 rounds) under a minute on a 2-core VM: 62.5 MiB of 4 KiB objects
 * (more than a CPU cache holds), 430, 450 and 512 MiB of the others.  Not
 * 20,000 small ones: stokerd up to commit 84bba61 keeps a descriptor per
 * resident object, and at a hard RLIMIT_NOFILE of 20,000 (as on our VMs) the
 * last ones fail with EMFILE.
 */
#define HOT_SIZES   "4K:16000,110K:4000,1.5M:300,64M:8"
#define HOT_SECONDS 0.5
#define HOT_ROUNDS  3u

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
	    "  --hot                  for each of --hot-sizes, make a dataset (kept under\n"
	    "                         --dataset DIR, else in a temp dir), warm it into a fresh\n"
	    "                         stokerd and measure resident delivery: gets/s, streaming\n"
	    "                         GB/s (get, hash, release), batched gets, next to the hash\n"
	    "                         over private copies and an open/read/close page-cache loop\n"
	    "  --hot-sizes LIST       SIZE:COUNT,... in binary units (default\n"
	    "                         %s)\n"
	    "  --hot-seconds S        length of each --hot measurement (default %g)\n"
	    "                         (--hot rounds: --repeat, default %u; --batch: objects per\n"
	    "                         batched get)\n"
	    "  --warm-only            time a cold stk_warm() of the whole dataset (MB/s)\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "Before each run the dataset's pages are dropped from the page cache\n"
	    "(posix_fadvise DONTNEED) and a started daemon is fresh, so every run starts cold.\n",
	    DEMO_STEPS, DEMO_BATCH, DEMO_COMPUTE_MS, DEMO_RAM, DEMO_FILES, DEMO_MIN_SIZE >> 10,
	    DEMO_MAX_SIZE >> 20, DEMO_LATENCY_MS, DEMO_BANDWIDTH_MB_S, HOT_SIZES, HOT_SECONDS,
	    HOT_ROUNDS);
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

/*
 * Parses --hot-sizes: "SIZE:COUNT[,SIZE:COUNT]...", SIZE in bytes or with a
 * binary unit (K, M, G; "KiB" and "KB" alike) and possibly a fraction
 * ("1.5M"), as long as it comes to whole bytes.
 */
static int parse_hot_sizes(const char *arg, struct options *o)
{
	const char *p = arg;

	o->hot_n = 0;
	while (*p) {
		unsigned long count;
		double v, mul = 1;
		char *end;

		if (o->hot_n == BENCH_HOT_MAX_SIZES)
			goto bad;
		errno = 0;
		v = strtod(p, &end);
		if (errno || end == p || !isfinite(v) || v <= 0)
			goto bad;
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1024.0;
			break;
		case 'm':
		case 'M':
			mul = 1024.0 * 1024;
			break;
		case 'g':
		case 'G':
			mul = 1024.0 * 1024 * 1024;
			break;
		}
		if (mul > 1) {
			end++;
			if (*end == 'i')
				end++;
			if (*end == 'B')
				end++;
		}
		v *= mul;
		if (*end != ':' || v < 1 || v > 64.0 * 1024 * 1024 * 1024 || v != floor(v))
			goto bad;
		p = end + 1;
		errno = 0;
		count = strtoul(p, &end, 10);
		if (errno || end == p || *p == '-' || count < 1 || count > 10000000ul ||
		    (*end && *end != ','))
			goto bad;
		o->hot_size[o->hot_n] = (uint64_t)v;
		o->hot_count[o->hot_n] = (uint32_t)count;
		o->hot_n++;
		p = *end ? end + 1 : end;
		if (*end && !*p)
			goto bad;
	}
	if (o->hot_n)
		return 0;
bad:
	fprintf(stderr,
		"stoker-bench: --hot-sizes wants up to %u SIZE:COUNT pairs like %s, not '%s'\n",
		BENCH_HOT_MAX_SIZES, HOT_SIZES, arg);
	return -EINVAL;
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
		O_HOT_SIZES,
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
		{ "hot-sizes", required_argument, NULL, O_HOT_SIZES },
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
	o->hot_s = HOT_SECONDS;
	if (parse_hot_sizes(HOT_SIZES, o))
		return -EINVAL;
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
			o->repeat_set = true;
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
		case O_HOT_SIZES:
			if (parse_hot_sizes(optarg, o))
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
	if (o->hot && o->dataset && (o->mode_set || o->warm_only)) {
		fprintf(stderr, "stoker-bench: with --hot, --dataset DIR is where the per-size "
				"datasets are made; run --mode or --warm-only separately\n");
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

/* --- running --- */

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
	x->daemon_pid = d.pid;
	ret = fn(x, d.sock, arg);
	x->daemon_pid = 0;
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

/* User + system seconds process pid has used, or -1. */
static double cpu_seconds(pid_t pid)
{
	char p[64], b[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = pid > 0 ? fopen(p, "r") : NULL;
	size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
	if (f)
		fclose(f);
	b[n] = 0;
	char *s = strrchr(b, ')'); /* the name may hold spaces */
	unsigned long long ut, st;
	if (!s ||
	    sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int do_warm(struct ctx *x, const char *sock, void *arg)
{
	struct bench_warm *w = arg;
	double c0 = cpu_seconds(x->daemon_pid);
	int r = bench_run_warm(&x->ds, sock, w);
	double c1 = cpu_seconds(x->daemon_pid);
	w->daemon_cpu_s = c0 >= 0 && c1 >= 0 ? c1 - c0 : -1;
	return r;
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

unsigned hot_rounds(const struct options *o)
{
	return o->repeat_set ? (unsigned)o->repeat : HOT_ROUNDS;
}

/*
 * Loads the dataset of --hot size i into *ds: the one an earlier run left
 * under --dataset if it holds exactly the files this size wants, else a new
 * one.  A directory of that name holding anything else is an error: it is
 * not ours to replace.
 */
static int hot_dataset(struct ctx *x, unsigned i, struct bench_dataset *ds)
{
	const struct bench_hot_size *h = &x->hot[i];
	char *dir = x->hot_dir[i];
	struct stat st;
	int ret;

	if ((size_t)snprintf(dir, sizeof(x->hot_dir[i]), "%s/hot-%llux%u", x->hot_parent,
			     (unsigned long long)h->size, h->count) >= sizeof(x->hot_dir[i]))
		return -ENAMETOOLONG;
	if (stat(dir, &st) < 0) {
		char name[32];

		fprintf(stderr, "stoker-bench: hot: writing %u objects of %s to %s ...\n", h->count,
			size_name(h->size, name, sizeof(name)), dir);
		ret = bench_hot_make_dataset(dir, h->size, h->count, x->o.seed);
		if (ret)
			return ret;
	}
	ret = bench_dataset_load(dir, ds);
	if (ret)
		return ret;
	for (size_t j = 0; j < ds->count && ds->count == h->count; j++)
		if (ds->files[j].size != h->size)
			goto other;
	if (ds->count == h->count)
		return 0;
other:
	fprintf(stderr,
		"stoker-bench: hot: %s holds %zu files, %llu bytes in all, not %u files of "
		"%llu bytes each; remove it or give another --dataset\n",
		dir, ds->count, (unsigned long long)ds->bytes, h->count,
		(unsigned long long)h->size);
	bench_dataset_free(ds);
	return -EEXIST;
}

/* --hot: for each size, its dataset, a fresh daemon (or the --socket one),
 * warm, and the rounds.  A checksum mismatch is reported, then fails. */
static int run_hot(struct ctx *x)
{
	const struct bench_hot_cfg cfg = {
		.seconds = x->o.hot_s,
		.rounds = hot_rounds(&x->o),
		.batch = (unsigned)x->o.batch,
		.seed = x->o.seed,
	};
	int ret = 0, bad = 0;

	for (unsigned i = 0; i < x->o.hot_n && !bench_stop; i++) {
		struct bench_hot_size *h = &x->hot[i];
		const char *sock = x->o.socket;
		struct bench_dataset ds;
		struct bench_daemon d;
		char name[32];

		h->size = x->o.hot_size[i];
		h->count = x->o.hot_count[i];
		ret = hot_dataset(x, i, &ds);
		if (ret)
			return ret;
		if (x->spawn) {
			/* The whole dataset resident, with the headroom A/B runs get. */
			uint64_t b = ds.bytes + ds.bytes / 4 + (64ull << 20);

			if (x->o.ram)
				snprintf(x->hot_ram[i], sizeof(x->hot_ram[i]), "%s", x->o.ram);
			else
				snprintf(x->hot_ram[i], sizeof(x->hot_ram[i]), "%lluM",
					 (unsigned long long)((b + (1u << 20) - 1) >> 20));
			ret = bench_daemon_start(&d, x->stokerd, x->hot_ram[i], ds.dir, &x->o.emul,
						 true);
			if (ret) {
				bench_dataset_free(&ds);
				return ret;
			}
			sock = d.sock;
		}
		fprintf(stderr,
			"stoker-bench: hot: %u x %s: warming, then %u rounds of %g s "
			"measurements ...\n",
			h->count, size_name(h->size, name, sizeof(name)), cfg.rounds, cfg.seconds);
		ret = bench_run_hot_size(&ds, sock, &cfg, h);
		if (x->spawn && bench_daemon_stop(&d))
			x->daemon_unclean = true;
		bench_dataset_free(&ds);
		if (ret == -EBADMSG)
			bad = ret;
		else if (ret)
			return ret;
		x->hot_n = i + 1;
	}
	return bench_stop ? -EINTR : bad;
}

static bool ab_wanted(const struct options *o)
{
	if (o->warm_only)
		return o->mode_set;
	if (o->hot && !o->demo)
		return o->mode_set;
	return true;
}

int main(int argc, char **argv)
{
	struct ctx *x;
	int ret, status = 1;
	bool bad = false, need_ds;

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

	/* --hot alone makes its own datasets; A/B and --warm-only read one. */
	need_ds = ab_wanted(&x->o) || x->o.warm_only;
	if (need_ds && (x->o.demo || !x->o.dataset)) {
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
	if (need_ds) {
		ret = bench_dataset_load(x->o.dataset, &x->ds);
		if (ret)
			goto out;
	}

	if (x->spawn) {
		ret = bench_find_stokerd(x->o.stokerd, x->stokerd, sizeof(x->stokerd));
		if (ret)
			goto out;
		x->ram = x->o.ram;
		/* --warm-only needs the whole dataset resident; A/B runs
		 * default to the same so only prefetching differs.  --hot
		 * sizes a daemon per dataset (run_hot). */
		if (!x->ram && need_ds) {
			uint64_t b = x->ds.bytes + x->ds.bytes / 4 + (64ull << 20);

			snprintf(x->ram_default, sizeof(x->ram_default), "%lluM",
				 (unsigned long long)((b + (1u << 20) - 1) >> 20));
			x->ram = x->ram_default;
		}
	}

	if (x->o.hot) {
		if (x->o.dataset && !need_ds) {
			x->hot_parent = x->o.dataset;
			if (mkdir(x->hot_parent, 0755) < 0 && errno != EEXIST) {
				ret = -errno;
				fprintf(stderr, "stoker-bench: mkdir %s: %s\n", x->hot_parent,
					strerror(-ret));
				goto out;
			}
		} else {
			ret = bench_mkdtemp("stoker-hot", x->hot_tmp, sizeof(x->hot_tmp));
			if (ret)
				goto out;
			x->hot_parent = x->hot_tmp;
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
		/* Other work on a small machine moves every figure: say how busy it was. */
		if (getloadavg(&x->hot_load[0], 1) != 1)
			x->hot_load[0] = NAN;
		ret = run_hot(x);
		if (getloadavg(&x->hot_load[1], 1) != 1)
			x->hot_load[1] = NAN;
		if (ret == -EBADMSG)
			bad = true;
		else if (ret)
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
	if (x->hot_tmp[0])
		bench_rmtree(x->hot_tmp);
	free(x);
	return status;
}

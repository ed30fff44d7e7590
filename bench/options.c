/* SPDX-License-Identifier: MIT */
/*
 * stoker-bench's command line: the usage text, the options with their
 * defaults (and --demo's), checked into struct options.  Running is in
 * stoker-bench.c.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "stoker-bench.h"
#include "common/log.h" /* stk__parse_size: the grammar of stokerd --ram */

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
	    "  --report FILE.html     also write the A/B runs as one self-contained HTML page\n"
	    "                         (inline SVG, nothing fetched): per-step wait and compute\n"
	    "                         of each mode, MB/s over time, the stall split, the stall\n"
	    "                         avoided as measured and as stokerd reported it\n"
	    "  --demo                 make a %u-file dataset (%u KiB..%u MiB), emulate a slow\n"
	    "                         backend (+%g ms, %g MB/s) and run A/B; removes it after\n"
	    "  --gpu [H2D OPTIONS]    run stoker-h2d instead (the other arguments are its own,\n"
	    "                         see stoker-h2d --help): host-to-device GB/s from stoker's\n"
	    "                         pinned arena next to pageable and cudaMallocHost memory;\n"
	    "                         exit 77 without CUDA or a device\n"
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
int bench_parse_options(int argc, char **argv, struct options *o)
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
		O_DATASET,
		O_REPORT
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
		{ "report", required_argument, NULL, O_REPORT },
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
		case O_REPORT:
			if (!*optarg) {
				fprintf(stderr, "stoker-bench: --report wants a file name\n");
				return -EINVAL;
			}
			o->report = optarg;
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

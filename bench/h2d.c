/* SPDX-License-Identifier: MIT */
/*
 * stoker-h2d: how fast do object bytes reach the GPU?  For each object size it
 * copies the same bytes host-to-device three ways, on one stream, alternating
 * the order every repetition:
 *
 *   stoker    views from a running stokerd (stk_get() of a warmed file://
 *             dataset), copied with stk_gpu_copy_async() from the pinned
 *             arena (stk_gpu_pin_arena(): each segment registered once, when
 *             mapped); with --per-view-pin, each view is pinned once by the
 *             stager instead and the registration kept (steady state)
 *   pageable  malloc'd, touched memory and cudaMemcpyAsync() (the driver
 *             stages it through its own pinned buffers)
 *   pinned    cudaMallocHost() memory and cudaMemcpyAsync(): the ceiling
 *
 * then, apart, "stoker fresh": per object stk_get(), stk_gpu_copy_async()
 * (which, with --per-view-pin, pins the new view), stk_gpu_unregister()
 * (waits for the copy), stk_release(): what a loop pays that never sees the
 * same view twice.
 *
 * A pass copies every object of a size once (enough objects to make up
 * --batch-bytes, at most --max-objects), each to its own device offset, and
 * is timed from the first enqueue to the return of cudaStreamSynchronize()
 * (host clock; CUDA events around the same work are reported too).  GB/s are
 * 10^9 bytes per second, medians over --reps timed passes after --warmup
 * untimed ones.  The first warm-up pass of each way copies into zeroed device
 * memory, and the bytes are read back and compared with those the files were
 * written with (which each view is checked against as well).
 *
 * Exit status: 0; 1 when something failed or bytes differed; 2 for bad usage;
 * 77 when no CUDA device can be used (nothing is measured).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2d.h"

#define EXIT_SKIP     77
#define DEFAULT_SIZES "110KB,1.5MB,64MiB,256MiB"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: stoker-h2d [OPTIONS]\n"
	    "Host-to-device copy bandwidth of stoker views (from the gpu/ pinned arena)\n"
	    "next to pageable malloc'd memory and cudaMallocHost memory (the ceiling).\n"
	    "\n"
	    "  --socket PATH       stokerd's socket (default $STOKER_SOCKET, else %s)\n"
	    "  --dir DIR           where to write the dataset (the files h2d-SIZE-NNN.bin);\n"
	    "                      must lie inside one of stokerd's --allow-root dirs, and\n"
	    "                      should hold nothing else (the whole dir is warmed)\n"
	    "  --sizes LIST        object sizes, comma-separated (default %s);\n"
	    "                      KB/MB/GB are 10^3.., K/KiB, M/MiB, G/GiB 2^10..\n"
	    "  --batch-bytes SIZE  objects per size: enough to make up SIZE (default 64MiB)\n"
	    "  --max-objects N     ... but at most N (default 256)\n"
	    "  --reps N            timed passes per way and size (default 15)\n"
	    "  --warmup N          untimed passes before them (default 3, at least 1)\n"
	    "  --device N          CUDA device (default 0)\n"
	    "  --no-stoker         measure pageable and pinned memory only (no stokerd)\n"
	    "  --per-view-pin      pin each view in the stager (stk_gpu_copy_async's own\n"
	    "                      registration) instead of the pinned arena\n"
	    "  --keep-data         leave the files this run wrote in DIR\n"
	    "  --json              print one JSON object on stdout, the table on stderr\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "GB/s = 10^9 bytes / (host time from the first copy's enqueue to the return of\n"
	    "cudaStreamSynchronize()), median of the timed passes; a pass copies every object\n"
	    "of a size once, each to its own device offset.  \"stoker fresh\" gets, pins,\n"
	    "copies, unpins and releases every object in every pass.  \"pin\" is the host time\n"
	    "of the stk_gpu_copy_async() call that registered a new view (fault-in and\n"
	    "cudaHostRegister included).\n"
	    "Exit status: 0; 1 on failure or mismatching bytes; 2 usage; 77 no CUDA device.\n",
	    STK_DEFAULT_SOCKET, DEFAULT_SIZES);
}

/* "110KB", "1.5MB", "64MiB", "64M", "4096" -> bytes; 0 when malformed. */
static uint64_t parse_size(const char *s)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "KB", 1e3 },
		{ "MB", 1e6 },
		{ "GB", 1e9 },
		{ "K", 1024.0 },
		{ "KiB", 1024.0 },
		{ "M", 1048576.0 },
		{ "MiB", 1048576.0 },
		{ "G", 1073741824.0 },
		{ "GiB", 1073741824.0 },
	};
	char *end;
	double v;
	size_t i;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v <= 0)
		return 0;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].suffix)) {
			v *= units[i].mult;
			return v >= 1 && v < 1e15 ? (uint64_t)(v + 0.5) : 0;
		}
	}
	return 0;
}

static int parse_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "stoker-h2d: %s wants an integer in [%u, %u], not '%s'\n", opt, min,
			max, s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* Returns 0 to run, 1 after --help, -EINVAL for bad usage (printed). */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_SOCKET = 256,
		O_DIR,
		O_SIZES,
		O_BATCH,
		O_MAXOBJ,
		O_REPS,
		O_WARMUP,
		O_DEVICE,
		O_NOSTK,
		O_KEEP,
		O_PERVIEW,
		O_JSON
	};
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "dir", required_argument, NULL, O_DIR },
		{ "sizes", required_argument, NULL, O_SIZES },
		{ "batch-bytes", required_argument, NULL, O_BATCH },
		{ "max-objects", required_argument, NULL, O_MAXOBJ },
		{ "reps", required_argument, NULL, O_REPS },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "device", required_argument, NULL, O_DEVICE },
		{ "no-stoker", no_argument, NULL, O_NOSTK },
		{ "keep-data", no_argument, NULL, O_KEEP },
		{ "per-view-pin", no_argument, NULL, O_PERVIEW },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned dev;
	int c;

	*o = (struct options){
		.batch_bytes = 64ull << 20, .max_objects = 256, .reps = 15, .warmup = 3
	};
	snprintf(o->sizes_arg, sizeof(o->sizes_arg), "%s", DEFAULT_SIZES);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_SOCKET:
			o->socket = optarg;
			break;
		case O_DIR:
			o->dir = optarg;
			break;
		case O_SIZES:
			if (snprintf(o->sizes_arg, sizeof(o->sizes_arg), "%s", optarg) >=
			    (int)sizeof(o->sizes_arg)) {
				fprintf(stderr, "stoker-h2d: --sizes is too long\n");
				return -EINVAL;
			}
			break;
		case O_BATCH:
			o->batch_bytes = parse_size(optarg);
			if (!o->batch_bytes) {
				fprintf(stderr, "stoker-h2d: --batch-bytes: bad size '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case O_MAXOBJ:
			if (parse_uint("--max-objects", optarg, 1, 100000, &o->max_objects))
				return -EINVAL;
			break;
		case O_REPS:
			if (parse_uint("--reps", optarg, 1, 100000, &o->reps))
				return -EINVAL;
			break;
		case O_WARMUP:
			if (parse_uint("--warmup", optarg, 1, 1000, &o->warmup))
				return -EINVAL;
			break;
		case O_DEVICE:
			if (parse_uint("--device", optarg, 0, 1024, &dev))
				return -EINVAL;
			o->device = (int)dev;
			break;
		case O_NOSTK:
			o->no_stoker = true;
			break;
		case O_PERVIEW:
			o->per_view_pin = true;
			break;
		case O_KEEP:
			o->keep_data = true;
			break;
		case O_JSON:
			o->json = true;
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
		fprintf(stderr, "stoker-h2d: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->no_stoker && !o->dir) {
		fprintf(stderr, "stoker-h2d: --dir DIR is required (or --no-stoker)\n");
		return -EINVAL;
	}
	return 0;
}

static int parse_sizes(struct ctx *x)
{
	char buf[sizeof(x->o.sizes_arg)], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", x->o.sizes_arg);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		struct size_case *sc = &x->sc[x->nsc];
		uint64_t n;

		if (x->nsc == MAX_SIZES) {
			fprintf(stderr, "stoker-h2d: at most %d sizes\n", MAX_SIZES);
			return -EINVAL;
		}
		sc->size = parse_size(tok);
		if (!sc->size || sc->size > (8ull << 30)) {
			fprintf(stderr, "stoker-h2d: --sizes: bad size '%s' (1 B .. 8 GiB)\n", tok);
			return -EINVAL;
		}
		snprintf(sc->label, sizeof(sc->label), "%s", tok);
		n = x->o.batch_bytes / sc->size;
		sc->n = (unsigned)(n < 1 ? 1 : n > x->o.max_objects ? x->o.max_objects : n);
		x->nsc++;
	}
	if (!x->nsc) {
		fprintf(stderr, "stoker-h2d: --sizes names no size\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct ctx ctx;
	struct ctx *x = &ctx;
	struct devinfo di;
	size_t maxtotal = 0;
	char why[256];
	unsigned i;
	cudaError_t e;
	int ret;

	ret = parse_options(argc, argv, &x->o);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (parse_sizes(x))
		return 2;
	if (!stk_gpu_available(why, sizeof(why))) {
		fprintf(stderr, "stoker-h2d: no CUDA device: %s\n", why);
		return EXIT_SKIP;
	}
	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];

		sc->index = calloc(sc->n, sizeof(*sc->index));
		sc->path = calloc(sc->n, sizeof(*sc->path));
		sc->created = calloc(sc->n, sizeof(*sc->created));
		sc->view = calloc(sc->n, sizeof(*sc->view));
		if (!sc->index || !sc->path || !sc->created || !sc->view) {
			fprintf(stderr, "stoker-h2d: out of memory\n");
			return 1;
		}
		if ((size_t)sc->n * sc->size > maxtotal)
			maxtotal = (size_t)sc->n * sc->size;
	}
	x->check = malloc(maxtotal);
	if (!x->check) {
		fprintf(stderr, "stoker-h2d: out of memory\n");
		return 1;
	}
	e = cudaSetDevice(x->o.device);
	if (e == cudaSuccess)
		e = cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking);
	if (e == cudaSuccess)
		e = cudaEventCreate(&x->ev0);
	if (e == cudaSuccess)
		e = cudaEventCreate(&x->ev1);
	if (e != cudaSuccess) {
		cuda_err("setting up device, stream and events", e);
		return e == cudaErrorInvalidDevice || e == cudaErrorNoDevice ? EXIT_SKIP : 1;
	}
	h2d_devinfo_fill(x, &di);
	ret = stk_gpu_stager_create(x->o.device, x->stream, &x->stager);
	if (ret) {
		gpu_err("stk_gpu_stager_create", ret);
		return 1;
	}
	if (!x->o.no_stoker) {
		ret = h2d_make_data(x);
		if (!ret)
			ret = h2d_open_dataset(x);
		if (ret)
			goto out;
	}
	for (i = 0; i < x->nsc && !ret; i++) {
		fprintf(stderr, "stoker-h2d: %s: %u objects ...\n", x->sc[i].label, x->sc[i].n);
		ret = h2d_measure_size(x, &x->sc[i]);
		h2d_teardown_size(x, &x->sc[i]);
	}
out:
	stk_gpu_stager_destroy(x->stager);
	x->stager = NULL;
	h2d_report(x, &di, ret == 0, x->o.json ? stderr : stdout);
	stk_dataset_close(x->ds);
	stk_close(x->client);
	if (!x->o.keep_data)
		h2d_remove_data(x);
	cudaEventDestroy(x->ev0);
	cudaEventDestroy(x->ev1);
	cudaStreamDestroy(x->stream);
	return ret ? 1 : 0;
}

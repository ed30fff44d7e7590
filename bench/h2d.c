/* SPDX-License-Identifier: MIT */
/*
 * stoker-h2d: how fast do object bytes reach the GPU?  For each object size it
 * copies the same bytes host-to-device three ways, on one stream, alternating
 * the order every repetition:
 *
 *   stoker    views from a running stokerd (stk_get() of a warmed file://
 *             dataset), copied with stk_gpu_copy_async(); each view is pinned
 *             once by the stager and the registration is kept (steady state)
 *   pageable  malloc'd, touched memory and cudaMemcpyAsync() (the driver
 *             stages it through its own pinned buffers)
 *   pinned    cudaMallocHost() memory and cudaMemcpyAsync(): the ceiling
 *
 * then, apart, "stoker fresh": per object stk_get(), stk_gpu_copy_async()
 * (which pins the new mapping), stk_gpu_unregister() (waits for the copy),
 * stk_release(): what a loop pays that never sees the same view twice.
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
#include <cuda_runtime_api.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stoker.h"
#include "stoker/gpu.h"

#define EXIT_SKIP     77
#define GB	      1e9
#define MAX_SIZES     16
#define DEFAULT_SIZES "110KB,1.5MB,64MiB,256MiB"

enum way { W_STOKER, W_PAGEABLE, W_PINNED, W_FRESH, NWAYS };

static const char *const way_name[NWAYS] = { "stoker", "pageable", "pinned", "stoker_fresh" };

struct options {
	const char *socket; /* NULL: $STOKER_SOCKET, else the default */
	const char *dir;
	char sizes_arg[512];
	uint64_t batch_bytes;
	unsigned max_objects;
	unsigned reps, warmup;
	int device;
	bool json, keep_data, no_stoker;
};

/* One object size: its objects, their host copies and one device buffer. */
struct size_case {
	char label[32];
	uint64_t size;
	unsigned n;
	size_t *index;	       /* dataset indices */
	char **path;	       /* data files, absolute */
	bool *created;	       /* written by this run (removed unless --keep-data) */
	struct stk_view *view; /* held during the cached measurements */
	void **pageable, **pinned;
	unsigned char *dev; /* n * size bytes */
	/* results */
	double *gbs[NWAYS], *ev_gbs[NWAYS]; /* per timed pass */
	unsigned nsamples[NWAYS];
	bool verified[NWAYS], ran[NWAYS];
	double *pin_ms; /* host time of the copy call that pinned a view */
	unsigned npin;
	unsigned hits;
};

struct ctx {
	struct options o;
	struct stk_client *client;
	struct stk_dataset *ds;
	struct stk_gpu_stager *stager;
	cudaStream_t stream;
	cudaEvent_t ev0, ev1;
	struct size_case sc[MAX_SIZES];
	unsigned nsc;
	char dir[PATH_MAX];
	unsigned char *check; /* a host buffer for reading device bytes back */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: stoker-h2d [OPTIONS]\n"
	    "Host-to-device copy bandwidth of stoker views (pinned once by the gpu/ stager)\n"
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

/* splitmix64: deterministic, distinct bytes per object. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(void *buf, uint64_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t s = seed, v;

	while (len >= 8) {
		v = mix(&s);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	v = mix(&s);
	memcpy(p, &v, len);
}

static uint64_t seed_of(const struct size_case *sc, unsigned k)
{
	return sc->size * 1000003u + k;
}

/* Writes the objects' files unless a file of the right size is already there. */
static int make_data(struct ctx *x)
{
	unsigned char *buf = NULL;
	uint64_t bufsz = 0;
	unsigned i, k;
	int ret = 0;

	if (mkdir(x->o.dir, 0755) && errno != EEXIST) {
		ret = -errno;
		fprintf(stderr, "stoker-h2d: mkdir %s: %s\n", x->o.dir, strerror(errno));
		return ret;
	}
	if (!realpath(x->o.dir, x->dir)) {
		ret = -errno;
		fprintf(stderr, "stoker-h2d: %s: %s\n", x->o.dir, strerror(errno));
		return ret;
	}
	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];

		if (sc->size > bufsz) {
			free(buf);
			bufsz = sc->size;
			buf = malloc(bufsz);
			if (!buf) {
				fprintf(stderr, "stoker-h2d: out of memory\n");
				return -ENOMEM;
			}
		}
		for (k = 0; k < sc->n; k++) {
			char path[PATH_MAX + 64];
			struct stat st;
			FILE *f;

			snprintf(path, sizeof(path), "%s/h2d-%llu-%03u.bin", x->dir,
				 (unsigned long long)sc->size, k);
			sc->path[k] = strdup(path);
			if (!sc->path[k]) {
				ret = -ENOMEM;
				goto out;
			}
			if (!stat(path, &st) && S_ISREG(st.st_mode) &&
			    (uint64_t)st.st_size == sc->size)
				continue;
			fill(buf, sc->size, seed_of(sc, k));
			f = fopen(path, "we");
			if (!f || fwrite(buf, 1, sc->size, f) != sc->size || fclose(f)) {
				ret = -(errno ? errno : EIO);
				fprintf(stderr, "stoker-h2d: writing %s: %s\n", path,
					strerror(-ret));
				goto out;
			}
			sc->created[k] = true;
		}
	}
out:
	free(buf);
	return ret;
}

static void remove_data(struct ctx *x)
{
	unsigned i, k;

	for (i = 0; i < x->nsc; i++)
		for (k = 0; k < x->sc[i].n; k++)
			if (x->sc[i].path && x->sc[i].path[k] && x->sc[i].created[k])
				unlink(x->sc[i].path[k]);
}

/* Opens file://DIR/, warms it and finds every object's index. */
static int open_dataset(struct ctx *x)
{
	struct stk_connect_opts co = { .opts_size = sizeof(co), .socket_path = x->o.socket };
	struct stk_dataset_status st;
	char uri[PATH_MAX + 16];
	double t0, last = 0;
	unsigned i, k;
	int ret;

	ret = stk_connect(&co, &x->client);
	if (ret) {
		fprintf(stderr, "stoker-h2d: cannot connect to stokerd at %s: %s (%s)\n",
			x->o.socket		  ? x->o.socket
			: getenv("STOKER_SOCKET") ? getenv("STOKER_SOCKET")
						  : STK_DEFAULT_SOCKET,
			stk_strerror(ret), stk_errmsg());
		return ret;
	}
	snprintf(uri, sizeof(uri), "file://%s/", x->dir);
	ret = stk_dataset_open(x->client, uri, 0, &x->ds);
	if (ret) {
		fprintf(stderr, "stoker-h2d: opening %s: %s (%s)\n", uri, stk_strerror(ret),
			stk_errmsg());
		return ret;
	}
	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];

		for (k = 0; k < sc->n; k++) {
			const char *key = strrchr(sc->path[k], '/') + 1;
			uint64_t size = 0;

			ret = stk_dataset_find(x->ds, key, &sc->index[k]);
			if (!ret)
				ret = stk_dataset_object(x->ds, sc->index[k], NULL, &size);
			if (ret || size != sc->size) {
				fprintf(stderr, "stoker-h2d: %s: %s in the dataset %s\n", key,
					ret ? "not found" : "has the wrong size", uri);
				return ret ? ret : -EIO;
			}
		}
	}
	t0 = now();
	ret = stk_warm(x->ds);
	if (ret) {
		fprintf(stderr, "stoker-h2d: warm %s: %s (%s)\n", uri, stk_strerror(ret),
			stk_errmsg());
		return ret;
	}
	for (;;) {
		ret = stk_dataset_status(x->ds, &st);
		if (ret) {
			fprintf(stderr, "stoker-h2d: status of %s: %s (%s)\n", uri,
				stk_strerror(ret), stk_errmsg());
			return ret;
		}
		if (st.failed) {
			fprintf(stderr, "stoker-h2d: warm %s: %u objects failed: %s\n", uri,
				st.failed, stk_errmsg());
			return -EIO;
		}
		if (st.warm == STK_WARM_FULL) {
			fprintf(stderr,
				"stoker-h2d: warm %s: stokerd's RAM budget is full (%u of %u "
				"objects resident); give it more --ram\n",
				uri, st.resident, st.objects);
			return -ENOSPC;
		}
		if (st.warm == STK_WARM_DONE && st.resident == st.objects && !st.inflight)
			break;
		if (now() - t0 > 300) {
			fprintf(stderr, "stoker-h2d: warm %s: not done after 300 s\n", uri);
			return -ETIMEDOUT;
		}
		if (now() - last > 5) {
			fprintf(stderr, "stoker-h2d: warming %s: %u/%u objects resident\n", uri,
				st.resident, st.objects);
			last = now();
		}
		usleep(10000);
	}
	fprintf(stderr, "stoker-h2d: warmed %u objects (%.1f MB) in %.2f s\n", st.objects,
		(double)st.bytes / 1e6, now() - t0);
	return 0;
}

static int cuda_err(const char *what, cudaError_t e)
{
	fprintf(stderr, "stoker-h2d: %s: %s\n", what, cudaGetErrorString(e));
	return -EIO;
}

static int gpu_err(const char *what, int ret)
{
	fprintf(stderr, "stoker-h2d: %s: %s (%s)\n", what, stk_strerror(ret), stk_gpu_errmsg());
	return ret;
}

/* Allocates a size's host buffers (filled with the views' bytes) and device memory. */
static int setup_size(struct ctx *x, struct size_case *sc)
{
	size_t total = (size_t)sc->n * sc->size;
	cudaError_t e;
	unsigned k;
	int ret, w;

	for (w = 0; w < NWAYS; w++) {
		sc->gbs[w] = calloc(x->o.reps, sizeof(double));
		sc->ev_gbs[w] = calloc(x->o.reps, sizeof(double));
		if (!sc->gbs[w] || !sc->ev_gbs[w])
			return -ENOMEM;
	}
	sc->pin_ms = calloc((size_t)sc->n * (x->o.warmup + x->o.reps + 1), sizeof(double));
	sc->pageable = calloc(sc->n, sizeof(void *));
	sc->pinned = calloc(sc->n, sizeof(void *));
	if (!sc->pin_ms || !sc->pageable || !sc->pinned)
		return -ENOMEM;
	e = cudaMalloc((void **)&sc->dev, total);
	if (e != cudaSuccess)
		return cuda_err("cudaMalloc", e);
	for (k = 0; k < sc->n; k++) {
		const void *src = NULL;

		if (!x->o.no_stoker) {
			ret = stk_get(x->ds, sc->index[k], &sc->view[k]);
			if (ret) {
				fprintf(stderr, "stoker-h2d: stk_get %s: %s (%s)\n", sc->path[k],
					stk_strerror(ret), stk_errmsg());
				return ret;
			}
			if (sc->view[k].size != sc->size) {
				fprintf(stderr, "stoker-h2d: %s: view of %llu bytes, want %llu\n",
					sc->path[k], (unsigned long long)sc->view[k].size,
					(unsigned long long)sc->size);
				return -EIO;
			}
			sc->hits += !!(sc->view[k].flags & STK_VIEW_HIT);
			src = sc->view[k].data;
		}
		/* The bytes the files were written with: what every way must deliver. */
		sc->pageable[k] = malloc(sc->size);
		if (!sc->pageable[k])
			return -ENOMEM;
		fill(sc->pageable[k], sc->size, seed_of(sc, k));
		if (src && memcmp(src, sc->pageable[k], sc->size)) {
			fprintf(stderr, "stoker-h2d: %s: the view's bytes differ from the file's\n",
				sc->path[k]);
			return -EIO;
		}
		e = cudaMallocHost(&sc->pinned[k], sc->size);
		if (e != cudaSuccess)
			return cuda_err("cudaMallocHost", e);
		memcpy(sc->pinned[k], sc->pageable[k], sc->size);
	}
	return 0;
}

static void teardown_size(struct ctx *x, struct size_case *sc)
{
	unsigned k;

	for (k = 0; k < sc->n; k++) {
		if (sc->view && sc->view[k].ds) {
			if (x->stager)
				stk_gpu_unregister(x->stager, sc->view[k].data, sc->view[k].size);
			stk_release(&sc->view[k]);
			memset(&sc->view[k], 0, sizeof(sc->view[k]));
		}
		if (sc->pageable && sc->pageable[k])
			free(sc->pageable[k]);
		if (sc->pinned && sc->pinned[k])
			cudaFreeHost(sc->pinned[k]);
	}
	free(sc->pageable);
	free(sc->pinned);
	sc->pageable = sc->pinned = NULL;
	if (sc->dev)
		cudaFree(sc->dev);
	sc->dev = NULL;
}

/*
 * One pass of one way over all objects of a size.  *wall_s and *ev_ms time it;
 * when pin_ms is not NULL, the host time of each copy call that pinned a view
 * is appended there.
 */
static int pass(struct ctx *x, struct size_case *sc, enum way w, double *wall_s, float *ev_ms,
		bool record_pins)
{
	double t0, t1, c0;
	cudaError_t e;
	unsigned k;
	int ret;

	t0 = now();
	e = cudaEventRecord(x->ev0, x->stream);
	if (e != cudaSuccess)
		return cuda_err("cudaEventRecord", e);
	for (k = 0; k < sc->n; k++) {
		unsigned char *dst = sc->dev + (size_t)k * sc->size;
		struct stk_view v;

		switch (w) {
		case W_STOKER:
			c0 = now();
			ret = stk_gpu_copy_async(x->stager, dst, sc->view[k].data, sc->size);
			if (ret)
				return gpu_err("stk_gpu_copy_async", ret);
			if (record_pins)
				sc->pin_ms[sc->npin++] = (now() - c0) * 1e3;
			break;
		case W_PAGEABLE:
		case W_PINNED:
			e = cudaMemcpyAsync(dst, w == W_PINNED ? sc->pinned[k] : sc->pageable[k],
					    sc->size, cudaMemcpyHostToDevice, x->stream);
			if (e != cudaSuccess)
				return cuda_err("cudaMemcpyAsync", e);
			break;
		case W_FRESH:
			ret = stk_get(x->ds, sc->index[k], &v);
			if (ret) {
				fprintf(stderr, "stoker-h2d: stk_get %s: %s (%s)\n", sc->path[k],
					stk_strerror(ret), stk_errmsg());
				return ret;
			}
			c0 = now();
			ret = stk_gpu_copy_async(x->stager, dst, v.data, v.size);
			if (!ret && record_pins)
				sc->pin_ms[sc->npin++] = (now() - c0) * 1e3;
			if (!ret)
				ret = stk_gpu_unregister(x->stager, v.data, v.size);
			stk_release(&v);
			if (ret)
				return gpu_err("stk_gpu_copy_async/unregister", ret);
			break;
		default:
			return -EINVAL;
		}
	}
	e = cudaEventRecord(x->ev1, x->stream);
	if (e != cudaSuccess)
		return cuda_err("cudaEventRecord", e);
	e = cudaStreamSynchronize(x->stream);
	t1 = now();
	if (e != cudaSuccess)
		return cuda_err("cudaStreamSynchronize", e);
	*wall_s = t1 - t0;
	e = cudaEventElapsedTime(ev_ms, x->ev0, x->ev1);
	if (e != cudaSuccess)
		return cuda_err("cudaEventElapsedTime", e);
	return 0;
}

/* A pass into zeroed device memory, then every byte read back and compared. */
static int verified_pass(struct ctx *x, struct size_case *sc, enum way w, bool record_pins)
{
	size_t total = (size_t)sc->n * sc->size;
	cudaError_t e;
	double wall;
	float ev;
	unsigned k;
	int ret;

	e = cudaMemset(sc->dev, 0, total);
	if (e == cudaSuccess)
		e = cudaDeviceSynchronize();
	if (e != cudaSuccess)
		return cuda_err("cudaMemset", e);
	ret = pass(x, sc, w, &wall, &ev, record_pins);
	if (ret)
		return ret;
	e = cudaMemcpy(x->check, sc->dev, total, cudaMemcpyDeviceToHost);
	if (e != cudaSuccess)
		return cuda_err("cudaMemcpy (read back)", e);
	for (k = 0; k < sc->n; k++) {
		if (memcmp(x->check + (size_t)k * sc->size, sc->pageable[k], sc->size)) {
			fprintf(stderr,
				"stoker-h2d: %s, %s: the bytes on the device differ from "
				"the object's\n",
				way_name[w], sc->path[k] ? sc->path[k] : sc->label);
			return -EIO;
		}
	}
	sc->verified[w] = true;
	return 0;
}

static int record(struct ctx *x, struct size_case *sc, enum way w)
{
	double wall, bytes = (double)sc->n * (double)sc->size;
	float ev;
	int ret;

	ret = pass(x, sc, w, &wall, &ev, w == W_FRESH);
	if (ret)
		return ret;
	sc->gbs[w][sc->nsamples[w]] = bytes / wall / GB;
	sc->ev_gbs[w][sc->nsamples[w]] = ev > 0 ? bytes / ((double)ev / 1e3) / GB : 0;
	sc->nsamples[w]++;
	return 0;
}

static int measure_size(struct ctx *x, struct size_case *sc)
{
	enum way order[3] = { W_STOKER, W_PAGEABLE, W_PINNED };
	unsigned nways = x->o.no_stoker ? 2 : 3, first = x->o.no_stoker ? 1 : 0;
	unsigned r, i, k;
	int ret;

	ret = setup_size(x, sc);
	if (ret)
		return ret;
	/* Warm-up; the first pass of each way is checked byte for byte. */
	for (r = 0; r < x->o.warmup; r++) {
		for (i = 0; i < nways; i++) {
			enum way w = order[first + (i + r) % nways];
			double wall;
			float ev;

			ret = r == 0 ? verified_pass(x, sc, w, w == W_STOKER)
				     : pass(x, sc, w, &wall, &ev, false);
			if (ret)
				return ret;
			sc->ran[w] = true;
		}
	}
	/* Timed, the order rotated every repetition. */
	for (r = 0; r < x->o.reps; r++)
		for (i = 0; i < nways; i++) {
			ret = record(x, sc, order[first + (i + r) % nways]);
			if (ret)
				return ret;
		}
	if (x->o.no_stoker)
		return 0;
	/* Fresh views: the held ones are let go first. */
	for (k = 0; k < sc->n; k++) {
		ret = stk_gpu_unregister(x->stager, sc->view[k].data, sc->view[k].size);
		if (ret)
			return gpu_err("stk_gpu_unregister", ret);
		stk_release(&sc->view[k]);
		memset(&sc->view[k], 0, sizeof(sc->view[k]));
	}
	ret = verified_pass(x, sc, W_FRESH, true);
	if (ret)
		return ret;
	sc->ran[W_FRESH] = true;
	for (r = 0; r < x->o.reps; r++) {
		ret = record(x, sc, W_FRESH);
		if (ret)
			return ret;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct summary {
	double med, min, max;
};

static struct summary summarize(double *v, unsigned n)
{
	struct summary s = { 0, 0, 0 };

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

static void cpu_list(char *buf, size_t len)
{
	cpu_set_t set;
	size_t used = 0;
	int i, start = -1, n = 0;

	buf[0] = 0;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (i = 0; i <= CPU_SETSIZE; i++) {
		bool in = i < CPU_SETSIZE && CPU_ISSET(i, &set);

		if (in && start < 0)
			start = i;
		if (!in && start >= 0) {
			int w = i - 1 == start
				    ? snprintf(buf + used, len - used, "%s%d", n ? "," : "", start)
				    : snprintf(buf + used, len - used, "%s%d-%d", n ? "," : "",
					       start, i - 1);
			if (w < 0 || (size_t)w >= len - used)
				return;
			used += (size_t)w;
			n++;
			start = -1;
		}
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

struct devinfo {
	char name[256], pci[32], cpus[256];
	int driver, runtime;
};

static void report(struct ctx *x, const struct devinfo *di, bool ok, FILE *table)
{
	struct summary s[MAX_SIZES][NWAYS], ev[MAX_SIZES][NWAYS], pin[MAX_SIZES];
	unsigned i;
	int w;

	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];

		for (w = 0; w < NWAYS; w++) {
			s[i][w] = summarize(sc->gbs[w], sc->nsamples[w]);
			ev[i][w] = summarize(sc->ev_gbs[w], sc->nsamples[w]);
		}
		pin[i] = summarize(sc->pin_ms, sc->npin);
	}
	fprintf(table,
		"stoker-h2d: host-to-device copies to %s (device %d, PCI %s), driver %d.%d, "
		"runtime %d.%d; this process on CPUs %s\n"
		"GB/s = 10^9 B/s, host time from first enqueue to stream sync; median of %u "
		"passes after %u warm-up (min-max)\n\n",
		di->name, x->o.device, di->pci, di->driver / 1000, di->driver % 1000 / 10,
		di->runtime / 1000, di->runtime % 1000 / 10, di->cpus, x->o.reps, x->o.warmup);
	fprintf(table, "%-8s %4s | %-21s | %-21s | %-21s | %7s | %-21s | %s\n", "size", "objs",
		"stoker view, pinned", "pageable malloc", "cudaMallocHost", "stk/pin",
		"stoker fresh view", "pin a new view: ms (GB/s)");
	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];
		char cell[NWAYS][40], pc[64] = "-";

		for (w = 0; w < NWAYS; w++) {
			if (sc->nsamples[w])
				snprintf(cell[w], sizeof(cell[w]), "%6.2f (%.2f-%.2f)", s[i][w].med,
					 s[i][w].min, s[i][w].max);
			else
				snprintf(cell[w], sizeof(cell[w]), "-");
		}
		if (sc->npin)
			snprintf(pc, sizeof(pc), "%.3f (%.1f), max %.3f", pin[i].med,
				 (double)sc->size / (pin[i].med / 1e3) / GB, pin[i].max);
		fprintf(table, "%-8s %4u | %-21s | %-21s | %-21s | ", sc->label, sc->n,
			cell[W_STOKER], cell[W_PAGEABLE], cell[W_PINNED]);
		if (sc->nsamples[W_STOKER] && s[i][W_PINNED].med > 0)
			fprintf(table, "%7.2f | ", s[i][W_STOKER].med / s[i][W_PINNED].med);
		else
			fprintf(table, "%7s | ", "-");
		fprintf(table, "%-21s | %s\n", cell[W_FRESH], pc);
	}
	fprintf(
	    table,
	    "\nstoker view, pinned: stk_gpu_copy_async() from views held across passes (each\n"
	    "registered once, in warm-up); stoker fresh view: per object stk_get, pin, copy,\n"
	    "stk_gpu_unregister (waits for the copy), stk_release; pin a new view: host time of\n"
	    "the stk_gpu_copy_async() call that registered it (fault-in + cudaHostRegister).\n"
	    "Bytes checked on the device for every way: %s.\n",
	    ok ? "all equal" : "FAILED (see above)");

	if (!x->o.json)
		return;
	printf("{\"tool\":\"stoker-h2d\",\"ok\":%s,\"device\":{\"index\":%d,\"name\":",
	       ok ? "true" : "false", x->o.device);
	json_str(stdout, di->name);
	printf(",\"pci\":");
	json_str(stdout, di->pci);
	printf(",\"driver\":%d,\"runtime\":%d},\"cpus\":", di->driver, di->runtime);
	json_str(stdout, di->cpus);
	printf(",\"reps\":%u,\"warmup\":%u,\"gb\":1e9,\"timing\":\"host clock, first enqueue "
	       "to cudaStreamSynchronize return; event_gb_s from CUDA events\",\"results\":[",
	       x->o.reps, x->o.warmup);
	for (i = 0; i < x->nsc; i++) {
		struct size_case *sc = &x->sc[i];
		bool first = true;

		printf("%s{\"label\":", i ? "," : "");
		json_str(stdout, sc->label);
		printf(",\"size\":%llu,\"objects\":%u,\"bytes_per_pass\":%llu",
		       (unsigned long long)sc->size, sc->n, (unsigned long long)sc->size * sc->n);
		if (!x->o.no_stoker)
			printf(",\"view_hits\":%u", sc->hits);
		printf(",\"ways\":{");
		for (w = 0; w < NWAYS; w++) {
			if (!sc->ran[w])
				continue;
			printf("%s\"%s\":{\"gb_s\":%.4f,\"gb_s_min\":%.4f,\"gb_s_max\":%.4f,"
			       "\"event_gb_s\":%.4f,\"passes\":%u,\"verified\":%s}",
			       first ? "" : ",", way_name[w], s[i][w].med, s[i][w].min, s[i][w].max,
			       ev[i][w].med, sc->nsamples[w], sc->verified[w] ? "true" : "false");
			first = false;
		}
		printf("}");
		if (sc->nsamples[W_STOKER] && s[i][W_PINNED].med > 0)
			printf(",\"stoker_over_pinned\":%.4f,\"stoker_over_pageable\":%.4f",
			       s[i][W_STOKER].med / s[i][W_PINNED].med,
			       s[i][W_PAGEABLE].med > 0 ? s[i][W_STOKER].med / s[i][W_PAGEABLE].med
							: 0);
		if (sc->npin)
			printf(",\"pin\":{\"ms_median\":%.4f,\"ms_min\":%.4f,\"ms_max\":%.4f,"
			       "\"gb_s\":%.4f,\"samples\":%u}",
			       pin[i].med, pin[i].min, pin[i].max,
			       (double)sc->size / (pin[i].med / 1e3) / GB, sc->npin);
		printf("}");
	}
	printf("]}\n");
}

static void devinfo_fill(struct ctx *x, struct devinfo *di)
{
	struct cudaDeviceProp p;

	memset(di, 0, sizeof(*di));
	snprintf(di->name, sizeof(di->name), "?");
	snprintf(di->pci, sizeof(di->pci), "?");
	if (cudaGetDeviceProperties(&p, x->o.device) == cudaSuccess)
		snprintf(di->name, sizeof(di->name), "%s", p.name);
	if (cudaDeviceGetPCIBusId(di->pci, sizeof(di->pci), x->o.device) != cudaSuccess)
		snprintf(di->pci, sizeof(di->pci), "?");
	if (cudaDriverGetVersion(&di->driver) != cudaSuccess)
		di->driver = 0;
	if (cudaRuntimeGetVersion(&di->runtime) != cudaSuccess)
		di->runtime = 0;
	(void)cudaGetLastError();
	cpu_list(di->cpus, sizeof(di->cpus));
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
	devinfo_fill(x, &di);
	ret = stk_gpu_stager_create(x->o.device, x->stream, &x->stager);
	if (ret) {
		gpu_err("stk_gpu_stager_create", ret);
		return 1;
	}
	if (!x->o.no_stoker) {
		ret = make_data(x);
		if (!ret)
			ret = open_dataset(x);
		if (ret)
			goto out;
	}
	for (i = 0; i < x->nsc && !ret; i++) {
		fprintf(stderr, "stoker-h2d: %s: %u objects ...\n", x->sc[i].label, x->sc[i].n);
		ret = measure_size(x, &x->sc[i]);
		teardown_size(x, &x->sc[i]);
	}
out:
	stk_gpu_stager_destroy(x->stager);
	x->stager = NULL;
	report(x, &di, ret == 0, x->o.json ? stderr : stdout);
	stk_dataset_close(x->ds);
	stk_close(x->client);
	if (!x->o.keep_data)
		remove_data(x);
	cudaEventDestroy(x->ev0);
	cudaEventDestroy(x->ev1);
	cudaStreamDestroy(x->stream);
	return ret ? 1 : 0;
}

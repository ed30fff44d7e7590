/* SPDX-License-Identifier: MIT */
/*
 * stoker-h2d's measurement core: the dataset's files, warming them in stokerd,
 * and the timed host-to-device passes of every way (see h2d.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h2d.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
int h2d_make_data(struct ctx *x)
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

void h2d_remove_data(struct ctx *x)
{
	unsigned i, k;

	for (i = 0; i < x->nsc; i++)
		for (k = 0; k < x->sc[i].n; k++)
			if (x->sc[i].path && x->sc[i].path[k] && x->sc[i].created[k])
				unlink(x->sc[i].path[k]);
}

/* Opens file://DIR/, warms it and finds every object's index. */
int h2d_open_dataset(struct ctx *x)
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
	/* Before the first get: every segment is registered as it is mapped. */
	if (!x->o.per_view_pin) {
		ret = stk_gpu_pin_arena(x->client, x->o.device);
		if (ret)
			return gpu_err("stk_gpu_pin_arena", ret);
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

void h2d_teardown_size(struct ctx *x, struct size_case *sc)
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
				h2d_way_name[w], sc->path[k] ? sc->path[k] : sc->label);
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

int h2d_measure_size(struct ctx *x, struct size_case *sc)
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

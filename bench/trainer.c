/* SPDX-License-Identifier: MIT */
/*
 * The simulated trainer: N steps, B objects a step, a sleep for compute.
 * The direct reader is what a naive loader does (open, read into a private
 * buffer); the stoker reader submits the whole access order as a plan and
 * then gets zero-copy views.  Both hash every byte they obtain, so the bytes
 * are really read in both modes and the two runs can be checked against
 * each other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stoker.h>

#include "bench.h"

/* --- dataset listing --- */

static int cmp_file(const void *x, const void *y)
{
	const struct bench_file *a = x, *b = y;

	return strcmp(a->rel, b->rel);
}

static int add_file(struct bench_dataset *ds, size_t *cap, const char *rel, const char *path,
		    uint64_t size)
{
	struct bench_file *f;

	if (ds->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;

		f = realloc(ds->files, ncap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		ds->files = f;
		*cap = ncap;
	}
	f = &ds->files[ds->count];
	f->rel = strdup(rel);
	f->path = strdup(path);
	if (!f->rel || !f->path) {
		free(f->rel);
		free(f->path);
		return -ENOMEM;
	}
	f->size = size;
	ds->count++;
	ds->bytes += size;
	if (size > ds->max_size)
		ds->max_size = size;
	return 0;
}

/* Walks dir/rel recursively without following symlinks. */
static int walk(struct bench_dataset *ds, size_t *cap, const char *rel)
{
	char path[4096], sub[4096];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int ret = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s%s%s", ds->dir, *rel ? "/" : "", rel) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: cannot list %s: %s\n", path, strerror(-ret));
		return ret;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
				     de->d_name) >= sizeof(sub)) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			fprintf(stderr, "stoker-bench: cannot stat %s/%s: %s\n", path, de->d_name,
				strerror(-ret));
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			ret = walk(ds, cap, sub);
		} else if (S_ISREG(st.st_mode)) {
			char full[4096];

			if ((size_t)snprintf(full, sizeof(full), "%s/%s", ds->dir, sub) >=
			    sizeof(full)) {
				ret = -ENAMETOOLONG;
				goto out;
			}
			ret = add_file(ds, cap, sub, full, (uint64_t)st.st_size);
		}
		if (ret)
			goto out;
	}
out:
	closedir(d);
	return ret;
}

int bench_dataset_load(const char *dir, struct bench_dataset *ds)
{
	size_t cap = 0;
	int ret;

	memset(ds, 0, sizeof(*ds));
	ds->dir = realpath(dir, NULL);
	if (!ds->dir) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: dataset %s: %s\n", dir, strerror(-ret));
		return ret;
	}
	ret = walk(ds, &cap, "");
	if (ret)
		goto err;
	if (!ds->count) {
		fprintf(stderr, "stoker-bench: dataset %s holds no regular files\n", ds->dir);
		ret = -ENOENT;
		goto err;
	}
	if (ds->count > UINT32_MAX) {
		ret = -EOVERFLOW;
		goto err;
	}
	qsort(ds->files, ds->count, sizeof(*ds->files), cmp_file);
	return 0;
err:
	bench_dataset_free(ds);
	return ret;
}

void bench_dataset_free(struct bench_dataset *ds)
{
	if (!ds)
		return;
	for (size_t i = 0; i < ds->count; i++) {
		free(ds->files[i].rel);
		free(ds->files[i].path);
	}
	free(ds->files);
	free(ds->dir);
	memset(ds, 0, sizeof(*ds));
}

int bench_dataset_drop_cache(const struct bench_dataset *ds)
{
	int first = 0;

	for (size_t i = 0; i < ds->count; i++) {
		int fd = open(ds->files[i].path, O_RDONLY | O_CLOEXEC);
		int ret;

		if (fd < 0) {
			if (!first)
				first = -errno;
			continue;
		}
		ret = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (ret && !first)
			first = -ret;
		close(fd);
	}
	return first;
}

/* --- result helpers --- */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* Sorts v in place and fills the per-step percentiles. */
static void step_stats(double *v, size_t n, struct bench_result *r)
{
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_double);
	r->step_p50_ms = v[n / 2] * 1e3;
	r->step_p99_ms = v[(size_t)((double)(n - 1) * 0.99)] * 1e3;
	r->step_max_ms = v[n - 1] * 1e3;
}

int bench_steps_alloc(struct bench_steps *s, size_t n)
{
	size_t m = n ? n : 1;

	memset(s, 0, sizeof(*s));
	s->start_s = calloc(m, sizeof(*s->start_s));
	s->wait_s = calloc(m, sizeof(*s->wait_s));
	s->compute_s = calloc(m, sizeof(*s->compute_s));
	s->bytes = calloc(m, sizeof(*s->bytes));
	if (!s->start_s || !s->wait_s || !s->compute_s || !s->bytes) {
		bench_steps_free(s);
		return -ENOMEM;
	}
	return 0;
}

void bench_steps_free(struct bench_steps *s)
{
	if (!s)
		return;
	free(s->start_s);
	free(s->wait_s);
	free(s->compute_s);
	free(s->bytes);
	memset(s, 0, sizeof(*s));
}

/*
 * Ends step s, which began at t0 (t_start: the run's start) and waited until
 * t1 for its batch of bytes: records it, computes (sleeps compute_ms) and
 * records how long that took.  Returns 0, or -EINTR when bench_stop is set.
 */
static int end_step(struct bench_result *r, double *step, unsigned long s, double t_start,
		    double t0, double t1, uint64_t bytes, double compute_ms)
{
	struct bench_steps *st = &r->steps;
	int ret;

	step[s] = t1 - t0;
	r->stall_s += step[s];
	st->start_s[s] = t0 - t_start;
	st->wait_s[s] = step[s];
	st->bytes[s] = bytes;
	st->n = s + 1;
	ret = bench_sleep(compute_ms / 1e3);
	st->compute_s[s] = bench_now() - t1;
	return ret;
}

/* --- direct reader --- */

/*
 * Reads one file the way a naive loader does, paying the emulated backend's
 * costs itself so the A/B comparison is fair: latency before the first byte,
 * then pacing so that bytes/elapsed never exceeds the cap (one reader at a
 * time, so a per-read pace is the whole budget).
 */
static int read_file(const struct bench_file *f, unsigned char *buf, const struct bench_emul *em)
{
	const size_t chunk = em->bandwidth_mb_s > 0 ? 256 * 1024 : 8u << 20;
	uint64_t off = 0;
	double t0;
	int fd, ret = 0;

	if (em->latency_ms > 0 && (ret = bench_sleep(em->latency_ms / 1e3)))
		return ret;
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: direct: open %s: %s\n", f->path, strerror(-ret));
		return ret;
	}
	t0 = bench_now();
	while (off < f->size) {
		size_t want = f->size - off < chunk ? (size_t)(f->size - off) : chunk;
		ssize_t n = read(fd, buf + off, want);

		if (n < 0) {
			if (errno == EINTR && !bench_stop)
				continue;
			ret = -errno;
			fprintf(stderr, "stoker-bench: direct: read %s: %s\n", f->path,
				strerror(-ret));
			goto out;
		}
		if (n == 0) {
			fprintf(stderr, "stoker-bench: direct: %s shrank below %llu bytes\n",
				f->path, (unsigned long long)f->size);
			ret = -EIO;
			goto out;
		}
		off += (uint64_t)n;
		if (em->bandwidth_mb_s > 0) {
			ret = bench_sleep_until(t0 + (double)off / (em->bandwidth_mb_s * BENCH_MB));
			if (ret)
				goto out;
		}
	}
out:
	close(fd);
	return ret;
}

int bench_run_direct(const struct bench_dataset *ds, const struct bench_run_cfg *rc,
		     struct bench_result *r)
{
	unsigned char *buf = NULL;
	double *step = NULL;
	double t_start;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	buf = malloc(ds->max_size ? ds->max_size : 1);
	step = calloc(rc->steps ? rc->steps : 1, sizeof(*step));
	if (!buf || !step || bench_steps_alloc(&r->steps, rc->steps)) {
		ret = -ENOMEM;
		goto out;
	}
	/* The host backs RAM lazily and a first touch runs ~10x slower than
	 * later ones; a loader reuses its buffer, so touch it before timing. */
	memset(buf, 0, ds->max_size ? ds->max_size : 1);

	t_start = bench_now();
	for (unsigned long s = 0; s < rc->steps; s++) {
		double t0 = bench_now();
		uint64_t bytes = 0;

		for (unsigned long j = 0; j < rc->batch; j++) {
			const struct bench_file *f = &ds->files[rc->order[s * rc->batch + j]];

			ret = read_file(f, buf, &rc->emul);
			if (ret)
				goto out;
			r->checksum += bench_touch(buf, f->size);
			bytes += f->size;
			r->objects++;
		}
		r->bytes += bytes;
		ret = end_step(r, step, s, t_start, t0, bench_now(), bytes, rc->compute_ms);
		if (ret)
			goto out;
	}
	r->wall_s = bench_now() - t_start;
	step_stats(step, rc->steps, r);
out:
	free(step);
	free(buf);
	return ret;
}

/* --- stoker reader --- */

int bench_open_dataset(const struct bench_dataset *ds, const char *sock, struct stk_client **c,
		       struct stk_dataset **d)
{
	struct stk_connect_opts opts = { .opts_size = sizeof(opts), .socket_path = sock };
	char uri[4200];
	int ret;

	*c = NULL;
	*d = NULL;
	ret = stk_connect(&opts, c);
	if (ret) {
		fprintf(stderr, "stoker-bench: cannot connect to stokerd at %s: %s %s\n",
			sock ? sock : "(default socket)", stk_strerror(ret), stk_errmsg());
		return ret;
	}
	if ((size_t)snprintf(uri, sizeof(uri), "file://%s/", ds->dir) >= sizeof(uri)) {
		ret = -ENAMETOOLONG;
		goto err;
	}
	ret = stk_dataset_open(*c, uri, 0, d);
	if (ret) {
		fprintf(stderr, "stoker-bench: stk_dataset_open(%s): %s %s\n", uri,
			stk_strerror(ret), stk_errmsg());
		goto err;
	}
	return 0;
err:
	stk_close(*c);
	*c = NULL;
	return ret;
}

/*
 * Maps our index (struct bench_dataset, strcmp order) to the daemon's, by
 * key, so both modes read the same objects in the same order whatever order
 * the daemon lists them in.  The daemon's key may be the relative path or a
 * full URI; both are tried.
 */
int bench_map_indices(const struct bench_dataset *ds, struct stk_dataset *d, uint32_t **out)
{
	size_t n = stk_dataset_count(d);
	uint32_t *map;
	int ret = 0;

	if (n != ds->count) {
		fprintf(stderr,
			"stoker-bench: the daemon lists %zu objects in %s, the bench %zu files\n",
			n, ds->dir, ds->count);
		return -EINVAL;
	}
	map = malloc(n * sizeof(*map));
	if (!map)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char uri[4200];
		size_t idx;
		uint64_t size;

		ret = stk_dataset_find(d, ds->files[i].rel, &idx);
		if (ret == -ENOENT && (size_t)snprintf(uri, sizeof(uri), "file://%s",
						       ds->files[i].path) < sizeof(uri))
			ret = stk_dataset_find(d, uri, &idx);
		if (ret) {
			fprintf(stderr, "stoker-bench: the daemon's dataset has no key %s: %s\n",
				ds->files[i].rel, stk_strerror(ret));
			goto err;
		}
		ret = stk_dataset_object(d, idx, NULL, &size);
		if (ret || size != ds->files[i].size) {
			fprintf(stderr,
				"stoker-bench: %s: the daemon says %llu bytes, the file has %llu\n",
				ds->files[i].rel, (unsigned long long)size,
				(unsigned long long)ds->files[i].size);
			ret = ret ? ret : -EINVAL;
			goto err;
		}
		map[i] = (uint32_t)idx;
	}
	*out = map;
	return 0;
err:
	free(map);
	return ret;
}

/*
 * The run's totals from stk_stats() on the trainer's own connection, taken
 * after the last get: the library sends the waits it has not yet reported
 * before it asks, so the self_* stall figures cover every get of the run.
 */
static void fetch_stats(struct stk_client *c, struct bench_result *r)
{
	struct stk_stats st = { .size = sizeof(st) };

	if (stk_stats(c, &st))
		return;
	r->have_stats = true;
	r->client_gets = st.client_gets;
	r->client_hits = st.client_hits;
	r->d_fetches = st.fetches;
	r->d_prefetches = st.prefetches;
	r->d_fetch_bytes = st.fetch_bytes;
	r->d_evictions = st.evictions;
	r->d_fetch_errors = st.fetch_errors;
	r->d_fetch_s = (double)st.fetch_ns / 1e9;
	r->self_stall_s = (double)st.self_stall_ns / 1e9;
	r->self_stall_fetch_s = (double)st.self_stall_fetch_ns / 1e9;
	r->self_stall_avoided_s = (double)st.self_stall_avoided_ns / 1e9;
	r->d_stall_avoided_model_s = (double)st.stall_avoided_model_ns / 1e9;
	r->d_waits = st.waits;
	r->d_delivered_bytes = st.delivered_bytes;
}

int bench_run_stoker(const struct bench_dataset *ds, const struct bench_run_cfg *rc,
		     const char *sock, struct bench_result *r)
{
	struct stk_dataset_status dst;
	struct stk_client *c = NULL;
	struct stk_dataset *d = NULL;
	size_t n = rc->steps * rc->batch;
	uint32_t *map = NULL, *plan = NULL;
	double *step = NULL;
	double t_start, t0;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = bench_open_dataset(ds, sock, &c, &d);
	if (ret)
		return ret;
	ret = bench_map_indices(ds, d, &map);
	if (ret)
		goto out;
	plan = malloc(n * sizeof(*plan));
	step = calloc(rc->steps ? rc->steps : 1, sizeof(*step));
	if (!plan || !step || bench_steps_alloc(&r->steps, rc->steps)) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		plan[i] = map[rc->order[i]];
	if (!stk_dataset_status(d, &dst))
		r->resident_at_start = dst.resident;

	/* The plan is on the trainer's critical path (it is sent before the
	 * first batch), so its time counts in step 0's stall. */
	t_start = t0 = bench_now();
	ret = stk_plan(d, plan, n);
	if (ret) {
		fprintf(stderr, "stoker-bench: stk_plan(%zu indices): %s %s\n", n,
			stk_strerror(ret), stk_errmsg());
		goto out;
	}
	r->plan_s = bench_now() - t0;
	for (unsigned long s = 0; s < rc->steps; s++) {
		uint64_t bytes = 0;

		if (s)
			t0 = bench_now();
		for (unsigned long j = 0; j < rc->batch; j++) {
			size_t idx = plan[s * rc->batch + j];
			struct stk_view v;

			if (bench_stop) {
				ret = -EINTR;
				goto out;
			}
			ret = stk_get(d, idx, &v);
			if (ret) {
				fprintf(stderr, "stoker-bench: stk_get(%zu) at step %lu: %s %s\n",
					idx, s, stk_strerror(ret), stk_errmsg());
				goto out;
			}
			r->checksum += bench_touch(v.data, v.size);
			bytes += v.size;
			r->objects++;
			r->get_wait_s += (double)v.wait_ns / 1e9;
			if (v.flags & STK_VIEW_HIT)
				r->hits++;
			stk_release(&v);
		}
		r->bytes += bytes;
		ret = end_step(r, step, s, t_start, t0, bench_now(), bytes, rc->compute_ms);
		if (ret)
			goto out;
	}
	r->wall_s = bench_now() - t_start;
	step_stats(step, rc->steps, r);
	fetch_stats(c, r);
out:
	free(step);
	free(plan);
	free(map);
	stk_dataset_close(d);
	stk_close(c);
	return ret;
}

/*
 * Asks the daemon to warm d and polls until it is done, stopped by the
 * budget, or every object has either arrived or failed.  Gives up after 60 s
 * without progress.  *st holds the last status.
 */
int bench_warm_wait(struct stk_dataset *d, double *seconds, struct stk_dataset_status *st)
{
	uint64_t last_bytes = 0;
	double t0, last_progress;
	int ret;

	t0 = last_progress = bench_now();
	ret = stk_warm(d);
	if (ret) {
		fprintf(stderr, "stoker-bench: stk_warm: %s %s\n", stk_strerror(ret), stk_errmsg());
		return ret;
	}
	for (;;) {
		double now;

		ret = stk_dataset_status(d, st);
		if (ret) {
			fprintf(stderr, "stoker-bench: stk_dataset_status: %s %s\n",
				stk_strerror(ret), stk_errmsg());
			return ret;
		}
		now = bench_now();
		if (st->warm == STK_WARM_DONE || st->warm == STK_WARM_FULL)
			break;
		if (st->failed && st->resident + st->failed >= st->objects && !st->inflight) {
			fprintf(stderr, "stoker-bench: warm: %u of %u objects failed to fetch\n",
				st->failed, st->objects);
			*seconds = now - t0;
			return -EIO;
		}
		if (st->resident_bytes != last_bytes) {
			last_bytes = st->resident_bytes;
			last_progress = now;
		} else if (now - last_progress > 60) {
			fprintf(stderr,
				"stoker-bench: warm made no progress for 60 s (%u/%u resident, "
				"state %u)\n",
				st->resident, st->objects, st->warm);
			return -ETIMEDOUT;
		}
		/* Polls are a round trip (~60 us) each: 1 ms keeps the timing
		 * error small without loading the daemon. */
		ret = bench_sleep(0.001);
		if (ret)
			return ret;
	}
	*seconds = bench_now() - t0;
	if (st->failed)
		fprintf(stderr, "stoker-bench: warm: %u objects failed to fetch\n", st->failed);
	return 0;
}

int bench_run_warm(const struct bench_dataset *ds, const char *sock, struct bench_warm *w)
{
	struct stk_dataset_status st;
	struct stk_client *c = NULL;
	struct stk_dataset *d = NULL;
	int ret;

	memset(w, 0, sizeof(*w));
	ret = bench_open_dataset(ds, sock, &c, &d);
	if (ret)
		return ret;
	if (!stk_dataset_status(d, &st) && st.resident)
		fprintf(stderr,
			"stoker-bench: warning: %u objects were already resident; "
			"this is not a cold warm\n",
			st.resident);
	ret = bench_warm_wait(d, &w->seconds, &st);
	w->bytes = st.resident_bytes;
	w->objects = st.objects;
	w->resident = st.resident;
	w->failed = st.failed;
	w->state = st.warm;
	struct stk_stats s;
	if (!stk_stats(c, &s))
		w->promoted = s.nvme_reads;
	stk_dataset_close(d);
	stk_close(c);
	return ret;
}

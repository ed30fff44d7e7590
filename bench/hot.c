/* SPDX-License-Identifier: MIT */
/*
 * Hot delivery: how fast one thread gets objects that are already resident
 * in stokerd's RAM, singly and in batches, next to two references measured
 * in the same run on the same bytes: the bench's hash over private memory
 * (the ceiling: no delivery at all) and a plain open/read/close loop over the
 * same files from the kernel's page cache (what a user has without stoker).
 * See README.md, "--hot".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stoker.h>

#include "bench.h"

/*
 * A batched get holds all its views at once, and the daemon refuses a
 * client more than --client-max-pinned bytes of held objects (by default
 * half its --ram), so a batch of large objects is cut to this many bytes
 * (but never below one object).
 */
#define BATCH_MAX_BYTES (256ull << 20)

/* A loop reads the clock after about this many bytes of objects (at least
 * one step), so the clock costs < 1% even of hashing 4 KiB private copies. */
#define CLOCK_EVERY_BYTES (256u << 10)

/* The order of one round: stoker and references alternate; odd rounds run it
 * backwards, so a slow drift of the machine favours neither side. */
static const enum bench_hot_kind round_order[] = {
	BENCH_HOT_STREAM,    BENCH_HOT_PRIVATE,	     BENCH_HOT_GETS,
	BENCH_HOT_PAGECACHE, BENCH_HOT_BATCH_STREAM, BENCH_HOT_BATCH_GETS,
};

struct hot {
	const struct bench_dataset *ds;
	struct stk_dataset *d;
	struct bench_hot_size *h;
	uint32_t *map;		     /* our index -> the daemon's */
	uint32_t *order;	     /* a seeded shuffle of our indices; every loop walks it */
	unsigned char *priv;	     /* private copies: object i at i * size */
	unsigned char *buf;	     /* the page-cache loop's one reused buffer */
	uint32_t *bidx;		     /* a batch's daemon indices */
	struct stk_view *bviews;     /* and its views */
	size_t pos[BENCH_HOT_KINDS]; /* where each timed loop goes on in order */
	uint64_t sink;
};

/* --- the dataset --- */

int bench_hot_make_dataset(const char *dir, uint64_t size, uint32_t count, uint64_t seed)
{
	const size_t chunk = 1u << 20;
	char tmp[4096], path[4200];
	unsigned char *buf = NULL;
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (!mkdtemp(tmp)) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: mkdtemp %s: %s\n", tmp, strerror(-ret));
		return ret;
	}
	/* A daemon of another user (--socket) must be able to list it. */
	chmod(tmp, 0755);
	buf = malloc(chunk);
	if (!buf) {
		ret = -ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (bench_stop) {
			ret = -EINTR;
			goto err;
		}
		snprintf(path, sizeof(path), "%s/obj-%06u.bin", tmp, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			ret = -errno;
			fprintf(stderr, "stoker-bench: create %s: %s\n", path, strerror(-ret));
			goto err;
		}
		ret = bench_write_random(fd, path, size,
					 seed * 0x100000001b3ull ^ size * 0x9e3779b97f4a7c15ull ^ i,
					 buf, chunk);
		if (ret) {
			close(fd);
			goto err;
		}
		close(fd);
	}
	/* One sync for all files (20,000 fsyncs would take minutes), so that
	 * writeback does not compete with the measurements; the pages stay
	 * in the page cache. */
	fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: sync %s: %s\n", tmp, strerror(-ret));
		if (fd >= 0)
			close(fd);
		goto err;
	}
	close(fd);
	if (rename(tmp, dir) < 0) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: rename %s to %s: %s\n", tmp, dir, strerror(-ret));
		goto err;
	}
	free(buf);
	return 0;
err:
	free(buf);
	bench_rmtree(tmp);
	return ret;
}

/* --- one step of each loop --- */

/* Reads all of f into dst. */
static int read_whole(const struct bench_file *f, unsigned char *dst)
{
	uint64_t off = 0;
	int fd, ret = 0;

	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "stoker-bench: hot: open %s: %s\n", f->path, strerror(-ret));
		return ret;
	}
	while (off < f->size) {
		ssize_t n = read(fd, dst + off, (size_t)(f->size - off));

		if (n < 0 && errno == EINTR && !bench_stop)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			fprintf(stderr, "stoker-bench: hot: read %s: %s\n", f->path,
				n < 0 ? strerror(-ret) : "shorter than when listed");
			break;
		}
		off += (uint64_t)n;
	}
	close(fd);
	return ret;
}

static void count_view(struct hot *t, const struct stk_view *v, bool hash, struct bench_rate *r,
		       uint64_t *sum)
{
	t->h->gets++;
	if (v->flags & STK_VIEW_HIT)
		t->h->hits++;
	if (hash)
		*sum += bench_touch(v->data, v->size);
	r->items++;
	r->bytes += v->size;
}

static int step_get(struct hot *t, uint32_t obj, bool hash, struct bench_rate *r, uint64_t *sum)
{
	struct stk_view v;
	int ret;

	ret = stk_get(t->d, t->map[obj], &v);
	if (ret) {
		fprintf(stderr, "stoker-bench: hot: stk_get(%s): %s %s\n", t->ds->files[obj].rel,
			stk_strerror(ret), stk_errmsg());
		return ret;
	}
	count_view(t, &v, hash, r, sum);
	stk_release(&v);
	return 0;
}

#ifdef STK_HAVE_GET_BATCH
/* Gets n objects from order[pos] on (n <= count, so no index repeats). */
static int step_batch(struct hot *t, size_t pos, size_t n, bool hash, struct bench_rate *r,
		      uint64_t *sum)
{
	int ret;

	for (size_t j = 0; j < n; j++)
		t->bidx[j] = t->map[t->order[(pos + j) % t->h->count]];
	ret = stk_get_batch(t->d, t->bidx, n, t->bviews);
	if (ret) {
		fprintf(stderr, "stoker-bench: hot: stk_get_batch(%zu objects from %s): %s %s\n", n,
			t->ds->files[t->order[pos % t->h->count]].rel, stk_strerror(ret),
			stk_errmsg());
		return ret;
	}
	for (size_t j = 0; j < n; j++)
		count_view(t, &t->bviews[j], hash, r, sum);
	stk_release_batch(t->bviews, n);
	return 0;
}
#endif

/*
 * One step of loop k from order[pos] on: one object, or for the batched
 * loops min(batch, max) objects.  Adds the objects and their bytes to *r
 * and the hashes of the bytes it read to *sum.  Returns 0 or -errno (printed).
 */
static int step(struct hot *t, enum bench_hot_kind k, size_t pos, size_t max, struct bench_rate *r,
		uint64_t *sum)
{
	const uint32_t obj = t->order[pos % t->h->count];
	const uint64_t size = t->h->size;
	int ret;

	switch (k) {
	case BENCH_HOT_GETS:
	case BENCH_HOT_STREAM:
		return step_get(t, obj, k == BENCH_HOT_STREAM, r, sum);
	case BENCH_HOT_BATCH_GETS:
	case BENCH_HOT_BATCH_STREAM:
#ifdef STK_HAVE_GET_BATCH
		return step_batch(t, pos, t->h->batch < max ? t->h->batch : max,
				  k == BENCH_HOT_BATCH_STREAM, r, sum);
#else
		return -ENOTSUP;
#endif
	case BENCH_HOT_PRIVATE:
		*sum += bench_touch(t->priv + (size_t)obj * size, size);
		break;
	case BENCH_HOT_PAGECACHE:
		ret = read_whole(&t->ds->files[obj], t->buf);
		if (ret)
			return ret;
		*sum += bench_touch(t->buf, size);
		break;
	default:
		return -EINVAL;
	}
	r->items++;
	r->bytes += size;
	return 0;
}

/* One untimed pass of loop k over every object once; *sum is the
 * order-independent sum of the objects' hashes. */
static int pass(struct hot *t, enum bench_hot_kind k, uint64_t *sum)
{
	struct bench_rate r = { 0 };
	int ret;

	*sum = 0;
	while (r.items < t->h->count) {
		if (bench_stop)
			return -EINTR;
		ret = step(t, k, (size_t)r.items, t->h->count - (size_t)r.items, &r, sum);
		if (ret)
			return ret;
	}
	return 0;
}

/* Loop k for cfg->seconds, going on in order where its last run stopped. */
static int timed(struct hot *t, enum bench_hot_kind k, double seconds, struct bench_rate *r)
{
	bool batched = k == BENCH_HOT_BATCH_GETS || k == BENCH_HOT_BATCH_STREAM;
	uint64_t step_bytes = t->h->size * (batched ? t->h->batch : 1);
	uint64_t every = step_bytes >= CLOCK_EVERY_BYTES ? 1 : CLOCK_EVERY_BYTES / step_bytes;
	uint64_t sum = 0, before;
	double t0, now;
	int ret;

	memset(r, 0, sizeof(*r));
	t0 = now = bench_now();
	for (uint64_t i = 1;; i++) {
		before = r->items;
		ret = step(t, k, t->pos[k], t->h->count, r, &sum);
		if (ret)
			return ret;
		t->pos[k] = (t->pos[k] + (size_t)(r->items - before)) % t->h->count;
		if (i % every)
			continue;
		now = bench_now();
		if (now - t0 >= seconds)
			break;
		if (bench_stop)
			return -EINTR;
	}
	r->seconds = now - t0;
	t->sink += sum;
	return 0;
}

/* --- one size --- */

static bool kind_runs(const struct bench_hot_size *h, enum bench_hot_kind k)
{
	return h->have_batch || (k != BENCH_HOT_BATCH_GETS && k != BENCH_HOT_BATCH_STREAM);
}

/*
 * Fills the private copies and checks that every way of reading delivers
 * the same bytes (h->checksums_match): one untimed pass each, which is also
 * what touches every page of the buffers, the page cache and the views'
 * memory before timing.
 */
static int prepare(struct hot *t)
{
	struct bench_hot_size *h = t->h;
	static const enum bench_hot_kind checked[] = {
		BENCH_HOT_PAGECACHE,
		BENCH_HOT_PRIVATE,
		BENCH_HOT_STREAM,
		BENCH_HOT_BATCH_STREAM,
	};
	int ret;

	/* Reading the private copies also brings the files back into the
	 * page cache if they were dropped (a dataset kept from an earlier run). */
	memset(t->buf, 0, h->size);
	for (uint32_t i = 0; i < h->count; i++) {
		if (bench_stop)
			return -EINTR;
		ret = read_whole(&t->ds->files[i], t->priv + (size_t)i * h->size);
		if (ret)
			return ret;
	}
	h->checksums_match = true;
	for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
		if (!kind_runs(h, checked[i]))
			continue;
		ret = pass(t, checked[i], &h->checksum[checked[i]]);
		if (ret)
			return ret;
		if (h->checksum[checked[i]] != h->checksum[checked[0]])
			h->checksums_match = false;
	}
	if (!h->checksums_match)
		fprintf(stderr,
			"stoker-bench: hot: CHECKSUM MISMATCH for %u objects of %llu bytes: "
			"stoker delivered other bytes than the files hold\n",
			h->count, (unsigned long long)h->size);
	return 0;
}

int bench_run_hot_size(const struct bench_dataset *ds, const char *sock,
		       const struct bench_hot_cfg *cfg, struct bench_hot_size *h)
{
	struct hot t = { .ds = ds, .h = h };
	struct stk_dataset_status st;
	struct stk_client *c = NULL;
	size_t privsz;
	int ret;

	h->gets = h->hits = 0;
	h->rounds = 0;
	memset(h->checksum, 0, sizeof(h->checksum));
	h->batch = cfg->batch ? cfg->batch : 1;
	if (h->batch > h->count)
		h->batch = h->count;
	if (h->batch > 1 && (uint64_t)h->batch * h->size > BATCH_MAX_BYTES)
		h->batch = h->size >= BATCH_MAX_BYTES ? 1 : (unsigned)(BATCH_MAX_BYTES / h->size);
#ifdef STK_HAVE_GET_BATCH
	h->have_batch = true;
#else
	h->have_batch = false;
#endif
	if (ds->count != h->count || h->size == 0 || h->count == 0 ||
	    h->size > SIZE_MAX / h->count) {
		fprintf(stderr, "stoker-bench: hot: %s holds %zu files, expected %u\n", ds->dir,
			ds->count, h->count);
		return -EINVAL;
	}
	privsz = (size_t)h->size * h->count;

	ret = bench_open_dataset(ds, sock, &c, &t.d);
	if (ret)
		return ret;
	ret = bench_map_indices(ds, t.d, &t.map);
	if (ret)
		goto out;
	t.order = malloc(h->count * sizeof(*t.order));
	t.buf = malloc(h->size);
	t.priv = malloc(privsz);
	t.bidx = malloc(h->batch * sizeof(*t.bidx));
	t.bviews = calloc(h->batch, sizeof(*t.bviews));
	if (!t.order || !t.buf || !t.priv || !t.bidx || !t.bviews) {
		fprintf(stderr, "stoker-bench: hot: cannot allocate %zu bytes of private copies\n",
			privsz);
		ret = -ENOMEM;
		goto out;
	}
	bench_make_order(t.order, h->count, h->count, cfg->seed);

	ret = bench_warm_wait(t.d, &h->warm_s, &st);
	if (ret)
		goto out;
	h->warm_bytes = st.resident_bytes;
	h->warm_state = st.warm;
	if (st.warm != STK_WARM_DONE || st.resident < st.objects)
		fprintf(stderr,
			"stoker-bench: hot: only %u of %u objects of %llu bytes are resident "
			"(warm state %u); gets of the rest are misses (raise --ram)\n",
			st.resident, st.objects, (unsigned long long)h->size, st.warm);

	ret = prepare(&t);
	if (ret)
		goto out;

	for (unsigned r = 0; r < cfg->rounds && r < BENCH_MAX_ROUNDS; r++) {
		const size_t nk = sizeof(round_order) / sizeof(round_order[0]);

		for (size_t i = 0; i < nk; i++) {
			enum bench_hot_kind k = round_order[r % 2 ? nk - 1 - i : i];

			if (!kind_runs(h, k))
				continue;
			ret = timed(&t, k, cfg->seconds, &h->runs[r][k]);
			if (ret)
				goto out;
		}
		h->rounds = r + 1;
	}
	/* Keeps the hashing from being optimised away. */
	if (t.sink == 0x5eed)
		fputc('\n', stderr);
	/* Like A/B: the figures are reported, then the run fails. */
	if (!h->checksums_match)
		ret = -EBADMSG;
out:
	free(t.bviews);
	free(t.bidx);
	free(t.priv);
	free(t.buf);
	free(t.order);
	free(t.map);
	stk_dataset_close(t.d);
	stk_close(c);
	return ret;
}

/* SPDX-License-Identifier: MIT */
/*
 * tier_replay's live half: the dataset's files and the clients that replay
 * the trace against stokerd.  Each client is a thread with a connection of
 * its own; per epoch it plans its share of the epoch's order (positions c,
 * c + C, ... of the epoch, like one rank of a data-parallel job), gets each
 * object, checks every byte against the object's id, releases it and
 * "computes" (sleeps).  The clients meet at a barrier between epochs, where
 * the main thread reads stokerd's counters, so each epoch's deltas are its
 * own.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stoker.h>

#include "tier_replay.h"

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
	return (double)(splitmix(s) >> 11) / (double)(1ull << 53);
}

/* The bytes of object id: a stream seeded by (seed, id). */
static void fill(uint64_t seed, uint32_t id, unsigned char *buf, uint64_t len)
{
	uint64_t s = seed * 0x2545f4914f6cdd1dull ^ ((uint64_t)id + 1) * 0x9e3779b97f4a7c15ull;
	uint64_t i = 0, w;

	for (; i + 8 <= len; i += 8) {
		w = splitmix(&s);
		memcpy(buf + i, &w, 8);
	}
	if (i < len) {
		w = splitmix(&s);
		memcpy(buf + i, &w, len - i);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tr_trace_make(const struct tr_opts *o, struct tr_trace *t)
{
	uint64_t s = o->seed ^ 0x5a17e5ull, cap = 1024;
	uint32_t *perm = NULL;
	double lo = (double)o->min_size, hi = (double)o->max_size;

	memset(t, 0, sizeof(*t));
	t->size = malloc(cap * sizeof(*t->size));
	if (!t->size)
		return -ENOMEM;
	/* Log-uniform sizes until the dataset reaches o->dataset bytes. */
	while (t->bytes < o->dataset) {
		uint64_t sz = lo >= hi ? o->min_size : (uint64_t)(lo * pow(hi / lo, unit(&s)));

		if (t->nobj == cap) {
			uint64_t *n = realloc(t->size, 2 * cap * sizeof(*n));

			if (!n)
				goto nomem;
			t->size = n;
			cap *= 2;
		}
		t->size[t->nobj++] = sz;
		t->bytes += sz;
	}
	/*
	 * Split: an epoch is one permutation, client c reading positions c,
	 * c + C, ...  Independent: each client reads all objects in a
	 * permutation of its own, and the epoch's order interleaves them
	 * round-robin, so client c still reads positions c, c + C, ...
	 */
	t->per_epoch = o->independent ? t->nobj * o->clients : t->nobj;
	t->order = malloc((size_t)o->epochs * t->per_epoch * sizeof(*t->order));
	perm = malloc(t->nobj * sizeof(*perm));
	if (!t->order || !perm)
		goto nomem;
	for (uint32_t e = 0; e < o->epochs; e++) {
		uint32_t *ord = t->order + (size_t)e * t->per_epoch;
		uint32_t streams = o->independent ? o->clients : 1;

		for (uint32_t c = 0; c < streams; c++) {
			uint64_t es = o->seed * 1000003ull + e + c * 0x9e3779b97f4a7c15ull;

			for (uint32_t i = 0; i < t->nobj; i++)
				perm[i] = i;
			for (uint32_t i = t->nobj; !o->cyclic && i > 1; i--) {
				uint32_t j = (uint32_t)(splitmix(&es) % i), x = perm[i - 1];

				perm[i - 1] = perm[j];
				perm[j] = x;
			}
			for (uint32_t i = 0; i < t->nobj; i++)
				ord[(size_t)i * streams + c] = perm[i];
		}
	}
	free(perm);
	return 0;
nomem:
	free(perm);
	tr_trace_free(t);
	return -ENOMEM;
}

void tr_trace_free(struct tr_trace *t)
{
	free(t->size);
	free(t->order);
	memset(t, 0, sizeof(*t));
}

static int obj_name(char *buf, size_t len, const char *dir, uint32_t id)
{
	if ((size_t)snprintf(buf, len, "%s%so%06u", dir ? dir : "", dir ? "/" : "", id) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int tr_write_dataset(const struct tr_opts *o, const struct tr_trace *t)
{
	uint64_t max = 0;
	unsigned char *buf;
	char path[4096];
	int ret = 0;

	if (mkdir(o->dir, 0755) && errno != EEXIST)
		return -errno;
	for (uint32_t i = 0; i < t->nobj; i++)
		max = t->size[i] > max ? t->size[i] : max;
	buf = malloc(max ? max : 1);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nobj && !ret; i++) {
		int fd;

		ret = obj_name(path, sizeof(path), o->dir, i);
		if (ret)
			break;
		fill(o->seed, i, buf, t->size[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, t->size[i]) != (ssize_t)t->size[i])
			ret = -(errno ? errno : EIO);
		if (fd >= 0 && close(fd) && !ret)
			ret = -errno;
		if (ret)
			fprintf(stderr, "tier_replay: %s: %s\n", path, strerror(-ret));
	}
	free(buf);
	return ret;
}

struct client {
	const struct tr_opts *o;
	const struct tr_trace *t;
	uint32_t id, nclients;
	pthread_barrier_t *bar;
	atomic_int *failed;
	uint32_t *index; /* object id -> the dataset's index */
	uint32_t *share; /* this client's gets of one epoch (or of all, plan_run) */
	unsigned char *buf;
	uint64_t *wait_ns, *view_hits, *verify_errors; /* per epoch */
	int err;
};

/* This client's positions of epochs [e0, e1) as dataset indices, in order; returns how many. */
static size_t share_of(struct client *c, uint32_t e0, uint32_t e1)
{
	size_t n = 0;

	for (uint32_t e = e0; e < e1; e++) {
		const uint32_t *ord = c->t->order + (size_t)e * c->t->per_epoch;

		for (uint32_t p = c->id; p < c->t->per_epoch; p += c->nclients)
			c->share[n++] = c->index[ord[p]];
	}
	return n;
}

static int setup(struct client *c, struct stk_client **cl, struct stk_dataset **ds)
{
	struct stk_connect_opts co = { .opts_size = sizeof(co), .socket_path = c->o->socket };
	char uri[4200], key[32];
	uint64_t max = 0;
	int ret;

	ret = stk_connect(&co, cl);
	if (ret)
		return ret;
	if ((size_t)snprintf(uri, sizeof(uri), "file://%s/", c->o->dir) >= sizeof(uri))
		return -ENAMETOOLONG;
	ret = stk_dataset_open(*cl, uri, 0, ds);
	if (ret)
		return ret;
	if (stk_dataset_count(*ds) != c->t->nobj) {
		fprintf(stderr, "tier_replay: %s lists %zu objects, the trace has %u\n", uri,
			stk_dataset_count(*ds), c->t->nobj);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->t->nobj; i++) {
		size_t idx;

		obj_name(key, sizeof(key), NULL, i);
		ret = stk_dataset_find(*ds, key, &idx);
		if (ret) {
			fprintf(stderr, "tier_replay: %s has no %s\n", uri, key);
			return ret;
		}
		c->index[i] = (uint32_t)idx;
		max = c->t->size[i] > max ? c->t->size[i] : max;
	}
	c->buf = malloc(max ? max : 1);
	return c->buf ? 0 : -ENOMEM;
}

static int one_get(struct client *c, struct stk_dataset *ds, uint32_t e, uint32_t id)
{
	struct stk_view v;
	uint64_t t0 = now_ns();
	int ret = stk_get(ds, c->index[id], &v);

	c->wait_ns[e] += now_ns() - t0;
	if (ret) {
		fprintf(stderr, "tier_replay: client %u: get of o%06u: %s (%s)\n", c->id, id,
			stk_strerror(ret), stk_errmsg());
		return ret;
	}
	if (v.flags & STK_VIEW_HIT)
		c->view_hits[e]++;
	fill(c->o->seed, id, c->buf, c->t->size[id]);
	if (v.size != c->t->size[id] || (v.size && memcmp(v.data, c->buf, v.size)))
		c->verify_errors[e]++;
	stk_release(&v);
	if (c->o->compute_us) {
		struct timespec ts = { .tv_sec = (time_t)(c->o->compute_us / 1000000),
				       .tv_nsec = (long)(c->o->compute_us % 1000000) * 1000 };

		nanosleep(&ts, NULL);
	}
	return 0;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct stk_client *cl = NULL;
	struct stk_dataset *ds = NULL;
	uint32_t E = c->o->epochs;

	c->err = setup(c, &cl, &ds);
	if (c->err) {
		fprintf(stderr, "tier_replay: client %u: %s (%s)\n", c->id, stk_strerror(c->err),
			stk_errmsg());
		atomic_store(c->failed, 1);
	}
	for (uint32_t e = 0; e < E; e++) {
		pthread_barrier_wait(c->bar);
		if (!atomic_load(c->failed) && (e == 0 || !c->o->plan_run)) {
			size_t n = c->o->plan_run ? share_of(c, 0, E) : share_of(c, e, e + 1);

			c->err = n ? stk_plan(ds, c->share, n) : 0;
			if (c->err) {
				fprintf(stderr, "tier_replay: client %u: plan: %s (%s)\n", c->id,
					stk_strerror(c->err), stk_errmsg());
				atomic_store(c->failed, 1);
			}
		}
		const uint32_t *ord = c->t->order + (size_t)e * c->t->per_epoch;

		for (uint32_t p = c->id; p < c->t->per_epoch && !atomic_load(c->failed);
		     p += c->nclients) {
			c->err = one_get(c, ds, e, ord[p]);
			if (c->err)
				atomic_store(c->failed, 1);
		}
		pthread_barrier_wait(c->bar);
	}
	stk_dataset_close(ds);
	stk_close(cl);
	return NULL;
}

/*
 * The daemon's NVMe counters, where this build's stoker.h has them (CMake
 * checks for struct stk_stats' hits_nvme).  Returns false, and leaves *n
 * zeroed, against a header without tier 1 or a daemon running without it.
 */
struct nvme_counts {
	uint64_t hits, reads, writes, used, objects;
};

static bool nvme_counts(const struct stk_stats *st, struct nvme_counts *n)
{
	memset(n, 0, sizeof(*n));
#ifdef TR_HAVE_NVME_STATS
	n->hits = st->hits_nvme;
	n->reads = st->nvme_reads;
	n->writes = st->nvme_writes;
	n->used = st->nvme_used;
	n->objects = st->nvme_objects;
	return st->nvme_budget > 0;
#else
	(void)st;
	return false;
#endif
}

static int snapshot(struct stk_client *cl, struct stk_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return stk_stats(cl, st);
}

int tr_live_run(const struct tr_opts *o, const struct tr_trace *t, struct tr_live_epoch *out)
{
	struct stk_connect_opts co = { .opts_size = sizeof(co), .socket_path = o->socket };
	uint32_t C = o->clients, E = o->epochs;
	struct client *cs = calloc(C, sizeof(*cs));
	pthread_t *th = calloc(C, sizeof(*th));
	struct stk_client *main_cl = NULL;
	struct stk_stats a, b;
	pthread_barrier_t bar;
	atomic_int failed = 0;
	uint32_t started = 0;
	int ret = -ENOMEM;

	memset(out, 0, E * sizeof(*out));
	if (!cs || !th)
		goto out_free;
	ret = stk_connect(&co, &main_cl);
	if (ret) {
		fprintf(stderr, "tier_replay: connect %s: %s\n", o->socket, stk_strerror(ret));
		goto out_free;
	}
	pthread_barrier_init(&bar, NULL, C + 1);
	for (uint32_t i = 0; i < C; i++) {
		struct client *c = &cs[i];

		*c = (struct client){
			.o = o, .t = t, .id = i, .nclients = C, .bar = &bar, .failed = &failed
		};
		c->index = calloc(t->nobj, sizeof(*c->index));
		c->share = calloc((size_t)t->per_epoch / C * E + E, sizeof(*c->share));
		c->wait_ns = calloc(E, sizeof(uint64_t));
		c->view_hits = calloc(E, sizeof(uint64_t));
		c->verify_errors = calloc(E, sizeof(uint64_t));
		if (!c->index || !c->share || !c->wait_ns || !c->view_hits || !c->verify_errors)
			atomic_store(&failed, 1);
	}
	/* Every thread starts, whatever failed: the barrier counts on all of them. */
	for (; started < C; started++)
		if (pthread_create(&th[started], NULL, client_main, &cs[started]))
			break;
	if (started < C) {
		fprintf(stderr, "tier_replay: cannot start client threads\n");
		abort();
	}
	for (uint32_t e = 0; e < E; e++) {
		uint64_t t0;
		int r1 = snapshot(main_cl, &a), r2;

		pthread_barrier_wait(&bar);
		t0 = now_ns();
		pthread_barrier_wait(&bar);
		out[e].wall_s = (double)(now_ns() - t0) / 1e9;
		r2 = snapshot(main_cl, &b);
		if (r1 || r2) {
			fprintf(stderr, "tier_replay: stk_stats: %s\n", stk_strerror(r1 ? r1 : r2));
			atomic_store(&failed, 1);
			continue;
		}
		out[e].gets = b.gets - a.gets;
		out[e].hits_ram = b.hits_ram - a.hits_ram;
		out[e].misses = b.misses - a.misses;
		out[e].fetches = b.fetches - a.fetches;
		out[e].fetch_bytes = b.fetch_bytes - a.fetch_bytes;
		out[e].evictions = b.evictions - a.evictions;
		{
			struct nvme_counts na, nb;

			bool ka = nvme_counts(&a, &na), kb = nvme_counts(&b, &nb);

			out[e].nvme_known = ka && kb;
			out[e].hits_nvme = nb.hits - na.hits;
			out[e].nvme_reads = nb.reads - na.reads;
			out[e].nvme_writes = nb.writes - na.writes;
			out[e].nvme_used = nb.used;
			out[e].nvme_objects = nb.objects;
			out[e].ram_used = b.ram_used;
			out[e].ram_objects = b.resident_objects;
		}
	}
	for (uint32_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	ret = atomic_load(&failed) ? -EIO : 0;
	for (uint32_t i = 0; i < C; i++) {
		struct client *c = &cs[i];

		if (c->err && ret == -EIO)
			ret = c->err;
		for (uint32_t e = 0; c->wait_ns && e < E; e++) {
			out[e].wait_ns_sum += c->wait_ns[e];
			if (c->wait_ns[e] > out[e].wait_ns_max)
				out[e].wait_ns_max = c->wait_ns[e];
			out[e].view_hits += c->view_hits[e];
			out[e].verify_errors += c->verify_errors[e];
		}
	}
	pthread_barrier_destroy(&bar);
	stk_close(main_cl);
out_free:
	for (uint32_t i = 0; cs && i < C; i++) {
		free(cs[i].index);
		free(cs[i].share);
		free(cs[i].buf);
		free(cs[i].wait_ns);
		free(cs[i].view_hits);
		free(cs[i].verify_errors);
	}
	free(cs);
	free(th);
	return ret;
}

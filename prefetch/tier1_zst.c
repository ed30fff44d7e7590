/* SPDX-License-Identifier: MIT */
/*
 * Tier 1's codec (--nvme-compress): the zstd jobs tier1.c runs on the loop's
 * worker pool, never on the loop thread.  A demotion compresses the object's
 * RAM bytes into a frame; a promotion of a compressed copy decodes the frame
 * it read into the object's RAM room, to exactly the object's size.  Each job
 * measures the CPU time its worker thread spent (CLOCK_THREAD_CPUTIME_ID),
 * which the daemon sums into nvme_codec_ns.  tier1.c keeps the object pinned
 * (demotion) or in flight (promotion) until the job's done() runs, so the
 * bytes a job reads or writes stay put.  Also the flag's parser.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/zst.h"
#include "prefetch/daemon.h"

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void squeeze(struct stk_work *w)
{
	struct stk_t1zst *j = stk_container_of(w, struct stk_t1zst, w);
	uint64_t t0 = cpu_ns();
	size_t cap = stk__zst_bound(j->size);
	void *z = cap ? malloc(cap) : NULL;
	ssize_t n = z ? stk__zst_compress(z, cap, j->plain, j->size, j->level) : -ENOMEM;
	j->z = NULL;
	j->zlen = 0;
	j->err = n < 0 ? (int)n : 0;
	/* A frame not smaller than the object gains nothing: the copy is stored plain. */
	if (n >= 0 && (uint64_t)n < j->size) {
		j->z = z;
		j->zlen = (uint64_t)n;
	} else {
		free(z);
	}
	j->ns = cpu_ns() - t0;
}

static void unsqueeze(struct stk_work *w)
{
	struct stk_t1zst *j = stk_container_of(w, struct stk_t1zst, w);
	uint64_t t0 = cpu_ns();
	j->err =
	    stk__zst_decompress(j->plain, j->size, j->z, j->zlen, j->name, j->why, sizeof(j->why));
	j->ns = cpu_ns() - t0;
}

void stk__t1zst_compress(struct stk_loop *l, struct stk_t1zst *j, void (*done)(struct stk_work *w))
{
	j->w.work = squeeze;
	j->w.done = done;
	stk_loop_work(l, &j->w);
}

void stk__t1zst_decompress(struct stk_loop *l, struct stk_t1zst *j,
			   void (*done)(struct stk_work *w))
{
	j->why[0] = '\0';
	j->w.work = unsqueeze;
	j->w.done = done;
	stk_loop_work(l, &j->w);
}

int stk__tier1_level(const char *v, const char *from, int *level)
{
	char *end;
	errno = 0;
	long l = strtol(v, &end, 10);
	if (errno || end == v || *end || l < stk__zst_level_min() || l > stk__zst_level_max()) {
		/* A flag's value comes with its argv slot in from, not the flag's name. */
		fprintf(stderr,
			"stokerd: %s '%s': not a zstd level (%d to %d; 0: no compression)\n",
			strncmp(from, "STOKER_", 7) ? "--nvme-compress" : from, v,
			stk__zst_level_min(), stk__zst_level_max());
		return -EINVAL;
	}
	*level = (int)l;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * nvme_store DIR [COUNT_1MIB [COUNT_110KIB [COUNT_REOPEN]]]: a micro-measure
 * of tier 1's store (cache/nvme.h), not a test.  Prints MB/s of sequential
 * puts and gets of 1 MiB and 110 KiB objects (16 in flight, through the
 * loop, O_DIRECT where DIR's filesystem takes it), then the time to reopen
 * a store of COUNT_REOPEN small objects (header checks only, and with
 * STK_NVME_VERIFY), cold (page cache dropped, when root) and warm.
 * Compare with fio on the same directory (docs/nvme.md has the commands).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/nvme.h"
#include "common/loop.h"

#define QD 16

static struct stk_loop *L;
static unsigned inflight;
static int failed;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void done_cb(struct stk_nvme_op *op, int64_t res)
{
	inflight--;
	op->arg = NULL;
	if (res < 0 && !failed) {
		fprintf(stderr, "nvme_store: %s\n", strerror((int)-res));
		failed = 1;
	}
}

static struct stk_nvme *open_store(const char *dir, unsigned flags)
{
	struct stk_nvme_opts o = {
		.opts_size = sizeof(o),
		.dir = dir,
		.budget = 1ull << 40,
		.flags = flags,
	};
	struct stk_nvme *s;
	char err[256];
	if (stk__nvme_open(L, &o, &s, err, sizeof(err))) {
		fprintf(stderr, "nvme_store: %s\n", err);
		exit(1);
	}
	return s;
}

static void uri_of(char *buf, size_t len, const char *set, unsigned i)
{
	snprintf(buf, len, "file:///bench/%s/%08u", set, i);
}

/* Puts (or gets) n objects of size bytes, QD at a time. Returns seconds. */
static double run(struct stk_nvme *s, const char *set, unsigned n, uint64_t size, bool put,
		  char *data)
{
	static struct stk_nvme_op ops[QD];
	static char uris[QD][64];
	double t0 = now();
	unsigned next = 0;
	while ((next < n || inflight) && !failed) {
		for (unsigned q = 0; q < QD && next < n; q++) {
			if (ops[q].arg)
				continue;
			uri_of(uris[q], sizeof(uris[q]), set, next);
			struct stk_nvme_id id = { .uri = uris[q], .size = size, .version = "v1" };
			ops[q].arg = &ops[q];
			int r;
			if (put) {
				r = stk__nvme_put(s, &id, data + (uint64_t)q * size, size, 0,
						  &ops[q], done_cb);
			} else {
				struct stk_nvme_ent *e = stk__nvme_lookup(s, &id);
				r = e ? stk__nvme_get(s, e, data + (uint64_t)q * size, &ops[q],
						      done_cb)
				      : -ENOENT;
			}
			if (r) {
				fprintf(stderr, "nvme_store: %s %s: %s\n", put ? "put" : "get",
					uris[q], strerror(-r));
				exit(1);
			}
			inflight++;
			next++;
		}
		stk_loop_run_once(L);
	}
	return now() - t0;
}

static void drop_caches(void)
{
	sync();
	FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
	if (f) {
		fputs("3\n", f);
		fclose(f);
	}
}

static void measure(const char *dir, const char *set, unsigned n, uint64_t size)
{
	char *data = aligned_alloc(4096, ((uint64_t)QD * size + 4095) / 4096 * 4096);
	if (!data)
		exit(1);
	for (uint64_t i = 0; i < QD * size; i++)
		data[i] = (char)(i * 131 + 7);
	struct stk_nvme *s = open_store(dir, 0);
	double tp = run(s, set, n, size, true, data);
	double mb = (double)n * (double)size / 1e6;
	drop_caches();
	double tg = run(s, set, n, size, false, data);
	struct stk_nvme_stats st;
	stk__nvme_stats(s, &st);
	printf("%-8s x %6u: put %7.1f MB/s  get %7.1f MB/s  (direct %s, %" PRIu64
	       " bytes on disk for %" PRIu64 " stored)\n",
	       set, n, mb / tp, mb / tg, st.direct ? "yes" : "no", st.used, st.payload);
	stk__nvme_close(s);
	free(data);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: nvme_store DIR [N_1MIB [N_110KIB [N_REOPEN]]]\n");
		return 2;
	}
	const char *dir = argv[1];
	unsigned n1 = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2048;
	unsigned n2 = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 8192;
	unsigned n3 = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 100000;
	if (stk_loop_create(true, 2, &L))
		return 1;
	measure(dir, "1MiB", n1, 1 << 20);
	measure(dir, "110KiB", n2, 110 << 10);
	/* The reopen: many small objects (4 KiB), as an index rebuild sees them. */
	char *data = aligned_alloc(4096, QD * 4096);
	if (!data)
		return 1;
	memset(data, 0x5a, QD * 4096);
	struct stk_nvme *s = open_store(dir, 0);
	run(s, "small", n3, 4096, true, data);
	stk__nvme_close(s);
	for (int verify = 0; verify < 2; verify++) {
		for (int cold = 1; cold >= 0; cold--) {
			if (cold)
				drop_caches();
			double t0 = now();
			s = open_store(dir, verify ? STK_NVME_VERIFY : 0);
			double t = now() - t0;
			struct stk_nvme_stats st;
			stk__nvme_stats(s, &st);
			printf("reopen %" PRIu64 " objects (%s, %s): %.3f s\n", st.objects,
			       verify ? "all bytes verified" : "headers", cold ? "cold" : "warm",
			       t);
			stk__nvme_close(s);
		}
	}
	free(data);
	stk_loop_destroy(L);
	return failed;
}

/* SPDX-License-Identifier: MIT */
/*
 * common/zst.c: round trips of every size class from 0 bytes to 384 KiB at
 * several levels, the exact-size check both ways, corrupt and truncated
 * frames, frame headers, contexts per thread, and the decompression rate
 * (printed, for the record: STK_ZST_RATE=1 runs it longer).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/zst.h"

/*
 * Bytes that compress (words drawn at random from 64, separated by spaces:
 * text-like, about 3x at level 3) or not at all (random), seeded.
 */
static void fill(unsigned char *p, size_t n, unsigned seed, bool random)
{
	static const char *const syl[8] = { "ka", "lo", "mer", "st", "ion", "a", "th", "ude" };
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
	for (size_t i = 0; i < n;) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (random) {
			p[i++] = (unsigned char)x;
			continue;
		}
		const char *a = syl[x & 7], *b = syl[(x >> 3) & 7];
		for (; *a && i < n; a++)
			p[i++] = (unsigned char)*a;
		for (; *b && i < n; b++)
			p[i++] = (unsigned char)*b;
		if (i < n)
			p[i++] = (x >> 6) % 11 ? ' ' : '\n';
	}
}

static void round_trip(size_t n, int level, bool random)
{
	unsigned char *src = malloc(n + 1), *dst = malloc(n + 1);
	size_t cap = stk__zst_bound(n);
	unsigned char *z = malloc(cap);
	cr_assert(src && dst && z && cap >= n);
	fill(src, n, (unsigned)n, random);
	ssize_t zl = stk__zst_compress(z, cap, src, n, level);
	cr_assert_gt(zl, 0, "size %zu level %d: %zd", n, level, zl);
	uint64_t declared = 1234567;
	cr_assert_eq(stk__zst_content_size(z, (size_t)zl, &declared), 0);
	cr_assert_eq(declared, n);
	if ((size_t)zl >= STK_ZST_HEAD_MAX) {
		declared = 1;
		cr_assert_eq(stk__zst_content_size(z, STK_ZST_HEAD_MAX, &declared), 0);
		cr_assert_eq(declared, n);
	}
	memset(dst, 0xa5, n + 1);
	char err[256] = "";
	cr_assert_eq(stk__zst_decompress(dst, n, z, (size_t)zl, "obj", err, sizeof(err)), 0,
		     "size %zu level %d: %s", n, level, err);
	cr_assert(!memcmp(src, dst, n), "size %zu level %d: bytes differ", n, level);
	cr_assert_eq(dst[n], 0xa5, "wrote past the declared size");
	/* One byte less or more than the plain size is an error that says which. */
	if (n) {
		cr_assert_eq(
		    stk__zst_decompress(dst, n - 1, z, (size_t)zl, "obj", err, sizeof(err)),
		    -EBADMSG);
		cr_assert(strstr(err, "obj: ") == err && strstr(err, "more than"), "%s", err);
	}
	cr_assert_eq(stk__zst_decompress(dst, n + 1, z, (size_t)zl, "obj", err, sizeof(err)),
		     -EBADMSG);
	cr_assert(strstr(err, "obj: ") == err, "%s", err);
	/* Truncated: every frame shorter than whole fails. */
	if (zl > 1) {
		cr_assert_eq(
		    stk__zst_decompress(dst, n, z, (size_t)zl - 1, "obj", err, sizeof(err)),
		    -EBADMSG);
		cr_assert_eq(stk__zst_decompress(dst, n, z, (size_t)zl / 2, "obj", NULL, 0),
			     -EBADMSG);
	}
	/* Too small a buffer for the frame. */
	if (zl > 1)
		cr_assert_eq(stk__zst_compress(z, (size_t)zl - 1, src, n, level), -ENOSPC);
	free(src);
	free(dst);
	free(z);
}

Test(zst, every_size_class_round_trips, .timeout = 120)
{
	static const int levels[] = { -5, 1, 3, 9, 19 };
	for (size_t n = 0; n <= 384 * 1024;) {
		for (unsigned l = 0; l < sizeof(levels) / sizeof(*levels); l++) {
			/* The slow levels on a sample of sizes: the rest cover the sizes. */
			if (levels[l] >= 9 && n > 4096 && n % 3)
				continue;
			round_trip(n, levels[l], n % 2);
		}
		n += n < 300 ? 1 : n < 8192 ? 97 : n < 65536 ? 4093 : 32771;
	}
	round_trip(110 * 1024, 3, true);
	round_trip(110 * 1024, 3, false);
}

Test(zst, bad_levels_refused)
{
	char src[16] = "x", z[128];
	cr_assert_eq(stk__zst_compress(z, sizeof(z), src, sizeof(src), stk__zst_level_max() + 1),
		     -EINVAL);
	cr_assert_eq(stk__zst_compress(z, sizeof(z), src, sizeof(src), stk__zst_level_min() - 1),
		     -EINVAL);
	cr_assert_gt(stk__zst_compress(z, sizeof(z), src, sizeof(src), 0), 0);
}

Test(zst, corrupt_frames_fail_never_crash)
{
	size_t n = 200000;
	unsigned char *src = malloc(n), *dst = malloc(n), *z = malloc(stk__zst_bound(n));
	fill(src, n, 7, false);
	ssize_t zl = stk__zst_compress(z, stk__zst_bound(n), src, n, 3);
	cr_assert_gt(zl, 64);
	char err[256];
	unsigned fails = 0;
	/* Flip a byte at a spread of places: the content checksum catches what decodes. */
	for (ssize_t at = 0; at < zl; at += zl / 97 + 1) {
		z[at] ^= 0x5a;
		int r =
		    stk__zst_decompress(dst, n, z, (size_t)zl, "file:///d/x.zst", err, sizeof(err));
		z[at] ^= 0x5a;
		cr_assert(r == 0 || r == -EBADMSG);
		if (r) {
			fails++;
			cr_assert(strstr(err, "file:///d/x.zst: ") == err, "%s", err);
		} else {
			cr_assert(!memcmp(src, dst, n), "a corrupt frame decoded to wrong bytes");
		}
	}
	cr_assert_gt(fails, 90, "only %u of ~98 corruptions detected", fails);
	/* Not zstd at all, and nothing at all. */
	cr_assert_eq(stk__zst_decompress(dst, n, src, n, "plain", err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "not valid zstd data"), "%s", err);
	cr_assert_eq(stk__zst_decompress(dst, 0, src, 0, "empty", err, sizeof(err)), -EBADMSG);
	/* Trailing garbage after a whole frame. */
	unsigned char *z2 = malloc((size_t)zl + 8);
	memcpy(z2, z, (size_t)zl);
	memset(z2 + zl, 0x11, 8);
	cr_assert_eq(stk__zst_decompress(dst, n, z2, (size_t)zl + 8, "t", NULL, 0), -EBADMSG);
	free(z2);
	free(src);
	free(dst);
	free(z);
}

Test(zst, two_frames_decode_as_one_object)
{
	char a[100], b[300], z[1024], out[400];
	fill((unsigned char *)a, sizeof(a), 1, true);
	fill((unsigned char *)b, sizeof(b), 2, false);
	ssize_t l1 = stk__zst_compress(z, sizeof(z), a, sizeof(a), 1);
	ssize_t l2 = stk__zst_compress(z + l1, sizeof(z) - (size_t)l1, b, sizeof(b), 1);
	cr_assert(l1 > 0 && l2 > 0);
	cr_assert_eq(stk__zst_decompress(out, sizeof(out), z, (size_t)(l1 + l2), "x", NULL, 0), 0);
	cr_assert(!memcmp(out, a, sizeof(a)) && !memcmp(out + sizeof(a), b, sizeof(b)));
	/* The header declares the first frame only. */
	uint64_t s;
	cr_assert_eq(stk__zst_content_size(z, (size_t)(l1 + l2), &s), 0);
	cr_assert_eq(s, sizeof(a));
}

Test(zst, frame_headers)
{
	uint64_t s = 99;
	unsigned char z[64];
	cr_assert_eq(stk__zst_content_size("", 0, &s), -EAGAIN);
	cr_assert_eq(stk__zst_content_size("\x28\xb5", 2, &s), -EAGAIN);
	cr_assert_eq(stk__zst_content_size("PK\x03\x04", 4, &s), -EBADMSG);
	cr_assert_eq(stk__zst_content_size("\x93NUMPY", 6, &s), -EBADMSG);
	/* A skippable frame first. */
	cr_assert_eq(stk__zst_content_size("\x50\x2a\x4d\x18\0\0\0\0", 8, &s), -EBADMSG);
	ssize_t zl = stk__zst_compress(z, sizeof(z), "hello", 5, 3);
	cr_assert_gt(zl, 5);
	for (size_t l = 4; l < 6; l++)
		cr_assert_eq(stk__zst_content_size(z, l, &s), -EAGAIN, "at %zu", l);
	cr_assert_eq(s, 99);
	/* A frame without a content size (what a pipe makes): FHD's FCS flag 0, no single segment.
	 */
	static const unsigned char nosize[] = {
		0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x01, 0x00, 0x00
	};
	cr_assert_eq(stk__zst_content_size(nosize, sizeof(nosize), &s), -ENODATA);
}

/* Contexts are per thread: four threads at once, each round-tripping its own data. */
static void *thread_rt(void *arg)
{
	size_t n = 70000 + (size_t)(uintptr_t)arg * 1000;
	for (int i = 0; i < 20; i++)
		round_trip(n + (size_t)i, 1 + i % 4, i % 2);
	return NULL;
}

Test(zst, threads_have_their_own_contexts, .timeout = 60)
{
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, thread_rt, (void *)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The decompression rate of 1 MiB and 110 KiB objects, in plain MB/s on
 * one thread (what ingest costs a worker), warm buffers.  Printed, and
 * checked only against a floor no working build misses.
 */
Test(zst, decompression_rate, .timeout = 120)
{
	static const size_t sizes[] = { 1 << 20, 110 * 1024 };
	double budget = getenv("STK_ZST_RATE") ? 2.0 : 0.3; /* seconds per case */
	for (unsigned k = 0; k < 2; k++) {
		for (int rnd = 0; rnd < 2; rnd++) {
			size_t n = sizes[k];
			unsigned char *src = malloc(n), *dst = malloc(n),
				      *z = malloc(stk__zst_bound(n));
			fill(src, n, 3, rnd);
			ssize_t zl = stk__zst_compress(z, stk__zst_bound(n), src, n, 3);
			cr_assert_gt(zl, 0);
			memset(dst, 0, n);
			unsigned iters = 0;
			double t0 = now_s(), t;
			do {
				cr_assert_eq(
				    stk__zst_decompress(dst, n, z, (size_t)zl, "r", NULL, 0), 0);
				iters++;
			} while ((t = now_s() - t0) < budget);
			double mbs = (double)n * iters / t / 1e6;
			printf("zstd decompress %7zu-byte objects (%s, level 3, ratio %.2f): %.0f "
			       "MB/s "
			       "plain, %.1f us each\n",
			       n, rnd ? "random" : "text-like", (double)n / zl, mbs,
			       t / iters * 1e6);
			cr_assert_gt(mbs, 20.0);
			free(src);
			free(dst);
			free(z);
		}
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * What every bench mode shares: the clock, interruptible sleeps, the seeded
 * PRNG behind access orders and demo data, and the hash that makes sure every
 * byte a reader obtains is really read.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

volatile sig_atomic_t bench_stop;

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_sleep_until(double t)
{
	struct timespec ts;
	int ret;

	if (t <= 0)
		return bench_stop ? -EINTR : 0;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (bench_stop)
			return -EINTR;
		ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (ret == 0)
			return bench_stop ? -EINTR : 0;
		if (ret != EINTR)
			return -ret;
	}
}

int bench_sleep(double seconds)
{
	if (seconds <= 0)
		return bench_stop ? -EINTR : 0;
	return bench_sleep_until(bench_now() + seconds);
}

/* --- PRNG: splitmix64 to seed, xoshiro256** to draw (public domain, Vigna). --- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static void seed_rng(uint64_t s[4], uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		s[i] = splitmix64(&seed);
}

/* Uniform in [0, bound), without modulo bias (Lemire's method). */
static uint64_t rng_below(uint64_t s[4], uint64_t bound)
{
	__uint128_t m = (__uint128_t)xoshiro(s) * bound;
	uint64_t lo = (uint64_t)m;

	if (lo < bound) {
		uint64_t thresh = -bound % bound;

		while (lo < thresh) {
			m = (__uint128_t)xoshiro(s) * bound;
			lo = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

void bench_make_order(uint32_t *order, size_t n, size_t count, uint64_t seed)
{
	size_t done = 0;

	for (uint64_t epoch = 0; done < n; epoch++) {
		uint32_t *perm = order + done;
		size_t take = n - done < count ? n - done : count;
		uint64_t s[4];
		uint32_t *tmp;

		seed_rng(s, seed ^ (epoch * 0xd1b54a32d192ed03ull));
		/* Shuffle a whole epoch even when only its head is used, so a
		 * shorter run reads a prefix of a longer run's order. */
		tmp = take == count ? perm : malloc(count * sizeof(*tmp));
		if (!tmp) {
			/* Out of memory for a partial tail epoch: fall back to
			 * index order rather than fail a benchmark. */
			for (size_t i = 0; i < take; i++)
				perm[i] = (uint32_t)i;
			done += take;
			continue;
		}
		for (size_t i = 0; i < count; i++)
			tmp[i] = (uint32_t)i;
		for (size_t i = count - 1; i > 0; i--) {
			size_t j = (size_t)rng_below(s, i + 1);
			uint32_t t = tmp[i];

			tmp[i] = tmp[j];
			tmp[j] = t;
		}
		if (tmp != perm) {
			memcpy(perm, tmp, take * sizeof(*tmp));
			free(tmp);
		}
		done += take;
	}
}

void bench_fill_random(void *buf, size_t len, uint64_t s[4])
{
	unsigned char *p = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = xoshiro(s);

		memcpy(p + i, &w, 8);
	}
	if (i < len) {
		uint64_t w = xoshiro(s);

		memcpy(p + i, &w, len - i);
	}
}

uint64_t bench_rand(uint64_t s[4])
{
	return xoshiro(s);
}

void bench_seed(uint64_t s[4], uint64_t seed)
{
	seed_rng(s, seed);
}

/*
 * A position-dependent hash over 64-bit words (Fletcher-like: a += w, b += a
 * in eight independent lanes): it reads every byte, tells swapped or wrong
 * bytes apart, and runs at memory speed (~14 GB/s here, like memcpy) so it
 * does not hide delivery costs.  GCC vector types keep it in SSE2 registers
 * at -O2, where the plain-array form runs at half that.  Unaligned views
 * (objects packed in slabs) are fine: memcpy loads.
 */
typedef uint64_t u64x2 __attribute__((vector_size(16)));

uint64_t bench_touch(const void *buf, uint64_t len)
{
	const unsigned char *p = buf;
	u64x2 a[4] = { { 0 } }, b[4] = { { 0 } }, w;
	uint64_t i = 0, h = len, t;

	for (; i + 64 <= len; i += 64) {
		for (int k = 0; k < 4; k++) {
			memcpy(&w, p + i + 16 * k, 16);
			a[k] += w;
			b[k] += a[k];
		}
	}
	for (int k = 0; k < 4; k++)
		for (int l = 0; l < 2; l++)
			h = (h ^ a[k][l] ^ (b[k][l] * 0x9e3779b97f4a7c15ull)) *
			    0xff51afd7ed558ccdull;
	for (; i + 8 <= len; i += 8) {
		memcpy(&t, p + i, 8);
		h = (h ^ t) * 0xff51afd7ed558ccdull;
	}
	if (i < len) {
		t = 0;
		memcpy(&t, p + i, len - i);
		h = (h ^ t) * 0xff51afd7ed558ccdull;
	}
	return h ^ (h >> 33);
}

int bench_write_random(int fd, const char *path, uint64_t size, uint64_t seed, void *buf,
		       size_t chunk)
{
	uint64_t s[4];
	bench_seed(s, seed);
	for (uint64_t left = size; left;) {
		size_t want = left < chunk ? (size_t)left : chunk;
		bench_fill_random(buf, want, s);
		ssize_t n = write(fd, buf, want);
		if (n < 0 && errno == EINTR && !bench_stop)
			continue;
		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;
			if (r != -EINTR)
				fprintf(stderr, "stoker-bench: write %s: %s\n", path, strerror(-r));
			return r;
		}
		/* A short write leaves the PRNG ahead of the file, which only
		 * changes the content, not its determinism on a disk that does
		 * not write short. */
		left -= (uint64_t)n;
	}
	return 0;
}

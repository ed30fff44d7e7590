/* SPDX-License-Identifier: MIT */
/*
 * The S3/HTTP harness's data side: deterministic object contents from
 * (seed, offset), unsigned uploads, and files and logs on disk.  The server
 * side is in s3_harness.c.
 */
#include "s3_harness.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Test data */

static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void th_fill(uint64_t seed, uint64_t off, void *buf, size_t len)
{
	unsigned char *p = buf;
	uint64_t key = splitmix64(seed);
	while (len) {
		uint64_t w = off / 8, in = off % 8;
		uint64_t v = splitmix64(key ^ (w * 0xd6e8feb86659fd93ull));
		if (in == 0 && len >= 8) {
			memcpy(p, &v, 8); /* little-endian: byte k of v is byte w*8+k */
			p += 8;
			off += 8;
			len -= 8;
			continue;
		}
		*p++ = (unsigned char)(v >> (8 * in));
		off++;
		len--;
	}
}

int64_t th_diff(uint64_t seed, const void *data, uint64_t size)
{
	static __thread unsigned char want[1 << 16];
	const unsigned char *d = data;
	for (uint64_t off = 0; off < size; off += sizeof(want)) {
		size_t n = size - off < sizeof(want) ? (size_t)(size - off) : sizeof(want);
		th_fill(seed, off, want, n);
		if (memcmp(d + off, want, n)) {
			for (size_t i = 0; i < n; i++)
				if (d[off + i] != want[i])
					return (int64_t)(off + i);
		}
	}
	return -1;
}

struct gen {
	uint64_t seed, off, size;
};

static size_t gen_read(char *p, size_t sz, size_t n, void *arg)
{
	struct gen *g = arg;
	size_t len = sz * n;
	if (len > g->size - g->off)
		len = (size_t)(g->size - g->off);
	th_fill(g->seed, g->off, p, len);
	g->off += len;
	return len;
}

static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
	return sz * n;
}

long th_put_many(const char *const *urls, const uint64_t *seeds, const uint64_t *sizes, size_t n)
{
	CURL *e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	h = curl_slist_append(h, "Content-Type: application/octet-stream");
	long ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		struct gen g = { seeds[i], 0, sizes[i] };
		curl_easy_setopt(e, CURLOPT_URL, urls[i]);
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sizes[i]);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, gen_read);
		curl_easy_setopt(e, CURLOPT_READDATA, &g);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
		CURLcode rc = curl_easy_perform(e);
		long status = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK) {
			fprintf(stderr, "harness: PUT %s: %s\n", urls[i], curl_easy_strerror(rc));
			ret = -EIO;
		} else if (status != 200) {
			fprintf(stderr, "harness: PUT %s: HTTP %ld\n", urls[i], status);
			ret = status;
		}
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return ret;
}

long th_put(const char *url, uint64_t seed, uint64_t size)
{
	long r = th_put_many(&url, &seed, &size, 1);
	return r == 0 ? 200 : r;
}

long th_put_text(const char *url, const char *text)
{
	CURL *e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
	CURLcode rc = curl_easy_perform(e);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	if (rc != CURLE_OK) {
		fprintf(stderr, "harness: PUT %s: %s\n", url, curl_easy_strerror(rc));
		return -EIO;
	}
	return status;
}

const char *th_url_path(const char *key)
{
	char out[1024];
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)key; *p && o + 4 < sizeof(out); p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			out[o++] = (char)*p;
		} else {
			snprintf(out + o, 4, "%%%02X", *p);
			o += 3;
		}
	}
	out[o] = 0;
	return th_fmt("%s", out);
}

static int mkdirs(const char *path)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return 0;
}

int th_write_file(const char *path, uint64_t seed, uint64_t size)
{
	int r = mkdirs(path);
	if (r)
		return r;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	static unsigned char buf[1 << 20];
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		th_fill(seed, off, buf, n);
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		off += (uint64_t)w;
	}
	return close(fd) ? -errno : 0;
}

int th_write_text(const char *path, const char *text)
{
	int r = mkdirs(path);
	if (r)
		return r;
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

char *th_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	size_t k;
	while (b && (k = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n - 1 == 0) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (b)
		b[n] = 0;
	if (len)
		*len = n;
	return b;
}

bool th_file_contains(const char *path, const char *needle)
{
	char *b = th_slurp(path, NULL);
	bool r = b && strstr(b, needle);
	free(b);
	return r;
}

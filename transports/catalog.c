/* SPDX-License-Identifier: MIT */
/* Catalogs: what a dataset holds.  Built by a transport's listing or from a manifest. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "transports/transport.h"

#define MANIFEST_MAX	     (256u << 20) /* bytes */
#define MANIFEST_MAX_ENTRIES (1u << 24)

int stk__catalog_add(struct stk_catalog *c, const char *key, size_t key_len, const char *uri,
		     uint64_t size)
{
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 64;
		struct stk_catalog_entry *e = realloc(c->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		c->e = e;
		c->cap = cap;
	}
	struct stk_catalog_entry *e = &c->e[c->n];
	size_t ul = strlen(uri);
	e->uri = strdup(uri);
	e->key_in_uri =
	    key_len <= ul && !memcmp(uri + ul - key_len, key, key_len) && !memchr(key, 0, key_len);
	e->key = !e->uri ? NULL : e->key_in_uri ? e->uri + ul - key_len : strndup(key, key_len);
	e->size = size;
	e->line = 0;
	e->codec = STK_CODEC_NONE;
	e->version = NULL;
	if (!e->key || !e->uri) {
		if (!e->key_in_uri)
			free(e->key);
		free(e->uri);
		return -ENOMEM;
	}
	c->n++;
	return 0;
}

void stk__catalog_free(struct stk_catalog *c)
{
	for (uint32_t i = 0; i < c->n; i++) {
		if (!c->e[i].key_in_uri)
			free(c->e[i].key);
		free(c->e[i].uri);
		free(c->e[i].version);
	}
	free(c->e);
	c->e = NULL;
	c->n = c->cap = 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct stk_catalog_entry *)a)->key,
		      ((const struct stk_catalog_entry *)b)->key);
}

void stk__catalog_sort(struct stk_catalog *c)
{
	if (c->n > 1)
		qsort(c->e, c->n, sizeof(*c->e), by_key);
}

/*
 * SipHash-1-3 (Aumasson and Bernstein), keyed afresh for each manifest, so
 * that no manifest can be written to make its URIs collide in the table below.
 */
static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

static uint64_t siphash13(const char *p, size_t len, const uint64_t k[2])
{
	uint64_t v[4] = { k[0] ^ 0x736f6d6570736575ull, k[1] ^ 0x646f72616e646f6dull,
			  k[0] ^ 0x6c7967656e657261ull, k[1] ^ 0x7465646279746573ull };
	uint64_t m, b = (uint64_t)len << 56;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);
		v[3] ^= m;
		sipround(v);
		v[0] ^= m;
	}
	for (int s = 0; i < len; i++, s += 8)
		b |= (uint64_t)(unsigned char)p[i] << s;
	v[3] ^= b;
	sipround(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	sipround(v);
	sipround(v);
	sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/*
 * The URIs of a manifest seen so far, to find a repeat in O(1): open
 * addressing with linear probing over indices into cat->e (plus one; 0 is
 * empty), never more than half full.
 */
struct uri_set {
	const struct stk_catalog *cat;
	uint32_t *slot;
	size_t mask;
	size_t n;
	uint64_t key[2];
};

static int uri_set_init(struct uri_set *s, const struct stk_catalog *cat)
{
	memset(s, 0, sizeof(*s));
	s->cat = cat;
	if (getrandom(s->key, sizeof(s->key), GRND_NONBLOCK) != sizeof(s->key)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s->key[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
		s->key[1] = (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ull;
	}
	s->mask = 63;
	s->slot = calloc(s->mask + 1, sizeof(*s->slot));
	return s->slot ? 0 : -ENOMEM;
}

/* The slot that holds uri, or the empty slot where it would go. */
static uint32_t *uri_set_find(const struct uri_set *s, const char *uri, size_t len)
{
	size_t i = (size_t)siphash13(uri, len, s->key) & s->mask;
	for (;; i = (i + 1) & s->mask) {
		uint32_t *sl = &s->slot[i];
		if (!*sl || !strcmp(s->cat->e[*sl - 1].uri, uri))
			return sl;
	}
}

/* Adds entry index idx, whose URI is not in s yet. 0 or -ENOMEM. */
static int uri_set_add(struct uri_set *s, uint32_t *where, uint32_t idx)
{
	*where = idx + 1;
	if (++s->n <= (s->mask + 1) / 2)
		return 0;
	size_t old_mask = s->mask;
	uint32_t *old = s->slot;
	s->slot = calloc((old_mask + 1) * 2, sizeof(*s->slot));
	if (!s->slot) {
		s->slot = old;
		return -ENOMEM;
	}
	s->mask = old_mask * 2 + 1;
	for (size_t i = 0; i <= old_mask; i++) {
		if (!old[i])
			continue;
		const char *u = s->cat->e[old[i] - 1].uri;
		*uri_set_find(s, u, strlen(u)) = old[i];
	}
	free(old);
	return 0;
}

int stk__manifest_parse(const char *text, size_t len, const char *name, struct stk_catalog *cat,
			char *err, size_t errlen)
{
	struct uri_set seen;
	uint32_t first = cat->n; /* the entries this manifest adds start here */
	int r = uri_set_init(&seen, cat);
	if (r) {
		snprintf(err, errlen, "manifest %s: out of memory", name);
		goto out;
	}
	size_t off = 0;
	for (unsigned line = 1; off < len; line++) {
		const char *p = text + off;
		const char *nl = memchr(p, '\n', len - off);
		size_t n = nl ? (size_t)(nl - p) : len - off;
		off += n + (nl ? 1 : 0);
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		while (n && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		if (!n || *p == '#')
			continue;
		r = -EINVAL;
		if (memchr(p, 0, n)) {
			snprintf(err, errlen, "manifest %s line %u: contains a NUL byte", name,
				 line);
			goto out;
		}
		size_t ul = 0;
		while (ul < n && !isspace((unsigned char)p[ul]))
			ul++;
		if (ul > 4096) {
			snprintf(err, errlen, "manifest %s line %u: URI longer than 4096 bytes",
				 name, line);
			goto out;
		}
		char uri[4097];
		memcpy(uri, p, ul);
		uri[ul] = 0;
		uint64_t size = STK_SIZE_UNKNOWN;
		const char *s = p + ul;
		size_t sl = n - ul;
		while (sl && isspace((unsigned char)*s)) {
			s++;
			sl--;
		}
		if (sl) {
			char num[32];
			bool bad = sl >= sizeof(num);
			if (!bad) {
				memcpy(num, s, sl);
				num[sl] = 0;
				bad = stk__parse_u64(num, UINT64_MAX - 1, &size) != 0;
			}
			if (bad) {
				snprintf(
				    err, errlen,
				    "manifest %s line %u: size field '%.*s' is not a byte count",
				    name, line, (int)(sl < 40 ? sl : 40), s);
				goto out;
			}
		}
		if (!strstr(uri, "://")) {
			snprintf(err, errlen,
				 "manifest %s line %u: '%s' is not a URI (scheme://...)", name,
				 line, uri);
			goto out;
		}
		uint32_t *slot = uri_set_find(&seen, uri, ul);
		if (*slot) {
			snprintf(err, errlen, "manifest %s line %u: %s repeats line %u", name, line,
				 uri, (unsigned)cat->e[*slot - 1].line);
			goto out;
		}
		if (cat->n - first >= MANIFEST_MAX_ENTRIES) {
			snprintf(err, errlen, "manifest %s line %u: more than %u entries", name,
				 line, MANIFEST_MAX_ENTRIES);
			r = -E2BIG;
			goto out;
		}
		r = stk__catalog_add(cat, uri, ul, uri, size);
		if (!r) {
			cat->e[cat->n - 1].line = line;
			r = uri_set_add(&seen, slot, cat->n - 1);
		}
		if (r) {
			snprintf(err, errlen, "manifest %s line %u: out of memory", name, line);
			goto out;
		}
	}
	r = 0;
out:
	free(seen.slot);
	return r;
}

int stk__catalog_build(const char *uri, bool manifest, bool zstd, struct stk_catalog *cat,
		       char *err, size_t errlen)
{
	int r;
	const struct stk_transport_ops *tp = stk__transport_find(uri, &r, err, errlen);
	if (!tp)
		return r;
	if (!manifest) {
		r = tp->list(uri, cat, err, errlen);
		if (!r && zstd && (r = stk__catalog_zstd(uri, false, cat, err, errlen)))
			stk__catalog_free(cat);
		return r;
	}

	char *text = NULL;
	size_t len = 0;
	r = tp->read_all(uri, MANIFEST_MAX, &text, &len, err, errlen);
	if (r)
		return r;
	r = stk__manifest_parse(text, len, uri, cat, err, errlen);
	free(text);
	if (!r && zstd)
		r = stk__catalog_zstd(uri, true, cat, err, errlen);
	for (uint32_t i = 0; !r && i < cat->n; i++) {
		struct stk_catalog_entry *e = &cat->e[i];
		const struct stk_transport_ops *etp = stk__transport_find(e->uri, &r, err, errlen);
		if (etp && e->size == STK_SIZE_UNKNOWN)
			r = etp->stat(e->uri, &e->size, err, errlen);
		if (r) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, " (manifest %s line %u)", uri,
				 (unsigned)e->line);
		}
	}
	if (r)
		stk__catalog_free(cat);
	return r;
}

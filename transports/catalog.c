/* SPDX-License-Identifier: MIT */
/* Catalogs: what a dataset holds.  Built by a transport's listing or from a manifest. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "transports/transport.h"

#define MANIFEST_MAX (256u << 20)

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
	e->key = strndup(key, key_len);
	e->uri = strdup(uri);
	e->size = size;
	if (!e->key || !e->uri) {
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
		free(c->e[i].key);
		free(c->e[i].uri);
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

int stk__manifest_parse(const char *text, size_t len, const char *name, struct stk_catalog *cat,
			char *err, size_t errlen)
{
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
		if (memchr(p, 0, n)) {
			snprintf(err, errlen, "manifest %s line %u: contains a NUL byte", name,
				 line);
			return -EINVAL;
		}
		size_t ul = 0;
		while (ul < n && !isspace((unsigned char)p[ul]))
			ul++;
		if (ul > 4096) {
			snprintf(err, errlen, "manifest %s line %u: URI longer than 4096 bytes",
				 name, line);
			return -EINVAL;
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
				return -EINVAL;
			}
		}
		if (!strstr(uri, "://")) {
			snprintf(err, errlen,
				 "manifest %s line %u: '%s' is not a URI (scheme://...)", name,
				 line, uri);
			return -EINVAL;
		}
		if (stk__catalog_add(cat, uri, ul, uri, size))
			return -ENOMEM;
	}
	return 0;
}

int stk__catalog_build(const char *uri, bool manifest, struct stk_catalog *cat, char *err,
		       size_t errlen)
{
	int r;
	const struct stk_transport_ops *tp = stk__transport_find(uri, &r, err, errlen);
	if (!tp)
		return r;
	if (!manifest)
		return tp->list(uri, cat, err, errlen);

	char *text = NULL;
	size_t len = 0;
	r = tp->read_all(uri, MANIFEST_MAX, &text, &len, err, errlen);
	if (r)
		return r;
	r = stk__manifest_parse(text, len, uri, cat, err, errlen);
	free(text);
	for (uint32_t i = 0; !r && i < cat->n; i++) {
		struct stk_catalog_entry *e = &cat->e[i];
		const struct stk_transport_ops *etp = stk__transport_find(e->uri, &r, err, errlen);
		if (!etp) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, " (manifest %s, entry %u)", uri, i + 1);
			break;
		}
		if (e->size == STK_SIZE_UNKNOWN)
			r = etp->stat(e->uri, &e->size, err, errlen);
	}
	if (r)
		stk__catalog_free(cat);
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * libstoker_shim: STOKER_SHIM_MAP, parsed once into a fixed table, and the
 * allocation-free test of whether a path lies in a mapping.
 */
#include "shim_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct shim_map shim_maps[SHIM_MAX_MAPS];
int shim_nmaps;

/*
 * The cwd, when it lies in a mapping or above one (shim_cwd_map >= 0), for
 * relative paths; otherwise no relative path can be mapped.
 */
int shim_cwd_map = -1;
static char cwd_buf[SHIM_PATH_MAX];
static pthread_mutex_t cwd_mu = PTHREAD_MUTEX_INITIALIZER;

static void add_map(const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	if (!eq || eq == s || shim_nmaps == SHIM_MAX_MAPS) {
		if (n)
			fprintf(stderr, "stoker-shim: ignoring STOKER_SHIM_MAP entry '%.*s'\n",
				(int)n, s);
		return;
	}
	size_t pl = (size_t)(eq - s), ul = n - pl - 1;
	while (pl > 1 && s[pl - 1] == '/')
		pl--;
	if (s[0] != '/' || pl < 2 || pl >= SHIM_PATH_MAX || ul == 0 || ul + 2 >= SHIM_PATH_MAX) {
		fprintf(stderr, "stoker-shim: ignoring STOKER_SHIM_MAP entry '%.*s'\n", (int)n, s);
		return;
	}
	struct shim_map *m = &shim_maps[shim_nmaps++];
	memcpy(m->prefix, s, pl);
	m->prefix[pl] = 0;
	m->plen = pl;
	memcpy(m->uri, eq + 1, ul);
	m->uri[ul] = 0;
}

void shim__config_init(void)
{
	const char *env = getenv("STOKER_SHIM_MAP");
	if (!env)
		return;
	for (const char *p = env; *p;) {
		const char *e = strchr(p, ';');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		add_map(p, n);
		p += n + (e ? 1 : 0);
	}
	/* Longest prefix first, so /data/a/b wins over /data/a (insertion sort: at most 16). */
	for (int i = 1; i < shim_nmaps; i++) {
		for (int j = i; j > 0 && shim_maps[j].plen > shim_maps[j - 1].plen; j--) {
			struct shim_map t = shim_maps[j];
			shim_maps[j] = shim_maps[j - 1];
			shim_maps[j - 1] = t;
		}
	}
	shim__cwd_changed();
}

/*
 * Normalizes the remainder after a mapping's prefix ("" or "/...") into rel:
 * no leading or trailing '/', no "." or "" components.  Returns 0, or -1 when
 * ".." climbs out of the mapping or rel is too small (the caller then leaves
 * the path to the real call).
 */
static int normalize(const char *s, char *rel, size_t cap)
{
	size_t o = 0;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = s;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - s);
		if (n == 0 || (n == 1 && s[0] == '.')) {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (o == 0)
				return -1;
			while (o > 0 && rel[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o + n + 2 > cap)
				return -1;
			if (o)
				rel[o++] = '/';
			memcpy(rel + o, s, n);
			o += n;
		}
		s = e;
	}
	rel[o] = 0;
	return 0;
}

static int match_abs(const char *path, char *rel, size_t cap)
{
	for (int i = 0; i < shim_nmaps; i++) {
		const struct shim_map *m = &shim_maps[i];
		/* strncmp, not memcmp: path may be shorter than the prefix. */
		if (strncmp(path, m->prefix, m->plen) == 0 &&
		    (path[m->plen] == '/' || path[m->plen] == 0))
			return normalize(path + m->plen, rel, cap) ? -1 : i;
	}
	return -1;
}

int shim__match(const char *path, char *rel, size_t cap)
{
	if (!path || !shim_nmaps)
		return -1;
	if (path[0] == '/') {
		/* The common case: one strncmp() per mapping, most ending at the first bytes. */
		return match_abs(path, rel, cap);
	}
	if (__atomic_load_n(&shim_cwd_map, __ATOMIC_RELAXED) < 0 || !path[0])
		return -1;
	char abs[SHIM_PATH_MAX * 2];
	pthread_mutex_lock(&cwd_mu);
	int r = -1;
	size_t cl = strlen(cwd_buf), pl = strlen(path);
	if (shim_cwd_map >= 0 && cl + pl + 2 <= sizeof(abs)) {
		/* "/" + "/rel" is "//rel", which match_abs() would not take for "/rel". */
		if (cl == 1)
			cl = 0;
		memcpy(abs, cwd_buf, cl);
		abs[cl] = '/';
		memcpy(abs + cl + 1, path, pl + 1);
		r = 0;
	}
	pthread_mutex_unlock(&cwd_mu);
	return r ? -1 : match_abs(abs, rel, cap);
}

void shim__cwd_changed(void)
{
	char buf[SHIM_PATH_MAX];
	char rel[SHIM_PATH_MAX];
	int m = -1;
	if (shim_nmaps && getcwd(buf, sizeof(buf))) {
		m = match_abs(buf, rel, sizeof(rel));
		size_t n = strlen(buf);
		for (int i = 0; i < shim_nmaps && m < 0; i++) {
			const struct shim_map *p = &shim_maps[i];
			if (n == 1 ||
			    (n < p->plen && !memcmp(p->prefix, buf, n) && p->prefix[n] == '/'))
				m = i;
		}
	}
	pthread_mutex_lock(&cwd_mu);
	if (m >= 0)
		memcpy(cwd_buf, buf, strlen(buf) + 1);
	__atomic_store_n(&shim_cwd_map, m, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&cwd_mu);
}

bool shim__is_ancestor(const char *path)
{
	char norm[SHIM_PATH_MAX];
	if (!path || path[0] != '/' || normalize(path, norm, sizeof(norm)))
		return false;
	size_t n = strlen(norm);
	for (int i = 0; i < shim_nmaps; i++) {
		const char *p = shim_maps[i].prefix + 1;
		if (n + 1 < shim_maps[i].plen && !strncmp(p, norm, n) && (n == 0 || p[n] == '/'))
			return true;
	}
	return false;
}

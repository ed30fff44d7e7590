/* SPDX-License-Identifier: MIT */
/*
 * file://: listing.  A dataset URI naming a directory below an allowed root
 * is walked (openat relative to the confined open of the directory, never
 * following a symlink), and every regular file below it becomes a catalog
 * entry with its version; symlinks and special files are not objects.  One
 * naming a regular file is a dataset of that one object.  stokerd's own
 * credentials files are never listed.  Confinement and reads are in file.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transports/file_int.h"
#include "transports/transport.h"

#define MAX_DEPTH 64

/* Adds a listed regular file with its version. 0 or -ENOMEM. */
static int add_file(struct stk_catalog *cat, const char *key, size_t key_len, const char *uri,
		    const struct stat *st)
{
	char v[80];
	int r = stk__catalog_add(cat, key, key_len, uri, (uint64_t)st->st_size);
	if (r)
		return r;
	stk__file_version(st, v, sizeof(v));
	cat->e[cat->n - 1].version = strdup(v);
	return cat->e[cat->n - 1].version ? 0 : -ENOMEM;
}

struct walk {
	struct stk_catalog *cat;
	const char *base; /* the dataset URI, ending in '/' */
	char key[4096];
	char *err;
	size_t errlen;
};

static int walk_dir(struct walk *w, int dfd, size_t klen, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while (!r && (errno = 0, de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		size_t nl = strlen(n);
		if (klen + nl + 2 > sizeof(w->key)) {
			snprintf(w->err, w->errlen, "%s%s: path too long", w->base, w->key);
			r = -ENAMETOOLONG;
			break;
		}
		memcpy(w->key + klen, n, nl + 1);
		struct stat st;
		if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			snprintf(w->err, w->errlen, "%s%s: %s", w->base, w->key, strerror(-r));
			break;
		}
		if (S_ISREG(st.st_mode)) {
			if (stk__file_is_secret(&st))
				continue; /* stokerd's credentials: not listed, not said */
			char uri[8192];
			snprintf(uri, sizeof(uri), "%s%s", w->base, w->key);
			r = add_file(w->cat, w->key, klen + nl, uri, &st);
		} else if (S_ISDIR(st.st_mode)) {
			if (depth >= MAX_DEPTH) {
				snprintf(w->err, w->errlen, "%s%s: deeper than %d levels", w->base,
					 w->key, MAX_DEPTH);
				r = -ELOOP;
				break;
			}
			int sub =
			    openat(dirfd(d), n, OPEN_FLAGS | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = -errno;
				snprintf(w->err, w->errlen, "%s%s: %s", w->base, w->key,
					 strerror(-r));
				break;
			}
			w->key[klen + nl] = '/';
			w->key[klen + nl + 1] = 0;
			r = walk_dir(w, sub, klen + nl + 1, depth + 1);
		}
		/* Symlinks and special files are not objects: a link could point anywhere. */
	}
	if (!r && errno) {
		r = -errno;
		snprintf(w->err, w->errlen, "%s: reading directory: %s", w->base, strerror(-r));
	}
	closedir(d);
	return r;
}

int stk__file_list(const char *uri, struct stk_catalog *cat, char *err, size_t errlen)
{
	struct stat st;
	int fd = stk__file_open_confined(uri, true, &st, err, errlen);
	if (fd < 0)
		return fd;
	if (S_ISREG(st.st_mode)) {
		close(fd);
		const char *slash = strrchr(uri, '/');
		const char *key = slash[1] ? slash + 1 : uri;
		int r = add_file(cat, key, strlen(key), uri, &st);
		if (r) {
			snprintf(err, errlen, "%s: out of memory listing", uri);
			stk__catalog_free(cat);
		}
		return r;
	}
	struct walk *w = calloc(1, sizeof(*w));
	char *base = malloc(strlen(uri) + 2);
	int r = -ENOMEM;
	if (!w || !base) {
		close(fd);
		goto out;
	}
	size_t ul = strlen(uri);
	memcpy(base, uri, ul + 1);
	if (base[ul - 1] != '/') {
		base[ul] = '/';
		base[ul + 1] = 0;
	}
	w->cat = cat;
	w->base = base;
	w->err = err;
	w->errlen = errlen;
	r = walk_dir(w, fd, 0, 0);
	if (r == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory listing", uri);
	if (!r)
		stk__catalog_sort(cat);
out:
	if (r)
		stk__catalog_free(cat);
	free(w);
	free(base);
	return r;
}

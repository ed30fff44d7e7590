/* SPDX-License-Identifier: MIT */
/*
 * shim_errno: the errno details of libstoker_shim, run by test_shim.sh under
 * LD_PRELOAD with MNT mapped (and absent locally) and ROOT its original.
 * Checks: ENOENT, ENOTDIR through an object, EISDIR, EROFS, EEXIST, EACCES,
 * errno untouched on success, fstat agreeing with stat, directory streams
 * (readdir, dirfd + openat, scandir with filter and compar), realpath, and
 * concurrent opens from several threads.  Prints "FAIL ..." and exits 1 on
 * the first mismatch.
 *
 * Usage: shim_errno MNT ROOT (the dataset test_shim.sh makes)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mnt, *root;
static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static const char *m(const char *rel)
{
	static __thread char buf[4][PATH_MAX];
	static __thread int i;
	char *b = buf[i++ & 3];
	snprintf(b, PATH_MAX, "%s/%s", mnt, rel);
	return b;
}

/* Expects call to fail with err and errno err. */
#define EXPECT_ERR(call, err)                                                                      \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		int e_ = errno;                                                                    \
		CHECK(r_ == -1 && e_ == (err), "%s gave %ld errno %d (%s), want %s", #call, r_,    \
		      e_, strerror(e_), strerror(err));                                            \
	} while (0)

/* Expects a pointer-returning call to fail with NULL and errno err. */
#define EXPECT_NULL(call, err)                                                                     \
	do {                                                                                       \
		errno = 0;                                                                         \
		const void *p_ = (call);                                                           \
		int e_ = errno;                                                                    \
		CHECK(p_ == NULL && e_ == (err), "%s gave %p errno %d (%s), want %s", #call, p_,   \
		      e_, strerror(e_), strerror(err));                                            \
	} while (0)

static void *reader(void *arg)
{
	(void)arg;
	char want[64], got[64] = { 0 };
	FILE *f = fopen(m("train/n01/sub/deep.txt"), "r");
	if (!f)
		return (void *)1;
	size_t n = fread(want, 1, sizeof(want), f);
	fclose(f);
	for (int i = 0; i < 200; i++) {
		int fd = open(m("train/n01/sub/deep.txt"), O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, got, sizeof(got)) != (ssize_t)n || memcmp(got, want, n))
			return (void *)1;
		close(fd);
	}
	return NULL;
}

static int by_name_desc(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*b)->d_name, (*a)->d_name);
}

static int no_dots(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: shim_errno MNT ROOT\n");
		return 2;
	}
	mnt = argv[1];
	root = argv[2];
	struct stat st, st2;

	/* Success leaves errno alone. */
	errno = 4242;
	CHECK(stat(m("hello.txt"), &st) == 0 && errno == 4242, "stat errno %d", errno);
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0444 && st.st_size == 6,
	      "mode %o size %lld", st.st_mode, (long long)st.st_size);
	CHECK(st.st_blksize == 4096 && st.st_ino != 0, "blksize %ld", (long)st.st_blksize);
	int fd = open(m("hello.txt"), O_RDONLY);
	CHECK(fd >= 0 && errno == 4242, "open fd %d errno %d", fd, errno);
	char buf[64] = { 0 };
	CHECK(read(fd, buf, sizeof(buf)) == 6 && !memcmp(buf, "hello\n", 6), "read '%s'", buf);
	CHECK(fstat(fd, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev &&
		  st2.st_size == 6,
	      "fstat ino %llu vs %llu", (unsigned long long)st2.st_ino,
	      (unsigned long long)st.st_ino);
	CHECK(!(fcntl(fd, F_GETFD) & FD_CLOEXEC), "O_CLOEXEC not asked for, but set");
	close(fd);
	fd = open(m("hello.txt"), O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "O_CLOEXEC asked for, not set");
	close(fd);
	CHECK(stat(m("train/n02"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0555,
	      "dir mode %o", st.st_mode);
	CHECK(stat(mnt, &st) == 0 && S_ISDIR(st.st_mode), "root mode %o", st.st_mode);
	/*
	 * Binaries built against glibc before 2.33 call __xstat/__lxstat/__fxstatat
	 * (version 1 on x86-64): compat symbols now, found by name as such a
	 * binary's reference finds them.
	 */
	int (*xstat)(int, const char *, struct stat *) =
	    (int (*)(int, const char *, struct stat *))dlsym(RTLD_DEFAULT, "__xstat");
	int (*lxstat)(int, const char *, struct stat *) =
	    (int (*)(int, const char *, struct stat *))dlsym(RTLD_DEFAULT, "__lxstat");
	int (*fxstatat)(int, int, const char *, struct stat *, int) =
	    (int (*)(int, int, const char *, struct stat *, int))dlsym(RTLD_DEFAULT, "__fxstatat");
	CHECK(xstat && lxstat && fxstatat, "the pre-2.33 stat entry points are not found");
	if (xstat && lxstat && fxstatat) {
		memset(&st2, 0, sizeof(st2));
		CHECK(xstat(1, m("hello.txt"), &st2) == 0 && S_ISREG(st2.st_mode) &&
			  st2.st_size == 6,
		      "__xstat: mode %o size %lld", st2.st_mode, (long long)st2.st_size);
		CHECK(lxstat(1, m("train/n02"), &st2) == 0 && S_ISDIR(st2.st_mode),
		      "__lxstat: mode %o", st2.st_mode);
		CHECK(fxstatat(1, AT_FDCWD, m("train/n02/big.bin"), &st2, 0) == 0 &&
			  st2.st_size == 3 << 20,
		      "__fxstatat: size %lld", (long long)st2.st_size);
		EXPECT_ERR(xstat(1, m("missing.txt"), &st2), ENOENT);
		errno = 4242; /* what the checks below expect success to leave alone */
	}
	CHECK(access(m("hello.txt"), R_OK) == 0 && errno == 4242, "access R_OK");
	CHECK(lstat(m("train/n02/big.bin"), &st) == 0 && st.st_size == 3 << 20 &&
		  st.st_blocks == 6144,
	      "lstat size %lld blocks %lld", (long long)st.st_size, (long long)st.st_blocks);
	struct statx sx;
	CHECK(statx(AT_FDCWD, m("train/n02/big.bin"), 0, STATX_BASIC_STATS, &sx) == 0 &&
		  sx.stx_size == 3 << 20 && S_ISREG(sx.stx_mode),
	      "statx size %llu", (unsigned long long)sx.stx_size);

	/* The errors a read-only filesystem gives. */
	EXPECT_ERR(open(m("nope.txt"), O_RDONLY), ENOENT);
	EXPECT_ERR(stat(m("nope/deeper"), &st), ENOENT);
	EXPECT_ERR(open(m("hello.txt/x"), O_RDONLY), ENOTDIR);
	EXPECT_ERR(stat(m("hello.txt/x"), &st), ENOTDIR);
	EXPECT_ERR(open(m("train/n02/big.bin/y/z"), O_RDONLY), ENOTDIR);
	EXPECT_ERR(open(m("hello.txt"), O_RDONLY | O_DIRECTORY), ENOTDIR);
	EXPECT_NULL(opendir(m("hello.txt")), ENOTDIR);
	EXPECT_ERR(open(m("train"), O_WRONLY), EISDIR);
	EXPECT_ERR(open(m("train"), O_RDWR), EISDIR);
	EXPECT_ERR(open(m("hello.txt"), O_WRONLY), EROFS);
	EXPECT_ERR(open(m("hello.txt"), O_RDONLY | O_TRUNC), EROFS);
	EXPECT_ERR(open(m("hello.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	EXPECT_ERR(open(m("train/new.txt"), O_WRONLY | O_CREAT, 0644), EROFS);
	EXPECT_ERR(open(m("nodir/new.txt"), O_WRONLY | O_CREAT, 0644), ENOENT);
	EXPECT_NULL(fopen(m("hello.txt"), "w"), EROFS);
	EXPECT_NULL(fopen(m("hello.txt"), "r+"), EROFS);
	EXPECT_NULL(fopen(m("shards/new.txt"), "a"), EROFS);
	EXPECT_NULL(fopen(m("nope.txt"), "r"), ENOENT);
	EXPECT_ERR(access(m("hello.txt"), W_OK), EROFS);
	EXPECT_ERR(access(m("hello.txt"), X_OK), EACCES);
	EXPECT_ERR(access(m("nope.txt"), F_OK), ENOENT);

	/* fopen and freopen give streams over the object. */
	errno = 4242;
	FILE *f = fopen(m("train/n01/s1.txt"), "re");
	CHECK(f && errno == 4242, "fopen errno %d", errno);
	CHECK(f && fgets(buf, sizeof(buf), f) && !strcmp(buf, "sample 1\n"), "fgets '%s'", buf);
	f = f ? freopen(m("hello.txt"), "r", f) : NULL;
	CHECK(f && fgets(buf, sizeof(buf), f) && !strcmp(buf, "hello\n"), "freopen '%s'", buf);
	if (f)
		fclose(f);

	/* Directory streams, dirfd() and openat() relative to it. */
	DIR *d = opendir(m("train/n01"));
	CHECK(d != NULL, "opendir train/n01: %s", strerror(errno));
	int seen = 0, files = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, "sub")) {
			seen |= 1;
			CHECK(e->d_type == DT_DIR, "sub type %d", e->d_type);
		} else if (!strncmp(e->d_name, "s", 1) && strstr(e->d_name, ".txt")) {
			files++;
			CHECK(e->d_type == DT_REG, "%s type %d", e->d_name, e->d_type);
		} else if (!strcmp(e->d_name, ".")) {
			seen |= 4;
		} else if (!strcmp(e->d_name, "..")) {
			seen |= 8;
		} else {
			CHECK(0, "unexpected entry %s", e->d_name);
		}
	}
	CHECK(seen == 13 && files == 5, "entries seen %x, %d files", seen, files);
	if (d) {
		rewinddir(d);
		CHECK(readdir(d) != NULL, "readdir after rewinddir");
		int dfd = dirfd(d);
		CHECK(dfd >= 0, "dirfd");
		CHECK(fstatat(dfd, "s2.txt", &st, 0) == 0 && st.st_size == 9, "fstatat(dirfd)");
		int ofd = openat(dfd, "sub/deep.txt", O_RDONLY);
		CHECK(ofd >= 0 && read(ofd, buf, sizeof(buf)) == 5 && buf[0] == 'd',
		      "openat(dirfd, sub/deep.txt)");
		if (ofd >= 0)
			close(ofd);
		CHECK(fstat(dfd, &st) == 0 && S_ISDIR(st.st_mode), "fstat(dirfd) mode %o",
		      st.st_mode);
		CHECK(closedir(d) == 0, "closedir");
	}
	int dfd = open(m("train/n01"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0, "open dir: %s", strerror(errno));
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	CHECK(d != NULL, "fdopendir: %s", strerror(errno));
	int n = 0;
	while (d && readdir(d))
		n++;
	CHECK(n == 8, "fdopendir entries %d", n);
	if (d)
		closedir(d);
	struct dirent **list;
	n = scandir(mnt, &list, no_dots, by_name_desc);
	CHECK(n == 5, "scandir n %d", n);
	if (n == 5) {
		CHECK(!strcmp(list[0]->d_name, "with space") && !strcmp(list[4]->d_name, "empty"),
		      "scandir order %s..%s", list[0]->d_name, list[4]->d_name);
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	if (n >= 0)
		free(list);

	/* realpath is lexical inside a mapping. */
	char rp[PATH_MAX];
	CHECK(realpath(m("train/./n01/../n02/big.bin"), rp) && !strcmp(rp, m("train/n02/big.bin")),
	      "realpath %s", rp);
	char *rpa = realpath(mnt, NULL);
	CHECK(rpa && !strcmp(rpa, mnt), "realpath root %s", rpa ? rpa : "NULL");
	free(rpa);
	EXPECT_NULL(realpath(m("train/nope"), rp), ENOENT);

	/* Unmapped paths are the real ones. */
	char orig[PATH_MAX];
	snprintf(orig, sizeof(orig), "%s/hello.txt", root);
	errno = 4242;
	fd = open(orig, O_RDONLY);
	CHECK(fd >= 0 && errno == 4242, "open original");
	CHECK(fstat(fd, &st) == 0 && st.st_mode != (S_IFREG | 0444), "original's own mode");
	close(fd);
	EXPECT_ERR(open("/nonexistent-shim-test/x", O_RDONLY), ENOENT);

	/* Several threads at once, connecting lazily under the shim's lock. */
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, reader, NULL);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(t[i], &r);
		CHECK(r == NULL, "thread %d failed", i);
	}
	if (failures)
		return 1;
	printf("shim_errno: ok\n");
	return 0;
}

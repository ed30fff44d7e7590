/* SPDX-License-Identifier: MIT */
/*
 * Trust domains (stokerd --isolate): a client maps whole RAM segments, so a
 * segment may hold only objects its clients could have opened.  By default
 * each uid is a domain: root warms dataset A, then a client running as
 * another uid (nobody, admitted by the daemon's gid) reads dataset B and
 * scans every segment it has mapped for A's bytes; it must find none, and
 * share no segment with root.  With --isolate none it finds them, which shows
 * the scan can see a leak.  A domain's own copy of A is fetched again.
 *
 * The child reports through a pipe and never asserts (see harness.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* Every test in this file: Criterion 2.4.1 leaks under ASan when timeouts differ within a file. */
#define TIMEOUT_S 90

#define NOBODY	   65534
#define MARK	   "SECRET-OF-A:"
#define MAX_INODES 64

/* Writes dataset A: files filled with MARK and their index, small ones and extents. */
static void make_secret(struct e2e_dataset *ds, size_t n)
{
	char dir[256], path[320], unit[32];
	snprintf(dir, sizeof(dir), "%s/a", e2e_d.root);
	cr_assert_eq(e2x_mkdirs(dir), 0);
	memset(ds, 0, sizeof(*ds));
	snprintf(ds->dir, sizeof(ds->dir), "%s", dir);
	snprintf(ds->uri, sizeof(ds->uri), "file://%s/", dir);
	ds->n = n;
	for (size_t i = 0; i < n; i++) {
		size_t size = i % 8 == 7 ? 100 * E2E_KIB : 2 * E2E_KIB + i;
		char *b = malloc(size);
		cr_assert_not_null(b);
		int ul = snprintf(unit, sizeof(unit), MARK "%04zu|", i);
		for (size_t k = 0; k < size; k++)
			b[k] = unit[k % (size_t)ul];
		snprintf(path, sizeof(path), "%s/s%04zu", dir, i);
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(fwrite(b, 1, size, f), size);
		fclose(f);
		free(b);
	}
}

/*
 * Gets every object of uri and checks it is the size listed; returns how
 * many.  The dataset stays open (its segments stay mapped): in *keep if not
 * NULL, for the caller to close.
 */
static int get_all(struct stk_client *c, const char *uri, struct stk_dataset **keep)
{
	struct stk_dataset *sds = NULL;
	int r = stk_dataset_open(c, uri, 0, &sds);
	if (r) {
		fprintf(stderr, "open %s: %s (%s)\n", uri, stk_strerror(r), stk_errmsg());
		return -1;
	}
	/*
	 * Planned for two epochs, so that what it read stays needed: the
	 * objects of datasets nobody plans are the ones evicted for it.
	 */
	size_t cnt = stk_dataset_count(sds);
	uint32_t *order = malloc((2 * cnt + 1) * sizeof(*order));
	for (size_t i = 0; order && i < 2 * cnt; i++)
		order[i] = (uint32_t)(i % cnt);
	if (!order || stk_plan(sds, order, 2 * cnt)) {
		free(order);
		fprintf(stderr, "plan %s: %s\n", uri, stk_errmsg());
		return -1;
	}
	free(order);
	int n = 0;
	for (size_t i = 0; i < cnt; i++) {
		struct stk_view v;
		uint64_t size = 0;
		stk_dataset_object(sds, i, NULL, &size);
		r = stk_get(sds, i, &v);
		if (r || v.size != size) {
			fprintf(stderr, "get %s #%zu: %s\n", uri, i, stk_strerror(r));
			return -1;
		}
		stk_release(&v);
		n++;
	}
	if (keep)
		*keep = sds;
	return n;
}

struct scan {
	int segments; /* stoker segments this process maps */
	int hits;     /* of which hold MARK */
	unsigned long inodes[MAX_INODES];
};

/* Reads every stoker segment this process maps, looking for MARK. */
static int scan_segments(struct scan *sc)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -errno;
	char line[512];
	memset(sc, 0, sizeof(*sc));
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		char path[256] = "";
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu %255s", &lo, &hi, &ino, path) < 3 ||
		    !strstr(path, "memfd:stoker."))
			continue;
		if (sc->segments < MAX_INODES)
			sc->inodes[sc->segments] = ino;
		sc->segments++;
		if (memmem((const void *)lo, hi - lo, MARK, strlen(MARK)))
			sc->hits++;
	}
	fclose(f);
	return 0;
}

/* Unmaps the stoker segments a forked child inherited, so a scan sees only its own. */
static void unmap_inherited(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo[MAX_INODES], hi[MAX_INODES];
	int n = 0;
	char line[512];
	while (f && fgets(line, sizeof(line), f) && n < MAX_INODES) {
		char path[256] = "";
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*u %255s", &lo[n], &hi[n], path) == 3 &&
		    strstr(path, "memfd:stoker."))
			n++;
	}
	if (f)
		fclose(f);
	for (int i = 0; i < n; i++)
		munmap((void *)lo[i], hi[i] - lo[i]);
}

/*
 * In a child running as nobody: reads dataset b (and a, when a_uri is not
 * NULL), then scans its segments.  Returns the child's report.
 */
static struct scan as_nobody(const char *b_uri, const char *a_uri)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct scan sc = { .segments = -1 };
		struct stk_client *c = NULL;
		close(p[0]);
		unmap_inherited();
		if (setgroups(0, NULL) || setuid(NOBODY)) {
			perror("setuid");
		} else if (e2x_connect(e2e_d.sock, &c) == 0 && get_all(c, b_uri, NULL) > 0 &&
			   (!a_uri || get_all(c, a_uri, NULL) > 0) && scan_segments(&sc) == 0) {
			/* sc filled */
		} else {
			sc.segments = -1;
		}
		if (write(p[1], &sc, sizeof(sc)) != (ssize_t)sizeof(sc))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	struct scan sc;
	ssize_t n = read(p[0], &sc, sizeof(sc));
	close(p[0]);
	cr_assert_eq(e2x_wait_child(pid, 60), 0, "the child as uid %d failed", NOBODY);
	cr_assert_eq(n, (ssize_t)sizeof(sc));
	cr_assert_gt(sc.segments, 0, "the child as uid %d could not read its dataset", NOBODY);
	return sc;
}

struct setup {
	struct e2e_dataset a, b;
	struct stk_client *root;
	struct stk_dataset *root_a;
	struct scan mine;
};

/* Starts the daemon with extra flags; root reads all of A, nobody may reach the socket. */
static void setup(struct setup *s, const char *const *extra)
{
	/* The test's directory is 0700: nobody must reach the socket (0660, the daemon's gid). */
	cr_assert_eq(chmod(e2e_d.dir, 0755), 0);
	make_secret(&s->a, 24);
	uint64_t sizes[24];
	for (size_t i = 0; i < 24; i++)
		sizes[i] = i % 8 == 7 ? 100 * E2E_KIB : 2 * E2E_KIB + 3 * i;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/b", e2e_d.root);
	e2e_dataset_make(&s->b, dir, sizes, 24, 0, 0xb0b);
	e2e_daemon_start(&e2e_d, extra);
	s->root = e2e_connect(&e2e_d);
	cr_assert_eq(get_all(s->root, s->a.uri, &s->root_a), 24);
	cr_assert_eq(scan_segments(&s->mine), 0);
	cr_assert_gt(s->mine.hits, 0, "root's own segments hold A");
}

static void teardown(struct setup *s)
{
	stk_dataset_close(s->root_a);
	stk_close(s->root);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&s->b);
}

static bool shares_segment(const struct scan *x, const struct scan *y)
{
	for (int i = 0; i < x->segments && i < MAX_INODES; i++)
		for (int j = 0; j < y->segments && j < MAX_INODES; j++)
			if (x->inodes[i] == y->inodes[j])
				return true;
	return false;
}

Test(e2e_isolation, another_uid_never_maps_a_segment_holding_roots_objects, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct setup s;
	setup(&s, (const char *[]){ "--ram", "64M", NULL });
	uint64_t fetched = e2e_stats(s.root).fetches;
	cr_assert_eq(fetched, 24);

	struct scan sc = as_nobody(s.b.uri, NULL);
	cr_assert_eq(sc.hits, 0, "uid %d mapped %d segments holding root's bytes", NOBODY, sc.hits);
	cr_assert_not(shares_segment(&sc, &s.mine), "uid %d maps one of root's segments", NOBODY);
	cr_assert_eq(e2e_stats(s.root).fetches, fetched + 24);

	/* Reading A itself, nobody gets a copy of its own: fetched again, never root's. */
	sc = as_nobody(s.b.uri, s.a.uri);
	cr_assert_gt(sc.hits, 0);
	cr_assert_not(shares_segment(&sc, &s.mine));
	cr_assert_eq(e2e_stats(s.root).fetches, fetched + 24 + 24,
		     "nobody's B is still cached; its A is a copy of its own");
	teardown(&s);
}

Test(e2e_isolation, isolate_none_shares_segments_and_the_scan_sees_it, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct setup s;
	setup(&s, (const char *[]){ "--ram", "64M", "--isolate", "none", NULL });
	uint64_t fetched = e2e_stats(s.root).fetches;
	struct scan sc = as_nobody(s.b.uri, NULL);
	cr_assert_gt(sc.hits, 0, "B's objects share segments with A's");
	cr_assert(shares_segment(&sc, &s.mine), "one domain: the same segments");
	sc = as_nobody(s.b.uri, s.a.uri);
	cr_assert_eq(e2e_stats(s.root).fetches, fetched + 24, "A came from the cache");
	teardown(&s);
}

/* How many stoker segments this process maps. */
static int mapped_segments(void)
{
	struct scan sc;
	cr_assert_eq(scan_segments(&sc), 0);
	return sc.segments;
}

Test(e2e_isolation, segments_another_domain_takes_are_unmapped_here, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	/* 32 MiB in 4 MiB segments: root fills it, then nobody needs all of it. */
	cr_assert_eq(chmod(e2e_d.dir, 0755), 0);
	struct e2e_dataset a, b, c;
	uint64_t sizes[28];
	for (size_t i = 0; i < 28; i++)
		sizes[i] = 1 * E2E_MIB - 4096 * (i % 3);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/a", e2e_d.root);
	e2e_dataset_make(&a, dir, sizes, 28, 0, 0xa);
	snprintf(dir, sizeof(dir), "%s/b", e2e_d.root);
	e2e_dataset_make(&b, dir, sizes, 28, 0, 0xb);
	snprintf(dir, sizeof(dir), "%s/c", e2e_d.root);
	e2e_dataset_make(&c, dir, sizes, 1, 0, 0xc);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "32M", NULL });
	struct stk_client *root = e2e_connect(&e2e_d);
	struct stk_dataset *ra = NULL;
	cr_assert_eq(get_all(root, a.uri, &ra), 28);
	stk_dataset_close(ra); /* its plan goes: a is needed no more; root keeps its mappings */
	int before = mapped_segments();
	cr_assert_geq(before, 6, "root maps %d segments", before);

	/* nobody's dataset takes the budget: root's segments are emptied and closed. */
	struct scan sc = as_nobody(b.uri, NULL);
	cr_assert_gt(sc.segments, 0);
	/* The next segment root is sent makes it look: the closed ones go. */
	struct stk_dataset *rc = NULL;
	cr_assert_eq(get_all(root, c.uri, &rc), 1);
	int after = mapped_segments();
	cr_assert_lt(after, before / 2, "root still maps %d of %d segments after they closed",
		     after, before);
	stk_dataset_close(rc);
	stk_close(root);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&a);
	e2e_dataset_free(&b);
	e2e_dataset_free(&c);
}

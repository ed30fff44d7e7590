/* SPDX-License-Identifier: MIT */
/*
 * Tests what cache/nvme*.c does when things go wrong: corrupted bytes are
 * never served (found by a get, and by a reopen), half-written records and
 * files are discarded, a writer killed with SIGKILL mid-flight leaves only
 * records that verify, a full disk degrades the store while reads keep
 * working, and O_DIRECT is used where the filesystem takes it (ext4 here;
 * tmpfs too on this kernel) and given up, once, where it does not (ramfs).
 */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "nvme_test.h"

TestSuite(nvme_recovery, .init = setup, .fini = teardown, .timeout = 120);

/* Where e's stored byte at off lies: its file and the offset in it. */
static void locate(struct stk_nvme_ent *pub, uint64_t off, char *path, size_t len, off_t *at)
{
	struct nvme_ent *e = nvme_ent(pub);
	uint64_t hdr =
	    nvme_data_off(e->format, stk__nvme_hdr_len(strlen(pub->uri), strlen(pub->version)));
	if (e->pack == NVME_NOPACK) {
		snprintf(path, len, "%s/l%llu.obj", D, (unsigned long long)e->file_id);
		*at = (off_t)(hdr + off);
	} else {
		struct nvme_pack *p = S->packs[e->pack];
		snprintf(path, len, "%s/s%llu-%llu.pack", D, (unsigned long long)p->slot,
			 (unsigned long long)p->id);
		*at = (off_t)(e->slot * p->slot + hdr + off);
	}
}

/* Flips one bit of e's stored byte at off (off negative: of its header, from the header's end). */
static void corrupt(struct stk_nvme_ent *e, int64_t off)
{
	char path[256];
	off_t at;
	locate(e, 0, path, sizeof(path), &at);
	uint64_t hdr = stk__nvme_hdr_len(strlen(e->uri), strlen(e->version));
	if (off < 0) /* format 2: zeros lie between the header and the stored bytes */
		at -= (off_t)(nvme_data_off(nvme_ent(e)->format, hdr) - hdr);
	at += off;
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	unsigned char c;
	cr_assert_eq(pread(fd, &c, 1, at), 1);
	c ^= 0x10;
	cr_assert_eq(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static const char *URIS[] = { "s3://b/small-a", "s3://b/small-b", "s3://b/small-c",
			      "s3://b/large-a", "s3://b/large-b", "s3://b/large-c" };
static const uint64_t SIZES[] = { 10000, 30000, 50000, 200 * KiB, 1 * MiB + 17, 3 * MiB };

static void put_all(void)
{
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(put_obj(URIS[i], SIZES[i], "v1"), 0);
}

static struct stk_nvme_ent *ent(unsigned i)
{
	return find(URIS[i], SIZES[i], "v1");
}

Test(nvme_recovery, a_corrupted_byte_is_found_by_a_get_and_never_served)
{
	store_open(64 * MiB, 64 * KiB);
	put_all();
	corrupt(ent(1), 12345);
	corrupt(ent(4), 1 * MiB + 3); /* in the second chunk of a large object */
	cr_assert_eq(get_check(ent(1)), -EBADMSG);
	cr_assert_eq(get_check(ent(4)), -EBADMSG);
	cr_assert_null(ent(1), "a corrupt object is dropped");
	cr_assert_null(ent(4));
	for (unsigned i = 0; i < 6; i++)
		if (i != 1 && i != 4)
			cr_assert_eq(get_check(ent(i)), (int64_t)SIZES[i]);
	struct stk_nvme_stats st = stats();
	cr_assert_eq(st.discarded, 2);
	cr_assert_eq(st.objects, 4);
	store_close();
	store_open(64 * MiB, 64 * KiB);
	cr_assert_null(ent(1), "nor is it back after a reopen");
	cr_assert_null(ent(4));
	cr_assert_eq(stats().objects, 4);
}

Test(nvme_recovery, corruption_is_found_at_reopen)
{
	store_open(64 * MiB, 64 * KiB);
	put_all();
	corrupt(ent(0), -20);	  /* the URI, in the header */
	corrupt(ent(3), -60);	  /* the header's lengths */
	corrupt(ent(2), 49999);	  /* the last stored byte */
	corrupt(ent(5), 2 * MiB); /* a data byte of a large object */
	store_close();
	/* Headers are checked at every open: those two are gone. */
	store_open(64 * MiB, 64 * KiB);
	cr_assert_eq(stats().discarded, 2);
	cr_assert_null(ent(0));
	cr_assert_null(ent(3));
	cr_assert_eq(stats().objects, 4);
	cr_assert_leq(du(), stats().used);
	store_close();
	/* Stored bytes with STK_NVME_VERIFY: the other two as well. */
	cr_assert_eq(store_open_flags(64 * MiB, 64 * KiB, STK_NVME_VERIFY), 0);
	cr_assert_eq(stats().discarded, 2);
	cr_assert_null(ent(2));
	cr_assert_null(ent(5));
	cr_assert_eq(stats().objects, 2);
	cr_assert_eq(get_check(ent(1)), (int64_t)SIZES[1]);
	cr_assert_eq(get_check(ent(4)), (int64_t)SIZES[4]);
	cr_assert_leq(du(), stats().used);
}

Test(nvme_recovery, half_written_records_and_files_are_discarded)
{
	store_open(64 * MiB, 64 * KiB);
	put_all();
	char path[256];
	off_t at;
	/* A large object's file cut in the middle, as by a crash before rename... */
	locate(ent(4), 0, path, sizeof(path), &at);
	cr_assert_eq(truncate(path, 512 * KiB), 0);
	/* ...a pack cut inside its last record... */
	locate(ent(2), 20000, path, sizeof(path), &at);
	cr_assert_eq(truncate(path, at), 0);
	/* ...and an object file that never got its final name. */
	snprintf(path, sizeof(path), "%s/l999.tmp", D);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "partial", 7), 7);
	close(fd);
	store_close();
	store_open(64 * MiB, 64 * KiB);
	cr_assert_null(ent(4));
	cr_assert_null(ent(2));
	cr_assert_eq(stats().discarded, 3);
	cr_assert_eq(access(path, F_OK), -1, "the temporary file is deleted");
	for (unsigned i = 0; i < 6; i++)
		if (i != 2 && i != 4)
			cr_assert_eq(get_check(ent(i)), (int64_t)SIZES[i]);
	cr_assert_leq(du(), stats().used);
	/* The truncated slot and file names are reused without confusion. */
	cr_assert_eq(put_obj(URIS[2], SIZES[2], "v1"), 0);
	cr_assert_eq(put_obj(URIS[4], SIZES[4], "v1"), 0);
	cr_assert_eq(get_check(ent(2)), (int64_t)SIZES[2]);
	cr_assert_eq(get_check(ent(4)), (int64_t)SIZES[4]);
}

/* The child: puts objects of mixed sizes, 16 at a time, and drops every third, until killed. */
static int64_t child_inflight;
static int child_progress = -1; /* the writer says here when it has stored enough to test */
static uint64_t child_done;
static void child_cb(struct stk_nvme_op *op, int64_t res)
{
	child_inflight--;
	op->arg = NULL; /* free for the next put */
	if (res)
		_exit(3);
	if (++child_done == 32 && write(child_progress, "x", 1) != 1)
		_exit(5);
}

static void writer(int round)
{
	if (stk_loop_create(true, 2, &L) || store_open_flags(1024 * MiB, 64 * KiB, 0))
		_exit(2);
	static struct stk_nvme_op ops[16];
	static char bufs[16][600 * 1024];
	static char uris[16][48];
	uint64_t n = 0;
	for (;;) {
		for (unsigned i = 0; i < 16 && child_inflight < 16; i++) {
			if (ops[i].arg)
				continue;
			snprintf(uris[i], sizeof(uris[i]), "file:///crash/%d/%llu", round,
				 (unsigned long long)n);
			uint64_t size =
			    mix64(n) % 4 == 0 ? mix64(n) % (600 * KiB) : mix64(n) % (40 * KiB);
			fill(bufs[i], size, uris[i]);
			struct stk_nvme_id id = ident(uris[i], size, "v");
			ops[i].arg = &ops[i];
			int r = stk__nvme_put(S, &id, bufs[i], size, 0, &ops[i], child_cb);
			if (r) {
				fprintf(stderr, "writer: put: %s\n", strerror(-r));
				_exit(4);
			}
			child_inflight++;
			if (n % 3 == 2) { /* an older one goes: holes, punches, reused slots */
				char old[48];
				snprintf(old, sizeof(old), "file:///crash/%d/%llu", round,
					 (unsigned long long)(n - 20));
				uint64_t m = n - 20, sz = mix64(m) % 4 == 0 ? mix64(m) % (600 * KiB)
									    : mix64(m) % (40 * KiB);
				struct stk_nvme_ent *e = find(old, sz, "v");
				if (e)
					stk__nvme_drop(S, e);
			}
			n++;
		}
		stk_loop_run_once(L);
	}
}

struct verify_ctx {
	struct stk_nvme_ent *v[100000];
	unsigned n;
};

static void collect(void *arg, struct stk_nvme_ent *e)
{
	struct verify_ctx *c = arg;
	if (c->n < 100000)
		c->v[c->n++] = e;
}

Test(nvme_recovery, a_writer_killed_mid_flight_leaves_only_records_that_verify)
{
	for (int round = 0; round < 3; round++) {
		int pfd[2];
		cr_assert_eq(pipe(pfd), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(pfd[0]);
			child_progress = pfd[1];
			writer(round);
		}
		close(pfd[1]);
		/*
		 * Killed once it has stored 32 objects (however slow the machine:
		 * a sanitizer, other tests), then while it keeps writing.
		 */
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		char x;
		cr_assert_eq(poll(&p, 1, 60000), 1, "the writer stored nothing in 60 s");
		cr_assert_eq(read(pfd[0], &x, 1), 1, "the writer died before storing 32 objects");
		close(pfd[0]);
		struct timespec ts = { 0, (20 + 60 * round) * 1000000L };
		nanosleep(&ts, NULL);
		cr_assert_eq(kill(pid, SIGKILL), 0);
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status), "the writer ended by itself: status %d", status);
		/* Every object the reopened store has must read back exactly. */
		store_open(1024 * MiB, 64 * KiB);
		static struct verify_ctx c;
		c.n = 0;
		stk__nvme_foreach(S, collect, &c);
		cr_assert_gt(c.n, 10, "the writer stored too little to test: %u", c.n);
		for (unsigned i = 0; i < c.n; i++)
			cr_assert_eq(get_check(c.v[i]), (int64_t)c.v[i]->stored_len, "%s",
				     c.v[i]->uri);
		cr_log_info("round %d: %u objects verified, %u discarded", round, c.n,
			    stats().discarded);
		cr_assert_leq(du(), stats().used);
		store_close();
		/* The next round's writer starts on what this one left. */
	}
}

Test(nvme_recovery, a_full_disk_degrades_the_store_and_reads_keep_working)
{
	teardown();
	setup_mount("tmpfs", "size=3m");
	/* The budget thinks there is far more room than the filesystem has. */
	store_open(256 * MiB, 64 * KiB);
	char uri[64];
	int64_t r = 0;
	unsigned stored = 0;
	for (unsigned i = 0; r == 0; i++) {
		snprintf(uri, sizeof(uri), "s3://b/%u", i);
		r = put_obj(uri, i % 3 ? 40000 : 300 * KiB, "e");
		stored += r == 0;
		cr_assert_lt(i, 10000);
	}
	char why[256];
	int d = stk__nvme_degraded(S, why, sizeof(why));
	cr_assert(r == -ENOSPC, "the put failed %s", strerror((int)-r));
	cr_assert_eq(d, ENOSPC, "degraded: %s", strerror(d));
	cr_assert(strstr(why, "No space left"), "why: %s", why);
	cr_assert_eq(stats().degraded, ENOSPC);
	cr_assert_gt(stored, 3);
	/* Writes fail fast now... */
	cr_assert_eq(put_obj("s3://b/more", 100, "e"), -EROFS);
	/* ...and what is stored still reads. */
	for (unsigned i = 0; i < stored; i++) {
		snprintf(uri, sizeof(uri), "s3://b/%u", i);
		struct stk_nvme_ent *e = find(uri, i % 3 ? 40000 : 300 * KiB, "e");
		cr_assert(e, "%s", uri);
		cr_assert_eq(get_check(e), (int64_t)e->stored_len);
	}
	/* The failed object left nothing behind, and a reopen starts healthy. */
	cr_assert_eq(stats().objects, stored);
	store_close();
	store_open(256 * MiB, 64 * KiB);
	cr_assert_eq(stats().objects, stored);
	cr_assert_eq(stats().degraded, 0);
}

/* Whether one of the store's pack fds has O_DIRECT, from /proc/self/fdinfo. */
static bool pack_fd_direct(void)
{
	for (uint32_t i = 0; i < S->npacks; i++) {
		if (!S->packs[i] || S->packs[i]->fd < 0)
			continue;
		char p[64], line[128];
		snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", S->packs[i]->fd);
		FILE *f = fopen(p, "r");
		cr_assert(f);
		unsigned long flags = 0;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "flags: %lo", &flags) == 1)
				break;
		fclose(f);
		return flags & O_DIRECT;
	}
	cr_assert_fail("no pack is open");
	return false;
}

Test(nvme_recovery, o_direct_where_the_filesystem_takes_it)
{
	store_open(64 * MiB, 64 * KiB);
	put_all();
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(get_check(ent(i)), (int64_t)SIZES[i]);
	cr_assert(stats().direct, "O_DIRECT given up on %s", D);
	cr_assert(pack_fd_direct());
}

Test(nvme_recovery, buffered_where_the_filesystem_refuses_o_direct)
{
	teardown();
	/* ramfs refuses O_DIRECT at open (tmpfs takes it since Linux 6.6) and cannot punch holes.
	 */
	setup_mount("ramfs", "");
	store_open(64 * MiB, 64 * KiB);
	put_all();
	cr_assert_not(stats().direct);
	cr_assert_not(pack_fd_direct());
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(get_check(ent(i)), (int64_t)SIZES[i]);
	/* A freed slot stays charged (no punch) until a put of its size takes it again. */
	cr_assert_eq(put_obj("s3://b/twin", SIZES[0], "v1"), 0); /* so its pack stays */
	struct stk_nvme_stats before = stats();
	stk__nvme_drop(S, ent(0));
	struct stk_nvme_stats mid = stats();
	cr_assert_eq(mid.used, before.used);
	cr_assert_gt(mid.dead, 0);
	cr_assert_eq(put_obj("s3://b/again", SIZES[0], "v1"), 0);
	cr_assert_eq(stats().used, before.used);
	cr_assert_eq(stats().dead, 0);
}

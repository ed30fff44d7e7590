/* SPDX-License-Identifier: MIT */
/*
 * A libFuzzer target over stokerd's decode-and-handle path: the real
 * server.c, scheduler, dataset registry, cache and file:// transport on a
 * real loop (the poll backend), serving a session on one end of a socketpair.
 * The input (fuzz_server.h) is a sequence of datagrams and events; after
 * each, the loop runs until the daemon is idle, and every reply is read back
 * with the client's decoder.  A record sent after the daemon hung up goes to
 * a new connection.
 *
 * Besides what the sanitizers see, it aborts when a reply does not decode,
 * an OPEN or GET reply lacks its descriptor or disagrees with it (catalog,
 * size, seals, bytes), the daemon makes no progress for STUCK_NS, or anything
 * (cache bytes, pins, fetches, descriptors) outlives the session.
 *
 * The daemon is set up as prefetch/main.c sets it up, small: a 64 KiB RAM
 * budget and low per-client limits, so eviction, pin waits and every limit
 * are a few messages away.  A new daemon serves each input; the loop and the
 * transports last for the process.  Built for libFuzzer with STOKER_FUZZ=ON;
 * run_corpus.c replays the checked-in corpus with any compiler.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"
#include "stoker.h"
#include "tests/fuzz/fuzz_server.h"
#include "transports/transport.h"

#define RAM	    (64u << 10)
#define STUCK_NS    (10ull * 1000000000ull)
#define HOUR_NS	    (3600ull * 1000000000ull)
#define MAX_RECORDS 256
#define MAX_FETCHES 1000 /* in one record's settling; see settle() */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The files below ROOT; every one but the manifest holds pattern() bytes. */
static const struct {
	const char *path;
	size_t size;
} files[] = {
	{ "ds/a", 1 },	       { "ds/b", 100 },	     { "ds/c", 5000 },
	{ "ds/empty", 0 },     { "ds/f", 3000 },     { "ds/sub/d", 20000 },
	{ "ds/sub/e", 30000 }, { "ds/big", 200000 }, /* larger than the RAM budget */
	{ "odd/ok", 10 },
};

static struct {
	bool ready;
	bool verbose; /* $STOKER_FUZZ_LOG: the daemon's debug log and every reply */
	char root[64];
	char *roots[2];
	struct stk_loop *loop;
	struct stk_op watchdog;
	bool watchdog_armed;
} G;

static struct stk_daemon D;
static int peer = -1;	    /* the client's end of the session's socketpair */
static bool reading = true; /* replies are read as they come */
/* Replies were left unread on this connection: one may be read after a
 * RELEASE of its object, whose bytes may then be another's. */
static bool paused;
static uint32_t seq;

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void finding(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz_server: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 131u + (i >> 9));
}

static void put_file(const char *rel, const char *text, size_t size)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", G.root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		finding("cannot create %s: %s", p, strerror(errno));
	uint8_t b[4096];
	for (size_t off = 0; off < size;) {
		size_t n = size - off < sizeof(b) ? size - off : sizeof(b);
		for (size_t i = 0; i < n; i++)
			b[i] = text ? (uint8_t)text[off + i] : pattern(off + i);
		ssize_t w = write(fd, b, n);
		if (w <= 0)
			finding("cannot write %s: %s", p, strerror(errno));
		off += (size_t)w;
	}
	close(fd);
}

static void put_dir(const char *rel)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", G.root, rel);
	if (mkdir(p, 0755) < 0)
		finding("cannot create %s: %s", p, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void remove_tree(void)
{
	nftw(G.root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes the tree fuzz_server.h describes in a new temporary directory. */
static void make_tree(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(G.root, sizeof(G.root), "%s/stoker-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (strlen(G.root) > sizeof(G.root) - 8 || !mkdtemp(G.root))
		finding("cannot make a temporary directory %s: %s", G.root, strerror(errno));
	atexit(remove_tree);
	put_dir("ds");
	put_dir("ds/sub");
	put_dir("odd");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		put_file(files[i].path, NULL, files[i].size);
	char m[1024], p[256];
	snprintf(m, sizeof(m),
		 "# a manifest: a wrong size (b), a missing file, and a file also in ds/\n"
		 "file://%s/ds/a 1\nfile://%s/ds/c\n\nfile://%s/ds/missing 10\n"
		 "file://%s/ds/b 99\nfile://%s/ds/sub/d 20000\n",
		 G.root, G.root, G.root, G.root, G.root);
	put_file("manifest.txt", m, strlen(m));
	snprintf(p, sizeof(p), "%s/odd/fifo", G.root);
	if (mkfifo(p, 0644) < 0)
		finding("mkfifo %s: %s", p, strerror(errno));
	snprintf(p, sizeof(p), "%s/odd/out", G.root);
	if (symlink("/etc/passwd", p) < 0)
		finding("symlink %s: %s", p, strerror(errno));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	G.verbose = getenv("STOKER_FUZZ_LOG") != NULL;
	stk__log_level = G.verbose ? STK_LOG_DEBUG : STK_LOG_ERROR;
	make_tree();
	G.roots[0] = G.root;
	int r = stk_loop_create(false, 2, &G.loop);
	if (r)
		finding("stk_loop_create: %s", strerror(-r));
	/* http and s3 may reach one closed port and nothing else. */
	static char *hosts[] = { "127.0.0.1:1", NULL };
	struct stk_tp_env env = {
		.loop = G.loop,
		.roots = G.roots,
		.no_direct = true,
		.max_host_conns = 2,
		.http_threads = 1,
		.retries = 0,
		.s3_endpoint = "http://127.0.0.1:1",
		.s3_region = "us-east-1",
		.allow_hosts = hosts,
	};
	r = stk__transports_init(&env);
	if (r)
		finding("stk__transports_init: %s", strerror(-r));
	G.ready = true;
	return 0;
}

#define FD_SET_MAX 4096

/* Marks the open descriptors below FD_SET_MAX in set. */
static void open_fds(bool *set)
{
	memset(set, 0, FD_SET_MAX * sizeof(*set));
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		finding("cannot list /proc/self/fd: %s", strerror(errno));
	int self = dirfd(dir);
	for (struct dirent *e; (e = readdir(dir));) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (end != e->d_name && !*end && fd != self && fd >= 0 && fd < FD_SET_MAX)
			set[fd] = true;
	}
	closedir(dir);
}

/* Fails naming each descriptor open now that was not in before. */
static void check_fds(const bool *before)
{
	static bool now[FD_SET_MAX];
	open_fds(now);
	int leaked = -1;
	for (int fd = 0; fd < FD_SET_MAX; fd++) {
		if (!now[fd] || before[fd])
			continue;
		char p[64], target[256] = "?";
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(p, target, sizeof(target) - 1);
		target[n > 0 ? n : 1] = 0;
		fprintf(stderr, "fuzz_server: descriptor %d (%s) outlives the session\n", fd,
			target);
		leaked = fd;
	}
	if (leaked >= 0)
		finding("descriptors leaked");
}

/* The byte check applies to objects of the pattern files' sizes (not the manifest's). */
static bool pattern_size(uint64_t size)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i].size == size)
			return true;
	return false;
}

/* The client's pin area, from the first HELLO reply: FZ_PINS writes into it. */
static uint8_t *pin_map;
static size_t pin_len;

/* The resident tables of the datasets opened on this connection, as a client maps them. */
#define MAX_TABLES 8
static struct {
	const struct stk_rt_entry *rt;
	size_t len;
	uint32_t count;
	uint64_t *sizes;
} tables[MAX_TABLES];
static unsigned ntables;

static void check_pins(int fd, const struct stk_reply *r)
{
	struct stat st;
	pin_len = stk__pin_area_len(r->u.hello.pin_buckets);
	int seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) < 0 || (size_t)st.st_size != pin_len)
		finding("HELLO reply's pin area is not %zu bytes", pin_len);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || !(seals & F_SEAL_GROW))
		finding("HELLO reply's pin area may be resized (seals 0x%x)", seals);
	if (pin_map)
		finding("a second HELLO reply brought a pin area");
	pin_map = mmap(NULL, pin_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (pin_map == MAP_FAILED)
		finding("HELLO reply's pin area cannot be mapped: %s", strerror(errno));
}

static int cat_size(void *arg, uint32_t i, const char *key, uint32_t kl, uint64_t size)
{
	((uint64_t *)arg)[i] = size;
	return 0;
}

static void check_catalog(int fd, const struct stk_reply *r)
{
	struct stat st;
	size_t len = r->u.open.cat_len, off = stk__rt_off(len), tlen = stk__rt_len(r->u.open.count);
	if (fstat(fd, &st) < 0 || st.st_size > (1 << 20) || (size_t)st.st_size != off + tlen)
		finding("OPEN reply's catalog and table are not %zu + %zu bytes", off, tlen);
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & 0x10 /* F_SEAL_FUTURE_WRITE */) || !(seals & F_SEAL_SHRINK))
		finding("OPEN reply's catalog is not sealed against writes (seals 0x%x)", seals);
	uint8_t *b = malloc(len ? len : 1);
	if (!b || pread(fd, b, len, 0) != (ssize_t)len)
		finding("OPEN reply's catalog cannot be read");
	char err[256];
	uint32_t count = 0;
	if (stk__catalog_walk(b, len, NULL, NULL, &count, err, sizeof(err)))
		finding("OPEN reply's catalog does not decode: %s", err);
	if (count != r->u.open.count)
		finding("OPEN reply says %u objects, its catalog %u", r->u.open.count, count);
	if (ntables < MAX_TABLES && tlen) {
		uint64_t *sizes = calloc(count ? count : 1, sizeof(*sizes));
		void *m = mmap(NULL, tlen, PROT_READ, MAP_SHARED, fd, (off_t)off);
		if (!sizes || m == MAP_FAILED)
			finding("OPEN reply's table cannot be mapped");
		stk__catalog_walk(b, len, cat_size, sizes, NULL, NULL, 0);
		tables[ntables].rt = m;
		tables[ntables].len = tlen;
		tables[ntables].count = count;
		tables[ntables++].sizes = sizes;
	}
	free(b);
}

static void tables_forget(void)
{
	for (unsigned i = 0; i < ntables; i++) {
		munmap((void *)tables[i].rt, tables[i].len);
		free(tables[i].sizes);
	}
	ntables = 0;
	if (pin_map)
		munmap(pin_map, pin_len);
	pin_map = NULL;
}

/* The segments this session was sent, mapped as a client maps them. */
#define MAX_SEGS 64
static struct {
	uint32_t gen;
	uint8_t *m; /* NULL: not sent */
	uint64_t size;
} segs[MAX_SEGS];

static void segs_forget(void)
{
	for (unsigned i = 0; i < MAX_SEGS; i++) {
		if (segs[i].m)
			munmap(segs[i].m, segs[i].size);
		segs[i].m = NULL;
	}
}

/* A GET reply: its segment comes with it the first time (always, if dedicated). */
static void check_object(int fd, const struct stk_reply *r)
{
	const struct stk_get_where *g = &r->u.get;
	if (g->seg == STK_SEG_NONE) {
		if (fd >= 0)
			finding("GET reply of a zero-byte object carries a descriptor");
		return;
	}
	if (g->seg >= MAX_SEGS)
		finding("GET reply names segment %u", g->seg);
	bool known = segs[g->seg].m && segs[g->seg].gen == g->gen;
	if (fd < 0 && (!known || (g->flags & STK_GET_DEDICATED)))
		finding("GET reply names segment %u generation %u, never sent", g->seg, g->gen);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != g->seg_size)
			finding("GET reply says its segment has %llu bytes, its memfd %lld",
				(unsigned long long)g->seg_size, (long long)st.st_size);
		int seals = fcntl(fd, F_GET_SEALS);
		if (seals < 0 || !(seals & 0x10 /* F_SEAL_FUTURE_WRITE */) ||
		    !(seals & F_SEAL_SHRINK))
			finding("GET reply's segment is not sealed against writes (seals 0x%x)",
				seals);
		if (segs[g->seg].m)
			munmap(segs[g->seg].m, segs[g->seg].size);
		segs[g->seg].m = mmap(NULL, g->seg_size, PROT_READ, MAP_SHARED, fd, 0);
		if (segs[g->seg].m == MAP_FAILED)
			finding("GET reply's segment cannot be mapped: %s", strerror(errno));
		segs[g->seg].gen = g->gen;
		segs[g->seg].size = g->seg_size;
	}
	if (!pattern_size(g->size) || paused)
		return;
	const uint8_t *m = segs[g->seg].m + g->off;
	for (size_t i = 0; i < g->size; i++)
		if (m[i] != pattern(i))
			finding(
			    "GET reply's object of %llu bytes differs from its file at byte %zu",
			    (unsigned long long)g->size, i);
}

/* Checks one reply the way a client would read it, and what travels with it. */
static void check_reply(const uint8_t *buf, size_t n, const int *fds, int nfd)
{
	struct stk_reply r;
	char err[256];
	if (stk__reply_decode(buf, n, &r, err, sizeof(err)))
		finding("a reply of %zu bytes does not decode: %s", n, err);
	uint16_t type = (uint16_t)(r.h.type & ~STK_MSG_REPLY);
	if (G.verbose)
		fprintf(stderr, "  reply %s seq %u: %d %s\n", stk__msg_name(type), r.h.seq,
			r.status, r.errmsg);
	bool with_fd = r.status == 0 && type == STK_MSG_OPEN;
	bool get = type == STK_MSG_GET || type == STK_MSG_GETB;
	bool hello = type == STK_MSG_HELLO && r.status == 0;
	if (hello		   ? nfd != (r.u.hello.pin_buckets ? 1 : 0)
	    : get && r.status == 0 ? nfd > 1
				   : nfd != (with_fd ? 1 : 0))
		finding("%s reply with status %d carries %d descriptors", stk__msg_name(type),
			r.status, nfd);
	if (r.status > 0)
		finding("%s reply with status %d", stk__msg_name(type), r.status);
	if (r.status < 0)
		return;
	if (type == STK_MSG_HELLO && r.u.hello.version != STK_PROTO_VERSION)
		finding("HELLO reply says protocol %u", r.u.hello.version);
	if (type == STK_MSG_OPEN && r.u.open.ds == 0)
		finding("OPEN reply gives handle 0");
	if (type == STK_MSG_OPEN)
		check_catalog(fds[0], &r);
	if (hello && nfd)
		check_pins(fds[0], &r);
	if (get)
		check_object(nfd ? fds[0] : -1, &r);
}

static void read_replies(void)
{
	static uint8_t buf[STK_MSG_MAX + 1];
	while (peer >= 0) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 4)];
		} cm;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cm.b,
				     .msg_controllen = sizeof(cm.b) };
		ssize_t n = recvmsg(peer, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nothing more now, or the daemon hung up */
		int fds[4], nfd = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k && nfd < 4; j++)
				memcpy(&fds[nfd++], CMSG_DATA(c) + j * sizeof(int), sizeof(int));
		}
		if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
			finding("a reply was truncated (flags 0x%x)", mh.msg_flags);
		check_reply(buf, (size_t)n, fds, nfd);
		for (int j = 0; j < nfd; j++)
			close(fds[j]);
	}
}

/*
 * Whether the daemon has nothing left to do without more input: no fetch in
 * flight, no listing on a worker, no datagram or hang-up unread, no queued
 * reply the socket would now take, no ended session waiting for its last
 * callbacks.  A GET that waits for pins to be released counts as idle.
 */
static bool idle(const struct stk_daemon *d)
{
	if (d->inflight)
		return false;
	for (const struct stk_ds *ds = d->datasets; ds; ds = ds->next)
		if (!ds->ready || ds->revalidating)
			return false;
	unsigned alive = 0;
	for (const struct stk_session *s = d->sessions; s; s = s->next) {
		alive++;
		struct pollfd p = { .fd = s->fd, .events = POLLIN | (s->outq ? POLLOUT : 0) };
		if (poll(&p, 1, 0) > 0)
			return false;
	}
	return d->live_sessions == alive;
}

static void watchdog_cb(struct stk_op *op, int res)
{
	G.watchdog_armed = false;
}

static uint64_t fetches_done(void)
{
	return D.st[STK_ST_FETCHES] + D.st[STK_ST_FETCH_ERRORS];
}

/*
 * Runs the loop until the daemon is idle, reading replies meanwhile if
 * reading.  One record needs a few dozen fetches at most (the tree has ten
 * objects, a plan 64 entries); far more is the daemon fetching in circles.
 */
static void settle(void)
{
	uint64_t start = stk__now_ns(), fetches = fetches_done();
	for (;;) {
		if (reading)
			read_replies();
		if (idle(&D))
			return;
		if (stk__now_ns() - start > STUCK_NS)
			finding("no progress for %llu s: %u fetches in flight, %u sessions",
				STUCK_NS / 1000000000ull, D.inflight, D.live_sessions);
		if (fetches_done() - fetches > MAX_FETCHES)
			finding("%llu fetches for one record: fetching in circles (%u in flight, "
				"%u objects pinned, %llu of %llu bytes cached, gets %s)",
				(unsigned long long)(fetches_done() - fetches), D.inflight,
				D.pinned, (unsigned long long)D.cache.tier->used,
				(unsigned long long)D.cache.tier->budget,
				D.demand_blocked ? "blocked by pins" : "not blocked");
		/* The loop would sleep forever if what is left never completes. */
		if (!G.watchdog_armed) {
			G.watchdog.cb = watchdog_cb;
			if (stk_loop_timeout(G.loop, &G.watchdog, 50000000u) == 0)
				G.watchdog_armed = true;
		}
		int r = stk_loop_run_once(G.loop);
		if (r)
			finding("stk_loop_run_once: %s", strerror(-r));
	}
}

/*
 * Every entry a table publishes names the object's bytes, as a client would
 * read them: checked where this connection maps the segment (a client never
 * reads through the table a segment it was not sent).
 */
static void check_tables(void)
{
	for (unsigned t = 0; t < ntables; t++) {
		for (uint32_t i = 0; i < tables[t].count; i++) {
			const struct stk_rt_entry *e = &tables[t].rt[i];
			uint64_t size = tables[t].sizes[i];
			if (e->seq & 1)
				continue;
			if (!size || e->seg >= MAX_SEGS)
				finding("table %u publishes object %u (%llu bytes) in segment %u",
					t, i, (unsigned long long)size, e->seg);
			if (!segs[e->seg].m || segs[e->seg].gen != e->gen)
				continue;
			if (e->off + size > segs[e->seg].size)
				finding("table %u: object %u overruns its segment", t, i);
			if (!pattern_size(size) || paused)
				continue;
			const uint8_t *m = segs[e->seg].m + e->off;
			for (size_t k = 0; k < size; k++)
				if (m[k] != pattern(k))
					finding(
					    "table %u: object %u differs from its file at byte %zu",
					    t, i, k);
		}
	}
}

static void hang_up(void)
{
	if (peer >= 0)
		close(peer);
	peer = -1;
	segs_forget();
	tables_forget();
	settle();
	if (D.live_sessions)
		finding("%u sessions outlive their client", D.live_sessions);
}

static void connect_session(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		finding("socketpair: %s", strerror(errno));
	/* A small send buffer, so unread replies queue in the daemon after a dozen. */
	int sz = 8192;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	int r = stk__session_add(&D, sv[0]);
	if (r)
		finding("stk__session_add: %s", strerror(-r));
	peer = sv[1];
	reading = true;
	paused = false;
}

static void send_dgram(const void *p, size_t n, bool with_fd)
{
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	int fd = with_fd ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* The daemon may have hung up meanwhile; what it does then is what is tested. */
	(void)!sendmsg(peer, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (fd >= 0)
		close(fd);
}

static void play(uint8_t op, const uint8_t *p, size_t len)
{
	static uint8_t big[STK_MSG_MAX + 1];
	unsigned kind = op & 7u, param = op >> 3;
	if (kind == FZ_TICK) {
		uint64_t later = stk__now_ns() + HOUR_NS;
		stk__sched_expire(&D, later);
		stk__ds_sweep(&D, later);
		return;
	}
	if (kind == FZ_READING) {
		reading = param != 0;
		paused |= !reading;
		return;
	}
	if (kind == FZ_RECONNECT || !D.sessions) {
		hang_up();
		connect_session();
		if (kind == FZ_RECONNECT)
			return;
	}
	switch (kind) {
	case FZ_OPEN: {
		char uri[STK_URI_MAX + 1];
		int n = snprintf(uri, sizeof(uri), "file://%s/%.*s", G.root, (int)len, p);
		long m = n > 0 ? stk__enc_open(big, sizeof(big), ++seq, param, uri) : -EINVAL;
		if (m > 0)
			send_dgram(big, (size_t)m, false);
		break;
	}
	case FZ_PINS:
		/* What a client (honest or not) writes into its pin area. */
		if (pin_map) {
			size_t at = ((size_t)param * 256) % pin_len;
			size_t n = len < pin_len - at ? len : pin_len - at;
			memcpy(pin_map + at, p, n);
		}
		break;
	case FZ_OVERSIZE:
		memset(big, 0, sizeof(big));
		memcpy(big, p, len < sizeof(big) ? len : sizeof(big));
		send_dgram(big, sizeof(big), false);
		break;
	default:
		send_dgram(p, len, kind == FZ_DGRAM_FD);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!G.ready)
		LLVMFuzzerInitialize(NULL, NULL);
	static bool fds[FD_SET_MAX];
	open_fds(fds);
	struct stk_daemon *d = &D;
	memset(d, 0, sizeof(*d));
	d->cfg.ram = RAM;
	d->cfg.roots = G.roots;
	d->cfg.nroots = 1;
	d->cfg.max_inflight = 2;
	d->cfg.workers = 2;
	d->cfg.client_max_pinned = 56u << 10;
	d->cfg.client_max_plan = 64;
	d->cfg.client_max_datasets = 3;
	d->cfg.client_max_requests = 4;
	d->cfg.pin_wait_ns = 1000000000ull;
	d->cfg.dataset_grace_ns = 60 * 1000000000ull;
	d->loop = G.loop;
	char cerr[256];
	if (stk__cache_init(&d->cache, &stk_tier_ram, RAM, 0, cerr, sizeof(cerr)))
		finding("cannot set up the cache: %s", cerr);
	d->listen_fd = d->lock_fd = d->sig_fd = -1;
	stk__server_init(d);
	seq = 0;
	connect_session();

	size_t off = 0;
	for (unsigned n = 0; off < size && n < MAX_RECORDS; n++) {
		uint8_t op = data[off++];
		size_t len = 0;
		if (size - off >= 2) {
			len = (size_t)data[off] | (size_t)data[off + 1] << 8;
			off += 2;
		}
		if (len > size - off)
			len = size - off;
		play(op, data + off, len);
		off += len;
		settle();
		check_tables();
	}

	/* The client goes; so must everything it caused. */
	hang_up();
	stk__server_close_all(d);
	stk__ds_free_all(d);
	if (d->cache.tier->used || d->cache.resident || d->pinned || d->inflight || d->plans ||
	    d->ndemand || d->objects.n || d->st[STK_ST_CLIENTS] || d->nheld)
		finding(
		    "left over after the session: %llu bytes cached, %llu objects resident, "
		    "%u pinned, %u in flight, plans %s, gets queued %s, %llu objects, %llu "
		    "clients",
		    (unsigned long long)d->cache.tier->used, (unsigned long long)d->cache.resident,
		    d->pinned, d->inflight, d->plans ? "yes" : "no", d->ndemand ? "yes" : "no",
		    (unsigned long long)d->objects.n, (unsigned long long)d->st[STK_ST_CLIENTS]);
	stk__fast_fini(d);
	stk__sched_fini(d);
	stk__cache_fini(&d->cache);
	check_fds(fds);
	return 0;
}

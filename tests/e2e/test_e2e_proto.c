/* SPDX-License-Identifier: MIT */
/*
 * The control protocol against the real daemon, over a raw SOCK_SEQPACKET
 * socket: every malformed datagram gets an error reply or the connection is
 * closed, never a crash or silence, and a normal client still works after.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "proto/proto.h"

#define RECV_MS 5000

/* Connects without the handshake. */
static int raw_connect_bare(void)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t l = strlen(e2e_d.sock);
	cr_assert_lt(l, sizeof(sa.sun_path));
	memcpy(sa.sun_path, e2e_d.sock, l + 1);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

static ssize_t raw_recv(int fd, uint8_t *buf, size_t cap, int ms);

/* Connects and says HELLO, as the protocol requires before anything else. */
static int raw_connect(void)
{
	int fd = raw_connect_bare();
	uint8_t buf[256];
	long n = stk__enc_hello(buf, sizeof(buf), 1, (uint32_t)getpid());
	cr_assert_eq(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
	cr_assert_gt(raw_recv(fd, buf, sizeof(buf), RECV_MS), 0, "no HELLO reply");
	return fd;
}

/* Sends a datagram, optionally passing fds. Returns 0 or -errno (the daemon may have closed). */
static int raw_send(int fd, const void *p, size_t n, const int *fds, int nfds)
{
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 16)];
	} cm;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/*
 * Receives one datagram within ms, closing any fd passed with it.  Returns its
 * length, 0 when the daemon closed the connection, -ETIMEDOUT on silence.
 */
static ssize_t raw_recv(int fd, uint8_t *buf, size_t cap, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, ms) != 1)
		return -ETIMEDOUT;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.b,
			     .msg_controllen = sizeof(cm.b) };
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int fds[4];
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(c), k * sizeof(int));
			for (size_t i = 0; i < k; i++)
				close(fds[i]);
		}
	}
	return n;
}

/* Builds a datagram: header with the given len field, then body. */
static size_t dgram(uint8_t *out, uint16_t type, uint32_t seq, uint32_t len, const void *body,
		    size_t blen)
{
	struct stk_buf b;
	stk__buf_init(&b, out, 70000);
	stk__put_u16(&b, type);
	stk__put_u16(&b, 0);
	stk__put_u32(&b, seq);
	stk__put_u32(&b, len);
	stk__put_bytes(&b, body, blen);
	cr_assert(!b.overflow);
	return b.len;
}

enum outcome { GOT_ERROR, GOT_OK, CLOSED, SILENT };

/* Sends buf and classifies the daemon's answer; an error reply must be well formed. */
static enum outcome exchange(int fd, const uint8_t *buf, size_t n, uint32_t seq, int32_t *status,
			     char *msg, size_t msglen)
{
	if (raw_send(fd, buf, n, NULL, 0))
		return CLOSED;
	uint8_t in[2048];
	ssize_t k = raw_recv(fd, in, sizeof(in), RECV_MS);
	if (k == -ETIMEDOUT)
		return SILENT;
	if (k <= 0)
		return CLOSED;
	struct stk_reply r;
	char err[256];
	cr_assert_eq(stk__reply_decode(in, (size_t)k, &r, err, sizeof(err)), 0,
		     "the daemon sent a malformed reply: %s", err);
	cr_assert_eq(r.h.seq, seq, "reply seq %u, request seq %u", r.h.seq, seq);
	*status = r.status;
	snprintf(msg, msglen, "%s", r.errmsg);
	return r.status < 0 ? GOT_ERROR : GOT_OK;
}

/* The session still works: STATS gets a well-formed OK reply. */
static void still_alive(int fd, const char *after)
{
	uint8_t buf[64];
	long n = stk__enc_stats(buf, sizeof(buf), 4242);
	int32_t st = 0;
	char msg[256];
	enum outcome o = exchange(fd, buf, (size_t)n, 4242, &st, msg, sizeof(msg));
	cr_assert_eq(o, GOT_OK, "after %s the session no longer answers STATS (%d: %s)", after, o,
		     msg);
}

struct bad {
	const char *what;
	uint16_t type;
	uint32_t len; /* the header's len field */
	uint8_t body[64];
	size_t blen;
	int err;	    /* 0: a reply or a close is fine; else the error reply's status */
	const char *needle; /* in the error message */
};

#define LE32(v) (uint8_t)(v), (uint8_t)((v) >> 8), (uint8_t)((v) >> 16), (uint8_t)((v) >> 24)

/* clang-format off */
static const struct bad bads[] = {
	{ "len field larger than the body", STK_MSG_STATS, 100, { 1, 2, 3, 4 }, 4, 0, NULL },
	{ "len field smaller than the body", STK_MSG_GET, 0, { LE32(1), LE32(0) }, 8, 0, NULL },
	{ "unknown type", 77, 0, { 0 }, 0, -EPROTO, "77" },
	{ "type 0", 0, 0, { 0 }, 0, -EPROTO, NULL },
	{ "a reply type", STK_MSG_STATS | STK_MSG_REPLY, 0, { 0 }, 0, -EPROTO, NULL },
	{ "OPEN uri_len beyond the body", STK_MSG_OPEN, 18,
	  { LE32(0), LE32(100), 'f', 'i', 'l', 'e', ':', '/', '/', '/', 'x', 'y' }, 18, -EPROTO,
	  "OPEN" },
	{ "OPEN uri_len 0xffffffff", STK_MSG_OPEN, 10, { LE32(0), LE32(0xffffffffu), '/', 'x' }, 10,
	  -EPROTO, "uri_len" },
	{ "OPEN uri_len 0", STK_MSG_OPEN, 8, { LE32(0), LE32(0) }, 8, -EPROTO, "uri_len" },
	{ "OPEN body without uri_len", STK_MSG_OPEN, 4, { LE32(0) }, 4, -EPROTO, "OPEN" },
	{ "OPEN uri with a NUL", STK_MSG_OPEN, 12, { LE32(0), LE32(4), 'a', 0, 'b', 'c' }, 12,
	  -EPROTO, "NUL" },
	{ "PLAN n beyond the body", STK_MSG_PLAN, 12, { LE32(1), LE32(2), LE32(0) }, 12, -EPROTO,
	  "PLAN" },
	{ "PLAN n huge", STK_MSG_PLAN, 8, { LE32(1), LE32(0x40000000u) }, 8, -EPROTO, "PLAN" },
	{ "PLAN on no dataset", STK_MSG_PLAN, 12, { LE32(9), LE32(1), LE32(0) }, 12, -EBADF, "9" },
	{ "GET on no dataset", STK_MSG_GET, 8, { LE32(5), LE32(0) }, 8, -EBADF, "5" },
	{ "GET on handle 0", STK_MSG_GET, 8, { LE32(0), LE32(0) }, 8, -EBADF, NULL },
	{ "GET body of 7 bytes", STK_MSG_GET, 7, { LE32(1), 0, 0, 0 }, 7, -EPROTO, "GET" },
	{ "WARM on no dataset", STK_MSG_WARM, 4, { LE32(3) }, 4, -EBADF, NULL },
	{ "STATUS on no dataset", STK_MSG_STATUS, 4, { LE32(3) }, 4, -EBADF, NULL },
	{ "STATS with a body", STK_MSG_STATS, 4, { LE32(0) }, 4, -EPROTO, "STATS" },
	{ "HELLO with a wrong magic", STK_MSG_HELLO, 12, { LE32(0xdeadbeefu), LE32(1), LE32(1) },
	  12, -EPROTO, "magic" },
	{ "HELLO from protocol 99", STK_MSG_HELLO, 12, { LE32(STK_PROTO_MAGIC), LE32(99), LE32(1) },
	  12, -EPROTO, "99" },
	{ "HELLO of 16 bytes", STK_MSG_HELLO, 16,
	  { LE32(STK_PROTO_MAGIC), LE32(STK_PROTO_VERSION), LE32(1), LE32(7) }, 16, -EPROTO,
	  "HELLO body is 16 bytes" },
};
/* clang-format on */

Test(e2e_proto, malformed_datagrams, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	e2e_daemon_start(&e2e_d, NULL);
	static uint8_t buf[70000];
	int fd = raw_connect();
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		uint32_t seq = 1000 + (uint32_t)i;
		size_t n = dgram(buf, b->type, seq, b->len, b->body, b->blen);
		int32_t st = 0;
		char msg[STK_ERRMSG_MAX];
		enum outcome o = exchange(fd, buf, n, seq, &st, msg, sizeof(msg));
		cr_assert(o != SILENT, "%s: no answer within %d ms", b->what, RECV_MS);
		cr_assert(o != GOT_OK, "%s: the daemon answered OK", b->what);
		if (b->err) {
			cr_assert_eq(o, GOT_ERROR,
				     "%s: the connection was closed, want an error reply", b->what);
			cr_assert_eq(st, b->err, "%s: status %d, want %d", b->what, st, b->err);
			cr_assert_neq(msg[0], 0, "%s: the error reply has no message", b->what);
			cr_assert(!b->needle || strstr(msg, b->needle),
				  "%s: message '%s' lacks '%s'", b->what, msg, b->needle);
		}
		if (o == GOT_ERROR) {
			still_alive(fd, b->what);
		} else {
			close(fd);
			fd = raw_connect();
		}
	}
	/* RELEASE and CLOSE of unknown handles have no reply: the next reply is the STATS one. */
	size_t n = dgram(buf, STK_MSG_RELEASE, 1, 8, (uint8_t[]){ LE32(7), LE32(0) }, 8);
	cr_assert_eq(raw_send(fd, buf, n, NULL, 0), 0);
	n = dgram(buf, STK_MSG_CLOSE, 2, 4, (uint8_t[]){ LE32(7) }, 4);
	cr_assert_eq(raw_send(fd, buf, n, NULL, 0), 0);
	still_alive(fd, "RELEASE and CLOSE of unknown handles");
	close(fd);

	/* Too short, empty and oversized datagrams: an error or a close, each. */
	const size_t odd[] = { 1, 5, 11, 0, 65537, 69999 };
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		fd = raw_connect();
		memset(buf, 0x5a, odd[i]);
		int32_t st;
		char msg[STK_ERRMSG_MAX];
		enum outcome o = exchange(fd, buf, odd[i], 0x5a5a5a5au, &st, msg, sizeof(msg));
		cr_assert(o == CLOSED || o == GOT_ERROR, "datagram of %zu bytes: outcome %d",
			  odd[i], o);
		close(fd);
	}

	/* Descriptors passed to the daemon are closed, not leaked. */
	fd = raw_connect();
	int pr[2];
	cr_assert_eq(pipe(pr), 0);
	int fds[10];
	for (int i = 0; i < 10; i++)
		fds[i] = pr[1];
	long sn = stk__enc_stats(buf, sizeof(buf), 4242);
	cr_assert_eq(raw_send(fd, buf, (size_t)sn, fds, 10), 0);
	uint8_t in[1024];
	cr_assert_gt(raw_recv(fd, in, sizeof(in), RECV_MS), 0, "no STATS reply");
	close(pr[1]);
	struct pollfd p = { .fd = pr[0], .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 3000), 1, "the daemon still holds the pipe passed to it");
	char c;
	cr_assert_eq(read(pr[0], &c, 1), 0);
	close(pr[0]);
	close(fd);

	/* A normal client still works, and the daemon forgot the bad sessions. */
	struct stk_client *cl = e2e_connect(&e2e_d);
	struct stk_stats s = e2e_stats(cl);
	for (int i = 0; i < 300 && s.clients != 1; i++) {
		e2x_sleep_ms(10);
		s = e2e_stats(cl);
	}
	cr_assert_eq(s.clients, 1, "%llu clients counted, only one is connected",
		     (unsigned long long)s.clients);
	stk_close(cl);
	e2e_daemon_stop(&e2e_d);
}

/* Sends a STATS probe and reads until its reply; other replies are skipped. */
static bool probe(int fd, uint32_t seq)
{
	uint8_t buf[64], in[2048];
	long n = stk__enc_stats(buf, sizeof(buf), seq);
	if (raw_send(fd, buf, (size_t)n, NULL, 0))
		return false;
	for (int i = 0; i < 8; i++) {
		ssize_t k = raw_recv(fd, in, sizeof(in), RECV_MS);
		cr_assert_neq(k, -ETIMEDOUT, "the daemon went silent");
		if (k <= 0)
			return false;
		struct stk_reply r;
		char err[256];
		cr_assert_eq(stk__reply_decode(in, (size_t)k, &r, err, sizeof(err)), 0,
			     "malformed reply: %s", err);
		if (r.h.seq == seq && r.h.type == (STK_MSG_STATS | STK_MSG_REPLY))
			return true;
	}
	cr_assert_fail("no reply to the STATS probe among 8 datagrams");
	return false;
}

Test(e2e_proto, random_datagrams_and_abrupt_disconnects, .init = e2e_init, .fini = e2e_fini,
     .timeout = 90)
{
	uint64_t sizes[4] = { 1000, 200000, 3, 70000 };
	struct e2e_dataset ds;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/d", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 4, 0, 8);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--emulate-latency", "50", NULL });
	static uint8_t buf[4096];
	struct e2e_rng rng = { 12345 };
	int fd = -1;
	unsigned closes = 0, rounds = 400;
	for (unsigned i = 0; i < rounds; i++) {
		if (fd < 0) {
			fd = raw_connect();
			/* Open a real dataset so that handle 1 exists and GETs can succeed. */
			long n = stk__enc_open(buf, sizeof(buf), 1, 0, ds.uri);
			int32_t st;
			char msg[STK_ERRMSG_MAX];
			cr_assert_eq(exchange(fd, buf, (size_t)n, 1, &st, msg, sizeof(msg)), GOT_OK,
				     "OPEN %s on a raw socket failed: %s", ds.uri, msg);
		}
		size_t n;
		uint64_t kind = e2e_rand_below(&rng, 3);
		if (kind == 0) { /* pure noise */
			n = (size_t)e2e_rand_below(&rng, 64);
			for (size_t k = 0; k < n; k++)
				buf[k] = (uint8_t)e2e_rand(&rng);
		} else { /* a valid header, a random type and body */
			uint8_t body[48];
			size_t blen = (size_t)e2e_rand_below(&rng, sizeof(body));
			for (size_t k = 0; k < blen; k++)
				body[k] =
				    (uint8_t)(e2e_rand_below(&rng, 4) ? e2e_rand_below(&rng, 6)
								      : e2e_rand(&rng));
			uint16_t type = (uint16_t)e2e_rand_below(&rng, 11);
			n = dgram(buf, type, 50000 + i, (uint32_t)blen, body, blen);
		}
		if (raw_send(fd, buf, n, NULL, 0) || !probe(fd, 90000 + i)) {
			close(fd);
			fd = -1;
			closes++;
		}
	}
	if (fd >= 0)
		close(fd);
	cr_assert_lt(closes, rounds, "every datagram closed the connection");

	/* Clients that vanish while their OPEN or GET is in flight. */
	for (int i = 0; i < 20; i++) {
		fd = raw_connect();
		long n = stk__enc_open(buf, sizeof(buf), 1, 0, ds.uri);
		int32_t st;
		char msg[STK_ERRMSG_MAX];
		cr_assert_eq(exchange(fd, buf, (size_t)n, 1, &st, msg, sizeof(msg)), GOT_OK);
		n = stk__enc_obj(buf, sizeof(buf), STK_MSG_GET, 2, 1, (uint32_t)(i % 4));
		cr_assert_eq(raw_send(fd, buf, (size_t)n, NULL, 0), 0);
		if (i % 2) { /* and one more OPEN, of a dataset not listed yet */
			char u[400];
			snprintf(u, sizeof(u), "file://%s/%s", dir, ds.o[i % 4].key);
			n = stk__enc_open(buf, sizeof(buf), 3, 0, u);
			raw_send(fd, buf, (size_t)n, NULL, 0);
		}
		close(fd);
	}

	/* The daemon survived: a normal client gets every object, and the sessions are gone. */
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "%s", stk_errmsg());
	for (size_t i = 0; i < ds.n; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0);
	stk_dataset_close(sds);
	struct stk_stats s = e2e_stats(c);
	for (int i = 0; i < 300 && (s.clients != 1 || s.pinned_objects); i++) {
		e2x_sleep_ms(10);
		s = e2e_stats(c);
	}
	cr_assert_eq(s.clients, 1, "%llu clients counted, one is connected",
		     (unsigned long long)s.clients);
	cr_assert_eq(s.pinned_objects, 0, "%llu objects pinned by clients that are gone",
		     (unsigned long long)s.pinned_objects);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* Many clients at once: each is counted, served, and forgotten when it leaves. */
Test(e2e_proto, many_connections, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	enum { N = 200 };
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client **cs = calloc(N, sizeof(*cs));
	cr_assert_not_null(cs);
	for (int i = 0; i < N; i++)
		cs[i] = e2e_connect(&e2e_d);
	struct stk_stats st = e2e_stats(cs[N / 2]);
	cr_assert_eq(st.clients, N, "%llu clients counted, %d connected",
		     (unsigned long long)st.clients, N);
	for (int i = 0; i < N; i++)
		if (i != 7)
			stk_close(cs[i]);
	for (int k = 0; k < 300; k++) {
		st = e2e_stats(cs[7]);
		if (st.clients == 1)
			break;
		e2x_sleep_ms(10);
	}
	cr_assert_eq(st.clients, 1, "%llu clients counted after %d left",
		     (unsigned long long)st.clients, N - 1);
	stk_close(cs[7]);
	free(cs);
	e2e_daemon_stop(&e2e_d);
}

/* docs/PROTOCOL.md: HELLO comes first.  Anything else first is refused and the connection closed.
 */
Test(e2e_proto, request_before_hello_is_refused, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	e2e_daemon_start(&e2e_d, NULL);
	int fd = raw_connect_bare();
	uint8_t buf[512];
	char uri[300];
	snprintf(uri, sizeof(uri), "file://%s/", e2e_d.root);
	long n = stk__enc_open(buf, sizeof(buf), 7, 0, uri);
	int32_t status = 0;
	char msg[STK_ERRMSG_MAX];
	cr_assert_eq(exchange(fd, buf, (size_t)n, 7, &status, msg, sizeof(msg)), GOT_ERROR);
	cr_assert_eq(status, -EPROTO);
	cr_assert(strstr(msg, "HELLO must be the first message"), "message: %s", msg);
	cr_assert_eq(raw_recv(fd, buf, sizeof(buf), RECV_MS), 0, "the connection stays open");
	close(fd);
	/* Everyone else is served as before. */
	stk_close(e2e_connect(&e2e_d));
	e2e_daemon_stop(&e2e_d);
}

/* A shared PLAN (stk_plan_shared()) needs a plan group, and starts with RESET. */
Test(e2e_proto, shared_plan_needs_a_group, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	char path[300], uri[300];
	snprintf(path, sizeof(path), "%s/ds/a", e2e_d.root);
	cr_assert_eq(e2x_write_file(path, 100, 1), 0);
	snprintf(uri, sizeof(uri), "file://%s/ds/", e2e_d.root);
	e2e_daemon_start(&e2e_d, NULL);
	uint8_t buf[512];
	int32_t status = 0;
	char msg[STK_ERRMSG_MAX];
	uint32_t idx = 0;
	for (int grouped = 0; grouped < 2; grouped++) {
		int fd = raw_connect_bare();
		long n = stk__enc_hello_group(buf, sizeof(buf), 1, (uint32_t)getpid(),
					      grouped ? 0xfeedull : 0);
		cr_assert_eq(exchange(fd, buf, (size_t)n, 1, &status, msg, sizeof(msg)), GOT_OK);
		n = stk__enc_open(buf, sizeof(buf), 2, 0, uri);
		cr_assert_eq(exchange(fd, buf, (size_t)n, 2, &status, msg, sizeof(msg)), GOT_OK,
			     "OPEN: %s", msg);
		n = stk__enc_plan(buf, sizeof(buf), 3, STK_PLAN_SHARED, 1, &idx, 1);
		cr_assert_eq(exchange(fd, buf, (size_t)n, 3, &status, msg, sizeof(msg)), GOT_ERROR);
		cr_assert_eq(status, -EINVAL);
		cr_assert(strstr(msg, grouped ? "continues no shared plan" : "no plan group"),
			  "message: %s", msg);
		n = stk__enc_plan(buf, sizeof(buf), 4, STK_PLAN_SHARED | STK_PLAN_RESET, 1, &idx,
				  1);
		enum outcome o = exchange(fd, buf, (size_t)n, 4, &status, msg, sizeof(msg));
		cr_assert_eq(o, grouped ? GOT_OK : GOT_ERROR, "%d: %s", status, msg);
		still_alive(fd, "a shared PLAN");
		close(fd);
	}
	e2e_daemon_stop(&e2e_d);
}

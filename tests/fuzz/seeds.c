/* SPDX-License-Identifier: MIT */
/*
 * Writes fuzz_server's seed inputs into the directory given: one file per
 * session story (a normal epoch, each per-client limit, each kind of
 * malformed datagram...), built with proto/'s encoders so the seeds follow
 * the layouts.  Run it after a layout changes:
 *   fuzz_server_seeds tests/fuzz/corpus/server
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "stoker.h"
#include "tests/fuzz/fuzz_server.h"

struct input {
	uint8_t b[16384];
	size_t n;
	uint32_t seq;
};

static uint8_t msg[STK_MSG_MAX];

static void rec(struct input *in, uint8_t op, const void *p, size_t len)
{
	if (in->n + 3 + len > sizeof(in->b)) {
		fprintf(stderr, "seeds: input too long\n");
		exit(1);
	}
	in->b[in->n++] = op;
	in->b[in->n++] = (uint8_t)len;
	in->b[in->n++] = (uint8_t)(len >> 8);
	if (len)
		memcpy(in->b + in->n, p, len);
	in->n += len;
}

/* A datagram that msg holds, n bytes (an encoder's result). */
static void dgram(struct input *in, long n)
{
	if (n < 0) {
		fprintf(stderr, "seeds: an encoder failed: %ld\n", n);
		exit(1);
	}
	rec(in, FZ_DGRAM, msg, (size_t)n);
}

static void hello(struct input *in)
{
	dgram(in, stk__enc_hello(msg, sizeof(msg), ++in->seq, 1234));
}

/* HELLO of a connection in plan group group. */
static void hello_group(struct input *in, uint64_t group)
{
	dgram(in, stk__enc_hello_group(msg, sizeof(msg), ++in->seq, 1234, group));
}

/* OPEN of ROOT/rel: the dataset gets the next handle, counted by the caller. */
static void open_ds(struct input *in, const char *rel, unsigned flags)
{
	rec(in, FZ_OP(FZ_OPEN, flags), rel, strlen(rel));
}

static void plan(struct input *in, uint16_t flags, uint32_t ds, const uint32_t *idx, uint32_t n)
{
	dgram(in, stk__enc_plan(msg, sizeof(msg), ++in->seq, flags, ds, idx, n));
}

static void obj(struct input *in, uint16_t type, uint32_t ds, uint32_t index)
{
	dgram(in, stk__enc_obj(msg, sizeof(msg), type, ++in->seq, ds, index));
}

/*
 * Writes the pin of (ds_id, index) into way 0 of its bucket (value 0: clears
 * it), as a client reading through the resident table does.  The daemon's
 * pin areas have 256 buckets.
 */
static void pin(struct input *in, uint32_t ds_id, uint32_t index, bool set)
{
	uint64_t key = stk__pin_key(ds_id, index), v = set ? key : 0;
	size_t at = (size_t)stk__pin_bucket(key, 256) * STK_PIN_WAYS * 8;
	uint8_t b[256 + 8] = { 0 };
	size_t lead = at % 256;
	for (unsigned i = 0; i < 8; i++)
		b[lead + i] = (uint8_t)(v >> (8 * i));
	rec(in, FZ_OP(FZ_PINS, (unsigned)(at / 256)), b, lead + 8);
}

static void ds_msg(struct input *in, uint16_t type, uint32_t ds)
{
	dgram(in, stk__enc_ds(msg, sizeof(msg), type, ++in->seq, ds));
}

static void stats(struct input *in)
{
	dgram(in, stk__enc_stats(msg, sizeof(msg), ++in->seq));
}

static void endpoints(struct input *in)
{
	dgram(in, stk__enc_endpoints(msg, sizeof(msg), ++in->seq));
}

/* A header of type with a raw body of n bytes. */
static void raw(struct input *in, uint16_t type, const void *body, size_t n)
{
	struct stk_buf b;
	stk__buf_init(&b, msg, sizeof(msg));
	stk__msg_begin(&b, type, 0, ++in->seq);
	stk__put_bytes(&b, body, n);
	dgram(in, stk__msg_end(&b));
}

static const char *dir;

static void save(const char *name, const struct input *in)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (!f || fwrite(in->b, 1, in->n, f) != in->n || fclose(f)) {
		perror(p);
		exit(1);
	}
}

/* Starts a seed; save() writes it. */
static struct input *begin(void)
{
	static struct input in;
	memset(&in, 0, sizeof(in));
	return &in;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	/* ds/ lists a, b, big, c, empty, f, sub/d, sub/e: indices 0..7 in key order. */
	static const uint32_t epoch[] = { 6, 3, 0, 1, 5, 4, 7, 6, 0 };

	{
		struct input *in = begin();
		hello(in);
		stats(in);
		endpoints(in);
		save("seed-hello-stats-endpoints", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		plan(in, STK_PLAN_RESET, 1, epoch, 9);
		for (unsigned i = 0; i < 9; i++) {
			obj(in, STK_MSG_GET, 1, epoch[i]);
			obj(in, STK_MSG_RELEASE, 1, epoch[i]);
		}
		ds_msg(in, STK_MSG_STATUS, 1);
		stats(in);
		ds_msg(in, STK_MSG_CLOSE, 1);
		save("seed-epoch", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds/", 0);
		plan(in, STK_PLAN_RESET, 1, epoch, 4);
		plan(in, 0, 1, epoch + 4, 5);
		obj(in, STK_MSG_GET, 1, 6);
		plan(in, STK_PLAN_RESET, 1, epoch + 2, 3);
		obj(in, STK_MSG_GET, 1, 0);
		ds_msg(in, STK_MSG_STATUS, 1);
		save("seed-plan-in-chunks", in);
	}
	{
		/* A plan group: shared plans, in chunks, replaced, read and read again. */
		struct input *in = begin();
		hello_group(in, 0x5eed);
		open_ds(in, "ds", 0);
		open_ds(in, "ds", 0);
		plan(in, STK_PLAN_RESET | STK_PLAN_SHARED, 1, epoch, 4);
		plan(in, STK_PLAN_SHARED, 1, epoch + 4, 5);
		for (unsigned i = 0; i < 9; i++) {
			obj(in, STK_MSG_GET, 1 + i % 2, epoch[i]);
			obj(in, STK_MSG_RELEASE, 1 + i % 2, epoch[i]);
		}
		obj(in, STK_MSG_GET, 2, 6); /* past the end: a new epoch */
		plan(in, STK_PLAN_RESET | STK_PLAN_SHARED, 2, epoch + 2, 3);
		uint32_t bad[2] = { 1, 99 };
		plan(in, STK_PLAN_RESET | STK_PLAN_SHARED, 1, bad, 2);
		plan(in, STK_PLAN_SHARED, 1, bad, 1); /* continues nothing */
		obj(in, STK_MSG_GET, 1, 3);
		ds_msg(in, STK_MSG_CLOSE, 1);
		obj(in, STK_MSG_GET, 2, 4);
		ds_msg(in, STK_MSG_CLOSE, 2);
		save("seed-plan-group", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		plan(in, STK_PLAN_RESET | STK_PLAN_SHARED, 1, epoch, 9); /* no group */
		obj(in, STK_MSG_GET, 1, 0);
		save("seed-shared-plan-without-group", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		ds_msg(in, STK_MSG_WARM, 1);
		ds_msg(in, STK_MSG_WARM, 1);
		ds_msg(in, STK_MSG_STATUS, 1);
		obj(in, STK_MSG_GET, 1, 2); /* big: larger than the budget */
		ds_msg(in, STK_MSG_STATUS, 1);
		save("seed-warm-status", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "manifest.txt", STK_DS_MANIFEST);
		open_ds(in, "ds", 0); /* a and c again, through another dataset */
		for (uint32_t i = 0; i < 5; i++)
			obj(in, STK_MSG_GET, 1, i);
		obj(in, STK_MSG_GET, 2, 0);
		ds_msg(in, STK_MSG_STATUS, 1);
		ds_msg(in, STK_MSG_STATUS, 2);
		save("seed-manifest", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds/sub/d", 0);
		obj(in, STK_MSG_GET, 1, 0);
		open_ds(in, "nonexistent", 0);
		open_ds(in, "../etc", 0);
		open_ds(in, "odd", 0);
		open_ds(in, "odd/out", 0);
		open_ds(in, "ds/./sub//", 0);
		open_ds(in, "manifest.txt", 0);
		obj(in, STK_MSG_GET, 2, 0);
		save("seed-single-file-and-bad-uris", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "odd", 0);
		ds_msg(in, STK_MSG_WARM, 1);
		obj(in, STK_MSG_GET, 1, 0);
		obj(in, STK_MSG_GET, 1, 1);
		obj(in, STK_MSG_GET, 1, 2);
		ds_msg(in, STK_MSG_STATUS, 1);
		save("seed-odd-files", in);
	}
	{
		struct input *in = begin();
		open_ds(in, "ds", 0);
		stats(in);
		save("seed-no-hello", in);
	}
	{
		struct input *in = begin();
		dgram(in, stk__enc_hello(msg, sizeof(msg), 1, 1));
		msg[STK_HDR_SIZE + 4] = 9; /* version 9 */
		rec(in, FZ_DGRAM, msg, STK_HDR_SIZE + 12);
		hello(in);
		hello(in); /* HELLO again mid-session: the liveness probe */
		stats(in);
		save("seed-wrong-version-then-hello", in);
	}
	{
		struct input *in = begin();
		hello(in);
		rec(in, FZ_DGRAM, "\x01\x00\x00", 3); /* shorter than a header */
		hello(in);
		long n = stk__enc_stats(msg, sizeof(msg), 5);
		msg[8] = 4; /* len says 4, the datagram has none */
		rec(in, FZ_DGRAM, msg, (size_t)n);
		hello(in);
		rec(in, FZ_DGRAM, "", 0); /* an empty datagram reads as a hang-up */
		hello(in);
		stats(in);
		save("seed-bad-headers", in);
	}
	{
		struct input *in = begin();
		hello(in);
		uint8_t body[16] = { 1, 0, 0, 0 };
		raw(in, STK_MSG_GET, body, 4);
		raw(in, STK_MSG_HELLO, body, 12); /* magic wrong */
		uint8_t op[12] = { 0, 0, 0, 0, 100, 0, 0, 0, 'f', 'i', 'l', 'e' };
		raw(in, STK_MSG_OPEN, op, sizeof(op)); /* uri_len overruns */
		uint8_t op0[8] = { 0 };
		raw(in, STK_MSG_OPEN, op0, 8); /* uri_len 0 */
		uint8_t nul[13] = { 0, 0, 0, 0, 5, 0, 0, 0, 'a', 0, 'b', 'c', 'd' };
		raw(in, STK_MSG_OPEN, nul, sizeof(nul));
		uint8_t pl[12] = { 1, 0, 0, 0, 10, 0, 0, 0 };
		raw(in, STK_MSG_PLAN, pl, sizeof(pl)); /* n overruns */
		raw(in, 77, NULL, 0);
		raw(in, STK_MSG_REPLY | STK_MSG_GET, body, 8);
		raw(in, STK_MSG_STATS, body, 1);
		stats(in);
		save("seed-bad-bodies", in);
	}
	{
		struct input *in = begin();
		hello(in);
		obj(in, STK_MSG_GET, 0, 0);
		obj(in, STK_MSG_GET, 9, 0);
		obj(in, STK_MSG_RELEASE, 1, 0);
		ds_msg(in, STK_MSG_CLOSE, 1);
		ds_msg(in, STK_MSG_WARM, 1);
		ds_msg(in, STK_MSG_STATUS, 0xffffffffu);
		uint32_t i0 = 0;
		plan(in, 0, 1, &i0, 1);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 8); /* index out of range */
		ds_msg(in, STK_MSG_CLOSE, 1);
		obj(in, STK_MSG_GET, 1, 0); /* closed */
		ds_msg(in, STK_MSG_CLOSE, 1);
		save("seed-bad-handles", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		static const uint32_t order[] = { 6, 7, 3, 1, 0, 5 }; /* d, e, c, b, a, then f */
		for (unsigned i = 0; i < 6; i++)
			obj(in, STK_MSG_GET, 1, order[i]);
		obj(in, STK_MSG_RELEASE, 1, 7);
		obj(in, STK_MSG_GET, 1, 5);
		stats(in);
		save("seed-pin-limit", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 7); /* e: 8 pages */
		obj(in, STK_MSG_GET, 1, 6); /* d: 5 */
		obj(in, STK_MSG_GET, 1, 3); /* c: 2 */
		obj(in, STK_MSG_GET, 1, 1); /* b: 1, the 16th */
		obj(in, STK_MSG_GET, 1, 0); /* a: waits for room that pins hold */
		stats(in);
		rec(in, FZ_TICK, NULL, 0);
		obj(in, STK_MSG_RELEASE, 1, 7);
		obj(in, STK_MSG_GET, 1, 0);
		save("seed-pin-wait-expires", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 7);
		obj(in, STK_MSG_GET, 1, 6);
		obj(in, STK_MSG_GET, 1, 3);
		obj(in, STK_MSG_GET, 1, 1);
		obj(in, STK_MSG_GET, 1, 0); /* waits, as above, until e goes */
		obj(in, STK_MSG_RELEASE, 1, 7);
		ds_msg(in, STK_MSG_CLOSE, 1);
		save("seed-release-unblocks", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		open_ds(in, "ds/sub", 0);
		open_ds(in, "odd", 0);
		open_ds(in, "manifest.txt", STK_DS_MANIFEST);
		ds_msg(in, STK_MSG_CLOSE, 2);
		open_ds(in, "manifest.txt", STK_DS_MANIFEST);
		obj(in, STK_MSG_GET, 2, 0);
		save("seed-dataset-limit", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		uint32_t many[70];
		for (unsigned i = 0; i < 70; i++)
			many[i] = i % 8;
		plan(in, STK_PLAN_RESET, 1, many, 60);
		plan(in, 0, 1, many, 10); /* past 64 entries */
		uint32_t bad[2] = { 1, 8 };
		plan(in, STK_PLAN_RESET, 1, bad, 2); /* out of range */
		plan(in, STK_PLAN_RESET, 1, many, 8);
		obj(in, STK_MSG_GET, 1, 0);
		save("seed-plan-limits", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		rec(in, FZ_OP(FZ_READING, 0), NULL, 0);
		for (unsigned i = 0; i < 40; i++)
			stats(in);
		obj(in, STK_MSG_GET, 1, 0);
		rec(in, FZ_OP(FZ_READING, 1), NULL, 0);
		stats(in);
		save("seed-unread-replies", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		plan(in, STK_PLAN_RESET, 1, epoch, 9);
		obj(in, STK_MSG_GET, 1, 6);
		obj(in, STK_MSG_GET, 1, 7);
		rec(in, FZ_RECONNECT, NULL, 0);
		hello(in);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 6);
		rec(in, FZ_TICK, NULL, 0);
		stats(in);
		save("seed-hang-up-holding", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 0);
		obj(in, STK_MSG_RELEASE, 1, 0);
		ds_msg(in, STK_MSG_CLOSE, 1);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 0);
		rec(in, FZ_TICK, NULL, 0);
		ds_msg(in, STK_MSG_CLOSE, 1);
		rec(in, FZ_TICK, NULL, 0);
		stats(in);
		save("seed-reopen-revalidates", in);
	}
	{
		struct input *in = begin();
		hello(in);
		long n = stk__enc_stats(msg, sizeof(msg), 3);
		rec(in, FZ_DGRAM_FD, msg, (size_t)n);
		stats(in);
		n = stk__enc_stats(msg, sizeof(msg), 4);
		rec(in, FZ_OVERSIZE, msg, (size_t)n);
		hello(in);
		stats(in);
		save("seed-descriptors-and-oversize", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		for (uint32_t i = 0; i < 8; i++)
			obj(in, STK_MSG_GET, 1, i);
		open_ds(in, "ds/sub", 0);
		save("seed-request-limit", in);
	}
	{
		/* An empty datagram (a hang-up) with a descriptor: once left open. */
		struct input *in = begin();
		hello(in);
		rec(in, FZ_DGRAM_FD, NULL, 0);
		hello(in);
		save("regress-empty-datagram-with-fd", in);
	}
	{
		/* http:// may reach only a closed port: a refused listing, counted. */
		struct input *in = begin();
		hello(in);
		dgram(in, stk__enc_open(msg, sizeof(msg), ++in->seq, 0, "http://127.0.0.1:1/x"));
		dgram(in, stk__enc_open(msg, sizeof(msg), ++in->seq, STK_DS_MANIFEST,
					"http://127.0.0.1:1/list"));
		dgram(in, stk__enc_open(msg, sizeof(msg), ++in->seq, 0, "http://example.com/x"));
		dgram(in, stk__enc_open(msg, sizeof(msg), ++in->seq, 0, "s3://bucket/prefix/"));
		dgram(in, stk__enc_open(msg, sizeof(msg), ++in->seq, 0, "gopher://x/"));
		endpoints(in);
		stats(in);
		save("seed-http-refused", in);
	}
	{
		/*
		 * Pins hold 9 of the 16 pages and a GET needs 8: the daemon once
		 * evicted f and empty in vain, prefetched them again for the plan,
		 * and repeated that until --pin-wait failed the GET.
		 */
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		static const uint32_t p[] = { 6, 3, 0, 1, 5, 4, 5, 6, 0 };
		plan(in, STK_PLAN_RESET, 1, p, 9);
		obj(in, STK_MSG_GET, 1, 6);
		obj(in, STK_MSG_GET, 1, 3);
		obj(in, STK_MSG_GET, 1, 0);
		obj(in, STK_MSG_GET, 1, 1);
		obj(in, STK_MSG_GET, 1, 7);
		save("regress-fetch-thrash-behind-pins", in);
	}
	{
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		static const uint32_t all[] = { 0, 1, 3, 4, 5, 6, 0 };
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, all, 7));
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_RELEASEB, ++in->seq, 1, all, 7));
		static const uint32_t big[] = { 7, 2, 6 }; /* e, then one that never fits */
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, big, 3));
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, NULL, 0));
		static const uint32_t bad[] = { 0, 8 };
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, bad, 2));
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_RELEASEB, ++in->seq, 1, big, 3));
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 2, all, 1));
		stats(in);
		save("seed-batches", in);
	}
	{
		/* A batch half held when its client hangs up, and one past the pin limit. */
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		static const uint32_t heavy[] = { 7, 6, 3, 1, 0, 5 };
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, heavy, 6));
		obj(in, STK_MSG_RELEASE, 1, 7);
		rec(in, FZ_TICK, NULL, 0);
		rec(in, FZ_RECONNECT, NULL, 0);
		hello(in);
		open_ds(in, "ds", 0);
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, heavy, 2));
		ds_msg(in, STK_MSG_CLOSE, 1);
		save("seed-batch-held-at-hang-up", in);
	}
	{
		/*
		 * Pins in the pin area on a and on b: the daemon must keep a
		 * while filling the budget, let it go once the pin is cleared, and
		 * everything held when the client hangs up.
		 */
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 0);
		obj(in, STK_MSG_RELEASE, 1, 0);
		pin(in, 1, 0, true);
		pin(in, 1, 1, true);
		static const uint32_t fill[] = { 7, 6, 3 };
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, fill, 3));
		dgram(in,
		      stk__enc_batch(msg, sizeof(msg), STK_MSG_RELEASEB, ++in->seq, 1, fill, 3));
		/* Waits: gets through the table, a batch, absurd waits and flags, a bad index. */
		static const struct stk_wait_rec got[] = {
			{ 0, STK_WAIT_GOT, 1000 },	 { 0, STK_WAIT_GOT | STK_WAIT_NONE, 0 },
			{ 9, STK_WAIT_GOT, UINT64_MAX }, { 5, STK_WAIT_CONT | STK_WAIT_MISS, 7 },
			{ 1, 0xffffffffu, 5 },		 { 2, STK_WAIT_MISS, 3000000 },
		};
		dgram(in, stk__enc_waits(msg, sizeof(msg), ++in->seq, 1, got, 6));
		rec(in, FZ_TICK, NULL, 0);
		pin(in, 1, 0, false);
		dgram(in, stk__enc_batch(msg, sizeof(msg), STK_MSG_GETB, ++in->seq, 1, fill, 3));
		pin(in, 1, 0, true);
		rec(in, FZ_RECONNECT, NULL, 0);
		hello(in);
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 2, 0);
		save("seed-pin-area", in);
	}
	{
		/* Garbage in the pin area: every byte a client could write. */
		struct input *in = begin();
		hello(in);
		open_ds(in, "ds", 0);
		uint8_t junk[256];
		for (unsigned i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)(i * 37 + 1);
		for (unsigned p = 0; p < 32; p += 7)
			rec(in, FZ_OP(FZ_PINS, p), junk, sizeof(junk));
		obj(in, STK_MSG_GET, 1, 0);
		obj(in, STK_MSG_GET, 1, 7);
		stats(in);
		save("seed-pin-area-garbage", in);
	}
	{
		/*
		 * The per-client and per-dataset lists: before HELLO, empty, with a
		 * dataset and waits, with a body, and after a second client came.
		 */
		struct input *in = begin();
		dgram(in, stk__enc_list(msg, sizeof(msg), STK_MSG_CLIENTS, ++in->seq));
		hello(in);
		dgram(in, stk__enc_list(msg, sizeof(msg), STK_MSG_DATASETS, ++in->seq));
		open_ds(in, "ds", 0);
		obj(in, STK_MSG_GET, 1, 0);
		static const struct stk_wait_rec w[] = { { 0, STK_WAIT_MISS, 5000 } };
		dgram(in, stk__enc_waits(msg, sizeof(msg), ++in->seq, 1, w, 1));
		dgram(in, stk__enc_list(msg, sizeof(msg), STK_MSG_CLIENTS, ++in->seq));
		dgram(in, stk__enc_list(msg, sizeof(msg), STK_MSG_DATASETS, ++in->seq));
		raw(in, STK_MSG_DATASETS, "body", 4);
		rec(in, FZ_RECONNECT, NULL, 0);
		hello(in);
		open_ds(in, "ds/sub", 0);
		dgram(in, stk__enc_list(msg, sizeof(msg), STK_MSG_CLIENTS, ++in->seq));
		dgram(in, stk__enc_list(msg, sizeof(msg), STK_MSG_DATASETS, ++in->seq));
		save("seed-clients-datasets", in);
	}
	return 0;
}

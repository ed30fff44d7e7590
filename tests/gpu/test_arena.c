/* SPDX-License-Identifier: MIT */
/*
 * gpu/arena.c and gpu/pipe.c on a real stokerd and libstoker, against the
 * fake CUDA runtime (fake_cudart.h): the arena's segments are registered
 * once each, when libstoker maps them, and unregistered before it unmaps
 * them; copies from views need no registration; CUDA errors become errnos;
 * the pipe's events and stream waits come in the order that keeps a slot
 * from being overwritten while compute reads it.
 */
#include "stoker/gpu.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cudart.h"
#include "harness.h"

/* Every test in this file: Criterion 2.4.1 leaks under ASan when timeouts differ within a file. */
#define TIMEOUT_S 90
#define STREAM	  ((void *)0x5a)
#define COPY	  ((void *)1)
#define COMPUTE	  ((void *)2)
#define NOBJ	  24

static struct e2e_dataset ds;
static struct stk_client *c;
static struct stk_dataset *sds;

/* A daemon with 8 MiB segments (--ram 64M), and a dataset of n objects of size - 7 * i. */
static void start(size_t n, uint64_t size, uint64_t last)
{
	uint64_t *sizes = calloc(n, sizeof(*sizes));
	char dir[256];
	int r;

	cr_assert_not_null(sizes);
	for (size_t i = 0; i < n; i++)
		sizes[i] = size - 7 * i;
	if (last)
		sizes[n - 1] = last;
	snprintf(dir, sizeof(dir), "%s/gpu", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, n, 0, 0x6b0 + n);
	free(sizes);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	c = e2e_connect(&e2e_d);
	r = stk_dataset_open(c, ds.uri, 0, &sds);
	cr_assert_eq(r, 0, "open %s: %s", ds.uri, stk_errmsg());
	fake_reset(NULL);
}

static void stop(void)
{
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

static void get(size_t i, struct stk_view *v)
{
	cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, v), 0, "object %zu", i);
}

/* How many distinct segments the n views lie in. */
static size_t segments(const struct stk_view *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j = 0;

		while (j < i && (v[j].seg != v[i].seg || v[j].gen != v[i].gen))
			j++;
		k += j == i;
	}
	return k;
}

static void release_all(struct stk_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		stk_release(&v[i]);
}

Test(gpu_arena, many_gets_into_a_segment_register_it_once, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct stk_view v[NOBJ];
	struct stk_gpu_stager *s = NULL;
	const struct fake_copy *cp;
	unsigned char *dev;
	size_t ncp, at = 0;

	start(NOBJ, 64 * E2E_KIB, 0);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(fake_calls("cudaHostRegister"), 0, "nothing was mapped yet");
	for (size_t i = 0; i < NOBJ; i++)
		get(i, &v[i]);
	size_t nseg = segments(v, NOBJ);
	cr_assert_lt(nseg, NOBJ / 2, "the objects should share segments");
	cr_assert_eq(fake_calls("cudaHostRegister"), (int)nseg, "one registration per segment");
	cr_assert_eq(fake_nregs(), nseg);
	for (size_t i = 0; i < NOBJ; i++)
		cr_assert(fake_registered(v[i].data, v[i].size), "object %zu is not pinned", i);

	dev = calloc(1, ds.bytes + 100);
	cr_assert_not_null(dev);
	cr_assert_eq(stk_gpu_stager_create(0, STREAM, &s), 0, "%s", stk_gpu_errmsg());
	for (size_t i = 0; i < NOBJ; i++) {
		cr_assert_eq(stk_gpu_copy_view_async(s, &v[i], 0, v[i].size, dev + at), 0, "%s",
			     stk_gpu_errmsg());
		at += v[i].size;
	}
	/* A piece of one, and bytes past its end. */
	cr_assert_eq(stk_gpu_copy_view_async(s, &v[3], 10, 100, dev + ds.bytes), 0, "%s",
		     stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_copy_view_async(s, &v[3], v[3].size - 1, 2, dev), -EINVAL);
	cr_assert_eq(stk_gpu_copy_view_async(s, &v[3], v[3].size + 1, 0, dev), -EINVAL);
	cr_assert_eq(fake_calls("cudaHostRegister"), (int)nseg, "no registration per copy");

	cp = fake_copies(&ncp);
	cr_assert_eq(ncp, NOBJ + 1);
	at = 0;
	for (size_t i = 0; i < NOBJ; i++) {
		cr_assert_eq(cp[i].src, v[i].data);
		cr_assert_eq(cp[i].dst, dev + at);
		cr_assert_eq(cp[i].len, v[i].size);
		cr_assert_eq(cp[i].stream, STREAM);
		cr_assert(cp[i].pinned, "copy %zu was from pageable memory", i);
		cr_assert_eq(e2e_hash(dev + at, v[i].size), ds.o[i].hash, "object %zu", i);
		at += v[i].size;
	}
	cr_assert_eq(cp[NOBJ].src, (const unsigned char *)v[3].data + 10);
	cr_assert_eq(cp[NOBJ].len, 100);
	cr_assert_arr_eq(dev + ds.bytes, (const unsigned char *)v[3].data + 10, 100);
	stk_gpu_stager_destroy(s);
	cr_assert_eq(fake_calls("cudaHostUnregister"), 0, "the stager owned no registration");
	release_all(v, NOBJ);
	stop();
	cr_assert_eq(fake_calls("cudaHostUnregister"), (int)nseg, "unregistered as unmapped");
	cr_assert_eq(fake_nregs(), 0);
	free(dev);
}

Test(gpu_arena, pins_what_is_mapped_already_and_unpins, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct stk_view v[NOBJ];
	struct stk_gpu_stager *s = NULL;
	unsigned char buf[256];
	const struct fake_copy *cp;
	size_t ncp;

	start(NOBJ, 64 * E2E_KIB, 0);
	for (size_t i = 0; i < NOBJ; i++)
		get(i, &v[i]);
	size_t nseg = segments(v, NOBJ);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(fake_calls("cudaHostRegister"), (int)nseg);
	cr_assert(fake_registered(v[0].data, v[0].size));
	cr_assert_eq(stk_gpu_pin_arena(c, 0), -EBUSY, "pinned twice");
	cr_assert_eq(stk_gpu_unpin_arena(c), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(fake_calls("cudaHostUnregister"), (int)nseg);
	cr_assert_eq(fake_nregs(), 0);
	cr_assert_eq(stk_gpu_unpin_arena(c), 0, "unpinning an unpinned client");

	/* Unpinned, a copy falls back to the stager's registration of its pages. */
	cr_assert_eq(stk_gpu_stager_create(0, STREAM, &s), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_copy_view_async(s, &v[1], 0, sizeof(buf), buf), 0, "%s",
		     stk_gpu_errmsg());
	cr_assert_eq(fake_calls("cudaHostRegister"), (int)nseg + 1);
	cp = fake_copies(&ncp);
	cr_assert_eq(ncp, 1);
	cr_assert(cp[0].pinned);
	cr_assert_arr_eq(buf, v[1].data, sizeof(buf));
	stk_gpu_stager_destroy(s);
	cr_assert_eq(fake_nregs(), 0, "the stager unregistered its range");
	release_all(v, NOBJ);
	stop();
	cr_assert_eq(fake_calls("cudaHostUnregister"), (int)nseg + 1, "nothing unregistered twice");
}

Test(gpu_arena, a_dedicated_segment_is_unregistered_when_unmapped, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct stk_view small, big;

	/* 12 MiB: more than an 8 MiB segment, so it comes in a segment of its own. */
	start(2, 64 * E2E_KIB, 12 * E2E_MIB);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), 0, "%s", stk_gpu_errmsg());
	get(0, &small);
	cr_assert_eq(fake_nregs(), 1);
	get(1, &big);
	cr_assert(fake_registered(big.data, big.size), "the huge object is not pinned");
	cr_assert_eq(fake_nregs(), 2);
	cr_assert_eq(fake_calls("cudaHostRegister"), 2);
	stk_release(&big); /* its last view: libstoker unmaps the dedicated segment */
	cr_assert_eq(fake_calls("cudaHostUnregister"), 1);
	cr_assert_eq(fake_nregs(), 1);
	cr_assert(fake_registered(small.data, small.size), "the shared segment stays pinned");
	stk_release(&small);
	cr_assert_eq(fake_nregs(), 1, "a shared segment stays mapped without views");
	stop(); /* the client is freed: every mapping goes */
	cr_assert_eq(fake_calls("cudaHostUnregister"), 2);
	cr_assert_eq(fake_nregs(), 0);
}

Test(gpu_arena, cuda_errors_become_errnos, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct stk_gpu_stager *s = NULL;
	struct stk_view a, b;
	unsigned char buf[64];

	start(NOBJ, 64 * E2E_KIB, 12 * E2E_MIB);
	get(0, &a);
	cr_assert_eq(stk_gpu_pin_arena(c, 1), -ENODEV);
	cr_assert_eq(stk_gpu_pin_arena(c, -1), -EINVAL);
	cr_assert_eq(stk_gpu_pin_arena(NULL, 0), -EINVAL);
	fake_fail("cudaGetDeviceCount", cudaErrorNoDevice, 1);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), -ENODEV);
	cr_assert(strstr(stk_gpu_errmsg(), "cudaGetDeviceCount"), "%s", stk_gpu_errmsg());

	/* A mapping held already that cannot be pinned fails the call, which leaves nothing. */
	fake_fail("cudaHostRegister", cudaErrorMemoryAllocation, 1);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), -ENOMEM);
	cr_assert(strstr(stk_gpu_errmsg(), "cudaHostRegister"), "%s", stk_gpu_errmsg());
	cr_assert_eq(cudaGetLastError(), cudaSuccess, "the runtime's error was left set");
	cr_assert_eq(fake_nregs(), 0);

	/* Pinned, a new mapping the driver refuses is copied with a registration per range. */
	cr_assert_eq(stk_gpu_pin_arena(c, 0), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(fake_nregs(), 1);
	fake_fail("cudaHostRegister", cudaErrorMemoryAllocation, 1);
	get(NOBJ - 1, &b); /* the huge one, in a segment of its own */
	cr_assert_eq(fake_nregs(), 1);
	cr_assert_not(fake_registered(b.data, b.size));
	cr_assert_eq(stk_gpu_stager_create(0, STREAM, &s), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_copy_view_async(s, &b, 4096, sizeof(buf), buf), 0, "%s",
		     stk_gpu_errmsg());
	cr_assert_eq(fake_nregs(), 2, "the stager pinned the range");
	cr_assert_arr_eq(buf, (const unsigned char *)b.data + 4096, sizeof(buf));

	fake_fail("cudaMemcpyAsync", cudaErrorLaunchFailure, 1);
	cr_assert_eq(stk_gpu_copy_view_async(s, &a, 0, sizeof(buf), buf), -EIO);
	cr_assert(strstr(stk_gpu_errmsg(), "cudaMemcpyAsync"), "%s", stk_gpu_errmsg());
	fake_fail("cudaMemcpyAsync", cudaErrorMemoryAllocation, 1);
	cr_assert_eq(stk_gpu_copy_view_async(s, &a, 0, sizeof(buf), buf), -ENOMEM);
	cr_assert_eq(cudaGetLastError(), cudaSuccess);
	stk_gpu_stager_destroy(s);
	stk_release(&b);
	stk_release(&a);
	stop();
	cr_assert_eq(fake_nregs(), 0);
}

/* The trace without copies, registrations and device switches: the pipe's events and waits. */
static const char *events(void)
{
	static char out[4096];
	char tmp[sizeof(out)];
	size_t n = 0;

	snprintf(tmp, sizeof(tmp), "%s", fake_trace());
	out[0] = '\0';
	for (char *save = NULL, *t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (!strncmp(t, "copy(", 5) || !strncmp(t, "pcopy(", 6) || !strncmp(t, "set(", 4) ||
		    !strncmp(t, "reg(", 4))
			continue;
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", n ? " " : "", t);
	}
	fake_clear_trace();
	return out;
}

/* Checks batch b holds objects first, first + 1 ... */
static void check_batch(const struct stk_gpu_batch *b, uint32_t first, size_t n)
{
	cr_assert_eq(b->n, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(b->index[i], first + i);
		cr_assert_eq(b->offsets[i] % STK_GPU_PIPE_ALIGN, 0);
		cr_assert_eq(b->sizes[i], ds.o[first + i].size);
		cr_assert_eq(e2e_hash((unsigned char *)b->data + b->offsets[i], b->sizes[i]),
			     ds.o[first + i].hash, "object %zu", first + i);
	}
}

Test(gpu_arena, the_pipe_overlaps_copies_with_compute_by_events, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	uint32_t idx[8] = { 0, 1, 2, 3, 4, 5, 6, 7 }, all[NOBJ];
	struct stk_gpu_pipe *p = NULL;
	struct stk_gpu_batch b;
	const struct fake_copy *cp;
	size_t ncp;

	start(NOBJ, 64 * E2E_KIB, 0);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_pipe_create(sds, 0, COPY, 512 * E2E_KIB, &p), 0, "%s",
		     stk_gpu_errmsg());
	cr_assert_str_eq(events(), "malloc(524288) evcreate(0x2) evcreate(0x2) malloc(524288) "
				   "evcreate(0x2) evcreate(0x2)");
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), -EAGAIN);

	/* Slot 0: E0 copied, E1 consumed; slot 1: E2, E3. */
	cr_assert_eq(stk_gpu_pipe_submit(p, idx, 2), 0, "%s", stk_gpu_errmsg());
	cr_assert_str_eq(events(), "evrec(E0,S1)");
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), 0, "%s", stk_gpu_errmsg());
	cr_assert_str_eq(events(), "evquery(E0) evwait(S2,E0)");
	check_batch(&b, 0, 2);

	cr_assert_eq(stk_gpu_pipe_submit(p, idx + 2, 2), 0, "%s", stk_gpu_errmsg());
	cr_assert_str_eq(events(), "evrec(E2,S1)", "the free slot first");
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), 0, "%s", stk_gpu_errmsg());
	cr_assert_str_eq(events(), "evrec(E1,S2) evquery(E2) evwait(S2,E2)",
			 "batch 0 consumed, then batch 1 handed over");
	check_batch(&b, 2, 2);

	/* Slot 0 again: its copies wait for the compute of batch 0. */
	cr_assert_eq(stk_gpu_pipe_submit(p, idx + 4, 2), 0, "%s", stk_gpu_errmsg());
	cr_assert_str_eq(events(), "evwait(S1,E1) evrec(E0,S1)");
	/* Submitting before next(): slot 1's batch is handed out, so it is consumed now. */
	cr_assert_eq(stk_gpu_pipe_submit(p, idx + 6, 2), 0, "%s", stk_gpu_errmsg());
	cr_assert_str_eq(events(), "evrec(E3,S2) evwait(S1,E3) evrec(E2,S1)");
	cr_assert_eq(stk_gpu_pipe_submit(p, idx, 2), -EBUSY);

	/* A copy not done yet: next() blocks, and the wait is delivery stall. */
	e2x_sleep_ms(100); /* the daemon bounds a wait by the connection's age */
	struct stk_stats st0 = e2e_stats(c);
	fake_not_ready = 1;
	fake_sync_ns = 30000000;
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), 0, "%s", stk_gpu_errmsg());
	cr_assert_str_eq(events(), "evquery(E0)=busy evsync(E0) evwait(S2,E0)");
	check_batch(&b, 4, 2);
	cr_assert_geq(b.wait_ns, fake_sync_ns);
	struct stk_stats st1 = e2e_stats(c);
	cr_assert_eq(st1.stall_delivery_ns - st0.stall_delivery_ns, b.wait_ns);
	cr_assert_eq(st1.self_stall_ns - st0.self_stall_ns, b.wait_ns);
	cr_assert_eq(st1.waits, st0.waits, "a copy's wait is no request");
	fake_sync_ns = 0;
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), 0, "%s", stk_gpu_errmsg());
	check_batch(&b, 6, 2);
	cr_assert_eq(b.wait_ns, 0);

	/* Every copy came from the pinned arena, with no registration of its own. */
	cp = fake_copies(&ncp);
	cr_assert_eq(ncp, 8);
	for (size_t i = 0; i < ncp; i++) {
		cr_assert(cp[i].pinned, "copy %zu", i);
		cr_assert_eq(cp[i].stream, COPY);
	}
	cr_assert_eq(fake_calls("cudaHostRegister"), (int)fake_nregs());

	/* Too big for a slot; an index past the catalog; nothing is held after. */
	for (uint32_t i = 0; i < NOBJ; i++)
		all[i] = i;
	cr_assert_eq(stk_gpu_pipe_submit(p, all, NOBJ), -E2BIG);
	all[0] = NOBJ;
	cr_assert_eq(stk_gpu_pipe_submit(p, all, 1), -ERANGE);
	cr_assert_eq(stk_gpu_pipe_submit(p, all, 0), -EINVAL);

	/* A failed wait for a copy is an error of the call, and the views go. */
	cr_assert_eq(stk_gpu_pipe_submit(p, idx, 2), 0, "%s", stk_gpu_errmsg());
	fake_not_ready = 1;
	fake_fail("cudaEventSynchronize", cudaErrorLaunchFailure, 1);
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), -EIO);
	cr_assert_eq(cudaGetLastError(), cudaSuccess);
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), -EAGAIN);

	fake_clear_trace();
	stk_gpu_pipe_destroy(p);
	cr_assert(strstr(fake_trace(), "free") && strstr(fake_trace(), "evdestroy(E3)"), "%s",
		  fake_trace());
	stk_gpu_pipe_destroy(NULL);
	stop();
	cr_assert_eq(fake_nregs(), 0);
}

Test(gpu_arena, the_pipe_releases_a_batch_once_its_copy_is_done, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct stk_gpu_pipe *p = NULL;
	struct stk_gpu_batch b;
	uint32_t big = 3;

	/* Object 3 comes in a segment of its own, unmapped (and unregistered) with its view. */
	start(4, 64 * E2E_KIB, 12 * E2E_MIB);
	cr_assert_eq(stk_gpu_pin_arena(c, 0), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_pipe_create(sds, 0, COPY, 16 * E2E_MIB, &p), 0, "%s",
		     stk_gpu_errmsg());
	cr_assert_eq(stk_gpu_pipe_submit(p, &big, 1), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(fake_nregs(), 1);
	cr_assert_eq(fake_calls("cudaHostUnregister"), 0, "the view is held while copying");
	fake_not_ready = 1;
	cr_assert_eq(stk_gpu_pipe_next(p, COMPUTE, &b), 0, "%s", stk_gpu_errmsg());
	cr_assert(strstr(fake_trace(), "evsync(E0) unreg("), "released before the copy ended: %s",
		  fake_trace());
	cr_assert_eq(fake_calls("cudaHostUnregister"), 1, "the view was not released");
	cr_assert_eq(fake_nregs(), 0);
	check_batch(&b, 3, 1);

	/* Destroying a pipe with a batch in flight waits for it, then releases it. */
	cr_assert_eq(stk_gpu_pipe_submit(p, &big, 1), 0, "%s", stk_gpu_errmsg());
	cr_assert_eq(fake_nregs(), 1);
	stk_gpu_pipe_destroy(p);
	cr_assert_eq(fake_calls("cudaHostUnregister"), 2);
	cr_assert_eq(fake_nregs(), 0);
	stop();
}

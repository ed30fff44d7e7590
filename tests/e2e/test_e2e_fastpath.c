/* SPDX-License-Identifier: MIT */
/*
 * Gets through the resident table (docs/PROTOCOL.md, "Resident tables"):
 * a resident object is got with no message to the daemon, even a stopped
 * one; a client killed while holding such views frees them; a client that
 * writes its pin area itself to hold more than its share is dropped, and
 * another client is served.  Eviction under readers is checked by
 * test_e2e_integrity.c, whose gets take this path.
 *
 * Children report through their exit status and stderr; they never assert.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proto/proto.h"

/* Every test in this file: Criterion 2.4.1 leaks under ASan when timeouts differ within a file. */
#define TIMEOUT_S 90

static void make_ds(struct e2e_dataset *ds, const char *name, size_t n, uint64_t size)
{
	uint64_t *sizes = calloc(n, sizeof(*sizes));
	cr_assert_not_null(sizes);
	for (size_t i = 0; i < n; i++)
		sizes[i] = size - 7 * i;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", e2e_d.root, name);
	e2e_dataset_make(ds, dir, sizes, n, 0, 0xfa57 + n);
	free(sizes);
}

static struct stk_dataset *open_ds(struct stk_client *c, const struct e2e_dataset *ds)
{
	struct stk_dataset *sds = NULL;
	int r = stk_dataset_open(c, ds->uri, 0, &sds);
	cr_assert_eq(r, 0, "open %s: %s (%s)", ds->uri, stk_strerror(r), stk_errmsg());
	return sds;
}

/* Plans every object of sds once, in index order. */
static void plan_in_order(struct stk_dataset *sds, size_t n)
{
	uint32_t *order = malloc(n * sizeof(*order));
	cr_assert_not_null(order);
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	cr_assert_eq(stk_plan(sds, order, n), 0, "%s", stk_errmsg());
	free(order);
}

/* Gets and checks every object once, releasing each. */
static void read_all(struct stk_dataset *sds, const struct e2e_dataset *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		cr_assert_eq(e2x_get_check(sds, i, &ds->o[i], NULL, NULL), 0, "object %zu", i);
}

Test(e2e_fastpath, resident_objects_come_without_a_round_trip, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	struct e2e_dataset ds;
	make_ds(&ds, "ds", 40, 200 * E2E_KIB);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	read_all(sds, &ds); /* resident now, and every segment mapped here */
	uint64_t gets = e2e_stats(c).gets;

	/* A stopped daemon answers nothing: every get below must need no answer. */
	cr_assert_eq(kill(e2e_d.pid, SIGSTOP), 0);
	uint64_t t0 = e2x_now_ns();
	struct stk_view v[40];
	for (size_t i = 0; i < ds.n; i++) {
		uint32_t flags = 0;
		int r = e2x_get_check(sds, i, &ds.o[i], &flags, &v[i]);
		cr_assert_eq(r, 0, "object %zu with the daemon stopped: %s", i, stk_strerror(r));
		cr_assert(flags & STK_VIEW_HIT);
	}
	uint64_t took = e2x_now_ns() - t0;
	for (size_t i = 0; i < ds.n; i++)
		stk_release(&v[i]);
	cr_assert_eq(kill(e2e_d.pid, SIGCONT), 0);
	cr_assert_lt(took, 5000000000ull, "the gets waited for the stopped daemon");

	/* The daemon hears of them (GOT) once it runs: they count as its gets and hits. */
	stk_dataset_close(sds);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.gets, gets + ds.n, "daemon counted %llu gets, want %llu",
		     (unsigned long long)st.gets, (unsigned long long)(gets + ds.n));
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* A child that reads ds through the table, holds every view, says so, and sleeps. */
static pid_t holder(const struct e2e_dataset *ds, int *ready_fd)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid) {
		close(p[1]);
		*ready_fd = p[0];
		return pid;
	}
	close(p[0]);
	struct stk_client *c = NULL;
	struct stk_dataset *sds = NULL;
	if (e2x_connect(e2e_d.sock, &c) || stk_dataset_open(c, ds->uri, 0, &sds))
		_exit(2);
	struct stk_view v;
	for (size_t i = 0; i < ds->n; i++) /* resident, segments mapped */
		if (e2x_get_check(sds, i, &ds->o[i], NULL, NULL))
			_exit(3);
	for (size_t i = 0; i < ds->n; i++)
		if (e2x_get_check(sds, i, &ds->o[i], NULL, &v)) /* held: never released */
			_exit(4);
	(void)!write(p[1], "k", 1);
	for (;;)
		pause();
}

Test(e2e_fastpath, a_client_killed_holding_table_views_frees_them, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct e2e_dataset a, b;
	make_ds(&a, "a", 24, 1 * E2E_MIB);
	make_ds(&b, "b", 56, 1 * E2E_MIB);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", "--pin-wait", "2", NULL });
	int rfd;
	pid_t pid = holder(&a, &rfd);
	char k;
	cr_assert_eq(read(rfd, &k, 1), 1, "the holder failed");
	close(rfd);

	/*
	 * b needs nearly the whole budget, and its plan makes a's objects the
	 * victims: prefetching b finds them pinned by the holder and keeps them.
	 */
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &b);
	plan_in_order(sds, b.n);
	uint64_t held = 0;
	for (int t = 0; t < 500 && !held; t++, e2x_sleep_ms(10))
		held = e2e_stats(c).pinned_objects;
	cr_assert_gt(held, 0, "the daemon never found the holder's pins");

	/* Once the holder dies, what it held goes, and b is read whole. */
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(e2x_wait_child(pid, 10), SIGKILL);
	read_all(sds, &b);
	struct stk_stats st = e2e_stats(c);
	cr_assert_eq(st.pinned_objects, 0, "%llu objects still held",
		     (unsigned long long)st.pinned_objects);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&a);
	e2e_dataset_free(&b);
}

/* This process's pin area, found by its memfd's name. */
static uint64_t *pin_area(size_t *len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	cr_assert_not_null(f);
	char line[512];
	uint64_t *p = NULL;
	while (!p && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perm[8], path[256] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*u %255s", &lo, &hi, perm, path) == 4 &&
		    strstr(path, "memfd:stoker:pins") && perm[1] == 'w') {
			p = (uint64_t *)lo;
			*len = hi - lo;
		}
	}
	fclose(f);
	cr_assert_not_null(p, "no pin area mapped");
	return p;
}

Test(e2e_fastpath, a_client_writing_pins_past_its_share_is_dropped, .init = e2e_init,
     .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	struct e2e_dataset a, b;
	make_ds(&a, "a", 40, 1 * E2E_MIB);
	make_ds(&b, "b", 40, 1 * E2E_MIB);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "64M", "--client-max-pinned", "8M",
						   "--pin-wait", "2", NULL });
	struct stk_client *greedy = e2e_connect(&e2e_d);
	struct stk_dataset *ga = open_ds(greedy, &a);
	read_all(ga, &a);
	/* Pins on all 40 MiB of a, written as libstoker never would (a is dataset 1). */
	size_t len;
	uint64_t *pins = pin_area(&len);
	uint32_t buckets = stk__pin_buckets_of(len);
	for (uint32_t i = 0; i < a.n; i++) {
		uint64_t key = stk__pin_key(1, i);
		uint64_t *bk = pins + (size_t)stk__pin_bucket(key, buckets) * STK_PIN_WAYS;
		for (unsigned w = 0; w < STK_PIN_WAYS; w++)
			if (!bk[w]) {
				__atomic_store_n(&bk[w], key, __ATOMIC_SEQ_CST);
				break;
			}
	}

	/*
	 * Another client needs room only a's objects can give, and its plan
	 * makes them the victims (never needed again): it is served.
	 */
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &b);
	plan_in_order(sds, b.n);
	read_all(sds, &b);
	cr_assert(e2e_log_contains(&e2e_d, "through its pin area; dropped"));
	struct stk_dataset_status st;
	int r = stk_dataset_status(ga, &st);
	cr_assert_eq(r, -EPIPE, "the greedy client still talks: %s", stk_strerror(r));
	stk_dataset_close(sds);
	stk_close(c);
	stk_dataset_close(ga);
	stk_close(greedy);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&a);
	e2e_dataset_free(&b);
}

/* stk_report_wait(): a copy's wait is delivery stall of its own, no get (docs/stall.md). */
Test(e2e_fastpath, a_reported_copy_wait_is_delivery_stall, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	const uint64_t copy_ns = 40000000; /* 40 ms */
	struct e2e_dataset ds;
	make_ds(&ds, "copywait", 2, 64 * E2E_KIB);
	e2e_daemon_start(&e2e_d, NULL);
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = open_ds(c, &ds);
	read_all(sds, &ds);
	/* The daemon bounds a wait by the connection's age: make it older than the wait. */
	e2x_sleep_ms(100);
	struct stk_stats a = e2e_stats(c);
	cr_assert_eq(stk_report_wait(sds, 1, copy_ns), 0, "%s", stk_errmsg());
	cr_assert_eq(stk_report_wait(sds, 2, copy_ns), -EINVAL);
	struct stk_stats b = e2e_stats(c);
	cr_assert_eq(b.stall_delivery_ns - a.stall_delivery_ns, copy_ns);
	cr_assert_eq(b.stall_ns - a.stall_ns, copy_ns);
	cr_assert_eq(b.self_stall_ns - a.self_stall_ns, copy_ns);
	cr_assert_eq(b.stall_fetch_ns, a.stall_fetch_ns);
	cr_assert_eq(b.self_stall_fetch_ns, a.self_stall_fetch_ns);
	cr_assert_eq(b.waits, a.waits, "a copy wait is no request of its own");
	cr_assert_eq(b.gets, a.gets, "a copy wait is no get");
	cr_assert_eq(b.stall_avoided_ns, a.stall_avoided_ns);
	cr_assert_eq(b.delivered_bytes, a.delivered_bytes);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* SPDX-License-Identifier: MIT */
/*
 * What stokerd gives up once started (prefetch/sandbox.c) and where its
 * secrets never show (transports/s3.c):
 *
 *  - privileges: PR_SET_NO_NEW_PRIVS is set and every capability is gone
 *    but CAP_DAC_READ_SEARCH (the tests run as root), which still lets it
 *    serve a file only another user may read;
 *  - secrets: with AWS keys in its environment and signed s3:// requests
 *    made, neither the secret key nor the session token is in
 *    /proc/PID/environ, in the debug log, in /metrics or in `stoker stats
 *    --json`, and the secret key is not in a core dump (gcore);
 *  - --seccomp: every thread runs under the filter, and file:// (io_uring and
 *    poll), tier 1, s3:// with curl, stats and metrics all work under it.
 *    (The s3/http suites run under it too: STK_TEST_STOKERD pointing to a
 *    script that sets STOKER_SECCOMP=1; docs/security.md.)
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Every test in this file: Criterion 2.4.1 leaks under ASan when timeouts differ within a file. */
#define TIMEOUT_S 120

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYsecretMARK1"
#define TOKEN  "FwoGZXIvYXdzEBYaDtokenMARK2xyzFwoGZXIvYXdzEBYaD"

/* The value of "Name:" in /proc/pid/status, or "" (in out, cap bytes). */
static void status_field(pid_t pid, const char *name, char *out, size_t cap)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	out[0] = 0;
	size_t nl = strlen(name);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;
			v += strspn(v, " \t");
			snprintf(out, cap, "%.*s", (int)strcspn(v, "\n"), v);
		}
	fclose(f);
}

Test(e2e_sandbox, no_new_privs_and_no_caps, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	/* A file only uid 65534 may read, in a directory only it may search. */
	char dir[256], path[320];
	snprintf(dir, sizeof(dir), "%s/theirs", e2e_d.root);
	snprintf(path, sizeof(path), "%s/obj.bin", dir);
	cr_assert_eq(e2x_write_file(path, 5000, 7), 0);
	uint64_t want, size;
	cr_assert_eq(e2x_file_hash(path, &want, &size), 0);
	cr_assert_eq(chown(path, 65534, 65534), 0);
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(chown(dir, 65534, 65534), 0);
	cr_assert_eq(chmod(dir, 0700), 0);

	e2e_daemon_start(&e2e_d, NULL);
	char v[64];
	status_field(e2e_d.pid, "NoNewPrivs", v, sizeof(v));
	cr_assert_str_eq(v, "1", "NoNewPrivs is '%s'", v);
	status_field(e2e_d.pid, "CapEff", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000004", "CapEff is %s, want CAP_DAC_READ_SEARCH only", v);
	status_field(e2e_d.pid, "CapPrm", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000004", "CapPrm is %s", v);
	status_field(e2e_d.pid, "CapBnd", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000004", "CapBnd is %s", v);
	status_field(e2e_d.pid, "CapInh", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000000", "CapInh is %s", v);
	status_field(e2e_d.pid, "CapAmb", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000000", "CapAmb is %s", v);

	/* Still serves what only root's reading capability can reach. */
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = NULL;
	char uri[300];
	snprintf(uri, sizeof(uri), "file://%s/", dir);
	cr_assert_eq(stk_dataset_open(c, uri, 0, &sds), 0, "open %s: %s", uri, stk_errmsg());
	struct e2e_obj o = { .size = size, .hash = want };
	snprintf(o.key, sizeof(o.key), "obj.bin");
	cr_assert_eq(e2x_get_check(sds, 0, &o, NULL, NULL), 0);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
}

/* Whether the file at path contains needle; -1 when it cannot be read. */
static int file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t nl = strlen(needle), cap = 1 << 20, keep = 0;
	char *buf = malloc(cap + nl);
	cr_assert_not_null(buf);
	int found = 0;
	size_t n;
	while (!found && (n = fread(buf + keep, 1, cap, f)) > 0) {
		size_t len = keep + n;
		found = memmem(buf, len, needle, nl) != NULL;
		keep = len < nl - 1 ? len : nl - 1;
		memmove(buf, buf + len - keep, keep);
	}
	free(buf);
	fclose(f);
	return found;
}

static void no_secret_in(const char *what, const char *text)
{
	cr_assert_not_null(text, "no %s", what);
	cr_assert_null(strstr(text, SECRET), "the secret key is in %s", what);
	cr_assert_null(strstr(text, TOKEN), "the session token is in %s", what);
}

/* The port of "metrics: serving http://127.0.0.1:PORT/metrics" in the log. */
static unsigned metrics_port(void)
{
	for (int i = 0; i < 100; i++) {
		FILE *f = fopen(e2e_d.log, "r");
		char line[512];
		unsigned port = 0;
		while (f && fgets(line, sizeof(line), f)) {
			const char *p = strstr(line, "serving http://127.0.0.1:");
			if (p && sscanf(p, "serving http://127.0.0.1:%u", &port) == 1)
				break;
		}
		if (f)
			fclose(f);
		if (port)
			return port;
		e2x_sleep_ms(50);
	}
	cr_assert_fail("stokerd never logged its metrics port");
	return 0;
}

Test(e2e_sandbox, secrets_stay_secret, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	if (access("/usr/bin/gcore", X_OK))
		cr_skip_test("no gcore (gdb) to dump the daemon's core");
	setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", TOKEN, 1);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--log-level", "debug", "--metrics",
						   "127.0.0.1:0", "--s3-endpoint",
						   "http://127.0.0.1:9", "--retries", "0", NULL });
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	cr_assert(e2e_log_contains(&e2e_d, "signed (SigV4)"), "stokerd did not take the keys");

	/* Signed requests, to a port where nothing listens: they fail, and are logged. */
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = NULL;
	cr_assert_neq(stk_dataset_open(c, "s3://bucket/prefix/", 0, &sds), 0);
	no_secret_in("the error message", stk_errmsg());
	cr_assert_neq(stk_dataset_open(c, "s3://bucket/one.bin", 0, &sds), 0);

	char *out = NULL, *err = NULL;
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", metrics_port());
	int st = e2e_run((const char *[]){ "/usr/bin/curl", "-sf", url, NULL }, &out, NULL, &err);
	cr_assert_eq(st, 0, "curl %s: %s", url, err);
	cr_assert(strstr(out, "stoker_"), "/metrics has no stoker_ metric");
	no_secret_in("/metrics", out);
	free(out);
	free(err);
	st = e2e_run(
	    (const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "stats", "--json", NULL },
	    &out, NULL, &err);
	cr_assert_eq(st, 0, "stoker stats --json: %s", err);
	no_secret_in("stoker stats --json", out);
	free(out);
	free(err);

	char path[300];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)e2e_d.pid);
	cr_assert_eq(file_has(path, SECRET), 0, "the secret key is in %s", path);
	cr_assert_eq(file_has(path, TOKEN), 0, "the session token is in %s", path);

	/*
	 * gcore honours MADV_DONTDUMP (the "dd" flag in /proc/PID/smaps), as the
	 * kernel does.  Not under ASan: its terabytes of shadow make gcore take
	 * minutes.
	 */
#if defined(__SANITIZE_ADDRESS__)
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	fprintf(stderr, "ASan build: the core dump is not checked\n");
	return;
#endif
	char prefix[200], pid[16], core[240];
	snprintf(prefix, sizeof(prefix), "%s/core", e2e_d.dir);
	snprintf(pid, sizeof(pid), "%d", (int)e2e_d.pid);
	snprintf(core, sizeof(core), "%s.%s", prefix, pid);
	st = e2e_run((const char *[]){ "/usr/bin/gcore", "-o", prefix, pid, NULL }, &out, NULL,
		     &err);
	cr_assert_eq(st, 0, "gcore: %s%s", out, err);
	free(out);
	free(err);
	/* The dump is real: it holds the socket path, from stokerd's argv. */
	cr_assert_eq(file_has(core, e2e_d.sock), 1, "the core %s lacks the socket path", core);
	cr_assert_eq(file_has(core, SECRET), 0, "the secret key is in the core dump");
	/*
	 * Not the session token: it is a header of every signed request, so
	 * curl's request buffers (freed heap) hold copies of it.  Its stored
	 * copy is in the MADV_DONTDUMP mapping with the key.
	 */
	unlink(core);

	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	cr_assert_eq(file_has(e2e_d.log, SECRET), 0, "the secret key is in the log");
	cr_assert_eq(file_has(e2e_d.log, TOKEN), 0, "the session token is in the log");
	cr_assert(e2e_log_contains(&e2e_d, "s3://bucket/"), "the debug log says nothing of s3://");
}

/* How many of pid's threads run under a seccomp filter, and how many threads there are. */
static int filtered_threads(pid_t pid, int *total)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	cr_assert_not_null(d);
	int n = 0;
	*total = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char st[300], line[128];
		snprintf(st, sizeof(st), "/proc/%d/task/%s/status", (int)pid, e->d_name);
		FILE *f = fopen(st, "r");
		if (!f)
			continue;
		(*total)++;
		while (fgets(line, sizeof(line), f))
			n += !strcmp(line, "Seccomp:\t2\n");
		fclose(f);
	}
	closedir(d);
	return n;
}

/*
 * One round of what stokerd does under --seccomp: lists and gets over
 * file:// (tier 1 on), a signed s3:// request that curl makes and fails,
 * stats, a metrics scrape.  A call missing from the allow-list kills it with
 * SIGSYS, which the gets or the clean stop then catch.
 */
static void seccomp_round(const char *const *extra)
{
	uint64_t sizes[12];
	for (size_t i = 0; i < 12; i++)
		sizes[i] = i % 4 == 3 ? 3 * E2E_MIB : 3000 + 97 * i;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/ds", e2e_d.root);
	struct e2e_dataset ds;
	e2e_dataset_make(&ds, dir, sizes, 12, 2, 0x5ecc);
	setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	e2e_daemon_start(&e2e_d, extra);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	int total, n = filtered_threads(e2e_d.pid, &total);
	cr_assert_gt(total, 1);
	cr_assert_eq(n, total, "%d of stokerd's %d threads run under the filter", n, total);

	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = NULL;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0, "open: %s", stk_errmsg());
	cr_assert_eq(e2x_check_catalog(sds, &ds), 0);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ds.n; i++)
			cr_assert_eq(e2x_get_check(sds, i, &ds.o[i], NULL, NULL), 0,
				     "get #%zu under --seccomp", i);
	e2e_stats(c);
	struct stk_dataset *s3 = NULL;
	cr_assert_neq(stk_dataset_open(c, "s3://bucket/one.bin", 0, &s3), 0);
	char *out = NULL, *err = NULL;
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", metrics_port());
	cr_assert_eq(
	    e2e_run((const char *[]){ "/usr/bin/curl", "-sf", url, NULL }, &out, NULL, &err), 0,
	    "curl %s: %s", url, err);
	free(out);
	free(err);
	stk_dataset_close(sds);
	stk_close(c);
	e2e_daemon_stop(&e2e_d); /* SIGSYS on the way out fails here */
	cr_assert(e2e_log_contains(&e2e_d, "seccomp filter installed"));
	e2e_dataset_free(&ds);
}

Test(e2e_sandbox, seccomp_io_uring_and_tier1, .init = e2e_init, .fini = e2e_fini,
     .timeout = TIMEOUT_S)
{
	char nvme[200];
	snprintf(nvme, sizeof(nvme), "%s/nvme", e2e_d.dir);
	cr_assert_eq(e2x_mkdirs(nvme), 0);
	seccomp_round((const char *[]){ "--seccomp", "--log-level", "info", "--ram", "8M",
					"--nvme-dir", nvme, "--nvme", "64M", "--metrics",
					"127.0.0.1:0", "--s3-endpoint", "http://127.0.0.1:9",
					"--retries", "0", NULL });
}

Test(e2e_sandbox, seccomp_poll_backend, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	seccomp_round((const char *[]){ "--seccomp", "--no-uring", "--log-level", "info",
					"--metrics", "127.0.0.1:0", "--s3-endpoint",
					"http://127.0.0.1:9", "--retries", "0", NULL });
}

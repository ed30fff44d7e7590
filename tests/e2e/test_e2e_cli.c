/* SPDX-License-Identifier: MIT */
/* The stoker command line client against the real daemon. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef STOKER_CLI_PATH
#error "build with -DSTOKER_CLI_PATH=\"path/to/stoker\""
#endif

static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void make(struct e2e_dataset *ds)
{
	static const uint64_t sizes[] = { 0, 1, 4095, 4096, 4097, 100003, 2 * E2E_MIB + 5 };
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/cli data", e2e_d.root); /* a space in the path */
	e2e_dataset_make(ds, dir, sizes, sizeof(sizes) / sizeof(sizes[0]), 2, 31);
}

Test(e2e_cli, ls_lists_every_file, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	struct e2e_dataset ds;
	make(&ds);
	e2e_daemon_start(&e2e_d, NULL);
	char *out, *err;
	size_t len;
	int st =
	    e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "ls", ds.uri, NULL },
		    &out, &len, &err);
	cr_assert_eq(exit_code(st), 0, "stoker ls exited %d: %s", exit_code(st), err);
	cr_assert_str_empty(err, "stoker ls wrote to stderr: %s", err);
	cr_assert(len > 0 && out[len - 1] == '\n', "the output's last line lacks its newline");
	/* One "KEY<TAB>SIZE" line per object, in key order, nothing else. */
	char *line = out, *save = NULL;
	size_t n = 0;
	for (char *l = strtok_r(line, "\n", &save); l; l = strtok_r(NULL, "\n", &save), n++) {
		cr_assert_lt(n, ds.n, "stoker ls printed more than %zu lines", ds.n);
		char want[200];
		snprintf(want, sizeof(want), "%s\t%llu", ds.o[n].key,
			 (unsigned long long)ds.o[n].size);
		cr_assert_str_eq(l, want, "line %zu", n + 1);
	}
	cr_assert_eq(n, ds.n, "stoker ls printed %zu lines for %zu objects", n, ds.n);
	free(out);
	free(err);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

Test(e2e_cli, cat_writes_the_bytes, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	struct e2e_dataset ds;
	make(&ds);
	e2e_daemon_start(&e2e_d, NULL);
	char uri[3][400];
	uint64_t want_len = 0;
	/* Three objects in one call: the output is their concatenation. */
	const size_t pick[3] = { ds.n - 1, 0, ds.n / 2 };
	unsigned char *want = malloc(4 * E2E_MIB);
	cr_assert_not_null(want);
	for (int i = 0; i < 3; i++) {
		const struct e2e_obj *o = &ds.o[pick[i]];
		snprintf(uri[i], sizeof(uri[i]), "%s%s", ds.uri, o->key);
		char path[400];
		snprintf(path, sizeof(path), "%s/%s", ds.dir, o->key);
		FILE *f = fopen(path, "rb");
		cr_assert_not_null(f);
		cr_assert_eq(fread(want + want_len, 1, o->size, f), o->size);
		fclose(f);
		want_len += o->size;
	}
	char *out, *err;
	size_t len;
	int st = e2e_run((const char *[]){ STOKER_CLI_PATH, "cat", uri[0], uri[1], uri[2],
					   "--socket", e2e_d.sock, NULL },
			 &out, &len, &err);
	cr_assert_eq(exit_code(st), 0, "stoker cat exited %d: %s", exit_code(st), err);
	cr_assert_eq(len, want_len, "stoker cat wrote %zu bytes, want %llu", len,
		     (unsigned long long)want_len);
	cr_assert_eq(memcmp(out, want, want_len), 0, "stoker cat wrote different bytes");
	cr_assert_eq(e2e_hash(out, len), e2e_hash(want, want_len));
	free(out);
	free(err);
	free(want);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

Test(e2e_cli, cat_of_a_missing_file_fails_naming_it, .init = e2e_init, .fini = e2e_fini,
     .timeout = 90)
{
	struct e2e_dataset ds;
	make(&ds);
	e2e_daemon_start(&e2e_d, NULL);
	char missing[400], good[400];
	snprintf(missing, sizeof(missing), "%sno-such-object.bin", ds.uri);
	snprintf(good, sizeof(good), "%s%s", ds.uri, ds.o[2].key);
	char *out, *err;
	size_t len;
	int st = e2e_run(
	    (const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "cat", missing, NULL }, &out,
	    &len, &err);
	cr_assert_neq(exit_code(st), 0, "stoker cat of a missing object exited 0");
	cr_assert_lt(exit_code(st), 128, "stoker cat died of a signal");
	cr_assert(strstr(err, missing), "stderr does not name %s: %s", missing, err);
	cr_assert_eq(len, 0, "stoker cat wrote %zu bytes to stdout", len);
	free(out);
	free(err);

	/* A good object after a missing one is still written; the status says one failed. */
	st = e2e_run(
	    (const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "cat", missing, good, NULL },
	    &out, &len, &err);
	cr_assert_eq(exit_code(st), 1, "exit %d", exit_code(st));
	cr_assert_eq(len, ds.o[2].size);
	cr_assert_eq(e2e_hash(out, len), ds.o[2].hash);
	free(out);
	free(err);

	/* No daemon there: a clear failure too. */
	char nosock[300];
	snprintf(nosock, sizeof(nosock), "%s/nobody.sock", e2e_d.dir);
	st = e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", nosock, "ls", ds.uri, NULL },
		     &out, &len, &err);
	cr_assert_eq(exit_code(st), 1, "exit %d", exit_code(st));
	cr_assert(strstr(err, nosock), "stderr does not name the socket: %s", err);
	free(out);
	free(err);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* stokerd's own command line: bad flags fail at once with a message naming them. */
Test(e2e_cli, stokerd_rejects_bad_flags, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	char longsock[300];
	memset(longsock, 'x', sizeof(longsock) - 1);
	longsock[0] = '/';
	longsock[sizeof(longsock) - 1] = 0;
	static const struct {
		const char *flag, *value, *needle;
		int status;
	} cases[] = {
		{ "--ram", "1", "'1'", 2 },
		{ "--ram", "lots", "lots", 2 },
		{ "--max-inflight", "0", "'0'", 2 },
		{ "--log-level", "chatty", "chatty", 2 },
		{ "--no-such-flag", NULL, "no-such-flag", 2 },
		{ "--allow-root", "relative/dir", "relative/dir", 1 },
		{ "--allow-root", "/nonexistent-stoker-root", "/nonexistent-stoker-root", 1 },
		{ "--socket", NULL, "too long", 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sock[200];
		snprintf(sock, sizeof(sock), "%s/flags.sock", e2e_d.dir);
		const char *argv[12];
		size_t n = 0;
		argv[n++] = STOKERD_PATH;
		argv[n++] = "--foreground";
		if (strcmp(cases[i].flag, "--socket")) {
			argv[n++] = "--socket";
			argv[n++] = sock;
		}
		if (strcmp(cases[i].flag, "--allow-root")) {
			argv[n++] = "--allow-root";
			argv[n++] = e2e_d.root;
		}
		argv[n++] = cases[i].flag;
		if (!strcmp(cases[i].flag, "--socket"))
			argv[n++] = longsock;
		else if (cases[i].value)
			argv[n++] = cases[i].value;
		argv[n] = NULL;
		char *out, *err;
		size_t len;
		int st = e2e_run(argv, &out, &len, &err);
		cr_assert_eq(exit_code(st), cases[i].status, "stokerd %s %s: exit %d, want %d: %s",
			     cases[i].flag, cases[i].value ? cases[i].value : "", exit_code(st),
			     cases[i].status, err);
		cr_assert(strstr(err, cases[i].needle), "stokerd %s: stderr lacks '%s': %s",
			  cases[i].flag, cases[i].needle, err);
		free(out);
		free(err);
	}
	char *out, *err;
	size_t len;
	int st = e2e_run((const char *[]){ STOKERD_PATH, "--help", NULL }, &out, &len, &err);
	cr_assert_eq(exit_code(st), 0);
	cr_assert(strstr(out, "usage: stokerd"), "--help printed: %s", out);
	free(out);
	free(err);
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keys with line and column breakers: each object must still be one KEY<TAB>SIZE line. */
Test(e2e_cli, ls_escapes_control_bytes_in_keys, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	static const struct {
		const char *name, *shown;
	} keys[] = {
		{ "a\nb.bin", "a\\nb.bin" },
		{ "tab\there", "tab\\there" },
		{ "back\\slash", "back\\\\slash" },
		{ "cr\r", "cr\\r" },
		{ "ctl\x01\x7f.bin", "ctl\\x01\\x7f.bin" },
		{ "utf8-\xc3\xa9", "utf8-\xc3\xa9" },
	};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/odd", e2e_d.root);
	cr_assert_eq(e2x_mkdirs(dir), 0);
	const char *order[N];
	for (size_t i = 0; i < N; i++) {
		char path[400];
		snprintf(path, sizeof(path), "%s/%s", dir, keys[i].name);
		cr_assert_eq(e2x_write_file(path, i + 1, i), 0, "write %s", path);
		order[i] = keys[i].name;
	}
	qsort(order, N, sizeof(order[0]), by_str); /* the daemon lists keys in byte order */
	char want[1024];
	size_t wl = 0;
	for (size_t i = 0; i < N; i++) {
		size_t k = 0;
		while (keys[k].name != order[i])
			k++;
		wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s\t%zu\n", keys[k].shown,
				       k + 1);
	}
	e2e_daemon_start(&e2e_d, NULL);
	char uri[300];
	snprintf(uri, sizeof(uri), "file://%s/", dir);
	char *out, *err;
	size_t len;
	int st =
	    e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "ls", uri, NULL },
		    &out, &len, &err);
	cr_assert_eq(exit_code(st), 0, "stoker ls exited %d: %s", exit_code(st), err);
	cr_assert_str_eq(out, want, "stoker ls printed\n%s\nwant\n%s", out, want);
	free(out);
	free(err);
	e2e_daemon_stop(&e2e_d);
}

/*
 * Runs the CLI as nobody (uid and gid 65534, no supplementary groups) and
 * returns its exit code, with its stderr in *err (the caller frees it).
 */
static int run_as_nobody(const char *const *argv, char **err)
{
	char ep[200];
	snprintf(ep, sizeof(ep), "%s/nobody.stderr", e2e_d.dir);
	int fd = open(ep, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", ep, strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(125);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = e2x_wait_child(pid, 30);
	cr_assert_neq(st, -1, "%s as nobody did not finish within 30 s", argv[0]);
	cr_assert(!WIFEXITED(st) || WEXITSTATUS(st) < 125, "cannot run %s as nobody (%d)", argv[0],
		  WEXITSTATUS(st));
	char *b = calloc(1, 4096);
	cr_assert_not_null(b);
	ssize_t n = pread(fd, b, 4095, 0);
	cr_assert_geq(n, 0);
	close(fd);
	*err = b;
	return exit_code(st);
}

/* A user the daemon refuses learns why, whether the daemon or the socket's mode refused it. */
Test(e2e_cli, refused_user_is_told_why, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run a client as another uid");
	e2e_daemon_start(&e2e_d, NULL);
	const char *const argv[] = { STOKER_CLI_PATH, "--socket", e2e_d.sock, "stats", NULL };
	char *err;

	/* The directory closed to others: say so, rather than blame the socket. */
	int code = run_as_nobody(argv, &err);
	cr_assert_eq(code, 1, "exit %d: %s", code, err);
	cr_assert(strstr(err, "a directory on the way to the socket is closed to this user"),
		  "stderr: %s", err);
	free(err);

	/* The socket's 0660 keeps nobody out: connect(2) fails, with a hint. */
	cr_assert_eq(chmod(e2e_d.dir, 0755), 0, "chmod %s: %s", e2e_d.dir, strerror(errno));
	code = run_as_nobody(argv, &err);
	cr_assert_eq(code, 1, "exit %d: %s", code, err);
	cr_assert(strstr(err, "Permission denied") &&
		      strstr(err, "the socket is accessible to the daemon's uid and group only"),
		  "stderr: %s", err);
	free(err);

	/* An open socket: the daemon itself refuses uid 65534 and says so. */
	cr_assert_eq(chmod(e2e_d.sock, 0666), 0, "chmod %s: %s", e2e_d.sock, strerror(errno));
	code = run_as_nobody(argv, &err);
	cr_assert_eq(code, 1, "exit %d: %s", code, err);
	cr_assert(strstr(err, "uid 65534 is not allowed"), "stderr: %s", err);
	cr_assert(strstr(err, e2e_d.sock), "stderr does not name the socket: %s", err);
	free(err);
	e2e_daemon_stop(&e2e_d);
}

/* A warm that fails names the failure; here an object larger than the whole RAM budget. */
Test(e2e_cli, warm_failure_names_the_cause, .init = e2e_init, .fini = e2e_fini, .timeout = 90)
{
	static const uint64_t sizes[] = { 20 * E2E_MIB };
	struct e2e_dataset ds;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/big", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 1, 0, 5);
	e2e_daemon_start(&e2e_d, (const char *[]){ "--ram", "16M", NULL });
	char *out, *err;
	size_t len;
	int st = e2e_run(
	    (const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "warm", ds.uri, NULL }, &out,
	    &len, &err);
	cr_assert_eq(exit_code(st), 1, "stoker warm exited %d: %s", exit_code(st), err);
	cr_assert(strstr(err, "last error: ") && strstr(err, "larger than the whole RAM budget"),
		  "stderr: %s", err);
	cr_assert(strstr(err, ds.o[0].key), "stderr does not name the object: %s", err);
	free(out);
	free(err);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/*
 * Per-client and per-dataset totals: two connections of this process, each
 * reading its own dataset, then `stoker stats --json` and `stoker top`.
 */

/*
 * These tests have no .timeout of their own: with one, Criterion 2.4's
 * runner leaks 96 bytes (calloc in libcriterion) under LeakSanitizer when
 * this file's tests run with --jobs 2, so the ASan suite fails although
 * every test passes (a do-nothing test with .timeout added here does the
 * same).  Each bounds its own waits; ctest's TIMEOUT bounds the file.
 */
#define TOP_NA 5 /* objects of dataset top-a, read once by client A */
#define TOP_NB 7 /* objects of dataset top-b, read twice by client B */

struct two_clients {
	struct e2e_dataset a, b;
	struct stk_client *ca, *cb;
	struct stk_dataset *da, *db;
	uint64_t gets_a, gets_b;
};

static void two_clients_start(struct two_clients *t, const char *const *daemon_flags)
{
	static const uint64_t sa[TOP_NA] = { 1, 4096, 10000, 65536, 300000 };
	static const uint64_t sb[TOP_NB] = { 0, 7, 4097, 8192, 50000, 100000, 1000000 };
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/top-a", e2e_d.root);
	e2e_dataset_make(&t->a, dir, sa, TOP_NA, 0, 41);
	snprintf(dir, sizeof(dir), "%s/top-b", e2e_d.root);
	e2e_dataset_make(&t->b, dir, sb, TOP_NB, 1, 42);
	e2e_daemon_start(&e2e_d, daemon_flags);
	t->ca = e2e_connect(&e2e_d);
	t->cb = e2e_connect(&e2e_d);
	int r = stk_dataset_open(t->ca, t->a.uri, 0, &t->da);
	cr_assert_eq(r, 0, "open %s: %s", t->a.uri, stk_errmsg());
	r = stk_dataset_open(t->cb, t->b.uri, 0, &t->db);
	cr_assert_eq(r, 0, "open %s: %s", t->b.uri, stk_errmsg());
	for (size_t i = 0; i < t->a.n; i++)
		cr_assert_eq(e2x_get_check(t->da, i, &t->a.o[i], NULL, NULL), 0);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < t->b.n; i++)
			cr_assert_eq(e2x_get_check(t->db, i, &t->b.o[i], NULL, NULL), 0);
	t->gets_a = TOP_NA;
	t->gets_b = 2 * TOP_NB;
	/* Each client's stats call sends its waits, and its reply says they were counted. */
	e2e_stats(t->cb);
	e2e_stats(t->ca);
}

static void two_clients_stop(struct two_clients *t)
{
	stk_dataset_close(t->da);
	stk_dataset_close(t->db);
	stk_close(t->ca);
	stk_close(t->cb);
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&t->a);
	e2e_dataset_free(&t->b);
}

/* The number after "key": in json between from and to, or assert. Sets *at past it. */
static uint64_t json_num(const char *from, const char *to, const char *key, const char **at)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(from, pat);
	cr_assert(p && (!to || p < to), "no \"%s\" in %.400s", key, from);
	char *end;
	uint64_t v = strtoull(p + strlen(pat), &end, 10);
	cr_assert(end > p + strlen(pat), "\"%s\" is not a number", key);
	if (at)
		*at = end;
	return v;
}

/* The objects of the array "name" in json: where each begins ('{'), up to max. */
static size_t json_objects(const char *json, const char *name, const char **obj, size_t max,
			   const char **end)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": [", name);
	const char *p = strstr(json, pat);
	cr_assert_not_null(p, "no array \"%s\" in %s", name, json);
	p += strlen(pat);
	size_t n = 0;
	int depth = 0;
	for (; *p && !(depth == 0 && *p == ']'); p++) {
		if (*p == '"') { /* skip strings: a URI may hold braces */
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			continue;
		}
		if (*p == '{' && depth++ == 0) {
			cr_assert_lt(n, max);
			obj[n++] = p;
		} else if (*p == '}') {
			depth--;
		}
	}
	cr_assert_eq(*p, ']', "array \"%s\" does not end", name);
	*end = p;
	return n;
}

Test(e2e_cli, stats_json_has_per_client_and_per_dataset_totals, .init = e2e_init, .fini = e2e_fini)
{
	struct two_clients t;
	two_clients_start(&t, NULL);

	/* Through the library first: this process's two connections, newest first. */
	struct stk_daemon_client cl[8];
	size_t n = 0, total = 0;
	int r = stk_daemon_clients(t.ca, cl, 8, &n, &total);
	cr_assert_eq(r, 0, "stk_daemon_clients: %s", stk_errmsg());
	cr_assert(n == 2 && total == 2, "%zu listed of %zu", n, total);
	cr_assert(cl[0].pid == (uint32_t)getpid() && cl[1].pid == (uint32_t)getpid());
	cr_assert_eq(cl[0].uid, (uint32_t)getuid());
	cr_assert_neq(cl[0].id, cl[1].id, "two connections, one id");
	cr_assert_eq(cl[0].gets, t.gets_b, "client B (the newer) got %llu",
		     (unsigned long long)cl[0].gets);
	cr_assert_eq(cl[1].gets, t.gets_a);
	cr_assert(cl[0].open_datasets == 1 && cl[1].open_datasets == 1);
	cr_assert_geq(cl[0].hits, TOP_NB, "B's second round found every object resident");
	cr_assert(cl[0].stall_ns > 0 && cl[1].stall_ns > 0);
	cr_assert_eq(cl[0].stall_ns, cl[0].stall_fetch_ns + cl[0].stall_delivery_ns);
	cr_assert_gt(cl[0].connected_ns, 0);
	size_t one = 9;
	cr_assert_eq(stk_daemon_clients(t.ca, cl, 1, &one, NULL), 0);
	cr_assert_eq(one, 1, "max caps what is filled");
	struct stk_daemon_dataset ds[4];
	r = stk_daemon_datasets(t.cb, ds, 4, &n, &total);
	cr_assert_eq(r, 0, "stk_daemon_datasets: %s", stk_errmsg());
	cr_assert(n == 2 && total == 2, "%zu listed of %zu", n, total);
	/* The daemon names a directory without its last '/'. */
	char want_uri[300];
	snprintf(want_uri, sizeof(want_uri), "file://%s", t.b.dir);
	cr_assert_str_eq(ds[0].uri, want_uri);
	snprintf(want_uri, sizeof(want_uri), "file://%s", t.a.dir);
	cr_assert_str_eq(ds[1].uri, want_uri);
	cr_assert_str_eq(ds[0].label, "");
	cr_assert(ds[0].objects == TOP_NB && ds[1].objects == TOP_NA && ds[0].users == 1);
	cr_assert(ds[0].gets == t.gets_b && ds[1].gets == t.gets_a);
	cr_assert_eq(ds[0].stall_ns, cl[0].stall_ns, "one client per dataset: the same stall");
	cr_assert_eq(ds[1].bytes, t.a.bytes);
	cr_assert_eq(ds[1].resident, TOP_NA, "everything fits the budget");

	char *out, *err;
	size_t len;
	int st = e2e_run(
	    (const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "stats", "--json", NULL },
	    &out, &len, &err);
	cr_assert_eq(exit_code(st), 0, "stoker stats --json exited %d: %s", exit_code(st), err);
	static const char *const stall_keys[] = {
		"waits",
		"stall_ns",
		"stall_fetch_ns",
		"stall_delivery_ns",
		"stall_avoided_ns",
		"stall_avoided_model_ns",
		"delivered_bytes",
		"self_stall_ns",
		"self_stall_fetch_ns",
		"self_stall_avoided_ns",
	};
	for (size_t i = 0; i < sizeof(stall_keys) / sizeof(stall_keys[0]); i++)
		json_num(out, NULL, stall_keys[i], NULL);
	/* The top-level counters come first; the lists follow them. */
	uint64_t stall = json_num(out, NULL, "stall_ns", NULL);
	uint64_t waits = json_num(out, NULL, "waits", NULL);
	uint64_t clients = json_num(out, NULL, "clients", NULL);
	uint64_t delivered = json_num(out, NULL, "delivered_bytes", NULL);
	cr_assert_gt(stall, 0);
	cr_assert_eq(delivered, t.a.bytes + 2 * t.b.bytes);

	const char *obj[8], *end;
	size_t nc = json_objects(out, "per_client", obj, 8, &end);
	cr_assert_eq(nc, 3, "two clients and the command itself: %zu", nc);
	cr_assert_eq(clients, nc);
	uint64_t sum_stall = 0, sum_waits = 0, sum_gets = 0;
	unsigned mine = 0;
	for (size_t i = 0; i < nc; i++) {
		const char *lim = i + 1 < nc ? obj[i + 1] : end;
		uint64_t pid = json_num(obj[i], lim, "pid", NULL);
		uint64_t gets = json_num(obj[i], lim, "gets", NULL);
		sum_stall += json_num(obj[i], lim, "stall_ns", NULL);
		sum_waits += json_num(obj[i], lim, "waits", NULL);
		sum_gets += gets;
		json_num(obj[i], lim, "stall_avoided_ns", NULL);
		json_num(obj[i], lim, "connected_ns", NULL);
		if (pid == (uint64_t)getpid()) {
			mine++;
			cr_assert(gets == t.gets_a || gets == t.gets_b, "gets %llu",
				  (unsigned long long)gets);
		} else {
			cr_assert_eq(gets, 0, "the stats command itself gets nothing");
		}
	}
	cr_assert_eq(mine, 2);
	cr_assert_eq(sum_stall, stall, "clients' stall_ns sum to %llu, stall_ns is %llu",
		     (unsigned long long)sum_stall, (unsigned long long)stall);
	cr_assert_eq(sum_waits, waits);
	cr_assert_eq(sum_gets, t.gets_a + t.gets_b);

	size_t nd = json_objects(out, "per_dataset", obj, 8, &end);
	cr_assert_eq(nd, 2);
	cr_assert_eq(json_num(out, NULL, "datasets", NULL), nd);
	uint64_t ds_stall = 0;
	for (size_t i = 0; i < nd; i++) {
		const char *lim = i + 1 < nd ? obj[i + 1] : end;
		ds_stall += json_num(obj[i], lim, "stall_ns", NULL);
		uint64_t objects = json_num(obj[i], lim, "objects", NULL);
		uint64_t gets = json_num(obj[i], lim, "gets", NULL);
		const struct e2e_dataset *want = objects == TOP_NA ? &t.a : &t.b;
		cr_assert_eq(gets, want == &t.a ? t.gets_a : t.gets_b);
		cr_assert_eq(json_num(obj[i], lim, "users", NULL), 1);
		char uri[320];
		snprintf(uri, sizeof(uri), "\"uri\": \"file://%s\"", want->dir);
		const char *u = strstr(obj[i], uri);
		cr_assert(u && u < lim, "dataset %zu lacks %s", i, uri);
	}
	cr_assert_eq(ds_stall, stall, "datasets' stall_ns sum to %llu, stall_ns is %llu",
		     (unsigned long long)ds_stall, (unsigned long long)stall);
	free(out);
	free(err);

	/* For people: the stall lines, and both tables. */
	st = e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "stats", NULL },
		     &out, &len, &err);
	cr_assert_eq(exit_code(st), 0, "stoker stats exited %d: %s", exit_code(st), err);
	cr_assert(strstr(out, "stall_avoided_ns") && strstr(out, "(estimate)"), "%s", out);
	cr_assert(strstr(out, "clients: 3") && strstr(out, "datasets: 2"), "%s", out);
	cr_assert(strstr(out, "/top-a ") && strstr(out, "/top-b "), "%s", out);
	free(out);
	free(err);
	two_clients_stop(&t);
}

/* How many lines of text begin (after spaces) with word. */
static unsigned lines_starting(const char *text, const char *word)
{
	unsigned n = 0;
	size_t wl = strlen(word);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *p = l;
		while (*p == ' ')
			p++;
		if (!strncmp(p, word, wl) && (p[wl] == ' ' || p[wl] == '\n'))
			n++;
	}
	return n;
}

Test(e2e_cli, top_once_prints_both_tables, .init = e2e_init, .fini = e2e_fini)
{
	struct two_clients t;
	char label[320];
	snprintf(label, sizeof(label), "alpha=file://%s/top-a", e2e_d.root);
	two_clients_start(&t, (const char *[]){ "--metrics-dataset", label, NULL });
	char *out, *err;
	size_t len;
	uint64_t t0 = e2x_now_ns();
	int st = e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "top", "--once",
					   "--interval", "0.2", NULL },
			 &out, &len, &err);
	uint64_t took = e2x_now_ns() - t0;
	cr_assert_eq(exit_code(st), 0, "stoker top --once exited %d: %s", exit_code(st), err);
	cr_assert_str_empty(err, "stoker top wrote to stderr: %s", err);
	cr_assert_geq(took, 200000000ull, "one interval passes before the frame (its rates)");
	cr_assert_null(strchr(out, '\033'), "escape codes in a frame for a pipe:\n%s", out);
	cr_assert(strstr(out, "stoker top: stokerd at ") && strstr(out, e2e_d.sock), "%s", out);
	cr_assert(strstr(out, "clients 2 ") && strstr(out, "datasets 2 "), "%s", out);
	cr_assert(strstr(out, "stall avoided (estimate)"), "%s", out);
	cr_assert(strstr(out, "\nclients (2 shown of 2)\n") &&
		      strstr(out, "\ndatasets (2 shown of 2)\n"),
		  "%s", out);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	cr_assert_eq(lines_starting(out, pid), 2, "a row per connection of pid %s:\n%s", pid, out);
	/* top-a by its label, top-b by the end of its URI. */
	cr_assert(strstr(out, " alpha "), "no row for the labelled dataset:\n%s", out);
	cr_assert(strstr(out, "/top-b "), "no row for top-b:\n%s", out);
	free(out);
	free(err);

	/* A bad interval is a usage error. */
	st = e2e_run((const char *[]){ STOKER_CLI_PATH, "--socket", e2e_d.sock, "top", "--interval",
				       "0", NULL },
		     &out, &len, &err);
	cr_assert_eq(exit_code(st), 2, "exit %d", exit_code(st));
	cr_assert(strstr(err, "--interval '0'"), "%s", err);
	free(out);
	free(err);
	two_clients_stop(&t);
}

/* top on a pseudo-terminal redraws, and Ctrl-C leaves the terminal as it found it. */
Test(e2e_cli, top_redraws_on_a_terminal, .init = e2e_init, .fini = e2e_fini)
{
	struct two_clients t;
	two_clients_start(&t, NULL);
	int master;
	fflush(NULL);
	pid_t pid = forkpty(&master, NULL, NULL, &(struct winsize){ .ws_row = 40, .ws_col = 120 });
	cr_assert_geq(pid, 0, "forkpty: %s", strerror(errno));
	if (pid == 0) {
		execl(STOKER_CLI_PATH, STOKER_CLI_PATH, "--socket", e2e_d.sock, "top", "--interval",
		      "0.1", (char *)NULL);
		_exit(127);
	}
	static char screen[1 << 20];
	size_t got = 0;
	unsigned frames = 0;
	uint64_t deadline = e2x_now_ns() + 20000000000ull;
	/* Reads until five frames came (the first one at once, then every 0.1 s). */
	while (frames < 5 && e2x_now_ns() < deadline) {
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		ssize_t n = read(master, screen + got, sizeof(screen) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		screen[got] = 0;
		frames = 0;
		for (const char *p = screen; (p = strstr(p, "\033[H\033[2J")); p++)
			frames++;
	}
	cr_assert_geq(frames, 5, "%u frames in:\n%s", frames, screen);
	cr_assert(strstr(screen, "\033[?1049h"), "no alternate screen");
	cr_assert(strstr(screen, "/top-a ") && strstr(screen, "/top-b "), "%s", screen);
	cr_assert_eq(kill(pid, SIGINT), 0);
	/* Drains what comes until the terminal closes: the restore is the last word. */
	for (;;) {
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		if (poll(&pfd, 1, 5000) <= 0)
			break;
		ssize_t n = read(master, screen + got, sizeof(screen) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		screen[got] = 0;
	}
	int st = e2x_wait_child(pid, 10);
	cr_assert_eq(exit_code(st), 0, "stoker top after Ctrl-C: exit %d", exit_code(st));
	const char leave[] = "\033[?25h\033[?1049l";
	cr_assert(got >= sizeof(leave) - 1 &&
		      !memcmp(screen + got - (sizeof(leave) - 1), leave, sizeof(leave) - 1),
		  "the terminal is not restored at the end");
	close(master);
	two_clients_stop(&t);
}

/* The daemon going away: a message that says so, and status 1. */
Test(e2e_cli, top_says_when_the_daemon_goes_away, .init = e2e_init, .fini = e2e_fini)
{
	e2e_daemon_start(&e2e_d, NULL);
	char op[200], ep[200];
	snprintf(op, sizeof(op), "%s/top.stdout", e2e_d.dir);
	snprintf(ep, sizeof(ep), "%s/top.stderr", e2e_d.dir);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execl(STOKER_CLI_PATH, STOKER_CLI_PATH, "--socket", e2e_d.sock, "top", "--interval",
		      "1.5", (char *)NULL);
		_exit(127);
	}
	/* Once top is connected (a second client), the daemon stops. */
	struct stk_client *c = e2e_connect(&e2e_d);
	uint64_t deadline = e2x_now_ns() + 10000000000ull;
	while (e2e_stats(c).clients < 2 && e2x_now_ns() < deadline)
		e2x_sleep_ms(20);
	cr_assert_eq(e2e_stats(c).clients, 2, "stoker top never connected");
	stk_close(c);
	e2e_daemon_stop(&e2e_d);
	int st = e2x_wait_child(pid, 20);
	cr_assert_eq(exit_code(st), 1, "stoker top exited %d", exit_code(st));
	char msg[2048] = "";
	FILE *f = fopen(ep, "r");
	cr_assert_not_null(f);
	size_t n = fread(msg, 1, sizeof(msg) - 1, f);
	msg[n] = 0;
	fclose(f);
	/* Lost between frames, or before top's first one: either way it says so. */
	cr_assert((strstr(msg, "stoker: top: lost stokerd") ||
		   strstr(msg, "stoker: cannot reach stokerd")) &&
		      strstr(msg, "stokerd closed the connection"),
		  "stderr: %s", msg);
}

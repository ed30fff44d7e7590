/* SPDX-License-Identifier: MIT */
/* The stoker command line client against the real daemon. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

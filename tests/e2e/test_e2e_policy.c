/* SPDX-License-Identifier: MIT */
/*
 * Who may connect (stokerd --allow-uid, --allow-gid): the tests run as root,
 * so each case forks a child that takes another uid, gid and supplementary
 * groups (setresgid, setgroups, setresuid) and tries to read one object.
 * The socket is made 0666 in a 0755 directory, so that the file system lets
 * everyone connect and only the daemon's policy decides.
 *
 * The children report through a pipe and never assert (see harness.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* Every test in this file: Criterion 2.4.1 leaks under ASan when timeouts differ within a file. */
#define TIMEOUT_S 60

#define NOBODY	65534u
#define OTHER	65533u /* a uid no test admits by name */
#define GRP_OK	4242u  /* a gid the tests list in --allow-gid */
#define GRP_OFF 4343u  /* one they never list */

struct verdict {
	int rc; /* 0: connected and read an object; else the first error */
	char msg[256];
};

static struct e2e_dataset ds;

/* Makes the dataset, starts the daemon with extra flags and opens the socket to all. */
static void start(const char *const *extra)
{
	cr_assert_eq(chmod(e2e_d.dir, 0755), 0);
	uint64_t sizes[] = { 4 * E2E_KIB, 5 * E2E_KIB };
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/ds", e2e_d.root);
	e2e_dataset_make(&ds, dir, sizes, 2, 0, 0x5ec);
	e2e_daemon_start(&e2e_d, extra);
	cr_assert_eq(chmod(e2e_d.sock, 0666), 0);
}

static void stop(void)
{
	e2e_daemon_stop(&e2e_d);
	e2e_dataset_free(&ds);
}

/* In a child running as uid, gid and the supplementary groups sup[nsup]: connect and read. */
static struct verdict try_as(uid_t uid, gid_t gid, const gid_t *sup, size_t nsup)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct verdict v = { .rc = -EINVAL };
		struct stk_client *c = NULL;
		struct stk_dataset *sds = NULL;
		close(p[0]);
		if (setgroups(nsup, sup) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
			v.rc = -errno;
			snprintf(v.msg, sizeof(v.msg), "cannot become uid %u: %s", (unsigned)uid,
				 strerror(errno));
		} else if ((v.rc = e2x_connect(e2e_d.sock, &c)) != 0) {
			snprintf(v.msg, sizeof(v.msg), "%s", stk_errmsg());
		} else if ((v.rc = stk_dataset_open(c, ds.uri, 0, &sds)) != 0) {
			snprintf(v.msg, sizeof(v.msg), "open: %s", stk_errmsg());
		} else {
			v.rc = e2x_get_check(sds, 0, &ds.o[0], NULL, NULL);
			stk_dataset_close(sds);
		}
		stk_close(c);
		if (write(p[1], &v, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	struct verdict v;
	ssize_t n = read(p[0], &v, sizeof(v));
	close(p[0]);
	cr_assert_eq(e2x_wait_child(pid, 30), 0, "the child as uid %u failed", (unsigned)uid);
	cr_assert_eq(n, (ssize_t)sizeof(v));
	v.msg[sizeof(v.msg) - 1] = 0;
	return v;
}

static void admitted(uid_t uid, gid_t gid, const gid_t *sup, size_t nsup)
{
	struct verdict v = try_as(uid, gid, sup, nsup);
	cr_assert_eq(v.rc, 0, "uid %u gid %u was refused: %d %s", (unsigned)uid, (unsigned)gid,
		     v.rc, v.msg);
}

static void refused(uid_t uid, gid_t gid, const gid_t *sup, size_t nsup)
{
	struct verdict v = try_as(uid, gid, sup, nsup);
	cr_assert_eq(v.rc, -EACCES, "uid %u gid %u: want -EACCES, got %d (%s)", (unsigned)uid,
		     (unsigned)gid, v.rc, v.msg);
	char want[96];
	snprintf(want, sizeof(want), "uid %u is not allowed to use this stokerd (gid %u;",
		 (unsigned)uid, (unsigned)gid);
	cr_assert(strstr(v.msg, want), "the refusal '%s' does not name '%s'", v.msg, want);
	cr_assert(strstr(v.msg, "--allow-uid"), "the refusal '%s' does not name the flag", v.msg);
}

/* Counts the lines of the daemon's log that contain needle. */
static int log_count(const char *needle)
{
	FILE *f = fopen(e2e_d.log, "r");
	cr_assert_not_null(f);
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Without flags: root, stokerd's uid, and its gid (0 here) primary or supplementary. */
Test(e2e_policy, default_rule, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	start(NULL);
	refused(NOBODY, NOBODY, NULL, 0);
	admitted(NOBODY, 0, NULL, 0);
	/* usermod -aG: the daemon's group as a supplementary group (SO_PEERGROUPS). */
	admitted(NOBODY, NOBODY, (gid_t[]){ GRP_OFF, 0 }, 2);
	stop();
}

/* --allow-uid: exactly the listed uids besides root; the daemon's gid no longer admits. */
Test(e2e_policy, allow_uid, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	start((const char *[]){ "--allow-uid", "65534", NULL });
	admitted(NOBODY, NOBODY, NULL, 0);
	refused(OTHER, NOBODY, NULL, 0);
	refused(OTHER, 0, NULL, 0);
	refused(OTHER, NOBODY, (gid_t[]){ 0 }, 1);
	struct stk_client *c = e2e_connect(&e2e_d); /* root */
	stk_close(c);
	stop();
}

/* --allow-gid: a listed gid admits as primary or supplementary group. */
Test(e2e_policy, allow_gid, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	start((const char *[]){ "--allow-gid", "4242", NULL });
	admitted(OTHER, GRP_OK, NULL, 0);
	admitted(OTHER, NOBODY, (gid_t[]){ GRP_OFF, GRP_OK }, 2);
	refused(OTHER, GRP_OFF, (gid_t[]){ NOBODY }, 1);
	refused(OTHER, 0, NULL, 0);
	refused(NOBODY, NOBODY, NULL, 0);
	stop();
}

/*
 * Starts stokerd through a script that sets the variables vars (the harness
 * passes no STOKER_* variable to the daemon itself).
 */
static void start_env(const char *vars, const char *const *extra)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/stokerd-env.sh", e2e_d.dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n%s exec '%s' \"$@\"\n", vars, STOKERD_PATH);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, 0755), 0);
	setenv("STOKER_E2E_STOKERD", path, 1);
	start(extra);
	unsetenv("STOKER_E2E_STOKERD");
}

/* The environment twins, lists of several ids, and a flag replacing its variable. */
Test(e2e_policy, env_twins, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	start_env("STOKER_ALLOW_UID=1234,65534 STOKER_ALLOW_GID=4242", NULL);
	admitted(NOBODY, NOBODY, NULL, 0);
	admitted(OTHER, GRP_OK, NULL, 0);
	refused(OTHER, NOBODY, NULL, 0);
	stop();

	start_env("STOKER_ALLOW_UID=65534", (const char *[]){ "--allow-uid", "nobody", NULL });
	admitted(NOBODY, NOBODY, NULL, 0);
	stop();
	start_env("STOKER_ALLOW_UID=65534", (const char *[]){ "--allow-uid", "65533", NULL });
	admitted(OTHER, NOBODY, NULL, 0);
	refused(NOBODY, NOBODY, NULL, 0);
	stop();
}

/*
 * A refused peer retrying in a loop is logged once, not once per try, and an
 * admitted client connected all along is served throughout.
 */
Test(e2e_policy, refusals_logged_once, .init = e2e_init, .fini = e2e_fini, .timeout = TIMEOUT_S)
{
	start((const char *[]){ "--allow-uid", "65534", NULL });
	struct stk_client *c = e2e_connect(&e2e_d);
	struct stk_dataset *sds = NULL;
	cr_assert_eq(stk_dataset_open(c, ds.uri, 0, &sds), 0);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int refusals = 0;
		close(p[0]);
		if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(OTHER, OTHER, OTHER))
			_exit(2);
		for (int i = 0; i < 50; i++) {
			struct stk_client *x = NULL;
			refusals += e2x_connect(e2e_d.sock, &x) == -EACCES;
			stk_close(x);
		}
		if (write(p[1], &refusals, sizeof(refusals)) != (ssize_t)sizeof(refusals))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(e2x_get_check(sds, (size_t)i % 2, &ds.o[i % 2], NULL, NULL), 0);
	int refusals = 0;
	cr_assert_eq(read(p[0], &refusals, sizeof(refusals)), (ssize_t)sizeof(refusals));
	close(p[0]);
	cr_assert_eq(e2x_wait_child(pid, 30), 0);
	cr_assert_eq(refusals, 50, "only %d of 50 connections were refused", refusals);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(e2x_get_check(sds, (size_t)i % 2, &ds.o[i % 2], NULL, NULL), 0);
	e2e_stats(c);
	stk_dataset_close(sds);
	stk_close(c);
	int lines = log_count("uid 65533 gid 65534 is not allowed");
	if (lines != 1)
		e2e_dump_log(&e2e_d);
	cr_assert_eq(lines, 1, "50 refusals were logged in %d lines, want 1", lines);
	stop();
}
